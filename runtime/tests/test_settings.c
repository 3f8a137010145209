/* test_settings.c - the declarative setting tables: the generic reader (types, whole numbers,
 * bounds, unknown keys, key-by-key merging, defaults), ENUM rows with their own names, the
 * environment column and its reader, its printer, and the resilience policy
 * read through its table (policies/resilience.lua as shipped, and broken copies of it), and
 * docs/configuration.md's tables against both schema tables. */
#include "test.h"
#include "../settings.h"
#include "../upstream.h"
#include "../config.h"

#include <lauxlib.h>
#include <lualib.h>

typedef struct demo {
    int count;
    double wait;
    int on;
    int colour;
    size_t bytes;
    char *name, *chan;
} demo;

/* An ENUM row's names: the table knows them, settings.c knows none. */
enum { RED = 1, GREEN = 7 };
static const tide_setting_name colours[] = { { "red", RED }, { "green", GREEN }, { NULL, 0 } };

static const tide_setting demo_table[] = {
    { "s", "count", TIDE_SET_INT, 1, 10, 3, NULL, TIDE_SET_RELOAD, offsetof(demo, count), "",
      "TEST_SET_*_COUNT", NULL },
    { "s", "wait", TIDE_SET_NUMBER, 0.5, 60, 2.5, NULL, 0, offsetof(demo, wait), "",
      "TEST_SET_WAIT", NULL },
    { NULL, "on", TIDE_SET_BOOL, 0, 1, 1, NULL, TIDE_SET_RELOAD, offsetof(demo, on), "",
      "TEST_SET_ON", NULL },
    { NULL, "colour", TIDE_SET_ENUM, 0, 0, -1, NULL, TIDE_SET_RELOAD, offsetof(demo, colour), "",
      "TEST_SET_COLOUR", colours },
    { NULL, "bytes", TIDE_SET_SIZE, 0, 1e12, 64, NULL, TIDE_SET_RELOAD, offsetof(demo, bytes), "",
      "TEST_SET_BYTES", NULL },
    { NULL, "name", TIDE_SET_STRING, 0, 0, 0, "n", TIDE_SET_RELOAD, offsetof(demo, name), "",
      "TEST_SET_NAME", NULL },
    { NULL, "chan", TIDE_SET_STRING, 0, 0, 0, "c", TIDE_SET_RELOAD | TIDE_SET_EMPTY,
      offsetof(demo, chan), "", "TEST_SET_CHAN", NULL },
};
#define NDEMO (sizeof demo_table / sizeof demo_table[0])

