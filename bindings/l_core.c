/* l_core.c - the `tide.core` Lua module: the C calls that the Lua modules in bindings/tide build on.
 *
 * core.query(upstream, sql, params, opts) parks the request's coroutine on a pool job and the
 * job's callback resumes it with the result (lua-nginx-module style: a call that would block
 * yields; misuse raises a Lua error; runtime failure returns nil, err). The vm is the module's
 * upvalue. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>

#include "../runtime/config.h"
#include "../runtime/crypto.h"
#include "../runtime/log.h"
#include "../runtime/pool.h"
#include "../runtime/task.h"
#include "../runtime/health.h"
#include "../runtime/upstream.h"

enum call_kind { CALL_QUERY, CALL_TX_BEGIN, CALL_TX_END };

/* One database call of a request: the pool job, and what retry and the breaker need. */
typedef struct pgcall {
    tide_pgjob job;
    tide_task *task;
    enum call_kind kind;
    int json;                    /* return the single text cell */
    int authenticated;
    int read;                    /* a read: safe to retry even when its outcome is unknown */
    int up_index;                /* the upstream asked for */
    tide_upstream *up;           /* the one in use (the fallback while a breaker is open) */
    unsigned ticket;             /* breaker ticket of the attempt in flight */
    int attempt;
    int starting;                /* inside start_call: the coroutine has not yielded yet */
    ev_timer timer;              /* backoff before a retry, or a deferred answer */
    int deferred;                /* timer delivers the error below instead of retrying */
    char ecode[32];
    char emsg[300];
    int estatus;
    double retry_after;
    const char **values;
} pgcall;

#define container_of(p, T, m) ((T *)((char *)(p) - offsetof(T, m)))

static tide_vm *core_vm(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

static tide_task *require_task(lua_State *L)
{
    tide_task *t = tide__task_current();
    if (!t) luaL_error(L, "database calls are only allowed while handling a request");
    if (t->co != L) luaL_error(L, "database calls must run in the request's own coroutine");
    if (t->call) luaL_error(L, "a database call is already in progress");
    return t;
}

static int upstream_arg(lua_State *L, int idx)
{
    const char *name = luaL_checkstring(L, idx);
    int i = tide_upstream_index(name);
    if (i < 0) luaL_error(L, "unknown upstream '%s' (direct, session or transaction)", name);
    return i;
}

static void push_err(lua_State *L, const char *code, int status, const char *msg,
                     const char *detail, const char *hint)
{
    lua_createtable(L, 0, 5);
    lua_pushstring(L, code);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, msg ? msg : "");
    lua_setfield(L, -2, "message");
    if (detail) lua_pushstring(L, detail); else lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "details");
    if (hint) lua_pushstring(L, hint); else lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "hint");
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
}

/* Pushes one field of a generic result converted by type. */
static void push_value(lua_State *L, tide_vm *vm, const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col)) { lua_pushlightuserdata(L, NULL); return; }
    const char *v = PQgetvalue(res, row, col);
    int len = PQgetlength(res, row, col);
    switch (PQftype(res, col)) {
    case 16: lua_pushboolean(L, v[0] == 't'); break;                       /* bool */
    case 21: case 23: case 26: case 700: case 701:                         /* numbers */
        lua_pushnumber(L, strtod(v, NULL));
        break;
    case 20: case 1700: {              /* int8, numeric: a number only when it is exact */
        double d = strtod(v, NULL);
        int digits = 0;
        for (const char *q = v; *q; q++) digits += *q >= '0' && *q <= '9';
        if (fabs(d) < 9007199254740992.0 && digits <= 15) lua_pushnumber(L, d);
        else lua_pushlstring(L, v, (size_t)len);
        break;
    }
    case 114: case 3802:                                                   /* json, jsonb */
        tide__vm_push_decode(vm, L);
        lua_pushlstring(L, v, (size_t)len);
        if (lua_pcall(L, 1, 1, 0) != 0) { lua_pop(L, 1); lua_pushlstring(L, v, (size_t)len); }
        break;
    default: lua_pushlstring(L, v, (size_t)len); break;
    }
}

