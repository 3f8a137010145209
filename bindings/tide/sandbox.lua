-- tide/sandbox.lua - what scripts and policies can reach, and their per-route budgets.
--
-- Scripts are trusted team code, but they run on the one event loop that serves every
-- request: a blocking call or an exit there stops the service. So the chunks loaded from the
-- scripts and policies directories run in an environment of their own (one table for the
-- whole bundle, its globals falling back to a safe copy of the standard library) where:
--   os.exit, os.execute, os.remove, os.rename, os.tmpname, os.setlocale   refused ("os")
--   io.*, loadfile, dofile  (blocking file and pipe I/O)                   refused ("io")
--   debug.* except debug.traceback                                       refused ("debug")
--   require "ffi"                                                        refused ("ffi")
--   package.loadlib (a C library into the process)                       refused always
--   print                            writes a log line (stdout is the access log)
--   load / loadstring                chunks they make get the sandbox's environment too
-- A refused name raises at the point of use with a message that says why and how to allow
-- it: `allow = { "io" }` in policies/sandbox.lua gives the bundle the real module. The
-- modules under bindings/ (tide.*) are not sandboxed: they are the runtime's own.
-- This guards against accidents, not against a hostile author (getfenv(0) reaches the real
-- globals; scripts are code the team reviews).
--
--   sandbox.install(scripts_dir, policies_dir[, watchdog_ms])
--       -> {quarantine = {hits, window, cool_down}}
--       Wraps package.loaders so the bundle's chunks get the environment, then loads and
--       checks policies/sandbox.lua (raises on a bad one: the bundle is rejected).
--   sandbox.budget(method, pattern) -> ms or nil    the route's own CPU budget
--   sandbox.check_routes(router)    raises when max_cpu_ms names a route that does not exist
--   sandbox.describe() -> lines for `tide check`

local type, pairs, ipairs, tostring, tonumber, select, error = type, pairs, ipairs, tostring,
    tonumber, select, error
local setfenv, setmetatable, next, rawset = setfenv, setmetatable, next, rawset
local format, match, sub = string.format, string.match, string.sub
local concat, sort = table.concat, table.sort
local getinfo = debug.getinfo
local real_require, real_load, real_loadstring = require, load, loadstring

local _M = {}

local ALLOWABLE = { io = true, os = true, debug = true, ffi = true }

local WHY = {
    io = "blocking file and pipe I/O stops every request while it waits",
    os = "it would end or block the service",
    debug = "it reaches into other requests' state",
    ffi = "it calls C directly, outside every budget",
}

local function refusal(name, area)
    return format("%s is not available to scripts: %s (a bundle that needs it says so in " ..
                  "policies/sandbox.lua: allow = { \"%s\" })", name, WHY[area], area)
end

local function refused_fn(name, area)
    return function()
        error(refusal(name, area), 2)
    end
end

-- A table whose every field but those in `keep` raises when read.
local function fenced(real, area, keep)
    local t = {}
    for k in pairs(keep or {}) do
        t[k] = real[k]
    end
    return setmetatable(t, {
        __index = function(_, k)
            error(refusal(area .. "." .. tostring(k), area), 2)
        end,
        __newindex = function()
            error(area .. " is read-only in scripts", 2)
        end,
    })
end

local OS_SAFE = { clock = true, date = true, difftime = true, getenv = true, time = true }

local env, allowed, policy = nil, {}, nil

-- The environment e's globals: a copy of the standard ones, with the refusals above.
local function make_base(allow, e)
    local base = {}
    for k, v in pairs(_G) do
        base[k] = v
    end
    if not allow.io then
        base.io = fenced(io, "io")
        base.loadfile = refused_fn("loadfile", "io")
        base.dofile = refused_fn("dofile", "io")
    end
    if not allow.os then
        local o = {}
        for k in pairs(OS_SAFE) do
            o[k] = os[k]
        end
        for k, v in pairs(os) do
            if o[k] == nil then
                o[k] = OS_SAFE[k] and v or refused_fn("os." .. k, "os")
            end
        end
        base.os = o
    end
    if not allow.debug then
        base.debug = fenced(debug, "debug", { traceback = true })
    end
    local pkg = {}
    for k, v in pairs(package) do
        pkg[k] = v
    end
    pkg.loadlib = function()
        error("package.loadlib is not available to scripts: a C library would run outside " ..
              "every budget", 2)
    end
    base.package = pkg
    base._G = e
    base.require = function(name)
        if name == "ffi" and not allow.ffi then
            error(refusal("require \"ffi\"", "ffi"), 2)
        elseif name == "io" or name == "os" or name == "debug" then
            return base[name]
        end
        return real_require(name)
    end
    -- the chunks load and loadstring make get the sandbox's environment too
    local function in_env(loader)
        return function(...)
            local f, err = loader(...)
            if f then
                setfenv(f, e)
            end
            return f, err
        end
    end
    base.load = in_env(real_load)
    base.loadstring = in_env(real_loadstring)
    base.print = function(...)
        local n = select("#", ...)
        local parts = {}
        for i = 1, n do
            parts[i] = tostring((select(i, ...)))
        end
        real_require("tide.core").log("info", "print: " .. concat(parts, "\t"))
    end
    return base
end

-- The globals go into the environment itself, not behind an __index: a script's global
-- lookups (pairs, type, string, ...) stay one table access, as in the real globals.
local function fill(e, base)
    for k, v in pairs(base) do
        rawset(e, k, v)
    end
    return e
end

local function prefix(dir)
    dir = tostring(dir):gsub("/+$", "")
    return "@" .. dir .. "/"
end

