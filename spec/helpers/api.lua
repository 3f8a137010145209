-- spec/helpers/api.lua - fixtures on top of http/env: a user with a profile, a trip, and
-- `call(user, method, path, body)` for requests as that user (nil user = anonymous), and
-- field/ids/has over lists of rows.

local http = require "spec.helpers.http"
local env = require "spec.helpers.env"

local _M = {}

-- status, decoded body, headers of one request as user (or anon when user is nil).
function _M.call(user, method, path, body, headers)
    return http.request(method, path, { token = user and user.token, body = body,
                                        headers = headers })
end

-- A fresh user whose profile exists (POST /v1/users succeeded).
function _M.user(opts)
    local u = env.new_user(opts)
    local status, body = _M.call(u, "POST", "/v1/users", { email = u.email, full_name = "Test " .. u.id:sub(1, 8) })
    assert(status == 201, "creating a profile: " .. status .. " " .. require("cjson").encode(body))
    return u
end

-- A trip owned by user (fields override the defaults). Returns the created row.
function _M.trip(user, fields)
    local trip = { name = "Trip " .. env.uuid():sub(1, 8), destination = "Lisbon",
                   start_date = "2030-05-01", end_date = "2030-05-08", budget = 1200,
                   travelers = 2 }
    for k, v in pairs(fields or {}) do trip[k] = v end
    local status, body = _M.call(user, "POST", "/v1/trips", trip)
    assert(status == 201, "creating a trip: " .. status .. " " .. require("cjson").encode(body))
    return body
end

-- Shares trip_id with other at level (as owner).
function _M.share(owner, trip_id, other, level)
    local status, body = _M.call(owner, "POST", "/v1/trips/" .. trip_id .. "/collaborators",
                                 { user_id = other.id, permission_level = level })
    assert(status == 201, "sharing a trip: " .. status .. " " .. require("cjson").encode(body))
    return body
end

-- The values of field k of a list of rows, in order (each passed through f when given).
function _M.field(rows, k, f)
    local out = {}
    for i, r in ipairs(rows) do
        local v = r[k]
        if f then v = f(v) end
        out[i] = v
    end
    return out
end

-- The ids of a list of rows, in order.
function _M.ids(rows)
    return _M.field(rows, "id")
end

-- True when rows contain one whose id is id.
function _M.has(rows, id)
    for _, r in ipairs(rows) do
        if r.id == id then return true end
    end
    return false
end

return _M
