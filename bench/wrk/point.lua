-- bench/wrk/point.lua - workload 1 (and 5): GET /v1/trips/:id for a random bench trip, sent with
-- its owner's token (RLS on: the owner sees it, 200). With Cache-Control: no-cache, so tide's
-- result cache (policies/cache.lua) stays out of the way and the read measures the database path
-- that pgbench runs (the cache's own workloads are bench/wrk/cache_*.lua).
dofile((os.getenv("BENCH_WRK") or "bench/wrk") .. "/common.lua")

local random, format = math.random, wrk.format
local NTRIPS, NUSERS, BASE = bench.NTRIPS, bench.NUSERS, bench.TRIP_BASE
local hdrs

function bench.init()
    hdrs = bench.headers({ ["Cache-Control"] = "no-cache" })
end

function request()
    local k = random(1, NTRIPS)
    return format("GET", "/v1/trips/" .. (BASE + k), hdrs[(k - 1) % NUSERS])
end
