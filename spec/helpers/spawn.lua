-- spec/helpers/spawn.lua - a second tide of a spec's own, beside the suite's: other free ports,
-- the same database stack (the DSNs the runner exports), and a copy of scripts/ and policies/
-- in a temporary directory under the run's directory (TIDE_STACK_DIR, else var/) that the spec
-- may edit without disturbing the suite's tide.
--
--   spawn.bundle() -> dir                a fresh copy: dir/scripts, dir/policies
--   spawn.tide(dir, {args=, env=}) -> t  starts `tide <args>` (default "serve") on that bundle
--                                        and waits until its admin listener answers /live;
--                                        env: extra "NAME=value" strings. t = {pid, url,
--                                        admin_url, err_log}; raises if it does not come up
--   spawn.log(t) -> text                 what it wrote on stderr so far
--   spawn.alive(t) -> bool
--   spawn.stop(t[, signal])              signal (default TERM), waits up to 15 s, then KILL
--   spawn.remove(dir)                    deletes the copy

local env = require "spec.helpers.env"
local http = require "spec.helpers.http"
local socket = require "socket"

local _M = {}

local function port_free(port)
    local s = socket.tcp()
    s:settimeout(0.2)
    local ok = s:connect("127.0.0.1", port)
    s:close()
    return not ok
end

-- Two free ports next to each other (below the ephemeral range, as spec/run.sh picks them).
local function free_ports()
    for _ = 1, 200 do
        local p = math.random(20000, 31990)
        if port_free(p) and port_free(p + 1) then return p, p + 1 end
    end
    error("no free ports")
end

function _M.bundle()
    local parent = os.getenv("TIDE_STACK_DIR") or "var"
    local out, ok = env.run("mkdir -p " .. env.quote(parent) .. " && mktemp -d " ..
                            env.quote(parent .. "/spawn.XXXXXX"))
    assert(ok, "mktemp: " .. out)
    local dir = out:gsub("%s+$", "")
    local _, copied = env.run("cp -r scripts policies " .. env.quote(dir) .. "/")
    assert(copied, "cannot copy the bundle")
    return dir
end

function _M.remove(dir)
    if dir then env.run("rm -rf " .. env.quote(dir)) end
end

function _M.log(t)
    return env.read_file(t.err_log) or ""
end

function _M.alive(t)
    local _, alive = env.run("kill -0 " .. t.pid .. " 2>/dev/null")
    return alive
end

-- One attempt: starts tide and waits for /live. Returns t and true, or t and a reason.
local function attempt(dir, opts)
    local http_port, admin_port = free_ports()
    local t = { url = "http://127.0.0.1:" .. http_port,
                admin_url = "http://127.0.0.1:" .. admin_port, err_log = dir .. "/tide.err" }
    local cmd = table.concat({
        "TIDE_HTTP_PORT=" .. http_port, "TIDE_ADMIN_PORT=" .. admin_port,
        "TIDE_SCRIPTS_DIR=" .. env.quote(dir .. "/scripts"),
        "TIDE_POLICIES_DIR=" .. env.quote(dir .. "/policies"),
        "TIDE_DEV=1", table.concat(opts.env or {}, " "),
        env.quote(env.bin), opts.args or "serve",
        "</dev/null >" .. env.quote(dir .. "/tide.out"), "2>" .. env.quote(t.err_log),
        "& echo $!" }, " ")
    local out = env.run(cmd)
    t.pid = tonumber(out:match("(%d+)"))
    assert(t.pid, "could not start tide: " .. out)
    local up = env.wait_until(function()
        local ok, status = pcall(http.request, "GET", "/live", { url = t.admin_url, timeout = 1 })
        if ok and status == 200 then return true end
        if not _M.alive(t) then return "exited" end
        return nil
    end, 15, 0.1)
    return t, up
end

function _M.tide(dir, opts)
    env.need("bin")
    opts = opts or {}
    local t, up
    for _ = 1, 3 do                    -- a port taken between the check and bind(): again
        t, up = attempt(dir, opts)
        if up == true then return t end
        if _M.alive(t) then _M.stop(t) end
    end
    error("the spec's own tide did not start (" .. tostring(up) .. "):\n" .. _M.log(t))
end

function _M.stop(t, signal)
    if not t or not t.pid then return end
    env.run("kill -" .. (signal or "TERM") .. " " .. t.pid .. " 2>/dev/null")
    local gone = env.wait_until(function() return not _M.alive(t) end, 15, 0.05)
    if not gone then env.run("kill -KILL " .. t.pid .. " 2>/dev/null") end
end

return _M
