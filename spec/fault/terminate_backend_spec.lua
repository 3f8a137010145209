-- spec/fault/terminate_backend_spec.lua - every server connection tide depends on terminated
-- with pg_terminate_backend (as an operator or a failover would): tide's own direct connections
-- and PgBouncer's server connections (both log in as authenticator). The pools are warmed first
-- through all three upstreams, so tide holds connections that are now dead. What a user must
-- see: the reads that follow all succeed (tide notices the dead connections, reconnects, and
-- retries what is safe), and afterwards the authenticator backends are new ones.
-- Bounded: 40 warm-up requests, 60 reads.

local env = require "spec.helpers.env"
local fault = require "spec.helpers.fault"

local READS = {
    "/v1/trips?limit=5",            -- select: transaction pooler
    "/v1/users/me",                 -- select: transaction pooler
    "/v1/users/me/stats",           -- rpc: direct
    "/v1/search-history?limit=5",   -- select: transaction pooler
}

local AUTH_PIDS = "select pid from pg_stat_activity where usename = 'authenticator' "
                  .. "and pid <> pg_backend_pid() order by pid"

local function pids()
    local set, n = {}, 0
    for pid in env.psql(AUTH_PIDS):gmatch("%d+") do
        set[pid] = true
        n = n + 1
    end
    return set, n
end

describe("fault: tide's server connections terminated", function()
    local u

    setup(function()
        u = fault.healthy_user(true)
    end)

    teardown(function()
        fault.restore_stack(u, 30)
    end)

    it("reads succeed right after pg_terminate_backend, on new connections", function()
        -- Warm every upstream: reads through transaction and direct, writes through session.
        for i = 1, 10 do
            for _, path in ipairs(READS) do
                if path ~= "/v1/search-history?limit=5" then
                    local r = fault.call(u, "GET", path)
                    assert.is_true(r.status == 200, "warming up: " .. fault.describe(r))
                end
            end
            local r = fault.call(u, "POST", "/v1/search-history",
                                 { search_type = "fault-terminate", query = { i = i } })
            assert.is_true(r.status == 201, "warming up: " .. fault.describe(r))
        end
        local old, n_old = pids()
        assert.is_true(n_old >= 3, "expected tide's and PgBouncer's authenticator connections, found "
                                   .. n_old)

        local killed = tonumber(env.psql_value(
            "select count(*) filter (where pg_terminate_backend(pid)) from pg_stat_activity "
            .. "where usename = 'authenticator' and pid <> pg_backend_pid()"))
        assert.is_true(killed >= n_old, "terminated " .. tostring(killed) .. " of " .. n_old)

        local bad = {}
        for i = 1, 60 do
            local path = READS[(i - 1) % #READS + 1]
            local r = fault.call(u, "GET", path)
            if r.status ~= 200 then bad[#bad + 1] = r end
        end
        assert.are.equal(0, #bad, #bad .. " of 60 reads failed after the terminate:\n" .. fault.list(bad, 20))

        -- The reads ran on new backends: none of the terminated ones is left, new ones exist.
        local now_pids, n_now = pids()
        for pid in pairs(now_pids) do
            assert.is_nil(old[pid], "backend " .. pid .. " survived pg_terminate_backend")
        end
        assert.is_true(n_now > 0, "no authenticator connection after the reads")
        print(string.format("\nterminate_backend: %d backends terminated, 60 reads ok, %d new backends",
                            killed, n_now))
    end)
end)
