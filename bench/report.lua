-- bench/report.lua - turns the key=value results bench/run.sh collected into the Markdown
-- report (stdout). The bars come from issue 3 (workloads 1-6) and issue 9 (the result cache,
-- workloads 7-11) and are checked here against the numbers. A run with BENCH_ONLY=base or
-- cache reports only its own table.
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
local only = r.only or "all"
local base, cache = only ~= "cache", only ~= "base"

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
put(string.format("- load: wrk -t%s -c%s -d%ss --latency after a %ss warm-up%s",
                  r.threads or "?", r.conns or "?", r.duration or "?", r.warmup or "?",
                  base and string.format("; pgbench -n -M prepared -c <tide's open direct " ..
                                         "connections> -j 2 -T %s after a %ss warm-up, over the " ..
                                         "statements tide sends (bench/gen.lua)",
                                         r.duration or "?", r.pg_warmup or "?") or ""))
if only ~= "all" then put("- partial run: BENCH_ONLY=" .. only) end
do
    local parts = {}
    for _, k in ipairs({ "point", "list", "write", "vector", "pooler", "pooler_direct", "cache_hit",
                         "cache_nocache", "cache_popular", "cache_mix" }) do
        if r[k .. "_tide_cpu"] then parts[#parts + 1] = k .. " " .. r[k .. "_tide_cpu"] .. "%" end
    end
    if #parts > 0 then
        put("- tide's CPU during each measured run (% of one core; tide serves from one event-loop thread): " ..
            table.concat(parts, ", ") ..
            (r.openresty_cpu and ("; nginx (master + worker) during the OpenResty run: " ..
                                  r.openresty_cpu .. "%") or ""))
    end
end
local all_met = true
local function errs(prefix)
    local status, sock = num(prefix .. "_non2xx"), num(prefix .. "_sockerr")
    if status == nil then return "n/a", false end
    local s = tostring(status)
    if sock and sock > 0 then s = s .. " (+" .. sock .. " socket errors)" end
    return s, status == 0 and (sock or 0) == 0
end

local function base_table()
    put("")
    put("| workload | tide req/s | tide p50 | tide p99 | tide non-2xx | pgbench tps | pgbench p50 | " ..
        "pgbench p99 | ratio | bar | met |")
    put("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")

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
end

local function base_notes()
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
                              "pgbench's, so the p99 bar measures the queue as much as tide.",
                              conns, clients, clients, conns, rps, conns / rps * 1000,
                              clients, tps, clients / tps * 1000, conns / clients / 2))
        end
    end
end

-- The result cache (issue 9): workloads 7-11.
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

local function cache_table()
    local n = r.cache_ids or "?"
    put("")
    put("## The result cache (issue 9)")
    put("")
    put(string.format("- trip set: %s trips (ids 1000001–%s), each read with its owner's token; " ..
                      "policies/cache.lua caches `GET /v1/trips/:id` per caller and " ..
                      "`GET /v1/destinations/popular` for everyone", n,
                      tonumber(n) and tostring(1000000 + tonumber(n)) or "?"))
    put(string.format("- fill pass before workload 7 (curl, every trip once): X-Cache %s in %s s; " ..
                      "then %s of %s trips read one by one answered X-Cache: HIT (%s with Age, %s " ..
                      "with ETag)", xc_text("fill"), r.fill_s or "?", r.warm_check_hits or "?",
                      r.warm_check_n or "?", r.warm_check_age or "?", r.warm_check_etag or "?"))
    put(string.format("- before workload 11 the set is filled again (X-Cache %s)", xc_text("refill")))
    put("")
    put("| workload | req/s | p50 | p99 | non-2xx | X-Cache seen by wrk | served from cache " ..
        "(wrk / tide's stats) | ratio | bar | met |")
    put("|---|---:|---:|---:|---:|---|---:|---:|---|---|")

    local function row(name, k, hits, ratio, bar, met)
        put(string.format("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", name,
                          fmt_rate(num(k .. "_rps")), fmt_ms(num(k .. "_p50_us")),
                          fmt_ms(num(k .. "_p99_us")), (errs(k)), xc_text(k), hits, ratio, bar,
                          met == nil and "—" or (met and "met" or "**not met**")))
    end

    do -- 7, with the three bars
        local rps, unc, ors = num("cache_hit_rps"), num("cache_nocache_rps"), num("openresty_rps")
        local p99 = num("cache_hit_p99_us")
        local vs_unc = (rps and unc and unc > 0) and rps / unc or nil
        local vs_or = (rps and ors and ors > 0) and rps / ors or nil
        local _, e_ok = errs("cache_hit")
        local _, u_ok = errs("cache_nocache")
        local _, o_ok = errs("openresty")
        local ok_unc = vs_unc ~= nil and vs_unc >= 5
        local ok_or = vs_or ~= nil and vs_or >= 0.7
        local ok_p99 = p99 ~= nil and p99 <= 2000
        local met = ok_unc and ok_or and ok_p99 and e_ok and u_ok and o_ok
        all_met = all_met and met
        local hits = hit_ratios("cache_hit")
        row("7. point read, warm cache `GET /v1/trips/:id`", "cache_hit", hits,
            string.format("%s× uncached, %s× OpenResty",
                          vs_unc and string.format("%.2f", vs_unc) or "n/a",
                          vs_or and string.format("%.2f", vs_or) or "n/a"),
            string.format("≥ 5× uncached (%s); ≥ 0.7× OpenResty (%s); p99 ≤ 2 ms (%s; " ..
                          "OpenResty's p99: %s); 0 non-2xx in 7-9", ok_unc and "yes" or "no",
                          ok_or and "yes" or "no", ok_p99 and "yes" or "no",
                          fmt_ms(num("openresty_p99_us"))), met)
    end
    row("8. the same, uncached (`Cache-Control: no-cache`)", "cache_nocache",
        (hit_ratios("cache_nocache")), "—", "reference for 7", nil)
    row("9. OpenResty baseline (nginx + lua-nginx-module, 1 worker, lua_shared_dict, no JWT check)",
        "openresty", "—", "—", "reference for 7 (an upper bound)", nil)
    do -- 10
        local _, e_ok = errs("cache_popular")
        all_met = all_met and e_ok
        row("10. `GET /v1/destinations/popular`, warm", "cache_popular",
            (hit_ratios("cache_popular")), "—", "report rate and p99; 0 non-2xx", e_ok)
    end
    do -- 11
        local _, e_ok = errs("cache_mix")
        local bad, checked = num("mix_mismatch"), num("mix_checked")
        local fresh_ok = bad == 0
        local met = e_ok and fresh_ok
        all_met = all_met and met
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
            string.format("report rate, p99 and hit ratio (≤ ~%.0f%% possible); 0 non-2xx; " ..
                          "afterwards no trip answered from the cache differs from its row " ..
                          "(%s of %s differ%s)", 100 - (num("write_pct") or 10), r.mix_mismatch or "?",
                          checked or "?", #by > 0 and (": X-Cache " .. table.concat(by, ", ")) or ""),
            met)
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
            if r[k .. "_slow_passes"] then
                parts[#parts + 1] = "event-loop passes over 50 ms " .. r[k .. "_slow_passes"]
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

if base then base_table() end
if cache then cache_table() end
put("")
put(string.format("All bars met: %s. Whole run: %s s.", all_met and "yes" or "**no**",
                  r.elapsed or "?"))
if base then base_notes() end
if cache then cache_notes() end
io.write(table.concat(out, "\n"), "\n")
