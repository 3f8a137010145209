-- bench/report.lua - turns the key=value results bench/run.sh collected into the Markdown
-- report (stdout). The bars come from issue 3 (workloads 1-6), issue 9 (the result cache,
-- workloads 7-11) and issue 11 (pgbench at its best client count, CPU per request, no long
-- event-loop passes, the transaction pooler, workers) and are checked here against the numbers.
-- Workload 13 (script budgets): their cost in CPU per request, the current build over a baseline
-- without them, both serving at once in every round (bar: the median over rounds <= 1.03).
-- The replica workloads (issue 21): the point read routed to the replica and split, and the
-- write-then-read pair with Tide-LSN, beside the primary-only read (bar: tide's CPU per request
-- <= 1.10x the primary-only read's), and the share of reads each server answered.
-- A run with BENCH_ONLY=base, cache, pool, workers, budgets or replica reports only its own tables.
--   luajit bench/report.lua RESULTS_FILE
local path = arg[1] or "var/bench/results.txt"
local r = {}
for line in io.lines(path) do
    local k, v = line:match("^([%w_]+)=(.*)$")
    if k then r[k] = v end
end

local function num(k) return tonumber(r[k]) end

local function fmt_rate(v) return v and string.format("%.0f", v) or "n/a" end
local function fmt_ms(us) return us and string.format("%.2f ms", us / 1000) or "n/a" end
local function fmt_ratio(v) return v and string.format("%.2f", v) or "n/a" end
local function fmt_cpu(k) return num(k .. "_cpu_us") and string.format("%.1f", num(k .. "_cpu_us")) or "n/a" end
local function yes(ok) return ok and "yes" or "**no**" end

local out = {}
local function put(s) out[#out + 1] = s end
local only = r.only or "all"
local base, cache = only == "all" or only == "base", only == "all" or only == "cache"
-- workload 12's worker counts, ascending (bench/run.sh records workers_list when it ran)
local wcounts = {}
for c in (r.workers_list or ""):gmatch("%d+") do wcounts[#wcounts + 1] = tonumber(c) end
table.sort(wcounts)
local workers = #wcounts > 0
local sweep = r.pool_sweep_sizes ~= nil
local budgets = r.budgets_rounds ~= nil
local replica = r.replica_port ~= nil

-- Every bar checked, in order: { what, met }; the summary line names the unmet ones.
local bars = {}
local function bar(what, met)
    bars[#bars + 1] = { what = what, met = met }
    return met
end

-- The event-loop passes of run k: (cell text, bar met). The bar: no pass over 20 ms.
local function loop_cell(k)
    local over, max = num(k .. "_loop_over20"), r[k .. "_loop_max_s"]
    if over == nil then return "n/a", false end
    local longest
    if max == "+Inf" then
        longest = "> 10 s"
    elseif tonumber(max) == 0 then
        longest = "no pass"
    else
        longest = string.format("≤ %g ms", tonumber(max) * 1000)
    end
    local logged = r[k .. "_slow_passes"]
    if logged then longest = longest .. "; tide logged " .. logged:gsub(" ", ", ") .. " ms" end
    if r[k .. "_runq_pct"] then longest = longest .. "; run queue " .. r[k .. "_runq_pct"] .. "%" end
    return string.format("%d (longest %s)", over, longest), over == 0
end

local function errs(prefix)
    local status, sock = num(prefix .. "_non2xx"), num(prefix .. "_sockerr")
    if status == nil then return "n/a", false end
    local s = tostring(status)
    if sock and sock > 0 then s = s .. " (+" .. sock .. " socket errors)" end
    return s, status == 0 and (sock or 0) == 0
end

local function met_cell(ok) return ok and "met" or "**not met**" end

put("# tide benchmark")
put("")
put(string.format("- date: %s", r.date or "?"))
put(string.format("- machine: %s cores (`nproc`), %s", r.nproc or "?", r.cpu or "?"))
put("- figures from one run on a shared machine (tide, Postgres, PgBouncer, wrk and pgbench " ..
    "all on it); expect noise between runs")
put(string.format("- pool sizes: tide's direct %s, session %s, transaction %s (BENCH_POOL; " ..
                  "connections open after the runs that used them: direct %s, transaction %s); " ..
                  "PgBouncer %s " ..
                  "default_pool_size %s (server connections behind the poolers)",
                  r.pool_direct or "?", r.pool_session or "?", r.pool_transaction or "?",
                  r.open_direct or "?", r.open_transaction or "?", r.pgbouncer_version or "?",
                  r.pgbouncer_pool_size or "?"))
put(string.format("- priority: tide at nice %s (TIDE_NICE, README \"Sharing a host with Postgres\"; " ..
                  "the OpenResty worker too); Postgres, PgBouncer, pgbench and wrk at 0; workload 12 (warm hits, " ..
                  "no Postgres in the path) runs tide at 0",
                  r.tide_nice or "0"))
put(string.format("- connections (tide's and pgbench's alike, the bench stack's DSNs): Postgres by %s, " ..
                  "the poolers by %s; PgBouncer reaches Postgres the same way",
                  r.transport_direct or "?", r.transport_transaction or "?"))
put(string.format("- load: wrk -t%s -c%s -d%ss --latency after a %ss warm-up%s",
                  r.threads or "?", r.conns or "?", r.duration or "?", r.warmup or "?",
                  base and string.format("; pgbench -n -c N -j 2 -T %s after a %ss warm-up at " ..
                                         "each N of %s, over the statements tide sends " ..
                                         "(bench/gen.lua): -M prepared on Postgres' DSN, " ..
                                         "-M extended through the transaction pooler's",
                                         r.pg_duration or "?", r.pg_warmup or "?",
                                         r.pg_clients or "?") or ""))
put(string.format("- CPU µs per request: tide's utime + stime from /proc/<pid>/stat (clock ticks " ..
                  "of 1/%s s) over the measured run, divided by the requests wrk completed in it" ..
                  "%s; the whole process, its threads included",
                  r.clk_tck or "?", cache and " (OpenResty: its worker process's, the same way)" or ""))
do
    local parts = {}
    for _, k in ipairs({ "point", "list", "write", "vector", "pooler" }) do
        local u = k == "pooler" and "transaction" or "direct"
        local v = r[k .. "_mid_" .. u]
        if v then parts[#parts + 1] = string.format("%s %s (%s)", k, v:gsub(" ", " / "), u) end
    end
    if #parts > 0 then
        put("- tide's pool halfway through each measured run, open / busy / waiting: " ..
            table.concat(parts, ", "))
    end
end
if r.profile == "1" then
    put("- BENCH_PROFILE=1: perf record -F 499 -g ran on tide during each measured tide run " ..
        "(not the pool sweep's): its rates and CPU per request include perf's overhead; " ..
        "summaries below, whole reports in var/bench/logs/perf-*.txt")
end
if only ~= "all" then put("- partial run: BENCH_ONLY=" .. only) end
do
    local parts = {}
    for _, k in ipairs({ "point", "list", "write", "vector", "pooler", "cache_hit", "cache_nocache",
                         "cache_popular", "cache_mix" }) do
        if r[k .. "_tide_cpu"] then parts[#parts + 1] = k .. " " .. r[k .. "_tide_cpu"] .. "%" end
    end
    for _, c in ipairs(wcounts) do
        local k = "workers_" .. c
        if r[k .. "_tide_cpu"] then
            parts[#parts + 1] = string.format("%s %s%%%s", k, r[k .. "_tide_cpu"],
                                              c > 1 and (" (the parent and its " .. c .. " workers)") or "")
        end
    end
    if #parts > 0 then
        put("- tide's CPU during each measured run (% of one core; tide serves from one event-loop " ..
            "thread per worker): " .. table.concat(parts, ", ") ..
            (r.openresty_cpu and ("; nginx (master + worker) during the OpenResty run: " ..
                                  r.openresty_cpu .. "%") or ""))
    end
end

local function pg_cell(k, c)
    local tps = num(string.format("%s_pg_c%d_tps", k, c))
    if not tps then return "—" end
    local s = string.format("%.0f (p99 %s)", tps, fmt_ms(num(string.format("%s_pg_c%d_p99_us", k, c))))
    if tostring(c) == r[k .. "_pg_best_clients"] then s = "**" .. s .. "**" end
    return s
end

local function base_table()
    local conns = r.conns or "?"
    put("")
    put("## The database path (issues 3 and 11)")
    put("")
    put(string.format("| workload | tide req/s | tide p50 | tide p99 | tide CPU µs/req | loop passes " ..
                      "> 20 ms | tide non-2xx | pgbench best tps (-c) | tide / best | pgbench p99 " ..
                      "at -c %s | tide p99 / pgbench p99 | bars | met |", conns))
    put("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")

    local WORKLOADS = {
        { key = "point", name = "1. point read `GET /v1/trips/:id`" },
        { key = "list", name = "2. list `GET /v1/trips?limit=20`" },
        { key = "write", name = "3. write `POST /v1/search-history`" },
        { key = "vector", name = "4. vector `POST /v1/destinations/similar` (top 10)" },
        { key = "pooler", name = "5. point read via the transaction pooler (tide and pgbench " ..
                                 "-M extended both through PgBouncer's transaction-mode DSN)",
          bar = 0.9, p99_bar = false },
    }
    for _, w in ipairs(WORKLOADS) do
        local k = w.key
        local min = w.bar or 0.8
        local rps, best = num(k .. "_rps"), num(k .. "_pg_best_tps")
        local ratio = (rps and best and best > 0) and rps / best or nil
        local p99, pg99 = num(k .. "_p99_us"), num(k .. "_pg_conc_p99_us")
        local p99_ratio = (p99 and pg99 and pg99 > 0) and p99 / pg99 or nil
        local e, e_ok = errs(k)
        local loop, loop_ok = loop_cell(k)
        local pg_ok = (num(k .. "_pg_failed") or 0) == 0
        local rate_ok = bar(string.format("%s: tide ≥ %.1f× pgbench's best", k, min),
                            ratio ~= nil and ratio >= min)
        local texts = { string.format("≥ %.1f× best (%s)", min, yes(rate_ok)) }
        local met = rate_ok
        if w.p99_bar ~= false then
            local ok = bar(k .. ": p99 ≤ 2× pgbench's at the same concurrency",
                           p99_ratio ~= nil and p99_ratio <= 2)
            texts[#texts + 1] = string.format("p99 ≤ 2× (%s)", yes(ok))
            met = met and ok
        end
        texts[#texts + 1] = string.format("no pass > 20 ms (%s)",
                                          yes(bar(k .. ": no event-loop pass over 20 ms", loop_ok)))
        texts[#texts + 1] = string.format("0 non-2xx (%s)", yes(bar(k .. ": 0 non-2xx", e_ok and pg_ok)))
        met = met and loop_ok and e_ok and pg_ok
        local name = w.name
        if k == "pooler" then
            name = name .. string.format("; %s statements through tide's transaction pool",
                                         r.pooler_txn_jobs or "?")
        end
        put(string.format("| %s | %s | %s | %s | %s | %s | %s | %s%s | %s | %s | %s%s | %s | %s |",
                          name, fmt_rate(rps), fmt_ms(num(k .. "_p50_us")), fmt_ms(p99), fmt_cpu(k),
                          loop, e, fmt_rate(best),
                          r[k .. "_pg_best_clients"] and (" (-c " .. r[k .. "_pg_best_clients"] .. ")") or "",
                          fmt_ratio(ratio), fmt_ms(pg99), fmt_ratio(p99_ratio),
                          w.p99_bar == false and " (no bar)" or "", table.concat(texts, "; "),
                          met_cell(met)))
    end

    do -- 6: idle connections
        local before, after, n = num("idle_rss_before_kb"), num("idle_rss_after_kb"),
            num("idle_connections")
        local idle = num("idle_idle")
        local per = (before and after and n and n > 0) and (after - before) / n or nil
        local bad = (num("idle_non2xx") or 0) + (num("idle_failed") or 0)
        local pstatus = num("idle_prompt_status")
        local prompt_ok = pstatus ~= nil and pstatus >= 200 and pstatus <= 299
        local mem_ok = bar("idle: ≤ 4 KiB per idle connection, prompt 2xx, 0 non-2xx",
                           per ~= nil and per <= 4 and bad == 0 and prompt_ok and idle == n)
        local loop, loop_ok = loop_cell("idle")
        bar("idle: no event-loop pass over 20 ms", loop_ok)
        local text = per and string.format("%.2f KiB/idle conn (RSS %d → %d KiB, %s idle, %s dropped " ..
                                           "by tide); prompt request %.2f ms, status %s",
                                           per, before, after, r.idle_idle or "?",
                                           r.idle_dropped or "?", num("idle_prompt_ms") or -1,
                                           r.idle_prompt_status or "?")
                     or "n/a"
        put(string.format("| 6. %s idle keep-alive connections: %s | — | — | — | — | %s | %s | — | — " ..
                          "| — | — | ≤ 4 KiB/idle conn (%s); prompt 2xx; 0 non-2xx; no pass > 20 ms " ..
                          "(%s) | %s |",
                          r.idle_connections or "?", text, loop,
                          bad == 0 and "0" or string.format("%d (%s failed)", bad, r.idle_failed or "?"),
                          yes(mem_ok), yes(loop_ok), met_cell(mem_ok and loop_ok)))
    end

    -- pgbench at every client count
    local counts = {}
    for c in (r.pg_clients or ""):gmatch("%d+") do counts[#counts + 1] = tonumber(c) end
    if #counts > 0 then
        put("")
        put("pgbench at each client count (tps, p99 from its per-transaction log; the best in bold):")
        put("")
        local head, rule = { "| pgbench" }, { "|---" }
        for _, c in ipairs(counts) do head[#head + 1] = " -c " .. c; rule[#rule + 1] = "---:" end
        put(table.concat(head, " |") .. " |")
        put(table.concat(rule, "|") .. "|")
        for _, w in ipairs({ { "point", "1. point read, -M prepared, Postgres' DSN" },
                             { "list", "2. list, -M prepared" }, { "write", "3. write, -M prepared" },
                             { "vector", "4. vector, -M prepared" },
                             { "pooler", "5. point read, -M extended, the transaction pooler's DSN" } }) do
            local row = { "| " .. w[2] }
            for _, c in ipairs(counts) do row[#row + 1] = " " .. pg_cell(w[1], c) end
            put(table.concat(row, " |") .. " |")
        end
    end

    -- where the CPU goes: Postgres' share per request beside pgbench's per transaction
    put("")
    put("CPU per request (µs): tide's process; Postgres' (the postmaster, its backends and the " ..
        "children it reaped, from /proc) per tide request, and per pgbench transaction at " ..
        "pgbench's best client count; the machine's whole budget is 2 cores = 2,000,000 µs/s:")
    put("")
    put("| workload | tide | wrk | Postgres per tide request | Postgres per pgbench tx (best -c) | " ..
        "Postgres, tide / pgbench | the machine per pgbench tx | tide / best if tide cost " ..
        "nothing | tide + wrk within, for the bar |")
    put("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    local f1 = function(v) return v and string.format("%.1f", v) or "n/a" end
    for _, k in ipairs({ "point", "list", "write", "vector", "pooler" }) do
        local c = r[k .. "_pg_best_clients"]
        local tp, pp = num(k .. "_pg_cpu_us"), c and num(k .. "_pg_c" .. c .. "_pg_cpu_us")
        local rps, wc, best = num(k .. "_rps"), num(k .. "_wrk_cpu"), c and num(k .. "_pg_c" .. c .. "_tps")
        local wrk_us = (rps and wc and rps > 0) and wc * 1e4 / rps or nil   -- wc: % of one core
        local target = k == "pooler" and 0.9 or 0.8
        put(string.format("| %s | %s | %s | %s | %s%s | %s | %s | %s | %s |", k, fmt_cpu(k), f1(wrk_us),
                          f1(tp), f1(pp), c and (" (-c " .. c .. ")") or "",
                          (tp and pp and pp > 0) and string.format("%.2f", tp / pp) or "n/a",
                          f1(best and best > 0 and 2e6 / best or nil),
                          fmt_ratio((tp and wrk_us and best and best > 0)
                                    and 2e6 / (tp + wrk_us) / best or nil),
                          f1((tp and best and best > 0) and 2e6 / (target * best) - tp or nil)))
    end
    put("")
    put("The last three columns are the arithmetic of the gap: the 2 cores give 2,000,000 µs of " ..
        "CPU a second to tide, wrk, Postgres and pgbench alike. \"The machine per pgbench tx\" " ..
        "is 2,000,000 / pgbench's best rate: Postgres' share plus pgbench's own and the rest. " ..
        "\"If tide cost nothing\" is the rate Postgres' and wrk's CPU per request alone would " ..
        "allow, over pgbench's best. \"Within, for the bar\" is what tide and wrk together may " ..
        "cost per request for tide to reach the bar (0.8× pgbench's best; 0.9× through the " ..
        "pooler) with Postgres at its cost per tide request in this run: compare with the sum of " ..
        "the tide and wrk columns (wrk's CPU from its own /proc times over the run). Where they " ..
        "already fit within it, the run's gap was not CPU: writes, for one, wait for the WAL " ..
        "flush of every commit.")
end

local function base_notes()
    put("")
    put("Notes: tide serves workloads 1–4 and 6 with a routing policy that sends every call to the " ..
        "`direct` upstream (as pgbench, which connects as authenticator to the same Postgres); " ..
        "workload 5 swaps in the repository's default policy (reads through the transaction-mode " ..
        "PgBouncer) with SIGHUP, and pgbench then runs the same point-read script through the same " ..
        "PgBouncer port with -M extended (unnamed statements, as tide sends on `transaction`: " ..
        "PgBouncer 1.18 keeps no prepared statements). pgbench runs tide's own statements (the " ..
        "set_config statement read from runtime/pgconn.c, the route's statement captured from " ..
        "tide's Lua by bench/gen.lua, var/bench/gen/pgbench/); its claims parameter is built in SQL " ..
        "from the user number (`{\"sub\":…,\"role\":\"authenticated\"}`) where tide sends the " ..
        "token's whole payload (sub, role, iat, exp, aud): the same work for Postgres up to a few " ..
        "bytes. tide's rate is compared with pgbench's best over the client counts; tide's p99 with " ..
        "pgbench's at -c " .. (r.conns or "?") .. ", the requests wrk keeps in flight. Latencies: " ..
        "wrk's (HTTP, per request) and pgbench's per-transaction log (p50/p99 computed from `-l`). " ..
        "Non-2xx is wrk's \"Non-2xx or 3xx responses\" (status ≥ 400). Loop passes: the change of " ..
        "tide's /metrics histogram tide_event_loop_pass_seconds over the measured run (for 6: " ..
        "while the idle connections opened, waited and closed); the longest pass is the upper " ..
        "bound of the highest bucket that gained a pass, so an upper estimate. A pass is " ..
        "wall-clock time: \"run queue\" is the share of the measured run tide's event-loop " ..
        "thread spent runnable but waiting for a CPU (/proc/<pid>/schedstat), time the kernel " ..
        "gave to wrk, Postgres and PgBouncer on these 2 cores; the passes over 20 ms of a run " ..
        "with a large run-queue share are partly the scheduler's.")
    do -- queueing: what concurrency alone does to the latencies compared above
        local rps, tps, conns = num("point_rps"), num("point_pg_conc_tps"), num("conns")
        if rps and tps and conns and rps > 0 and tps > 0 then
            put("")
            put(string.format("At the same concurrency the latencies follow the rates: by Little's " ..
                              "law the point read's mean latency is %d / %.0f req/s = %.2f ms for " ..
                              "tide and %d / %.0f tps = %.2f ms for pgbench at -c %d.",
                              conns, rps, conns / rps * 1000, conns, tps, conns / tps * 1000, conns))
        end
    end
end

local function sweep_table()
    local sizes = {}
    for n in r.pool_sweep_sizes:gmatch("%d+") do sizes[#sizes + 1] = tonumber(n) end
    put("")
    put("## Pool sweep (BENCH_POOL_SWEEP=1)")
    put("")
    put(string.format("The point read of workload 1 (wrk -t%s -c%s, no-cache, every call to `direct`) " ..
                      "with tide's direct pool at each size, set by a rewritten " ..
                      "policies/resilience.lua and SIGHUP, smallest first.", r.threads or "?",
                      r.conns or "?"))
    put("")
    put("| direct pool size | req/s | p50 | p99 | CPU µs/req | loop passes > 20 ms | non-2xx | " ..
        "halfway: open / busy / waiting | open after the run |")
    put("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    local best, best_n, second, second_n
    for _, n in ipairs(sizes) do
        local k = "pool_" .. n
        local rps = num(k .. "_rps")
        if rps and (not best or rps > best) then
            second, second_n = best, best_n
            best, best_n = rps, n
        elseif rps and (not second or rps > second) then
            second, second_n = rps, n
        end
    end
    for _, n in ipairs(sizes) do
        local k = "pool_" .. n
        local cell = fmt_rate(num(k .. "_rps"))
        if n == best_n then cell = "**" .. cell .. "**" end
        put(string.format("| %d%s | %s | %s | %s | %s | %s | %s | %s | %s |", n,
                          r[k .. "_size"] and tonumber(r[k .. "_size"]) ~= n
                              and (" (tide: " .. r[k .. "_size"] .. ")") or "",
                          cell, fmt_ms(num(k .. "_p50_us")), fmt_ms(num(k .. "_p99_us")), fmt_cpu(k),
                          (loop_cell(k)), (errs(k)),
                          r[k .. "_mid_direct"] and r[k .. "_mid_direct"]:gsub(" ", " / ") or "?",
                          r[k .. "_open"] or "?"))
    end
    if best_n then
        local parts = { string.format("best: %d connections, %.0f req/s", best_n, best) }
        if second_n then
            parts[#parts + 1] = string.format("%+.1f%% over the next best (%d: %.0f req/s)",
                                              100 * (best / second - 1), second_n, second)
        end
        local last = sizes[#sizes]
        local lr = num("pool_" .. last .. "_rps")
        if last ~= best_n and lr and lr > 0 then
            parts[#parts + 1] = string.format("%+.1f%% over %d", 100 * (best / lr - 1), last)
        end
        put("")
        put(table.concat(parts, ", ") .. string.format(" (%s cores).", r.nproc or "?"))
    end
end

-- The median of the numbers in t (nil when there are none).
local function median(t)
    local s = {}
    for _, v in ipairs(t) do s[#s + 1] = v end
    if #s == 0 then return nil end
    table.sort(s)
    local m = math.floor((#s + 1) / 2)
    return #s % 2 == 1 and s[m] or (s[m] + s[m + 1]) / 2
end

-- The replica workloads (issue 21). The reads each server answered, from tide's pool jobs
-- (NAME_srv_*): the lag poller's rounds (NAME_srv_polls) each ran one job on the replica's pool
-- and one on direct's and are taken off both. Point reads: every job is a read. Pairs: the
-- replica's jobs are reads; the rest of the reads wrk sent (NAME_pair_reads) went to direct.
-- Returns primary, replica (counts; replica nil when tide had no replica configured).
local function reads_by_server(k, pair)
    local dj, rj, polls = num(k .. "_srv_direct_jobs"), num(k .. "_srv_replica_jobs"), num(k .. "_srv_polls") or 0
    if rj == nil then return dj, nil end
    local on_replica = math.max(0, rj - polls)
    if pair then
        local reads = num(k .. "_pair_reads")
        return reads and math.max(0, reads - on_replica), on_replica
    end
    return dj and math.max(0, dj - polls), on_replica
end

local function share_cell(p, q)
    if p == nil then return "n/a" end
    if q == nil then return string.format("%d / — (no replica: 100%% primary)", p) end
    local t = p + q
    if t == 0 then return "0 / 0" end
    return string.format("%d / %d (%.1f%% / %.1f%%)", p, q, 100 * p / t, 100 * q / t)
end

local function replica_table()
    local RUNS = {
        { key = "rep_base", name = "point read, primary-only: tide without a replica configured " ..
                                   "(as every other workload runs it), every call to `direct`" },
        { key = "rep_direct", name = "point read, tide with the replica configured and polled, " ..
                                     "every call still to `direct`" },
        { key = "rep_replica", name = "point read, every select to `replica`", bar = true },
        { key = "rep_split", name = "point read split: selects alternate `replica` / `direct`, " ..
                                    "call by call", bar = true },
        { key = "pair_direct", name = "write-then-read pair, reads to `direct`", pair = true },
        { key = "pair_replica", name = "write-then-read pair, reads to `replica`", pair = true },
    }
    local rounds = num("replica_rounds") or 0
    put("")
    put("## Read replicas (issue 21)")
    put("")
    put(string.format("The bench stack's streaming replica (port %s, reached by %s; tide's replica " ..
                      "pool %s connections) beside the primary, %d rounds of the same wrk -t%s -c%s " ..
                      "runs (each round: the primary-only read on a tide without a replica, then " ..
                      "tide restarted with it and each routing policy swapped in by SIGHUP; the " ..
                      "point runs' and the pairs' order reversed in even rounds); point reads are " ..
                      "workload 1's script (no-cache). The pair (bench/wrk/replica_pair.lua): " ..
                      "`POST /v1/search-history`, then `GET /v1/search-history?limit=1` as the same " ..
                      "user carrying the write's `Tide-LSN`. Reads answered, primary / replica: tide's " ..
                      "pool jobs over the measured run (`/health` `upstreams.*.pool.jobs`; a call the " ..
                      "replica handed to its fallback counts on `direct`) less the lag poller's rounds; " ..
                      "for the pairs, the replica's jobs and the rest of the reads wrk sent. " ..
                      "× primary-only: tide's CPU µs per request over that of the same round's " ..
                      "primary-only read. Bar: its median over the rounds ≤ 1.10 for the reads routed " ..
                      "to the replica and split: on 2 cores no speed-up is expected, the bar is the " ..
                      "routing's and the lag checks' overhead.",
                      r.replica_port or "?", r.replica_transport or "?", r.replica_pool or "?",
                      rounds, r.threads or "?", r.conns or "?"))
    put("")
    put("| round | run | req/s | p50 | p99 | tide CPU µs/req | × primary-only | Postgres CPU µs/req: " ..
        "primary / replica | reads answered: primary / replica | loop passes > 20 ms | non-2xx | met |")
    put("|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|")
    local ratios = {}
    for i = 1, rounds do
        local base_cpu = num("rep_base_" .. i .. "_cpu_us")
        for _, w in ipairs(RUNS) do
            local k = w.key .. "_" .. i
            if r[k .. "_rps"] then
                local cpu = num(k .. "_cpu_us")
                local ratio = (cpu and base_cpu and base_cpu > 0) and cpu / base_cpu or nil
                if ratio and w.key ~= "rep_base" then
                    ratios[w.key] = ratios[w.key] or {}
                    table.insert(ratios[w.key], ratio)
                end
                local e, e_ok = errs(k)
                local loop, loop_ok = loop_cell(k)
                bar(k .. ": no event-loop pass over 20 ms", loop_ok)
                bar(k .. ": 0 non-2xx", e_ok)
                local name = w.name
                if w.pair then
                    name = string.format("%s: %s writes, %s answered with `Tide-LSN`, %s reads, %s " ..
                                         "of them carrying it%s", name, r[k .. "_pair_writes"] or "?",
                                         r[k .. "_pair_lsn"] or "?", r[k .. "_pair_reads"] or "?",
                                         r[k .. "_pair_token"] or "?",
                                         (num(k .. "_pair_nouser") or 0) > 0
                                             and (", " .. r[k .. "_pair_nouser"] ..
                                                  " answers without a bench user") or "")
                end
                put(string.format("| %d | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s | %s | %s |", i,
                                  name, fmt_rate(num(k .. "_rps")), fmt_ms(num(k .. "_p50_us")),
                                  fmt_ms(num(k .. "_p99_us")), fmt_cpu(k),
                                  w.key == "rep_base" and "1" or fmt_ratio(ratio),
                                  r[k .. "_pg_cpu_us"] or "n/a", r[k .. "_replica_pg_cpu_us"] or "n/a",
                                  share_cell(reads_by_server(k, w.pair)), loop, e,
                                  met_cell(loop_ok and e_ok)))
            end
        end
    end
    put("")
    local lines = {}
    for _, w in ipairs(RUNS) do
        local t = ratios[w.key]
        if t and #t > 0 then
            local m = median(t)
            local parts = {}
            for _, v in ipairs(t) do parts[#parts + 1] = string.format("%.3f", v) end
            local text = string.format("- %s: tide CPU µs/req × primary-only, rounds %s, median " ..
                                       "**%.3f**", w.key, table.concat(parts, ", "), m)
            if w.bar then
                local ok = bar(string.format("%s: median tide CPU/req ≤ 1.10× the primary-only read's",
                                             w.key), m <= 1.10)
                text = text .. string.format(" (bar ≤ 1.10: %s)", met_cell(ok))
            end
            if w.key == "rep_direct" then
                text = text .. " (it sends no read anywhere else: its spread is this method's noise, " ..
                       "runs in turn on a shared machine)"
            end
            lines[#lines + 1] = text
        elseif w.bar then
            bar(w.key .. ": median tide CPU/req ≤ 1.10× the primary-only read's", false)
        end
    end
    do -- the pair: reads to the replica over reads to direct, round by round
        local t = {}
        for i = 1, rounds do
            local a, b = num("pair_replica_" .. i .. "_cpu_us"), num("pair_direct_" .. i .. "_cpu_us")
            if a and b and b > 0 then t[#t + 1] = a / b end
        end
        if #t > 0 then
            local parts = {}
            for _, v in ipairs(t) do parts[#parts + 1] = string.format("%.3f", v) end
            lines[#lines + 1] = string.format("- the pair, tide CPU µs/req with reads to the replica " ..
                                              "× with reads to direct: rounds %s, median %.3f (no " ..
                                              "bar: a read carrying a floor goes to the replica only " ..
                                              "if its last lag reading, every 0.25 s, had replayed " ..
                                              "it, else to the primary at once; docs/replicas.md)",
                                              table.concat(parts, ", "), median(t))
        end
    end
    do -- BENCH_PROFILE=1: the replica's own functions' share of tide's samples
        local parts = {}
        for i = 1, rounds do
            for _, w in ipairs(RUNS) do
                local k = w.key .. "_" .. i
                if r[k .. "_prof_replica"] then parts[#parts + 1] = k .. " " .. r[k .. "_prof_replica"] .. "%" end
            end
        end
        if #parts > 0 then
            lines[#lines + 1] = "- the replica's own functions (tide_lsn_*, tide_lag_*, tide_replica_*: " ..
                                "the callers' write positions, the lag, the replica's state), share of " ..
                                "tide's perf samples: " .. table.concat(parts, ", ")
        end
    end
    do -- how much each pool's reads were batched: jobs sent behind another on a busy connection
        local parts = {}
        for i = 1, rounds do
            for _, w in ipairs(RUNS) do
                local k = w.key .. "_" .. i
                local dp, rp = num(k .. "_srv_direct_pipelined"), num(k .. "_srv_replica_pipelined")
                local dj, rj = num(k .. "_srv_direct_jobs"), num(k .. "_srv_replica_jobs")
                local function share(p, j)
                    return (p and j and j > 100) and string.format("%.0f%%", 100 * p / j) or "—"
                end
                if dp then
                    parts[#parts + 1] = string.format("%s %s / %s", k, share(dp, dj),
                                                      rp and share(rp, rj) or "—")
                end
            end
        end
        if #parts > 0 then
            lines[#lines + 1] = "- jobs pipelined behind another on a busy connection (`/health` " ..
                                "`pool.pipelined`), share of each pool's jobs, direct / replica: " ..
                                table.concat(parts, ", ")
        end
    end
    lines[#lines + 1] = string.format("- the replica's lag exclusions (`/health`, the last round's " ..
                                      "tide): %s", r.replica_excluded or "?")
    for _, l in ipairs(lines) do put(l) end
    -- Postgres' own count beside tide's
    local parts = {}
    for i = 1, rounds do
        for _, w in ipairs(RUNS) do
            local k = w.key .. "_" .. i
            local px, rx = num(k .. "_srv_primary_xacts"), num(k .. "_srv_replica_xacts")
            if px and rx then
                parts[#parts + 1] = string.format("%s %d / %d (replica %.1f%%)", k, px, rx,
                                                  px + rx > 0 and 100 * rx / (px + rx) or 0)
            end
        end
    end
    if #parts > 0 then
        put("")
        put("Postgres' own count over the same runs, transactions committed or rolled back in the " ..
            "bench database (`pg_stat_database`, read on each server), primary / replica: " ..
            table.concat(parts, ", ") .. ". A point read is one transaction (`rep_direct`'s count " ..
            "beside its jobs); a write is more than one, so the pairs' counts are not reads. tide's " ..
            "lag poller adds about 4 a second on each server. Backends report these counts at " ..
            "most once a second while busy, and what an idle backend has not reported yet comes " ..
            "10 s later, in the next run's window: each figure can be off by up to a second of " ..
            "load; tide's pool jobs (the table) are exact.")
    end
end

-- The result cache (issue 9): workloads 7-11, and 12 (issue 11's workers).
local XC = { "hit", "stale", "miss", "bypass", "other", "none" }

-- "hit 1234, miss 5" from the X-Cache counts wrk saw (prefix_xc_*), zeros left out.
local function xc_text(prefix)
    local parts = {}
    for _, v in ipairs(XC) do
        local n = num(prefix .. "_xc_" .. v)
        if n and n > 0 then parts[#parts + 1] = v .. " " .. n end
    end
    return #parts > 0 and table.concat(parts, ", ") or "n/a"
end

-- Answers served from the cache (HIT and STALE) over the answers that went through it.
local function ratio_of(hit, stale, miss)
    if not (hit and miss) then return nil end
    local total = hit + (stale or 0) + miss
    return total > 0 and (hit + (stale or 0)) / total or nil
end
local function pct(v) return v and string.format("%.1f%%", 100 * v) or "n/a" end

local function hit_ratios(prefix)
    local w = ratio_of(num(prefix .. "_xc_hit"), num(prefix .. "_xc_stale"), num(prefix .. "_xc_miss"))
    local t = ratio_of(num(prefix .. "_stats_hits"), num(prefix .. "_stats_stale"),
                       num(prefix .. "_stats_misses"))
    return pct(w) .. " / " .. pct(t), w
end

-- Workload 12's figures for the run of c workers: wrk's cores (w), the cores left to tide
-- (a = min(c, cores - w)) and the rate per core available (q = rate / a); nil when unmeasured.
local function worker_share(c)
    local k = "workers_" .. c
    local rate, wrk, cores = num(k .. "_rps"), num(k .. "_wrk_cpu"), num("nproc")
    if not (rate and wrk and cores) then return nil end
    local w = wrk / 100
    local a = math.min(c, cores - w)
    return { rate = rate, w = w, a = a, q = a > 0 and rate / a or nil }
end

-- Workload 12's scaling of c workers over b (the smallest count): the rates' ratio, and with
-- the load generator's share of the cores accounted for, (c * q_c) / (b * q_b): the ratio of
-- the rates each count would reach on cores of its own at the rate per available core it
-- showed (2 for perfect scaling from 1 to 2 workers).
local function worker_scaling(b, c)
    local sb, sc = worker_share(b), worker_share(c)
    local raw = (sb and sc and sb.rate > 0) and sc.rate / sb.rate or nil
    local acc = (sb and sc and sb.q and sc.q and sb.q > 0) and (c * sc.q) / (b * sb.q) or nil
    return raw, acc, sb, sc
end

local function cache_table()
    local n = r.cache_ids or "?"
    put("")
    put(cache and "## The result cache (issue 9)" or "## Workers (issue 11)")
    put("")
    if not cache then goto header end
    put(string.format("- trip set: %s trips (ids 1000001–%s), each read with its owner's token; " ..
                      "policies/cache.lua caches `GET /v1/trips/:id` per caller and " ..
                      "`GET /v1/destinations/popular` for everyone", n,
                      tonumber(n) and tostring(1000000 + tonumber(n)) or "?"))
    put(string.format("- fill pass before workload 7 (curl, every trip once): X-Cache %s in %s s; " ..
                      "then %s of %s trips read one by one answered X-Cache: HIT (%s with Age, %s " ..
                      "with ETag)", xc_text("fill"), r.fill_s or "?", r.warm_check_hits or "?",
                      r.warm_check_n or "?", r.warm_check_age or "?", r.warm_check_etag or "?"))
    put(string.format("- before workload 11 the set is filled again (X-Cache %s)", xc_text("refill")))
    ::header::
    if workers then
        local parts = {}
        for _, c in ipairs(wcounts) do
            local passes = num("workers_" .. c .. "_fill_passes") or 1
            parts[#parts + 1] = string.format("%d worker%s: %d pass%s in %s s (the first: X-Cache %s), " ..
                                              "then cache entries %s",
                                              c, c == 1 and "" or "s", passes, passes == 1 and "" or "es",
                                              r["workers_" .. c .. "_fill_s"] or "?",
                                              xc_text("workers_" .. c .. "_fill"),
                                              (r["workers_" .. c .. "_fill_entries"] or "?"):gsub(" ", " / "))
        end
        put("- workload 12: tide started again for each worker count (TIDE_WORKERS), every worker's " ..
            "cache flushed, then fill passes over the set (" .. table.concat(parts, "; ") .. "): each " ..
            "worker has a cache of its own and a pass's trip lands in the one worker that got its " ..
            "connection, so passes are repeated (at most 4) until the workers hold 15/16 of the set " ..
            "each on average, and wrk's warm-up reads in the rest")
    end
    put("")
    put("| workload | req/s | p50 | p99 | CPU µs/req | loop passes > 20 ms | non-2xx | X-Cache seen " ..
        "by wrk | served from cache (wrk / tide's stats) | ratio | bars | met |")
    put("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---|")

    local function row(name, k, hits, ratio, bar_text, met, loop)
        put(string.format("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", name,
                          fmt_rate(num(k .. "_rps")), fmt_ms(num(k .. "_p50_us")),
                          fmt_ms(num(k .. "_p99_us")), fmt_cpu(k), loop or (loop_cell(k)),
                          (errs(k)), xc_text(k), hits, ratio, bar_text,
                          met == nil and "—" or met_cell(met)))
    end
    -- the loop bar of a tide workload: (text, met)
    local function loop_bar(k)
        local _, ok = loop_cell(k)
        bar(k .. ": no event-loop pass over 20 ms", ok)
        return string.format("no pass > 20 ms (%s)", yes(ok)), ok
    end

    if not cache then goto row12 end
    do -- 7, with its bars
        local rps, unc, ors = num("cache_hit_rps"), num("cache_nocache_rps"), num("openresty_rps")
        -- the p99 bar is read on workload 7b (wrk -t1) when it ran: with -t2 wrk's two threads,
        -- tide and the machine's other work share two cores, and no server meets it (OpenResty's
        -- p99 is printed beside it)
        local p99_t2 = num("cache_hit_p99_us")
        local p99 = num("cache_hit_t1_p99_us") or p99_t2
        local vs_unc = (rps and unc and unc > 0) and rps / unc or nil
        local vs_or = (rps and ors and ors > 0) and rps / ors or nil
        local _, e_ok = errs("cache_hit")
        local _, u_ok = errs("cache_nocache")
        local _, o_ok = errs("openresty")
        local ok_unc = bar("cache_hit: ≥ 5× uncached", vs_unc ~= nil and vs_unc >= 5)
        local ok_or = bar("cache_hit: ≥ 0.7× OpenResty", vs_or ~= nil and vs_or >= 0.7)
        local ok_p99 = bar("cache_hit: p99 ≤ 2 ms", p99 ~= nil and p99 <= 2000)
        local ok_e = bar("cache_hit: 0 non-2xx in 7-9", e_ok and u_ok and o_ok)
        local lt, l_ok = loop_bar("cache_hit")
        local hits = hit_ratios("cache_hit")
        row("7. point read, warm cache `GET /v1/trips/:id`", "cache_hit", hits,
            string.format("%s× uncached, %s× OpenResty",
                          vs_unc and string.format("%.2f", vs_unc) or "n/a",
                          vs_or and string.format("%.2f", vs_or) or "n/a"),
            string.format("≥ 5× uncached (%s); ≥ 0.7× OpenResty (%s); p99 ≤ 2 ms (%s: %s " ..
                          "with wrk -t1 (7b), %s with -t2; OpenResty's p99 with -t2: %s); " ..
                          "0 non-2xx in 7-9 (%s); %s", yes(ok_unc), yes(ok_or), yes(ok_p99),
                          fmt_ms(num("cache_hit_t1_p99_us")), fmt_ms(p99_t2),
                          fmt_ms(num("openresty_p99_us")), yes(ok_e), lt),
            ok_unc and ok_or and ok_p99 and ok_e and l_ok)
    end
    if num("cache_hit_t1_rps") then -- 7b
        local _, e_ok = errs("cache_hit_t1")
        row("7b. the same warm reads with wrk -t1 -c64 (one core left to tide)", "cache_hit_t1",
            (hit_ratios("cache_hit_t1")), "—", "the p99 bar of 7", e_ok)
    end
    do -- 8
        local lt, l_ok = loop_bar("cache_nocache")
        row("8. the same, uncached (`Cache-Control: no-cache`)", "cache_nocache",
            (hit_ratios("cache_nocache")), "—", "reference for 7; " .. lt, l_ok)
    end
    row("9. OpenResty baseline (nginx + lua-nginx-module, 1 worker, lua_shared_dict, no JWT check; " ..
        "CPU: the worker's)", "openresty", "—", "—", "reference for 7 (an upper bound)", nil,
        r.openresty_runq_pct and ("— (run queue " .. r.openresty_runq_pct .. "%)") or "—")
    do -- 10
        local _, e_ok = errs("cache_popular")
        bar("cache_popular: 0 non-2xx", e_ok)
        local lt, l_ok = loop_bar("cache_popular")
        row("10. `GET /v1/destinations/popular`, warm", "cache_popular",
            (hit_ratios("cache_popular")), "—",
            string.format("report rate and p99; 0 non-2xx (%s); %s", yes(e_ok), lt), e_ok and l_ok)
    end
    do -- 11
        local _, e_ok = errs("cache_mix")
        local bad, checked = num("mix_mismatch"), num("mix_checked")
        bar("cache_mix: 0 non-2xx", e_ok)
        local fresh_ok = bar("cache_mix: no stale answer after the mix", bad == 0)
        local lt, l_ok = loop_bar("cache_mix")
        local by = {}
        for k, v in pairs(r) do
            local x = k:match("^mix_mismatch_(.+)$")
            if x then by[#by + 1] = x .. " " .. v end
        end
        table.sort(by)
        row(string.format("11. mix: %s%% `GET` / %s%% `PATCH /v1/trips/:id` (sent: %s reads, " ..
                          "%s writes)", 100 - (num("write_pct") or 10), num("write_pct") or 10,
                          r.cache_mix_xc_reads or "?", r.cache_mix_xc_writes or "?"),
            "cache_mix", (hit_ratios("cache_mix")), "—",
            string.format("report rate, p99 and hit ratio (≤ ~%.0f%% possible); 0 non-2xx (%s); " ..
                          "afterwards no trip answered from the cache differs from its row " ..
                          "(%s of %s differ%s: %s); %s", 100 - (num("write_pct") or 10), yes(e_ok),
                          r.mix_mismatch or "?", checked or "?",
                          #by > 0 and (": X-Cache " .. table.concat(by, ", ")) or "", yes(fresh_ok), lt),
            e_ok and fresh_ok and l_ok)
    end
    ::row12::
    if workers then -- 12: warm cache hits with each worker count (issue 11)
        local b = wcounts[1]
        for _, c in ipairs(wcounts) do
            local k = "workers_" .. c
            local _, e_ok = errs(k)
            local share = worker_share(c)
            local name = string.format("12. warm cache hits (workload 7's script), %d worker%s%s", c,
                                       c == 1 and "" or "s",
                                       share and string.format("; wrk took %.2f of the %s cores, " ..
                                                               "%.2f left to tide", share.w,
                                                               r.nproc or "?", share.a) or "")
            if c == b then
                bar(k .. ": 0 non-2xx", e_ok)
                row(name, k, (hit_ratios(k)), "—",
                    string.format("reference for the other counts; 0 non-2xx (%s)", yes(e_ok)), e_ok)
            else
                local raw, acc = worker_scaling(b, c)
                local texts, met = {}, e_ok
                if b == 1 and c == 2 then
                    local ok = bar("workers: 2 workers ≥ 1.6× 1 worker (the load generator's share " ..
                                   "of the cores accounted for)", acc ~= nil and acc >= 1.6)
                    texts[#texts + 1] = string.format("≥ 1.6× 1 worker with wrk's share of the " ..
                                                      "cores accounted for (%s)", yes(ok))
                    met = met and ok
                end
                bar(k .. ": 0 non-2xx", e_ok)
                texts[#texts + 1] = string.format("0 non-2xx (%s)", yes(e_ok))
                row(name, k, (hit_ratios(k)),
                    string.format("%s× %d worker%s; %s× with wrk's share accounted for",
                                  fmt_ratio(raw), b, b == 1 and "" or "s", fmt_ratio(acc)),
                    table.concat(texts, "; "), met)
            end
        end
    end
end

local function cache_notes()
    local lines = {}
    for _, k in ipairs({ "cache_hit", "cache_nocache", "cache_popular", "cache_mix" }) do
        if r[k .. "_stats_hits"] then
            local parts = {}
            for _, f in ipairs({ "hits", "stale", "misses", "bypass", "coalesced", "raced",
                                 "evictions", "entries" }) do
                parts[#parts + 1] = f .. " " .. (r[k .. "_stats_" .. f] or "?")
            end
            lines[#lines + 1] = "- " .. k .. ": " .. table.concat(parts, ", ")
        end
    end
    if #lines > 0 then
        put("")
        put("tide's /admin/stats cache counters over each measured run (changes; entries: at the end):")
        put("")
        for _, l in ipairs(lines) do put(l) end
    end
    put("")
    put("Notes on the cache workloads: 7, 8 and 9 run the same wrk script (bench/wrk/cache_point.lua) " ..
        "over the same trips; it counts the X-Cache header of every answer in a response() " ..
        "callback, which costs wrk CPU on this 2-core machine shared by wrk and the server, so the " ..
        "rates compare with each other, not with workload 1. \"Served from cache\" is " ..
        "(HIT + STALE) / (HIT + STALE + MISS), from wrk's counts and from the deltas of tide's " ..
        "/admin/stats cache counters over the measured run (n/a when tide has none). The OpenResty " ..
        "baseline answers the bytes tide returned for each trip (checked) without a token check, " ..
        "a per-user key or a TTL. In the mix a read misses when the last request for its trip was " ..
        "a write, so about " .. (num("write_pct") or 10) .. "% of reads must miss; bench/run.sh " ..
        "puts the trips' notes back afterwards. The cache is flushed (POST /admin/cache/flush) " ..
        "before each fill pass, so its entries are about " .. (num("warmup") or 0) + (num("duration") or 0) ..
        " s old by the end of workloads 7 and 11 (a trip's ttl is 30 s).")
end

-- Workload 12: each count's accounting of the cores, the workers' shares, the formula.
local function workers_notes()
    local b = wcounts[1]
    local function f2(v) return v and string.format("%.2f", v) or "?" end
    put("")
    put("Workload 12, the cores (all figures over the measured run; cores = CPU-seconds per second):")
    put("")
    for _, c in ipairs(wcounts) do
        local k = "workers_" .. c
        local sh = worker_share(c)
        local tide, host = num(k .. "_tide_cpu"), num(k .. "_host_cpu")
        local other = (tide and host and sh) and (host / 100 - tide / 100 - sh.w) or nil
        local others = {}
        for name, share in (r[k .. "_others"] or ""):gmatch("([^ ]+):(%d+)") do
            others[#others + 1] = string.format("%s %.2f", name, tonumber(share) / 100)
        end
        local line = string.format("- %d worker%s: %s req/s; wrk %s cores, tide %s, everything else " ..
                                   "%s%s (the machine busy %s of %s); cores left to tide a = min(%d, " ..
                                   "%s − %s) = %s; rate per core available q = %s; CPU %s µs/req; " ..
                                   "run queue %s%%",
                                   c, c == 1 and "" or "s", fmt_rate(num(k .. "_rps")), f2(sh and sh.w),
                                   f2(tide and tide / 100), f2(other),
                                   #others > 0 and (", the most: " .. table.concat(others, ", ")) or "",
                                   f2(host and host / 100),
                                   r.nproc or "?", c, r.nproc or "?", f2(sh and sh.w), f2(sh and sh.a),
                                   fmt_rate(sh and sh.q), fmt_cpu(k),
                                   (r[k .. "_runq_pct"] or "") ~= "" and r[k .. "_runq_pct"] or "?")
        local reqs, conns, cpu = r[k .. "_worker_requests"], r[k .. "_worker_conns"], r[k .. "_worker_cpu"]
        if reqs then
            local total, shares = 0, {}
            for n in reqs:gmatch("%d+") do total = total + tonumber(n) end
            for n in reqs:gmatch("%d+") do
                shares[#shares + 1] = total > 0 and string.format("%.0f%%", 100 * tonumber(n) / total) or "?"
            end
            line = line .. string.format("; per worker (worker 0 first): requests %s (%s), " ..
                                         "connections accepted %s, CPU %s%% of a core",
                                         reqs:gsub(" ", " / "), table.concat(shares, " / "),
                                         (conns or "?"):gsub(" ", " / "), (cpu or "?"):gsub(" ", "%% / "))
        end
        put(line)
    end
    local last = wcounts[#wcounts]
    if last == b then return end
    local raw, acc, sb, sc = worker_scaling(b, last)
    local cb, cl = num("workers_" .. b .. "_cpu_us"), num("workers_" .. last .. "_cpu_us")
    put("")
    put(string.format(
        "How the scaling is accounted for: wrk runs on the same %s cores as tide, so more workers " ..
        "cannot get more cores than wrk leaves them. wrk's cores w are its user + system time over " ..
        "the measured run (cutime + cstime in /proc/<pid>/stat of the shell that ran it, once wrk " ..
        "has exited); the cores left to tide are a = min(N, cores − w) (N event loops use at most " ..
        "N cores); the rate per core-second available to tide is q = rate / a; and the scaling with " ..
        "the load generator's share accounted for is S = (%d · q_%d) / (%d · q_%d): the ratio of " ..
        "the rates the two counts would reach with %d and %d cores of their own, each at the rate " ..
        "per available core it showed here. Perfect scaling gives S = %d; the bar (2 workers over " ..
        "1) is S ≥ 1.6. Here q_%d / q_%d = %s (the rate per available core %d workers kept) and S = %s. " ..
        "The rates' own ratio, %s, is capped by the cores: even perfect scaling would give at most " ..
        "a_%d / a_%d = %s on this machine. S is a projection: it assumes the rate per core holds " ..
        "on cores of one's own; other processes' CPU (\"everything else\" above) is not " ..
        "subtracted; and a count whose event " ..
        "loops idled part of their cores (tide's CPU below a: wrk, not tide, set the pace) gets a " ..
        "lower q, which makes S too high when that is the smaller count and too low when it is " ..
        "the larger. A cross-check from tide's CPU per request alone (what it costs, not what " ..
        "cores it got): %d · %s / (%d · %s) = %s.",
        r.nproc or "?", last, last, b, b, b, last, last / b, last, b,
        fmt_ratio(sc and sb and sb.q and sc.q and sc.q / sb.q),
        last, fmt_ratio(acc), fmt_ratio(raw), last, b,
        fmt_ratio(sb and sc and sb.a > 0 and sc.a / sb.a), last, cb and string.format("%.1f", cb) or "?",
        b, cl and string.format("%.1f", cl) or "?",
        fmt_ratio(cb and cl and cl > 0 and (last * cb) / (b * cl))))
    if r["workers_" .. last .. "_prof_dso"] then
        put("")
        put(string.format("The profile of one worker (worker 0) of %d, and of the single worker, are " ..
                          "under Profiles (workers_%d, workers_%d).", last, last, b))
    end
end

-- Loop passes over 20 ms during the warm-ups (not a bar: the warm-up opens the pools).
local function warmup_notes()
    local parts = {}
    local keys = { "point", "list", "write", "vector", "pooler", "cache_nocache", "cache_hit",
                   "cache_popular", "cache_mix" }
    for _, c in ipairs(wcounts) do keys[#keys + 1] = "workers_" .. c end
    for _, k in ipairs(keys) do
        local over, logged = num(k .. "_warm_loop_over20"), r[k .. "_warm_slow_passes"]
        if over and over > 0 then
            parts[#parts + 1] = string.format("%s %d%s", k, over,
                                              logged and (" (tide logged " .. logged:gsub(" ", ", ") ..
                                                          " ms)") or "")
        end
    end
    if #parts > 0 then
        put("")
        put("Event-loop passes over 20 ms during the warm-ups (not counted above): " ..
            table.concat(parts, ", ") .. ".")
    end
end

-- Workload 13: what script budgets cost. Both builds serve at once in every round; the run of
-- build v (base, cur) in round i on workload w (point, hit) is budgets_<v>_<i>_<w>, and each
-- round's ratio sets the two runs of that round side by side.
local BUDGET_BAR = 1.03

-- CPU µs per request of run k: from its clock ticks and requests when recorded (exact), else
-- run.sh's rounded figure.
local function cpu_per_req(k)
    local t, n, hz = num(k .. "_ticks"), num(k .. "_requests"), num("clk_tck")
    if t and n and hz and n > 0 then return t * 1e6 / hz / n end
    return num(k .. "_cpu_us")
end

local function budgets_table()
    local rounds = num("budgets_rounds") or 0
    local function f2(v) return v and string.format("%.2f", v) or "n/a" end
    local function rel(v) return v and string.format("%.3f (%+.1f%%)", v, 100 * (v - 1)) or "n/a" end
    -- the median against the bar: one more digit, so a median just over 1.03 does not print as it
    local function rel4(v) return v and string.format("%.4f (%+.2f%%)", v, 100 * (v - 1)) or "n/a" end
    local perf = r.budgets_perf_stat == "1"
    local ev = r.budgets_perf_event or "instructions"
    put("")
    put("## Script budgets: what they cost (workload 13)")
    put("")
    put(string.format("Two builds of tide serve **at the same time** on the same stack, bundle and nice, " ..
                      "each on its own ports under its own `wrk -t1 -c%s`, the two wrk runs started " ..
                      "together: the **baseline** %s (%s; LuaJIT %s: tide as it was before budgets) " ..
                      "and the **current** build %s (CFLAGS %s; LuaJIT %s: every run of Lua timed, " ..
                      "the CPU tick - a timer on the event-loop thread's own CPU clock that signals " ..
                      "that thread every 5 ms of CPU it uses -, the counting allocator, and the hook " ..
                      "check in every compiled loop). %d rounds of %s s on the point read (workload " ..
                      "1's script: no-cache, every call to `direct`), then, both caches flushed and " ..
                      "filled, on warm cache hits (workload 7's script); both tides started afresh " ..
                      "for each round, their ports swapped every round. Threads of the serving " ..
                      "process once it serves: baseline %s, current %s. The figure that counts is " ..
                      "each worker's CPU µs per request (/proc utime + stime of the process that " ..
                      "serves, /admin/stats `pid`, over the measured run / the requests its wrk " ..
                      "completed); the rate does not give it on this machine, where wrk, Postgres " ..
                      "and both tides share 2 cores. Run in turn, one binary's CPU per request moved " ..
                      "17-44 %% between rounds here; served at once, both builds see the same noise. " ..
                      "The bar is on the median of the rounds' ratios current / baseline: ≤ %.2f on " ..
                      "both workloads.",
                      r.budgets_conns or "?", r.budgets_base_bin or "?", r.budgets_base_cflags or "?",
                      r.budgets_base_luajit or "?", r.budgets_cur_bin or "?",
                      r.budgets_cur_cflags or "?", r.budgets_cur_luajit or "?", rounds,
                      r.duration or "?", r.budgets_base_1_threads or "?",
                      r.budgets_cur_1_threads or "?", BUDGET_BAR))
    put("")
    put("| workload | round | port baseline / current | baseline req/s | baseline CPU µs/req | " ..
        "current req/s | current CPU µs/req | CPU/req current / baseline | req/s current / baseline" ..
        (perf and (" | " .. ev .. "/req baseline | " .. ev .. "/req current") or "") ..
        " | non-2xx (baseline / current) | served from cache (wrk; baseline / current) |")
    put("|---|---:|---:|---:|---:|---:|---:|---:|---:|" .. (perf and "---:|---:|" or "") .. "---:|---:|")
    local summary = {}
    local min_ticks, parent_ticks = nil, 0
    for _, w in ipairs({ { "point", "point read `GET /v1/trips/:id` (no-cache)" },
                         { "hit", "warm cache hit `GET /v1/trips/:id`" } }) do
        local cpu = { base = {}, cur = {} }
        local rps = { base = {}, cur = {} }
        local ins = { base = {}, cur = {} }
        local ratios, rratios, errs_ok = {}, {}, true
        local prof = { guard = {}, clock = {}, tick = {}, base_guard = {}, base_clock = {}, base_tick = {} }
        for i = 1, rounds do
            local kb, kc = "budgets_base_" .. i .. "_" .. w[1], "budgets_cur_" .. i .. "_" .. w[1]
            local cb, cc = cpu_per_req(kb), cpu_per_req(kc)
            local rb, rc = num(kb .. "_rps"), num(kc .. "_rps")
            local ib, ic = num(kb .. "_perf_per_req"), num(kc .. "_perf_per_req")
            cpu.base[#cpu.base + 1], cpu.cur[#cpu.cur + 1] = cb, cc
            rps.base[#rps.base + 1], rps.cur[#rps.cur + 1] = rb, rc
            ins.base[#ins.base + 1], ins.cur[#ins.cur + 1] = ib, ic
            for _, k in ipairs({ kb, kc }) do
                local t = num(k .. "_ticks")
                if t then min_ticks = math.min(min_ticks or t, t) end
                parent_ticks = parent_ticks + (num(k .. "_parent_ticks") or 0)
            end
            if num(kc .. "_prof_guard") then
                for _, f in ipairs({ "guard", "clock", "tick" }) do
                    prof[f][#prof[f] + 1] = num(kc .. "_prof_" .. f)
                    prof["base_" .. f][#prof["base_" .. f] + 1] = num(kb .. "_prof_" .. f)
                end
            end
            local ratio = (cb and cc and cb > 0) and cc / cb or nil
            local rratio = (rb and rc and rb > 0) and rc / rb or nil
            ratios[#ratios + 1], rratios[#rratios + 1] = ratio, rratio
            local eb, ebok = errs(kb)
            local ec, ecok = errs(kc)
            errs_ok = errs_ok and ebok and ecok
            local cache_cell = "—"
            if w[1] == "hit" then
                cache_cell = select(1, hit_ratios(kb)):match("^[^ ]+") .. " / " ..
                             select(1, hit_ratios(kc)):match("^[^ ]+")
            end
            put(string.format("| %s | %d | %s / %s | %s | %s | %s | %s | %s | %s |%s %s / %s | %s |", w[2], i,
                              r[kb .. "_port"] or "?", r[kc .. "_port"] or "?",
                              fmt_rate(rb), f2(cb), fmt_rate(rc), f2(cc), rel(ratio), rel(rratio),
                              perf and string.format(" %s | %s |", fmt_rate(ib), fmt_rate(ic)) or "",
                              eb, ec, cache_cell))
        end
        local mr, mrr = median(ratios), median(rratios)
        local mb, mc = median(cpu.base), median(cpu.cur)
        local ib, ic = median(ins.base), median(ins.cur)
        put(string.format("| **%s** | median of %d | — | %s | %s | %s | %s | **%s** | %s |%s — | — |", w[2],
                          #ratios, fmt_rate(median(rps.base)), f2(mb), fmt_rate(median(rps.cur)),
                          f2(mc), rel4(mr), rel(mrr),
                          perf and string.format(" %s | %s |", fmt_rate(ib), fmt_rate(ic)) or ""))
        -- the spread of the rounds' ratios (what the method resolves) and of the baseline's own
        -- CPU per request over the rounds (the machine's noise, which the ratio cancels)
        local lo, hi, rlo, rhi
        for _, v in pairs(cpu.base) do lo, hi = math.min(lo or v, v), math.max(hi or v, v) end
        for _, v in pairs(ratios) do rlo, rhi = math.min(rlo or v, v), math.max(rhi or v, v) end
        local above = 0
        for _, v in pairs(ratios) do if v > 1 then above = above + 1 end end
        local ok = bar(string.format("budgets %s: CPU/req current ≤ %.2f× baseline (median of rounds)",
                                     w[1], BUDGET_BAR), #ratios == rounds and mr ~= nil and mr <= BUDGET_BAR)
        bar("budgets " .. w[1] .. ": 0 non-2xx", errs_ok)
        summary[#summary + 1] = string.format(
            "- %s: CPU per request current / baseline, the median of %d rounds' ratios: %s " ..
            "(≤ %.2f: %s); the rounds' ratios %s, the current build above the baseline in %d of " ..
            "%d; the baseline's own CPU per request spread %s over the rounds; req/s current / " ..
            "baseline %s (medians %s / %s)%s",
            w[2], #ratios, rel4(mr), BUDGET_BAR, met_cell(ok),
            (rlo and rhi) and string.format("%.3f to %.3f", rlo, rhi) or "n/a", above, #ratios,
            (lo and hi and lo > 0) and string.format("%.1f%% (%.2f to %.2f µs)", 100 * (hi / lo - 1), lo, hi) or "n/a",
            rel(mrr), fmt_rate(median(rps.cur)), fmt_rate(median(rps.base)),
            (perf and ib and ic and ib > 0) and string.format("; %s per request current / baseline %s",
                                                             ev, rel(ic / ib)) or "")
        if #prof.guard > 0 then
            local g, c, t = median(prof.guard), median(prof.clock), median(prof.tick)
            local bg = median(prof.base_guard) or 0
            local bc, bt = median(prof.base_clock) or 0, median(prof.base_tick) or 0
            local total = math.max(0, g - bg) + math.max(0, c - bc) + math.max(0, t - bt)
            summary[#summary] = summary[#summary] .. string.format(
                "; in the current build's profiles (BENCH_PROFILE=1, medians of %d rounds, %% of " ..
                "the worker's samples) the budgets' own code is %.2f%% (guard.c: the counting " ..
                "allocator, a run's enter and leave, the tick's handler; the baseline's empty " ..
                "stubs: %.2f%%), the tick's kernel and libc side (timer, signal delivery and " ..
                "return) %.2f%% (the baseline's: %.2f%%), clock_gettime %.2f%% (the baseline's: " ..
                "%.2f%%): a direct cost of about %.1f%% over the baseline",
                #prof.guard, g, bg, t, bt, c, bc, total)
        end
    end
    put("")
    for _, l in ipairs(summary) do put(l) end
    put("")
    put("CPU is counted in clock ticks (1/" .. (r.clk_tck or "?") .. " s) of the serving process, " ..
        "all its threads included (the budgets start none: until the CPU tick replaced it, a " ..
        "watchdog thread woke every 5 ms, and the point read's 6-7 % more CPU per request that " ..
        "this workload measured then came from the kernel's and glibc's multi-threaded paths a " ..
        "second thread turns on - more scheduling and fd reference counting in the kernel, glibc's " ..
        "single-thread fast paths lost - not from the thread's own work)" ..
        (min_ticks and string.format("; the fewest ticks in one measured run were %d, so a tick " ..
                                     "is at most %.2f%% of a run's CPU", min_ticks, 100 / min_ticks) or "") ..
        string.format(". The supervising parents (not counted) used %d ticks over all the " ..
                      "measured runs together. ", parent_ticks) ..
        "The profile's shares (with BENCH_PROFILE=1, perf on both workers at once, which " ..
        "adds its own load to both) count only the budgets' own code and the tick, not the hook " ..
        "check inside JIT-compiled loops." ..
        (perf and "" or (" No " .. ev .. " per request: perf stat cannot count " .. ev .. " on " ..
                         "this machine (it answers `<not supported>`: no hardware counters). " ..
                         "BENCH_PROFILE=1 adds a perf profile (cpu-clock samples) of every run.")))
end

local function profiles()
    local keys = {}
    for _, k in ipairs({ "point", "list", "write", "vector", "pooler", "cache_nocache", "cache_hit",
                         "cache_popular", "cache_mix" }) do
        if r[k .. "_prof_dso"] then keys[#keys + 1] = k end
    end
    for i = 1, num("replica_rounds") or 0 do
        for _, w in ipairs({ "rep_base", "rep_direct", "rep_replica", "rep_split", "pair_direct",
                             "pair_replica" }) do
            if r[w .. "_" .. i .. "_prof_dso"] then keys[#keys + 1] = w .. "_" .. i end
        end
    end
    for _, c in ipairs(wcounts) do
        if r["workers_" .. c .. "_prof_dso"] then keys[#keys + 1] = "workers_" .. c end
    end
    for i = 1, num("budgets_rounds") or 0 do
        for _, v in ipairs({ "base", "cur" }) do
            for _, w in ipairs({ "point", "hit" }) do
                local k = string.format("budgets_%s_%d_%s", v, i, w)
                if r[k .. "_prof_dso"] then keys[#keys + 1] = k end
            end
        end
    end
    if #keys == 0 then return end
    put("")
    put("## Profiles (BENCH_PROFILE=1)")
    put("")
    put("perf record -F 499 -g on tide during each measured run; self time. By DSO: kernel " ..
        "([kernel.*]), tide (its binary), libc (libc, libm, ld.so), luajit (libluajit and " ..
        "JIT-compiled traces, which perf sees as [unknown] or [JIT]), libpq, other (libev, " ..
        "libcrypto, jansson, lua-cjson, http-parser, ...).")
    for _, k in ipairs(keys) do
        put("")
        local c = tonumber(k:match("^workers_(%d+)$"))
        put(string.format("- **%s**%s (%s samples, %s µs CPU/req): %s", k,
                          c and (c > 1 and string.format(" (worker 0 of %d)", c) or " (one process)") or "",
                          r[k .. "_prof_samples"] or "?", fmt_cpu(k), r[k .. "_prof_dso"]))
        put("  top 10 symbols: " .. (r[k .. "_prof_top"] or "n/a"))
    end
end

if base then base_table() end
if sweep then sweep_table() end
if cache or workers then cache_table() end
if budgets then budgets_table() end
if replica then replica_table() end
do
    local unmet = {}
    for _, b in ipairs(bars) do
        if not b.met then unmet[#unmet + 1] = b.what end
    end
    put("")
    put(string.format("All bars met: %s%s. Whole run: %s s.", #unmet == 0 and "yes" or "**no**",
                      #unmet > 0 and (" (not met: " .. table.concat(unmet, "; ") .. ")") or "",
                      r.elapsed or "?"))
end
if base then base_notes() end
if cache then cache_notes() end
if workers then workers_notes() end
warmup_notes()
profiles()
io.write(table.concat(out, "\n"), "\n")
