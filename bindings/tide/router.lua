-- tide/router.lua - the route table built from the script modules' declarations.
--
-- A script module returns { ["GET /v1/trips/:id"] = handler, ... }; a route with options
-- gives a table instead of the handler, { handler = fn, option = value, ... }, the options kept
-- on its route record (what r:match returns third). The one option:
--   own_body_errors = true   a request body tide.boot cannot take (not JSON, past its bounds)
--                            reaches the handler as req.body_error instead of being refused,
--                            so the handler answers in its own codes (/rest/v1: PGRST102)
-- Patterns are absolute paths of static segments and :params (names [A-Za-z_][A-Za-z0-9_]*).
-- This module checks and collects them; requests are matched in C (runtime/router.c, compiled
-- from the same routes when the bundle loads: boot.route_table), never here. r:match follows
-- the same rules and stays for unit specs (boot._route). Matching:
--   * one trie for all methods; a request path is split once into a reused segment list;
--   * a static segment wins over a :param at the same position (/v1/trips/search beats
--     /v1/trips/:id); if the static branch cannot finish the match, the param branch is
--     tried (/v1/trips/search/collaborators still reaches /v1/trips/:id/collaborators);
--   * param values are percent-decoded ("+" stays "+"); an invalid escape or %00 is a 400;
--     static segments are compared as sent; an empty segment never matches a param;
--   * a path that matches a pattern under other methods only -> nil, 405, "GET, PATCH"
--     (the Allow header value); no pattern at all -> nil, 404.
--
--   router.new() -> r
--   r:add(method, pattern, handler, module_name)   raises on a bad or duplicate route (the
--                                                  message names both modules); handler is a
--                                                  function or { handler = fn, options }
--   r:load(module_name, routes)                    adds every "METHOD /path" = fn (or options
--                                                  table) of a module
--   r:match(method, path) -> handler, params, route | nil, status, allow
--   r:list() -> { {method=, pattern=, module=, file=, line=}, ... }
--                                                  every route with where its handler is
--                                                  defined (file "[C]" and line nil for a C
--                                                  function), sorted by pattern then method,
--                                                  for `tide routes` and `tide check`
--   r:patterns(method) -> { "/v1/trips", ... }     sorted, the patterns routed for method
--   router.pct_decode(s), router.form_decode(s)    a path segment, a query-string component
--   router.each_query_pair(qs, fn, ctx)            walks a query string's parts (below)

local errors = require "tide.errors"

local type, pairs, tonumber, tostring, setmetatable = type, pairs, tonumber, tostring,
    setmetatable
local byte, char, find, gsub, sub, match = string.byte, string.char, string.find, string.gsub,
    string.sub, string.match
local concat, sort = table.concat, table.sort
local getinfo = debug.getinfo
local misuse = errors.misuse

local _M = {}
local mt = { __index = _M }

local METHODS = { GET = true, HEAD = true, POST = true, PUT = true, PATCH = true,
                  DELETE = true, OPTIONS = true }

local function new_node()
    return { static = {}, param = nil, handlers = nil }
end

function _M.new()
    return setmetatable({ root = new_node(), all = {} }, mt)
end

---------------------------------------------------------------------------------------------
-- building

