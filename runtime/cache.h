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
 * Invalidation is lazy and O(1): every tag (a table name, say) has a generation; an entry
 * remembers its tags' generations when stored, and one whose tag has moved on since is a miss
 * (and is freed then). tide_cache_invalidate() just moves the generation. Entries that will
 * never be looked up again are reclaimed by eviction, so memory stays within max_bytes.
 *
 * Memory: each entry is one allocation of TIDE_CACHE_ENTRY_OVERHEAD bytes plus its key, its
 * value and 8 bytes per tag, all counted against max_bytes. Outside it: the hash table (8
 * bytes per bucket, one bucket per entry at most twice over) and the ghost, two bitmaps of 4
 * bytes per remembered hash, which remember max_bytes / 1 KiB hashes (at least 1024) each
 * (about 0.8% of max_bytes). Keys are hashed with SipHash-1-3 under a random key, so clients cannot aim keys at
 * one bucket. */
#ifndef TIDE_CACHE_H
#define TIDE_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

typedef struct tide_cache tide_cache;

enum { TIDE_CACHE_MISS = 0, TIDE_CACHE_HIT = 1, TIDE_CACHE_STALE = 2 };

#define TIDE_CACHE_MAX_TAGS 8         /* per entry */
#define TIDE_CACHE_MAX_TAG_NAMES 4096 /* distinct tag names in one cache */

typedef struct tide_cache_stats {
    long long hits, stale_hits, misses, puts, evictions, invalidated, expired;
    long long entries, bytes, max_bytes;
} tide_cache_stats;

/* Per-entry bookkeeping on top of key, value and tags (what max_bytes counts for an entry). */
extern const size_t TIDE_CACHE_ENTRY_OVERHEAD;

/* Creates a store holding at most max_bytes (entries with their keys, values, tags and
 * bookkeeping). Returns 0 and *out, TIDE_EINVAL (max_bytes below 4 KiB) or TIDE_ENOMEM. */
TIDE_MUST_CHECK int tide_cache_new(size_t max_bytes, tide_cache **out);
void tide_cache_free(tide_cache *c);

/* The id of tag `name` (len bytes), interned on first use; -1 when TIDE_CACHE_MAX_TAG_NAMES
 * names exist already or memory is short (the caller then does not cache). */
int tide_cache_tag(tide_cache *c, const char *name, size_t len);

/* Stores value (vlen bytes) under key (klen bytes) at time now: fresh until now + ttl, then
 * served as stale until now + ttl + stale (0: never stale). tags (ntags ids from
 * tide_cache_tag, at most TIDE_CACHE_MAX_TAGS) tie it to tide_cache_invalidate. Replaces an
 * entry with the same key. Evicts what it must to stay within max_bytes. Returns 0,
 * TIDE_ETOOBIG (the entry alone would take more than an eighth of max_bytes: not stored),
 * TIDE_EINVAL (bad tags, ttl <= 0) or TIDE_ENOMEM. */
TIDE_MUST_CHECK int tide_cache_put(tide_cache *c, const void *key, size_t klen,
                                   const void *value, size_t vlen, double now, double ttl,
                                   double stale, const int *tags, int ntags);

/* Looks key up at time now. Returns TIDE_CACHE_HIT (fresh), TIDE_CACHE_STALE (past its ttl,
 * within its stale window) or TIDE_CACHE_MISS (absent, expired, or a tag was invalidated since
 * it was stored: such an entry is freed now). On a hit or stale hit, *value, *vlen and *age
 * (seconds since it was stored) describe it; they stay valid until the next call that can
 * store, evict or free (put, invalidate, flush, free). */
int tide_cache_get(tide_cache *c, const void *key, size_t klen, double now, const void **value,
                   size_t *vlen, double *age);

/* Entries tagged `tag` before now stop being served (lazily: see the header). */
void tide_cache_invalidate(tide_cache *c, int tag);
/* Drops every entry (tags stay interned). */
void tide_cache_flush(tide_cache *c);
void tide_cache_get_stats(const tide_cache *c, tide_cache_stats *out);

/* Internal, exposed for tests: SipHash-1-3 of data under the 16-byte key k. */
uint64_t tide__siphash13(const unsigned char k[16], const void *data, size_t len);

#endif
