/* jwt.h - HS256 JSON Web Tokens: verify (signature, alg, exp, nbf, role, and the configured
 * policy: exp required, aud, iss) and mint (dev tokens).
 * Pure functions: no I/O, no logging. The caller passes the current time and the policy. */
#ifndef TIDE_JWT_H
#define TIDE_JWT_H

#include <stddef.h>
#include <time.h>
#include "error.h"

typedef enum tide_role { TIDE_ROLE_ANON = 0, TIDE_ROLE_AUTHENTICATED, TIDE_ROLE_SERVICE } tide_role;

/* What a token must satisfy besides its signature and algorithm (tide's jwt.* config; fixed
 * at start). Modelled on PostgREST's jwt-aud. */
typedef struct tide_jwt_policy {
    int leeway;           /* seconds of clock skew allowed on exp/nbf (negative means 0) */
    int require_exp;      /* refuse a token without exp (else it never expires) */
    const char *audience; /* NULL: aud is not looked at; else aud (a string, or an array of
                              * strings) must contain it, and a token without aud is refused */
    const char *issuer;   /* NULL: iss is not looked at; else iss must equal it */
} tide_jwt_policy;

typedef struct tide_jwt_claims {
    tide_role role;
    char *claims_json; /* the payload JSON as sent (malloc'd; caller frees with free());
                          * never holds a NUL byte, so strlen() is its length */
    char sub[64];      /* "sub" claim or "" */
    long long exp;     /* floor of the exp claim (INT64_MAX when larger); 0 when absent */
    int has_exp;       /* the token has an exp claim */
} tide_jwt_claims;

/* Verifies token (compact JWS "h.p.s", len bytes) with the HS256 secret under policy (NULL:
 * leeway 0, exp required, aud and iss not looked at).
 * Returns 0 and fills *out, or: TIDE_EPARSE (malformed, bad base64url or JSON, a NUL byte in
 * the decoded header or payload, a sub that is not a string of at most 63 bytes),
 * TIDE_EALG (alg other than HS256, including "none"), TIDE_EAUTH (bad signature),
 * TIDE_EEXPIRED (now >= exp + leeway), TIDE_ENOTYET (now < nbf - leeway), TIDE_EROLE (role
 * claim other than anon/authenticated/service_role; a missing role claim means
 * authenticated), and for an authentic token the policy refuses: TIDE_ENOEXP (no exp while
 * policy->require_exp), TIDE_EAUDIENCE (aud missing, malformed or without policy->audience),
 * TIDE_EISSUER (iss missing or not policy->issuer); or TIDE_ENOMEM. On failure *out is all
 * zero. The signature is checked before any claim is read. */
TIDE_MUST_CHECK int tide_jwt_verify(const char *secret, size_t secret_len, const char *token,
                                    size_t len, time_t now, const tide_jwt_policy *policy,
                                    tide_jwt_claims *out);

/* Mints an HS256 token {"sub":sub,"role":role,"iat":now,"exp":now+ttl,"aud":A[,"iss":I]}
 * that tide_jwt_verify accepts under policy: A is policy->audience ("authenticated" when
 * policy or its audience is NULL), iss is policy->issuer when set.
 * Returns a malloc'd NUL-terminated token in *out, or TIDE_ENOMEM / TIDE_EINVAL. */
TIDE_MUST_CHECK int tide_jwt_sign(const char *secret, size_t secret_len, const char *sub,
                                  const char *role, long long ttl, time_t now,
                                  const tide_jwt_policy *policy, char **out);

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
TIDE_MUST_CHECK int tide__jwt_sign_input(const char *secret, size_t secret_len, const char *input,
                                         size_t len, char **out);

#endif
