/* test_crypto.c - sealing API keys at rest: round trip, binding to a context (aad), the
 * version byte, tampering, wrong key, the old v1 format, bad input, and known answers for the
 * keyed hash and SHA-256. */
#include "test.h"
#include "../crypto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";

/* The context scripts/api_keys.lua and tide reseal bind a key to. */
static unsigned char *context(const char *user, const char *service, const char *name, size_t *len)
{
    const char *f[] = { "api_keys", user, service, name };
    size_t l[] = { 8, strlen(user), strlen(service), strlen(name) };
    unsigned char *aad = NULL;
    if (tide_crypto_aad(f, l, 4, &aad, len) != 0) return NULL;
    return aad;
}

#define ALICE "11111111-1111-1111-1111-111111111111"
#define BOB   "22222222-2222-2222-2222-222222222222"

/* Opens text under aad; returns the rc, and checks nothing leaks out on failure. */
static int open_with(const unsigned char *aad, size_t aadlen, const char *text, char **plain,
                     size_t *n)
{
    int rc = tide_crypto_open(key, aad, aadlen, text, strlen(text), plain, n);
    if (rc != 0 && (*plain != NULL || *n != 0)) return 999;
    return rc;
}

TEST(seal_open_round_trip)
{
    char *sealed = NULL, *plain = NULL;
    size_t n = 0, alen = 0;
    unsigned char *aad = context(ALICE, "openai", "default", &alen);
    CHECK(aad);
    CHECK_EQ_INT(tide_crypto_seal(key, aad, alen, "sk-live-secret", 14, &sealed), 0);
    CHECK(strncmp(sealed, "v2:", 3) == 0);
    CHECK_EQ_INT(tide_crypto_version(sealed, strlen(sealed)), 2);
    CHECK(strstr(sealed, "sk-live") == NULL);
    CHECK_EQ_INT(open_with(aad, alen, sealed, &plain, &n), 0);
    CHECK_EQ_INT(n, 14);
    CHECK_STR(plain, "sk-live-secret");
    char *again = NULL;
    CHECK_EQ_INT(tide_crypto_seal(key, aad, alen, "sk-live-secret", 14, &again), 0);
    CHECK(strcmp(sealed, again) != 0); /* a fresh nonce every time */
    free(sealed);
    free(plain);
    free(again);
    /* empty plaintext and empty aad are fine too */
    CHECK_EQ_INT(tide_crypto_seal(key, NULL, 0, "", 0, &sealed), 0);
    CHECK_EQ_INT(open_with(NULL, 0, sealed, &plain, &n), 0);
    CHECK_EQ_INT(n, 0);
    CHECK_STR(plain, "");
    free(sealed);
    free(plain);
    free(aad);
}

TEST(open_refuses_another_context)
{
    char *sealed = NULL, *plain = NULL;
    size_t n = 0, alen = 0, olen = 0;
    unsigned char *aad = context(ALICE, "openai", "default", &alen), *other;
    CHECK(aad);
    CHECK_EQ_INT(tide_crypto_seal(key, aad, alen, "sk-live-secret", 14, &sealed), 0);
    /* another user, service, key name: the text was moved to another row */
    const char *rows[][3] = { { BOB, "openai", "default" },
                              { ALICE, "openai", "prod" },
                              { ALICE, "maps", "default" },
                              /* the same bytes split differently across the fields */
                              { ALICE, "openaid", "efault" },
                              { ALICE "o", "penai", "default" } };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        other = context(rows[i][0], rows[i][1], rows[i][2], &olen);
        CHECK(other);
        int rc = open_with(other, olen, sealed, &plain, &n);
        free(other);
        CHECK_EQ_INT(rc, TIDE_EAUTH);
    }
    /* no context at all */
    CHECK_EQ_INT(open_with(NULL, 0, sealed, &plain, &n), TIDE_EAUTH);
    /* and its own row still opens */
    CHECK_EQ_INT(open_with(aad, alen, sealed, &plain, &n), 0);
    CHECK_STR(plain, "sk-live-secret");
    free(plain);
    free(sealed);
    free(aad);
}

