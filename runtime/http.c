/* http.c - HTTP/1.1 server on libev with the nodejs http_parser (see http.h).
 *
 * One `conn` per socket embeds its watchers (read, write, one timer) and is recovered from
 * them with container_of. Its state is derived from a few fields and applied to the watchers
 * by one function, conn_update():
 *
 *   idle     no request bytes yet          read on, idle timer (not refreshed by stray bytes)
 *   reading  a request has begun           read on, read timer from its first byte (408)
 *   busy     request with the handler      read on only to notice a disconnect (abort)
 *   writing  response bytes queued         write on, stall timer refreshed on progress
 *   closing  last response flushed         shutdown(SHUT_WR), discard input briefly, close
 *
 * Requests are answered strictly one at a time: while one is with the handler, later
 * pipelined bytes are only buffered (bounded), and parsing resumes after the response is
 * written - from the next loop pass (an ev_prepare watcher) when the response came later
 * from another callback, so the handler is never called from inside tide_http_respond().
 *
 * Syntax: http_parser (Debian builds it non-strict) takes a bare LF as a line end, any byte
 * after a CR that ends the head or a chunk-size line, any two bytes after chunk data, blanks
 * in header names and folded (obs-fold) lines. tide answers all of that with 400, as strict
 * servers do. The data callbacks see the url, names, values and body; every other byte the
 * parser consumes (the rest of the request line, ':' and blanks, line ends, chunk-size lines,
 * the trailer) passes through scan() exactly once, in order, which walks the message's
 * sections and insists on CRLF, no NUL and no line starting with a blank:
 *
 *   head              LINE -CRLF-> FIELD -CRLF-> HEAD_END        (a field name: FIELD -> LINE)
 *   Content-Length    HEAD_END -> DATA -> END                      (no raw byte inside DATA)
 *   chunked           HEAD_END -> SIZE -CRLF-> SIZE_END -> DATA -> DATA_END -CRLF-> SIZE ...
 *   last chunk        SIZE_END -> TFIELD -name-> TLINE -CRLF-> TFIELD -CRLF-> END
 *
 * The trailer (fields after the last chunk) is checked and counted against max_header_bytes
 * with the head, then dropped: it never becomes a header, and never part of the body.
 *
 * Memory: an idle keep-alive connection owns only its conn struct (a few hundred bytes).
 * Reads land in one scratch buffer per server and are parsed in place; only the bytes left
 * over after a complete request are copied into a per-connection buffer (at most RBUF_CAP).
 * Every request gets its own arena holding url, headers and body, so the pointers handed to
 * the handler stay valid until tide_http_respond(), even after the client has gone away. A
 * body grows the arena as its bytes arrive (never ahead of them, whatever Content-Length
 * says), and every byte of that growth is first charged to the server's in-flight body budget
 * (max_inflight_body_bytes; over it -> 503 and close) until the request is answered or its
 * connection closes. Open connections are counted per client address in a small hash table
 * (an entry lives while its address has connections); over max_connections_per_client a new
 * connection is reset at accept.
 *
 * Output goes straight to the socket; what it does not take waits in the connection's output
 * buffer, whose whole allocation is charged to the server's unsent budget (max_unsent_bytes)
 * until the client has read all of it. Connections holding such a buffer sit on one list
 * ordered by when their client last read anything (or their answer was queued), least recent
 * first. When an answer is queued past the budget, shed() resets connections from the head of
 * that list - the slowest readers - until the others fit it again; never the connection just
 * answered, nor one whose request is with the handler. While a connection has output waiting,
 * its pipelined requests are not parsed: nothing more is produced for a client that does not
 * read. A buffer of OBUF_MAP_MIN or more is mapped for itself rather than taken from malloc,
 * so what a reset (or the last byte read) frees goes back to the system at once: from malloc's
 * heap, buffers of a few MiB freed in turn would leave holes that keep tide's resident memory
 * at its high-water mark.
 *
 * Closing never frees inside a callback chain: closed conns go on a reap list that is freed
 * when the outermost http callback (or public call) returns (`depth` counts them).
 * No logging here: outcomes are counted in tide_http_stats. */
#include "http.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <http_parser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

enum {
    SCRATCH_SIZE = 64 * 1024, /* one read; shared by all connections of a server */
    RBUF_CAP = 64 * 1024,     /* most input buffered while a request is with the handler */
    ARENA_MIN = 1024,
    HDRS_MIN = 16,
    HDRS_MAX = 128,            /* header fields per request (more -> 431): slots <= 4 KiB */
    CLIENTS_MIN = 64,          /* first size of the per-client table (a power of two) */
    OBUF_MAP_MIN = 128 * 1024, /* output buffers this large are pages of their own (mmap) */
};
#define LINGER_TIMEOUT        2.0  /* how long to drain input before closing after an error */
#define ACCEPT_RETRY          0.25 /* pause after EMFILE and friends */
#define DEFAULT_BODY_BUDGET   ((size_t)64 * 1024 * 1024)
#define DEFAULT_UNSENT_BUDGET ((size_t)64 * 1024 * 1024)
#define DEFAULT_PASS_BUDGET   0.005 /* seconds of connection reads per loop pass */
#define PASS_MIN_READS        16    /* served per pass whatever the budget: progress */

enum { TM_NONE, TM_IDLE, TM_READ, TM_WRITE, TM_LINGER };
enum { CB_NONE, CB_URL, CB_FIELD, CB_VALUE };
enum { ERR_NONE, ERR_CLOSE, ERR_BAD, ERR_HEADERS, ERR_BODY, ERR_EXPECT, ERR_BUSY, ERR_CODING };
/* Sections of a message, as scan() walks its raw bytes (see the header comment). */
enum {
    SC_LINE,
    SC_FIELD,
    SC_HEAD_END,
    SC_DATA,
    SC_SIZE,
    SC_SIZE_END,
    SC_DATA_END,
    SC_TFIELD,
    SC_TLINE,
    SC_END
};

typedef struct conn conn;
typedef struct hreq hreq;
typedef struct client_slot client_slot;

/* While parsing, header slots hold arena offsets; on completion they become pointers. */
typedef union hslot {
    struct {
        size_t no, nl, vo, vl;
    } off;
    tide_http_header h;
} hslot;
_Static_assert(sizeof(hslot) == sizeof(tide_http_header), "hslot must overlay the header");

struct hreq {
    tide_http_req pub; /* first member: the handler's pointer is ours */
    conn *c;           /* NULL once the client is gone (or the response is sent) */
    char *arena;
    size_t alen, acap;
    hslot *slots;
    int nslots, cap_slots;
    size_t url_off, url_len, body_off;
    size_t body_end;      /* the arena never needs more: body_off + allowed body + NUL */
    size_t charged;       /* arena bytes charged to the server's in-flight body budget */
    size_t hdr_prev;      /* raw head bytes in earlier reads; the whole head once done */
    size_t trailer_bytes; /* raw bytes of the trailer so far */
    uint64_t chunk_left;  /* data bytes still due in the current chunk */
    const char *scan;     /* raw bytes before this (in the current read) are checked */
    uint8_t sect;         /* SC_*: where scan() is in the message */
    unsigned last_cb : 2, headers_done : 1, force_close : 1, head : 1, ka10 : 1, chunked : 1,
        cr : 1;
};

struct conn {
    ev_io rio, wio;
    ev_timer timer;
    tide_http_server *srv;
    conn *prev, *next;      /* srv->conns while open, srv->reap once closed */
    conn *qnext;            /* srv->ready */
    conn *pprev, *pnext;    /* srv->park_head..park_tail while parked */
    conn *oprev, *onext;    /* srv->out_head..out_tail while it holds output (held > 0) */
    hreq *cur;              /* request being parsed or with the handler */
    client_slot *client;    /* its address's count (NULL: not counted) */
    const char *chunk_base; /* the bytes given to the current parser call */
    const char *chunk_end;
    char *rbuf; /* unparsed input: [rpos, rlen) */
    char *obuf; /* unsent output: [opos, olen) */
    uint32_t rpos, rlen, rcap, opos, olen, ocap;
    uint32_t held; /* ocap as charged to srv->unsent_bytes */
    http_parser parser;
    int fd;
    uint8_t tmode, err;
    unsigned busy : 1, closed : 1, closing : 1, linger : 1, lingering : 1, eof : 1, in_parse : 1,
        queued : 1, parked : 1, omapped : 1;
};

/* Open connections of one client address (IPv4 as ::ffff:a.b.c.d); freed at zero. */
struct client_slot {
    client_slot *next;
    uint32_t count;
    unsigned char addr[16];
};

