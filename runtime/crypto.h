/* crypto.h - secrets at rest: AES-256-GCM sealing and SHA-256 digests (OpenSSL). Pure. */
#ifndef TIDE_CRYPTO_H
#define TIDE_CRYPTO_H

#include <stddef.h>
#include "error.h"

/* Seals plain with key into "v1:" + base64(nonce[12] | ciphertext | tag[16]).
 * Returns 0 and a malloc'd NUL-terminated string in *out, or TIDE_ENOMEM/TIDE_EIO. */
TIDE_MUST_CHECK int tide_crypto_seal(const unsigned char key[32], const char *plain, size_t len,
                                     char **out);
/* Opens what tide_crypto_seal made. Returns 0 and malloc'd plaintext (*out, *outlen, also
 * NUL-terminated), TIDE_EPARSE for a malformed text or TIDE_EAUTH when the tag does not
 * verify (wrong key or tampering). */
TIDE_MUST_CHECK int tide_crypto_open(const unsigned char key[32], const char *text, size_t len,
                                     char **out, size_t *outlen);
/* Writes the lower-case hex SHA-256 of data into hex (65 bytes with the NUL). */
void tide_crypto_sha256_hex(const void *data, size_t len, char hex[65]);

#endif