static void push_generic(lua_State *L, tide_vm *vm, const PGresult *res)
{
    int nrows = res ? PQntuples(res) : 0, ncols = res ? PQnfields(res) : 0;
    lua_createtable(L, 0, 3);
    lua_createtable(L, nrows, 0);
    for (int r = 0; r < nrows; r++) {
        lua_createtable(L, 0, ncols);
        for (int c = 0; c < ncols; c++) {
            push_value(L, vm, res, r, c);
            lua_setfield(L, -2, PQfname(res, c));
        }
        lua_rawseti(L, -2, r + 1);
    }
    lua_setfield(L, -2, "rows");
    const char *tuples = res ? PQcmdTuples((PGresult *)res) : "";
    lua_pushnumber(L, tuples[0] ? strtod(tuples, NULL) : nrows);
    lua_setfield(L, -2, "affected");
    const char *status = res ? PQcmdStatus((PGresult *)res) : "";
    size_t n = strcspn(status, " ");
    lua_pushlstring(L, status, n);
    lua_setfield(L, -2, "command");
}

static double now_of(const pgcall *pc)
{
    return ev_now(pc->task->app->loop);
}

static void call_free(pgcall *pc)
{
    ev_timer_stop(pc->task->app->loop, &pc->timer);
    free(pc);
}

/* Hands the coroutine its results (already pushed) and lets it run on. */
static void call_resume(pgcall *pc, int nret)
{
    tide_task *t = pc->task;
    t->call = NULL;
    call_free(pc);
    tide__task_resume(t, nret);
}

static void defer_error(pgcall *pc, const char *code, int status, const char *msg,
                        double retry_after);

/* What a client reads for an error about tide's upstreams rather than the statement: a fixed
 * message per code, because the original text is libpq's or tide's own and names hosts,
 * ports, users and upstreams. NULL for the others (SQL errors keep the database's message,
 * as PostgREST does). */
static const char *public_message(const char *code)
{
    static const struct { const char *code, *msg; } fixed[] = {
        { "08001", "the database cannot be reached" },
        { "TIDE_OUTCOME_UNKNOWN", "the connection to the database was lost after the write was "
          "sent: it may or may not have been applied; check before repeating it" },
        { "TIDE_UPSTREAM_UNAVAILABLE", "the database is unavailable; retry later" },
        { "TIDE_ACQUIRE_TIMEOUT", "no database connection became free in time" },
        { "TIDE_STATEMENT_TIMEOUT", "the statement did not finish in time (a write may still "
          "have been applied)" },
        { "TIDE_TX_CLOSED", "the transaction's database connection is gone" },
        { "TIDE_SHUTDOWN", "tide is shutting down" },
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strcmp(code, fixed[i].code) == 0) return fixed[i].msg;
    if (code[0] == '0' && code[1] == '8') return "the connection to the database was lost";
    return NULL;
}

/* Resumes the coroutine with nil, err. Errors with a public message (above) reach Lua with
 * that message and "request <id>" as details; their original text goes to the log. */
static void resume_with_error(pgcall *pc, const char *code, int status, const char *msg,
                              const char *detail, const char *hint, double retry_after)
{
    tide_task *t = pc->task;
    if (pc->starting) {           /* never resume a coroutine before it has yielded */
        defer_error(pc, code, status, msg, retry_after);
        return;
    }
    const char *pub = public_message(code);
    char rid[48];
    if (pub) {
        tide_warn("request %s: upstream %s: %s (%s)", t->id,
                  tide_upstream_name(pc->up ? pc->up->index : pc->up_index), msg ? msg : "",
                  code);
        snprintf(rid, sizeof rid, "request %s", t->id);
        msg = pub;
        detail = rid;
        hint = NULL;
    }
    lua_State *co = t->co;
    lua_pushnil(co);
    push_err(co, code, status, msg, detail, hint);
    if (retry_after > 0) {
        lua_pushnumber(co, retry_after);
        lua_setfield(co, -2, "retry_after");
        t->retry_after = retry_after;
    }
    call_resume(pc, 2);
}

