-- spec/unit/rest_schema_spec.lua - tide/rest/schema.lua: policies/exposure.lua read and
-- checked when the module loads (a policy that does not load, or a malformed one, raises: the
-- bundle is rejected); re-reads on a schema generation move (NOTIFY pgrst, 'reload schema' or
-- a new LISTEN session, through core.schema_generation()): one catalog read per move however
-- many requests follow, the old cache served while a read runs and after a failed one; with_retry
-- / with_table, the one retry reads, writes and functions share: an unknown name re-reads the
-- catalog once, at most every refresh_after seconds; and single flight: at most one catalog read
-- at a time, which requests that need one wait for (the first read of a bundle, a re-read for
-- an unknown name) instead of starting their own. The catalog is a fake loader, coroutines
-- stand in for requests that wait on the database, and a fake park for core.wait / core.wake.

local schema = require "tide.rest.schema"

local POLICY = { schemas = { "public" }, max_rows = 1000, refresh_after = 1e9, hide = {} }

-- The catalog's JSON text with one table per name.
local function catalog(...)
    local items = {}
    for i, name in ipairs { ... } do
        items[i] = '{"schema":"public","name":"' .. name .. '","kind":"r","columns":' ..
                   '[{"name":"id","type":"integer","nullable":false}],"fkeys":[]}'
    end
    return "[" .. table.concat(items, ",") .. "]"
end

describe("tide.rest.schema generations", function()
    local gen, reads, tables, fail, hold
    local waiting

    local function loader(_, what)
        if what == "functions" then
            return "[]"                       -- read with the tables: not counted apart
        end
        reads = reads + 1
        local answer = catalog(unpack(tables))
        if hold then
            -- a request waiting on the database: resumed by the spec
            waiting = waiting or {}
            coroutine.yield()
        end
        if fail then return nil, { code = "08006", status = 503 } end
        return answer
    end

    before_each(function()
        gen, reads, tables, fail, hold, waiting = 0, 0, { "trips" }, false, false, nil
        schema._set(loader, function() return 0 end, POLICY, function() return gen end)
    end)

    after_each(function()
        schema._set()
    end)

    it("reads once, and again once per generation move", function()
        assert.is_truthy(schema.get().tables.trips)
        schema.get()
        assert.are.equal(1, reads)
        tables = { "trips", "late" }
        assert.is_nil(schema.get().tables.late)        -- no move: the cache as read
        gen = gen + 1
        assert.is_truthy(schema.get().tables.late)
        for _ = 1, 10 do schema.get() end
        assert.are.equal(2, reads)
    end)

    it("a failed re-read keeps the old cache serving, and the next request tries again",
       function()
        schema.get()
        gen, fail, tables = 1, true, { "trips", "late" }
        local c = schema.get()
        assert.is_truthy(c.tables.trips)
        assert.is_nil(c.tables.late)
        assert.are.equal(2, reads)
        fail = false
        assert.is_truthy(schema.get().tables.late)
        assert.are.equal(3, reads)
    end)

    it("requests during a re-read keep the old cache; no second read for the same move",
       function()
        schema.get()
        gen, hold, tables = 1, true, { "trips", "late" }
        local first = coroutine.create(schema.get)
        assert.is_true(coroutine.resume(first))            -- now waiting on the catalog
        assert.are.equal("suspended", coroutine.status(first))
        hold = false
        for _ = 1, 5 do
            assert.is_nil(schema.get().tables.late)
        end
        assert.are.equal(2, reads)
        local ok, c = coroutine.resume(first)
        assert.is_true(ok)
        assert.is_truthy(c.tables.late)
        assert.is_truthy(schema.get().tables.late)
        assert.are.equal(2, reads)
    end)

    it("a move during a read: the old cache serves until it ends, then one read for the " ..
       "newer move", function()
        schema.get()
        gen, hold, tables = 1, true, { "trips", "old" }
        local older = coroutine.create(schema.get)
        assert.is_true(coroutine.resume(older))
        gen, hold, tables = 2, false, { "trips", "new" }
        local c = schema.get()                             -- no second read while one runs
        assert.is_nil(c.tables.old)
        assert.is_nil(c.tables.new)
        assert.are.equal(2, reads)
        assert.is_true(coroutine.resume(older))
        c = schema.get()
        assert.is_truthy(c.tables.new)
        assert.is_nil(c.tables.old)
        assert.are.equal(3, reads)
        schema.get()
        assert.are.equal(3, reads)
    end)
end)

