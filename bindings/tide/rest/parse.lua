-- tide/rest/parse.lua - the /rest/v1 query-string grammar (PostgREST 12's, read side):
-- text in, a plain request description out. Pure: no I/O, no schema knowledge (names are
-- checked against the schema cache later, by tide.rest.plan).
--
--   parse.request(query_string) -> req | nil, err
--     req = { select = items | nil (nil: *), filters = nodes (ANDed), order = terms | nil,
--             limit = integer | nil, offset = integer | nil }
--     items: { star = true } | { name =, alias =, cast = }
--            | { embed = true, name =, alias =, hint =, select = items (no embeds; {} for
--                rel()) }    rel(...), alias:rel(...), rel!hint(...), rel!left(...)
--     nodes: leaf  { col =, op = "eq"|..|"in"|"is", value = string | list (in) | keyword
--                    (is: "null", "not_null", "true", "false"), negate = bool }
--            group { logic = "and"|"or", negate = bool, items = nodes }
--     terms: { name =, desc = bool, nulls = "first"|"last"|nil }
--   parse.select(text), parse.filter(col, text), parse.logic(key, text), parse.order(text)
--     the pieces, same results and errors.
--
-- Grammar (PostgREST's QueryParams.hs, re-implemented): field names are "quoted" (backslash
-- escapes) or runs of letters, digits, _, $ and spaces joined by single dashes, trimmed;
-- values of in.(...) and of filters inside or=/and= are "quoted" (then , and ) may appear
-- in them; \ escapes) or runs without , and ); inside or=/and= a {...} array literal is one
-- value too. Keys repeat: every filter key adds a condition (id=gte.1&id=lte.9); select and
-- order take their first occurrence, limit and offset their last; a key without = is ignored.
-- A limit or offset that is not an integer is ignored (as PostgREST does).
--
-- Bounds (a request exceeding one is a 400 PGRST100 naming it): or/and nesting at most
-- MAX_DEPTH levels, at most MAX_FILTERS conditions in all (top-level filters plus every leaf
-- of every or/and tree), MAX_SELECT select items (embedded resources' items included),
-- MAX_EMBEDS embedded resources, one level deep (an embed inside an embed is refused),
-- MAX_ORDER order terms. The query string itself is bounded by the HTTP head limit (16 KiB by
-- default). Recursion is only over or/and nesting and the one embed level, so MAX_DEPTH bounds
-- the parser's stack and the SQL's nesting alike.
--
-- Errors are tide error tables shaped like PostgREST's: code PGRST100, status 400, message
-- "\"failed to parse <what> (<text>)\" (line 1, column N)", details saying what was expected.
-- Features this version leaves out (nested or spread embedding, !inner, JSON paths,
-- aggregates, other operators) are refused the same way, with details naming the feature.
-- A key that names a resource (rel.col=eq.1, rel.order=..., rel.limit=...) is refused: 400
-- PGRST100 when the select embeds rel (filters, order and limits on embedded resources are
-- not supported), else PostgREST's 400 PGRST108 (rel is not embedded).

local http = require "tide.http"
local router = require "tide.router"

local byte, find, format, gsub, lower, match, sub = string.byte, string.find, string.format,
    string.gsub, string.lower, string.match, string.sub
local concat = table.concat
local tonumber = tonumber

local _M = {}

_M.MAX_DEPTH = 16
_M.MAX_FILTERS = 100
_M.MAX_SELECT = 100
_M.MAX_ORDER = 32
_M.MAX_EMBEDS = 8

local B_QUOTE, B_BSLASH, B_COMMA, B_LPAREN, B_RPAREN, B_DASH, B_GT, B_DOT, B_COLON, B_LBRACE,
    B_BANG = 34, 92, 44, 40, 41, 45, 62, 46, 58, 123, 33

-- The 400 PGRST100 error for text failing to parse as what at byte pos (1-based).
-- 400 PGRST100 for a query string with a bad percent-escape (reads and functions alike).
local function malformed_query()
    return http.error(400, "PGRST100", "malformed percent-encoding in the query")
end
_M.malformed_query = malformed_query

local function fail(what, text, pos, details)
    return http.error(400, "PGRST100", format("\"failed to parse %s (%s)\" (line 1, column %d)",
                                             what, text, pos), details)
end
_M.fail = fail

local function bound(what, details)
    return http.error(400, "PGRST100", what, details)
end

-- A parse state: s the text, i the next byte, what/text for messages.
local function new_state(what, s)
    return { s = s, i = 1, what = what }
end

local function err(st, details)
    return fail(st.what, st.s, st.i, details)
end

local function skip_ws(st)
    local _, e = find(st.s, "^[ \t]*", st.i)
    st.i = e + 1
end

local function at_end(st)
    return st.i > #st.s
end

-- "quoted" value at st.i (which is on the opening quote): the unescaped text, or nil.
local function quoted(st)
    local s, i = st.s, st.i + 1
    local out, n = {}, 0
    while true do
        local b = byte(s, i)
        if b == nil then
            st.i = i
            return nil
        elseif b == B_QUOTE then
            st.i = i + 1
            return concat(out)
        elseif b == B_BSLASH then
            if i + 1 > #s then
                st.i = i + 1
                return nil
            end
            n = n + 1
            out[n] = sub(s, i + 1, i + 1)
            i = i + 2
        else
            local e = find(s, '[\\"]', i) or (#s + 1)
            n = n + 1
            out[n] = sub(s, i, e - 1)
            i = e
        end
    end
end

-- Identifier characters: letters, digits, _ $ space, and any byte >= 0x80 (UTF-8 letters).
local IDENT = "^[%w_%$ \128-\255]+"

-- A field name at st.i: "quoted", or identifier runs joined by single dashes (not "->").
local function field_name(st)
    skip_ws(st)
    local s = st.s
    if byte(s, st.i) == B_QUOTE then
        local v = quoted(st)
        if v == nil then
            return nil, err(st, "unexpected end of input expecting closing quote (\")")
        end
        return v
    end
    local parts = {}
    while true do
        local _, e = find(s, IDENT, st.i)
        if not e then
            return nil, err(st, "unexpected " .. (at_end(st) and "end of input" or
                            ("\"" .. sub(s, st.i, st.i) .. "\"")) ..
                            " expecting field name (* or [a..z0..9_$])")
        end
        parts[#parts + 1] = sub(s, st.i, e)
        st.i = e + 1
        if byte(s, st.i) == B_DASH and byte(s, st.i + 1) ~= B_GT then
            st.i = st.i + 1
        else
            break
        end
    end
    local name = gsub(gsub(concat(parts, "-"), "^%s+", ""), "%s+$", "")
    if name == "" then
        return nil, err(st, "expecting field name (* or [a..z0..9_$])")
    end
    return name
end

-- A field: a name, and no JSON path (not supported yet).
local function field(st)
    local name, e = field_name(st)
    if not name then
        return nil, e
    end
    if byte(st.s, st.i) == B_DASH and byte(st.s, st.i + 1) == B_GT then
        return nil, err(st, "JSON paths (->, ->>) are not supported by tide yet")
    end
    skip_ws(st)
    return name
end

---------------------------------------------------------------------------------------------
-- select

-- One select item at st.i (depth 0: the request's list, 1: inside an embed's parentheses).
local select_list

local function select_item(st, depth, counter)
    local s = st.s
    if byte(s, st.i) == 42 then                              -- "*"
        st.i = st.i + 1
        return { star = true }
    elseif sub(s, st.i, st.i + 2) == "..." then
        return nil, err(st, "spread embedding (...) is not supported by tide yet")
    end
    local name, e = field(st)
    if not name then return nil, e end
    local alias
    if byte(s, st.i) == B_COLON and byte(s, st.i + 1) ~= B_COLON then
        st.i = st.i + 1
        alias = name
        name, e = field(st)
        if not name then return nil, e end
    end
    local b = byte(s, st.i)
    if b == B_LPAREN or b == B_BANG then                     -- an embedded resource
        if name == "count" then
            return nil, err(st, "aggregates are not supported by tide yet")
        end
        if depth > 0 then
            return nil, err(st, "nested embedding (a resource embedded in an embedded " ..
                            "resource) is not supported by tide: one level at most")
        end
        counter.embeds = counter.embeds + 1
        if counter.embeds > _M.MAX_EMBEDS then
            return nil, bound("too many embedded resources", "at most " .. _M.MAX_EMBEDS ..
                              " in one request")
        end
        local hint
        for _ = 1, 2 do                                      -- !hint, !left, !inner
            if byte(s, st.i) ~= B_BANG then break end
            st.i = st.i + 1
            local word
            word, e = field_name(st)
            if not word then return nil, e end
            if word == "inner" then
                return nil, err(st, "!inner (filtering the top-level rows by an embedded " ..
                                "resource) is not supported by tide yet")
            elseif word ~= "left" then                       -- !left: the default
                hint = hint or word
            end
        end
        if byte(s, st.i) ~= B_LPAREN then
            return nil, err(st, "unexpected " .. (at_end(st) and "end of input" or
                            ("\"" .. sub(s, st.i, st.i) .. "\"")) .. " expecting \"(\"")
        end
        st.i = st.i + 1
        local inner
        inner, e = select_list(st, depth + 1, counter)
        if not inner then return nil, e end
        st.i = st.i + 1                                      -- the ")" select_list stopped at
        return { embed = true, name = name, alias = alias, hint = hint, select = inner }
    end
    local cast
    if sub(s, st.i, st.i + 1) == "::" then
        st.i = st.i + 2
        local _, ce = find(s, "^[%w_%$ ]+", st.i)
        if not ce then
            return nil, err(st, "unexpected " .. (at_end(st) and "end of input" or
                            ("\"" .. sub(s, st.i, st.i) .. "\"")) ..
                            " expecting letter or digit")
        end
        cast = lower((gsub(gsub(sub(s, st.i, ce), "^%s+", ""), "%s+$", "")))
        st.i = ce + 1
    end
    if byte(s, st.i) == B_DOT then
        return nil, err(st, "aggregates are not supported by tide yet")
    end
    return { name = name, alias = alias, cast = cast }
end

-- Items at st.i up to the end of the text (depth 0) or up to a ")" (depth 1, left at st.i for
-- the caller); counter = {items =, embeds =} counts across the request.
function select_list(st, depth, counter)
    local items = {}
    local s = st.s
    skip_ws(st)
    if depth > 0 and byte(s, st.i) == B_RPAREN then          -- rel(): an empty embed
        return items
    end
    while true do
        skip_ws(st)
        counter.items = counter.items + 1
        if counter.items > _M.MAX_SELECT then
            return nil, bound("too many select items", "at most " .. _M.MAX_SELECT ..
                              ", embedded resources' items included")
        end
        local item, e = select_item(st, depth, counter)
        if not item then return nil, e end
        items[#items + 1] = item
        skip_ws(st)
        local b = byte(s, st.i)
        if b == B_COMMA then
            st.i = st.i + 1
        elseif (depth == 0 and b == nil) or (depth > 0 and b == B_RPAREN) then
            return items
        elseif depth > 0 then
            return nil, err(st, "unexpected " .. (b == nil and "end of input" or
                            ("\"" .. sub(s, st.i, st.i) .. "\"")) .. " expecting \",\" or \")\"")
        else
            return nil, err(st, "unexpected \"" .. sub(s, st.i, st.i) ..
                            "\" expecting \",\" or end of input")
        end
    end
end

-- select=a,alias:b,c::text,*,rel(...) -> items, or nil, err.
function _M.select(text)
    if find(text, "^[ \t]*$") then
        return { { star = true } }
    end
    return select_list(new_state("select parameter", text), 0, { items = 0, embeds = 0 })
end

---------------------------------------------------------------------------------------------
-- filters

-- PostgREST's 400 PGRST108 for a key (rel.col=..., rel.order=...) naming a resource the
-- select does not embed.
local function not_embedded(name)
    return http.error(400, "PGRST108", "'" .. name .. "' is not an embedded resource in this " ..
                      "request", nil, "Verify that '" .. name .. "' is included in the " ..
                      "'select' query parameter.")
end

local CMP = { eq = true, neq = true, gt = true, gte = true, lt = true, lte = true,
              like = true, ilike = true, cs = true, cd = true }
local UNSUPPORTED = { ov = true, sl = true, sr = true, nxr = true,
                      nxl = true, adj = true, match = true, imatch = true, fts = true,
                      plfts = true, phfts = true, wfts = true, isdistinct = true }
local IS = { null = "null", not_null = "not_null", ["true"] = "true", ["false"] = "false",
             unknown = "null" }

-- in.(a,"b,c",d): the list at st.i (on "("), or nil, err.
local function list_value(st)
    skip_ws(st)
    local s = st.s
    if byte(s, st.i) ~= B_LPAREN then
        return nil, err(st, "unexpected " .. (at_end(st) and "end of input" or
                        ("\"" .. sub(s, st.i, st.i) .. "\"")) .. " expecting \"(\"")
    end
    st.i = st.i + 1
    local list = {}
    skip_ws(st)
    if byte(s, st.i) == B_RPAREN then               -- in.(): the empty list matches nothing
        st.i = st.i + 1
        skip_ws(st)
        return list
    end
    while true do
        local v
        if byte(s, st.i) == B_QUOTE then
            local save = st.i
            v = quoted(st)
            local nb = byte(s, st.i)
            if v == nil or (nb ~= B_COMMA and nb ~= B_RPAREN) then
                st.i = save                         -- not a whole quoted element: plain text
                v = nil
            end
        end
        if v == nil then
            local e = find(s, "[,)]", st.i) or (#s + 1)
            v = sub(s, st.i, e - 1)
            st.i = e
        end
        list[#list + 1] = v
        local b = byte(s, st.i)
        if b == B_COMMA then
            st.i = st.i + 1
        elseif b == B_RPAREN then
            st.i = st.i + 1
            skip_ws(st)
            return list
        else
            return nil, err(st, "unexpected end of input expecting \",\" or \")\"")
        end
    end
end

-- A value inside or=/and=: "quoted" (followed by , or )), a {...} array literal, or a run
-- without , and ).
local function logic_value(st)
    local s = st.s
    local b = byte(s, st.i)
    if b == B_QUOTE then
        local save = st.i
        local v = quoted(st)
        local nb = byte(s, st.i)
        if v ~= nil and (nb == nil or nb == B_COMMA or nb == B_RPAREN) then
            return v
        end
        st.i = save
    elseif b == B_LBRACE then
        local _, e = find(s, "^{[^{}]*}", st.i)
        if e then
            local v = sub(s, st.i, e)
            st.i = e + 1
            return v
        end
    end
    local e = find(s, "[,)]", st.i) or (#s + 1)
    local v = sub(s, st.i, e - 1)
    st.i = e
    return v
end

-- [not.]op.value at st.i -> leaf fields (op, value, negate), or nil, err. in_logic: the value
-- ends at , or ) (inside or=/and=); else it is the rest of the text.
local function op_expr(st, in_logic)
    local s = st.s
    local negate = false
    if sub(s, st.i, st.i + 3) == "not." then
        negate = true
        st.i = st.i + 4
    end
    local _, e = find(s, "^%a+", st.i)
    local op = e and sub(s, st.i, e) or ""
    if op == "" or not (CMP[op] or op == "in" or op == "is" or UNSUPPORTED[op]) then
        return nil, err(st, "unexpected " .. (at_end(st) and "end of input" or
                        ("\"" .. sub(s, st.i, st.i) .. "\"")) ..
                        " expecting operator (eq, neq, gt, gte, lt, lte, like, ilike, is, in, " ..
                        "cs, cd)")
    end
    if UNSUPPORTED[op] then
        return nil, err(st, "operator " .. op .. " is not supported by tide yet")
    end
    st.i = e + 1
    if byte(s, st.i) == B_LPAREN then
        return nil, err(st, "quantifiers (any/all) are not supported by tide yet")
    end
    if byte(s, st.i) ~= B_DOT then
        return nil, err(st, "unexpected " .. (at_end(st) and "end of input" or
                        ("\"" .. sub(s, st.i, st.i) .. "\"")) .. " expecting delimiter (.)")
    end
    st.i = st.i + 1
    local value
    if op == "in" then
        local list, lerr = list_value(st)
        if not list then return nil, lerr end
        value = list
    elseif op == "is" then
        local _, ie = find(s, "^[%a_]+", st.i)
        value = ie and IS[lower(sub(s, st.i, ie))]
        if not value then
            return nil, err(st, "expecting isVal: (null, not_null, true, false, unknown)")
        end
        st.i = ie + 1
    elseif in_logic then
        value = logic_value(st)
    else
        value = sub(s, st.i)
        st.i = #s + 1
    end
    if op == "like" or op == "ilike" then
        value = gsub(value, "%*", "%%")             -- PostgREST: * stands for %
    end
    return { op = op, value = value, negate = negate }
end

-- col=[not.]op.value -> leaf, or nil, err. col is the (decoded) query key.
function _M.filter(col, text)
    local kst = new_state("tree path", col)
    local name, e = field(kst)
    if not name then return nil, e end
    if not at_end(kst) then
        if byte(col, kst.i) == B_DOT then
            return nil, not_embedded(name)
        end
        return nil, err(kst, "unexpected \"" .. sub(col, kst.i, kst.i) .. "\"")
    end
    local st = new_state("filter", text)
    local leaf, oerr = op_expr(st, false)
    if not leaf then return nil, oerr end
    if not at_end(st) then
        return nil, err(st, "unexpected \"" .. sub(text, st.i, st.i) .. "\" expecting end of input")
    end
    leaf.col = name
    return leaf
end

-- One tree at st.i (nodes counted in counter.n), depth levels deep already.
local function tree(st, depth, counter)
    local s = st.s
    local neg = sub(s, st.i, st.i + 3) == "not."
    local logic, e = match(s, "^(%a+)[ \t]*()%(", neg and st.i + 4 or st.i)
    if logic == "and" or logic == "or" then
        if depth >= _M.MAX_DEPTH then
            return nil, bound("or/and nested too deeply", "at most " .. _M.MAX_DEPTH ..
                              " levels of or/and")
        end
        st.i = e + 1
        local node = { logic = logic, negate = neg, items = {} }
        while true do
            skip_ws(st)
            local child, cerr = tree(st, depth + 1, counter)
            if not child then return nil, cerr end
            node.items[#node.items + 1] = child
            skip_ws(st)
            local b = byte(s, st.i)
            if b == B_COMMA then
                st.i = st.i + 1
            elseif b == B_RPAREN then
                st.i = st.i + 1
                return node
            else
                return nil, err(st, "unexpected " .. (at_end(st) and "end of input" or
                                ("\"" .. sub(s, st.i, st.i) .. "\"")) ..
                                " expecting \",\" or \")\"")
            end
        end
    end
    local name, ferr = field(st)
    if not name then return nil, ferr end
    if byte(s, st.i) ~= B_DOT then
        return nil, err(st, "unexpected " .. (at_end(st) and "end of input" or
                        ("\"" .. sub(s, st.i, st.i) .. "\"")) .. " expecting delimiter (.)")
    end
    st.i = st.i + 1
    local leaf, oerr = op_expr(st, true)
    if not leaf then return nil, oerr end
    counter.n = counter.n + 1
    if counter.n > _M.MAX_FILTERS then
        return nil, bound("too many filters", "at most " .. _M.MAX_FILTERS .. " conditions")
    end
    leaf.col = name
    return leaf
end

-- key "or" | "and" | "not.or" | "not.and", text "(...)" -> group node, or nil, err.
-- counter (optional) = {n = conditions so far}, shared across the request.
function _M.logic(key, text, counter)
    counter = counter or { n = 0 }
    local st = new_state("logic tree", key .. text)
    local node, e = tree(st, 0, counter)
    if not node then return nil, e end
    if node.logic == nil then
        return nil, fail("logic tree", text, 1, "expecting \"(\"")
    end
    skip_ws(st)
    if not at_end(st) then
        return nil, err(st, "unexpected \"" .. sub(st.s, st.i, st.i) .. "\" expecting end of input")
    end
    return node
end

---------------------------------------------------------------------------------------------
-- order

function _M.order(text)
    local st = new_state("order", text)
    local terms = {}
    while true do
        if #terms >= _M.MAX_ORDER then
            return nil, bound("too many order terms", "at most " .. _M.MAX_ORDER)
        end
        local name, e = field(st)
        if not name then return nil, e end
        if byte(st.s, st.i) == B_LPAREN then
            return nil, err(st, "ordering by an embedded resource is not supported by tide yet")
        end
        local term = { name = name, desc = false }
        local s = st.s
        local word = match(s, "^%.(%a+)", st.i)
        if word == "asc" or word == "desc" then
            term.desc = word == "desc"
            st.i = st.i + 1 + #word
            word = match(s, "^%.(%a+)", st.i)
        end
        if word == "nullsfirst" or word == "nullslast" then
            term.nulls = word == "nullsfirst" and "first" or "last"
            st.i = st.i + 1 + #word
        elseif word ~= nil then
            st.i = st.i + 1
            return nil, err(st, "unexpected \"" .. sub(s, st.i, st.i) ..
                            "\" expecting \"asc\", \"desc\", \"nullsfirst\" or \"nullslast\"")
        end
        terms[#terms + 1] = term
        skip_ws(st)
        if at_end(st) then
            return terms
        elseif byte(s, st.i) == B_COMMA then
            st.i = st.i + 1
        else
            return nil, err(st, "unexpected \"" .. sub(s, st.i, st.i) ..
                            "\" expecting delimiter (.), \",\" or end of input")
        end
    end
end

---------------------------------------------------------------------------------------------
-- the whole query string

local function add_pair(out, k, v)
    if v ~= nil then                    -- a key without "=" says nothing here
        out[#out + 1] = { k, v }
    end
end

-- The decoded key/value pairs in order (keys without "=" skipped), or nil, err.
function _M.pairs(qs)
    local out = {}
    if router.each_query_pair(qs, add_pair, out) == false then
        return nil, malformed_query()
    end
    return out
end

local LOGIC_KEYS = { ["or"] = true, ["and"] = true, ["not.or"] = true, ["not.and"] = true }
local EMBEDDABLE = { order = "order", limit = "limit", offset = "offset", ["or"] = "or/and",
                     ["and"] = "or/and" }
local IGNORED = { columns = true, on_conflict = true }

-- The resource a key names before a dot (rel in rel.col, rel.order, "r.x".limit), or nil.
local function key_resource(k)
    local st = new_state("tree path", k)
    local name = field_name(st)
    if name and byte(k, st.i) == B_DOT then
        return name
    end
    return nil
end

-- The error for the first key that names a resource (what: filters, order, ...): PGRST100
-- when the select embeds it (tide embeds whole related rows), else PGRST108.
local function embedded_key_error(select, first)
    local name = first.name
    for i = 1, select and #select or 0 do
        local it = select[i]
        if it.embed and (it.alias == name or it.name == name) then
            return http.error(400, "PGRST100", "tide does not support " .. first.what ..
                              " on embedded resources yet", "'" .. first.key .. "' " ..
                              "applies to the embedded resource '" .. name .. "'; tide " ..
                              "embeds all related rows the caller may see, unfiltered and " ..
                              "unordered")
        end
    end
    return not_embedded(name)
end

local function int(v)
    if find(v, "^%-?%d+$") then
        return tonumber(v)
    end
    return nil
end

function _M.request(qs)
    local kv, e = _M.pairs(qs)
    if not kv then return nil, e end
    local req = { filters = {} }
    local counter = { n = 0 }
    local first_embedded                -- the first key naming a resource (checked at the end)
    for i = 1, #kv do
        local k, v = kv[i][1], kv[i][2]
        local last = match(k, "%.([^%.]*)$")
        if k == "select" then                   -- the first select= and order= count
            if req.select == nil then
                req.select, e = _M.select(v)
                if not req.select then return nil, e end
            end
        elseif k == "order" then
            if req.order == nil then
                req.order, e = _M.order(v)
                if not req.order then return nil, e end
            end
        elseif k == "limit" then
            req.limit = int(v) or req.limit
        elseif k == "offset" then
            req.offset = int(v) or req.offset
        elseif LOGIC_KEYS[k] then
            local node
            node, e = _M.logic(k, v, counter)
            if not node then return nil, e end
            req.filters[#req.filters + 1] = node
        elseif IGNORED[k] then                          -- luacheck: ignore 542
            -- write-side parameters: nothing to do on a read
        elseif last and EMBEDDABLE[last] then
            first_embedded = first_embedded or { name = key_resource(k) or match(k, "^([^%.]*)"),
                                                 key = k, what = EMBEDDABLE[last] }
        elseif key_resource(k) then
            first_embedded = first_embedded or { name = key_resource(k), key = k,
                                                 what = "filters" }
        else
            counter.n = counter.n + 1
            if counter.n > _M.MAX_FILTERS then
                return nil, bound("too many filters", "at most " .. _M.MAX_FILTERS ..
                                  " conditions")
            end
            local leaf
            leaf, e = _M.filter(k, v)
            if not leaf then return nil, e end
            req.filters[#req.filters + 1] = leaf
        end
    end
    if first_embedded then
        return nil, embedded_key_error(req.select, first_embedded)
    end
    return req
end

return _M
