-- spec/integration/query_stats_spec.lua - /admin/queries stays bounded and keeps counting
-- whatever one client sends, and client-chosen names never reach the logs. On a tide of the
-- spec's own (spec/helpers/spawn.lua: its statistics and logs start empty) that writes a
-- slow_query line for every statement of 1 ms or more, so a statement's text is logged:
-- 1100 /rest/v1 reads, each with aliases of its own (select=name:col), count as one
-- statement and the names appear neither in /admin/queries nor in the logs; 1100 reads of
-- distinct shapes fill the table, after which a new statement still counts, under (other).

local env = require "spec.helpers.env"
local http = require "spec.helpers.http"
local spawn = require "spec.helpers.spawn"
local cjson = require "cjson"

local N = 1100

-- GETs each path on one keep-alive connection to url (a new one when tide closes it);
-- returns how many answered 200.
local function burst(url, paths)
    local ok, sock = 0, nil
    for i = 1, #paths do
        for _ = 1, 2 do
            sock = sock or http.connect(url, 10)
            http.send(sock, http.build("GET", paths[i], { url = url }))
            local status, h = http.read_response(sock, "GET")
            if status then
                if status == 200 then ok = ok + 1 end
                if (h.connection or ""):lower() == "close" then
                    sock:close()
                    sock = nil
                end
                break
            end
            sock:close()
            sock = nil
        end
    end
    if sock then sock:close() end
    return ok
end

describe("/admin/queries under one client", function()
    local dir, t, nap

    local function queries()
        local status, body = http.request("GET", "/admin/queries?limit=5000",
                                          { url = t.admin_url })
        assert.are.equal(200, status)
        return body
    end

    local function other_calls(doc)
        local n = 0
        for _, q in ipairs(doc.statements) do
            if q.statement == "(other)" then n = n + q.calls end
        end
        return n
    end

    setup(function()
        env.need("bin", "dsn_admin")
        -- a read that always takes 5 ms, so its statement is always logged as slow
        nap = "qstats_nap_" .. env.uuid():sub(1, 8)
        env.psql("CREATE FUNCTION public." .. nap .. "() RETURNS TABLE (id integer) " ..
                 "LANGUAGE sql STABLE AS $$ SELECT 1 FROM pg_catalog.pg_sleep(0.005) $$; " ..
                 "GRANT EXECUTE ON FUNCTION public." .. nap .. "() TO anon")
        dir = spawn.bundle()
        t = spawn.tide(dir, { env = { "TIDE_LOG_SLOW_QUERY_MS=1" } })
    end)

    teardown(function()
        spawn.stop(t)
        spawn.remove(dir)
        env.psql("DROP FUNCTION IF EXISTS public." .. nap .. "()")
    end)

    it("aliases make no statement of their own and never reach the logs", function()
        http.request("GET", "/admin/queries?reset=1", { url = t.admin_url })
        local tag = "zq" .. env.uuid():sub(1, 6)
        local paths = {}
        for i = 1, N do
            paths[i] = "/rest/v1/destinations?select=" .. tag .. i .. ":id," .. tag .. "n" ..
                       i .. ":name&limit=1"
        end
        for i = 1, 5 do
            paths[#paths + 1] = "/rest/v1/rpc/" .. nap .. "?select=" .. tag .. "r" .. i .. ":id"
        end
        assert.are.equal(#paths, burst(t.url, paths))

        local doc = queries()
        assert.is_true(doc.tracked < 100, "statements tracked: " .. doc.tracked)
        local reads, naps = 0, 0
        for _, q in ipairs(doc.statements) do
            assert.is_nil(q.statement:find(tag, 1, true), q.statement)
            if q.statement:find('"id" AS "?", "name" AS "?" FROM "destinations"', 1, true) then
                reads = reads + q.calls
            elseif q.statement:find(nap, 1, true) then
                naps = naps + q.calls
            end
        end
        assert.are.equal(N, reads)
        assert.are.equal(5, naps)

        -- the slow_query lines are there, with the shape, not the names
        local out = env.wait_until(function()
            local text = env.read_file(dir .. "/tide.out") or ""
            local n = 0
            for line in text:gmatch("[^\n]+") do
                if line:find('"type":"slow_query"', 1, true) and line:find(nap, 1, true) then
                    n = n + 1
                end
            end
            return n >= 5 and text
        end, 5, 0.1)
        assert.is_truthy(out, "no slow_query lines for the 5 ms reads")
        assert.is_truthy(out:find('AS \\"?\\"', 1, true))
        assert.is_nil(out:find(tag, 1, true))
        assert.is_nil(spawn.log(t):find(tag, 1, true))
    end)

    it("a client that fills the table with shapes: later statements count under (other)",
       function()
        http.request("GET", "/admin/queries?reset=1", { url = t.admin_url })
        -- distinct shapes: k copies of id in select=, m in order= (no names of its own)
        local paths = {}
        for i = 1, N do
            local k, m = (i - 1) % 100 + 1, math.floor((i - 1) / 100) + 1
            paths[i] = "/rest/v1/destinations?select=" .. string.rep("id", k, ",") ..
                       "&order=" .. string.rep("id", m, ",") .. "&limit=1"
        end
        assert.are.equal(N, burst(t.url, paths))
        local full = queries()
        assert.is_true(full.tracked >= full.max, cjson.encode({ full.tracked, full.max }))
        local before = other_calls(full)

        -- a statement of a shape not seen yet: counted, under (other)
        assert.are.equal(1, burst(t.url, { "/rest/v1/destinations?select=country&limit=1" }))
        local after = queries()
        assert.are.equal(before + 1, other_calls(after))
        assert.is_true(after.tracked <= after.max + 3)
        http.request("GET", "/admin/queries?reset=1", { url = t.admin_url })
    end)
end)
