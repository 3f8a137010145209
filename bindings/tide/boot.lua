-- tide/boot.lua - the entry points the C core calls in a Lua state.
--
--   boot.load(module_names) -> number of routes (raises: the C side then rejects the bundle)
--       Loads policies/routing.lua (checked: route() must answer every kind with a known
--       upstream), then requires each script module and builds the route table. Names that
--       start with "_" are libraries (scripts/_common.lua) and are skipped.
--   boot.handle(req) -> status, body, content_type, header_block
--       req = {method, path, query_string, headers = {lowercase name = value}, body = string
--       or nil, claims_json (the verified token's payload; nil for anon), role, id, and what
--       C's router found: route_id (the route's index in route_table()) and params (decoded),
--       or route_status (404, 405 with allow, 400); closed (seconds) for a route in
--       quarantine}. Runs
--       inside the request's coroutine; never raises for anything a handler or a client does.
--       The one shape that leaves Lua, checked here and only here: status an integer
--       100..599, body a string ("" for none), content_type a string, header_block nil or
--       preformatted "Name: value\r\n" lines (names are tokens, values hold no CR, LF or
--       NUL; content-type becomes content_type; content-length and connection are the
--       transport's and are dropped). The C side sends them as they are.
--   boot.routes() -> the loaded routes, router:list()'s records (method, pattern, module, and
--       the file and line of the handler).
--   boot.describe(section) -> list of lines for `tide routes` and `tide check` (tide.describe):
--       section "routes", "routing" (the effective routing policy) or "cache" (the effective
--       cache policy). Raises for another section.
--
-- What a handler sees: req.params (decoded path params), req.query (decoded query string,
-- last value wins for repeated keys), req.body (decoded JSON nested at most 64 levels and
-- holding at most 10,000 arrays and objects, or nil; always nil for a handler marked
-- http.raw_body, which decodes it itself), req.raw_body (the bytes), req.route
-- (the pattern), plus method, path, headers, claims, role, id. For a route declared with
-- own_body_errors (tide.router) a body that does not decode is req.body_error instead of a
-- refusal (see decode_body).
-- What it returns:
--   success: body[, status[, headers]].
--     body table -> JSON (json.encode), json.raw(text) -> text verbatim, string -> sent as is
--     (text/plain unless headers set a content-type), nil -> empty (status defaults to 204).
--   failure: nil, err with err an error table {code, message, details, hint, status} (from
--     tide.db, tide.validate, tide.crypto, http.error, scripts/_common.lua) -> the error's
--     status and PostgREST-shaped body (http.error_body).
--   an error table returned as the body (`return err`, the nil forgotten) -> answered as the
--     error, and logged once per route as a script bug. Error tables made in C (tide.core) and
--     in Lua (tide.errors.new) share one metatable, so both are recognised.
--   nil, "string" and Lua errors -> 500 {code = "TIDE_INTERNAL", details = "request <id>"}; the
--     error and its traceback go to the log only.
--   An error table becomes a response in one place (error_response below): that is where a
--   503 carrying retry_after (tide.db: a breaker refused) gets its Retry-After header.
--   Invalid headers or an invalid status from a handler are a 500 TIDE_INTERNAL (logged).

local router = require "tide.router"
local json = require "tide.json"
local http = require "tide.http"
local lazy = require "tide.lazy"
local memo = require "tide.memo"
local error_mt = require("tide.errors").error_mt
local cachetags = require "tide.cachetags"
local describe = require "tide.describe"
local sandbox = require "tide.sandbox"

local type, tostring, pairs, pcall, xpcall, require = type, tostring, pairs, pcall, xpcall,
    require
local getmetatable, setmetatable = getmetatable, setmetatable
local byte, find, format, gsub, lower, match, sub = string.byte, string.find, string.format,
    string.gsub, string.lower, string.match, string.sub
local concat, sort = table.concat, table.sort
local ceil = math.ceil
local traceback = debug.traceback
local json_encode, json_decode, is_raw = json.encode, json.decode, json.is_raw
local decode_request_body, takes_raw_body = http.decode_body, http.takes_raw_body
local each_query_pair = router.each_query_pair
local memo_put = memo.put

local _M = {}

local routes            -- the router built by load()
local get_core, set_core = lazy.require "tide.core"

-- For unit specs only: replaces tide.core.
_M._set_core = set_core

local function log(level, msg)
    get_core().log(level, msg)
end

---------------------------------------------------------------------------------------------
-- load

local KINDS = { "select", "count", "vector_search", "insert", "update", "delete", "upsert",
                "transaction", "sql", "rpc" }
local MODES = { direct = true, session = true, transaction = true, replica = true }

