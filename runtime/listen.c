/* listen.c - the dedicated LISTEN connection (see listen.h for the contract).
 *
 * One connection at a time, in exactly one state; the single timer means something different
 * in each:
 *
 *   WAITING -> [RESOLVING] -> CONNECTING -> LISTENING -> UP <-> PINGING
 *      ^            |              |            |        |         |
 *      +------------+--------------+------------+--------+---------+   (failure or loss)
 *
 *   WAITING     no connection; timer = the backoff before the next attempt (0 at start)
 *   RESOLVING   the host name is being resolved on a thread; timer = connect_timeout
 *   CONNECTING  PQconnectPoll running; timer = connect_timeout
 *   LISTENING   `LISTEN "<channel>"` (one per channel, one query) sent, its results awaited;
 *               timer = connect_timeout
 *   UP          session up, nothing in flight; timer = heartbeat (then an empty query is sent)
 *   PINGING     the empty query in flight; timer = heartbeat_timeout (then the session is lost)
 *
 * Ending a session (UP or PINGING) reports up = 0 and counts a loss; ending an attempt
 * (RESOLVING, CONNECTING, LISTENING) counts a connect failure. Both close the connection and
 * go back to WAITING with the next backoff.
 *
 * Reading order matters: PQconsumeInput only buffers; a notification is parsed by PQgetResult
 * or PQnotifies, and libpq stops parsing at a result until it is collected. So the results
 * are drained first and PQnotifies is polled last, every time: a notification that came in
 * the same packet as a heartbeat's result (before or after its ReadyForQuery) is delivered
 * in that same pass, not left in libpq's buffer until the socket is readable again (it may
 * never be).
 *
 * Re-entrancy: every entry from the loop is bracketed by enter/leave (`depth`); a
 * tide_listen_free() from inside a user callback only marks the struct and stops its
 * watchers, every path checks the mark after calling out, and the outermost leave frees. */
#include "listen.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolve.h"
#include "retry.h"

#define DEF_CONNECT_TIMEOUT   5.0
#define DEF_HEARTBEAT         1.0
#define DEF_HEARTBEAT_TIMEOUT 2.0
#define DEF_BACKOFF_BASE      0.1
#define DEF_BACKOFF_CAP       5.0
#define RESOLVE_MAX_AGE       60.0 /* seconds a resolved address is reused for reconnects */
#define APP_NAME              "tide_listen"
#define CHANNEL_MAX           63  /* NAMEDATALEN - 1 */
#define TABLE_MAX             127 /* `schema.table`, each at most 63 bytes */
#define KEY_MAX               200

typedef enum lstate { WAITING, RESOLVING, CONNECTING, LISTENING, UP, PINGING } lstate;

typedef struct channel {
    char *name;
    tide_listen_notify_cb on_notify;
    void *arg;
} channel;

struct tide_listen {
    struct ev_loop *loop;
    channel ch[TIDE_LISTEN_MAX_CHANNELS];
    int nch;
    char *listen_sql; /* LISTEN "<channel>"; LISTEN "<another>" ... */
    tide_listen_opts o;
    tide_listen_state_cb on_state;
    void *arg; /* on_state's */
    tide__listen_params params;
    tide_resolver *resolver; /* NULL when libpq resolves nothing (an address, a socket) */
    PGconn *pg;              /* NULL in WAITING and RESOLVING */
    lstate state;
    ev_io io;
    int io_events;
    ev_timer timer; /* see the states above */
    int query_ok;   /* the query in flight (LISTEN or heartbeat) answered well */
    int attempt;    /* failed attempts since the last session that was up */
    int depth;      /* loop callbacks on the stack */
    int free_requested;
    tide_listen_stats st;
};

static void io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* ---- pure parts ------------------------------------------------------------------------ */

int tide__listen_channel_ok(const char *channel)
{
    size_t n = channel ? strlen(channel) : 0;
    if (n == 0 || n > CHANNEL_MAX) return 0;
    if (!(channel[0] == '_' || (channel[0] >= 'a' && channel[0] <= 'z'))) return 0;
    for (size_t i = 1; i < n; i++) {
        char c = channel[i];
        if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return 0;
    }
    return 1;
}

static int key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
           c == '-';
}

