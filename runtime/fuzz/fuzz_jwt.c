/* fuzz_jwt.c - libFuzzer target for JWT verification (runtime/jwt.c) and the verified-token
 * cache (runtime/jwtcache.c).
 *
 * Input: one mode byte, then the rest.
 *   mode bit 0 = 0: the rest is a token, verified as it comes (signature, base64, alg paths).
 *   mode bit 0 = 1: the rest is [hlen][header: hlen bytes][payload], both signed properly with
 *                   SECRET, so the fuzzer gets past the signature into header and claim parsing
 *                   (hlen 0: a fixed HS256 header).
 *   bits 1-2 pick one of four policies (exp required or not, audience, issuer); bits 3-7 move
 *   the clock by 97 s steps.
 * Invariants checked on every input (abort() on a violation):
 *   - success: claims_json is the decoded payload byte for byte, with no NUL inside (strlen is
 *     its length), and parses as the same JSON object; sub is NUL-terminated and is the sub
 *     claim; role is one of the three; the policy holds (exp present when
 *     required, not expired, aud/iss as configured); the cache then serves the same claims and
 *     stops serving once verification would refuse for expiry;
 *   - failure: a TIDE_E* code and *out all zero; a policy refusal (TIDE_ENOEXP,
 *     TIDE_EAUDIENCE, TIDE_EISSUER) only under a policy that has that rule. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jwt.h"
#include "jwtcache.h"

#define SECRET "fuzz-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
#define NOW    ((time_t)1700000000)

static const tide_jwt_policy policies[4] = {
    { 30, 1, NULL, NULL },
    { 0, 0, NULL, NULL },
    { 0, 1, "tide-api", NULL },
    { 5, 1, "tide-api", "https://issuer.example/" },
};

#define REQUIRE(cond)         \
    do {                      \
        if (!(cond)) abort(); \
    } while (0)

static tide_jwt_cache *cache;

static int string_is(json_t *v, const char *want)
{
    return json_is_string(v) && json_string_length(v) == strlen(want) &&
           memcmp(json_string_value(v), want, strlen(want)) == 0;
}

/* The payload segment of a token decoded here, independently of verify (NULL if it does not
 * decode: then verify must have failed). */
