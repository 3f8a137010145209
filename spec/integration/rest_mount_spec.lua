-- spec/integration/rest_mount_spec.lua - /rest/v1 is tide's (bindings/tide/rest/), mounted by
-- the one-line scripts/rest.lua: a team whose scripts/ folder is its own (here one script of
-- its own) keeps /rest/v1 by adding that line, and a bundle without it serves no /rest/v1 at
-- all (404) and needs no policies/exposure.lua. Each case runs a tide of the spec's own
-- (spec/helpers/spawn.lua) on a bundle made for it; the data comes through the suite's tide.

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"
local http = require "spec.helpers.http"
local spawn = require "spec.helpers.spawn"

local TEAM_SCRIPT = [[
return {
    ["GET /v1/team/ping"] = function() return { pong = true } end,
}
]]

-- A bundle whose scripts/ holds the team's own script, and scripts/rest.lua when `mount`; the
-- shipped policies, less the cache rules for routes this bundle does not have, and less
-- policies/exposure.lua when `exposure` is false.
local function team_bundle(mount, exposure)
    local dir = spawn.bundle()
    local mount_line = assert(env.read_file(dir .. "/scripts/rest.lua"))
    assert(select(2, env.run("rm -f " .. env.quote(dir) .. "/scripts/*.lua")))
    env.write_file(dir .. "/scripts/team.lua", TEAM_SCRIPT)
    if mount then
        env.write_file(dir .. "/scripts/rest.lua", mount_line)
    end
    local cache = dir .. "/policies/cache.lua"
    local text, n = assert(env.read_file(cache)):gsub("routes = %b{}", "routes = {}", 1)
    assert(n == 1, "policies/cache.lua: no routes table")
    env.write_file(cache, text)
    if exposure == false then
        assert(os.remove(dir .. "/policies/exposure.lua"))
    end
    return dir
end

describe("/rest/v1 mounted by scripts/rest.lua", function()
    local a, trip, dir, t

    setup(function()
        env.need("bin", "dsn_admin")
        a = api.user()
        trip = api.trip(a, { name = "mounted-" .. env.uuid():sub(1, 8) })
    end)

    after_each(function()
        if t and spawn.alive(t) then spawn.stop(t) end
        spawn.remove(dir)
        t, dir = nil, nil
    end)

    local function get(path)
        return http.request("GET", path, { url = t.url, token = a.token })
    end

    it("a scripts/ folder of the team's own plus the one-line mount serves /rest/v1", function()
        local mount = assert(env.read_file("scripts/rest.lua"))
        local code = {}
        for line in mount:gmatch("[^\n]+") do
            if not line:match("^%s*%-%-") then code[#code + 1] = line end
        end
        assert.are.equal(1, #code, "scripts/rest.lua is one line of code:\n" .. mount)

        dir = team_bundle(true)
        t = spawn.tide(dir)
        local status, body = get("/v1/team/ping")
        assert.are.equal(200, status)
        assert.are.same({ pong = true }, body)
        local rows
        status, rows = get("/rest/v1/trips?select=id,name&id=eq." .. trip.id)
        assert.are.equal(200, status, spawn.log(t))
        assert.are.same({ { id = trip.id, name = trip.name } }, rows)
        -- the routes keep answering a body they cannot take in PostgREST's code
        status, body = http.request("POST", "/rest/v1/trips",
                                    { url = t.url, token = a.token, body = '{"name":' })
        assert.are.equal(400, status)
        assert.are.equal("PGRST102", body.code)
        status, body = get("/rest/v1/no_such_table")
        assert.are.equal(404, status)
        assert.are.equal("PGRST205", body.code)
    end)

    it("without the mount there is no /rest/v1, and no policies/exposure.lua is needed", function()
        dir = team_bundle(false, false)
        t = spawn.tide(dir)
        local status, body = get("/v1/team/ping")
        assert.are.equal(200, status)
        assert.are.same({ pong = true }, body)
        status, body = get("/rest/v1/trips?select=id&id=eq." .. trip.id)
        assert.are.equal(404, status)
        assert.are.equal("TIDE_NOT_FOUND", body.code)
        status, body = http.request("POST", "/rest/v1/trips",
                                    { url = t.url, token = a.token, body = '{"name":' })
        assert.are.equal(404, status)
        assert.are.equal("TIDE_NOT_FOUND", body.code)
    end)

    it("with the mount, a bundle without policies/exposure.lua does not load", function()
        dir = team_bundle(true, false)
        assert.has_error(function() spawn.tide(dir) end)
        local log = env.read_file(dir .. "/tide.err") or ""
        assert.matches("policies/exposure%.lua: not found", log)
    end)
end)
