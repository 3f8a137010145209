/* breaker.c - circuit breaker state machine (see breaker.h). */
#include "breaker.h"

#include <string.h>

static void clamp(tide_breaker_config *c)
{
    if (c->window < 1) c->window = 1;
    if (c->window > TIDE_BREAKER_MAX_WINDOW) c->window = TIDE_BREAKER_MAX_WINDOW;
    if (!(c->failure_rate > 0)) c->failure_rate = 0.5;
    if (c->failure_rate > 1) c->failure_rate = 1;
    if (c->min_calls < 1) c->min_calls = 1;
    if (c->min_calls > c->window) c->min_calls = c->window;
    if (c->consecutive < 0) c->consecutive = 0;
    if (!(c->open_wait >= 0)) c->open_wait = 1;
    if (c->half_open_probes < 1) c->half_open_probes = 1;
}

static void window_reset(tide_breaker *b)
{
    memset(b->ring, 0, sizeof b->ring);
    b->ring_len = b->ring_pos = b->ring_failures = 0;
    b->consecutive_failures = 0;
}

static void transition(tide_breaker *b, tide_breaker_state s, double now)
{
    b->state = s;
    b->transitions[s]++;
    b->generation++;
    b->probes_inflight = b->probe_successes = 0;
    if (s == TIDE_BREAKER_OPEN) {
        b->open_until = now + b->cfg.open_wait;
        b->opened++;
    }
    if (s == TIDE_BREAKER_CLOSED) window_reset(b);
}

void tide_breaker_init(tide_breaker *b, const tide_breaker_config *cfg)
{
    memset(b, 0, sizeof *b);
    b->cfg = *cfg;
    clamp(&b->cfg);
}

void tide_breaker_configure(tide_breaker *b, const tide_breaker_config *cfg)
{
    int old_window = b->cfg.window;
    b->cfg = *cfg;
    clamp(&b->cfg);
    if (b->cfg.window != old_window) window_reset(b); /* positions mean nothing now */
}

int tide_breaker_allow(tide_breaker *b, double now, unsigned *ticket)
{
    if (b->state == TIDE_BREAKER_OPEN) {
        if (now < b->open_until) {
            b->rejected++;
            return 0;
        }
        transition(b, TIDE_BREAKER_HALF_OPEN, now);
    }
    if (b->state == TIDE_BREAKER_HALF_OPEN) {
        if (b->probes_inflight + b->probe_successes >= b->cfg.half_open_probes) {
            b->rejected++;
            return 0;
        }
        b->probes_inflight++;
    }
    *ticket = b->generation;
    return 1;
}

static void window_push(tide_breaker *b, int failed)
{
    int n = b->cfg.window;
    if (b->ring_len == n) b->ring_failures -= b->ring[b->ring_pos];
    else b->ring_len++;
    b->ring[b->ring_pos] = (unsigned char)(failed != 0);
    b->ring_failures += failed != 0;
    b->ring_pos = (b->ring_pos + 1) % n;
}

void tide_breaker_record(tide_breaker *b, double now, unsigned ticket, int ok)
{
    b->calls++;
    if (!ok) b->failures++;
    if (ticket != b->generation) return; /* admitted under an earlier state */
    switch (b->state) {
    case TIDE_BREAKER_CLOSED:
        window_push(b, !ok);
        b->consecutive_failures = ok ? 0 : b->consecutive_failures + 1;
        if (!ok && ((b->cfg.consecutive > 0 && b->consecutive_failures >= b->cfg.consecutive) ||
                    (b->ring_len >= b->cfg.min_calls &&
                     b->ring_failures >= b->cfg.failure_rate * b->ring_len)))
            transition(b, TIDE_BREAKER_OPEN, now);
        break;
    case TIDE_BREAKER_HALF_OPEN:
        if (b->probes_inflight > 0) b->probes_inflight--;
        if (!ok) {
            transition(b, TIDE_BREAKER_OPEN, now);
            break;
        }
        if (++b->probe_successes >= b->cfg.half_open_probes)
            transition(b, TIDE_BREAKER_CLOSED, now);
        break;
    case TIDE_BREAKER_OPEN: break;
    }
}

void tide_breaker_release(tide_breaker *b, unsigned ticket)
{
    if (ticket == b->generation && b->state == TIDE_BREAKER_HALF_OPEN && b->probes_inflight > 0)
        b->probes_inflight--;
}

double tide_breaker_retry_after(const tide_breaker *b, double now)
{
    if (b->state != TIDE_BREAKER_OPEN || now >= b->open_until) return 0;
    return b->open_until - now;
}

const char *tide_breaker_state_name(tide_breaker_state s)
{
    switch (s) {
    case TIDE_BREAKER_CLOSED: return "closed";
    case TIDE_BREAKER_OPEN: return "open";
    case TIDE_BREAKER_HALF_OPEN: return "half_open";
    }
    return "?";
}
