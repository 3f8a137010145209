-- spec/unit/rest_write_spec.lua - the pure pieces of /rest/v1's write side: columns= and
-- on_conflict= name lists, and the SQLSTATE -> HTTP status map of tide/rest/errors.lua
-- (PostgREST's Error.hs). The Prefer header's rules are in rest_http_spec.lua.

local write = require "tide.rest.write"
local rerr = require "tide.rest.errors"

describe("tide.rest.write name lists (columns=, on_conflict=)", function()
    local names = write._name_list

    it("splits on commas, trims, unquotes, drops repeats", function()
        assert.are.same({ "a", "b c", "d,e", 'f"g' },
                        names(' a , "b c","d,e" ,"f\\"g",a', "columns"))
    end)

    it("refuses empty names, stray text after a quote, an open quote, too many names",
       function()
        for _, bad in ipairs({ "", "a,,b", "a,", '"a"b', '"open' }) do
            local list, err = names(bad, "columns")
            assert.is_nil(list, bad)
            assert.are.equal("PGRST100", err.code, bad)
        end
        local many = {}
        for i = 1, write.MAX_NAMES + 1 do many[i] = "c" .. i end
        local list, err = names(table.concat(many, ","), "columns")
        assert.is_nil(list)
        assert.are.equal("PGRST100", err.code)
    end)
end)

describe("tide.rest.write parsers on hostile input", function()
    it("never raise: random text from the characters that matter", function()
        local alphabet = { "a", "b", ",", '"', "\\", " ", "=", "-", "1", "max-affected=",
                           "return=", "minimal", "\0", "\255" }
        math.randomseed(12)
        for _ = 1, 3000 do
            local parts = {}
            for j = 1, math.random(0, 24) do parts[j] = alphabet[math.random(#alphabet)] end
            local s = table.concat(parts)
            local ok2, list, err = pcall(write._name_list, s, "columns")
            assert(ok2, list)
            assert.is_true(type(list) == "table" or (list == nil and err.code == "PGRST100"), s)
        end
    end)
end)

describe("tide.rest.errors.status (PostgREST's SQLSTATE -> HTTP)", function()
    it("maps the codes clients meet", function()
        local cases = {
            { "23505", 409 }, { "23503", 409 }, { "23502", 400 }, { "23514", 400 },
            { "22P02", 400 }, { "42703", 400 }, { "42883", 404 }, { "42P01", 404 },
            { "P0001", 400 }, { "P0002", 500 }, { "40001", 500 }, { "40P01", 500 },
            { "08006", 503 }, { "53300", 503 }, { "53400", 500 }, { "57014", 500 },
            { "57P01", 503 }, { "25006", 405 }, { "28000", 403 }, { "42P17", 500 },
            { "XX000", 500 }, { "PT402", 402 }, { "PTabc", 500 }, { "PT1E2", 500 },
            { "PT099", 500 },
        }
        for _, c in ipairs(cases) do
            assert.are.equal(c[2], rerr.status(c[1], true), c[1])
        end
    end)

    it("42501 is 403 with a token, 401 without; 21000 is 400 only for pg-safeupdate",
       function()
        assert.are.equal(403, rerr.status("42501", true))
        assert.are.equal(401, rerr.status("42501", false))
        assert.are.equal(400, rerr.status("21000", true, "DELETE requires a WHERE clause"))
        assert.are.equal(500, rerr.status("21000", true, "more than one row returned by a " ..
                                                        "subquery used as an expression"))
    end)

    it("from_db restatuses SQLSTATE errors and leaves tide's own codes alone", function()
        local e = rerr.from_db({ code = "42501", status = 400, message = "denied",
                                 details = "d", hint = "h" }, { claims = { sub = "u" } })
        assert.are.equal(403, e.status)
        assert.are.same({ "42501", "denied", "d", "h" }, { e.code, e.message, e.details, e.hint })
        assert.are.equal(401, rerr.from_db({ code = "42501", message = "denied" }, {}).status)
        local own = { code = "TIDE_UPSTREAM_UNAVAILABLE", status = 503, retry_after = 2 }
        assert.are.equal(own, rerr.from_db(own, {}))
    end)
end)
