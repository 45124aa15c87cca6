/*
 * conns.h — every open connection of the server, and the read deadline
 * (internal to src/http/).
 *
 * MHD's connection timeout is an idle timeout: a client that sends one byte
 * every few seconds keeps a connection forever, and a thousand of them fill
 * the server. This module gives each request two total deadlines of
 * read_timeout_ms: its request line must arrive within it of the
 * connection opening (or of the previous answer on a kept-alive one), and
 * its headers and body within it of the request line, plus one second per
 * min_body_rate bytes of body received, so a slow but honest upload keeps
 * going while a trickle does not. Two phases, not one, so a pooled client
 * that idles on a kept-alive connection still gets the whole time for its
 * next request. A reaper thread shuts down
 * (shutdown(2), never close) the socket of a connection past its deadline;
 * MHD then sees the end of the stream on its own thread and closes it.
 *
 * Why shutdown is safe from another thread: MHD calls the "closed"
 * notification (fa_http_conns_remove) before it closes the socket, and the
 * reaper only touches sockets of connections still in the list, under the
 * list's lock, so it never reaches a descriptor that was closed and reused.
 *
 * Threads: add/remove/begin/body/read_done/next run on MHD's thread, the
 * reaper on its own; one mutex guards the list.
 */
#ifndef FACEAUTH_HTTP_CONNS_H
#define FACEAUTH_HTTP_CONNS_H

#include <stddef.h>
#include <stdint.h>

struct fa_http_conns;
struct fa_http_conn;

/*
 * The list, and its reaper thread when read_timeout_ms > 0 (0: no deadline).
 * min_body_rate: bytes of body that extend the deadline by one second (0:
 * no extension). NULL when memory or a thread is lacking.
 */
struct fa_http_conns *fa_http_conns_start(long read_timeout_ms, long min_body_rate);

/* Stop and join the reaper; the list stays usable. NULL is fine. */
void fa_http_conns_stop(struct fa_http_conns *cs);

/* Free a stopped list (entries still in it too). NULL is fine. */
void fa_http_conns_free(struct fa_http_conns *cs);

/* A connection was accepted on socket fd: its first request's deadline
 * starts now. NULL when out of memory (the connection then has none). */
struct fa_http_conn *fa_http_conns_add(struct fa_http_conns *cs, int fd);

/*
 * MHD is about to close the connection: unlink and free it. Returns 1 when
 * the reaper dropped it before any request of it reached the handler (no
 * access log line was written for it), with *ms the time it had been
 * reading; 0 otherwise. c may be NULL.
 */
int fa_http_conns_remove(struct fa_http_conns *cs, struct fa_http_conn *c, double *ms);

/* The request line arrived (MHD's URI callback): the headers and body now
 * have read_timeout_ms from here. */
void fa_http_conn_request_line(struct fa_http_conns *cs, struct fa_http_conn *c);

/* The headers of a request are in and the handler saw it. */
void fa_http_conn_begin(struct fa_http_conns *cs, struct fa_http_conn *c);

/* n bytes of body arrived: they extend the deadline (min_body_rate). */
void fa_http_conn_body(struct fa_http_conns *cs, struct fa_http_conn *c, size_t n);

/* The request is fully read: no deadline until its answer is sent. */
void fa_http_conn_read_done(struct fa_http_conns *cs, struct fa_http_conn *c);

/*
 * The request is over (answered or aborted): a kept-alive connection's next
 * request must arrive within the deadline from now. Returns 1 when the
 * reaper had dropped the connection (the request never fully arrived).
 */
int fa_http_conn_next(struct fa_http_conns *cs, struct fa_http_conn *c);

#endif
