-- The result cache over real HTTP and a real Postgres (docs/cache.md "Result cache"): hits and
-- their headers, 304s, bypass, identity in the key (RLS answers never cross users), tide's
-- own writes invalidating at once (the row, and visibility through trip_collaborators),
-- single-flight (counted in Postgres), stale-while-revalidate, the byte bound, a reload that
-- changes one rule, the script API, and the admin flush.
--
-- Test-only routes (never shipped) are installed into the served bundle with a cache policy
-- for them: /v1/_test/cache/probe reads a view whose every evaluation takes a number from a
-- sequence, so Postgres itself counts the queries that ran (/v1/_test/cache/slow the same after
-- 0.3 s, so that concurrent requests overlap).

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"
local http = require "spec.helpers.http"
local fault = require "spec.helpers.fault"
local cjson = require "cjson.safe"

local MODULE = [[
local db = require "tide.db"
local cache = require "tide.cache"
local json = require "tide.json"
return {
  ["GET /v1/_test/cache/probe"] = function()
    return db.select("cache_probe", { raw = true })
  end,
  ["GET /v1/_test/cache/slow"] = function()
    return db.select("cache_probe_slow", { raw = true })
  end,
  ["GET /v1/_test/cache/swr"] = function()
    return db.select("cache_probe", { raw = true })
  end,
  ["GET /v1/_test/cache/swr/:name"] = function(req)
    local rows, err = db.select("cache_probe")
    if not rows then return nil, err end
    return { name = req.params.name, rows = rows }
  end,
  ["GET /v1/_test/cache/sql"] = function()
    local rows, err = db.sql("select nextval('cache_probe_seq') as n")
    if not rows then return nil, err end
    return rows
  end,
  ["GET /v1/_test/cache/blob/:n"] = function(req)
    local ok, why = cache.set("blob:" .. req.params.n, string.rep("x", 65536),
                              { ttl = 600, scope = "public" })
    return { stored = ok or false, why = why }
  end,
  -- a failed store is nil, err with an error table (tide.errors), as every failure is
  ["GET /v1/_test/cache/refused/:bytes"] = function(req)
    cache.invalidate("refused-tag")          -- after the request began: a store tagged so races
    local n = tonumber(req.params.bytes)
    local ok, err = cache.set("refused:" .. n, "v",
                              { ttl = 600, scope = "public", tags = { "refused-tag" } })
    local ok2, err2 = cache.set("refused-big", string.rep("x", n), { ttl = 600, scope = "public" })
    local function shape(e)
      return e and { code = e.code, status = e.status, message = e.message,
                     is_error = getmetatable(e) ~= nil and getmetatable(e).__name or false }
    end
    return { raced = { stored = ok or false, err = shape(err) },
             big = { stored = ok2 or false, err = shape(err2) } }
  end,
  ["GET /v1/_test/cache/script/:k"] = function(req)
    local v, age, stale = cache.get("k:" .. req.params.k)
    if v == nil then
      cache.set("k:" .. req.params.k, req.claims and req.claims.sub or "anon",
                { ttl = 60, tags = { "script-tag" } })
      return { value = json.null }
    end
    return { value = v, stale = stale, age = age }
  end,
  ["GET /v1/_test/cache/dbcache"] = function()
    return db.select("cache_probe", { raw = true, cache = { ttl = 60, scope = "public" } })
  end,
}
]]

local TEST_RULES = [[
    ["GET /v1/_test/cache/probe"] = { ttl = 60, scope = "public" },
    ["GET /v1/_test/cache/slow"] = { ttl = 60, scope = "public" },
    ["GET /v1/_test/cache/swr"] = { ttl = 0.5, scope = "public", stale_while_revalidate = 30 },
    ["GET /v1/_test/cache/swr/:name"] = { ttl = 0.5, scope = "public", stale_while_revalidate = 30 },
    ["GET /v1/_test/cache/sql"] = { ttl = 60, scope = "public" },
]]

local function policy_path()
    return env.bundle_dir .. "/policies/cache.lua"
end

