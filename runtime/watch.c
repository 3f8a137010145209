/* watch.c - directory watching for `tide serve --watch` (see watch.h): one inotify descriptor
 * (non-blocking, close-on-exec) read by an ev_io, a watch per directory (subdirectories
 * included: a script may require scripts/lib/x.lua), and an ev_timer restarted by every change
 * that calls back once the changes stop for `debounce` seconds.
 *
 * Why these events: editors save in different ways. Writing in place gives IN_MODIFY and
 * IN_CLOSE_WRITE; writing a temporary file and renaming it over the old one gives IN_MOVED_TO
 * (the temporary's own events are filtered out by its name); "backup then write" gives
 * IN_MOVED_FROM, IN_CREATE and IN_CLOSE_WRITE. IN_MODIFY keeps the timer from firing while a
 * slow writer is still in the middle of a file. */
#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/inotify.h>

#define MAX_DIRS  256 /* directories watched at most (more are not watched) */
#define MAX_DEPTH 8   /* levels below a watched directory */
#define MAX_SEEN  64  /* distinct paths counted in a burst (more count as this many) */
#define MASK                                                                            \
    (IN_CLOSE_WRITE | IN_MODIFY | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | \
     IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

typedef struct dir_watch {
    int wd;
    char *path;
} dir_watch;

struct tide_watch {
    struct ev_loop *loop;
    ev_io io;
    ev_timer settle;
    int fd;
    dir_watch dirs[MAX_DIRS];
    int ndirs;
    tide_watch_cb cb;
    void *arg;
    int files;                         /* distinct paths changed in the current burst */
    unsigned long long seen[MAX_SEEN]; /* their hashes (0: a free slot) */
    char first[512];                   /* the burst's first change */
};

static dir_watch *find_dir(tide_watch *w, int wd)
{
    for (int i = 0; i < w->ndirs; i++)
        if (w->dirs[i].wd == wd) return &w->dirs[i];
    return NULL;
}

/* Watches path and the directories below it (depth levels more). Returns 0, or -1 with errno
 * set when path itself cannot be watched; a subdirectory that cannot be is skipped. */
static int add_tree(tide_watch *w, const char *path, int depth)
{
    if (w->ndirs == MAX_DIRS) {
        errno = ENOSPC;
        return -1;
    }
    int wd = inotify_add_watch(w->fd, path, MASK);
    if (wd < 0) return -1;
    char *copy = strdup(path);
    if (!copy) {
        errno = ENOMEM;
        return -1;
    }
    dir_watch *d = find_dir(w, wd); /* the same directory again (renamed): a new path */
    if (d) free(d->path);
    else d = &w->dirs[w->ndirs++];
    d->wd = wd;
    d->path = copy;
    if (depth == 0) return 0;
    DIR *dir = opendir(path);
    if (!dir) return 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char sub[1024];
        if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub) continue;
        int is_dir = e->d_type == DT_DIR;
        struct stat st;
        /* symbolic links are not followed below the top: no loops */
        if (e->d_type == DT_UNKNOWN) is_dir = lstat(sub, &st) == 0 && S_ISDIR(st.st_mode);
        if (is_dir) (void)add_tree(w, sub, depth - 1);
    }
    closedir(dir);
    return 0;
}

/* Scripts and policies are *.lua; dot files are editors' (.trips.lua.swp, .#trips.lua). */
static int relevant(const char *name)
{
    size_t len = strlen(name);
    return name[0] != '.' && len > 4 && strcmp(name + len - 4, ".lua") == 0;
}

