/* crypto.c - AES-256-GCM sealing with associated data, keyed hashes, SHA-256 hex digests (see
 * crypto.h for the formats). */
#include "crypto.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#define NONCE      12
#define TAG        16
#define V2_BYTE    0x02
#define PREFIX_LEN 3          /* "v1:" / "v2:" */
#define MAX_TEXT   (1u << 26) /* longer texts cannot come from a plaintext we would seal */

int tide_crypto_aad(const char *const *fields, const size_t *lens, size_t n, unsigned char **out,
                    size_t *outlen)
{
    size_t total = 0;
    if (!out || !outlen) return TIDE_EINVAL;
    *out = NULL;
    *outlen = 0;
    if (n == 0 || n > TIDE_CRYPTO_MAX_FIELDS || !fields || !lens) return TIDE_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > TIDE_CRYPTO_MAX_FIELD || (lens[i] && !fields[i])) return TIDE_EINVAL;
        total += 4 + lens[i];
    }
    unsigned char *buf = malloc(total), *p = buf;
    if (!buf) return TIDE_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        uint32_t l = (uint32_t)lens[i];
        *p++ = (unsigned char)(l >> 24);
        *p++ = (unsigned char)(l >> 16);
        *p++ = (unsigned char)(l >> 8);
        *p++ = (unsigned char)l;
        if (l) memcpy(p, fields[i], l);
        p += l;
    }
    *out = buf;
    *outlen = total;
    return 0;
}

int tide_crypto_version(const char *text, size_t len)
{
    if (!text || len < PREFIX_LEN) return 0;
    if (memcmp(text, "v2:", PREFIX_LEN) == 0) return 2;
    if (memcmp(text, "v1:", PREFIX_LEN) == 0) return 1;
    return 0;
}

int tide_crypto_seal(const unsigned char key[32], const void *aad, size_t aadlen, const char *plain,
                     size_t len, char **out)
{
    if (!out) return TIDE_EINVAL;
    *out = NULL;
    if (!key || (len && !plain) || (aadlen && !aad)) return TIDE_EINVAL;
    if (len > TIDE_CRYPTO_MAX_PLAIN || aadlen > INT_MAX) return TIDE_ETOOBIG;
    size_t rawlen = 1 + NONCE + len + TAG;
    unsigned char *raw = malloc(rawlen);
    char *txt = malloc(PREFIX_LEN + 4 * ((rawlen + 2) / 3) + 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    unsigned char *nonce, *ct;
    int rc = TIDE_EIO, n = 0, m = 0;
    if (!raw || !txt || !ctx) {
        rc = TIDE_ENOMEM;
        goto done;
    }
    nonce = raw + 1;
    ct = nonce + NONCE;
    raw[0] = V2_BYTE;
    if (RAND_bytes(nonce, NONCE) != 1) goto done;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) != 1) goto done;
    /* associated data: the version byte, then the caller's context */
    if (EVP_EncryptUpdate(ctx, NULL, &n, raw, 1) != 1) goto done;
    if (aadlen && EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aadlen) != 1) goto done;
    n = 0;
    if (len && EVP_EncryptUpdate(ctx, ct, &n, (const unsigned char *)plain, (int)len) != 1)
        goto done;
    if (EVP_EncryptFinal_ex(ctx, ct + n, &m) != 1) goto done;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG, ct + n + m) != 1) goto done;
    memcpy(txt, "v2:", PREFIX_LEN);
    EVP_EncodeBlock((unsigned char *)txt + PREFIX_LEN, raw, (int)rawlen);
    *out = txt;
    txt = NULL;
    rc = 0;
done:
    EVP_CIPHER_CTX_free(ctx);
    if (raw) {
        OPENSSL_cleanse(raw, rawlen);
        free(raw);
    }
    free(txt);
    return rc;
}

/* Decodes the base64 after the prefix into a fresh buffer (*raw, *rawlen bytes). */
static int decode_text(const char *text, size_t len, unsigned char **raw, size_t *rawlen)
{
    text += PREFIX_LEN;
    len -= PREFIX_LEN;
    if (len == 0 || len % 4 != 0 || len > MAX_TEXT) return TIDE_EPARSE;
    unsigned char *buf = malloc(len / 4 * 3 + 1);
    if (!buf) return TIDE_ENOMEM;
    int n = EVP_DecodeBlock(buf, (const unsigned char *)text, (int)len);
    if (n < 0) {
        free(buf);
        return TIDE_EPARSE;
    }
    if (text[len - 1] == '=') n--;
    if (text[len - 2] == '=') n--;
    *raw = buf;
    *rawlen = (size_t)n;
    return 0;
}

