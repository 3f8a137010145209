/* pool.c - asynchronous libpq pools in pipeline mode (see pool.h for the contract).
 *
 * A connection is in exactly one state: CONNECTING (PQconnectPoll running), IDLE (on the idle
 * stack), BUSY (running a job's pipeline), HELD (kept by a caller between jobs of an explicit
 * transaction) or RESETTING (rolling back what a caller left open). conn_set_state() is the one
 * place that moves it between states and keeps the counters right. */
#include "pool.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUTH_SQL "select set_config('request.jwt.claims', $1, true), set_config('role', $2, true), " \
                 "set_config('statement_timeout', $3, true)"
#define AUTH_STMT "tide_auth"
#define STMT_CACHE 128          /* prepared statements per connection (power of two) */
#define MAX_ITEMS 6
/* Connection attempts in flight per pool. The SCRAM handshake costs a few milliseconds of CPU
 * on the loop thread per connection: a pool refilling all at once (after a restart) must not
 * stall every other request, so it refills a couple of connections at a time. */
#define MAX_CONNECTING 2

enum conn_state { C_CONNECTING, C_IDLE, C_BUSY, C_HELD, C_RESETTING };
enum item_kind { I_IGNORE, I_PREPARE, I_AUTHPREP, I_STMT, I_SYNC };

typedef struct stmt_entry {
    uint32_t hash;
    unsigned id;                /* server-side name is tide_<id>; ids are never reused */
    char *sql;                  /* NULL = free slot */
} stmt_entry;

struct tide_conn {
    tide_pool *pool;
    PGconn *pg;
    enum conn_state state;
    ev_io io;
    ev_timer timer;             /* connect timeout, then the running job's deadline */
    int io_events;
    int flushed;                /* the whole pipeline (with its Sync) left for the server */
    int cancelled;              /* a cancel request is on its way: never reuse (it could hit
                                 * the next job's statement) */
    int send_failed;            /* sending the job failed: reported from the timer, never from
                                 * inside tide_pool_run() */
    int lost;                   /* HELD, and the server closed it: kept (its holder still points
                                 * at it) until released */
    double created_at, idle_since;
    tide_pgjob *job;
    unsigned char items[MAX_ITEMS];
    int nitems, cur;
    int prepare_slot;           /* cache slot being prepared in this pipeline, or -1 */
    PGresult *stmt_res;
    tide_pg_error err;
    int have_err;
    int auth_prepared;
    unsigned next_stmt_id;
    stmt_entry stmts[STMT_CACHE];
    tide_conn *next_idle;
};

/* Host name resolution off the loop: libpq would call getaddrinfo() inside PQconnectStart and
 * block every request for as long as the resolver takes. A pool whose DSN names a host
 * resolves it on a short thread, caches the address, and connects with hostaddr. The context
 * is shared with the thread and freed by whichever of the two lets go last. */
typedef struct dns_ctx {
    pthread_mutex_t mu;
    ev_async async;
    struct ev_loop *loop;
    char host[256];
    char addr[INET6_ADDRSTRLEN];
    char error[320];
    int running, pool_gone;
} dns_ctx;

struct tide_pool {
    struct ev_loop *loop;
    /* DSN split for PQconnectStartParams when the host needs resolving (else NULL) */
    const char **kw, **val;
    PQconninfoOption *opts;
    dns_ctx *dns;
    char addr[INET6_ADDRSTRLEN];   /* last resolved address of the DSN's host ("" = none yet) */
    double addr_at;
    char *name, *dsn;
    int size, prepare;
    double acquire_timeout, connect_timeout, statement_timeout, max_lifetime, idle_timeout;
    int max_size;               /* slots allocated; size may shrink below it on reload */
    int connect_failures_in_row;
    double next_connect_at;     /* reconnect backoff: no new connection before this */
    ev_timer retry_timer;       /* wakes waiters when the backoff ends */
    ev_timer idle_timer;        /* closes connections idle longer than idle_timeout */
    tide_conn **conns;          /* max_size slots; NULL = free */
    tide_conn *idle;            /* LIFO: the warmest connection first */
    tide_pgjob *wait_head, *wait_tail;
    int nwaiting, nidle, nbusy, nconnecting, nopen;
    long long jobs, errors, connect_failures, acquire_timeouts;
    int closing;
};

/* ---- errors ---------------------------------------------------------------------------- */

int tide_pg_http_status(const char *s, int authenticated)
{
    if (!s || !s[0]) return 500;
    if (strncmp(s, "TIDE_", 5) == 0) return 503;
    if (strcmp(s, "23503") == 0 || strcmp(s, "23505") == 0) return 409;
    if (strcmp(s, "25006") == 0) return 405;
    if (strcmp(s, "53400") == 0) return 500;
    if (strcmp(s, "42883") == 0 || strcmp(s, "42P01") == 0) return 404;
    if (strcmp(s, "42501") == 0) return authenticated ? 403 : 401;
    if (strcmp(s, "P0001") == 0) return 400;
    switch (s[0]) {
    case '0':
        if (s[1] == '8') return 503;
        if (s[1] == '9') return 500;
        if (s[1] == 'L' || s[1] == 'P') return 403;
        break;
    case '2':
        if (s[1] == '5' || s[1] == 'D') return 500;
        if (s[1] == '8') return 403;
        break;
    case '3':
        if (s[1] == '8' || s[1] == '9' || s[1] == 'B') return 500;
        break;
    case '4':
        if (s[1] == '0') return 500;
        break;
    case '5':
        if (s[1] == '3') return 503;
        if (s[1] == '4' || s[1] == '5' || s[1] == '7' || s[1] == '8') return 500;
        break;
    case 'F': if (s[1] == '0') return 500; break;
    case 'H': if (s[1] == 'V') return 500; break;
    case 'P': if (s[1] == '0') return 500; break;
    case 'X': if (s[1] == 'X') return 500; break;
    }
    return 400;
}

