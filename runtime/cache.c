/* cache.c - the result cache's store (see cache.h for the design and its contract). */
#include "cache.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

enum { Q_SMALL = 0, Q_MAIN = 1 };
#define FREQ_MAX    3
#define SMALL_SHARE 10 /* percent of max_bytes the small FIFO may hold before it yields */

typedef tide_cache_tagid tag_ref; /* two slots of tide_cache.slot_time (tide_cache_tag) */

typedef struct entry {
    struct entry *hnext;         /* hash chain */
    struct entry *qprev, *qnext; /* its FIFO */
    uint64_t hash;
    uint64_t born; /* the clock when what it holds was read */
    double stored, fresh_until, swr_until, keep_until;
    uint32_t klen, vlen;
    uint8_t queue, freq, ntags, klass;
    /* followed by ntags tag_refs, then the key, then the value */
} entry;

const size_t TIDE_CACHE_ENTRY_OVERHEAD = sizeof(entry);

typedef struct fifo {
    entry *head, *tail; /* evict at the head, insert at the tail */
    size_t bytes;
} fifo;

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
    tide_cache_shared *sh; /* the clock and the tag slots (maybe other processes' too) */
    int own_sh;            /* sh was allocated here */
    uint64_t slot_mask;    /* slots - 1 (a power of two) */
    uint64_t trusted_from; /* entries born before it are for errors only */
    int distrust;          /* no entry is trusted (the caller cannot see writes) */
    long long class_entries[TIDE_CACHE_CLASSES], class_bytes[TIDE_CACHE_CLASSES];
    tide_cache_stats st;
};

/* ---- SipHash-1-3 ---------------------------------------------------------------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND           \
    do {                   \
        v0 += v1;          \
        v1 = ROTL(v1, 13); \
        v1 ^= v0;          \
        v0 = ROTL(v0, 32); \
        v2 += v3;          \
        v3 = ROTL(v3, 16); \
        v3 ^= v2;          \
        v0 += v3;          \
        v3 = ROTL(v3, 21); \
        v3 ^= v0;          \
        v2 += v1;          \
        v1 = ROTL(v1, 17); \
        v1 ^= v2;          \
        v2 = ROTL(v2, 32); \
    } while (0)

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
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
    for (size_t j = 0; i + j < len; j++) b |= (uint64_t)in[i + j] << (8 * j);
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

static size_t charge_of(const entry *e) { return entry_charge(e->klen, e->vlen, e->ntags); }

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
        if (e->hash == hash && e->klen == klen && memcmp(entry_key(e), key, klen) == 0) return e;
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
    c->class_entries[e->klass]--;
    c->class_bytes[e->klass] -= (long long)charge_of(e);
    c->nentries--;
    free(e);
}

/* Doubles the bucket array once there are more entries than buckets (no-op without memory:
 * chains just grow longer). */
static void maybe_grow(tide_cache *c)
{
    if (c->nentries < c->nbuckets) return;
    size_t n = c->nbuckets * 2;
    entry **b = calloc(n, sizeof *b);
    if (!b) return;
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
        if (c->ghost[g][bit / 64] >> (bit % 64) & 1) return 1;
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
        if (e->freq > 0) { /* hit while on probation: it earned a place in main */
            fifo_remove(c, e);
            e->freq = 0;
            fifo_push(c, Q_MAIN, e);
        } else { /* a one-hit wonder: remember it, drop it */
            ghost_add(c, e->hash);
            c->st.evictions++;
            drop(c, e);
        }
        return;
    }
    entry *e = main->head;
    if (e->freq > 0) { /* used since it was last looked at: another round */
        fifo_remove(c, e);
        e->freq--;
        fifo_push(c, Q_MAIN, e);
    } else {
        c->st.evictions++;
        drop(c, e);
    }
}

/* ---- public --------------------------------------------------------------------------- */

static size_t slots_for(size_t max_bytes)
{
    size_t slots = 65536;
    while (slots < max_bytes / 256 && slots < ((size_t)1 << 22)) slots *= 2;
    return slots;
}

size_t tide_cache_shared_size(size_t max_bytes)
{
    return sizeof(tide_cache_shared) + slots_for(max_bytes) * sizeof(_Atomic uint64_t);
}

void tide_cache_shared_init(tide_cache_shared *sh, size_t max_bytes)
{
    memset(sh, 0, tide_cache_shared_size(max_bytes));
    sh->nslots = slots_for(max_bytes);
    atomic_init(&sh->clock, 0);
    if (getrandom(sh->seed, sizeof sh->seed, 0) != (ssize_t)sizeof sh->seed) {
        uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)sh; /* no entropy: a seed */
        memcpy(sh->seed, &t, sizeof t);
    }
}

