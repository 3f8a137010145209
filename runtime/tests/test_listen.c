/* test_listen.c - the LISTEN connection (listen.c).
 *
 * Pure parts: channel names, payload splitting, connection parameters. On a real loop against
 * a fake server (a thread speaking just enough of the v3 protocol: trust login, LISTEN, empty
 * queries, notifications, a FATAL and EOF), deterministically: notifications that arrive in
 * the same packet as a heartbeat's result (before and after its ReadyForQuery), EOF and a
 * frozen server each ending the session (up=0 once, then up=1 again), a silent server timing
 * the connect out without any state callback, no callback inside tide_listen_start,
 * tide_listen_free from inside both callbacks, and a channel added to the session (one
 * LISTEN query, each channel's notifications to its own callback, the bound on channels).
 *
 * Against a real Postgres only when TIDE_TEST_PG_DSN is set (else those tests say "skip" and
 * pass): NOTIFY from a second connection is received; pg_terminate_backend on the listener
 * (found by application_name=tide_listen and its backend pid) is noticed as EOF at once and
 * the session comes back; with db/migrations/007 applied, a write through the watched
 * destinations table arrives as `destinations/<id>`. Every wait is bounded. */
#include "test.h"
#include "../listen.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- pure ------------------------------------------------------------------------------ */

TEST(channel_names_are_plain_identifiers)
{
    CHECK(tide__listen_channel_ok("tide_cache"));
    CHECK(tide__listen_channel_ok("_x1"));
    CHECK(tide__listen_channel_ok("a"));
    char name[80];
    memset(name, 'a', 63);
    name[63] = '\0';
    CHECK(tide__listen_channel_ok(name));
    memset(name, 'a', 64);
    name[64] = '\0';
    CHECK(!tide__listen_channel_ok(name));
    CHECK(!tide__listen_channel_ok(NULL));
    CHECK(!tide__listen_channel_ok(""));
    CHECK(!tide__listen_channel_ok("1abc"));
    CHECK(!tide__listen_channel_ok("Tide")); /* would not match an unquoted NOTIFY */
    CHECK(!tide__listen_channel_ok("a b"));
    CHECK(!tide__listen_channel_ok("a\"b"));
    CHECK(!tide__listen_channel_ok("a-b"));
    CHECK(!tide__listen_channel_ok("a;drop"));
    CHECK(!tide__listen_channel_ok("caf\xc3\xa9"));
}

static int split(const char *s, size_t *tlen)
{
    return tide_listen_split_payload(s, strlen(s), tlen);
}

TEST(payloads_split_into_table_and_key)
{
    size_t t = 0;
    CHECK_EQ_INT(split("trips/7", &t), 0);
    CHECK_EQ_INT(t, 5);
    CHECK_EQ_INT(split("trips/*", &t), 0);
    CHECK_EQ_INT(t, 5);
    CHECK_EQ_INT(split("users/aaaaaaaa-0000-0000-0000-000000000001", &t), 0);
    CHECK_EQ_INT(split("s2.t/x-1:a.b_c", &t), 0);
    CHECK_EQ_INT(t, 4);
    CHECK_EQ_INT(split("Odd/Name/5", &t), 0); /* a table name may hold '/': last one */
    CHECK_EQ_INT(t, 8);
    char buf[400];
    memset(buf, 'a', sizeof buf);
    memcpy(buf, "t/", 2);
    buf[202] = '\0'; /* a key of 200 bytes */
    CHECK_EQ_INT(split(buf, &t), 0);
    buf[202] = 'a';
    buf[203] = '\0'; /* 201 */
    CHECK_EQ_INT(split(buf, &t), TIDE_EINVAL);
    memset(buf, 'a', 127);
    memcpy(buf + 127, "/1", 3);
    CHECK_EQ_INT(split(buf, &t), 0);
    memset(buf, 'a', 128);
    memcpy(buf + 128, "/1", 3);
    CHECK_EQ_INT(split(buf, &t), TIDE_EINVAL);
    CHECK_EQ_INT(split("trips", &t), TIDE_EINVAL);
    CHECK_EQ_INT(split("/7", &t), TIDE_EINVAL);
    CHECK_EQ_INT(split("trips/", &t), TIDE_EINVAL);
    CHECK_EQ_INT(split("trips/A", &t), TIDE_EINVAL); /* keys arrive lower-cased */
    CHECK_EQ_INT(split("trips/a b", &t), TIDE_EINVAL);
    CHECK_EQ_INT(split("trips/**", &t), TIDE_EINVAL);
    CHECK_EQ_INT(split("trips/7*", &t), TIDE_EINVAL);
    CHECK_EQ_INT(tide_listen_split_payload("tr\0ps/7", 7, &t), TIDE_EINVAL);
    CHECK_EQ_INT(tide_listen_split_payload(NULL, 0, &t), TIDE_EINVAL);
}

