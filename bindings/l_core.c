/* l_core.c - the `tide.core` Lua module (l_core.h): the C calls that the Lua modules in
 * bindings/tide build on.
 *
 * core.query(upstream, sql, params, opts) checks its arguments, parks the request's coroutine
 * on a database call (runtime/call.c chooses the upstream, retries, falls back and maps the
 * final error) and the call's completion resumes it with the result turned into Lua values
 * (lua-nginx-module style: a call that would block yields; misuse raises a Lua error; runtime
 * failure returns nil, err). The vm is the module's upvalue. A call with opts.read_only runs
 * in a read-only transaction: whatever it calls cannot write (SQLSTATE 25006), so a retry is
 * as harmless as a read's.
 *
 * The log lines about database calls are written here, where a call starts and ends: an
 * audit line for every call that runs as service_role (as = "service", or the caller's token
 * is service_role's), and a slow_query line for a call that took at least log.slow_query_ms.
 * They name the request's route, which the router found before any Lua ran (the task holds
 * it).
 *
 * Every function is registered through counted(), which counts the C<->Lua crossings of the
 * running request (tide_vm_crossings): the call, and its return unless it yielded.
 *
 * core.wait / core.wake let one request wait for what another does
 * (bindings/tide/rest/schema.lua: one catalog read, which the others wait for): a parked
 * coroutine, resumed by a timer. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>

#include "l_core.h"
#include "../runtime/call.h"
#include "../runtime/config.h"
#include "../runtime/crypto.h"
#include "../runtime/log.h"
#include "../runtime/luavm.h"
#include "../runtime/pool.h"
#include "../runtime/qstats.h"
#include "../runtime/cache.h"
#include "../runtime/rcache.h"
#include "../runtime/task.h"
#include "../runtime/health.h"
#include "../runtime/upstream.h"
#include "../runtime/util.h"

enum call_kind { CALL_QUERY, CALL_TX_BEGIN, CALL_TX_END };

/* Why a call runs as service_role, bypassing row-level security (its audit line's "via"). */
enum { AS_CALLER = 0, AS_SERVICE, AS_SERVICE_TOKEN };
static const char *const via_names[] = { NULL, "as_service", "service_role" };

/* One database call of a request: the runtime call (runtime/call.c runs it) and what turning
 * its answer into Lua values needs. */
typedef struct pgcall {
    tide_call call;
    tide_task *task;
    enum call_kind kind;
    int json;                    /* return the single text cell */
    const char **values;
    char label[64];              /* application_name: "tide <request id>" */
    double started;              /* ev_time() at the start: /admin/queries, slow queries */
    char db_kind[16];            /* tide.db's kind and table, for the log lines ("": unknown) */
    char db_table[96];
} pgcall;


static tide_vm *core_vm(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* Raises a misuse error (a bug in the calling script: a call out of place, an argument of the
 * wrong kind) positioned as tide.errors.misuse positions its own: at the first frame outside
 * tide's own modules, the script author's line, not the tide.* wrapper that called in. It
 * calls that function, so the rule lives in one place; without tide.errors loaded it falls
 * back to luaL_error (the immediate Lua caller). fmt takes lua_pushfstring's formats. Never
 * returns. */
static int misuse(lua_State *L, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    int msg = lua_gettop(L);
    lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "tide.errors");
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "misuse");
            if (lua_isfunction(L, -1)) {
                lua_pushvalue(L, msg);
                lua_call(L, 1, 0);             /* raises */
            }
        }
    }
    lua_settop(L, msg);
    return luaL_error(L, "%s", lua_tostring(L, msg));
}

static tide_task *require_task(lua_State *L)
{
    tide_task *t = tide__task_current();
    if (!t) {
        misuse(L, "database calls are only allowed while handling a request");
        return NULL;                   /* not reached: misuse raises */
    }
    if (t->co != L) misuse(L, "database calls must run in the request's own coroutine");
    if (t->call) misuse(L, "a database call is already in progress");
    return t;
}

static int upstream_arg(lua_State *L, int idx)
{
    const char *name = luaL_checkstring(L, idx);
    int i = tide_upstream_index(name);
    if (i < 0) misuse(L, "unknown upstream '%s' (direct, session or transaction)", name);
    return i;
}

/* The metatable every error table carries, C-made or Lua-made (tide.errors takes the same one
 * from the registry), so tide.boot recognises one wherever a handler returns it. */
