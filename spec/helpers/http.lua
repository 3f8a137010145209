-- spec/helpers/http.lua - a small HTTP/1.1 client for the integration specs, on luasocket.
--   request(method, path, {token=, body=table|string, headers=, url=}) -> status, body, headers
--     one connection per call (Connection: close); body is the decoded JSON when the answer
--     is JSON, else the raw text; headers have lower-case names.
--   connect(), build(), send(), read_response() - the raw pieces, for keep-alive and pipelining.
-- Only loopback addresses are accepted: these specs never send traffic anywhere else.

local socket = require "socket"
local cjson = require "cjson.safe"

local _M = {}

_M.null = cjson.null
_M.TIMEOUT = 15
_M.base = os.getenv("TIDE_TEST_URL") or "http://127.0.0.1:18080"

local function parse_url(url)
    local host, port = url:match("^http://%[?([^%]/]+)%]?:(%d+)")
    if not host then
        host = url:match("^http://([^:/]+)")
        port = 80
    end
    assert(host, "cannot parse url " .. tostring(url))
    return host, tonumber(port)
end

local function is_loopback(host)
    return host == "localhost" or host == "::1" or host:match("^127%.%d+%.%d+%.%d+$") ~= nil
end

-- An open TCP connection to url (default TIDE_TEST_URL) with a timeout, or raises.
function _M.connect(url, timeout)
    local host, port = parse_url(url or _M.base)
    assert(is_loopback(host), "integration specs only talk to loopback, not " .. host)
    local sock = assert(socket.tcp())
    sock:settimeout(timeout or _M.TIMEOUT)
    local ok, err = sock:connect(host, port)
    assert(ok, "connect " .. host .. ":" .. port .. ": " .. tostring(err))
    sock:setoption("tcp-nodelay", true)
    return sock
end

-- The bytes of one request. opts: token, body (table -> JSON), headers, close (bool).
function _M.build(method, path, opts)
    opts = opts or {}
    local host = parse_url(opts.url or _M.base)
    local lines = { method .. " " .. path .. " HTTP/1.1", "Host: " .. host }
    local headers = opts.headers or {}
    local body = opts.body
    if type(body) == "table" then
        body = assert(cjson.encode(body))
        if not headers["Content-Type"] then
            lines[#lines + 1] = "Content-Type: application/json"
        end
    end
    if opts.token then
        lines[#lines + 1] = "Authorization: Bearer " .. opts.token
    end
    for k, v in pairs(headers) do
        lines[#lines + 1] = k .. ": " .. v
    end
    if body then
        lines[#lines + 1] = "Content-Length: " .. #body
    end
    if opts.close then
        lines[#lines + 1] = "Connection: close"
    end
    return table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")
end

-- Sends all of data or raises.
function _M.send(sock, data)
    local i = 1
    while i <= #data do
        local last, err, partial = sock:send(data, i)
        if not last then
            error("send failed: " .. tostring(err) .. " after " .. tostring(partial) .. " bytes")
        end
        i = last + 1
    end
end

local function read_chunked(sock)
    local parts = {}
    for _ = 1, 100000 do
        local line, err = sock:receive("*l")
        if not line then return nil, err end
        local size = tonumber(line:match("^%x+"), 16)
        if not size then return nil, "bad chunk size: " .. line end
        if size == 0 then
            repeat line = sock:receive("*l") until not line or line == ""
            return table.concat(parts)
        end
        local data
        data, err = sock:receive(size)
        if not data then return nil, err end
        parts[#parts + 1] = data
        sock:receive("*l")
    end
    return nil, "too many chunks"
end

-- Reads one response from sock: status, headers, body text; or nil, err.
function _M.read_response(sock, method)
    local line, err = sock:receive("*l")
    if not line then return nil, err end
    local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
    if not status then return nil, "bad status line: " .. line end
    local headers = {}
    for _ = 1, 200 do
        local h
        h, err = sock:receive("*l")
        if not h then return nil, err end
        if h == "" then break end
        local name, value = h:match("^([^:]+):%s*(.-)%s*$")
        if name then
            name = name:lower()
            headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
        end
    end
    local body = ""
    if method == "HEAD" or status == 204 or status == 304 or status < 200 then
        body = ""
    elseif (headers["transfer-encoding"] or ""):lower():find("chunked") then
        body, err = read_chunked(sock)
    elseif headers["content-length"] then
        local n = tonumber(headers["content-length"])
        if n > 0 then body, err = sock:receive(n) end
    else
        body, err = sock:receive("*a")
    end
    if not body then return nil, err end
    return status, headers, body
end

-- Decodes body when headers say JSON; else returns the text unchanged.
function _M.decode(headers, body)
    if body ~= "" and (headers["content-type"] or ""):find("json") then
        local v = cjson.decode(body)
        if v ~= nil then return v end
    end
    return body
end

-- One request on a fresh connection. Returns status, body (decoded), headers, raw text.
function _M.request(method, path, opts)
    opts = opts or {}
    local sock = _M.connect(opts.url, opts.timeout)
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    o.close = true
    _M.send(sock, _M.build(method, path, o))
    local status, headers, body = _M.read_response(sock, method)
    sock:close()
    assert(status, "no response to " .. method .. " " .. path .. ": " .. tostring(headers))
    return status, _M.decode(headers, body), headers, body
end

return _M
