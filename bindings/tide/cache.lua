-- tide/cache.lua - the result cache from scripts (README "Result cache").
--
--   cache.get(key, {scope = "user", stale_if_error = 0}) -> value, age, stale | nil
--   cache.set(key, value, {ttl = s, scope = "user", stale_while_revalidate = 0,
--                          stale_if_error = 0, tags = {"trips", "trips/7"}})
--                                                        -> true | nil, err
--   cache.invalidate(tag, ...)                           entries tagged so are not served again
--
-- value is a string (encode tables with tide.json first). The key is the caller's identity
-- under scope (as for routes: public, role, user, claims) plus `key`, so one user's value is
-- never another's. An entry is stored as of the request's start: if a tag it names was
-- invalidated since, set refuses it (nil, err with err.code TIDE_CACHE_RACED), so a value read
-- before a write is never stored after it. err is an error table (tide.errors) as every
-- failure: TIDE_CACHE_RACED (409), TIDE_CACHE_TOO_BIG (500, over an eighth of
-- cache.max_bytes), TIDE_CACHE_OFF (503, no cache) or TIDE_CACHE_ERROR (500). stale is true
-- past the ttl (within stale_while_revalidate, or for stale_if_error when asked for). Only while handling a request.

local lazy = require "tide.lazy"
local errors = require "tide.errors"

local type, pairs, tostring = type, pairs, tostring
local misuse = errors.misuse

local _M = {}

local get_core, set_core = lazy.require "tide.core"
_M._set_core = set_core

local SCOPES = require("tide.cachetags").SCOPES
local GET_OPTS = { scope = true, stale_if_error = true }
local SET_OPTS = { ttl = true, scope = true, stale_while_revalidate = true, stale_if_error = true,
                   tags = true }

local function check(fname, opts, allowed)
    if opts == nil then
        opts = {}
    elseif type(opts) ~= "table" then
        misuse("cache." .. fname .. ": options must be a table")
    end
    for k in pairs(opts) do
        if not allowed[k] then
            misuse("cache." .. fname .. ": unknown option '" .. tostring(k) .. "'")
        end
    end
    local scope = opts.scope or "user"
    if not SCOPES[scope] then
        misuse("cache." .. fname .. ": scope must be \"public\", \"role\", \"user\" or \"claims\"")
    end
    return opts, scope
end

local function seconds(fname, name, v)
    if v == nil then
        return 0
    end
    if type(v) ~= "number" or v ~= v or v < 0 or v == math.huge then
        misuse("cache." .. fname .. ": " .. name .. " must be a number of seconds >= 0")
    end
    return v
end

function _M.get(key, opts)
    if type(key) ~= "string" then
        misuse("cache.get: key must be a string")
    end
    local o, scope = check("get", opts, GET_OPTS)
    return get_core().cache_get(key, scope, seconds("get", "stale_if_error", o.stale_if_error))
end

function _M.set(key, value, opts)
    if type(key) ~= "string" or type(value) ~= "string" then
        misuse("cache.set: key and value must be strings")
    end
    local o, scope = check("set", opts, SET_OPTS)
    local ttl = o.ttl
    if type(ttl) ~= "number" or ttl ~= ttl or ttl <= 0 or ttl == math.huge then
        misuse("cache.set: ttl must be a number of seconds > 0")
    end
    local tags = o.tags
    if tags ~= nil and type(tags) ~= "table" then
        misuse("cache.set: tags must be a list of strings")
    end
    return get_core().cache_set(key, value, scope, ttl,
                                seconds("set", "stale_while_revalidate", o.stale_while_revalidate),
                                seconds("set", "stale_if_error", o.stale_if_error), tags)
end

function _M.invalidate(...)
    local n = select("#", ...)
    for i = 1, n do
        if type((select(i, ...))) ~= "string" then
            misuse("cache.invalidate: tags must be strings")
        end
    end
    get_core().cache_invalidate(...)
end

return _M
