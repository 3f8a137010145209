/* log.c - levelled logs (stderr) and access log (stdout), each one line. */
#include "log.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int min_level = TIDE_LOG_INFO;
static const char *const level_names[] = { "debug", "info", "warn", "error" };

void tide_log_set_level(int level) { min_level = level; }

int tide_log_parse_level(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0) return i;
    return -1;
}

void tide_log(int level, const char *fmt, ...)
{
    if (level < min_level) return;
    char buf[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(buf + n, sizeof buf - (size_t)n, ".%03ldZ %s ", ts.tv_nsec / 1000000,
                  level_names[level & 3]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0) m = 0;
    n += m;
    if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
    /* one line: never let a message smuggle newlines into the log */
    for (int i = 0; i < n; i++)
        if (buf[i] == '\n' || buf[i] == '\r') buf[i] = ' ';
    buf[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, (size_t)n);
    (void)w;
}

static char access_buf[64 * 1024];
static size_t access_len;

void tide_log_flush(void)
{
    size_t off = 0;
    while (off < access_len) {
        ssize_t w = write(STDOUT_FILENO, access_buf + off, access_len - off);
        if (w <= 0) break;             /* a broken log pipe must not stop the server */
        off += (size_t)w;
    }
    access_len = 0;
}

void tide_log_access(const char *line, int len)
{
    if (len < 0) return;
    if ((size_t)len > sizeof access_buf - 1) len = (int)sizeof access_buf - 1;
    if (access_len + (size_t)len + 1 > sizeof access_buf) tide_log_flush();
    memcpy(access_buf + access_len, line, (size_t)len);
    access_len += (size_t)len;
    access_buf[access_len++] = '\n';
}

int tide_json_escape(char *out, int cap, const char *s, int len)
{
    static const char hex[] = "0123456789abcdef";
    int o = 0;
    for (int i = 0; i < len && o < cap - 7; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') { out[o++] = '\\'; out[o++] = (char)c; }
        else if (c < 0x20) {
            out[o++] = '\\'; out[o++] = 'u'; out[o++] = '0'; out[o++] = '0';
            out[o++] = hex[c >> 4]; out[o++] = hex[c & 15];
        } else out[o++] = (char)c;
    }
    out[o] = 0;
    return o;
}

void tide_log_request(const char *id, const char *method, const char *path, size_t path_len,
                      int status, double ms, const char *role, int aborted, const char *cache)
{
    char epath[512], line[900];
    tide_json_escape(epath, sizeof epath, path, (int)(path_len > 400 ? 400 : path_len));
    int n = snprintf(line, sizeof line,
                     "{\"type\":\"access\",\"id\":\"%s\",\"method\":\"%s\",\"path\":\"%s\","
                     "\"status\":%d,\"ms\":%.3f,\"role\":\"%s\"%s%s%s%s}",
                     id, method, epath, status, ms, role, aborted ? ",\"aborted\":true" : "",
                     cache ? ",\"cache\":\"" : "", cache ? cache : "", cache ? "\"" : "");
    if (n > 0) tide_log_access(line, n < (int)sizeof line ? n : (int)sizeof line - 1);
}
