-- tide/json.lua - JSON for tide: decode on lua-cjson, encode in Lua with cjson's C string
-- escaper. lua-cjson here is plain 2.1.0 (no empty_array / array_mt), so this module adds the
-- two things tide needs on top of it:
--   * empty JSON arrays survive a round trip: decode tags them with json.array_mt, and encode
--     writes a table carrying json.array_mt as an array even when it is empty;
--   * json.raw(text) fragments (Postgres' own JSON, passed through untouched) are written
--     verbatim by encode.
--
-- decode(text[, max_depth[, max_containers]])
--                   -> value | nil, err       err is an error table (tide.errors), status 400:
--                                         TIDE_INVALID_JSON for invalid JSON and NaN/Infinity
--                                         tokens, TIDE_JSON_TOO_DEEP for nesting deeper than
--                                         max_depth (default 1000) levels, TIDE_JSON_TOO_LARGE
--                                         for more than max_containers "[" and "{" characters
--                                         (default: no limit; brackets inside strings count
--                                         too, which keeps the check a few fast searches);
--                                         errors, not throws (a non-string text is misuse). Time
--                                         and extra memory are linear in #text (cjson, then
--                                         one pass that tags empty arrays). Empty arrays carry
--                                         json.array_mt. JSON null
--                                         decodes to json.null. Integers beyond 2^53 lose
--                                         precision (Lua numbers are doubles); numbers beyond
--                                         the double range become +-inf (all_finite(v) checks).
-- all_finite(v)     -> bool               false if a number in v is infinite or NaN
-- numbers_ok(text, n[, i[, j]]) -> bool   true when text (or text[i..j]) is a JSON array of
--                                         exactly n numbers that are certainly finite as
--                                         doubles, read byte by byte without converting one
--                                         (no strtod). false: not such an array, or a number
--                                         whose magnitude may reach 1e308 or whose exponent
--                                         has more than 4 digits - decode to know for sure.
-- encode(value)     -> string             raises on values JSON cannot carry (see below).
-- null              the null sentinel (== cjson.null == tide.core's null, lightuserdata NULL)
-- array(t)          sets json.array_mt on t (returns t; a json.raw fragment is returned as is)
-- raw(text)         a fragment encode writes verbatim: {text = text} with json.raw_mt
-- is_raw(v)         true for json.raw fragments
-- is_array(t)       true for a table encode writes as a non-empty array or that carries
--                   json.array_mt (t must be a table)
-- array_mt, raw_mt  the metatables
--
-- encode rules:
--   * a table with json.array_mt -> array of t[1..#t] (other keys ignored, holes are an error);
--   * a plain table whose keys are exactly 1..n (n >= 1) -> array;
--   * an empty plain table -> {} ; any other table must have only string keys -> object.
--     Sparse arrays and mixed tables ({1, 2, x = 3}, {[5] = "a"}) are an error, never guessed;
--   * strings are escaped by cjson (C speed); "/" is left unescaped;
--   * integral numbers with |n| < 2^53 are written as integers ("%d", never an exponent);
--     other numbers use the first of %.14g / %.16g / %.17g that reads back exactly. NaN and
--     infinities are an error;
--   * json.null -> null; booleans; any other type (function, userdata, cdata) is an error;
--   * nesting deeper than 1000 levels is an error, which is also how a reference cycle ends.
-- Object keys are written in pairs() order (not sorted).

local cjson_base = require "cjson"
local errors = require "tide.errors"
local memo = require "tide.memo"

local cjson = cjson_base.new()        -- private instance: our settings do not leak to others
cjson.decode_invalid_numbers(false)   -- reject NaN, Infinity, hex numbers
cjson.decode_max_depth(1000)
cjson.encode_invalid_numbers(false)

local cjson_decode, cjson_encode = cjson.decode, cjson.encode
local type, pairs, next, pcall, tonumber = type, pairs, next, pcall, tonumber
local setmetatable, getmetatable = setmetatable, getmetatable
local byte, find, format, gsub, sub = string.byte, string.find, string.format, string.gsub,
    string.sub
local concat = table.concat
local huge = math.huge
local misuse, new_error = errors.misuse, errors.new
local memo_put = memo.put

-- Reading a number back to check that "%.14g" was exact: C's strtod through the FFI costs about
-- a third of tonumber() (this check dominates encoding float-heavy data such as embeddings).
local reads_back = function(s, x) return tonumber(s) == x end
do
    local ok, ffi = pcall(require, "ffi")
    if ok then
        -- pcall: a second load of this module (or another module) may have declared it already
        pcall(ffi.cdef, "double strtod(const char *nptr, char **endptr);")
        local found, strtod = pcall(function() return ffi.C.strtod end)
        if found then
            reads_back = function(s, x) return strtod(s, nil) == x end
        end
    end
end

local MAX_DEPTH = 1000
local MAX_SAFE_INT = 9007199254740992   -- 2^53

local _M = {}

local null = cjson_base.null
local array_mt = { __name = "tide.json.array" }
local raw_mt = { __name = "tide.json.raw" }

_M.null = null
_M.array_mt = array_mt
_M.raw_mt = raw_mt
_M.MAX_DEPTH = MAX_DEPTH

-- Marks t as a JSON array (kept as [] when empty). Returns t.
function _M.array(t)
    if t == nil then
        return setmetatable({}, array_mt)
    end
    if type(t) ~= "table" then
        misuse("json.array: expected a table, got " .. type(t))
    end
    local mt = getmetatable(t)
    if mt == raw_mt then
        return t            -- already JSON text; leave it alone
    end
    if mt ~= nil and mt ~= array_mt then
        misuse("json.array: the table already has a metatable")
    end
    return setmetatable(t, array_mt)
end

-- Returns a fragment that encode writes verbatim. The caller vouches that text is JSON.
function _M.raw(text)
    if type(text) ~= "string" then
        misuse("json.raw: expected a string, got " .. type(text))
    end
    return setmetatable({ text = text }, raw_mt)
end

function _M.is_raw(v)
    return type(v) == "table" and getmetatable(v) == raw_mt
end

-- True when t (a table) is a Lua array: it carries json.array_mt, or it has no metatable and
-- its keys are exactly 1..#t with #t >= 1.
function _M.is_array(t)
    local mt = getmetatable(t)
    if mt == array_mt then
        return true
    end
    if mt ~= nil then
        return false
    end
    local len = #t
    if len == 0 then
        return false
    end
    local count = 0
    for _ in pairs(t) do
        count = count + 1
    end
    return count == len
end

---------------------------------------------------------------------------------------------
-- decode

-- Index and byte of the first non-whitespace byte at or after i.
local function skip_ws(s, i)
    local c = byte(s, i)
    while c == 32 or c == 10 or c == 13 or c == 9 do
        i = i + 1
        c = byte(s, i)
    end
    return i, c
end

-- True when s contains "[" followed by optional JSON whitespace and "]" anywhere (possibly
-- inside a string: then the slow path runs for nothing, which is only slower, not wrong).
local function has_empty_array(s)
    local i = find(s, "[", 1, true)
    while i do
        local j, c = skip_ws(s, i + 1)
        if c == 93 then
            return true
        end
        i = find(s, "[", j, true)
    end
    return false
end

-- Tags the empty containers of root (decoded from s) in one pass over s that walks the decoded
-- tree alongside the text: every [] gets json.array_mt, every {} loses it. Time is linear in #s
-- and extra memory is linear in the nesting depth (a node and a key per open container).
-- Duplicate object keys: the walk descends into the value that won (cjson keeps the last one),
-- and because the winner's text comes after every loser's, the winner's own [] or {} is
-- applied last, so the result is what the winning text says.
local function tag_empty_arrays(s, root)
    local nodes, keys, arr = {}, {}, {}     -- per open container: its table, current key, kind
    local depth = 0
    local expect_key = false
    local len = #s
    local i = 1
    while i <= len do
        local c = byte(s, i)
        if c == 34 then                                     -- " a string: skip it
            local k = i
            repeat
                k = find(s, '"', k + 1, true)
                if k == nil then
                    return root     -- unterminated: cannot happen after cjson accepted s
                end
                local b = k - 1
                while byte(s, b) == 92 do
                    b = b - 1
                end
            until (k - 1 - b) % 2 == 0  -- not escaped: an even run of backslashes before it
            if expect_key then
                local key = sub(s, i + 1, k - 1)
                if find(key, "\\", 1, true) then
                    key = cjson_decode(sub(s, i, k))
                end
                keys[depth] = key
                expect_key = false
            end
            i = k + 1
        elseif c == 91 or c == 123 then                     -- [ {
            local node
            if depth == 0 then
                node = root
            else
                local parent = nodes[depth]
                if type(parent) == "table" then
                    node = parent[keys[depth]]
                end
            end
            local j, nc = skip_ws(s, i + 1)
            if nc == 93 or nc == 125 then                   -- empty: ] or }
                if type(node) == "table" and next(node) == nil then
                    setmetatable(node, c == 91 and array_mt or nil)
                end
                i = j + 1
            else
                depth = depth + 1
                nodes[depth] = node
                if c == 91 then
                    arr[depth] = true
                    keys[depth] = 1
                else
                    arr[depth] = false
                    expect_key = true
                end
                i = j
            end
        elseif c == 44 then                                 -- ,
            if arr[depth] then
                keys[depth] = keys[depth] + 1
            else
                expect_key = true
            end
            i = i + 1
        elseif c == 93 or c == 125 then                     -- ] }
            nodes[depth] = nil
            depth = depth - 1
            i = i + 1
        else
            i = i + 1
        end
    end
    return root
