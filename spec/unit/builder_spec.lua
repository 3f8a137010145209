-- spec/unit/builder_spec.lua - tide.builder: exact SQL text, parameters, quoting, refusals.

local builder = require "tide.builder"
local json = require "tide.json"

local AGG = "SELECT coalesce(json_agg(_t), '[]')::text FROM "

-- params as a plain list (without n) for comparisons
local function plist(params)
    local out = {}
    for i = 1, params.n do out[i] = params[i] end
    return out
end

-- the WHERE clause of a select built from filters, and its params
local function where(filters)
    local sql, params = builder.select("t", { filters = filters })
    local w = sql:match(" WHERE (.-)%) _t$")
    return w, plist(params)
end

describe("tide.builder identifiers", function()
    it("double-quotes identifiers and escapes embedded quotes", function()
        assert.are.equal('"trips"', builder.quote_ident("trips"))
        assert.are.equal('"a""b"', builder.quote_ident('a"b'))
        assert.are.equal('"Weird Name; DROP"', builder.quote_ident("Weird Name; DROP"))
        local sql = builder.select('we"ird', { columns = { 'a"b', "c" } })
        assert.are.equal(AGG .. '(SELECT "a""b", "c" FROM "we""ird") _t', sql)
    end)

    it("rejects empty, NUL, overlong and non-string identifiers", function()
        assert.has_error(function() builder.select("") end)
        assert.has_error(function() builder.select("a\0b") end)
        assert.has_error(function() builder.select(string.rep("x", 64)) end)
        assert.has_no_error(function() builder.select(string.rep("x", 63)) end)
        assert.has_error(function() builder.select(42) end)
        assert.has_error(function() builder.select("t", { columns = { "" } }) end)
        assert.has_error(function() builder.select("t", { filters = { [""] = 1 } }) end)
        assert.has_error(function() builder.select("t", { order = "-" }) end)
    end)

    it("blames the script's line for misuse", function()
        local ok, err = pcall(function() builder.select("t", { limit = -1 }) end)
        assert.is_false(ok)
        assert.matches("builder_spec%.lua:%d+: limit must be a non%-negative integer", err)
    end)
end)

