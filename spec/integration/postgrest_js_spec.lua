-- spec/integration/postgrest_js_spec.lua - Supabase's own client, @supabase/postgrest-js
-- (spec/js/package.json pins it; spec/js/package-lock.json locks it), against tide's /rest/v1
-- on the demo schema under two users' tokens: spec/js/postgrest.test.mjs runs its named checks
-- (reads with filters, order, range and count, single/maybeSingle, CSV, the error objects the
-- client surfaces, RLS; writes with returning, upsert, embedding, rpc) and reports each; here
-- every check is one test, so a failure names the check and says why.
--
-- Needs node (>= 18) and npm (`make deps` installs Debian's). The client is installed with
-- `npm ci` into spec/js/node_modules (ignored by git) when the lock file changed since the
-- last install (a stamp holds its hash), so the registry is asked once per lock, not per run.
-- This spec makes the fixtures through tide's /v1 routes and hands their ids to the script in
-- the environment (see the script's header).

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"
local cjson = require "cjson.safe"

local JS = "spec/js"
local SCRIPT = JS .. "/postgrest.test.mjs"
local LOCK = JS .. "/package-lock.json"
local STAMP = JS .. "/node_modules/.tide-lock.sha256"

-- The check names, from the script itself (no network, no client needed), or nil, why.
local function list_checks()
    local out, ok = env.run("node " .. SCRIPT .. " --list 2>&1")
    if not ok then return nil, "node " .. SCRIPT .. " --list failed: " .. out end
    local names = cjson.decode(out)
    if type(names) ~= "table" or #names == 0 then return nil, "no check names in: " .. out end
    return names
end

-- npm ci into spec/js/node_modules unless it already holds what the lock file says.
local function ensure_client()
    local sum = env.run("sha256sum " .. LOCK):match("^(%x+)")
    assert(sum, "cannot hash " .. LOCK)
    if env.read_file(STAMP) == sum then return end
    local out, ok = env.run("cd " .. JS .. " && timeout 300 npm ci --no-audit --no-fund " ..
                            "--loglevel=error 2>&1")
    assert(ok, "npm ci in " .. JS .. " failed:\n" .. out)
    env.write_file(STAMP, sum)
end

local names, why = list_checks()

describe("postgrest-js against /rest/v1", function()
    local report = {}

    setup(function()
        assert(names, why)
        env.need("bin")
        ensure_client()
        local a, b = api.user(), api.user()
        local tag = "JS-" .. env.uuid():sub(1, 8)
        local function trip(user, name, fields)
            fields = fields or {}
            fields.name, fields.destination = name, tag
            return api.trip(user, fields)
        end
        trip(a, "alpha", { budget = 100, travelers = 1 })
        trip(a, "bravo", { budget = 250, travelers = 2, status = "booked" })
        trip(a, "charlie", { budget = 900, travelers = 3 })
        trip(a, "delta", { budget = cjson.null, travelers = 4 })
        local echo = trip(a, "echo", { budget = 50, travelers = 5 })
        local w_update = trip(a, "w-update", { budget = 1, travelers = 9 })
        local w_delete = trip(a, "w-delete", { budget = 1, travelers = 9 })
        local w_share = trip(a, "w-share", { budget = 1, travelers = 9 })
        trip(b, "bob-1", { budget = 10, travelers = 1 })
        trip(b, "bob-2", { budget = 20, travelers = 2 })
        api.share(a, echo.id, b, "view")
        api.share(a, w_share.id, b, "view")
        local vars = {
            TIDE_TEST_URL = env.url, PGJS_TAG = tag,
            PGJS_TOKEN_A = a.token, PGJS_TOKEN_B = b.token, PGJS_USER_A = a.id,
            PGJS_USER_B = b.id, PGJS_ECHO_ID = echo.id, PGJS_W_UPDATE_ID = w_update.id,
            PGJS_W_DELETE_ID = w_delete.id, PGJS_W_SHARE_ID = w_share.id,
        }
        local cmd = {}
        for k, v in pairs(vars) do cmd[#cmd + 1] = k .. "=" .. env.quote(v) end
        local err_log = os.tmpname()
        local out = env.run("env " .. table.concat(cmd, " ") .. " timeout 600 node " .. SCRIPT ..
                            " 2>" .. err_log)
        local last = out:match("([^\n]+)\n*$")
        local r = last and cjson.decode(last)
        local stderr = env.read_file(err_log) or ""
        os.remove(err_log)
        assert(type(r) == "table" and type(r.checks) == "table",
               "no report from " .. SCRIPT .. ":\n" .. out .. "\n" .. stderr)
        for _, c in ipairs(r.checks) do report[c.name] = c end
        print(("\npostgrest-js %s on node %s: %d passed, %d failed"):format(
              tostring(r.client), tostring(r.node), r.passed or 0, r.failed or 0))
    end)

    for _, name in ipairs(names or { "(the check list)" }) do
        it(name, function()
            assert(names, why)
            local c = report[name]
            assert(c, "the script reported nothing for " .. name)
            assert(c.ok, name .. ": " .. tostring(c.error))
        end)
    end
end)
