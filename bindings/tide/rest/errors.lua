-- tide/rest/errors.lua - /rest/v1's errors in PostgREST 12's codes, statuses and shape
-- ({code, message, details, hint}), in one place for every /rest/v1 module.
--
--   errors.status(sqlstate, authed[, message]) -> the HTTP status PostgREST answers for a
--       Postgres error (its Error.hs, pgErrorStatus): 23503 and 23505 409; 42501 403 when the
--       request carries a token, 401 when it does not; 42883 and 42P01 404; 25006 405; P0001
--       400; PTnnn nnn; 21000 400 for pg-safeupdate's "... requires a WHERE clause", else
--       500; whole classes 08 503, 09 500, 0L and 0P 403, 25 and 2D 500, 28 403, 38 39 3B 40
--       500, 53 503 (53400 500), 54 55 57 58 500 (57P01 503), F0 HV P0 XX 500; anything else
--       (22xxx, 23502, 23514, 42703, ...) 400. runtime/pgerror.c holds the same table for the
--       core's default status; this copy adds PTnnn and 21000, which depend on the message.
--   errors.from_db(err, req) -> err   a tide.db failure as PostgREST answers it: a SQLSTATE
--       keeps its code, message, details and hint and takes the status above (authed: the
--       request has claims, i.e. a token); tide's own codes (TIDE_*: breaker, pool, timeout,
--       each with its status and Retry-After) pass through unchanged.
--   errors.invalid_body(message[, details[, hint]])  400 PGRST102 (body not JSON, wrong
--                                        shape)
--   errors.range_not_satisfiable(details)  416 PGRST103 "Requested range not satisfiable"
--   errors.offset_past_end(lower, total)   416 PGRST103, details "An offset of <lower> was
--                                        requested, but there are only <total> rows."
--   errors.not_acceptable(accept)        406 PGRST107 "None of these media types are
--                                        available: <the Accept header>"
--   errors.singular(n)                   406 PGRST116 "JSON object requested, multiple (or no)
--                                        rows returned", details "The result contains n rows"
--                                        (one object asked for; PostgREST 12's words)
--   errors.column_not_found(tbl, col)    400 PGRST204 "Could not find the 'col' column of
--                                        'tbl' in the schema cache" (a payload key)
--   errors.table_not_found(schema, tbl)  404 PGRST205
--   errors.invalid_prefs(list)           400 PGRST122 (Prefer: handling=strict)
--   errors.max_affected(n)               400 PGRST124 (Prefer: max-affected=, strict)
-- An error more than one module answers is built here and only here; one only a single module
-- answers (rpc's PGRST202, the parser's PGRST100, ...) stays beside the code that detects it.

local http = require "tide.http"

local type, tonumber, tostring = type, tonumber, tostring
local find, match, sub = string.find, string.match, string.sub
local concat = table.concat

local _M = {}

-- Exact SQLSTATEs first, then two-character classes.
local EXACT = {
    ["23503"] = 409, ["23505"] = 409, ["25006"] = 405, ["53400"] = 500, ["57P01"] = 503,
    ["42883"] = 404, ["42P01"] = 404, ["42P17"] = 500, ["P0001"] = 400,
}
local CLASS = {
    ["08"] = 503, ["09"] = 500, ["0L"] = 403, ["0P"] = 403, ["25"] = 500, ["28"] = 403,
    ["2D"] = 500, ["38"] = 500, ["39"] = 500, ["3B"] = 500, ["40"] = 500, ["53"] = 503,
    ["54"] = 500, ["55"] = 500, ["57"] = 500, ["58"] = 500, F0 = 500, HV = 500, P0 = 500,
    XX = 500,
}

function _M.status(code, authed, message)
    if type(code) ~= "string" or #code ~= 5 then
        return 500
    end
    if code == "42501" then
        return authed and 403 or 401
    elseif code == "21000" then
        -- pg-safeupdate's refusal is the client's mistake; other cardinality errors are not
        if type(message) == "string" and find(message, "requires a WHERE clause", 1, true) then
            return 400
        end
        return 500
    end
    local s = EXACT[code]
    if s then
        return s
    end
    if sub(code, 1, 2) == "PT" then
        local n = tonumber(match(code, "^PT(%d%d%d)$"))
        return (n and n >= 100 and n <= 599) and n or 500
    end
    return CLASS[sub(code, 1, 2)] or 400
end

local function is_sqlstate(code)
    return type(code) == "string" and match(code, "^[%dA-Z][%dA-Z][%dA-Z][%dA-Z][%dA-Z]$") ~= nil
end

function _M.from_db(err, req)
    if type(err) ~= "table" or not is_sqlstate(err.code) then
        return err
    end
    local authed = req ~= nil and req.claims ~= nil
    return http.error(_M.status(err.code, authed, err.message), err.code,
                      type(err.message) == "string" and err.message or "database error",
                      err.details, err.hint)
end

function _M.invalid_body(message, details, hint)
    return http.error(400, "PGRST102", message, details, hint)
end

function _M.range_not_satisfiable(details)
    return http.error(416, "PGRST103", "Requested range not satisfiable", details)
end

function _M.offset_past_end(lower, total)
    return _M.range_not_satisfiable("An offset of " .. tostring(lower) .. " was requested, " ..
                                    "but there are only " .. tostring(total) .. " rows.")
end

function _M.not_acceptable(accept)
    return http.error(406, "PGRST107", "None of these media types are available: " ..
                      tostring(accept))
end

function _M.column_not_found(tbl, col)
    return http.error(400, "PGRST204", "Could not find the '" .. tostring(col) ..
                      "' column of '" .. tostring(tbl) .. "' in the schema cache")
end

function _M.table_not_found(schema, tbl)
    return http.error(404, "PGRST205", "Could not find the table '" .. tostring(schema) .. "." ..
                      tostring(tbl) .. "' in the schema cache")
end

function _M.singular(n)
    return http.error(406, "PGRST116", "JSON object requested, multiple (or no) rows returned",
                      "The result contains " .. tostring(n) .. " rows")
end

function _M.invalid_prefs(list)
    return http.error(400, "PGRST122", "Invalid preferences given with handling=strict",
                      "Invalid preferences: " .. concat(list, ", "))
end

function _M.max_affected(n)
    return http.error(400, "PGRST124", "Query result exceeds max-affected preference constraint",
                      "The query affects " .. tostring(n) .. " rows")
end

return _M
