/* rcache.h - the result cache in the request path: which GET routes are cached for whom
 * (policies/cache.lua, read into a tide_cache_policy with each bundle), answers from the store
 * (runtime/cache.c) before any Lua runs or any pool is touched, single-flight for misses,
 * stale-while-revalidate and stale-if-error, ETag / If-None-Match, invalidation by tag from
 * tide's own writes and from other writers' NOTIFYs, and the counters operators read.
 *
 * It is a filter in the request pipeline (runtime/stage.h): a request reaches
 * tide_rcache_admit() once admitted and routed, and only when its route has a rule (a GET
 * without a body, the cache on); it hands requests on to the next stage and gets their answers
 * back through the callbacks stage.h defines, never naming the VM. Its key is the rule, the caller's identity under the rule's scope, the raw path and
 * query, and the values of the headers the rule varies on:
 *
 *   scope   identity in the key                     one answer for
 *   public  nothing                                 every caller
 *   role    the database role                       each of anon, authenticated, service_role
 *   user    role and JWT sub (claims if no sub)     each user
 *   claims  the whole claims text                   each distinct set of claims
 *
 * so an answer built under one identity is never served to another. Then:
 *   fresh entry          -> answered from the store (X-Cache: HIT, Age, ETag; 304 when
 *                           If-None-Match names the ETag)
 *   in its swr window    -> answered stale (X-Cache: STALE) and refreshed once in the
 *                           background (a copy of the request runs through the bundle)
 *   a miss already runs  -> waits for it and gets its answer (counted as coalesced)
 *   otherwise            -> runs through the bundle (X-Cache: MISS); a 200 whose handler's
 *                           reads all said what they depend on is stored, tagged with those
 *                           tags and the rule's own; a 5xx is replaced by an entry not older
 *                           than the rule's stale_if_error, if one is kept (X-Cache: STALE)
 * `Cache-Control: no-cache` (or no-store) from the client: the bundle answers, nothing is read
 * from or written to the cache (X-Cache: BYPASS).
 *
 * Coherence: tide.db invalidates the tags of what it writes before the write's answer goes
 * out; other writers' writes arrive as NOTIFYs on cache.channel (runtime/channels.c). While
 * that connection is down nothing is served fresh (entries stay for stale-if-error only)
 * and entries read meanwhile are not trusted once it is back. */
#ifndef TIDE_RCACHE_H
#define TIDE_RCACHE_H

#include <stddef.h>
#include <stdint.h>
#include "app.h"
#include "jwt.h"
#include "router.h"
#include "stage.h"

struct lua_State;

enum { TIDE_SCOPE_PUBLIC = 0, TIDE_SCOPE_ROLE, TIDE_SCOPE_USER, TIDE_SCOPE_CLAIMS, TIDE_SCOPES };
#define TIDE_CACHE_MAX_VARY 4

typedef struct tide_cache_rule {
    char *route;          /* "GET /v1/trips/:id" */
    double ttl, swr, sie; /* seconds: fresh, stale-while-revalidate, stale-if-error */
    int scope;            /* TIDE_SCOPE_* */
    int nvary;
    char *vary[TIDE_CACHE_MAX_VARY]; /* lower-case header names */
} tide_cache_rule;

typedef struct tide_cache_policy tide_cache_policy;

/* Reads the table boot.cache_policy() returned (at idx): {rules = {{route, ttl, swr, sie,
 * scope, vary}, ...}, tables = "<fingerprint of the tables section>"}. tide.boot has checked
 * it (every rule names a GET route of the bundle); this checks what C relies on. Returns the
 * policy, or NULL with a message in err. */
tide_cache_policy *tide_cache_policy_read(struct lua_State *L, int idx, char *err, size_t errlen);
void tide_cache_policy_free(tide_cache_policy *p);
/* The rule for route ("GET /v1/trips/:id"), or NULL. The VM maps each of its routes to its
 * rule once, when the bundle loads. */
const tide_cache_rule *tide_cache_policy_rule(const tide_cache_policy *p, const char *route);

/* ---- the request path ---------------------------------------------------------------- */

typedef struct tide_rcache tide_rcache;
typedef struct tide_rcache_req tide_rcache_req;