local function check_policy(policy)
    if type(policy) ~= "table" or type(policy.route) ~= "function" then
        error("policies/routing.lua must return a table with a route(kind, table) function", 0)
    end
    for i = 1, #KINDS do
        local up = policy.route(KINDS[i], nil)
        if not MODES[up] then
            error("policies/routing.lua: route(\"" .. KINDS[i] .. "\") returned " .. tostring(up) ..
                  ", expected \"direct\", \"session\", \"transaction\" or \"replica\"", 0)
        end
    end
    if type(policy.tables) == "table" then
        for tbl in pairs(policy.tables) do
            for i = 1, #KINDS do
                local up = policy.route(KINDS[i], tbl)
                if not MODES[up] then
                    error("policies/routing.lua: route(\"" .. KINDS[i] .. "\", \"" ..
                          tostring(tbl) .. "\") returned " .. tostring(up), 0)
                end
            end
        end
    end
end

-- Builds the route table from the named script modules. Raises on any problem.
function _M.load(names)
    if type(names) ~= "table" then
        error("boot.load: expected a list of module names", 2)
    end
    check_policy(require "routing")
    local r = router.new()
    for i = 1, #names do
        local name = names[i]
        if type(name) ~= "string" or name == "" then
            error("boot.load: module names must be strings", 2)
        end
        if byte(name, 1) ~= 95 then                         -- "_": a library
            package.loaded[name] = nil
            r:load(name, require(name))
        end
    end
    sandbox.check_routes(r)
    for i = 1, #r.all do                -- the key of a route's budget and quarantine (C)
        local route = r.all[i]
        route.key = route.method .. " " .. route.pattern
        route.budget = sandbox.budget(route.method, route.pattern)
    end
    routes = r
    return #r.all
end

function _M.routes()
    return routes and routes:list() or {}
end

-- The routes as C compiles them when the bundle loads (runtime/luavm.c, runtime/router.c):
-- {method, pattern, key = "METHOD /pattern", budget = ms or nil}, ...; a route's place in
-- this list is the req.route_id C routes a request to.
function _M.route_table()
    return routes and routes.all or {}
end

-- For unit specs: what the C router puts on req (route_id and params, or route_status and
-- allow), found with tide.router's matcher. The request path never calls it.
function _M._route(req)
    local handler, params, route = routes:match(req.method, req.path)
    if handler then
        for i = 1, #routes.all do
            if routes.all[i] == route then
                req.route_id = i
            end
        end
        req.params = params
    else
        req.route_status, req.allow = params, route
    end
    return req
end

local SECTIONS = {
    routes = function() return describe.routes(_M.routes()) end,
    routing = function() return describe.routing(require "routing", KINDS) end,
    cache = function() return describe.cache(cachetags.policy()) end,
    sandbox = function() return sandbox.describe() end,
}

function _M.describe(section)
    local f = SECTIONS[section]
    if f == nil then
        error("boot.describe: unknown section " .. tostring(section), 2)
    end
    return f()
end

