-- tide/rest/embed.lua - resource embedding for /rest/v1 reads (PostgREST 12's
-- select=*,rel(...)): which relationship an embed names, found among the foreign keys of the
-- schema cache (tide/rest/schema.lua), and the tide.builder embed item that reads it.
--
--   embed.item(it, tinfo, cache, columns) -> builder embed item | false | nil, err
--     it      a parsed embed {name, alias, hint, select} (tide/rest/parse.lua)
--     tinfo   the base table's schema-cache entry; cache the whole schema cache
--     columns tide.rest.plan's column checker, columns(items, tinfo) -> builder list | nil, err,
--             run on the embedded table's entry (unknown column: 400 42703, bad cast: PGRST100)
--     false for rel(): an embed that shows nothing (PostgREST 12 leaves its key out)
--   embed.relationships(cache, tinfo, target) -> the candidates (for specs)
--
-- Relationships come from foreign keys between exposed tables (cache.tables; a hidden table,
-- or a key over a hidden column, relates to nothing):
--   to-one   the base table holds an FK to the target: the parent row as an object, or null
--            (many-to-one; one-to-one when the FK's columns are unique)
--   to-many  the target holds an FK to the base table: its rows as an array, [] when none
--            (one-to-many; one-to-one, an object or null, when the FK's columns are unique)
-- The target is a table name; a hint (rel!hint) keeps the candidates whose FK constraint is
-- named hint or whose single FK column on either side is hint (PostgREST's rules). For an FK
-- of a table to itself, rel(...) is the to-many direction and rel!col(...) keeps the FK whose
-- referencing column is col. No candidate: 400 PGRST200; several: 300 PGRST201 listing them
-- (details) with the rel!constraint spellings that pick each (hint), as PostgREST answers.
--
-- SQL: each embed is a correlated subquery in the base select's list (tide.builder's embed
-- item: identifiers from the schema cache only, quoted by the builder, no parameters), so the
-- embedded rows are read in the same statement under the caller's role and RLS filters them
-- like any row: a related row the caller may not see is absent (to-many) or null (to-one).
-- A cached read is tagged with the embedded tables (tide.db), so their writes invalidate it.
--
-- Bounds (enforced by the parser, 400 PGRST100): at most MAX_EMBEDS = 8 embedded resources per
-- request, one level deep (an embed inside an embed is refused); their columns count toward
-- the request's MAX_SELECT = 100 select items. So one statement has at most 8 subqueries.
--
-- Not supported (differences from PostgREST 12): many-to-many embedding through a junction
-- table; relationships of views (PostgREST infers them from view definitions) and computed
-- relationships (functions); a constraint or column name as the target (select=client_id(*),
-- deprecated since PostgREST 11.1), and so the to-one direction of a self-referencing FK;
-- nested and spread (...rel) embeds, !inner, and filters, order, limit/offset on embedded
-- resources (rel.col=eq.x, rel.order=...: 400 PGRST100); the fuzzy "Perhaps you meant" hint
-- of PGRST200 (null here). Embedded rows come in no particular order, as in PostgREST without
-- rel.order.

local http = require "tide.http"

local ipairs, type = ipairs, type
local concat = table.concat

local _M = {}

local MAX_IDENT = 63                    -- Postgres' NAMEDATALEN - 1

-- True when every name of list is a column of tinfo (visible: not hidden by the policy).
local function visible(list, tinfo)
    if type(list) ~= "table" or list[1] == nil then
        return false
    end
    for i = 1, #list do
        if tinfo.columns[list[i]] == nil then
            return false
        end
    end
    return true
end

-- Adds the relationship of fk to rels. to_one: the base table holds fk (else the target).
local function add(rels, tinfo, t, fk, to_one)
    local cols, fcols = fk.columns, fk.ref_columns    -- base side, target side
    local card = fk.unique and "one-to-one" or "many-to-one"
    if not to_one then
        cols, fcols = fk.ref_columns, fk.columns
        card = fk.unique and "one-to-one" or "one-to-many"
    end
    if not (visible(cols, tinfo) and visible(fcols, t)) or #cols ~= #fcols then
        return
    end
    rels[#rels + 1] = { table = t.name, cons = fk.name, cols = cols, fcols = fcols,
                        one = to_one or fk.unique == true, to_one = to_one,
                        cardinality = card, self = t.name == tinfo.name }
end

function _M.relationships(cache, tinfo, target)
    local rels = {}
    local t = cache.tables[target]
    if t == nil then
        return rels
    end
    local sch = cache.schema
    for _, fk in ipairs(tinfo.fkeys or {}) do
        if fk.ref_schema == sch and fk.ref_table == target then
            add(rels, tinfo, t, fk, true)
        end
    end
    for _, fk in ipairs(t.fkeys or {}) do
        if fk.ref_schema == sch and fk.ref_table == tinfo.name then
            add(rels, tinfo, t, fk, false)
        end
    end
    return rels
end

-- Whether rel is one the hint (or its absence) selects.
local function selected(rel, hint)
    local single = #rel.cols == 1
    if rel.self then
        if hint == nil then
            return not rel.to_one
        end
        return not rel.to_one and single and rel.fcols[1] == hint
    end
    if hint == nil then
        return true
    end
    return rel.cons == hint or (single and (rel.cols[1] == hint or rel.fcols[1] == hint))
end

local function describe(rel, base)
    return { cardinality = rel.cardinality, embedding = base .. " with " .. rel.table,
             relationship = rel.cons .. " using " .. base .. "(" .. concat(rel.cols, ", ") ..
                            ") and " .. rel.table .. "(" .. concat(rel.fcols, ", ") .. ")" }
end

-- The one relationship between tinfo and target that hint selects, or nil, err.
local function find(cache, tinfo, target, hint)
    local rels = {}
    for _, rel in ipairs(_M.relationships(cache, tinfo, target)) do
        if selected(rel, hint) then
            rels[#rels + 1] = rel
        end
    end
    local base = tinfo.name
    if rels[1] == nil then
        return nil, http.error(400, "PGRST200", "Could not find a relationship between '" ..
                               base .. "' and '" .. target .. "' in the schema cache",
                               "Searched for a foreign key relationship between '" .. base ..
                               "' and '" .. target .. (hint and ("' using the hint '" .. hint)
                               or "") .. "' in the schema '" .. cache.schema .. "', but no " ..
                               "matches were found.")
    elseif rels[2] ~= nil then
        local details, spellings = {}, {}
        for i, rel in ipairs(rels) do
            details[i] = describe(rel, base)
            spellings[i] = "'" .. target .. "!" .. rel.cons .. "'"
        end
        return nil, http.error(300, "PGRST201", "Could not embed because more than one " ..
                               "relationship was found for '" .. base .. "' and '" .. target ..
                               "'", details, "Try changing '" .. target .. "' to one of the " ..
                               "following: " .. concat(spellings, ", ") .. ". Find the " ..
                               "desired relationship in the 'details' key.")
    end
    return rels[1]
end

local function bad_alias(alias)
    return http.error(400, "PGRST100", "alias '" .. alias:sub(1, 20) .. "...' is not a valid " ..
                      "name", "at most " .. MAX_IDENT .. " bytes, and no NUL byte")
end

function _M.item(it, tinfo, cache, columns)
    local rel, err = find(cache, tinfo, it.name, it.hint)
    if not rel then
        return nil, err
    end
    if it.select[1] == nil then
        return false
    end
    local key = it.alias or it.name
    if #key > MAX_IDENT or key:find("\0", 1, true) then
        return nil, bad_alias(key)
    end
    local cols
    cols, err = columns(it.select, cache.tables[rel.table])
    if not cols then
        return nil, err
    end
    local on = {}
    for i = 1, #rel.cols do
        on[i] = { rel.fcols[i], rel.cols[i] }        -- {embedded column, base column}
    end
    return { embed = rel.table, on = on, one = rel.one, columns = cols, as = key }
end

return _M
