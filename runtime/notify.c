/* notify.c - sd_notify(3)'s protocol, the part tide needs: one datagram per notification to
 * $NOTIFY_SOCKET on a socket opened and closed for it (notifications come at start, on reload,
 * at stop and every few seconds for the watchdog: no descriptor is worth keeping open for
 * them). */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define STATUS_MAX 200

int tide_notify(const char *state)
{
    const char *name = getenv("NOTIFY_SOCKET");
    if (!name || !*name) return 0;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t len = strlen(name);
    if ((name[0] != '/' && name[0] != '@') || len < 2 || len >= sizeof sa.sun_path)
        return TIDE_EINVAL;
    memcpy(sa.sun_path, name, len);
    if (name[0] == '@') sa.sun_path[0] = '\0'; /* abstract: no terminating NUL */
    socklen_t salen =
        (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (name[0] == '/' ? 1 : 0));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return TIDE_EIO;
    ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    int saved = errno;
    close(fd);
    errno = saved;
    return n == (ssize_t)strlen(state) ? 0 : TIDE_EIO;
}

/* Sends head, then "STATUS=<status>" when status is given (made one line, cut). */
static int send_with_status(const char *head, const char *status)
{
    char msg[512];
    int n = snprintf(msg, sizeof msg, "%s", head);
    if (status) {
        n += snprintf(msg + n, sizeof msg - (size_t)n, "%sSTATUS=", n > 0 ? "\n" : "");
        for (size_t i = 0; i < STATUS_MAX && status[i] && n < (int)sizeof msg - 1; i++)
            msg[n++] = status[i] == '\n' || status[i] == '\r' ? ' ' : status[i];
        msg[n] = '\0';
    }
    return tide_notify(msg);
}

int tide_notify_ready(const char *status) { return send_with_status("READY=1", status); }

int tide_notify_reloading(const char *status)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char head[96];
    snprintf(head, sizeof head, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    return send_with_status(head, status);
}

int tide_notify_stopping(const char *status) { return send_with_status("STOPPING=1", status); }

int tide_notify_status(const char *status) { return send_with_status("", status ? status : ""); }

int tide_notify_watchdog(void) { return tide_notify("WATCHDOG=1"); }

unsigned long long tide_notify_watchdog_usec(void)
{
    const char *pid = getenv("WATCHDOG_PID");
    if (pid && *pid) {
        char *end;
        errno = 0;
        long long p = strtoll(pid, &end, 10);
        if (errno || *end || p != (long long)getpid()) return 0;
    }
    const char *usec = getenv("WATCHDOG_USEC");
    if (!usec || !*usec) return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(usec, &end, 10);
    if (errno || *end || usec[0] == '-') return 0;
    return v;
}
