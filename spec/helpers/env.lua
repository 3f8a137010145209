-- spec/helpers/env.lua - what the integration specs know about the running stack, from the
-- environment the test runner exports (TIDE_TEST_URL, TIDE_TEST_ADMIN_URL, TIDE_BIN,
-- TIDE_JWT_SECRET, TIDE_DSN_ADMIN, TIDE_PID, TIDE_BUNDLE_DIR, TIDE_ADMIN_TOKEN), plus: fresh random users (so
-- specs never share rows), tokens minted by `tide token`, a psql helper for setup and
-- assertions as the superuser, bounded polling, SIGHUP and bundle-file editing.

local socket = require "socket"

local _M = {}

local getenv = os.getenv

_M.url = getenv("TIDE_TEST_URL") or "http://127.0.0.1:18080"
_M.admin_url = getenv("TIDE_TEST_ADMIN_URL")
_M.bin = getenv("TIDE_BIN")
_M.secret = getenv("TIDE_JWT_SECRET")
_M.dsn_admin = getenv("TIDE_DSN_ADMIN")
-- the tide the runner started: the supervising parent (README "Workers"), which forwards
-- SIGHUP and SIGTERM; the process that serves is its worker, /admin/stats' "pid"
_M.pid = tonumber(getenv("TIDE_PID") or "")
_M.bundle_dir = getenv("TIDE_BUNDLE_DIR")
_M.access_log = getenv("TIDE_TEST_ACCESS_LOG")   -- the suite's tide's stdout
-- the bearer token of state-changing admin requests: TIDE_ADMIN_TOKEN when the runner sets
-- one, else etc/tide.conf.lua's development token (the suite runs in development mode)
_M.admin_token = (getenv("TIDE_ADMIN_TOKEN") or "") ~= "" and getenv("TIDE_ADMIN_TOKEN")
                 or "tide-local-development-admin-token-change-me"

-- Raises unless every named field above is set (call it in a spec's setup).
function _M.need(...)
    for _, name in ipairs { ... } do
        assert(_M[name], "integration specs need " .. name .. " from the test runner's environment")
    end
end

function _M.quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- SQL string literal.
function _M.lit(s)
    return "'" .. tostring(s):gsub("'", "''") .. "'"
end

-- Runs a shell command; returns its stdout and true when it exited 0.
function _M.run(cmd)
    local p = assert(io.popen(cmd .. "; echo \"__rc=$?\"", "r"))
    local out = p:read("*a")
    p:close()
    local rc = tonumber(out:match("__rc=(%d+)%s*$"))
    out = out:gsub("__rc=%d+%s*$", "")
    return out, rc == 0
end

local function trim(s)
    return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- A random v4 uuid (kernel's generator; falls back to math.random).
function _M.uuid()
    local f = io.open("/proc/sys/kernel/random/uuid", "r")
    if f then
        local u = f:read("*l")
        f:close()
        if u then return u end
    end
    return (("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"):gsub("[xy]", function(c)
        local v = c == "x" and math.random(0, 15) or math.random(8, 11)
        return string.format("%x", v)
    end))
end

-- A token minted by `$TIDE_BIN token`. opts: role, ttl (seconds).
function _M.token(sub, opts)
    _M.need("bin")
    opts = opts or {}
    local cmd = _M.quote(_M.bin) .. " token --sub " .. _M.quote(sub)
    if opts.role then cmd = cmd .. " --role " .. _M.quote(opts.role) end
    if opts.ttl then cmd = cmd .. " --ttl " .. _M.quote(opts.ttl) end
    local out, ok = _M.run(cmd .. " 2>/dev/null")
    out = trim(out)
    assert(ok and out:match("^[%w_-]+%.[%w_-]+%.[%w_-]*$"), "tide token failed: " .. out)
    return out
end

-- A fresh identity: {id, token, email}. No profile row yet (see spec/helpers/api.lua).
function _M.new_user(opts)
    local id = _M.uuid()
    return { id = id, email = "u-" .. id .. "@example.test", token = _M.token(id, opts) }
end

-- Runs SQL as the superuser; returns the trimmed unaligned output (rows by \n, cells by |).
-- Raises on any error.
function _M.psql(sql)
    _M.need("dsn_admin")
    local out, ok = _M.run("psql -X -q -At -v ON_ERROR_STOP=1 " .. _M.quote(_M.dsn_admin) ..
                           " -c " .. _M.quote(sql) .. " 2>&1")
    assert(ok, "psql failed: " .. out .. "\nSQL: " .. sql)
    return trim(out)
end

-- A single value from SQL (first cell), as text.
function _M.psql_value(sql)
    return (_M.psql(sql):match("^[^\n|]*"))
end

_M.sleep = socket.sleep
_M.now = socket.gettime

-- Calls fn() every `step` seconds until it returns a truthy value or `timeout` passes.
-- Returns that value (or nil) and the last values fn returned.
function _M.wait_until(fn, timeout, step)
    local deadline = _M.now() + (timeout or 10)
    local last
    repeat
        last = { fn() }
        if last[1] then return last[1], last end
        _M.sleep(step or 0.05)
    until _M.now() > deadline
    return nil, last
end

-- SIGHUP to tide (a reload).
function _M.hup()
    _M.need("pid")
    local _, ok = _M.run("kill -HUP " .. math.floor(_M.pid))
    assert(ok, "kill -HUP " .. _M.pid .. " failed")
end

function _M.write_file(path, text)
    local f = assert(io.open(path, "w"))
    f:write(text)
    f:close()
end

function _M.read_file(path)
    local f = io.open(path, "r")
    if not f then return nil end
    local s = f:read("*a")
    f:close()
    return s
end

-- Path of a script in the served bundle.
function _M.bundle_script(name)
    _M.need("bundle_dir")
    return _M.bundle_dir .. "/scripts/" .. name
end

-- Drops a test-only route module (never shipped) into the served bundle, reloads with
-- reload (default: SIGHUP) and waits until ready() says its route answers. Returns its path
-- for remove_module.
function _M.install_module(name, source, ready, reload)
    _M.need("pid", "bundle_dir")
    local path = _M.bundle_script(name)
    _M.write_file(path, source)
    ;(reload or _M.hup)()
    assert(_M.wait_until(ready, 10, 0.1), "the test route of " .. name .. " did not appear after SIGHUP")
    return path
end

-- Removes what install_module added and reloads.
function _M.remove_module(path, reload)
    if path then
        os.remove(path)
        ;(reload or _M.hup)()
    end
end

return _M
