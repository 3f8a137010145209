-- spec/integration/rls_spec.lua - row-level security as a user notices it: two users never
-- see or touch each other's rows on any table (trips, collaborators, API keys and their usage
-- logs, search history, profiles), and a collaborator's rights follow their level: view reads,
-- edit/admin also change; only the owner deletes a trip or manages its collaborators.
-- Hidden rows answer 404; rows the caller can see but may not change answer 403.

local cjson = require "cjson"
local env = require "spec.helpers.env"
local api = require "spec.helpers.api"

local call = api.call

describe("RLS between two users", function()
    local alice, bob, trip, key, search

    setup(function()
        env.need("bin", "dsn_admin")
        alice, bob = api.user(), api.user()
        trip = api.trip(alice, { name = "Alice's secret trip", destination = "Reykjavik" })
        local status
        status, key = call(alice, "POST", "/v1/api-keys",
                           { service_name = "weather", key_name = "main", api_key = "alice-secret-key-0001" })
        assert.are.equal(201, status)
        status, search = call(alice, "POST", "/v1/search-history",
                              { search_type = "flight", query = { from = "OSL", to = "KEF" } })
        assert.are.equal(201, status)
    end)

    it("trips: bob cannot read, list, search, change or delete alice's trip (404)", function()
        assert.are.equal(404, (call(bob, "GET", "/v1/trips/" .. trip.id)))
        local _, rows = call(bob, "GET", "/v1/trips")
        assert.is_false(api.has(rows, trip.id))
        _, rows = call(bob, "GET", "/v1/trips/search?q=Reykjavik")
        assert.are.same({}, rows)
        assert.are.equal(404, (call(bob, "PATCH", "/v1/trips/" .. trip.id, { name = "mine now" })))
        assert.are.equal(404, (call(bob, "DELETE", "/v1/trips/" .. trip.id)))

        local status, got = call(alice, "GET", "/v1/trips/" .. trip.id)
        assert.are.equal(200, status)
        assert.are.equal("Alice's secret trip", got.name)
    end)

    it("collaborators: bob cannot list or manage collaborators of alice's trip (404)", function()
        local carol = api.user()
        assert.are.equal(404, (call(bob, "GET", "/v1/trips/" .. trip.id .. "/collaborators")))
        assert.are.equal(404, (call(bob, "POST", "/v1/trips/" .. trip.id .. "/collaborators",
                                    { user_id = carol.id, permission_level = "view" })))
        assert.are.equal(404, (call(bob, "DELETE", "/v1/trips/" .. trip.id .. "/collaborators/" .. carol.id)))
    end)

    it("API keys: bob does not see, use or delete alice's key (404)", function()
        local _, rows = call(bob, "GET", "/v1/api-keys")
        assert.are.same({}, rows)
        assert.are.equal(404, (call(bob, "POST", "/v1/api-keys/" .. key.id .. "/use")))
        assert.are.equal(404, (call(bob, "DELETE", "/v1/api-keys/" .. key.id)))
        -- nothing was logged or stamped on alice's key by bob's attempts
        assert.are.equal("0", env.psql_value("select count(*) from api_key_usage_logs where api_key_id = "
                                             .. env.lit(key.id)))
        local status
        status, rows = call(alice, "GET", "/v1/api-keys")
        assert.are.equal(200, status)
        assert.are.same({ key.id }, api.ids(rows))
        assert.are.equal(cjson.null, rows[1].last_used_at)
    end)

    it("search history: bob does not see, delete or clear alice's entries", function()
        local _, rows = call(bob, "GET", "/v1/search-history")
        assert.are.same({}, rows)
        assert.are.equal(404, (call(bob, "DELETE", "/v1/search-history/" .. search.id)))
        local status, body = call(bob, "DELETE", "/v1/search-history")
        assert.are.equal(200, status)
        assert.are.equal(0, body.deleted)
        status, rows = call(alice, "GET", "/v1/search-history")
        assert.are.equal(200, status)
        assert.are.same({ search.id }, api.ids(rows))
    end)

    it("profiles and stats: each sees only their own", function()
        local _, me = call(bob, "GET", "/v1/users/me")
        assert.are.equal(bob.id, me.id)
        local _, stats = call(bob, "GET", "/v1/users/me/stats")
        assert.are.same({ trip_count = 0, shared_trip_count = 0, search_count = 0,
                          api_key_count = 0, upcoming_trip_count = 0 }, stats)
        _, stats = call(alice, "GET", "/v1/users/me/stats")
        assert.are.equal(1, stats.trip_count)
        assert.are.equal(1, stats.search_count)
        assert.are.equal(1, stats.api_key_count)
    end)
end)

