-- spec/integration/service_spec.lua - what tide tells systemd (Type=notify, etc/tide.service)
-- over the socket named by NOTIFY_SOCKET, as a service manager receives it: READY=1 once it
-- listens; on SIGHUP RELOADING=1 (with MONOTONIC_USEC) then READY=1, also when the new bundle
-- is rejected (the status says so); on SIGTERM STOPPING=1, and then it stops. A STATUS= line
-- goes with each. A datagram socket stands in for systemd; a tide of the spec's own
-- (spec/helpers/spawn.lua) sends to it.

local env = require "spec.helpers.env"
local spawn = require "spec.helpers.spawn"
local unix = require "socket.unix"

describe("tide under a service manager (sd_notify)", function()
    local dir, t, sock, sock_path

    -- The next notification, as a table of its KEY=VALUE lines (nil after 5 s).
    local function next_notification()
        local msg = sock:receive()
        if not msg then return nil end
        local fields = { _text = msg }
        for k, v in msg:gmatch("([%u_]+)=([^\n]*)") do fields[k] = v end
        return fields
    end

    setup(function()
        dir = spawn.bundle()
        sock_path = dir .. "/notify.sock"
        sock = assert(unix.dgram())
        assert(sock:bind(sock_path))
        sock:settimeout(5)
        t = spawn.tide(dir, { env = { "NOTIFY_SOCKET=" .. env.quote(sock_path) } })
    end)

    teardown(function()
        spawn.stop(t)
        if sock then sock:close() end
        spawn.remove(dir)
    end)

    it("says READY=1 once it listens, with a status", function()
        local n = next_notification()
        assert.is_table(n, "no notification")
        assert.are.equal("1", n.READY, n._text)
        assert.matches("^serving %d+ routes on 127%.0%.0%.1:%d+$", n.STATUS)
    end)

    it("says RELOADING=1 then READY=1 around a reload", function()
        env.run("kill -HUP " .. t.pid)
        local r = next_notification()
        assert.is_table(r, "no notification after SIGHUP")
        assert.are.equal("1", r.RELOADING, r._text)
        assert.matches("^%d+$", r.MONOTONIC_USEC)
        local ready = next_notification()
        assert.is_table(ready)
        assert.are.equal("1", ready.READY, ready._text)
        assert.matches("^serving %d+ routes$", ready.STATUS)

        -- the clock moves on from one reload to the next
        env.sleep(0.01)
        env.run("kill -HUP " .. t.pid)
        local r2 = next_notification()
        assert.are.equal("1", r2.RELOADING, r2._text)
        assert(tonumber(r2.MONOTONIC_USEC) > tonumber(r.MONOTONIC_USEC))
        assert.are.equal("1", next_notification().READY)
    end)

    it("says READY=1 after a rejected reload too, and the status says it was rejected", function()
        local broken = dir .. "/scripts/zz_service_broken.lua"
        env.write_file(broken, "return { not Lua\n")
        env.run("kill -HUP " .. t.pid)
        assert.are.equal("1", next_notification().RELOADING)
        local ready = next_notification()
        os.remove(broken)
        assert.are.equal("1", ready.READY, ready._text)
        assert.matches("rejected", ready.STATUS)
    end)

    it("says STOPPING=1 when it starts draining, then stops", function()
        local _, ok = env.run("kill -TERM " .. t.pid)
        assert(ok)
        local n = next_notification()
        assert.is_table(n, "no notification after SIGTERM")
        assert.are.equal("1", n.STOPPING, n._text)
        assert.matches("^draining", n.STATUS)
        assert(env.wait_until(function() return not spawn.alive(t) end, 15, 0.05),
               "tide did not exit after SIGTERM")
        assert.matches("stopped", spawn.log(t))
        t = nil
    end)
end)
