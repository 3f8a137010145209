-- tide/rest/rpc.lua - /rest/v1/rpc/:fn: calls a function of the exposed schema the way
-- PostgREST 12 does, through tide.db (db.sql with rpc = fn: routed, cached and counted as
-- db.rpc(fn) is; the call runs as the caller, so grants and RLS apply).
--
--   POST /rest/v1/rpc/fn   a JSON object of named arguments (an empty body: none);
--                          Prefer: params=single-object passes the whole body to a function
--                          of one json/jsonb argument, as does a function whose only argument
--                          is an unnamed json/jsonb one
--   GET  /rest/v1/rpc/fn?a=1&b=2   STABLE and IMMUTABLE functions only; a query key whose
--                          value is not a filter (op.value) is an argument, repeated keys of
--                          a VARIADIC argument make its array (otherwise the last one wins)
--   PATCH, PUT, DELETE     405 PGRST101
-- On either method the query string's select=, filters, order=, limit=/offset= (and on GET
-- the Range header) apply to what the function returns, as on a table: names are checked
-- against the function's result columns, from the schema cache (tide/rest/schema.lua).
--
-- Which function: the overload whose argument names fit the names given: every name given
-- is an argument, every argument without a default is given (PostgREST's rule). None: 404
-- PGRST202 "Could not find the function public.f(a, b) in the schema cache"; more than one:
-- 300 PGRST203. A name the cache does not know re-reads the catalog first (rate limited, as
-- for tables). GET of a VOLATILE function: 405 with SQLSTATE 25006, the code PostgREST's
-- read-only GET transaction gets when such a function writes; tide refuses before calling.
-- GET and HEAD, and POST to a STABLE or IMMUTABLE function, run in a read-only transaction
-- (PostgREST 12's rule; tide.db's read_only): a function that writes anyway, e.g. a STABLE
-- one calling a VOLATILE one, fails with Postgres' 25006, answered 405.
--
-- The statement: the arguments are ONE parameter, the JSON object, typed by
-- json_to_record's column list with the argument types read from the catalog (so JSON
-- numbers, strings, arrays and objects convert as PostgREST converts them, and no value is
-- decoded and re-encoded in Lua: big integers keep their digits), then named notation:
--   WITH "f" AS (SELECT _c.* FROM pg_catalog.json_to_record($n::json) AS _a("a" pg_catalog.int4),
--                LATERAL "public"."f"("a" => _a."a") AS _c)
--   SELECT (<tide.builder's counted select over "f": columns, filters, order, limit>) AS body
-- Identifiers (schema, function, arguments, types) come from the catalog only and are
-- quoted; values are parameters. A scalar function is called in the select list (so record
-- and void work) and its values aggregated as they are.
--
-- Answers: a scalar its JSON value, a set a JSON array, a function returning one row (not
-- SETOF) that row as an object; void 204. Content-Range as on reads ("0-0/*" for one value),
-- Prefer: count=exact for sets, Accept: application/vnd.pgrst.object+json (406 PGRST116
-- unless exactly one row); JSON only, so an Accept naming nothing else (text/csv alone) is
-- 406 PGRST107. Accept, Prefer and Content-Range follow the rules all of /rest/v1 shares
-- (tide/rest/http.lua), the errors it shares are built in tide/rest/errors.lua. Errors the
-- function raises pass through with PostgREST's status: P0001 400, SQLSTATE PTnnn status nnn
-- (other PT codes 500), and SQLSTATE PGRST with a JSON MESSAGE {code, message, details,
-- hint} and DETAIL {status, headers} (500 PGRST121 when they do not parse).
--
-- Bounds: at most MAX_ARGS (100, Postgres' own limit on a function's arguments) argument
-- names in one call, else 400 (PGRST102 for a body, PGRST100 for a query string) before any
-- lookup; names longer than 63 bytes (NAMEDATALEN - 1) match nothing and are cut to 63 bytes
-- in messages; the body is bounded by the HTTP layer and tide.boot's JSON limits, the query
-- string by the HTTP head limit; a PGRST error's headers at most MAX_RAISE_HEADERS.

local db = require "tide.db"
local http = require "tide.http"
local json = require "tide.json"
local builder = require "tide.builder"
local router = require "tide.router"
local parse = require "tide.rest.parse"
local plan = require "tide.rest.plan"
local schema = require "tide.rest.schema"
local rerr = require "tide.rest.errors"
local rhttp = require "tide.rest.http"

local type, pairs, ipairs, tonumber, tostring, setmetatable = type, pairs, ipairs, tonumber,
    tostring, setmetatable
local find, match, sub = string.find, string.match, string.sub
local concat, sort = table.concat, table.sort
local quote = builder.quote_ident
local add = builder.add_param
local json_raw, json_encode, json_decode = json.raw, json.encode, json.decode
local null, array_mt = json.null, json.array_mt

local _M = {}

local MAX_ARGS = 100
local MAX_NAME = 63
local MAX_RAISE_HEADERS = 32
_M.MAX_ARGS = MAX_ARGS

---------------------------------------------------------------------------------------------
-- which function

local function shown(name)
    if #name > MAX_NAME then
        return sub(name, 1, MAX_NAME) .. "..."
    end
    return name
end

local function arg_names(f)
    local out = {}
    for i, a in ipairs(f.args) do out[i] = a.name end
    return concat(out, ", ")
end

-- 404 PGRST202 in PostgREST's words. names: the sorted names given.
local function not_found(cache, name, names, single, post, overloads)
    local func = cache.schema .. "." .. shown(name)
    if single then
        return http.error(404, "PGRST202", "Could not find the function " .. func ..
                          " in the schema cache", "Searched for the function " .. func ..
                          " with a single json/jsonb parameter, but no matches were found " ..
                          "in the schema cache.")
    end
    local list = {}
    for i, n in ipairs(names) do list[i] = shown(n) end
    local prms = concat(list, ", ")
    local msg, det
    if list[1] == nil then
        msg, det = " without parameters", " without parameters"
    else
        msg = "(" .. prms .. ")"
        det = " with parameter" .. (list[2] and "s " or " ") .. prms
    end
    if post then
        det = det .. " or with a single unnamed json/jsonb parameter"
    end
    local hint
    if overloads and #overloads == 1 and overloads[1].callable then
        local f = overloads[1]
        hint = "Perhaps you meant to call the function " .. func ..
               (f.args[1] and ("(" .. arg_names(f) .. ")") or "")
    end
    return http.error(404, "PGRST202", "Could not find the function " .. func .. msg ..
                      " in the schema cache", "Searched for the function " .. func .. det ..
                      ", but no matches were found in the schema cache.", hint)
end

local function ambiguous(cache, list)
    local out = {}
    for i, f in ipairs(list) do
        local a = {}
        for j, arg in ipairs(f.args) do a[j] = arg.name .. " => " .. arg.display end
        out[i] = cache.schema .. "." .. f.name .. "(" .. concat(a, ", ") .. ")"
    end
    return http.error(300, "PGRST203", "Could not choose the best candidate function " ..
                      "between: " .. concat(out, ", "), nil, "Try renaming the parameters " ..
                      "or the function itself in the database so function overloading can " ..
                      "be resolved")
end

-- True when f can be called with exactly the argument names in keys (a set).
local function fits(f, keys, single)
    local args = f.args
    if single then
        return #args == 1 and args[1].json
    end
    if not f.callable then
        return false
    end
    local by_name = {}
    for i = 1, #args do
        local a = args[i]
        if a.name == "" then
            return false                -- only the single-object fallback calls it
        end
        if a.required and not keys[a.name] then
            return false
        end
        by_name[a.name] = true
    end
    for k in pairs(keys) do
        if not by_name[k] then
            return false
        end
    end
    return true
end

-- A lone unnamed json/jsonb argument takes a POSTed JSON body whole.
local function takes_body(f, post)
    local a = f.args
    return post and #a == 1 and a[1].name == "" and a[1].json
end

-- The overload to call, or nil, err (PGRST202/PGRST203).
local function choose(cache, name, keys, names, single, post)
    local overloads = cache.functions[name]
    local hits, fallbacks = {}, {}
    for _, f in ipairs(overloads or {}) do
        if fits(f, keys, single) then
            hits[#hits + 1] = f
        elseif takes_body(f, post) then
            fallbacks[#fallbacks + 1] = f
        end
    end
    local list = hits[1] and hits or fallbacks
    if #list == 1 then
        return list[1]
    elseif #list > 1 then
        return nil, ambiguous(cache, list)
    end
    return nil, not_found(cache, name, names, single, post, overloads)
end

-- choose, re-reading the catalog once (rate limited: schema.with_retry) when no function of
-- that name is known (PGRST202). Returns f, cache or nil, err.
local function resolve(name, keys, names, single, post)
    return schema.with_retry(function(cache)
        local f, err = choose(cache, name, keys, names, single, post)
        if f then
            return f, cache
        end
        return nil, err, err.code == "PGRST202"
    end)
end

---------------------------------------------------------------------------------------------
-- arguments

local RESERVED = { select = true, order = true, limit = true, offset = true, columns = true,
                   on_conflict = true, ["or"] = true, ["and"] = true, ["not.or"] = true,
                   ["not.and"] = true }
local EMBEDDABLE = { order = true, limit = true, offset = true, ["or"] = true, ["and"] = true }

local function too_many(code)
    return http.error(400, code, "too many arguments", "at most " .. MAX_ARGS ..
                      " arguments in one call")
end

-- GET: splits the query string into what tide.rest.parse reads (select, filters, ...) and the
-- arguments (PostgREST: a key whose value does not parse as a filter is an argument).
-- Returns rest (query string text), args {{key, value}...}, keys (set), names (sorted), or
-- nil, err (400). Exported for runtime/fuzz/fuzz_rest.c.
local function split_part(st, k, v, part)
    local last = match(k, "%.([^%.]*)$")
    if v == nil or RESERVED[k] or (last and EMBEDDABLE[last]) or parse.filter(k, v) then
        st.keep[#st.keep + 1] = part
        return nil
    end
    st.args[#st.args + 1] = { k, v }
    if not st.keys[k] then
        if #st.names >= MAX_ARGS then
            return too_many("PGRST100")
        end
        st.keys[k] = true
        st.names[#st.names + 1] = k
    end
end

local function split_query(qs)
    local st = { keep = {}, args = {}, keys = {}, names = {} }
    local err = router.each_query_pair(qs, split_part, st)
    if err == false then
        return nil, parse.malformed_query()
    elseif err ~= nil then
        return nil, err
    end
    sort(st.names)
    return concat(st.keep, "&"), st.args, st.keys, st.names
end

_M.split_query = split_query

-- GET's arguments as a JSON object of strings; a VARIADIC argument's values as an array.
local function query_args_json(f, args)
    local variadic = {}
    for _, a in ipairs(f.args) do
        if a.variadic then variadic[a.name] = true end
    end
    local obj = {}
    for _, kv in ipairs(args) do
        local k, v = kv[1], kv[2]
        if variadic[k] then
            local list = obj[k] or setmetatable({}, array_mt)
            list[#list + 1] = v
            obj[k] = list
        else
            obj[k] = v
        end
    end
    return json_encode(obj)
end

-- POST: the body's argument names (keys, names) and its text, or nil, err.
local function body_args(req, single)
    local raw = req.raw_body
    if raw == nil or raw == "" then
        return {}, {}, "{}"
    end
    if single then
        return {}, {}, raw
    end
    local body = req.body
    if not find(raw, "^%s*{") or type(body) ~= "table" then
        return nil, rerr.invalid_body("tide calls a function with one JSON object of named " ..
                                      "arguments", nil, "send {\"name\": value, ...}, or " ..
                                      "Prefer: params=single-object for one json/jsonb argument")
    end
    local keys, names = {}, {}
    for k in pairs(body) do
        if #names >= MAX_ARGS then
            return nil, too_many("PGRST102")
        end
        keys[k] = true
        names[#names + 1] = k
    end
    sort(names)
    return keys, names, raw
end

---------------------------------------------------------------------------------------------
-- the statement

-- The CTE's query: the call, its arguments the parameter holding args_text.
local function call_query(f, keys, whole, args_text, params)
    local qf = quote(f.schema) .. "." .. quote(f.name)
    local from, call
    if whole then
        call = qf .. "(" .. add(params, args_text) .. "::" .. f.args[1].type .. ")"
    else
        local defs, named = {}, {}
        for _, a in ipairs(f.args) do
            if keys[a.name] then
                local qa = quote(a.name)
                defs[#defs + 1] = qa .. " " .. a.type
                named[#named + 1] = (a.variadic and "VARIADIC " or "") .. qa .. " => _a." .. qa
            end
        end
        if defs[1] ~= nil then
            from = "pg_catalog.json_to_record(" .. add(params, args_text) .. "::json) AS _a(" ..
                   concat(defs, ", ") .. ")"
        end
        call = qf .. "(" .. concat(named, ", ") .. ")"
    end
    if f.returns == "composite" then
        return "SELECT _c.* FROM " .. (from and (from .. ", LATERAL ") or "") .. call .. " AS _c"
    end
    return "SELECT " .. call .. " AS pgrst_scalar" .. (from and (" FROM " .. from) or "")
end

-- The counted aggregate of a scalar function's values ("<n> <total|-> <json array>").
local function scalar_select(qf, opts, params)
    local lim = ""
    if opts.limit ~= nil then
        lim = " LIMIT " .. add(params, opts.limit)
    end
    if opts.offset ~= nil then
        lim = lim .. " OFFSET " .. add(params, opts.offset)
    end
    local total = opts.total and ("(SELECT count(*) FROM " .. qf .. ")::text") or "'-'"
    return "SELECT count(*)::text || ' ' || " .. total .. " || ' ' || " ..
           "coalesce(json_agg(_t.pgrst_scalar), '[]')::text FROM (SELECT pgrst_scalar FROM " ..
           qf .. lim .. ") _t"
end

---------------------------------------------------------------------------------------------
-- errors raised by the function

local function raise_error(details, hint)
    return http.error(500, "PGRST121", "Could not parse JSON in the \"RAISE SQLSTATE " ..
                      "'PGRST'\" error", details, hint)
end
local MSG_HINT = "MESSAGE must be a JSON object with obligatory keys: 'code', 'message' " ..
                 "and optional keys: 'details', 'hint'."
local DETAIL_HINT = "DETAIL must be a JSON object with obligatory keys: 'status', " ..
                    "'headers' and optional key: 'status_text'."
local TOKEN = "^[%w!#%$%%&'%*%+%-%.%^_`|~]+$"

local function opt_string(v)
    return v == nil or v == null or type(v) == "string"
end

-- RAISE SQLSTATE 'PGRST': body, status, headers from its JSON MESSAGE and DETAIL, or nil, err.
local function pgrst_raise(err)
    local m, d = err.message, err.details
    local msg = type(m) == "string" and json_decode(m, 4)
    if type(msg) ~= "table" or type(msg.code) ~= "string" or type(msg.message) ~= "string" or
       not opt_string(msg.details) or not opt_string(msg.hint) then
        return nil, raise_error("Invalid JSON value for MESSAGE: '" .. tostring(m) .. "'",
                                MSG_HINT)
    end
    if type(d) ~= "string" then
        return nil, raise_error("DETAIL is missing in the RAISE statement", DETAIL_HINT)
    end
    local det = json_decode(d, 4)
    local status = type(det) == "table" and det.status
    local hs = type(det) == "table" and det.headers
    local ok = type(status) == "number" and status % 1 == 0 and status >= 100 and
               status <= 599 and type(hs) == "table"
    local headers, n = { ["Content-Type"] = rhttp.JSON }, 0
    if ok then
        for k, v in pairs(hs) do
            n = n + 1
            if n > MAX_RAISE_HEADERS or type(k) ~= "string" or not find(k, TOKEN) or
               type(v) ~= "string" or find(v, "[\r\n%z]") then
                ok = false
                break
            end
            headers[k] = v
        end
    end
    if not ok then
        return nil, raise_error("Invalid JSON value for DETAIL: '" .. d .. "'", DETAIL_HINT)
    end
    return { code = msg.code, message = msg.message, details = msg.details or null,
             hint = msg.hint or null }, status, headers
end

-- A failed call in PostgREST's terms: body, status, headers, or nil, err.
local function failed(err, req)
    local code = type(err) == "table" and err.code
    if code == "PGRST" then
        return pgrst_raise(err)
    end
    if type(code) == "string" and sub(code, 1, 2) == "PT" and #code == 5 then
        return nil, http.error(rerr.status(code), code, err.message, err.details, err.hint)
    end
    return nil, rerr.from_db(err, req)      -- PostgREST's status for the SQLSTATE
end

---------------------------------------------------------------------------------------------
-- the call

-- The request's arguments: rest (the query string tide.rest.parse reads), keys (set), names
-- (sorted) and the arguments' JSON text (GET: nil, built once the function is known, plus
-- the query's argument pairs), or nil, err.
local function arguments(req, post, single)
    if post then
        local keys, names, text = body_args(req, single)
        if not keys then return nil, names end
        return req.query_string or "", keys, names, text
    end
    local rest, qargs, keys, names = split_query(req.query_string)
    if not rest then return nil, qargs end
    return rest, keys, names, nil, qargs
end

-- The statement calling f and reading what it returns as q asks: sql, params, the range's
-- lower bound and whether a total is counted (a set, and Prefer asks for a count); or nil,
-- err.
local function statement(f, q, call_keys, whole, args_text, range_headers, wants_count)
    local tinfo = { name = f.name, columns = f.returns == "composite" and f.columns or {},
                    names = f.names or {}, hidden = f.hidden }
    local opts, err = plan.select(q, tinfo)
    if not opts then return nil, err end
    local lower_b = 0
    if f.retset then
        local upper_b
        lower_b, upper_b = plan.range(q, range_headers, schema.policy().max_rows)
        if not lower_b then return nil, upper_b end
        if upper_b ~= nil then opts.limit = upper_b - lower_b + 1 end
        if lower_b > 0 then opts.offset = lower_b end
    end
    local count = f.retset and wants_count or false
    opts.counted, opts.total = true, count or nil

    local qf = quote(f.name)
    local sel, params
    if f.returns == "composite" then
        sel, params = builder.select(f.name, opts)
    else
        params = builder.new_params()
        sel = scalar_select(qf, opts, params)
    end
    return "WITH " .. qf .. " AS (" .. call_query(f, call_keys, whole, args_text, params) ..
           ") SELECT (" .. sel .. ") AS body", params, lower_b, count
end

-- The answer for the call's cell ("<n> <total|-> <json array>"): body, status, headers.
local function answer(f, shape, text, lower_b, count)
    local n, total, pos = match(type(text) == "string" and text or "", "^(%d+) ([%d%-]+) ()")
    if not n then
        return nil, http.error(500, "TIDE_BAD_RESULT", "the call returned no result")
    end
    n, total, text = tonumber(n), tonumber(total), sub(text, pos)
    local out, status = rhttp.ranged(lower_b, n, total, count)
    if not out then return nil, status end
    if f.returns == "void" then
        return nil, 204, out
    end
    if shape == "object" and n ~= 1 then
        return nil, rerr.singular(n)
    end
    if shape == "object" then
        out["Content-Type"] = rhttp.OBJECT
    elseif f.retset then
        return json_raw(text), status, out
    end
    if n == 0 then
        return json_raw("null"), status, out      -- a row filtered away
    end
    return rhttp.unwrap(text), status, out        -- [value] -> value
end

local function call(req, method)
    local headers = req.headers or {}
    local shape, err = rhttp.negotiate(headers.accept, rhttp.NO_CSV)
    if not shape then return nil, err end
    local p = rhttp.preferences(headers.prefer)
    local single = p.params == "single-object"
    local post = method == "POST"

    local rest, keys, names, args_text, qargs = arguments(req, post, single)
    if not rest then return nil, keys end
    local q
    q, err = parse.request(rest)
    if not q then return nil, err end
    local f
    f, err = resolve(req.params.fn, keys, names, single, post)
    if not f then return nil, err end
    if not post then
        if f.volatility == "v" then
            return nil, http.error(405, "25006", "cannot execute the VOLATILE function " ..
                                   f.schema .. "." .. f.name .. " in a read-only transaction",
                                   "GET calls STABLE and IMMUTABLE functions only", "Use POST")
        end
        args_text = query_args_json(f, qargs)
    end

    local sql, params, lower_b, count = statement(f, q, keys, single or takes_body(f, post),
                                                  args_text, post and {} or headers,
                                                  p.count ~= nil)
    if not sql then return nil, params end
    local rows, derr = db.sql(sql, params, { rpc = f.name,
                                            read_only = not post or f.volatility ~= "v" })
    if not rows then
        return failed(derr, req)
    end
    return answer(f, shape, rows[1] and rows[1].body, lower_b, count)
end

function _M.get(req)
    return call(req, "GET")
end

function _M.post(req)
    return call(req, "POST")
end

-- PATCH, PUT, DELETE: 405 PGRST101 as PostgREST answers.
function _M.refuse(req)
    return nil, http.error(405, "PGRST101", "Cannot use the " .. tostring(req.method) ..
                           " method on RPC")
end

return _M
