#!/usr/bin/env bash
# The whole test suite (make test): C unit tests, Lua unit specs, then a throwaway stack
# (Postgres + pgvector, two PgBouncers, a streaming replica of that Postgres) on free ports under
# var/test, the schema's RLS checks, tide itself, and the integration specs over real HTTP.
# Everything it starts is stopped on exit. Prints "N passed, N failed" last; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd -P)
TIDE_BIN=${TIDE_BIN:-$repo/build/tide}
mkdir -p "$repo/var"
# Each run gets its own directory, so two runs in one checkout never share a stack.
TEST_DIR=${TIDE_TEST_DIR:-$(mktemp -d "$repo/var/test.XXXXXX")}
chmod 755 "$TEST_DIR"   # postgres and pgbouncer run as the postgres user
LOGS=$TEST_DIR/logs
mkdir -p "$LOGS"
passed=0 failed=0 tide_pid=

note() { printf '\n== %s\n' "$*"; }

# count_busted LOGFILE RC: adds busted's "N successes / N failures / N errors" to the totals.
count_busted() {
  local line s f e
  line=$(grep -E '[0-9]+ successes? / [0-9]+ failures? / [0-9]+ errors?' "$1" | tail -n 1)
  if [ -z "$line" ]; then failed=$((failed + 1)); return; fi
  s=$(sed -E 's/^.*\b([0-9]+) successes?.*$/\1/' <<<"$line")
  f=$(sed -E 's/^.* ([0-9]+) failures?.*$/\1/' <<<"$line")
  e=$(sed -E 's/^.* ([0-9]+) errors?.*$/\1/' <<<"$line")
  passed=$((passed + s)); failed=$((failed + f + e))
  [ "$2" -eq 0 ] || [ $((f + e)) -gt 0 ] || failed=$((failed + 1))
}

