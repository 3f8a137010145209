-- spec/integration/reload_spec.lua - SIGHUP reloads as a user notices them: a reload changes
-- a route's behaviour; a bundle with a syntax error (or one that raises while loading) is
-- rejected whole, so the old routes keep serving and none of the new bundle's changes show;
-- so is one whose policies/exposure.lua does not load (a syntax error, no file, a malformed
-- value), and /rest/v1 keeps hiding what the old policy hides (api_keys' sealed columns);
-- and under steady traffic from another process, reloads drop no request (all 2xx).
-- It edits files of its own (zz_test_*.lua) in the served copy TIDE_BUNDLE_DIR/scripts and
-- removes them, reloading, at the end; policies/exposure.lua there is put back after each
-- test that breaks it.

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"
local fault = require "spec.helpers.fault"

local VERSION = "zz_test_reload.lua"
local BROKEN = "zz_test_broken.lua"

-- A module whose GET /v1/_test/version answers {v = v}; with extra = true it also has
-- GET /v1/_test/extra.
local function version_module(v, extra)
    return ([[
-- Test-only routes written by spec/integration/reload_spec.lua; never shipped.
local routes = {
    ["GET /v1/_test/version"] = function(req) return { v = %d } end,
}
%s
return routes
]]):format(v, extra and [[routes["GET /v1/_test/extra"] = function(req) return { extra = true } end]] or "")
end

describe("reload", function()
    local u, files

    local function version()
        local status, body = api.call(u, "GET", "/v1/_test/version")
        if status ~= 200 then return nil, status end
        return body.v, status
    end

    -- Writes a file into the bundle and remembers it for teardown.
    local function put(name, text)
        local path = env.bundle_script(name)
        files[path] = true
        env.write_file(path, text)
    end

    -- Waits until /v1/_test/version says v on 5 requests in a row (each on a new connection,
    -- so every worker has been asked). Returns true or false after 10 s.
    local function settles_on(v)
        local streak = 0
        local ok = env.wait_until(function()
            if version() == v then streak = streak + 1 else streak = 0 end
            return streak >= 5
        end, 10, 0.05)
        return ok == true
    end

    setup(function()
        env.need("bin", "pid", "bundle_dir")
        u = api.user()
        files = {}
        put(VERSION, version_module(1))
        env.hup()
        assert(settles_on(1), "the test module did not load after SIGHUP")
    end)

    teardown(function()
        for path in pairs(files or {}) do os.remove(path) end
        if files and next(files) then
            env.hup()
            env.wait_until(function()
                return (api.call(u, "GET", "/v1/_test/version")) == 404
            end, 10, 0.1)
        end
    end)

    it("a reload changes a route's behaviour", function()
        put(VERSION, version_module(2))
        env.hup()
        assert.is_true(settles_on(2))
        -- and the shipped routes still answer
        assert.are.equal(200, (api.call(u, "GET", "/v1/users/me")))
    end)

    local function rejected_whole(broken_source)
        -- Start from a known good bundle serving version 2.
        os.remove(env.bundle_script(BROKEN))
        put(VERSION, version_module(2))
        env.hup()
        assert.is_true(settles_on(2))
        put(VERSION, version_module(3, true))
        put(BROKEN, broken_source)
        env.hup()
        -- For 1.5 s after the reload, every answer comes from the old bundle.
        local deadline = env.now() + 1.5
        local checks = 0
        while env.now() < deadline do
            assert.are.equal(2, (version()))
            assert.are.equal(404, (api.call(u, "GET", "/v1/_test/extra")))
            assert.are.equal(200, (api.call(u, "GET", "/v1/users/me")))
            checks = checks + 1
            env.sleep(0.05)
        end
        assert.is_true(checks > 3)
        -- Fix the bundle: the next reload takes all of it, so the earlier one was rejected whole.
        os.remove(env.bundle_script(BROKEN))
        env.hup()
        assert.is_true(settles_on(3))
        assert.are.equal(200, (api.call(u, "GET", "/v1/_test/extra")))
    end

    it("a bundle with a syntax error is rejected whole; the old routes keep serving", function()
        rejected_whole("return { ['GET /v1/_test/broken'] = function(req) return { } end\n")
    end)

    it("a bundle whose module raises while loading is rejected whole", function()
        rejected_whole("error('zz_test_broken: refusing to load')\n")
    end)

    it("a bundle with a malformed route is rejected whole", function()
        rejected_whole("return { ['FETCH nowhere'] = 42 }\n")
    end)

    -- Breaks policies/exposure.lua with breaker(path, text) alongside a change of the version
    -- module: the reload must be rejected whole, and api_keys' sealed columns stay refused
    -- (400 42703, as for a column that does not exist) for a user and for service_role.
    local function exposure_rejected(breaker)
        env.need("admin_url")
        local path = env.bundle_dir .. "/policies/exposure.lua"
        local original = assert(env.read_file(path))
        local service = env.new_user({ role = "service_role" })
        finally(function()
            env.write_file(path, original)
            env.hup()
        end)
        put(VERSION, version_module(2))
        env.hup()
        assert.is_true(settles_on(2))
        put(VERSION, version_module(3))
        breaker(path, original)
        local failures = fault.stats().reload_failures
        env.hup()
        assert.is_truthy(env.wait_until(function()
            return fault.stats().reload_failures > failures
        end, 5, 0.05), "the reload was not counted as rejected")
        local deadline = env.now() + 1.5
        local checks = 0
        while env.now() < deadline do
            for _, who in ipairs { u, service } do
                local status, body = api.call(who, "GET",
                                              "/rest/v1/api_keys?select=encrypted_key,key_hash")
                assert.are.equal(400, status)
                assert.are.equal("42703", body.code)
            end
            assert.are.equal(2, (version()))
            checks = checks + 1
            env.sleep(0.05)
        end
        assert.is_true(checks > 3)
        -- put back: the next reload takes the whole bundle, so the earlier one was rejected
        env.write_file(path, original)
        env.hup()
        assert.is_true(settles_on(3))
        assert.are.equal(400, (api.call(service, "GET", "/rest/v1/api_keys?select=key_hash")))
    end

    it("a bundle whose policies/exposure.lua has a syntax error is rejected whole", function()
        exposure_rejected(function(path, text) env.write_file(path, text .. "\noops\n") end)
    end)

    it("a bundle without policies/exposure.lua is rejected whole", function()
        exposure_rejected(function(path) assert(os.remove(path)) end)
    end)

    it("a bundle whose policies/exposure.lua is malformed is rejected whole", function()
        exposure_rejected(function(path, text)
            -- a column list written as a string would hide nothing
            local bad = text:gsub('api_keys = {[^}]*}', 'api_keys = "encrypted_key"')
            assert.are_not.equal(text, bad)
            env.write_file(path, bad)
        end)
    end)

    it("reloads under steady traffic drop no request", function()
        local count = 300
        local cmd = table.concat({
            "luajit", "spec/helpers/traffic.lua", tostring(count), "0.005", env.quote(u.token),
            "/v1/users/me", "/v1/_test/version", "/v1/destinations/popular?limit=1",
        }, " ")
        local child = assert(io.popen(cmd, "r"))
        assert.are.equal("ready", child:read("*l"))
        -- Five reloads while the traffic runs, each one a real change of the bundle.
        for i = 1, 5 do
            env.sleep(0.15)
            put(VERSION, version_module(10 + i))
            env.hup()
        end
        local summary = child:read("*l") or "(no summary)"
        child:close()
        assert.matches("^done ", summary)
        assert.are.equal(tostring(count), summary:match("ok=(%d+)"), summary)
        assert.are.equal("0", summary:match("failed=(%d+)"), summary)
        assert.is_true(settles_on(15))
    end)
end)
