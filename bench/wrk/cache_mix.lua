-- bench/wrk/cache_mix.lua - cache workload 11: 90% GET /v1/trips/:id, 10% PATCH /v1/trips/:id
-- over the bounded set k = 1..BENCH_CACHE_IDS, each with the trip owner's token. The PATCH
-- changes the trip's notes ({"notes":["bench mix <thread>-<n>"]}, n counting this thread's
-- writes) and so invalidates the trip's cache entries; the next read of it is a MISS. With
-- writes spread at random, about 1 read in 10 follows a write to its trip: a read hit ratio near
-- 0.9 is the most a correct cache can show here. bench/run.sh restores the notes afterwards.
--   BENCH_WRITE_PCT  share of writes in percent (10)
dofile((os.getenv("BENCH_WRK") or "bench/wrk") .. "/common.lua")

local random, format = math.random, wrk.format
local NIDS, NUSERS, BASE = bench.NIDS, bench.NUSERS, bench.TRIP_BASE
local WRITE = tonumber(os.getenv("BENCH_WRITE_PCT") or "10") / 100
local gets, whdrs = {}, nil
local tag, n = "0", 0

function bench.init()
    local hdrs = bench.headers()
    whdrs = bench.headers({ ["Content-Type"] = "application/json" })
    for k = 1, NIDS do
        gets[k] = format("GET", "/v1/trips/" .. (BASE + k), hdrs[(k - 1) % NUSERS])
    end
    tag = tostring(rawget(_G, "bench_thread") or 0)
end

function request()
    local k = random(1, NIDS)
    if random() < WRITE then
        n = n + 1
        bench.sent(true)
        return format("PATCH", "/v1/trips/" .. (BASE + k), whdrs[(k - 1) % NUSERS],
                      '{"notes":["bench mix ' .. tag .. "-" .. n .. '"]}')
    end
    bench.sent(false)
    return gets[k]
end

bench.count_cache()