#define ERROR_MT "tide.error"

static void push_err(lua_State *L, const char *code, int status, const char *msg,
                     const char *detail, const char *hint)
{
    lua_createtable(L, 0, 5);
    luaL_getmetatable(L, ERROR_MT);
    if (lua_istable(L, -1)) lua_setmetatable(L, -2);
    else lua_pop(L, 1);
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

/* Hands the coroutine its results (already pushed) and lets it run on. */
static void call_resume(pgcall *pc, int nret)
{
    tide_task *t = pc->task;
    t->call = NULL;
    free(pc);
    tide__task_resume(t, nret);
}

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
 * that message and "request <id>" as details; their original text goes to the log, as does
 * that of the other connection and operator errors (classes 0 and 57) of an upstream call. */
static void resume_with_error(pgcall *pc, const tide_call_error *e)
{
    tide_task *t = pc->task;
    const char *code = e->code, *msg = e->message, *detail = e->detail, *hint = e->hint;
    const char *pub = public_message(code);
    char rid[80];
    if (pub || (!pc->call.job.pin && (code[0] == '0' || strncmp(code, "57", 2) == 0)))
        tide_warn("request %s: upstream %s: %s (%s)", t->id, tide_upstream_name(e->upstream),
                  msg, code);
    if (pub) {
        snprintf(rid, sizeof rid, "request %s", t->id);
        msg = pub;
        detail = rid;
        hint = NULL;
    }
    lua_State *co = t->co;
    lua_pushnil(co);
    push_err(co, code, e->status, msg, detail, hint);
    if (e->retry_after > 0) {
        lua_pushnumber(co, e->retry_after);
        lua_setfield(co, -2, "retry_after");   /* tide.boot turns it into Retry-After */
    }
    call_resume(pc, 2);
}

/* What the log lines say about pc's call, on upstream `upstream` (a name). */
static void describe_call(const pgcall *pc, const char *upstream, tide_log_call *lc)
{
    const tide_task *t = pc->task;
    lc->id = t->id;
    lc->role = tide_role_name(t->role);
    lc->sub = t->sub;
    lc->method = t->req ? t->req->method : NULL;
    lc->route = t->route;
    lc->kind = pc->db_kind;
    lc->table = pc->db_table;
    lc->upstream = upstream;
}

/* The upstream a finished call ran on last: the transaction's pool, the one in use (a
 * fallback, maybe), else the one asked for. */
static const char *final_upstream(const tide_call *c, const tide_call_error *err)
{
    if (c->job.pin && c->pin_pool) return tide_pool_name(c->pin_pool);
    if (err) return tide_upstream_name(err->upstream);
    return tide_upstream_name(c->up ? c->up->index : c->up_index);
}

/* The slow_query line, when the call took at least log.slow_query_ms (retries and waiting for
 * a connection included: what the request waited). The statement is shown by its shape, as
 * /admin/queries shows it: aliases (a client's words on /rest/v1) never reach the log. */
static void log_if_slow(pgcall *pc, const PGresult *res, const tide_call_error *err)
{
    int slow_ms = pc->task->app->cfg.log_slow_query_ms;
    if (slow_ms <= 0) return;
    double ms = (ev_time() - pc->started) * 1000.0;
    if (ms < slow_ms) return;
    const tide_call *c = &pc->call;
    char shape[1025];                    /* the line keeps 1 KiB of it */
    tide_qstats_shape(c->job.sql ? c->job.sql : "BEGIN", shape, sizeof shape);
    tide_log_call lc;
    describe_call(pc, final_upstream(c, err), &lc);
    tide_log_slow_query(&lc, ms, res ? PQntuples(res) : -1, c->attempt, err ? err->code : NULL,
                        shape);
}

/* The call's completion: the transaction's connection, then the answer as Lua values. */
static void call_done(tide_call *c, PGresult *res, const tide_call_error *err)
{
    pgcall *pc = container_of(c, pgcall, call);
    tide_task *t = pc->task;
    tide_pgjob *job = &c->job;
    lua_State *co = t->co;

    tide_qstats_record(c->up ? c->up->index : c->up_index,
                       pc->kind == CALL_QUERY ? job->sql : NULL, ev_time() - pc->started,
                       res ? PQntuples(res) : 0, err != NULL);
    log_if_slow(pc, res, err);
    if (!err || err->ran) {
        if (pc->kind == CALL_TX_BEGIN) {
            t->tx = job->conn;                   /* NULL unless it succeeded */
            t->tx_pool = job->pool;
        } else if (pc->kind == CALL_QUERY && job->pin) {
            if (!job->conn) t->tx = NULL;        /* the transaction's connection was lost */
        }
    }
    if (err) {
        resume_with_error(pc, err);
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

/* The audit line of a call that runs as service_role (via: AS_*), once it started. */
static void audit_call(const pgcall *pc, int via, int up_index)
{
    const tide_call *c = &pc->call;
    tide_log_call lc;
    describe_call(pc, c->job.pin && c->pin_pool ? tide_pool_name(c->pin_pool)
                                                  : tide_upstream_name(up_index), &lc);
    tide_log_audit_call(&lc, via_names[via]);
}

/* Parks the coroutine on pc: every outcome, even an immediate error, comes back through the
 * loop (tide_call_start never completes inside), so the answer never arrives before the
 * yield. */
static int start_call(lua_State *L, tide_task *t, int up_index, pgcall *pc, int via)
{
    snprintf(pc->label, sizeof pc->label, "tide %s", t->id);
    pc->started = ev_time();
    pc->call.job.label = pc->label;
    tide_app *app = t->app;
    tide_call_env env = { .loop = app->loop, .ups = app->ups };
    pc->task = t;
    pc->started = ev_time();
    pc->call.authenticated = t->role != TIDE_ROLE_ANON;
    pc->call.aborted = t->aborted;
    if (pc->call.job.pin) pc->call.pin_pool = t->tx_pool;
    t->call = &pc->call;
    if (tide_call_start(&pc->call, &env, up_index, call_done) != 0) {
        t->call = NULL;
        free(pc);
        return luaL_error(L, "cannot start the database call");
    }
    if (via != AS_CALLER) audit_call(pc, via, up_index);
    return lua_yield(L, 0);
}

/* Copies the string field k of the table at idx into out ("" when absent). */
static void opt_str(lua_State *L, int idx, const char *k, char *out, size_t cap)
{
    lua_getfield(L, idx, k);
    size_t len = 0;
    const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    if (len >= cap) len = cap - 1;
    if (v) memcpy(out, v, len);
    out[len] = 0;
    lua_pop(L, 1);
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
        if (!isfinite(d)) misuse(L, "parameter %d is not a finite number", n);
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
    misuse(L, "parameter %d has type %s: encode tables before passing them", n,
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
    int json = 0, as_service = 0, in_tx = 0, read = 0, read_only = 0;
    char kind[16] = "", table[96] = "";
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        lua_getfield(L, 4, "json"); json = lua_toboolean(L, -1);
        lua_getfield(L, 4, "as_service"); as_service = lua_toboolean(L, -1);
        lua_getfield(L, 4, "tx"); in_tx = lua_toboolean(L, -1);
        lua_getfield(L, 4, "read_only"); read_only = lua_toboolean(L, -1);
        lua_pop(L, 4);
        opt_str(L, 4, "kind", kind, sizeof kind);
        opt_str(L, 4, "table", table, sizeof table);
        read = strcmp(kind, "select") == 0 || strcmp(kind, "count") == 0 ||
               strcmp(kind, "vector_search") == 0;
        /* opts.cache: the tags the answer depends on (a list), or false when it cannot say
         * (tide.db, tide.cachetags); recorded here, with the call, not by a call of its own */
        lua_getfield(L, 4, "cache");
        if (lua_istable(L, -1)) {
            int nt = (int)lua_objlen(L, -1);
            for (int i = 1; i <= nt; i++) {
                lua_rawgeti(L, -1, i);
                size_t tl;
                const char *tag = lua_tolstring(L, -1, &tl);
                if (tag) tide_rcache_depend(t->cr, tag, tl);
                else tide_rcache_skip(t->cr);
                lua_pop(L, 1);
            }
        } else if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
            tide_rcache_skip(t->cr);
        }
        lua_pop(L, 1);
    }
    if (in_tx && read_only) misuse(L, "read_only cannot be set inside a transaction");
    read = read || read_only;           /* nothing it calls can write: a repeat is harmless */
    int n = 0;
    if (has_params) {
        lua_getfield(L, 3, "n");
        n = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : (int)lua_objlen(L, 3);
        lua_pop(L, 1);
        if (n < 0 || n > 65535) misuse(L, "bad parameter count %d", n);
    }
    if (in_tx && !t->tx) misuse(L, "no transaction is open");

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
    pc->call.read = read;
    memcpy(pc->db_kind, kind, sizeof kind);
    memcpy(pc->db_table, table, sizeof table);
    pc->call.job.sql = copy_str(&cur, sql, sql_len);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, 3, i);
        size_t len = 0;
        const char *v = param_text(L, -1, i, numbuf, sizeof numbuf, &len);
        pc->values[i - 1] = v ? copy_str(&cur, v, len) : NULL;
        lua_pop(L, 1);
    }
    pc->call.job.nparams = n;
    pc->call.job.values = pc->values;
    int via = AS_CALLER;
    if (in_tx) {
        pc->call.job.pin = t->tx;
        pc->call.job.flags = TIDE_PGJOB_KEEP;
        via = t->tx_service;
    } else {
        pc->call.job.flags = TIDE_PGJOB_AUTH | (read_only ? TIDE_PGJOB_READ_ONLY : 0);
        if (as_service) {
            pc->call.job.claims = "{\"role\":\"service_role\"}";
            pc->call.job.role = "service_role";
        } else {
            pc->call.job.claims = t->claims;
            pc->call.job.role = tide_role_name(t->role);
        }
        via = as_service ? AS_SERVICE : t->role == TIDE_ROLE_SERVICE ? AS_SERVICE_TOKEN : AS_CALLER;
    }
    return start_call(L, t, up_index, pc, via);
}

