-- bench/wrk/write.lua - workload 3: POST /v1/search-history as a random bench user
-- ({"search_type":"destination","query":{"q":"bench N"}}, 201). bench/run.sh deletes the bench
-- users' search history before each run.
dofile((os.getenv("BENCH_WRK") or "bench/wrk") .. "/common.lua")

local random, format = math.random, wrk.format
local NUSERS = bench.NUSERS
local hdrs

function bench.init()
    hdrs = bench.headers({ ["Content-Type"] = "application/json" })
end

function request()
    local body = '{"search_type":"destination","query":{"q":"bench ' .. random(1, 1000000) .. '"}}'
    return format("POST", "/v1/search-history", hdrs[random(0, NUSERS - 1)], body)
end
