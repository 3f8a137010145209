-- policies/routing.lua - which upstream each database call uses.
--
-- tide has four upstreams (etc/tide.conf.lua names their DSNs):
--   "direct"       Postgres itself. Session state is safe; tide caches prepared statements.
--   "session"      a session-mode pooler (PgBouncer pool_mode=session).
--   "transaction"  a transaction-mode pooler (PgBouncer pool_mode=transaction, Supavisor 6543):
--                  the cheapest connections, nothing session-scoped survives a statement.
--   "replica"      a streaming replica of Postgres (reads only). Until one is configured it is
--                  direct itself; while it is down or further behind than its lag bounds
--                  (resilience.lua) its calls go to direct. It may be up to lag.max_ms behind:
--                  a read sent there right after a write may not see it, so send it only
--                  reads that can be that stale, e.g. tables.destinations = { select = "replica" }.
--
-- tide.db asks route(kind, table) before every call. kind is one of
--   select, count, vector_search        (reads)
--   insert, update, delete, upsert      (writes)
--   transaction, sql, rpc               (need a pinned or unrestricted connection)
-- table is the table name (the function name for rpc, nil for sql and transaction).
-- An explicit `mode = "..."` in a call's options wins over this policy.
--
-- Change the defaults below, or add per-table overrides, e.g.
--   tables.trips = { select = "direct" }        -- only trips' selects go direct
--   tables.audit_log = "direct"                 -- every kind of call on audit_log
-- A reload (SIGHUP) picks changes up; a policy that fails to load rejects the whole bundle.

local type = type

local _M = {}

-- The seed's table.
_M.default = {
    select = "transaction",
    count = "transaction",
    vector_search = "transaction",
    insert = "session",
    update = "session",
    delete = "session",
    upsert = "session",
    transaction = "direct",
    sql = "direct",
    rpc = "direct",
}

-- Per-table overrides: tables[name] = "mode" or { kind = "mode", ... }.
_M.tables = {}

-- Returns the upstream name for a call of this kind on this table.
function _M.route(kind, tbl)
    if tbl ~= nil then
        local o = _M.tables[tbl]
        if type(o) == "string" then
            return o
        elseif type(o) == "table" and o[kind] ~= nil then
            return o[kind]
        end
    end
    return _M.default[kind]
end

return _M
