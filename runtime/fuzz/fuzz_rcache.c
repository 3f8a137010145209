/* fuzz_rcache.c - libFuzzer target for the result cache's route matching (runtime/rcache.c):
 * any request path against a policy of static and :param routes. The matcher walks the path
 * once per route (at most 32 segments; more match nothing), so its time is linear in the path
 * times the number of GET routes, and it allocates nothing. Checks that a match is a route of
 * the policy whose segment count equals the path's. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "../rcache.h"

#define REQUIRE(c) do { if (!(c)) { fprintf(stderr, "failed: %s\n", #c); abort(); } } while (0)

static tide_cache_policy *policy;

static const char chunk[] =
    "return { tables = '', rules = {"
    "  { route = 'GET /v1/trips/:id', ttl = 30, swr = 0, sie = 0, scope = 'user' },"
    "  { route = 'GET /v1/trips/:id/collaborators', ttl = 5, swr = 0, sie = 0, scope = 'claims' },"
    "  { route = 'GET /v1/destinations/popular', ttl = 60, swr = 0, sie = 0, scope = 'public' },"
    "  { route = 'GET /', ttl = 1, swr = 0, sie = 0, scope = 'public' } },"
    "  get_routes = { '/', '/v1/trips', '/v1/trips/search', '/v1/trips/:id',"
    "    '/v1/trips/:id/collaborators', '/v1/trips/search/x', '/v1/destinations/popular',"
    "    '/v1/:a/:b/:c/:d' } }";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    lua_State *L = luaL_newstate();
    REQUIRE(luaL_dostring(L, chunk) == 0);
    char err[256];
    policy = tide_cache_policy_read(L, -1, err, sizeof err);
    REQUIRE(policy != NULL);
    lua_close(L);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const tide_cache_rule *r = tide_cache_policy_match(policy, (const char *)data, size);
    if (r) {
        REQUIRE(strncmp(r->route, "GET /", 5) == 0);
        size_t slashes = 0, want = 0;
        for (size_t i = 0; i < size; i++) slashes += data[i] == '/';
        for (const char *p = r->route + 4; *p; p++) want += *p == '/';
        REQUIRE(size > 0 && data[0] == '/');
        REQUIRE(slashes == want);
    }
    return 0;
}
