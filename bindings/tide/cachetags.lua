-- tide/cachetags.lua - the cache policy (policies/cache.lua), checked and normalized, and the
-- tags that reads depend on and writes invalidate (DESIGN: result cache).
--
-- Tags name what an answer was read from:
--   "trips"      the table as a whole: any write to trips moves it
--   "trips/7"    the row(s) whose key column (tables.trips.key) is 7
--   "trips/*"    rows of trips whose keys a write could not name
-- A read of trips filtered by key = 7 depends on "trips/7" and "trips/*"; any other read of
-- trips on "trips". A write with key 7 moves "trips" and "trips/7"; a write whose keys are
-- unknown moves "trips" and "trips/*". Tables listed in `depends` (visibility through another
-- table: a trip is visible through trip_collaborators) are depended on the same way, with the
-- same key value: their key column must hold the first table's key (trip_collaborators.trip_id
-- holds trips.id). Keys are compared as text, lower-cased: integers print without a fraction.
--
--   cachetags.policy()                         -> the normalized policy (raises when malformed)
--   cachetags.read(tbl, filters, embedded)     -> list of tags (embedded: the tables the read
--                                                 also reads through embeds, depended on whole
--                                                 with their own depends: builder.embedded_tables)
--   cachetags.rpc(fn)                          -> list of tags, or nil (undeclared: not cacheable)
--   cachetags.write(tbl, filters, rows, patch, upsert) -> list of tags
--   cachetags._set_policy(raw)                 -> for unit specs (nil: policies/cache.lua again)

local type, pairs, ipairs, tostring, error, pcall, require = type, pairs, ipairs, tostring,
    error, pcall, require
local floor, huge = math.floor, math.huge
local format, lower, find = string.format, string.lower, string.find
local concat, sort = table.concat, table.sort

local _M = {}

local SCOPES = { public = true, role = true, user = true, claims = true }
_M.SCOPES = SCOPES                   -- the cache scopes (tide.cache and db.select use them too)
local ROUTE_KEYS = { ttl = true, scope = true, stale_while_revalidate = true,
                     stale_if_error = true, vary = true }
local TABLE_KEYS = { key = true, depends = true }
local TOP_KEYS = { routes = true, tables = true, functions = true }
local MAX_KEYS = 64          -- more keys in one write: "table/*" instead

local function bad(msg)
    error("policies/cache.lua: " .. msg, 0)
end

local function check_keys(t, allowed, where)
    for k in pairs(t) do
        if not allowed[k] then
            bad(where .. ": unknown key '" .. tostring(k) .. "'")
        end
    end
end

local function seconds(v, where, default)
    if v == nil then
        return default
    end
    if type(v) ~= "number" or v ~= v or v < 0 or v == huge then
        bad(where .. " must be a number of seconds >= 0")
    end
    return v
end

local function ident(s)
    return type(s) == "string" and find(s, "^[%a_][%w_%.]*$") ~= nil
end

-- Checks and normalizes a raw policy table.
local function normalize(raw)
    if type(raw) ~= "table" then
        bad("must return a table")
    end
    check_keys(raw, TOP_KEYS, "the policy")
    local p = { routes = {}, tables = {}, functions = {} }
    for route, r in pairs(raw.routes or {}) do
        local where = "routes[\"" .. tostring(route) .. "\"]"
        if type(route) ~= "string" or not find(route, "^GET /") then
            bad(where .. ": only GET routes are cached (\"GET /path\")")
        end
        if type(r) ~= "table" then
            bad(where .. " must be a table")
        end
        check_keys(r, ROUTE_KEYS, where)
        local ttl = seconds(r.ttl, where .. ".ttl")
        if ttl == nil or ttl <= 0 then
            bad(where .. ".ttl must be a number of seconds > 0")
        end
        if not SCOPES[r.scope] then
            bad(where .. ".scope must be \"public\", \"role\", \"user\" or \"claims\"")
        end
        local vary = {}
        if r.vary ~= nil then
            if type(r.vary) ~= "table" or #r.vary > 4 then
                bad(where .. ".vary must be a list of at most 4 header names")
            end
            for i, h in ipairs(r.vary) do
                if type(h) ~= "string" or not find(h, "^[%w%-]+$") then
                    bad(where .. ".vary[" .. i .. "] must be a header name")
                end
                vary[i] = lower(h)
            end
        end
        p.routes[route] = { route = route, ttl = ttl, scope = r.scope,
                            swr = seconds(r.stale_while_revalidate, where ..
                                          ".stale_while_revalidate", 0),
                            sie = seconds(r.stale_if_error, where .. ".stale_if_error", 0),
                            vary = vary }
    end
    for tbl, t in pairs(raw.tables or {}) do
        local where = "tables." .. tostring(tbl)
        if not ident(tbl) or type(t) ~= "table" then
            bad(where .. " must be a table named by an identifier")
        end
        check_keys(t, TABLE_KEYS, where)
        if t.key ~= nil and not ident(t.key) then
            bad(where .. ".key must be a column name")
        end
        local deps = {}
        for i, d in ipairs(t.depends or {}) do
            if not ident(d) then
                bad(where .. ".depends[" .. i .. "] must be a table name")
            end
            deps[i] = d
        end
        p.tables[tbl] = { key = t.key, depends = deps }
    end
    for fn, list in pairs(raw.functions or {}) do
        if not ident(fn) or type(list) ~= "table" then
            bad("functions." .. tostring(fn) .. " must be a list of the tables it reads")
        end
        local l = {}
        for i, t in ipairs(list) do
            if not ident(t) then
                bad("functions." .. fn .. "[" .. i .. "] must be a table name")
            end
            l[i] = t
        end
        p.functions[fn] = l
    end
    return p
