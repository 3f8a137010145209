-- bench/wrk/cache_popular.lua - cache workload 10: GET /v1/destinations/popular (the top 10; a
-- public cache entry shared by every caller) as a random bench user, counting X-Cache.
dofile((os.getenv("BENCH_WRK") or "bench/wrk") .. "/common.lua")

local random = math.random
local NUSERS = bench.NUSERS
local reqs = {}

function bench.init()
    local hdrs = bench.headers()
    for u = 0, NUSERS - 1 do reqs[u] = wrk.format("GET", "/v1/destinations/popular", hdrs[u]) end
end

function request()
    return reqs[random(0, NUSERS - 1)]
end

bench.count_cache()
