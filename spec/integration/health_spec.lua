-- spec/integration/health_spec.lua - db.health() gives scripts the same document as the admin
-- listener's /health (both are read from one C struct): the same upstreams, statuses, breaker
-- states, pool sizes and overall verdict. The route is a test-only module dropped into the
-- served bundle and removed afterwards.

local env = require "spec.helpers.env"
local http = require "spec.helpers.http"
local cjson = require "cjson"

local MODULE = "zz_test_health.lua"
local SOURCE = [[
-- Test-only route written by spec/integration/health_spec.lua; never shipped.
local db = require "tide.db"
return {
    ["GET /v1/_test/health"] = function()
        local h, down = db.health()
        return { health = h, down = down }
    end,
}
]]

describe("db.health()", function()
    local path

    setup(function()
        env.need("admin_url")
        path = env.install_module(MODULE, SOURCE, function()
            return (http.request("GET", "/v1/_test/health")) == 200
        end)
    end)

    teardown(function()
        env.remove_module(path)
    end)

    it("is the /health document as a table", function()
        local status, body = http.request("GET", "/v1/_test/health")
        assert.are.equal(200, status)
        local admin_status, doc = http.request("GET", "/health", { url = env.admin_url })
        assert.are.equal(200, admin_status)
        local h = body.health
        assert.are.equal(doc.status, h.status)
        assert.is_false(body.down)
        for _, name in ipairs { "direct", "session", "transaction" } do
            local a, b = doc.upstreams[name], h.upstreams[name]
            assert.is_table(b, name)
            assert.are.equal(a.status, b.status)
            assert.are.equal(a.required, b.required)
            assert.are.equal(a.pool_of, b.pool_of)
            assert.are.equal(a.breaker.state, b.breaker.state)
            assert.are.equal(a.pool.size, b.pool.size)
            assert.are.equal(a.fallback, b.fallback)
            -- nothing is blocked while every breaker is closed: null, as fallback is when unset
            assert.are.equal(cjson.null, a.blocked_by, name)
            assert.are.equal(cjson.null, b.blocked_by, name)
            assert.is_number(b.probe.latency_ms)
            assert.is_number(b.breaker.retry_after_s)
        end
    end)
end)
