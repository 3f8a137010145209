-- spec/unit/cachetags_property_spec.lua - randomized property test of the result cache's tags
-- for key values (tide.cachetags): a client may spell one key many ways that Postgres reads as
-- the same value (bigint 1 as "01", "+1", " 1"; a uuid in upper case, without hyphens, in
-- braces), while writes and the NOTIFY trigger name the row by the text Postgres prints
-- (lower-cased). A seeded generator (spec/helpers/spellings.lua) makes such spellings.
-- Properties, for every value and every pair of spellings a (read) and b (write):
--   * invalidation: what a write of b moves, and what the trigger's NOTIFY for the row moves
--     ("<table>/<canonical>": tide drops that tag and the table's), meets what the read of a
--     depends on, through `depends` too (trip_collaborators decides who sees a trip);
--   * one tag per row: a read or write names no row tag but the canonical one;
--   * with the key columns' types known (the /rest/v1 schema cache tells), every spelling
--     tide can read is tagged exactly as the canonical text: reads and writes agree, the hit
--     rate does not depend on the client's spelling;
--   * spellings tide does not canonicalise (Postgres 16's 0x.. and 1_000) fall back to the
--     table's tags, typed or not.
-- The seed is printed on failure (replay with TIDE_CACHETAGS_SEED=n).

local cachetags = require "tide.cachetags"
local spellings = require "spec.helpers.spellings"

local SEED = tonumber(os.getenv("TIDE_CACHETAGS_SEED") or "") or os.time()
local CASES = 300
local SPELLINGS = 6
local rnd

local POLICY = {
    tables = {
        trips = { key = "id", depends = { "trip_collaborators" } },
        trip_collaborators = { key = "trip_id" },
        users = { key = "id" },
    },
}

local TYPES = {
    trips = { id = "bigint", name = "text" },
    trip_collaborators = { trip_id = "bigint", user_id = "uuid" },
    users = { id = "uuid" },
}

local function set(list)
    local s = {}
    for _, v in ipairs(list) do s[v] = true end
    return s
end

local function show(list)
    local out = {}
    for i, v in ipairs(list) do out[i] = string.format("%q", v) end
    return "{" .. table.concat(out, ", ") .. "}"
end

-- What tide drops when it hears the trigger's NOTIFY <payload> (runtime/rcache.c).
local function heard(payload)
    return { payload:match("^[^/]+"), payload }
end

local function meets(deps, moved)
    local d = set(deps)
    for _, t in ipairs(moved) do
        if d[t] then return true end
    end
    return false
end

-- Every row tag (table/x, x not *) in tags names the canonical key c.
local function only_row(tags, c)
    for _, t in ipairs(tags) do
        local x = t:match("/(.*)$")
        if x and x ~= "*" and x ~= c then return false, t end
    end
    return true
end

-- The filters a key value is read or written with: {col = v} or {col = {eq = v}}.
local function filter(col, v)
    if rnd(2) == 1 then return { [col] = v } end
    return { [col] = { eq = v } }
end

-- The writes of key spelling b: the filtered ones and an insert of a row carrying it.
local function writes(tbl, col, b)
    return {
        cachetags.write(tbl, filter(col, b)),
        cachetags.write(tbl, nil, { { [col] = b, name = "x" } }),
    }
end

-- Checks the properties for one value: canonical c, its spellings (and `odd` ones tide does
-- not canonicalise) of table tbl's key, typed or not.
local function check(where, tbl, col, dep, dep_col, c, list, odd, typed)
    local all = {}
    for _, s in ipairs(list) do all[#all + 1] = s end
    for _, s in ipairs(odd) do all[#all + 1] = s end
    local canon_read = cachetags.read(tbl, { [col] = c })
    assert.is_truthy(set(canon_read)[tbl .. "/" .. c],
                     where .. "the canonical spelling is read as the row: " .. show(canon_read))
    for _, a in ipairs(all) do
        local deps = cachetags.read(tbl, filter(col, a))
        local what = where .. "read of " .. string.format("%q", tostring(a)) .. " " .. show(deps)
        local ok, bad = only_row(deps, c)
        assert.is_true(ok, what .. ": names another row: " .. tostring(bad))
        assert.is_true(meets(deps, heard(tbl .. "/" .. c)), what .. ": the row's NOTIFY misses it")
        assert.is_true(meets(deps, heard(dep .. "/" .. c)),
                       what .. ": the NOTIFY of " .. dep .. " misses it")
        if typed and type(a) == "string" then
            local is_odd = false
            for _, s in ipairs(odd) do if s == a then is_odd = true end end
            if is_odd then
                assert.same(set { tbl, dep }, set(deps), what .. ": not the table's tags")
            else
                assert.same(set(canon_read), set(deps), what .. ": not tagged as " .. c)
            end
        end
        for _, b in ipairs(all) do
            for _, w in ipairs(writes(tbl, col, b)) do
                local ww = what .. " / write of " .. string.format("%q", tostring(b)) .. " " ..
                           show(w)
                assert.is_true(meets(deps, w), ww .. ": the write misses the read")
                assert.is_true((only_row(w, c)), ww .. ": names another row")
            end
            local w = cachetags.write(dep, filter(dep_col, b))
            assert.is_true(meets(deps, w), what .. ": the write of " .. dep .. " " .. show(w) ..
                           " misses it")
        end
    end
    if typed then
        for _, b in ipairs(list) do
            assert.same({ tbl, tbl .. "/" .. c }, cachetags.write(tbl, filter(col, b)),
                        where .. "write of " .. string.format("%q", tostring(b)))
        end
    end
end

describe("tide.cachetags with keys spelled many ways (randomized, seed " .. SEED .. ")", function()
    before_each(function()
        cachetags._set_policy(POLICY)
        cachetags.learn(nil)
        math.randomseed(SEED)
        rnd = math.random
    end)

    after_each(function()
        cachetags._set_policy(nil)
        cachetags.learn(nil)
    end)

    for _, typed in ipairs { false, true } do
        local mode = typed and "with the key types known" or "with the key types unknown"

        it("tags every spelling of a bigint key so that its row's writes reach it (" .. mode ..
           ")", function()
            if typed then cachetags.learn(TYPES) end
            for case = 1, CASES do
                local where = ("seed %d case %d: "):format(SEED, case)
                local c = spellings.int(rnd)
                local list = { c }
                for i = 2, SPELLINGS do list[i] = spellings.int_spelling(rnd, c) end
                local n = tonumber(c)
                if math.abs(n) < 2 ^ 53 then list[#list + 1] = n end
                check(where, "trips", "id", "trip_collaborators", "trip_id", c, list,
                      { spellings.odd_int(rnd, c) }, typed)
            end
        end)

        it("tags every spelling of a uuid key so that its row's writes reach it (" .. mode ..
           ")", function()
            if typed then cachetags.learn(TYPES) end
            local dep_policy = {
                tables = { users = { key = "id", depends = { "user_flags" } },
                           user_flags = { key = "user_id" } } }
            cachetags._set_policy(dep_policy)
            if typed then
                cachetags.learn({ users = { id = "uuid" }, user_flags = { user_id = "uuid" } })
            end
            for case = 1, CASES do
                local where = ("seed %d case %d: "):format(SEED, case)
                local c = spellings.uuid(rnd)
                local list = { c }
                for i = 2, SPELLINGS do list[i] = spellings.uuid_spelling(rnd, c) end
                check(where, "users", "id", "user_flags", "user_id", c, list, {}, typed)
            end
        end)
    end
end)
