-- spec/unit/router_spec.lua - tide.router: precedence, params, 404/405, decoding, duplicates.

local router = require "tide.router"

local function h(name)
    return function() return name end
end

local function build()
    local r = router.new()
    r:load("trips", {
        ["GET /v1/trips"] = h("list"),
        ["POST /v1/trips"] = h("create"),
        ["GET /v1/trips/search"] = h("search"),
        ["GET /v1/trips/:id"] = h("get"),
        ["PATCH /v1/trips/:id"] = h("patch"),
        ["DELETE /v1/trips/:id"] = h("delete"),
    })
    r:load("collaborators", {
        ["GET /v1/trips/:id/collaborators"] = h("collabs"),
        ["DELETE /v1/trips/:id/collaborators/:user_id"] = h("uncollab"),
    })
    r:load("root", { ["GET /"] = h("root") })
    return r
end

describe("tide.router", function()
    local r
    before_each(function() r = build() end)

    it("matches static routes", function()
        local f, params, route = r:match("GET", "/v1/trips")
        assert.are.equal("list", f())
        assert.are.same({}, params)
        assert.are.equal("/v1/trips", route.pattern)
        assert.are.equal("trips", route.module)
        assert.are.equal("create", (r:match("POST", "/v1/trips"))())
        assert.are.equal("root", (r:match("GET", "/"))())
    end)

    it("captures params", function()
        local f, params = r:match("GET", "/v1/trips/42")
        assert.are.equal("get", f())
        assert.are.same({ id = "42" }, params)
        local g, p2 = r:match("DELETE", "/v1/trips/7/collaborators/abc-def")
        assert.are.equal("uncollab", g())
        assert.are.same({ id = "7", user_id = "abc-def" }, p2)
    end)

    it("prefers a static segment over a param at the same position", function()
        assert.are.equal("search", (r:match("GET", "/v1/trips/search"))())
        -- but a method only the param route has still reaches it
        local f, params = r:match("PATCH", "/v1/trips/search")
        assert.are.equal("patch", f())
        assert.are.same({ id = "search" }, params)
    end)

    it("falls back to the param branch when the static branch cannot finish", function()
        local f, params = r:match("GET", "/v1/trips/search/collaborators")
        assert.are.equal("collabs", f())
        assert.are.same({ id = "search" }, params)
    end)

    it("answers 404 for unknown paths", function()
        assert.are.same({ nil, 404 }, { r:match("GET", "/v1/nothing") })
        assert.are.same({ nil, 404 }, { r:match("GET", "/v1/trips/1/2/3/4") })
        assert.are.same({ nil, 404 }, { r:match("GET", "/v1/trips/") })   -- empty id
        assert.are.same({ nil, 404 }, { r:match("GET", "/v1/trips//collaborators") })
        assert.are.same({ nil, 404 }, { r:match("GET", "v1/trips") })
        assert.are.same({ nil, 404 }, { r:match("GET", "") })
    end)

    it("answers 405 with the allowed methods for a known path", function()
        assert.are.same({ nil, 405, "GET, POST" }, { r:match("PUT", "/v1/trips") })
        assert.are.same({ nil, 405, "DELETE, GET, PATCH" }, { r:match("POST", "/v1/trips/9") })
        -- both the static and the param pattern match /v1/trips/search
        assert.are.same({ nil, 405, "DELETE, GET, PATCH" },
                        { r:match("POST", "/v1/trips/search") })
        assert.are.same({ nil, 405, "DELETE" }, { r:match("GET", "/v1/trips/1/collaborators/u") })
    end)

    it("percent-decodes params (and keeps + as +)", function()
        local _, params = r:match("GET", "/v1/trips/a%20b%2Fc+d%C3%A9")
        assert.are.same({ id = "a b/c+dé" }, params)
    end)

    it("answers 400 for malformed escapes and encoded NUL bytes in params", function()
        assert.are.same({ nil, 400 }, { r:match("GET", "/v1/trips/%zz") })
        assert.are.same({ nil, 400 }, { r:match("GET", "/v1/trips/abc%2") })
        assert.are.same({ nil, 400 }, { r:match("GET", "/v1/trips/a%00b") })
    end)

    it("compares static segments as sent", function()
        local f, params = r:match("GET", "/v1/trips/%73earch")
        assert.are.equal("get", f())
        assert.are.same({ id = "search" }, params)
    end)

    it("refuses duplicate routes across modules, naming both", function()
        local ok, err = pcall(r.load, r, "other", { ["GET /v1/trips/:trip_id"] = h("dup") })
        assert.is_false(ok)
        assert.matches("duplicate route GET /v1/trips/:trip_id", err, nil, true)
        assert.matches("module trips", err, nil, true)
        assert.matches("module other", err, nil, true)
        assert.has_no_error(function()
            r:load("other2", { ["PUT /v1/trips/:trip_id"] = h("put") })
        end)
        local f, params = r:match("PUT", "/v1/trips/5")
        assert.are.equal("put", f())
        assert.are.same({ trip_id = "5" }, params)
        -- and the GET still has its own name
        assert.are.same({ id = "5" }, select(2, r:match("GET", "/v1/trips/5")))
    end)

    it("refuses malformed route declarations", function()
        local fresh = router.new()
        assert.has_error(function() fresh:load("m", { ["GET/v1/x"] = h("x") }) end)
        assert.has_error(function() fresh:load("m", { ["get /v1/x"] = h("x") }) end)
        assert.has_error(function() fresh:load("m", { ["FETCH /v1/x"] = h("x") }) end)
        assert.has_error(function() fresh:load("m", { ["GET /v1/x"] = "not a function" }) end)
        assert.has_error(function() fresh:load("m", { ["GET /v1//x"] = h("x") }) end)
        assert.has_error(function() fresh:load("m", { ["GET /v1/x/"] = h("x") }) end)
        assert.has_error(function() fresh:load("m", { ["GET /v1/:1x"] = h("x") }) end)
        assert.has_error(function() fresh:load("m", { ["GET /v1/:a/:a"] = h("x") }) end)
        assert.has_error(function() fresh:load("m", { helper = h("x") }) end)
        assert.has_error(function() fresh:load("m", "routes") end)
    end)

    it("takes a route's options as { handler = fn, option = value }", function()
        local fresh = router.new()
        fresh:load("m", {
            ["POST /v1/own"] = { handler = h("own"), own_body_errors = true },
            ["POST /v1/plain"] = h("plain"),
        })
        local f, _, route = fresh:match("POST", "/v1/own")
        assert.are.equal("own", f())
        assert.is_true(route.own_body_errors)
        f, _, route = fresh:match("POST", "/v1/plain")
        assert.are.equal("plain", f())
        assert.is_nil(route.own_body_errors)
        assert.are.same({ method = "POST", pattern = "/v1/own", module = "m",
                          file = debug.getinfo(1, "S").source:sub(2),
                          line = debug.getinfo(h("x"), "S").linedefined }, fresh:list()[1])
        -- misuse: no handler, an unknown option, an option of the wrong type
        assert.error_matches(function()
            router.new():load("m", { ["GET /x"] = { own_body_errors = true } })
        end, "handler must be a function", nil, true)
        assert.error_matches(function()
            router.new():load("m", { ["GET /x"] = { handler = h("x"), own_body_error = true } })
        end, "unknown route option own_body_error", nil, true)
        assert.error_matches(function()
            router.new():load("m", { ["GET /x"] = { handler = h("x"), own_body_errors = 1 } })
        end, "own_body_errors must be true or false", nil, true)
    end)

    it("lists its routes sorted by pattern, then method, with where each handler is", function()
        local list = r:list()
        assert.are.equal(9, #list)
        assert.are.same({ "GET /", "GET /v1/trips", "POST /v1/trips", "GET /v1/trips/:id",
                          "PATCH /v1/trips/:id", "DELETE /v1/trips/:id" },
                        { list[1].method .. " " .. list[1].pattern,
                          list[2].method .. " " .. list[2].pattern,
                          list[3].method .. " " .. list[3].pattern,
                          list[4].method .. " " .. list[4].pattern,
                          list[5].method .. " " .. list[5].pattern,
                          list[6].method .. " " .. list[6].pattern })
        -- h() builds every handler of this spec: its file and the line the function starts on
        local here = debug.getinfo(1, "S").source:sub(2)
        assert.are.equal("trips", list[4].module)
        assert.are.equal(here, list[4].file)
        assert.are.equal(debug.getinfo(h("x"), "S").linedefined, list[4].line)
        -- a C function has no file or line
        local c = router.new()
        c:load("m", { ["GET /c"] = print })
        assert.are.same({ method = "GET", pattern = "/c", module = "m", file = "[C]" }, c:list()[1])
    end)
end)
