/*
 * server.c — libmicrohttpd daemon, request lifecycle, routing, access log.
 *
 * Lifecycle (as in MHD's post example): the first callback of a request
 * creates struct fa_http_req in *req_cls; body chunks are appended up to the
 * cap; the last callback (upload size 0) routes. Errors (404, 405, 413) are
 * answered there at once; a routed request is handed to our worker pool
 * (workers.c) with its connection suspended, the worker runs the handler,
 * builds the response and resumes the connection, and MHD calls us once more
 * to queue it. The completed callback writes the access log line and frees
 * the request.
 *
 * Why not MHD's thread pool: it pins each connection to one thread, so a
 * ~50 ms handler held up the other connections on that thread while other
 * threads (and face engines) idled. Now one MHD thread does all the network
 * I/O, which is cheap, and no connection waits for a busy thread it is tied
 * to. When the queue is full the request gets 503 rather than waiting.
 *
 * A body over the cap is answered 413 at once when Content-Length says so,
 * otherwise it is drained and discarded and 413 is sent at the end, so
 * memory never grows past the cap whatever the client sends.
 *
 * Abuse limits: MHD refuses connections over max_connections in all or
 * max_connections_per_ip from one address; conns.c tracks every connection
 * (MHD's connect/close notifications) and drops one whose request has not
 * fully arrived within read_timeout_ms, which MHD's idle timeout cannot do
 * against a client sending a byte every few seconds. Health handlers skip
 * the worker queue: inline_handlers run right here on MHD's thread,
 * priority_handlers on a worker of their own. Method and path are escaped in
 * the access log (escape.c).
 *
 * Tests and fuzzers run requests without a connection (fa_http_run_inproc,
 * http_test.h): the same routing and accessors, the values given instead
 * of MHD's.
 *
 * Shutdown: quiesce (stop accepting), wait until every request in flight
 * (queued, running or being sent) is answered, then stop the workers and
 * the daemon. Past the grace period queued requests are answered 503.
 */
#include "faceauth/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conns.h"
#include "escape.h"
#include "http_test.h"
#include "workers.h"

/* Queued requests allowed per worker before 503: a few handler runs of
 * waiting, not an unbounded backlog of bodies in memory. */
#define QUEUE_PER_WORKER 8

/* Health probes queued at most on their own worker: a flood of /readyz
 * gets 503 quickly instead of piling up. */
#define PRIORITY_QUEUE 16

/* Open connections at most when the options say 0. */
#define DEFAULT_MAX_CONNECTIONS 1000

/* Escaped path and method in the access log, at most. */
#define LOG_FIELD_MAX 1024

struct fa_http_server {
    struct MHD_Daemon *daemon;
    struct fa_http_opts opts;
    int port;
    atomic_int in_flight;
    atomic_int closing;   /* grace over: queued requests get 503 */
    struct fa_http_workers *workers;
    struct fa_http_workers *priority; /* opts.priority_handlers run here */
    struct fa_http_conns *conns;      /* open connections, read deadline */
};

struct fa_http_req {
    struct fa_http_server *srv;
    struct MHD_Connection *conn;
    char method[8];
    const char *path;     /* MHD's url, valid for the whole request */
    uint8_t *body;
    size_t n_body;
    size_t cap_body;
    int too_big;
    fa_http_handler handler;      /* set when handed to a worker */
    const struct fa_route *route; /* the route that answered; NULL = none */
    struct MHD_Response *resp;    /* the worker's answer, queued on resume */
    int status;           /* for the access log */
    size_t n_sent;
    struct timespec start;
    struct fa_http_conn *track;   /* the connection's entry in srv->conns */
    const struct fa_http_inproc *inproc; /* set (conn NULL) for fa_http_run_inproc */
};

