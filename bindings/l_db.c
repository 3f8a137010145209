/* l_db.c - tide.core's database calls (l_core.c): query, tx_begin, tx_end, and the figures
 * /rest/v1 and the admin scripts read about the database (pool_stats, schema_generation).
 *
 * core.query(upstream, sql, params, opts) checks its arguments, parks the request's coroutine
 * on a database call (runtime/call.c chooses the upstream, retries, falls back and maps the
 * final error) and the call's completion resumes it with the result turned into Lua values.
 * A call with opts.read_only runs in a read-only transaction: whatever it calls cannot write
 * (SQLSTATE 25006), so a retry is as harmless as a read's.
 *
 * The log lines about database calls are written here, where a call starts and ends: an
 * audit line for every call that runs as service_role (as = "service", or the caller's token
 * is service_role's), and a slow_query line for a call that took at least log.slow_query_ms.
 * They name the request's route, which the router found before any Lua ran (the task holds
 * it). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>

#include "l_common.h"
#include "../runtime/call.h"
#include "../runtime/log.h"
#include "../runtime/pool.h"
#include "../runtime/qstats.h"
#include "../runtime/rcache.h"
#include "../runtime/task_api.h"
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
    int json; /* return the single text cell */
    const char **values;
    char label[64];   /* application_name: "tide <request id>" */
    double started;   /* ev_time() at the start: /admin/queries, slow queries */
    char db_kind[16]; /* tide.db's kind and table, for the log lines ("": unknown) */
    char db_table[96];
} pgcall;

static tide_task *require_task(lua_State *L)
{
    tide_task *t = tide_task_current();
    if (!t) {
        tide__l_misuse(L, "database calls are only allowed while handling a request");
        return NULL; /* not reached: misuse raises */
    }
    if (tide_task_co(t) != L)
        tide__l_misuse(L, "database calls must run in the request's own coroutine");
    if (tide_task_call(t)) tide__l_misuse(L, "a database call is already in progress");
    return t;
}

static int upstream_arg(lua_State *L, int idx)
{
    const char *name = luaL_checkstring(L, idx);
    int i = tide_upstream_index(name);
    if (i < 0)
        tide__l_misuse(L, "unknown upstream '%s' (direct, session, transaction or replica)", name);
    return i;
}

/* Pushes one field of a generic result converted by type. */
static void push_value(lua_State *L, tide_vm *vm, const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col)) {
        lua_pushlightuserdata(L, NULL);
        return;
    }
    const char *v = PQgetvalue(res, row, col);
    int len = PQgetlength(res, row, col);
    switch (PQftype(res, col)) {
    case 16: lua_pushboolean(L, v[0] == 't'); break; /* bool */
    case 21:
    case 23:
    case 26:
    case 700:
    case 701: /* numbers */ lua_pushnumber(L, strtod(v, NULL)); break;
    case 20:
    case 1700: { /* int8, numeric: a number only when it is exact */
        double d = strtod(v, NULL);
        int digits = 0;
        for (const char *q = v; *q; q++) digits += *q >= '0' && *q <= '9';
        if (fabs(d) < 9007199254740992.0 && digits <= 15) lua_pushnumber(L, d);
        else lua_pushlstring(L, v, (size_t)len);
        break;
    }
    case 114:
    case 3802: /* json, jsonb */
        tide_vm_push_decode(vm, L);
        lua_pushlstring(L, v, (size_t)len);
        if (lua_pcall(L, 1, 1, 0) != 0) {
            lua_pop(L, 1);
            lua_pushlstring(L, v, (size_t)len);
        }
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
    tide_task_set_call(t, NULL);
    free(pc);
    tide_task_resume(t, nret);
}

/* What a client reads for an error about tide's upstreams rather than the statement: a fixed
 * message per code, because the original text is libpq's or tide's own and names hosts,
 * ports, users and upstreams. NULL for the others (SQL errors keep the database's message,
 * as PostgREST does). */
