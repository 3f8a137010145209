-- tide.resilience: loads policies/resilience.lua, merges each upstream's settings over the
-- defaults and checks them. The C core reads the flat result when a bundle loads; a policy
-- that fails these checks rejects the whole bundle (the running one keeps serving).
local type, pairs, error, tostring = type, pairs, error, tostring

local _M = {}

local UPSTREAMS = { "direct", "session", "transaction" }

-- name -> { section, key, kind, min, max }
local FIELDS = {
    { "retry", "attempts", "integer", 1, 10 },
    { "retry", "base", "number", 0, 60 },
    { "retry", "cap", "number", 0, 600 },
    { "retry", "budget", "number", 0, 1 },
    { "breaker", "window", "integer", 1, 1024 },
    { "breaker", "failure_rate", "number", 0.01, 1 },
    { "breaker", "min_calls", "integer", 1, 1024 },
    { "breaker", "consecutive", "integer", 0, 1000 },
    { "breaker", "open_wait", "number", 0, 3600 },
    { "breaker", "half_open_probes", "integer", 1, 100 },
    { "pool", "size", "integer", 1, 256 },
    { "pool", "acquire_timeout", "number", 0.001, 600 },
    { "pool", "statement_timeout", "number", 0.001, 3600 },
    { "pool", "max_lifetime", "number", 0, 86400 * 7 },
    { "pool", "idle_timeout", "number", 0, 86400 * 7 },
}

local function fail(msg)
    error("policies/resilience.lua: " .. msg, 0)
end

local function merged(defaults, own, section, key)
    local o = own[section]
    if o ~= nil and type(o) ~= "table" then fail(section .. " must be a table") end
    if o ~= nil and o[key] ~= nil then return o[key] end
    local d = defaults[section]
    return d and d[key]
end

-- Returns { direct = {flat settings}, session = ..., transaction = ... } or raises.
function _M.load(policy)
    if type(policy) ~= "table" then fail("must return a table") end
    local defaults = policy.defaults or {}
    local ups = policy.upstreams or {}
    if type(defaults) ~= "table" or type(ups) ~= "table" then
        fail("defaults and upstreams must be tables")
    end
    for name in pairs(ups) do
        local known = false
        for _, u in pairs(UPSTREAMS) do known = known or u == name end
        if not known then fail("unknown upstream '" .. tostring(name) .. "'") end
    end
    local out = {}
    for _, name in pairs(UPSTREAMS) do
        local own = ups[name] or {}
        local flat = {}
        for _, f in pairs(FIELDS) do
            local section, key, kind, min, max = f[1], f[2], f[3], f[4], f[5]
            local v = merged(defaults, own, section, key)
            local label = name .. "." .. section .. "." .. key
            if type(v) ~= "number" or v ~= v then fail(label .. " must be a number") end
            if kind == "integer" and v % 1 ~= 0 then fail(label .. " must be an integer") end
            if v < min or v > max then
                fail(label .. " must be in " .. min .. ".." .. max .. ", got " .. v)
            end
            flat[section .. "_" .. key] = v
        end
        local fb = own.fallback
        if fb == nil then fb = defaults.fallback end
        if fb ~= nil then
            if fb == name then fail(name .. ".fallback cannot be itself") end
            local ok = false
            for _, u in pairs(UPSTREAMS) do ok = ok or u == fb end
            if not ok then fail(name .. ".fallback must name an upstream") end
            flat.fallback = fb
        end
        local dep = own.depends_on
        if dep == nil then dep = defaults.depends_on end
        if dep ~= nil and dep ~= name then
            local ok = false
            for _, u in pairs(UPSTREAMS) do ok = ok or u == dep end
            if not ok then fail(name .. ".depends_on must name an upstream") end
            flat.depends_on = dep
        end
        local req = own.required
        if req == nil then req = defaults.required end
        flat.required = req ~= false
        local pi = own.probe_interval or defaults.probe_interval or 1.0
        if type(pi) ~= "number" or pi < 0.05 or pi > 3600 then
            fail(name .. ".probe_interval must be in 0.05..3600")
        end
        flat.probe_interval = pi
        if flat.breaker_min_calls > flat.breaker_window then
            fail(name .. ".breaker.min_calls cannot exceed breaker.window")
        end
        out[name] = flat
    end
    return out
end

return _M
