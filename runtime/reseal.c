/* reseal.c - `tide reseal`: re-seals API keys stored in the v1 format (see reseal.h). */
#include "reseal.h"
#include "crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

/* API keys sealed before associated data existed ("v1:", bound to no row, key_hash a plain
 * SHA-256) are re-sealed as v2 bound to their row's (user_id, service_name, key_name), with
 * the keyed hash, exactly as scripts/api_keys.lua seals and hashes a new key (same context
 * fields, same label). A one-shot operator step after migration 006: tide serve never opens
 * a v1 text, and after 006 nothing can write one, so the v1 rows this reads are the ones that
 * were there before. Idempotent: only v1 rows are read, and each is rewritten only if it has
 * not changed since (a key saved again meanwhile is already v2). Talks to upstreams.direct
 * as service_role (RLS does not apply: every user's keys). Prints counts, never a key. Exit
 * status: 0 when no v1 row is left, 1 when some could not be opened (wrong crypto key?) or
 * changed under it, 2 on a config or database error. */

#define RESEAL_CONTEXT    "api_keys"             /* scripts/api_keys.lua context()[1] */
#define RESEAL_HASH_LABEL "tide api key hash v1" /* scripts/api_keys.lua HASH_LABEL */
#define RESEAL_BATCH      "200"

/* Re-seals one v1 row. Returns 1 (rewritten), 0 (changed meanwhile), -1 (does not open),
 * -2 (database error, reported). */
static int reseal_row(PGconn *conn, const unsigned char key[32], PGresult *rows, int i)
{
    const char *id = PQgetvalue(rows, i, 0), *text = PQgetvalue(rows, i, 4);
    char *plain = NULL, *sealed = NULL, hex[65];
    size_t plen = 0, alen = 0;
    if (tide_crypto_open_v1(key, text, (size_t)PQgetlength(rows, i, 4), &plain, &plen) != 0)
        return -1;
    const char *f[] = { RESEAL_CONTEXT, PQgetvalue(rows, i, 1), PQgetvalue(rows, i, 2),
                        PQgetvalue(rows, i, 3) };
    size_t l[] = { strlen(RESEAL_CONTEXT), (size_t)PQgetlength(rows, i, 1),
                   (size_t)PQgetlength(rows, i, 2), (size_t)PQgetlength(rows, i, 3) };
    unsigned char *aad = NULL;
    int rc = tide_crypto_aad(f, l, 4, &aad, &alen);
    if (rc == 0) rc = tide_crypto_seal(key, aad, alen, plain, plen, &sealed);
    if (rc == 0) rc = tide_crypto_keyed_hash_hex(key, RESEAL_HASH_LABEL, plain, plen, hex);
    tide_crypto_free_secret(plain, plen);
    free(aad);
    if (rc != 0) {
        fprintf(stderr, "tide reseal: key %s: %s\n", id, tide_strerror(rc));
        free(sealed);
        return -2;
    }
    const char *params[] = { id, sealed, hex, text };
    PGresult *r = PQexecParams(conn,
                               "UPDATE public.api_keys SET encrypted_key = $2, key_hash = $3"
                               " WHERE id = $1 AND encrypted_key = $4",
                               4, NULL, params, NULL, NULL, 0);
    free(sealed);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) fprintf(stderr, "tide reseal: key %s: %s", id, PQresultErrorMessage(r));
    rc = ok ? (strcmp(PQcmdTuples(r), "1") == 0 ? 1 : 0) : -2;
    PQclear(r);
    return rc;
}

/* Runs sql (no parameters, no rows expected); 0 or -1 with the error printed. */
static int reseal_exec(PGconn *conn, const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) fprintf(stderr, "tide reseal: %s", PQresultErrorMessage(r));
    PQclear(r);
    return ok ? 0 : -1;
}

int tide_reseal(const tide_config *cfg)
{
    if (!cfg->has_enc_key) {
        fprintf(stderr, "tide reseal: no encryption key configured (crypto.key or "
                        "TIDE_ENCRYPTION_KEY)\n");
        return 2;
    }
    PGconn *conn = PQconnectdb(cfg->upstreams[TIDE_UP_DIRECT].dsn);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "tide reseal: cannot connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return 2;
    }
    long long resealed = 0, unreadable = 0, changed = 0;
    int status = 0, more = 1;
    char after[64] = "00000000-0000-0000-0000-000000000000";
    /* in batches by id, one transaction each, so a large table never holds one long lock */
    while (more && status == 0) {
        if (reseal_exec(conn, "BEGIN") != 0 ||
            reseal_exec(conn, "SET LOCAL ROLE service_role") != 0) {
            status = 2;
            break;
        }
        const char *params[] = { after };
        PGresult *rows =
            PQexecParams(conn,
                         "SELECT id::text, user_id::text, service_name, key_name, encrypted_key"
                         " FROM public.api_keys WHERE encrypted_key LIKE 'v1:%' AND id > $1::uuid"
                         " ORDER BY id LIMIT " RESEAL_BATCH " FOR UPDATE",
                         1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(rows) != PGRES_TUPLES_OK) {
            fprintf(stderr, "tide reseal: %s", PQresultErrorMessage(rows));
            PQclear(rows);
            status = 2;
            break;
        }
        int n = PQntuples(rows);
        more = n == atoi(RESEAL_BATCH);
        for (int i = 0; i < n && status == 0; i++) {
            int rc = reseal_row(conn, cfg->enc_key, rows, i);
            if (rc == 1) resealed++;
            else if (rc == 0) changed++;
            else if (rc == -1) {
                unreadable++;
                fprintf(stderr,
                        "tide reseal: key %s does not open with the configured key; "
                        "left as it is\n",
                        PQgetvalue(rows, i, 0));
            } else status = 2;
        }
        if (n > 0) snprintf(after, sizeof after, "%s", PQgetvalue(rows, n - 1, 0));
        PQclear(rows);
        if (status == 0 && reseal_exec(conn, "COMMIT") != 0) status = 2;
    }
    if (status != 0) {
        PQclear(PQexec(conn, "ROLLBACK"));
        fprintf(stderr, "tide reseal: stopped; %lld keys resealed before the error\n", resealed);
    } else {
        printf("tide reseal: %lld resealed, %lld could not be opened, %lld changed meanwhile\n",
               resealed, unreadable, changed);
        if (unreadable == 0 && changed == 0)
            printf("tide reseal: no v1 keys left; the table owner may now run: ALTER TABLE "
                   "public.api_keys VALIDATE CONSTRAINT api_keys_encrypted_key_not_v1;\n");
        else status = 1;
    }
    PQfinish(conn);
    return status;
}
