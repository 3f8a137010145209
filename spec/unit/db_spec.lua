-- spec/unit/db_spec.lua - tide.db against a fake tide.core: routing, results, errors,
-- transactions. (A fake is fine here: this is the pure logic around the C calls.)

local db = require "tide.db"
local json = require "tide.json"
local routing = require "routing"

-- A fake tide.core with the C module's signatures. Each query pops the next scripted answer
-- (a list of return values, or a function computing them); calls and logs are recorded.
local function fake_core()
    local c = { calls = {}, logs = {}, answers = {}, tx = {}, null = json.null }
    function c.query(upstream, sql, params, opts)
        c.calls[#c.calls + 1] = { upstream = upstream, sql = sql, params = params, opts = opts }
        local a = table.remove(c.answers, 1) or { "[]" }
        if type(a) == "function" then
            return a(upstream, sql, params, opts)
        end
        return unpack(a, 1, 2)
    end
    function c.tx_begin(upstream, as_service)
        c.tx[#c.tx + 1] = { "begin", upstream, as_service }
        if c.begin_fails then
            return nil, c.begin_fails
        end
        return true
    end
    function c.tx_end(commit)
        c.tx[#c.tx + 1] = { commit and "commit" or "rollback" }
        if commit and c.commit_fails then
            return nil, c.commit_fails
        end
        return true
    end
    function c.log(level, msg)
        c.logs[#c.logs + 1] = { level, msg }
    end
    function c.request_id() return "r42" end
    function c.answer(...) c.answers[#c.answers + 1] = { ... } end
    return c
end

local DB_ERR = { code = "23505", message = "duplicate key", details = "Key (id)=(1) exists",
                 hint = json.null, status = 409 }

describe("tide.db", function()
    local core

    before_each(function()
        core = fake_core()
        db._set_core(core)
    end)

    after_each(function()
        db._set_core(nil)
        routing.tables = {}
    end)

    describe("routing", function()
        it("follows the default policy per kind", function()
            local expect = {
                { function() db.select("t") end, "transaction" },
                { function() db.count("t") end, "transaction" },
                { function() db.vector_search("t", "e", { 1 }) end, "transaction" },
                { function() db.insert("t", { a = 1 }) end, "session" },
                { function() db.upsert("t", { a = 1 }, { on_conflict = "a" }) end, "session" },
                { function() db.update("t", { a = 1 }, { filters = { id = 1 } }) end, "session" },
                { function() db.delete("t", { filters = { id = 1 } }) end, "session" },
                { function() db.rpc("f") end, "direct" },
                { function() db.sql("select 1") end, "direct" },
            }
            for i, case in ipairs(expect) do
                core.answers = {}
                if i == 2 then core.answer({ rows = { { count = 0 } } }) end
                if i == 9 then core.answer({ rows = {} }) end
                case[1]()
                assert.are.equal(case[2], core.calls[#core.calls].upstream, "case " .. i)
            end
        end)

        it("lets an explicit mode win, and validates it", function()
            db.select("t", { mode = "direct" })
            assert.are.equal("direct", core.calls[1].upstream)
            db.insert("t", { a = 1 }, { mode = "transaction" })
            assert.are.equal("transaction", core.calls[2].upstream)
            assert.has_error(function() db.select("t", { mode = "replica-ish" }) end)
        end)

        it("applies per-table overrides from the policy", function()
            routing.tables.audit = "direct"
            routing.tables.trips = { select = "session" }
            db.select("audit")
            db.insert("audit", { a = 1 })
            db.select("trips")
            db.count("trips")
            assert.are.equal("direct", core.calls[1].upstream)
            assert.are.equal("direct", core.calls[2].upstream)
            assert.are.equal("session", core.calls[3].upstream)
            assert.are.equal("transaction", core.calls[4].upstream)
        end)

        it("raises when the policy answers an unknown upstream", function()
            routing.tables.bad = "nowhere"
            assert.has_error(function() db.select("bad") end)
        end)
    end)

    describe("select", function()
        it("sends the builder's SQL in json mode and decodes the rows", function()
            core.answer('[{"id":1,"tags":[]},{"id":2,"tags":["a"]}]')
            local rows, err = db.select("trips", { filters = { user_id = "u" }, limit = 2 })
            assert.is_nil(err)
            local call = core.calls[1]
            assert.is_true(call.opts.json)
            assert.are.equal("select", call.opts.kind)
            assert.are.equal("trips", call.opts.table)
            assert.matches('FROM "trips" WHERE "user_id" = $1 LIMIT $2', call.sql, nil, true)
            assert.are.same({ n = 2, "u", 2 }, call.params)
            assert.are.equal(2, #rows)
            assert.are.equal("[]", json.encode(rows[1].tags))
        end)

        it("returns an empty array that stays [] in JSON", function()
            core.answer("[]")
            local rows = db.select("trips")
            assert.are.equal(0, #rows)
            assert.are.equal("[]", json.encode(rows))
        end)

        it("returns json.raw(text) untouched with raw = true", function()
            core.answer('[{"id":1}, \n {"id":2}]')
            local res = db.select("trips", { raw = true })
            assert.is_true(json.is_raw(res))
            assert.are.equal('[{"id":1}, \n {"id":2}]', json.encode(res))
        end)

        it("single: one row, 404 when none, 406 when several", function()
            core.answer('{"id":1}')
            assert.are.same({ id = 1 }, db.select("trips", { filters = { id = 1 }, single = true }))
            core.answer("")
            local row, err = db.select("trips", { filters = { id = 2 }, single = true })
            assert.is_nil(row)
            assert.are.equal("TIDE_NOT_FOUND", err.code)
            assert.are.equal(404, err.status)
            core.answer("*")
            row, err = db.select("trips", { single = true })
            assert.is_nil(row)
            assert.are.equal("TIDE_MULTIPLE_ROWS", err.code)
            assert.are.equal(406, err.status)
            core.answer('{"id":1}')
            local raw = db.select("trips", { single = true, raw = true })
            assert.are.equal('{"id":1}', raw.text)
        end)

        it("tags a read with embeds with the embedded tables (the result cache)", function()
            local cachetags = require "tide.cachetags"
            cachetags._set_policy({ tables = { trips = { key = "id" } } })
            finally(function() cachetags._set_policy(nil) end)
            local depended = 0
            core.cache_depend = function() depended = depended + 1 end
            core.cache_skip = function() end
            core.cache_invalidate = function() end
            core.answer("[]")
            db.select("trips", { filters = { id = 7 }, columns = { "id",
                { embed = "trip_collaborators", on = { { "trip_id", "id" } } } } })
            -- the tags go with the query itself (opts.cache), not by a call of their own
            assert.are.same({ "trips/7", "trips/*", "trip_collaborators" },
                            core.calls[#core.calls].opts.cache)
            assert.are.equal(0, depended)
            core.answer("[]")
            db.sql("select 1")
            assert.are.equal(false, core.calls[#core.calls].opts.cache)
            -- db.select's own cache: the entry is stored with the same tags
            local stored
            core.cache_get = function() return nil end
            core.cache_set = function(_, _, _, _, _, _, tags) stored = tags end
            core.answer("[]")
            db.select("trips", { cache = { ttl = 5, scope = "user" }, columns = {
                { embed = "users", on = { { "id", "user_id" } }, one = true } } })
            assert.are.same({ "trips", "users" }, stored)
        end)

        it("passes tide.core errors through unchanged", function()
            core.answer(nil, DB_ERR)
            local rows, err = db.select("trips")
            assert.is_nil(rows)
            assert.are.equal(DB_ERR, err)
        end)

        it("reports a missing JSON cell as an error, not as success", function()
            core.answer(nil)
            local rows, err = db.select("trips")
            assert.is_nil(rows)
            assert.are.equal("TIDE_BAD_RESULT", err.code)
        end)

        it("raises on misuse: bad table, unknown options, bad filters", function()
            assert.has_error(function() db.select(5) end)
            assert.error_matches(function() db.select("t", { filter = { id = 1 } }) end,
                                 "unknown option 'filter'", nil, true)
            assert.has_error(function() db.select("t", "id = 1") end)
            assert.has_error(function() db.select("t", { filters = { id = { op = 1 } } }) end)
            assert.has_error(function() db.select("t", { as = "admin" }) end)
            assert.are.equal(0, #core.calls)
        end)

        it("blames the script's line for misuse", function()
            local ok, err = pcall(function() db.select("t", { limti = 5 }) end)
            assert.is_false(ok)
            assert.matches("db_spec%.lua:%d+: db.select: unknown option 'limti'", err)
        end)
    end)

    describe("as = \"service\"", function()
        it("runs as service_role; tide.core gets kind and table for its audit line", function()
            db.select("trips", { as = "service" })
            local opts = core.calls[1].opts
            assert.is_true(opts.as_service)
            assert.are.equal("select", opts.kind)
            assert.are.equal("trips", opts.table)
            db.select("trips")
            assert.is_nil(core.calls[2].opts.as_service)
            assert.are.equal(0, #core.logs)      -- the audit line is tide.core's, not a log line
        end)
    end)

    describe("count", function()
        it("returns the number from a plain result", function()
            core.answer({ rows = { { count = 17 } }, affected = 1, command = "SELECT" })
            assert.are.equal(17, db.count("trips", { filters = { status = "booked" } }))
            assert.is_falsy(core.calls[1].opts.json)
            assert.are.equal('SELECT count(*) FROM "trips" WHERE "status" = $1', core.calls[1].sql)
        end)
    end)

    describe("writes", function()
        it("insert wraps a single row and returns the rows array", function()
            core.answer('[{"id":9,"name":"x"}]')
            local rows = db.insert("trips", { name = "x" })
            assert.are.same({ { id = 9, name = "x" } }, rows)
            local call = core.calls[1]
            assert.are.equal("insert", call.opts.kind)
            assert.are.same({ { name = "x" } }, json.decode(call.params[1]))
        end)

        it("insert of an empty json.array makes no query; {} is misuse", function()
            local rows = db.insert("trips", json.array {})
            assert.are.equal("[]", json.encode(rows))
            assert.are.equal(0, #core.calls)
            assert.has_error(function() db.insert("trips", {}) end)
        end)

        it("update and delete refuse to run without filters", function()
            assert.has_error(function() db.update("trips", { name = "x" }) end)
            assert.has_error(function() db.delete("trips", {}) end)
            assert.are.equal(0, #core.calls)
            db.delete("trips", { all = true })
            assert.are.equal(1, #core.calls)
        end)

        it("maps the rolled-back single-row write (SQLSTATE TD001) to TIDE_MULTIPLE_ROWS",
           function()
            core.answer(nil, { code = "TD001", status = 400, details = "3", message =
                "a single-row write matched 3 rows; nothing was changed" })
            local row, err = db.update("trips", { name = "x" }, { filters = { user_id = "u" },
                                                                 single = true })
            assert.is_nil(row)
            assert.are.equal("TIDE_MULTIPLE_ROWS", err.code)
            assert.are.equal(406, err.status)
            core.answer(nil, { code = "22P02", status = 400, message = "invalid input syntax" })
            local _, err2 = db.update("trips", { name = "x" }, { filters = { id = 1 }, single = true })
            assert.are.equal("22P02", err2.code)
        end)

        it("a bad value whose text reads like a refused write stays the database's error",
           function()
            -- the code decides, not the message: a client's value in a failing cast is echoed
            core.answer(nil, { code = "22P02", status = 400, message =
                'invalid input syntax for type integer: "tide: single-row write matched 3 rows"' })
            local _, err = db.update("trips", { n = "x" }, { filters = { id = 1 }, single = true })
            assert.are.equal("22P02", err.code)
            assert.are.equal(400, err.status)
            core.answer(nil, { code = "22P02", status = 400, message =
                'invalid input syntax for type integer: "tide: max-affected write matched 7 rows"' })
            local _, err2 = db.delete("trips", { filters = { n = "x" }, max_affected = 5 })
            assert.are.equal("22P02", err2.code)
        end)

        it("counted writes return the rows and info.n; an empty list counts 0", function()
            core.answer('2 - []')
            local rows, info = db.delete("trips", { filters = { user_id = "u" }, counted = true,
                                                    columns = false })
            assert.are.equal("[]", json.encode(rows))
            assert.are.same({ n = 2 }, info)
            local raw, info2 = db.insert("trips", json.array {}, { counted = true, raw = true })
            assert.are.equal("[]", raw.text)
            assert.are.same({ n = 0 }, info2)
        end)

        it("maps a write rolled back past max_affected (SQLSTATE TD002) to TIDE_MAX_AFFECTED",
           function()
            core.answer(nil, { code = "TD002", status = 400, details = "7", message =
                "the write matched 7 rows, more than allowed; nothing was changed" })
            local rows, err = db.delete("trips", { filters = { user_id = "u" }, max_affected = 5 })
            assert.is_nil(rows)
            assert.are.equal("TIDE_MAX_AFFECTED", err.code)
            assert.are.equal(400, err.status)
            assert.are.equal(7, err.affected)
            assert.matches("would change 7 rows of trips, more than 5", err.message, nil, true)
        end)

        it("upsert needs on_conflict unless ignore = true", function()
            assert.has_error(function() db.upsert("t", { a = 1 }) end)
            db.upsert("t", { a = 1, b = 2 }, { on_conflict = "a" })
            assert.matches('ON CONFLICT ("a") DO UPDATE SET "b" = EXCLUDED."b"', core.calls[1].sql,
                           nil, true)
        end)
    end)

    describe("rpc and sql", function()
        it("rpc returns the function's value", function()
            core.answer('{"trips":3,"searches":1}')
            assert.are.same({ trips = 3, searches = 1 }, db.rpc("user_stats", {}))
            core.answer("[]")
            assert.are.equal("[]", json.encode(db.rpc("setof_fn", { n = 0 })))
            core.answer("null")
            assert.are.equal(json.null, db.rpc("void_fn"))
            core.answer("7")
            assert.are.equal(7, db.rpc("add", { 3, 4 }))
            assert.are.same({ n = 3, "add", 3, 4 }, core.calls[4].params)
        end)

        it("sql runs the text as is and returns rows, result", function()
            local res = { rows = { { id = 1 } }, affected = 1, command = "UPDATE" }
            core.answer(res)
            local rows, full = db.sql("UPDATE x SET a = $1 WHERE id = $2 RETURNING id",
                                      { { k = 1 }, nil, 5, n = 3 })
            assert.are.same({ { id = 1 } }, rows)
            assert.are.equal(res, full)
            local call = core.calls[1]
            assert.are.equal("UPDATE x SET a = $1 WHERE id = $2 RETURNING id", call.sql)
            assert.are.same({ n = 3, '{"k":1}', json.null, 5 }, call.params)
            assert.is_falsy(call.opts.json)
        end)

        it("sql with rpc = fn is routed and tagged as an rpc of fn", function()
            routing.tables.heavy_fn = { rpc = "session", sql = "transaction" }
            core.answer({ rows = { { body = "1" } } })
            local rows = db.sql("SELECT heavy_fn() AS body", nil, { rpc = "heavy_fn" })
            assert.are.same({ { body = "1" } }, rows)
            assert.are.equal("session", core.calls[1].upstream)
            assert.are.equal("rpc", core.calls[1].opts.kind)
            assert.are.equal("heavy_fn", core.calls[1].opts.table)
            core.answer({ rows = {} })
            db.sql("SELECT 1")
            assert.are.equal("sql", core.calls[2].opts.kind)
            assert.is_nil(core.calls[2].opts.table)
            assert.has_error(function() db.sql("SELECT 1", nil, { rpc = 7 }) end)
        end)

        it("read_only = true asks tide.core for a read-only transaction; not inside one",
           function()
            core.answer({ rows = {} })
            db.sql("SELECT f()", nil, { rpc = "f", read_only = true })
            assert.is_true(core.calls[1].opts.read_only)
            core.answer("1")
            db.rpc("f", {}, { read_only = true })
            assert.is_true(core.calls[2].opts.read_only)
            core.answer({ rows = {} })
            db.sql("SELECT 1", nil, { read_only = false })
            assert.is_nil(core.calls[3].opts.read_only)
            assert.has_error(function() db.sql("SELECT 1", nil, { read_only = "yes" }) end,
                             "db.sql: read_only must be a boolean")
            core.answer("1 - []")
            db.select("t", { read_only = true, counted = true })
            assert.is_true(core.calls[4].opts.read_only)
            core.answer("[]")
            db.select("t")                               -- scripts' reads: as they ask
            assert.is_nil(core.calls[5].opts.read_only)
            db.transaction(function(tx)
                assert.has_error(function() tx.sql("SELECT 1", nil, { read_only = true }) end,
                                 "db.sql: read_only cannot be set inside a transaction")
            end)
        end)

        it("sql passes errors through and refuses non-string statements", function()
            core.answer(nil, DB_ERR)
            assert.are.same({ nil, DB_ERR }, { db.sql("select 1") })
            assert.has_error(function() db.sql(nil) end)
        end)
    end)

    describe("stats", function()
        it("returns tide.core's pool counts", function()
            local counts = { direct = { pool = "direct", size = 4, open = 2, idle = 1, busy = 1,
                                        waiting = 0, jobs = 10, errors = 0 } }
            core.pool_stats = function() return counts end
            assert.are.equal(counts, db.stats())
        end)
    end)

    describe("transaction", function()
        it("commits when fn returns normally and returns its results", function()
            core.answer('[{"id":1}]')
            core.answer({ rows = { { ok = true } } })
            local a, b = db.transaction(function(tx)
                local rows = tx.insert("trips", { name = "x" })
                local r2 = tx:sql("select true as ok")
                return rows[1].id, r2[1].ok
            end)
            assert.are.equal(1, a)
            assert.is_true(b)
            assert.are.same({ { "begin", "direct", false }, { "commit" } }, core.tx)
            for _, call in ipairs(core.calls) do
                assert.are.equal("direct", call.upstream)
                assert.is_truthy(call.opts.tx)
            end
        end)

        it("returns true when fn returns nothing", function()
            assert.is_true(db.transaction(function() end))
            assert.are.same({ "commit" }, core.tx[2])
        end)

        it("rolls back when fn returns nil, err and returns the err", function()
            local mine = { code = "TIDE_NOT_FOUND", status = 404, message = "nope" }
            local v, err = db.transaction(function(tx)
                tx.select("trips")
                return nil, mine
            end)
            assert.is_nil(v)
            assert.are.equal(mine, err)
            assert.are.same({ "rollback" }, core.tx[2])
        end)

        it("rolls back on a Lua error: 500, traceback logged, not returned", function()
            local v, err = db.transaction(function()
                error("boom in fn")
            end)
            assert.is_nil(v)
            assert.are.equal("TIDE_INTERNAL", err.code)
            assert.are.equal(500, err.status)
            assert.is_nil(err.message:find("boom", 1, true))
            assert.are.same({ "rollback" }, core.tx[2])
            local logged = core.logs[#core.logs]
            assert.are.equal("error", logged[1])
            assert.matches("boom in fn", logged[2], nil, true)
            assert.matches("stack traceback", logged[2], nil, true)
        end)

        it("returns an error table raised with error()", function()
            local mine = { code = "P0001", status = 400, message = "raised" }
            local _, err = db.transaction(function() error(mine) end)
            assert.are.equal(mine, err)
            assert.are.same({ "rollback" }, core.tx[2])
        end)

        it("returns the commit failure", function()
            core.commit_fails = { code = "40001", status = 503, message = "serialization" }
            local v, err = db.transaction(function() return 1 end)
            assert.is_nil(v)
            assert.are.equal("40001", err.code)
        end)

        it("returns the BEGIN failure without calling fn", function()
            core.begin_fails = { code = "08001", status = 503, message = "down" }
            local called = false
            local v, err = db.transaction(function() called = true end)
            assert.is_nil(v)
            assert.are.equal("08001", err.code)
            assert.is_false(called)
        end)

        it("refuses nesting, mode inside, and use after the end", function()
            local kept
            local _, err = db.transaction(function(tx)
                kept = tx
                assert.has_error(function() tx.transaction(function() end) end)
                assert.has_error(function() db.transaction(function() end) end)
                assert.has_error(function() tx.select("t", { mode = "direct" }) end)
                assert.has_error(function() tx.select("t", { as = "service" }) end)
                return true
            end)
            assert.is_nil(err)
            assert.has_error(function() kept.select("t") end)
            assert.are.same({ { "begin", "direct", false }, { "commit" } }, core.tx)
        end)

        it("honours mode and as = \"service\" on the transaction", function()
            db.transaction(function() end, { mode = "session", as = "service" })
            assert.are.same({ "begin", "session", true }, core.tx[1])
            assert.are.equal(0, #core.logs)
            assert.has_error(function() db.transaction("not a function") end)
        end)

        it("works inside a coroutine that yields (as tide.core does)", function()
            core.query = function(_, _, _, _)
                return coroutine.yield("parked")
            end
            local co = coroutine.create(function()
                return db.transaction(function(tx)
                    local rows = tx.select("trips")
                    return #rows
                end)
            end)
            local ok, v = coroutine.resume(co)
            assert.is_true(ok)
            assert.are.equal("parked", v)
            local ok2, n = coroutine.resume(co, '[{"id":1},{"id":2}]')
            assert.is_true(ok2)
            assert.are.equal(2, n)
            assert.are.same({ "commit" }, core.tx[2])
        end)
    end)
end)
