/* jwtcache.c - direct-mapped cache of verified tokens (see jwtcache.h). */
#include "jwtcache.h"
#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    uint64_t hash;
    char *token; /* NULL = empty slot */
    size_t len;
    char *claims;
    long long exp; /* floor of the exp claim, when has_exp */
    int has_exp;
    tide_role role;
    int used;     /* hit since it was stored or last spared (eviction's clock bit) */
    char sub[64]; /* the sub claim or "" */
} entry;

struct tide_jwt_cache {
    entry *slots;
    size_t mask;
    long long hits, misses, stores;
};

static uint64_t hash_bytes(const char *s, size_t n) { return tide_fnv1a(s, n, 0); }

int tide_jwt_cache_new(size_t slots, tide_jwt_cache **out)
{
    size_t n = 16;
    while (n < slots && n < ((size_t)1 << 24)) n <<= 1;
    tide_jwt_cache *c = calloc(1, sizeof *c);
    if (!c) return TIDE_ENOMEM;
    c->slots = calloc(n, sizeof *c->slots);
    if (!c->slots) {
        free(c);
        return TIDE_ENOMEM;
    }
    c->mask = n - 1;
    *out = c;
    return 0;
}

static void entry_clear(entry *e)
{
    free(e->token);
    free(e->claims);
    memset(e, 0, sizeof *e);
}

void tide_jwt_cache_free(tide_jwt_cache *c)
{
    if (!c) return;
    for (size_t i = 0; i <= c->mask; i++) entry_clear(&c->slots[i]);
    free(c->slots);
    free(c);
}

/* The exp rules of tide_jwt_verify, on whole seconds: e->exp <= the claim, so an entry
 * stops matching no later than the token itself would. */
static int entry_live(const entry *e, long long now, const tide_jwt_policy *p)
{
    static const tide_jwt_policy strict = { 0, 1, NULL, NULL }; /* as tide_jwt_verify's */
    if (!p) p = &strict;
    long long leeway = p->leeway < 0 ? 0 : p->leeway;
    if (!e->has_exp) return !p->require_exp;
    return now - leeway < e->exp;
}

#define WAYS 4 /* slots a token may live in (set associative) */

static entry *set_of(tide_jwt_cache *c, uint64_t h)
{
    return &c->slots[h & c->mask & ~(size_t)(WAYS - 1)];
}

int tide_jwt_cache_get(tide_jwt_cache *c, const char *token, size_t len, time_t now,
                       const tide_jwt_policy *policy, tide_role *role, const char **claims,
                       const char **sub)
{
    uint64_t h = hash_bytes(token, len);
    entry *set = set_of(c, h);
    for (int k = 0; k < WAYS; k++) {
        entry *e = &set[k];
        if (!(e->token && e->hash == h && e->len == len && memcmp(e->token, token, len) == 0))
            continue;
        if (!entry_live(e, (long long)now, policy)) {
            entry_clear(e); /* verification will say why */
            break;
        }
        *role = e->role;
        *claims = e->claims;
        if (sub) *sub = e->sub;
        e->used = 1;
        c->hits++;
        return 1;
    }
    c->misses++;
    return 0;
}

const char *tide_jwt_cache_put(tide_jwt_cache *c, const char *token, size_t len,
                               tide_jwt_claims *cl)
{
    uint64_t h = hash_bytes(token, len);
    entry *set = set_of(c, h), *e = NULL;
    for (int k = 0; k < WAYS && !e; k++) /* the same token, else a free slot */
        if (set[k].token && set[k].hash == h && set[k].len == len &&
            memcmp(set[k].token, token, len) == 0)
            e = &set[k];
    for (int k = 0; k < WAYS && !e; k++)
        if (!set[k].token) e = &set[k];
    if (!e) { /* evict one not hit since the last eviction */
        for (int k = 0; k < WAYS && !e; k++)
            if (!set[k].used) e = &set[k];
        if (!e) e = &set[h >> 60 & (WAYS - 1)];
        for (int k = 0; k < WAYS; k++) set[k].used = 0;
    }
    char *tok = malloc(len + 1);
    if (!tok) return NULL;
    memcpy(tok, token, len);
    tok[len] = 0;
    entry_clear(e);
    e->hash = h;
    e->token = tok;
    e->len = len;
    e->claims = cl->claims_json;
    cl->claims_json = NULL;
    e->exp = cl->exp;
    e->has_exp = cl->has_exp;
    e->role = cl->role;
    memcpy(e->sub, cl->sub, sizeof e->sub);
    c->stores++;
    return e->claims;
}

void tide_jwt_cache_get_stats(const tide_jwt_cache *c, tide_jwt_cache_stats *o)
{
    o->hits = c->hits;
    o->misses = c->misses;
    o->stores = c->stores;
}
