/*
 * common.h — the return codes and error message every faceauth module shares.
 *
 * Every function that can fail returns enum fa_rc and, when given a non-NULL
 * struct fa_err, writes a message there that names what is wrong (the field,
 * the URL, the limit). Only src/http/ turns a code into an HTTP status, in one
 * table, so modules below it never think about HTTP.
 */
#ifndef FACEAUTH_COMMON_H
#define FACEAUTH_COMMON_H

#include <stddef.h>

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

/* A message for the client, always NUL-terminated; empty when none was set. */
struct fa_err {
    char msg[FA_ERR_MAX];
};

/* Write a printf-style message into err (no-op when err is NULL) and return rc,
 * so that callers can write `return fa_err_set(err, FA_EINVAL, "...")`. */
enum fa_rc fa_err_set(struct fa_err *err, enum fa_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The short name of a code ("EINVAL"), for logs. Never NULL. */
const char *fa_rc_name(enum fa_rc rc);

#ifdef __cplusplus
}
#endif

#endif