struct tide_http_server {
    struct ev_loop *loop;
    ev_io accept_io;
    ev_timer accept_retry;
    ev_prepare prepare;
    ev_check unpark; /* serves parked connections first in a pass (EV_MAXPRI) */
    ev_idle spin;    /* while any are parked: the loop polls without blocking */
    conn *park_head, *park_tail;
    unsigned pass_iter; /* ev_iteration() of the pass pass_reads counts */
    int pass_reads;
    int lfd, port;
    tide_http_limits limits;
    tide_http_handler handler;
    void *arg;
    conn *conns, *ready, *reap;
    char *scratch;
    int depth;
    unsigned stopped : 1, free_requested : 1, at_max : 1, backoff : 1;
    size_t body_bytes;         /* charged by requests not yet answered (<= the budget) */
    size_t unsent_bytes;       /* output buffers held by connections (see shed()) */
    conn *out_head, *out_tail; /* connections holding output, least recent reader first */
    client_slot **clients;     /* per-client counts: nbuckets chains (a power of two) */
    size_t nbuckets, nclients;
    uint64_t seed[2]; /* keys the client hash: addresses cannot be aimed at a chain */
    tide_http_stats stats;
};

static int on_message_begin(http_parser *p);
static int on_url(http_parser *p, const char *at, size_t len);
static int on_header_field(http_parser *p, const char *at, size_t len);
static int on_header_value(http_parser *p, const char *at, size_t len);
static int on_headers_complete(http_parser *p);
static int on_body(http_parser *p, const char *at, size_t len);
static int on_message_complete(http_parser *p);
static int on_chunk_header(http_parser *p);

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_chunk_header = on_chunk_header,
};

static void conn_close(conn *c);
static void conn_update(conn *c);
static void conn_error(conn *c, int status, const char *code, const char *msg, const char *extra);

/* ---- server re-entrancy guard ------------------------------------------------------- */

static void srv_destroy(tide_http_server *s);

static void srv_enter(tide_http_server *s) { s->depth++; }

/* Gives c's output buffer back (ocap and olen/opos left to the caller). */
static void obuf_free(conn *c)
{
    if (c->omapped) munmap(c->obuf, c->ocap);
    else free(c->obuf);
    c->obuf = NULL;
    c->omapped = 0;
}

/* Grows c's output buffer to at least cap bytes, keeping [0, olen). From OBUF_MAP_MIN on it
 * is a mapping of whole pages (see the header comment). 0 or TIDE_ENOMEM (unchanged). */
static int obuf_grow(conn *c, size_t cap)
{
    char *b;
    if (cap < OBUF_MAP_MIN && !c->omapped) {
        if (!(b = realloc(c->obuf, cap))) return TIDE_ENOMEM;
    } else {
        size_t page = 4096;
        cap = (cap + page - 1) / page * page;
        if (cap > UINT32_MAX) return TIDE_ENOMEM;
        if (c->omapped) {
            b = mremap(c->obuf, c->ocap, cap, MREMAP_MAYMOVE);
        } else {
            b = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (b != MAP_FAILED && c->obuf) {
                memcpy(b, c->obuf, c->olen);
                free(c->obuf);
            }
        }
        if (b == MAP_FAILED) return TIDE_ENOMEM;
        c->omapped = 1;
    }
    c->obuf = b;
    c->ocap = (uint32_t)cap;
    return 0;
}

static void reap(tide_http_server *s)
{
    conn *c;
    while ((c = s->reap)) {
        s->reap = c->next;
        free(c->rbuf);
        obuf_free(c);
        free(c);
    }
}

/* Leaves an http callback or public call; the outermost one frees closed connections, and
 * the server itself when tide_http_free() was called from inside a callback. */
static void srv_leave(tide_http_server *s)
{
    if (--s->depth > 0) return;
    reap(s);
    if (s->free_requested) srv_destroy(s);
}

/* ---- connections per client address ------------------------------------------------------ */

/* The table key of a peer: its IPv6 address, IPv4 mapped into IPv6. Returns 0, or -1 for a
 * peer that is not an IP address (a Unix socket), which is not counted. */
static int client_key(const struct sockaddr_storage *ss, unsigned char key[16])
{
    if (ss->ss_family == AF_INET) {
        static const unsigned char v4mapped[12] = { [10] = 0xff, [11] = 0xff };
        memcpy(key, v4mapped, 12);
        memcpy(key + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
        return 0;
    }
    if (ss->ss_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
        return 0;
    }
    return -1;
}

static size_t client_bucket(const tide_http_server *s, const unsigned char key[16])
{
    uint64_t a, b, h;
    memcpy(&a, key, 8);
    memcpy(&b, key + 8, 8);
    h = (a ^ s->seed[0]) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 31;
    h = (h ^ b ^ s->seed[1]) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    return (size_t)h & (s->nbuckets - 1);
}

/* Doubles the bucket array (keeps chains short: at most one entry per bucket on average).
 * On failure the table stays as it was, only more crowded. */
static void client_grow(tide_http_server *s)
{
    size_t n = s->nbuckets ? s->nbuckets * 2 : CLIENTS_MIN, old = s->nbuckets;
    client_slot **b = calloc(n, sizeof *b), **ob = s->clients;
    if (!b) return;
    s->clients = b;
    s->nbuckets = n;
    for (size_t i = 0; i < old; i++) {
        for (client_slot *e = ob[i], *next; e; e = next) {
            next = e->next;
            size_t k = client_bucket(s, e->addr);
            e->next = b[k];
            b[k] = e;
        }
    }
    free(ob);
}

/* The slot of key, created with count 0 if new; NULL when out of memory. */
static client_slot *client_get(tide_http_server *s, const unsigned char key[16])
{
    if (s->nclients >= s->nbuckets) client_grow(s);
    if (!s->nbuckets) return NULL;
    size_t k = client_bucket(s, key);
    for (client_slot *e = s->clients[k]; e; e = e->next)
        if (memcmp(e->addr, key, 16) == 0) return e;
    client_slot *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    memcpy(e->addr, key, 16);
    e->next = s->clients[k];
    s->clients[k] = e;
    s->nclients++;
    s->stats.clients = (long long)s->nclients;
    return e;
}

/* One connection of e's address is gone (or never came); frees e at zero. */
static void client_put(tide_http_server *s, client_slot *e)
{
    if (!e || (e->count && --e->count)) return;
    for (client_slot **pp = &s->clients[client_bucket(s, e->addr)]; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    free(e);
    s->nclients--;
    s->stats.clients = (long long)s->nclients;
}

/* ---- request arena --------------------------------------------------------------------- */

static void hreq_free(hreq *r)
{
    if (!r) return;
    free(r->arena);
    free(r->slots);
    free(r);
}

/* The request leaves its connection (answered, or the connection closed): what its body
 * held no longer counts against the budget (see http.h). */
static void hreq_uncharge(tide_http_server *s, hreq *r)
{
    if (!r) return;
    s->body_bytes -= r->charged;
    s->stats.body_bytes = (long long)s->body_bytes;
    r->charged = 0;
}

static int arena_reserve(hreq *r, size_t more)
{
    if (r->acap - r->alen >= more) return 0;
    size_t cap = r->acap ? r->acap : ARENA_MIN;
    while (cap - r->alen < more) {
        if (cap > SIZE_MAX / 2) return TIDE_ENOMEM;
        cap *= 2;
    }
    char *a = realloc(r->arena, cap);
    if (!a) return TIDE_ENOMEM;
    r->arena = a;
    r->acap = cap;
    return 0;
}

static int arena_append(hreq *r, const char *data, size_t len)
{
    if (arena_reserve(r, len) != 0) return TIDE_ENOMEM;
    if (len) memcpy(r->arena + r->alen, data, len);
    r->alen += len;
    return 0;
}

static int arena_nul(hreq *r) { return arena_append(r, "", 1); }

/* ---- parser callbacks ------------------------------------------------------------------ */

static int fail(conn *c, int err)
{
    c->err = (uint8_t)err;
    return -1;
}

/* Makes room for `more` body bytes (and the NUL after the body). The arena grows by doubling,
 * never past body_end, and the growth is charged to the server's budget before it is taken.
 * Returns 0, or -1 with ERR_BUSY (over the budget) or ERR_CLOSE (out of memory). */
static int body_room(conn *c, hreq *r, size_t more)
{
    tide_http_server *s = c->srv;
    size_t need = r->alen + more + 1;
    if (need <= r->acap) return 0;
    size_t cap = r->acap * 2 < r->body_end ? r->acap * 2 : r->body_end;
    if (cap < need) cap = need;
    size_t grow = cap - r->acap;
    if (grow > s->limits.max_inflight_body_bytes - s->body_bytes) return fail(c, ERR_BUSY);
    char *a = realloc(r->arena, cap);
    if (!a) return fail(c, ERR_CLOSE);
    r->arena = a;
    r->acap = cap;
    r->charged += grow;
    s->body_bytes += grow;
    s->stats.body_bytes = (long long)s->body_bytes;
    return 0;
}

/* Raw bytes of request line and headers so far, from where this message began. */
static int header_room(conn *c, const char *at, size_t len)
{
    size_t raw = c->cur->hdr_prev + (size_t)(at + len - c->chunk_base);
    return raw <= c->srv->limits.max_header_bytes ? 0 : fail(c, ERR_HEADERS);
}

/* The trailer counts against max_header_bytes together with the head. */
static int trailer_room(conn *c, hreq *r, size_t len)
{
    r->trailer_bytes += len;
    if (r->hdr_prev + r->trailer_bytes > c->srv->limits.max_header_bytes)
        return fail(c, ERR_HEADERS);
    return 0;
}

/* Checks raw bytes [from, to) in order (see the header comment). Stops after a byte that
 * completes a section (HEAD_END, SIZE_END, END). Returns the bytes checked, or -1 (c->err
 * set): a bare CR or LF, a NUL, a blank starting a line, or a byte where none may be. */
static long scan(conn *c, hreq *r, const char *from, const char *to)
{
    const char *p = from;
    while (p < to) {
        unsigned char b = (unsigned char)*p++;
        int sect = r->sect;
        if ((sect == SC_TFIELD || sect == SC_TLINE) && trailer_room(c, r, 1) != 0) return -1;
        if (b == '\0') return fail(c, ERR_BAD);
        if (r->cr) {
            if (b != '\n') return fail(c, ERR_BAD);
            r->cr = 0;
            switch (sect) {
            case SC_LINE: r->sect = SC_FIELD; break;
            case SC_FIELD: r->sect = SC_HEAD_END; return p - from;
            case SC_SIZE: r->sect = SC_SIZE_END; return p - from;
            case SC_DATA_END: r->sect = SC_SIZE; break;
            case SC_TLINE: r->sect = SC_TFIELD; break;
            default: r->sect = SC_END; return p - from; /* SC_TFIELD, the only one left */
            }
            continue;
        }
        switch (sect) {
        case SC_LINE:
        case SC_SIZE:
        case SC_TLINE:
            if (b == '\n') return fail(c, ERR_BAD); /* bare LF */
            if (b == '\r') r->cr = 1;
            break; /* anything else there the parser has vetted */
        case SC_FIELD:
        case SC_DATA_END:
        case SC_TFIELD:
            if (b != '\r')
                return fail(c, ERR_BAD); /* obs-fold, or chunk data not followed by CRLF */
            r->cr = 1;
            break;
        default: return fail(c, ERR_BAD); /* no raw byte belongs here */
        }
    }
    return p - from;
}

/* Checks the raw bytes between the last checked one and `at`, where a data callback's
 * len bytes start, then moves past those. The first callback (the url) starts the check. */
static int scan_to(conn *c, hreq *r, const char *at, size_t len)
{
    if (r->scan) {
        long n = at >= r->scan ? scan(c, r, r->scan, at) : -1;
        if (n < 0) return c->err ? -1 : fail(c, ERR_BAD);
        if (r->scan + n != at) return fail(c, ERR_BAD); /* a section ended before these bytes */
    }
    r->scan = at + len;
    return 0;
}

/* Checks raw bytes up to the end of the current section (the parser is on its last byte,
 * so it lies in this read). */
static int scan_until(conn *c, hreq *r, int sect)
{
    if (!r->scan) return fail(c, ERR_BAD);
    long n = scan(c, r, r->scan, c->chunk_end);
    if (n < 0) return -1;
    r->scan += n;
    return r->sect == sect ? 0 : fail(c, ERR_BAD);
}

static int is_tchar(unsigned char ch)
{
    if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) return 1;
    switch (ch) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~': return 1;
    }
    return 0;
}

