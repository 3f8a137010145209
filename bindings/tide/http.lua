-- tide/http.lua - response helpers for route handlers.
--
-- Error bodies always have PostgREST's four keys: {code, message, details, hint}; absent
-- details/hint are JSON null.
--
--   http.error(status, code, message[, details[, hint]]) -> body, status
--   http.from_db_error(err) -> body, status    err from tide.db ({code, message, details,
--                                              hint, status}); status defaults to 500
--   http.no_content() -> nil, 204

local json = require "tide.json"
local errors = require "tide.errors"

local type, tostring = type, tostring
local misuse = errors.misuse
local null = json.null

local _M = {}

local function check_status(status)
    if type(status) ~= "number" or status % 1 ~= 0 or status < 100 or status > 599 then
        misuse("http: status must be an integer from 100 to 599, got " .. tostring(status))
    end
end

-- Returns an error body and its status. details may be any JSON value (a table, a string).
function _M.error(status, code, message, details, hint)
    check_status(status)
    if type(code) ~= "string" then
        misuse("http.error: code must be a string")
    end
    if message ~= nil and type(message) ~= "string" then
        misuse("http.error: message must be a string")
    end
    return {
        code = code,
        message = message or code,
        details = details == nil and null or details,
        hint = hint == nil and null or hint,
    }, status
end

-- Returns the body and status for a tide.db error table. A non-table err (a handler's
-- nil, "some string") is an internal error: the text is not sent to the client.
function _M.from_db_error(err)
    if type(err) ~= "table" then
        return _M.error(500, "TIDE_INTERNAL", "internal error")
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

return _M
