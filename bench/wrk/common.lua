-- bench/wrk/common.lua - shared by the bench/wrk/*.lua workload scripts (wrk runs LuaJIT).
-- Loads the generated tokens (BENCH_GEN/tokens.lua: index = user number 0..999), seeds each
-- thread's generator differently, and prints a machine-readable summary line from done():
--   WRK_RESULT requests=N duration_us=N rps=F p50_us=N p99_us=N non2xx=N connect=N read=N write=N timeout=N
-- (non2xx is wrk's "Non-2xx or 3xx responses" counter: statuses above 399.)
-- A script that calls bench.count_cache() also counts its answers' X-Cache header values in a
-- response() callback and prints, after WRK_RESULT:
--   WRK_CACHE hit=N miss=N stale=N bypass=N other=N none=N reads=N writes=N
-- (none: no X-Cache header; reads/writes: requests the script sent, if it counts them with
-- bench.sent(is_write)). A response() callback costs wrk some CPU per answer (wrk parses the
-- headers into a Lua table): compare only rates measured with the same script.
-- A script that calls bench.counters(LABEL, NAMES) gets per-thread counters (globals
-- LABEL_NAME, 0 at the start; the script adds to them) summed over the threads and printed as
--   WRK_<LABEL> name=N ...
-- (bench/wrk/replica_pair.lua: WRK_PAIR).
-- Cache workloads use trips k = 1..BENCH_CACHE_IDS (10000): bench.NIDS.
-- Data layout (bench/data.sql): trip k = 1..100000 has id 1000000 + k and owner (k - 1) % 1000.
local gen = os.getenv("BENCH_GEN") or "var/bench/gen"

bench = {
    NUSERS = 1000, NTRIPS = 100000, TRIP_BASE = 1000000,
    tokens = dofile(gen .. "/tokens.lua"),
    gen = gen,
    NIDS = tonumber(os.getenv("BENCH_CACHE_IDS") or "10000"),
}

-- Per-user header tables, built once (wrk.format only updates Host and Content-Length in them).
function bench.headers(extra)
    local out = {}
    for u = 0, bench.NUSERS - 1 do
        local h = { Authorization = "Bearer " .. bench.tokens[u] }
        for k, v in pairs(extra or {}) do h[k] = v end
        out[u] = h
    end
    return out
end

local threads, thread_list = 0, {}
function setup(thread)
    threads = threads + 1
    thread_list[threads] = thread
    thread:set("bench_thread", threads)
end

-- The per-thread counters read back by done() (globals of each thread's Lua state).
local CACHE_COUNTERS = { "hit", "miss", "stale", "bypass", "other", "none", "reads", "writes" }

-- Installs a response() callback counting X-Cache values (see the header comment).
function bench.count_cache()
    for _, c in ipairs(CACHE_COUNTERS) do _G["xc_" .. c] = 0 end
    local KNOWN = { HIT = "xc_hit", MISS = "xc_miss", STALE = "xc_stale", BYPASS = "xc_bypass" }
    function response(_, headers)
        local v = headers["X-Cache"] or headers["x-cache"]
        local name = v == nil and "xc_none" or KNOWN[v] or "xc_other"
        _G[name] = _G[name] + 1
    end
    bench.counting = true
end

-- Declares the counters LABEL_<name> for each of NAMES (see the header comment).
local extra = {}
function bench.counters(label, names)
    for _, c in ipairs(names) do _G[label .. "_" .. c] = 0 end
    extra[#extra + 1] = { label = label, names = names }
end

-- Counts one request sent (is_write: a write, else a read).
function bench.sent(is_write)
    if is_write then xc_writes = xc_writes + 1 else xc_reads = xc_reads + 1 end
end

function init(args)
    math.randomseed(os.time() * 1009 + (rawget(_G, "bench_thread") or 0) * 7919)  -- set by setup()
    for _ = 1, 10 do math.random() end
    if bench.init then bench.init(args) end
end

function done(summary, latency)
    local e = summary.errors
    local secs = summary.duration / 1e6
    io.write(string.format(
        "WRK_RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d non2xx=%d " ..
        "connect=%d read=%d write=%d timeout=%d\n",
        summary.requests, summary.duration, secs > 0 and summary.requests / secs or 0,
        latency:percentile(50), latency:percentile(99), e.status, e.connect, e.read, e.write,
        e.timeout))
    if bench.counting then
        local parts = {}
        for _, c in ipairs(CACHE_COUNTERS) do
            local n = 0
            for _, t in ipairs(thread_list) do n = n + (tonumber(t:get("xc_" .. c)) or 0) end
            parts[#parts + 1] = c .. "=" .. n
        end
        io.write("WRK_CACHE ", table.concat(parts, " "), "\n")
    end
    for _, x in ipairs(extra) do
        local parts = {}
        for _, c in ipairs(x.names) do
            local n = 0
            for _, t in ipairs(thread_list) do n = n + (tonumber(t:get(x.label .. "_" .. c)) or 0) end
            parts[#parts + 1] = c .. "=" .. n
        end
        io.write("WRK_", x.label:upper(), " ", table.concat(parts, " "), "\n")
    end
end
