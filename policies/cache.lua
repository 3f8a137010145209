-- policies/cache.lua - what the result cache keeps, for whom, and what invalidates it
-- (README "Result cache"). Hot-reloaded with SIGHUP like the other policies: a reload drops
-- the entries of rules it changes or removes, and every entry when `tables` or `functions`
-- change; the rest stay.
--
-- routes: GET routes whose answers are cached (200s only), keyed by the caller's identity
--   under `scope`, the path and query, and the `vary` headers:
--     ttl                     seconds an answer is served fresh (X-Cache: HIT)
--     scope                   "public" (one answer for every caller), "role" (per database
--                             role), "user" (per role and JWT sub), "claims" (per claims set)
--     stale_while_revalidate  seconds past ttl it is still served (X-Cache: STALE) while one
--                             background request refreshes it (default 0)
--     stale_if_error          age up to which a kept answer replaces a 5xx (X-Cache: STALE)
--                             (default 0)
--     vary                    request header names that are part of the key (at most 4)
--   An answer is stored only when every read its handler made said what it depends on:
--   tide.db reads do (below); db.sql, and db.rpc of a function not listed in `functions`, do
--   not, and a handler that writes is never stored.
--
-- tables: how reads and writes of a table are tagged. key: the column that names a row, so a
--   read filtered on it (trips where id = 7, however the client spells 7: docs/cache.md) is
--   dropped only by writes to that row, and reads of the whole table by any write. depends:
--   tables through which RLS decides what a read sees (a trip is visible through
--   trip_collaborators): their writes invalidate too; their `key` column must hold this
--   table's key. A write to a table not listed invalidates every read of it. Writes from
--   outside tide reach the cache through the NOTIFY trigger of db/migrations/007
--   (tide_meta.cache_watch(table, key_column) attaches it to a table).
--
-- functions: the tables each db.rpc function reads (its answers are tagged with all of them).
return {
  routes = {
    -- one list for everyone: a minute old at most, kept for an hour when the database fails
    ["GET /v1/destinations/popular"] = { ttl = 60, scope = "public",
                                         stale_while_revalidate = 30, stale_if_error = 3600 },
    ["GET /v1/trips/:id"] = { ttl = 30, scope = "user", stale_if_error = 300 },
    ["GET /v1/trips"] = { ttl = 10, scope = "user" },
    ["GET /v1/users/me"] = { ttl = 30, scope = "user", stale_if_error = 300 },
  },
  tables = {
    trips = { key = "id", depends = { "trip_collaborators" } },
    trip_collaborators = { key = "trip_id" },
    users = { key = "id" },
    destinations = { key = "id" },
    -- a view (db/migrations/009): who it shows follows the shares, so any write to the
    -- tables below drops a cached read of it
    collaborator_profiles = { depends = { "users", "trips", "trip_collaborators" } },
  },
  functions = {},
}