static const char *param(const tide__listen_params *p, const char *kw)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->kw[i], kw) == 0) return p->val[i] ? p->val[i] : "(null)";
    return NULL;
}

TEST(parameters_name_the_session_unless_the_dsn_does)
{
    tide__listen_params p;
    CHECK_EQ_INT(tide__listen_params_new("host=db port=5433 dbname=tide", 0, &p), 0);
    CHECK_STR(param(&p, "host"), "db");
    CHECK_STR(param(&p, "port"), "5433");
    CHECK_STR(param(&p, "application_name"), "tide_listen");
    CHECK(param(&p, "hostaddr") == NULL);
    CHECK(p.kw[p.n] == NULL && p.val[p.n] == NULL);
    tide__listen_params_free(&p);

    CHECK_EQ_INT(
        tide__listen_params_new("postgresql://u:pw@db:6543/tide?application_name=mine", 1, &p), 0);
    CHECK_STR(param(&p, "application_name"), "mine");
    CHECK_STR(param(&p, "dbname"), "tide");
    CHECK_STR(param(&p, "user"), "u");
    CHECK_STR(p.kw[p.n - 1], "hostaddr"); /* the last slot, filled per attempt */
    CHECK(p.val[p.n - 1] == NULL);
    tide__listen_params_free(&p);

    /* a value with quotes and blanks stays one value (no string pasting) */
    CHECK_EQ_INT(tide__listen_params_new("host=db application_name='a b=c'", 0, &p), 0);
    CHECK_STR(param(&p, "application_name"), "a b=c");
    tide__listen_params_free(&p);

    CHECK_EQ_INT(tide__listen_params_new("host=db nonsense=1", 0, &p), TIDE_EINVAL);
    CHECK_EQ_INT(tide__listen_params_new("host='unterminated", 0, &p), TIDE_EINVAL);
}

static void noop_notify(const char *payload, size_t len, void *arg)
{
    (void)payload;
    (void)len;
    (void)arg;
}

TEST(start_refuses_bad_arguments)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    tide_listen *l = (tide_listen *)1;
    tide_listen_opts o;
    memset(&o, 0, sizeof o);
    CHECK_EQ_INT(
        tide_listen_start(loop, "host=127.0.0.1", "Bad", NULL, noop_notify, NULL, NULL, &l),
        TIDE_EINVAL);
    CHECK(l == NULL);
    CHECK_EQ_INT(
        tide_listen_start(loop, "host=127.0.0.1", "x\"; drop", NULL, noop_notify, NULL, NULL, &l),
        TIDE_EINVAL);
    CHECK_EQ_INT(tide_listen_start(loop, "bogus=1", "ok", NULL, noop_notify, NULL, NULL, &l),
                 TIDE_EINVAL);
    CHECK_EQ_INT(tide_listen_start(loop, "host=127.0.0.1", "ok", NULL, NULL, NULL, NULL, &l),
                 TIDE_EINVAL);
    o.heartbeat = -1;
    CHECK_EQ_INT(tide_listen_start(loop, "host=127.0.0.1", "ok", &o, noop_notify, NULL, NULL, &l),
                 TIDE_EINVAL);
    CHECK(l == NULL);
    tide_listen_free(NULL);
    ev_loop_destroy(loop);
}

/* ---- a fake server --------------------------------------------------------------------- */

enum scenario {
    SC_SAME_PACKET, /* notifications packed with heartbeat results */
    SC_EOF,         /* 1st connection: FATAL + close 100 ms after LISTEN */
    SC_FROZEN,      /* 1st connection: heartbeats never answered */
    SC_SILENT,      /* 1st connection: the startup is never answered */
    SC_BURST,       /* three notifications right after the LISTEN result */
};

typedef struct fake {
    int lfd, port;
    enum scenario sc;
    pthread_t th;
    atomic_int stop;
    atomic_int conns;
    char listened[128]; /* the last LISTEN statement seen */
} fake;

/* 0 once n bytes are read; -1 on EOF, error or stop. */
static int read_full(fake *f, int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        if (atomic_load(&f->stop)) return -1;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 50) <= 0) continue;
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

typedef struct obuf {
    char b[1024];
    size_t n;
} obuf;

static void put32(obuf *o, uint32_t v)
{
    v = htonl(v);
    memcpy(o->b + o->n, &v, 4);
    o->n += 4;
}

static void put_msg(obuf *o, char type, const char *body, size_t len)
{
    o->b[o->n++] = type;
    put32(o, (uint32_t)len + 4);
    memcpy(o->b + o->n, body, len);
    o->n += len;
}

static void put_str_msg(obuf *o, char type, const char *s) { put_msg(o, type, s, strlen(s) + 1); }

static void put_notify(obuf *o, const char *channel, const char *payload)
{
    char body[256];
    uint32_t pid = htonl(4242);
    size_t cl = strlen(channel) + 1, pl = strlen(payload) + 1;
    memcpy(body, &pid, 4);
    memcpy(body + 4, channel, cl);
    memcpy(body + 4 + cl, payload, pl);
    put_msg(o, 'A', body, 4 + cl + pl);
}

