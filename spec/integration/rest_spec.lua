-- spec/integration/rest_spec.lua - GET /rest/v1/:table over HTTP against the demo schema,
-- under two users' tokens: RLS (each sees only their own rows), select (columns, aliases,
-- casts), every filter operator with not. and PostgREST's quoting in in.(...), or/and trees,
-- order with nulls placement, limit/offset, Range and Content-Range with and without
-- Prefer: count=exact (200, 206, 416), one object (vnd.pgrst.object+json, 406 PGRST116),
-- errors in PostgREST's shape and codes, hidden columns, and the parser's bounds.

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"
local rest = require "spec.helpers.rest"

local enc, get, names, sorted, is_error = rest.enc, rest.get, rest.names, rest.sorted,
                                          rest.is_error

describe("/rest/v1 reads", function()
    local a, b, dest, q

    setup(function()
        env.need("bin", "dsn_admin")
        a, b = api.user(), api.user()
        dest = "D-" .. env.uuid():sub(1, 8)
        q = "destination=eq." .. dest
        api.trip(a, { name = "alpha", destination = dest, budget = 100, travelers = 1 })
        api.trip(a, { name = "bravo", destination = dest, budget = 250, travelers = 2,
                      status = "booked" })
        api.trip(a, { name = "Rome, Italy (spring)", destination = dest, budget = 900,
                      travelers = 3 })
        api.trip(a, { name = "delta", destination = dest, budget = require("cjson").null,
                      travelers = 4 })
        api.trip(a, { name = "echo_x", destination = dest, budget = 50, travelers = 5 })
        api.trip(b, { name = "bob's", destination = dest, budget = 10 })
    end)

    it("RLS: each user sees only their own rows; anon is refused", function()
        local status, rows = get(a, "trips?select=name,user_id&" .. q)
        assert.are.equal(200, status)
        assert.are.equal(5, #rows)
        for _, r in ipairs(rows) do assert.are.equal(a.id, r.user_id) end
        status, rows = get(b, "trips?select=name,user_id&" .. q)
        assert.are.equal(200, status)
        assert.are.same({ "bob's" }, names(rows))
        local body
        status, body = get(nil, "trips?" .. q)
        is_error(status, body, 401, "42501")
    end)

    it("select: columns, alias:col and col::type casts", function()
        local status, rows = get(a, "trips?select=name,cost:budget,travelers::text,n:name::text&"
                                    .. q .. "&name=eq.alpha")
        assert.are.equal(200, status)
        assert.are.same({ { name = "alpha", cost = 100, travelers = "1", n = "alpha" } }, rows)
        local body
        status, body = get(a, "trips?select=name::regclass&" .. q)
        is_error(status, body, 400, "PGRST100")
    end)

    it("filters: eq neq gt gte lt lte like ilike is in, and not.", function()
        local cases = {
            { "travelers=eq.2", { "bravo" } },
            { "travelers=neq.2", { "Rome, Italy (spring)", "alpha", "delta", "echo_x" } },
            { "travelers=gt.3", { "delta", "echo_x" } },
            { "travelers=gte.3", { "Rome, Italy (spring)", "delta", "echo_x" } },
            { "travelers=lt.2", { "alpha" } },
            { "travelers=lte.2", { "alpha", "bravo" } },
            { "name=like.*lph*", { "alpha" } },
            { "name=ilike.ROME*", { "Rome, Italy (spring)" } },
            { "budget=is.null", { "delta" } },
            { "budget=not.is.null", { "Rome, Italy (spring)", "alpha", "bravo", "echo_x" } },
            { "name=in.(alpha," .. enc('"Rome, Italy (spring)"') .. ")",
              { "Rome, Italy (spring)", "alpha" } },
            { "travelers=not.in.(1,2,3)", { "delta", "echo_x" } },
            { "travelers=in.()", {} },
            { "travelers=gte.2&travelers=lte.3", { "Rome, Italy (spring)", "bravo" } },
            { "status=eq.booked&name=not.eq.alpha", { "bravo" } },
        }
        for _, c in ipairs(cases) do
            local status, rows = get(a, "trips?select=name&" .. q .. "&" .. c[1])
            assert.are.equal(200, status, c[1])
            assert.are.same(sorted(c[2]), sorted(names(rows)), c[1])
        end
    end)

    it("cs/cd: containment on arrays (text[]) and jsonb, negated and inside or=", function()
        env.psql("UPDATE public.trips SET notes = CASE name WHEN 'alpha' THEN '{beach,food}' " ..
                 "WHEN 'bravo' THEN '{food}' ELSE '{}' END::text[] WHERE destination = " ..
                 env.lit(dest))
        local cases = {
            { "notes=cs.{food}", { "alpha", "bravo" } },
            { "notes=cs.{beach,food}", { "alpha" } },
            { "notes=cd.{food}", { "bravo", "Rome, Italy (spring)", "delta", "echo_x" } },
            { "notes=not.cs.{food}", { "Rome, Italy (spring)", "delta", "echo_x" } },
            { "or=(notes.cs.{beach},travelers.eq.5)", { "alpha", "echo_x" } },
        }
        for _, c in ipairs(cases) do
            local status, rows = get(a, "trips?select=name&" .. q .. "&" .. c[1])
            assert.are.equal(200, status, c[1])
            assert.are.same(sorted(c[2]), sorted(names(rows)), c[1])
        end
        env.psql("UPDATE public.users SET preferences = '{\"theme\":\"dark\",\"lang\":\"pt\"}' " ..
                 "WHERE id = " .. env.lit(a.id))
        local id = "&id=eq." .. a.id
        local status, rows = get(a, "users?select=id&preferences=cs." ..
                                    enc('{"theme":"dark"}') .. id)
        assert.are.equal(200, status)
        assert.are.equal(1, #rows)
        status, rows = get(a, "users?select=id&preferences=cs." .. enc('{"theme":"light"}') .. id)
        assert.are.equal(200, status)
        assert.are.equal(0, #rows)
        status, rows = get(a, "users?select=id&preferences=cd." ..
                              enc('{"theme":"dark","lang":"pt","x":1}') .. id)
        assert.are.equal(200, status)
        assert.are.equal(1, #rows)
    end)

    it("or=/and= trees, nested and negated, with quoted values", function()
        local cases = {
            { "or=(travelers.eq.1,travelers.eq.5)", { "alpha", "echo_x" } },
            { "or=(name.eq." .. enc('"Rome, Italy (spring)"') .. ",and(budget.gt.200," ..
              "budget.lt.300))", { "Rome, Italy (spring)", "bravo" } },
            { "not.or=(travelers.lt.3,budget.is.null)", { "Rome, Italy (spring)", "echo_x" } },
            { "and=(travelers.gt.1,not.or(name.eq.bravo,budget.is.null))",
              { "Rome, Italy (spring)", "echo_x" } },
            { "or=(travelers.in.(1,2),budget.gte.900)",
              { "Rome, Italy (spring)", "alpha", "bravo" } },
        }
        for _, c in ipairs(cases) do
            local status, rows = get(a, "trips?select=name&" .. q .. "&" .. c[1])
            assert.are.equal(200, status, c[1])
            assert.are.same(sorted(c[2]), sorted(names(rows)), c[1])
        end
    end)

    it("order: several terms, desc, nullsfirst/nullslast", function()
        local _, rows = get(a, "trips?select=name&" .. q .. "&order=budget.desc.nullslast")
        assert.are.same({ "Rome, Italy (spring)", "bravo", "alpha", "echo_x", "delta" },
                        names(rows))
        _, rows = get(a, "trips?select=name&" .. q .. "&order=budget.asc.nullsfirst")
        assert.are.same({ "delta", "echo_x", "alpha", "bravo", "Rome, Italy (spring)" },
                        names(rows))
        _, rows = get(a, "trips?select=name&" .. q .. "&order=status.asc,travelers.desc")
        assert.are.same({ "bravo", "echo_x", "delta", "Rome, Italy (spring)", "alpha" },
                        names(rows))
    end)

    it("limit/offset and Content-Range: 200 with /*, 206 with count=exact", function()
        local base = "trips?select=name&" .. q .. "&order=travelers"
        local status, rows, h = get(a, base .. "&limit=2&offset=1")
        assert.are.equal(200, status)
        assert.are.same({ "bravo", "Rome, Italy (spring)" }, names(rows))
        assert.are.equal("1-2/*", h["content-range"])
        status, rows, h = get(a, base .. "&limit=2&offset=1", { Prefer = "count=exact" })
        assert.are.equal(206, status)
        assert.are.equal(2, #rows)
        assert.are.equal("1-2/5", h["content-range"])
        assert.are.equal("count=exact", h["preference-applied"])
        status, rows, h = get(a, base, { Prefer = "count=exact" })
        assert.are.equal(200, status)
        assert.are.equal(5, #rows)
        assert.are.equal("0-4/5", h["content-range"])
        status, rows, h = get(a, base .. "&limit=0", { Prefer = "count=exact" })
        assert.are.equal(206, status)
        assert.are.same({}, rows)
        assert.are.equal("*/5", h["content-range"])
        status, rows, h = get(a, base .. "&name=eq.nobody")
        assert.are.equal(200, status)
        assert.are.same({}, rows)
        assert.are.equal("*/*", h["content-range"])
    end)

    it("Range / Range-Unit headers; 416 past the end or for an inverted range", function()
        local base = "trips?select=name&" .. q .. "&order=travelers"
        local status, rows, h = get(a, base, { Range = "1-3", ["Range-Unit"] = "items" })
        assert.are.equal(200, status)
        assert.are.same({ "bravo", "Rome, Italy (spring)", "delta" }, names(rows))
        assert.are.equal("1-3/*", h["content-range"])
        status, rows, h = get(a, base, { Range = "3-", ["Range-Unit"] = "items",
                                         Prefer = "count=exact" })
        assert.are.equal(206, status)
        assert.are.same({ "delta", "echo_x" }, names(rows))
        assert.are.equal("3-4/5", h["content-range"])
        -- the answer is the intersection of the header's range and offset/limit (0-1 here)
        status, rows, h = get(a, base .. "&limit=2", { Range = "1-3" })
        assert.are.equal(200, status)
        assert.are.same({ "bravo" }, names(rows))
        assert.are.equal("1-1/*", h["content-range"])
        local body
        status, body = get(a, base .. "&limit=1", { Range = "1-3" })   -- 0-0 and 1-3: empty
        is_error(status, body, 416, "PGRST103")
        status, body = get(a, base .. "&offset=9", { Prefer = "count=exact" })
        is_error(status, body, 416, "PGRST103")
        assert.matches("only 5 rows", body.details)
        status, body = get(a, base, { Range = "3-1" })
        is_error(status, body, 416, "PGRST103")
    end)

    it("Accept: vnd.pgrst.object+json gives one object, else 406 PGRST116", function()
        local obj = { Accept = "application/vnd.pgrst.object+json" }
        local status, row, h = get(a, "trips?select=name,travelers&" .. q .. "&name=eq.alpha",
                                   obj)
        assert.are.equal(200, status)
        assert.are.same({ name = "alpha", travelers = 1 }, row)
        assert.matches("application/vnd.pgrst.object%+json", h["content-type"])
        local body
        status, body = get(a, "trips?" .. q, obj)
        is_error(status, body, 406, "PGRST116")
        assert.are.equal("The result contains 5 rows", body.details)
        assert.are.equal("JSON object requested, multiple (or no) rows returned", body.message)
        status, body = get(a, "trips?" .. q .. "&name=eq.nobody", obj)
        is_error(status, body, 406, "PGRST116")
        assert.are.equal("The result contains 0 rows", body.details)
        status, body = get(a, "trips?" .. q, { Accept = "application/xml" })
        is_error(status, body, 406, "PGRST107")
        assert.are.equal("None of these media types are available: application/xml",
                         body.message)
    end)

    it("errors: unknown table 404 PGRST205, unknown column 400 42703, parse 400 PGRST100",
       function()
        local status, body = get(a, "no_such_table")
        is_error(status, body, 404, "PGRST205")
        assert.are.equal("Could not find the table 'public.no_such_table' in the schema cache",
                         body.message)
        status, body = get(a, "trips?select=id,banana")
        is_error(status, body, 400, "42703")
        assert.are.equal("column trips.banana does not exist", body.message)
        status, body = get(a, "trips?banana=eq.1")
        is_error(status, body, 400, "42703")
        status, body = get(a, "trips?order=banana.desc")
        is_error(status, body, 400, "42703")
        status, body = get(a, "trips?id=zz.1")
        is_error(status, body, 400, "PGRST100")
        status, body = get(a, "trips?or=(id.eq.1")
        is_error(status, body, 400, "PGRST100")
        status, body = get(a, "trips?select=*,...users(*)")     -- spread embedding: not yet
        is_error(status, body, 400, "PGRST100")
        -- a value Postgres cannot take for the column's type: its error, PostgREST-mapped
        status, body = get(a, "trips?id=eq.abc")
        is_error(status, body, 400, "22P02")
    end)

    it("hidden columns (policies/exposure.lua) are not shown and cannot be named", function()
        local status, rows = get(a, "api_keys?select=*")
        assert.are.equal(200, status)
        assert.are.same({}, rows)
        local body
        status, body = get(a, "api_keys?select=encrypted_key")
        is_error(status, body, 400, "42703")
        status, body = get(a, "api_keys?key_hash=eq.x")
        is_error(status, body, 400, "42703")
    end)

    it("bounds: or/and nesting deeper than 16 levels is refused; 16 are served", function()
        local function nested(depth)
            return string.rep("or(", depth - 1) .. "travelers.eq.1" ..
                   string.rep(")", depth - 1)
        end
        -- "or=(" is level 1; each "or(" inside adds one
        local status, rows = get(a, "trips?select=name&" .. q .. "&or=(" .. nested(16) .. ")")
        assert.are.equal(200, status)
        assert.are.same({ "alpha" }, names(rows))
        local body
        status, body = get(a, "trips?select=name&" .. q .. "&or=(" .. nested(17) .. ")")
        is_error(status, body, 400, "PGRST100")
        assert.matches("nested", body.message)
        local many = {}
        for i = 1, 101 do many[i] = "travelers=neq." .. i end
        status, body = get(a, "trips?select=name&" .. table.concat(many, "&"))
        is_error(status, body, 400, "PGRST100")
        assert.matches("too many filters", body.message)
    end)

    it("schema cache: a table created later is served after SIGHUP (or refresh_after)",
       function()
        env.need("pid")
        local t = "rest_probe_" .. env.uuid():sub(1, 8)
        env.psql("CREATE TABLE public." .. t .. " (id int, label text); " ..
                 "INSERT INTO public." .. t .. " VALUES (1, 'one'); " ..
                 "GRANT SELECT ON public." .. t .. " TO authenticated")
        finally(function() env.psql("DROP TABLE IF EXISTS public." .. t) end)
        env.hup()
        local ok = env.wait_until(function()
            local status, rows = get(a, t .. "?select=label")
            return status == 200 and rows[1] and rows[1].label == "one"
        end, 10, 0.1)
        assert.is_truthy(ok)
    end)
end)
