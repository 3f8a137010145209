-- tide/builder.lua - the pure SQL builder behind tide.db: Lua tables in, parameterised SQL out.
-- No I/O. Every function returns `sql, params` (params.n = number of parameters).
--
-- Safety rules (never relaxed):
--   * identifiers (tables, columns, functions) are validated (non-empty string, no NUL, at
--     most 63 bytes) and always double-quoted with "" escaping: `a"b` -> "a""b";
--   * values are ALWAYS parameters ($n), never spliced into the text. Postgres infers their
--     types (tide.core sends them untyped), so the text says `= ANY($n)`, `$n::vector`, ...;
--   * the same shape of call gives byte-identical SQL (filter columns and written columns are
--     sorted, operators applied in a fixed order): the text is the prepared-statement key.
--
-- Reads and writes come back as ONE json text cell built by Postgres:
--   SELECT coalesce(json_agg(_t), '[]')::text FROM (SELECT ... ) _t
--   WITH _t AS (INSERT ... RETURNING ...) SELECT coalesce(json_agg(_t), '[]')::text FROM _t
-- With opts.single the cell is the one row's JSON object, '' when there is no row, and for
-- more than one row '*' (reads; LIMIT 2 unless a limit is given) or an error that rolls the
-- write back (writes: SQLSTATE TD001, DETAIL the number of rows, raised by
-- tide_meta.write_refused (db/migrations/011_write_refused.sql); tide.db turns it into
-- TIDE_MULTIPLE_ROWS).
-- Writes also take counted = true (the cell is "<n> - <json>", n = rows written),
-- max_affected = n (more rows written abort the statement, which rolls the write back:
-- SQLSTATE TD002, DETAIL the number of rows; tide.db makes it TIDE_MAX_AFFECTED) and
-- columns = false (RETURNING 1: rows are counted, none is read back; the json part is '[]').
-- insert/upsert take defaults = true (a key a row lacks takes the column default, not NULL),
-- update defaults = {columns set to DEFAULT}.
--
-- Filters (PostgREST operators), ANDed; columns sorted:
--   {col = v}                          "col" = $n      (v == json.null -> "col" IS NULL)
--   {col = {eq=, neq=, gt=, gte=, lt=, lte=, like=, ilike=}}
--   {col = {["in"] = {v1, v2, json.null}}}   "col" = ANY($n), $n a Postgres array literal
--   {col = {is = "null"|"not_null"|"true"|"false"}}  (json.null, true, false also accepted)
--   {col = {contains = v}}             "col" @> $n: a string is sent as is, a Lua array as a
--                                      Postgres array literal (text[] columns), a Lua object
--                                      as JSON (jsonb columns), json.raw(text) as its text
--   {col = {contained = v}}            "col" <@ $n, the same values
--   {col = {["not"] = {op = v, ...}}}  NOT (...)
--   {col = {gte = 1, lte = 5}}         several operators on one column are ANDed
--   {["or"] = {{a = 1}, {b = {gt = 2}}}}  ("a" = $1 OR "b" > $2); ["and"] likewise. "or" and
--                                      "and" are reserved keys (not column names).
-- order: "-created_at,name" or {"-created_at", "name"} -> "created_at" DESC, "name" ASC; a list
--   item may also be {name, desc = bool, nulls = "first"|"last"} (NULLS FIRST/LAST).
-- columns: "*" (default), "a,b" or {"a", "b"}; a list item may also be {name, as = alias,
--   cast = type} -> "name"::type AS "alias", type one of CAST_TYPES (an allow-list: type names
--   are spliced into the text, so only these fixed spellings are accepted).
--   select's list may also hold embed items (related rows as one JSON value per row):
--     {embed = tbl, on = {{col, outer_col}, ...}, one = bool, columns = list, as = key}
--   -> a correlated subquery of tbl's rows whose col equals the outer row's outer_col (all
--   pairs ANDed): with one = true the one row as an object, or null; else a JSON array of them,
--   [] when none. columns is a list as above without embeds (one level), as defaults to tbl.
--   The item is a description, not SQL: the builder makes the subquery from identifiers it
--   quotes itself and it takes no parameter, so no caller text reaches the statement and the
--   same request shape stays the same text. The embedded rows are read in the same statement
--   under the same role, so RLS filters them as any read; builder.embedded_tables(columns)
--   names them (tide.db tags cached reads with them). With an embed the outer table is
--   aliased _p and the embedded one _c, and embedded columns are qualified (_c."col"): a
--   self-reference or a column missing from tbl can never bind to the outer row.
-- limit/offset: non-negative integers (sent as parameters).
-- select's counted = true prefixes the cell with the number of rows in the answer and, with
--   total = true as well, the number of rows the filters match without limit/offset (the same
--   WHERE in a scalar subquery, same snapshot): "<n> <total or -> <json>". tide.db strips it.
-- select's csv = true makes the cell CSV text instead of JSON (PostgREST's text/csv): a header
--   line of the column names, then one line per row, lines joined by "\n" with none after the
--   last; each value as Postgres prints it in a record (its type's text output, quoted when it
--   is empty or holds a comma, quote, backslash, parenthesis or white space; NULL as nothing)
--   but with RFC 4180 escapes only (record text doubles backslashes too; undone here). No row:
--   no header either (the names come from the first row), so the cell is "\n".

local json = require "tide.json"
local errors = require "tide.errors"
local memo = require "tide.memo"

local type, pairs, ipairs, next, tostring = type, pairs, ipairs, next, tostring
local getmetatable = getmetatable
local byte, find, format, gsub, sub = string.byte, string.find, string.format, string.gsub,
    string.sub
