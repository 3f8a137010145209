/* jsonw.h - a small JSON writer: a document built value by value into a growing buffer, the
 * writer placing commas and colons and escaping every string, so no text a caller passes can
 * change the document's shape (a quote in an admin flush tag stays inside its string).
 *
 *   tide_jsonw w;
 *   tide_jsonw_init(&w);
 *   tide_jsonw_object(&w);
 *   tide_jsonw_key_string(&w, "flushed", tag, tag_len);
 *   tide_jsonw_end(&w);
 *   size_t len;
 *   const char *text = tide_jsonw_result(&w, &len);   (NULL: out of memory or misuse)
 *   ... send text ...
 *   tide_jsonw_free(&w);
 *
 * Strings are escaped as JSON requires (quote, backslash, control characters), and a byte that
 * does not belong to well-formed UTF-8 becomes U+FFFD, so the result is always valid UTF-8
 * JSON. Errors are sticky: after the first (out of memory, a value in an object without its
 * key, a key outside an object, an end with nothing open, nesting past TIDE_JSONW_MAX_DEPTH, a
 * second top-level value) every call does nothing and tide_jsonw_result() returns NULL, so a
 * caller checks once, at the end. Pure: no I/O, no logging. */
#ifndef TIDE_JSONW_H
#define TIDE_JSONW_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

#define TIDE_JSONW_MAX_DEPTH 64

typedef struct tide_jsonw {
    char *buf; /* owned; NUL-terminated while not failed */
    size_t len, cap;
    int depth;        /* objects and arrays open */
    int error;        /* 0, or the first TIDE_E* code */
    int keyed;        /* a key was written: its value comes next */
    int done;         /* the top-level value is complete */
    uint64_t object;  /* bit d - 1: the container at depth d is an object */
    uint64_t started; /* bit d - 1: that container has a member already */
} tide_jsonw;

/* An empty writer (no allocation yet). */
void tide_jsonw_init(tide_jsonw *w);
/* Frees the buffer; w may be initialised again. */
void tide_jsonw_free(tide_jsonw *w);

/* Opens an object or an array (as a value: after a key, in an array, or at the top). */
void tide_jsonw_object(tide_jsonw *w);
void tide_jsonw_array(tide_jsonw *w);
/* Closes the innermost object or array. */
void tide_jsonw_end(tide_jsonw *w);
/* A member's key (NUL-terminated, escaped like any string) inside an object. */
void tide_jsonw_key(tide_jsonw *w, const char *key);

/* Values. string: len bytes of s, any bytes (s may be NULL when len is 0); cstring: a
 * NUL-terminated s, NULL writes null; number: v with `decimals` digits after the point (0..9),
 * null when v is not finite; raw: one complete JSON value another encoder made (trusted to be
 * one: it is copied as it is). */
void tide_jsonw_string(tide_jsonw *w, const char *s, size_t len);
void tide_jsonw_cstring(tide_jsonw *w, const char *s);
void tide_jsonw_int(tide_jsonw *w, long long v);
void tide_jsonw_number(tide_jsonw *w, double v, int decimals);
void tide_jsonw_bool(tide_jsonw *w, int v);
void tide_jsonw_null(tide_jsonw *w);
void tide_jsonw_raw(tide_jsonw *w, const char *json, size_t len);

/* key and value in one call. */
void tide_jsonw_key_string(tide_jsonw *w, const char *key, const char *s, size_t len);
void tide_jsonw_key_cstring(tide_jsonw *w, const char *key, const char *s);
void tide_jsonw_key_int(tide_jsonw *w, const char *key, long long v);
void tide_jsonw_key_number(tide_jsonw *w, const char *key, double v, int decimals);
void tide_jsonw_key_bool(tide_jsonw *w, const char *key, int v);

/* The document: NUL-terminated text (*len bytes, len may be NULL), owned by w, once exactly one
 * top-level value is complete; NULL after any error (tide_jsonw_error() says which) or while
 * something is still open. */
const char *tide_jsonw_result(tide_jsonw *w, size_t *len);
/* 0, or the first error: TIDE_ENOMEM, or TIDE_EINVAL for misuse (see the header comment). */
int tide_jsonw_error(const tide_jsonw *w);

#endif
