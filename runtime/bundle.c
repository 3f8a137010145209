/* bundle.c - a script bundle in memory, its searcher, and its snapshot in a memfd (bundle.h). */
#include "bundle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <lauxlib.h>
#include <lua.h>

#define MAX_REL 1024 /* a file's path below its directory, at most */

/* ---- reading the directories ----------------------------------------------------------- */

typedef struct reader {
    tide_bundle *b;
    int cap;
    int subdirs;
    char *err;
    size_t errlen;
} reader;

static int ends_with_lua(const char *name, size_t len)
{
    return len > 4 && strcmp(name + len - 4, ".lua") == 0;
}

/* Reads path (rel below dir d) into a new file entry. */
static int add_file(reader *r, int d, const char *path, const char *rel)
{
    tide_bundle *b = r->b;
    if (b->nfiles == TIDE_BUNDLE_MAX_FILES) {
        snprintf(r->err, r->errlen, "the bundle has more than %d .lua files (%s, %s, %s)",
                 TIDE_BUNDLE_MAX_FILES, b->dirs[0], b->dirs[1], b->dirs[2]);
        return TIDE_ETOOBIG;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(r->err, r->errlen, "cannot read %s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return TIDE_EIO;
    }
    if (st.st_size < 0 || (size_t)st.st_size > TIDE_BUNDLE_MAX_BYTES - b->bytes) {
        close(fd);
        snprintf(r->err, r->errlen, "the bundle's .lua files hold more than %u bytes (at %s)",
                 TIDE_BUNDLE_MAX_BYTES, path);
        return TIDE_ETOOBIG;
    }
    if (b->nfiles == r->cap) {
        int cap = r->cap ? r->cap * 2 : 64;
        tide_bundle_file *f = realloc(b->files, (size_t)cap * sizeof *f);
        if (!f) {
            close(fd);
            snprintf(r->err, r->errlen, "out of memory");
            return TIDE_ENOMEM;
        }
        b->files = f;
        r->cap = cap;
    }
    size_t want = (size_t)st.st_size, got = 0;
    char *text = malloc(want + 1);
    char *relcopy = strdup(rel);
    if (!text || !relcopy) {
        free(text);
        free(relcopy);
        close(fd);
        snprintf(r->err, r->errlen, "out of memory");
        return TIDE_ENOMEM;
    }
    while (got < want) { /* a file that shrinks meanwhile: what was there */
        ssize_t n = read(fd, text + got, want - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(r->err, r->errlen, "cannot read %s: %s", path, strerror(errno));
            free(text);
            free(relcopy);
            close(fd);
            return TIDE_EIO;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    close(fd);
    text[got] = '\0';
    b->files[b->nfiles++] = (tide_bundle_file){ d, relcopy, text, got };
    b->bytes += got;
    return 0;
}

/* Adds the .lua files of path (rel below directory d; "" at its top) and below. */
static int add_dir(reader *r, int d, const char *path, const char *rel, int depth)
{
    DIR *dir = opendir(path);
    if (!dir) {
        snprintf(r->err, r->errlen, "cannot open directory %s: %s", path, strerror(errno));
        return TIDE_EIO;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.') continue; /* ., .., editors' files */
        size_t len = strlen(e->d_name);
        char sub[MAX_REL * 2], subrel[MAX_REL];
        int n1 = snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        int n2 = snprintf(subrel, sizeof subrel, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        if (n1 < 0 || (size_t)n1 >= sizeof sub || n2 < 0 || (size_t)n2 >= sizeof subrel)
            continue; /* no module name is that long */
        struct stat st;
        if (stat(sub, &st) != 0) continue; /* a dangling link, gone meanwhile */
        if (S_ISDIR(st.st_mode)) {
            if (depth >= TIDE_BUNDLE_MAX_DEPTH) continue;
            if (++r->subdirs > TIDE_BUNDLE_MAX_SUBDIRS) {
                snprintf(r->err, r->errlen, "more than %d directories below %s",
                         TIDE_BUNDLE_MAX_SUBDIRS, r->b->dirs[d]);
                rc = TIDE_ETOOBIG;
            } else {
                rc = add_dir(r, d, sub, subrel, depth + 1);
            }
        } else if (S_ISREG(st.st_mode) && ends_with_lua(e->d_name, len)) {
            rc = add_file(r, d, sub, subrel);
        }
    }
    closedir(dir);
    return rc;
}

static int cmp_file(const void *a, const void *b)
{
    const tide_bundle_file *x = a, *y = b;
    if (x->dir != y->dir) return x->dir < y->dir ? -1 : 1;
    return strcmp(x->rel, y->rel);
}

void tide_bundle_free(tide_bundle *b)
{
    if (!b) return;
    for (int i = 0; i < b->nfiles; i++) {
        free(b->files[i].rel);
        free(b->files[i].text);
    }
    free(b->files);
    for (int d = 0; d < TIDE_BUNDLE_DIRS; d++) free(b->dirs[d]);
    memset(b, 0, sizeof *b);
}

int tide_bundle_read(const char *bindings_dir, const char *scripts_dir, const char *policies_dir,
                     tide_bundle *b, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    const char *dirs[TIDE_BUNDLE_DIRS] = { bindings_dir, scripts_dir, policies_dir };
    for (int d = 0; d < TIDE_BUNDLE_DIRS; d++) {
        if (!(b->dirs[d] = strdup(dirs[d] ? dirs[d] : "."))) {
            tide_bundle_free(b);
            snprintf(err, errlen, "out of memory");
            return TIDE_ENOMEM;
        }
    }
    reader r = { b, 0, 0, err, errlen };
    for (int d = 0; d < TIDE_BUNDLE_DIRS; d++) {
        int rc = add_dir(&r, d, b->dirs[d], "", 0);
        if (rc != 0) {
            tide_bundle_free(b);
            return rc;
        }
    }
    if (b->nfiles > 1) qsort(b->files, (size_t)b->nfiles, sizeof *b->files, cmp_file);
    return 0;
}

/* ---- the searcher ---------------------------------------------------------------------- */

/* package.loaders entry: upvalues 1..3 the tables rel -> text of each directory, 4..6 the
 * directories' names. Returns the module's chunk, or the lines saying where it was not. */
static int searcher(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    char rel[MAX_REL];
    size_t n = strlen(name);
    if (n + 5 > sizeof rel) {
        lua_pushfstring(L, "\n\tno module '%s' in the bundle (name too long)", name);
        return 1;
    }
    for (size_t i = 0; i < n; i++) rel[i] = name[i] == '.' ? '/' : name[i];
    memcpy(rel + n, ".lua", 5);
    for (int d = 0; d < TIDE_BUNDLE_DIRS; d++) {
        lua_getfield(L, lua_upvalueindex(1 + d), rel);
        if (lua_isstring(L, -1)) {
            size_t len;
            const char *text = lua_tolstring(L, -1, &len);
            const char *dir = lua_tostring(L, lua_upvalueindex(4 + d));
            const char *chunk = lua_pushfstring(L, "@%s/%s", dir, rel);
            if (luaL_loadbuffer(L, text, len, chunk) != 0)
                return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name,
                                  chunk + 1, lua_tostring(L, -1));
            return 1;
        }
        lua_pop(L, 1);
    }
    luaL_Buffer buf;
    luaL_buffinit(L, &buf);
    for (int d = 0; d < TIDE_BUNDLE_DIRS; d++) {
        lua_pushfstring(L, "\n\tno file '%s/%s'", lua_tostring(L, lua_upvalueindex(4 + d)), rel);
        luaL_addvalue(&buf);
    }
    luaL_pushresult(&buf);
    return 1;
}

/* Takes "dir/?.lua" out of package.path for each of b's directories (package on top). */
static void strip_path(lua_State *L, const tide_bundle *b)
{
    lua_getfield(L, -1, "path");
    const char *path = lua_tostring(L, -1);
    if (!path) {
        lua_pop(L, 1);
        return;
    }
    luaL_Buffer buf;
    luaL_buffinit(L, &buf);
    int first = 1;
    const char *p = path;
    while (*p) {
        const char *semi = strchr(p, ';');
        size_t len = semi ? (size_t)(semi - p) : strlen(p);
        int ours = 0;
        for (int d = 0; d < TIDE_BUNDLE_DIRS && !ours; d++) {
            size_t dl = strlen(b->dirs[d]);
            ours =
                len == dl + 6 && memcmp(p, b->dirs[d], dl) == 0 && memcmp(p + dl, "/?.lua", 6) == 0;
        }
        if (!ours && len > 0) {
            if (!first) luaL_addchar(&buf, ';');
            luaL_addlstring(&buf, p, len);
            first = 0;
        }
        p += len + (semi ? 1 : 0);
    }
    luaL_pushresult(&buf);
    lua_setfield(L, -3, "path");
    lua_pop(L, 1);
}

int tide_bundle_install(lua_State *L, const tide_bundle *b)
{
    int top = lua_gettop(L);
    lua_getglobal(L, "package");
    if (!lua_istable(L, -1)) {
        lua_settop(L, top);
        lua_pushstring(L, "no package library in this Lua state");
        return -1;
    }
    lua_getfield(L, -1, "loaders");
    if (!lua_istable(L, -1)) {
        lua_settop(L, top);
        lua_pushstring(L, "no package.loaders in this Lua state");
        return -1;
    }
    int loaders = lua_gettop(L);
    for (int d = 0; d < TIDE_BUNDLE_DIRS; d++) {
        lua_newtable(L);
        for (int i = 0; i < b->nfiles; i++) {
            if (b->files[i].dir != d) continue;
            lua_pushlstring(L, b->files[i].text, b->files[i].len);
            lua_setfield(L, -2, b->files[i].rel);
        }
    }
    for (int d = 0; d < TIDE_BUNDLE_DIRS; d++) lua_pushstring(L, b->dirs[d]);
    lua_pushcclosure(L, searcher, 6);
    /* package.loaders[2..] move up one: the bundle's searcher comes right after preload */
    int n = (int)lua_objlen(L, loaders);
    for (int i = n; i >= 2; i--) {
        lua_rawgeti(L, loaders, i);
        lua_rawseti(L, loaders, i + 1);
    }
    lua_rawseti(L, loaders, 2);
    lua_pop(L, 1); /* loaders */
    strip_path(L, b);
    lua_settop(L, top);
    return 0;
}

typedef struct name_ref {
    const char *s;
    size_t len;
} name_ref;

/* As strcmp on the names (not on the file names: "a-b.lua" sorts before "a.lua", "a" before
 * "a-b"). */
static int cmp_name(const void *a, const void *b)
{
    const name_ref *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    if (c != 0) return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

int tide_bundle_push_route_names(lua_State *L, const tide_bundle *b)
{
    name_ref names[TIDE_BUNDLE_MAX_ROUTE_MODULES];
    int n = 0;
    for (int i = 0; i < b->nfiles; i++) {
        const tide_bundle_file *f = &b->files[i];
        size_t len = strlen(f->rel);
        if (f->dir != 1 || strchr(f->rel, '/') || f->rel[0] == '_' || f->rel[0] == '.' ||
            !ends_with_lua(f->rel, len))
            continue;
        if (n == TIDE_BUNDLE_MAX_ROUTE_MODULES) {
            lua_pushfstring(L, "more than %d route modules in %s", TIDE_BUNDLE_MAX_ROUTE_MODULES,
                            b->dirs[1]);
            return -1;
        }
        names[n++] = (name_ref){ f->rel, len - 4 };
    }
    if (n > 1) qsort(names, (size_t)n, sizeof *names, cmp_name);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushlstring(L, names[i].s, names[i].len);
        lua_rawseti(L, -2, i + 1);
    }
    return 0;
}

/* ---- serialized form ------------------------------------------------------------------- */

static const char MAGIC[8] = { 'T', 'I', 'D', 'E', 'B', 'N', 'D', 'L' };
#define VERSION 1
#define HEADER  64

typedef struct header {
    char magic[8];
    uint32_t version, nfiles;
    uint64_t generation, payload, checksum;
    uint32_t stored_by, reserved;
    double stored_at;
    char pad[HEADER - 56];
} header;

_Static_assert(sizeof(header) == HEADER, "the snapshot header is 64 bytes");

/* FNV-1a over the header (its checksum field as 0) and the payload: every byte counts. */
static uint64_t checksum(const char *buf, size_t len)
{
    header h;
    memcpy(&h, buf, sizeof h);
    h.checksum = 0;
    const unsigned char *parts[2] = { (const unsigned char *)&h,
                                      (const unsigned char *)buf + HEADER };
    size_t lens[2] = { sizeof h, len - HEADER };
    uint64_t x = 1469598103934665603ULL;
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < lens[k]; i++) x = (x ^ parts[k][i]) * 1099511628211ULL;
    return x;
}

typedef struct wbuf {
    char *p;
    size_t n, cap;
} wbuf;

static void put(wbuf *w, const void *src, size_t len)
{
    memcpy(w->p + w->n, src, len);
    w->n += len;
}

static void put_u32(wbuf *w, uint32_t v) { put(w, &v, sizeof v); }

int tide_bundle_serialize(const tide_bundle *b, char **out, size_t *len)
{
    size_t size = HEADER;
    for (int d = 0; d < TIDE_BUNDLE_DIRS; d++) size += 4 + strlen(b->dirs[d]);
    for (int i = 0; i < b->nfiles; i++)
        size += 1 + 4 + 4 + strlen(b->files[i].rel) + b->files[i].len;
    wbuf w = { malloc(size), HEADER, size };
    if (!w.p) return TIDE_ENOMEM;
    for (int d = 0; d < TIDE_BUNDLE_DIRS; d++) {
        put_u32(&w, (uint32_t)strlen(b->dirs[d]));
        put(&w, b->dirs[d], strlen(b->dirs[d]));
    }
    for (int i = 0; i < b->nfiles; i++) {
        const tide_bundle_file *f = &b->files[i];
        unsigned char d = (unsigned char)f->dir;
        put(&w, &d, 1);
        put_u32(&w, (uint32_t)strlen(f->rel));
        put_u32(&w, (uint32_t)f->len);
        put(&w, f->rel, strlen(f->rel));
        put(&w, f->text, f->len);
    }
    header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, MAGIC, sizeof MAGIC);
    h.version = VERSION;
    h.nfiles = (uint32_t)b->nfiles;
    h.generation = b->generation;
    h.payload = size - HEADER;
    h.stored_by = (uint32_t)b->stored_by;
    h.stored_at = b->stored_at;
    memcpy(w.p, &h, sizeof h);
    h.checksum = checksum(w.p, size);
    memcpy(w.p, &h, sizeof h);
    *out = w.p;
    *len = size;
    return 0;
}

typedef struct rbuf {
    const char *p;
    size_t n, off;
} rbuf;

static int take(rbuf *r, void *dst, size_t len)
{
    if (len > r->n - r->off) return -1;
    memcpy(dst, r->p + r->off, len);
    r->off += len;
    return 0;
}

/* A string of len bytes at the read position, copied with a NUL. */
static char *take_str(rbuf *r, size_t len)
{
    if (len > r->n - r->off) return NULL;
    char *s = malloc(len + 1);
    if (!s) return NULL;
    memcpy(s, r->p + r->off, len);
    s[len] = '\0';
    r->off += len;
    return s;
}

int tide_bundle_parse(const char *buf, size_t len, tide_bundle *b, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    header h;
    if (len < HEADER) goto bad;
    memcpy(&h, buf, sizeof h);
    if (memcmp(h.magic, MAGIC, sizeof MAGIC) != 0 || h.version != VERSION ||
        h.payload != len - HEADER || h.nfiles > TIDE_BUNDLE_MAX_FILES ||
        h.checksum != checksum(buf, len))
        goto bad;
    rbuf r = { buf, len, HEADER };
    for (int d = 0; d < TIDE_BUNDLE_DIRS; d++) {
        uint32_t n;
        if (take(&r, &n, 4) != 0 || n > 4096) goto bad;
        if (!(b->dirs[d] = take_str(&r, n))) goto bad;
    }
    if (h.nfiles > 0 && !(b->files = calloc(h.nfiles, sizeof *b->files))) goto oom;
    for (uint32_t i = 0; i < h.nfiles; i++) {
        unsigned char d;
        uint32_t rl, tl;
        if (take(&r, &d, 1) != 0 || d >= TIDE_BUNDLE_DIRS || take(&r, &rl, 4) != 0 ||
            take(&r, &tl, 4) != 0 || rl == 0 || rl >= MAX_REL ||
            tl > TIDE_BUNDLE_MAX_BYTES - b->bytes)
            goto bad;
        tide_bundle_file *f = &b->files[b->nfiles];
        if (!(f->rel = take_str(&r, rl))) goto bad;
        if (!(f->text = take_str(&r, tl))) {
            free(f->rel);
            f->rel = NULL;
            goto bad;
        }
        f->dir = d;
        f->len = tl;
        b->nfiles++;
        b->bytes += tl;
    }
    if (r.off != len) goto bad;
    b->generation = h.generation;
    b->stored_by = (int)h.stored_by;
    b->stored_at = h.stored_at;
    return 0;
bad:
    tide_bundle_free(b);
    snprintf(err, errlen, "the bundle snapshot is not a whole bundle (%zu bytes)", len);
    return TIDE_EPARSE;
oom:
    tide_bundle_free(b);
    snprintf(err, errlen, "out of memory");
    return TIDE_ENOMEM;
}

/* ---- the snapshot ---------------------------------------------------------------------- */

int tide_bundle_snapshot_new(void) { return memfd_create("tide-bundle", MFD_CLOEXEC); }

int tide_bundle_snapshot_reopen(int fd)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return open(path, O_RDWR | O_CLOEXEC);
}

