-- spec/unit/schema_spec.lua - the files that repeat the C schema tables agree with them: the
-- sample config (etc/tide.conf.lua: its values are the defaults, its header lists every
-- environment override), the resilience policy (policies/resilience.lua: its `defaults` are
-- the table's), and docs/configuration.md's list of environment variables (each with the key
-- it overrides). The schema is what
-- `tide check --schema` prints (spec/helpers/schema.lua). Each checker is also run on a broken
-- copy, so it cannot pass vacuously.

local schema_h = dofile("spec/helpers/schema.lua")

local function read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

-- Variables that are not settings: they choose the file, the mode, or watching.
local NOT_SETTINGS = { TIDE_CONFIG = true, TIDE_DEV = true, TIDE_WATCH = true }

-- Keys whose value in the sample is not the table's default, and why.
local SAMPLE_NOT_DEFAULT = {
    -- config.c's defaults(): named statements do not survive a transaction-mode pooler
    ["upstreams.transaction.prepare"] = true,
}

-- Problems with value v of row r (named name): type and bounds.
local function check_value(r, v, name, problems)
    local t = r.type
    if t == "int" or t == "size" or t == "number" then
        if type(v) ~= "number" or v ~= v then
            problems[#problems + 1] = name .. ": a number is needed, got " .. tostring(v)
        elseif t ~= "number" and v ~= math.floor(v) then
            problems[#problems + 1] = name .. ": a whole number is needed, got " .. v
        elseif v < r.min or v > r.max then
            problems[#problems + 1] = string.format("%s: %s is outside %s..%s", name,
                                                    tostring(v), tostring(r.min), tostring(r.max))
        end
    elseif t == "bool" and type(v) ~= "boolean" then
        problems[#problems + 1] = name .. ": true or false is needed, got " .. tostring(v)
    elseif t == "string" and type(v) ~= "string" then
        problems[#problems + 1] = name .. ": a string is needed, got " .. tostring(v)
    elseif t == "enum" then
        local ok = false
        for _, n in ipairs(r.names) do ok = ok or n == v end
        if not ok then problems[#problems + 1] = name .. ": " .. tostring(v) .. " is not a name" end
    end
end

-- Checks every key of table t against rows: known, right type and bounds, and (when
-- want_default) equal to the row's default. prefix names the keys in the problems.
local function check_keys(rows, t, prefix, want_default, problems)
    for k, v in pairs(t) do
        local row = schema_h.row(rows, k)
        local name = prefix .. k
        if not row and type(v) == "table" then
            for k2, v2 in pairs(v) do
                local r2 = schema_h.row(rows, k .. "." .. k2)
                if not r2 then
                    problems[#problems + 1] = name .. "." .. k2 .. ": not in the schema"
                else
                    check_value(r2, v2, name .. "." .. k2, problems)
                    if want_default and r2.default ~= nil and v2 ~= r2.default
                       and not SAMPLE_NOT_DEFAULT[name .. "." .. k2] then
                        problems[#problems + 1] = string.format("%s.%s: %s, the schema's default"
                            .. " is %s", name, k2, tostring(v2), tostring(r2.default))
                    end
                end
            end
        elseif not row then
            problems[#problems + 1] = name .. ": not in the schema"
        elseif row.type ~= "table" and row.type ~= "ignored" then
            check_value(row, v, name, problems)
            if want_default and row.default ~= nil and v ~= row.default
               and not SAMPLE_NOT_DEFAULT[name] then
                problems[#problems + 1] = string.format("%s: %s, the schema's default is %s",
                                                        name, tostring(v), tostring(row.default))
            end
        end
    end
end

-- Problems with the sample config table conf: its keys and values against the schema.
local function check_sample(s, conf)
    local problems = {}
    local top = {}
    for k, v in pairs(conf) do if k ~= "upstreams" then top[k] = v end end
    check_keys(s.config, top, "", true, problems)
    for u, t in pairs(conf.upstreams or {}) do
        local known = false
        for _, n in ipairs(s.upstreams) do known = known or n == u end
        if not known then problems[#problems + 1] = "upstreams." .. u .. ": not an upstream" end
        check_keys(s.upstream, t, "upstreams." .. u .. ".", true, problems)
    end
    table.sort(problems)
    return problems
end

-- The TIDE_* names of text, as a set.
local function names_in(text)
    local set = {}
    for n in text:gmatch("TIDE_[%u%d_]*[%u%d]") do set[n] = true end
    return set
end

-- Problems with a list of variables (a set) against the schema's: every override listed,
-- nothing listed that is neither an override nor one of NOT_SETTINGS.
local function check_env_list(s, listed, where)
    local problems = {}
    for n in pairs(schema_h.env_names(s)) do
        if not listed[n] then problems[#problems + 1] = where .. " does not list " .. n end
    end
    for n in pairs(listed) do
        if not schema_h.env_names(s)[n] and not NOT_SETTINGS[n] then
            problems[#problems + 1] = where .. " lists " .. n .. ", which overrides nothing"
        end
    end
    table.sort(problems)
    return problems
end

-- The sample config's header list: the first run of comment lines indented "--   ".
local function sample_env_list(text)
    local lines, started = {}, false
    for line in text:gmatch("[^\n]*") do
        if line:match("^%-%-   ") then
            started = true
            lines[#lines + 1] = line
        elseif started and line ~= "" then
            break
        end
    end
    return names_in(table.concat(lines, "\n"))
end

-- docs/configuration.md's "Environment overrides" section, up to the next heading.
local function docs_env_list(text)
    local section = text:match("\n## Environment overrides\n(.-)\n## ")
    return names_in(section or "")
end

-- Problems with the docs' table rows: the row naming each override names its key too.
local function check_docs_keys(s, text)
    local problems = {}
    local section = text:match("\n## Environment overrides\n(.-)\n## ") or ""
    local function check(r, key)
        for _, u in ipairs(r.env:find("*", 1, true) and s.upstreams or { "" }) do
            local var = r.env:gsub("%*", u:upper())
            local line = section:match("\n(|[^\n]*`" .. var .. "`[^\n]*)")
            if line and not line:find("`" .. key .. "`", 1, true) then
                problems[#problems + 1] = "docs/configuration.md: the row of " .. var
                                          .. " does not name " .. key
            end
        end
    end
    for _, r in ipairs(s.config) do
        if r.env then check(r, r.section and r.section .. "." .. r.key or r.key) end
    end
    for _, r in ipairs(s.upstream) do
        if r.env then check(r, "upstreams.NAME." .. r.key) end
    end
    table.sort(problems)
    return problems
end

-- Problems with the resilience policy p's defaults (their values are the table's) and with
-- each upstream's keys (known, within bounds).
local function check_policy(s, p)
    local problems = {}
    check_keys(s.resilience, p.defaults or {}, "defaults.", true, problems)
    for u, t in pairs(p.upstreams or {}) do
        check_keys(s.resilience, t, "upstreams." .. u .. ".", false, problems)
    end
    -- a default the file leaves out is fine (fallback = nil); one it sets must match
    table.sort(problems)
    return problems
end

local function copy(t)
    if type(t) ~= "table" then return t end
    local c = {}
    for k, v in pairs(t) do c[k] = copy(v) end
    return c
end

describe("the schema tables and the files that repeat them", function()
    local s, why

    setup(function()
        s, why = schema_h.load()
    end)

    local function need_schema()
        if not s then pending(why) return false end
        return true
    end

    it("`tide check --schema` prints the three tables", function()
        if not need_schema() then return end
        assert.is_table(schema_h.row(s.config, "listen.port"))
        assert.are.equal("TIDE_HTTP_PORT", schema_h.row(s.config, "listen.port").env)
        assert.are.equal("TIDE_DSN_*", schema_h.row(s.upstream, "dsn").env)
        assert.are.equal(1024, schema_h.row(s.resilience, "breaker.window").max)
        assert.are.same({ "direct", "session", "transaction", "replica" }, s.upstreams)
    end)

    it("etc/tide.conf.lua's values are the schema's defaults, within its bounds", function()
        if not need_schema() then return end
        local conf = dofile("etc/tide.conf.lua")
        local problems = check_sample(s, conf)
        assert.are.same({}, problems, table.concat(problems, "\n"))
        -- the checker sees a changed default, a value out of bounds and a typo
        local broken = copy(conf)
        broken.http.read_timeout, broken.nice, broken.log.slow_query = 11, 40, 1
        problems = check_sample(s, broken)
        assert.are.same({ "http.read_timeout: 11, the schema's default is 10",
                          "log.slow_query: not in the schema",
                          "nice: 40 is outside -20..19",
                          "nice: 40, the schema's default is 0" }, problems)
    end)

    it("etc/tide.conf.lua's header lists every environment override", function()
        if not need_schema() then return end
        local text = read("etc/tide.conf.lua")
        local problems = check_env_list(s, sample_env_list(text), "etc/tide.conf.lua")
        assert.are.same({}, problems, table.concat(problems, "\n"))
        local broken = text:gsub("TIDE_NICE", "TIDE_NICENESS")
        problems = check_env_list(s, sample_env_list(broken), "etc/tide.conf.lua")
        assert.are.same({ "etc/tide.conf.lua does not list TIDE_NICE",
                          "etc/tide.conf.lua lists TIDE_NICENESS, which overrides nothing" },
                        problems)
    end)

    it("docs/configuration.md lists every environment override", function()
        if not need_schema() then return end
        local text = read("docs/configuration.md")
        local problems = check_env_list(s, docs_env_list(text), "docs/configuration.md")
        assert.are.same({}, problems, table.concat(problems, "\n"))
        problems = check_docs_keys(s, text)
        assert.are.same({}, problems, table.concat(problems, "\n"))
        local broken = text:gsub("`TIDE_WORKERS`", "`TIDE_WORKER`")
        problems = check_env_list(s, docs_env_list(broken), "docs/configuration.md")
        assert.are.same({ "docs/configuration.md does not list TIDE_WORKERS",
                          "docs/configuration.md lists TIDE_WORKER, which overrides nothing" },
                        problems)
        broken = text:gsub("`log.slow_query_ms`", "`log.slow_ms`")
        assert.are.same({ "docs/configuration.md: the row of TIDE_LOG_SLOW_QUERY_MS does not "
                          .. "name log.slow_query_ms" }, check_docs_keys(s, broken))
    end)

    it("policies/resilience.lua's defaults are the schema's", function()
        if not need_schema() then return end
        local p = dofile("policies/resilience.lua")
        local problems = check_policy(s, p)
        assert.are.same({}, problems, table.concat(problems, "\n"))
        local broken = copy(p)
        broken.defaults.breaker.window = 30
        broken.upstreams.session.breaker = { window = 2000 }
        problems = check_policy(s, broken)
        assert.are.same({ "defaults.breaker.window: 30, the schema's default is 20",
                          "upstreams.session.breaker.window: 2000 is outside 1..1024" },
                        problems)
    end)
end)
