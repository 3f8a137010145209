-- spec/fault/script_budget_spec.lua - a hostile bundle (docs/scripts.md "When a script
-- misbehaves"). A tide of the spec's own serves the shipped bundle plus scripts/hostile.lua,
-- whose routes loop (compiled, and catching the stop with pcall), loop inside a transaction
-- after a write, grow a table without end, build a gigabyte string, recurse without end, call
-- os.exit and io.read. script.max_cpu_ms is 300 ms. For each, while the hostile request runs:
--   * it is answered with its stable code (500 TIDE_SCRIPT_TIMEOUT / TIDE_SCRIPT_MEMORY, or
--     500 TIDE_INTERNAL for what the sandbox refuses or Lua raises itself);
--   * a healthy route (a database read) sent meanwhile gets 200, never an error, within
--     max_cpu_ms + 100 ms; so does /live on the admin listener;
--   * the counters say what happened (tide_script_stops_total by reason);
--   * tide's RSS comes back within 64 MB of where it started (not under make asan: its
--     allocator keeps freed memory in quarantine).
-- Then: a route stopped too often is put in quarantine (503 TIDE_ROUTE_QUARANTINED with
-- Retry-After); a route with its own budget in policies/sandbox.lua may run past the default;
-- a bundle that loops, or grows without end, at load is rejected on SIGHUP and the old one
-- keeps serving; a bundle that calls os.exit at load is rejected too.
-- (The one case no hook can stop, a long C call, is spec/fault/watchdog_spec.lua's.)

local env = require "spec.helpers.env"
local http = require "spec.helpers.http"
local spawn = require "spec.helpers.spawn"
local fault = require "spec.helpers.fault"
local socket = require "socket"

local MAX_CPU_MS = 300
local SLOWDOWN = tonumber(os.getenv("TIDE_TEST_SLOWDOWN")) or 1
local ASAN = os.getenv("TIDE_TEST_ASAN") == "1"
-- what a healthy request or /live may wait: the hostile run's budget, plus 100 ms (scaled
-- for an instrumented build, which runs everything slower)
local HEALTHY_MAX = (MAX_CPU_MS + 100 * SLOWDOWN) / 1000