end

-- True when no number inside v (a decoded value) is infinite. cjson turns numbers beyond the
-- double range (1e400) into +-inf; boot.handle rejects such request bodies with this check
-- (about 0.1 us per value, so results from Postgres are not checked).
function _M.all_finite(v)
    local tv = type(v)
    if tv == "number" then
        return v == v and v ~= huge and v ~= -huge
    elseif tv == "table" then
        for _, x in pairs(v) do
            local tx = type(x)
            if tx == "number" then
                if x ~= x or x == huge or x == -huge then
                    return false
                end
            elseif tx == "table" and not _M.all_finite(x) then
                return false
            end
        end
    end
    return true
end

-- numbers_ok: a byte-level reading of the JSON number grammar
--   -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
-- between "[", "," and "]" with JSON blanks (space, tab, CR, LF) between tokens. A number with
-- d integer digits and exponent x is below 10^(d + x), so d + x <= 308 is certainly finite
-- (a negative exponent only brings it nearer 0, which is finite too). LuaJIT compiles the loop:
-- about 1 ns a byte, against cjson's strtod per number.
local B_0, B_9, B_MINUS, B_PLUS, B_DOT = 48, 57, 45, 43, 46
local B_LOW_E, B_UP_E, B_COMMA, B_OPEN, B_CLOSE = 101, 69, 44, 91, 93
local FINITE_DIGITS = 308

