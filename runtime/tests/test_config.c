/* test_config.c - the configuration: the jwt and crypto sections (defaults, file values,
 * strict types for the checks that guard admission, the TIDE_JWT_* overrides, the refusal of
 * published secrets outside development mode), the schema table's defaults and refusals, the
 * log section and its TIDE_LOG_* overrides, rest.notify_channel (default, override, one
 * name for two channels refused), supervise and watchdog_ms (defaults, overrides, a watchdog
 * too short refused), admin.token (file, override, too short refused, the published one
 * dropped outside development mode), http.max_unsent_bytes, the printout `tide check`
 * shows (secrets never in it), and the environment overrides the schema table names (the
 * file's bounds kept, empty values, one DSN variable per upstream). Every TIDE_* variable of
 * the environment the test runs in is cleared first, so a developer's shell cannot change it. */
#include "test.h"
#include "../config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BASE                                                              \
    "jwt = { secret = 'config-test-secret-0123456789-abcdefghij' %s },\n" \
    "upstreams = { direct = { dsn = 'postgresql://x@127.0.0.1:1/x' } },\n"

extern char **environ;

static int dev; /* the dev argument load() passes */

/* Unsets every TIDE_* variable, those of the shell that runs the test included (a developer's
 * TIDE_HTTP_PORT or TIDE_DSN_SESSION would otherwise change what the tests read). */
static void clear_env(void)
{
    for (int pass = 0; pass < 1000; pass++) { /* unsetenv changes environ: start over */
        char name[256];
        name[0] = '\0';
        for (char **e = environ; e && *e; e++)
            if (strncmp(*e, "TIDE_", 5) == 0) {
                const char *eq = strchr(*e, '=');
                snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - *e) : (int)strlen(*e), *e);
                break;
            }
        if (!name[0]) return;
        unsetenv(name);
    }
}

/* Loads a config file "return { BASE(jwt_extra) extra }" into *c. */
static int load(const char *jwt_extra, const char *extra, tide_config *c, char *err, size_t n)
{
    char path[] = "/tmp/tide-test-config-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return 999;
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
                      "leeway = 5",
                      "", &c, err, sizeof err),
                 0);
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
    CHECK_EQ_INT(load(", audience = 'file-aud', issuer = 'file-iss'", "", &c, err, sizeof err), 0);
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
    CHECK_EQ_INT(load("",
                      "crypto = { key = '"
                      "000102030405060708090a0b0c0d0e0f"
                      "101112131415161718191a1b1c1d1e1f' },",
                      &c, err, sizeof err),
                 0);
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
    setenv("TIDE_ENCRYPTION_KEY",
           "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 1);
    CHECK_EQ_INT(load("", dev_key, &c, err, sizeof err), 0);
    CHECK_EQ_INT(c.dev, 0);
    tide_config_free(&c);
    clear_env();
}

/* The schema table's defaults are the effective ones (http.c and pool.c agree with them). */
TEST(schema_defaults)
{
    tide_config c;
    char err[256];
    clear_env();
    CHECK_EQ_INT(load("", "", &c, err, sizeof err), 0);
    CHECK(c.http.read_timeout == 10.0);
    CHECK(c.http.idle_timeout == 60.0);
    CHECK_EQ_INT(c.http.max_header_bytes, 16 * 1024);
    CHECK_EQ_INT(c.http.max_connections_per_client, 256);
    CHECK_EQ_INT(c.http.max_unsent_bytes, 64 * 1024 * 1024);
    CHECK(c.admin_token == NULL);
    CHECK_EQ_INT(c.listen_port, 8080);
    CHECK_STR(c.policies_dir, "policies");
    CHECK_EQ_INT(c.upstreams[TIDE_UP_DIRECT].prepare, 1);
    CHECK_EQ_INT(c.upstreams[TIDE_UP_TRANSACTION].prepare, 0);
    CHECK(c.upstreams[TIDE_UP_SESSION].connect_timeout == 5.0);
    CHECK(c.upstreams[TIDE_UP_SESSION].dsn == NULL);
    tide_config_free(&c);
}

