/* lsn.c - LSNs and replica lag (see lsn.h). */
#include "lsn.h"
#include "cache.h"
#include "error.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One half: 1-8 hex digits from s[*i] up to the end or a '/'. */
static int half(const char *s, size_t len, size_t *i, uint32_t *out)
{
    uint32_t v = 0;
    size_t start = *i;
    while (*i < len && s[*i] != '/') {
        int h = hexval(s[*i]);
        if (h < 0 || *i - start >= 8) return TIDE_EINVAL;
        v = (v << 4) | (uint32_t)h;
        (*i)++;
    }
    if (*i == start) return TIDE_EINVAL;
    *out = v;
    return 0;
}

int tide_lsn_parse(const char *s, size_t len, tide_lsn *out)
{
    if (!s) return TIDE_EINVAL;
    size_t i = 0;
    uint32_t hi, lo;
    if (half(s, len, &i, &hi) != 0 || i >= len || s[i] != '/') return TIDE_EINVAL;
    i++;
    if (half(s, len, &i, &lo) != 0 || i != len) return TIDE_EINVAL;
    *out = ((tide_lsn)hi << 32) | lo;
    return 0;
}

int tide_lsn_format(tide_lsn lsn, char buf[TIDE_LSN_TEXT])
{
    return snprintf(buf, TIDE_LSN_TEXT, "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn);
}

void tide_lag_init(tide_lag *g) { memset(g, 0, sizeof *g); }

/* Drops the ring's positions the replica has replayed. */
static void prune(tide_lag *g)
{
    int k = 0;
    while (k < g->n && g->ring[k].lsn <= g->replayed) k++;
    if (k == 0) return;
    memmove(g->ring, g->ring + k, (size_t)(g->n - k) * sizeof g->ring[0]);
    g->n -= k;
}

void tide_lag_primary(tide_lag *g, double now, tide_lsn lsn)
{
    if (g->have_primary && lsn <= g->primary) return; /* no new position */
    g->primary = lsn;
    g->have_primary = 1;
    if (g->have_replayed && lsn <= g->replayed) return;
    int at = g->n < TIDE_LAG_RING ? g->n++ : TIDE_LAG_RING - 1; /* full: the newest goes */
    g->ring[at].t = now;
    g->ring[at].lsn = lsn;
}

void tide_lag_replayed(tide_lag *g, double now, tide_lsn lsn)
{
    (void)now;
    if (g->have_replayed && lsn < g->replayed) return; /* never backwards (a stale answer) */
    g->replayed = lsn;
    g->have_replayed = 1;
    prune(g);
}

double tide_lag_seconds(const tide_lag *g, double now)
{
    if (!g->have_primary || !g->have_replayed) return -1;
    if (g->n == 0) return 0;
    double age = now - g->ring[0].t;
    return age > 0 ? age : 0;
}

long long tide_lag_bytes(const tide_lag *g)
{
    if (!g->have_primary || !g->have_replayed) return -1;
    return g->primary > g->replayed ? (long long)(g->primary - g->replayed) : 0;
}

/* ---- the callers' last writes ------------------------------------------------------------ */

typedef struct memo_slot {
    uint64_t hash; /* 0: empty */
    tide_lsn lsn;
    double until;
} memo_slot;

enum { MEMO_WAYS = 4, MEMO_BUCKETS = TIDE_MEMO_SLOTS / MEMO_WAYS, MEMO_SPINS = 2000 };

/* A bucket is changed under its lock: the pid of the process holding it, 0 when free. With
 * workers the memo is shared memory, and a worker may die (or be killed by the watchdog)
 * holding it: a holder that no longer exists is replaced; one that lives but does not let go
 * within MEMO_SPINS tries is waited for no longer (get answers TIDE_LSN_UNKNOWN, put skips). */
typedef struct memo_bucket {
    _Atomic int owner;
    memo_slot slots[MEMO_WAYS];
} memo_bucket;

struct tide_lsn_memo {
    unsigned char key[16];
    int shared; /* in a mapping the caller owns: not freed here */
    _Atomic long long count;
    memo_bucket buckets[MEMO_BUCKETS];
};

size_t tide_lsn_memo_size(void) { return sizeof(tide_lsn_memo); }

tide_lsn_memo *tide_lsn_memo_init(void *mem, int shared)
{
    tide_lsn_memo *m = mem;
    memset(m, 0, sizeof *m);
    m->shared = shared;
    if (getrandom(m->key, sizeof m->key, GRND_NONBLOCK) != (ssize_t)sizeof m->key) {
        uint64_t a = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)m,
                 b = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)clock();
        memcpy(m->key, &a, 8);
        memcpy(m->key + 8, &b, 8);
    }
    return m;
}

