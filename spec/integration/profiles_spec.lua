-- spec/integration/profiles_spec.lua - what co-travellers learn about each other over HTTP
-- (migration 009): /rest/v1/users answers only the caller's own row, so a collaborator never
-- reads the owner's or a fellow collaborator's email or preferences, not even through an
-- embed; /rest/v1/collaborator_profiles gives the id and full_name of the people who share a
-- trip with the caller (and the caller's own), to them only, read-only, and stops showing a
-- person once the share is gone (also when /rest/v1 answers are cached); the business routes
-- answer as before (the collaborator list never carried anyone's profile).
--
--   owner's trip: viewer (view), editor (edit); outsider shares nothing with them

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"
local fault = require "spec.helpers.fault"
local rest = require "spec.helpers.rest"
local cjson = require "cjson"

local call = api.call
local null = cjson.null
local get, patch, is_error, pluck, sorted, keys = rest.get, rest.patch, rest.is_error,
                                                  rest.pluck, rest.sorted, rest.keys

-- The full names the test users get from api.user().
local function name_of(u)
    return "Test " .. u.id:sub(1, 8)
end

-- collaborator_profiles rows of `ids` as `as` sees them, by id.
local function profiles(as, ids)
    local status, rows = get(as, "collaborator_profiles?id=in.(" .. table.concat(ids, ",") ..
                                 ")&order=id")
    assert.are.equal(200, status, cjson.encode(rows))
    return rows
end

describe("co-travellers' profiles", function()
    local owner, viewer, editor, outsider, trip
    local everyone

    setup(function()
        env.need("bin", "dsn_admin")
        owner, viewer, editor, outsider = api.user(), api.user(), api.user(), api.user()
        everyone = { owner.id, viewer.id, editor.id, outsider.id }
        for _, u in ipairs { owner, viewer, editor, outsider } do
            local status = call(u, "PATCH", "/v1/users/me",
                                { preferences = { diet = "private to " .. u.id } })
            assert.are.equal(200, status)
        end
        trip = api.trip(owner, { name = "Shared with two" })
        api.share(owner, trip.id, viewer, "view")
        api.share(owner, trip.id, editor, "edit")
    end)

    it("a collaborator's /rest/v1/users is their own row: no co-traveller's email or " ..
       "preferences", function()
        for _, u in ipairs { viewer, editor, owner } do
            local status, rows = get(u, "users?select=id,email,preferences")
            assert.are.equal(200, status, cjson.encode(rows))
            assert.are.same({ { id = u.id, email = u.email,
                                preferences = { diet = "private to " .. u.id } } }, rows)
        end
        -- asked by id, the owner's row is not there
        local status, rows = get(viewer, "users?select=email,preferences&id=eq." .. owner.id)
        assert.are.equal(200, status)
        assert.are.same({}, rows)
        -- nor through the trip the viewer shares
        status, rows = get(viewer, "trips?select=name,owner:users(email,preferences)&id=eq." ..
                                   trip.id)
        assert.are.equal(200, status, cjson.encode(rows))
        assert.are.same({ { name = "Shared with two", owner = null } }, rows)
        -- nor the collaborators' rows through the collaborator list
        status, rows = get(owner, "trip_collaborators?select=user_id,who:users!user_id(email)" ..
                                  "&trip_id=eq." .. trip.id)
        assert.are.equal(200, status, cjson.encode(rows))
        assert.are.equal(2, #rows)
        assert.are.same({ null, null }, { rows[1].who, rows[2].who })
    end)

    it("collaborator_profiles: the id and full name of the people on one's trips", function()
        -- the viewer: the owner, the fellow collaborator, and self; never the outsider
        local rows = profiles(viewer, everyone)
        assert.are.same(sorted({ owner.id, viewer.id, editor.id }), pluck(rows, "id"))
        for _, r in ipairs(rows) do
            assert.are.same({ "full_name", "id" }, keys(r))
        end
        local byid = {}
        for _, r in ipairs(rows) do byid[r.id] = r.full_name end
        assert.are.equal(name_of(owner), byid[owner.id])
        -- the owner sees both collaborators; the outsider only themself
        assert.are.same(sorted({ owner.id, viewer.id, editor.id }),
                        pluck(profiles(owner, everyone), "id"))
        assert.are.same({ outsider.id }, pluck(profiles(outsider, everyone), "id"))
        -- no private column to ask for
        local status, body = get(viewer, "collaborator_profiles?select=id,email")
        is_error(status, body, 400, "42703")
        status, body = get(viewer, "collaborator_profiles?select=id,preferences")
        is_error(status, body, 400, "42703")
        -- not for anon
        status, body = get(nil, "collaborator_profiles?select=id")
        is_error(status, body, 401, "42501")
    end)

    it("collaborator_profiles cannot be written through, not even one's own row", function()
        for _, target in ipairs { owner, viewer } do
            local status, body = patch(viewer, "collaborator_profiles?id=eq." .. target.id,
                                       { full_name = "renamed" })
            is_error(status, body, 403, "42501")
        end
        assert.are.equal(name_of(owner), env.psql_value(
            "SELECT full_name FROM public.users WHERE id = " .. env.lit(owner.id)))
        -- one's own name changes where it always did
        local status, me = call(viewer, "PATCH", "/v1/users/me", { full_name = "Vic" })
        assert.are.equal(200, status)
        assert.are.equal("Vic", me.full_name)
        local rows = profiles(owner, { viewer.id })
        assert.are.same({ { id = viewer.id, full_name = "Vic" } }, rows)
    end)

    it("the business routes answer as before: the collaborator list, one's own profile",
       function()
        for _, u in ipairs { owner, viewer, editor } do
            local status, rows = call(u, "GET", "/v1/trips/" .. trip.id .. "/collaborators")
            assert.are.equal(200, status, cjson.encode(rows))
            local who = {}
            for _, r in ipairs(rows) do
                who[r.user_id] = r.permission_level
                assert.are.same({ "added_by", "created_at", "id", "permission_level",
                                  "trip_id", "user_id" }, keys(r))
            end
            assert.are.same({ [viewer.id] = "view", [editor.id] = "edit" }, who)
        end
        assert.are.equal(404, (call(outsider, "GET", "/v1/trips/" .. trip.id ..
                                                    "/collaborators")))
        local status, me = call(editor, "GET", "/v1/users/me")
        assert.are.equal(200, status)
        assert.are.equal(editor.email, me.email)
        assert.are.same({ diet = "private to " .. editor.id }, me.preferences)
    end)

    it("a collaborator removed from the trip no longer sees the others' names", function()
        local status = call(owner, "DELETE", "/v1/trips/" .. trip.id .. "/collaborators/" ..
                                             editor.id)
        assert.are.equal(204, status)
        assert.are.same({ editor.id }, pluck(profiles(editor, everyone), "id"))
        assert.are.same(sorted({ owner.id, viewer.id }), pluck(profiles(viewer, everyone), "id"))
    end)

    it("the result cache: a cached read of collaborator_profiles is dropped when a share " ..
       "goes", function()
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
        local host, guest = api.user(), api.user()
        local t = api.trip(host)
        api.share(host, t.id, guest, "view")
        local url = "/rest/v1/collaborator_profiles?select=id&id=in.(" .. host.id .. "," ..
                    guest.id .. ")"
        local hit = env.wait_until(function()
            return select(3, call(guest, "GET", url))["x-cache"] == "HIT"
        end, 5, 0.02)
        assert.truthy(hit, "the read was never served from the cache")
        local _, before = call(guest, "GET", url)
        assert.are.same(sorted({ host.id, guest.id }), pluck(before, "id"))
        assert.are.equal(204, (call(host, "DELETE", "/v1/trips/" .. t.id .. "/collaborators/" ..
                                                    guest.id)))
        local status, after, h = call(guest, "GET", url)
        assert.are.equal(200, status)
        assert.are_not.equal("HIT", h["x-cache"])
        assert.are.same({ guest.id }, pluck(after, "id"))
    end)
end)
