-- bench/lua_hot.lua - the Lua side of one request, alone: tide.boot's handle() for a route
-- against a tide.core stand-in that answers every query at once (no I/O), so LuaJIT's own
-- tools can look at what the request path costs in Lua and whether its traces compile:
--
--   luajit bench/lua_hot.lua [N] [METHOD PATH [BODY]]          µs per request
--   luajit -jv=var/jv.txt bench/lua_hot.lua                      trace log (aborts: "NYI")
--   luajit -jp=vf bench/lua_hot.lua 200000                       profile by function
--
-- The stand-in is not tide: it shows the Lua share only (claims, validation, the statement
-- builder, cache tags, the answer), none of the C, the kernel or Postgres. Routing is C's
-- (runtime/router.c): the request is routed once here and each request gets the route id and
-- a params table, as C hands them over.
package.path = "bindings/?.lua;scripts/?.lua;policies/?.lua;" .. package.path

local N = tonumber(arg[1]) or 100000
local METHOD, PATH, BODY = arg[2] or "GET", arg[3] or "/v1/trips/1000001", arg[4]

local ROW = '{"id":1000001,"user_id":"6f0b1c2e-5a4f-4f7e-9a51-2b8c3d9e0f11","name":"Lisbon",' ..
            '"destination":"Lisbon","start_date":"2026-05-01","end_date":"2026-05-08",' ..
            '"budget":1200.50,"travelers":2,"status":"planning","trip_type":"leisure",' ..
            '"notes":[],"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}'
local core = {}
function core.query(_, _, _, q)
    if q and q.counted then return '{"n":1,"body":[' .. ROW .. ']}' end
    return "[" .. ROW .. "]"
end
function core.cache_skip() end
function core.cache_depend() end
function core.cache_invalidate() end
function core.request_id() return "bench" end
function core.log() end
package.preload["tide.core"] = function() return core end

local boot = require "tide.boot"
local names = {}
for f in io.popen("ls scripts"):lines() do
    local m = f:match("^(.-)%.lua$")
    if m then names[#names + 1] = m end
end
boot.load(names)

local CLAIMS = '{"sub":"6f0b1c2e-5a4f-4f7e-9a51-2b8c3d9e0f11","role":"authenticated",' ..
               '"aud":"authenticated","iat":1790000000,"exp":1890000000}'
local function request()
    return { method = METHOD, path = PATH, query_string = "", role = "authenticated",
             id = "bench-1", claims_json = CLAIMS, body = BODY,
             headers = { host = "127.0.0.1:18180", authorization = "Bearer x",
                         ["content-type"] = BODY and "application/json" or nil } }
end
local routed = boot._route(request())
local ROUTE_ID, PARAMS = routed.route_id, routed.params or {}
local function routed_request()
    local r = request()
    r.route_id = ROUTE_ID
    if ROUTE_ID then
        local p = {}
        for k, v in pairs(PARAMS) do p[k] = v end
        r.params = p
    else
        r.route_status, r.allow = routed.route_status, routed.allow
    end
    return r
end

local handle = boot.handle
local status = select(2, coroutine.resume(coroutine.create(handle), routed_request()))
io.stderr:write("status ", tostring(status), "\n")
local t0 = os.clock()
for _ = 1, N do
    local co = coroutine.create(handle)      -- (tide reuses a finished one; Lua's API cannot)
    coroutine.resume(co, routed_request())
end
local dt = os.clock() - t0
print(string.format("%s %s: %.2f µs per request (%d requests, Lua only)", METHOD, PATH,
                    dt * 1e6 / N, N))
