/*
 * store_seal.c — templates (face embeddings) encrypted at rest.
 *
 * A copy of faceauth.db alone must not reveal a biometric vector, so every
 * template blob is sealed with XChaCha20-Poly1305 (fa_crypto_seal) under a
 * 32-byte key kept in template.key beside the database (the data dir, mode
 * 0600, like secret.key). Whoever has the data dir has both; whoever has a
 * backup or a leaked copy of the database file alone has ciphertext.
 *
 * The associated data is the row's identity (user id, sample, model id,
 * dim): a blob copied into another user's row does not open, so someone
 * who can write the database but not read the key cannot make user A's
 * face log in as user B by swapping blobs.
 *
 * A database written by an older build holds its templates in clear. At
 * open they are sealed in place in one transaction, found through the
 * partial index templates_plain (rows whose blob is exactly 4 * dim
 * bytes), then VACUUM rewrites the file so the clear pages are not left in
 * its free list, and the WAL is truncated. The index stays empty
 * afterwards, so later starts pay one index probe.
 */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_FILE "template.key"
#define AD_MAX (8 + 8 + 4 + FA_STORE_MODEL_ID_MAX + 16)

/* <dir of the database>/template.key into out. */
static enum fa_rc key_path(const struct fa_store *st, char *out, size_t cap, char *dir,
                           size_t dir_cap, struct fa_err *err)
{
    const char *slash = strrchr(st->path, '/');
    int n;
    if (slash == NULL)
        n = snprintf(dir, dir_cap, ".");
    else if (slash == st->path)
        n = snprintf(dir, dir_cap, "/");
    else
        n = snprintf(dir, dir_cap, "%.*s", (int)(slash - st->path), st->path);
    if (n < 0 || (size_t)n >= dir_cap ||
        (size_t)snprintf(out, cap, "%s/%s", dir, KEY_FILE) >= cap)
        return fa_err_set(err, FA_EINVAL, "database path is too long");
    return FA_OK;
}

/* Read exactly FA_KEY_BYTES from an existing key file. */
static enum fa_rc key_read(int fd, const char *path, uint8_t key[FA_KEY_BYTES],
                           struct fa_err *err)
{
    struct stat sb;
    size_t got = 0;
    if (fstat(fd, &sb) != 0 || sb.st_size != FA_KEY_BYTES)
        return fa_err_set(err, FA_EDB, "%s must hold exactly %d bytes", path, FA_KEY_BYTES);
    while (got < FA_KEY_BYTES) {
        ssize_t r = read(fd, key + got, FA_KEY_BYTES - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return fa_err_set(err, FA_EDB, "cannot read %s: %s", path,
                              r < 0 ? strerror(errno) : "short file");
        got += (size_t)r;
    }
    return FA_OK;
}

/* Write all of buf to fd. */
static int write_all(int fd, const uint8_t *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, buf + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        done += (size_t)w;
    }
    return 0;
}

/*
 * A new key at path, mode 0600: written and fsynced under a temporary
 * name, then link()ed into place, which fails if path exists. So two
 * processes opening a fresh data dir at once (the server and `faceauth
 * customer add`) never see a half-written key: the loser reads the
 * winner's (*key is then that one).
 */
static enum fa_rc key_create(const char *path, const char *dir, uint8_t key[FA_KEY_BYTES],
                             struct fa_err *err)
{
    char tmp[FA_PATH_MAX + 64];
    enum fa_rc rc = FA_OK;
    int fd, e;
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return fa_err_set(err, FA_EDB, "cannot create %s: %s", tmp, strerror(errno));
    fa_crypto_key_new(key);
    if (write_all(fd, key, FA_KEY_BYTES) != 0 || fsync(fd) != 0) {
        e = errno;
        close(fd);
        unlink(tmp);
        return fa_err_set(err, FA_EDB, "cannot write %s: %s", tmp, strerror(e));
    }
    close(fd);
    if (link(tmp, path) != 0) {
        e = errno;
        fd = e == EEXIST ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        if (fd < 0) {
            rc = fa_err_set(err, FA_EDB, "cannot create %s: %s", path,
                            strerror(e == EEXIST ? errno : e));
        } else {
            rc = key_read(fd, path, key, err);
            close(fd);
        }
    }
    unlink(tmp);
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    return rc;
}

