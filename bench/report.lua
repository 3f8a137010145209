-- bench/report.lua - turns the key=value results bench/run.sh collected into the Markdown
-- report (stdout). The bars come from issue 3 and are checked here against the numbers.
--   luajit bench/report.lua RESULTS_FILE
local path = arg[1] or "var/bench/results.txt"
local r = {}
for line in io.lines(path) do
    local k, v = line:match("^([%w_]+)=(.*)$")
    if k then r[k] = v end
end

local function num(k)
    local v = tonumber(r[k])
    return v
end

local function fmt_rate(v) return v and string.format("%.0f", v) or "n/a" end
local function fmt_ms(us) return us and string.format("%.2f ms", us / 1000) or "n/a" end
local function fmt_ratio(v) return v and string.format("%.2f", v) or "n/a" end

local out = {}
local function put(s) out[#out + 1] = s end

put("# tide benchmark")
put("")
put(string.format("- date: %s", r.date or "?"))
put(string.format("- machine: %s cores (`nproc`), %s", r.nproc or "?", r.cpu or "?"))
put("- figures from one run on a shared machine (tide, Postgres, PgBouncer, wrk and pgbench " ..
    "all on it); expect noise between runs")
put(string.format("- tide pool sizes: direct %s, session %s, transaction %s (connections " ..
                  "opened during the run: direct %s, transaction %s)",
                  r.pool_direct or "?", r.pool_session or "?", r.pool_transaction or "?",
                  r.open_direct or "?", r.open_transaction or "?"))
put(string.format("- load: wrk -t%s -c%s -d%ss --latency after a %ss warm-up; pgbench -n -M prepared " ..
                  "-c <tide's open direct connections> -j 2 -T %s after a %ss warm-up, " ..
                  "over the statements tide sends (bench/gen.lua)",
                  r.threads or "?", r.conns or "?", r.duration or "?", r.warmup or "?",
                  r.duration or "?", r.pg_warmup or "?"))
do
    local parts = {}
    for _, k in ipairs({ "point", "list", "write", "vector", "pooler", "pooler_direct" }) do
        if r[k .. "_tide_cpu"] then parts[#parts + 1] = k .. " " .. r[k .. "_tide_cpu"] .. "%" end
    end
    if #parts > 0 then
        put("- tide's CPU during each measured run (% of one core; tide serves from one event-loop thread): " ..
            table.concat(parts, ", "))
    end
end
put("")
put("| workload | tide req/s | tide p50 | tide p99 | tide non-2xx | pgbench tps | pgbench p50 | " ..
    "pgbench p99 | ratio | bar | met |")
put("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")

local all_met = true
local function errs(prefix)
    local status, sock = num(prefix .. "_non2xx"), num(prefix .. "_sockerr")
    if status == nil then return "n/a", false end
    local s = tostring(status)
    if sock and sock > 0 then s = s .. " (+" .. sock .. " socket errors)" end
    return s, status == 0 and (sock or 0) == 0
end

local WORKLOADS = {
    { key = "point", name = "1. point read `GET /v1/trips/:id`", p99 = true },
    { key = "list", name = "2. list `GET /v1/trips?limit=20`" },
    { key = "write", name = "3. write `POST /v1/search-history`" },
    { key = "vector", name = "4. vector `POST /v1/destinations/similar` (top 10)" },
}
for _, w in ipairs(WORKLOADS) do
    local k = w.key
    local rps, tps = num(k .. "_rps"), num(k .. "_pg_tps")
    local ratio = (rps and tps and tps > 0) and rps / tps or nil
    local e, e_ok = errs(k)
    local met = ratio ~= nil and ratio >= 0.6 and e_ok and (num(k .. "_pg_failed") or 0) == 0
    local bar = "≥ 0.6; 0 non-2xx"
    if w.p99 then
        local p99, pg99 = num(k .. "_p99_us"), num(k .. "_pg_p99_us")
        local p99_ok = p99 ~= nil and pg99 ~= nil and p99 <= 2 * pg99
        met = met and p99_ok
        bar = string.format("≥ 0.6; p99 ≤ 2 × pgbench p99 (%s: %s); 0 non-2xx",
                            (p99 and pg99) and string.format("%.1f×", p99 / pg99) or "n/a",
                            p99_ok and "yes" or "no")
    end
    all_met = all_met and met
    put(string.format("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", w.name,
                      fmt_rate(rps), fmt_ms(num(k .. "_p50_us")), fmt_ms(num(k .. "_p99_us")), e,
                      fmt_rate(tps), fmt_ms(num(k .. "_pg_p50_us")), fmt_ms(num(k .. "_pg_p99_us")),
                      fmt_ratio(ratio), bar, met and "met" or "**not met**"))
end

do -- 5: the point read through the transaction pooler vs direct (both tide)
    local rps, drps = num("pooler_rps"), num("pooler_direct_rps")
    local ratio = (rps and drps and drps > 0) and rps / drps or nil
    local e, e_ok = errs("pooler")
    local _, d_ok = errs("pooler_direct")
    local met = ratio ~= nil and ratio >= 0.8 and e_ok and d_ok
    all_met = all_met and met
    put(string.format("| 5. point read via the transaction pooler (%s statements through " ..
                      "the transaction pool; comparison columns: tide direct, %s non-2xx) | " ..
                      "%s | %s | %s | %s | %s | %s | %s | %s (pooler/direct) | ≥ 0.8; 0 non-2xx | %s |",
                      r.pooler_txn_jobs or "?", (errs("pooler_direct")),
                      fmt_rate(rps), fmt_ms(num("pooler_p50_us")), fmt_ms(num("pooler_p99_us")), e,
                      fmt_rate(drps), fmt_ms(num("pooler_direct_p50_us")),
                      fmt_ms(num("pooler_direct_p99_us")), fmt_ratio(ratio),
                      met and "met" or "**not met**"))
end

do -- 6: idle connections
    local before, after, n = num("idle_rss_before_kb"), num("idle_rss_after_kb"),
        num("idle_connections")
    local idle = num("idle_idle")
    local per = (before and after and n and n > 0) and (after - before) / n or nil
    local bad = (num("idle_non2xx") or 0) + (num("idle_failed") or 0)
    local pstatus = num("idle_prompt_status")
    local prompt_ok = pstatus ~= nil and pstatus >= 200 and pstatus <= 299
    local met = per ~= nil and per <= 4 and bad == 0 and prompt_ok and idle == n
    all_met = all_met and met
    local text = per and string.format("%.2f KiB/idle conn (RSS %d → %d KiB, %s idle, %s dropped " ..
                                       "by tide); prompt request %.2f ms, status %s",
                                       per, before, after, r.idle_idle or "?",
                                       r.idle_dropped or "?", num("idle_prompt_ms") or -1,
                                       r.idle_prompt_status or "?")
                 or "n/a"
    put(string.format("| 6. %s idle keep-alive connections | — | — | — | %s | — | — | — | %s | " ..
                      "≤ 4 KiB/idle conn; prompt 2xx; 0 non-2xx | %s |",
                      r.idle_connections or "?",
                      bad == 0 and "0" or string.format("%d (%s failed)", bad,
                                                        r.idle_failed or "?"),
                      text, met and "met" or "**not met**"))
end

put("")
put(string.format("All bars met: %s. Whole run: %s s.", all_met and "yes" or "**no**",
                  r.elapsed or "?"))
put("")
put("Notes: tide serves workloads 1–4 and 6 with a routing policy that sends every call to the " ..
    "`direct` upstream (as pgbench, which connects as authenticator to the same Postgres); " ..
    "workload 5 swaps in the repository's default policy (reads through the transaction-mode " ..
    "PgBouncer) with SIGHUP. pgbench runs tide's own statements (the set_config statement read " ..
    "from runtime/pgconn.c, the route's statement captured from tide's Lua by bench/gen.lua, " ..
    "var/bench/gen/pgbench/); its claims parameter is built in SQL from the user number " ..
    "(`{\"sub\":…,\"role\":\"authenticated\"}`) where tide sends the token's whole payload " ..
    "(sub, role, iat, exp, aud): the same work for Postgres up to a few bytes. " ..
    "Latencies: wrk's (HTTP, per request) and pgbench's per-transaction log (p50/p99 computed " ..
    "from `-l`). Non-2xx is wrk's \"Non-2xx or 3xx responses\" (status ≥ 400).")
do -- queueing: what concurrency alone does to the latencies compared above
    local rps, tps = num("point_rps"), num("point_pg_tps")
    local conns, clients = num("conns"), num("point_pg_clients")
    if rps and tps and conns and clients and rps > 0 and tps > 0 then
        put("")
        put(string.format("Latency comparisons are mostly queueing: wrk keeps %d requests in flight " ..
                          "against tide's %d `direct` connections, pgbench %d. By Little's law the " ..
                          "point read's mean latency is %d / %.0f req/s = %.2f ms for tide and " ..
                          "%d / %.0f tps = %.2f ms for pgbench: at this concurrency even tide's mean " ..
                          "stays above 2× pgbench's mean unless tide's rate is at least %.1f× " ..
                          "pgbench's, so the p99 bar measures the queue as much as tide.", conns, clients, clients, conns, rps, conns / rps * 1000,
                          clients, tps, clients / tps * 1000, conns / clients / 2))
    end
end
io.write(table.concat(out, "\n"), "\n")
