-- scripts/api_keys.lua - users' own keys for third-party services: save (upsert), list,
-- delete, and record a use.
--
-- Secrets: the key is stored only sealed (crypto.seal: AES-256-GCM with the configured key)
-- and bound to its row's (user_id, service_name, key_name), so a sealed key copied to another
-- row or another user does not open there; key_hash is a keyed HMAC-SHA256 of the key
-- (crypto.keyed_hash under HASH_LABEL), which finds duplicates but cannot be checked against
-- guessed keys without tide's key. `tide reseal` (runtime/reseal.c) builds the same context and
-- hash for rows sealed before this binding existed ("v1:"), which this module never opens.
-- Nothing that leaves this module carries the key, the ciphertext or the hash: every answer
-- goes through present(), a whitelist that adds `masked_key` ("****" and the last 4
-- characters, or just "****" for keys shorter than 12, whose tail would give away too much).
-- Listing opens each row (bounded by the page) to compute the tail; a row that does not open
-- (copied from another row, altered, a rotated config key, or an old v1 row not yet resealed)
-- shows masked_key null, and using it is a 409 TIDE_KEY_UNREADABLE: it must be saved again.
-- POST is an upsert on (user_id, service_name, key_name): saving the same name again replaces
-- the key, keeps the id and re-activates it; it answers 201 either way.
-- Keys are strictly per user (RLS): someone else's key id is a 404, never a 403.

local db = require "tide.db"
local crypto = require "tide.crypto"
local json = require "tide.json"
local http = require "tide.http"
local common = require "_common"

local type, ipairs, sub, lower = type, ipairs, string.sub, string.lower

local SAVE = {
    service_name = { type = "string", required = true, max_len = 50 },
    key_name     = { type = "string", required = true, max_len = 100 },
    api_key      = { type = "string", required = true, max_len = 4096 },
}
local TEXT = { "service_name", "key_name", "api_key" }      -- none of them may be blank

-- encrypted_key (and user_id, for its context) are read only to compute the masked tail;
-- present() drops them.
local COLUMNS = "id,user_id,service_name,key_name,encrypted_key,is_active,last_used_at,created_at"

-- What a sealed key is bound to. user_id in Postgres' spelling (lower case) whether it comes
-- from a row or from a token's sub. tide reseal builds the same list.
local function context(user_id, service_name, key_name)
    return { "api_keys", lower(user_id), service_name, key_name }
end

local HASH_LABEL = "tide api key hash v1"      -- tide reseal uses the same label

local function mask(plain)
    if type(plain) ~= "string" or #plain < 12 then
        return "****"
    end
    return "****" .. sub(plain, -4)
end

local null = json.null

local function nullable(v)
    if v == nil then return null end
    return v
end

local NO_KEY = http.error(500, "TIDE_CRYPTO", "no stored key", "malformed")

-- The stored key of row, or nil, err when it does not open (see crypto.open: err.details
-- says why).
local function open(row)
    if type(row.encrypted_key) ~= "string" then return nil, NO_KEY end
    return crypto.open(row.encrypted_key, context(row.user_id, row.service_name, row.key_name))
end

-- What a client may see of a stored key. plain is the key when the caller just sent it.
local function present(row, plain)
    if plain == nil then
        plain = open(row)
    end
    return {
        id = row.id,
        service_name = row.service_name,
        key_name = row.key_name,
        is_active = row.is_active,
        last_used_at = nullable(row.last_used_at),
        created_at = row.created_at,
        masked_key = plain and mask(plain) or null,
    }
end

local function save(req)
    local user, e = common.user(req)
    if not user then return nil, e end
    local key
    key, e = common.body(req, SAVE)
    if not key then return nil, e end
    key, e = common.check_blank(key, TEXT)
    if not key then return nil, e end

    local sealed, serr = crypto.seal(key.api_key, context(user, key.service_name, key.key_name))
    if not sealed then return nil, serr end
    local rows, err = db.upsert("api_keys", {
        user_id = user,
        service_name = key.service_name,
        key_name = key.key_name,
        encrypted_key = sealed,
        key_hash = crypto.keyed_hash(HASH_LABEL, key.api_key),
        is_active = true,
    }, { on_conflict = "user_id,service_name,key_name", columns = COLUMNS })
    if not rows then return nil, err end
    return present(rows[1], key.api_key), 201
end

local function list(req)
    local user, e = common.user(req)
    if not user then return nil, e end
    local page
    page, e = common.page(req.query)
    if not page then return nil, e end

    local rows, err = db.select("api_keys", {
        columns = COLUMNS, filters = { user_id = user }, order = "-created_at,-id",
        limit = page.limit, offset = page.offset,
    })
    if not rows then return nil, err end
    local out = {}
    for i, row in ipairs(rows) do
        out[i] = present(row)
    end
    return common.array(out)
end

local function delete(req)
    local user, e = common.user(req)
    if not user then return nil, e end
    local id
    id, e = common.uuid_id(req, "id")
    if not id then return nil, e end

    local rows, err = db.delete("api_keys", { filters = { id = id, user_id = user }, columns = "id" })
    if not rows then return nil, err end
    if not rows[1] then return nil, common.not_found("no such API key") end
    return common.no_content()
end

local NOT_YOURS = http.error(404, "TIDE_NOT_FOUND", "no such API key")

local UNREADABLE = {
    unreadable = http.error(409, "TIDE_KEY_UNREADABLE",
                            "this API key cannot be opened (it was sealed for another key or " ..
                            "user, altered, or sealed under another encryption key): save it again"),
    legacy = http.error(409, "TIDE_KEY_UNREADABLE",
                        "this API key is stored in the old format and must be resealed " ..
                        "(tide reseal) or saved again"),
}

-- Opens the key (a use needs it), then stamps last_used_at and writes a usage log row,
-- atomically: a use is recorded whole or not at all, and a key that does not open is a 409
-- with nothing recorded. now() is the database's clock, the same for both rows.
local function use(req)
    local user, e = common.user(req)
    if not user then return nil, e end
    local id
    id, e = common.uuid_id(req, "id")
    if not id then return nil, e end

    local used, err = db.transaction(function(tx)
        local keys, kerr = tx.sql(
            "SELECT user_id, service_name, key_name, encrypted_key FROM public.api_keys" ..
            " WHERE id = $1 AND user_id = $2 FOR UPDATE", { id, user })
        if not keys then return nil, kerr end
        if not keys[1] then return nil, NOT_YOURS end
        local plain, oerr = open(keys[1])
        if not plain then return nil, UNREADABLE[oerr.details] or UNREADABLE.unreadable end
        -- (a real integration would call the service with `plain` here)
        local rows, uerr = tx.sql(
            "UPDATE public.api_keys SET last_used_at = now()" ..
            " WHERE id = $1 RETURNING id, service_name, key_name, last_used_at", { id })
        if not rows then return nil, uerr end
        if not rows[1] then return nil, NOT_YOURS end
        local logged, lerr = tx.insert("api_key_usage_logs", {
            api_key_id = id, user_id = user,
        }, { columns = "id" })
        if not logged then return nil, lerr end
        return rows[1]
    end)
    if not used then return nil, err end
    return used
end

return {
    ["POST /v1/api-keys"] = save,
    ["GET /v1/api-keys"] = list,
    ["DELETE /v1/api-keys/:id"] = delete,
    ["POST /v1/api-keys/:id/use"] = use,
}
