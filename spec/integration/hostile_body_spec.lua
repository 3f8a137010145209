-- spec/integration/hostile_body_spec.lua - request bodies built to be expensive to decode.
-- tide answers every request from one event loop, so a body that is slow to decode stalls
-- every other caller. No token is needed to reach the decoder, so these run anonymously:
--   * the classic bomb (990 levels of arrays holding ~87,000 empty arrays, 257 KB) is refused
--     with a 400 that names the depth limit;
--   * the worst shape that fits under the limit, at the full 1 MiB body size, is answered
--     within a second, and a quarter-size one never holds the loop for a 50 ms pass (tide's own
--     measure, /admin/stats loop.passes_over_50ms);
--   * the memory twenty such decodes took is given back: tide's RSS returns to within 64 MB
--     of where it started (idle-time collection, then the C heap is trimmed).

local env = require "helpers.env"
local http = require "helpers.http"
local fault = require "helpers.fault"

local function bomb(depth, empties)
    return string.rep("[", depth) .. string.rep("[],", empties) .. "[]" .. string.rep("]", depth)
end

-- The largest body of that shape that fits max_body_bytes (1 MiB), nested 63 levels deep
-- (64 with the empty arrays inside): the most containers a body may make tide build.
local MAX_BODY = 1048576
local function worst_within_limit()
    local depth = 63
    local empties = math.floor((MAX_BODY - 2 * depth - 2) / 3)
    local b = bomb(depth, empties)
    assert(#b <= MAX_BODY)
    return b
end

-- ASan's allocator keeps freed memory in quarantine (256 MB by default) and ignores
-- malloc_trim, so under make asan RSS says nothing about tide: the memory bound is checked on
-- the regular build only.
local INSTRUMENTED = os.getenv("TIDE_TEST_ASAN") == "1"

local function rss_kb()
    local f = assert(io.open("/proc/" .. math.floor(env.pid) .. "/status", "r"))
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

    it("refuses JSON nested deeper than 64 levels with a 400 naming the limit", function()
        local slow_before = fault.stats().loop.passes_over_50ms
        local status, body, took = post(bomb(990, 87000))
        assert.are.equal(400, status)
        assert.are.equal("TIDE_JSON_TOO_DEEP", body.code)
        assert.matches("64", body.message, nil, true)
        assert.is_true(took < 1.0, ("took %.3f s"):format(took))
        assert.are.equal(slow_before, fault.stats().loop.passes_over_50ms)
        -- exactly at the limit is fine: the handler sees the body and validates it
        local at_limit = string.rep("[", 64) .. string.rep("]", 64)
        local st2, b2 = post(at_limit)
        assert.are_not.equal("TIDE_JSON_TOO_DEEP", b2.code, tostring(st2))
    end)

    it("decodes a quarter-MiB of empty arrays without a 50 ms loop pass", function()
        local slow_before = fault.stats().loop.passes_over_50ms
        local status, body = post(bomb(63, 87000))
        assert.are.equal(400, status)
        assert.are.equal("TIDE_INVALID_EMBEDDING", body.code)
        assert.are.equal(slow_before, fault.stats().loop.passes_over_50ms)
    end)

    it("answers 1 MiB of the worst shape within a second and gives the memory back", function()
        local before = rss_kb()
        local b = worst_within_limit()
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
end)