describe("tide.builder.select", function()
    it("wraps the query so Postgres returns one json cell", function()
        local sql, params = builder.select("trips")
        assert.are.equal(AGG .. '(SELECT * FROM "trips") _t', sql)
        assert.are.equal(0, params.n)
    end)

    it("builds columns, filters, order, limit and offset with parameters", function()
        local sql, params = builder.select("trips", {
            columns = "id, name",
            filters = { user_id = "u1", budget = { gte = 100 } },
            order = "-created_at, name",
            limit = 20, offset = 40,
        })
        assert.are.equal(AGG .. '(SELECT "id", "name" FROM "trips" WHERE "budget" >= $1 AND ' ..
                         '"user_id" = $2 ORDER BY "created_at" DESC, "name" ASC LIMIT $3 ' ..
                         'OFFSET $4) _t', sql)
        assert.are.same({ 100, "u1", 20, 40 }, plist(params))
        assert.are.equal(4, params.n)
    end)

    it("accepts columns and order as lists", function()
        local sql = builder.select("t", { columns = { "a", "b" }, order = { "-a", "b" } })
        assert.are.equal(AGG .. '(SELECT "a", "b" FROM "t" ORDER BY "a" DESC, "b" ASC) _t', sql)
    end)

    it("validates limit and offset as non-negative integers", function()
        for _, bad in ipairs { -1, 1.5, "10", 0 / 0, math.huge } do
            assert.has_error(function() builder.select("t", { limit = bad }) end)
            assert.has_error(function() builder.select("t", { offset = bad }) end)
        end
        local sql, params = builder.select("t", { limit = 0, offset = 0 })
        assert.are.equal(AGG .. '(SELECT * FROM "t" LIMIT $1 OFFSET $2) _t', sql)
        assert.are.same({ 0, 0 }, plist(params))
    end)

    it("uses a single-row wrapper with LIMIT 2 for single = true", function()
        local sql, params = builder.select("trips", { filters = { id = 7 }, single = true })
        assert.are.equal("SELECT CASE count(*) WHEN 1 THEN (json_agg(_t) -> 0)::text WHEN 0 " ..
                         "THEN '' ELSE '*' END FROM (SELECT * FROM \"trips\" WHERE \"id\" = $1 " ..
                         "LIMIT $2) _t", sql)
        assert.are.same({ 7, 2 }, plist(params))
        local _, p2 = builder.select("trips", { single = true, limit = 1 })
        assert.are.same({ 1 }, plist(p2))
    end)

    it("gives byte-identical SQL for the same shape, whatever the values or key order", function()
        local f1, f2 = {}, {}
        f1.a = 1; f1.b = { gt = 2 }; f1.c = { ["in"] = { 1, 2 } }
        f2.c = { ["in"] = { 5 } }; f2.b = { gt = 99 }; f2.a = "zzz"
        local s1 = builder.select("t", { filters = f1, order = "-a", limit = 5 })
        local s2 = builder.select("t", { filters = f2, order = "-a", limit = 50 })
        assert.are.equal(s1, s2)
        local o1 = builder.select("t", { filters = { x = { lte = 1, gte = 0, neq = 3 } } })
        local o2 = builder.select("t", { filters = { x = { neq = 9, gte = 1, lte = 8 } } })
        assert.are.equal(o1, o2)
        assert.matches('"x" <> $1 AND "x" >= $2 AND "x" <= $3', o1, nil, true)
    end)

    it("keeps injection attempts in the parameters", function()
        local evil = "x'; DROP TABLE trips; --"
        local sql, params = builder.select("trips", { filters = { name = evil,
                                                                  note = { ilike = evil } } })
        assert.is_nil(sql:find("DROP", 1, true))
        assert.are.same({ evil, evil }, plist(params))
        local sql2 = builder.select("trips", { filters = { ['id" = 1 OR 1=1 --'] = 5 } })
        assert.matches('WHERE "id"" = 1 OR 1=1 %-%-" = $1', sql2)
    end)
end)