-- True when f is a chunk from one of the bundle's directories.
local function in_bundle(f, prefixes)
    local info = getinfo(f, "S")
    local src = info and info.source
    if type(src) ~= "string" then
        return false
    end
    for i = 1, #prefixes do
        local p = prefixes[i]
        if sub(src, 1, #p) == p then
            return true
        end
    end
    return false
end

local function check_policy(p, watchdog_ms)
    if type(p) ~= "table" then
        error("policies/sandbox.lua must return a table", 0)
    end
    for k in pairs(p) do
        if k ~= "allow" and k ~= "max_cpu_ms" and k ~= "quarantine" then
            error("policies/sandbox.lua: unknown key " .. tostring(k), 0)
        end
    end
    local allow = {}
    if p.allow ~= nil then
        if type(p.allow) ~= "table" then
            error("policies/sandbox.lua: allow must be a list of names", 0)
        end
        for _, name in ipairs(p.allow) do
            if not ALLOWABLE[name] then
                error("policies/sandbox.lua: allow: unknown name " .. tostring(name) ..
                      " (io, os, debug or ffi)", 0)
            end
            allow[name] = true
        end
    end
    local budgets = {}
    if p.max_cpu_ms ~= nil then
        if type(p.max_cpu_ms) ~= "table" then
            error("policies/sandbox.lua: max_cpu_ms must be a table of \"METHOD /route\" = ms", 0)
        end
        for route, ms in pairs(p.max_cpu_ms) do
            if type(route) ~= "string" or not match(route, "^%u+ /%S*$") then
                error("policies/sandbox.lua: max_cpu_ms: " .. tostring(route) ..
                      " is not \"METHOD /route\"", 0)
            end
            local n = tonumber(ms)
            if type(ms) ~= "number" or n ~= n or n < 1 or n > 3600000 then
                error("policies/sandbox.lua: max_cpu_ms[\"" .. route ..
                      "\"] must be a number of milliseconds in 1..3600000", 0)
            end
            if watchdog_ms and watchdog_ms > 0 and n >= watchdog_ms then
                error("policies/sandbox.lua: max_cpu_ms[\"" .. route .. "\"] = " .. n ..
                      " must be below watchdog_ms (" .. watchdog_ms .. "): the watchdog would " ..
                      "restart the worker before the budget stopped the script", 0)
            end
            budgets[route] = n
        end
    end
    local q = { hits = 5, window = 10, cool_down = 60 }
    if p.quarantine ~= nil then
        if p.quarantine == false then
            q.hits = 0
        elseif type(p.quarantine) ~= "table" then
            error("policies/sandbox.lua: quarantine must be a table or false", 0)
        else
            for k, v in pairs(p.quarantine) do
                if q[k] == nil then
                    error("policies/sandbox.lua: quarantine: unknown key " .. tostring(k), 0)
                end
                if type(v) ~= "number" or v ~= v or v < 0 or v > 86400 then
                    error("policies/sandbox.lua: quarantine." .. k ..
                          " must be a number in 0..86400", 0)
                end
                q[k] = v
            end
            q.hits = q.hits - q.hits % 1
        end
    end
    return { allow = allow, budgets = budgets, quarantine = q }
end

-- For unit specs: the policy check and an environment built for `allow`.
_M._check_policy = check_policy
function _M._env(allow)
    local e = {}
    return fill(e, make_base(allow or {}, e))
end

function _M.install(scripts_dir, policies_dir, watchdog_ms)
    local prefixes = { prefix(scripts_dir), prefix(policies_dir) }
    env = {}                              -- one table for the whole bundle
    fill(env, make_base({}, env))         -- what the policy loads into
    local loaders = package.loaders
    for i = 1, #loaders do
        local loader = loaders[i]
        loaders[i] = function(name)
            local f, extra = loader(name)
            if type(f) == "function" and env ~= nil and in_bundle(f, prefixes) then
                setfenv(f, env)
            end
            return f, extra
        end
    end
    package.loaded.sandbox = nil
    policy = check_policy(real_require "sandbox", watchdog_ms)
    allowed = policy.allow
    if next(allowed) ~= nil then
        fill(env, make_base(allowed, env))
    end
    return { quarantine = policy.quarantine }
end

function _M.budget(method, pattern)
    return policy and policy.budgets[method .. " " .. pattern] or nil
end

function _M.check_routes(router)
    if not policy then
        return
    end
    local known = {}
    for _, r in ipairs(router:list()) do
        known[r.method .. " " .. r.pattern] = true
    end
    for route in pairs(policy.budgets) do
        if not known[route] then
            error("policies/sandbox.lua: max_cpu_ms[\"" .. route .. "\"]: no such route in " ..
                  "scripts/", 0)
        end
    end
end

function _M.describe(default_ms)
    local out = {}
    local names = {}
    for k in pairs(ALLOWABLE) do
        if allowed[k] then
            names[#names + 1] = k
        end
    end
    sort(names)
    out[#out + 1] = format("%-40s = %s", "allow", #names > 0 and concat(names, ", ") or
                           "(nothing: io, os.exit/execute, debug, ffi refused)")
    if default_ms then
        out[#out + 1] = format("%-40s = %d ms (script.max_cpu_ms)", "max_cpu_ms", default_ms)
    end
    local routes = {}
    for r in pairs(policy and policy.budgets or {}) do
        routes[#routes + 1] = r
    end
    sort(routes)
    for _, r in ipairs(routes) do
        out[#out + 1] = format("%-40s = %d ms", "max_cpu_ms[" .. r .. "]", policy.budgets[r])
    end
    local q = policy and policy.quarantine
    if q and q.hits > 0 then
        out[#out + 1] = format("%-40s = %d stops in %g s close the route for %g s", "quarantine",
                               q.hits, q.window, q.cool_down)
    else
        out[#out + 1] = format("%-40s = off", "quarantine")
    end
    return out
end

return _M
