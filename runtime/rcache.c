/* rcache.c - the result cache in the request path (see rcache.h). */
#include "rcache.h"
#include "cache.h"
#include "util.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <lua.h>
#include <lauxlib.h>

/* ---- policy ---------------------------------------------------------------------------- */

struct tide_cache_policy {
    tide_cache_rule *rules;
    int nrules;
    char *tables; /* fingerprint of the tables section */
};

const char *const tide_cache_scope_names[TIDE_SCOPES] = { "public", "role", "user", "claims" };
#define scope_names tide_cache_scope_names

static int scope_parse(const char *s)
{
    for (int i = 0; i < TIDE_SCOPES; i++)
        if (s && strcmp(s, scope_names[i]) == 0) return i;
    return -1;
}

void tide_cache_policy_free(tide_cache_policy *p)
{
    if (!p) return;
    for (int i = 0; i < p->nrules; i++) {
        free(p->rules[i].route);
        for (int k = 0; k < p->rules[i].nvary; k++) free(p->rules[i].vary[k]);
    }
    free(p->rules);
    free(p->tables);
    free(p);
}

static double num_field(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    double v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : 0;
    lua_pop(L, 1);
    return v;
}

tide_cache_policy *tide_cache_policy_read(lua_State *L, int idx, char *err, size_t errlen)
{
    int top = lua_gettop(L);
    if (idx < 0) idx = top + idx + 1;
    tide_cache_policy *p = calloc(1, sizeof *p);
    if (!p || !lua_istable(L, idx)) goto bad;
    lua_getfield(L, idx, "tables");
    p->tables = strdup(lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
    lua_pop(L, 1);
    lua_getfield(L, idx, "rules");
    int nr = lua_istable(L, -1) ? (int)lua_objlen(L, -1) : 0;
    p->rules = calloc((size_t)nr + 1, sizeof *p->rules);
    if (!p->tables || !p->rules) goto bad;
    for (int i = 1; i <= nr; i++) {
        lua_rawgeti(L, -1, i);
        int t = lua_gettop(L);
        tide_cache_rule *r = &p->rules[p->nrules++];
        lua_getfield(L, t, "route");
        lua_getfield(L, t, "scope");
        const char *rt = lua_tostring(L, -2);
        r->scope = scope_parse(lua_tostring(L, -1));
        if (!rt || strncmp(rt, "GET /", 5) != 0 || r->scope < 0 || !(r->route = strdup(rt)))
            goto bad;
        lua_pop(L, 2);
        r->ttl = num_field(L, t, "ttl");
        r->swr = num_field(L, t, "swr");
        r->sie = num_field(L, t, "sie");
        if (!(r->ttl > 0) || !(r->swr >= 0) || !(r->sie >= 0)) goto bad;
        lua_getfield(L, t, "vary");
        int nv = lua_istable(L, -1) ? (int)lua_objlen(L, -1) : 0;
        for (int k = 1; k <= nv && k <= TIDE_CACHE_MAX_VARY; k++) {
            lua_rawgeti(L, -1, k);
            const char *h = lua_tostring(L, -1);
            if (!h || !(r->vary[r->nvary] = strdup(h))) goto bad;
            for (char *c = r->vary[r->nvary]; *c; c++)
                *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
            r->nvary++;
            lua_pop(L, 1);
        }
        lua_settop(L, t - 1);
    }
    lua_settop(L, top);
    return p;
bad:
    lua_settop(L, top);
    snprintf(err, errlen, "policies/cache.lua: malformed policy (from tide.boot)");
    tide_cache_policy_free(p);
    return NULL;
}

const tide_cache_rule *tide_cache_policy_rule(const tide_cache_policy *p, const char *route)
{
    for (int i = 0; p && i < p->nrules; i++)
        if (strcmp(p->rules[i].route, route) == 0) return &p->rules[i];
    return NULL;
}

/* ---- the cache and its flights --------------------------------------------------------- */

typedef struct scope_stats {
    long long hits, misses, stale, stale_if_error, coalesced, bypass, stored, not_stored, refreshes,
        not_modified;
} scope_stats;

typedef struct waiter {
    tide_http_req *req;
    char *claims;
    char sub[64];
    tide_role role;
    double since; /* when it started waiting */
} waiter;

/* A miss (or refresh) running through the bundle, which requests for the same key wait on. */
typedef struct flight {
    struct flight *next;
    uint64_t hash;
    char *key;
    size_t klen;
    waiter *w;
    int nw, capw;
} flight;

#define FLIGHT_BUCKETS 1024

struct tide_rcache {
    tide_app *app;
    const tide_stages *next; /* the stages it hands requests on to */
    tide_cache *store;
    flight *flights[FLIGHT_BUCKETS];
    scope_stats st[TIDE_SCOPES];
    long long heard, hearing_lost;
    int hearing; /* -1: no channel */
};

enum { CR_MISS, CR_REFRESH, CR_BYPASS };

struct tide_rcache_req {
    tide_rcache *rc;
    int kind;
    int scope;
    double ttl, swr, sie;
    char *route; /* the rule's path pattern (copy) */
    char *key;
    size_t klen;
    uint64_t born;
    tide_cache_tagid tags[TIDE_CACHE_MAX_TAGS];
    int ntags, skip;
    flight *fl;
};

static uint64_t key_hash(const char *k, size_t n)
{
    return tide_fnv1a(k, n, 0); /* flight buckets only, keys compared */
}

static flight *flight_find(tide_rcache *rc, const char *key, size_t klen, uint64_t h)
{
    for (flight *f = rc->flights[h % FLIGHT_BUCKETS]; f; f = f->next)
        if (f->hash == h && f->klen == klen && memcmp(f->key, key, klen) == 0) return f;
    return NULL;
}

static flight *flight_new(tide_rcache *rc, const char *key, size_t klen, uint64_t h)
{
    flight *f = calloc(1, sizeof *f);
    if (!f || !(f->key = malloc(klen))) {
        free(f);
        return NULL;
    }
    memcpy(f->key, key, klen);
    f->klen = klen;
    f->hash = h;
    f->next = rc->flights[h % FLIGHT_BUCKETS];
    rc->flights[h % FLIGHT_BUCKETS] = f;
    return f;
}

static void flight_unlink(tide_rcache *rc, flight *f)
{
    for (flight **pp = &rc->flights[f->hash % FLIGHT_BUCKETS]; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            return;
        }
}

static int flight_wait(flight *f, tide_http_req *req, const char *claims, const char *sub,
                       tide_role role, double now)
{
    if (f->nw == f->capw) {
        int cap = f->capw ? f->capw * 2 : 4;
        waiter *w = realloc(f->w, (size_t)cap * sizeof *w);
        if (!w) return -1;
        f->w = w;
        f->capw = cap;
    }
    waiter *w = &f->w[f->nw];
    w->claims = claims ? strdup(claims) : NULL;
    if (claims && !w->claims) return -1;
    snprintf(w->sub, sizeof w->sub, "%s", sub ? sub : "");
    w->req = req;
    w->role = role;
    w->since = now;
    f->nw++;
    return 0;
}

int tide_rcache_start(tide_app *app, const tide_stages *next)
{
    app->cache = NULL;
    if (app->cfg.cache_max_bytes == 0) return 0;
    tide_rcache *rc = calloc(1, sizeof *rc);
    if (!rc) return TIDE_ENOMEM;
    int err = tide_cache_new(app->cfg.cache_max_bytes, app->cache_shared, &rc->store);
    if (err != 0) {
        free(rc);
        tide_error("cannot make the result cache (cache.max_bytes %zu): %s",
                   app->cfg.cache_max_bytes, tide_strerror(err));
        return err;
    }
    rc->app = app;
    rc->next = next;
    rc->hearing = -1;
    app->cache = rc;
    const char *channel = app->cfg.cache_channel;
    if (channel && channel[0] && app->cfg.upstreams[TIDE_UP_DIRECT].dsn) {
        /* nothing is trusted until the first LISTEN is confirmed (writes before it are not
         * heard): runtime/channels.c calls tide_rcache_hearing() */
        rc->hearing = 0;
        tide_cache_distrust(rc->store, 1);
    }
    return 0;
}

void tide_rcache_stop(tide_app *app)
{
    tide_rcache *rc = app->cache;
    if (!rc) return;
    for (int i = 0; i < FLIGHT_BUCKETS; i++)
        while (rc->flights[i]) { /* their tasks are gone with the loop */
            flight *f = rc->flights[i];
            rc->flights[i] = f->next;
            for (int k = 0; k < f->nw; k++) free(f->w[k].claims);
            free(f->w);
            free(f->key);
            free(f);
        }
    tide_cache_free(rc->store);
    free(rc);
    app->cache = NULL;
}

/* ---- keys -------------------------------------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t n, cap;
    char local[1024];
    int oom;
} buf;

static void buf_init(buf *b)
{
    b->p = b->local;
    b->n = 0;
    b->cap = sizeof b->local;
    b->oom = 0;
}

static void buf_add(buf *b, const void *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap * 2;
        while (cap < b->n + n) cap *= 2;
        char *q = b->p == b->local ? malloc(cap) : realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        if (b->p == b->local) memcpy(q, b->local, b->n);
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void buf_str(buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_free(buf *b)
{
    if (b->p != b->local) free(b->p);
}

/* Appends the caller's identity under scope, NUL-terminated. */
static void add_identity(buf *b, int scope, tide_role role, const char *sub, const char *claims)
{
    static const char nul = 0;
    if (scope == TIDE_SCOPE_PUBLIC) {
        buf_add(b, "p", 1);
    } else if (scope == TIDE_SCOPE_ROLE) {
        buf_add(b, "r", 1);
        buf_str(b, tide_role_name(role));
    } else if (scope == TIDE_SCOPE_USER && sub && sub[0]) {
        buf_add(b, "u", 1);
        buf_str(b, tide_role_name(role));
        buf_add(b, &nul, 1);
        buf_str(b, sub);
    } else { /* claims, or user without a sub: the whole claims text */
        buf_add(b, "c", 1);
        buf_str(b, tide_role_name(role));
        buf_add(b, &nul, 1);
        buf_str(b, claims ? claims : "");
    }
    buf_add(b, &nul, 1);
}

/* "R" rule NUL identity NUL path ? query {NUL vary-value} */
static void build_key(buf *b, const tide_cache_rule *r, const tide_http_req *req, tide_role role,
                      const char *sub, const char *claims)
{
    static const char nul = 0;
    buf_add(b, "R", 1);
    buf_str(b, r->route);
    buf_add(b, &nul, 1);
    add_identity(b, r->scope, role, sub, claims);
    buf_add(b, req->path, req->path_len);
    buf_add(b, "?", 1);
    buf_add(b, req->query, req->query_len);
    for (int i = 0; i < r->nvary; i++) {
        size_t vl = 0;
        const char *v = tide_http_header_get(req, r->vary[i], &vl);
        buf_add(b, &nul, 1);
        if (v) buf_add(b, v, vl);
        else buf_add(b, "\x01", 1); /* absent differs from empty */
    }
}

/* ---- stored answers ---------------------------------------------------------------------- */

/* An entry's value: header, content type, header block, body. */
typedef struct blob_head {
    uint32_t ctype_len, hdr_len;
    char etag[20]; /* "0123456789abcdef" with its quotes, NUL */
} blob_head;

static void etag_of(const char *body, size_t blen, char out[20])
{
    static const unsigned char k[16] = "tide etag v1 key";
    uint64_t h = tide__siphash13(k, body, blen);
    static const char hex[] = "0123456789abcdef";
    out[0] = '"';
    for (int i = 0; i < 16; i++) out[1 + i] = hex[(h >> (60 - 4 * i)) & 15];
    out[17] = '"';
    out[18] = 0;
    out[19] = 0;
}

/* Whether If-None-Match names etag (or is *). */
static int etag_matches(const tide_http_req *req, const char *etag)
{
    size_t n = 0;
    const char *v = tide_http_header_get(req, "if-none-match", &n);
    if (!v) return 0;
    if (n == 1 && v[0] == '*') return 1;
    for (size_t i = 0; i + 18 <= n; i++)
        if (memcmp(v + i, etag, 18) == 0) return 1;
    return 0;
}

static void add_uint(buf *b, unsigned long long v)
{
    char d[20];
    buf_add(b, d, (size_t)tide_utoa(v, d));
}

/* Sends an answer the cache made or passes on, through the pipeline's reply (stage.h: the
 * access-log line, metrics, audit line of a service_role caller, then the send); NULL lg: no
 * client to log for (a refresh), only sent. */
static void send_out(const tide_rcache *rc, const tide_answer_log *lg, tide_http_req *req,
                     int status, const char *xcache, const char *ctype, const char *hdrs,
                     const char *body, size_t blen)
{
    if (!lg) {
        tide_http_respond(req, status, ctype, hdrs, body, blen);
        return;
    }
    tide_answer_log l = *lg;
    l.aborted = lg->aborted || req->aborted;
    l.label = lg->label ? lg->label : xcache;
    rc->next->reply(rc->app, req, status, ctype, hdrs, body, blen, &l);
}

/* Answers req with a stored entry. */
static void serve(tide_rcache *rc, tide_http_req *req, const void *value, size_t vlen, double age,
                  const char *xcache, scope_stats *st, const tide_answer_log *lg)
{
    blob_head h;
    memcpy(&h, value, sizeof h);
    const char *ctype = (const char *)value + sizeof h;
    const char *hdrs = ctype + h.ctype_len + 1;
    const char *body = hdrs + h.hdr_len + 1;
    size_t vlen_body = vlen - (size_t)(body - (const char *)value);
    buf b;
    buf_init(&b);
    buf_add(&b, hdrs, h.hdr_len);
    buf_str(&b, "ETag: ");
    buf_add(&b, h.etag, 18);
    buf_str(&b, "\r\nX-Cache: ");
    buf_str(&b, xcache);
    buf_str(&b, "\r\nAge: ");
    add_uint(&b, age > 0 ? (unsigned long long)age : 0);
    buf_add(&b, "\r\n", 3); /* with the NUL */
    int nm = etag_matches(req, h.etag);
    if (nm && st) st->not_modified++;
    send_out(rc, lg, req, nm ? 304 : 200, xcache, ctype, b.oom ? NULL : b.p, nm ? NULL : body,
             nm ? 0 : vlen_body);
    buf_free(&b);
}

/* ---- admission --------------------------------------------------------------------------- */

static int wants_no_cache(const tide_http_req *req)
{
    size_t n = 0;
    const char *v = tide_http_header_get(req, "cache-control", &n);
    if (!v) return 0;
    for (size_t i = 0; i + 8 <= n; i++) {
        if (strncasecmp(v + i, "no-cache", 8) == 0 || strncasecmp(v + i, "no-store", 8) == 0)
            return 1;
        /* max-age=0 (what a browser's reload sends): nothing old is acceptable */
        if (i + 9 <= n && strncasecmp(v + i, "max-age=0", 9) == 0 &&
            (i + 9 == n || v[i + 9] < '0' || v[i + 9] > '9'))
            return 1;
    }
    return 0;
}

static tide_rcache_req *cr_new(tide_rcache *rc, int kind, const tide_cache_rule *r, const char *key,
                               size_t klen)
{
    tide_rcache_req *cr = calloc(1, sizeof *cr);
    if (!cr) return NULL;
    cr->rc = rc;
    cr->kind = kind;
    cr->scope = r->scope;
    cr->ttl = r->ttl;
    cr->swr = r->swr;
    cr->sie = r->sie;
    cr->born = tide_cache_clock(rc->store);
    cr->route = strdup(r->route + 4);
    if (key) {
        cr->key = malloc(klen);
        if (cr->key) memcpy(cr->key, key, klen);
        cr->klen = klen;
    }
    if (!cr->route || (key && !cr->key)) {
        free(cr->route);
        free(cr->key);
        free(cr);
        return NULL;
    }
    /* the rule's own tag: a reload that changes the rule drops what it stored */
    cr->tags[cr->ntags++] = tide_cache_tag(rc->store, r->route, strlen(r->route));
    return cr;
}

static void cr_free(tide_rcache_req *cr)
{
    free(cr->route);
    free(cr->key);
    free(cr);
}

static void answer(void *ud, tide_http_req *req, int status, const char *ctype, const char *headers,
                   const char *body, size_t blen, const tide_answer_log *lg);

/* Hands req on to the next stage: with cr, its answer comes back through answer(); without,
 * it goes straight to the client. */
static void run(tide_rcache *rc, tide_http_req *req, const tide_route_match *m, const char *claims,
                const char *sub, tide_role role, tide_rcache_req *cr)
{
    tide_stage_in in = { claims,
                         sub,
                         role,
                         m,
                         tide_cache_clock(rc->store),
                         cr,
                         cr ? answer : rc->next->reply,
                         cr ? (void *)cr : (void *)rc->app };
    rc->next->run(rc->app, req, &in);
}

/* Starts a background refresh of a stale entry: a copy of req runs through the bundle. */
static void refresh(tide_rcache *rc, const tide_cache_rule *r, tide_http_req *copy,
                    const tide_route_match *m, const char *key, size_t klen, uint64_t h,
                    const char *claims, const char *sub, tide_role role)
{
    tide_rcache_req *cr = cr_new(rc, CR_REFRESH, r, key, klen);
    flight *f = cr ? flight_new(rc, key, klen, h) : NULL;
    if (!f) {
        if (cr) cr_free(cr);
        tide_http_respond(copy, 500, "text/plain", NULL, NULL, 0); /* frees it */
        return;
    }
    cr->fl = f;
    rc->st[r->scope].refreshes++;
    run(rc, copy, m, claims, sub, role, cr);
}

void tide_rcache_admit(tide_app *app, tide_http_req *req, const tide_cache_rule *r,
                       const tide_route_match *m, const char *claims, const char *sub,
                       tide_role role)
{
    tide_rcache *rc = app->cache;
    scope_stats *st = &rc->st[r->scope];
    if (wants_no_cache(req)) {
        st->bypass++;
        tide_rcache_req *cr = cr_new(rc, CR_BYPASS, r, NULL, 0);
        run(rc, req, m, claims, sub, role, cr);
        return;
    }
    buf key;
    buf_init(&key);
    build_key(&key, r, req, role, sub, claims);
    if (key.oom) {
        buf_free(&key);
        run(rc, req, m, claims, sub, role, NULL);
        return;
    }
    const void *v;
    size_t vlen;
    double age;
    int state = tide_cache_get(rc->store, key.p, key.n, ev_now(app->loop), 0, &v, &vlen, &age);
    uint64_t h = state == TIDE_CACHE_HIT ? 0 : key_hash(key.p, key.n); /* flights: not hits */
    tide_answer_log lg = {
        req->id, role, ev_now(app->loop), 0, NULL, sub ? sub : "", r->route + 4
    };
    if (state == TIDE_CACHE_HIT) {
        st->hits++;
        serve(rc, req, v, vlen, age, "HIT", st, &lg);
    } else if (state == TIDE_CACHE_STALE) {
        st->stale++;
        /* one refresh at a time; the copy is made before req is answered (and freed), and
         * the match's params are moved onto the copy's path */
        tide_http_req *copy = flight_find(rc, key.p, key.n, h) ? NULL : tide_http_req_copy(req);
        tide_route_match mc = *m;
        if (copy)
            for (int i = 0; i < mc.nparams; i++)
                mc.params[i].value = copy->path + (m->params[i].value - req->path);
        serve(rc, req, v, vlen, age, "STALE", st, &lg);
        if (copy) refresh(rc, r, copy, &mc, key.p, key.n, h, claims, sub, role);
    } else {
        flight *f = flight_find(rc, key.p, key.n, h);
        if (f && flight_wait(f, req, claims, sub, role, ev_now(app->loop)) == 0) {
            st->coalesced++;
        } else {
            st->misses++;
            tide_rcache_req *cr = cr_new(rc, CR_MISS, r, key.p, key.n);
            if (cr && !f && (cr->fl = flight_new(rc, key.p, key.n, h)) == NULL) {
                cr_free(cr);
                cr = NULL;
            }
            run(rc, req, m, claims, sub, role, cr);
        }
    }
    buf_free(&key);
}

/* ---- answers from the bundle ---------------------------------------------------------- */

/* Stores a 200 answer; fills etag. 0 when stored. */
static int store(tide_rcache_req *cr, const char *ctype, const char *hdrs, const char *body,
                 size_t blen, char etag[20])
{
    tide_rcache *rc = cr->rc;
    blob_head h = { 0 };
    size_t cl = strlen(ctype), hl = hdrs ? strlen(hdrs) : 0;
    h.ctype_len = (uint32_t)cl;
    h.hdr_len = (uint32_t)hl;
    etag_of(body, blen, h.etag);
    memcpy(etag, h.etag, 20);
    size_t vlen = sizeof h + cl + 1 + hl + 1 + blen;
    char *v = malloc(vlen);
    if (!v) return -1;
    char *p = v;
    memcpy(p, &h, sizeof h);
    p += sizeof h;
    memcpy(p, ctype, cl + 1);
    p += cl + 1;
    if (hl) memcpy(p, hdrs, hl);
    p[hl] = 0;
    p += hl + 1;
    memcpy(p, body, blen);
    tide_cache_put_opts o = {
        .ttl = cr->ttl, .swr = cr->swr, .sie = cr->sie, .born = cr->born, .klass = cr->scope
    };
    int rc2 = tide_cache_put(rc->store, cr->key, cr->klen, v, vlen, ev_now(rc->app->loop), &o,
                             cr->tags, cr->ntags);
    free(v);
    return rc2;
}

/* Sends the bundle's answer to req with X-Cache (and the ETag of what was stored). */
static void send_answer(tide_rcache *rc, tide_http_req *req, int status, const char *ctype,
                        const char *hdrs, const char *body, size_t blen, const char *xcache,
                        const char *etag, const tide_answer_log *lg)
{
    buf b;
    buf_init(&b);
    if (hdrs) buf_str(&b, hdrs);
    if (etag) {
        buf_str(&b, "ETag: ");
        buf_add(&b, etag, 18);
        buf_str(&b, "\r\n");
    }
    buf_str(&b, "X-Cache: ");
    buf_str(&b, xcache);
    buf_add(&b, "\r\n", 3);
    int nm = etag && status == 200 && etag_matches(req, etag);
    send_out(rc, lg, req, nm ? 304 : status, xcache, ctype, b.oom ? hdrs : b.p, nm ? NULL : body,
             nm ? 0 : blen);
    buf_free(&b);
}

/* Ends cr's flight: its waiters get the answer, or (leader gone) start over. */
static void land(tide_rcache_req *cr, int status, const char *ctype, const char *hdrs,
                 const char *body, size_t blen, const char *xcache, const char *etag,
                 const void *kept, size_t kept_len, double kept_age)
{
    tide_rcache *rc = cr->rc;
    flight *f = cr->fl;
    if (!f) return;
    flight_unlink(rc, f);
    cr->fl = NULL;
    for (int i = 0; i < f->nw; i++) {
        waiter *w = &f->w[i];
        tide_answer_log lg = { w->req->id, w->role, w->since, 0, "COALESCED", w->sub, cr->route };
        if (status == 499 && cr->kind == CR_MISS)
            rc->next->admit(rc->app, w->req, w->claims, w->sub, w->role); /* try again */
        else if (kept) serve(rc, w->req, kept, kept_len, kept_age, "STALE", NULL, &lg);
        else send_answer(rc, w->req, status, ctype, hdrs, body, blen, xcache, etag, &lg);
        free(w->claims);
    }
    free(f->w);
    free(f->key);
    free(f);
}

/* The bundle's answer for a request handed on with a cache context (ud): sends it (with
 * X-Cache, ETag, or a kept entry instead of a 5xx) and its access-log line (lg), stores it,
 * answers the requests waiting on it (each with its own line: "cache":"COALESCED"), and frees
 * the context. req NULL: the request went away without an answer, as a 499. */
static void answer(void *ud, tide_http_req *req, int status, const char *ctype, const char *headers,
                   const char *body, size_t blen, const tide_answer_log *lg)
{
    tide_rcache_req *cr = ud;
    tide_rcache *rc = cr->rc;
    if (!req) {
        land(cr, 499, "application/json", NULL, "", 0, "MISS", NULL, NULL, 0, 0);
        cr_free(cr);
        return;
    }
    scope_stats *st = &rc->st[cr->scope];
    if (cr->kind == CR_BYPASS) {
        send_answer(rc, req, status, ctype, headers, body, blen, "BYPASS", NULL, lg);
        cr_free(cr);
        return;
    }
    char etag[20];
    int stored = 0;
    if (status == 200 && !cr->skip && cr->key) {
        int rc2 = store(cr, ctype, headers, body, blen, etag);
        stored = rc2 == 0;
        if (stored) st->stored++;
        else st->not_stored++;
    } else if (status == 200) {
        st->not_stored++;
    }
    if (status >= 500 && status != 501 && cr->sie > 0 && cr->key) {
        const void *v;
        size_t vlen;
        double age;
        int s = tide_cache_get(rc->store, cr->key, cr->klen, ev_now(rc->app->loop), cr->sie, &v,
                               &vlen, &age);
        if (s != TIDE_CACHE_MISS) {
            /* the entry stays put until the next cache call: copy it for the waiters */
            void *kept = malloc(vlen);
            if (kept) {
                memcpy(kept, v, vlen);
                st->stale_if_error++;
                if (cr->kind == CR_MISS) serve(rc, req, kept, vlen, age, "STALE", st, lg);
                else tide_http_respond(req, status, ctype, headers, body, blen);
                land(cr, status, NULL, NULL, NULL, 0, NULL, NULL, kept, vlen, age);
                free(kept);
                cr_free(cr);
                return;
            }
        }
    }
    send_answer(rc, req, status, ctype, headers, body, blen,
                cr->kind == CR_REFRESH ? "REFRESH" : "MISS", stored ? etag : NULL,
                cr->kind == CR_REFRESH ? NULL : lg);
    land(cr, status, ctype, headers, body, blen, "MISS", stored ? etag : NULL, NULL, 0, 0);
    cr_free(cr);
}

void tide_rcache_depend(tide_rcache_req *cr, const char *tag, size_t len)
{
    if (!cr || cr->kind == CR_BYPASS) return;
    tide_cache_tagid slot = tide_cache_tag(cr->rc->store, tag, len);
    for (int i = 0; i < cr->ntags; i++)
        if (cr->tags[i] == slot) return;
    if (cr->ntags == TIDE_CACHE_MAX_TAGS) cr->skip = 1; /* depends on too much to say: not stored */
    else cr->tags[cr->ntags++] = slot;
}

void tide_rcache_skip(tide_rcache_req *cr)
{
    if (cr) cr->skip = 1;
}

void tide_rcache_invalidate(tide_app *app, const char *tag, size_t len)
{
    tide_replica_note_invalidation(&app->replica, ev_now(app->loop));
    if (app->cache)
        tide_cache_invalidate(app->cache->store, tide_cache_tag(app->cache->store, tag, len));
}

uint64_t tide_rcache_clock(const tide_app *app)
{
    return app->cache ? tide_cache_clock(app->cache->store) : 0;
}

/* ---- the script API -------------------------------------------------------------------- */

static void script_key(buf *b, const tide_cache_ident *who, int scope, const char *key, size_t klen)
{
    buf_add(b, "S", 1);
    add_identity(b, scope, who->role, who->sub, who->claims);
    buf_add(b, key, klen);
}

int tide_rcache_script_get(tide_app *app, const tide_cache_ident *who, int scope, const char *key,
                           size_t klen, double sie, const void **value, size_t *vlen, double *age,
                           int *stale)
{
    tide_rcache *rc = app->cache;
    if (!rc || scope < 0 || scope >= TIDE_SCOPES) return 0;
    buf b;
    buf_init(&b);
    script_key(&b, who, scope, key, klen);
    int s = b.oom ? TIDE_CACHE_MISS
                  : tide_cache_get(rc->store, b.p, b.n, ev_now(app->loop), sie, value, vlen, age);
    buf_free(&b);
    if (s == TIDE_CACHE_HIT) rc->st[scope].hits++;
    else if (s != TIDE_CACHE_MISS) rc->st[scope].stale++;
    else rc->st[scope].misses++;
    *stale = s != TIDE_CACHE_HIT;
    return s != TIDE_CACHE_MISS;
}

int tide_rcache_script_set(tide_app *app, const tide_cache_ident *who, int scope, const char *key,
                           size_t klen, const char *value, size_t vlen, double ttl, double swr,
                           double sie, uint64_t born, const char *const *tags, const size_t *tlens,
                           int ntags)
{
    tide_rcache *rc = app->cache;
    if (!rc) return TIDE_ECLOSED;
    if (scope < 0 || scope >= TIDE_SCOPES || ntags < 0 || ntags > TIDE_CACHE_MAX_TAGS)
        return TIDE_EINVAL;
    tide_cache_tagid slots[TIDE_CACHE_MAX_TAGS];
    for (int i = 0; i < ntags; i++) slots[i] = tide_cache_tag(rc->store, tags[i], tlens[i]);
    buf b;
    buf_init(&b);
    script_key(&b, who, scope, key, klen);
    tide_cache_put_opts o = { .ttl = ttl, .swr = swr, .sie = sie, .born = born, .klass = scope };
    int err = b.oom ? TIDE_ENOMEM
                    : tide_cache_put(rc->store, b.p, b.n, value, vlen, ev_now(app->loop), &o, slots,
                                     ntags);
    buf_free(&b);
    if (err == 0) rc->st[scope].stored++;
    else rc->st[scope].not_stored++;
    return err;
}

/* ---- operations ---------------------------------------------------------------------- */

static int same_rule(const tide_cache_rule *a, const tide_cache_rule *b)
{
    if (strcmp(a->route, b->route) != 0 || a->ttl != b->ttl || a->swr != b->swr ||
        a->sie != b->sie || a->scope != b->scope || a->nvary != b->nvary)
        return 0;
    for (int i = 0; i < a->nvary; i++)
        if (strcmp(a->vary[i], b->vary[i]) != 0) return 0;
    return 1;
}

void tide_rcache_policy_changed(tide_app *app, const tide_cache_policy *old,
                                const tide_cache_policy *cur)
{
    tide_rcache *rc = app->cache;
    if (!rc || !old) return;
    if (!cur || strcmp(old->tables, cur->tables) != 0) {
        tide_cache_flush(rc->store);
        tide_info("cache: the tables section of policies/cache.lua changed: entries dropped");
        return;
    }
    for (int i = 0; i < old->nrules; i++) {
        const tide_cache_rule *o = &old->rules[i];
        int kept = 0;
        for (int k = 0; k < cur->nrules && !kept; k++) kept = same_rule(o, &cur->rules[k]);
        if (!kept) {
            tide_rcache_invalidate(app, o->route, strlen(o->route));
            tide_info("cache: rule %s changed: its entries dropped", o->route);
        }
    }
}

void tide_rcache_flush(tide_app *app, const char *tag, size_t len)
{
    if (!app->cache) return;
    if (tag) tide_rcache_invalidate(app, tag, len);
    else tide_cache_flush(app->cache->store);
}

void tide_rcache_heard(tide_app *app, const char *payload, size_t len)
{
    tide_rcache *rc = app->cache;
    if (!rc) return;
    if (len == 0) return;
    rc->heard++;
    const char *slash = memchr(payload, '/', len);
    /* "table/KEY" and "table/" + star move the table's tag too: reads of the whole table saw
     * it; a bare "table" (not what the trigger sends) is taken as any of its rows */
    tide_rcache_invalidate(app, payload, slash ? (size_t)(slash - payload) : len);
    if (slash) {
        tide_rcache_invalidate(app, payload, len);
    } else {
        char any[300];
        int n = snprintf(any, sizeof any, "%.*s/*", (int)(len > 280 ? 280 : len), payload);
        tide_rcache_invalidate(app, any, (size_t)n);
    }
}

void tide_rcache_hearing(tide_app *app, int up)
{
    tide_rcache *rc = app->cache;
    if (!rc) return;
    if (!up && rc->hearing == 1) rc->hearing_lost++;
    rc->hearing = up != 0;
    tide_cache_distrust(rc->store, !up);
}

void tide_rcache_get_stats(const tide_app *app, tide_rcache_stats *out)
{
    memset(out, 0, sizeof *out);
    const tide_rcache *rc = app->cache;
    out->hearing = -1;
    if (!rc) return;
    tide_cache_stats cs;
    tide_cache_get_stats(rc->store, &cs);
    out->enabled = 1;
    out->hearing = rc->hearing;
    out->entries = cs.entries;
    out->bytes = cs.bytes;
    out->max_bytes = cs.max_bytes;
    out->evictions = cs.evictions;
    out->invalidations = cs.invalidations;
    out->invalidated = cs.invalidated;
    out->expired = cs.expired;
    out->raced = cs.raced;
    out->heard = rc->heard;
    out->hearing_lost = rc->hearing_lost;
    for (int i = 0; i < TIDE_SCOPES; i++) {
        const scope_stats *s = &rc->st[i];
        out->scope[i] =
            (tide_rcache_scope_stats){ s->hits,           s->misses,           s->stale,
                                       s->stale_if_error, s->coalesced,        s->bypass,
                                       s->stored,         s->not_stored,       s->refreshes,
                                       s->not_modified,   cs.class_entries[i], cs.class_bytes[i] };
    }
}

size_t tide_rcache_stats_json(const tide_app *app, char *out, size_t cap)
{
    tide_rcache_stats cs;
    tide_rcache_get_stats(app, &cs);
    if (!cs.enabled) return (size_t)snprintf(out, cap, "{\"enabled\":false}");
    size_t n = (size_t)snprintf(
        out, cap,
        "{\"enabled\":true,\"entries\":%lld,\"bytes\":%lld,\"max_bytes\":%lld,"
        "\"evictions\":%lld,\"invalidations\":%lld,\"invalidated\":%lld,\"expired\":%lld,"
        "\"raced\":%lld,\"heard\":%lld,\"hearing\":%s,\"hearing_lost\":%lld,"
        "\"entry_overhead_bytes\":%zu,\"scopes\":{",
        cs.entries, cs.bytes, cs.max_bytes, cs.evictions, cs.invalidations, cs.invalidated,
        cs.expired, cs.raced, cs.heard,
        cs.hearing < 0 ? "null"
        : cs.hearing   ? "true"
                       : "false",
        cs.hearing_lost, TIDE_CACHE_ENTRY_OVERHEAD);
    for (int i = 0; i < TIDE_SCOPES && n < cap; i++) {
        const tide_rcache_scope_stats *s = &cs.scope[i];
        n += (size_t)snprintf(
            out + n, cap - n,
            "%s\"%s\":{\"hits\":%lld,\"misses\":%lld,\"stale\":%lld,\"stale_if_error\":%lld,"
            "\"coalesced\":%lld,\"bypass\":%lld,\"stored\":%lld,\"not_stored\":%lld,"
            "\"refreshes\":%lld,\"not_modified\":%lld,\"entries\":%lld,\"bytes\":%lld}",
            i ? "," : "", scope_names[i], s->hits, s->misses, s->stale, s->stale_if_error,
            s->coalesced, s->bypass, s->stored, s->not_stored, s->refreshes, s->not_modified,
            s->entries, s->bytes);
    }
    if (n < cap) n += (size_t)snprintf(out + n, cap - n, "}}");
    return n < cap ? n : cap - 1;
}
