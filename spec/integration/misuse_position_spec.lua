-- spec/integration/misuse_position_spec.lua - a script's misuse of a tide API names the
-- script author's line, whichever half of tide (Lua or C) finds it: the log line of the 500
-- starts with "<script>:<line>: <message>", as tide.errors.misuse positions its own errors,
-- not with the bare message of the C function that refused. The routes exist only for this spec.

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"

local MODULE = "zz_test_misuse.lua"

local SOURCE = [[
-- Test-only routes written by spec/integration/misuse_position_spec.lua; never shipped.
local db = require "tide.db"
local cache = require "tide.cache"
return {
    ["GET /v1/_test/misuse/ok"] = function() return { ok = true } end,
    ["GET /v1/_test/misuse/cache-tags"] = function()
        return { cache.set("k", "v", { ttl = 1, tags = { 1 } }) }   -- line 7: tags of a number
    end,
    ["GET /v1/_test/misuse/coroutine"] = function()
        return coroutine.wrap(function()
            local rows = db.select("destinations", { limit = 1 })   -- line 11: another coroutine
            return rows
        end)()
    end,
}
]]

describe("misuse refused in C", function()
    local u, path, dir

    setup(function()
        env.need("bin", "pid", "bundle_dir")
        dir = os.getenv("TIDE_STACK_DIR")
        assert.is_truthy(dir and env.read_file(dir .. "/tide.err"),
                         "the suite's tide log ($TIDE_STACK_DIR/tide.err) is not readable")
        u = api.user()
        path = env.install_module(MODULE, SOURCE, function()
            return (api.call(u, "GET", "/v1/_test/misuse/ok")) == 200
        end)
    end)

    teardown(function()
        env.remove_module(path)
    end)

    -- Calls the route, expects a 500 TIDE_INTERNAL, and returns the route's error log line.
    local function logged(route)
        local status, body = api.call(u, "GET", route)
        assert.are.equal(500, status)
        assert.are.equal("TIDE_INTERNAL", body.code)
        local line
        env.wait_until(function()
            local log = env.read_file(dir .. "/tide.err") or ""
            for l in log:gmatch("[^\n]+") do
                if l:find(route, 1, true) and l:find(" error ", 1, true) then line = l end
            end
            return line ~= nil
        end, 5, 0.1)
        assert.is_truthy(line, "no error line for " .. route)
        return line
    end

    it("tide.cache.set with a tag that is not a string names the script's line", function()
        local line = logged("/v1/_test/misuse/cache-tags")
        assert.matches(MODULE:gsub("%p", "%%%0") .. ":7: [^|]*tags must be strings", line)
    end)

    it("a database call outside the request's coroutine names the script's line", function()
        local line = logged("/v1/_test/misuse/coroutine")
        assert.matches(MODULE:gsub("%p", "%%%0") ..
                       ":11: [^|]*database calls must run in the request's own coroutine", line)
    end)
end)
