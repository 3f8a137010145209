/* test_lsn.c - LSN text in and out, and a replica's lag on a fake clock. */
#include "test.h"
#include "../lsn.h"
#include "../error.h"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static int parse(const char *s, tide_lsn *out) { return tide_lsn_parse(s, strlen(s), out); }

TEST(parses_and_formats_postgres_lsns)
{
    tide_lsn l = 7;
    CHECK_EQ_INT(parse("0/0", &l), 0);
    CHECK(l == 0);
    CHECK_EQ_INT(parse("16/B374D848", &l), 0);
    CHECK(l == ((tide_lsn)0x16 << 32 | 0xB374D848u));
    CHECK_EQ_INT(parse("ffffffff/FFFFFFFF", &l), 0);
    CHECK(l == UINT64_MAX);
    char buf[TIDE_LSN_TEXT];
    CHECK_EQ_INT(tide_lsn_format((tide_lsn)0x16 << 32 | 0xB374D848u, buf), 11);
    CHECK_STR(buf, "16/B374D848");
    CHECK_EQ_INT(tide_lsn_format(UINT64_MAX, buf), 17);
    CHECK_STR(buf, "FFFFFFFF/FFFFFFFF");
}

TEST(refuses_anything_else_and_leaves_the_output)
{
    static const char *bad[] = { "",      "/",           "0/",          "/0",    "0",
                                 "0/0/0", "123456789/0", "0/123456789", "g/0",   "0/ 1",
                                 " 0/1",  "0/1 ",        "-1/0",        "0x1/0", "1/+2" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tide_lsn l = 42;
        CHECK_EQ_INT(parse(bad[i], &l), TIDE_EINVAL);
        CHECK(l == 42);
    }
    tide_lsn l = 42;
    CHECK_EQ_INT(tide_lsn_parse("1/2", 2, &l), TIDE_EINVAL); /* the length counts, not the NUL */
    CHECK_EQ_INT(tide_lsn_parse(NULL, 0, &l), TIDE_EINVAL);
}

TEST(compares_as_integers_across_the_halves)
{
    tide_lsn a, b;
    CHECK_EQ_INT(parse("0/FFFFFFFF", &a), 0);
    CHECK_EQ_INT(parse("1/0", &b), 0);
    CHECK(a < b);
    CHECK(b - a == 1);
}

TEST(lag_is_unknown_until_both_sides_are_seen_and_zero_when_caught_up)
{
    tide_lag g;
    tide_lag_init(&g);
    CHECK(tide_lag_seconds(&g, 0) < 0 && tide_lag_bytes(&g) < 0);
    tide_lag_primary(&g, 0, 1000);
    CHECK(tide_lag_seconds(&g, 0) < 0);
    tide_lag_replayed(&g, 0.1, 1000);
    CHECK(tide_lag_seconds(&g, 0.1) == 0);
    CHECK(tide_lag_bytes(&g) == 0);
    /* an idle primary: the replica stays caught up however long nothing happens */
    tide_lag_primary(&g, 100, 1000);
    tide_lag_replayed(&g, 100, 1000);
    CHECK(tide_lag_seconds(&g, 100) == 0);
}

TEST(lag_is_the_age_of_the_oldest_position_not_replayed)
{
    tide_lag g;
    tide_lag_init(&g);
    tide_lag_replayed(&g, 0, 100);
    tide_lag_primary(&g, 0, 100);
    tide_lag_primary(&g, 1.0, 200); /* a write at t=1 */
    tide_lag_primary(&g, 2.0, 300); /* another at t=2 */
    tide_lag_replayed(&g, 2.5, 100);
    CHECK(tide_lag_seconds(&g, 3.0) == 2.0); /* behind since t=1 */
    CHECK(tide_lag_bytes(&g) == 200);
    tide_lag_replayed(&g, 3.0, 250); /* past the first write, not the second */
    CHECK(tide_lag_seconds(&g, 3.5) == 1.5);
    CHECK(tide_lag_bytes(&g) == 50);
    tide_lag_replayed(&g, 4.0, 300);
    CHECK(tide_lag_seconds(&g, 4.0) == 0);
    /* a stale replica answer never moves it backwards */
    tide_lag_replayed(&g, 4.1, 120);
    CHECK(tide_lag_seconds(&g, 4.2) == 0 && tide_lag_bytes(&g) == 0);
}

