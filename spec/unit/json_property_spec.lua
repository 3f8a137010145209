-- spec/unit/json_property_spec.lua - randomized property test of tide.json.decode, the decoder
-- every request body goes through. A seeded generator builds random documents as text together
-- with the value the text means (duplicate keys resolved as JSON parsers do: the last wins),
-- with what trips a text scanner: empty [] and {} everywhere, brackets, quotes, commas and runs
-- of backslashes inside strings and keys, odd whitespace, deep nesting. Properties:
--   * decode(text) is the meant value, with every empty array (and only those) tagged
--     json.array_mt, so encode(decode(text)) == encode(meant) as well;
--   * with a depth limit, texts nested deeper are refused with "depth" and others decode.
-- The seed is printed on failure, so a failing case can be replayed (TIDE_JSON_SEED=n).

local json = require "tide.json"

local SEED = tonumber(os.getenv("TIDE_JSON_SEED") or "") or os.time()
local CASES = 400

local rnd -- set per run: math.random after seeding

local STR_PIECES = { "a", "b", "[", "]", "{", "}", ",", ":", " ", "\\", "\"", "[]", "{}", "é",
                     "\\\\", "\n", "\t", "\\]", "x\\\"y" }
local WS = { "", "", "", " ", "\n", "\t", "  ", "\r\n " }

local function ws()
    return WS[rnd(#WS)]
end

local function rand_string()
    local parts = {}
    for i = 1, rnd(0, 6) do
        parts[i] = STR_PIECES[rnd(#STR_PIECES)]
    end
    return table.concat(parts)
end

-- Text for a Lua string, escaped differently from json.encode at random (\u escapes, \/).
local function string_text(s)
    local out = { '"' }
    for ch in s:gmatch("[%z\1-\127\194-\244][\128-\191]*") do
        if ch == '"' then
            out[#out + 1] = '\\"'
        elseif ch == "\\" then
            out[#out + 1] = rnd(2) == 1 and "\\\\" or "\\u005c"
        elseif ch == "\n" then
            out[#out + 1] = "\\n"
        elseif ch == "\t" then
            out[#out + 1] = rnd(2) == 1 and "\\t" or "\\u0009"
        elseif ch == "[" and rnd(3) == 1 then
            out[#out + 1] = "\\u005b"
        else
            out[#out + 1] = ch
        end
    end
    out[#out + 1] = '"'
    return table.concat(out)
end

local gen

-- Returns text, meant value. The meant value uses json.array_mt for arrays (empty or not) so
-- encode() writes it unambiguously.
local function gen_array(depth)
    local n = rnd(0, depth > 6 and 1 or 4)
    if n == 0 then
        return "[" .. ws() .. "]", setmetatable({}, json.array_mt)
    end
    local texts, vals = {}, setmetatable({}, json.array_mt)
    for i = 1, n do
        texts[i], vals[i] = gen(depth + 1)
        texts[i] = ws() .. texts[i] .. ws()
    end
    return "[" .. table.concat(texts, ",") .. "]", vals
end

local function gen_object(depth)
    local n = rnd(0, depth > 6 and 1 or 4)
    if n == 0 then
        return "{" .. ws() .. "}", {}
    end
    local texts, val = {}, {}
    local keys = {}
    for i = 1, n do
        local k
        if i > 1 and rnd(3) == 1 then
            k = keys[rnd(#keys)]            -- a duplicate key: the later one wins
        else
            k = rand_string()
        end
        keys[#keys + 1] = k
        local vt, vv = gen(depth + 1)
        texts[i] = ws() .. string_text(k) .. ws() .. ":" .. ws() .. vt .. ws()
        val[k] = vv
    end
    return "{" .. table.concat(texts, ",") .. "}", val
end

gen = function(depth)
    local r = rnd(depth > 8 and 4 or 7)
    if r == 1 then
        local str = rand_string()
        return string_text(str), str
    elseif r == 2 then
        local x = rnd(-1000, 1000)
        return tostring(x), x
    elseif r == 3 then
        local lit = ({ "true", "false", "null" })[rnd(3)]
        return lit, ({ ["true"] = true, ["false"] = false, null = json.null })[lit]
    elseif r == 4 then
        return string_text("[]"), "[]"
    elseif r <= 6 then
        return gen_array(depth)
    end
    return gen_object(depth)
end

-- Structural comparison that also requires empty tables to agree on being arrays.
local function same(a, b, path)
    if type(a) ~= type(b) then
        return false, path .. ": " .. type(a) .. " vs " .. type(b)
    end
    if type(a) ~= "table" then
        return a == b, path .. ": " .. tostring(a) .. " vs " .. tostring(b)
    end
    local a_arr = getmetatable(a) == json.array_mt
    local b_arr = getmetatable(b) == json.array_mt
    if next(a) == nil or next(b) == nil then
        if (next(a) == nil) ~= (next(b) == nil) then
            return false, path .. ": one side is empty"
        end
        return a_arr == b_arr, path .. ": empty array vs empty object"
    end
    for k, v in pairs(a) do
        local ok, why = same(v, b[k], path .. "." .. tostring(k))
        if not ok then
            return false, why
        end
    end
    for k in pairs(b) do
        if a[k] == nil then
            return false, path .. "." .. tostring(k) .. ": missing"
        end
    end
    return true
end

describe("tide.json.decode (randomized, seed " .. SEED .. ")", function()
    it("decodes what the text means, tagging exactly the empty arrays", function()
        math.randomseed(SEED)
        rnd = math.random
        for case = 1, CASES do
            local text, meant = gen(0)
            local got, err = json.decode(text)
            assert(got ~= nil, ("seed %d case %d: %s\n%s"):format(SEED, case, tostring(err and err.message), text))
            local ok, why = same(got, meant, "$")
            if not ok then
                error(("seed %d case %d: %s\n%s"):format(SEED, case, why, text))
            end
            assert.are.equal(json.encode(meant), json.encode(got))
        end
    end)

    it("refuses texts nested deeper than the limit and decodes the rest", function()
        math.randomseed(SEED + 1)
        rnd = math.random
        for case = 1, 100 do
            local depth = rnd(1, 80)
            local open, close = {}, {}
            for i = 1, depth do
                local arr = rnd(2) == 1
                open[i] = arr and "[" or '{"k' .. i .. '":'
                close[depth - i + 1] = arr and "]" or "}"
            end
            local text = table.concat(open) .. "1" .. table.concat(close)
            local v, err = json.decode(text, 64)
            if depth > 64 then
                assert(v == nil and err.code == "TIDE_JSON_TOO_DEEP",
                       ("seed %d case %d: depth %d was accepted"):format(SEED, case, depth))
                assert.matches("64", err.message, nil, true)
            else
                assert(v ~= nil, ("seed %d case %d: depth %d: %s"):format(SEED, case, depth,
                                                                          tostring(err and err.message)))
            end
        end
    end)
end)
