-- tide/validate.lua - input validation for route handlers.
--
--   validate.object(body, schema[, {partial = true}]) -> clean | nil, err
--       schema = { field = spec, ... }; spec = {
--         type = "string"|"integer"|"number"|"boolean"|"uuid"|"date"|"array"|"object",
--         required = bool,           -- ignored with partial = true (PATCH bodies)
--         nullable = bool,           -- JSON null allowed (kept as json.null: sets NULL)
--         max_len =, min_len =,      -- strings, in UTF-8 characters
--         min =, max =,              -- integer / number
--         enum = { ... },            -- allowed values
--         pattern = "^lua pattern$", -- strings
--         items = spec,              -- array elements (named field[0], field[1], ...)
--         min_items =, max_items =,  -- arrays
--         fields = schema,           -- nested object (named field.sub); without it any object
--       }
--       clean holds only the schema's fields that were present; arrays carry json.array_mt.
--       Unknown fields are rejected by name. Problems are reported one at a time, fields in
--       sorted order (deterministic).
--   validate.value(v, spec, name) -> clean | nil, err        one value, same rules
--   validate.param(s, spec, name) -> value | nil, err        a path/query string: "integer",
--       "number" and "boolean" are converted from text first; errors are status 400
--   validate.limit_offset(query[, {default = 20, max = 100}]) -> limit, offset | nil, err
--       query.limit / query.offset: absent or "" -> defaults (20, 0); digits only; a limit
--       above max is clamped to max (never an unbounded page)
--   validate.is_uuid(s), validate.is_date(s) -> bool
--
-- err = {code = "TIDE_VALIDATION", status = 422 (400 for param), message = "<field>: <problem>",
--        details = {field = "<field>"}}. A malformed schema is misuse (Lua error).

local json = require "tide.json"
local errors = require "tide.errors"

local type, pairs, tostring, tonumber, select = type, pairs, tostring, tonumber, select
local setmetatable = setmetatable
local find, gsub, sub = string.find, string.gsub, string.sub
local sort, concat = table.sort, table.concat
local huge = math.huge
local misuse, new_error = errors.misuse, errors.new
local null, array_mt, is_array = json.null, json.array_mt, json.is_array

local _M = {}

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
local TYPES = { string = true, integer = true, number = true, boolean = true, uuid = true,
                date = true, array = true, object = true }
local SPEC_KEYS = { type = true, required = true, nullable = true, max_len = true,
                    min_len = true, min = true, max = true, enum = true, pattern = true,
                    items = true, min_items = true, max_items = true, fields = true }

local function fail(name, problem, status)
    return nil, new_error("TIDE_VALIDATION", status or 422, name .. ": " .. problem,
                          { field = name })
end

function _M.is_uuid(s)
    return type(s) == "string" and find(s, UUID) ~= nil
end

local DAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

function _M.is_date(s)
    if type(s) ~= "string" or #s ~= 10 or not find(s, "^%d%d%d%d%-%d%d%-%d%d$") then
        return false
    end
    local y, m, d = tonumber(sub(s, 1, 4)), tonumber(sub(s, 6, 7)), tonumber(sub(s, 9, 10))
    if y < 1 or m < 1 or m > 12 or d < 1 then
        return false
    end
    local max = DAYS[m]
    if m == 2 and (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) then
        max = 29
    end
    return d <= max
end

local function utf8_len(s)
    return select(2, gsub(s, "[^\128-\191]", ""))
end

-- Schemas are checked once (misuse on a malformed one); remembers their sorted field names.
local checked = setmetatable({}, { __mode = "k" })

local check_spec

