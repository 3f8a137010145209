/* jwt.c - HS256 JSON Web Tokens (RFC 7519 / RFC 7515 compact form): strict base64url,
 * HMAC-SHA256 via OpenSSL with a constant-time compare, header and claims parsed by jansson,
 * then the claims checked against the caller's policy (exp, nbf, role, exp required, iss,
 * aud). The signature is checked before the payload is parsed, so unauthenticated claims are
 * never interpreted. Pure: no I/O, no logging, no global state. */
#include "jwt.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define JWT_MAX_LEN 8192 /* longer tokens are refused outright */
#define SIG_LEN     32   /* SHA-256 */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '-') return 62;
    if (ch == '_') return 63;
    return -1;
}

size_t tide__b64url_encode(const void *in, size_t len, char *out)
{
    const unsigned char *p = in;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
        out[o++] = b64_alphabet[v >> 6 & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
        out[o++] = b64_alphabet[v >> 6 & 63];
    }
    out[o] = '\0';
    return o;
}

int tide__b64url_decode(const char *in, size_t len, unsigned char *out, size_t *outlen)
{
    size_t o = 0, i = 0;
    if (len % 4 == 1) return TIDE_EPARSE;
    for (; i + 4 <= len; i += 4) {
        int a = b64_value((unsigned char)in[i]), b = b64_value((unsigned char)in[i + 1]);
        int c = b64_value((unsigned char)in[i + 2]), d = b64_value((unsigned char)in[i + 3]);
        if ((a | b | c | d) < 0) return TIDE_EPARSE;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[o++] = (unsigned char)(v >> 16);
        out[o++] = (unsigned char)(v >> 8);
        out[o++] = (unsigned char)v;
    }
    if (len - i >= 2) {
        int a = b64_value((unsigned char)in[i]), b = b64_value((unsigned char)in[i + 1]);
        int c = len - i == 3 ? b64_value((unsigned char)in[i + 2]) : 0;
        if ((a | b | c) < 0) return TIDE_EPARSE;
        /* Unused low bits must be zero: one canonical spelling per byte string. */
        if (len - i == 2 && (b & 15)) return TIDE_EPARSE;
        if (len - i == 3 && (c & 3)) return TIDE_EPARSE;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
        out[o++] = (unsigned char)(v >> 16);
        if (len - i == 3) out[o++] = (unsigned char)(v >> 8);
    }
    *outlen = o;
    return 0;
}

static int hs256(const char *secret, size_t secret_len, const char *data, size_t len,
                 unsigned char mac[SIG_LEN])
{
    unsigned int mac_len = 0;
    if (secret_len > INT32_MAX) return TIDE_EINVAL;
    if (!HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)data, len, mac,
              &mac_len) ||
        mac_len != SIG_LEN)
        return TIDE_ENOMEM; /* OpenSSL fails here only when it cannot allocate */
    return 0;
}

int tide__jwt_sign_input(const char *secret, size_t secret_len, const char *input, size_t len,
                         char **out)
{
    unsigned char mac[SIG_LEN];
    int rc;
    if (!secret || !secret_len || !input || !out) return TIDE_EINVAL;
    *out = NULL;
    if ((rc = hs256(secret, secret_len, input, len, mac)) != 0) return rc;
    char *tok = malloc(len + 1 + 44 + 1);
    if (!tok) return TIDE_ENOMEM;
    memcpy(tok, input, len);
    tok[len] = '.';
    tide__b64url_encode(mac, SIG_LEN, tok + len + 1);
    *out = tok;
    return 0;
}

/* Decodes one base64url segment into a fresh NUL-terminated buffer. A NUL byte inside is
 * TIDE_EPARSE: jansson steps over a raw NUL after a number or literal and goes on parsing, so
 * the claims it checked and the C string they are passed on as would differ. */
static int decode_segment(const char *s, size_t len, unsigned char **out, size_t *outlen)
{
    unsigned char *buf = malloc(len / 4 * 3 + 3 + 1);
    if (!buf) return TIDE_ENOMEM;
    if (tide__b64url_decode(s, len, buf, outlen) != 0 || memchr(buf, 0, *outlen)) {
        free(buf);
        return TIDE_EPARSE;
    }
    buf[*outlen] = '\0';
    *out = buf;
    return 0;
}