int tide_listen_split_payload(const char *payload, size_t len, size_t *table_len)
{
    if (!payload) return TIDE_EINVAL;
    const char *slash = NULL;
    for (size_t i = len; i > 0; i--)
        if (payload[i - 1] == '/') {
            slash = payload + i - 1;
            break;
        }
    if (!slash) return TIDE_EINVAL;
    size_t tlen = (size_t)(slash - payload), klen = len - tlen - 1;
    if (tlen == 0 || tlen > TABLE_MAX || memchr(payload, '\0', tlen)) return TIDE_EINVAL;
    const char *key = slash + 1;
    if (!(klen == 1 && key[0] == '*')) {
        if (klen == 0 || klen > KEY_MAX) return TIDE_EINVAL;
        for (size_t i = 0; i < klen; i++)
            if (!key_char(key[i])) return TIDE_EINVAL;
    }
    *table_len = tlen;
    return 0;
}

int tide__listen_params_new(const char *conninfo, int with_hostaddr, tide__listen_params *out)
{
    memset(out, 0, sizeof *out);
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo ? conninfo : "", &err);
    if (!opts) {
        /* NULL without a message is libpq running out of memory */
        int rc = err ? TIDE_EINVAL : TIDE_ENOMEM;
        PQfreemem(err);
        return rc;
    }
    int n = 0, has_app = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val) continue;
        n++;
        if (strcmp(o->keyword, "application_name") == 0) has_app = 1;
    }
    /* room for application_name, hostaddr and the terminator */
    out->kw = calloc((size_t)n + 3, sizeof *out->kw);
    out->val = calloc((size_t)n + 3, sizeof *out->val);
    if (!out->kw || !out->val) {
        free(out->kw);
        free(out->val);
        PQconninfoFree(opts);
        memset(out, 0, sizeof *out);
        return TIDE_ENOMEM;
    }
    int i = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val) continue;
        out->kw[i] = o->keyword;
        out->val[i] = o->val;
        i++;
    }
    if (!has_app) {
        out->kw[i] = "application_name";
        out->val[i] = APP_NAME;
        i++;
    }
    if (with_hostaddr) {
        out->kw[i] = "hostaddr";
        out->val[i] = NULL;
        i++;
    }
    out->n = i;
    out->opts = opts;
    return 0;
}

void tide__listen_params_free(tide__listen_params *p)
{
    free(p->kw);
    free(p->val);
    if (p->opts) PQconninfoFree(p->opts);
    memset(p, 0, sizeof *p);
}

/* ---- plumbing -------------------------------------------------------------------------- */

static void enter(tide_listen *l) { l->depth++; }

static void destroy(tide_listen *l);

static void leave(tide_listen *l)
{
    if (--l->depth == 0 && l->free_requested) destroy(l);
}

static void arm(tide_listen *l, double after)
{
    ev_timer_stop(l->loop, &l->timer);
    ev_timer_set(&l->timer, after, 0.);
    ev_timer_start(l->loop, &l->timer);
}

/* force: while connecting, libpq may close the socket and open another (the next address)
 * that gets the same number; libev only notices if the watcher is set again. */
static void watch_fd(tide_listen *l, int events, int force)
{
    int fd = l->pg ? PQsocket(l->pg) : -1;
    if (!force && events == l->io_events && fd == l->io.fd && ev_is_active(&l->io)) return;
    ev_io_stop(l->loop, &l->io);
    l->io_events = events;
    if (events && fd >= 0) {
        ev_io_set(&l->io, fd, events);
        ev_io_start(l->loop, &l->io);
    }
}

static void watch(tide_listen *l, int events) { watch_fd(l, events, 0); }

/* Sends what libpq holds; watches for writability while some is left. -1 on failure. */
static int flush(tide_listen *l)
{
    int rc = PQflush(l->pg);
    if (rc < 0) return -1;
    watch(l, rc == 1 ? EV_READ | EV_WRITE : EV_READ);
    return 0;
}

/* libpq prints notices (and the FATAL a terminated idle backend sends) to stderr by default:
 * this layer never logs. */
