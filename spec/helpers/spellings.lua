-- spec/helpers/spellings.lua - random spellings of one key value that Postgres reads as equal
-- (shared by spec/unit/cachetags_property_spec.lua and spec/integration/cache_keys_spec.lua,
-- which asks Postgres itself that they are equal). rnd is math.random after seeding.
--
--   spellings.int(rnd)          -> canonical text (what int8out prints), a random one of -10^18 <
--                                  v < 10^18 (small ones, zero and the int2 bounds often)
--   spellings.int_spelling(rnd, c) -> text int2/4/8in read as c: leading and trailing white space
--                                  (the six bytes isspace() knows), a sign ('+' or '-' on zero),
--                                  leading zeros
--   spellings.uuid(rnd)         -> canonical text (lower case, 8-4-4-4-12)
--   spellings.uuid_spelling(rnd, c) -> text uuid_in reads as c: any case, hyphens after any
--                                  group of four digits or none, braces
--   spellings.odd_int(rnd, c)   -> text Postgres 16+ reads as c but tide does not canonicalise
--                                  (hexadecimal 0x.., digits grouped with '_')

local _M = {}

local SPACE = { " ", "\t", "\n", "\r", "\f", "\v" }

local function spaces(rnd)
    local n = rnd(0, 3)
    local out = {}
    for i = 1, n do out[i] = SPACE[rnd(#SPACE)] end
    return table.concat(out)
end

function _M.int(rnd)
    local r = rnd(8)
    if r == 1 then
        return "0"
    elseif r == 2 then
        return ({ "32767", "-32768", "2147483647", "-2147483648", "1", "-1" })[rnd(6)]
    elseif r <= 5 then
        return tostring(rnd(-100000, 100000))
    end
    local digits = { tostring(rnd(1, 9)) }
    for i = 2, rnd(1, 18) do digits[i] = tostring(rnd(0, 9)) end
    return (rnd(2) == 1 and "-" or "") .. table.concat(digits)
end

function _M.int_spelling(rnd, c)
    local neg = c:sub(1, 1) == "-"
    local mag = neg and c:sub(2) or c
    local sign
    if neg then
        sign = "-"
    elseif mag == "0" then
        sign = ({ "", "+", "-" })[rnd(3)]
    else
        sign = rnd(2) == 1 and "+" or ""
    end
    return spaces(rnd) .. sign .. string.rep("0", rnd(0, 2) == 0 and 0 or rnd(1, 6)) .. mag ..
           spaces(rnd)
end

function _M.uuid(rnd)
    local hex = {}
    for i = 1, 32 do hex[i] = string.format("%x", rnd(0, 15)) end
    local h = table.concat(hex)
    return h:sub(1, 8) .. "-" .. h:sub(9, 12) .. "-" .. h:sub(13, 16) .. "-" .. h:sub(17, 20) ..
           "-" .. h:sub(21, 32)
end

function _M.uuid_spelling(rnd, c)
    local hex = c:gsub("%-", "")
    local style = rnd(4)
    local out = {}
    for i = 1, 32 do
        local ch = hex:sub(i, i)
        if style == 2 or (style == 3 and rnd(2) == 1) then ch = ch:upper() end
        out[#out + 1] = ch
        if i % 4 == 0 and i < 32 then
            local hy = rnd(4)
            if hy == 1 or (hy == 2 and (i == 8 or i == 12 or i == 16 or i == 20)) then
                out[#out + 1] = "-"
            end
        end
    end
    local s = table.concat(out)
    if rnd(4) == 1 then s = "{" .. s .. "}" end
    return s
end

function _M.odd_int(rnd, c)
    local neg = c:sub(1, 1) == "-"
    local mag = neg and c:sub(2) or c
    if #mag > 1 and (rnd(2) == 1 or #mag > 9) then
        local cut = rnd(1, #mag - 1)
        return (neg and "-" or "") .. mag:sub(1, cut) .. "_" .. mag:sub(cut + 1)
    end
    return (neg and "-" or "") .. string.format("0x%x", tonumber(mag))   -- below 10^9
end

return _M
