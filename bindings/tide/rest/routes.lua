-- tide/rest/routes.lua - /rest/v1: the PostgREST API over tide.db, so the routing,
-- resilience and cache policies and RLS apply to it as to every other route. It is a route
-- module like a script's, kept with the runtime so that a bundle's scripts/ folder is the
-- team's own: the one-line scripts/rest.lua (`return require "tide.rest.routes"`) mounts it, and
-- a bundle without that file serves no /rest/v1. Loading it reads and checks
-- policies/exposure.lua (tide.rest.schema), so a bundle that mounts /rest/v1 and whose exposure
-- policy does not load is rejected whole.
--
--   GET /rest/v1/:table   select= (with embedded resources one level deep: rel(...),
--                         alias:rel!hint(...); tide/rest/embed.lua),
--                         filters (eq neq gt gte lt lte like ilike is in, not.),
--                         or=/and= trees, order=, limit=/offset=, Range/Range-Unit: items,
--                         Prefer: count=exact (planned/estimated count exactly too),
--                         Accept: application/json | application/vnd.pgrst.object+json |
--                         text/csv (tide/rest/csv.lua)
--   POST, PATCH, DELETE /rest/v1/:table   writes (tide/rest/write.lua)
--   GET|POST /rest/v1/rpc/:fn   functions (tide/rest/rpc.lua)
--
-- The grammar is tide.rest.parse, name checks and the range rules tide.rest.plan, the schema
-- cache tide.rest.schema (read lazily on the first request of a bundle; see there why), what
-- is exposed policies/exposure.lua, Accept, Prefer and Content-Range tide.rest.http (one set
-- of rules for reads, writes and functions), the errors tide.rest.errors. One statement
-- per request: the rows as Postgres' JSON (never decoded here), their number and, with
-- count=exact, the total from the same snapshot, in a read-only transaction (tide.db's
-- read_only): a view whose functions write fails with 405 25006, as in PostgREST. Answers
-- follow PostgREST 12: Content-Range "0-9/*" (or "/N" with a count), 206 when a count shows
-- the answer is partial, 416 PGRST103 for a range past the end, 406 PGRST116 when one object
-- was asked for and the rows are not exactly one, 406 PGRST107 when Accept names nothing
-- served, 404 PGRST205 for a table the schema cache does not hold (PostgREST 13's code; 12
-- passed Postgres' 42P01 on), 400 42703 for an unknown column, 400 PGRST100 for what does not
-- parse.

local db = require "tide.db"
local parse = require "tide.rest.parse"
local plan = require "tide.rest.plan"
local csv = require "tide.rest.csv"
local schema = require "tide.rest.schema"
local rerr = require "tide.rest.errors"
local rhttp = require "tide.rest.http"
local rpc = require "tide.rest.rpc"

-- The table's schema-cache entry and the select options, re-reading the catalog once (rate
-- limited: schema.with_table) when a name is unknown. Returns tinfo, opts or nil, err.
local function prepare(name, req)
    return schema.with_table(name, function(tinfo, cache)
        local opts, err = plan.select(req, tinfo, cache)
        if opts then
            return opts
        end
        return nil, err, true
    end)
end

local function read(req)
    local name = req.params.table
    local headers = req.headers or {}
    local shape, err = rhttp.negotiate(headers.accept, rhttp.ANY)
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
    local count = rhttp.preferences(headers.prefer).count ~= nil
    opts.counted, opts.total, opts.raw, opts.read_only = true, count or nil, true, true
    if shape == "csv" then csv.select_opts(opts) end

    local body, info = db.select(tinfo.name, opts)
    if not body then return nil, rerr.from_db(info, req) end   -- PostgREST's status

    local n = info.n
    local out, status = rhttp.ranged(lower_b, n, info.total, count)
    if not out then return nil, status end
    if shape == "csv" then
        return csv.answer(body, status, out)
    elseif shape == "object" then
        if n ~= 1 then
            return nil, rerr.singular(n)
        end
        out["Content-Type"] = rhttp.OBJECT
        return rhttp.unwrap(body.text), status, out   -- [row] -> row
    end
    return body, status, out
end

local write = require "tide.rest.write"   -- POST, PATCH, DELETE: see there

-- Every route answers a body tide.boot cannot take (not JSON, past its bounds) in PostgREST's
-- code, 400 PGRST102 (req.body_error: own_body_errors, tide.router).
local function route(handler)
    return { handler = handler, own_body_errors = true }
end

return {
    ["GET /rest/v1/:table"] = route(read),
    ["HEAD /rest/v1/:table"] = route(read),   -- the GET's headers (Content-Range: counts), no body
    ["POST /rest/v1/:table"] = route(write.insert),
    ["PATCH /rest/v1/:table"] = route(write.update),
    ["DELETE /rest/v1/:table"] = route(write.delete),
    -- functions (tide/rest/rpc.lua); "rpc" is a static segment, so it wins over :table
    ["GET /rest/v1/rpc/:fn"] = route(rpc.get),
    ["HEAD /rest/v1/rpc/:fn"] = route(rpc.get),
    ["POST /rest/v1/rpc/:fn"] = route(rpc.post),
    ["PATCH /rest/v1/rpc/:fn"] = route(rpc.refuse),
    ["PUT /rest/v1/rpc/:fn"] = route(rpc.refuse),
    ["DELETE /rest/v1/rpc/:fn"] = route(rpc.refuse),
}
