-- spec/integration/auth_spec.lua - JWT handling as a client sees it: no token means anon
-- (public routes work, user routes say 401 TIDE_AUTH_REQUIRED); a token that is expired, not
-- yet valid, signed with another key, unsigned (alg none), of another algorithm, for a role
-- outside anon/authenticated/service_role, or not a JWT at all is a 401 with a JSON error
-- body {code, message}. A well-formed HS256 token made here with the shared secret works,
-- so the failures above are about the token and nothing else.

local jwt = require "spec.helpers.jwt"
local env = require "spec.helpers.env"
local http = require "spec.helpers.http"

-- status, body, headers for GET /v1/users/me with an Authorization header value (or none).
local function me(authorization)
    return http.request("GET", "/v1/users/me",
                        { headers = authorization and { Authorization = authorization } or nil })
end

local function assert_json_401(status, body, headers, what)
    assert.are.equal(401, status, what)
    assert.matches("application/json", headers["content-type"] or "", 1, true)
    assert.are.equal("table", type(body), what)
    assert.is_string(body.code, what)
    assert.is_string(body.message, what)
end

describe("auth", function()
    local sub, now

    setup(function()
        env.need("bin", "secret")
        sub = env.uuid()
        now = os.time()
    end)

    local function claims(extra)
        local c = { sub = sub, role = "authenticated", iat = now, exp = now + 600 }
        for k, v in pairs(extra or {}) do c[k] = v end
        return c
    end

    it("a token from `tide token` is accepted (404: no profile yet, not 401)", function()
        local status, body = me("Bearer " .. env.token(sub))
        assert.are.equal(404, status)
        assert.is_string(body.code)
    end)

    it("a token signed here with the configured secret is accepted", function()
        local status = me("Bearer " .. jwt.sign(claims(), { secret = env.secret }))
        assert.are.equal(404, status)
    end)

    it("no token: anon; user routes answer 401 TIDE_AUTH_REQUIRED, public ones work", function()
        local status, body, headers = me(nil)
        assert_json_401(status, body, headers, "no token")
        assert.are.equal("TIDE_AUTH_REQUIRED", body.code)

        status = http.request("GET", "/v1/destinations/popular?limit=1")
        assert.are.equal(200, status)
    end)

    it("an expired token is 401", function()
        local t = jwt.sign(claims { iat = now - 7200, exp = now - 3600 }, { secret = env.secret })
        assert_json_401(me("Bearer " .. t))
    end)

    it("a token not valid yet (nbf in the future) is 401", function()
        local t = jwt.sign(claims { nbf = now + 3600 }, { secret = env.secret })
        assert_json_401(me("Bearer " .. t))
    end)

    it("a bad signature is 401: other secret, or a tampered payload", function()
        assert_json_401(me("Bearer " .. jwt.sign(claims(), { secret = env.secret .. "x" })))

        local good = jwt.sign(claims(), { secret = env.secret })
        local h, _, s = good:match("^([^.]+)%.([^.]+)%.([^.]+)$")
        local forged = h .. "." .. jwt.b64url(require("cjson").encode(claims { sub = env.uuid() })) .. "." .. s
        assert_json_401(me("Bearer " .. forged))

        local flipped = good:sub(1, -2) .. (good:sub(-1) == "A" and "B" or "A")
        assert_json_401(me("Bearer " .. flipped))
    end)

    it("alg none is 401, with or without a signature", function()
        local t = jwt.sign(claims(), { alg = "none" })
        assert_json_401(me("Bearer " .. t))
        local good = jwt.sign(claims(), { secret = env.secret })
        local with_sig = jwt.b64url('{"alg":"none","typ":"JWT"}') .. good:match("(%..*)$")
        assert_json_401(me("Bearer " .. with_sig))
    end)

    it("another algorithm in the header is 401 even with an HS256 signature", function()
        for _, alg in ipairs { "HS384", "HS512", "RS256", "ES256" } do
            local t = jwt.sign(claims(), { secret = env.secret, header = { alg = alg } })
            assert_json_401(me("Bearer " .. t))
        end
    end)

    it("a role outside anon/authenticated/service_role is 401", function()
        for _, role in ipairs { "postgres", "authenticator", "pg_read_all_data", "admin" } do
            local t = jwt.sign(claims { role = role }, { secret = env.secret })
            assert_json_401(me("Bearer " .. t))
        end
    end)

    it("garbage in Authorization is 401", function()
        for _, value in ipairs { "Bearer", "Bearer ", "Bearer abc", "Bearer a.b.c", "Bearer ...",
                                 "Bearer " .. string.rep("x", 2000),
                                 "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0" } do
            assert_json_401(me(value))
        end
    end)

    it("an anon-role token is anon: user routes 401, public routes 200", function()
        local t = jwt.sign({ role = "anon", iat = now, exp = now + 600 }, { secret = env.secret })
        local status, body = me("Bearer " .. t)
        assert.are.equal(401, status)
        assert.are.equal("TIDE_AUTH_REQUIRED", body.code)
        status = http.request("GET", "/v1/destinations/popular?limit=1", { token = t })
        assert.are.equal(200, status)
    end)
end)
