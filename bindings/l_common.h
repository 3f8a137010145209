/* l_common.h - private to the tide.core binding (bindings/l_*.c): what its API areas share.
 * l_core.c defines these and builds the module from each area's function list. */
#ifndef TIDE_L_COMMON_H
#define TIDE_L_COMMON_H

#include <lua.h>
#include <lauxlib.h>

#include "../runtime/luavm.h"

/* The metatable every error table carries, C-made or Lua-made (tide.errors takes the same one
 * from the registry), so tide.boot recognises one wherever a handler returns it. */
#define ERROR_MT "tide.error"

/* The module's functions by area, each list ending in { NULL, NULL }. */
extern const luaL_Reg tide__l_db_fns[];
extern const luaL_Reg tide__l_cache_fns[];
extern const luaL_Reg tide__l_crypto_fns[];
extern const luaL_Reg tide__l_sys_fns[];

/* The vm: every function's upvalue 1. */
static inline tide_vm *core_vm(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

/* Raises a misuse error (a bug in the calling script: a call out of place, an argument of the
 * wrong kind) positioned as tide.errors.misuse positions its own: at the first frame outside
 * tide's own modules, the script author's line, not the tide.* wrapper that called in. It
 * calls that function, so the rule lives in one place; without tide.errors loaded it falls
 * back to luaL_error (the immediate Lua caller). fmt takes lua_pushfstring's formats. Never
 * returns. */
int tide__l_misuse(lua_State *L, const char *fmt, ...);

/* Pushes an error table (ERROR_MT): code, message, details and hint (json.null when NULL),
 * status. */
void tide__l_push_err(lua_State *L, const char *code, int status, const char *msg,
                      const char *detail, const char *hint);

#endif