/* A field name is a token; a value has no control character but HTAB (RFC 9110 5.1, 5.5). */
static int name_ok(const char *at, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_tchar((unsigned char)at[i])) return 0;
    return 1;
}

static int value_ok(const char *at, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)at[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return 0;
    }
    return 1;
}

static int on_message_begin(http_parser *p)
{
    conn *c = p->data;
    hreq *r = calloc(1, sizeof *r);
    if (!r) return fail(c, ERR_CLOSE);
    r->c = c;
    r->sect = SC_LINE;
    c->cur = r;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    hreq *r = c->cur;
    if (header_room(c, at, len) != 0 || scan_to(c, r, at, len) != 0) return -1;
    for (size_t i = 0; i < len; i++) /* the parser lets HTAB and FF through */
        if ((unsigned char)at[i] <= ' ' || at[i] == 0x7f) return fail(c, ERR_BAD);
    if (arena_append(r, at, len) != 0) return fail(c, ERR_CLOSE);
    r->url_len += len;
    r->last_cb = CB_URL;
    return 0;
}

/* A trailer field is checked and counted, never kept. */
static int trailer_field(conn *c, hreq *r, const char *at, size_t len, int name)
{
    if (scan_to(c, r, at, len) != 0) return -1;
    if (!name && !len) return 0; /* an empty value, reported at the start of the next line */
    if (name ? r->sect != SC_TFIELD && r->sect != SC_TLINE : r->sect != SC_TLINE)
        return fail(c, ERR_BAD); /* a value at the start of a line: obs-fold */
    if (!(name ? name_ok(at, len) : value_ok(at, len))) return fail(c, ERR_BAD);
    r->sect = SC_TLINE;
    return trailer_room(c, r, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    hreq *r = c->cur;
    if (r->headers_done) return trailer_field(c, r, at, len, 1);
    if (header_room(c, at, len) != 0 || scan_to(c, r, at, len) != 0) return -1;
    if ((r->sect != SC_FIELD && r->sect != SC_LINE) || !name_ok(at, len)) return fail(c, ERR_BAD);
    r->sect = SC_LINE;
    if (r->last_cb != CB_FIELD) {
        if (r->nslots == HDRS_MAX) return fail(c, ERR_HEADERS);
        if (arena_nul(r) != 0) /* ends the url or the previous value */
            return fail(c, ERR_CLOSE);
        if (r->nslots == r->cap_slots) {
            int cap = r->cap_slots ? r->cap_slots * 2 : HDRS_MIN;
            hslot *s = realloc(r->slots, (size_t)cap * sizeof *s);
            if (!s) return fail(c, ERR_CLOSE);
            r->slots = s;
            r->cap_slots = cap;
        }
        hslot *h = &r->slots[r->nslots++];
        h->off.no = r->alen;
        h->off.nl = h->off.vo = h->off.vl = 0;
        r->last_cb = CB_FIELD;
    }
    size_t from = r->alen;
    if (arena_append(r, at, len) != 0) return fail(c, ERR_CLOSE);
    for (size_t i = from; i < r->alen; i++)
        if (r->arena[i] >= 'A' && r->arena[i] <= 'Z')
            r->arena[i] = (char)(r->arena[i] + ('a' - 'A'));
    r->slots[r->nslots - 1].off.nl += len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    hreq *r = c->cur;
    if (r->headers_done) return trailer_field(c, r, at, len, 0);
    if (header_room(c, at, len) != 0 || scan_to(c, r, at, len) != 0) return -1;
    /* SC_FIELD here: a folded line - unless the value is empty, which http_parser reports
     * (length 0) at the start of the next line */
    if ((r->sect != SC_LINE && len) || !r->nslots || !value_ok(at, len)) return fail(c, ERR_BAD);
    hslot *h = &r->slots[r->nslots - 1];
    if (r->last_cb != CB_VALUE) {
        if (arena_nul(r) != 0) /* ends the name */
            return fail(c, ERR_CLOSE);
        h->off.vo = r->alen;
        r->last_cb = CB_VALUE;
    }
    if (arena_append(r, at, len) != 0) return fail(c, ERR_CLOSE);
    h->off.vl += len;
    return 0;
}

/* Finds a header while parsing (slots still hold offsets). */
static const char *find_slot(hreq *r, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (int i = 0; i < r->nslots; i++) {
        hslot *h = &r->slots[i];
        if (h->off.nl == n && memcmp(r->arena + h->off.no, name, n) == 0) {
            *len = h->off.vl;
            return r->arena + h->off.vo;
        }
    }
    return NULL;
}

/* How often header `name` occurs (slots still hold offsets). */
static int count_slot(hreq *r, const char *name)
{
    size_t n = strlen(name);
    int k = 0;
    for (int i = 0; i < r->nslots; i++)
        k += r->slots[i].off.nl == n && memcmp(r->arena + r->slots[i].off.no, name, n) == 0;
    return k;
}

/* The head says where the request goes and how long it is, unambiguously: HTTP/1.1 has one
 * Host; at most one Content-Length, Transfer-Encoding and Authorization, never the first two
 * together (RFC 9112 3.2, 6.3). */
static int head_ok(hreq *r, const http_parser *p)
{
    int host = count_slot(r, "host"), len = count_slot(r, "content-length");
    int te = count_slot(r, "transfer-encoding");
    if (host > 1 || len > 1 || te > 1 || (len && te) || count_slot(r, "authorization") > 1)
        return 0;
    return host || p->http_minor == 0;
}

static int send_bytes(conn *c, const struct iovec *iov, int n);

static int on_headers_complete(http_parser *p)
{
    conn *c = p->data;
    hreq *r = c->cur;
    tide_http_server *s = c->srv;
    if (scan_until(c, r, SC_HEAD_END) != 0) return -1;
    r->hdr_prev += (size_t)(r->scan - c->chunk_base); /* now the whole head */
    if (r->hdr_prev > s->limits.max_header_bytes) return fail(c, ERR_HEADERS);
    if (arena_nul(r) != 0) return fail(c, ERR_CLOSE);
    r->headers_done = 1;

    if (p->http_major != 1 || !head_ok(r, p))
        return fail(c, ERR_BAD); /* http_parser takes any digits; we speak 1.0 and 1.1 */
    if (p->upgrade) {
        if (p->method == HTTP_CONNECT) return fail(c, ERR_BAD);
        /* An Upgrade offer (h2c, websocket) is declined by answering normally; what
         * follows on the wire might be another protocol, so close afterwards. */
        r->force_close = 1;
    }
    int chunked = (p->flags & F_CHUNKED) != 0;
    int has_len = !chunked && (p->flags & F_CONTENTLENGTH) && p->content_length != ULLONG_MAX;
    size_t tlen;
    const char *te = find_slot(r, "transfer-encoding", &tlen);
    while (te && tlen && (te[tlen - 1] == ' ' || te[tlen - 1] == '\t')) tlen--;
    if (te && (tlen != 7 || strncasecmp(te, "chunked", 7) != 0)) {
        /* RFC 9112 6.3: not ending in chunked, the length is unknown (400); "gzip, chunked"
         * is a coding tide does not undo (501): the body would reach the handler encoded. */
        if (!chunked || tlen < 7 || strncasecmp(te + tlen - 7, "chunked", 7) != 0)
            return fail(c, ERR_BAD);
        return fail(c, ERR_CODING);
    }
    if (has_len && p->content_length > s->limits.max_body_bytes)
        return fail(c, ERR_BODY); /* before a single body byte is read */

    size_t elen;
    const char *expect = find_slot(r, "expect", &elen);
    if (expect) {
        if (elen != 12 || strncasecmp(expect, "100-continue", 12) != 0) return fail(c, ERR_EXPECT);
        if (p->http_major == 1 && p->http_minor >= 1 &&
            (chunked || (has_len && p->content_length))) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            struct iovec iov = { (void *)cont, sizeof cont - 1 };
            if (send_bytes(c, &iov, 1) != 0) return fail(c, ERR_CLOSE);
        }
    }

    r->pub.keep_alive = http_should_keep_alive(p);
    r->ka10 = r->pub.keep_alive && p->http_major == 1 && p->http_minor == 0;
    r->head = p->method == HTTP_HEAD;
    r->chunked = chunked;
    r->body_off = r->alen;
    /* No room is taken for the body yet: it grows with the bytes that actually arrive. */
    r->body_end = r->alen + (has_len ? (size_t)p->content_length : s->limits.max_body_bytes) + 1;
    r->sect = chunked ? SC_SIZE : has_len && p->content_length ? SC_DATA : SC_END;
    return 0;
}

