-- spec/unit/builder_property_spec.lua - randomized property test of the SQL builder's handling
-- of identifiers and filters, the parts a request's input reaches (column names from a script's
-- allow-list, filter values and operators from query strings and bodies). A seeded generator
-- makes hostile names (quotes, backslashes, semicolons, comment starters, whitespace, UTF-8,
-- NUL, over-long) and random filter trees (nested or/and/not, every operator, values with SQL in
-- them). Properties, for every call:
--   * it either raises a misuse error (a string naming the problem) or returns sql, params;
--   * tokenizing the sql, every double-quoted identifier is one of the names given, and the
--     text outside identifiers holds no quote except the builder's own '[]' literal, no ';',
--     no comment starter, and none of the values: every value travels as a parameter;
--   * placeholders are exactly $1..$params.n, each used at least once.
-- The seed is printed on failure (replay with TIDE_BUILDER_SEED=n).

local builder = require "tide.builder"
local json = require "tide.json"

local SEED = tonumber(os.getenv("TIDE_BUILDER_SEED") or "") or os.time()
local CASES = 500
local rnd

local NAME_PIECES = { "id", "a", "user_id", '"', '""', "'", "\\", ";", "--", "/*", "*/", " ",
                      "\t", "\n", "é", "$1", ")", "(", ",", "or", "DROP TABLE x", "\0", "-" }
local VALUE_PIECES = { "x", "'", "''", "\\", ";", "--", "/*", "$1", "' OR '1'='1", '"',
                       "); DROP TABLE trips; --", "%", "_", "é", "\0", "{", "}", "NULL" }

