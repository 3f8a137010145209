-- spec/unit/rest_schema_spec.lua - scripts/_rest_schema.lua's re-reads on a schema generation
-- move (NOTIFY pgrst, 'reload schema' or a new LISTEN session, through
-- core.schema_generation()): one catalog read per move however many requests follow, the old
-- cache served while a read runs and after a failed one, and an older read never replacing
-- a newer one. The catalog is a fake loader (coroutines stand in for requests that wait on
-- the database).

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
