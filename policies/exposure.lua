-- policies/exposure.lua - what /rest/v1 (tide/rest/routes.lua) may touch. Hot-reloaded with
-- SIGHUP like the other policies (a reload also empties the schema cache). Read and checked
-- when the bundle loads (tide/rest/schema.lua): if it does not load, is missing, or holds
-- a wrong type or an unknown key, the bundle is rejected and the previous one keeps serving.
-- A key left out takes its default (the values below; hide and unfiltered_writes: none).
--
-- schemas        the exposed schemas (PostgREST's db-schemas). Only the first is served for
--                now, and its tables must be reachable by unqualified name (public).
-- max_rows       at most this many rows in one answer, whatever limit/Range asks (PostgREST's
--                db-max-rows); Content-Range shows what was sent.
-- refresh_after  seconds: a table or column the schema cache does not know makes it re-read
--                the catalog, at most this often (from the start of the last read, failed
--                ones included), before the request is refused.
-- hide           tables (= true) or columns (= {names}) /rest/v1 never shows; `*` leaves
--                hidden columns out and naming one is a 400 as for a column that does not
--                exist; a hidden column cannot be written either (400 PGRST204). RLS and
--                grants still decide everything else.
-- max_insert_rows  at most this many rows in one POST (bulk insert or upsert); more is a
--                413 TIDE_TOO_MANY_ROWS and nothing is written.
-- unfiltered_writes  tables (= true) on which a PATCH or DELETE without any filter may touch
--                every row. Elsewhere it is refused as Supabase's pg-safeupdate refuses it:
--                400, code 21000, "UPDATE requires a WHERE clause".
return {
    schemas = { "public" },
    max_rows = 1000,
    refresh_after = 5,
    max_insert_rows = 1000,
    unfiltered_writes = {},
    hide = {
        -- sealed third-party keys: the masked view is GET /v1/api-keys
        api_keys = { "encrypted_key", "key_hash" },
    },
}
