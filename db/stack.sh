#!/usr/bin/env bash
# Local database stack for `make run`, `make test` and `make bench`: PostgreSQL 17 with pgvector
# (chrooted in the trixie root built by db/pgroot.sh, or a host Postgres via TIDE_PGBIN), plus two
# PgBouncers (session and transaction mode), migrations, seed data and $TIDE_STACK_DIR/stack.env;
# with TIDE_REPLICA=1 also a streaming replica of that Postgres (pg_basebackup -R, hot standby,
# fed through the physical replication slot tide_replica).
#
# Usage: db/stack.sh up|down|status|psql [args]|psql-replica [args]|reset
#                    |start-pg|stop-pg [fast|immediate]|freeze-pg|thaw-pg|start-txn-bouncer
#                    |kill-txn-bouncer [SIG]|start-session-bouncer|kill-session-bouncer [SIG]
#                    |start-replica|stop-replica [fast|immediate]|pause-replay|resume-replay
# Env (explicit env wins, then the value recorded in $TIDE_STACK_DIR/stack.env, then the default):
#   TIDE_STACK_DIR     ./var (of the checkout)   cluster, bouncers, logs, stack.env
#   TIDE_PG_PORT       15432                     Postgres, 127.0.0.1 and a unix socket in its data dir
#   TIDE_SESSION_PORT  15433                     PgBouncer, pool_mode=session
#   TIDE_TXN_PORT      15434                     PgBouncer, pool_mode=transaction
#   TIDE_REPLICA       0                         1: `up` clones and starts the replica; 0: `up` removes it
#   TIDE_REPLICA_PORT  TIDE_PG_PORT + 5 (15437)  the replica, 127.0.0.1 and a unix socket in its data dir
#   TIDE_DB_PASSWORD   tide-dev-password         authenticator's password
#   TIDE_PGROOT        /var/cache/tide/pg17-trixie
#   TIDE_PGBIN         (unset)   host Postgres bin dir that has pgvector; no chroot (needed if uid != 0)
# Env read on every call (not recorded):
#   TIDE_SEED=demo|none (demo), TIDE_MIGRATIONS_DIR (db/migrations), TIDE_SEED_DIR (db/seed)
# Output: one line per phase on stdout; details in $TIDE_STACK_DIR/log/.
# shellcheck disable=SC2015,SC2016   # `a && b || die` is intended; sh -c scripts are single-quoted
set -euo pipefail
export LC_ALL=C          # lexical migration order, byte-wise URL encoding
umask 022

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(dirname "$here")
PSQL=/usr/bin/psql
PGBOUNCER=/usr/sbin/pgbouncer
CHROOT_PGBIN=/usr/lib/postgresql/17/bin
DAEMON_PATH=/usr/sbin:/usr/bin:/sbin:/bin
# A caller's libpq environment must not redirect our own connections.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE PGSERVICE PGSERVICEFILE \
      PGOPTIONS PGSSLMODE PGTARGETSESSIONATTRS PGCONNECT_TIMEOUT

say() { printf 'stack: %s\n' "$*"; }
warn() { printf 'stack: warning: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- settings

STACK=$(realpath -m -- "${TIDE_STACK_DIR:-$repo/var}")
ENVF=$STACK/stack.env
DATA=$STACK/pgdata
LOGDIR=$STACK/log
LOG=$LOGDIR/stack.log
PGLOG=$LOGDIR/postgres.log
PIDF=$STACK/postgres.pid
RDATA=$STACK/replica                # the replica's data directory (a pg_basebackup clone)
RPIDF=$STACK/replica.pid
RLOG=$LOGDIR/replica.log
SLOT=tide_replica                   # the primary's physical replication slot that feeds it

# recorded NAME: the value stack.env recorded for NAME (empty if none).
recorded() {
  [ -f "$ENVF" ] || return 0
  # shellcheck source=/dev/null
  ( set +u; . "$ENVF" >/dev/null 2>&1; printf '%s' "${!1-}" )
}
# setting NAME DEFAULT: explicit env, else recorded, else DEFAULT.
setting() {
  local v
  if [ -n "${!1+x}" ]; then v=${!1}; else v=$(recorded "$1"); [ -n "$v" ] || v=$2; fi
  printf '%s' "$v"
}

PG_PORT=$(setting TIDE_PG_PORT 15432)
[[ $PG_PORT =~ ^[0-9]+$ ]] || die "bad port '$PG_PORT'"
SESSION_PORT=$(setting TIDE_SESSION_PORT 15433)
TXN_PORT=$(setting TIDE_TXN_PORT 15434)
# The replica's port follows Postgres': the one after the five (Postgres, the two poolers, tide
# and its admin listener) that spec/run.sh and a dev stack take from one base port.
REPLICA_PORT=$(setting TIDE_REPLICA_PORT "$((PG_PORT + 5))")
REPLICA=$(setting TIDE_REPLICA 0)
PW=$(setting TIDE_DB_PASSWORD tide-dev-password)
PGROOT=$(setting TIDE_PGROOT /var/cache/tide/pg17-trixie)
PGBIN=$(setting TIDE_PGBIN "")
SEED=${TIDE_SEED:-demo}
MIG_DIR=$(realpath -m -- "${TIDE_MIGRATIONS_DIR:-$repo/db/migrations}")
SEED_DIR=$(realpath -m -- "${TIDE_SEED_DIR:-$repo/db/seed}")

for p in "$PG_PORT" "$SESSION_PORT" "$TXN_PORT" "$REPLICA_PORT"; do
  [[ $p =~ ^[0-9]+$ ]] && (( p > 0 && p < 65536 )) || die "bad port '$p'"
done
[ "$PG_PORT" != "$SESSION_PORT" ] && [ "$PG_PORT" != "$TXN_PORT" ] && [ "$SESSION_PORT" != "$TXN_PORT" ] \
  || die "TIDE_PG_PORT, TIDE_SESSION_PORT and TIDE_TXN_PORT must differ"
case $REPLICA in
  1) [ "$REPLICA_PORT" != "$PG_PORT" ] && [ "$REPLICA_PORT" != "$SESSION_PORT" ] && [ "$REPLICA_PORT" != "$TXN_PORT" ] \
       || die "TIDE_REPLICA_PORT ($REPLICA_PORT) must differ from TIDE_PG_PORT, TIDE_SESSION_PORT and TIDE_TXN_PORT" ;;
  0|'') REPLICA=0 ;;
  *) die "TIDE_REPLICA must be 1 or 0, not '$REPLICA'" ;;