local function blank(c)
    return c == 32 or c == 10 or c == 13 or c == 9
end

function _M.numbers_ok(s, n, i, j)
    i, j = i or 1, j or #s
    local k = i
    while k <= j and blank(byte(s, k)) do k = k + 1 end
    if k > j or byte(s, k) ~= B_OPEN then return false end
    k = k + 1
    while k <= j and blank(byte(s, k)) do k = k + 1 end
    local count = 0
    if k <= j and byte(s, k) == B_CLOSE then
        k = k + 1
    else
        while true do
            if k > j then return false end
            local c = byte(s, k)
            if c == B_MINUS then
                k = k + 1
                if k > j then return false end
                c = byte(s, k)
            end
            local digits
            if c == B_0 then
                k, digits = k + 1, 1
                c = k <= j and byte(s, k) or 0
                if c >= B_0 and c <= B_9 then return false end     -- a leading zero
            elseif c > B_0 and c <= B_9 then
                local start = k
                repeat
                    k = k + 1
                    c = k <= j and byte(s, k) or 0
                until c < B_0 or c > B_9
                digits = k - start
            else
                return false
            end
            if c == B_DOT then
                k = k + 1
                c = k <= j and byte(s, k) or 0
                if c < B_0 or c > B_9 then return false end
                repeat
                    k = k + 1
                    c = k <= j and byte(s, k) or 0
                until c < B_0 or c > B_9
            end
            if c == B_LOW_E or c == B_UP_E then
                k = k + 1
                c = k <= j and byte(s, k) or 0
                local positive = true
                if c == B_PLUS or c == B_MINUS then
                    positive = c == B_PLUS
                    k = k + 1
                    c = k <= j and byte(s, k) or 0
                end
                if c < B_0 or c > B_9 then return false end
                local x, start = 0, k
                repeat
                    x = x * 10 + (c - B_0)
                    k = k + 1
                    c = k <= j and byte(s, k) or 0
                until c < B_0 or c > B_9
                if k - start > 4 then return false end              -- decode to know
                if positive then digits = digits + x end
            end
            if digits > FINITE_DIGITS then return false end         -- may be infinite
            count = count + 1
            if count > n then return false end
            while k <= j and blank(byte(s, k)) do k = k + 1 end
            if k > j then return false end
            c = byte(s, k)
            k = k + 1
            if c == B_CLOSE then
                break
            elseif c ~= B_COMMA then
                return false
            end
            while k <= j and blank(byte(s, k)) do k = k + 1 end
        end
    end
    while k <= j and blank(byte(s, k)) do k = k + 1 end
    return k > j and count == n
