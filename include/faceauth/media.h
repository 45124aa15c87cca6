/*
 * media.h — stored face images and the signed links that serve them.
 *
 * Two homes, chosen by the store (fa_media_attach_store):
 * - files (SQLite, one node), under the data directory:
 *     images/<customer id>/<image id>.<ext>   originals and thumbnails
 *     secret.key                              32 random bytes (0600): signs links
 *   Files are written to a temporary name, fsync'ed and renamed, so a crash
 *   never leaves a half-written image under a name the database points to.
 * - the database (PostgreSQL, several nodes): the bytes go into the record's
 *   own transaction (fa_store_image.bytes) and the link key is the store's
 *   shared secret "media_link_key", so nodes share nothing on disk and a
 *   link one node signed is served by every other.
 * Either way an image has the same kind of id and the same links.
 *
 * Threads: everything here may be called from any thread; the key is
 * read-only after fa_media_open.
 */
#ifndef FACEAUTH_MEDIA_H
#define FACEAUTH_MEDIA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "faceauth/common.h"
#include "faceauth/crypto.h"
#include "faceauth/store.h"

struct fa_media;

/* Create the image folder and load (or create) the signing key. */
enum fa_rc fa_media_open(const char *data_dir, struct fa_media **out, struct fa_err *err);
void fa_media_free(struct fa_media *m); /* NULL is fine */

/*
 * Keep images where st says: with a store several nodes share
 * (fa_store_is_shared), in the database, signing links with the store's
 * shared key; otherwise files, as opened. st must outlive m. Call once,
 * before any other thread uses m.
 */
enum fa_rc fa_media_attach_store(struct fa_media *m, struct fa_store *st, struct fa_err *err);

/* 1 when images live in the database. */
int fa_media_in_database(const struct fa_media *m);

/*
 * A new image of the customer, ready for fa_store_record_commit: img gets a
 * fresh id and the MIME type of ext. Files: written durably now
 * (fa_media_save), relpath and img->path name the file. Database: nothing
 * is written, relpath is "" and img->bytes borrows bytes, which must stay
 * valid until the commit, which stores them in its transaction.
 */
enum fa_rc fa_media_put(struct fa_media *m, int64_t customer_id, const uint8_t *bytes, size_t n,
                        const char *ext, struct fa_store_image *img, char relpath[FA_PATH_MAX],
                        struct fa_err *err);

/* The bytes of image id whose row names relpath (fa_store_image_get), in a
 * malloc'ed buffer (free()), and their MIME type (static). FA_ENOTFOUND
 * when they are gone. */
enum fa_rc fa_media_get(struct fa_media *m, const char *id, const char *relpath, uint8_t **bytes,
                        size_t *n, const char **mime, struct fa_err *err);

/*
 * Durably write bytes as a new image of the customer: a fresh random id is
 * written to id, the path relative to the data dir to relpath.
 */
enum fa_rc fa_media_save(struct fa_media *m, int64_t customer_id, const uint8_t *bytes, size_t n,
                         const char *ext, char id[FA_IMAGE_ID_HEX + 1], char relpath[FA_PATH_MAX],
                         struct fa_err *err);

/* Remove a stored file (relative path); a missing file is not an error.
 * Database: nothing to do (the bytes went with their rows). */
void fa_media_remove(struct fa_media *m, const char *relpath);

/* Read a stored file into a malloc'ed buffer (free()). FA_ENOTFOUND when gone. */
enum fa_rc fa_media_read(struct fa_media *m, const char *relpath, uint8_t **bytes, size_t *n,
                         struct fa_err *err);

/* The signature of a link to image id valid until expires (Unix seconds). */
void fa_media_sign(const struct fa_media *m, const char *id, long long expires,
                   char sig[FA_DIGEST_HEX + 1]);

/* 1 when sig is the right signature for (id, expires) and expires >= now. */
int fa_media_verify(const struct fa_media *m, const char *id, const char *expires,
                    const char *sig, time_t now);

/* The file extension and MIME type for a stored image kind name ("jpeg"...). */
const char *fa_media_mime(const char *ext);

#endif