static char *dup_or_null(const char *s)
{
    if (!s || !*s) return NULL;
    return strdup(s);
}

static void err_clear(tide_pg_error *e)
{
    free(e->message); free(e->detail); free(e->hint);
    memset(e, 0, sizeof *e);
}

static void err_set(tide_pg_error *e, const char *code, int status, const char *msg)
{
    err_clear(e);
    snprintf(e->code, sizeof e->code, "%s", code);
    e->status = status;
    e->message = strdup(msg);
}

static void err_from_result(tide_pg_error *e, const PGresult *res)
{
    err_clear(e);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    snprintf(e->code, sizeof e->code, "%s", state ? state : "XX000");
    e->status = 0; /* the caller knows whether the request is authenticated */
    const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    e->message = strdup(m ? m : PQresultErrorMessage(res));
    e->detail = dup_or_null(PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
    e->hint = dup_or_null(PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
}

/* ---- connection state ------------------------------------------------------------------ */

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void pool_dispatch(tide_pool *p);
static void conn_start_job(tide_conn *c, tide_pgjob *job);

static void conn_set_state(tide_conn *c, enum conn_state s)
{
    tide_pool *p = c->pool;
    switch (c->state) {
    case C_CONNECTING: p->nconnecting--; break;
    case C_IDLE: {
        p->nidle--;
        tide_conn **pp = &p->idle;
        while (*pp && *pp != c) pp = &(*pp)->next_idle;
        if (*pp) *pp = c->next_idle;
        c->next_idle = NULL;
        break;
    }
    case C_BUSY: case C_HELD: case C_RESETTING: p->nbusy--; break;
    }
    c->state = s;
    switch (s) {
    case C_CONNECTING: p->nconnecting++; break;
    case C_IDLE: p->nidle++; c->next_idle = p->idle; p->idle = c; break;
    case C_BUSY: case C_HELD: case C_RESETTING: p->nbusy++; break;
    }
}

static void conn_watch(tide_conn *c, int events)
{
    struct ev_loop *loop = c->pool->loop;
    int fd = PQsocket(c->pg);
    if (events == c->io_events && fd == c->io.fd && ev_is_active(&c->io)) return;
    ev_io_stop(loop, &c->io);
    c->io_events = events;
    if (events && fd >= 0) {
        ev_io_set(&c->io, fd, events);
        /* results first: a connection handed its next job sooner keeps Postgres busy */
        ev_set_priority(&c->io, EV_MAXPRI);
        ev_io_start(loop, &c->io);
    }
}

static void stmt_cache_clear(tide_conn *c)
{
    for (int i = 0; i < STMT_CACHE; i++) { free(c->stmts[i].sql); c->stmts[i].sql = NULL; }
    c->auth_prepared = 0;
}

/* Closes and frees a connection; its slot becomes free. The caller has settled its job. */
static void conn_destroy(tide_conn *c)
{
    tide_pool *p = c->pool;
    struct ev_loop *loop = p->loop;
    ev_io_stop(loop, &c->io);
    ev_timer_stop(loop, &c->timer);
    conn_set_state(c, C_BUSY); /* leave whichever list it is on */
    p->nbusy--;
    p->nopen--;
    for (int i = 0; i < p->max_size; i++)
        if (p->conns[i] == c) { p->conns[i] = NULL; break; }
    if (c->stmt_res) PQclear(c->stmt_res);
    err_clear(&c->err);
    stmt_cache_clear(c);
    if (c->pg) PQfinish(c->pg);
    free(c);
}

static void fail_waiters(tide_pool *p, const char *code, const char *msg);
static void backoff_after_failure(tide_pool *p);
static void cancel_conn(tide_conn *c);

static void dns_free_ctx(dns_ctx *d)
{
    pthread_mutex_destroy(&d->mu);
    free(d);
}

static void *dns_thread(void *arg)
{
    dns_ctx *d = arg;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char addr[INET6_ADDRSTRLEN] = "", error[320] = "";
    int rc = getaddrinfo(d->host, NULL, &hints, &res);
    if (rc != 0) {
        snprintf(error, sizeof error, "cannot resolve %.255s: %.40s", d->host, gai_strerror(rc));
    } else {
        /* IPv4 first: servers commonly listen on it alone */
        const struct addrinfo *pick = res;
        for (const struct addrinfo *a = res; a; a = a->ai_next)
            if (a->ai_family == AF_INET) { pick = a; break; }
        const void *sa = pick->ai_family == AF_INET
                             ? (const void *)&((struct sockaddr_in *)pick->ai_addr)->sin_addr
                             : (const void *)&((struct sockaddr_in6 *)pick->ai_addr)->sin6_addr;
        inet_ntop(pick->ai_family, sa, addr, sizeof addr);
        freeaddrinfo(res);
    }
    pthread_mutex_lock(&d->mu);
    memcpy(d->addr, addr, sizeof addr);
    memcpy(d->error, error, sizeof error);
    d->running = 0;
    int gone = d->pool_gone;
    if (!gone) ev_async_send(d->loop, &d->async);
    pthread_mutex_unlock(&d->mu);
    if (gone) dns_free_ctx(d);
    return NULL;
}

/* Whether a resolution is running for a pool that has no address yet. */
static int dns_pending(tide_pool *p)
{
    if (!p->dns || p->addr[0]) return 0;
    pthread_mutex_lock(&p->dns->mu);
    int running = p->dns->running;
    pthread_mutex_unlock(&p->dns->mu);
    return running;
}

static void dns_start(tide_pool *p)
{
    dns_ctx *d = p->dns;
    pthread_mutex_lock(&d->mu);
    int busy = d->running;
    if (!busy) d->running = 1;
    pthread_mutex_unlock(&d->mu);
    if (busy) return;
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, dns_thread, d) != 0) {
        pthread_mutex_lock(&d->mu);
        d->running = 0;
        pthread_mutex_unlock(&d->mu);
    }
    pthread_attr_destroy(&attr);
}