esac
[ -z "$PGBIN" ] || PGBIN=$(realpath -m -- "$PGBIN")

# Postgres and PgBouncer refuse to run as root: as root they run as the postgres system user,
# otherwise as the caller (which then needs TIDE_PGBIN: chroot needs root).
if [ "$(id -u)" -eq 0 ]; then
  IS_ROOT=1
  PG_UID=$(id -u postgres 2>/dev/null) || die "no 'postgres' system user; run db/deps.sh (make deps)"
  PG_GID=$(id -g postgres)
  AS_PG=(runuser -u postgres --)
else
  IS_ROOT=0
  AS_PG=()
fi
as_pg() { "${AS_PG[@]}" "$@"; }
own() { if [ "$IS_ROOT" = 1 ]; then chown "$PG_UID:$PG_GID" "$@"; fi; }

# ---------------------------------------------------------------- helpers

logmark() { mkdir -p "$LOGDIR"; printf '\n== %s %s\n' "$(date '+%F %T')" "$*" >>"$LOG"; }

# is_alive PID [COMM]: PID is a live (non-zombie) process, named COMM if given.
is_alive() {
  local pid=$1 stat
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ] || return 1
  [ -z "${2-}" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

# wait_gone PID SECONDS: 0 once PID has exited, 1 on timeout.
wait_gone() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do is_alive "$1" || return 0; sleep 0.1; done
  ! is_alive "$1"
}