static const char *public_message(const char *code)
{
    static const struct {
        const char *code, *msg;
    } fixed[] = {
        { "08001", "the database cannot be reached" },
        { "TIDE_OUTCOME_UNKNOWN",
          "the connection to the database was lost after the write was "
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
        tide_warn("request %s: upstream %s: %s (%s)", tide_task_id(t),
                  tide_upstream_name(e->upstream), msg, code);
    if (pub) {
        snprintf(rid, sizeof rid, "request %s", tide_task_id(t));
        msg = pub;
        detail = rid;
        hint = NULL;
    }
    lua_State *co = tide_task_co(t);
    lua_pushnil(co);
    tide__l_push_err(co, code, e->status, msg, detail, hint);
    if (e->retry_after > 0) {
        lua_pushnumber(co, e->retry_after);
        lua_setfield(co, -2, "retry_after"); /* tide.boot turns it into Retry-After */
    }
    call_resume(pc, 2);
}

/* What the log lines say about pc's call, on upstream `upstream` (a name). */
static void describe_call(const pgcall *pc, const char *upstream, tide_log_call *lc)
{
    const tide_task *t = pc->task;
    lc->id = tide_task_id(t);
    lc->role = tide_role_name(tide_task_role(t));
    lc->sub = tide_task_sub(t);
    lc->method = tide_task_method(t);
    lc->route = tide_task_route(t);
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
    int slow_ms = tide_task_app(pc->task)->cfg.log_slow_query_ms;
    if (slow_ms <= 0) return;
    double ms = (ev_time() - pc->started) * 1000.0;
    if (ms < slow_ms) return;
    const tide_call *c = &pc->call;
    char shape[1025]; /* the line keeps 1 KiB of it */
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
    lua_State *co = tide_task_co(t);

    tide_qstats_record(c->up ? c->up->index : c->up_index, pc->kind == CALL_QUERY ? job->sql : NULL,
                       ev_time() - pc->started, res ? PQntuples(res) : 0, err != NULL);
    log_if_slow(pc, res, err);
    if (!err || err->ran) {
        if (pc->kind == CALL_TX_BEGIN) {
            tide_task_set_tx(t, job->conn, job->pool); /* conn NULL unless it succeeded */
        } else if (pc->kind == CALL_QUERY && job->pin) {
            if (!job->conn) /* the transaction's connection was lost */
                tide_task_set_tx(t, NULL, tide_task_tx_pool(t));
        }
    }
    if (err) {
        resume_with_error(pc, err);
        return;
    }
    if (job->lsn) tide_task_note_write(t, job->lsn);
    /* read from a replica that may not have replayed an invalidated write: answer it, but
     * do not let it refill the cache (the old row would stay for a whole ttl) */
    if (c->up && c->up->standby && !tide_replica_fill_safe(&tide_task_app(t)->replica, c->replayed))
        tide_rcache_skip(tide_task_cache_req(t));
    if (pc->kind != CALL_QUERY) {
        lua_pushboolean(co, 1);
    } else if (pc->json) {
        if (res && PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0))
            lua_pushlstring(co, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
        else lua_pushnil(co);
    } else {
        push_generic(co, tide_task_vm(t), res);
    }
    call_resume(pc, 1);
}

/* The audit line of a call that runs as service_role (via: AS_*), once it started. */
static void audit_call(const pgcall *pc, int via, int up_index)
{
    const tide_call *c = &pc->call;
    tide_log_call lc;
    describe_call(
        pc, c->job.pin && c->pin_pool ? tide_pool_name(c->pin_pool) : tide_upstream_name(up_index),
        &lc);
    tide_log_audit_call(&lc, via_names[via]);
}

/* TIDE_PGJOB_LSN for a job that commits a write, when a replica is configured: the WAL
 * position after the commit, read in the same round trip, floors the caller's later reads. */
static int commit_lsn(tide_task *t) { return tide_task_app(t)->writes ? TIDE_PGJOB_LSN : 0; }

/* Parks the coroutine on pc: every outcome, even an immediate error, comes back through the
 * loop (tide_call_start never completes inside), so the answer never arrives before the
 * yield. */
static int start_call(lua_State *L, tide_task *t, int up_index, pgcall *pc, int via)
{
    snprintf(pc->label, sizeof pc->label, "tide %s", tide_task_id(t));
    pc->started = ev_time();
    pc->call.job.label = pc->label;
    tide_app *app = tide_task_app(t);
    tide_call_env env = { .loop = app->loop, .ups = app->ups };
    pc->task = t;
    pc->started = ev_time();
    pc->call.authenticated = tide_task_role(t) != TIDE_ROLE_ANON;
    pc->call.aborted = tide_task_aborted(t);
    pc->call.floor = tide_task_floor(t);
    if (pc->call.job.pin) pc->call.pin_pool = tide_task_tx_pool(t);
    tide_task_set_call(t, &pc->call);
    if (tide_call_start(&pc->call, &env, up_index, call_done) != 0) {
        tide_task_set_call(t, NULL);
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
    case LUA_TNIL: return NULL;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) return NULL; /* json.null */
        break;
    case LUA_TBOOLEAN:
        *len = (size_t)snprintf(buf, cap, "%s", lua_toboolean(L, idx) ? "true" : "false");
        return buf;
    case LUA_TNUMBER: {
        double d = lua_tonumber(L, idx);
        if (!isfinite(d)) tide__l_misuse(L, "parameter %d is not a finite number", n);
        if (d == floor(d) && fabs(d) < 9007199254740992.0)
            *len = (size_t)snprintf(buf, cap, "%lld", (long long)d);
        else *len = (size_t)snprintf(buf, cap, "%.17g", d);
        return buf;
    }
    case LUA_TSTRING: return lua_tolstring(L, idx, len);
    default: break;
    }
    tide__l_misuse(L, "parameter %d has type %s: encode tables before passing them", n,
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
        lua_getfield(L, 4, "json");
        json = lua_toboolean(L, -1);
        lua_getfield(L, 4, "as_service");
        as_service = lua_toboolean(L, -1);
        lua_getfield(L, 4, "tx");
        in_tx = lua_toboolean(L, -1);
        lua_getfield(L, 4, "read_only");
        read_only = lua_toboolean(L, -1);
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
                if (tag) tide_rcache_depend(tide_task_cache_req(t), tag, tl);
                else tide_rcache_skip(tide_task_cache_req(t));
                lua_pop(L, 1);
            }
        } else if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
            tide_rcache_skip(tide_task_cache_req(t));
        }
        lua_pop(L, 1);
    }
    if (in_tx && read_only) tide__l_misuse(L, "read_only cannot be set inside a transaction");
    read = read || read_only; /* nothing it calls can write: a repeat is harmless */
    int n = 0;
    if (has_params) {
        lua_getfield(L, 3, "n");
        n = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : (int)lua_objlen(L, 3);
        lua_pop(L, 1);
        if (n < 0 || n > 65535) tide__l_misuse(L, "bad parameter count %d", n);
    }
    if (in_tx && !tide_task_tx(t)) tide__l_misuse(L, "no transaction is open");

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
            tide__l_push_err(L, "TIDE_INVALID_PARAM", 400, lua_tostring(L, -1), NULL, NULL);
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
        pc->call.job.pin = tide_task_tx(t);
        pc->call.job.flags = TIDE_PGJOB_KEEP;
        via = tide_task_tx_service(t);
    } else {
        pc->call.job.flags =
            TIDE_PGJOB_AUTH | (read_only ? TIDE_PGJOB_READ_ONLY : 0) | (read ? 0 : commit_lsn(t));
        if (as_service) {
            pc->call.job.claims = "{\"role\":\"service_role\"}";
            pc->call.job.role = "service_role";
        } else {
            pc->call.job.claims = tide_task_claims(t);
            pc->call.job.role = tide_role_name(tide_task_role(t));
        }
        via = as_service                               ? AS_SERVICE
              : tide_task_role(t) == TIDE_ROLE_SERVICE ? AS_SERVICE_TOKEN
                                                       : AS_CALLER;
    }
    return start_call(L, t, up_index, pc, via);
}

