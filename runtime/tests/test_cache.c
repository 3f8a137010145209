/* test_cache.c - the result cache's store (runtime/cache.c) on a fake clock: hits, TTL and
 * the stale windows, replacement, lazy invalidation by tag (and a read that raced with a write
 * is refused), distrust, the byte bound under a flood of
 * distinct keys, S3-FIFO keeping hot keys through a scan, the per-entry overhead, and the
 * keyed hash. */
#include "test.h"
#include "../cache.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static int put(tide_cache *c, const char *key, const char *value, double now, double ttl,
               double stale, const tide_cache_tagid *tags, int ntags)
{
    tide_cache_put_opts o = { .ttl = ttl, .swr = stale, .born = tide_cache_clock(c) };
    return tide_cache_put(c, key, strlen(key), value, strlen(value), now, &o, tags, ntags);
}

static int get_sie(tide_cache *c, const char *key, double now, double sie, char *out, size_t cap)
{
    const void *v = NULL;
    size_t vl = 0;
    double age = -1;
    int rc = tide_cache_get(c, key, strlen(key), now, sie, &v, &vl, &age);
    out[0] = 0;
    if (rc != TIDE_CACHE_MISS && vl < cap) {
        memcpy(out, v, vl);
        out[vl] = 0;
    }
    return rc;
}

static int get(tide_cache *c, const char *key, double now, char *out, size_t cap)
{
    return get_sie(c, key, now, 0, out, cap);
}

TEST(cache_hit_ttl_and_stale_window)
{
    tide_cache *c;
    char v[64];
    CHECK_EQ_INT(tide_cache_new(1 << 20, NULL, &c), 0);
    CHECK_EQ_INT(put(c, "user:1|select trips", "[1,2]", 100.0, 60, 30, NULL, 0), 0);
    CHECK_EQ_INT(get(c, "user:1|select trips", 100.5, v, sizeof v), TIDE_CACHE_HIT);
    CHECK_STR(v, "[1,2]");
    CHECK_EQ_INT(get(c, "user:2|select trips", 100.5, v, sizeof v), TIDE_CACHE_MISS);
    /* past the ttl, inside the stale window: stale; past both: gone */
    CHECK_EQ_INT(get(c, "user:1|select trips", 170.0, v, sizeof v), TIDE_CACHE_STALE);
    CHECK_STR(v, "[1,2]");
    CHECK_EQ_INT(get(c, "user:1|select trips", 190.0, v, sizeof v), TIDE_CACHE_MISS);
    tide_cache_stats st;
    tide_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.hits, 1);
    CHECK_EQ_INT(st.stale_hits, 1);
    CHECK_EQ_INT(st.expired, 1);
    CHECK_EQ_INT(st.entries, 0);
    CHECK_EQ_INT(st.bytes, 0);
    /* age */
    const void *p;
    size_t pl;
    double age;
    CHECK_EQ_INT(put(c, "k", "v", 10.0, 5, 0, NULL, 0), 0);
    CHECK_EQ_INT(tide_cache_get(c, "k", 1, 12.5, 0, &p, &pl, &age), TIDE_CACHE_HIT);
    CHECK(age > 2.49 && age < 2.51);
    CHECK_EQ_INT(tide_cache_get(c, "k", 1, 15.0, 0, &p, &pl, &age), TIDE_CACHE_MISS); /* no swr */
    tide_cache_free(c);
}

/* stale-if-error: an entry is kept past its windows up to its sie age, and served then only
 * as ERRONLY, to a caller that accepts that age */
