-- spec/integration/search_history_spec.lua - the caller's search history over HTTP: record
-- (201; query must be a JSON object), list newest first with a search_type filter and
-- limit/offset, delete one (204, then 404), clear all ({deleted = n}).

local cjson = require "cjson"
local env = require "spec.helpers.env"
local api = require "spec.helpers.api"

local call = api.call

describe("search history", function()
    local u, made

    setup(function()
        env.need("bin", "dsn_admin")
        u = api.user()
        made = {}
        local entries = {
            { search_type = "destination", query = { q = "beaches", filters = { warm = true } } },
            { search_type = "flight", query = { from = "OSL", to = "LIS", passengers = 2 } },
            { search_type = "destination", query = { q = "mountains" } },
            { search_type = "accommodation", query = { city = "Lisbon", nights = 3 } },
        }
        for i, e in ipairs(entries) do
            local status, row = call(u, "POST", "/v1/search-history", e)
            assert.are.equal(201, status, cjson.encode(row))
            made[i] = row
        end
    end)

    it("records an entry: 201 with the stored row and the query as sent", function()
        assert.is_number(made[2].id)
        assert.are.equal(u.id, made[2].user_id)
        assert.are.equal("flight", made[2].search_type)
        assert.are.same({ from = "OSL", to = "LIS", passengers = 2 }, made[2].query)
        assert.is_string(made[2].created_at)
    end)

    it("lists newest first, filters by search_type, pages", function()
        local status, rows = call(u, "GET", "/v1/search-history")
        assert.are.equal(200, status)
        assert.are.same({ made[4].id, made[3].id, made[2].id, made[1].id }, api.ids(rows))
        assert.are.same({ q = "beaches", filters = { warm = true } }, rows[4].query)

        status, rows = call(u, "GET", "/v1/search-history?search_type=destination")
        assert.are.equal(200, status)
        assert.are.same({ made[3].id, made[1].id }, api.ids(rows))

        status, rows = call(u, "GET", "/v1/search-history?limit=1&offset=1")
        assert.are.equal(200, status)
        assert.are.same({ made[3].id }, api.ids(rows))

        status, rows = call(u, "GET", "/v1/search-history?search_type=cruise")
        assert.are.equal(200, status)
        assert.are.same({}, rows)

        assert.are.equal(422, (call(u, "GET", "/v1/search-history?limit=ten")))
    end)

    it("rejects bad entries naming the field (422)", function()
        local cases = {
            { "query", { search_type = "flight", query = "LIS" } },
            { "query", { search_type = "flight" } },
            { "search_type", { query = { q = 1 } } },
            { "search_type", { search_type = "", query = { q = 1 } } },
            { "search_type", { search_type = string.rep("x", 51), query = { q = 1 } } },
            { "user_id", { search_type = "flight", query = { q = 1 }, user_id = env.uuid() } },
        }
        for _, c in ipairs(cases) do
            local status, body = call(u, "POST", "/v1/search-history", c[2])
            assert.are.equal(422, status, c[1] .. " " .. cjson.encode(body))
            assert.matches(c[1], body.message .. cjson.encode(body.details or {}), 1, true)
        end
    end)

    it("deletes one entry: 204, then 404; a malformed id is 400", function()
        local v = api.user()
        local _, row = call(v, "POST", "/v1/search-history", { search_type = "activity", query = { q = "surf" } })
        local status, body = call(v, "DELETE", "/v1/search-history/" .. row.id)
        assert.are.equal(204, status)
        assert.are.equal("", body)
        assert.are.equal(404, (call(v, "DELETE", "/v1/search-history/" .. row.id)))
        assert.are.equal(400, (call(v, "DELETE", "/v1/search-history/abc")))
        local _, rows = call(v, "GET", "/v1/search-history")
        assert.are.same({}, rows)
    end)

    it("clears the caller's history and says how many went", function()
        local w = api.user()
        for i = 1, 3 do
            call(w, "POST", "/v1/search-history", { search_type = "flight", query = { n = i } })
        end
        local status, body = call(w, "DELETE", "/v1/search-history")
        assert.are.equal(200, status)
        assert.are.same({ deleted = 3 }, body)
        local rows
        status, rows = call(w, "GET", "/v1/search-history")
        assert.are.equal(200, status)
        assert.are.same({}, rows)
        status, body = call(w, "DELETE", "/v1/search-history")
        assert.are.equal(200, status)
        assert.are.same({ deleted = 0 }, body)
        -- the other user's history is untouched
        local _, mine = call(u, "GET", "/v1/search-history")
        assert.are.equal(4, #mine)
    end)

    it("needs a signed-in user (401)", function()
        assert.are.equal(401, (call(nil, "GET", "/v1/search-history")))
        assert.are.equal(401, (call(nil, "DELETE", "/v1/search-history")))
    end)
end)
