/* test_router.c - the compiled router: tide.router's matching rules, in C. */
#include "test.h"
#include "../router.h"

static tide_router *demo(void)
{
    static const char *const routes[][2] = {
        { "GET", "/v1/trips" },
        { "POST", "/v1/trips" },
        { "GET", "/v1/trips/:id" },
        { "PATCH", "/v1/trips/:id" },
        { "GET", "/v1/trips/search" },
        { "GET", "/v1/trips/:id/collaborators" },
        { "GET", "/" },
        { "GET", "/rest/v1/:table" },
        { "POST", "/rest/v1/rpc/:fn" },
        { "GET", "/a/:x/:y" },
    };
    tide_router *r = tide_router_new();
    if (!r) return NULL;
    for (int i = 0; i < (int)(sizeof routes / sizeof routes[0]); i++)
        if (tide_router_add(r, routes[i][0], routes[i][1], i) != 0) {
            tide_router_free(r);
            return NULL;
        }
    return r;
}

static int match(const tide_router *r, const char *m, const char *path, tide_route_match *out)
{
    return tide_router_match(r, m, path, strlen(path), out);
}

TEST(static_and_param_routes)
{
    tide_router *r = demo();
    CHECK(r);
    tide_route_match m;
    CHECK_EQ_INT(match(r, "GET", "/v1/trips", &m), TIDE_ROUTE_FOUND);
    CHECK_EQ_INT(m.id, 0);
    CHECK_EQ_INT(m.nparams, 0);
    CHECK_EQ_INT(match(r, "GET", "/v1/trips/42", &m), TIDE_ROUTE_FOUND);
    CHECK_EQ_INT(m.id, 2);
    CHECK_EQ_INT(m.nparams, 1);
    CHECK_STR(m.params[0].name, "id");
    CHECK_EQ_INT(m.params[0].len, 2);
    CHECK(memcmp(m.params[0].value, "42", 2) == 0);
    CHECK_EQ_INT(match(r, "GET", "/", &m), TIDE_ROUTE_FOUND);
    CHECK_EQ_INT(m.id, 6);
    CHECK_EQ_INT(match(r, "GET", "/a/1/2", &m), TIDE_ROUTE_FOUND);
    CHECK_EQ_INT(m.nparams, 2);
    CHECK_STR(m.params[1].name, "y");
    CHECK(m.params[1].len == 1 && m.params[1].value[0] == '2');
    tide_router_free(r);
}

TEST(static_beats_param_and_backtracks)
{
    tide_router *r = demo();
    CHECK(r);
    tide_route_match m;
    CHECK_EQ_INT(match(r, "GET", "/v1/trips/search", &m), TIDE_ROUTE_FOUND);
    CHECK_EQ_INT(m.id, 4);
    /* the static branch cannot finish: the param branch is tried */
    CHECK_EQ_INT(match(r, "GET", "/v1/trips/search/collaborators", &m), TIDE_ROUTE_FOUND);
    CHECK_EQ_INT(m.id, 5);
    CHECK(m.params[0].len == 6 && memcmp(m.params[0].value, "search", 6) == 0);
    tide_router_free(r);
}

TEST(not_found_and_not_allowed)
{
    tide_router *r = demo();
    CHECK(r);
    tide_route_match m;
    CHECK_EQ_INT(match(r, "GET", "/v2/trips", &m), TIDE_ROUTE_NOT_FOUND);
    CHECK_EQ_INT(match(r, "GET", "/v1/trips/", &m), TIDE_ROUTE_NOT_FOUND); /* empty param */
    CHECK_EQ_INT(match(r, "GET", "/v1//collaborators", &m), TIDE_ROUTE_NOT_FOUND);
    CHECK_EQ_INT(match(r, "GET", "v1/trips", &m), TIDE_ROUTE_NOT_FOUND);
    CHECK_EQ_INT(match(r, "DELETE", "/v1/trips/7", &m), TIDE_ROUTE_NOT_ALLOWED);
    CHECK_STR(m.allow, "GET, PATCH");
    CHECK_EQ_INT(match(r, "BREW", "/v1/trips", &m), TIDE_ROUTE_NOT_ALLOWED);
    CHECK_STR(m.allow, "GET, POST");
    /* a segment past any pattern's length */
    char deep[400] = "";
    for (int i = 0; i < 70; i++) strcat(deep, "/a");
    CHECK_EQ_INT(match(r, "GET", deep, &m), TIDE_ROUTE_NOT_FOUND);
    tide_router_free(r);
}

