/* test_jwtcache.c - the verified-token cache: hits, expiry, eviction, ownership, and that a
 * hit never admits a token tide_jwt_verify would refuse under the same policy. */
#include "test.h"
#include "../jwtcache.h"

#include <stdlib.h>
#include <string.h>

#define SECRET "cache-test-secret-0123456789-abcdefghijklmnop"

/* exp 0: no exp claim */
static tide_jwt_claims claims(const char *json, tide_role role, long long exp)
{
    tide_jwt_claims c;
    memset(&c, 0, sizeof c);
    c.claims_json = strdup(json);
    c.role = role;
    c.exp = exp;
    c.has_exp = exp != 0;
    return c;
}

static tide_jwt_policy policy(int leeway, int require_exp)
{
    tide_jwt_policy p = { leeway, require_exp, NULL, NULL };
    return p;
}

/* An HS256 token for payload. */
static char *token(const char *payload)
{
    static const char header[] = "{\"alg\":\"HS256\"}";
    char input[512], *tok = NULL;
    size_t n = tide__b64url_encode(header, sizeof header - 1, input);
    input[n++] = '.';
    n += tide__b64url_encode(payload, strlen(payload), input + n);
    if (tide__jwt_sign_input(SECRET, strlen(SECRET), input, n, &tok) != 0) return NULL;
    return tok;
}

TEST(cache_hit_after_put)
{
    tide_jwt_policy p0 = policy(0, 1);
    tide_jwt_cache *c;
    CHECK_EQ_INT(tide_jwt_cache_new(64, &c), 0);
    tide_role role;
    const char *js;
    CHECK_EQ_INT(tide_jwt_cache_get(c, "a.b.c", 5, 1000, &p0, &role, &js, NULL), 0);
    tide_jwt_claims cl = claims("{\"sub\":\"x\"}", TIDE_ROLE_AUTHENTICATED, 2000);
    const char *stored = tide_jwt_cache_put(c, "a.b.c", 5, &cl);
    CHECK(cl.claims_json == NULL); /* ownership moved to the cache */
    CHECK_STR(stored, "{\"sub\":\"x\"}");
    CHECK_EQ_INT(tide_jwt_cache_get(c, "a.b.c", 5, 1000, &p0, &role, &js, NULL), 1);
    CHECK_EQ_INT(role, TIDE_ROLE_AUTHENTICATED);
    CHECK_STR(js, "{\"sub\":\"x\"}");
    /* a token that differs only in its last byte is a different token */
    CHECK_EQ_INT(tide_jwt_cache_get(c, "a.b.d", 5, 1000, &p0, &role, &js, NULL), 0);
    /* a prefix of a cached token is a different token */
    CHECK_EQ_INT(tide_jwt_cache_get(c, "a.b.", 4, 1000, &p0, &role, &js, NULL), 0);
    tide_jwt_cache_stats st;
    tide_jwt_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.hits, 1);
    CHECK_EQ_INT(st.stores, 1);
    tide_jwt_cache_free(c);
}

TEST(cache_entry_expires_with_leeway)
{
    tide_jwt_policy p30 = policy(30, 1), p0 = policy(0, 0);
    tide_jwt_cache *c;
    CHECK_EQ_INT(tide_jwt_cache_new(16, &c), 0);
    tide_role role;
    const char *js;
    tide_jwt_claims cl = claims("{}", TIDE_ROLE_SERVICE, 1000);
    tide_jwt_cache_put(c, "t", 1, &cl);
    CHECK_EQ_INT(tide_jwt_cache_get(c, "t", 1, 1029, &p30, &role, &js, NULL),
                 1); /* within leeway */
    CHECK_EQ_INT(tide_jwt_cache_get(c, "t", 1, 1030, &p30, &role, &js, NULL), 0); /* expired */
    CHECK_EQ_INT(tide_jwt_cache_get(c, "t", 1, 10, &p30, &role, &js, NULL), 0);   /* and dropped */
    tide_jwt_claims forever = claims("{}", TIDE_ROLE_ANON, 0);
    tide_jwt_cache_put(c, "u", 1, &forever);
    CHECK_EQ_INT(tide_jwt_cache_get(c, "u", 1, 4000000000LL, &p0, &role, &js, NULL), 1);
    tide_jwt_cache_free(c);
}

TEST(cache_is_bounded_by_slots)
{
    tide_jwt_policy p0 = policy(0, 0);
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
        hits += tide_jwt_cache_get(c, tok, (size_t)n, 0, &p0, &role, &js, NULL);
    }
    CHECK(hits > 0 && hits <= 16); /* at most one entry per slot survives */
    tide_jwt_cache_free(c);        /* valgrind/ASan: nothing leaks */
}

/* Four-way sets: 1,000 tokens in 4,096 slots stay (direct-mapped, about 11% collided; two-way
 * still lost about 2.6%). */
