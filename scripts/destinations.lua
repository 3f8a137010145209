-- scripts/destinations.lua - the public destination catalogue: most popular, and nearest by
-- embedding (cosine similarity). Open to anon as well as signed-in users (the table is
-- readable by anon; RLS lets everyone read it).
--
-- Similar search calls the schema's public.match_destinations() through db.rpc rather than
-- db.vector_search: the function raises hnsw.ef_search (transaction-local) to the requested
-- count, without which an HNSW scan returns at most 40 rows and limit=100 would silently
-- give 40; it applies the threshold after the KNN (so the index scan stays an index scan)
-- and computes similarity = 1 - cosine distance. One definition then serves both /v1 and
-- PostgREST clients (/rest/v1/rpc/match_destinations).
-- The embedding is checked here, so a bad vector is a 400 TIDE_INVALID_EMBEDDING naming the
-- position (0-based, as in the JSON) instead of a Postgres error from the vector input
-- function. The route decodes its own body (http.raw_body): in the common case the 384
-- numbers are checked in their text and sent as the client wrote them, never converted (see
-- read_body).

local db = require "tide.db"
local http = require "tide.http"
local json = require "tide.json"
local common = require "_common"

local type, pairs, tostring, next, getmetatable = type, pairs, tostring, next, getmetatable
local find, sub = string.find, string.sub
local decode_body, numbers_ok, array_mt = http.decode_body, json.numbers_ok, json.array_mt
local huge = math.huge

local DIMENSIONS = 384
local POPULAR_DEFAULT = 10
local SIMILAR_DEFAULT = 10
-- Never the embedding itself: 384 floats per row are a lot of bytes nobody asked for.
local COLUMNS = "id,name,country,description,popularity"

local SIMILAR = {
    embedding = { type = "array", required = true },
    limit     = { type = "integer", min = 1, max = common.MAX_LIMIT },
    threshold = { type = "number", min = -1, max = 1 },
}

local function bad_embedding(message, position)
    return nil, http.error(400, "TIDE_INVALID_EMBEDDING", message,
                           { field = "embedding", position = position })
end

-- Returns v when it is an array of DIMENSIONS finite numbers, else nil, err.
local function check_embedding(v)
    if type(v) ~= "table" then
        return bad_embedding("embedding must be an array of " .. DIMENSIONS .. " numbers")
    end
    local n = 0
    for k in pairs(v) do
        if type(k) ~= "number" then
            return bad_embedding("embedding must be an array, not an object")
        end
        n = n + 1
    end
    if n ~= DIMENSIONS or #v ~= n then
        return bad_embedding("embedding must have " .. DIMENSIONS .. " elements, got " .. n)
    end
    for i = 1, n do
        local x = v[i]
        -- Finite only: 1e400 decodes to inf, which Postgres' vector type refuses.
        if type(x) ~= "number" or x ~= x or x == huge or x == -huge then
            return bad_embedding("embedding[" .. (i - 1) .. "] must be a finite number, got " ..
                                 (type(x) == "number" and tostring(x) or type(x)), i - 1)
        end
    end
    return v
end

-- The embedding as the client wrote it, to send to Postgres as it is (pgvector reads the JSON
-- array text): encoding 384 numbers again in Lua cost more than the rest of the request. Called
-- only after the body was decoded and validated (SIMILAR refuses unknown keys, check_embedding
-- wants a flat array of finite numbers), so the body holds no string but its three keys, and
-- the array between "embedding": [ and the first ] holds nothing but numbers, commas and
-- blanks - which is why no character of it needs checking here (that scan, 13 ns a byte in
-- Lua's matcher, was half of the request's Lua time). Only when it is unambiguous: the key
-- occurs once and literally (an escaped or repeated one: nil, and the caller encodes).
local function embedding_text(raw)
    if type(raw) ~= "string" then return nil end
    local s, e = find(raw, '"embedding"%s*:%s*%[')
    if not s or find(raw, '"embedding"', e, true) then return nil end
    local close, inner = find(raw, "]", e, true), find(raw, "[", e + 1, true)
    if not close or (inner and inner < close) then return nil end
    return sub(raw, e, close)
end

-- Returns the body (nil: none) and the embedding's text to send (nil: encode the decoded one),
-- or nil, nil, err. The common case - the key
-- "embedding" once and literally, holding a JSON array of DIMENSIONS numbers that are
-- certainly finite (json.numbers_ok), no backslash anywhere - decodes the body with that
-- array emptied ("[]" in its place), so its numbers are never converted (decoding them, one
-- strtod each, was most of the request's Lua time), and the array's text is what Postgres
-- gets. Anything else decodes the whole body as tide.boot would (http.decode_body) and checks
-- the embedding element by element. Both ways accept and refuse alike: the emptied array is a
-- JSON value where the full one was, the brackets, depth and every other number are the
-- same, and the key being the top-level one is checked on the decoded body.
local function read_body(raw)
    if type(raw) ~= "string" or raw == "" then
        return nil                     -- no body: the schema check says it is required
    end
    if not find(raw, "\\", 1, true) then
        local s, e = find(raw, '"embedding"%s*:%s*%[')
        if s and find(raw, '"embedding"', 1, true) == s and not find(raw, '"embedding"', e, true) then
            local close = find(raw, "]", e, true)
            if close and numbers_ok(raw, DIMENSIONS, e, close) then
                local body = decode_body(sub(raw, 1, e) .. sub(raw, close))
                local v = type(body) == "table" and body.embedding
                if type(v) == "table" and getmetatable(v) == array_mt and next(v) == nil then
                    return body, sub(raw, e, close)
                end
            end
        end
    end
    local body, err = decode_body(raw)
    if body == nil then return nil, nil, err end
    if type(body) == "table" then
        -- Before the schema check: a wrong embedding is a 400 with its own code.
        local ok, e = check_embedding(body.embedding)
        if not ok then return nil, nil, e end
    end
    return body, embedding_text(raw)
end

local function popular(req)
    local page, e = common.page(req.query, POPULAR_DEFAULT)
    if not page then return nil, e end
    local res, err = db.select("destinations", {
        columns = COLUMNS, order = "-popularity,id", limit = page.limit, offset = page.offset,
        raw = true,
    })
    if not res then return nil, err end
    return res
end

local function similar(req)
    local body, text, berr = read_body(req.raw_body)
    if berr then return nil, berr end
    req.body = body
    local ask, e = common.body(req, SIMILAR)
    if not ask then return nil, e end

    local rows, err = db.rpc("match_destinations", {
        -- pgvector's text form is the JSON array text: sent as one text parameter.
        query_embedding = text or json.encode(ask.embedding),
        match_count = ask.limit or SIMILAR_DEFAULT,
        match_threshold = ask.threshold or 0,
    }, { raw = true })           -- Postgres' JSON for the rows, passed through
    if not rows then return nil, err end
    return rows
end

return {
    ["GET /v1/destinations/popular"] = popular,
    ["POST /v1/destinations/similar"] = http.raw_body(similar),
}
