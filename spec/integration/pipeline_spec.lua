-- spec/integration/pipeline_spec.lua - the request pipeline as a client and an operator see it
-- (docs/architecture.md, "The request pipeline"): C routes each request once, with the
-- bundle's compiled router, before the cache and before any Lua runs; Lua gets the route and
-- its params on req; the route's bookkeeping (its name in the logs, budget, quarantine, what
-- its reads depend on) reaches C without calls of its own. So an uncached point read crosses
-- between C and Lua 4 times (into the handler, the query's call, the result's resume, the
-- return), counted by /admin/stats "lua_crossings"; the routing verdicts (404, 405 with
-- Allow, 400, a static segment before a :param) are the router's. Reloads swapping the
-- router with the bundle are reload_spec's.

local api = require "spec.helpers.api"
local env = require "spec.helpers.env"
local fault = require "spec.helpers.fault"

-- The crossings and requests that ended during fn(), from /admin/stats.
local function crossings_of(fn)
    local before = fault.stats().lua_crossings
    fn()
    local after = fault.stats().lua_crossings
    return after.crossings - before.crossings, after.requests - before.requests
end

describe("the request pipeline", function()
    local u, trip

    setup(function()
        env.need("admin_url")
        u = api.user()
        trip = api.trip(u)
    end)

    it("crosses between C and Lua 4 times for an uncached point read", function()
        -- a first read of this trip: a cache MISS, run by the bundle
        local status, body, h
        local crossings, requests = crossings_of(function()
            status, body, h = api.call(u, "GET", "/v1/trips/" .. trip.id)
        end)
        assert.are.equal(200, status)
        assert.are.equal(trip.id, body.id)
        assert.are.equal("MISS", h["x-cache"])
        assert.are.equal(1, requests)
        assert.are.equal(4, crossings)
        -- the same read past the cache (Cache-Control: no-cache): the same 4
        crossings, requests = crossings_of(function()
            status, body, h = api.call(u, "GET", "/v1/trips/" .. trip.id, nil,
                                       { ["cache-control"] = "no-cache" })
        end)
        assert.are.equal(200, status)
        assert.are.equal(trip.id, body.id)
        assert.are.equal("BYPASS", h["x-cache"])
        assert.are.equal(1, requests)
        assert.are.equal(4, crossings)
        -- a HIT runs no Lua at all
        crossings, requests = crossings_of(function()
            status, body, h = api.call(u, "GET", "/v1/trips/" .. trip.id)
        end)
        assert.are.equal(200, status)
        assert.are.equal(trip.id, body.id)
        assert.are.equal("HIT", h["x-cache"])
        assert.are.equal(0, requests)
        assert.are.equal(0, crossings)
    end)

    it("answers what the router decided", function()
        local status, body, h = api.call(u, "DELETE", "/v1/trips")
        assert.are.equal(405, status)
        assert.are.equal("TIDE_METHOD_NOT_ALLOWED", body.code)
        assert.are.equal("GET, POST", h["allow"])
        status, body = api.call(u, "GET", "/v1/no-such-thing")
        assert.are.equal(404, status)
        assert.are.equal("TIDE_NOT_FOUND", body.code)
        status, body = api.call(u, "GET", "/v1/trips/%zz")
        assert.are.equal(400, status)
        assert.are.equal("TIDE_INVALID_PATH", body.code)
        status = api.call(u, "GET", "/v1/trips/")     -- an empty segment is no :id
        assert.are.equal(404, status)
        -- a param is percent-decoded before the handler sees it
        local id = tostring(trip.id)
        status, body = api.call(u, "GET", "/v1/trips/%3" .. id:sub(1, 1) .. id:sub(2))
        assert.are.equal(200, status)
        assert.are.equal(trip.id, body.id)
    end)
end)
