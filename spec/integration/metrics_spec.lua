-- Observability over real HTTP (docs/metrics.md, docs/operations.md): GET /metrics passes
-- promtool after traffic of every kind (answers of each class, cache hits, a write, an admission
-- refusal, a reload and a rejected one) and its counters and histograms move as a known
-- sequence says; /admin/queries ranks statements and resets (POST, with the admin token);
-- request ids are tide's own for every request (a client's X-Request-Id kept beside it in the
-- access log, never in its place), written to the access log and visible in
-- pg_stat_activity.

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"
local http = require "spec.helpers.http"
local fault = require "spec.helpers.fault"
local cjson = require "cjson.safe"

local MODULE = [[
local db = require "tide.db"
return {
  ["GET /v1/_test/metrics/boom"] = function() error("boom for the metrics spec") end,
  ["GET /v1/_test/metrics/sleep"] = function()
    local rows, err = db.sql("select pg_sleep(0.6)")
    if not rows then return nil, err end
    return { slept = true }
  end,
}
]]

local function admin(path, method)
    return http.request(method or "GET", path, { url = env.admin_url })
end

-- The /metrics text, checked by promtool on the way.
local function metrics()
    local status, body = admin("/metrics")
    assert.equals(200, status)
    assert.equals("string", type(body))
    return body
end

-- The value of one series (exact name with labels as printed), or 0 when absent.
local function value(text, series)
    for line in text:gmatch("[^\n]+") do
        local name, v = line:match("^(%S+) (%S+)$")
        if name == series then return tonumber(v) end
    end
    return 0
end

local function promtool(text)
    local path = os.tmpname()
    env.write_file(path, text)
    local out, ok = env.run("promtool check metrics < " .. env.quote(path) .. " 2>&1")
    os.remove(path)
    return ok, out
end

