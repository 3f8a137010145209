/* test_settings.c - the declarative setting tables: the generic reader (types, whole numbers,
 * bounds, unknown keys, key-by-key merging, defaults), its printer, and the resilience policy
 * read through its table (policies/resilience.lua as shipped, and broken copies of it), and
 * docs/configuration.md's tables against both schema tables. */
#include "test.h"
#include "../settings.h"
#include "../upstream.h"
#include "../config.h"

#include <lauxlib.h>
#include <lualib.h>

typedef struct demo { int count; double wait; int on; int up; } demo;

static const tide_setting demo_table[] = {
    { "s", "count", TIDE_SET_INT, 1, 10, 3, NULL, TIDE_SET_RELOAD, offsetof(demo, count), "" },
    { "s", "wait", TIDE_SET_NUMBER, 0.5, 60, 2.5, NULL, 0, offsetof(demo, wait), "" },
    { NULL, "on", TIDE_SET_BOOL, 0, 1, 1, NULL, TIDE_SET_RELOAD, offsetof(demo, on), "" },
    { NULL, "up", TIDE_SET_UPSTREAM, 0, 0, -1, NULL, TIDE_SET_RELOAD, offsetof(demo, up), "" },
};
#define NDEMO (sizeof demo_table / sizeof demo_table[0])

/* Runs "return <src>" and reads the result into *d over the defaults; err gets the message. */
static int read_demo(const char *src, demo *d, char *err, size_t n)
{
    lua_State *L = luaL_newstate();
    char chunk[512];
    snprintf(chunk, sizeof chunk, "return %s", src);
    if (luaL_dostring(L, chunk) != 0) { lua_close(L); return 999; }
    if (tide_settings_defaults(demo_table, NDEMO, d) != 0) { lua_close(L); return 997; }
    err[0] = '\0';
    int top = lua_gettop(L);
    int rc = tide_settings_read(L, -1, demo_table, NDEMO, d, "x", err, n);
    if (lua_gettop(L) != top) rc = 998;          /* the stack must be left as it was */
    lua_close(L);
    return rc;
}

TEST(reader_defaults_and_values)
{
    demo d;
    char err[256];
    CHECK_EQ_INT(read_demo("{}", &d, err, sizeof err), 0);
    CHECK_EQ_INT(d.count, 3);
    CHECK(d.wait == 2.5);
    CHECK_EQ_INT(d.on, 1);
    CHECK_EQ_INT(d.up, -1);
    CHECK_EQ_INT(read_demo("{ s = { count = 10, wait = 0.5 }, on = false, up = 'session' }",
                           &d, err, sizeof err), 0);
    CHECK_EQ_INT(d.count, 10);
    CHECK(d.wait == 0.5);
    CHECK_EQ_INT(d.on, 0);
    CHECK_EQ_INT(d.up, TIDE_UP_SESSION);
}

TEST(reader_types_and_bounds)
{
    demo d;
    char err[256];
    CHECK_EQ_INT(read_demo("{ s = { count = '3' } }", &d, err, sizeof err), TIDE_EINVAL);
    CHECK_STR(err, "x.s.count must be a number");
    CHECK_EQ_INT(read_demo("{ s = { count = 2.5 } }", &d, err, sizeof err), TIDE_EINVAL);
    CHECK_STR(err, "x.s.count must be an integer");
    CHECK_EQ_INT(read_demo("{ s = { count = 0 } }", &d, err, sizeof err), TIDE_EINVAL);
    CHECK_STR(err, "x.s.count must be in 1..10, got 0");
    CHECK_EQ_INT(read_demo("{ s = { wait = 0/0 } }", &d, err, sizeof err), TIDE_EINVAL);
    CHECK_STR(err, "x.s.wait must be a number");
    CHECK_EQ_INT(read_demo("{ s = { wait = 1/0 } }", &d, err, sizeof err), TIDE_EINVAL);
    CHECK_STR(err, "x.s.wait must be in 0.5..60, got inf");
    CHECK_EQ_INT(read_demo("{ on = 'yes' }", &d, err, sizeof err), TIDE_EINVAL);
    CHECK_STR(err, "x.on must be true or false");
    CHECK_EQ_INT(read_demo("{ up = 'replica' }", &d, err, sizeof err), TIDE_EINVAL);
    CHECK_STR(err, "x.up must name an upstream");
}

TEST(reader_refuses_unknown_keys)
{
    demo d;
    char err[256];
    CHECK_EQ_INT(read_demo("{ s = { cuont = 3 } }", &d, err, sizeof err), TIDE_EINVAL);
    CHECK_STR(err, "x.s.cuont is not a setting (a typo?)");
    CHECK_EQ_INT(read_demo("{ t = { count = 3 } }", &d, err, sizeof err), TIDE_EINVAL);
    CHECK_STR(err, "x.t is not a setting (a typo?)");
    CHECK_EQ_INT(read_demo("{ s = 3 }", &d, err, sizeof err), TIDE_EINVAL);
    CHECK_STR(err, "x.s must be a table");
    CHECK_EQ_INT(read_demo("{ count = 3 }", &d, err, sizeof err), TIDE_EINVAL);
    CHECK_STR(err, "x.count is not a setting (a typo?)");
}