/* core.tx_begin(upstream[, as_service]) -> true | nil, err */
static int l_tx_begin(lua_State *L)
{
    tide_task *t = require_task(L);
    int up_index = upstream_arg(L, 1);
    int as_service = lua_toboolean(L, 2);
    if (tide_task_tx(t)) tide__l_misuse(L, "a transaction is already open");
    char *cur;
    pgcall *pc = call_new(0, 0, &cur);
    if (!pc) return luaL_error(L, "out of memory");
    pc->kind = CALL_TX_BEGIN;
    pc->call.read = 1; /* nothing happened yet: a retry is harmless */
    pc->call.job.flags = TIDE_PGJOB_BEGIN | TIDE_PGJOB_AUTH | TIDE_PGJOB_KEEP;
    pc->call.job.claims = as_service ? "{\"role\":\"service_role\"}" : tide_task_claims(t);
    pc->call.job.role = as_service ? "service_role" : tide_role_name(tide_task_role(t));
    snprintf(pc->db_kind, sizeof pc->db_kind, "transaction");
    /* the statements inside run as the BEGIN did: each gets its audit line too */
    int why = as_service                               ? AS_SERVICE
              : tide_task_role(t) == TIDE_ROLE_SERVICE ? AS_SERVICE_TOKEN
                                                       : AS_CALLER;
    tide_task_set_tx_service(t, why);
    return start_call(L, t, up_index, pc, tide_task_tx_service(t));
}