tide_lsn_memo *tide_lsn_memo_new(void)
{
    void *mem = malloc(sizeof(tide_lsn_memo));
    return mem ? tide_lsn_memo_init(mem, 0) : NULL;
}

void tide_lsn_memo_free(tide_lsn_memo *m)
{
    if (m && !m->shared) free(m);
}

static uint64_t memo_hash(const tide_lsn_memo *m, const char *key, size_t len)
{
    uint64_t h = tide__siphash13(m->key, key, len);
    return h ? h : 1; /* 0 marks an empty slot */
}

static int owner_gone(int pid) { return pid > 0 && kill(pid, 0) != 0 && errno == ESRCH; }

/* Takes b's lock; 0 when it could not (a live holder that does not let go). */
static int bucket_lock(memo_bucket *b)
{
    int me = (int)getpid();
    for (int i = 0; i < MEMO_SPINS; i++) {
        int free_ = 0;
        if (atomic_compare_exchange_weak_explicit(&b->owner, &free_, me, memory_order_acquire,
                                                  memory_order_relaxed))
            return 1;
        if (free_ == me) return 0; /* never re-entered; defensive */
        if ((i & 255) == 255 && owner_gone(free_) &&
            atomic_compare_exchange_strong_explicit(&b->owner, &free_, me, memory_order_acquire,
                                                    memory_order_relaxed))
            return 1; /* its holder died inside: the slots are whole or being replaced */
    }
    return 0;
}

static void bucket_unlock(memo_bucket *b)
{
    atomic_store_explicit(&b->owner, 0, memory_order_release);
}

void tide_lsn_memo_put(tide_lsn_memo *m, const char *key, size_t len, tide_lsn lsn, double now,
                       double until)
{
    uint64_t h = memo_hash(m, key, len);
    memo_bucket *bk = &m->buckets[h % MEMO_BUCKETS];
    if (!bucket_lock(bk)) return;
    memo_slot *b = bk->slots, *victim = NULL;
    for (int i = 0; i < MEMO_WAYS; i++) {
        if (b[i].hash == h) {
            if (lsn > b[i].lsn || now >= b[i].until) b[i].lsn = lsn; /* expired: forgotten */
            if (until > b[i].until) b[i].until = until;
            bucket_unlock(bk);
            return;
        }
        if (!victim || (victim->hash && (!b[i].hash || b[i].until < victim->until))) victim = &b[i];
    }
    if (!victim->hash) atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
    victim->hash = h;
    victim->lsn = lsn;
    victim->until = until;
    bucket_unlock(bk);
}

tide_lsn tide_lsn_memo_get(tide_lsn_memo *m, const char *key, size_t len, double now)
{
    uint64_t h = memo_hash(m, key, len);
    memo_bucket *bk = &m->buckets[h % MEMO_BUCKETS];
    if (!bucket_lock(bk)) return TIDE_LSN_UNKNOWN;
    tide_lsn out = 0;
    for (int i = 0; i < MEMO_WAYS; i++)
        if (bk->slots[i].hash == h) {
            out = now < bk->slots[i].until ? bk->slots[i].lsn : 0;
            break;
        }
    bucket_unlock(bk);
    return out;
}

long long tide_lsn_memo_count(const tide_lsn_memo *m)
{
    return atomic_load_explicit(&m->count, memory_order_relaxed);
}

int tide__lsn_memo_hold(tide_lsn_memo *m, const char *key, size_t len, int pid)
{
    memo_bucket *bk = &m->buckets[memo_hash(m, key, len) % MEMO_BUCKETS];
    atomic_store(&bk->owner, pid);
    return 0;
}

int tide_lsn_memo_key(const char *role, const char *sub, char *out, size_t cap)
{
    if (!sub || !*sub || !role) return 0;
    /* at most 63 bytes of sub, as a request keeps it (task.h): the key made at admission and
     * the one made when the answer goes are the same; two subs alike in their first 63 bytes
     * share a floor, which only sends reads to the primary */
    int n = snprintf(out, cap, "%s:%.63s", role, sub);
    return n > 0 && (size_t)n < cap ? n : 0;
}
