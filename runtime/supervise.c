/* supervise.c - the region a supervising parent shares with its workers (see supervise.h).
 *
 * Everything in it is an atomic, so the parent and the workers (and a worker's watchdog
 * thread, or a signal handler) read and write it without locks. The two strings (a slot's
 * route, the last restart's fields) are guarded by a sequence counter each: odd while being
 * written; a reader copies, then retries when the counter moved (a few times, then takes
 * what it got: a log line, not a decision, depends on it). */
#include "supervise.h"

#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

typedef struct slot {
    _Atomic long long heartbeat_ms; /* 0: none since the worker started */
    _Atomic unsigned route_seq;
    _Atomic char route[TIDE_SUPERVISE_ROUTE_MAX];
    _Atomic int routes;
    _Atomic long long reloads_done;
    _Atomic int last_reload_rejected;
} slot;

typedef struct region {
    int nslots, watchdog_ms;
    pid_t parent;
    _Atomic long long restarts[TIDE_RESTART_REASONS];
    _Atomic unsigned last_seq; /* 0: no restart yet */
    _Atomic int last_reason, last_worker, last_pid;
    _Atomic double last_at;
    _Atomic char last_route[TIDE_SUPERVISE_ROUTE_MAX];
    slot slots[];
} region;

static region *shared;
static size_t shared_size;
static slot *mine; /* a worker's own slot */
static ev_timer beat;

#define RELAXED memory_order_relaxed

const char *tide_supervise_reason_name(int reason)
{
    return reason == TIDE_RESTART_WATCHDOG ? "watchdog" : "crash";
}

long long tide_supervise_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- strings under a sequence counter -------------------------------------------------- */

static void copy_str(_Atomic char *dst, const char *src)
{
    size_t i = 0;
    if (src)
        for (; i < TIDE_SUPERVISE_ROUTE_MAX - 1 && src[i]; i++)
            atomic_store_explicit(&dst[i], src[i], RELAXED);
    atomic_store_explicit(&dst[i], '\0', RELAXED);
}

/* Returns the counter's even value before the write; the write ends with seq_end. */
static unsigned seq_begin(_Atomic unsigned *seq)
{
    unsigned s = atomic_fetch_add_explicit(seq, 1, RELAXED); /* odd: being written */
    atomic_thread_fence(memory_order_release);
    return s;
}

static void seq_end(_Atomic unsigned *seq, unsigned s)
{
    atomic_store_explicit(seq, s + 2, memory_order_release);
}

static void seq_write(_Atomic unsigned *seq, _Atomic char *dst, const char *src)
{
    unsigned s = seq_begin(seq);
    copy_str(dst, src);
    seq_end(seq, s);
}

static void seq_read(_Atomic unsigned *seq, _Atomic char *src, char *out)
{
    for (int tries = 0; tries < 16; tries++) {
        unsigned s1 = atomic_load_explicit(seq, memory_order_acquire);
        for (size_t i = 0; i < TIDE_SUPERVISE_ROUTE_MAX; i++)
            out[i] = atomic_load_explicit(&src[i], RELAXED);
        atomic_thread_fence(memory_order_acquire);
        if (!(s1 & 1) && atomic_load_explicit(seq, RELAXED) == s1) break;
    }
    out[TIDE_SUPERVISE_ROUTE_MAX - 1] = '\0';
}

/* ---- the parent ------------------------------------------------------------------------ */

int tide_supervise_map(int nworkers, int watchdog_ms)
{
    size_t size = sizeof(region) + (size_t)nworkers * sizeof(slot);
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return TIDE_ENOMEM;
    shared = mem; /* zero-filled: every atomic starts at 0 */
    shared_size = size;
    shared->nslots = nworkers;
    shared->watchdog_ms = watchdog_ms > 0 ? watchdog_ms : 0;
    shared->parent = getpid();
    return 0;
}

void tide_supervise_unmap(void)
{
    if (!shared) return;
    munmap(shared, shared_size);
    shared = NULL;
    mine = NULL;
}

int tide_supervise_active(void) { return shared != NULL; }
int tide_supervise_watchdog_ms(void) { return shared ? shared->watchdog_ms : 0; }

static slot *slot_of(int i)
{
    return shared && i >= 0 && i < shared->nslots ? &shared->slots[i] : NULL;
}