local HOSTILE = [[
local db = require "tide.db"
local function spin()
    local i = 0
    while true do i = i + 1 end
end
return {
    ["GET /v1/hostile/ok"] = function()
        local rows, err = db.select("trips", { limit = 1 })
        if not rows then return nil, err end
        return { ok = true }
    end,
    ["GET /v1/hostile/spin"] = function() spin() end,
    ["GET /v1/hostile/spin-again"] = function() spin() end,
    ["GET /v1/hostile/pcall"] = function()
        for _ = 1, 1e12 do pcall(spin) end
    end,
    ["POST /v1/hostile/tx"] = function(req)
        return db.transaction(function(tx)
            local rows, err = tx.insert("search_history", { search_type = "hostile",
                                                            query = { marker = req.body.marker } })
            if not rows then return nil, err end
            spin()
        end)
    end,
    ["GET /v1/hostile/grow"] = function()
        local t = {}
        for i = 1, 1e12 do t[i] = { i, tostring(i) } end
    end,
    ["GET /v1/hostile/rep"] = function() return { n = #string.rep("x", 1.5e9) } end,
    ["GET /v1/hostile/deep"] = function()
        local function f(n) return 1 + f(n + 1) end
        return { n = f(1) }
    end,
    ["GET /v1/hostile/exit"] = function() os.exit(1) end,
    ["GET /v1/hostile/read"] = function() return { line = io.read() } end,
    ["GET /v1/hostile/slow"] = function()
        -- 350 ms of CPU: at least as much wall-clock time, what the budget counts
        local t0 = os.clock()
        while os.clock() - t0 < 0.35 do end
        return { ok = true }
    end,
}
]]

local SANDBOX = [[
return {
    allow = {},
    max_cpu_ms = { ["GET /v1/hostile/slow"] = 1500 },
    quarantine = { hits = 3, window = 30, cool_down = 60 },
}
]]

local function admin_get(t, path)
    local ok, status, body = pcall(http.request, "GET", path, { url = t.admin_url, timeout = 5 })
    if not ok then return nil end
    return status, body
end

local function metric(t, name)
    local _, text = admin_get(t, "/metrics")
    assert(type(text) == "string", "no /metrics")
    local esc = name:gsub("[%-%.%+%[%]%(%)%$%^%%%?%*{}\"]", "%%%0")
    return tonumber(text:match("\n" .. esc .. " (%S+)")) or 0
end

local function worker_pid(t)
    local _, stats = admin_get(t, "/admin/stats")
    return type(stats) == "table" and stats.pid or nil
end

local function rss_kb(pid)
    local f = io.open("/proc/" .. pid .. "/status")
    if not f then return nil end
    local s = f:read("*a")
    f:close()
    return tonumber(s:match("VmRSS:%s*(%d+)"))
end

-- An HTTP request in flight on its own connection.
local function start(url, method, path, token, body)
    local sock = http.connect(url, 20)
    http.send(sock, http.build(method, path, { token = token, body = body, close = true }))
    return { sock = sock, t0 = socket.gettime(), path = path }
end

local function finish(c)
    c.sock:settimeout(20)
    local status, headers, body = http.read_response(c.sock)
    c.sock:close()
    c.sock = nil
    c.elapsed = socket.gettime() - c.t0
    c.status = status
    c.headers = headers
    if status then
        c.body = http.decode(headers, body)
        c.code = type(c.body) == "table" and c.body.code or nil
    end
end

-- Sends the hostile request, and while it runs keeps one healthy request and one /live in
-- flight, each started again as soon as it is answered. Stops 0.2 s after the hostile answer
-- (at most 20 s). Returns the hostile record, the healthy ones and the /live ones.
local function during(t, user, method, path, body)
    local hostile = start(t.url, method, path, user.token, body)
    local healthy, live = {}, {}
    local h = start(t.url, "GET", "/v1/hostile/ok", user.token)
    local l = start(t.admin_url, "GET", "/live")
    local stop_at = socket.gettime() + 20
    while socket.gettime() < stop_at do
        local socks, by = {}, {}
        for _, c in ipairs { hostile, h, l } do
            if c.sock then
                socks[#socks + 1] = c.sock
                by[c.sock] = c
            end
        end
        local ready = socket.select(socks, nil, 0.05)
        for _, s in ipairs(ready) do
            local c = by[s]
            finish(c)
            if c == hostile then
                stop_at = math.min(stop_at, socket.gettime() + 0.2)
            elseif c == h then
                healthy[#healthy + 1] = c
                h = start(t.url, "GET", "/v1/hostile/ok", user.token)
            else
                live[#live + 1] = c
                l = start(t.admin_url, "GET", "/live")
            end
        end
    end
    for _, c in ipairs { hostile, h, l } do
        if c.sock then finish(c) end
    end
    healthy[#healthy + 1] = h
    live[#live + 1] = l
    return hostile, healthy, live
end

local function slowest(records)
    local m, which = 0, nil
    for _, c in ipairs(records) do
        if c.elapsed > m then m, which = c.elapsed, c end
    end
    return m, which
end

describe("fault: a hostile bundle", function()
    local dir, t, user, pid, rss0

    setup(function()
        user = fault.healthy_user()
        dir = spawn.bundle()
        env.write_file(dir .. "/scripts/hostile.lua", HOSTILE)
        env.write_file(dir .. "/policies/sandbox.lua", SANDBOX)
        t = spawn.tide(dir, { env = { "TIDE_SCRIPT_MAX_CPU_MS=" .. MAX_CPU_MS,
                                      "TIDE_SCRIPT_MAX_MEMORY=134217728",
                                      "TIDE_CACHE_MAX_BYTES=0",
                                      -- above the longest budget here (the slow route's)
                                      "TIDE_WATCHDOG_MS=4000" } })
        pid = worker_pid(t)
        assert(pid, "no worker pid in /admin/stats")
        -- warm up: the healthy route's connection and the JIT
        for _ = 1, 20 do http.request("GET", "/v1/hostile/ok", { url = t.url, token = user.token }) end
        rss0 = rss_kb(pid)
    end)

    teardown(function()
        if t then spawn.stop(t) end
        -- its log, where the runner keeps a failed run's logs
        local keep = os.getenv("TIDE_STACK_DIR")
        if keep and dir then
            env.run("mkdir -p " .. env.quote(keep .. "/logs") .. " && cp " ..
                    env.quote(dir .. "/tide.err") .. " " ..
                    env.quote(keep .. "/logs/script_budget_tide.err") .. " 2>/dev/null")
        end
        spawn.remove(dir)
    end)

    local cases = {
        { "GET", "/v1/hostile/spin", 500, "TIDE_SCRIPT_TIMEOUT", "cpu" },
        { "GET", "/v1/hostile/pcall", 500, "TIDE_SCRIPT_TIMEOUT", "cpu" },
        { "GET", "/v1/hostile/grow", 500, nil, nil },      -- memory or CPU, whichever first
        { "GET", "/v1/hostile/rep", 500, "TIDE_SCRIPT_MEMORY", "memory" },
        { "GET", "/v1/hostile/deep", 500, "TIDE_INTERNAL", nil },
        { "GET", "/v1/hostile/exit", 500, "TIDE_INTERNAL", nil, "os.exit is not available" },
        { "GET", "/v1/hostile/read", 500, "TIDE_INTERNAL", nil, "io.read is not available" },
    }

    for _, case in ipairs(cases) do
        local method, path, status, code, reason, logged = unpack(case)
        it(path .. " costs one request, never the service", function()
            local before = {
                cpu = metric(t, 'tide_script_stops_total{reason="cpu"}'),
                memory = metric(t, 'tide_script_stops_total{reason="memory"}'),
            }
            local hostile, healthy, live = during(t, user, method, path)
            assert.are.equal(status, hostile.status, path .. " answered " ..
                             tostring(hostile.status))
            if code then
                assert.are.equal(code, hostile.code)
            else
                assert.is_truthy(hostile.code == "TIDE_SCRIPT_TIMEOUT" or
                                 hostile.code == "TIDE_SCRIPT_MEMORY", tostring(hostile.code))
            end
            for _, c in ipairs(healthy) do
                assert.are.equal(200, c.status, "a healthy request got " .. tostring(c.status) ..
                                 " " .. tostring(c.code))
            end
            local worst = slowest(healthy)
            assert.is_true(worst <= HEALTHY_MAX, ("a healthy request waited %.0f ms (max %.0f)")
                           :format(worst * 1000, HEALTHY_MAX * 1000))
            for _, c in ipairs(live) do
                assert.are.equal(200, c.status)
            end
            worst = slowest(live)
            assert.is_true(worst <= HEALTHY_MAX, ("/live waited %.0f ms (max %.0f)")
                           :format(worst * 1000, HEALTHY_MAX * 1000))
            assert.is_true(spawn.alive(t))
            assert.are.equal(pid, worker_pid(t), "the worker was restarted")
            if reason then
                assert.are.equal(before[reason] + 1,
                                 metric(t, 'tide_script_stops_total{reason="' .. reason .. '"}'))
            elseif code == nil then
                local after = metric(t, 'tide_script_stops_total{reason="cpu"}') +
                              metric(t, 'tide_script_stops_total{reason="memory"}')
                assert.are.equal(before.cpu + before.memory + 1, after)
            end
            if logged then
                assert.is_truthy(spawn.log(t):find(logged, 1, true), "the log does not say " .. logged)
            end
            local rss_up = "-"
            if not ASAN then
                local ok = env.wait_until(function()
                    return rss_kb(pid) - rss0 < 64 * 1024
                end, 10, 0.2)
                assert.is_truthy(ok, ("RSS stayed %.0f MB up"):format((rss_kb(pid) - rss0) / 1024))
                rss_up = ("%.0f MB"):format((rss_kb(pid) - rss0) / 1024)
            end
            -- the figures, for the test log
            print(("\n    budgets: %-20s %d %-20s in %4.0f ms; healthy %2d, slowest %4.0f ms; " ..
                   "/live %2d, slowest %4.0f ms; RSS over start %s")
                  :format(path, hostile.status, tostring(hostile.code), hostile.elapsed * 1000,
                          #healthy, slowest(healthy) * 1000, #live, slowest(live) * 1000, rss_up))
        end)
    end

    it("rolls back a transaction stopped after its write, and its connection serves on", function()
        local marker = env.uuid()
        local hostile, healthy = during(t, user, "POST", "/v1/hostile/tx", { marker = marker })
        assert.are.equal(500, hostile.status)
        assert.are.equal("TIDE_SCRIPT_TIMEOUT", hostile.code)
        for _, c in ipairs(healthy) do
            assert.are.equal(200, c.status)
        end
        assert.are.equal("0", env.psql_value("SELECT count(*) FROM search_history WHERE " ..
                                             "query->>'marker' = " .. env.lit(marker)))
        -- no connection is left inside the transaction, and every connection serves
        assert.is_truthy(env.wait_until(function()
            return env.psql_value("SELECT count(*) FROM pg_stat_activity WHERE state LIKE " ..
                                  "'idle in transaction%' AND query LIKE '%search_history%'") == "0"
        end, 5, 0.1))
        for _ = 1, 20 do
            local status = http.request("GET", "/v1/hostile/ok", { url = t.url, token = user.token })
            assert.are.equal(200, status)
        end
    end)

    it("gives a route its own budget from policies/sandbox.lua", function()
        -- 350 ms or more of Lua: past the default 300 ms, within the route's 1500 ms
        local status, body = http.request("GET", "/v1/hostile/slow", { url = t.url,
                                                                      token = user.token })
        assert.are.equal(200, status, type(body) == "table" and body.code or tostring(body))
    end)

    it("puts a route stopped too often in quarantine, and says so", function()
        local codes = {}
        for i = 1, 4 do
            local status, body, headers = http.request("GET", "/v1/hostile/spin-again",
                                                       { url = t.url, token = user.token })
            codes[i] = status .. " " .. tostring(body.code)
            if i == 4 then
                assert.are.equal(503, status)
                assert.are.equal("TIDE_ROUTE_QUARANTINED", body.code)
                local ra = tonumber(headers["retry-after"])
                assert.is_truthy(ra and ra > 0 and ra <= 60, tostring(headers["retry-after"]))
            else
                assert.are.equal("500 TIDE_SCRIPT_TIMEOUT", codes[i])
            end
        end
        -- answered at once, without running the script
        local t0 = socket.gettime()
        local status = http.request("GET", "/v1/hostile/spin-again", { url = t.url, token = user.token })
        assert.are.equal(503, status)
        assert.is_true(socket.gettime() - t0 < MAX_CPU_MS / 1000)
        assert.are.equal(1, metric(t, 'tide_route_quarantined{route="GET /v1/hostile/spin-again"}'))
        local _, stats = admin_get(t, "/admin/stats")
        local found
        for _, r in ipairs(stats.scripts.routes) do
            if r.route == "GET /v1/hostile/spin-again" then found = r end
        end
        assert.is_truthy(found and found.quarantined_s > 0 and found.stops == 3)
        -- other routes are not affected
        assert.are.equal(200, (http.request("GET", "/v1/hostile/ok", { url = t.url, token = user.token })))
    end)

    local function rejected_on_reload(source, says)
        local failures = metric(t, "tide_reload_failures_total")
        local path = dir .. "/scripts/zz_load.lua"
        env.write_file(path, source)
        env.run("kill -HUP " .. t.pid)
        local ok = env.wait_until(function()
            return metric(t, "tide_reload_failures_total") == failures + 1
        end, 10 * SLOWDOWN, 0.1)
        os.remove(path)
        assert.is_truthy(ok, "the reload was not rejected")
        assert.is_truthy(spawn.log(t):find(says, 1, true), "the log does not say: " .. says)
        -- the old bundle serves, /live too
        assert.are.equal(200, (http.request("GET", "/v1/hostile/ok", { url = t.url, token = user.token })))
        assert.are.equal(200, (admin_get(t, "/live")))
    end

    it("rejects a bundle that loops at load; the old one keeps serving", function()
        rejected_on_reload("while true do end\nreturn {}\n",
                           "loading the bundle ran past script.max_cpu_ms")
    end)

    it("rejects a bundle that takes more memory than the bound at load", function()
        -- one allocation past the bound: refused at once, whatever the machine's load
        rejected_on_reload("local big = string.rep('x', 1.5e9)\nreturn { n = #big }\n",
                           "loading the bundle went over script.max_memory")
    end)

    it("rejects a bundle that calls os.exit at load", function()
        rejected_on_reload("os.exit(3)\nreturn {}\n", "os.exit is not available to scripts")
        assert.is_true(spawn.alive(t))
    end)
end)