/* 1 when some template is stored sealed (its blob is not 4 * dim bytes). */
static const char SQL_ANY_SEALED[] =
    "SELECT EXISTS(SELECT 1 FROM templates WHERE length(embedding) <> 4 * dim)";

static enum fa_rc any_sealed(struct fa_conn *c, int *yes, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc = FA_OK;
    int r;
    if (fa_db_prepare(c->db, SQL_ANY_SEALED, &s) != FA_DB_OK)
        return fa_store_dberr(c, "template key check", err);
    r = fa_db_step(s);
    if (r == FA_DB_ROW)
        *yes = fa_db_column_int(s, 0);
    else
        rc = fa_store_dberr(c, "template key check", err);
    fa_db_finalize(s);
    return rc;
}

/* The key of st, read from template.key or made there. A missing key file
 * beside sealed templates is an error, not a new key: the templates would
 * all be unreadable, and the operator should restore the file. */
static enum fa_rc key_load(struct fa_store *st, struct fa_conn *c, struct fa_err *err)
{
    char path[FA_PATH_MAX + 32], dir[FA_PATH_MAX];
    int sealed = 0, fd;
    enum fa_rc rc;

    /* Nodes sharing a PostgreSQL database must share the key: it is the
     * database's (README, PostgreSQL back-end). */
    if (st->engine == FA_DB_POSTGRES)
        return fa_store_secret_conn(c, "template_key", st->tkey, sizeof st->tkey, err);
    rc = key_path(st, path, sizeof path, dir, sizeof dir, err);
    if (rc != FA_OK)
        return rc;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        rc = key_read(fd, path, st->tkey, err);
        close(fd);
        return rc;
    }
    if (errno != ENOENT)
        return fa_err_set(err, FA_EDB, "cannot open %s: %s", path, strerror(errno));
    rc = any_sealed(c, &sealed, err);
    if (rc == FA_OK && sealed)
        return fa_err_set(err, FA_EDB,
                          "%s is missing but the database holds encrypted templates: restore "
                          "the file from the backup of the data dir",
                          path);
    return rc == FA_OK ? key_create(path, dir, st->tkey, err) : rc;
}

/* The associated data of a template: its identity within the database. */
static size_t tpl_ad(int64_t user_id, int64_t sample, const char *model_id, int dim,
                     uint8_t ad[AD_MAX])
{
    size_t n_id = strnlen(model_id, FA_STORE_MODEL_ID_MAX);
    uint64_t u = (uint64_t)user_id, smp = (uint64_t)sample;
    uint32_t d = (uint32_t)dim;
    size_t n = 0;
    for (int i = 0; i < 8; i++)
        ad[n++] = (uint8_t)(u >> (8 * i));
    for (int i = 0; i < 8; i++)
        ad[n++] = (uint8_t)(smp >> (8 * i));
    for (int i = 0; i < 4; i++)
        ad[n++] = (uint8_t)(d >> (8 * i));
    memcpy(ad + n, model_id, n_id);
    return n + n_id;
}

void fa_store_tpl_seal(const struct fa_store *st, int64_t user_id, int64_t sample,
                       const char *model_id, const float *vec, int dim, uint8_t *out)
{
    uint8_t ad[AD_MAX];
    size_t n_ad = tpl_ad(user_id, sample, model_id, dim, ad);
    fa_crypto_seal(st->tkey, vec, (size_t)dim * sizeof(float), ad, n_ad, out);
}

enum fa_rc fa_store_tpl_open(const struct fa_store *st, int64_t user_id, int64_t sample,
                             const char *model_id, const void *blob, size_t n, int dim,
                             float *out, struct fa_err *err)
{
    uint8_t ad[AD_MAX];
    size_t n_ad;
    if (model_id == NULL || blob == NULL || dim <= 0 || dim > FA_STORE_DIM_MAX ||
        n != FA_STORE_SEALED_BYTES(dim))
        return fa_err_set(err, FA_EDB, "database error: template of user %lld is malformed",
                          (long long)user_id);
    n_ad = tpl_ad(user_id, sample, model_id, dim, ad);
    if (fa_crypto_open(st->tkey, blob, n, ad, n_ad, out) != 0)
        return fa_err_set(err, FA_EDB,
                          "database error: template of user %lld does not decrypt (another "
                          "template.key, or the row was altered)",
                          (long long)user_id);
    return FA_OK;
}