static int on_chunk_header(http_parser *p)
{
    conn *c = p->data;
    hreq *r = c->cur;
    if (scan_until(c, r, SC_SIZE_END) != 0) return -1;
    size_t have = r->alen - r->body_off;
    if (p->content_length > c->srv->limits.max_body_bytes - have) return fail(c, ERR_BODY);
    r->chunk_left = p->content_length;
    r->sect = p->content_length ? SC_DATA : SC_TFIELD;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    hreq *r = c->cur;
    if (scan_to(c, r, at, len) != 0) return -1;
    if (r->sect != SC_DATA || (r->chunked && len > r->chunk_left)) return fail(c, ERR_BAD);
    if (len > c->srv->limits.max_body_bytes - (r->alen - r->body_off)) return fail(c, ERR_BODY);
    if (body_room(c, r, len) != 0) return -1;
    memcpy(r->arena + r->alen, at, len);
    r->alen += len;
    if (r->chunked && (r->chunk_left -= len) == 0) r->sect = SC_DATA_END;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn *c = p->data;
    hreq *r = c->cur;
    if (r->chunked && scan_until(c, r, SC_END) != 0) return -1;
    r->sect = SC_END;
    size_t body_len = r->alen - r->body_off;
    if (arena_nul(r) != 0) /* after a body, body_room() kept a byte for it */
        return fail(c, ERR_CLOSE);

    /* The arena no longer moves: offsets become pointers. */
    char *a = r->arena;
    for (int i = 0; i < r->nslots; i++) {
        hslot *h = &r->slots[i];
        size_t no = h->off.no, nl = h->off.nl, vo = h->off.vo, vl = h->off.vl;
        h->h.name = a + no;
        h->h.name_len = nl;
        h->h.value = vo ? a + vo : "";
        h->h.value_len = vl;
    }
    r->pub.headers = r->nslots ? &r->slots[0].h : NULL;
    r->pub.nheaders = r->nslots;
    r->pub.method = http_method_str((enum http_method)p->method);

    char *url = a + r->url_off;
    size_t ulen = r->url_len;
    char *hash = memchr(url, '#', ulen);
    if (hash) ulen = (size_t)(hash - url);
    char *q = memchr(url, '?', ulen);
    r->pub.path = url;
    r->pub.path_len = q ? (size_t)(q - url) : ulen;
    r->pub.query = q ? q + 1 : "";
    r->pub.query_len = q ? ulen - (size_t)(q + 1 - url) : 0;
    r->pub.body = body_len ? a + r->body_off : "";
    r->pub.body_len = body_len;
    /* keep_alive stays as the head said: a trailer ("Connection: close" in it, say) has no
     * say in it, though http_parser notes its Connection fields too. */
    /* One request at a time: stop here; conn_parse() hands it to the handler. */
    http_parser_pause(p, 1);
    return 0;
}

/* ---- output ---------------------------------------------------------------------------- */

static void out_unlink(conn *c)
{
    tide_http_server *s = c->srv;
    if (c->oprev) c->oprev->onext = c->onext;
    else s->out_head = c->onext;
    if (c->onext) c->onext->oprev = c->oprev;
    else s->out_tail = c->oprev;
    c->oprev = c->onext = NULL;
}

/* Charges c's output buffer (its whole allocation) to the unsent budget and puts c last on
 * the list: called whenever the buffer changes, or the client read some of it. */
static void out_note(conn *c)
{
    tide_http_server *s = c->srv;
    if (c->held) out_unlink(c);
    s->unsent_bytes = s->unsent_bytes - c->held + c->ocap;
    s->stats.unsent_bytes = (long long)s->unsent_bytes;
    c->held = c->ocap;
    if (!c->held) return;
    c->onext = NULL;
    c->oprev = s->out_tail;
    if (s->out_tail) s->out_tail->onext = c;
    else s->out_head = c;
    s->out_tail = c;
}

/* Closes c with a reset: what the kernel still holds for it is dropped too. */
static void conn_reset(conn *c)
{
    struct linger lg = { 1, 0 };
    if (!c->closed) setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    conn_close(c);
}

/* keep has just queued output: while the other connections hold more than the budget, the
 * slowest readers among them are reset (see the header comment). One pass over the list. */
