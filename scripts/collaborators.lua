-- scripts/collaborators.lua - who else may see or edit a trip: list, add, remove.
--
-- Only the trip's owner manages its collaborators (the issue's rule; RLS enforces it too,
-- this module checks it first so the answer is a clear 403 rather than an RLS error or a
-- silent no-op). Statuses:
--   * trip hidden from the caller -> 404; visible but caller is not the owner -> 403;
--   * adding yourself -> 422 (user_id); an unknown user -> 422 (user_id); adding someone
--     twice -> 409 (the unique (trip_id, user_id) key, code 23505 kept for clients);
--   * removing someone who is not a collaborator -> 404.
-- Changing a level is "remove, then add" for now (no PATCH route in this issue).

local db = require "tide.db"
local common = require "_common"

local LEVELS = { "view", "edit", "admin" }

local ADD = {
    user_id          = { type = "uuid", required = true },
    permission_level = { type = "string", enum = LEVELS },
}

-- The trip as the caller sees it ({id, user_id}), or nil, err (404 when hidden).
local function visible_trip(id)
    return db.select("trips", { columns = "id,user_id", filters = { id = id }, single = true })
end

-- The trip if the caller owns it, or nil, err (404 hidden, 403 not the owner).
local function owned_trip(id, sub)
    local trip, e = visible_trip(id)
    if not trip then return nil, e end
    if trip.user_id:lower() ~= sub:lower() then
        return nil, common.forbidden("only the trip's owner manages its collaborators")
    end
    return trip
end

local function list(req)
    local sub, e = common.user(req)
    if not sub then return nil, e end
    local id, page
    id, e = common.int_id(req, "id")
    if not id then return nil, e end
    page, e = common.page(req.query)
    if not page then return nil, e end

    local rows, err = db.select("trip_collaborators", {
        filters = { trip_id = id }, order = "-created_at,-id",
        limit = page.limit, offset = page.offset,
    })
    if not rows then return nil, err end
    if not rows[1] then
        -- Empty: a visible trip without collaborators, or a trip the caller cannot see.
        local trip
        trip, e = visible_trip(id)
        if not trip then return nil, e end
    end
    return rows
end

local function add(req)
    local sub, e = common.user(req)
    if not sub then return nil, e end
    local id, collab
    id, e = common.int_id(req, "id")
    if not id then return nil, e end
    collab, e = common.body(req, ADD)
    if not collab then return nil, e end
    if collab.user_id:lower() == sub:lower() then
        return nil, common.invalid("user_id", "the owner cannot be added as a collaborator")
    end
    local trip
    trip, e = owned_trip(id, sub)
    if not trip then return nil, e end

    local rows, err = db.insert("trip_collaborators", {
        trip_id = id,
        user_id = collab.user_id,
        permission_level = collab.permission_level or "view",
        added_by = sub,
    })
    if not rows then
        if err.code == "23503" then
            return nil, common.invalid("user_id", "no such user")
        end
        return nil, err
    end
    return rows[1], 201
end

local function remove(req)
    local sub, e = common.user(req)
    if not sub then return nil, e end
    local id, user_id
    id, e = common.int_id(req, "id")
    if not id then return nil, e end
    user_id, e = common.uuid_id(req, "user_id")
    if not user_id then return nil, e end
    local trip
    trip, e = owned_trip(id, sub)
    if not trip then return nil, e end

    local rows, err = db.delete("trip_collaborators", {
        filters = { trip_id = id, user_id = user_id }, columns = "trip_id",
    })
    if not rows then return nil, err end
    if not rows[1] then
        return nil, common.not_found("this user is not a collaborator on this trip")
    end
    return common.no_content()
end

return {
    ["GET /v1/trips/:id/collaborators"] = list,
    ["POST /v1/trips/:id/collaborators"] = add,
    ["DELETE /v1/trips/:id/collaborators/:user_id"] = remove,
}