TEST(aad_encoding_is_unambiguous)
{
    unsigned char *a = NULL, *b = NULL;
    size_t al = 0, bl = 0;
    const char *f1[] = { "ab", "c" }, *f2[] = { "a", "bc" };
    size_t l1[] = { 2, 1 }, l2[] = { 1, 2 };
    CHECK_EQ_INT(tide_crypto_aad(f1, l1, 2, &a, &al), 0);
    CHECK_EQ_INT(tide_crypto_aad(f2, l2, 2, &b, &bl), 0);
    CHECK_EQ_INT(al, 11);
    CHECK(al != bl || memcmp(a, b, al) != 0);
    static const unsigned char want[] = { 0, 0, 0, 2, 'a', 'b', 0, 0, 0, 1, 'c' };
    CHECK(memcmp(a, want, sizeof want) == 0);
    free(a);
    free(b);
    /* a NUL inside a field is just a byte */
    const char *f3[] = { "a\0b" };
    size_t l3[] = { 3 };
    CHECK_EQ_INT(tide_crypto_aad(f3, l3, 1, &a, &al), 0);
    CHECK_EQ_INT(al, 7);
    free(a);
    CHECK_EQ_INT(tide_crypto_aad(f1, l1, 0, &a, &al), TIDE_EINVAL);
    CHECK(a == NULL);
    size_t huge[] = { TIDE_CRYPTO_MAX_FIELD + 1 };
    CHECK_EQ_INT(tide_crypto_aad(f1, huge, 1, &a, &al), TIDE_EINVAL);
}

/* Flips the version byte inside the base64: every other value is refused, and so is a v2
 * payload relabelled "v1:" (no aad) or a v1 payload relabelled "v2:". */
TEST(open_refuses_tampered_version)
{
    char *sealed = NULL, *plain = NULL;
    size_t n = 0, alen = 0;
    unsigned char *aad = context(ALICE, "s", "k", &alen);
    CHECK_EQ_INT(tide_crypto_seal(key, aad, alen, "secret-value", 12, &sealed), 0);
    size_t tl = strlen(sealed);
    unsigned char *raw = malloc(tl);
    int rawlen = EVP_DecodeBlock(raw, (const unsigned char *)sealed + 3, (int)(tl - 3));
    CHECK(rawlen > 0);
    CHECK_EQ_INT(raw[0], 0x02);
    char *forged = malloc(tl + 8);
    for (int v = 0; v < 256; v++) {
        if (v == 2) continue;
        raw[0] = (unsigned char)v;
        memcpy(forged, "v2:", 3);
        EVP_EncodeBlock((unsigned char *)forged + 3, raw, rawlen);
        CHECK_EQ_INT(open_with(aad, alen, forged, &plain, &n), TIDE_EPARSE);
    }
    /* the whole v2 payload read as v1 (the attacker hopes for "no aad"): the tag fails */
    raw[0] = 0x02;
    memcpy(forged, "v1:", 3);
    EVP_EncodeBlock((unsigned char *)forged + 3, raw + 1, rawlen - 1);
    CHECK_EQ_INT(tide_crypto_open_v1(key, forged, strlen(forged), &plain, &n), TIDE_EAUTH);
    /* the text prefix alone changed: not a v2 text any more */
    memcpy(sealed, "v1:", 3);
    CHECK_EQ_INT(open_with(aad, alen, sealed, &plain, &n), TIDE_EPARSE);
    free(raw);
    free(forged);
    free(sealed);
    free(aad);
}

TEST(open_refuses_tampering_and_wrong_key)
{
    char *sealed = NULL, *plain = NULL;
    size_t n = 0;
    CHECK_EQ_INT(tide_crypto_seal(key, "ctx", 3, "secret", 6, &sealed), 0);
    size_t len = strlen(sealed);
    sealed[len / 2] = sealed[len / 2] == 'A' ? 'B' : 'A';
    CHECK_EQ_INT(tide_crypto_open(key, "ctx", 3, sealed, len, &plain, &n), TIDE_EAUTH);
    free(sealed);
    CHECK_EQ_INT(tide_crypto_seal(key, "ctx", 3, "secret", 6, &sealed), 0);
    unsigned char other[32];
    memcpy(other, key, 32);
    other[0] ^= 1;
    CHECK_EQ_INT(tide_crypto_open(other, "ctx", 3, sealed, strlen(sealed), &plain, &n), TIDE_EAUTH);
    CHECK(plain == NULL);
    free(sealed);
}

/* A text sealed by tide before associated data existed (made with the old crypto.c under
 * `key`): opens with tide_crypto_open_v1 only. */
#define V1_TEXT "v1:xiUJc8bNSP0fPyYSQJjCpPiMWNdhbZoEihYb76/rn6hVSTCFXN3L3yLBJEx+XtfHDg=="

