-- spec/fault/postgres_down_spec.lua - Postgres stopped in immediate mode (SIGQUIT to the
-- postmaster: every backend dies at once, as in a crash) under a mixed load, then started again.
-- The load is six concurrent clients, one request in flight each, 50 ms apart: two writing
-- (POST /v1/search-history, session pooler, a unique marker per request), two reading (GET
-- /v1/trips, transaction pooler, falls back to direct) and two calling an RPC (GET
-- /v1/users/me/stats, direct), while /live and /health are sampled every 0.2 s. What a user
-- must see:
--   * while Postgres is down, every request fails fast (< 1 s, far under the acquire timeout)
--     with 503 and a stable code; while it goes down and comes back, a request gets a 2xx or
--     a 503 saying what happened, and none hangs as long as the acquire timeout;
--   * /live keeps answering; /health says 503 "down" and shows each upstream refusing calls at
--     some point: its breaker open, or (a pooler) blocked by the Postgres it depends on, whose
--     open breaker keeps calls from it, so that its own breaker may never see a failure;
--   * 2 s after Postgres accepts connections again, every request succeeds, and the breakers
--     are all closed within open_wait + 1 s;
--   * every write that got a 2xx is in the database exactly once; no write is there twice; a
--     write that got a definite error (anything but TIDE_OUTCOME_UNKNOWN or no answer) is not.
-- Every violation is collected and reported together; the timeline goes to
-- TIDE_STACK_DIR/logs/fault-postgres_down.txt. Bounded: at most 2000 requests, 45 s of load.

local env = require "spec.helpers.env"
local fault = require "spec.helpers.fault"

local WARM = 1.0            -- seconds of load before the stop
local DOWN = 3.0            -- seconds Postgres stays down (after it has exited)
local FAST = 1.0            -- a failure while down must take less than this
local BACK = 2.0            -- requests succeed this long after Postgres accepts connections
local MAX_REQUESTS = 2000

-- What a client may get for a request that Postgres being away made fail: the class 08
-- SQLSTATEs are connection exceptions (08001 cannot connect, 08006 connection lost, and 08P01,
-- which PgBouncer sends when it cannot reach Postgres), tide's breaker refusal, and, for a
-- call that may write, the outcome-unknown answer.
local function down_code(code)
    return code ~= nil and (code:match("^08") ~= nil or code == "TIDE_UPSTREAM_UNAVAILABLE"
                            or code == "TIDE_OUTCOME_UNKNOWN")
end

-- While Postgres is going down or coming up it may also say so itself: 57P01 (terminated by
-- the shutdown), 57P02 (crash shutdown), 57P03 (starting up / shutting down).
local function transition_code(code)
    return down_code(code) or (code ~= nil and code:match("^57P0[123]$") ~= nil)
end

local function ok2xx(r)
    return r.status ~= nil and r.status >= 200 and r.status < 300
end

