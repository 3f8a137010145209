#!/usr/bin/env bash
# Builds the LuaJIT tide links against (`make deps`, called by db/deps.sh): Debian's own source
# package (luajit2, the version of the installed luajit2 package) compiled as a static library
# with -DLUAJIT_ENABLE_CHECKHOOK, installed into var/luajit/{include,lib}.
#
# Why: Debian's libluajit is built without LUAJIT_ENABLE_CHECKHOOK, so JIT-compiled code never
# looks at hooks and a count hook set from a signal handler (the way to stop a script that runs
# too long) cannot stop a compiled loop such as `while true do end`. With the flag, every trace
# checks the hook mask on each iteration and exits to the interpreter, which runs the hook.
#
# A stamp, var/luajit/BUILD, records the source version, the flags and the compiler; the script
# is a fast no-op while it matches and rebuilds when any of them changes. The source package is downloaded
# once into var/luajit/src (apt-get source; this adds a deb-src entry for the release to
# /etc/apt/sources.list.d/ when none is configured, which needs root or sudo) and unpacked and
# built in var/luajit/build (log: var/luajit/build.log). `make clean` keeps var/luajit,
# `make distclean` removes it.
#
#   db/luajit.sh          the default variant, with the hook check, into var/luajit (make deps)
#   db/luajit.sh nohook   the same source and recipe WITHOUT the flag, into var/luajit-nohook
#                         (its own stamp, build and log; the source package is the one in
#                         var/luajit/src): only for the baseline `make bench` builds to measure
#                         what script budgets cost (bench/run.sh builds it on demand; make deps
#                         does not)
set -euo pipefail
cd "$(dirname "$0")/.."

pkg=luajit2
recipe=1                       # bump when the build steps below change what gets installed
srcdir=var/luajit/src          # the downloaded source package, shared by the variants
case ${1:-hook} in
  hook)   xcflags="-DLUAJIT_ENABLE_CHECKHOOK" dest=var/luajit ;;
  nohook) xcflags="" dest=var/luajit-nohook ;;
  *) echo "luajit: usage: db/luajit.sh [hook|nohook]" >&2; exit 2 ;;
esac
log=$dest/build.log
headers=(lua.h lualib.h lauxlib.h luaconf.h luajit.h lua.hpp)

die() { echo "luajit: $*" >&2; exit 1; }

version=$(dpkg-query -W -f='${source:Version}' "$pkg" 2>/dev/null) ||
  die "the $pkg package is not installed (run make deps)"
[ -n "$version" ] || die "no version for the installed $pkg package"
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
cc=gcc
command -v "$cc" >/dev/null || die "no $cc (run make deps: build-essential)"

stamp="source $pkg $version
xcflags ${xcflags:-none}
multiarch $multiarch
cc $("$cc" --version | head -n 1)
recipe $recipe"

up_to_date() {
  [ -f "$dest/BUILD" ] && [ "$(cat "$dest/BUILD")" = "$stamp" ] &&
    [ -f "$dest/lib/libluajit.a" ] && [ -f "$dest/include/luajit.h" ]
}
if up_to_date; then
  echo "luajit: $pkg $version (${xcflags:-no extra flags}) up to date in $dest"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo)
else
  sudo=(none)
fi
as_root() {
  if [ "${sudo[0]:-}" = none ]; then
    die "needs root for: $*
  (not root and no sudo; run make deps as root, or run that command as root first)"
  fi
  "${sudo[@]}" "$@"
}

# has_source: apt knows Debian's source for exactly this version
has_source() {
  local src
  src=$(apt-cache showsrc "$pkg" 2>/dev/null) || return 1
  grep -qx "Version: $version" <<<"$src"
}

# deb_src_stanza CODENAME: the release's main `Types: deb` stanza (deb822,
# /etc/apt/sources.list.d/*.sources) turned into a deb-src one for that suite only; fails when
# there is none. deb_src_line CODENAME: the same from a one-line `deb` entry.
deb_src_stanza() {
  local codename=$1 f out
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    out=$(awk -v suite="$codename" '
      BEGIN { RS = ""; FS = "\n" }
      {
        types = ""; suites = ""; enabled = "yes"; out = ""
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^[ \t]*#/) continue
          if (match(line, /^Types:[ \t]*/)) { types = " " substr(line, RLENGTH + 1) " "; continue }
          if (match(line, /^Suites:[ \t]*/)) { suites = " " substr(line, RLENGTH + 1) " "; continue }
          if (match(line, /^Enabled:[ \t]*/)) enabled = substr(line, RLENGTH + 1)
          out = out line "\n"
        }
        if (enabled == "no" || types !~ / deb / || suites !~ (" " suite " ")) next
        printf "Types: deb-src\nSuites: %s\n%s", suite, out
        exit
      }' "$f")
    if [ -n "$out" ]; then printf '%s\n' "$out"; return 0; fi
  done
  return 1
}

