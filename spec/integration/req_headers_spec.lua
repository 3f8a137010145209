-- spec/integration/req_headers_spec.lua - the bearer token never enters the Lua state: a
-- handler's req.headers has every header the client sent but Authorization (its verified
-- claims are req.claims), so a script that logs or echoes its headers cannot leak a token.
-- The route is a test-only module dropped into the served bundle and removed afterwards.

local env = require "spec.helpers.env"
local http = require "spec.helpers.http"

local MODULE = "zz_test_req_headers.lua"
local SOURCE = [[
-- Test-only route written by spec/integration/req_headers_spec.lua; never shipped.
return {
    ["GET /v1/_test/req-headers"] = function(req)
        local names = {}
        for k in pairs(req.headers) do names[#names + 1] = k end
        table.sort(names)
        return { names = names, sub = req.claims and req.claims.sub or nil }
    end,
}
]]

describe("req.headers", function()
    local path

    setup(function()
        path = env.install_module(MODULE, SOURCE, function()
            return (http.request("GET", "/v1/_test/req-headers")) == 200
        end)
    end)

    teardown(function()
        env.remove_module(path)
    end)

    it("has the client's headers but not its bearer token", function()
        local u = env.new_user()
        local status, body = http.request("GET", "/v1/_test/req-headers",
                                          { token = u.token, headers = { ["X-Trace"] = "t1" } })
        assert.are.equal(200, status)
        assert.are.equal(u.id, body.sub)
        local seen = {}
        for _, n in ipairs(body.names) do seen[n] = true end
        assert.is_true(seen["x-trace"])
        assert.is_true(seen["host"])
        assert.is_nil(seen["authorization"])
    end)
end)
