-- spec/unit/destinations_spec.lua - POST /v1/destinations/similar through tide.boot against a
-- fake tide.core: which bodies the route accepts and which it refuses (status and code), and
-- the embedding text it sends to Postgres. The embedding's 384 numbers are checked in their
-- text (tide.json.numbers_ok) and sent as the client wrote them; anything unusual goes the
-- long way (the whole body decoded), so both ways must answer alike.

local boot = require "tide.boot"
local json = require "tide.json"

local sent                  -- the last rpc's parameters
local fake_core = {
    log = function() end,
    request_id = function() return "r1" end,
    cache_skip = function() end,
    cache_depend = function() end,
    cache_invalidate = function() end,
    query = function(_, _, params)
        sent = params
        return "[]"
    end,
    null = json.null,
}

local function floats(n, f)
    local t = {}
    for i = 1, n do t[i] = f and f(i) or string.format("%.8g", math.sin(i) / 10) end
    return t
end

local function vec(n, f, sep)
    return "[" .. table.concat(floats(n, f), sep or ",") .. "]"
end

-- status, code, the query_embedding parameter sent (nil: no query)
local function post(body, ctype)
    sent = nil
    -- routed as runtime/router.c would (boot._route: tide.router's matcher, same rules)
    local status, text = boot.handle(boot._route({
        method = "POST", path = "/v1/destinations/similar", query_string = "", id = "r1",
        role = "anon", body = body,
        headers = { ["content-type"] = ctype or "application/json" },
    }))
    local v = text ~= "" and json.decode(text) or nil
    local embedding
    for i = 1, sent and sent.n or 0 do
        if type(sent[i]) == "string" and sent[i]:find("^%[") then embedding = sent[i] end
    end
    return status, type(v) == "table" and v.code or nil, embedding
end

describe("POST /v1/destinations/similar", function()
    setup(function()
        boot._set_core(fake_core)
        require("tide.db")._set_core(fake_core)
        assert.is_true(boot.load({ "destinations" }) >= 2)
    end)

    teardown(function()
        boot._set_core(nil)
        require("tide.db")._set_core(nil)
    end)

    it("sends a valid embedding's text as the client wrote it", function()
        for _, e in ipairs { vec(384), vec(384, nil, " ,\n\t"),
                             vec(384, function(i) return ({ "0", "-0", "1E+5", "2.5e-3", "-7E-07",
                                                            "123456789", "1e-400", "1e39" })[i % 8 + 1] end) } do
            local body = '{ "limit": 3, "embedding" : ' .. e .. ' , "threshold": 0.5 }'
            local status, code, param = post(body)
            assert.are.equal(200, status, code)
            assert.are.equal(e, param)
        end
    end)

    it("refuses what it refused before, with the same status and code", function()
        local good = vec(384)
        local cases = {
            { vec(383), 400, "TIDE_INVALID_EMBEDDING" },
            { vec(385), 400, "TIDE_INVALID_EMBEDDING" },
            { vec(384, function(i) return i == 6 and '"x"' or "1" end), 400,
              "TIDE_INVALID_EMBEDDING" },
            { vec(384, function(i) return i == 6 and "null" or "1" end), 400,
              "TIDE_INVALID_EMBEDDING" },
            { vec(384, function(i) return i == 6 and "[1]" or "1" end), 400,
              "TIDE_INVALID_EMBEDDING" },
            { vec(384, function(i) return i == 384 and "1e400" or "1" end), 400,
              "TIDE_INVALID_JSON" },
            { vec(384, function(i) return i == 9 and "-" .. string.rep("9", 400) or "1" end), 400,
              "TIDE_INVALID_JSON" },
            { vec(384, function(i) return i == 2 and "NaN" or "1" end), 400, "TIDE_INVALID_JSON" },
            { vec(384, function(i) return i == 2 and "Infinity" or "1" end), 400,
              "TIDE_INVALID_JSON" },
            { vec(384, function(i) return i == 2 and "01" or "1" end), 400, "TIDE_INVALID_JSON" },
            { vec(384, function(i) return i == 2 and "" or "1" end), 400, "TIDE_INVALID_JSON" },
            { vec(384, function(i) return i == 2 and "0x10" or "1" end), 400, "TIDE_INVALID_JSON" },
            { '{"a":1}', 400, "TIDE_INVALID_EMBEDDING" },
        }
        for n, c in ipairs(cases) do
            local status, code = post('{"embedding":' .. c[1] .. ',"limit":3}')
            assert.are.same({ n, c[2], c[3] }, { n, status, code })
        end
        local others = {
            { '{"limit":3}', 400, "TIDE_INVALID_EMBEDDING" },
            { '{"embedding":' .. good .. ',"limit":0}', 422, "TIDE_VALIDATION" },
            { '{"embedding":' .. good .. ',"limit":1e400}', 400, "TIDE_INVALID_JSON" },
            { '{"embedding":' .. good .. ',"bogus":1}', 422, "TIDE_VALIDATION" },
            { '{"embedding":' .. good .. ',"limit":3', 400, "TIDE_INVALID_JSON" },
            { '{"embedding":' .. good .. '} x', 400, "TIDE_INVALID_JSON" },
            { '{"o":{"embedding":' .. good .. '}}', 400, "TIDE_INVALID_EMBEDDING" },
            { '{"embedding":' .. good .. ',"t":' .. string.rep("[", 70) .. string.rep("]", 70) ..
              '}', 400, "TIDE_JSON_TOO_DEEP" },
            { '[' .. good .. ']', 400, "TIDE_INVALID_EMBEDDING" },
            { '"embedding"', 422, "TIDE_VALIDATION" },
        }
        for n, c in ipairs(others) do
            local status, code = post(c[1])
            assert.are.same({ n, c[2], c[3] }, { n, status, code })
        end
        local status, code = post('{"embedding":' .. good .. '}', "text/plain")
        assert.are.same({ 415, "TIDE_UNSUPPORTED_MEDIA_TYPE" }, { status, code })
        status, code = post(nil)
        assert.are.same({ 400, "TIDE_BODY_REQUIRED" }, { status, code })
    end)

    it("takes the key however it is spelled, and one embedding only", function()
        local good = vec(384)
        -- an escaped key is the same key: decoded, encoded again
        local status, _, param = post('{"\\u0065mbedding":' .. good .. '}')
        assert.are.equal(200, status)
        assert.are.same(json.decode(good), json.decode(param))
        -- a repeated key: the last one counts, as when decoding
        status, _, param = post('{"embedding":' .. vec(384, function() return "1" end) ..
                                ',"embedding":' .. good .. '}')
        assert.are.equal(200, status)
        assert.are.same(json.decode(good), json.decode(param))
        status = post('{"embedding":' .. good .. ',"embedding":[1]}')
        assert.are.equal(400, status)
    end)
end)