static void call_attempt(pgcall *pc);

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    pgcall *pc = w->data;
    if (pc->deferred)
        resume_with_error(pc, pc->ecode, pc->estatus, pc->emsg, NULL, NULL, pc->retry_after);
    else
        call_attempt(pc);
}

/* Answers with an error from the loop, never from inside the call that yields. */
static void defer_error(pgcall *pc, const char *code, int status, const char *msg,
                        double retry_after)
{
    snprintf(pc->ecode, sizeof pc->ecode, "%s", code);
    snprintf(pc->emsg, sizeof pc->emsg, "%s", msg);
    pc->estatus = status;
    pc->retry_after = retry_after;
    pc->deferred = 1;
    ev_timer_stop(pc->task->app->loop, &pc->timer);
    ev_timer_set(&pc->timer, 0., 0.);
    ev_timer_start(pc->task->app->loop, &pc->timer);
}

/* Whether u may take calls as far as what it depends on goes (a pooler is no use while the
 * Postgres behind it is known to be down). */
static int usable(tide_app *app, const tide_upstream *u, double now)
{
    int dep = u->policy.depends_on;
    return dep < 0 || app->ups[dep] == u || !tide_upstream_is_open(app->ups[dep], now);
}

/* The upstream to use now: the one asked for, else its fallback while its breaker is open.
 * NULL (with *retry_after) when neither may be used. */
static tide_upstream *choose_upstream(pgcall *pc, unsigned *ticket, double *retry_after)
{
    tide_app *app = pc->task->app;
    double now = now_of(pc);
    tide_upstream *u = app->ups[pc->up_index];
    if (usable(app, u, now) && tide_breaker_allow(&u->breaker, now, ticket)) return u;
    *retry_after = tide_breaker_retry_after(&u->breaker, now);
    int dep = u->policy.depends_on;
    if (dep >= 0) {
        double d = tide_breaker_retry_after(&app->ups[dep]->breaker, now);
        if (d > *retry_after) *retry_after = d;
    }
    int fb = u->policy.fallback;
    if (fb >= 0 && app->ups[fb] != u && usable(app, app->ups[fb], now) &&
        tide_breaker_allow(&app->ups[fb]->breaker, now, ticket))
        return app->ups[fb];
    return NULL;
}

/* Whether a failed attempt may run again: only when it cannot have done anything twice. */
static int safe_to_retry(const pgcall *pc, const tide_pg_error *e)
{
    const char *c = e->code;
    if (strcmp(c, "08001") == 0) return 1;                        /* never connected */
    if (strcmp(c, "08006") == 0) return !e->sent || pc->read;     /* lost */
    if (strcmp(c, "40001") == 0 || strcmp(c, "40P01") == 0) return 1;  /* rolled back */
    if (strncmp(c, "57P0", 4) == 0) return 1;                     /* shut down before commit */
    return 0;
}

