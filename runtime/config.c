/* config.c - loads etc/tide.conf.lua and TIDE_* environment overrides. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

static const char *const upstream_names[TIDE_UPSTREAMS] = { "direct", "session", "transaction" };

int tide_upstream_index(const char *name)
{
    for (int i = 0; i < TIDE_UPSTREAMS; i++)
        if (strcmp(name, upstream_names[i]) == 0) return i;
    return -1;
}

const char *tide_upstream_name(int i)
{
    return i >= 0 && i < TIDE_UPSTREAMS ? upstream_names[i] : "?";
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = v ? strdup(v) : NULL;
}

/* Reads t[key] from the table on top of the stack. */
static void get_str(lua_State *L, const char *key, char **dst)
{
    lua_getfield(L, -1, key);
    if (lua_type(L, -1) == LUA_TSTRING) set_str(dst, lua_tostring(L, -1));
    lua_pop(L, 1);
}

static void get_num(lua_State *L, const char *key, double *dst)
{
    lua_getfield(L, -1, key);
    if (lua_type(L, -1) == LUA_TNUMBER) *dst = lua_tonumber(L, -1);
    lua_pop(L, 1);
}

static void get_int(lua_State *L, const char *key, int *dst)
{
    double d = *dst;
    get_num(L, key, &d);
    *dst = (int)d;
}

static void get_bool(lua_State *L, const char *key, int *dst)
{
    lua_getfield(L, -1, key);
    if (lua_type(L, -1) == LUA_TBOOLEAN) *dst = lua_toboolean(L, -1);
    lua_pop(L, 1);
}

/* t[key] is absent, or of type want (and, for strings, not empty). */
static int check_type(lua_State *L, const char *key, int want)
{
    lua_getfield(L, -1, key);
    int t = lua_type(L, -1);
    int ok = t == LUA_TNIL || (t == want && (t != LUA_TSTRING || lua_objlen(L, -1) > 0));
    lua_pop(L, 1);
    return ok;
}

static int push_table(lua_State *L, const char *key)
{
    lua_getfield(L, -1, key);
    if (lua_istable(L, -1)) return 1;
    lua_pop(L, 1);
    return 0;
}