/* A numeric IPv4 or IPv6 address and a port as a socket address. */
static enum fa_rc parse_listen(const char *listen, int port, struct sockaddr_storage *ss,
                               struct fa_err *err)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof *ss);
    if (inet_pton(AF_INET, listen, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return FA_OK;
    }
    if (inet_pton(AF_INET6, listen, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        return FA_OK;
    }
    return fa_err_set(err, FA_EINVAL, "listen: '%s' is not a numeric IPv4 or IPv6 address", listen);
}

/* ---- accessors ---- */

/* A request of fa_http_run_inproc has no connection: its headers and query
 * come from name, value lists instead of MHD. */
static const char *inproc_value(const char *const *pairs, const char *name, int any_case)
{
    for (size_t i = 0; pairs != NULL && pairs[i] != NULL && pairs[i + 1] != NULL; i += 2)
        if ((any_case ? strcasecmp(pairs[i], name) : strcmp(pairs[i], name)) == 0)
            return pairs[i + 1];
    return NULL;
}

const char *fa_http_req_method(const struct fa_http_req *req) { return req->method; }
const char *fa_http_req_path(const struct fa_http_req *req) { return req->path; }

const char *fa_http_req_header(const struct fa_http_req *req, const char *name)
{
    if (req->inproc != NULL)
        return inproc_value(req->inproc->headers, name, 1);
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *fa_http_req_query(const struct fa_http_req *req, const char *name)
{
    if (req->inproc != NULL)
        return inproc_value(req->inproc->query, name, 0);
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const uint8_t *fa_http_req_body(const struct fa_http_req *req, size_t *n)
{
    *n = req->n_body;
    return req->body;
}

/* The inproc client's address as a socket address; 0 when it is not one. */
static int inproc_client(const struct fa_http_inproc *in, struct sockaddr_storage *ss)
{
    return in->client_addr != NULL && parse_listen(in->client_addr, 0, ss, NULL) == FA_OK;
}

/* The client's socket address: MHD's, or the inproc one in *ss; NULL when unknown. */
static const struct sockaddr *client_sockaddr(const struct fa_http_req *req,
                                              struct sockaddr_storage *ss)
{
    const union MHD_ConnectionInfo *ci;
    if (req->inproc != NULL)
        return inproc_client(req->inproc, ss) ? (const struct sockaddr *)ss : NULL;
    ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return ci != NULL ? ci->client_addr : NULL;
}

int fa_http_req_from_loopback(const struct fa_http_req *req)
{
    struct sockaddr_storage ss;
    return fa_http_addr_is_loopback(client_sockaddr(req, &ss));
}

/* An IPv4 or IPv6 address as text; 0 (out untouched) for any other family. */
static int sockaddr_text(const struct sockaddr *sa, char *out, size_t cap)
{
    if (sa != NULL && sa->sa_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out,
                         (socklen_t)cap) != NULL;
    if (sa != NULL && sa->sa_family == AF_INET6)
        return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
                         (socklen_t)cap) != NULL;
    return 0;
}

/* The client's address as text ("-" when unknown), for logs and throttling. */
static void conn_client_addr(struct MHD_Connection *conn, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!sockaddr_text(ci != NULL ? ci->client_addr : NULL, out, cap) && cap > 1)
        snprintf(out, cap, "-");
}

void fa_http_req_client_addr(const struct fa_http_req *req, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    if (req->inproc == NULL)
        conn_client_addr(req->conn, out, cap);
    else if (!sockaddr_text(client_sockaddr(req, &ss), out, cap) && cap > 1)
        snprintf(out, cap, "-");
}

int fa_http_port(const struct fa_http_server *srv) { return srv->port; }

/* fa_http_req_local of an inproc request: the address it was given. */
static enum fa_rc inproc_local(const struct fa_http_inproc *in, char *addr, size_t cap, int *port)
{
    if (in->local_addr == NULL)
        return FA_EINTERNAL;
    snprintf(addr, cap, "%s", in->local_addr);
    *port = in->local_port;
    return FA_OK;
}

enum fa_rc fa_http_req_local(const struct fa_http_req *req, char *addr, size_t cap, int *port)
{
    const union MHD_ConnectionInfo *ci;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char text[INET6_ADDRSTRLEN];
    if (req->inproc != NULL)
        return inproc_local(req->inproc, addr, cap, port);
    ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci == NULL || getsockname(ci->connect_fd, (struct sockaddr *)&ss, &len) != 0 ||
        !sockaddr_text((const struct sockaddr *)&ss, text, sizeof text))
        return FA_EINTERNAL;
    if (ss.ss_family == AF_INET) {
        snprintf(addr, cap, "%s", text);
        *port = ntohs(((const struct sockaddr_in *)&ss)->sin_port);
    } else {
        snprintf(addr, cap, "[%s]", text); /* brackets: a URL's host */
        *port = ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return FA_OK;
}

/* ---- body collection ---- */

/* Append a chunk, growing geometrically but never beyond the cap. */
static int body_append(struct fa_http_req *req, const char *data, size_t n)
{
    size_t cap = req->srv->opts.max_body_bytes;
    if (req->too_big || n > cap - req->n_body) {
        req->too_big = 1;
        return 0;
    }
    if (req->n_body + n + 1 > req->cap_body) {
        size_t want = req->cap_body ? req->cap_body * 2 : 4096;
        while (want < req->n_body + n + 1)
            want *= 2;
        if (want > cap + 1)
            want = cap + 1;
        uint8_t *grown = realloc(req->body, want);
        if (grown == NULL) {
            req->too_big = 1;
            return 0;
        }
        req->body = grown;
        req->cap_body = want;
    }
    memcpy(req->body + req->n_body, data, n);
    req->n_body += n;
    req->body[req->n_body] = '\0'; /* JSON parsers like a terminator */
    return 1;
}

/* ---- routing ---- */

/* A route path ending in a '/' and a '*' is a prefix whose rest is secret. */
static int route_is_secret(const struct fa_route *r)
{
    size_t n = strlen(r->path);
    return n >= 2 && r->path[n - 2] == '/' && r->path[n - 1] == '*';
}

static int path_matches(const struct fa_route *r, const char *path)
{
    size_t n = strlen(r->path) - (route_is_secret(r) ? 1 : 0);
    if (n > 0 && r->path[n - 1] == '/')
        return strncmp(path, r->path, n) == 0 && path[n] != '\0';
    return strcmp(path, r->path) == 0;
}

/* The route for method and path, or NULL with the 405 (path known for
 * another method) or 404 answer in reply. */
static const struct fa_route *route(const struct fa_route *routes, size_t n_routes,
                                    const char *method, const char *path,
                                    struct fa_http_reply *reply)
{
    int path_known = 0;
    for (size_t i = 0; i < n_routes; i++) {
        if (!path_matches(&routes[i], path))
            continue;
        path_known = 1;
        if (strcmp(routes[i].method, method) == 0)
            return &routes[i];
    }
    if (path_known)
        fa_http_reply_error(reply, FA_EMETHOD, "method not allowed for this path");
    else
        fa_http_reply_error(reply, FA_ENOTFOUND, "no such endpoint");
    return NULL;
}

/* Where a handler runs: most on the worker queue, health probes not. */
enum route_kind { ROUTE_QUEUED, ROUTE_INLINE, ROUTE_PRIORITY };

static int handler_in(fa_http_handler h, const fa_http_handler *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == h)
            return 1;
    return 0;
}

