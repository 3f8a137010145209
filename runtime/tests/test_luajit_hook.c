/* test_luajit_hook.c - the LuaJIT tide links (var/luajit, built by db/luajit.sh from Debian's
 * luajit2 source with LUAJIT_ENABLE_CHECKHOOK): a count hook set from a signal handler stops a
 * JIT-compiled loop (a plain `while true`, one calling a function, a numeric `for` compiled via
 * FORL); the build is GC64; lua_newstate takes a custom allocator and a luaL_newstate state's
 * allocator can be wrapped with lua_getallocf/lua_setallocf.
 *
 * Each loop runs in a child process, so a LuaJIT whose traces never check the hook (Debian's
 * libluajit-5.1.so) fails the test after 2 s instead of hanging it. */
#include "test.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <luajit.h>

#define HOOK_AFTER_US 50000 /* the timer that sets the hook */
#define LOOP_LIMIT_S  2.0   /* the loop must be stopped within this */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the interrupted loop (runs in the child) */

static lua_State *volatile hook_L;

static void stop_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted");
}

/* as luajit.c's Ctrl-C handler does: lua_sethook is safe to call from a signal handler */
static void on_alarm(int sig)
{
    (void)sig;
    if (hook_L) lua_sethook(hook_L, stop_hook, LUA_MASKCOUNT, 1);
}

/* Loads and runs chunk with the JIT on and a SIGALRM after HOOK_AFTER_US that sets the hook.
 * Writes "<pcall rc> <traces compiled> <ms> <message>" to fd; returns the exit status. */
static int child_run(const char *chunk, int fd)
{
    lua_State *L = luaL_newstate();
    if (!L) return 10;
    luaL_openlibs(L);
    if (!luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_ON)) return 11;
    if (luaL_loadbuffer(L, chunk, strlen(chunk), "=loop") != 0) return 12;

    hook_L = L;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGALRM, &sa, NULL) != 0) return 13;
    struct itimerval it = { .it_value = { .tv_sec = 0, .tv_usec = HOOK_AFTER_US } };
    double t0 = now_s();
    if (setitimer(ITIMER_REAL, &it, NULL) != 0) return 14;
    int rc = lua_pcall(L, 0, 0, 0);
    double ms = (now_s() - t0) * 1000.0;
    hook_L = NULL;
    const char *msg = lua_isstring(L, -1) ? lua_tostring(L, -1) : "(no message)";
    char report[512];
    int n = snprintf(report, sizeof report, "%d ", rc);
    lua_pop(L, 1);

    /* the loop really ran as a trace: jit.util.traceinfo(1) is the first compiled trace */
    int traces = 0;
    if (luaL_dostring(L, "local u = require 'jit.util' local n = 0 "
                         "while u.traceinfo(n + 1) do n = n + 1 end return n") == 0)
        traces = (int)lua_tointeger(L, -1);
    snprintf(report + n, sizeof report - (size_t)n, "%d %.0f %s", traces, ms, msg);
    if (write(fd, report, strlen(report)) < 0) return 15;
    lua_close(L);
    return 0;
}

/* Runs chunk in a child process; fails unless its pcall ends with "interrupted" within
 * LOOP_LIMIT_S after the loop was compiled. */
static void expect_interrupted(const char *chunk)
{
    int p[2];
    CHECK(pipe(p) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        _exit(child_run(chunk, p[1]));
    }
    close(p[1]);

    double t0 = now_s();
    int status = 0;
    pid_t w;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && now_s() - t0 < LOOP_LIMIT_S) {
        struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);
    }
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        close(p[0]);
        TEST_FAIL_("FAILED: compiled loop not interrupted within %.0f s (a LuaJIT built "
                   "without LUAJIT_ENABLE_CHECKHOOK?)",
                   LOOP_LIMIT_S);
        return;
    }
    char report[512] = "";
    ssize_t got, len = 0;
    while (len < (ssize_t)sizeof report - 1 &&
           ((got = read(p[0], report + len, sizeof report - 1 - (size_t)len)) > 0 ||
            (got < 0 && errno == EINTR)))
        if (got > 0) len += got;
    report[len] = '\0';
    close(p[0]);
    CHECK(w == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        TEST_FAIL_("child failed: %s %d", WIFEXITED(status) ? "exit" : "signal",
                   WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return;
    }
    int rc = -1, traces = -1, ms = -1, off = 0;
    CHECK(sscanf(report, "%d %d %d %n", &rc, &traces, &ms, &off) == 3);
    const char *msg = report + off;
    printf("     %s -> rc %d, %d trace(s), %d ms: %s\n", chunk, rc, traces, ms, msg);
    CHECK_EQ_INT(rc, LUA_ERRRUN);
    CHECK(strstr(msg, "interrupted") != NULL);
    CHECK(traces >= 1);
    CHECK(ms >= HOOK_AFTER_US / 1000 - 1 && ms < LOOP_LIMIT_S * 1000);
}

