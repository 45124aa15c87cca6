/*
 * media.c — durable image files and link signatures (see media.h).
 */
#include "faceauth/media.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The cap of a stored file read back: no image we store is larger, since
 * max_image_bytes and enroll_page_max_bytes are at most 1e9 (config.c). */
#define MEDIA_MAX_FILE ((size_t)1000 * 1000 * 1000)

#define MEDIA_KEY_NAME "media_link_key" /* the shared link key's name in the store */

/* File extension -> MIME type of the image kinds we store. */
static const char *const mime_table[][2] = {
    {"jpg", "image/jpeg"}, {"jpeg", "image/jpeg"}, {"png", "image/png"},
    {"webp", "image/webp"}, {"bmp", "image/bmp"}};

struct fa_media {
    char dir[FA_PATH_MAX]; /* the data dir */
    uint8_t key[FA_KEY_BYTES];
    struct fa_store *db;   /* images in the database; NULL: files */
};

/* A full or read-only disk is the operator's to fix, not a bug: callers
 * answer 507 or 503 for these instead of 500. */
static enum fa_rc code_for_errno(int e)
{
    if (e == ENOSPC || e == EDQUOT)
        return FA_ENOSPACE;
    if (e == EROFS)
        return FA_EREADONLY;
    return FA_EINTERNAL;
}

static enum fa_rc make_dir(const char *path, struct fa_err *err)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return FA_OK;
    return fa_err_set(err, code_for_errno(errno), "cannot create %s: %s", path, strerror(errno));
}

static enum fa_rc write_all(int fd, const uint8_t *bytes, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, bytes, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w == 0) /* no progress and no errno: treat as a full disk */
            errno = ENOSPC;
        if (w <= 0)
            return code_for_errno(errno);
        bytes += w;
        n -= (size_t)w;
    }
    return FA_OK;
}

/* fsync a directory so that a rename inside it survives a power cut. */
static void sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Write tmp, fsync, rename onto path, fsync the folder. */
static enum fa_rc write_durably(const char *dir, const char *path, const uint8_t *bytes, size_t n,
                                int mode, struct fa_err *err)
{
    char tmp[FA_PATH_MAX + 8];
    int fd;
    enum fa_rc rc;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int saved_errno = 0;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return fa_err_set(err, code_for_errno(errno), "cannot write %s: %s", tmp,
                          strerror(errno));
    rc = write_all(fd, bytes, n);
    if (rc == FA_OK && fsync(fd) != 0)
        rc = code_for_errno(errno);
    saved_errno = errno;
    close(fd);
    if (rc == FA_OK && rename(tmp, path) != 0) {
        rc = code_for_errno(errno);
        saved_errno = errno;
    }
    if (rc != FA_OK) {
        unlink(tmp);
        return fa_err_set(err, rc, "cannot write %s: %s", path, strerror(saved_errno));
    }
    sync_dir(dir);
    return FA_OK;
}

static enum fa_rc load_key(struct fa_media *m, struct fa_err *err)
{
    char path[FA_PATH_MAX + 16];
    FILE *f;
    snprintf(path, sizeof path, "%s/secret.key", m->dir);
    f = fopen(path, "rb");
    if (f != NULL) {
        size_t got = fread(m->key, 1, sizeof m->key, f);
        fclose(f);
        if (got == sizeof m->key)
            return FA_OK;
        return fa_err_set(err, FA_EINTERNAL, "%s is shorter than %d bytes", path, FA_KEY_BYTES);
    }
    fa_crypto_key_new(m->key);
    return write_durably(m->dir, path, m->key, sizeof m->key, 0600, err);
}

