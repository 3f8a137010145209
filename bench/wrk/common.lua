-- bench/wrk/common.lua - shared by the bench/wrk/*.lua workload scripts (wrk runs LuaJIT).
-- Loads the generated tokens (BENCH_GEN/tokens.lua: index = user number 0..999), seeds each
-- thread's generator differently, and prints a machine-readable summary line from done():
--   WRK_RESULT requests=N duration_us=N rps=F p50_us=N p99_us=N non2xx=N connect=N read=N write=N timeout=N
-- (non2xx is wrk's "Non-2xx or 3xx responses" counter: statuses above 399.)
-- Data layout (bench/data.sql): trip k = 1..100000 has id 1000000 + k and owner (k - 1) % 1000.
local gen = os.getenv("BENCH_GEN") or "var/bench/gen"

bench = {
    NUSERS = 1000, NTRIPS = 100000, TRIP_BASE = 1000000,
    tokens = dofile(gen .. "/tokens.lua"),
    gen = gen,
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

local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("bench_thread", threads)
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
end
