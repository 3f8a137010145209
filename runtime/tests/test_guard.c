/* test_guard.c - scripts' budgets (runtime/guard.h): runs of Lua stopped at their CPU budget
 * whatever they do (a plain loop, a loop that catches the stop with pcall, a loop the JIT
 * compiled), the memory bound refusing inside runs only, and the quarantine's bookkeeping on
 * a fake clock. A run that is never stopped would hang the test: an alarm ends it with a
 * failure instead. */
#include "test.h"
#include "../guard.h"

#include <signal.h>
#include <unistd.h>
#include <lauxlib.h>
#include <lualib.h>

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "FAIL: a run of Lua was not stopped at its budget\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

/* Runs chunk in a fresh state under a budget of ms; returns why it was stopped, and in
 * *took_ms how long it ran. */
static int run_chunk(const char *chunk, int64_t ms, size_t limit, double *took_ms, char *where,
                     size_t wherelen)
{
    signal(SIGALRM, on_alarm);
    if (tide_guard_start() != 0) return -1;
    lua_State *L = luaL_newstate();
    tide_guard_mem mem;
    tide_guard_mem_attach(&mem, L, limit);
    luaL_openlibs(L);
    if (luaL_loadbuffer(L, chunk, strlen(chunk), "=chunk") != 0) {
        fprintf(stderr, "  %s\n", lua_tostring(L, -1));
        lua_close(L);
        return -1;
    }
    alarm(10);
    tide_guard_run run;
    int64_t spent;
    tide_guard_enter(&run, L, &mem, ms * 1000000, "GET /test");
    lua_pcall(L, 0, 0, 0);
    int why = tide_guard_leave(&run, &spent, where, wherelen);
    alarm(0);
    *took_ms = (double)spent / 1e6;
    tide_guard_mem_detach(&mem, L);
    lua_close(L);
    return why;
}

TEST(a_loop_is_stopped_at_its_budget)
{
    double ms;
    char where[64];
    int why =
        run_chunk("local i = 0\nwhile true do i = i + 1 end", 50, 0, &ms, where, sizeof where);
    CHECK_EQ_INT(why, TIDE_GUARD_CPU);
    CHECK(ms >= 50 && ms < 500);
    CHECK_STR(where, "chunk:2");
}

TEST(a_loop_that_catches_the_stop_is_stopped_too)
{
    double ms;
    char where[64];
    int why = run_chunk("for _ = 1, 1e12 do pcall(function() while true do end end) end", 50, 0,
                        &ms, where, sizeof where);
    CHECK_EQ_INT(why, TIDE_GUARD_CPU);
    CHECK(ms < 500);
}

TEST(a_compiled_loop_is_stopped)
{
    double ms;
    char where[64];
    /* warm up so the JIT compiles the loops first */
    int why = run_chunk("jit.on()\nlocal function f(n) local s = 0 for i = 1, n do s = s + i "
                        "end return s end\nfor _ = 1, 200 do f(1000) end\n"
                        "local x = 0\nwhile true do x = x + f(10) end",
                        50, 0, &ms, where, sizeof where);
    CHECK_EQ_INT(why, TIDE_GUARD_CPU);
    CHECK(ms < 500);
}

TEST(a_run_within_its_budget_is_not_stopped)
{
    double ms;
    char where[64];
    int why = run_chunk("local s = 0 for i = 1, 1000 do s = s + i end", 1000, 0, &ms, where,
                        sizeof where);
    CHECK_EQ_INT(why, TIDE_GUARD_NONE);
    CHECK_STR(where, "");
}

TEST(memory_past_the_bound_stops_the_run)
{
    double ms;
    char where[64];
    int why = run_chunk("local t = {}\nfor i = 1, 1e9 do t[i] = {i} end", 5000, 8 << 20, &ms, where,
                        sizeof where);
    CHECK_EQ_INT(why, TIDE_GUARD_MEMORY);
    CHECK_STR(where, "chunk:2");
    why = run_chunk("local s = string.rep('x', 1e9)", 5000, 8 << 20, &ms, where, sizeof where);
    CHECK_EQ_INT(why, TIDE_GUARD_MEMORY);
}

TEST(memory_counts_and_refuses_only_inside_runs)
{
    lua_State *L = luaL_newstate();
    tide_guard_mem mem;
    tide_guard_mem_attach(&mem, L, 1 << 20);
    luaL_openlibs(L);
    size_t before = mem.used;
    /* outside a run: 2 MiB are allowed past the 1 MiB bound (C's own pushes never fail) */
    lua_pushlstring(L, "", 0);
    char *big = malloc(2 << 20);
    CHECK(big != NULL);
    memset(big, 'x', 2 << 20);
    lua_pushlstring(L, big, 2 << 20);
    free(big);
    CHECK(mem.used > before + (2 << 20));
    CHECK_EQ_INT(mem.refusals, 0);
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT, 0);
    CHECK(mem.used < before + (64 << 10));
    tide_guard_mem_detach(&mem, L);
    lua_close(L);
}

