-- spec/integration/api_keys_spec.lua - users' third-party API keys over HTTP: the key never
-- comes back (only "****" and its last 4 characters), it is stored encrypted with its SHA-256,
-- saving the same service+name again replaces it (same id, one row), using a key stamps
-- last_used_at and logs one row atomically, and another user can neither use nor delete it.

local cjson = require "cjson"
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

describe("API keys", function()
    local u

    setup(function()
        env.need("bin", "dsn_admin")
        u = api.user()
    end)

    it("saves a key: 201, masked tail only, encrypted at rest with its sha256", function()
        local secret = "sk-live-" .. env.uuid() .. "-WXYZ"
        local status, row, _, raw = api.call(u, "POST", "/v1/api-keys",
                                             { service_name = "openai", key_name = "default", api_key = secret })
        assert.are.equal(201, status)
        assert.are.equal("****WXYZ", row.masked_key)
        assert.are.equal("openai", row.service_name)
        assert.are.equal("default", row.key_name)
        assert.is_true(row.is_active)
        assert_masked(row, raw, secret)

        local stored = env.psql("select encrypted_key, key_hash = encode(sha256(convert_to(" ..
                                env.lit(secret) .. ", 'UTF8')), 'hex'), position(" .. env.lit(secret) ..
                                " in encrypted_key) from api_keys where id = " .. env.lit(row.id))
        local encrypted, hash_ok, pos = stored:match("^(.-)|(.-)|(.-)$")
        assert.is_truthy(encrypted and #encrypted > #secret, stored)
        assert.are.equal("t", hash_ok)
        assert.are.equal("0", pos)
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
        assert.are.equal("t", env.psql_value("select key_hash = encode(sha256('new-key-value-2222'::bytea), 'hex')" ..
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
end)
