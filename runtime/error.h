/* error.h - tide's error codes: one X-macro table, one tide_strerror().
 * Functions return 0 on success or a negative TIDE_E* code. */
#ifndef TIDE_ERROR_H
#define TIDE_ERROR_H

#define TIDE_ERRORS(X)                                    \
    X(TIDE_ENOMEM, -1, "out of memory")                   \
    X(TIDE_EINVAL, -2, "invalid argument")                \
    X(TIDE_EIO, -3, "i/o error")                          \
    X(TIDE_ECONN, -5, "connection failed")                \
    X(TIDE_EPARSE, -6, "parse error")                     \
    X(TIDE_ETOOBIG, -7, "too large")                      \
    X(TIDE_EAUTH, -8, "authentication failed")            \
    X(TIDE_EEXPIRED, -9, "token expired")                 \
    X(TIDE_ENOTYET, -10, "token not yet valid")           \
    X(TIDE_EALG, -11, "unsupported token algorithm")      \
    X(TIDE_EROLE, -12, "role not allowed")                \
    X(TIDE_ELUA, -13, "lua error")                        \
    X(TIDE_EBUSY, -14, "resource busy")                   \
    X(TIDE_ECLOSED, -15, "closed")                        \
    X(TIDE_EAGAIN, -16, "try again later")                \
    X(TIDE_ENOEXP, -17, "token has no exp claim")         \
    X(TIDE_EAUDIENCE, -18, "token audience not accepted") \
    X(TIDE_EISSUER, -19, "token issuer not accepted")

enum tide_error {
#define TIDE_X_ENUM(name, val, msg) name = val,
    TIDE_ERRORS(TIDE_X_ENUM)
#undef TIDE_X_ENUM
};

/* Returns a static message for a TIDE_E* code (or "unknown error"). */
const char *tide_strerror(int code);

#define TIDE_MUST_CHECK __attribute__((warn_unused_result))

#endif