/* core.tx_begin(upstream[, as_service]) -> true | nil, err */
static int l_tx_begin(lua_State *L)
{
    tide_task *t = require_task(L);
    int up_index = upstream_arg(L, 1);
    int as_service = lua_toboolean(L, 2);
    if (t->tx) misuse(L, "a transaction is already open");
    char *cur;
    pgcall *pc = call_new(0, 0, &cur);
    if (!pc) return luaL_error(L, "out of memory");
    pc->kind = CALL_TX_BEGIN;
    pc->call.read = 1;            /* nothing happened yet: a retry is harmless */
    pc->call.job.flags = TIDE_PGJOB_BEGIN | TIDE_PGJOB_AUTH | TIDE_PGJOB_KEEP;
    pc->call.job.claims = as_service ? "{\"role\":\"service_role\"}" : t->claims;
    pc->call.job.role = as_service ? "service_role" : tide_role_name(t->role);
    snprintf(pc->db_kind, sizeof pc->db_kind, "transaction");
    /* the statements inside run as the BEGIN did: each gets its audit line too */
    t->tx_service = as_service ? AS_SERVICE : t->role == TIDE_ROLE_SERVICE ? AS_SERVICE_TOKEN
                                                                          : AS_CALLER;
    return start_call(L, t, up_index, pc, t->tx_service);
}