static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Keeps why as one line: libpq's messages span lines and indent with tabs. */
static void set_error(tide_listen *l, const char *why)
{
    char *out = l->st.last_error;
    size_t n = 0;
    if (!why || !*why) why = "server closed the connection";
    for (; *why && n + 1 < sizeof l->st.last_error; why++) {
        int blank = *why == ' ' || *why == '\n' || *why == '\r' || *why == '\t';
        if (blank && (n == 0 || out[n - 1] == ' ')) continue;
        out[n++] = blank ? ' ' : *why;
    }
    while (n > 0 && out[n - 1] == ' ') n--;
    out[n] = '\0';
}

static void close_conn(tide_listen *l)
{
    ev_io_stop(l->loop, &l->io);
    l->io_events = 0;
    ev_timer_stop(l->loop, &l->timer);
    if (l->pg) {
        PQfinish(l->pg);
        l->pg = NULL;
    }
}

static double random01(void) { return (double)rand() / ((double)RAND_MAX + 1.0); }

static void schedule_attempt(tide_listen *l)
{
    l->state = WAITING;
    l->attempt++;
    arm(l, tide_backoff(l->attempt, l->o.backoff_base, l->o.backoff_cap, random01()));
}

/* Ends the attempt or the session: closes, schedules the next attempt, reports a loss. The
 * caller returns right after (l may be marked for freeing by then). */
static void fail(tide_listen *l, const char *why, int heartbeat)
{
    int was_up = l->state == UP || l->state == PINGING;
    set_error(l, why);
    close_conn(l);
    schedule_attempt(l);
    if (!was_up) {
        l->st.connect_failures++;
        return;
    }
    l->st.losses++;
    if (heartbeat) l->st.heartbeats_failed++;
    l->st.up = 0;
    l->st.backend_pid = 0;
    if (l->on_state) l->on_state(0, l->arg);
}

static void fail_pg(tide_listen *l) { fail(l, l->pg ? PQerrorMessage(l->pg) : NULL, 0); }

/* ---- connect --------------------------------------------------------------------------- */

static void connect_now(tide_listen *l)
{
    if (l->resolver) l->params.val[l->params.n - 1] = tide_resolve_addr(l->resolver);
    l->pg = PQconnectStartParams(l->params.kw, l->params.val, 0);
    if (!l->pg) {
        fail(l, "out of memory", 0);
        return;
    }
    if (PQstatus(l->pg) == CONNECTION_BAD) {
        fail_pg(l);
        return;
    }
    PQsetnonblocking(l->pg, 1);
    PQsetNoticeProcessor(l->pg, quiet_notice, NULL);
    l->state = CONNECTING;
    arm(l, l->o.connect_timeout);
    watch(l, EV_WRITE); /* PQconnectStart: first wait until writable */
}

static void start_attempt(tide_listen *l)
{
    if (l->resolver) {
        tide_resolve_start(l->resolver, RESOLVE_MAX_AGE);
        if (!tide_resolve_addr(l->resolver)[0]) {
            l->state = RESOLVING; /* resolved() goes on */
            arm(l, l->o.connect_timeout);
            return;
        }
    }
    connect_now(l);
}

static void resolved(void *arg, const char *error)
{
    tide_listen *l = arg;
    if (l->free_requested || l->state != RESOLVING) return; /* a refresh, or too late */
    enter(l);
    if (tide_resolve_addr(l->resolver)[0]) connect_now(l);
    else fail(l, error, 0);
    leave(l);
}

static void connected(tide_listen *l)
{
    if (!PQsendQuery(l->pg, l->listen_sql)) {
        fail_pg(l);
        return;
    }
    l->state = LISTENING;
    l->query_ok = 0;
    arm(l, l->o.connect_timeout);
    if (flush(l) != 0) fail_pg(l);
}

static void poll_connect(tide_listen *l)
{
    switch (PQconnectPoll(l->pg)) {
    case PGRES_POLLING_READING: watch_fd(l, EV_READ, 1); break;
    case PGRES_POLLING_WRITING: watch_fd(l, EV_WRITE, 1); break;
    case PGRES_POLLING_OK: connected(l); break;
    default: fail_pg(l); break;
    }
}

/* ---- session --------------------------------------------------------------------------- */

static void went_up(tide_listen *l)
{
    l->state = UP;
    l->attempt = 0;
    l->st.up = 1;
    l->st.connects++;
    l->st.backend_pid = PQbackendPID(l->pg);
    l->st.last_up_at = ev_now(l->loop);
    arm(l, l->o.heartbeat);
    if (l->on_state) l->on_state(1, l->arg);
}