/* FNV-1a of dir/name, never 0 (0 marks a free slot in seen[]). */
static unsigned long long path_hash(const char *dir, const char *name)
{
    unsigned long long h = 14695981039346656037ULL;
    for (const char *p = dir; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ '/') * 1099511628211ULL;
    for (const char *p = name ? name : ""; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h ? h : 1;
}

/* One change to dir/name (name NULL: to dir itself): counts the path once per burst and
 * (re)starts the debounce timer. */
static void note(tide_watch *w, const char *dir, const char *name)
{
    if (w->files == 0) {
        if (name && *name) snprintf(w->first, sizeof w->first, "%s/%s", dir, name);
        else snprintf(w->first, sizeof w->first, "%s", dir);
    }
    unsigned long long h = path_hash(dir, name);
    for (int i = 0; i < MAX_SEEN; i++) {
        if (w->seen[i] == h) break;
        if (w->seen[i] == 0) {
            w->seen[i] = h;
            w->files++;
            break;
        }
    }
    if (w->files == 0) w->files = 1;
    ev_timer_again(w->loop, &w->settle);
}

static void handle(tide_watch *w, const struct inotify_event *ev)
{
    if (ev->mask & IN_Q_OVERFLOW) { /* events were lost: assume the worst */
        note(w, "(inotify queue overflow)", NULL);
        return;
    }
    dir_watch *d = find_dir(w, ev->wd);
    if (!d) return;
    if (ev->mask & IN_IGNORED) { /* the directory is gone, or was unmounted */
        free(d->path);
        *d = w->dirs[--w->ndirs];
        return;
    }
    if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
        note(w, d->path, NULL);
        return;
    }
    const char *name = ev->len ? ev->name : "";
    if (ev->mask & IN_ISDIR) {
        if (name[0] == '.') return;
        if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
            char sub[1024];
            if (snprintf(sub, sizeof sub, "%s/%s", d->path, name) < (int)sizeof sub)
                (void)add_tree(w, sub, MAX_DEPTH);
        }
        note(w, d->path, name);
    } else if (relevant(name)) {
        note(w, d->path, name);
    }
}

static void on_readable(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    tide_watch *w = io->data;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof buf);
        if (n <= 0) return; /* EAGAIN: all read */
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            handle(w, ev);
            p += sizeof *ev + ev->len;
        }
    }
}

static void on_settled(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    tide_watch *w = t->data;
    ev_timer_stop(loop, t);
    int files = w->files;
    char first[sizeof w->first];
    memcpy(first, w->first, sizeof first);
    w->files = 0;
    memset(w->seen, 0, sizeof w->seen);
    w->cb(w, first, files, w->arg);
}

int tide_watch_start(struct ev_loop *loop, const char *const *dirs, int ndirs, double debounce,
                     tide_watch_cb cb, void *arg, tide_watch **out, char *err, size_t errlen)
{
    tide_watch *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return TIDE_ENOMEM;
    }
    w->loop = loop;
    w->cb = cb;
    w->arg = arg;
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0) {
        snprintf(err, errlen, "inotify: %s", strerror(errno));
        free(w);
        return TIDE_EIO;
    }
    for (int i = 0; i < ndirs; i++) {
        if (!dirs[i]) continue;
        if (add_tree(w, dirs[i], MAX_DEPTH) != 0) {
            snprintf(err, errlen, "cannot watch %s: %s%s", dirs[i], strerror(errno),
                     errno == ENOSPC ? " (too many watches: fs.inotify.max_user_watches)" : "");
            tide_watch_stop(w);
            return TIDE_EIO;
        }
    }
    ev_io_init(&w->io, on_readable, w->fd, EV_READ);
    w->io.data = w;
    ev_io_start(loop, &w->io);
    ev_timer_init(&w->settle, on_settled, 0., debounce > 0 ? debounce : 0.001);
    w->settle.data = w;
    *out = w;
    return 0;
}

void tide_watch_stop(tide_watch *w)
{
    if (!w) return;
    ev_io_stop(w->loop, &w->io);
    ev_timer_stop(w->loop, &w->settle);
    close(w->fd); /* drops every watch */
    for (int i = 0; i < w->ndirs; i++) free(w->dirs[i].path);
    free(w);
}

int tide_watch_count(const tide_watch *w) { return w ? w->ndirs : 0; }

#else /* !__linux__ */

int tide_watch_start(struct ev_loop *loop, const char *const *dirs, int ndirs, double debounce,
                     tide_watch_cb cb, void *arg, tide_watch **out, char *err, size_t errlen)
{
    (void)loop;
    (void)dirs;
    (void)ndirs;
    (void)debounce;
    (void)cb;
    (void)arg;
    (void)out;
    snprintf(err, errlen, "watching files needs inotify (Linux)");
    return TIDE_EIO;
}

void tide_watch_stop(tide_watch *w) { (void)w; }

int tide_watch_count(const tide_watch *w)
{
    (void)w;
    return 0;
}

#endif
