/* test_config.c - the jwt and crypto sections of the configuration: defaults, file values,
 * strict types for the checks that guard admission, the TIDE_JWT_* overrides, and the refusal
 * of published secrets outside development mode. */
#include "test.h"
#include "../config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BASE "jwt = { secret = 'config-test-secret-0123456789-abcdefghij' %s },\n" \
             "upstreams = { direct = { dsn = 'postgresql://x@127.0.0.1:1/x' } },\n"

static const char *const overrides[] = {
    "TIDE_JWT_SECRET", "TIDE_JWT_AUDIENCE", "TIDE_JWT_ISSUER", "TIDE_JWT_REQUIRE_EXP",
    "TIDE_ENCRYPTION_KEY", "TIDE_DSN_DIRECT", "TIDE_DEV", NULL };

static int dev;   /* the dev argument load() passes */

static void clear_env(void)
{
    for (const char *const *v = overrides; *v; v++)
        unsetenv(*v);
}

/* Loads a config file "return { BASE(jwt_extra) extra }" into *c. */
static int load(const char *jwt_extra, const char *extra, tide_config *c, char *err, size_t n)
{
    char path[] = "/tmp/tide-test-config-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 999;
    FILE *f = fdopen(fd, "w");
    fprintf(f, "return {\n" BASE "%s\n}\n", jwt_extra, extra);
    fclose(f);
    err[0] = '\0';
    int rc = tide_config_load(path, dev, c, err, n);
    unlink(path);
    return rc;
}

TEST(jwt_policy_defaults)
{
    tide_config c;
    char err[256];
    clear_env();
    CHECK_EQ_INT(load("", "", &c, err, sizeof err), 0);
    CHECK_EQ_INT(c.jwt_require_exp, 1);
    CHECK(c.jwt_audience == NULL);
    CHECK(c.jwt_issuer == NULL);
    CHECK_EQ_INT(c.jwt_leeway, 30);
    tide_config_free(&c);
}

TEST(jwt_policy_from_file)
{
    tide_config c;
    char err[256];
    clear_env();
    CHECK_EQ_INT(load(", require_exp = false, audience = 'tide-api', issuer = 'https://i/', "
                      "leeway = 5", "", &c, err, sizeof err), 0);
    CHECK_EQ_INT(c.jwt_require_exp, 0);
    CHECK_STR(c.jwt_audience, "tide-api");
    CHECK_STR(c.jwt_issuer, "https://i/");
    CHECK_EQ_INT(c.jwt_leeway, 5);
    tide_config_free(&c);
}

TEST(jwt_policy_strict_types)
{
    tide_config c;
    char err[256];
    clear_env();
    /* a value of the wrong type must not quietly switch a check off */
    CHECK_EQ_INT(load(", require_exp = 0", "", &c, err, sizeof err), TIDE_EINVAL);
    CHECK(strstr(err, "jwt.require_exp") != NULL);
    CHECK_EQ_INT(load(", require_exp = 'false'", "", &c, err, sizeof err), TIDE_EINVAL);
    CHECK_EQ_INT(load(", audience = { 'a', 'b' }", "", &c, err, sizeof err), TIDE_EINVAL);
    CHECK(strstr(err, "jwt.audience") != NULL);
    CHECK_EQ_INT(load(", audience = ''", "", &c, err, sizeof err), TIDE_EINVAL);
    CHECK_EQ_INT(load(", issuer = true", "", &c, err, sizeof err), TIDE_EINVAL);
    CHECK(strstr(err, "jwt.issuer") != NULL);
}

TEST(jwt_policy_env_overrides)
{
    tide_config c;
    char err[256];
    clear_env();
    setenv("TIDE_JWT_AUDIENCE", "env-aud", 1);
    setenv("TIDE_JWT_ISSUER", "env-iss", 1);
    setenv("TIDE_JWT_REQUIRE_EXP", "0", 1);
    CHECK_EQ_INT(load(", audience = 'file-aud', issuer = 'file-iss'", "", &c, err, sizeof err),
                 0);
    CHECK_STR(c.jwt_audience, "env-aud");
    CHECK_STR(c.jwt_issuer, "env-iss");
    CHECK_EQ_INT(c.jwt_require_exp, 0);
    tide_config_free(&c);

    setenv("TIDE_JWT_REQUIRE_EXP", "1", 1);
    CHECK_EQ_INT(load(", require_exp = false", "", &c, err, sizeof err), 0);
    CHECK_EQ_INT(c.jwt_require_exp, 1);
    tide_config_free(&c);

    setenv("TIDE_JWT_REQUIRE_EXP", "yes", 1);
    CHECK_EQ_INT(load("", "", &c, err, sizeof err), TIDE_EINVAL);
    CHECK(strstr(err, "TIDE_JWT_REQUIRE_EXP") != NULL);
    clear_env();
}

TEST(crypto_key)
{
    tide_config c;
    char err[256];
    clear_env();
    CHECK_EQ_INT(load("", "crypto = { key = '" "000102030405060708090a0b0c0d0e0f"
                      "101112131415161718191a1b1c1d1e1f' },", &c, err, sizeof err), 0);
    CHECK_EQ_INT(c.has_enc_key, 1);
    CHECK_EQ_INT(c.enc_key[0], 0);
    CHECK_EQ_INT(c.enc_key[31], 0x1f);
    tide_config_free(&c);
    CHECK_EQ_INT(load("", "crypto = { key = 'abc' },", &c, err, sizeof err), TIDE_EINVAL);
    CHECK_EQ_INT(load("", "", &c, err, sizeof err), 0);
    CHECK_EQ_INT(c.has_enc_key, 0);
    tide_config_free(&c);
}

TEST(published_secrets_need_dev_mode)
{
    static const char dev_key[] = "crypto = { key = '6c6f63616c2d6465762d6b65792d6368616e67652d"
                                  "6d652d706c656173652121' },";
    tide_config c;
    char err[512];
    clear_env();
    /* the shipped secret, from the environment over the file's own */
    setenv("TIDE_JWT_SECRET", "tide-local-development-jwt-secret-change-me-0001", 1);
    CHECK_EQ_INT(load("", "", &c, err, sizeof err), TIDE_EINVAL);
    CHECK(strstr(err, "TIDE_JWT_SECRET") != NULL && strstr(err, "--dev") != NULL);
    dev = 1;
    CHECK_EQ_INT(load("", "", &c, err, sizeof err), 0);
    CHECK_EQ_INT(c.dev, 1);
    tide_config_free(&c);
    dev = 0;
    setenv("TIDE_DEV", "1", 1);
    CHECK_EQ_INT(load("", "", &c, err, sizeof err), 0);
    tide_config_free(&c);
    clear_env();
    /* an own JWT secret with the shipped AES key */
    CHECK_EQ_INT(load("", dev_key, &c, err, sizeof err), TIDE_EINVAL);
    CHECK(strstr(err, "TIDE_ENCRYPTION_KEY") != NULL);
    setenv("TIDE_ENCRYPTION_KEY", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 1);
    CHECK_EQ_INT(load("", dev_key, &c, err, sizeof err), 0);
    CHECK_EQ_INT(c.dev, 0);
    tide_config_free(&c);
    clear_env();
}

TEST_LIST_BEGIN
    TEST_ENTRY(jwt_policy_defaults)
    TEST_ENTRY(jwt_policy_from_file)
    TEST_ENTRY(jwt_policy_strict_types)
    TEST_ENTRY(jwt_policy_env_overrides)
    TEST_ENTRY(crypto_key)
    TEST_ENTRY(published_secrets_need_dev_mode)
TEST_LIST_END
