/* jwt.h - HS256 JSON Web Tokens: verify (signature, alg, exp, nbf, role) and mint (dev tokens).
 * Pure functions: no I/O, no logging. The caller passes the current time. */
#ifndef TIDE_JWT_H
#define TIDE_JWT_H

#include <stddef.h>
#include <time.h>
#include "error.h"

typedef enum tide_role { TIDE_ROLE_ANON = 0, TIDE_ROLE_AUTHENTICATED, TIDE_ROLE_SERVICE } tide_role;

typedef struct tide_jwt_claims {
    tide_role role;
    char *claims_json;   /* the payload JSON as sent (malloc'd; caller frees with free()) */
    char sub[64];        /* "sub" claim or "" */
    long long exp;       /* 0 when absent */
} tide_jwt_claims;

/* Verifies token (compact JWS "h.p.s", len bytes) with the HS256 secret.
 * Returns 0 and fills *out, or: TIDE_EPARSE (malformed, bad base64url or JSON, a NUL byte in
 * the decoded header or payload),
 * TIDE_EALG (alg other than HS256, including "none"), TIDE_EAUTH (bad signature),
 * TIDE_EEXPIRED (now >= exp), TIDE_ENOTYET (now < nbf), TIDE_EROLE (role claim other than
 * anon/authenticated/service_role; a missing role claim means authenticated),
 * TIDE_ENOMEM. leeway: seconds of clock skew allowed on exp/nbf. */
TIDE_MUST_CHECK int tide_jwt_verify(const char *secret, size_t secret_len, const char *token,
                                    size_t len, time_t now, int leeway, tide_jwt_claims *out);

/* Mints an HS256 token {"sub":sub,"role":role,"iat":now,"exp":now+ttl,"aud":"authenticated"}.
 * Returns a malloc'd NUL-terminated token in *out, or TIDE_ENOMEM / TIDE_EINVAL. */
TIDE_MUST_CHECK int tide_jwt_sign(const char *secret, size_t secret_len, const char *sub,
                                  const char *role, long long ttl, time_t now, char **out);

const char *tide_role_name(tide_role r);
/* Returns 0 and sets *out for "anon"/"authenticated"/"service_role", else TIDE_EROLE. */
int tide_role_parse(const char *name, size_t len, tide_role *out);

/* Internal, exposed for tests and tools. */
/* Encodes len bytes as unpadded base64url into out (room for 4 * ceil(len / 3) + 1 bytes);
 * NUL-terminates and returns the encoded length. */
size_t tide__b64url_encode(const void *in, size_t len, char *out);
/* Strictly decodes unpadded base64url (no '=', no whitespace, canonical trailing bits) into
 * out (room for 3 * len / 4 + 1 bytes). Returns 0 and the length in *outlen, or TIDE_EPARSE. */
TIDE_MUST_CHECK int tide__b64url_decode(const char *in, size_t len, unsigned char *out,
                                        size_t *outlen);
/* Signs an already encoded signing input "header64.payload64" (len bytes) with HS256 and
 * returns "header64.payload64.sig64" (malloc'd) in *out. 0 or TIDE_ENOMEM / TIDE_EINVAL. */
TIDE_MUST_CHECK int tide__jwt_sign_input(const char *secret, size_t secret_len,
                                         const char *input, size_t len, char **out);

#endif