TEST(runs_nest)
{
    lua_State *L = luaL_newstate();
    tide_guard_run outer, inner;
    tide_guard_enter(&outer, L, NULL, 1000000000, NULL);
    tide_guard_enter(&inner, L, NULL, 1000000000, NULL);
    CHECK_EQ_INT(tide_guard_leave(&inner, NULL, NULL, 0), TIDE_GUARD_NONE);
    CHECK_EQ_INT(tide_guard_leave(&outer, NULL, NULL, 0), TIDE_GUARD_NONE);
    lua_close(L);
}

static const tide_guard_quarantine Q = { .hits = 3, .window = 10, .cool_down = 60 };

TEST(quarantine_after_hits_within_the_window)
{
    tide_guard_routes *g = tide_guard_routes_new(Q);
    CHECK(g != NULL);
    CHECK(tide_guard_routes_closed(g, "GET /a", 0) == 0);
    CHECK_EQ_INT(tide_guard_routes_stop(g, "GET /a", 0), 0);
    CHECK_EQ_INT(tide_guard_routes_stop(g, "GET /a", 4), 0);
    CHECK_EQ_INT(tide_guard_routes_stop(g, "GET /b", 5), 0); /* another route's count */
    CHECK(tide_guard_routes_closed(g, "GET /a", 5) == 0);
    CHECK_EQ_INT(tide_guard_routes_stop(g, "GET /a", 8), 1);
    CHECK(tide_guard_routes_closed(g, "GET /a", 8) == 60);
    CHECK(tide_guard_routes_closed(g, "GET /a", 67) == 1);
    CHECK(tide_guard_routes_closed(g, "GET /b", 8) == 0);
    CHECK(tide_guard_routes_closed(g, "GET /a", 68) == 0); /* the cool-down ends */
    /* counting starts afresh after it */
    CHECK_EQ_INT(tide_guard_routes_stop(g, "GET /a", 69), 0);
    tide_guard_routes_free(g);
}

TEST(hits_outside_the_window_do_not_count)
{
    tide_guard_routes *g = tide_guard_routes_new(Q);
    CHECK_EQ_INT(tide_guard_routes_stop(g, "GET /a", 0), 0);
    CHECK_EQ_INT(tide_guard_routes_stop(g, "GET /a", 20), 0);
    CHECK_EQ_INT(tide_guard_routes_stop(g, "GET /a", 40), 0);
    CHECK_EQ_INT(tide_guard_routes_stop(g, "GET /a", 45), 0);
    CHECK_EQ_INT(tide_guard_routes_stop(g, "GET /a", 49), 1);
    tide_guard_routes_free(g);
}

TEST(quarantine_off)
{
    tide_guard_quarantine off = { .hits = 0, .window = 10, .cool_down = 60 };
    tide_guard_routes *g = tide_guard_routes_new(off);
    for (int i = 0; i < 100; i++) CHECK_EQ_INT(tide_guard_routes_stop(g, "GET /a", i * 0.01), 0);
    CHECK(tide_guard_routes_closed(g, "GET /a", 1) == 0);
    tide_guard_routes_free(g);
}

static void count_route(const char *route, long long stops, double closed, void *arg)
{
    (void)route;
    (void)closed;
    *(long long *)arg += stops;
}

TEST(each_route_reports_its_stops)
{
    tide_guard_routes *g = tide_guard_routes_new(Q);
    tide_guard_routes_stop(g, "GET /a", 0);
    tide_guard_routes_stop(g, "GET /b", 0);
    tide_guard_routes_stop(g, "GET /b", 1);
    long long total = 0;
    tide_guard_routes_each(g, 1, count_route, &total);
    CHECK_EQ_INT(total, 3);
    tide_guard_routes_free(g);
}

TEST_LIST_BEGIN
TEST_ENTRY(a_loop_is_stopped_at_its_budget)
TEST_ENTRY(a_loop_that_catches_the_stop_is_stopped_too)
TEST_ENTRY(a_compiled_loop_is_stopped)
TEST_ENTRY(a_run_within_its_budget_is_not_stopped)
TEST_ENTRY(memory_past_the_bound_stops_the_run)
TEST_ENTRY(memory_counts_and_refuses_only_inside_runs)
TEST_ENTRY(runs_nest)
TEST_ENTRY(quarantine_after_hits_within_the_window)
TEST_ENTRY(hits_outside_the_window_do_not_count)
TEST_ENTRY(quarantine_off)
TEST_ENTRY(each_route_reports_its_stops)
TEST_LIST_END