TEST(params_are_checked_and_decoded)
{
    tide_router *r = demo();
    CHECK(r);
    tide_route_match m;
    CHECK_EQ_INT(match(r, "GET", "/v1/trips/a%2Fb", &m), TIDE_ROUTE_FOUND);
    char out[16];
    long n = tide_router_decode(m.params[0].value, m.params[0].len, out);
    CHECK_EQ_INT(n, 3);
    CHECK(memcmp(out, "a/b", 3) == 0);
    CHECK_EQ_INT(match(r, "GET", "/v1/trips/a%2", &m), TIDE_ROUTE_BAD_PATH);
    CHECK_EQ_INT(match(r, "GET", "/v1/trips/%00", &m), TIDE_ROUTE_BAD_PATH);
    CHECK_EQ_INT(match(r, "GET", "/v1/trips/%zz", &m), TIDE_ROUTE_BAD_PATH);
    CHECK_EQ_INT(tide_router_decode("a+b", 3, out), 3);
    CHECK(memcmp(out, "a+b", 3) == 0); /* "+" stays "+" in a path */
    /* static segments are compared as sent, never decoded */
    CHECK_EQ_INT(match(r, "GET", "/v1/trip%73", &m), TIDE_ROUTE_NOT_FOUND);
    tide_router_free(r);
}

TEST(bad_patterns_are_refused)
{
    tide_router *r = tide_router_new();
    CHECK(r);
    CHECK_EQ_INT(tide_router_add(r, "GET", "/a", 0), 0);
    CHECK_EQ_INT(tide_router_add(r, "GET", "/a", 1), TIDE_EINVAL); /* duplicate */
    CHECK_EQ_INT(tide_router_add(r, "POST", "/a", 1), 0);
    CHECK_EQ_INT(tide_router_add(r, "GET", "/:x", 2), 0);
    CHECK_EQ_INT(tide_router_add(r, "GET", "/:y", 3), TIDE_EINVAL); /* same shape */
    CHECK_EQ_INT(tide_router_add(r, "GET", "a", 4), TIDE_EINVAL);
    CHECK_EQ_INT(tide_router_add(r, "GET", "/a//b", 4), TIDE_EINVAL);
    CHECK_EQ_INT(tide_router_add(r, "GET", "/a/", 4), TIDE_EINVAL);
    CHECK_EQ_INT(tide_router_add(r, "GET", "/:1x", 4), TIDE_EINVAL);
    CHECK_EQ_INT(tide_router_add(r, "GET", "/b/:x/:x", 4), TIDE_EINVAL);
    CHECK_EQ_INT(tide_router_add(r, "BREW", "/c", 4), TIDE_EINVAL);
    tide_route_match m;
    CHECK_EQ_INT(match(r, "GET", "/a", &m), TIDE_ROUTE_FOUND);
    CHECK_EQ_INT(m.id, 0);
    CHECK_EQ_INT(match(r, "GET", "/zz", &m), TIDE_ROUTE_FOUND);
    CHECK_EQ_INT(m.id, 2);
    tide_router_free(r);
}

TEST_LIST_BEGIN
TEST_ENTRY(static_and_param_routes)
TEST_ENTRY(static_beats_param_and_backtracks)
TEST_ENTRY(not_found_and_not_allowed)
TEST_ENTRY(params_are_checked_and_decoded)
TEST_ENTRY(bad_patterns_are_refused)
TEST_LIST_END
