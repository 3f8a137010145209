/* test_crypto.c - sealing API keys at rest: round trip, tampering, wrong key, bad input. */
#include "test.h"
#include "../crypto.h"

#include <stdlib.h>
#include <string.h>

static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";

TEST(seal_open_round_trip)
{
    char *sealed = NULL, *plain = NULL;
    size_t n = 0;
    CHECK_EQ_INT(tide_crypto_seal(key, "sk-live-secret", 14, &sealed), 0);
    CHECK(strncmp(sealed, "v1:", 3) == 0);
    CHECK(strstr(sealed, "sk-live") == NULL);
    CHECK_EQ_INT(tide_crypto_open(key, sealed, strlen(sealed), &plain, &n), 0);
    CHECK_EQ_INT(n, 14);
    CHECK_STR(plain, "sk-live-secret");
    char *again = NULL;
    CHECK_EQ_INT(tide_crypto_seal(key, "sk-live-secret", 14, &again), 0);
    CHECK(strcmp(sealed, again) != 0);           /* a fresh nonce every time */
    free(sealed); free(plain); free(again);
}

TEST(open_refuses_tampering_and_wrong_key)
{
    char *sealed = NULL, *plain = NULL;
    size_t n = 0;
    CHECK_EQ_INT(tide_crypto_seal(key, "secret", 6, &sealed), 0);
    size_t len = strlen(sealed);
    sealed[len / 2] = sealed[len / 2] == 'A' ? 'B' : 'A';
    CHECK_EQ_INT(tide_crypto_open(key, sealed, len, &plain, &n), TIDE_EAUTH);
    free(sealed);
    CHECK_EQ_INT(tide_crypto_seal(key, "secret", 6, &sealed), 0);
    unsigned char other[32];
    memcpy(other, key, 32);
    other[0] ^= 1;
    CHECK_EQ_INT(tide_crypto_open(other, sealed, strlen(sealed), &plain, &n), TIDE_EAUTH);
    free(sealed);
}

TEST(open_refuses_malformed_text)
{
    char *plain = NULL;
    size_t n = 0;
    CHECK_EQ_INT(tide_crypto_open(key, "plain", 5, &plain, &n), TIDE_EPARSE);
    CHECK_EQ_INT(tide_crypto_open(key, "v1:", 3, &plain, &n), TIDE_EPARSE);
    CHECK_EQ_INT(tide_crypto_open(key, "v1:abc", 6, &plain, &n), TIDE_EPARSE);
    CHECK_EQ_INT(tide_crypto_open(key, "v1:AAAA", 7, &plain, &n), TIDE_EPARSE);  /* too short */
}

TEST(sha256_hex_known_vector)
{
    char hex[65];
    tide_crypto_sha256_hex("abc", 3, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_LIST_BEGIN
    TEST_ENTRY(seal_open_round_trip)
    TEST_ENTRY(open_refuses_tampering_and_wrong_key)
    TEST_ENTRY(open_refuses_malformed_text)
    TEST_ENTRY(sha256_hex_known_vector)
TEST_LIST_END
