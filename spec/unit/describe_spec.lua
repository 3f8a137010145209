-- spec/unit/describe_spec.lua - tide.describe, the text of `tide routes` and `tide check`:
-- routes with the file and line of their handlers in one column, the effective routing policy
-- (every kind, then only what a per-table override changes) and the effective cache policy.

local describe_ = require "tide.describe"
local router = require "tide.router"
local cachetags = require "tide.cachetags"

local KINDS = { "select", "insert", "rpc" }

describe("tide.describe", function()
    it("lists routes as METHOD /pattern, then file:line in one column", function()
        local lines = describe_.routes({
            { method = "GET", pattern = "/v1/trips/:id", module = "trips",
              file = "scripts/trips.lua", line = 135 },
            { method = "DELETE", pattern = "/v1/trips/:id/collaborators/:user_id",
              module = "collaborators", file = "scripts/collaborators.lua", line = 90 },
            { method = "GET", pattern = "/v1/x", module = "x", file = "scripts/_common.lua",
              line = 7 },
            { method = "GET", pattern = "/c", module = "c", file = "[C]" },
        })
        assert.are.same({
            "GET /v1/trips/:id                            scripts/trips.lua:135",
            "DELETE /v1/trips/:id/collaborators/:user_id  scripts/collaborators.lua:90",
            "GET /v1/x                                    scripts/_common.lua:7 (module x)",
            "GET /c                                       [C] (module c)",
        }, lines)
    end)

    it("lists the routes of a router with the line each handler starts on", function()
        local line = debug.getinfo(1, "l").currentline + 1
        local function handler() return 1 end
        local r = router.new()
        r:load("describe_spec", { ["GET /a"] = handler })
        local here = debug.getinfo(1, "S").source:sub(2)
        assert.are.same({ "GET /a  " .. here .. ":" .. line }, describe_.routes(r:list()))
    end)

    it("prints every kind's upstream, then only what a per-table override changes", function()
        local policy = {
            default = { select = "transaction", insert = "session", rpc = "direct" },
            tables = { trips = { select = "direct" }, audit = "direct", same = {} },
        }
        function policy.route(kind, tbl)
            local o = tbl and policy.tables[tbl]
            if type(o) == "string" then return o end
            return o and o[kind] or policy.default[kind]
        end
        local lines = describe_.routing(policy, KINDS)
        local pad = function(k) return k .. string.rep(" ", 40 - #k) .. " = " end
        assert.are.same({
            pad("select") .. "transaction",
            pad("insert") .. "session",
            pad("rpc") .. "direct",
            pad("tables.audit.select") .. "direct",
            pad("tables.audit.insert") .. "direct",
            pad("tables.same") .. "(every kind as above)",
            pad("tables.trips.select") .. "direct",
        }, lines)
    end)

    it("prints the shipped routing policy without overrides", function()
        local lines = describe_.routing(require "routing", KINDS)
        assert.are.equal(3, #lines)
        assert.matches("^select +%= transaction$", lines[1])
    end)

    it("prints the cache policy: routes, tables and functions", function()
        cachetags._set_policy({
            routes = {
                ["GET /v1/trips/:id"] = { ttl = 30, scope = "user", stale_if_error = 300 },
                ["GET /v1/popular"] = { ttl = 0.5, scope = "public", stale_while_revalidate = 30,
                                        vary = { "Accept-Language", "X-Tenant" } },
            },
            tables = { trips = { key = "id", depends = { "trip_collaborators" } },
                       logs = {} },
            functions = { stats = { "trips", "users" } },
        })
        local lines = describe_.cache(cachetags.policy())
        cachetags._set_policy(nil)
        assert.are.equal(5, #lines)
        assert.matches("^GET /v1/popular +%= ttl=0.5 scope=public stale_while_revalidate=30 " ..
                       "stale_if_error=0 vary=accept%-language,x%-tenant$", lines[1])
        assert.matches("^GET /v1/trips/:id +%= ttl=30 scope=user stale_while_revalidate=0 " ..
                       "stale_if_error=300 vary=none$", lines[2])
        assert.matches("^tables.logs +%= key=none depends=none$", lines[3])
        assert.matches("^tables.trips +%= key=id depends=trip_collaborators$", lines[4])
        assert.matches("^functions.stats +%= reads=trips,users$", lines[5])
    end)

    it("says when nothing is cached", function()
        cachetags._set_policy({})
        local lines = describe_.cache(cachetags.policy())
        cachetags._set_policy(nil)
        assert.are.same({ "(no route is cached)" }, lines)
    end)
end)