deb_src_line() {
  local codename=$1
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    sed -nE "s/^[[:space:]]*deb[[:space:]]+((\[[^]]*\][[:space:]]+)?[^[:space:]]+[[:space:]]+${codename}[[:space:]].*)/deb-src \1/p" |
    head -n 1
}

any_deb_src() {
  grep -qsE '^[[:space:]]*deb-src[[:space:]]|^Types:.*deb-src' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
}

ensure_source_index() {
  has_source && return 0
  if ! any_deb_src; then
    local codename entry file
    codename=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release 2>/dev/null | tr -d '"')
    [ -n "$codename" ] || die "no VERSION_CODENAME in /etc/os-release; add a deb-src entry by hand"
    if entry=$(deb_src_stanza "$codename") && [ -n "$entry" ]; then
      file=/etc/apt/sources.list.d/tide-deb-src.sources
    elif entry=$(deb_src_line "$codename") && [ -n "$entry" ]; then
      file=/etc/apt/sources.list.d/tide-deb-src.list
    else
      die "no deb entry for $codename in /etc/apt/sources.list{,.d} to derive a deb-src entry from; add one by hand"
    fi
    if [ "${sudo[0]:-}" = none ]; then
      die "Debian's source of $pkg needs a deb-src entry, and adding one needs root (no sudo).
As root, write these lines to $file and run apt-get update, or run make deps as root:
$entry"
    fi
    echo "luajit: adding a deb-src entry for $codename ($file)"
    printf '%s\n' "$entry" | as_root tee "$file" >/dev/null
  fi
  echo "luajit: apt-get update (source indexes)"
  as_root apt-get update -qq >>"$log" 2>&1 || { tail -n 20 "$log" >&2; die "apt-get update failed (log: $log)"; }
  has_source || die "apt has no source for $pkg $version (apt-cache showsrc $pkg); is a deb-src entry for the release enabled?"
}

mkdir -p "$dest"
: >"$log"
rm -f "$dest/BUILD"

# 1. the source package, downloaded once per version
upstream=${version#*:}         # file names carry no epoch
dsc=$srcdir/${pkg}_${upstream}.dsc
if [ ! -f "$dsc" ]; then
  ensure_source_index
  echo "luajit: downloading Debian's $pkg $version source package"
  mkdir -p "$srcdir"
  apt_opts=(-qq)
  # as root apt would fall back to an unsandboxed download, with a warning, anyway
  [ "$(id -u)" -eq 0 ] && apt_opts+=(-o APT::Sandbox::User=root)
  (cd "$srcdir" && apt-get "${apt_opts[@]}" source --download-only "$pkg=$version") >>"$log" 2>&1 ||
    { tail -n 20 "$log" >&2; die "apt-get source $pkg=$version failed (log: $log)"; }
  [ -f "$dsc" ] || die "apt-get source left no $dsc"
fi

# 2. unpacked fresh, Debian's patches applied (dpkg-source -x applies a 3.0 (quilt) series)
rm -rf "${dest:?}/build"
mkdir -p "$dest/build"
tree=$dest/build/$pkg
dpkg-source -x "$dsc" "$tree" >>"$log" 2>&1 ||
  { tail -n 20 "$log" >&2; die "dpkg-source -x $dsc failed (log: $log)"; }

# 3. the static library, built as Debian builds it (make amalg: the core as one compilation
# unit, the faster code) plus the flag. PREFIX and MULTILIB as Debian sets them, so the default
# package.path/cpath are those of Debian's luajit (its jit.* modules, the lua-* C modules under
# /usr/lib/<multiarch>/lua/5.1). The compiler's default code model is kept: Debian's gcc and
# clang emit position-independent (PIE) code, which links into tide, its ASan build and the
# clang/libFuzzer targets alike. A clean environment: a calling make's MAKEFLAGS (its command
# line variables, CC=clang, CFLAGS=-fsanitize=...) or an exported CFLAGS must not reach this
# build, whose inputs are only what the stamp records.
echo "luajit: building $pkg $version with ${xcflags:-no extra flags} into $dest (static, make amalg, 30 s or so)"
start=$(date +%s)
env -i PATH="$PATH" HOME="${HOME:-/}" LC_ALL=C \
  make -C "$tree" -j2 amalg CC="$cc" BUILDMODE=static PREFIX=/usr MULTILIB="lib/$multiarch" \
  CCDEBUG=-g XCFLAGS="$xcflags" >>"$log" 2>&1 ||
  { tail -n 30 "$log" >&2; die "make failed (log: $log)"; }

# 4. installed: headers and libluajit.a
rm -rf "${dest:?}/include" "${dest:?}/lib"
mkdir -p "$dest/include" "$dest/lib"
for h in "${headers[@]}"; do cp "$tree/src/$h" "$dest/include/"; done
cp "$tree/src/libluajit.a" "$dest/lib/"
printf '%s\n' "$stamp" >"$dest/BUILD"
echo "luajit: installed into $dest ($(( $(date +%s) - start )) s to build)"