TEST(cache_keeps_tokens_that_share_a_slot)
{
    tide_jwt_policy p0 = policy(0, 0);
    tide_jwt_cache *c;
    CHECK_EQ_INT(tide_jwt_cache_new(4096, &c), 0);
    char tok[48];
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(tok, sizeof tok, "eyJ.token-%d.sig", i);
        tide_jwt_claims cl = claims("{}", TIDE_ROLE_AUTHENTICATED, 0);
        tide_jwt_cache_put(c, tok, (size_t)n, &cl);
    }
    tide_role role;
    const char *js;
    int hits = 0;
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 1000; i++) {
            int n = snprintf(tok, sizeof tok, "eyJ.token-%d.sig", i);
            hits += tide_jwt_cache_get(c, tok, (size_t)n, 0, &p0, &role, &js, NULL);
        }
    printf("hits: %d of 3000\n", hits);
    CHECK(hits >= 2985);
    tide_jwt_cache_free(c);
}

TEST(cache_follows_require_exp)
{
    tide_jwt_cache *c;
    CHECK_EQ_INT(tide_jwt_cache_new(16, &c), 0);
    tide_jwt_policy lax = policy(0, 0), strict = policy(0, 1);
    tide_role role;
    const char *js;
    tide_jwt_claims forever = claims("{}", TIDE_ROLE_SERVICE, 0);
    tide_jwt_cache_put(c, "noexp", 5, &forever);
    CHECK_EQ_INT(tide_jwt_cache_get(c, "noexp", 5, 1000, &lax, &role, &js, NULL), 1);
    /* an entry without exp is never served under require_exp (and is dropped) */
    CHECK_EQ_INT(tide_jwt_cache_get(c, "noexp", 5, 1000, &strict, &role, &js, NULL), 0);
    CHECK_EQ_INT(tide_jwt_cache_get(c, "noexp", 5, 1000, &lax, &role, &js, NULL), 0);
    /* NULL is tide_jwt_verify's default: exp required */
    forever = claims("{}", TIDE_ROLE_SERVICE, 0);
    tide_jwt_cache_put(c, "noexp", 5, &forever);
    CHECK_EQ_INT(tide_jwt_cache_get(c, "noexp", 5, 1000, NULL, &role, &js, NULL), 0);
    /* an exp claim of 0 (1970) is an exp, not "none" */
    tide_jwt_claims epoch = claims("{}", TIDE_ROLE_ANON, 0);
    epoch.has_exp = 1;
    tide_jwt_cache_put(c, "epoch", 5, &epoch);
    CHECK_EQ_INT(tide_jwt_cache_get(c, "epoch", 5, 1000, &lax, &role, &js, NULL), 0);
    tide_jwt_cache_free(c);
}

/* Through verification: whatever verify admitted and the cache stored, a later lookup hits
 * only while verify would still admit the token at that time. */
TEST(cache_never_outlives_verification)
{
    const char *payloads[] = {
        "{\"exp\":1000}",  "{\"exp\":1000.5}", "{\"exp\":999.999}",
        "{\"exp\":1e300}", "{\"sub\":\"u\"}",
    };
    tide_jwt_policy pols[] = { policy(0, 1), policy(30, 1), policy(0, 0), policy(-5, 0) };
    for (size_t i = 0; i < sizeof payloads / sizeof *payloads; i++) {
        for (size_t k = 0; k < sizeof pols / sizeof *pols; k++) {
            char *tok = token(payloads[i]);
            CHECK(tok);
            size_t len = strlen(tok);
            tide_jwt_cache *c;
            CHECK_EQ_INT(tide_jwt_cache_new(16, &c), 0);
            int stored = 0;
            for (time_t now = 900; now < 1100; now++) {
                tide_jwt_claims cl;
                int rc = tide_jwt_verify(SECRET, strlen(SECRET), tok, len, now, &pols[k], &cl);
                if (!stored && rc == 0) {
                    tide_jwt_cache_put(c, tok, len, &cl);
                    stored = 1;
                }
                free(cl.claims_json);
                tide_role role;
                const char *js;
                int hit = tide_jwt_cache_get(c, tok, len, now, &pols[k], &role, &js, NULL);
                if (hit && rc != 0) {
                    free(tok);
                    tide_jwt_cache_free(c);
                    CHECK_EQ_INT(rc, 0); /* the cache served what verify refuses */
                }
                if (hit) CHECK_STR(js, payloads[i]);
            }
            free(tok);
            tide_jwt_cache_free(c);
        }
    }
}

TEST_LIST_BEGIN
TEST_ENTRY(cache_hit_after_put)
TEST_ENTRY(cache_entry_expires_with_leeway)
TEST_ENTRY(cache_is_bounded_by_slots)
TEST_ENTRY(cache_keeps_tokens_that_share_a_slot)
TEST_ENTRY(cache_follows_require_exp)
TEST_ENTRY(cache_never_outlives_verification)
TEST_LIST_END
