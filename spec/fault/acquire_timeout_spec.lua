-- spec/fault/acquire_timeout_spec.lua - tide's own queue is not the upstream's failure. When
-- every connection of a pool is busy, requests wait for one up to acquire_timeout and then get
-- 504 TIDE_ACQUIRE_TIMEOUT. That says tide is saturated, not that Postgres is failing, so it
-- must not count toward the breaker: otherwise an anonymous flood against one slow route opens
-- direct's breaker, and every upstream that depends on direct fails with it.
-- The spec shrinks direct's pool to one connection with a 0.2 s acquire timeout, holds that
-- connection with a slow query, queues more requests than the breaker's `consecutive`
-- threshold behind it, and checks that direct's breaker stays closed and serves right after.

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"
local fault = require "spec.helpers.fault"

local MODULE = "zz_test_fault_queue.lua"
local SOURCE = [[
-- Test-only route written by spec/fault/acquire_timeout_spec.lua; never shipped.
local db = require "tide.db"
return {
    ["GET /v1/_test/fault-queue"] = function(req)
        local s = tonumber(req.query.s) or 0
        if s < 0 or s > 5 then s = 0 end
        local rows, err = db.sql("select pg_sleep($1::float8)", { s }, { mode = "direct" })
        if not rows then return nil, err end
        return { slept = s }
    end,
}
]]

describe("fault: requests queued past acquire_timeout", function()
    local u, path

    setup(function()
        fault.need()
        u = api.user()
        path = env.install_module(MODULE, SOURCE, function()
            return (api.call(u, "GET", "/v1/_test/fault-queue?s=0")) == 200
        end, fault.reload)
    end)

    teardown(function()
        fault.restore_policy()
        env.remove_module(path, fault.reload)
    end)

    it("answer 504 and leave the upstream's breaker closed", function()
        local consecutive = fault.effective("direct").breaker.consecutive
        fault.set_policy { upstreams = { direct = { pool = { size = 1, acquire_timeout = 0.2 } } } }

        local holder = fault.start(u, "GET", "/v1/_test/fault-queue?s=2", nil, "holder")
        env.sleep(0.3)   -- the holder has the one connection
        local queued = {}
        for i = 1, consecutive + 3 do
            queued[i] = fault.start(nil, "GET", "/v1/_test/fault-queue?s=0", nil, "queued")
        end
        local deadline = env.now() + 5
        while fault.poll(queued, 0.1) > 0 and env.now() < deadline do end
        for i, c in ipairs(queued) do
            assert.are.equal(504, c.status, "queued request " .. i .. ": " .. fault.describe(c))
            assert.are.equal("TIDE_ACQUIRE_TIMEOUT", c.code)
        end

        local _, h = fault.health()
        local b = fault.upstream(h, "direct").breaker
        assert.are.equal("closed", b.state)
        assert.are.equal(0, b.consecutive_failures)

        while fault.poll({ holder }, 0.1) > 0 and env.now() < deadline + 5 do end
        assert.are.equal(200, holder.status, fault.describe(holder))
        -- direct serves at once: no 503 TIDE_UPSTREAM_UNAVAILABLE for anyone
        local r = fault.call(u, "GET", "/v1/_test/fault-queue?s=0")
        assert.are.equal(200, r.status, fault.describe(r))
        local me = fault.call(u, "GET", "/v1/users/me/stats")
        assert.are_not.equal(503, me.status, fault.describe(me))
    end)
end)
