-- tide/db.lua - the database API script authors write against (DESIGN.md "Lua API").
--
--   db.select(tbl, {columns, filters, order, limit, offset, single, raw, mode, as,
--              counted, total, read_only})
--       counted = true: returns rows (or raw), info with info.n = rows in the answer and,
--       with total = true too, info.total = rows the filters match without limit/offset
--       (counted in the same statement, so from the same snapshot)
--       columns may hold embed items (related rows, tide.builder); a cached read is tagged
--       with the embedded tables too, so their writes invalidate it
--       csv = true: returns the rows as CSV text (a string; tide.builder says the format)
--   db.count(tbl, {filters, read_only, mode, as})                      -> number
--   db.insert(tbl, row_or_rows, {columns, single, raw, counted, max_affected, defaults, mode, as})
--   db.upsert(tbl, row_or_rows, {on_conflict = "a,b", ignore, columns, single, raw, counted,
--             max_affected, defaults, inserted, mode, as})
--       inserted = true (with counted): info.inserted = how many of the rows were inserted
--       (the others were updated by the conflict)
--   db.update(tbl, patch, {filters, all, columns, single, raw, counted, max_affected,
--             defaults, mode, as})
--   db.delete(tbl, {filters, all, columns, single, raw, counted, max_affected, mode, as})
--   db.vector_search(tbl, column, vector, {limit = 10, threshold, metric = "cosine"|"l2"|"ip",
--                    filters, columns, raw, mode, as})
--   db.rpc(fn, args, {raw, read_only, mode, as})  -> the function's value (array for
--       set-returning)
--   db.sql(text, params, {mode, as, rpc, read_only})  -> rows, result  (the text runs as is)
--       rpc = "fn": the text calls function fn (a caller that builds its own call, e.g.
--       /rest/v1/rpc): routed, cached and counted as db.rpc(fn) would be, not as raw SQL
--   read_only = true (select, count, vector_search, rpc, sql; outside a transaction): the
--       statement runs in a read-only transaction, so neither it nor any function or view it
--       calls can write (SQLSTATE 25006, 405); it costs no round trip. /rest/v1's reads ask
--       for it.
--   db.transaction(fn, {mode, as})         -> fn's results     (fn(tx); tx has this API)
--   db.health()                            -> the /health document (table), down (boolean)
--   db.stats()                             -> per-upstream pool counts from tide.core:
--       {direct = {pool, size, open, idle, busy, waiting, jobs, errors}, session = ..., ...}
-- (health and query metrics are served by the admin listener in C, not from Lua.)
--
-- Results: reads and writes return an array of rows (tagged json.array_mt, so [] stays []);
-- `columns` on a write is its RETURNING list (default *; false: none, the rows are only
-- counted). Writes also take counted = true (a second result, info.n = rows written),
-- max_affected = n (a write that would change more rows is rolled back: nil,
-- TIDE_MAX_AFFECTED (400) with err.affected = the number), and defaults (insert/upsert: true
-- = a key a row lacks takes the column default, not NULL; update: a list of columns set to
-- DEFAULT) - see tide.builder. single = true returns one row, or
-- nil, TIDE_NOT_FOUND (404) when there is none, or nil, TIDE_MULTIPLE_ROWS (406) when there
-- are more (a single-row write that matches several rows is rolled back). raw = true returns
-- json.raw(text): Postgres' JSON untouched, for handlers that return rows as they are.
--
-- Errors: misuse (wrong types, unknown option keys, bad filters, a write without filters and
-- without all = true, a bad mode) raises a Lua error at the caller's line. Failures return
-- nil, err with err = {code, message, details, hint, status} from tide.core, passed through
-- (plus retry_after, in seconds, when a breaker refused the call).
--
-- Routing: opts.mode ("direct", "session", "transaction", "replica") wins; otherwise
-- policies/routing.lua's route(kind, tbl) decides. as = "service" runs the call as
-- service_role (bypasses RLS); tide.core writes an audit line for every such call (kind and
-- table come with the query's options).
--
-- Unit tests replace tide.core with db._set_core(fake).

local builder = require "tide.builder"
local json = require "tide.json"
local errors = require "tide.errors"
local lazy = require "tide.lazy"
local cachetags = require "tide.cachetags"

local type, pairs, next, tostring, tonumber, select = type, pairs, next, tostring, tonumber,
    select
local setmetatable, getmetatable = setmetatable, getmetatable
local xpcall, unpack = xpcall, unpack
local traceback = debug.traceback
local running = coroutine.running
local match, sub = string.match, string.sub
local concat = table.concat
local misuse = errors.misuse
local json_decode, json_raw = json.decode, json.raw
local array_mt, null = json.array_mt, json.null

local _M = {}

local get_core, set_core = lazy.require "tide.core"
local unpack_tags = unpack
local get_routing = lazy.require "routing"          -- policies/routing.lua

local MODES = { direct = true, session = true, transaction = true, replica = true }

-- For unit specs only: replaces tide.core (pass nil to go back to the real one).
_M._set_core = set_core

---------------------------------------------------------------------------------------------
-- option checking

local function keyset(list)
    local s = {}
    for i = 1, #list do s[list[i]] = true end
    return s
end

local COMMON = { "mode", "as" }
local function allowed(...)
    local list = { ... }
    for i = 1, #COMMON do list[#list + 1] = COMMON[i] end
    return keyset(list)
end

local OPTS = {
    select = allowed("columns", "filters", "order", "limit", "offset", "single", "raw", "cache",
                     "counted", "total", "csv", "read_only"),
    count = allowed("filters", "read_only"),
    insert = allowed("columns", "single", "raw", "counted", "max_affected", "defaults"),
    upsert = allowed("columns", "single", "raw", "on_conflict", "ignore", "counted",
                     "max_affected", "defaults", "inserted"),
    update = allowed("columns", "single", "raw", "filters", "all", "counted", "max_affected",
                     "defaults"),
    delete = allowed("columns", "single", "raw", "filters", "all", "counted", "max_affected"),
    vector_search = allowed("columns", "raw", "filters", "limit", "threshold", "metric",
                            "read_only"),
    rpc = allowed("raw", "read_only"),
    sql = allowed("rpc", "read_only"),
    transaction = allowed(),
}

local EMPTY = setmetatable({}, { __newindex = function() error("read-only table", 2) end })

-- Returns opts (or an empty table) after checking its keys against kind's allowed set.
local function check_opts(kind, opts)
    if opts == nil then
        return EMPTY
    end
    if type(opts) ~= "table" then
        misuse("db." .. kind .. ": options must be a table, got " .. type(opts))
    end
    local ok = OPTS[kind]
    for k in pairs(opts) do
        if not ok[k] then
            misuse("db." .. kind .. ": unknown option '" .. tostring(k) .. "'")
        end
    end
    local as = opts.as
    if as ~= nil and as ~= "service" then
        misuse("db." .. kind .. ": as must be \"service\" (or absent)")
    end
    return opts
end

-- Returns the upstream for a call outside a transaction.
local function upstream_for(kind, tbl, mode)
    if mode ~= nil then
        if not MODES[mode] then
            misuse("db." .. kind .. ": mode must be \"direct\", \"session\", \"transaction\" or \"replica\"")
        end
        return mode
    end
    local up = get_routing().route(kind, tbl)
    if not MODES[up] then
        error("policies/routing.lua: route(" .. tostring(kind) .. ", " .. tostring(tbl) ..
              ") returned " .. tostring(up) .. ", expected direct, session, transaction or replica", 0)
    end
    return up
end

---------------------------------------------------------------------------------------------
-- running statements

-- ctx is nil outside a transaction, else the transaction state {handle, upstream, open}.
-- Returns core.query's result or nil, err.
local READS = { select = true, count = true, vector_search = true }

-- The result cache: what this call's answer depends on, and what a write moves (see
-- tide.cachetags). A write outside a transaction invalidates as soon as it returns, before
-- the handler can answer; inside one, when the transaction ends.
-- The tags of a read: its table's, and those of the tables its embed items read.
local function read_tags(tbl, opts)
    return cachetags.read(tbl, opts.filters, builder.embedded_tables(opts.columns))
