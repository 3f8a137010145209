-- spec/fault/replica_outage_spec.lua - reads routed to the stack's streaming replica while
-- the replica, then the primary, goes away (immediate stops: every backend dies at once).
-- The served bundle's routing sends every select to "replica" (reads of GET /v1/trips); writes
-- (POST /v1/search-history) go through the session pooler to the primary as shipped. Reads are
-- sent as a user who writes nothing (no read-your-writes floor), writes as another. What a
-- user must see:
--   * the replica stopped: every read succeeds (a read whose replica connection failed is
--     retried on direct, its fallback, and the replica takes no calls until it is back);
--     /health shows the replica not eligible, then eligible again once it is back;
--   * the primary stopped: every read succeeds, answered by the replica at its last position;
--     writes fail fast (< 1 s) with 503 and a stable code; 2 s after the primary accepts
--     connections again writes succeed.
-- Bounded: at most 1500 requests and 40 s of load per case; timelines go to
-- TIDE_STACK_DIR/logs/fault-replica_*.txt.

local env = require "spec.helpers.env"
local fault = require "spec.helpers.fault"
local api = require "spec.helpers.api"

local WARM, DOWN, BACK, FAST = 1.0, 3.0, 2.0, 1.0

local function ok2xx(r) return r.status ~= nil and r.status >= 200 and r.status < 300 end

local function down_code(code)
    return code ~= nil and (code:match("^08") ~= nil or code == "TIDE_UPSTREAM_UNAVAILABLE"
                            or code == "TIDE_OUTCOME_UNKNOWN" or code:match("^57P0[123]$") ~= nil)
end

