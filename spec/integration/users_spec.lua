-- spec/integration/users_spec.lua - the caller's profile over HTTP: create (201, then 409),
-- read (404 before it exists), update (only known fields), stats, and anon refused (401).

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"

local call = api.call

describe("users", function()
    setup(function() env.need("bin", "dsn_admin") end)

    it("creates the caller's profile once: 201, then 409", function()
        local u = env.new_user()
        local status, body = call(u, "POST", "/v1/users", { email = u.email, full_name = "Ada" })
        assert.are.equal(201, status)
        assert.are.equal(u.id, body.id)
        assert.are.equal(u.email, body.email)
        assert.are.equal("Ada", body.full_name)
        assert.is_string(body.created_at)

        status, body = call(u, "POST", "/v1/users", { email = u.email })
        assert.are.equal(409, status)
        assert.is_string(body.code)
        assert.is_string(body.message)
    end)

    it("refuses a second profile with someone else's email: 409", function()
        local a = api.user()
        local b = env.new_user()
        local status = call(b, "POST", "/v1/users", { email = a.email })
        assert.are.equal(409, status)
    end)

    it("needs an email and rejects unknown fields, naming them: 422", function()
        local u = env.new_user()
        local status, body = call(u, "POST", "/v1/users", { full_name = "No Mail" })
        assert.are.equal(422, status)
        assert.matches("email", body.message)

        status, body = call(u, "POST", "/v1/users", { email = u.email, is_admin = true })
        assert.are.equal(422, status)
        assert.matches("is_admin", body.message .. " " .. require("cjson").encode(body.details or {}))

        status = call(u, "POST", "/v1/users", { email = "not-an-email" })
        assert.are.equal(422, status)
        -- none of it created anything
        status = call(u, "GET", "/v1/users/me")
        assert.are.equal(404, status)
    end)

    it("refuses anonymous callers with 401 TIDE_AUTH_REQUIRED", function()
        for _, r in ipairs { { "POST", "/v1/users" }, { "GET", "/v1/users/me" },
                             { "PATCH", "/v1/users/me" }, { "GET", "/v1/users/me/stats" } } do
            local status, body = call(nil, r[1], r[2], { email = "anon@example.test" })
            assert.are.equal(401, status, r[1] .. " " .. r[2])
            assert.are.equal("TIDE_AUTH_REQUIRED", body.code)
        end
    end)

    it("GET /v1/users/me is 404 before the profile exists, 200 after", function()
        local u = env.new_user()
        local status, body = call(u, "GET", "/v1/users/me")
        assert.are.equal(404, status)
        assert.is_string(body.code)

        status = call(u, "POST", "/v1/users", { email = u.email })
        assert.are.equal(201, status)
        status, body = call(u, "GET", "/v1/users/me")
        assert.are.equal(200, status)
        assert.are.equal(u.id, body.id)
        assert.are.same({}, body.preferences)
    end)

    it("PATCH /v1/users/me changes full_name and replaces preferences", function()
        local u = api.user()
        local status, body = call(u, "PATCH", "/v1/users/me",
                                  { full_name = "Grace", preferences = { currency = "EUR", seats = "aisle" } })
        assert.are.equal(200, status)
        assert.are.equal("Grace", body.full_name)
        assert.are.same({ currency = "EUR", seats = "aisle" }, body.preferences)

        status, body = call(u, "PATCH", "/v1/users/me", { preferences = { currency = "JPY" } })
        assert.are.equal(200, status)
        assert.are.same({ currency = "JPY" }, body.preferences)
        assert.are.equal("Grace", body.full_name)

        -- persisted, and updated_at moved
        status, body = call(u, "GET", "/v1/users/me")
        assert.are.equal(200, status)
        assert.are.equal("Grace", body.full_name)
        assert.are.same({ currency = "JPY" }, body.preferences)
        assert.are_not.equal(body.created_at, body.updated_at)
    end)

    it("PATCH /v1/users/me rejects bad input naming the field, and never changes id or email", function()
        local u = api.user()
        local status, body = call(u, "PATCH", "/v1/users/me", { full_name = 42 })
        assert.are.equal(422, status)
        assert.matches("full_name", body.message)

        status, body = call(u, "PATCH", "/v1/users/me", { id = env.uuid() })
        assert.are.equal(422, status)
        assert.matches("id", body.message)

        status = call(u, "PATCH", "/v1/users/me", { email = "other@example.test" })
        assert.are.equal(422, status)

        status = call(u, "PATCH", "/v1/users/me", {})
        assert.are.equal(422, status)

        status, body = call(u, "GET", "/v1/users/me")
        assert.are.equal(200, status)
        assert.are.equal(u.id, body.id)
        assert.are.equal(u.email, body.email)
    end)

    it("PATCH /v1/users/me without a profile is 404", function()
        local u = env.new_user()
        local status = call(u, "PATCH", "/v1/users/me", { full_name = "Nobody" })
        assert.are.equal(404, status)
    end)

    it("GET /v1/users/me/stats counts the caller's own things", function()
        local u = api.user()
        local status, before = call(u, "GET", "/v1/users/me/stats")
        assert.are.equal(200, status)
        assert.are.same({ trip_count = 0, shared_trip_count = 0, search_count = 0,
                          api_key_count = 0, upcoming_trip_count = 0 }, before)

        api.trip(u)
        api.trip(u)
        assert.are.equal(201, (call(u, "POST", "/v1/search-history",
                                    { search_type = "destination", query = { q = "sun" } })))
        local after
        status, after = call(u, "GET", "/v1/users/me/stats")
        assert.are.equal(200, status)
        assert.are.equal(before.trip_count + 2, after.trip_count)
        assert.are.equal(before.search_count + 1, after.search_count)
        assert.are.equal(0, after.shared_trip_count)
        assert.are.equal(0, after.api_key_count)
    end)
end)
