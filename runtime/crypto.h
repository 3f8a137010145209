/* crypto.h - secrets at rest (OpenSSL): AES-256-GCM sealing bound to a context, keyed hashes
 * and SHA-256 digests. Pure: no I/O, no logging, no global state.
 *
 * Sealed text, version 2 (what tide_crypto_seal makes):
 *     "v2:" base64( 0x02 | nonce[12] | ciphertext | tag[16] )
 * The GCM associated data is the version byte followed by the caller's aad, so a text opens
 * only with the aad it was sealed with: a ciphertext copied to another row (another user,
 * service or key name, when the aad names them) does not open, and neither does one whose
 * version byte was changed. Build aad with tide_crypto_aad (length-prefixed fields), so no
 * two field lists encode alike. The "v2:" prefix lets SQL and people tell the formats apart;
 * the byte is what GCM authenticates.
 * Version 1 (before associated data): "v1:" base64( nonce[12] | ciphertext | tag[16] ),
 * bound to nothing. Only tide_crypto_open_v1 reads it, to re-seal old rows (tide reseal).
 *
 * Keyed hash: HMAC-SHA256(HMAC-SHA256(key, label), data). The label names the use and derives
 * a key for it, so the sealing key itself never keys a hash of user data. */
#ifndef TIDE_CRYPTO_H
#define TIDE_CRYPTO_H

#include <stddef.h>
#include "error.h"

#define TIDE_CRYPTO_MAX_PLAIN  (1u << 24) /* longer plaintexts are TIDE_ETOOBIG */
#define TIDE_CRYPTO_MAX_FIELDS 16         /* per aad */
#define TIDE_CRYPTO_MAX_FIELD  (1u << 16) /* bytes per aad field */

/* Encodes n fields (fields[i], lens[i] bytes; may hold any byte) as associated data: for each,
 * its length as 4 bytes big-endian, then its bytes. Returns 0 and a malloc'd buffer in *out
 * (*outlen bytes), TIDE_EINVAL for n == 0 or above TIDE_CRYPTO_MAX_FIELDS or a field above
 * TIDE_CRYPTO_MAX_FIELD, or TIDE_ENOMEM. */
TIDE_MUST_CHECK int tide_crypto_aad(const char *const *fields, const size_t *lens, size_t n,
                                    unsigned char **out, size_t *outlen);

/* Seals plain (len bytes) with key, bound to aad (aadlen bytes; may be empty), as version 2.
 * Returns 0 and a malloc'd NUL-terminated string in *out, or TIDE_ETOOBIG, TIDE_ENOMEM,
 * TIDE_EIO (OpenSSL failed: no randomness). */
TIDE_MUST_CHECK int tide_crypto_seal(const unsigned char key[32], const void *aad, size_t aadlen,
                                     const char *plain, size_t len, char **out);

/* Opens a version 2 text sealed with key and the same aad. Returns 0 and malloc'd plaintext
 * (*out, *outlen, also NUL-terminated; the caller clears and frees it), TIDE_EPARSE for a text
 * that is not version 2 (a v1 text included: check tide_crypto_version) or is malformed or
 * carries another version byte, TIDE_EAUTH when the tag does not verify (other aad, other
 * key, or tampering), TIDE_ENOMEM. */
TIDE_MUST_CHECK int tide_crypto_open(const unsigned char key[32], const void *aad, size_t aadlen,
                                     const char *text, size_t len, char **out, size_t *outlen);

/* Opens a version 1 text (no associated data), as tide_crypto_open. For re-sealing only: a
 * v1 text is bound to no row, so it proves nothing about where it was found. */
TIDE_MUST_CHECK int tide_crypto_open_v1(const unsigned char key[32], const char *text, size_t len,
                                        char **out, size_t *outlen);

/* The format of a sealed text by its prefix: 2 ("v2:"), 1 ("v1:"), or 0 (neither). */
int tide_crypto_version(const char *text, size_t len);

/* Writes the lower-case hex HMAC-SHA256(HMAC-SHA256(key, label), data) into hex (65 bytes with
 * the NUL). Returns 0, TIDE_EINVAL (label NULL) or TIDE_ENOMEM. */
TIDE_MUST_CHECK int tide_crypto_keyed_hash_hex(const unsigned char key[32], const char *label,
                                               const void *data, size_t len, char hex[65]);

/* Clears len bytes of p (in a way the compiler keeps) and frees p. NULL is fine. */
void tide_crypto_free_secret(void *p, size_t len);

/* 1 when a (alen bytes) and b (blen bytes) are equal, else 0, in a time that depends on
 * neither their contents nor where they differ, nor on how their lengths compare (both are
 * hashed first): for comparing a presented secret with the configured one. */
int tide_crypto_equal_secret(const void *a, size_t alen, const void *b, size_t blen);

/* Writes the lower-case hex SHA-256 of data into hex (65 bytes with the NUL). */
void tide_crypto_sha256_hex(const void *data, size_t len, char hex[65]);

#endif