/* core.tx_end(commit) -> true | nil, err; the connection goes back to its pool either way */
static int l_tx_end(lua_State *L)
{
    tide_task *t = require_task(L);
    int commit = lua_toboolean(L, 1);
    if (!tide_task_tx(t)) tide__l_misuse(L, "no transaction is open");
    char *cur;
    pgcall *pc = call_new(0, 0, &cur);
    if (!pc) return luaL_error(L, "out of memory");
    pc->kind = CALL_TX_END;
    pc->call.job.sql = commit ? "COMMIT" : "ROLLBACK";
    pc->call.job.pin = tide_task_tx(t);
    pc->call.job.flags = commit ? commit_lsn(t) : 0;
    snprintf(pc->db_kind, sizeof pc->db_kind, "transaction");
    tide_task_set_tx(t, NULL, tide_task_tx_pool(t)); /* released by the pool when the job ends */
    tide_task_set_tx_service(t, AS_CALLER);
    return start_call(L, t, 0, pc, AS_CALLER);
}

/* core.schema_generation() -> integer: moves when /rest/v1's schema cache must be read again
 * (a NOTIFY on rest.notify_channel, a new LISTEN session: runtime/channels.h). */
static int l_schema_generation(lua_State *L)
{
    lua_pushnumber(L, (double)tide_vm_app(core_vm(L))->schema_generation);
    return 1;
}

static int l_pool_stats(lua_State *L)
{
    tide_app *app = tide_vm_app(core_vm(L));
    lua_createtable(L, 0, TIDE_UPSTREAMS);
    for (int i = 0; i < TIDE_UPSTREAMS; i++) {
        tide_pool_stats s;
        tide_pool *pool = app->ups[i]->pool;
        tide_pool_get_stats(pool, &s);
        lua_createtable(L, 0, 8);
        lua_pushstring(L, tide_pool_name(pool));
        lua_setfield(L, -2, "pool");
        lua_pushinteger(L, s.size);
        lua_setfield(L, -2, "size");
        lua_pushinteger(L, s.open);
        lua_setfield(L, -2, "open");
        lua_pushinteger(L, s.idle);
        lua_setfield(L, -2, "idle");
        lua_pushinteger(L, s.busy);
        lua_setfield(L, -2, "busy");
        lua_pushinteger(L, s.waiting);
        lua_setfield(L, -2, "waiting");
        lua_pushnumber(L, (double)s.jobs);
        lua_setfield(L, -2, "jobs");
        lua_pushnumber(L, (double)s.errors);
        lua_setfield(L, -2, "errors");
        lua_setfield(L, -2, tide_upstream_name(i));
    }
    return 1;
}

const luaL_Reg tide__l_db_fns[] = {
    { "query", l_query },           { "tx_begin", l_tx_begin },
    { "tx_end", l_tx_end },         { "schema_generation", l_schema_generation },
    { "pool_stats", l_pool_stats }, { NULL, NULL }
};