# count_c LOGFILE RC: adds a C test binary's "N passed, N failed".
count_c() {
  local line
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
  if [ -z "$line" ]; then failed=$((failed + 1)); return; fi
  passed=$((passed + $(cut -d' ' -f1 <<<"$line")))
  failed=$((failed + $(cut -d' ' -f3 <<<"$line")))
  [ "$2" -eq 0 ] || [ "$(cut -d' ' -f3 <<<"$line")" -gt 0 ] || failed=$((failed + 1))
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# pick_ports: a base port whose next 6 ports (Postgres, two poolers, tide, admin, the replica)
# are all free, so no two of them can collide.
pick_ports() {
  local p i k ok
  for i in $(seq 1 200); do
    # below the kernel's ephemeral range (32768+): a port there can be taken at any moment
    # as the source port of some outgoing connection, which makes bind() fail
    p=$((20000 + RANDOM % 12000))
    ok=1
    for k in 0 1 2 3 4 5; do port_free $((p + k)) || { ok=0; break; }; done
    [ $ok -eq 1 ] && { echo "$p"; return; }
  done
  echo "no free port" >&2; exit 1
}

cleanup() {
  if [ -n "$tide_pid" ] && kill -0 "$tide_pid" 2>/dev/null; then
    kill -TERM "$tide_pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$tide_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$tide_pid" 2>/dev/null
  fi
  TIDE_STACK_DIR=$TEST_DIR db/stack.sh down >/dev/null 2>&1 || true
  # keep a failed run's logs and data for a look; a green run leaves nothing behind
  if [ "$failed" -eq 0 ] && [ -z "${TIDE_TEST_DIR:-}" ]; then rm -rf "$TEST_DIR"
  else echo "logs kept in $TEST_DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- C unit tests
note "C unit tests"
BUILD_DIR=${TIDE_BUILD:-build}
make -s BUILD="$BUILD_DIR" test-c-build || failed=$((failed + 1))
for t in "$BUILD_DIR"/tests/test_*; do
  [ -x "$t" ] || continue
  log=$LOGS/$(basename "$t").log
  "$t" >"$log" 2>&1; rc=$?
  tail -n 1 "$log"
  [ $rc -eq 0 ] || { echo "FAILED: $t"; tail -n 30 "$log"; }
  count_c "$log" $rc
done

# ---- Lua unit specs
note "Lua unit specs"
log=$LOGS/unit.log
luajit /usr/bin/busted -o plainTerminal --lpath='bindings/?.lua;scripts/?.lua;policies/?.lua' \
  spec/unit >"$log" 2>&1; rc=$?
tail -n 1 "$log"
[ $rc -eq 0 ] || grep -A 12 -E '^(Failure|Error)' "$log" | head -80
count_busted "$log" $rc

# ---- throwaway stack
note "stack (throwaway ports)"
base=$(pick_ports)
pg=$base sess=$((base + 1)) txn=$((base + 2)) http=$((base + 3)) admin=$((base + 4)) replica=$((base + 5))
export TIDE_STACK_DIR=$TEST_DIR TIDE_PG_PORT=$pg TIDE_SESSION_PORT=$sess TIDE_TXN_PORT=$txn
# the suite always has a streaming replica of the stack's Postgres (docs/operations.md)
export TIDE_REPLICA=1 TIDE_REPLICA_PORT=$replica
if ! db/stack.sh up; then
  echo "stack failed to start"; failed=$((failed + 1))
  echo "$passed passed, $failed failed"; exit 1
fi
# shellcheck disable=SC1091
. "$TEST_DIR/stack.env"

# the C tests that need a real Postgres (they skip without one): the pool's pipelining, the
# LISTEN connection
note "C tests against the stack"
for t in pool listen; do
  log=$LOGS/test_$t.live.log
  TIDE_TEST_PG_DSN=$TIDE_DSN_DIRECT "$BUILD_DIR/tests/test_$t" >"$log" 2>&1; rc=$?
  tail -n 1 "$log"
  [ $rc -eq 0 ] || { echo "FAILED: test_$t against the stack"; tail -n 30 "$log"; }
  count_c "$log" $rc
done

note "RLS checks (SQL)"
for f in db/test/*.sql; do
  [ -f "$f" ] || continue
  if psql "$TIDE_DSN_ADMIN" -v ON_ERROR_STOP=1 -q -f "$f" >"$LOGS/sql.log" 2>&1; then
    echo "ok: $f"; passed=$((passed + 1))
  else
    echo "FAILED: $f"; tail -n 20 "$LOGS/sql.log"; failed=$((failed + 1))
  fi
done

# ---- tide on a copy of the bundle (reload specs edit it)
note "tide"
bundle=$TEST_DIR/bundle
mkdir -p "$bundle"
cp -r scripts policies "$bundle/"
export TIDE_HTTP_PORT=$http TIDE_ADMIN_PORT=$admin
export TIDE_SCRIPTS_DIR=$bundle/scripts TIDE_POLICIES_DIR=$bundle/policies
export TIDE_BINDINGS_DIR=$repo/bindings TIDE_CONFIG=$repo/etc/tide.conf.lua
export TIDE_JWT_SECRET=${TIDE_JWT_SECRET:-tide-test-secret-0123456789-abcdefghijklmnop}
# the suite runs on secrets published in this repository: development mode says that is meant
export TIDE_DEV=1
# a small result cache, so spec/integration/cache_spec.lua can push 10x its bound through it
export TIDE_CACHE_MAX_BYTES=${TIDE_CACHE_MAX_BYTES:-4194304}
# tide reaches Postgres itself by host *name*, over TCP: the path that resolves it off the event
# loop (the stack's DSN is its unix socket, which the C tests above and the poolers' DSNs use)
if [[ $TIDE_DSN_DIRECT =~ ^(postgresql://[^@]*)@/tide\?host=[^\&]*\&port=([0-9]+)$ ]]; then
  TIDE_DSN_DIRECT="${BASH_REMATCH[1]}@localhost:${BASH_REMATCH[2]}/tide"
fi
TIDE_DSN_DIRECT=${TIDE_DSN_DIRECT/@127.0.0.1:/@localhost:}
export TIDE_DSN_DIRECT TIDE_DSN_SESSION TIDE_DSN_TRANSACTION TIDE_DSN_ADMIN
# the replica, as authenticator (its unix socket; spec/integration/replica_stack_spec.lua)
export TIDE_DSN_REPLICA TIDE_REPLICA_PORT
# the access log, for specs that look for their requests' lines in it
export TIDE_TEST_ACCESS_LOG=$TEST_DIR/tide.out
# a sanitizer's build runs every loop pass slower (TIDE_TEST_SLOWDOWN): the loop watchdog
# (README "Workers") gives it as much more time, so a slow pass is not taken for a stall
if [ "${TIDE_TEST_SLOWDOWN:-1}" -gt 1 ] && [ -z "${TIDE_WATCHDOG_MS:-}" ]; then
  export TIDE_WATCHDOG_MS=$((2000 * TIDE_TEST_SLOWDOWN))
fi
"$TIDE_BIN" serve >"$TEST_DIR/tide.out" 2>"$TEST_DIR/tide.err" &
tide_pid=$!
up=0
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$admin") 2>/dev/null; then up=1; break; fi
  kill -0 "$tide_pid" 2>/dev/null || break
  sleep 0.1
done
if [ $up -ne 1 ]; then
  echo "tide did not start:"; tail -n 30 "$TEST_DIR/tide.err"
  failed=$((failed + 1)); echo "$passed passed, $failed failed"; exit 1
fi

# run_specs NAME: busted over spec/NAME against the running tide; tide must survive it.
run_specs() {
  local log=$LOGS/$1.log rc
  note "$1 specs"
  luajit /usr/bin/busted -o plainTerminal --lpath='spec/?.lua;bindings/?.lua' \
    "spec/$1" >"$log" 2>&1; rc=$?
  tail -n 1 "$log"
  [ $rc -eq 0 ] || grep -A 14 -E '^(Failure|Error)' "$log" | head -150
  count_busted "$log" $rc
  if ! kill -0 "$tide_pid" 2>/dev/null; then
    echo "tide died during the $1 specs"; tail -n 30 "$TEST_DIR/tide.err"; failed=$((failed + 1))
  fi
}

export TIDE_TEST_URL=http://127.0.0.1:$http TIDE_TEST_ADMIN_URL=http://127.0.0.1:$admin
export TIDE_BIN TIDE_PID=$tide_pid TIDE_BUNDLE_DIR=$bundle TIDE_STACK_DIR
run_specs integration
# Fault specs last: they stop, freeze and kill parts of the stack (and put them back).
if kill -0 "$tide_pid" 2>/dev/null; then run_specs fault; fi

# tide must drain and exit cleanly (an ASan build also reports leaks here, as a non-zero exit:
# the worker's, which its supervising parent exits with)
note "tide shutdown"
echo "event loop: $(curl -s --max-time 2 "$TIDE_TEST_ADMIN_URL/admin/stats" |
  grep -o '"loop":{[^}]*}' || echo "stats unavailable")"
kill -TERM "$tide_pid" 2>/dev/null
for _ in $(seq 1 150); do kill -0 "$tide_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$tide_pid" 2>/dev/null; then
  echo "tide did not exit within 15 s of SIGTERM"; failed=$((failed + 1))
else
  wait "$tide_pid"; rc=$?
  if [ $rc -eq 0 ]; then echo "ok: drained and exited"; passed=$((passed + 1))
  else echo "FAILED: tide exited with $rc"; tail -n 40 "$TEST_DIR/tide.err"; failed=$((failed + 1)); fi
fi
tide_pid=

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
