-- spec/unit/common_spec.lua - scripts/_common.lua and tide.http: every failure a script sees
-- is one error table {code, message, details, hint, status}.

local common = require "_common"
local http = require "tide.http"
local json = require "tide.json"

local UUID = "0b7e2a52-52cf-4b69-a4bb-4f2b8f1d3c11"

local function signed_in(extra)
    local req = { role = "authenticated", claims = { sub = UUID }, params = {}, query = {} }
    for k, v in pairs(extra or {}) do req[k] = v end
    return req
end

local function is_error(err, status, code)
    assert.is_table(err)
    assert.are.equal(status, err.status)
    assert.are.equal(code, err.code)
    assert.is_string(err.message)
end

describe("scripts/_common.lua", function()
    it("user: the caller's sub, or nil, 401 error", function()
        assert.are.equal(UUID, common.user(signed_in()))
        local sub, err = common.user({ role = "anon", claims = {} })
        assert.is_nil(sub)
        is_error(err, 401, "TIDE_AUTH_REQUIRED")
    end)

    it("int_id and uuid_id: the value, or nil, 400 error naming the parameter", function()
        assert.are.equal(7, common.int_id(signed_in({ params = { id = "7" } }), "id"))
        local id, err = common.int_id(signed_in({ params = { id = "x" } }), "id")
        assert.is_nil(id)
        is_error(err, 400, "TIDE_VALIDATION")
        assert.are.same({ field = "id" }, err.details)
        id, err = common.uuid_id(signed_in({ params = { id = "7" } }), "id")
        assert.is_nil(id)
        is_error(err, 400, "TIDE_VALIDATION")
    end)

    it("body and patch: the clean table, or nil, 400/422 error", function()
        local schema = { name = { type = "string", required = true } }
        assert.are.same({ name = "x" }, common.body(signed_in({ body = { name = "x" } }), schema))
        local clean, err = common.body(signed_in(), schema)
        assert.is_nil(clean)
        is_error(err, 400, "TIDE_BODY_REQUIRED")
        clean, err = common.body(signed_in({ body = { name = 1 } }), schema)
        assert.is_nil(clean)
        is_error(err, 422, "TIDE_VALIDATION")
        clean, err = common.patch(signed_in({ body = {} }), schema)
        assert.is_nil(clean)
        is_error(err, 422, "TIDE_VALIDATION")
    end)

    it("check_blank: the table, or nil, 422 error naming the first blank field", function()
        local t = { a = "x", b = "  " }
        assert.are.equal(t, common.check_blank(t, { "a" }))
        local ok, err = common.check_blank(t, { "a", "b" })
        assert.is_nil(ok)
        is_error(err, 422, "TIDE_VALIDATION")
        assert.are.same({ field = "b" }, err.details)
    end)

    it("query_text and page: the value, or nil, 422 error", function()
        assert.is_nil(common.query_text({}, "q", 5))
        assert.are.equal("abc", common.query_text({ q = "abc" }, "q", 5))
        local v, err = common.query_text({ q = "abcdef" }, "q", 5)
        assert.is_nil(v)
        is_error(err, 422, "TIDE_VALIDATION")
        assert.are.same({ limit = 100, offset = 0 }, common.page({ limit = "500" }))
        v, err = common.page({ limit = "-1" })
        assert.is_nil(v)
        is_error(err, 422, "TIDE_VALIDATION")
    end)

    it("invalid, not_found and forbidden build error tables", function()
        is_error(common.invalid("f", "bad"), 422, "TIDE_VALIDATION")
        is_error(common.not_found("gone"), 404, "TIDE_NOT_FOUND")
        is_error(common.forbidden("no"), 403, "TIDE_FORBIDDEN")
    end)
end)

describe("tide.http", function()
    it("error builds an error table and error_body the client's four keys", function()
        local err = http.error(409, "X_CONFLICT", "taken", { field = "name" })
        assert.are.same({ code = "X_CONFLICT", status = 409, message = "taken",
                          details = { field = "name" } }, err)
        local body, status = http.error_body(err)
        assert.are.equal(409, status)
        assert.are.same({ code = "X_CONFLICT", message = "taken", details = { field = "name" },
                          hint = json.null }, body)
    end)

    it("error rejects a bad status or code (misuse)", function()
        assert.has_error(function() http.error(99, "X") end)
        assert.has_error(function() http.error(404.5, "X") end)
        assert.has_error(function() http.error(404, nil) end)
    end)

    it("error_body: a non-table error is a 500 that says nothing more", function()
        local body, status = http.error_body("secret")
        assert.are.equal(500, status)
        assert.are.equal("TIDE_INTERNAL", body.code)
        assert.are.equal(json.null, body.details)
    end)
end)
