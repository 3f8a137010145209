-- Every default port the project listens on (the local stack, the bench's stack and tides, the
-- sample config) lies below Linux's ephemeral range: a port inside it can be taken at any moment
-- as the source port of an outgoing connection, and the next `db/stack.sh up` fails with
-- "Address already in use".

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- the first port Linux may hand out to an outgoing connection: 32768 by default, lower if
-- this machine says so
local function ephemeral_low()
  local low = 32768
  local f = io.open("/proc/sys/net/ipv4/ip_local_port_range", "rb")
  if f then
    local first = tonumber((f:read("*a") or ""):match("^%s*(%d+)"))
    f:close()
    if first and first < low then low = first end
  end
  return low
end

-- defaults: a list of { where, port } found by the patterns in one file
local function defaults(path, patterns)
  local text, found = read(path), {}
  for _, pat in ipairs(patterns) do
    for name, port in text:gmatch(pat) do
      found[#found + 1] = { where = path .. ": " .. name, port = tonumber(port) }
    end
  end
  return found
end

-- db/stack.sh's defaults that follow TIDE_PG_PORT (`setting NAME "$((PG_PORT + N))"`), at
-- TIDE_PG_PORT's own default
local function derived(path, base)
  local found = {}
  for name, off in read(path):gmatch('setting (TIDE_[%u_]+PORT) "?%$%(%(PG_PORT %+ (%d+)%)%)"?') do
    found[#found + 1] = { where = path .. ": " .. name, port = base + tonumber(off) }
  end
  return found
end

describe("default ports", function()
  local all = {}
  local function add(list) for _, d in ipairs(list) do all[#all + 1] = d end end
  local literal = defaults("db/stack.sh", { "setting (TIDE_[%u_]+PORT) (%d+)" })
  add(literal)
  for _, d in ipairs(literal) do
    if d.where:find("TIDE_PG_PORT$") then add(derived("db/stack.sh", d.port)) end
  end
  add(defaults("bench/run.sh", { "(BENCH_[%u_]+PORT):%-(%d+)" }))
  add(defaults("etc/tide.conf.lua", { "(%a+)%s*=%s*{[^}]-port = (%d+)", "(dsn)[^\n]-@127%.0%.0%.1:(%d+)/" }))

  it("are found in the stack, the bench and the sample config", function()
    local stack, bench, conf = 0, 0, 0
    for _, d in ipairs(all) do
      if d.where:find("^db/stack") then stack = stack + 1
      elseif d.where:find("^bench/") then bench = bench + 1
      else conf = conf + 1 end
    end
    assert.are.equal(4, stack)   -- Postgres, the two poolers, the replica
    assert.is_true(bench >= 6, "bench ports found: " .. bench)
    assert.are.equal(5, conf)   -- listen, admin and the three upstream DSNs
  end)

  it("lie below the kernel's ephemeral port range", function()
    local low = ephemeral_low()
    for _, d in ipairs(all) do
      assert.is_true(d.port >= 1024 and d.port < low,
        ("%s = %d lies outside 1024..%d"):format(d.where, d.port, low - 1))
    end
  end)

  it("of the local stack differ from each other", function()
    local seen = {}
    for _, d in ipairs(all) do
      if d.where:find("^db/stack") then
        assert.is_nil(seen[d.port], d.where .. " and " .. tostring(seen[d.port]) .. " share " .. d.port)
        seen[d.port] = d.where
      end
    end
  end)

  it("of the local stack and the bench's stack differ, so both can run at once", function()
    local stack, bench = {}, {}
    for _, d in ipairs(all) do
      if d.where:find("^db/stack") then stack[d.port] = d.where end
      if d.where:find("^bench/") then bench[d.port] = d.where end
    end
    for port, where in pairs(stack) do
      assert.is_nil(bench[port], where .. " and " .. tostring(bench[port]) .. " share " .. port)
    end
  end)

  it("of the sample config's upstreams are the local stack's", function()
    local stack = {}
    for _, d in ipairs(all) do
      if d.where:find("^db/stack") then stack[d.port] = true end
    end
    for _, d in ipairs(all) do
      if d.where:find("dsn$") then
        assert.is_true(stack[d.port] ~= nil, d.where .. " port " .. d.port .. " is not the stack's")
      end
    end
  end)
end)
