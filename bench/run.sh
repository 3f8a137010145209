#!/usr/bin/env bash
# bench/run.sh - `make bench`: how close tide comes to the database work behind it (issues 3, 9
# and 11).
#
# What it measures, in one run (each measured wrk run lasts BENCH_DURATION s after a warm-up
# whose results are discarded), with wrk -t2 -c64 --latency against tide and pgbench against
# Postgres:
#   1. point read  GET /v1/trips/:id           vs pgbench on the same statements
#   2. list        GET /v1/trips?limit=20      vs pgbench
#   3. write       POST /v1/search-history     vs pgbench
#   4. vector      POST /v1/destinations/similar (top 10) vs pgbench
#   5. the point read with reads routed through the transaction-mode PgBouncer (the repository's
#      default policy, swapped in with SIGHUP) vs pgbench through the same PgBouncer port on the
#      same statements (-M extended: PgBouncer 1.18 keeps no prepared statements)
#   6. tide's resident memory per idle keep-alive connection (10,000 of them, bench/idle.c) and
#      the latency of one more request while they are open
# pgbench runs at each client count of BENCH_PG_CLIENTS (4 8 16 32 64; BENCH_CONNS is added when
# missing), each BENCH_PG_DURATION s after a BENCH_PG_WARMUP s warm-up; tide is compared with
# pgbench's BEST rate (bar >= 0.8; workload 5: >= 0.9), and tide's p99 with pgbench's p99 at
# the same concurrency (-c BENCH_CONNS, what wrk keeps in flight; bar <= 2x).
# Around every measured tide run the bench also reads
#   - tide's CPU time (/proc/<pid>/stat utime + stime, clock ticks of `getconf CLK_TCK`) and
#     divides it by the requests wrk completed: CPU µs per request (for the OpenResty baseline,
#     the nginx worker's, the same way);
#   - tide's /metrics histogram tide_event_loop_pass_seconds, before the warm-up, before and
#     after the measured run: the passes over 20 ms during the run (bar: none) and the upper
#     bound of the highest non-empty bucket (an upper estimate of the longest pass);
#   - BENCH_PROFILE=1: perf record -g on tide during the measured run, summarised (top 10
#     symbols by self time, the split by DSO: kernel, tide, libc, luajit, libpq, other) into the
#     report; the whole reports in var/bench/logs/perf-NAME.txt.
# and the result cache (issue 9, policies/cache.lua), same wrk settings, over a bounded set of
# BENCH_CACHE_IDS trips (k = 1..N, ids 1000000 + k, each read with its owner's token):
#   7. point read as warm cache hits   GET /v1/trips/:id after a pass (curl) that reads every
#      trip of the set once, so each id wrk asks for is in the cache
#   8. the same point read uncached    (Cache-Control: no-cache: X-Cache BYPASS, same route and
#      bundle); the bar: 7 >= 5x 8
#   9. the OpenResty baseline          nginx + lua-nginx-module (Debian), one worker, serving the
#      same bodies (fetched from tide by the pass) from a lua_shared_dict with no JWT check
#      (bench/openresty/nginx.conf); the bar: 7 >= 0.7x 9, and 7's p99 <= 2 ms
#  10. GET /v1/destinations/popular warm (one public entry)
#  11. a 90% read / 10% write mix     GET and PATCH /v1/trips/:id (the trip's notes) over the set,
#      after another pass; then every trip of the set is read through the cache and with
#      no-cache and the bodies compared (a cached answer older than the last write is a bug)
#  12. warm cache hits with 1 and 2 workers (issue 11, BENCH_WORKERS): tide started again with
#      TIDE_WORKERS=N for each N, every worker's cache flushed and filled, then workload 7's
#      wrk run; tide's CPU is the parent's and all workers' together, and wrk's own CPU is
#      recorded so the report can account for the share of the cores the load generator took
#      (the bar: 2 workers >= 1.6x 1 worker, with that share accounted for); afterwards tide
#      runs again as before
#  13. budgets: what script budgets (runtime/guard.c: every run of Lua timed, the CPU tick - a
#      timer on the event-loop thread's own CPU clock that signals that thread every 5 ms of CPU
#      it uses -, the counting allocator; and LuaJIT built with LUAJIT_ENABLE_CHECKHOOK) cost on
#      the point read (workload 1's script) and the warm cache hit (workload 7's), as tide's CPU
#      µs per request of two binaries serving AT THE SAME TIME on the same stack, bundle and
#      nice: the baseline, var/build-bench-base/tide (built here with -DTIDE_NO_GUARD against
#      var/luajit-nohook, db/luajit.sh nohook: tide as it was before budgets) and the current
#      build/tide, each on its own ports under its own wrk -t1 -c BENCH_BUDGET_CONNS (16), the
#      two wrk runs started together. BENCH_BUDGET_ROUNDS rounds (6) of BENCH_DURATION s: both
#      tides started afresh for each, their ports swapped every round (neither always has the
#      first pair); the point read, then both caches flushed and filled and the warm hits. CPU
#      is the serving process's (the worker: /admin/stats "pid"), utime + stime. Run in turn,
#      one binary's CPU per request moved 17-44 % between rounds on this machine; served at
#      once, both see the same noise (the warm hits' ratios held within about 3 %; the point
#      read's, which Postgres bounds, spread more: docs/bench.md). The bar (the report):
#      the median over rounds of current / baseline CPU per request <= 1.03 on both. When perf
#      can count instructions here (`perf stat -e instructions` on a machine with a PMU), each
#      worker's instructions per request are recorded too (BENCH_PERF_EVENT). The tick replaced
#      a watchdog thread: the 6-7 % more CPU per request this workload measured for it on the
#      point read came from the kernel's and glibc's multi-threaded paths a second thread turns
#      on, not from the thread's own work; the worker is single-threaded again.
# and the read replica (issue 21, docs/replicas.md; BENCH_ONLY=replica, and every full run):
# BENCH_REPLICA_ROUNDS rounds (3) of the point read primary-only on tide without a replica
# (rep_base_i, the reference), then tide with the bench stack's replica (TIDE_DSN_REPLICA; no
# other workload's tide has it): the point read to direct (rep_direct_i), every select routed to
# the replica (rep_replica_i), selects alternating replica / direct (rep_split_i), and the
# write-then-read pair (bench/wrk/replica_pair.lua: POST, then a GET carrying the write's
# Tide-LSN) with reads to direct and to the replica (pair_direct_i, pair_replica_i); the reads
# each server answered (tide's pool jobs less the lag poller's rounds; Postgres' pg_stat_database
# beside them); the bar (the report): the median over rounds of tide's CPU per request routed /
# primary-only <= 1.10 for rep_replica and rep_split.
# wrk counts the X-Cache values it gets (bench/wrk/common.lua); tide's /admin/stats "cache"
# section, when it has one, gives the hit ratio tide saw during each measured run. Workloads 1
# and 5 send Cache-Control: no-cache: they measure the database path pgbench runs.
# BENCH_POOL_SWEEP=1 (or BENCH_ONLY=pool) adds the pool sweep: the point read of workload 1 with
# tide's direct pool at each size of BENCH_POOL_SIZES (4 8 16 32 64), set by a rewritten
# policies/resilience.lua and SIGHUP, and the size that served the most requests/s.
# Every wrk request carries the token of the row's owner (RLS on). pgbench runs the statements
# tide sends: bench/gen.lua runs each route through tide's own Lua (router, scripts, tide.db,
# builder) with a recording fake core and writes pgbench scripts from what it captured: one
# pipeline per transaction (\startpipeline: the set_config of claims and role, the statement,
# \endpipeline = Sync), -M prepared (tide uses named prepared statements on `direct`), as
# authenticator on the direct port. For workloads 1-4 and 6 tide serves a copy of the bundle
# (var/bench/bundle) whose routing policy sends every call to `direct`, the path pgbench takes.
#
# How: a bench stack (db/stack.sh, TIDE_STACK_DIR=var/bench, TIDE_REPLICA=1: with its streaming
# replica) on its own ports, reused when it already runs; the data set of bench/data.sql (1,000 users, 100,000 trips, the demo's 5,000
# destinations), loaded once; one token per user (bench/gen.lua); tide from build/tide on
# 127.0.0.1. Prints the Markdown report (bench/report.lua) and writes it to
# bench/results/latest.md; logs, wrk and pgbench outputs under var/bench/logs, tide's logs in
# var/bench/tide.{out,err}.
# Everything listens on and connects to 127.0.0.1 only, every step has a time limit, tide (and
# nginx: var/bench/openresty holds its config, pid, logs and temp dirs) is stopped on exit; the
# bench stack is left running for the next run unless BENCH_STOP=1.
#
# Env (defaults): BENCH_PG_PORT 15442, BENCH_SESSION_PORT 15443, BENCH_TXN_PORT 15444,
#   BENCH_REPLICA_PORT 15447 (the bench stack's streaming replica), BENCH_REPLICA_ROUNDS 3,
#   BENCH_HTTP_PORT 18180, BENCH_ADMIN_PORT 18181, BENCH_DURATION 10, BENCH_WARMUP 3,
#   BENCH_PG_CLIENTS "4 8 16 32 64", BENCH_PG_DURATION 5, BENCH_PG_WARMUP 2, BENCH_CONNS 64,
#   BENCH_POOL (policy: the repository's policies/resilience.lua decides - pool.size 0, auto:
#   3 per CPU; a number: that size for every upstream), BENCH_PIPELINE (policy; a number:
#   every pool's pipeline depth), BENCH_THREADS 2,
#   BENCH_IDLE_CONNS 10000, BENCH_STOP (unset: keep the stack), BENCH_PROFILE (1: perf profile
#   of tide during each measured run), BENCH_POOL_SWEEP (1: the pool sweep),
#   BENCH_POOL_SIZES "4 8 16 32 64", TIDE_JWT_SECRET (a bench secret), PGBENCH (found),
#   BENCH_ONLY (all: every workload; base: 1-6; cache: 7-12, the quick loop while working on the
#   cache; pool: only the pool sweep; workers: only 12; budgets: only 13; replica: only the
#   replica workloads), BENCH_BUDGET_ROUNDS 6
#   (workload 13's rounds, 2..20), BENCH_BUDGET_CONNS 16 (each of workload 13's two wrk runs),
#   BENCH_BUDGET_PORT 18190 (workload 13's two tides: HTTP and admin ports BENCH_BUDGET_PORT + 0
#   and + 1, + 2 and + 3), BENCH_BASE_CFLAGS (workload 13's baseline: $CFLAGS as make
#   passes it, else -O2 -g, the Makefile's default; -DTIDE_NO_GUARD is added), BENCH_PERF_EVENT
#   instructions (what perf stat counts in workload 13's runs, when it can), BENCH_CACHE_IDS 10000 (the cache
#   workloads' trip set, at most 100000), BENCH_WRITE_PCT 10 (writes in workload 11, percent),
#   BENCH_OPENRESTY_PORT 18189, BENCH_NGINX (/usr/sbin/nginx), BENCH_WORKERS "1 2" (workload
#   12: the worker counts; with N workers the admin ports BENCH_ADMIN_PORT + 0..N-1 must be
#   free), BENCH_NICE -5 (tide's TIDE_NICE, and the OpenResty worker's priority).
# shellcheck disable=SC2012,SC2013,SC2015   # ls of a glob of fixed paths; one-line output; `a && b || die`
set -euo pipefail
umask 022                  # the stack directory must stay traversable for the postgres user
export LC_ALL=C
cd "$(dirname "$0")/.."
repo=$(pwd -P)
started=$SECONDS

B=$repo/var/bench                    # the bench stack's TIDE_STACK_DIR and everything generated
GEN=$B/gen
LOGS=$B/logs
RESULTS=$B/results.txt
OUT_MD=$repo/bench/results/latest.md
PG_PORT=${BENCH_PG_PORT:-15442}
SESSION_PORT=${BENCH_SESSION_PORT:-15443}
TXN_PORT=${BENCH_TXN_PORT:-15444}
REPLICA_PORT=${BENCH_REPLICA_PORT:-15447}   # the bench stack's streaming replica (db/stack.sh's + 5)
HTTP_PORT=${BENCH_HTTP_PORT:-18180}
ADMIN_PORT=${BENCH_ADMIN_PORT:-18181}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-3}
PG_WARMUP=${BENCH_PG_WARMUP:-2}
PG_DURATION=${BENCH_PG_DURATION:-5}
PG_CLIENTS=${BENCH_PG_CLIENTS:-4 8 16 32 64}
CONNS=${BENCH_CONNS:-64}
THREADS=${BENCH_THREADS:-2}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
TIDE_BIN=$repo/build/tide
URL=http://127.0.0.1:$HTTP_PORT
ADMIN=http://127.0.0.1:$ADMIN_PORT
ONLY=${BENCH_ONLY:-all}
NIDS=${BENCH_CACHE_IDS:-10000}
WRITE_PCT=${BENCH_WRITE_PCT:-10}
OR_PORT=${BENCH_OPENRESTY_PORT:-18189}
NGINX=${BENCH_NGINX:-/usr/sbin/nginx}
NGINX_MODULES=/usr/lib/nginx/modules
OR_DIR=$B/openresty                  # nginx's prefix: config, pid, logs, temp dirs
CACHE_DIR=$B/cache                   # the passes' answers and bodies
PROFILE=${BENCH_PROFILE:-}
POOL_SWEEP=${BENCH_POOL_SWEEP:-}
POOL_SIZES=${BENCH_POOL_SIZES:-4 8 16 32 64}
WORKERS=${BENCH_WORKERS:-1 2}
BUDGET_ROUNDS=${BENCH_BUDGET_ROUNDS:-6}
BUDGET_CONNS=${BENCH_BUDGET_CONNS:-16}
BUDGET_PORT=${BENCH_BUDGET_PORT:-18190}
REPLICA_ROUNDS=${BENCH_REPLICA_ROUNDS:-3}
# workload 13's baseline: tide without budgets, against LuaJIT without the hook check
BASE_BUILD=var/build-bench-base
BASE_BIN=$repo/$BASE_BUILD/tide
BASE_CFLAGS="${BENCH_BASE_CFLAGS:-${CFLAGS:--O2 -g}} -DTIDE_NO_GUARD"
PERF_EVENT=${BENCH_PERF_EVENT:-instructions}
perf_stat=                 # 1: workload 13's runs count $PERF_EVENT with perf stat
tide_pid=                  # the process the bench started: tide, or with workers their parent
tide_workers=()            # with workers (README "Workers"): their pids, worker i at index i
admin_ports=()             # the admin listener of each worker (admin.port + i), or admin.port
tide_err_from=0            # lines of var/bench/tide.err before the running tide started
nginx_pid=
nginx_worker=
# workload 13's two tides (v = base, cur): what was started (with supervision, the parent),
# the process that serves (/admin/stats "pid": the worker), the binary and the ports
declare -A bt_pid=() bt_worker=() bt_bin=() bt_http=() bt_admin=()
case $ONLY in all|base|cache|pool|workers|budgets|replica) ;; *) echo "bench: error: BENCH_ONLY=$ONLY (all, base, cache, pool, workers, budgets or replica)" >&2; exit 2 ;; esac
[ "$ONLY" != pool ] || POOL_SWEEP=1
# numbers LIST MIN MAX: whether LIST is one or more whole numbers in MIN..MAX.
numbers() {
  local n k=0
  for n in $1; do
    [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge "$2" ] && [ "$n" -le "$3" ] || return 1
    k=$((k + 1))
  done
  [ "$k" -gt 0 ]
}
numbers "$PG_CLIENTS" 1 1000 || { echo "bench: error: BENCH_PG_CLIENTS='$PG_CLIENTS' (client counts, 1..1000)" >&2; exit 2; }
numbers "$POOL_SIZES" 1 1000 || { echo "bench: error: BENCH_POOL_SIZES='$POOL_SIZES' (pool sizes, 1..1000)" >&2; exit 2; }
numbers "$WORKERS" 1 64 || { echo "bench: error: BENCH_WORKERS='$WORKERS' (worker counts, 1..64)" >&2; exit 2; }
numbers "$BUDGET_ROUNDS" 2 20 || { echo "bench: error: BENCH_BUDGET_ROUNDS=$BUDGET_ROUNDS (2..20)" >&2; exit 2; }
numbers "$REPLICA_ROUNDS" 1 20 || { echo "bench: error: BENCH_REPLICA_ROUNDS=$REPLICA_ROUNDS (1..20)" >&2; exit 2; }
numbers "$BUDGET_CONNS" 1 1000 || { echo "bench: error: BENCH_BUDGET_CONNS=$BUDGET_CONNS (1..1000)" >&2; exit 2; }
numbers "$BUDGET_PORT" 1024 32764 || { echo "bench: error: BENCH_BUDGET_PORT=$BUDGET_PORT (1024..32764: it and the 3 ports above it)" >&2; exit 2; }
[[ $PERF_EVENT =~ ^[A-Za-z0-9_:./-]+$ ]] || { echo "bench: error: BENCH_PERF_EVENT=$PERF_EVENT (one perf event name)" >&2; exit 2; }
numbers "$CONNS" 1 10000 || { echo "bench: error: BENCH_CONNS=$CONNS" >&2; exit 2; }
numbers "$DURATION $WARMUP $PG_DURATION $PG_WARMUP" 1 600 \
  || { echo "bench: error: BENCH_DURATION, BENCH_WARMUP, BENCH_PG_DURATION, BENCH_PG_WARMUP: seconds, 1..600" >&2; exit 2; }
