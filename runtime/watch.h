/* watch.h - `tide serve --watch`: notices changes to the Lua files of some directories (and
 * their subdirectories) through inotify on the event loop, and calls back once per burst of
 * changes, `debounce` seconds after the last one, so an editor's save (a temporary file, a
 * rename, several files at once) is one callback. Linux only. */
#ifndef TIDE_WATCH_H
#define TIDE_WATCH_H

#include <ev.h>
#include <stddef.h>
#include "error.h"

typedef struct tide_watch tide_watch;

/* Called on the loop once a burst of changes has settled. first is the path (dir/name) of the
 * burst's first change, valid during the call; files counts the distinct paths that changed
 * in the burst (at most 64). The callback must not stop the watch. */
typedef void (*tide_watch_cb)(tide_watch *w, const char *first, int files, void *arg);

/* Starts watching each of dirs (ndirs of them, NULL entries skipped) and every directory
 * below them. What counts as a change: a file whose name ends in ".lua" and does not start
 * with "." (editors' swap, lock and backup files do not) written and closed, modified,
 * created, deleted or renamed into or out of a watched directory; a directory created,
 * deleted or renamed (its new subdirectories are watched too); a watched directory itself
 * deleted or moved (it is no longer watched: re-creating it is not noticed); the kernel's
 * queue overflowing. Returns 0 and *out, or TIDE_EIO with the reason in err (no inotify
 * here, out of inotify instances or watches, a directory that cannot be watched) and
 * TIDE_ENOMEM; on error nothing is left running. */
TIDE_MUST_CHECK int tide_watch_start(struct ev_loop *loop, const char *const *dirs, int ndirs,
                                     double debounce, tide_watch_cb cb, void *arg, tide_watch **out,
                                     char *err, size_t errlen);

/* Stops watching and frees w (NULL is fine). Not from inside w's callback. */
void tide_watch_stop(tide_watch *w);

/* The number of directories being watched. */
int tide_watch_count(const tide_watch *w);

#endif