-- The cache policy for the C core (runtime/rcache.h): the rules of policies/cache.lua, each
-- checked against the routes loaded (a rule for a GET route that does not exist is an error:
-- a typo would otherwise cache nothing, silently; C maps each route to its rule), and the
-- fingerprint of the tables section.
function _M.cache_policy()
    local p = cachetags.policy()
    local gets = routes and routes:patterns("GET") or {}
    local known = {}
    for i = 1, #gets do
        known[gets[i]] = true
    end
    local rules, names = {}, {}
    for route in pairs(p.routes) do
        names[#names + 1] = route
    end
    sort(names)
    for i = 1, #names do
        local r = p.routes[names[i]]
        if not known[sub(r.route, 5)] then
            error("policies/cache.lua: routes[\"" .. r.route .. "\"]: no such route in scripts/",
                  0)
        end
        rules[i] = r
    end
    return { rules = rules, tables = p.fingerprint }
end

---------------------------------------------------------------------------------------------
-- handle

-- The bounds of a request body: tide.http's (http.decode_body).
_M.MAX_BODY_DEPTH = http.MAX_BODY_DEPTH
_M.MAX_BODY_CONTAINERS = http.MAX_BODY_CONTAINERS

local JSON_TYPE = "application/json"
local TEXT_TYPE = "text/plain; charset=utf-8"

-- RFC 9110 token characters: what a header name may hold.
local TOKEN = "^[%w!#%$%%&'%*%+%-%.%^_`|~]+$"
local DROPPED = { ["content-length"] = true, connection = true }   -- the transport's own

-- Turns a headers table into content_type, header_block (nil when no lines). The
-- content-type header, when present, replaces ctype. Returns nil, problem for a name that is
-- not a token, a value that is not a string or number, or one holding CR, LF or NUL.
local function header_block(headers, ctype)
    local names, values = {}, {}
    for k, v in pairs(headers) do
        if type(k) ~= "string" or not find(k, TOKEN) then
            return nil, "invalid header name " .. tostring(k)
        end
        local tv = type(v)
        if tv == "number" then
            v = tostring(v)
        elseif tv ~= "string" then
            return nil, "header " .. k .. " has a value of type " .. tv
        end
        if find(v, "[\r\n%z]") then
            return nil, "header " .. k .. " has CR, LF or NUL in its value"
        end
        local lk = lower(k)
        if lk == "content-type" then
            ctype = v
        elseif not DROPPED[lk] then
            names[#names + 1] = k
            values[k] = v
        end
    end
    if names[1] == nil then
        return ctype, nil
    end
    sort(names)
    local lines = {}
    for i = 1, #names do
        local k = names[i]
        lines[i] = k .. ": " .. values[k] .. "\r\n"
    end
    return ctype, concat(lines)
end

-- The response for an error table (see tide.http): its status and body, and Retry-After
-- when a 503 says when to ask again. headers (boot's own, never a handler's) are optional.
local function error_response(err, headers)
    local body, status = http.error_body(err)
    local ctype, block = JSON_TYPE, nil
    if headers ~= nil then
        ctype, block = header_block(headers, ctype)
    end
    if status == 503 then
        local ra = err.retry_after
        if type(ra) == "number" and ra > 0 then          -- (NaN fails the test)
            ra = ra < 86400 and ceil(ra) or 86400
            block = (block or "") .. format("Retry-After: %d\r\n", ra)
        end
    end
    return status, json_encode(body), ctype, block
end

-- The response for one of boot's own refusals.
local function refuse(status, code, message, headers)
    return error_response(http.error(status, code, message), headers)
end

-- Returns the decoded query table (a key without "=" has the value ""; of a repeated key the
-- last counts), or nil on a malformed escape.
local function put_query(q, k, v)
    if k ~= "" then
        q[k] = v or ""
    end
end

local function parse_query(qs)
    local q = {}
    if each_query_pair(qs, put_query, q) == false then
        return nil
    end
    return q
end
_M._parse_query = parse_query

local ct_memo = memo.new(64)

-- True for application/json and application/*+json (parameters such as charset ignored).
local function is_json_type(ct)
    local r = ct_memo.map[ct]
    if r == nil then
        local base = lower(match(ct, "^%s*([^;%s]*)") or "")
        r = memo_put(ct_memo, ct,
                     base == "application/json" or find(base, "^application/[^/]+%+json$") ~= nil)
    end
    return r
end

-- Decodes raw into req.body; returns nil, or the error table when it cannot. A handler marked
-- with http.raw_body decodes it itself: only the content type is checked here. A route
-- declared with own_body_errors (tide.router; /rest/v1's, which answer in PostgREST's codes)
-- gets that error as req.body_error, with req.body = nil, instead of boot's refusal, and
-- answers with its own code (PGRST102). Nothing else changes: the body is still bounded and
-- never decoded past the bounds.
local function decode_body(req, raw, handler)
    local ct = req.headers and req.headers["content-type"]
    if ct ~= nil and not is_json_type(ct) then
        return http.error(415, "TIDE_UNSUPPORTED_MEDIA_TYPE",
                          "request bodies must be application/json")
    end
    if takes_raw_body(handler) then
        return nil
    end
    local v, err = decode_request_body(raw)
    if v == nil then
        return err                     -- TIDE_INVALID_JSON, TIDE_JSON_TOO_DEEP or _TOO_LARGE
    end
    req.body = v
    return nil
end

local function on_error(e)
    if type(e) == "table" then
        local ok, text = pcall(json_encode, e)
        e = ok and text or tostring(e)
    end
    return traceback(tostring(e), 2)
end

local function one_line(s)
    return (gsub(s, "\n%s*", " | "))
end

local function internal(req, what)
    local id = req.id
    log("error", "request " .. tostring(id) .. " " .. tostring(req.method) .. " " ..
        tostring(req.route) .. ": " .. one_line(what))
    return error_response(http.error(500, "TIDE_INTERNAL", "internal error",
                                     id ~= nil and ("request " .. tostring(id)) or nil))
end

-- The success response: status, text, and the content type and header block from the
-- handler's headers (the default type when they set none).
local function finish(req, status, text, headers, dflt)
    if headers == nil then
        return status, text, dflt, nil
    end
    local ctype, block = header_block(headers, dflt)
    if ctype == nil then
        return internal(req, "handler returned invalid headers: " .. block)
    end
    return status, text, ctype, block
end

-- Routes whose handler returned an error table as its body, logged once each per Lua state.
local forgot_nil = {}

-- Turns a handler's return values into status, body, content_type, header_block.
local function respond(req, body, status, headers)
    if type(body) == "table" and getmetatable(body) == error_mt then
        -- `return err` or `return http.error(...)`: the nil was forgotten. Answer the error
        -- with its own status, and tell the author once per route.
        local key = tostring(req.method) .. " " .. tostring(req.route)
        if not forgot_nil[key] then
            forgot_nil[key] = true
            log("warn", "script bug: " .. key .. " returned an error as its body (code " ..
                tostring(body.code) .. "); answered as that error. Return `nil, err` " ..
                "(logged once per route)")
        end
        return error_response(body)
    end
    if body == nil then
        if type(status) == "table" then
            return error_response(status)
        elseif type(status) == "string" then
            return internal(req, "handler returned nil, \"" .. status .. "\"")
        elseif status == nil then
            status = 204
        end
    end
    if status == nil then
        status = 200
    elseif type(status) ~= "number" or status % 1 ~= 0 or status < 100 or status > 599 then
        return internal(req, "handler returned an invalid status: " .. tostring(status))
    end
    if headers ~= nil and type(headers) ~= "table" then
        return internal(req, "handler returned headers of type " .. type(headers))
    end
    if body == nil or status == 204 or status == 304 or status < 200 then
        return finish(req, status, "", headers, JSON_TYPE)
    end
    local tb = type(body)
    if tb == "string" then
        return finish(req, status, body, headers, TEXT_TYPE)
    elseif tb == "table" and is_raw(body) then
        return finish(req, status, body.text, headers, JSON_TYPE)
    end
    local ok, encoded = pcall(json_encode, body)
    if not ok then
        return internal(req, "cannot encode the response: " .. tostring(encoded))
    end
    return finish(req, status, encoded, headers, JSON_TYPE)
end

-- Handles one request (see the top of this file).
-- Decoded claims, kept per claims text (a JWT-cache hit sends the same text again), so a
-- token's payload is decoded once, not on every request. Each request gets its own copy: a
-- script may change req.claims without that reaching another request.
local claims_memo = memo.new(4096)

-- table.clone (OpenResty's LuaJIT, which tide builds with) copies a table in one sized
-- allocation, about half the time of filling a new one key by key; nested tables are cloned
-- in turn.
local ok_clone, clone = pcall(require, "table.clone")
if not ok_clone then
    clone = function(t)
        local c = {}
        for k, v in pairs(t) do
            c[k] = v
        end
        return c
    end
end

local function copy(t)
    local c = clone(t)
    for k, v in pairs(t) do
        if type(v) == "table" then
            c[k] = copy(v)
        end
    end
    return setmetatable(c, getmetatable(t))
end

-- The claims table for a payload's JSON text (nil if it does not decode to a table; tide.jwt
-- has already checked that it is an object).
local function claims_of(text)
    local decoded = claims_memo.map[text]
    if decoded == nil then
        local v = json_decode(text)
        if type(v) ~= "table" then
            return nil
        end
        decoded = memo_put(claims_memo, text, v)
    end
    return copy(decoded)
end
_M._claims_of = claims_of

local function handle(req)
    local cj = req.claims_json
    if cj ~= nil then
        req.claims = claims_of(cj)
    end
    local r = routes
    if r == nil then
        return refuse(503, "TIDE_NOT_READY", "no scripts loaded")
    end
    -- C routed the request (runtime/router.c, compiled from route_table()): route_id and
    -- params, or route_status for a path no route takes; closed: its quarantine
    local route = r.all[req.route_id]
    if route == nil then
        local method, path, status = req.method, req.path, req.route_status
        if status == 405 then
            return refuse(405, "TIDE_METHOD_NOT_ALLOWED",
                          "method " .. tostring(method) .. " not allowed on " .. tostring(path),
                          { allow = req.allow })
        elseif status == 400 then
            return refuse(400, "TIDE_INVALID_PATH", "malformed percent-encoding in path")
        end
        return refuse(404, "TIDE_NOT_FOUND", "no route for " .. tostring(method) .. " " ..
                      tostring(path))
    end
    local handler = route.handler
    req.route = route.pattern
    local closed = req.closed
    if closed ~= nil then
        local e = http.error(503, "TIDE_ROUTE_QUARANTINED", "this route is closed for now: " ..
                             "its script was stopped at its budget too often")
        e.retry_after = closed
        return error_response(e)
    end

    local query = parse_query(req.query_string)
    if query == nil then
        return refuse(400, "TIDE_INVALID_QUERY", "malformed percent-encoding in query")
    end
    req.query = query

    local raw = req.body
    req.raw_body = raw
    req.body = nil
    if raw ~= nil and raw ~= "" then
        local berr = decode_body(req, raw, handler)
        if berr ~= nil then
            if not route.own_body_errors then
                return error_response(berr)
            end
            req.body_error = berr
        end
    end

    local ok, body, status, headers = xpcall(handler, on_error, req)
    if not ok then
        return internal(req, body)
    end
    return respond(req, body, status, headers)
end

_M.handle = handle

return _M
