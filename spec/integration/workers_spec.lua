-- workers = 2 (docs/operations.md "Workers"): a tide of the spec's own with two worker
-- processes on one port under a supervising parent. Both serve; a write answered by one is
-- never hidden by the other's cache; SIGHUP reloads both; a worker killed is restarted (and
-- logged) while the other serves; SIGTERM drains both and the parent exits 0. Then, with two workers and with the
-- default one, a restarted worker serves the last bundle that loaded, not a newer one on disk
-- that a SIGHUP rejected.

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"
local http = require "spec.helpers.http"
local spawn = require "spec.helpers.spawn"
local cjson = require "cjson.safe"

-- One request on a fresh connection (the kernel picks the worker), as user.
local function get(t, user, path)
    return http.request("GET", path, { url = t.url, token = user.token })
end

local function stats(url)
    local ok, status, body = pcall(http.request, "GET", "/admin/stats", { url = url, timeout = 2 })
    return ok and status == 200 and body or nil
end

-- Child pids of the parent, from /proc (the workers).
local function workers_of(pid)
    local out = env.run("cat /proc/" .. pid .. "/task/" .. pid .. "/children 2>/dev/null")
    local pids = {}
    for p in out:gmatch("%d+") do pids[#pids + 1] = tonumber(p) end
    return pids
end

-- A process's nice value, from /proc/PID/stat (field 19; the fields after the command's ")").
local function nice_of(pid)
    local stat = env.run("cat /proc/" .. pid .. "/stat 2>/dev/null")
    local rest = stat:match("%) (.*)$") or ""
    local fields = {}
    for f in rest:gmatch("%S+") do fields[#fields + 1] = f end
    return tonumber(fields[17])
end

describe("workers", function()
    local dir, t, admin2

    setup(function()
        env.need("bin", "dsn_admin")
        dir = spawn.bundle()
        -- no NOTIFY channel: a write reaches the other worker's cache only through the slots
        -- the workers share, which is what the second test checks
        -- nice 1 (docs/operations.md "Sharing a host with Postgres"): raising it needs no
        -- privilege
        t = spawn.tide(dir, { env = { "TIDE_WORKERS=2", "TIDE_CACHE_CHANNEL=''", "TIDE_NICE=1" } })
        local port = tonumber(t.admin_url:match(":(%d+)$"))
        admin2 = "http://127.0.0.1:" .. (port + 1)
        assert(env.wait_until(function() return stats(admin2) end, 10, 0.1),
               "the second worker's admin listener did not answer:\n" .. spawn.log(t))
    end)

    teardown(function()
        if t and spawn.alive(t) then spawn.stop(t) end
        spawn.remove(dir)
    end)

    it("runs two workers on one port, each with its own admin listener", function()
        assert.equals(2, #workers_of(t.pid))
        local u = api.user()
        for _ = 1, 20 do assert.equals(200, (get(t, u, "/v1/users/me"))) end
        local a, b = stats(t.admin_url), stats(admin2)
        assert.truthy(a and b)
        -- the kernel spread the 20 connections over both
        assert.truthy(a.http.accepted > 0 and b.http.accepted > 0,
                      a.http.accepted .. " / " .. b.http.accepted)
    end)

    it("serves at the configured nice, the workers too", function()
        assert.equals(1, nice_of(t.pid))
        local w = workers_of(t.pid)
        assert.equals(2, #w)
        for _, pid in ipairs(w) do assert.equals(1, nice_of(pid)) end
        assert.truthy(spawn.log(t):find("serving at nice 1", 1, true), spawn.log(t))
    end)

    it("never serves a cached answer that a write through the other worker changed", function()
        local u = api.user()
        local trip = api.trip(u)
        local path = "/v1/trips/" .. trip.id
        for _ = 1, 10 do get(t, u, path) end                 -- cached in both workers
        for i = 1, 5 do
            local name = "renamed " .. i
            local s = http.request("PATCH", path, { url = t.url, token = u.token,
                                                     body = { name = name } })
            assert.equals(200, s)
            for _ = 1, 6 do                                  -- fresh connections: both workers
                local status, body = get(t, u, path)
                assert.equals(200, status)
                assert.equals(name, body.name, cjson.encode(body))
            end
        end
    end)

    it("reloads every worker on SIGHUP", function()
        local a0, b0 = stats(t.admin_url).reloads, stats(admin2).reloads
        env.run("kill -HUP " .. t.pid)
        assert.truthy(env.wait_until(function()
            local a, b = stats(t.admin_url), stats(admin2)
            return a and b and a.reloads > a0 and b.reloads > b0
        end, 10, 0.1), "not every worker reloaded")
    end)

    it("restarts a worker that dies, and logs it", function()
        local before = workers_of(t.pid)
        assert.equals(2, #before)
        env.run("kill -KILL " .. before[1])
        local u = api.user()
        -- the other worker keeps serving meanwhile
        assert.equals(200, (get(t, u, "/v1/users/me")))
        assert.truthy(env.wait_until(function()
            local now = workers_of(t.pid)
            return #now == 2 and now[1] ~= before[1] and now[2] ~= before[1]
        end, 10, 0.1), "the worker was not restarted:\n" .. spawn.log(t))
        assert.truthy(spawn.log(t):find("killed by signal 9", 1, true))
        assert.truthy(env.wait_until(function() return stats(t.admin_url) and stats(admin2) end,
                                     10, 0.1))
        for _ = 1, 10 do assert.equals(200, (get(t, u, "/v1/users/me"))) end
    end)

    it("drains both workers on SIGTERM and exits 0", function()
        local kids = workers_of(t.pid)
        spawn.stop(t)
        assert.is_false(spawn.alive(t))
        for _, p in ipairs(kids) do
            local _, alive = env.run("kill -0 " .. p .. " 2>/dev/null")
            assert.is_false(alive)
        end
        assert.truthy(spawn.log(t):find("workers: all stopped", 1, true))
    end)
end)

-- A restarted worker serves the last bundle that loaded (README "Workers"), with two workers
-- and with the default one: a route that only the loaded bundle has (the file is gone from
-- disk), a script on disk broken and a SIGHUP rejected, then the worker killed (SIGKILL, its
-- pid from /admin/stats): the parent restarts it, it answers that route from the old bundle,
-- the parent stays up and counts the crash; a SIGHUP after the disk is mended reads it again.
local OLD_ONLY = [[
-- Test-only route written by spec/integration/workers_spec.lua; never shipped.
return { ["GET /v1/_test/old_bundle"] = function() return { old = true } end }
]]

for _, workers in ipairs({ 2, 1 }) do
    describe("a restarted worker (workers = " .. workers .. ")", function()
        local dir, t, admins

        local function metric(url, series)
            local ok, status, text = pcall(http.request, "GET", "/metrics",
                                           { url = url, timeout = 2 })
            if not (ok and status == 200 and type(text) == "string") then return nil end
            for line in text:gmatch("[^\n]+") do
                local name, v = line:match("^(%S+) (%S+)$")
                if name == series then return tonumber(v) end
            end
            return nil
        end

        -- Status of GET /v1/_test/old_bundle on a fresh connection (any worker).
        local function old_route()
            local ok, status = pcall(http.request, "GET", "/v1/_test/old_bundle",
                                     { url = t.url, timeout = 5 })
            return ok and status or nil
        end

        setup(function()
            env.need("bin", "dsn_admin")
            dir = spawn.bundle()
            env.write_file(dir .. "/scripts/zz_old_bundle.lua", OLD_ONLY)
            local extra = workers > 1 and { "TIDE_WORKERS=" .. workers } or {}
            t = spawn.tide(dir, { env = extra })
            local port = tonumber(t.admin_url:match(":(%d+)$"))
            admins = {}
            for i = 0, workers - 1 do admins[#admins + 1] = "http://127.0.0.1:" .. (port + i) end
            assert(env.wait_until(function()
                for _, a in ipairs(admins) do if not stats(a) then return false end end
                return true
            end, 10, 0.1), "the workers' admin listeners did not answer:\n" .. spawn.log(t))
        end)

        teardown(function()
            if t and spawn.alive(t) then spawn.stop(t) end
            spawn.remove(dir)
        end)

        it("serves the last bundle that loaded, not a newer one SIGHUP rejected", function()
            for _ = 1, 4 do assert.equals(200, old_route()) end
            local failures = {}
            for i, a in ipairs(admins) do failures[i] = stats(a).reload_failures end
            -- the disk now holds a bundle that does not load, and no longer the route
            os.remove(dir .. "/scripts/zz_old_bundle.lua")
            local trips = dir .. "/scripts/trips.lua"
            local good = env.read_file(trips)
            env.write_file(trips, good .. "\noops\n")
            env.run("kill -HUP " .. t.pid)
            assert.truthy(env.wait_until(function()
                for i, a in ipairs(admins) do
                    local s = stats(a)
                    if not (s and s.reload_failures > failures[i]) then return false end
                end
                return true
            end, 10, 0.1), "the reload was not rejected by every worker:\n" .. spawn.log(t))
            assert.equals(200, old_route())

            local before = stats(t.admin_url)
            assert.are_not.equal(t.pid, before.pid)           -- the worker serves, not the parent
            env.run("kill -KILL " .. before.pid)
            local after = env.wait_until(function()
                local s = stats(t.admin_url)
                return s and s.pid ~= before.pid and s
            end, 10, 0.1)
            assert.truthy(after, "the worker was not restarted:\n" .. spawn.log(t))
            assert.is_true(spawn.alive(t), "the parent exited:\n" .. spawn.log(t))
            -- the old bundle's route answers, on every worker
            for _ = 1, 6 do assert.equals(200, old_route()) end
            assert.is_table(after.supervisor, "no supervisor in /admin/stats")
            assert.equals(t.pid, after.supervisor.parent_pid)
            assert.equals("snapshot", after.supervisor.bundle)
            assert.equals(2, after.supervisor.worker_starts)
            assert.equals("crash", after.supervisor.last_restart.reason)
            assert.equals(before.pid, after.supervisor.last_restart.pid)
            assert.truthy(after.supervisor.restarts.crash >= 1)
            local crashes = metric(t.admin_url, 'tide_worker_restarts_total{reason="crash"}')
            assert.truthy((crashes or 0) >= 1)
            assert.equals(0, metric(t.admin_url, 'tide_worker_restarts_total{reason="watchdog"}'))
            local log = spawn.log(t)
            assert.truthy(log:find("serving the last bundle that loaded", 1, true), log)
            assert.truthy(log:find("killed by signal 9", 1, true), log)

            -- the disk mended, a SIGHUP reads it again: the route is gone
            env.write_file(trips, good)
            env.run("kill -HUP " .. t.pid)
            assert.truthy(env.wait_until(function() return old_route() == 404 end, 10, 0.1),
                          "the next SIGHUP did not read the disk:\n" .. spawn.log(t))
            assert.truthy(env.wait_until(function()
                local s = stats(t.admin_url)
                return s and s.supervisor.bundle == "disk"
            end, 10, 0.1))
            assert.is_true(spawn.alive(t))
        end)
    end)
end
