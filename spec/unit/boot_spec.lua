-- spec/unit/boot_spec.lua - tide.boot: loading a bundle and turning requests into responses,
-- with tiny route modules defined in package.preload and a fake tide.core for logging.

local boot = require "tide.boot"
local json = require "tide.json"
local http = require "tide.http"

local logs
local fake_core = {
    log = function(level, msg) logs[#logs + 1] = { level, msg } end,
    request_id = function() return "r1" end,
    null = json.null,
}

local function module(name, routes)
    package.loaded[name] = nil
    package.preload[name] = function() return routes end
end

local seen         -- the last req a handler saw

module("spec_things", {
    ["GET /v1/things"] = function(req)
        seen = req
        return { items = json.array {}, q = req.query }
    end,
    ["POST /v1/things"] = function(req)
        seen = req
        return { got = req.body }, 201, { Location = "/v1/things/1" }
    end,
    ["POST /rest/v1/:table"] = function(req)
        seen = req
        if req.body_error then
            return nil, http.error(400, "PGRST102", req.body_error.message)
        end
        return nil, 201
    end,
    ["GET /v1/things/:id"] = function(req)
        seen = req
        return { id = req.params.id }
    end,
    ["DELETE /v1/things/:id"] = function()
        return nil, 204
    end,
    ["GET /v1/boom"] = function()
        local t = nil
        return t.field          -- a Lua error
    end,
    ["GET /v1/db-error"] = function()
        return nil, { code = "23505", message = "duplicate key", details = "Key exists",
                      status = 409 }
    end,
    ["GET /v1/http-error"] = function()
        return nil, http.error(422, "TIDE_VALIDATION", "name: must not be blank",
                               { field = "name" })
    end,
    ["GET /v1/http-error-no-nil"] = function()
        return http.error(422, "TIDE_VALIDATION", "name: must not be blank", { field = "name" })
    end,
    ["GET /v1/unavailable"] = function()
        return nil, { code = "TIDE_UPSTREAM_UNAVAILABLE", status = 503, message = "retry later",
                      retry_after = 1.2 }
    end,
    ["GET /v1/timeout"] = function()
        return nil, { code = "TIDE_ACQUIRE_TIMEOUT", status = 504, message = "busy",
                      retry_after = 3 }
    end,
    ["GET /v1/headers"] = function(req)
        local h = {}
        for k, v in pairs(req.query) do h[k] = v == "NUL" and "a\0b" or v end
        return "ok", 200, h
    end,
    ["GET /v1/string-error"] = function()
        return nil, "secret internal detail"
    end,
    ["GET /v1/text"] = function()
        return "hello"
    end,
    ["GET /v1/csv"] = function()
        return "a,b\n", 200, { ["Content-Type"] = "text/csv" }
    end,
    ["GET /v1/raw"] = function()
        return json.raw('[{"id":1}, \n {"id":2}]')
    end,
    ["GET /v1/nothing"] = function() end,
    ["GET /v1/bad-status"] = function() return {}, 999 end,
    ["GET /v1/unencodable"] = function() return { x = 0 / 0 } end,
})
-- A route that answers bodies it cannot take in its own codes (as /rest/v1's do).
module("spec_own", {
    ["POST /v1/own"] = {
        own_body_errors = true,
        handler = function(req)
            seen = req
            if req.body_error then
                return nil, http.error(400, "PGRST102", req.body_error.message)
            end
            return nil, 201
        end,
    },
})
module("spec_more", {
    ["GET /v1/more"] = function() return { more = true } end,
})
module("_spec_helpers", {
    not_a_route = function() end,
})

-- A request as C hands it to boot.handle: routed (route_id and params, or route_status), as
-- runtime/router.c would (boot._route uses tide.router's matcher, which follows the same
-- rules; test_router.c checks C's).
local function req(method, path, opts)
    opts = opts or {}
    return boot._route({
        method = method, path = path, query_string = opts.query or "",
        headers = opts.headers or {}, body = opts.body, role = opts.role or "anon", id = "r1",
        claims_json = opts.claims_json,
    })
end

-- Returns status, decoded body, headers ({name as sent = value, ["content-type"] = the
-- content type}), body text and the raw header block, checking boot.handle's shape on the way.
local function call(method, path, opts)
    local status, body, ctype, block = boot.handle(req(method, path, opts))
    assert.is_number(status)
    assert.is_string(body)
    assert.is_string(ctype)
    assert.is_true(block == nil or (type(block) == "string" and block:sub(-2) == "\r\n"))
    local headers = { ["content-type"] = ctype }
    for name, value in (block or ""):gmatch("([^:\r\n]+): ([^\r\n]*)\r\n") do
        headers[name] = value
    end
    local decoded = body ~= "" and ctype == "application/json" and json.decode(body) or nil
    return status, decoded, headers, body, block
end

describe("tide.boot.load", function()
    before_each(function()
        logs = {}
        boot._set_core(fake_core)
    end)

    it("loads the modules, skips _libraries and returns the route count", function()
        local n = boot.load({ "spec_things", "spec_more", "_spec_helpers" })
        assert.are.equal(20, n)
        local list = boot.routes()
        assert.are.equal(20, #list)
        assert.are.equal("spec_things", list[1].module)
    end)

    it("rejects the whole bundle on a duplicate route, naming both modules", function()
        boot.load({ "spec_things" })
        module("spec_dup", { ["GET /v1/things/:thing"] = function() end })
        local ok, err = pcall(boot.load, { "spec_things", "spec_dup" })
        assert.is_false(ok)
        assert.matches("spec_things", err, nil, true)
        assert.matches("spec_dup", err, nil, true)
        -- the previous route table keeps serving
        assert.are.equal(200, (call("GET", "/v1/things")))
        assert.are.equal(404, (call("GET", "/v1/more")))
    end)

    it("rejects a module that fails to load or returns something else", function()
        package.loaded.spec_broken = nil
        package.preload.spec_broken = function() error("syntax error near 'end'") end
        assert.error_matches(function() boot.load({ "spec_broken" }) end, "syntax error", nil, true)
        module("spec_notable", "routes")
        assert.has_error(function() boot.load({ "spec_notable" }) end)
        module("spec_badkey", { helper = function() end })
        assert.error_matches(function() boot.load({ "spec_badkey" }) end, "not a route", nil, true)
        assert.has_error(function() boot.load("spec_things") end)
    end)

    it("rejects a routing policy that answers an unknown upstream", function()
        local routing = require "routing"
        local saved = routing.default.select
        routing.default.select = "replicas"
        local ok, err = pcall(boot.load, { "spec_things" })
        routing.default.select = saved
        assert.is_false(ok)
        assert.matches("routing.lua", err, nil, true)
    end)
end)

describe("tide.boot.handle", function()
    before_each(function()
        logs = {}
        seen = nil
        boot._set_core(fake_core)
        boot.load({ "spec_things", "spec_more" })
    end)

    it("answers 404 TIDE_NOT_FOUND for unknown paths", function()
        local status, body, headers = call("GET", "/v1/unknown")
        assert.is_nil(select(5, call("GET", "/v1/unknown")))
        assert.are.equal(404, status)
        assert.are.equal("TIDE_NOT_FOUND", body.code)
        assert.are.equal(json.null, body.hint)
        assert.are.equal("application/json", headers["content-type"])
    end)

    it("answers 405 TIDE_METHOD_NOT_ALLOWED with Allow", function()
        local status, body, headers, _, block = call("PUT", "/v1/things/3")
        assert.are.equal(405, status)
        assert.are.equal("TIDE_METHOD_NOT_ALLOWED", body.code)
        assert.are.equal("application/json", headers["content-type"])
        assert.are.equal("allow: DELETE, GET\r\n", block)
    end)

    it("gives C the routes to compile: method, pattern, key; req.route_id indexes them",
       function()
        local table_ = boot.route_table()
        assert.are.equal(#boot.routes(), #table_)
        local found
        for i = 1, #table_ do
            local r = table_[i]
            assert.are.equal(r.method .. " " .. r.pattern, r.key)
            if r.key == "GET /v1/things/:id" then found = i end
        end
        assert.truthy(found)
        -- as C hands a routed request over: no matching in Lua, the params as given
        local status, body = boot.handle({ method = "GET", path = "/v1/things/7", id = "r1",
                                           query_string = "", headers = {}, role = "anon",
                                           route_id = found, params = { id = "seven" } })
        assert.are.equal(200, status)
        assert.are.equal("seven", json.decode(body).id)
    end)

    it("answers 503 TIDE_ROUTE_QUARANTINED with Retry-After for a route C says is closed",
       function()
        local r = req("GET", "/v1/things/7")
        r.closed = 12.2
        local status, body, _, block = boot.handle(r)
        assert.are.equal(503, status)
        assert.are.equal("TIDE_ROUTE_QUARANTINED", json.decode(body).code)
        assert.are.equal("Retry-After: 13\r\n", block)
        assert.is_nil(seen)                              -- the handler never ran
    end)

    it("answers 400 for malformed percent-encoding", function()
        assert.are.equal(400, (call("GET", "/v1/things/%zz")))
        local status, body = call("GET", "/v1/things", { query = "a=%zz" })
        assert.are.equal(400, status)
        assert.are.equal("TIDE_INVALID_QUERY", body.code)
    end)

    it("gives the handler decoded params and query", function()
        local status, body = call("GET", "/v1/things/a%20b")
        assert.are.equal(200, status)
        assert.are.equal("a b", body.id)
        assert.are.equal("/v1/things/:id", seen.route)
        call("GET", "/v1/things", { query = "q=hello+world%21&limit=5&limit=7&flag&=x" })
        assert.are.same({ q = "hello world!", limit = "7", flag = "" }, seen.query)
        assert.are.same({}, seen.params)
    end)

    it("encodes table bodies as JSON, keeping empty arrays", function()
        local status, _, headers, text = call("GET", "/v1/things")
        assert.are.equal(200, status)
        assert.matches('"items":[]', text, nil, true)
        assert.matches('"q":{}', text, nil, true)
        assert.are.equal("application/json", headers["content-type"])
    end)

    it("parses JSON bodies and passes status and headers through", function()
        local status, body, headers = call("POST", "/v1/things",
            { body = '{"name":"x","tags":[]}', headers = { ["content-type"] = "application/json; charset=utf-8" } })
        assert.are.equal(201, status)
        assert.are.equal("x", body.got.name)
        assert.are.equal("/v1/things/1", headers.Location)
        assert.are.equal("application/json", headers["content-type"])
        assert.are.equal('{"name":"x","tags":[]}', seen.raw_body)
        assert.are.equal(json.array_mt, getmetatable(seen.body.tags))
        -- no content-type at all is treated as JSON
        assert.are.equal(201, (call("POST", "/v1/things", { body = "[1]" })))
        assert.are.same({ 1 }, seen.body)
    end)

    it("answers 400 TIDE_INVALID_JSON for a malformed body", function()
        local status, body = call("POST", "/v1/things", { body = '{"name":' })
        assert.are.equal(400, status)
        assert.are.equal("TIDE_INVALID_JSON", body.code)
        assert.is_nil(seen)
        local s2, b2 = call("POST", "/v1/things", { body = '{"n":1e999}' })
        assert.are.equal(400, s2)
        assert.are.equal("TIDE_INVALID_JSON", b2.code)
    end)

    it("answers 415 for a body that is not JSON", function()
        local status, body = call("POST", "/v1/things",
            { body = "a=1", headers = { ["content-type"] = "application/x-www-form-urlencoded" } })
        assert.are.equal(415, status)
        assert.are.equal("TIDE_UNSUPPORTED_MEDIA_TYPE", body.code)
        assert.are.equal(201, (call("POST", "/v1/things",
            { body = "{}", headers = { ["content-type"] = "application/merge-patch+json" } })))
    end)

    it("refuses a body it cannot take under /rest/v1/ too: a path prefix is nothing special",
       function()
        local status, body = call("POST", "/rest/v1/t", { body = '{"name":' })
        assert.are.equal(400, status)
        assert.are.equal("TIDE_INVALID_JSON", body.code)
        assert.is_nil(seen)
        assert.are.equal(201, (call("POST", "/rest/v1/t", { body = '{"a":1}' })))
        assert.is_nil(seen.body_error)
        assert.are.same({ a = 1 }, seen.body)
    end)

    it("turns a Lua error into a 500 that does not leak the traceback", function()
        local status, body, _, text = call("GET", "/v1/boom")
        assert.are.equal(500, status)
        assert.are.equal("TIDE_INTERNAL", body.code)
        assert.are.equal("internal error", body.message)
        assert.are.equal("request r1", body.details)
        assert.is_nil(text:find("boot_spec", 1, true))
        assert.is_nil(text:find("traceback", 1, true))
        assert.are.equal("error", logs[1][1])
        assert.matches("attempt to index", logs[1][2], nil, true)
        assert.matches("stack traceback", logs[1][2], nil, true)
        assert.matches("/v1/boom", logs[1][2], nil, true)
    end)

    it("answers 204 with an empty body", function()
        local status, body, _, text = call("DELETE", "/v1/things/1")
        assert.are.equal(204, status)
        assert.is_nil(body)
        assert.are.equal("", text)
        local s2, _, _, t2 = call("GET", "/v1/nothing")
        assert.are.equal(204, s2)
        assert.are.equal("", t2)
    end)

    it("maps nil, db_error to the error's status and PostgREST-shaped body", function()
        local status, body = call("GET", "/v1/db-error")
        assert.are.equal(409, status)
        assert.are.same({ code = "23505", message = "duplicate key", details = "Key exists",
                          hint = json.null }, body)
    end)

    it("maps nil, http.error(...) to the same shape", function()
        local status, body = call("GET", "/v1/http-error")
        assert.are.equal(422, status)
        assert.are.same({ code = "TIDE_VALIDATION", message = "name: must not be blank",
                          details = { field = "name" }, hint = json.null }, body)
    end)

    it("answers an error table returned as the body (the nil forgotten) as the error", function()
        local status, body = call("GET", "/v1/http-error-no-nil")
        assert.are.equal(422, status)
        assert.are.same({ code = "TIDE_VALIDATION", message = "name: must not be blank",
                          details = { field = "name" }, hint = json.null }, body)
    end)

    it("decodes the token's claims once per text and gives each request its own copy", function()
        local cj = '{"sub":"u-1","role":"authenticated","app_metadata":{"plan":"pro"}}'
        call("GET", "/v1/things", { claims_json = cj, role = "authenticated" })
        local first = seen.claims
        assert.are.equal("u-1", first.sub)
        assert.are.equal("pro", first.app_metadata.plan)
        first.sub, first.app_metadata.plan = "changed", "changed"   -- a script may do this
        call("GET", "/v1/things", { claims_json = cj, role = "authenticated" })
        assert.are_not.equal(first, seen.claims)
        assert.are.equal("u-1", seen.claims.sub)
        assert.are.equal("pro", seen.claims.app_metadata.plan)
        call("GET", "/v1/things")
        assert.is_nil(seen.claims)                                -- anon: no claims
        assert.is_nil(boot._claims_of("1"))                       -- not an object
    end)

    it("maps nil, string to a 500 without sending the string", function()
        local status, _, _, text = call("GET", "/v1/string-error")
        assert.are.equal(500, status)
        assert.is_nil(text:find("secret", 1, true))
        assert.matches("secret internal detail", logs[1][2], nil, true)
    end)

    it("sends strings as text/plain unless the handler set a content-type", function()
        local status, _, headers, text = call("GET", "/v1/text")
        assert.are.equal(200, status)
        assert.are.equal("hello", text)
        assert.are.equal("text/plain; charset=utf-8", headers["content-type"])
        local _, _, h2, t2, block = call("GET", "/v1/csv")
        assert.are.equal("a,b\n", t2)
        assert.are.equal("text/csv", h2["content-type"])
        assert.is_nil(block)
    end)

    it("sends json.raw bodies verbatim", function()
        local status, _, headers, text = call("GET", "/v1/raw")
        assert.are.equal(200, status)
        assert.are.equal('[{"id":1}, \n {"id":2}]', text)
        assert.are.equal("application/json", headers["content-type"])
    end)

    it("adds Retry-After (whole seconds, rounded up) to a 503 error that carries retry_after",
       function()
        local status, body, _, _, block = call("GET", "/v1/unavailable")
        assert.are.equal(503, status)
        assert.are.same({ code = "TIDE_UPSTREAM_UNAVAILABLE", message = "retry later",
                          details = json.null, hint = json.null }, body)
        assert.are.equal("Retry-After: 2\r\n", block)
        local s2, _, _, _, b2 = call("GET", "/v1/timeout")
        assert.are.equal(504, s2)
        assert.is_nil(b2)
        assert.is_nil(select(5, call("GET", "/v1/unknown")))
    end)

    it("formats the handler's headers once: sorted lines, content-type apart", function()
        local status, _, headers, text, block = call("GET", "/v1/headers",
            { query = "X-B=2&X-A=1&Content-Type=text%2Fcsv&content-length=9&Connection=close" })
        assert.are.equal(200, status)
        assert.are.equal("ok", text)
        assert.are.equal("text/csv", headers["content-type"])
        assert.are.equal("X-A: 1\r\nX-B: 2\r\n", block)
    end)

    it("answers 500 for a header name that is not a token or a value with CR, LF or NUL",
       function()
        for _, q in ipairs({ "X-A=a%0D%0AX-Evil:%201", "X-A=a%0Ab", "X-A=NUL",
                             "X%20A=1", "X%3AA=1", "X%0D%0AA=1" }) do
            logs = {}
            local status, body, _, text, block = call("GET", "/v1/headers", { query = q })
            assert.are.equal(500, status, q)
            assert.are.equal("TIDE_INTERNAL", body.code)
            assert.is_nil(block)
            assert.is_nil(text:find("Evil", 1, true))
            assert.matches("invalid headers", logs[1][2], nil, true)
        end
    end)

    it("answers 500 for an invalid status or an unencodable body", function()
        assert.are.equal(500, (call("GET", "/v1/bad-status")))
        assert.are.equal(500, (call("GET", "/v1/unencodable")))
        assert.are.equal(2, #logs)
    end)
end)

describe("tide.boot.handle, a route declaring own_body_errors", function()
    before_each(function()
        logs = {}
        seen = nil
        boot._set_core(fake_core)
        boot.load({ "spec_things", "spec_own" })
    end)

    it("gets a body boot cannot take as req.body_error, and answers it itself", function()
        local status, body = call("POST", "/v1/own", { body = '{"name":' })
        assert.are.equal(400, status)
        assert.are.equal("PGRST102", body.code)
        assert.are.equal("TIDE_INVALID_JSON", seen.body_error.code)
        assert.is_nil(seen.body)
        call("POST", "/v1/own", { body = "a,b", headers = { ["content-type"] = "text/csv" } })
        assert.are.equal(415, seen.body_error.status)
        call("POST", "/v1/own", { body = string.rep("[", 100) .. string.rep("]", 100) })
        assert.are.equal("TIDE_JSON_TOO_DEEP", seen.body_error.code)
        assert.is_nil(seen.body)
        assert.are.equal(201, (call("POST", "/v1/own", { body = '{"a":1}' })))
        assert.is_nil(seen.body_error)
        assert.are.same({ a = 1 }, seen.body)
    end)

    it("is listed like any route, with where its handler is", function()
        local found
        for _, r in ipairs(boot.routes()) do
            if r.pattern == "/v1/own" then found = r end
        end
        assert.are.equal("spec_own", found.module)
        assert.are.equal(debug.getinfo(1, "S").source:sub(2), found.file)
    end)
end)