end

-- A second cjson instance for callers that ask for a lower nesting limit (request bodies), so
-- the shared instance's limit never changes under another caller. Its limit is set lazily.
local cjson_limited = cjson_base.new()
cjson_limited.decode_invalid_numbers(false)
local limited_depth = nil

-- count plus the occurrences of the byte ch in s, searching no further once it passes n.
local function count_upto(s, ch, count, n)
    local i = find(s, ch, 1, true)
    while i and count <= n do
        count = count + 1
        i = find(s, ch, i + 1, true)
    end
    return count
end

-- True when s holds at most n "[" and "{" characters in all. Stops searching past n, so a
-- large s costs at most n + 2 plain searches (each at C speed).
local function few_brackets(s, n)
    local count = count_upto(s, "[", 0, n)
    return count <= n and count_upto(s, "{", count, n) <= n
end

-- Decodes JSON text. max_depth (optional, 1..1000, default 1000) bounds the nesting and
-- max_containers (optional) the number of arrays and objects, checked before anything is
-- built: what a decoded text can cost in memory is then about 10x its size at most, rather than
-- about 35x for a text of nothing but empty arrays. Returns the value, or nil and an error
-- table whose code says which limit failed, if one did (see the header).
function _M.decode(s, max_depth, max_containers)
    if type(s) ~= "string" then
        misuse("json.decode: expected a string, got " .. type(s))
    end
    if max_containers ~= nil and not few_brackets(s, max_containers) then
        return nil, new_error("TIDE_JSON_TOO_LARGE", 400, "JSON with more than " ..
                              max_containers .. " arrays and objects")
    end
    local decode = cjson_decode
    if max_depth ~= nil and max_depth ~= MAX_DEPTH then
        if type(max_depth) ~= "number" or max_depth % 1 ~= 0 or max_depth < 1
           or max_depth > MAX_DEPTH then
            misuse("json.decode: max_depth must be an integer in 1.." .. MAX_DEPTH)
        end
        if limited_depth ~= max_depth then
            cjson_limited.decode_max_depth(max_depth)
            limited_depth = max_depth
        end
        decode = cjson_limited.decode
    end
    local ok, v = pcall(decode, s)
    if not ok then
        local msg = type(v) == "string" and v or "decode failed"
        if find(msg, "too many nested", 1, true) then
            return nil, new_error("TIDE_JSON_TOO_DEEP", 400, "JSON nested deeper than " ..
                                  (max_depth or MAX_DEPTH) .. " levels")
        end
        return nil, new_error("TIDE_INVALID_JSON", 400, "invalid JSON: " .. msg)
    end
    if type(v) == "table" and has_empty_array(s) then
        return tag_empty_arrays(s, v)
    end
    return v
end

---------------------------------------------------------------------------------------------
-- encode

-- The output buffer is shared by all calls (encode never yields and is not re-entered).
local buf = {}
local n = 0

-- Encoded object keys ('"name":'), bounded so that arbitrary client keys cannot grow it.
local key_memo = memo.new(4096)

local function encode_string(s)
    local e = cjson_encode(s)
    if find(s, "/", 1, true) then
        -- cjson writes "/" as "\/". Every "\" directly before "/" in cjson's output is that
        -- escape (a literal backslash is written "\\" and never followed by a bare "/").
        e = gsub(e, "\\/", "/")
    end
    return e
end

local function encode_key(k)
    local e = key_memo.map[k]
    if e == nil then
        e = memo_put(key_memo, k, encode_string(k) .. ":")
    end
    return e
end

local function x_is_plain_int(x)
    -- cjson prints integers below 1e14 exactly (%.14g); above that it switches to exponents.
    return x % 1 == 0 and x > -1e14 and x < 1e14
end

