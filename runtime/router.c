/* router.c - the bundle's routes as a trie of path segments (see router.h). */
#include "router.h"

#include <stdlib.h>
#include <string.h>

/* Sorted, so that an Allow value lists them in order. */
static const char *const methods[] = { "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT" };
#define NMETHODS 7

typedef struct route {
    int id;
    int nparams;
    int pos[TIDE_ROUTER_MAX_PARAMS]; /* the segment each param is */
    char *names[TIDE_ROUTER_MAX_PARAMS];
} route;

typedef struct node {
    char *seg; /* a static child's segment */
    size_t seglen;
    struct node **kids; /* static children */
    int nkids;
    struct node *param;  /* the :param child */
    int route[NMETHODS]; /* index into routes + 1, or 0 */
} node;

struct tide_router {
    node *root;
    route *routes;
    int nroutes, cap;
};

static int method_index(const char *m)
{
    for (int i = 0; i < NMETHODS; i++)
        if (strcmp(m, methods[i]) == 0) return i;
    return -1;
}

static void node_free(node *n)
{
    if (!n) return;
    for (int i = 0; i < n->nkids; i++) node_free(n->kids[i]);
    node_free(n->param);
    free(n->kids);
    free(n->seg);
    free(n);
}

tide_router *tide_router_new(void)
{
    tide_router *r = calloc(1, sizeof *r);
    if (r && !(r->root = calloc(1, sizeof *r->root))) {
        free(r);
        return NULL;
    }
    return r;
}

void tide_router_free(tide_router *r)
{
    if (!r) return;
    node_free(r->root);
    for (int i = 0; i < r->nroutes; i++)
        for (int k = 0; k < r->routes[i].nparams; k++) free(r->routes[i].names[k]);
    free(r->routes);
    free(r);
}

static node *static_child(const node *n, const char *s, size_t len)
{
    for (int i = 0; i < n->nkids; i++)
        if (n->kids[i]->seglen == len && memcmp(n->kids[i]->seg, s, len) == 0) return n->kids[i];
    return NULL;
}

static int param_name_ok(const char *s, size_t len)
{
    if (len == 0 || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < len; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

int tide_router_add(tide_router *r, const char *method, const char *pattern, int id)
{
    int mi = method_index(method);
    if (mi < 0 || id < 0 || pattern[0] != '/') return TIDE_EINVAL;
    route rt = { .id = id };
    node *n = r->root;
    int err = TIDE_EINVAL;
    if (strcmp(pattern, "/") != 0) {
        const char *p = pattern + 1;
        for (int i = 0;; i++) {
            const char *e = strchr(p, '/');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (len == 0 || i == TIDE_ROUTER_MAX_SEGS) goto fail;
            if (p[0] == ':') {
                if (!param_name_ok(p + 1, len - 1) || rt.nparams == TIDE_ROUTER_MAX_PARAMS)
                    goto fail;
                for (int k = 0; k < rt.nparams; k++)
                    if (strlen(rt.names[k]) == len - 1 && memcmp(rt.names[k], p + 1, len - 1) == 0)
                        goto fail;
                err = TIDE_ENOMEM;
                if (!(rt.names[rt.nparams] = strndup(p + 1, len - 1))) goto fail;
                rt.pos[rt.nparams++] = i;
                if (!n->param && !(n->param = calloc(1, sizeof *n->param))) goto fail;
                n = n->param;
            } else {
                node *c = static_child(n, p, len);
                if (!c) {
                    err = TIDE_ENOMEM;
                    node **kids = realloc(n->kids, (size_t)(n->nkids + 1) * sizeof *kids);
                    if (!kids) goto fail;
                    n->kids = kids;
                    if (!(c = calloc(1, sizeof *c)) || !(c->seg = strndup(p, len))) {
                        free(c);
                        goto fail;
                    }
                    c->seglen = len;
                    n->kids[n->nkids++] = c;
                }
                n = c;
            }
            err = TIDE_EINVAL;
            if (!e) break;
            p = e + 1;
        }
    }
    if (n->route[mi]) goto fail; /* a duplicate (the nodes made stay, empty) */
    if (r->nroutes == r->cap) {
        int cap = r->cap ? r->cap * 2 : 16;
        route *rs = realloc(r->routes, (size_t)cap * sizeof *rs);
        if (!rs) {
            err = TIDE_ENOMEM;
            goto fail;
        }
        r->routes = rs;
        r->cap = cap;
    }
    r->routes[r->nroutes++] = rt;
    n->route[mi] = r->nroutes;
    return 0;
fail:
    for (int k = 0; k < rt.nparams; k++) free(rt.names[k]);
    return err;
}

/* A request path's segments, pointers into it. */
typedef struct segs {
    const char *s[TIDE_ROUTER_MAX_SEGS];
    size_t len[TIDE_ROUTER_MAX_SEGS];
    int n;
} segs;

static int walk(const node *n, const segs *sg, int i, int mi)
{
    if (i == sg->n) return n->route[mi];
    const node *c = static_child(n, sg->s[i], sg->len[i]);
    if (c) {
        int r = walk(c, sg, i + 1, mi);
        if (r) return r;
    }
    if (n->param && sg->len[i] > 0) return walk(n->param, sg, i + 1, mi);
    return 0;
}

/* The methods routed for the path, as bits. */
static unsigned collect(const node *n, const segs *sg, int i)
{
    if (i == sg->n) {
        unsigned m = 0;
        for (int k = 0; k < NMETHODS; k++)
            if (n->route[k]) m |= 1u << k;
        return m;
    }
    unsigned m = 0;
    const node *c = static_child(n, sg->s[i], sg->len[i]);
    if (c) m |= collect(c, sg, i + 1);
    if (n->param && sg->len[i] > 0) m |= collect(n->param, sg, i + 1);
    return m;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

long tide_router_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            if (out) out[o] = s[i];
            o++;
            continue;
        }
        if (i + 2 >= n) return -1;
        int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
        if (h < 0 || l < 0 || (h | l) == 0) return -1;
        if (out) out[o] = (char)(h * 16 + l);
        o++;
        i += 2;
    }
    return (long)o;
}