static void shed(tide_http_server *s, conn *keep)
{
    conn *c = s->out_head, *next;
    while (c && s->unsent_bytes - keep->held > s->limits.max_unsent_bytes) {
        next = c->onext;
        if (c != keep && !c->busy && !c->in_parse) {
            s->stats.slow_readers_closed++;
            conn_reset(c); /* unlinks c, touches no other connection */
        }
        c = next;
    }
}

/* Sends what the socket takes now and queues the rest. Never closes: returns TIDE_EIO
 * (peer gone) or TIDE_ENOMEM and lets the caller decide. */
static int send_bytes(conn *c, const struct iovec *iov, int n)
{
    size_t total = 0, sent = 0;
    for (int i = 0; i < n; i++) total += iov[i].iov_len;
    if (c->closed) return TIDE_EIO;
    if (c->olen == c->opos) {
        struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
        ssize_t w;
        do w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        while (w < 0 && errno == EINTR);
        if (w < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) return TIDE_EIO;
            w = 0;
        }
        sent = (size_t)w;
        if (sent == total) return 0;
        c->opos = c->olen = 0;
    }
    size_t rest = total - sent, pending = c->olen - c->opos;
    if (pending + rest > UINT32_MAX) return TIDE_ENOMEM;
    if (c->opos && pending + rest > c->ocap - c->opos) {
        memmove(c->obuf, c->obuf + c->opos, pending);
        c->olen = (uint32_t)pending;
        c->opos = 0;
    }
    if (c->olen + rest > c->ocap && obuf_grow(c, c->olen + rest) != 0) return TIDE_ENOMEM;
    size_t skip = sent;
    for (int i = 0; i < n; i++) {
        size_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        memcpy(c->obuf + c->olen, (const char *)iov[i].iov_base + skip, l - skip);
        c->olen += (uint32_t)(l - skip);
        skip = 0;
    }
    out_note(c);
    shed(c->srv, c);
    return 0;
}

static int header_line_ok(const char *s) { return !s || !strpbrk(s, "\r\n"); }

/* extra headers must be whole "Name: value\r\n" lines with no bare CR or LF */
static int header_block_ok(const char *s)
{
    if (!s) return 1;
    while (*s) {
        const char *eol = strstr(s, "\r\n");
        if (!eol || eol == s || memchr(s, '\n', (size_t)(eol - s)) ||
            memchr(s, '\r', (size_t)(eol - s)) || !memchr(s, ':', (size_t)(eol - s)))
            return 0;
        s = eol + 2;
    }
    return 1;
}

/* Writes a whole response (head and body) to c. */
static int send_response(conn *c, int status, int head_only, int ka10, int keep, const char *ctype,
                         const char *extra, const char *body, size_t blen, const char *id)
{
    char head[160], tail[96];
    struct iovec iov[11];
    int n = 0, no_body = status < 200 || status == 204 || status == 304;
    /* formatted by hand: once per response (no printf on the hot path) */
    const char *reason = tide_http_reason(status);
    size_t rl = strlen(reason);
    if (rl > sizeof head - 40) rl = sizeof head - 40;
    memcpy(head, "HTTP/1.1 ", 9);
    head[9] = (char)('0' + status / 100 % 10);
    head[10] = (char)('0' + status / 10 % 10);
    head[11] = (char)('0' + status % 10);
    head[12] = ' ';
    memcpy(head + 13, reason, rl);
    memcpy(head + 13 + rl, "\r\nServer: tide\r\n", 16);
    int hl = (int)(13 + rl + 16);
    iov[n++] = (struct iovec){ head, (size_t)hl };
    if (ctype) {
        iov[n++] = (struct iovec){ "Content-Type: ", 14 };
        iov[n++] = (struct iovec){ (void *)ctype, strlen(ctype) };
        iov[n++] = (struct iovec){ "\r\n", 2 };
    }
    int tl = 0;
    if (!no_body) {
        memcpy(tail, "Content-Length: ", 16);
        tl = 16 + tide_utoa(blen, tail + 16);
        memcpy(tail + tl, "\r\n", 2);
        tl += 2;
    }
    if (!keep) {
        memcpy(tail + tl, "Connection: close\r\n", 19);
        tl += 19;
    } else if (ka10) {
        memcpy(tail + tl, "Connection: keep-alive\r\n", 24);
        tl += 24;
    }
    iov[n++] = (struct iovec){ tail, (size_t)tl };
    if (id && *id) {
        iov[n++] = (struct iovec){ "X-Request-Id: ", 14 };
        iov[n++] = (struct iovec){ (void *)id, strlen(id) };
        iov[n++] = (struct iovec){ "\r\n", 2 };
    }
    if (extra && *extra) iov[n++] = (struct iovec){ (void *)extra, strlen(extra) };
    iov[n++] = (struct iovec){ "\r\n", 2 };
    if (blen && !no_body && !head_only) iov[n++] = (struct iovec){ (void *)body, blen };
    return send_bytes(c, iov, n);
}

/* Answers with a JSON error (extra: header lines or NULL) and closes once it is written
 * (draining input meanwhile so the client sees the response rather than a reset). Frees a
 * partly parsed request. */
static void conn_error(conn *c, int status, const char *code, const char *msg, const char *extra)
{
    char body[192];
    int bl = snprintf(body, sizeof body, "{\"code\":\"%s\",\"message\":\"%s\"}", code, msg);
    hreq_uncharge(c->srv, c->cur);
    hreq_free(c->cur);
    c->cur = NULL;
    c->closing = 1;
    c->linger = 1;
    if (send_response(c, status, 0, 0, 0, "application/json", extra, body, (size_t)bl, NULL) != 0)
        conn_close(c);
}

/* ---- connection lifecycle -------------------------------------------------------------- */

static void resume_accept(tide_http_server *s)
{
    if (s->stopped || s->backoff || s->lfd < 0) return;
    if (s->at_max && s->limits.max_connections > 0 && s->stats.open >= s->limits.max_connections)
        return;
    s->at_max = 0;
    ev_io_start(s->loop, &s->accept_io);
}

static void unqueue(conn *c)
{
    tide_http_server *s = c->srv;
    for (conn **pp = &s->ready; *pp; pp = &(*pp)->qnext)
        if (*pp == c) {
            *pp = c->qnext;
            break;
        }
    c->queued = 0;
}

/* ---- one loop pass's share of reads ----------------------------------------------------
 * Readable connections are served in the order libev hands them over until this pass has
 * spent limits.read_pass_budget on them (after at least PASS_MIN_READS). One readable after
 * that is parked: appended to a FIFO that a check watcher at EV_MAXPRI serves first in the
 * next passes, ahead of newer events, under the same budget. So a storm - 10,000 clients
 * hanging up at once, each close() a FIN through the kernel - is taken in slices of a few
 * milliseconds with every other connection's requests served in between, in arrival order
 * (libev runs a pass's callbacks last-in first-out, so skipping a callback instead would
 * leave the same connections behind pass after pass). A parked connection keeps its read
 * watcher: its callback returns at once until its turn, so parking costs no syscall, and
 * while any are parked the loop polls without blocking (an idle watcher). */
static int pass_spent(tide_http_server *s)
{
    unsigned iter = ev_iteration(s->loop);
    if (iter != s->pass_iter) {
        s->pass_iter = iter;
        s->pass_reads = 0;
    }
    return s->pass_reads >= PASS_MIN_READS &&
           ev_time() - ev_now(s->loop) > s->limits.read_pass_budget;
}

static void park(conn *c)
{
    tide_http_server *s = c->srv;
    c->parked = 1;
    c->pnext = NULL;
    c->pprev = s->park_tail;
    if (s->park_tail) s->park_tail->pnext = c;
    else s->park_head = c;
    s->park_tail = c;
    s->stats.parked++;
    if (!ev_is_active(&s->unpark)) {
        ev_check_start(s->loop, &s->unpark);
        ev_idle_start(s->loop, &s->spin);
    }
}

static void unpark(conn *c)
{
    tide_http_server *s = c->srv;
    if (c->pprev) c->pprev->pnext = c->pnext;
    else s->park_head = c->pnext;
    if (c->pnext) c->pnext->pprev = c->pprev;
    else s->park_tail = c->pprev;
    c->pprev = c->pnext = NULL;
    c->parked = 0;
}

/* Closes the socket now and frees the struct later (reap). A request with the handler is
 * detached and aborted: it stays valid until tide_http_respond(). */