describe("fault: Postgres stopped (immediate) under load", function()
    local u

    setup(function()
        u = fault.healthy_user()
    end)

    teardown(function()
        fault.restore_stack(u, 30)
    end)

    it("fails fast while down, recovers, and loses or duplicates no acknowledged write", function()
        local open_wait, acquire_timeout = 0, math.huge
        for _, n in ipairs(fault.UPSTREAMS) do
            local e = fault.effective(n)
            open_wait = math.max(open_wait, e.breaker.open_wait)
            acquire_timeout = math.min(acquire_timeout, e.pool.acquire_timeout)
        end

        local run = env.uuid():sub(1, 8)
        local t_begin = env.now()
        local marks = {}            -- stop (launched), down (exited), start (launched), up (ready)
        local tick, wait_jobs = fault.outage {
            t0 = t_begin, after = WARM, fault = "stop-pg immediate", down = DOWN, repair = "start-pg",
            watch = open_wait + 3, marks = marks, names = { "stop", "down", "start", "up" },
        }
        finally(function()
            wait_jobs(60)
            fault.stack("start-pg", true)
        end)

        local function write(lane)
            return function(i)
                local marker = run .. "-" .. lane .. i
                return "POST", "/v1/search-history", { search_type = "fault", query = { marker = marker } },
                       marker
            end
        end
        local function read() return "GET", "/v1/trips?limit=5" end
        local function rpc() return "GET", "/v1/users/me/stats" end

        local records, samples = fault.drive {
            user = u, max = MAX_REQUESTS, limit = 45, pause = 0.05, sample_every = 0.2, timeout = 15,
            lanes = { write("a"), read, rpc, write("b"), read, rpc },
            tick = tick,
        }
        local timeline = fault.dump("postgres_down", t_begin, marks, records, samples)
        assert.is_truthy(marks["end"], "the load ended before Postgres was back and watched ("
                                       .. #records .. " requests; " .. tostring(timeline) .. ")")
        local t_down, t_start, t_up = marks.down, marks.start, marks.up

        local problems = {}
        local function problem(list, what)
            if #list > 0 then
                problems[#problems + 1] = #list .. " " .. what .. ":\n" .. fault.list(list, 8)
            end
        end

        -- Sort the requests by when they ran relative to the fault.
        local before, down, transition, after = {}, {}, {}, {}
        for _, r in ipairs(records) do
            if r.t1 < marks.stop then
                before[#before + 1] = r
            elseif r.t0 >= t_down and r.t1 <= t_start then
                down[#down + 1] = r
            elseif r.t0 >= t_up + BACK then
                after[#after + 1] = r
            else
                transition[#transition + 1] = r
            end
        end
        -- Enough of each to prove something.
        for name, list in pairs { before = before, down = down, after = after } do
            if #list < 20 then problems[#problems + 1] = "only " .. #list .. " requests " .. name end
        end

        -- Before the fault everything worked.
        local bad = {}
        for _, r in ipairs(before) do if not ok2xx(r) then bad[#bad + 1] = r end end
        problem(bad, "requests failed before the stop")

        -- Down: fast 503s with a stable code; Retry-After in seconds when the breaker refused.
        local not503, unstable, slow, no_retry_after, slowest = {}, {}, {}, {}, 0
        for _, r in ipairs(down) do
            slowest = math.max(slowest, r.elapsed)
            if r.status ~= 503 then not503[#not503 + 1] = r
            elseif not down_code(r.code) then unstable[#unstable + 1] = r end
            if r.elapsed >= FAST then slow[#slow + 1] = r end
            if r.code == "TIDE_UPSTREAM_UNAVAILABLE" then
                local ra = tonumber(r.retry_after and r.retry_after:match("^%d+$"))
                if not ra or ra > math.ceil(open_wait) + 1 then no_retry_after[#no_retry_after + 1] = r end
            end
        end
        problem(not503, "requests while Postgres was down were not answered 503")
        problem(unstable, "503s while Postgres was down had no stable code")
        problem(slow, string.format("requests while Postgres was down took %.1f s or more", FAST))
        problem(no_retry_after, "breaker refusals without Retry-After: 0.." .. (math.ceil(open_wait) + 1))

        -- No answer tells the client where the database is or who tide logs in as: libpq's
        -- connection errors name the host, the port and the user; those go to tide's log only.
        local leaks = {}
        local revealing = { "127%.0%.0%.1", "localhost", "authenticator", "connection to server",
                            "Connection refused", "server closed the connection" }
        for _, port in ipairs { os.getenv("TIDE_PG_PORT"), os.getenv("TIDE_SESSION_PORT"),
                                os.getenv("TIDE_TXN_PORT") } do
            revealing[#revealing + 1] = "%f[%d]" .. port .. "%f[%D]"
        end
        for _, r in ipairs(records) do
            if type(r.body) == "table" and r.status and r.status >= 500 then
                local text = table.concat({ tostring(r.body.message), tostring(r.body.details),
                                            tostring(r.body.hint) }, " ")
                for _, pat in ipairs(revealing) do
                    if text:find(pat) then
                        r.err = "reveals " .. pat .. ": " .. text
                        leaks[#leaks + 1] = r
                        break
                    end
                end
            end
        end
        problem(leaks, "error answers revealed the upstream's address or user")

        -- Going down and coming up: a 2xx or a 503 that says what happened; nothing hangs.
        local unclear, hung = {}, {}
        for _, r in ipairs(transition) do
            if not ok2xx(r) and not (r.status == 503 and transition_code(r.code)) then
                unclear[#unclear + 1] = r
            end
            if r.elapsed >= acquire_timeout then hung[#hung + 1] = r end
        end
        problem(unclear, "requests while Postgres stopped or started got neither a 2xx nor a clear 503")
        problem(hung, string.format("requests while Postgres stopped or started took the acquire timeout "
                                    .. "(%.1f s) or more", acquire_timeout))

        -- Back: BACK s after Postgres accepts connections, everything succeeds.
        bad = {}
        for _, r in ipairs(after) do if not ok2xx(r) then bad[#bad + 1] = r end end
        problem(bad, string.format("requests failed more than %.1f s after Postgres accepted connections",
                                   BACK))

        -- /live answered throughout; /health said down and showed each breaker open, then closed.
        local seen_open, seen_503, live_bad, live_worst, blocked_wrong = {}, false, {}, 0, {}
        local closed_since            -- from this sample on, every breaker was closed
        for _, s in ipairs(samples) do
            if s.live ~= 200 then live_bad[#live_bad + 1] = string.format("+%.2f s", s.t - t_begin) end
            live_worst = math.max(live_worst, s.live_took)
            if s.t >= t_down and s.t <= t_start and s.health_status == 503 and s.health
               and s.health.status == "down" then
                seen_503 = true
            end
            local all_closed = s.health_status == 200
            for _, n in ipairs(fault.UPSTREAMS) do
                if fault.breaker(s.health, n) == "open" then seen_open[n] = true end
                local blocker = fault.upstream(s.health, n).blocked_by
                if type(blocker) == "string" then
                    if fault.breaker(s.health, blocker) == "open"
                       and fault.upstream(s.health, n).status == "down" then
                        seen_open[n] = true
                    else
                        blocked_wrong[#blocked_wrong + 1] = string.format("+%.2f s %s", s.t - t_begin, n)
                    end
                end
                all_closed = all_closed and fault.breaker(s.health, n) == "closed"
            end
            if s.t > t_up then
                if all_closed then closed_since = closed_since or s.t else closed_since = nil end
            end
        end
        if #live_bad > 0 then
            problems[#problems + 1] = "/live did not answer 200 at " .. table.concat(live_bad, ", ")
        end
        if live_worst >= 0.25 then
            problems[#problems + 1] = string.format("/live took up to %.3f s", live_worst)
        end
        if not seen_503 then problems[#problems + 1] = "/health never answered 503 \"down\" while Postgres was down" end
        for _, n in ipairs(fault.UPSTREAMS) do
            if not seen_open[n] then
                problems[#problems + 1] = "/health never showed " .. n .. "'s breaker open (or " .. n
                                          .. " blocked by the upstream it depends on)"
            end
        end
        if #blocked_wrong > 0 then
            problems[#problems + 1] = "/health named a blocker whose breaker was not open, or a blocked "
                                      .. "upstream not down: " .. table.concat(blocked_wrong, ", ")
        end
        if not closed_since then
            problems[#problems + 1] = "/health did not show every breaker closed (and 200) by the end"
        elseif closed_since > t_up + open_wait + 1 then
            problems[#problems + 1] = string.format("breakers all closed only %.2f s after Postgres was back "
                                                    .. "(open_wait %.1f)", closed_since - t_up, open_wait)
        end

        -- Writes: acknowledged ones exactly once, none twice, definite failures not at all.
        local counts = {}
        local out = env.psql("select query->>'marker', count(*) from public.search_history "
                             .. "where user_id = " .. env.lit(u.id) .. " and search_type = 'fault' "
                             .. "group by 1")
        for marker, n in out:gmatch("([^|\n]+)|(%d+)") do counts[marker] = tonumber(n) end
        local acked, unknown, lost = 0, {}, {}
        for _, r in ipairs(records) do
            if r.method == "POST" then
                local n = counts[r.tag] or 0
                if ok2xx(r) then
                    acked = acked + 1
                    if n ~= 1 then lost[#lost + 1] = r.tag .. " acknowledged, stored " .. n .. "x" end
                elseif r.code == "TIDE_OUTCOME_UNKNOWN" or not r.status then
                    unknown[#unknown + 1] = string.format("%s (%s, stored %dx)", r.tag, r.code or r.err, n)
                    if n > 1 then lost[#lost + 1] = r.tag .. " outcome unknown, stored " .. n .. "x" end
                elseif n ~= 0 then
                    lost[#lost + 1] = string.format("%s answered %s %s, yet stored %dx", r.tag, r.status,
                                                    tostring(r.code), n)
                end
            end
        end
        if acked < 10 then problems[#problems + 1] = "only " .. acked .. " writes were acknowledged" end
        if #lost > 0 then problems[#problems + 1] = "writes stored wrongly:\n" .. table.concat(lost, "\n") end

        print(string.format(
            "\npostgres_down: %d requests (%d before, %d down, %d transition, %d after); "
            .. "slowest while down %.3f s; /live worst %.1f ms; breakers closed %s s after Postgres was "
            .. "back; %d writes acknowledged; outcome unknown: %s\n  while down: %s\n  transition: %s"
            .. "\n  timeline: %s",
            #records, #before, #down, #transition, #after, slowest, live_worst * 1000,
            closed_since and string.format("%.2f", closed_since - t_up) or "never", acked,
            #unknown > 0 and table.concat(unknown, ", ") or "none", fault.tally(down),
            fault.tally(transition), tostring(timeline)))
        assert.are.same({}, problems, table.concat(problems, "\n") .. "\n(timeline: " .. tostring(timeline) .. ")")
    end)
end)