static void call_failed(pgcall *pc, const tide_pg_error *e)
{
    tide_task *t = pc->task;
    tide_upstream *u = pc->up;
    int sent_write = e->sent && !pc->read && pc->kind != CALL_TX_BEGIN;
    if (!t->aborted && pc->attempt < u->policy.retry_attempts && safe_to_retry(pc, e) &&
        tide_retry_budget_withdraw(&u->budget)) {
        pc->attempt++;
        u->retries++;
        double r = (double)rand() / ((double)RAND_MAX + 1.0);
        double delay = tide_backoff(pc->attempt - 1, u->policy.retry_base, u->policy.retry_cap, r);
        pc->deferred = 0;
        ev_timer_stop(t->app->loop, &pc->timer);
        ev_timer_set(&pc->timer, delay, 0.);
        ev_timer_start(t->app->loop, &pc->timer);
        return;
    }
    const char *code = e->code, *msg = e->message;
    int status = e->status ? e->status : tide_pg_http_status(code, pc->authenticated);
    char buf[400];
    if (strcmp(code, "08006") == 0 && sent_write) {
        code = "TIDE_OUTCOME_UNKNOWN";
        status = 503;
        snprintf(buf, sizeof buf, "%s; the write was sent, so it may or may not have been "
                 "applied: check before repeating it", msg ? msg : "connection lost");
        msg = buf;
    } else if (strcmp(code, "57014") == 0) {
        status = t->aborted ? 499 : 504;          /* cancelled: statement timeout or client gone */
    }
    if (!public_message(code) && (code[0] == '0' || strncmp(code, "57", 2) == 0))
        tide_warn("request %s: upstream %s: %s (%s)", t->id, tide_upstream_name(u->index),
                  msg ? msg : "", code);   /* public ones are logged when they are answered */
    resume_with_error(pc, code, status, msg, e->detail, e->hint, 0);
}

static void call_done(tide_pgjob *job, PGresult *res, const tide_pg_error *err)
{
    pgcall *pc = container_of(job, pgcall, job);
    tide_task *t = pc->task;
    lua_State *co = t->co;

    if (pc->up) tide_upstream_settle(pc->up, now_of(pc), pc->ticket, err);
    if (pc->kind == CALL_TX_BEGIN) {
        t->tx = job->conn;
        t->tx_pool = job->pool;
    } else if (pc->kind == CALL_QUERY && job->pin) {
        if (!job->conn) t->tx = NULL;            /* the transaction's connection was lost */
    }
    if (err) {
        if (pc->kind == CALL_TX_BEGIN && t->tx) { tide_pool_release(t->tx); t->tx = NULL; }
        if (pc->up) { call_failed(pc, err); return; }
        int status = err->status ? err->status : tide_pg_http_status(err->code, pc->authenticated);
        resume_with_error(pc, err->code, status, err->message, err->detail, err->hint, 0);
        return;
    }
    if (pc->kind != CALL_QUERY) {
        lua_pushboolean(co, 1);
    } else if (pc->json) {
        if (res && PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0))
            lua_pushlstring(co, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
        else
            lua_pushnil(co);
    } else {
        push_generic(co, t->vm, res);
    }
    call_resume(pc, 1);
}

/* Starts (or restarts) the call on an upstream its breaker allows. */
static void call_attempt(pgcall *pc)
{
    tide_task *t = pc->task;
    if (pc->job.pin) {                           /* inside a transaction: its connection */
        pc->up = NULL;
        if (tide_pool_run(t->tx_pool, &pc->job) != 0) {
            if (pc->kind == CALL_TX_END) tide_pool_release(pc->job.pin);
            defer_error(pc, "TIDE_TX_CLOSED", 500, "the transaction's connection is gone", 0);
        }
        return;
    }
    unsigned ticket = 0;
    double retry_after = 0;
    tide_upstream *u = choose_upstream(pc, &ticket, &retry_after);
    if (!u) {
        char msg[160];
        snprintf(msg, sizeof msg, "upstream %s is unavailable (circuit open); retry after "
                 "%.1f s", tide_upstream_name(pc->up_index), retry_after);
        defer_error(pc, "TIDE_UPSTREAM_UNAVAILABLE", 503, msg, retry_after);
        return;
    }
    pc->up = u;
    pc->ticket = ticket;
    if (pc->attempt == 1) tide_retry_budget_deposit(&u->budget);
    /* a half-open breaker's calls must reach the server: skip the reconnect backoff */
    if (u->breaker.state == TIDE_BREAKER_HALF_OPEN) tide_pool_reset_backoff(u->pool);
    int rc = tide_pool_run(u->pool, &pc->job);
    if (rc != 0) {
        tide_pg_error e;
        memset(&e, 0, sizeof e);
        snprintf(e.code, sizeof e.code, "08001");
        e.status = 503;
        char msg[160];
        snprintf(msg, sizeof msg, "cannot connect to upstream %s now%s",
                 tide_upstream_name(u->index), rc == TIDE_EAGAIN ? " (reconnecting)" : "");
        e.message = msg;
        tide_upstream_record(u, now_of(pc), ticket, 0);
        call_failed(pc, &e);
    }
}

