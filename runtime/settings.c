/* settings.c - the generic reader and printer of declarative setting tables (settings.h). */
#include "settings.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The struct's fields are written through memcpy: the offset says where, the row's type
 * says what. */
static void put_int(void *obj, const tide_setting *s, int v)
{
    memcpy((char *)obj + s->offset, &v, sizeof v);
}

static void put_num(void *obj, const tide_setting *s, double v)
{
    memcpy((char *)obj + s->offset, &v, sizeof v);
}

static void put_size(void *obj, const tide_setting *s, size_t v)
{
    memcpy((char *)obj + s->offset, &v, sizeof v);
}

/* The string field of row s (a char * the struct owns). */
static char **str_slot(void *obj, const tide_setting *s)
{
    return (char **)(void *)((char *)obj + s->offset);
}

/* Replaces the string field with a copy of v (NULL = unset). Returns 0 or TIDE_ENOMEM. */
static int put_str(void *obj, const tide_setting *s, const char *v)
{
    char *copy = NULL;
    if (v && !(copy = strdup(v))) return TIDE_ENOMEM;
    char **slot = str_slot(obj, s);
    free(*slot);
    *slot = copy;
    return 0;
}

int tide_settings_lookup(const tide_setting_name *names, const char *name)
{
    for (const tide_setting_name *n = names; n && n->name; n++)
        if (strcmp(n->name, name) == 0) return n->value;
    return -1;
}

const char *tide_settings_name(const tide_setting_name *names, int value)
{
    for (const tide_setting_name *n = names; n && n->name; n++)
        if (n->value == value) return n->name;
    return NULL;
}

/* "must be one of a, b, c" for an ENUM row, after name. */
static void enum_error(char *err, size_t errlen, const char *name, const tide_setting *s)
{
    int len = snprintf(err, errlen, "%s must be one of ", name);
    for (const tide_setting_name *n = s->names; n && n->name && len >= 0 && (size_t)len < errlen;
         n++)
        len +=
            snprintf(err + len, errlen - (size_t)len, "%s%s", n == s->names ? "" : ", ", n->name);
}

int tide_settings_defaults(const tide_setting *t, size_t n, void *obj)
{
    for (size_t i = 0; i < n; i++) {
        switch (t[i].type) {
        case TIDE_SET_NUMBER: put_num(obj, &t[i], t[i].def); break;
        case TIDE_SET_SIZE: put_size(obj, &t[i], (size_t)t[i].def); break;
        case TIDE_SET_STRING:
            *str_slot(obj, &t[i]) = NULL; /* nothing to free yet */
            if (put_str(obj, &t[i], t[i].def_str) != 0) return TIDE_ENOMEM;
            break;
        case TIDE_SET_TABLE:
        case TIDE_SET_IGNORED: break;
        default: put_int(obj, &t[i], (int)t[i].def); break;
        }
    }
    return 0;
}

void tide_settings_free(const tide_setting *t, size_t n, void *obj)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].type == TIDE_SET_STRING) {
            char **slot = str_slot(obj, &t[i]);
            if (*slot) memset(*slot, 0, strlen(*slot)); /* secrets do not linger in freed memory */
            free(*slot);
            *slot = NULL;
        }
}

/* "label.section.key", parts left out when NULL. */
static void name_of(char *buf, size_t cap, const char *label, const char *section, const char *key)
{
    snprintf(buf, cap, "%s%s%s%s%s", label ? label : "", label ? "." : "", section ? section : "",
             section && key ? "." : "", key ? key : "");
}

static int is_section(const tide_setting *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].section && strcmp(t[i].section, name) == 0) return 1;
    return 0;
}

static int is_key(const tide_setting *t, size_t n, const char *section, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if ((section == NULL) != (t[i].section == NULL)) continue;
        if (section && strcmp(section, t[i].section) != 0) continue;
        if (strcmp(key, t[i].key) == 0) return 1;
    }
    return 0;
}

