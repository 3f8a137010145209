-- tide/rest/schema.lua - /rest/v1's schema cache: the tables and views of the exposed
-- schemas (policies/exposure.lua), their columns (name, type, nullable, position) and foreign
-- keys (for embedding: tide/rest/embed.lua) and primary key (writes: upsert's default
-- conflict target and the Location of an insert), read from the catalog.
--
-- The policy: policies/exposure.lua is read and checked when this module loads, so when the
-- bundle loads (the /rest/v1 route modules require this one): a policy that does not load (a
-- syntax error, a half-written file, no file at all) or is malformed (a wrong type, a value out
-- of range, an unknown key) raises, and the bundle is rejected - a SIGHUP keeps the previous
-- bundle serving, `tide check` fails naming the file - like the routing, resilience, cache and
-- sandbox policies. Never a default in its place: a default would hide nothing.
--
-- When the catalog is read: lazily, on the first /rest/v1 request a bundle serves, through
-- tide.db (db.sql with as = "service", so the catalog query takes the routing and resilience
-- policies like any call, and reads every exposed relation whatever the caller's grants;
-- the caller's own rights and RLS still decide every data query). Not at bundle load: scripts
-- load inside tide_vm_new with no request context, where no database call is allowed, and a
-- bundle must load (and `tide check` pass) with the database down. The cache lives in this
-- module, so in the bundle's Lua state: a SIGHUP builds a new state that starts empty and
-- reads the catalog again on its first request - the way to publish a migration at once.
-- Between reloads, a name the cache does not know (a table or column added since) triggers
-- one re-read, at most every `refresh_after` seconds (counted from the start of the last read,
-- whether it succeeded or not), before the request is refused: a client cannot make tide read
-- the catalog more often than that.
-- `NOTIFY pgrst, 'reload schema'` (rest.notify_channel; runtime/channels.h) moves
-- core.schema_generation(), and so does each new LISTEN session (NOTIFYs sent while none was
-- up are lost): the next request that sees it moved re-reads the catalog, while requests
-- arriving during that read keep the cache they have. So a NOTIFY costs each worker one
-- catalog read, however many requests follow; a read that fails leaves the old cache serving
-- and the next request tries again.
--
-- The result cache's tags depend on it too: each read of the catalog tells tide.cachetags
-- every column's type (cachetags.learn; false for a nondeterministic collation), so a key a
-- client spelled "07" or in upper case is tagged as the row Postgres compares it with.
--
-- Single flight: at most one catalog read runs at a time in a bundle's Lua state (so per
-- worker process, and per bundle while an old one finishes its requests), however many
-- requests need one. A request that needs the catalog while a read runs does not start
-- another: with a cache it serves that (a generation move), and without one (the bundle's
-- first read) or for an unknown name it waits for the read (core.wait; the reader's
-- core.wake resumes it) and takes its outcome - its cache, or its error. A reader that dies
-- mid-read (a request stopped at its budget unwinds without finishing it) is noticed by its
-- dead coroutine (the runtime wakes the waiters when it stops a request): one waiter reads
-- instead. A wait gives up after MAX_WAIT seconds (503 TIDE_SCHEMA_CACHE, Retry-After 1).
--
-- Only relations that an unqualified name resolves to are kept (pg_table_is_visible under the
-- service role's search_path), since queries name tables unqualified: in practice the
-- exposed schema is `public`, and only the first schema of the list is served for now
-- (Accept-Profile is not implemented).
--
--   schema.policy() -> the checked policy: {schemas, max_rows, refresh_after,
--                                           max_insert_rows, hide, unfiltered_writes}, each
--                                           key present (left out: its default)
--   schema.check_policy(raw) -> that policy from a raw table (raises "policies/exposure.lua:
--                                           ..." when malformed)
--   schema.get() -> cache | nil, err        cache.tables[name] = { name, schema, kind,
--                                           columns = {name -> {name, type, nullable, pos}},
--                                           names = {column names in table order},
--                                           hidden = bool (the policy hides some columns),
--                                           fkeys = {{name, columns, ref_schema, ref_table,
--                                           ref_columns, unique}},  (unique: the columns
--                                           are a primary key or unique constraint: 1-to-1)
--                                           pkey = {primary key columns in key order} | nil
--                                           (nil too when one of them is hidden) }
--                                           cache.types[name][column] = type | false: every
--                                           relation's and column's, hidden ones too (for
--                                           tide.cachetags.learn)
--   cache.functions[name] = { overloads, ... } (the exposed schema's functions, pg_proc's
--                                           prokind 'f', trigger functions left out), each
--     { name, schema, oid, volatility = "v"|"s"|"i", retset = bool,
--       returns = "scalar"|"composite"|"void" (composite: a row type, or OUT/INOUT/TABLE
--                 arguments, as PostgREST decides),
--       columns/names/hidden (composite: the result's columns, shaped like a table's; a
--                 function returning rows of a table leaves out what the policy hides
--                 there, and is left out itself when the policy hides the whole table),
--       args = {{name, type (quoted, qualified: for casts), display (format_type: for
--                 messages), json (json or jsonb), required, variadic}} (input arguments
--                 in order),
--       callable = false when an argument has no name (PostgREST's rule, except a lone
--                 json/jsonb one) }
--   schema.refresh() -> true if re-read now (or a read in flight, waited for, succeeded;
--                                       nil, err on failure), false if too recent
--   schema.with_retry(try) -> try(cache)'s a, b | nil, err: a name the cache does not know
--                                       re-reads the catalog once (refresh), then try again
--   schema.with_table(name, check) -> tinfo, planned | nil, err: with_retry on one table
--                                       (404 PGRST205 when the cache does not hold it)
--   schema._set(loader, now, policy, generation, park) -> for unit specs; loader(schema_name,
--                                       what) answers the catalog's JSON text, what = nil
--                                       (tables) or "functions"; generation: a function
--                                       (default always 0); park: {wait, wake} in place of
--                                       core.wait / core.wake

local db = require "tide.db"
local cachetags = require "tide.cachetags"
local json = require "tide.json"
local http = require "tide.http"
local lazy = require "tide.lazy"
local rerr = require "tide.rest.errors"

local type, pairs, ipairs, pcall, require, error, tostring = type, pairs, ipairs, pcall, require,
    error, tostring
local find = string.find
local floor, huge = math.floor, math.huge
local co_running, co_status = coroutine.running, coroutine.status

local _M = {}

local get_core = lazy.require "tide.core"

local SQL = [[
SELECT coalesce(json_agg(json_build_object(
    'schema', n.nspname, 'name', c.relname, 'kind', c.relkind,
    'columns', (SELECT coalesce(json_agg(json_build_object(
                    'name', a.attname, 'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
                    'nullable', NOT a.attnotnull,
                    'deterministic', coalesce((SELECT co.collisdeterministic
                                               FROM pg_catalog.pg_collation co
                                               WHERE co.oid = a.attcollation), true))
                  ORDER BY a.attnum), '[]')
                FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
    'fkeys', (SELECT coalesce(json_agg(json_build_object(
                  'name', k.conname, 'ref_schema', rn.nspname, 'ref_table', rc.relname,
                  'columns', (SELECT json_agg(a.attname ORDER BY u.ord)
                              FROM unnest(k.conkey) WITH ORDINALITY u(num, ord)
                              JOIN pg_catalog.pg_attribute a
                                ON a.attrelid = k.conrelid AND a.attnum = u.num),
                  'ref_columns', (SELECT json_agg(a.attname ORDER BY u.ord)
                                  FROM unnest(k.confkey) WITH ORDINALITY u(num, ord)
                                  JOIN pg_catalog.pg_attribute a
                                    ON a.attrelid = k.confrelid AND a.attnum = u.num),
                  'unique', EXISTS (SELECT 1 FROM pg_catalog.pg_constraint q
                                    WHERE q.conrelid = k.conrelid AND q.contype IN ('p', 'u')
                                      AND q.conkey @> k.conkey AND q.conkey <@ k.conkey))
                  ORDER BY k.conname), '[]')
              FROM pg_catalog.pg_constraint k
              JOIN pg_catalog.pg_class rc ON rc.oid = k.confrelid
              JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
              WHERE k.conrelid = c.oid AND k.contype = 'f'),
    'pkey', (SELECT json_agg(a.attname ORDER BY u.ord)
             FROM pg_catalog.pg_constraint k
             CROSS JOIN LATERAL unnest(k.conkey) WITH ORDINALITY u(num, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = u.num
             WHERE k.conrelid = c.oid AND k.contype = 'p')
  ) ORDER BY c.relname), '[]')::text AS tables
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'm', 'f', 'p')
  AND pg_catalog.pg_table_is_visible(c.oid)]]

-- The functions of one schema. Argument types are spelled schema.name from pg_type (an array
-- type as its _name), so they cast unambiguously whatever the caller's search_path; the
-- result's columns come from the row type's attributes or from the OUT/INOUT/TABLE arguments.
local FUNCTIONS_SQL = [[
SELECT coalesce(json_agg(json_build_object(
    'name', p.proname, 'schema', n.nspname, 'oid', p.oid, 'volatility', p.provolatile,
    'retset', p.proretset, 'ndefaults', p.pronargdefaults,
    'returns', CASE WHEN t.oid = 'pg_catalog.void'::pg_catalog.regtype THEN 'void'
                    WHEN t.typtype = 'c' OR coalesce(p.proargmodes::text[] && '{t,b,o}', false)
                    THEN 'composite' ELSE 'scalar' END,
    'rettable', (SELECT c.relname FROM pg_catalog.pg_class c
                 WHERE c.oid = t.typrelid AND c.relnamespace = n.oid
                   AND c.relkind IN ('r', 'v', 'm', 'f', 'p')),
    'args', (SELECT coalesce(json_agg(json_build_object(
                 'name', coalesce(a.name, ''),
                 'type', pg_catalog.format('%I.%I', tn.nspname, ty.typname),
                 'display', pg_catalog.format_type(a.type, NULL),
                 'json', tn.nspname = 'pg_catalog' AND ty.typname IN ('json', 'jsonb'),
                 'variadic', coalesce(a.mode = 'v', false)) ORDER BY a.idx), '[]')
             FROM unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]), p.proargnames,
                         p.proargmodes) WITH ORDINALITY AS a(type, name, mode, idx)
             JOIN pg_catalog.pg_type ty ON ty.oid = a.type
             JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace
             WHERE coalesce(a.mode, 'i') IN ('i', 'b', 'v')),
    'columns', CASE WHEN t.typtype = 'c' THEN
                   (SELECT coalesce(json_agg(json_build_object(
                        'name', a.attname, 'type', pg_catalog.format_type(a.atttypid, a.atttypmod))
                        ORDER BY a.attnum), '[]')
                    FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)
               ELSE
                   (SELECT coalesce(json_agg(json_build_object(
                        'name', coalesce(o.name, ''), 'type', pg_catalog.format_type(o.type, NULL))
                        ORDER BY o.idx), '[]')
                    FROM unnest(p.proallargtypes, p.proargnames, p.proargmodes)
                         WITH ORDINALITY AS o(type, name, mode, idx)
                    WHERE o.mode IN ('o', 'b', 't'))
               END
  ) ORDER BY p.proname, p.oid), '[]')::text AS functions
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_type t ON t.oid = p.prorettype
WHERE n.nspname = $1 AND p.prokind = 'f' AND t.oid <> 'pg_catalog.trigger'::pg_catalog.regtype]]