/* GCM-decrypts ct (clen bytes) with nonce and tag under key and the associated data a1, a2. */
static int gcm_open(const unsigned char key[32], const unsigned char *nonce,
                    const unsigned char *a1, size_t a1len, const unsigned char *a2, size_t a2len,
                    const unsigned char *ct, size_t clen, const unsigned char *tag, char **out,
                    size_t *outlen)
{
    int n = 0, m = 0, rc = TIDE_EAUTH;
    char *plain = malloc(clen + 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!plain || !ctx) {
        rc = TIDE_ENOMEM;
        goto done;
    }
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) != 1) goto done;
    if (a1len && EVP_DecryptUpdate(ctx, NULL, &n, a1, (int)a1len) != 1) goto done;
    if (a2len && EVP_DecryptUpdate(ctx, NULL, &n, a2, (int)a2len) != 1) goto done;
    n = 0;
    if (clen && EVP_DecryptUpdate(ctx, (unsigned char *)plain, &n, ct, (int)clen) != 1) goto done;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG, (void *)tag) != 1) goto done;
    if (EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + n, &m) != 1) goto done;
    plain[n + m] = 0;
    *out = plain;
    *outlen = (size_t)(n + m);
    plain = NULL;
    rc = 0;
done:
    EVP_CIPHER_CTX_free(ctx);
    if (plain) {
        OPENSSL_cleanse(plain, clen + 1);
        free(plain);
    }
    return rc;
}

int tide_crypto_open(const unsigned char key[32], const void *aad, size_t aadlen, const char *text,
                     size_t len, char **out, size_t *outlen)
{
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    if (!out || !outlen) return TIDE_EINVAL;
    *out = NULL;
    *outlen = 0;
    if (!key || !text || (aadlen && !aad)) return TIDE_EINVAL;
    if (aadlen > INT_MAX) return TIDE_ETOOBIG;
    if (tide_crypto_version(text, len) != 2) return TIDE_EPARSE;
    int rc = decode_text(text, len, &raw, &rawlen);
    if (rc != 0) return rc;
    if (rawlen < 1 + NONCE + TAG || raw[0] != V2_BYTE) {
        free(raw);
        return TIDE_EPARSE;
    }
    size_t clen = rawlen - 1 - NONCE - TAG;
    rc = gcm_open(key, raw + 1, raw, 1, aad, aadlen, raw + 1 + NONCE, clen, raw + 1 + NONCE + clen,
                  out, outlen);
    free(raw);
    return rc;
}

int tide_crypto_open_v1(const unsigned char key[32], const char *text, size_t len, char **out,
                        size_t *outlen)
{
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    if (!out || !outlen) return TIDE_EINVAL;
    *out = NULL;
    *outlen = 0;
    if (!key || !text) return TIDE_EINVAL;
    if (tide_crypto_version(text, len) != 1) return TIDE_EPARSE;
    int rc = decode_text(text, len, &raw, &rawlen);
    if (rc != 0) return rc;
    if (rawlen < NONCE + TAG) {
        free(raw);
        return TIDE_EPARSE;
    }
    size_t clen = rawlen - NONCE - TAG;
    rc = gcm_open(key, raw, NULL, 0, NULL, 0, raw + NONCE, clen, raw + NONCE + clen, out, outlen);
    free(raw);
    return rc;
}

static void to_hex(const unsigned char md[32], char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = 0;
}

int tide_crypto_keyed_hash_hex(const unsigned char key[32], const char *label, const void *data,
                               size_t len, char hex[65])
{
    unsigned char sub[32], md[32];
    unsigned int n = 0;
    if (!key || !label || (len && !data)) return TIDE_EINVAL;
    if (!HMAC(EVP_sha256(), key, 32, (const unsigned char *)label, strlen(label), sub, &n) ||
        n != 32)
        return TIDE_ENOMEM; /* OpenSSL fails here only when it cannot allocate */
    static const unsigned char none = 0;
    const unsigned char *d = len ? data : &none;
    int ok = HMAC(EVP_sha256(), sub, 32, d, len, md, &n) && n == 32;
    OPENSSL_cleanse(sub, sizeof sub);
    if (!ok) return TIDE_ENOMEM;
    to_hex(md, hex);
    return 0;
}

void tide_crypto_free_secret(void *p, size_t len)
{
    if (!p) return;
    OPENSSL_cleanse(p, len);
    free(p);
}

void tide_crypto_sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data, len, md);
    to_hex(md, hex);
}

int tide_crypto_equal_secret(const void *a, size_t alen, const void *b, size_t blen)
{
    unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];
    SHA256(a ? a : "", a ? alen : 0, da);
    SHA256(b ? b : "", b ? blen : 0, db);
    /* equal digests of inputs of equal length: equal inputs (SHA-256 has no known collision) */
    return CRYPTO_memcmp(da, db, sizeof da) == 0 && alen == blen;
}
