/* l_core.c - the `tide.core` Lua module (l_core.h): the C calls that the Lua modules in
 * bindings/tide build on, by API area (lua-nginx-module style: a call that would block yields;
 * misuse raises a Lua error; runtime failure returns nil, err):
 *   l_db.c      database calls (query, tx_begin, tx_end), the result conversion, the pools'
 *               figures and the schema generation;
 *   l_cache.c   the result cache (cache_depend, cache_skip, cache_invalidate, cache_get,
 *               cache_set);
 *   l_crypto.c  sealing and hashing (seal, open, sha256_hex, keyed_hash_hex);
 *   l_sys.c     the process and the request (log, now, request_id, health, wait, wake).
 * This file builds the module table from the areas' lists and holds what they share
 * (l_common.h). The vm is every function's upvalue 1.
 *
 * Every function is registered through counted(), which counts the C<->Lua crossings of the
 * running request (tide_vm_crossings): the call, and its return unless it yielded. */
#include <stdarg.h>
#include <lua.h>
#include <lauxlib.h>

#include "l_core.h"
#include "l_common.h"

int tide__l_misuse(lua_State *L, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    int msg = lua_gettop(L);
    lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "tide.errors");
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "misuse");
            if (lua_isfunction(L, -1)) {
                lua_pushvalue(L, msg);
                lua_call(L, 1, 0); /* raises */
            }
        }
    }
    lua_settop(L, msg);
    return luaL_error(L, "%s", lua_tostring(L, msg));
}

void tide__l_push_err(lua_State *L, const char *code, int status, const char *msg,
                      const char *detail, const char *hint)
{
    lua_createtable(L, 0, 5);
    luaL_getmetatable(L, ERROR_MT);
    if (lua_istable(L, -1)) lua_setmetatable(L, -2);
    else lua_pop(L, 1);
    lua_pushstring(L, code);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, msg ? msg : "");
    lua_setfield(L, -2, "message");
    if (detail) lua_pushstring(L, detail);
    else lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "details");
    if (hint) lua_pushstring(L, hint);
    else lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "hint");
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
}

static const luaL_Reg *const areas[] = { tide__l_db_fns, tide__l_cache_fns, tide__l_crypto_fns,
                                         tide__l_sys_fns };

/* Calls the luaL_Reg in upvalue 2 (its upvalue 1, the vm, is this closure's), counting the
 * crossings. */
static int counted(lua_State *L)
{
    tide__vm_crossing(1);
    const luaL_Reg *f = lua_touserdata(L, lua_upvalueindex(2));
    int n = f->func(L);
    if (lua_status(L) != LUA_YIELD) tide__vm_crossing(1); /* returned to Lua */
    return n;
}

int tide_core_open(lua_State *L)
{
    void *vm = lua_touserdata(L, lua_upvalueindex(1));
    if (luaL_newmetatable(L, ERROR_MT)) { /* unless tide.errors made it first */
        lua_pushliteral(L, ERROR_MT);
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
    lua_newtable(L);
    for (size_t a = 0; a < sizeof areas / sizeof areas[0]; a++) {
        for (const luaL_Reg *f = areas[a]; f->name; f++) {
            lua_pushlightuserdata(L, vm);
            lua_pushlightuserdata(L, (void *)f);
            lua_pushcclosure(L, counted, 2);
            lua_setfield(L, -2, f->name);
        }
    }
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    return 1;
}
