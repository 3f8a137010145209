/* bundle.h - a script bundle held in memory: the text of every .lua file under the bindings,
 * scripts and policies directories, read at one moment. A Lua state built from it
 * (tide_bundle_install) finds its modules there instead of on disk, so what it runs is
 * exactly what was read, whatever the directories hold afterwards.
 *
 * Why: a worker restarted by its supervisor (runtime/workers.h) must serve the last bundle that
 * loaded, not what is on disk now (a deploy half written, or a bundle a SIGHUP already
 * rejected). Every worker writes the bundle it loaded into a snapshot, a memfd the parent
 * made before forking (tide_bundle_store: last writer wins); a restarted worker reads it back
 * (tide_bundle_load) instead of the directories.
 *
 * Module lookup is the one package.path gave (bindings/?.lua;scripts/?.lua;policies/?.lua): a
 * module name's dots become slashes, the first directory holding NAME.lua wins, and a chunk's
 * name is "@dir/NAME.lua", so error messages, tracebacks and `tide routes` keep naming the
 * files. */
#ifndef TIDE_BUNDLE_H
#define TIDE_BUNDLE_H

#include <stddef.h>
#include "error.h"

struct lua_State;

#define TIDE_BUNDLE_DIRS              3           /* bindings, scripts, policies */
#define TIDE_BUNDLE_MAX_FILES         2048        /* .lua files in all */
#define TIDE_BUNDLE_MAX_BYTES         (64u << 20) /* their text in all */
#define TIDE_BUNDLE_MAX_DEPTH         8           /* directory levels below each directory */
#define TIDE_BUNDLE_MAX_SUBDIRS       256         /* directories visited in all */
#define TIDE_BUNDLE_MAX_ROUTE_MODULES 512         /* route modules (scripts/NAME.lua) */

typedef struct tide_bundle_file {
    int dir;   /* index into tide_bundle.dirs */
    char *rel; /* the path below it: "trips.lua", "tide/boot.lua" */
    char *text;
    size_t len;
} tide_bundle_file;

typedef struct tide_bundle {
    char *dirs[TIDE_BUNDLE_DIRS]; /* as configured (relative or absolute) */
    tide_bundle_file *files;      /* sorted by dir, then rel */
    int nfiles;
    size_t bytes; /* text bytes of all files */
    /* set by tide_bundle_store and tide_bundle_load (0 for a bundle read from disk) */
    unsigned long long generation; /* the snapshot's: 1 for its first bundle, then +1 */
    int stored_by;                 /* the pid that stored it */
    double stored_at;              /* when (seconds since the epoch) */
} tide_bundle;

/* Reads every *.lua file (names starting with "." skipped, files and directories) under the
 * three directories and the directories below them. Returns 0 and *b, or TIDE_EIO (a
 * directory or file that cannot be read), TIDE_ETOOBIG (more than TIDE_BUNDLE_MAX_FILES files,
 * TIDE_BUNDLE_MAX_BYTES bytes, TIDE_BUNDLE_MAX_SUBDIRS directories) or TIDE_ENOMEM, with a
 * message in err; on error *b holds nothing to free. */
TIDE_MUST_CHECK int tide_bundle_read(const char *bindings_dir, const char *scripts_dir,
                                     const char *policies_dir, tide_bundle *b, char *err,
                                     size_t errlen);
void tide_bundle_free(tide_bundle *b);

/* Makes L's `require` find b's modules: a searcher placed before the path searcher in
 * package.loaders (it keeps its own copy of the texts, so b may be freed afterwards), and
 * b's three "dir/?.lua" entries taken out of package.path, so a module missing from b is never
 * read from disk. Returns 0, or -1 with an error message pushed. */
int tide_bundle_install(struct lua_State *L, const tide_bundle *b);

/* Pushes the sorted array of route-module names: scripts/NAME.lua directly in the scripts
 * directory, NAME not starting with "_" (a library) or ".". Returns 0, or -1 with an error
 * pushed (more than TIDE_BUNDLE_MAX_ROUTE_MODULES). */
int tide_bundle_push_route_names(struct lua_State *L, const tide_bundle *b);

/* ---- serialized form and the shared snapshot ------------------------------------------- */

/* b as one buffer (malloc'd, *len bytes): a header (magic, version, file count, generation,
 * writer, time, payload length and checksum), then the directories and files. 0 or
 * TIDE_ENOMEM. */
TIDE_MUST_CHECK int tide_bundle_serialize(const tide_bundle *b, char **out, size_t *len);
/* The bundle in buf (as tide_bundle_serialize wrote it), every length and the checksum
 * checked. 0, TIDE_EPARSE (not a whole bundle) or TIDE_ENOMEM, with a message in err. */
TIDE_MUST_CHECK int tide_bundle_parse(const char *buf, size_t len, tide_bundle *b, char *err,
                                      size_t errlen);

/* A new, empty snapshot: an anonymous memory file (memfd_create) to be inherited by forked
 * workers. Returns its descriptor, or -1 (errno set). */
int tide_bundle_snapshot_new(void);
/* A descriptor of the same snapshot with an open file description of this process's own
 * (flock locks belong to a description, and forked processes share theirs). Returns it, or -1
 * (errno set). */
int tide_bundle_snapshot_reopen(int fd);
/* Replaces the snapshot in fd with b, under an exclusive flock: the generation is the stored
 * one + 1; sets b->generation, stored_by, stored_at. The header is written last, so a writer
 * that dies half way leaves a snapshot tide_bundle_load refuses. 0, or TIDE_EIO / TIDE_ENOMEM
 * with a message in err. */
TIDE_MUST_CHECK int tide_bundle_store(int fd, tide_bundle *b, char *err, size_t errlen);
/* Reads the snapshot in fd under a shared flock. 0 and *b, TIDE_EAGAIN when nothing was stored
 * yet, TIDE_EIO or TIDE_EPARSE (unreadable, or not a whole bundle) or TIDE_ENOMEM, with a
 * message in err. */
TIDE_MUST_CHECK int tide_bundle_load(int fd, tide_bundle *b, char *err, size_t errlen);

#endif
