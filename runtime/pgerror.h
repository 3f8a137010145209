/* pgerror.h - what went wrong with a Postgres job, and the HTTP status it suggests.
 *
 * tide_pg_error is the error every pool job reports (see pool.h); tide_pg_http_status() is
 * PostgREST's mapping from SQLSTATE to HTTP status. Pure: no loop, no logging. The tide__
 * helpers fill and empty an error for the pool and its connections. */
#ifndef TIDE_PGERROR_H
#define TIDE_PGERROR_H

#include <libpq-fe.h>

/* What went wrong with a job. code is a SQLSTATE ("23505") or a TIDE_* code. */
typedef struct tide_pg_error {
    char code[32];
    int status;                    /* suggested HTTP status */
    char *message, *detail, *hint; /* malloc'd or NULL; freed by the pool after done() */
    int sent;                      /* the pipeline (with its Sync) may have reached the server: a
                              * write's outcome is unknown when the connection then fails */
} tide_pg_error;

/* PostgREST's mapping from SQLSTATE to HTTP status. authenticated distinguishes 42501's
 * 403 (authenticated) from 401 (anonymous). NULL or "" -> 500; any "TIDE_*" code -> 503;
 * an unknown class -> 400. */
int tide_pg_http_status(const char *sqlstate, int authenticated);

/* Frees e's strings and zeroes it (safe on a zeroed error). */
void tide__pgerr_clear(tide_pg_error *e);
/* Replaces e with code, status and a copy of msg. */
void tide__pgerr_set(tide_pg_error *e, const char *code, int status, const char *msg);
/* Replaces e with the SQLSTATE and messages of an error result; status is left 0 (the caller
 * knows whether the request is authenticated). */
void tide__pgerr_from_result(tide_pg_error *e, const PGresult *res);

#endif
