-- spec/integration/trips_spec.lua - trips over HTTP: create (201) with validation that names
-- the field (422), read (400 for a malformed id, 404 for a missing one), update, delete (204),
-- the list (newest first, limit/offset, limit above 100 clamped to 100), and search (ilike on
-- name/destination, % and _ taken literally, status filter). Sharing is in rls_spec.

local cjson = require "cjson"
local env = require "spec.helpers.env"
local api = require "spec.helpers.api"

local call = api.call

local function details(body)
    return (body.message or "") .. " " .. cjson.encode(body.details or {})
end

describe("trips", function()
    local u

    setup(function()
        env.need("bin", "dsn_admin")
        u = api.user()
    end)

    it("creates a trip: 201 with the stored row, owned by the caller", function()
        local status, trip = call(u, "POST", "/v1/trips", {
            name = "Kyoto in spring", destination = "Kyoto", start_date = "2031-04-01",
            end_date = "2031-04-10", budget = 2500.5, travelers = 2, status = "booked",
            trip_type = "family", notes = { "JR pass", "ryokan" },
        })
        assert.are.equal(201, status)
        assert.is_number(trip.id)
        assert.are.equal(u.id, trip.user_id)
        assert.are.equal("Kyoto in spring", trip.name)
        assert.are.equal("2031-04-01", trip.start_date)
        assert.are.equal("2031-04-10", trip.end_date)
        assert.are.equal(2500.5, tonumber(trip.budget))
        assert.are.equal(2, trip.travelers)
        assert.are.equal("booked", trip.status)
        assert.are.equal("family", trip.trip_type)
        assert.are.same({ "JR pass", "ryokan" }, trip.notes)

        local got
        status, got = call(u, "GET", "/v1/trips/" .. trip.id)
        assert.are.equal(200, status)
        assert.are.same(trip, got)
    end)

    it("fills defaults: status planning, trip_type leisure, one traveler, no notes", function()
        local status, trip = call(u, "POST", "/v1/trips", { name = "Somewhere", destination = "Oslo" })
        assert.are.equal(201, status)
        assert.are.equal("planning", trip.status)
        assert.are.equal("leisure", trip.trip_type)
        assert.are.equal(1, trip.travelers)
        assert.are.same({}, trip.notes)
    end)

    it("rejects invalid trips with 422 naming the field, and stores none of them", function()
        local base = { name = "Bad", destination = "Nowhere", start_date = "2031-01-10",
                       end_date = "2031-01-20" }
        local cases = {
            { field = "name", patch = { name = cjson.null } },
            { field = "name", patch = { name = "   " } },
            { field = "destination", patch = { destination = 7 } },
            { field = "end_date", patch = { end_date = "2031-01-09" } },
            { field = "start_date", patch = { start_date = "2031-02-30" } },
            { field = "start_date", patch = { start_date = "next tuesday" } },
            { field = "budget", patch = { budget = -1 } },
            { field = "budget", patch = { budget = 1e12 } },
            { field = "travelers", patch = { travelers = 0 } },
            { field = "travelers", patch = { travelers = 101 } },
            { field = "travelers", patch = { travelers = 2.5 } },
            { field = "status", patch = { status = "dreaming" } },
            { field = "trip_type", patch = { trip_type = "space" } },
            { field = "notes", patch = { notes = { "ok", 3 } } },
            { field = "notes", patch = { notes = "not a list" } },
            { field = "user_id", patch = { user_id = env.uuid() } },
            { field = "colour", patch = { colour = "blue" } },
        }
        local before = env.psql_value("select count(*) from trips where user_id = " .. env.lit(u.id))
        for _, c in ipairs(cases) do
            local trip = {}
            for k, v in pairs(base) do trip[k] = v end
            for k, v in pairs(c.patch) do
                if v == cjson.null then trip[k] = nil else trip[k] = v end
            end
            local status, body = call(u, "POST", "/v1/trips", trip)
            assert.are.equal(422, status, "case " .. c.field .. ": " .. cjson.encode(body))
            assert.is_string(body.code)
            assert.matches(c.field, details(body), 1, true)
        end
        assert.are.equal(before, env.psql_value("select count(*) from trips where user_id = " .. env.lit(u.id)))
    end)

    it("answers 400 for a body that is not a JSON object", function()
        local status, body = call(u, "POST", "/v1/trips", "[1,2,3]",
                                  { ["Content-Type"] = "application/json" })
        assert.is_true(status == 400 or status == 422, "status " .. status)
        assert.is_string(body.code)
        status = call(u, "POST", "/v1/trips")
        assert.are.equal(400, status)
    end)

    it("GET /v1/trips/:id: 400 for a malformed id, 404 for a missing one", function()
        for _, id in ipairs { "abc", "0", "-1", "1.5", "1e3", "99999999999999999999" } do
            local status, body = call(u, "GET", "/v1/trips/" .. id)
            assert.are.equal(400, status, "id " .. id)
            assert.matches("id", details(body))
        end
        local status, body = call(u, "GET", "/v1/trips/999999999999")
        assert.are.equal(404, status)
        assert.are.equal("TIDE_NOT_FOUND", body.code)
    end)

    it("PATCH changes only what is sent; updated_at moves", function()
        local trip = api.trip(u, { budget = 100 })
        local status, got = call(u, "PATCH", "/v1/trips/" .. trip.id,
                                 { budget = 150, status = "booked", notes = { "window seat" } })
        assert.are.equal(200, status)
        assert.are.equal(150, tonumber(got.budget))
        assert.are.equal("booked", got.status)
        assert.are.same({ "window seat" }, got.notes)
        assert.are.equal(trip.name, got.name)
        assert.are.equal(trip.created_at, got.created_at)
        assert.are_not.equal(trip.updated_at, got.updated_at)

        status, got = call(u, "GET", "/v1/trips/" .. trip.id)
        assert.are.equal(200, status)
        assert.are.equal(150, tonumber(got.budget))
    end)

    it("PATCH checks dates against the stored ones and names the field", function()
        local trip = api.trip(u, { start_date = "2031-06-10", end_date = "2031-06-20" })
        local status, body = call(u, "PATCH", "/v1/trips/" .. trip.id, { end_date = "2031-06-01" })
        assert.are.equal(422, status)
        assert.matches("end_date", details(body))

        status, body = call(u, "PATCH", "/v1/trips/" .. trip.id, { start_date = "2031-07-01" })
        assert.are.equal(422, status)
        assert.matches("start_date", details(body))

        status, body = call(u, "PATCH", "/v1/trips/" .. trip.id,
                            { start_date = "2031-07-01", end_date = "2031-07-02" })
        assert.are.equal(200, status)
        assert.are.equal("2031-07-02", body.end_date)
    end)

    it("PATCH refuses an empty patch, unknown fields and a new owner", function()
        local trip = api.trip(u)
        assert.are.equal(422, (call(u, "PATCH", "/v1/trips/" .. trip.id, {})))
        assert.are.equal(422, (call(u, "PATCH", "/v1/trips/" .. trip.id, { id = 5 })))
        assert.are.equal(422, (call(u, "PATCH", "/v1/trips/" .. trip.id, { user_id = env.uuid() })))
        assert.are.equal(404, (call(u, "PATCH", "/v1/trips/999999999999", { name = "x" })))
        assert.are.equal(400, (call(u, "PATCH", "/v1/trips/x", { name = "x" })))
    end)

    it("DELETE answers 204 with no body, then the trip is gone (404, and 404 again)", function()
        local trip = api.trip(u)
        local status, body, headers = call(u, "DELETE", "/v1/trips/" .. trip.id)
        assert.are.equal(204, status)
        assert.are.equal("", body)
        assert.is_true(headers["content-length"] == nil or headers["content-length"] == "0")
        assert.are.equal(404, (call(u, "GET", "/v1/trips/" .. trip.id)))
        assert.are.equal(404, (call(u, "DELETE", "/v1/trips/" .. trip.id)))
        assert.are.equal("0", env.psql_value("select count(*) from trips where id = " .. trip.id))
    end)

    describe("list", function()
        local lister, made

        setup(function()
            lister = api.user()
            made = {}
            for i = 1, 5 do
                made[i] = api.trip(lister, { name = "L" .. i })
            end
        end)

        it("shows the caller's trips newest first", function()
            local status, rows = call(lister, "GET", "/v1/trips")
            assert.are.equal(200, status)
            assert.are.same({ made[5].id, made[4].id, made[3].id, made[2].id, made[1].id },
                            api.ids(rows))
        end)

        it("pages with limit and offset", function()
            local status, rows = call(lister, "GET", "/v1/trips?limit=2")
            assert.are.equal(200, status)
            assert.are.same({ made[5].id, made[4].id }, api.ids(rows))
            status, rows = call(lister, "GET", "/v1/trips?limit=2&offset=2")
            assert.are.equal(200, status)
            assert.are.same({ made[3].id, made[2].id }, api.ids(rows))
            status, rows = call(lister, "GET", "/v1/trips?limit=2&offset=4")
            assert.are.equal(200, status)
            assert.are.same({ made[1].id }, api.ids(rows))
            status, rows = call(lister, "GET", "/v1/trips?offset=50")
            assert.are.equal(200, status)
            assert.are.same({}, rows)
        end)

        it("rejects a malformed limit or offset with 422 naming it", function()
            for _, q in ipairs { "limit=abc", "limit=-1", "limit=2.5", "offset=-1", "offset=x" } do
                local status, body = call(lister, "GET", "/v1/trips?" .. q)
                assert.are.equal(422, status, q)
                assert.matches(q:match("^%a+"), details(body))
            end
        end)

        it("defaults to 20 rows and clamps limit=1000 to 100", function()
            local many = api.user()
            local before = env.now()
            for i = 1, 105 do
                local status = call(many, "POST", "/v1/trips", { name = "Bulk " .. i, destination = "Rome" })
                assert.are.equal(201, status)
                assert.is_true(env.now() - before < 120, "bulk insert took too long")
            end
            local status, rows = call(many, "GET", "/v1/trips")
            assert.are.equal(200, status)
            assert.are.equal(20, #rows)
            assert.are.equal("Bulk 105", rows[1].name)

            status, rows = call(many, "GET", "/v1/trips?limit=1000")
            assert.are.equal(200, status)
            assert.are.equal(100, #rows)
            assert.are.equal("Bulk 105", rows[1].name)
            assert.are.equal("Bulk 6", rows[100].name)

            status, rows = call(many, "GET", "/v1/trips?limit=1000&offset=100")
            assert.are.equal(200, status)
            assert.are.equal(5, #rows)
        end)
    end)

    describe("search", function()
        local s

        setup(function()
            s = api.user()
            api.trip(s, { name = "100% beach", destination = "Crete", status = "booked" })
            api.trip(s, { name = "Alpine hut", destination = "Zermatt" })
            api.trip(s, { name = "Snow_week", destination = "Chamonix", status = "booked" })
            api.trip(s, { name = "Food tour", destination = "Bologna", status = "completed" })
        end)

        local function names(rows)
            local out = {}
            for i, r in ipairs(rows) do out[i] = r.name end
            return out
        end

        it("matches name or destination, case-insensitively, newest first", function()
            local status, rows = call(s, "GET", "/v1/trips/search?q=ZERM")
            assert.are.equal(200, status)
            assert.are.same({ "Alpine hut" }, names(rows))
            status, rows = call(s, "GET", "/v1/trips/search?q=O")
            assert.are.equal(200, status)
            assert.are.same({ "Food tour", "Snow_week" }, names(rows))
            status, rows = call(s, "GET", "/v1/trips/search?q=a")
            assert.are.equal(200, status)
            assert.are.same({ "Food tour", "Snow_week", "Alpine hut", "100% beach" }, names(rows))
        end)

        it("takes % and _ literally", function()
            local _, rows = call(s, "GET", "/v1/trips/search?q=%25")
            assert.are.same({ "100% beach" }, names(rows))
            _, rows = call(s, "GET", "/v1/trips/search?q=_")
            assert.are.same({ "Snow_week" }, names(rows))
            _, rows = call(s, "GET", "/v1/trips/search?q=w_e") -- as a pattern it would match "wee"
            assert.are.same({}, names(rows))
            _, rows = call(s, "GET", "/v1/trips/search?q=%5C")
            assert.are.same({}, names(rows))
        end)

        it("filters by status, alone or with q, and pages", function()
            local _, rows = call(s, "GET", "/v1/trips/search?status=booked")
            assert.are.same({ "Snow_week", "100% beach" }, names(rows))
            _, rows = call(s, "GET", "/v1/trips/search?status=booked&q=beach")
            assert.are.same({ "100% beach" }, names(rows))
            _, rows = call(s, "GET", "/v1/trips/search?status=booked&limit=1&offset=1")
            assert.are.same({ "100% beach" }, names(rows))
        end)

        it("rejects an unknown status with 422 naming it", function()
            local status, body = call(s, "GET", "/v1/trips/search?status=dreaming")
            assert.are.equal(422, status)
            assert.matches("status", details(body))
        end)

        it("only ever searches what the caller can see", function()
            local other = api.user()
            local _, rows = call(other, "GET", "/v1/trips/search?q=beach")
            assert.are.same({}, rows)
        end)
    end)
end)
