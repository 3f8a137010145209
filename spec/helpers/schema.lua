-- spec/helpers/schema.lua - the settings' schema tables as the C core holds them, read from
-- `tide check --schema` (runtime/config.c's config file and upstream tables, runtime/upstream.c's
-- resilience policy): one row per key with section, key, type, min, max, default, env. The
-- specs check the sample files and the docs against it instead of repeating its numbers.

local _M = {}

-- The tide binary `make` builds (TIDE_BIN under `make asan`), or nil when there is none yet.
function _M.bin()
    local bin = os.getenv("TIDE_BIN") or "build/tide"
    local f = io.open(bin, "rb")
    if not f then return nil end
    f:close()
    return bin
end

local cached

-- The schema {config = rows, upstream = rows, resilience = rows, upstreams = names}, or nil
-- and why when there is no binary yet. Raises when the binary prints something else.
function _M.load()
    if cached then return cached end
    local bin = _M.bin()
    if not bin then return nil, "no tide binary (make builds it)" end
    local p = assert(io.popen(bin .. " check --schema 2>&1"))
    local out = p:read("*a")
    p:close()
    local chunk, err = loadstring(out, "=tide check --schema")
    if not chunk then error("tide check --schema: " .. tostring(err) .. "\n" .. out, 2) end
    local ok, t = pcall(setfenv(chunk, {}))
    if not ok or type(t) ~= "table" or type(t.config) ~= "table" then
        error("tide check --schema printed no schema:\n" .. out, 2)
    end
    cached = t
    return t
end

-- The row of rows named "section.key" (or "key" for a row without a section), or nil.
function _M.row(rows, name)
    for _, r in ipairs(rows) do
        if (r.section and r.section .. "." .. r.key or r.key) == name then return r end
    end
    return nil
end

-- Every environment variable the rows name, as a set; a '*' is each upstream's name,
-- upper-cased (TIDE_DSN_* gives TIDE_DSN_DIRECT, TIDE_DSN_SESSION, TIDE_DSN_TRANSACTION).
function _M.env_names(schema)
    local set = {}
    for _, rows in ipairs { schema.config, schema.upstream, schema.resilience } do
        for _, r in ipairs(rows) do
            if r.env and r.env:find("*", 1, true) then
                for _, u in ipairs(schema.upstreams) do
                    set[(r.env:gsub("%*", u:upper()))] = true
                end
            elseif r.env then
                set[r.env] = true
            end
        end
    end
    return set
end

return _M