int tide_router_match(const tide_router *r, const char *method, const char *path, size_t len,
                      tide_route_match *m)
{
    m->nparams = 0;
    m->id = -1;
    m->allow[0] = 0;
    m->status = TIDE_ROUTE_NOT_FOUND;
    if (!r || len == 0 || path[0] != '/') return m->status;
    segs sg = { .n = 0 };
    if (len > 1) {
        const char *s = path + 1, *end = path + len;
        for (;;) {
            if (sg.n == TIDE_ROUTER_MAX_SEGS) return m->status; /* longer than any pattern */
            const char *e = memchr(s, '/', (size_t)(end - s));
            sg.s[sg.n] = s;
            sg.len[sg.n++] = e ? (size_t)(e - s) : (size_t)(end - s);
            if (!e) break;
            s = e + 1;
        }
    }
    int mi = method_index(method);
    int ri = mi >= 0 ? walk(r->root, &sg, 0, mi) : 0;
    if (ri) {
        const route *rt = &r->routes[ri - 1];
        for (int k = 0; k < rt->nparams; k++) {
            const char *v = sg.s[rt->pos[k]];
            size_t vl = sg.len[rt->pos[k]];
            if (memchr(v, '%', vl) && tide_router_decode(v, vl, NULL) < 0) {
                m->nparams = 0;
                return m->status = TIDE_ROUTE_BAD_PATH;
            }
            m->params[k].name = rt->names[k];
            m->params[k].value = v;
            m->params[k].len = vl;
        }
        m->nparams = rt->nparams;
        m->id = rt->id;
        return m->status = TIDE_ROUTE_FOUND;
    }
    unsigned bits = collect(r->root, &sg, 0);
    if (!bits) return m->status;
    size_t n = 0;
    for (int k = 0; k < NMETHODS; k++)
        if (bits & (1u << k)) {
            size_t ml = strlen(methods[k]);
            if (n) {
                memcpy(m->allow + n, ", ", 2);
                n += 2;
            }
            memcpy(m->allow + n, methods[k], ml); /* all seven fit: 50 bytes */
            n += ml;
        }
    m->allow[n] = 0;
    return m->status = TIDE_ROUTE_NOT_ALLOWED;
}
