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
-- holds trips.id).
--
-- One tag per row, whatever the spelling: "trips/7" names the row by the text Postgres prints
-- for its key, lower-cased (what tide's writes and the NOTIFY trigger of db/migrations/007
-- send), never by the text a client wrote. Postgres reads bigint 7 as "07", "+7" or " 7", and
-- a uuid in upper case, without hyphens or in braces, so a read tagged by the client's text
-- would outlive the writes to its row. A key value becomes a row tag only in a form tide is
-- sure of, by the key column's type when it is known (learn: the /rest/v1 schema cache tells):
--   smallint, integer, bigint  white space, a sign, leading zeros -> the decimal text; a Lua
--                              number without a fraction; nothing else (0x1F and 1_000, which
--                              Postgres 16 reads too, are left alone)
--   uuid                       any case, braces, a hyphen after any group of four digits or
--                              none -> lower-case 8-4-4-4-12
--   text, character varying    the text itself, lower-cased, when it is ASCII (Postgres may
--                              lower-case other letters differently); a nondeterministic
--                              collation (equal texts of other bytes) is learned as false
--   any other type             none: numeric 1 and 1.0, timestamps, dates, char(n), domains
--                              print equal values differently
-- With the type unknown (a script's read before /rest/v1 read the catalog, a table it does not
-- expose), only what integer, uuid and text columns all print as it is: a Lua integer, a plain
-- decimal ("7", "-7"), a hyphenated uuid (a numeric key column is the exception docs/cache.md
-- warns of). Anything else - another spelling, a type or a value tide cannot be sure of - tags
-- the read with the whole table and the write with "table/*": correctness before the hit
-- rate. Tags that change when a type is learned stay safe: every write moves the table, and
-- every keyed read depends on "table/*".
--
--   cachetags.policy()                         -> the normalized policy (raises when malformed)
--   cachetags.read(tbl, filters, embedded)     -> list of tags (embedded: the tables the read
--                                                 also reads through embeds, depended on whole
--                                                 with their own depends: builder.embedded_tables)
--   cachetags.rpc(fn)                          -> list of tags, or nil (undeclared: not cacheable)
--   cachetags.write(tbl, filters, rows, patch, upsert) -> list of tags
--   cachetags.learn(types)                     types[tbl][column] = the column's type as
--                                                 format_type() prints it ("bigint"), or false
--                                                 (tide must not canonicalise it); replaces
--                                                 what was learned (nil: nothing known)
--   cachetags._set_policy(raw)                 -> for unit specs (nil: policies/cache.lua again)

local type, pairs, ipairs, tostring, error, pcall, require, unpack = type, pairs, ipairs,
    tostring, error, pcall, require, unpack
local floor, huge = math.floor, math.huge
local format, lower, find, match, byte, char, sub, gsub = string.format, string.lower,
    string.find, string.match, string.byte, string.char, string.sub, string.gsub
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

-- The key columns' types, as learn() was told them: types[tbl][column] = type | false.
local learned

function _M.learn(types)
    if types == nil then
        learned = nil
        return
    end
    if type(types) ~= "table" then
        error("cachetags.learn: types must be a table (or nil)", 2)
    end
    local copy = {}
    for tbl, cols in pairs(types) do
        if type(tbl) ~= "string" or type(cols) ~= "table" then
            error("cachetags.learn: types[table] must be a table of column types", 2)
        end
        local c = {}
        for col, ty in pairs(cols) do
            if type(col) ~= "string" or (type(ty) ~= "string" and ty ~= false) then
                error("cachetags.learn: a column's type must be a string or false", 2)
            end
            c[col] = ty
        end
        copy[tbl] = c
    end
    learned = copy
end

-- The type of tbl's column col: a string, false (not to canonicalise) or nil (unknown).
local function column_type(tbl, col)
    local t = learned and learned[tbl]
    if t == nil then
        return nil
    end
    return t[col]
end

local INT_TYPES = { smallint = true, integer = true, bigint = true }

