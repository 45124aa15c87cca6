/*
 * common.h — what every faceauth module shares: the return codes, the error
 * message, a capped growable buffer and a whole-file read.
 *
 * Every function that can fail returns enum fa_rc and, when given a non-NULL
 * struct fa_err, writes a message there that names what is wrong (the field,
 * the URL, the limit). Only src/http/ turns a code into an HTTP status, in one
 * table, so modules below it never think about HTTP.
 */
#ifndef FACEAUTH_COMMON_H
#define FACEAUTH_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum fa_rc {
    FA_OK = 0,
    FA_EINVAL,     /* bad input from the client: field, value, image (400) */
    FA_EAUTH,      /* missing, wrong or expired credentials (401) */
    FA_ENOTFOUND,  /* unknown user, route or object (404) */
    FA_EMETHOD,    /* wrong HTTP method (405) */
    FA_ECONFLICT,  /* already exists (409) */
    FA_ETOOBIG,    /* over a size cap: body, image, pixels (413 for bodies) */
    FA_EFETCH,     /* an image URL could not be fetched (400) */
    FA_ETIMEOUT,   /* an image URL was too slow (400) */
    FA_EFORBIDDEN, /* an address we refuse to contact (400) */
    FA_EIMAGE,     /* bytes are not a decodable image (400) */
    FA_ENOFACE,    /* no face found in the image (operation failure) */
    FA_EGATE,      /* a face, refused: too small, dark, turned... or one of several (idem) */
    FA_ESPOOF,     /* the face failed the liveness screen (idem) */
    FA_ENOTSAME,   /* the photos of one enrollment show different people (idem) */
    FA_EFAIL,      /* the operation was refused: no match, already enrolled (400, "422") */
    FA_EBUSY,      /* overloaded (503) */
    FA_EDB,        /* storage failure (500) */
    FA_EVISION,    /* model or OpenCV failure (500) */
    FA_ENOMEM,     /* allocation failure (500) */
    FA_EINTERNAL,  /* a bug or an OS failure (500) */
    FA_ENOSPACE,   /* the disk is full: nothing could be stored (507) */
    FA_EREADONLY,  /* the data folder or database is read-only (503) */
    FA_ELIMIT      /* a limit says wait: work at once, failed attempts (429) */
};

#define FA_ERR_MAX 320
#define FA_ERR_FIELD_MAX 64

/*
 * A message for the client, and the part of the request it is about.
 *
 * msg is what the client reads, always NUL-terminated; empty when none was
 * set. field names the request field the error is about ("url", "urls[1]",
 * "userName"), or is empty. A message written by fa_err_field starts with
 * "<field>: " and its own words start at msg + words; code that needs the
 * field reads err->field and never parses msg (words is 0 when msg does not
 * start with the field's name).
 *
 * The members sit in one anonymous struct that starts with a number, so the
 * usual `struct fa_err err = {{0}};` zeroes them all without a
 * missing-initializer warning.
 */
struct fa_err {
    struct {
        size_t words;
        char field[FA_ERR_FIELD_MAX];
        char msg[FA_ERR_MAX];
    };
};

/* Write a printf-style message into err (no-op when err is NULL) and return rc,
 * so that callers can write `return fa_err_set(err, FA_EINVAL, "...")`. The
 * error is about no field. */
enum fa_rc fa_err_set(struct fa_err *err, enum fa_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* fa_err_set for a message about a request field, written after its name:
 * fa_err_field(err, FA_EINVAL, "url", "invalid base64") gives
 * "url: invalid base64" with err->field "url". */
enum fa_rc fa_err_field(struct fa_err *err, enum fa_rc rc, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* fa_err_set for a message that names its field in its own words
 * ("userName is required"): msg is exactly the text, err->field is field. */
enum fa_rc fa_err_about(struct fa_err *err, enum fa_rc rc, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Move err to another field, for a caller that knows better which one it is
 * ("url" of a fetch is "urls[2]" of the request): msg becomes "<field>: "
 * followed by the words of an earlier fa_err_field, or by the whole former
 * message when it did not start with a field. No-op when err is NULL. */
void fa_err_refield(struct fa_err *err, const char *field);

/* The message without its leading "<field>: " (all of msg when it has none). */
const char *fa_err_words(const struct fa_err *err);

/* The short name of a code ("EINVAL"), for logs. Never NULL. */
const char *fa_rc_name(enum fa_rc rc);

/* ---- a capped growable buffer ---- */

/*
 * Bytes that grow on demand up to a hard cap, so that nothing a client or a
 * file sends can make us allocate without bound (the idea of curl's dynbuf).
 * Caller storage: fa_buf_init, appends, then fa_buf_take or fa_buf_cleanup.
 * Once data is not NULL a NUL byte follows the last byte (not counted in
 * len), so text reads as a C string and parsers find a terminator. A failed
 * append leaves the buffer as it was. One owner at a time: no locking.
 */
struct fa_buf {
    uint8_t *data; /* NULL until something was added */
    size_t len;    /* bytes held, never more than max */
    size_t alloc;  /* bytes allocated, the NUL included */
    size_t max;    /* the cap on len */
};

/* An empty buffer that will hold at most max bytes. Allocates nothing. */
void fa_buf_init(struct fa_buf *b, size_t max);

/* Append n bytes (none: no-op). FA_ETOOBIG when len + n would pass the cap,
 * FA_ENOMEM when memory runs out. */
enum fa_rc fa_buf_add(struct fa_buf *b, const void *bytes, size_t n);

/* Append printf-style text (without its NUL); errors as fa_buf_add, and
 * FA_EINTERNAL for a format error. */
enum fa_rc fa_buf_printf(struct fa_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
enum fa_rc fa_buf_vprintf(struct fa_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Hand the bytes over: returns data (the caller free()s it; NULL when nothing
 * was added) and its length in *n, and leaves b empty with the same cap. */
uint8_t *fa_buf_take(struct fa_buf *b, size_t *n);

/* Free the bytes and leave b empty with the same cap. Safe on an empty b. */
void fa_buf_cleanup(struct fa_buf *b);

/* ---- reading a whole file ---- */

/*
 * The whole file at path in a new buffer: *bytes is malloc'ed (the caller
 * frees it), never NULL on success, with a NUL after its *n bytes. Reads
 * until end of file rather than trusting a size, so pipes and growing files
 * work too. FA_ENOTFOUND when it cannot be opened (missing or not allowed:
 * the message says which), FA_ETOOBIG when it holds more than max bytes,
 * FA_EINTERNAL on a read error, FA_ENOMEM. Messages do not repeat the path:
 * callers put it in their own words. On error *bytes is NULL and *n 0.
 * Any thread.
 */
enum fa_rc fa_read_file(const char *path, size_t max, uint8_t **bytes, size_t *n,
                        struct fa_err *err);

#ifdef __cplusplus
}
#endif

#endif
