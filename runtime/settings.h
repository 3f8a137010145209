/* settings.h - declarative setting tables (after PgBouncer's config table): one row per key
 * with its section, type, bounds, default, whether a SIGHUP reload applies it, and where it
 * lives in a C struct. One generic reader checks a nested Lua table against a table and fills
 * the struct; one printer writes the effective values. A schema has exactly one table, so a
 * default has exactly one home. */
#ifndef TIDE_SETTINGS_H
#define TIDE_SETTINGS_H

#include <stddef.h>
#include <stdio.h>
#include <lua.h>
#include "error.h"

typedef enum tide_setting_type {
    TIDE_SET_INT,            /* int: a whole number within min..max */
    TIDE_SET_NUMBER,         /* double within min..max */
    TIDE_SET_BOOL,           /* int 0/1: true or false */
    TIDE_SET_UPSTREAM,       /* int: an upstream index (tide_upstream_index), -1 = none */
    TIDE_SET_SIZE,           /* size_t: a whole number within min..max */
    TIDE_SET_STRING,         /* char *, owned (strdup): a non-empty string, NULL = unset */
    TIDE_SET_TABLE,          /* a sub-table another table reads: accepted, nothing stored */
    TIDE_SET_IGNORED,        /* an old key still accepted in files: checked for nothing,
                              * stored nowhere, not printed */
} tide_setting_type;

enum {
    TIDE_SET_RELOAD = 1,     /* a SIGHUP reload applies it; otherwise restart-only */
    TIDE_SET_SECRET = 2,     /* never printed: only whether it is set */
    TIDE_SET_DSN = 4,        /* a connection string: printed with its password masked */
    TIDE_SET_EMPTY = 8,      /* a STRING that may also be "" (a channel name: "" = none) */
};

typedef struct tide_setting {
    const char *section;     /* the sub-table it sits in ("retry"), NULL = directly */
    const char *key;
    tide_setting_type type;
    double min, max;         /* inclusive bounds (INT, NUMBER) */
    double def;              /* the default: number, 0/1, upstream index or -1 */
    const char *def_str;     /* the default of a STRING (NULL = unset) */
    int flags;               /* TIDE_SET_* */
    size_t offset;           /* of the field in the struct */
    const char *help;        /* one line, for documentation */
} tide_setting;

/* Writes every default of table t (n rows) into obj (strings copied: obj's string fields
 * must hold nothing to free). Returns 0 or TIDE_ENOMEM. */
TIDE_MUST_CHECK int tide_settings_defaults(const tide_setting *t, size_t n, void *obj);
/* Frees obj's strings (set to NULL). */
void tide_settings_free(const tide_setting *t, size_t n, void *obj);

/* Reads the Lua table at index idx over obj: each key present is checked (type, whole number,
 * bounds) and stored; absent keys leave obj as it is, so reading a defaults table and then a
 * more specific one merges them key by key. A key (or section) the table does not know is an
 * error, so a misspelt setting is never ignored. Errors name the key, prefixed by label and a
 * dot when label is not NULL ("direct.retry.attempts must be in 1..10, got 0"). Returns 0, or
 * TIDE_EINVAL with the message in err (obj may then be partly written). Does not raise; the
 * Lua stack is left as it was. */
TIDE_MUST_CHECK int tide_settings_read(lua_State *L, int idx, const tide_setting *t, size_t n,
                                       void *obj, const char *label, char *err, size_t errlen);

/* Prints one line per row, "label.section.key = value", marking restart-only rows
 * "(restart)"; a secret
 * prints as "(set)" or "(unset)", a DSN without its password. */
void tide_settings_print(FILE *f, const char *label, const tide_setting *t, size_t n,
                         const void *obj);

#endif
