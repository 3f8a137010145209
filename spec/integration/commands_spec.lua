-- spec/integration/commands_spec.lua - what `tide routes` and `tide check` print about the
-- served bundle: every route with the file and line of its handler (the line where the
-- handler's function starts, found here from the script's own text), and, for `tide check`,
-- the effective routing, resilience and cache policies, per-table routing overrides included,
-- and that it fails, naming the file, on a policies/exposure.lua that does not load. They run
-- the tide binary with the runner's environment (bundle copy, config, DSNs).

local env = require "spec.helpers.env"

-- Runs `tide <args>` with extra environment assignments; returns its output and success.
local function tide(args, vars)
    return env.run((vars or "") .. " timeout -s KILL 10 " .. env.quote(env.bin) .. " " .. args ..
                   " 2>&1")
end

-- The line of scripts/<file> on which the handler of `route` starts: the script's route table
-- names a local function ("GET /v1/trips/:id"] = get), found by its `local function` line.
local function handler_line(file, route)
    local text = assert(env.read_file("scripts/" .. file))
    local name = text:match('%["' .. route:gsub("[%-%.%:]", "%%%0") .. '"%]%s*=%s*([%w_]+)')
    assert(name, route .. " not found in scripts/" .. file)
    local n = 0
    for line in (text .. "\n"):gmatch("([^\n]*)\n") do
        n = n + 1
        if line:match("^local function " .. name .. "%(") then return n end
    end
    error("local function " .. name .. " not found in scripts/" .. file)
end

-- How many routes the shipped scripts declare ("METHOD /path"] = handler lines), /rest/v1's
-- included (scripts/rest.lua mounts bindings/tide/rest/routes.lua).
local function declared_routes()
    local out = env.run("cat scripts/*.lua bindings/tide/rest/routes.lua")
    local n = 0
    for line in out:gmatch("[^\n]+") do
        if line:match('^%s*%["%u+ /[^"]*"%]%s*=') then n = n + 1 end
    end
    return n
end

local function escape(s)
    return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

