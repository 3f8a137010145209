/* cache.c - the result cache's store (see cache.h for the design and its contract). */
#include "cache.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

enum { Q_SMALL = 0, Q_MAIN = 1 };
#define FREQ_MAX 3
#define SMALL_SHARE 10      /* percent of max_bytes the small FIFO may hold before it yields */

typedef struct tag_ref {
    int32_t id;
    uint32_t gen;
} tag_ref;

typedef struct entry {
    struct entry *hnext;            /* hash chain */
    struct entry *qprev, *qnext;    /* its FIFO */
    uint64_t hash;
    double stored, fresh_until, stale_until;
    uint32_t klen, vlen;
    uint8_t queue, freq, ntags;
    /* followed by ntags tag_refs, then the key, then the value */
} entry;

const size_t TIDE_CACHE_ENTRY_OVERHEAD = sizeof(entry);

typedef struct fifo {
    entry *head, *tail;             /* evict at the head, insert at the tail */
    size_t bytes;
} fifo;

typedef struct tag_name {
    char *name;
    size_t len;
    uint32_t gen;
} tag_name;

struct tide_cache {
    unsigned char seed[16];
    entry **buckets;
    size_t nbuckets, nentries;
    fifo q[2];
    size_t bytes, max_bytes;
    /* ghost: hashes evicted from the small FIFO, two bitmaps of generations; the older one
     * is cleared after ghost_span insertions */
    uint64_t *ghost[2];
    size_t ghost_bits, ghost_span, ghost_added;
    int ghost_cur;
    tag_name *tags;
    int ntags;
    tide_cache_stats st;
};

/* ---- SipHash-1-3 ---------------------------------------------------------------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                         \
    do {                                                                                 \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                       \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                           \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                           \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                       \
    } while (0)

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

uint64_t tide__siphash13(const unsigned char k[16], const void *data, size_t len)
{
    const unsigned char *in = data;
    uint64_t k0 = le64(k), k1 = le64(k + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t m = le64(in + i);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t j = 0; i + j < len; j++)
        b |= (uint64_t)in[i + j] << (8 * j);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- entries -------------------------------------------------------------------------- */

static tag_ref *entry_tags(entry *e) { return (tag_ref *)(e + 1); }
static unsigned char *entry_key(entry *e) { return (unsigned char *)(entry_tags(e) + e->ntags); }
static unsigned char *entry_value(entry *e) { return entry_key(e) + e->klen; }

static size_t entry_charge(size_t klen, size_t vlen, int ntags)
{
    return sizeof(entry) + (size_t)ntags * sizeof(tag_ref) + klen + vlen;
}

static size_t charge_of(const entry *e)
{
    return entry_charge(e->klen, e->vlen, e->ntags);
}

static void fifo_push(tide_cache *c, int which, entry *e)
{
    fifo *f = &c->q[which];
    e->queue = (uint8_t)which;
    e->qnext = NULL;
    e->qprev = f->tail;
    if (f->tail) f->tail->qnext = e;
    else f->head = e;
    f->tail = e;
    f->bytes += charge_of(e);
}

static void fifo_remove(tide_cache *c, entry *e)
{
    fifo *f = &c->q[e->queue];
    if (e->qprev) e->qprev->qnext = e->qnext;
    else f->head = e->qnext;
    if (e->qnext) e->qnext->qprev = e->qprev;
    else f->tail = e->qprev;
    e->qprev = e->qnext = NULL;
    f->bytes -= charge_of(e);
}

static entry **bucket_of(tide_cache *c, uint64_t hash)
{
    return &c->buckets[hash & (c->nbuckets - 1)];
}

static entry *find(tide_cache *c, uint64_t hash, const void *key, size_t klen)
{
    for (entry *e = *bucket_of(c, hash); e; e = e->hnext)
        if (e->hash == hash && e->klen == klen && memcmp(entry_key(e), key, klen) == 0)
            return e;
    return NULL;
}

/* Unlinks e from its chain and FIFO and frees it. */
static void drop(tide_cache *c, entry *e)
{
    for (entry **pp = bucket_of(c, e->hash); *pp; pp = &(*pp)->hnext)
        if (*pp == e) {
            *pp = e->hnext;
            break;
        }
    fifo_remove(c, e);
    c->bytes -= charge_of(e);
    c->nentries--;
    free(e);
}

