/* jwtcache.h - a bounded cache of verified tokens, so a client that sends the same token on
 * every request pays for HMAC, base64 and JSON once. Four-way set associative by the token's
 * hash: a new token takes a free slot of its set, else evicts one not hit since the set last
 * evicted (so busy tokens whose hashes share a set stay). Only successful verifications are stored.
 * A hit never admits what tide_jwt_verify would refuse under the same policy: an entry stops
 * matching once its exp has passed (with the policy's leeway; exp is stored floored), an entry
 * without exp never matches under require_exp, and nbf needs no check (it was satisfied at
 * verification and time only moves forward). aud and iss are not stored: they were checked by
 * the verification that preceded the put, so a cache must not outlive the audience and
 * issuer it was filled under (tide's are restart-only and the cache is made at start).
 * Pure: no I/O, no clock. */
#ifndef TIDE_JWTCACHE_H
#define TIDE_JWTCACHE_H

#include <stddef.h>
#include <time.h>
#include "error.h"
#include "jwt.h"

typedef struct tide_jwt_cache tide_jwt_cache;

/* slots is rounded up to a power of two (at least 16). Returns 0 or TIDE_ENOMEM. */
TIDE_MUST_CHECK int tide_jwt_cache_new(size_t slots, tide_jwt_cache **out);
void tide_jwt_cache_free(tide_jwt_cache *c);

/* Looks the token up under policy (the one its verification used; NULL as for
 * tide_jwt_verify). Returns 1 on a hit, setting *role, *claims and (unless sub is NULL) *sub,
 * the sub claim or "" (owned by the cache, valid until the next put or free), else 0; an entry that the policy's exp rules now refuse is
 * dropped and is a miss. */
int tide_jwt_cache_get(tide_jwt_cache *c, const char *token, size_t len, time_t now,
                       const tide_jwt_policy *policy, tide_role *role, const char **claims,
                       const char **sub);

/* Stores a verified token. Takes ownership of cl->claims_json (sets it to NULL) and returns
 * the stored claims (valid until the next put or free); on allocation failure it stores
 * nothing, leaves cl alone and returns NULL. */
const char *tide_jwt_cache_put(tide_jwt_cache *c, const char *token, size_t len,
                               tide_jwt_claims *cl);

typedef struct tide_jwt_cache_stats {
    long long hits, misses, stores;
} tide_jwt_cache_stats;
void tide_jwt_cache_get_stats(const tide_jwt_cache *c, tide_jwt_cache_stats *out);

#endif
