-- tide.cachetags: the tags reads depend on and writes invalidate, and the policy's checks.
local cachetags = require "tide.cachetags"

local POLICY = {
    routes = { ["GET /v1/trips/:id"] = { ttl = 30, scope = "user", stale_if_error = 60 } },
    tables = {
        trips = { key = "id", depends = { "trip_collaborators" } },
        trip_collaborators = { key = "trip_id" },
        users = { key = "id" },
    },
    functions = { user_stats = { "trips", "search_history" } },
}

local function set(list)
    local s = {}
    for _, v in ipairs(list) do s[v] = true end
    return s
end

describe("tide.cachetags", function()
    before_each(function() cachetags._set_policy(POLICY) end)
    after_each(function() cachetags._set_policy(nil) end)

    it("tags a keyed read with the row and its dependencies' rows", function()
        assert.same(set { "trips/7", "trips/*", "trip_collaborators/7", "trip_collaborators/*" },
                    set(cachetags.read("trips", { id = 7 })))
        assert.same(set { "trips/7", "trips/*", "trip_collaborators/7", "trip_collaborators/*" },
                    set(cachetags.read("trips", { id = { eq = 7 } })))
        -- uuids lower-cased, so a key is one tag however it was written
        assert.same(set { "users/abcd-ef", "users/*" },
                    set(cachetags.read("users", { id = "ABCD-EF" })))
    end)

    it("tags any other read with the whole tables", function()
        assert.same(set { "trips", "trip_collaborators" }, set(cachetags.read("trips", {})))
        assert.same(set { "trips", "trip_collaborators" },
                    set(cachetags.read("trips", { id = { gt = 7 } })))
        assert.same(set { "trips", "trip_collaborators" },
                    set(cachetags.read("trips", { id = { eq = 7, neq = 8 } })))
        assert.same(set { "trips", "trip_collaborators" }, set(cachetags.read("trips", { id = 1.5 })))
        assert.same({ "search_history" }, cachetags.read("search_history", { id = 1 }))
    end)

    it("tags a read with embeds with the embedded tables, whole, and their depends", function()
        assert.same(set { "users/u1", "users/*", "trips", "trip_collaborators" },
                    set(cachetags.read("users", { id = "u1" }, { "trips" })))
        assert.same(set { "trip_collaborators/7", "trip_collaborators/*", "users",
                          "search_history" },
                    set(cachetags.read("trip_collaborators", { trip_id = 7 },
                                       { "users", "search_history" })))
        -- any write to an embedded table reaches the read
        local r = set(cachetags.read("trip_collaborators", { trip_id = 7 }, { "users" }))
        assert.truthy(r[cachetags.write("users", { id = "u9" })[1]])
    end)

    it("tags writes so that every read that could see them is dropped", function()
        assert.same({ "trips", "trips/7" }, cachetags.write("trips", { id = 7 }))
        assert.same({ "trips", "trips/*" }, cachetags.write("trips", { user_id = "u" }))
        -- the patch moves the key itself
        assert.same({ "trips", "trips/*" }, cachetags.write("trips", { id = 7 }, nil, { id = 8 }))
        -- inserted rows: their keys; rows without one have new keys no read has seen
        assert.same({ "trips", "trips/1", "trips/2" },
                    cachetags.write("trips", nil, { { id = 1 }, { id = 2 }, { name = "x" } }))
        -- an upsert without the key may update any row
        assert.same({ "trips", "trips/*" },
                    cachetags.write("trips", nil, { { name = "x" } }, nil, true))
        -- too many keys: one tag for all
        local rows = {}
        for i = 1, 65 do rows[i] = { id = i } end
        assert.same({ "trips", "trips/*" }, cachetags.write("trips", nil, rows))
        -- a table without a key: every read of it
        assert.same({ "search_history", "search_history/*" },
                    cachetags.write("search_history", { id = 1 }))
        -- a trip_collaborators write reaches the trip read through depends
        local w = cachetags.write("trip_collaborators", { trip_id = 7, user_id = "u" })
        local r = set(cachetags.read("trips", { id = 7 }))
        assert.truthy(r[w[2]])
    end)

    it("tags rpc reads by the policy's functions, and says when it cannot", function()
        assert.same({ "trips", "search_history" }, cachetags.rpc("user_stats"))
        assert.is_nil(cachetags.rpc("match_destinations"))
    end)

    it("refuses malformed policies with the key at fault", function()
        local bad = {
            { { routes = { ["POST /x"] = { ttl = 1, scope = "user" } } }, "only GET" },
            { { routes = { ["GET /x"] = { ttl = 0, scope = "user" } } }, "ttl" },
            { { routes = { ["GET /x"] = { ttl = 1, scope = "everyone" } } }, "scope" },
            { { routes = { ["GET /x"] = { ttl = 1, scope = "user", tll = 2 } } }, "unknown key 'tll'" },
            { { routes = { ["GET /x"] = { ttl = 1, scope = "user", stale_if_error = -1 } } },
              "stale_if_error" },
            { { routes = { ["GET /x"] = { ttl = 1, scope = "user", vary = { "a b" } } } }, "vary" },
            { { tables = { trips = { key = "id; drop" } } }, "key" },
            { { tables = { trips = { depends = { 1 } } } }, "depends" },
            { { functions = { f = "trips" } }, "functions.f" },
            { { routs = {} }, "unknown key 'routs'" },
        }
        for _, case in ipairs(bad) do
            cachetags._set_policy(case[1])
            local ok, err = pcall(cachetags.policy)
            assert.is_false(ok)
            assert.truthy(tostring(err):find(case[2], 1, true), tostring(err))
        end
    end)

    it("fingerprints the tables and functions, not the routes", function()
        local a = cachetags.policy().fingerprint
        local p2 = { routes = {}, tables = POLICY.tables, functions = POLICY.functions }
        cachetags._set_policy(p2)
        assert.equals(a, cachetags.policy().fingerprint)
        cachetags._set_policy({ tables = { trips = { key = "id" } } })
        assert.are_not.equal(a, cachetags.policy().fingerprint)
    end)

    it("loads the shipped policies/cache.lua", function()
        cachetags._set_policy(nil)
        local p = cachetags.policy()
        assert.truthy(p.routes["GET /v1/trips/:id"])
        assert.equals("public", p.routes["GET /v1/destinations/popular"].scope)
    end)
end)
