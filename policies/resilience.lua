-- policies/resilience.lua - how tide behaves when an upstream misbehaves, per upstream.
--
-- Every upstream (direct, session, transaction) takes `defaults`, then its own table in
-- `upstreams` on top (key by key inside retry/breaker/pool). A SIGHUP reload applies changes
-- to the running pools and breakers without resetting them: an open breaker stays open, open
-- connections stay open (a smaller pool retires the extra ones as they come back).
--
-- retry      attempts (in all; 1 = never retry), backoff base and cap in seconds (full
--            jitter: each wait is random in [0, min(cap, base * 2^n)]), budget = retries may be
--            at most this share of recent calls. Only what is safe is retried: a statement
--            that never reached the server, serialization failures and deadlocks (40001,
--            40P01), a server shutting the connection (57P01), and a lost connection on a
--            read. A write whose outcome is unknown is never retried (TIDE_OUTCOME_UNKNOWN).
-- breaker    window (calls in the sliding window), failure_rate (0..1) once the window holds
--            min_calls, or `consecutive` failures in a row, open it; it stays open open_wait
--            seconds (calls fail fast with 503 + Retry-After, or use `fallback`), then lets
--            half_open_probes calls through: that many successes close it, a failure reopens it.
--            Only upstream failures count (connection errors, shutdowns, timeouts), not SQL
--            errors such as a unique violation.
-- pool       size, acquire_timeout (seconds to wait for a free connection, then 504
--            TIDE_ACQUIRE_TIMEOUT), statement_timeout (seconds; set in Postgres per statement,
--            and a client-side deadline one second later for a server that does not answer),
--            max_lifetime (seconds; older connections are retired between requests),
--            idle_timeout (seconds an unused connection is kept), pipeline (once every
--            connection is busy, one connection may carry this many requests' statements at
--            once - each still its own transaction - so Postgres goes from one to the next
--            without waiting for tide, and one send carries both; 2, the default, served the
--            bench's point read at a higher rate and lower CPU per request than 1 with the
--            same p99, deeper lengthened p99; 1 turns it off; only on upstreams with prepared
--            statements: a transaction-mode PgBouncer 1.18 mishandles it).
-- fallback   another upstream used while this one's breaker is open (nil = fail fast).
-- depends_on another upstream (the Postgres behind a pooler): while its breaker is open this
--            one takes no calls either, and the calls waiting on it are failed at once (reads
--            retry or fall back, writes already sent answer TIDE_OUTCOME_UNKNOWN).
-- required   whether /ready and /health report tide down while this upstream is down.
-- probe_interval  seconds between health probes (SELECT 1) shown on /health.
-- lag        for the replica upstream: every poll_interval seconds tide reads its replay
--            position and the primary's WAL position; while it is more than max_ms behind
--            (or max_bytes of WAL; 0 = no byte bound), or no reading has come for three
--            intervals, it takes no calls and they go to its fallback. read_your_writes: for
--            that many seconds after a caller's write, their reads skip a replica that has
--            not replayed it (the answer's Tide-LSN header, sent back by the client, does the
--            same on any instance). Ignored elsewhere.
--
-- The defaults live in C (runtime/upstream.c's schema table, one row per key with its type,
-- bounds and default); a key left out here takes that value. The values below repeat them for
-- reading. tide reads this table through the schema and refuses a wrong type, a value out of
-- bounds or an unknown key (a typo) with a message naming it; on SIGHUP such a policy rejects
-- the whole bundle and the running one keeps serving. `tide check` prints the effective
-- settings of every upstream.
local _M = {}

_M.defaults = {
    retry = { attempts = 3, base = 0.05, cap = 1.0, budget = 0.2 },
    breaker = { window = 20, failure_rate = 0.5, min_calls = 10, consecutive = 5,
                open_wait = 1.0, half_open_probes = 2 },
    pool = { size = 0, acquire_timeout = 2.0, statement_timeout = 5.0,   -- size 0: auto
             max_lifetime = 1800, idle_timeout = 300, pipeline = 2 },
    fallback = nil,
    required = true,
    probe_interval = 1.0,
    lag = { max_ms = 1000, max_bytes = 16777216, poll_interval = 0.25, read_your_writes = 10 },
}

_M.upstreams = {
    direct = {},
    -- the poolers stand in front of the same Postgres: while direct's breaker is open they are
    -- treated as down too (a pooler would queue queries for minutes rather than fail them)
    session = { depends_on = "direct" },
    -- reads through the transaction pooler fall back to Postgres itself while it is down
    transaction = { fallback = "direct", required = false, depends_on = "direct" },
    -- a streaming replica (upstreams.replica.dsn; without one, "replica" is direct itself):
    -- reads routed to it go to Postgres itself while it is down or too far behind
    replica = { fallback = "direct", required = false },
}

return _M