int tide_cache_new(size_t max_bytes, tide_cache_shared *shared, tide_cache **out)
{
    *out = NULL;
    if (max_bytes < 4096) return TIDE_EINVAL;
    tide_cache *c = calloc(1, sizeof *c);
    if (!c) return TIDE_ENOMEM;
    c->max_bytes = max_bytes;
    c->nbuckets = 1024;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    /* the ghost remembers about as many hashes as main can hold entries of 1 KiB */
    c->ghost_span = max_bytes / 1024 < 1024 ? 1024 : max_bytes / 1024;
    c->ghost_bits = 64;
    while (c->ghost_bits < c->ghost_span * 32) c->ghost_bits *= 2;
    c->ghost[0] = calloc(c->ghost_bits / 64, sizeof(uint64_t));
    c->ghost[1] = calloc(c->ghost_bits / 64, sizeof(uint64_t));
    if (shared) {
        if (shared->nslots != slots_for(max_bytes)) {
            tide_cache_free(c);
            return TIDE_EINVAL;
        }
        c->sh = shared;
    } else if ((c->sh = malloc(tide_cache_shared_size(max_bytes)))) {
        c->own_sh = 1;
        tide_cache_shared_init(c->sh, max_bytes);
    }
    c->slot_mask = c->sh ? c->sh->nslots - 1 : 0;
    if (!c->buckets || !c->ghost[0] || !c->ghost[1] || !c->sh) {
        tide_cache_free(c);
        return TIDE_ENOMEM;
    }
    if (getrandom(c->seed, sizeof c->seed, 0) != (ssize_t)sizeof c->seed) {
        uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)c; /* no entropy: still a seed */
        memcpy(c->seed, &t, sizeof t);
    }
    c->st.max_bytes = (long long)max_bytes;
    *out = c;
    return 0;
}

void tide_cache_flush(tide_cache *c)
{
    for (int q = 0; q < 2; q++)
        while (c->q[q].head) drop(c, c->q[q].head);
}

void tide_cache_free(tide_cache *c)
{
    if (!c) return;
    if (c->buckets) tide_cache_flush(c);
    if (c->own_sh) free(c->sh);
    free(c->buckets);
    free(c->ghost[0]);
    free(c->ghost[1]);
    free(c);
}

/* A tag is two slots (from the two halves of one keyed hash), packed in a tag_ref; it counts
 * as invalidated after `born` only when both of its slots were stamped after born, so another
 * tag makes it look invalidated only by colliding in both. */
#define SLOT_A(t) ((t) >> 32)
#define SLOT_B(t) ((t)&0xffffffffu)

tide_cache_tagid tide_cache_tag(const tide_cache *c, const char *name, size_t len)
{
    char low[256] = { 0 };
    size_t n = len < sizeof low ? len : sizeof low;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    uint64_t h = tide__siphash13(c->sh->seed, low, n);
    if (len > n) /* a long tag: its tail still counts, as it is */
        h ^= tide__siphash13(c->sh->seed, name + n, len - n);
    uint64_t a = (h >> 32) & c->slot_mask, b = h & c->slot_mask;
    if (a == b) b ^= 1; /* two distinct slots */
    return a << 32 | b;
}

static uint64_t stamped(const tide_cache *c, tide_cache_tagid tag)
{
    uint64_t a = atomic_load_explicit(&c->sh->slot_time[SLOT_A(tag)], memory_order_acquire);
    uint64_t b = atomic_load_explicit(&c->sh->slot_time[SLOT_B(tag)], memory_order_acquire);
    return a < b ? a : b;
}

/* Raises a slot to t (never lowers it: another process may have stamped it later). */
static void stamp(tide_cache *c, uint64_t slot, uint64_t t)
{
    _Atomic uint64_t *p = &c->sh->slot_time[slot];
    uint64_t cur = atomic_load_explicit(p, memory_order_relaxed);
    while (cur < t && !atomic_compare_exchange_weak(p, &cur, t)) {}
}

void tide_cache_invalidate(tide_cache *c, tide_cache_tagid tag)
{
    uint64_t t = atomic_fetch_add(&c->sh->clock, 1) + 1;
    stamp(c, SLOT_A(tag), t);
    stamp(c, SLOT_B(tag), t);
    c->st.invalidations++;
}

uint64_t tide_cache_clock(const tide_cache *c) { return atomic_load(&c->sh->clock); }

void tide_cache_distrust(tide_cache *c, int on)
{
    c->trusted_from = atomic_fetch_add(&c->sh->clock, 1) + 1;
    c->distrust = on != 0;
}