-- "int", "uuid", "text", or nil (a type tide does not canonicalise).
local function type_class(ty)
    if INT_TYPES[ty] then
        return "int"
    elseif ty == "uuid" then
        return "uuid"
    elseif ty == "text" or ty == "character varying" or
           find(ty, "^character varying%(%d+%)$") then
        return "text"
    end
    return nil
end

-- The decimal text of what int2in/int4in/int8in read s as (white space around - the six
-- bytes isspace() knows -, a sign, leading zeros), or nil for any other spelling.
local function int_text(s)
    local sign, digits = match(s, "^[ \t\n\v\f\r]*([+-]?)(%d+)[ \t\n\v\f\r]*$")
    if digits == nil then
        return nil
    end
    digits = gsub(digits, "^0+", "")
    if digits == "" then
        return "0"
    end
    return sign == "-" and "-" .. digits or digits
end

-- The lower-case 8-4-4-4-12 text of what uuid_in reads s as (hex digits of any case, in
-- braces or not, one hyphen allowed after each group of four but the last), or nil.
local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

local function uuid_text(s)
    local n = #s
    if n == 36 and find(s, UUID) then   -- the usual spelling, in one match
        return lower(s)
    end
    if n < 32 or n > 41 then            -- 32 digits, at most 7 hyphens and 2 braces
        return nil
    end
    local i, last = 1, n
    if byte(s, 1) == 123 then           -- {
        if byte(s, n) ~= 125 then       -- }
            return nil
        end
        i, last = 2, n - 1
    end
    local hex, d, hyphen_ok = {}, 0, false
    while i <= last do
        local c = byte(s, i)
        if c == 45 then                 -- -
            if not hyphen_ok then
                return nil
            end
            hyphen_ok = false
        elseif (c >= 48 and c <= 57) or (c >= 97 and c <= 102) or (c >= 65 and c <= 70) then
            d = d + 1
            if d > 32 then
                return nil
            end
            hex[d] = c
            hyphen_ok = d % 4 == 0 and d < 32
        else
            return nil
        end
        i = i + 1
    end
    if d ~= 32 then
        return nil
    end
    local h = lower(char(unpack(hex)))
    return sub(h, 1, 8) .. "-" .. sub(h, 9, 12) .. "-" .. sub(h, 13, 16) .. "-" ..
           sub(h, 17, 20) .. "-" .. sub(h, 21, 32)
end

-- The text of a key value for a tag, or nil when v is no single key, or not one tide can
-- name the row of for certain (see the header). ty: the key column's type (nil: unknown).
local function key_text(v, ty)
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
        return key_text(eq, ty)
    end
    local class = ty and type_class(ty) or nil
    if ty ~= nil and class == nil then
        return nil                                   -- a type tide is not sure of
    end
    if tv == "number" then
        if (class == nil or class == "int") and v == floor(v) and v > -2^53 and v < 2^53 then
            return format("%d", v)
        end
        return nil
    elseif tv ~= "string" then
        return nil
    elseif class == "int" then
        return int_text(v)
    elseif class == "uuid" then
        return uuid_text(v)
    elseif class == "text" then
        if find(v, "[\128-\255]") then
            return nil
        end
        return lower(v)
    end
    -- type unknown: only a spelling every type tide knows prints as it is
    local c = int_text(v)
    if c ~= nil then
        return c == v and c or nil
    end
    c = uuid_text(v)
    if c ~= nil and c == lower(v) then
        return c
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
    local k = t and t.key and type(filters) == "table" and
              key_text(filters[t.key], column_type(tbl, t.key)) or nil
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
    local ty = column_type(tbl, key)
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
                local k = key_text(v, ty)
                n = n + 1
                if k == nil or n > MAX_KEYS then
                    return { tbl, tbl .. "/*" }
                end
                tags[#tags + 1] = tbl .. "/" .. k
            end
        end
        return tags                              -- new rows without a key: new keys
    end
    local k = type(filters) == "table" and key_text(filters[key], ty) or nil
    tags[2] = tbl .. "/" .. (k or "*")
    return tags
end

return _M
