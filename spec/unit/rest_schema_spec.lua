-- spec/unit/rest_schema_spec.lua - scripts/_rest_schema.lua's re-reads on a schema generation
-- move (NOTIFY pgrst, 'reload schema' or a new LISTEN session, through
-- core.schema_generation()): one catalog read per move however many requests follow, the old
-- cache served while a read runs and after a failed one, and an older read never replacing
-- a newer one; and with_retry / with_table, the one retry reads, writes and functions share:
-- an unknown name re-reads the catalog once, at most every refresh_after seconds. The catalog
-- is a fake loader (coroutines stand in for requests that wait on the database).

local schema = require "_rest_schema"

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

describe("_rest_schema generations", function()
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

    it("a read started before a newer one never replaces what the newer one read", function()
        schema.get()
        gen, hold, tables = 1, true, { "trips", "old" }
        local older = coroutine.create(schema.get)
        assert.is_true(coroutine.resume(older))
        gen, hold, tables = 2, false, { "trips", "new" }
        assert.is_truthy(schema.get().tables.new)          -- the newer read, done first
        assert.is_true(coroutine.resume(older))            -- the older one ends after it
        local c = schema.get()
        assert.is_truthy(c.tables.new)
        assert.is_nil(c.tables.old)
        assert.are.equal(3, reads)
    end)
end)

describe("_rest_schema with_retry and with_table", function()
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

describe("_rest_schema and the result cache's tags", function()
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
