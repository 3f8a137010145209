/* cache.h - the result cache's store: byte-bounded, S3-FIFO eviction, TTL with a stale window,
 * invalidation by tag. Pure: no I/O, no logging; the caller passes the clock. The call path
 * (runtime/call.c) will build keys that hold the caller's identity for the entry's scope, the
 * statement and its parameters; this module only stores bytes under byte keys.
 *
 * Eviction is S3-FIFO (Yang et al., SOSP 2023): new entries enter a small FIFO (10% of the
 * bytes); one that was hit while there moves to the main FIFO when it reaches the head, one
 * that was not is evicted and its key hash remembered in a ghost FIFO, so if it comes back soon
 * it goes straight to main (the ghost is approximate: a bitmap, so a few new keys go to main
 * unearned; that costs a little hit rate, never memory). Main is a FIFO with reinsertion: an entry hit since it was last
 * examined (a 2-bit counter) goes round again. A scan of one-hit keys therefore passes through
 * the small queue without pushing hot keys out of main, and a hit costs one counter increment
 * (no list moves), unlike LRU.
 *
 * Invalidation is lazy and O(1). A tag (a string such as "trips" or "trips/7", compared
 * without regard to ASCII case) hashes to two of the store's slots, each holding the
 * value of a clock at its last invalidation; tide_cache_invalidate() moves the clock on and
 * stamps both. An entry carries `born`, the clock when its contents were read (the caller takes
 * tide_cache_clock() before it reads), and is outdated when both slots of one of its tags were
 * stamped after that: a get then misses and frees it, and a put refuses it (TIDE_EAGAIN), so a
 * read that raced with a write is never stored. Tags that share slots only invalidate more
 * than needed, never less, and another tag must share both slots of a tag to do that (with k
 * slots stamped since an entry was read, a tag looks invalidated with probability about
 * (k / slots)^2, not k / slots). There is a slot per 256 bytes of max_bytes, at least 65,536
 * and at most 4,194,304. Entries that are never looked up again
 * are reclaimed by eviction, so memory stays within max_bytes.
 *
 * Trust: tide_cache_distrust() makes every entry read before it "for errors only": it is not
 * served as fresh or stale any more, only as TIDE_CACHE_ERRONLY (the caller may use it when
 * the upstream fails, up to its stale-if-error age). While distrust is on no entry is served
 * as fresh; turning it off distrusts again what was stored meanwhile. This is what the caller
 * does while it cannot hear about other writers' writes.
 *
 * Memory: each entry is one allocation of TIDE_CACHE_ENTRY_OVERHEAD bytes plus its key, its
 * value and 8 bytes per tag, all counted against max_bytes. Outside it: the hash table (8
 * bytes per bucket, one bucket per entry at most twice over), the slots (8 bytes each: 3% of
 * max_bytes, at least 512 KiB) and the ghost, two bitmaps of 4 bytes per remembered hash, which remember max_bytes / 1
 * KiB hashes (at least 1024) each (about 0.8% of max_bytes). Keys and tags are hashed with
 * SipHash-1-3 under a random key, so clients cannot aim keys at one bucket or tags at one
 * slot. */
#ifndef TIDE_CACHE_H
#define TIDE_CACHE_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include "error.h"

typedef struct tide_cache tide_cache;

/* What a get found: nothing usable; an entry within its ttl; an entry past its ttl but within
 * its stale-while-revalidate window (serve it, refresh it); an entry that may only stand in
 * for an answer the upstream failed to give (past its windows or read before a distrust, not
 * older than the stale-if-error age asked for). */
enum { TIDE_CACHE_MISS = 0, TIDE_CACHE_HIT = 1, TIDE_CACHE_STALE = 2, TIDE_CACHE_ERRONLY = 3 };

#define TIDE_CACHE_MAX_TAGS 16 /* per entry */
/* A tag's slots, from tide_cache_tag. */
typedef uint64_t tide_cache_tagid;
#define TIDE_CACHE_CLASSES 8 /* entry classes with their own entry and byte counts */

typedef struct tide_cache_stats {
    long long hits, stale_hits, misses, puts, evictions, invalidated, expired, raced;
    long long invalidations; /* tide_cache_invalidate calls */
    long long entries, bytes, max_bytes;
    long long class_entries[TIDE_CACHE_CLASSES], class_bytes[TIDE_CACHE_CLASSES];
} tide_cache_stats;