TEST(cache_kept_for_errors)
{
    tide_cache *c;
    char v[64];
    CHECK_EQ_INT(tide_cache_new(1 << 20, NULL, &c), 0);
    tide_cache_put_opts o = { .ttl = 10, .swr = 5, .sie = 100, .born = tide_cache_clock(c) };
    CHECK_EQ_INT(tide_cache_put(c, "k", 1, "v", 1, 0.0, &o, NULL, 0), 0);
    CHECK_EQ_INT(get_sie(c, "k", 9.0, 100, v, sizeof v), TIDE_CACHE_HIT);
    CHECK_EQ_INT(get_sie(c, "k", 12.0, 100, v, sizeof v), TIDE_CACHE_STALE);
    CHECK_EQ_INT(get_sie(c, "k", 50.0, 100, v, sizeof v), TIDE_CACHE_ERRONLY);
    CHECK_STR(v, "v");
    CHECK_EQ_INT(get_sie(c, "k", 50.0, 30, v, sizeof v), TIDE_CACHE_MISS);     /* too old for it */
    CHECK_EQ_INT(get_sie(c, "k", 50.0, 100, v, sizeof v), TIDE_CACHE_ERRONLY); /* still kept */
    CHECK_EQ_INT(get_sie(c, "k", 101.0, 1000, v, sizeof v), TIDE_CACHE_MISS);  /* gone */
    tide_cache_stats st;
    tide_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.entries, 0);
    tide_cache_free(c);
}

/* While the caller cannot hear other writers, nothing is served fresh; what was read before
 * (or during) stays usable for errors only, and what is read after is trusted again. */
TEST(cache_distrust)
{
    tide_cache *c;
    char v[64];
    CHECK_EQ_INT(tide_cache_new(1 << 20, NULL, &c), 0);
    CHECK_EQ_INT(put(c, "before", "b", 0, 60, 0, NULL, 0), 0);
    tide_cache_distrust(c, 1);
    CHECK_EQ_INT(get_sie(c, "before", 1, 60, v, sizeof v), TIDE_CACHE_ERRONLY);
    CHECK_EQ_INT(get_sie(c, "before", 1, 0, v, sizeof v), TIDE_CACHE_MISS);
    CHECK_EQ_INT(put(c, "during", "d", 1, 60, 0, NULL, 0), 0);
    CHECK_EQ_INT(get_sie(c, "during", 1, 60, v, sizeof v), TIDE_CACHE_ERRONLY);
    tide_cache_distrust(c, 0);
    CHECK_EQ_INT(get_sie(c, "during", 2, 60, v, sizeof v), TIDE_CACHE_ERRONLY);
    CHECK_EQ_INT(get_sie(c, "before", 2, 60, v, sizeof v), TIDE_CACHE_ERRONLY);
    CHECK_EQ_INT(put(c, "after", "a", 2, 60, 0, NULL, 0), 0);
    CHECK_EQ_INT(get(c, "after", 3, v, sizeof v), TIDE_CACHE_HIT);
    tide_cache_free(c);
}

TEST(cache_replaces_and_refuses_bad_input)
{
    tide_cache *c;
    char v[64];
    CHECK_EQ_INT(tide_cache_new(4095, NULL, &c), TIDE_EINVAL);
    CHECK_EQ_INT(tide_cache_new(64 * 1024, NULL, &c), 0);
    CHECK_EQ_INT(put(c, "k", "old", 0, 10, 0, NULL, 0), 0);
    CHECK_EQ_INT(put(c, "k", "new", 1, 10, 0, NULL, 0), 0);
    CHECK_EQ_INT(get(c, "k", 2, v, sizeof v), TIDE_CACHE_HIT);
    CHECK_STR(v, "new");
    tide_cache_stats st;
    tide_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.entries, 1);
    CHECK_EQ_INT(put(c, "k", "v", 0, 0, 0, NULL, 0), TIDE_EINVAL); /* ttl 0 */
    tide_cache_tagid tags[TIDE_CACHE_MAX_TAGS + 1] = { 0 };
    CHECK_EQ_INT(put(c, "k", "v", 0, 1, 0, tags, TIDE_CACHE_MAX_TAGS + 1), TIDE_EINVAL);
    tide_cache_put_opts o = { .ttl = 1, .born = tide_cache_clock(c) + 1 }; /* from the future */
    CHECK_EQ_INT(tide_cache_put(c, "k", 1, "v", 1, 0, &o, NULL, 0), TIDE_EINVAL);
    char big[9 * 1024];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    CHECK_EQ_INT(put(c, "big", big, 0, 10, 0, NULL, 0), TIDE_ETOOBIG); /* > 1/8 of it */
    CHECK_EQ_INT(get(c, "big", 1, v, sizeof v), TIDE_CACHE_MISS);
    tide_cache_free(c);
}