---------------------------------------------------------------------------------------------
-- the policy

-- The keys of policies/exposure.lua, each with its default.
local DEFAULTS = { schemas = { "public" }, max_rows = 1000, refresh_after = 5,
                   max_insert_rows = 1000, hide = {}, unfiltered_writes = {} }

local function bad(msg)
    error("policies/exposure.lua: " .. msg, 0)
end

local function whole(v, key)
    if type(v) ~= "number" or v ~= floor(v) or v < 1 or v == huge then
        bad(key .. " must be a whole number >= 1, not " .. tostring(v))
    end
    return v
end

-- A list of strings (each non-empty) as a new table, or raises naming key.
local function name_list(v, key, nonempty)
    if type(v) ~= "table" then
        bad(key .. " must be a list of names")
    end
    local out, n = {}, 0
    for _ in pairs(v) do n = n + 1 end
    for i = 1, n do
        if type(v[i]) ~= "string" or v[i] == "" then
            bad(key .. " must be a list of names")
        end
        out[i] = v[i]
    end
    if nonempty and n == 0 then
        bad(key .. " must name at least one")
    end
    return out
end

-- table name -> check(value, "key.name") over a table, as a new table.
local function per_table(v, key, check)
    if type(v) ~= "table" then
        bad(key .. " must be a table of table names")
    end
    local out = {}
    for name, x in pairs(v) do
        if type(name) ~= "string" then
            bad(key .. " must be a table of table names")
        end
        out[name] = check(x, key .. "." .. name)
    end
    return out
