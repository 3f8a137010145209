-- tide/rest/http.lua - the HTTP shape /rest/v1 shares across its three sides, the read
-- side (tide/rest/routes.lua), the write side (write.lua) and functions (rpc.lua):
-- which media type to answer in, what Prefer asks for, Content-Range and the one-object
-- answer. Each rule is here once so the three sides cannot drift apart.
--
--   h.negotiate(accept, shapes) -> "json" | "object" | "csv", or nil, 406 PGRST107
--       PostgREST's choice: the Accept header's media types by q-value, highest first, equal
--       q-values in the header's order; the first one the caller serves wins; q=0 never. No
--       header (or an empty one): "json". shapes: the set the caller serves, h.ANY (json,
--       object, csv: reads) or h.NO_CSV (json, object: writes and functions). */* and
--       application/* are json; application/vnd.pgrst.object(+json) object; text/csv csv.
--   h.preferences(header) -> p   Prefer as {resolution =, ["return"] =, count =, missing =,
--       handling =, params =, tx =, max_affected = n, invalid = {items}}: items split on
--       commas and trimmed, the first value of each kind wins, what PostgREST does not know
--       goes to invalid (PGRST122 under handling=strict). p.count is any of exact, planned,
--       estimated (tide counts exactly for all three).
--   h.applied(p, which) -> the Preference-Applied value for the kinds in which (a set), in
--       PostgREST's order, or nil.
--   h.content_range(lower, n, total) -> "lower-last/total": n rows from lower, total the
--       count or nil ("*"); "*/total" when there is no row.
--   h.ranged(lower, n, total, counted) -> headers, status: Content-Range, JSON Content-Type
--       and (counted) Preference-Applied: count=exact; 206 when the count shows the answer
--       is partial, else 200; or nil, 416 PGRST103 for an offset past the count.
--   h.unwrap(text) -> the one element of a JSON array's text ("[x]" -> x) as raw JSON.
--   h.JSON, h.OBJECT   the Content-Type of a JSON and of a one-object answer.
-- The errors themselves are built in tide/rest/errors.lua. Kept apart from it because that
-- file is the table of /rest/v1's errors (codes, statuses, words) and this one the request's
-- and answer's shape; tide.json is needed here, not there.
--
-- Bounds: the first MAX_ACCEPT (64) items of an Accept header are read, the rest ignored; a
-- max-affected= value has at most 14 digits (else it is ignored; it fits a double exactly). The headers themselves
-- are bounded by the HTTP layer's head limit.

local json = require "tide.json"
local rerr = require "tide.rest.errors"

local type, ipairs, tonumber, tostring = type, ipairs, tonumber, tostring
local find, format, gmatch, lower, match, sub = string.find, string.format, string.gmatch,
    string.lower, string.match, string.sub
local concat = table.concat
local json_raw = json.raw

local _M = {}

local MAX_ACCEPT = 64
_M.MAX_ACCEPT = MAX_ACCEPT

_M.JSON = "application/json; charset=utf-8"
_M.OBJECT = "application/vnd.pgrst.object+json; charset=utf-8"

---------------------------------------------------------------------------------------------
-- Accept

local MEDIA = {
    ["*/*"] = "json", ["application/*"] = "json", ["application/json"] = "json",
    ["application/vnd.pgrst.object+json"] = "object", ["application/vnd.pgrst.object"] = "object",
    ["text/csv"] = "csv",
}

_M.ANY = { json = true, object = true, csv = true }
_M.NO_CSV = { json = true, object = true }

function _M.negotiate(accept, shapes)
    if accept == nil or accept == "" then
        return "json"
    end
    -- the highest q wins; strictly higher, so an equal q keeps the earlier item
    local best, best_q, n = nil, 0, 0
    for item in gmatch(accept, "[^,]+") do
        n = n + 1
        if n > MAX_ACCEPT then break end
        local m = MEDIA[lower(match(item, "^%s*([^;%s]*)") or "")]
        if m and shapes[m] then
            local q = tonumber(match(item, ";%s*q=([%d%.]+)")) or 1
            if q > best_q then
                best, best_q = m, q
            end
        end
    end
    if best then
        return best
    end
    return nil, rerr.not_acceptable(accept)
end

---------------------------------------------------------------------------------------------
-- Prefer

-- Every value PostgREST recognizes; tx= is recognized but not applied (PostgREST applies it
-- only with db-tx-allow-override, which tide does not have).
local PREFS = {}
for _, kv in ipairs({ { "resolution", "merge-duplicates" }, { "resolution", "ignore-duplicates" },
                      { "return", "representation" }, { "return", "minimal" },
                      { "return", "headers-only" }, { "params", "single-object" },
                      { "count", "exact" }, { "count", "planned" }, { "count", "estimated" },
                      { "tx", "commit" }, { "tx", "rollback" }, { "missing", "default" },
                      { "missing", "null" }, { "handling", "strict" },
                      { "handling", "lenient" } }) do
    PREFS[kv[1] .. "=" .. kv[2]] = kv
end

-- s without its leading and trailing white space, in linear time whatever s holds (the usual
-- "^%s*(.-)%s*$" backtracks: quadratic on a run of blanks inside a 16 KiB header).
local function trim(s)
    local j = find(s, "%S%s*$")
    if j == nil then
        return ""
    end
    return sub(s, match(s, "^%s*()"), j)
end
_M.trim = trim

function _M.preferences(header)
    local p = { invalid = {} }
    if type(header) ~= "string" then
        return p
    end
    for item in gmatch(header, "[^,]+") do
        item = trim(item)
        local kv = PREFS[item]
        if kv then
            if p[kv[1]] == nil then
                p[kv[1]] = kv[2]
            end
        elseif sub(item, 1, 13) == "max-affected=" then
            if p.max_affected == nil and find(item, "^max%-affected=%d+$") and #item < 28 then
                p.max_affected = tonumber(sub(item, 14))
            end
        elseif item ~= "" then
            p.invalid[#p.invalid + 1] = item
        end
    end
    return p
end

local ORDER = { "resolution", "missing", "return", "count", "handling" }

function _M.applied(p, which)
    local out = {}
    for i = 1, #ORDER do
        local k = ORDER[i]
        if which[k] and p[k] ~= nil then
            out[#out + 1] = k .. "=" .. p[k]
        end
    end
    if which.max_affected and p.handling == "strict" and p.max_affected ~= nil then
        out[#out + 1] = "max-affected=" .. format("%d", p.max_affected)
    end
    return out[1] and concat(out, ", ") or nil
end

---------------------------------------------------------------------------------------------
-- the answer

function _M.content_range(lower_b, n, total)
    local last = lower_b + n - 1
    return ((total ~= 0 and lower_b <= last) and (lower_b .. "-" .. last) or "*") ..
           "/" .. (total and tostring(total) or "*")
end

function _M.ranged(lower_b, n, total, counted)
    local headers = { ["Content-Range"] = _M.content_range(lower_b, n, total),
                      ["Content-Type"] = _M.JSON }
    if counted then
        headers["Preference-Applied"] = "count=exact"
    end
    if total ~= nil then
        if lower_b > total then
            return nil, rerr.offset_past_end(lower_b, total)
        elseif n < total then
            return headers, 206
        end
    end
    return headers, 200
end

function _M.unwrap(text)
    return json_raw(sub(text, 2, #text - 1))
end

return _M
