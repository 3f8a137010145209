-- spec/unit/rest_rpc_spec.lua - /rest/v1/rpc (tide/rest/rpc.lua) on a fake catalog
-- (tide/rest/schema.lua's loader) and a fake tide.core: which overload a set of argument
-- names picks (PostgREST's rule), the statement it becomes (one JSON parameter, catalog types,
-- named notation, quoted identifiers), and the answer's shape. The real thing runs in
-- spec/integration/rest_rpc_spec.lua.

local json = require "tide.json"
local db = require "tide.db"
local schema = require "tide.rest.schema"
local rpc = require "tide.rest.rpc"

local function arg(name, type_, display, extra)
    local a = { name = name, type = type_, display = display, json = false, variadic = false }
    for k, v in pairs(extra or {}) do a[k] = v end
    return a
end

local INT = { "pg_catalog.int4", "integer" }
local TEXT = { "pg_catalog.text", "text" }

local function fn(name, args, extra)
    local f = { name = name, schema = "public", oid = 1, volatility = "s", retset = false,
                ndefaults = 0, returns = "scalar", args = args, columns = {} }
    for k, v in pairs(extra or {}) do f[k] = v end
    return f
end

local CATALOG = {
    fn("add", { arg("a", INT[1], INT[2]), arg("b", INT[1], INT[2]) }),
    fn("greet", { arg("name", TEXT[1], TEXT[2]), arg("greeting", TEXT[1], TEXT[2]) },
       { ndefaults = 1 }),
    fn("fmt", { arg("x", INT[1], INT[2]) }),
    fn("fmt", { arg("x", INT[1], INT[2]), arg("unit", TEXT[1], TEXT[2]) }),
    fn("same", { arg("v", INT[1], INT[2]) }),
    fn("same", { arg("v", TEXT[1], TEXT[2]) }),
    fn("total", { arg("nums", "pg_catalog._int4", "integer[]", { variadic = true }) }),
    fn("blob", { arg("", "pg_catalog.jsonb", "jsonb", { json = true }) }),
    fn("two_unnamed", { arg("", INT[1], INT[2]), arg("", INT[1], INT[2]) }),
    fn("write", { arg("id", INT[1], INT[2]) }, { volatility = "v", returns = "void" }),
    fn('we"ird', {}, { retset = true, returns = "composite",
                       columns = { { name = "id", type = "integer" },
                                   { name = 'col"q', type = "text" } } }),
}

describe("/rest/v1/rpc", function()
    local calls, answer

    setup(function()
        schema._set(function(_, what)
            if what == "functions" then
                return json.encode(CATALOG)
            end
            return "[]"
        end, function() return 0 end,
        { schemas = { "public" }, max_rows = 1000, refresh_after = 5, hide = {} })
        db._set_core({
            query = function(upstream, sql, params, opts)
                calls[#calls + 1] = { upstream = upstream, sql = sql, params = params,
                                      opts = opts }
                return { rows = { { body = answer } } }
            end,
        })
    end)

    teardown(function()
        db._set_core(nil)
        schema._set(nil, nil, nil)
    end)

    before_each(function()
        calls, answer = {}, "1 - [7]"
    end)

    local function post(name, body, headers, qs)
        local raw = body and (type(body) == "string" and body or json.encode(body)) or nil
        return rpc.post({ method = "POST", params = { fn = name }, headers = headers or {},
                          query_string = qs, raw_body = raw,
                          body = raw and json.decode(raw) or nil })
    end

    local function get(name, qs, headers)
        return rpc.get({ method = "GET", params = { fn = name }, headers = headers or {},
                         query_string = qs })
    end

    it("calls with one JSON parameter typed by the catalog, in named notation", function()
        local body, status, h = post("add", { a = 1, b = 2 })
        assert.are.equal(200, status)
        assert.are.equal("7", body.text)
        assert.are.equal("0-0/*", h["Content-Range"])
        local c = calls[1]
        assert.are.equal("direct", c.upstream)
        assert.are.equal("rpc", c.opts.kind)
        assert.are.equal("add", c.opts.table)
        assert.matches('pg_catalog.json_to_record($1::json) AS _a("a" pg_catalog.int4, ' ..
                       '"b" pg_catalog.int4)', c.sql, 1, true)
        assert.matches('"public"."add"("a" => _a."a", "b" => _a."b") AS pgrst_scalar', c.sql,
                       1, true)
        assert.are.same({ a = 1, b = 2 }, json.decode(c.params[1]))
    end)

    it("picks overloads by argument names; defaults may be left out", function()
        post("greet", { name = "x" })
        assert.matches('"public"."greet"("name" => _a."name")', calls[1].sql, 1, true)
        post("fmt", { x = 1 })
        assert.matches('"public"."fmt"("x" => _a."x")', calls[2].sql, 1, true)
        post("fmt", { x = 1, unit = "m" })
        assert.matches('"public"."fmt"("x" => _a."x", "unit" => _a."unit")', calls[3].sql, 1,
                       true)
        local _, err = post("same", { v = 1 })
        assert.are.equal("PGRST203", err.code)
        assert.are.equal(300, err.status)
        _, err = post("greet", { greeting = "hi" })
        assert.are.equal("PGRST202", err.code)
        assert.are.equal("Could not find the function public.greet(greeting) in the schema " ..
                         "cache", err.message)
        assert.are.equal("Perhaps you meant to call the function public.greet(name, greeting)",
                         err.hint)
        _, err = post("two_unnamed", {})
        assert.are.equal("PGRST202", err.code)
        assert.are.equal(3, #calls)                 -- nothing ran for the refused ones
    end)

    it("passes a body whole to a lone json argument (single-object, or unnamed)", function()
        post("blob", '{"k": [1, 2]}')
        assert.matches('"public"."blob"($1::pg_catalog.jsonb) AS pgrst_scalar', calls[1].sql, 1,
                       true)
        assert.are.equal('{"k": [1, 2]}', calls[1].params[1])
        local _, err = post("add", { a = 1 }, { prefer = "params=single-object" })
        assert.are.equal("PGRST202", err.code)
        assert.are.equal("Could not find the function public.add in the schema cache",
                         err.message)
    end)

    it("GET: arguments from the query, VARIADIC ones as arrays; VOLATILE refused", function()
        get("total", "nums=1&nums=2")
        assert.matches('"public"."total"(VARIADIC "nums" => _a."nums")', calls[1].sql, 1, true)
        assert.are.same({ nums = { "1", "2" } }, json.decode(calls[1].params[1]))
        get("add", "a=1&a=5&b=2")
        assert.are.same({ a = "5", b = "2" }, json.decode(calls[2].params[1]))
        local _, err = get("write", "id=1")
        assert.are.equal("25006", err.code)
        assert.are.equal(405, err.status)
        assert.are.equal(2, #calls)
        local body, status = post("write", { id = 1 })
        assert.is_nil(body)
        assert.are.equal(204, status)
    end)

    it("GET, and POST to a STABLE or IMMUTABLE function, ask for a read-only transaction",
       function()
        get("add", "a=1&b=2")
        post("add", { a = 1, b = 2 })
        post("write", { id = 1 })
        assert.is_true(calls[1].opts.read_only)
        assert.is_true(calls[2].opts.read_only)
        assert.is_nil(calls[3].opts.read_only)       -- VOLATILE by POST: may write
    end)

    it("quotes names from the catalog; reads a composite result like a table", function()
        answer = '2 - [{"id":1}, {"id":2}]'
        local body, status = get('we"ird', 'select=id&"col\\"q"=eq.x&order=id.desc&limit=5')
        assert.are.equal(200, status)
        assert.are.equal('[{"id":1}, {"id":2}]', body.text)
        local sql = calls[1].sql
        assert.matches('WITH "we""ird" AS (SELECT _c.* FROM "public"."we""ird"() AS _c)', sql, 1,
                       true)
        assert.matches('FROM "we""ird" WHERE "col""q" = $1 ORDER BY "id" DESC LIMIT $2', sql, 1,
                       true)
        assert.are.same({ n = 2, "x", 5 }, calls[1].params)
        local _, err = get('we"ird', "select=nope")
        assert.are.equal("42703", err.code)
    end)

    it("bounds the number of argument names", function()
        local args = {}
        for i = 1, rpc.MAX_ARGS + 1 do args["a" .. i] = i end
        local _, err = post("add", args)
        assert.are.equal("PGRST102", err.code)
        assert.are.equal(0, #calls)
    end)
end)