TEST(cache_invalidation_by_tag)
{
    tide_cache *c;
    char v[64];
    CHECK_EQ_INT(tide_cache_new(1 << 20, NULL, &c), 0);
    tide_cache_tagid trips = tide_cache_tag(c, "trips", 5);
    tide_cache_tagid collab = tide_cache_tag(c, "trip_collaborators", 18);
    tide_cache_tagid users = tide_cache_tag(c, "users", 5);
    CHECK(trips != collab && trips != users);
    CHECK_EQ_INT(tide_cache_tag(c, "TRIPS", 5), trips); /* case ignored */
    tide_cache_tagid trip_tags[] = { trips, collab };
    CHECK_EQ_INT(put(c, "trip 1 for u1", "{\"id\":1}", 0, 60, 0, trip_tags, 2), 0);
    CHECK_EQ_INT(put(c, "profile u1", "{}", 0, 60, 0, &users, 1), 0);
    /* a write to trip_collaborators hides the trip at once, and only what it tags */
    tide_cache_invalidate(c, collab);
    CHECK_EQ_INT(get(c, "trip 1 for u1", 1, v, sizeof v), TIDE_CACHE_MISS);
    CHECK_EQ_INT(get(c, "profile u1", 1, v, sizeof v), TIDE_CACHE_HIT);
    /* stored after the invalidation: served */
    CHECK_EQ_INT(put(c, "trip 1 for u1", "{\"id\":1,\"v\":2}", 2, 60, 0, trip_tags, 2), 0);
    CHECK_EQ_INT(get(c, "trip 1 for u1", 3, v, sizeof v), TIDE_CACHE_HIT);
    CHECK_STR(v, "{\"id\":1,\"v\":2}");
    tide_cache_stats st;
    tide_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.invalidated, 1);
    /* a read that started before a write and ends after it is not stored */
    tide_cache_put_opts o = { .ttl = 60, .born = tide_cache_clock(c) };
    tide_cache_invalidate(c, trips);
    CHECK_EQ_INT(tide_cache_put(c, "trip 2", 6, "{}", 2, 3, &o, trip_tags, 2), TIDE_EAGAIN);
    CHECK_EQ_INT(get(c, "trip 2", 3, v, sizeof v), TIDE_CACHE_MISS);
    tide_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.raced, 1);
    tide_cache_flush(c);
    CHECK_EQ_INT(get(c, "profile u1", 4, v, sizeof v), TIDE_CACHE_MISS);
    tide_cache_free(c);
}

/* Unrelated writes rarely drop an entry: in a 16 MiB store (65,536 slots) with 10,000 other
 * tags invalidated (about 26% of the slots stamped, two per tag), fewer than 10% of 1,000
 * entries with one tag each look invalidated (both slots must be hit: about 7% expected; one
 * slot per tag would lose about 14%). In a 64 MiB store (262,144 slots): about 0.5%. */
static int lost_to_unrelated(size_t max_bytes)
{
    tide_cache *c;
    char key[32], tag[32], v[16];
    if (tide_cache_new(max_bytes, NULL, &c) != 0) return -1;
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        snprintf(tag, sizeof tag, "trips/%d", i);
        tide_cache_tagid t = tide_cache_tag(c, tag, strlen(tag));
        if (put(c, key, "v", 0, 60, 0, &t, 1) != 0) return -1;
    }
    for (int i = 0; i < 10000; i++) {
        snprintf(tag, sizeof tag, "other/%d", i);
        tide_cache_invalidate(c, tide_cache_tag(c, tag, strlen(tag)));
    }
    int lost = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        lost += get(c, key, 1, v, sizeof v) == TIDE_CACHE_MISS;
    }
    /* and a real invalidation still reaches its entry */
    tide_cache_invalidate(c, tide_cache_tag(c, "trips/5", 7));
    if (get(c, "k5", 2, v, sizeof v) != TIDE_CACHE_MISS) lost = -1;
    tide_cache_free(c);
    return lost;
}

