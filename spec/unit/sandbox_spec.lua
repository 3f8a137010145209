-- spec/unit/sandbox_spec.lua - tide.sandbox: the environment scripts and policies load into
-- (what it refuses, with a message that says why and how to allow it) and the checks of
-- policies/sandbox.lua. (That bundle chunks really get the environment, and the budgets, are
-- spec/fault/script_budget_spec.lua's, on a real tide.)

local sandbox = require "tide.sandbox"

local function run_in(env, code)
    local f = assert(loadstring(code, "=script"))
    setfenv(f, env)
    return pcall(f)
end

describe("tide.sandbox environment", function()
    local env = sandbox._env({})

    local refused = {
        { "os.exit(1)", "os.exit is not available to scripts", "\"os\"" },
        { "os.execute('true')", "os.execute is not available", "\"os\"" },
        { "return io.read()", "io.read is not available to scripts", "\"io\"" },
        { "return io.open('/etc/passwd')", "io.open is not available", "\"io\"" },
        { "return loadfile('/etc/passwd')", "loadfile is not available", "\"io\"" },
        { "return dofile('/etc/passwd')", "dofile is not available", "\"io\"" },
        { "return debug.getinfo(1)", "debug.getinfo is not available", "\"debug\"" },
        { "return require 'ffi'", "require \"ffi\" is not available", "\"ffi\"" },
        { "return package.loadlib('x', 'y')", "package.loadlib is not available", nil },
        { "return require('io').read()", "io.read is not available", "\"io\"" },
    }
    for _, case in ipairs(refused) do
        it("refuses " .. case[1], function()
            local ok, err = run_in(env, case[1])
            assert.is_false(ok)
            assert.is_truthy(tostring(err):find(case[2], 1, true), tostring(err))
            if case[3] then
                assert.is_truthy(tostring(err):find("allow = { " .. case[3] .. " }", 1, true),
                                 tostring(err))
            end
        end)
    end

    it("keeps the harmless parts of os and debug, and everything else", function()
        local ok, v = run_in(env, "return type(os.time()) .. type(os.clock()) .. " ..
                                  "type(debug.traceback('x')) .. string.rep('a', 2) .. " ..
                                  "tostring(math.floor(1.5)) .. type(require 'tide.json')")
        assert.is_true(ok, tostring(v))
        assert.are.equal("numbernumberstringaa1table", v)
    end)

    it("gives chunks made by loadstring and load the same environment", function()
        local ok, err = run_in(env, "local f = loadstring('os.exit(1)') f()")
        assert.is_false(ok)
        assert.is_truthy(tostring(err):find("os.exit is not available", 1, true))
        ok, err = run_in(env, "local f = load(function() return nil end) return _G == _G")
        assert.is_true(ok, tostring(err))
    end)

    it("keeps a script's globals out of the real ones", function()
        assert.is_true((run_in(env, "leaked_global_of_a_script = 1")))
        assert.is_nil(rawget(_G, "leaked_global_of_a_script"))
    end)

    it("gives what a policy allows", function()
        local open = sandbox._env({ io = true, os = true, debug = true, ffi = true })
        local ok, v = run_in(open, "return type(io.open) .. type(os.exit) .. " ..
                                   "type(debug.getinfo) .. type(require 'ffi')")
        assert.is_true(ok, tostring(v))
        assert.are.equal("functionfunctionfunctiontable", v)
    end)
end)

describe("policies/sandbox.lua checks", function()
    local check = sandbox._check_policy

    it("takes the shipped policy", function()
        package.loaded.sandbox = nil
        local p = check(require "sandbox")
        assert.are.same({ hits = 5, window = 10, cool_down = 60 }, p.quarantine)
    end)

    local bad = {
        { "not a table", "must return a table" },
        { { allow = { "net" } }, "allow: unknown name net" },
        { { allow = "io" }, "allow must be a list" },
        { { max_cpu_ms = { ["/v1/x"] = 100 } }, "is not \"METHOD /route\"" },
        { { max_cpu_ms = { ["GET /v1/x"] = 0 } }, "must be a number of milliseconds" },
        { { max_cpu_ms = { ["GET /v1/x"] = "100" } }, "must be a number of milliseconds" },
        { { quarantine = { hits = -1 } }, "quarantine.hits must be a number" },
        { { quarantine = { after = 3 } }, "quarantine: unknown key after" },
        { { budgets = {} }, "unknown key budgets" },
    }
    for _, case in ipairs(bad) do
        it("refuses " .. case[2], function()
            local ok, err = pcall(check, case[1])
            assert.is_false(ok)
            assert.is_truthy(tostring(err):find(case[2], 1, true), tostring(err))
        end)
    end

    it("refuses a route budget the loop watchdog would cut short", function()
        local ok, err = pcall(check, { max_cpu_ms = { ["GET /v1/x"] = 2000 } }, 2000)
        assert.is_false(ok)
        assert.is_truthy(tostring(err):find("must be below watchdog_ms (2000)", 1, true))
        assert.is_truthy((pcall(check, { max_cpu_ms = { ["GET /v1/x"] = 1999 } }, 2000)))
        assert.is_truthy((pcall(check, { max_cpu_ms = { ["GET /v1/x"] = 5000 } }, 0)))
    end)

    it("turns quarantine off with false", function()
        assert.are.equal(0, check({ quarantine = false }).quarantine.hits)
    end)
end)
