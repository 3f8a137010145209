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

local json = require "tide.json"
local errors = require "tide.errors"

local type, tostring = type, tostring
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

return _M
