/* auth.h - admission of public requests: the bearer JWT in Authorization is verified (HS256
 * under the configured policy: exp, nbf, role, require_exp, audience, issuer), through the
 * cache of verified tokens, and the request goes to the script bundle with its role and
 * claims; no Authorization header is the anon role. Every refusal is a 401 with a stable
 * TIDE_JWT_* code and WWW-Authenticate. */
#ifndef TIDE_AUTH_H
#define TIDE_AUTH_H

#include "app.h"

/* Admits req (dispatching it to app->vm) or answers it 401. The request is always answered,
 * now or later. */
void tide_auth_admit(tide_app *app, tide_http_req *req);

#endif
