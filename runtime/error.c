/* error.c - messages for tide's error codes. */
#include "error.h"

const char *tide_strerror(int code)
{
    switch (code) {
    case 0: return "ok";
#define TIDE_X_CASE(name, val, msg) \
    case name: return msg;
        TIDE_ERRORS(TIDE_X_CASE)
#undef TIDE_X_CASE
    }
    return "unknown error";
}
