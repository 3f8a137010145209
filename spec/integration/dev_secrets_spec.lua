-- spec/integration/dev_secrets_spec.lua - the secrets published in this repository (the
-- development JWT secret and AES key in etc/tide.conf.lua, and others anyone can read) are
-- refused unless development mode is asked for (--dev or TIDE_DEV=1), with an error that says
-- how to set real ones. A forgotten override must not let anyone mint service_role tokens.
-- These run the tide binary directly with the shipped config, on throwaway ports.

local env = require "spec.helpers.env"

local CONF = "etc/tide.conf.lua"
local OWN_SECRET = "an-own-secret-for-this-spec-0123456789abcdef"
local OWN_KEY = string.rep("ab", 32)

-- Runs `tide <args>` with only the given TIDE_* variables (plus the DSN), for at most 3 s.
-- Returns its exit code and what it printed.
local function tide(args, vars)
    local parts = { "env -u TIDE_DEV -u TIDE_JWT_SECRET -u TIDE_ENCRYPTION_KEY -u TIDE_CONFIG",
                    "TIDE_HTTP_PORT=0 TIDE_ADMIN_PORT=0" }
    for k, v in pairs(vars or {}) do
        parts[#parts + 1] = k .. "=" .. env.quote(v)
    end
    parts[#parts + 1] = "timeout -s KILL 3 " .. env.quote(env.bin) .. " " .. args .. " -c " .. CONF
    local out = env.run(table.concat(parts, " ") .. " 2>&1; echo \"rc=$?\"")
    return tonumber(out:match("rc=(%d+)%s*$")), out
end

describe("published development secrets", function()
    setup(function()
        env.need("bin")
    end)

    it("are refused by tide serve and tide check without dev mode", function()
        for _, cmd in ipairs { "serve", "check" } do
            local rc, out = tide(cmd)
            assert.are.equal(2, rc, cmd .. ": " .. out)
            assert.matches("jwt.secret", out, nil, true)
            assert.matches("TIDE_JWT_SECRET", out, nil, true)
            assert.matches("--dev", out, nil, true)
        end
    end)

    it("name the AES key too once the JWT secret is an own one", function()
        local rc, out = tide("check", { TIDE_JWT_SECRET = OWN_SECRET })
        assert.are.equal(2, rc, out)
        assert.matches("crypto.key", out, nil, true)
        assert.matches("TIDE_ENCRYPTION_KEY", out, nil, true)
    end)

    it("are refused when set through the environment as well", function()
        local rc, out = tide("check", { TIDE_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long",
                                        TIDE_ENCRYPTION_KEY = OWN_KEY })
        assert.are.equal(2, rc, out)
        assert.matches("jwt.secret", out, nil, true)
    end)

    it("are accepted in dev mode, and own secrets without it", function()
        local rc, out = tide("check --dev")
        assert.are.equal(0, rc, out)
        rc, out = tide("check", { TIDE_DEV = "1" })
        assert.are.equal(0, rc, out)
        rc, out = tide("check", { TIDE_JWT_SECRET = OWN_SECRET, TIDE_ENCRYPTION_KEY = OWN_KEY })
        assert.are.equal(0, rc, out)
    end)
end)
