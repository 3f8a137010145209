-- spec/integration/rest_embed_spec.lua - resource embedding on GET /rest/v1/:table over HTTP
-- against the demo schema (tide/rest/embed.lua): to-many (an array, [] when none), to-one
-- (an object, or null), aliases and casts inside an embed, hints that pick one of several
-- foreign keys, PostgREST's PGRST200/PGRST201 errors, RLS applied to the embedded rows, embeds
-- beside filters/order/limit/count on the parent and with vnd.pgrst.object+json, the bounds
-- (8 embeds, one level) and the refused features, one-to-one and self-referencing keys (on
-- tables the spec creates), and the result cache dropping a cached read when a table it
-- embeds is written.
--
-- People and trips (three users, so that RLS has something to hide):
--   a owns t1 (b: view, c: edit) and t2 (no collaborators)
--   b owns t3 (c: view) - a cannot see it - and t4 (a: view)

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"
local fault = require "spec.helpers.fault"
local rest = require "spec.helpers.rest"
local cjson = require "cjson"

local call = api.call
local null = cjson.null
local get, is_error, pluck, sorted, keys = rest.get, rest.is_error, rest.pluck, rest.sorted,
                                           rest.keys

describe("/rest/v1 embedding", function()
    local a, b, c, t1, t2, t3, t4, dest

    setup(function()
        env.need("bin", "dsn_admin")
        a, b, c = api.user(), api.user(), api.user()
        dest = "E-" .. env.uuid():sub(1, 8)
        t1 = api.trip(a, { name = "t1", destination = dest })
        t2 = api.trip(a, { name = "t2", destination = dest })
        t3 = api.trip(b, { name = "t3", destination = dest })
        t4 = api.trip(b, { name = "t4", destination = dest })
        api.share(a, t1.id, b, "view")
        api.share(a, t1.id, c, "edit")
        api.share(b, t3.id, c, "view")
        api.share(b, t4.id, a, "view")
    end)

    it("to-many: the rows that hold an FK to the parent, as an array; [] when none", function()
        local status, rows = get(a, "trips?select=id,name,trip_collaborators(user_id," ..
                                    "permission_level)&destination=eq." .. dest ..
                                    "&user_id=eq." .. a.id .. "&order=name")
        assert.are.equal(200, status, cjson.encode(rows))
        assert.are.equal(2, #rows)
        assert.are.equal("t1", rows[1].name)
        assert.are.same(sorted({ b.id, c.id }), pluck(rows[1].trip_collaborators, "user_id"))
        assert.are.same({ "edit", "view" }, pluck(rows[1].trip_collaborators,
                                                  "permission_level"))
        assert.are.same({ "permission_level", "user_id" }, keys(rows[1].trip_collaborators[1]))
        assert.are.equal("t2", rows[2].name)
        assert.are.same({}, rows[2].trip_collaborators)
        -- [] in the JSON text itself, not {} or null
        local _, _, _, text = get(a, "trips?select=trip_collaborators(id),id&id=eq." .. t2.id)
        assert.are.equal('[{"trip_collaborators":[],"id":' .. t2.id .. '}]', text)
    end)

    it("to-one: the row the parent's FK points at, as an object (or null)", function()
        local status, rows = get(a, "trips?select=name,owner:users(id,email)&id=eq." .. t1.id)
        assert.are.equal(200, status, cjson.encode(rows))
        assert.are.same({ { name = "t1", owner = { id = a.id, email = a.email } } }, rows)
        -- without an alias the key is the table's name; * inside the embed
        local _, r2 = get(a, "trips?select=id,users(*)&id=eq." .. t1.id)
        assert.are.equal(a.id, r2[1].users.id)
        assert.are.equal(a.email, r2[1].users.email)
        assert.is_not_nil(r2[1].users.full_name)
        -- a NULL foreign key: null
        env.psql("UPDATE public.trip_collaborators SET added_by = NULL WHERE trip_id = " ..
                 t1.id .. " AND user_id = '" .. b.id .. "'")
        local _, r3 = get(a, "trip_collaborators?select=user_id,adder:users!added_by(id)" ..
                             "&trip_id=eq." .. t1.id .. "&order=permission_level")
        assert.are.same({ { user_id = c.id, adder = { id = a.id } },
                          { user_id = b.id, adder = null } }, r3)
    end)

    it("aliases and casts inside an embed, and the embed under an alias", function()
        local status, rows = get(a, "trips?select=trip_id:id,people:trip_collaborators(" ..
                                    "uid:user_id,level:permission_level,trip_id::text)&id=eq." ..
                                    t1.id)
        assert.are.equal(200, status, cjson.encode(rows))
        assert.are.equal(t1.id, rows[1].trip_id)
        local people = rows[1].people
        assert.are.equal(2, #people)
        for _, p in ipairs(people) do
            assert.are.equal(tostring(t1.id), p.trip_id)       -- cast to text: a string
            assert.is_string(p.uid)
            assert.is_string(p.level)
            assert.is_nil(p.user_id)
        end
        assert.are.same(sorted({ b.id, c.id }), pluck(people, "uid"))
    end)

    it("hints pick one of several foreign keys; without one it is 300 PGRST201", function()
        local status, body = get(a, "trip_collaborators?select=id,users(id)&trip_id=eq." ..
                                    t1.id)
        is_error(status, body, 300, "PGRST201")
        assert.are.equal("Could not embed because more than one relationship was found for " ..
                         "'trip_collaborators' and 'users'", body.message)
        assert.are.equal(2, #body.details)
        assert.are.same({ "many-to-one", "many-to-one" }, pluck(body.details, "cardinality"))
        assert.matches("'users!trip_collaborators_user_id_fkey'", body.hint, 1, true)
        assert.matches("'users!trip_collaborators_added_by_fkey'", body.hint, 1, true)
        -- as c, who sees her own users row (each user sees only theirs): from her share the
        -- user_id key leads to it, where added_by would lead to a's (null for c)
        for _, hint in ipairs({ "user_id", "trip_collaborators_user_id_fkey" }) do
            local s, rows = get(c, "trip_collaborators?select=user_id,who:users!" .. hint ..
                                   "(id)&trip_id=eq." .. t1.id .. "&user_id=eq." .. c.id)
            assert.are.equal(200, s, cjson.encode(rows))
            assert.are.same({ { user_id = c.id, who = { id = c.id } } }, rows)
        end
        -- from the other side: users to the collaborator rows that name them (to-many)
        status, body = get(b, "users?select=id,trip_collaborators(id)&id=eq." .. b.id)
        is_error(status, body, 300, "PGRST201")
        local s, rows = get(b, "users?select=id,on:trip_collaborators!user_id(trip_id)&id=eq." ..
                               b.id)
        assert.are.equal(200, s, cjson.encode(rows))
        assert.are.same({ tostring(t1.id) }, pluck(rows[1].on, "trip_id"))
    end)

    it("an unknown relationship is 400 PGRST200 in PostgREST's words", function()
        local status, body = get(a, "trips?select=*,destinations(*)")
        is_error(status, body, 400, "PGRST200")
        assert.are.equal("Could not find a relationship between 'trips' and 'destinations' " ..
                         "in the schema cache", body.message)
        assert.are.equal("Searched for a foreign key relationship between 'trips' and " ..
                         "'destinations' in the schema 'public', but no matches were found.",
                         body.details)
        status, body = get(a, "trips?select=*,nonexistent(*)")
        is_error(status, body, 400, "PGRST200")
        status, body = get(a, "trips?select=*,users!added_by(*)")
        is_error(status, body, 400, "PGRST200")
        assert.matches("using the hint 'added_by'", body.details, 1, true)
        -- an unknown column inside an embed names the embedded table
        status, body = get(a, "trips?select=*,users(banana)")
        is_error(status, body, 400, "42703")
        assert.are.equal("column users.banana does not exist", body.message)
        -- hidden columns stay hidden inside an embed too (policies/exposure.lua)
        status, body = get(a, "users?select=id,api_keys(key_hash)&id=eq." .. a.id)
        is_error(status, body, 400, "42703")
    end)

    it("RLS applies inside the embed: rows the caller may not see are absent or null",
       function()
        -- c collaborates on t1 (a's) and t3 (b's, which a cannot see)
        local q = "users?select=id,on:trip_collaborators!user_id(trip_id)&id=eq." .. c.id
        local _, as_c = get(c, q)
        assert.are.same(sorted({ tostring(t1.id), tostring(t3.id) }),
                        pluck(as_c[1].on, "trip_id"))
        -- a users row is its user's alone (db/migrations/009): a does not see c's at all,
        -- nor, through the trip b shares with her (t4), b's: a null to-one
        local _, as_a = get(a, q)
        assert.are.same({}, as_a)
        local _, t4_owner = get(a, "trips?select=name,owner:users(id)&id=eq." .. t4.id)
        assert.are.same({ { name = "t4", owner = null } }, t4_owner)
        -- b's trips from b's row: t3 and t4
        local _, bt = get(b, "users?select=id,trips(name)&id=eq." .. b.id)
        assert.are.same({ "t3", "t4" }, pluck(bt[1].trips, "name"))
        -- a to-many with a hidden row: a share of t3 (b's, hidden from a) that names a as
        -- the one who added it does not show in a's own row; her share of t1 does
        local d = api.user()
        env.psql("INSERT INTO public.trip_collaborators (trip_id, user_id, added_by) VALUES (" ..
                 t3.id .. ", '" .. d.id .. "', '" .. a.id .. "')")
        local _, mine = get(a, "users?select=id,added:trip_collaborators!added_by(trip_id," ..
                               "user_id)&id=eq." .. a.id)
        local added = {}
        for _, r in ipairs(mine[1].added) do added[r.user_id] = r.trip_id end
        assert.are.equal(t1.id, added[c.id])
        assert.is_nil(added[d.id])
        -- a to-one the caller may not see is null: an adder unknown to a
        local stranger = api.user()
        env.psql("UPDATE public.trip_collaborators SET added_by = '" .. stranger.id ..
                 "' WHERE trip_id = " .. t1.id .. " AND user_id = '" .. c.id .. "'")
        local _, rows = get(a, "trip_collaborators?select=user_id,adder:users!added_by(id)" ..
                               "&trip_id=eq." .. t1.id .. "&user_id=eq." .. c.id)
        assert.are.same({ { user_id = c.id, adder = null } }, rows)
        -- api_keys are strictly the owner's: nothing of b's shows through a's embed
        env.psql("INSERT INTO public.api_keys (user_id, service_name, key_name, " ..
                 "encrypted_key, key_hash) VALUES ('" .. b.id .. "', 'svc', 'k', 'x', 'y')")
        local _, ks = get(a, "users?select=id,api_keys(service_name)&id=eq." .. b.id)
        assert.are.same({}, ks)                                 -- (nor b's row itself)
        _, ks = get(b, "users?select=id,api_keys(*)&id=eq." .. b.id)
        assert.are.equal(1, #ks[1].api_keys)
        assert.are.equal("svc", ks[1].api_keys[1].service_name)
        assert.is_nil(ks[1].api_keys[1].encrypted_key)         -- hidden by the policy
        assert.is_nil(ks[1].api_keys[1].key_hash)
    end)

    it("embeds beside filters, order, limit/offset and count on the parent", function()
        local status, rows, h = get(a, "trips?select=name,n:trip_collaborators(user_id)," ..
                                       "owner:users(id)&destination=eq." .. dest ..
                                       "&order=name.desc&limit=2&offset=1",
                                    { Prefer = "count=exact" })
        -- a sees t1, t2 (own) and t4 (shared): t4, t2, t1 by name desc; offset 1 limit 2
        assert.are.equal(206, status, cjson.encode(rows))
        assert.are.equal("1-2/3", h["content-range"])
        assert.are.same({ "t2", "t1" }, { rows[1].name, rows[2].name })
        assert.are.same({}, rows[1].n)
        assert.are.equal(2, #rows[2].n)
        assert.are.equal(a.id, rows[1].owner.id)
        -- or= on the parent beside an embed
        local _, r2 = get(a, "trips?select=name,owner:users(id)&destination=eq." .. dest ..
                             "&or=(name.eq.t4,name.eq.t2)&order=name")
        assert.are.same({ { name = "t2", owner = { id = a.id } },
                          { name = "t4", owner = null } }, r2)  -- b's users row is b's alone
    end)

    it("one object with vnd.pgrst.object+json, embeds included", function()
        local obj = { Accept = "application/vnd.pgrst.object+json" }
        local status, row, h = get(a, "trips?select=name,trip_collaborators(user_id)," ..
                                      "owner:users(email)&id=eq." .. t1.id, obj)
        assert.are.equal(200, status, cjson.encode(row))
        assert.matches("application/vnd.pgrst.object%+json", h["content-type"])
        assert.are.equal("t1", row.name)
        assert.are.same({ email = a.email }, row.owner)
        assert.are.same(sorted({ b.id, c.id }), pluck(row.trip_collaborators, "user_id"))
        local body
        status, body = get(a, "trips?select=name,trip_collaborators(user_id)&destination=eq." ..
                              dest, obj)
        is_error(status, body, 406, "PGRST116")
    end)

    it("bounds: 8 embeds are served, a 9th and an embed inside an embed are refused",
       function()
        local list = {}
        for i = 1, 8 do list[i] = "e" .. i .. ":trip_collaborators(id)" end
        local status, rows = get(a, "trips?select=id," .. table.concat(list, ",") ..
                                    "&id=eq." .. t1.id)
        assert.are.equal(200, status, cjson.encode(rows))
        assert.are.equal(2, #rows[1].e8)
        list[9] = "e9:trip_collaborators(id)"
        local body
        status, body = get(a, "trips?select=id," .. table.concat(list, ",") .. "&id=eq." ..
                              t1.id)
        is_error(status, body, 400, "PGRST100")
        assert.are.equal("too many embedded resources", body.message)
        assert.are.equal("at most 8 in one request", body.details)
        status, body = get(a, "trips?select=id,trip_collaborators(id,users!user_id(id))")
        is_error(status, body, 400, "PGRST100")
        assert.matches("nested embedding", body.details, 1, true)
    end)

    it("filters, order and !inner on embedded resources are refused (PGRST100)", function()
        local base = "trips?select=id,trip_collaborators(*)&"
        for _, q in ipairs({ "trip_collaborators.permission_level=eq.view",
                             "trip_collaborators.order=created_at",
                             "trip_collaborators.limit=1" }) do
            local status, body = get(a, base .. q)
            is_error(status, body, 400, "PGRST100")
            assert.matches("on embedded resources", body.message, 1, true)
        end
        local status, body = get(a, "trips?select=id,trip_collaborators!inner(*)")
        is_error(status, body, 400, "PGRST100")
        assert.matches("!inner", body.details, 1, true)
        status, body = get(a, "trips?select=id&trip_collaborators.permission_level=eq.view")
        is_error(status, body, 400, "PGRST108")
        assert.are.equal("'trip_collaborators' is not an embedded resource in this request",
                         body.message)
    end)

    it("one-to-one (a unique FK) is an object both ways; a self-reference embeds children",
       function()
        env.need("pid")
        local sfx = env.uuid():sub(1, 8)
        local o2o, tree = "embed_o2o_" .. sfx, "embed_tree_" .. sfx
        env.psql("CREATE TABLE public." .. o2o .. " (user_id uuid PRIMARY KEY REFERENCES " ..
                 "public.users (id) ON DELETE CASCADE, bio text); " ..
                 "INSERT INTO public." .. o2o .. " VALUES ('" .. a.id .. "', 'hi'); " ..
                 "CREATE TABLE public." .. tree .. " (id int PRIMARY KEY, parent_id int " ..
                 "REFERENCES public." .. tree .. " (id), label text); " ..
                 "INSERT INTO public." .. tree .. " VALUES (1, NULL, 'root'), (2, 1, 'x'), " ..
                 "(3, 1, 'y'), (4, 2, 'z'); " ..
                 "GRANT SELECT ON public." .. o2o .. ", public." .. tree .. " TO authenticated")
        finally(function()
            env.psql("DROP TABLE IF EXISTS public." .. o2o .. ", public." .. tree)
        end)
        env.hup()                                    -- a fresh schema cache knows them
        assert(env.wait_until(function()
            return (get(a, tree .. "?select=id")) == 200
        end, 10, 0.1), "the new tables were not served")
        local status, rows = get(a, "users?select=id,p:" .. o2o .. "(bio)&id=eq." .. a.id)
        assert.are.equal(200, status, cjson.encode(rows))
        assert.are.same({ { id = a.id, p = { bio = "hi" } } }, rows)
        local _, none = get(b, "users?select=id,p:" .. o2o .. "(bio)&id=eq." .. b.id)
        assert.are.same({ { id = b.id, p = null } }, none)
        local _, back = get(a, o2o .. "?select=bio,users(id)")
        assert.are.same({ { bio = "hi", users = { id = a.id } } }, back)
        -- tree(...) is the children (to-many); tree!parent_id(...) the same, spelled out
        local _, kids = get(a, tree .. "?select=label,children:" .. tree .. "(label)&order=id")
        assert.are.same({ "x", "y" }, pluck(kids[1].children, "label"))
        assert.are.same({ "z" }, pluck(kids[2].children, "label"))
        assert.are.same({}, kids[4].children)
        local _, hinted = get(a, tree .. "?select=label,c:" .. tree .. "!parent_id(id)&id=eq.1")
        assert.are.same({ "2", "3" }, pluck(hinted[1].c, "id"))
    end)

    it("the result cache: a write to an embedded table drops a cached read that embeds it",
       function()
        env.need("pid", "bundle_dir", "admin_url")
        local path = env.bundle_dir .. "/policies/cache.lua"
        local original = assert(env.read_file(path))
        local function reload()
            local before = fault.stats().reloads
            env.hup()
            assert(env.wait_until(function() return fault.stats().reloads > before end, 10,
                                  0.05), "the reload did not happen")
        end
        env.write_file(path, (original:gsub("routes = {\n", "routes = {\n" ..
            '    ["GET /rest/v1/:table"] = { ttl = 60, scope = "user" },\n', 1)))
        finally(function()
            env.write_file(path, original)
            reload()
        end)
        reload()
        -- users filtered by key: without the embed's tags, only users' rows would drop it
        local owner = api.user()
        local url = "/rest/v1/users?select=id,trips(name)&id=eq." .. owner.id
        local hit = env.wait_until(function()
            return select(3, call(owner, "GET", url))["x-cache"] == "HIT"
        end, 5, 0.02)
        assert.truthy(hit, "the read was never served from the cache")
        local _, before = call(owner, "GET", url)
        assert.are.same({}, before[1].trips)
        api.trip(owner, { name = "fresh" })                     -- a write to trips
        local status, after, h = call(owner, "GET", url)
        assert.are.equal(200, status)
        assert.are_not.equal("HIT", h["x-cache"])
        assert.are.same({ "fresh" }, pluck(after[1].trips, "name"))
    end)
end)
