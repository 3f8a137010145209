-- bench/wrk/list.lua - workload 2: GET /v1/trips?limit=20 as a random bench user (their newest
-- 20 of 100 trips). With Cache-Control: no-cache: policies/cache.lua caches this route per user,
-- and workload 2 measures the database path that pgbench runs.
dofile((os.getenv("BENCH_WRK") or "bench/wrk") .. "/common.lua")

local random, format = math.random, wrk.format
local NUSERS = bench.NUSERS
local hdrs

function bench.init()
    hdrs = bench.headers({ ["Cache-Control"] = "no-cache" })
end

function request()
    return format("GET", "/v1/trips?limit=20", hdrs[random(0, NUSERS - 1)])
end