# fits DIR PORT: a server's unix socket DIR/.s.PGSQL.PORT, and its .lock file, fit sun_path's
# 107 bytes (else Postgres skips the directory).
fits() { local p="$1/.s.PGSQL.$2.lock"; [ ${#p} -le 107 ]; }

# sock DIR PORT: DIR/.s.PGSQL.PORT when a server listens there, else nothing.
sock() {
  local p="$1/.s.PGSQL.$2"
  if fits "$1" "$2" && [ -S "$p" ]; then printf '%s' "$p"; fi
}

urlencode() {
  local s=$1 out='' c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in
      [A-Za-z0-9._~-]) out+=$c ;;
      *) printf -v c '%%%02X' "'$c"; out+=$c ;;
    esac
  done
  printf '%s' "$out"
}

# psql as the superuser over TCP; trust from 127.0.0.1 (see pg_hba below). rsu_psql: on the
# replica.
su_psql() { PGCONNECT_TIMEOUT=3 "$PSQL" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"; }
rsu_psql() { PGCONNECT_TIMEOUT=3 "$PSQL" -X -q -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres "$@"; }

with_lock() {
  mkdir -p "$STACK"
  exec 8>"$STACK/.lock"
  flock -w 300 8 || die "another db/stack.sh holds $STACK/.lock"
}

# ---------------------------------------------------------------- postgres

# server_pid PIDFILE DATADIR: prints the pid of the postmaster running on DATADIR, or nothing.
# pg_pid: the primary's; replica_pid: the replica's.
server_pid() {
  local pid=''
  [ ! -f "$1" ] || pid=$(head -n1 "$1" 2>/dev/null || true)
  if ! is_alive "$pid" postgres && [ -f "$2/postmaster.pid" ]; then
    pid=$(head -n1 "$2/postmaster.pid" 2>/dev/null || true)
  fi
  if is_alive "$pid" postgres; then printf '%s' "$pid"; fi
}
pg_pid() { server_pid "$PIDF" "$DATA"; }
replica_pid() { server_pid "$RPIDF" "$RDATA"; }

pg_major_of_bin() {
  if [ -n "$PGBIN" ]; then
    "$PGBIN/postgres" --version | sed -n 's/.*) \([0-9]*\).*/\1/p'
  else
    basename "$(dirname "$CHROOT_PGBIN")"
  fi
}

ensure_root() {
  if [ -n "$PGBIN" ]; then
    [ -x "$PGBIN/postgres" ] && [ -x "$PGBIN/initdb" ] || die "TIDE_PGBIN=$PGBIN has no postgres/initdb"
    return 0
  fi
  [ "$IS_ROOT" = 1 ] || die "the chrooted Postgres needs root; set TIDE_PGBIN to a host Postgres bin dir with pgvector"
  if [ ! -f "$PGROOT/.tide-ready" ]; then
    say "pgvector root: building $PGROOT (once, about a minute)"
    logmark pgroot
    "$here/pgroot.sh" "$PGROOT" >>"$LOG" 2>&1 || die "db/pgroot.sh failed; see $LOG and $PGROOT.log"
  fi
  local ruid
  ruid=$(awk -F: '$1 == "postgres" { print $3 }' "$PGROOT/etc/passwd")
  [ "$ruid" = "$PG_UID" ] || die "postgres uid in $PGROOT ($ruid) differs from the host's ($PG_UID); rebuild the root"
  mkdir -p "$PGROOT/srv/pgdata"
}

# in_pg [--daemon] [--data DIR] CMD...: runs a Postgres program as the postgres user with a clean
# environment. Chroot mode: in a private mount namespace with DIR ($DATA by default; the replica
# passes $RDATA) bound at /srv/pgdata and private tmpfs on /tmp (sockets) and /dev/shm, so any
# number of servers share the root safely. Every step execs, so the program keeps the pid.
# --daemon: in a new session (outlives the caller's terminal and ^C).
in_pg() {
  local -a pre=(env -i PATH="$DAEMON_PATH" LANG=C.UTF-8)
  local data=$DATA
  if [ "${1-}" = --daemon ]; then pre+=(setsid -w); shift; fi
  if [ "${1-}" = --data ]; then data=$2; shift 2; fi
  if [ -n "$PGBIN" ]; then
    if [ "$IS_ROOT" = 1 ]; then pre+=(runuser -u postgres --); fi
    "${pre[@]}" "$@"
  else
    "${pre[@]}" unshare -m --propagation private sh -c '
        set -e
        root=$1 data=$2 spec=$3; shift 3
        mount --bind "$data" "$root/srv/pgdata"
        mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp"
        mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
        exec chroot --userspec="$spec" "$root" "$@"' \
      sh "$PGROOT" "$data" "$PG_UID:$PG_GID" "$@"
  fi
}
in_pg_bin() { if [ -n "$PGBIN" ]; then printf '%s' "$PGBIN"; else printf '%s' "$CHROOT_PGBIN"; fi; }
# in_pg_data [DIR]: where a program run by in_pg [--data DIR] sees DIR ($DATA by default).
in_pg_data() { if [ -n "$PGBIN" ]; then printf '%s' "${1:-$DATA}"; else printf '%s' /srv/pgdata; fi; }

init_cluster() {
  if [ -f "$DATA/PG_VERSION" ]; then
    say "cluster: reusing $DATA (PostgreSQL $(cat "$DATA/PG_VERSION"))"
    return 0
  fi
  if [ -d "$DATA" ] && [ -n "$(ls -A "$DATA")" ]; then
    die "$DATA exists but holds no cluster; run 'db/stack.sh reset'"
  fi
  mkdir -p "$DATA"; chmod 0700 "$DATA"; own "$DATA"
  logmark initdb
  # pg_hba.conf is rewritten below before the first start; initdb's choice is a placeholder.
  (cd / && in_pg "$(in_pg_bin)/initdb" -D "$(in_pg_data)" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=peer --auth-host=reject) </dev/null >>"$LOG" 2>&1 8>&- \
    || { rm -rf "$DATA"; tail -n 15 "$LOG" >&2; die "initdb failed (full log: $LOG)"; }
  printf "\ninclude_if_exists = 'tide-stack.conf'\n" >>"$DATA/postgresql.conf"
  say "cluster: initdb $DATA (PostgreSQL $(cat "$DATA/PG_VERSION"))"
}

# write_pg_conf [DIR PORT primary|replica]: the server's tide-stack.conf and pg_hba.conf (the
# primary's by default). A replica's are rewritten over the copies its clone took of the primary's.
write_pg_conf() {
  local dir=${1:-$DATA} port=${2:-$PG_PORT} kind=${3:-primary} role
  # /tmp (private in the chroot) for the tools inside; the data directory for tide, pgbench and
  # PgBouncer on this host: a unix socket spares both ends the TCP stack (its .lock file must fit
  # sun_path too, or Postgres skips the directory and the stack stays on TCP)
  local sockdir=/tmp
  if fits "$dir" "$port"; then sockdir="/tmp, $(in_pg_data "$dir")"; fi
  if [ "$kind" = primary ]; then
    # a streaming replica's sender: a physical slot (SLOT) keeps the WAL the replica has not
    # received yet, up to max_slot_wal_keep_size; past that the slot is lost and `up` re-clones
    role="# The primary (a replica may stream from it through the slot $SLOT).
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
max_slot_wal_keep_size = 1GB"
  else
    role="# A hot standby of the primary on 127.0.0.1:$PG_PORT (primary_conninfo and primary_slot_name are
# in postgresql.auto.conf, written by pg_basebackup -R). max_connections, max_wal_senders and
# max_worker_processes must be at least the primary's: they are the same.
hot_standby = on
hot_standby_feedback = on
max_wal_senders = 10
max_replication_slots = 10"
  fi
  cat >"$dir/tide-stack.conf" <<EOF
# Written by db/stack.sh at every start: edit the script, not this file.
# Sized for a 2-core dev box.
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sockdir'
max_connections = 200
shared_buffers = $([ "$kind" = primary ] && echo 256MB || echo 128MB)
effective_cache_size = 1GB
work_mem = 4MB
maintenance_work_mem = 64MB
max_worker_processes = 4
max_parallel_workers = 2
max_parallel_workers_per_gather = 1
fsync = on
password_encryption = scram-sha-256
logging_collector = off
log_destination = 'stderr'
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
$role
EOF
  cat >"$dir/pg_hba.conf" <<'EOF'
# Written by db/stack.sh at every start. DEV/TEST ONLY: the postgres superuser is trusted from
# 127.0.0.1 (migrations and test setup need no password; so is the replica's clone and its
# stream). Never use this file in production.
# TYPE  DATABASE     USER      ADDRESS        METHOD
local   all          postgres                 peer
local   all          all                      scram-sha-256
local   replication  postgres                 peer
host    all          postgres  127.0.0.1/32   trust
host    replication  postgres  127.0.0.1/32   trust
host    all          all       127.0.0.1/32   scram-sha-256
EOF
  chmod 0600 "$dir/tide-stack.conf" "$dir/pg_hba.conf"
  own "$dir/tide-stack.conf" "$dir/pg_hba.conf"
}

# wait_server_ready WATCH_PID DIR PORT LOGFILE NAME: until DIR/postmaster.pid says ready (a hot
# standby too, once it takes connections) and psql answers on PORT (30 s).
wait_server_ready() {
  local watch=$1 dir=$2 port=$3 log=$4 name=$5 end=$((SECONDS + 30)) st
  while ((SECONDS < end)); do
    is_alive "$watch" || { tail -n 20 "$log" >&2; die "$name exited during startup (log: $log)"; }
    st=$(sed -n 8p "$dir/postmaster.pid" 2>/dev/null | tr -d ' ' || true)
    if [ "$st" = ready ] &&
       PGCONNECT_TIMEOUT=3 "$PSQL" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
         -Atc 'select 1' >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.2
  done
  tail -n 20 "$log" >&2
  die "$name not ready on 127.0.0.1:$port after 30 s (log: $log)"
}
wait_pg_ready() { wait_server_ready "$1" "$DATA" "$PG_PORT" "$PGLOG" postgres; }

start_pg() {
  local pid port want major
  pid=$(pg_pid)
  if [ -n "$pid" ]; then
    port=$(sed -n 4p "$DATA/postmaster.pid" 2>/dev/null | tr -d ' ' || true)
    [ "$port" = "$PG_PORT" ] || die "postgres (pid $pid) runs on port $port, not $PG_PORT; run down first"
    wait_pg_ready "$pid"
    # a stack made by an older db/stack.sh lacks what a replica needs (pg_hba's replication
    # lines): the files are written again and the running server reloads them
    write_pg_conf
    kill -HUP "$pid" 2>/dev/null || true
    echo "$pid" >"$PIDF"
    say "postgres: already running (pid $pid, 127.0.0.1:$PG_PORT)"
    return 0
  fi
  [ -f "$DATA/PG_VERSION" ] || die "no cluster in $DATA; run 'db/stack.sh up'"
  ensure_root
  major=$(pg_major_of_bin); want=$(cat "$DATA/PG_VERSION")
  [ "$major" = "$want" ] || die "cluster is PostgreSQL $want but the binaries are $major; use the matching TIDE_PGBIN/root or reset"
  write_pg_conf
  mkdir -p "$LOGDIR"
  logmark "start postgres on $PG_PORT"
  # fd 8 is the stack lock: daemons must not inherit it.
  (cd / && in_pg --daemon "$(in_pg_bin)/postgres" -D "$(in_pg_data)") </dev/null >>"$PGLOG" 2>&1 8>&- &
  local bg=$!
  wait_pg_ready "$bg"
  pid=$(head -n1 "$DATA/postmaster.pid")
  echo "$pid" >"$PIDF"
  say "postgres: started (pid $pid, 127.0.0.1:$PG_PORT)"
}

# stop_server NAME PID PIDFILE [fast|immediate]: fast (SIGINT) by default; immediate (SIGQUIT) is
# the fault tests' crash: backends exit at once without a checkpoint and the next start recovers.
stop_server() {
  local name=$1 pid=$2 pidf=$3 mode=${4:-fast}
  case $mode in fast|immediate) ;; *) die "$name: the stop mode must be fast or immediate, not '$mode'" ;; esac
  if [ -z "$pid" ]; then
    rm -f "$pidf"
    say "$name: not running"
    return 0
  fi
  if [ "$mode" = immediate ]; then
    kill -QUIT "$pid" 2>/dev/null || true            # immediate shutdown
  else
    kill -INT "$pid" 2>/dev/null || true             # fast shutdown
  fi
  if ! wait_gone "$pid" 20; then
    warn "$name (pid $pid) still up after 20 s; SIGQUIT"
    kill -QUIT "$pid" 2>/dev/null || true            # immediate shutdown
    wait_gone "$pid" 10 || die "$name (pid $pid) did not exit"
  fi
  rm -f "$pidf"
  say "$name: stopped (pid $pid, $mode)"
}
stop_pg() { stop_server postgres "$(pg_pid)" "$PIDF" "${1:-fast}"; }