/* Collects the results of the query in flight (LISTEN or a heartbeat). Returns -1 when the
 * attempt or session ended, or l was marked for freeing, else 0. */
static int read_results(tide_listen *l)
{
    while (l->state == LISTENING || l->state == PINGING) {
        if (PQisBusy(l->pg)) return 0;
        PGresult *res = PQgetResult(l->pg);
        if (res) {
            ExecStatusType st = PQresultStatus(res);
            int want = l->state == LISTENING ? PGRES_COMMAND_OK : PGRES_EMPTY_QUERY;
            if ((int)st == want) {
                if (l->query_ok == 0) l->query_ok = 1;
            } else {
                l->query_ok = -1;
                set_error(l, PQresultErrorMessage(res));
            }
            PQclear(res);
            continue;
        }
        /* the query is over */
        if (l->query_ok != 1) {
            char why[sizeof l->st.last_error];
            memcpy(why, l->st.last_error, sizeof why);
            fail(l, l->query_ok < 0 ? why : "no result", 0);
            return -1;
        }
        if (l->state == LISTENING) {
            went_up(l);
            if (l->free_requested) return -1;
        } else {
            l->state = UP;
            arm(l, l->o.heartbeat);
        }
    }
    return 0;
}

/* Delivers the notifications libpq has parsed (and parses what it has buffered). */
static void deliver(tide_listen *l)
{
    PGnotify *n;
    while (!l->free_requested && (n = PQnotifies(l->pg)) != NULL) {
        for (int i = 0; i < l->nch; i++) {
            if (strcmp(n->relname, l->ch[i].name) == 0) {
                l->st.notifications++;
                l->ch[i].on_notify(n->extra, strlen(n->extra), l->ch[i].arg);
                break; /* names are distinct (tide_listen_add) */
            }
        }
        PQfreemem(n);
    }
}

static void session_io(tide_listen *l, int revents)
{
    if ((revents & EV_WRITE) && flush(l) != 0) {
        fail_pg(l);
        return;
    }
    if (!(revents & EV_READ)) return;
    if (PQconsumeInput(l->pg) != 1) {
        fail_pg(l);
        return;
    }
    if (read_results(l) != 0) return;
    /* notifications belong to a session: while LISTEN is unconfirmed they wait in libpq */
    if (l->state == UP || l->state == PINGING) deliver(l);
    if (l->free_requested) return;
    if (PQstatus(l->pg) == CONNECTION_BAD) fail_pg(l);
}

static void send_heartbeat(tide_listen *l)
{
    if (!PQsendQuery(l->pg, "")) {
        fail_pg(l);
        return;
    }
    l->state = PINGING;
    l->query_ok = 0;
    arm(l, l->o.heartbeat_timeout);
    if (flush(l) != 0) fail_pg(l);
}

/* ---- loop callbacks -------------------------------------------------------------------- */

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    tide_listen *l = w->data;
    enter(l);
    if (l->state == CONNECTING) poll_connect(l);
    else if (l->pg) session_io(l, revents);
    leave(l);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    tide_listen *l = w->data;
    enter(l);
    switch (l->state) {
    case WAITING: start_attempt(l); break;
    case RESOLVING: fail(l, "timeout resolving the host", 0); break;
    case CONNECTING: fail(l, "connect timeout", 0); break;
    case LISTENING: fail(l, "no answer to LISTEN in time", 0); break;
    case UP: send_heartbeat(l); break;
    case PINGING: fail(l, "heartbeat: no answer in time", 1); break;
    }
    leave(l);
}

/* ---- public ---------------------------------------------------------------------------- */

static int opt(double v, double def, double *out)
{
    if (!(v >= 0)) return TIDE_EINVAL; /* negative or NaN */
    *out = v > 0 ? v : def;
    return 0;
}

/* Rebuilds listen_sql for the channels (plain identifiers, checked: quoting them needs no
 * escapes). 0 or TIDE_ENOMEM (then listen_sql is unchanged). */
