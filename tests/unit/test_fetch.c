/*
 * test_fetch.c — fa_fetch_image against a real HTTP server on 127.0.0.1.
 *
 * The server lives in this file: plain sockets and pthreads, one thread that
 * accepts and one per connection that reads a request, answers from a fixed
 * route table and closes (Connection: close). Every redirect hop is
 * therefore a new connection that goes through the address guard again.
 * Shutdown writes a byte into a pipe that every poll() also watches, so the
 * /slow handler ends as soon as curl gives up or the test ends.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "faceauth/config.h"
#include "faceauth/fetch.h"
#include "tap.h"

#define SRV_MAX_CONN 128
#define SRV_READ_MS 2000
#define SRV_SLOW_MS 5000
#define BIG_BYTES (256 * 1024)
#define TEST_CAP (64 * 1024)
#define URL_MAX 512

struct srv {
    int listen_fd;
    int stop[2]; /* written once at shutdown; never read, so it stays readable */
    int port;
    pthread_t acceptor;
    pthread_t conns[SRV_MAX_CONN];
    int n_conns; /* written by the acceptor only, read by main after joining it */
    atomic_int accepted;
};

struct srv_conn {
    struct srv *srv;
    int fd;
};

/* Enough of a JPEG to pass the magic check: SOI, APP0 "JFIF", EOI. */
static const uint8_t jpeg_body[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J',  'F',
                                    'I',  'F',  0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
                                    0x00, 0x01, 0x00, 0x00, 0xFF, 0xD9};
static const char html_body[] = "<html><body>secret-body-marker</body></html>";

/* ---- the server ---------------------------------------------------------- */

static int send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t k = send(fd, p, len, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1; /* the client hung up, which several tests make it do */
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

static void srv_reply(int fd, const char *status, const char *headers, const void *body,
                      size_t len, int with_length)
{
    char head[512];
    int k;

    if (with_length)
        k = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
                     headers, len);
    else
        k = snprintf(head, sizeof head, "HTTP/1.1 %s\r\n%sConnection: close\r\n\r\n", status,
                     headers);
    if (k < 0 || (size_t)k >= sizeof head || send_all(fd, head, (size_t)k) != 0)
        return;
    send_all(fd, body, len);
}

static void srv_redirect(struct srv *s, int fd, const char *status, const char *location)
{
    char headers[256];
    snprintf(headers, sizeof headers, "Location: %s\r\nContent-Type: text/plain\r\n", location);
    (void)s;
    /* A body on the redirect checks that it never leaks into the image. */
    srv_reply(fd, status, headers, "moved", 5, 1);
}

/* Wait until the client sends or hangs up, the server stops, or ms pass. */
static void srv_wait(struct srv *s, int fd, int ms)
{
    struct pollfd p[2] = {{fd, POLLIN, 0}, {s->stop[0], POLLIN, 0}};
    while (poll(p, 2, ms) < 0 && errno == EINTR)
        ;
}

static void srv_big(int fd, int with_length)
{
    uint8_t *body = malloc(BIG_BYTES);
    if (body == NULL)
        return;
    memset(body, 'x', BIG_BYTES);
    memcpy(body, jpeg_body, 4); /* looks like an image: only the size is wrong */
    srv_reply(fd, "200 OK", "Content-Type: image/jpeg\r\n", body, BIG_BYTES, with_length);
    free(body);
}

