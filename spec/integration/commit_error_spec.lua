-- spec/integration/commit_error_spec.lua - an error raised when the implicit transaction
-- commits (here a deferred unique constraint, checked at the pipeline's Sync) reaches the
-- client as that error, and nothing the statement did is kept. Without this, the statement's
-- own "INSERT 0 2" would be reported as a success for a write Postgres rolled back.
-- The table and the test route exist only for this spec (created and dropped here).

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"

local MODULE = "zz_test_deferred.lua"
local TABLE = "tide_test_deferred"

local SOURCE = [[
-- Test-only route written by spec/integration/commit_error_spec.lua; never shipped.
local db = require "tide.db"
return {
    ["POST /v1/_test/deferred"] = function(req)
        local n = tonumber(req.query.dup) == 1 and 1 or 2
        local rows, err = db.sql("insert into tide_test_deferred (id) values (1), ($1::int)",
                                 { n }, { mode = "direct" })
        if not rows then return nil, err end
        return { affected = err and err.affected or #rows }
    end,
}
]]

describe("an error at commit", function()
    local u, path

    setup(function()
        env.need("bin", "pid", "bundle_dir", "dsn_admin")
        env.psql("drop table if exists public." .. TABLE .. "; " ..
                 "create table public." .. TABLE .. " (id int, constraint " .. TABLE ..
                 "_u unique (id) deferrable initially deferred); " ..
                 "grant select, insert, delete on public." .. TABLE .. " to authenticated")
        u = api.user()
        path = env.install_module(MODULE, SOURCE, function()
            return (api.call(u, "POST", "/v1/_test/deferred?dup=0")) == 200
        end)
        env.psql("delete from public." .. TABLE)
    end)

    teardown(function()
        env.remove_module(path)
        env.psql("drop table if exists public." .. TABLE)
    end)

    it("is the response, and the write is not kept", function()
        local status, body = api.call(u, "POST", "/v1/_test/deferred?dup=1")
        assert.are.equal(409, status)
        assert.are.equal("23505", body.code)
        assert.are.equal("0", env.psql_value("select count(*) from public." .. TABLE))
        -- the connection is healthy afterwards: a good insert on the same pool succeeds
        status = api.call(u, "POST", "/v1/_test/deferred?dup=0")
        assert.are.equal(200, status)
        assert.are.equal("2", env.psql_value("select count(*) from public." .. TABLE))
    end)
end)
