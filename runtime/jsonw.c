/* jsonw.c - the JSON writer (see jsonw.h). */
#include "jsonw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tide_jsonw_init(tide_jsonw *w) { memset(w, 0, sizeof *w); }

void tide_jsonw_free(tide_jsonw *w)
{
    free(w->buf);
    memset(w, 0, sizeof *w);
}

static void fail(tide_jsonw *w, int err)
{
    if (!w->error) w->error = err;
}

/* Room for n more bytes and the NUL. 0, or -1 (failed). */
static int reserve(tide_jsonw *w, size_t n)
{
    if (w->error) return -1;
    if (n < w->cap - w->len) return 0;
    size_t cap = w->cap ? w->cap : 256;
    while (cap - w->len <= n) {
        if (cap > SIZE_MAX / 2) {
            fail(w, TIDE_ENOMEM);
            return -1;
        }
        cap *= 2;
    }
    char *b = realloc(w->buf, cap);
    if (!b) {
        fail(w, TIDE_ENOMEM);
        return -1;
    }
    w->buf = b;
    w->cap = cap;
    return 0;
}

static void put(tide_jsonw *w, const char *s, size_t n)
{
    if (reserve(w, n) != 0) return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

static uint64_t bit(int depth) { return (uint64_t)1 << (depth - 1); }

/* Before a value: its comma, or a refusal when no value may come here. 0 or -1. */
static int begin_value(tide_jsonw *w)
{
    if (w->error) return -1;
    if (w->depth == 0) {
        if (w->done) {
            fail(w, TIDE_EINVAL); /* a second top-level value */
            return -1;
        }
        return 0;
    }
    if (w->object & bit(w->depth)) {
        if (!w->keyed) {
            fail(w, TIDE_EINVAL); /* a member without its key */
            return -1;
        }
        w->keyed = 0;
        return 0;
    }
    if (w->started & bit(w->depth)) put(w, ",", 1);
    w->started |= bit(w->depth);
    return w->error ? -1 : 0;
}

/* After a scalar (or a closed container): at the top, the document is complete. */
static void end_value(tide_jsonw *w)
{
    if (w->depth == 0) w->done = 1;
}

static void open_container(tide_jsonw *w, int object)
{
    if (begin_value(w) != 0) return;
    if (w->depth == TIDE_JSONW_MAX_DEPTH) {
        fail(w, TIDE_EINVAL);
        return;
    }
    put(w, object ? "{" : "[", 1);
    w->depth++;
    w->started &= ~bit(w->depth);
    if (object) w->object |= bit(w->depth);
    else w->object &= ~bit(w->depth);
}

void tide_jsonw_object(tide_jsonw *w) { open_container(w, 1); }

void tide_jsonw_array(tide_jsonw *w) { open_container(w, 0); }

void tide_jsonw_end(tide_jsonw *w)
{
    if (w->error) return;
    if (w->depth == 0 || w->keyed) {
        fail(w, TIDE_EINVAL); /* nothing open, or a key without its value */
        return;
    }
    put(w, w->object & bit(w->depth) ? "}" : "]", 1);
    w->depth--;
    end_value(w);
}

/* The length of the well-formed UTF-8 sequence at s (n bytes left, s[0] >= 0x80), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t k;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) k = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        if (c == 0xE0) lo = 0xA0;      /* no overlong forms */
        else if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F; /* nothing past U+10FFFF */
    } else return 0;
    if (n < k || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < k; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return k;
}

/* s (len bytes) as a JSON string, quotes included. */
static void put_string(tide_jsonw *w, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    put(w, "\"", 1);
    size_t i = 0, run = 0; /* bytes [i - run, i) go out as they are */
    while (i < len && !w->error) {
        unsigned char c = p[i];
        size_t k = 1;
        const char *esc = NULL;
        char u[6];
        if (c >= 0x80) {
            k = utf8_len(p + i, len - i);
            if (k) {
                i += k;
                run += k;
                continue;
            }
            esc = "\\ufffd";
        } else if (c == '"') {
            esc = "\\\"";
        } else if (c == '\\') {
            esc = "\\\\";
        } else if (c < 0x20) {
            switch (c) {
            case '\n': esc = "\\n"; break;
            case '\r': esc = "\\r"; break;
            case '\t': esc = "\\t"; break;
            case '\b': esc = "\\b"; break;
            case '\f': esc = "\\f"; break;
            default:
                memcpy(u, "\\u00", 4);
                u[4] = hex[c >> 4];
                u[5] = hex[c & 15];
                put(w, (const char *)p + i - run, run);
                put(w, u, 6);
                run = 0;
                i++;
                continue;
            }
        } else {
            i++;
            run++;
            continue;
        }
        put(w, (const char *)p + i - run, run);
        put(w, esc, strlen(esc));
        run = 0;
        i += 1; /* a byte outside well-formed UTF-8 is replaced alone */
    }
    put(w, (const char *)p + i - run, run);
    put(w, "\"", 1);
}