describe("tide.builder embed items", function()
    local E = { embed = "trip_collaborators", on = { { "trip_id", "id" } },
                columns = { "user_id", { "created_at", cast = "text" }, { "id", as = "cid" } } }

    it("a to-many embed: a correlated subquery, [] when no row, the outer table aliased",
       function()
        local sql, params = builder.select("trips", { columns = { "id", E },
                                                     filters = { name = "x" } })
        assert.are.equal(AGG .. '(SELECT "id", (SELECT coalesce(json_agg(_e.*), \'[]\') FROM ' ..
                         '(SELECT _c."user_id", _c."created_at"::text AS "created_at", ' ..
                         '_c."id" AS "cid" FROM "trip_collaborators" _c WHERE _c."trip_id" = ' ..
                         '_p."id") _e) AS "trip_collaborators" FROM "trips" _p WHERE ' ..
                         '"name" = $1) _t', sql)
        assert.are.same({ "x" }, plist(params))       -- the embed adds no parameter
    end)

    it("a to-one embed: one object or null; composite keys ANDed; * qualified", function()
        local sql = builder.select("a", { columns = { "*", { embed = "b", as = "parent",
            one = true, on = { { "x", "bx" }, { "y", "by" } } } } })
        assert.are.equal(AGG .. '(SELECT *, (SELECT row_to_json(_e.*) FROM (SELECT _c.* FROM ' ..
                         '"b" _c WHERE _c."x" = _p."bx" AND _c."y" = _p."by") _e) AS "parent" ' ..
                         'FROM "a" _p) _t', sql)
    end)

    it("quotes every name; the counted total reads the outer table alone", function()
        local sql = builder.select("t", { columns = { { embed = 'e"v', as = 'a"s',
            on = { { 'c"1', 'p"1' } }, columns = { 'k"x' } } }, counted = true, total = true })
        assert.matches('_c."k""x" FROM "e""v" _c WHERE _c."c""1" = _p."p""1") _e) AS "a""s"',
                       sql, 1, true)
        assert.matches('(SELECT count(*) FROM "t")::text', sql, 1, true)
    end)

    it("names the embedded tables (tide.db tags cached reads with them)", function()
        assert.is_nil(builder.embedded_tables("*"))
        assert.is_nil(builder.embedded_tables({ "a", { "b", as = "c" } }))
        assert.are.same({ "trip_collaborators", "users" }, builder.embedded_tables({
            "id", E, { embed = "users", on = { { "id", "user_id" } }, one = true } }))
    end)

    it("refuses malformed items, nesting, and embeds outside select's list", function()
        local bad = {
            { embed = "b" },                                          -- no on
            { embed = "b", on = {} },
            { embed = "b", on = { "x" } },
            { embed = "b", on = { { "x", "" } } },
            { embed = "b", on = { { "x", "y" } }, columns = {} },
            { embed = "b", on = { { "x", "y" } }, columns = "x; drop table b" },
            { embed = "b", on = { { "x", "y" } }, one = "yes" },
            { embed = "b", on = { { "x", "y" } }, where = "true" },   -- unknown key
            { embed = "b", on = { { "x", "y" } }, columns = { E } },  -- nested
            { embed = "b", on = { { "x", "y" } }, columns = { { "x", cast = "text; --" } } },
            { embed = "", on = { { "x", "y" } } },
        }
        local many = {}
        for i = 1, 33 do many[i] = { "c" .. i, "p" .. i } end
        bad[#bad + 1] = { embed = "b", on = many }
        for i, item in ipairs(bad) do
            assert.has_error(function() builder.select("a", { columns = { item } }) end, nil,
                             "case " .. i)
        end
        assert.error_matches(function() builder.insert("a", { { x = 1 } }, { columns = { E } }) end,
                             "embed items belong in select's columns only", nil, true)
        assert.has_error(function() builder.vector_search("a", "v", { 1 }, { columns = { E } }) end)
    end)
end)

describe("tide.builder filters", function()
    it("eq, neq, gt, gte, lt, lte, like, ilike", function()
        assert.are.same({ '"a" = $1', { 1 } }, { where({ a = { eq = 1 } }) })
        assert.are.same({ '"a" = $1', { "x" } }, { where({ a = "x" }) })
        assert.are.same({ '"a" = $1', { true } }, { where({ a = true }) })
        assert.are.same({ '"a" <> $1', { 1 } }, { where({ a = { neq = 1 } }) })
        assert.are.same({ '"a" > $1', { 1 } }, { where({ a = { gt = 1 } }) })
        assert.are.same({ '"a" >= $1', { 1 } }, { where({ a = { gte = 1 } }) })
        assert.are.same({ '"a" < $1', { 1 } }, { where({ a = { lt = 1 } }) })
        assert.are.same({ '"a" <= $1', { 1 } }, { where({ a = { lte = 1 } }) })
        assert.are.same({ '"a" LIKE $1', { "x%" } }, { where({ a = { like = "x%" } }) })
        assert.are.same({ '"a" ILIKE $1', { "%x%" } }, { where({ a = { ilike = "%x%" } }) })
    end)

    it("maps json.null to IS NULL / IS NOT NULL", function()
        assert.are.same({ '"a" IS NULL', {} }, { where({ a = json.null }) })
        assert.are.same({ '"a" IS NULL', {} }, { where({ a = { eq = json.null } }) })
        assert.are.same({ '"a" IS NOT NULL', {} }, { where({ a = { neq = json.null } }) })
        assert.has_error(function() where({ a = { gt = json.null } }) end)
    end)

    it("is: null, not_null, true, false", function()
        assert.are.same({ '"a" IS NULL', {} }, { where({ a = { is = "null" } }) })
        assert.are.same({ '"a" IS NOT NULL', {} }, { where({ a = { is = "not_null" } }) })
        assert.are.same({ '"a" IS TRUE', {} }, { where({ a = { is = "true" } }) })
        assert.are.same({ '"a" IS FALSE', {} }, { where({ a = { is = false } }) })
        assert.are.same({ '"a" IS NULL', {} }, { where({ a = { is = json.null } }) })
        assert.has_error(function() where({ a = { is = "maybe" } }) end)
    end)

    it("in: = ANY($n) with a safely quoted array literal", function()
        assert.are.same({ '"s" = ANY($1)', { '{"a","b\\"c","d\\\\e",NULL}' } },
                        { where({ s = { ["in"] = { "a", 'b"c', "d\\e", json.null } } }) })
        assert.are.same({ '"n" = ANY($1)', { "{1,2.5,-3}" } },
                        { where({ n = { ["in"] = { 1, 2.5, -3 } } }) })
        assert.are.same({ '"n" = ANY($1)', { "{}" } }, { where({ n = { ["in"] = {} } }) })
        assert.are.same({ '"b" = ANY($1)', { "{true,false}" } },
                        { where({ b = { ["in"] = { true, false } } }) })
        local w, p = where({ s = { ["in"] = { "'); DROP TABLE t; --", "{x,y}" } } })
        assert.are.equal('"s" = ANY($1)', w)
        assert.are.same({ '{"\'); DROP TABLE t; --","{x,y}"}' }, p)
        assert.has_error(function() where({ s = { ["in"] = "a,b" } }) end)
        assert.has_error(function() where({ s = { ["in"] = { { 1 } } } }) end)
        assert.has_error(function() where({ s = { ["in"] = { 0 / 0 } } }) end)
    end)

    it("contains: strings as is, arrays as Postgres literals, objects as JSON", function()
        assert.are.same({ '"notes" @> $1', { '{"x","y"}' } },
                        { where({ notes = { contains = { "x", "y" } } }) })
        assert.are.same({ '"prefs" @> $1', { '{"k":1}' } },
                        { where({ prefs = { contains = { k = 1 } } }) })
        assert.are.same({ '"prefs" @> $1', { "[1]" } },
                        { where({ prefs = { contains = json.raw("[1]") } }) })
        assert.are.same({ '"notes" @> $1', { "{a}" } }, { where({ notes = { contains = "{a}" } }) })
        assert.has_error(function() where({ notes = { contains = 5 } }) end)
    end)

    it("not negates a table of operators", function()
        assert.are.same({ 'NOT ("a" = $1)', { 3 } }, { where({ a = { ["not"] = { eq = 3 } } }) })
        assert.are.same({ 'NOT ("a" IS NULL)', {} },
                        { where({ a = { ["not"] = { is = "null" } } }) })
        assert.are.same({ 'NOT ("a" = ANY($1))', { "{1,2}" } },
                        { where({ a = { ["not"] = { ["in"] = { 1, 2 } } } }) })
        assert.has_error(function() where({ a = { ["not"] = 3 } }) end)
    end)

    it("or / and groups", function()
        assert.are.same({ '("a" = $1 OR "b" > $2)', { 1, 2 } },
                        { where({ ["or"] = { { a = 1 }, { b = { gt = 2 } } } }) })
        assert.are.same({ '("a" = $1 OR "b" = $2 AND "c" = $3)', { 1, 2, 3 } },
                        { where({ ["or"] = { { a = 1 }, { b = 2, c = 3 } } }) })
        assert.are.same({ '("a" = $1 AND ("b" = $2 OR "c" = $3))', { 1, 2, 3 } },
                        { where({ ["and"] = { { a = 1 }, { ["or"] = { { b = 2 }, { c = 3 } } } } }) })
        assert.has_error(function() where({ ["or"] = {} }) end)
        assert.has_error(function() where({ ["or"] = { {} } }) end)
    end)

    it("refuses unknown operators, empty operator tables and non-scalar values", function()
        assert.error_matches(function() where({ a = { equals = 1 } }) end,
                             "unknown operator 'equals'", nil, true)
        assert.has_error(function() where({ a = {} }) end)
        assert.has_error(function() where({ a = { eq = { 1 } } }) end)
        assert.has_error(function() where({ a = { like = 5 } }) end)
        assert.has_error(function() where({ a = 0 / 0 }) end)
        assert.has_error(function() where({ [1] = "x" }) end)
        assert.has_error(function() where("id = 1") end)
    end)
end)

describe("tide.builder.count", function()
    it("is a plain count(*)", function()
        local sql, params = builder.count("trips", { filters = { user_id = "u" } })
        assert.are.equal('SELECT count(*) FROM "trips" WHERE "user_id" = $1', sql)
        assert.are.same({ "u" }, plist(params))
        assert.are.equal('SELECT count(*) FROM "trips"', (builder.count("trips")))
    end)
end)

describe("tide.builder writes", function()
    it("insert: sorted union of columns, rows as one JSON parameter", function()
        local rows = { { name = "a", budget = 1 }, { name = "b", notes = json.array {} } }
        local sql, params = builder.insert("trips", rows)
        assert.are.equal('WITH _t AS (INSERT INTO "trips" ("budget","name","notes") SELECT ' ..
                         '"budget","name","notes" FROM json_populate_recordset(NULL::"trips", $1)' ..
                         ' RETURNING *) SELECT coalesce(json_agg(_t), \'[]\')::text FROM _t', sql)
        assert.are.equal(1, params.n)
        local back = json.decode(params[1])
        assert.are.equal(2, #back)
        assert.are.equal("b", back[2].name)
        assert.are.equal(json.array_mt, getmetatable(back[2].notes))
    end)

    it("insert: same shape gives the same SQL whatever the key order", function()
        local r1, r2 = {}, {}
        r1.x = 1; r1.y = 2; r1.z = 3
        r2.z = "c"; r2.x = "a"; r2.y = "b"
        assert.are.equal((builder.insert("t", { r1 })), (builder.insert("t", { r2 })))
    end)

    it("insert: RETURNING columns, single wrapper, all-default rows", function()
        local sql = builder.insert("t", { { a = 1 } }, { columns = "id", single = true })
        assert.matches('RETURNING "id"%) SELECT CASE count%(%*%) WHEN 1', sql)
        assert.matches("ELSE tide_meta.write_refused('TD001', count(*)) END FROM _t", sql, nil, true)
        local dflt = builder.insert("t", { {} })
        assert.are.equal('WITH _t AS (INSERT INTO "t" SELECT FROM json_populate_recordset(' ..
                         'NULL::"t", $1) RETURNING *) SELECT coalesce(json_agg(_t), \'[]\')::text' ..
                         ' FROM _t', dflt)
    end)

    it("insert: refuses empty lists, non-row items and bad column names", function()
        assert.has_error(function() builder.insert("t", {}) end)
        assert.has_error(function() builder.insert("t", { "x" }) end)
        assert.has_error(function() builder.insert("t", { { 1, 2 } }) end)
        assert.has_error(function() builder.insert("t", { { [""] = 1 } }) end)
    end)

    it("upsert: DO UPDATE SET the non-conflict columns", function()
        local sql = builder.upsert("api_keys", { { user_id = "u", service_name = "s",
                                                   key_name = "k", encrypted_key = "e" } },
                                   { on_conflict = "user_id, service_name,key_name",
                                     columns = "id" })
        assert.matches(' ON CONFLICT ("user_id", "service_name", "key_name") DO UPDATE SET ' ..
                       '"encrypted_key" = EXCLUDED."encrypted_key" RETURNING "id")', sql, nil, true)
    end)

    it("upsert: DO NOTHING with ignore, or when only conflict columns are written", function()
        local s1 = builder.upsert("t", { { id = 1, v = 2 } }, { on_conflict = { "id" },
                                                               ignore = true })
        assert.matches(' ON CONFLICT ("id") DO NOTHING RETURNING *', s1, nil, true)
        local s2 = builder.upsert("t", { { id = 1 } }, { on_conflict = "id" })
        assert.matches(' ON CONFLICT ("id") DO NOTHING RETURNING *', s2, nil, true)
        local s3 = builder.upsert("t", { { id = 1 } }, { ignore = true })
        assert.matches(" ON CONFLICT DO NOTHING RETURNING *", s3, nil, true)
        assert.has_error(function() builder.upsert("t", { { id = 1 } }) end)
    end)

    it("update: one column without a row constructor, several with one", function()
        local sql, params = builder.update("trips", { name = "x" }, { filters = { id = 1 } })
        assert.are.equal('WITH _t AS (UPDATE "trips" SET "name" = (SELECT "name" FROM ' ..
                         'json_populate_record(NULL::"trips", $1)) WHERE "id" = $2 RETURNING *) ' ..
                         'SELECT coalesce(json_agg(_t), \'[]\')::text FROM _t', sql)
        assert.are.same({ '{"name":"x"}', 1 }, plist(params))
        local sql2, params2 = builder.update("trips", { name = "x", budget = json.null },
                                             { filters = { id = 1 }, columns = "id" })
        assert.matches('SET ("budget","name") = (SELECT "budget","name" FROM ' ..
                       'json_populate_record(NULL::"trips", $1)) WHERE "id" = $2 RETURNING "id"',
                       sql2, nil, true)
        assert.are.same({ budget = json.null, name = "x" }, json.decode(params2[1]))
    end)

    it("update and delete without filters are refused unless all = true", function()
        assert.error_matches(function() builder.update("t", { a = 1 }) end, "all = true", nil, true)
        assert.has_error(function() builder.update("t", { a = 1 }, { filters = {} }) end)
        assert.has_error(function() builder.delete("t") end)
        assert.has_error(function() builder.delete("t", { filters = {} }) end)
        assert.has_no_error(function() builder.update("t", { a = 1 }, { all = true }) end)
        local sql = builder.delete("t", { all = true })
        assert.are.equal('WITH _t AS (DELETE FROM "t" RETURNING *) SELECT coalesce(json_agg(_t),' ..
                         ' \'[]\')::text FROM _t', sql)
    end)

    it("update refuses empty or malformed patches", function()
        assert.has_error(function() builder.update("t", {}, { all = true }) end)
        assert.has_error(function() builder.update("t", { 1, 2 }, { all = true }) end)
        assert.has_error(function() builder.update("t", "a = 1", { all = true }) end)
    end)

    it("delete with filters, RETURNING list and the rollback-on-many single wrapper", function()
        local sql, params = builder.delete("trips", { filters = { id = 3 }, columns = "id",
                                                      single = true })
        assert.are.equal('WITH _t AS (DELETE FROM "trips" WHERE "id" = $1 RETURNING "id") ' ..
                         "SELECT CASE count(*) WHEN 1 THEN (json_agg(_t) -> 0)::text WHEN 0 THEN ''" ..
                         " ELSE tide_meta.write_refused('TD001', count(*)) END FROM _t", sql)
        assert.are.same({ 3 }, plist(params))
    end)
end)

describe("tide.builder write options: counted, max_affected, columns = false, defaults", function()
    it("counted prefixes the cell with the number of rows written", function()
        local sql = builder.delete("t", { filters = { id = 1 }, counted = true })
        assert.are.equal('WITH _t AS (DELETE FROM "t" WHERE "id" = $1 RETURNING *) SELECT ' ..
                         "count(*)::text || ' - ' || coalesce(json_agg(_t), '[]')::text FROM _t",
                         sql)
    end)

    it("columns = false returns nothing but the count (RETURNING 1)", function()
        local sql = builder.insert("t", { { a = 1 } }, { columns = false, counted = true })
        assert.matches(" RETURNING 1) SELECT count(*)::text || ' - ' || '[]' FROM _t", sql, nil,
                       true)
    end)

    it("max_affected aborts the statement (so the write) past n rows; n is a parameter",
       function()
        local sql, params = builder.update("t", { a = 1 }, { filters = { b = 2 },
                                                            max_affected = 3, counted = true })
        assert.matches("SELECT CASE WHEN count(*) > $3 THEN tide_meta.write_refused('TD002', " ..
                       "count(*)) ELSE count(*)::text", sql, nil, true)
        assert.are.same({ '{"a":1}', 2, 3 }, plist(params))
        assert.has_error(function() builder.delete("t", { all = true, max_affected = -1 }) end)
        assert.has_error(function()
            builder.delete("t", { all = true, max_affected = 1, single = true })
        end)
    end)

    it("defaults: rows of one shape are one INSERT, as without it", function()
        local rows = { { a = 1, b = 2 }, { b = 3, a = 4 } }
        assert.are.equal((builder.insert("t", rows)),
                         (builder.insert("t", rows, { defaults = true })))
    end)

    it("defaults: one INSERT per shape in top-level CTEs, rows of each as one parameter",
       function()
        local rows = { { a = 1, b = 2 }, { a = 3 }, { b = 4, a = 5 } }
        local sql, params = builder.insert("t", rows, { defaults = true, columns = "id" })
        assert.are.equal('WITH _g1 AS (INSERT INTO "t" ("a","b") SELECT "a","b" FROM ' ..
                         'json_populate_recordset(NULL::"t", $1) RETURNING "id"), ' ..
                         '_g2 AS (INSERT INTO "t" ("a") SELECT "a" FROM ' ..
                         'json_populate_recordset(NULL::"t", $2) RETURNING "id"), ' ..
                         '_t AS (SELECT * FROM _g1 UNION ALL SELECT * FROM _g2) ' ..
                         "SELECT coalesce(json_agg(_t), '[]')::text FROM _t", sql)
        assert.are.equal(2, params.n)
        assert.are.equal(2, #json.decode(params[1]))
        assert.are.same({ { a = 3 } }, json.decode(params[2]))
    end)

    it("defaults on upsert: each shape updates only the columns it names", function()
        local sql = builder.upsert("t", { { id = 1, a = 2 }, { id = 3, b = 4 } },
                                   { on_conflict = "id", defaults = true })
        assert.matches('ON CONFLICT ("id") DO UPDATE SET "a" = EXCLUDED."a" RETURNING *)', sql,
                       nil, true)
        assert.matches('ON CONFLICT ("id") DO UPDATE SET "b" = EXCLUDED."b" RETURNING *)', sql,
                       nil, true)
    end)

    it("update defaults: SET col = DEFAULT, with or without a patch", function()
        local sql = builder.update("t", { a = 1 }, { filters = { id = 1 }, defaults = { "c", "b" } })
        assert.matches('SET "a" = (SELECT "a" FROM json_populate_record(NULL::"t", $1)), ' ..
                       '"b" = DEFAULT, "c" = DEFAULT WHERE "id" = $2', sql, nil, true)
        local only = builder.update("t", {}, { filters = { id = 1 }, defaults = { "b" } })
        assert.matches('UPDATE "t" SET "b" = DEFAULT WHERE "id" = $1 RETURNING *', only, nil, true)
        assert.has_error(function()
            builder.update("t", { a = 1 }, { all = true, defaults = { "a" } })
        end)
        assert.has_error(function() builder.update("t", {}, { all = true, defaults = {} }) end)
    end)
end)

describe("tide.builder.vector_search", function()
    it("cosine: similarity = 1 - distance, nearest first, threshold outside", function()
        local sql, params = builder.vector_search("destinations", "embedding", { 0.5, -1, 2 },
            { columns = "id,name", limit = 5, threshold = 0.7, filters = { country = "PT" } })
        assert.are.equal(AGG .. '(SELECT "id", "name", 1 - ("embedding" <=> $1::vector) AS ' ..
                         'similarity FROM "destinations" WHERE "country" = $2 ORDER BY ' ..
                         '"embedding" <=> $1::vector LIMIT $3) _t WHERE similarity >= $4', sql)
        assert.are.same({ "[0.5,-1,2]", "PT", 5, 0.7 }, plist(params))
    end)

    it("l2 reports a distance, ip the inner product; limit defaults to 10", function()
        local l2, p = builder.vector_search("d", "e", { 1 }, { metric = "l2", threshold = 0.3 })
        assert.matches('%("e" <%-> %$1::vector%) AS distance .* LIMIT %$2%) _t WHERE distance <= %$3$',
                       l2)
        assert.are.same({ "[1]", 10, 0.3 }, plist(p))
        local ip = builder.vector_search("d", "e", { 1 }, { metric = "ip" })
        assert.matches('%("e" <#> %$1::vector%) %* %-1 AS similarity', ip)
        assert.matches('ORDER BY "e" <#> $1::vector', ip, nil, true)
        assert.has_error(function() builder.vector_search("d", "e", { 1 }, { metric = "dot" }) end)
    end)

    it("formats elements with %.9g", function()
        assert.are.equal("[0.333333333,1e-10,100000]", builder.vector_text({ 1 / 3, 1e-10, 1e5 }))
    end)

    it("refuses vectors that are not arrays of finite numbers", function()
        for _, bad in ipairs { {}, { 1, "2" }, { 1, 0 / 0 }, { math.huge }, "[1,2]", { a = 1 },
                               { 1, 2, x = 3 } } do
            assert.has_error(function() builder.vector_search("d", "e", bad) end)
        end
        assert.has_error(function() builder.vector_search("d", "e", { 1 }, { threshold = "x" }) end)
        assert.has_error(function() builder.vector_search("d", "e", { 1 }, { limit = -1 }) end)
    end)
end)

describe("tide.builder.rpc", function()
    local PREFIX = "SELECT CASE WHEN (SELECT bool_or(p.proretset) FROM pg_catalog.pg_proc p " ..
                   "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE p.proname = $1" ..
                   " AND n.nspname = ANY (pg_catalog.current_schemas(true))) THEN " ..
                   "coalesce(json_agg(_r), '[]') ELSE json_agg(_r) -> 0 END::text FROM "

    it("calls with named arguments, sorted", function()
        local sql, params = builder.rpc("match_things", { n = 3, embedding = { 1, 2 } })
        assert.are.equal(PREFIX .. '"match_things"("embedding" => $2, "n" => $3) _r', sql)
        assert.are.same({ "match_things", "[1,2]", 3 }, plist(params))
    end)

    it("calls with positional arguments, or none", function()
        local sql, params = builder.rpc("f", { "a", json.null, { k = true } })
        assert.are.equal(PREFIX .. '"f"($2, $3, $4) _r', sql)
        assert.are.same({ "f", "a", json.null, '{"k":true}' }, plist(params))
        assert.are.equal(PREFIX .. '"user_stats"() _r', (builder.rpc("user_stats", {})))
        assert.are.equal(PREFIX .. '"user_stats"() _r', (builder.rpc("user_stats")))
    end)

    it("refuses bad names and mixed arguments", function()
        assert.has_error(function() builder.rpc("") end)
        assert.has_error(function() builder.rpc("f", { 1, x = 2 }) end)
        assert.has_error(function() builder.rpc("f", "x") end)
        assert.has_error(function() builder.rpc("f", { x = print }) end)
    end)
end)

describe("tide.builder csv", function()
    it("wraps the read in a CTE read once for the header and the rows, params unchanged",
       function()
        local sql, params = builder.select("trips", { columns = "name,budget",
                                                      filters = { id = { gt = 1 } }, limit = 2,
                                                      counted = true, total = true, csv = true })
        local inner = 'SELECT "name", "budget" FROM "trips" WHERE "id" > $1 LIMIT $2'
        local head = "WITH _t AS (" .. inner .. ") SELECT count(*)::text || ' ' || " ..
                     '(SELECT count(*) FROM "trips" WHERE "id" > $1)::text || \' \' || '
        assert.are.equal(head, sql:sub(1, #head))
        assert.are.same({ 1, 2 }, plist(params))
        assert.matches("json_object_keys%(%(SELECT row_to_json%(_t%) FROM _t LIMIT 1%)%)", sql)
        assert.matches("string_agg%(replace%(substr%(_t::text", sql)
        assert.is_true(sql:sub(-8) == " FROM _t")
        local plain = builder.select("trips", { csv = true })
        assert.are.equal('WITH _t AS (SELECT * FROM "trips") SELECT (SELECT', plain:sub(1, 49))
    end)

    it("refuses csv with single, and total without counted", function()
        assert.has_error(function() builder.select("t", { csv = true, single = true }) end)
        assert.has_error(function() builder.select("t", { csv = true, total = true }) end)
    end)
end)