static void put_ready(obuf *o) { put_msg(o, 'Z', "I", 1); }

/* One write: the client reads it as one packet. */
static void send_all(int fd, const obuf *o)
{
    size_t off = 0;
    while (off < o->n) {
        ssize_t w = send(fd, o->b + off, o->n - off, MSG_NOSIGNAL);
        if (w <= 0) return;
        off += (size_t)w;
    }
}

static void serve(fake *f, int fd, int index)
{
    unsigned char hdr[5];
    char body[512];
    if (read_full(f, fd, hdr, 4) != 0) return;
    uint32_t len;
    memcpy(&len, hdr, 4);
    len = ntohl(len);
    if (len < 8 || len > sizeof body || read_full(f, fd, body, len - 4) != 0) return;
    if (f->sc == SC_SILENT && index == 0) { /* never answer: wait for the client to go */
        while (read_full(f, fd, body, 1) == 0) {}
        return;
    }
    obuf o = { .n = 0 };
    char auth[4] = { 0, 0, 0, 0 };
    put_msg(&o, 'R', auth, 4);
    put_msg(&o, 'S', "server_version\00017.0", sizeof "server_version\00017.0");
    put_msg(&o, 'S', "client_encoding\0UTF8", sizeof "client_encoding\0UTF8");
    put_msg(&o, 'S', "standard_conforming_strings\0on", sizeof "standard_conforming_strings\0on");
    char key[8] = { 0, 0, 0x10, 0x92, 0, 0, 0, 7 }; /* pid 4242 */
    put_msg(&o, 'K', key, 8);
    put_ready(&o);
    send_all(fd, &o);
    int pings = 0;
    for (;;) {
        if (read_full(f, fd, hdr, 5) != 0) return;
        memcpy(&len, hdr + 1, 4);
        len = ntohl(len);
        if (len < 4 || len - 4 > sizeof body) return;
        if (len > 4 && read_full(f, fd, body, len - 4) != 0) return;
        if (hdr[0] == 'X') return;
        if (hdr[0] != 'Q') continue;
        o.n = 0;
        if (strncmp(body, "LISTEN", 6) == 0) {
            snprintf(f->listened, sizeof f->listened, "%.100s", body);
            /* one CommandComplete per statement of the query, then one ReadyForQuery */
            for (const char *at = body; (at = strstr(at, "LISTEN")) != NULL; at += 6)
                put_str_msg(&o, 'C', "LISTEN");
            put_ready(&o);
            if (f->sc == SC_BURST) {
                put_notify(&o, "chan", "t/1");
                put_notify(&o, "chan", "t/2");
                put_notify(&o, "chan", "t/3");
            }
            send_all(fd, &o);
            if (f->sc == SC_EOF && index == 0) {
                usleep(100 * 1000);
                o.n = 0;
                put_msg(&o, 'E',
                        "SFATAL\0VFATAL\0C57P01\0Mterminating connection due to "
                        "administrator command\0",
                        sizeof "SFATAL\0VFATAL\0C57P01\0Mterminating "
                               "connection due to administrator command\0");
                send_all(fd, &o);
                return;
            }
            continue;
        }
        pings++; /* an empty query: a heartbeat */
        if (f->sc == SC_FROZEN && index == 0) continue;
        put_msg(&o, 'I', "", 0);
        if (f->sc == SC_SAME_PACKET && pings == 1) {
            /* the server's own order: notifications before ReadyForQuery */
            put_notify(&o, "chan", "t/1");
            put_notify(&o, "other", "x/9"); /* not ours: never delivered */
            put_ready(&o);
        } else if (f->sc == SC_SAME_PACKET && pings == 2) {
            put_ready(&o);                 /* after it: parsed only once the */
            put_notify(&o, "chan", "t/2"); /* result was collected */
        } else {
            put_ready(&o);
        }
        send_all(fd, &o);
    }
}

static void *fake_thread(void *arg)
{
    fake *f = arg;
    while (!atomic_load(&f->stop)) {
        struct pollfd p = { .fd = f->lfd, .events = POLLIN };
        if (poll(&p, 1, 50) <= 0) continue;
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0) continue;
        int index = atomic_fetch_add(&f->conns, 1);
        serve(f, fd, index);
        close(fd);
    }
    return NULL;
}

static int fake_start(fake *f, enum scenario sc)
{
    memset(f, 0, sizeof *f);
    f->sc = sc;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(f->lfd, 8) != 0 || getsockname(f->lfd, (struct sockaddr *)&a, &al) != 0)
        return -1;
    f->port = ntohs(a.sin_port);
    return pthread_create(&f->th, NULL, fake_thread, f) == 0 ? 0 : -1;
}

static void fake_stop(fake *f)
{
    atomic_store(&f->stop, 1);
    pthread_join(f->th, NULL);
    close(f->lfd);
}

