-- spec/integration/instances_spec.lua - two tide instances on one stack (the suite's tide, A,
-- and a second one this spec starts on its own ports with its own bundle, B), as behind a
-- load balancer:
--   * a write on A answers Tide-LSN; B, whose reads of search_history go to the replica (its
--     routing policy) while the replica's replay is paused, reads the row when the client
--     sends that Tide-LSN (from Postgres itself) and misses it without (the lagging replica);
--   * B's result cache drops what A's write touched, within the NOTIFY delay;
--   * a SIGHUP to B while A serves: every request to A succeeds;
--   * a tide of two workers (C, same bundle as B): a caller's write answered by one worker
--     floors their reads on the other (the memo is shared memory): with replay paused, 100
--     write-then-read pairs without the header read 0 stale rows.

local env = require "spec.helpers.env"
local http = require "spec.helpers.http"
local fault = require "spec.helpers.fault"
local api = require "spec.helpers.api"
local spawn = require "spec.helpers.spawn"

local stack_dir = fault.stack_dir


describe("two tide instances on one stack", function()
    local dir, b

    setup(function()
        env.need("bin", "url")
        dir = spawn.bundle()
        local routing = dir .. "/policies/routing.lua"
        local text = assert(env.read_file(routing))
        env.write_file(routing, (text:gsub("\nreturn _M%s*$",
            '\n_M.tables.search_history = { select = "replica" }  -- instances_spec\nreturn _M\n')))
        local res = dir .. "/policies/resilience.lua"
        text = assert(env.read_file(res))
        -- B keeps reading from the replica however far behind it is: only floors keep it off
        env.write_file(res, (text:gsub("\nreturn _M%s*$",
            "\n_M.upstreams.replica.lag = { max_ms = 3600000, max_bytes = 0, poll_interval = 0.05 }"
            .. "  -- instances_spec\nreturn _M\n")))
        b = spawn.tide(dir)
    end)

    teardown(function()
        if stack_dir and os.getenv("TIDE_DSN_REPLICA") then fault.stack("resume-replay") end
        spawn.stop(b)
        spawn.remove(dir)
    end)

    local function on(t, method, path, u, opts)
        opts = opts or {}
        local o = { url = t and t.url or nil, token = u.token, body = opts.body,
                    headers = opts.headers }
        return http.request(method, path, o)
    end

    local function has_marker(list, marker)
        for _, row in ipairs(type(list) == "table" and list or {}) do
            if type(row.query) == "table" and row.query.marker == marker then return true end
        end
        return false
    end

    it("carries a write's Tide-LSN from A to B", function()
        if not os.getenv("TIDE_DSN_REPLICA") then
            pending("no replica in this stack (TIDE_DSN_REPLICA unset)")
            return
        end
        local u = api.user()
        fault.stack("pause-replay")
        local marker = env.uuid()
        local status, body, headers = on(nil, "POST", "/v1/search-history", u,
            { body = { search_type = "instances", query = { marker = marker } } })
        assert.are.equal(201, status, body and body.message)
        local lsn = headers["tide-lsn"]
        assert.matches("^%x+/%x+$", lsn)
        local path = "/v1/search-history?search_type=instances"
        -- on B with the token: the row (B never saw the write; the header is the floor)
        status, body = on(b, "GET", path, u, { headers = { ["Tide-LSN"] = lsn } })
        assert.are.equal(200, status)
        assert.is_true(has_marker(body, marker), "B with A's Tide-LSN missed the row")
        -- on B without it: the paused replica, which has not got the row
        status, body = on(b, "GET", path, u)
        assert.are.equal(200, status)
        assert.is_false(has_marker(body, marker), "the paused replica had the row: the floor proved nothing")
        fault.stack("resume-replay")
        assert.is_truthy(env.wait_until(function()
            local s, l = on(b, "GET", path, u)
            return s == 200 and has_marker(l, marker)
        end, 10, 0.1), "B never read the row after the replica resumed")
    end)

    it("drops from B's cache what a write on A touched", function()
        local u = api.user()
        local trip = api.trip(u, { notes = { "before" } })
        local path = "/v1/trips/" .. trip.id
        local status = on(b, "GET", path, u)
        assert.are.equal(200, status)
        local _, _, headers = on(b, "GET", path, u)
        assert.are.equal("HIT", headers["x-cache"])
        status = on(nil, "PATCH", path, u, { body = { notes = { "after" } } })
        assert.are.equal(200, status)
        local t0 = env.now()
        local seen = env.wait_until(function()
            local s, t = on(b, "GET", path, u)
            return s == 200 and type(t) == "table" and type(t.notes) == "table"
                   and t.notes[1] == "after"
        end, 5, 0.02)
        assert.is_truthy(seen, "B kept serving the trip from before A's write")
        print(string.format("\ninstances: B saw A's write %.3f s after it was answered", env.now() - t0))
    end)

    it("reloads B without disturbing A", function()
        local u = api.user()
        local bad = 0
        env.run("kill -HUP " .. b.pid)
        for _ = 1, 100 do
            local status = on(nil, "GET", "/v1/trips?limit=1", u)
            if status ~= 200 then bad = bad + 1 end
        end
        assert.are.equal(0, bad)
        assert.is_true(spawn.alive(b))
        assert.is_truthy(env.wait_until(function()
            return spawn.log(b):find("reloaded scripts and policies", 1, true) ~= nil
        end, 10, 0.1), "B did not log its reload")
    end)

    it("shares the callers' last writes between workers", function()
        if not os.getenv("TIDE_DSN_REPLICA") then
            pending("no replica in this stack (TIDE_DSN_REPLICA unset)")
            return
        end
        local c = spawn.tide(dir, { env = { "TIDE_WORKERS=2" } })
        finally(function() spawn.stop(c) end)
        local u = api.user()
        fault.stack("pause-replay")
        local stale = 0
        for i = 1, 100 do
            local marker = "w" .. i .. "-" .. env.uuid():sub(1, 8)
            local status = on(c, "POST", "/v1/search-history", u,
                { body = { search_type = "workers", query = { marker = marker } } })
            assert.are.equal(201, status)
            local s2, list = on(c, "GET", "/v1/search-history?search_type=workers&limit=1", u)
            assert.are.equal(200, s2)
            if not has_marker(list, marker) then stale = stale + 1 end
        end
        fault.stack("resume-replay")
        print(string.format("\ninstances: two workers, 100 write-then-read pairs, %d stale", stale))
        assert.are.equal(0, stale)
    end)
end)
