-- spec/integration/rest_csv_spec.lua - GET /rest/v1/:table with Accept: text/csv over HTTP
-- against the demo schema (tide/rest/csv.lua): the header line and rows as PostgREST 12
-- sends them, RFC 4180 quoting (commas, quotes, line breaks, backslashes, empty strings
-- against NULL), values in Postgres' text form (dates, numerics, arrays), Accept negotiation
-- with q-values, Range / count=exact / Content-Range as for JSON, RLS, and errors kept JSON.

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"
local rest = require "spec.helpers.rest"

local CSV = { Accept = "text/csv" }

local function get(user, query, headers)
    return rest.get(user, query, headers or CSV)
end

describe("/rest/v1 text/csv", function()
    local a, b, dest, q

    -- A trip for user u, inserted as the superuser so names can hold anything.
    local function trip(u, name, budget, travelers, notes, start)
        env.psql("INSERT INTO public.trips (user_id, name, destination, budget, travelers, " ..
                 "notes, start_date) VALUES (" .. env.lit(u.id) .. ", " .. env.lit(name) ..
                 ", " .. env.lit(dest) .. ", " .. (budget or "NULL") .. ", " .. travelers ..
                 ", " .. env.lit(notes or "{}") .. ", " ..
                 (start and env.lit(start) or "NULL") .. ")")
    end

    setup(function()
        env.need("bin", "dsn_admin")
        a, b = api.user(), api.user()
        dest = "C-" .. env.uuid():sub(1, 8)
        q = "destination=eq." .. dest
        trip(a, "plain", "100", 1, "{a,b c}", "2030-05-01")
        trip(a, "with, comma", nil, 2)
        trip(a, 'say "hi"', "12.5", 3)
        trip(a, "back\\slash", "0", 4)
        trip(a, "two\nlines", "7", 5)
        trip(a, "", "1", 6)
        trip(b, "bob's", "10", 1)
    end)

    it("answers a header line and one line per row, as PostgREST 12", function()
        local status, body, h = get(a, "trips?select=name,budget,travelers&" .. q ..
                                       "&travelers=lte.2&order=travelers")
        assert.are.equal(200, status)
        assert.are.equal("text/csv; charset=utf-8", h["content-type"])
        assert.are.equal("0-1/*", h["content-range"])
        assert.are.equal('name,budget,travelers\nplain,100.00,1\n"with, comma",,2', body)
        assert.are.equal(#body, tonumber(h["content-length"]))
    end)

    it("quotes by RFC 4180: quotes doubled, line breaks kept, backslashes as they are, " ..
       "'' apart from NULL", function()
        local status, body = get(a, "trips?select=travelers,name,budget&" .. q ..
                                    "&order=travelers")
        assert.are.equal(200, status)
        assert.are.equal(table.concat({
            "travelers,name,budget",
            "1,plain,100.00",
            '2,"with, comma",',
            '3,"say ""hi""",12.50',
            '4,"back\\slash",0.00',          -- one backslash (PostgREST would send two)
            '5,"two\nlines",7.00',
            '6,"",1.00',
        }, "\n"), body)
    end)

    it("prints values as Postgres does (dates, arrays) and * in table order", function()
        local status, body = get(a, "trips?select=id,notes,start_date,status&" .. q ..
                                    "&name=eq.plain")
        assert.are.equal(200, status)
        local header, row = body:match("^([^\n]*)\n(.*)$")
        assert.are.equal("id,notes,start_date,status", header)
        assert.matches('^%d+,"{a,""b c""}",2030%-05%-01,planning$', row)
        status, body = get(a, "trips?" .. q .. "&name=eq.plain")
        assert.are.equal(200, status)
        assert.are.equal("id,user_id,name,destination,start_date,end_date,budget,travelers," ..
                         "status,trip_type,notes,created_at,updated_at", body:match("^[^\n]*"))
    end)

    it("quotes a header name that needs it (a quoted alias)", function()
        local status, body = get(a, 'trips?select="x,y":name,n:travelers&' .. q ..
                                    "&travelers=eq.1")
        assert.are.equal(200, status)
        assert.are.equal('"x,y",n\nplain,1', body)
    end)

    it("no row: no header either, as PostgREST (the body is one line break)", function()
        local status, body, h = get(a, "trips?select=name&" .. q .. "&travelers=gt.100")
        assert.are.equal(200, status)
        assert.are.equal("\n", body)
        assert.are.equal("*/*", h["content-range"])
        assert.are.equal("text/csv; charset=utf-8", h["content-type"])
    end)

    it("Range and count=exact: Content-Range and 206 as for JSON", function()
        local status, body, h = get(a, "trips?select=travelers&" .. q .. "&order=travelers",
                                    { Accept = "text/csv", Range = "1-2",
                                      Prefer = "count=exact" })
        assert.are.equal(206, status)
        assert.are.equal("1-2/6", h["content-range"])
        assert.are.equal("travelers\n2\n3", body)
        status, body, h = get(a, "trips?select=travelers&" .. q ..
                                 "&order=travelers.desc&limit=2&offset=1")
        assert.are.equal(200, status)
        assert.are.equal("1-2/*", h["content-range"])
        assert.are.equal("travelers\n5\n4", body)
    end)

    it("negotiates with the Accept list and its q-values", function()
        local cases = {
            { "text/csv, application/json", "text/csv" },
            { "text/csv, */*", "text/csv" },
            { "text/unknowntype, text/csv", "text/csv" },
            { "text/csv; version=1", "text/csv" },
            { "application/json;q=0.5, text/csv", "text/csv" },
            { "text/csv;q=0.1, application/json", "application/json" },
            { "application/json, text/csv", "application/json" },
        }
        for _, c in ipairs(cases) do
            local status, _, h = get(a, "trips?select=name&" .. q .. "&travelers=eq.1",
                                     { Accept = c[1] })
            assert.are.equal(200, status, c[1])
            assert.are.equal(c[2] .. "; charset=utf-8", h["content-type"], c[1])
        end
        local status, body = get(a, "trips?select=name&" .. q, { Accept = "text/csv;q=0" })
        assert.are.equal(406, status)
        assert.are.equal("PGRST107", body.code)
    end)

    it("RLS decides the rows, as for JSON", function()
        local status, body = get(b, "trips?select=name&" .. q)
        assert.are.equal(200, status)
        assert.are.equal("name\nbob's", body)
        status, body = get(nil, "trips?select=name&" .. q)
        assert.are.equal(401, status)
        assert.are.equal("42501", body.code)
    end)

    it("errors stay JSON in PostgREST's shape", function()
        local status, body, h = get(a, "trips?select=nope&" .. q)
        assert.are.equal(400, status)
        assert.matches("application/json", h["content-type"])
        assert.are.equal("42703", body.code)
        status, body = get(a, "no_such_table?select=a")
        assert.are.equal(404, status)
        assert.are.equal("PGRST205", body.code)
    end)
end)
