/* lsn.c - LSNs and replica lag (see lsn.h). */
#include "lsn.h"
#include "error.h"

#include <stdio.h>
#include <string.h>

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
