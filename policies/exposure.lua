-- policies/exposure.lua - what /rest/v1 (scripts/rest.lua) may touch. Hot-reloaded with
-- SIGHUP like the other policies (a reload also empties the schema cache).
--
-- schemas        the exposed schemas (PostgREST's db-schemas). Only the first is served for
--                now, and its tables must be reachable by unqualified name (public).
-- max_rows       at most this many rows in one answer, whatever limit/Range asks (PostgREST's
--                db-max-rows); Content-Range shows what was sent.
-- refresh_after  seconds: a table or column the schema cache does not know makes it re-read
--                the catalog, at most this often, before the request is refused.
-- hide           tables (= true) or columns (= {names}) /rest/v1 never shows; `*` leaves
--                hidden columns out and naming one is a 400 as for a column that does not
--                exist. RLS and grants still decide everything else.
return {
    schemas = { "public" },
    max_rows = 1000,
    refresh_after = 5,
    hide = {
        -- sealed third-party keys: the masked view is GET /v1/api-keys
        api_keys = { "encrypted_key", "key_hash" },
    },
}