static void conn_close(conn *c)
{
    tide_http_server *s = c->srv;
    if (c->closed) return;
    c->closed = 1;
    ev_io_stop(s->loop, &c->rio);
    ev_io_stop(s->loop, &c->wio);
    ev_timer_stop(s->loop, &c->timer);
    close(c->fd);
    c->fd = -1;
    s->stats.open--;
    client_put(s, c->client);
    c->client = NULL;
    if (c->queued) unqueue(c);
    if (c->parked) unpark(c);
    if (c->held) {
        out_unlink(c);
        s->unsent_bytes -= c->held;
        s->stats.unsent_bytes = (long long)s->unsent_bytes;
        c->held = 0;
    }
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = NULL;
    c->next = s->reap;
    s->reap = c;

    hreq *r = c->cur;
    c->cur = NULL;
    hreq_uncharge(s, r); /* its connection is gone: the upper layer finishes it promptly */
    if (r && c->busy) {
        c->busy = 0;
        r->c = NULL;
        r->pub.aborted = 1;
        s->stats.aborted++;
        if (r->pub.on_abort) r->pub.on_abort(&r->pub); /* last: it may respond, which frees r */
    } else {
        hreq_free(r);
    }
    resume_accept(s);
}

static void conn_timer(conn *c, int mode, double after)
{
    struct ev_loop *loop = c->srv->loop;
    if (mode == c->tmode) return; /* running timers are not refreshed by more bytes (slowloris) */
    c->tmode = (uint8_t)mode;
    if (mode == TM_NONE || after <= 0) {
        ev_timer_stop(loop, &c->timer);
        return;
    }
    c->timer.repeat = after;
    ev_timer_again(loop, &c->timer);
}

static int can_parse(const conn *c)
{
    return !c->closed && !c->busy && !c->closing && c->olen == c->opos;
}

static void queue_ready(conn *c)
{
    tide_http_server *s = c->srv;
    if (c->queued) return;
    c->queued = 1;
    c->qnext = s->ready;
    s->ready = c;
    ev_prepare_start(s->loop, &s->prepare);
}

static void start_linger(conn *c)
{
    tide_http_server *s = c->srv;
    if (c->eof) {
        conn_close(c);
        return;
    }
    c->lingering = 1;
    shutdown(c->fd, SHUT_WR);
    ev_io_stop(s->loop, &c->wio);
    ev_io_start(s->loop, &c->rio);
    double t = s->limits.read_timeout < LINGER_TIMEOUT ? s->limits.read_timeout : LINGER_TIMEOUT;
    conn_timer(c, TM_LINGER, t);
}

/* Derives the watchers and timer from the connection's state (the one place that does). */
static void conn_update(conn *c)
{
    tide_http_server *s = c->srv;
    struct ev_loop *loop = s->loop;
    if (c->closed || c->lingering) return;
    int pending_out = c->olen != c->opos;
    if (pending_out) ev_io_start(loop, &c->wio);
    else ev_io_stop(loop, &c->wio);

    if (c->closing) {
        if (pending_out) {
            conn_timer(c, TM_WRITE, s->limits.idle_timeout);
            if (c->eof) ev_io_stop(loop, &c->rio);
            else ev_io_start(loop, &c->rio); /* discard input, notice the peer leaving */
        } else if (c->linger || c->rlen != c->rpos) {
            start_linger(c);
        } else {
            conn_close(c);
        }
        return;
    }

    if (c->eof || (c->rlen - c->rpos) >= RBUF_CAP) ev_io_stop(loop, &c->rio);
    else ev_io_start(loop, &c->rio);

    if (c->busy) conn_timer(c, TM_NONE, 0);
    else if (c->cur) conn_timer(c, TM_READ, s->limits.read_timeout);
    else if (pending_out) conn_timer(c, TM_WRITE, s->limits.idle_timeout);
    else if (c->rlen != c->rpos) queue_ready(c);
    else if (s->stopped || c->eof)
        conn_close(c); /* draining, or the client half-closed: nothing more will come */
    else conn_timer(c, TM_IDLE, s->limits.idle_timeout);
}

static void deliver(conn *c)
{
    tide_http_server *s = c->srv;
    hreq *r = c->cur;
    if (s->stopped) r->force_close = 1;
    c->busy = 1;
    s->stats.requests++;
    s->handler(&r->pub, s->arg);
}

/* Parses data (len bytes) and hands complete requests to the handler one at a time.
 * Returns the bytes consumed; stops early while a request is with the handler, output is
 * queued, or the connection is closing. */
static size_t conn_parse(conn *c, const char *data, size_t len)
{
    tide_http_server *s = c->srv;
    size_t off = 0;
    c->in_parse = 1;
    while (off < len && can_parse(c)) {
        c->chunk_base = data + off;
        c->chunk_end = data + len;
        c->err = ERR_NONE;
        if (c->cur && c->cur->scan)
            c->cur->scan = c->chunk_base; /* the raw check goes on from the new read */
        size_t n = http_parser_execute(&c->parser, &settings, data + off, len - off);
        off += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            deliver(c);
            continue;
        }
        hreq *r = c->cur;
        if (e == HPE_OK && r && !r->headers_done) {
            r->hdr_prev += n;
            if (r->hdr_prev > s->limits.max_header_bytes) e = HPE_HEADER_OVERFLOW;
        }
        if (e == HPE_OK && r && r->scan) {
            /* raw bytes after the last callback in this read: checked now, in order */
            long m = r->scan <= data + off ? scan(c, r, r->scan, data + off) : -1;
            if (m < 0 || r->scan + m != data + off)
                e = HPE_UNKNOWN; /* c->err says why (none set: a section ended early) */
            else r->scan = data + off;
        }
        if (e == HPE_OK) {
            if (n == 0) break;
            continue;
        }
        if (e == HPE_HEADER_OVERFLOW) c->err = ERR_HEADERS;
        switch (c->err) {
        case ERR_HEADERS:
            s->stats.rejected_431++;
            conn_error(c, 431, "TIDE_HEADERS_TOO_LARGE", "request headers too large", NULL);
            break;
        case ERR_BODY:
            s->stats.rejected_413++;
            conn_error(c, 413, "TIDE_BODY_TOO_LARGE", "request body too large", NULL);
            break;
        case ERR_EXPECT:
            s->stats.rejected_400++;
            conn_error(c, 417, "TIDE_EXPECTATION_FAILED", "unsupported Expect header", NULL);
            break;
        case ERR_CODING:
            s->stats.rejected_400++;
            conn_error(c, 501, "TIDE_NOT_IMPLEMENTED",
                       "only Transfer-Encoding: chunked is supported", NULL);
            break;
        case ERR_BUSY:
            s->stats.rejected_busy++;
            conn_error(c, 503, "TIDE_BUSY",
                       "the server is at its request-body budget; retry shortly",
                       "Retry-After: 1\r\n");
            break;
        case ERR_CLOSE: conn_close(c); break;
        default:
            s->stats.rejected_400++;
            conn_error(c, 400, "TIDE_BAD_REQUEST", "malformed HTTP request", NULL);
            break;
        }
        break;
    }
    c->in_parse = 0;
    return off;
}

static int rbuf_append(conn *c, const char *data, size_t len)
{
    size_t have = c->rlen - c->rpos;
    if (c->rpos && c->rcap - c->rlen < len) {
        memmove(c->rbuf, c->rbuf + c->rpos, have);
        c->rpos = 0;
        c->rlen = (uint32_t)have;
    }
    if (c->rcap - c->rlen < len) {
        size_t cap = have + len;
        if (cap < 1024) cap = 1024;
        char *b = realloc(c->rbuf, cap);
        if (!b) return TIDE_ENOMEM;
        c->rbuf = b;
        c->rcap = (uint32_t)cap;
    }
    memcpy(c->rbuf + c->rlen, data, len);
    c->rlen += (uint32_t)len;
    return 0;
}

/* Parses what is buffered; frees the buffer once empty. */
static void conn_resume(conn *c)
{
    if (c->rlen == c->rpos || !can_parse(c)) return;
    size_t used = conn_parse(c, c->rbuf + c->rpos, c->rlen - c->rpos);
    if (c->closed) return; /* buffers go with the reap */
    c->rpos += (uint32_t)used;
    if (used == 0 && can_parse(c)) {
        conn_close(c); /* the parser made no progress: never spin on it */
        return;
    }
    if (c->rpos == c->rlen || c->closing) {
        if (c->rpos != c->rlen)
            c->linger = 1; /* unread pipelined bytes: drain them before closing */
        free(c->rbuf);
        c->rbuf = NULL;
        c->rpos = c->rlen = c->rcap = 0;
    }
}