/* Parks the coroutine on pc: every outcome, even an immediate error, comes back through the
 * loop, so the answer never arrives before the yield. */
static int start_call(lua_State *L, tide_task *t, int up_index, pgcall *pc)
{
    pc->task = t;
    pc->authenticated = t->role != TIDE_ROLE_ANON;
    pc->up_index = up_index;
    pc->attempt = 1;
    pc->job.done = call_done;
    ev_init(&pc->timer, timer_cb);
    pc->timer.data = pc;
    t->call = pc;
    pc->starting = 1;
    call_attempt(pc);
    pc->starting = 0;
    return lua_yield(L, 0);
}

void tide__call_abort(tide_task *t)
{
    pgcall *pc = t->call;
    if (!pc) return;
    if (ev_is_active(&pc->timer) && !pc->deferred) {          /* waiting to retry */
        defer_error(pc, "TIDE_CLIENT_GONE", 499, "the client went away", 0);
    } else if (tide_pool_cancel(&pc->job) == 1) {             /* was waiting for a connection */
        if (pc->up) tide_breaker_release(&pc->up->breaker, pc->ticket);   /* no outcome */
        defer_error(pc, "TIDE_CLIENT_GONE", 499, "the client went away", 0);
    }
}

/* Allocates a call with room for nparams values and `extra` bytes of strings. */
static pgcall *call_new(int nparams, size_t extra, char **strings)
{
    size_t head = sizeof(pgcall) + (size_t)nparams * sizeof(char *);
    pgcall *pc = calloc(1, head + extra);
    if (!pc) return NULL;
    pc->values = (const char **)(pc + 1);
    *strings = (char *)pc + head;
    return pc;
}

static char *copy_str(char **cursor, const char *s, size_t len)
{
    char *d = *cursor;
    memcpy(d, s, len);
    d[len] = 0;
    *cursor += len + 1;
    return d;
}

/* Text form of one parameter; returns NULL for SQL NULL. buf holds numbers. */
static const char *param_text(lua_State *L, int idx, int n, char *buf, size_t cap, size_t *len)
{
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return NULL;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) return NULL;   /* json.null */
        break;
    case LUA_TBOOLEAN:
        *len = (size_t)snprintf(buf, cap, "%s", lua_toboolean(L, idx) ? "true" : "false");
        return buf;
    case LUA_TNUMBER: {
        double d = lua_tonumber(L, idx);
        if (!isfinite(d)) luaL_error(L, "parameter %d is not a finite number", n);
        if (d == floor(d) && fabs(d) < 9007199254740992.0)
            *len = (size_t)snprintf(buf, cap, "%lld", (long long)d);
        else
            *len = (size_t)snprintf(buf, cap, "%.17g", d);
        return buf;
    }
    case LUA_TSTRING:
        return lua_tolstring(L, idx, len);
    default:
        break;
    }
    luaL_error(L, "parameter %d has type %s: encode tables before passing them", n,
               luaL_typename(L, idx));
    return NULL;
}