/* Makes app->cache (cache.max_bytes 0: none), distrusting entries until runtime/channels.c
 * reports the LISTEN session on cache.channel up (tide_rcache_hearing). next: the stages it
 * hands requests on to (kept). Returns 0, or TIDE_ENOMEM / TIDE_EINVAL (logged). */
TIDE_MUST_CHECK int tide_rcache_start(tide_app *app, const tide_stages *next);
void tide_rcache_stop(tide_app *app);

/* Answers req (routed by m to a route with rule r) from the cache, parks it behind a running
 * miss, or hands it on to next->run: with a cache context whose answer comes back to the
 * cache (stored, shared with the waiters), or, for Cache-Control: no-cache, one that only
 * labels it BYPASS. claims and sub as admission found them (may be NULL). */
void tide_rcache_admit(tide_app *app, tide_http_req *req, const tide_cache_rule *r,
                       const tide_route_match *m, const char *claims, const char *sub,
                       tide_role role);

/* What the handler's reads depend on (tags); too many, or a read that cannot say (db.sql),
 * and the answer is not stored (tide_rcache_skip). Both ignore a NULL cr. */
void tide_rcache_depend(tide_rcache_req *cr, const char *tag, size_t len);
void tide_rcache_skip(tide_rcache_req *cr);

/* Entries tagged `tag` read before now are not served again. */
void tide_rcache_invalidate(tide_app *app, const char *tag, size_t len);

/* The script API (tide.cache): entries under "S" + scope identity + key. get returns 1 with
 * *value, *vlen, *age (valid until the next cache call) and *stale (past its ttl), or 0. */
typedef struct tide_cache_ident {
    tide_role role;
    const char *sub;    /* "" or NULL: none */
    const char *claims; /* JSON text */
} tide_cache_ident;
int tide_rcache_script_get(tide_app *app, const tide_cache_ident *who, int scope, const char *key,
                           size_t klen, double sie, const void **value, size_t *vlen, double *age,
                           int *stale);
/* Returns 0, or TIDE_EAGAIN (a tag moved since born: not stored), TIDE_ETOOBIG, TIDE_EINVAL,
 * TIDE_ENOMEM, TIDE_ECLOSED (no cache). */
int tide_rcache_script_set(tide_app *app, const tide_cache_ident *who, int scope, const char *key,
                           size_t klen, const char *value, size_t vlen, double ttl, double swr,
                           double sie, uint64_t born, const char *const *tags, const size_t *tlens,
                           int ntags);
/* The clock to take before reading what will be stored (0 without a cache). */
uint64_t tide_rcache_clock(const tide_app *app);

/* A reload swapped the policy: entries of rules that changed or went away are dropped, and
 * all of them when the tables section changed (reads are tagged differently now). */
void tide_rcache_policy_changed(tide_app *app, const tide_cache_policy *old,
                                const tide_cache_policy *cur);

/* Drops everything (tag NULL) or what is tagged tag. */
void tide_rcache_flush(tide_app *app, const char *tag, size_t len);

/* Other writers' writes, as cache.channel payloads: "table/KEY", "table/ANY" (meaning "table/" and a star) or "table". */
void tide_rcache_heard(tide_app *app, const char *payload, size_t len);
/* Whether other writers can be heard (see the header). */
void tide_rcache_hearing(tide_app *app, int up);

/* The cache's counters (all zero, enabled 0, without a cache). */
typedef struct tide_rcache_scope_stats {
    long long hits, misses, stale, stale_if_error, coalesced, bypass, stored, not_stored, refreshes,
        not_modified, entries, bytes;
} tide_rcache_scope_stats;
typedef struct tide_rcache_stats {
    int enabled, hearing; /* hearing: 1 up, 0 down, -1 no channel */
    long long entries, bytes, max_bytes, evictions, invalidations, invalidated, expired, raced,
        heard, hearing_lost;
    tide_rcache_scope_stats scope[TIDE_SCOPES];
} tide_rcache_stats;
void tide_rcache_get_stats(const tide_app *app, tide_rcache_stats *out);
extern const char *const tide_cache_scope_names[TIDE_SCOPES];

/* Writes the cache's counters as a JSON object into buf (NUL-terminated; truncated to cap). */
size_t tide_rcache_stats_json(const tide_app *app, char *buf, size_t cap);

#endif
