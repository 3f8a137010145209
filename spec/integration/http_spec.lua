-- spec/integration/http_spec.lua - the HTTP layer as a client sees it: JSON errors for an
-- unknown route (404) and a wrong method (405), malformed JSON (400), a body over the limit
-- (413) and a head over the limit (431), each leaving the server serving; keep-alive (several
-- requests on one connection), pipelining (several requests in one write, answered in order,
-- even when the first is the slowest) and a chunked request body; a chunked trailer is never
-- taken as a header (nor as body); malformed or ambiguous framing (bare LF, obs-fold, no Host,
-- a repeated Authorization) is a JSON 400 and a close; a repeated header means its first
-- occurrence, to the scripts as to the C core.

local socket = require "socket"
local cjson = require "cjson"
local env = require "spec.helpers.env"
local http = require "spec.helpers.http"
local api = require "spec.helpers.api"

local function assert_json_error(status, body, headers, expected)
    assert.are.equal(expected, status)
    assert.matches("application/json", headers["content-type"] or "", 1, true)
    assert.are.equal("table", type(body))
    assert.is_string(body.code)
    assert.is_string(body.message)
end

-- Reads one response and decodes it; raises when there is none.
local function read(sock)
    local status, headers, body = http.read_response(sock)
    assert(status, "no response: " .. tostring(headers))
    return status, http.decode(headers, body), headers
end

