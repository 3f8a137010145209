-- spec/fault/pooler_fallback_spec.lua - the transaction-mode PgBouncer killed (SIGKILL, a crash)
-- under read load, with the shipped policy's fallback transaction -> direct. Reads (GET
-- /v1/trips and GET /v1/users/me go to the "transaction" upstream) come from one client, one
-- at a time, while /health is sampled every 0.2 s. What a user must see:
--   * the reads that fail are only those before the transaction breaker opens, and there are
--     at most as many as the policy's thresholds allow (computed below from the served policy);
--     after that every read succeeds through direct, also while the breaker goes half-open
--     against the still-dead pooler;
--   * /health shows the transaction breaker open with fallback "direct";
--   * once the bouncer runs again, within open_wait + 3 s the transaction breaker is closed, its
--     pool has connections, and PgBouncer has tide's connections as clients again.
-- The bouncer stays dead for open_wait + 2 s so at least one half-open round meets it dead.
-- Every violation is collected and reported together; the timeline goes to
-- TIDE_STACK_DIR/logs/fault-pooler_fallback.txt. Bounded: at most 1500 requests, 40 s of load.

local env = require "spec.helpers.env"
local fault = require "spec.helpers.fault"

local WARM = 1.0
local RECOVER = 3.0         -- seconds past open_wait for the pooler to be used again

-- The most client-visible read errors the breaker thresholds allow before it opens, with one
-- client at a time. Once the pooler is dead every call to it fails, and each failed read is at
-- least one failed call (retries only add failed calls, and a retry that lands after the breaker
-- opened goes to the fallback). From a closed breaker, the consecutive rule opens it after
-- `consecutive` failed calls (0 turns that rule off). The failure-rate rule needs at most
-- max(min_calls, ceil(failure_rate * window)) failures even when the window was full of
-- successes, so it can only open it sooner. Whichever comes first bounds the errors.
local function error_bound(b)
    local by_rate = math.max(b.min_calls, math.ceil(b.failure_rate * b.window))
    if b.consecutive and b.consecutive > 0 then return math.min(b.consecutive, by_rate) end
    return by_rate
end

local function ok2xx(r)
    return r.status ~= nil and r.status >= 200 and r.status < 300
end

describe("fault: transaction pooler killed, reads fall back to direct", function()
    local u

    setup(function()
        u = fault.healthy_user(true)
    end)

    teardown(function()
        fault.restore_stack(u, 30)
    end)

    it("bounds the errors to the breaker's thresholds, then reads go direct and come back", function()
        local txn = fault.effective("transaction")
        assert.are.equal("direct", txn.fallback, "the shipped policy falls back from transaction to direct")
        local open_wait = txn.breaker.open_wait
        local bound = error_bound(txn.breaker)

        local t_begin = env.now()
        local marks = {}            -- kill (launched), dead (killed), start (launched), back (ready)
        local tick, wait_jobs = fault.outage {
            t0 = t_begin, after = WARM, fault = "kill-txn-bouncer KILL", down = open_wait + 2,
            repair = "start-txn-bouncer", watch = open_wait + RECOVER, marks = marks,
            names = { "kill", "dead", "start", "back" },
        }
        finally(function()
            wait_jobs(30)
            fault.stack("start-txn-bouncer", true)
        end)

        local records, samples = fault.drive {
            user = u, max = 1500, limit = 40, pause = 0.01, sample_every = 0.2, timeout = 15,
            -- one client: the error bound above assumes one read at a time
            lanes = { function(i)
                if i % 2 == 0 then return "GET", "/v1/users/me" end
                return "GET", "/v1/trips?limit=5"
            end },
            tick = tick,
        }
        local timeline = fault.dump("pooler_fallback", t_begin, marks, records, samples)
        assert.is_truthy(marks["end"], "the load ended before the recovery was watched (" .. #records
                                       .. " requests; " .. tostring(timeline) .. ")")

        local problems = {}
        local function problem(list, what)
            if #list > 0 then
                problems[#problems + 1] = #list .. " " .. what .. ":\n" .. fault.list(list, 20)
            end
        end

        local before, failed, since_kill = {}, {}, 0
        for _, r in ipairs(records) do
            if r.t1 < marks.kill then
                if not ok2xx(r) then before[#before + 1] = r end
            else
                since_kill = since_kill + 1
                if not ok2xx(r) then failed[#failed + 1] = r end
            end
        end
        problem(before, "reads failed before the kill")
        if since_kill < 50 then problems[#problems + 1] = "only " .. since_kill .. " reads after the kill" end

        -- The breaker opened and said where reads go.
        local first_open
        for _, s in ipairs(samples) do
            if fault.breaker(s.health, "transaction") == "open"
               and fault.upstream(s.health, "transaction").fallback == "direct" then
                first_open = first_open or s.t
            end
        end
        if not first_open then
            problems[#problems + 1] = "/health never showed transaction's breaker open with fallback \"direct\""
        end

        -- Failed reads: few, 503s, and none after /health showed the breaker open.
        local not503, late = {}, {}
        for _, r in ipairs(failed) do
            if r.status ~= 503 then not503[#not503 + 1] = r end
            if first_open and r.t0 > first_open then late[#late + 1] = r end
        end
        problem(not503, "failed reads were not 503s")
        if #failed > bound then
            problem(failed, string.format("reads failed; the breaker (consecutive %s, failure_rate %s of "
                                          .. "window %s, min_calls %s) allows at most %d",
                                          tostring(txn.breaker.consecutive), tostring(txn.breaker.failure_rate),
                                          tostring(txn.breaker.window), tostring(txn.breaker.min_calls), bound))
        end
        problem(late, "reads failed after /health showed the breaker open")

        -- Back on the pooler: breaker closed and its pool has connections again ...
        local closed_at
        for _, s in ipairs(samples) do
            local pool = fault.upstream(s.health, "transaction").pool
            local ok = s.t > marks.back and fault.breaker(s.health, "transaction") == "closed"
                       and type(pool) == "table" and (pool.open or 0) > 0
            if ok then closed_at = closed_at or s.t else closed_at = nil end
        end
        if not closed_at then
            problems[#problems + 1] = string.format("transaction's breaker was not closed with an open pool "
                                                    .. "by %.1f s after the bouncer came back", open_wait + RECOVER)
        end
        -- ... and PgBouncer serves tide again: tide's connections are its clients.
        local clients = 0
        for _, row in ipairs(fault.bouncer("txn", "show clients")) do
            if row[2] == "authenticator" and row[3] == "tide" then clients = clients + 1 end
        end
        if clients == 0 then problems[#problems + 1] = "the restarted transaction pooler has no client from tide" end

        print(string.format(
            "\npooler_fallback: %d reads (%d after the kill), %d failed (bound %d): %s; breaker open seen "
            .. "%s s after the kill; closed with connections %s s after the bouncer was back; %d tide "
            .. "clients on the pooler\n  timeline: %s",
            #records, since_kill, #failed, bound, fault.tally(failed),
            first_open and string.format("%.2f", first_open - marks.dead) or "never",
            closed_at and string.format("%.2f", closed_at - marks.back) or "never", clients, tostring(timeline)))
        assert.are.same({}, problems, table.concat(problems, "\n") .. "\n(timeline: " .. tostring(timeline) .. ")")
    end)
end)