TEST(a_full_ring_keeps_the_oldest_so_the_lag_stays_an_upper_bound)
{
    tide_lag g;
    tide_lag_init(&g);
    tide_lag_replayed(&g, 0, 0);
    for (int i = 1; i <= 3 * TIDE_LAG_RING; i++) tide_lag_primary(&g, i, (tide_lsn)i * 10);
    CHECK_EQ_INT(g.n, TIDE_LAG_RING);
    double now = 3 * TIDE_LAG_RING + 1;
    CHECK(tide_lag_seconds(&g, now) == now - 1);
    /* replayed up to the middle: the bound never drops below the truth */
    tide_lsn mid = (tide_lsn)(TIDE_LAG_RING / 2) * 10;
    tide_lag_replayed(&g, now, mid);
    double truth = now - (double)(TIDE_LAG_RING / 2 + 1);
    CHECK(tide_lag_seconds(&g, now) >= truth);
    tide_lag_replayed(&g, now, (tide_lsn)(3 * TIDE_LAG_RING) * 10);
    CHECK(tide_lag_seconds(&g, now) == 0);
    CHECK_EQ_INT(g.n, 0);
}

TEST(the_memo_remembers_each_callers_highest_write_for_its_window)
{
    tide_lsn_memo *m = tide_lsn_memo_new();
    CHECK(m != NULL);
    CHECK(tide_lsn_memo_get(m, "authenticated:a", 15, 0) == 0);
    tide_lsn_memo_put(m, "authenticated:a", 15, 500, 0, 10);
    tide_lsn_memo_put(m, "authenticated:b", 15, 700, 0, 10);
    CHECK(tide_lsn_memo_get(m, "authenticated:a", 15, 1) == 500);
    CHECK(tide_lsn_memo_get(m, "authenticated:b", 15, 1) == 700);
    tide_lsn_memo_put(m, "authenticated:a", 15, 400, 2, 12); /* lower: kept higher, longer */
    CHECK(tide_lsn_memo_get(m, "authenticated:a", 15, 11) == 500);
    CHECK(tide_lsn_memo_get(m, "authenticated:a", 15, 12) == 0); /* expired */
    tide_lsn_memo_put(m, "authenticated:a", 15, 300, 13, 20);    /* after expiry: forgotten */
    CHECK(tide_lsn_memo_get(m, "authenticated:a", 15, 14) == 300);
    CHECK(tide_lsn_memo_get(m, "authenticated:b", 15, 14) == 0);
    tide_lsn_memo_free(m);
}

TEST(the_memo_is_bounded_and_keeps_the_newest_under_a_flood)
{
    tide_lsn_memo *m = tide_lsn_memo_new();
    char key[32];
    /* four times its slots, each with a later expiry: memory stays at the slots */
    for (int i = 0; i < 4 * TIDE_MEMO_SLOTS; i++) {
        int n = snprintf(key, sizeof key, "authenticated:%d", i);
        tide_lsn_memo_put(m, key, (size_t)n, (tide_lsn)i + 1, i, (double)i + 1e6);
    }
    CHECK(tide_lsn_memo_count(m) <= TIDE_MEMO_SLOTS);
    /* the last caller written is always found; the first are mostly gone */
    int n = snprintf(key, sizeof key, "authenticated:%d", 4 * TIDE_MEMO_SLOTS - 1);
    CHECK(tide_lsn_memo_get(m, key, (size_t)n, 0) == (tide_lsn)(4 * TIDE_MEMO_SLOTS));
    int found = 0;
    for (int i = 0; i < 1000; i++) {
        n = snprintf(key, sizeof key, "authenticated:%d", i);
        found += tide_lsn_memo_get(m, key, (size_t)n, 0) != 0;
    }
    CHECK(found < 100);
    tide_lsn_memo_free(m);
}

