/* resolve.c - a DSN's host resolved on a short thread (see resolve.h).
 *
 * The context the thread sees (dns_ctx) is shared with the loop under a mutex and freed by
 * whichever side lets go last: the thread when the resolver was freed while it ran, else
 * tide_resolve_free(). The result comes back to the loop with an ev_async. */
#include "resolve.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct dns_ctx {
    pthread_mutex_t mu;
    ev_async async;
    struct ev_loop *loop;
    char host[256];
    char addr[INET6_ADDRSTRLEN];
    char error[320];
    int running, owner_gone;
} dns_ctx;

struct tide_resolver {
    struct ev_loop *loop;
    dns_ctx *dns;
    /* the DSN split for PQconnectStartParams; the last keyword is hostaddr */
    const char **kw, **val;
    PQconninfoOption *opts;
    char addr[INET6_ADDRSTRLEN]; /* last resolved address ("" = none yet) */
    double addr_at;
    tide_resolve_cb done;
    void *arg;
};

static void dns_free_ctx(dns_ctx *d)
{
    pthread_mutex_destroy(&d->mu);
    free(d);
}

static void *dns_thread(void *arg)
{
    dns_ctx *d = arg;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char addr[INET6_ADDRSTRLEN] = "", error[320] = "";
    int rc = getaddrinfo(d->host, NULL, &hints, &res);
    if (rc != 0) {
        snprintf(error, sizeof error, "cannot resolve %.255s: %.40s", d->host, gai_strerror(rc));
    } else {
        /* IPv4 first: servers commonly listen on it alone */
        const struct addrinfo *pick = res;
        for (const struct addrinfo *a = res; a; a = a->ai_next)
            if (a->ai_family == AF_INET) {
                pick = a;
                break;
            }
        const void *sa = pick->ai_family == AF_INET
                             ? (const void *)&((struct sockaddr_in *)pick->ai_addr)->sin_addr
                             : (const void *)&((struct sockaddr_in6 *)pick->ai_addr)->sin6_addr;
        inet_ntop(pick->ai_family, sa, addr, sizeof addr);
        freeaddrinfo(res);
    }
    pthread_mutex_lock(&d->mu);
    memcpy(d->addr, addr, sizeof addr);
    memcpy(d->error, error, sizeof error);
    d->running = 0;
    int gone = d->owner_gone;
    if (!gone) ev_async_send(d->loop, &d->async);
    pthread_mutex_unlock(&d->mu);
    if (gone) dns_free_ctx(d);
    return NULL;
}

static void dns_done_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)revents;
    tide_resolver *r = w->data;
    dns_ctx *d = r->dns;
    char error[320];
    pthread_mutex_lock(&d->mu);
    if (d->addr[0]) {
        memcpy(r->addr, d->addr, sizeof r->addr);
        r->addr_at = ev_now(loop);
    }
    memcpy(error, d->error, sizeof error);
    pthread_mutex_unlock(&d->mu);
    const char *msg = NULL;
    if (!r->addr[0]) msg = error[0] ? error : "cannot resolve the upstream's host";
    r->done(r->arg, msg);
}

int tide_resolve_new(struct ev_loop *loop, const char *dsn, tide_resolve_cb done, void *arg,
                     tide_resolver **out)
{
    *out = NULL;
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &err);
    if (!opts) {
        PQfreemem(err);
        return TIDE_EINVAL;
    }
    const char *host = NULL, *hostaddr = NULL;
    int n = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val) continue;
        n++;
        if (strcmp(o->keyword, "host") == 0) host = o->val;
        if (strcmp(o->keyword, "hostaddr") == 0) hostaddr = o->val;
    }
    unsigned char buf[sizeof(struct in6_addr)];
    if (!host || hostaddr || host[0] == '/' || strchr(host, ',') || strlen(host) >= 256 ||
        inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1) {
        PQconninfoFree(opts);
        return 0; /* libpq will not need a resolver */
    }
    tide_resolver *r = calloc(1, sizeof *r);
    if (r) {
        r->kw = calloc((size_t)n + 2, sizeof *r->kw);
        r->val = calloc((size_t)n + 2, sizeof *r->val);
        r->dns = calloc(1, sizeof *r->dns);
    }
    if (!r || !r->kw || !r->val || !r->dns) {
        if (r) {
            free(r->kw);
            free(r->val);
            free(r->dns);
            free(r);
        }
        PQconninfoFree(opts);
        return TIDE_ENOMEM;
    }
    int i = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val) continue;
        r->kw[i] = o->keyword;
        r->val[i] = o->val;
        i++;
    }
    r->kw[i] = "hostaddr"; /* its value is filled in by tide_resolve_params */
    r->opts = opts;
    r->loop = loop;
    r->done = done;
    r->arg = arg;
    pthread_mutex_init(&r->dns->mu, NULL);
    r->dns->loop = loop;
    snprintf(r->dns->host, sizeof r->dns->host, "%s", host);
    ev_async_init(&r->dns->async, dns_done_cb);
    r->dns->async.data = r;
    ev_async_start(loop, &r->dns->async);
    ev_unref(loop); /* a resolver alone must not keep the loop */
    *out = r;
    return 0;
}

void tide_resolve_start(tide_resolver *r, double max_age)
{
    if (r->addr[0] && ev_now(r->loop) - r->addr_at <= max_age) return;
    dns_ctx *d = r->dns;
    pthread_mutex_lock(&d->mu);
    int busy = d->running;
    if (!busy) d->running = 1;
    pthread_mutex_unlock(&d->mu);
    if (busy) return;
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, dns_thread, d) != 0) {
        pthread_mutex_lock(&d->mu);
        d->running = 0;
        pthread_mutex_unlock(&d->mu);
    }
    pthread_attr_destroy(&attr);
}

const char *tide_resolve_addr(const tide_resolver *r) { return r->addr; }

int tide_resolve_pending(tide_resolver *r)
{
    if (r->addr[0]) return 0;
    pthread_mutex_lock(&r->dns->mu);
    int running = r->dns->running;
    pthread_mutex_unlock(&r->dns->mu);
    return running;
}

void tide_resolve_params(tide_resolver *r, const char *const **kw, const char *const **val)
{
    int i = 0;
    while (r->kw[i]) i++;
    r->val[i - 1] = r->addr; /* the hostaddr slot: the last keyword */
    *kw = r->kw;
    *val = r->val;
}

void tide_resolve_free(tide_resolver *r)
{
    if (!r) return;
    ev_ref(r->loop);
    ev_async_stop(r->loop, &r->dns->async);
    pthread_mutex_lock(&r->dns->mu);
    int running = r->dns->running;
    r->dns->owner_gone = 1;
    pthread_mutex_unlock(&r->dns->mu);
    if (!running) dns_free_ctx(r->dns); /* else the thread frees it */
    free(r->kw);
    free(r->val);
    PQconninfoFree(r->opts);
    free(r);
}
