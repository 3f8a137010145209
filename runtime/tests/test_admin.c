/* test_admin.c - who the admin listener serves: the Host names a browser page cannot hold
 * (tide__admin_host_ok), and the bearer token of state-changing requests
 * (tide__admin_token_ok, over tide_crypto_equal_secret). */
#include "test.h"
#include "../admin.h"
#include "../crypto.h"

#include <string.h>

static int host_ok(const char *host, const char *admin_host)
{
    return tide__admin_host_ok(host, host ? strlen(host) : 0, admin_host);
}

TEST(admin_host_names_a_page_cannot_hold)
{
    static const char *const ok[] = { "127.0.0.1",
                                      "127.0.0.1:8081",
                                      "localhost",
                                      "localhost:8081",
                                      "LOCALHOST:1",
                                      "[::1]",
                                      "[::1]:8081",
                                      "10.1.2.3:9000",
                                      "192.168.0.7",
                                      "[fd00::7]:8081",
                                      "[::ffff:127.0.0.1]",
                                      "tide-admin.internal",
                                      "Tide-Admin.Internal:8081",
                                      NULL };
    static const char *const refused[] = { "evil.example",
                                           "evil.example:8081",
                                           "localhost.evil.example",
                                           "127.0.0.1.evil.example",
                                           "evil.localhost",
                                           "localhost.",
                                           "127.1",
                                           "127.0.0.1:",
                                           "127.0.0.1:80801",
                                           "127.0.0.1:8o",
                                           "127.0.0.1:80:81",
                                           "::1",
                                           "[::1",
                                           "[::1]8081",
                                           "[::1]:",
                                           "[evil]",
                                           "[127.0.0.1]",
                                           "",
                                           ":8081",
                                           "[]",
                                           "tide-admin.internal.evil",
                                           NULL };
    for (const char *const *h = ok; *h; h++)
        if (!host_ok(*h, "tide-admin.internal")) TEST_FAIL_("refused Host %s", *h);
    for (const char *const *h = refused; *h; h++)
        if (host_ok(*h, "tide-admin.internal")) TEST_FAIL_("served Host %s", *h);
    CHECK(host_ok(NULL, NULL)); /* no Host: HTTP/1.0, no browser */
    CHECK(!host_ok("tide-admin.internal", NULL));
    CHECK(!host_ok("tide-admin.internal", ""));
    char nul[] = "localhost\0.evil";
    CHECK(!tide__admin_host_ok(nul, sizeof nul - 1, NULL));
    char long_name[400];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    CHECK(!host_ok(long_name, long_name));
}

static int token_ok(const char *token, const char *authz)
{
    return tide__admin_token_ok(token, authz, authz ? strlen(authz) : 0);
}

TEST(admin_token_is_a_bearer_token_compared_whole)
{
    const char *t = "own-admin-token-0123";
    CHECK(token_ok(t, "Bearer own-admin-token-0123"));
    CHECK(token_ok(t, "bearer  own-admin-token-0123 "));
    CHECK(!token_ok(t, NULL));
    CHECK(!token_ok(t, ""));
    CHECK(!token_ok(t, "Bearer "));
    CHECK(!token_ok(t, "Bearer own-admin-token-012"));
    CHECK(!token_ok(t, "Bearer own-admin-token-01234"));
    CHECK(!token_ok(t, "Bearer own-admin-token-0124"));
    CHECK(!token_ok(t, "Basic own-admin-token-0123"));
    CHECK(!token_ok(t, "own-admin-token-0123"));
    CHECK(!token_ok(NULL, "Bearer own-admin-token-0123")); /* none configured: never */
    CHECK(!token_ok("", "Bearer "));
}

TEST(equal_secret)
{
    CHECK(tide_crypto_equal_secret("abc", 3, "abc", 3));
    CHECK(!tide_crypto_equal_secret("abc", 3, "abd", 3));
    CHECK(!tide_crypto_equal_secret("abc", 3, "abc", 2));
    CHECK(!tide_crypto_equal_secret("a\0b", 3, "a\0c", 3));
    CHECK(tide_crypto_equal_secret("", 0, NULL, 0));
}

TEST_LIST_BEGIN
TEST_ENTRY(admin_host_names_a_page_cannot_hold)
TEST_ENTRY(admin_token_is_a_bearer_token_compared_whole)
TEST_ENTRY(equal_secret)
TEST_LIST_END