end

local function hidden_columns(v, key)
    if v == true then
        return true
    end
    if type(v) ~= "table" then
        bad(key .. " must be true (the whole table) or a list of column names")
    end
    return name_list(v, key)
end

local function allowed(v, key)
    if v ~= true then
        bad(key .. " must be true")
    end
    return true
end

-- The checked policy from raw (see the header); raises naming the key on anything malformed,
-- so a typo never leaves a table or column exposed.
local function check_policy(raw)
    if type(raw) ~= "table" then
        bad("must return a table")
    end
    for k in pairs(raw) do
        if DEFAULTS[k] == nil then
            bad("unknown key '" .. tostring(k) .. "'")
        end
    end
    local function value(k)
        local v = raw[k]
        if v == nil then
            return DEFAULTS[k]
        end
        return v
    end
    local r = value("refresh_after")
    if type(r) ~= "number" or r ~= r or r < 0 or r == huge then
        bad("refresh_after must be a number of seconds >= 0, not " .. tostring(r))
    end
    return {
        schemas = name_list(value("schemas"), "schemas", true),
        max_rows = whole(value("max_rows"), "max_rows"),
        max_insert_rows = whole(value("max_insert_rows"), "max_insert_rows"),
        refresh_after = r,
        hide = per_table(value("hide"), "hide", hidden_columns),
        unfiltered_writes = per_table(value("unfiltered_writes"), "unfiltered_writes", allowed),
    }