# signal_pg SIG: SIG to the postmaster and every child it has (backends, auxiliary processes);
# freeze-pg/thaw-pg for the fault tests. The postmaster is stopped first, so it forks no child
# we would miss, and continued last.
signal_pg() {
  local sig=$1 pid kids k
  pid=$(pg_pid)
  [ -n "$pid" ] || die "postgres is not running"
  [ "$sig" != STOP ] || kill -STOP "$pid"
  kids=$(pgrep -P "$pid" || true)
  for k in $kids; do kill -s "$sig" "$k" 2>/dev/null || true; done
  [ "$sig" != CONT ] || kill -CONT "$pid"
  say "postgres: SIG$sig to pid $pid and $(wc -w <<<"$kids") children"
}

# ---------------------------------------------------------------- replica

# sysid DIR: the cluster's system identifier (global/pg_control's first 8 bytes): a clone has its
# primary's, an initdb a new one.
sysid() { od -An -t u8 -N 8 "$1/global/pg_control" 2>/dev/null | tr -d ' '; }

# slot_state: the wal_status of the primary's slot $SLOT (reserved, extended, unreserved, lost),
# or nothing when there is no such slot.
slot_state() {
  su_psql -d postgres -Atc "select wal_status from pg_replication_slots where slot_name = '$SLOT'" 2>>"$LOG"
}

# replica_stale: why the clone in $RDATA cannot follow the primary, or nothing when it can.
replica_stale() {
  local st
  if [ ! -f "$RDATA/PG_VERSION" ]; then echo "no clone yet"; return 0; fi
  if [ ! -f "$RDATA/standby.signal" ]; then echo "the clone is no standby"; return 0; fi
  if [ "$(sysid "$RDATA")" != "$(sysid "$DATA")" ]; then echo "the clone is of an earlier cluster"; return 0; fi
  st=$(slot_state)
  if [ -z "$st" ]; then echo "slot $SLOT is missing"; return 0; fi
  if [ "$st" = lost ]; then echo "slot $SLOT lost WAL the clone needs"; return 0; fi
}

# drop_slot: drops $SLOT on the primary when it exists (waits up to 10 s for its walsender to go).
drop_slot() {
  local i
  for ((i = 0; i < 50; i++)); do
    [ -n "$(slot_state)" ] || return 0
    su_psql -d postgres -Atc "select pg_drop_replication_slot('$SLOT')" >>"$LOG" 2>&1 && return 0
    sleep 0.2
  done
  die "cannot drop replication slot $SLOT (log: $LOG)"
}

# clone_replica WHY: a fresh clone of the running primary in $RDATA (pg_basebackup -R, streaming
# the WAL of its run through $SLOT, which then feeds the replica). The primary must run.
clone_replica() {
  stop_replica fast >/dev/null
  if [ "$(slot_state)" = lost ]; then drop_slot; fi
  if [ -z "$(slot_state)" ]; then
    # reserve WAL now: nothing the clone will need can be recycled before the replica streams
    su_psql -d postgres -v ON_ERROR_STOP=1 -Atc "select pg_create_physical_replication_slot('$SLOT', true)" \
      >>"$LOG" 2>&1 || die "cannot create replication slot $SLOT (log: $LOG)"
  fi
  rm -rf -- "$RDATA" "$RPIDF"
  mkdir -p "$RDATA"; chmod 0700 "$RDATA"; own "$RDATA"
  logmark "pg_basebackup into $RDATA ($1)"
  (cd / && in_pg --data "$RDATA" "$(in_pg_bin)/pg_basebackup" -D "$(in_pg_data "$RDATA")" \
      -d "host=127.0.0.1 port=$PG_PORT user=postgres application_name=tide_replica" \
      -X stream -S "$SLOT" -R -c fast -w) </dev/null >>"$LOG" 2>&1 8>&- \
    || { rm -rf -- "$RDATA"; tail -n 15 "$LOG" >&2; die "pg_basebackup failed (full log: $LOG)"; }
  say "replica: cloned $DATA into $RDATA ($1), fed through slot $SLOT"
}