static void dns_done_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop; (void)revents;
    tide_pool *p = w->data;
    dns_ctx *d = p->dns;
    char error[320];
    pthread_mutex_lock(&d->mu);
    if (d->addr[0]) {
        memcpy(p->addr, d->addr, sizeof p->addr);
        p->addr_at = ev_now(p->loop);
    }
    memcpy(error, d->error, sizeof error);
    pthread_mutex_unlock(&d->mu);
    if (!p->addr[0] && p->nopen == 0) {
        p->connect_failures++;
        backoff_after_failure(p);
        fail_waiters(p, "08001", error[0] ? error : "cannot resolve the upstream's host");
    }
    pool_dispatch(p);
}

/* Sets p->dns up when the DSN names a host that needs resolving (not an address, not a unix
 * socket, not several hosts, no hostaddr). Returns 0 or TIDE_ENOMEM/TIDE_EINVAL. */
static int dns_setup(tide_pool *p)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(p->dsn, &err);
    if (!opts) { PQfreemem(err); return TIDE_EINVAL; }
    const char *host = NULL, *hostaddr = NULL;
    int n = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val) continue;
        n++;
        if (strcmp(o->keyword, "host") == 0) host = o->val;
        if (strcmp(o->keyword, "hostaddr") == 0) hostaddr = o->val;
    }
    unsigned char buf[sizeof(struct in6_addr)];
    if (!host || hostaddr || host[0] == '/' || strchr(host, ',') || strlen(host) >= 256 ||
        inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1) {
        PQconninfoFree(opts);
        return 0;                                     /* libpq will not need a resolver */
    }
    p->kw = calloc((size_t)n + 2, sizeof *p->kw);
    p->val = calloc((size_t)n + 2, sizeof *p->val);
    p->dns = calloc(1, sizeof *p->dns);
    if (!p->kw || !p->val || !p->dns) {
        free(p->kw); free(p->val); free(p->dns);
        p->kw = p->val = NULL; p->dns = NULL;
        PQconninfoFree(opts);
        return TIDE_ENOMEM;
    }
    int i = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val) continue;
        p->kw[i] = o->keyword;
        p->val[i] = o->val;
        i++;
    }
    p->kw[i] = "hostaddr";                    /* its value is filled in at each connect */
    p->opts = opts;
    pthread_mutex_init(&p->dns->mu, NULL);
    p->dns->loop = p->loop;
    snprintf(p->dns->host, sizeof p->dns->host, "%s", host);
    ev_async_init(&p->dns->async, dns_done_cb);
    p->dns->async.data = p;
    ev_async_start(p->loop, &p->dns->async);
    ev_unref(p->loop);
    return 0;
}

static void dns_teardown(tide_pool *p)
{
    if (!p->dns) return;
    ev_ref(p->loop);
    ev_async_stop(p->loop, &p->dns->async);
    pthread_mutex_lock(&p->dns->mu);
    int running = p->dns->running;
    p->dns->pool_gone = 1;
    pthread_mutex_unlock(&p->dns->mu);
    if (!running) dns_free_ctx(p->dns);       /* else the thread frees it */
    p->dns = NULL;
    free(p->kw);
    free(p->val);
    PQconninfoFree(p->opts);
}

/* Opens one more connection into a free slot. Returns 0 or an error (no slot, no memory,
 * libpq refused the parameters). */
