-- spec/integration/rest_write_spec.lua - POST, PATCH and DELETE on /rest/v1/:table over HTTP
-- against the demo schema, under two users' tokens: single and bulk insert, columns= and
-- Prefer: missing=, return=minimal|headers-only|representation (Location, select= with aliases
-- and casts, one object), Content-Range and Preference-Applied, upserts with both resolutions
-- on the primary key and on a unique non-key pair, PATCH and DELETE with filters and counts,
-- unfiltered writes refused (and allowed by the policy), RLS (another user's rows are not
-- touched, a row the policy refuses is 403), PostgREST's error codes and the SQLSTATE -> HTTP
-- mapping, the bulk bound, strict handling and max-affected, and the result cache kept right.

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"
local rest = require "spec.helpers.rest"
local cjson = require "cjson"

local call = api.call
local null = cjson.null
local post, patch, delete, get = rest.post, rest.patch, rest.delete, rest.get
local is_error, count = rest.is_error, rest.count

-- The rows' names, sorted (rows a write returns come in no particular order).
local function names(rows)
    return rest.sorted(rest.names(rows))
end

local function mark()
    return "W-" .. env.uuid():sub(1, 8)
end

describe("/rest/v1 writes", function()
    local a, b

    setup(function()
        env.need("bin", "dsn_admin")
        a, b = api.user(), api.user()
    end)

    describe("POST", function()
        it("one object: 201, no body, Content-Range */*; the row is there", function()
            local dest = mark()
            local status, body, h = post(a, "trips", { name = "solo", destination = dest })
            assert.are.equal(201, status)
            assert.are.equal("", body)
            assert.are.equal("*/*", h["content-range"])
            assert.is_nil(h["preference-applied"])
            assert.is_nil(h.location)
            local _, rows = get(a, "trips?select=name,user_id,travelers&destination=eq." .. dest)
            assert.are.same({ { name = "solo", user_id = a.id, travelers = 1 } }, rows)
        end)

        it("bulk: an array of objects; count=exact gives */n; Preference-Applied echoes",
           function()
            local dest = mark()
            local rows = {}
            for i = 1, 3 do rows[i] = { name = "bulk" .. i, destination = dest, travelers = i } end
            local status, body, h = post(a, "trips", rows,
                                         { Prefer = "count=exact, return=minimal" })
            assert.are.equal(201, status)
            assert.are.equal("", body)
            assert.are.equal("*/3", h["content-range"])
            assert.are.equal("return=minimal, count=exact", h["preference-applied"])
            assert.are.equal(3, count(a, "trips", "destination=eq." .. dest))
        end)

        it("bulk: objects with different keys are refused (PGRST102); [] inserts nothing",
           function()
            local dest = mark()
            local status, body = post(a, "trips", { { name = "x", destination = dest },
                                                    { name = "y", destination = dest,
                                                      budget = 5 } })
            is_error(status, body, 400, "PGRST102")
            assert.are.equal("All object keys must match", body.message)
            assert.are.equal(0, count(a, "trips", "destination=eq." .. dest))
            local h
            status, body, h = post(a, "trips", "[]", { ["Content-Type"] = "application/json",
                                                       Prefer = "return=representation," ..
                                                                "count=exact" })
            assert.are.equal(201, status)
            assert.are.equal("*/0", h["content-range"])
            assert.are.same({}, body)
        end)

        it("columns= takes only the listed keys; a missing one is NULL, or its default with " ..
           "missing=default", function()
            local dest = mark()
            local rep = { Prefer = "return=representation" }
            -- budget and banana are not listed: ignored, not an error
            local status, rows = post(a, "trips?columns=name,destination&select=name,budget",
                                      { name = "cols", destination = dest, budget = 5,
                                        banana = 1 }, rep)
            assert.are.equal(201, status, cjson.encode(rows))
            assert.are.same({ { name = "cols", budget = null } }, rows)
            -- travelers listed and missing in one row: NULL (refused by NOT NULL) ...
            local bulk = { { name = "m1", destination = dest, travelers = 3 },
                           { name = "m2", destination = dest } }
            local body
            status, body = post(a, "trips?columns=name,destination,travelers", bulk, rep)
            is_error(status, body, 400, "23502")
            -- ... or the column default (1) with missing=default
            local h
            status, rows, h = post(a, "trips?columns=name,destination,travelers&" ..
                                      "select=name,travelers&order=name", bulk,
                                   { Prefer = "missing=default, return=representation" })
            assert.are.equal(201, status, cjson.encode(rows))
            table.sort(rows, function(x, y) return x.name < y.name end)
            assert.are.same({ { name = "m1", travelers = 3 }, { name = "m2", travelers = 1 } },
                            rows)
            assert.are.equal("missing=default, return=representation", h["preference-applied"])
        end)

        it("return=headers-only: Location of the one row inserted, from the primary key",
           function()
            local dest = mark()
            local status, body, h = post(a, "trips", { name = "located", destination = dest },
                                         { Prefer = "return=headers-only" })
            assert.are.equal(201, status)
            assert.are.equal("", body)
            assert.matches("^/trips%?id=eq%.%d+$", h.location)
            assert.are.equal("return=headers-only", h["preference-applied"])
            local rows
            status, rows = call(a, "GET", "/rest/v1" .. h.location .. "&select=name")
            assert.are.equal(200, status)
            assert.are.same({ { name = "located" } }, rows)
            -- several rows: no Location (PostgREST's rule)
            status, body, h = post(a, "trips", { { name = "l1", destination = dest },
                                                 { name = "l2", destination = dest } },
                                   { Prefer = "return=headers-only" })
            assert.are.equal(201, status)
            assert.are.equal("", body)
            assert.is_nil(h.location)
        end)

        it("return=representation honours select= with aliases and casts", function()
            local dest = mark()
            local status, rows, h = post(a, "trips?select=name,cost:budget,travelers::text",
                                         { { name = "r1", destination = dest, budget = 10,
                                             travelers = 2 },
                                           { name = "r2", destination = dest, budget = 20,
                                             travelers = 3 } },
                                         { Prefer = "return=representation" })
            assert.are.equal(201, status)
            assert.matches("application/json", h["content-type"])
            table.sort(rows, function(x, y) return x.name < y.name end)
            assert.are.same({ { name = "r1", cost = 10, travelers = "2" },
                              { name = "r2", cost = 20, travelers = "3" } }, rows)
        end)

        it("Accept: vnd.pgrst.object+json: one object, or 406 PGRST116 and nothing written",
           function()
            local dest = mark()
            local obj = { Prefer = "return=representation",
                          Accept = "application/vnd.pgrst.object+json" }
            local status, row, h = post(a, "trips?select=name", { name = "one",
                                                                  destination = dest }, obj)
            assert.are.equal(201, status)
            assert.are.same({ name = "one" }, row)
            assert.matches("application/vnd.pgrst.object%+json", h["content-type"])
            local body
            status, body = post(a, "trips?select=name", { { name = "two", destination = dest },
                                                          { name = "three",
                                                            destination = dest } }, obj)
            is_error(status, body, 406, "PGRST116")
            assert.are.equal("The result contains 2 rows", body.details)
            assert.are.equal("JSON object requested, multiple (or no) rows returned",
                             body.message)
            assert.are.equal(1, count(a, "trips", "destination=eq." .. dest))
            -- writes answer JSON only: Accept: text/csv alone is 406, before anything is written
            status, body = post(a, "trips", { name = "csv", destination = dest },
                                { Accept = "text/csv" })
            is_error(status, body, 406, "PGRST107")
            assert.are.equal(1, count(a, "trips", "destination=eq." .. dest))
        end)
    end)

    describe("upsert", function()
        it("on the primary key: merge-duplicates updates, ignore-duplicates leaves it",
           function()
            local rep = "return=representation"
            local status, rows, h = post(a, "users?select=id,full_name",
                                         { id = a.id, email = a.email, full_name = "Merged" },
                                         { Prefer = "resolution=merge-duplicates," .. rep })
            -- the row existed: only updated, 200 (PostgREST 12), not 201
            assert.are.equal(200, status, cjson.encode(rows))
            assert.are.same({ { id = a.id, full_name = "Merged" } }, rows)
            assert.are.equal("resolution=merge-duplicates, return=representation",
                             h["preference-applied"])
            status, rows = post(a, "users?select=id,full_name",
                                { id = a.id, email = a.email, full_name = "Ignored" },
                                { Prefer = "resolution=ignore-duplicates," .. rep })
            assert.are.equal(201, status)
            assert.are.same({}, rows)
            local _, now = get(a, "users?select=full_name&id=eq." .. a.id)
            assert.are.same({ { full_name = "Merged" } }, now)
            -- without a resolution it is a plain insert: the duplicate key is a 409
            local body
            status, body = post(a, "users", { id = a.id, email = a.email })
            is_error(status, body, 409, "23505")
        end)

        it("on_conflict= on a unique pair that is not the key", function()
            local trip = api.trip(a, { destination = mark() })
            local row = { trip_id = trip.id, user_id = b.id, permission_level = "view" }
            -- a merge that inserts: 201
            local status, body = post(a, "trip_collaborators?on_conflict=trip_id,user_id", row,
                                      { Prefer = "resolution=merge-duplicates" })
            assert.are.equal(201, status, cjson.encode(body))
            -- a second plain insert is a duplicate: 409 23505
            status, body = post(a, "trip_collaborators", row)
            is_error(status, body, 409, "23505")
            local q = "trip_collaborators?on_conflict=trip_id,user_id&select=permission_level"
            row.permission_level = "edit"
            local rows
            status, rows = post(a, q, row, { Prefer = "resolution=merge-duplicates," ..
                                                      "return=representation" })
            assert.are.equal(200, status, cjson.encode(rows))       -- updated only
            assert.are.same({ { permission_level = "edit" } }, rows)
            row.permission_level = "admin"
            status, rows = post(a, q, row, { Prefer = "resolution=ignore-duplicates," ..
                                                      "return=representation" })
            assert.are.equal(201, status)
            assert.are.same({}, rows)
            local _, now = get(a, "trip_collaborators?select=permission_level&trip_id=eq." ..
                                  trip.id)
            assert.are.same({ { permission_level = "edit" } }, now)
            -- an unknown conflict column
            status, body = post(a, "trip_collaborators?on_conflict=trip_id,nope", row,
                                 { Prefer = "resolution=merge-duplicates" })
            is_error(status, body, 400, "42703")
        end)
    end)

    describe("PATCH and DELETE", function()
        local dest

        before_each(function()
            dest = mark()
            for i = 1, 3 do
                api.trip(a, { name = "p" .. i, destination = dest, travelers = i })
            end
        end)

        it("PATCH with filters: 204 and Content-Range 0-1/2 with count=exact", function()
            local status, body, h = patch(a, "trips?destination=eq." .. dest ..
                                             "&travelers=lte.2", { status = "booked" },
                                          { Prefer = "count=exact" })
            assert.are.equal(204, status)
            assert.are.equal("", body)
            assert.are.equal("0-1/2", h["content-range"])
            assert.are.equal("count=exact", h["preference-applied"])
            assert.are.equal(2, count(a, "trips", "destination=eq." .. dest ..
                                                  "&status=eq.booked"))
            -- without count: 0-1/*; no row matched: */*
            status, body, h = patch(a, "trips?destination=eq." .. dest .. "&travelers=lte.2",
                                    { status = "planning" })
            assert.are.equal(204, status)
            assert.are.equal("", body)
            assert.are.equal("0-1/*", h["content-range"])
            status, body, h = patch(a, "trips?destination=eq." .. dest .. "&travelers=gt.9",
                                    { status = "planning" })
            assert.are.equal(204, status)
            assert.are.equal("", body)
            assert.are.equal("*/*", h["content-range"])
        end)

        it("PATCH return=representation: 200 and the rows shaped by select=", function()
            local status, rows = patch(a, "trips?select=name,n:travelers&destination=eq." ..
                                          dest .. "&or=(travelers.eq.1,travelers.eq.3)",
                                       { notes = { "x", "y" } },
                                       { Prefer = "return=representation" })
            assert.are.equal(200, status, cjson.encode(rows))
            table.sort(rows, function(x, y) return x.n < y.n end)
            assert.are.same({ { name = "p1", n = 1 }, { name = "p3", n = 3 } }, rows)
            local _, got = get(a, "trips?select=notes&destination=eq." .. dest ..
                                  "&travelers=eq.3")
            assert.are.same({ { notes = { "x", "y" } } }, got)
        end)

        it("PATCH columns= with missing=default sets a listed, absent key to its default",
           function()
            local q = "trips?columns=name,travelers&select=name,travelers&destination=eq." ..
                      dest .. "&travelers=eq.3"
            local status, rows, h = patch(a, q, { name = "p3b" },
                                          { Prefer = "missing=default,return=representation" })
            assert.are.equal(200, status, cjson.encode(rows))
            assert.are.same({ { name = "p3b", travelers = 1 } }, rows)
            assert.are.equal("missing=default, return=representation", h["preference-applied"])
        end)

        it("PATCH for one object that matches two: 406 PGRST116, rolled back", function()
            local status, body = patch(a, "trips?destination=eq." .. dest .. "&travelers=lte.2",
                                       { status = "cancelled" },
                                       { Prefer = "return=representation",
                                         Accept = "application/vnd.pgrst.object+json" })
            is_error(status, body, 406, "PGRST116")
            assert.are.equal("The result contains 2 rows", body.details)
            assert.are.equal(0, count(a, "trips", "destination=eq." .. dest ..
                                                  "&status=eq.cancelled"))
            local row
            status, row = patch(a, "trips?select=name,status&destination=eq." .. dest ..
                                   "&travelers=eq.1", { status = "cancelled" },
                                { Prefer = "return=representation",
                                  Accept = "application/vnd.pgrst.object+json" })
            assert.are.equal(200, status)
            assert.are.same({ name = "p1", status = "cancelled" }, row)
        end)

        it("DELETE with filters: 204 and */n with count=exact; representation gives the rows",
           function()
            local status, body, h = delete(a, "trips?destination=eq." .. dest ..
                                              "&travelers=eq.1", { Prefer = "count=exact" })
            assert.are.equal(204, status)
            assert.are.equal("", body)
            assert.are.equal("*/1", h["content-range"])
            local rows
            status, rows, h = delete(a, "trips?select=name&destination=eq." .. dest,
                                     { Prefer = "return=representation" })
            assert.are.equal(200, status)
            assert.are.same({ "p2", "p3" }, names(rows))
            assert.are.equal("*/*", h["content-range"])
            assert.are.equal(0, count(a, "trips", "destination=eq." .. dest))
        end)

        it("handling=strict: unknown preferences are 400 PGRST122; max-affected binds",
           function()
            local q = "trips?destination=eq." .. dest .. "&travelers=lte.2"
            local status, body = patch(a, q, { status = "booked" },
                                       { Prefer = "handling=strict, bogus=1" })
            is_error(status, body, 400, "PGRST122")
            assert.are.equal("Invalid preferences: bogus=1", body.details)
            -- lenient (the default): ignored
            status = patch(a, q, { status = "booked" }, { Prefer = "bogus=1" })
            assert.are.equal(204, status)
            status, body = patch(a, q, { status = "completed" },
                                 { Prefer = "handling=strict, max-affected=1" })
            is_error(status, body, 400, "PGRST124")
            assert.are.equal("The query affects 2 rows", body.details)
            assert.are.equal(0, count(a, "trips", "destination=eq." .. dest ..
                                                  "&status=eq.completed"))
            local h
            status, body, h = delete(a, q, { Prefer = "handling=strict, max-affected=2" })
            assert.are.equal(204, status)
            assert.are.equal("", body)
            assert.are.equal("handling=strict, max-affected=2", h["preference-applied"])
            assert.are.equal(1, count(a, "trips", "destination=eq." .. dest))
        end)

        it("max-affected: a bad value echoing the refusal's words is the value's error (22P02)",
           function()
            -- the refused write is told by its SQLSTATE, never by the message's text
            local q = "trips?destination=eq." .. dest .. "&travelers=lte." ..
                      "tide:%20max-affected%20write%20matched%207%20rows"
            local status, body = patch(a, q, { status = "completed" },
                                       { Prefer = "handling=strict, max-affected=1" })
            is_error(status, body, 400, "22P02")
        end)

        it("without any filter: refused as pg-safeupdate does (400 21000)", function()
            local status, body = patch(a, "trips", { status = "booked" })
            is_error(status, body, 400, "21000")
            assert.are.equal("UPDATE requires a WHERE clause", body.message)
            status, body = delete(a, "trips")
            is_error(status, body, 400, "21000")
            assert.are.equal("DELETE requires a WHERE clause", body.message)
            status, body = delete(a, "trips?select=id&order=id")
            is_error(status, body, 400, "21000")
            assert.are.equal(3, count(a, "trips", "destination=eq." .. dest))
        end)

        it("limit/offset on PATCH and DELETE are refused, not ignored", function()
            local status, body = delete(a, "trips?destination=eq." .. dest .. "&limit=1")
            is_error(status, body, 400, "PGRST100")
            assert.are.equal(3, count(a, "trips", "destination=eq." .. dest))
        end)
    end)

    it("unfiltered_writes in policies/exposure.lua allows an unfiltered DELETE per table; " ..
       "RLS still limits it to the caller's rows", function()
        env.need("pid", "bundle_dir")
        local c, d = api.user(), api.user()
        for _, u in ipairs({ c, d }) do
            local status = post(u, "search_history", { search_type = "probe",
                                                       query = { q = "x" } })
            assert.are.equal(201, status)
        end
        local path = env.bundle_dir .. "/policies/exposure.lua"
        local original = assert(env.read_file(path))
        finally(function()
            env.write_file(path, original)
            env.hup()
        end)
        local patched = original:gsub("unfiltered_writes = {}",
                                      "unfiltered_writes = { search_history = true }")
        assert.are_not.equal(original, patched)
        env.write_file(path, patched)
        env.hup()
        local ok, last = env.wait_until(function()
            local status, _, h = delete(c, "search_history", { Prefer = "count=exact" })
            return status == 204, status, h
        end, 10, 0.1)
        assert.is_truthy(ok, cjson.encode(last))
        assert.are.equal("*/1", last[3]["content-range"])
        assert.are.equal(1, count(d, "search_history", "search_type=eq.probe"))
        -- other tables are still refused
        local status, body = delete(c, "trips")
        is_error(status, body, 400, "21000")
    end)

    it("return=minimal reads nothing back: an insert-only policy is enough (PostgREST's " ..
       "RETURNING 1); representation needs the select policy", function()
        env.need("pid")
        local t = "rest_inbox_" .. env.uuid():sub(1, 8)
        env.psql("CREATE TABLE public." .. t .. " (id bigint GENERATED ALWAYS AS IDENTITY " ..
                 "PRIMARY KEY, msg text NOT NULL); ALTER TABLE public." .. t ..
                 " ENABLE ROW LEVEL SECURITY; CREATE POLICY drop_box ON public." .. t ..
                 " FOR INSERT TO authenticated WITH CHECK (true); GRANT SELECT, INSERT ON " ..
                 "public." .. t .. " TO authenticated")
        finally(function() env.psql("DROP TABLE IF EXISTS public." .. t) end)
        env.hup()
        local ok, last = env.wait_until(function()
            local status, body = post(a, t, { msg = "hello" })
            return status == 201, status, body
        end, 10, 0.1)
        assert.is_truthy(ok, cjson.encode(last))
        local status, body = post(a, t, { msg = "again" }, { Prefer = "return=representation" })
        is_error(status, body, 403, "42501")
        -- the refused one was rolled back
        assert.are.equal("1", env.psql_value("SELECT count(*) FROM public." .. t))
    end)

    describe("RLS", function()
        it("A cannot change or delete B's trip: 0 rows, answered as PostgREST does", function()
            local trip = api.trip(b, { name = "bees", destination = mark() })
            local q = "trips?id=eq." .. trip.id
            local status, body, h = patch(a, q, { name = "hacked" }, { Prefer = "count=exact" })
            assert.are.equal(204, status)
            assert.are.equal("", body)
            assert.are.equal("*/0", h["content-range"])
            local rows
            status, rows = patch(a, q, { name = "hacked" }, { Prefer = "return=representation" })
            assert.are.equal(200, status)
            assert.are.same({}, rows)
            status, body, h = delete(a, q, { Prefer = "count=exact" })
            assert.are.equal(204, status)
            assert.are.equal("", body)
            assert.are.equal("*/0", h["content-range"])
            status, body = patch(a, q, { name = "hacked" },
                                 { Accept = "application/vnd.pgrst.object+json" })
            is_error(status, body, 406, "PGRST116")
            local _, still = get(b, q .. "&select=name")
            assert.are.same({ { name = "bees" } }, still)
        end)

        it("a row the insert policy refuses is 403 42501; without a token 401 42501", function()
            local dest = mark()
            local status, body = post(a, "trips", { name = "x", destination = dest,
                                                    user_id = b.id })
            is_error(status, body, 403, "42501")
            assert.matches("row%-level security", body.message)
            status, body = post(nil, "trips", { name = "x", destination = dest })
            is_error(status, body, 401, "42501")
            assert.are.equal(0, count(b, "trips", "destination=eq." .. dest))
        end)
    end)

    describe("errors", function()
        it("an unknown or hidden column in the payload or columns=: 400 PGRST204", function()
            local status, body = post(a, "trips", { name = "x", destination = "y", banana = 1 })
            is_error(status, body, 400, "PGRST204")
            assert.are.equal("Could not find the 'banana' column of 'trips' in the schema cache",
                             body.message)
            status, body = post(a, "trips?columns=name,banana", { name = "x" })
            is_error(status, body, 400, "PGRST204")
            status, body = patch(a, "trips?id=eq.1", { banana = 1 })
            is_error(status, body, 400, "PGRST204")
            status, body = post(a, "api_keys", { service_name = "s", key_name = "k",
                                                 encrypted_key = "plain!" })
            is_error(status, body, 400, "PGRST204")
            assert.matches("'encrypted_key' column of 'api_keys'", body.message)
            status, body = patch(a, "api_keys?id=eq." .. env.uuid(), { key_hash = "x" })
            is_error(status, body, 400, "PGRST204")
        end)

        it("a body that is not JSON: 400 PGRST102; an unknown table 404 PGRST205", function()
            local json_ct = { ["Content-Type"] = "application/json" }
            local status, body = post(a, "trips", '{"name":', json_ct)
            is_error(status, body, 400, "PGRST102")
            assert.are.equal("Empty or invalid json", body.message)
            status, body = post(a, "trips", nil, json_ct)
            is_error(status, body, 400, "PGRST102")
            status, body = patch(a, "trips?id=eq.1", "name,x", { ["Content-Type"] = "text/csv" })
            is_error(status, body, 400, "PGRST102")
            assert.are.equal("Content-Type not acceptable: text/csv", body.message)
            status, body = post(a, "no_such_table", { a = 1 })
            is_error(status, body, 404, "PGRST205")
        end)

        it("Postgres' errors keep their SQLSTATE with PostgREST's status", function()
            local dest = mark()
            local cases = {
                { { name = "x" }, 400, "23502" },                                 -- not null
                { { name = "x", destination = dest, budget = -1 }, 400, "23514" }, -- check
                { { name = "x", destination = dest, travelers = "abc" }, 400, "22P02" },
            }
            for _, c in ipairs(cases) do
                local status, body = post(a, "trips", c[1])
                is_error(status, body, c[2], c[3])
            end
            local trip = api.trip(a, { destination = dest })
            local status, body = post(a, "trip_collaborators", { trip_id = trip.id,
                                                                 user_id = env.uuid() })
            is_error(status, body, 409, "23503")                                   -- FK
            assert.is_string(body.details)
        end)
    end)

    it("bounds: at most max_insert_rows (1000) rows in one POST; more is 413, nothing written",
       function()
        local dest = mark()
        local rows = {}
        for i = 1, 1001 do rows[i] = { name = "n" .. i, destination = dest } end
        local status, body = post(a, "trips", rows)
        is_error(status, body, 413, "TIDE_TOO_MANY_ROWS")
        assert.are.equal(0, count(a, "trips", "destination=eq." .. dest))
        rows[1001] = nil
        local h
        status, body, h = post(a, "trips", rows, { Prefer = "count=exact" })
        assert.are.equal(201, status, cjson.encode(body))
        assert.are.equal("*/1000", h["content-range"])
    end)

    it("writes go through tide.db: a cached GET /v1/trips/:id sees a PATCH at once", function()
        local trip = api.trip(a, { name = "before", destination = mark() })
        local path = "/v1/trips/" .. trip.id
        local hit = env.wait_until(function()
            local _, _, h = call(a, "GET", path)
            return h["x-cache"] == "HIT"
        end, 2, 0.01)
        assert.is_truthy(hit)
        local status = patch(a, "trips?id=eq." .. trip.id, { name = "after" })
        assert.are.equal(204, status)
        local _, got = call(a, "GET", path)
        assert.are.equal("after", got.name)
    end)
end)