/* Doubles the bucket array once there are more entries than buckets (no-op without memory:
 * chains just grow longer). */
static void maybe_grow(tide_cache *c)
{
    if (c->nentries < c->nbuckets)
        return;
    size_t n = c->nbuckets * 2;
    entry **b = calloc(n, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < c->nbuckets; i++) {
        entry *e = c->buckets[i];
        while (e) {
            entry *next = e->hnext;
            e->hnext = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
}

/* ---- ghost ---------------------------------------------------------------------------- */

static int ghost_has(const tide_cache *c, uint64_t hash)
{
    size_t bit = (size_t)(hash >> 7) & (c->ghost_bits - 1);
    for (int g = 0; g < 2; g++)
        if (c->ghost[g][bit / 64] >> (bit % 64) & 1)
            return 1;
    return 0;
}

static void ghost_add(tide_cache *c, uint64_t hash)
{
    if (++c->ghost_added > c->ghost_span) {
        c->ghost_cur ^= 1;
        memset(c->ghost[c->ghost_cur], 0, c->ghost_bits / 8);
        c->ghost_added = 1;
    }
    size_t bit = (size_t)(hash >> 7) & (c->ghost_bits - 1);
    c->ghost[c->ghost_cur][bit / 64] |= (uint64_t)1 << (bit % 64);
}

/* ---- eviction ------------------------------------------------------------------------- */

/* One step of S3-FIFO eviction: from the small FIFO while it holds more than its share (or
 * main is empty), else from main. A step may only move an entry; the caller loops. */
static void evict_step(tide_cache *c)
{
    fifo *small = &c->q[Q_SMALL], *main = &c->q[Q_MAIN];
    if (small->head && (small->bytes * 100 > c->max_bytes * SMALL_SHARE || !main->head)) {
        entry *e = small->head;
        if (e->freq > 0) {               /* hit while on probation: it earned a place in main */
            fifo_remove(c, e);
            e->freq = 0;
            fifo_push(c, Q_MAIN, e);
        } else {                         /* a one-hit wonder: remember it, drop it */
            ghost_add(c, e->hash);
            c->st.evictions++;
            drop(c, e);
        }
        return;
    }
    entry *e = main->head;
    if (e->freq > 0) {                   /* used since it was last looked at: another round */
        fifo_remove(c, e);
        e->freq--;
        fifo_push(c, Q_MAIN, e);
    } else {
        c->st.evictions++;
        drop(c, e);
    }
}

/* ---- public --------------------------------------------------------------------------- */

int tide_cache_new(size_t max_bytes, tide_cache **out)
{
    *out = NULL;
    if (max_bytes < 4096)
        return TIDE_EINVAL;
    tide_cache *c = calloc(1, sizeof *c);
    if (!c)
        return TIDE_ENOMEM;
    c->max_bytes = max_bytes;
    c->nbuckets = 1024;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    /* the ghost remembers about as many hashes as main can hold entries of 1 KiB */
    c->ghost_span = max_bytes / 1024 < 1024 ? 1024 : max_bytes / 1024;
    c->ghost_bits = 64;
    while (c->ghost_bits < c->ghost_span * 32)
        c->ghost_bits *= 2;
    c->ghost[0] = calloc(c->ghost_bits / 64, sizeof(uint64_t));
    c->ghost[1] = calloc(c->ghost_bits / 64, sizeof(uint64_t));
    if (!c->buckets || !c->ghost[0] || !c->ghost[1]) {
        tide_cache_free(c);
        return TIDE_ENOMEM;
    }
    if (getrandom(c->seed, sizeof c->seed, 0) != (ssize_t)sizeof c->seed) {
        uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)c;   /* no entropy: still a seed */
        memcpy(c->seed, &t, sizeof t);
    }
    c->st.max_bytes = (long long)max_bytes;
    *out = c;
    return 0;
}

void tide_cache_flush(tide_cache *c)
{
    for (int q = 0; q < 2; q++)
        while (c->q[q].head)
            drop(c, c->q[q].head);
}

void tide_cache_free(tide_cache *c)
{
    if (!c)
        return;
    if (c->buckets)
        tide_cache_flush(c);
    for (int i = 0; i < c->ntags; i++)
        free(c->tags[i].name);
    free(c->tags);
    free(c->buckets);
    free(c->ghost[0]);
    free(c->ghost[1]);
    free(c);
}

int tide_cache_tag(tide_cache *c, const char *name, size_t len)
{
    for (int i = 0; i < c->ntags; i++)
        if (c->tags[i].len == len && memcmp(c->tags[i].name, name, len) == 0)
            return i;
    if (c->ntags >= TIDE_CACHE_MAX_TAG_NAMES)
        return -1;
    if ((c->ntags & (c->ntags - 1)) == 0) {         /* 0, 1, 2, 4, ...: grow */
        size_t cap = c->ntags ? (size_t)c->ntags * 2 : 8;
        tag_name *t = realloc(c->tags, cap * sizeof *t);
        if (!t)
            return -1;
        c->tags = t;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, name, len);
    copy[len] = 0;
    c->tags[c->ntags] = (tag_name){ copy, len, 0 };
    return c->ntags++;
}

void tide_cache_invalidate(tide_cache *c, int tag)
{
    if (tag >= 0 && tag < c->ntags)
        c->tags[tag].gen++;
}

int tide_cache_put(tide_cache *c, const void *key, size_t klen, const void *value, size_t vlen,
                   double now, double ttl, double stale, const int *tags, int ntags)
{
    if (!(ttl > 0) || stale < 0 || ntags < 0 || ntags > TIDE_CACHE_MAX_TAGS ||
        (ntags && !tags))
        return TIDE_EINVAL;
    for (int i = 0; i < ntags; i++)
        if (tags[i] < 0 || tags[i] >= c->ntags)
            return TIDE_EINVAL;
    if (klen > UINT32_MAX || vlen > UINT32_MAX)
        return TIDE_ETOOBIG;
    size_t charge = entry_charge(klen, vlen, ntags);
    if (charge > c->max_bytes / 8)
        return TIDE_ETOOBIG;
    uint64_t hash = tide__siphash13(c->seed, key, klen);
    entry *old = find(c, hash, key, klen);
    if (old)
        drop(c, old);
    while (c->bytes + charge > c->max_bytes && (c->q[Q_SMALL].head || c->q[Q_MAIN].head))
        evict_step(c);
    entry *e = malloc(charge);
    if (!e)
        return TIDE_ENOMEM;
    memset(e, 0, sizeof *e);
    e->hash = hash;
    e->stored = now;
    e->fresh_until = now + ttl;
    e->stale_until = now + ttl + stale;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    e->ntags = (uint8_t)ntags;
    for (int i = 0; i < ntags; i++)
        entry_tags(e)[i] = (tag_ref){ tags[i], c->tags[tags[i]].gen };
    memcpy(entry_key(e), key, klen);
    if (vlen)
        memcpy(entry_value(e), value, vlen);
    entry **b = bucket_of(c, hash);
    e->hnext = *b;
    *b = e;
    c->nentries++;
    c->bytes += charge;
    fifo_push(c, ghost_has(c, hash) ? Q_MAIN : Q_SMALL, e);
    c->st.puts++;
    maybe_grow(c);
    return 0;
}

int tide_cache_get(tide_cache *c, const void *key, size_t klen, double now, const void **value,
                   size_t *vlen, double *age)
{
    uint64_t hash = tide__siphash13(c->seed, key, klen);
    entry *e = find(c, hash, key, klen);
    if (e) {
        for (int i = 0; i < e->ntags; i++) {
            tag_ref t = entry_tags(e)[i];
            if (c->tags[t.id].gen != t.gen) {
                c->st.invalidated++;
                drop(c, e);
                e = NULL;
                break;
            }
        }
    }
    if (e && now >= e->stale_until) {
        c->st.expired++;
        drop(c, e);
        e = NULL;
    }
    if (!e) {
        c->st.misses++;
        return TIDE_CACHE_MISS;
    }
    if (e->freq < FREQ_MAX)
        e->freq++;
    *value = entry_value(e);
    *vlen = e->vlen;
    *age = now - e->stored;
    if (now < e->fresh_until) {
        c->st.hits++;
        return TIDE_CACHE_HIT;
    }
    c->st.stale_hits++;
    return TIDE_CACHE_STALE;
}

void tide_cache_get_stats(const tide_cache *c, tide_cache_stats *out)
{
    *out = c->st;
    out->entries = (long long)c->nentries;
    out->bytes = (long long)c->bytes;
}