static int conn_open(tide_pool *p)
{
    int slot = -1;
    if (p->nopen >= p->size) return TIDE_EBUSY;
    if (ev_now(p->loop) < p->next_connect_at) return TIDE_EAGAIN;
    for (int i = 0; i < p->max_size; i++)
        if (!p->conns[i]) { slot = i; break; }
    if (slot < 0) return TIDE_EBUSY;
    tide_conn *c = calloc(1, sizeof *c);
    if (!c) return TIDE_ENOMEM;
    c->pool = p;
    c->prepare_slot = -1;
    c->created_at = ev_now(p->loop);
    if (p->dns) {
        if (!p->addr[0] || ev_now(p->loop) - p->addr_at > 60.0) dns_start(p);
        if (!p->addr[0]) { free(c); return TIDE_EAGAIN; }   /* connects once resolved */
        int i = 0;
        while (p->kw[i]) i++;
        p->val[i] = p->addr;                                  /* the hostaddr slot */
        c->pg = PQconnectStartParams(p->kw, p->val, 0);
    } else {
        c->pg = PQconnectStart(p->dsn);
    }
    if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
        if (c->pg) PQfinish(c->pg);
        free(c);
        p->connect_failures++;
        return TIDE_ECONN;
    }
    PQsetnonblocking(c->pg, 1);
    p->conns[slot] = c;
    p->nopen++;
    c->state = C_CONNECTING;
    p->nconnecting++;
    ev_init(&c->io, conn_io_cb);
    c->io.data = c;
    ev_timer_init(&c->timer, conn_timer_cb, p->connect_timeout, 0.);
    c->timer.data = c;
    ev_timer_start(p->loop, &c->timer);
    conn_watch(c, EV_WRITE); /* PQconnectStart: first wait for writability */
    return 0;
}

/* After a failed attempt, wait base*2^n (full jitter, at most 2 s) before the next one. */
static void backoff_after_failure(tide_pool *p)
{
    double ceil = 0.05;
    for (int i = 0; i < p->connect_failures_in_row && ceil < 2.0; i++) ceil *= 2;
    if (ceil > 2.0) ceil = 2.0;
    p->connect_failures_in_row++;
    double delay = ceil * (0.5 + 0.5 * ((double)rand() / ((double)RAND_MAX + 1.0)));
    p->next_connect_at = ev_now(p->loop) + delay;
    ev_timer_stop(p->loop, &p->retry_timer);
    ev_timer_set(&p->retry_timer, delay, 0.);
    ev_timer_start(p->loop, &p->retry_timer);
}

static void conn_connect_failed(tide_conn *c, const char *why)
{
    tide_pool *p = c->pool;
    char msg[512];
    snprintf(msg, sizeof msg, "could not connect to upstream %s: %s", p->name, why);
    for (char *q = msg; *q; q++) if (*q == '\n') *q = ' ';
    p->connect_failures++;
    conn_destroy(c);
    backoff_after_failure(p);
    /* Nothing else is coming for the waiters unless another connection is open or opening. */
    if (p->nopen == 0) fail_waiters(p, "08001", msg);
}

static void conn_connected(tide_conn *c)
{
    ev_timer_stop(c->pool->loop, &c->timer);
    if (PQenterPipelineMode(c->pg) != 1) {
        conn_connect_failed(c, "pipeline mode refused");
        return;
    }
    c->pool->connect_failures_in_row = 0;
    c->pool->next_connect_at = 0;
    c->idle_since = ev_now(c->pool->loop);
    conn_set_state(c, C_IDLE);
    conn_watch(c, EV_READ); /* notice the server closing the connection while idle */
    pool_dispatch(c->pool);
}

static void conn_poll_connect(tide_conn *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING: conn_watch(c, EV_READ); break;
    case PGRES_POLLING_WRITING: conn_watch(c, EV_WRITE); break;
    case PGRES_POLLING_OK: conn_connected(c); break;
    default: conn_connect_failed(c, PQerrorMessage(c->pg)); break;
    }
}

/* ---- jobs ------------------------------------------------------------------------------ */

static void job_finish(tide_pgjob *job, PGresult *res, tide_pg_error *err)
{
    job->done(job, res, err);
}

static void fail_job(tide_pool *p, tide_pgjob *job, const char *code, const char *msg)
{
    tide_pg_error e;
    memset(&e, 0, sizeof e);
    /* waiting too long for a connection is a timeout; everything else here is unavailability */
    err_set(&e, code, strcmp(code, "TIDE_ACQUIRE_TIMEOUT") == 0 ? 504 : 503, msg);
    p->errors++;
    job_finish(job, NULL, &e);
    err_clear(&e);
}

static void waiter_remove(tide_pgjob *job)
{
    tide_pool *p = job->pool;
    tide_pgjob **pp = &p->wait_head, *prev = NULL;
    while (*pp && *pp != job) { prev = *pp; pp = &(*pp)->next; }
    if (!*pp) return;
    *pp = job->next;
    if (p->wait_tail == job) p->wait_tail = prev;
    job->next = NULL;
    job->waiting = 0;
    p->nwaiting--;
    ev_timer_stop(p->loop, &job->wait_timer);
}

static void fail_waiters(tide_pool *p, const char *code, const char *msg)
{
    /* Detach the whole queue first: done() callbacks may queue new jobs. */
    tide_pgjob *list = p->wait_head;
    p->wait_head = p->wait_tail = NULL;
    p->nwaiting = 0;
    while (list) {
        tide_pgjob *job = list;
        list = job->next;
        job->next = NULL;
        job->waiting = 0;
        ev_timer_stop(p->loop, &job->wait_timer);
        fail_job(p, job, code, msg);
    }
}

static void wait_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    tide_pgjob *job = w->data;
    tide_pool *p = job->pool;
    waiter_remove(job);
    p->acquire_timeouts++;
    char msg[160];
    snprintf(msg, sizeof msg, "no connection to upstream %s became free within %.3g s",
             p->name, p->acquire_timeout);
    fail_job(p, job, "TIDE_ACQUIRE_TIMEOUT", msg);
}

