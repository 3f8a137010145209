/* test.h - a tiny test harness for tide's C unit tests (after libuv's test/task.h and
 * test/test-list.h). One test file = one binary:
 *
 *   TEST(parse_ok) { CHECK_EQ_INT(parse("1"), 1); }
 *   TEST_LIST_BEGIN
 *       TEST_ENTRY(parse_ok)
 *   TEST_LIST_END
 *
 * TEST_LIST_END defines main(): it runs every test (or only those named on the command line),
 * prints "ok NAME" / "FAIL NAME" per test and the closing line "N passed, N failed", and exits
 * non-zero when anything failed. A failed CHECK prints file:line and returns from the current
 * function, so use CHECKs only in functions returning void. CHECKs may run on another thread
 * (a client thread in the http test) as long as the main thread joins it before the test
 * ends. */
#ifndef TIDE_TEST_H
#define TIDE_TEST_H

#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <stdatomic.h>

typedef struct test_entry {
    const char *name;
    void (*fn)(void);
} test_entry;

/* Set by a failed CHECK; reset before every test. Atomic: client threads may fail checks. */
static atomic_int test_failed_;

#define TEST_FAIL_(...)                                   \
    do {                                                  \
        fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                     \
        fputc('\n', stderr);                              \
        atomic_store(&test_failed_, 1);                   \
    } while (0)

#define CHECK(cond)                                \
    do {                                           \
        if (!(cond)) {                             \
            TEST_FAIL_("CHECK(%s) failed", #cond); \
            return;                                \
        }                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                               \
    do {                                                                 \
        long long a_ = (long long)(a), b_ = (long long)(b);              \
        if (a_ != b_) {                                                  \
            TEST_FAIL_("%s == %s failed: %lld != %lld", #a, #b, a_, b_); \
            return;                                                      \
        }                                                                \
    } while (0)

#define CHECK_STR(a, b)                                                                 \
    do {                                                                                \
        const char *a_ = (a), *b_ = (b);                                                \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                        \
            TEST_FAIL_("%s == %s failed: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", \
                       b_ ? b_ : "(null)");                                             \
            return;                                                                     \
        }                                                                               \
    } while (0)

/* a (not NUL-terminated, alen bytes) equals the C string b */
#define CHECK_MEM_STR(a, alen, b)                                                             \
    do {                                                                                      \
        const char *a_ = (a), *b_ = (b);                                                      \
        size_t al_ = (alen);                                                                  \
        if (!b_ || al_ != strlen(b_) || (al_ && (!a_ || memcmp(a_, b_, al_)))) {              \
            TEST_FAIL_("%s == %s failed: \"%.*s\" != \"%s\"", #a, #b, (int)al_, a_ ? a_ : "", \
                       b_ ? b_ : "(null)");                                                   \
            return;                                                                           \
        }                                                                                     \
    } while (0)

#define TEST(name)       static void test_##name(void)
#define TEST_LIST_BEGIN  static const test_entry test_list_[] = {
#define TEST_ENTRY(name) { #name, test_##name },
#define TEST_LIST_END \
    {                 \
        NULL, NULL    \
    }                 \
    }                 \
    ;                 \
    int main(int argc, char **argv) { return test_run_(test_list_, argc, argv); }

static int test_selected_(const char *name, int argc, char **argv)
{
    if (argc < 2) return 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0) return 1;
    return 0;
}

static int test_run_(const test_entry *list, int argc, char **argv)
{
    int passed = 0, failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (const test_entry *t = list; t->name; t++) {
        if (!test_selected_(t->name, argc, argv)) continue;
        atomic_store(&test_failed_, 0);
        t->fn();
        if (atomic_load(&test_failed_)) {
            printf("FAIL %s\n", t->name);
            failed++;
        } else {
            printf("ok   %s\n", t->name);
            passed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#endif
