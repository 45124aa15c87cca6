/*
 * common.c — the shared error helpers, the capped buffer and the whole-file
 * read (see include/faceauth/common.h).
 */
#include "faceauth/common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ---- */

/* Write field into err and "<field>: " at the start of msg; the offset after it. */
static size_t err_prefix(struct fa_err *err, const char *field)
{
    snprintf(err->field, sizeof err->field, "%s", field);
    snprintf(err->msg, sizeof err->msg, "%s: ", err->field);
    return strlen(err->msg);
}

enum fa_rc fa_err_set(struct fa_err *err, enum fa_rc rc, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->field[0] = '\0';
        err->words = 0;
    }
    return rc;
}

enum fa_rc fa_err_field(struct fa_err *err, enum fa_rc rc, const char *field, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        err->words = err_prefix(err, field);
        va_start(ap, fmt);
        vsnprintf(err->msg + err->words, sizeof err->msg - err->words, fmt, ap);
        va_end(ap);
    }
    return rc;
}

enum fa_rc fa_err_about(struct fa_err *err, enum fa_rc rc, const char *field, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        snprintf(err->field, sizeof err->field, "%s", field);
        err->words = 0;
    }
    return rc;
}

void fa_err_refield(struct fa_err *err, const char *field)
{
    char words[FA_ERR_MAX];
    if (err == NULL)
        return;
    /* a copy: the words move within msg when the new name is longer or shorter */
    snprintf(words, sizeof words, "%s", fa_err_words(err));
    err->words = err_prefix(err, field);
    snprintf(err->msg + err->words, sizeof err->msg - err->words, "%s", words);
}

const char *fa_err_words(const struct fa_err *err) { return err->msg + err->words; }

const char *fa_rc_name(enum fa_rc rc)
{
    static const char *const names[] = {
        [FA_OK] = "OK",           [FA_EINVAL] = "EINVAL",       [FA_EAUTH] = "EAUTH",
        [FA_ENOTFOUND] = "ENOTFOUND", [FA_EMETHOD] = "EMETHOD", [FA_ECONFLICT] = "ECONFLICT",
        [FA_ETOOBIG] = "ETOOBIG", [FA_EFETCH] = "EFETCH",       [FA_ETIMEOUT] = "ETIMEOUT",
        [FA_EFORBIDDEN] = "EFORBIDDEN", [FA_EIMAGE] = "EIMAGE", [FA_ENOFACE] = "ENOFACE",
        [FA_EGATE] = "EGATE",     [FA_ESPOOF] = "ESPOOF",       [FA_ENOTSAME] = "ENOTSAME",
        [FA_EFAIL] = "EFAIL",     [FA_EBUSY] = "EBUSY",         [FA_EDB] = "EDB",
        [FA_EVISION] = "EVISION", [FA_ENOMEM] = "ENOMEM",       [FA_EINTERNAL] = "EINTERNAL",
        [FA_ENOSPACE] = "ENOSPACE", [FA_EREADONLY] = "EREADONLY", [FA_ELIMIT] = "ELIMIT",
    };
    if ((unsigned)rc < sizeof names / sizeof names[0] && names[rc] != NULL)
        return names[rc];
    return "E?";
}

/* ---- the capped buffer ---- */

/* The first allocation: small requests and scrapes fit, and doubling from
 * here costs O(log n) reallocs for the largest body. */
#define FA_BUF_FIRST 4096

void fa_buf_init(struct fa_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->max = max < SIZE_MAX ? max : SIZE_MAX - 1; /* max + 1 (the NUL) must not wrap */
}

/*
 * Room for n more bytes and the NUL after them. Grows by doubling, but never
 * allocates past max + 1: a buffer capped at 10 MB never reserves 16.
 */