/* Hands idle connections to waiting jobs; opens connections while jobs wait and slots are
 * free. */
static void pool_dispatch(tide_pool *p)
{
    while (p->wait_head && p->idle) {
        tide_pgjob *job = p->wait_head;
        waiter_remove(job);
        conn_start_job(p->idle, job);
    }
    while (p->nwaiting > p->nconnecting && p->nopen < p->size && !p->closing &&
           p->nconnecting < MAX_CONNECTING) {
        int rc = conn_open(p);
        if (rc != 0) {
            if (p->nopen == 0)
                fail_waiters(p, "08001", "could not start a connection to the upstream");
            break;
        }
    }
}

int tide_pool_run(tide_pool *p, tide_pgjob *job)
{
    if (p->closing) return TIDE_ECLOSED;
    job->pool = p;
    job->conn = NULL;
    job->next = NULL;
    job->waiting = 0;
    p->jobs++;
    if (job->pin) {
        tide_conn *c = job->pin;
        if (c->state != C_HELD || c->pool != p) return TIDE_EINVAL;
        if (c->lost) return TIDE_ECONN;
        conn_start_job(c, job);
        return 0;
    }
    if (p->idle && !p->wait_head) {
        conn_start_job(p->idle, job);
        return 0;
    }
    ev_timer_init(&job->wait_timer, wait_timeout_cb, p->acquire_timeout, 0.);
    job->wait_timer.data = job;
    ev_timer_start(p->loop, &job->wait_timer);
    job->waiting = 1;
    if (p->wait_tail) p->wait_tail->next = job; else p->wait_head = job;
    p->wait_tail = job;
    p->nwaiting++;
    int rc = 0;
    while (p->nwaiting > p->nconnecting && p->nopen < p->size &&
           p->nconnecting < MAX_CONNECTING) {
        if ((rc = conn_open(p)) != 0) break;
    }
    if (p->nopen == 0 && !dns_pending(p)) {
        /* nothing open and (backoff or libpq refusal) nothing opening: nothing will ever serve
         * it, so fail fast, here (no callback). A first resolution still running is different:
         * the job waits for it (bounded by the acquire timeout). */
        waiter_remove(job);
        if (rc == TIDE_EAGAIN) return TIDE_EAGAIN;
        p->connect_failures++;
        return TIDE_ECONN;
    }
    return 0;
}

int tide_pool_withdraw(tide_pgjob *job)
{
    if (!job->waiting) return TIDE_EBUSY;
    waiter_remove(job);
    return 0;
}

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 16777619u; }
    return h;
}

/* Looks sql up in the connection's statement cache. Returns the slot and sets *hit, or a
 * slot to fill (evicting by hash position), or -1 when caching is off. */
static int stmt_slot(tide_conn *c, const char *sql, int *hit)
{
    uint32_t h = hash_str(sql);
    int base = (int)(h & (STMT_CACHE - 1));
    int free_slot = -1;
    for (int i = 0; i < 4; i++) {
        int s = (base + i) & (STMT_CACHE - 1);
        stmt_entry *e = &c->stmts[s];
        if (e->sql && e->hash == h && strcmp(e->sql, sql) == 0) { *hit = 1; return s; }
        if (!e->sql && free_slot < 0) free_slot = s;
    }
    *hit = 0;
    return free_slot >= 0 ? free_slot : base;
}

static int conn_flush(tide_conn *c)
{
    int rc = PQflush(c->pg);
    if (rc < 0) return -1;
    if (rc == 0 && (c->job || c->state == C_RESETTING)) c->flushed = 1;
    conn_watch(c, rc == 1 ? EV_READ | EV_WRITE : EV_READ);
    return 0;
}

static void conn_lost(tide_conn *c, const char *why);