start_replica() {
  local pid port want major
  pid=$(replica_pid)
  if [ -n "$pid" ]; then
    port=$(sed -n 4p "$RDATA/postmaster.pid" 2>/dev/null | tr -d ' ' || true)
    [ "$port" = "$REPLICA_PORT" ] || die "the replica (pid $pid) runs on port $port, not $REPLICA_PORT; run down first"
    wait_server_ready "$pid" "$RDATA" "$REPLICA_PORT" "$RLOG" replica
    echo "$pid" >"$RPIDF"
    say "replica: already running (pid $pid, 127.0.0.1:$REPLICA_PORT)"
    return 0
  fi
  [ -f "$RDATA/PG_VERSION" ] || die "no replica in $RDATA; run 'TIDE_REPLICA=1 db/stack.sh up'"
  ensure_root
  major=$(pg_major_of_bin); want=$(cat "$RDATA/PG_VERSION")
  [ "$major" = "$want" ] || die "the replica is PostgreSQL $want but the binaries are $major; reset"
  write_pg_conf "$RDATA" "$REPLICA_PORT" replica
  mkdir -p "$LOGDIR"
  logmark "start replica on $REPLICA_PORT"
  # fd 8 is the stack lock: daemons must not inherit it.
  (cd / && in_pg --daemon --data "$RDATA" "$(in_pg_bin)/postgres" -D "$(in_pg_data "$RDATA")") \
    </dev/null >>"$RLOG" 2>&1 8>&- &
  local bg=$!
  wait_server_ready "$bg" "$RDATA" "$REPLICA_PORT" "$RLOG" replica
  pid=$(head -n1 "$RDATA/postmaster.pid")
  echo "$pid" >"$RPIDF"
  say "replica: started (pid $pid, 127.0.0.1:$REPLICA_PORT, a hot standby of :$PG_PORT)"
}

stop_replica() { stop_server replica "$(replica_pid)" "$RPIDF" "${1:-fast}"; }

# replay_state: the replica's pg_get_wal_replay_pause_state() (not paused, pause requested, paused).
replay_state() { rsu_psql -d postgres -Atc 'select pg_get_wal_replay_pause_state()'; }

# set_replay pause|resume: pg_wal_replay_pause() / pg_wal_replay_resume() on the replica. A
# pause takes effect before the next WAL record is replayed: "pause requested" until one comes.
set_replay() {
  [ -n "$(replica_pid)" ] || die "the replica is not running"
  rsu_psql -d postgres -v ON_ERROR_STOP=1 -Atc "select pg_wal_replay_$1()" >>"$LOG" 2>&1 \
    || die "pg_wal_replay_$1() failed on the replica (log: $LOG)"
  say "replica: replay $1d ($(replay_state); replayed $(rsu_psql -d postgres -Atc 'select pg_last_wal_replay_lsn()'))"
}

# replica_catch_up SECONDS: until the replica has replayed the primary's current WAL position.
replica_catch_up() {
  local target end=$((SECONDS + $1)) r
  target=$(su_psql -d postgres -Atc 'select pg_current_wal_lsn()' 2>>"$LOG") || die "cannot read the primary's WAL position"
  while ((SECONDS < end)); do
    r=$(rsu_psql -d postgres -Atc "select pg_last_wal_replay_lsn() >= '$target'" 2>/dev/null || true)
    if [ "$r" = t ]; then return 0; fi
    sleep 0.1
  done
  die "the replica has not replayed the primary's $target after $1 s (log: $RLOG)"
}

# up_replica: the replica's part of `up` when TIDE_REPLICA=1: the clone kept if it can still
# follow the primary, else a new one; started, replay resumed, caught up with the primary.
up_replica() {
  local why
  why=$(replica_stale)
  if [ -n "$why" ]; then clone_replica "$why"; else say "replica: reusing $RDATA"; fi
  start_replica
  if [ "$(replay_state)" != "not paused" ]; then set_replay resume; fi
  replica_catch_up 30
}

# remove_replica: `up` with TIDE_REPLICA=0: no replica, and no slot holding WAL for one.
remove_replica() {
  [ -n "$(replica_pid)" ] || [ -d "$RDATA" ] || [ -n "$(slot_state)" ] || return 0
  stop_replica fast
  drop_slot
  rm -rf -- "$RDATA" "$RPIDF"
  say "replica: removed (TIDE_REPLICA=0), slot $SLOT dropped"
}

# ---------------------------------------------------------------- database, migrations, seed

ensure_db() {
  if [ "$(su_psql -d postgres -Atc "select 1 from pg_database where datname = 'tide'")" = 1 ]; then
    say "database: tide present"
  else
    su_psql -d postgres -c 'create database tide' >>"$LOG" 2>&1 || die "create database tide failed (log: $LOG)"
    say "database: tide created"
  fi
  su_psql -d tide -v ON_ERROR_STOP=1 >>"$LOG" 2>&1 <<'EOF' || die "tide_meta setup failed (log: $LOG)"
set client_min_messages = warning;
create schema if not exists tide_meta;
create table if not exists tide_meta.migrations (name text primary key, applied_at timestamptz not null default now());
create table if not exists tide_meta.seeds (name text primary key, applied_at timestamptz not null default now());
EOF
}

