-- spec/integration/error_shape_spec.lua - every error table a script can hold, whether
-- tide.db made it in C (a Postgres error, a refused parameter) or Lua made it (http.error),
-- carries the same marker, so a handler that returns it as its body (`return err`, the `nil,`
-- forgotten) answers the error with its own status instead of a 200 whose body is the error,
-- and the log names the route as a script bug. The test route exists only for this spec.

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"

local MODULE = "zz_test_error_shape.lua"

local SOURCE = [[
-- Test-only routes written by spec/integration/error_shape_spec.lua; never shipped.
local db = require "tide.db"
local http = require "tide.http"
return {
    ["GET /v1/_test/error-shape/ok"] = function() return { ok = true } end,
    -- a Postgres error, made in C, returned as the body
    ["GET /v1/_test/error-shape/sql"] = function()
        local rows, err = db.sql("select 1 / $1::int as x", { 0 }, { mode = "direct" })
        if not rows then return err end
        return rows
    end,
    -- a parameter tide refuses before sending, made in C, returned as the body
    ["GET /v1/_test/error-shape/param"] = function()
        local rows, err = db.sql("select $1::text as x", { "a\0b" }, { mode = "direct" })
        if not rows then return err end
        return rows
    end,
    -- made in Lua, returned as the body
    ["GET /v1/_test/error-shape/lua"] = function()
        return http.error(409, "TEST_CONFLICT", "made in Lua")
    end,
}
]]

describe("an error table returned as the body", function()
    local u, path

    setup(function()
        env.need("bin", "pid", "bundle_dir")
        u = api.user()
        path = env.install_module(MODULE, SOURCE, function()
            return (api.call(u, "GET", "/v1/_test/error-shape/ok")) == 200
        end)
    end)

    teardown(function()
        env.remove_module(path)
    end)

    it("from a Postgres error is answered as that error, never as a 200", function()
        local status, body = api.call(u, "GET", "/v1/_test/error-shape/sql")
        assert.are.equal(400, status)
        assert.are.equal("22012", body.code)
        assert.are.equal("division by zero", body.message)
        assert.is_nil(body.status)              -- the status is the response's, not a field
    end)

    it("from a refused parameter is answered as that error", function()
        local status, body = api.call(u, "GET", "/v1/_test/error-shape/param")
        assert.are.equal(400, status)
        assert.are.equal("TIDE_INVALID_PARAM", body.code)
    end)

    it("from http.error is answered as that error", function()
        local status, body = api.call(u, "GET", "/v1/_test/error-shape/lua")
        assert.are.equal(409, status)
        assert.are.equal("TEST_CONFLICT", body.code)
    end)

    it("is logged as a script bug naming the route", function()
        local dir = os.getenv("TIDE_STACK_DIR")
        assert.is_truthy(dir and env.read_file(dir .. "/tide.err"),
                         "the suite's tide log ($TIDE_STACK_DIR/tide.err) is not readable")
        api.call(u, "GET", "/v1/_test/error-shape/sql")
        local found = env.wait_until(function()
            local log = env.read_file(dir .. "/tide.err") or ""
            return log:find("GET /v1/_test/error-shape/sql", 1, true)
                and log:find("returned an error as its body", 1, true)
        end, 5, 0.1)
        assert.is_truthy(found, "no script-bug line for the route in " .. dir .. "/tide.err")
    end)
end)