static void conn_read(conn *c)
{
    tide_http_server *s = c->srv;
    int direct = can_parse(c) && c->rlen == c->rpos;
    size_t want = SCRATCH_SIZE;
    if (!direct && !c->closing) {
        size_t room = RBUF_CAP - (c->rlen - c->rpos);
        if (room == 0) return; /* conn_update() stops reading */
        if (want > room) want = room;
    }
    ssize_t n;
    do n = recv(c->fd, s->scratch, want, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) conn_close(c);
        return;
    }
    if (n == 0) {
        /* The client shut down its side. Like nginx and node, a request still with the
         * handler counts as abandoned; queued output is still flushed. */
        c->eof = 1;
        if (c->lingering || c->busy || c->cur || c->olen == c->opos) conn_close(c);
        else c->closing = 1;
        return;
    }
    if (c->lingering || c->closing) return; /* discarded */
    if (!direct) {
        if (rbuf_append(c, s->scratch, (size_t)n) != 0) conn_close(c);
        return;
    }
    size_t used = conn_parse(c, s->scratch, (size_t)n);
    if (c->closed || used == (size_t)n) return;
    if (c->closing) c->linger = 1;
    else if (rbuf_append(c, s->scratch + used, (size_t)n - used) != 0) conn_close(c);
}

/* ---- watcher callbacks ----------------------------------------------------------------- */

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    conn *c = container_of(w, conn, rio);
    tide_http_server *s = c->srv;
    (void)loop;
    (void)revents;
    srv_enter(s);
    if (!c->parked && pass_spent(s)) park(c);
    if (!c->parked) { /* else: its turn comes in on_unpark */
        s->pass_reads++;
        conn_read(c);
        conn_update(c);
    }
    srv_leave(s);
}

/* First in a pass: the parked connections, oldest first, as far as the budget goes. */
static void on_unpark(struct ev_loop *loop, ev_check *w, int revents)
{
    tide_http_server *s = container_of(w, tide_http_server, unpark);
    conn *c;
    (void)revents;
    srv_enter(s);
    while ((c = s->park_head) && !pass_spent(s)) {
        unpark(c);
        s->pass_reads++;
        conn_read(c);
        conn_update(c);
    }
    if (!s->park_head) {
        ev_check_stop(loop, &s->unpark);
        ev_idle_stop(loop, &s->spin);
    }
    srv_leave(s);
}

static void on_spin(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    conn *c = container_of(w, conn, wio);
    tide_http_server *s = c->srv;
    (void)revents;
    srv_enter(s);
    ssize_t n;
    do n = send(c->fd, c->obuf + c->opos, c->olen - c->opos, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) conn_close(c);
    } else {
        c->opos += (uint32_t)n;
        if (c->tmode == TM_WRITE)
            ev_timer_again(loop, &c->timer); /* progress: the stall timer restarts */
        if (c->opos == c->olen) {
            obuf_free(c);
            c->opos = c->olen = c->ocap = 0;
        }
        out_note(c); /* released, or last on the list: this client reads */
        if (!c->obuf) {
            if (c->tmode == TM_WRITE) conn_timer(c, TM_NONE, 0);
            conn_resume(c);
        }
    }
    conn_update(c);
    srv_leave(s);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    conn *c = container_of(w, conn, timer);
    tide_http_server *s = c->srv;
    int mode = c->tmode;
    (void)revents;
    srv_enter(s);
    c->tmode = TM_NONE;
    ev_timer_stop(loop, w);
    if (mode == TM_READ && c->cur && !c->busy) {
        s->stats.timeouts_408++;
        conn_error(c, 408, "TIDE_REQUEST_TIMEOUT", "request not received in time", NULL);
    } else {
        conn_close(c); /* idle, stalled writer, or lingering too long */
    }
    conn_update(c);
    srv_leave(s);
}

/* Continues connections whose response came from outside an http callback. */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    tide_http_server *s = container_of(w, tide_http_server, prepare);
    conn *c;
    (void)revents;
    srv_enter(s);
    while ((c = s->ready)) {
        s->ready = c->qnext;
        c->queued = 0;
        conn_resume(c);
        conn_update(c);
    }
    ev_prepare_stop(loop, w);
    srv_leave(s);
}

/* Takes fd on as a connection (counted under client, which may be NULL). Returns 0, or
 * TIDE_ENOMEM (fd closed, client's count given back). */
static int conn_new(tide_http_server *s, int fd, client_slot *client)
{
    int one = 1;
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        client_put(s, client);
        return TIDE_ENOMEM;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->srv = s;
    c->fd = fd;
    c->client = client;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    ev_io_init(&c->rio, on_read, fd, EV_READ);
    ev_io_init(&c->wio, on_write, fd, EV_WRITE);
    ev_init(&c->timer, on_timer);
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->stats.accepted++;
    s->stats.open++;
    conn_update(c);
    return 0;
}

/* Resets fd at once: no answer, and no TIME_WAIT left on this side. */
static void reset_fd(int fd)
{
    struct linger lg = { 1, 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

#define ACCEPT_BATCH 64

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    tide_http_server *s = container_of(w, tide_http_server, accept_io);
    (void)revents;
    srv_enter(s);
    /* At most ACCEPT_BATCH connections per wakeup: the socket stays readable (libev watches
     * it level-triggered), so a storm of connections is taken over several loop passes with
     * the requests of those already open served in between. */
    for (int budget = ACCEPT_BATCH; budget > 0; budget--) {
        if (s->limits.max_connections > 0 && s->stats.open >= s->limits.max_connections) {
            s->at_max = 1;
            ev_io_stop(loop, w);
            break;
        }
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        int fd = accept4(s->lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* the listen socket stays readable: back off instead of spinning */
                s->backoff = 1;
                ev_io_stop(loop, w);
                ev_timer_set(&s->accept_retry, ACCEPT_RETRY, 0.);
                ev_timer_start(loop, &s->accept_retry);
            }
            break; /* EAGAIN, or nothing sensible to do */
        }
        client_slot *cl = NULL;
        unsigned char key[16];
        if (s->limits.max_connections_per_client > 0 && client_key(&peer, key) == 0) {
            /* Over its cap the client gets a reset, not a 503: an answer would need this
             * very connection kept (written to, drained) - what the cap is there to refuse. */
            cl = client_get(s, key);
            if (!cl || cl->count >= (uint32_t)s->limits.max_connections_per_client) {
                if (cl) s->stats.rejected_per_client++;
                reset_fd(fd);
                continue;
            }
            cl->count++;
        }
        (void)conn_new(s, fd, cl);
    }
    srv_leave(s);
}

static void on_accept_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    tide_http_server *s = container_of(w, tide_http_server, accept_retry);
    (void)loop;
    (void)revents;
    s->backoff = 0;
    resume_accept(s);
}

/* ---- public API ------------------------------------------------------------------------ */

