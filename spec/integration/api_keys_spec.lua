-- spec/integration/api_keys_spec.lua - users' third-party API keys over HTTP: the key never
-- comes back (only "****" and its last 4 characters), it is stored sealed (v2: AES-256-GCM
-- bound to its row's user, service and key name) with a keyed HMAC, saving the same
-- service+name again replaces it (same id, one row), using a key stamps last_used_at and logs
-- one row atomically, and another user can neither use nor delete it. A sealed key copied to
-- another row or user (with SQL, as the table's owner could) does not open there; old v1 rows
-- are unreadable until `tide reseal` re-seals them.

local cjson = require "cjson"
local ffi = require "ffi"
local bit = require "bit"
local env = require "spec.helpers.env"
local api = require "spec.helpers.api"

local call = api.call

local SAFE_FIELDS = { id = true, service_name = true, key_name = true, is_active = true,
                      last_used_at = true, created_at = true, masked_key = true }

-- Asserts that a key as returned by the API carries nothing secret.
local function assert_masked(row, raw_text, secret)
    for k in pairs(row) do
        assert.is_true(SAFE_FIELDS[k], "unexpected field in an API key answer: " .. k)
    end
    assert.is_nil(raw_text:find(secret, 1, true), "the key itself came back")
end

-- ---- an independent AES-256-GCM (OpenSSL through the FFI), to read and write the stored
-- formats as documented in runtime/crypto.h without going through tide

ffi.cdef [[
typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;
typedef struct evp_cipher_st EVP_CIPHER;
EVP_CIPHER_CTX *EVP_CIPHER_CTX_new(void);
void EVP_CIPHER_CTX_free(EVP_CIPHER_CTX *c);
const EVP_CIPHER *EVP_aes_256_gcm(void);
int EVP_CipherInit_ex(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *type, void *impl,
                      const unsigned char *key, const unsigned char *iv, int enc);
int EVP_CipherUpdate(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl, const unsigned char *in,
                     int inl);
int EVP_CipherFinal_ex(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl);
int EVP_CIPHER_CTX_ctrl(EVP_CIPHER_CTX *ctx, int type, int arg, void *ptr);
int RAND_bytes(unsigned char *buf, int num);
]]
local C = ffi.load("crypto")
local GCM_GET_TAG, GCM_SET_TAG = 0x10, 0x11

-- enc: plain -> ciphertext .. tag; dec: ciphertext .. tag -> plain, or nil when the tag fails
local function gcm(enc, key, nonce, aad, data)
    local ctx = C.EVP_CIPHER_CTX_new()
    local n = ffi.new("int[1]")
    local tag = ""
    if not enc then data, tag = data:sub(1, -17), data:sub(-16) end
    local out = ffi.new("unsigned char[?]", #data + 16)
    assert(C.EVP_CipherInit_ex(ctx, C.EVP_aes_256_gcm(), nil, key, nonce, enc and 1 or 0) == 1)
    if #aad > 0 then assert(C.EVP_CipherUpdate(ctx, nil, n, aad, #aad) == 1) end
    assert(C.EVP_CipherUpdate(ctx, out, n, data, #data) == 1)
    local len = n[0]
    if not enc then
        local t = ffi.new("unsigned char[16]")
        ffi.copy(t, tag, 16)
        assert(C.EVP_CIPHER_CTX_ctrl(ctx, GCM_SET_TAG, 16, t) == 1)
    end
    local ok = C.EVP_CipherFinal_ex(ctx, out + len, n) == 1
    local result
    if enc then
        local t = ffi.new("unsigned char[16]")
        assert(ok and C.EVP_CIPHER_CTX_ctrl(ctx, GCM_GET_TAG, 16, t) == 1)
        result = ffi.string(out, len) .. ffi.string(t, 16)
    elseif ok then
        result = ffi.string(out, len)
    end
    C.EVP_CIPHER_CTX_free(ctx)
    return result
end

local function random_bytes(n)
    local buf = ffi.new("unsigned char[?]", n)
    assert(C.RAND_bytes(buf, n) == 1)
    return ffi.string(buf, n)
end

local function be32(n)
    return string.char(bit.band(bit.rshift(n, 24), 255), bit.band(bit.rshift(n, 16), 255),
                       bit.band(bit.rshift(n, 8), 255), bit.band(n, 255))
end

-- the associated data of a v2 text: the version byte, then each field length-prefixed
local function v2_aad(user_id, service_name, key_name)
    local out = { "\2" }
    for _, f in ipairs { "api_keys", user_id, service_name, key_name } do
        out[#out + 1] = be32(#f) .. f
    end
    return table.concat(out)
end

local function tohex(s) return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end
local function fromhex(h) return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end)) end

-- tide's crypto key (raw 32 bytes) and its hex, as the test tide has it
local function config_key()
    local hex = os.getenv("TIDE_ENCRYPTION_KEY")
    if not hex or hex == "" then
        hex = dofile(assert(os.getenv("TIDE_CONFIG"), "TIDE_CONFIG")).crypto.key
    end
    return fromhex(hex), hex
end

-- a sealed text's raw bytes (base64 decoded by Postgres)
local function raw_of(text)
    assert.are.equal("v", text:sub(1, 1))
    return fromhex(env.psql_value("select encode(decode(" .. env.lit(text:sub(4)) .. ", 'base64'), 'hex')"))
end

-- "v1:" + base64(nonce | ciphertext | tag), as tide sealed keys before v2
local function seal_v1(key, plain)
    local nonce = random_bytes(12)
    local raw = nonce .. gcm(true, key, nonce, "", plain)
    return "v1:" .. env.psql_value("select replace(encode(decode(" .. env.lit(tohex(raw)) ..
                                   ", 'hex'), 'base64'), E'\\n', '')")
end

-- SQL for the keyed hash tide stores: HMAC-SHA256 under HMAC-SHA256(key, label) (pgcrypto)
local function keyed_hash_sql(key_hex, secret)
    return "encode(extensions.hmac(convert_to(" .. env.lit(secret) .. ", 'UTF8'), extensions.hmac(" ..
           "'tide api key hash v1'::bytea, decode(" .. env.lit(key_hex) .. ", 'hex'), 'sha256'), 'sha256'), 'hex')"
end

describe("API keys", function()
    local u

    setup(function()
        env.need("bin", "dsn_admin")
        u = api.user()
    end)

    it("saves a key: 201, masked tail only, sealed at rest bound to its row, keyed hash", function()
        local secret = "sk-live-" .. env.uuid() .. "-WXYZ"
        local status, row, _, raw = api.call(u, "POST", "/v1/api-keys",
                                             { service_name = "openai", key_name = "default", api_key = secret })
        assert.are.equal(201, status)
        assert.are.equal("****WXYZ", row.masked_key)
        assert.are.equal("openai", row.service_name)
        assert.are.equal("default", row.key_name)
        assert.is_true(row.is_active)
        assert_masked(row, raw, secret)

        local key, key_hex = config_key()
        local stored = env.psql("select encrypted_key, key_hash = " .. keyed_hash_sql(key_hex, secret) ..
                                ", key_hash = encode(sha256(convert_to(" .. env.lit(secret) ..
                                ", 'UTF8')), 'hex'), position(" .. env.lit(secret) ..
                                " in encrypted_key) from api_keys where id = " .. env.lit(row.id))
        local encrypted, hmac_ok, plain_sha, pos = stored:match("^(.-)|(.-)|(.-)|(.-)$")
        assert.is_truthy(encrypted and #encrypted > #secret, stored)
        assert.are.equal("v2:", encrypted:sub(1, 3))
        assert.are.equal("t", hmac_ok)                 -- HMAC under a key derived from tide's
        assert.are.equal("f", plain_sha)               -- not a digest anyone could recompute
        assert.are.equal("0", pos)

        -- the documented format, read without tide: 0x02 | nonce | ciphertext | tag, with the
        -- version byte and the row's (user_id, service_name, key_name) as associated data
        local bytes = raw_of(encrypted)
        assert.are.equal(2, bytes:byte(1))
        local nonce, body = bytes:sub(2, 13), bytes:sub(14)
        assert.are.equal(secret, gcm(false, key, nonce, v2_aad(u.id, "openai", "default"), body))
        assert.is_nil(gcm(false, key, nonce, v2_aad(u.id, "openai", "other"), body))
        assert.is_nil(gcm(false, key, nonce, "", body))
    end)

    it("a sealed key copied to another row or user does not open there; its own row does", function()
        local v = api.user()
        local _, a = call(u, "POST", "/v1/api-keys", { service_name = "copy", key_name = "a",
                                                      api_key = "first-user-key-AAAA" })
        local _, b = call(u, "POST", "/v1/api-keys", { service_name = "copy", key_name = "b",
                                                      api_key = "second-key-value-BBBB" })
        local _, c = call(v, "POST", "/v1/api-keys", { service_name = "copy", key_name = "a",
                                                      api_key = "other-user-key-CCCC" })
        assert.is_truthy(a.id and b.id and c.id)
        -- as the table's owner could: a's ciphertext into b's row (same user, another name) and
        -- into c's row (another user, same service and name)
        env.psql("update api_keys set encrypted_key = (select encrypted_key from api_keys where id = " ..
                 env.lit(a.id) .. ") where id in (" .. env.lit(b.id) .. ", " .. env.lit(c.id) .. ")")

        local function masked(user, id)
            local status, rows = call(user, "GET", "/v1/api-keys?limit=100")
            assert.are.equal(200, status)
            for _, r in ipairs(rows) do
                if r.id == id then return r.masked_key end
            end
            error("key " .. id .. " not listed")
        end
        assert.are.equal("****AAAA", masked(u, a.id))            -- its own row still opens
        assert.are.equal(cjson.null, masked(u, b.id))            -- never a's tail
        assert.are.equal(cjson.null, masked(v, c.id))

        for _, moved in ipairs { { u, b }, { v, c } } do
            local status, body, _, raw = call(moved[1], "POST", "/v1/api-keys/" .. moved[2].id .. "/use")
            assert.are.equal(409, status)
            assert.are.equal("TIDE_KEY_UNREADABLE", body.code)
            assert.is_string(body.message)
            assert.is_nil(raw:find("AAAA", 1, true))
            -- nothing recorded for a use that could not happen
            assert.are.equal("0", env.psql_value("select count(*) from api_key_usage_logs where api_key_id = " ..
                                                 env.lit(moved[2].id)))
            assert.are.equal("", env.psql_value("select coalesce(last_used_at::text, '') from api_keys where id = " ..
                                                env.lit(moved[2].id)))
        end
        assert.are.equal(200, (call(u, "POST", "/v1/api-keys/" .. a.id .. "/use")))

        -- saving the key again repairs the row
        local status, fixed = call(u, "POST", "/v1/api-keys", { service_name = "copy", key_name = "b",
                                                               api_key = "second-key-value-BBB2" })
        assert.are.equal(201, status)
        assert.are.equal(b.id, fixed.id)
        assert.are.equal("****BBB2", masked(u, b.id))
        assert.are.equal(200, (call(u, "POST", "/v1/api-keys/" .. b.id .. "/use")))
    end)

    it("the database takes no v1 text any more (migration 006)", function()
        local _, k = call(u, "POST", "/v1/api-keys", { service_name = "v1", key_name = "x",
                                                      api_key = "some-key-value-1234" })
        local out, ok = env.run("psql -X -q -At -v ON_ERROR_STOP=1 " .. env.quote(env.dsn_admin) ..
                                " -c " .. env.quote("update api_keys set encrypted_key = 'v1:AAAA' where id = " ..
                                                    env.lit(k.id)) .. " 2>&1")
        assert.is_false(ok)
        assert.matches("api_keys_encrypted_key_not_v1", out, 1, true)
    end)

    it("lists keys masked, newest first, never with the key, ciphertext or hash", function()
        local v = api.user()
        local secrets = { "first-secret-value-AAAA", "second-secret-value-BBBB", "short" }
        for i, secret in ipairs(secrets) do
            assert.are.equal(201, (call(v, "POST", "/v1/api-keys",
                                        { service_name = "svc", key_name = "k" .. i, api_key = secret })))
        end
        local status, rows, _, raw = call(v, "GET", "/v1/api-keys")
        assert.are.equal(200, status)
        assert.are.equal(3, #rows)
        assert.are.same({ "k3", "k2", "k1" }, { rows[1].key_name, rows[2].key_name, rows[3].key_name })
        assert.are.same({ "****", "****BBBB", "****AAAA" },
                        { rows[1].masked_key, rows[2].masked_key, rows[3].masked_key })
        for i, row in ipairs(rows) do
            assert_masked(row, raw, secrets[4 - i])
        end
        assert.is_nil(raw:find("encrypted_key", 1, true))
        assert.is_nil(raw:find("key_hash", 1, true))

        status, rows = call(v, "GET", "/v1/api-keys?limit=1&offset=1")
        assert.are.equal(200, status)
        assert.are.same({ "k2" }, { rows[1].key_name })
    end)

    it("saving the same service and name again replaces the key (same id, one row)", function()
        local w = api.user()
        local _, first = call(w, "POST", "/v1/api-keys",
                              { service_name = "maps", key_name = "prod", api_key = "old-key-value-1111" })
        local status, second = call(w, "POST", "/v1/api-keys",
                                    { service_name = "maps", key_name = "prod", api_key = "new-key-value-2222" })
        assert.is_true(status == 200 or status == 201)
        assert.are.equal(first.id, second.id)
        assert.are.equal("****2222", second.masked_key)
        local _, rows = call(w, "GET", "/v1/api-keys")
        assert.are.equal(1, #rows)
        assert.are.equal("****2222", rows[1].masked_key)
        local _, key_hex = config_key()
        assert.are.equal("t", env.psql_value("select key_hash = " .. keyed_hash_sql(key_hex, "new-key-value-2222") ..
                                             " from api_keys where id = " .. env.lit(first.id)))
        -- another name is another key
        assert.are.equal(201, (call(w, "POST", "/v1/api-keys",
                                    { service_name = "maps", key_name = "staging", api_key = "other-key-3333" })))
        _, rows = call(w, "GET", "/v1/api-keys")
        assert.are.equal(2, #rows)
    end)

    it("rejects bad input naming the field (422)", function()
        local cases = {
            { "api_key", { service_name = "a", key_name = "b" } },
            { "service_name", { key_name = "b", api_key = "secret-123456789" } },
            { "key_name", { service_name = "a", key_name = 5, api_key = "secret-123456789" } },
            { "api_key", { service_name = "a", key_name = "b", api_key = "   " } },
            { "encrypted_key", { service_name = "a", key_name = "b", api_key = "x-123456789012",
                                 encrypted_key = "x" } },
        }
        for _, c in ipairs(cases) do
            local status, body = call(u, "POST", "/v1/api-keys", c[2])
            assert.are.equal(422, status, c[1])
            assert.matches(c[1], body.message .. cjson.encode(body.details or {}), 1, true)
        end
    end)

    it("use: stamps last_used_at and logs one row per use", function()
        local _, key = call(u, "POST", "/v1/api-keys",
                            { service_name = "flights", key_name = "main", api_key = "flight-key-00000001" })
        local status, used = call(u, "POST", "/v1/api-keys/" .. key.id .. "/use")
        assert.are.equal(200, status)
        assert.are.equal(key.id, used.id)
        assert.is_string(used.last_used_at)
        assert.is_nil(used.encrypted_key)
        assert.is_nil(used.key_hash)

        assert.are.equal(200, (call(u, "POST", "/v1/api-keys/" .. key.id .. "/use")))
        assert.are.equal("2", env.psql_value("select count(*) from api_key_usage_logs where api_key_id = "
                                             .. env.lit(key.id) .. " and user_id = " .. env.lit(u.id)))
        local _, rows = call(u, "GET", "/v1/api-keys")
        for _, r in ipairs(rows) do
            if r.id == key.id then assert.is_string(r.last_used_at) end
        end
    end)

    it("another user cannot use or delete the key (404), and nothing is logged", function()
        local _, key = call(u, "POST", "/v1/api-keys",
                            { service_name = "weather", key_name = "x", api_key = "weather-key-123456" })
        local other = api.user()
        local status, body = call(other, "POST", "/v1/api-keys/" .. key.id .. "/use")
        assert.are.equal(404, status)
        assert.is_string(body.code)
        assert.are.equal(404, (call(other, "DELETE", "/v1/api-keys/" .. key.id)))
        assert.are.equal("0", env.psql_value("select count(*) from api_key_usage_logs where api_key_id = "
                                             .. env.lit(key.id)))
        assert.are.equal("", env.psql_value("select coalesce(last_used_at::text, '') from api_keys where id = "
                                            .. env.lit(key.id)))
    end)

    it("delete: 204, then gone (404); a malformed id is 400", function()
        local _, key = call(u, "POST", "/v1/api-keys",
                            { service_name = "crawl", key_name = "x", api_key = "crawl-key-1234567" })
        local status, body = call(u, "DELETE", "/v1/api-keys/" .. key.id)
        assert.are.equal(204, status)
        assert.are.equal("", body)
        assert.are.equal(404, (call(u, "DELETE", "/v1/api-keys/" .. key.id)))
        assert.are.equal(404, (call(u, "POST", "/v1/api-keys/" .. key.id .. "/use")))
        assert.are.equal(400, (call(u, "DELETE", "/v1/api-keys/12")))
        assert.are.equal(400, (call(u, "POST", "/v1/api-keys/not-a-uuid/use")))
    end)

    it("needs a signed-in user (401)", function()
        assert.are.equal(401, (call(nil, "GET", "/v1/api-keys")))
        assert.are.equal(401, (call(nil, "POST", "/v1/api-keys",
                                    { service_name = "a", key_name = "b", api_key = "c-123456789012" })))
    end)
    it("tide reseal re-seals v1 rows bound to their row; until then they do not open", function()
        env.need("bin")
        local w = api.user()
        local key, key_hex = config_key()
        local other_key = random_bytes(32)
        local legacy = "legacy-key-value-LGCY"
        local ids = { env.uuid(), env.uuid() }
        -- rows as tide wrote them before v2 (plain SHA-256 hash): one under the configured key,
        -- one under a key tide does not have. Migration 006's CHECK refuses v1 texts, so it is
        -- set aside for the insert and put back (NOT VALID) in the same transaction.
        env.psql("begin; alter table api_keys drop constraint api_keys_encrypted_key_not_v1; " ..
                 "insert into api_keys (id, user_id, service_name, key_name, encrypted_key, key_hash) values (" ..
                 env.lit(ids[1]) .. ", " .. env.lit(w.id) .. ", 'legacy', 'one', " ..
                 env.lit(seal_v1(key, legacy)) .. ", encode(sha256(" .. env.lit(legacy) .. "::bytea), 'hex')), (" ..
                 env.lit(ids[2]) .. ", " .. env.lit(w.id) .. ", 'legacy', 'two', " ..
                 env.lit(seal_v1(other_key, "another-key-XXXX")) .. ", 'x'); " ..
                 "alter table api_keys add constraint api_keys_encrypted_key_not_v1 " ..
                 "check (encrypted_key not like 'v1:%') not valid; commit")

        local function listed()
            local _, rows = call(w, "GET", "/v1/api-keys")
            local by_id = {}
            for _, r in ipairs(rows) do by_id[r.id] = r.masked_key end
            return by_id
        end
        -- tide serve never opens a v1 text
        assert.are.same({ [ids[1]] = cjson.null, [ids[2]] = cjson.null }, listed())
        local status, body = call(w, "POST", "/v1/api-keys/" .. ids[1] .. "/use")
        assert.are.equal(409, status)
        assert.are.equal("TIDE_KEY_UNREADABLE", body.code)
        assert.matches("reseal", body.message, 1, true)

        local reseal = env.quote(env.bin) .. " reseal 2>&1"
        local out, ok = env.run(reseal)
        assert.is_false(ok, out)                         -- one row could not be opened
        assert.matches("1 resealed, 1 could not be opened", out, 1, true)
        assert.matches(ids[2], out, 1, true)             -- named by id, never by key
        assert.is_nil(out:find(legacy, 1, true))

        local stored = env.psql("select encrypted_key, key_hash = " .. keyed_hash_sql(key_hex, legacy) ..
                                " from api_keys where id = " .. env.lit(ids[1]))
        local text, hmac_ok = stored:match("^(.-)|(.-)$")
        assert.are.equal("v2:", text:sub(1, 3))
        assert.are.equal("t", hmac_ok)
        local bytes = raw_of(text)
        assert.are.equal(legacy, gcm(false, key, bytes:sub(2, 13), v2_aad(w.id, "legacy", "one"), bytes:sub(14)))
        assert.are.same({ [ids[1]] = "****LGCY", [ids[2]] = cjson.null }, listed())
        assert.are.equal(200, (call(w, "POST", "/v1/api-keys/" .. ids[1] .. "/use")))

        -- again: nothing new to do; the row it cannot open is still reported
        out = env.run(reseal)
        assert.matches("0 resealed, 1 could not be opened", out, 1, true)
        -- once that row is gone, no v1 row is left and tide reseal says so
        assert.are.equal(204, (call(w, "DELETE", "/v1/api-keys/" .. ids[2])))
        out, ok = env.run(reseal)
        assert.is_true(ok, out)
        assert.matches("0 resealed, 0 could not be opened", out, 1, true)
        assert.matches("no v1 keys left", out, 1, true)
    end)
end)