/* core.tx_end(commit) -> true | nil, err; the connection goes back to its pool either way */
static int l_tx_end(lua_State *L)
{
    tide_task *t = require_task(L);
    int commit = lua_toboolean(L, 1);
    if (!t->tx) misuse(L, "no transaction is open");
    char *cur;
    pgcall *pc = call_new(0, 0, &cur);
    if (!pc) return luaL_error(L, "out of memory");
    pc->kind = CALL_TX_END;
    pc->call.job.sql = commit ? "COMMIT" : "ROLLBACK";
    pc->call.job.pin = t->tx;
    pc->call.job.flags = 0;
    snprintf(pc->db_kind, sizeof pc->db_kind, "transaction");
    t->tx = NULL;                 /* released by the pool when the job ends */
    t->tx_service = AS_CALLER;
    return start_call(L, t, 0, pc, AS_CALLER);
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

/* core.schema_generation() -> integer: moves when /rest/v1's schema cache must be read again
 * (a NOTIFY on rest.notify_channel, a new LISTEN session: runtime/channels.h). */
static int l_schema_generation(lua_State *L)
{
    lua_pushnumber(L, (double)tide__vm_app(core_vm(L))->schema_generation);
    return 1;
}

/* core.wait(seconds) -> "woken" | "timeout" | "aborted": parks the request's coroutine until
 * core.wake() in the same Lua state, `seconds` pass (0 < seconds <= 60), or the client goes
 * away (runtime/task.h: tide__task_wait). Only in a request's own coroutine, not during a
 * database call; a client already gone answers "aborted" at once. A woken request re-checks
 * what it waits for: a wake is for every waiter of the state. */
static int l_wait(lua_State *L)
{
    tide_task *t = tide__task_current();
    if (!t || t->co != L) misuse(L, "core.wait: only in a request's own coroutine");
    double s = luaL_checknumber(L, 1);
    if (!(s > 0 && s <= 60)) misuse(L, "core.wait: seconds must be in (0, 60]");
    if (t->aborted) {
        lua_pushstring(L, "aborted");
        return 1;
    }
    tide__task_wait(t, s);
    return lua_yield(L, 0);
}

/* core.wake() -> n: every request of this Lua state parked in core.wait resumes with "woken"
 * on a later loop pass (never inside this call); n of them. */
static int l_wake(lua_State *L)
{
    lua_pushinteger(L, tide__vm_wake(core_vm(L)));
    return 1;
}

static int l_request_id(lua_State *L)
{
    tide_task *t = tide__task_current();
    if (t) lua_pushstring(L, t->id); else lua_pushnil(L);
    return 1;
}

/* ---- the result cache (runtime/rcache.h) ------------------------------------------------ */

/* core.cache_depend(tag, ...): what the current request's reads depend on. */
static int l_cache_depend(lua_State *L)
{
    tide_task *t = tide__task_current();
    int n = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        size_t len;
        const char *tag = luaL_checklstring(L, i, &len);
        if (t) tide_rcache_depend(t->cr, tag, len);
    }
    return 0;
}