/* With workers the memo is shared memory: a write remembered by one process floors the
 * reads of another; a bucket held by a process that died is taken over, one held by a live
 * process that never lets go is not waited for (get says TIDE_LSN_UNKNOWN: the primary). */
TEST(a_shared_memo_is_seen_across_processes_and_a_dead_holder_does_not_block_it)
{
    void *mem =
        mmap(NULL, tide_lsn_memo_size(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(mem != MAP_FAILED);
    tide_lsn_memo *m = tide_lsn_memo_init(mem, 1);
    pid_t child = fork();
    if (child == 0) {
        tide_lsn_memo_put(m, "authenticated:w", 15, 4242, 0, 100);
        _exit(0);
    }
    int st = 0;
    CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st));
    CHECK(tide_lsn_memo_get(m, "authenticated:w", 15, 1) == 4242);
    /* held by the child, which is gone: taken over */
    tide__lsn_memo_hold(m, "authenticated:w", 15, (int)child);
    CHECK(tide_lsn_memo_get(m, "authenticated:w", 15, 1) == 4242);
    /* held by a live process (init, pid 1) that never lets go: no wait, the primary */
    tide__lsn_memo_hold(m, "authenticated:w", 15, 1);
    CHECK(tide_lsn_memo_get(m, "authenticated:w", 15, 1) == TIDE_LSN_UNKNOWN);
    tide_lsn_memo_put(m, "authenticated:w", 15, 9999, 1, 100); /* skipped, not stuck */
    tide__lsn_memo_hold(m, "authenticated:w", 15, 0);
    CHECK(tide_lsn_memo_get(m, "authenticated:w", 15, 1) == 4242);
    tide_lsn_memo_free(m); /* shared: the mapping is the caller's */
    munmap(mem, tide_lsn_memo_size());
}

TEST(the_memo_key_is_role_and_at_most_63_bytes_of_sub)
{
    char key[128], sub[100];
    memset(sub, 's', 99);
    sub[99] = 0;
    CHECK_EQ_INT(tide_lsn_memo_key("authenticated", "abc", key, sizeof key), 17);
    CHECK_STR(key, "authenticated:abc");
    CHECK_EQ_INT(tide_lsn_memo_key("authenticated", sub, key, sizeof key), 14 + 63);
    CHECK_EQ_INT(tide_lsn_memo_key("anon", "", key, sizeof key), 0);
    CHECK_EQ_INT(tide_lsn_memo_key("anon", NULL, key, sizeof key), 0);
    CHECK_EQ_INT(tide_lsn_memo_key("authenticated", sub, key, 20), 0); /* does not fit */
}

TEST_LIST_BEGIN
TEST_ENTRY(parses_and_formats_postgres_lsns)
TEST_ENTRY(refuses_anything_else_and_leaves_the_output)
TEST_ENTRY(compares_as_integers_across_the_halves)
TEST_ENTRY(lag_is_unknown_until_both_sides_are_seen_and_zero_when_caught_up)
TEST_ENTRY(lag_is_the_age_of_the_oldest_position_not_replayed)
TEST_ENTRY(a_full_ring_keeps_the_oldest_so_the_lag_stays_an_upper_bound)
TEST_ENTRY(the_memo_remembers_each_callers_highest_write_for_its_window)
TEST_ENTRY(the_memo_is_bounded_and_keeps_the_newest_under_a_flood)
TEST_ENTRY(a_shared_memo_is_seen_across_processes_and_a_dead_holder_does_not_block_it)
TEST_ENTRY(the_memo_key_is_role_and_at_most_63_bytes_of_sub)
TEST_LIST_END
