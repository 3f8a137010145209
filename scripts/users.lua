-- scripts/users.lua - the caller's own profile: create it, read it, change it, and stats.
--
-- A profile's id is the token's `sub`; nobody addresses another user's profile here, so every
-- route works on "me". Creating a profile twice is a 409 (the primary key says so); reading or
-- changing a profile that was never created is a 404. PATCH replaces `preferences` whole (a
-- client that wants to merge reads first): a partial merge would need jsonb || in SQL and
-- would make "remove a preference" impossible to express.

local db = require "tide.db"
local common = require "_common"

local type, find = type, string.find

local PROFILE = {
    email       = { type = "string", max_len = 320 },
    full_name   = { type = "string", max_len = 200, nullable = true },
    preferences = { type = "object" },
}

local PATCH = {
    full_name   = PROFILE.full_name,
    preferences = PROFILE.preferences,
}

local function create(req)
    local sub, e = common.user(req)
    if not sub then return nil, e end
    local profile
    profile, e = common.body(req, PROFILE, { optional = true })
    if not profile then return nil, e end

    -- The body's email wins; otherwise the token's (Supabase tokens carry one). The column
    -- is NOT NULL and unique: another profile with the same email is a 409.
    local email = profile.email or req.claims.email
    if email == nil then
        return nil, common.invalid("email", "is required (the token carries none)")
    end
    if type(email) ~= "string" or #email > 320 or not find(email, "^[^%s@]+@[^%s@]+$") then
        return nil, common.invalid("email", "must be an email address")
    end
    profile.id = sub
    profile.email = email

    local rows, err = db.insert("users", profile)
    if not rows then return nil, err end
    return rows[1], 201
end

local function me(req)
    local sub, e = common.user(req)
    if not sub then return nil, e end
    local user, err = db.select("users", { filters = { id = sub }, single = true })
    if not user then return nil, err end
    return user
end

local function update(req)
    local sub, e = common.user(req)
    if not sub then return nil, e end
    local patch
    patch, e = common.patch(req, PATCH)
    if not patch then return nil, e end

    local rows, err = db.update("users", patch, { filters = { id = sub } })
    if not rows then return nil, err end
    if not rows[1] then
        return nil, common.not_found("no profile yet: POST /v1/users first")
    end
    return rows[1]
end

-- Counts for the caller (trips owned and shared, searches, API keys), computed by the
-- database function public.user_stats() under the caller's RLS.
local function stats(req)
    local sub, e = common.user(req)
    if not sub then return nil, e end
    local res, err = db.rpc("user_stats", {})
    if res == nil then return nil, err end
    return res
end

return {
    ["POST /v1/users"] = create,
    ["GET /v1/users/me"] = me,
    ["PATCH /v1/users/me"] = update,
    ["GET /v1/users/me/stats"] = stats,
}
