/* util.h - the few macros every module may need. */
#ifndef TIDE_UTIL_H
#define TIDE_UTIL_H

#include <stddef.h>

/* The struct of type `type` whose member `member` is at ptr (libev watchers and pool jobs are
 * embedded in their owners and recovered this way). */
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

#endif
