-- scripts/trips.lua - trips: create, list (own and shared), read, update, delete, search.
--
-- Who may do what is RLS's decision (owner: everything; collaborator: read with any level,
-- update with edit/admin; only the owner deletes). This module turns RLS outcomes into the
-- status a user expects:
--   * a trip the caller cannot see -> 404 TIDE_NOT_FOUND (we never reveal that it exists);
--   * a trip the caller can see but not change (a view-only collaborator's PATCH, any
--     collaborator's DELETE) -> 403 TIDE_FORBIDDEN. RLS makes such a write touch 0 rows;
--     only then do we spend a second query to tell "hidden" from "read-only", so the common
--     path stays one round trip.
-- Lists are newest first (created_at, then id, descending), limit/offset as in
-- scripts/_common.lua, and come back as Postgres' own JSON text (raw = true) without a
-- decode/encode in Lua.

local db = require "tide.db"
local common = require "_common"

local type, ipairs = type, ipairs
local gsub, concat = string.gsub, table.concat

-- Must match the CHECK constraints of public.trips.
local STATUSES = { "planning", "booked", "in_progress", "completed", "cancelled" }
local TRIP_TYPES = { "leisure", "business", "family", "adventure", "other" }
local MAX_Q = 200

local STATUS_SET = {}
for _, s in ipairs(STATUSES) do STATUS_SET[s] = true end

-- Text that must not be blank when it is there.
local TEXT = { "name", "destination" }

-- POST checks `required`; PATCH uses the same schema with partial = true. Dates and budget
-- may be null (an open-ended plan); when both dates are set the end is not before the start.
local TRIP = {
    name        = { type = "string", required = true, max_len = 200 },
    destination = { type = "string", required = true, max_len = 200 },
    start_date  = { type = "date", nullable = true },
    end_date    = { type = "date", nullable = true },
    budget      = { type = "number", nullable = true, min = 0, max = 9999999999.99 },  -- numeric(12,2)
    travelers   = { type = "integer", min = 1, max = 100 },
    status      = { type = "string", enum = STATUSES },
    trip_type   = { type = "string", enum = TRIP_TYPES },
    notes       = { type = "array", max_items = 100, items = { type = "string", max_len = 2000 } },
}

-- true, or nil, err when end_date is before start_date: a 422 naming the field the client sent
-- (end_date if both).
local function check_dates(start_date, end_date, sent)
    if type(start_date) == "string" and type(end_date) == "string" and end_date < start_date then
        local field = sent.end_date and "end_date" or "start_date"
        return nil, common.invalid(field, "end_date must be on or after start_date")
    end
    return true
end

-- A write touched no row: nil, err with err a 404 if the caller cannot see the trip, else
-- a 403.
local function refused(id, what)
    local trip, err = db.select("trips", { columns = "id", filters = { id = id }, single = true })
    if not trip then
        return nil, err
    end
    return nil, common.forbidden("you can see this trip but may not " .. what)
end

-- Escapes LIKE metacharacters so q matches literally (backslash is Postgres' LIKE escape).
local function like_literal(s)
    return (gsub(s, "[\\%%_]", "\\%0"))
end

local function create(req)
    local sub, e = common.user(req)
    if not sub then return nil, e end
    local trip
    trip, e = common.body(req, TRIP)
    if not trip then return nil, e end
    trip, e = common.check_blank(trip, TEXT)
    if not trip then return nil, e end
    local ok
    ok, e = check_dates(trip.start_date, trip.end_date, trip)
    if not ok then return nil, e end

    trip.user_id = sub
    local rows, err = db.insert("trips", trip)
    if not rows then return nil, err end
    return rows[1], 201
end

local function list(req)
    local sub, e = common.user(req)
    if not sub then return nil, e end
    local page
    page, e = common.page(req.query)
    if not page then return nil, e end

    -- No user filter: RLS returns the caller's trips and the ones shared with them.
    local res, err = db.select("trips", {
        order = "-created_at,-id", limit = page.limit, offset = page.offset, raw = true,
    })
    if not res then return nil, err end
    return res
end

local function search(req)
    local sub, e = common.user(req)
    if not sub then return nil, e end
    local page
    page, e = common.page(req.query)
    if not page then return nil, e end

    local q
    q, e = common.query_text(req.query, "q", MAX_Q)
    if e then return nil, e end
    local status = req.query.status
    local filters = {}
    if q then
        local pattern = "%" .. like_literal(q) .. "%"
        filters["or"] = { { name = { ilike = pattern } }, { destination = { ilike = pattern } } }
    end
    if status ~= nil and status ~= "" then
        if not STATUS_SET[status] then
            return nil, common.invalid("status", "must be one of " .. concat(STATUSES, ", "))
        end
        filters.status = status
    end

    local res, err = db.select("trips", {
        filters = filters, order = "-created_at,-id", limit = page.limit, offset = page.offset,
        raw = true,
    })
    if not res then return nil, err end
    return res
end

local function get(req)
    local sub, e = common.user(req)
    if not sub then return nil, e end
    local id
    id, e = common.int_id(req, "id")
    if not id then return nil, e end

    -- raw: Postgres' JSON for the row goes to the client untouched (no decode/encode)
    local trip, err = db.select("trips", { filters = { id = id }, single = true, raw = true })
    if not trip then return nil, err end
    return trip
end

local function update(req)
    local sub, e = common.user(req)
    if not sub then return nil, e end
    local id, patch
    id, e = common.int_id(req, "id")
    if not id then return nil, e end
    patch, e = common.patch(req, TRIP)
    if not patch then return nil, e end
    patch, e = common.check_blank(patch, TEXT)
    if not patch then return nil, e end

    local start_date, end_date = patch.start_date, patch.end_date
    if (start_date == nil) ~= (end_date == nil) then
        -- One date moves: ordering needs the other one, which only the row knows.
        local cur, err = db.select("trips", {
            columns = "start_date,end_date", filters = { id = id }, single = true,
        })
        if not cur then return nil, err end
        start_date = start_date or cur.start_date
        end_date = end_date or cur.end_date
    end
    local ok
    ok, e = check_dates(start_date, end_date, patch)
    if not ok then return nil, e end

    local rows, err = db.update("trips", patch, { filters = { id = id } })
    if not rows then return nil, err end
    if rows[1] then return rows[1] end
    return refused(id, "change it (view-only access)")
end

local function delete(req)
    local sub, e = common.user(req)
    if not sub then return nil, e end
    local id
    id, e = common.int_id(req, "id")
    if not id then return nil, e end

    local rows, err = db.delete("trips", { filters = { id = id }, columns = "id" })
    if not rows then return nil, err end
    if rows[1] then return common.no_content() end
    return refused(id, "delete it (only its owner can)")
end

return {
    ["POST /v1/trips"] = create,
    ["GET /v1/trips"] = list,
    ["GET /v1/trips/search"] = search,
    ["GET /v1/trips/:id"] = get,
    ["PATCH /v1/trips/:id"] = update,
    ["DELETE /v1/trips/:id"] = delete,
}