# apply_dir KIND DIR TABLE: applies DIR/*.sql not yet in TABLE, in lexical order, each in one
# transaction together with its bookkeeping row. Files must not hold BEGIN/COMMIT themselves.
apply_dir() {
  local kind=$1 dir=$2 table=$3 f name out n=0 skipped=0
  local -A applied=()
  out=$(su_psql -d tide -Atc "select name from $table" 2>>"$LOG") || die "cannot read $table (log: $LOG)"
  while IFS= read -r name; do [ -z "$name" ] || applied[$name]=1; done <<<"$out"
  shopt -s nullglob
  local files=("$dir"/*.sql)
  shopt -u nullglob
  for f in "${files[@]}"; do
    name=$(basename "$f")
    if [ -n "${applied[$name]-}" ]; then skipped=$((skipped + 1)); continue; fi
    logmark "$kind $name"
    if ! out=$(su_psql -d tide -v ON_ERROR_STOP=1 -v file="$f" -v name="$name" 2>&1 <<EOF
begin;
\i :file
reset role;
insert into $table (name) values (:'name');
commit;
EOF
    ); then
      printf '%s\n' "$out" >>"$LOG"
      printf '%s\n' "$out" | tail -n 10 >&2
      die "$kind $name failed, rolled back (log: $LOG)"
    fi
    printf '%s\n' "$out" >>"$LOG"
    n=$((n + 1))
  done
  say "$kind: $n applied, $skipped already applied (${dir/#$repo\//})"
}

set_authenticator_password() {
  TIDE_DB_PASSWORD=$PW su_psql -d tide -v ON_ERROR_STOP=1 >>"$LOG" 2>&1 <<'EOF' || die "setting authenticator's password failed (log: $LOG)"
\getenv pw TIDE_DB_PASSWORD
select exists (select 1 from pg_roles where rolname = 'authenticator') as has_authenticator \gset
\if :has_authenticator
alter role authenticator password :'pw';
\endif
EOF
}

has_authenticator() {
  [ "$(su_psql -d postgres -Atc "select 1 from pg_roles where rolname = 'authenticator'" 2>/dev/null)" = 1 ]
}

# ---------------------------------------------------------------- pgbouncer

bdir() { printf '%s/pgbouncer-%s' "$STACK" "$1"; }
bport() { if [ "$1" = session ]; then printf '%s' "$SESSION_PORT"; else printf '%s' "$TXN_PORT"; fi; }
bmode() { if [ "$1" = session ]; then printf session; else printf transaction; fi; }

# bouncer_pid KIND: prints the running pgbouncer's pid, or nothing.
bouncer_pid() {
  local pid=''
  [ ! -f "$(bdir "$1")/pgbouncer.pid" ] || pid=$(head -n1 "$(bdir "$1")/pgbouncer.pid" 2>/dev/null || true)
  if is_alive "$pid" pgbouncer; then printf '%s' "$pid"; fi
}

write_bouncer_conf() {
  local kind=$1 d epw pg_host=127.0.0.1
  [ -z "$(sock "$DATA" "$PG_PORT")" ] || pg_host=$DATA
  d=$(bdir "$kind")
  mkdir -p "$d"; chmod 0700 "$d"; own "$d"
  cat >"$d/pgbouncer.ini" <<EOF
; Written by db/stack.sh at every start: edit the script, not this file.
[databases]
tide = host=$pg_host port=$PG_PORT dbname=tide

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $(bport "$kind")
unix_socket_dir = $d
pool_mode = $(bmode "$kind")
auth_type = scram-sha-256
auth_file = $d/userlist.txt
; dev/test: postgres may use the admin console (SHOW POOLS, PAUSE, ...) with the same password
admin_users = postgres
stats_users = postgres
default_pool_size = 20
max_client_conn = 2000
ignore_startup_parameters = extra_float_digits,options
; fault tests restart Postgres: retry a failed server login after 1 s, not 15
server_login_retry = 1
logfile = $d/pgbouncer.log
pidfile = $d/pgbouncer.pid
EOF
  epw=${PW//\"/\"\"}
  printf '"authenticator" "%s"\n"postgres" "%s"\n' "$epw" "$epw" >"$d/userlist.txt"
  chmod 0600 "$d/pgbouncer.ini" "$d/userlist.txt"
  own "$d/pgbouncer.ini" "$d/userlist.txt"
  as_pg test -r "$d/pgbouncer.ini" \
    || die "pgbouncer runs as postgres and cannot read $d; make $STACK's parents traversable (o+x)"
}

# listens PID PORT: PID holds a listening TCP socket on 127.0.0.1:PORT. PgBouncer keeps running
# on its unix socket alone when the TCP port is taken, and another stack's bouncer on that port
# would answer our checks: so ask the kernel who owns the port.
listens() {
  local pid=$1 hex inode fd
  printf -v hex '0100007F:%04X' "$2"
  while read -r inode; do
    for fd in /proc/"$pid"/fd/*; do
      [ "$(readlink "$fd" 2>/dev/null)" != "socket:[$inode]" ] || return 0
    done
  done < <(awk -v a="$hex" '$2 == a && $4 == "0A" { print $10 }' /proc/net/tcp)
  return 1
}

# port_busy PORT: something listens on TCP PORT (any address, IPv4 or IPv6).
port_busy() {
  local hex
  printf -v hex '%04X' "$1"
  awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# wait_bouncer KIND: until the admin console answers and, when Postgres runs and the role exists,
# authenticator gets `select 1` through the pool (15 s).
wait_bouncer() {
  local kind=$1 port end=$((SECONDS + 15)) pid e2e=0
  port=$(bport "$kind")
  if [ -n "$(pg_pid)" ] && has_authenticator; then e2e=1; fi
  while ((SECONDS < end)); do
    pid=$(bouncer_pid "$kind")
    if [ -n "$pid" ] && grep -q "\[$pid\] WARNING cannot listen on 127.0.0.1:$port" "$(bdir "$kind")/pgbouncer.log" 2>/dev/null; then
      break                                   # port taken: fail now, not after 15 s
    fi
    if [ -n "$pid" ] && listens "$pid" "$port" &&
       PGPASSWORD=$PW PGCONNECT_TIMEOUT=2 "$PSQL" -X -h 127.0.0.1 -p "$port" -U postgres -d pgbouncer \
         -Atc 'show version' >/dev/null 2>&1 &&
       { [ "$e2e" = 0 ] ||
         [ "$(PGPASSWORD=$PW PGCONNECT_TIMEOUT=2 "$PSQL" -X -h 127.0.0.1 -p "$port" -U authenticator \
              -d tide -Atc 'select 1' 2>>"$LOG")" = 1 ]; }; then
      return 0
    fi
    sleep 0.2
  done
  tail -n 15 "$(bdir "$kind")/pgbouncer.log" >&2 2>/dev/null || true
  stop_bouncer "$kind" >/dev/null
  die "pgbouncer-$kind not ready on 127.0.0.1:$port (log: $(bdir "$kind")/pgbouncer.log)"
}

start_bouncer() {
  local kind=$1 pid d
  d=$(bdir "$kind")
  pid=$(bouncer_pid "$kind")
  write_bouncer_conf "$kind"
  if [ -n "$pid" ]; then
    kill -HUP "$pid"      # picks up a changed password; ports need down/up
    wait_bouncer "$kind"
    say "pgbouncer-$kind: already running (pid $pid, 127.0.0.1:$(bport "$kind"), $(bmode "$kind") mode)"
    return 0
  fi
  rm -f "$d/pgbouncer.pid"
  logmark "start pgbouncer-$kind"
  # max_client_conn 2000 needs about 2100 descriptors; runuser's PAM session resets the soft
  # limit (often to 1024), so raise it after the user switch.
  (cd / && env -i PATH="$DAEMON_PATH" setsid -w "${AS_PG[@]}" sh -c \
      'ulimit -Sn 4096 2>/dev/null || ulimit -Sn "$(ulimit -Hn)" || true; exec "$0" "$@"' \
      "$PGBOUNCER" -d -q "$d/pgbouncer.ini") \
    </dev/null >>"$LOG" 2>&1 8>&- \
    || { tail -n 10 "$LOG" >&2; die "pgbouncer-$kind failed to start (log: $LOG, $d/pgbouncer.log)"; }
  wait_bouncer "$kind"
  say "pgbouncer-$kind: started (pid $(bouncer_pid "$kind"), 127.0.0.1:$(bport "$kind"), $(bmode "$kind") mode)"
}

# stop_bouncer KIND [SIG]: TERM (immediate shutdown, clients dropped) by default; KILL simulates a
# crash. Escalates to KILL after 10 s.
stop_bouncer() {
  local kind=$1 sig=${2:-TERM} pid
  pid=$(bouncer_pid "$kind")
  if [ -z "$pid" ]; then
    rm -f "$(bdir "$kind")/pgbouncer.pid"
    say "pgbouncer-$kind: not running"
    return 0
  fi
  kill -s "$sig" "$pid" 2>/dev/null || die "cannot send SIG$sig to pgbouncer-$kind (pid $pid)"
  if ! wait_gone "$pid" 10; then
    warn "pgbouncer-$kind (pid $pid) still up after 10 s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 5 || die "pgbouncer-$kind (pid $pid) did not exit"
  fi
  rm -f "$(bdir "$kind")/pgbouncer.pid"
  say "pgbouncer-$kind: stopped (pid $pid, SIG$sig)"
}

# ---------------------------------------------------------------- stack.env

# dsn DIR PORT: authenticator's DSN for the server on PORT: its unix socket in DIR when it has
# one, else 127.0.0.1.
dsn() {
  local epw
  epw=$(urlencode "$PW")
  if [ -n "$(sock "$1" "$2")" ]; then
    printf 'postgresql://authenticator:%s@/tide?host=%s&port=%s' "$epw" "$(urlencode "$1")" "$2"
  else
    printf 'postgresql://authenticator:%s@127.0.0.1:%s/tide' "$epw" "$2"
  fi
}

write_env() {
  local epw tmp
  epw=$(urlencode "$PW")
  tmp=$ENVF.tmp
  {
    echo "# Written by db/stack.sh up: the local stack's addresses. Dev/test credentials only."
    printf 'TIDE_DSN_DIRECT=%q\n' "$(dsn "$DATA" "$PG_PORT")"
    printf 'TIDE_DSN_SESSION=%q\n' "$(dsn "$(bdir session)" "$SESSION_PORT")"
    printf 'TIDE_DSN_TRANSACTION=%q\n' "$(dsn "$(bdir txn)" "$TXN_PORT")"
    printf 'TIDE_DSN_ADMIN=%q\n' "postgresql://postgres@127.0.0.1:$PG_PORT/tide"
    printf 'TIDE_STACK_DIR=%q\n' "$STACK"
    printf 'TIDE_PG_PORT=%q\n' "$PG_PORT"
    printf 'TIDE_SESSION_PORT=%q\n' "$SESSION_PORT"
    printf 'TIDE_TXN_PORT=%q\n' "$TXN_PORT"
    printf 'TIDE_DB_PASSWORD=%q\n' "$PW"
    printf 'TIDE_PGROOT=%q\n' "$PGROOT"
    printf 'TIDE_PGBIN=%q\n' "$PGBIN"
    if [ "$REPLICA" = 1 ]; then
      printf 'TIDE_REPLICA=1\n'
      printf 'TIDE_REPLICA_PORT=%q\n' "$REPLICA_PORT"
      printf 'TIDE_DSN_REPLICA=%q\n' "$(dsn "$RDATA" "$REPLICA_PORT")"
    fi
  } >"$tmp"
  chmod 0600 "$tmp"
  mv -f "$tmp" "$ENVF"
}

# ---------------------------------------------------------------- commands

cmd_up() {
  [ -n "$PGBIN" ] || [ "$IS_ROOT" = 1 ] \
    || die "the chrooted Postgres needs root; set TIDE_PGBIN to a host Postgres bin dir with pgvector"
  with_lock
  # Fail before starting anything when a port we need belongs to someone else (another stack?).
  [ -n "$(pg_pid)" ] || ! port_busy "$PG_PORT" || die "port $PG_PORT (TIDE_PG_PORT) is in use"
  [ -n "$(bouncer_pid session)" ] || ! port_busy "$SESSION_PORT" || die "port $SESSION_PORT (TIDE_SESSION_PORT) is in use"
  [ -n "$(bouncer_pid txn)" ] || ! port_busy "$TXN_PORT" || die "port $TXN_PORT (TIDE_TXN_PORT) is in use"
  [ "$REPLICA" = 0 ] || [ -n "$(replica_pid)" ] || ! port_busy "$REPLICA_PORT" \
    || die "port $REPLICA_PORT (TIDE_REPLICA_PORT) is in use"
  mkdir -p "$LOGDIR"
  case $SEED in demo|none) ;; *) die "TIDE_SEED must be demo or none, not '$SEED'" ;; esac
  ensure_root
  init_cluster
  start_pg
  ensure_db
  apply_dir migrations "$MIG_DIR" tide_meta.migrations
  if [ "$SEED" = demo ]; then
    apply_dir "seed $SEED" "$SEED_DIR" tide_meta.seeds
  else
    say "seed: skipped (TIDE_SEED=none)"
  fi
  set_authenticator_password
  has_authenticator || warn "role authenticator does not exist (no migration creates it); poolers checked via their admin console only"
  start_bouncer session
  start_bouncer txn
  local rep=''
  if [ "$REPLICA" = 1 ]; then up_replica; rep=", replica :$REPLICA_PORT"; else remove_replica; fi
  write_env
  local via='127.0.0.1 (the paths are too long for unix sockets)'
  [ -z "$(sock "$DATA" "$PG_PORT")" ] || via="their unix sockets"
  say "up: postgres 127.0.0.1:$PG_PORT, session pool :$SESSION_PORT, transaction pool :$TXN_PORT$rep; the DSNs reach them by $via; env in $ENVF"
}

cmd_down() {
  [ -d "$STACK" ] || { say "down: nothing at $STACK"; return 0; }
  with_lock
  stop_bouncer session
  stop_bouncer txn
  # the replica first: it would only retry its stream meanwhile (and not be asked to)
  if [ "$REPLICA" = 1 ] || [ -n "$(replica_pid)" ]; then stop_replica; fi
  stop_pg
}

cmd_status() {
  local pid all=0 what port k
  if [ -n "$PGBIN" ]; then what="host $PGBIN"; else what="chroot $PGROOT"; fi
  pid=$(pg_pid)
  if [ -n "$pid" ]; then
    port=$(sed -n 4p "$DATA/postmaster.pid" 2>/dev/null | tr -d ' ' || true)
    printf '%-18s running  pid %-7s 127.0.0.1:%s  (%s, data %s)\n' postgres "$pid" "${port:-?}" "$what" "$DATA"
  else
    printf '%-18s stopped\n' postgres; all=3
  fi
  for k in session txn; do
    pid=$(bouncer_pid "$k")
    if [ -n "$pid" ]; then
      port=$(sed -n 's/^listen_port = //p' "$(bdir "$k")/pgbouncer.ini" 2>/dev/null || true)
      printf '%-18s running  pid %-7s 127.0.0.1:%s  (%s mode)\n' "pgbouncer-$k" "$pid" "${port:-?}" "$(bmode "$k")"
    else
      printf '%-18s stopped\n' "pgbouncer-$k"; all=3
    fi
  done
  if [ "$REPLICA" = 1 ] || [ -d "$RDATA" ]; then replica_status || all=3; fi
  return "$all"
}

# replica_status: the replica's line: running or not, where, and how far its replay is behind
# the primary's current WAL position. 1 when it is stopped.
replica_status() {
  local pid port ppid p='' r
  pid=$(replica_pid)
  if [ -z "$pid" ]; then printf '%-18s stopped  (data %s)\n' replica "$RDATA"; return 1; fi
  port=$(sed -n 4p "$RDATA/postmaster.pid" 2>/dev/null | tr -d ' ' || true)
  ppid=$(pg_pid)
  # a frozen primary (freeze-pg) would hold psql for its whole connect timeout
  if [ -n "$ppid" ] && [ "$(sed 's/.*) //' "/proc/$ppid/stat" 2>/dev/null | cut -d' ' -f1)" != T ]; then
    p=$(su_psql -d postgres -Atc 'select pg_current_wal_lsn()' 2>/dev/null || true)
  fi
  if [ -n "$p" ]; then
    r=$(rsu_psql -d postgres -Atc "select pg_last_wal_replay_lsn() || ' replayed, primary at $p (' ||
           pg_wal_lsn_diff('$p', pg_last_wal_replay_lsn()) || ' bytes behind), replay ' ||
           pg_get_wal_replay_pause_state()" 2>/dev/null || true)
  else
    r=$(rsu_psql -d postgres -Atc "select pg_last_wal_replay_lsn() || ' replayed, primary not answering, replay ' ||
           pg_get_wal_replay_pause_state()" 2>/dev/null || true)
  fi
  printf '%-18s running  pid %-7s 127.0.0.1:%s  (%s; data %s)\n' replica "$pid" "${port:-?}" \
    "${r:-not answering}" "$RDATA"
}

cmd_reset() {
  cmd_down
  [ -d "$STACK" ] || return 0
  [ -z "$(pg_pid)" ] || die "postgres still runs; not removing $DATA"
  [ -z "$(replica_pid)" ] || die "the replica still runs; not removing $RDATA"
  rm -rf -- "$DATA" "$RDATA" "$(bdir session)" "$(bdir txn)" "$LOGDIR" "$ENVF" "$ENVF.tmp" "$PIDF" \
    "$RPIDF" "$STACK/.lock"
  rmdir -- "$STACK" 2>/dev/null || true
  say "reset: removed cluster, replica, poolers, logs and stack.env under $STACK"
}

usage() {
  sed -n '8,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

cmd=${1:-}
[ $# -eq 0 ] || shift
case $cmd in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  psql) exec "$PSQL" -X -h 127.0.0.1 -p "$PG_PORT" -U postgres -d tide "$@" ;;
  psql-replica) exec "$PSQL" -X -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -d tide "$@" ;;
  reset) cmd_reset ;;
  start-pg) with_lock; mkdir -p "$LOGDIR"; start_pg ;;
  stop-pg) with_lock; stop_pg "${1:-fast}" ;;
  freeze-pg) with_lock; signal_pg STOP ;;
  thaw-pg) with_lock; signal_pg CONT ;;
  start-txn-bouncer) with_lock; mkdir -p "$LOGDIR"; start_bouncer txn ;;
  kill-txn-bouncer) with_lock; stop_bouncer txn "${1:-TERM}" ;;
  start-session-bouncer) with_lock; mkdir -p "$LOGDIR"; start_bouncer session ;;
  kill-session-bouncer) with_lock; stop_bouncer session "${1:-TERM}" ;;
  start-replica) with_lock; mkdir -p "$LOGDIR"; start_replica ;;
  stop-replica) with_lock; stop_replica "${1:-fast}" ;;
  pause-replay) with_lock; set_replay pause ;;
  resume-replay) with_lock; set_replay resume ;;
  *) usage ;;
esac
