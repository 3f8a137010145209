-- scripts/search_history.lua - the caller's past searches: record, list, delete one, clear.
--
-- Strictly per user: every query also filters on user_id = the caller (RLS says the same), so
-- "clear" can never reach anyone else's rows even for a service token. Someone else's entry
-- is a 404. The list is newest first with limit/offset (default 20, at most 100) and an
-- optional search_type filter (exact match); clearing answers {deleted = n}.

local db = require "tide.db"
local common = require "_common"

-- search_type is the client's own label ("destination", "flight", ...): the schema does not
-- restrict it, so neither do we beyond a length.
local MAX_TYPE = 50

local RECORD = {
    search_type = { type = "string", required = true, max_len = MAX_TYPE },
    query       = { type = "object", required = true },
}
local TEXT = { "search_type" }      -- must not be blank

local function record(req)
    local user, e = common.user(req)
    if not user then return nil, e end
    local entry
    entry, e = common.body(req, RECORD)
    if not entry then return nil, e end

    entry, e = common.check_blank(entry, TEXT)
    if not entry then return nil, e end
    entry.user_id = user
    local rows, err = db.insert("search_history", entry)
    if not rows then return nil, err end
    return rows[1], 201
end

local function list(req)
    local user, e = common.user(req)
    if not user then return nil, e end
    local page
    page, e = common.page(req.query)
    if not page then return nil, e end

    local search_type
    search_type, e = common.query_text(req.query, "search_type", MAX_TYPE)
    if e then return nil, e end
    local filters = { user_id = user, search_type = search_type }

    local res, err = db.select("search_history", {
        filters = filters, order = "-created_at,-id", limit = page.limit, offset = page.offset,
        raw = true,
    })
    if not res then return nil, err end
    return res
end

local function delete(req)
    local user, e = common.user(req)
    if not user then return nil, e end
    local id
    id, e = common.int_id(req, "id")
    if not id then return nil, e end

    local rows, err = db.delete("search_history", {
        filters = { id = id, user_id = user }, columns = "id",
    })
    if not rows then return nil, err end
    if not rows[1] then return nil, common.not_found("no such search history entry") end
    return common.no_content()
end

local function clear(req)
    local user, e = common.user(req)
    if not user then return nil, e end
    local rows, err = db.delete("search_history", { filters = { user_id = user }, columns = "id" })
    if not rows then return nil, err end
    return { deleted = #rows }
end

return {
    ["POST /v1/search-history"] = record,
    ["GET /v1/search-history"] = list,
    ["DELETE /v1/search-history/:id"] = delete,
    ["DELETE /v1/search-history"] = clear,
}
