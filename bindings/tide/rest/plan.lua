-- tide/rest/plan.lua - turns a parsed /rest/v1 read (tide/rest/parse.lua) and the
-- table's schema-cache entry (tide/rest/schema.lua) into db.select options: every name
-- checked against the cache, every value left a parameter (tide.builder's rules).
--
--   plan.select(req, tinfo, cache) -> opts {columns, filters, order} | nil, err
--     err 42703 (400) "column <table>.<col> does not exist" for an unknown column (as
--     PostgREST 12 answers, from Postgres), PGRST100 for a cast outside tide.builder's list.
--     Embedded resources (rel(...)) become tide.builder embed items (tide/rest/embed.lua;
--     cache is the schema cache their relationships are looked up in).
--   plan.range(req, headers, max_rows) -> lower, upper (inclusive; nil = open) | nil, err
--     PostgREST's rules: Range: a-b (or a-) on GET, intersected with offset/limit; limit=0
--     asks for no rows; an empty range is 416 PGRST103; max_rows caps the size.
--
-- or/and trees become tide.builder filter tables. A negated group is pushed down to its leaves
-- (De Morgan: NOT (a OR b) = NOT a AND NOT b, exact under SQL's three-valued logic too), so the
-- builder's per-column NOT is all that is needed. Top-level conditions go into one flat filter
-- table when their columns are distinct (so the result cache can tag a read by its key column,
-- e.g. trips where id = 7), the rest into an "and" list.

local http = require "tide.http"
local builder = require "tide.builder"
local embed = require "tide.rest.embed"
local rerr = require "tide.rest.errors"

local ipairs, next, tonumber, type = ipairs, next, tonumber, type
local find, match, sub = string.find, string.match, string.sub

local MAX_IDENT = 63                    -- Postgres' NAMEDATALEN - 1
local MAX_ROW = 2 ^ 52                  -- offsets beyond are refused, range ends clamped

local _M = {}

local RESERVED = { ["or"] = true, ["and"] = true }

local function no_column(tinfo, col)
    return http.error(400, "42703", "column " .. tinfo.name .. "." .. col .. " does not exist")
end

local function check_col(tinfo, col)
    if tinfo.columns[col] == nil then
        return nil, no_column(tinfo, col)
    end
    if RESERVED[col] then
        return nil, http.error(400, "PGRST100", "tide cannot filter on a column named '" ..
                               col .. "' yet")
    end
    return col
end

-- The builder's operator table for a leaf, negated when neg.
-- PostgREST's operator names that tide.builder spells otherwise.
local BUILDER_OP = { cs = "contains", cd = "contained" }

local function leaf_ops(leaf, neg)
    local ops = { [BUILDER_OP[leaf.op] or leaf.op] = leaf.value }
    if neg then
        return { ["not"] = ops }
    end
    return ops
end

-- A node (negated when neg) as a builder filter table, or nil, err.
local function convert(node, tinfo, neg)
    if node.logic == nil then
        local ok, e = check_col(tinfo, node.col)
        if not ok then return nil, e end
        return { [node.col] = leaf_ops(node, node.negate ~= neg) }
    end
    local n = node.negate ~= neg
    local logic = node.logic
    if n then
        logic = logic == "or" and "and" or "or"
    end
    local items = {}
    for i = 1, #node.items do
        local t, e = convert(node.items[i], tinfo, n)
        if not t then return nil, e end
        items[i] = t
    end
    return { [logic] = items }
end

function _M.filters(list, tinfo)
    local flat, rest = {}, {}
    for i = 1, #list do
        local t, e = convert(list[i], tinfo, false)
        if not t then return nil, e end
        local k, v = next(t)
        if k == "and" then
            for j = 1, #v do rest[#rest + 1] = v[j] end
        elseif flat[k] == nil then
            flat[k] = v
        else
            rest[#rest + 1] = t
        end
    end
    if rest[1] ~= nil then
        flat["and"] = rest
    end
    if next(flat) == nil then
        return nil
    end
    return flat
end

-- The builder's column list for select items, or nil, err. cache: the schema cache, for
-- embedded resources (nil inside an embed: embeds nest one level).
local function columns(items, tinfo, cache)
    if items == nil then
        return tinfo.hidden and tinfo.names or "*"
    end
    local out = {}
    for i = 1, #items do
        local it = items[i]
        if it.embed then
            if cache == nil then
                return nil, http.error(400, "PGRST100", "embeds nest one level only")
            end
            local item, e = embed.item(it, tinfo, cache, columns)
            if item == nil then return nil, e end
            if item then out[#out + 1] = item end
        elseif it.star then
            if tinfo.hidden then
                for _, name in ipairs(tinfo.names) do out[#out + 1] = name end
            else
                out[#out + 1] = "*"
            end
        else
            if tinfo.columns[it.name] == nil then
                return nil, no_column(tinfo, it.name)
            end
            if it.cast ~= nil and not builder.CAST_TYPES[it.cast] then
                return nil, http.error(400, "PGRST100", "cannot cast to '" .. it.cast .. "'",
                                       nil, "tide casts to these types only: text, integer, " ..
                                       "bigint, numeric, boolean, date, timestamptz, uuid, " ..
                                       "json, jsonb and similar built-in types")
            end
            if it.alias ~= nil and (#it.alias > MAX_IDENT or find(it.alias, "\0", 1, true)) then
                return nil, http.error(400, "PGRST100", "alias '" .. sub(it.alias, 1, 20) ..
                                       "...' is not a valid name", "at most " .. MAX_IDENT ..
                                       " bytes, and no NUL byte")
            end
            if it.alias == nil and it.cast == nil then
                out[#out + 1] = it.name
            else
                out[#out + 1] = { it.name, as = it.alias, cast = it.cast }
            end
        end
    end
    return out
end

local function order(terms, tinfo)
    if terms == nil then
        return nil
    end
    local out = {}
    for i = 1, #terms do
        local t = terms[i]
        if tinfo.columns[t.name] == nil then
            return nil, no_column(tinfo, t.name)
        end
        out[i] = { t.name, desc = t.desc, nulls = t.nulls }
    end
    return out
end

function _M.select(req, tinfo, cache)
    local cols, e = columns(req.select, tinfo, cache)
    if not cols then return nil, e end
    if type(cols) == "table" and cols[1] == nil then   -- only rel(): rows of nothing
        return nil, http.error(400, "PGRST100", "the select shows no column",
                               "an empty embed (rel()) shows nothing; name a column too")
    end
    local filters
    if req.filters[1] ~= nil then
        filters, e = _M.filters(req.filters, tinfo)
        if e then return nil, e end
    end
    local ord
    ord, e = order(req.order, tinfo)
    if e then return nil, e end
    return { columns = cols, filters = filters, order = ord }
end

local range_error = rerr.range_not_satisfiable

function _M.range(req, headers, max_rows)
    local hl, hu = 0, nil
    local h = headers and headers.range
    if h ~= nil then
        local a, b = match(h, "^%s*(%d+)%-(%d*)%s*$")
        if a then
            hl, hu = tonumber(a), b ~= "" and tonumber(b) or nil
        end
    end
    local off = req.offset or 0
    if off < 0 then off = 0 end
    local limit = req.limit
    local lower, upper
    if limit == 0 then
        lower, upper = off, off - 1                  -- no rows, asked for explicitly
    else
        local lu = limit and (off + limit - 1) or nil
        lower = hl > off and hl or off
        upper = hu
        if lu ~= nil and (upper == nil or lu < upper) then
            upper = lu
        end
        if upper ~= nil and upper < lower then
            if hu ~= nil and hu < hl then
                return nil, range_error("The lower boundary must be lower than or equal to " ..
                                        "the upper boundary in the Range header.")
            end
            return nil, range_error("Limit should be greater than or equal to zero.")
        end
    end
    if max_rows and (upper == nil or upper - lower + 1 > max_rows) then
        upper = lower + max_rows - 1
    end
    if lower > MAX_ROW then
        return nil, range_error("The offset must be at most 2^52.")
    end
    if upper ~= nil and upper > MAX_ROW then
        upper = MAX_ROW
    end
    return lower, upper
end

return _M