/* ---- a listener's callbacks, recorded -------------------------------------------------- */

typedef struct rec {
    struct ev_loop *loop;
    tide_listen *l;
    int states[16], nstates;
    double state_at[16];
    char payloads[256][64];
    double payload_at[256];
    int npayloads;
    int free_on_up, free_on_notify;
    int in_start; /* set around tide_listen_start: no callback may come */
    int called_in_start;
} rec;

static void rec_notify(const char *payload, size_t len, void *arg)
{
    rec *r = arg;
    if (r->in_start) r->called_in_start = 1;
    if (r->npayloads < 256) {
        snprintf(r->payloads[r->npayloads], sizeof r->payloads[0], "%.*s", (int)len, payload);
        r->payload_at[r->npayloads++] = ev_time();
    }
    if (r->free_on_notify) {
        tide_listen_free(r->l);
        r->l = NULL;
    }
}

static void rec_state(int up, void *arg)
{
    rec *r = arg;
    if (r->in_start) r->called_in_start = 1;
    if (r->nstates < 16) {
        r->state_at[r->nstates] = ev_time();
        r->states[r->nstates++] = up;
    }
    if (up && r->free_on_up) {
        tide_listen_free(r->l);
        r->l = NULL;
    }
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

/* Runs the loop until *cond (an int) reaches want or `secs` pass. Returns 1 if it did. */
static int run_until(struct ev_loop *loop, const int *cond, int want, double secs)
{
    ev_timer tick; /* wakes the loop, so the deadline is checked */
    ev_timer_init(&tick, tick_cb, 0.02, 0.02);
    ev_timer_start(loop, &tick);
    double end = ev_time() + secs;
    while (*cond < want && ev_time() < end) ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &tick);
    return *cond >= want;
}

static void run_for(struct ev_loop *loop, double secs)
{
    int never = 0;
    (void)run_until(loop, &never, 1, secs);
}

static int start_rec(rec *r, const char *dsn, const char *channel, const tide_listen_opts *o)
{
    r->in_start = 1;
    int rc = tide_listen_start(r->loop, dsn, channel, o, rec_notify, rec_state, r, &r->l);
    r->in_start = 0;
    return rc;
}

static void fake_dsn(char *buf, size_t n, const fake *f, const char *host)
{
    snprintf(buf, n, "host=%s port=%d user=t dbname=t sslmode=disable gssencmode=disable", host,
             f->port);
}

/* Starts a fake server playing scenario sc and a listener (opts o) against it, recording
 * into r (flags such as free_on_up set in r beforehand are kept). 0 or -1. */
static int on_fake(fake *f, int sc, rec *r, const tide_listen_opts *o)
{
    if (fake_start(f, sc) != 0) return -1;
    r->loop = ev_loop_new(EVFLAG_AUTO);
    char dsn[200];
    fake_dsn(dsn, sizeof dsn, f, "127.0.0.1");
    return start_rec(r, dsn, "chan", o);
}

/* Takes the listener's stats (when it still runs), frees it, stops the fake and the loop. */
static void off_fake(fake *f, rec *r, tide_listen_stats *st)
{
    if (r->l) {
        if (st) tide_listen_get_stats(r->l, st);
        tide_listen_free(r->l);
        r->l = NULL;
    }
    fake_stop(f);
    ev_loop_destroy(r->loop);
}

/* ---- on a loop, against the fake server ------------------------------------------------ */

TEST(notifications_in_the_heartbeat_packet_are_delivered)
{
    fake f;
    CHECK(fake_start(&f, SC_SAME_PACKET) == 0);
    rec r;
    memset(&r, 0, sizeof r);
    r.loop = ev_loop_new(EVFLAG_AUTO);
    char dsn[200];
    fake_dsn(dsn, sizeof dsn, &f, "localhost"); /* through the resolver thread */
    tide_listen_opts o = { .heartbeat = 0.3, .heartbeat_timeout = 2 };
    CHECK_EQ_INT(start_rec(&r, dsn, "chan", &o), 0);
    CHECK_EQ_INT(r.called_in_start, 0);
    int ok = run_until(r.loop, &r.npayloads, 2, 5);
    run_for(r.loop, 0.7); /* more heartbeats: nothing more */
    tide_listen_stats st;
    off_fake(&f, &r, &st);
    CHECK(ok);
    CHECK_STR(f.listened, "LISTEN \"chan\"");
    CHECK_EQ_INT(r.npayloads, 2);
    CHECK_STR(r.payloads[0], "t/1");
    CHECK_STR(r.payloads[1], "t/2");
    /* each came with its heartbeat's answer (0.3 s apart), not with the next one's */
    double gap = r.payload_at[1] - r.payload_at[0];
    CHECK(gap > 0.2 && gap < 0.45);
    CHECK_EQ_INT(r.nstates, 1);
    CHECK_EQ_INT(r.states[0], 1);
    CHECK_EQ_INT(st.up, 1);
    CHECK_EQ_INT(st.connects, 1);
    CHECK_EQ_INT(st.notifications, 2);
    CHECK_EQ_INT(st.losses, 0);
    CHECK_EQ_INT(st.heartbeats_failed, 0);
    CHECK_EQ_INT(st.backend_pid, 4242);
    CHECK(st.last_up_at > 0);
}