void tide_jsonw_key(tide_jsonw *w, const char *key)
{
    if (w->error) return;
    if (w->depth == 0 || !(w->object & bit(w->depth)) || w->keyed || !key) {
        fail(w, TIDE_EINVAL);
        return;
    }
    if (w->started & bit(w->depth)) put(w, ",", 1);
    w->started |= bit(w->depth);
    put_string(w, key, strlen(key));
    put(w, ":", 1);
    w->keyed = 1;
}

void tide_jsonw_string(tide_jsonw *w, const char *s, size_t len)
{
    if (begin_value(w) != 0) return;
    put_string(w, s ? s : "", s ? len : 0);
    end_value(w);
}

void tide_jsonw_cstring(tide_jsonw *w, const char *s)
{
    if (!s) tide_jsonw_null(w);
    else tide_jsonw_string(w, s, strlen(s));
}

void tide_jsonw_int(tide_jsonw *w, long long v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%lld", v);
    if (begin_value(w) != 0) return;
    put(w, b, (size_t)n);
    end_value(w);
}

void tide_jsonw_number(tide_jsonw *w, double v, int decimals)
{
    char b[352]; /* the largest double printed with 9 decimals fits */
    if (!isfinite(v)) {
        tide_jsonw_null(w);
        return;
    }
    if (decimals < 0) decimals = 0;
    if (decimals > 9) decimals = 9;
    int n = snprintf(b, sizeof b, "%.*f", decimals, v);
    if (n < 0 || (size_t)n >= sizeof b) {
        fail(w, TIDE_EINVAL);
        return;
    }
    if (begin_value(w) != 0) return;
    put(w, b, (size_t)n);
    end_value(w);
}

void tide_jsonw_bool(tide_jsonw *w, int v)
{
    if (begin_value(w) != 0) return;
    put(w, v ? "true" : "false", v ? 4 : 5);
    end_value(w);
}

void tide_jsonw_null(tide_jsonw *w)
{
    if (begin_value(w) != 0) return;
    put(w, "null", 4);
    end_value(w);
}

void tide_jsonw_raw(tide_jsonw *w, const char *json, size_t len)
{
    if (!json || !len) {
        fail(w, TIDE_EINVAL); /* not a value */
        return;
    }
    if (begin_value(w) != 0) return;
    put(w, json, len);
    end_value(w);
}

void tide_jsonw_key_string(tide_jsonw *w, const char *key, const char *s, size_t len)
{
    tide_jsonw_key(w, key);
    tide_jsonw_string(w, s, len);
}

void tide_jsonw_key_cstring(tide_jsonw *w, const char *key, const char *s)
{
    tide_jsonw_key(w, key);
    tide_jsonw_cstring(w, s);
}

void tide_jsonw_key_int(tide_jsonw *w, const char *key, long long v)
{
    tide_jsonw_key(w, key);
    tide_jsonw_int(w, v);
}

void tide_jsonw_key_number(tide_jsonw *w, const char *key, double v, int decimals)
{
    tide_jsonw_key(w, key);
    tide_jsonw_number(w, v, decimals);
}

void tide_jsonw_key_bool(tide_jsonw *w, const char *key, int v)
{
    tide_jsonw_key(w, key);
    tide_jsonw_bool(w, v);
}

const char *tide_jsonw_result(tide_jsonw *w, size_t *len)
{
    if (w->error || !w->done || w->depth != 0 || !w->buf) return NULL;
    if (len) *len = w->len;
    return w->buf;
}

int tide_jsonw_error(const tide_jsonw *w) { return w->error; }