/* Checks that every key of the table on top of the stack is a row of t (in section). */
static int check_keys(lua_State *L, const tide_setting *t, size_t n, const char *section,
                      const char *label, char *err, size_t errlen)
{
    char name[256];
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        int rc = 0;
        if (!k) {
            name_of(name, sizeof name, label, section, NULL);
            snprintf(err, errlen, "%s has a key that is not a name", name[0] ? name : "table");
            rc = TIDE_EINVAL;
        } else if (!section && is_section(t, n, k)) {
            name_of(name, sizeof name, label, k, NULL);
            if (!lua_istable(L, -1)) {
                snprintf(err, errlen, "%s must be a table", name);
                rc = TIDE_EINVAL;
            } else {
                rc = check_keys(L, t, n, k, label, err, errlen);
            }
        } else if (!is_key(t, n, section, k)) {
            name_of(name, sizeof name, label, section, k);
            snprintf(err, errlen, "%s is not a setting (a typo?)", name);
            rc = TIDE_EINVAL;
        }
        if (rc != 0) {
            lua_pop(L, 2);
            return rc;
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* Checks and stores the value on top of the stack for row s. */
static int store(lua_State *L, const tide_setting *s, void *obj, const char *name, char *err,
                 size_t errlen)
{
    int t = lua_type(L, -1);
    switch (s->type) {
    case TIDE_SET_TABLE:
        if (t != LUA_TTABLE) {
            snprintf(err, errlen, "%s must be a table", name);
            return TIDE_EINVAL;
        }
        return 0;
    case TIDE_SET_IGNORED: return 0;
    case TIDE_SET_STRING:
        if (t != LUA_TSTRING || (lua_objlen(L, -1) == 0 && !(s->flags & TIDE_SET_EMPTY))) {
            snprintf(err, errlen, "%s must be a %sstring", name,
                     s->flags & TIDE_SET_EMPTY ? "" : "non-empty ");
            return TIDE_EINVAL;
        }
        if (put_str(obj, s, lua_tostring(L, -1)) != 0) {
            snprintf(err, errlen, "out of memory");
            return TIDE_ENOMEM;
        }
        return 0;
    case TIDE_SET_BOOL:
        if (t != LUA_TBOOLEAN) {
            snprintf(err, errlen, "%s must be true or false", name);
            return TIDE_EINVAL;
        }
        put_int(obj, s, lua_toboolean(L, -1));
        return 0;
    case TIDE_SET_ENUM: {
        int i = t == LUA_TSTRING ? tide_settings_lookup(s->names, lua_tostring(L, -1)) : -1;
        if (i < 0) {
            enum_error(err, errlen, name, s);
            return TIDE_EINVAL;
        }
        put_int(obj, s, i);
        return 0;
    }
    case TIDE_SET_INT:
    case TIDE_SET_SIZE:
    case TIDE_SET_NUMBER: {
        double v = lua_tonumber(L, -1);
        if (t != LUA_TNUMBER || isnan(v)) {
            snprintf(err, errlen, "%s must be a number", name);
            return TIDE_EINVAL;
        }
        if (s->type != TIDE_SET_NUMBER && isfinite(v) && v != floor(v)) {
            snprintf(err, errlen, "%s must be an integer", name);
            return TIDE_EINVAL;
        }
        if (!(v >= s->min && v <= s->max)) {
            snprintf(err, errlen, "%s must be in %g..%g, got %g", name, s->min, s->max, v);
            return TIDE_EINVAL;
        }
        if (s->type == TIDE_SET_INT) put_int(obj, s, (int)v);
        else if (s->type == TIDE_SET_SIZE) put_size(obj, s, (size_t)v);
        else put_num(obj, s, v);
        return 0;
    }
    }
    return TIDE_EINVAL;
}

int tide_settings_read(lua_State *L, int idx, const tide_setting *t, size_t n, void *obj,
                       const char *label, char *err, size_t errlen)
{
    char name[256];
    int top = lua_gettop(L);
    lua_pushvalue(L, idx);
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "%s must be a table", label ? label : "settings");
        lua_settop(L, top);
        return TIDE_EINVAL;
    }
    int rc = check_keys(L, t, n, NULL, label, err, errlen);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const tide_setting *s = &t[i];
        if (s->section) {
            lua_getfield(L, -1, s->section);
            if (!lua_istable(L, -1)) {
                lua_pop(L, 1);
                continue;
            }
        }
        lua_getfield(L, -1, s->key);
        if (!lua_isnil(L, -1)) {
            name_of(name, sizeof name, label, s->section, s->key);
            rc = store(L, s, obj, name, err, errlen);
        }
        lua_pop(L, s->section ? 2 : 1);
    }
    lua_settop(L, top);
    return rc;
}