# pgbench's client counts, ascending, with wrk's concurrency among them (the p99 comparison).
# ascending_list LIST: the whole numbers of LIST, ascending, each once, space-separated.
ascending_list() { tr -s ' \t' '\n' <<<"$1" | grep . | sort -n -u | tr '\n' ' ' | sed 's/ $//'; }
PG_CLIENTS=$(ascending_list "$PG_CLIENTS $CONNS")
POOL_SIZES=$(ascending_list "$POOL_SIZES")
[[ $NIDS =~ ^[0-9]+$ ]] && [ "$NIDS" -ge 1000 ] && [ "$NIDS" -le 100000 ] \
  || { echo "bench: error: BENCH_CACHE_IDS=$NIDS (1000..100000)" >&2; exit 2; }
[[ $WRITE_PCT =~ ^[0-9]+$ ]] && [ "$WRITE_PCT" -le 100 ] \
  || { echo "bench: error: BENCH_WRITE_PCT=$WRITE_PCT (0..100)" >&2; exit 2; }
want_base() { [ "$ONLY" = all ] || [ "$ONLY" = base ]; }
want_cache() { [ "$ONLY" = all ] || [ "$ONLY" = cache ]; }
want_workers() { [ "$ONLY" = all ] || [ "$ONLY" = cache ] || [ "$ONLY" = workers ]; }
want_pool_sweep() { [ "$POOL_SWEEP" = 1 ]; }
want_budgets() { [ "$ONLY" = all ] || [ "$ONLY" = budgets ]; }
want_replica() { [ "$ONLY" = all ] || [ "$ONLY" = replica ]; }

# A caller's libpq and tide environment must not redirect ours.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS \
      TIDE_CONFIG TIDE_SCRIPTS_DIR TIDE_POLICIES_DIR TIDE_BINDINGS_DIR TIDE_LOG_LEVEL \
      TIDE_ENCRYPTION_KEY TIDE_DSN_DIRECT TIDE_DSN_SESSION TIDE_DSN_TRANSACTION TIDE_DSN_REPLICA \
      TIDE_WORKERS
export TIDE_JWT_SECRET=${TIDE_JWT_SECRET:-tide-bench-jwt-secret-0123456789-abcdefghijkl}
# the bench runs on secrets published in this repository: development mode says that is meant
export TIDE_DEV=1

say() { printf 'bench: %s\n' "$*"; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }
res() { printf '%s=%s\n' "$1" "$2" >>"$RESULTS"; }

# stop_nginx: QUIT (graceful), then KILL of the master and its worker after 5 s.
stop_nginx() {
  [ -n "$nginx_pid" ] || return 0
  if kill -0 "$nginx_pid" 2>/dev/null; then
    kill -QUIT "$nginx_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$nginx_pid" 2>/dev/null || true
  fi
  wait "$nginx_pid" 2>/dev/null || true
  [ -z "$nginx_worker" ] || kill -KILL "$nginx_worker" 2>/dev/null || true
  nginx_pid='' nginx_worker=''
}

# tide_children PID: the pids of PID's child processes (tide's workers when it is their parent).
tide_children() { cat "/proc/$1/task/$1/children" 2>/dev/null || true; }

# is_tide PID: whether PID is still a tide process (not a pid reused by something else).
is_tide() { [ "$(readlink "/proc/$1/exe" 2>/dev/null)" = "$(readlink -f "$TIDE_BIN")" ]; }

# stop_tide: SIGTERM to tide (a parent forwards it: every worker drains and exits, then the
# parent does), SIGKILL after 12 s; then every worker it had (those the bench knew and those
# still its children) is waited for, up to 5 s, and killed if still there.
stop_tide() {
  local p kids=()
  [ -n "$tide_pid" ] || return 0
  read -r -a kids <<<"${tide_workers[*]} $(tide_children "$tide_pid")"
  if kill -0 "$tide_pid" 2>/dev/null; then
    kill -TERM "$tide_pid" 2>/dev/null || true
    for _ in $(seq 1 120); do kill -0 "$tide_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$tide_pid" 2>/dev/null || true
  fi
  wait "$tide_pid" 2>/dev/null || true
  for p in "${kids[@]}"; do
    for _ in $(seq 1 50); do is_tide "$p" || break; sleep 0.1; done
    ! is_tide "$p" || { say "warning: tide worker $p outlived its parent: killed"; kill -KILL "$p" 2>/dev/null || true; }
  done
  tide_pid='' tide_workers=()
}

