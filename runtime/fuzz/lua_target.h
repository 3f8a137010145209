/* lua_target.h - the harness of the fuzz targets whose code under test is Lua (fuzz_json.c,
 * fuzz_rest.c): one LuaJIT state per process, made on the first input from a chunk that returns
 * check(s); every input is passed to check, and an error raised by it aborts (a finding). The
 * state is closed at exit, so what the Lua side allocated is freed before LeakSanitizer looks.
 * Include it once, from the target's .c file. */
#ifndef TIDE_FUZZ_LUA_TARGET_H
#define TIDE_FUZZ_LUA_TARGET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

static lua_State *lua_target_L;

static void lua_target_done(void) { lua_close(lua_target_L); }

/* The state's memory comes from malloc, so ASan sees (and checks the bounds of) every block
 * LuaJIT uses. Leak checks are off for these targets (runtime/fuzz/run.sh): LuaJIT's tagged
 * pointers hide live objects from LeakSanitizer; -rss_limit_mb bounds their memory instead. */
static void *lua_target_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}

/* Runs check_src's check function on the input; name prefixes the messages. */
static void lua_target_run(const char *name, const char *check_src, const uint8_t *data,
                           size_t size)
{
    lua_State *L = lua_target_L;
    if (!L) {
        L = lua_target_L = lua_newstate(lua_target_alloc, NULL);
        atexit(lua_target_done);
        luaL_openlibs(L);
        if (luaL_dostring(L, check_src) != 0) {
            fprintf(stderr, "%s: %s\n", name, lua_tostring(L, -1));
            abort();
        }
        lua_setglobal(L, "check");
    }
    lua_getglobal(L, "check");
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, 0) != 0) {
        fprintf(stderr, "%s: %s\n", name, lua_tostring(L, -1));
        abort();
    }
    lua_gc(L, LUA_GCSTEP, 64);
}

#endif
