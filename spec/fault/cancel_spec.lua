-- spec/fault/cancel_spec.lua - a client that goes away while its query runs: tide cancels the
-- query in Postgres instead of letting it run to the end for nobody. The slow route is not part
-- of scripts/: this spec drops a test module into the served bundle (pg_sleep through db.sql on
-- the direct upstream, tagged with a comment so pg_stat_activity shows which query is ours),
-- reloads, and removes it (and reloads) afterwards. What a user must see: within 1 s of the
-- disconnect the query no longer runs, and the route works again right after.

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"
local http = require "spec.helpers.http"
local fault = require "spec.helpers.fault"

local MODULE = "zz_test_fault_sleep.lua"
local SLEEP = 5
local TAG = "tide-fault-cancel-spec"

local SOURCE = ([[
-- Test-only route written by spec/fault/cancel_spec.lua; never shipped.
local db = require "tide.db"
return {
    ["GET /v1/_test/fault-sleep"] = function(req)
        local s = tonumber(req.query.s) or 0
        if s < 0 or s > 10 then s = 0 end
        local rows, err = db.sql("select pg_sleep($1::float8) /* %s */", { s }, { mode = "direct" })
        if not rows then return nil, err end
        return { slept = s }
    end,
}
]]):format(TAG)

-- Our query while it runs in a backend (an idle connection keeps its last query's text, so
-- only non-idle states count).
local RUNNING = "select count(*) from pg_stat_activity where query like '%" .. TAG .. "%' "
                .. "and state <> 'idle' and pid <> pg_backend_pid()"

local function running()
    return tonumber(env.psql_value(RUNNING))
end

describe("fault: client disconnects during a slow query", function()
    local u, path

    setup(function()
        fault.need()
        u = api.user()
        path = env.install_module(MODULE, SOURCE, function()
            return (api.call(u, "GET", "/v1/_test/fault-sleep?s=0")) == 200
        end, fault.reload)
    end)

    teardown(function()
        env.remove_module(path, fault.reload)
        -- a query this spec failed to get cancelled must not outlive it
        env.psql("select pg_cancel_backend(pid) from pg_stat_activity where query like '%"
                 .. TAG .. "%' and state <> 'idle' and pid <> pg_backend_pid()")
    end)

    it("cancels the query in Postgres within 1 s of the disconnect", function()
        assert.are.equal(0, running(), "a tagged query already runs")
        local sock = http.connect()
        local t0 = env.now()
        http.send(sock, http.build("GET", "/v1/_test/fault-sleep?s=" .. SLEEP, { token = u.token }))
        local seen = env.wait_until(function() return running() == 1 end, 2, 0.05)
        assert.is_truthy(seen, "the slow query never showed up in pg_stat_activity")
        env.sleep(math.max(0, 0.3 - (env.now() - t0)))

        sock:close()
        local t_close = env.now()
        local gone = env.wait_until(function() return running() == 0 end, 3, 0.05)
        local took = env.now() - t_close
        assert.is_truthy(gone, string.format("the query still ran %.1f s after the client left", took))
        assert.is_true(took < 1.0, string.format("the query ran on for %.2f s after the client left", took))
        assert.is_true(env.now() - t0 < SLEEP - 1, "the query was not cut short")

        -- The connection that carried the cancelled query is fine for the next request.
        for _ = 1, 3 do
            local r = fault.call(u, "GET", "/v1/_test/fault-sleep?s=0")
            assert.are.equal(200, r.status, "after the cancel: " .. fault.describe(r))
        end
        print(string.format("\ncancel: query gone %.3f s after the disconnect (%.2f s after it started)",
                            took, env.now() - t0))
    end)
end)