static unsigned char *payload_of(const char *tok, size_t len, size_t *plen)
{
    const char *d1 = memchr(tok, '.', len);
    if (!d1) return NULL;
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
    if (!d2) return NULL;
    size_t n = (size_t)(d2 - d1 - 1);
    unsigned char *buf = malloc(n / 4 * 3 + 4);
    if (!buf || tide__b64url_decode(d1 + 1, n, buf, plen) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void check_success(const char *tok, size_t len, const tide_jwt_policy *pol, time_t now,
                          tide_jwt_claims *c)
{
    size_t plen = 0;
    unsigned char *payload = payload_of(tok, len, &plen);
    REQUIRE(payload);
    REQUIRE(c->claims_json);
    REQUIRE(strlen(c->claims_json) == plen);             /* no NUL inside */
    REQUIRE(memcmp(c->claims_json, payload, plen) == 0); /* the bytes as sent */
    free(payload);
    REQUIRE(memchr(c->sub, '\0', sizeof c->sub) != NULL);
    REQUIRE(c->role == TIDE_ROLE_ANON || c->role == TIDE_ROLE_AUTHENTICATED ||
            c->role == TIDE_ROLE_SERVICE);

    /* what a later consumer of the C string sees is what was verified */
    json_error_t jerr;
    json_t *claims = json_loads(c->claims_json, JSON_REJECT_DUPLICATES, &jerr);
    REQUIRE(claims && json_is_object(claims));
    json_t *sub = json_object_get(claims, "sub");
    if (sub) REQUIRE(string_is(sub, c->sub));
    else REQUIRE(c->sub[0] == '\0');
    json_t *role = json_object_get(claims, "role");
    if (role) REQUIRE(string_is(role, tide_role_name(c->role)));
    else REQUIRE(c->role == TIDE_ROLE_AUTHENTICATED);
    json_t *exp = json_object_get(claims, "exp");
    REQUIRE(!!exp == !!c->has_exp);
    if (pol->require_exp) REQUIRE(c->has_exp);
    if (exp) {
        int leeway = pol->leeway < 0 ? 0 : pol->leeway;
        REQUIRE(json_is_number(exp));
        REQUIRE((double)now - leeway < json_number_value(exp));
        REQUIRE((double)c->exp <= json_number_value(exp));
    }
    if (pol->issuer) REQUIRE(string_is(json_object_get(claims, "iss"), pol->issuer));
    if (pol->audience) {
        json_t *aud = json_object_get(claims, "aud"), *el;
        size_t i;
        int found = string_is(aud, pol->audience);
        if (json_is_array(aud))
            json_array_foreach(aud, i, el) found |= string_is(el, pol->audience);
        REQUIRE(found);
    }
    json_decref(claims);

    /* the cache serves the same claims now, and never once verify refuses for expiry */
    char *copy = strdup(c->claims_json);
    REQUIRE(copy);
    const char *stored = tide_jwt_cache_put(cache, tok, len, c);
    REQUIRE(stored && c->claims_json == NULL);
    tide_role role_hit;
    const char *js = NULL;
    REQUIRE(tide_jwt_cache_get(cache, tok, len, now, pol, &role_hit, &js, NULL) == 1);
    REQUIRE(strcmp(js, copy) == 0);
    time_t later = (time_t)(now + 400000000);
    tide_jwt_claims again;
    int rc = tide_jwt_verify(SECRET, strlen(SECRET), tok, len, later, pol, &again);
    int hit = tide_jwt_cache_get(cache, tok, len, later, pol, &role_hit, &js, NULL);
    if (rc != 0) REQUIRE(!hit);
    free(again.claims_json);
    free(copy);
}

static void check_failure(int rc, const tide_jwt_claims *c, const tide_jwt_policy *pol)
{
    static const char zero[64];
    REQUIRE(rc < 0);
    REQUIRE(c->claims_json == NULL);
    REQUIRE(memcmp(c->sub, zero, sizeof c->sub) == 0);
    REQUIRE(c->exp == 0 && c->has_exp == 0 && c->role == TIDE_ROLE_ANON);
    if (rc == TIDE_ENOEXP) REQUIRE(pol->require_exp);
    if (rc == TIDE_EAUDIENCE) REQUIRE(pol->audience);
    if (rc == TIDE_EISSUER) REQUIRE(pol->issuer);
}

static void run(const char *tok, size_t len, const tide_jwt_policy *pol, time_t now)
{
    tide_jwt_claims c;
    int rc = tide_jwt_verify(SECRET, strlen(SECRET), tok, len, now, pol, &c);
    if (rc == 0) {
        check_success(tok, len, pol, now, &c);
        free(c.claims_json);
    } else {
        check_failure(rc, &c, pol);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cache && tide_jwt_cache_new(64, &cache) != 0) abort();
    if (size < 1) return 0;
    uint8_t mode = data[0];
    const tide_jwt_policy *pol = &policies[(mode >> 1) & 3];
    time_t now = NOW + (time_t)(mode >> 3) * 97;
    data++;
    size--;

    if (!(mode & 1)) {
        run((const char *)data, size, pol, now);
        return 0;
    }

    static const char default_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    const char *header = default_header, *payload;
    size_t hlen = sizeof default_header - 1, plen;
    if (size >= 1 && data[0] > 0 && (size_t)data[0] < size) {
        header = (const char *)data + 1;
        hlen = data[0];
        payload = header + hlen;
        plen = size - 1 - hlen;
    } else {
        payload = size ? (const char *)data + 1 : "";
        plen = size ? size - 1 : 0;
    }
    if (hlen + plen > 6000) return 0; /* tokens above 8 KiB are refused outright */
    char *input = malloc((hlen + 2) / 3 * 4 + (plen + 2) / 3 * 4 + 2);
    if (!input) abort();
    size_t n = tide__b64url_encode(header, hlen, input);
    input[n++] = '.';
    n += tide__b64url_encode(payload, plen, input + n);
    char *tok = NULL;
    if (tide__jwt_sign_input(SECRET, strlen(SECRET), input, n, &tok) != 0) abort();
    free(input);
    run(tok, strlen(tok), pol, now);
    free(tok);
    return 0;
}
