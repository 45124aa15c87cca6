/*
 * datauri.c — data:image/<sub>[;param]*;base64,<payload> (RFC 2397) decoded
 * in place of a fetch.
 *
 * DESIGN. The decoded size is known from the encoded text before anything is
 * allocated (6 bits per significant character), so the max_bytes cap is
 * enforced first and the output buffer is allocated exactly once at that
 * size: libsodium never writes past it. Clients wrap base64 at 76 columns, so
 * whitespace is ignored; some strip the '=' padding, so that form is
 * accepted as a second try. No message quotes the URI: it is the body.
 */
#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fetch_int.h"

#define DATAURI_PREFIX "data:"
#define DATAURI_IGNORE " \t\r\n"

int fa_fetch_is_data_uri(const char *url)
{
    return strncasecmp(url, DATAURI_PREFIX, sizeof DATAURI_PREFIX - 1) == 0;
}

/* The last ';'-separated parameter of the header must be "base64". */
static int datauri_is_base64(const char *hdr, size_t len)
{
    static const char tag[] = ";base64";
    size_t tag_len = sizeof tag - 1;
    return len >= tag_len && strncasecmp(hdr + len - tag_len, tag, tag_len) == 0;
}

/* hdr is what lies between "data:" and the first ','. */
static enum fa_rc datauri_check_header(const char *hdr, size_t len, struct fa_err *err)
{
    static const char image[] = "image/";
    size_t image_len = sizeof image - 1;
    const char *semi = memchr(hdr, ';', len);
    size_t type_len = semi != NULL ? (size_t)(semi - hdr) : len;

    /* An empty media type means text/plain (RFC 2397), so it fails here too. */
    if (type_len <= image_len || strncasecmp(hdr, image, image_len) != 0)
        return fa_err_field(err, FA_EINVAL, "url", "data URI media type must be image/*");
    if (!datauri_is_base64(hdr, len))
        return fa_err_field(err, FA_EINVAL, "url",
                            "data URI must be base64 (data:image/...;base64,...)");
    return FA_OK;
}

/* How many bytes the payload decodes to, if it is valid base64. Invalid
 * input may be under-counted; the decoder then fails, it never overflows. */
static size_t datauri_decoded_len(const char *p, size_t len)
{
    size_t sig = 0, pad = 0, i;

    for (i = 0; i < len; i++) {
        if (strchr(DATAURI_IGNORE, p[i]) != NULL)
            continue;
        sig++;
        if (p[i] == '=')
            pad++;
    }
    sig -= pad;
    /* sig * 6 / 8 without the multiplication overflowing. */
    return sig / 4 * 3 + sig % 4 * 3 / 4;
}

static enum fa_rc datauri_decode(const char *p, size_t len, size_t out_len, uint8_t **bytes,
                                 size_t *n, struct fa_err *err)
{
    unsigned char *bin = malloc(out_len > 0 ? out_len : 1);
    size_t bin_len = 0;

    if (bin == NULL)
        return fa_err_field(err, FA_ENOMEM, "url", "out of memory decoding data URI");
    if (sodium_base642bin(bin, out_len, p, len, DATAURI_IGNORE, &bin_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 &&
        sodium_base642bin(bin, out_len, p, len, DATAURI_IGNORE, &bin_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0) {
        free(bin);
        return fa_err_field(err, FA_EINVAL, "url", "invalid base64 in data URI");
    }
    *bytes = bin; /* ownership moves to the caller */
    *n = bin_len;
    return FA_OK;
}

enum fa_rc fa_fetch_data_uri(const char *uri, size_t max_bytes, uint8_t **bytes, size_t *n,
                             struct fa_err *err)
{
    const char *hdr, *comma, *payload;
    size_t payload_len, out_len;
    enum fa_rc rc;

    assert(fa_fetch_is_data_uri(uri));
    *bytes = NULL;
    *n = 0;
    hdr = uri + sizeof DATAURI_PREFIX - 1;
    comma = strchr(hdr, ',');
    if (comma == NULL)
        return fa_err_field(err, FA_EINVAL, "url", "data URI has no ',' before its payload");
    rc = datauri_check_header(hdr, (size_t)(comma - hdr), err);
    if (rc != FA_OK)
        return rc;

    payload = comma + 1;
    payload_len = strlen(payload);
    out_len = datauri_decoded_len(payload, payload_len);
    if (out_len > max_bytes)
        return fa_err_field(err, FA_ETOOBIG, "url", "data URI image is larger than %zu bytes",
                          max_bytes);
    return datauri_decode(payload, payload_len, out_len, bytes, n, err);
}
