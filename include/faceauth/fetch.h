/*
 * fetch.h — bring the bytes of an image named by a client: an http(s) URL
 * fetched with libcurl, or a data:image/...;base64, URI decoded in place.
 *
 * Guards, because the URL comes from the network:
 *  - schemes http and https only, also after every redirect; at most
 *    max_redirects redirects;
 *  - at most max_bytes of body (the transfer is cut as soon as it goes over),
 *    and at most timeout_ms for the whole transfer;
 *  - unless allow_private is set, refuse loopback, private, link-local,
 *    unique-local, multicast and unspecified addresses, checked on the address
 *    actually connected to (CURLOPT_OPENSOCKETFUNCTION), so DNS answers and
 *    redirects cannot route around it;
 *  - the body must start with the magic bytes of JPEG, PNG, WebP or BMP.
 *
 * Threads: fa_fetch_image may be called from any number of threads at once
 * once fa_fetch_global_init has run (before any thread starts).
 */
#ifndef FACEAUTH_FETCH_H
#define FACEAUTH_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "faceauth/common.h"

struct fa_config;

struct fa_fetch_opts {
    size_t max_bytes;    /* body cap (max_image_bytes) */
    long timeout_ms;     /* whole-transfer cap (fetch_timeout_ms) */
    long connect_timeout_ms; /* connect phase cap */
    int max_redirects;   /* (max_redirects) */
    int allow_private;   /* 1: allow loopback/private addresses (allow_private_urls) */
};

/*
 * Fill opts from the config's image-URL settings (named beside the fields);
 * the connect phase gets 5 s, or the whole timeout when that is shorter.
 */
void fa_fetch_opts_from_config(const struct fa_config *cfg, struct fa_fetch_opts *opts);

/* fa_fetch_opts_from_config of the built-in defaults (fa_config_defaults),
 * for callers without a config (tests). */
void fa_fetch_opts_default(struct fa_fetch_opts *opts);

/* Call once at start-up, before threads (curl_global_init). */
enum fa_rc fa_fetch_global_init(void);
void fa_fetch_global_cleanup(void);

/*
 * Fetch url into a new malloc'ed buffer (*bytes, *n), owned by the caller
 * (free()). Errors, each with a message naming the URL problem:
 *  FA_EINVAL     not a URL we accept (scheme, syntax, bad base64, data: not an image type)
 *  FA_EFORBIDDEN private/loopback address refused, or a host name that does
 *                not resolve: one message for both ("the image host is unknown
 *                or not allowed"), so answers cannot map internal names; the
 *                detail goes to stderr (the operator log)
 *  FA_EFETCH     DNS, connect, HTTP status >= 400 (message has the status), too many redirects
 *  FA_ETIMEOUT   slower than timeout_ms
 *  FA_ETOOBIG    more than max_bytes
 *  FA_EIMAGE     the body is not JPEG, PNG, WebP or BMP
 * Messages never contain the body and truncate long URLs.
 */
enum fa_rc fa_fetch_image(const char *url, const struct fa_fetch_opts *opts, uint8_t **bytes,
                          size_t *n, struct fa_err *err);

/*
 * The guards of fa_fetch_image for another module's own curl transfers
 * (callbacks): fa_fetch_guard_setopt puts them on a curl easy handle
 * (a CURL *): http and https only (also after a redirect), no proxy, and
 * unless g->allow_private the private-address check on every connection
 * curl opens. g must outlive the transfer; afterwards g->refused says
 * whether the guard refused an address (refused_ip: which). FA_EINTERNAL
 * when curl refuses an option. Any thread.
 */
struct fa_fetch_guard {
    int allow_private;  /* in: 1 = loopback/private addresses allowed */
    int refused;        /* out: 1 when an address was refused */
    char refused_ip[46]; /* out: that address as text (INET6_ADDRSTRLEN) */
};
enum fa_rc fa_fetch_guard_setopt(void *curl, struct fa_fetch_guard *g, struct fa_err *err);

/* Whether an IPv4/IPv6 socket address is one the guard refuses
 * (loopback, RFC1918, link-local, CGNAT, ULA, multicast, unspecified,
 * IPv4-mapped forms of these). sa is a struct sockaddr *. */
int fa_fetch_addr_is_private(const void *sa);

#endif
