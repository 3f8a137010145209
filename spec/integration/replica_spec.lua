-- spec/integration/replica_spec.lua - the replica upstream against the stack's streaming
-- replica (db/stack.sh runs one for `make test`; TIDE_DSN_REPLICA names it): tide reads its
-- replay position and the primary's WAL position every lag.poll_interval, /health and /metrics
-- show the lag, calls routed to "replica" are answered by the standby, and a replica further
-- behind than lag.max_ms takes no calls (they go to direct, its fallback) until it catches up.
-- Replay is paused with `db/stack.sh pause-replay` (pg_wal_replay_pause() on the replica) and
-- always resumed. Read-your-writes: a write's answer carries Tide-LSN (the WAL position after
-- its commit); the caller's reads for lag.read_your_writes seconds, and any request that sends
-- that header back, skip a replica that has not replayed it. The resilience policy of the
-- served bundle is edited (lag bounds and a shorter poll interval) and put back.

local env = require "spec.helpers.env"
local http = require "spec.helpers.http"
local fault = require "spec.helpers.fault"
local api = require "spec.helpers.api"

local MODULE = "zz_test_replica.lua"
local SOURCE = [[
-- Test-only route written by spec/integration/replica_spec.lua; never shipped.
local db = require "tide.db"
return {
    ["GET /v1/_test/replica"] = function()
        local rows, err = db.sql("select pg_is_in_recovery() as standby", nil, { mode = "replica" })
        if not rows then return nil, err end
        return { standby = rows[1].standby }
    end,
    -- the caller's own search_history rows with this marker, read where "replica" sends it
    ["GET /v1/_test/replica/marker/:m"] = function(req)
        local rows, err = db.sql("select count(*)::int as n, pg_is_in_recovery() as standby "
                                 .. "from public.search_history where query->>'marker' = $1",
                                 { req.params.m }, { mode = "replica", read_only = true })
        if not rows then return nil, err end
        return rows[1]
    end,
}
]]

local stack_dir = fault.stack_dir


local function replica_health()
    local status, doc = http.request("GET", "/health", { url = env.admin_url })
    assert(status == 200 or status == 503, "GET /health: " .. tostring(status))
    return doc.upstreams.replica
end

local function served_by_standby()
    local status, body = http.request("GET", "/v1/_test/replica")
    assert.are.equal(200, status, body and body.message)
    return body.standby
end