static void conn_start_job(tide_conn *c, tide_pgjob *job)
{
    tide_pool *p = c->pool;
    PGconn *pg = c->pg;
    job->conn = c;
    c->job = job;
    conn_set_state(c, C_BUSY);
    c->nitems = c->cur = 0;
    c->prepare_slot = -1;
    c->have_err = 0;
    c->flushed = 0;
    c->send_failed = 0;
    int ok = 1;
    char timeout_ms[24];
    snprintf(timeout_ms, sizeof timeout_ms, "%.0f", p->statement_timeout * 1000.0);
    /* Client-side deadline: the server's statement_timeout should fire first; this one
     * catches a server that does not answer at all (frozen, partitioned). */
    ev_timer_stop(p->loop, &c->timer);
    ev_timer_set(&c->timer, p->statement_timeout + 1.0, 0.);
    ev_timer_start(p->loop, &c->timer);

    if (job->flags & TIDE_PGJOB_BEGIN) {
        ok = ok && PQsendQueryParams(pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
        c->items[c->nitems++] = I_IGNORE;
    }
    if (job->flags & TIDE_PGJOB_AUTH) {
        const char *vals[3] = { job->claims, job->role, timeout_ms };
        if (p->prepare) {
            if (!c->auth_prepared) {
                ok = ok && PQsendPrepare(pg, AUTH_STMT, AUTH_SQL, 3, NULL);
                c->items[c->nitems++] = I_AUTHPREP;
            }
            ok = ok && PQsendQueryPrepared(pg, AUTH_STMT, 3, vals, NULL, NULL, 0);
        } else {
            ok = ok && PQsendQueryParams(pg, AUTH_SQL, 3, NULL, vals, NULL, NULL, 0);
        }
        c->items[c->nitems++] = I_IGNORE;
    }
    if (job->sql) {
        int hit = 0, slot = p->prepare ? stmt_slot(c, job->sql, &hit) : -1;
        if (slot >= 0) {
            char name[32];
            stmt_entry *e = &c->stmts[slot];
            if (!hit) {
                if (e->sql) {
                    /* evict: drop the old statement in the same pipeline. If that fails the
                     * server keeps an orphan, but names are never reused, so nothing clashes. */
                    char sql[48];
                    snprintf(sql, sizeof sql, "DEALLOCATE tide_%u", e->id);
                    ok = ok && PQsendQueryParams(pg, sql, 0, NULL, NULL, NULL, NULL, 0);
                    c->items[c->nitems++] = I_IGNORE;
                    free(e->sql);
                }
                e->sql = strdup(job->sql);
                e->hash = hash_str(job->sql);
                e->id = c->next_stmt_id++;
                snprintf(name, sizeof name, "tide_%u", e->id);
                ok = ok && e->sql && PQsendPrepare(pg, name, job->sql, job->nparams, NULL);
                c->items[c->nitems++] = I_PREPARE;
                c->prepare_slot = slot;
            } else {
                snprintf(name, sizeof name, "tide_%u", e->id);
            }
            ok = ok && PQsendQueryPrepared(pg, name, job->nparams, job->values, NULL, NULL, 0);
        } else {
            ok = ok && PQsendQueryParams(pg, job->sql, job->nparams, NULL, job->values, NULL,
                                         NULL, 0);
        }
        c->items[c->nitems++] = I_STMT;
    }
    ok = ok && PQpipelineSync(pg);
    c->items[c->nitems++] = I_SYNC;
    if (!ok || conn_flush(c) != 0) {
        /* report it from the loop: done() must never run inside tide_pool_run() */
        c->send_failed = 1;
        conn_watch(c, 0);
        ev_timer_stop(p->loop, &c->timer);
        ev_timer_set(&c->timer, 0., 0.);
        ev_timer_start(p->loop, &c->timer);
    }
}

/* The job on c is over (the SYNC arrived): settle the connection, then call back. */
static void conn_complete(tide_conn *c)
{
    tide_pool *p = c->pool;
    tide_pgjob *job = c->job;
    ev_timer_stop(p->loop, &c->timer);
    PGresult *res = c->stmt_res;
    c->stmt_res = NULL;
    c->job = NULL;
    tide_pg_error err = c->err;
    int have_err = c->have_err;
    memset(&c->err, 0, sizeof c->err);
    c->have_err = 0;

    if (job == NULL) {                   /* an internal ROLLBACK finished */
        if (res) PQclear(res);
        err_clear(&err);
        if (have_err || PQtransactionStatus(c->pg) != PQTRANS_IDLE) conn_destroy(c);
        else conn_set_state(c, C_IDLE);
        pool_dispatch(p);
        return;
    }
    if (have_err) p->errors++;
    if (job->flags & TIDE_PGJOB_KEEP) {
        conn_set_state(c, C_HELD);       /* even after an error: the holder rolls back */
    } else {
        job->conn = NULL;
        tide_pool_release(c);
    }
    job_finish(job, have_err ? NULL : res, have_err ? &err : NULL);
    if (res) PQclear(res);
    err_clear(&err);
}

static void conn_fail(tide_conn *c, const char *code, const char *why)
{
    tide_pool *p = c->pool;
    tide_pgjob *job = c->job;
    int sent = c->flushed;
    c->job = NULL;
    char msg[512];
    snprintf(msg, sizeof msg, "%s upstream %s: %s",
             code[0] == '0' ? "lost the connection to" : "no answer in time from", p->name,
             why && *why ? why : "server closed the connection");
    for (char *q = msg; *q; q++) if (*q == '\n') *q = ' ';
    if (job && sent && code[0] != '0') cancel_conn(c);   /* stop it server-side */
    conn_destroy(c);
    if (job) {
        job->conn = NULL;
        tide_pg_error e;
        memset(&e, 0, sizeof e);
        err_set(&e, code, code[0] == '0' ? 503 : 504, msg);
        e.sent = sent;
        p->errors++;
        job_finish(job, NULL, &e);
        err_clear(&e);
    }
    pool_dispatch(p);
}

static void conn_lost(tide_conn *c, const char *why)
{
    conn_fail(c, "08006", why);
}

/* Reads whatever results are complete. Returns when more input is needed or the job is
 * over. */
static void conn_read_results(tide_conn *c)
{
    PGconn *pg = c->pg;
    while (c->job || c->state == C_RESETTING) {
        if (PQisBusy(pg)) return;
        PGresult *res = PQgetResult(pg);
        enum item_kind kind = (enum item_kind)c->items[c->cur];
        if (kind == I_SYNC) {
            if (!res) continue;           /* defensive: libpq reports NULL between items */
            ExecStatusType st = PQresultStatus(res);
            if (st == PGRES_FATAL_ERROR) {
                /* the implicit transaction failed as it committed (a deferred constraint, a
                 * serialization failure at commit): nothing the statement did is kept */
                if (!c->have_err) { err_from_result(&c->err, res); c->have_err = 1; }
                if (c->stmt_res) { PQclear(c->stmt_res); c->stmt_res = NULL; }
            }
            PQclear(res);
            if (st != PGRES_PIPELINE_SYNC) continue;
            conn_complete(c);
            return;
        }
        if (!res) { c->cur++; continue; }
        ExecStatusType st = PQresultStatus(res);
        if (kind == I_AUTHPREP && st == PGRES_COMMAND_OK) c->auth_prepared = 1;
        if (kind == I_PREPARE && st != PGRES_COMMAND_OK && c->prepare_slot >= 0) {
            /* failed or aborted: the name does not exist on the server */
            stmt_entry *e = &c->stmts[c->prepare_slot];
            free(e->sql);
            e->sql = NULL;
        }
        switch (st) {
        case PGRES_FATAL_ERROR:
            if (!c->have_err) { err_from_result(&c->err, res); c->have_err = 1; }
            PQclear(res);
            break;
        case PGRES_TUPLES_OK:
        case PGRES_COMMAND_OK:
            if (kind == I_STMT && !c->stmt_res) c->stmt_res = res;
            else PQclear(res);
            break;
        default:
            PQclear(res);
            break;
        }
    }
    /* idle: anything readable here is the server going away or a notice */
    if (PQisBusy(pg) == 0) {
        PGresult *res;
        while ((res = PQgetResult(pg)) != NULL) PQclear(res);
    }
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    tide_conn *c = w->data;
    if (c->state == C_CONNECTING) { conn_poll_connect(c); return; }
    if (revents & EV_WRITE) {
        if (conn_flush(c) != 0) { conn_lost(c, PQerrorMessage(c->pg)); return; }
    }
    if (revents & EV_READ) {
        if (PQconsumeInput(c->pg) != 1 || PQstatus(c->pg) == CONNECTION_BAD) {
            if (c->state == C_IDLE) {
                /* the server closed an unused connection: forget it */
                tide_pool *p = c->pool;
                conn_destroy(c);
                pool_dispatch(p);
                return;
            }
            if (c->state == C_HELD) {
                /* its transaction is gone; the holder learns it on its next call or release */
                c->lost = 1;
                conn_watch(c, 0);
                return;
            }
            conn_lost(c, PQerrorMessage(c->pg));
            return;
        }
        conn_read_results(c);
    }
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    tide_conn *c = w->data;
    if (c->state == C_CONNECTING) conn_connect_failed(c, "connect timeout");
    else if (c->job && c->send_failed) conn_lost(c, PQerrorMessage(c->pg));
    else if (c->job) conn_fail(c, "TIDE_STATEMENT_TIMEOUT", "statement deadline passed");
    else if (c->state == C_RESETTING) { tide_pool *p = c->pool; conn_destroy(c); pool_dispatch(p); }
}

void tide_pool_release(tide_conn *c)
{
    tide_pool *p = c->pool;
    c->job = NULL;
    if (c->lost || PQstatus(c->pg) != CONNECTION_OK) { conn_destroy(c); pool_dispatch(p); return; }
    if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        /* a caller left a transaction open: roll it back before anyone else gets it */
        conn_set_state(c, C_RESETTING);
        c->nitems = c->cur = 0;
        c->have_err = 0;
        c->prepare_slot = -1;
        ev_timer_stop(p->loop, &c->timer);
        ev_timer_set(&c->timer, p->statement_timeout + 1.0, 0.);
        ev_timer_start(p->loop, &c->timer);
        c->flushed = 0;
        int ok = PQsendQueryParams(c->pg, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0);
        c->items[c->nitems++] = I_IGNORE;
        ok = ok && PQpipelineSync(c->pg);
        c->items[c->nitems++] = I_SYNC;
        if (!ok || conn_flush(c) != 0) { conn_destroy(c); pool_dispatch(p); }
        return;
    }
    double now = ev_now(p->loop);
    if (p->closing) { conn_destroy(c); return; }
    if (c->cancelled || p->nopen > p->size ||
        (p->max_lifetime > 0 && now - c->created_at > p->max_lifetime)) {
        conn_destroy(c);              /* retired: cancelled, too old, or the pool shrank */
        pool_dispatch(p);
        return;
    }
    c->idle_since = now;
    conn_set_state(c, C_IDLE);
    pool_dispatch(p);
}

