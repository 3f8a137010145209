/* config.c - the config file's schema table; loads etc/tide.conf.lua through it, then the
 * TIDE_* environment overrides and the checks across keys. */
#include "config.h"
#include "settings.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

/* clang-format off */
const tide_setting_name tide_upstream_names[] = {
    { "direct", TIDE_UP_DIRECT }, { "session", TIDE_UP_SESSION },
    { "transaction", TIDE_UP_TRANSACTION }, { "replica", TIDE_UP_REPLICA }, { NULL, 0 } };
/* clang-format on */

int tide_upstream_index(const char *name)
{
    return tide_settings_lookup(tide_upstream_names, name);
}

const char *tide_upstream_name(int i)
{
    const char *name = tide_settings_name(tide_upstream_names, i);
    return name ? name : "?";
}

/* The configuration file's schema: every key etc/tide.conf.lua may hold, its type, bounds,
 * default and environment variable (last column; NULL: none), the one home of these defaults
 * (http.c's and pool.c's fallbacks for callers that pass zeros say the same) and of the
 * overrides. All of it is restart-only: a SIGHUP reloads scripts and policies, not this
 * file. */
/* clang-format off */
#define C(sec, key, type, min, max, def, def_str, flags, field, env) \
    { sec, key, TIDE_SET_##type, min, max, def, def_str, flags, offsetof(tide_config, field), \
      NULL, env, NULL }