static json_t *parse_object(const unsigned char *text, size_t len)
{
    json_error_t jerr;
    /* Duplicate keys are refused: jansson and Postgres' jsonb would disagree on which wins. */
    json_t *v = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (v && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

static int check_header(const char *seg, size_t len)
{
    unsigned char *text = NULL;
    size_t tlen = 0;
    int rc = decode_segment(seg, len, &text, &tlen);
    if (rc != 0) return rc;
    json_t *hdr = parse_object(text, tlen);
    free(text);
    if (!hdr) return TIDE_EPARSE;
    json_t *alg = json_object_get(hdr, "alg");
    if (!json_is_string(alg) || json_string_length(alg) != 5 ||
        memcmp(json_string_value(alg), "HS256", 5) != 0)
        rc = TIDE_EALG;
    else if (json_object_get(hdr, "crit"))
        rc = TIDE_EPARSE; /* we implement no header extensions, so none can be critical */
    json_decref(hdr);
    return rc;
}

/* Reads a NumericDate claim. Returns 0 (absent: *present = 0), or TIDE_EPARSE. */
static int numeric_claim(json_t *claims, const char *name, double *out, int *present)
{
    json_t *v = json_object_get(claims, name);
    *present = 0;
    if (!v) return 0;
    if (!json_is_number(v)) return TIDE_EPARSE;
    *out = json_number_value(v);
    *present = 1;
    return 0;
}

/* v is a JSON string equal to want (byte for byte; jansson strings hold no NUL). */
static int string_is(json_t *v, const char *want)
{
    size_t n = strlen(want);
    return json_is_string(v) && json_string_length(v) == n &&
           memcmp(json_string_value(v), want, n) == 0;
}

/* RFC 7519 4.1.3: aud is one string or an array of strings; a token is for us when it names
 * us. An array holding anything but strings is malformed and names no one. */
static int aud_names(json_t *aud, const char *want)
{
    if (json_is_string(aud)) return string_is(aud, want);
    if (!json_is_array(aud)) return 0;
    size_t i;
    json_t *el;
    int found = 0;
    json_array_foreach(aud, i, el)
    {
        if (!json_is_string(el)) return 0;
        found |= string_is(el, want);
    }
    return found;
}

static const tide_jwt_policy default_policy = { 0, 1, NULL, NULL };

static int check_claims(json_t *claims, time_t now, const tide_jwt_policy *pol,
                        tide_jwt_claims *out)
{
    double exp = 0, nbf = 0, t = (double)now;
    int has_exp, has_nbf, rc, leeway = pol->leeway < 0 ? 0 : pol->leeway;
    if ((rc = numeric_claim(claims, "exp", &exp, &has_exp)) != 0 ||
        (rc = numeric_claim(claims, "nbf", &nbf, &has_nbf)) != 0)
        return rc;

    json_t *sub = json_object_get(claims, "sub");
    if (sub) {
        if (!json_is_string(sub)) return TIDE_EPARSE;
        size_t n = json_string_length(sub);
        if (n >= sizeof out->sub || strlen(json_string_value(sub)) != n) return TIDE_EPARSE;
        memcpy(out->sub, json_string_value(sub), n + 1);
    }

    json_t *role = json_object_get(claims, "role");
    if (!role) out->role = TIDE_ROLE_AUTHENTICATED;
    else if (!json_is_string(role) ||
             tide_role_parse(json_string_value(role), json_string_length(role), &out->role) != 0)
        return TIDE_EROLE;

    if (has_exp) {
        if (t - leeway >= exp) return TIDE_EEXPIRED;
        /* floor, so a cache that compares whole seconds never keeps it past exp; 2^63 and
         * above saturate (INT64_MAX, as a double, is 2^63 itself: still <= exp) */
        long long e = exp >= 9223372036854775808.0 ? INT64_MAX : (long long)exp;
        if ((double)e > exp) e--;
        out->exp = e;
        out->has_exp = 1;
    } else if (pol->require_exp) {
        return TIDE_ENOEXP;
    }
    if (has_nbf && t + leeway < nbf) return TIDE_ENOTYET;
    if (pol->issuer && !string_is(json_object_get(claims, "iss"), pol->issuer)) return TIDE_EISSUER;
    if (pol->audience && !aud_names(json_object_get(claims, "aud"), pol->audience))
        return TIDE_EAUDIENCE;
    return 0;
}

int tide_jwt_verify(const char *secret, size_t secret_len, const char *token, size_t len,
                    time_t now, const tide_jwt_policy *policy, tide_jwt_claims *out)
{
    unsigned char mac[SIG_LEN], sig[SIG_LEN + 3];
    size_t sig_len = 0;
    int rc;

    if (!out) return TIDE_EINVAL;
    memset(out, 0, sizeof *out);
    if (!secret || !secret_len || !token) return TIDE_EINVAL;
    if (!policy) policy = &default_policy;
    if (len > JWT_MAX_LEN) return TIDE_EPARSE;

    const char *dot1 = memchr(token, '.', len);
    if (!dot1) return TIDE_EPARSE;
    const char *dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
    if (!dot2) return TIDE_EPARSE;
    const char *end = token + len;
    if (memchr(dot2 + 1, '.', (size_t)(end - (dot2 + 1)))) return TIDE_EPARSE;
    size_t hlen = (size_t)(dot1 - token), plen = (size_t)(dot2 - dot1 - 1);
    size_t slen = (size_t)(end - dot2 - 1);
    if (!hlen || !plen) return TIDE_EPARSE;

    if ((rc = check_header(token, hlen)) != 0) return rc;

    /* 32 bytes encode to exactly 43 characters; anything else cannot be our signature. */
    if (slen != 43) return TIDE_EAUTH;
    if (tide__b64url_decode(dot2 + 1, slen, sig, &sig_len) != 0 || sig_len != SIG_LEN)
        return TIDE_EPARSE;
    if ((rc = hs256(secret, secret_len, token, (size_t)(dot2 - token), mac)) != 0) return rc;
    if (CRYPTO_memcmp(mac, sig, SIG_LEN) != 0) return TIDE_EAUTH;

    unsigned char *payload = NULL;
    size_t payload_len = 0;
    if ((rc = decode_segment(dot1 + 1, plen, &payload, &payload_len)) != 0) return rc;
    json_t *claims = parse_object(payload, payload_len);
    if (!claims) {
        free(payload);
        return TIDE_EPARSE;
    }
    rc = check_claims(claims, now, policy, out);
    json_decref(claims);
    if (rc != 0) {
        free(payload);
        memset(out, 0, sizeof *out);
        return rc;
    }
    out->claims_json = (char *)payload; /* the bytes as sent, NUL-terminated, no NUL inside */
    return 0;
}

int tide_jwt_sign(const char *secret, size_t secret_len, const char *sub, const char *role,
                  long long ttl, time_t now, const tide_jwt_policy *policy, char **out)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    static const char default_aud[] = "authenticated";
    tide_role r;
    int rc;

    if (!out) return TIDE_EINVAL;
    *out = NULL;
    if (!secret || !secret_len || !role || ttl <= 0 || (long long)now > INT64_MAX - ttl)
        return TIDE_EINVAL;
    if (tide_role_parse(role, strlen(role), &r) != 0) return TIDE_EINVAL;
    if (sub && strlen(sub) >= sizeof((tide_jwt_claims *)0)->sub) return TIDE_EINVAL;
    const char *aud = policy && policy->audience ? policy->audience : default_aud;
    const char *iss = policy ? policy->issuer : NULL;

    json_t *claims = json_object();
    if (!claims) return TIDE_ENOMEM;
    if ((sub && json_object_set_new(claims, "sub", json_string(sub)) != 0) ||
        json_object_set_new(claims, "role", json_string(tide_role_name(r))) != 0 ||
        json_object_set_new(claims, "iat", json_integer((json_int_t)now)) != 0 ||
        json_object_set_new(claims, "exp", json_integer((json_int_t)now + ttl)) != 0 ||
        json_object_set_new(claims, "aud", json_string(aud)) != 0 ||
        (iss && json_object_set_new(claims, "iss", json_string(iss)) != 0)) {
        json_decref(claims);
        /* json_string() fails on invalid UTF-8 as well as on allocation failure */
        return sub || iss || aud != default_aud ? TIDE_EINVAL : TIDE_ENOMEM;
    }
    char *payload = json_dumps(claims, JSON_COMPACT);
    json_decref(claims);
    if (!payload) return TIDE_ENOMEM;

    size_t plen = strlen(payload), hlen = sizeof header - 1;
    char *input = malloc((hlen + 2) / 3 * 4 + 1 + (plen + 2) / 3 * 4 + 1);
    if (!input) {
        free(payload);
        return TIDE_ENOMEM;
    }
    size_t n = tide__b64url_encode(header, hlen, input);
    input[n++] = '.';
    n += tide__b64url_encode(payload, plen, input + n);
    free(payload);
    rc = tide__jwt_sign_input(secret, secret_len, input, n, out);
    free(input);
    return rc;
}

const char *tide_role_name(tide_role r)
{
    switch (r) {
    case TIDE_ROLE_AUTHENTICATED: return "authenticated";
    case TIDE_ROLE_SERVICE: return "service_role";
    case TIDE_ROLE_ANON: break;
    }
    return "anon"; /* unknown values map to the least privileged role */
}

int tide_role_parse(const char *name, size_t len, tide_role *out)
{
    if (!name || !out) return TIDE_EROLE;
    if (len == 4 && memcmp(name, "anon", 4) == 0) *out = TIDE_ROLE_ANON;
    else if (len == 13 && memcmp(name, "authenticated", 13) == 0) *out = TIDE_ROLE_AUTHENTICATED;
    else if (len == 12 && memcmp(name, "service_role", 12) == 0) *out = TIDE_ROLE_SERVICE;
    else return TIDE_EROLE;
    return 0;
}