static int lock(int fd, int how)
{
    int rc;
    while ((rc = flock(fd, how)) != 0 && errno == EINTR) {}
    return rc;
}

static int pwrite_all(int fd, const char *p, size_t n, off_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

static int pread_all(int fd, char *p, size_t n, off_t off)
{
    while (n > 0) {
        ssize_t r = pread(fd, p, n, off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

int tide_bundle_store(int fd, tide_bundle *b, char *err, size_t errlen)
{
    if (lock(fd, LOCK_EX) != 0) {
        snprintf(err, errlen, "cannot lock the bundle snapshot: %s", strerror(errno));
        return TIDE_EIO;
    }
    header old;
    unsigned long long gen = 0;
    if (pread_all(fd, (char *)&old, sizeof old, 0) == 0 &&
        memcmp(old.magic, MAGIC, sizeof MAGIC) == 0)
        gen = old.generation;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long saved_gen = b->generation;
    int saved_by = b->stored_by;
    double saved_at = b->stored_at;
    b->generation = gen + 1;
    b->stored_by = (int)getpid();
    b->stored_at = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    char *buf = NULL;
    size_t len = 0;
    int rc = tide_bundle_serialize(b, &buf, &len);
    if (rc != 0) {
        snprintf(err, errlen, "out of memory");
    } else if (ftruncate(fd, 0) != 0 || ftruncate(fd, (off_t)len) != 0 ||
               pwrite_all(fd, buf + HEADER, len - HEADER, HEADER) != 0 ||
               pwrite_all(fd, buf, HEADER, 0) != 0) {
        snprintf(err, errlen, "cannot write the bundle snapshot (%zu bytes): %s", len,
                 strerror(errno));
        rc = TIDE_EIO;
        if (ftruncate(fd, 0) != 0) {} /* nothing half written stays */
    }
    lock(fd, LOCK_UN);
    free(buf);
    if (rc != 0) {
        b->generation = saved_gen;
        b->stored_by = saved_by;
        b->stored_at = saved_at;
    }
    return rc;
}

int tide_bundle_load(int fd, tide_bundle *b, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    if (lock(fd, LOCK_SH) != 0) {
        snprintf(err, errlen, "cannot lock the bundle snapshot: %s", strerror(errno));
        return TIDE_EIO;
    }
    struct stat st;
    int rc = 0;
    char *buf = NULL;
    size_t len = 0;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot read the bundle snapshot: %s", strerror(errno));
        rc = TIDE_EIO;
    } else if (st.st_size == 0) {
        snprintf(err, errlen, "no bundle was stored yet");
        rc = TIDE_EAGAIN;
    } else if ((size_t)st.st_size > (size_t)TIDE_BUNDLE_MAX_BYTES * 2 + (1u << 20)) {
        snprintf(err, errlen, "the bundle snapshot is too large (%lld bytes)",
                 (long long)st.st_size);
        rc = TIDE_EPARSE;
    } else if (!(buf = malloc((size_t)st.st_size))) {
        snprintf(err, errlen, "out of memory");
        rc = TIDE_ENOMEM;
    } else if (pread_all(fd, buf, (size_t)st.st_size, 0) != 0) {
        snprintf(err, errlen, "cannot read the bundle snapshot: %s", strerror(errno));
        rc = TIDE_EIO;
    } else {
        len = (size_t)st.st_size;
    }
    lock(fd, LOCK_UN);
    if (rc == 0) rc = tide_bundle_parse(buf, len, b, err, errlen);
    free(buf);
    return rc;
}