describe("metrics and operations", function()
    local module_path

    setup(function()
        env.need("pid", "bundle_dir", "admin_url", "dsn_admin")
        module_path = env.install_module("zz_metrics_test.lua", MODULE, function()
            return (api.call(nil, "GET", "/v1/_test/metrics/boom")) == 500
        end)
    end)

    teardown(function()
        env.remove_module(module_path)
    end)

    it("serves /metrics that promtool accepts after traffic of every kind", function()
        local u = api.user()
        local trip = api.trip(u)
        api.call(u, "GET", "/v1/trips/" .. trip.id)
        api.call(u, "GET", "/v1/trips/" .. trip.id)                        -- a cache hit
        api.call(u, "GET", "/v1/trips/" .. trip.id, nil, { ["Cache-Control"] = "no-cache" })
        api.call(u, "PATCH", "/v1/trips/" .. trip.id, { name = "metrics" })
        api.call(u, "POST", "/v1/trips", { name = "" })                    -- 422
        api.call(nil, "GET", "/v1/no/such/route")                          -- 404 unmatched
        api.call({ token = "not.a.token" }, "GET", "/v1/trips")            -- 401 at admission
        api.call(nil, "GET", "/v1/_test/metrics/boom")                     -- 500
        api.call(nil, "GET", "/v1/destinations/popular")
        -- a reload, and a rejected one
        local before = fault.stats()
        env.hup()
        assert.truthy(env.wait_until(function()
            return fault.stats().reloads > before.reloads
        end, 10, 0.05))
        local policy = env.bundle_dir .. "/policies/cache.lua"
        local saved = env.read_file(policy)
        env.write_file(policy, "return { routes = 1 }")
        local ok, err = pcall(function()
            env.hup()
            assert.truthy(env.wait_until(function()
                return fault.stats().reload_failures > before.reload_failures
            end, 10, 0.05))
        end)
        env.write_file(policy, saved)
        env.hup()
        assert(ok, err)
        local text = metrics()
        local pass, out = promtool(text)
        assert.is_true(pass, "promtool check metrics: " .. out)
        -- every family docs/metrics.md lists is there
        for _, family in ipairs({ "tide_http_requests_total", "tide_http_request_duration_seconds",
                "tide_pool_connections", "tide_pool_acquire_wait_seconds",
                "tide_pool_statement_duration_seconds", "tide_pool_errors_total",
                "tide_breaker_state", "tide_breaker_transitions_total", "tide_probe_latency_seconds",
                "tide_cache_lookups_total", "tide_cache_entries", "tide_jwt_cache_lookups_total",
                "tide_reloads_total", "tide_reload_failures_total", "tide_event_loop_pass_seconds",
                "tide_log_dropped_lines_total", "tide_log_lines_total", "tide_worker_restarts_total",
                "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds" }) do
            assert.truthy(text:find("# TYPE " .. family .. " ", 1, true), family .. " missing")
        end
        -- labels are route templates, never raw paths
        assert.is_nil(text:find('route="/v1/trips/' .. trip.id, 1, true))
        assert.truthy(text:find('route="/v1/trips/:id"', 1, true))
        assert.truthy(value(text, 'tide_http_requests_total{route="(unmatched)",method="GET",status="4xx"}') >= 1)
        assert.truthy(value(text, 'tide_http_requests_total{route="(auth)",method="GET",status="4xx"}') >= 1)
        local boom = 'tide_http_requests_total{route="/v1/_test/metrics/boom",method="GET",status="5xx"}'
        assert.truthy(value(text, boom) >= 1)
        assert.truthy(value(text, "tide_reload_failures_total") >= 1)
    end)

    it("moves counters and histograms as a known sequence of requests says", function()
        local u = api.user()
        local trip = api.trip(u)
        local path = "/v1/trips/" .. trip.id
        local ok_series = 'tide_http_requests_total{route="/v1/trips/:id",method="GET",status="2xx"}'
        local nf_series = 'tide_http_requests_total{route="/v1/trips/:id",method="GET",status="4xx"}'
        local count_series = 'tide_http_request_duration_seconds_count{route="/v1/trips/:id"}'
        local hit_series = 'tide_cache_lookups_total{scope="user",result="hit"}'
        -- cached first (until a HIT: the trigger's echo of the insert may drop it once)
        assert.truthy(env.wait_until(function()
            local _, _, h = api.call(u, "GET", path)
            return h["x-cache"] == "HIT"
        end, 2, 0.01))
        local t0 = metrics()
        for _ = 1, 5 do api.call(u, "GET", path) end              -- 5 hits
        for _ = 1, 3 do api.call(u, "GET", "/v1/trips/999999999") end   -- 404s (not stored)
        local t1 = metrics()
        assert.equals(5, value(t1, ok_series) - value(t0, ok_series))
        assert.equals(3, value(t1, nf_series) - value(t0, nf_series))
        assert.equals(8, value(t1, count_series) - value(t0, count_series))
        assert.equals(5, value(t1, hit_series) - value(t0, hit_series))
        -- the 404s' statements reached the pool: its statement histogram counted them
        local st = 'tide_pool_statement_duration_seconds_count{upstream="transaction"}'
        local sd = 'tide_pool_statement_duration_seconds_count{upstream="direct"}'
        assert.truthy(value(t1, st) + value(t1, sd) - value(t0, st) - value(t0, sd) >= 3)
        -- buckets are cumulative and end at the count
        local inf = value(t1, 'tide_http_request_duration_seconds_bucket{route="/v1/trips/:id",le="+Inf"}')
        assert.equals(value(t1, count_series), inf)
        assert.truthy(value(t1, 'tide_event_loop_pass_seconds_count') > value(t0, 'tide_event_loop_pass_seconds_count'))
        -- and /admin/stats has the route's percentiles
        local _, stats, _, raw = admin("/admin/stats")
        local r = stats.routes["/v1/trips/:id"]
        assert.truthy(r and r.count >= 8 and r.p99_ms >= r.p50_ms, cjson.encode(r))
        -- the route count has a key of its own (it used to be a second top-level "routes",
        -- a number, hidden from JSON readers that keep the last of two keys)
        assert.is_nil(raw:find('"routes":%d'))
        assert.is_true(stats.route_count > 0)
    end)

    it("ranks statements in /admin/queries and resets them", function()
        local u = api.user()
        api.call(u, "GET", "/v1/trips", nil, { ["Cache-Control"] = "no-cache" })
        local s, body = admin("/admin/queries?limit=200")
        assert.equals(200, s)
        assert.truthy(#body.statements >= 1)
        local prev = math.huge
        local found
        for _, q in ipairs(body.statements) do
            assert.truthy(q.total_ms <= prev + 1e-9, "not sorted by total time")
            prev = q.total_ms
            assert.truthy(q.p50_ms <= q.p95_ms and q.p95_ms <= q.p99_ms)
            assert.is_nil(q.statement:find(u.id, 1, true))      -- values are never in the text
            if q.statement:find('FROM "trips"', 1, true) then found = q end
        end
        assert.truthy(found, "the trips statement is not listed")
        assert.truthy(found.calls >= 1)
        assert.equals(200, (http.request("POST", "/admin/queries?reset=1",
                                         { url = env.admin_url, token = env.admin_token })))
        local _, after = admin("/admin/queries")
        assert.equals(0, #after.statements)
    end)

    it("makes its own request id, keeps a client's beside it, and logs both", function()
        local tide_id = "^%x+%-%x+$"
        local _, _, h1 = api.call(nil, "GET", "/v1/destinations/popular", nil,
                                  { ["X-Request-Id"] = "spec-id-1234" })
        local id1 = h1["x-request-id"]
        assert.truthy(id1 and id1:match(tide_id), tostring(id1))   -- tide's, not the client's
        local _, _, h2 = api.call(nil, "GET", "/v1/destinations/popular")
        assert.truthy(h2["x-request-id"] and h2["x-request-id"]:match(tide_id))
        assert.are_not.equal(id1, h2["x-request-id"])
        local _, _, h3 = api.call(nil, "GET", "/v1/destinations/popular", nil,
                                  { ["X-Request-Id"] = "bad id\"<script>" })
        assert.truthy(h3["x-request-id"]:match(tide_id))
        local long = string.rep("a", 49)
        local _, _, h4 = api.call(nil, "GET", "/v1/destinations/popular", nil,
                                  { ["X-Request-Id"] = long })
        assert.truthy(h4["x-request-id"]:match(tide_id))
        -- a 5xx body names tide's id
        local s5, b5, h5 = api.call(nil, "GET", "/v1/_test/metrics/boom", nil,
                                    { ["X-Request-Id"] = "spec-boom-1" })
        assert.equals(500, s5)
        assert.truthy(h5["x-request-id"]:match(tide_id))
        assert.equals("request " .. h5["x-request-id"], b5.details)
        if env.access_log then
            local line = env.wait_until(function()
                local text = env.read_file(env.access_log) or ""
                return text:match('[^\n]*"id":"' .. id1:gsub("%-", "%%-") .. '"[^\n]*')
            end, 5, 0.05)
            assert.truthy(line, "no access-log line with the request id " .. id1)
            local entry = cjson.decode(line)
            assert.equals("spec-id-1234", entry.client_request_id)
            assert.equals("/v1/destinations/popular", entry.path)
            -- an unsafe or overlong value is not kept at all
            local text = env.read_file(env.access_log) or ""
            assert.is_nil(text:find("<script>", 1, true))
            assert.is_nil(text:find(long, 1, true))
        end
    end)

    it("shows the request id in pg_stat_activity while its statement runs", function()
        local saved = fault.request_headers
        fault.request_headers = { ["X-Request-Id"] = "spec-pg-5678" }
        local call = fault.start(nil, "GET", "/v1/_test/metrics/sleep", nil, "sleep", 10)
        fault.request_headers = saved
        local seen = env.wait_until(function()
            local name = env.psql_value("select application_name from pg_stat_activity where " ..
                                        "query = 'select pg_sleep(0.6)' and state = 'active'")
            return name ~= "" and name or nil
        end, 3, 0.02)
        local deadline = env.now() + 10
        while fault.poll({ call }, 0.5) > 0 and env.now() < deadline do end
        assert.equals(200, call.status, tostring(call.err))
        -- tide's id, the one the answer carries; never the client's
        assert.equals("tide " .. call.headers["x-request-id"], seen)
    end)
end)