/* Whether a tag of e was invalidated after e's contents were read. */
static int outdated(const tide_cache *c, const entry *e)
{
    const tag_ref *t = entry_tags((entry *)e);
    for (int i = 0; i < e->ntags; i++)
        if (stamped(c, t[i]) > e->born) return 1;
    return 0;
}

int tide_cache_put(tide_cache *c, const void *key, size_t klen, const void *value, size_t vlen,
                   double now, const tide_cache_put_opts *o, const tide_cache_tagid *tags,
                   int ntags)
{
    if (!o || !(o->ttl > 0) || !(o->swr >= 0) || !(o->sie >= 0) || ntags < 0 ||
        ntags > TIDE_CACHE_MAX_TAGS || (ntags && !tags) || o->klass < 0 ||
        o->klass >= TIDE_CACHE_CLASSES || o->born > tide_cache_clock(c))
        return TIDE_EINVAL;
    if (klen > UINT32_MAX || vlen > UINT32_MAX) return TIDE_ETOOBIG;
    size_t charge = entry_charge(klen, vlen, ntags);
    if (charge > c->max_bytes / 8) return TIDE_ETOOBIG;
    uint64_t hash = tide__siphash13(c->seed, key, klen);
    entry *old = find(c, hash, key, klen);
    if (old) drop(c, old);
    for (int i = 0; i < ntags; i++)
        if (stamped(c, tags[i]) > o->born) {
            c->st.raced++; /* written while it was read: it may hold the old rows */
            return TIDE_EAGAIN;
        }
    while (c->bytes + charge > c->max_bytes && (c->q[Q_SMALL].head || c->q[Q_MAIN].head))
        evict_step(c);
    entry *e = malloc(charge);
    if (!e) return TIDE_ENOMEM;
    memset(e, 0, sizeof *e);
    e->hash = hash;
    e->born = o->born;
    e->stored = now;
    e->fresh_until = now + o->ttl;
    e->swr_until = e->fresh_until + o->swr;
    e->keep_until = now + o->sie > e->swr_until ? now + o->sie : e->swr_until;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    e->ntags = (uint8_t)ntags;
    e->klass = (uint8_t)o->klass;
    for (int i = 0; i < ntags; i++) entry_tags(e)[i] = tags[i];
    memcpy(entry_key(e), key, klen);
    if (vlen) memcpy(entry_value(e), value, vlen);
    entry **b = bucket_of(c, hash);
    e->hnext = *b;
    *b = e;
    c->nentries++;
    c->bytes += charge;
    c->class_entries[e->klass]++;
    c->class_bytes[e->klass] += (long long)charge;
    fifo_push(c, ghost_has(c, hash) ? Q_MAIN : Q_SMALL, e);
    c->st.puts++;
    maybe_grow(c);
    return 0;
}

int tide_cache_get(tide_cache *c, const void *key, size_t klen, double now, double sie,
                   const void **value, size_t *vlen, double *age)
{
    uint64_t hash = tide__siphash13(c->seed, key, klen);
    entry *e = find(c, hash, key, klen);
    if (e && outdated(c, e)) {
        c->st.invalidated++;
        drop(c, e);
        e = NULL;
    }
    if (e && now >= e->keep_until) {
        c->st.expired++;
        drop(c, e);
        e = NULL;
    }
    if (!e) {
        c->st.misses++;
        return TIDE_CACHE_MISS;
    }
    double a = now - e->stored;
    int trusted = !c->distrust && e->born >= c->trusted_from;
    int state;
    if (trusted && now < e->fresh_until) state = TIDE_CACHE_HIT;
    else if (trusted && now < e->swr_until) state = TIDE_CACHE_STALE;
    else if (a <= sie) state = TIDE_CACHE_ERRONLY;
    else {
        c->st.misses++;
        return TIDE_CACHE_MISS;
    }
    if (e->freq < FREQ_MAX) e->freq++;
    *value = entry_value(e);
    *vlen = e->vlen;
    *age = a;
    if (state == TIDE_CACHE_HIT) c->st.hits++;
    else if (state == TIDE_CACHE_STALE) c->st.stale_hits++;
    else c->st.misses++;
    return state;
}

void tide_cache_get_stats(const tide_cache *c, tide_cache_stats *out)
{
    *out = c->st;
    out->entries = (long long)c->nentries;
    out->bytes = (long long)c->bytes;
    for (int i = 0; i < TIDE_CACHE_CLASSES; i++) {
        out->class_entries[i] = c->class_entries[i];
        out->class_bytes[i] = c->class_bytes[i];
    }
}
