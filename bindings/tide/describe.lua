-- tide/describe.lua - the text `tide routes` and `tide check` print about a loaded bundle: its
-- routes with where their handlers are defined, and the effective routing and cache policies.
-- Pure formatting: each function takes what tide.boot loaded and returns a list of lines
-- (boot.describe(section) calls them; the C side prints the lines).
--
--   describe.routes(list)           router:list() -> "METHOD /pattern  file:line" lines, the
--                                   locations in one column; " (module m)" is added when the
--                                   handler lives outside its route module's file
--   describe.routing(policy, kinds) policies/routing.lua (already checked by boot.load) ->
--                                   "kind = upstream" for every kind, then "tables.T.kind =
--                                   upstream" for each kind whose upstream a per-table
--                                   override changes
--   describe.cache(policy)          cachetags.policy() -> one line per cached route (ttl,
--                                   scope, stale_while_revalidate, stale_if_error, vary), per
--                                   table (key, depends) and per function (the tables it reads)

local pairs, tostring, type = pairs, tostring, type
local format, match, rep = string.format, string.match, string.rep
local concat, sort = table.concat, table.sort

local _M = {}

local NAME_WIDTH = 40            -- as runtime/settings.c prints settings: "%-40s = value"

local function setting(name, value)
    return format("%-" .. NAME_WIDTH .. "s = %s", name, value)
end

local function sorted_keys(t)
    local keys = {}
    for k in pairs(t) do
        keys[#keys + 1] = k
    end
    sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    return keys
end

function _M.routes(list)
    local width = 0
    for i = 1, #list do
        local r = list[i]
        local n = #r.method + 1 + #r.pattern
        if n > width then
            width = n
        end
    end
    local out = {}
    for i = 1, #list do
        local r = list[i]
        local route = r.method .. " " .. r.pattern
        local loc = r.line and (r.file .. ":" .. r.line) or r.file
        -- the handler is elsewhere than in the module's own file (a shared helper): say whose
        local base = match(r.file, "([^/]+)%.lua$")
        if base ~= r.module then
            loc = loc .. " (module " .. r.module .. ")"
        end
        out[i] = route .. rep(" ", width - #route + 2) .. loc
    end
    return out
end

function _M.routing(policy, kinds)
    local out = {}
    local default = {}
    for i = 1, #kinds do
        local kind = kinds[i]
        default[kind] = policy.route(kind, nil)
        out[#out + 1] = setting(kind, default[kind])
    end
    local tables = type(policy.tables) == "table" and policy.tables or {}
    local names = sorted_keys(tables)
    for i = 1, #names do
        local tbl = names[i]
        local changed = false
        for k = 1, #kinds do
            local kind = kinds[k]
            local up = policy.route(kind, tbl)
            if up ~= default[kind] then
                out[#out + 1] = setting("tables." .. tostring(tbl) .. "." .. kind, up)
                changed = true
            end
        end
        if not changed then
            out[#out + 1] = setting("tables." .. tostring(tbl), "(every kind as above)")
        end
    end
    return out
end

local function list_text(l)
    return #l > 0 and concat(l, ",") or "none"
end

function _M.cache(policy)
    local out = {}
    local routes = sorted_keys(policy.routes)
    if #routes == 0 then
        out[#out + 1] = "(no route is cached)"
    end
    for i = 1, #routes do
        local r = policy.routes[routes[i]]
        out[#out + 1] = setting(r.route, format(
            "ttl=%s scope=%s stale_while_revalidate=%s stale_if_error=%s vary=%s",
            tostring(r.ttl), r.scope, tostring(r.swr), tostring(r.sie), list_text(r.vary)))
    end
    local tables = sorted_keys(policy.tables)
    for i = 1, #tables do
        local t = policy.tables[tables[i]]
        out[#out + 1] = setting("tables." .. tables[i],
                                "key=" .. (t.key or "none") .. " depends=" .. list_text(t.depends))
    end
    local fns = sorted_keys(policy.functions)
    for i = 1, #fns do
        out[#out + 1] = setting("functions." .. fns[i],
                                "reads=" .. list_text(policy.functions[fns[i]]))
    end
    return out
end

return _M