local concat, sort = table.concat, table.sort
local huge = math.huge
local misuse = errors.misuse
local memo_put = memo.put
local null, array_mt, raw_mt = json.null, json.array_mt, json.raw_mt
local json_encode, is_array = json.encode, json.is_array

local _M = {}

local MAX_IDENT = 63                    -- NAMEDATALEN - 1
local MAX_SAFE_INT = 9007199254740992   -- 2^53

-- Identifiers, column lists and ORDER BY clauses repeat on every request.
local ident_memo, columns_memo, order_memo = memo.new(1024), memo.new(1024), memo.new(1024)

---------------------------------------------------------------------------------------------
-- identifiers and literals

-- Returns the identifier double-quoted. Raises on an invalid identifier (what: for messages).
local function ident(name, what)
    local q = ident_memo.map[name]
    if q then
        return q
    end
    if type(name) ~= "string" then
        misuse((what or "identifier") .. " must be a string, got " .. type(name))
    end
    if name == "" then
        misuse((what or "identifier") .. " must not be empty")
    end
    if #name > MAX_IDENT then
        misuse((what or "identifier") .. " is longer than " .. MAX_IDENT .. " bytes: " ..
               sub(name, 1, 20) .. "...")
    end
    if find(name, "\0", 1, true) then
        misuse((what or "identifier") .. " contains a NUL byte")
    end
    if find(name, '"', 1, true) then
        q = '"' .. gsub(name, '"', '""') .. '"'
    else
        q = '"' .. name .. '"'
    end
    return memo_put(ident_memo, name, q)
end
_M.quote_ident = ident

local function is_finite(x)
    return x == x and x ~= huge and x ~= -huge
end

-- Text of a number for an array/vector literal.
local function number_text(x, what)
    if not is_finite(x) then
        misuse(what .. ": numbers must be finite")
    end
    if x % 1 == 0 and x > -MAX_SAFE_INT and x < MAX_SAFE_INT then
        return format("%d", x)
    end
    return format("%.17g", x)
end

-- Returns a Postgres array literal for a flat Lua array: {"a","b\"c",NULL,1,true}.
-- Strings are always quoted with \ and " escaped; json.null -> NULL.
local function pg_array(list, what)
    if type(list) ~= "table" or (getmetatable(list) ~= array_mt and next(list) ~= nil
                                 and not is_array(list)) then
        misuse(what .. ": expected an array")
    end
    local out = {}
    for i = 1, #list do
        local v = list[i]
        local tv = type(v)
        if tv == "string" then
            if find(v, '[\\"]') then
                v = gsub(v, '[\\"]', "\\%0")
            end
            out[i] = '"' .. v .. '"'
        elseif tv == "number" then
            out[i] = number_text(v, what)
        elseif tv == "boolean" then
            out[i] = v and "true" or "false"
        elseif v == null then
            out[i] = "NULL"
        else
            misuse(what .. ": array elements must be strings, numbers, booleans or json.null" ..
                   " (got " .. tv .. " at " .. i .. ")")
        end
    end
    return "{" .. concat(out, ",") .. "}"
end
_M.pg_array = pg_array

