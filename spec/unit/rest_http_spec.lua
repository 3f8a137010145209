-- spec/unit/rest_http_spec.lua - the HTTP shape all of /rest/v1 shares (tide/rest/http.lua):
-- Accept negotiation (PostgREST's order: q-value, then the header's order; q=0 never; the
-- caller's shapes), the Prefer header, Content-Range and its 206/416, and the errors they
-- answer with (tide/rest/errors.lua, PostgREST 12's words). The HTTP specs
-- (spec/integration/rest*_spec.lua) check the same rules through each route.

local rhttp = require "tide.rest.http"
local rerr = require "tide.rest.errors"
local write = require "tide.rest.write"

describe("tide.rest.http.negotiate", function()
    local neg = rhttp.negotiate

    it("no header is JSON; the highest q wins, equal q-values in the header's order", function()
        assert.are.equal("json", neg(nil, rhttp.ANY))
        assert.are.equal("json", neg("", rhttp.ANY))
        local cases = {
            { "text/csv, application/json", "csv" },
            { "application/json, text/csv", "json" },
            { "application/json;q=0.5, text/csv", "csv" },
            { "text/csv;q=0.1, application/json", "json" },
            { "text/csv;q=0.5, application/vnd.pgrst.object+json;q=0.9, */*;q=0.9", "object" },
            { "text/unknown, APPLICATION/VND.PGRST.OBJECT", "object" },
            { "text/csv; version=1", "csv" },
            { "application/*", "json" },
            { "  text/csv  ;  q=1", "csv" },
        }
        for _, c in ipairs(cases) do
            assert.are.equal(c[2], neg(c[1], rhttp.ANY), c[1])
        end
    end)

    it("q=0 is never chosen; nothing served is 406 PGRST107 naming the header", function()
        assert.are.equal("json", neg("text/csv;q=0, application/json;q=0.001", rhttp.ANY))
        for _, accept in ipairs({ "text/csv;q=0", "application/xml", "text/*" }) do
            local shape, err = neg(accept, rhttp.ANY)
            assert.is_nil(shape, accept)
            assert.are.equal(406, err.status)
            assert.are.equal("PGRST107", err.code)
            assert.are.equal("None of these media types are available: " .. accept, err.message)
        end
    end)

    it("only the caller's shapes: writes and functions skip text/csv", function()
        assert.are.equal("json", neg("text/csv, application/json;q=0.2", rhttp.NO_CSV))
        local shape, err = neg("text/csv", rhttp.NO_CSV)
        assert.is_nil(shape)
        assert.are.equal("PGRST107", err.code)
        assert.are.equal("csv", neg("text/csv", rhttp.ANY))
    end)

    it("reads the first MAX_ACCEPT items only", function()
        local items = {}
        for i = 1, rhttp.MAX_ACCEPT - 1 do items[i] = "text/x" .. i end
        items[#items + 1] = "application/json"
        assert.are.equal("json", neg(table.concat(items, ","), rhttp.ANY))
        table.insert(items, 1, "text/x0")
        local shape, err = neg(table.concat(items, ","), rhttp.ANY)
        assert.is_nil(shape)
        assert.are.equal("PGRST107", err.code)
    end)
end)

describe("tide.rest.http.trim", function()
    it("trims, and in linear time: runs of blanks inside a 16 KiB header cost nothing", function()
        assert.are.equal("a  b", rhttp.trim("  a  b \t"))
        assert.are.equal("", rhttp.trim("   "))
        assert.are.equal("x", rhttp.trim("x"))
        -- the usual "^%s*(.-)%s*$" takes ~0.4 s on this (quadratic backtracking): a request
        -- header could hold the event loop that long
        local hostile = string.rep("a" .. string.rep(" ", 4000), 4) .. "b"
        local t = os.clock()
        for _ = 1, 5 do
            rhttp.trim(hostile)
            rhttp.preferences(hostile .. "=x," .. hostile)
            write._name_list(hostile, "columns")
        end
        assert.is_true(os.clock() - t < 0.1, "trim is not linear: " .. (os.clock() - t) .. " s")
    end)
end)

describe("tide.rest.http.preferences", function()
    local prefs = rhttp.preferences

    it("reads every kind; the first value of a kind wins; spaces are ignored", function()
        local p = prefs("return=representation ,  count=exact,resolution=ignore-duplicates," ..
                        "return=minimal, missing=default, handling=strict, max-affected=5")
        assert.are.equal("representation", p["return"])
        assert.are.equal("exact", p.count)
        assert.are.equal("ignore-duplicates", p.resolution)
        assert.are.equal("default", p.missing)
        assert.are.equal("strict", p.handling)
        assert.are.equal(5, p.max_affected)
        assert.are.same({}, p.invalid)
    end)

    it("collects what it does not know; tx= and params= are known, timezone= is not", function()
        local p = prefs("tx=rollback, params=single-object, timezone=UTC, return=all, x")
        assert.is_nil(p["return"])
        assert.are.equal("single-object", p.params)
        assert.are.same({ "timezone=UTC", "return=all", "x" }, p.invalid)
        assert.are.same({}, prefs(nil).invalid)
    end)

    it("a count is any of exact, planned, estimated; anything else is no count", function()
        for _, c in ipairs({ "exact", "planned", "estimated" }) do
            assert.are.equal(c, prefs("return=minimal, count=" .. c).count)
        end
        assert.is_nil(prefs("count=all").count)
        assert.is_nil(prefs("count=exactly").count)
        assert.are.equal("exact", prefs("count=none, count=exact").count)
    end)

    it("max-affected takes a non-negative integer of at most 14 digits only", function()
        assert.is_nil(prefs("max-affected=-1").max_affected)
        assert.is_nil(prefs("max-affected=1e3").max_affected)
        assert.is_nil(prefs("max-affected=" .. string.rep("9", 40)).max_affected)
        assert.is_nil(prefs("max-affected=" .. string.rep("9", 15)).max_affected)
        assert.are.equal(99999999999999, prefs("max-affected=" .. string.rep("9", 14)).max_affected)
        assert.are.equal(0, prefs("max-affected=0").max_affected)
    end)

    it("applied: the kinds asked for, in PostgREST's order", function()
        local p = prefs("count=planned, return=representation, handling=strict, " ..
                        "missing=default, max-affected=3, resolution=merge-duplicates")
        assert.are.equal("resolution=merge-duplicates, missing=default, " ..
                         "return=representation, count=planned, handling=strict, " ..
                         "max-affected=3",
                         rhttp.applied(p, { resolution = true, missing = true,
                                            ["return"] = true, count = true, handling = true,
                                            max_affected = true }))
        assert.are.equal("return=representation", rhttp.applied(p, { ["return"] = true }))
        assert.is_nil(rhttp.applied(prefs(nil), { ["return"] = true, count = true }))
        assert.is_nil(rhttp.applied(prefs("max-affected=3"), { max_affected = true }))
    end)

    it("never raises: random text from the characters that matter", function()
        local alphabet = { "a", "b", ",", '"', "\\", " ", "=", "-", "1", "max-affected=",
                           "return=", "minimal", "count=", "exact", ";q=", "0.5", "*/*",
                           "text/csv", "\0", "\255" }
        math.randomseed(12)
        for _ = 1, 3000 do
            local parts = {}
            for j = 1, math.random(0, 24) do parts[j] = alphabet[math.random(#alphabet)] end
            local s = table.concat(parts)
            local ok, p = pcall(prefs, s)
            assert(ok, p)
            assert.is_table(p.invalid)
            local ok2, shape, err = pcall(rhttp.negotiate, s, rhttp.ANY)
            assert(ok2, shape)
            assert.is_true(shape ~= nil or err.code == "PGRST107", s)
        end
    end)
end)

describe("tide.rest.http Content-Range", function()
    it("content_range: first-last/total, * for no rows or no count", function()
        assert.are.equal("0-9/*", rhttp.content_range(0, 10, nil))
        assert.are.equal("5-6/20", rhttp.content_range(5, 2, 20))
        assert.are.equal("*/*", rhttp.content_range(0, 0, nil))
        assert.are.equal("*/0", rhttp.content_range(0, 0, 0))
        assert.are.equal("*/3", rhttp.content_range(10, 0, 3))
    end)

    it("ranged: 200, 206 when the count shows more rows, 416 PGRST103 past the end", function()
        local h, status = rhttp.ranged(0, 2, nil, false)
        assert.are.equal(200, status)
        assert.are.same({ ["Content-Range"] = "0-1/*", ["Content-Type"] = rhttp.JSON }, h)
        h, status = rhttp.ranged(0, 2, 2, true)
        assert.are.equal(200, status)
        assert.are.equal("0-1/2", h["Content-Range"])
        assert.are.equal("count=exact", h["Preference-Applied"])
        h, status = rhttp.ranged(1, 2, 6, true)
        assert.are.equal(206, status)
        assert.are.equal("1-2/6", h["Content-Range"])
        h, status = rhttp.ranged(6, 0, 6, true)                -- at the end: none of 6
        assert.are.equal(206, status)
        assert.are.equal("*/6", h["Content-Range"])
        local err
        h, err = rhttp.ranged(7, 0, 6, true)
        assert.is_nil(h)
        assert.are.same({ 416, "PGRST103", "Requested range not satisfiable",
                          "An offset of 7 was requested, but there are only 6 rows." },
                        { err.status, err.code, err.message, err.details })
    end)

    it("unwrap: [x] -> x as raw JSON", function()
        assert.are.equal('{"a":1}', rhttp.unwrap('[{"a":1}]').text)
        assert.are.equal("42", rhttp.unwrap("[42]").text)
    end)
end)

describe("tide.rest.errors shared by the /rest/v1 sides", function()
    it("PGRST116 in PostgREST 12's words", function()
        local e = rerr.singular(3)
        assert.are.same({ 406, "PGRST116", "JSON object requested, multiple (or no) rows returned",
                          "The result contains 3 rows" },
                        { e.status, e.code, e.message, e.details })
    end)

    it("PGRST205 and PGRST102 with a hint", function()
        local e = rerr.table_not_found("public", "nope")
        assert.are.same({ 404, "PGRST205",
                          "Could not find the table 'public.nope' in the schema cache" },
                        { e.status, e.code, e.message })
        e = rerr.invalid_body("bad", nil, "try this")
        assert.are.same({ 400, "PGRST102", "bad", "try this" },
                        { e.status, e.code, e.message, e.hint })
    end)
end)