static int build_listen_sql(tide_listen *l)
{
    size_t cap = 1;
    for (int i = 0; i < l->nch; i++) cap += strlen(l->ch[i].name) + sizeof "LISTEN \"\"; ";
    char *sql = malloc(cap);
    if (!sql) return TIDE_ENOMEM;
    size_t n = 0;
    for (int i = 0; i < l->nch; i++)
        n += (size_t)snprintf(sql + n, cap - n, "%sLISTEN \"%s\"", i ? "; " : "", l->ch[i].name);
    free(l->listen_sql);
    l->listen_sql = sql;
    return 0;
}

int tide_listen_add(tide_listen *l, const char *name, tide_listen_notify_cb on_notify, void *arg)
{
    if (!l || !on_notify || !tide__listen_channel_ok(name)) return TIDE_EINVAL;
    for (int i = 0; i < l->nch; i++)
        if (strcmp(l->ch[i].name, name) == 0) return TIDE_EINVAL;
    if (l->nch == TIDE_LISTEN_MAX_CHANNELS) return TIDE_ETOOBIG;
    if (l->state != WAITING || l->attempt != 0 || l->st.connects || l->st.connect_failures)
        return TIDE_EBUSY;
    channel *c = &l->ch[l->nch];
    if (!(c->name = strdup(name))) return TIDE_ENOMEM;
    c->on_notify = on_notify;
    c->arg = arg;
    l->nch++;
    int rc = build_listen_sql(l);
    if (rc != 0) {
        free(c->name);
        memset(c, 0, sizeof *c);
        l->nch--;
    }
    return rc;
}

int tide_listen_start(struct ev_loop *loop, const char *conninfo, const char *channel,
                      const tide_listen_opts *opts, tide_listen_notify_cb on_notify,
                      tide_listen_state_cb on_state, void *arg, tide_listen **out)
{
    *out = NULL;
    if (!loop || !conninfo || !on_notify || !tide__listen_channel_ok(channel)) return TIDE_EINVAL;
    tide_listen_opts none;
    memset(&none, 0, sizeof none);
    if (!opts) opts = &none;
    tide_listen *l = calloc(1, sizeof *l);
    if (!l) return TIDE_ENOMEM;
    if (opt(opts->connect_timeout, DEF_CONNECT_TIMEOUT, &l->o.connect_timeout) != 0 ||
        opt(opts->heartbeat, DEF_HEARTBEAT, &l->o.heartbeat) != 0 ||
        opt(opts->heartbeat_timeout, DEF_HEARTBEAT_TIMEOUT, &l->o.heartbeat_timeout) != 0 ||
        opt(opts->backoff_base, DEF_BACKOFF_BASE, &l->o.backoff_base) != 0 ||
        opt(opts->backoff_cap, DEF_BACKOFF_CAP, &l->o.backoff_cap) != 0) {
        free(l);
        return TIDE_EINVAL;
    }
    l->loop = loop;
    ev_init(&l->io, io_cb);
    l->io.data = l;
    ev_init(&l->timer, timer_cb);
    l->timer.data = l;
    l->on_state = on_state;
    l->arg = arg;
    int rc = tide_resolve_new(loop, conninfo, resolved, l, &l->resolver);
    if (rc == 0) rc = tide__listen_params_new(conninfo, l->resolver != NULL, &l->params);
    if (rc == 0) {
        l->ch[0].name = strdup(channel);
        l->ch[0].on_notify = on_notify;
        l->ch[0].arg = arg;
        l->nch = 1;
        rc = l->ch[0].name ? build_listen_sql(l) : TIDE_ENOMEM;
    }
    if (rc != 0) {
        destroy(l);
        return rc;
    }
    l->state = WAITING;
    arm(l, 0.); /* the first attempt starts from the loop */
    *out = l;
    return 0;
}

static void destroy(tide_listen *l)
{
    close_conn(l);
    tide_resolve_free(l->resolver);
    tide__listen_params_free(&l->params);
    for (int i = 0; i < l->nch; i++) free(l->ch[i].name);
    free(l->listen_sql);
    free(l);
}

void tide_listen_free(tide_listen *l)
{
    if (!l || l->free_requested) return;
    l->free_requested = 1;
    ev_io_stop(l->loop, &l->io);
    ev_timer_stop(l->loop, &l->timer);
    if (l->depth == 0) destroy(l);
}

void tide_listen_get_stats(const tide_listen *l, tide_listen_stats *out) { *out = l->st; }