void tide_supervise_slot_reset(int i)
{
    slot *s = slot_of(i);
    if (!s) return;
    atomic_store(&s->heartbeat_ms, 0);
    seq_write(&s->route_seq, s->route, NULL);
}

long long tide_supervise_heartbeat(int i)
{
    slot *s = slot_of(i);
    return s ? atomic_load(&s->heartbeat_ms) : 0;
}

void tide_supervise_route(int i, char out[TIDE_SUPERVISE_ROUTE_MAX])
{
    slot *s = slot_of(i);
    if (!s) {
        out[0] = '\0';
        return;
    }
    seq_read(&s->route_seq, s->route, out);
}

long long tide_supervise_reloads_done(int i, int *last_rejected)
{
    slot *s = slot_of(i);
    if (last_rejected) *last_rejected = s ? atomic_load(&s->last_reload_rejected) : 0;
    return s ? atomic_load(&s->reloads_done) : 0;
}

int tide_supervise_routes(int i)
{
    slot *s = slot_of(i);
    return s ? atomic_load(&s->routes) : 0;
}

void tide_supervise_count_restart(int reason, int worker, pid_t pid, const char *route)
{
    if (!shared || reason < 0 || reason >= TIDE_RESTART_REASONS) return;
    atomic_fetch_add(&shared->restarts[reason], 1);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned s = seq_begin(&shared->last_seq);
    atomic_store_explicit(&shared->last_reason, reason, RELAXED);
    atomic_store_explicit(&shared->last_worker, worker, RELAXED);
    atomic_store_explicit(&shared->last_pid, (int)pid, RELAXED);
    atomic_store_explicit(&shared->last_at, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9, RELAXED);
    copy_str(shared->last_route, route);
    seq_end(&shared->last_seq, s);
}

/* ---- a worker -------------------------------------------------------------------------- */

void tide_supervise_attach(int worker) { mine = slot_of(worker); }

static void on_beat(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    if (mine) atomic_store(&mine->heartbeat_ms, tide_supervise_now_ms());
}

void tide_supervise_heartbeat_start(struct ev_loop *loop)
{
    if (!mine || !shared || shared->watchdog_ms <= 0) return;
    on_beat(loop, &beat, 0);
    double every = shared->watchdog_ms / 4 / 1000.0;
    ev_timer_init(&beat, on_beat, every, every);
    ev_timer_start(loop, &beat);
}

void tide_supervise_heartbeat_stop(struct ev_loop *loop)
{
    if (ev_is_active(&beat)) ev_timer_stop(loop, &beat);
}

void tide_supervise_note_route(const char *route)
{
    slot *s = mine;
    if (!s) return;
    seq_write(&s->route_seq, s->route, route && *route ? route : NULL);
}

void tide_supervise_note_bundle(int routes, int reload_ok)
{
    if (!mine) return;
    atomic_store(&mine->routes, routes);
    if (reload_ok >= 0) {
        atomic_store(&mine->last_reload_rejected, !reload_ok);
        atomic_fetch_add(&mine->reloads_done, 1);
    }
}

/* ---- what every process reads ---------------------------------------------------------- */

void tide_supervise_get_stats(tide_supervise_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!shared) return;
    out->supervised = 1;
    out->watchdog_ms = shared->watchdog_ms;
    out->parent = shared->parent;
    for (int r = 0; r < TIDE_RESTART_REASONS; r++)
        out->restarts[r] = atomic_load(&shared->restarts[r]);
    for (int tries = 0; tries < 16; tries++) {
        unsigned s1 = atomic_load_explicit(&shared->last_seq, memory_order_acquire);
        out->last_reason = atomic_load_explicit(&shared->last_reason, RELAXED);
        out->last_worker = atomic_load_explicit(&shared->last_worker, RELAXED);
        out->last_pid = atomic_load_explicit(&shared->last_pid, RELAXED);
        out->last_at = atomic_load_explicit(&shared->last_at, RELAXED);
        for (size_t i = 0; i < TIDE_SUPERVISE_ROUTE_MAX; i++)
            out->last_route[i] = atomic_load_explicit(&shared->last_route[i], RELAXED);
        atomic_thread_fence(memory_order_acquire);
        out->has_last = s1 != 0;
        if (!(s1 & 1) && atomic_load_explicit(&shared->last_seq, RELAXED) == s1) break;
    }
    out->last_route[TIDE_SUPERVISE_ROUTE_MAX - 1] = '\0';
}
