-- scripts/_common.lua - helpers shared by the business route modules (a library: the leading
-- underscore keeps it out of the route table). Every helper that can fail returns `value` or
-- `nil, err` with err an error table {code, message, details, hint, status} (tide.http), the
-- shape tide.db and tide.validate return too, so a handler forwards any failure in one line:
--     local sub, err = common.user(req); if not sub then return nil, err end
-- (check_blank only checks: it returns the table it was given, or nil, err.) invalid,
-- not_found and forbidden build error tables: `return nil, common.not_found("no such trip")`.
--
-- Policies decided here, once for every module:
--   * every /v1 business route except destinations needs a signed-in caller (a token whose
--     `sub` is a uuid); anon gets 401 TIDE_AUTH_REQUIRED rather than an empty RLS-filtered
--     answer, so a client that forgot its token finds out at once;
--   * list endpoints take limit/offset: limit defaults to 20 and a limit above 100 is clamped
--     to 100 (tide.validate.limit_offset; like PostgREST's max-rows): a client asking for
--     "everything" gets a full page, never an unbounded result and never an error; a limit or
--     offset that is not a non-negative integer is a 422 naming it;
--   * a request without a body where one is needed is a 400; a body of the wrong shape (an
--     array, a missing or unknown field, a wrong type) is a 422 naming the field;
--   * a malformed path id is a 400 naming the parameter; a well-formed id the caller cannot
--     see is a 404 (RLS hides it; we never reveal that it exists).

local http = require "tide.http"
local validate = require "tide.validate"
local json = require "tide.json"

local next, type, find = next, type, string.find

local _M = {}

_M.MAX_LIMIT = 100

-- The empty 204 answer.
_M.no_content = http.no_content

-- Marks a Lua array so it encodes as a JSON array even when empty.
_M.array = json.array

-- The 422 error for a rule the schema cannot express (blank text, cross-field checks), shaped
-- like tide.validate's own errors.
function _M.invalid(field, problem)
    return http.error(422, "TIDE_VALIDATION", field .. ": " .. problem, { field = field })
end

function _M.not_found(message)
    return http.error(404, "TIDE_NOT_FOUND", message)
end

-- The 404 error; the 403 error for something the caller can see but may not do.
function _M.forbidden(message)
    return http.error(403, "TIDE_FORBIDDEN", message)
end

-- The caller's user id (claims.sub), or nil, 401 error.
function _M.user(req)
    local sub = req.claims and req.claims.sub
    if req.role == "anon" or not validate.is_uuid(sub) then
        return nil, http.error(401, "TIDE_AUTH_REQUIRED",
                               "this operation needs a signed-in user (Authorization: Bearer)")
    end
    return sub
end

local ID = { type = "integer", required = true, min = 1 }
local UUID = { type = "uuid", required = true }

-- A bigint path parameter (trips.id, search_history.id): a positive integer, or nil, 400
-- error.
function _M.int_id(req, name)
    return validate.param(req.params[name], ID, name)
end

-- A uuid path parameter, or nil, 400 error.
function _M.uuid_id(req, name)
    return validate.param(req.params[name], UUID, name)
end

-- The JSON body checked against a tide.validate schema; returns the clean table or nil, err.
-- opts: optional = true (no body is checked as {}), partial = true (PATCH: `required` is
-- ignored, and at least one field must be present).
function _M.body(req, schema, opts)
    local body = req.body
    if body == nil then
        if not (opts and opts.optional) then
            return nil, http.error(400, "TIDE_BODY_REQUIRED", "this request needs a JSON body")
        end
        body = {}
    end
    local clean, err = validate.object(body, schema, opts and opts.partial and opts or nil)
    if not clean then return nil, err end
    if opts and opts.partial and next(clean) == nil then
        return nil, http.error(422, "TIDE_VALIDATION", "nothing to update: send at least one field")
    end
    return clean
end

-- Text fields (of a clean body) that are present but blank: the first one found, in the
-- order of the list fields, is a 422 naming it. Returns t when all are fine, else nil, err.
-- Absent fields (PATCH) pass.
function _M.check_blank(t, fields)
    for i = 1, #fields do
        local f = fields[i]
        local v = t[f]
        if v ~= nil and not find(v, "%S") then
            return nil, _M.invalid(f, "must not be blank")
        end
    end
    return t
end

-- An optional query-string text parameter: its value, nil when absent or empty, or nil, 422
-- error when it is not one string or is longer than max bytes (so check err, not the value).
function _M.query_text(query, name, max)
    local v = query[name]
    if v == nil or v == "" then
        return nil
    end
    if type(v) ~= "string" or #v > max then
        return nil, _M.invalid(name, "must be one string of at most " .. max .. " characters")
    end
    return v
end

local PATCH = { partial = true }

-- body() for PATCH requests.
function _M.patch(req, schema)
    return _M.body(req, schema, PATCH)
end

-- The page asked for in the query string: {limit =, offset =}, or nil, 422 error.
-- default_limit overrides 20 (destinations/popular uses 10).
function _M.page(query, default_limit)
    local limit, offset = validate.limit_offset(query, {
        default = default_limit or 20, max = _M.MAX_LIMIT,
    })
    if not limit then return nil, offset end
    return { limit = limit, offset = offset }
end

return _M