describe("collaborators' rights", function()
    local owner, viewer, editor, admin, outsider, trip

    setup(function()
        env.need("bin", "dsn_admin")
        owner, viewer, editor, admin, outsider = api.user(), api.user(), api.user(), api.user(), api.user()
        trip = api.trip(owner, { name = "Shared trip", destination = "Porto", budget = 500 })
        api.share(owner, trip.id, viewer, "view")
        api.share(owner, trip.id, editor, "edit")
        api.share(owner, trip.id, admin, "admin")
    end)

    it("every collaborator reads the trip, finds it in their list and in search", function()
        for _, u in ipairs { viewer, editor, admin } do
            local status, got = call(u, "GET", "/v1/trips/" .. trip.id)
            assert.are.equal(200, status)
            assert.are.equal("Shared trip", got.name)
            local _, rows = call(u, "GET", "/v1/trips")
            assert.is_true(api.has(rows, trip.id))
            _, rows = call(u, "GET", "/v1/trips/search?q=porto")
            assert.is_true(api.has(rows, trip.id))
        end
        assert.are.equal(404, (call(outsider, "GET", "/v1/trips/" .. trip.id)))
    end)

    it("a list shows own and shared trips together, newest first", function()
        local own = api.trip(viewer, { name = "Viewer's own" })
        local _, rows = call(viewer, "GET", "/v1/trips")
        assert.are.same({ own.id, trip.id }, api.ids(rows))
    end)

    it("view cannot change the trip (403); edit and admin can (200)", function()
        local status, body = call(viewer, "PATCH", "/v1/trips/" .. trip.id, { budget = 1 })
        assert.are.equal(403, status)
        assert.are.equal("TIDE_FORBIDDEN", body.code)

        status, body = call(editor, "PATCH", "/v1/trips/" .. trip.id, { budget = 600 })
        assert.are.equal(200, status)
        assert.are.equal(600, tonumber(body.budget))
        assert.are.equal(owner.id, body.user_id)

        status = call(admin, "PATCH", "/v1/trips/" .. trip.id, { notes = { "admin was here" } })
        assert.are.equal(200, status)

        local _, got = call(owner, "GET", "/v1/trips/" .. trip.id)
        assert.are.equal(600, tonumber(got.budget))
        assert.are.same({ "admin was here" }, got.notes)
    end)

    it("an editor cannot take the trip over", function()
        local status = call(editor, "PATCH", "/v1/trips/" .. trip.id, { user_id = editor.id })
        assert.are.equal(422, status)
        assert.are.equal(owner.id, env.psql_value("select user_id from trips where id = " .. trip.id))
    end)

    it("only the owner deletes the trip: collaborators get 403, nothing is deleted", function()
        for _, u in ipairs { viewer, editor, admin } do
            local status, body = call(u, "DELETE", "/v1/trips/" .. trip.id)
            assert.are.equal(403, status)
            assert.are.equal("TIDE_FORBIDDEN", body.code)
        end
        assert.are.equal(404, (call(outsider, "DELETE", "/v1/trips/" .. trip.id)))
        assert.are.equal(200, (call(owner, "GET", "/v1/trips/" .. trip.id)))
    end)

    it("collaborators see the collaborator list; outsiders get 404", function()
        for _, u in ipairs { owner, viewer, editor, admin } do
            local status, rows = call(u, "GET", "/v1/trips/" .. trip.id .. "/collaborators")
            assert.are.equal(200, status)
            local who = {}
            for _, r in ipairs(rows) do who[r.user_id] = r.permission_level end
            assert.are.same({ [viewer.id] = "view", [editor.id] = "edit", [admin.id] = "admin" }, who)
        end
        assert.are.equal(404, (call(outsider, "GET", "/v1/trips/" .. trip.id .. "/collaborators")))
    end)

    it("only the owner adds or removes collaborators: collaborators get 403, even admin", function()
        for _, u in ipairs { viewer, editor, admin } do
            local status, body = call(u, "POST", "/v1/trips/" .. trip.id .. "/collaborators",
                                      { user_id = outsider.id, permission_level = "view" })
            assert.are.equal(403, status)
            assert.are.equal("TIDE_FORBIDDEN", body.code)
            status = call(u, "DELETE", "/v1/trips/" .. trip.id .. "/collaborators/" .. viewer.id)
            assert.are.equal(403, status)
        end
        assert.are.equal(404, (call(outsider, "GET", "/v1/trips/" .. trip.id)))
    end)

    it("adding: 201, duplicate 409, yourself 422, bad level 422, unknown user 422, bad id 422", function()
        local t = api.trip(owner, { name = "Add tests" })
        local path = "/v1/trips/" .. t.id .. "/collaborators"
        local status, row = call(owner, "POST", path, { user_id = outsider.id, permission_level = "edit" })
        assert.are.equal(201, status)
        assert.are.equal(outsider.id, row.user_id)
        assert.are.equal("edit", row.permission_level)
        assert.are.equal(owner.id, row.added_by)

        local body
        status, body = call(owner, "POST", path, { user_id = outsider.id, permission_level = "view" })
        assert.are.equal(409, status)
        assert.is_string(body.message)

        status, body = call(owner, "POST", path, { user_id = owner.id, permission_level = "view" })
        assert.are.equal(422, status)
        assert.matches("user_id", body.message)

        status, body = call(owner, "POST", path, { user_id = viewer.id, permission_level = "superuser" })
        assert.are.equal(422, status)
        assert.matches("permission_level", body.message .. cjson.encode(body.details or {}))

        status, body = call(owner, "POST", path, { user_id = env.uuid(), permission_level = "view" })
        assert.are.equal(422, status)
        assert.matches("user_id", body.message)

        status, body = call(owner, "POST", path, { user_id = "not-a-uuid" })
        assert.are.equal(422, status)
        assert.matches("user_id", body.message .. cjson.encode(body.details or {}))

        status, row = call(owner, "POST", path, { user_id = viewer.id })
        assert.are.equal(201, status)
        assert.are.equal("view", row.permission_level)
    end)

    it("removing: 204, then the user loses access; removing again 404", function()
        local t = api.trip(owner, { name = "Remove tests" })
        api.share(owner, t.id, outsider, "view")
        assert.are.equal(200, (call(outsider, "GET", "/v1/trips/" .. t.id)))
        local path = "/v1/trips/" .. t.id .. "/collaborators/" .. outsider.id
        local status, body = call(owner, "DELETE", path)
        assert.are.equal(204, status)
        assert.are.equal("", body)
        assert.are.equal(404, (call(outsider, "GET", "/v1/trips/" .. t.id)))
        assert.are.equal(404, (call(owner, "DELETE", path)))
        assert.are.equal(400, (call(owner, "DELETE", "/v1/trips/" .. t.id .. "/collaborators/nope")))
    end)

    it("the owner deleting the trip removes it for everyone", function()
        local t = api.trip(owner, { name = "Doomed" })
        api.share(owner, t.id, editor, "edit")
        assert.are.equal(204, (call(owner, "DELETE", "/v1/trips/" .. t.id)))
        assert.are.equal(404, (call(editor, "GET", "/v1/trips/" .. t.id)))
        assert.are.equal("0", env.psql_value("select count(*) from trip_collaborators where trip_id = " .. t.id))
    end)

    it("shared trips count in the collaborator's stats", function()
        local _, stats = call(viewer, "GET", "/v1/users/me/stats")
        assert.is_true(stats.shared_trip_count >= 1)
    end)
end)