# stop_budget_tides: workload 13's tides (bt_pid) stopped as stop_tide does, both signalled at
# once; then the processes that served (bt_worker) and every other child they had are waited
# for, up to 5 s each, and killed if still there.
stop_budget_tides() {
  local v p k ks kids=()
  for v in "${!bt_pid[@]}"; do
    read -r -a ks <<<"${bt_worker[$v]:-} $(tide_children "${bt_pid[$v]}")"
    for p in "${ks[@]}"; do [ "$p" = "${bt_pid[$v]}" ] || kids+=("$p:${bt_bin[$v]}"); done
    kill -TERM "${bt_pid[$v]}" 2>/dev/null || true
  done
  for v in "${!bt_pid[@]}"; do
    for _ in $(seq 1 120); do kill -0 "${bt_pid[$v]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${bt_pid[$v]}" 2>/dev/null || true
    wait "${bt_pid[$v]}" 2>/dev/null || true
  done
  for k in "${kids[@]}"; do
    p=${k%%:*}
    for _ in $(seq 1 50); do [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$(readlink -f "${k#*:}")" ] || break; sleep 0.1; done
    [ "$(readlink "/proc/$p/exe" 2>/dev/null)" != "$(readlink -f "${k#*:}")" ] \
      || { say "warning: tide worker $p outlived its parent: killed"; kill -KILL "$p" 2>/dev/null || true; }
  done
  bt_pid=() bt_worker=() bt_bin=() bt_http=() bt_admin=()
}

cleanup() {
  local rc=$?
  stop_nginx
  stop_budget_tides
  stop_tide
  # The bench stack stays up for the next run (db/stack.sh up reuses it) unless BENCH_STOP=1.
  if [ "${BENCH_STOP:-}" = 1 ]; then
    TIDE_STACK_DIR=$B timeout 60 db/stack.sh down >/dev/null 2>&1 || true
    say "bench stack stopped (BENCH_STOP=1)"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# json_get URL EXPR: EXPR evaluated (Lua) on the decoded JSON document j at URL.
json_get() {
  curl -s --max-time 5 "$1" | BENCH_EXPR=$2 luajit -e '
    local cjson = require "cjson"
    local ok, j = pcall(cjson.decode, io.read("*a"))
    if not ok then os.exit(1) end
    local v = assert(loadstring("local j = ...; return " .. os.getenv("BENCH_EXPR")))(j)
    print(v == nil and "" or tostring(v))'
}

# ---------------------------------------------------------------- tools and limits

for t in wrk luajit psql curl cc timeout; do
  command -v "$t" >/dev/null || die "$t not found (make deps installs the packages)"
done
[ -x "$TIDE_BIN" ] || die "$TIDE_BIN not built (make all)"
if want_base; then
  if [ -z "${PGBENCH:-}" ]; then
    PGBENCH=$(ls -1 /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$PGBENCH" ] || PGBENCH=$(command -v pgbench || true)
  fi
  [ -n "$PGBENCH" ] && [ -x "$PGBENCH" ] || die "pgbench not found (apt-get install postgresql-15)"
fi
if want_cache; then
  [ -x "$NGINX" ] && [ -f "$NGINX_MODULES/ndk_http_module.so" ] && [ -f "$NGINX_MODULES/ngx_http_lua_module.so" ] \
    || die "nginx with lua-nginx-module not found (make deps installs nginx and libnginx-mod-http-lua)"
fi
if [ "$PROFILE" = 1 ]; then
  # perf is optional: without it (or without the right to trace tide) the bench runs unprofiled.
  if ! command -v perf >/dev/null; then
    say "warning: BENCH_PROFILE=1 but perf is not installed (apt-get install linux-perf): no profiles"
    PROFILE=
  elif ! timeout 20 perf record -q -o /dev/null -- true >/dev/null 2>&1; then
    say "warning: BENCH_PROFILE=1 but perf cannot record here (kernel.perf_event_paranoid $(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null)?): no profiles"
    PROFILE=
  fi
fi
# 10,000 idle connections need as many descriptors in tide and in the client.
ulimit -n 30000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fds=$(ulimit -n)
if [ "$fds" != unlimited ] && [ "$fds" -lt $((IDLE_CONNS + 200)) ]; then
  say "fd limit is $fds (hard $(ulimit -Hn)): idle connections lowered from $IDLE_CONNS to $((fds - 200))"
  IDLE_CONNS=$((fds - 200))
fi

mkdir -p "$B" "$GEN/pgbench" "$LOGS" "$repo/bench/results"
rm -f "$RESULTS" "$LOGS"/*
: >"$RESULTS"

# Workload 13's baseline, built before anything runs: LuaJIT without the hook check
# (db/luajit.sh nohook, var/luajit-nohook; a no-op while its stamp matches) and tide with
# -DTIDE_NO_GUARD against it in var/build-bench-base (make's own build, incremental; the
# directory starts afresh when the flags change, which make alone would not notice). The calling
# make's MAKEFLAGS stay out: its command-line variables would override these.
if want_budgets; then
  t0=$SECONDS
  db/luajit.sh nohook >"$LOGS/budgets-build.log" 2>&1 \
    || { tail -n 20 "$LOGS/budgets-build.log" >&2; die "db/luajit.sh nohook failed (log: $LOGS/budgets-build.log)"; }
  base_flags="CFLAGS $BASE_CFLAGS
LUAJIT_DIR var/luajit-nohook
CC ${CC:-cc}"
  if [ "$(cat "$BASE_BUILD/FLAGS" 2>/dev/null)" != "$base_flags" ]; then
    rm -rf "${BASE_BUILD:?}"
    mkdir -p "$BASE_BUILD"
    printf '%s\n' "$base_flags" >"$BASE_BUILD/FLAGS"
  fi
  env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL timeout 900 make -C "$repo" BUILD="$BASE_BUILD" LUAJIT_DIR=var/luajit-nohook \
    CFLAGS="$BASE_CFLAGS" "$BASE_BUILD/tide" >>"$LOGS/budgets-build.log" 2>&1 \
    || { tail -n 20 "$LOGS/budgets-build.log" >&2; die "the baseline build failed (log: $LOGS/budgets-build.log)"; }
  [ -x "$BASE_BIN" ] || die "$BASE_BIN not built (log: $LOGS/budgets-build.log)"
  say "budgets: baseline $BASE_BUILD/tide ($BASE_CFLAGS, var/luajit-nohook) ready ($((SECONDS - t0)) s)"
  # perf stat: whether it counts $PERF_EVENT here (virtual machines often have no PMU)
  if command -v perf >/dev/null && perf_out=$(timeout 20 perf stat -x, -e "$PERF_EVENT" -- true 2>&1 >/dev/null) \
     && [[ $(grep -m1 ",$PERF_EVENT" <<<"$perf_out" | cut -d, -f1) =~ ^[0-9.]+$ ]]; then
    perf_stat=1
  else
    say "budgets: perf stat cannot count $PERF_EVENT here ($(grep -m1 ",$PERF_EVENT" <<<"${perf_out:-}" | cut -d, -f1 || true)): no counts"
  fi
  res budgets_perf_event "$PERF_EVENT"
  res budgets_perf_stat "${perf_stat:-0}"
fi

# ---------------------------------------------------------------- stack and data

say "stack: var/bench on 127.0.0.1:$PG_PORT (postgres), :$SESSION_PORT (session pool), :$TXN_PORT (transaction pool), :$REPLICA_PORT (streaming replica)"
# Always with its replica (a stack made without one is cloned one here: the first run after
# that takes a minute longer); only the replica workloads' tide is given it (replica_workloads)
TIDE_STACK_DIR=$B TIDE_PG_PORT=$PG_PORT TIDE_SESSION_PORT=$SESSION_PORT TIDE_TXN_PORT=$TXN_PORT \
  TIDE_REPLICA=1 TIDE_REPLICA_PORT=$REPLICA_PORT \
  TIDE_SEED=demo timeout 600 db/stack.sh up >"$LOGS/stack.log" 2>&1 \
  || { tail -n 20 "$LOGS/stack.log" >&2; die "db/stack.sh up failed (log: $LOGS/stack.log)"; }
# shellcheck source=/dev/null
. "$B/stack.env"
export TIDE_DSN_DIRECT TIDE_DSN_SESSION TIDE_DSN_TRANSACTION
REPLICA_DSN=${TIDE_DSN_REPLICA:-}
unset TIDE_DSN_REPLICA
! want_replica || [ -n "$REPLICA_DSN" ] || die "the bench stack's stack.env has no TIDE_DSN_REPLICA (log: $LOGS/stack.log)"
# how tide and pgbench (the same DSNs) reach Postgres and the poolers
transport() { case $1 in *'?host=%2F'*) printf 'unix socket' ;; *) printf 'TCP 127.0.0.1' ;; esac; }
res transport_direct "$(transport "$TIDE_DSN_DIRECT")"
res transport_transaction "$(transport "$TIDE_DSN_TRANSACTION")"
say "stack: tide and pgbench reach Postgres by $(transport "$TIDE_DSN_DIRECT"), the poolers by $(transport "$TIDE_DSN_TRANSACTION")"

timeout 5 "$(command -v pgbouncer || echo /usr/sbin/pgbouncer)" --version >"$LOGS/pgbouncer-version.txt" 2>&1 || true

apsql() { timeout 120 psql "$TIDE_DSN_ADMIN" -X -q -v ON_ERROR_STOP=1 "$@"; }
t0=$SECONDS
apsql -f bench/data.sql >"$LOGS/data.log" 2>&1 || { cat "$LOGS/data.log" >&2; die "bench/data.sql failed"; }
say "data: $(grep -m1 'bench data' "$LOGS/data.log" | sed 's/^bench data: //') ($((SECONDS - t0)) s)"
read -r ntrips nusers ndest < <(apsql -Atc "select (select count(*) from public.trips where id between 1000001 and 1100000),
  (select count(*) from public.users where email like 'bench-user-%@bench.invalid'),
  (select count(*) from public.destinations where embedding is not null)" | tr '|' ' ')
[ "$ntrips" = 100000 ] && [ "$nusers" = 1000 ] && [ "$ndest" -ge 5000 ] \
  || die "unexpected data set: $ntrips trips, $nusers users, $ndest destinations"
# The write workload's rows from earlier runs go, so every run starts from the same table.
apsql -c "delete from public.search_history where user_id in
            (select id from public.users where email like 'bench-user-%@bench.invalid')" \
      -c "vacuum (analyze) public.search_history" >/dev/null

# ---------------------------------------------------------------- bundle, tokens, statements

rm -rf "$B/bundle"
mkdir -p "$B/bundle"
cp -r scripts policies "$B/bundle/"
cp policies/routing.lua "$GEN/routing-default.lua"
# The direct policy: the repository's, with every kind sent to `direct` (appended before its
# final `return _M`, so the rest of the file, tables and route() included, stays as it is).
grep -q '^return _M[[:space:]]*$' policies/routing.lua || die "policies/routing.lua no longer ends with 'return _M'"
awk '
  /^return _M[[:space:]]*$/ { last = NR }
  { line[NR] = $0 }
  END {
    for (i = 1; i <= NR; i++) {
      if (i == last) {
        print "-- appended by bench/run.sh: every call goes to Postgres directly (as pgbench does)."
        print "for kind in pairs(_M.default) do _M.default[kind] = \"direct\" end"
        print "_M.tables = {}"
      }
      print line[i]
    }
  }' policies/routing.lua >"$GEN/routing-direct.lua"
cp "$GEN/routing-direct.lua" "$B/bundle/policies/routing.lua"
# The replica workloads' policies, from the direct one (appended before its final `return _M`):
# every select to "replica" (docs/replicas.md; a replica that is out of its lag bounds, or has
# not replayed a read's floor, hands the call to its fallback, direct); and the split: selects
# alternate between "replica" and "direct", call by call (a counter in route(): each process
# sends every other select of any table to each; the point read makes one select per request).
# append_policy IN OUT LINES: IN with LINES inserted before its last `return _M`, into OUT.
append_policy() {
  BENCH_LINES=$3 awk '
    /^return _M[[:space:]]*$/ { last = NR }
    { line[NR] = $0 }
    END { for (i = 1; i <= NR; i++) { if (i == last) print ENVIRON["BENCH_LINES"]; print line[i] } }' "$1" >"$2"
}
append_policy "$GEN/routing-direct.lua" "$GEN/routing-replica.lua" \
'-- appended by bench/run.sh (replica workloads): every select to the replica.
_M.default.select = "replica"'
append_policy "$GEN/routing-direct.lua" "$GEN/routing-split.lua" \
'-- appended by bench/run.sh (replica workloads): selects alternate replica / direct.
local direct_route, selects = _M.route, 0
function _M.route(kind, tbl)
    if kind ~= "select" then return direct_route(kind, tbl) end
    selects = selects + 1
    return selects % 2 == 0 and "replica" or "direct"
end'
# Pool size: by default what tide picks for this machine (pool.size 0: 3 per CPU, from the pool
# sweep below; BENCH_POOL=N sets N for every upstream; the sweep measures other sizes for the
# direct pool).
POOL=${BENCH_POOL:-policy}
[ "$POOL" = policy ] || numbers "$POOL" 1 1000 || die "BENCH_POOL=$POOL (1..1000 or policy)"
# BENCH_PIPELINE=N sets every upstream's pool.pipeline (default: the policy's)
PIPELINE=${BENCH_PIPELINE:-policy}
[ "$PIPELINE" = policy ] || numbers "$PIPELINE" 1 16 || die "BENCH_PIPELINE=$PIPELINE (1..16 or policy)"
grep -q '^return _M[[:space:]]*$' policies/resilience.lua || die "policies/resilience.lua no longer ends with 'return _M'"
# resilience_policy OUT [DIRECT]: the repository's policies/resilience.lua with every pool's size
# set to $POOL (unless it is "policy"), and direct's to DIRECT when given, written to OUT.
resilience_policy() {
  local extra='' size="_M.defaults.pool.size = $POOL  -- bench\n"
  [ "$POOL" != policy ] || size=''
  [ "$PIPELINE" = policy ] || size="${size}_M.defaults.pool.pipeline = $PIPELINE  -- bench\n"
  [ -z "${2:-}" ] || extra="_M.upstreams.direct = _M.upstreams.direct or {}\n_M.upstreams.direct.pool = _M.upstreams.direct.pool or {}\n_M.upstreams.direct.pool.size = $2  -- bench: pool sweep\n"
  sed "s/^return _M[[:space:]]*$/-- appended by bench\/run.sh\n${size}${extra}return _M/" \
    policies/resilience.lua >"$1"
}
resilience_policy "$GEN/resilience-default.lua"
cp "$GEN/resilience-default.lua" "$B/bundle/policies/resilience.lua"

apsql -Atc "select md5('bench-user-' || n)::uuid from generate_series(0, 999) n order by n" >"$GEN/uuids.txt"
# ~20 fixed embeddings from the table (ids 250, 500, ..., 5000).
apsql -Atc "select embedding::text from public.destinations
            where id in (select 250 * i from generate_series(1, 20) i) and embedding is not null
            order by id" >"$GEN/embeddings.txt"
ref=$(TIDE_CONFIG=$repo/etc/tide.conf.lua timeout 10 "$TIDE_BIN" token --sub "$(head -n 1 "$GEN/uuids.txt")" --ttl 7200) \
  || die "tide token failed"
BENCH_EXPECT_UPSTREAM=direct timeout 60 luajit bench/gen.lua "$GEN" "$B/bundle" "$GEN/uuids.txt" \
  "$GEN/embeddings.txt" "$ref" >"$LOGS/gen.log" 2>&1 || { cat "$LOGS/gen.log" >&2; die "bench/gen.lua failed"; }
say "tokens, request bodies and pgbench scripts generated (statements: var/bench/gen/statements.txt)"
IDLE_BIN=${BENCH_IDLE_BIN:-$repo/build/bench-idle}   # built by make bench
[ -x "$IDLE_BIN" ] || die "$IDLE_BIN not built (make bench builds it)"

# ---------------------------------------------------------------- tide

export TIDE_CONFIG=$repo/etc/tide.conf.lua TIDE_HTTP_PORT=$HTTP_PORT TIDE_ADMIN_PORT=$ADMIN_PORT
export TIDE_SCRIPTS_DIR=$B/bundle/scripts TIDE_POLICIES_DIR=$B/bundle/policies
export TIDE_BINDINGS_DIR=$repo/bindings TIDE_LOG_LEVEL=info
# tide shares the 2 cores with Postgres here: README "Sharing a host with Postgres" (pgbench was
# no faster at -5, so it runs as it is); the OpenResty baseline's worker gets tide's priority.
# Workload 12 (warm hits, no Postgres in the path) runs tide at 0, as wrk: two workers at -5
# preempted wrk at every wakeup (warm hits at 15 µs per request instead of 10, S 1.45)
export TIDE_NICE=${BENCH_NICE:--5}
res tide_nice "$TIDE_NICE"
# every bench client (wrk's 64, idle.c's 10,000) connects from 127.0.0.1: no per-client cap
export TIDE_HTTP_MAX_CONNECTIONS_PER_CLIENT=0
: >"$B/tide.out"
: >"$B/tide.err"

# listener_pid PORT: the pid of the process listening on 127.0.0.1:PORT (ss -p), or nothing.
listener_pid() { ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1; }

# admin_live PORT: whether the admin listener on PORT answers /live with a 200.
admin_live() { [ "$(curl -s --max-time 1 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/live")" = 200 ]; }

# start_tide [WORKERS]: starts tide (build/tide serve with the environment above) in the
# background with TIDE_WORKERS=WORKERS (none: the configuration's setting), its output appended
# to var/bench/tide.{out,err}, and waits (at most 10 s) until it serves: admin.port answers,
# then, when tide is a parent of workers, the admin listener of every worker (admin.port + i).
# Sets tide_pid (what was started: with workers, their parent), tide_workers (the workers' pids,
# worker i at index i: the order of the parent's children; empty for one process), admin_ports
# and tide_err_from. Dies when a port is taken, tide does not come up, or it runs another
# number of workers than WORKERS.
start_tide() {
  local want=${1:-} n=${1:-1} i k up=0 kids=() wait_ports=$ADMIN_PORT
  port_free "$HTTP_PORT" || die "port $HTTP_PORT (BENCH_HTTP_PORT) is in use (a tide left over from an earlier run?)"
  for ((i = 0; i < n; i++)); do
    port_free $((ADMIN_PORT + i)) || die "port $((ADMIN_PORT + i)) (BENCH_ADMIN_PORT + $i, the admin port of worker $i) is in use"
  done
  tide_err_from=$(wc -l <"$B/tide.err")
  if [ -n "$want" ]; then
    TIDE_WORKERS=$want "$TIDE_BIN" serve >>"$B/tide.out" 2>>"$B/tide.err" &
  else
    "$TIDE_BIN" serve >>"$B/tide.out" 2>>"$B/tide.err" &
  fi
  tide_pid=$! tide_workers=() admin_ports=()
  for _ in $(seq 1 100); do
    if admin_live "$ADMIN_PORT"; then
      # a parent forks every worker before any of them serves: its children now are its workers
      read -r -a kids <<<"$(tide_children "$tide_pid")"
      k=${#kids[@]}
      [ "$k" -gt 0 ] || k=1
      wait_ports=$(seq "$ADMIN_PORT" $((ADMIN_PORT + k - 1)) | tr '\n' ' ')
      up=1
      for i in $wait_ports; do admin_live "$i" || { up=0; break; }; done
      [ "$up" = 0 ] || break
    fi
    kill -0 "$tide_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ "$up" = 1 ] || { tail -n 20 "$B/tide.err" >&2; die "tide did not start${want:+ with $want workers} (admin ports $wait_ports; log: $B/tide.err)"; }
  read -r -a admin_ports <<<"$wait_ports"
  if [ "${#kids[@]}" -gt 0 ]; then
    # worker i is the one listening on admin.port + i (ss); the parent's fork order otherwise
    for i in "${!admin_ports[@]}"; do
      k=$(listener_pid "${admin_ports[$i]}")
      if [[ " ${kids[*]} " != *" $k "* ]]; then
        say "warning: no worker of $tide_pid found listening on ${admin_ports[$i]} (ss): workers taken in fork order"
        tide_workers=("${kids[@]}")
        break
      fi
      tide_workers[i]=$k
    done
  fi
  [ -z "$want" ] || [ "${#admin_ports[@]}" = "$want" ] \
    || die "tide runs ${#admin_ports[@]} event loop(s) with TIDE_WORKERS=$want (children of $tide_pid: ${kids[*]:-none})"
  if [ "${#tide_workers[@]}" -gt 0 ]; then
    say "tide: pid $tide_pid, the parent of ${#tide_workers[@]} workers (pids ${tide_workers[*]}; admin ports ${admin_ports[*]}) on $URL"
  else
    say "tide: pid $tide_pid on $URL (admin $ADMIN), fd limit $(ulimit -n)"
  fi
}

start_tide

# Sanity: the owner reads their trip (token accepted, claims reach RLS), another user gets 404.
tok0=$(sed -n 1p "$GEN/tokens.txt"); tok1=$(sed -n 2p "$GEN/tokens.txt")
s0=$(curl -s --max-time 5 -o "$LOGS/sanity.json" -w '%{http_code}' -H "Authorization: Bearer $tok0" "$URL/v1/trips/1000001")
s1=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok1" "$URL/v1/trips/1000001")
[ "$s0" = 200 ] && [ "$s1" = 404 ] \
  || die "sanity check failed: owner got $s0 (want 200: $(head -c 300 "$LOGS/sanity.json")), other user $s1 (want 404)"
# The access log (tide.out) from here on is the benchmark's (the 404 above was on purpose).
log_from=$(($(wc -l <"$B/tide.out") + 1))

# ---------------------------------------------------------------- runners

export BENCH_GEN=$GEN BENCH_WRK=$repo/bench/wrk

# worker_snap: one line per worker of the running tide, "requests accepted ticks": the requests
# it has served and the connections it has accepted (its /admin/stats) and its CPU clock ticks.
worker_snap() {
  local i
  for i in "${!tide_workers[@]}"; do
    echo "$(json_get "http://127.0.0.1:${admin_ports[$i]}/admin/stats" "j.http.requests .. ' ' .. j.http.accepted") $(cpu_ticks "${tide_workers[$i]}")"
  done
}

# proc_snap: every process's "pid ticks comm" (user + system clock ticks so far, its threads
# included; comm with spaces made _ and cut at a /: kworker/0:1 is kworker), one line each, from
# /proc/<pid>/stat.
proc_snap() {
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk '{     # processes come and go meanwhile
    o = index($0, "("); c = length($0); while (c > 0 && substr($0, c, 1) != ")") c--
    if (o == 0 || c == 0) next
    comm = substr($0, o + 1, c - o - 1); gsub(/[ \t]/, "_", comm); sub(/\/.*/, "", comm)
    split(substr($0, c + 2), f, " ")
    print $1, f[12] + f[13], comm
  }'
}

# proc_top A B T0 T1 PID...: from the snapshots A and B (proc_snap, strings), the processes
# other than PID... that used the most CPU between them, as "comm:pct ..." (at most 6, % of one
# core over T1 - T0 s, 1% or more; processes of the same name summed).
proc_top() {
  local a=$1 b=$2 t0=$3 t1=$4
  shift 4
  awk -v hz="$HZ" -v t0="$t0" -v t1="$t1" -v skip=" $* " '
    FNR == NR { a[$1] = $2; next }
    ($1 in a) && index(skip, " " $1 " ") == 0 { d[$3] += $2 - a[$1] }
    END {
      for (n in d) printf "%.0f %s\n", 100 * d[n] / hz / (t1 - t0), n
    }' <(echo "$a") <(echo "$b") | sort -rn | awk '$1 >= 1 && k < 6 { printf "%s%s:%d", (k++ ? " " : ""), $2, $1 }'
}

# cpu_ticks PID...: user + system clock ticks the processes have used so far.
cpu_ticks() {
  local p t=0
  for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done
  echo "$t"
}
HZ=$(getconf CLK_TCK)

# server_snap: what each server did so far, for the replica workloads' share of reads, as one
# line "direct_jobs replica_jobs polls primary_xacts replica_xacts replica_ticks": the jobs tide
# ran on its direct and replica pools (/health upstreams.U.pool.jobs: a call the replica handed
# to its fallback counts where it ran), the lag poller's rounds (/health upstreams.replica.lag.
# polls: each is one job on either pool, the replica's position then the primary's), the
# transactions each Postgres committed or rolled back in the bench database (pg_stat_database,
# read on that server: the replica keeps its own counts) and the replica's clock ticks
# (pg_ticks $B/replica), then the jobs each pool sent behind another on a busy connection
# (/health upstreams.U.pool.pipelined: how much the reads were batched). A field that cannot be
# read is "-"; so are the replica's while tide has no replica configured (its "replica" is then
# direct itself, the same pool).
server_snap() {
  local dj rj=- pl=- px rx rt dp rp=-
  dj=$(pool_field direct jobs); dp=$(pool_field direct pipelined)
  if [ -n "${TIDE_DSN_REPLICA:-}" ]; then
    rj=$(pool_field replica jobs); rp=$(pool_field replica pipelined)
    pl=$(json_get "$ADMIN/health" '(j.upstreams.replica and j.upstreams.replica.lag or {}).polls')
  fi
  px=$(pg_xacts "$TIDE_DSN_ADMIN"); rx=$(pg_xacts "$REPLICA_ADMIN")
  rt=$(pg_ticks "$B/replica")
  echo "${dj:--} ${rj:--} ${pl:--} ${px:--} ${rx:--} ${rt:--} ${dp:--} ${rp:--}"
}
REPLICA_ADMIN=postgresql://postgres@127.0.0.1:$REPLICA_PORT/tide
# pg_xacts DSN: xact_commit + xact_rollback of the bench database on the server at DSN.
pg_xacts() {
  timeout 10 psql "$1" -X -q -Atc "select xact_commit + xact_rollback from pg_stat_database
                                   where datname = current_database()" 2>/dev/null || true
}
count_servers=            # 1: run_wrk records server_snap's changes over each measured run

# pg_ticks [DATADIR]: clock ticks the bench's Postgres (the server of DATADIR: $B/pgdata, the
# primary, when not given; $B/replica is the replica) has used so far - the postmaster, its live
# children (backends, walwriter, ...) and the children it has reaped (cutime + cstime), so a
# backend that came and went within a run still counts. Empty when the pid is unknown.
pg_ticks() {
  local pm k
  pm=$(head -n 1 "${1:-$B/pgdata}/postmaster.pid" 2>/dev/null) || return 0
  [ -r "/proc/$pm/stat" ] || return 0
  # a backend may exit between the listing and the read: skip it (its ticks move to cutime)
  { cat "/proc/$pm/stat"; for k in $(tide_children "$pm"); do cat "/proc/$k/stat" 2>/dev/null || true; done; } |
    awk -v pm="$pm" '{ t += $14 + $15; if ($1 == pm) t += $16 + $17 } END { print t }'
}

# sched_wait PID...: nanoseconds the processes' main threads (tide's event loops, nginx's
# worker) have spent runnable but waiting for a CPU (/proc/PID/schedstat, second field), summed;
# empty when the kernel does not keep it. A pass of tide's loop is wall-clock time: this is the
# part of it the scheduler, not tide, decided.
sched_wait() {
  local p f=()
  for p in "$@"; do f+=("/proc/$p/schedstat"); done
  awk '{ t += $2 } END { if (NR == ARGC - 1) printf "%.0f\n", t }' "${f[@]}" 2>/dev/null || true
}

# host_ticks: clock ticks all CPUs of the machine have been busy so far (/proc/stat's cpu line:
# user, nice, system, irq, softirq, steal; not idle or iowait).
host_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }

# admin_urls: the admin listener of every event loop of the running tide (one per worker).
admin_urls() { local p; for p in "${admin_ports[@]}"; do echo "http://127.0.0.1:$p"; done; }

# cache_stats: tide's /admin/stats result-cache counters, each summed over the cache's scopes
# (public, role, user, ...) when it counts per scope, and over the workers when there are
# several (each has its own cache), as one line
#   "hits stale misses bypass coalesced raced evictions entries"
# (empty when tide's stats have no "cache" section).
CACHE_FIELDS=(hits stale misses bypass coalesced raced evictions entries)
cache_stats() {
  local u
  for u in $(admin_urls); do cache_stats_of "$u"; done \
    | awk 'NF { n++; for (i = 1; i <= NF; i++) t[i] += $i; k = NF }
           END { if (n) { for (i = 1; i <= k; i++) printf "%s%d", (i > 1 ? " " : ""), t[i]; print "" } }'
}

# cache_stats_of URL: cache_stats of the one event loop whose admin listener is at URL.
cache_stats_of() {
  json_get "$1/admin/stats" "(function(c)
    if type(c) ~= 'table' then return nil end
    local function f(k)
      local n = tonumber(c[k]) or 0
      if type(c.scopes) == 'table' then
        for _, s in pairs(c.scopes) do
          if type(s) == 'table' and k ~= 'entries' then n = n + (tonumber(s[k]) or 0) end
        end
      end
      return n
    end
    return string.format('%d %d %d %d %d %d %d %d', f('hits'), f('stale') + f('stale_hits'),
      f('misses'), f('bypass'), f('coalesced'), f('raced'), f('evictions'), f('entries'))
  end)(j.cache)"
}