/* core.query(upstream, sql, params, opts) -> result | nil, err */
static int l_query(lua_State *L)
{
    tide_task *t = require_task(L);
    int up_index = upstream_arg(L, 1);
    size_t sql_len;
    const char *sql = luaL_checklstring(L, 2, &sql_len);
    int has_params = !lua_isnoneornil(L, 3);
    if (has_params) luaL_checktype(L, 3, LUA_TTABLE);
    int json = 0, as_service = 0, in_tx = 0, read = 0;
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        lua_getfield(L, 4, "json"); json = lua_toboolean(L, -1);
        lua_getfield(L, 4, "as_service"); as_service = lua_toboolean(L, -1);
        lua_getfield(L, 4, "tx"); in_tx = lua_toboolean(L, -1);
        lua_getfield(L, 4, "kind");
        const char *kind = lua_tostring(L, -1);
        read = kind && (strcmp(kind, "select") == 0 || strcmp(kind, "count") == 0 ||
                        strcmp(kind, "vector_search") == 0);
        lua_pop(L, 4);
    }
    int n = 0;
    if (has_params) {
        lua_getfield(L, 3, "n");
        n = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : (int)lua_objlen(L, 3);
        lua_pop(L, 1);
        if (n < 0 || n > 65535) luaL_error(L, "bad parameter count %d", n);
    }
    if (in_tx && !t->tx) luaL_error(L, "no transaction is open");

    /* measure, then copy sql and params into one allocation */
    size_t extra = sql_len + 1;
    char numbuf[64];
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, 3, i);
        size_t len = 0;
        const char *v = param_text(L, -1, i, numbuf, sizeof numbuf, &len);
        lua_pop(L, 1);
        if (!v) continue;
        if (memchr(v, 0, len)) {
            /* libpq sends text parameters as C strings: refuse rather than truncate */
            lua_pushnil(L);
            lua_pushfstring(L, "parameter %d contains a NUL byte", i);
            push_err(L, "TIDE_INVALID_PARAM", 400, lua_tostring(L, -1), NULL, NULL);
            lua_remove(L, -2);
            return 2;
        }
        extra += len + 1;
    }
    char *cur;
    pgcall *pc = call_new(n, extra, &cur);
    if (!pc) return luaL_error(L, "out of memory");
    pc->kind = CALL_QUERY;
    pc->json = json;
    pc->read = read;
    pc->job.sql = copy_str(&cur, sql, sql_len);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, 3, i);
        size_t len = 0;
        const char *v = param_text(L, -1, i, numbuf, sizeof numbuf, &len);
        pc->values[i - 1] = v ? copy_str(&cur, v, len) : NULL;
        lua_pop(L, 1);
    }
    pc->job.nparams = n;
    pc->job.values = pc->values;
    if (in_tx) {
        pc->job.pin = t->tx;
        pc->job.flags = TIDE_PGJOB_KEEP;
    } else {
        pc->job.flags = TIDE_PGJOB_AUTH;
        if (as_service) {
            pc->job.claims = "{\"role\":\"service_role\"}";
            pc->job.role = "service_role";
        } else {
            pc->job.claims = t->claims;
            pc->job.role = tide_role_name(t->role);
        }
    }
    return start_call(L, t, up_index, pc);
}

/* core.tx_begin(upstream[, as_service]) -> true | nil, err */
static int l_tx_begin(lua_State *L)
{
    tide_task *t = require_task(L);
    int up_index = upstream_arg(L, 1);
    int as_service = lua_toboolean(L, 2);
    if (t->tx) luaL_error(L, "a transaction is already open");
    char *cur;
    pgcall *pc = call_new(0, 0, &cur);
    if (!pc) return luaL_error(L, "out of memory");
    pc->kind = CALL_TX_BEGIN;
    pc->read = 1;                 /* nothing happened yet: a retry is harmless */
    pc->job.flags = TIDE_PGJOB_BEGIN | TIDE_PGJOB_AUTH | TIDE_PGJOB_KEEP;
    pc->job.claims = as_service ? "{\"role\":\"service_role\"}" : t->claims;
    pc->job.role = as_service ? "service_role" : tide_role_name(t->role);
    return start_call(L, t, up_index, pc);
}

/* core.tx_end(commit) -> true | nil, err; the connection goes back to its pool either way */
static int l_tx_end(lua_State *L)
{
    tide_task *t = require_task(L);
    int commit = lua_toboolean(L, 1);
    if (!t->tx) luaL_error(L, "no transaction is open");
    char *cur;
    pgcall *pc = call_new(0, 0, &cur);
    if (!pc) return luaL_error(L, "out of memory");
    pc->kind = CALL_TX_END;
    pc->job.sql = commit ? "COMMIT" : "ROLLBACK";
    pc->job.pin = t->tx;
    pc->job.flags = 0;
    t->tx = NULL;                 /* released by the pool when the job ends */
    return start_call(L, t, 0, pc);
}

