/* l_sys.c - tide.core's calls about the process and the running request (l_core.c): log,
 * now, request_id, health, and wait / wake.
 *
 * core.wait / core.wake let one request wait for what another does
 * (bindings/tide/rest/schema.lua: one catalog read, which the others wait for): a parked
 * coroutine, resumed by a timer. */
#include <lua.h>
#include <lauxlib.h>

#include "l_common.h"
#include "../runtime/health.h"
#include "../runtime/log.h"
#include "../runtime/task_api.h"

static int l_log(lua_State *L)
{
    static const char *const levels[] = { "debug", "info", "warn", "error", NULL };
    int level = luaL_checkoption(L, 1, NULL, levels);
    const char *msg = luaL_checkstring(L, 2);
    tide_task *t = tide_task_current();
    if (t) tide_log(level, "request %s: %s", tide_task_id(t), msg);
    else tide_log(level, "%s", msg);
    return 0;
}

static int l_now(lua_State *L)
{
    lua_pushnumber(L, ev_now(tide_vm_app(core_vm(L))->loop));
    return 1;
}

/* core.wait(seconds) -> "woken" | "timeout" | "aborted": parks the request's coroutine until
 * core.wake() in the same Lua state, `seconds` pass (0 < seconds <= 60), or the client goes
 * away (runtime/task_api.h: tide_task_wait). Only in a request's own coroutine, not during a
 * database call; a client already gone answers "aborted" at once. A woken request re-checks
 * what it waits for: a wake is for every waiter of the state. */
static int l_wait(lua_State *L)
{
    tide_task *t = tide_task_current();
    if (!t || tide_task_co(t) != L)
        tide__l_misuse(L, "core.wait: only in a request's own coroutine");
    double s = luaL_checknumber(L, 1);
    if (!(s > 0 && s <= 60)) tide__l_misuse(L, "core.wait: seconds must be in (0, 60]");
    if (tide_task_aborted(t)) {
        lua_pushstring(L, "aborted");
        return 1;
    }
    tide_task_wait(t, s);
    return lua_yield(L, 0);
}

/* core.wake() -> n: every request of this Lua state parked in core.wait resumes with "woken"
 * on a later loop pass (never inside this call); n of them. */
static int l_wake(lua_State *L)
{
    lua_pushinteger(L, tide_vm_wake(core_vm(L)));
    return 1;
}

static int l_request_id(lua_State *L)
{
    tide_task *t = tide_task_current();
    if (t) lua_pushstring(L, tide_task_id(t));
    else lua_pushnil(L);
    return 1;
}

static void set_num(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void set_str(lua_State *L, const char *k, const char *v)
{
    if (v) lua_pushstring(L, v);
    else lua_pushlightuserdata(L, NULL); /* json.null */
    lua_setfield(L, -2, k);
}

static void set_bool(lua_State *L, const char *k, int v)
{
    lua_pushboolean(L, v);
    lua_setfield(L, -2, k);
}

/* core.health() -> the /health document as a table (the same fields), and whether tide is
 * down */
static int l_health(lua_State *L)
{
    tide_health h;
    tide_health_get(tide_vm_app(core_vm(L)), &h);
    lua_createtable(L, 0, 2);
    lua_createtable(L, 0, TIDE_UPSTREAMS);
    for (int i = 0; i < TIDE_UPSTREAMS; i++) {
        const tide_upstream_health *u = &h.upstreams[i];
        const tide_pool_stats *s = &u->pool;
        lua_createtable(L, 0, 8);
        set_str(L, "status", u->status);
        set_bool(L, "required", u->required);
        set_str(L, "pool_of", u->pool_of);
        lua_createtable(L, 0, 3);
        set_bool(L, "ok", u->probe_ok);
        set_num(L, "latency_ms", u->probe_latency_ms);
        set_num(L, "age_s", u->probe_age_s);
        lua_setfield(L, -2, "probe");
        lua_createtable(L, 0, 7);
        set_str(L, "state", u->breaker_state);
        set_num(L, "calls", (double)u->breaker_calls);
        set_num(L, "failures", (double)u->breaker_failures);
        set_num(L, "consecutive_failures", u->consecutive_failures);
        set_num(L, "opened", (double)u->breaker_opened);
        set_num(L, "rejected", (double)u->breaker_rejected);
        set_num(L, "retry_after_s", u->retry_after_s);
        lua_setfield(L, -2, "breaker");
        lua_createtable(L, 0, 10);
        set_num(L, "size", s->size);
        set_num(L, "open", s->open);
        set_num(L, "idle", s->idle);
        set_num(L, "busy", s->busy);
        set_num(L, "connecting", s->connecting);
        set_num(L, "waiting", s->waiting);
        set_num(L, "jobs", (double)s->jobs);
        set_num(L, "errors", (double)s->errors);
        set_num(L, "connect_failures", (double)s->connect_failures);
        set_num(L, "acquire_timeouts", (double)s->acquire_timeouts);
        lua_setfield(L, -2, "pool");
        set_num(L, "retries", (double)u->retries);
        set_str(L, "fallback", u->fallback);
        set_str(L, "blocked_by", u->blocked_by);
        if (u->standby) {
            const tide_replica_stats *g = &u->lag;
            lua_createtable(L, 0, 10);
            set_bool(L, "eligible", g->eligible);
            set_num(L, "seconds", g->lag_s);
            set_num(L, "bytes", (double)g->lag_bytes);
            set_str(L, "replayed_lsn", g->replayed);
            set_str(L, "primary_lsn", g->primary);
            set_bool(L, "in_recovery", g->in_recovery);
            set_num(L, "polled_age_s", g->polled_age_s);
            set_num(L, "polls", (double)g->polls);
            set_num(L, "poll_failures", (double)g->poll_failures);
            set_num(L, "excluded", (double)g->excluded);
            lua_setfield(L, -2, "lag");
        }
        lua_setfield(L, -2, u->name);
    }
    lua_setfield(L, -2, "upstreams");
    set_str(L, "status", h.status);
    lua_pushboolean(L, h.http_status != 200);
    return 2;
}

const luaL_Reg tide__l_sys_fns[] = {
    { "log", l_log },       { "now", l_now },   { "request_id", l_request_id },
    { "health", l_health }, { "wait", l_wait }, { "wake", l_wake },
    { NULL, NULL }
};