TEST(cache_unrelated_invalidations_spare_entries)
{
    int small = lost_to_unrelated(16 << 20), big = lost_to_unrelated(64 << 20);
    printf("entries that looked invalidated: %d of 1000 (16 MiB), %d of 1000 (64 MiB)\n", small,
           big);
    CHECK(small >= 0 && small < 100);
    CHECK(big >= 0 && big < 20);
}

/* 10x max_bytes of distinct keys pass through: the store never holds more than max_bytes. */
TEST(cache_stays_within_max_bytes)
{
    tide_cache *c;
    const size_t max = 256 * 1024;
    CHECK_EQ_INT(tide_cache_new(max, NULL, &c), 0);
    char key[32], val[200];
    memset(val, 'v', sizeof val - 1);
    val[sizeof val - 1] = 0;
    size_t passed = 0;
    int worst_over = 0;
    for (int i = 0; passed < 10 * max; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        CHECK_EQ_INT(put(c, key, val, i * 0.001, 60, 0, NULL, 0), 0);
        passed += strlen(key) + strlen(val) + TIDE_CACHE_ENTRY_OVERHEAD;
        tide_cache_stats st;
        tide_cache_get_stats(c, &st);
        if (st.bytes > (long long)max) worst_over = 1;
    }
    CHECK_EQ_INT(worst_over, 0);
    tide_cache_stats st;
    tide_cache_get_stats(c, &st);
    CHECK(st.evictions > 0);
    CHECK(st.bytes > (long long)(max * 8 / 10)); /* and it is used, not kept nearly empty */
    tide_cache_free(c);
}

/* S3-FIFO: a hot set that is read (cache-aside: a miss is refilled) keeps its place while a
 * scan of one-hit keys twice the cache's size passes through: the scan dies in the small FIFO,
 * and a hot key evicted from there once comes back through the ghost straight into main. */
TEST(cache_keeps_hot_keys_through_a_scan)
{
    tide_cache *c;
    const size_t max = 256 * 1024;
    CHECK_EQ_INT(tide_cache_new(max, NULL, &c), 0);
    char key[32], v[300], val[200];
    memset(val, 'h', sizeof val - 1);
    val[sizeof val - 1] = 0;
    const int hot = 100; /* about 10% of what fits */
    double now = 0;
    for (int i = 0; i < hot; i++) {
        snprintf(key, sizeof key, "hot-%d", i);
        CHECK_EQ_INT(put(c, key, val, now, 3600, 0, NULL, 0), 0);
    }
    int scan_entries = (int)(2 * max / (200 + TIDE_CACHE_ENTRY_OVERHEAD + 16));
    for (int i = 0; i < scan_entries; i++) {
        now += 0.001;
        snprintf(key, sizeof key, "scan-%d", i);
        CHECK_EQ_INT(put(c, key, val, now, 3600, 0, NULL, 0), 0);
        if (i % 10 == 0) { /* the hot set keeps being read, and refilled on a miss */
            snprintf(key, sizeof key, "hot-%d", (i / 10) % hot);
            if (get(c, key, now, v, sizeof v) == TIDE_CACHE_MISS)
                CHECK_EQ_INT(put(c, key, val, now, 3600, 0, NULL, 0), 0);
        }
    }
    int kept = 0;
    for (int i = 0; i < hot; i++) {
        snprintf(key, sizeof key, "hot-%d", i);
        kept += get(c, key, now, v, sizeof v) == TIDE_CACHE_HIT;
    }
    CHECK(kept >= hot * 9 / 10);
    tide_cache_free(c);
}

