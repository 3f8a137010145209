/* replica.h - a streaming replica upstream: how far behind its primary it is, and whether it
 * may take calls.
 *
 * Every lag.poll_interval (policies/resilience.lua, 0.25 s) tide reads the primary's WAL
 * position (pg_current_wal_lsn() through direct's pool) and the replica's replay position
 * (pg_is_in_recovery() and pg_last_wal_replay_lsn() through its own, first), each as a small job on the pools; lsn.h turns
 * them into a lag in seconds and bytes. A poll that finds the replica within both bounds
 * (lag.max_ms, lag.max_bytes) lets it take calls for three more intervals, at least 1 s (upstream.h:
 * standby_ok_until); a poll past either bound, or no successful poll for that long (the
 * replica or the primary not answering), takes it out: calls routed to it go to its fallback
 * (direct by default) until a poll finds it back within bounds. Nothing here blocks: a read
 * still running when the next interval comes is left to finish (no second one is sent).
 *
 * While the primary cannot be reached (direct's breaker open, its pool unable to connect, the
 * read failing as a refused or lost connection) the replica keeps taking calls at its last
 * replayed position: no write can commit through tide meanwhile; reads whose floor it has not
 * replayed still go to the primary. Lag readings resume when it answers again.
 *
 * A replica that is not in recovery (pg_is_in_recovery() false: promoted, or a DSN that names
 * a primary) has nothing to replay, so it counts as caught up. */
#ifndef TIDE_REPLICA_H
#define TIDE_REPLICA_H

#include <ev.h>
#include "lsn.h"
#include "pool.h"
#include "upstream.h"

typedef struct tide_replica {
    tide_upstream *u;       /* the replica upstream */
    tide_upstream *primary; /* direct */
    struct ev_loop *loop;
    ev_timer timer;
    tide_pgjob qp, qr; /* the primary's position, the replica's replay position */
    int running_p, running_r;
    int in_recovery;       /* the last replica answer was not NULL */
    tide_lsn replayed_now; /* this round's replica answer, until the primary's comes */
    tide_lag lag;
    double polled_at;                         /* when both last answered (0: never) */
    long long polls, poll_failures, excluded; /* rounds started, failed reads, times taken
                                                * out of service */
    int was_ok;
    int primary_down;  /* the primary could not be reached at the last reading */
    unsigned p_ticket; /* direct's breaker ticket of the primary's read in flight */
    double p_started;  /* when the primary's read in flight was sent */
    /* the result cache: a fill from the replica is stored only when the replica had replayed
     * every invalidation before the read (tide_replica_fill_safe) */
    double inval_last;    /* when the latest invalidation was heard (0: none yet) */
    int inval_pending;    /* no primary reading started after it yet */
    uint64_t inval_floor; /* a primary position read after every invalidation so far */
} tide_replica;

/* Starts polling (the replica's upstream is marked standby). */
void tide_replica_start(tide_replica *r, struct ev_loop *loop, tide_upstream *replica,
                        tide_upstream *primary);
/* Stops the timer (jobs still running finish into the struct, which must outlive them: the
 * pools are freed after this, which completes them). */
void tide_replica_stop(tide_replica *r);

typedef struct tide_replica_stats {
    double lag_s;        /* -1: unknown (not both positions read yet) */
    long long lag_bytes; /* -1: unknown */
    int eligible;        /* takes calls now */
    int in_recovery;
    char replayed[TIDE_LSN_TEXT], primary[TIDE_LSN_TEXT]; /* "" until read */
    double polled_age_s;                                  /* -1 before the first complete poll */
    long long polls, poll_failures, excluded;
} tide_replica_stats;

void tide_replica_get_stats(const tide_replica *r, double now, tide_replica_stats *out);

/* The result cache dropped entries (a write here, a NOTIFY from elsewhere): until a primary
 * position read after now comes back, no fill from the replica is stored, and after it only
 * fills whose replica had replayed that position. A no-op without a replica. */
void tide_replica_note_invalidation(tide_replica *r, double now);
/* Whether an answer read from the replica, whose replay position was replayed_at_start when
 * the read was sent, may be stored in the result cache: it has replayed every invalidated
 * write known so far (else a refill right after a write would keep the old row for a ttl). */
int tide_replica_fill_safe(const tide_replica *r, uint64_t replayed_at_start);

#endif