TEST(eof_ends_the_session_at_once_and_it_comes_back)
{
    fake f;
    rec r;
    memset(&r, 0, sizeof r);
    /* heartbeats far apart: only EOF can end the session within the test's time */
    tide_listen_opts o = { .heartbeat = 30, .heartbeat_timeout = 30, .backoff_base = 0.05 };
    CHECK_EQ_INT(on_fake(&f, SC_EOF, &r, &o), 0);
    int ok = run_until(r.loop, &r.nstates, 3, 5);
    tide_listen_stats st;
    off_fake(&f, &r, &st);
    CHECK(ok);
    CHECK_EQ_INT(r.nstates, 3);
    CHECK(r.states[0] == 1 && r.states[1] == 0 && r.states[2] == 1);
    CHECK(r.state_at[1] - r.state_at[0] < 1.0); /* FATAL + close after 100 ms */
    CHECK_EQ_INT(st.connects, 2);
    CHECK_EQ_INT(st.losses, 1);
    CHECK_EQ_INT(st.heartbeats_failed, 0);
    CHECK_EQ_INT(st.up, 1);
    CHECK(strstr(st.last_error, "terminating connection") != NULL ||
          strstr(st.last_error, "closed") != NULL);
}

TEST(a_frozen_server_fails_the_heartbeat)
{
    fake f;
    rec r;
    memset(&r, 0, sizeof r);
    tide_listen_opts o = { .heartbeat = 0.05, .heartbeat_timeout = 0.2, .backoff_base = 0.05 };
    CHECK_EQ_INT(on_fake(&f, SC_FROZEN, &r, &o), 0);
    int ok = run_until(r.loop, &r.nstates, 3, 5);
    tide_listen_stats st;
    off_fake(&f, &r, &st);
    CHECK(ok);
    CHECK(r.states[0] == 1 && r.states[1] == 0 && r.states[2] == 1);
    double gap = r.state_at[1] - r.state_at[0]; /* heartbeat + its timeout */
    CHECK(gap > 0.2 && gap < 1.5);
    CHECK_EQ_INT(st.heartbeats_failed, 1);
    CHECK_EQ_INT(st.losses, 1);
    CHECK_EQ_INT(st.connects, 2);
    CHECK(strstr(st.last_error, "heartbeat") != NULL);
}

TEST(a_silent_server_times_the_connect_out_without_a_state_call)
{
    fake f;
    rec r;
    memset(&r, 0, sizeof r);
    tide_listen_opts o = { .connect_timeout = 0.2, .backoff_base = 0.05 };
    CHECK_EQ_INT(on_fake(&f, SC_SILENT, &r, &o), 0);
    int ok = run_until(r.loop, &r.nstates, 1, 5);
    tide_listen_stats st;
    off_fake(&f, &r, &st);
    CHECK(ok);
    CHECK_EQ_INT(r.nstates, 1); /* the failed attempt reported nothing */
    CHECK_EQ_INT(r.states[0], 1);
    CHECK_EQ_INT(st.connect_failures, 1);
    CHECK_EQ_INT(st.losses, 0);
    CHECK_STR(st.last_error, "connect timeout");
}

TEST(nothing_answers_and_nothing_is_reported)
{
    /* a port nobody listens on: attempts fail and back off; no state call, no notify */
    fake f;
    CHECK(fake_start(&f, SC_SILENT) == 0);
    int port = f.port;
    fake_stop(&f); /* the port is free again */
    rec r;
    memset(&r, 0, sizeof r);
    r.loop = ev_loop_new(EVFLAG_AUTO);
    char dsn[200];
    snprintf(dsn, sizeof dsn, "host=127.0.0.1 port=%d sslmode=disable gssencmode=disable", port);
    tide_listen_opts o = { .backoff_base = 0.01, .backoff_cap = 0.05 };
    CHECK_EQ_INT(start_rec(&r, dsn, "chan", &o), 0);
    tide_listen_stats st;
    tide_listen_get_stats(r.l, &st);
    CHECK_EQ_INT(st.connect_failures, 0); /* not even tried inside start */
    run_for(r.loop, 0.5);
    tide_listen_get_stats(r.l, &st);
    tide_listen_free(r.l);
    ev_loop_destroy(r.loop);
    CHECK_EQ_INT(r.nstates, 0);
    CHECK_EQ_INT(r.called_in_start, 0);
    CHECK(st.connect_failures >= 3);
    CHECK_EQ_INT(st.up, 0);
    CHECK(st.last_error[0] != '\0');
}