static enum route_kind route_kind_of(const struct fa_http_opts *o, fa_http_handler h)
{
    if (handler_in(h, o->inline_handlers, o->n_inline_handlers))
        return ROUTE_INLINE;
    if (handler_in(h, o->priority_handlers, o->n_priority_handlers))
        return ROUTE_PRIORITY;
    return ROUTE_QUEUED;
}

/* The handler for the request, or NULL with the error reply filled in. */
static fa_http_handler pick_handler(struct fa_http_req *req, struct fa_http_reply *reply)
{
    const struct fa_http_opts *o = &req->srv->opts;
    if (req->too_big) {
        fa_http_reply_error(reply, FA_ETOOBIG, "request body is larger than the server accepts");
        return NULL;
    }
    req->route = route(o->routes, o->n_routes, req->method, req->path, reply);
    return req->route != NULL ? req->route->handler : NULL;
}

/* ---- sending ---- */

static struct MHD_Response *make_response(struct fa_http_reply *reply, size_t *n_sent)
{
    struct MHD_Response *resp;
    const char *ctype = reply->content_type;
    if (reply->json != NULL) {
        char *text = cJSON_PrintUnformatted(reply->json);
        if (text == NULL)
            return NULL;
        *n_sent = strlen(text);
        resp = MHD_create_response_from_buffer(*n_sent, text, MHD_RESPMEM_MUST_FREE);
        if (resp == NULL)
            free(text);
        ctype = "application/json";
    } else {
        *n_sent = reply->n_bytes;
        resp = MHD_create_response_from_buffer(reply->n_bytes, reply->bytes,
                                               MHD_RESPMEM_MUST_FREE);
        if (resp != NULL)
            reply->bytes = NULL; /* MHD frees it now */
    }
    if (resp == NULL)
        return NULL;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (reply->no_store)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store, private");
    if (reply->retry_after_s > 0) {
        char secs[24];
        snprintf(secs, sizeof secs, "%ld", reply->retry_after_s);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, secs);
    }
    return resp;
}

/* Turn the reply into req->resp (NULL when out of memory) and free it.
 * Safe on a worker: MHD responses are not tied to a connection. */
