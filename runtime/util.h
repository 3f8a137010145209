/* util.h - the few macros every module may need. */
#ifndef TIDE_UTIL_H
#define TIDE_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* The struct of type `type` whose member `member` is at ptr (libev watchers and pool jobs are
 * embedded in their owners and recovered this way). */
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* FNV-1a of n bytes, starting from seed ^ the FNV offset basis: for hash tables whose keys are
 * compared in full (not for keys a client could aim at one bucket: cache.c uses SipHash). */
static inline uint64_t tide_fnv1a(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL ^ seed;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

/* Writes v in decimal at out (room for 20 digits, no NUL) and returns the digit count: the
 * per-request paths' alternative to printf. */
static inline int tide_utoa(unsigned long long v, char out[20])
{
    char tmp[20];
    int i = (int)sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    int n = (int)sizeof tmp - i;
    for (int k = 0; k < n; k++) out[k] = tmp[i + k];
    return n;
}

#endif
