/* test_jsonw.c - the JSON writer: exact output, escaping (every byte string comes back through
 * jansson as it went in, or with U+FFFD for what is not UTF-8), and misuse refused. */
#include "test.h"
#include "../jsonw.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>

/* The result of w as a C string ("(null)" when there is none), w freed. */
static char *take(tide_jsonw *w)
{
    size_t len = 0;
    const char *t = tide_jsonw_result(w, &len);
    char *out = strdup(t ? t : "(null)");
    if (t && strlen(t) != len) {
        free(out);
        out = strdup("(length mismatch)");
    }
    tide_jsonw_free(w);
    return out;
}

#define CHECK_DOC(w, want)                                     \
    do {                                                       \
        char *got_ = take(w);                                  \
        int same_ = strcmp(got_, want) == 0;                   \
        if (!same_) TEST_FAIL_("got %s, want %s", got_, want); \
        free(got_);                                            \
        if (!same_) return;                                    \
    } while (0)

TEST(jsonw_builds_nested_documents)
{
    tide_jsonw w;
    tide_jsonw_init(&w);
    tide_jsonw_object(&w);
    tide_jsonw_key_int(&w, "n", -42);
    tide_jsonw_key_number(&w, "ms", 1.23456, 3);
    tide_jsonw_key_bool(&w, "ok", 1);
    tide_jsonw_key(&w, "list");
    tide_jsonw_array(&w);
    tide_jsonw_int(&w, 1);
    tide_jsonw_cstring(&w, "two");
    tide_jsonw_null(&w);
    tide_jsonw_object(&w);
    tide_jsonw_end(&w);
    tide_jsonw_array(&w);
    tide_jsonw_end(&w);
    tide_jsonw_end(&w);
    tide_jsonw_key_cstring(&w, "none", NULL);
    tide_jsonw_key(&w, "raw");
    tide_jsonw_raw(&w, "{\"a\":[1]}", 9);
    tide_jsonw_key_number(&w, "inf", INFINITY, 3);
    tide_jsonw_key_string(&w, "empty", NULL, 0);
    tide_jsonw_end(&w);
    CHECK_DOC(&w, "{\"n\":-42,\"ms\":1.235,\"ok\":true,\"list\":[1,\"two\",null,{},[]],"
                  "\"none\":null,\"raw\":{\"a\":[1]},\"inf\":null,\"empty\":\"\"}");

    tide_jsonw_init(&w);
    tide_jsonw_cstring(&w, "alone");
    CHECK_DOC(&w, "\"alone\"");
}

TEST(jsonw_escapes_strings)
{
    tide_jsonw w;
    tide_jsonw_init(&w);
    tide_jsonw_object(&w);
    tide_jsonw_key_cstring(&w, "a\"b", "q\" b\\ n\n t\t c\x01 del\x7f");
    tide_jsonw_key_string(&w, "nul", "x\0y", 3);
    /* well-formed UTF-8 stays; a stray continuation byte, an overlong form, a surrogate and a
     * truncated sequence become U+FFFD, each byte alone */
    tide_jsonw_key_cstring(&w, "utf8", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    tide_jsonw_key_cstring(&w, "bad", "\x80|\xc0\xaf|\xed\xa0\x80|\xe2\x82");
    tide_jsonw_end(&w);
    CHECK_DOC(&w, "{\"a\\\"b\":\"q\\\" b\\\\ n\\n t\\t c\\u0001 del\x7f\",\"nul\":\"x\\u0000y\","
                  "\"utf8\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\","
                  "\"bad\":\"\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd\"}");
}

/* Any bytes at all make a document jansson reads back; well-formed UTF-8 comes back as it
 * went in. */
TEST(jsonw_any_bytes_make_valid_json)
{
    srand(7);
    for (int round = 0; round < 5000; round++) {
        unsigned char s[40];
        size_t n = (size_t)(rand() % (int)sizeof s);
        int ascii = round % 2;
        for (size_t i = 0; i < n; i++) s[i] = (unsigned char)(ascii ? rand() % 128 : rand() % 256);
        tide_jsonw w;
        tide_jsonw_init(&w);
        tide_jsonw_object(&w);
        tide_jsonw_key_string(&w, "s", (const char *)s, n);
        tide_jsonw_end(&w);
        size_t len;
        const char *text = tide_jsonw_result(&w, &len);
        CHECK(text != NULL);
        json_error_t err;
        json_t *v = json_loadb(text, len, JSON_ALLOW_NUL, &err);
        if (!v) TEST_FAIL_("round %d: jansson refused %s: %s", round, text, err.text);
        CHECK(v != NULL);
        json_t *js = json_object_get(v, "s");
        CHECK(json_is_string(js));
        if (ascii) {
            CHECK_EQ_INT(json_string_length(js), n);
            CHECK(memcmp(json_string_value(js), s, n) == 0);
        }
        json_decref(v);
        tide_jsonw_free(&w);
    }
}

TEST(jsonw_refuses_misuse)
{
    tide_jsonw w;
    /* a member without its key */
    tide_jsonw_init(&w);
    tide_jsonw_object(&w);
    tide_jsonw_int(&w, 1);
    tide_jsonw_end(&w);
    CHECK_EQ_INT(tide_jsonw_error(&w), TIDE_EINVAL);
    CHECK_DOC(&w, "(null)");
    /* a key in an array, a key without a value, an end with nothing open */
    tide_jsonw_init(&w);
    tide_jsonw_array(&w);
    tide_jsonw_key(&w, "k");
    CHECK_EQ_INT(tide_jsonw_error(&w), TIDE_EINVAL);
    tide_jsonw_free(&w);
    tide_jsonw_init(&w);
    tide_jsonw_object(&w);
    tide_jsonw_key(&w, "k");
    tide_jsonw_end(&w);
    CHECK_EQ_INT(tide_jsonw_error(&w), TIDE_EINVAL);
    tide_jsonw_free(&w);
    tide_jsonw_init(&w);
    tide_jsonw_end(&w);
    CHECK_DOC(&w, "(null)");
    /* a second top-level value; something left open */
    tide_jsonw_init(&w);
    tide_jsonw_int(&w, 1);
    tide_jsonw_int(&w, 2);
    CHECK_DOC(&w, "(null)");
    tide_jsonw_init(&w);
    tide_jsonw_array(&w);
    CHECK_DOC(&w, "(null)");
    /* nesting: TIDE_JSONW_MAX_DEPTH levels, not one more */
    tide_jsonw_init(&w);
    for (int i = 0; i < TIDE_JSONW_MAX_DEPTH; i++) tide_jsonw_array(&w);
    for (int i = 0; i < TIDE_JSONW_MAX_DEPTH; i++) tide_jsonw_end(&w);
    CHECK(tide_jsonw_result(&w, NULL) != NULL);
    tide_jsonw_free(&w);
    tide_jsonw_init(&w);
    for (int i = 0; i <= TIDE_JSONW_MAX_DEPTH; i++) tide_jsonw_array(&w);
    CHECK_EQ_INT(tide_jsonw_error(&w), TIDE_EINVAL);
    tide_jsonw_free(&w);
    /* nothing written */
    tide_jsonw_init(&w);
    CHECK_DOC(&w, "(null)");
}

TEST_LIST_BEGIN
TEST_ENTRY(jsonw_builds_nested_documents)
TEST_ENTRY(jsonw_escapes_strings)
TEST_ENTRY(jsonw_any_bytes_make_valid_json)
TEST_ENTRY(jsonw_refuses_misuse)
TEST_LIST_END