static void store_reply(struct fa_http_req *req, struct fa_http_reply *reply)
{
    req->resp = make_response(reply, &req->n_sent);
    req->status = reply->status;
    cJSON_Delete(reply->json);
    free(reply->bytes);
}

/* Queue req->resp; on MHD's thread, inside the access handler. */
static enum MHD_Result send_stored(struct fa_http_req *req)
{
    enum MHD_Result ret;
    struct MHD_Response *resp = req->resp;
    req->resp = NULL;
    if (resp == NULL)
        return MHD_NO; /* no memory for an answer: MHD closes the connection */
    ret = MHD_queue_response(req->conn, (unsigned)req->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result answer(struct fa_http_req *req, struct fa_http_reply *reply)
{
    store_reply(req, reply);
    return send_stored(req);
}

/* ---- the hand-off to the workers ---- */

static void call_handler(struct fa_http_req *req, void *app, struct fa_http_reply *reply)
{
    req->handler(app, req, reply);
    if (reply->json == NULL && reply->bytes == NULL)
        fa_http_reply_error(reply, FA_EINTERNAL, "handler gave no answer");
}

/* Run the handler, or refuse once the grace is over. */
static void run_handler(struct fa_http_req *req, struct fa_http_reply *reply)
{
    if (atomic_load(&req->srv->closing)) {
        fa_http_reply_error(reply, FA_EBUSY, "server is shutting down");
        return;
    }
    call_handler(req, req->srv->opts.app, reply);
}

/* On a worker: run the handler, store the response, wake the connection. */
static void run_job(void *job)
{
    struct fa_http_req *req = job;
    struct MHD_Connection *conn = req->conn;
    struct fa_http_reply reply = {0};
    run_handler(req, &reply);
    store_reply(req, &reply);
    /* Last touch of req: once resumed, MHD may answer and free it at once. */
    MHD_resume_connection(conn);
}

/* Under the queue lock, before any worker can resume it. */
static void suspend_job(void *job)
{
    struct fa_http_req *req = job;
    MHD_suspend_connection(req->conn);
}

/* The last callback of a request: answer errors here, send the rest to a
 * worker, and on the call after the worker's resume send its answer. */
static enum MHD_Result finish(struct fa_http_req *req)
{
    struct fa_http_reply reply = {0};
    enum route_kind kind;
    struct fa_http_workers *pool = req->srv->workers;
    if (req->handler != NULL)
        return send_stored(req); /* back from a worker */
    req->handler = pick_handler(req, &reply);
    if (req->handler == NULL)
        return answer(req, &reply);
    kind = route_kind_of(&req->srv->opts, req->handler);
    if (kind == ROUTE_INLINE) {
        run_handler(req, &reply);
        return answer(req, &reply);
    }
    if (kind == ROUTE_PRIORITY)
        pool = req->srv->priority;
    if (fa_http_workers_submit(pool, req, suspend_job))
        return MHD_YES;
    fa_http_reply_error(&reply, FA_EBUSY, "server is busy, try again shortly");
    return answer(req, &reply);
}

/* ---- requests without a connection (http_test.h) ---- */

const struct fa_route *fa_http_run_inproc(const struct fa_route *routes, size_t n_routes,
                                          void *app, const struct fa_http_inproc *in,
                                          struct fa_http_reply *reply)
{
    struct fa_http_req req = {.path = in->path, .inproc = in};
    memset(reply, 0, sizeof *reply);
    snprintf(req.method, sizeof req.method, "%s", in->method); /* as req_new */
    req.body = (uint8_t *)in->body; /* only read: handlers see it through fa_http_req_body */
    req.n_body = in->n_body;
    req.route = route(routes, n_routes, req.method, req.path, reply);
    if (req.route == NULL)
        return NULL;
    req.handler = req.route->handler;
    call_handler(&req, app, reply);
    return req.route;
}

/*
 * Whether to answer 413 before reading the body. Only when the client can
 * take it: with "Expect: 100-continue" it waits for our verdict, and a body
 * announced far over the cap is not worth draining. Otherwise the body is
 * read and dropped (no memory kept) so a plain client sees a clean 413
 * instead of a reset connection.
 */
static int answer_413_early(struct fa_http_req *req)
{
    const char *cl = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *expect = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_EXPECT);
    char *end = NULL;
    unsigned long long n;
    if (cl == NULL)
        return 0;
    n = strtoull(cl, &end, 10);
    if (end == cl || n <= req->srv->opts.max_body_bytes)
        return 0;
    req->too_big = 1;
    return expect != NULL || n / 4 > req->srv->opts.max_body_bytes;
}

/* The connection's entry in srv->conns (set by on_connection). */
static struct fa_http_conn *conn_track(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? ci->socket_context : NULL;
}

static struct fa_http_req *req_new(struct fa_http_server *srv, struct MHD_Connection *conn,
                                   const char *url, const char *method)
{
    struct fa_http_req *req = calloc(1, sizeof *req);
    if (req == NULL)
        return NULL;
    req->srv = srv;
    req->conn = conn;
    req->path = url;
    req->track = conn_track(conn);
    snprintf(req->method, sizeof req->method, "%s", method);
    clock_gettime(CLOCK_MONOTONIC, &req->start);
    fa_http_conn_begin(srv->conns, req->track);
    return req;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    struct fa_http_server *srv = cls;
    struct fa_http_req *req = *req_cls;
    if (req == NULL) {
        req = req_new(srv, conn, url, method);
        if (req == NULL)
            return MHD_NO;
        *req_cls = req;
        atomic_fetch_add(&srv->in_flight, 1); /* until on_completed: answer sent */
        if (!answer_413_early(req))
            return MHD_YES; /* come back with the body */
    } else if (*upload_data_size > 0) {
        body_append(req, upload_data, *upload_data_size);
        fa_http_conn_body(srv->conns, req->track, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* All of the request is in: its read deadline no longer runs. */
    fa_http_conn_read_done(srv->conns, req->track);
    return finish(req);
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* How much of path the access log may show: after the prefix of a secret
 * route comes a credential (an enrollment token). */
static size_t loggable_len(const struct fa_http_opts *o, const char *path)
{
    for (size_t i = 0; i < o->n_routes; i++)
        if (route_is_secret(&o->routes[i]) && path_matches(&o->routes[i], path))
            return strlen(o->routes[i].path) - 1;
    return strlen(path);
}

/*
 * One access log line. Method and path come from the client and MHD has
 * decoded the path ("%0a" is a newline by now), so both are escaped: a
 * line of the log is always one request, and nothing in it reaches a
 * terminal as a control sequence.
 */
static void log_line(struct MHD_Connection *conn, const char *method, const char *path,
                     int status, size_t n_sent, double ms)
{
    char addr[INET6_ADDRSTRLEN];
    char method_log[64];
    char path_log[LOG_FIELD_MAX];
    time_t wall = time(NULL);
    struct tm tm;
    char when[32];
    conn_client_addr(conn, addr, sizeof addr);
    fa_http_log_escape(method, method_log, sizeof method_log);
    fa_http_log_escape(path, path_log, sizeof path_log);
    gmtime_r(&wall, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%s %s %s %s %d %zu %.1fms\n", when, addr, method_log, path_log, status, n_sent, ms);
    fflush(stdout);
}

static void log_access(const struct fa_http_req *req)
{
    size_t shown = loggable_len(&req->srv->opts, req->path);
    char redacted[160];
    const char *path = req->path;
    struct timespec now;
    double ms;
    if (req->path[shown] != '\0') {
        /* shown is the length of a route's own prefix: short */
        snprintf(redacted, sizeof redacted, "%.*s<redacted>", (int)shown, req->path);
        path = redacted;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (double)(now.tv_sec - req->start.tv_sec) * 1e3 +
         (double)(now.tv_nsec - req->start.tv_nsec) / 1e6;
    /* The path only: MHD's url has no query string, so signed-link
     * signatures and anything else in the query never reach the log. */
    log_line(req->conn, req->method, path, req->status, req->n_sent, ms);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct fa_http_req *req = *req_cls;
    if (req == NULL)
        return;
    /* The next request on this connection has its own read deadline. */
    if (fa_http_conn_next(req->srv->conns, req->track) && req->status == 0)
        req->status = 408; /* dropped: the request did not arrive in time */
    if (req->status == 0)
        req->status = 499; /* client went away before an answer */
    log_access(req);
    if (req->srv->opts.observe != NULL)
        req->srv->opts.observe(req->srv->opts.observe_ctx, req->route, req->status,
                               seconds_since(&req->start));
    atomic_fetch_sub(&req->srv->in_flight, 1);
    if (req->resp != NULL) /* resumed, but closed before it was queued */
        MHD_destroy_response(req->resp);
    free(req->body);
    free(req);
    *req_cls = NULL;
}

/* MHD parsed a request line: the headers and body get a deadline of their
 * own from now (conns.h). NULL: *req_cls stays NULL for on_request. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct fa_http_server *srv = cls;
    fa_http_conn_request_line(srv->conns, conn_track(conn));
    return NULL;
}

/* MHD opened or is closing a connection: keep srv->conns in step. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct fa_http_server *srv = cls;
    const union MHD_ConnectionInfo *ci;
    double ms = 0;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci != NULL ? fa_http_conns_add(srv->conns, ci->connect_fd) : NULL;
        return;
    }
    /* Dropped while its headers trickled in: no request, so no other log line. */
    if (fa_http_conns_remove(srv->conns, *socket_context, &ms))
        log_line(conn, "-", "-", 408, 0, ms);
    *socket_context = NULL;
}

/* Stop and free what fa_http_start made, in the order it is safe to:
 * workers before the daemon (their connections are suspended), the
 * connection list after it (the daemon's closes still remove from it). */
static void server_free(struct fa_http_server *srv)
{
    fa_http_workers_stop(srv->workers);
    fa_http_workers_stop(srv->priority);
    if (srv->daemon != NULL)
        MHD_stop_daemon(srv->daemon);
    fa_http_conns_stop(srv->conns);
    fa_http_workers_free(srv->workers);
    fa_http_workers_free(srv->priority);
    fa_http_conns_free(srv->conns);
    free(srv);
}

static struct MHD_Daemon *daemon_start(struct fa_http_server *srv, unsigned flags,
                                       struct sockaddr_storage *ss)
{
    const struct fa_http_opts *o = &srv->opts;
    unsigned limit = o->max_connections > 0 ? (unsigned)o->max_connections
                                            : DEFAULT_MAX_CONNECTIONS;
    /* MHD refuses (closes at once) a connection over either limit; a per-IP
     * limit of 0 is MHD's "no limit". */
    return MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)ss,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->connection_timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)(o->max_connections_per_ip > 0 ? o->max_connections_per_ip : 0),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, srv, MHD_OPTION_URI_LOG_CALLBACK, on_request_line, srv, MHD_OPTION_END);
}

enum fa_rc fa_http_start(const struct fa_http_opts *opts, struct fa_http_server **out,
                         struct fa_err *err)
{
    struct sockaddr_storage ss;
    struct fa_http_server *srv;
    const union MHD_DaemonInfo *info;
    /* One polling thread (no MHD pool: it would pin connections); ITC, part
     * of ALLOW_SUSPEND_RESUME, lets a worker's resume and quiesce wake it. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_EPOLL |
                     MHD_ALLOW_SUSPEND_RESUME;
    int n_workers = opts->threads > 0 ? opts->threads : 1;
    enum fa_rc rc = parse_listen(opts->listen, opts->port, &ss, err);
    if (rc != FA_OK)
        return rc;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory");
    srv->opts = *opts;
    srv->workers = fa_http_workers_start(n_workers, (size_t)n_workers * QUEUE_PER_WORKER, run_job);
    srv->priority = fa_http_workers_start(1, PRIORITY_QUEUE, run_job);
    srv->conns = fa_http_conns_start(opts->read_timeout_ms, opts->min_body_rate);
    if (srv->workers == NULL || srv->priority == NULL || srv->conns == NULL) {
        server_free(srv);
        return fa_err_set(err, FA_EINTERNAL, "cannot start %d HTTP worker threads", n_workers);
    }
    srv->daemon = daemon_start(srv, flags, &ss);
    if (srv->daemon == NULL) {
        server_free(srv);
        return fa_err_set(err, FA_EINTERNAL, "cannot listen on %s port %d (in use?)",
                          opts->listen, opts->port);
    }
    info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info != NULL ? info->port : opts->port;
    *out = srv;
    return FA_OK;
}

void fa_http_stop(struct fa_http_server *srv, int grace_ms)
{
    if (srv == NULL)
        return;
    MHD_socket fd = MHD_quiesce_daemon(srv->daemon);
    for (int waited = 0; atomic_load(&srv->in_flight) > 0 && waited < grace_ms; waited += 10)
        usleep(10 * 1000);
    atomic_store(&srv->closing, 1);
    /* Workers first: each queued request's connection is suspended and
     * must be resumed before MHD_stop_daemon; requests completing later are
     * refused by submit (503). The pools are freed only after the daemon,
     * whose thread may still call submit until then. */
    server_free(srv);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}