TEST(printer_marks_restart_only_keys)
{
    demo d = { 4, 1.5, 0, TIDE_UP_TRANSACTION };
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tide_settings_print(f, "x", demo_table, NDEMO, &d);
    fclose(f);
    CHECK(strstr(buf, "x.s.count") != NULL);
    CHECK(strstr(buf, "= 4\n") != NULL);
    CHECK(strstr(buf, "= 1.5   (restart)\n") != NULL);
    CHECK(strstr(buf, "= false\n") != NULL);
    CHECK(strstr(buf, "= transaction\n") != NULL);
    free(buf);
}

/* Reads the policy "return <src>" into res; err gets the message. */
static int read_policy(const char *src, tide_resilience res[TIDE_UPSTREAMS], char *err,
                       size_t n)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    char chunk[1024];
    snprintf(chunk, sizeof chunk, "return %s", src);
    if (luaL_dostring(L, chunk) != 0) { lua_close(L); return 999; }
    err[0] = '\0';
    int rc = tide_resilience_read(L, -1, res, err, n);
    lua_close(L);
    return rc;
}

TEST(policy_defaults_live_in_the_table)
{
    tide_resilience res[TIDE_UPSTREAMS], def;
    char err[256];
    tide_resilience_defaults(&def);
    CHECK_EQ_INT(def.retry_attempts, 3);
    CHECK(def.pool.acquire_timeout == 2.0);
    CHECK(def.pool.statement_timeout == 5.0);
    CHECK_EQ_INT(def.breaker.window, 20);
    CHECK_EQ_INT(def.fallback, -1);
    CHECK_EQ_INT(def.required, 1);
    /* an empty policy is the defaults, for every upstream */
    CHECK_EQ_INT(read_policy("{}", res, err, sizeof err), 0);
    for (int i = 0; i < TIDE_UPSTREAMS; i++)
        CHECK(memcmp(&res[i], &def, sizeof def) == 0);
}

TEST(policy_merges_key_by_key)
{
    tide_resilience res[TIDE_UPSTREAMS];
    char err[256];
    CHECK_EQ_INT(read_policy("{ defaults = { retry = { attempts = 5, cap = 2 } },"
                             "  upstreams = { session = { retry = { attempts = 1 },"
                             "                            depends_on = 'direct' },"
                             "                transaction = { fallback = 'direct',"
                             "                                required = false } } }",
                             res, err, sizeof err), 0);
    CHECK_EQ_INT(res[TIDE_UP_DIRECT].retry_attempts, 5);
    CHECK_EQ_INT(res[TIDE_UP_SESSION].retry_attempts, 1);
    CHECK(res[TIDE_UP_SESSION].retry_cap == 2.0);       /* from defaults, beside its own */
    CHECK(res[TIDE_UP_SESSION].retry_base == 0.05);     /* from the table */
    CHECK_EQ_INT(res[TIDE_UP_SESSION].depends_on, TIDE_UP_DIRECT);
    CHECK_EQ_INT(res[TIDE_UP_TRANSACTION].fallback, TIDE_UP_DIRECT);
    CHECK_EQ_INT(res[TIDE_UP_TRANSACTION].required, 0);
    CHECK_EQ_INT(res[TIDE_UP_DIRECT].required, 1);
}

TEST(policy_as_shipped)
{
    tide_resilience res[TIDE_UPSTREAMS];
    char err[256];
    CHECK_EQ_INT(read_policy("dofile('policies/resilience.lua')", res, err, sizeof err), 0);
    CHECK_EQ_INT(res[TIDE_UP_TRANSACTION].fallback, TIDE_UP_DIRECT);
    CHECK_EQ_INT(res[TIDE_UP_TRANSACTION].depends_on, TIDE_UP_DIRECT);
    CHECK_EQ_INT(res[TIDE_UP_SESSION].depends_on, TIDE_UP_DIRECT);
    CHECK_EQ_INT(res[TIDE_UP_DIRECT].fallback, -1);
    CHECK_EQ_INT(res[TIDE_UP_TRANSACTION].required, 0);
}

