/* fuzz_rest.c - libFuzzer target for the /rest/v1 query-string grammar (tide/rest/parse.lua,
 * PostgREST's language): parse.request(qs), the split of a GET /rest/v1/rpc query into
 * arguments and the rest (tide/rest/rpc.lua), and the same bytes as a Prefer and an Accept
 * header (tide/rest/http.lua), a columns= list (tide/rest/write.lua) and a key value that
 * tide.cachetags canonicalises (int, uuid, text, unknown type), on any bytes up to the
 * HTTP head limit, in a LuaJIT state of its own. The Lua code is not instrumented, so this
 * target's strength is its bounds:
 * libFuzzer's -timeout catches an input whose parse is not fast (nesting is bounded, scanning
 * linear), -rss_limit_mb one that holds too much. Checks that hostile input never raises (only
 * nil, err with a PostgREST-shaped error) and that what parses respects the bounds (select
 * items, order terms, or/and depth, at most 8 embeds, one level deep). Run from
 * the repository root (make fuzz does): the modules are under bindings/tide/rest/, and
 * tide.rest.schema reads policies/exposure.lua when it loads. */
#include "lua_target.h"

static const char check_src[] =
    "package.path = 'bindings/?.lua;policies/?.lua;' .. package.path   -- exposure.lua too\n"
    "local parse = require 'tide.rest.parse'\n"
    "local rpc = require 'tide.rest.rpc'\n"
    "local rhttp = require 'tide.rest.http'\n"
    "local write = require 'tide.rest.write'\n"
    "local function depth(nodes, d)\n"
    "  local m = d\n"
    "  for _, n in ipairs(nodes or {}) do\n"
    "    if n.items then m = math.max(m, depth(n.items, d + 1)) end\n"
    "  end\n"
    "  return m\n"
    "end\n"
    "local function items(list)             -- all select items, and the embeds among them\n"
    "  local n, e = 0, 0\n"
    "  for _, it in ipairs(list or {}) do\n"
    "    n = n + 1\n"
    "    if it.embed then\n"
    "      e = e + 1\n"
    "      for _, x in ipairs(it.select) do\n"
    "        assert(not x.embed, 'an embed inside an embed')\n"
    "        n = n + 1\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  return n, e\n"
    "end\n"
    "local cachetags = require 'tide.cachetags'\n"
    "cachetags._set_policy({ tables = { ti = { key = 'k' }, tu = { key = 'k' },\n"
    "                                   ts = { key = 'k' }, tn = { key = 'k' } } })\n"
    "cachetags.learn({ ti = { k = 'bigint' }, tu = { k = 'uuid' }, ts = { k = 'text' } })\n"
    "local function int(k) return k:match('^%-?[1-9]%d*$') or k == '0' end\n"
    "local function uuid(k) return #k == 36 and k:match('^%x+%-%x+%-%x+%-%x+%-%x+$') and\n"
    "                              k == k:lower() end\n"
    "local tag_tables = { ti = int, tu = uuid, tn = function(k) return int(k) or uuid(k) end,\n"
    "                     ts = function(k) return k:find('^[%z\\1-\\127]*$') ~= nil end }\n"
    "return function(s)\n"
    "  if #s > 16384 then return end          -- beyond the HTTP head limit\n"
    "  local sok, rest, args, keys, names = pcall(rpc.split_query, s)\n"
    "  assert(sok, 'rpc.split_query raised: ' .. tostring(rest))\n"
    "  if rest == nil then\n"
    "    assert(type(args) == 'table' and args.status == 400, 'no 400 error table')\n"
    "  else\n"
    "    assert(#names <= rpc.MAX_ARGS and #rest <= #s, 'arguments beyond the bound')\n"
    "    for _, n in ipairs(names) do assert(keys[n], 'a name that is not a key') end\n"
    "  end\n"
    "  -- the same bytes as request headers and a columns= list\n"
    "  local pok, p = pcall(rhttp.preferences, s)\n"
    "  assert(pok and type(p) == 'table' and #p.invalid <= #s, 'preferences: ' .. tostring(p))\n"
    "  local nok, shape, nerr = pcall(rhttp.negotiate, s, rhttp.ANY)\n"
    "  assert(nok, 'negotiate raised: ' .. tostring(shape))\n"
    "  assert(shape ~= nil or (type(nerr) == 'table' and nerr.status == 406), 'negotiate: no "
    "406')\n"
    "  -- the same bytes as a key value a read is tagged by (tide.cachetags): never raises,\n"
    "  -- and names a row only in canonical form\n"
    "  for tbl, canonical in pairs(tag_tables) do\n"
    "    local tok, tags = pcall(cachetags.read, tbl, { k = { eq = s } })\n"
    "    assert(tok and type(tags) == 'table', 'cachetags.read raised: ' .. tostring(tags))\n"
    "    for _, t in ipairs(tags) do\n"
    "      local key = t:match('^' .. tbl .. '/(.*)$')\n"
    "      assert(t == tbl or key == '*' or canonical(key), tbl .. ': tag ' .. t)\n"
    "    end\n"
    "  end\n"
    "  local lok, list, lerr = pcall(write._name_list, s, 'columns')\n"
    "  assert(lok, 'name_list raised: ' .. tostring(list))\n"
    "  assert(list == nil and type(lerr) == 'table' and lerr.status == 400 or\n"
    "         #list <= write.MAX_NAMES, 'name_list: beyond the bound or no 400')\n"
    "  local ok, req, err = pcall(parse.request, s)\n"
    "  assert(ok, 'parse.request raised: ' .. tostring(req))\n"
    "  if req == nil then\n"
    "    assert(type(err) == 'table' and type(err.code) == 'string', 'no error table')\n"
    "    assert(err.status == 400 or err.status == 416, 'status ' .. tostring(err.status))\n"
    "    return\n"
    "  end\n"
    "  assert(depth(req.filters, 0) <= 17, 'nesting beyond the bound')\n"
    "  local n, e = items(req.select)\n"
    "  assert(n <= 100 and #(req.order or {}) <= 32, 'lists beyond bounds')\n"
    "  assert(e <= 8, 'more than 8 embeds')\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_target_run("fuzz_rest", check_src, data, size);
    return 0;
}