describe("tide.rest.schema with_retry and with_table", function()
    local clock, reads, tables, fail

    local function loader(_, what)
        if what == "functions" then return "[]" end
        reads = reads + 1
        if fail then return nil, { code = "08006", status = 503 } end
        return catalog(unpack(tables))
    end

    before_each(function()
        clock, reads, tables, fail = 100, 0, { "trips" }, false
        schema._set(loader, function() return clock end,
                    { schemas = { "public" }, max_rows = 1000, refresh_after = 5, hide = {} })
    end)

    after_each(function()
        schema._set()
    end)

    local function plan_ok(tinfo) return { name = tinfo.name } end

    it("a known table: planned on the cache as read, no re-read", function()
        local tinfo, planned = schema.with_table("trips", plan_ok)
        assert.are.equal("trips", tinfo.name)
        assert.are.same({ name = "trips" }, planned)
        assert.are.equal(1, reads)
    end)

    it("an unknown table re-reads the catalog once, then answers from the new cache",
       function()
        schema.get()
        clock, tables = 106, { "trips", "late" }
        local tinfo = schema.with_table("late", plan_ok)
        assert.are.equal("late", tinfo.name)
        assert.are.equal(2, reads)
    end)

    it("re-reads at most every refresh_after seconds; then 404 PGRST205", function()
        schema.get()
        clock = 102                                        -- read 2 s ago: too recent
        local tinfo, err = schema.with_table("late", plan_ok)
        assert.is_nil(tinfo)
        assert.are.equal(404, err.status)
        assert.are.equal("PGRST205", err.code)
        assert.are.equal(1, reads)
        clock = 106
        tinfo, err = schema.with_table("late", plan_ok)  -- still unknown after the re-read
        assert.is_nil(tinfo)
        assert.are.equal("PGRST205", err.code)
        assert.are.equal(2, reads)
        tinfo = schema.with_table("late", plan_ok)       -- and not read again at once
        assert.is_nil(tinfo)
        assert.are.equal(2, reads)
    end)

    it("only a stale failure re-reads; a failed re-read answers its own error", function()
        schema.get()
        clock = 106
        local calls = 0
        local a, err = schema.with_retry(function()
            calls = calls + 1
            return nil, "bad", false
        end)
        assert.is_nil(a)
        assert.are.equal("bad", err)
        assert.are.equal(1, calls)
        assert.are.equal(1, reads)
        fail = true
        a, err = schema.with_retry(function()
            calls = calls + 1
            return nil, "unknown", true
        end)
        assert.is_nil(a)
        assert.are.equal("08006", err.code)
        assert.are.equal(2, calls)
        assert.are.equal(2, reads)
    end)
end)

-- A fake core.wait / core.wake: a waiting "request" (a coroutine) yields "parked" and is
-- resumed by the spec with what core.wait would answer.
local function fake_park()
    local park = { waits = 0, wakes = 0 }
    function park.wait(seconds)
        assert(type(seconds) == "number" and seconds > 0)
        park.waits = park.waits + 1
        return coroutine.yield("parked")
    end
    function park.wake()
        park.wakes = park.wakes + 1
    end
    return park
end

-- Starts fn(...) as a request: returns its coroutine and what its first run gave.
local function start(fn, ...)
    local co = coroutine.create(fn)
    return co, { coroutine.resume(co, ...) }
end

