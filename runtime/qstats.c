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

#define SLOTS 4096                  /* open addressing, at most a quarter full */

static qstat *table[SLOTS];
static int count;

static uint64_t hash_of(int upstream, const char *s, size_t n)
{
    return tide_fnv1a(s, n, (uint64_t)upstream);
}

static qstat *find_or_add(int upstream, const char *sql)
{
    size_t n = strlen(sql);
    if (n > TIDE_QSTATS_TEXT)
        n = TIDE_QSTATS_TEXT;
    uint64_t h = hash_of(upstream, sql, n);
    for (size_t i = 0; i < SLOTS; i++) {
        qstat **slot = &table[(h + i) & (SLOTS - 1)];
        qstat *q = *slot;
        if (!q) {
            if (count >= TIDE_QSTATS_MAX)
                return strcmp(sql, "(other)") == 0 ? NULL : find_or_add(upstream, "(other)");
            q = calloc(1, sizeof *q);
            if (!q || !(q->sql = strndup(sql, n))) {
                free(q);
                return NULL;
            }
            q->hash = h;
            q->upstream = upstream;
            *slot = q;
            count++;
            return q;
        }
        if (q->hash == h && q->upstream == upstream && strncmp(q->sql, sql, n) == 0 &&
            q->sql[n] == 0)
            return q;
    }
    return NULL;
}

void tide_qstats_record(int upstream, const char *sql, double seconds, long long rows, int failed)
{
    qstat *q = find_or_add(upstream, sql ? sql : "(transaction control)");
    if (!q)
        return;
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
    count = 0;
}

static int by_total(const void *a, const void *b)
{
    double x = (*(qstat *const *)a)->h.sum, y = (*(qstat *const *)b)->h.sum;
    return x < y ? 1 : x > y ? -1 : 0;
}

char *tide_qstats_json(int limit, size_t *len)
{
    qstat **all = malloc(sizeof *all * (size_t)(count ? count : 1));
    if (!all)
        return NULL;
    int n = 0;
    for (size_t i = 0; i < SLOTS; i++)
        if (table[i])
            all[n++] = table[i];
    qsort(all, (size_t)n, sizeof *all, by_total);
    if (limit < 0 || limit > n)
        limit = n;
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
        k += (size_t)snprintf(out + k, cap - k,
            "%s{\"upstream\":\"%s\",\"statement\":\"%s\",\"calls\":%lld,\"errors\":%lld,"
            "\"rows\":%lld,\"total_ms\":%.3f,\"mean_ms\":%.3f,\"p50_ms\":%.3f,\"p95_ms\":%.3f,"
            "\"p99_ms\":%.3f}", i ? "," : "", tide_upstream_name(q->upstream), esc, q->calls,
            q->errors, q->rows, q->h.sum * 1000.0,
            q->calls ? q->h.sum * 1000.0 / (double)q->calls : 0.0,
            tide_hist_quantile(&q->h, 0.5) * 1000.0, tide_hist_quantile(&q->h, 0.95) * 1000.0,
            tide_hist_quantile(&q->h, 0.99) * 1000.0);
    }
    k += (size_t)snprintf(out + k, cap - k, "],\"tracked\":%d,\"max\":%d}", n, TIDE_QSTATS_MAX);
    free(all);
    free(esc);
    *len = k;
    return out;
}
