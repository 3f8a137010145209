-- spec/integration/watch_spec.lua - `tide serve --watch`, the dev loop: an edit to a script is
-- served within a second without any signal; a save that writes several files reloads once; an
-- edit to a policy reloads too; an edit with a syntax error is rejected (logged) and the old
-- bundle keeps serving, and the fix is then applied. Editors save both in place and through a
-- temporary file renamed over the script; both are covered.
--
-- These run a second tide of their own (spec/helpers/spawn.lua; the suite's tide is left
-- alone) on a copy of scripts/ and policies/ that the spec edits. It is always stopped in
-- teardown.

local env = require "spec.helpers.env"
local http = require "spec.helpers.http"
local spawn = require "spec.helpers.spawn"

local MODULE = "zz_watch.lua"
-- An edit must be served within a second (slower builds, ASan's with TIDE_TEST_SLOWDOWN=4, get
-- that much longer)
local WITHIN = 1.0 * (tonumber(os.getenv("TIDE_TEST_SLOWDOWN")) or 1)

-- A script whose GET /v1/_watch/version answers {v = v}.
local function version_module(v)
    return ([[
-- Test-only route written by spec/integration/watch_spec.lua; never shipped.
return {
    ["GET /v1/_watch/version"] = function() return { v = %d } end,
}
]]):format(v)
end

describe("tide serve --watch", function()
    local dir, t, url

    local function script(name) return dir .. "/scripts/" .. name end

    -- Writes path the way many editors save: a temporary file renamed over it.
    local function save_by_rename(path, text)
        env.write_file(path .. ".tmp~", text)
        assert(os.rename(path .. ".tmp~", path))
    end

    local function log_text() return spawn.log(t) end

    local function count(text, plain)
        local n, pos = 0, 1
        while true do
            local s, e = text:find(plain, pos, true)
            if not s then return n end
            n, pos = n + 1, e + 1
        end
    end

    local function version()
        local ok, status, body = pcall(http.request, "GET", "/v1/_watch/version",
                                       { url = url, timeout = 2 })
        if not ok or status ~= 200 or type(body) ~= "table" then return nil end
        return body.v
    end

    -- Seconds until pred() holds (polled every 20 ms), or nil after `limit` seconds.
    local function seconds_until(pred, limit)
        local t0 = env.now()
        local ok = env.wait_until(pred, limit, 0.02)
        return ok and env.now() - t0 or nil
    end

    setup(function()
        dir = spawn.bundle()
        env.write_file(script(MODULE), version_module(1))
        t = spawn.tide(dir, { args = "serve --watch" })
        url = t.url
        assert.are.equal(1, version())
    end)

    teardown(function()
        spawn.stop(t)
        spawn.remove(dir)
    end)

    it("says what it watches", function()
        assert.matches("watching [^\n]*/scripts and [^\n]*/policies", log_text())
    end)

    it("serves an edit within a second, saved in place or through a rename", function()
        env.write_file(script(MODULE), version_module(2))
        local took = seconds_until(function() return version() == 2 end, 5)
        assert(took, "the edit was not served within 5 s")
        assert(took < WITHIN, ("the edit took %.2f s to be served"):format(took))

        save_by_rename(script(MODULE), version_module(3))
        took = seconds_until(function() return version() == 3 end, 5)
        assert(took, "the renamed save was not served within 5 s")
        assert(took < WITHIN, ("the renamed save took %.2f s to be served"):format(took))
        assert.matches("reloaded scripts and policies %(%d+ routes; watch: [^\n]*" ..
                       MODULE:gsub("%.", "%%."), log_text())
    end)

    it("serves a new route module within a second, and a save of several files reloads once", function()
        local before = count(log_text(), "reloaded scripts and policies")
        env.write_file(script("zz_watch_more.lua"), [[
return { ["GET /v1/_watch/more"] = function() return { more = true } end }
]])
        env.write_file(script(MODULE), version_module(4))
        local took = seconds_until(function()
            local ok, status = pcall(http.request, "GET", "/v1/_watch/more",
                                     { url = url, timeout = 2 })
            return ok and status == 200 and version() == 4
        end, 5)
        assert(took, "the new module was not served within 5 s")
        assert(took < WITHIN, ("the new module took %.2f s to be served"):format(took))
        env.sleep(0.3)                   -- past the debounce: any second reload would show
        assert.are.equal(before + 1, count(log_text(), "reloaded scripts and policies"))
        assert.matches("watch: [^\n]*/zz_watch_more%.lua and 1 other file changed", log_text())
    end)

    it("reloads on a policy edit", function()
        local before = count(log_text(), "reloaded scripts and policies")
        local path = dir .. "/policies/routing.lua"
        env.write_file(path, (env.read_file(path)) .. "\n-- edited by watch_spec\n")
        assert(seconds_until(function()
            return count(log_text(), "reloaded scripts and policies") > before
        end, 5), "no reload after a policy edit")
        assert.matches("watch: [^\n]*/policies/routing%.lua changed", log_text())
    end)

    it("rejects a broken edit, keeps serving the old bundle, then applies the fix", function()
        local before = count(log_text(), "rejected, the previous bundle keeps serving")
        local old = version()
        assert.is_number(old)
        env.write_file(script(MODULE), "return { this is not Lua\n")
        local took = seconds_until(function()
            return count(log_text(), "rejected, the previous bundle keeps serving") > before
        end, 5)
        assert(took, "the broken edit was not rejected within 5 s:\n" .. log_text())
        assert(took < WITHIN, ("the broken edit took %.2f s to be rejected"):format(took))
        assert.matches("reload %(watch: [^\n]*" .. MODULE:gsub("%.", "%%.") ..
                       " changed%) rejected, the previous bundle keeps serving: [^\n]*" ..
                       MODULE:gsub("%.", "%%."), log_text())
        -- the old bundle still answers, for a while
        for _ = 1, 5 do
            assert.are.equal(old, version())
            env.sleep(0.05)
        end

        save_by_rename(script(MODULE), version_module(old + 1))
        took = seconds_until(function() return version() == old + 1 end, 5)
        assert(took, "the fix was not served within 5 s")
        assert(took < WITHIN, ("the fix took %.2f s to be served"):format(took))
        -- and the shipped routes still answer through the reloaded bundle
        local status = http.request("GET", "/v1/destinations/popular?limit=1", { url = url })
        assert.are.equal(200, status)
    end)
end)
