-- scripts/api_keys.lua - users' own keys for third-party services: save (upsert), list,
-- delete, and record a use.
--
-- Secrets: the key is stored only as crypto.encrypt(key) (AES-256-GCM with the configured
-- key) and crypto.sha256_hex(key). Nothing that leaves this module carries the key, the
-- ciphertext or the hash: every answer goes through present(), a whitelist that adds
-- `masked_key` ("****" and the last 4 characters, or just "****" for keys shorter than 12,
-- whose tail would give away too much). Listing decrypts each row (bounded by the page) to
-- compute the tail; a row that no longer decrypts (rotated config key) shows "****".
-- POST is an upsert on (user_id, service_name, key_name): saving the same name again replaces
-- the key, keeps the id and re-activates it; it answers 201 either way.
-- Keys are strictly per user (RLS): someone else's key id is a 404, never a 403.

local db = require "tide.db"
local crypto = require "tide.crypto"
local json = require "tide.json"
local common = require "_common"

local type, ipairs, sub = type, ipairs, string.sub

local SAVE = {
    service_name = { type = "string", required = true, max_len = 50 },
    key_name     = { type = "string", required = true, max_len = 100 },
    api_key      = { type = "string", required = true, max_len = 4096 },
}
local TEXT = { "service_name", "key_name", "api_key" }      -- none of them may be blank

-- encrypted_key is read only to compute the masked tail; present() drops it.
local COLUMNS = "id,service_name,key_name,encrypted_key,is_active,last_used_at,created_at"

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

-- What a client may see of a stored key. plain is the key when the caller just sent it.
local function present(row, plain)
    if plain == nil and type(row.encrypted_key) == "string" then
        plain = crypto.decrypt(row.encrypted_key)
    end
    return {
        id = row.id,
        service_name = row.service_name,
        key_name = row.key_name,
        is_active = row.is_active,
        last_used_at = nullable(row.last_used_at),
        created_at = row.created_at,
        masked_key = mask(plain),
    }
end

local function save(req)
    local user, e, s = common.user(req)
    if not user then return e, s end
    local key
    key, e, s = common.body(req, SAVE)
    if not key then return e, s end
    e, s = common.check_blank(key, TEXT)
    if e then return e, s end

    local rows, err = db.upsert("api_keys", {
        user_id = user,
        service_name = key.service_name,
        key_name = key.key_name,
        encrypted_key = crypto.encrypt(key.api_key),
        key_hash = crypto.sha256_hex(key.api_key),
        is_active = true,
    }, { on_conflict = "user_id,service_name,key_name", columns = COLUMNS })
    if not rows then return common.fail(err) end
    return present(rows[1], key.api_key), 201
end

local function list(req)
    local user, e, s = common.user(req)
    if not user then return e, s end
    local page
    page, e, s = common.page(req.query)
    if not page then return e, s end

    local rows, err = db.select("api_keys", {
        columns = COLUMNS, filters = { user_id = user }, order = "-created_at,-id",
        limit = page.limit, offset = page.offset,
    })
    if not rows then return common.fail(err) end
    local out = {}
    for i, row in ipairs(rows) do
        out[i] = present(row)
    end
    return common.array(out)
end

local function delete(req)
    local user, e, s = common.user(req)
    if not user then return e, s end
    local id
    id, e, s = common.uuid_id(req, "id")
    if not id then return e, s end

    local rows, err = db.delete("api_keys", { filters = { id = id, user_id = user }, columns = "id" })
    if not rows then return common.fail(err) end
    if not rows[1] then return common.not_found("no such API key") end
    return common.no_content()
end

local NOT_YOURS = { status = 404, code = "TIDE_NOT_FOUND", message = "no such API key" }

-- Stamps last_used_at and writes a usage log row, atomically: a use is recorded whole or not
-- at all. now() is the database's clock, the same for both rows.
local function use(req)
    local user, e, s = common.user(req)
    if not user then return e, s end
    local id
    id, e, s = common.uuid_id(req, "id")
    if not id then return e, s end

    local used, err = db.transaction(function(tx)
        local rows, uerr = tx.sql(
            "UPDATE public.api_keys SET last_used_at = now()" ..
            " WHERE id = $1 AND user_id = $2 RETURNING id, service_name, key_name, last_used_at",
            { id, user })
        if not rows then return nil, uerr end
        if not rows[1] then return nil, NOT_YOURS end
        local logged, lerr = tx.insert("api_key_usage_logs", {
            api_key_id = id, user_id = user,
        }, { columns = "id" })
        if not logged then return nil, lerr end
        return rows[1]
    end)
    if not used then return common.fail(err) end
    return used
end

return {
    ["POST /v1/api-keys"] = save,
    ["GET /v1/api-keys"] = list,
    ["DELETE /v1/api-keys/:id"] = delete,
    ["POST /v1/api-keys/:id/use"] = use,
}