end

-- A deterministic text of the tables and functions sections (a reload that changes it drops
-- every entry: reads are tagged differently from then on).
local function fingerprint(p)
    local parts = {}
    for tbl, t in pairs(p.tables) do
        parts[#parts + 1] = "t:" .. tbl .. ":" .. tostring(t.key) .. ":" .. concat(t.depends, ",")
    end
    for fn, l in pairs(p.functions) do
        parts[#parts + 1] = "f:" .. fn .. ":" .. concat(l, ",")
    end
    sort(parts)
    return concat(parts, ";")
end

local policy, override

function _M.policy()
    if policy == nil then
        local raw = override
        if raw == nil then
            local ok, mod = pcall(require, "cache")
            if not ok then
                if find(tostring(mod), "module 'cache' not found", 1, true) then
                    mod = {}                     -- no policy file: nothing cached
                else
                    error(mod, 0)
                end
            end
            raw = mod
        end
        policy = normalize(raw)
        policy.fingerprint = fingerprint(policy)
    end
    return policy
end

function _M._set_policy(raw)
    override = raw
    policy = nil
end

-- The text of a key value for a tag, or nil when v is no single key.
local function key_text(v)
    local tv = type(v)
    if tv == "table" then
        local eq = v.eq
        if eq == nil then
            return nil
        end
        for k in pairs(v) do
            if k ~= "eq" then
                return nil
            end
        end
        return key_text(eq)
    elseif tv == "number" then
        if v == floor(v) and v > -2^53 and v < 2^53 then
            return format("%d", v)
        end
        return nil
    elseif tv == "string" then
        return lower(v)
    end
    return nil
end

local function add_table(tags, tbl, k)
    if k then
        tags[#tags + 1] = tbl .. "/" .. k
        tags[#tags + 1] = tbl .. "/*"
    else
        tags[#tags + 1] = tbl
    end
end

function _M.read(tbl, filters, embedded)
    local p = _M.policy()
    local t = p.tables[tbl]
    local k = t and t.key and type(filters) == "table" and key_text(filters[t.key]) or nil
    local tags = {}
    add_table(tags, tbl, k)
    if t then
        for _, d in ipairs(t.depends) do
            add_table(tags, d, k)
        end
    end
    -- Embedded rows are matched on foreign keys, not on a key value the filters name: any
    -- write to their table (or to what decides their visibility) may change the answer.
    for i = 1, embedded and #embedded or 0 do
        local e = embedded[i]
        tags[#tags + 1] = e
        local et = p.tables[e]
        if et then
            for _, d in ipairs(et.depends) do
                tags[#tags + 1] = d
            end
        end
    end
    return tags
end

function _M.rpc(fn)
    local l = _M.policy().functions[fn]
    if l == nil then
        return nil
    end
    local tags = {}
    for i = 1, #l do
        tags[i] = l[i]
    end
    return tags
end

function _M.write(tbl, filters, rows, patch, upsert)
    local t = _M.policy().tables[tbl]
    local key = t and t.key
    local tags = { tbl }
    if not key then
        tags[2] = tbl .. "/*"
        return tags
    end
    if patch ~= nil and type(patch) == "table" and patch[key] ~= nil then
        tags[2] = tbl .. "/*"                    -- the key itself moves
        return tags
    end
    if rows ~= nil then                          -- insert / upsert: keys from the rows
        local n = 0
        for i = 1, #rows do
            local v = rows[i][key]
            if v == nil and upsert then          -- may update a row of any key
                return { tbl, tbl .. "/*" }
            elseif v ~= nil then
                local k = key_text(v)
                n = n + 1
                if k == nil or n > MAX_KEYS then
                    return { tbl, tbl .. "/*" }
                end
                tags[#tags + 1] = tbl .. "/" .. k
            end
        end
        return tags                              -- new rows without a key: new keys
    end
    local k = type(filters) == "table" and key_text(filters[key]) or nil
    tags[2] = tbl .. "/" .. (k or "*")
    return tags
end

return _M