static const tide_setting config_table[] = {
    C("listen", "host", STRING, 0, 0, 0, "127.0.0.1", 0, listen_host, NULL),
    C("listen", "port", INT, 0, 65535, 8080, NULL, 0, listen_port, "TIDE_HTTP_PORT"),
    C("admin", "host", STRING, 0, 0, 0, "127.0.0.1", 0, admin_host, NULL),
    C("admin", "port", INT, 0, 65535, 8081, NULL, 0, admin_port, "TIDE_ADMIN_PORT"),
    C("admin", "token", STRING, 0, 0, 0, NULL, TIDE_SET_SECRET, admin_token, "TIDE_ADMIN_TOKEN"),
    C(NULL, "log_level", STRING, 0, 0, 0, "info", 0, log_level, "TIDE_LOG_LEVEL"),
    C("log", "buffer_bytes", SIZE, 16384, 1 << 30, 1024 * 1024, NULL, 0,
      log_buffer_bytes, "TIDE_LOG_BUFFER_BYTES"),
    C("log", "slow_query_ms", INT, 0, 3600000, 500, NULL, 0,
      log_slow_query_ms, "TIDE_LOG_SLOW_QUERY_MS"),
    C("jwt", "secret", STRING, 0, 0, 0, NULL, TIDE_SET_SECRET, jwt_secret, "TIDE_JWT_SECRET"),
    C("jwt", "leeway", INT, 0, 86400, 30, NULL, 0, jwt_leeway, NULL),
    C("jwt", "require_exp", BOOL, 0, 1, 1, NULL, 0, jwt_require_exp, "TIDE_JWT_REQUIRE_EXP"),
    C("jwt", "audience", STRING, 0, 0, 0, NULL, 0, jwt_audience, "TIDE_JWT_AUDIENCE"),
    C("jwt", "issuer", STRING, 0, 0, 0, NULL, 0, jwt_issuer, "TIDE_JWT_ISSUER"),
    C("crypto", "key", STRING, 0, 0, 0, NULL, TIDE_SET_SECRET, enc_key_hex, "TIDE_ENCRYPTION_KEY"),
    C("paths", "bindings", STRING, 0, 0, 0, "bindings", 0, bindings_dir, "TIDE_BINDINGS_DIR"),
    C("paths", "scripts", STRING, 0, 0, 0, "scripts", 0, scripts_dir, "TIDE_SCRIPTS_DIR"),
    C("paths", "policies", STRING, 0, 0, 0, "policies", 0, policies_dir, "TIDE_POLICIES_DIR"),
    C("http", "max_header_bytes", SIZE, 1024, 1 << 20, 16 * 1024, NULL, 0,
      http.max_header_bytes, NULL),
    C("http", "max_body_bytes", SIZE, 1, 1e12, 1024 * 1024, NULL, 0, http.max_body_bytes, NULL),
    C("http", "read_timeout", NUMBER, 0.001, 3600, 10, NULL, 0, http.read_timeout, NULL),
    C("http", "idle_timeout", NUMBER, 0.001, 86400, 60, NULL, 0, http.idle_timeout, NULL),
    C("http", "max_connections", INT, 0, 10000000, 20000, NULL, 0, http.max_connections, NULL),
    C("http", "max_inflight_body_bytes", SIZE, 0, 1e15, 64 * 1024 * 1024, NULL, 0,
      http.max_inflight_body_bytes, "TIDE_HTTP_MAX_INFLIGHT_BODY_BYTES"),
    C("http", "max_connections_per_client", INT, 0, 10000000, 256, NULL, 0,
      http.max_connections_per_client, "TIDE_HTTP_MAX_CONNECTIONS_PER_CLIENT"),
    C("http", "max_unsent_bytes", SIZE, 65536, 1e15, 64 * 1024 * 1024, NULL, 0,
      http.max_unsent_bytes, "TIDE_HTTP_MAX_UNSENT_BYTES"),
    C("script", "max_cpu_ms", INT, 1, 3600000, 500, NULL, 0,
      script_max_cpu_ms, "TIDE_SCRIPT_MAX_CPU_MS"),
    C("script", "max_memory", SIZE, 1 << 20, 1e12, 256 * 1024 * 1024, NULL, 0,
      script_max_memory, "TIDE_SCRIPT_MAX_MEMORY"),
    C(NULL, "workers", INT, 0, 256, 1, NULL, 0, workers, "TIDE_WORKERS"),
    C(NULL, "supervise", BOOL, 0, 1, 1, NULL, 0, supervise, "TIDE_SUPERVISE"),
    C(NULL, "watchdog_ms", INT, 0, 3600000, 2000, NULL, 0, watchdog_ms, "TIDE_WATCHDOG_MS"),
    C(NULL, "nice", INT, -20, 19, 0, NULL, 0, nice, "TIDE_NICE"),
    C("cache", "max_bytes", SIZE, 0, 1e12, 64 * 1024 * 1024, NULL, 0,
      cache_max_bytes, "TIDE_CACHE_MAX_BYTES"),
    C("cache", "channel", STRING, 0, 0, 0, "tide_cache", TIDE_SET_EMPTY,
      cache_channel, "TIDE_CACHE_CHANNEL"),
    C("rest", "notify_channel", STRING, 0, 0, 0, "pgrst", TIDE_SET_EMPTY,
      rest_notify_channel, "TIDE_REST_NOTIFY_CHANNEL"),
    C(NULL, "upstreams", TABLE, 0, 0, 0, NULL, 0, upstreams, NULL),
};
#undef C
/* clang-format on */
#define NCONFIG (sizeof config_table / sizeof config_table[0])

/* upstreams.NAME: what to connect to. Pool size and acquire timeout are the resilience
 * policy's (pool.size, pool.acquire_timeout in policies/resilience.lua, reloadable); the old
 * keys pool_size and acquire_timeout are still accepted here and ignored. */
/* clang-format off */
#define U(key, type, min, max, def, flags, field, env) \
    { NULL, key, TIDE_SET_##type, min, max, def, NULL, flags, \
      offsetof(tide_upstream_config, field), NULL, env, NULL }
