/* test_qstats.c - statement statistics (/admin/queries): a full table still counts new
 * statements under "(other)" of their upstream, and statements that differ only in their
 * quoted column aliases (client input on /rest/v1) count as one, shown without the names. */
#include "test.h"
#include "../qstats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The calls of (upstream, statement) in /admin/queries' document, or -1 when it is absent. */
static long long calls_of(const char *upstream, const char *statement)
{
    size_t len = 0;
    char *doc = tide_qstats_json(-1, &len);
    if (!doc) return -2;
    char needle[4096];
    size_t k =
        (size_t)snprintf(needle, sizeof needle, "{\"upstream\":\"%s\",\"statement\":\"", upstream);
    for (const char *s = statement; *s && k + 3 < sizeof needle; s++) {
        if (*s == '"' || *s == '\\') needle[k++] = '\\';
        needle[k++] = *s;
    }
    snprintf(needle + k, sizeof needle - k, "\",\"calls\":");
    const char *at = strstr(doc, needle);
    long long n = at ? strtoll(at + strlen(needle), NULL, 10) : -1;
    free(doc);
    return n;
}

static int tracked(void)
{
    size_t len = 0;
    char *doc = tide_qstats_json(0, &len);
    if (!doc) return -1;
    const char *at = strstr(doc, "\"tracked\":");
    int n = at ? atoi(at + 10) : -1;
    free(doc);
    return n;
}

static int text_appears(const char *needle)
{
    size_t len = 0;
    char *doc = tide_qstats_json(-1, &len);
    int found = doc && strstr(doc, needle) != NULL;
    free(doc);
    return found;
}

TEST(a_full_table_counts_new_statements_under_other)
{
    tide_qstats_reset();
    char sql[64];
    for (int i = 0; i < TIDE_QSTATS_MAX; i++) {
        snprintf(sql, sizeof sql, "select %d", i);
        tide_qstats_record(0, sql, 0.001, 1, 0);
    }
    CHECK_EQ_INT(tracked(), TIDE_QSTATS_MAX);
    CHECK_EQ_INT(calls_of("direct", "(other)"), -1); /* not needed yet */
    tide_qstats_record(0, "select 'late'", 0.002, 3, 0);
    tide_qstats_record(0, "select 'later'", 0.002, 1, 1);
    CHECK_EQ_INT(calls_of("direct", "(other)"), 2);
    CHECK_EQ_INT(calls_of("direct", "select 'late'"), -1);
    /* a known statement still counts under its own text */
    tide_qstats_record(0, "select 7", 0.001, 1, 0);
    CHECK_EQ_INT(calls_of("direct", "select 7"), 2);
    /* every upstream has its own (other), whoever filled the table */
    tide_qstats_record(1, "select 'elsewhere'", 0.001, 1, 0);
    tide_qstats_record(2, NULL, 0.001, 0, 0);
    CHECK_EQ_INT(calls_of("session", "(other)"), 1);
    CHECK_EQ_INT(calls_of("transaction", "(other)"), 1);
    /* and nothing is lost over many more */
    for (int i = 0; i < 5000; i++) {
        snprintf(sql, sizeof sql, "select 'x%d'", i);
        tide_qstats_record(0, sql, 0.001, 1, 0);
    }
    CHECK_EQ_INT(calls_of("direct", "(other)"), 5002);
    CHECK(tracked() <= TIDE_QSTATS_MAX + 3);
    tide_qstats_reset();
    CHECK_EQ_INT(tracked(), 0);
}

TEST(aliases_do_not_make_statements_of_their_own)
{
    tide_qstats_reset();
    char sql[256];
    /* 2000 requests, each with its own alias names: one statement per shape */
    for (int i = 0; i < 2000; i++) {
        snprintf(sql, sizeof sql,
                 "SELECT coalesce(json_agg(_t), '[]')::text FROM (SELECT "
                 "\"id\" AS \"secret%d\", \"name\"::text AS \"n%d\" FROM \"trips\") _t",
                 i, i);
        tide_qstats_record(2, sql, 0.001, 1, 0);
    }
    CHECK_EQ_INT(tracked(), 1);
    CHECK_EQ_INT(calls_of("transaction",
                          "SELECT coalesce(json_agg(_t), '[]')::text FROM "
                          "(SELECT \"id\" AS \"?\", \"name\"::text AS \"?\" FROM \"trips\") _t"),
                 2000);
    CHECK(!text_appears("secret"));
    /* an embed's alias, lower-case as, "" inside the name, white space before it */
    tide_qstats_record(2, "select (SELECT 1) AS \"a\"\"b\", x as  \"c\" from t", 0.001, 1, 0);
    tide_qstats_record(2, "select (SELECT 1) AS \"zz\", x as  \"yy\" from t", 0.001, 1, 0);
    CHECK_EQ_INT(calls_of("transaction", "select (SELECT 1) AS \"?\", x as  \"?\" from t"), 2);
    /* what is not an alias stays: a quoted name before AS, unquoted aliases, literals, and
     * words that only end in "as" */
    const char *kept[] = {
        "WITH \"f\" AS (SELECT 1) SELECT * FROM \"f\"",
        "SELECT x AS y FROM t",
        "SELECT 'it''s AS \"lit\"' AS v",
        "SELECT \"has AS \"\"q\"\"\" FROM t",
        "SELECT 1 FROM \"alias\", \"was\"",
        "SELECT x::alias\"y\"",
    };
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        tide_qstats_record(0, kept[i], 0.001, 1, 0);
        CHECK_EQ_INT(calls_of("direct", kept[i]), 1);
    }
    tide_qstats_reset();
}

TEST(the_shape_is_what_the_slow_query_line_shows)
{
    char out[64];
    size_t n = tide_qstats_shape("SELECT a AS \"mine\" FROM t", out, sizeof out);
    CHECK_STR(out, "SELECT a AS \"?\" FROM t");
    CHECK_EQ_INT(n, strlen(out));
    /* cut to the buffer, still terminated */
    n = tide_qstats_shape("SELECT a AS \"mine\" FROM a_table_with_a_long_name", out, 16);
    CHECK_EQ_INT(n, 15);
    CHECK_STR(out, "SELECT a AS \"?\"");
    /* a $tag$ literal is kept whole; $1 is a parameter, not one */
    tide_qstats_shape("SELECT $f$ AS \"in\" $f$ AS \"out\", $1 AS \"p\"", out, sizeof out);
    CHECK_STR(out, "SELECT $f$ AS \"in\" $f$ AS \"?\", $1 AS \"?\"");
    tide_qstats_shape("SELECT $$ AS \"open", out, sizeof out);
    CHECK_STR(out, "SELECT $$ AS \"open");
    n = tide_qstats_shape("SELECT 1", out, 1);
    CHECK_EQ_INT(n, 0);
    CHECK_STR(out, "");
}

TEST_LIST_BEGIN
TEST_ENTRY(a_full_table_counts_new_statements_under_other)
TEST_ENTRY(aliases_do_not_make_statements_of_their_own)
TEST_ENTRY(the_shape_is_what_the_slow_query_line_shows)
TEST_LIST_END