local function check_schema(schema, where)
    local names = checked[schema]
    if names then
        return names
    end
    if type(schema) ~= "table" then
        misuse("validate: " .. where .. " must be a table of field = spec")
    end
    names = {}
    for name, spec in pairs(schema) do
        if type(name) ~= "string" then
            misuse("validate: " .. where .. " field names must be strings")
        end
        check_spec(spec, name)
        names[#names + 1] = name
    end
    sort(names)
    checked[schema] = names
    return names
end

check_spec = function(spec, name)
    if type(spec) ~= "table" or not TYPES[spec.type] then
        misuse("validate: field " .. name .. " needs type = string|integer|number|boolean|" ..
               "uuid|date|array|object")
    end
    for k in pairs(spec) do
        if not SPEC_KEYS[k] then
            misuse("validate: field " .. name .. " has unknown rule '" .. tostring(k) .. "'")
        end
    end
    if spec.items ~= nil then
        check_spec(spec.items, name .. "[]")
    end
    if spec.fields ~= nil then
        check_schema(spec.fields, "fields of " .. name)
    end
end

local function in_enum(v, enum)
    for i = 1, #enum do
        if enum[i] == v then
            return true
        end
    end
    return false
end

local function enum_text(enum)
    local parts = {}
    for i = 1, #enum do
        parts[i] = tostring(enum[i])
    end
    return concat(parts, ", ")
end

local check_object

-- Returns the clean value or nil, problem text.
local function check_value(v, spec, name)
    local t = spec.type
    local tv = type(v)
    if t == "string" or t == "uuid" or t == "date" then
        if tv ~= "string" then
            return nil, "must be a string"
        end
        if t == "uuid" then
            if not _M.is_uuid(v) then
                return nil, "must be a uuid"
            end
        elseif t == "date" then
            if not _M.is_date(v) then
                return nil, "must be a date (YYYY-MM-DD)"
            end
        end
        local max_len, min_len = spec.max_len, spec.min_len
        if max_len and #v > max_len and utf8_len(v) > max_len then
            return nil, "must be at most " .. max_len .. " characters"
        end
        if min_len and (#v < min_len or utf8_len(v) < min_len) then
            return nil, "must be at least " .. min_len .. " characters"
        end
        if spec.pattern and not find(v, spec.pattern) then
            return nil, "has an invalid format"
        end
    elseif t == "integer" or t == "number" then
        if tv ~= "number" or v ~= v or v == huge or v == -huge then
            return nil, t == "integer" and "must be an integer" or "must be a number"
        end
        if t == "integer" and (v % 1 ~= 0 or v >= 2 ^ 53 or v <= -(2 ^ 53)) then
            return nil, "must be an integer"
        end
        if spec.min and v < spec.min then
            return nil, "must be at least " .. tostring(spec.min)
        end
        if spec.max and v > spec.max then
            return nil, "must be at most " .. tostring(spec.max)
        end
    elseif t == "boolean" then
        if tv ~= "boolean" then
            return nil, "must be true or false"
        end
    elseif t == "array" then
        if tv ~= "table" or not is_array(v) then
            return nil, "must be an array"
        end
        local len = #v
        if spec.min_items and len < spec.min_items then
            return nil, "must have at least " .. spec.min_items .. " items"
        end
        if spec.max_items and len > spec.max_items then
            return nil, "must have at most " .. spec.max_items .. " items"
        end
        local items = spec.items
        local out = setmetatable({}, array_mt)
        for i = 1, len do
            local x = v[i]
            if items then
                local iname = name .. "[" .. (i - 1) .. "]"
                if x == null then
                    if not items.nullable then
                        return nil, "must not be null", iname
                    end
                else
                    local clean, problem, at = check_value(x, items, iname)
                    if clean == nil then
                        return nil, problem, at or iname
                    end
                    x = clean
                end
            end
            out[i] = x
        end
        return out
    else -- object
        if tv ~= "table" or is_array(v) then
            return nil, "must be an object"
        end
        if spec.fields then
            local clean, problem, at = check_object(v, spec.fields, name .. ".", false)
            if clean == nil then
                return nil, problem, at
            end
            return clean
        end
        return v
    end
    if spec.enum and not in_enum(v, spec.enum) then
        return nil, "must be one of " .. enum_text(spec.enum)
    end
    return v
end

-- Returns clean or nil, problem, field name.
check_object = function(body, schema, prefix, partial)
    local names = check_schema(schema, "schema")
    local unknown
    for k in pairs(body) do
        if schema[k] == nil then
            local kname = type(k) == "string" and k or tostring(k)
            if unknown == nil or kname < unknown then
                unknown = kname
            end
        end
    end
    if unknown then
        return nil, "unknown field", prefix .. unknown
    end
    local clean = {}
    for i = 1, #names do
        local f = names[i]
        local spec = schema[f]
        local v = body[f]
        local fname = prefix .. f
        if v == nil then
            if spec.required and not partial then
                return nil, "is required", fname
            end
        elseif v == null then
            if not spec.nullable then
                return nil, "must not be null", fname
            end
            clean[f] = null
        else
            local c, problem, at = check_value(v, spec, fname)
            if c == nil then
                return nil, problem, at or fname
            end
            clean[f] = c
        end
    end
    return clean
end

-- Validates a decoded JSON object against schema. Returns the clean table or nil, err (422).
function _M.object(body, schema, opts)
    check_schema(schema, "schema")
    if opts ~= nil and type(opts) ~= "table" then
        misuse("validate.object: options must be a table")
    end
    if type(body) ~= "table" or is_array(body) then
        return fail("body", "must be a JSON object")
    end
    local clean, problem, at = check_object(body, schema, "", opts and opts.partial)
    if clean == nil then
        return fail(at, problem)
    end
    return clean
end

-- Validates one value. Returns the clean value or nil, err (422). nil means absent.
function _M.value(v, spec, name)
    check_spec(spec, name or "value")
    name = name or "value"
    if v == nil or v == null then
        if v == nil and not spec.required then
            return nil
        end
        if v == null and spec.nullable then
            return null
        end
        return fail(name, v == nil and "is required" or "must not be null")
    end
    local clean, problem, at = check_value(v, spec, name)
    if clean == nil then
        return fail(at or name, problem)
    end
    return clean
end

-- Validates a path or query parameter (text). Returns the converted value or nil, err (400).
function _M.param(s, spec, name)
    check_spec(spec, name or "param")
    name = name or "param"
    if s == nil or s == "" then
        if spec.required then
            return fail(name, "is required", 400)
        end
        return nil
    end
    if type(s) ~= "string" then
        return fail(name, "must be a single value", 400)
    end
    local v = s
    local t = spec.type
    if t == "integer" then
        if not find(s, "^%-?%d+$") or #s > 16 then
            return fail(name, "must be an integer", 400)
        end
        v = tonumber(s)
    elseif t == "number" then
        v = find(s, "^[%-%d.eE+]+$") and tonumber(s)
        if v == nil then
            return fail(name, "must be a number", 400)
        end
    elseif t == "boolean" then
        if s == "true" then
            v = true
        elseif s == "false" then
            v = false
        else
            return fail(name, "must be true or false", 400)
        end
    elseif t == "array" or t == "object" then
        misuse("validate.param: " .. t .. " parameters are not supported")
    end
    local clean, problem = check_value(v, spec, name)
    if clean == nil then
        return fail(name, problem, 400)
    end
    return clean
end

-- One of limit/offset: the number, dflt when absent, or nil when malformed.
local function count_field(query, field, dflt)
    local v = query[field]
    if v == nil or v == "" then
        return dflt
    end
    if type(v) == "number" then
        if v % 1 ~= 0 or v < 0 or v >= 2 ^ 53 then
            return nil
        end
        return v
    end
    if type(v) ~= "string" or not find(v, "^%d+$") or #v > 15 then
        return nil
    end
    return tonumber(v)
end

-- Returns limit, offset for a list endpoint, or nil, err (422, naming the field).
function _M.limit_offset(query, opts)
    local default, max = 20, 100
    if opts ~= nil then
        default = opts.default or default
        max = opts.max or max
    end
    query = query or {}
    local limit = count_field(query, "limit", default)
    if limit == nil then
        return fail("limit", "must be a non-negative integer")
    end
    local offset = count_field(query, "offset", 0)
    if offset == nil then
        return fail("offset", "must be a non-negative integer")
    end
    if limit > max then
        limit = max
    end
    return limit, offset
end

return _M