static const tide_setting upstream_table[] = {
    U("dsn", STRING, 0, 0, 0, TIDE_SET_DSN, dsn, "TIDE_DSN_*"),   /* TIDE_DSN_DIRECT, ... */
    U("prepare", BOOL, 0, 1, 1, 0, prepare, NULL),   /* transaction: false, see defaults() */
    U("connect_timeout", NUMBER, 0.001, 600, 5, 0, connect_timeout, NULL),
    U("pool_size", IGNORED, 0, 0, 0, 0, dsn, NULL),
    U("acquire_timeout", IGNORED, 0, 0, 0, 0, dsn, NULL),
};
#undef U
/* clang-format on */
#define NUPSTREAM (sizeof upstream_table / sizeof upstream_table[0])

const tide_setting *tide_config_table(size_t *n)
{
    *n = NCONFIG;
    return config_table;
}

const tide_setting *tide_config_upstream_table(size_t *n)
{
    *n = NUPSTREAM;
    return upstream_table;
}

static int defaults(tide_config *c)
{
    memset(c, 0, sizeof *c);
    int rc = tide_settings_defaults(config_table, NCONFIG, c);
    for (int i = 0; rc == 0 && i < TIDE_UPSTREAMS; i++)
        rc = tide_settings_defaults(upstream_table, NUPSTREAM, &c->upstreams[i]);
    /* named statements do not survive a transaction-mode pooler unless it tracks them */
    c->upstreams[TIDE_UP_TRANSACTION].prepare = 0;
    return rc;
}

void tide_config_print(FILE *f, const tide_config *c)
{
    for (size_t i = 0; i < NCONFIG; i++) {
        if (config_table[i].offset == offsetof(tide_config, enc_key_hex))
            /* the key text is wiped once parsed: say whether a key is set */
            fprintf(f, "%-40s = %s   (restart)   (env %s)\n", "crypto.key",
                    c->has_enc_key ? "(set)" : "(unset)", config_table[i].env);
        else tide_settings_print(f, NULL, &config_table[i], 1, c, NULL);
    }
    for (int i = 0; i < TIDE_UPSTREAMS; i++) {
        char label[64];
        snprintf(label, sizeof label, "upstreams.%s", tide_upstream_name(i));
        tide_settings_print(f, label, upstream_table, NUPSTREAM, &c->upstreams[i],
                            tide_upstream_name(i));
    }
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Decodes 64 hex characters into out; 0, or -1 for anything else. */
static int parse_key(const char *hex, unsigned char out[32])
{
    if (strlen(hex) != 64) return -1;
    for (int i = 0; i < 32; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

static int load_file(const char *path, tide_config *c, char *err, size_t errlen)
{
    lua_State *L = luaL_newstate();
    if (!L) {
        snprintf(err, errlen, "out of memory");
        return TIDE_ENOMEM;
    }
    luaL_openlibs(L);
    if (luaL_dofile(L, path) != 0) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1));
        lua_close(L);
        return TIDE_EPARSE;
    }
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "%s: must return a table", path);
        lua_close(L);
        return TIDE_EPARSE;
    }
    int rc = tide_settings_read(L, -1, config_table, NCONFIG, c, NULL, err, errlen);
    lua_getfield(L, -1, "upstreams");
    if (rc == 0 && lua_istable(L, -1)) {
        lua_pushnil(L);
        while (rc == 0 && lua_next(L, -2) != 0) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            int i = k ? tide_upstream_index(k) : -1;
            char label[64];
            snprintf(label, sizeof label, "upstreams.%s", k ? k : "?");
            if (i < 0) {
                snprintf(err, errlen,
                         "%s is not an upstream (direct, session, transaction, replica)", label);
                rc = TIDE_EINVAL;
            } else {
                rc = tide_settings_read(L, -1, upstream_table, NUPSTREAM, &c->upstreams[i], label,
                                        err, errlen);
            }
            lua_pop(L, 1);
        }
        if (rc != 0) lua_pop(L, 1); /* the key lua_next left */
    }
    if (rc != 0) {
        /* prefix the file, as a Lua error there would be */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", err);
        snprintf(err, errlen, "%s: %s", path, msg);
        lua_close(L);
        return rc;
    }
    lua_close(L);
    return 0;
}