/* ---- sealing the templates of an older database ---- */

static const char SQL_PLAIN_NEXT[] =
    "SELECT id, user_id, sample, model_id, dim, embedding FROM templates"
    " WHERE length(embedding) = 4 * dim LIMIT 1";
static const char SQL_PLAIN_SET[] = "UPDATE templates SET embedding = ?1 WHERE id = ?2";

/* Seal the row s points at (a SQL_PLAIN_NEXT row) with upd. */
static enum fa_rc seal_row(struct fa_store *st, struct fa_conn *c, struct fa_db_stmt *s,
                           struct fa_db_stmt *upd, uint8_t *buf, struct fa_err *err)
{
    int dim = fa_db_column_int(s, 4);
    const char *model = (const char *)fa_db_column_text(s, 3);
    const void *blob = fa_db_column_blob(s, 5);
    float vec[FA_STORE_DIM_MAX];
    enum fa_rc rc;
    if (dim <= 0 || dim > FA_STORE_DIM_MAX || model == NULL || blob == NULL)
        return fa_err_set(err, FA_EDB, "database error: template %lld is malformed",
                          (long long)fa_db_column_int64(s, 0));
    memcpy(vec, blob, (size_t)dim * sizeof(float)); /* SQLite promises no alignment */
    fa_store_tpl_seal(st, fa_db_column_int64(s, 1), fa_db_column_int64(s, 2), model, vec,
                      dim, buf);
    fa_crypto_wipe(vec, sizeof vec);
    fa_db_reset(upd);
    if (fa_db_bind_blob(upd, 1, buf, FA_STORE_SEALED_BYTES(dim)) !=
            FA_DB_OK ||
        fa_db_bind_int64(upd, 2, fa_db_column_int64(s, 0)) != FA_DB_OK)
        return fa_store_dberr(c, "template seal", err);
    rc = fa_db_step(upd) == FA_DB_DONE ? FA_OK : fa_store_dberr(c, "template seal", err);
    fa_db_reset(upd);
    return rc;
}

/* Seal every clear template, one at a time (each leaves the partial index,
 * so the next query finds the next one); *n gets how many. Inside the
 * caller's transaction. */
static enum fa_rc seal_all(struct fa_store *st, struct fa_conn *c, long *n, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL, *upd = NULL;
    uint8_t *buf = malloc(FA_STORE_SEALED_BYTES(FA_STORE_DIM_MAX));
    enum fa_rc rc = buf == NULL ? fa_err_set(err, FA_ENOMEM, "out of memory sealing templates")
                                : FA_OK;
    int r = FA_DB_DONE;
    if (rc == FA_OK && (fa_db_prepare(c->db, SQL_PLAIN_NEXT, &s) != FA_DB_OK ||
                        fa_db_prepare(c->db, SQL_PLAIN_SET, &upd) != FA_DB_OK))
        rc = fa_store_dberr(c, "template seal", err);
    while (rc == FA_OK && (r = fa_db_step(s)) == FA_DB_ROW) {
        rc = seal_row(st, c, s, upd, buf, err);
        fa_db_reset(s);
        (*n)++;
    }
    if (rc == FA_OK && r != FA_DB_DONE)
        rc = fa_store_dberr(c, "template seal", err);
    fa_db_finalize(s);
    fa_db_finalize(upd);
    free(buf);
    return rc;
}

enum fa_rc fa_store_seal_open(struct fa_store *st, struct fa_conn *c, struct fa_err *err)
{
    long n = 0;
    enum fa_rc rc = key_load(st, c, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_tx_begin(c, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_tx_end(c, seal_all(st, c, &n, err), err);
    if (rc != FA_OK || n == 0 || st->engine != FA_DB_SQLITE)
        return rc;
    /* The clear blobs are now free pages of the file (and old frames of
     * the WAL): rewrite the file and empty the WAL. */
    if (fa_db_exec(c->db, "VACUUM") != FA_DB_OK ||
        fa_db_exec(c->db, "PRAGMA wal_checkpoint(TRUNCATE)") != FA_DB_OK)
        return fa_store_dberr(c, "vacuum after sealing templates", err);
    return FA_OK;
}
