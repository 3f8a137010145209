/* breaker.h - a circuit breaker per upstream (pure logic; the caller passes the clock).
 *
 * closed -> open when, over a count-based sliding window of the last `window` calls holding
 * at least `min_calls`, the failure rate reaches `failure_rate`, or after `consecutive`
 * failures in a row. open -> half_open once `open_wait` seconds have passed (noticed by the
 * next allow); half_open lets `half_open_probes` calls through; that many successes close it,
 * one failure opens it again. Calls refused while open never extend the open period. Each
 * allowed call carries a ticket (the state generation): outcomes of calls admitted under an
 * earlier state count in the statistics but never move the state. */
#ifndef TIDE_BREAKER_H
#define TIDE_BREAKER_H

#define TIDE_BREAKER_MAX_WINDOW 1024

typedef struct tide_breaker_config {
    int window;           /* calls in the sliding window (1..TIDE_BREAKER_MAX_WINDOW) */
    double failure_rate;  /* 0 < rate <= 1 */
    int min_calls;        /* the window must hold this many before the rate counts */
    int consecutive;      /* this many failures in a row open it (0 = off) */
    double open_wait;     /* seconds open before probing */
    int half_open_probes; /* probes let through, and successes needed to close */
} tide_breaker_config;

typedef enum tide_breaker_state {
    TIDE_BREAKER_CLOSED = 0,
    TIDE_BREAKER_OPEN,
    TIDE_BREAKER_HALF_OPEN
} tide_breaker_state;

typedef struct tide_breaker {
    tide_breaker_config cfg;
    tide_breaker_state state;
    unsigned generation;
    unsigned char ring[TIDE_BREAKER_MAX_WINDOW]; /* 1 = failure */
    int ring_len, ring_pos, ring_failures;
    int consecutive_failures;
    double open_until;
    int probes_inflight, probe_successes;
    long long calls, failures, rejected, opened; /* lifetime counters */
    long long transitions[3]; /* changes into each state (indexed by tide_breaker_state) */
} tide_breaker;

/* Starts closed with cfg (clamped to sane ranges). */
void tide_breaker_init(tide_breaker *b, const tide_breaker_config *cfg);
/* Changes the settings, keeping state and counters (a policy reload). */
void tide_breaker_configure(tide_breaker *b, const tide_breaker_config *cfg);
/* Returns 1 and a ticket when a call may go ahead, 0 when the breaker refuses it. */
int tide_breaker_allow(tide_breaker *b, double now, unsigned *ticket);
/* Records the outcome of an allowed call. */
void tide_breaker_record(tide_breaker *b, double now, unsigned ticket, int ok);
/* Gives back an allowed call's ticket without an outcome (the caller gave up before the
 * upstream was tried): frees its half-open probe slot, records nothing. */
void tide_breaker_release(tide_breaker *b, unsigned ticket);
/* Seconds until an open breaker lets probes through (0 when not open). */
double tide_breaker_retry_after(const tide_breaker *b, double now);
const char *tide_breaker_state_name(tide_breaker_state s);

#endif
