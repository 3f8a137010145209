/* test_notify.c - the sd_notify protocol as systemd receives it: a datagram socket bound in a
 * temporary directory (and one in the abstract namespace, NOTIFY_SOCKET="@name") gets exactly
 * the lines each call sends; RELOADING carries the monotonic clock in microseconds; statuses
 * are one line; without NOTIFY_SOCKET nothing is sent and nothing fails; a bad address is
 * refused; the watchdog interval is read from WATCHDOG_USEC (and WATCHDOG_PID). */
#include "test.h"
#include "../notify.h"

#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static char dir[64];
static char path[128];

/* A bound datagram socket: at path when abstract is 0, else at "\0name". Returns the fd. */
static int listen_at(const char *name, int abstract)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t len = strlen(name);
    socklen_t salen;
    if (abstract) {
        memcpy(sa.sun_path + 1, name, len);
        salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
    } else {
        memcpy(sa.sun_path, name, len);
        salen = (socklen_t)sizeof sa;
    }
    if (bind(fd, (struct sockaddr *)&sa, salen) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The next datagram on fd (already queued: unix datagrams are delivered by sendto itself),
 * as a string in buf; "" when none is waiting. */
static const char *next_message(int fd, char *buf, size_t cap)
{
    ssize_t n = recv(fd, buf, cap - 1, MSG_DONTWAIT);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static int setup_path_socket(void)
{
    snprintf(dir, sizeof dir, "/tmp/tide-notify.XXXXXX");
    if (!mkdtemp(dir)) return -1;
    snprintf(path, sizeof path, "%s/notify.sock", dir);
    int fd = listen_at(path, 0);
    if (fd >= 0) setenv("NOTIFY_SOCKET", path, 1);
    return fd;
}

static void teardown_path_socket(int fd)
{
    if (fd >= 0) close(fd);
    unlink(path);
    rmdir(dir);
    unsetenv("NOTIFY_SOCKET");
}

static unsigned long long monotonic_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
}

static void check_path_messages(int fd)
{
    char buf[1024];
    CHECK_EQ_INT(tide_notify_ready("serving 23 routes"), 0);
    CHECK_STR(next_message(fd, buf, sizeof buf), "READY=1\nSTATUS=serving 23 routes");
    CHECK_EQ_INT(tide_notify_ready(NULL), 0);
    CHECK_STR(next_message(fd, buf, sizeof buf), "READY=1");
    CHECK_EQ_INT(tide_notify_stopping("draining: 2 requests in flight"), 0);
    CHECK_STR(next_message(fd, buf, sizeof buf),
              "STOPPING=1\nSTATUS=draining: 2 requests in flight");
    CHECK_EQ_INT(tide_notify_status("reload rejected:\nline 2\r\n"), 0);
    CHECK_STR(next_message(fd, buf, sizeof buf), "STATUS=reload rejected: line 2  ");
    CHECK_EQ_INT(tide_notify_watchdog(), 0);
    CHECK_STR(next_message(fd, buf, sizeof buf), "WATCHDOG=1");
    CHECK_STR(next_message(fd, buf, sizeof buf), ""); /* one datagram per call */

    unsigned long long before = monotonic_usec();
    CHECK_EQ_INT(tide_notify_reloading("reloading"), 0);
    unsigned long long after = monotonic_usec();
    next_message(fd, buf, sizeof buf);
    unsigned long long usec = 0;
    char status[64] = "";
    CHECK_EQ_INT(sscanf(buf, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=%63[^\n]", &usec, status),
                 2);
    CHECK(usec >= before && usec <= after);
    CHECK_STR(status, "reloading");

    /* a long status is cut, never split into another line */
    char longer[400];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    CHECK_EQ_INT(tide_notify_status(longer), 0);
    CHECK_EQ_INT(strlen(next_message(fd, buf, sizeof buf)), strlen("STATUS=") + 200);
}

TEST(path_socket_gets_each_message)
{
    int fd = setup_path_socket();
    CHECK(fd >= 0);
    check_path_messages(fd);
    teardown_path_socket(fd);
}

TEST(abstract_socket)
{
    char name[64], env[80], buf[256];
    snprintf(name, sizeof name, "tide-test-notify-%ld-%ld", (long)getpid(), (long)time(NULL));
    int fd = listen_at(name, 1);
    CHECK(fd >= 0);
    snprintf(env, sizeof env, "@%s", name);
    setenv("NOTIFY_SOCKET", env, 1);
    int rc = tide_notify_ready("up");
    unsetenv("NOTIFY_SOCKET");
    next_message(fd, buf, sizeof buf);
    close(fd);
    CHECK_EQ_INT(rc, 0);
    CHECK_STR(buf, "READY=1\nSTATUS=up");
}

TEST(no_socket_is_a_noop)
{
    unsetenv("NOTIFY_SOCKET");
    CHECK_EQ_INT(tide_notify_ready("x"), 0);
    CHECK_EQ_INT(tide_notify_reloading(NULL), 0);
    CHECK_EQ_INT(tide_notify_stopping(NULL), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    CHECK_EQ_INT(tide_notify_ready("x"), 0);
    unsetenv("NOTIFY_SOCKET");
}

TEST(bad_addresses_are_errors)
{
    setenv("NOTIFY_SOCKET", "relative/notify.sock", 1);
    CHECK_EQ_INT(tide_notify_ready(NULL), TIDE_EINVAL);
    setenv("NOTIFY_SOCKET", "@", 1);
    CHECK_EQ_INT(tide_notify_ready(NULL), TIDE_EINVAL);
    char huge[200];
    memset(huge, 'a', sizeof huge - 1);
    huge[0] = '/';
    huge[sizeof huge - 1] = '\0';
    setenv("NOTIFY_SOCKET", huge, 1);
    CHECK_EQ_INT(tide_notify_ready(NULL), TIDE_EINVAL);
    /* nobody listening there: the send fails, and says so */
    setenv("NOTIFY_SOCKET", "/nonexistent-dir-for-tide/notify.sock", 1);
    CHECK_EQ_INT(tide_notify_ready(NULL), TIDE_EIO);
    CHECK(errno == ENOENT);
    unsetenv("NOTIFY_SOCKET");
}

/* WatchdogSec=: $WATCHDOG_USEC, for this process only when $WATCHDOG_PID says so. */
TEST(watchdog_interval_from_the_environment)
{
    char me[32], other[32];
    snprintf(me, sizeof me, "%d", (int)getpid());
    snprintf(other, sizeof other, "%d", (int)getpid() + 1);
    unsetenv("WATCHDOG_PID");
    unsetenv("WATCHDOG_USEC");
    unsigned long long none = tide_notify_watchdog_usec();
    setenv("WATCHDOG_USEC", "10000000", 1);
    unsigned long long any = tide_notify_watchdog_usec();
    setenv("WATCHDOG_PID", me, 1);
    unsigned long long mine = tide_notify_watchdog_usec();
    setenv("WATCHDOG_PID", other, 1);
    unsigned long long theirs = tide_notify_watchdog_usec();
    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "10s", 1);
    unsigned long long junk = tide_notify_watchdog_usec();
    setenv("WATCHDOG_USEC", "-5", 1);
    unsigned long long negative = tide_notify_watchdog_usec();
    unsetenv("WATCHDOG_USEC");
    CHECK_EQ_INT(none, 0);
    CHECK_EQ_INT(any, 10000000);
    CHECK_EQ_INT(mine, 10000000);
    CHECK_EQ_INT(theirs, 0);
    CHECK_EQ_INT(junk, 0);
    CHECK_EQ_INT(negative, 0);
}

TEST_LIST_BEGIN
TEST_ENTRY(path_socket_gets_each_message)
TEST_ENTRY(abstract_socket)
TEST_ENTRY(no_socket_is_a_noop)
TEST_ENTRY(bad_addresses_are_errors)
TEST_ENTRY(watchdog_interval_from_the_environment)
TEST_LIST_END
