/* jwtcache.h - a bounded cache of verified tokens, so a client that sends the same token on
 * every request pays for HMAC, base64 and JSON once. Direct-mapped by the token's hash: a new
 * token evicts whatever shared its slot. Only successful verifications are stored; an entry
 * stops matching once its exp has passed (with the leeway), and nbf needs no check (it was
 * satisfied at verification and time only moves forward). Pure: no I/O, no clock. */
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

/* Looks the token up. Returns 1 on a hit, setting *role and *claims (owned by the cache,
 * valid until the next put or free), else 0. */
int tide_jwt_cache_get(tide_jwt_cache *c, const char *token, size_t len, time_t now,
                       int leeway, tide_role *role, const char **claims);

/* Stores a verified token. Takes ownership of cl->claims_json (sets it to NULL) and returns
 * the stored claims (valid until the next put or free); on allocation failure it stores
 * nothing, leaves cl alone and returns NULL. */
const char *tide_jwt_cache_put(tide_jwt_cache *c, const char *token, size_t len,
                               tide_jwt_claims *cl);

typedef struct tide_jwt_cache_stats { long long hits, misses, stores; } tide_jwt_cache_stats;
void tide_jwt_cache_get_stats(const tide_jwt_cache *c, tide_jwt_cache_stats *out);

#endif
