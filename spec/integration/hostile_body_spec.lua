-- spec/integration/hostile_body_spec.lua - request bodies built to be expensive to decode.
-- tide answers every request from one event loop, so a body that is slow to decode stalls
-- every other caller. No token is needed to reach the decoder, so these run anonymously:
--   * the classic bomb (990 levels of arrays holding ~87,000 empty arrays, 257 KB) is refused
--     at once with a 400 that names the limit, without a 50 ms loop pass (tide's own measure,
--     /admin/stats loop.passes_over_50ms); so are nesting past 64 levels and more than 10,000
--     arrays and objects;
--   * the costliest shape that passes both limits (short distinct strings: each one is a Lua
--     string to intern), at a quarter MiB, never holds the loop for a 50 ms pass, and at the full
--     1 MiB body size is answered within a second;
--   * the memory twenty such decodes took is given back: tide's RSS returns to within 64 MB
--     of where it started (idle-time collection, then the C heap is trimmed).

local env = require "helpers.env"
local http = require "helpers.http"
local fault = require "helpers.fault"

local function bomb(depth, empties)
    return string.rep("[", depth) .. string.rep("[],", empties) .. "[]" .. string.rep("]", depth)
end

-- {"embedding": ["1", "2", ...]} filling `size` bytes: decoded, then refused by the route's own
-- check (the embedding must be numbers), so the whole decode happens.
local function strings_body(size)
    local parts, n, len = {}, 0, 16
    while len < size - 16 do
        n = n + 1
        parts[n] = string.format('"%x"', n)
        len = len + #parts[n] + 1
    end
    local b = '{"embedding":[' .. table.concat(parts, ",") .. ']}'
    assert(#b <= size)
    return b
end

local MAX_BODY = 1048576

-- ASan's allocator keeps freed memory in quarantine (256 MB by default) and ignores
-- malloc_trim, so under make asan RSS says nothing about tide: the memory bound is checked on
-- the regular build only.
local INSTRUMENTED = os.getenv("TIDE_TEST_ASAN") == "1"

-- The RSS of the process that decodes the bodies: the worker (/admin/stats' pid), not the
-- supervising parent the suite started (TIDE_PID).
local function rss_kb()
    local f = assert(io.open("/proc/" .. math.floor(fault.stats().pid) .. "/status", "r"))
    local s = f:read("*a")
    f:close()
    return tonumber(s:match("VmRSS:%s*(%d+)"))
end

local function post(body)
    local t0 = env.now()
    local status, decoded = http.request("POST", "/v1/destinations/similar", {
        body = body, headers = { ["Content-Type"] = "application/json" }, timeout = 30,
    })
    return status, decoded, env.now() - t0
end

describe("hostile request bodies", function()
    setup(function()
        env.need("pid", "admin_url")
    end)

    it("refuses the classic bomb at once, naming the limit", function()
        local slow_before = fault.stats().loop.passes_over_50ms
        local status, body, took = post(bomb(990, 87000))
        assert.are.equal(400, status)
        assert.are.equal("TIDE_JSON_TOO_LARGE", body.code)
        assert.matches("10000", body.message, nil, true)
        assert.is_true(took < 1.0, ("took %.3f s"):format(took))
        assert.are.equal(slow_before, fault.stats().loop.passes_over_50ms)
    end)

    it("refuses JSON nested deeper than 64 levels with a 400 naming the limit", function()
        local status, body = post(string.rep("[", 990) .. string.rep("]", 990))
        assert.are.equal(400, status)
        assert.are.equal("TIDE_JSON_TOO_DEEP", body.code)
        assert.matches("64", body.message, nil, true)
        -- exactly at the limit is fine: the handler sees the body and validates it
        status, body = post(string.rep("[", 64) .. string.rep("]", 64))
        assert.are.equal(400, status)
        assert.are.equal("TIDE_INVALID_EMBEDDING", body.code)
    end)

    it("refuses more than 10,000 arrays and objects, and decodes 10,000", function()
        local status, body = post(bomb(1, 10000))       -- 10,002 in all
        assert.are.equal(400, status)
        assert.are.equal("TIDE_JSON_TOO_LARGE", body.code)
        status, body = post(bomb(1, 9997))              -- 10,000 in all
        assert.are.equal(400, status)
        assert.are.equal("TIDE_INVALID_EMBEDDING", body.code)
    end)

    it("decodes a quarter-MiB of the costliest accepted shape without a 50 ms loop pass", function()
        local slow_before = fault.stats().loop.passes_over_50ms
        local status, body = post(strings_body(MAX_BODY / 4))
        assert.are.equal(400, status)
        assert.are.equal("TIDE_INVALID_EMBEDDING", body.code)
        assert.are.equal(slow_before, fault.stats().loop.passes_over_50ms)
    end)

    it("answers 1 MiB of it within a second and gives the memory back", function()
        local before = rss_kb()
        local b = strings_body(MAX_BODY)
        for _ = 1, 20 do
            local status, body, took = post(b)
            -- decoded, then refused by the handler's own check (not a size or depth refusal)
            assert.are.equal(400, status)
            assert.are.equal("TIDE_INVALID_EMBEDDING", body.code)
            assert.is_true(took < 1.0, ("took %.3f s"):format(took))
        end
        if INSTRUMENTED then
            return
        end
        local ok = env.wait_until(function()
            return rss_kb() - before < 64 * 1024
        end, 5, 0.1)
        assert.is_truthy(ok, ("RSS grew by %.0f MB"):format((rss_kb() - before) / 1024))
    end)

    it("gives back what a request's Lua garbage took once tide is idle", function()
        -- a test-only route that builds ~100 MB of tables and drops them (its one long loop
        -- pass, ~0.1 s, is the route's, not tide's): nothing allocates afterwards, so only
        -- tide's idle-time collection (and the heap trim after it) can give that memory back
        local path = env.install_module("zz_test_garbage.lua", [[
-- Test-only route written by spec/integration/hostile_body_spec.lua; never shipped.
return {
    ["GET /v1/_test/garbage"] = function(req)
        local t = {}
        for i = 1, math.min(tonumber(req.query.n) or 0, 1000000) do t[i] = { i } end
        return { made = #t }
    end,
}
]], function()
            return (http.request("GET", "/v1/_test/garbage?n=0")) == 200
        end)
        finally(function() env.remove_module(path) end)
        env.sleep(0.5)
        local before = rss_kb()
        local status = http.request("GET", "/v1/_test/garbage?n=1000000", { timeout = 10 })
        assert.are.equal(200, status)
        if INSTRUMENTED then
            return
        end
        local ok = env.wait_until(function()
            return rss_kb() - before < 16 * 1024
        end, 5, 0.1)
        assert.is_truthy(ok, ("RSS stayed %.0f MB up"):format((rss_kb() - before) / 1024))
    end)
end)
