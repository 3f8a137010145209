#!/usr/bin/env bash
# Installs the Debian packages tide needs to build, test and run its local stack (`make deps`).
# Runs `apt-get update` only when something is missing. Not root: uses sudo when present, else
# prints the command to run and exits 1.
# Note: Debian's postgresql-15 and pgbouncer packages bring their own services (a 15/main cluster
# on 5432, pgbouncer on 6432) and may start them on a systemd host. db/stack.sh uses 5432x ports
# and its own clusters and configs, so they do not collide; stop or disable those services if you
# do not want them (systemctl disable --now postgresql pgbouncer).
# nginx and libnginx-mod-http-lua are `make bench`'s OpenResty baseline (bench/openresty/): the
# bench runs its own nginx on 127.0.0.1:18189; on a systemd host Debian's nginx service also
# starts, on port 80 (systemctl disable --now nginx).
# prometheus brings promtool, which the tests run on GET /metrics; on a systemd host its
# server also starts, on port 9090 (systemctl disable --now prometheus).
# nodejs and npm run @supabase/postgrest-js against /rest/v1 (spec/js, pinned for node >= 18:
# Debian 12's is 18). A node already on PATH (NodeSource's nodejs, which carries npm and
# conflicts with Debian's npm package) counts as installed: they are looked up as commands.
# Then db/luajit.sh builds the static LuaJIT tide links against (var/luajit, from Debian's
# luajit2 source package with LUAJIT_ENABLE_CHECKHOOK); luajit2 itself stays for busted.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(
  build-essential pkg-config
  libluajit2-5.1-dev luajit2 libpq-dev libev-dev lua-cjson lua-cjson-dev lua-busted
  libhttp-parser-dev libssl-dev libjansson-dev lua-socket curl
  postgresql-15 postgresql-client-15 pgbouncer wrk debootstrap nginx libnginx-mod-http-lua
  clang libclang-rt-14-dev clang-format lua-check cppcheck prometheus nodejs npm
)
# packages that count as present when their command is on PATH, however it got there
declare -A command_of=([nodejs]=node [npm]=npm)

missing=()
for p in "${pkgs[@]}"; do
  c=${command_of[$p]:-}
  if [ -n "$c" ] && command -v "$c" >/dev/null; then continue; fi
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$st" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#pkgs[@]} packages present"
  exec db/luajit.sh
fi

echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo)
else
  echo "deps: not root and no sudo; run as root:" >&2
  echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}" >&2
  exit 1
fi
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
echo "deps: done (the distro's postgresql/pgbouncer services, if started, use 5432/6432; the stack uses 5432x)"
exec db/luajit.sh
