-- spec/unit/rest_parse_spec.lua - /rest/v1's query grammar (scripts/_rest_parse.lua), the
-- plan it becomes (scripts/_rest_plan.lua: names checked against a schema-cache entry, trees to
-- tide.builder filters, the range rules) and the SQL tide.builder makes of it.

local parse = require "_rest_parse"
local plan = require "_rest_plan"
local builder = require "tide.builder"

local function parse_error(code, r, e)
    assert.is_nil(r)
    assert.is_table(e)
    assert.are.equal(code, e.code)
    assert.are.equal(400, e.status)
    return e
end

local TRIPS = { name = "trips", columns = {}, names = {} }
for _, c in ipairs({ "id", "name", "budget", "status", "travelers" }) do
    TRIPS.columns[c] = { name = c }
    TRIPS.names[#TRIPS.names + 1] = c
end

describe("/rest/v1 parser", function()
    it("select: columns, alias:col, col::cast, *, quoted names, dashes, spaces", function()
        local r = assert(parse.request("select=id,title:name,budget::TEXT,*"))
        assert.are.same({ { name = "id" }, { name = "name", alias = "title" },
                          { name = "budget", cast = "text" }, { star = true } }, r.select)
        assert.are.same({ { name = 'we,ird"' }, { name = "a-b" }, { name = "c d" } },
                        assert(parse.select('"we,ird\\"",a-b, c d ')))
        assert.are.same({ { star = true } }, assert(parse.select("")))
    end)

    it("select: embedding, spreads, aggregates, JSON paths are refused (PGRST100)", function()
        for _, s in ipairs({ "*,trip_collaborators(*)", "x!inner(*)", "...x(*)", "id.sum()",
                             "data->a", "id::", "id,,name" }) do
            local e = parse_error("PGRST100", parse.select(s))
            assert.matches("failed to parse select parameter", e.message, 1, true)
        end
    end)

    it("filters: every operator, not., is keywords, like's *", function()
        local function leaf(k, v)
            local l = assert(parse.filter(k, v))
            return { l.col, l.op, l.value, l.negate }
        end
        assert.are.same({ "id", "eq", "5", false }, leaf("id", "eq.5"))
        assert.are.same({ "id", "neq", "a.b,c", false }, leaf("id", "neq.a.b,c"))
        for _, op in ipairs({ "gt", "gte", "lt", "lte" }) do
            assert.are.same({ "id", op, "1", true }, leaf("id", "not." .. op .. ".1"))
        end
        assert.are.same({ "n", "like", "%a%b", false }, leaf("n", "like.*a%b"))
        assert.are.same({ "n", "ilike", "x%", false }, leaf("n", "ilike.x*"))
        assert.are.same({ "b", "is", "null", false }, leaf("b", "is.NULL"))
        assert.are.same({ "b", "is", "not_null", false }, leaf("b", "is.not_null"))
        assert.are.same({ "b", "is", "true", true }, leaf("b", "not.is.true"))
        assert.are.same({ "b", "is", "null", false }, leaf("b", "is.unknown"))
        assert.are.same({ "field with-dash", "eq", "", false }, leaf("field with-dash", "eq."))
    end)

    it("in.(...): PostgREST's quoting for commas, parens, quotes and backslashes", function()
        local l = assert(parse.filter("n", 'in.(a,"b,c","d)e","f\\"g\\\\h", i j ,"k"l)'))
        assert.are.same({ "a", "b,c", "d)e", 'f"g\\h', " i j ", '"k"l' }, l.value)
        assert.are.same({}, assert(parse.filter("n", "in.()")).value)
        assert.are.same({ "" , "" }, assert(parse.filter("n", "in.(,)")).value)
        parse_error("PGRST100", parse.filter("n", "in.(a,b"))
        parse_error("PGRST100", parse.filter("n", "in.a,b"))
        parse_error("PGRST100", parse.filter("n", "in.(a)x"))
    end)

    it("filters: bad or unsupported operators, embedded paths", function()
        for _, v in ipairs({ "", "eq", "zz.1", "is.maybe", "eq(any).{1}", "cs.{1}",
                             "fts.x", "not.eq" }) do
            parse_error("PGRST100", parse.filter("id", v))
        end
        parse_error("PGRST108", parse.filter("rel.id", "eq.1"))
        parse_error("PGRST100", parse.filter("data->>a", "eq.1"))
    end)

    it("or/and: nested trees, not. on groups and leaves, quoted values, arrays", function()
        local t = assert(parse.logic("or", '(a.eq.1,not.and(b.is.null,c.in.(1,2)),' ..
                                            'd.eq."x,y",e.eq.{1,2}, f.neq.z )'))
        assert.are.same({ logic = "or", negate = false, items = {
            { col = "a", op = "eq", value = "1", negate = false },
            { logic = "and", negate = true, items = {
                { col = "b", op = "is", value = "null", negate = false },
                { col = "c", op = "in", value = { "1", "2" }, negate = false } } },
            { col = "d", op = "eq", value = "x,y", negate = false },
            { col = "e", op = "eq", value = "{1,2}", negate = false },
            { col = "f", op = "neq", value = "z ", negate = false },
        } }, t)
        local n = assert(parse.logic("not.and", "(a.eq.1,or.eq.2)"))
        assert.is_true(n.negate)
        assert.are.equal("or", n.items[2].col)            -- a column named "or"
        for _, v in ipairs({ "()", "(a.eq.1", "(a.eq.1))", "a.eq.1", "(xor(a.eq.1))",
                             "(a.eq.1,)" }) do
            parse_error("PGRST100", parse.logic("or", v))
        end
    end)

    it("order: terms, asc/desc, nullsfirst/nullslast, errors", function()
        assert.are.same({ { name = "a", desc = true, nulls = "last" },
                          { name = "b", desc = false },
                          { name = "c", desc = false, nulls = "first" } },
                        assert(parse.order("a.desc.nullslast,b, c.nullsfirst")))
        for _, v in ipairs({ "a.ac", "a.desc.x", "a.descc", "rel(a)", "a,", "" }) do
            parse_error("PGRST100", parse.order(v))
        end
    end)

    it("request: repeated filters add up, first select/order, last limit/offset", function()
        local r = assert(parse.request("id=gte.1&id=lte.9&select=id&select=name&order=id&" ..
                                       "order=name&limit=5&limit=7&offset=x&flag&columns=a"))
        assert.are.equal(2, #r.filters)
        assert.are.same({ { name = "id" } }, r.select)
        assert.are.same({ { name = "id", desc = false } }, r.order)
        assert.are.equal(7, r.limit)
        assert.is_nil(r.offset)                       -- not an integer: ignored
        assert.are.equal("a b", assert(parse.request("n=eq.a+b")).filters[1].value)
        assert.are.equal("a+b", assert(parse.request("n=eq.a%2Bb")).filters[1].value)
        parse_error("PGRST108", parse.request("trip_collaborators.order=id"))
    end)

    describe("bounds", function()
        local function nested(depth)
            return "(" .. string.rep("or(", depth - 1) .. "a.eq.1" .. string.rep(")", depth - 1)
                   .. ")"
        end

        it("or/and nesting: MAX_DEPTH levels parse, one more is refused", function()
            assert.are.equal(16, parse.MAX_DEPTH)
            assert(parse.logic("or", nested(parse.MAX_DEPTH)))
            local e = parse_error("PGRST100", parse.logic("or", nested(parse.MAX_DEPTH + 1)))
            assert.matches("nested too deeply", e.message)
            -- a hostile depth (what a 16 KiB head allows) is refused quickly, not recursed
            parse_error("PGRST100", parse.logic("or", nested(4000)))
        end)

        it("conditions: at most MAX_FILTERS across filters and tree leaves", function()
            local parts = {}
            for i = 1, parse.MAX_FILTERS do parts[i] = "a=eq." .. i end
            assert(parse.request(table.concat(parts, "&")))
            parts[#parts] = "or=(a.eq.1,a.eq.2)"
            local e = parse_error("PGRST100", parse.request(table.concat(parts, "&")))
            assert.matches("too many filters", e.message)
        end)

        it("select items and order terms", function()
            local cols = string.rep("a,", parse.MAX_SELECT - 1) .. "a"
            assert(parse.select(cols))
            parse_error("PGRST100", parse.select(cols .. ",a"))
            local ord = string.rep("a,", parse.MAX_ORDER - 1) .. "a"
            assert(parse.order(ord))
            parse_error("PGRST100", parse.order(ord .. ",a"))
        end)
    end)
end)

describe("/rest/v1 plan", function()
    local function sql_of(qs)
        local r = assert(parse.request(qs))
        local opts, e = plan.select(r, TRIPS)
        if not opts then return nil, e end
        return builder.select("trips", opts)
    end

    it("checks every name against the schema cache (42703)", function()
        for _, qs in ipairs({ "select=nope", "nope=eq.1", "order=nope", "or=(id.eq.1,nope.eq.2)",
                              "select=x:nope::text" }) do
            local sql, e = sql_of(qs)
            assert.is_nil(sql, qs)
            assert.are.equal("42703", e.code)
            assert.are.equal(400, e.status)
            assert.are.equal("column trips.nope does not exist", e.message)
        end
        local _, e = sql_of("select=id::regclass")
        assert.are.equal("PGRST100", e.code)
        _, e = sql_of("select=" .. string.rep("x", 64) .. ":id")   -- the builder would raise
        assert.are.equal("PGRST100", e.code)
    end)

    it("select, filters and order become quoted identifiers and parameters", function()
        local sql, params = sql_of("select=id,n:name,budget::text&name=in.(a,b)&" ..
                                   "status=not.eq.x&order=budget.desc.nullslast,id")
        assert.are.equal('SELECT coalesce(json_agg(_t), \'[]\')::text FROM (SELECT "id", ' ..
                         '"name" AS "n", "budget"::text AS "budget" FROM "trips" WHERE ' ..
                         '"name" = ANY($1) AND NOT ("status" = $2) ORDER BY "budget" DESC ' ..
                         'NULLS LAST, "id" ASC) _t', sql)
        assert.are.same({ n = 2, '{"a","b"}', "x" }, params)
    end)

    it("negated groups are pushed to the leaves (De Morgan); repeats go to an and list",
       function()
        local sql = sql_of("not.or=(id.eq.1,and(budget.gt.2,status.not.eq.x))&id=lt.9&id=gt.0")
        assert.matches('NOT ("id" = $1) AND (NOT ("budget" > $2) OR "status" = $3)', sql, 1,
                       true)
        assert.matches('"id" < $', sql, 1, true)
        assert.matches('"id" > $', sql, 1, true)
    end)

    it("a lone key filter stays flat (so the result cache tags the row)", function()
        local r = assert(parse.request("id=eq.7"))
        local opts = assert(plan.select(r, TRIPS))
        assert.are.same({ id = { eq = "7" } }, opts.filters)
    end)

    it("hidden columns: * expands to the visible ones", function()
        local t = { name = "k", columns = { id = {}, name = {} }, names = { "id", "name" },
                    hidden = true }
        local opts = assert(plan.select(assert(parse.request("")), t))
        assert.are.same({ "id", "name" }, opts.columns)
    end)

    it("range: Range header, offset/limit, limit=0, max_rows, 416s", function()
        local function range(qs, h, max)
            return plan.range(assert(parse.request(qs)), h, max)
        end
        assert.are.same({ 0 }, { range("") })
        assert.are.same({ 2, 6 }, { range("offset=2&limit=5") })
        assert.are.same({ 1, 3 }, { range("", { range = "1-3" }) })
        assert.are.same({ 3 }, { range("", { range = "3-" }) })
        assert.are.same({ 1, 2 }, { range("limit=3", { range = "1-9" }) })
        assert.are.same({ 0, -1 }, { range("limit=0") })
        assert.are.same({ 0, 999 }, { range("", nil, 1000) })
        assert.are.same({ 5, 14 }, { range("offset=5&limit=50", nil, 10) })
        assert.are.same({ 0 }, { range("", { range = "bytes=1-2" }) })     -- ignored
        local _, e = range("", { range = "3-1" })
        assert.are.equal("PGRST103", e.code)
        assert.are.equal(416, e.status)
        _, e = range("limit=-1")
        assert.are.equal("PGRST103", e.code)
        -- huge numbers: refused or clamped, never handed to the builder (which would raise)
        _, e = range("offset=99999999999999999999")
        assert.are.equal("PGRST103", e.code)
        local lo, hi = range("limit=99999999999999999999")
        assert.are.equal(0, lo)
        assert.is_true(hi <= 2 ^ 52)
        assert(builder.select("t", { limit = hi - lo + 1, offset = lo }))
    end)

    it("the counted select: row count and exact total from one statement", function()
        local sql = builder.select("trips", { filters = { id = { gt = 1 } }, limit = 2,
                                              counted = true, total = true })
        assert.are.equal('SELECT count(*)::text || \' \' || (SELECT count(*) FROM "trips" ' ..
                         'WHERE "id" > $1)::text || \' \' || coalesce(json_agg(_t), ' ..
                         '\'[]\')::text FROM (SELECT * FROM "trips" WHERE "id" > $1 LIMIT $2) _t',
                         sql)
        assert.has_error(function() builder.select("t", { total = true }) end)
        assert.has_error(function() builder.select("t", { counted = true, single = true }) end)
        assert.has_error(function()
            builder.select("t", { columns = { { "a", cast = "text; drop table t" } } })
        end)
        assert.has_error(function()
            builder.select("t", { order = { { "a", nulls = "middle" } } })
        end)
    end)
end)
