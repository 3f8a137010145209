/* lsn.h - Postgres WAL positions (LSNs) and how far a replica trails its primary (pure logic;
 * the caller passes the clock).
 *
 * An LSN is a 64-bit byte position in the WAL, written by Postgres as two hexadecimal halves,
 * "16/B374D848" (the high and low 32 bits). tide reads them from pg_current_wal_lsn() on the
 * primary and pg_last_wal_replay_lsn() on a replica, and compares them as integers.
 *
 * The lag. A replica's byte lag is the primary's last seen position minus the replica's last
 * replayed one. Its time lag is how long the replica has been behind: the primary's positions
 * are kept with the time each was first seen (a bounded ring, in increasing order), and the
 * lag is the age of the oldest position the replica has not replayed yet, 0 once it has
 * replayed every position seen. That is an upper bound (the primary may have got there a
 * poll earlier than tide saw it) and, unlike now() - pg_last_xact_replay_timestamp(), it does
 * not grow while the primary is idle. When the ring is full, the newest entry is overwritten:
 * the oldest positions, which decide the lag, are kept, so the bound stays an upper bound. */
#ifndef TIDE_LSN_H
#define TIDE_LSN_H

#include <stddef.h>
#include <stdint.h>

typedef uint64_t tide_lsn;

/* Longest text an LSN takes ("FFFFFFFF/FFFFFFFF") plus its NUL. */
#define TIDE_LSN_TEXT 18

/* Parses s[0..len) ("X/Y", each half 1-8 hex digits, nothing else) into *out. Returns 0, or
 * TIDE_EINVAL (*out untouched). */
int tide_lsn_parse(const char *s, size_t len, tide_lsn *out);

/* Writes lsn as Postgres does ("%X/%X") into buf[TIDE_LSN_TEXT]; returns its length. */
int tide_lsn_format(tide_lsn lsn, char buf[TIDE_LSN_TEXT]);

#define TIDE_LAG_RING 32

typedef struct tide_lag {
    struct {
        double t;
        tide_lsn lsn;
    } ring[TIDE_LAG_RING]; /* primary positions not yet replayed, oldest first */
    int n;
    tide_lsn primary, replayed;
    int have_primary, have_replayed;
} tide_lag;

void tide_lag_init(tide_lag *g);
/* The primary was at lsn at time now. */
void tide_lag_primary(tide_lag *g, double now, tide_lsn lsn);
/* The replica had replayed up to lsn at time now. */
void tide_lag_replayed(tide_lag *g, double now, tide_lsn lsn);
/* Seconds the replica has been behind at time now (0 when it has replayed every position
 * seen; -1 until both sides have been seen once). */
double tide_lag_seconds(const tide_lag *g, double now);
/* Bytes of WAL the primary is ahead (0 when not ahead; -1 until both have been seen). */
long long tide_lag_bytes(const tide_lag *g);

/* The callers' last writes, for read-your-writes: caller -> (the LSN after their last
 * commit, until when it is remembered). Keys are caller names (role and sub) hashed with a
 * random key (SipHash-1-3), so no caller can aim entries at one bucket; only the 64-bit hash
 * is kept: two callers whose hashes collide share a floor, which only sends a read to the
 * primary that could have gone to the replica. Bounded: TIDE_MEMO_SLOTS entries (4-way
 * buckets, about 1.7 MiB); a full bucket replaces the entry that expires first. Every
 * operation is O(1). With workers it lives in memory they share (tide_lsn_memo_init on a
 * MAP_SHARED mapping made before they fork), each bucket under a lock that a dead holder
 * does not keep (see lsn.c). */
#define TIDE_MEMO_SLOTS  (1 << 16)
/* What tide_lsn_memo_get answers when it cannot read the bucket now: the highest floor,
 * which sends the read to the primary (never to a replica that might lack the write). */
#define TIDE_LSN_UNKNOWN UINT64_MAX

typedef struct tide_lsn_memo tide_lsn_memo;

/* A memo of its own (malloc; NULL on failure), or one in mem (tide_lsn_memo_size() bytes;
 * shared: the caller owns the memory, e.g. a MAP_SHARED mapping before fork). */
tide_lsn_memo *tide_lsn_memo_new(void);
size_t tide_lsn_memo_size(void);
tide_lsn_memo *tide_lsn_memo_init(void *mem, int shared);
void tide_lsn_memo_free(tide_lsn_memo *m);
/* Remembers at time now that caller (key[0..len)) wrote up to lsn, until time `until`. A
 * lower LSN never lowers what is remembered while it lasts. */
void tide_lsn_memo_put(tide_lsn_memo *m, const char *key, size_t len, tide_lsn lsn, double now,
                       double until);
/* What is remembered for caller at time now: the LSN, 0 when nothing (or expired), or
 * TIDE_LSN_UNKNOWN. */
tide_lsn tide_lsn_memo_get(tide_lsn_memo *m, const char *key, size_t len, double now);
/* The key a caller's writes are remembered under ("role:sub") into out[cap]; returns its
 * length, 0 for a caller without a sub (anonymous callers are never remembered). */
int tide_lsn_memo_key(const char *role, const char *sub, char *out, size_t cap);
/* Entries held (expired ones included until replaced). */
long long tide_lsn_memo_count(const tide_lsn_memo *m);
/* Tests only: marks key's bucket as held by pid. */
int tide__lsn_memo_hold(tide_lsn_memo *m, const char *key, size_t len, int pid);

#endif
