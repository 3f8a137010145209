-- spec/helpers/fault.lua - what the fault specs (spec/fault) share, on top of env/http/api:
--   stack(cmd)/stack_bg(cmd)   db/stack.sh on the test stack (TIDE_STACK_DIR), waited for or in
--                              the background with the time it finished
--   admin(path), health(), stats(), upstream(h, name), breaker(h, name)   the admin listener
--   call(user, method, path, body)   one request that never raises: a record with status,
--                              error code, Retry-After, start/end times and duration
--   start(...)/poll(calls, wait)     requests in flight together, finished as answers arrive
--   drive{...}                 a bounded load of concurrent client lanes that also samples
--                              /live and /health on a period
--   describe(r), list(rs), tally(rs), dump(name, ...)   records for messages; a timeline file
--   policy(), effective(name), set_policy(over), restore_policy(), reload()
--                              the served resilience policy: read, override with a reload
--                              (SIGHUP, waiting for /admin/stats "reloads" to move), restore
--   restore_stack(user)        thaws and starts whatever a spec stopped, waits for /health "ok"
--   healthy_user(with_trip)    a spec's setup: need(), a new user, restore_stack(user, 20)
--   outage{...}                a drive{} tick that breaks the stack, repairs it, then watches
--   bouncer(kind, sql)         SQL on a PgBouncer's admin console (SHOW CLIENTS, ...)
-- Faults touch only the throwaway stack in TIDE_STACK_DIR and traffic stays on loopback.

local cjson = require "cjson.safe"
local env = require "spec.helpers.env"
local api = require "spec.helpers.api"
local http = require "spec.helpers.http"

local _M = {}

local now, sleep = env.now, env.sleep

_M.stack_dir = os.getenv("TIDE_STACK_DIR")

-- The fault specs test the database path, so their requests ask the result cache to step
-- aside (Cache-Control: no-cache, X-Cache: BYPASS): a cached answer would hide the outage.
-- spec/fault/cache_spec.lua sets this to nil to see what the cache does in one.
_M.request_headers = { ["Cache-Control"] = "no-cache" }

-- Raises unless the runner gave us everything a fault spec touches.
function _M.need()
    env.need("bin", "pid", "bundle_dir", "dsn_admin", "admin_url")
    assert(_M.stack_dir, "fault specs need TIDE_STACK_DIR (the test stack) from the runner")
end

local function stack_cmd(args)
    return "TIDE_STACK_DIR=" .. env.quote(_M.stack_dir) .. " db/stack.sh " .. args
end

-- Runs `db/stack.sh ARGS` and waits; returns its output. Raises when it fails, unless
-- soft is true (then returns output, ok).
function _M.stack(args, soft)
    local out, ok = env.run(stack_cmd(args) .. " 2>&1 </dev/null")
    if soft then return out, ok end
    assert(ok, "db/stack.sh " .. args .. " failed:\n" .. out)
    return out
end

-- Starts `db/stack.sh ARGS` in the background. Returns a job: job.done() is nil while it
-- runs, then {rc=, at=(wall-clock time it finished), out=}; job.wait(timeout) waits for that
-- and raises unless it succeeded (job.wait(timeout, true) only waits).
function _M.stack_bg(args)
    local base = os.tmpname()
    local job = { args = args, started = now(), log = base .. ".log", flag = base .. ".done" }
    os.remove(base)
    local q = env.quote
    assert(os.execute(("(%s >%s 2>&1 </dev/null; echo \"$? $(date +%%s.%%N)\" >%s.tmp; mv %s.tmp %s)"
                      .. " </dev/null >/dev/null 2>&1 &")
                      :format(stack_cmd(args), q(job.log), q(job.flag), q(job.flag), q(job.flag))))
    function job.done()
        if job.result then return job.result end
        local s = env.read_file(job.flag)
        if not s then return nil end
        local rc, at = s:match("^(%d+) ([%d.]+)")
        if not rc then return nil end
        job.result = { rc = tonumber(rc), at = tonumber(at), out = env.read_file(job.log) or "" }
        os.remove(job.flag)
        os.remove(job.log)
        return job.result
    end
    function job.wait(timeout, soft)
        local r = env.wait_until(job.done, timeout or 60, 0.02)
        if soft then return r end
        assert(r, "db/stack.sh " .. args .. " still running after " .. (timeout or 60) .. " s")
        assert(r.rc == 0, "db/stack.sh " .. args .. " failed:\n" .. r.out)
        return r
    end
    return job
