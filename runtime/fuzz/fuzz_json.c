/* fuzz_json.c - libFuzzer target for request-body JSON decoding: bindings/tide/json.lua's
 * decode(text, 64, 10000) as boot.handle calls it, in a LuaJIT state of its own. The Lua and
 * cjson code is not instrumented, so this target's strength is its bounds: libFuzzer's -timeout
 * catches any input whose decode is not fast (the decoder must be linear in its input) and
 * -rss_limit_mb any that holds too much memory; ASan checks what C code runs. For inputs that
 * do not decode, the answer is an error table (a 400 with a code and a message); for inputs that
 * decode, it checks the round trip: decode(encode(v)) is v again, empty arrays included.
 * Run from the repository root (make fuzz does): it loads bindings/tide/json.lua. */
#include "lua_target.h"

static const char check_src[] =
    "package.path = 'bindings/?.lua;' .. package.path\n"
    "local json = require 'tide.json'\n"
    "local function same(a, b)\n"
    "  if type(a) ~= type(b) then return false end\n"
    "  if type(a) ~= 'table' then return a == b end\n"
    "  if (getmetatable(a) == json.array_mt) ~= (getmetatable(b) == json.array_mt)\n"
    "     and (next(a) == nil or next(b) == nil) then return false end\n"
    "  for k, v in pairs(a) do if not same(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "return function(s)\n"
    "  local v, err = json.decode(s, 64, 10000)\n"
    "  if v == nil then\n"
    "    assert(type(err) == 'table' and err.status == 400 and type(err.code) == 'string'\n"
    "           and type(err.message) == 'string', 'decode failed without an error table')\n"
    "    return\n"
    "  end\n"
    "  if not json.all_finite(v) then return end\n"
    "  local ok, e1 = pcall(json.encode, v)\n"
    "  if not ok then return end   -- e.g. a sparse array, refused by encode on purpose\n"
    "  local v2, err2 = json.decode(e1, 64)\n"
    "  assert(v2 ~= nil, err2 and err2.message)\n"
    "  assert(same(v, v2), 'decode(encode(v)) differs from v: ' .. e1)\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_target_run("fuzz_json", check_src, data, size);
    return 0;
}