TEST(log_section_and_env_overrides)
{
    tide_config c;
    char err[256];
    clear_env();
    CHECK_EQ_INT(load("", "", &c, err, sizeof err), 0);
    CHECK_EQ_INT(c.log_buffer_bytes, 1024 * 1024);
    CHECK_EQ_INT(c.log_slow_query_ms, 500);
    tide_config_free(&c);
    CHECK_EQ_INT(load("", "log = { buffer_bytes = 65536, slow_query_ms = 0 }", &c, err, sizeof err),
                 0);
    CHECK_EQ_INT(c.log_buffer_bytes, 65536);
    CHECK_EQ_INT(c.log_slow_query_ms, 0);
    tide_config_free(&c);
    CHECK_EQ_INT(load("", "log = { buffer_bytes = 1024 }", &c, err, sizeof err), TIDE_EINVAL);
    CHECK(strstr(err, "log.buffer_bytes must be in 16384..") != NULL);

    setenv("TIDE_LOG_BUFFER_BYTES", "32768", 1);
    setenv("TIDE_LOG_SLOW_QUERY_MS", "25", 1);
    CHECK_EQ_INT(load("", "log = { slow_query_ms = 900 }", &c, err, sizeof err), 0);
    CHECK_EQ_INT(c.log_buffer_bytes, 32768);
    CHECK_EQ_INT(c.log_slow_query_ms, 25);
    tide_config_free(&c);
    static const char *const bad[][2] = { { "TIDE_LOG_SLOW_QUERY_MS", "-1" },
                                          { "TIDE_LOG_SLOW_QUERY_MS", "10ms" },
                                          { "TIDE_LOG_BUFFER_BYTES", "100" } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clear_env();
        setenv(bad[i][0], bad[i][1], 1);
        CHECK_EQ_INT(load("", "", &c, err, sizeof err), TIDE_EINVAL);
        CHECK(strstr(err, bad[i][0]) != NULL);
    }
    clear_env();
}

/* nice: the priority to serve at, -20..19, 0 (unchanged) unless set; TIDE_NICE wins. */
TEST(nice_setting_and_env)
{
    tide_config c;
    char err[256];
    clear_env();
    CHECK_EQ_INT(load("", "", &c, err, sizeof err), 0);
    CHECK_EQ_INT(c.nice, 0);
    tide_config_free(&c);
    CHECK_EQ_INT(load("", "nice = -5", &c, err, sizeof err), 0);
    CHECK_EQ_INT(c.nice, -5);
    tide_config_free(&c);
    CHECK_EQ_INT(load("", "nice = -21", &c, err, sizeof err), TIDE_EINVAL);
    CHECK(strstr(err, "nice must be in -20..19") != NULL);
    setenv("TIDE_NICE", "3", 1);
    CHECK_EQ_INT(load("", "nice = -5", &c, err, sizeof err), 0);
    CHECK_EQ_INT(c.nice, 3);
    tide_config_free(&c);
    static const char *const bad[] = { "20", "-21", "-5x" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("TIDE_NICE", bad[i], 1);
        CHECK_EQ_INT(load("", "", &c, err, sizeof err), TIDE_EINVAL);
        CHECK(strstr(err, "TIDE_NICE") != NULL);
    }
    clear_env();
}

/* supervise: a parent watches even one worker unless false; watchdog_ms: 2000, 0 (off) or at
 * least 100; TIDE_SUPERVISE (0/1) and TIDE_WATCHDOG_MS win. */
TEST(supervise_and_watchdog)
{
    tide_config c;
    char err[256];
    clear_env();
    CHECK_EQ_INT(load("", "", &c, err, sizeof err), 0);
    CHECK_EQ_INT(c.supervise, 1);
    CHECK_EQ_INT(c.watchdog_ms, 2000);
    CHECK_EQ_INT(c.workers, 1);
    tide_config_free(&c);
    CHECK_EQ_INT(load("", "supervise = false, watchdog_ms = 0", &c, err, sizeof err), 0);
    CHECK_EQ_INT(c.supervise, 0);
    CHECK_EQ_INT(c.watchdog_ms, 0);
    tide_config_free(&c);
    CHECK_EQ_INT(load("", "watchdog_ms = 50", &c, err, sizeof err), TIDE_EINVAL);
    CHECK(strstr(err, "watchdog_ms (or TIDE_WATCHDOG_MS) must be 0 (off) or at least 100") != NULL);
    CHECK_EQ_INT(load("", "supervise = 1", &c, err, sizeof err), TIDE_EINVAL);
    CHECK(strstr(err, "supervise") != NULL);
    setenv("TIDE_SUPERVISE", "0", 1);
    setenv("TIDE_WATCHDOG_MS", "1000", 1);
    CHECK_EQ_INT(load("", "supervise = true, watchdog_ms = 5000", &c, err, sizeof err), 0);
    CHECK_EQ_INT(c.supervise, 0);
    CHECK_EQ_INT(c.watchdog_ms, 1000);
    tide_config_free(&c);
    static const char *const bad[][2] = { { "TIDE_SUPERVISE", "yes" },
                                          { "TIDE_WATCHDOG_MS", "99" },
                                          { "TIDE_WATCHDOG_MS", "2s" },
                                          { "TIDE_WATCHDOG_MS", "-1" } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clear_env();
        setenv(bad[i][0], bad[i][1], 1);
        CHECK_EQ_INT(load("", "", &c, err, sizeof err), TIDE_EINVAL);
        CHECK(strstr(err, bad[i][0]) != NULL);
    }
    clear_env();
}