end

-- ---------------------------------------------------------------- admin listener

-- GET path on the admin listener: status (nil when no answer), decoded body, seconds taken,
-- error text. Never raises.
function _M.admin(path, timeout)
    local t0 = now()
    local ok, status, body = pcall(http.request, "GET", path, { url = env.admin_url,
                                                                timeout = timeout or 2 })
    local took = now() - t0
    if not ok then return nil, nil, took, tostring(status) end
    return status, body, took
end

function _M.health(timeout)
    local status, body = _M.admin("/health", timeout)
    return status, type(body) == "table" and body or nil
end

function _M.stats()
    local status, body = _M.admin("/admin/stats")
    assert(status == 200 and type(body) == "table", "GET /admin/stats: " .. tostring(status))
    return body
end

-- The named upstream's table in a /health body (or {}).
function _M.upstream(h, name)
    return type(h) == "table" and type(h.upstreams) == "table" and h.upstreams[name] or {}
end

-- The breaker state ("closed", "open", "half_open") of upstream name in a /health body.
function _M.breaker(h, name)
    local b = _M.upstream(h, name).breaker
    return type(b) == "table" and b.state or nil
end

_M.UPSTREAMS = { "direct", "session", "transaction" }

-- ---------------------------------------------------------------- requests

local function error_code(body)
    return type(body) == "table" and type(body.code) == "string" and body.code or nil
end

-- One request as user (anonymous when nil). Never raises; returns a record:
-- {method, path, t0, t1, elapsed, status (nil on a socket error), code, retry_after, err, body}.
function _M.call(user, method, path, body, timeout)
    local r = { method = method, path = path, t0 = now() }
    local ok, status, decoded, headers = pcall(http.request, method, path, {
        token = user and user.token, body = body, timeout = timeout or 15,
        headers = _M.request_headers })
    r.t1 = now()
    r.elapsed = r.t1 - r.t0
    if not ok then
        r.err = tostring(status)
        return r
    end
    r.status, r.body, r.headers = status, decoded, headers
    r.code = error_code(decoded)
    r.retry_after = headers["retry-after"]
    return r
end

-- Sends a request on a fresh connection and returns it in flight (finish it with poll()).
-- A call gets no answer after `timeout` seconds (15) counts as err = "no answer".
function _M.start(user, method, path, body, tag, timeout)
    local c = { method = method, path = path, tag = tag, t0 = now(), timeout = timeout or 15 }
    local ok, sock = pcall(http.connect, nil, 5)
    if ok then
        ok, c.err = pcall(http.send, sock, http.build(method, path, {
            token = user and user.token, body = body, close = true,
            headers = _M.request_headers }))
        c.sock = sock
    else
        c.err = tostring(sock)
    end
    if not ok then
        if c.sock then c.sock:close() end
        c.sock, c.t1 = nil, now()
        c.elapsed = c.t1 - c.t0
    end
    return c
end

local function finish(c, status, headers, body)
    c.sock:close()
    c.sock = nil
    c.t1 = now()
    c.elapsed = c.t1 - c.t0
    if status then
        c.status = status
        c.headers = headers
        c.body = http.decode(headers, body)
        c.code = error_code(c.body)
        c.retry_after = headers["retry-after"]
    else
        c.err = tostring(headers)
    end
end

