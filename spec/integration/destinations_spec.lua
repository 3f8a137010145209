-- spec/integration/destinations_spec.lua - the public destination catalogue over HTTP:
-- popular (most popular first, limit default 10, clamped to 100, open to anon) and similar
-- (nearest by cosine similarity to a real 384-dim embedding read from the database, with the
-- similarity; limit and threshold honoured; a wrong dimension or a non-numeric element is a
-- 400 TIDE_INVALID_EMBEDDING naming the position, never a 500).

local cjson = require "cjson"
local env = require "spec.helpers.env"
local api = require "spec.helpers.api"

local call = api.call

-- The stored embedding of destination id, as a Lua array of 384 numbers.
local function embedding_of(id)
    local text = env.psql("select embedding::text from destinations where id = " .. id)
    local v = cjson.decode(text)
    assert(type(v) == "table" and #v == 384, "no 384-dim embedding for destination " .. id)
    return v
end

local function copy(t)
    local out = {}
    for i, x in ipairs(t) do out[i] = x end
    return out
end

describe("destinations", function()
    local user, probe_id, vec

    setup(function()
        env.need("bin", "dsn_admin")
        user = api.user()
        probe_id = tonumber(env.psql_value(
            "select id from destinations where embedding is not null order by id limit 1 offset 41"))
        assert(probe_id, "the test database has no destinations with embeddings (seed missing?)")
        vec = embedding_of(probe_id)
    end)

    describe("popular", function()
        it("returns the 10 most popular, most popular first, without embeddings", function()
            local status, rows = call(user, "GET", "/v1/destinations/popular")
            assert.are.equal(200, status)
            assert.are.equal(10, #rows)
            local expected = env.psql("select popularity from destinations order by popularity desc limit 10")
            local got = {}
            for i, r in ipairs(rows) do
                got[i] = tostring(r.popularity)
                assert.is_string(r.name)
                assert.is_string(r.country)
                assert.is_nil(r.embedding)
            end
            assert.are.equal(expected, table.concat(got, "\n"))
        end)

        it("honours limit, clamps it to 100, and rejects a malformed one (422)", function()
            local status, rows = call(user, "GET", "/v1/destinations/popular?limit=3")
            assert.are.equal(200, status)
            assert.are.equal(3, #rows)
            status, rows = call(user, "GET", "/v1/destinations/popular?limit=1000")
            assert.are.equal(200, status)
            assert.are.equal(100, #rows)
            local body
            status, body = call(user, "GET", "/v1/destinations/popular?limit=many")
            assert.are.equal(422, status)
            assert.matches("limit", body.message .. cjson.encode(body.details or {}))
        end)

        it("is open to anonymous callers", function()
            local status, rows = call(nil, "GET", "/v1/destinations/popular?limit=2")
            assert.are.equal(200, status)
            assert.are.equal(2, #rows)
        end)
    end)

    describe("similar", function()
        it("finds the destination itself first, with similarity ~1, best first", function()
            local status, rows = call(user, "POST", "/v1/destinations/similar", { embedding = vec, limit = 5 })
            assert.are.equal(200, status)
            assert.is_true(#rows >= 1 and #rows <= 5, "rows: " .. #rows)
            assert.are.equal(probe_id, rows[1].id)
            assert.is_true(rows[1].similarity > 0.999, "similarity " .. tostring(rows[1].similarity))
            for i = 2, #rows do
                assert.is_true(rows[i].similarity <= rows[i - 1].similarity)
                assert.is_true(rows[i].similarity >= 0)   -- default threshold 0
            end
            assert.is_nil(rows[1].embedding)
            assert.is_string(rows[1].name)
        end)

        it("agrees with the database's own cosine similarity", function()
            local _, rows = call(user, "POST", "/v1/destinations/similar", { embedding = vec, limit = 3 })
            local other = rows[#rows]
            local sim = tonumber(env.psql_value(
                "select 1 - (a.embedding <=> b.embedding) from destinations a, destinations b" ..
                " where a.id = " .. probe_id .. " and b.id = " .. other.id))
            assert.is_true(math.abs(sim - other.similarity) < 1e-6)
        end)

        it("defaults to 10 rows and returns up to 100 when asked", function()
            local status, rows = call(nil, "POST", "/v1/destinations/similar", { embedding = vec, threshold = -1 })
            assert.are.equal(200, status)
            assert.are.equal(10, #rows)
            status, rows = call(user, "POST", "/v1/destinations/similar",
                                { embedding = vec, limit = 100, threshold = -1 })
            assert.are.equal(200, status)
            assert.are.equal(100, #rows)
        end)

        it("drops rows under the threshold", function()
            local status, rows = call(user, "POST", "/v1/destinations/similar",
                                      { embedding = vec, limit = 50, threshold = 0.9 })
            assert.are.equal(200, status)
            assert.is_true(#rows >= 1)
            for _, r in ipairs(rows) do
                assert.is_true(r.similarity >= 0.9)
            end
        end)

        it("answers 400 TIDE_INVALID_EMBEDDING for a wrong dimension", function()
            for _, n in ipairs { 383, 385, 0, 3 } do
                local v = {}
                for i = 1, n do v[i] = vec[i] or 0.1 end
                local status, body = call(user, "POST", "/v1/destinations/similar", { embedding = v })
                assert.are.equal(400, status, "dimension " .. n)
                assert.are.equal("TIDE_INVALID_EMBEDDING", body.code)
                assert.matches("384", body.message)
            end
        end)

        it("answers 400 TIDE_INVALID_EMBEDDING naming the position of a non-numeric element", function()
            local bad = copy(vec)
            bad[6] = "x"
            local status, body = call(user, "POST", "/v1/destinations/similar", { embedding = bad })
            assert.are.equal(400, status)
            assert.are.equal("TIDE_INVALID_EMBEDDING", body.code)
            assert.matches("embedding%[5%]", body.message)

            bad = copy(vec)
            bad[384] = cjson.null
            status, body = call(user, "POST", "/v1/destinations/similar", { embedding = bad })
            assert.are.equal(400, status)
            assert.matches("embedding%[383%]", body.message)

            bad = copy(vec)
            bad[1] = { 1 }
            status, body = call(user, "POST", "/v1/destinations/similar", { embedding = bad })
            assert.are.equal(400, status)
            assert.are.equal("TIDE_INVALID_EMBEDDING", body.code)

            for _, e in ipairs { "[1,2,3]", cjson.null, { a = 1 } } do
                status, body = call(user, "POST", "/v1/destinations/similar", { embedding = e })
                assert.are.equal(400, status)
                assert.are.equal("TIDE_INVALID_EMBEDDING", body.code)
            end
            status, body = call(user, "POST", "/v1/destinations/similar", { limit = 3 })
            assert.are.equal(400, status)
            assert.are.equal("TIDE_INVALID_EMBEDDING", body.code)
        end)

        it("rejects an out-of-range limit or threshold and unknown fields (422, named)", function()
            local cases = {
                { "limit", { embedding = vec, limit = 0 } },
                { "limit", { embedding = vec, limit = 101 } },
                { "limit", { embedding = vec, limit = 2.5 } },
                { "threshold", { embedding = vec, threshold = 1.5 } },
                { "threshold", { embedding = vec, threshold = "high" } },
                { "metric", { embedding = vec, metric = "l2" } },
            }
            for _, c in ipairs(cases) do
                local status, body = call(user, "POST", "/v1/destinations/similar", c[2])
                assert.are.equal(422, status, c[1])
                assert.matches(c[1], body.message .. cjson.encode(body.details or {}), 1, true)
            end
        end)
    end)
end)