/* rest.notify_channel: PostgREST's pgrst by default, "" for none, never cache.channel's name
 * (one LISTEN session hears both). */
TEST(rest_notify_channel)
{
    tide_config c;
    char err[256];
    clear_env();
    CHECK_EQ_INT(load("", "", &c, err, sizeof err), 0);
    CHECK_STR(c.rest_notify_channel, "pgrst");
    tide_config_free(&c);
    CHECK_EQ_INT(load("", "rest = { notify_channel = '' }", &c, err, sizeof err), 0);
    CHECK_STR(c.rest_notify_channel, "");
    tide_config_free(&c);
    setenv("TIDE_REST_NOTIFY_CHANNEL", "schema_reload", 1);
    CHECK_EQ_INT(load("", "", &c, err, sizeof err), 0);
    CHECK_STR(c.rest_notify_channel, "schema_reload");
    tide_config_free(&c);
    clear_env();
    CHECK_EQ_INT(load("", "rest = { notify_channel = 'tide_cache' }", &c, err, sizeof err),
                 TIDE_EINVAL);
    CHECK(strstr(err, "rest.notify_channel") != NULL);
    /* both "" (each hears nothing) is no clash; "" is for these two keys only */
    CHECK_EQ_INT(
        load("", "cache = { channel = '' }, rest = { notify_channel = '' }", &c, err, sizeof err),
        0);
    CHECK_STR(c.cache_channel, "");
    tide_config_free(&c);
    CHECK_EQ_INT(load("", "log_level = ''", &c, err, sizeof err), TIDE_EINVAL);
    CHECK(strstr(err, "log_level must be a non-empty string") != NULL);
    CHECK_EQ_INT(load("", "rest = { notify_channel = 5 }", &c, err, sizeof err), TIDE_EINVAL);
    CHECK(strstr(err, "rest.notify_channel must be a string") != NULL);
    clear_env();
}

/* Types, bounds and unknown keys are refused with the key named; old upstream keys that the
 * resilience policy now owns are still accepted. */
TEST(schema_refusals)
{
    static const struct {
        const char *extra, *msg;
    } cases[] = {
        { "listen = { port = '8080' }", "listen.port must be a number" },
        { "http = { read_timeout = 0 }", "http.read_timeout must be in 0.001..3600, got 0" },
        { "http = { max_body_bytes = 1.5 }", "http.max_body_bytes must be an integer" },
        { "http = { read_timout = 5 }", "http.read_timout is not a setting (a typo?)" },
        { "htp = {}", "htp is not a setting (a typo?)" },
        { "log_level = ''", "log_level must be a non-empty string" },
        { "upstreams = { replicas = { dsn = 'x' } }",
          "upstreams.replicas is not an upstream (direct, session, transaction, replica)" },
        { "upstreams = { direct = { dsn = 'x', prepare = 1 } }",
          "upstreams.direct.prepare must be true or false" },
    };
    clear_env();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tide_config c;
        char err[256];
        int rc = load("", cases[i].extra, &c, err, sizeof err);
        if (rc == 0) {
            fprintf(stderr, "  accepted: %s\n", cases[i].extra);
            tide_config_free(&c);
        }
        CHECK_EQ_INT(rc, TIDE_EINVAL);
        CHECK(strstr(err, cases[i].msg) != NULL);
    }
    tide_config c;
    char err[256];
    CHECK_EQ_INT(load("",
                      "upstreams = { direct = { dsn = 'postgresql://x@127.0.0.1:1/x', "
                      "pool_size = 2, acquire_timeout = 1, connect_timeout = 0.5 } }",
                      &c, err, sizeof err),
                 0);
    CHECK(c.upstreams[TIDE_UP_DIRECT].connect_timeout == 0.5);
    tide_config_free(&c);
}

