-- spec/integration/concurrency_spec.lua - the loop never blocks on Postgres: while one request
-- waits on a slow statement (pg_sleep through a test-only route), requests on other
-- connections are answered at once, and two slow requests overlap instead of queueing.
-- The slow route is not part of scripts/: this spec drops a module into the served bundle
-- (TIDE_BUNDLE_DIR/scripts), reloads with SIGHUP, and removes it (and reloads) afterwards.

local env = require "spec.helpers.env"
local http = require "spec.helpers.http"
local api = require "spec.helpers.api"

local MODULE = "zz_test_sleep.lua"
local SLEEP = 2

local SOURCE = [[
-- Test-only route written by spec/integration/concurrency_spec.lua; never shipped.
local db = require "tide.db"
return {
    ["GET /v1/_test/sleep"] = function(req)
        local s = tonumber(req.query.s) or 0
        if s < 0 or s > 10 then s = 0 end
        local rows, err = db.sql("select pg_sleep($1::float8)", { s }, { mode = "direct" })
        if not rows then return nil, err end
        return { slept = s }
    end,
}
]]

-- Sends a request on a fresh connection without reading the answer.
local function start(path, token)
    local sock = http.connect()
    http.send(sock, http.build("GET", path, { token = token, close = true }))
    return sock
end

local function finish(sock)
    local status, headers, body = http.read_response(sock)
    sock:close()
    assert(status, "no response: " .. tostring(headers))
    return status, http.decode(headers, body)
end

describe("concurrency", function()
    local u, path

    setup(function()
        env.need("bin", "pid", "bundle_dir")
        u = api.user()
        path = env.install_module(MODULE, SOURCE, function()
            return (api.call(u, "GET", "/v1/_test/sleep?s=0")) == 200
        end)
    end)

    teardown(function()
        if path then
            os.remove(path)
            env.hup()
            env.wait_until(function()
                return (api.call(u, "GET", "/v1/_test/sleep?s=0")) == 404
            end, 10, 0.1)
        end
    end)

    it("answers other connections while a request waits on Postgres", function()
        local t0 = env.now()
        local slow = start("/v1/_test/sleep?s=" .. SLEEP, u.token)
        env.sleep(0.2)   -- let the slow statement reach Postgres

        local answered = {}
        for i = 1, 5 do
            local status, body = api.call(u, "GET", "/v1/users/me")
            assert.are.equal(200, status)
            assert.are.equal(u.id, body.id)
            answered[i] = env.now() - t0
        end
        -- all five were answered well before the slow one could have finished
        assert.is_true(answered[5] < SLEEP * 0.75,
                       string.format("fast requests took until %.2fs", answered[5]))

        local status, body = finish(slow)
        local slow_took = env.now() - t0
        assert.are.equal(200, status)
        assert.are.equal(SLEEP, body.slept)
        assert.is_true(slow_took >= SLEEP * 0.95, string.format("slow request took %.2fs", slow_took))
    end)

    it("two slow requests overlap instead of queueing", function()
        local t0 = env.now()
        local a = start("/v1/_test/sleep?s=1.5", u.token)
        local b = start("/v1/_test/sleep?s=1.5", u.token)
        local sa = finish(a)
        local sb = finish(b)
        local took = env.now() - t0
        assert.are.equal(200, sa)
        assert.are.equal(200, sb)
        assert.is_true(took < 2.7, string.format("two 1.5 s sleeps took %.2fs together", took))
    end)
end)
