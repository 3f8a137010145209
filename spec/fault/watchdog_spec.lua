-- spec/fault/watchdog_spec.lua - a script that stalls its worker's event loop inside one long C
-- call (README "Workers", the loop watchdog): a tide of the spec's own (one worker, the
-- default, TIDE_WATCHDOG_MS=1000) whose bundle has GET /v1/stall, a catastrophic pattern for
-- string.find (26 optional "a"s then 26 "a"s against 26 "a"s: 2^26 backtracking steps in
-- LuaJIT's matcher, measured at 7.8 s of CPU on this 2-core machine, in one C call no hook can
-- interrupt). After that request the worker answers nothing, /live included; the parent kills
-- it once its loop has been silent for watchdog_ms and starts another at once, which answers
-- /live, /metrics and a route that reads the database within watchdog_ms + 2 s of the stall,
-- counts the restart as reason="watchdog", and the log says "loop stalled"; the parent is the
-- same process throughout. Every wait is bounded.

local env = require "spec.helpers.env"
local http = require "spec.helpers.http"
local spawn = require "spec.helpers.spawn"

local WATCHDOG_MS = 1000
-- make asan runs tide slower: the restart's own time (fork, bundle load) scales with it
local SLOWDOWN = tonumber(os.getenv("TIDE_TEST_SLOWDOWN") or "1") or 1

local STALL = [[
-- Test-only route written by spec/fault/watchdog_spec.lua; never shipped.
local N = 26
return {
    ["GET /v1/stall"] = function()
        local s = ("a"):rep(N)
        return { found = s:find("^" .. ("a?"):rep(N) .. ("a"):rep(N)) ~= nil }
    end,
}
]]

local function get(url, path, timeout)
    local ok, status, body = pcall(http.request, "GET", path,
                                   { url = url, timeout = timeout or 2 })
    if ok then return status, body end
    return nil, status
end

local function metric(text, series)
    for line in (text or ""):gmatch("[^\n]+") do
        local name, v = line:match("^(%S+) (%S+)$")
        if name == series then return tonumber(v) end
    end
    return nil
end

describe("fault: a script stalls its worker's event loop", function()
    local dir, t, user

    setup(function()
        env.need("bin", "dsn_admin")
        dir = spawn.bundle()
        env.write_file(dir .. "/scripts/stall.lua", STALL)
        t = spawn.tide(dir, { env = { "TIDE_WATCHDOG_MS=" .. WATCHDOG_MS } })
        user = env.new_user()
    end)

    teardown(function()
        if t and spawn.alive(t) then spawn.stop(t) end
        spawn.remove(dir)
    end)

    it("is killed by the watchdog; a new worker serves within watchdog_ms + 2 s", function()
        local status, before = get(t.admin_url, "/admin/stats")
        assert.equals(200, status)
        local trips = { url = t.url, token = user.token }
        assert.equals(200, (http.request("GET", "/v1/trips?limit=1", trips)))

        -- the stalling request: sent, then given up on by this client after 0.5 s
        local t0 = env.now()
        local sent = get(t.url, "/v1/stall", 0.5)
        assert.is_nil(sent, "GET /v1/stall answered: the loop did not stall")
        -- the worker answers nothing now, not even /live
        assert.is_nil((get(t.admin_url, "/live", 0.3)), "/live answered during the stall")

        -- a new worker: /live within watchdog_ms + 2 s of the stall
        local live = env.wait_until(function()
            local s = get(t.admin_url, "/live", 0.2)
            return s == 200
        end, (WATCHDOG_MS / 1000 + 2) * SLOWDOWN + 1, 0.05)
        local took = env.now() - t0
        assert.truthy(live, "no worker answered /live:\n" .. spawn.log(t))
        print(("\n    watchdog: stall -> /live served again in %.2f s (watchdog_ms %d)")
              :format(took, WATCHDOG_MS))
        assert.truthy(took <= (WATCHDOG_MS / 1000 + 2) * SLOWDOWN,
                      ("/live came back %.2f s after the stall"):format(took))

        local s2, after = get(t.admin_url, "/admin/stats")
        assert.equals(200, s2)
        assert.are_not.equal(before.pid, after.pid)
        assert.is_true(spawn.alive(t))
        assert.is_table(after.supervisor, "no supervisor in /admin/stats")
        assert.equals(t.pid, after.supervisor.parent_pid)      -- the same parent throughout
        assert.equals(WATCHDOG_MS, after.supervisor.watchdog_ms)
        assert.equals(1, after.supervisor.restarts.watchdog)
        assert.equals(0, after.supervisor.restarts.crash)
        assert.equals("watchdog", after.supervisor.last_restart.reason)
        assert.equals(before.pid, after.supervisor.last_restart.pid)
        -- a healthy route, through the database
        assert.equals(200, (http.request("GET", "/v1/trips?limit=1", trips)))
        local s3, text = get(t.admin_url, "/metrics")
        assert.equals(200, s3)
        assert.equals(1, metric(text, 'tide_worker_restarts_total{reason="watchdog"}'))
        assert.equals(0, metric(text, 'tide_worker_restarts_total{reason="crash"}'))
        local log = spawn.log(t)
        -- with the route that was running: its CPU budget (500 ms, below watchdog_ms) ran
        -- out inside the C call, and the stop came too late (runtime/guard.c)
        assert.matches("worker 0 %(pid " .. before.pid .. "%) loop stalled for %d+ ms " ..
                       "%[running route GET /v1/stall%]; killing it", log)
        assert.equals(after.supervisor.last_restart.route, "GET /v1/stall")
    end)
end)