describe("tide.rest.schema single flight", function()
    local clock, reads, tables, fail, hold, die, park

    local function loader(_, what)
        if what == "functions" then return "[]" end
        reads = reads + 1
        local answer = catalog(unpack(tables))
        if hold then coroutine.yield("reading") end        -- waiting on the database
        if die then error("stopped at its budget") end     -- the leader's run unwinds
        if fail then return nil, { code = "08006", status = 503 } end
        return answer
    end

    before_each(function()
        clock, reads, tables, fail, hold, die = 100, 0, { "trips" }, false, false, false
        park = fake_park()
        schema._set(loader, function() return clock end,
                    { schemas = { "public" }, max_rows = 1000, refresh_after = 5, hide = {} },
                    nil, park)
    end)

    after_each(function()
        schema._set()
    end)

    local function plan_ok(tinfo) return { name = tinfo.name } end

    it("concurrent first requests: one catalog read, the others wait for it and share it",
       function()
        hold = true
        local leader, first = start(schema.get)
        assert.are.equal("reading", first[2])
        local waiters = {}
        for i = 1, 20 do
            local co, r = start(schema.get)
            assert.are.equal("parked", r[2], "request " .. i .. " did not wait")
            waiters[i] = co
        end
        assert.are.equal(1, reads)
        local ok, c = coroutine.resume(leader)
        assert.is_true(ok)
        assert.is_truthy(c.tables.trips)
        assert.is_true(park.wakes >= 1)                     -- the leader woke them
        for _, co in ipairs(waiters) do
            local wok, wc = coroutine.resume(co, "woken")
            assert.is_true(wok)
            assert.are.equal(c, wc)
        end
        assert.are.equal(1, reads)
    end)

    it("a failed first read: its waiters get its error; the next request reads again",
       function()
        hold, fail = true, true
        local leader = start(schema.get)
        local waiter, r = start(schema.get)
        assert.are.equal("parked", r[2])
        local ok, c, err = coroutine.resume(leader)
        assert.is_true(ok)
        assert.is_nil(c)
        assert.are.equal("08006", err.code)
        local wok, wc, werr = coroutine.resume(waiter, "woken")
        assert.is_true(wok)
        assert.is_nil(wc)
        assert.are.equal("08006", werr.code)
        assert.are.equal(1, reads)
        hold, fail = false, false
        assert.is_truthy(schema.get().tables.trips)
        assert.are.equal(2, reads)
    end)

    it("a waiter whose client went away stops waiting", function()
        hold = true
        start(schema.get)
        local waiter = start(schema.get)
        local ok, c, err = coroutine.resume(waiter, "aborted")
        assert.is_true(ok)
        assert.is_nil(c)
        assert.are.equal(503, err.status)
        assert.are.equal(1, reads)
    end)

    it("a leader that dies mid-read (stopped at its budget): one waiter reads instead",
       function()
        hold = true
        local leader = start(schema.get)
        local a = start(schema.get)
        local b = start(schema.get)
        die = true
        assert.is_false((coroutine.resume(leader)))         -- the leader's run unwound
        assert.are.equal("dead", coroutine.status(leader))
        hold, die = true, false
        local _, ra = coroutine.resume(a, "woken")          -- takes the read over
        assert.are.equal("reading", ra)
        local _, rb = coroutine.resume(b, "woken")          -- and b waits for it
        assert.are.equal("parked", rb)
        assert.are.equal(2, reads)
        local ok, c = coroutine.resume(a)
        assert.is_true(ok)
        assert.is_truthy(c.tables.trips)
        local bok, bc = coroutine.resume(b, "woken")
        assert.is_true(bok)
        assert.are.equal(c, bc)
        assert.are.equal(2, reads)
    end)

    it("unknown names during a re-read wait for it: one re-read however many ask", function()
        schema.get()
        clock, hold, tables = 106, true, { "trips", "late" }
        local leader, first = start(schema.with_table, "late", plan_ok)
        assert.are.equal("reading", first[2])
        local waiters = {}
        for i = 1, 20 do
            local co, r = start(schema.with_table, "late", plan_ok)
            assert.are.equal("parked", r[2], "request " .. i .. " did not wait")
            waiters[i] = co
        end
        assert.are.equal(2, reads)
        local ok, tinfo = coroutine.resume(leader)
        assert.is_true(ok)
        assert.are.equal("late", tinfo.name)
        for _, co in ipairs(waiters) do
            local wok, winfo = coroutine.resume(co, "woken")
            assert.is_true(wok)
            assert.are.equal("late", winfo.name)
        end
        assert.are.equal(2, reads)
    end)

    it("a failed re-read counts: the next unknown name waits refresh_after as well", function()
        schema.get()
        clock, fail = 106, true
        local tinfo, err = schema.with_table("late", plan_ok)
        assert.is_nil(tinfo)
        assert.are.equal("08006", err.code)
        assert.are.equal(2, reads)
        fail, tables = false, { "trips", "late" }
        clock = 108
        tinfo, err = schema.with_table("late", plan_ok)
        assert.is_nil(tinfo)
        assert.are.equal("PGRST205", err.code)
        assert.are.equal(2, reads)
        clock = 111
        assert.are.equal("late", (schema.with_table("late", plan_ok)).name)
        assert.are.equal(3, reads)
    end)
end)