local function encode_number(x)
    if x ~= x or x == huge or x == -huge then
        misuse("json.encode: cannot encode NaN or infinity")
    end
    if x % 1 == 0 and x > -MAX_SAFE_INT and x < MAX_SAFE_INT then
        return format("%d", x)
    end
    local s = format("%.14g", x)
    if not reads_back(s, x) then
        s = format("%.16g", x)
        if not reads_back(s, x) then
            s = format("%.17g", x)
        end
    end
    return s
end

local encode_table

-- True when cjson.encode(v) writes exactly what this module would: only string keys or proper
-- sequences, no metatables (array_mt/raw_mt), no "/" in strings (cjson escapes it), numbers
-- that cjson's %.14g renders exactly, finite. One cjson call per row is ~3x faster than
-- encoding each value from Lua. depth bounds the check (cycles fall to the Lua path, which
-- reports them).
local function cjson_safe(v, depth)
    local tv = type(v)
    if tv == "string" then
        return not find(v, "/", 1, true)
    elseif tv == "number" then
        if x_is_plain_int(v) then
            return true
        end
        return v == v and v ~= huge and v ~= -huge and reads_back(format("%.14g", v), v)
    elseif tv == "boolean" or v == null then
        return true
    elseif tv ~= "table" or depth > 32 or getmetatable(v) ~= nil then
        return false
    end
    local len = #v
    local count = 0
    if len > 0 then
        for k, x in pairs(v) do
            count = count + 1
            if type(k) ~= "number" or k % 1 ~= 0 or k < 1 or k > len
               or not cjson_safe(x, depth + 1) then
                return false
            end
        end
        return count == len
    end
    for k, x in pairs(v) do
        if type(k) ~= "string" or not cjson_safe(x, depth + 1) then
            return false
        end
    end
    return true
end

local function encode_value(v, depth)
    local tv = type(v)
    if tv == "string" then
        n = n + 1
        buf[n] = encode_string(v)
    elseif tv == "number" then
        n = n + 1
        buf[n] = encode_number(v)
    elseif tv == "table" then
        encode_table(v, depth)
    elseif tv == "boolean" then
        n = n + 1
        buf[n] = v and "true" or "false"
    elseif v == null then
        n = n + 1
        buf[n] = "null"
    else
        misuse("json.encode: cannot encode a " .. tv)
    end
end

local function encode_array(t, len, depth)
    n = n + 1
    buf[n] = "["
    for i = 1, len do
        if i > 1 then
            n = n + 1
            buf[n] = ","
        end
        local v = t[i]
        if v == nil then
            misuse("json.encode: array has a hole at index " .. i)
        end
        encode_value(v, depth)
    end
    n = n + 1
    buf[n] = "]"
end

encode_table = function(t, depth)
    depth = depth + 1
    if depth > MAX_DEPTH then
        misuse("json.encode: nesting deeper than " .. MAX_DEPTH .. " levels (a reference cycle?)")
    end
    local mt = getmetatable(t)
    if mt == raw_mt then
        n = n + 1
        buf[n] = t.text
        return
    end
    local len = #t
    if mt == array_mt then
        return encode_array(t, len, depth)
    end
    if len > 0 then
        -- Keys must be exactly 1..len: count them (holes are caught by encode_array).
        local count = 0
        for _ in pairs(t) do
            count = count + 1
        end
        if count ~= len then
            misuse("json.encode: table mixes array and object keys or is a sparse array")
        end
        return encode_array(t, len, depth)
    end
    if depth + 32 < MAX_DEPTH and cjson_safe(t, 0) then
        n = n + 1
        buf[n] = cjson_encode(t)
        return
    end
    n = n + 1
    local open = n
    buf[n] = "{"
    for k, v in pairs(t) do
        if type(k) ~= "string" then
            misuse("json.encode: object key is a " .. type(k) ..
                   " (sparse arrays and non-string keys cannot be encoded)")
        end
        if n > open then
            n = n + 1
            buf[n] = ","
        end
        n = n + 1
        buf[n] = encode_key(k)
        encode_value(v, depth)
    end
    n = n + 1
    buf[n] = "}"
end

-- Encodes a Lua value as JSON text (rules at the top of this file).
function _M.encode(v)
    n = 0
    local tv = type(v)
    if tv == "string" then
        return encode_string(v)
    elseif tv == "table" then
        encode_table(v, 0)
    else
        encode_value(v, 0)
    end
    local s = concat(buf, "", 1, n)
    if n > 4096 then
        buf = {}    -- do not keep a huge buffer (and the strings it references) alive
    end
    return s
end

return _M
