-- spec/fault/freeze_spec.lua - Postgres frozen (SIGSTOP to the postmaster and every backend)
-- for 3 s: connections stay open and connects are accepted by the kernel, but nothing answers,
-- the failure that timeouts exist for. The policy is reloaded with statement_timeout = 1 s and
-- acquire_timeout = 1 s on every upstream. Requests go out in waves, several at once (a read via
-- the transaction pooler, a write via the session pooler, an RPC via direct), while /live is
-- asked every 0.1 s. What a user must see:
--   * each request ends by the client-side statement deadline (statement_timeout + 1 s) or the
--     acquire timeout, whichever is longer, + 0.5 s, with 504 and TIDE_STATEMENT_TIMEOUT /
--     TIDE_ACQUIRE_TIMEOUT, or 503 with a stable code (the breaker refusing, a connection
--     exception, or for a write TIDE_OUTCOME_UNKNOWN), or a 2xx if Postgres was thawed before
--     it ended;
--   * /live answers 200 in under 50 ms throughout (the loop never waits on Postgres): tide's
--     own loop measure (/admin/stats loop.passes_over_50ms) must not grow, and the client's
--     timing must stay under 50 ms unless that measure proves the delay was scheduling;
--   * after SIGCONT, each kind of request succeeds again within open_wait + 3 s.
-- The policy and Postgres are put back even when an assertion fails.

local env = require "spec.helpers.env"
local fault = require "spec.helpers.fault"

local TIMEOUT = 1.0         -- statement_timeout and acquire_timeout while frozen
local FROZEN = 3.0          -- seconds Postgres stays frozen
local WAVES = { 0.2, 1.2, 2.2 }     -- seconds after the freeze each wave of requests starts
local LIVE_EVERY = 0.1
local LIVE_MAX = 0.050
-- client-observed, when tide's own loop shows no stall; an instrumented build (make asan sets
-- TIDE_TEST_SLOWDOWN=4) runs every process slower, scheduling delays included
local LIVE_SCHED_MAX = 0.250 * (tonumber(os.getenv("TIDE_TEST_SLOWDOWN")) or 1)

local KINDS = {
    { "GET", "/v1/trips?limit=5" },             -- transaction pooler
    { "POST", "/v1/search-history" },           -- session pooler
    { "GET", "/v1/users/me/stats" },            -- direct
}

-- (status, code) pairs a request cut short by the freeze may end with.
local function clear_error(c)
    local code = c.code or ""
    if c.status == 504 then
        return code == "TIDE_STATEMENT_TIMEOUT" or code == "TIDE_ACQUIRE_TIMEOUT" or code == "57014"
    elseif c.status == 503 then
        return code == "TIDE_UPSTREAM_UNAVAILABLE" or code == "TIDE_OUTCOME_UNKNOWN"
               or code:match("^08") ~= nil
    end
    return false
end