describe("tide.rest.schema exposure policy", function()
    local SHIPPED = {
        schemas = { "public" }, max_rows = 1000, refresh_after = 5, max_insert_rows = 1000,
        unfiltered_writes = {}, hide = { api_keys = { "encrypted_key", "key_hash" } },
    }

    it("the shipped policies/exposure.lua is the one in force once the module loads",
       function()
        assert.are.same(SHIPPED, schema.policy())
    end)

    it("keys left out take their defaults", function()
        assert.are.same({ schemas = { "public" }, max_rows = 1000, refresh_after = 5,
                          max_insert_rows = 1000, unfiltered_writes = {}, hide = {} },
                        schema.check_policy({}))
    end)

    it("refuses a malformed policy, naming the file and the key", function()
        for _, case in ipairs {
            { "not a table", "must return a table" },
            { { hidden = { api_keys = true } }, "unknown key 'hidden'" },
            { { schemas = {} }, "schemas" },
            { { schemas = { 1 } }, "schemas" },
            { { max_rows = "all" }, "max_rows" },
            { { max_rows = 0 }, "max_rows" },
            { { max_rows = 1.5 }, "max_rows" },
            { { max_insert_rows = -1 }, "max_insert_rows" },
            { { refresh_after = -1 }, "refresh_after" },
            { { refresh_after = 0 / 0 }, "refresh_after" },
            { { hide = { api_keys = "encrypted_key" } }, "hide.api_keys" },
            { { hide = { api_keys = { 1 } } }, "hide.api_keys" },
            { { hide = { api_keys = false } }, "hide.api_keys" },
            { { hide = "api_keys" }, "hide" },
            { { unfiltered_writes = { trips = "yes" } }, "unfiltered_writes.trips" },
        } do
            local ok, err = pcall(schema.check_policy, case[1])
            assert.is_false(ok)
            assert.matches("^policies/exposure%.lua: ", err)
            assert.matches(case[2], err, 1, true)
        end
    end)

    -- Loads tide.rest.schema afresh with policies/exposure.lua replaced by `loader` (a
    -- package.preload function; nil: no such module anywhere).
    local function load_with(loader)
        local saved_schema = package.loaded["tide.rest.schema"]
        local saved_policy = package.loaded.exposure
        local saved_preload, saved_path = package.preload.exposure, package.path
        package.loaded["tide.rest.schema"], package.loaded.exposure = nil, nil
        package.preload.exposure = loader
        local ok, err
        if loader == nil then         -- found nowhere: the policies directory left out
            package.path = saved_path:gsub("[^;]*policies/%?%.lua;?", "")
            ok, err = pcall(require, "exposure")
            assert(not ok and err:find("module 'exposure' not found", 1, true), err)
        end
        ok, err = pcall(require, "tide.rest.schema")
        package.loaded["tide.rest.schema"], package.loaded.exposure = saved_schema, saved_policy
        package.preload.exposure, package.path = saved_preload, saved_path
        return ok, err
    end

    it("a policy that raises while loading makes the module raise (the bundle is rejected)",
       function()
        local ok, err = load_with(function() error("exposure.lua:30: '<eof>' expected", 0) end)
        assert.is_false(ok)
        assert.matches("exposure.lua:30:", err, 1, true)
    end)

    it("a malformed policy makes the module raise", function()
        local ok, err = load_with(function()
            return { hide = { api_keys = "encrypted_key" } }
        end)
        assert.is_false(ok)
        assert.matches("policies/exposure.lua: hide.api_keys", err, 1, true)
    end)

    it("no policies/exposure.lua makes the module raise", function()
        local ok, err = load_with(nil)
        assert.is_false(ok)
        assert.matches("policies/exposure.lua: not found", err, 1, true)
    end)
end)

describe("tide.rest.schema and the result cache's tags", function()
    local cachetags = require "tide.cachetags"
    local text

    local function loader(_, what)
        if what == "functions" then return "[]" end
        return text
    end

    local function table_json(name, key_type, extra)
        return '{"schema":"public","name":"' .. name .. '","kind":"r","columns":' ..
               '[{"name":"id","type":"' .. key_type .. '","nullable":false' .. (extra or "") ..
               '},{"name":"secret","type":"text","nullable":true}],"fkeys":[]}'
    end

    before_each(function()
        cachetags._set_policy({ tables = { trips = { key = "id" }, slugs = { key = "id" },
                                           tags = { key = "id" } } })
        cachetags.learn(nil)
    end)

    after_each(function()
        schema._set()
        cachetags._set_policy(nil)
        cachetags.learn(nil)
    end)

    it("tells tide.cachetags the key columns' types, so any spelling is one row", function()
        assert.same({ "trips", "trips/*" }, cachetags.write("trips", { id = "07" }))
        text = "[" .. table_json("trips", "bigint") .. "," .. table_json("slugs", "text") .. "]"
        schema._set(loader, function() return 0 end,
                    { schemas = { "public" }, refresh_after = 1e9,
                      hide = { slugs = { "id" }, trips = true } })
        assert.is_truthy(schema.get())
        -- hidden from /rest/v1 or not, the type says how the key is compared
        assert.same({ "trips", "trips/7" }, cachetags.write("trips", { id = "07" }))
        assert.same({ "slugs", "slugs/ab" }, cachetags.write("slugs", { id = "AB" }))
        schema._set()                                        -- a new bundle state: unknown
        assert.same({ "trips", "trips/*" }, cachetags.write("trips", { id = "07" }))
    end)

    it("leaves a column with a nondeterministic collation to the table's tags", function()
        text = "[" .. table_json("tags", "text", ',"deterministic":false') .. "]"
        schema._set(loader, function() return 0 end, POLICY)
        assert.is_truthy(schema.get())
        assert.same({ "tags", "tags/*" }, cachetags.write("tags", { id = "ab" }))
        assert.same({ "tags" }, cachetags.read("tags", { id = "ab" }))
    end)
end)