static enum fa_rc buf_room(struct fa_buf *b, size_t n)
{
    size_t need, want;
    uint8_t *grown;
    if (n > b->max - b->len)
        return FA_ETOOBIG;
    need = b->len + n + 1;
    if (need <= b->alloc)
        return FA_OK;
    want = b->alloc > 0 ? b->alloc : FA_BUF_FIRST;
    while (want < need && want <= b->max / 2)
        want *= 2;
    if (want < need || want > b->max + 1) /* doubling would pass the cap */
        want = b->max + 1;
    grown = realloc(b->data, want);
    if (grown == NULL)
        return FA_ENOMEM;
    b->data = grown;
    b->alloc = want;
    b->data[b->len] = '\0'; /* a first allocation has no terminator yet */
    return FA_OK;
}

enum fa_rc fa_buf_add(struct fa_buf *b, const void *bytes, size_t n)
{
    enum fa_rc rc;
    if (n == 0)
        return FA_OK;
    rc = buf_room(b, n);
    if (rc != FA_OK)
        return rc;
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = '\0';
    return FA_OK;
}

enum fa_rc fa_buf_vprintf(struct fa_buf *b, const char *fmt, va_list ap)
{
    va_list again;
    size_t room = b->data != NULL ? b->alloc - b->len : 0;
    char *at = b->data != NULL ? (char *)b->data + b->len : NULL;
    enum fa_rc rc = FA_OK;
    int len;

    va_copy(again, ap);
    len = vsnprintf(at, room, fmt, ap); /* most pieces fit at once */
    if (len < 0) {
        rc = FA_EINTERNAL;
    } else if ((size_t)len >= room) {
        rc = buf_room(b, (size_t)len);
        if (rc == FA_OK)
            vsnprintf((char *)b->data + b->len, b->alloc - b->len, fmt, again);
    }
    va_end(again);
    if (rc == FA_OK)
        b->len += (size_t)len;
    else if (b->data != NULL)
        b->data[b->len] = '\0'; /* undo what the first try wrote */
    return rc;
}

enum fa_rc fa_buf_printf(struct fa_buf *b, const char *fmt, ...)
{
    va_list ap;
    enum fa_rc rc;
    va_start(ap, fmt);
    rc = fa_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

uint8_t *fa_buf_take(struct fa_buf *b, size_t *n)
{
    uint8_t *data = b->data; /* ownership moves to the caller */
    *n = b->len;
    fa_buf_init(b, b->max);
    return data;
}

void fa_buf_cleanup(struct fa_buf *b)
{
    free(b->data);
    fa_buf_init(b, b->max);
}

/* ---- reading a whole file ---- */

/* Append all of f to b; the first failure's code and message. */
static enum fa_rc read_all(FILE *f, struct fa_buf *b, struct fa_err *err)
{
    uint8_t chunk[16384];
    enum fa_rc rc = buf_room(b, 0); /* an empty file is "", not NULL */
    while (rc == FA_OK) {
        size_t got = fread(chunk, 1, sizeof chunk, f);
        if (got == 0)
            break;
        rc = fa_buf_add(b, chunk, got);
    }
    if (rc == FA_ETOOBIG)
        return fa_err_set(err, rc, "file is over %zu bytes", b->max);
    if (rc == FA_ENOMEM)
        return fa_err_set(err, rc, "out of memory reading the file");
    if (ferror(f))
        return fa_err_set(err, FA_EINTERNAL, "read error: %s", strerror(errno));
    return FA_OK;
}

enum fa_rc fa_read_file(const char *path, size_t max, uint8_t **bytes, size_t *n,
                        struct fa_err *err)
{
    struct fa_buf b;
    enum fa_rc rc;
    FILE *f = fopen(path, "rb");
    *bytes = NULL;
    *n = 0;
    if (f == NULL)
        return fa_err_set(err, FA_ENOTFOUND, "cannot open: %s", strerror(errno));
    fa_buf_init(&b, max);
    rc = read_all(f, &b, err);
    fclose(f);
    if (rc != FA_OK) {
        fa_buf_cleanup(&b);
        return rc;
    }
    *bytes = fa_buf_take(&b, n);
    return FA_OK;
}