static void srv_route(struct srv *s, int fd, const char *path)
{
    char loc[128];
    int hop;

    if (strcmp(path, "/img.jpg") == 0) {
        srv_reply(fd, "200 OK", "Content-Type: image/jpeg\r\n", jpeg_body, sizeof jpeg_body, 1);
    } else if (strcmp(path, "/big") == 0 || strcmp(path, "/big-nolen") == 0) {
        srv_big(fd, strcmp(path, "/big") == 0);
    } else if (strcmp(path, "/slow") == 0) {
        srv_wait(s, fd, SRV_SLOW_MS);
        srv_reply(fd, "200 OK", "Content-Type: image/jpeg\r\n", jpeg_body, sizeof jpeg_body, 1);
    } else if (strcmp(path, "/text") == 0) {
        srv_reply(fd, "200 OK", "Content-Type: text/html\r\n", html_body, sizeof html_body - 1, 1);
    } else if (strcmp(path, "/empty") == 0) {
        srv_reply(fd, "200 OK", "Content-Type: image/jpeg\r\n", "", 0, 1);
    } else if (sscanf(path, "/redir%d", &hop) == 1 && hop >= 1 && hop <= 4) {
        if (hop == 4)
            snprintf(loc, sizeof loc, "/img.jpg");
        else
            snprintf(loc, sizeof loc, "/redir%d", hop + 1);
        srv_redirect(s, fd, "302 Found", loc);
    } else if (strcmp(path, "/redir-ftp") == 0) {
        snprintf(loc, sizeof loc, "ftp://127.0.0.1:%d/img.jpg", s->port);
        srv_redirect(s, fd, "302 Found", loc);
    } else if (strcmp(path, "/redir-to-img") == 0) {
        snprintf(loc, sizeof loc, "http://127.0.0.1:%d/img.jpg", s->port);
        srv_redirect(s, fd, "301 Moved Permanently", loc);
    } else {
        srv_reply(fd, "404 Not Found", "Content-Type: text/plain\r\n", "not here", 8, 1);
    }
}

/* Read one request head and return its path; -1 when none came. */
static int srv_read_request(struct srv *s, int fd, char *path, size_t cap)
{
    char buf[4096];
    size_t len = 0;
    char fmt[32];

    while (len < sizeof buf - 1) {
        ssize_t k;
        srv_wait(s, fd, SRV_READ_MS);
        k = recv(fd, buf + len, sizeof buf - 1 - len, MSG_DONTWAIT);
        if (k <= 0)
            return -1;
        len += (size_t)k;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL)
            break;
    }
    snprintf(fmt, sizeof fmt, "GET %%%zus ", cap - 1);
    return sscanf(buf, fmt, path) == 1 ? 0 : -1;
}

static void *srv_conn_main(void *arg)
{
    struct srv_conn *c = arg;
    char path[256];

    if (srv_read_request(c->srv, c->fd, path, sizeof path) == 0)
        srv_route(c->srv, c->fd, path);
    close(c->fd);
    free(c);
    return NULL;
}

static void srv_spawn(struct srv *s, int fd)
{
    struct srv_conn *c = malloc(sizeof *c);
    if (c == NULL) {
        close(fd);
        return;
    }
    c->srv = s;
    c->fd = fd;
    if (s->n_conns < SRV_MAX_CONN &&
        pthread_create(&s->conns[s->n_conns], NULL, srv_conn_main, c) == 0)
        s->n_conns++;
    else
        srv_conn_main(c); /* out of slots: answer inline */
}

static void *srv_accept_main(void *arg)
{
    struct srv *s = arg;
    for (;;) {
        struct pollfd p[2] = {{s->listen_fd, POLLIN, 0}, {s->stop[0], POLLIN, 0}};
        int fd;
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents != 0)
            break;
        fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        atomic_fetch_add(&s->accepted, 1);
        srv_spawn(s, fd);
    }
    return NULL;
}

/* A TCP socket bound to 127.0.0.1 on an ephemeral port; *port gets it. */
static int bind_loopback(int *port)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static int srv_start(struct srv *s)
{
    memset(s, 0, sizeof *s);
    atomic_init(&s->accepted, 0);
    s->listen_fd = bind_loopback(&s->port);
    if (s->listen_fd < 0 || listen(s->listen_fd, 64) != 0 || pipe(s->stop) != 0)
        return -1;
    return pthread_create(&s->acceptor, NULL, srv_accept_main, s) == 0 ? 0 : -1;
}