static int l_log(lua_State *L)
{
    static const char *const levels[] = { "debug", "info", "warn", "error", NULL };
    int level = luaL_checkoption(L, 1, NULL, levels);
    const char *msg = luaL_checkstring(L, 2);
    tide_task *t = tide__task_current();
    if (t) tide_log(level, "request %s: %s", t->id, msg);
    else tide_log(level, "%s", msg);
    return 0;
}

static int l_now(lua_State *L)
{
    lua_pushnumber(L, ev_now(tide__vm_app(core_vm(L))->loop));
    return 1;
}

static int l_request_id(lua_State *L)
{
    tide_task *t = tide__task_current();
    if (t) lua_pushstring(L, t->id); else lua_pushnil(L);
    return 1;
}

static const unsigned char *enc_key(lua_State *L)
{
    tide_app *app = tide__vm_app(core_vm(L));
    if (!app->cfg.has_enc_key)
        luaL_error(L, "no encryption key configured (crypto.key or TIDE_ENCRYPTION_KEY)");
    return app->cfg.enc_key;
}

/* The associated data for core.seal / core.open: the string arguments from index first to the
 * top, length-prefixed (tide_crypto_aad). At least one: a sealed secret always names what it
 * belongs to. Raises on misuse; call it after anything else that may raise (it allocates). */
static unsigned char *seal_context(lua_State *L, int first, size_t *len)
{
    const char *f[TIDE_CRYPTO_MAX_FIELDS];
    size_t l[TIDE_CRYPTO_MAX_FIELDS];
    int n = lua_gettop(L) - first + 1;
    if (n < 1 || n > TIDE_CRYPTO_MAX_FIELDS)
        luaL_error(L, "a sealing context of 1 to %d strings is required", TIDE_CRYPTO_MAX_FIELDS);
    for (int i = 0; i < n; i++) f[i] = luaL_checklstring(L, first + i, &l[i]);
    unsigned char *aad = NULL;
    if (tide_crypto_aad(f, l, (size_t)n, &aad, len) != 0)
        luaL_error(L, "sealing context too large");
    return aad;
}

/* core.seal(plain, field...) -> "v2:..." | nil, err */
static int l_seal(lua_State *L)
{
    size_t len, alen = 0;
    const unsigned char *key = enc_key(L);
    const char *plain = luaL_checklstring(L, 1, &len);
    unsigned char *aad = seal_context(L, 2, &alen);
    char *out = NULL;
    int rc = tide_crypto_seal(key, aad, alen, plain, len, &out);
    free(aad);
    if (rc != 0) { lua_pushnil(L); lua_pushstring(L, tide_strerror(rc)); return 2; }
    lua_pushstring(L, out);
    free(out);
    return 1;
}

/* core.open(text, field...) -> plain | nil, message, reason ("legacy", "unreadable",
 * "malformed"). A v1 text is never opened here: only tide reseal reads that format. */
static int l_open(lua_State *L)
{
    size_t len, alen = 0, outlen = 0;
    const unsigned char *key = enc_key(L);
    const char *text = luaL_checklstring(L, 1, &len);
    unsigned char *aad = seal_context(L, 2, &alen);
    char *out = NULL;
    int legacy = tide_crypto_version(text, len) == 1;
    int rc = legacy ? TIDE_EPARSE : tide_crypto_open(key, aad, alen, text, len, &out, &outlen);
    free(aad);
    if (rc == 0) {
        lua_pushlstring(L, out, outlen);
        tide_crypto_free_secret(out, outlen);
        return 1;
    }
    lua_pushnil(L);
    if (legacy) {
        lua_pushstring(L, "sealed in the v1 format, bound to no row: run `tide reseal`");
        lua_pushstring(L, "legacy");
    } else if (rc == TIDE_EAUTH) {
        lua_pushstring(L, "does not open here: sealed for another row or user, altered, or "
                          "sealed under another key");
        lua_pushstring(L, "unreadable");
    } else if (rc == TIDE_EPARSE) {
        lua_pushstring(L, "not a sealed text");
        lua_pushstring(L, "malformed");
    } else {
        lua_pushstring(L, tide_strerror(rc));
        lua_pushstring(L, "error");
    }
    return 3;
}