TEST(cache_entry_overhead_is_small)
{
    /* the bookkeeping max_bytes counts per entry, on top of key, value and 8 bytes a tag */
    CHECK(TIDE_CACHE_ENTRY_OVERHEAD <= 88);
    printf("cache entry overhead: %zu bytes + key + value + 8 per tag\n",
           TIDE_CACHE_ENTRY_OVERHEAD);
}

/* The key hash depends on every byte and on the secret key (so clients cannot aim keys at one
 * bucket without knowing it), and is stable under one key. */
TEST(cache_siphash13_keyed)
{
    unsigned char k[16], m[15];
    for (int i = 0; i < 16; i++) k[i] = (unsigned char)i;
    for (int i = 0; i < 15; i++) m[i] = (unsigned char)i;
    uint64_t h = tide__siphash13(k, m, 15);
    CHECK(h != tide__siphash13(k, m, 0));
    CHECK(h != tide__siphash13(k, m, 14));
    m[7] ^= 0x80;
    CHECK(h != tide__siphash13(k, m, 15));
    m[7] ^= 0x80;
    CHECK(tide__siphash13(k, m, 15) == h); /* deterministic under one key */
    k[0] ^= 1;
    CHECK(tide__siphash13(k, m, 15) != h); /* and keyed */
}

/* Stores in two processes sharing the clock and slots (as workers do): a write invalidated in
 * one drops the other's entry at its next lookup, and a read that raced it is refused there. */
TEST(cache_invalidation_crosses_processes)
{
    size_t max = 1 << 20, size = tide_cache_shared_size(max);
    tide_cache_shared *sh =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED);
    if (sh == MAP_FAILED) return;
    tide_cache_shared_init(sh, max);
    tide_cache *c;
    char v[16];
    CHECK_EQ_INT(tide_cache_new(max, sh, &c), 0);
    tide_cache_tagid t = tide_cache_tag(c, "trips/7", 7);
    CHECK_EQ_INT(put(c, "trip 7", "old", 0, 60, 0, &t, 1), 0);
    tide_cache_put_opts o = { .ttl = 60, .born = tide_cache_clock(c) }; /* a read starts */
    pid_t pid = fork();
    if (pid == 0) { /* another worker: its own store, same slots */
        tide_cache *w;
        if (tide_cache_new(max, sh, &w) != 0) _exit(1);
        tide_cache_invalidate(w, tide_cache_tag(w, "TRIPS/7", 7));
        tide_cache_free(w);
        _exit(0);
    }
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ_INT(get(c, "trip 7", 1, v, sizeof v), TIDE_CACHE_MISS);
    CHECK_EQ_INT(tide_cache_put(c, "trip 7", 6, "old", 3, 1, &o, &t, 1), TIDE_EAGAIN);
    tide_cache *other = NULL;
    CHECK_EQ_INT(tide_cache_new(256u << 20, sh, &other), TIDE_EINVAL); /* made for 1 MiB */
    tide_cache_free(c);
    munmap(sh, size);
}

TEST_LIST_BEGIN
TEST_ENTRY(cache_hit_ttl_and_stale_window)
TEST_ENTRY(cache_kept_for_errors)
TEST_ENTRY(cache_distrust)
TEST_ENTRY(cache_replaces_and_refuses_bad_input)
TEST_ENTRY(cache_invalidation_by_tag)
TEST_ENTRY(cache_unrelated_invalidations_spare_entries)
TEST_ENTRY(cache_invalidation_crosses_processes)
TEST_ENTRY(cache_stays_within_max_bytes)
TEST_ENTRY(cache_keeps_hot_keys_through_a_scan)
TEST_ENTRY(cache_entry_overhead_is_small)
TEST_ENTRY(cache_siphash13_keyed)
TEST_LIST_END
