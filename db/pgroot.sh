#!/usr/bin/env bash
# Builds (once) a Debian trixie root holding PostgreSQL 17 with pgvector.
# Debian 12 ships no pgvector; trixie does. The root is shared by every checkout
# on the machine (it holds binaries only; cluster data lives under ./var).
# Usage: db/pgroot.sh [ROOT]   (default $TIDE_PGROOT or /var/cache/tide/pg17-trixie)
set -euo pipefail
root=${1:-${TIDE_PGROOT:-/var/cache/tide/pg17-trixie}}
stamp="$root/.tide-ready"
[ -f "$stamp" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "pgroot: building the pgvector root needs root (chroot); set TIDE_PGBIN to a host Postgres with pgvector instead" >&2
  exit 1
fi
command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap; }
lock="$root.lock"
mkdir -p "$(dirname "$root")"
exec 9>"$lock"
flock 9
[ -f "$stamp" ] && exit 0
rm -rf "$root.tmp"
echo "pgroot: debootstrap trixie into $root (once, about a minute)" >&2
debootstrap --variant=minbase trixie "$root.tmp" http://deb.debian.org/debian >"$root.log" 2>&1 \
  || { echo "pgroot: debootstrap failed, see $root.log" >&2; exit 1; }
# The chroot's postgres user must have the host's uid/gid: data under ./var is owned by it.
uid=$(id -u postgres); gid=$(id -g postgres)
chroot "$root.tmp" sh -c "groupadd -g $gid postgres && useradd -r -u $uid -g $gid -d /var/lib/postgresql -s /bin/sh postgres"
unshare -m --propagation private sh -c "
  mount -t proc proc '$root.tmp/proc' &&
  chroot '$root.tmp' sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-17 postgresql-17-pgvector'
" >>"$root.log" 2>&1 || { echo "pgroot: package install failed, see $root.log" >&2; exit 1; }
mkdir -p "$root.tmp/srv/pgdata"
rm -rf "$root"
mv "$root.tmp" "$root"
touch "$stamp"
echo "pgroot: ready" >&2
