/* settings.h - declarative setting tables (after PgBouncer's config table): one row per key
 * with its section, type, bounds, default, whether a SIGHUP reload applies it, the environment
 * variable that overrides it, and where it lives in a C struct. One generic reader checks a
 * nested Lua table against a table and fills the struct; one applies the environment; one
 * printer writes the effective values; one writes the table itself as Lua (for the checks of
 * the sample files against it). A schema has exactly one table, so a default has exactly one
 * home. The module names no setting of its own: an ENUM row carries its names (as PgBouncer's
 * CF_LOOKUP rows do). */
#ifndef TIDE_SETTINGS_H
#define TIDE_SETTINGS_H

#include <stddef.h>
#include <stdio.h>
#include <lua.h>
#include "error.h"

typedef enum tide_setting_type {
    TIDE_SET_INT,     /* int: a whole number within min..max */
    TIDE_SET_NUMBER,  /* double within min..max */
    TIDE_SET_BOOL,    /* int 0/1: true or false */
    TIDE_SET_ENUM,    /* int: the value of one of the row's names, -1 = none */
    TIDE_SET_SIZE,    /* size_t: a whole number within min..max */
    TIDE_SET_STRING,  /* char *, owned (strdup): a non-empty string, NULL = unset */
    TIDE_SET_TABLE,   /* a sub-table another table reads: accepted, nothing stored */
    TIDE_SET_IGNORED, /* an old key still accepted in files: checked for nothing,
                              * stored nowhere, not printed */
} tide_setting_type;

enum {
    TIDE_SET_RELOAD = 1, /* a SIGHUP reload applies it; otherwise restart-only */
    TIDE_SET_SECRET = 2, /* never printed: only whether it is set */
    TIDE_SET_DSN = 4,    /* a connection string: printed with its password masked */
    TIDE_SET_EMPTY = 8,  /* a STRING that may also be "" (a channel name: "" = none) */
};

/* One name of an ENUM row and its value; a list ends with { NULL, 0 }. */
typedef struct tide_setting_name {
    const char *name;
    int value;
} tide_setting_name;

typedef struct tide_setting {
    const char *section; /* the sub-table it sits in ("retry"), NULL = directly */
    const char *key;
    tide_setting_type type;
    double min, max;     /* inclusive bounds (INT, NUMBER) */
    double def;          /* the default: number, 0/1, enum value or -1 */
    const char *def_str; /* the default of a STRING (NULL = unset) */
    int flags;           /* TIDE_SET_* */
    size_t offset;       /* of the field in the struct */
    const char *help;    /* one line, for documentation */
    /* The environment variable that overrides the key (NULL: none). A '*' in it stands for
     * the instance tide_settings_env is given, upper-cased ("TIDE_DSN_*": TIDE_DSN_DIRECT). */
    const char *env;
    const tide_setting_name *names; /* an ENUM row's names */
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

/* Applies the environment over obj: for each row with an env name whose variable is set, the
 * value is checked and stored. Unset and empty variables leave obj as it is, except that a
 * STRING row flagged TIDE_SET_EMPTY takes "" (it means none there). BOOL takes 0 or 1; INT
 * and SIZE a whole number within the row's bounds; NUMBER a number within them; ENUM one of
 * its names. instance replaces a '*' in the env names (NULL: no row may have one). Returns 0,
 * TIDE_ENOMEM, or TIDE_EINVAL with a message naming the variable in err ("TIDE_NICE must be a
 * whole number in -20..19"); obj may then be partly written. */
TIDE_MUST_CHECK int tide_settings_env(const tide_setting *t, size_t n, void *obj,
                                      const char *instance, char *err, size_t errlen);

/* The environment variable of row s into buf (instance, upper-cased, replacing a '*'; NULL
 * keeps the '*'), or "" when it has none. Returns buf. */
const char *tide_settings_env_name(const tide_setting *s, const char *instance, char *buf,
                                   size_t cap);

/* The value of name in an ENUM row's names list, or -1. */
int tide_settings_lookup(const tide_setting_name *names, const char *name);
/* The name of value in the list, or NULL. */
const char *tide_settings_name(const tide_setting_name *names, int value);

/* Prints one line per row, "label.section.key = value", marking restart-only rows
 * "(restart)" and naming the row's environment variable ("env TIDE_NICE"); a secret
 * prints as "(set)" or "(unset)", a DSN without its password. instance replaces a '*' in the
 * env names, as for tide_settings_env. */
void tide_settings_print(FILE *f, const char *label, const tide_setting *t, size_t n,
                         const void *obj, const char *instance);

/* Writes the rows of t as a Lua list of tables, one per row: { section =, key =, type =
 * ("int", "number", "bool", "enum", "size", "string", "table", "ignored"), min =, max =,
 * default =, env =, reload =, secret =, empty =, names = { ... } } (absent fields are nil).
 * For the checks of sample files and docs against the schema. */
void tide_settings_write_lua(FILE *f, const tide_setting *t, size_t n, const char *instance);

#endif
