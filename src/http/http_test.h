/*
 * http_test.h — requests run in process, without a socket (internal to
 * src/http/; for tests/ and the fuzzers, never called by the server).
 *
 * The fuzzer of the API (tests/fuzz/fuzz_api.c) runs every handler on
 * fuzzed requests. Going through a socket would cost ~100x the executions
 * and measure libmicrohttpd, so it builds a request here instead; the
 * request is then routed by the server's own route matching and read
 * through the server's own fa_http_req_* accessors (src/http/server.c),
 * which cannot drift from what a handler sees on the wire.
 */
#ifndef FACEAUTH_HTTP_TEST_H
#define FACEAUTH_HTTP_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "faceauth/http.h"

/* One request as it would arrive. Borrowed: valid during fa_http_run_inproc. */
struct fa_http_inproc {
    const char *method;
    const char *path;           /* decoded path, without the query string */
    const char *const *headers; /* name, value, name, value, ..., NULL; names match in any case */
    const char *const *query;   /* the same for the query arguments, already decoded */
    const uint8_t *body;        /* NUL-terminated past n_body, as the server's bodies are */
    size_t n_body;
    const char *client_addr; /* the peer's numeric address ("127.0.0.1", "::1") */
    const char *local_addr;  /* the server's address as in a URL ("127.0.0.1", "[::1]") */
    int local_port;          /* and its port (fa_http_req_local) */
};

/*
 * Route the request as the server does and run its handler with app on
 * this thread: no route answers 404 or 405 as on the wire, and a handler
 * that gives no answer gets the server's 500. The answer is left in
 * *reply (zeroed first; the caller frees reply->json and reply->bytes).
 * Returns the route that answered, NULL when none matched.
 */
const struct fa_route *fa_http_run_inproc(const struct fa_route *routes, size_t n_routes, void *app,
                                          const struct fa_http_inproc *in,
                                          struct fa_http_reply *reply);

#endif
