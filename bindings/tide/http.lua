-- tide/http.lua - the failure shape handlers return, and the body it becomes.
--
-- Every failure a script sees or returns is one error table (tide.errors):
--     {code, message, details, hint, status[, retry_after]}
-- tide.db and tide.validate return them; http.error builds one. A handler returns
-- `nil, err` and tide.boot turns err into the response (http.error_body, plus a Retry-After
-- header for a 503 that carries retry_after).
--
-- Error bodies always have PostgREST's four keys: {code, message, details, hint}; absent
-- details/hint are JSON null.
--
--   http.error(status, code, message[, details[, hint]]) -> err   raises on misuse (a status
--                                       that is not an integer 100..599, a non-string code)
--   http.error_body(err) -> body, status   the client-facing body of an error table; status
--                                       defaults to 500; a non-table err is a 500
--                                       TIDE_INTERNAL whose text is never sent
--   http.no_content() -> nil, 204
--   http.decode_body(text) -> value | nil, err   a request body as tide.boot decodes it: JSON
--                                       nested at most MAX_BODY_DEPTH levels, at most
--                                       MAX_BODY_CONTAINERS arrays and objects, finite numbers;
--                                       err: 400 TIDE_INVALID_JSON, TIDE_JSON_TOO_DEEP or
--                                       TIDE_JSON_TOO_LARGE
--   http.raw_body(handler) -> handler   marks a route's handler as one that decodes its body
--                                       itself (with http.decode_body, or a cheaper way that
--                                       answers alike): tide.boot still refuses a non-JSON
--                                       content type (415) but leaves req.body nil and hands
--                                       over req.raw_body only. For a body whose bulk the
--                                       handler passes on as text (an embedding's numbers).
--   http.takes_raw_body(handler) -> bool

local json = require "tide.json"
local errors = require "tide.errors"

local type, tostring, setmetatable = type, tostring, setmetatable
local misuse = errors.misuse
local new_error = errors.new
local null = json.null

local _M = {}

local function check_status(status)
    if type(status) ~= "number" or status % 1 ~= 0 or status < 100 or status > 599 then
        misuse("http: status must be an integer from 100 to 599, got " .. tostring(status))
    end
end

-- Returns an error table. details may be any JSON value (a table, a string).
function _M.error(status, code, message, details, hint)
    check_status(status)
    if type(code) ~= "string" then
        misuse("http.error: code must be a string")
    end
    if message ~= nil and type(message) ~= "string" then
        misuse("http.error: message must be a string")
    end
    return new_error(code, status, message or code, details, hint)
end

local INTERNAL = { code = "TIDE_INTERNAL", message = "internal error", details = null,
                   hint = null }

-- Returns the body and status for an error table.
function _M.error_body(err)
    if type(err) ~= "table" then
        return INTERNAL, 500
    end
    local status = err.status
    if type(status) ~= "number" or status % 1 ~= 0 or status < 100 or status > 599 then
        status = 500
    end
    local code = err.code
    if code == nil then
        code = "TIDE_INTERNAL"
    end
    return {
        code = tostring(code),
        message = type(err.message) == "string" and err.message or "database error",
        details = err.details == nil and null or err.details,
        hint = err.hint == nil and null or err.hint,
    }, status
end

function _M.no_content()
    return nil, 204
end

-- Request bodies nest at most this deep (400 TIDE_JSON_TOO_DEEP beyond) and hold at most this
-- many arrays and objects ("[" and "{" characters; 400 TIDE_JSON_TOO_LARGE beyond): ample for
-- any document this API takes, and no body can make decoding costly or its result large.
local MAX_BODY_DEPTH = 64
local MAX_BODY_CONTAINERS = 10000
_M.MAX_BODY_DEPTH = MAX_BODY_DEPTH
_M.MAX_BODY_CONTAINERS = MAX_BODY_CONTAINERS

local json_decode, all_finite = json.decode, json.all_finite

function _M.decode_body(text)
    local v, err = json_decode(text, MAX_BODY_DEPTH, MAX_BODY_CONTAINERS)
    if v == nil then
        return nil, err
    end
    if not all_finite(v) then
        return nil, new_error("TIDE_INVALID_JSON", 400, "invalid JSON: number out of range")
    end
    return v
end

local raw_handlers = setmetatable({}, { __mode = "k" })

function _M.raw_body(handler)
    if type(handler) ~= "function" then
        misuse("http.raw_body: expected the route's handler function, got " .. type(handler))
    end
    raw_handlers[handler] = true
    return handler
end

function _M.takes_raw_body(handler)
    return raw_handlers[handler] == true
end

return _M