TEST(policy_refusals_name_the_key)
{
    static const struct { const char *src, *msg; } cases[] = {
        { "{ defaults = { retry = { attempts = 0 } } }",
          "policies/resilience.lua: direct.retry.attempts must be in 1..10, got 0" },
        { "{ upstreams = { session = { retry = { attempts = 2.5 } } } }",
          "policies/resilience.lua: session.retry.attempts must be an integer" },
        { "{ upstreams = { direct = { breakr = { open_wait = 1 } } } }",
          "policies/resilience.lua: direct.breakr is not a setting (a typo?)" },
        { "{ upstreams = { replica = {} } }",
          "policies/resilience.lua: unknown upstream 'replica'" },
        { "{ upstreams = { session = { fallback = 'replica' } } }",
          "policies/resilience.lua: session.fallback must name an upstream" },
        { "{ upstreams = { direct = { fallback = 'direct' } } }",
          "policies/resilience.lua: direct.fallback cannot be itself" },
        { "{ upstreams = { direct = { fallback = 'transaction' },"
          " transaction = { fallback = 'direct' } } }",
          "policies/resilience.lua: fallback cycle through direct" },
        { "{ defaults = { breaker = { min_calls = 50 } } }",
          "policies/resilience.lua: direct.breaker.min_calls cannot exceed breaker.window" },
        { "{ defaults = { retry = { base = 5, cap = 1 } } }",
          "policies/resilience.lua: direct.retry.base cannot exceed retry.cap" },
        { "{ defaults = { required = 'yes' } }",
          "policies/resilience.lua: direct.required must be true or false" },
        { "{ defaults = { pool = { statement_timeout = 0/0 } } }",
          "policies/resilience.lua: direct.pool.statement_timeout must be a number" },
        { "{ upstreams = { direct = 3 } }",
          "policies/resilience.lua: upstreams.direct must be a table" },
        { "3", "policies/resilience.lua: must return a table" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tide_resilience res[TIDE_UPSTREAMS];
        char err[256];
        CHECK_EQ_INT(read_policy(cases[i].src, res, err, sizeof err), TIDE_EINVAL);
        CHECK_STR(err, cases[i].msg);
    }
}

/* docs/configuration.md, the Configuration page, read whole (NULL if it cannot be read, does
 * not fit, or is not that page). */
static char *doc_configuration(void)
{
    FILE *f = fopen("docs/configuration.md", "r");
    if (!f) return NULL;
    static char buf[1 << 17];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    int whole = feof(f) && !ferror(f);
    fclose(f);
    buf[len] = '\0';
    if (!whole || strncmp(buf, "# Configuration\n", 16) != 0) return NULL;
    return buf;
}

/* The default of row r as the page writes it ("" when there is nothing to show). */
static void doc_default(const tide_setting *r, char *out, size_t cap)
{
    switch (r->type) {
    case TIDE_SET_STRING: snprintf(out, cap, "%s", r->def_str ? r->def_str : ""); break;
    case TIDE_SET_BOOL: snprintf(out, cap, "%s", r->def ? "true" : "false"); break;
    case TIDE_SET_UPSTREAM: snprintf(out, cap, "%s", r->def < 0 ? "none" : ""); break;
    case TIDE_SET_TABLE: case TIDE_SET_IGNORED: out[0] = '\0'; break;
    default: snprintf(out, cap, "%.15g", r->def); break;
    }
}

/* Every row of t has a table row in doc naming `prefix.section.key` that shows its default. */
static int doc_documents(const char *doc, const char *prefix, const tide_setting *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (t[i].type == TIDE_SET_TABLE || t[i].type == TIDE_SET_IGNORED) continue;
        char name[160], def[64];
        snprintf(name, sizeof name, "`%s%s%s%s%s`", prefix ? prefix : "", prefix ? "." : "",
                 t[i].section ? t[i].section : "", t[i].section ? "." : "", t[i].key);
        /* the table row: a line starting with '|' that names it */
        const char *at = doc;
        while ((at = strstr(at, name)) != NULL) {
            const char *bol = at;
            while (bol > doc && bol[-1] != '\n') bol--;
            if (*bol == '|') break;
            at++;
        }
        if (!at) {
            fprintf(stderr, "  docs/configuration.md: no table row for %s\n", name);
            return 0;
        }
        const char *eol = strchr(at, '\n');
        size_t linelen = eol ? (size_t)(eol - at) : strlen(at);
        doc_default(&t[i], def, sizeof def);
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)linelen, at);
        if (def[0] && !strstr(line, def)) {
            fprintf(stderr, "  docs/configuration.md: %s does not show its default %s\n", name,
                    def);
            return 0;
        }
    }
    return 1;
}

/* docs/configuration.md's tables name every key of both schema tables with its default. */
TEST(docs_match_the_tables)
{
    const char *doc = doc_configuration();
    CHECK(doc != NULL);
    size_t n;
    const tide_setting *t = tide_resilience_table(&n);
    CHECK(doc_documents(doc, NULL, t, n));
    t = tide_config_table(&n);
    CHECK(doc_documents(doc, NULL, t, n));
    t = tide_config_upstream_table(&n);
    CHECK(doc_documents(doc, "upstreams.NAME", t, n));
}

TEST_LIST_BEGIN
    TEST_ENTRY(reader_defaults_and_values)
    TEST_ENTRY(reader_types_and_bounds)
    TEST_ENTRY(reader_refuses_unknown_keys)
    TEST_ENTRY(printer_marks_restart_only_keys)
    TEST_ENTRY(policy_defaults_live_in_the_table)
    TEST_ENTRY(policy_merges_key_by_key)
    TEST_ENTRY(policy_as_shipped)
    TEST_ENTRY(policy_refusals_name_the_key)
    TEST_ENTRY(docs_match_the_tables)
TEST_LIST_END
