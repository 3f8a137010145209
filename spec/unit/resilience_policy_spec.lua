-- spec/unit/resilience_policy_spec.lua - policies/resilience.lua as shipped: it returns
-- {defaults = {retry, breaker, pool, fallback, required, probe_interval}, upstreams = {direct,
-- session, transaction}}, each upstream's table merged over the defaults gives settings within
-- sane ranges (no zero attempts, no negative waits, rates within 0..1, whole counts where a count
-- is meant; the bounds are the C schema table's), every key an upstream sets is one the
-- defaults know (tide refuses a typo too), and fallbacks name another upstream without cycles. tide itself (its C
-- reader, as `tide check` prints it) must read the same merged values. The checker is itself
-- checked against broken copies, so it cannot pass vacuously, and tide's reader must refuse the
-- same broken copies with a message naming the key.

local PATH = "policies/resilience.lua"
local UPSTREAMS = { "direct", "session", "transaction", "replica" }

local function load_policy()
    local chunk, err = loadfile(PATH)
    assert(chunk, "cannot load " .. PATH .. ": " .. tostring(err))
    return chunk("resilience")
end

-- The tide binary `make` builds (TIDE_BIN under `make asan`), or nil when there is none yet.
local function tide_bin()
    local bin = os.getenv("TIDE_BIN") or "build/tide"
    local f = io.open(bin, "rb")
    if not f then return nil end
    f:close()
    return bin
end

-- `tide check` with the shipped config and policies_dir (nil: the shipped policies/).
-- Returns its output and whether it succeeded.
local function tide_check(bin, policies_dir)
    local cmd = "env -u TIDE_SCRIPTS_DIR -u TIDE_BINDINGS_DIR TIDE_DEV=1 TIDE_POLICIES_DIR="
                .. (policies_dir or "policies") .. " " .. bin .. " check -c etc/tide.conf.lua 2>&1"
                .. "; echo \"exit status $?\""
    local p = assert(io.popen(cmd))
    local out = p:read("*a")
    p:close()
    return out, out:match("exit status (%d+)%s*$") == "0"
end

-- Lua source for a policy table (NaN and infinities included).
local function source(v)
    local t = type(v)
    if t == "number" then
        if v ~= v then return "(0/0)" end
        if v == math.huge then return "(1/0)" end
        if v == -math.huge then return "(-1/0)" end
        return string.format("%.17g", v)
    elseif t == "string" then
        return string.format("%q", v)
    elseif t == "table" then
        local parts = {}
        for k, x in pairs(v) do parts[#parts + 1] = "[" .. source(k) .. "] = " .. source(x) end
        return "{ " .. table.concat(parts, ", ") .. " }"
    end
    return tostring(v)
end

local function copy(t)
    if type(t) ~= "table" then return t end
    local c = {}
    for k, v in pairs(t) do c[k] = copy(v) end
    return c
end

-- dst with src merged over it, recursively (dst is changed and returned).
local function merge(dst, src)
    for k, v in pairs(src) do
        if type(v) == "table" and type(dst[k]) == "table" then
            merge(dst[k], v)
        else
            dst[k] = copy(v)
        end
    end
    return dst
end

local function effective(p, name)
    return merge(copy(p.defaults), p.upstreams[name] or {})
end

-- A number check: kind "int" (whole), lo/hi inclusive bounds.
local function num(lo, hi, kind)
    return { lo = lo, hi = hi, int = kind == "int" }
end

-- What each setting must be: the rows of the C core's schema table (runtime/upstream.c, as
-- `tide check --schema` prints it), so this checker's bounds are tide's own (a window of
-- 1..1024, not a number of its own choosing). Empty when there is no tide binary yet: the
-- tests that need it are then pending.
local schema_h = dofile("spec/helpers/schema.lua")
local SCHEMA, NO_SCHEMA = schema_h.load()

local function rules_from(rows)
    local rules = {}
    for _, r in ipairs(rows) do
        if r.min then
            local rule = num(r.min, r.max, r.type == "int" and "int")
            if r.section then
                rules[r.section] = rules[r.section] or {}
                rules[r.section][r.key] = rule
            else
                rules[r.key] = rule
            end
        end
    end
    return rules
end

local RULES = SCHEMA and rules_from(SCHEMA.resilience) or {}

-- Marks the running test pending when there is no schema to check against; true if there is.
local function need_schema()
    if not SCHEMA then pending(NO_SCHEMA) return false end
    return true
end

-- Keys the defaults may hold: the ranged settings plus required, fallback and depends_on.
local KNOWN = merge(copy(RULES), { required = true, fallback = true, depends_on = true })

local function check_number(v, r, where, problems)
    if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
        problems[#problems + 1] = where .. ": a finite number is needed, got " .. tostring(v)
        return
    end
    if r.int and v ~= math.floor(v) then
        problems[#problems + 1] = where .. ": a whole number is needed, got " .. v
    end
    if v < r.lo or v > r.hi then
        problems[#problems + 1] = string.format("%s: %s is outside [%s, %s]", where, tostring(v),
                                                tostring(r.lo), tostring(r.hi))
    end
end

-- Problems (a list of strings) with upstream name's merged settings s.
local function check_settings(name, s, names)
    local problems = {}
    for key, rule in pairs(RULES) do
        local where = name .. "." .. key
        if rule.lo then
            check_number(s[key], rule, where, problems)
        elseif type(s[key]) ~= "table" then
            problems[#problems + 1] = where .. ": a table is needed, got " .. type(s[key])
        else
            for field, r in pairs(rule) do
                check_number(s[key][field], r, where .. "." .. field, problems)
            end
        end
    end
    local retry, breaker = type(s.retry) == "table" and s.retry, type(s.breaker) == "table" and s.breaker
    if retry and type(retry.base) == "number" and type(retry.cap) == "number" and retry.base > retry.cap then
        problems[#problems + 1] = name .. ".retry: base " .. retry.base .. " exceeds cap " .. retry.cap
    end
    if breaker and type(breaker.min_calls) == "number" and type(breaker.window) == "number"
       and breaker.min_calls > breaker.window then
        problems[#problems + 1] = name .. ".breaker: min_calls " .. breaker.min_calls
                                  .. " can never be reached in a window of " .. breaker.window
    end
    if type(s.required) ~= "boolean" then
        problems[#problems + 1] = name .. ".required: a boolean is needed, got " .. tostring(s.required)
    end
    if s.depends_on ~= nil and (not names[s.depends_on] or s.depends_on == name) then
        problems[#problems + 1] = name .. ".depends_on: " .. tostring(s.depends_on)
                                  .. " must name another upstream"
    end
    if s.fallback ~= nil then
        if not names[s.fallback] then
            problems[#problems + 1] = name .. ".fallback: " .. tostring(s.fallback) .. " is not an upstream"
        elseif s.fallback == name then
            problems[#problems + 1] = name .. ".fallback: an upstream cannot fall back to itself"
        end
    end
    return problems
end

-- Every key in t must exist in the defaults' shape (known), recursively.
local function unknown_keys(t, known, where, problems)
    for k, v in pairs(t) do
        local path = where .. "." .. tostring(k)
        if known[k] == nil and k ~= "fallback" and k ~= "depends_on" then
            problems[#problems + 1] = path .. ": not a setting the defaults have (a typo?)"
        elseif type(v) == "table" and type(known[k]) == "table" then
            unknown_keys(v, known[k], path, problems)
        end
    end
end

-- All problems with a whole policy table, as one list.
local function check_policy(p)
    local problems = {}
    if type(p) ~= "table" or type(p.defaults) ~= "table" or type(p.upstreams) ~= "table" then
        return { "the policy must return {defaults = {...}, upstreams = {...}}" }
    end
    local names = {}
    for _, n in ipairs(UPSTREAMS) do names[n] = true end
    for n in pairs(p.upstreams) do
        if not names[n] then problems[#problems + 1] = "upstreams." .. tostring(n) .. ": no such upstream" end
    end
    unknown_keys(p.defaults, KNOWN, "defaults", problems)
    for _, n in ipairs(UPSTREAMS) do
        local u = p.upstreams[n]
        if u ~= nil and type(u) ~= "table" then
            problems[#problems + 1] = "upstreams." .. n .. ": a table is needed"
        else
            unknown_keys(u or {}, p.defaults, "upstreams." .. n, problems)
            for _, msg in ipairs(check_settings(n, effective(p, n), names)) do
                problems[#problems + 1] = msg
            end
        end
    end
    -- fallbacks must not form a cycle (transaction -> direct -> transaction ...)
    for _, n in ipairs(UPSTREAMS) do
        local seen, cur = { [n] = true }, n
        for _ = 1, #UPSTREAMS do
            local nxt = type(p.upstreams[cur]) == "table" and effective(p, cur).fallback or nil
            if nxt == nil or not names[nxt] then break end
            if seen[nxt] then
                problems[#problems + 1] = "fallback cycle through " .. n
                break
            end
            seen[nxt], cur = true, nxt
        end
    end
    table.sort(problems)
    return problems
end

describe("policies/resilience.lua", function()
    local policy

    setup(function()
        policy = load_policy()
    end)

    it("returns defaults with retry, breaker and pool settings and the three upstreams", function()
        if not need_schema() then return end
        assert.is_table(policy)
        assert.is_table(policy.defaults)
        for _, section in ipairs { "retry", "breaker", "pool" } do
            assert.is_table(policy.defaults[section], "defaults." .. section)
            for field in pairs(RULES[section]) do
                assert.is_number(policy.defaults[section][field], "defaults." .. section .. "." .. field)
            end
        end
        assert.is_boolean(policy.defaults.required)
        assert.is_number(policy.defaults.probe_interval)
        assert.is_table(policy.upstreams)
        for _, n in ipairs(UPSTREAMS) do
            assert.is_table(policy.upstreams[n], "upstreams." .. n)
        end
    end)

    it("gives every upstream sane merged settings", function()
        if not need_schema() then return end
        local problems = check_policy(policy)
        assert.are.same({}, problems, table.concat(problems, "\n"))
    end)

    it("`tide check` also lists the routes, with the file and line of their handlers", function()
        local bin = tide_bin()
        if not bin then pending("no tide binary (make builds it)") return end
        local out = tide_check(bin)
        assert.matches("\n# routes", out)
        assert.matches("\nGET /v1/trips/:id +[^\n]*/trips%.lua:%d+\n", out)
        assert.matches("\nPOST /v1/destinations/similar +[^\n]*/destinations%.lua:%d+\n", out)
    end)

    it("is what tide reads: `tide check` prints the same merged values", function()
        -- The C core reads the nested policy through its schema table (runtime/upstream.c)
        -- and `tide check` prints the effective values, one "name.section.key = value" line.
        local bin = tide_bin()
        if not bin then pending("no tide binary (make builds it)") return end
        if not need_schema() then return end
        local out = tide_check(bin)
        local printed = {}
        for name, value in out:gmatch("\n([%w_.]+)%s+= (%S+)") do printed[name] = value end
        local function shown(v)
            if v == nil then return "none" end
            if type(v) == "number" then
                return string.format(v == math.floor(v) and math.abs(v) < 2^53 and "%d" or "%g", v)
            end
            return tostring(v)
        end
        for _, n in ipairs(UPSTREAMS) do
            local e = effective(policy, n)
            for section, fields in pairs(RULES) do
                if not fields.lo then
                    for field in pairs(fields) do
                        local key = n .. "." .. section .. "." .. field
                        if section == "pool" and field == "size" and e.pool.size == 0 then
                            -- auto: tide prints what it resolved (3 per CPU, 4..64)
                            local v = tonumber(printed[key])
                            assert.truthy(v and v >= 4 and v <= 64, key .. " = " ..
                                          tostring(printed[key]))
                        else
                            assert.are.equal(shown(e[section][field]), printed[key],
                                             key .. "\n" .. out)
                        end
                    end
                end
            end
            assert.are.equal(shown(e.probe_interval), printed[n .. ".probe_interval"])
            assert.are.equal(shown(e.fallback), printed[n .. ".fallback"])
            assert.are.equal(shown(e.required), printed[n .. ".required"])
            assert.are.equal(shown(e.depends_on ~= n and e.depends_on or nil), printed[n .. ".depends_on"])
        end
    end)

    it("falls back from the transaction pooler to direct Postgres", function()
        assert.are.equal("direct", effective(policy, "transaction").fallback)
        assert.is_nil(effective(policy, "direct").fallback)
    end)

    describe("the checker", function()
        -- Each case breaks a copy of the shipped policy one way and names the problem expected.
        local cases = {
            { "zero attempts", function(p) p.defaults.retry.attempts = 0 end, "retry.attempts" },
            { "fractional attempts", function(p) p.upstreams.session.retry = { attempts = 2.5 } end,
              "session.retry.attempts" },
            { "a negative open wait", function(p) p.upstreams.direct.breaker = { open_wait = -1 } end,
              "direct.breaker.open_wait" },
            { "a failure rate above 1", function(p) p.defaults.breaker.failure_rate = 1.5 end,
              "breaker.failure_rate" },
            { "a window beyond what tide holds", function(p)
                p.upstreams.direct.breaker = { window = 2000 } end,
              "direct.breaker.window: 2000 is outside [1, 1024]" },
            { "min_calls beyond the window", function(p) p.defaults.breaker.min_calls = 50 end,
              "min_calls 50 can never be reached" },
            { "a negative pool", function(p) p.upstreams.transaction.pool = { size = -1 } end,
              "transaction.pool.size" },
            { "a NaN statement timeout", function(p) p.defaults.pool.statement_timeout = 0 / 0 end,
              "pool.statement_timeout" },
            { "a base above the cap", function(p) p.defaults.retry.base = 5; p.defaults.retry.cap = 1 end,
              "exceeds cap" },
            { "a misspelt key", function(p) p.upstreams.direct.breakr = { open_wait = 1 } end,
              "upstreams.direct.breakr" },
            { "an unknown fallback", function(p) p.upstreams.session.fallback = "replicas" end,
              "replicas is not an upstream" },
            { "a fallback cycle", function(p) p.upstreams.direct.fallback = "transaction" end,
              "fallback cycle" },
            { "a missing section", function(p) p.defaults.pool = nil end, "pool" },
            { "required not a boolean", function(p) p.defaults.required = "yes" end, "required" },
        }
        for _, case in ipairs(cases) do
            it("rejects " .. case[1], function()
                if not need_schema() then return end
                local p = copy(policy)
                case[2](p)
                local problems = check_policy(p)
                local found = false
                for _, msg in ipairs(problems) do
                    if msg:find(case[3], 1, true) then found = true end
                end
                assert.is_true(found, "expected a problem mentioning '" .. case[3] .. "', got:\n"
                                      .. table.concat(problems, "\n"))
            end)
        end
    end)

    describe("tide's own reader (`tide check` on a broken copy)", function()
        -- The same broken copies, read by the C core through its schema table: each is refused
        -- with a message naming the key, as a SIGHUP reload would refuse the whole bundle.
        -- (A missing section is not among them: the table's defaults fill it in.)
        local cases = {
            { function(p) p.defaults.retry.attempts = 0 end,
              "direct.retry.attempts must be in 1..10, got 0" },
            { function(p) p.upstreams.session.retry = { attempts = 2.5 } end,
              "session.retry.attempts must be an integer" },
            { function(p) p.upstreams.direct.breaker = { open_wait = -1 } end,
              "direct.breaker.open_wait must be in 0..3600, got -1" },
            { function(p) p.defaults.breaker.failure_rate = 1.5 end,
              "direct.breaker.failure_rate must be in 0.01..1, got 1.5" },
            { function(p) p.defaults.breaker.min_calls = 50 end,
              "direct.breaker.min_calls cannot exceed breaker.window" },
            { function(p) p.upstreams.transaction.pool = { size = -1 } end,
              "transaction.pool.size must be in 0..256, got -1" },
            { function(p) p.defaults.pool.statement_timeout = 0 / 0 end,
              "direct.pool.statement_timeout must be a number" },
            { function(p) p.defaults.retry.base = 5; p.defaults.retry.cap = 1 end,
              "direct.retry.base cannot exceed retry.cap" },
            { function(p) p.upstreams.direct.breakr = { open_wait = 1 } end,
              "direct.breakr is not a setting" },
            { function(p) p.upstreams.session.fallback = "replicas" end,
              "session.fallback must be one of direct, session, transaction, replica" },
            { function(p) p.upstreams.direct.fallback = "transaction" end, "fallback cycle" },
            { function(p) p.defaults.required = "yes" end, "direct.required must be true or false" },
            { function(p) p.upstreams.replicas = {} end, "unknown upstream 'replicas'" },
        }
        local dir

        setup(function()
            dir = os.tmpname()
            os.remove(dir)
            -- the other policies (routing) come along; resilience.lua is replaced per case
            assert(os.execute("mkdir -p " .. dir .. " && cp policies/*.lua " .. dir))
        end)

        teardown(function()
            os.execute("rm -rf " .. dir)
        end)

        for _, case in ipairs(cases) do
            it("refuses: " .. case[2], function()
                local bin = tide_bin()
                if not bin then pending("no tide binary (make builds it)") return end
                local p = copy(policy)
                case[1](p)
                local f = assert(io.open(dir .. "/resilience.lua", "w"))
                f:write("return " .. source(p) .. "\n")
                f:close()
                local out, ok = tide_check(bin, dir)
                assert.is_false(ok, out)
                assert.is_truthy(out:find("policies/resilience.lua: " .. case[2], 1, true), out)
            end)
        end
    end)
end)