static void defaults(tide_config *c)
{
    memset(c, 0, sizeof *c);
    c->listen_host = strdup("127.0.0.1"); c->listen_port = 8080;
    c->admin_host = strdup("127.0.0.1");  c->admin_port = 8081;
    c->jwt_leeway = 30;
    c->jwt_require_exp = 1;
    c->bindings_dir = strdup("bindings");
    c->scripts_dir = strdup("scripts");
    c->policies_dir = strdup("policies");
    c->log_level = strdup("info");
    for (int i = 0; i < TIDE_UPSTREAMS; i++) {
        c->upstreams[i].pool_size = 10;
        c->upstreams[i].prepare = i != TIDE_UP_TRANSACTION;
        c->upstreams[i].acquire_timeout = 5.0;
        c->upstreams[i].connect_timeout = 5.0;
    }
    c->http.max_header_bytes = 16 * 1024;
    c->http.max_body_bytes = 1024 * 1024;
    c->http.read_timeout = 10.0;
    c->http.idle_timeout = 60.0;
    c->http.max_connections = 20000;
    c->http.max_inflight_body_bytes = 64 * 1024 * 1024;
    c->http.max_connections_per_client = 256;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static int parse_key(tide_config *c, const char *hex)
{
    if (strlen(hex) != 64) return -1;
    for (int i = 0; i < 32; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        c->enc_key[i] = (unsigned char)(hi << 4 | lo);
    }
    c->has_enc_key = 1;
    return 0;
}

static int load_file(const char *path, tide_config *c, char *key_hex, size_t keycap,
                     char *err, size_t errlen)
{
    lua_State *L = luaL_newstate();
    if (!L) { snprintf(err, errlen, "out of memory"); return TIDE_ENOMEM; }
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
    if (push_table(L, "listen")) {
        get_str(L, "host", &c->listen_host); get_int(L, "port", &c->listen_port); lua_pop(L, 1);
    }
    if (push_table(L, "admin")) {
        get_str(L, "host", &c->admin_host); get_int(L, "port", &c->admin_port); lua_pop(L, 1);
    }
    if (push_table(L, "jwt")) {
        get_str(L, "secret", &c->jwt_secret); get_int(L, "leeway", &c->jwt_leeway);
        /* strict types: a misspelt value must not quietly turn a check off */
        const char *bad = NULL;
        if (!check_type(L, "require_exp", LUA_TBOOLEAN))
            bad = "jwt.require_exp must be true or false";
        else if (!check_type(L, "audience", LUA_TSTRING))
            bad = "jwt.audience must be a non-empty string";
        else if (!check_type(L, "issuer", LUA_TSTRING))
            bad = "jwt.issuer must be a non-empty string";
        get_bool(L, "require_exp", &c->jwt_require_exp);
        get_str(L, "audience", &c->jwt_audience);
        get_str(L, "issuer", &c->jwt_issuer);
        lua_pop(L, 1);
        if (bad) {
            snprintf(err, errlen, "%s: %s", path, bad);
            lua_close(L);
            return TIDE_EINVAL;
        }
    }
    if (push_table(L, "paths")) {
        get_str(L, "bindings", &c->bindings_dir);
        get_str(L, "scripts", &c->scripts_dir);
        get_str(L, "policies", &c->policies_dir);
        lua_pop(L, 1);
    }
    get_str(L, "log_level", &c->log_level);
    if (push_table(L, "http")) {
        double d;
        d = (double)c->http.max_header_bytes; get_num(L, "max_header_bytes", &d);
        c->http.max_header_bytes = (size_t)d;
        d = (double)c->http.max_body_bytes; get_num(L, "max_body_bytes", &d);
        c->http.max_body_bytes = (size_t)d;
        get_num(L, "read_timeout", &c->http.read_timeout);
        get_num(L, "idle_timeout", &c->http.idle_timeout);
        get_int(L, "max_connections", &c->http.max_connections);
        d = (double)c->http.max_inflight_body_bytes; get_num(L, "max_inflight_body_bytes", &d);
        c->http.max_inflight_body_bytes = (size_t)d;
        get_int(L, "max_connections_per_client", &c->http.max_connections_per_client);
        lua_pop(L, 1);
    }
    if (push_table(L, "upstreams")) {
        for (int i = 0; i < TIDE_UPSTREAMS; i++) {
            if (!push_table(L, upstream_names[i])) continue;
            tide_upstream_config *u = &c->upstreams[i];
            get_str(L, "dsn", &u->dsn);
            get_int(L, "pool_size", &u->pool_size);
            get_bool(L, "prepare", &u->prepare);
            get_num(L, "acquire_timeout", &u->acquire_timeout);
            get_num(L, "connect_timeout", &u->connect_timeout);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    if (push_table(L, "crypto")) {
        lua_getfield(L, -1, "key");
        if (lua_type(L, -1) == LUA_TSTRING) snprintf(key_hex, keycap, "%s", lua_tostring(L, -1));
        lua_pop(L, 2);
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
    tide_config k;
    memset(&k, 0, sizeof k);
    if (parse_key(&k, published_enc_key) != 0) return 0;
    int same = memcmp(key, k.enc_key, sizeof k.enc_key) == 0;
    memset(k.enc_key, 0, sizeof k.enc_key);
    return same;
}

int tide_config_load(const char *path, int dev, tide_config *c, char *err, size_t errlen)
{
    char key_hex[80] = "";
    defaults(c);
    if (path) {
        int rc = load_file(path, c, key_hex, sizeof key_hex, err, errlen);
        if (rc != 0) { tide_config_free(c); return rc; }
    }
    const char *v;
    if ((v = getenv("TIDE_JWT_SECRET")) && *v) set_str(&c->jwt_secret, v);
    if ((v = getenv("TIDE_JWT_AUDIENCE")) && *v) set_str(&c->jwt_audience, v);
    if ((v = getenv("TIDE_JWT_ISSUER")) && *v) set_str(&c->jwt_issuer, v);
    if ((v = getenv("TIDE_JWT_REQUIRE_EXP")) && *v) {
        if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) {
            snprintf(err, errlen, "TIDE_JWT_REQUIRE_EXP must be 0 or 1");
            tide_config_free(c);
            return TIDE_EINVAL;
        }
        c->jwt_require_exp = v[0] == '1';
    }
    if ((v = getenv("TIDE_HTTP_PORT")) && *v) c->listen_port = atoi(v);
    if ((v = getenv("TIDE_ADMIN_PORT")) && *v) c->admin_port = atoi(v);
    if ((v = getenv("TIDE_SCRIPTS_DIR")) && *v) set_str(&c->scripts_dir, v);
    if ((v = getenv("TIDE_POLICIES_DIR")) && *v) set_str(&c->policies_dir, v);
    if ((v = getenv("TIDE_BINDINGS_DIR")) && *v) set_str(&c->bindings_dir, v);
    if ((v = getenv("TIDE_LOG_LEVEL")) && *v) set_str(&c->log_level, v);
    if ((v = getenv("TIDE_ENCRYPTION_KEY")) && *v) snprintf(key_hex, sizeof key_hex, "%s", v);
    if ((v = getenv("TIDE_HTTP_MAX_INFLIGHT_BODY_BYTES")) && *v)
        c->http.max_inflight_body_bytes = (size_t)strtoull(v, NULL, 10);
    if ((v = getenv("TIDE_HTTP_MAX_CONNECTIONS_PER_CLIENT")) && *v)
        c->http.max_connections_per_client = atoi(v);
    static const char *const dsn_env[TIDE_UPSTREAMS] = {
        "TIDE_DSN_DIRECT", "TIDE_DSN_SESSION", "TIDE_DSN_TRANSACTION" };
    for (int i = 0; i < TIDE_UPSTREAMS; i++)
        if ((v = getenv(dsn_env[i])) && *v) set_str(&c->upstreams[i].dsn, v);

    if (!c->jwt_secret || strlen(c->jwt_secret) < 32) {
        snprintf(err, errlen, "jwt.secret (or TIDE_JWT_SECRET) must be at least 32 characters");
        tide_config_free(c);
        return TIDE_EINVAL;
    }
    if (key_hex[0] && parse_key(c, key_hex) != 0) {
        snprintf(err, errlen, "crypto.key (or TIDE_ENCRYPTION_KEY) must be 64 hex characters");
        tide_config_free(c);
        return TIDE_EINVAL;
    }
    if ((v = getenv("TIDE_DEV")) && strcmp(v, "1") == 0) dev = 1;
    c->dev = dev;
    if (!dev && is_published_secret(c->jwt_secret)) {
        snprintf(err, errlen, "jwt.secret is a published development secret: anyone could sign "
                 "tokens with it, service_role included. Set your own (TIDE_JWT_SECRET or "
                 "jwt.secret, e.g. `openssl rand -base64 48`), or pass --dev (TIDE_DEV=1) for "
                 "local development only");
        tide_config_free(c);
        return TIDE_EINVAL;
    }
    if (!dev && c->has_enc_key && is_published_key(c->enc_key)) {
        snprintf(err, errlen, "crypto.key is the published development key: stored API keys "
                 "sealed with it are readable by anyone. Set your own (TIDE_ENCRYPTION_KEY or "
                 "crypto.key, 64 hex characters, e.g. `openssl rand -hex 32`), or pass --dev "
                 "(TIDE_DEV=1) for local development only");
        tide_config_free(c);
        return TIDE_EINVAL;
    }
    if (!c->upstreams[TIDE_UP_DIRECT].dsn) {
        snprintf(err, errlen, "upstreams.direct.dsn (or TIDE_DSN_DIRECT) is required");
        tide_config_free(c);
        return TIDE_EINVAL;
    }
    /* a budget below one largest body would answer every such body 503 */
    if (c->http.max_inflight_body_bytes && c->http.max_body_bytes &&
        c->http.max_inflight_body_bytes <= c->http.max_body_bytes) {
        snprintf(err, errlen, "http.max_inflight_body_bytes (or TIDE_HTTP_MAX_INFLIGHT_BODY_BYTES)"
                 " must be larger than http.max_body_bytes");
        tide_config_free(c);
        return TIDE_EINVAL;
    }
    if (c->http.max_connections_per_client < 0) {
        snprintf(err, errlen, "http.max_connections_per_client (or "
                 "TIDE_HTTP_MAX_CONNECTIONS_PER_CLIENT) must be 0 (no cap) or more");
        tide_config_free(c);
        return TIDE_EINVAL;
    }
    for (int i = 0; i < TIDE_UPSTREAMS; i++) {
        if (c->upstreams[i].pool_size < 1 || c->upstreams[i].pool_size > 1000) {
            snprintf(err, errlen, "upstreams.%s.pool_size must be 1..1000", upstream_names[i]);
            tide_config_free(c);
            return TIDE_EINVAL;
        }
    }
    /* upstreams.transaction.prepare defaults to false: named statements do not survive a
     * transaction-mode pooler unless it tracks them (PgBouncer >= 1.21 with
     * max_prepared_statements, for one); setting it true says this one does. */
    return 0;
}

void tide_config_free(tide_config *c)
{
    free(c->listen_host); free(c->admin_host); free(c->jwt_secret);
    free(c->jwt_audience); free(c->jwt_issuer);
    free(c->bindings_dir); free(c->scripts_dir); free(c->policies_dir); free(c->log_level);
    for (int i = 0; i < TIDE_UPSTREAMS; i++) free(c->upstreams[i].dsn);
    memset(c->enc_key, 0, sizeof c->enc_key);
    memset(c, 0, sizeof *c);
}
