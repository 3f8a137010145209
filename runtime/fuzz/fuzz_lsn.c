/* fuzz_lsn.c - libFuzzer target for the WAL positions clients send back (Tide-LSN, parsed by
 * runtime/lsn.c at admission) and the callers' write memo they floor.
 *
 * Input: the bytes of a header value. Invariants checked on every input (abort() on one):
 *   - tide_lsn_parse accepts exactly "X/Y" with 1-8 hex digits a half (checked here by a
 *     second, naive reading), leaves its output untouched on refusal, and what it accepts
 *     formats back to the same value (case and leading zeros aside);
 *   - the memo keeps the highest position put under a key while it lasts, and its entry count
 *     never passes TIDE_MEMO_SLOTS.
 * Bound: the parser reads each byte once (at most 17 are ever accepted). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsn.h"

static int hex(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The rule, read naively. */
static int well_formed(const uint8_t *d, size_t n)
{
    size_t slash = n;
    for (size_t i = 0; i < n; i++)
        if (d[i] == '/') {
            if (slash != n) return 0;
            slash = i;
        } else if (!hex(d[i])) {
            return 0;
        }
    return slash != n && slash >= 1 && slash <= 8 && n - slash - 1 >= 1 && n - slash - 1 <= 8;
}

static tide_lsn_memo *memo;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!memo && !(memo = tide_lsn_memo_new())) abort();
    tide_lsn l = 0x5a5a5a5a5a5a5a5aull;
    int rc = tide_lsn_parse((const char *)data, size, &l);
    if ((rc == 0) != well_formed(data, size)) abort();
    if (rc != 0) {
        if (l != 0x5a5a5a5a5a5a5a5aull) abort();
        return 0;
    }
    char text[TIDE_LSN_TEXT];
    int n = tide_lsn_format(l, text);
    tide_lsn back = 0;
    if (n <= 0 || n >= TIDE_LSN_TEXT || tide_lsn_parse(text, (size_t)n, &back) != 0 || back != l)
        abort();
    /* the memo under a key made of the input */
    char key[64];
    int klen = tide_lsn_memo_key("authenticated", text, key, sizeof key);
    if (klen <= 0) abort();
    tide_lsn_memo_put(memo, key, (size_t)klen, l, 0, 10);
    tide_lsn_memo_put(memo, key, (size_t)klen, l / 2, 1, 10);
    if (tide_lsn_memo_get(memo, key, (size_t)klen, 2) < l) abort();
    if (tide_lsn_memo_get(memo, key, (size_t)klen, 11) != 0) abort();
    if (tide_lsn_memo_count(memo) > TIDE_MEMO_SLOTS) abort();
    return 0;
}