end
_M.check_policy = check_policy

-- policies/exposure.lua, read and checked now: when this module loads, the bundle loads.
local function load_policy()
    local ok, raw = pcall(require, "exposure")
    if not ok then
        if find(tostring(raw), "module 'exposure' not found", 1, true) then
            bad("not found: /rest/v1 needs it (the exposed schemas, and what is hidden)")
        end
        error(raw, 0)
    end
    return check_policy(raw)
end

local POLICY = load_policy()

local policy_override, loader_override, now_override, generation_override, park_override

local function policy()
    return policy_override or POLICY
end
_M.policy = policy

---------------------------------------------------------------------------------------------
-- the cache

local cache, cache_gen         -- the cache, and the generation it was read at
local flight                   -- the read in flight: {co (its reader), done, err} or nil
local read_at                  -- when the last read started (refresh_after counts from it)

-- How long a request waits for someone else's read (in slices: each re-checks the reader).
local WAIT_SLICE = 1
local MAX_WAIT = 60
-- How many readers in a row may die under one waiting request before it gives up.
local MAX_ROUNDS = 3

local function now()
    if now_override then
        return now_override()
    end
    return get_core().now()
end

local function zero() return 0 end

-- A spec's loader without a park: nothing ever waits (a wait would be a bug in the spec).
local NO_PARK = {
    wait = function()
        error("tide.rest.schema: a read is in flight and the spec gave no park", 2)
    end,
    wake = function() end,
}

