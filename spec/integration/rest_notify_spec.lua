-- spec/integration/rest_notify_spec.lua - /rest/v1's schema cache reloaded by NOTIFY, as
-- PostgREST's `pgrst` channel (rest.notify_channel; runtime/channels.c, tide/rest/schema.lua):
-- a table or column created as the superuser is served about at once after
-- `NOTIFY pgrst, 'reload schema'` (or an empty payload), with no SIGHUP and refresh_after set
-- so high (a spec-local exposure policy) that only the NOTIFY can explain it; 'reload config'
-- and other payloads reload nothing; a LISTEN session that comes back (its backend
-- terminated) makes tide re-read the catalog, since NOTIFYs sent meanwhile were lost; and
-- with two workers (a tide of the spec's own) each worker hears the NOTIFY on its own session.

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"
local fault = require "spec.helpers.fault"
local http = require "spec.helpers.http"
local spawn = require "spec.helpers.spawn"
local rest = require "spec.helpers.rest"

-- A NOTIFY must be served within a second (ASan's build, with TIDE_TEST_SLOWDOWN=4, gets
-- four).
local WITHIN = 1.0 * (tonumber(os.getenv("TIDE_TEST_SLOWDOWN")) or 1)

local get = rest.get

local function rest_stats()
    return fault.stats().rest or {}
end

describe("/rest/v1 schema reload on NOTIFY", function()
    local a, policy_path, saved, made

    -- A fresh table the authenticated role may read, with one row; dropped in teardown.
    local function make_table()
        local t = "notify_probe_" .. env.uuid():sub(1, 8)
        env.psql("CREATE TABLE public." .. t .. " (id int, label text); " ..
                 "INSERT INTO public." .. t .. " VALUES (1, 'one'); " ..
                 "GRANT SELECT ON public." .. t .. " TO authenticated")
        made[#made + 1] = t
        return t
    end

    local function served(t, select)
        local status, rows = get(a, t .. "?select=" .. (select or "label"))
        return status == 200 and type(rows) == "table" and rows[1] ~= nil, status, rows
    end

    -- Polls until t is served; returns the seconds it took (nil if not within `within`).
    local function time_to_serve(t, within, select)
        local t0 = env.now()
        if env.wait_until(function() return (served(t, select)) end, within, 0.02) then
            return env.now() - t0
        end
    end

    -- Serves policies/exposure.lua of a bundle with refresh_after an hour (so an unknown name
    -- cannot make tide re-read the catalog); returns the original text.
    local function slow_refresh(bundle)
        local path = bundle .. "/policies/exposure.lua"
        local text = assert(env.read_file(path))
        env.write_file(path, "-- written by spec/integration/rest_notify_spec.lua\n" ..
                       "local P = (function(...)\n" .. text .. "\nend)(...)\n" ..
                       "P.refresh_after = 3600\nreturn P\n")
        return text
    end

    setup(function()
        env.need("bin", "pid", "bundle_dir", "dsn_admin", "admin_url")
        a = api.user()
        made = {}
        policy_path = env.bundle_dir .. "/policies/exposure.lua"
        saved = slow_refresh(env.bundle_dir)
        fault.reload()
        -- the LISTEN session is up (each session moves the generation at least once)
        assert(env.wait_until(function()
            return (rest_stats().schema_generation or 0) > 0
        end, 10, 0.05), "the LISTEN session on rest.notify_channel never came up")
        -- the new bundle's schema cache is read (by this request) before the tables exist
        assert.are.equal(200, (get(a, "trips?select=id&limit=1")))
    end)

    teardown(function()
        for _, t in ipairs(made or {}) do env.psql("DROP TABLE IF EXISTS public." .. t) end
        if saved then
            env.write_file(policy_path, saved)
            fault.reload()
        end
    end)

    it("NOTIFY pgrst, 'reload schema' serves a new table within a second, without SIGHUP",
       function()
        local reloads = fault.stats().reloads
        local heard = rest_stats().schema_reloads_heard
        local t = make_table()
        local status, body = get(a, t .. "?select=label")
        assert.are.equal(404, status)                    -- unknown, and not re-read for it
        assert.are.equal("PGRST205", body.code)
        env.sleep(0.3)
        assert.are.equal(404, (get(a, t .. "?select=label")))
        env.psql("NOTIFY pgrst, 'reload schema'")
        local took = time_to_serve(t, 3)
        assert.is_truthy(took, "not served within 3 s of the NOTIFY")
        assert.is_true(took < WITHIN, "served only after " .. tostring(took) .. " s")
        local _, _, rows = served(t)
        assert.are.same({ { label = "one" } }, rows)
        assert.are.equal(reloads, fault.stats().reloads)  -- no bundle reload did it
        assert.are.equal(heard + 1, rest_stats().schema_reloads_heard)
    end)

    it("an empty payload reloads too (a new column here)", function()
        local t = make_table()
        env.psql("NOTIFY pgrst, 'reload schema'")
        assert.is_truthy(time_to_serve(t, 3))
        env.psql("ALTER TABLE public." .. t .. " ADD COLUMN extra text DEFAULT 'x'")
        local status, body = get(a, t .. "?select=extra")
        assert.are.equal(400, status)
        assert.are.equal("42703", body.code)
        env.psql("NOTIFY pgrst")
        local took = time_to_serve(t, 3, "extra")
        assert.is_truthy(took)
        assert.is_true(took < WITHIN, "served only after " .. tostring(took) .. " s")
    end)

    it("'reload config' and other payloads reload nothing", function()
        local t = make_table()
        local gen = rest_stats().schema_generation
        env.psql("NOTIFY pgrst, 'reload config'")
        env.psql("NOTIFY pgrst, 'reload schema please'")
        env.psql("NOTIFY tide_unrelated_channel, 'reload schema'")
        env.sleep(0.5)
        assert.are.equal(404, (get(a, t .. "?select=label")))
        assert.are.equal(gen, rest_stats().schema_generation)
        env.psql("SELECT pg_notify('pgrst', 'reload schema')")
        assert.is_truthy(time_to_serve(t, 3))
    end)

    it("a LISTEN session that comes back re-reads the catalog (NOTIFYs may have been lost)",
       function()
        local t = make_table()
        assert.are.equal(404, (get(a, t .. "?select=label")))
        local gen = rest_stats().schema_generation
        -- the superuser ends tide's LISTEN session; tide opens a new one by itself
        assert.are.equal("1", env.psql_value(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity " ..
            "WHERE application_name = 'tide_listen' AND backend_type = 'client backend'"))
        assert.is_truthy(env.wait_until(function()
            return rest_stats().schema_generation > gen
        end, 10, 0.05), "the LISTEN session did not come back")
        assert.is_truthy(time_to_serve(t, 3))
    end)

    it("with two workers, each hears the NOTIFY on its own session and re-reads", function()
        local dir = spawn.bundle()
        slow_refresh(dir)
        local w
        finally(function()
            if w and spawn.alive(w) then spawn.stop(w) end
            spawn.remove(dir)
        end)
        w = spawn.tide(dir, { env = { "TIDE_WORKERS=2" } })
        local port = tonumber(w.admin_url:match(":(%d+)$"))
        local admins = { w.admin_url, "http://127.0.0.1:" .. (port + 1) }
        local function stats(i)
            local ok, status, body = pcall(http.request, "GET", "/admin/stats",
                                           { url = admins[i] })
            return ok and status == 200 and type(body) == "table" and body or nil
        end
        local function all(pred)
            return pred(stats(1) or {}) and pred(stats(2) or {})
        end
        assert.is_truthy(env.wait_until(function()
            return all(function(s) return ((s.rest or {}).schema_generation or 0) > 0 end)
        end, 10, 0.05), "both workers' LISTEN sessions did not come up:\n" .. spawn.log(w))
        local function statuses(path, n)
            local seen = {}
            for _ = 1, n do
                local status = http.request("GET", "/rest/v1/" .. path,
                                            { url = w.url, token = a.token })
                seen[status] = (seen[status] or 0) + 1
            end
            return seen
        end
        -- both workers read their schema cache now (the kernel spreads connections)
        assert.are.same({ [200] = 30 }, statuses("trips?select=id&limit=1", 30))
        assert.is_truthy(all(function(s) return s.http.accepted > 0 end))
        local t = make_table()
        assert.are.same({ [404] = 30 }, statuses(t .. "?select=label", 30))
        env.psql("NOTIFY pgrst, 'reload schema'")
        assert.is_truthy(env.wait_until(function()
            return all(function(s) return (s.rest or {}).schema_reloads_heard == 1 end)
        end, 3, 0.02), "a worker did not hear the NOTIFY")
        local before = { stats(1).http.accepted, stats(2).http.accepted }
        assert.are.same({ [200] = 30 }, statuses(t .. "?select=label", 30))
        assert.is_true(stats(1).http.accepted > before[1] and
                       stats(2).http.accepted > before[2], "one worker got every request")
    end)
end)
