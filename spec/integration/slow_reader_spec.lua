-- Clients that ask for large answers and never read them (docs/bounds.md, docs/security.md
-- "Slow readers are bounded"). A tide of the spec's own serves a test-only route answering
-- 8 MB, with http.max_unsent_bytes at 16 MiB (TIDE_HTTP_MAX_UNSENT_BYTES). Forty raw
-- connections each ask for the answer and read nothing; then:
--   * the worker's RSS grows by well under the forty answers' unsent bytes (what the kernel's
--     socket buffers do not take: about 4 MB each with Linux's default 4 MB send buffer): at
--     most the budget plus 16 MB (the newest answer, and slack), where holding them all is over
--     150 MB - what tide frees goes back to the system, not into holes in its heap;
--   * the slowest of those connections were closed (they end before their answer's last byte),
--     exactly as many as /admin/stats http.slow_readers_closed and /metrics
--     tide_http_slow_readers_closed_total count;
--   * meanwhile other clients are served: a database read, and the large answer itself read
--     whole by a client that reads;
--   * once every answer is read or dropped, /admin/stats http.unsent_bytes is back to 0.

local env = require "spec.helpers.env"
local http = require "spec.helpers.http"
local spawn = require "spec.helpers.spawn"

local N = 40
local SIZE = 8000000
local BUDGET = 16 * 1024 * 1024
-- beyond the budget: the newest answer (8 MB at most) and the rest of the process
local SLACK = 16 * 1024 * 1024
-- ASan's allocator keeps freed memory in quarantine: RSS says nothing under make asan
local INSTRUMENTED = os.getenv("TIDE_TEST_ASAN") == "1"

local MODULE = [[
local big = string.rep("x", ]] .. SIZE .. [[)
return {
  ["GET /v1/_test/slow/big"] = function() return big end,
}
]]

local function stats(t)
    local status, body = http.request("GET", "/admin/stats", { url = t.admin_url, timeout = 5 })
    assert(status == 200 and type(body) == "table", "GET /admin/stats: " .. tostring(status))
    return body
end

local function rss_bytes(pid)
    local text = env.read_file("/proc/" .. math.floor(pid) .. "/status") or ""
    return (tonumber(text:match("VmRSS:%s*(%d+)")) or 0) * 1024
end

-- The value of one series in /metrics (0 when absent).
local function metric(t, series)
    local status, text = http.request("GET", "/metrics", { url = t.admin_url, timeout = 5 })
    assert(status == 200, "GET /metrics: " .. tostring(status))
    for line in text:gmatch("[^\n]+") do
        local name, v = line:match("^(%S+) (%S+)$")
        if name == series then return tonumber(v) end
    end
    return 0
end

-- Reads one whole answer from sock: the body's length, or nil and why it ended.
local function read_answer(sock)
    sock:settimeout(5)
    local status, headers, body = http.read_response(sock, "GET")
    if not status then return nil, headers end
    assert(status == 200, "status " .. tostring(status))
    return #body, tonumber(headers["content-length"])
end

describe("slow readers", function()
    local dir, t

    setup(function()
        env.need("bin")
        dir = spawn.bundle()
        env.write_file(dir .. "/scripts/zz_slow_reader.lua", MODULE)
        t = spawn.tide(dir, { env = { "TIDE_HTTP_MAX_UNSENT_BYTES=" .. BUDGET } })
    end)

    teardown(function()
        spawn.stop(t)
        spawn.remove(dir)
    end)

    it("are closed past the unsent-bytes budget while everyone else is served", function()
        local url = t.url
        -- warm: the answer once, read whole (the route's string, the first buffers)
        local status, body = http.request("GET", "/v1/_test/slow/big", { url = url, timeout = 10 })
        assert.equals(200, status)
        assert.equals(SIZE, #body)
        local s0 = stats(t)
        local pid = s0.pid
        local rss0 = rss_bytes(pid)
        local closed0 = s0.http.slow_readers_closed or 0

        -- forty clients ask and never read
        local socks = {}
        for i = 1, N do
            local sock = http.connect(url, 5)
            http.send(sock, http.build("GET", "/v1/_test/slow/big", { url = url }))
            socks[i] = sock
        end
        local answered = env.wait_until(function()
            return stats(t).http.responses >= s0.http.responses + N
        end, 30, 0.1)
        assert.truthy(answered, "tide did not answer all " .. N .. " requests")
        env.sleep(0.3)
        local grown = rss_bytes(pid) - rss0
        if not INSTRUMENTED then
            assert.truthy(grown < BUDGET + SLACK,
                          ("RSS grew by %.1f MB holding %d unread answers (budget %.0f MB)")
                          :format(grown / 1e6, N, BUDGET / 1e6))
        end

        -- others are served meanwhile: a database read, and the big answer read whole
        local t0 = env.now()
        status = http.request("GET", "/v1/destinations/popular", { url = url, timeout = 5 })
        assert.equals(200, status)
        assert.truthy(env.now() - t0 < 2, "a read took " .. (env.now() - t0) .. " s")
        status, body = http.request("GET", "/v1/_test/slow/big", { url = url, timeout = 10 })
        assert.equals(200, status)
        assert.equals(SIZE, #body)

        -- the slow ones: those tide closed end early, the others deliver their whole answer
        local ended, whole = 0, 0
        for i = 1, N do
            local got, why = read_answer(socks[i])
            if got == SIZE then whole = whole + 1 else ended = ended + 1 end
            assert.truthy(got == SIZE or got == nil, "answer " .. i .. ": " .. tostring(got) ..
                          " bytes (" .. tostring(why) .. ")")
            socks[i]:close()
        end
        local s1 = stats(t)
        local closed = (s1.http.slow_readers_closed or 0) - closed0
        assert.truthy(ended > 0, "no slow reader was closed")
        assert.equals(ended, closed)
        assert.equals(N, ended + whole)
        assert.equals(s1.http.slow_readers_closed, metric(t, "tide_http_slow_readers_closed_total"))
        -- every answer read whole or dropped with its connection: nothing is held any more
        assert.truthy(env.wait_until(function() return stats(t).http.unsent_bytes == 0 end,
                                     5, 0.05), "unsent bytes are still held")
        assert.truthy(spawn.alive(t))
    end)
end)