-- core.wait(seconds) -> "woken" | "timeout" | "aborted", and core.wake() (or the spec's).
local function wait(seconds)
    if park_override then
        return park_override.wait(seconds)
    end
    return get_core().wait(seconds)
end

local function wake()
    if park_override then
        return park_override.wake()
    end
    return get_core().wake()
end

local function generation()
    if generation_override then
        return generation_override()
    end
    return get_core().schema_generation()
end

-- The catalog as JSON text, or nil, err.
local function read_catalog(schema_name)
    if loader_override then
        return loader_override(schema_name)
    end
    local rows, err = db.sql(SQL, { schema_name }, { as = "service" })
    if not rows then
        return nil, err
    end
    return rows[1] and rows[1].tables
end

-- The schema's functions as JSON text, or nil, err.
local function read_functions(schema_name)
    if loader_override then
        return loader_override(schema_name, "functions")
    end
    local rows, err = db.sql(FUNCTIONS_SQL, { schema_name }, { as = "service" })
    if not rows then
        return nil, err
    end
    return rows[1] and rows[1].functions
end

-- One function's entry (see the header), or nil when it returns rows of a table the policy
-- hides whole; columns the policy hides in that table are left out of its result.
local function build_function(f, hide)
    local h = type(f.rettable) == "string" and hide[f.rettable]
    if h == true then
        return nil
    end
    local hidden = {}
    if type(h) == "table" then
        for _, c in ipairs(h) do hidden[c] = true end
    end
    local args, nargs, unnamed = f.args, #f.args, 0
    for i, a in ipairs(args) do
        a.required = i <= nargs - f.ndefaults
        if a.name == "" then unnamed = unnamed + 1 end
    end
    f.callable = unnamed == 0 or (nargs == 1 and args[1].json)
    local listed = f.columns or {}
    local cols, names = {}, {}
    for i, c in ipairs(listed) do
        -- an unnamed OUT argument cannot be named in a query: left out like a hidden column
        if c.name ~= "" and not hidden[c.name] then
            cols[c.name] = { name = c.name, type = c.type, nullable = true, pos = i }
            names[#names + 1] = c.name
        end
    end
    f.columns, f.names, f.hidden = cols, names, #names < #listed
    return f
end

-- name -> list of overloads from the catalog's JSON text, or nil.
local function build_functions(text, p)
    local list = json.decode(text)
    if type(list) ~= "table" then
        return nil
    end
    local hide = p.hide or {}
    local out = {}
    for _, raw in ipairs(list) do
        local f = build_function(raw, hide)
        if f then
            local l = out[f.name]
            if l == nil then
                l = {}
                out[f.name] = l
            end
            l[#l + 1] = f
        end
    end
    return out
end

-- Builds the cache from the catalog's JSON text.
local function build(text, p)
    local list = json.decode(text)
    if type(list) ~= "table" then
        return nil, http.error(500, "TIDE_SCHEMA_CACHE", "could not read the schema cache")
    end
    local hide = p.hide or {}
    local tables, types = {}, {}
    for _, t in ipairs(list) do
        -- every column's type for the result cache's tags, hidden ones too (tags only)
        local ty = {}
        for _, c in ipairs(t.columns) do
            ty[c.name] = c.deterministic ~= false and type(c.type) == "string" and c.type
        end
        types[t.name] = ty
        local h = hide[t.name]
        if h ~= true then
            local hidden = {}
            if type(h) == "table" then
                for _, c in ipairs(h) do hidden[c] = true end
            end
            local cols, names, any_hidden = {}, {}, false
            for i, c in ipairs(t.columns) do
                if hidden[c.name] then
                    any_hidden = true
                else
                    cols[c.name] = { name = c.name, type = c.type, nullable = c.nullable, pos = i }
                    names[#names + 1] = c.name
                end
            end
            -- a key with a hidden column is not shown either (it would show up in Location)
            local pkey = type(t.pkey) == "table" and t.pkey[1] ~= nil and t.pkey or nil
            for _, c in ipairs(pkey or {}) do
                if hidden[c] then pkey = nil break end
            end
            tables[t.name] = { name = t.name, schema = t.schema, kind = t.kind, columns = cols,
                               names = names, hidden = any_hidden, fkeys = t.fkeys, pkey = pkey }
        end
    end
    return { schema = p.schemas[1], tables = tables, types = types }
end

-- The read in flight, or nil. A read whose reader's coroutine is dead (a request stopped at
-- its budget unwinds without finishing it) is dropped, so someone else reads.
local function in_flight()
    local f = flight
    if f ~= nil and f.co ~= nil and co_status(f.co) == "dead" then
        flight = nil
        return nil
    end
    return f
end

local function busy()
    local e = http.error(503, "TIDE_SCHEMA_CACHE", "the schema cache is being read; retry")
    e.retry_after = 1
    return e
end

-- Parks the request until read f ends or its reader dies. Returns true, or nil, err when the
-- request gave up: its client went away, or MAX_WAIT seconds passed.
local function await(f)
    for _ = 1, MAX_WAIT / WAIT_SLICE do
        if f.done or in_flight() ~= f then
            return true
        end
        if wait(WAIT_SLICE) == "aborted" then
            return nil, busy()
        end
    end
    return nil, busy()
end

-- Reads the catalog for generation g (taken before the read: a move during it is seen by
-- the next request) as the one read in flight; wakes the requests waiting for it. Returns
-- the new cache, or nil, err (the cache stays as it was).
local function load(g)
    local f = { co = co_running() }
    flight, read_at = f, now()
    local p = policy()
    local text, err = read_catalog(p.schemas[1])
    local c
    if type(text) ~= "string" then
        err = err or http.error(500, "TIDE_SCHEMA_CACHE", "could not read the schema cache")
    else
        c, err = build(text, p)
    end
    if c then
        local ftext
        ftext, err = read_functions(p.schemas[1])
        c.functions = type(ftext) == "string" and build_functions(ftext, p)
        if not c.functions then
            c = nil
            err = err or http.error(500, "TIDE_SCHEMA_CACHE", "could not read the schema cache")
        end
    end
    if flight == f then flight = nil end
    f.done, f.err = true, err
    if c and (cache == nil or g >= cache_gen) then
        cache, cache_gen = c, g
        cachetags.learn(c.types)
    end
    wake()
    if not c then
        return nil, err
    end
    return cache
end

function _M.get()
    for _ = 1, MAX_ROUNDS do
        local g = generation()
        if cache ~= nil then
            if g == cache_gen or in_flight() then
                return cache
            end
            return load(g) or cache
        end
        local f = in_flight()
        if f == nil then
            return load(g)
        end
        local ok, err = await(f)        -- the bundle's first read: nothing to serve meanwhile
        if not ok then
            return nil, err
        end
        if f.done and cache == nil then
            return nil, f.err
        end
    end
    return nil, busy()
end

function _M.refresh()
    for _ = 1, MAX_ROUNDS do
        local f = in_flight()
        if f == nil then
            if read_at and now() - read_at < policy().refresh_after then
                return false
            end
            local c, err = load(generation())
            if not c then
                return nil, err
            end
            return true
        end
        local ok, err = await(f)        -- someone else's read: its outcome is ours
        if not ok then
            return nil, err
        end
        if f.done then
            if f.err ~= nil then
                return nil, f.err
            end
            return true
        end
    end
    return nil, busy()
end

-- Runs try(cache) -> a, b on success (a ~= nil) | nil, err, stale. When try fails with stale
-- set (a name the cache may not know: added since it was read), the catalog is re-read once -
-- at most every refresh_after seconds (refresh), so a client cannot make tide read it more
-- often - and try runs again on the new cache. Returns a, b, or nil, err: try's last error,
-- or the re-read's own when it failed. The one place reads, writes and functions retry.
function _M.with_retry(try)
    local c, err = _M.get()
    if not c then return nil, err end
    local a, b, stale = try(c)
    if a ~= nil or not stale then
        return a, b
    end
    local fresh, ferr = _M.refresh()
    if fresh == nil then return nil, ferr end
    if not fresh then return nil, b end      -- read too recently: try's error stands
    a, b = try(_M.get())
    return a, b
end

-- with_retry on the table name: check(tinfo, cache) -> planned | nil, err, stale runs on its
-- entry; a table the cache does not hold is 404 PGRST205, and stale. Returns tinfo, planned
-- or nil, err.
function _M.with_table(name, check)
    return _M.with_retry(function(c)
        local tinfo = c.tables[name]
        if not tinfo then
            return nil, rerr.table_not_found(c.schema, name), true
        end
        local planned, err, stale = check(tinfo, c)
        if planned ~= nil then
            return tinfo, planned
        end
        return nil, err, stale
    end)
end

function _M._set(loader, clock, p, gen, park)
    loader_override, now_override = loader, clock
    park_override = park or (loader ~= nil and NO_PARK or nil)
    policy_override = p ~= nil and check_policy(p) or nil
    generation_override = gen or (loader ~= nil and zero or nil)
    cache, cache_gen, flight, read_at = nil, nil, nil, nil
    cachetags.learn(nil)
end

return _M