-- The shipped policy with the test rules added (and trips' ttl replaced when given).
local function test_policy(original, trip_ttl)
    local p = original:gsub("routes = {\n", "routes = {\n" .. TEST_RULES, 1)
    if trip_ttl then
        p = p:gsub('%["GET /v1/trips/:id"%] = { ttl = %d+',
                   '["GET /v1/trips/:id"] = { ttl = ' .. trip_ttl, 1)
    end
    return p
end

local function stats()
    return fault.stats().cache
end

local function get(user, path, headers)
    local status, body, h = api.call(user, "GET", path, nil, headers)
    return status, body, h or {}
end

-- Reads path as user until the answer is a HIT (at most 2 s). A write's NOTIFY echo (the
-- trigger's, for a write tide already invalidated itself) arrives a few ms after the write's
-- answer and drops what was read in between once more: an extra miss, never a stale answer.
local function warm(user, path)
    local hit = env.wait_until(function()
        return select(3, get(user, path))["x-cache"] == "HIT"
    end, 2, 0.01)
    assert.truthy(hit, "no HIT for " .. path .. " within 2 s")
end

-- A new owner and trip, the trip's path, and its entry cached.
local function cached_trip()
    local owner = api.user()
    local trip = api.trip(owner)
    local path = "/v1/trips/" .. trip.id
    warm(owner, path)
    return owner, trip, path
end

local function probe_count()
    return tonumber(env.psql_value("select last_value from cache_probe_seq"))
end

describe("result cache", function()
    local original, module_path, reloads

    local function reload_and_wait()
        local before = fault.stats().reloads
        env.hup()
        assert(env.wait_until(function() return fault.stats().reloads > before end, 10, 0.05),
               "the reload did not happen")
    end

    setup(function()
        env.need("pid", "bundle_dir", "dsn_admin", "admin_url")
        env.psql([[
create sequence if not exists public.cache_probe_seq;
create or replace view public.cache_probe as select nextval('public.cache_probe_seq') as n;
create or replace view public.cache_probe_slow as
  select nextval('public.cache_probe_seq') as n from pg_sleep(0.3);
grant select on public.cache_probe, public.cache_probe_slow to anon, authenticated, service_role;
grant usage on sequence public.cache_probe_seq to anon, authenticated, service_role;
]])
        original = assert(env.read_file(policy_path()))
        env.write_file(policy_path(), test_policy(original))
        module_path = env.install_module("zz_cache_test.lua", MODULE, function()
            return (get(nil, "/v1/_test/cache/sql")) == 200
        end)
        reloads = fault.stats().reloads
    end)

    teardown(function()
        if original then env.write_file(policy_path(), original) end
        env.remove_module(module_path)
    end)

    it("answers a repeated GET from the cache, with X-Cache, Age and ETag, and 304s a match", function()
        local owner = api.user()
        local heard = stats().heard
        local trip = api.trip(owner)
        local path = "/v1/trips/" .. trip.id
        -- the insert's NOTIFY echo first, so the first read is stored (and carries its ETag)
        assert.truthy(env.wait_until(function() return stats().heard > heard end, 2, 0.01))
        local s1, b1, h1 = get(owner, path)
        assert.equals(200, s1)
        assert.equals("MISS", h1["x-cache"])
        warm(owner, path)
        local s2, b2, h2 = get(owner, path)
        assert.equals(200, s2)
        assert.equals("HIT", h2["x-cache"])
        assert.same(b1, b2)
        assert.truthy(tonumber(h2.age))
        assert.truthy(h2.etag and h2.etag:match('^"%x+"$'), "ETag " .. tostring(h2.etag))
        assert.equals(h1.etag, h2.etag)
        local s3, _, h3 = get(owner, path, { ["If-None-Match"] = h2.etag })
        assert.equals(304, s3)
        assert.equals(h2.etag, h3.etag)
        local s4, _, h4 = get(owner, path, { ["If-None-Match"] = '"0000000000000000"' })
        assert.equals(200, s4)
        assert.equals("HIT", h4["x-cache"])
        -- Cache-Control: no-cache: the bundle answers, the cache is neither read nor written
        local s5, b5, h5 = get(owner, path, { ["Cache-Control"] = "no-cache" })
        assert.equals(200, s5)
        assert.equals("BYPASS", h5["x-cache"])
        assert.same(b1, b5)
        assert.equals("BYPASS", select(3, get(owner, path, { ["Cache-Control"] = "max-age=0" }))
                      ["x-cache"])
        assert.equals("HIT", select(3, get(owner, path, { ["Cache-Control"] = "max-age=600" }))
                      ["x-cache"])
    end)

    it("never serves one user's cached answer to another (RLS decides, per user)", function()
        local owner, stranger, viewer, editor = api.user(), api.user(), api.user(), api.user()
        local trip = api.trip(owner)
        api.share(owner, trip.id, viewer, "view")
        api.share(owner, trip.id, editor, "edit")
        local path = "/v1/trips/" .. trip.id
        assert.equals(200, (get(owner, path)))
        warm(owner, path)
        -- the stranger's request has its own key: Postgres answers, under RLS: not found
        local s, body, h = get(stranger, path)
        assert.equals(404, s, cjson.encode(body))
        assert.equals("MISS", h["x-cache"])
        local s2, _, h2 = get(stranger, path)
        assert.equals(404, s2)
        assert.equals("MISS", h2["x-cache"])         -- errors are not stored
        -- the viewer gets their own entry, then hits it
        local sv, _, hv = get(viewer, path)
        assert.equals(200, sv)
        assert.equals("MISS", hv["x-cache"])
        warm(viewer, path)
        -- a collaborator with other rights: an entry of their own too
        local se, _, he = get(editor, path)
        assert.equals(200, se)
        assert.equals("MISS", he["x-cache"])
        warm(editor, path)
        -- the editor may change it; the viewer may not, and their entries differ
        assert.equals(200, (api.call(editor, "PATCH", path, { name = "Edited" })))
        local sp, bp = api.call(viewer, "PATCH", path, { name = "Viewer edit" })
        assert.is_true(sp == 403 or sp == 404, tostring(sp) .. " " .. cjson.encode(bp))
        local _, bv, hv2 = get(viewer, path)
        assert.equals("Edited", bv.name)
        assert.equals("MISS", hv2["x-cache"])        -- the editor's write reached every entry
        -- anonymous: 401 before the cache is consulted
        assert.equals(401, (get(nil, path)))
    end)

    it("shows tide's own PATCH in the next GET", function()
        local owner, _, path = cached_trip()
        local ps = api.call(owner, "PATCH", path, { name = "Renamed by PATCH" })
        assert.equals(200, ps)
        local s, body, h = get(owner, path)
        assert.equals(200, s)
        assert.equals("Renamed by PATCH", body.name)
        assert.equals("MISS", h["x-cache"])
        -- and the owner's cached trip list too (it reads the whole table)
        warm(owner, "/v1/trips")
        api.trip(owner, { name = "Another one" })
        local _, list, hl = get(owner, "/v1/trips")
        assert.equals("MISS", hl["x-cache"])
        local names = {}
        for _, t in ipairs(list) do names[t.name] = true end
        assert.truthy(names["Another one"])
    end)

    it("hides a trip from a removed collaborator at once", function()
        local owner, viewer = api.user(), api.user()
        local trip = api.trip(owner)
        api.share(owner, trip.id, viewer, "view")
        local path = "/v1/trips/" .. trip.id
        assert.equals(200, (get(viewer, path)))
        warm(viewer, path)
        local ds = api.call(owner, "DELETE", path .. "/collaborators/" .. viewer.id)
        assert.equals(204, ds)
        local s, _, h = get(viewer, path)
        assert.equals(404, s)
        assert.equals("MISS", h["x-cache"])
    end)

    it("sends 100 concurrent misses for one key to Postgres once (single-flight)", function()
        env.psql("select 1")   -- settle
        assert.equals(200, (http.request("POST", "/admin/cache/flush",
                                         { url = env.admin_url, token = env.admin_token })))
        local before = probe_count()
        local coalesced = stats().scopes.public.coalesced
        local calls = {}
        fault.request_headers = nil            -- no bypass: these go through the cache
        for i = 1, 100 do
            calls[i] = fault.start(nil, "GET", "/v1/_test/cache/slow", nil, i, 15)
        end
        local deadline = env.now() + 20
        while fault.poll(calls, 0.5) > 0 and env.now() < deadline do end
        fault.request_headers = { ["Cache-Control"] = "no-cache" }
        local values, xc = {}, {}
        for _, c in ipairs(calls) do
            assert.equals(200, c.status, tostring(c.err))
            values[cjson.encode(c.body)] = true
            xc[c.headers["x-cache"]] = (xc[c.headers["x-cache"]] or 0) + 1
        end
        assert.equals(1, probe_count() - before, "queries Postgres ran for 100 requests")
        local n = 0
        for _ in pairs(values) do n = n + 1 end
        assert.equals(1, n, "every caller got the one answer")
        -- some arrived after it was stored (HIT), the rest waited for it (coalesced)
        assert.equals(100, (xc.MISS or 0) + (xc.HIT or 0))
        assert.truthy(stats().scopes.public.coalesced > coalesced or (xc.HIT or 0) == 99)
    end)

    it("serves a stale entry while one background request refreshes it", function()
        local _, first, h0 = get(nil, "/v1/_test/cache/swr")
        assert.truthy(h0["x-cache"] == "MISS" or h0["x-cache"] == "HIT")
        env.sleep(0.7)                                   -- past the 0.5 s ttl
        local before = probe_count()
        local _, stale, h1 = get(nil, "/v1/_test/cache/swr")
        assert.equals("STALE", h1["x-cache"])
        assert.same(first, stale)
        -- the refresh lands: one query, then a fresh answer with the new number
        local fresh = env.wait_until(function()
            local _, b, h = get(nil, "/v1/_test/cache/swr")
            return h["x-cache"] == "HIT" and cjson.encode(b) ~= cjson.encode(first) and b
        end, 5, 0.05)
        assert.truthy(fresh, "no refreshed entry")
        assert.equals(1, probe_count() - before)
    end)

    it("refreshes a stale entry of a route with params with the request's own params", function()
        -- the refresh runs a copy of the request after the stale answer went out (and the
        -- request was freed): the router's params must be the copy's
        local path = "/v1/_test/cache/swr/a%20name-" .. env.uuid():sub(1, 8)
        local want = path:match("[^/]+$"):gsub("%%20", " ")
        local _, first = get(nil, path)
        assert.equals(want, first.name)
        env.sleep(0.7)                                   -- past the 0.5 s ttl
        local _, stale, h1 = get(nil, path)
        assert.equals("STALE", h1["x-cache"])
        assert.same(first, stale)
        local fresh = env.wait_until(function()
            local _, b, h = get(nil, path)
            return h["x-cache"] == "HIT" and cjson.encode(b) ~= cjson.encode(first) and b
        end, 5, 0.05)
        assert.truthy(fresh, "no refreshed entry")
        assert.equals(want, fresh.name)
    end)

    it("does not store answers whose reads cannot say what they depend on (db.sql)", function()
        local _, a = get(nil, "/v1/_test/cache/sql")
        local _, b, h = get(nil, "/v1/_test/cache/sql")
        assert.equals("MISS", h["x-cache"])
        assert.are_not.same(a, b)
    end)

    it("stays within cache.max_bytes while 10x that many bytes of distinct keys pass", function()
        local c0 = stats()
        local max = c0.max_bytes
        local n = math.ceil(10 * max / 65536)
        local worst = 0
        for i = 1, n do
            local s, body = get(nil, "/v1/_test/cache/blob/" .. i)
            assert.equals(200, s)
            assert.is_true(body.stored, cjson.encode(body))
            if i % 16 == 0 then
                local b = stats().bytes
                if b > worst then worst = b end
            end
        end
        local c1 = stats()
        assert.truthy(worst <= max, worst .. " > " .. max)
        assert.truthy(c1.bytes <= max)
        assert.truthy(c1.evictions > c0.evictions)
    end)

    it("tide.cache.set answers a refused store with an error table and a stable code",
       function()
        local big = math.floor(stats().max_bytes / 8) + 1
        local s, body = get(nil, "/v1/_test/cache/refused/" .. big)
        assert.equals(200, s)
        assert.is_false(body.raced.stored)
        assert.equals("TIDE_CACHE_RACED", body.raced.err.code)
        assert.equals("tide.error", body.raced.err.is_error)
        assert.is_false(body.big.stored)
        assert.equals("TIDE_CACHE_TOO_BIG", body.big.err.code)
        assert.equals("tide.error", body.big.err.is_error)
        assert.is_string(body.big.err.message)
        assert.is_number(body.big.err.status)
    end)

    it("keeps script values per identity (tide.cache) and drops them by tag", function()
        local a, b = api.user(), api.user()
        local _, first = get(a, "/v1/_test/cache/script/x")
        assert.equals(cjson.null, first.value)
        local _, again = get(a, "/v1/_test/cache/script/x")
        assert.equals(a.id, again.value)
        local _, other = get(b, "/v1/_test/cache/script/x")
        assert.equals(cjson.null, other.value)          -- user scope: b has none yet
        assert.equals(200, (http.request("POST", "/admin/cache/flush?tag=script-tag",
                                         { url = env.admin_url, token = env.admin_token })))
        local _, gone = get(a, "/v1/_test/cache/script/x")
        assert.equals(cjson.null, gone.value)
    end)

    it("caches db.select with cache = {...} by statement and parameters", function()
        local before = probe_count()
        local _, a = get(nil, "/v1/_test/cache/dbcache")
        local _, b = get(nil, "/v1/_test/cache/dbcache")
        assert.same(a, b)
        assert.equals(1, probe_count() - before)
    end)

    it("keeps unrelated entries across a reload that changes one rule's ttl", function()
        local owner, _, path = cached_trip()
        get(nil, "/v1/destinations/popular")
        assert.equals("HIT", select(3, get(nil, "/v1/destinations/popular"))["x-cache"])
        env.write_file(policy_path(), test_policy(original, 31))
        reload_and_wait()
        assert.equals("MISS", select(3, get(owner, path))["x-cache"])     -- its rule changed
        assert.equals("HIT", select(3, get(nil, "/v1/destinations/popular"))["x-cache"])
        env.write_file(policy_path(), test_policy(original))
        reload_and_wait()
    end)

    it("refuses a policy rule for a route that does not exist, and keeps serving", function()
        local before = fault.stats().reload_failures
        env.write_file(policy_path(), test_policy(original):gsub("routes = {\n",
            'routes = {\n    ["GET /v1/no/such/route"] = { ttl = 5, scope = "public" },\n', 1))
        env.hup()
        assert.truthy(env.wait_until(function()
            return fault.stats().reload_failures > before
        end, 10, 0.05))
        env.write_file(policy_path(), test_policy(original))
        reload_and_wait()
        assert.equals(200, (get(nil, "/v1/destinations/popular")))
    end)

    it("flushes everything on POST /admin/cache/flush and refuses other methods", function()
        get(nil, "/v1/destinations/popular")
        assert.equals("HIT", select(3, get(nil, "/v1/destinations/popular"))["x-cache"])
        local s, body = http.request("POST", "/admin/cache/flush",
                                     { url = env.admin_url, token = env.admin_token })
        assert.equals(200, s)
        assert.equals("all", body.flushed)
        assert.equals("MISS", select(3, get(nil, "/v1/destinations/popular"))["x-cache"])
        assert.equals(405, (http.request("GET", "/admin/cache/flush", { url = env.admin_url })))
        assert.equals(400, (http.request("POST", "/admin/cache/flush?x=1",
                                         { url = env.admin_url, token = env.admin_token })))
        assert.truthy(reloads)
    end)
end)