/* Runs "return <src>" and reads the result into *d over the defaults; err gets the message. */
static int read_demo(const char *src, demo *d, char *err, size_t n)
{
    lua_State *L = luaL_newstate();
    char chunk[512];
    snprintf(chunk, sizeof chunk, "return %s", src);
    if (luaL_dostring(L, chunk) != 0) {
        lua_close(L);
        return 999;
    }
    if (tide_settings_defaults(demo_table, NDEMO, d) != 0) {
        lua_close(L);
        return 997;
    }
    err[0] = '\0';
    int top = lua_gettop(L);
    int rc = tide_settings_read(L, -1, demo_table, NDEMO, d, "x", err, n);
    if (lua_gettop(L) != top) rc = 998; /* the stack must be left as it was */
    lua_close(L);
    tide_settings_free(demo_table, NDEMO, d); /* the strings are not looked at here */
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
    CHECK_EQ_INT(d.colour, -1);
    CHECK_EQ_INT(read_demo("{ s = { count = 10, wait = 0.5 }, on = false, colour = 'green' }", &d,
                           err, sizeof err),
                 0);
    CHECK_EQ_INT(d.count, 10);
    CHECK(d.wait == 0.5);
    CHECK_EQ_INT(d.on, 0);
    CHECK_EQ_INT(d.colour, GREEN);
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
    CHECK_EQ_INT(read_demo("{ colour = 'blue' }", &d, err, sizeof err), TIDE_EINVAL);
    CHECK_STR(err, "x.colour must be one of red, green");
    CHECK_EQ_INT(read_demo("{ colour = 7 }", &d, err, sizeof err), TIDE_EINVAL);
    CHECK_STR(err, "x.colour must be one of red, green");
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

static const char *const demo_env[] = { "TEST_SET_A_COUNT", "TEST_SET_WAIT",
                                        "TEST_SET_ON",      "TEST_SET_COLOUR",
                                        "TEST_SET_BYTES",   "TEST_SET_NAME",
                                        "TEST_SET_CHAN",    NULL };

/* Sets the demo variables from "NAME=value" pairs (NULL value: unset), the others unset, then
 * applies them over the defaults with instance "a". */
static int env_demo(const char *const *pairs, demo *d, char *err, size_t n)
{
    for (const char *const *v = demo_env; *v; v++) unsetenv(*v);
    for (const char *const *p = pairs; p && *p; p++) {
        char name[64];
        const char *eq = strchr(*p, '=');
        snprintf(name, sizeof name, "%.*s", (int)(eq - *p), *p);
        setenv(name, eq + 1, 1);
    }
    if (tide_settings_defaults(demo_table, NDEMO, d) != 0) return 997;
    err[0] = '\0';
    return tide_settings_env(demo_table, NDEMO, d, "a", err, n);
}

TEST(env_column_overrides)
{
    demo d;
    char err[256];
    /* nothing set: the defaults */
    CHECK_EQ_INT(env_demo(NULL, &d, err, sizeof err), 0);
    CHECK_EQ_INT(d.count, 3);
    CHECK_STR(d.name, "n");
    CHECK_STR(d.chan, "c");
    tide_settings_free(demo_table, NDEMO, &d);
    /* every type; '*' is the instance, upper-cased */
    static const char *const all[] = { "TEST_SET_A_COUNT=10",
                                       "TEST_SET_WAIT=0.75",
                                       "TEST_SET_ON=0",
                                       "TEST_SET_COLOUR=red",
                                       "TEST_SET_BYTES=1000000000000",
                                       "TEST_SET_NAME=x",
                                       "TEST_SET_CHAN=y",
                                       NULL };
    CHECK_EQ_INT(env_demo(all, &d, err, sizeof err), 0);
    CHECK_EQ_INT(d.count, 10);
    CHECK(d.wait == 0.75);
    CHECK_EQ_INT(d.on, 0);
    CHECK_EQ_INT(d.colour, RED);
    CHECK(d.bytes == 1000000000000ULL);
    CHECK_STR(d.name, "x");
    CHECK_STR(d.chan, "y");
    tide_settings_free(demo_table, NDEMO, &d);
    /* empty is unset, except where "" is a value of its own */
    static const char *const empty[] = { "TEST_SET_A_COUNT=", "TEST_SET_ON=",     "TEST_SET_NAME=",
                                         "TEST_SET_CHAN=",    "TEST_SET_COLOUR=", NULL };
    CHECK_EQ_INT(env_demo(empty, &d, err, sizeof err), 0);
    CHECK_EQ_INT(d.count, 3);
    CHECK_EQ_INT(d.on, 1);
    CHECK_EQ_INT(d.colour, -1);
    CHECK_STR(d.name, "n");
    CHECK_STR(d.chan, "");
    tide_settings_free(demo_table, NDEMO, &d);
    for (const char *const *v = demo_env; *v; v++) unsetenv(*v);
}

TEST(env_column_refusals_name_the_variable)
{
    static const struct {
        const char *pair, *msg;
    } cases[] = {
        { "TEST_SET_A_COUNT=11", "TEST_SET_A_COUNT must be a whole number in 1..10" },
        { "TEST_SET_A_COUNT=3x", "TEST_SET_A_COUNT must be a whole number in 1..10" },
        { "TEST_SET_A_COUNT=2.5", "TEST_SET_A_COUNT must be a whole number in 1..10" },
        { "TEST_SET_WAIT=0.1", "TEST_SET_WAIT must be a number in 0.5..60" },
        { "TEST_SET_WAIT=nan", "TEST_SET_WAIT must be a number in 0.5..60" },
        { "TEST_SET_ON=yes", "TEST_SET_ON must be 0 or 1" },
        { "TEST_SET_COLOUR=blue", "TEST_SET_COLOUR must be one of red, green" },
        { "TEST_SET_BYTES=-1", "TEST_SET_BYTES must be a whole number in 0..1000000000000" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        demo d;
        char err[256];
        const char *pairs[] = { cases[i].pair, NULL };
        CHECK_EQ_INT(env_demo(pairs, &d, err, sizeof err), TIDE_EINVAL);
        CHECK_STR(err, cases[i].msg);
        tide_settings_free(demo_table, NDEMO, &d);
    }
    for (const char *const *v = demo_env; *v; v++) unsetenv(*v);
}

TEST(printer_marks_restart_only_keys)
{
    demo d = { 4, 1.5, 0, GREEN, 64, NULL, NULL };
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tide_settings_print(f, "x", demo_table, NDEMO, &d, "a");
    fclose(f);
    CHECK(strstr(buf, "x.s.count") != NULL);
    CHECK(strstr(buf, "= 4   (env TEST_SET_A_COUNT)\n") != NULL);
    CHECK(strstr(buf, "= 1.5   (restart)   (env TEST_SET_WAIT)\n") != NULL);
    CHECK(strstr(buf, "= false   (env TEST_SET_ON)\n") != NULL);
    CHECK(strstr(buf, "= green   (env TEST_SET_COLOUR)\n") != NULL);
    CHECK(strstr(buf, "x.name                                   = (unset)") != NULL);
    free(buf);
}

TEST(schema_as_lua)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tide_settings_write_lua(f, demo_table, NDEMO, NULL);
    fclose(f);
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    char chunk[4096];
    snprintf(chunk, sizeof chunk,
             "local t = %s\n"
             "assert(#t == 7)\n"
             "assert(t[1].section == 's' and t[1].key == 'count' and t[1].type == 'int')\n"
             "assert(t[1].min == 1 and t[1].max == 10 and t[1].default == 3 and t[1].reload)\n"
             "assert(t[1].env == 'TEST_SET_*_COUNT')\n"
             "assert(t[2].default == 2.5 and t[2].min == 0.5 and not t[2].reload)\n"
             "assert(t[3].default == true)\n"
             "assert(t[4].type == 'enum' and t[4].default == nil)\n"
             "assert(t[4].names[1] == 'red' and t[4].names[2] == 'green' and not t[4].names[3])\n"
             "assert(t[5].max == 1e12 and t[6].default == 'n' and t[7].empty)\n",
             buf);
    int rc = luaL_dostring(L, chunk);
    if (rc != 0) fprintf(stderr, "  %s\n%s\n", lua_tostring(L, -1), buf);
    CHECK_EQ_INT(rc, 0);
    lua_close(L);
    free(buf);
}

/* Reads the policy "return <src>" into res; err gets the message. */
static int read_policy(const char *src, tide_resilience res[TIDE_UPSTREAMS], char *err, size_t n)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    char chunk[1024];
    snprintf(chunk, sizeof chunk, "return %s", src);
    if (luaL_dostring(L, chunk) != 0) {
        lua_close(L);
        return 999;
    }
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
    for (int i = 0; i < TIDE_UPSTREAMS; i++) CHECK(memcmp(&res[i], &def, sizeof def) == 0);
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
                             res, err, sizeof err),
                 0);
    CHECK_EQ_INT(res[TIDE_UP_DIRECT].retry_attempts, 5);
    CHECK_EQ_INT(res[TIDE_UP_SESSION].retry_attempts, 1);
    CHECK(res[TIDE_UP_SESSION].retry_cap == 2.0);   /* from defaults, beside its own */
    CHECK(res[TIDE_UP_SESSION].retry_base == 0.05); /* from the table */
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
    static const struct {
        const char *src, *msg;
    } cases[] = {
        { "{ defaults = { retry = { attempts = 0 } } }",
          "policies/resilience.lua: direct.retry.attempts must be in 1..10, got 0" },
        { "{ upstreams = { session = { retry = { attempts = 2.5 } } } }",
          "policies/resilience.lua: session.retry.attempts must be an integer" },
        { "{ upstreams = { direct = { breakr = { open_wait = 1 } } } }",
          "policies/resilience.lua: direct.breakr is not a setting (a typo?)" },
        { "{ upstreams = { replicas = {} } }",
          "policies/resilience.lua: unknown upstream 'replicas'" },
        { "{ upstreams = { session = { fallback = 'replicas' } } }",
          "policies/resilience.lua: session.fallback must be one of direct, session, "
          "transaction, replica" },
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
    case TIDE_SET_ENUM: snprintf(out, cap, "%s", r->def < 0 ? "none" : ""); break;
    case TIDE_SET_TABLE:
    case TIDE_SET_IGNORED: out[0] = '\0'; break;
    default: snprintf(out, cap, "%.15g", r->def); break;
    }
}

/* Every row of t has a table row in doc naming `prefix.section.key` that shows its default
 * (in the tables of keys, "| Key | ...": the list of environment variables names keys too). */
static int doc_documents(const char *doc, const char *prefix, const tide_setting *t, size_t n)
{
    doc = strstr(doc, "\n| Key |");
    if (!doc) {
        fprintf(stderr, "  docs/configuration.md: no table of keys\n");
        return 0;
    }
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
TEST_ENTRY(env_column_overrides)
TEST_ENTRY(env_column_refusals_name_the_variable)
TEST_ENTRY(printer_marks_restart_only_keys)
TEST_ENTRY(schema_as_lua)
TEST_ENTRY(policy_defaults_live_in_the_table)
TEST_ENTRY(policy_merges_key_by_key)
TEST_ENTRY(policy_as_shipped)
TEST_ENTRY(policy_refusals_name_the_key)
TEST_ENTRY(docs_match_the_tables)
TEST_LIST_END
