#!/usr/bin/env bash
# runtime/fuzz/run.sh SECONDS TARGET... - runs each libFuzzer target for SECONDS on its checked-in
# seeds (runtime/fuzz/corpus/TARGET) plus what earlier runs found (build-fuzz/corpus/TARGET).
# Prints one line per target with libFuzzer's exec count; exits 1 if any target crashed, leaked
# or timed out (the input is kept as build-fuzz/crash-TARGET-*).
set -uo pipefail
cd "$(dirname "$0")/../.."
secs=$1; shift
status=0
for t in "$@"; do
  bin=build-fuzz/fuzz_$t
  seeds=runtime/fuzz/corpus/$t
  work=build-fuzz/corpus/$t
  log=build-fuzz/fuzz_$t.log
  mkdir -p "$work" "$seeds"
  # -timeout: one input taking over 2 s is a finding (every decoder here has a time bound);
  # -rss_limit_mb: so is one that makes the process hold over 1 GiB.
  # The Lua targets (lua_target.h) keep one LuaJIT state for the whole run: LeakSanitizer
  # cannot follow LuaJIT's tagged pointers, so its check after an input would take the state's
  # live objects for leaks. Leak checks are off for them; -rss_limit_mb still bounds memory.
  leaks=1
  grep -q '#include "lua_target.h"' "runtime/fuzz/fuzz_$t.c" 2>/dev/null && leaks=0
  "$bin" -max_total_time="$secs" -timeout=2 -rss_limit_mb=1024 -max_len=65536 \
    -detect_leaks=$leaks \
    -artifact_prefix="build-fuzz/crash-$t-" -print_final_stats=1 "$work" "$seeds" >"$log" 2>&1
  rc=$?
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | tail -n 1 | awk '{print $2}')
  cov=$(grep -E '#[0-9]+.*(cov|ft):' "$log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+')
  if [ $rc -eq 0 ]; then
    echo "fuzz $t: ok, ${execs:-?} execs in ${secs}s (${cov:-no coverage line}), corpus $(ls "$work" | wc -l) files"
  else
    echo "fuzz $t: FAILED (exit $rc) after ${execs:-?} execs; log $log"
    grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -n 5
    status=1
  fi
done
exit $status
