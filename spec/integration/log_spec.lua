-- spec/integration/log_spec.lua - tide's logs never block its loop, and they say what an
-- operator needs. Each test starts a second tide of its own: the suite's environment (same
-- database, secret, config), its own free ports, and its own copy of scripts/ and policies/
-- with a test-only route module. What a user would notice:
--   * stdout is a FIFO that a process holds open and never reads (the pipe fills at 64 KiB)
--     and the log buffer is 64 KiB: 1,500 requests whose access lines overflow both many times
--     are all answered promptly, tide's own loop measure (/admin/stats
--     loop.passes_over_50ms) does not grow, /admin/stats log.stdout counts the dropped lines,
--     and SIGTERM still ends tide within a few seconds (the exit's wait for the log is bounded);
--   * stdout is a file and log.slow_query_ms is 100 (TIDE_LOG_SLOW_QUERY_MS): a 0.3 s
--     statement gets a slow_query line (the SQL text, never its parameters) and a fast one
--     none; an as = "service" call gets an audit db_call line naming the caller, route, kind
--     and table; a service_role request gets an audit request line, also when the result cache
--     answers it, and its database call a db_call line.
-- The second tide and the FIFO's holder are killed in a finally; their files are removed.

local cjson = require "cjson.safe"
local socket = require "socket"
local env = require "spec.helpers.env"
local http = require "spec.helpers.http"
local api = require "spec.helpers.api"

local SLOWDOWN = tonumber(os.getenv("TIDE_TEST_SLOWDOWN")) or 1
local FLOOD = 1500
local LOG_BUFFER = 65536

local MODULE = [[
-- Test-only routes written by spec/integration/log_spec.lua into its own tide's bundle.
local db = require "tide.db"
return {
    ["GET /v1/_test/log/sleep"] = function(req)
        local s = tonumber(req.query.s) or 0
        if s < 0 or s > 2 then s = 0 end
        local rows, err = db.sql("select pg_sleep($1::float8) /* log_spec */", { s },
                                 { mode = "direct" })
        if not rows then return nil, err end
        return { slept = s }
    end,
    ["GET /v1/_test/log/service"] = function()
        local n, err = db.count("trips", { as = "service" })
        if not n then return nil, err end
        return { trips = n }
    end,
}
]]

-- A port nothing listens on, below the ephemeral range (as spec/run.sh picks them).
local function free_port(not_this)
    for _ = 1, 200 do
        local p = math.random(20000, 32000)
        local s = p ~= not_this and socket.bind("127.0.0.1", p)
        if s then
            s:close()
            return p
        end
    end
    error("no free port")
end

local function sh(cmd)
    local out, ok = env.run(cmd)
    assert(ok, cmd .. ": " .. out)
    return out
end

-- Starts a tide on free ports with stdout to `stdout` (a file or FIFO); vars are extra
-- environment variables. Returns {pid, url, admin, err = its stderr file}.
local function start_tide(dir, stdout, vars)
    local t = { err = dir .. "/tide.err" }
    local http_port = free_port()
    local admin_port = free_port(http_port)
    t.url = "http://127.0.0.1:" .. http_port
    t.admin = "http://127.0.0.1:" .. admin_port
    local parts = { "env", "TIDE_HTTP_PORT=" .. http_port, "TIDE_ADMIN_PORT=" .. admin_port,
                    "TIDE_SCRIPTS_DIR=" .. env.quote(dir .. "/scripts"),
                    "TIDE_POLICIES_DIR=" .. env.quote(dir .. "/policies") }
    for k, v in pairs(vars or {}) do parts[#parts + 1] = k .. "=" .. env.quote(v) end
    parts[#parts + 1] = env.quote(env.bin) .. " serve >" .. env.quote(stdout) .. " 2>" ..
                        env.quote(t.err) .. " </dev/null & echo $!"
    t.pid = assert(tonumber(sh(table.concat(parts, " ")):match("(%d+)")), "no pid")
    local up = env.wait_until(function()
        local ok, status = pcall(http.request, "GET", "/live", { url = t.admin, timeout = 1 })
        return ok and status == 200
    end, 20 * SLOWDOWN, 0.1)
    assert(up, "the second tide did not start:\n" .. (env.read_file(t.err) or ""))
    return t
end

local function alive(pid)
    local _, ok = env.run("kill -0 " .. pid .. " 2>/dev/null")
    return ok
end

-- SIGTERM, then SIGKILL after `grace` seconds; returns the seconds it took to exit on TERM
-- (nil if it had to be killed).
local function stop(pid, grace)
    if not pid or not alive(pid) then return 0 end
    local t0 = env.now()
    env.run("kill -TERM " .. pid .. " 2>/dev/null")
    if env.wait_until(function() return not alive(pid) end, grace, 0.05) then
        return env.now() - t0
    end
    env.run("kill -KILL " .. pid .. " 2>/dev/null")
    return nil
end

-- Stops t and checks that it exited on SIGTERM without a sanitizer's report (make asan).
local function stop_clean(t, grace)
    local took = stop(t.pid, grace)
    assert.is_truthy(took, "tide did not exit within " .. grace .. " s of SIGTERM")
    local err = env.read_file(t.err) or ""
    assert.is_nil(err:find("Sanitizer", 1, true), err)
    assert.is_nil(err:find("runtime error:", 1, true), err)
end

local function stats(t)
    local status, body = http.request("GET", "/admin/stats", { url = t.admin, timeout = 5 })
    assert(status == 200 and type(body) == "table", "GET /admin/stats: " .. tostring(status))
    return body
end

-- A fresh directory with a copy of the bundle plus the test module.
local function bundle_dir()
    local dir = sh("mktemp -d /tmp/tide-log-spec.XXXXXX"):gsub("%s+$", "")
    sh("cp -r scripts policies " .. env.quote(dir) .. "/")
    env.write_file(dir .. "/scripts/zz_test_log.lua", MODULE)
    return dir
end

-- The JSON lines of file path, decoded (lines that do not decode are kept as strings).
local function json_lines(path)
    local lines = {}
    for line in (env.read_file(path) or ""):gmatch("[^\n]+") do
        lines[#lines + 1] = cjson.decode(line) or line
    end
    return lines
end

local function find(lines, pred)
    for _, l in ipairs(lines) do
        if type(l) == "table" and pred(l) then return l end
    end
end

local function count(lines, pred)
    local n = 0
    for _, l in ipairs(lines) do
        if type(l) == "table" and pred(l) then n = n + 1 end
    end
    return n
end

describe("logs", function()
    local u

    setup(function()
        env.need("bin")
        math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0) % 100000)
        u = api.user()
    end)

    it("never stall requests when nobody reads stdout, and count what they drop", function()
        local dir = bundle_dir()
        local fifo = dir .. "/stdout.fifo"
        local holder, t
        finally(function()
            if t then stop(t.pid, 5) end
            if holder then env.run("kill -KILL " .. holder .. " 2>/dev/null") end
            env.run("rm -rf " .. env.quote(dir))
        end)
        sh("mkfifo " .. env.quote(fifo))
        -- holds the FIFO open (read-write never blocks) and never reads it
        holder = tonumber(sh("sleep 600 <>" .. env.quote(fifo) .. " >/dev/null 2>&1 & echo $!")
                          :match("(%d+)"))
        t = start_tide(dir, fifo, { TIDE_LOG_BUFFER_BYTES = tostring(LOG_BUFFER) })
        local base = http.request("GET", "/v1/trips?limit=1", { url = t.url, token = u.token })
        assert.are.equal(200, base)
        local before = stats(t)
        assert.is_table(before.log, "/admin/stats has no log section")
        local writer = before.log.stdout.writer
        assert.is_true(writer == "reopened" or writer == "polled",
                       "stdout writer: " .. tostring(writer))

        -- 1,500 requests, each with a ~500-byte access line: ~750 KB against 128 KiB of room
        local long = "/v1/_test/nothing/" .. string.rep("x", 380)
        local worst, answered, sock, used = 0, 0, nil, 0
        local deadline = env.now() + 120
        for i = 1, FLOOD do
            assert(env.now() < deadline, "the flood ran past 120 s: " .. answered .. " answers")
            if not sock or used == 100 then
                if sock then sock:close() end
                sock, used = http.connect(t.url, 5), 0
            end
            local path, token, want = long, nil, 404
            if i % 100 == 0 then path, token, want = "/v1/trips?limit=1", u.token, 200 end
            local t0 = env.now()
            http.send(sock, http.build("GET", path, { url = t.url, token = token }))
            local status, err = http.read_response(sock)
            local took = env.now() - t0
            assert(status == want, ("request %d: %s %s"):format(i, tostring(status), tostring(err)))
            answered = answered + 1
            used = used + 1
            if took > worst then worst = took end
        end
        sock:close()
        local after = stats(t)
        local out = after.log.stdout
        assert.are.equal(FLOOD, answered)
        assert.is_true(worst < 1.0 * SLOWDOWN,
                       ("the slowest answer took %.0f ms"):format(worst * 1000))
        assert.are.equal(before.loop.passes_over_50ms, after.loop.passes_over_50ms,
                         ("the loop stalled (longest pass %.1f ms); tide's warnings:\n%s")
                             :format(after.loop.max_pass_ms, env.read_file(t.err) or ""))
        assert.is_true(out.dropped_lines > before.log.stdout.dropped_lines, "no line was dropped")
        local dropped = out.dropped_lines - before.log.stdout.dropped_lines
        assert.is_true(out.dropped_bytes >= dropped * 400)
        assert.is_true(out.buffered_bytes > 0 and out.buffered_bytes <= LOG_BUFFER,
                       "buffered " .. tostring(out.buffered_bytes))
        assert.is_true(out.blocked > 0)

        -- stopping does not wait on the stuck reader for more than its bounded second
        stop_clean(t, 10 * SLOWDOWN)
        t = nil
    end)

    it("write slow_query and audit lines with their fields", function()
        local dir = bundle_dir()
        local out = dir .. "/stdout.log"
        local t
        finally(function()
            if t then stop(t.pid, 5) end
            env.run("rm -rf " .. env.quote(dir))
        end)
        t = start_tide(dir, out, { TIDE_LOG_SLOW_QUERY_MS = "100" })
        local service_sub = env.uuid()
        local service = env.token(service_sub, { role = "service_role" })
        local function get(path, token)
            return (http.request("GET", path, { url = t.url, token = token }))
        end
        assert.are.equal(200, get("/v1/_test/log/sleep?s=0.3", u.token))
        assert.are.equal(200, get("/v1/_test/log/sleep?s=0", u.token))
        assert.are.equal(200, get("/v1/_test/log/service", u.token))
        assert.are.equal(200, get("/v1/trips?limit=1", service))        -- MISS: the handler runs
        assert.are.equal(200, get("/v1/trips?limit=1", service))        -- HIT: the cache answers

        local lines
        env.wait_until(function()
            lines = json_lines(out)
            return count(lines, function(l) return l.type == "access" end) >= 5
        end, 5 * SLOWDOWN, 0.05)
        local function access(path)
            return find(lines, function(l) return l.type == "access" and l.path == path end)
        end

        -- slow_query: the slow statement only, with the request's id and route
        local slow = find(lines, function(l) return l.type == "slow_query" end)
        assert.is_table(slow, "no slow_query line in:\n" .. (env.read_file(out) or ""))
        assert.are.equal(1, count(lines, function(l) return l.type == "slow_query" end))
        local a = access("/v1/_test/log/sleep")
        assert.is_table(a)
        assert.are.equal(a.id, slow.id)
        assert.are.equal("direct", slow.upstream)
        assert.is_true(slow.ms >= 300 and slow.ms < 3000 * SLOWDOWN, "ms " .. tostring(slow.ms))
        assert.are.equal(1, slow.rows)
        assert.are.equal("select pg_sleep($1::float8) /* log_spec */", slow.statement)
        assert.are.equal("/v1/_test/log/sleep", slow.route)
        assert.are.equal("GET", slow.method)
        assert.are.equal("sql", slow.kind)
        assert.are.equal(1, slow.attempts)
        assert.is_nil(slow.error)

        -- audit db_call of as = "service": who (the caller), where (route), what (kind, table)
        local calls = {}
        for _, l in ipairs(lines) do
            if type(l) == "table" and l.type == "audit" and l.event == "db_call" then
                calls[#calls + 1] = l
            end
        end
        assert.are.equal(2, #calls, "db_call lines: " .. cjson.encode(calls))
        local as_service = calls[1]
        assert.are.equal(access("/v1/_test/log/service").id, as_service.id)
        assert.are.equal("authenticated", as_service.role)
        assert.are.equal(u.id, as_service.sub)
        assert.are.equal("/v1/_test/log/service", as_service.route)
        assert.are.equal("GET", as_service.method)
        assert.are.equal("count", as_service.kind)
        assert.are.equal("trips", as_service.table)
        assert.are.equal("as_service", as_service.via)
        assert.is_string(as_service.upstream)
        -- the service_role token's own call
        local by_token = calls[2]
        assert.are.equal("service_role", by_token.role)
        assert.are.equal("service_role", by_token.via)
        assert.are.equal("/v1/trips", by_token.route)
        assert.are.equal("select", by_token.kind)
        assert.are.equal("trips", by_token.table)

        -- audit request: both service_role requests, the cache's answer included
        local reqs = {}
        for _, l in ipairs(lines) do
            if type(l) == "table" and l.type == "audit" and l.event == "request" then
                reqs[#reqs + 1] = l
            end
        end
        assert.are.equal(2, #reqs, "request audit lines: " .. cjson.encode(reqs))
        for _, r in ipairs(reqs) do
            assert.are.equal("service_role", r.role)
            assert.are.equal("GET", r.method)
            assert.are.equal("/v1/trips", r.route)
            assert.are.equal("/v1/trips", r.path)
            assert.are.equal(200, r.status)
            assert.are.equal(service_sub, r.sub)
        end
        assert.are.equal(by_token.id, reqs[1].id)
        local hit = find(lines, function(l) return l.type == "access" and l.cache == "HIT" end)
        assert.is_table(hit, "the second service_role read was not a cache hit")
        assert.are.equal(hit.id, reqs[2].id)
        -- no line carries a token
        local text = env.read_file(out)
        assert.is_nil(text:find(u.token, 1, true))
        assert.is_nil(text:find(service, 1, true))
        stop_clean(t, 10 * SLOWDOWN)
        t = nil
    end)
end)
