-- The result cache under faults (docs/cache.md "Result cache", docs/failures.md):
--   * Postgres stopped: a cached trip comes back STALE (its rule's stale_if_error) while one
--     that was never cached gets 503; nothing is served as fresh while the LISTEN connection
--     is down; after Postgres is back, answers are fresh again.
--   * The LISTEN connection killed (pg_terminate_backend): a write made while tide cannot hear
--     is never hidden by a cached answer, tide reconnects, and the cache serves hits again.

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"
local fault = require "spec.helpers.fault"
local cjson = require "cjson.safe"

local function get(user, path)
    local r = fault.call(user, "GET", path, nil, 10)
    return r.status, r.body, r.headers or {}, r
end

local function cache_stats()
    return fault.stats().cache
end

-- A healthy stack heard by tide, a new owner with a trip whose entry is cached (MISS, HIT).
local function cached_trip()
    local owner = fault.healthy_user()
    local trip = api.trip(owner)
    local path = "/v1/trips/" .. trip.id
    assert.truthy(env.wait_until(function() return cache_stats().hearing == true end, 10))
    -- until a HIT: the trigger's echo of the trip's insert may drop the first entry once
    assert.truthy(env.wait_until(function()
        return select(3, get(owner, path))["x-cache"] == "HIT"
    end, 2, 0.01), "no HIT")
    return owner, trip, path
end

local function listener_pid()
    return env.psql_value("select pid from pg_stat_activity where application_name = " ..
                          "'tide_listen' and backend_type = 'client backend' limit 1")
end

describe("fault: result cache", function()
    local saved_headers

    setup(function()
        saved_headers = fault.request_headers
        fault.request_headers = nil            -- these requests go through the cache
    end)

    teardown(function()
        fault.request_headers = saved_headers
    end)

    it("serves a cached trip STALE while Postgres is stopped, and a 503 for an uncached one", function()
        local owner = fault.healthy_user()
        local cached, uncached = api.trip(owner), api.trip(owner)
        local cpath, upath = "/v1/trips/" .. cached.id, "/v1/trips/" .. uncached.id
        assert.truthy(env.wait_until(function() return cache_stats().hearing == true end, 10))
        local s0, b0 = get(owner, cpath)
        assert.equals(200, s0)
        local _, _, h1 = get(owner, cpath)
        assert.equals("HIT", h1["x-cache"])
        local ok, err = pcall(function()
            fault.stack("stop-pg immediate")
            -- the LISTEN connection goes with it: tide stops trusting what it holds
            assert.truthy(env.wait_until(function()
                return cache_stats().hearing == false
            end, 10, 0.05), "tide did not notice the LISTEN connection go")
            local s, body, h = get(owner, cpath)
            assert.equals(200, s, cjson.encode(body))
            assert.equals("STALE", h["x-cache"])
            assert.same(b0, body)
            assert.truthy(tonumber(h.age))
            local su, bu, hu = get(owner, upath)
            assert.equals(503, su, cjson.encode(bu))
            assert.equals("MISS", hu["x-cache"])
            local sie = cache_stats().scopes.user.stale_if_error
            assert.truthy(sie >= 1)
        end)
        fault.restore_stack(owner, 30)
        assert(ok, err)
        -- back: hearing again, and the first answer is read afresh (distrusted entry), then hits
        assert.truthy(env.wait_until(function() return cache_stats().hearing == true end, 15))
        local s2, _, h2 = get(owner, cpath)
        assert.equals(200, s2)
        assert.equals("MISS", h2["x-cache"])
        assert.equals("HIT", select(3, get(owner, cpath))["x-cache"])
    end)

    it("never hides a write made while the LISTEN connection is down, and reconnects", function()
        local owner, trip, path = cached_trip()
        local lost = cache_stats().hearing_lost
        local pid = listener_pid()
        assert.truthy(pid and pid ~= "", "no tide_listen session in pg_stat_activity")
        local role = env.psql_value("select usename from pg_stat_activity where pid = " .. pid)
        -- the LISTEN session is killed and cannot come back (its role may open no new
        -- connection; the pool's open ones stay), so the write below is never heard
        local ok, err = pcall(function()
            env.psql("alter role " .. role .. " connection limit 0")
            env.psql("select pg_terminate_backend(" .. pid .. ")")
            assert.truthy(env.wait_until(function()
                return cache_stats().hearing == false
            end, 5, 0.02), "tide did not notice the LISTEN connection go")
            env.psql("update public.trips set name = 'changed behind tide' where id = " ..
                     trip.id)
            for _ = 1, 3 do
                local s, body, h = get(owner, path)
                assert.equals(200, s, cjson.encode(body))
                assert.equals("changed behind tide", body.name,
                              "a cached answer hid the write (X-Cache " ..
                              tostring(h["x-cache"]) .. ")")
                assert.equals("MISS", h["x-cache"])    -- nothing is trusted meanwhile
            end
        end)
        env.psql("alter role " .. role .. " connection limit -1")
        assert(ok, err)
        assert.truthy(env.wait_until(function()
            local c = cache_stats()
            return c.hearing == true and c.hearing_lost > lost
        end, 15, 0.05), "the LISTEN connection did not come back")
        assert.truthy(listener_pid() ~= pid)
        -- and the cache works again, with the new row
        get(owner, path)
        local _, body, h = get(owner, path)
        assert.equals("HIT", h["x-cache"])
        assert.equals("changed behind tide", body.name)
    end)

    it("shows a superuser's UPDATE in the next GET within 200 ms", function()
        local owner, trip, path = cached_trip()
        env.psql("update public.trips set name = 'seen within 200 ms' where id = " .. trip.id)
        local t0 = env.now()
        local seen = env.wait_until(function()
            local _, body = get(owner, path)
            return body.name == "seen within 200 ms"
        end, 2, 0.005)
        local took = env.now() - t0
        assert.truthy(seen, "the update never showed")
        assert.truthy(took <= 0.2, string.format("took %.3f s", took))
    end)
end)
