-- spec/helpers/rest.lua - requests and checks the /rest/v1 specs share, on top of api.call
-- (user = nil: anonymous). Each request returns what api.call does: status, body (decoded
-- JSON, else the text), headers (lower-case names), raw text.
--   get(user, query, headers)               GET /rest/v1/<query>
--   post / patch(user, query, body, headers), delete(user, query, headers)
--   rpc_post(user, fn, body, headers, query), rpc_get(user, fn, query, headers)
--                                           /rest/v1/rpc/<fn>[?<query>]
--   count(user, tbl, query)                 the exact count of user's rows of tbl matching query
--   is_error(status, body, want_status, code)  asserts an error in PostgREST's shape
--   enc(s)                                  a query value percent-encoded
--   names(rows), pluck(rows, k), keys(t), sorted(t)  lists to compare rows with

local api = require "spec.helpers.api"
local cjson = require "cjson"
local assert = require "luassert"

local call = api.call

local _M = {}

local function rpc_path(fn, query)
    return "/rest/v1/rpc/" .. fn .. (query and ("?" .. query) or "")
end

function _M.get(user, query, headers)
    return call(user, "GET", "/rest/v1/" .. query, nil, headers)
end

function _M.post(user, query, body, headers)
    return call(user, "POST", "/rest/v1/" .. query, body, headers)
end

function _M.patch(user, query, body, headers)
    return call(user, "PATCH", "/rest/v1/" .. query, body, headers)
end

function _M.delete(user, query, headers)
    return call(user, "DELETE", "/rest/v1/" .. query, nil, headers)
end

function _M.rpc_post(user, fn, body, headers, query)
    return call(user, "POST", rpc_path(fn, query), body, headers)
end

function _M.rpc_get(user, fn, query, headers)
    return call(user, "GET", rpc_path(fn, query), nil, headers)
end

-- The number of user's rows of tbl matching query (exact count from Content-Range).
function _M.count(user, tbl, query)
    local status, _, h = _M.get(user, tbl .. "?select=id&limit=0&" .. query,
                                { Prefer = "count=exact" })
    assert.is_true(status == 200 or status == 206, tostring(status))
    return tonumber(h["content-range"]:match("/(%d+)$"))
end

-- Asserts an answer is want_status with an error body in PostgREST's shape and code.
function _M.is_error(status, body, want_status, code)
    assert.are.equal(want_status, status, cjson.encode(body))
    assert.are.equal(code, body.code, cjson.encode(body))
    assert.is_string(body.message)
    assert.is_not_nil(body.details)          -- present (JSON null decodes to cjson.null)
    assert.is_not_nil(body.hint)
end

-- Percent-encodes a query value (keeps PostgREST's punctuation readable).
function _M.enc(s)
    return (s:gsub("[^%w%-%._~,%(%)%*:!]", function(c)
        return string.format("%%%02X", string.byte(c))
    end))
end

-- t sorted in place, and returned.
function _M.sorted(t)
    table.sort(t)
    return t
end

-- The name of each row, in the rows' order.
function _M.names(rows)
    return api.field(rows, "name")
end

-- The values of field k of rows as strings, sorted (embedded rows come in no particular order).
function _M.pluck(rows, k)
    return _M.sorted(api.field(rows, k, tostring))
end

-- The keys of t, sorted.
function _M.keys(t)
    local out = {}
    for k in pairs(t) do out[#out + 1] = k end
    return _M.sorted(out)
end

return _M