describe("http", function()
    local u

    setup(function()
        env.need("bin")
        u = api.user()
    end)

    it("an unknown route is a JSON 404", function()
        for _, path in ipairs { "/v1/nope", "/", "/v1/trips/1/nope", "/v2/trips" } do
            local status, body, headers = http.request("GET", path, { token = u.token })
            assert_json_error(status, body, headers, 404)
        end
    end)

    it("a known path with another method is a JSON 405", function()
        for _, r in ipairs { { "PUT", "/v1/trips" }, { "DELETE", "/v1/users/me" },
                             { "POST", "/v1/destinations/popular" } } do
            local status, body, headers = http.request(r[1], r[2], { token = u.token, body = {} })
            assert_json_error(status, body, headers, 405)
        end
    end)

    it("malformed JSON is a JSON 400, and nothing is stored", function()
        for _, text in ipairs { "{bad", '{"name": "x",}', "", "nul" } do
            local status, body, headers = http.request("POST", "/v1/search-history", {
                token = u.token, body = text, headers = { ["Content-Type"] = "application/json" },
            })
            if text ~= "" then
                assert_json_error(status, body, headers, 400)
            else
                assert.are.equal(400, status)
            end
        end
        local _, rows = api.call(u, "GET", "/v1/search-history")
        assert.are.same({}, rows)
    end)

    it("a body over the limit is 413, and the server keeps serving", function()
        local sock = http.connect()
        local total = 4 * 1024 * 1024   -- etc/tide.conf.lua allows 1 MiB
        http.send(sock, "POST /v1/search-history HTTP/1.1\r\nHost: 127.0.0.1\r\n" ..
                        "Authorization: Bearer " .. u.token .. "\r\n" ..
                        "Content-Type: application/json\r\nContent-Length: " .. total .. "\r\n\r\n")
        -- Send until the server answers (it may do so at the headers) or stops reading.
        local chunk = string.rep("a", 65536)
        sock:settimeout(2)
        local sent = 0
        while sent < total do
            local readable = socket.select({ sock }, nil, 0)
            if readable[1] then break end
            local last = sock:send(chunk)
            if not last then break end
            sent = sent + #chunk
        end
        sock:settimeout(http.TIMEOUT)
        local status, body, headers = read(sock)
        sock:close()
        assert_json_error(status, body, headers, 413)

        assert.are.equal(200, (api.call(u, "GET", "/v1/search-history")))
    end)

    it("a request head over the limit is 431, and the server keeps serving", function()
        local sock = http.connect()
        http.send(sock, "GET /v1/users/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: " ..
                        string.rep("f", 64 * 1024) .. "\r\n\r\n")
        local status = read(sock)
        sock:close()
        assert.are.equal(431, status)
        assert.are.equal(200, (api.call(u, "GET", "/v1/users/me")))
    end)

    it("keep-alive: several requests on one connection", function()
        local sock = http.connect()
        for i = 1, 3 do
            http.send(sock, http.build("GET", "/v1/users/me", { token = u.token }))
            local status, body, headers = read(sock)
            assert.are.equal(200, status, "request " .. i)
            assert.are.equal(u.id, body.id)
            assert.is_nil((headers.connection or ""):lower():find("close"), "server closed the connection")
        end
        -- a write on the same connection after the reads still works
        http.send(sock, http.build("POST", "/v1/search-history", {
            token = u.token, body = { search_type = "keepalive", query = { n = 1 } } }))
        assert.are.equal(201, (read(sock)))
        http.send(sock, http.build("DELETE", "/v1/search-history", { token = u.token }))
        local status, body = read(sock)
        assert.are.equal(200, status)
        assert.are.same({ deleted = 1 }, body)
        sock:close()
    end)

    it("pipelining: requests sent in one write are answered in order", function()
        local sock = http.connect()
        http.send(sock, table.concat {
            http.build("GET", "/v1/destinations/popular?limit=100", { token = u.token }),  -- slowest
            http.build("GET", "/v1/nope", { token = u.token }),                             -- no Postgres
            http.build("GET", "/v1/users/me", { token = u.token }),
            http.build("POST", "/v1/search-history", {
                token = u.token, body = { search_type = "pipelined", query = { n = 2 } } }),
            http.build("GET", "/v1/search-history?search_type=pipelined", { token = u.token }),
        })
        local status, body = read(sock)
        assert.are.equal(200, status)
        assert.are.equal(100, #body)
        status, body = read(sock)
        assert.are.equal(404, status)
        assert.is_string(body.code)
        status, body = read(sock)
        assert.are.equal(200, status)
        assert.are.equal(u.id, body.id)
        status, body = read(sock)
        assert.are.equal(201, status)
        local created = body.id
        status, body = read(sock)
        assert.are.equal(200, status)
        assert.are.same({ created }, api.ids(body))
        sock:close()
        api.call(u, "DELETE", "/v1/search-history")
    end)

    it("Connection: close is honoured after the answer", function()
        local sock = http.connect()
        http.send(sock, http.build("GET", "/v1/users/me", { token = u.token, close = true }))
        local status = read(sock)
        assert.are.equal(200, status)
        sock:settimeout(5)
        local data, err = sock:receive(1)
        assert.is_nil(data)
        assert.are.equal("closed", err)
        sock:close()
    end)

    it("a chunked request body is accepted", function()
        local payload = cjson.encode { search_type = "chunked", query = { q = "x" } }
        local half = math.floor(#payload / 2)
        local sock = http.connect()
        http.send(sock, "POST /v1/search-history HTTP/1.1\r\nHost: 127.0.0.1\r\n" ..
                        "Authorization: Bearer " .. u.token .. "\r\n" ..
                        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" ..
                        string.format("%x\r\n%s\r\n", half, payload:sub(1, half)) ..
                        string.format("%x\r\n%s\r\n", #payload - half, payload:sub(half + 1)) ..
                        "0\r\n\r\n")
        local status, body = read(sock)
        sock:close()
        assert.are.equal(201, status)
        assert.are.equal("chunked", body.search_type)
        api.call(u, "DELETE", "/v1/search-history")
    end)

    -- Sends raw bytes on a fresh connection; returns status, decoded body, headers and
    -- whether the server closed the connection after answering (waits up to 5 s for that:
    -- requests that should be served say Connection: close).
    local function raw(bytes)
        local sock = http.connect()
        http.send(sock, bytes)
        local status, body, headers = read(sock)
        sock:settimeout(5)
        local data, err = sock:receive(1)
        sock:close()
        return status, body, headers, data == nil and err == "closed"
    end

    it("a trailer is not a header: Authorization only in the trailer does not authenticate",
       function()
        local status, body = raw("GET /v1/users/me HTTP/1.1\r\nHost: 127.0.0.1\r\n" ..
                                 "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n" ..
                                 "Authorization: Bearer " .. u.token .. "\r\n\r\n")
        assert.are.equal(401, status)
        assert.are.equal("TIDE_AUTH_REQUIRED", body.code)
        -- a bad token there is not even looked at
        status, body = raw("GET /v1/users/me HTTP/1.1\r\nHost: 127.0.0.1\r\n" ..
                           "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n" ..
                           "Authorization: Bearer not-a-token\r\n\r\n")
        assert.are.equal(401, status)
        assert.are.equal("TIDE_AUTH_REQUIRED", body.code)

        -- nor does a trailer override a header or reach the body
        local payload = cjson.encode { search_type = "trailer", query = { q = "t" } }
        status, body = raw("POST /v1/search-history HTTP/1.1\r\nHost: 127.0.0.1\r\n" ..
                           "Authorization: Bearer " .. u.token .. "\r\n" ..
                           "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n" ..
                           "Connection: close\r\n\r\n" .. string.format("%x\r\n%s\r\n", #payload, payload) ..
                           "0\r\nContent-Type: text/plain\r\nX-Extra: 1\r\n\r\n")
        assert.are.equal(201, status)
        assert.are.equal("trailer", body.search_type)
        api.call(u, "DELETE", "/v1/search-history")
    end)

    it("ambiguous or malformed framing is a JSON 400 TIDE_BAD_REQUEST, then a close", function()
        local auth = "Authorization: Bearer " .. u.token .. "\r\n"
        for _, bytes in ipairs {
            "GET /v1/users/me HTTP/1.1\nHost: 127.0.0.1\n" .. auth .. "\r\n",      -- bare LF
            "GET /v1/users/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\r\n b\r\n" ..
                auth .. "\r\n",                                                    -- obs-fold
            "GET /v1/users/me HTTP/1.1\r\n" .. auth .. "\r\n",                      -- no Host
            "GET /v1/users/me HTTP/1.1\r\nHost: 127.0.0.1\r\n" .. auth ..
                "Authorization: Bearer x\r\n\r\n",                                 -- two tokens
            "GET /v1/users/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX Y: z\r\n" .. auth .. "\r\n",
        } do
            local status, body, headers, closed = raw(bytes)
            assert_json_error(status, body, headers, 400)
            assert.are.equal("TIDE_BAD_REQUEST", body.code)
            assert.is_true(closed, "connection left open after a 400")
        end
        assert.are.equal(200, (api.call(u, "GET", "/v1/users/me")))
    end)

    it("a repeated header means its first occurrence, to scripts as to the core", function()
        local payload = cjson.encode { search_type = "dup", query = { q = "d" } }
        local function post(first, second)
            return raw("POST /v1/search-history HTTP/1.1\r\nHost: 127.0.0.1\r\n" ..
                       "Authorization: Bearer " .. u.token .. "\r\n" ..
                       "Content-Type: " .. first .. "\r\nContent-Type: " .. second .. "\r\n" ..
                       "Content-Length: " .. #payload .. "\r\nConnection: close\r\n\r\n" .. payload)
        end
        assert.are.equal(201, (post("application/json", "text/plain")))
        assert.are.equal(415, (post("text/plain", "application/json")))
        api.call(u, "DELETE", "/v1/search-history")
    end)
end)
