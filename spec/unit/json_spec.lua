-- spec/unit/json_spec.lua - tide.json: decode keeps empty arrays, encode rules, raw fragments.

local json = require "tide.json"
local errors = require "tide.errors"

local function roundtrip(text)
    local v, err = json.decode(text)
    assert.is_nil(err)
    return json.encode(v)
end

describe("tide.json.decode", function()
    it("decodes objects, arrays, scalars and null", function()
        local v = json.decode('{"a":1,"b":"x","c":true,"d":null,"e":[1,2.5,"3"],"f":{"g":false}}')
        assert.are.equal(1, v.a)
        assert.are.equal("x", v.b)
        assert.is_true(v.c)
        assert.are.equal(json.null, v.d)
        assert.are.same({ 1, 2.5, "3" }, v.e)
        assert.is_false(v.f.g)
        assert.are.equal(json.null, json.decode("null"))
        assert.are.equal(42, json.decode("42"))
        assert.are.equal("s", json.decode('"s"'))
    end)

    it("keeps empty arrays as arrays and empty objects as objects", function()
        local v = json.decode('{"a":[],"b":{},"c":[1,[],{"d":[ \n ]}],"e":[{"x":[]},[]]}')
        assert.are.equal(json.array_mt, getmetatable(v.a))
        assert.is_nil(getmetatable(v.b))
        assert.are.equal(json.array_mt, getmetatable(v.c[2]))
        assert.are.equal(json.array_mt, getmetatable(v.c[3].d))
        assert.are.equal(json.array_mt, getmetatable(v.e[1].x))
        assert.are.equal(json.array_mt, getmetatable(v.e[2]))
        assert.are.equal('{"a":[]}', roundtrip('{"a":[]}'))
        assert.are.equal('{"b":{}}', roundtrip('{"b":{}}'))
        assert.are.equal("[]", roundtrip("[ ]"))
        assert.are.equal("[[],{}]", roundtrip("[[],{}]"))
    end)

    it("is not fooled by brackets inside strings or escaped quotes in keys", function()
        local v = json.decode('{"a\\"]":[],"s":"[]","t":"x\\\\","u":[]}')
        assert.are.equal(json.array_mt, getmetatable(v['a"]']))
        assert.are.equal("[]", v.s)
        assert.are.equal("x\\", v.t)
        assert.are.equal(json.array_mt, getmetatable(v.u))
        local w = json.decode('{"k":"[ ]","m":{}}')
        assert.are.equal("[ ]", w.k)
        assert.is_nil(getmetatable(w.m))
    end)

    it("resolves duplicate keys like cjson (the last one wins)", function()
        assert.are.equal('{"a":{}}', roundtrip('{"a":[],"a":{}}'))
        assert.are.equal('{"a":[]}', roundtrip('{"a":{},"a":[]}'))
        assert.are.equal('{"a":1}', roundtrip('{"a":[],"a":1}'))
    end)

    it("decodes unicode escapes and raw UTF-8", function()
        local v = json.decode('["\\u00e9", "日本", "\\ud83d\\ude00"]')
        assert.are.equal("é", v[1])
        assert.are.equal("日本", v[2])
        assert.are.equal("\240\159\152\128", v[3])
    end)

    it("returns nil and an error table (TIDE_INVALID_JSON, 400) instead of raising", function()
        for _, bad in ipairs { "", "[1,2", "{\"a\":}", "{'a':1}", "[1] x", "nan", "[NaN]",
                               "[Infinity]", "[0x10]", "{\"a\":1,}", "\"\\ud800\"" } do
            local v, err = json.decode(bad)
            assert.is_nil(v, bad)
            assert.is_true(errors.is_error(err), bad)
            assert.are.equal("TIDE_INVALID_JSON", err.code)
            assert.are.equal(400, err.status)
            assert.matches("^invalid JSON", err.message, nil, false)
        end
    end)

    it("limits nesting depth to 1000 levels", function()
        assert.is_table(json.decode(string.rep("[", 1000) .. string.rep("]", 1000)))
        local v, err = json.decode(string.rep("[", 1001) .. string.rep("]", 1001))
        assert.is_nil(v)
        assert.are.equal("TIDE_JSON_TOO_DEEP", err.code)
        assert.matches("nested deeper than 1000 levels", err.message, nil, true)
    end)

    it("takes a lower nesting limit and says by its code when it was the limit that failed",
       function()
        assert.is_table(json.decode(string.rep("[", 64) .. string.rep("]", 64), 64))
        local v, err = json.decode(string.rep("[", 65) .. string.rep("]", 65), 64)
        assert.is_nil(v)
        assert.are.same({ code = "TIDE_JSON_TOO_DEEP", status = 400,
                          message = "JSON nested deeper than 64 levels" },
                        { code = err.code, status = err.status, message = err.message })
        -- the lower limit applies to that call only
        assert.is_table(json.decode(string.rep("[", 65) .. string.rep("]", 65)))
        local _, err2 = json.decode("[1,", 64)
        assert.matches("^invalid JSON", err2.message)
        assert.are.equal("TIDE_INVALID_JSON", err2.code)
        assert.has_error(function() json.decode("[]", 0) end)
        assert.has_error(function() json.decode("[]", 1001) end)
        assert.has_error(function() json.decode("[]", 2.5) end)
    end)

    it("refuses more arrays and objects than asked for before building any", function()
        local v, err = json.decode("[" .. string.rep("[],", 10) .. "{}]", nil, 11)
        assert.is_nil(v)
        assert.are.equal("JSON with more than 11 arrays and objects", err.message)
        assert.are.equal("TIDE_JSON_TOO_LARGE", err.code)
        assert.are.equal(400, err.status)
        v = json.decode("[" .. string.rep("[],", 9) .. "{}]", nil, 11)
        assert.are.equal(10, #v)
        -- brackets inside strings count as well (an upper bound, cheap to check)
        assert.is_nil(json.decode('["[[[[", "{{{{"]', nil, 8))
        assert.is_table(json.decode('["[[[[", "{{{{"]', nil, 9))
    end)

    it("raises on a non-string argument (misuse)", function()
        assert.has_error(function() json.decode(nil) end)
        assert.has_error(function() json.decode({}) end)
    end)

    it("reports out-of-range numbers through all_finite", function()
        assert.is_false(json.all_finite(json.decode('{"a":[1e400]}')))
        assert.is_false(json.all_finite(json.decode("-1e999")))
        assert.is_true(json.all_finite(json.decode('{"a":[1e300, -2, "1e999"]}')))
    end)
end)

describe("tide.json.encode", function()
    it("encodes scalars", function()
        assert.are.equal("true", json.encode(true))
        assert.are.equal("false", json.encode(false))
        assert.are.equal("null", json.encode(json.null))
        assert.are.equal("12", json.encode(12))
        assert.are.equal("-3.5", json.encode(-3.5))
        assert.are.equal('"a\\"b\\\\c\\n\\u0001"', json.encode('a"b\\c\n\1'))
    end)

    it("writes integers below 2^53 without an exponent", function()
        assert.are.equal("1000000000000000", json.encode(1e15))
        assert.are.equal("9007199254740991", json.encode(2 ^ 53 - 1))
        assert.are.equal("-9007199254740991", json.encode(-(2 ^ 53 - 1)))
        assert.are.equal("[123456789012345]", json.encode({ 123456789012345 }))
        assert.are.equal("0", json.encode(-0.0))
    end)

    it("writes floats that read back exactly", function()
        for _, x in ipairs { 0.1, 1 / 3, 0.1 + 0.2, 1e-300, 1.7976931348623157e308, 2 ^ 60 + 0.0,
                             123.456 } do
            assert.are.equal(x, json.decode(json.encode(x)))
            assert.are.equal(x, json.decode(json.encode({ v = x })).v)
        end
        assert.are.equal("0.1", json.encode(0.1))
    end)

    it("refuses NaN and infinities", function()
        assert.has_error(function() json.encode(0 / 0) end)
        assert.has_error(function() json.encode({ x = math.huge }) end)
        assert.has_error(function() json.encode({ -math.huge }) end)
    end)

    it("encodes sequences as arrays and string-keyed tables as objects", function()
        assert.are.equal("[1,2,3]", json.encode({ 1, 2, 3 }))
        assert.are.equal('{"a":1}', json.encode({ a = 1 }))
        assert.are.equal('[{"a":[1,{"b":null}]}]', json.encode({ { a = { 1, { b = json.null } } } }))
    end)

    it("encodes an empty plain table as {} and an empty json.array as []", function()
        assert.are.equal("{}", json.encode({}))
        assert.are.equal("[]", json.encode(json.array({})))
        assert.are.equal("[]", json.encode(json.array()))
        assert.are.equal('{"tags":[]}', json.encode({ tags = json.array {} }))
    end)

    it("refuses sparse arrays and mixed tables", function()
        assert.has_error(function() json.encode({ 1, nil, 3 }) end)
        assert.has_error(function() json.encode({ [2] = "x" }) end)
        assert.has_error(function() json.encode({ 1, 2, x = 3 }) end)
        assert.has_error(function() json.encode({ [1.5] = 1 }) end)
    end)

    it("refuses reference cycles and unsupported types", function()
        local t = {}
        t.self = t
        assert.error_matches(function() json.encode(t) end, "cycle", nil, true)
        local a = {}
        a[1] = a
        assert.has_error(function() json.encode(a) end)
        assert.has_error(function() json.encode({ f = print }) end)
        assert.has_error(function() json.encode(coroutine.create(print)) end)
    end)

    it("blames the caller's line for misuse", function()
        -- (luassert strips positions from error messages, so look at pcall's result)
        local ok, err = pcall(function() json.encode({ x = 0 / 0 }) end)
        assert.is_false(ok)
        assert.matches("json_spec%.lua:%d+: json.encode: cannot encode NaN", err)
    end)

    it("writes json.raw fragments verbatim, at any depth", function()
        local raw = json.raw('[{"id":1}, \n {"id":2}]')
        assert.is_true(json.is_raw(raw))
        assert.is_false(json.is_raw({}))
        assert.are.equal('[{"id":1}, \n {"id":2}]', json.encode(raw))
        assert.are.equal('{"rows":[{"id":1}, \n {"id":2}]}', json.encode({ rows = raw }))
        assert.are.equal("[1,{}]", json.encode({ 1, json.raw("{}") }))
        assert.has_error(function() json.raw(12) end)
    end)

    it("json.array leaves raw fragments alone", function()
        local raw = json.raw("[1]")
        assert.are.equal(raw, json.array(raw))
        assert.is_true(json.is_raw(raw))
        assert.are.equal("[1]", json.encode(json.array(raw)))
    end)

    it("escapes strings and keys correctly (slashes unescaped, unicode kept)", function()
        local s = json.encode({ ['k"/\\'] = "a/b \\/ é\0" })
        assert.are.equal('{"k\\"/\\\\":"a/b \\\\/ é\\u0000"}', s)
        assert.are.same({ ['k"/\\'] = "a/b \\/ é\0" }, json.decode(s))
    end)

    it("round-trips a large list of flat rows", function()
        local rows = {}
        for i = 1, 500 do
            rows[i] = { id = i, name = "row " .. i, price = i + 0.25, ok = (i % 2 == 0),
                        url = "https://example.com/" .. i, gone = json.null, big = 2 ^ 52 + i,
                        tags = (i % 3 == 0) and json.array {} or { "a", "b" } }
        end
        local text = json.encode(rows)
        local back = json.decode(text)
        assert.are.equal(500, #back)
        for i = 1, 500 do
            local r, b = rows[i], back[i]
            assert.are.equal(r.id, b.id)
            assert.are.equal(r.name, b.name)
            assert.are.equal(r.price, b.price)
            assert.are.equal(r.ok, b.ok)
            assert.are.equal(r.url, b.url)
            assert.are.equal(json.null, b.gone)
            assert.are.equal(r.big, b.big)
            assert.are.equal(#r.tags, #b.tags)
        end
        assert.matches('"tags":[]', text, nil, true)
        assert.is_nil(text:find("\\/", 1, true))
        assert.are.same(back, json.decode(json.encode(back)))
    end)

    it("does not let a failed encode leak into the next one", function()
        assert.has_error(function() json.encode({ "a", { x = 0 / 0 } }) end)
        assert.are.equal('["b"]', json.encode({ "b" }))
    end)
end)

describe("tide.json.numbers_ok (a JSON array of n finite numbers, checked without converting)",
         function()
    local cjson = require "cjson"

    -- What decoding says: true when text is a JSON array of exactly n finite numbers.
    local function decoded_ok(text, n)
        local v = json.decode(text)
        if type(v) ~= "table" or #v ~= n then return false end
        for k, x in pairs(v) do
            if type(k) ~= "number" or type(x) ~= "number" or not json.all_finite(x) then
                return false
            end
        end
        return true
    end

    it("accepts JSON numbers in every spelling, blanks between tokens", function()
        assert.is_true(json.numbers_ok("[1,-2,0,-0,0.5,-0.25,1e5,1E+5,2.5e-3,-7E-07,123456789]",
                                       11))
        assert.is_true(json.numbers_ok(" [ 1 ,\n2\t,\r3 ] ", 3))
        assert.is_true(json.numbers_ok("[]", 0))
        assert.is_true(json.numbers_ok("[1e-400]", 1))          -- underflows to 0: finite
        assert.is_true(json.numbers_ok("[1e300]", 1))
        -- a part of a longer text
        local s = '{"a":[1,2],"b":3}'
        assert.is_true(json.numbers_ok(s, 2, 6, 10))
        assert.is_false(json.numbers_ok(s, 2, 6, 11))
    end)

    it("refuses what is not a JSON number or not n of them", function()
        for _, bad in ipairs { "[1,2]x", "[1,,2]", "[,1]", "[1,]", "[01]", "[-01]", "[1.]",
                               "[.5]", "[+1]", "[1e]", "[1e+]", "[1.5.2]", "[1e5e5]", "[1e5.5]",
                               "[--1]", "[-]", "[0x10]", "[NaN]", "[Infinity]", "[-Infinity]",
                               "[1 2]", '["1"]', "[null]", "[true]", "[[1]]", "[{}]", "1",
                               "[1", "1]", "", "[1\v]", "[1\0]", "[1e5-1]", "[1-1]",
                               "[1,2,3]" } do
            assert.is_false(json.numbers_ok(bad, 2), bad)
        end
        assert.is_false(json.numbers_ok("[1,2,3]", 2))
        assert.is_false(json.numbers_ok("[1]", 2))
    end)

    it("refuses (so the caller decodes) numbers that may not be finite", function()
        assert.is_false(json.numbers_ok("[1e400]", 1))
        assert.is_false(json.numbers_ok("[-1e309]", 1))
        assert.is_false(json.numbers_ok("[" .. string.rep("9", 400) .. "]", 1))
        assert.is_false(json.numbers_ok("[1e00000000000000000001]", 1))  -- long exponents
    end)

    it("never accepts what decoding refuses (randomized against lua-cjson)", function()
        local seed = tonumber(os.getenv("TIDE_SEED") or "") or os.time()
        math.randomseed(seed)
        local alphabet = { "0", "1", "9", "-", "+", ".", "e", "E", ",", " ", "]", "[", "x",
                           "00", "1e308", "1e309", "5" }
        for case = 1, 5000 do
            local parts = { "[" }
            for i = 2, math.random(1, 12) do
                parts[i] = alphabet[math.random(#alphabet)]
            end
            parts[#parts + 1] = "]"
            local text = table.concat(parts)
            local n = select(2, text:gsub(",", "")) + 1
            if json.numbers_ok(text, n) then
                assert(decoded_ok(text, n), ("seed %d case %d: %s"):format(seed, case, text))
                local ok, v = pcall(cjson.decode, text)
                assert(ok and #v == n, ("seed %d case %d: %s"):format(seed, case, text))
            end
        end
    end)
end)
