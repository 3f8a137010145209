/* auth.c - admission of public requests (see auth.h). */
#include "auth.h"
#include "jwt.h"
#include "jwtcache.h"
#include "log.h"
#include "luavm.h"
#include "metrics.h"
#include "pipeline.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* 401 for a refused token. The codes and messages are part of the API (clients match on
 * them): keep them stable. */
/* A request refused at admission: its access-log line and metrics (route "(auth)"). */
static void refused(tide_http_req *req)
{
    tide_request_record(req, req->id, TIDE_ROLE_ANON, "", "(auth)", 0, 0, NULL, 401);
}

static void jwt_failure(tide_http_req *req, int rc)
{
    const char *code = "TIDE_JWT_INVALID", *msg = "invalid token";
    switch (rc) {
    case TIDE_EEXPIRED:
        code = "TIDE_JWT_EXPIRED";
        msg = "token has expired";
        break;
    case TIDE_ENOTYET:
        code = "TIDE_JWT_NOT_YET_VALID";
        msg = "token is not valid yet";
        break;
    case TIDE_EALG:
        code = "TIDE_JWT_ALGORITHM";
        msg = "token algorithm not allowed (HS256 only)";
        break;
    case TIDE_EROLE:
        code = "TIDE_JWT_ROLE";
        msg = "token role not allowed";
        break;
    case TIDE_EAUTH: msg = "token signature does not verify"; break;
    case TIDE_ENOEXP: msg = "token has no exp claim"; break;
    case TIDE_EAUDIENCE:
        code = "TIDE_JWT_AUDIENCE";
        msg = "token audience (aud) not accepted";
        break;
    case TIDE_EISSUER:
        code = "TIDE_JWT_ISSUER";
        msg = "token issuer (iss) not accepted";
        break;
    default: break;
    }
    refused(req);
    tide_http_respond_error(req, 401, code, msg,
                            "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n");
}

void tide_auth_admit(tide_app *app, tide_http_req *req)
{
    size_t alen = 0;
    const char *auth = tide_http_header_get(req, "authorization", &alen);
    if (!auth || alen == 0) {
        tide_pipeline_admit(app, req, NULL, NULL, TIDE_ROLE_ANON);
        return;
    }
    if (alen < 7 || strncasecmp(auth, "Bearer ", 7) != 0) {
        refused(req);
        tide_http_respond_error(req, 401, "TIDE_JWT_INVALID",
                                "Authorization must be a Bearer token",
                                "WWW-Authenticate: Bearer\r\n");
        return;
    }
    const char *tok = auth + 7;
    size_t tlen = alen - 7;
    while (tlen && *tok == ' ') {
        tok++;
        tlen--;
    }
    while (tlen && tok[tlen - 1] == ' ') tlen--;
    const tide_config *c = &app->cfg;
    const tide_jwt_policy policy = { c->jwt_leeway, c->jwt_require_exp, c->jwt_audience,
                                     c->jwt_issuer };
    time_t now = (time_t)ev_now(app->loop);
    tide_role role;
    const char *cached, *sub;
    if (tide_jwt_cache_get(app->jwt_cache, tok, tlen, now, &policy, &role, &cached, &sub)) {
        tide_pipeline_admit(app, req, cached, sub, role);
        return;
    }
    tide_jwt_claims claims;
    int rc =
        tide_jwt_verify(c->jwt_secret, strlen(c->jwt_secret), tok, tlen, now, &policy, &claims);
    if (rc != 0) {
        jwt_failure(req, rc);
        return;
    }
    /* cache first: the token lives in req, which dispatch may answer and free at once */
    const char *stored = tide_jwt_cache_put(app->jwt_cache, tok, tlen, &claims);
    tide_pipeline_admit(app, req, stored ? stored : claims.claims_json, claims.sub, claims.role);
    free(claims.claims_json);
}