TEST(free_from_inside_the_up_callback)
{
    fake f;
    rec r;
    memset(&r, 0, sizeof r);
    r.free_on_up = 1;
    CHECK_EQ_INT(on_fake(&f, SC_BURST, &r, NULL), 0);
    int ok = run_until(r.loop, &r.nstates, 1, 5);
    run_for(r.loop, 0.1);
    off_fake(&f, &r, NULL);
    CHECK(ok);
    CHECK(r.l == NULL);
    CHECK_EQ_INT(r.nstates, 1);
    CHECK_EQ_INT(r.npayloads, 0); /* the burst came with the LISTEN result: not delivered */
}

TEST(free_from_inside_the_notify_callback)
{
    fake f;
    rec r;
    memset(&r, 0, sizeof r);
    r.free_on_notify = 1;
    CHECK_EQ_INT(on_fake(&f, SC_BURST, &r, NULL), 0);
    int ok = run_until(r.loop, &r.npayloads, 1, 5);
    run_for(r.loop, 0.1);
    off_fake(&f, &r, NULL);
    CHECK(ok);
    CHECK(r.l == NULL);
    CHECK_EQ_INT(r.nstates, 1);   /* up came first, in the same pass */
    CHECK_EQ_INT(r.npayloads, 1); /* three were parsed; none after the free */
    CHECK_STR(r.payloads[0], "t/1");
}

/* A second channel's notifications, recorded apart from the first's. */
typedef struct rec2 {
    char payloads[8][64];
    int n;
} rec2;

static void rec2_notify(const char *payload, size_t len, void *arg)
{
    rec2 *r = arg;
    if (r->n < 8) snprintf(r->payloads[r->n++], sizeof r->payloads[0], "%.*s", (int)len, payload);
}

TEST(added_channels_share_the_session_and_get_their_own_notifications)
{
    fake f;
    CHECK(fake_start(&f, SC_SAME_PACKET) == 0);
    rec r;
    memset(&r, 0, sizeof r);
    rec2 other;
    memset(&other, 0, sizeof other);
    r.loop = ev_loop_new(EVFLAG_AUTO);
    char dsn[200];
    fake_dsn(dsn, sizeof dsn, &f, "127.0.0.1");
    tide_listen_opts o = { .heartbeat = 0.3, .heartbeat_timeout = 2 };
    CHECK_EQ_INT(start_rec(&r, dsn, "chan", &o), 0);
    /* refused: a name already listened on, not a plain identifier, no callback */
    CHECK_EQ_INT(tide_listen_add(r.l, "chan", rec2_notify, &other), TIDE_EINVAL);
    CHECK_EQ_INT(tide_listen_add(r.l, "Other", rec2_notify, &other), TIDE_EINVAL);
    CHECK_EQ_INT(tide_listen_add(r.l, "other", NULL, &other), TIDE_EINVAL);
    CHECK_EQ_INT(tide_listen_add(NULL, "other", rec2_notify, &other), TIDE_EINVAL);
    CHECK_EQ_INT(tide_listen_add(r.l, "other", rec2_notify, &other), 0);
    int ok = run_until(r.loop, &r.npayloads, 2, 5);
    /* too late once an attempt has run */
    CHECK_EQ_INT(tide_listen_add(r.l, "late", rec2_notify, &other), TIDE_EBUSY);
    tide_listen_stats st;
    off_fake(&f, &r, &st);
    CHECK(ok);
    CHECK_STR(f.listened, "LISTEN \"chan\"; LISTEN \"other\"");
    CHECK_EQ_INT(r.nstates, 1); /* both LISTENs confirmed: one session */
    CHECK_EQ_INT(r.states[0], 1);
    CHECK_EQ_INT(r.npayloads, 2);
    CHECK_STR(r.payloads[0], "t/1");
    CHECK_STR(r.payloads[1], "t/2");
    CHECK_EQ_INT(other.n, 1); /* "other" was heard, by its callback */
    CHECK_STR(other.payloads[0], "x/9");
    CHECK_EQ_INT(st.notifications, 3);
}

TEST(at_most_four_channels)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    tide_listen *l = NULL;
    CHECK_EQ_INT(
        tide_listen_start(loop, "host=127.0.0.1 port=1", "c0", NULL, noop_notify, NULL, NULL, &l),
        0);
    CHECK_EQ_INT(tide_listen_add(l, "c1", noop_notify, NULL), 0);
    CHECK_EQ_INT(tide_listen_add(l, "c2", noop_notify, NULL), 0);
    CHECK_EQ_INT(tide_listen_add(l, "c3", noop_notify, NULL), 0);
    CHECK_EQ_INT(TIDE_LISTEN_MAX_CHANNELS, 4);
    CHECK_EQ_INT(tide_listen_add(l, "c4", noop_notify, NULL), TIDE_ETOOBIG);
    tide_listen_free(l);
    ev_loop_destroy(loop);
}

/* ---- against a real Postgres (TIDE_TEST_PG_DSN) ---------------------------------------- */