/* `tide check` prints every key; secrets never, DSN passwords masked. */
TEST(admin_token_and_unsent_budget)
{
    tide_config c;
    char err[512];
    clear_env();
    CHECK_EQ_INT(load("",
                      "admin = { token = 'own-admin-token-0123' }, "
                      "http = { max_unsent_bytes = 1048576 }",
                      &c, err, sizeof err),
                 0);
    CHECK_STR(c.admin_token, "own-admin-token-0123");
    CHECK_EQ_INT(c.http.max_unsent_bytes, 1048576);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tide_config_print(f, &c);
    fclose(f);
    CHECK(strstr(buf, "own-admin-token") == NULL);
    CHECK(strstr(buf, "admin.token                              = (set)") != NULL);
    free(buf);
    tide_config_free(&c);
    /* the environment wins; too short is refused, naming the key */
    setenv("TIDE_ADMIN_TOKEN", "env-admin-token-4567", 1);
    setenv("TIDE_HTTP_MAX_UNSENT_BYTES", "2097152", 1);
    CHECK_EQ_INT(load("", "admin = { token = 'own-admin-token-0123' }", &c, err, sizeof err), 0);
    CHECK_STR(c.admin_token, "env-admin-token-4567");
    CHECK_EQ_INT(c.http.max_unsent_bytes, 2097152);
    tide_config_free(&c);
    setenv("TIDE_HTTP_MAX_UNSENT_BYTES", "100", 1);
    CHECK_EQ_INT(load("", "", &c, err, sizeof err), TIDE_EINVAL);
    CHECK(strstr(err, "TIDE_HTTP_MAX_UNSENT_BYTES") != NULL);
    unsetenv("TIDE_HTTP_MAX_UNSENT_BYTES");
    setenv("TIDE_ADMIN_TOKEN", "short", 1);
    CHECK_EQ_INT(load("", "", &c, err, sizeof err), TIDE_EINVAL);
    CHECK(strstr(err, "admin.token") != NULL && strstr(err, "16") != NULL);
    /* the published token: dropped (and said) outside development mode, kept in it */
    setenv("TIDE_ADMIN_TOKEN", "tide-local-development-admin-token-change-me", 1);
    CHECK_EQ_INT(load("", "", &c, err, sizeof err), 0);
    CHECK(c.admin_token == NULL);
    CHECK_EQ_INT(c.admin_token_published, 1);
    tide_config_free(&c);
    dev = 1;
    CHECK_EQ_INT(load("", "", &c, err, sizeof err), 0);
    CHECK_STR(c.admin_token, "tide-local-development-admin-token-change-me");
    CHECK_EQ_INT(c.admin_token_published, 0);
    tide_config_free(&c);
    dev = 0;
    clear_env();
}