/* Per-entry bookkeeping on top of key, value and tags (what max_bytes counts for an entry). */
extern const size_t TIDE_CACHE_ENTRY_OVERHEAD;

typedef struct tide_cache_put_opts {
    double ttl;    /* seconds fresh (> 0) */
    double swr;    /* then seconds served stale while it is refreshed (>= 0) */
    double sie;    /* kept for errors until this age (>= 0; may exceed ttl + swr) */
    uint64_t born; /* tide_cache_clock() taken before the contents were read */
    int klass;     /* 0 .. TIDE_CACHE_CLASSES-1, for the per-class counts */
} tide_cache_put_opts;

/* The invalidation clock and tag slots, which several stores (one per worker process) may
 * share: put in memory mapped MAP_SHARED before fork and passed to each store, an
 * invalidation in one process is seen by the next lookup in every other (atomics; a slot only
 * ever moves forward). */
typedef struct tide_cache_shared {
    _Atomic uint64_t clock;
    unsigned char seed[16]; /* the tag hash's key: the same in every process */
    uint64_t nslots;
    _Atomic uint64_t slot_time[];
} tide_cache_shared;
/* Bytes a shared region for stores of max_bytes takes, and its initialisation. */
size_t tide_cache_shared_size(size_t max_bytes);
void tide_cache_shared_init(tide_cache_shared *sh, size_t max_bytes);

/* Creates a store holding at most max_bytes (entries with their keys, values, tags and
 * bookkeeping), using shared (tide_cache_shared_init'ed for the same max_bytes) or, when NULL,
 * a clock and slots of its own. Returns 0 and *out, TIDE_EINVAL (max_bytes below 4 KiB, or a
 * shared region made for another size) or TIDE_ENOMEM. */
TIDE_MUST_CHECK int tide_cache_new(size_t max_bytes, tide_cache_shared *shared, tide_cache **out);
void tide_cache_free(tide_cache *c);

/* The slots of tag `name` (len bytes, ASCII case ignored), packed in one value. */
tide_cache_tagid tide_cache_tag(const tide_cache *c, const char *name, size_t len);
/* Entries tagged `tag` (and any whose tag shares both its slots), read before now, stop being
 * served. */
void tide_cache_invalidate(tide_cache *c, tide_cache_tagid tag);
/* The clock: take it before reading what will be stored (tide_cache_put_opts.born). */
uint64_t tide_cache_clock(const tide_cache *c);
/* on: entries read so far are for errors only, and none is trusted until it is called with
 * off (which distrusts again what was read meanwhile). */
void tide_cache_distrust(tide_cache *c, int on);

/* Stores value (vlen bytes) under key (klen bytes) at time now, as o says, tied to the tags'
 * slots (ntags at most TIDE_CACHE_MAX_TAGS). Replaces an entry with the same key (also when
 * it then refuses). Evicts what it must to stay within max_bytes. Returns 0, TIDE_EAGAIN (a
 * tag was invalidated after o->born: not stored), TIDE_ETOOBIG (the entry alone would take
 * more than an eighth of max_bytes: not stored), TIDE_EINVAL or TIDE_ENOMEM. */
TIDE_MUST_CHECK int tide_cache_put(tide_cache *c, const void *key, size_t klen, const void *value,
                                   size_t vlen, double now, const tide_cache_put_opts *o,
                                   const tide_cache_tagid *tags, int ntags);

/* Looks key up at time now; sie is the stale-if-error age the caller would accept. Returns
 * one of the states above (outdated and expired entries are freed now and miss). Unless it
 * misses, *value, *vlen and *age (seconds since it was stored) describe the entry; they stay
 * valid until the next call that can store, evict or free (put, get, flush, free). */
int tide_cache_get(tide_cache *c, const void *key, size_t klen, double now, double sie,
                   const void **value, size_t *vlen, double *age);

/* Drops every entry. */
void tide_cache_flush(tide_cache *c);
void tide_cache_get_stats(const tide_cache *c, tide_cache_stats *out);

/* Internal, exposed for tests: SipHash-1-3 of data under the 16-byte key k. */
uint64_t tide__siphash13(const unsigned char k[16], const void *data, size_t len);

#endif
