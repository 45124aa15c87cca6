/*
 * fetch_int.h — the joints between the files of src/fetch/; not part of the API.
 *
 *   fetch.c     fa_fetch_image: dispatch on the URL kind, then the magic check
 *   transfer.c  http(s) through libcurl with every guard of fetch.h
 *   datauri.c   data:image/...;base64, decoding
 *   addr.c      fa_fetch_addr_is_private
 *
 * The two bringers below fill (*bytes, *n) with a malloc'ed buffer owned by
 * the caller, or leave *bytes NULL on error. Neither looks at the content:
 * fetch.c checks the magic bytes once for both.
 */
#ifndef FACEAUTH_FETCH_INT_H
#define FACEAUTH_FETCH_INT_H

#include <stddef.h>
#include <stdint.h>

#include "faceauth/common.h"
#include "faceauth/fetch.h"

/* Room for the excerpt of a URL shown in a message (80 chars, "...", NUL). */
#define FA_FETCH_URL_SHOWN 84

/* Whether url starts with "data:" (any case). */
int fa_fetch_is_data_uri(const char *url);

/* Decode a data:image/<sub>[;param]*;base64,<payload> URI of at most
 * max_bytes decoded bytes. Messages never quote the URI: it is the body. */
enum fa_rc fa_fetch_data_uri(const char *uri, size_t max_bytes, uint8_t **bytes, size_t *n,
                             struct fa_err *err);

/* Fetch an http(s) URL with the limits and address guard of opts.
 * Any thread, once curl_global_init has run. */
enum fa_rc fa_fetch_http(const char *url, const struct fa_fetch_opts *opts, uint8_t **bytes,
                         size_t *n, struct fa_err *err);

/* The URL check fa_fetch_http runs before any transfer (syntax as curl reads
 * it, then scheme http or https), without the transfer: for tests/fuzz/.
 * On success *norm is curl's normalised URL (curl_free). */
enum fa_rc fa_fetch_url_parse(const char *url, char **norm, struct fa_err *err);

/* Copy at most 80 chars of url into out (cap >= FA_FETCH_URL_SHOWN), with
 * "..." when cut and '?' for bytes that are not printable ASCII, so a
 * message never carries control characters or a split UTF-8 sequence. */
void fa_fetch_url_excerpt(const char *url, char *out, size_t cap);

#endif
