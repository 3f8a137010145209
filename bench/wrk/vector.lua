-- bench/wrk/vector.lua - workload 4: POST /v1/destinations/similar (top 10) with one of the
-- fixed 384-dim embeddings dumped from the destinations table (BENCH_GEN/embeddings.lua holds
-- the request bodies), as a random bench user.
dofile((os.getenv("BENCH_WRK") or "bench/wrk") .. "/common.lua")

local random, format = math.random, wrk.format
local NUSERS = bench.NUSERS
local hdrs, bodies

function bench.init()
    hdrs = bench.headers({ ["Content-Type"] = "application/json" })
    bodies = dofile(bench.gen .. "/embeddings.lua")
end

function request()
    return format("POST", "/v1/destinations/similar", hdrs[random(0, NUSERS - 1)],
                  bodies[random(1, #bodies)])
end
