/*
 * http.h — the libmicrohttpd glue: connections, body caps, one router table,
 * replies, the one table that maps fa_rc to an HTTP status, the access log.
 *
 * Knows nothing of faces or SQL: the application hands in a route table and
 * an opaque pointer, and handlers fill a struct fa_http_reply. The server
 * answers 404 for an unknown path, 405 for a known path with another method
 * and 413 for a body over the cap before any handler runs.
 *
 * Threads: handlers run on the server's own fixed pool of `threads` worker
 * threads, several at once; everything they reach through `app` must be
 * thread-safe. One further thread does all the network I/O, so a request
 * waits only for a free worker, never behind a slow request that happened to
 * share its connection's thread. Requests beyond the workers wait in a queue
 * of a few per worker; past that the server answers 503 at once, except
 * for the health handlers (inline_handlers, priority_handlers), which skip it.
 *
 * Abuse limits (fa_http_opts): connections in all and per client address,
 * and a total deadline for a request's headers and body to arrive.
 */
#ifndef FACEAUTH_HTTP_H
#define FACEAUTH_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include <cjson/cJSON.h>

#include "faceauth/common.h"

struct fa_http_req; /* one request; valid only during the handler call */

struct fa_http_reply {
    int status;
    cJSON *json;              /* owned: sent as application/json when set */
    uint8_t *bytes;           /* owned (free()): sent as content_type otherwise */
    size_t n_bytes;
    const char *content_type; /* static string */
    int no_store;             /* 1: Cache-Control: no-store (biometric data) */
    long retry_after_s;       /* > 0: Retry-After header (429 answers) */
};

typedef void (*fa_http_handler)(void *app, struct fa_http_req *req, struct fa_http_reply *reply);

struct fa_route {
    const char *method;   /* "GET", "POST" */
    const char *path;     /* exact path, or a prefix when it ends with '/', or a secret
                             prefix when it ends in a '/' and a '*': what follows is a
                             credential the access log leaves out */
    fa_http_handler handler;
};

struct fa_http_opts {
    const char *listen;   /* numeric IPv4 or IPv6 address */
    int port;             /* 0 = any free port (see fa_http_port) */
    int threads;          /* handler threads (the worker pool); < 1 means 1 */
    size_t max_body_bytes;
    int connection_timeout_s;
    const struct fa_route *routes;
    size_t n_routes;
    void *app;            /* passed to every handler */
    /*
     * Handlers of routes above that skip the worker queue. Health probes
     * must answer while every worker is busy and the queue is full, or an
     * orchestrator restarts a server that is merely loaded. Inline handlers
     * run on the network thread itself: only for handlers that do no I/O
     * and take microseconds (/healthz). Priority handlers run on a worker
     * of their own, never behind the ordinary queue (/readyz).
     */
    const fa_http_handler *inline_handlers;
    size_t n_inline_handlers;
    const fa_http_handler *priority_handlers;
    size_t n_priority_handlers;
    /* Abuse limits (README "Security"); 0 = the default or off as said. */
    int max_connections;        /* open connections at most; 0 = 1000 */
    int max_connections_per_ip; /* per client address; 0 = no limit */
    long read_timeout_ms;       /* headers + body must arrive within; 0 = none */
    long min_body_rate;         /* body bytes/s that extend read_timeout_ms */
    /* Called once per finished request, on the server's I/O thread (may be
     * NULL): the route that answered (an entry of a route table; NULL when
     * none matched: 404, 405, 413), the status sent (499 when the client
     * left first) and the seconds from its arrival to the end. Must be
     * quick and thread-safe. */
    void (*observe)(void *ctx, const struct fa_route *route, int status, double seconds);
    void *observe_ctx;
};

struct fa_http_server;

/* Start listening; FA_EINTERNAL with the reason when the port cannot be bound. */
enum fa_rc fa_http_start(const struct fa_http_opts *opts, struct fa_http_server **out,
                         struct fa_err *err);

/* The port actually bound. */
int fa_http_port(const struct fa_http_server *srv);

/*
 * Stop accepting, let the requests in flight finish, queued ones included
 * (up to grace_ms; requests still queued after it are answered 503), then
 * stop and join the threads and free the server. NULL is fine.
 */
void fa_http_stop(struct fa_http_server *srv, int grace_ms);

/* ---- request accessors (borrowed pointers, valid during the handler) ---- */
const char *fa_http_req_method(const struct fa_http_req *req);
const char *fa_http_req_path(const struct fa_http_req *req);
const char *fa_http_req_header(const struct fa_http_req *req, const char *name);
const char *fa_http_req_query(const struct fa_http_req *req, const char *name);
const uint8_t *fa_http_req_body(const struct fa_http_req *req, size_t *n);
/* 1 when the client's address is a loopback one (fa_http_addr_is_loopback). */
int fa_http_req_from_loopback(const struct fa_http_req *req);

/* 1 for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104; 0 for anything else or NULL. Pure. */
int fa_http_addr_is_loopback(const struct sockaddr *sa);

/*
 * The address and port of this server that the client connected to, as
 * "127.0.0.1" or "[::1]" (for a URL) and a port number. Unlike the Host
 * header it is not chosen by the client: it is one of our own addresses.
 * FA_EINTERNAL when the socket cannot tell.
 */
enum fa_rc fa_http_req_local(const struct fa_http_req *req, char *addr, size_t cap, int *port);

/* The peer's IP address as text ("127.0.0.1", "2001:db8::1") into out
 * (cap >= 46); "-" when unknown. */
void fa_http_req_client_addr(const struct fa_http_req *req, char *out, size_t cap);

/* ---- replies ---- */

/* The HTTP status for a code (the one table of the project). */
int fa_http_status_for(enum fa_rc rc);

/* 200-style reply with a JSON body; takes ownership of json. */
void fa_http_reply_json(struct fa_http_reply *reply, int status, cJSON *json);

/* {"error": {"message": msg, "status": "<http status>"}} with the status of rc. */
void fa_http_reply_error(struct fa_http_reply *reply, enum fa_rc rc, const char *msg);

/*
 * A refused operation in the seed's shape: HTTP 400,
 * {"error": {...fields..., "message": msg, "status": "422"}}; takes ownership of fields.
 */
void fa_http_reply_failure(struct fa_http_reply *reply, cJSON *fields, const char *msg);

/*
 * A refused operation answered with rc's status instead of 400 (FA_ELIMIT:
 * 429): {"error": {...fields..., "message": msg, "status": "<http status>"}};
 * takes ownership of fields.
 */
void fa_http_reply_failure_rc(struct fa_http_reply *reply, enum fa_rc rc, cJSON *fields,
                              const char *msg);

/* Raw bytes (takes ownership, free()) with a content type. */
void fa_http_reply_bytes(struct fa_http_reply *reply, int status, const char *content_type,
                         uint8_t *bytes, size_t n);

#endif