local function pick(t) return t[rnd(#t)] end

local function rand_name()
    if rnd(10) == 1 then
        return string.rep("n", rnd(60, 70))   -- around the 63-byte limit
    end
    local parts = {}
    for i = 1, rnd(1, 4) do parts[i] = pick(NAME_PIECES) end
    return table.concat(parts)
end

local function rand_text()
    local parts = {}
    for i = 1, rnd(1, 4) do parts[i] = pick(VALUE_PIECES) end
    return table.concat(parts)
end

local values_seen      -- every string value given in this case

local function rand_value()
    local r = rnd(6)
    if r <= 3 then
        local s = rand_text()
        values_seen[#values_seen + 1] = s
        return s
    elseif r == 4 then
        return rnd(-1000, 1000)
    elseif r == 5 then
        return rnd(2) == 1
    end
    return json.null
end

local names_given      -- every identifier given in this case

local function rand_col()
    local c = rand_name()
    names_given[c] = true
    return c
end

local OPS = { "eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "in", "is", "contains",
              "not", "bogus" }

local gen_filters

local function gen_ops(depth)
    local ops = {}
    for _ = 1, rnd(1, 2) do
        local op = pick(OPS)
        if op == "in" then
            local list = {}
            for i = 1, rnd(0, 3) do list[i] = rand_value() end
            ops["in"] = list
        elseif op == "is" then
            ops.is = pick { "null", "not_null", "true", "false", "maybe", json.null, true }
        elseif op == "contains" then
            ops.contains = rnd(2) == 1 and { rand_text(), rand_text() } or { k = rand_text() }
        elseif op == "not" then
            ops["not"] = depth < 3 and gen_ops(depth + 1) or { eq = rand_value() }
        elseif op == "bogus" then
            ops[rand_name()] = rand_value()
        else
            ops[op] = rand_value()
        end
    end
    return ops
end

gen_filters = function(depth)
    local f = {}
    for _ = 1, rnd(1, 3) do
        local r = rnd(8)
        if r == 1 and depth < 3 then
            local list = {}
            for i = 1, rnd(1, 3) do list[i] = gen_filters(depth + 1) end
            f[pick { "or", "and" }] = list
        elseif r <= 4 then
            f[rand_col()] = rand_value()
        else
            f[rand_col()] = gen_ops(depth)
        end
    end
    return f
end

-- Splits sql into its quoted identifiers (unescaped) and the text outside them.
local function tokenize(sql)
    local idents, outside = {}, {}
    local i, n = 1, #sql
    while i <= n do
        local c = sql:sub(i, i)
        if c == '"' then
            local buf, j = {}, i + 1
            while true do
                local q = sql:find('"', j, true)
                assert(q, "unterminated identifier in: " .. sql)
                buf[#buf + 1] = sql:sub(j, q - 1)
                if sql:sub(q + 1, q + 1) == '"' then
                    buf[#buf + 1] = '"'
                    j = q + 2
                else
                    i = q + 1
                    break
                end
            end
            idents[#idents + 1] = table.concat(buf)
        else
            outside[#outside + 1] = c
            i = i + 1
        end
    end
    return idents, table.concat(outside)
end

local BUILDER_IDENTS = { trips = true }

local function check(sql, params, case)
    local where = ("seed %d case %d: "):format(SEED, case)
    assert(type(sql) == "string" and type(params) == "table", where .. "no sql")
    local idents, outside = tokenize(sql)
    for _, id in ipairs(idents) do
        assert(names_given[id] or BUILDER_IDENTS[id], where .. "identifier not given: " .. id)
    end
    local bare = outside:gsub("'%[%]'", "")
    assert(not bare:find("'", 1, true), where .. "a quote outside identifiers: " .. sql)
    assert(not bare:find(";", 1, true), where .. "a ';' outside identifiers: " .. sql)
    assert(not bare:find("--", 1, true) and not bare:find("/*", 1, true),
           where .. "a comment outside identifiers: " .. sql)
    assert(not bare:find("%z"), where .. "a NUL outside identifiers")
    for _, v in ipairs(values_seen) do
        if #v >= 3 and not v:find("^[%a_]+$") then
            assert(not bare:find(v, 1, true), where .. "value spliced into the text: " .. v)
        end
    end
    local used = {}
    for d in bare:gmatch("%$(%d+)") do used[tonumber(d)] = true end
    for k = 1, params.n do
        assert(used[k], where .. "$" .. k .. " unused: " .. sql)
    end
    for k in pairs(used) do
        assert(k >= 1 and k <= params.n, where .. "$" .. k .. " has no parameter")
    end
end

local function expect_misuse(err, case)
    assert(type(err) == "string" and #err > 0,
           ("seed %d case %d: raised a non-message: %s"):format(SEED, case, tostring(err)))
end

describe("tide.builder with hostile identifiers and filters (randomized, seed " .. SEED .. ")",
         function()
    it("quotes every identifier, sends every value as a parameter, or refuses", function()
        math.randomseed(SEED)
        rnd = math.random
        local built, refused = 0, 0
        for case = 1, CASES do
            names_given, values_seen = { trips = true }, {}
            local kind = rnd(5)
            local ok, sql, params = pcall(function()
                if kind == 1 then
                    local cols = {}
                    for i = 1, rnd(1, 3) do cols[i] = rand_col() end
                    local order = {}
                    for i = 1, rnd(0, 2) do
                        -- "-name" is descending, and items are trimmed: register the name as
                        -- the builder reads it
                        order[i] = (rnd(2) == 1 and "-" or "") .. rand_col()
                        local read = order[i]:gsub("^%s+", ""):gsub("%s+$", "")
                        names_given[read:sub(1, 1) == "-" and read:sub(2) or read] = true
                    end
                    return builder.select("trips", { columns = cols, filters = gen_filters(0),
                                                     order = order[1] and order or nil,
                                                     limit = rnd(0, 50) })
                elseif kind == 2 then
                    return builder.count("trips", { filters = gen_filters(0) })
                elseif kind == 3 then
                    local row = {}
                    for _ = 1, rnd(1, 3) do row[rand_col()] = rand_value() end
                    return builder.insert("trips", { row })
                elseif kind == 4 then
                    local patch = {}
                    for _ = 1, rnd(1, 3) do patch[rand_col()] = rand_value() end
                    return builder.update("trips", patch, { filters = gen_filters(0) })
                end
                local args = {}
                for _ = 1, rnd(0, 3) do args[rand_col()] = rand_value() end
                local fn = rand_col()
                return builder.rpc(fn, args)
            end)
            if ok then
                check(sql, params, case)
                built = built + 1
            else
                expect_misuse(sql, case)
                refused = refused + 1
            end
        end
        -- the generator must exercise both outcomes, or the property proves little
        assert.is_true(built > CASES / 10, "only " .. built .. " calls were built")
        assert.is_true(refused > CASES / 10, "only " .. refused .. " calls were refused")
    end)
end)
