/* qstats.c - statement statistics (see qstats.h). */
#include "qstats.h"
#include "config.h"
#include "hist.h"
#include "log.h"
#include "util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct qstat {
    uint64_t hash;
    int upstream;
    char *sql;
    long long calls, errors, rows;
    tide_hist h;
} qstat;

#define SLOTS 4096 /* open addressing, at most a quarter full */
#define OTHER "(other)"

static qstat *table[SLOTS];
static int count;  /* rows in the table, (other) rows included */
static int others; /* (other) rows: one per upstream at most, beyond the bound */

static uint64_t hash_of(int upstream, const char *s, size_t n)
{
    return tide_fnv1a(s, n, (uint64_t)upstream);
}

/* ---- shapes ------------------------------------------------------------------------------ */

static int ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '$' || (unsigned char)c >= 0x80;
}

static int space_char(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* The end of the quoted run starting at p (a ' literal or a " name; a doubled quote stays
 * inside): just past its closing quote, or the end of the text. */
static const char *quoted_end(const char *p)
{
    char q = *p++;
    for (;;) {
        const char *e = strchr(p, q);
        if (!e) return p + strlen(p);
        if (e[1] != q) return e + 1;
        p = e + 2;
    }
}

/* The end of a $tag$...$tag$ literal starting at p, or NULL when p starts none ($1 is a
 * parameter). */
static const char *dollar_end(const char *p)
{
    const char *t = p + 1;
    if (*t != '$' && !((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') || *t == '_'))
        return NULL;
    while (*t != '$') {
        if (!ident_char(*t)) return NULL;
        t++;
    }
    size_t tag = (size_t)(t - p) + 1; /* $tag$ */
    for (const char *e = t + 1; (e = strchr(e, '$')) != NULL; e++)
        if (strncmp(e, p, tag) == 0) return e + tag;
    return p + strlen(p);
}

/* Whether the quoted name at p (within sql) follows the keyword AS and white space. */
static int after_as(const char *sql, const char *p)
{
    const char *b = p;
    while (b > sql && space_char(b[-1])) b--;
    if (b == p || b - sql < 2) return 0;
    return (b[-2] == 'A' || b[-2] == 'a') && (b[-1] == 'S' || b[-1] == 's') &&
           (b - 2 == sql || !ident_char(b[-3]));
}

#define FNV_PRIME 1099511628211ULL

/* The shape being written: out[0..k) and its FNV-1a hash (tide_fnv1a's), kept as it grows so
 * a statement's text is walked once. */
typedef struct shaper {
    char *out;
    size_t cap, k;
    uint64_t h;
} shaper;

static void put(shaper *w, const char *s, size_t n)
{
    if (n > w->cap - 1 - w->k) n = w->cap - 1 - w->k;
    uint64_t h = w->h;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * FNV_PRIME;
    memcpy(w->out + w->k, s, n);
    w->k += n;
    w->h = h;
}

/* The bytes the shape looks at; the rest is copied as it is. */
static const unsigned char special[256] = { ['\0'] = 1, ['"'] = 1, ['\''] = 1, ['$'] = 1 };

/* Writes sql's shape into w (see tide_qstats_shape). */
static void shape(shaper *w, const char *sql)
{
    const char *p = sql, *end;
    while (*p && w->k + 1 < w->cap) {
        unsigned char c;
        if (!special[c = (unsigned char)*p]) { /* the common case, hashed as copied */
            char *out = w->out;
            size_t k = w->k, last = w->cap - 1;
            uint64_t h = w->h;
            do {
                out[k++] = (char)c;
                h = (h ^ c) * FNV_PRIME;
                p++;
            } while (k < last && !special[c = (unsigned char)*p]);
            w->k = k;
            w->h = h;
            continue;
        }
        if (c == '"' && after_as(sql, p)) { /* an alias */
            put(w, "\"?\"", 3);
            p = quoted_end(p);
            continue;
        }
        if (c == '$') {
            end = p == sql || !ident_char(p[-1]) ? dollar_end(p) : NULL;
            if (!end) end = p + 1;
        } else {
            end = quoted_end(p);
        }
        put(w, p, (size_t)(end - p));
        p = end;
    }
    w->out[w->k] = '\0';
}

size_t tide_qstats_shape(const char *sql, char *out, size_t cap)
{
    shaper w = { out, cap, 0, 0 };
    shape(&w, sql);
    return w.k;
}

/* ---- the table --------------------------------------------------------------------------- */

/* The row of (upstream, text[0..n)) whose hash_of is h, added when new: a statement beyond the
 * bound goes to its upstream's (other) row, which is added whatever the count. NULL only when
 * memory is short. */
static qstat *find_or_add(int upstream, const char *text, size_t n, uint64_t h, int other)
{
    for (size_t i = 0; i < SLOTS; i++) {
        qstat **slot = &table[(h + i) & (SLOTS - 1)];
        qstat *q = *slot;
        if (!q) {
            if (!other && count - others >= TIDE_QSTATS_MAX)
                return find_or_add(upstream, OTHER, sizeof OTHER - 1,
                                   hash_of(upstream, OTHER, sizeof OTHER - 1), 1);
            q = calloc(1, sizeof *q);
            if (!q || !(q->sql = strndup(text, n))) {
                free(q);
                return NULL;
            }
            q->hash = h;
            q->upstream = upstream;
            *slot = q;
            count++;
            others += other;
            return q;
        }
        if (q->hash == h && q->upstream == upstream && strncmp(q->sql, text, n) == 0 &&
            q->sql[n] == 0)
            return q;
    }
    return NULL;
}

void tide_qstats_record(int upstream, const char *sql, double seconds, long long rows, int failed)
{
    char text[TIDE_QSTATS_TEXT + 1];
    shaper w = { text, sizeof text, 0, hash_of(upstream, "", 0) };
    shape(&w, sql ? sql : "(transaction control)");
    qstat *q = find_or_add(upstream, text, w.k, w.h, 0);
    if (!q) return;
    q->calls++;
    q->errors += failed != 0;
    q->rows += rows > 0 ? rows : 0;
    tide_hist_add(&q->h, seconds);
}

void tide_qstats_reset(void)
{
    for (size_t i = 0; i < SLOTS; i++) {
        if (table[i]) {
            free(table[i]->sql);
            free(table[i]);
            table[i] = NULL;
        }
    }
    count = others = 0;
}

static int by_total(const void *a, const void *b)
{
    double x = (*(qstat *const *)a)->h.sum, y = (*(qstat *const *)b)->h.sum;
    return x < y ? 1 : x > y ? -1 : 0;
}

char *tide_qstats_json(int limit, size_t *len)
{
    qstat **all = malloc(sizeof *all * (size_t)(count ? count : 1));
    if (!all) return NULL;
    int n = 0;
    for (size_t i = 0; i < SLOTS; i++)
        if (table[i]) all[n++] = table[i];
    qsort(all, (size_t)n, sizeof *all, by_total);
    if (limit < 0 || limit > n) limit = n;
    size_t cap = 64 + (size_t)limit * (TIDE_QSTATS_TEXT * 6 + 400);
    char *out = malloc(cap), *esc = malloc(TIDE_QSTATS_TEXT * 6 + 8);
    if (!out || !esc) {
        free(all);
        free(out);
        free(esc);
        return NULL;
    }
    size_t k = (size_t)snprintf(out, cap, "{\"statements\":[");
    for (int i = 0; i < limit; i++) {
        const qstat *q = all[i];
        tide_json_escape(esc, TIDE_QSTATS_TEXT * 6 + 8, q->sql, (int)strlen(q->sql));
        k += (size_t)snprintf(
            out + k, cap - k,
            "%s{\"upstream\":\"%s\",\"statement\":\"%s\",\"calls\":%lld,\"errors\":%lld,"
            "\"rows\":%lld,\"total_ms\":%.3f,\"mean_ms\":%.3f,\"p50_ms\":%.3f,\"p95_ms\":%.3f,"
            "\"p99_ms\":%.3f}",
            i ? "," : "", tide_upstream_name(q->upstream), esc, q->calls, q->errors, q->rows,
            q->h.sum * 1000.0, q->calls ? q->h.sum * 1000.0 / (double)q->calls : 0.0,
            tide_hist_quantile(&q->h, 0.5) * 1000.0, tide_hist_quantile(&q->h, 0.95) * 1000.0,
            tide_hist_quantile(&q->h, 0.99) * 1000.0);
    }
    k += (size_t)snprintf(out + k, cap - k, "],\"tracked\":%d,\"max\":%d}", n, TIDE_QSTATS_MAX);
    free(all);
    free(esc);
    *len = k;
    return out;
}