/* core.cache_skip(): the current request's answer must not be stored. */
static int l_cache_skip(lua_State *L)
{
    (void)L;
    tide_task *t = tide__task_current();
    if (t) tide_rcache_skip(t->cr);
    return 0;
}

/* core.cache_invalidate(tag, ...): entries tagged so, read before now, are not served again.
 * A request that writes is not stored either. */
static int l_cache_invalidate(lua_State *L)
{
    tide_app *app = tide__vm_app(core_vm(L));
    tide_task *t = tide__task_current();
    int n = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        size_t len;
        const char *tag = luaL_checklstring(L, i, &len);
        tide_rcache_invalidate(app, tag, len);
    }
    if (t) tide_rcache_skip(t->cr);
    return 0;
}

static const char *const scope_opts[] = { "public", "role", "user", "claims", NULL };

static tide_task *cache_task(lua_State *L, tide_cache_ident *who)
{
    tide_task *t = tide__task_current();
    if (!t) {
        misuse(L, "tide.cache is only available while handling a request");
        return NULL;                   /* not reached: misuse raises */
    }
    who->role = t->role;
    who->sub = t->sub;
    who->claims = t->claims;
    return t;
}

/* core.cache_get(key, scope, stale_if_error) -> value, age, stale | nil */
static int l_cache_get(lua_State *L)
{
    size_t klen;
    const char *key = luaL_checklstring(L, 1, &klen);
    int scope = luaL_checkoption(L, 2, NULL, scope_opts);
    double sie = luaL_optnumber(L, 3, 0);
    tide_cache_ident who;
    cache_task(L, &who);
    const void *v;
    size_t vlen;
    double age;
    int stale;
    if (!tide_rcache_script_get(tide__vm_app(core_vm(L)), &who, scope, key, klen, sie, &v,
                                &vlen, &age, &stale)) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushlstring(L, v, vlen);
    lua_pushnumber(L, age);
    lua_pushboolean(L, stale);
    return 3;
}

/* core.cache_set(key, value, scope, ttl, swr, sie, {tags}) -> true | nil, err: err an error
 * table, code TIDE_CACHE_RACED (409: a tag moved since the request began), TIDE_CACHE_TOO_BIG
 * (500: over an eighth of cache.max_bytes), TIDE_CACHE_OFF (503: no cache) or TIDE_CACHE_ERROR
 * (500) */