describe("the replica upstream", function()
    local path, policy, saved_policy

    setup(function()
        env.need("admin_url", "bundle_dir", "pid", "dsn_admin")
        if not os.getenv("TIDE_DSN_REPLICA") or not stack_dir then return end
        path = env.install_module(MODULE, SOURCE, function()
            return (http.request("GET", "/v1/_test/replica")) == 200
        end)
        policy = env.bundle_dir .. "/policies/resilience.lua"
        saved_policy = assert(env.read_file(policy))
    end)

    teardown(function()
        if stack_dir and os.getenv("TIDE_DSN_REPLICA") then fault.stack("resume-replay") end
        if saved_policy then env.write_file(policy, saved_policy) end
        env.remove_module(path)
    end)

    local function need_replica()
        if not os.getenv("TIDE_DSN_REPLICA") then
            pending("no replica in this stack (TIDE_DSN_REPLICA unset)")
            return false
        end
        return true
    end

    it("shows its lag on /health and /metrics, and is answered by the standby", function()
        if not need_replica() then return end
        local r = env.wait_until(function()
            local u = replica_health()
            return u.lag ~= nil and u.lag ~= require("cjson").null and u.lag.eligible and u
        end, 10, 0.1)
        assert.is_truthy(r, "the replica never became eligible on /health")
        assert.is_true(r.lag.in_recovery)
        assert.are.equal("replica", r.pool_of)
        assert.are.equal("direct", r.fallback)
        assert.matches("^%x+/%x+$", r.lag.replayed_lsn)
        assert.matches("^%x+/%x+$", r.lag.primary_lsn)
        assert.is_true(r.lag.seconds >= 0 and r.lag.seconds < 1, tostring(r.lag.seconds))
        -- other upstreams have no lag
        local status, doc = http.request("GET", "/health", { url = env.admin_url })
        assert.are.equal(200, status)
        assert.are.equal(require("cjson").null, doc.upstreams.direct.lag)

        local _, metrics = http.request("GET", "/metrics", { url = env.admin_url })
        assert.matches('tide_replica_eligible{upstream="replica"} 1', metrics, nil, true)
        local st, stats = http.request("GET", "/admin/stats", { url = env.admin_url })
        assert.are.equal(200, st)
        assert.is_true(stats.replicas.replica.eligible)
        assert.is_number(stats.replicas.replica.lag_bytes)
        assert.matches('tide_replica_lag_seconds{upstream="replica"} ', metrics, nil, true)

        assert.is_true(served_by_standby())
    end)

    it("takes no calls while further behind than lag.max_ms, and takes them again once caught up",
       function()
        if not need_replica() then return end
        env.write_file(policy, (saved_policy:gsub("\nreturn _M%s*$",
            "\n_M.upstreams.replica.lag = { max_ms = 300, poll_interval = 0.05 }  -- replica_spec\n"
            .. "return _M\n")))
        env.hup()
        assert.is_truthy(env.wait_until(function()
            local u = replica_health()
            return u.lag and u.lag.eligible and served_by_standby()
        end, 10, 0.1), "the replica did not serve after the policy reload")

        fault.stack("pause-replay")
        -- a write on the primary the replica cannot replay now
        env.psql("select pg_catalog.txid_current()")
        env.psql("create table if not exists public.replica_spec_probe(n int); "
                 .. "insert into public.replica_spec_probe values (1)")
        local t0 = env.now()
        local out = env.wait_until(function()
            local u = replica_health()
            return u.lag and not u.lag.eligible and u.lag.seconds > 0.3 and u
        end, 10, 0.05)
        assert.is_truthy(out, "the replica stayed eligible with replay paused")
        local took = env.now() - t0
        -- max_ms 300, polled every 50 ms: out within a second, not at the 10 s bound
        assert.is_true(took < 2, string.format("took %.2f s to be taken out", took))
        assert.is_true(out.lag.seconds * 1000 > 300, tostring(out.lag.seconds))
        assert.is_true(out.lag.bytes > 0)
        assert.are.equal("degraded", out.status)
        -- calls routed to the replica are answered by direct meanwhile, never by the stale one
        for _ = 1, 20 do assert.is_false(served_by_standby()) end
        local _, metrics = http.request("GET", "/metrics", { url = env.admin_url })
        assert.matches('tide_replica_eligible{upstream="replica"} 0', metrics, nil, true)

        fault.stack("resume-replay")
        assert.is_truthy(env.wait_until(function()
            local u = replica_health()
            return u.lag and u.lag.eligible and u.lag.seconds == 0
        end, 10, 0.05), "the replica did not come back after replay resumed")
        assert.is_true(served_by_standby())
        assert.is_true(replica_health().lag.excluded >= 1)
        env.psql("drop table if exists public.replica_spec_probe")
    end)

    local function set_policy(lag)
        env.write_file(policy, (saved_policy:gsub("\nreturn _M%s*$",
            "\n_M.upstreams.replica.lag = " .. lag .. "  -- replica_spec\nreturn _M\n")))
        env.hup()
        assert.is_truthy(env.wait_until(function()
            local u = replica_health()
            return u.lag and u.lag.eligible and served_by_standby()
        end, 10, 0.1), "the replica did not serve after the policy reload")
    end

    local function write(u, marker)
        local status, body, headers = http.request("POST", "/v1/search-history", {
            token = u.token, body = { search_type = "replica_spec", query = { marker = marker } } })
        assert.are.equal(201, status, body and body.message)
        return headers["tide-lsn"]
    end

    local function read(u, marker, lsn)
        local status, body = http.request("GET", "/v1/_test/replica/marker/" .. marker,
                                          { token = u.token, headers = { ["Tide-LSN"] = lsn } })
        assert.are.equal(200, status, body and body.message)
        return body
    end

    it("answers a write with Tide-LSN; the writer's reads skip a replica that lacks it", function()
        if not need_replica() then return end
        -- a replica that lags without bound: only the floor keeps reads off it
        set_policy("{ max_ms = 3600000, max_bytes = 0, poll_interval = 0.05, read_your_writes = 30 }")
        local u = api.user()
        local other = api.user()  -- made before the pause: its own profile write is replayed
        fault.stack("pause-replay")
        local marker = env.uuid()
        local lsn = write(u, marker)
        assert.matches("^%x+/%x+$", lsn)
        -- the writer at once, sending nothing: the row, from Postgres itself
        local r = read(u, marker)
        assert.are.equal(1, r.n)
        assert.is_false(r.standby)
        -- another caller sending the writer's position (as from another instance): the same
        r = read(other, marker, lsn)
        assert.are.equal(0, r.n)          -- RLS: not theirs, but read where the floor allows
        assert.is_false(r.standby)
        -- without a floor the lagging replica answers (what the floor protects against)
        r = read(other, marker)
        assert.is_true(r.standby)
        -- a Tide-LSN that is not a WAL position is refused
        local status, body = http.request("GET", "/v1/_test/replica/marker/" .. marker,
                                          { token = u.token, headers = { ["Tide-LSN"] = "1/2/3" } })
        assert.are.equal(400, status)
        assert.are.equal("TIDE_INVALID_LSN", body.code)
        fault.stack("resume-replay")
        -- replayed: the writer's reads go back to the replica and see the row there
        assert.is_truthy(env.wait_until(function()
            local x = read(u, marker)
            return x.standby and x.n == 1
        end, 10, 0.1), "the writer's reads never went back to the replica")
    end)

    it("never reads a stale row after a write: 200 write-then-read pairs", function()
        if not need_replica() then return end
        fault.stack("resume-replay")
        set_policy("{ max_ms = 3600000, max_bytes = 0, poll_interval = 0.05, read_your_writes = 30 }")
        local u = api.user()
        local stale, from_standby, pairs_run = 0, 0, 0
        for i = 1, 200 do
            local marker = env.uuid()
            local lsn = write(u, marker)
            if i % 3 == 0 then env.sleep(0.05 * (i % 4)) end  -- some reads after a poll or two
            -- every third read sends the header instead of relying on the writer's window
            local r = read(u, marker, i % 3 == 1 and lsn or nil)
            pairs_run = pairs_run + 1
            if r.n ~= 1 then stale = stale + 1 end
            if r.standby then from_standby = from_standby + 1 end
        end
        print(string.format("\nreplica read-your-writes: %d pairs, %d stale, %d read from the standby",
                            pairs_run, stale, from_standby))
        assert.are.equal(0, stale)
        assert.is_true(from_standby > 0, "no read ever went to the replica")
    end)

    it("does not cache what it read from a replica that lacks an invalidated write", function()
        if not need_replica() then return end
        -- trips read from the replica (no floors: read_your_writes 0, no header)
        local routing = env.bundle_dir .. "/policies/routing.lua"
        local saved_routing = assert(env.read_file(routing))
        finally(function()
            env.write_file(routing, saved_routing)
            env.hup()
        end)
        env.write_file(routing, (saved_routing:gsub("\nreturn _M%s*$",
            '\n_M.tables.trips = { select = "replica" }  -- replica_spec\nreturn _M\n')))
        set_policy("{ max_ms = 3600000, max_bytes = 0, poll_interval = 0.05, read_your_writes = 0 }")
        local u = api.user()
        local trip = api.trip(u, { notes = { "before" } })
        local trip_path = "/v1/trips/" .. trip.id
        local function get()
            local status, body, headers = http.request("GET", trip_path, { token = u.token })
            assert.are.equal(200, status)
            return body.notes and body.notes[1], headers["x-cache"]
        end
        assert.is_truthy(env.wait_until(function() return get() == "before" end, 10, 0.05),
                         "the replica never had the trip")
        fault.stack("pause-replay")
        local status = http.request("PATCH", trip_path, { token = u.token, body = { notes = { "after" } } })
        assert.are.equal(200, status)
        env.sleep(0.3)   -- a few polls: the primary's position after the write is known
        local notes, cache = get()
        assert.are.equal("before", notes)     -- the lagging replica answered (no floor)...
        assert.are.equal("MISS", cache)
        cache = select(2, get())
        assert.are.equal("MISS", cache)       -- ...and its answer was not stored
        fault.stack("resume-replay")
        assert.is_truthy(env.wait_until(function() return get() == "after" end, 5, 0.05),
                         "the trip stayed as it was before the write")
    end)
end)