-- Type names a column may be cast to (select's {name, cast = type}): spliced into the SQL
-- text as written here, so the set is fixed.
local CAST_TYPES = {}
for _, t in ipairs({ "text", "varchar", "char", "name", "smallint", "integer", "int", "int2",
                     "int4", "int8", "bigint", "numeric", "decimal", "real", "float4",
                     "float8", "double precision", "boolean", "bool", "date", "time", "timetz",
                     "timestamp", "timestamptz", "interval", "uuid", "json", "jsonb", "money",
                     "inet", "cidr", "bytea" }) do
    CAST_TYPES[t] = true
end
_M.CAST_TYPES = CAST_TYPES

-- "name"[::type][ AS "alias"] for a {name, as =, cast =} column item.
local function column_item(c, what)
    local name, alias, cast = c[1], c.as, c.cast
    for k in pairs(c) do
        if k ~= 1 and k ~= "as" and k ~= "cast" then
            misuse(what .. ": unknown key '" .. tostring(k) .. "' in a column item")
        end
    end
    local out = ident(name, what)
    if cast ~= nil then
        if not CAST_TYPES[cast] then
            misuse(what .. ": cannot cast to '" .. tostring(cast) .. "' (not an allowed type)")
        end
        out = out .. "::" .. cast
        alias = alias or name                   -- keep the column's name for the cast value
    end
    if alias ~= nil then
        out = out .. " AS " .. ident(alias, "column alias")
    end
    return out
end

local MAX_EMBED_KEYS = 32              -- Postgres' INDEX_MAX_KEYS: no key has more columns
local EMBED_KEYS = { embed = true, on = true, one = true, columns = true, as = true }

-- The subquery of an embed item (see the header), aliased, for select's list.
local function embed_item(c)
    for k in pairs(c) do
        if not EMBED_KEYS[k] then
            misuse("embed: unknown key '" .. tostring(k) .. "' in an embed item")
        end
    end
    local qt = ident(c.embed, "embedded table")
    local on = c.on
    if type(on) ~= "table" or on[1] == nil or #on > MAX_EMBED_KEYS then
        misuse("embed " .. c.embed .. ": on must list 1 to " .. MAX_EMBED_KEYS ..
               " {column, outer column} pairs")
    end
    local conds = {}
    for i = 1, #on do
        local pair = on[i]
        if type(pair) ~= "table" then
            misuse("embed " .. c.embed .. ": on[" .. i .. "] must be {column, outer column}")
        end
        conds[i] = "_c." .. ident(pair[1], "embedded column") .. " = _p." ..
                   ident(pair[2], "outer column")
    end
    local cols = c.columns
    local list = {}
    if cols == nil or cols == "*" then
        list[1] = "_c.*"
    elseif type(cols) ~= "table" or cols[1] == nil then
        misuse("embed " .. c.embed .. ": columns must be \"*\" or a non-empty list")
    else
        for i = 1, #cols do
            local item = cols[i]
            if item == "*" then
                list[i] = "_c.*"
            elseif type(item) == "table" then
                if item.embed ~= nil then
                    misuse("embed " .. c.embed .. ": embeds nest one level only")
                end
                list[i] = "_c." .. column_item(item, "embedded column")
            else
                list[i] = "_c." .. ident(item, "embedded column")
            end
        end
    end
    local alias = ident(c.as == nil and c.embed or c.as, "embed alias")
    local rows = "(SELECT " .. concat(list, ", ") .. " FROM " .. qt .. " _c WHERE " ..
                 concat(conds, " AND ") .. ") _e"
    if c.one == true then
        return "(SELECT row_to_json(_e.*) FROM " .. rows .. ") AS " .. alias
    elseif c.one ~= nil and c.one ~= false then
        misuse("embed " .. c.embed .. ": one must be a boolean")
    end
    return "(SELECT coalesce(json_agg(_e.*), '[]') FROM " .. rows .. ") AS " .. alias
end

-- The names of the tables that embed items in columns read (nil when there is none).
function _M.embedded_tables(columns)
    if type(columns) ~= "table" then
        return nil
    end
    local out
    for i = 1, #columns do
        local c = columns[i]
        if type(c) == "table" and c.embed ~= nil then
            out = out or {}
            out[#out + 1] = c.embed
        end
    end
    return out
end

-- Returns the select list for columns ("*", "a,b", {"a","b"}), and true when it holds an
-- embed item (allowed only when embeds is true: select's list).
local function column_list(columns, what, embeds)
    if columns == nil or columns == "*" then
        return "*"
    end
    local tc = type(columns)
    if tc == "string" then
        local cached = columns_memo.map[columns]
        if cached then
            return cached
        end
        local out, i, pos = {}, 0, 1
        while true do
            local comma = find(columns, ",", pos, true)
            local item = sub(columns, pos, (comma or 0) - 1)
            item = (gsub(item, "^%s+", ""))
            item = (gsub(item, "%s+$", ""))
            i = i + 1
            out[i] = item == "*" and "*" or ident(item, what)
            if not comma then
                break
            end
            pos = comma + 1
        end
        return memo_put(columns_memo, columns, concat(out, ", "))
    elseif tc == "table" then
        local out, embedded = {}, false
        for i = 1, #columns do
            local c = columns[i]
            if type(c) == "table" and c.embed ~= nil then
                if not embeds then
                    misuse(what .. ": embed items belong in select's columns only")
                end
                out[i] = embed_item(c)
                embedded = true
            elseif type(c) == "table" then
                out[i] = column_item(c, what)
            else
                out[i] = c == "*" and "*" or ident(c, what)
            end
        end
        if out[1] == nil then
            misuse(what .. " must not be an empty list")
        end
        return concat(out, ", "), embedded
    end
    misuse(what .. " must be \"*\", a comma-separated string or a list of names")
end
_M.column_list = column_list

-- Returns " ORDER BY ..." (or "") for "-a,b" / {"-a", "b"}.
local function order_by(order)
    if order == nil then
        return ""
    end
    local items
    if type(order) == "string" then
        local cached = order_memo.map[order]
        if cached then
            return cached
        end
        items = {}
        local pos = 1
        while true do
            local comma = find(order, ",", pos, true)
            items[#items + 1] = sub(order, pos, (comma or 0) - 1)
            if not comma then
                break
            end
            pos = comma + 1
        end
    elseif type(order) == "table" then
        items = order
    else
        misuse("order must be a string like \"-created_at,name\" or a list")
    end
    local out = {}
    for i = 1, #items do
        local item = items[i]
        if type(item) == "table" then
            local nulls = item.nulls
            if nulls ~= nil and nulls ~= "first" and nulls ~= "last" then
                misuse("order: nulls must be \"first\" or \"last\"")
            end
            out[i] = ident(item[1], "order column") .. (item.desc and " DESC" or " ASC") ..
                     (nulls == "first" and " NULLS FIRST" or nulls == "last" and " NULLS LAST"
                      or "")
        elseif type(item) ~= "string" then
            misuse("order: items must be strings or {name, desc =, nulls =} tables")
        else
            item = (gsub(item, "^%s+", ""))
            item = (gsub(item, "%s+$", ""))
            if byte(item, 1) == 45 then         -- "-"
                out[i] = ident(sub(item, 2), "order column") .. " DESC"
            else
                out[i] = ident(item, "order column") .. " ASC"
            end
        end
    end
    if out[1] == nil then
        misuse("order must name at least one column")
    end
    local clause = " ORDER BY " .. concat(out, ", ")
    if type(order) == "string" then
        memo_put(order_memo, order, clause)
    end
    return clause
end
_M.order_by = order_by

-- The keys of t sorted, and their number; raises problem when a key is not a string.
local function sorted_keys(t, problem)
    local keys, nkeys = {}, 0
    for k in pairs(t) do
        if type(k) ~= "string" then
            misuse(problem)
        end
        nkeys = nkeys + 1
        keys[nkeys] = k
    end
    sort(keys)
    return keys, nkeys
end

local function check_count(v, what)
    if type(v) ~= "number" or v % 1 ~= 0 or v < 0 or v >= MAX_SAFE_INT then
        misuse(what .. " must be a non-negative integer, got " .. tostring(v))
    end
    return v
end

---------------------------------------------------------------------------------------------
-- filters

-- A statement under construction: params with an explicit count.
local function new_params()
    return { n = 0 }
end

local function add_param(params, v)
    local n = params.n + 1
    params.n = n
    params[n] = v
    return "$" .. n
end
-- For statements built outside (tide/rest/rpc.lua), so placeholders count the same way.
_M.new_params, _M.add_param = new_params, add_param

-- Checks a scalar filter value and returns what goes into params.
local function scalar_param(v, col, op)
    local tv = type(v)
    if tv == "string" or tv == "boolean" then
        return v
    elseif tv == "number" then
        if not is_finite(v) then
            misuse("filter " .. col .. "." .. op .. ": numbers must be finite")
        end
        return v
    elseif tv == "table" and getmetatable(v) == raw_mt then
        return v.text
    end
    misuse("filter " .. col .. "." .. op .. ": expected a string, number or boolean, got " .. tv)
end

-- Operators in the order they are emitted (fixed, so SQL text is stable).
local OPS = { "eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "in", "is", "contains",
              "contained", "not" }
local NOPS = #OPS
local KNOWN_OP = {}
for i = 1, NOPS do KNOWN_OP[OPS[i]] = true end
local CMP = { eq = " = ", neq = " <> ", gt = " > ", gte = " >= ", lt = " < ", lte = " <= ",
              like = " LIKE ", ilike = " ILIKE " }
local IS = { null = " IS NULL", not_null = " IS NOT NULL", ["true"] = " IS TRUE",
             ["false"] = " IS FALSE" }

local compile_ops

-- Returns the condition for one operator on quoted column qc.
local function compile_op(op, v, qc, col, params)
    local cmp = CMP[op]
    if cmp then
        if v == null then
            if op == "eq" then
                return qc .. " IS NULL"
            elseif op == "neq" then
                return qc .. " IS NOT NULL"
            end
            misuse("filter " .. col .. "." .. op .. ": json.null only works with eq, neq, is")
        end
        if (op == "like" or op == "ilike") and type(v) ~= "string" then
            misuse("filter " .. col .. "." .. op .. ": expected a string pattern")
        end
        return qc .. cmp .. add_param(params, scalar_param(v, col, op))
    elseif op == "in" then
        return qc .. " = ANY(" .. add_param(params, pg_array(v, "filter " .. col .. ".in")) .. ")"
    elseif op == "is" then
        local key = v
        if v == null then
            key = "null"
        elseif v == true or v == false then
            key = tostring(v)
        end
        local clause = IS[key]
        if not clause then
            misuse("filter " .. col .. ".is: expected \"null\", \"not_null\", \"true\" or \"false\"")
        end
        return qc .. clause
    elseif op == "contains" or op == "contained" then
        local p
        local tv = type(v)
        if tv == "string" then
            p = v
        elseif tv == "table" then
            local mt = getmetatable(v)
            if mt == raw_mt then
                p = v.text
            elseif is_array(v) then
                p = pg_array(v, "filter " .. col .. "." .. op)
            elseif mt == nil then
                p = json_encode(v)
            end
        end
        if p == nil then
            misuse("filter " .. col .. "." .. op .. ": expected a string, an array or an object")
        end
        return qc .. (op == "contains" and " @> " or " <@ ") .. add_param(params, p)
    else -- not
        if type(v) ~= "table" or getmetatable(v) ~= nil or next(v) == nil then
            misuse("filter " .. col .. ".not: expected a table of operators, e.g. {eq = 1}")
        end
        return "NOT (" .. compile_ops(v, qc, col, params) .. ")"
    end
end

-- Returns the conditions of an operator table ANDed.
compile_ops = function(ops, qc, col, params)
    local conds, nconds = {}, 0
    for i = 1, NOPS do
        local op = OPS[i]
        local v = ops[op]
        if v ~= nil then
            nconds = nconds + 1
            conds[nconds] = compile_op(op, v, qc, col, params)
        end
    end
    local total = 0
    for k in pairs(ops) do
        total = total + 1
        if not KNOWN_OP[k] then
            misuse("filter " .. col .. ": unknown operator '" .. tostring(k) .. "'")
        end
    end
    if nconds ~= total or nconds == 0 then
        misuse("filter " .. col .. ": no operator given")
    end
    return concat(conds, " AND ")
end

local compile_filters

-- Returns "(a OR b ...)" / "(a AND b ...)" for a list of filter tables.
local function compile_group(list, joiner, what, params)
    if type(list) ~= "table" or list[1] == nil then
        misuse("filter " .. what .. ": expected a non-empty list of filter tables")
    end
    local parts = {}
    for i = 1, #list do
        local conds = compile_filters(list[i], params, what)
        if conds == nil then
            misuse("filter " .. what .. ": empty filter table at " .. i)
        end
        parts[i] = conds
    end
    return "(" .. concat(parts, joiner) .. ")"
end

-- Returns the conditions of a filter table ANDed, or nil when it has none.
compile_filters = function(filters, params, what)
    if filters == nil then
        return nil
    end
    if type(filters) ~= "table" or getmetatable(filters) ~= nil then
        misuse((what and ("filter " .. what) or "filters") .. ": expected a table")
    end
    local keys, nkeys = {}, 0
    for k in pairs(filters) do
        if type(k) ~= "string" then
            misuse("filters: keys must be column names (strings), got " .. type(k))
        end
        nkeys = nkeys + 1
        keys[nkeys] = k
    end
    if nkeys == 0 then
        return nil
    end
    if nkeys > 1 then
        sort(keys)
    end
    local conds = {}
    for i = 1, nkeys do
        local col = keys[i]
        local v = filters[col]
        if col == "or" then
            conds[i] = compile_group(v, " OR ", "or", params)
        elseif col == "and" then
            conds[i] = compile_group(v, " AND ", "and", params)
        else
            local qc = ident(col, "filter column")
            if v == null then
                conds[i] = qc .. " IS NULL"
            elseif type(v) == "table" and getmetatable(v) ~= raw_mt then
                if getmetatable(v) ~= nil or next(v) == nil then
                    misuse("filter " .. col .. ": expected a value or a table of operators")
                end
                conds[i] = compile_ops(v, qc, col, params)
            else
                conds[i] = qc .. " = " .. add_param(params, scalar_param(v, col, "eq"))
            end
        end
    end
    return concat(conds, " AND ")
end

-- Returns " WHERE ..." or "" for filters.
local function where(filters, params)
    local conds = compile_filters(filters, params)
    if conds == nil then
        return ""
    end
    return " WHERE " .. conds
end

-- Returns " WHERE ..." for a write; without filters the write is refused unless all = true.
local function write_where(filters, params, all, kind)
    local w = where(filters, params)
    if w == "" and all ~= true then
        misuse(kind .. " without filters would touch every row; pass all = true to mean it")
    end
    return w
end

---------------------------------------------------------------------------------------------
-- wrappers

local AGG = "SELECT coalesce(json_agg(_t), '[]')::text FROM "
local READ_SINGLE = "SELECT CASE count(*) WHEN 1 THEN (json_agg(_t) -> 0)::text WHEN 0 THEN ''" ..
                    " ELSE '*' END FROM "
-- The ELSE branch raises SQLSTATE TD001 (tide_meta.write_refused, a migration; plain SQL
-- cannot raise), which aborts the statement, so the write rolls back; count(*) as its argument
-- keeps it from being evaluated at plan time.
local WRITE_SINGLE = "SELECT CASE count(*) WHEN 1 THEN (json_agg(_t) -> 0)::text WHEN 0 THEN ''" ..
                     " ELSE tide_meta.write_refused('TD001', count(*)) END FROM "

-- The CSV cell over the rows of the CTE _t (see csv above). Header names are quoted when they
-- hold a comma, quote or line break. Outside quotes record text has no backslash, inside it
-- doubles every one: halving all pairs is exact.
local CSV = [[(SELECT coalesce(string_agg(CASE WHEN k ~ '[",\r\n]' OR k = '' ]] ..
            [[THEN '"' || replace(k, '"', '""') || '"' ELSE k END, ','), '') ]] ..
            [[FROM json_object_keys((SELECT row_to_json(_t) FROM _t LIMIT 1)) k) || E'\n' || ]] ..
            [[coalesce(string_agg(replace(substr(_t::text, 2, length(_t::text) - 2), '\\', ]] ..
            [['\'), E'\n'), '')]]

-- The statement around a write (its rows in _t; ctes: more CTEs before _t, or nil). The cell:
-- the rows as JSON ('[]' when columns == false: nothing is returned), one row with single,
-- prefixed "<n> - " with counted (n = rows written). With max_affected, more rows than that
-- abort the statement, so the write rolls back: SQLSTATE TD002 with the number of rows as
-- DETAIL (tide_meta.write_refused; tide.db turns it into TIDE_MAX_AFFECTED).
local function wrap_write(stmt, opts, params, ctes)
    local head = "WITH " .. (ctes or "") .. "_t AS (" .. stmt .. ") "
    if opts.single then
        if opts.counted or opts.max_affected ~= nil or opts.columns == false then
            misuse("single does not go with counted, max_affected or columns = false")
        end
        return head .. WRITE_SINGLE .. "_t"
    end
    local cell = opts.columns == false and "'[]'" or "coalesce(json_agg(_t), '[]')::text"
    if opts.inserted then
        if not opts.counted then
            misuse("inserted needs counted = true")
        end
        if opts.columns ~= false then
            -- the rows without their last key, tide_inserted (row_to_json has no blanks)
            cell = "coalesce('[' || string_agg(regexp_replace(row_to_json(_t)::text, " ..
                   "',\"tide_inserted\":(true|false)}$', '}'), ', ') || ']', '[]')"
        end
    end
    if opts.counted then
        -- "<n> <inserted or -> <rows>" (tide.db reads it as a counted select's cell)
        cell = "count(*)::text || " .. (opts.inserted and
               "' ' || count(*) FILTER (WHERE _t.tide_inserted)::text || ' '" or "' - '") ..
               " || " .. cell
    end
    local max = opts.max_affected
    if max ~= nil then
        cell = "CASE WHEN count(*) > " .. add_param(params, check_count(max, "max_affected")) ..
               " THEN tide_meta.write_refused('TD002', count(*))" ..
               " ELSE " .. cell .. " END"
    end
    return head .. "SELECT " .. cell .. " FROM _t"
end

-- RETURNING the columns; columns == false: RETURNING 1 (rows are counted, none is read back,
-- so the caller needs no SELECT right or policy on the table).
-- With inserted (upserts), a last column tide_inserted tells the rows this statement inserted
-- from the ones ON CONFLICT updated: a row version this statement created has xmax 0, one an
-- ON CONFLICT DO UPDATE wrote carries the locking transaction's id.
local INSERTED = "(xmax = 0) AS tide_inserted"
local function returning(columns, inserted)
    if columns == false then
        return inserted and (" RETURNING " .. INSERTED) or " RETURNING 1"
    end
    local list = " RETURNING " .. column_list(columns, "returning column")
    return inserted and (list .. ", " .. INSERTED) or list
end

local function check_table(tbl)
    return ident(tbl, "table name")
end

---------------------------------------------------------------------------------------------
-- statements

-- select(tbl, {columns, filters, order, limit, offset, single, counted, total, csv}) -> sql,
-- params
function _M.select(tbl, opts)
    opts = opts or {}
    local qt = check_table(tbl)
    local params = new_params()
    local cols, embedded = column_list(opts.columns, "column", true)
    local w = where(opts.filters, params)
    local ord = order_by(opts.order)
    local limit, offset = opts.limit, opts.offset
    if limit == nil and opts.single then
        limit = 2
    end
    local lim = ""
    if limit ~= nil then
        lim = " LIMIT " .. add_param(params, check_count(limit, "limit"))
    end
    if offset ~= nil then
        lim = lim .. " OFFSET " .. add_param(params, check_count(offset, "offset"))
    end
    local inner = "SELECT " .. cols .. " FROM " .. qt .. (embedded and " _p" or "") .. w ..
                  ord .. lim
    if opts.csv then
        if opts.single then
            misuse("select: csv and single do not go together")
        elseif opts.total and not opts.counted then
            misuse("select: total needs counted = true")
        end
        local pre = ""
        if opts.counted then
            pre = "count(*)::text || ' ' || " .. (opts.total and ("(SELECT count(*) FROM " ..
                  qt .. w .. ")::text") or "'-'") .. " || ' ' || "
        end
        -- referenced twice, the CTE is materialized: one run, one snapshot
        return "WITH _t AS (" .. inner .. ") SELECT " .. pre .. CSV .. " FROM _t", params
    end
    if opts.counted then
        if opts.single then
            misuse("select: counted and single do not go together")
        end
        local total = opts.total and ("(SELECT count(*) FROM " .. qt .. w .. ")::text") or "'-'"
        return "SELECT count(*)::text || ' ' || " .. total .. " || ' ' || " ..
               "coalesce(json_agg(_t), '[]')::text FROM (" .. inner .. ") _t", params
    elseif opts.total then
        misuse("select: total needs counted = true")
    end
    return (opts.single and READ_SINGLE or AGG) .. "(" .. inner .. ") _t", params
end

-- count(tbl, {filters}) -> sql, params (plain: one row, column "count")
function _M.count(tbl, opts)
    opts = opts or {}
    local qt = check_table(tbl)
    local params = new_params()
    return "SELECT count(*) FROM " .. qt .. where(opts.filters, params), params
end

-- Sorted union of the keys of rows (validated identifiers) and the rows as a JSON array.
local function row_columns(rows, what)
    if type(rows) ~= "table" or rows[1] == nil then
        misuse(what .. ": expected a non-empty list of rows")
    end
    local seen, cols, ncols = {}, {}, 0
    for i = 1, #rows do
        local row = rows[i]
        if type(row) ~= "table" or getmetatable(row) ~= nil or (row[1] ~= nil) then
            misuse(what .. ": row " .. i .. " must be a table of column = value")
        end
        for k in pairs(row) do
            if not seen[k] then
                if type(k) ~= "string" then
                    misuse(what .. ": row " .. i .. " has a non-string key")
                end
                seen[k] = true
                ncols = ncols + 1
                cols[ncols] = k
            end
        end
    end
    sort(cols)
    for i = 1, ncols do
        cols[i] = ident(cols[i], "column")
    end
    return cols, ncols
end

local function insert_stmt(qt, rows, params, what)
    local cols, ncols = row_columns(rows, what)
    local p = add_param(params, json_encode(rows))
    if ncols == 0 then
        -- Every row is {}: all columns take their defaults.
        return "INSERT INTO " .. qt .. " SELECT FROM json_populate_recordset(NULL::" .. qt ..
               ", " .. p .. ")", cols
    end
    local list = concat(cols, ",")
    return "INSERT INTO " .. qt .. " (" .. list .. ") SELECT " .. list ..
           " FROM json_populate_recordset(NULL::" .. qt .. ", " .. p .. ")", cols
end

-- Rows grouped by their set of keys, in the order each set first appears: a list of lists.
local function key_groups(rows, what)
    row_columns(rows, what)                     -- checks every row
    local groups, by_keys = {}, {}
    for i = 1, #rows do
        local keys = sorted_keys(rows[i], what .. ": rows must have string keys")
        local sig = concat(keys, "\0")
        local g = by_keys[sig]
        if g == nil then
            g = {}
            by_keys[sig] = g
            groups[#groups + 1] = g
        end
        g[#g + 1] = rows[i]
    end
    return groups
end

-- The INSERT of a write and the CTEs it needs (or nil). action(cols) -> the ON CONFLICT
-- clause for the quoted written columns ("" for a plain insert). Rows of one shape are one
-- INSERT. With opts.defaults and rows of several shapes (key sets), each shape is its own
-- INSERT in a CTE (_g1, _g2, ...; data-modifying CTEs must be at the top level) naming only
-- its own columns, so a key a row lacks takes the column default; _t is their UNION ALL, so
-- rows come back grouped by shape. Still one statement: all or nothing.
local function insert_rows(qt, rows, params, what, opts, action)
    if opts.defaults then
        local groups = key_groups(rows, what)
        if groups[2] ~= nil then
            local ctes, parts = {}, {}
            for i = 1, #groups do
                local stmt, cols = insert_stmt(qt, groups[i], params, what)
                ctes[i] = "_g" .. i .. " AS (" .. stmt .. action(cols) ..
                          returning(opts.columns, opts.inserted) .. ")"
                parts[i] = "SELECT * FROM _g" .. i
            end
            return concat(parts, " UNION ALL "), concat(ctes, ", ") .. ", "
        end
    end
    local stmt, cols = insert_stmt(qt, rows, params, what)
    return stmt .. action(cols) .. returning(opts.columns, opts.inserted), nil
end

local function no_action()
    return ""
end

-- insert(tbl, rows, {columns, single, counted, max_affected, defaults}) -> sql, params.
-- rows: a non-empty list of row tables. The column list is the sorted union of the rows'
-- keys: a row without one of them inserts NULL there (json_populate_recordset fills missing
-- keys with NULL), unless defaults = true: then it takes the column default (see
-- insert_rows). counted, max_affected and columns = false: see wrap_write and returning.
function _M.insert(tbl, rows, opts)
    opts = opts or {}
    local qt = check_table(tbl)
    local params = new_params()
    local stmt, ctes = insert_rows(qt, rows, params, "insert", opts, no_action)
    return wrap_write(stmt, opts, params, ctes), params
end

-- Returns the set of quoted conflict columns of "a,b" / {"a", "b"} and their list text.
local function conflict_columns(on_conflict)
    local names
    if type(on_conflict) == "string" then
        names = {}
        local pos = 1
        while true do
            local comma = find(on_conflict, ",", pos, true)
            local item = sub(on_conflict, pos, (comma or 0) - 1)
            names[#names + 1] = (gsub(gsub(item, "^%s+", ""), "%s+$", ""))
            if not comma then
                break
            end
            pos = comma + 1
        end
    elseif type(on_conflict) == "table" and on_conflict[1] ~= nil then
        names = on_conflict
    else
        misuse("upsert needs on_conflict = \"col1,col2\" (or ignore = true)")
    end
    local set, quoted = {}, {}
    for i = 1, #names do
        local q = ident(names[i], "on_conflict column")
        set[q] = true
        quoted[i] = q
    end
    return set, concat(quoted, ", ")
end

-- The ON CONFLICT clause of an upsert, as a function of the quoted written columns.
local function upsert_action(opts)
    if opts.on_conflict == nil and opts.ignore == true then
        return function() return " ON CONFLICT DO NOTHING" end
    end
    local in_target, target = conflict_columns(opts.on_conflict)
    return function(cols)
        local sets, nsets = {}, 0
        if opts.ignore ~= true then
            for i = 1, #cols do
                local q = cols[i]
                if not in_target[q] then
                    nsets = nsets + 1
                    sets[nsets] = q .. " = EXCLUDED." .. q
                end
            end
        end
        if nsets == 0 then
            return " ON CONFLICT (" .. target .. ") DO NOTHING"
        end
        return " ON CONFLICT (" .. target .. ") DO UPDATE SET " .. concat(sets, ", ")
    end
end

-- upsert(tbl, rows, {on_conflict, ignore, columns, single, counted, max_affected, defaults})
-- -> sql, params. ON CONFLICT (on_conflict) DO UPDATE SET every written column that is not a
-- conflict column to EXCLUDED; DO NOTHING when ignore = true or when every written column is
-- a conflict column (conflicting rows are then not returned). With defaults, each shape of
-- row updates only the columns it names.
function _M.upsert(tbl, rows, opts)
    opts = opts or {}
    local qt = check_table(tbl)
    local params = new_params()
    local stmt, ctes = insert_rows(qt, rows, params, "upsert", opts, upsert_action(opts))
    return wrap_write(stmt, opts, params, ctes), params
end

-- update(tbl, patch, {filters, all, columns, single, counted, max_affected, defaults}) ->
-- sql, params. patch: column = value (json.null sets NULL). Postgres converts the JSON values
-- to the column types. defaults: a list of columns set to their DEFAULT (not in patch); patch
-- may be empty when it is given.
function _M.update(tbl, patch, opts)
    opts = opts or {}
    local qt = check_table(tbl)
    if type(patch) ~= "table" or getmetatable(patch) ~= nil or patch[1] ~= nil then
        misuse("update: patch must be a table of column = value")
    end
    local cols, ncols = sorted_keys(patch, "update: patch keys must be column names")
    local dflt = opts.defaults
    if dflt ~= nil and (type(dflt) ~= "table" or getmetatable(dflt) ~= nil) then
        misuse("update: defaults must be a list of column names")
    end
    if ncols == 0 and (dflt == nil or dflt[1] == nil) then
        misuse("update: patch is empty")
    end
    for i = 1, ncols do
        cols[i] = ident(cols[i], "column")
    end
    local params = new_params()
    local sets = {}
    if ncols > 0 then
        local p = add_param(params, json_encode(patch))
        local list = concat(cols, ",")
        local target = ncols == 1 and list or ("(" .. list .. ")")
        sets[1] = target .. " = (SELECT " .. list .. " FROM json_populate_record(NULL::" .. qt ..
                  ", " .. p .. "))"
    end
    if dflt ~= nil then
        local names = {}
        for i = 1, #dflt do
            if patch[dflt[i]] ~= nil then
                misuse("update: column " .. tostring(dflt[i]) .. " is both in patch and defaults")
            end
            names[i] = dflt[i]
        end
        sort(names)
        for i = 1, #names do
            sets[#sets + 1] = ident(names[i], "column") .. " = DEFAULT"
        end
    end
    local w = write_where(opts.filters, params, opts.all, "update")
    local stmt = "UPDATE " .. qt .. " SET " .. concat(sets, ", ") .. w .. returning(opts.columns)
    return wrap_write(stmt, opts, params), params
end

-- delete(tbl, {filters, all, columns, single, counted, max_affected}) -> sql, params
function _M.delete(tbl, opts)
    opts = opts or {}
    local qt = check_table(tbl)
    local params = new_params()
    local w = write_where(opts.filters, params, opts.all, "delete")
    return wrap_write("DELETE FROM " .. qt .. w .. returning(opts.columns), opts, params), params
end

-- Returns '[v1,v2,...]' for a vector; raises unless every element is a finite number.
local function vector_text(vec)
    if type(vec) ~= "table" then
        misuse("vector_search: vector must be an array of numbers, got " .. type(vec))
    end
    local len = #vec
    if len == 0 then
        misuse("vector_search: vector must not be empty")
    end
    local out = {}
    for i = 1, len do
        local x = vec[i]
        if type(x) ~= "number" or not is_finite(x) then
            misuse("vector_search: element " .. i .. " is not a finite number")
        end
        out[i] = format("%.9g", x)
    end
    local count = 0
    for _ in pairs(vec) do
        count = count + 1
    end
    if count ~= len and getmetatable(vec) ~= array_mt then
        misuse("vector_search: vector must be an array (keys 1..n)")
    end
    return "[" .. concat(out, ",") .. "]"
end
_M.vector_text = vector_text

local METRICS = {
    -- operator, output column, expression from the distance, threshold comparison
    cosine = { op = " <=> ", name = "similarity", pre = "1 - (", post = ")", cmp = " >= " },
    l2 = { op = " <-> ", name = "distance", pre = "(", post = ")", cmp = " <= " },
    ip = { op = " <#> ", name = "similarity", pre = "(", post = ") * -1", cmp = " >= " },
}

-- vector_search(tbl, column, vec, {limit = 10, threshold, metric = "cosine", filters,
-- columns}) -> sql, params. Rows come nearest first with a `similarity` column (cosine:
-- 1 - distance; ip: the inner product) or a `distance` column (l2). threshold keeps rows with
-- similarity >= threshold (distance <= threshold for l2).
function _M.vector_search(tbl, column, vec, opts)
    opts = opts or {}
    local qt = check_table(tbl)
    local qc = ident(column, "vector column")
    local m = METRICS[opts.metric or "cosine"]
    if m == nil then
        misuse("vector_search: metric must be \"cosine\", \"l2\" or \"ip\"")
    end
    local params = new_params()
    local dist = qc .. m.op .. add_param(params, vector_text(vec)) .. "::vector"
    local cols = column_list(opts.columns, "column")
    local w = where(opts.filters, params)
    local limit = check_count(opts.limit == nil and 10 or opts.limit, "limit")
    local inner = "SELECT " .. cols .. ", " .. m.pre .. dist .. m.post .. " AS " .. m.name ..
                  " FROM " .. qt .. w .. " ORDER BY " .. dist .. " LIMIT " ..
                  add_param(params, limit)
    local outer = ""
    if opts.threshold ~= nil then
        local th = opts.threshold
        if type(th) ~= "number" or not is_finite(th) then
            misuse("vector_search: threshold must be a finite number")
        end
        outer = " WHERE " .. m.name .. m.cmp .. add_param(params, th)
    end
    return AGG .. "(" .. inner .. ") _t" .. outer, params
end

-- Converts an RPC argument / raw SQL parameter: scalars as is, json.null kept (SQL NULL),
-- json.raw -> its text, other tables -> JSON text (json/jsonb arguments; a vector argument
-- takes JSON's [1,2,3] too). Text[] arguments need a Postgres literal: builder.pg_array(t).
local function param_value(v, what)
    local tv = type(v)
    if tv == "string" or tv == "boolean" or v == null then
        return v
    elseif tv == "number" then
        if not is_finite(v) then
            misuse(what .. ": numbers must be finite")
        end
        return v
    elseif tv == "table" then
        if getmetatable(v) == raw_mt then
            return v.text
        end
        return json_encode(v)
    end
    misuse(what .. ": cannot send a " .. tv .. " as a parameter")
end
_M.param_value = param_value

-- rpc(fn, args) -> sql, params. args: {name = value} (named: "name" => $n, sorted) or a list
-- (positional). The cell is PostgREST-shaped: a set-returning function gives a JSON array
-- (possibly empty), any other function its single value (scalar, object, or null for void).
-- Whether fn returns a set is looked up in pg_proc by name over the search path in the same
-- statement (no extra round trip, nothing cached that a migration could make stale); with
-- overloads, any set-returning one makes the answer an array.
function _M.rpc(fn, args)
    local qf = ident(fn, "function name")
    local params = new_params()
    local name_param = add_param(params, fn)
    local call
    if args == nil or (type(args) == "table" and next(args) == nil) then
        call = qf .. "()"
    elseif type(args) ~= "table" or getmetatable(args) ~= nil and getmetatable(args) ~= array_mt
    then
        misuse("rpc: args must be a table")
    elseif args[1] ~= nil then
        if not is_array(args) then
            misuse("rpc: args must be all named or all positional")
        end
        local parts = {}
        for i = 1, #args do
            parts[i] = add_param(params, param_value(args[i], "rpc argument " .. i))
        end
        call = qf .. "(" .. concat(parts, ", ") .. ")"
    else
        local names, nnames = sorted_keys(args, "rpc: args must be all named or all positional")
        local parts = {}
        for i = 1, nnames do
            local name = names[i]
            parts[i] = ident(name, "argument name") .. " => " ..
                       add_param(params, param_value(args[name], "rpc argument " .. name))
        end
        call = qf .. "(" .. concat(parts, ", ") .. ")"
    end
    return "SELECT CASE WHEN (SELECT bool_or(p.proretset) FROM pg_catalog.pg_proc p" ..
           " JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE p.proname = " ..
           name_param .. " AND n.nspname = ANY (pg_catalog.current_schemas(true)))" ..
           " THEN coalesce(json_agg(_r), '[]') ELSE json_agg(_r) -> 0 END::text FROM " ..
           call .. " _r", params
end

_M.is_array = is_array

return _M
