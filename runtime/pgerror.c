/* pgerror.c - job errors and the SQLSTATE -> HTTP status map (see pgerror.h). */
#include "pgerror.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tide_pg_http_status(const char *s, int authenticated)
{
    if (!s || !s[0]) return 500;
    if (strncmp(s, "TIDE_", 5) == 0) return 503;
    if (strcmp(s, "23503") == 0 || strcmp(s, "23505") == 0) return 409;
    if (strcmp(s, "25006") == 0) return 405;
    if (strcmp(s, "53400") == 0) return 500;
    if (strcmp(s, "42883") == 0 || strcmp(s, "42P01") == 0) return 404;
    if (strcmp(s, "42501") == 0) return authenticated ? 403 : 401;
    if (strcmp(s, "P0001") == 0) return 400;
    switch (s[0]) {
    case '0':
        if (s[1] == '8') return 503;
        if (s[1] == '9') return 500;
        if (s[1] == 'L' || s[1] == 'P') return 403;
        break;
    case '2':
        if (s[1] == '5' || s[1] == 'D') return 500;
        if (s[1] == '8') return 403;
        break;
    case '3':
        if (s[1] == '8' || s[1] == '9' || s[1] == 'B') return 500;
        break;
    case '4':
        if (s[1] == '0') return 500;
        break;
    case '5':
        if (s[1] == '3') return 503;
        if (s[1] == '4' || s[1] == '5' || s[1] == '7' || s[1] == '8') return 500;
        break;
    case 'F':
        if (s[1] == '0') return 500;
        break;
    case 'H':
        if (s[1] == 'V') return 500;
        break;
    case 'P':
        if (s[1] == '0') return 500;
        break;
    case 'X':
        if (s[1] == 'X') return 500;
        break;
    }
    return 400;
}

static char *dup_or_null(const char *s)
{
    if (!s || !*s) return NULL;
    return strdup(s);
}

void tide__pgerr_clear(tide_pg_error *e)
{
    free(e->message);
    free(e->detail);
    free(e->hint);
    memset(e, 0, sizeof *e);
}

void tide__pgerr_set(tide_pg_error *e, const char *code, int status, const char *msg)
{
    tide__pgerr_clear(e);
    snprintf(e->code, sizeof e->code, "%s", code);
    e->status = status;
    e->message = strdup(msg);
}

void tide__pgerr_from_result(tide_pg_error *e, const PGresult *res)
{
    tide__pgerr_clear(e);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    snprintf(e->code, sizeof e->code, "%s", state ? state : "XX000");
    e->status = 0; /* the caller knows whether the request is authenticated */
    const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    e->message = strdup(m ? m : PQresultErrorMessage(res));
    e->detail = dup_or_null(PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
    e->hint = dup_or_null(PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
}
