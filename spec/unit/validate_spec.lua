-- spec/unit/validate_spec.lua - tide.validate: schemas, field-named errors, limit/offset.

local validate = require "tide.validate"
local json = require "tide.json"
local errors = require "tide.errors"

local TRIP = {
    name = { type = "string", required = true, max_len = 5 },
    travelers = { type = "integer", min = 1, max = 10 },
    budget = { type = "number", min = 0 },
    status = { type = "string", enum = { "planning", "booked" } },
    start_date = { type = "date" },
    owner = { type = "uuid" },
    public = { type = "boolean" },
    notes = { type = "array", items = { type = "string", max_len = 3 }, max_items = 2 },
    prefs = { type = "object" },
    address = { type = "object", fields = { city = { type = "string", required = true } } },
    ended = { type = "date", nullable = true },
}

-- the error's message for a body
local function problem(body, opts)
    local clean, err = validate.object(body, TRIP, opts)
    assert.is_nil(clean)
    assert.are.equal("TIDE_VALIDATION", err.code)
    assert.are.equal(422, err.status)
    -- the one error shape: a handler that returns it as its body is still answered as an error
    assert.is_true(errors.is_error(err))
    return err.message, err.details.field
end

describe("tide.validate.object", function()
    it("returns a clean copy with only the schema's fields", function()
        local body = json.decode('{"name":"Lis","travelers":2,"budget":10.5,"status":"booked",' ..
            '"start_date":"2024-02-29","owner":"5b0c6a1e-1f5e-4a59-9d33-2b8f0a3c9d11",' ..
            '"public":false,"notes":["a","bc"],"prefs":{"x":[1]},"address":{"city":"P"},' ..
            '"ended":null}')
        local clean, err = validate.object(body, TRIP)
        assert.is_nil(err)
        assert.are.equal("Lis", clean.name)
        assert.are.equal(2, clean.travelers)
        assert.is_false(clean.public)
        assert.are.same({ "a", "bc" }, clean.notes)
        assert.are.equal(json.array_mt, getmetatable(clean.notes))
        assert.are.same({ x = { 1 } }, clean.prefs)
        assert.are.same({ city = "P" }, clean.address)
        assert.are.equal(json.null, clean.ended)
        assert.are_not.equal(body, clean)
    end)

    it("keeps an empty array an array", function()
        local clean = validate.object(json.decode('{"name":"a","notes":[]}'), TRIP)
        assert.are.equal("[]", json.encode(clean.notes))
    end)

    it("names the missing required field", function()
        assert.are.same({ "name: is required", "name" }, { problem({}) })
        assert.are.same({ "address.city: is required", "address.city" },
                        { problem({ name = "a", address = {} }) })
    end)

    it("rejects unknown fields by name", function()
        assert.are.same({ "admin: unknown field", "admin" }, { problem({ name = "a", admin = true }) })
        assert.are.same({ "address.zip: unknown field", "address.zip" },
                        { problem({ name = "a", address = { city = "x", zip = 1 } }) })
    end)

    it("checks types", function()
        assert.are.equal("name: must be a string", (problem({ name = 5 })))
        assert.are.equal("travelers: must be an integer", (problem({ name = "a", travelers = 1.5 })))
        assert.are.equal("travelers: must be an integer", (problem({ name = "a", travelers = "2" })))
        assert.are.equal("budget: must be a number", (problem({ name = "a", budget = "10" })))
        assert.are.equal("budget: must be a number", (problem({ name = "a", budget = math.huge })))
        assert.are.equal("public: must be true or false", (problem({ name = "a", public = "yes" })))
        assert.are.equal("owner: must be a uuid", (problem({ name = "a", owner = "123" })))
        assert.are.equal("notes: must be an array", (problem({ name = "a", notes = "x" })))
        assert.are.equal("notes: must be an array", (problem({ name = "a", notes = { k = 1 } })))
        assert.are.equal("prefs: must be an object", (problem({ name = "a", prefs = { 1, 2 } })))
        assert.are.equal("prefs: must be an object", (problem({ name = "a", prefs = json.array {} })))
    end)

    it("checks dates for real calendar days", function()
        assert.are.equal("start_date: must be a date (YYYY-MM-DD)",
                         (problem({ name = "a", start_date = "2023-02-29" })))
        assert.are.equal("start_date: must be a date (YYYY-MM-DD)",
                         (problem({ name = "a", start_date = "2024-13-01" })))
        assert.are.equal("start_date: must be a date (YYYY-MM-DD)",
                         (problem({ name = "a", start_date = "2024-1-01" })))
        assert.is_true(validate.is_date("2000-02-29"))
        assert.is_false(validate.is_date("1900-02-29"))
        assert.is_true(validate.is_date("2024-04-30"))
        assert.is_false(validate.is_date("2024-04-31"))
    end)

    it("checks ranges, lengths (in characters) and enums", function()
        assert.are.equal("travelers: must be at least 1", (problem({ name = "a", travelers = 0 })))
        assert.are.equal("travelers: must be at most 10", (problem({ name = "a", travelers = 11 })))
        assert.are.equal("budget: must be at least 0", (problem({ name = "a", budget = -1 })))
        assert.are.equal("name: must be at most 5 characters", (problem({ name = "abcdef" })))
        -- five 2-byte characters are five characters
        assert.is_table((validate.object({ name = "ééééé" }, TRIP)))
        assert.are.equal("status: must be one of planning, booked",
                         (problem({ name = "a", status = "done" })))
    end)

    it("names array items by index", function()
        assert.are.same({ "notes[1]: must be at most 3 characters", "notes[1]" },
                        { problem({ name = "a", notes = { "ok", "long" } }) })
        assert.are.same({ "notes[0]: must be a string", "notes[0]" },
                        { problem({ name = "a", notes = { 1 } }) })
        assert.are.same({ "notes[0]: must not be null", "notes[0]" },
                        { problem({ name = "a", notes = { json.null } }) })
        assert.are.equal("notes: must have at most 2 items",
                         (problem({ name = "a", notes = { "a", "b", "c" } })))
    end)

    it("refuses null unless the field is nullable", function()
        assert.are.equal("budget: must not be null", (problem({ name = "a", budget = json.null })))
    end)

    it("skips required checks with partial = true (PATCH)", function()
        local clean = validate.object({ travelers = 3 }, TRIP, { partial = true })
        assert.are.same({ travelers = 3 }, clean)
        assert.are.equal("travelers: must be at most 10",
                         (problem({ travelers = 30 }, { partial = true })))
    end)

    it("refuses a body that is not an object", function()
        for _, body in ipairs { "x", 5, { 1, 2 }, json.array {} } do
            local clean, err = validate.object(body, TRIP)
            assert.is_nil(clean)
            assert.are.equal("body: must be a JSON object", err.message)
        end
    end)

    it("reports problems deterministically (fields in sorted order)", function()
        for _ = 1, 5 do
            assert.are.equal("budget: must be a number",
                             (problem({ name = 1, budget = "x", travelers = "y" })))
        end
    end)

    it("raises on a malformed schema (misuse)", function()
        assert.has_error(function() validate.object({}, { a = { type = "text" } }) end)
        assert.has_error(function() validate.object({}, { a = { type = "string", maxlen = 3 } }) end)
        assert.has_error(function() validate.object({}, "schema") end)
    end)
end)