static const char *live_dsn(void)
{
    const char *dsn = getenv("TIDE_TEST_PG_DSN");
    if (!dsn || !*dsn) {
        printf("  skip: TIDE_TEST_PG_DSN is not set\n");
        return NULL;
    }
    return dsn;
}

/* Runs sql with n parameters on pg (blocking: the test's own side); returns the first value,
 * "" or "ERROR ..." (static). */
static const char *sqln(PGconn *pg, const char *sql, int n, const char *const *params)
{
    static char out[256];
    out[0] = '\0';
    PGresult *res = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK && PQntuples(res) > 0 && PQnfields(res) > 0)
        snprintf(out, sizeof out, "%s", PQgetvalue(res, 0, 0));
    else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        snprintf(out, sizeof out, "ERROR %s", PQresultErrorMessage(res));
    PQclear(res);
    return out;
}

static const char *sql1(PGconn *pg, const char *sql, const char *p1)
{
    return sqln(pg, sql, p1 ? 1 : 0, p1 ? &p1 : NULL);
}

TEST(live_notify_and_terminated_backend)
{
    const char *dsn = live_dsn();
    if (!dsn) return;
    PGconn *pg = PQconnectdb(dsn);
    CHECK(PQstatus(pg) == CONNECTION_OK);
    tide__listen_params p;
    CHECK_EQ_INT(tide__listen_params_new(dsn, 0, &p), 0);
    char app[64];
    snprintf(app, sizeof app, "%s", param(&p, "application_name"));
    tide__listen_params_free(&p);

    rec r;
    memset(&r, 0, sizeof r);
    r.loop = ev_loop_new(EVFLAG_AUTO);
    CHECK_EQ_INT(start_rec(&r, dsn, "tide_test_listen", NULL), 0);
    CHECK(run_until(r.loop, &r.nstates, 1, 10));
    CHECK_EQ_INT(r.states[0], 1);

    sql1(pg, "select pg_notify('tide_test_other', 'x/1')", NULL);
    CHECK_STR(sql1(pg, "select pg_notify('tide_test_listen', 'trips/7')", NULL), "");
    CHECK(run_until(r.loop, &r.npayloads, 1, 5));
    run_for(r.loop, 0.1);
    CHECK_EQ_INT(r.npayloads, 1);
    CHECK_STR(r.payloads[0], "trips/7");

    tide_listen_stats st;
    tide_listen_get_stats(r.l, &st);
    char pid[16];
    snprintf(pid, sizeof pid, "%d", st.backend_pid);
    /* The session by its application_name (tide_listen unless the DSN names one) and its
     * backend pid; behind a pooler that pid is the pooler's own, so then every session of
     * that name. */
    const char *args[2] = { pid, app };
    double killed_at = ev_time();
    CHECK_STR(sqln(pg,
                   "select count(*) filter (where pg_terminate_backend(pid)) "
                   "from pg_stat_activity where application_name = $2 and (pid = $1::int "
                   "or not exists (select 1 from pg_stat_activity where pid = $1::int))",
                   2, args),
              "1");
    CHECK(run_until(r.loop, &r.nstates, 3, 10));
    CHECK(r.states[1] == 0 && r.states[2] == 1);
    CHECK(r.state_at[1] - killed_at < 1.0); /* EOF, not a heartbeat */
    tide_listen_get_stats(r.l, &st);
    CHECK_EQ_INT(st.heartbeats_failed, 0);
    CHECK_EQ_INT(st.losses, 1);
    CHECK_EQ_INT(st.connects, 2);
    CHECK(st.backend_pid != atoi(pid));

    CHECK_STR(sql1(pg, "select pg_notify('tide_test_listen', 'trips/*')", NULL), "");
    CHECK(run_until(r.loop, &r.npayloads, 2, 5));
    CHECK_STR(r.payloads[1], "trips/*");
    tide_listen_free(r.l);
    ev_loop_destroy(r.loop);
    PQfinish(pg);
}

/* Runs one statement in its own transaction as `role` (claims with sub when given), the way
 * tide does; returns its first value. */
static const char *as_role(PGconn *pg, const char *role, const char *sub, const char *sql)
{
    static char out[256];
    char claims[160];
    snprintf(claims, sizeof claims, sub ? "{\"role\":\"%s\",\"sub\":\"%s\"}" : "{\"role\":\"%s\"}",
             role, sub);
    sql1(pg, "begin", NULL);
    sql1(pg, "select set_config('request.jwt.claims', $1, true)", claims);
    sql1(pg, "select set_config('role', $1, true)", role);
    snprintf(out, sizeof out, "%s", sql1(pg, sql, sub));
    sql1(pg, "commit", NULL);
    return out;
}

static int count_payload(const rec *r, const char *want)
{
    int n = 0;
    for (int i = 0; i < r->npayloads; i++)
        if (strcmp(r->payloads[i], want) == 0) n++;
    return n;
}

/* Runs the loop until `want` was received n times (others may write meanwhile: their
 * notifications are ignored) or 5 s pass. */