describe("fault: the replica and its primary stopped under load", function()
    local reader, writer, policy, saved

    setup(function()
        if not os.getenv("TIDE_DSN_REPLICA") then return end
        writer = fault.healthy_user()
        reader = api.user()
        api.trip(reader)
        policy = env.bundle_dir .. "/policies/routing.lua"
        saved = assert(env.read_file(policy))
        env.write_file(policy, (saved:gsub("\nreturn _M%s*$",
            '\n_M.default.select = "replica"  -- replica_outage_spec\nreturn _M\n')))
        env.hup()
        assert(env.wait_until(function()
            local status, h = fault.health()
            local rep = status and fault.upstream(h, "replica")
            return rep and type(rep.lag) == "table" and rep.lag.eligible
        end, 10, 0.1), "the replica never became eligible")
    end)

    teardown(function()
        if saved then
            env.write_file(policy, saved)
            env.hup()
        end
        if writer then fault.restore_stack(writer, 30) end
    end)

    local function need_replica()
        if not os.getenv("TIDE_DSN_REPLICA") then
            pending("no replica in this stack (TIDE_DSN_REPLICA unset)")
            return false
        end
        return true
    end

    local function read() return "GET", "/v1/trips?limit=5", nil, nil, reader end

    it("serves every read while the replica is down and back", function()
        if not need_replica() then return end
        local t_begin = env.now()
        local marks = {}
        local tick, wait_jobs = fault.outage {
            t0 = t_begin, after = WARM, fault = "stop-replica immediate", down = DOWN,
            repair = "start-replica", watch = 3, marks = marks,
            names = { "stop", "down", "start", "up" },
        }
        finally(function()
            wait_jobs(60)
            fault.stack("start-replica", true)
        end)
        local records, samples = fault.drive {
            user = reader, max = 1500, limit = 40, pause = 0.03, sample_every = 0.1, timeout = 15,
            lanes = { read, read, read }, tick = tick,
        }
        local timeline = fault.dump("replica_stop", t_begin, marks, records, samples)
        assert.is_truthy(marks["end"], "the load ended early (" .. tostring(timeline) .. ")")
        local bad, during = {}, 0
        for _, r in ipairs(records) do
            if not ok2xx(r) then bad[#bad + 1] = r end
            if r.t0 >= marks.down and r.t1 <= marks.start then during = during + 1 end
        end
        local out_seen, back = false, nil
        for _, s in ipairs(samples) do
            local rep = fault.upstream(s.health, "replica")
            local eligible = type(rep.lag) == "table" and rep.lag.eligible
            if s.t >= marks.down and s.t <= marks.start and eligible == false then out_seen = true end
            if s.t >= marks.up then
                if eligible then back = back or s.t else back = nil end
            end
        end
        print(string.format("\nreplica_stop: %d reads (%d while the replica was down), %d failed; "
                            .. "replica eligible again %s s after it was back\n  timeline: %s",
                            #records, during, #bad, back and string.format("%.2f", back - marks.up)
                            or "never", tostring(timeline)))
        assert.is_true(during >= 20, "only " .. during .. " reads while the replica was down")
        assert.are.same({}, bad, #bad .. " reads failed:\n" .. fault.list(bad, 8))
        assert.is_true(out_seen, "/health never showed the replica out while it was down")
        assert.is_truthy(back, "/health did not show the replica eligible again by the end")
    end)

    it("serves reads from the replica while the primary is down; writes fail fast", function()
        if not need_replica() then return end
        local run = env.uuid():sub(1, 8)
        local t_begin = env.now()
        local marks = {}
        local tick, wait_jobs = fault.outage {
            t0 = t_begin, after = WARM, fault = "stop-pg immediate", down = DOWN,
            repair = "start-pg", watch = BACK + 2, marks = marks,
            names = { "stop", "down", "start", "up" },
        }
        finally(function()
            wait_jobs(60)
            fault.stack("start-pg", true)
        end)
        local function write(i)
            return "POST", "/v1/search-history",
                   { search_type = "fault", query = { marker = run .. "-" .. i } }, run .. "-" .. i
        end
        local records, samples = fault.drive {
            user = writer, max = 1500, limit = 40, pause = 0.05, sample_every = 0.2, timeout = 15,
            lanes = { read, read, write, read }, tick = tick,
        }
        local timeline = fault.dump("replica_primary_down", t_begin, marks, records, samples)
        assert.is_truthy(marks["end"], "the load ended early (" .. tostring(timeline) .. ")")
        local problems = {}
        local reads_down, writes_down, bad_reads, slow_writes, unclear, late = 0, 0, {}, {}, {}, {}
        for _, r in ipairs(records) do
            local is_read = r.method == "GET"
            if is_read and not ok2xx(r) then bad_reads[#bad_reads + 1] = r end
            if r.t0 >= marks.down and r.t1 <= marks.start then
                if is_read then reads_down = reads_down + 1
                else
                    writes_down = writes_down + 1
                    if r.elapsed >= FAST then slow_writes[#slow_writes + 1] = r end
                    if not (r.status == 503 and down_code(r.code)) then unclear[#unclear + 1] = r end
                end
            end
            if not is_read and r.t0 >= marks.up + BACK and not ok2xx(r) then late[#late + 1] = r end
        end
        local function problem(list, what)
            if #list > 0 then problems[#problems + 1] = #list .. " " .. what .. ":\n" .. fault.list(list, 8) end
        end
        if reads_down < 20 then problems[#problems + 1] = "only " .. reads_down .. " reads while down" end
        if writes_down < 5 then problems[#problems + 1] = "only " .. writes_down .. " writes while down" end
        problem(bad_reads, "reads failed")
        problem(slow_writes, "writes while the primary was down took a second or more")
        problem(unclear, "writes while the primary was down were not a 503 with a stable code")
        problem(late, "writes failed " .. BACK .. " s after the primary was back")
        print(string.format("\nreplica_primary_down: %d requests; while down %d reads (all served: %s), "
                            .. "%d writes (%s)\n  timeline: %s", #records, reads_down,
                            tostring(#bad_reads == 0), writes_down, fault.tally(records), tostring(timeline)))
        assert.are.same({}, problems, table.concat(problems, "\n"))
    end)
end)
