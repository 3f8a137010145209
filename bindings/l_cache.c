/* l_cache.c - tide.core's result cache calls (l_core.c, runtime/rcache.h): what the current
 * request's answer depends on (cache_depend, cache_skip), invalidation (cache_invalidate) and
 * the entries a script stores itself (cache_get, cache_set: tide.cache). */
#include <stddef.h>
#include <lua.h>
#include <lauxlib.h>

#include "l_common.h"
#include "../runtime/cache.h"
#include "../runtime/error.h"
#include "../runtime/rcache.h"
#include "../runtime/task_api.h"

/* core.cache_depend(tag, ...): what the current request's reads depend on. */
static int l_cache_depend(lua_State *L)
{
    tide_task *t = tide_task_current();
    int n = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        size_t len;
        const char *tag = luaL_checklstring(L, i, &len);
        if (t) tide_rcache_depend(tide_task_cache_req(t), tag, len);
    }
    return 0;
}

/* core.cache_skip(): the current request's answer must not be stored. */
static int l_cache_skip(lua_State *L)
{
    (void)L;
    tide_task *t = tide_task_current();
    if (t) tide_rcache_skip(tide_task_cache_req(t));
    return 0;
}

/* core.cache_invalidate(tag, ...): entries tagged so, read before now, are not served again.
 * A request that writes is not stored either. */
static int l_cache_invalidate(lua_State *L)
{
    tide_app *app = tide_vm_app(core_vm(L));
    tide_task *t = tide_task_current();
    int n = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        size_t len;
        const char *tag = luaL_checklstring(L, i, &len);
        tide_rcache_invalidate(app, tag, len);
    }
    if (t) tide_rcache_skip(tide_task_cache_req(t));
    return 0;
}

static const char *const scope_opts[] = { "public", "role", "user", "claims", NULL };

static tide_task *cache_task(lua_State *L, tide_cache_ident *who)
{
    tide_task *t = tide_task_current();
    if (!t) {
        tide__l_misuse(L, "tide.cache is only available while handling a request");
        return NULL; /* not reached: misuse raises */
    }
    who->role = tide_task_role(t);
    who->sub = tide_task_sub(t);
    who->claims = tide_task_claims(t);
    return t;
}

/* core.cache_get(key, scope, stale_if_error) -> value, age, stale | nil */
static int l_cache_get(lua_State *L)
{
    size_t klen;
    const char *key = luaL_checklstring(L, 1, &klen);
    int scope = luaL_checkoption(L, 2, NULL, scope_opts);
    double sie = luaL_optnumber(L, 3, 0);
    tide_cache_ident who;
    cache_task(L, &who);
    const void *v;
    size_t vlen;
    double age;
    int stale;
    if (!tide_rcache_script_get(tide_vm_app(core_vm(L)), &who, scope, key, klen, sie, &v, &vlen,
                                &age, &stale)) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushlstring(L, v, vlen);
    lua_pushnumber(L, age);
    lua_pushboolean(L, stale);
    return 3;
}

/* core.cache_set(key, value, scope, ttl, swr, sie, {tags}) -> true | nil, err: err an error
 * table, code TIDE_CACHE_RACED (409: a tag moved since the request began), TIDE_CACHE_TOO_BIG
 * (500: over an eighth of cache.max_bytes), TIDE_CACHE_OFF (503: no cache) or TIDE_CACHE_ERROR
 * (500) */
static int l_cache_set(lua_State *L)
{
    size_t klen, vlen;
    const char *key = luaL_checklstring(L, 1, &klen);
    const char *value = luaL_checklstring(L, 2, &vlen);
    int scope = luaL_checkoption(L, 3, NULL, scope_opts);
    double ttl = luaL_checknumber(L, 4), swr = luaL_optnumber(L, 5, 0);
    double sie = luaL_optnumber(L, 6, 0);
    const char *tags[TIDE_CACHE_MAX_TAGS];
    size_t tlens[TIDE_CACHE_MAX_TAGS];
    int ntags = 0;
    if (!lua_isnoneornil(L, 7)) {
        luaL_checktype(L, 7, LUA_TTABLE);
        int n = (int)lua_objlen(L, 7);
        if (n > TIDE_CACHE_MAX_TAGS) tide__l_misuse(L, "at most %d tags", TIDE_CACHE_MAX_TAGS);
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, 7, i);
            if (lua_type(L, -1) != LUA_TSTRING) tide__l_misuse(L, "tags must be strings");
            tags[ntags] = lua_tolstring(L, -1, &tlens[ntags]);
            ntags++;
            lua_pop(L, 1); /* the table keeps the string alive */
        }
    }
    if (!(ttl > 0)) tide__l_misuse(L, "ttl must be a positive number of seconds");
    tide_cache_ident who;
    tide_task *t = cache_task(L, &who);
    int rc = tide_rcache_script_set(tide_vm_app(core_vm(L)), &who, scope, key, klen, value, vlen,
                                    ttl, swr, sie, tide_task_born(t), tags, tlens, ntags);
    if (rc == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    if (rc == TIDE_EAGAIN)
        tide__l_push_err(L, "TIDE_CACHE_RACED", 409,
                         "not stored: a write invalidated one of "
                         "its tags after the request began",
                         NULL, NULL);
    else if (rc == TIDE_ETOOBIG)
        tide__l_push_err(L, "TIDE_CACHE_TOO_BIG", 500,
                         "not stored: the entry is larger than "
                         "an eighth of cache.max_bytes",
                         NULL, NULL);
    else if (rc == TIDE_ECLOSED)
        tide__l_push_err(L, "TIDE_CACHE_OFF", 503, "not stored: the result cache is off", NULL,
                         NULL);
    else tide__l_push_err(L, "TIDE_CACHE_ERROR", 500, tide_strerror(rc), NULL, NULL);
    return 2;
}

const luaL_Reg tide__l_cache_fns[] = { { "cache_depend", l_cache_depend },
                                       { "cache_skip", l_cache_skip },
                                       { "cache_invalidate", l_cache_invalidate },
                                       { "cache_get", l_cache_get },
                                       { "cache_set", l_cache_set },
                                       { NULL, NULL } };