/* ---- pool ------------------------------------------------------------------------------ */

static void retry_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    pool_dispatch(w->data);
}

static void idle_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    tide_pool *p = w->data;
    double now = ev_now(loop);
    /* oldest idle connections sit at the bottom of the LIFO stack */
    for (int i = 0; i < p->max_size; i++) {
        tide_conn *c = p->conns[i];
        if (c && c->state == C_IDLE && p->idle_timeout > 0 && now - c->idle_since > p->idle_timeout)
            conn_destroy(c);
    }
}

static void pool_apply(tide_pool *p, const tide_pool_config *cfg)
{
    p->size = cfg->size < p->max_size ? cfg->size : p->max_size;
    p->acquire_timeout = cfg->acquire_timeout > 0 ? cfg->acquire_timeout : 5.0;
    p->connect_timeout = cfg->connect_timeout > 0 ? cfg->connect_timeout : 5.0;
    p->statement_timeout = cfg->statement_timeout > 0 ? cfg->statement_timeout : 30.0;
    p->max_lifetime = cfg->max_lifetime;
    p->idle_timeout = cfg->idle_timeout;
}

int tide_pool_new(struct ev_loop *loop, const tide_pool_config *cfg, tide_pool **out)
{
    if (!cfg->name || !cfg->dsn || cfg->size <= 0) return TIDE_EINVAL;
    tide_pool *p = calloc(1, sizeof *p);
    if (!p) return TIDE_ENOMEM;
    p->loop = loop;
    p->name = strdup(cfg->name);
    p->dsn = strdup(cfg->dsn);
    p->prepare = cfg->prepare;
    p->max_size = cfg->max_size > cfg->size ? cfg->max_size : cfg->size;
    pool_apply(p, cfg);
    p->conns = calloc((size_t)p->max_size, sizeof *p->conns);
    if (!p->name || !p->dsn || !p->conns) {
        free(p->name); free(p->dsn); free(p->conns); free(p);
        return TIDE_ENOMEM;
    }
    if (dns_setup(p) != 0) {
        free(p->name); free(p->dsn); free(p->conns); free(p);
        return TIDE_EINVAL;
    }
    ev_timer_init(&p->retry_timer, retry_timer_cb, 0., 0.);
    p->retry_timer.data = p;
    ev_timer_init(&p->idle_timer, idle_timer_cb, 1., 1.);
    p->idle_timer.data = p;
    ev_timer_start(loop, &p->idle_timer);
    ev_unref(loop);                 /* housekeeping alone must not keep the loop running */
    *out = p;
    return 0;
}