TEST(count_hook_stops_a_compiled_while_loop)
{
    expect_interrupted("local i = 0 while true do i = i + 1 end");
}

TEST(count_hook_stops_a_compiled_loop_calling_a_function)
{
    expect_interrupted("local t = {} "
                       "local function f(n) t[n % 8 + 1] = n return n + 1 end "
                       "local i = 0 while true do i = f(i) end");
}

TEST(count_hook_stops_a_compiled_for_loop)
{
    expect_interrupted("local s = 0 for i = 1, 1e15 do s = s + i end return s");
}

/* ---- the build */

TEST(luajit_is_gc64_with_the_jit_on)
{
    lua_State *L = luaL_newstate();
    CHECK(L);
    luaL_openlibs(L);
    int rc = luaL_dostring(L, "return require('ffi').abi('gc64'), jit.status(), jit.version");
    if (rc != 0) TEST_FAIL_("%s", lua_tostring(L, -1));
    else {
        CHECK(lua_toboolean(L, -3));
        CHECK(lua_toboolean(L, -2));
        CHECK(strncmp(lua_tostring(L, -1), "LuaJIT 2.1", 10) == 0);
    }
    lua_close(L);
}

/* ---- allocators */

typedef struct counted {
    lua_Alloc inner; /* NULL: malloc/realloc/free */
    void *inner_ud;
    long long live, calls;
} counted;

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    counted *c = ud;
    void *p;
    c->calls++;
    if (c->inner) {
        p = c->inner(c->inner_ud, ptr, osize, nsize);
    } else if (nsize == 0) {
        free(ptr);
        p = NULL;
    } else {
        p = realloc(ptr, nsize);
    }
    if (p || nsize == 0) c->live += (long long)nsize - (long long)(ptr ? osize : 0);
    return p;
}

static const char *churn = "local t = {} for i = 1, 20000 do t[i] = { i, tostring(i) } end "
                           "t = nil collectgarbage() return 1";

TEST(lua_newstate_with_a_custom_allocator)
{
    counted c = { 0 };
    lua_State *L = lua_newstate(counting_alloc, &c);
    CHECK(L);
    luaL_openlibs(L);
    int rc = luaL_dostring(L, churn);
    if (rc != 0) {
        TEST_FAIL_("%s", lua_tostring(L, -1));
        lua_close(L);
        return;
    }
    void *ud = NULL;
    CHECK(lua_getallocf(L, &ud) == counting_alloc && ud == &c);
    CHECK(c.live > 0 && c.calls > 20000);
    lua_close(L);
    CHECK_EQ_INT(c.live, 0); /* every byte back, the state's own block too */
}

/* the sum of this process's mapped bytes */
static long long mapped_bytes(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    long long sum = 0;
    uintptr_t lo, hi;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2) sum += (long long)(hi - lo);
    fclose(f);
    return sum;
}

/* LuaJIT's own allocator wrapped: lua_close destroys its arena only while g->allocf is
 * LuaJIT's lj_alloc_f (lj_state.c close_state), so the wrapper is taken out before closing. */
TEST(luajit_allocator_wrapped_with_getallocf_setallocf)
{
    long long before = 0;
    for (int round = 0; round < 33; round++) {
        if (round == 1) before = mapped_bytes(); /* after a first state warmed things up */
        lua_State *L = luaL_newstate();
        CHECK(L);
        void *ud = NULL;
        lua_Alloc f = lua_getallocf(L, &ud);
        CHECK(f != NULL && ud != NULL); /* LuaJIT's lj_alloc_f and its arena */
        counted c = { .inner = f, .inner_ud = ud };
        lua_setallocf(L, counting_alloc, &c);
        luaL_openlibs(L);
        int rc = luaL_dostring(L, churn);
        if (rc != 0) {
            TEST_FAIL_("%s", lua_tostring(L, -1));
            return;
        }
        CHECK(c.live > 0 && c.calls > 20000);
        lua_setallocf(L, f, ud); /* restored before lua_close */
        void *ud2 = NULL;
        CHECK(lua_getallocf(L, &ud2) == f && ud2 == ud);
        lua_close(L);
    }
    /* 32 arenas of at least 128 KiB each had they leaked */
    long long grown = mapped_bytes() - before;
    if (grown >= 1024 * 1024) TEST_FAIL_("32 states left %lld mapped bytes behind", grown);
}

TEST_LIST_BEGIN
TEST_ENTRY(count_hook_stops_a_compiled_while_loop)
TEST_ENTRY(count_hook_stops_a_compiled_loop_calling_a_function)
TEST_ENTRY(count_hook_stops_a_compiled_for_loop)
TEST_ENTRY(luajit_is_gc64_with_the_jit_on)
TEST_ENTRY(lua_newstate_with_a_custom_allocator)
TEST_ENTRY(luajit_allocator_wrapped_with_getallocf_setallocf)
TEST_LIST_END
