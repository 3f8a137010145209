/* test_jwtcache.c - the verified-token cache: hits, expiry, eviction, ownership. */
#include "test.h"
#include "../jwtcache.h"

#include <stdlib.h>
#include <string.h>

static tide_jwt_claims claims(const char *json, tide_role role, long long exp)
{
    tide_jwt_claims c;
    memset(&c, 0, sizeof c);
    c.claims_json = strdup(json);
    c.role = role;
    c.exp = exp;
    return c;
}

TEST(cache_hit_after_put)
{
    tide_jwt_cache *c;
    CHECK_EQ_INT(tide_jwt_cache_new(64, &c), 0);
    tide_role role;
    const char *js;
    CHECK_EQ_INT(tide_jwt_cache_get(c, "a.b.c", 5, 1000, 0, &role, &js), 0);
    tide_jwt_claims cl = claims("{\"sub\":\"x\"}", TIDE_ROLE_AUTHENTICATED, 2000);
    const char *stored = tide_jwt_cache_put(c, "a.b.c", 5, &cl);
    CHECK(cl.claims_json == NULL);                 /* ownership moved to the cache */
    CHECK_STR(stored, "{\"sub\":\"x\"}");
    CHECK_EQ_INT(tide_jwt_cache_get(c, "a.b.c", 5, 1000, 0, &role, &js), 1);
    CHECK_EQ_INT(role, TIDE_ROLE_AUTHENTICATED);
    CHECK_STR(js, "{\"sub\":\"x\"}");
    /* a token that differs only in its last byte is a different token */
    CHECK_EQ_INT(tide_jwt_cache_get(c, "a.b.d", 5, 1000, 0, &role, &js), 0);
    /* a prefix of a cached token is a different token */
    CHECK_EQ_INT(tide_jwt_cache_get(c, "a.b.", 4, 1000, 0, &role, &js), 0);
    tide_jwt_cache_stats st;
    tide_jwt_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.hits, 1);
    CHECK_EQ_INT(st.stores, 1);
    tide_jwt_cache_free(c);
}

TEST(cache_entry_expires_with_leeway)
{
    tide_jwt_cache *c;
    CHECK_EQ_INT(tide_jwt_cache_new(16, &c), 0);
    tide_role role;
    const char *js;
    tide_jwt_claims cl = claims("{}", TIDE_ROLE_SERVICE, 1000);
    tide_jwt_cache_put(c, "t", 1, &cl);
    CHECK_EQ_INT(tide_jwt_cache_get(c, "t", 1, 1029, 30, &role, &js), 1);  /* within leeway */
    CHECK_EQ_INT(tide_jwt_cache_get(c, "t", 1, 1030, 30, &role, &js), 0);  /* expired */
    CHECK_EQ_INT(tide_jwt_cache_get(c, "t", 1, 10, 30, &role, &js), 0);    /* and dropped */
    tide_jwt_claims forever = claims("{}", TIDE_ROLE_ANON, 0);
    tide_jwt_cache_put(c, "u", 1, &forever);
    CHECK_EQ_INT(tide_jwt_cache_get(c, "u", 1, 4000000000LL, 0, &role, &js), 1);
    tide_jwt_cache_free(c);
}

TEST(cache_is_bounded_by_slots)
{
    tide_jwt_cache *c;
    CHECK_EQ_INT(tide_jwt_cache_new(16, &c), 0);
    char tok[32];
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(tok, sizeof tok, "token-%d", i);
        tide_jwt_claims cl = claims("{}", TIDE_ROLE_AUTHENTICATED, 0);
        tide_jwt_cache_put(c, tok, (size_t)n, &cl);
    }
    tide_role role;
    const char *js;
    int hits = 0;
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(tok, sizeof tok, "token-%d", i);
        hits += tide_jwt_cache_get(c, tok, (size_t)n, 0, 0, &role, &js);
    }
    CHECK(hits > 0 && hits <= 16);               /* at most one entry per slot survives */
    tide_jwt_cache_free(c);                      /* valgrind/ASan: nothing leaks */
}

TEST_LIST_BEGIN
    TEST_ENTRY(cache_hit_after_put)
    TEST_ENTRY(cache_entry_expires_with_leeway)
    TEST_ENTRY(cache_is_bounded_by_slots)
TEST_LIST_END
