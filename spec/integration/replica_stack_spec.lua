-- spec/integration/replica_stack_spec.lua - the local stack's streaming replica (db/stack.sh
-- with TIDE_REPLICA=1, which spec/run.sh always sets; docs/operations.md "The local stack's
-- replica"): a row written on the primary shows on the replica within a bounded wait; the
-- replica is in recovery and refuses writes with SQLSTATE 25006; `db/stack.sh pause-replay`
-- holds a new row back (its replay position stays behind the primary's WAL position, and
-- `status` says so) until `resume-replay`; and a replica stopped with `stop-replica` gets what
-- was written meanwhile after `start-replica`, since the slot kept that WAL. The spec writes
-- only in a schema of its own (dropped in teardown) and always leaves the replica running and
-- replaying. Skipped (pending) when the runner has no replica (TIDE_DSN_REPLICA unset).

local env = require "spec.helpers.env"
local fault = require "spec.helpers.fault"

local DSN = os.getenv("TIDE_DSN_REPLICA")
local PORT = os.getenv("TIDE_REPLICA_PORT")
local SLOW = tonumber(os.getenv("TIDE_TEST_SLOWDOWN")) or 1
local WITHIN = 10 * SLOW        -- seconds a streamed row may take to show on the replica
local HELD = 1.0                -- seconds a paused replica must keep a new row back
local SCHEMA = "replica_stack_spec"

-- psql on dsn with verbose errors (they carry the SQLSTATE); returns the trimmed output and
-- whether it succeeded. Never raises.
local function psql_on(dsn, sql)
    local out, ok = env.run("psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose " ..
                            env.quote(dsn) .. " -c " .. env.quote(sql) .. " 2>&1")
    return (out:gsub("^%s+", ""):gsub("%s+$", "")), ok
end

