/* test_rcache.c - the cache policy's route matching (runtime/rcache.c) agrees with tide.router:
 * a static segment beats a :param, the param branch is still tried when the static one cannot
 * finish, an empty segment matches nothing; and policies that C cannot use are refused. */
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

static const char *route_of(const tide_cache_policy *p, const char *path)
{
    const tide_cache_rule *r = tide_cache_policy_match(p, path, strlen(path));
    return r ? r->route : "-";
}

TEST(rcache_matches_like_the_router)
{
    char err[256] = "";
    tide_cache_policy *p = policy_from(
        "return { tables = '', rules = {"
        "  { route = 'GET /v1/trips/:id', ttl = 30, swr = 0, sie = 0, scope = 'user' },"
        "  { route = 'GET /v1/trips/:id/collaborators', ttl = 5, swr = 0, sie = 0,"
        "    scope = 'claims', vary = { 'Accept' } },"
        "  { route = 'GET /', ttl = 1, swr = 0, sie = 0, scope = 'public' } },"
        "  get_routes = { '/', '/v1/trips', '/v1/trips/search', '/v1/trips/:id',"
        "                 '/v1/trips/:id/collaborators', '/v1/trips/search/x' } }",
        err, sizeof err);
    CHECK(p != NULL);
    if (!p) { printf("%s\n", err); return; }
    CHECK_STR(route_of(p, "/v1/trips/7"), "GET /v1/trips/:id");
    CHECK_STR(route_of(p, "/v1/trips/search"), "-");         /* the static route wins */
    CHECK_STR(route_of(p, "/v1/trips"), "-");                /* routed, no rule */
    CHECK_STR(route_of(p, "/v1/trips/"), "-");               /* empty segment */
    CHECK_STR(route_of(p, "/v1/trips//collaborators"), "-");
    CHECK_STR(route_of(p, "/v1/trips/7/collaborators"), "GET /v1/trips/:id/collaborators");
    /* the static branch cannot finish (search/x is the only static route there) */
    CHECK_STR(route_of(p, "/v1/trips/search/collaborators"),
              "GET /v1/trips/:id/collaborators");
    CHECK_STR(route_of(p, "/v1/trips/search/x"), "-");
    CHECK_STR(route_of(p, "/"), "GET /");
    CHECK_STR(route_of(p, "/v1/trips/7/collaborators/8"), "-");
    CHECK_STR(route_of(p, "v1/trips/7"), "-");
    const tide_cache_rule *r = tide_cache_policy_match(p, "/v1/trips/1/collaborators", 25);
    CHECK(r && r->scope == TIDE_SCOPE_CLAIMS && r->nvary == 1 && strcmp(r->vary[0], "accept") == 0);
    tide_cache_policy_free(p);
}

TEST(rcache_refuses_unusable_policies)
{
    char err[256];
    /* a rule for a route that is not routed */
    CHECK(policy_from("return { tables = '', rules = { { route = 'GET /nope', ttl = 1, swr = 0,"
                      " sie = 0, scope = 'user' } }, get_routes = { '/yes' } }",
                      err, sizeof err) == NULL);
    CHECK(strstr(err, "/nope") != NULL);
    /* not GET, bad scope, ttl 0 */
    CHECK(policy_from("return { tables = '', rules = { { route = 'POST /yes', ttl = 1, swr = 0,"
                      " sie = 0, scope = 'user' } }, get_routes = { '/yes' } }",
                      err, sizeof err) == NULL);
    CHECK(policy_from("return { tables = '', rules = { { route = 'GET /yes', ttl = 1, swr = 0,"
                      " sie = 0, scope = 'everyone' } }, get_routes = { '/yes' } }",
                      err, sizeof err) == NULL);
    CHECK(policy_from("return { tables = '', rules = { { route = 'GET /yes', ttl = 0, swr = 0,"
                      " sie = 0, scope = 'user' } }, get_routes = { '/yes' } }",
                      err, sizeof err) == NULL);
    /* no rules at all: nothing matches */
    tide_cache_policy *p = policy_from("return { tables = '', rules = {}, get_routes = { '/a' } }",
                                       err, sizeof err);
    CHECK(p != NULL);
    CHECK_STR(route_of(p, "/a"), "-");
    tide_cache_policy_free(p);
}

TEST_LIST_BEGIN
    TEST_ENTRY(rcache_matches_like_the_router)
    TEST_ENTRY(rcache_refuses_unusable_policies)
TEST_LIST_END
