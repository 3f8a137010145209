-- The admin listener as a web page in a browser on the same host would meet it (docs/security.md
-- "The admin listener"), and request ids a client cannot forge (docs/metrics.md "Request ids"):
--   * a request naming another Host (a DNS-rebinding page: Host evil.example) is refused 421
--     with a JSON error, GET or POST; loopback names and IP addresses, with or without a port,
--     are served;
--   * a state-changing request (POST /admin/cache/flush, POST /admin/queries?reset=1) without
--     the admin token, or with a wrong one, is refused 401 and changes nothing; with the token
--     it is served; GET /admin/queries?reset=1 is refused 405 and resets nothing;
--   * a tide with no admin token configured refuses every state-changing request 403;
--   * every admin answer is JSON a decoder takes: a flush tag holding a quote and a backslash
--     comes back as sent;
--   * two requests sending the same X-Request-Id get distinct ids of tide's own (the answer's
--     X-Request-Id, the access log's id), the client's value kept beside them in the access
--     log's client_request_id.

local env = require "spec.helpers.env"
local api = require "spec.helpers.api"
local http = require "spec.helpers.http"
local spawn = require "spec.helpers.spawn"
local cjson = require "cjson.safe"

-- One request written by hand to the admin listener (so its Host is ours to choose):
-- status, decoded body, headers, raw body.
local function raw(method, path, host, headers, url)
    local sock = http.connect(url or env.admin_url, 5)
    local lines = { method .. " " .. path .. " HTTP/1.1" }
    if host then lines[#lines + 1] = "Host: " .. host end
    for k, v in pairs(headers or {}) do lines[#lines + 1] = k .. ": " .. v end
    lines[#lines + 1] = "Content-Length: 0"
    lines[#lines + 1] = "Connection: close"
    http.send(sock, table.concat(lines, "\r\n") .. "\r\n\r\n")
    local status, h, body = http.read_response(sock, method)
    sock:close()
    assert(status, "no answer to " .. method .. " " .. path .. ": " .. tostring(h))
    return status, http.decode(h, body), h, body
end

local function bearer(token)
    return { Authorization = "Bearer " .. token }
end

local function admin_port(url)
    return (url or env.admin_url):match(":(%d+)$")
end

describe("the admin listener", function()
    setup(function()
        env.need("admin_url")
    end)

    it("refuses a foreign Host with 421 and a JSON error, GET or POST", function()
        for _, method in ipairs { "GET", "POST" } do
            local path = method == "GET" and "/admin/stats" or "/admin/cache/flush"
            for _, host in ipairs { "evil.example", "evil.example:" .. admin_port(),
                                    "localhost.evil.example", "127.0.0.1.evil.example" } do
                local status, body, _, text = raw(method, path, host, bearer(env.admin_token))
                assert.equals(421, status, method .. " with Host " .. host .. ": " .. text)
                assert.equals("table", type(body), text)
                assert.equals("TIDE_ADMIN_HOST", body.code)
            end
        end
    end)

    it("serves loopback names and IP addresses, with or without a port", function()
        local p = admin_port()
        for _, host in ipairs { "127.0.0.1", "127.0.0.1:" .. p, "localhost", "localhost:" .. p,
                                "LocalHost:" .. p, "[::1]", "[::1]:" .. p } do
            local status, body, _, text = raw("GET", "/admin/stats", host)
            assert.equals(200, status, "Host " .. host .. ": " .. text)
            assert.equals("table", type(body.http), text)
        end
        assert.equals(200, (raw("GET", "/live", "10.1.2.3:9000")))   -- a probe by pod address
        assert.equals(200, (raw("GET", "/metrics", "[fd00::7]:" .. p)))
    end)

    it("refuses a state-changing request without the admin token, and serves it with", function()
        local status, body, h = raw("POST", "/admin/cache/flush", "127.0.0.1")
        assert.equals(401, status)
        assert.equals("TIDE_ADMIN_UNAUTHORIZED", body.code)
        assert.truthy((h["www-authenticate"] or ""):find("Bearer", 1, true))
        status, body = raw("POST", "/admin/cache/flush", "127.0.0.1",
                           bearer(env.admin_token .. "x"))
        assert.equals(401, status)
        assert.equals("TIDE_ADMIN_UNAUTHORIZED", body.code)
        status, body = raw("POST", "/admin/cache/flush", "127.0.0.1",
                           { Authorization = "Basic " .. env.admin_token })
        assert.equals(401, status)
        assert.equals("TIDE_ADMIN_UNAUTHORIZED", body.code)
        status, body = raw("POST", "/admin/cache/flush", "127.0.0.1", bearer(env.admin_token))
        assert.equals(200, status)
        assert.equals("all", body.flushed)
    end)

    it("resets the statement statistics on POST with the token only", function()
        api.call(nil, "GET", "/v1/destinations/popular", nil, { ["Cache-Control"] = "no-cache" })
        local function count()
            local s, b = raw("GET", "/admin/queries", "127.0.0.1")
            assert.equals(200, s)
            return #b.statements
        end
        assert.truthy(count() >= 1)
        local status, body = raw("GET", "/admin/queries?reset=1", "127.0.0.1")
        assert.equals(405, status)
        assert.equals("TIDE_METHOD_NOT_ALLOWED", body.code)
        assert.truthy(count() >= 1, "a GET reset the statistics")
        status, body = raw("POST", "/admin/queries?reset=1", "127.0.0.1")
        assert.equals(401, status)
        assert.equals("TIDE_ADMIN_UNAUTHORIZED", body.code)
        assert.truthy(count() >= 1, "a POST without the token reset the statistics")
        status = raw("POST", "/admin/queries?reset=1", "127.0.0.1", bearer(env.admin_token))
        assert.equals(200, status)
        assert.equals(0, count())
    end)

    it("answers a flush tag holding a quote and a backslash as valid JSON", function()
        local tag = 'a"b\\c'
        local status, body, h, text = raw("POST", "/admin/cache/flush?tag=" .. tag, "127.0.0.1",
                                          bearer(env.admin_token))
        assert.equals(200, status, text)
        assert.truthy(h["content-type"]:find("application/json", 1, true))
        assert.equals("table", type(body), "not JSON: " .. text)
        assert.equals(tag, body.flushed)
    end)

    it("refuses every state-changing request while no admin token is configured", function()
        local dir = spawn.bundle()
        local conf = dir .. "/tide.conf.lua"
        env.write_file(conf, "return { admin = { host = \"127.0.0.1\" } }\n")
        local ok, err = pcall(function()
            local t = spawn.tide(dir, { env = { "TIDE_CONFIG=" .. env.quote(conf),
                                                "TIDE_ADMIN_TOKEN=" } })
            local results = {}
            results.flush = { raw("POST", "/admin/cache/flush", "127.0.0.1",
                                  bearer(env.admin_token), t.admin_url) }
            results.reset = { raw("POST", "/admin/queries?reset=1", "127.0.0.1", nil, t.admin_url) }
            results.stats = { raw("GET", "/admin/stats", "127.0.0.1", nil, t.admin_url) }
            spawn.stop(t)
            for name, r in pairs(results) do
                if name == "stats" then
                    assert.equals(200, r[1])
                else
                    assert.equals(403, r[1], name .. ": " .. tostring(r[4]))
                    assert.equals("TIDE_ADMIN_TOKEN_UNSET", r[2].code)
                end
            end
        end)
        spawn.remove(dir)
        assert(ok, err)
    end)
    it("counts and logs refusals, never the token sent", function()
        local dir = spawn.bundle()
        local ok, err = pcall(function()
            local t = spawn.tide(dir, { env = { "TIDE_ADMIN_TOKEN=admin-spec-token-0123456789abcdef" } })
            local wrong = "wrong-admin-token-5f3a9c"
            local s1 = raw("POST", "/admin/cache/flush", "127.0.0.1", bearer(wrong), t.admin_url)
            local s2 = raw("GET", "/admin/stats", "evil.example", nil, t.admin_url)
            local _, _, _, text = raw("GET", "/metrics", "127.0.0.1", nil, t.admin_url)
            local _, stats = raw("GET", "/admin/stats", "127.0.0.1", nil, t.admin_url)
            spawn.stop(t)
            assert.equals(401, s1)
            assert.equals(421, s2)
            assert.truthy(text:find('tide_admin_refused_total{reason="bad_token"} 1', 1, true), text)
            assert.truthy(text:find('tide_admin_refused_total{reason="host"} 1', 1, true))
            assert.equals(1, stats.admin_refused.bad_token)
            local log = spawn.log(t)
            assert.truthy(log:find("admin: refused POST /admin/cache/flush (bad_token)", 1, true), log)
            assert.is_nil(log:find(wrong, 1, true))
        end)
        spawn.remove(dir)
        assert(ok, err)
    end)
end)

describe("request ids", function()
    it("gives two requests with the same X-Request-Id distinct ids of tide's own", function()
        local sent = "spec-same-" .. env.uuid():sub(1, 8)
        local ids = {}
        for i = 1, 2 do
            local status, _, h = api.call(nil, "GET", "/v1/destinations/popular", nil,
                                          { ["X-Request-Id"] = sent })
            assert.equals(200, status)
            ids[i] = h["x-request-id"]
            assert.truthy(ids[i] and ids[i]:match("^%x+%-%x+$"), tostring(ids[i]))
        end
        assert.are_not.equal(ids[1], ids[2])
        if env.access_log then
            local lines = env.wait_until(function()
                local found = {}
                for line in (env.read_file(env.access_log) or ""):gmatch("[^\n]+") do
                    if line:find(sent, 1, true) then found[#found + 1] = line end
                end
                return #found >= 2 and found or nil
            end, 5, 0.05)
            assert.truthy(lines, "no access-log lines with client_request_id " .. sent)
            assert.equals(2, #lines)
            for i, line in ipairs(lines) do
                local entry = cjson.decode(line)
                assert.equals(sent, entry.client_request_id)
                assert.equals(ids[i], entry.id)
            end
        end
    end)
end)