-- Waits up to `wait` seconds for answers to the calls still in flight and finishes those
-- that have one (status, code, retry_after, t1, elapsed) or are past their timeout. Returns
-- how many are still in flight.
function _M.poll(calls, wait)
    local socks, by = {}, {}
    for _, c in ipairs(calls) do
        if c.sock then
            socks[#socks + 1] = c.sock
            by[c.sock] = c
        end
    end
    if #socks == 0 then return 0 end
    local ready = require("socket").select(socks, nil, wait)
    for _, sock in ipairs(ready) do
        local c = by[sock]
        -- the answer is there (or the connection closed): read it whole
        sock:settimeout(5)
        finish(c, http.read_response(sock))
    end
    local open, t = 0, now()
    for _, c in ipairs(calls) do
        if c.sock and t - c.t0 > c.timeout then
            finish(c, nil, "no answer after " .. c.timeout .. " s")
        elseif c.sock then
            open = open + 1
        end
    end
    return open
end

-- A bounded client load: one client per lane, each with one request in flight at a time and a
-- pause between its requests; /live and /health are sampled on a period meanwhile. opts:
--   user; lanes = { fn(i) -> method, path, body, tag, as, ... }   lane k's i-th request (as:
--   another user to send it as)
--   tick(t, records, samples) -> true to stop   called every few ms
--   max (requests in all, required), limit (seconds, required), pause (0.01),
--   sample_every (0.2), timeout (per request, 15)
-- After tick says stop, the requests in flight are finished. Returns records (see start(),
-- plus lane and i), ordered by start time, and samples {t, live, live_took, health_status,
-- health}.
function _M.drive(opts)
    assert(opts.max and opts.max <= 5000, "drive needs a bound: max <= 5000")
    assert(opts.limit and opts.limit <= 120, "drive needs a time limit <= 120 s")
    local records, samples, lanes = {}, {}, {}
    for k, fn in ipairs(opts.lanes) do lanes[k] = { fn = fn, i = 0, next_at = 0 } end
    local t_end = now() + opts.limit
    local every = opts.sample_every or 0.2
    local next_sample, stopping, sent = 0, false, 0
    while true do
        local t = now()
        if t >= next_sample then
            next_sample = t + every
            local live, _, took = _M.admin("/live", 1)
            local hs, h = _M.health(2)
            samples[#samples + 1] = { t = t, live = live, live_took = took, health_status = hs,
                                      health = h }
        end
        if not stopping and (t > t_end or (opts.tick and opts.tick(t, records, samples))) then
            stopping = true
        end
        local inflight = {}
        for k, lane in ipairs(lanes) do
            if lane.call and not lane.call.sock then
                lane.call = nil
                lane.next_at = now() + (opts.pause or 0.01)
            end
            if not lane.call and not stopping and sent < opts.max and t >= lane.next_at then
                lane.i = lane.i + 1
                local method, path, body, tag, as = lane.fn(lane.i)
                local c = _M.start(as or opts.user, method, path, body, tag, opts.timeout)
                c.lane, c.i = k, lane.i
                records[#records + 1] = c
                sent = sent + 1
                lane.call = c
            end
            if lane.call and lane.call.sock then inflight[#inflight + 1] = lane.call end
        end
        if stopping and #inflight == 0 then break end
        if #inflight == 0 then sleep(0.002) else _M.poll(inflight, 0.005) end
    end
    return records, samples
end

-- Writes a spec's timeline (marks, every request, every /health sample, relative to t0) to
-- TIDE_STACK_DIR/logs/fault-NAME.txt (the runner's log directory, kept when a run fails; the
-- stack directory itself when there is none). Returns the path.
function _M.dump(name, t0, marks, records, samples)
    local path = _M.stack_dir .. "/logs/fault-" .. name .. ".txt"
    local f = io.open(path, "w")
    if not f then
        path = _M.stack_dir .. "/fault-" .. name .. ".txt"
        f = io.open(path, "w")
    end
    if not f then return nil end
    local keys = {}
    for k, v in pairs(marks) do keys[#keys + 1] = { k, v } end
    table.sort(keys, function(a, b) return a[2] < b[2] end)
    for _, kv in ipairs(keys) do f:write(string.format("mark %8.3f %s\n", kv[2] - t0, kv[1])) end
    for _, r in ipairs(records or {}) do
        f:write(string.format("req  %8.3f %s\n", r.t0 - t0, _M.describe(r)))
    end
    for _, sm in ipairs(samples or {}) do
        local b = {}
        for _, n in ipairs(_M.UPSTREAMS) do
            b[#b + 1] = n .. "=" .. tostring(_M.breaker(sm.health, n))
        end
        f:write(string.format("hlth %8.3f live %s %.1f ms, health %s %s, %s\n", sm.t - t0,
                              tostring(sm.live), (sm.live_took or 0) * 1000,
                              tostring(sm.health_status), tostring(sm.health and sm.health.status),
                              table.concat(b, " ")))
    end
    f:close()
    return path
end

-- "METHOD path -> status code (0.123 s)" for failure messages.
function _M.describe(r)
    return string.format("%s %s -> %s %s (%.3f s%s)", r.method, r.path, tostring(r.status),
                         tostring(r.code), r.elapsed or -1, r.err and (", " .. r.err) or "")
end

-- Up to n records described, one a line.
function _M.list(records, n)
    local out = {}
    for i, r in ipairs(records) do
        if i > (n or 10) then
            out[#out + 1] = "... " .. (#records - i + 1) .. " more"
            break
        end
        out[#out + 1] = _M.describe(r)
    end
    return table.concat(out, "\n")
end

-- A tally "status code: n" of records, sorted, for messages.
function _M.tally(records)
    local t, keys = {}, {}
    for _, r in ipairs(records) do
        local k = tostring(r.status) .. " " .. tostring(r.code or r.err or "")
        if not t[k] then keys[#keys + 1] = k end
        t[k] = (t[k] or 0) + 1
    end
    table.sort(keys)
    for i, k in ipairs(keys) do keys[i] = k .. ": " .. t[k] end
    return table.concat(keys, ", ")
end

-- ---------------------------------------------------------------- databases

-- SQL on PgBouncer's admin console ("session" or "txn" pooler), as postgres with the stack's
-- password from stack.env. Returns rows (cells split on |); raises on failure.
function _M.bouncer(kind, sql)
    local port = kind == "session" and "TIDE_SESSION_PORT" or "TIDE_TXN_PORT"
    local cmd = ". " .. env.quote(_M.stack_dir .. "/stack.env") .. " && PGPASSWORD=$TIDE_DB_PASSWORD "
                .. "PGCONNECT_TIMEOUT=2 psql -X -q -At -h 127.0.0.1 -p $" .. port
                .. " -U postgres -d pgbouncer -c " .. env.quote(sql) .. " 2>&1"
    local out, ok = env.run("bash -c " .. env.quote(cmd))
    assert(ok, "pgbouncer-" .. kind .. " console: " .. out)
    local rows = {}
    for line in out:gmatch("[^\n]+") do
        local cells = {}
        for cell in (line .. "|"):gmatch("([^|]*)|") do cells[#cells + 1] = cell end
        rows[#rows + 1] = cells
    end
    return rows
end

-- ---------------------------------------------------------------- resilience policy

local saved_policy      -- the served policy's original text while a spec overrides it

function _M.policy_path()
    return env.bundle_dir .. "/policies/resilience.lua"
end

local function deep_merge(dst, src)
    for k, v in pairs(src) do
        if type(v) == "table" and type(dst[k]) == "table" then
            deep_merge(dst[k], v)
        elseif type(v) == "table" then
            dst[k] = deep_merge({}, v)
        else
            dst[k] = v
        end
    end
    return dst
end

-- The served policy table (policies/resilience.lua in the bundle), loaded here.
function _M.policy()
    local path = _M.policy_path()
    local chunk, err = loadfile(path)
    assert(chunk, "cannot load " .. path .. ": " .. tostring(err))
    local p = chunk("resilience")
    assert(type(p) == "table" and type(p.defaults) == "table", path .. " does not return {defaults=...}")
    return p
end

-- Upstream name's settings: the policy's defaults with its upstreams[name] merged over them.
function _M.effective(name, p)
    p = p or _M.policy()
    return deep_merge(deep_merge({}, p.defaults), (p.upstreams or {})[name] or {})
end

local function serialize(v)
    local t = type(v)
    if t == "number" then
        assert(v == v and v ~= math.huge and v ~= -math.huge, "not a finite number")
        return string.format("%.17g", v)
    elseif t == "string" then
        return string.format("%q", v)
    elseif t == "boolean" then
        return tostring(v)
    elseif t == "table" then
        local keys = {}
        for k in pairs(v) do keys[#keys + 1] = k end
        table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
        local parts = {}
        for _, k in ipairs(keys) do
            parts[#parts + 1] = "[" .. serialize(k) .. "] = " .. serialize(v[k])
        end
        return "{ " .. table.concat(parts, ", ") .. " }"
    end
    error("cannot write a " .. t .. " into a policy")
end

-- Serves a copy of the policy with over applied and reloads. over: {all = t (merged into
-- defaults and every upstream's table), defaults = t, upstreams = {name = t}}. The copy runs
-- the original text unchanged and merges over its result, so whatever the original computes
-- stays. restore_policy() puts the original back.
function _M.set_policy(over)
    local path = _M.policy_path()
    saved_policy = saved_policy or env.read_file(path)
    assert(saved_policy, "the served bundle has no policies/resilience.lua")
    env.write_file(path, table.concat({
        "-- Written by spec/helpers/fault.lua for a fault spec; the original is put back after it.",
        "local P = (function(...)",
        saved_policy,
        "end)(...)",
        "local function merge(dst, src)",
        "    for k, v in pairs(src) do",
        "        if type(v) == 'table' then",
        "            if type(dst[k]) ~= 'table' then dst[k] = {} end",
        "            merge(dst[k], v)",
        "        else",
        "            dst[k] = v",
        "        end",
        "    end",
        "end",
        "local over = " .. serialize(over),
        "if over.all then",
        "    merge(P.defaults, over.all)",
        "    for _, u in pairs(P.upstreams or {}) do merge(u, over.all) end",
        "end",
        "if over.defaults then merge(P.defaults, over.defaults) end",
        "for name, t in pairs(over.upstreams or {}) do",
        "    P.upstreams = P.upstreams or {}",
        "    P.upstreams[name] = P.upstreams[name] or {}",
        "    merge(P.upstreams[name], t)",
        "end",
        "return P",
        "",
    }, "\n"))
    _M.reload()
end

-- Puts the original policy back (if set_policy changed it) and reloads.
function _M.restore_policy()
    if not saved_policy then return end
    env.write_file(_M.policy_path(), saved_policy)
    saved_policy = nil
    _M.reload()
end

-- SIGHUP, then waits (5 s) until /admin/stats counts one more reload; raises when tide
-- rejected the bundle instead (reload_failures moved) or nothing happened.
function _M.reload()
    local before = _M.stats()
    env.hup()
    local ok, last = env.wait_until(function()
        local s = _M.stats()
        if (s.reload_failures or 0) > (before.reload_failures or 0) then return "rejected" end
        return (s.reloads or 0) > (before.reloads or 0) and "reloaded"
    end, 5, 0.05)
    assert(ok == "reloaded", "reload after SIGHUP: " .. tostring(ok or "no reload counted")
                             .. " " .. tostring(last and cjson.encode(last)))
end

-- ---------------------------------------------------------------- putting things back

-- Every upstream healthy and every breaker closed (breaker absent counts as closed).
function _M.all_healthy(h)
    if type(h) ~= "table" or h.status ~= "ok" then return false end
    for _, name in ipairs(_M.UPSTREAMS) do
        local b = _M.breaker(h, name)
        if b ~= nil and b ~= "closed" then return false end
    end
    return true
end

-- True when process pid is stopped (SIGSTOP).
local function is_stopped(pid)
    local stat = env.read_file("/proc/" .. pid .. "/stat")
    return stat ~= nil and stat:match("%) (%a)") == "T"
end

-- Thaws Postgres when it is frozen, starts it, either PgBouncer and the replica (resuming its
-- replay) when stopped, then waits
-- up to timeout (20 s) for /health to say every upstream is healthy with its breaker closed,
-- sending a few requests as user now and then (so breakers see traffic). Raises when it does not.
function _M.restore_stack(user, timeout)
    local running = _M.stack("status", true)
    local pg = running:match("postgres%s+running%s+pid (%d+)")
    if pg and is_stopped(pg) then _M.stack("thaw-pg") end
    if not pg then _M.stack("start-pg") end
    if not running:match("pgbouncer%-session%s+running") then _M.stack("start-session-bouncer") end
    if not running:match("pgbouncer%-txn%s+running") then _M.stack("start-txn-bouncer") end
    if os.getenv("TIDE_DSN_REPLICA") then
        if not running:match("replica%s+running") then _M.stack("start-replica") end
        if running:match("replay pause") then _M.stack("resume-replay") end
    end
    local ok, last = env.wait_until(function()
        if user then
            _M.call(user, "GET", "/v1/trips?limit=1", nil, 5)
            _M.call(user, "GET", "/v1/users/me/stats", nil, 5)
            _M.call(user, "POST", "/v1/search-history", { search_type = "restore", query = {} }, 5)
        end
        local status, h = _M.health()
        return status == 200 and _M.all_healthy(h), h
    end, timeout or 20, 0.25)
    assert(ok, "the stack did not come back healthy: " .. tostring(last and cjson.encode(last[2])))
end

-- A fault spec's setup: need(), a new user (with one trip when with_trip), then the stack
-- brought back healthy with restore_stack(user, 20). Returns the user.
function _M.healthy_user(with_trip)
    _M.need()
    local u = api.user()
    if with_trip then api.trip(u) end
    _M.restore_stack(u, 20)
    return u
end

-- One outage timed by drive{}'s tick. opts: t0, after (seconds past t0 to break the stack),
-- fault and repair (db/stack.sh arguments), down (seconds after the fault finished to start the
-- repair), watch (seconds to go on after the repair finished), marks (the table to fill) and
-- names = {launched, broken, repairing, repaired}: marks[launched] and marks[repairing] get the
-- time each job started, marks[broken] and marks[repaired] the time it finished, marks["end"]
-- the repaired time + watch. A job that fails raises. Returns tick(t) for drive (true from
-- marks["end"] on) and wait(timeout), which waits for whichever jobs were started (for a finally).
function _M.outage(opts)
    local marks, names = opts.marks, opts.names
    local launched, broken, repairing, repaired = names[1], names[2], names[3], names[4]
    local fault_job, repair_job
    local function tick(t)
        if not fault_job and t - opts.t0 >= opts.after then
            marks[launched] = now()
            fault_job = _M.stack_bg(opts.fault)
        elseif fault_job and not marks[broken] then
            local r = fault_job.done()
            if r then
                assert(r.rc == 0, opts.fault .. " failed: " .. r.out)
                marks[broken] = r.at
            end
        elseif marks[broken] and not repair_job and t - marks[broken] >= opts.down then
            marks[repairing] = now()
            repair_job = _M.stack_bg(opts.repair)
        elseif repair_job and not marks[repaired] then
            local r = repair_job.done()
            if r then
                assert(r.rc == 0, opts.repair .. " failed: " .. r.out)
                marks[repaired] = r.at
                marks["end"] = marks[repaired] + opts.watch
            end
        elseif marks["end"] and t >= marks["end"] then
            return true
        end
    end
    local function wait(timeout)
        if fault_job then fault_job.wait(timeout, true) end
        if repair_job then repair_job.wait(timeout, true) end
    end
    return tick, wait
end

return _M
