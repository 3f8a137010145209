-- tide/rest/write.lua - /rest/v1's write side (PostgREST 12): POST (insert, bulk insert,
-- upsert), PATCH and DELETE on a table, over tide.db, so the routing, resilience and cache
-- policies and RLS apply as to every other write (tide.db invalidates the result cache before
-- the answer is sent). tide/rest/routes.lua routes them here.
--
--   POST   /rest/v1/:table           one object, or an array of objects that all have the same
--          keys (else 400 PGRST102 "All object keys must match"); [] or a JSON scalar inserts
--          nothing. columns=a,b takes only those keys from each object, and a key an object
--          lacks is NULL, or the column's default with Prefer: missing=default. Prefer:
--          resolution=merge-duplicates|ignore-duplicates makes it an upsert on on_conflict=a,b
--          (default: the primary key; with neither, a plain insert, as PostgREST does).
--   PATCH  /rest/v1/:table?filters   one object (an array holding one is taken as it); columns=
--          and missing=default as for POST (a listed key the object lacks becomes NULL or
--          DEFAULT); {} changes nothing.
--   DELETE /rest/v1/:table?filters
-- Filters, select= (aliases, casts) and their errors are the read side's (tide.rest.parse,
-- tide.rest.plan); table and column names come from the schema cache (tide.rest.schema); Prefer,
-- Accept and Content-Range follow the rules all of /rest/v1 shares (tide.rest.http). A write
-- answers JSON only: an Accept that names nothing else (text/csv alone) is 406 PGRST107.
--
-- Answers: Prefer: return=minimal (the default; POST 201, PATCH and DELETE 204, no body),
-- return=headers-only (POST 201 and, when exactly one row was inserted into a table with a
-- primary key, Location: /table?pk=eq.value), return=representation (POST 201, PATCH and
-- DELETE 200, the rows as JSON shaped by select=; with Accept:
-- application/vnd.pgrst.object+json the row as one object). Content-Range: "*/*" for POST and
-- DELETE, "0-<n-1>/*" for PATCH ("*/*" when no row changed); with Prefer: count=exact
-- (planned, estimated: exact too) the total after the slash is the number of rows written.
-- Preference-Applied lists the preferences applied, in PostgREST's order. One object asked
-- for and not exactly one row written: 406 PGRST116, the write rolled back. Prefer:
-- handling=strict refuses unknown preferences (400 PGRST122) and makes max-affected=n binding
-- on PATCH and DELETE (more rows: rolled back, 400 PGRST124).
--
-- Refusals: a PATCH or DELETE without any filter is refused as Supabase's PostgREST refuses
-- it (pg-safeupdate): 400, code 21000, "UPDATE requires a WHERE clause" (DELETE ...), unless
-- policies/exposure.lua lists the table in unfiltered_writes. A payload key or columns= name
-- that is not a column, or is hidden (exposure.hide): 400 PGRST204. A body that is not JSON
-- (or not an object/array of objects): 400 PGRST102. Postgres' own errors keep their SQLSTATE
-- with PostgREST's status (tide/rest/errors.lua: 23505 and 23503 409, 23502, 23514 and
-- 22P02 400, 42501 401 without a token and 403 with one, ...).
--
-- Bounds: at most max_insert_rows rows in one POST (policies/exposure.lua, default 1000; more
-- is 413 TIDE_TOO_MANY_ROWS and nothing is written); with missing=default at most MAX_SHAPES
-- (32) distinct key sets among the rows (each is its own INSERT in the one statement; 400
-- PGRST102 beyond); columns= and on_conflict= at most MAX_NAMES (256) names. The body itself
-- is bounded before it gets here (http.max_body_bytes, tide.boot's depth and container caps).
--
-- An upsert with merge-duplicates that inserted no row (only updated) answers 200, as PostgREST
-- 12 does; one that inserted any, or ignore-duplicates, 201.
--
-- Differences from PostgREST 12: with missing=default the rows come back grouped by key set;
-- PATCH takes one object; limit/offset on PATCH and DELETE (limited updates) are refused (400 PGRST100); CSV and
-- form bodies are refused (400 PGRST102); PUT is not served; integers beyond 2^53 in a body
-- lose precision (the body is decoded, checked, and re-encoded).

local db = require "tide.db"
local http = require "tide.http"
local json = require "tide.json"
local parse = require "tide.rest.parse"
local plan = require "tide.rest.plan"
local schema = require "tide.rest.schema"
local rerr = require "tide.rest.errors"
local rhttp = require "tide.rest.http"

local type, pairs, ipairs, next, tostring = type, pairs, ipairs, next, tostring
local getmetatable, setmetatable = getmetatable, setmetatable
local byte, find, format, gsub, match, sub = string.byte, string.find, string.format,
    string.gsub, string.match, string.sub
local concat, sort = table.concat, table.sort
local null, array_mt, json_raw, json_decode = json.null, json.array_mt, json.raw, json.decode

local _M = {}

local MAX_SHAPES = 32
local MAX_NAMES = 256
local DEFAULT_MAX_INSERT_ROWS = 1000
_M.MAX_SHAPES, _M.MAX_NAMES = MAX_SHAPES, MAX_NAMES

---------------------------------------------------------------------------------------------
-- names: columns= and on_conflict=

-- "a,b" or "\"a b\",c" -> list of names, or nil, err (400 PGRST100).
local function name_list(text, what)
    local out, seen = {}, {}
    local i, len = 1, #text
    while true do
        local name
        local s = match(text, "^%s*()", i)
        if byte(text, s) == 34 then                              -- "quoted"
            local parts, j = {}, s + 1
            while true do
                local e = find(text, '[\\"]', j)
                if e == nil then
                    return nil, parse.fail(what .. " parameter", text, j,
                                           "unexpected end of input expecting closing quote")
                end
                parts[#parts + 1] = sub(text, j, e - 1)
                if byte(text, e) == 92 then
                    parts[#parts + 1] = sub(text, e + 1, e + 1)
                    j = e + 2
                else
                    j = e + 1
                    break
                end
            end
            name = concat(parts)
            i = match(text, "^%s*()", j)
        else
            local e = find(text, ",", s, true) or (len + 1)
            name = rhttp.trim(sub(text, s, e - 1))
            i = e
        end
        if name == "" then
            return nil, parse.fail(what .. " parameter", text, i,
                                   "expecting field name (* or [a..z0..9_$])")
        end
        if not seen[name] then
            seen[name] = true
            out[#out + 1] = name
            if #out > MAX_NAMES then
                return nil, http.error(400, "PGRST100", "too many names in " .. what,
                                       "at most " .. MAX_NAMES)
            end
        end
        if i > len then
            return out
        elseif byte(text, i) ~= 44 then
            return nil, parse.fail(what .. " parameter", text, i,
                                   "unexpected \"" .. sub(text, i, i) ..
                                   "\" expecting \",\" or end of input")
        end
        i = i + 1
    end
end
_M._name_list = name_list

---------------------------------------------------------------------------------------------
-- the table and the request's names, against the schema cache

-- nil, PGRST204, stale for a name that is not a column of tinfo (or a hidden one).
local function check_names(tinfo, list)
    for i = 1, #list do
        if tinfo.columns[list[i]] == nil then
            return nil, rerr.column_not_found(tinfo.name, list[i]), true
        end
    end
    return true
end

-- The keys of a row, sorted (for stable errors).
local function keys_of(row)
    local out = {}
    for k in pairs(row) do out[#out + 1] = k end
    sort(out)
    return out
end

local function is_object(v)
    return type(v) == "table" and getmetatable(v) == nil and v[1] == nil
end

local function is_list(v)
    return type(v) == "table" and (getmetatable(v) == array_mt or v[1] ~= nil)
end

-- The read side's select=, filters and order checked against tinfo: {columns, filters} or
-- nil, err, stale. The select list becomes a write's RETURNING list.
local function plan_query(q, tinfo)
    local opts, err = plan.select(q, tinfo)
    if not opts then
        return nil, err, err and err.code == "42703"
    end
    return opts
end

---------------------------------------------------------------------------------------------
-- payloads

-- POST's rows from the body: {rows}, or nil, err, stale. cols: columns= (checked here) or
-- nil; with defaults (missing=default) a missing key stays absent, else it is JSON null.
local function insert_rows(body, tinfo, cols, defaults, max_rows)
    local list
    if is_list(body) then
        list = body
    elseif is_object(body) then
        list = { body }
    else
        list = {}                        -- a JSON scalar or null: PostgREST inserts nothing
    end
    if #list > max_rows then
        return nil, http.error(413, "TIDE_TOO_MANY_ROWS", "at most " .. max_rows ..
                               " rows can be inserted in one request, got " .. #list, nil,
                               "send the rows in several requests")
    end
    if cols == nil then
        -- every object has the first one's keys, and they are all columns
        if list[1] == nil then
            return list
        end
        local first = list[1]
        if not is_object(first) then
            return nil, rerr.invalid_body("All object keys must match")
        end
        local keys = keys_of(first)
        local nkeys = #keys
        for i = 2, #list do
            local r = list[i]
            if not is_object(r) then
                return nil, rerr.invalid_body("All object keys must match")
            end
            local n = 0
            for k in pairs(r) do
                if first[k] == nil then
                    return nil, rerr.invalid_body("All object keys must match")
                end
                n = n + 1
            end
            if n ~= nkeys then
                return nil, rerr.invalid_body("All object keys must match")
            end
        end
        local ok, err, stale = check_names(tinfo, keys)
        if not ok then return nil, err, stale end
        return list
    end
    local ok, err, stale = check_names(tinfo, cols)
    if not ok then return nil, err, stale end
    local rows, shapes, nshapes = {}, {}, 0
    for i = 1, #list do
        local r = list[i]
        if not is_object(r) then
            return nil, rerr.invalid_body("columns= takes an object or an array of objects")
        end
        local row, sig = {}, {}
        for j = 1, #cols do
            local c = cols[j]
            local v = r[c]
            if v ~= nil then
                row[c] = v
                sig[#sig + 1] = j
            elseif not defaults then
                row[c] = null
            end
        end
        if defaults then
            local s = concat(sig, ",")
            if not shapes[s] then
                shapes[s] = true
                nshapes = nshapes + 1
                if nshapes > MAX_SHAPES then
                    return nil, rerr.invalid_body("with missing=default the objects may have " ..
                                                  "at most " .. MAX_SHAPES .. " different " ..
                                                  "sets of keys")
                end
            end
        end
        rows[i] = row
    end
    return rows
end

-- PATCH's patch and the columns set to DEFAULT: patch, defaults (a list or nil), or nil,
-- err, stale.
local function update_patch(body, tinfo, cols, missing_default)
    local obj
    if is_object(body) then
        obj = body
    elseif is_list(body) then
        if body[2] ~= nil or (body[1] ~= nil and not is_object(body[1])) then
            return nil, rerr.invalid_body("PATCH takes one object (tide does not take an " ..
                                          "array of several)")
        end
        obj = body[1] or {}
    else
        obj = {}
    end
    if cols == nil then
        local keys = keys_of(obj)
        local ok, err, stale = check_names(tinfo, keys)
        if not ok then return nil, err, stale end
        return obj, nil
    end
    local ok, err, stale = check_names(tinfo, cols)
    if not ok then return nil, err, stale end
    local patch, dflt = {}, nil
    for j = 1, #cols do
        local c = cols[j]
        local v = obj[c]
        if v ~= nil then
            patch[c] = v
        elseif missing_default then
            dflt = dflt or {}
            dflt[#dflt + 1] = c
        else
            patch[c] = null
        end
    end
    return patch, dflt
end

---------------------------------------------------------------------------------------------
-- answers

-- Percent-encodes a query-string component (unreserved characters stay).
local function pct(s)
    return (gsub(s, "[^%w%-%._~]", function(c) return format("%%%02X", byte(c)) end))
end

-- Location for the one row inserted: /table?pk=eq.value&... (values as Postgres prints them:
-- the primary key was returned cast to text), or nil.
local function location(tinfo, text)
    local rows = json_decode(text)
    local row = type(rows) == "table" and rows[1]
    if type(row) ~= "table" then
        return nil
    end
    local parts = {}
    for i, c in ipairs(tinfo.pkey) do
        local v = row[c]
        if v == nil then
            return nil
        end
        parts[i] = pct(c) .. "=" .. (v == null and "is.null" or ("eq." .. pct(tostring(v))))
    end
    return "/" .. tinfo.name .. "?" .. concat(parts, "&")
end

-- Content-Range of a write: "*/*" (POST, DELETE), "0-<n-1>/*" (PATCH); the total is n with a
-- count preference (PostgREST's contentRangeH).
local function content_range(ranged, n, counted)
    local total = counted and n or nil
    if ranged then
        return rhttp.content_range(0, n, total)
    end
    return "*/" .. (total and tostring(total) or "*")
end

-- The RETURNING list: the select= columns for a representation; for headers-only on POST
-- the primary key as text (for Location); else false (rows only counted: no SELECT right or
-- policy needed, as PostgREST's RETURNING 1).
local function returning(ret, kind, tinfo, columns)
    if ret == "representation" then
        return columns
    elseif ret == "headers-only" and kind == "insert" and tinfo.pkey then
        local out = {}
        for i, c in ipairs(tinfo.pkey) do out[i] = { c, cast = "text" } end
        return out
    end
    return false
end

-- The common tail: runs the write (call(opts) -> body, info) and answers.
local function finish(req, w, call)
    local p, shape, kind, tinfo = w.prefs, w.shape, w.kind, w.tinfo
    local ret = p["return"]
    local opts = { columns = returning(ret, kind, tinfo, w.columns), counted = true, raw = true }
    if shape == "object" then
        opts.max_affected = 1
    elseif kind ~= "insert" and p.handling == "strict" and p.max_affected ~= nil then
        opts.max_affected = p.max_affected
    end
    local body, info
    if w.noop then
        body, info = json_raw("[]"), { n = 0 }  -- nothing to write (PATCH with {})
    else
        body, info = call(opts)
        if not body then
            if type(info) == "table" and info.code == "TIDE_MAX_AFFECTED" then
                if shape == "object" then
                    return nil, rerr.singular(info.affected)
                end
                return nil, rerr.max_affected(info.affected)
            end
            return nil, rerr.from_db(info, req)
        end
    end
    local n = info.n
    if shape == "object" and n ~= 1 then
        return nil, rerr.singular(n)
    end
    local out = { ["Content-Range"] = content_range(kind == "update", n, p.count ~= nil) }
    out["Preference-Applied"] = rhttp.applied(p, w.applies)
    local status = kind == "insert" and 201 or 204
    if info.inserted == 0 and n > 0 then
        status = 200                    -- PostgREST 12: a merge that only updated rows
    end
    if ret == "headers-only" and kind == "insert" and tinfo.pkey and n == 1 then
        out.Location = location(tinfo, body.text)
    end
    if ret ~= "representation" then
        return nil, status, out
    end
    if kind ~= "insert" then
        status = 200
    end
    if shape == "object" then
        out["Content-Type"] = rhttp.OBJECT
        return rhttp.unwrap(body.text), status, out   -- [row] -> row
    end
    out["Content-Type"] = rhttp.JSON
    return body, status, out
end

-- What every write starts with: the preferences (strict refuses unknown ones), the answer's
-- shape, the parsed query. Returns w = {prefs, shape, q} or nil, err.
local function start(req, kind)
    local headers = req.headers or {}
    local p = rhttp.preferences(headers.prefer)
    if p.handling == "strict" and p.invalid[1] ~= nil then
        return nil, rerr.invalid_prefs(p.invalid)
    end
    local shape, err = rhttp.negotiate(headers.accept, rhttp.NO_CSV)
    if not shape then return nil, err end
    local q
    q, err = parse.request(req.query_string)
    if not q then return nil, err end
    if kind ~= "insert" and (q.limit ~= nil or q.offset ~= nil) then
        return nil, http.error(400, "PGRST100", "limit and offset on " .. req.method ..
                               " (limited updates and deletes) are not supported by tide yet")
    end
    return { prefs = p, shape = shape, q = q, kind = kind }
end

-- The request body, or nil, err (400 PGRST102) when it did not decode.
local function body_of(req)
    local berr = req.body_error
    if berr ~= nil then
        if berr.status == 415 then
            local ct = req.headers and req.headers["content-type"] or ""
            return nil, rerr.invalid_body("Content-Type not acceptable: " ..
                                          (match(ct, "^%s*([^;%s]*)") or ct))
        end
        return nil, rerr.invalid_body("Empty or invalid json", berr.message)
    end
    if req.body == nil then
        return nil, rerr.invalid_body("Empty or invalid json")
    end
    return req.body
end

-- true and the list of a names parameter (columns=, on_conflict=; nil when absent), or
-- false, err.
local function names_param(req, key)
    local v = req.query and req.query[key]
    if v == nil then
        return true, nil
    end
    local list, err = name_list(v, key)
    if not list then
        return false, err
    end
    return true, list
end

-- What POST and PATCH start with: start(), then the body and columns= (w.body, w.cols).
-- Returns w or nil, err.
local function start_payload(req, kind)
    local w, err = start(req, kind)
    if not w then return nil, err end
    w.body, err = body_of(req)
    if w.body == nil then return nil, err end
    local ok, cols = names_param(req, "columns")
    if not ok then return nil, cols end
    w.cols = cols
    return w
end

-- The table and the write planned against it (schema.with_table, so an unknown name re-reads
-- the catalog once): select= and the filters' names (plan_query), then payload(tinfo) ->
-- planned | nil, err, stale (none for DELETE). Sets w.tinfo and w.columns (what RETURNING
-- lists); returns planned or nil, err.
local function plan_table(req, w, payload)
    local tinfo, planned = schema.with_table(req.params.table, function(t)
        local opts, e, stale = plan_query(w.q, t)
        if not opts then return nil, e, stale end
        local out = {}
        if payload then
            out, e, stale = payload(t)
            if not out then return nil, e, stale end
        end
        out.columns = opts.columns
        return out
    end)
    if not tinfo then return nil, planned end
    w.tinfo, w.columns = tinfo, planned.columns
    return planned
end

---------------------------------------------------------------------------------------------
-- handlers

function _M.insert(req)
    local w, err = start_payload(req, "insert")
    if not w then return nil, err end
    local p = w.prefs
    local ok, target = names_param(req, "on_conflict")
    if not ok then return nil, target end
    local policy = schema.policy()
    local max_rows = policy.max_insert_rows or DEFAULT_MAX_INSERT_ROWS
    local defaults = p.missing == "default"

    local planned
    planned, err = plan_table(req, w, function(t)
        if target ~= nil then
            for i = 1, #target do
                if t.columns[target[i]] == nil then
                    return nil, http.error(400, "42703", "column \"" .. target[i] ..
                                           "\" does not exist"), true
                end
            end
        end
        local rows, e, stale = insert_rows(w.body, t, w.cols, defaults, max_rows)
        if not rows then return nil, e, stale end
        return { rows = rows }
    end)
    if not planned then return nil, err end
    local tinfo = w.tinfo

    local conflict = target or tinfo.pkey
    local upsert = p.resolution ~= nil and conflict ~= nil
    w.applies = { resolution = (tinfo.pkey ~= nil or target ~= nil), missing = true,
                  ["return"] = true, count = true, handling = true }
    local rows = setmetatable(planned.rows, array_mt)
    return finish(req, w, function(opts)
        opts.defaults = defaults or nil
        if upsert then
            opts.on_conflict = conflict
            opts.ignore = p.resolution == "ignore-duplicates" or nil
            opts.inserted = not opts.ignore or nil   -- merge: 200 when nothing was inserted
            return db.upsert(tinfo.name, rows, opts)
        end
        return db.insert(tinfo.name, rows, opts)
    end)
end

-- The filters of a PATCH or DELETE, or nil, err: none at all is refused unless the policy
-- allows it for the table (then all = true).
local function write_filters(tinfo, q, verb)
    local filters, err
    if q.filters[1] ~= nil then
        filters, err = plan.filters(q.filters, tinfo)
        if err then return nil, err end
    end
    if filters == nil then
        local allowed = schema.policy().unfiltered_writes
        if not (type(allowed) == "table" and allowed[tinfo.name] == true) then
            return nil, http.error(400, "21000", verb .. " requires a WHERE clause", nil,
                                   "add a filter, e.g. id=eq.1 (policies/exposure.lua " ..
                                   "unfiltered_writes allows it per table)")
        end
        return { all = true }
    end
    return { filters = filters }
end

function _M.update(req)
    local w, err = start_payload(req, "update")
    if not w then return nil, err end
    local p = w.prefs

    local planned
    planned, err = plan_table(req, w, function(t)
        local patch, dflt, stale = update_patch(w.body, t, w.cols, p.missing == "default")
        if not patch then return nil, dflt, stale end
        return { patch = patch, defaults = dflt }
    end)
    if not planned then return nil, err end
    local tinfo = w.tinfo
    local where
    where, err = write_filters(tinfo, w.q, "UPDATE")
    if not where then return nil, err end
    w.noop = next(planned.patch) == nil and planned.defaults == nil
    w.applies = { missing = true, ["return"] = true, count = true, handling = true,
                  max_affected = true }
    return finish(req, w, function(opts)
        opts.filters, opts.all, opts.defaults = where.filters, where.all, planned.defaults
        return db.update(tinfo.name, planned.patch, opts)
    end)
end

function _M.delete(req)
    local w, err = start(req, "delete")
    if not w then return nil, err end
    local planned
    planned, err = plan_table(req, w)
    if not planned then return nil, err end
    local tinfo = w.tinfo
    local where
    where, err = write_filters(tinfo, w.q, "DELETE")
    if not where then return nil, err end
    w.applies = { ["return"] = true, count = true, handling = true, max_affected = true }
    return finish(req, w, function(opts)
        opts.filters, opts.all = where.filters, where.all
        return db.delete(tinfo.name, opts)
    end)
end

return _M
