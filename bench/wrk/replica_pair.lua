-- bench/wrk/replica_pair.lua - the replica workloads' write-then-read pair (docs/replicas.md,
-- read-your-writes): POST /v1/search-history as a random bench user, then, with the Tide-LSN
-- its answer carried, GET /v1/search-history?limit=1 as the same user with that position sent
-- back as a `Tide-LSN` request header (and Cache-Control: no-cache): the user reads back the
-- entry they just recorded. Whether the read saw it is not checked here (spec/integration/
-- replica_spec.lua does); what is counted is how many reads carried a token.
--
-- wrk calls response() for an answer on one connection and request() when any connection of
-- the thread is ready to send, so the pairs go through a per-thread queue: a write's answer
-- that carries Tide-LSN queues one read (the writer, from the answer's user_id, and the
-- position); request() sends the oldest queued read, else a new write. Every write that
-- answers with a position is followed by exactly one read on some connection of its thread,
-- a moment later (the next request that thread sends). Counted (WRK_PAIR, bench/wrk/common.lua):
--   writes  POSTs sent            lsn    write answers that carried Tide-LSN
--   reads   GETs sent             token  GETs sent with a Tide-LSN header
--   nouser  write answers with a Tide-LSN but no bench user_id in the body (no read queued)
dofile((os.getenv("BENCH_WRK") or "bench/wrk") .. "/common.lua")

local random, format = math.random, wrk.format
local NUSERS = bench.NUSERS
local whdrs
local user_of = {}                      -- uuid -> user number 0..999 (gen/uuids.txt's order)
local queue, head, tail = {}, 1, 0      -- pending reads: { user, lsn } (head > tail: empty)

function bench.init()
    whdrs = bench.headers({ ["Content-Type"] = "application/json" })
    local n = 0
    for line in io.lines(bench.gen .. "/uuids.txt") do
        user_of[line] = n
        n = n + 1
    end
end

bench.counters("pair", { "writes", "lsn", "reads", "token", "nouser" })

function request()
    if head <= tail then
        local q = queue[head]
        queue[head] = nil
        head = head + 1
        pair_reads = pair_reads + 1
        pair_token = pair_token + 1
        return format("GET", "/v1/search-history?limit=1", {
            Authorization = "Bearer " .. bench.tokens[q[1]],
            ["Cache-Control"] = "no-cache",
            ["Tide-LSN"] = q[2],
        })
    end
    pair_writes = pair_writes + 1
    local body = '{"search_type":"destination","query":{"q":"bench pair ' .. random(1, 1000000) .. '"}}'
    return format("POST", "/v1/search-history", whdrs[random(0, NUSERS - 1)], body)
end

function response(_, headers, body)
    local lsn = headers["Tide-LSN"] or headers["tide-lsn"]
    if not lsn then return end
    pair_lsn = pair_lsn + 1
    local u = user_of[body:match('"user_id"%s*:%s*"([0-9a-f-]+)"') or ""]
    if not u then
        pair_nouser = pair_nouser + 1
        return
    end
    tail = tail + 1
    queue[tail] = { u, lsn }
end
