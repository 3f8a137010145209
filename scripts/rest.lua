-- scripts/rest.lua - /rest/v1: the PostgREST API (read side) over tide.db, so the routing,
-- resilience and cache policies and RLS apply to it as to every other route.
--
--   GET /rest/v1/:table   select= (with embedded resources one level deep: rel(...),
--                         alias:rel!hint(...); scripts/_rest_embed.lua),
--                         filters (eq neq gt gte lt lte like ilike is in, not.),
--                         or=/and= trees, order=, limit=/offset=, Range/Range-Unit: items,
--                         Prefer: count=exact (planned/estimated count exactly too),
--                         Accept: application/json | application/vnd.pgrst.object+json |
--                         text/csv (_rest_csv.lua)
--   GET|POST /rest/v1/rpc/:fn   functions (scripts/_rest_rpc.lua)
--
-- The grammar is scripts/_rest_parse.lua, name checks and the range rules _rest_plan.lua, the
-- schema cache _rest_schema.lua (read lazily on the first request of a bundle; see there why),
-- what is exposed policies/exposure.lua. One statement per request: the rows as Postgres'
-- JSON (never decoded here), their number and, with count=exact, the total from the same
-- snapshot. Answers follow PostgREST 12: Content-Range "0-9/*" (or "/N" with a count), 206
-- when a count shows the answer is partial, 416 PGRST103 for a range past the end, 406
-- PGRST116 when one object was asked for and the rows are not exactly one, 404 PGRST205 for a
-- table the schema cache does not hold (PostgREST 13's code; 12 passed Postgres' 42P01 on),
-- 400 42703 for an unknown column, 400 PGRST100 for what does not parse.

local db = require "tide.db"
local http = require "tide.http"
local json = require "tide.json"
local parse = require "_rest_parse"
local plan = require "_rest_plan"
local csv = require "_rest_csv"
local schema = require "_rest_schema"
local rpc = require "_rest_rpc"

local tonumber, tostring = tonumber, tostring
local gmatch, lower, match, sub = string.gmatch, string.lower, string.match, string.sub
local sort = table.sort
local json_raw = json.raw

local JSON = "application/json; charset=utf-8"
local OBJECT = "application/vnd.pgrst.object+json; charset=utf-8"

local MEDIA = {
    ["*/*"] = "json", ["application/*"] = "json", ["application/json"] = "json",
    ["application/vnd.pgrst.object+json"] = "object", ["application/vnd.pgrst.object"] = "object",
    ["text/csv"] = "csv",
}

-- The answer's shape for an Accept header ("json", "object" or "csv"), or nil, 406 PGRST107.
local function negotiate(accept)
    if accept == nil or accept == "" then
        return "json"
    end
    local offers = {}
    for item in gmatch(accept, "[^,]+") do
        local mt = lower(match(item, "^%s*([^;%s]*)") or "")
        local q = tonumber(match(item, ";%s*q=([%d%.]+)")) or 1
        offers[#offers + 1] = { mt = mt, q = q, i = #offers }
    end
    sort(offers, function(a, b)
        if a.q ~= b.q then return a.q > b.q end
        return a.i < b.i
    end)
    for i = 1, #offers do
        local m = offers[i].q > 0 and MEDIA[offers[i].mt]
        if m then
            return m
        end
    end
    return nil, http.error(406, "PGRST107", "None of these media types are available: " ..
                           accept)
end

-- Prefer: count=exact|planned|estimated -> true (all counted exactly for now).
local function wants_count(prefer)
    local c = prefer ~= nil and match(prefer, "count=(%a+)")
    return c == "exact" or c == "planned" or c == "estimated"
end

local function table_not_found(sch, name)
    return http.error(404, "PGRST205", "Could not find the table '" .. sch .. "." .. name ..
                      "' in the schema cache")
end

-- The table's schema-cache entry and the select options, re-reading the catalog once (rate
-- limited) when a name is unknown. Returns tinfo, opts or nil, err.
local function prepare(name, req)
    local cache, err = schema.get()
    if not cache then return nil, err end
    for attempt = 1, 2 do
        local tinfo = cache.tables[name]
        local opts
        if tinfo then
            opts, err = plan.select(req, tinfo, cache)
            if opts then
                return tinfo, opts
            end
        else
            err = table_not_found(cache.schema, name)
        end
        if attempt == 1 then
            local fresh, rerr = schema.refresh()
            if fresh == nil then return nil, rerr end
            if not fresh then break end
            cache = schema.get()
        end
    end
    return nil, err
end

local function read(req)
    local name = req.params.table
    local headers = req.headers or {}
    local shape, err = negotiate(headers.accept)
    if not shape then return nil, err end
    local q
    q, err = parse.request(req.query_string)
    if not q then return nil, err end

    local tinfo, opts = prepare(name, q)
    if not tinfo then return nil, opts end
    local lower_b, upper_b = plan.range(q, headers, schema.policy().max_rows)
    if not lower_b then return nil, upper_b end
    if upper_b ~= nil then
        opts.limit = upper_b - lower_b + 1
    end
    if lower_b > 0 then
        opts.offset = lower_b
    end
    local count = wants_count(headers.prefer)
    opts.counted, opts.total, opts.raw = true, count or nil, true
    if shape == "csv" then csv.select_opts(opts) end

    local body, info = db.select(tinfo.name, opts)
    if not body then return nil, info end

    local n, total = info.n, info.total
    local last = lower_b + n - 1
    local range = ((total ~= 0 and lower_b <= last) and (lower_b .. "-" .. last) or "*") ..
                  "/" .. (total and tostring(total) or "*")
    local out = { ["Content-Range"] = range, ["Content-Type"] = JSON }
    if count then
        out["Preference-Applied"] = "count=exact"
    end
    local status = 200
    if total ~= nil then
        if lower_b > total then
            return nil, http.error(416, "PGRST103", "Requested range not satisfiable",
                                   "An offset of " .. lower_b .. " was requested, but there " ..
                                   "are only " .. total .. " rows.")
        elseif n < total then
            status = 206
        end
    end
    if shape == "csv" then
        return csv.answer(body, status, out)
    elseif shape == "object" then
        if n ~= 1 then
            return nil, http.error(406, "PGRST116", "Cannot coerce the result to a single " ..
                                   "JSON object", "The result contains " .. n .. " rows")
        end
        out["Content-Type"] = OBJECT
        local text = body.text
        return json_raw(sub(text, 2, #text - 1)), status, out   -- [row] -> row
    end
    return body, status, out
end

local write = require "_rest_write"      -- POST, PATCH, DELETE: see there

return {
    ["GET /rest/v1/:table"] = read,
    ["POST /rest/v1/:table"] = write.insert,
    ["PATCH /rest/v1/:table"] = write.update,
    ["DELETE /rest/v1/:table"] = write.delete,
    -- functions (scripts/_rest_rpc.lua); "rpc" is a static segment, so it wins over :table
    ["GET /rest/v1/rpc/:fn"] = rpc.get,
    ["POST /rest/v1/rpc/:fn"] = rpc.post,
    ["PATCH /rest/v1/rpc/:fn"] = rpc.refuse,
    ["PUT /rest/v1/rpc/:fn"] = rpc.refuse,
    ["DELETE /rest/v1/rpc/:fn"] = rpc.refuse,
}
