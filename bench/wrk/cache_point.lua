-- bench/wrk/cache_point.lua - cache workloads 7-9: GET /v1/trips/:id for a random trip of the
-- bounded set k = 1..BENCH_CACHE_IDS (ids 1000001..), with its owner's token, counting X-Cache.
--   BENCH_NO_CACHE=1  adds Cache-Control: no-cache (tide answers from Postgres: X-Cache BYPASS)
-- The same script measures tide's warm cache (7), tide uncached (8) and the OpenResty baseline
-- (9, which ignores the token and answers without X-Cache). The requests are formatted once in
-- init(), so wrk spends its CPU sending, not building strings.
dofile((os.getenv("BENCH_WRK") or "bench/wrk") .. "/common.lua")

local random = math.random
local NIDS = bench.NIDS
local reqs = {}

function bench.init()
    local extra = os.getenv("BENCH_NO_CACHE") == "1" and { ["Cache-Control"] = "no-cache" } or nil
    local hdrs = bench.headers(extra)
    for k = 1, NIDS do
        reqs[k] = wrk.format("GET", "/v1/trips/" .. (bench.TRIP_BASE + k), hdrs[(k - 1) % bench.NUSERS])
    end
end

function request()
    return reqs[random(1, NIDS)]
end

bench.count_cache()
