/*
 * test_http_guard.c — the abuse guards of src/http/ on their own:
 * fa_http_log_escape (access-log text) and the connection list with its
 * read-deadline reaper (conns.c).
 *
 * The reaper is driven with real sockets: a socketpair stands for a client
 * connection, the list gets one end, and the test watches the other end
 * see the end of the stream when the deadline passes (and not before).
 * The server-level behaviour (MHD, real clients) is in tests/e2e/test_abuse.py.
 */
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/conns.h"
#include "http/escape.h"
#include "tap.h"

/* ---- log escaping -------------------------------------------------------- */

static void esc_is(const char *in, size_t cap, const char *want, const char *name)
{
    char out[256];
    fa_http_log_escape(in, out, cap);
    tap_ok(strcmp(out, want) == 0, "%s: got '%s'", name, out);
}

static void test_escape(void)
{
    esc_is("/api/v1/basic/login", 256, "/api/v1/basic/login", "plain path unchanged");
    esc_is("/a\n2026-01-01T00:00:00Z 1.2.3.4 GET /x 200", 256,
           "/a\\x0a2026-01-01T00:00:00Z\\x201.2.3.4\\x20GET\\x20/x\\x20200",
           "newline and spaces escaped: no forged line or field");
    esc_is("/\x1b[31mred\x7f", 256, "/\\x1b[31mred\\x7f", "ESC and DEL escaped");
    esc_is("/caf\xc3\xa9\\", 256, "/caf\\xc3\\xa9\\x5c", "bytes >= 0x80 and the backslash");
    esc_is(NULL, 256, "-", "NULL is '-'");
    esc_is("abcdefghij", 11, "abcdefghij", "exactly fits: not cut");
    esc_is("abcdefghijk", 11, "abcdefg...", "too long: cut with ...");
    esc_is("abcde\nfghij", 11, "abcde...", "never cuts inside an escape");
    esc_is("abc", 1, "", "cap 1: empty string");
}

/* ---- the read deadline --------------------------------------------------- */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* 1 when the peer end sees the stream closed within ms. */
static int closed_within(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    char b;
    if (poll(&p, 1, ms) <= 0)
        return 0;
    return read(fd, &b, 1) == 0;
}

static void test_deadline(void)
{
    int a[2], b[2], c[2];
    double ms = 0;
    struct fa_http_conns *cs = fa_http_conns_start(300, 1000);
    struct fa_http_conn *ca, *cb, *cc;
    if (!tap_ok(cs != NULL, "conns start with a reaper") ||
        socketpair(AF_UNIX, SOCK_STREAM, 0, a) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, b) != 0 ||
        socketpair(AF_UNIX, SOCK_STREAM, 0, c) != 0)
        return;
    ca = fa_http_conns_add(cs, a[0]); /* sends nothing: headers never come */
    cb = fa_http_conns_add(cs, b[0]); /* fully read at once, then slow to answer */
    cc = fa_http_conns_add(cs, c[0]); /* body at 2000 B/s, twice the rate that extends */
    fa_http_conn_begin(cs, cb);
    fa_http_conn_read_done(cs, cb);
    fa_http_conn_begin(cs, cc);
    tap_ok(!closed_within(a[1], 150), "before the deadline the connection stays open");
    for (int i = 0; i < 6; i++) {
        fa_http_conn_body(cs, cc, 200);
        sleep_ms(100);
    }
    tap_ok(closed_within(a[1], 1000), "a connection whose request never arrived is shut down");
    tap_ok(!closed_within(b[1], 10), "a request being answered has no read deadline");
    tap_ok(!closed_within(c[1], 10), "a body arriving at min_body_rate keeps its connection "
                                     "past the base deadline");
    tap_ok(closed_within(c[1], 2500), "once the body stops, the extended deadline passes too");
    tap_ok(fa_http_conns_remove(cs, ca, &ms) == 1 && ms >= 300,
           "dropped before any request reached the handler: remove says so (%.0f ms)", ms);
    tap_ok(fa_http_conn_next(cs, cc) == 1, "next() reports a request whose connection was "
                                           "dropped (the log says 408)");
    tap_ok(fa_http_conns_remove(cs, cc, &ms) == 0, "dropped with a request: logged there, not "
                                                    "again");
    /* Kept alive: the answer is sent, the next request's deadline starts now. */
    tap_ok(fa_http_conn_next(cs, cb) == 0, "an answered connection was not dropped");
    tap_ok(!closed_within(b[1], 150) && closed_within(b[1], 1000),
           "a kept-alive connection idle past the deadline is shut down");
    fa_http_conns_remove(cs, cb, &ms);
    fa_http_conns_stop(cs);
    fa_http_conns_free(cs);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
        close(c[i]);
    }
}

/* The request line restarts the clock: a kept-alive connection idle for
 * most of the deadline still gets all of it for its next request. */
static void test_request_line(void)
{
    int p[2];
    double ms = 0;
    struct fa_http_conns *cs = fa_http_conns_start(300, 0);
    struct fa_http_conn *c;
    if (cs == NULL || socketpair(AF_UNIX, SOCK_STREAM, 0, p) != 0)
        return;
    c = fa_http_conns_add(cs, p[0]);
    sleep_ms(200);
    fa_http_conn_request_line(cs, c);
    tap_ok(!closed_within(p[1], 200), "the request line gives headers and body a fresh deadline");
    tap_ok(closed_within(p[1], 1000), "which passes in turn when they do not come");
    fa_http_conns_remove(cs, c, &ms);
    fa_http_conns_stop(cs);
    fa_http_conns_free(cs);
    close(p[0]);
    close(p[1]);
}

static void test_no_deadline(void)
{
    int p[2];
    double ms = 0;
    struct fa_http_conns *cs = fa_http_conns_start(0, 0);
    struct fa_http_conn *c;
    if (!tap_ok(cs != NULL, "conns without a deadline start") ||
        socketpair(AF_UNIX, SOCK_STREAM, 0, p) != 0)
        return;
    c = fa_http_conns_add(cs, p[0]);
    tap_ok(!closed_within(p[1], 300), "read_timeout_ms 0: no connection is ever shut down");
    tap_ok(fa_http_conns_remove(cs, c, &ms) == 0, "and none counts as dropped");
    tap_ok(fa_http_conns_remove(cs, NULL, &ms) == 0, "remove(NULL) is a no-op");
    fa_http_conn_begin(cs, NULL);
    fa_http_conn_body(cs, NULL, 1);
    fa_http_conn_read_done(cs, NULL);
    tap_ok(fa_http_conn_next(cs, NULL) == 0, "the other calls accept a NULL connection");
    fa_http_conns_stop(cs);
    fa_http_conns_free(cs);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    test_escape();
    test_deadline();
    test_request_line();
    test_no_deadline();
    return tap_done();
}