const char *tide_settings_env_name(const tide_setting *s, const char *instance, char *buf,
                                   size_t cap)
{
    size_t o = 0;
    for (const char *p = s->env ? s->env : ""; *p && o + 1 < cap; p++) {
        if (*p != '*' || !instance) {
            buf[o++] = *p;
            continue;
        }
        for (const char *q = instance; *q && o + 1 < cap; q++)
            buf[o++] = (char)toupper((unsigned char)*q);
    }
    buf[o] = '\0';
    return buf;
}

/* Checks and stores environment value v (set, not empty) of variable var for row s. */
static int store_env(const tide_setting *s, void *obj, const char *var, const char *v, char *err,
                     size_t errlen)
{
    switch (s->type) {
    case TIDE_SET_STRING:
        if (put_str(obj, s, v) != 0) {
            snprintf(err, errlen, "out of memory");
            return TIDE_ENOMEM;
        }
        return 0;
    case TIDE_SET_BOOL:
        if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) {
            snprintf(err, errlen, "%s must be 0 or 1", var);
            return TIDE_EINVAL;
        }
        put_int(obj, s, v[0] == '1');
        return 0;
    case TIDE_SET_ENUM: {
        int i = tide_settings_lookup(s->names, v);
        if (i < 0) {
            enum_error(err, errlen, var, s);
            return TIDE_EINVAL;
        }
        put_int(obj, s, i);
        return 0;
    }
    case TIDE_SET_INT:
    case TIDE_SET_SIZE: {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        long long lo = (long long)s->min, hi = (long long)s->max;
        if (errno || *end || x < lo || x > hi) {
            snprintf(err, errlen, "%s must be a whole number in %lld..%lld", var, lo, hi);
            return TIDE_EINVAL;
        }
        if (s->type == TIDE_SET_INT) put_int(obj, s, (int)x);
        else put_size(obj, s, (size_t)x);
        return 0;
    }
    case TIDE_SET_NUMBER: {
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        if (errno || *end || !(x >= s->min && x <= s->max)) {
            snprintf(err, errlen, "%s must be a number in %g..%g", var, s->min, s->max);
            return TIDE_EINVAL;
        }
        put_num(obj, s, x);
        return 0;
    }
    case TIDE_SET_TABLE:
    case TIDE_SET_IGNORED: return 0;
    }
    return TIDE_EINVAL;
}

int tide_settings_env(const tide_setting *t, size_t n, void *obj, const char *instance, char *err,
                      size_t errlen)
{
    char var[128];
    for (size_t i = 0; i < n; i++) {
        if (!t[i].env) continue;
        const char *v = getenv(tide_settings_env_name(&t[i], instance, var, sizeof var));
        /* unset leaves the value; so does empty, but where "" is a value of its own */
        if (!v || (!*v && !(t[i].type == TIDE_SET_STRING && t[i].flags & TIDE_SET_EMPTY))) continue;
        int rc = store_env(&t[i], obj, var, v, err, errlen);
        if (rc != 0) return rc;
    }
    return 0;
}

/* Prints a connection string with its password replaced by "***": the URI form's
 * user:password@ and the key=value form's password=. */
static void print_dsn(FILE *f, const char *v)
{
    const char *scheme = strstr(v, "://");
    if (scheme) {
        const char *user = scheme + 3, *at = strchr(user, '@'), *colon = strchr(user, ':');
        if (at && colon && colon < at) {
            fprintf(f, "\"%.*s***%s\"", (int)(colon + 1 - v), v, at);
            return;
        }
        fprintf(f, "\"%s\"", v);
        return;
    }
    const char *pw = strstr(v, "password=");
    if (!pw) {
        fprintf(f, "\"%s\"", v);
        return;
    }
    const char *end = strchr(pw, ' ');
    fprintf(f, "\"%.*s***%s\"", (int)(pw + 9 - v), v, end ? end : "");
}

