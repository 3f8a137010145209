-- spec/unit/rest_parse_spec.lua - /rest/v1's query grammar (tide/rest/parse.lua), the
-- plan it becomes (tide/rest/plan.lua: names checked against a schema-cache entry, trees to
-- tide.builder filters, the range rules) and the SQL tide.builder makes of it.

local parse = require "tide.rest.parse"
local plan = require "tide.rest.plan"
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

    it("select: embedded resources, aliased, with hints, casts and !left inside", function()
        assert.are.same({ { star = true },
                          { embed = true, name = "trip_collaborators", select = { { star = true } } } },
                        assert(parse.select("*,trip_collaborators(*)")))
        assert.are.same({ { name = "id" },
                          { embed = true, name = "users", alias = "owner", hint = "user_id",
                            select = { { name = "id" },
                                       { name = "email", alias = "e", cast = "text" } } } },
                        assert(parse.select("id, owner:users!user_id( id , e:email::TEXT )")))
        -- !left is the default join; the hint may come before or after it; rel() is empty
        local r = assert(parse.select('a!left!h(x),b!h2!left(*),"we ird"(),c!"q,x"(y)'))
        assert.are.same({ "h", "h2", nil, "q,x" }, { r[1].hint, r[2].hint, r[3].hint, r[4].hint })
        assert.are.same({}, r[3].select)
        assert.are.equal("we ird", r[3].name)
    end)

    it("select: nested/spread embeds, !inner, aggregates, JSON paths are refused (PGRST100)",
       function()
        local cases = {
            { "*,trip_collaborators(*,users(*))", "nested embedding" },
            { "x!inner(*)", "!inner" }, { "x!h!inner(*)", "!inner" },
            { "...x(*)", "spread" }, { "id.sum()", "aggregates" }, { "count()", "aggregates" },
            { "data->a", "JSON paths" }, { "x(data->a)", "JSON paths" },
            { "id::", "letter or digit" }, { "id,,name", "field name" },
            { "x(*", "\",\" or \")\"" }, { "x(*)::text", "\",\" or end" }, { "x!h", "\"(\"" },
            { "x(a b c)d", "\",\" or end" },
        }
        for _, c in ipairs(cases) do
            local e = parse_error("PGRST100", parse.select(c[1]))
            assert.matches("failed to parse select parameter", e.message, 1, true)
            assert.matches(c[2], e.details, 1, true)
        end
    end)

    it("keys naming an embedded resource: PGRST100 if embedded, else PGRST108", function()
        for _, qs in ipairs({ "select=*,trip_collaborators(*)&trip_collaborators.role=eq.x",
                              "trip_collaborators.order=id&select=*,trip_collaborators(*)",
                              "select=*,tc:trip_collaborators(*)&tc.limit=1",
                              "select=*,trip_collaborators(*)&trip_collaborators.or=(a.eq.1)" }) do
            local e = parse_error("PGRST100", parse.request(qs))
            assert.matches("on embedded resources", e.message, 1, true)
        end
        local e = parse_error("PGRST108", parse.request("select=*,tc:trips(*)&users.id=eq.1"))
        assert.are.equal("'users' is not an embedded resource in this request", e.message)
        assert.are.equal("Verify that 'users' is included in the 'select' query parameter.",
                         e.hint)
        -- a quoted column name with a dot is a column, not a path
        assert(parse.request('"a.b"=eq.1'))
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
        for _, v in ipairs({ "", "eq", "zz.1", "is.maybe", "eq(any).{1}", "ov.{1}",
                             "fts.x", "not.eq" }) do
            parse_error("PGRST100", parse.filter("id", v))
        end
        assert.are.same({ col = "tags", op = "cs", value = "{a,b}", negate = false },
                        parse.filter("tags", "cs.{a,b}"))
        assert.are.same({ col = "doc", op = "cd", value = '{"a":1}', negate = true },
                        parse.filter("doc", 'not.cd.{"a":1}'))
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

        it("embedded resources: at most MAX_EMBEDS, one level deep", function()
            assert.are.equal(8, parse.MAX_EMBEDS)
            local list = {}
            for i = 1, parse.MAX_EMBEDS do list[i] = "e" .. i .. ":t(id)" end
            assert.are.equal(parse.MAX_EMBEDS, #assert(parse.select(table.concat(list, ","))))
            list[#list + 1] = "e9:t(id)"
            local e = parse_error("PGRST100", parse.select(table.concat(list, ",")))
            assert.are.equal("too many embedded resources", e.message)
            e = parse_error("PGRST100", parse.select("t(id,u(id))"))
            assert.matches("one level at most", e.details, 1, true)
            -- a hostile nesting is refused at the second level, not recursed into
            parse_error("PGRST100", parse.select(string.rep("t(", 4000) .. "id" ..
                                                 string.rep(")", 4000)))
        end)

        it("select items and order terms", function()
            local cols = string.rep("a,", parse.MAX_SELECT - 1) .. "a"
            assert(parse.select(cols))
            parse_error("PGRST100", parse.select(cols .. ",a"))
            -- an embed's items count too (the embed is one item itself)
            local inner = string.rep("a,", parse.MAX_SELECT - 2) .. "a"
            assert(parse.select("t(" .. inner .. ")"))
            parse_error("PGRST100", parse.select("t(" .. inner .. ",a)"))
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

describe("/rest/v1 embedding (tide/rest/embed.lua)", function()
    local function fk(name, cols, ref_table, ref_cols, unique)
        return { name = name, columns = cols, ref_schema = "public", ref_table = ref_table,
                 ref_columns = ref_cols, unique = unique or false }
    end
    local function tbl(name, cols, fkeys)
        local t = { name = name, columns = {}, names = {}, fkeys = fkeys or {} }
        for _, c in ipairs(cols) do
            t.columns[c] = { name = c }
            t.names[#t.names + 1] = c
        end
        return t
    end
    local CACHE = { schema = "public", tables = {
        trips = tbl("trips", { "id", "user_id", "name" },
                    { fk("trips_user_id_fkey", { "user_id" }, "users", { "id" }) }),
        users = tbl("users", { "id", "email" }),
        trip_collaborators = tbl("trip_collaborators", { "id", "trip_id", "user_id", "added_by" }, {
            fk("trip_collaborators_added_by_fkey", { "added_by" }, "users", { "id" }),
            fk("trip_collaborators_trip_id_fkey", { "trip_id" }, "trips", { "id" }),
            fk("trip_collaborators_user_id_fkey", { "user_id" }, "users", { "id" }) }),
        profiles = tbl("profiles", { "user_id", "bio" },
                       { fk("profiles_user_id_fkey", { "user_id" }, "users", { "id" }, true) }),
        nodes = tbl("nodes", { "id", "parent_id" },
                    { fk("nodes_parent_id_fkey", { "parent_id" }, "nodes", { "id" }) }),
        -- an FK over a column the exposure policy hides ("owner"), one to a hidden table
        keys = tbl("keys", { "id" }, { fk("keys_owner_fkey", { "owner" }, "users", { "id" }),
                                      fk("keys_vault_fkey", { "id" }, "vault", { "id" }) }),
        other = tbl("other", { "id", "trip_id" }, {
            { name = "other_trip_fkey", columns = { "trip_id" }, ref_schema = "elsewhere",
              ref_table = "trips", ref_columns = { "id" } } }),
    } }
    CACHE.tables.trips.hidden = false

    local function opts_of(tbl_name, qs)
        local r = assert(parse.request(qs))
        return plan.select(r, CACHE.tables[tbl_name], CACHE)
    end
    local function sql_of(tbl_name, qs)
        local opts, e = opts_of(tbl_name, qs)
        if not opts then return nil, e end
        return (builder.select(tbl_name, opts))
    end
    local function item(tbl_name, qs)
        local opts, e = opts_of(tbl_name, qs)
        if not opts then return nil, e end
        return opts.columns[#opts.columns]
    end

    it("to-many: the embedded table holds an FK to the base table; an array", function()
        assert.are.equal('SELECT coalesce(json_agg(_t), \'[]\')::text FROM (SELECT "id", ' ..
                         '(SELECT coalesce(json_agg(_e.*), \'[]\') FROM (SELECT _c."user_id", ' ..
                         '_c."id"::text AS "n" FROM "trip_collaborators" _c WHERE _c."trip_id" = ' ..
                         '_p."id") _e) AS "trip_collaborators" FROM "trips" _p WHERE ' ..
                         '"name" = $1) _t',
                         sql_of("trips", "select=id,trip_collaborators(user_id,n:id::text)" ..
                                         "&name=eq.x"))
    end)

    it("to-one: the base table holds the FK; one object (or null), under its alias", function()
        assert.are.same({ embed = "users", as = "owner", one = true, on = { { "id", "user_id" } },
                          columns = { "email" } },
                        item("trips", "select=id,owner:users(email)"))
        assert.matches('(SELECT row_to_json(_e.*) FROM (SELECT _c.* FROM "users" _c WHERE ' ..
                       '_c."id" = _p."user_id") _e) AS "users"',
                       sql_of("trips", "select=*,users(*)"), 1, true)
        -- one-to-one: an FK whose columns are unique is an object from the other side too
        local it = item("users", "select=id,profiles(bio)")
        assert.is_true(it.one)
        assert.are.same({ { "user_id", "id" } }, it.on)
    end)

    it("hints pick one of several relationships: constraint, either column", function()
        for _, hint in ipairs({ "trip_collaborators_user_id_fkey", "user_id" }) do
            assert.are.same({ { "id", "user_id" } },
                            item("trip_collaborators", "select=id,users!" .. hint .. "(id)").on)
        end
        assert.are.same({ { "id", "added_by" } },
                        item("trip_collaborators", "select=id,users!added_by(id)").on)
        -- from users: the to-many side, hinted by the referencing column
        assert.are.same({ { "added_by", "id" } },
                        item("users", "select=id,trip_collaborators!added_by(id)").on)
        -- the referenced column names both: still ambiguous
        local _, e = item("trip_collaborators", "select=id,users!id(id)")
        assert.are.equal("PGRST201", e.code)
    end)

    it("ambiguous: 300 PGRST201 listing the relationships and the hints that pick them",
       function()
        local _, e = item("trip_collaborators", "select=*,users(*)")
        assert.are.equal(300, e.status)
        assert.are.equal("PGRST201", e.code)
        assert.are.equal("Could not embed because more than one relationship was found for " ..
                         "'trip_collaborators' and 'users'", e.message)
        assert.are.same({
            { cardinality = "many-to-one", embedding = "trip_collaborators with users",
              relationship = "trip_collaborators_added_by_fkey using " ..
                             "trip_collaborators(added_by) and users(id)" },
            { cardinality = "many-to-one", embedding = "trip_collaborators with users",
              relationship = "trip_collaborators_user_id_fkey using " ..
                             "trip_collaborators(user_id) and users(id)" } }, e.details)
        assert.are.equal("Try changing 'users' to one of the following: " ..
                         "'users!trip_collaborators_added_by_fkey', " ..
                         "'users!trip_collaborators_user_id_fkey'. Find the desired " ..
                         "relationship in the 'details' key.", e.hint)
        _, e = item("users", "select=*,trip_collaborators(*)")
        assert.are.equal("PGRST201", e.code)
        assert.are.equal("one-to-many", e.details[1].cardinality)
    end)

    it("no relationship: 400 PGRST200, with the hint when one was given", function()
        local cases = {
            { "trips", "select=*,destinations(*)", "destinations", nil },
            { "trips", "select=*,users!added_by(*)", "users", "added_by" },
            { "users", "select=*,trips!nope(*)", "trips", "nope" },
            { "keys", "select=*,users(*)", "users", nil },          -- FK over a hidden column
            { "keys", "select=*,vault(*)", "vault", nil },          -- a hidden table
            { "trips", "select=*,other(*)", "other", nil },         -- an FK from another schema
        }
        for _, c in ipairs(cases) do
            local base = c[1]
            local _, e = item(base, c[2])
            assert.are.equal("PGRST200", e.code, c[2])
            assert.are.equal(400, e.status)
            assert.are.equal("Could not find a relationship between '" .. base .. "' and '" ..
                             c[3] .. "' in the schema cache", e.message)
            assert.are.equal("Searched for a foreign key relationship between '" .. base ..
                             "' and '" .. c[3] .. (c[4] and ("' using the hint '" .. c[4]) or "")
                             .. "' in the schema 'public', but no matches were found.",
                             e.details)
        end
    end)

    it("self-reference: rel(...) is the to-many side, rel!fkcol(...) picks it", function()
        local it = item("nodes", "select=id,children:nodes(id)")
        assert.is_false(it.one)
        assert.are.same({ { "parent_id", "id" } }, it.on)
        assert.are.same({ { "parent_id", "id" } }, item("nodes", "select=id,nodes!parent_id(id)").on)
        local _, e = item("nodes", "select=id,nodes!id(id)")
        assert.are.equal("PGRST200", e.code)
        -- the aliases keep the two "nodes" apart
        assert.matches('FROM "nodes" _c WHERE _c."parent_id" = _p."id"',
                       sql_of("nodes", "select=id,nodes(id)"), 1, true)
    end)

    it("embedded columns are checked against the embedded table", function()
        local _, e = item("trips", "select=id,users(nope)")
        assert.are.equal("42703", e.code)
        assert.are.equal("column users.nope does not exist", e.message)
        _, e = item("trips", "select=id,users(id::regclass)")
        assert.are.equal("PGRST100", e.code)
        _, e = item("trips", "select=id," .. string.rep("x", 64) .. ":users(id)")
        assert.are.equal("PGRST100", e.code)
        -- a NUL in an alias (the query's %00 is refused earlier; a quoted name may hold one)
        for _, sel in ipairs({ 'id,"a\0b":users(id)', '"a\0b":id' }) do
            _, e = plan.select({ select = assert(parse.select(sel)), filters = {} },
                               CACHE.tables.trips, CACHE)
            assert.are.equal("PGRST100", e.code)
        end
    end)

    it("rel() checks the relationship but shows nothing; alone it is refused", function()
        local opts = assert(opts_of("trips", "select=id,trip_collaborators()"))
        assert.are.same({ "id" }, opts.columns)
        local _, e = opts_of("trips", "select=id,nope()")
        assert.are.equal("PGRST200", e.code)
        _, e = opts_of("trips", "select=trip_collaborators()")
        assert.are.equal("PGRST100", e.code)
    end)

    it("hidden columns of the embedded table: * expands to the visible ones", function()
        local c = { schema = "public", tables = {} }
        for k, v in pairs(CACHE.tables) do c.tables[k] = v end
        local u = tbl("users", { "id", "email" })
        u.hidden = true
        c.tables.users = u
        local opts = assert(plan.select(assert(parse.request("select=id,users(*)")),
                                        CACHE.tables.trips, c))
        assert.are.same({ "id", "email" }, opts.columns[2].columns)
    end)
end)