# loop_snap FILE: the buckets of tide's /metrics histogram tide_event_loop_pass_seconds, one
# "le count" line each (le as tide prints it, "+Inf" last; with workers, each bucket summed over
# their event loops), into FILE; fails when /metrics has none (a tide without the histogram).
loop_snap() {
  local u
  for u in $(admin_urls); do curl -s --max-time 5 "$u/metrics" 2>/dev/null || true; done | awk '
    /^tide_event_loop_pass_seconds_bucket[{]/ {
      if (match($0, /le="[^"]*"/)) {
        le = substr($0, RSTART + 4, RLENGTH - 5)
        if (!(le in c)) order[++n] = le
        c[le] += $NF
      }
    }
    END { for (i = 1; i <= n; i++) print order[i], c[order[i]]; exit n > 0 ? 0 : 1 }' >"$1"
}

# loop_delta A B: the passes between the snapshots A and B (loop_snap) as "passes over20 max":
# over20 = passes longer than 20 ms (above the le="0.02" bucket), max = the upper bound (s) of
# the highest bucket that gained a pass ("0" when none did, "+Inf" above the last bound).
loop_delta() {
  awk 'NR == FNR { a[$1] = $2; next }
       { le[++n] = $1; d[$1] = $2 - a[$1] }
       END {
         total = d["+Inf"]; max = "0"
         if (total > 0) for (i = 1; i <= n; i++) if (d[le[i]] == total) { max = le[i]; break }
         printf "%d %d %s\n", total, total - d["0.02"], max
       }' "$1" "$2"
}

# loop_record NAME A B: records NAME_loop_{passes,over20,max_s} from the snapshots A and B.
loop_record() {
  local passes over max
  [ -s "$2" ] && [ -s "$3" ] || return 0
  read -r passes over max < <(loop_delta "$2" "$3")
  res "${1}_loop_passes" "$passes"
  res "${1}_loop_over20" "$over"
  res "${1}_loop_max_s" "$max"
}

# mid_pools NAME FILE: the direct and transaction pools in the /health document FILE, as
# NAME_mid_{direct,transaction} "open busy waiting".
mid_pools() {
  local u v
  [ -s "$2" ] || return 0
  for u in direct transaction; do
    v=$(BENCH_U=$u luajit -e '
      local ok, j = pcall(require("cjson").decode, io.read("*a"))
      local u = ok and type(j.upstreams) == "table" and j.upstreams[os.getenv("BENCH_U")]
      local p = type(u) == "table" and (type(u.pool) == "table" and u.pool or u)
      if p and p.open then print(string.format("%d %d %d", p.open, p.busy or -1, p.waiting or -1)) end' <"$2")
    [ -z "$v" ] || res "${1}_mid_$u" "$v"
  done
}

# slow_passes NAME FROM [TO]: the passes over 50 ms tide logged (runtime/server.c: "one
# event-loop pass took N ms", wall-clock time) in var/bench/tide.err after line FROM (up to line
# TO), as NAME_slow_passes "N1 N2 ..." (ms, at most 20, in order) when there are any.
slow_passes() {
  local ms
  ms=$(sed -n "$(($2 + 1)),${3:-\$}p" "$B/tide.err" | sed -n 's/.* warn one event-loop pass took \([0-9]*\) ms.*/\1/p' \
    | head -n 20 | tr '\n' ' ' | sed 's/ $//')
  [ -z "$ms" ] || res "${1}_slow_passes" "$ms"
}

# profile_summary NAME DATA: the top 10 symbols of a perf recording by self time and the split
# of its samples by DSO (kernel, tide, libc, luajit with its JIT-compiled code, libpq, other),
# recorded as NAME_prof_top, NAME_prof_dso and NAME_prof_samples; the whole report (with call
# graphs) goes to $LOGS/perf-NAME.txt.
profile_summary() {
  local name=$1 data=$2 top dso samples
  perf report -i "$data" --stdio --no-children --percent-limit 0.5 >"$LOGS/perf-$name.txt" 2>/dev/null || true
  top=$(perf report -i "$data" --stdio --no-children -g none --sort dso,sym --percent-limit 0 2>/dev/null \
    | awk '/^ *[0-9.]+%/ && n < 10 {
             n++; pct = $1; dso = $2; sym = ""
             for (i = 4; i <= NF; i++) sym = sym (i > 4 ? " " : "") $i
             sub(/^.*\//, "", dso)
             printf "%s%s %s (%s)", (n > 1 ? "; " : ""), pct, sym, dso
           }')
  dso=$(perf report -i "$data" --stdio --no-children -g none --sort dso -n --percent-limit 0 2>/dev/null \
    | awk '/^ *[0-9.]+%/ {
             p = $1; sub(/%/, "", p); n += $2; d = $3; sub(/^.*\//, "", d)
             if (d ~ /^\[kernel/) g = "kernel"
             else if (d == "tide") g = "tide"
             else if (d ~ /^(libc[.-]|libm[.-]|ld-linux)/) g = "libc"
             else if (d ~ /^libluajit/ || d == "[unknown]" || d ~ /^\[JIT\]/ || d ~ /^perf-[0-9]+\.map$/) g = "luajit"
             else if (d ~ /^libpq/) g = "libpq"
             else g = "other"
             s[g] += p
           }
           END {
             split("kernel tide libc luajit libpq other", order, " ")
             printf "%d|", n
             for (i = 1; i <= 6; i++) printf "%s%s %.1f%%", (i > 1 ? ", " : ""), order[i], s[order[i]]
           }')
  samples=${dso%%|*} dso=${dso#*|}
  [ -n "$top" ] || { say "warning: no perf samples for $name ($data)"; return 0; }
  res "${name}_prof_top" "$top"
  res "${name}_prof_dso" "$dso"
  res "${name}_prof_samples" "${samples:-?}"
  say "$(printf '%-14s profile  %s' "$name" "$dso")"
}

# run_wrk NAME SCRIPT [SERVER]: a warm-up, then the measured run; records
# NAME_{rps,requests,p50_us,p99_us,non2xx,sockerr}, NAME_tide_cpu (% of one core during the
# run), NAME_cpu_us (tide's CPU µs per request completed), NAME_runq_pct (% of the run its
# event-loop thread waited for a CPU: sched_wait), NAME_loop_{passes,over20,max_s}
# (tide's event-loop passes during the measured run, from /metrics) and NAME_warm_loop_* (the
# same during the warm-up); NAME_wrk_cpu (wrk's own CPU over the measured run, % of one core:
# the cutime + cstime of the shell that ran it, /proc/<pid>/stat), NAME_host_cpu (the whole
# machine's, % of one core, /proc/stat: tide, wrk and everything else) and NAME_others (the
# other processes that used the most CPU meanwhile: proc_top).
# With workers (tide_workers set), tide's CPU is the parent's and every worker's, summed
# (NAME_tide_cpu may then exceed 100), the run queue share is the workers' mean, the loop
# passes and cache counters are summed over the workers' admin listeners, perf records worker
# 0, and NAME_worker_{requests,conns,cpu} give each worker's requests served, connections
# accepted and CPU (% of one core) during the measured run, worker 0 first.
# A script counting X-Cache (bench.count_cache) adds NAME_xc_{hit,miss,stale,bypass,other,none,
# reads,writes}; the changes of tide's /admin/stats cache counters over the measured run go to
# NAME_stats_<field of CACHE_FIELDS> (entries: the count at the end). SERVER=openresty: against
# nginx instead of tide (NAME_cpu is then nginx's master and worker, NAME_cpu_us the worker's).
# BENCH_PROFILE=1: perf records tide (call graphs) during each measured run of tide, summarised
# by profile_summary.
run_wrk() {
  local name=$1 script=$2 server=${3:-tide} line kv c0 c1 t0 t1 w0 w1 q0 q1 e0='' e1 mid_pid='' perf_pid='' url=$URL cpu_key
  local pids=("$tide_pid" "${tide_workers[@]}") per_req=("$tide_pid" "${tide_workers[@]}") loops=("${tide_workers[@]}")
  local s0='' s1='' stats_msg='' loop_msg='' lp lo lm cpu_us=n/a wrk_rc wrk_t h0 h1 ws0='' ws1='' ps0 ps1 p g0 g1 pg_us=n/a
  local sv0='' sv1=''
  local m0=$LOGS/loop-$name-0.txt m1=$LOGS/loop-$name-1.txt m2=$LOGS/loop-$name-2.txt
  cpu_key=${name}_tide_cpu
  [ "${#loops[@]}" -gt 0 ] || loops=("$tide_pid")       # the event loops: the workers, or tide
  if [ "$server" = openresty ]; then
    url=http://127.0.0.1:$OR_PORT pids=("$nginx_pid" "$nginx_worker") per_req=("$nginx_worker") loops=("$nginx_worker")
    cpu_key=${name}_cpu
  fi
  rm -f "$m0" "$m1" "$m2"
  [ "$server" = openresty ] || { loop_snap "$m0" || rm -f "$m0"; e0=$(wc -l <"$B/tide.err"); }
  timeout $((WARMUP + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" -s "$script" "$url" \
    >"$LOGS/wrk-$name-warmup.txt" 2>&1 || say "warning: wrk warm-up for $name exited non-zero"
  if [ "$PROFILE" = 1 ] && [ "$server" = tide ] && [ "${BENCH_NO_PROFILE:-}" != 1 ]; then
    rm -f "$LOGS/perf-$name.data"
    timeout -s INT $((DURATION + 10)) perf record -q -F 499 -g -p "${loops[0]}" -o "$LOGS/perf-$name.data" \
      -- sleep "$DURATION" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  if [ "$server" != openresty ]; then
    s0=$(cache_stats)
    loop_snap "$m1" || rm -f "$m1"
    e1=$(wc -l <"$B/tide.err")
  fi
  if [ "$server" != openresty ]; then
    # the pools halfway through the measured run (after it, the connections whose statement was
    # cancelled when wrk left are gone)
    rm -f "$LOGS/health-$name-mid.json"
    (sleep "$(awk -v d="$DURATION" 'BEGIN { print d / 2 }')"
     curl -s --max-time 5 -o "$LOGS/health-$name-mid.json" "$ADMIN/health" || true) &
    mid_pid=$!
  fi
  [ "$server" = openresty ] || [ "${#tide_workers[@]}" = 0 ] || ws0=$(worker_snap)
  q0=$(sched_wait "${loops[@]}")
  ps0=$(proc_snap)
  g0=$(pg_ticks)
  [ "$count_servers" != 1 ] || sv0=$(server_snap)
  c0=$(cpu_ticks "${pids[@]}"); w0=$(cpu_ticks "${per_req[@]}"); h0=$(host_ticks); t0=$(date +%s.%N)
  # wrk in a shell of its own, which prints wrk's exit status and its children's CPU ticks (wrk
  # and timeout, counted once waited for) when wrk is done
  read -r wrk_rc wrk_t < <(bash -c '"$@" >"$0" 2>&1; rc=$?; read -r -a st </proc/$$/stat; echo "$rc $((st[15] + st[16]))"' \
    "$LOGS/wrk-$name.txt" timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$script" "$url")
  c1=$(cpu_ticks "${pids[@]}"); w1=$(cpu_ticks "${per_req[@]}"); h1=$(host_ticks); t1=$(date +%s.%N)
  g1=$(pg_ticks)
  [ "$count_servers" != 1 ] || sv1=$(server_snap)
  ps1=$(proc_snap)
  q1=$(sched_wait "${loops[@]}")
  [ "$server" = openresty ] || [ "${#tide_workers[@]}" = 0 ] || ws1=$(worker_snap)
  [ "${wrk_rc:-1}" = 0 ] || say "warning: wrk for $name exited ${wrk_rc:-?} (log: $LOGS/wrk-$name.txt)"
  # the share of the run the server's (main) threads spent runnable but waiting for a CPU
  [ -z "$q0" ] || [ -z "$q1" ] || res "${name}_runq_pct" "$(awk -v q=$((q1 - q0)) -v n="${#loops[@]}" -v t0="$t0" -v t1="$t1" \
    'BEGIN { printf "%.1f", q / n / 1e7 / (t1 - t0) }')"
  [ -z "$wrk_t" ] || res "${name}_wrk_cpu" "$(awk -v c="$wrk_t" -v hz="$HZ" -v t0="$t0" -v t1="$t1" \
    'BEGIN { printf "%.0f", 100 * c / hz / (t1 - t0) }')"
  res "${name}_others" "$(proc_top "$ps0" "$ps1" "$t0" "$t1" "${pids[@]}")"
  res "${name}_host_cpu" "$(awk -v c=$((h1 - h0)) -v hz="$HZ" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", 100 * c / hz / (t1 - t0) }')"
  if [ -n "$ws0" ] && [ -n "$ws1" ]; then
    paste -d' ' <(echo "$ws0") <(echo "$ws1") | awk -v hz="$HZ" -v t0="$t0" -v t1="$t1" -v name="$name" '
      { r = r sep ($4 - $1); a = a sep ($5 - $2); c = c sep sprintf("%.0f", 100 * ($6 - $3) / hz / (t1 - t0)); sep = " " }
      END { printf "%s_worker_requests=%s\n%s_worker_conns=%s\n%s_worker_cpu=%s\n", name, r, name, a, name, c }' >>"$RESULTS"
    say "$(printf '%-14s workers  requests %s, connections %s, CPU %s%% of a core (worker 0 first)' "$name" \
      "$(sed -n "s/^${name}_worker_requests=//p" "$RESULTS" | tail -n 1)" "$(sed -n "s/^${name}_worker_conns=//p" "$RESULTS" | tail -n 1)" \
      "$(sed -n "s/^${name}_worker_cpu=//p" "$RESULTS" | tail -n 1 | sed 's/ /%, /g')")"
  fi
  for p in "${pids[@]}"; do
    [ "$server" = openresty ] || kill -0 "$p" 2>/dev/null \
      || die "tide ($p) stopped during $name (a signal from outside?): $(tail -n 3 "$B/tide.err" | tr '\n' ' ')"
  done
  if [ "$server" != openresty ]; then
    ! awk -v from="$tide_err_from" 'NR > from && / info draining| workers: worker [0-9]+ .*restart/ { f = 1 }
                                    END { exit !f }' "$B/tide.err" \
      || die "tide drained or restarted a worker during $name (a signal from outside?): $(tail -n 3 "$B/tide.err" | tr '\n' ' ')"
    [ "${#tide_workers[@]}" = 0 ] \
      || [ "$(tide_children "$tide_pid" | tr ' ' '\n' | grep . | sort -n | xargs)" = "$(printf '%s\n' "${tide_workers[@]}" | sort -n | xargs)" ] \
      || die "tide's workers changed during $name: ${tide_workers[*]} -> $(tide_children "$tide_pid" | xargs) (log: $B/tide.err)"
  fi
  [ "$server" != openresty ] || kill -0 "$nginx_pid" 2>/dev/null \
    || die "nginx stopped during $name (log: $OR_DIR/logs/error.log)"
  if [ "$server" != openresty ]; then
    s1=$(cache_stats)
    loop_snap "$m2" || rm -f "$m2"
    loop_record "$name" "$m1" "$m2"
    loop_record "${name}_warm" "$m0" "$m1"
    slow_passes "$name" "$e1"
    [ -z "$e0" ] || slow_passes "${name}_warm" "$e0" "$e1"
    wait "$mid_pid" 2>/dev/null || true
    mid_pools "$name" "$LOGS/health-$name-mid.json"
    if [ -s "$m1" ] && [ -s "$m2" ]; then
      read -r lp lo lm < <(loop_delta "$m1" "$m2")
      loop_msg="  loop: $lp passes, $lo over 20 ms, longest <= $(awk -v s="$lm" 'BEGIN { printf (s == "+Inf" ? "%s" : "%g ms"), (s == "+Inf" ? s : s * 1000) }')"
    fi
  fi
  res "$cpu_key" "$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v t0="$t0" -v t1="$t1" \
    'BEGIN { printf "%.0f", 100 * c / hz / (t1 - t0) }')"
  if [ -n "$s0" ] && [ -n "$s1" ]; then
    local a0 a1 i
    read -r -a a0 <<<"$s0"
    read -r -a a1 <<<"$s1"
    for i in "${!CACHE_FIELDS[@]}"; do
      if [ "${CACHE_FIELDS[$i]}" = entries ]; then
        res "${name}_stats_entries" "${a1[$i]}"
      else
        res "${name}_stats_${CACHE_FIELDS[$i]}" $(( a1[i] - a0[i] ))
      fi
    done
    stats_msg=" (tide's /admin/stats: hits $((a1[0] - a0[0])), stale $((a1[1] - a0[1])), misses $((a1[2] - a0[2])), bypass $((a1[3] - a0[3])), coalesced $((a1[4] - a0[4])), raced $((a1[5] - a0[5])), evictions $((a1[6] - a0[6])), entries ${a1[7]})"
  fi
  if [ -n "$perf_pid" ]; then
    wait "$perf_pid" || true
    profile_summary "$name" "$LOGS/perf-$name.data"
    # the replica workloads: the share of tide's samples in the replica's own functions (the
    # callers' write positions, the lag and the replica's state: tide_lsn_*, tide_lag_*,
    # tide_replica_*; replica.c's static poll callbacks run per poll, not per request)
    [ "$count_servers" != 1 ] || res "${name}_prof_replica" "$(perf report -i "$LOGS/perf-$name.data" --stdio \
      --no-children -g none --sort sym --percent-limit 0 2>/dev/null \
      | awk '/^ *[0-9.]+%/ && $NF ~ /^tide_(lsn|lag|replica)_/ { p = $1; sub(/%/, "", p); t += p } END { printf "%.2f", t }')"
  fi
  line=$(grep -m1 '^WRK_RESULT ' "$LOGS/wrk-$name.txt" || true)
  [ -n "$line" ] || { tail -n 20 "$LOGS/wrk-$name.txt" >&2; die "wrk for $name printed no result"; }
  declare -A v=()
  for kv in ${line#WRK_RESULT }; do v[${kv%%=*}]=${kv#*=}; done
  res "${name}_rps" "${v[rps]}"
  res "${name}_requests" "${v[requests]}"
  res "${name}_p50_us" "${v[p50_us]}"
  res "${name}_p99_us" "${v[p99_us]}"
  res "${name}_non2xx" "${v[non2xx]}"
  res "${name}_sockerr" $((v[connect] + v[read] + v[write] + v[timeout]))
  # CPU µs per request: clock ticks over the measured run / requests wrk completed in it.
  if [ "${v[requests]:-0}" -gt 0 ]; then
    cpu_us=$(awk -v c=$((w1 - w0)) -v hz="$HZ" -v n="${v[requests]}" 'BEGIN { printf "%.1f", c * 1e6 / hz / n }')
    res "${name}_cpu_us" "$cpu_us"
    # Postgres' CPU per request, to set beside pgbench's per transaction (run_pgbench)
    if [ -n "$g0" ] && [ -n "$g1" ]; then
      pg_us=$(awk -v c=$((g1 - g0)) -v hz="$HZ" -v n="${v[requests]}" 'BEGIN { printf "%.1f", c * 1e6 / hz / n }')
      res "${name}_pg_cpu_us" "$pg_us"
    fi
    [ -z "$sv0" ] || server_record "$name" "$sv0" "$sv1" "${v[requests]}"
  fi
  say "$(printf '%-14s %-9s%8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  non-2xx %s  socket errors %s  CPU %s µs/req (Postgres %s)%s' \
    "$name" "$server" "${v[rps]}" "$(bc_ms "${v[p50_us]}")" "$(bc_ms "${v[p99_us]}")" "${v[non2xx]}" \
    $((v[connect] + v[read] + v[write] + v[timeout])) "$cpu_us" "$pg_us" "$loop_msg")"
  line=$(grep -m1 '^WRK_CACHE ' "$LOGS/wrk-$name.txt" || true)
  if [ -n "$line" ]; then
    for kv in ${line#WRK_CACHE }; do res "${name}_xc_${kv%%=*}" "${kv#*=}"; done
    say "$(printf '%-14s X-Cache  %s%s' "$name" "${line#WRK_CACHE }" "$stats_msg")"
  fi
  line=$(grep -m1 '^WRK_PAIR ' "$LOGS/wrk-$name.txt" || true)
  if [ -n "$line" ]; then
    for kv in ${line#WRK_PAIR }; do res "${name}_pair_${kv%%=*}" "${kv#*=}"; done
    say "$(printf '%-14s pairs    %s' "$name" "${line#WRK_PAIR }")"
  fi
}

# server_record NAME A B REQUESTS: from the server_snap lines A and B (before and after NAME's
# measured run), NAME_srv_{direct_jobs,replica_jobs,polls,primary_xacts,replica_xacts,
# direct_pipelined,replica_pipelined} (the changes; a field either snapshot lacks is left out)
# and NAME_replica_pg_cpu_us (the replica's CPU µs per request wrk completed).
server_record() {
  local a b i f keys=(direct_jobs replica_jobs polls primary_xacts replica_xacts replica_ticks
                      direct_pipelined replica_pipelined)
  read -r -a a <<<"$2"; read -r -a b <<<"$3"
  for i in 0 1 2 3 4 6 7; do
    [[ ${a[$i]:-} =~ ^[0-9]+$ ]] && [[ ${b[$i]:-} =~ ^[0-9]+$ ]] || continue
    res "${1}_srv_${keys[$i]}" $((b[i] - a[i]))
  done
  if [[ ${a[5]:-} =~ ^[0-9]+$ ]] && [[ ${b[5]:-} =~ ^[0-9]+$ ]] && [ "$4" -gt 0 ]; then
    f=$(awk -v c=$((b[5] - a[5])) -v hz="$HZ" -v n="$4" 'BEGIN { printf "%.1f", c * 1e6 / hz / n }')
    res "${1}_replica_pg_cpu_us" "$f"
  fi
  say "$(printf '%-14s servers  jobs: direct %s, replica %s, lag polls %s; transactions: primary %s, replica %s; replica CPU %s µs/req' "$1" \
    "$(sed -n "s/^${1}_srv_direct_jobs=//p" "$RESULTS" | tail -n 1)" "$(sed -n "s/^${1}_srv_replica_jobs=//p" "$RESULTS" | tail -n 1)" \
    "$(sed -n "s/^${1}_srv_polls=//p" "$RESULTS" | tail -n 1)" \
    "$(sed -n "s/^${1}_srv_primary_xacts=//p" "$RESULTS" | tail -n 1)" "$(sed -n "s/^${1}_srv_replica_xacts=//p" "$RESULTS" | tail -n 1)" \
    "$(sed -n "s/^${1}_replica_pg_cpu_us=//p" "$RESULTS" | tail -n 1)")"
}

bc_ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }

# percentiles FILE...: "p50 p99" of column 3 (latency, µs) of pgbench's per-transaction logs.
percentiles() {
  awk '{ print $3 }' "$@" | sort -n | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "0 0"; exit }
      i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++; if (i50 < 1) i50 = 1
      i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++; if (i99 < 1) i99 = 1
      print v[i50], v[i99]
    }'
}

# run_pgbench NAME CLIENTS DSN MODE SCRIPT...: a warm-up, then the measured run (BENCH_PG_DURATION
# s) with a per-transaction log, at -c CLIENTS against DSN with -M MODE; records
# NAME_pg_cCLIENTS_{tps,p50_us,p99_us,failed}, prints the rate and leaves "tps p50 p99 failed"
# in pg_last.
run_pgbench() {
  local name=$1 clients=$2 dsn=$3 mode=$4 jobs=2 f tps failed p50 p99 rc=0 tag g0 g1 n pg_us=n/a
  shift 4
  local files=() args=()
  for f in "$@"; do
    files+=(-f "$f")
    mapfile -t a <"${f%.sql}.args"
    args+=("${a[@]}")
  done
  [ "$clients" -ge 2 ] || jobs=1
  tag=$name-c$clients
  timeout $((PG_WARMUP + 30)) "$PGBENCH" -n -M "$mode" -c "$clients" -j "$jobs" -T "$PG_WARMUP" \
    "${args[@]}" "${files[@]}" "$dsn" >"$LOGS/pgbench-$tag-warmup.txt" 2>&1 \
    || say "warning: pgbench warm-up for $tag exited non-zero"
  rm -f "$LOGS/pgbench-$tag".log.*
  g0=$(pg_ticks)
  timeout $((PG_DURATION + 30)) "$PGBENCH" -n -M "$mode" -c "$clients" -j "$jobs" -T "$PG_DURATION" \
    -l --log-prefix="$LOGS/pgbench-$tag.log" "${args[@]}" "${files[@]}" "$dsn" \
    >"$LOGS/pgbench-$tag.txt" 2>&1 || rc=$?
  g1=$(pg_ticks)
  n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$LOGS/pgbench-$tag.txt" | head -n 1)
  if [ -n "$g0" ] && [ -n "$g1" ] && [ "${n:-0}" -gt 0 ]; then
    pg_us=$(awk -v c=$((g1 - g0)) -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.1f", c * 1e6 / hz / n }')
    res "${name}_pg_c${clients}_pg_cpu_us" "$pg_us"
  fi
  tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$LOGS/pgbench-$tag.txt")
  [ -n "$tps" ] || { tail -n 20 "$LOGS/pgbench-$tag.txt" >&2; die "pgbench for $tag printed no tps"; }
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$LOGS/pgbench-$tag.txt" | head -n 1)
  [ "$rc" = 0 ] || { say "warning: pgbench for $tag exited $rc (log: $LOGS/pgbench-$tag.txt)"; failed=$(( ${failed:-0} + 1 )); }
  read -r p50 p99 < <(percentiles "$LOGS/pgbench-$tag".log.*)
  rm -f "$LOGS/pgbench-$tag".log.*      # up to a few MB each; the summary is kept
  pg_last="$tps $p50 $p99 ${failed:-0}"
  res "${name}_pg_c${clients}_tps" "$tps"
  res "${name}_pg_c${clients}_p50_us" "$p50"
  res "${name}_pg_c${clients}_p99_us" "$p99"
  res "${name}_pg_c${clients}_failed" "${failed:-0}"
  say "$(printf '%-14s pgbench  %8.0f tps    p50 %6.2f ms  p99 %6.2f ms  failed %s  (-M %s -c %s -j %s)  Postgres CPU %s µs/tx' \
    "$name" "$tps" "$(bc_ms "$p50")" "$(bc_ms "$p99")" "${failed:-0}" "$mode" "$clients" "$jobs" "$pg_us")"
}

# pg_sweep NAME DSN MODE SCRIPT...: run_pgbench at each client count of $PG_CLIENTS; records
# NAME_pg_{clients,mode,best_tps,best_clients,failed} (failed: over every count) and, from the
# run at wrk's concurrency ($CONNS), NAME_pg_conc_{tps,p50_us,p99_us}.
pg_sweep() {
  local name=$1 dsn=$2 mode=$3 c best=0 best_c='' failed=0 tps p50 p99 f
  shift 3
  for c in $PG_CLIENTS; do
    run_pgbench "$name" "$c" "$dsn" "$mode" "$@"
    read -r tps p50 p99 f <<<"$pg_last"
    failed=$((failed + f))
    if awk -v a="$tps" -v b="$best" 'BEGIN { exit !(a > b) }'; then best=$tps best_c=$c; fi
    if [ "$c" = "$CONNS" ]; then
      res "${name}_pg_conc_tps" "$tps"
      res "${name}_pg_conc_p50_us" "$p50"
      res "${name}_pg_conc_p99_us" "$p99"
    fi
  done
  res "${name}_pg_clients" "$PG_CLIENTS"
  res "${name}_pg_mode" "$mode"
  res "${name}_pg_best_tps" "$best"
  res "${name}_pg_best_clients" "$best_c"
  res "${name}_pg_failed" "$failed"
  say "$(printf '%-14s pgbench  best %.0f tps at -c %s (-M %s)' "$name" "$best" "$best_c" "$mode")"
}

# swap_policy FILE [POLICY]: installs FILE as the bundle's policies/POLICY.lua (routing when
# not given) and reloads tide (SIGHUP), checking /admin/stats that the reload happened and was
# not rejected.
swap_policy() {
  local before after failures0 failures1
  before=$(json_get "$ADMIN/admin/stats" 'j.reloads')
  failures0=$(json_get "$ADMIN/admin/stats" 'j.reload_failures')
  cp "$1" "$B/bundle/policies/${2:-routing}.lua"
  kill -HUP "$tide_pid"
  for _ in $(seq 1 50); do
    after=$(json_get "$ADMIN/admin/stats" 'j.reloads')
    [ "${after:-0}" -gt "$before" ] && break
    sleep 0.1
  done
  failures1=$(json_get "$ADMIN/admin/stats" 'j.reload_failures')
  [ "${after:-0}" -gt "$before" ] && [ "$failures1" = "$failures0" ] \
    || die "tide did not reload $(basename "$1") (reloads $before -> $after, failures $failures0 -> $failures1; log: $B/tide.err)"
  say "policy: $(basename "$1") in place, tide reloaded (reloads $before -> $after)"
}

# pool_field UPSTREAM FIELD: a pool count from /health (upstreams.U.pool.F, or upstreams.U.F in
# the older flat layout).
pool_field() {
  json_get "$ADMIN/health" "(function(u) if type(u.pool) == 'table' then return u.pool.$2 end
                                         return u.$2 end)(j.upstreams.$1)"
}

# The number of connections tide's direct pool opened (pgbench gets as many), else its size.
direct_open() {
  local n
  n=$(pool_field direct open)
  [ -n "$n" ] && [ "$n" -gt 0 ] || n=$(pool_field direct size)
  [ -n "$n" ] && [ "$n" -gt 0 ] || die "cannot read the direct pool's size from $ADMIN/health"
  echo "$n"
}

# ---------------------------------------------------------------- workloads 1-6

# base_workloads: workloads 1-6 (issues 3 and 11): tide and pgbench on the same statements.
base_workloads() {
  local w e1
  # workloads 1-4: tide, then pgbench at each client count of $PG_CLIENTS
  say "workloads 1-4: wrk -t$THREADS -c$CONNS -d${DURATION}s (after ${WARMUP}s warm-up), then pgbench -c $PG_CLIENTS (${PG_DURATION}s each after ${PG_WARMUP}s)"
  for w in point list write vector; do
    run_wrk "$w" "bench/wrk/$w.lua"
    if [ "$w" = vector ]; then
      pg_sweep "$w" "$TIDE_DSN_DIRECT" prepared "$GEN"/pgbench/vector_*.sql
    else
      pg_sweep "$w" "$TIDE_DSN_DIRECT" prepared "$GEN/pgbench/$w.sql"
    fi
  done
  res open_direct "$(pool_field direct open)"

  # workload 5: tide through the transaction pooler, then pgbench through the same pooler port
  # on the same statements. Not -M prepared: PgBouncer 1.18 keeps no prepared statements in
  # transaction mode, and tide does not prepare on `transaction` either (unnamed statements,
  # what -M extended sends).
  say "workload 5: point read through the transaction pooler (tide, then pgbench -M extended on its port)"
  swap_policy "$GEN/routing-default.lua"
  jobs0=$(pool_field transaction jobs)
  run_wrk pooler bench/wrk/point.lua
  jobs1=$(pool_field transaction jobs)
  # Statements the transaction pool ran (warm-up included): near the request count, or the reads
  # did not go through the pooler (a fallback to direct, say).
  res pooler_txn_jobs $(( ${jobs1:-0} - ${jobs0:-0} ))
  res open_transaction "$(pool_field transaction open)"
  swap_policy "$GEN/routing-direct.lua"
  pg_sweep pooler "$TIDE_DSN_TRANSACTION" extended "$GEN/pgbench/point.sql"

  # workload 6
  say "workload 6: $IDLE_CONNS idle keep-alive connections"
  sleep 1
  loop_snap "$LOGS/loop-idle-0.txt" || rm -f "$LOGS/loop-idle-0.txt"
  e1=$(wc -l <"$B/tide.err")
  # the RSS of the process that holds the connections: the worker (a supervising parent holds none)
  if timeout 150 "$IDLE_BIN" "$HTTP_PORT" "$IDLE_CONNS" "${tide_workers[0]:-$tide_pid}" 120 >"$LOGS/idle.txt" 2>"$LOGS/idle.err"; then
    for kv in $(cat "$LOGS/idle.txt"); do res "idle_${kv%%=*}" "${kv#*=}"; done
    say "idle: $(cat "$LOGS/idle.txt")"
  else
    say "warning: the idle-connection client failed: $(tail -n 3 "$LOGS/idle.err")"
  fi
  kill -0 "$tide_pid" 2>/dev/null || die "tide died (log: $B/tide.err)"
  # event-loop passes while the 10,000 connections opened, waited and closed
  loop_snap "$LOGS/loop-idle-1.txt" || rm -f "$LOGS/loop-idle-1.txt"
  loop_record idle "$LOGS/loop-idle-0.txt" "$LOGS/loop-idle-1.txt"
  slow_passes idle "$e1"
}

# pool_sweep: the point read (workload 1's script, no-cache) with tide's direct pool at each size
# of $POOL_SIZES (ascending), each set by a rewritten policies/resilience.lua and SIGHUP (a
# smaller pool retires its extra connections as they come back); records pool_sweep_sizes and,
# per size N, pool_N_* (run_wrk) and pool_N_{size,open} (the direct pool as /health saw it after
# the run). The bundle's own resilience policy is put back afterwards.
pool_sweep() {
  local n
  say "pool sweep: the point read with tide's direct pool at $POOL_SIZES connections"
  for n in $POOL_SIZES; do
    resilience_policy "$GEN/resilience-direct-$n.lua" "$n"
    swap_policy "$GEN/resilience-direct-$n.lua" resilience
    BENCH_NO_PROFILE=1 run_wrk "pool_$n" bench/wrk/point.lua
    res "pool_${n}_size" "$(pool_field direct size)"
    res "pool_${n}_open" "$(pool_field direct open)"
  done
  res pool_sweep_sizes "$POOL_SIZES"
  swap_policy "$GEN/resilience-default.lua" resilience
}

# workers_workload: workload 12 (issue 11), warm cache hits with each count N of $WORKERS:
# tide started again with TIDE_WORKERS=N (start_tide; with N > 1 a parent and N workers on the
# same port), every worker's cache flushed (flush_cache) and the trip set read by passes
# (curl_pass workers_N_fill, workers_N_fill2, ...): each worker has a cache of its own and each
# trip of a pass lands in the one worker the kernel gave its connection, so passes are repeated
# (at most 4, none started after 8 s: the first pass's entries must outlive the measured run, a
# trip's ttl is 30 s) until the workers hold 15/16 of N x the set between them, and wrk's
# warm-up reads the rest in. Then run_wrk workers_N with workload 7's script
# (bench/wrk/cache_point.lua): tide's CPU is the parent's and every worker's, and wrk's own CPU
# is recorded (workers_N_wrk_cpu) for the report's accounting of the cores. Records
# workers_list, workers_N_fill_passes, workers_N_fill_s (all passes) and
# workers_N_fill_entries (each worker's cache entries after them, worker 0 first). Afterwards
# tide runs again as it did before (the configuration's setting): the pool sweep and the
# report's pool sizes come after.
workers_workload() {
  local n u v entries total k t0
  say "workload 12: warm cache hits with ${WORKERS// / and } workers, wrk -t$THREADS -c$CONNS -d${DURATION}s (after ${WARMUP}s warm-up)"
  local nice=$TIDE_NICE
  export TIDE_NICE=0   # no Postgres in this path: tide and wrk at the same priority
  for n in $WORKERS; do
    stop_tide
    start_tide "$n"
    flush_cache
    t0=$SECONDS
    for k in 1 2 3 4; do
      # passes stop after 8 s too: the entries of the first must outlive the measured run (ttl 30 s)
      [ "$k" = 1 ] || [ $((SECONDS - t0)) -lt 8 ] || { k=$((k - 1)); break; }
      curl_pass "workers_${n}_fill$([ "$k" = 1 ] || echo "$k")"
      entries='' total=0
      for u in $(admin_urls); do
        v=$(json_get "$u/admin/stats" '(j.cache or {}).entries')
        entries="$entries${entries:+ }${v:-?}"
        total=$((total + ${v:-0}))
      done
      [ $((total * 16)) -lt $((n * NIDS * 15)) ] || break
    done
    res "workers_${n}_fill_passes" "$k"
    res "workers_${n}_fill_s" $((SECONDS - t0))
    res "workers_${n}_fill_entries" "$entries"
    say "$(printf '%-14s cache entries after %d pass(es): %s (worker 0 first)' "workers_$n" "$k" "$entries")"
    run_wrk "workers_$n" bench/wrk/cache_point.lua
  done
  res workers_list "$WORKERS"
  stop_tide
  export TIDE_NICE=$nice
  start_tide
}

# ---------------------------------------------------------------- workloads 7-11: the cache

# restore_trips: puts the cache set's trips back as bench/data.sql wrote them (notes and
# updated_at, which workload 11's writes change); only the rows that differ are written. The
# updated_at trigger is off meanwhile so the old value stays; the others (tide's change
# notifications, when the schema has them) fire as for any write from outside tide. Prints how
# many rows.
restore_trips() {
  apsql -1 -At -c "alter table public.trips disable trigger trips_set_updated_at" -c "
    with d as (
      select 1000000 + k as id,
             case when k % 3 = 0 then array['bench note ' || k] else '{}'::text[] end as notes,
             timestamptz '2025-01-01 00:00:00+00' + k * interval '1 minute' as updated_at
      from generate_series(1, $NIDS) k),
    u as (
      update public.trips t set notes = d.notes, updated_at = d.updated_at from d
      where t.id = d.id and (t.notes is distinct from d.notes or t.updated_at is distinct from d.updated_at)
      returning 1)
    select count(*) from u" -c "alter table public.trips enable trigger trips_set_updated_at"
}

# curl_pass NAME [HEADER]: GET /v1/trips/:id of every trip in the cache set, each with its
# owner's token (and HEADER), 32 at a time (curl --parallel, keep-alive); the bodies go to
# $CACHE_DIR/NAME/<id>, one line "status|x-cache|id" per answer to $CACHE_DIR/NAME.txt. Dies
# unless every answer is a 200. Records NAME_xc_<x-cache value, lower case> (none: no header)
# and NAME_s (seconds).
curl_pass() {
  local name=$1 header=${2:-} dir=$CACHE_DIR/$1 t0=$SECONDS ok
  rm -rf "$dir"
  mkdir -p "$dir"
  awk -v n="$NIDS" -v url="$URL" -v dir="$dir" -v extra="$header" '
    { tok[NR - 1] = $0 }
    END {
      for (k = 1; k <= n; k++) {
        id = 1000000 + k
        printf "url = \"%s/v1/trips/%d\"\n", url, id
        printf "header = \"Authorization: Bearer %s\"\n", tok[(k - 1) % 1000]
        if (extra != "") printf "header = \"%s\"\n", extra
        printf "output = \"%s/%d\"\n", dir, id
        printf "max-time = 10\n"
        printf "write-out = \"%%{http_code}|%%header{x-cache}|%d\\n\"\n", id
        if (k < n) print "next"
      }
    }' "$GEN/tokens.txt" >"$CACHE_DIR/$name.curl"
  timeout 300 curl --silent --parallel --parallel-max 32 -K "$CACHE_DIR/$name.curl" \
    >"$CACHE_DIR/$name.txt" 2>"$CACHE_DIR/$name.err" || true
  ok=$(grep -c '^200|' "$CACHE_DIR/$name.txt" || true)
  [ "$ok" = "$NIDS" ] || die "pass $name: $ok of $NIDS answers were 200s (answers: $CACHE_DIR/$name.txt)"
  awk -F'|' -v name="$name" '
    { v = ($2 == "") ? "none" : tolower($2); c[v]++ }
    END { for (v in c) printf "%s_xc_%s=%d\n", name, v, c[v] }' "$CACHE_DIR/$name.txt" >>"$RESULTS"
  res "${name}_s" $((SECONDS - t0))
  say "$(printf '%-14s %d trips read in %d s, X-Cache: %s' "$name" "$NIDS" $((SECONDS - t0)) \
    "$(cut -d'|' -f2 "$CACHE_DIR/$name.txt" | sed 's/^$/none/' | sort | uniq -c | awk '{ printf "%s %s ", $2, $1 }')")"
}

# flush_cache: drops every entry of tide's result cache (POST /admin/cache/flush, with the
# admin token: TIDE_ADMIN_TOKEN, else etc/tide.conf.lua's development one), so the pass
# that follows stores fresh entries for the whole set (a pass would leave entries it finds fresh
# as they are, and they could expire during the measured run); every worker's, with workers.
flush_cache() {
  local code u token=${TIDE_ADMIN_TOKEN:-tide-local-development-admin-token-change-me}
  for u in $(admin_urls); do     # with workers, each has its own cache
    code=$(curl -s --max-time 5 -o "$LOGS/cache-flush.json" -w '%{http_code}' -X POST \
      -H "Authorization: Bearer $token" "$u/admin/cache/flush")
    [ "$code" = 200 ] || say "warning: POST $u/admin/cache/flush answered $code: $(head -c 200 "$LOGS/cache-flush.json")"
  done
}

# warm_check: a few trips of the set read one by one after the fill: their X-Cache values and
# whether the answers carry Age and ETag. Records warm_check_{n,hits,age,etag}.
warm_check() {
  local k n=0 hits=0 age=0 etag=0 tok hdr
  for k in $(seq 1 $((NIDS / 20)) "$NIDS"); do
    tok=$(sed -n "$(( (k - 1) % 1000 + 1 ))p" "$GEN/tokens.txt")
    hdr=$(curl -s --max-time 5 -D - -o /dev/null -H "Authorization: Bearer $tok" \
      "$URL/v1/trips/$((1000000 + k))" | tr -d '\r')
    n=$((n + 1))
    grep -qi '^x-cache: HIT$' <<<"$hdr" && hits=$((hits + 1))
    grep -qi '^age: [0-9]' <<<"$hdr" && age=$((age + 1))
    grep -qi '^etag: ' <<<"$hdr" && etag=$((etag + 1))
    [ "$n" != 1 ] || printf '%s\n' "$hdr" >"$LOGS/cache-hit-headers.txt"
  done
  res warm_check_n "$n"; res warm_check_hits "$hits"; res warm_check_age "$age"; res warm_check_etag "$etag"
  say "warm check: $hits of $n trips read after the fill were X-Cache: HIT ($age with Age, $etag with ETag; headers of the first: $LOGS/cache-hit-headers.txt)"
}

# start_openresty: nginx (bench/openresty/nginx.conf) on 127.0.0.1:$OR_PORT serving the bodies
# of the fill pass; waits until it holds all of them and checks that it answers tide's bytes.
start_openresty() {
  local user_line='' k id ready=''
  port_free "$OR_PORT" || die "port $OR_PORT (BENCH_OPENRESTY_PORT) is in use (an nginx left over from an earlier run?)"
  rm -rf "$OR_DIR"
  mkdir -p "$OR_DIR/logs" "$OR_DIR/temp"
  BENCH_DIR=$CACHE_DIR/fill BENCH_N=$NIDS timeout 60 luajit -e '
    local dir, n = os.getenv("BENCH_DIR"), tonumber(os.getenv("BENCH_N"))
    for k = 1, n do
      local id = 1000000 + k
      local f = assert(io.open(dir .. "/" .. id, "rb"))
      local b = f:read("*a")
      f:close()
      if b:sub(1, 1) ~= "{" or b:find("[\r\n\t]") then error("trip " .. id .. ": unexpected body") end
      io.write(id, "\t", b, "\n")
    end' >"$OR_DIR/bodies.tsv" || die "cannot build $OR_DIR/bodies.tsv from the fill pass"
  # As root, nginx would hand its worker to `nobody`, who cannot read var/bench: keep root.
  [ "$(id -u)" != 0 ] || user_line="user $(id -un) $(id -gn);"
  sed -e "s|@PREFIX@|$OR_DIR|g" -e "s|@PORT@|$OR_PORT|g" -e "s|@BODIES@|$OR_DIR/bodies.tsv|g" \
      -e "s|@DICT@|$(( NIDS * 2 / 1000 + 16 ))m|g" -e "s|@USER@|$user_line|g" \
      -e "s|@NICE@|$TIDE_NICE|g" \
      bench/openresty/nginx.conf >"$OR_DIR/nginx.conf"
  timeout 30 "$NGINX" -q -t -c "$OR_DIR/nginx.conf" -p "$OR_DIR/" -e "$OR_DIR/logs/error.log" \
    >"$LOGS/nginx-t.txt" 2>&1 || { cat "$LOGS/nginx-t.txt" >&2; die "nginx -t refused $OR_DIR/nginx.conf"; }
  "$NGINX" -c "$OR_DIR/nginx.conf" -p "$OR_DIR/" -e "$OR_DIR/logs/error.log" >"$OR_DIR/logs/stdout.log" 2>&1 &
  nginx_pid=$!
  for _ in $(seq 1 100); do
    ready=$(curl -s --max-time 1 "http://127.0.0.1:$OR_PORT/ready" || true)
    [ "$ready" = "$NIDS" ] && break
    kill -0 "$nginx_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ "$ready" = "$NIDS" ] || die "nginx did not start with $NIDS trips (ready: '$ready'; log: $OR_DIR/logs/error.log)"
  nginx_worker=$(pgrep -P "$nginx_pid" | head -n 1 || true)
  [ -n "$nginx_worker" ] || die "nginx ($nginx_pid) has no worker process"
  for k in 1 $((NIDS / 2)) "$NIDS"; do
    id=$((1000000 + k))
    curl -s --max-time 5 -o "$CACHE_DIR/openresty-$id" "http://127.0.0.1:$OR_PORT/v1/trips/$id" \
      && cmp -s "$CACHE_DIR/openresty-$id" "$CACHE_DIR/fill/$id" \
      || die "nginx's answer for trip $id differs from tide's ($CACHE_DIR/openresty-$id, $CACHE_DIR/fill/$id)"
  done
  say "openresty: nginx $($NGINX -v 2>&1 | sed 's|.*/||') pid $nginx_pid (worker $nginx_worker) on 127.0.0.1:$OR_PORT, $NIDS trips, as $(ps -o user= -p "$nginx_worker")"
}

# compare_passes A B: the bodies of passes A and B for each trip; records mix_checked,
# mix_mismatch and mix_mismatch_<x-cache of A> (lower case), and lists the first mismatches in
# $LOGS/cache-mismatch.txt.
compare_passes() {
  local out
  out=$(BENCH_A=$CACHE_DIR/$1 BENCH_B=$CACHE_DIR/$2 BENCH_AX=$CACHE_DIR/$1.txt BENCH_N=$NIDS \
        BENCH_LOG=$LOGS/cache-mismatch.txt timeout 60 luajit -e '
    local a, b, n = os.getenv("BENCH_A"), os.getenv("BENCH_B"), tonumber(os.getenv("BENCH_N"))
    local xc = {}
    for line in io.lines(os.getenv("BENCH_AX")) do
      local v, id = line:match("^%d+|([^|]*)|(%d+)$")
      if id then xc[id] = v ~= "" and v:lower() or "none" end
    end
    local function slurp(p) local f = assert(io.open(p, "rb")); local s = f:read("*a"); f:close(); return s end
    local log = assert(io.open(os.getenv("BENCH_LOG"), "w"))
    local bad, by, shown = 0, {}, 0
    for k = 1, n do
      local id = tostring(1000000 + k)
      local x, y = slurp(a .. "/" .. id), slurp(b .. "/" .. id)
      if x ~= y then
        bad = bad + 1
        local v = xc[id] or "none"
        by[v] = (by[v] or 0) + 1
        if shown < 10 then
          shown = shown + 1
          log:write("trip ", id, " (X-Cache ", v, ")\n  cached: ", x, "\n  fresh:  ", y, "\n")
        end
      end
    end
    log:close()
    io.write("mix_checked=", n, "\nmix_mismatch=", bad, "\n")
    for v, c in pairs(by) do io.write("mix_mismatch_", v, "=", c, "\n") end') \
    || die "comparing the passes $1 and $2 failed"
  printf '%s\n' "$out" >>"$RESULTS"
  say "after the mix: $(grep '^mix_mismatch=' <<<"$out" | cut -d= -f2) of $NIDS trips read through the cache differ from Postgres' row$( \
    grep -q '^mix_mismatch=0$' <<<"$out" || echo " (first ones: $LOGS/cache-mismatch.txt)")"
}

# cache_workloads: workloads 7-11 (issue 9).
cache_workloads() {
  local n
  say "workloads 7-11: the result cache over $NIDS trips, wrk -t$THREADS -c$CONNS -d${DURATION}s (after ${WARMUP}s warm-up)"
  [ -f "$B/bundle/policies/cache.lua" ] \
    || say "warning: the bundle has no policies/cache.lua: tide caches nothing and the cache bars will fail"
  rm -rf "$CACHE_DIR"
  mkdir -p "$CACHE_DIR"
  n=$(restore_trips) || die "cannot put the cache set's trips back (bench/data.sql's values)"
  [ "$n" = 0 ] || say "cache set: $n trips put back to bench/data.sql's notes and updated_at"
  res cache_ids "$NIDS"
  res write_pct "$WRITE_PCT"

  # 8: uncached, first (it needs nothing warm)
  export BENCH_NO_CACHE=1
  run_wrk cache_nocache bench/wrk/cache_point.lua
  unset BENCH_NO_CACHE

  # 7: every trip of the set read once (tide's bodies, kept for nginx), then the warm reads
  flush_cache
  curl_pass fill
  warm_check
  run_wrk cache_hit bench/wrk/cache_point.lua
  # 7b: the same with one wrk thread, so wrk leaves tide a core of the two (the p99 bar)
  saved_threads=$THREADS
  THREADS=1
  run_wrk cache_hit_t1 bench/wrk/cache_point.lua
  THREADS=$saved_threads

  # 9: the OpenResty baseline, same script and ids, then nginx goes
  start_openresty
  run_wrk openresty bench/wrk/cache_point.lua openresty
  stop_nginx

  # 10
  run_wrk cache_popular bench/wrk/cache_popular.lua

  # 11: flushed and filled again (the fill's entries would expire during the mix), the mix, then
  # each trip read through the cache and fresh: a cached body that differs from the row is one a
  # write did not invalidate. A second's pause first: a write wrk left in flight may still commit.
  flush_cache
  curl_pass refill
  export BENCH_WRITE_PCT=$WRITE_PCT
  run_wrk cache_mix bench/wrk/cache_mix.lua
  sleep 1
  curl_pass check_cached
  curl_pass check_fresh "Cache-Control: no-cache"
  compare_passes check_cached check_fresh
  n=$(restore_trips) || die "cannot put the cache set's trips back (bench/data.sql's values)"
  res mix_restored "$n"
  apsql -c "vacuum (analyze) public.trips" >/dev/null
  say "cache set: $n trips written by the mix put back; trips vacuumed"
}

# ---------------------------------------------------------------- workload 13: script budgets

# budget_start V BIN HTTP ADMIN: starts BIN serve (the environment above) for build V (base,
# cur) on HTTP and ADMIN in the background, its output appended to var/bench/tide.{out,err};
# sets bt_pid[V] (what was started: with supervision, the parent), bt_bin, bt_http, bt_admin.
budget_start() {
  local v=$1 bin=$2 http=$3 adm=$4
  port_free "$http" || die "port $http (workload 13, BENCH_BUDGET_PORT..+3) is in use"
  port_free "$adm" || die "port $adm (workload 13, BENCH_BUDGET_PORT..+3) is in use"
  TIDE_HTTP_PORT=$http TIDE_ADMIN_PORT=$adm "$bin" serve >>"$B/tide.out" 2>>"$B/tide.err" &
  bt_pid[$v]=$! bt_bin[$v]=$bin bt_http[$v]=$http bt_admin[$v]=$adm
}

# budget_ready V: waits (at most 10 s) until build V's tide answers /live on its admin port,
# and sets bt_worker[V] to the process that serves (/admin/stats "pid": the worker of a
# supervising parent, or tide itself), which must be a child of bt_pid[V] or bt_pid[V].
budget_ready() {
  local v=$1 w=''
  for _ in $(seq 1 100); do
    if admin_live "${bt_admin[$v]}"; then
      w=$(json_get "http://127.0.0.1:${bt_admin[$v]}/admin/stats" 'j.pid')
      [ -z "$w" ] || break
    fi
    kill -0 "${bt_pid[$v]}" 2>/dev/null || break
    sleep 0.1
  done
  [[ $w =~ ^[0-9]+$ ]] || { tail -n 20 "$B/tide.err" >&2; die "workload 13: the $v tide (${bt_bin[$v]}) did not start on ${bt_http[$v]} (admin ${bt_admin[$v]}; log: $B/tide.err)"; }
  [ "$w" = "${bt_pid[$v]}" ] || [[ " $(tide_children "${bt_pid[$v]}") " == *" $w "* ]] \
    || die "workload 13: the $v tide's /admin/stats pid $w is neither ${bt_pid[$v]} nor its child"
  bt_worker[$v]=$w
}

# budget_check V NAME: dies unless build V's tide still serves from the same process after NAME.
budget_check() {
  local v=$1
  kill -0 "${bt_pid[$v]}" 2>/dev/null && kill -0 "${bt_worker[$v]}" 2>/dev/null \
    && [ "$(json_get "http://127.0.0.1:${bt_admin[$v]}/admin/stats" 'j.pid')" = "${bt_worker[$v]}" ] \
    || die "workload 13: the $v tide (${bt_pid[$v]}, serving from ${bt_worker[$v]}) stopped or restarted its worker during $2 (log: $B/tide.err)"
}

# proc_ticks PID: user + system clock ticks PID has used so far, its threads and the children
# it reaped included (/proc/PID/stat utime stime cutime cstime).
proc_ticks() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat"; }

# budget_profile NAME DATA: profile_summary of the perf recording DATA (one worker, during run
# NAME), and what it gives of the budgets' own cost, in % of its samples: NAME_prof_guard (guard.c's functions: the counting
# allocator, a run's enter and leave and their clock reads, the tick's handler), NAME_prof_clock
# (clock_gettime, libc's and the vDSO's: the runs' clock, and libev's, which the baseline has
# too) and NAME_prof_tick (the kernel's and libc's side of the tick: the CPU-clock timer firing,
# the signal's delivery and return; the baseline has no tick, so its share is the floor).
budget_profile() {
  local name=$1 data=$2 out g c t
  [ -s "$data" ] || { say "warning: no perf recording for $name ($data)"; return 0; }
  profile_summary "$name" "$data"
  out=$(perf report -i "$data" --stdio --no-children -g none --sort sym --percent-limit 0 2>/dev/null | awk '
    /^ *[0-9.]+%/ {
      p = $1; sub(/%/, "", p); s = $NF
      if (s ~ /^(counting_alloc|tide_guard_(enter|leave|now|set_budget|set_route)|publish|on_signal|stop_run)$/) g += p
      else if (s ~ /clock_gettime|^do_hres$/) c += p
      else if (s ~ /^__restore_rt$|sigreturn|setup_rt_frame|do_signal|get_signal|signal_setup_done|send_sigqueue|complete_signal|send_signal|posix_cpu_timer|cpu_timer_fire|restore_sigcontext|fpu__restore_sig|copy_fpstate_to_sigframe|restore_fpregs_from_user/) t += p
    }
    END { printf "%.2f %.2f %.2f\n", g, c, t }')
  read -r g c t <<<"$out"
  res "${name}_prof_guard" "$g"
  res "${name}_prof_clock" "$c"
  res "${name}_prof_tick" "$t"
}

# budget_pair R W SCRIPT: one measured run of workload 13: both tides at once, each under its
# own wrk -t1 -c$BUDGET_CONNS with SCRIPT, a ${WARMUP}s warm-up of both, then ${DURATION}s
# measured, the two wrk runs started together. For v = base, cur the run is budgets_v_R_W:
# records its _{port,rps,requests,p50_us,p99_us,non2xx,sockerr}, _ticks (the serving worker's
# clock ticks over the measured run), _cpu_us (those in µs per request wrk completed), _tide_cpu (the worker's CPU, % of one core), _parent_ticks
# (the supervising parent's clock ticks meanwhile, when there is one), _xc_* (SCRIPT's X-Cache
# counts), with BENCH_PROFILE=1 _prof_{guard,clock,tick} (budget_profile) and with perf stat
# _perf_count and _perf_per_req; and budgets_R_W_wrk_cpu (the two wrk's CPU, % of one core).
budget_pair() {
  local r=$1 w=$2 script=$3 v name kv line t0 t1 wt rc_b rc_c
  local -A c0=() c1=() p0=() p1=() wpid=() perf=() pstat=()
  for v in base cur; do
    timeout $((WARMUP + 30)) wrk -t1 -c"$BUDGET_CONNS" -d"${WARMUP}s" -s "$script" "http://127.0.0.1:${bt_http[$v]}" \
      >"$LOGS/wrk-budgets_${v}_${r}_${w}-warmup.txt" 2>&1 &
    wpid[$v]=$!
  done
  for v in base cur; do wait "${wpid[$v]}" || say "warning: wrk warm-up for budgets_${v}_${r}_${w} exited non-zero"; done
  for v in base cur; do
    name=budgets_${v}_${r}_${w}
    if [ "$PROFILE" = 1 ]; then
      rm -f "$LOGS/perf-$name.data"
      timeout -s INT $((DURATION + 10)) perf record -q -F 499 -g -p "${bt_worker[$v]}" -o "$LOGS/perf-$name.data" \
        -- sleep "$DURATION" >/dev/null 2>&1 &
      perf[$v]=$!
    fi
    if [ "$perf_stat" = 1 ]; then
      rm -f "$LOGS/perfstat-$name.txt"
      timeout -s INT $((DURATION + 10)) perf stat -x, -e "$PERF_EVENT" -p "${bt_worker[$v]}" -o "$LOGS/perfstat-$name.txt" \
        -- sleep "$DURATION" >/dev/null 2>&1 &
      pstat[$v]=$!
    fi
  done
  for v in base cur; do
    c0[$v]=$(proc_ticks "${bt_worker[$v]}")
    [ "${bt_worker[$v]}" = "${bt_pid[$v]}" ] || p0[$v]=$(proc_ticks "${bt_pid[$v]}")
  done
  t0=$(date +%s.%N)
  # both wrk in one shell, which prints their exit statuses and their CPU ticks (its children's,
  # counted once waited for) when both are done
  read -r rc_b rc_c wt < <(bash -c '
    timeout $(($0 + 30)) wrk -t1 -c"$1" -d"$0s" --latency -s "$2" "$3" >"$4" 2>&1 & a=$!
    timeout $(($0 + 30)) wrk -t1 -c"$1" -d"$0s" --latency -s "$2" "$5" >"$6" 2>&1 & b=$!
    wait $a; ra=$?; wait $b; rb=$?
    read -r -a st </proc/$$/stat; echo "$ra $rb $((st[15] + st[16]))"' \
    "$DURATION" "$BUDGET_CONNS" "$script" \
    "http://127.0.0.1:${bt_http[base]}" "$LOGS/wrk-budgets_base_${r}_${w}.txt" \
    "http://127.0.0.1:${bt_http[cur]}" "$LOGS/wrk-budgets_cur_${r}_${w}.txt")
  t1=$(date +%s.%N)
  for v in base cur; do
    c1[$v]=$(proc_ticks "${bt_worker[$v]}")
    [ "${bt_worker[$v]}" = "${bt_pid[$v]}" ] || p1[$v]=$(proc_ticks "${bt_pid[$v]}")
  done
  [ "${rc_b:-1}" = 0 ] || say "warning: wrk for budgets_base_${r}_${w} exited ${rc_b:-?}"
  [ "${rc_c:-1}" = 0 ] || say "warning: wrk for budgets_cur_${r}_${w} exited ${rc_c:-?}"
  [ -z "$wt" ] || res "budgets_${r}_${w}_wrk_cpu" "$(awk -v c="$wt" -v hz="$HZ" -v t0="$t0" -v t1="$t1" \
    'BEGIN { printf "%.0f", 100 * c / hz / (t1 - t0) }')"
  for v in base cur; do
    name=budgets_${v}_${r}_${w}
    budget_check "$v" "$name"
    line=$(grep -m1 '^WRK_RESULT ' "$LOGS/wrk-$name.txt" || true)
    [ -n "$line" ] || { tail -n 20 "$LOGS/wrk-$name.txt" >&2; die "wrk for $name printed no result"; }
    local -A x=()
    for kv in ${line#WRK_RESULT }; do x[${kv%%=*}]=${kv#*=}; done
    res "${name}_port" "${bt_http[$v]}"
    res "${name}_rps" "${x[rps]}"
    res "${name}_requests" "${x[requests]}"
    res "${name}_p50_us" "${x[p50_us]}"
    res "${name}_p99_us" "${x[p99_us]}"
    res "${name}_non2xx" "${x[non2xx]}"
    res "${name}_sockerr" $((x[connect] + x[read] + x[write] + x[timeout]))
    res "${name}_tide_cpu" "$(awk -v c=$((c1[$v] - c0[$v])) -v hz="$HZ" -v t0="$t0" -v t1="$t1" \
      'BEGIN { printf "%.0f", 100 * c / hz / (t1 - t0) }')"
    res "${name}_ticks" $((c1[$v] - c0[$v]))
    [ -z "${p0[$v]:-}" ] || res "${name}_parent_ticks" $((p1[$v] - p0[$v]))
    [ "${x[requests]:-0}" -gt 0 ] || die "wrk for $name completed no request (log: $LOGS/wrk-$name.txt)"
    res "${name}_cpu_us" "$(awk -v c=$((c1[$v] - c0[$v])) -v hz="$HZ" -v n="${x[requests]}" 'BEGIN { printf "%.2f", c * 1e6 / hz / n }')"
    line=$(grep -m1 '^WRK_CACHE ' "$LOGS/wrk-$name.txt" || true)
    [ -z "$line" ] || for kv in ${line#WRK_CACHE }; do res "${name}_xc_${kv%%=*}" "${kv#*=}"; done
    if [ -n "${perf[$v]:-}" ]; then
      wait "${perf[$v]}" || true
      budget_profile "$name" "$LOGS/perf-$name.data"
    fi
    if [ -n "${pstat[$v]:-}" ]; then
      wait "${pstat[$v]}" || true
      kv=$(grep -m1 ",$PERF_EVENT" "$LOGS/perfstat-$name.txt" 2>/dev/null | cut -d, -f1 || true)
      if [[ $kv =~ ^[0-9.]+$ ]]; then
        res "${name}_perf_count" "$kv"
        res "${name}_perf_per_req" "$(awk -v c="$kv" -v n="${x[requests]}" 'BEGIN { printf "%.0f", c / n }')"
      else
        say "warning: perf stat counted no $PERF_EVENT for $name ($LOGS/perfstat-$name.txt)"
      fi
    fi
    say "$(printf '%-20s %-5s on :%s %8.0f req/s  p99 %6.2f ms  non-2xx %s  CPU %s µs/req (worker %s%% of a core)' \
      "$name" "$v" "${bt_http[$v]}" "${x[rps]}" "$(bc_ms "${x[p99_us]}")" "${x[non2xx]}" \
      "$(sed -n "s/^${name}_cpu_us=//p" "$RESULTS" | tail -n 1)" "$(sed -n "s/^${name}_tide_cpu=//p" "$RESULTS" | tail -n 1)")"
  done
  say "$(printf '%-20s current / baseline CPU per request %s' "budgets_${r}_${w}" "$(awk \
    -v b="$(sed -n "s/^budgets_base_${r}_${w}_cpu_us=//p" "$RESULTS" | tail -n 1)" \
    -v c="$(sed -n "s/^budgets_cur_${r}_${w}_cpu_us=//p" "$RESULTS" | tail -n 1)" 'BEGIN { printf "%.3f", c / b }')")"
}

# budgets_workload: workload 13. The main tide stops; for each round r of $BUDGET_ROUNDS both
# builds start afresh at once (v = base: $BASE_BIN, built without budgets against LuaJIT without
# the hook check; v = cur: build/tide; the same environment, bundle, policies and nice), each on
# its own HTTP and admin ports - BENCH_BUDGET_PORT + 0 and + 1 for the baseline in odd rounds
# and the current build in even ones, + 2 and + 3 for the other - then budget_pair r point
# (workload 1's script: no-cache, every call to `direct`), both caches flushed and filled (one
# pass over the cache set each: curl_pass budgets_v_r_fill) and budget_pair r hit (workload 7's
# script: warm hits); then both stop. Records budgets_{rounds,builds,conns,method},
# budgets_{base,cur}_{bin,cflags,luajit} and budgets_v_r_threads (the serving process's threads
# once it serves: the budgets start none). Afterwards build/tide runs again, as before.
budgets_workload() {
  local r v cur=$TIDE_BIN port code first
  local -A bin=([base]=$BASE_BIN [cur]=$cur)
  say "workload 13: script budgets: the baseline (no budgets, LuaJIT without the hook check) and the current build serving at once, each under wrk -t1 -c$BUDGET_CONNS, the point read and warm cache hits, $BUDGET_ROUNDS rounds of ${DURATION}s, ports swapped every round"
  res budgets_rounds "$BUDGET_ROUNDS"
  res budgets_builds "base cur"
  res budgets_method simultaneous
  res budgets_conns "$BUDGET_CONNS"
  res budgets_base_bin "$BASE_BUILD/tide"
  res budgets_cur_bin "${cur#"$repo"/}"
  res budgets_base_cflags "$BASE_CFLAGS"
  res budgets_cur_cflags "${CFLAGS:--O2 -g} (make all)"
  res budgets_base_luajit "var/luajit-nohook, extra flags: $(sed -n 's/^xcflags //p' var/luajit-nohook/BUILD 2>/dev/null)"
  res budgets_cur_luajit "var/luajit, extra flags: $(sed -n 's/^xcflags //p' var/luajit/BUILD 2>/dev/null)"
  stop_tide
  for r in $(seq 1 "$BUDGET_ROUNDS"); do
    # the baseline on the first pair in odd rounds, the current build in even ones
    if [ $((r % 2)) = 1 ]; then first=base; else first=cur; fi
    for v in base cur; do
      if [ "$v" = "$first" ]; then port=$BUDGET_PORT; else port=$((BUDGET_PORT + 2)); fi
      budget_start "$v" "${bin[$v]}" "$port" $((port + 1))
    done
    for v in base cur; do
      budget_ready "$v"
      res "budgets_${v}_${r}_threads" "$(ls "/proc/${bt_worker[$v]}/task" | wc -l)"
    done
    say "budgets round $r: baseline on :${bt_http[base]} (pid ${bt_worker[base]}), current on :${bt_http[cur]} (pid ${bt_worker[cur]})"
    budget_pair "$r" point bench/wrk/point.lua
    for v in base cur; do
      code=$(curl -s --max-time 5 -o "$LOGS/cache-flush.json" -w '%{http_code}' -X POST "http://127.0.0.1:${bt_admin[$v]}/admin/cache/flush")
      [ "$code" = 200 ] || say "warning: POST /admin/cache/flush of the $v tide answered $code: $(head -c 200 "$LOGS/cache-flush.json")"
      URL=http://127.0.0.1:${bt_http[$v]} curl_pass "budgets_${v}_${r}_fill"
    done
    budget_pair "$r" hit bench/wrk/cache_point.lua
    stop_budget_tides
  done
  TIDE_BIN=$cur
  start_tide
}

# ---------------------------------------------------------------- replica workloads

# replica_wait: waits (at most 30 s) until the replica has replayed the primary's WAL as of now
# and tide's /health calls it eligible (within its lag bounds, a fresh reading); warns if not.
replica_wait() {
  local lsn ok='' el=''
  lsn=$(timeout 10 psql "$TIDE_DSN_ADMIN" -X -q -Atc 'select pg_current_wal_lsn()' 2>/dev/null || true)
  for _ in $(seq 1 300); do
    [ -n "$ok" ] || [ -z "$lsn" ] || ok=$(timeout 10 psql "$REPLICA_ADMIN" -X -q -Atc \
      "select 1 where pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn" 2>/dev/null || true)
    el=$(json_get "$ADMIN/health" '(j.upstreams.replica and j.upstreams.replica.lag or {}).eligible')
    [ "$ok" != 1 ] || [ "$el" != true ] || return 0
    sleep 0.1
  done
  say "warning: after 30 s the replica has ${ok:+replayed}${ok:-not replayed} the primary's $lsn and tide calls it eligible=${el:-?} (/health)"
}

# replica_workloads: the replica workloads (issue 21, docs/replicas.md), $REPLICA_ROUNDS rounds;
# every run records what each server did (count_servers: server_snap / server_record). Round i:
# rep_base_i, tide as the other workloads run it, with no replica configured, every call to
# direct (the primary-only read: bench/wrk/point.lua, no-cache); then tide again with
# TIDE_DSN_REPLICA (the bench stack's replica) and, each with its routing policy swapped in
# (SIGHUP), rep_direct_i (every call still to direct: the replica configured and polled, no read
# sent there), rep_replica_i (every select to the replica: routing-replica.lua), rep_split_i
# (selects alternating replica / direct: routing-split.lua) - in this order in odd rounds, the
# reverse in even ones - and the write-then-read pair (bench/wrk/replica_pair.lua: a POST, then
# a GET carrying its Tide-LSN) with the reads sent to direct (pair_direct_i) and to the replica
# (pair_replica_i), that order in odd rounds, the other in even ones. Before every run that
# routes to the replica, replica_wait. Afterwards tide runs again without the replica, with the
# direct policy. Records replica_{rounds,port,transport,pool,excluded}.
replica_workloads() {
  local i k points pairs
  local -A policy=([direct]=routing-direct [replica]=routing-replica [split]=routing-split)
  say "replica workloads: $REPLICA_ROUNDS rounds of the point read primary-only (tide without a replica, then with one), routed to the replica, split, and the write-then-read pair to direct and to the replica (replica :$REPLICA_PORT)"
  res replica_rounds "$REPLICA_ROUNDS"
  res replica_port "$REPLICA_PORT"
  res replica_transport "$(transport "$REPLICA_DSN")"
  count_servers=1
  for i in $(seq 1 "$REPLICA_ROUNDS"); do
    if [ $((i % 2)) = 1 ]; then points="direct replica split" pairs="direct replica"
    else points="split replica direct" pairs="replica direct"; fi
    say "replica round $i of $REPLICA_ROUNDS"
    run_wrk "rep_base_$i" bench/wrk/point.lua
    stop_tide
    export TIDE_DSN_REPLICA=$REPLICA_DSN
    start_tide
    replica_wait
    [ "$i" != 1 ] || res replica_pool "$(pool_field replica size)"
    for k in $points; do
      swap_policy "$GEN/${policy[$k]}.lua"
      [ "$k" = direct ] || replica_wait
      run_wrk "rep_${k}_$i" bench/wrk/point.lua
    done
    for k in $pairs; do
      swap_policy "$GEN/${policy[$k]}.lua"
      [ "$k" = direct ] || replica_wait
      run_wrk "pair_${k}_$i" bench/wrk/replica_pair.lua
    done
    [ "$i" != "$REPLICA_ROUNDS" ] || res replica_excluded "$(json_get "$ADMIN/health" '(j.upstreams.replica and j.upstreams.replica.lag or {}).excluded')"
    stop_tide
    unset TIDE_DSN_REPLICA
    cp "$GEN/routing-direct.lua" "$B/bundle/policies/routing.lua"
    start_tide
  done
  count_servers=
}

if want_base; then base_workloads; fi
if want_replica; then replica_workloads; fi
if want_cache; then cache_workloads; fi
if want_workers; then
  want_base || res open_direct "$(pool_field direct open)"    # before workload 12 restarts tide
  workers_workload
fi
if want_pool_sweep; then pool_sweep; fi
if want_budgets; then budgets_workload; fi
res only "$ONLY"
want_base || want_workers || res open_direct "$(pool_field direct open)"

# ---------------------------------------------------------------- report

res pool_direct "$(pool_field direct size)"
res pool_session "$(pool_field session size)"
res pool_transaction "$(pool_field transaction size)"
# PgBouncer's server connections per database/user pair (db/stack.sh's ini)
res pgbouncer_pool_size "$(sed -n 's/^default_pool_size *= *\([0-9]*\).*/\1/p' "$B/pgbouncer-txn/pgbouncer.ini" 2>/dev/null | head -n 1)"
res pgbouncer_version "$(sed -n 's/^PgBouncer \([0-9.]*\).*/\1/p' "$LOGS/pgbouncer-version.txt" 2>/dev/null | head -n 1)"
res pg_clients "$PG_CLIENTS"
res pg_duration "$PG_DURATION"
res profile "${PROFILE:-0}"
res clk_tck "$HZ"
res date "$(date -u '+%Y-%m-%d %H:%M UTC')"
res nproc "$(nproc)"
res cpu "$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
res duration "$DURATION"
res warmup "$WARMUP"
res pg_warmup "$PG_WARMUP"
res conns "$CONNS"
res threads "$THREADS"
res elapsed $((SECONDS - started))

# What tide logged: non-2xx answers (access log, stdout) and warnings/errors (stderr).
# 499 is tide's record of a request whose client left before the answer: wrk closes its
# connections with requests in flight when its time is up, so a few per run are expected and
# no client ever sees them; they are counted apart.
tail -n +"$log_from" "$B/tide.out" | grep '"status":[45][0-9][0-9]' >"$LOGS/access-non2xx.log" || true
{
  gone=$(grep -c '"status":499' "$LOGS/access-non2xx.log" || true)
  bad=$(( $(wc -l <"$LOGS/access-non2xx.log") - ${gone:-0} ))
  warns=$(grep -cE '^[^ ]+ (warn|error) ' "$B/tide.err" || true)
  echo
  echo "tide's log: ${bad} non-2xx answers in its access log (var/bench/tide.out) besides ${gone:-0}" \
       "499s (client gone: wrk stopping with requests in flight), ${warns:-0} warn/error lines in var/bench/tide.err."
  if [ "${bad}" -gt 0 ] || [ "${warns:-0}" -gt 0 ]; then
    if [ "${bad:-0}" -gt 0 ]; then
      echo
      echo '```'
      grep -v '"status":499' "$LOGS/access-non2xx.log" | grep -o '"method":"[A-Z]*","path":"[^"]*","status":[0-9]*' \
        | sed -E 's#/v1/trips/[0-9]+#/v1/trips/:id#' | sort | uniq -c | sort -rn | head -n 10
      echo '```'
    fi
    if [ "${warns:-0}" -gt 0 ]; then
      echo
      echo '```'
      grep -E '^[^ ]+ (warn|error) ' "$B/tide.err" | cut -d' ' -f2- | sed -E 's/request [0-9a-f-]+/request …/' \
        | sort | uniq -c | sort -rn | head -n 10 | cut -c1-300
      echo '```'
    fi
  fi
} >"$LOGS/tide-log-summary.md"

{ luajit bench/report.lua "$RESULTS"; cat "$LOGS/tide-log-summary.md"; } >"$OUT_MD.tmp"
mv -f "$OUT_MD.tmp" "$OUT_MD"
echo
cat "$OUT_MD"