/* Secrets anyone can read: the ones this repository ships for development and tests, and the
 * demo secret of Supabase's self-hosting guide. Accepted in development mode only. */
static const char *const published_jwt_secrets[] = {
    "tide-local-development-jwt-secret-change-me-0001",
    "tide-test-secret-0123456789-abcdefghijklmnop",
    "tide-bench-jwt-secret-0123456789-abcdefghijkl",
    "super-secret-jwt-token-with-at-least-32-characters-long",
};
static const char published_admin_token[] = "tide-local-development-admin-token-change-me";
static const char published_enc_key[] =
    "6c6f63616c2d6465762d6b65792d6368616e67652d6d652d706c656173652121";

static int is_published_secret(const char *secret)
{
    for (size_t i = 0; i < sizeof published_jwt_secrets / sizeof published_jwt_secrets[0]; i++)
        if (strcmp(secret, published_jwt_secrets[i]) == 0) return 1;
    return 0;
}

static int is_published_key(const unsigned char key[32])
{
    unsigned char published[32];
    return parse_key(published_enc_key, published) == 0 &&
           memcmp(key, published, sizeof published) == 0;
}

int tide_config_load(const char *path, int dev, tide_config *c, char *err, size_t errlen)
{
    if (defaults(c) != 0) {
        snprintf(err, errlen, "out of memory");
        tide_config_free(c);
        return TIDE_ENOMEM;
    }
    if (path) {
        int rc = load_file(path, c, err, errlen);
        if (rc != 0) {
            tide_config_free(c);
            return rc;
        }
    }
    int rc = tide_settings_env(config_table, NCONFIG, c, NULL, err, errlen);
    for (int i = 0; rc == 0 && i < TIDE_UPSTREAMS; i++)
        rc = tide_settings_env(upstream_table, NUPSTREAM, &c->upstreams[i], tide_upstream_name(i),
                               err, errlen);
    if (rc != 0) {
        tide_config_free(c);
        return rc;
    }
    /* the heartbeat comes every watchdog_ms / 4: below 100 ms a busy but healthy loop pass
     * would be taken for a stall */
    if (c->watchdog_ms > 0 && c->watchdog_ms < TIDE_WATCHDOG_MIN_MS) {
        snprintf(err, errlen, "watchdog_ms (or TIDE_WATCHDOG_MS) must be 0 (off) or at least %d",
                 TIDE_WATCHDOG_MIN_MS);
        tide_config_free(c);
        return TIDE_EINVAL;
    }
    /* a script is stopped at its budget long before the watchdog would end its worker */
    if (c->watchdog_ms > 0 && c->script_max_cpu_ms >= c->watchdog_ms) {
        snprintf(err, errlen,
                 "script.max_cpu_ms (%d) must be below watchdog_ms (%d): the "
                 "watchdog would restart the worker before the budget stopped the script",
                 c->script_max_cpu_ms, c->watchdog_ms);
        tide_config_free(c);
        return TIDE_EINVAL;
    }
    if (!c->jwt_secret || strlen(c->jwt_secret) < 32) {
        snprintf(err, errlen, "jwt.secret (or TIDE_JWT_SECRET) must be at least 32 characters");
        tide_config_free(c);
        return TIDE_EINVAL;
    }
    int bad_key = c->enc_key_hex && parse_key(c->enc_key_hex, c->enc_key) != 0;
    if (c->enc_key_hex && !bad_key) c->has_enc_key = 1;
    /* the hex text is not kept: only the parsed key */
    if (c->enc_key_hex) memset(c->enc_key_hex, 0, strlen(c->enc_key_hex));
    free(c->enc_key_hex);
    c->enc_key_hex = NULL;
    if (bad_key) {
        snprintf(err, errlen, "crypto.key (or TIDE_ENCRYPTION_KEY) must be 64 hex characters");
        tide_config_free(c);
        return TIDE_EINVAL;
    }
    const char *v = getenv("TIDE_DEV"); /* not a setting: the mode the checks below apply */
    if (v && strcmp(v, "1") == 0) dev = 1;
    c->dev = dev;
    if (!dev && is_published_secret(c->jwt_secret)) {
        snprintf(err, errlen,
                 "jwt.secret is a published development secret: anyone could sign "
                 "tokens with it, service_role included. Set your own (TIDE_JWT_SECRET or "
                 "jwt.secret, e.g. `openssl rand -base64 48`), or pass --dev (TIDE_DEV=1) for "
                 "local development only");
        tide_config_free(c);
        return TIDE_EINVAL;
    }
    if (!dev && c->has_enc_key && is_published_key(c->enc_key)) {
        snprintf(err, errlen,
                 "crypto.key is the published development key: stored API keys "
                 "sealed with it are readable by anyone. Set your own (TIDE_ENCRYPTION_KEY or "
                 "crypto.key, 64 hex characters, e.g. `openssl rand -hex 32`), or pass --dev "
                 "(TIDE_DEV=1) for local development only");
        tide_config_free(c);
        return TIDE_EINVAL;
    }
    if (c->admin_token && strlen(c->admin_token) < 16) {
        snprintf(err, errlen,
                 "admin.token (or TIDE_ADMIN_TOKEN) must be at least 16 characters "
                 "(e.g. `openssl rand -hex 24`)");
        tide_config_free(c);
        return TIDE_EINVAL;
    }
    if (!dev && c->admin_token && strcmp(c->admin_token, published_admin_token) == 0) {
        /* not a refusal to start: without a token the admin listener still serves reads */
        memset(c->admin_token, 0, strlen(c->admin_token));
        free(c->admin_token);
        c->admin_token = NULL;
        c->admin_token_published = 1;
    }
    if (!c->upstreams[TIDE_UP_DIRECT].dsn) {
        snprintf(err, errlen, "upstreams.direct.dsn (or TIDE_DSN_DIRECT) is required");
        tide_config_free(c);
        return TIDE_EINVAL;
    }
    /* a budget below one largest body would answer every such body 503 */
    if (c->http.max_inflight_body_bytes && c->http.max_body_bytes &&
        c->http.max_inflight_body_bytes <= c->http.max_body_bytes) {
        snprintf(err, errlen,
                 "http.max_inflight_body_bytes (or TIDE_HTTP_MAX_INFLIGHT_BODY_BYTES)"
                 " must be larger than http.max_body_bytes");
        tide_config_free(c);
        return TIDE_EINVAL;
    }
    /* one LISTEN session hears both: a payload must say which of them it is for */
    if (c->cache_channel && c->rest_notify_channel && c->cache_channel[0] &&
        strcmp(c->cache_channel, c->rest_notify_channel) == 0) {
        snprintf(err, errlen,
                 "rest.notify_channel (or TIDE_REST_NOTIFY_CHANNEL) must differ "
                 "from cache.channel (or TIDE_CACHE_CHANNEL)");
        tide_config_free(c);
        return TIDE_EINVAL;
    }
    /* upstreams.transaction.prepare defaults to false: named statements do not survive a
     * transaction-mode pooler unless it tracks them (PgBouncer >= 1.21 with
     * max_prepared_statements, for one); setting it true says this one does. */
    return 0;
}

void tide_config_free(tide_config *c)
{
    tide_settings_free(config_table, NCONFIG, c);
    for (int i = 0; i < TIDE_UPSTREAMS; i++)
        tide_settings_free(upstream_table, NUPSTREAM, &c->upstreams[i]);
    memset(c->enc_key, 0, sizeof c->enc_key);
    memset(c, 0, sizeof *c);
}
