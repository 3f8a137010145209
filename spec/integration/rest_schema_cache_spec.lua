-- spec/integration/rest_schema_cache_spec.lua - /rest/v1's catalog reads are single flight:
-- requests that arrive at once and all need the catalog read start one read (per worker
-- process), however many they are - the first read of a bundle (just after a SIGHUP, as after
-- a start) and a re-read for unknown names once refresh_after has passed - and each gets its
-- answer (404 PGRST205 for a table that does not exist), none an error.
-- Counted in Postgres: with log_statement = 'all' (ALTER SYSTEM, put back at the end) each run
-- of a catalog query is logged with its text in TIDE_STACK_DIR/log/postgres.log. The served
-- policies/exposure.lua gets refresh_after = 1 meanwhile (put back at the end).

local env = require "spec.helpers.env"
local http = require "spec.helpers.http"
local fault = require "spec.helpers.fault"

local BURST = 200
local REFRESH_AFTER = 1
-- a line of each catalog query's text (tide/rest/schema.lua), and of nothing else tide runs
local TABLES_LINE = "pg_table_is_visible%(c%.oid%)"
local FUNCTIONS_LINE = "p%.prokind = 'f'"

-- Sends n requests at once: n connections are opened first, then a request is written on each
-- in one tight loop, so they reach tide within a few milliseconds, before any catalog read can
-- end; then the answers are read (15 s at most each). Returns fault.poll's records.
local function burst(n, path_of)
    local calls = {}
    for i = 1, n do
        calls[i] = { method = "GET", path = path_of(i), timeout = 15, sock = http.connect(nil, 5) }
    end
    local t0 = env.now()
    for _, c in ipairs(calls) do
        c.t0 = t0
        http.send(c.sock, http.build("GET", c.path, { close = true }))
    end
    for _ = 1, 400 do
        if fault.poll(calls, 0.05) == 0 then break end
    end
    return calls
end

describe("rest schema cache single flight", function()
    local log_path, policy_path, saved_policy, workers

    local function log_size()
        local f = assert(io.open(log_path, "rb"))
        local n = f:seek("end")
        f:close()
        return n
    end

    -- How many times each catalog query ran since log offset `from`.
    local function catalog_runs(from)
        env.sleep(0.3)                 -- the backends' log lines are written as they run
        local f = assert(io.open(log_path, "rb"))
        f:seek("set", from)
        local text = f:read("*a")
        f:close()
        local tables, functions = 0, 0
        for _ in text:gmatch(TABLES_LINE) do tables = tables + 1 end
        for _ in text:gmatch(FUNCTIONS_LINE) do functions = functions + 1 end
        return tables, functions
    end

    -- Every call of a burst for unknown tables answered 404 PGRST205.
    local function all_not_found(calls)
        local other = {}
        for _, c in ipairs(calls) do
            if c.status ~= 404 or c.code ~= "PGRST205" then
                other[#other + 1] = tostring(c.status or c.err) .. " " .. tostring(c.code)
            end
        end
        assert.are.equal(0, #other, table.concat(other, ", ", 1, math.min(#other, 5)))
    end

    setup(function()
        env.need("bin", "pid", "bundle_dir", "dsn_admin", "admin_url")
        local stack = assert(os.getenv("TIDE_STACK_DIR"), "needs TIDE_STACK_DIR")
        log_path = stack .. "/log/postgres.log"
        assert(io.open(log_path, "rb")):close()
        workers = fault.stats().workers or 1
        policy_path = env.bundle_dir .. "/policies/exposure.lua"
        saved_policy = assert(env.read_file(policy_path))
        env.write_file(policy_path, "-- written by spec/integration/rest_schema_cache_spec.lua\n" ..
                       "local P = (function(...)\n" .. saved_policy .. "\nend)(...)\n" ..
                       "P.refresh_after = " .. REFRESH_AFTER .. "\nreturn P\n")
        env.psql("ALTER SYSTEM SET log_statement = 'all'")
        env.psql("SELECT pg_reload_conf()")
        env.sleep(0.5)                 -- every backend has the setting before its next statement
    end)

    teardown(function()
        env.psql("ALTER SYSTEM RESET log_statement")
        env.psql("SELECT pg_reload_conf()")
        if saved_policy then
            env.write_file(policy_path, saved_policy)
            fault.reload()
        end
    end)

    it("the first read of a bundle: " .. BURST .. " requests at once for unknown names " ..
       "read the catalog once", function()
        fault.reload()                 -- a new Lua state: its schema cache is empty
        local from = log_size()
        local calls = burst(BURST, function(i) return "/rest/v1/no_such_table_" .. i end)
        all_not_found(calls)
        local tables, functions = catalog_runs(from)
        assert.is_true(tables >= 1 and tables <= workers,
                       "the tables query ran " .. tables .. " times")
        assert.is_true(functions >= 1 and functions <= workers,
                       "the functions query ran " .. functions .. " times")
    end)

    it("unknown names once refresh_after has passed: " .. BURST .. " requests at once " ..
       "re-read the catalog once", function()
        -- the cache is read (one request per worker at least: fresh connections spread)
        for _ = 1, 4 * workers do
            assert.are.equal(404, (http.request("GET", "/rest/v1/no_such_table_warm")))
        end
        env.sleep(REFRESH_AFTER + 0.5)
        local from = log_size()
        local calls = burst(BURST, function(i) return "/rest/v1/no_such_table_" .. i end)
        all_not_found(calls)
        local tables, functions = catalog_runs(from)
        assert.is_true(tables >= 1 and tables <= workers,
                       "the tables query ran " .. tables .. " times")
        assert.is_true(functions <= workers, "the functions query ran " .. functions .. " times")
        -- and not again before refresh_after has passed, however many ask
        from = log_size()
        all_not_found(burst(BURST, function(i) return "/rest/v1/no_such_table_b" .. i end))
        assert.are.equal(0, (catalog_runs(from)))
    end)
end)
