/* fuzz_json.c - libFuzzer target for request-body JSON decoding: bindings/tide/json.lua's
 * decode(text, 64, 10000) as boot.handle calls it, in a LuaJIT state of its own. The Lua and
 * cjson code is not instrumented, so this target's strength is its bounds: libFuzzer's -timeout
 * catches any input whose decode is not fast (the decoder must be linear in its input) and
 * -rss_limit_mb any that holds too much memory; ASan checks what C code runs. For inputs that
 * decode, it checks the round trip: decode(encode(v)) is v again, empty arrays included.
 * Run from the repository root (make fuzz does): it loads bindings/tide/json.lua. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

static lua_State *L;

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
    "    assert(type(err) == 'string', 'decode failed without a message')\n"
    "    return\n"
    "  end\n"
    "  if not json.all_finite(v) then return end\n"
    "  local ok, e1 = pcall(json.encode, v)\n"
    "  if not ok then return end   -- e.g. a sparse array, refused by encode on purpose\n"
    "  local v2, err2 = json.decode(e1, 64)\n"
    "  assert(v2 ~= nil, err2)\n"
    "  assert(same(v, v2), 'decode(encode(v)) differs from v: ' .. e1)\n"
    "end\n";

static void done(void)
{
    lua_close(L);
}

/* The state is closed at exit, which frees what cjson allocated. */
static void init(void)
{
    L = luaL_newstate();
    atexit(done);
    luaL_openlibs(L);
    if (luaL_dostring(L, check_src) != 0) {
        fprintf(stderr, "fuzz_json: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_setglobal(L, "check");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!L) init();
    lua_getglobal(L, "check");
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, 0) != 0) {
        fprintf(stderr, "fuzz_json: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_gc(L, LUA_GCSTEP, 64);
    return 0;
}
