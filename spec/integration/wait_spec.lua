-- spec/integration/wait_spec.lua - core.wait / core.wake, how one request waits for what
-- another does (/rest/v1's single catalog read): parked requests resume with "woken" when
-- another request of the bundle wakes them, with "timeout" when their time passes, leave the
-- waiting list when their client goes away, and are woken when a request is stopped at its
-- CPU budget (it may be the one they wait for). Other requests are served meanwhile.
-- The routes are not part of scripts/: this spec drops a module into the served bundle
-- (TIDE_BUNDLE_DIR/scripts), reloads with SIGHUP, and removes it (and reloads) afterwards.

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"
local fault = require "spec.helpers.fault"

local MODULE = "zz_test_wait.lua"

local SOURCE = [[
-- Test-only routes written by spec/integration/wait_spec.lua; never shipped.
local core = require "tide.core"
return {
    ["GET /v1/_test/wait"] = function(req)
        local t0 = core.now()
        local why = core.wait(tonumber(req.query.s) or 5)
        return { why = why, waited = core.now() - t0 }
    end,
    ["GET /v1/_test/wake"] = function()
        return { woken = core.wake() }
    end,
    ["GET /v1/_test/spin"] = function()
        local n = 0
        while true do n = n + 1 end
    end,
}
]]

describe("core.wait and core.wake", function()
    local u, path

    -- Waits for every call to be answered (15 s at most).
    local function finish_all(calls)
        for _ = 1, 300 do
            if fault.poll(calls, 0.05) == 0 then return end
        end
    end

    local function wake()
        local status, body = api.call(u, "GET", "/v1/_test/wake")
        assert.are.equal(200, status)
        return body.woken
    end

    setup(function()
        env.need("bin", "pid", "bundle_dir", "admin_url")
        u = api.user()
        path = env.install_module(MODULE, SOURCE, function()
            return (api.call(u, "GET", "/v1/_test/wake")) == 200
        end)
    end)

    teardown(function()
        if path then
            os.remove(path)
            env.hup()
            env.wait_until(function()
                return (api.call(u, "GET", "/v1/_test/wake")) == 404
            end, 10, 0.1)
        end
    end)

    it("parked requests resume with \"woken\" on a wake; others are served meanwhile",
       function()
        local calls = {}
        for i = 1, 3 do calls[i] = fault.start(u, "GET", "/v1/_test/wait?s=10") end
        env.sleep(0.3)
        assert.are.equal(200, (api.call(u, "GET", "/v1/users/me")))
        assert.are.equal(3, wake())
        finish_all(calls)
        for _, c in ipairs(calls) do
            assert.are.equal(200, c.status)
            assert.are.equal("woken", c.body.why)
            assert.is_true(c.elapsed < 5, "woken after " .. c.elapsed .. " s")
        end
        assert.are.equal(0, wake())
    end)

    it("a wait ends with \"timeout\" when its time passes", function()
        local status, body = api.call(u, "GET", "/v1/_test/wait?s=0.3")
        assert.are.equal(200, status)
        assert.are.equal("timeout", body.why)
        assert.is_true(body.waited >= 0.25 and body.waited < 2, "waited " .. body.waited)
    end)

    it("a request whose client went away leaves the waiting list", function()
        local c = fault.start(u, "GET", "/v1/_test/wait?s=10")
        env.sleep(0.3)
        c.sock:close()
        env.sleep(0.5)                 -- tide sees the close at once (the request is aborted)
        assert.are.equal(0, wake())    -- (a wake would have found it still parked)
    end)

    it("a request stopped at its CPU budget wakes the waiters", function()
        local waiter = fault.start(u, "GET", "/v1/_test/wait?s=10")
        env.sleep(0.3)
        local status, body = api.call(u, "GET", "/v1/_test/spin")
        assert.are.equal(500, status)
        assert.are.equal("TIDE_SCRIPT_TIMEOUT", body.code)
        finish_all({ waiter })
        assert.are.equal(200, waiter.status)
        assert.are.equal("woken", waiter.body.why)
        assert.is_true(waiter.elapsed < 5, "woken after " .. waiter.elapsed .. " s")
    end)
end)