static void srv_stop(struct srv *s)
{
    int i;
    if (write(s->stop[1], "x", 1) != 1)
        tap_diag("could not signal the server to stop");
    pthread_join(s->acceptor, NULL);
    for (i = 0; i < s->n_conns; i++)
        pthread_join(s->conns[i], NULL);
    close(s->listen_fd);
    close(s->stop[0]);
    close(s->stop[1]);
}

/* ---- helpers -------------------------------------------------------------- */

static struct srv g_srv;

static void url_of(char *out, size_t cap, const char *host, const char *path)
{
    snprintf(out, cap, "http://%s:%d%s", host, g_srv.port, path);
}

static struct fa_fetch_opts test_opts(int allow_private)
{
    struct fa_fetch_opts o;
    fa_fetch_opts_default(&o);
    o.max_bytes = TEST_CAP;
    o.timeout_ms = 3000;
    o.connect_timeout_ms = 2000;
    o.allow_private = allow_private;
    return o;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One fetch that must fail with want and a message containing needle. */
static void expect_fail(const char *name, const char *url, const struct fa_fetch_opts *o,
                        enum fa_rc want, const char *needle)
{
    struct fa_err err = {{0}};
    uint8_t *bytes = (uint8_t *)"sentinel";
    size_t n = 7;
    enum fa_rc rc = fa_fetch_image(url, o, &bytes, &n, &err);

