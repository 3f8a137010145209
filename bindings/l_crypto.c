/* l_crypto.c - tide.core's sealing and hashing (l_core.c, runtime/crypto.h): seal, open
 * (under the configured crypto key, bound to a context), keyed_hash_hex, sha256_hex. */
#include <stddef.h>
#include <stdlib.h>
#include <lua.h>
#include <lauxlib.h>

#include "l_common.h"
#include "../runtime/app.h"
#include "../runtime/crypto.h"
#include "../runtime/error.h"
#include "../runtime/task_api.h"

static const unsigned char *enc_key(lua_State *L)
{
    tide_app *app = tide_vm_app(core_vm(L));
    if (!app->cfg.has_enc_key)
        tide__l_misuse(L, "no encryption key configured (crypto.key or TIDE_ENCRYPTION_KEY)");
    return app->cfg.enc_key;
}

/* The associated data for core.seal / core.open: the string arguments from index first to the
 * top, length-prefixed (tide_crypto_aad). At least one: a sealed secret always names what it
 * belongs to. Raises on misuse; call it after anything else that may raise (it allocates). */
static unsigned char *seal_context(lua_State *L, int first, size_t *len)
{
    const char *f[TIDE_CRYPTO_MAX_FIELDS];
    size_t l[TIDE_CRYPTO_MAX_FIELDS];
    int n = lua_gettop(L) - first + 1;
    if (n < 1 || n > TIDE_CRYPTO_MAX_FIELDS)
        tide__l_misuse(L, "a sealing context of 1 to %d strings is required",
                       TIDE_CRYPTO_MAX_FIELDS);
    for (int i = 0; i < n; i++) f[i] = luaL_checklstring(L, first + i, &l[i]);
    unsigned char *aad = NULL;
    if (tide_crypto_aad(f, l, (size_t)n, &aad, len) != 0)
        tide__l_misuse(L, "sealing context too large");
    return aad;
}

/* core.seal(plain, field...) -> "v2:..." | nil, err */
static int l_seal(lua_State *L)
{
    size_t len, alen = 0;
    const unsigned char *key = enc_key(L);
    const char *plain = luaL_checklstring(L, 1, &len);
    unsigned char *aad = seal_context(L, 2, &alen);
    char *out = NULL;
    int rc = tide_crypto_seal(key, aad, alen, plain, len, &out);
    free(aad);
    if (rc != 0) {
        lua_pushnil(L);
        lua_pushstring(L, tide_strerror(rc));
        return 2;
    }
    lua_pushstring(L, out);
    free(out);
    return 1;
}

/* core.open(text, field...) -> plain | nil, message, reason ("legacy", "unreadable",
 * "malformed"). A v1 text is never opened here: only tide reseal reads that format. */
static int l_open(lua_State *L)
{
    size_t len, alen = 0, outlen = 0;
    const unsigned char *key = enc_key(L);
    const char *text = luaL_checklstring(L, 1, &len);
    unsigned char *aad = seal_context(L, 2, &alen);
    char *out = NULL;
    int legacy = tide_crypto_version(text, len) == 1;
    int rc = legacy ? TIDE_EPARSE : tide_crypto_open(key, aad, alen, text, len, &out, &outlen);
    free(aad);
    if (rc == 0) {
        lua_pushlstring(L, out, outlen);
        tide_crypto_free_secret(out, outlen);
        return 1;
    }
    lua_pushnil(L);
    if (legacy) {
        lua_pushstring(L, "sealed in the v1 format, bound to no row: run `tide reseal`");
        lua_pushstring(L, "legacy");
    } else if (rc == TIDE_EAUTH) {
        lua_pushstring(L, "does not open here: sealed for another row or user, altered, or "
                          "sealed under another key");
        lua_pushstring(L, "unreadable");
    } else if (rc == TIDE_EPARSE) {
        lua_pushstring(L, "not a sealed text");
        lua_pushstring(L, "malformed");
    } else {
        lua_pushstring(L, tide_strerror(rc));
        lua_pushstring(L, "error");
    }
    return 3;
}

/* core.keyed_hash_hex(label, s) -> 64 hex chars: HMAC-SHA256 under a key derived from the
 * configured crypto key and label */
static int l_keyed_hash_hex(lua_State *L)
{
    size_t len;
    const unsigned char *key = enc_key(L);
    const char *label = luaL_checkstring(L, 1);
    const char *s = luaL_checklstring(L, 2, &len);
    char hex[65];
    int rc = tide_crypto_keyed_hash_hex(key, label, s, len, hex);
    if (rc != 0) luaL_error(L, "keyed hash: %s", tide_strerror(rc));
    lua_pushlstring(L, hex, 64);
    return 1;
}

static int l_sha256_hex(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    char hex[65];
    tide_crypto_sha256_hex(s, len, hex);
    lua_pushlstring(L, hex, 64);
    return 1;
}

const luaL_Reg tide__l_crypto_fns[] = { { "seal", l_seal },
                                        { "open", l_open },
                                        { "sha256_hex", l_sha256_hex },
                                        { "keyed_hash_hex", l_keyed_hash_hex },
                                        { NULL, NULL } };
