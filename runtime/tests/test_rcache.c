/* test_rcache.c - the cache policy as C reads it (runtime/rcache.c): each rule found by its
 * route (the VM maps its compiled routes to rules once; the matching itself is the router's,
 * test_router.c), and policies that C cannot use are refused. */
#include "test.h"
#include "../rcache.h"

#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

static tide_cache_policy *policy_from(const char *chunk, char *err, size_t errlen)
{
    lua_State *L = luaL_newstate();
    if (luaL_dostring(L, chunk) != 0) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1));
        lua_close(L);
        return NULL;
    }
    tide_cache_policy *p = tide_cache_policy_read(L, -1, err, errlen);
    lua_close(L);
    return p;
}

static const char *route_of(const tide_cache_policy *p, const char *route)
{
    const tide_cache_rule *r = tide_cache_policy_rule(p, route);
    return r ? r->route : "-";
}

TEST(rcache_finds_rules_by_route)
{
    char err[256] = "";
    tide_cache_policy *p =
        policy_from("return { tables = '', rules = {"
                    "  { route = 'GET /v1/trips/:id', ttl = 30, swr = 0, sie = 0, scope = 'user' },"
                    "  { route = 'GET /v1/trips/:id/collaborators', ttl = 5, swr = 0, sie = 0,"
                    "    scope = 'claims', vary = { 'Accept' } },"
                    "  { route = 'GET /', ttl = 1, swr = 0, sie = 0, scope = 'public' } } }",
                    err, sizeof err);
    CHECK(p != NULL);
    if (!p) {
        printf("%s\n", err);
        return;
    }
    CHECK_STR(route_of(p, "GET /v1/trips/:id"), "GET /v1/trips/:id");
    CHECK_STR(route_of(p, "GET /v1/trips"), "-"); /* routed, no rule */
    CHECK_STR(route_of(p, "POST /v1/trips/:id"), "-");
    CHECK_STR(route_of(p, "GET /"), "GET /");
    const tide_cache_rule *r = tide_cache_policy_rule(p, "GET /v1/trips/:id/collaborators");
    CHECK(r && r->scope == TIDE_SCOPE_CLAIMS && r->nvary == 1 && strcmp(r->vary[0], "accept") == 0);
    tide_cache_policy_free(p);
}

TEST(rcache_refuses_unusable_policies)
{
    char err[256];
    /* not GET, bad scope, ttl 0 */
    CHECK(policy_from("return { tables = '', rules = { { route = 'POST /yes', ttl = 1, swr = 0,"
                      " sie = 0, scope = 'user' } } }",
                      err, sizeof err) == NULL);
    CHECK(policy_from("return { tables = '', rules = { { route = 'GET /yes', ttl = 1, swr = 0,"
                      " sie = 0, scope = 'everyone' } } }",
                      err, sizeof err) == NULL);
    CHECK(policy_from("return { tables = '', rules = { { route = 'GET /yes', ttl = 0, swr = 0,"
                      " sie = 0, scope = 'user' } } }",
                      err, sizeof err) == NULL);
    /* no rules at all: nothing matches */
    tide_cache_policy *p = policy_from("return { tables = '', rules = {} }", err, sizeof err);
    CHECK(p != NULL);
    CHECK_STR(route_of(p, "GET /a"), "-");
    tide_cache_policy_free(p);
}

TEST_LIST_BEGIN
TEST_ENTRY(rcache_finds_rules_by_route)
TEST_ENTRY(rcache_refuses_unusable_policies)
TEST_LIST_END