static int wait_payload(rec *r, const char *want, int n)
{
    double end = ev_time() + 5;
    while (count_payload(r, want) < n && ev_time() < end) {
        int seen = r->npayloads;
        (void)run_until(r->loop, &r->npayloads, seen + 1, end - ev_time());
    }
    return count_payload(r, want) >= n;
}

/* 007's triggers as role authenticated under RLS, with a user of its own (removed after):
 * one key per row, the table wildcard past 64 keys, cascades included. Tolerates other
 * writers on the database. */
TEST(live_trigger_payloads)
{
    const char *dsn = live_dsn();
    if (!dsn) return;
    PGconn *pg = PQconnectdb(dsn);
    CHECK(PQstatus(pg) == CONNECTION_OK);
    /* pg_trigger, not tide_meta: the login role (authenticator) has no USAGE there */
    if (strcmp(sql1(pg,
                    "select exists (select 1 from pg_trigger where tgname = "
                    "'tide_cache_upd' and tgrelid = to_regclass('public.search_history'))",
                    NULL),
               "t")) {
        printf("  skip: db/migrations/007_cache_notify.sql is not applied\n");
        PQfinish(pg);
        return;
    }
    char uid[40], user_tag[64], trip_tag[64];
    snprintf(uid, sizeof uid, "%s", sql1(pg, "select gen_random_uuid()", NULL));
    snprintf(user_tag, sizeof user_tag, "users/%s", uid);
    rec r;
    memset(&r, 0, sizeof r);
    r.loop = ev_loop_new(EVFLAG_AUTO);
    CHECK_EQ_INT(start_rec(&r, dsn, "tide_cache", NULL), 0);
    CHECK(run_until(r.loop, &r.nstates, 1, 10));

    const char *A = "authenticated";
    CHECK_STR(as_role(pg, A, uid,
                      "insert into public.users (id, email) values "
                      "($1::uuid, $1::text || '@listen.test') returning 'ok'"),
              "ok");
    CHECK(wait_payload(&r, user_tag, 1));

    char trip[32];
    snprintf(trip, sizeof trip, "%s",
             as_role(pg, A, uid,
                     "insert into public.trips (name, "
                     "destination) select 'l', $1 returning id"));
    CHECK(atoi(trip) > 0);
    snprintf(trip_tag, sizeof trip_tag, "trips/%s", trip);
    CHECK(wait_payload(&r, trip_tag, 1));

    /* under RLS only the caller's own trips are touched, so only they are announced */
    as_role(pg, A, uid, "update public.trips set name = 'm' where $1 <> ''");
    CHECK(wait_payload(&r, trip_tag, 2));

    int before = count_payload(&r, "search_history/*");
    as_role(pg, A, uid,
            "insert into public.search_history (search_type, query) "
            "select $1, '{}' from generate_series(1, 1000)");
    as_role(pg, A, uid,
            "update public.search_history set query = '{\"a\":1}' "
            "where search_type = $1");
    CHECK(wait_payload(&r, "search_history/*", before + 2)); /* one per statement */

    /* cleanup as service_role: the cascade announces the trip and the searches too */
    before = count_payload(&r, "search_history/*");
    as_role(pg, "service_role", uid, "delete from public.users where id = $1");
    CHECK(wait_payload(&r, user_tag, 2));
    CHECK(wait_payload(&r, trip_tag, 3));
    CHECK(wait_payload(&r, "search_history/*", before + 1));
    CHECK_STR(as_role(pg, "service_role", uid, "select count(*) from public.users where id = $1"),
              "0");
    for (int i = 0; i < r.npayloads; i++) {
        size_t t = 0;
        CHECK_EQ_INT(split(r.payloads[i], &t), 0);
    }
    tide_listen_free(r.l);
    ev_loop_destroy(r.loop);
    PQfinish(pg);
}

TEST_LIST_BEGIN
TEST_ENTRY(channel_names_are_plain_identifiers)
TEST_ENTRY(payloads_split_into_table_and_key)
TEST_ENTRY(parameters_name_the_session_unless_the_dsn_does)
TEST_ENTRY(start_refuses_bad_arguments)
TEST_ENTRY(notifications_in_the_heartbeat_packet_are_delivered)
TEST_ENTRY(eof_ends_the_session_at_once_and_it_comes_back)
TEST_ENTRY(a_frozen_server_fails_the_heartbeat)
TEST_ENTRY(a_silent_server_times_the_connect_out_without_a_state_call)
TEST_ENTRY(nothing_answers_and_nothing_is_reported)
TEST_ENTRY(free_from_inside_the_up_callback)
TEST_ENTRY(free_from_inside_the_notify_callback)
TEST_ENTRY(added_channels_share_the_session_and_get_their_own_notifications)
TEST_ENTRY(at_most_four_channels)
TEST_ENTRY(live_notify_and_terminated_backend)
TEST_ENTRY(live_trigger_payloads)
TEST_LIST_END