-- Adds one route. Raises (misuse) on a malformed or duplicate route.
function _M.add(self, method, pattern, handler, module_name)
    module_name = module_name or "?"
    local where = " (module " .. module_name .. ")"
    if type(method) ~= "string" or not METHODS[method] then
        misuse("route " .. tostring(method) .. " " .. tostring(pattern) .. where ..
               ": unknown method")
    end
    if type(pattern) ~= "string" or byte(pattern, 1) ~= 47 then
        misuse("route " .. method .. " " .. tostring(pattern) .. where ..
               ": the path must start with /")
    end
    local own_body_errors
    if type(handler) == "table" then              -- { handler = fn, option = value, ... }
        local opts = handler
        for k, v in pairs(opts) do
            if k == "own_body_errors" then
                if type(v) ~= "boolean" then
                    misuse("route " .. method .. " " .. pattern .. where ..
                           ": own_body_errors must be true or false")
                end
                own_body_errors = v or nil
            elseif k ~= "handler" then
                misuse("route " .. method .. " " .. pattern .. where ..
                       ": unknown route option " .. tostring(k))
            end
        end
        handler = opts.handler
    end
    if type(handler) ~= "function" then
        misuse("route " .. method .. " " .. pattern .. where .. ": handler must be a function")
    end
    local node = self.root
    local names, nnames, seen = {}, 0, {}
    local pos, i = 2, 0
    if pattern ~= "/" then
        while true do
            local slash = find(pattern, "/", pos, true)
            local seg = sub(pattern, pos, (slash or 0) - 1)
            i = i + 1
            if seg == "" then
                misuse("route " .. method .. " " .. pattern .. where ..
                       ": empty path segment (// or a trailing /)")
            end
            if byte(seg, 1) == 58 then                  -- ":"
                local name = sub(seg, 2)
                if not find(name, "^[%a_][%w_]*$") then
                    misuse("route " .. method .. " " .. pattern .. where ..
                           ": bad parameter name '" .. name .. "'")
                end
                if seen[name] then
                    misuse("route " .. method .. " " .. pattern .. where ..
                           ": parameter '" .. name .. "' appears twice")
                end
                seen[name] = true
                nnames = nnames + 1
                names[nnames] = { pos = i, name = name }
                if node.param == nil then
                    node.param = new_node()
                end
                node = node.param
            else
                local child = node.static[seg]
                if child == nil then
                    child = new_node()
                    node.static[seg] = child
                end
                node = child
            end
            if not slash then
                break
            end
            pos = slash + 1
        end
    end
    local handlers = node.handlers
    if handlers == nil then
        handlers = {}
        node.handlers = handlers
    end
    local other = handlers[method]
    if other then
        misuse("duplicate route " .. method .. " " .. pattern .. ": declared in module " ..
               other.module .. " (as " .. other.pattern .. ") and in module " .. module_name)
    end
    local route = { method = method, pattern = pattern, handler = handler,
                    module = module_name, names = names, nnames = nnames,
                    own_body_errors = own_body_errors }
    handlers[method] = route
    self.all[#self.all + 1] = route
    return route
end

-- Adds every route of a script module's table. Keys must be "METHOD /path".
function _M.load(self, module_name, routes)
    if type(routes) ~= "table" then
        misuse("module " .. tostring(module_name) .. " must return a table of routes, got " ..
               type(routes))
    end
    -- Sorted so that errors are reported deterministically.
    local keys = {}
    for k in pairs(routes) do
        if type(k) ~= "string" then
            misuse("module " .. module_name .. ": route keys must be strings like " ..
                   "\"GET /v1/things\"")
        end
        keys[#keys + 1] = k
    end
    sort(keys)
    for i = 1, #keys do
        local key = keys[i]
        local method, pattern = match(key, "^(%u+) (/%S*)$")
        if not method then
            misuse("module " .. module_name .. ": '" .. key .. "' is not a route " ..
                   "(expected \"METHOD /path\")")
        end
        self:add(method, pattern, routes[key], module_name)
    end
end

-- The order methods are listed in for one pattern: reads first, then writes.
local METHOD_ORDER = { GET = 1, HEAD = 2, POST = 3, PUT = 4, PATCH = 5, DELETE = 6, OPTIONS = 7 }

-- Where a handler is defined: the file it was loaded from (as package.path found it) and the
-- line its function starts on; "[C]", nil for a C function.
local function where(handler)
    local info = getinfo(handler, "S")
    if info.what == "C" then
        return "[C]", nil
    end
    local src = info.source
    if byte(src, 1) == 64 then                          -- "@path": loaded from a file
        return sub(src, 2), info.linedefined
    end
    return info.short_src, info.linedefined
end

-- Returns every route with its module and where its handler is, sorted by pattern, then
-- method.
function _M.list(self)
    local out = {}
    for i = 1, #self.all do
        local r = self.all[i]
        local file, line = where(r.handler)
        out[i] = { method = r.method, pattern = r.pattern, module = r.module, file = file,
                   line = line }
    end
    sort(out, function(a, b)
        if a.pattern ~= b.pattern then
            return a.pattern < b.pattern
        end
        return METHOD_ORDER[a.method] < METHOD_ORDER[b.method]
    end)
    return out
end

function _M.patterns(self, method)
    local out = {}
    for i = 1, #self.all do
        local r = self.all[i]
        if r.method == method then
            out[#out + 1] = r.pattern
        end
    end
    sort(out)
    return out
end

---------------------------------------------------------------------------------------------
-- matching

-- Segment list reused by every match (match never yields, so it is never shared).
local segs = {}

-- Splits path into segs; returns the count, or nil when path does not start with "/".
local function split(path)
    if byte(path, 1) ~= 47 then
        return nil
    end
    if path == "/" then
        return 0
    end
    local n, pos = 0, 2
    while true do
        local slash = find(path, "/", pos, true)
        n = n + 1
        if slash then
            segs[n] = sub(path, pos, slash - 1)
            pos = slash + 1
        else
            segs[n] = sub(path, pos)
            return n
        end
    end
end

local function walk(node, i, nseg, method)
    if i > nseg then
        local h = node.handlers
        return h and h[method]
    end
    local seg = segs[i]
    local child = node.static[seg]
    if child then
        local r = walk(child, i + 1, nseg, method)
        if r then
            return r
        end
    end
    local p = node.param
    if p and seg ~= "" then
        return walk(p, i + 1, nseg, method)
    end
    return nil
end

local function collect(node, i, nseg, acc)
    if i > nseg then
        if node.handlers then
            for m in pairs(node.handlers) do
                acc[m] = true
            end
        end
        return
    end
    local seg = segs[i]
    local child = node.static[seg]
    if child then
        collect(child, i + 1, nseg, acc)
    end
    if node.param and seg ~= "" then
        collect(node.param, i + 1, nseg, acc)
    end
end

-- Percent-decodes s. Returns nil for a malformed escape or an encoded NUL (which would cut
-- a parameter short on its way to Postgres).
local function pct_decode(s)
    local i = find(s, "%", 1, true)
    if not i then
        return s
    end
    local out, n, last = {}, 0, 1
    while i do
        local h = sub(s, i + 1, i + 2)
        if not find(h, "^%x%x$") then
            return nil
        end
        local b = tonumber(h, 16)
        if b == 0 then
            return nil
        end
        out[n + 1] = sub(s, last, i - 1)
        out[n + 2] = char(b)
        n = n + 2
        last = i + 3
        i = find(s, "%", last, true)
    end
    out[n + 1] = sub(s, last)
    return concat(out)
end
_M.pct_decode = pct_decode

-- A query-string component: "a+b%20c" -> "a b c"; nil on a bad escape.
local function form_decode(s)
    if find(s, "+", 1, true) then
        s = gsub(s, "%+", " ")
    end
    return pct_decode(s)
end
_M.form_decode = form_decode

-- The one splitter of query strings: calls fn(ctx, key, value, part) for each non-empty
-- "&"-separated part of qs, in order, key and value form-decoded (value nil for a part without
-- "="), part the raw text. Stops at the first non-nil value fn returns and returns it; returns
-- false for a part with a bad escape, nil when every part was seen. fn is a plain function
-- with its state in ctx, so a request's walk builds no closure.
function _M.each_query_pair(qs, fn, ctx)
    if qs == nil or qs == "" then
        return nil
    end
    local pos, len = 1, #qs
    while pos <= len do
        local amp = find(qs, "&", pos, true)
        local part = sub(qs, pos, (amp or 0) - 1)
        if part ~= "" then
            local eq = find(part, "=", 1, true)
            local k, v
            if eq then
                k, v = form_decode(sub(part, 1, eq - 1)), form_decode(sub(part, eq + 1))
                if v == nil then return false end
            else
                k = form_decode(part)
            end
            if k == nil then return false end
            local r = fn(ctx, k, v, part)
            if r ~= nil then return r end
        end
        if not amp then
            break
        end
        pos = amp + 1
    end
    return nil
end

-- Returns handler, params, route for a request; or nil, 404 | nil, 405, allow | nil, 400.
function _M.match(self, method, path)
    local nseg = split(path)
    if nseg == nil then
        return nil, 404
    end
    local route = walk(self.root, 1, nseg, method)
    if route then
        local params = {}
        local names = route.names
        for k = 1, route.nnames do
            local p = names[k]
            local v = pct_decode(segs[p.pos])
            if v == nil then
                return nil, 400
            end
            params[p.name] = v
        end
        return route.handler, params, route
    end
    local acc = {}
    collect(self.root, 1, nseg, acc)
    local allow, na = {}, 0
    for m in pairs(acc) do
        na = na + 1
        allow[na] = m
    end
    if na == 0 then
        return nil, 404
    end
    sort(allow)
    return nil, 405, concat(allow, ", ")
end

return _M