int tide_http_listen(struct ev_loop *loop, const char *host, int port,
                     const tide_http_limits *limits, tide_http_handler handler, void *arg,
                     tide_http_server **out)
{
    struct addrinfo hints, *res = NULL, *ai;
    char pbuf[16];
    int fd = -1, err = 0, one = 1;

    if (!out) return TIDE_EINVAL;
    *out = NULL;
    if (!loop || !handler || port < 0 || port > 65535) return TIDE_EINVAL;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(pbuf, sizeof pbuf, "%d", port);
    int gai = getaddrinfo(host && *host ? host : NULL, pbuf, &hints, &res);
    if (gai != 0) {
        errno = gai == EAI_SYSTEM ? errno : EADDRNOTAVAIL;
        return TIDE_EIO;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0) break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        errno = err ? err : EADDRNOTAVAIL;
        return TIDE_EIO;
    }

    tide_http_server *s = calloc(1, sizeof *s);
    char *scratch = malloc(SCRATCH_SIZE);
    if (!s || !scratch) {
        free(s);
        free(scratch);
        close(fd);
        return TIDE_ENOMEM;
    }
    s->loop = loop;
    s->lfd = fd;
    s->scratch = scratch;
    s->handler = handler;
    s->arg = arg;
    if (limits) s->limits = *limits;
    if (s->limits.max_header_bytes == 0) s->limits.max_header_bytes = 16 * 1024;
    if (s->limits.max_body_bytes == 0) s->limits.max_body_bytes = 1024 * 1024;
    /* the same defaults as the config file's schema table (config.c), for callers that pass
     * zeros or no limits */
    if (!(s->limits.read_timeout > 0)) s->limits.read_timeout = 10.0;
    if (!(s->limits.idle_timeout > 0)) s->limits.idle_timeout = 60.0;
    if (s->limits.max_connections < 0) s->limits.max_connections = 0;
    if (s->limits.max_inflight_body_bytes == 0)
        s->limits.max_inflight_body_bytes = DEFAULT_BODY_BUDGET;
    if (s->limits.max_unsent_bytes == 0) s->limits.max_unsent_bytes = DEFAULT_UNSENT_BUDGET;
    if (s->limits.max_connections_per_client < 0) s->limits.max_connections_per_client = 0;
    if (!(s->limits.read_pass_budget > 0)) s->limits.read_pass_budget = DEFAULT_PASS_BUDGET;
    if (getrandom(s->seed, sizeof s->seed, GRND_NONBLOCK) != (ssize_t)sizeof s->seed) {
        s->seed[0] = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)s;
        s->seed[1] = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)clock();
    }
    /* http_parser has its own process-wide header cap (80 KiB); only ever raise it. */
    if (s->limits.max_header_bytes > 64 * 1024)
        http_parser_set_max_header_size((uint32_t)(s->limits.max_header_bytes > UINT32_MAX / 2
                                                       ? UINT32_MAX / 2
                                                       : s->limits.max_header_bytes + 16 * 1024));

    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6) s->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }

    ev_io_init(&s->accept_io, on_accept, fd, EV_READ);
    ev_init(&s->accept_retry, on_accept_retry);
    ev_prepare_init(&s->prepare, on_prepare);
    ev_check_init(&s->unpark, on_unpark);
    ev_set_priority(&s->unpark, EV_MAXPRI);
    ev_idle_init(&s->spin, on_spin);
    ev_io_start(loop, &s->accept_io);
    *out = s;
    return 0;
}

int tide_http_respond(tide_http_req *req, int status, const char *content_type,
                      const char *extra_headers, const char *body, size_t body_len)
{
    hreq *r = (hreq *)req;
    conn *c = r->c;
    int rc = 0;
    if (!c) {
        hreq_free(r); /* the client went away: nothing to send */
        return 0;
    }
    tide_http_server *s = c->srv;
    srv_enter(s);
    r->c = NULL;
    c->cur = NULL;
    c->busy = 0;
    hreq_uncharge(s, r);

    int keep = r->pub.keep_alive && !r->force_close && !s->stopped;
    if (!header_line_ok(content_type) || !header_block_ok(extra_headers) || status < 100 ||
        status > 999) {
        static const char err[] =
            "{\"code\":\"TIDE_INTERNAL\",\"message\":\"invalid response headers\"}";
        rc = TIDE_EINVAL;
        status = 500;
        content_type = "application/json";
        extra_headers = NULL;
        body = err;
        body_len = sizeof err - 1;
    }
    if (!body) body_len = 0;
    int sent = send_response(c, status, r->head, r->ka10, keep, content_type, extra_headers, body,
                             body_len, r->pub.id);
    hreq_free(r); /* body may have pointed into it: only after it was sent or copied */
    if (sent == 0) {
        s->stats.responses++;
        if (!keep) c->closing = 1;
        if (!c->in_parse)
            conn_update(c); /* inside conn_parse() the parse loop carries on instead */
    } else {
        conn_close(c);
        if (sent == TIDE_ENOMEM) rc = TIDE_ENOMEM;
    }
    srv_leave(s);
    return rc;
}

tide_http_req *tide_http_req_copy(const tide_http_req *req)
{
    size_t mlen = strlen(req->method), need = mlen + 1 + req->path_len + 1 + req->query_len + 1;
    for (int i = 0; i < req->nheaders; i++)
        need += req->headers[i].name_len + req->headers[i].value_len + 2;
    hreq *r = calloc(1, sizeof *r);
    char *a = malloc(need);
    hslot *slots = req->nheaders ? calloc((size_t)req->nheaders, sizeof *slots) : NULL;
    if (!r || !a || (req->nheaders && !slots)) {
        free(r);
        free(a);
        free(slots);
        return NULL;
    }
    r->arena = a;
    r->slots = slots;
    r->acap = r->alen = need;
    char *p = a;
#define COPY_OUT(dst, src, n) (memcpy(p, (src), (n)), p[(n)] = 0, (dst) = p, p += (n) + 1)
    COPY_OUT(r->pub.method, req->method, mlen);
    COPY_OUT(r->pub.path, req->path, req->path_len);
    r->pub.path_len = req->path_len;
    COPY_OUT(r->pub.query, req->query, req->query_len);
    r->pub.query_len = req->query_len;
    for (int i = 0; i < req->nheaders; i++) {
        const tide_http_header *h = &req->headers[i];
        COPY_OUT(slots[i].h.name, h->name, h->name_len);
        slots[i].h.name_len = h->name_len;
        COPY_OUT(slots[i].h.value, h->value, h->value_len);
        slots[i].h.value_len = h->value_len;
    }
#undef COPY_OUT
    r->pub.headers = slots ? &slots[0].h : NULL;
    r->pub.nheaders = req->nheaders;
    r->pub.body = "";
    memcpy(r->pub.id, req->id, sizeof r->pub.id);
    memcpy(r->pub.client_id, req->client_id, sizeof r->pub.client_id);
    r->nslots = r->cap_slots = req->nheaders;
    return &r->pub;
}

int tide_http_respond_error(tide_http_req *req, int status, const char *code, const char *msg,
                            const char *extra_headers)
{
    char body[512];
    int n =
        snprintf(body, sizeof body,
                 "{\"code\":\"%s\",\"message\":\"%s\",\"details\":null,\"hint\":null}", code, msg);
    if (n < 0 || (size_t)n >= sizeof body) n = 0;
    return tide_http_respond(req, status, "application/json", extra_headers, body, (size_t)n);
}

const char *tide_http_header_get(const tide_http_req *req, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (int i = 0; i < req->nheaders; i++) {
        const tide_http_header *h = &req->headers[i];
        if (h->name_len == n && memcmp(h->name, name, n) == 0) {
            if (len) *len = h->value_len;
            return h->value;
        }
    }
    if (len) *len = 0;
    return NULL;
}

void tide_http_stop_accepting(tide_http_server *s)
{
    if (s->stopped) return;
    srv_enter(s);
    s->stopped = 1;
    ev_io_stop(s->loop, &s->accept_io);
    ev_timer_stop(s->loop, &s->accept_retry);
    if (s->lfd >= 0) {
        close(s->lfd);
        s->lfd = -1;
    }
    /* idle connections close over the next passes, through the parking FIFO (one close is
     * a FIN through the kernel: thousands at once would hold the pass that the requests
     * still in flight are finishing in); the others after their current request */
    for (conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->parked) continue;
        if (!c->busy && !c->cur && !c->closing && !c->lingering && c->olen == c->opos &&
            c->rlen == c->rpos)
            park(c);
        else conn_update(c);
    }
    srv_leave(s);
}

static void srv_destroy(tide_http_server *s)
{
    s->depth = 1; /* on_abort callbacks below must not re-enter the teardown */
    s->stopped = 1;
    while (s->conns) conn_close(s->conns);
    ev_io_stop(s->loop, &s->accept_io);
    ev_timer_stop(s->loop, &s->accept_retry);
    ev_prepare_stop(s->loop, &s->prepare);
    ev_check_stop(s->loop, &s->unpark);
    ev_idle_stop(s->loop, &s->spin);
    if (s->lfd >= 0) close(s->lfd);
    reap(s);
    free(s->clients); /* empty: every connection gave its count back */
    free(s->scratch);
    free(s);
}

void tide_http_free(tide_http_server *s)
{
    if (!s || s->free_requested) return;
    s->free_requested = 1;
    srv_enter(s);
    srv_leave(s); /* destroys now, or when the outermost callback returns */
}

int tide__http_adopt_fd(tide_http_server *s, int fd)
{
    if (fd < 0) return TIDE_EINVAL;
    int fl = fcntl(fd, F_GETFL);
    if (!s || s->stopped || fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        close(fd);
        return TIDE_EINVAL;
    }
    srv_enter(s);
    int rc = conn_new(s, fd, NULL);
    srv_leave(s);
    return rc;
}

void tide_http_get_stats(const tide_http_server *s, tide_http_stats *out) { *out = s->stats; }

int tide_http_port(const tide_http_server *s) { return s->port; }

const char *tide_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Entity";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    }
    return "Unknown";
}
