-- bench/gen.lua - generates what bench/run.sh's load generators read (all under $BENCH_GEN):
--
--   tokens.lua       one HS256 token per bench user (index 0..999 = user number; tokens.txt:
--                    line n + 1 = user n), minted here with OpenSSL's HMAC through the FFI,
--                    byte for byte what `tide token` makes (checked against a reference token
--                    from `tide token` before writing).
--   embeddings.lua   the request bodies of POST /v1/destinations/similar (one per embedding).
--   pgbench/*.sql    pgbench scripts running the statements tide sends for each route, and
--   pgbench/*.args   their extra pgbench arguments (-D name=value), one per line.
--
-- The statements are not written by hand: each route is run here, in-process, through tide's own
-- boot.lua / router / scripts / tide.db / builder with a fake tide.core that records the
-- (upstream, sql, params) tide would send; a change to the builder or a script therefore changes
-- the pgbench side too. What pgbench cannot do like tide is build a string per transaction:
--   * the claims parameter of the set_config statement is built in SQL from the user number,
--     '{"sub":"' || md5('bench-user-' || :u)::uuid || '","role":"authenticated"}', where tide
--     sends the token's whole payload (sub, role, iat, exp, aud): the same work for Postgres up
--     to a few bytes of JSON;
--   * a parameter that embeds the user id or the search text (the write's JSON rows) is built in
--     SQL the same way and cast to json. Every other parameter is a pgbench variable, sent as an
--     untyped text parameter exactly as tide sends it.
--
-- Usage (from the repository root, run by bench/run.sh):
--   luajit bench/gen.lua GEN_DIR BUNDLE_DIR UUIDS_FILE EMBEDDINGS_FILE REFERENCE_TOKEN
-- env: TIDE_JWT_SECRET (the secret tide serves with), BENCH_TOKEN_TTL (7200),
--      BENCH_EXPECT_UPSTREAM (optional: fail unless every captured call uses this upstream).
-- UUIDS_FILE: user n's uuid on line n + 1. EMBEDDINGS_FILE: one pgvector text per line.

local ffi = require "ffi"

local gen_dir, bundle, uuids_file, emb_file, ref_token = arg[1], arg[2], arg[3], arg[4], arg[5]
if not (gen_dir and bundle and uuids_file and emb_file and ref_token) then
    io.stderr:write("usage: luajit bench/gen.lua GEN_DIR BUNDLE_DIR UUIDS_FILE EMBEDDINGS_FILE " ..
                    "REFERENCE_TOKEN\n")
    os.exit(2)
end
package.path = bundle .. "/scripts/?.lua;" .. bundle .. "/policies/?.lua;bindings/?.lua;" ..
               package.path

local function die(msg)
    io.stderr:write("bench/gen.lua: ", msg, "\n")
    os.exit(1)
end

local function write_file(path, text)
    local f = assert(io.open(path .. ".tmp", "w"))
    f:write(text)
    f:close()
    assert(os.rename(path .. ".tmp", path))
end

local function read_lines(path)
    local out = {}
    for line in io.lines(path) do
        if line ~= "" then out[#out + 1] = line end
    end
    return out
end

local NUSERS, NTRIPS, TRIP_BASE = 1000, 100000, 1000000

local uuids = read_lines(uuids_file)
if #uuids ~= NUSERS then die(uuids_file .. ": expected " .. NUSERS .. " uuids, got " .. #uuids) end
local embeddings = read_lines(emb_file)
if #embeddings < 1 then die(emb_file .. ": no embeddings") end

---------------------------------------------------------------------------------------------
-- tokens

ffi.cdef [[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);
]]
local crypto = ffi.load("crypto")

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local function b64url(s)
    local out, n = {}, #s
    for i = 1, n, 3 do
        local a, b, c = s:byte(i, i + 2)
        local v = a * 65536 + (b or 0) * 256 + (c or 0)
        local chunk = {}
        for j = 1, 4 do
            local idx = math.floor(v / 2 ^ (6 * (4 - j))) % 64
            chunk[j] = B64:sub(idx + 1, idx + 1)
        end
        local keep = (c and 4) or (b and 3) or 2
        out[#out + 1] = table.concat(chunk, "", 1, keep)
    end
    return table.concat(out)
end

local function b64url_decode(s)
    local map = {}
    for i = 1, 64 do map[B64:byte(i)] = i - 1 end
    local bytes, bits, nbits = {}, 0, 0
    for i = 1, #s do
        local v = map[s:byte(i)]
        if v == nil then die("bad base64url in the reference token") end
        bits = bits * 64 + v
        nbits = nbits + 6
        if nbits >= 8 then
            nbits = nbits - 8
            local byte = math.floor(bits / 2 ^ nbits)
            bytes[#bytes + 1] = string.char(byte)
            bits = bits - byte * 2 ^ nbits
        end
    end
    return table.concat(bytes)
end

local secret = os.getenv("TIDE_JWT_SECRET")
if not secret or #secret < 32 then die("TIDE_JWT_SECRET must be set (32+ characters)") end
local md = ffi.new("unsigned char[32]")
local mdlen = ffi.new("unsigned int[1]")
local function sign(input)
    if crypto.HMAC(crypto.EVP_sha256(), secret, #secret, input, #input, md, mdlen) == nil then
        die("HMAC failed")
    end
    return input .. "." .. b64url(ffi.string(md, mdlen[0]))
end

local HEADER = b64url('{"alg":"HS256","typ":"JWT"}')
-- jansson's compact output, keys in tide_jwt_sign's order.
local function token(sub, iat, ttl)
    local payload = string.format(
        '{"sub":"%s","role":"authenticated","iat":%d,"exp":%d,"aud":"authenticated"}',
        sub, iat, iat + ttl)
    return sign(HEADER .. "." .. b64url(payload))
end

-- Self-check: re-sign the reference token's header.payload; decode its payload and rebuild it.
do
    local h, p = ref_token:match("^([^.]+)%.([^.]+)%.[^.]+$")
    if not h then die("the reference token is not a JWT: " .. ref_token) end
    if sign(h .. "." .. p) ~= ref_token then
        die("HMAC-SHA256 here does not reproduce `tide token`'s signature (secret mismatch?)")
    end
    local payload = b64url_decode(p)
    local iat, exp = payload:match('"iat":(%d+),"exp":(%d+)')
    if not iat then die("unexpected reference payload: " .. payload) end
    if token(uuids[1], tonumber(iat), tonumber(exp) - tonumber(iat)) ~= ref_token then
        die("tokens minted here differ from `tide token`'s (payload layout changed?): " .. payload)
    end
end

do
    local ttl = tonumber(os.getenv("BENCH_TOKEN_TTL") or "7200")
    local now = os.time()
    local out = { "-- generated by bench/gen.lua: HS256 tokens of bench users 0..999 (ttl " ..
                  ttl .. " s)\nlocal t = {}\n" }
    for n = 0, NUSERS - 1 do
        out[#out + 1] = string.format("t[%d] = %q\n", n, token(uuids[n + 1], now, ttl))
    end
    out[#out + 1] = "return t\n"
    write_file(gen_dir .. "/tokens.lua", table.concat(out))
    local lines = {}
    for n = 0, NUSERS - 1 do lines[n + 1] = out[n + 2]:match('"(.*)"') end
    write_file(gen_dir .. "/tokens.txt", table.concat(lines, "\n") .. "\n")
end

---------------------------------------------------------------------------------------------
-- request bodies for the vector workload

local function similar_body(emb)
    return '{"embedding":' .. emb .. ',"limit":10}'
end

do
    local out = { "-- generated by bench/gen.lua: POST /v1/destinations/similar bodies\nreturn {\n" }
    for i = 1, #embeddings do
        out[#out + 1] = string.format("%q,\n", similar_body(embeddings[i]))
    end
    out[#out + 1] = "}\n"
    write_file(gen_dir .. "/embeddings.lua", table.concat(out))
end

---------------------------------------------------------------------------------------------
-- the statements tide sends: the routes run through tide's Lua with a recording fake core

local json = require "tide.json"
local boot = require "tide.boot"
local db = require "tide.db"

local calls = {}
local fake = {
    log = function() end,
    request_id = function() return "bench" end,
    cache_skip = function() end,
    query = function(upstream, sql, params, q)
        calls[#calls + 1] = { upstream = upstream, sql = sql, params = params, kind = q.kind }
        -- A plausible answer for each shape of call, so the handler completes normally.
        if q.kind == "select" then
            return sql:find("^SELECT CASE count") and '{"id":1}' or "[]"
        elseif q.kind == "insert" then
            return '[{"id":1}]'
        end
        return "[]"
    end,
}
fake.pool_stats = function() return {} end
boot._set_core(fake)
db._set_core(fake)
boot.load({ "trips", "search_history", "destinations" })

local SENTINEL_SUB = "5e5e5e5e-0000-4000-8000-00000000beef"
local SENTINEL_Q = "QSENTINEL"

-- Runs one request through boot.handle; returns the single db call it made.
local function capture(method, path, body)
    calls = {}
    local qpos = path:find("?", 1, true)
    local req = {
        method = method, path = qpos and path:sub(1, qpos - 1) or path,
        query_string = qpos and path:sub(qpos + 1) or nil,
        headers = body and { ["content-type"] = "application/json" } or {},
        body = body, role = "authenticated", id = "bench",
        claims = { sub = SENTINEL_SUB, role = "authenticated" },
    }
    -- routed as C's router does before boot.handle runs (runtime/router.c: route_id, params)
    local status, text = boot.handle(boot._route(req))
    if status >= 300 then die(method .. " " .. path .. " answered " .. status .. ": " .. text) end
    if #calls ~= 1 then die(method .. " " .. path .. " made " .. #calls .. " db calls, expected 1") end
    return calls[1]
end

local function sql_quote(s)
    return "'" .. s:gsub("'", "''") .. "'"
end

-- Writes GEN/pgbench/NAME.sql and NAME.args. call: a captured call; vars: pgbench lines that set
-- the per-transaction variables (:u = the user number); bind(i, value) returns how parameter i
-- is sent: {var = "name"} (an existing variable), {expr = "sql"} (built in SQL), or nil for a
-- constant (a \set for an integer, -D for anything else).
-- The statement tide sends before each one (runtime/pgconn.c's AUTH_SQL, read from the source so
-- that a change there reaches pgbench too). Each set_config('name', $n, ...) parameter becomes:
-- request.jwt.claims -> the claims built in SQL; role -> :role; statement_timeout -> the value
-- tide sends for the direct upstream (policies/resilience.lua, in milliseconds).
local auth_defines = {}
local AUTH = (function()
    local f = io.open("runtime/pgconn.c")
    if not f then die("runtime/pgconn.c not found (run from the repository root)") end
    local src = f:read("*a")
    f:close()
    local def = src:match("#define%s+AUTH_SQL%s+(.-[^\\])\n")
    if not def then die("no #define AUTH_SQL in runtime/pgconn.c") end
    local parts = {}
    for lit in def:gmatch('"(.-)"') do parts[#parts + 1] = lit end
    local sql = table.concat(parts)
    if sql == "" or sql:find('\\') then die("cannot read AUTH_SQL from runtime/pgconn.c: " .. def) end
    sql = sql:gsub("set_config%('([%w_.]+)', %$(%d+)", function(name)
        local value
        if name == "request.jwt.claims" then
            value = "'{\"sub\":\"' || md5('bench-user-' || :u)::uuid || '\",\"role\":\"authenticated\"}'"
        elseif name == "role" then
            value = ":role"
        elseif name == "application_name" then
            value = "'tide'"                -- tide sends the request id: a few bytes alike
        elseif name == "statement_timeout" then
            -- direct's pool.statement_timeout as tide reads it: upstreams.direct over defaults
            local ok, p = pcall(require, "resilience")
            if not ok or type(p) ~= "table" then
                die("statement_timeout: cannot load policies/resilience.lua: " .. tostring(p))
            end
            local own = p.upstreams and p.upstreams.direct and p.upstreams.direct.pool or {}
            local st = own.statement_timeout
            if st == nil then st = p.defaults and p.defaults.pool and p.defaults.pool.statement_timeout end
            if type(st) ~= "number" then
                die("statement_timeout: policies/resilience.lua sets no pool.statement_timeout " ..
                    "(tide's built-in default: see `tide check`)")
            end
            auth_defines[#auth_defines + 1] = string.format("-Dstatement_timeout=%.0f", st * 1000)
            value = ":statement_timeout"
        else
            die("runtime/pgconn.c's AUTH_SQL sets " .. name .. ": teach bench/gen.lua what tide sends for it")
        end
        return "set_config('" .. name .. "', " .. value
    end)
    -- the read-only switch (db.* with read_only = true, /rest/v1 reads): false for the routes
    -- the bench runs, which never ask for it
    sql = sql:gsub("case when %$%d+ then set_config%('transaction_read_only'",
                   "case when false then set_config('transaction_read_only'")
    if sql:find("%$%d") then die("AUTH_SQL has parameters bench/gen.lua did not map: " .. sql) end
    return sql .. ";"
end)()
local function pgbench_script(name, call, vars, bind, defines)
    local lines, args = { "-- generated by bench/gen.lua from tide's own statement for " .. name ..
                          " (upstream " .. call.upstream .. ")" }, {}
    for _, v in ipairs(vars) do lines[#lines + 1] = v end
    local subst = {}
    for i = 1, call.params.n do
        local v = call.params[i]
        local b = bind(i, v)
        if b and b.var then
            subst[i] = ":" .. b.var
        elseif b and b.expr then
            subst[i] = b.expr
        else
            local pname = "p" .. i
            if type(v) == "number" and v % 1 == 0 then
                lines[#lines + 1] = "\\set " .. pname .. " " .. string.format("%d", v)
            elseif type(v) == "string" or type(v) == "number" then
                local text = type(v) == "number" and string.format("%.17g", v) or v
                if text:find("[\n\r]") then die(name .. ": parameter " .. i .. " has a newline") end
                args[#args + 1] = "-D" .. pname .. "=" .. text
            else
                die(name .. ": cannot pass parameter " .. i .. " (" .. type(v) .. ")")
            end
            subst[i] = ":" .. pname
        end
    end
    if call.sql:find("[\n\r;:]") and call.sql:gsub("::", ""):find("[\n\r;:]") then
        die(name .. ": the statement has a newline, ';' or ':' pgbench would misread: " .. call.sql)
    end
    local sql = call.sql:gsub("%$(%d+)", function(n)
        local s = subst[tonumber(n)]
        if not s then die(name .. ": statement refers to $" .. n .. " beyond its parameters") end
        return s
    end)
    lines[#lines + 1] = "\\startpipeline"
    lines[#lines + 1] = AUTH
    lines[#lines + 1] = sql .. ";"
    lines[#lines + 1] = "\\endpipeline"
    args[#args + 1] = "-Drole=authenticated"
    for _, d in ipairs(auth_defines) do args[#args + 1] = d end
    for _, d in ipairs(defines or {}) do args[#args + 1] = d end
    write_file(gen_dir .. "/pgbench/" .. name .. ".sql", table.concat(lines, "\n") .. "\n")
    write_file(gen_dir .. "/pgbench/" .. name .. ".args", table.concat(args, "\n") .. "\n")
end

local summary = {}
local expect = os.getenv("BENCH_EXPECT_UPSTREAM")
local function note(name, call)
    if expect and expect ~= "" and call.upstream ~= expect then
        die(name .. ": the bundle's policy routes it to " .. call.upstream .. ", expected " .. expect)
    end
    summary[#summary + 1] = string.format("%-8s %-12s %s", name, call.upstream, call.sql)
end

-- 1. point read: trip k = 1..100000 has id 1000000 + k and owner (k - 1) % 1000.
do
    local id = TRIP_BASE + 1
    local call = capture("GET", "/v1/trips/" .. id)
    note("point", call)
    pgbench_script("point", call, {
        "\\set k random(1, " .. NTRIPS .. ")",
        "\\set u (:k - 1) % " .. NUSERS,
        "\\set id " .. TRIP_BASE .. " + :k",
    }, function(_, v) if v == id then return { var = "id" } end end)
end

-- 2. list: a random user's newest 20.
do
    local call = capture("GET", "/v1/trips?limit=20")
    note("list", call)
    pgbench_script("list", call, { "\\set u random(0, " .. (NUSERS - 1) .. ")" },
                   function() return nil end)
end

-- 3. write: a random user records a search.
do
    local body = json.encode({ search_type = "destination", query = { q = SENTINEL_Q } })
    local call = capture("POST", "/v1/search-history", body)
    note("write", call)
    pgbench_script("write", call, {
        "\\set u random(0, " .. (NUSERS - 1) .. ")",
        "\\set q random(1, 1000000)",
    }, function(_, v)
        if type(v) == "string" and (v:find(SENTINEL_SUB, 1, true) or v:find(SENTINEL_Q, 1, true)) then
            local e = sql_quote(v)
            e = e:gsub(SENTINEL_SUB:gsub("%-", "%%-"),
                       "' || md5('bench-user-' || :u)::uuid || '")
            e = e:gsub(SENTINEL_Q, "bench ' || :q || '")
            local first = v:sub(1, 1)
            return { expr = "(" .. e .. ")::" .. ((first == "[" or first == "{") and "json" or "text") }
        end
    end)
end

-- 4. vector: one script per embedding (pgbench picks one at random per transaction); the
-- embedding is the parameter tide itself sent for that body.
do
    for i = 1, #embeddings do
        local call = capture("POST", "/v1/destinations/similar", similar_body(embeddings[i]))
        if i == 1 then note("vector", call) end
        local ev = nil
        pgbench_script(string.format("vector_%02d", i), call,
                       { "\\set u random(0, " .. (NUSERS - 1) .. ")" },
                       function(_, v)
                           if type(v) == "string" and v:sub(1, 1) == "[" then
                               ev = v
                               return { var = "emb" .. i }
                           end
                       end, nil)
        if not ev then die("vector: no embedding parameter found") end
        -- the embedding goes in as -Demb<i>=...; append it to that script's args
        local f = assert(io.open(string.format("%s/pgbench/vector_%02d.args", gen_dir, i), "a"))
        f:write("-Demb", i, "=", ev, "\n")
        f:close()
    end
end

write_file(gen_dir .. "/statements.txt", table.concat(summary, "\n") .. "\n")
io.write(table.concat(summary, "\n"), "\n")