describe("fault: Postgres frozen", function()
    local u

    setup(function()
        u = fault.healthy_user()
    end)

    teardown(function()
        fault.restore_policy()
        fault.restore_stack(u, 30)
    end)

    it("ends requests at the timeouts, keeps /live fast, and resumes after SIGCONT", function()
        local frozen = false
        finally(function()
            if frozen then fault.stack("thaw-pg", true) end
            fault.restore_policy()
        end)
        fault.set_policy { all = { pool = { statement_timeout = TIMEOUT, acquire_timeout = TIMEOUT } } }
        local open_wait = 0
        for _, n in ipairs(fault.UPSTREAMS) do
            local e = fault.effective(n)
            assert.are.equal(TIMEOUT, e.pool.statement_timeout, n .. " statement_timeout after the reload")
            assert.are.equal(TIMEOUT, e.pool.acquire_timeout, n .. " acquire_timeout after the reload")
            open_wait = math.max(open_wait, e.breaker.open_wait)
        end
        -- A request may wait for a connection up to acquire_timeout, or run its statement until
        -- the client-side deadline, which policies/resilience.lua and docs/failures.md put one
        -- second after statement_timeout (Postgres's own statement_timeout cannot fire while
        -- frozen); 0.5 s on top for the answer to reach us on a busy machine.
        local limit = math.max(TIMEOUT + 1.0, TIMEOUT) + 0.5

        -- Warm: each kind works before the freeze.
        for i, k in ipairs(KINDS) do
            local r = fault.call(u, k[1], k[2], k[1] == "POST" and
                                 { search_type = "fault-freeze", query = { warm = i } } or nil)
            assert.is_true(r.status and r.status < 300, "before the freeze: " .. fault.describe(r))
        end

        local calls, live = {}, {}
        local loop_before = fault.stats().loop
        local freeze_job = fault.stack_bg("freeze-pg")
        frozen = true
        local t_frozen = freeze_job.wait(10).at
        local t_thaw_start, thaw_job, t_thawed
        local wave, n = 1, 0
        local t_next_live = 0
        while true do
            local t = env.now()
            if wave <= #WAVES and t >= t_frozen + WAVES[wave] then
                for _, k in ipairs(KINDS) do
                    for _ = 1, 2 do
                        n = n + 1
                        local body = k[1] == "POST" and { search_type = "fault-freeze", query = { n = n } } or nil
                        calls[#calls + 1] = fault.start(u, k[1], k[2], body, wave)
                    end
                end
                wave = wave + 1
            end
            if not thaw_job and t >= t_frozen + FROZEN then
                t_thaw_start = env.now()
                thaw_job = fault.stack_bg("thaw-pg")
            end
            if thaw_job and not t_thawed then
                local r = thaw_job.done()
                if r then
                    assert(r.rc == 0, "thaw-pg failed: " .. r.out)
                    t_thawed, frozen = r.at, false
                end
            end
            if t >= t_next_live then
                t_next_live = t + LIVE_EVERY
                local status, _, took, err = fault.admin("/live", 1)
                live[#live + 1] = { t = t, status = status, took = took, err = err }
            end
            local open = fault.poll(calls, 0.01)
            if wave > #WAVES and open == 0 and t_thawed then break end
            if open == 0 then env.sleep(0.01) end
            assert(t < t_frozen + 30, "the freeze spec ran for 30 s")
        end

        local live_samples = {}
        for i, l in ipairs(live) do live_samples[i] = { t = l.t, live = l.status, live_took = l.took } end
        local timeline = fault.dump("freeze", t_frozen, { frozen = t_frozen, thaw = t_thaw_start,
                                                          thawed = t_thawed }, calls, live_samples)
        local problems = {}
        local function problem(list, what)
            if #list > 0 then
                problems[#problems + 1] = #list .. " " .. what .. ":\n" .. fault.list(list, 20)
            end
        end

        -- Every request ended in time, with a clear answer.
        local unanswered, late, early_ok, unclear, answered_error = {}, {}, {}, {}, 0
        for _, c in ipairs(calls) do
            if not c.status then
                unanswered[#unanswered + 1] = c
            elseif c.status < 300 then
                if c.t1 < t_thaw_start then early_ok[#early_ok + 1] = c end
            else
                answered_error = answered_error + 1
                if not clear_error(c) then unclear[#unclear + 1] = c end
            end
            if c.elapsed > limit then late[#late + 1] = c end
        end
        problem(unanswered, "requests got no answer")
        problem(late, string.format("requests took longer than %.1f s", limit))
        problem(unclear, "requests ended without a clear timeout/unavailable answer (504 "
                         .. "TIDE_STATEMENT_TIMEOUT/TIDE_ACQUIRE_TIMEOUT/57014, 503 "
                         .. "TIDE_UPSTREAM_UNAVAILABLE/TIDE_OUTCOME_UNKNOWN/08xxx)")
        problem(early_ok, "requests succeeded while Postgres was frozen (the freeze did not hold)")
        if answered_error < 6 then
            problems[#problems + 1] = "only " .. answered_error .. " requests met the freeze"
        end

        -- /live stayed fast all along.
        local worst, live_bad = 0, {}
        for _, l in ipairs(live) do
            if l.status ~= 200 then
                live_bad[#live_bad + 1] = string.format("+%.2f s: %s", l.t - t_frozen, tostring(l.err))
            end
            worst = math.max(worst, l.took)
        end
        if #live_bad > 0 then problems[#problems + 1] = "/live failed at " .. table.concat(live_bad, ", ") end
        if #live < FROZEN / LIVE_EVERY * 0.8 then
            problems[#problems + 1] = "only " .. #live .. " /live checks"
        end
        -- tide's own measure: no pass of its event loop took 50 ms or more during the test.
        -- A /live answer seen late by this client while that holds is the machine scheduling
        -- processes (2 cores shared with Postgres waking up), not tide waiting: it is reported,
        -- and only fails the spec past LIVE_SCHED_MAX.
        local loop_after = fault.stats().loop
        local stalls = loop_after.passes_over_50ms - loop_before.passes_over_50ms
        if stalls > 0 then
            problems[#problems + 1] = string.format("tide's event loop had %d passes of 50 ms or more "
                                                    .. "(longest %.1f ms)", stalls, loop_after.max_pass_ms)
        end
        if worst >= LIVE_MAX and stalls == 0 and worst < LIVE_SCHED_MAX then
            print(string.format("\nfreeze: /live seen at %.1f ms by the client while tide's longest loop "
                                .. "pass was %.1f ms (load average %s)", worst * 1000, loop_after.max_pass_ms,
                                (env.read_file("/proc/loadavg") or "?"):match("^%S+ %S+ %S+")))
        elseif worst >= LIVE_MAX then
            local slow = {}
            for _, l in ipairs(live) do
                if l.took >= LIVE_MAX then
                    slow[#slow + 1] = string.format("+%.2f s: %.1f ms", l.t - t_frozen, l.took * 1000)
                end
            end
            problems[#problems + 1] = string.format("/live took %.0f ms or more %d times of %d: %s "
                                                    .. "(load average now: %s)", LIVE_MAX * 1000, #slow,
                                                    #live, table.concat(slow, ", "),
                                                    (env.read_file("/proc/loadavg") or "?"):match("^%S+ %S+ %S+"))
        end

        -- Service resumes: each kind succeeds within open_wait + 3 s of the thaw.
        local resumed = {}
        for _, k in ipairs(KINDS) do
            local ok, last = env.wait_until(function()
                local body = k[1] == "POST" and { search_type = "fault-freeze", query = { after = true } } or nil
                local r = fault.call(u, k[1], k[2], body, 5)
                return r.status and r.status < 300, r
            end, t_thawed + open_wait + 3 - env.now(), 0.1)
            if ok then
                resumed[#resumed + 1] = string.format("%s %.2f s", k[2], env.now() - t_thawed)
            else
                problems[#problems + 1] = "no success within open_wait + 3 s of the thaw: " .. fault.describe(last[2])
            end
        end

        local slowest = 0
        for _, c in ipairs(calls) do slowest = math.max(slowest, c.elapsed) end
        print(string.format("\nfreeze: %d requests: %s; slowest %.3f s (limit %.1f); /live worst %.1f ms "
                            .. "over %d checks; resumed: %s", #calls, fault.tally(calls), slowest, limit,
                            worst * 1000, #live, table.concat(resumed, ", ")))
        assert.are.same({}, problems, table.concat(problems, "\n") .. "\n(timeline: " .. tostring(timeline) .. ")")
    end)
end)