/* core.keyed_hash_hex(label, s) -> 64 hex chars: HMAC-SHA256 under a key derived from the
 * configured crypto key and label */
static int l_keyed_hash_hex(lua_State *L)
{
    size_t len;
    const unsigned char *key = enc_key(L);
    const char *label = luaL_checkstring(L, 1);
    const char *s = luaL_checklstring(L, 2, &len);
    char hex[65];
    int rc = tide_crypto_keyed_hash_hex(key, label, s, len, hex);
    if (rc != 0) luaL_error(L, "keyed hash: %s", tide_strerror(rc));
    lua_pushlstring(L, hex, 64);
    return 1;
}

static int l_sha256_hex(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    char hex[65];
    tide_crypto_sha256_hex(s, len, hex);
    lua_pushlstring(L, hex, 64);
    return 1;
}

static void set_num(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void set_str(lua_State *L, const char *k, const char *v)
{
    if (v) lua_pushstring(L, v); else lua_pushlightuserdata(L, NULL);   /* json.null */
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
    tide_health_get(tide__vm_app(core_vm(L)), &h);
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
        lua_setfield(L, -2, u->name);
    }
    lua_setfield(L, -2, "upstreams");
    set_str(L, "status", h.status);
    lua_pushboolean(L, h.http_status != 200);
    return 2;
}

static int l_pool_stats(lua_State *L)
{
    tide_app *app = tide__vm_app(core_vm(L));
    lua_createtable(L, 0, TIDE_UPSTREAMS);
    for (int i = 0; i < TIDE_UPSTREAMS; i++) {
        tide_pool_stats s;
        tide_pool *pool = app->ups[i]->pool;
        tide_pool_get_stats(pool, &s);
        lua_createtable(L, 0, 8);
        lua_pushstring(L, tide_pool_name(pool)); lua_setfield(L, -2, "pool");
        lua_pushinteger(L, s.size); lua_setfield(L, -2, "size");
        lua_pushinteger(L, s.open); lua_setfield(L, -2, "open");
        lua_pushinteger(L, s.idle); lua_setfield(L, -2, "idle");
        lua_pushinteger(L, s.busy); lua_setfield(L, -2, "busy");
        lua_pushinteger(L, s.waiting); lua_setfield(L, -2, "waiting");
        lua_pushnumber(L, (double)s.jobs); lua_setfield(L, -2, "jobs");
        lua_pushnumber(L, (double)s.errors); lua_setfield(L, -2, "errors");
        lua_setfield(L, -2, tide_upstream_name(i));
    }
    return 1;
}

int tide__open_core(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "query", l_query },       { "tx_begin", l_tx_begin }, { "tx_end", l_tx_end },
        { "log", l_log },           { "now", l_now },           { "request_id", l_request_id },
        { "seal", l_seal },         { "open", l_open },         { "sha256_hex", l_sha256_hex },
        { "keyed_hash_hex", l_keyed_hash_hex },
        { "pool_stats", l_pool_stats }, { "health", l_health },
        { NULL, NULL } };
    void *vm = lua_touserdata(L, lua_upvalueindex(1));
    lua_newtable(L);
    for (const luaL_Reg *f = fns; f->name; f++) {
        lua_pushlightuserdata(L, vm);
        lua_pushcclosure(L, f->func, 1);
        lua_setfield(L, -2, f->name);
    }
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    return 1;
}