describe("tide routes", function()
    setup(function() env.need("bin") end)

    it("lists every route with the file and line of its handler, sorted", function()
        local out, ok = tide("routes")
        assert(ok, out)
        for _, case in ipairs {
            { "GET /v1/trips/:id", "trips.lua" },
            { "DELETE /v1/trips/:id/collaborators/:user_id", "collaborators.lua" },
            { "POST /v1/users", "users.lua" },
        } do
            local route, file = case[1], case[2]
            local line = handler_line(file, route)
            assert.matches("\n" .. escape(route) .. "  +[^\n]*/" .. escape(file) .. ":" .. line ..
                           "\n", "\n" .. out)
        end
        local lines = {}
        for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
        assert.are.equal(declared_routes(), #lines)        -- the shipped routes, nothing else
        -- sorted by pattern, then method; the locations start in one column
        local col
        for i, l in ipairs(lines) do
            local c = l:find("  [^ ]") + 2
            col = col or c
            assert.are.equal(col, c, "line " .. i .. ": " .. l)
            if i > 1 then
                local p1, p2 = lines[i - 1]:match("^%u+ (%S+)"), l:match("^%u+ (%S+)")
                assert(p1 <= p2, "not sorted: " .. lines[i - 1] .. " / " .. l)
            end
        end
    end)
end)

describe("tide check", function()
    local policies        -- a copy of the policies with a per-table routing override

    setup(function()
        env.need("bin")
        local parent = os.getenv("TIDE_STACK_DIR") or "var"
        local out, ok = env.run("mktemp -d " .. env.quote(parent .. "/policies.XXXXXX"))
        assert(ok, out)
        policies = out:gsub("%s+$", "")
        assert(select(2, env.run("cp policies/*.lua " .. env.quote(policies) .. "/")))
        local routing = policies .. "/routing.lua"
        local text = env.read_file(routing)
        text = text:gsub("\nreturn _M%s*$", '\n_M.tables.trips = { select = "direct" }\n' ..
                         '_M.tables.audit_log = "direct"\nreturn _M\n')
        env.write_file(routing, text)
    end)

    teardown(function()
        if policies then env.run("rm -rf " .. env.quote(policies)) end
    end)

    it("prints the routes and the effective routing, resilience and cache policies", function()
        local out, ok = tide("check")
        assert(ok, out)
        assert.matches("config, scripts and policies OK %(" .. declared_routes() .. " routes%)", out)
        assert.matches("\nGET /v1/trips/:id  +[^\n]*/trips%.lua:" ..
                       handler_line("trips.lua", "GET /v1/trips/:id") .. "\n", out)
        -- the configuration: a supervising parent by default (README "Workers")
        assert.matches("\nworkers +%= 1 ", out)
        assert.matches("\nsupervise +%= true ", out)
        assert.matches("\nwatchdog_ms +%= %d+ ", out)
        -- routing: every kind of call
        assert.matches("\n# routing policy", out)
        for kind, up in pairs { select = "transaction", count = "transaction",
                                vector_search = "transaction", insert = "session",
                                update = "session", delete = "session", upsert = "session",
                                transaction = "direct", sql = "direct", rpc = "direct" } do
            assert.matches("\n" .. kind .. " +%= " .. up .. "\n", out)
        end
        -- resilience: per upstream
        assert.matches("\n# resilience policy", out)
        assert.matches("\ntransaction%.fallback +%= direct\n", out)
        -- cache: the cached routes with their rules, then the tables
        assert.matches("\n# cache policy", out)
        assert.matches("\nGET /v1/trips/:id +%= ttl=30 scope=user stale_while_revalidate=0 " ..
                       "stale_if_error=300 vary=none\n", out)
        assert.matches("\nGET /v1/destinations/popular +%= ttl=60 scope=public " ..
                       "stale_while_revalidate=30 stale_if_error=3600 vary=none\n", out)
        assert.matches("\ntables%.trips +%= key=id depends=trip_collaborators\n", out)
        -- the sections come in this order
        local r, s, c = out:find("# routing policy"), out:find("# resilience policy"),
                        out:find("# cache policy")
        assert(r < s and s < c, "sections out of order")
    end)

    it("fails on a policies/exposure.lua that does not load, naming the file", function()
        local parent = os.getenv("TIDE_STACK_DIR") or "var"
        local cases = {
            { "a syntax error", function(path, text) env.write_file(path, text .. "\noops\n") end,
              "exposure%.lua:%d+:" },
            { "no file", function(path) assert(os.remove(path)) end,
              "policies/exposure%.lua: not found" },
            { "a malformed value", function(path, text)
                  env.write_file(path, (text:gsub("max_rows = 1000", 'max_rows = "all"')))
              end, "policies/exposure%.lua: max_rows" },
        }
        for _, case in ipairs(cases) do
            local out, ok = env.run("mktemp -d " .. env.quote(parent .. "/policies.XXXXXX"))
            assert(ok, out)
            local dir = out:gsub("%s+$", "")
            finally(function() env.run("rm -rf " .. env.quote(dir)) end)
            assert(select(2, env.run("cp policies/*.lua " .. env.quote(dir) .. "/")))
            local path = dir .. "/exposure.lua"
            case[2](path, assert(env.read_file(path)))
            out, ok = tide("check", "TIDE_POLICIES_DIR=" .. env.quote(dir))
            assert.is_false(ok, case[1] .. ": tide check passed:\n" .. out)
            assert.matches(case[3], out, 1, false, case[1])
            assert.is_nil(out:find("policies OK", 1, true), case[1])
        end
    end)

    it("prints per-table routing overrides, only what they change", function()
        local out, ok = tide("check", "TIDE_POLICIES_DIR=" .. env.quote(policies))
        assert(ok, out)
        assert.matches("\nselect +%= transaction\n", out)
        assert.matches("\ntables%.trips%.select +%= direct\n", out)
        assert.is_nil(out:find("\ntables%.trips%.insert"))     -- unchanged: not repeated
        assert.matches("\ntables%.audit_log%.select +%= direct\n", out)
        assert.matches("\ntables%.audit_log%.insert +%= direct\n", out)
        assert.is_nil(out:find("\ntables%.audit_log%.rpc"))    -- direct anyway
    end)
end)