static int l_cache_set(lua_State *L)
{
    size_t klen, vlen;
    const char *key = luaL_checklstring(L, 1, &klen);
    const char *value = luaL_checklstring(L, 2, &vlen);
    int scope = luaL_checkoption(L, 3, NULL, scope_opts);
    double ttl = luaL_checknumber(L, 4), swr = luaL_optnumber(L, 5, 0);
    double sie = luaL_optnumber(L, 6, 0);
    const char *tags[TIDE_CACHE_MAX_TAGS];
    size_t tlens[TIDE_CACHE_MAX_TAGS];
    int ntags = 0;
    if (!lua_isnoneornil(L, 7)) {
        luaL_checktype(L, 7, LUA_TTABLE);
        int n = (int)lua_objlen(L, 7);
        if (n > TIDE_CACHE_MAX_TAGS) misuse(L, "at most %d tags", TIDE_CACHE_MAX_TAGS);
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, 7, i);
            if (lua_type(L, -1) != LUA_TSTRING) misuse(L, "tags must be strings");
            tags[ntags] = lua_tolstring(L, -1, &tlens[ntags]);
            ntags++;
            lua_pop(L, 1);                 /* the table keeps the string alive */
        }
    }
    if (!(ttl > 0)) misuse(L, "ttl must be a positive number of seconds");
    tide_cache_ident who;
    tide_task *t = cache_task(L, &who);
    int rc = tide_rcache_script_set(tide__vm_app(core_vm(L)), &who, scope, key, klen, value,
                                    vlen, ttl, swr, sie, t->born, tags, tlens, ntags);
    if (rc == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    if (rc == TIDE_EAGAIN)
        push_err(L, "TIDE_CACHE_RACED", 409, "not stored: a write invalidated one of its tags "
                 "after the request began", NULL, NULL);
    else if (rc == TIDE_ETOOBIG)
        push_err(L, "TIDE_CACHE_TOO_BIG", 500, "not stored: the entry is larger than an eighth "
                 "of cache.max_bytes", NULL, NULL);
    else if (rc == TIDE_ECLOSED)
        push_err(L, "TIDE_CACHE_OFF", 503, "not stored: the result cache is off", NULL, NULL);
    else
        push_err(L, "TIDE_CACHE_ERROR", 500, tide_strerror(rc), NULL, NULL);
    return 2;
}

static const unsigned char *enc_key(lua_State *L)
{
    tide_app *app = tide__vm_app(core_vm(L));
    if (!app->cfg.has_enc_key)
        misuse(L, "no encryption key configured (crypto.key or TIDE_ENCRYPTION_KEY)");
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
        misuse(L, "a sealing context of 1 to %d strings is required", TIDE_CRYPTO_MAX_FIELDS);
    for (int i = 0; i < n; i++) f[i] = luaL_checklstring(L, first + i, &l[i]);
    unsigned char *aad = NULL;
    if (tide_crypto_aad(f, l, (size_t)n, &aad, len) != 0)
        misuse(L, "sealing context too large");
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

static const luaL_Reg fns[] = {
        { "query", l_query },       { "tx_begin", l_tx_begin }, { "tx_end", l_tx_end },
        { "log", l_log },           { "now", l_now },           { "request_id", l_request_id },
        { "schema_generation", l_schema_generation },
        { "seal", l_seal },         { "open", l_open },         { "sha256_hex", l_sha256_hex },
        { "keyed_hash_hex", l_keyed_hash_hex },
        { "pool_stats", l_pool_stats }, { "health", l_health },
        { "cache_depend", l_cache_depend }, { "cache_skip", l_cache_skip },
        { "cache_invalidate", l_cache_invalidate }, { "cache_get", l_cache_get },
        { "cache_set", l_cache_set }, { "wait", l_wait }, { "wake", l_wake },
        { NULL, NULL } };

/* Calls fns[upvalue 2] (its upvalue 1, the vm, is this closure's), counting the crossings. */
static int counted(lua_State *L)
{
    tide__vm_crossing(1);
    int n = fns[lua_tointeger(L, lua_upvalueindex(2))].func(L);
    if (lua_status(L) != LUA_YIELD) tide__vm_crossing(1);    /* returned to Lua */
    return n;
}

int tide_core_open(lua_State *L)
{
    void *vm = lua_touserdata(L, lua_upvalueindex(1));
    if (luaL_newmetatable(L, ERROR_MT)) {          /* unless tide.errors made it first */
        lua_pushliteral(L, ERROR_MT);
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
    lua_newtable(L);
    for (const luaL_Reg *f = fns; f->name; f++) {
        lua_pushlightuserdata(L, vm);
        lua_pushinteger(L, f - fns);
        lua_pushcclosure(L, counted, 2);
        lua_setfield(L, -2, f->name);
    }
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    return 1;
}