end

-- What a call's answer depends on, for the result cache: its tags (a list), or false when
-- it cannot say (db.sql, a function the policy does not describe); nil for a write. It goes
-- to C with the query itself (opts.cache), not by a call of its own.
local function cache_read(kind, tbl, opts)
    if READS[kind] then
        return read_tags(tbl, opts)
    elseif kind == "rpc" then
        return cachetags.rpc(tbl) or false
    elseif kind == "sql" then
        return false
    end
    return nil
end

local function cache_write(ctx, kind, tbl, opts, rows, patch)
    if READS[kind] or kind == "rpc" or kind == "sql" then
        return
    end
    local tags = cachetags.write(tbl, opts.filters, rows, patch, kind == "upsert")
    if ctx then
        local pending = ctx.invalidate
        for i = 1, #tags do
            pending[#pending + 1] = tags[i]
        end
        get_core().cache_skip()
    else
        get_core().cache_invalidate(unpack_tags(tags))
    end
end

local function run(ctx, kind, tbl, opts, sql, params, as_json, rows, patch)
    local q = { json = as_json or nil, kind = kind, table = tbl }
    local upstream
    if ctx then
        if not ctx.open then
            misuse("db." .. kind .. ": the transaction is already finished")
        end
        if opts.mode ~= nil then
            misuse("db." .. kind .. ": mode cannot be set inside a transaction")
        end
        if opts.as ~= nil then
            misuse("db." .. kind .. ": set as = \"service\" on db.transaction instead")
        end
        if opts.read_only ~= nil then
            misuse("db." .. kind .. ": read_only cannot be set inside a transaction")
        end
        upstream = ctx.upstream
        q.tx = ctx.handle
    else
        upstream = upstream_for(kind, tbl, opts.mode)
        if opts.as == "service" then
            q.as_service = true
        end
        local ro = opts.read_only
        if ro ~= nil then
            if type(ro) ~= "boolean" then
                misuse("db." .. kind .. ": read_only must be a boolean")
            end
            q.read_only = ro or nil
        end
    end
    local c = get_core()
    if c.cache_invalidate then
        q.cache = cache_read(kind, tbl, opts)
        local res, err = c.query(upstream, sql, params, q)
        cache_write(ctx, kind, tbl, opts, rows, patch)
        return res, err
    end
    return c.query(upstream, sql, params, q)
end

local function not_found(tbl)
    return errors.new("TIDE_NOT_FOUND", 404, "no matching row" .. (tbl and (" in " .. tbl) or ""))
end

local function multiple(tbl)
    return errors.new("TIDE_MULTIPLE_ROWS", 406, "more than one row matched a single-row request" ..
                      (tbl and (" on " .. tbl) or ""))
end

-- The write matched more rows than opts.max_affected: rolled back. err.affected = how many
-- (the DETAIL of SQLSTATE TD002, see tide.builder).
local function too_many(tbl, opts, detail)
    local n = tonumber(detail)
    local e = errors.new("TIDE_MAX_AFFECTED", 400, "the write would change " ..
                         tostring(n) .. " rows" .. (tbl and (" of " .. tbl) or "") ..
                         ", more than " .. tostring(opts.max_affected) .. "; nothing was changed")
    e.affected = n
    return e
end

-- The SQLSTATEs a refused write aborts with (tide.builder, tide_meta.write_refused): told
-- apart by code, never by message text.
local WRITE_MULTIPLE, WRITE_TOO_MANY = "TD001", "TD002"

-- Turns the json cell of a wrapped statement into the caller's result. list: the cell is a
-- JSON array of rows (tagged json.array_mt after decoding).
local function result(text, err, opts, tbl, list)
    if text == nil then
        if err == nil then
            -- tide.core answers nil for an SQL NULL cell; the wrappers never produce one.
            return nil, errors.new("TIDE_BAD_RESULT", 500, "the statement returned no JSON")
        end
        local code = type(err) == "table" and err.code
        if code == WRITE_MULTIPLE and opts.single then
            return nil, multiple(tbl)
        end
        if code == WRITE_TOO_MANY and opts.max_affected ~= nil then
            return nil, too_many(tbl, opts, err.details)
        end
        return nil, err
    end
    if type(text) ~= "string" then
        return nil, errors.new("TIDE_BAD_RESULT", 500, "tide.core returned a " .. type(text) ..
                               " for a json statement")
    end
    if opts.single then
        if text == "" then
            return nil, not_found(tbl)
        elseif text == "*" then
            return nil, multiple(tbl)
        end
    end
    local info
    if opts.counted then
        local n, total, pos = match(text, "^(%d+) ([%d%-]+) ()")
        if n == nil then
            return nil, errors.new("TIDE_BAD_RESULT", 500, "a counted statement returned no counts")
        end
        info = { n = tonumber(n), total = tonumber(total) }
        if opts.inserted then
            info.inserted, info.total = info.total, nil
        end
        text = sub(text, pos)
    end
    if opts.csv then
        return text, info
    end
    if opts.raw then
        return json_raw(text), info
    end
    local v, derr = json_decode(text)
    if v == nil then
        return nil, errors.new("TIDE_BAD_RESULT", 500, derr.message)
    end
    if list and not opts.single and type(v) == "table" and getmetatable(v) == nil then
        setmetatable(v, array_mt)
    end
    return v, info
end

local function check_table_name(kind, tbl)
    if type(tbl) ~= "string" then
        misuse("db." .. kind .. ": table name must be a string, got " .. type(tbl))
    end
end

-- A single row (table with string keys) becomes {row}; a list stays; {} is refused.
local function as_rows(kind, v)
    if type(v) ~= "table" then
        misuse("db." .. kind .. ": expected a row or a list of rows, got " .. type(v))
    end
    if v[1] ~= nil or getmetatable(v) == array_mt then
        return v
    end
    if next(v) == nil then
        misuse("db." .. kind .. ": nothing to write ({}); pass a row, a list of rows, or " ..
               "json.array{} for an empty list")
    end
    return { v }
end

---------------------------------------------------------------------------------------------
-- the operations (ctx first; exported without it below)

local ops = {}

-- Runs a wrapped statement whose json cell is a list of rows (reads and writes).
local function run_rows(ctx, kind, tbl, opts, sql, params, rows, patch)
    local text, err = run(ctx, kind, tbl, opts, sql, params, true, rows, patch)
    return result(text, err, opts, tbl, true)
end

local SCOPES = cachetags.SCOPES
local CACHE_OPTS = keyset({ "ttl", "scope", "stale_if_error" })

-- The cache key of a statement: its text and parameters, length-prefixed.
local function statement_key(sql, params)
    local parts = { "db\0", #sql, ":", sql }
    for i = 1, params.n or #params do
        local v = params[i]
        if v == nil or v == null then
            parts[#parts + 1] = "N"
        else
            v = tostring(v)
            parts[#parts + 1] = #v .. ":" .. v
        end
    end
    return concat(parts)
end

-- db.select with cache = {ttl, scope, stale_if_error}: the JSON text of the answer is kept in
-- the result cache under the caller's identity for the scope, the statement and its
-- parameters, tagged as the read is (tide.cachetags).
local function cached_select(tbl, opts, sql, params)
    local cc = opts.cache
    if type(cc) ~= "table" then
        misuse("db.select: cache must be a table {ttl = seconds, scope = ...}")
    end
    for k in pairs(cc) do
        if not CACHE_OPTS[k] then
            misuse("db.select: unknown cache option '" .. tostring(k) .. "'")
        end
    end
    local ttl, scope, sie = cc.ttl, cc.scope, cc.stale_if_error or 0
    if type(ttl) ~= "number" or ttl ~= ttl or ttl <= 0 then
        misuse("db.select: cache.ttl must be a number of seconds > 0")
    end
    if not SCOPES[scope] then
        misuse("db.select: cache.scope must be \"public\", \"role\", \"user\" or \"claims\"")
    end
    if type(sie) ~= "number" or sie ~= sie or sie < 0 then
        misuse("db.select: cache.stale_if_error must be a number of seconds >= 0")
    end
    local c = get_core()
    local key = statement_key(sql, params)
    local tags = read_tags(tbl, opts)
    local text, _, stale = c.cache_get(key, scope)
    if text ~= nil and not stale then
        c.cache_depend(unpack_tags(tags))
        return result(text, nil, opts, tbl, true)
    end
    local err
    text, err = run(nil, "select", tbl, opts, sql, params, true)
    if type(text) == "string" then
        c.cache_set(key, text, scope, ttl, 0, sie, tags)
    elseif sie > 0 and type(err) == "table" and type(err.status) == "number" and
           err.status >= 500 then
        local kept = c.cache_get(key, scope, sie)
        if kept ~= nil then
            return result(kept, nil, opts, tbl, true)
        end
    end
    return result(text, err, opts, tbl, true)
end

function ops.select(ctx, tbl, opts)
    check_table_name("select", tbl)
    opts = check_opts("select", opts)
    local sql, params = builder.select(tbl, opts)
    if opts.cache ~= nil then
        if ctx ~= nil then
            misuse("db.select: cache cannot be used inside a transaction")
        end
        return cached_select(tbl, opts, sql, params)
    end
    return run_rows(ctx, "select", tbl, opts, sql, params)
end

function ops.count(ctx, tbl, opts)
    check_table_name("count", tbl)
    opts = check_opts("count", opts)
    local sql, params = builder.count(tbl, opts)
    local res, err = run(ctx, "count", tbl, opts, sql, params, false)
    if not res then
        return nil, err
    end
    local row = type(res) == "table" and type(res.rows) == "table" and res.rows[1]
    local n = row and tonumber(row.count)
    if n == nil then
        return nil, errors.new("TIDE_BAD_RESULT", 500, "count returned no number")
    end
    return n
end

-- insert and upsert (kind): builder[kind](tbl, list, opts); an empty list makes no query.
local function write_rows(ctx, kind, tbl, list, opts)
    check_table_name(kind, tbl)
    opts = check_opts(kind, opts)
    list = as_rows(kind, list)
    if list[1] == nil then
        local info = opts.counted and { n = 0 } or nil
        if opts.raw then
            return json_raw("[]"), info
        end
        return setmetatable({}, array_mt), info
    end
    local sql, params = builder[kind](tbl, list, opts)
    return run_rows(ctx, kind, tbl, opts, sql, params, list)
end

function ops.insert(ctx, tbl, list, opts)
    return write_rows(ctx, "insert", tbl, list, opts)
end

function ops.upsert(ctx, tbl, list, opts)
    return write_rows(ctx, "upsert", tbl, list, opts)
end

function ops.update(ctx, tbl, patch, opts)
    check_table_name("update", tbl)
    opts = check_opts("update", opts)
    local sql, params = builder.update(tbl, patch, opts)
    return run_rows(ctx, "update", tbl, opts, sql, params, nil, patch)
end

function ops.delete(ctx, tbl, opts)
    check_table_name("delete", tbl)
    opts = check_opts("delete", opts)
    local sql, params = builder.delete(tbl, opts)
    return run_rows(ctx, "delete", tbl, opts, sql, params)
end

function ops.vector_search(ctx, tbl, column, vec, opts)
    check_table_name("vector_search", tbl)
    opts = check_opts("vector_search", opts)
    local sql, params = builder.vector_search(tbl, column, vec, opts)
    return run_rows(ctx, "vector_search", tbl, opts, sql, params)
end

-- The value may be json.null (a void function, or NULL).
function ops.rpc(ctx, fn, args, opts)
    if type(fn) ~= "string" then
        misuse("db.rpc: function name must be a string, got " .. type(fn))
    end
    opts = check_opts("rpc", opts)
    local sql, params = builder.rpc(fn, args)
    local text, err = run(ctx, "rpc", fn, opts, sql, params, true)
    return result(text, err, opts, fn, false)
end

function ops.sql(ctx, text, params, opts)
    if type(text) ~= "string" then
        misuse("db.sql: statement must be a string, got " .. type(text))
    end
    opts = check_opts("sql", opts)
    local p = { n = 0 }
    if params ~= nil then
        if type(params) ~= "table" then
            misuse("db.sql: params must be a list, got " .. type(params))
        end
        local n = params.n or #params
        for i = 1, n do
            local v = params[i]
            if v == nil then
                v = null
            end
            p[i] = builder.param_value(v, "db.sql parameter " .. i)
        end
        p.n = n
    end
    local fn = opts.rpc
    if fn ~= nil and type(fn) ~= "string" then
        misuse("db.sql: rpc must be the name of the function the statement calls")
    end
    local res, err = run(ctx, fn and "rpc" or "sql", fn, opts, text, p, false)
    if not res then
        return nil, err
    end
    return res.rows, res
end

---------------------------------------------------------------------------------------------
-- transactions

local active = setmetatable({}, { __mode = "k" })  -- coroutine -> open transaction

local NAMES = { "select", "count", "insert", "upsert", "update", "delete", "vector_search",
                "rpc", "sql" }

-- Returns the tx object handed to fn: the db API bound to ctx. Works with tx.select(...) and
-- tx:select(...).
local function new_tx(ctx)
    local tx = {}
    for i = 1, #NAMES do
        local op = ops[NAMES[i]]
        tx[NAMES[i]] = function(a, ...)
            if a == tx then
                return op(ctx, ...)
            end
            return op(ctx, a, ...)
        end
    end
    tx.transaction = function()
        misuse("db.transaction: nested transactions are not supported")
    end
    return tx
end

local function on_error(e)
    if type(e) == "table" then
        return e
    end
    return traceback(tostring(e), 2)
end

local function pack(...)
    return { n = select("#", ...), ... }
end

-- Runs fn(tx) in one transaction on one connection: BEGIN (with the request's claims and
-- role), fn, then COMMIT when fn returns normally and not (nil|false, err); ROLLBACK when
-- fn returns nil|false plus an error, or raises. Returns fn's results (true if it returned
-- none), or nil, err: fn's err, the COMMIT failure, or TIDE_INTERNAL (500) for a Lua error
-- in fn (its traceback goes to the log, not to the caller). An error raised as a table with
-- a code (error(err)) is returned as that table.
function _M.transaction(fn, opts)
    if type(fn) ~= "function" then
        misuse("db.transaction: expected a function, got " .. type(fn))
    end
    opts = check_opts("transaction", opts)
    local co = running() or "main"
    if active[co] then
        misuse("db.transaction: nested transactions are not supported")
    end
    local upstream = upstream_for("transaction", nil, opts.mode)
    local c = get_core()
    local as_service = opts.as == "service"
    -- tide.core keeps the open transaction on the request (one at a time): tx_begin returns
    -- a truthy handle, queries pass tx = handle, tx_end(commit) closes it.
    local handle, err = c.tx_begin(upstream, as_service)
    if not handle then
        return nil, err
    end
    local ctx = { handle = handle, upstream = upstream, open = true, invalidate = {} }
    active[co] = ctx
    local r = pack(xpcall(fn, on_error, new_tx(ctx)))
    active[co] = nil
    ctx.open = false

    if r[1] and not (not r[2] and r.n >= 3 and r[3] ~= nil) then
        local ok, cerr = c.tx_end(true)
        -- committed (or its outcome unknown): what it wrote is invalidated before the answer
        if ctx.invalidate[1] ~= nil and c.cache_invalidate then
            c.cache_invalidate(unpack(ctx.invalidate))
        end
        if not ok then
            return nil, cerr
        end
        if r.n == 1 then
            return true
        end
        return unpack(r, 2, r.n)
    end

    local ok, rerr = c.tx_end(false)
    if not ok then
        c.log("warn", "transaction rollback failed: " ..
              tostring(type(rerr) == "table" and rerr.message or rerr))
    end
    if r[1] then
        return nil, r[3]                -- fn returned nil|false, err
    end
    local e = r[2]
    if type(e) == "table" and e.code ~= nil then
        return nil, e
    end
    local rid = c.request_id and c.request_id() or nil
    c.log("error", "transaction rolled back after a Lua error: " .. tostring(e))
    return nil, errors.new("TIDE_INTERNAL", 500, "internal error",
                           rid and ("request " .. tostring(rid)) or nil)
end

---------------------------------------------------------------------------------------------
-- public functions (no ctx)

_M.select = function(tbl, opts) return ops.select(nil, tbl, opts) end
_M.count = function(tbl, opts) return ops.count(nil, tbl, opts) end
_M.insert = function(tbl, rows, opts) return ops.insert(nil, tbl, rows, opts) end
_M.upsert = function(tbl, rows, opts) return ops.upsert(nil, tbl, rows, opts) end
_M.update = function(tbl, patch, opts) return ops.update(nil, tbl, patch, opts) end
_M.delete = function(tbl, opts) return ops.delete(nil, tbl, opts) end
_M.vector_search = function(tbl, column, vec, opts)
    return ops.vector_search(nil, tbl, column, vec, opts)
end
_M.rpc = function(fn, args, opts) return ops.rpc(nil, fn, args, opts) end
_M.sql = function(text, params, opts) return ops.sql(nil, text, params, opts) end

-- Health of every upstream, as /health shows it: status, probe, breaker, pool; plus whether
-- a required upstream is down (tide.core.health; the state lives in C).
function _M.health()
    return get_core().health()
end

-- Connection pool counts per upstream (tide.core.pool_stats; pools live in C).
function _M.stats()
    return get_core().pool_stats()
end

return _M
