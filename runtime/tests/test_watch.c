/* test_watch.c - the --watch directory watcher on a real event loop and real files: a burst of
 * changes (in place, a temporary file renamed over, a deletion) calls back once, after the
 * debounce; editors' swap, lock and backup files and non-Lua files do not; subdirectories
 * present at start and created later are watched; a directory that cannot be watched is an
 * error naming it. */
#include "test.h"
#include "../watch.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* Generous, so a loaded machine cannot split what the test writes as one burst. */
#define DEBOUNCE 0.3
#define PATIENCE 3.0 /* seconds to wait for a callback that must come */

static char dir[64];
static int calls, last_changes, target;
static char last_first[512];

/* arg: the loop, stopped once `target` callbacks have come */
static void on_change(tide_watch *w, const char *first, int changes, void *arg)
{
    (void)w;
    calls++;
    last_changes = changes;
    snprintf(last_first, sizeof last_first, "%s", first);
    if (calls >= target) ev_break(arg, EVBREAK_ONE);
}

static void stop_loop(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)t;
    (void)revents;
    ev_break(loop, EVBREAK_ONE);
}

/* Runs the loop for about `seconds`, or until the callback count reaches `until`. */
static void run_until(struct ev_loop *loop, int until, double seconds)
{
    target = until;
    ev_timer t;
    ev_timer_init(&t, stop_loop, seconds, 0.);
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
}

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* dir/name, in one of two buffers used in turn (rename() takes two). */
static const char *in_dir(const char *name)
{
    static char paths[2][256];
    static int next;
    char *path = paths[next++ & 1];
    snprintf(path, 256, "%s/%s", dir, name);
    return path;
}

static void remove_tree(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* A fresh directory with sub/ in it, watched on a new loop. */
static tide_watch *start(struct ev_loop *loop)
{
    snprintf(dir, sizeof dir, "/tmp/tide-watch.XXXXXX");
    if (!mkdtemp(dir)) return NULL;
    if (mkdir(in_dir("sub"), 0755) != 0) return NULL;
    calls = last_changes = 0;
    last_first[0] = '\0';
    const char *dirs[] = { dir, NULL };
    tide_watch *w = NULL;
    char err[256];
    if (tide_watch_start(loop, dirs, 2, DEBOUNCE, on_change, loop, &w, err, sizeof err) != 0) {
        fprintf(stderr, "  tide_watch_start: %s\n", err);
        return NULL;
    }
    return w;
}

static void check_burst(struct ev_loop *loop, tide_watch *w)
{
    CHECK_EQ_INT(tide_watch_count(w), 2); /* dir and dir/sub */
    write_file("a.lua", "return {}\n");
    run_until(loop, 1, DEBOUNCE / 6); /* within the debounce */
    CHECK_EQ_INT(calls, 0);
    write_file("b.lua", "return {}\n");
    write_file(".b.lua.swp", "x");            /* vim's swap file: not a change */
    write_file("tmp.lua.new", "return {}\n"); /* a temporary, renamed over c.lua */
    CHECK_EQ_INT(rename(in_dir("tmp.lua.new"), in_dir("c.lua")), 0);
    CHECK(access(in_dir("c.lua"), R_OK) == 0);
    run_until(loop, 2, DEBOUNCE * 3);
    CHECK_EQ_INT(calls, 1); /* the whole burst: one reload */
    CHECK_STR(last_first, in_dir("a.lua"));
    CHECK_EQ_INT(last_changes, 3); /* a.lua, b.lua, c.lua */

    /* only swap, lock, backup and non-Lua files: nothing */
    write_file(".c.lua.swp", "x");
    write_file("4913", "");
    write_file("c.lua~", "x");
    write_file("#c.lua#", "x");
    write_file("notes.txt", "x");
    run_until(loop, 2, DEBOUNCE * 2);
    CHECK_EQ_INT(calls, 1);

    /* a file in a subdirectory that was there at start */
    write_file("sub/lib.lua", "return 1\n");
    run_until(loop, 2, PATIENCE);
    CHECK_EQ_INT(calls, 2);
    CHECK_STR(last_first, in_dir("sub/lib.lua"));
    CHECK_EQ_INT(last_changes, 1); /* written and closed: one file */

    /* a deletion */
    CHECK_EQ_INT(unlink(in_dir("b.lua")), 0);
    run_until(loop, 3, PATIENCE);
    CHECK_EQ_INT(calls, 3);
    CHECK_STR(last_first, in_dir("b.lua"));

    /* a directory created later is watched too */
    CHECK_EQ_INT(mkdir(in_dir("later"), 0755), 0);
    run_until(loop, 4, PATIENCE);
    CHECK_EQ_INT(calls, 4);
    CHECK_EQ_INT(tide_watch_count(w), 3);
    write_file("later/m.lua", "return 2\n");
    run_until(loop, 5, PATIENCE);
    CHECK_EQ_INT(calls, 5);
    CHECK_STR(last_first, in_dir("later/m.lua"));
}

TEST(a_burst_is_one_callback_and_noise_is_none)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    tide_watch *w = start(loop);
    CHECK(w != NULL);
    check_burst(loop, w);
    tide_watch_stop(w);
    ev_loop_destroy(loop);
    remove_tree();
}

TEST(an_unwatchable_directory_is_an_error)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    const char *dirs[] = { "/nonexistent-dir-for-tide" };
    tide_watch *w = NULL;
    char err[256] = "";
    int rc = tide_watch_start(loop, dirs, 1, DEBOUNCE, on_change, loop, &w, err, sizeof err);
    ev_loop_destroy(loop);
    CHECK_EQ_INT(rc, TIDE_EIO);
    CHECK(w == NULL);
    CHECK(strstr(err, "/nonexistent-dir-for-tide") != NULL);
}

TEST_LIST_BEGIN
TEST_ENTRY(a_burst_is_one_callback_and_noise_is_none)
TEST_ENTRY(an_unwatchable_directory_is_an_error)
TEST_LIST_END