TEST(print_masks_secrets)
{
    tide_config c;
    char err[256];
    clear_env();
    CHECK_EQ_INT(load("",
                      "crypto = { key = '00112233445566778899aabbccddeeff00112233445566778899"
                      "aabbccddeeff' }, upstreams = { direct = { dsn = "
                      "'postgresql://u:hunter2secret@db:5432/x' }, session = { dsn = "
                      "'host=db user=u password=hunter2secret dbname=x' } }",
                      &c, err, sizeof err),
                 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tide_config_print(f, &c);
    fclose(f);
    CHECK(strstr(buf, "config-test-secret") == NULL);
    CHECK(strstr(buf, "00112233") == NULL);
    CHECK(strstr(buf, "hunter2") == NULL);
    CHECK(strstr(buf, "\"postgresql://u:***@db:5432/x\"") != NULL);
    CHECK(strstr(buf, "\"host=db user=u password=*** dbname=x\"") != NULL);
    CHECK(strstr(buf, "jwt.secret") != NULL);
    CHECK(strstr(buf, "http.read_timeout                        = 10   (restart)") != NULL);
    free(buf);
    tide_config_free(&c);
}

/* The overrides keep the file's bounds: a value the file would refuse is refused from the
 * environment too, naming the variable (they were read with atoi, unchecked, before). */
TEST(env_overrides_keep_the_bounds)
{
    tide_config c;
    char err[256];
    static const char *const bad[][2] = { { "TIDE_WORKERS", "300" },
                                          { "TIDE_WORKERS", "two" },
                                          { "TIDE_HTTP_PORT", "70000" },
                                          { "TIDE_ADMIN_PORT", "-1" },
                                          { "TIDE_HTTP_MAX_CONNECTIONS_PER_CLIENT", "-1" },
                                          { "TIDE_CACHE_MAX_BYTES", "64M" },
                                          { "TIDE_HTTP_MAX_INFLIGHT_BODY_BYTES", "-5" } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clear_env();
        setenv(bad[i][0], bad[i][1], 1);
        CHECK_EQ_INT(load("", "", &c, err, sizeof err), TIDE_EINVAL);
        CHECK(strncmp(err, bad[i][0], strlen(bad[i][0])) == 0);
        CHECK(strstr(err, "must be a whole number in") != NULL);
    }
    clear_env();
}

/* What the overrides always did: empty is unset except for the channels ("" = none), each
 * upstream has its DSN variable, and the whole numbers are read as such. */
TEST(env_overrides_as_before)
{
    tide_config c;
    char err[256];
    clear_env();
    setenv("TIDE_HTTP_PORT", "", 1);
    setenv("TIDE_JWT_SECRET", "", 1);
    setenv("TIDE_CACHE_CHANNEL", "", 1);
    setenv("TIDE_REST_NOTIFY_CHANNEL", "", 1);
    setenv("TIDE_SUPERVISE", "", 1);
    CHECK_EQ_INT(load("", "", &c, err, sizeof err), 0);
    CHECK_EQ_INT(c.listen_port, 8080);
    CHECK_STR(c.jwt_secret, "config-test-secret-0123456789-abcdefghij");
    CHECK_STR(c.cache_channel, "");
    CHECK_STR(c.rest_notify_channel, "");
    CHECK_EQ_INT(c.supervise, 1);
    tide_config_free(&c);
    clear_env();
    setenv("TIDE_HTTP_PORT", "9001", 1);
    setenv("TIDE_ADMIN_PORT", "9002", 1);
    setenv("TIDE_WORKERS", "4", 1);
    setenv("TIDE_CACHE_MAX_BYTES", "0", 1);
    setenv("TIDE_HTTP_MAX_INFLIGHT_BODY_BYTES", "2000000", 1);
    setenv("TIDE_HTTP_MAX_CONNECTIONS_PER_CLIENT", "0", 1);
    setenv("TIDE_DSN_SESSION", "postgresql://s@127.0.0.1:2/s", 1);
    setenv("TIDE_DSN_TRANSACTION", "postgresql://t@127.0.0.1:3/t", 1);
    setenv("TIDE_SCRIPTS_DIR", "/srv/scripts", 1);
    setenv("TIDE_LOG_LEVEL", "debug", 1);
    CHECK_EQ_INT(load("", "", &c, err, sizeof err), 0);
    CHECK_EQ_INT(c.listen_port, 9001);
    CHECK_EQ_INT(c.admin_port, 9002);
    CHECK_EQ_INT(c.workers, 4);
    CHECK(c.cache_max_bytes == 0);
    CHECK(c.http.max_inflight_body_bytes == 2000000);
    CHECK_EQ_INT(c.http.max_connections_per_client, 0);
    CHECK_STR(c.upstreams[TIDE_UP_DIRECT].dsn, "postgresql://x@127.0.0.1:1/x");
    CHECK_STR(c.upstreams[TIDE_UP_SESSION].dsn, "postgresql://s@127.0.0.1:2/s");
    CHECK_STR(c.upstreams[TIDE_UP_TRANSACTION].dsn, "postgresql://t@127.0.0.1:3/t");
    CHECK_STR(c.scripts_dir, "/srv/scripts");
    CHECK_STR(c.log_level, "debug");
    tide_config_free(&c);
    clear_env();
}

TEST_LIST_BEGIN
TEST_ENTRY(nice_setting_and_env)
TEST_ENTRY(supervise_and_watchdog)
TEST_ENTRY(rest_notify_channel)
TEST_ENTRY(jwt_policy_defaults)
TEST_ENTRY(jwt_policy_from_file)
TEST_ENTRY(jwt_policy_strict_types)
TEST_ENTRY(jwt_policy_env_overrides)
TEST_ENTRY(crypto_key)
TEST_ENTRY(published_secrets_need_dev_mode)
TEST_ENTRY(schema_defaults)
TEST_ENTRY(log_section_and_env_overrides)
TEST_ENTRY(schema_refusals)
TEST_ENTRY(admin_token_and_unsent_budget)
TEST_ENTRY(print_masks_secrets)
TEST_ENTRY(env_overrides_keep_the_bounds)
TEST_ENTRY(env_overrides_as_before)
TEST_LIST_END
