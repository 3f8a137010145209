/* fuzz_router.c - libFuzzer target for the compiled router (runtime/router.c): any request
 * path against a route table of static and :param routes. Checks that a match is a route of
 * the table whose segment count equals the path's, that its params lie inside the path and
 * decode, and that a 405 names only methods the table routes. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../router.h"

#define REQUIRE(c)                               \
    do {                                         \
        if (!(c)) {                              \
            fprintf(stderr, "failed: %s\n", #c); \
            abort();                             \
        }                                        \
    } while (0)

static tide_router *router;

static const char *const routes[][2] = {
    { "GET", "/" },
    { "GET", "/v1/trips" },
    { "POST", "/v1/trips" },
    { "GET", "/v1/trips/search" },
    { "GET", "/v1/trips/:id" },
    { "PATCH", "/v1/trips/:id" },
    { "GET", "/v1/trips/:id/collaborators" },
    { "GET", "/v1/trips/search/x" },
    { "GET", "/v1/destinations/popular" },
    { "DELETE", "/v1/:a/:b/:c/:d" },
    { "GET", "/rest/v1/:table" },
    { "POST", "/rest/v1/rpc/:fn" },
};
#define NROUTES (int)(sizeof routes / sizeof routes[0])

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    REQUIRE((router = tide_router_new()) != NULL);
    for (int i = 0; i < NROUTES; i++)
        REQUIRE(tide_router_add(router, routes[i][0], routes[i][1], i) == 0);
    return 0;
}

static void check(const char *method, const uint8_t *data, size_t size)
{
    const char *path = (const char *)data;
    tide_route_match m;
    int st = tide_router_match(router, method, path, size, &m);
    REQUIRE(st == m.status);
    if (st == TIDE_ROUTE_FOUND) {
        REQUIRE(m.id >= 0 && m.id < NROUTES);
        REQUIRE(strcmp(routes[m.id][0], method) == 0);
        size_t slashes = 0, want = 0;
        for (size_t i = 0; i < size; i++) slashes += data[i] == '/';
        for (const char *p = routes[m.id][1]; *p; p++) want += *p == '/';
        REQUIRE(size > 0 && data[0] == '/');
        REQUIRE(slashes == want || (want == 1 && size == 1));
        for (int i = 0; i < m.nparams; i++) {
            REQUIRE(m.params[i].value >= path &&
                    m.params[i].value + m.params[i].len <= path + size);
            REQUIRE(m.params[i].len > 0);
            char out[4096];
            if (m.params[i].len <= sizeof out)
                REQUIRE(tide_router_decode(m.params[i].value, m.params[i].len, out) >= 0);
        }
    } else if (st == TIDE_ROUTE_NOT_ALLOWED) {
        REQUIRE(m.allow[0] != 0 && strstr(m.allow, method) == NULL);
    } else {
        REQUIRE(st == TIDE_ROUTE_NOT_FOUND || st == TIDE_ROUTE_BAD_PATH);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check("GET", data, size);
    check("DELETE", data, size);
    return 0;
}
