-- spec/integration/cache_keys_spec.lua - one result-cache tag per row, however a client spells
-- its key (docs/cache.md "What is stored", docs/security.md "One tag per row, whatever the
-- spelling"). Postgres reads bigint 7 as "07", "+7", " 7" and a uuid in upper case, without
-- hyphens or in braces; writes and the NOTIFY trigger name the row by the text Postgres
-- prints. With a cache rule for /rest/v1 (as docs/rest.md suggests), a read under any
-- spelling must be dropped by a write to the row:
--   * Postgres itself says the generated spellings are equal, and tide tags each read of them
--     as the canonical row (an admin flush of `trips/<id>` alone drops them all), while the
--     spellings tide does not canonicalise (0x.., 1_000) read the whole table;
--   * a collaborator removed from a trip is not served it from a read spelled `id=eq.0<id>`;
--   * a write from elsewhere (the trigger's NOTIFY) drops every spelling's entry;
--   * with cache.channel = "" (a tide of the spec's own: only tide's own invalidation), a
--     PATCH through /rest/v1 with a spelled key reaches GET /v1/trips/:id, and the business
--     routes' writes reach /rest/v1 reads under any spelling (and /v1/trips/0<id>).
-- The cache policy gets a /rest/v1 rule with a long ttl (a HIT after the write can only be
-- the stale entry), and is put back in teardown. Spellings are random (seed printed; replay
-- with TIDE_CACHETAGS_SEED=n).

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"
local http = require "spec.helpers.http"
local fault = require "spec.helpers.fault"
local rest = require "spec.helpers.rest"
local spawn = require "spec.helpers.spawn"
local spellings = require "spec.helpers.spellings"
local cjson = require "cjson.safe"

local SEED = tonumber(os.getenv("TIDE_CACHETAGS_SEED") or "") or os.time()
local RULE = '    ["GET /rest/v1/:table"] = { ttl = 600, scope = "user" },\n'

local function with_rule(text)
    return (text:gsub("routes = {\n", "routes = {\n" .. RULE, 1))
end

local enc = rest.enc

-- status, body, headers of a GET as user on url (default: the suite's tide).
local function get(user, path, url)
    local status, body, h = http.request("GET", path, { url = url, token = user.token })
    return status, body, h or {}
end

local function xcache(user, path, url)
    return select(3, get(user, path, url))["x-cache"]
end

-- Reads path until it is a HIT (at most 2 s: a write's NOTIFY echo may drop a first entry).
local function warm(user, path, url)
    assert.truthy(env.wait_until(function() return xcache(user, path, url) == "HIT" end, 2, 0.01),
                  "no HIT for " .. path)
end

-- A SQL text literal for any string (control characters too).
local function sql_text(s)
    return "convert_from(decode('" .. s:gsub(".", function(c)
        return string.format("%02x", c:byte())
    end) .. "', 'hex'), 'UTF8')"
end

-- Whether Postgres reads every spelling as c under type ty (asked in one query).
local function pg_equal(list, c, ty)
    local items = {}
    for i, s in ipairs(list) do items[i] = sql_text(s) end
    return env.psql_value("select bool_and(s::" .. ty .. " = " .. env.lit(c) .. "::" .. ty ..
                          ") from unnest(array[" .. table.concat(items, ",") .. "]) s")
end

local function flush(tag, url)
    local status = http.request("POST", "/admin/cache/flush?tag=" .. tag,   -- taken as sent
                                { url = url or env.admin_url, token = env.admin_token })
    assert.equals(200, status)
end

describe("result cache keys spelled many ways (seed " .. SEED .. ")", function()
    local policy_path, original, rnd

    setup(function()
        env.need("pid", "bundle_dir", "dsn_admin", "admin_url", "bin")
        policy_path = env.bundle_dir .. "/policies/cache.lua"
        original = assert(env.read_file(policy_path))
        env.write_file(policy_path, with_rule(original))
        fault.reload()
        math.randomseed(SEED)
        rnd = math.random
    end)

    teardown(function()
        if original then
            env.write_file(policy_path, original)
            fault.reload()
        end
    end)

    it("tags every spelling Postgres reads as the row's key with the row's one tag", function()
        local owner = api.user()
        local trip = api.trip(owner)
        local c = tostring(trip.id)
        -- distinct spellings (each is an entry of its own: a repeated one would be read
        -- again after the flush below, and stored again)
        local seen = {}
        local function distinct(make, n)
            local out = {}
            for _ = 1, 50 do
                if #out == n then break end
                local s = make()
                if not seen[s] then
                    seen[s] = true
                    out[#out + 1] = s
                end
            end
            return out
        end
        seen[c] = true
        local list = distinct(function() return spellings.int_spelling(rnd, c) end, 8)
        local odd = distinct(function() return spellings.odd_int(rnd, c) end, 2)
        table.insert(list, 1, c)
        local all = {}
        for _, s in ipairs(list) do all[#all + 1] = s end
        for _, s in ipairs(odd) do all[#all + 1] = s end
        assert.equals("t", pg_equal(all, c, "bigint"))
        local uc = owner.id:lower()
        seen[uc] = true
        local ulist = distinct(function() return spellings.uuid_spelling(rnd, uc) end, 7)
        table.insert(ulist, 1, uc)
        assert.equals("t", pg_equal(ulist, uc, "uuid"))

        local function trip_path(s) return "/rest/v1/trips?select=id,name&id=eq." .. enc(s) end
        local function user_path(s) return "/rest/v1/users?select=id&id=eq." .. enc(s) end
        for _, s in ipairs(all) do
            local status, rows = get(owner, trip_path(s))
            assert.equals(200, status, cjson.encode(rows))
            assert.same({ { id = trip.id, name = trip.name } }, rows, string.format("%q", s))
            warm(owner, trip_path(s))
        end
        for _, s in ipairs(ulist) do
            local status, rows = get(owner, user_path(s))
            assert.equals(200, status, cjson.encode(rows))
            assert.same({ { id = uc } }, rows, string.format("%q", s))
            warm(owner, user_path(s))
        end
        -- only what is tagged with the row's own tag goes
        flush("trips/" .. c)
        flush("users/" .. uc)
        for _, s in ipairs(list) do
            assert.equals("MISS", xcache(owner, trip_path(s)), string.format("%q", s))
        end
        for _, s in ipairs(ulist) do
            assert.equals("MISS", xcache(owner, user_path(s)), s)
        end
        -- a spelling tide does not canonicalise is tagged with the whole table instead
        for _, s in ipairs(odd) do
            assert.equals("HIT", xcache(owner, trip_path(s)), s)
        end
        flush("trips")
        for _, s in ipairs(odd) do
            assert.equals("MISS", xcache(owner, trip_path(s)), s)
        end
    end)

    it("stops serving a trip to a removed collaborator, whatever the spelling of its id",
       function()
        local owner, viewer = api.user(), api.user()
        local trip = api.trip(owner)
        api.share(owner, trip.id, viewer, "view")
        local path = "/rest/v1/trips?select=id,name&id=eq.0" .. trip.id
        local status, rows = get(viewer, path)
        assert.equals(200, status)
        assert.equals(1, #rows)
        warm(viewer, path)
        assert.equals(204, (api.call(owner, "DELETE", "/v1/trips/" .. trip.id ..
                                     "/collaborators/" .. viewer.id)))
        local s2, rows2, h2 = get(viewer, path)
        assert.equals(200, s2)
        assert.are_not.equal("HIT", h2["x-cache"])
        assert.same({}, rows2)
    end)

    it("drops every spelling's entry when another writer changes the row (NOTIFY)", function()
        local owner = api.user()
        local trip = api.trip(owner)
        local c = tostring(trip.id)
        local paths = {}
        for i = 1, 4 do
            paths[i] = "/rest/v1/trips?select=name&id=eq." .. enc(spellings.int_spelling(rnd, c))
        end
        local uc = owner.id:lower()
        for i = 5, 8 do
            paths[i] = "/rest/v1/users?select=full_name&id=eq." ..
                       enc(spellings.uuid_spelling(rnd, uc))
        end
        -- one entry per path: the generator may spell a value the same way twice, and the
        -- second read of a path already refilled below would rightly be a HIT
        local seen, distinct = {}, {}
        for _, p in ipairs(paths) do
            if not seen[p] then seen[p] = true; distinct[#distinct + 1] = p end
        end
        paths = distinct
        for _, p in ipairs(paths) do warm(owner, p) end
        env.psql("update public.trips set name = 'Renamed by psql' where id = " .. c ..
                 "; update public.users set full_name = 'Renamed by psql' where id = " ..
                 env.lit(uc))
        for _, p in ipairs(paths) do
            local fresh = env.wait_until(function()
                local s, rows, h = get(owner, p)
                return s == 200 and h["x-cache"] ~= "HIT" and rows[1] and
                       (rows[1].name or rows[1].full_name) == "Renamed by psql"
            end, 2, 0.02)
            assert.truthy(fresh, p .. " still served as it was")
        end
    end)

    it("makes tide's own writes reach reads under any spelling (cache.channel = \"\")",
       function()
        local dir = spawn.bundle()
        local w
        finally(function()
            if w and spawn.alive(w) then spawn.stop(w) end
            spawn.remove(dir)
        end)
        local p = dir .. "/policies/cache.lua"
        env.write_file(p, with_rule(assert(env.read_file(p))))
        w = spawn.tide(dir, { env = { "TIDE_CACHE_CHANNEL=" } })
        local function call(user, method, path, body)
            return http.request(method, path, { url = w.url, token = user.token, body = body })
        end
        local owner = api.user()
        local trip = api.trip(owner)
        local id = tostring(trip.id)
        local uc = owner.id:lower()

        -- a PATCH through /rest/v1 with a spelled key reaches GET /v1/trips/:id
        local biz = "/v1/trips/" .. id
        warm(owner, biz, w.url)
        local s = call(owner, "PATCH", "/rest/v1/trips?id=eq." .. enc(" +00" .. id),
                       { name = "Renamed by /rest/v1" })
        assert.equals(204, s)
        local s2, b2, h2 = get(owner, biz, w.url)
        assert.equals(200, s2)
        assert.equals("MISS", h2["x-cache"])
        assert.equals("Renamed by /rest/v1", b2.name)

        -- the business routes' writes reach /rest/v1 reads under any spelling
        local paths = { "/rest/v1/trips?select=name&id=eq.0" .. id,
                        "/rest/v1/trips?select=name&id=eq." .. enc("+" .. id),
                        "/v1/trips/00" .. id }
        for _, path in ipairs(paths) do warm(owner, path, w.url) end
        assert.equals(200, (call(owner, "PATCH", biz, { name = "Renamed by /v1" })))
        for _, path in ipairs(paths) do
            local s3, b3, h3 = get(owner, path, w.url)
            assert.equals(200, s3)
            assert.equals("MISS", h3["x-cache"], path)
            assert.equals("Renamed by /v1", b3.name or b3[1].name, path)
        end

        local upaths = { "/rest/v1/users?select=full_name&id=eq." .. enc(uc:gsub("%-", "")),
                         "/rest/v1/users?select=full_name&id=eq." ..
                         enc("{" .. uc:upper() .. "}") }
        for _, path in ipairs(upaths) do warm(owner, path, w.url) end
        assert.equals(200, (call(owner, "PATCH", "/v1/users/me", { full_name = "New Name" })))
        for _, path in ipairs(upaths) do
            local s4, b4, h4 = get(owner, path, w.url)
            assert.equals(200, s4)
            assert.equals("MISS", h4["x-cache"], path)
            assert.equals("New Name", b4[1].full_name)
        end
    end)
end)