enum fa_rc fa_media_open(const char *data_dir, struct fa_media **out, struct fa_err *err)
{
    char images[FA_PATH_MAX + 8];
    enum fa_rc rc;
    struct fa_media *m = calloc(1, sizeof *m);
    if (m == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory");
    snprintf(m->dir, sizeof m->dir, "%s", data_dir);
    snprintf(images, sizeof images, "%s/images", data_dir);
    rc = make_dir(data_dir, err);
    if (rc == FA_OK)
        rc = make_dir(images, err);
    if (rc == FA_OK)
        rc = load_key(m, err);
    if (rc != FA_OK) {
        fa_media_free(m);
        return rc;
    }
    *out = m;
    return FA_OK;
}

void fa_media_free(struct fa_media *m)
{
    if (m == NULL)
        return;
    fa_crypto_wipe(m->key, sizeof m->key);
    free(m);
}

enum fa_rc fa_media_save(struct fa_media *m, int64_t customer_id, const uint8_t *bytes, size_t n,
                         const char *ext, char id[FA_IMAGE_ID_HEX + 1], char relpath[FA_PATH_MAX],
                         struct fa_err *err)
{
    char folder[FA_PATH_MAX * 2];
    char full[FA_PATH_MAX * 2];
    enum fa_rc rc;
    snprintf(folder, sizeof folder, "%s/images/%lld", m->dir, (long long)customer_id);
    rc = make_dir(folder, err);
    if (rc != FA_OK)
        return rc;
    fa_crypto_random_hex(id, FA_IMAGE_ID_HEX / 2);
    snprintf(relpath, FA_PATH_MAX, "images/%lld/%s.%s", (long long)customer_id, id, ext);
    snprintf(full, sizeof full, "%s/%s", m->dir, relpath);
    return write_durably(folder, full, bytes, n, 0600, err);
}

void fa_media_remove(struct fa_media *m, const char *relpath)
{
    char full[FA_PATH_MAX * 2];
    if (m->db != NULL)
        return;
    snprintf(full, sizeof full, "%s/%s", m->dir, relpath);
    unlink(full);
}

enum fa_rc fa_media_attach_store(struct fa_media *m, struct fa_store *st, struct fa_err *err)
{
    enum fa_rc rc;
    if (!fa_store_is_shared(st))
        return FA_OK;
    rc = fa_store_secret(st, MEDIA_KEY_NAME, m->key, sizeof m->key, err);
    if (rc == FA_OK)
        m->db = st;
    return rc;
}

int fa_media_in_database(const struct fa_media *m)
{
    return m->db != NULL;
}

enum fa_rc fa_media_put(struct fa_media *m, int64_t customer_id, const uint8_t *bytes, size_t n,
                        const char *ext, struct fa_store_image *img, char relpath[FA_PATH_MAX],
                        struct fa_err *err)
{
    enum fa_rc rc = FA_OK;
    memset(img, 0, sizeof *img);
    if (m->db == NULL) {
        rc = fa_media_save(m, customer_id, bytes, n, ext, img->id, relpath, err);
    } else {
        fa_crypto_random_hex(img->id, FA_IMAGE_ID_HEX / 2);
        relpath[0] = '\0';
        img->bytes = bytes;
        img->n_bytes = n;
    }
    img->path = relpath;
    img->mime = fa_media_mime(ext);
    return rc;
}

/* The static string of a stored MIME type (the reply keeps the pointer). */
static const char *mime_static(const char *mime)
{
    for (size_t i = 0; i < sizeof mime_table / sizeof mime_table[0]; i++)
        if (strcmp(mime_table[i][1], mime) == 0)
            return mime_table[i][1];
    return "application/octet-stream";
}

enum fa_rc fa_media_get(struct fa_media *m, const char *id, const char *relpath, uint8_t **bytes,
                        size_t *n, const char **mime, struct fa_err *err)
{
    int64_t owner = 0;
    char stored[32] = "";
    const char *dot = strrchr(relpath, '.');
    enum fa_rc rc;
    if (m->db == NULL) {
        /* The file's extension was chosen from the probed format. */
        *mime = fa_media_mime(dot != NULL ? dot + 1 : "");
        return fa_media_read(m, relpath, bytes, n, err);
    }
    rc = fa_store_image_bytes(m->db, id, &owner, bytes, n, stored, err);
    *mime = mime_static(stored);
    return rc;
}

enum fa_rc fa_media_read(struct fa_media *m, const char *relpath, uint8_t **bytes, size_t *n,
                         struct fa_err *err)
{
    char full[FA_PATH_MAX * 2];
    enum fa_rc rc;
    snprintf(full, sizeof full, "%s/%s", m->dir, relpath);
    rc = fa_read_file(full, MEDIA_MAX_FILE, bytes, n, NULL);
    if (rc == FA_ENOTFOUND)
        return fa_err_set(err, rc, "image file is gone");
    if (rc != FA_OK)
        return fa_err_set(err, FA_EINTERNAL, "cannot read %s", relpath);
    return FA_OK;
}

/* The signed message is "<id>.<expires>": the id has no '.', so no two
 * (id, expires) pairs can produce the same text. snprintf returns the length
 * it wanted, not what it wrote: an id too long for msg (verify gets ids from
 * URLs) must not make the HMAC read past the buffer, so it gets no signature
 * (""), which never verifies. Our own ids are FA_IMAGE_ID_HEX characters. */
static int sign_message(const struct fa_media *m, const char *id, long long expires,
                        char sig[FA_DIGEST_HEX + 1])
{
    char msg[128];
    int len = snprintf(msg, sizeof msg, "%s.%lld", id, expires);
    if (len < 0 || (size_t)len >= sizeof msg) {
        sig[0] = '\0';
        return 0;
    }
    fa_crypto_hmac_hex(m->key, msg, (size_t)len, sig);
    return 1;
}

void fa_media_sign(const struct fa_media *m, const char *id, long long expires,
                   char sig[FA_DIGEST_HEX + 1])
{
    sign_message(m, id, expires, sig);
}

int fa_media_verify(const struct fa_media *m, const char *id, const char *expires,
                    const char *sig, time_t now)
{
    char want[FA_DIGEST_HEX + 1];
    char *end = NULL;
    long long exp;
    if (id == NULL || expires == NULL || sig == NULL)
        return 0;
    errno = 0;
    exp = strtoll(expires, &end, 10);
    if (errno != 0 || end == expires || *end != '\0' || exp < (long long)now)
        return 0;
    if (!sign_message(m, id, exp, want))
        return 0;
    return fa_crypto_str_equal(want, sig);
}

const char *fa_media_mime(const char *ext)
{
    for (size_t i = 0; i < sizeof mime_table / sizeof mime_table[0]; i++)
        if (strcmp(mime_table[i][0], ext) == 0)
            return mime_table[i][1];
    return "application/octet-stream";
}
