/* crypto.c - AES-256-GCM sealing and SHA-256 hex digests. */
#include "crypto.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#define NONCE 12
#define TAG 16
#define PREFIX "v1:"

int tide_crypto_seal(const unsigned char key[32], const char *plain, size_t len, char **out)
{
    if (len > (1u << 24)) return TIDE_ETOOBIG;
    size_t rawlen = NONCE + len + TAG;
    unsigned char *raw = malloc(rawlen);
    char *txt = malloc(sizeof PREFIX + 4 * ((rawlen + 2) / 3) + 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int rc = TIDE_EIO, n = 0, m = 0;
    if (!raw || !txt || !ctx) { rc = TIDE_ENOMEM; goto done; }
    if (RAND_bytes(raw, NONCE) != 1) goto done;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, raw) != 1) goto done;
    if (EVP_EncryptUpdate(ctx, raw + NONCE, &n, (const unsigned char *)plain, (int)len) != 1)
        goto done;
    if (EVP_EncryptFinal_ex(ctx, raw + NONCE + n, &m) != 1) goto done;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG, raw + NONCE + n + m) != 1) goto done;
    memcpy(txt, PREFIX, sizeof PREFIX - 1);
    EVP_EncodeBlock((unsigned char *)txt + sizeof PREFIX - 1, raw, (int)rawlen);
    *out = txt;
    txt = NULL;
    rc = 0;
done:
    EVP_CIPHER_CTX_free(ctx);
    if (raw) { OPENSSL_cleanse(raw, rawlen); free(raw); }
    free(txt);
    return rc;
}

int tide_crypto_open(const unsigned char key[32], const char *text, size_t len, char **out,
                     size_t *outlen)
{
    size_t pl = sizeof PREFIX - 1;
    if (len < pl || memcmp(text, PREFIX, pl) != 0) return TIDE_EPARSE;
    text += pl; len -= pl;
    if (len == 0 || len % 4 != 0 || len > (1u << 26)) return TIDE_EPARSE;
    unsigned char *raw = malloc(len / 4 * 3 + 1);
    if (!raw) return TIDE_ENOMEM;
    int rawlen = EVP_DecodeBlock(raw, (const unsigned char *)text, (int)len);
    if (rawlen < 0) { free(raw); return TIDE_EPARSE; }
    if (len >= 1 && text[len - 1] == '=') rawlen--;
    if (len >= 2 && text[len - 2] == '=') rawlen--;
    if (rawlen < NONCE + TAG) { free(raw); return TIDE_EPARSE; }
    int clen = rawlen - NONCE - TAG, n = 0, m = 0, rc = TIDE_EAUTH;
    char *plain = malloc((size_t)clen + 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!plain || !ctx) { rc = TIDE_ENOMEM; goto done; }
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, raw) != 1) goto done;
    if (EVP_DecryptUpdate(ctx, (unsigned char *)plain, &n, raw + NONCE, clen) != 1) goto done;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG, raw + NONCE + clen) != 1) goto done;
    if (EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + n, &m) != 1) goto done;
    plain[n + m] = 0;
    *out = plain;
    *outlen = (size_t)(n + m);
    plain = NULL;
    rc = 0;
done:
    EVP_CIPHER_CTX_free(ctx);
    free(raw);
    if (plain) { OPENSSL_cleanse(plain, (size_t)clen); free(plain); }
    return rc;
}

void tide_crypto_sha256_hex(const void *data, size_t len, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data, len, md);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = 0;
}
