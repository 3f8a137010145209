-- spec/integration/rest_rpc_spec.lua - /rest/v1/rpc/:fn over HTTP against the demo functions
-- of db/migrations/008_rest_rpc_demo.sql, under two users' tokens: scalar and set-returning
-- calls by POST and GET, the read side's select/filters/order/limit/Range/count on a
-- function's rows, RLS inside SECURITY INVOKER functions, defaults, overloads (chosen by
-- argument names, ambiguous, unknown), VARIADIC, params=single-object, void, volatile
-- functions refused on GET, errors RAISEd by functions (P0001, PTnnn, PGRST) with
-- PostgREST's statuses, and the bound on the number of arguments.

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"
local rest = require "spec.helpers.rest"
local cjson = require "cjson"

local call = api.call
local post, get, is_error, names = rest.rpc_post, rest.rpc_get, rest.is_error, rest.names

describe("/rest/v1/rpc", function()
    local a, b

    setup(function()
        env.need("bin", "dsn_admin")
        a, b = api.user(), api.user()
        api.trip(a, { name = "alpha", budget = 100, travelers = 1 })
        api.trip(a, { name = "bravo", budget = 250, travelers = 2, status = "booked" })
        api.trip(a, { name = "charlie", budget = 900, travelers = 3 })
        api.trip(a, { name = "delta", budget = cjson.null, travelers = 4 })
        api.trip(b, { name = "bob's", budget = 10, travelers = 2 })
    end)

    it("POST a STABLE scalar function: its value, RLS applied inside, a default argument",
       function()
        local status, body, h = post(a, "trip_budget_total", {})
        assert.are.equal(200, status)
        assert.are.equal(1250, body)                        -- the default status = NULL: all
        assert.are.equal("0-0/*", h["content-range"])
        assert.matches("application/json", h["content-type"], 1, true)
        status, body = post(a, "trip_budget_total", { status = "booked" })
        assert.are.equal(200, status)
        assert.are.equal(250, body)
        status, body = post(b, "trip_budget_total", {})     -- bob sees his own trip only
        assert.are.equal(200, status)
        assert.are.equal(10, body)
        status, body = post(a, "trip_budget_total")         -- no body at all: no arguments
        assert.are.equal(200, status)
        assert.are.equal(1250, body)
    end)

    it("POST a set-returning TABLE function: rows, with select, filters, order, limit, count",
       function()
        local status, rows, h = post(a, "trip_summaries", { min_travelers = 2 })
        assert.are.equal(200, status)
        assert.are.same({ "bravo", "charlie", "delta" }, names(rows))
        assert.are.equal("0-2/*", h["content-range"])
        assert.are.same({ "budget", "destination", "id", "name", "status", "travelers" },
                        (function()
                            local k = {}
                            for key in pairs(rows[1]) do k[#k + 1] = key end
                            table.sort(k)
                            return k
                        end)())

        status, rows, h = post(a, "trip_summaries", { min_travelers = 1 }, nil,
                               "select=name,people:travelers&travelers=lt.4" ..
                               "&order=travelers.desc&limit=2")
        assert.are.equal(200, status)
        assert.are.same({ { name = "charlie", people = 3 }, { name = "bravo", people = 2 } },
                        rows)
        assert.are.equal("0-1/*", h["content-range"])

        status, rows, h = post(a, "trip_summaries", {}, { Prefer = "count=exact" },
                               "select=name&order=name&offset=1&limit=2")
        assert.are.equal(206, status)
        assert.are.same({ "bravo", "charlie" }, names(rows))
        assert.are.equal("1-2/4", h["content-range"])
        assert.are.equal("count=exact", h["preference-applied"])

        status, rows = post(a, "trip_summaries", {}, nil,
                            "or=(name.eq.alpha,budget.is.null)&select=name&order=name")
        assert.are.equal(200, status)
        assert.are.same({ "alpha", "delta" }, names(rows))
    end)

    it("RLS inside a SECURITY INVOKER function: two users get different rows", function()
        local status, rows = post(a, "trip_summaries", {}, nil, "select=name&order=name")
        assert.are.equal(200, status)
        assert.are.same({ "alpha", "bravo", "charlie", "delta" }, names(rows))
        status, rows = post(b, "trip_summaries", {}, nil, "select=name")
        assert.are.equal(200, status)
        assert.are.same({ "bob's" }, names(rows))
        status, rows = get(b, "trip_summaries", "min_travelers=3")
        assert.are.equal(200, status)
        assert.are.same({}, rows)
    end)

    it("GET a STABLE function: arguments and filters from the query string, Range", function()
        local status, rows, h = get(a, "trip_summaries",
                                    "min_travelers=2&travelers=lt.4&select=name&order=name")
        assert.are.equal(200, status)
        assert.are.same({ "bravo", "charlie" }, names(rows))
        assert.are.equal("0-1/*", h["content-range"])
        -- a key whose value is a filter filters, even when it names an argument's column
        status, rows = get(a, "trip_summaries", "travelers=gte.3&select=name&order=name")
        assert.are.equal(200, status)
        assert.are.same({ "charlie", "delta" }, names(rows))
        status, rows, h = get(a, "trip_summaries", "select=name&order=name",
                              { Range = "1-2", Prefer = "count=exact" })
        assert.are.equal(206, status)
        assert.are.same({ "bravo", "charlie" }, names(rows))
        assert.are.equal("1-2/4", h["content-range"])
        local body
        status, body = get(a, "trip_budget_total", "status=booked")
        assert.are.equal(200, status)
        assert.are.equal(250, body)
        status, body = get(a, "format_budget", "amount=3.5&currency=EUR")
        assert.are.equal(200, status)
        assert.are.equal("3.50 EUR", body)
    end)

    it("GET a VOLATILE function is refused (405 25006); POST runs it under RLS", function()
        local _, mine = post(a, "trip_summaries", {}, nil, "name=eq.alpha&select=id")
        local id = mine[1].id
        local status, body = get(a, "rename_trip", "trip_id=" .. id .. "&new_name=zulu")
        is_error(status, body, 405, "25006")
        -- nothing ran
        local _, rows = post(a, "trip_summaries", {}, nil, "id=eq." .. id .. "&select=name")
        assert.are.same({ "alpha" }, names(rows))

        -- a function returning one row (not SETOF): the row as an object
        status, body = post(a, "rename_trip", { trip_id = id, new_name = "alpha2" })
        assert.are.equal(200, status)
        assert.are.equal(id, body.id)
        assert.are.equal("alpha2", body.name)
        assert.are.equal(a.id, body.user_id)
        -- bob may not edit alice's trip: RLS leaves the UPDATE nothing to change
        status, body = post(b, "rename_trip", { trip_id = id, new_name = "hijacked" })
        assert.are.equal(200, status)
        assert.are.equal(cjson.null, body.id)
        _, rows = post(a, "trip_summaries", {}, nil, "id=eq." .. id .. "&select=name")
        assert.are.same({ "alpha2" }, names(rows))
        post(a, "rename_trip", { trip_id = id, new_name = "alpha" })
    end)

    it("reads run read-only: a STABLE function that writes through a VOLATILE one is " ..
       "refused on GET, HEAD and POST, and through a view (405 25006), nothing written; " ..
       "reads and volatile calls still work", function()
        local marker = "ro-" .. env.uuid():sub(1, 8)
        local function noted(kind)
            return rest.count(a, "search_history", "search_type=eq." .. kind)
        end
        local views_before = noted("view")
        local status, body = get(a, "note_search", "search_type=" .. marker)
        is_error(status, body, 405, "25006")
        assert.matches("read-only transaction", body.message, 1, true)
        assert.are.equal(0, noted(marker))
        status = call(a, "HEAD", "/rest/v1/rpc/note_search?search_type=" .. marker)
        assert.are.equal(405, status)
        -- POST to a STABLE function is a read too (PostgREST 12)
        status, body = post(a, "note_search", { search_type = marker })
        is_error(status, body, 405, "25006")
        assert.are.equal(0, noted(marker))
        -- a table or view read: the same transaction
        status, body = rest.get(a, "search_notes?select=searches")
        is_error(status, body, 405, "25006")
        status = call(a, "HEAD", "/rest/v1/search_notes")
        assert.are.equal(405, status)
        assert.are.equal(views_before, noted("view"))

        -- reads that do not write, and POST to a VOLATILE function, are as before
        status, body = get(a, "trip_budget_total", "status=booked")
        assert.are.equal(200, status)
        assert.are.equal(250, body)
        status, body = rest.get(a, "trips?select=name&name=eq.bravo")
        assert.are.equal(200, status)
        assert.are.same({ "bravo" }, names(body))
        status = post(a, "record_search", { search_type = marker, query = { q = 1 } })
        assert.are.equal(204, status)
        assert.are.equal(1, noted(marker))
        -- as service_role (no RLS), the same refusal
        status, body = call({ token = env.token(a.id, { role = "service_role" }) }, "GET",
                            "/rest/v1/rpc/note_search?search_type=" .. marker)
        is_error(status, body, 405, "25006")
        assert.are.equal(1, noted(marker))
    end)

    it("a void function answers 204; a jsonb argument takes a JSON object", function()
        local marker = "m-" .. env.uuid():sub(1, 8)
        local status, body = post(a, "record_search",
                                  { search_type = "rpc", query = { q = marker, n = { 1, 2 } } })
        assert.are.equal(204, status)
        assert.are.equal("", body)
        local rows
        status, rows = call(a, "GET", "/rest/v1/search_history?select=search_type,query" ..
                               "&search_type=eq.rpc")
        assert.are.equal(200, status)
        assert.are.equal(1, #rows)
        assert.are.same({ q = marker, n = { 1, 2 } }, rows[1].query)
        status, rows = call(b, "GET", "/rest/v1/search_history?search_type=eq.rpc")
        assert.are.equal(200, status)
        assert.are.equal(0, #rows)
    end)

    it("overloads are chosen by the names of the arguments given", function()
        local status, body = post(a, "format_budget", { amount = 12.5 })
        assert.are.equal(200, status)
        assert.are.equal("12.50", body)
        status, body = post(a, "format_budget", { amount = 12.5, currency = "EUR" })
        assert.are.equal(200, status)
        assert.are.equal("12.50 EUR", body)
        status, body = get(a, "format_budget", "amount=7")
        assert.are.equal(200, status)
        assert.are.equal("7.00", body)
    end)

    it("ambiguous overloads: 300 PGRST203", function()
        local status, body = post(a, "label_of", { v = 1 })
        is_error(status, body, 300, "PGRST203")
        assert.are.equal("Could not choose the best candidate function between: " ..
                         "public.label_of(v => integer), public.label_of(v => text)",
                         body.message)
        assert.are.equal("Try renaming the parameters or the function itself in the " ..
                         "database so function overloading can be resolved", body.hint)
    end)

    it("unknown functions and arguments: 404 PGRST202 in PostgREST's words", function()
        local status, body = post(a, "no_such_function", {})
        is_error(status, body, 404, "PGRST202")
        assert.are.equal("Could not find the function public.no_such_function without " ..
                         "parameters in the schema cache", body.message)
        assert.are.equal("Searched for the function public.no_such_function without " ..
                         "parameters or with a single unnamed json/jsonb parameter, but no " ..
                         "matches were found in the schema cache.", body.details)

        status, body = get(a, "trip_summaries", "bogus=1&min_travelers=2")
        is_error(status, body, 404, "PGRST202")
        assert.are.equal("Could not find the function public.trip_summaries(bogus, " ..
                         "min_travelers) in the schema cache", body.message)
        assert.are.equal("Searched for the function public.trip_summaries with parameters " ..
                         "bogus, min_travelers, but no matches were found in the schema cache.",
                         body.details)
        assert.are.equal("Perhaps you meant to call the function " ..
                         "public.trip_summaries(min_travelers)", body.hint)

        -- a required argument missing (no default): no function fits
        status, body = post(a, "rename_trip", { trip_id = 1 })
        is_error(status, body, 404, "PGRST202")
        assert.are.equal("Could not find the function public.rename_trip(trip_id) in the " ..
                         "schema cache", body.message)
        status, body = post(a, "format_budget", { currency = "EUR" })
        is_error(status, body, 404, "PGRST202")
        -- a table is not a function; the static "rpc" segment still routes here
        status, body = post(a, "trips", {})
        is_error(status, body, 404, "PGRST202")
    end)

    it("errors RAISEd by a function pass through with PostgREST's status", function()
        local status, body = post(a, "check_budget", { amount = 5 })
        assert.are.equal(200, status)
        assert.are.equal(5, body)
        status, body = post(a, "check_budget", { amount = -1 })
        is_error(status, body, 400, "P0001")
        assert.are.same({ code = "P0001", message = "budget must not be negative",
                          details = "got -1", hint = "pass 0 or more" }, body)
        status, body = get(a, "check_budget", "amount=2000000")
        assert.are.equal(402, status)
        assert.are.same({ code = "PT402", message = "Payment Required",
                          details = "Quota exceeded", hint = "Upgrade your plan" }, body)
        local h
        status, body, h = post(a, "check_budget", { amount = 13 })
        assert.are.equal(418, status)
        assert.are.same({ code = "TRIP13", message = "unlucky budget", details = cjson.null,
                          hint = "try 12" }, body)
        assert.are.equal("13", h["x-budget"])
        -- a value Postgres cannot take for the argument's type: its error, mapped
        status, body = post(a, "check_budget", { amount = "lots" })
        is_error(status, body, 400, "22P02")
    end)

    it("VARIADIC arguments: repeated query keys or a JSON array", function()
        local status, body = get(a, "sum_all", "nums=1&nums=2&nums=39")
        assert.are.equal(200, status)
        assert.are.equal(42, body)
        status, body = post(a, "sum_all", { nums = { 4, 5 } })
        assert.are.equal(200, status)
        assert.are.equal(9, body)
    end)

    it("Prefer: params=single-object passes the body whole; values keep their digits",
       function()
        local raw = '{"big": 12345678901234567890123, "list": [1, {"x": null}], "s": "é"}'
        local json_ct = { ["Content-Type"] = "application/json" }
        local status, body, _, text = call(a, "POST", "/rest/v1/rpc/echo_json", raw,
                                           { ["Content-Type"] = "application/json",
                                             Prefer = "params=single-object" })
        assert.are.equal(200, status)
        assert.are.same(cjson.decode(raw), body)
        assert.matches("12345678901234567890123", text, 1, true)
        status, body, _, text = call(a, "POST", "/rest/v1/rpc/echo_json",
                                     '{"payload": ' .. raw .. '}', json_ct)
        assert.are.equal(200, status)
        assert.are.same(cjson.decode(raw), body)
        assert.matches("12345678901234567890123", text, 1, true)
        -- no json argument to take it: 404 in PostgREST's words
        status, body = post(a, "format_budget", { amount = 1 }, { Prefer = "params=single-object" })
        is_error(status, body, 404, "PGRST202")
        assert.are.equal("Could not find the function public.format_budget in the schema cache",
                         body.message)
    end)

    it("Accept: application/vnd.pgrst.object+json: one row, else 406 PGRST116", function()
        local obj = { Accept = "application/vnd.pgrst.object+json" }
        local status, body, h = post(a, "trip_summaries", {}, obj, "name=eq.charlie&select=name")
        assert.are.equal(200, status)
        assert.are.same({ name = "charlie" }, body)
        assert.matches("application/vnd.pgrst.object+json", h["content-type"], 1, true)
        status, body = post(a, "trip_summaries", {}, obj)
        is_error(status, body, 406, "PGRST116")
        assert.are.equal("The result contains 4 rows", body.details)
        assert.are.equal("JSON object requested, multiple (or no) rows returned", body.message)
        status, body = post(a, "trip_budget_total", {}, obj)
        assert.are.equal(200, status)
        assert.are.equal(1250, body)
        -- functions answer JSON only: text/csv is passed over, alone it is 406
        status, body = post(a, "trip_budget_total", {}, { Accept = "text/csv, */*;q=0.5" })
        assert.are.equal(200, status)
        assert.are.equal(1250, body)
        status, body = post(a, "trip_budget_total", {}, { Accept = "text/csv" })
        is_error(status, body, 406, "PGRST107")
    end)

    it("refuses: anon (no EXECUTE), other methods, bad bodies, columns a function lacks",
       function()
        local status, body = post(nil, "trip_budget_total", {})
        is_error(status, body, 401, "42501")
        for _, m in ipairs({ "PATCH", "PUT", "DELETE" }) do
            status, body = call(a, m, "/rest/v1/rpc/trip_budget_total", {})
            is_error(status, body, 405, "PGRST101")
            assert.are.equal("Cannot use the " .. m .. " method on RPC", body.message)
        end
        status, body = post(a, "trip_summaries", { { min_travelers = 1 } })
        is_error(status, body, 400, "PGRST102")
        status, body = post(a, "trip_summaries", {}, nil, "select=banana")
        is_error(status, body, 400, "42703")
        assert.are.equal("column trip_summaries.banana does not exist", body.message)
        status, body = post(a, "trip_budget_total", {}, nil, "pgrst_scalar=eq.1")
        is_error(status, body, 400, "42703")
    end)

    it("bounds: more than 100 argument names are refused before any lookup", function()
        local args = {}
        for i = 1, 100 do args["a" .. i] = i end
        local status, body = post(a, "trip_summaries", args)
        is_error(status, body, 404, "PGRST202")             -- 100: looked up, nothing fits
        args.a101 = 101
        status, body = post(a, "trip_summaries", args)
        is_error(status, body, 400, "PGRST102")
        assert.are.equal("too many arguments", body.message)
        local q = {}
        for i = 1, 101 do q[i] = "a" .. i .. "=" .. i end
        status, body = get(a, "trip_summaries", table.concat(q, "&"))
        is_error(status, body, 400, "PGRST100")
        q[101] = nil
        status, body = get(a, "trip_summaries", table.concat(q, "&"))
        is_error(status, body, 404, "PGRST202")
        -- a long name matches nothing and is cut in the message
        status, body = post(a, "trip_summaries", { [string.rep("n", 5000)] = 1 })
        is_error(status, body, 404, "PGRST202")
        assert.is_true(#body.message < 200)
    end)

    it("schema cache: a function created later is found after SIGHUP; rows of a table keep " ..
       "its hidden columns (policies/exposure.lua) hidden", function()
        env.need("pid")
        local fn = "rpc_probe_" .. env.uuid():sub(1, 8)
        local keys_fn = fn .. "_keys"
        env.psql("CREATE FUNCTION public." .. fn .. "(x integer) RETURNS integer " ..
                 "LANGUAGE sql IMMUTABLE AS 'SELECT x * 2'; " ..
                 "CREATE FUNCTION public." .. keys_fn .. "() RETURNS public.api_keys " ..
                 "LANGUAGE sql STABLE AS $$SELECT ROW(gen_random_uuid(), NULL, 's', 'k', " ..
                 "'SEALED', 'HASH', true, NULL, now())::public.api_keys$$; " ..
                 "GRANT EXECUTE ON FUNCTION public." .. fn .. "(integer) TO authenticated")
        finally(function()
            env.psql("DROP FUNCTION IF EXISTS public." .. fn .. "(integer); " ..
                     "DROP FUNCTION IF EXISTS public." .. keys_fn .. "()")
        end)
        env.hup()
        local ok = env.wait_until(function()
            local status, body = get(a, fn, "x=21")
            return status == 200 and body == 42
        end, 10, 0.1)
        assert.is_truthy(ok)

        local status, body, _, text = post(a, keys_fn, {})
        assert.are.equal(200, status)
        assert.are.equal("k", body.key_name)
        assert.is_nil(body.encrypted_key)
        assert.is_nil(body.key_hash)
        assert.is_nil(text:find("SEALED", 1, true))
        status, body = post(a, keys_fn, {}, nil, "select=encrypted_key")
        is_error(status, body, 400, "42703")
    end)
end)
