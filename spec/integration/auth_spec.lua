-- spec/integration/auth_spec.lua - JWT handling as a client sees it: no token means anon
-- (public routes work, user routes say 401 TIDE_AUTH_REQUIRED); a token that is expired, not
-- yet valid, without exp (jwt.require_exp defaults to true), signed with another key,
-- unsigned (alg none), of another algorithm, for a role outside
-- anon/authenticated/service_role, or not a JWT at all is a 401 with a JSON error body
-- {code, message}. A well-formed HS256 token made here with the shared secret works, so the
-- failures above are about the token and nothing else. jwt.audience, jwt.issuer and
-- TIDE_JWT_REQUIRE_EXP=0 are checked on a second tide started here.

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

    it("a token without exp is 401 TIDE_JWT_INVALID (jwt.require_exp defaults to true)", function()
        local c = claims()
        c.exp = nil
        local status, body, headers = me("Bearer " .. jwt.sign(c, { secret = env.secret }))
        assert_json_401(status, body, headers, "no exp")
        assert.are.equal("TIDE_JWT_INVALID", body.code)
        assert.are.equal("token has no exp claim", body.message)
        -- the same claims with an exp are fine, so it is the missing exp that is refused
        assert.are.equal(404, (me("Bearer " .. jwt.sign(claims(), { secret = env.secret }))))
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

-- jwt.audience, jwt.issuer and jwt.require_exp = false, on a second tide of its own (the
-- suite's tide runs with the defaults): started here on free ports with a config file that
-- sets audience and issuer (and small pools) and TIDE_JWT_REQUIRE_EXP=0 in its environment,
-- stopped at the end.
describe("auth with jwt.audience and jwt.issuer set", function()
    local AUD, ISS = "tide-spec-audience", "https://issuer.tide.test/"
    local socket = require "socket"
    local url, admin_url, pid, conf, log, sub, now

    local function port_free(p)
        local s = socket.tcp()
        s:settimeout(0.2)
        local ok = s:connect("127.0.0.1", p)
        s:close()
        return not ok
    end

    -- two consecutive free ports below the ephemeral range (as spec/run.sh picks them)
    local function pick_ports()
        for _ = 1, 200 do
            local p = math.random(20000, 32000)
            if port_free(p) and port_free(p + 1) then return p, p + 1 end
        end
        error("no free port")
    end

    local function get(token)
        return http.request("GET", "/v1/users/me",
                            { url = url, headers = token and { Authorization = "Bearer " .. token } or nil })
    end

    local function claims(extra)
        local c = { sub = sub, role = "authenticated", iat = now, exp = now + 600, aud = AUD, iss = ISS }
        for k, v in pairs(extra or {}) do c[k] = v end
        return c
    end

    local function sign(c)
        return jwt.sign(c, { secret = env.secret })
    end

    setup(function()
        env.need("bin", "secret")
        sub, now = env.uuid(), os.time()
        math.randomseed(os.time() + (env.pid or 0))
        local main = assert(os.getenv("TIDE_CONFIG"), "TIDE_CONFIG")
        conf, log = os.tmpname(), os.tmpname()
        env.write_file(conf, ([[
local c = dofile(%q)
c.jwt.audience = %q
c.jwt.issuer = %q
for _, u in pairs(c.upstreams) do u.pool_size = 2 end
return c
]]):format(main, AUD, ISS))
        local p, a = pick_ports()
        url, admin_url = "http://127.0.0.1:" .. p, "http://127.0.0.1:" .. a
        local out = env.run(("TIDE_HTTP_PORT=%d TIDE_ADMIN_PORT=%d TIDE_JWT_REQUIRE_EXP=0 %s serve -c %s" ..
                             " >%s 2>&1 </dev/null & echo $!"):format(p, a, env.quote(env.bin),
                                                                      env.quote(conf), env.quote(log)))
        pid = tonumber(out:match("(%d+)"))
        assert(pid, "could not start the second tide: " .. out)
        local up = env.wait_until(function()
            local ok, status = pcall(http.request, "GET", "/live", { url = admin_url })
            return ok and status == 200
        end, 15, 0.1)
        assert(up, "the second tide did not come up: " .. (env.read_file(log) or ""))
    end)

    teardown(function()
        if pid then
            env.run("kill -TERM " .. pid)
            env.wait_until(function() return not select(2, env.run("kill -0 " .. pid .. " 2>/dev/null")) end, 15)
        end
        if conf then os.remove(conf) end
        if log then os.remove(log) end
    end)

    it("`tide token` mints for the configured audience and issuer, and it is accepted", function()
        local out, ok = env.run(env.quote(env.bin) .. " token -c " .. env.quote(conf) ..
                                " --sub " .. env.quote(sub) .. " 2>/dev/null")
        assert.is_true(ok, out)
        local token = out:gsub("%s+$", "")
        local payload = require("cjson").decode(jwt.b64url_decode(token:match("^[^.]+%.([^.]+)")))
        assert.are.equal(AUD, payload.aud)
        assert.are.equal(ISS, payload.iss)
        assert.are.equal(404, (get(token)))   -- no profile yet: past the token check
    end)

    it("a token whose aud names this audience is accepted, as a string or in an array", function()
        assert.are.equal(404, (get(sign(claims()))))
        assert.are.equal(404, (get(sign(claims { aud = { "someone-else", AUD } }))))
    end)

    it("a token for another audience, or without aud, is 401 TIDE_JWT_AUDIENCE", function()
        local no_aud = claims()
        no_aud.aud = nil
        for _, c in ipairs { claims { aud = "authenticated" }, claims { aud = { "a", "b" } },
                             claims { aud = AUD .. "x" }, no_aud } do
            local status, body, headers = get(sign(c))
            assert_json_401(status, body, headers, "aud")
            assert.are.equal("TIDE_JWT_AUDIENCE", body.code)
        end
        -- the suite's own tokens (aud "authenticated", no iss) are not for this tide
        local status, body = get(env.token(sub))
        assert.are.equal(401, status)
        assert.are.equal("TIDE_JWT_ISSUER", body.code)
    end)

    it("a token from another issuer, or without iss, is 401 TIDE_JWT_ISSUER", function()
        local no_iss = claims()
        no_iss.iss = nil
        for _, c in ipairs { claims { iss = "https://evil.test/" }, no_iss } do
            local status, body, headers = get(sign(c))
            assert_json_401(status, body, headers, "iss")
            assert.are.equal("TIDE_JWT_ISSUER", body.code)
        end
    end)

    it("TIDE_JWT_REQUIRE_EXP=0 lets a token without exp in", function()
        local c = claims()
        c.exp = nil
        assert.are.equal(404, (get(sign(c))))
        -- an expired one is still refused
        local status, body = get(sign(claims { exp = now - 3600 }))
        assert.are.equal(401, status)
        assert.are.equal("TIDE_JWT_EXPIRED", body.code)
    end)

    it("a bad TIDE_JWT_REQUIRE_EXP is a config error", function()
        local out, ok = env.run("TIDE_JWT_REQUIRE_EXP=yes " .. env.quote(env.bin) ..
                                " token --sub " .. env.quote(sub) .. " 2>&1")
        assert.is_false(ok)
        assert.matches("TIDE_JWT_REQUIRE_EXP must be 0 or 1", out, 1, true)
    end)
end)
