-- spec/helpers/jwt.lua - builds JWTs for the auth specs, including deliberately broken ones
-- (expired, wrong key, alg none, foreign role). Pure LuaJIT: SHA-256 and HMAC on the `bit`
-- library, base64url, and cjson for the JSON parts. Test code only; never used by tide.

local bit = require "bit"
local cjson = require "cjson"

local band, bor, bxor, bnot = bit.band, bit.bor, bit.bxor, bit.bnot
local rshift, lshift, ror, tobit = bit.rshift, bit.lshift, bit.ror, bit.tobit
local byte, char, rep, concat = string.byte, string.char, string.rep, table.concat

local _M = {}

local K = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

local function be32(n)
    return char(band(rshift(n, 24), 0xff), band(rshift(n, 16), 0xff),
                band(rshift(n, 8), 0xff), band(n, 0xff))
end

-- Raw 32-byte SHA-256 digest of s.
function _M.sha256(s)
    local len = #s
    -- Padding: 0x80, zeros, 64-bit big-endian bit length (messages here are far below 2^32 bits).
    s = s .. "\128" .. rep("\0", (55 - len) % 64) .. be32(0) .. be32(len * 8)
    local h0, h1, h2, h3 = 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a
    local h4, h5, h6, h7 = 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
    local w = {}
    for chunk = 1, #s, 64 do
        for i = 0, 15 do
            local a, b, c, d = byte(s, chunk + i * 4, chunk + i * 4 + 3)
            w[i] = bor(lshift(a, 24), lshift(b, 16), lshift(c, 8), d)
        end
        for i = 16, 63 do
            local x, y = w[i - 15], w[i - 2]
            local s0 = bxor(ror(x, 7), ror(x, 18), rshift(x, 3))
            local s1 = bxor(ror(y, 17), ror(y, 19), rshift(y, 10))
            w[i] = tobit(w[i - 16] + s0 + w[i - 7] + s1)
        end
        local a, b, c, d, e, f, g, h = h0, h1, h2, h3, h4, h5, h6, h7
        for i = 0, 63 do
            local S1 = bxor(ror(e, 6), ror(e, 11), ror(e, 25))
            local ch = bxor(band(e, f), band(bnot(e), g))
            local t1 = tobit(h + S1 + ch + K[i + 1] + w[i])
            local S0 = bxor(ror(a, 2), ror(a, 13), ror(a, 22))
            local maj = bxor(band(a, b), band(a, c), band(b, c))
            local t2 = tobit(S0 + maj)
            h, g, f, e = g, f, e, tobit(d + t1)
            d, c, b, a = c, b, a, tobit(t1 + t2)
        end
        h0, h1, h2, h3 = tobit(h0 + a), tobit(h1 + b), tobit(h2 + c), tobit(h3 + d)
        h4, h5, h6, h7 = tobit(h4 + e), tobit(h5 + f), tobit(h6 + g), tobit(h7 + h)
    end
    return concat { be32(h0), be32(h1), be32(h2), be32(h3), be32(h4), be32(h5), be32(h6), be32(h7) }
end

function _M.hex(s)
    return (s:gsub(".", function(c) return string.format("%02x", byte(c)) end))
end

function _M.hmac_sha256(key, msg)
    if #key > 64 then key = _M.sha256(key) end
    key = key .. rep("\0", 64 - #key)
    local ipad, opad = {}, {}
    for i = 1, 64 do
        local k = byte(key, i)
        ipad[i] = char(bxor(k, 0x36))
        opad[i] = char(bxor(k, 0x5c))
    end
    return _M.sha256(concat(opad) .. _M.sha256(concat(ipad) .. msg))
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

-- base64url without padding (RFC 7515).
function _M.b64url(s)
    local out = {}
    for i = 1, #s, 3 do
        local a, b, c = byte(s, i, i + 2)
        local n = lshift(a, 16) + lshift(b or 0, 8) + (c or 0)
        local chars = 2 + (b and 1 or 0) + (c and 1 or 0)
        for j = 1, chars do
            local idx = band(rshift(n, 6 * (4 - j)), 63)
            out[#out + 1] = B64:sub(idx + 1, idx + 1)
        end
    end
    return concat(out)
end

-- Decodes unpadded base64url (for reading a token's payload in a spec).
function _M.b64url_decode(s)
    local out, bits, nbits = {}, 0, 0
    for i = 1, #s do
        local v = B64:find(s:sub(i, i), 1, true)
        assert(v, "not base64url: " .. s)
        bits = bor(lshift(band(bits, 0xffff), 6), v - 1)
        nbits = nbits + 6
        if nbits >= 8 then
            nbits = nbits - 8
            out[#out + 1] = char(band(rshift(bits, nbits), 0xff))
        end
    end
    return concat(out)
end

-- A compact JWS. The claims are signed as given: tide refuses a token without exp unless
-- jwt.require_exp is false, so a spec that leaves exp out does it to test exactly that.
-- opts.alg (default "HS256"; "none" leaves the signature empty), opts.header (extra/override
-- header fields), opts.secret (for HS256).
function _M.sign(claims, opts)
    opts = opts or {}
    local header = { alg = opts.alg or "HS256", typ = "JWT" }
    for k, v in pairs(opts.header or {}) do header[k] = v end
    local input = _M.b64url(cjson.encode(header)) .. "." .. _M.b64url(cjson.encode(claims))
    if header.alg == "none" or opts.alg == "none" then
        return input .. "."
    end
    return input .. "." .. _M.b64url(_M.hmac_sha256(assert(opts.secret, "secret"), input))
end

return _M