void tide_pool_reset_backoff(tide_pool *p)
{
    p->next_connect_at = 0;
}

void tide_pool_fail_all(tide_pool *p, const char *why)
{
    char msg[256];
    snprintf(msg, sizeof msg, "upstream %s: %s", p->name, why);
    fail_waiters(p, "08006", msg);
    for (int i = 0; i < p->max_size; i++) {
        tide_conn *c = p->conns[i];
        if (c && c->job && c->state == C_BUSY) conn_fail(c, "08006", why);
    }
}

void tide_pool_configure(tide_pool *p, const tide_pool_config *cfg)
{
    pool_apply(p, cfg);
    /* a smaller pool retires idle connections now and busy ones as they come back */
    while (p->nopen > p->size && p->idle) conn_destroy(p->idle);
    pool_dispatch(p);
}

/* ---- cancel ---------------------------------------------------------------------------- */

/* PQcancel blocks (it connects to the server), so it runs on a short-lived thread; the loop
 * never waits for it. At most MAX_CANCELS run at once: a server that does not answer must
 * not cost a thread per request. */
#define MAX_CANCELS 8
static atomic_int cancels_running;

static void *cancel_thread(void *arg)
{
    PGcancel *cn = arg;
    char err[256];
    (void)PQcancel(cn, err, sizeof err);
    PQfreeCancel(cn);
    atomic_fetch_sub(&cancels_running, 1);
    return NULL;
}

static void cancel_conn(tide_conn *c)
{
    if (atomic_load(&cancels_running) >= MAX_CANCELS) return;
    PGcancel *cn = PQgetCancel(c->pg);
    if (!cn) return;
    c->cancelled = 1;
    pthread_attr_t attr;
    pthread_t th;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    atomic_fetch_add(&cancels_running, 1);
    if (pthread_create(&th, &attr, cancel_thread, cn) != 0) {
        atomic_fetch_sub(&cancels_running, 1);
        PQfreeCancel(cn);
    }
    pthread_attr_destroy(&attr);
}

int tide_pool_cancel(tide_pgjob *job)
{
    if (job->waiting) { waiter_remove(job); return 1; }
    if (job->conn && job->conn->job == job) cancel_conn(job->conn);
    return 0;
}

void tide_pool_free(tide_pool *p)
{
    if (!p) return;
    p->closing = 1;
    fail_waiters(p, "TIDE_SHUTDOWN", "tide is shutting down");
    for (int i = 0; i < p->max_size; i++) {
        tide_conn *c = p->conns[i];
        if (!c) continue;
        if (c->job) {
            tide_pgjob *job = c->job;
            c->job = NULL;
            job->conn = NULL;
            fail_job(p, job, "TIDE_SHUTDOWN", "tide is shutting down");
        }
        conn_destroy(c);
    }
    ev_timer_stop(p->loop, &p->retry_timer);
    ev_ref(p->loop);
    ev_timer_stop(p->loop, &p->idle_timer);
    dns_teardown(p);
    free(p->conns);
    free(p->name);
    free(p->dsn);
    free(p);
}

void tide_pool_get_stats(const tide_pool *p, tide_pool_stats *o)
{
    o->size = p->size;
    o->open = p->nopen;
    o->idle = p->nidle;
    o->busy = p->nbusy;
    o->connecting = p->nconnecting;
    o->waiting = p->nwaiting;
    o->jobs = p->jobs;
    o->errors = p->errors;
    o->connect_failures = p->connect_failures;
    o->acquire_timeouts = p->acquire_timeouts;
}

const char *tide_pool_name(const tide_pool *p) { return p->name; }