describe("tide.validate.value and param", function()
    it("validates one value", function()
        assert.are.equal(5, validate.value(5, { type = "integer", max = 9 }, "n"))
        local v, err = validate.value(50, { type = "integer", max = 9 }, "n")
        assert.is_nil(v)
        assert.are.equal("n: must be at most 9", err.message)
        assert.is_nil((validate.value(nil, { type = "integer" }, "n")))
        local _, e2 = validate.value(nil, { type = "integer", required = true }, "n")
        assert.are.equal("n: is required", e2.message)
    end)

    it("converts and checks path/query text with status 400", function()
        assert.are.equal(42, validate.param("42", { type = "integer", min = 1 }, "id"))
        assert.are.equal(-1.5, validate.param("-1.5", { type = "number" }, "x"))
        assert.is_true(validate.param("true", { type = "boolean" }, "b"))
        assert.are.equal("5b0c6a1e-1f5e-4a59-9d33-2b8f0a3c9d11",
                         validate.param("5b0c6a1e-1f5e-4a59-9d33-2b8f0a3c9d11", { type = "uuid" }, "id"))
        for _, case in ipairs {
            { "4x", { type = "integer" }, "id: must be an integer" },
            { "0", { type = "integer", min = 1 }, "id: must be at least 1" },
            { "nan", { type = "number" }, "id: must be a number" },
            { "yes", { type = "boolean" }, "id: must be true or false" },
            { "abc", { type = "uuid" }, "id: must be a uuid" },
        } do
            local v, err = validate.param(case[1], case[2], "id")
            assert.is_nil(v)
            assert.are.equal(400, err.status)
            assert.are.equal(case[3], err.message)
        end
    end)
end)

describe("tide.validate.limit_offset", function()
    it("defaults to 20 and 0", function()
        assert.are.same({ 20, 0 }, { validate.limit_offset({}) })
        assert.are.same({ 20, 0 }, { validate.limit_offset({ limit = "", offset = "" }) })
        assert.are.same({ 20, 0 }, { validate.limit_offset(nil) })
    end)

    it("reads numbers from text and clamps the limit to the maximum", function()
        assert.are.same({ 5, 10 }, { validate.limit_offset({ limit = "5", offset = "10" }) })
        assert.are.same({ 100, 0 }, { validate.limit_offset({ limit = "1000" }) })
        assert.are.same({ 0, 0 }, { validate.limit_offset({ limit = "0" }) })
        assert.are.same({ 7, 3 }, { validate.limit_offset({ limit = 7, offset = 3 }) })
        assert.are.same({ 10, 0 }, { validate.limit_offset({}, { default = 10, max = 50 }) })
        assert.are.same({ 50, 0 }, { validate.limit_offset({ limit = "99" }, { max = 50 }) })
    end)

    it("names the bad field", function()
        for _, case in ipairs {
            { { limit = "-1" }, "limit" }, { { limit = "abc" }, "limit" },
            { { limit = "1.5" }, "limit" }, { { offset = "-5" }, "offset" },
            { { offset = "x" }, "offset" }, { { limit = -3 }, "limit" },
        } do
            local l, err = validate.limit_offset(case[1])
            assert.is_nil(l)
            assert.are.equal("TIDE_VALIDATION", err.code)
            assert.are.equal(422, err.status)
            assert.are.equal(case[2], err.details.field)
            assert.matches("^" .. case[2] .. ": ", err.message)
        end
    end)
end)