void tide_settings_print(FILE *f, const char *label, const tide_setting *t, size_t n,
                         const void *obj, const char *instance)
{
    char name[256], var[128];
    for (size_t i = 0; i < n; i++) {
        const tide_setting *s = &t[i];
        if (s->type == TIDE_SET_TABLE || s->type == TIDE_SET_IGNORED) continue;
        name_of(name, sizeof name, label, s->section, s->key);
        fprintf(f, "%-40s = ", name);
        const char *p = (const char *)obj + s->offset;
        int iv;
        double dv;
        size_t zv;
        const char *sv;
        switch (s->type) {
        case TIDE_SET_NUMBER:
            memcpy(&dv, p, sizeof dv);
            fprintf(f, "%g", dv);
            break;
        case TIDE_SET_SIZE:
            memcpy(&zv, p, sizeof zv);
            fprintf(f, "%zu", zv);
            break;
        case TIDE_SET_STRING:
            memcpy(&sv, p, sizeof sv);
            if (!sv) fputs("(unset)", f);
            else if (s->flags & TIDE_SET_SECRET) fputs("(set)", f);
            else if (s->flags & TIDE_SET_DSN) print_dsn(f, sv);
            else fprintf(f, "\"%s\"", sv);
            break;
        case TIDE_SET_BOOL:
            memcpy(&iv, p, sizeof iv);
            fputs(iv ? "true" : "false", f);
            break;
        case TIDE_SET_ENUM:
            memcpy(&iv, p, sizeof iv);
            sv = tide_settings_name(s->names, iv);
            fputs(sv ? sv : "none", f);
            break;
        default:
            memcpy(&iv, p, sizeof iv);
            fprintf(f, "%d", iv);
            break;
        }
        tide_settings_env_name(s, instance, var, sizeof var);
        if (!(s->flags & TIDE_SET_RELOAD)) fputs("   (restart)", f);
        if (var[0]) fprintf(f, "   (env %s)", var);
        fputc('\n', f);
    }
}

static const char *type_name(tide_setting_type t)
{
    switch (t) {
    case TIDE_SET_INT: return "int";
    case TIDE_SET_NUMBER: return "number";
    case TIDE_SET_BOOL: return "bool";
    case TIDE_SET_ENUM: return "enum";
    case TIDE_SET_SIZE: return "size";
    case TIDE_SET_STRING: return "string";
    case TIDE_SET_TABLE: return "table";
    case TIDE_SET_IGNORED: return "ignored";
    }
    return "?";
}

/* A number as Lua source: whole numbers whole, the rest in the fewest digits that read back
 * the same (0.05, not 0.050000000000000003). */
static void lua_number(FILE *f, double v)
{
    if (v == floor(v) && fabs(v) < 1e15) {
        fprintf(f, "%.0f", v);
        return;
    }
    char buf[32];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) break;
    }
    fputs(buf, f);
}

void tide_settings_write_lua(FILE *f, const tide_setting *t, size_t n, const char *instance)
{
    char var[128];
    fputs("{\n", f);
    for (size_t i = 0; i < n; i++) {
        const tide_setting *s = &t[i];
        fprintf(f, "  { key = \"%s\", type = \"%s\"", s->key, type_name(s->type));
        if (s->section) fprintf(f, ", section = \"%s\"", s->section);
        switch (s->type) {
        case TIDE_SET_INT:
        case TIDE_SET_NUMBER:
        case TIDE_SET_SIZE:
            fputs(", min = ", f);
            lua_number(f, s->min);
            fputs(", max = ", f);
            lua_number(f, s->max);
            fputs(", default = ", f);
            lua_number(f, s->def);
            break;
        case TIDE_SET_BOOL: fprintf(f, ", default = %s", s->def ? "true" : "false"); break;
        case TIDE_SET_ENUM: {
            const char *d = tide_settings_name(s->names, (int)s->def);
            if (d) fprintf(f, ", default = \"%s\"", d);
            fputs(", names = {", f);
            for (const tide_setting_name *nm = s->names; nm && nm->name; nm++)
                fprintf(f, " \"%s\",", nm->name);
            fputs(" }", f);
            break;
        }
        case TIDE_SET_STRING:
            if (s->def_str) fprintf(f, ", default = \"%s\"", s->def_str);
            break;
        default: break;
        }
        if (s->env)
            fprintf(f, ", env = \"%s\"", tide_settings_env_name(s, instance, var, sizeof var));
        if (s->flags & TIDE_SET_RELOAD) fputs(", reload = true", f);
        if (s->flags & TIDE_SET_SECRET) fputs(", secret = true", f);
        if (s->flags & TIDE_SET_EMPTY) fputs(", empty = true", f);
        fputs(" },\n", f);
    }
    fputs("}", f);
}