TEST(v1_texts_open_only_for_resealing)
{
    char *plain = NULL;
    size_t n = 0, alen = 0;
    CHECK_EQ_INT(tide_crypto_version(V1_TEXT, strlen(V1_TEXT)), 1);
    CHECK_EQ_INT(tide_crypto_open_v1(key, V1_TEXT, strlen(V1_TEXT), &plain, &n), 0);
    CHECK_EQ_INT(n, 21);
    CHECK_STR(plain, "sk-legacy-secret-0001");
    free(plain);
    plain = NULL;
    /* the v2 opener never reads it, whatever the context */
    unsigned char *aad = context(ALICE, "s", "k", &alen);
    CHECK_EQ_INT(open_with(aad, alen, V1_TEXT, &plain, &n), TIDE_EPARSE);
    CHECK_EQ_INT(open_with(NULL, 0, V1_TEXT, &plain, &n), TIDE_EPARSE);
    free(aad);
    /* and the v1 opener reads no v2 text */
    char *sealed = NULL;
    CHECK_EQ_INT(tide_crypto_seal(key, NULL, 0, "x", 1, &sealed), 0);
    CHECK_EQ_INT(tide_crypto_open_v1(key, sealed, strlen(sealed), &plain, &n), TIDE_EPARSE);
    free(sealed);
    unsigned char other[32];
    memcpy(other, key, 32);
    other[31] ^= 0x80;
    CHECK_EQ_INT(tide_crypto_open_v1(other, V1_TEXT, strlen(V1_TEXT), &plain, &n), TIDE_EAUTH);
}

TEST(open_refuses_malformed_text)
{
    char *plain = NULL;
    size_t n = 0;
    const char *
        bad[] = { "",        "plain",   "v2:",
                  "v2:abc",  "v2:AAAA", "v3:AAAAAAAA",
                  "V2:AAAA", "v2:!!!!", "v2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" /* short */ };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_EQ_INT(tide_crypto_open(key, NULL, 0, bad[i], strlen(bad[i]), &plain, &n),
                     TIDE_EPARSE);
    CHECK_EQ_INT(tide_crypto_open_v1(key, "v1:", 3, &plain, &n), TIDE_EPARSE);
    CHECK_EQ_INT(tide_crypto_open_v1(key, "v1:AAAA", 7, &plain, &n), TIDE_EPARSE);
    CHECK_EQ_INT(tide_crypto_version("v2", 2), 0);
    CHECK_EQ_INT(tide_crypto_version(NULL, 0), 0);
    char *out = NULL;
    CHECK_EQ_INT(tide_crypto_seal(key, NULL, 0, "x", TIDE_CRYPTO_MAX_PLAIN + 1, &out),
                 TIDE_ETOOBIG);
    CHECK(out == NULL);
}

TEST(keyed_hash_known_answer)
{
    char hex[65];
    /* HMAC-SHA256(HMAC-SHA256(key, "tide api key hash v1"), data), computed independently
     * (Python's hmac module) */
    CHECK_EQ_INT(tide_crypto_keyed_hash_hex(key, "tide api key hash v1", "sk-live-secret", 14, hex),
                 0);
    CHECK_STR(hex, "e6db67b9d24d61c931f4e0df313c950fdddedc2868a6e924f66d5f78d012f0eb");
    CHECK_EQ_INT(tide_crypto_keyed_hash_hex(key, "tide api key hash v1", NULL, 0, hex), 0);
    CHECK_STR(hex, "362b21da5c3abfaad2ebb4d3e0f7d45de0e5430128977ea58b77e946e088fcb9");
    /* another label is another key; neither is the plain digest */
    char other[65], plain[65];
    CHECK_EQ_INT(tide_crypto_keyed_hash_hex(key, "another use", "sk-live-secret", 14, other), 0);
    CHECK(strcmp(hex, other) != 0);
    tide_crypto_sha256_hex("sk-live-secret", 14, plain);
    CHECK(strcmp(plain, other) != 0);
    CHECK_EQ_INT(tide_crypto_keyed_hash_hex(key, NULL, "x", 1, hex), TIDE_EINVAL);
}

TEST(sha256_hex_known_vector)
{
    char hex[65];
    tide_crypto_sha256_hex("abc", 3, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_LIST_BEGIN
TEST_ENTRY(seal_open_round_trip)
TEST_ENTRY(open_refuses_another_context)
TEST_ENTRY(aad_encoding_is_unambiguous)
TEST_ENTRY(open_refuses_tampered_version)
TEST_ENTRY(open_refuses_tampering_and_wrong_key)
TEST_ENTRY(v1_texts_open_only_for_resealing)
TEST_ENTRY(open_refuses_malformed_text)
TEST_ENTRY(keyed_hash_known_answer)
TEST_ENTRY(sha256_hex_known_vector)
TEST_LIST_END
