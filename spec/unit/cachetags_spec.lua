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

local UUID = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"

describe("tide.cachetags", function()
    before_each(function()
        cachetags._set_policy(POLICY)
        cachetags.learn(nil)
    end)
    after_each(function()
        cachetags._set_policy(nil)
        cachetags.learn(nil)
    end)

    it("tags a keyed read with the row and its dependencies' rows", function()
        assert.same(set { "trips/7", "trips/*", "trip_collaborators/7", "trip_collaborators/*" },
                    set(cachetags.read("trips", { id = 7 })))
        assert.same(set { "trips/7", "trips/*", "trip_collaborators/7", "trip_collaborators/*" },
                    set(cachetags.read("trips", { id = { eq = 7 } })))
        -- uuids lower-cased, so a key is one tag however it was written
        assert.same(set { "users/" .. UUID, "users/*" },
                    set(cachetags.read("users", { id = UUID:upper() })))
    end)

    it("tags a key by the value Postgres compares, however the client spelled it", function()
        local row = set { "trips/1", "trips/*", "trip_collaborators/1", "trip_collaborators/*" }
        local whole = set { "trips", "trip_collaborators" }
        local user = set { "users/" .. UUID, "users/*" }
        local spelled = { "01", "+1", " 1", "1\n", "\t+0001 " }
        local uuids = { UUID:gsub("%-", ""), "{" .. UUID .. "}", "{" .. UUID:upper() .. "}",
                        "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11" }
        -- types unknown (a script's read before /rest/v1 read the catalog): only the canonical
        -- text names the row; another spelling reads the whole table, never another row
        assert.same(row, set(cachetags.read("trips", { id = { eq = "1" } })))
        for _, s in ipairs(spelled) do
            assert.same(whole, set(cachetags.read("trips", { id = { eq = s } })), s)
            assert.same({ "trips", "trips/*" }, cachetags.write("trips", { id = s }), s)
        end
        for _, s in ipairs(uuids) do
            assert.same({ "users" }, cachetags.read("users", { id = s }), s)
            assert.same({ "users", "users/*" }, cachetags.write("users", nil, { { id = s } }), s)
        end
        -- types known: every spelling is the row
        cachetags.learn({ trips = { id = "bigint" }, trip_collaborators = { trip_id = "bigint" },
                          users = { id = "uuid" } })
        for _, s in ipairs(spelled) do
            assert.same(row, set(cachetags.read("trips", { id = { eq = s } })), s)
            assert.same({ "trips", "trips/1" }, cachetags.write("trips", { id = s }), s)
            assert.same({ "trip_collaborators", "trip_collaborators/1" },
                        cachetags.write("trip_collaborators", { trip_id = s, user_id = UUID }), s)
        end
        assert.same({ "trips", "trips/-5", "trips/0" },
                    cachetags.write("trips", nil, { { id = "-005" }, { id = "-0" } }))
        for _, s in ipairs(uuids) do
            assert.same(user, set(cachetags.read("users", { id = s })), s)
            assert.same({ "users", "users/" .. UUID }, cachetags.write("users", { id = s }), s)
        end
    end)

    it("falls back to the table's tags for a spelling or a type it cannot be sure of", function()
        cachetags.learn({ trips = { id = "bigint" }, users = { id = "uuid" },
                          trip_collaborators = { trip_id = "integer" } })
        local whole = set { "trips", "trip_collaborators" }
        -- not canonicalised: Postgres 16's 0x10 and 1_000, and what Postgres refuses for bigint
        for _, s in ipairs { "0x10", "1_000", "1.0", "1e3", "", " ", "+", "1 2", "١" } do
            assert.same(whole, set(cachetags.read("trips", { id = s })), s)
            assert.same({ "trips", "trips/*" }, cachetags.write("trips", { id = s }), s)
        end
        assert.same(whole, set(cachetags.read("trips", { id = 1.5 })))
        for _, s in ipairs { UUID .. "-", "-" .. UUID, UUID:sub(1, 8) .. "--" .. UUID:sub(10),
                             " " .. UUID, "{" .. UUID, UUID .. "}", UUID:sub(1, 35),
                             "a0e-ebc999c0b4ef8bb6d6bb9bd380a11",
                             "a0-eebc999c0b4ef8bb6d6bb9bd380a11",
                             "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1-1" } do
            assert.same({ "users" }, cachetags.read("users", { id = s }), s)
        end
        assert.same({ "users" }, cachetags.read("users", { id = 7 }))
        -- types whose equal values print differently (numeric 1 = 1.0), or tide does not know
        for _, ty in ipairs { "numeric", "numeric(12,2)", "double precision", "real",
                              "timestamp with time zone", "date", "character(8)", "citext",
                              "my_domain", "boolean", "jsonb", false } do
            cachetags.learn({ trips = { id = ty } })
            local n = tostring(ty)
            assert.same(whole, set(cachetags.read("trips", { id = "1" })), n)
            assert.same(whole, set(cachetags.read("trips", { id = 1 })), n)
            assert.same({ "trips", "trips/*" }, cachetags.write("trips", { id = 1 }), n)
            assert.same({ "trips", "trips/*" }, cachetags.write("trips", nil, { { id = "1" } }),
                        n)
        end
        -- text is compared exactly (lower-cased, as the trigger sends it); text outside ASCII
        -- may lower-case differently in Postgres
        for _, ty in ipairs { "text", "character varying", "character varying(20)" } do
            cachetags.learn({ trips = { id = ty } })
            assert.same(set { "trips/ab-1", "trips/*", "trip_collaborators/ab-1",
                              "trip_collaborators/*" },
                        set(cachetags.read("trips", { id = "Ab-1" })), ty)
            assert.same({ "trips", "trips/ab-1" }, cachetags.write("trips", { id = "aB-1" }), ty)
            assert.same(whole, set(cachetags.read("trips", { id = "K\226\132\170" })), ty)
            assert.same(whole, set(cachetags.read("trips", { id = 1 })), ty)
        end
    end)

    it("learns the key columns' types, and forgets them", function()
        cachetags.learn({ trips = { id = "bigint", name = "text" } })
        assert.same({ "trips", "trips/7" }, cachetags.write("trips", { id = "007" }))
        cachetags.learn({ trips = { name = "text" } })            -- the key column unknown
        assert.same({ "trips", "trips/*" }, cachetags.write("trips", { id = "007" }))
        assert.same({ "trips", "trips/7" }, cachetags.write("trips", { id = "7" }))
        cachetags.learn({ trips = { id = "bigint" } })
        cachetags.learn(nil)
        assert.same({ "trips", "trips/*" }, cachetags.write("trips", { id = "007" }))
        assert.has_error(function() cachetags.learn("trips") end)
        assert.has_error(function() cachetags.learn({ trips = { id = 5 } }) end)
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
        assert.same(set { "users/" .. UUID, "users/*", "trips", "trip_collaborators" },
                    set(cachetags.read("users", { id = UUID }, { "trips" })))
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