    if (!tap_ok(rc == want, "%s: %s", name, fa_rc_name(want)))
        tap_diag("got %s", fa_rc_name(rc));
    tap_diag("  %s", err.msg);
    tap_ok(bytes == NULL && n == 0, "%s: no bytes on error", name);
    if (needle != NULL && !tap_ok(strstr(err.msg, needle) != NULL, "%s: message has \"%s\"", name,
                                  needle))
        tap_diag("message: %s", err.msg);
    if (rc == FA_OK)
        free(bytes);
}

/* One fetch that must bring exactly jpeg_body. */
static void expect_jpeg(const char *name, const char *url, const struct fa_fetch_opts *o)
{
    struct fa_err err = {{0}};
    uint8_t *bytes = NULL;
    size_t n = 0;
    enum fa_rc rc = fa_fetch_image(url, o, &bytes, &n, &err);

    if (!tap_ok(rc == FA_OK, "%s: OK", name))
        tap_diag("got %s: %s", fa_rc_name(rc), err.msg);
    tap_ok(n == sizeof jpeg_body && bytes != NULL && memcmp(bytes, jpeg_body, n) == 0,
           "%s: body is exactly the image (%zu bytes)", name, n);
    free(bytes);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_defaults(void)
{
    struct fa_fetch_opts o;
    fa_fetch_opts_default(&o);
    TAP_OK(o.max_bytes == 10u * 1024 * 1024);
    TAP_OK(o.timeout_ms == 10000 && o.connect_timeout_ms == 5000);
    TAP_OK(o.max_redirects == 3 && o.allow_private == 0);

    /* The server's options are the config's image-URL settings. */
    struct fa_config cfg;
    fa_config_defaults(&cfg);
    cfg.max_image_bytes = 4096;
    cfg.fetch_timeout_ms = 700;
    cfg.max_redirects = 1;
    cfg.allow_private_urls = 1;
    fa_fetch_opts_from_config(&cfg, &o);
    TAP_OK(o.max_bytes == 4096 && o.timeout_ms == 700 && o.max_redirects == 1 &&
           o.allow_private == 1 && o.connect_timeout_ms == 5000);
}

/* The one refusal text for private addresses and names that do not resolve. */
#define NOT_ALLOWED "url: the image host is unknown or not allowed: "

/* A refusal names neither the resolved address nor anything beyond the URL
 * the client sent: the text is NOT_ALLOWED followed by the URL itself. */
static void expect_no_address(const char *name, const char *url, const struct fa_fetch_opts *o)
{
    struct fa_err err = {{0}};
    uint8_t *bytes = NULL;
    size_t n = 0;
    char want[URL_MAX + 64];

    fa_fetch_image(url, o, &bytes, &n, &err);
    free(bytes);
    snprintf(want, sizeof want, "%s%s", NOT_ALLOWED, url);
    if (!tap_ok(strcmp(err.msg, want) == 0, "%s: message is the generic refusal only", name))
        tap_diag("message: %s", err.msg);
}

static void test_guard(void)
{
    struct fa_fetch_opts open = test_opts(1), guarded = test_opts(0);
    char url[URL_MAX];
    int before;

    url_of(url, sizeof url, "127.0.0.1", "/img.jpg");
    expect_jpeg("loopback allowed", url, &open);

    before = atomic_load(&g_srv.accepted);
    expect_fail("loopback refused", url, &guarded, FA_EFORBIDDEN, NOT_ALLOWED);
    url_of(url, sizeof url, "localhost", "/img.jpg");
    expect_fail("localhost refused", url, &guarded, FA_EFORBIDDEN, NOT_ALLOWED);
    expect_no_address("localhost refused", url, &guarded);
    snprintf(url, sizeof url, "http://2130706433:%d/img.jpg", g_srv.port);
    expect_fail("decimal 127.0.0.1 refused", url, &guarded, FA_EFORBIDDEN, NOT_ALLOWED);
    expect_no_address("decimal 127.0.0.1 refused", url, &guarded);
    snprintf(url, sizeof url, "http://[::ffff:127.0.0.1]:%d/img.jpg", g_srv.port);
    expect_fail("mapped v6 loopback refused", url, &guarded, FA_EFORBIDDEN, NOT_ALLOWED);
    snprintf(url, sizeof url, "http://[::1]:%d/img.jpg", g_srv.port);
    expect_fail("v6 loopback refused", url, &guarded, FA_EFORBIDDEN, NOT_ALLOWED);
    tap_ok(atomic_load(&g_srv.accepted) == before, "refused before connecting (server saw %d)",
           atomic_load(&g_srv.accepted) - before);
}

static void test_http_errors(void)
{
    struct fa_fetch_opts o = test_opts(1);
    char url[URL_MAX];
    struct fa_err err = {{0}};
    uint8_t *bytes = NULL;
    size_t n = 0;

    url_of(url, sizeof url, "127.0.0.1", "/404");
    expect_fail("404", url, &o, FA_EFETCH, "404");
    url_of(url, sizeof url, "127.0.0.1", "/text");
    expect_fail("html page", url, &o, FA_EIMAGE, "not an image");
    fa_fetch_image(url, &o, &bytes, &n, &err);
    TAP_OK(strstr(err.msg, "secret-body-marker") == NULL && strstr(err.msg, "<html") == NULL);
    url_of(url, sizeof url, "127.0.0.1", "/empty");
    expect_fail("empty body", url, &o, FA_EIMAGE, NULL);
    url_of(url, sizeof url, "127.0.0.1", "/img.jpg");
    o.max_bytes = sizeof jpeg_body;
    expect_jpeg("body exactly at cap", url, &o);
    o.max_bytes = sizeof jpeg_body - 1;
    expect_fail("body one byte over cap", url, &o, FA_ETOOBIG, "larger than 21 bytes");
    o.max_bytes = TEST_CAP;
    url_of(url, sizeof url, "127.0.0.1", "/big");
    expect_fail("big with Content-Length", url, &o, FA_ETOOBIG, "65536");
    url_of(url, sizeof url, "127.0.0.1", "/big-nolen");
    expect_fail("big close-delimited", url, &o, FA_ETOOBIG, "larger than 65536 bytes");
}

static void test_timeout(void)
{
    struct fa_fetch_opts o = test_opts(1);
    char url[URL_MAX];
    long t0, dt;

    o.timeout_ms = 500;
    url_of(url, sizeof url, "127.0.0.1", "/slow");
    t0 = now_ms();
    expect_fail("slow server", url, &o, FA_ETIMEOUT, "500 ms");
    dt = now_ms() - t0;
    tap_ok(dt >= 400 && dt < 2000, "timeout fired on time (%ld ms)", dt);
}

static void test_redirects(void)
{
    struct fa_fetch_opts o = test_opts(1);
    char url[URL_MAX];

    url_of(url, sizeof url, "127.0.0.1", "/redir2");
    expect_jpeg("3 redirects", url, &o);
    url_of(url, sizeof url, "127.0.0.1", "/redir1");
    expect_fail("4 redirects", url, &o, FA_EFETCH, "too many redirects");
    url_of(url, sizeof url, "127.0.0.1", "/redir-to-img");
    expect_jpeg("one absolute redirect", url, &o);
    url_of(url, sizeof url, "127.0.0.1", "/redir-ftp");
    expect_fail("redirect to ftp", url, &o, FA_EFETCH, "scheme");
    o.max_redirects = 0;
    url_of(url, sizeof url, "127.0.0.1", "/redir-to-img");
    expect_fail("no redirects allowed", url, &o, FA_EFETCH, "too many redirects");
}

static void test_bad_urls(void)
{
    struct fa_fetch_opts o = test_opts(1);
    char url[URL_MAX], dots[301];
    struct fa_err err = {{0}};
    uint8_t *bytes = NULL;
    size_t n = 0;
    int port = 1, fd;

    expect_fail("ftp", "ftp://127.0.0.1/img.jpg", &o, FA_EINVAL, "ftp");
    expect_fail("file", "file:///etc/passwd", &o, FA_EINVAL, "file");
    expect_fail("gopher", "gopher://127.0.0.1/", &o, FA_EINVAL, "url:");
    expect_fail("no scheme", "notaurl", &o, FA_EINVAL, "url:");
    expect_fail("garbage", "http://exa mple.com/\x01", &o, FA_EINVAL, "url:");
    expect_fail("empty", "", &o, FA_EINVAL, "url:");
    expect_fail("NULL", NULL, &o, FA_EINVAL, "url:");
    url_of(url, sizeof url, "127.0.0.1", "/img.jpg");
    memcpy(url, "HTTP", 4);
    expect_jpeg("upper-case scheme", url, &o);

    /* Bound but not listening: the kernel answers RST, i.e. refused. */
    fd = bind_loopback(&port);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/img.jpg", port);
    expect_fail("connection refused", url, &o, FA_EFETCH, "could not fetch");

    memset(dots, 'a', sizeof dots - 1);
    dots[sizeof dots - 1] = '\0';
    snprintf(url, sizeof url, "http://127.0.0.1:%d/%s", port, dots);
    fa_fetch_image(url, &o, &bytes, &n, &err);
    tap_ok(strstr(err.msg, "...") != NULL && strstr(err.msg, dots + 200) == NULL,
           "long URL is cut in the message (%zu chars)", strlen(err.msg));
    if (fd >= 0)
        close(fd);
}

static void test_dns_failure(void)
{
    struct fa_fetch_opts o = test_opts(0);
    struct fa_err err = {{0}};
    uint8_t *bytes = NULL;
    size_t n = 0;
    enum fa_rc rc;

    /* .invalid never resolves (RFC 6761); without a network it may time out. */
    o.timeout_ms = 1500;
    rc = fa_fetch_image("http://no-such-host.invalid/img.jpg", &o, &bytes, &n, &err);
    /* The same code and words as a private address: an answer must not
     * tell whether an internal name exists. */
    tap_ok(rc == FA_EFORBIDDEN || rc == FA_ETIMEOUT,
           "unresolvable host: EFORBIDDEN like a private address (got %s: %s)", fa_rc_name(rc),
           err.msg);
    if (rc == FA_EFORBIDDEN)
        expect_no_address("unresolvable host", "http://no-such-host.invalid/img.jpg", &o);
}

static char *data_uri(const char *prefix, const uint8_t *bin, size_t len, int variant)
{
    size_t b64_len = sodium_base64_ENCODED_LEN(len, variant);
    size_t pre_len = strlen(prefix);
    char *uri = malloc(pre_len + b64_len);

    if (uri == NULL)
        return NULL;
    memcpy(uri, prefix, pre_len);
    sodium_bin2base64(uri + pre_len, b64_len, bin, len, variant);
    return uri;
}

static void expect_data_ok(const char *name, const char *uri, const uint8_t *want, size_t want_len)
{
    struct fa_fetch_opts o = test_opts(0);
    struct fa_err err = {{0}};
    uint8_t *bytes = NULL;
    size_t n = 0;
    enum fa_rc rc = fa_fetch_image(uri, &o, &bytes, &n, &err);

    if (!tap_ok(rc == FA_OK, "%s: OK", name))
        tap_diag("got %s: %s", fa_rc_name(rc), err.msg);
    tap_ok(n == want_len && bytes != NULL && memcmp(bytes, want, n) == 0, "%s: bytes round-trip",
           name);
    free(bytes);
}

static void test_data_uris(void)
{
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13,
                                  'I',  'H', 'D', 'R', 0,    0,    0,    1,    0, 0, 0, 1};
    struct fa_fetch_opts o = test_opts(0);
    char *good = data_uri("data:image/png;base64,", png, sizeof png, sodium_base64_VARIANT_ORIGINAL);
    char *nopad = data_uri("DATA:image/png;BASE64,", png, sizeof png - 1,
                           sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    char *text = data_uri("data:text/plain;base64,", png, sizeof png, sodium_base64_VARIANT_ORIGINAL);
    char *notimg = data_uri("data:image/png;base64,", (const uint8_t *)"hello, world", 12,
                            sodium_base64_VARIANT_ORIGINAL);
    char wrapped[128];

    if (!tap_ok(good && nopad && text && notimg, "data URIs built"))
        goto out;
    expect_data_ok("data PNG", good, png, sizeof png);
    expect_data_ok("data PNG, no padding, upper-case", nopad, png, sizeof png - 1);
    /* The same payload wrapped as mail clients do. */
    snprintf(wrapped, sizeof wrapped, "data:image/png;base64,%.16s\r\n%.16s\n\t %s", good + 22,
             good + 38, good + 54);
    expect_data_ok("data PNG with whitespace", wrapped, png, sizeof png);
    expect_fail("bad base64", "data:image/png;base64,!!!not*base64!!!", &o, FA_EINVAL,
                "invalid base64");
    expect_fail("text/plain data", text, &o, FA_EINVAL, "image/");
    expect_fail("no media type", "data:;base64,iVBORw0KGgo=", &o, FA_EINVAL, "image/");
    expect_fail("not base64", "data:image/png,%89PNG", &o, FA_EINVAL, "base64");
    expect_fail("no comma", "data:image/png;base64", &o, FA_EINVAL, "','");
    expect_fail("data not an image", notimg, &o, FA_EIMAGE, "not an image");
    o.max_bytes = 16;
    expect_fail("data over cap", good, &o, FA_ETOOBIG, "16 bytes");
    o.max_bytes = sizeof png;
    expect_data_ok("data exactly at cap", good, png, sizeof png);
out:
    free(good);
    free(nopad);
    free(text);
    free(notimg);
}

static int addr_private(const char *text)
{
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;

    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    if (inet_pton(AF_INET, text, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        return fa_fetch_addr_is_private(&a4);
    }
    if (inet_pton(AF_INET6, text, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        return fa_fetch_addr_is_private(&a6);
    }
    return -1;
}

static void test_addr_table(void)
{
    static const struct {
        const char *addr;
        int private;
    } cases[] = {
        {"0.0.0.0", 1},         {"10.1.2.3", 1},         {"100.64.0.1", 1},
        {"100.127.255.255", 1}, {"100.128.0.1", 0},      {"127.0.0.1", 1},
        {"127.255.0.9", 1},     {"169.254.169.254", 1},  {"172.16.0.1", 1},
        {"172.31.255.255", 1},  {"172.32.0.1", 0},       {"192.0.0.8", 1},
        {"192.168.1.1", 1},     {"198.18.0.1", 1},       {"198.19.255.1", 1},
        {"198.20.0.1", 0},      {"224.0.0.1", 1},        {"239.255.255.250", 1},
        {"240.0.0.1", 1},       {"255.255.255.255", 1},  {"8.8.8.8", 0},
        {"1.1.1.1", 0},         {"93.184.216.34", 0},    {"::", 1},
        {"::1", 1},             {"fc00::1", 1},          {"fd12:3456::1", 1},
        {"fe80::1", 1},         {"febf::1", 1},          {"ff02::1", 1},
        {"::ffff:127.0.0.1", 1}, {"::ffff:10.0.0.1", 1}, {"::ffff:8.8.8.8", 0},
        {"::127.0.0.1", 1},     {"64:ff9b::10.0.0.1", 1}, {"64:ff9b::169.254.169.254", 1},
        {"64:ff9b::8.8.8.8", 0}, {"2001:4860::8888", 0}, {"2606:4700::1111", 0},
    };
    struct sockaddr_un unix_addr;
    size_t i;

    memset(&unix_addr, 0, sizeof unix_addr);
    unix_addr.sun_family = AF_UNIX;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        tap_ok(addr_private(cases[i].addr) == cases[i].private, "%s is %s", cases[i].addr,
               cases[i].private ? "refused" : "allowed");
    TAP_OK(fa_fetch_addr_is_private(NULL) == 1);
    TAP_OK(fa_fetch_addr_is_private(&unix_addr) == 1);
}

struct hammer_arg {
    const char *url;
    int ok;
};

static void *hammer_main(void *arg)
{
    struct hammer_arg *h = arg;
    struct fa_fetch_opts o = test_opts(1);
    int i;

    for (i = 0; i < 5; i++) {
        uint8_t *bytes = NULL;
        size_t n = 0;
        if (fa_fetch_image(h->url, &o, &bytes, &n, NULL) == FA_OK && n == sizeof jpeg_body)
            h->ok++;
        free(bytes);
    }
    return NULL;
}

static void test_threads(void)
{
    enum { N = 4 };
    pthread_t t[N];
    struct hammer_arg args[N];
    char url[URL_MAX];
    int i, ok = 0, started = 0;

    url_of(url, sizeof url, "127.0.0.1", "/redir-to-img");
    for (i = 0; i < N; i++) {
        args[i].url = url;
        args[i].ok = 0;
        if (pthread_create(&t[i], NULL, hammer_main, &args[i]) != 0)
            break;
        started++;
    }
    for (i = 0; i < started; i++) {
        pthread_join(t[i], NULL);
        ok += args[i].ok;
    }
    tap_ok(started == N && ok == N * 5, "%d threads fetch at once (%d/%d ok)", N, ok, N * 5);
}

int main(void)
{
    if (sodium_init() < 0 || fa_fetch_global_init() != FA_OK) {
        tap_ok(0, "global init");
        return tap_done();
    }
    if (!tap_ok(srv_start(&g_srv) == 0, "test server listens on 127.0.0.1"))
        return tap_done();
    tap_diag("test server on port %d", g_srv.port);

    test_defaults();
    test_addr_table();
    test_guard();
    test_http_errors();
    test_timeout();
    test_redirects();
    test_bad_urls();
    test_dns_failure();
    test_data_uris();
    test_threads();

    srv_stop(&g_srv);
    fa_fetch_global_cleanup();
    return tap_done();
}