describe("the local stack's replica", function()
    if not (DSN and DSN ~= "" and PORT and fault.stack_dir) then
        pending("no replica: start the stack with TIDE_REPLICA=1 and export TIDE_DSN_REPLICA, " ..
                "TIDE_REPLICA_PORT and TIDE_STACK_DIR from its stack.env (spec/run.sh does)")
        return
    end

    -- the replica as the superuser (trusted from 127.0.0.1 on the dev stack, as on the primary)
    local SU = "postgresql://postgres@127.0.0.1:" .. PORT .. "/tide"

    -- SQL on the replica as the superuser; raises on error.
    local function replica(sql)
        local out, ok = psql_on(SU, sql)
        assert(ok, "psql on the replica failed: " .. out .. "\nSQL: " .. sql)
        return out
    end

    local function count_on_replica(id)
        return replica("select count(*) from " .. SCHEMA .. ".probe where id = " .. env.lit(id))
    end

    local function count_on_primary(id)
        return env.psql_value("select count(*) from " .. SCHEMA .. ".probe where id = " .. env.lit(id))
    end

    local function write(id)
        env.psql("insert into " .. SCHEMA .. ".probe (id) values (" .. env.lit(id) .. ")")
    end

    -- the replica running and replaying, whatever a test left behind
    local function put_back()
        local status = fault.stack("status", true)
        if not status:match("\nreplica%s+running") and not status:match("^replica%s+running") then
            fault.stack("start-replica", true)
        end
        fault.stack("resume-replay", true)
    end

    setup(function()
        env.need("dsn_admin")
        put_back()
        env.psql("create schema if not exists " .. SCHEMA .. "; " ..
                 "create table if not exists " .. SCHEMA .. ".probe " ..
                 "(id text primary key, at timestamptz not null default now())")
        assert(env.wait_until(function()
            return replica("select to_regclass('" .. SCHEMA .. ".probe') is not null") == "t"
        end, WITHIN, 0.05), SCHEMA .. ".probe did not reach the replica within " .. WITHIN .. " s")
    end)

    teardown(function()
        put_back()
        env.psql("drop schema if exists " .. SCHEMA .. " cascade")
    end)

    it("shows a row written on the primary within a bounded wait", function()
        local id = env.uuid()
        local t0 = env.now()
        write(id)
        local seen, last = env.wait_until(function() return count_on_replica(id) == "1" end, WITHIN, 0.02)
        assert.is_truthy(seen, "row not on the replica after " .. WITHIN .. " s (count " ..
                         tostring(last and last[1]) .. ")")
        assert.is_true(env.now() - t0 < WITHIN)
    end)

    it("is in recovery, reached by TIDE_DSN_REPLICA as authenticator", function()
        local out, ok = psql_on(DSN, "select pg_is_in_recovery(), current_user, " ..
                                     "current_setting('port')")
        assert.is_true(ok, out)
        assert.are.equal("t|authenticator|" .. PORT, out)
        assert.are.equal("f", env.psql_value("select pg_is_in_recovery()"))
    end)

    it("refuses writes with SQLSTATE 25006 (read-only transaction)", function()
        local id = env.uuid()
        local out, ok = psql_on(SU, "insert into " .. SCHEMA .. ".probe (id) values (" .. env.lit(id) .. ")")
        assert.is_false(ok, out)
        assert.matches("ERROR:%s+25006:", out)
        out, ok = psql_on(DSN, "create temp table replica_stack_spec_tmp (a int)")
        assert.is_false(ok, out)
        assert.matches("ERROR:%s+25006:", out)
        assert.are.equal("0", count_on_primary(id))
    end)

    it("holds a new row back while replay is paused, and shows it after resume-replay", function()
        finally(function() fault.stack("resume-replay", true) end)
        fault.stack("pause-replay")
        local id = env.uuid()
        write(id)
        env.sleep(HELD)
        assert.are.equal("1", count_on_primary(id))
        assert.are.equal("0", count_on_replica(id), "the paused replica shows the new row")
        local replayed = replica("select pg_last_wal_replay_lsn()")
        local primary = env.psql_value("select pg_current_wal_lsn()")
        assert.are.equal("t", env.psql_value("select " .. env.lit(replayed) .. "::pg_lsn < " ..
                                             env.lit(primary) .. "::pg_lsn"),
                         "replayed " .. replayed .. ", primary at " .. primary)
        assert.are.equal("paused", replica("select pg_get_wal_replay_pause_state()"))
        assert.matches("replica%s+running.-replay paused", (fault.stack("status", true)))

        fault.stack("resume-replay")
        local seen = env.wait_until(function() return count_on_replica(id) == "1" end, WITHIN, 0.02)
        assert.is_truthy(seen, "row not on the replica " .. WITHIN .. " s after resume-replay")
        assert.are.equal("not paused", replica("select pg_get_wal_replay_pause_state()"))
    end)

    it("gets what was written while it was stopped after start-replica (the slot kept it)", function()
        finally(put_back)
        fault.stack("stop-replica")
        -- the primary's walsender notices the replica gone a moment after it exited
        local idle, last = env.wait_until(function()
            local s = env.psql("select active, wal_status from pg_replication_slots " ..
                               "where slot_name = 'tide_replica'")
            return s == "f|reserved", s
        end, 5, 0.05)
        assert.is_truthy(idle, "slot tide_replica (active|wal_status): " .. tostring(last and last[2]))
        local id = env.uuid()
        write(id)
        env.psql("select pg_switch_wal()")     -- the row's WAL in a finished segment
        write(env.uuid())
        fault.stack("start-replica")
        local seen = env.wait_until(function() return count_on_replica(id) == "1" end, WITHIN, 0.05)
        assert.is_truthy(seen, "row written while the replica was stopped not there " .. WITHIN ..
                         " s after start-replica")
        assert.is_truthy(env.wait_until(function()
            return env.psql_value("select active from pg_replication_slots " ..
                                  "where slot_name = 'tide_replica'") == "t"
        end, WITHIN, 0.05), "the replica does not stream through slot tide_replica again")
    end)
end)
