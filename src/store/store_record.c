/*
 * store_record.c — the write of one face operation (fa_store_record_commit)
 * and finding a stored image. Reading templates is store_template.c.
 *
 * A record is written in one BEGIN IMMEDIATE transaction, in this order:
 *   1. the user is re-read inside the transaction (it must belong to the
 *      record's customer; with require_state its state must still be the
 *      expected one — this is what makes two concurrent enrolls safe);
 *   2. templates: optional delete-all (update), the new samples (each photo
 *      with every model's template under one new sample number), and after
 *      a learned sample eviction of the oldest learned samples beyond
 *      max_learned;
 *   3. the image rows;
 *   4. the optional state change (on success, with the user's face images);
 *   5. exactly one transactions (log) row;
 *   6. with rec->callback, the callback event's outbox row (store_outbox.c).
 * Any failure rolls everything back, so a record is all there or not at all.
 *
 * "Oldest" means inserted first: samples are numbered per user, each new
 * one above every stored one, so ordering by sample is insertion order even
 * when the clock steps back (created could tie or invert; sample cannot).
 */
#include "store_int.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MIME_MAX 32 /* the mime[] buffer of fa_store_image_get */

static int is_one_of(const char *s, const char *const *list)
{
    if (s == NULL)
        return 0;
    for (; *list != NULL; list++) {
        if (strcmp(s, *list) == 0)
            return 1;
    }
    return 0;
}

static const char *const REQUEST_TYPES[] = {"enroll", "faceUpdate", "authenticate", "search",
                                            NULL};
static const char *const TEMPLATE_SOURCES[] = {"enroll", "learned", NULL};

static int state_ok(enum fa_user_state s)
{
    return s == FA_USER_DRAFT || s == FA_USER_SUCCESS || s == FA_USER_FAILURE;
}

static enum fa_rc image_validate(const char *what, const struct fa_store_image *img,
                                 struct fa_err *err)
{
    if (img == NULL)
        return FA_OK;
    if (!fa_store_image_id_ok(img->id))
        return fa_err_set(err, FA_EINVAL, "%s image id must be %d lowercase hex digits", what,
                          FA_IMAGE_ID_HEX);
    if (img->mime == NULL || img->mime[0] == '\0' || strnlen(img->mime, MIME_MAX) >= MIME_MAX)
        return fa_err_set(err, FA_EINVAL, "%s image mime must be 1-%d bytes", what, MIME_MAX - 1);
    if (img->bytes != NULL) {
        if (img->n_bytes == 0 || img->n_bytes > INT_MAX)
            return fa_err_set(err, FA_EINVAL, "%s image bytes must be 1-%d bytes", what, INT_MAX);
        if (img->path != NULL && img->path[0] != '\0')
            return fa_err_set(err, FA_EINVAL, "%s image has bytes, so no path", what);
        return FA_OK;
    }
    if (img->path == NULL || img->path[0] == '\0' || strnlen(img->path, FA_PATH_MAX) >= FA_PATH_MAX)
        return fa_err_set(err, FA_EINVAL, "%s image path must be 1-%d bytes", what,
                          FA_PATH_MAX - 1);
    /* The path is served back from under the data dir: keep it there even
     * if a caller bug ever builds it from client input. */
    if (img->path[0] == '/' || strstr(img->path, "..") != NULL)
        return fa_err_set(err, FA_EINVAL, "%s image path must stay inside the data dir", what);
    return FA_OK;
}

static enum fa_rc template_validate(const struct fa_store_template *t, int i, int j,
                                    struct fa_err *err)
{
    if (t->vec == NULL || t->dim <= 0 || t->dim > FA_STORE_DIM_MAX)
        return fa_err_set(err, FA_EINVAL, "sample %d template %d: dim must be 1-%d with a vector",
                          i, j, FA_STORE_DIM_MAX);
    if (t->model_id == NULL || t->model_id[0] == '\0' ||
        strnlen(t->model_id, FA_STORE_MODEL_ID_MAX + 1) > FA_STORE_MODEL_ID_MAX)
        return fa_err_set(err, FA_EINVAL, "sample %d template %d: model id must be 1-%d bytes",
                          i, j, FA_STORE_MODEL_ID_MAX);
    for (int k = 0; k < (int)t->dim; k++)
        if (!isfinite(t->vec[k]))
            return fa_err_set(err, FA_EINVAL, "sample %d template %d: value %d is not finite",
                              i, j, k);
    return FA_OK;
}

static enum fa_rc sample_validate(const struct fa_store_sample *smp, int i, struct fa_err *err)
{
    enum fa_rc rc = FA_OK;
    if (smp->templates == NULL || smp->n_templates < 1 || smp->n_templates > FA_STORE_MODELS_MAX)
        return fa_err_set(err, FA_EINVAL, "sample %d must hold 1-%d templates", i,
                          FA_STORE_MODELS_MAX);
    if (!is_one_of(smp->source, TEMPLATE_SOURCES))
        return fa_err_set(err, FA_EINVAL, "sample %d: source must be enroll or learned", i);
    if (!isfinite(smp->quality))
        return fa_err_set(err, FA_EINVAL, "sample %d: quality is not a number", i);
    for (int j = 0; rc == FA_OK && j < smp->n_templates; j++) {
        rc = template_validate(&smp->templates[j], i, j, err);
        for (int k = 0; rc == FA_OK && k < j; k++)
            if (strcmp(smp->templates[k].model_id, smp->templates[j].model_id) == 0)
                rc = fa_err_set(err, FA_EINVAL, "sample %d holds model %s twice", i,
                                smp->templates[j].model_id);
    }
    return rc;
}

static enum fa_rc samples_validate(const struct fa_store_record *r, struct fa_err *err)
{
    enum fa_rc rc = FA_OK;
    if (r->n_samples < 0 || r->n_samples > FA_STORE_SAMPLES_MAX ||
        (r->n_samples > 0 && r->samples == NULL))
        return fa_err_set(err, FA_EINVAL, "record must add 0-%d samples", FA_STORE_SAMPLES_MAX);
    /* 0 is allowed: the new learned sample is evicted at once, with any
     * older ones (learning configured off). */
    if (r->max_learned < 0)
        return fa_err_set(err, FA_EINVAL, "max_learned is negative");
    for (int i = 0; rc == FA_OK && i < r->n_samples; i++)
        rc = sample_validate(&r->samples[i], i, err);
    return rc;
}

/* The record is built by our own code, so a failure here is a caller bug;
 * it still gets a clear FA_EINVAL instead of a half-checked write. */
static enum fa_rc record_validate(const struct fa_store_record *r, struct fa_err *err)
{
    enum fa_rc rc;
    int needs_user = r->set_state || r->require_state || r->replace_templates ||
                     r->n_samples > 0;

    if (r->customer_id <= 0)
        return fa_err_set(err, FA_EINVAL, "record customer id is invalid");
    if (r->user_id < 0 || (needs_user && r->user_id == 0))
        return fa_err_set(err, FA_EINVAL, "record needs a user id");
    if (!is_one_of(r->request_type, REQUEST_TYPES))
        return fa_err_set(err, FA_EINVAL, "record request type is invalid");
    if (r->user_name != NULL && strnlen(r->user_name, FA_TEXT_MAX + 1) > FA_TEXT_MAX)
        return fa_err_set(err, FA_EINVAL, "userName is longer than %d bytes", FA_TEXT_MAX);
    if ((r->set_state && !state_ok(r->new_state)) ||
        (r->require_state && !state_ok(r->expected_state)))
        return fa_err_set(err, FA_EINVAL, "record state is invalid");
    rc = image_validate("original", r->original, err);
    if (rc == FA_OK)
        rc = image_validate("thumbnail", r->thumbnail, err);
    if (rc == FA_OK)
        rc = samples_validate(r, err);
    return rc;
}

/* ---- the steps of a commit, each inside the caller's transaction ---- */

static const char SQL_REC_USER[] = "SELECT state FROM users WHERE id = ?1 AND customer_id = ?2";

static enum fa_rc rec_user_check(struct fa_conn *c, const struct fa_store_record *r,
                                 struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK, step, state;

    rc = fa_store_stmt(c, SQL_REC_USER, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_int64(s, 1, r->user_id);
    b |= fa_db_bind_int64(s, 2, r->customer_id);
    step = b == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;
    if (step == FA_DB_DONE) {
        /* Deleted meanwhile, or another customer's id: both are "gone". */
        rc = fa_err_set(err, FA_ENOTFOUND, "user not found");
    } else if (step != FA_DB_ROW) {
        rc = fa_store_dberr(c, "record user", err);
    } else {
        state = fa_store_state_parse((const char *)fa_db_column_text(s, 0));
        if (r->require_state && state != (int)r->expected_state)
            rc = fa_err_set(err, FA_EFAIL, "enrollment state changed: it is %s, not %s",
                            state < 0 ? "unknown" : fa_user_state_name(state),
                            fa_user_state_name(r->expected_state));
    }
    fa_store_stmt_done(s);
    return rc;
}

static const char SQL_REC_TPL_CLEAR[] = "DELETE FROM templates WHERE user_id = ?1";
static const char SQL_REC_TPL_NEXT[] =
    "SELECT COALESCE(MAX(sample), 0) + 1 FROM templates WHERE user_id = ?1";
static const char SQL_REC_TPL_ADD[] =
    "INSERT INTO templates(user_id, sample, model_id, source, quality, dim, embedding, created)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
/* No limit, OFFSET n: every learned sample after the n newest, each with
 * all its models' templates. */
#define REC_TPL_EVICT(no_limit)                                                                 \
    "DELETE FROM templates WHERE user_id = ?1 AND source = 'learned' AND sample IN"            \
    " (SELECT DISTINCT sample FROM templates WHERE user_id = ?1 AND source = 'learned'"        \
    " ORDER BY sample DESC LIMIT " no_limit " OFFSET ?2)"
static const char SQL_REC_TPL_EVICT[] = FA_DB_SQL2(REC_TPL_EVICT("-1"), REC_TPL_EVICT("ALL"));

static enum fa_rc rec_tpl_clear(struct fa_conn *c, const struct fa_store_record *r,
                                struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;

    rc = fa_store_stmt(c, SQL_REC_TPL_CLEAR, &s, err);
    if (rc != FA_OK)
        return rc;
    return fa_store_run(c, s, fa_db_bind_int64(s, 1, r->user_id), "template replace", err);
}

/* The number the user's next sample gets (inside the write transaction,
 * so no other writer can take it meanwhile). */
static enum fa_rc rec_tpl_next(struct fa_conn *c, int64_t user_id, int64_t *next,
                               struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    long n = 0;
    enum fa_rc rc = fa_store_stmt(c, SQL_REC_TPL_NEXT, &s, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_count(c, s, fa_db_bind_int64(s, 1, user_id), &n, "template sample", err);
    *next = n;
    return rc;
}

static enum fa_rc rec_tpl_add(struct fa_conn *c, const struct fa_store_record *r,
                              const struct fa_store_sample *smp,
                              const struct fa_store_template *t, int64_t sample, int64_t now,
                              struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK;
    /* the template is stored sealed (store_seal.c), never in clear */
    uint8_t *sealed = malloc(FA_STORE_SEALED_BYTES(t->dim));

    if (sealed == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory storing a template");
    rc = fa_store_stmt(c, SQL_REC_TPL_ADD, &s, err);
    if (rc != FA_OK) {
        free(sealed);
        return rc;
    }
    fa_store_tpl_seal(c->st, r->user_id, sample, t->model_id, t->vec, t->dim, sealed);
    b |= fa_db_bind_int64(s, 1, r->user_id);
    b |= fa_db_bind_int64(s, 2, sample);
    b |= fa_db_bind_text(s, 3, t->model_id);
    b |= fa_db_bind_text(s, 4, smp->source);
    b |= fa_db_bind_double(s, 5, smp->quality);
    b |= fa_db_bind_int(s, 6, t->dim);
    /* STATIC: the buffer outlives the binding, which fa_store_run clears
     * before it returns, so the copy TRANSIENT would make is not needed. */
    b |= fa_db_bind_blob(s, 7, sealed, FA_STORE_SEALED_BYTES(t->dim));
    b |= fa_db_bind_int64(s, 8, now);
    rc = fa_store_run(c, s, b, "template add", err);
    free(sealed);
    return rc;
}

static enum fa_rc rec_tpl_evict(struct fa_conn *c, const struct fa_store_record *r,
                                struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK;

    rc = fa_store_stmt(c, SQL_REC_TPL_EVICT, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_int64(s, 1, r->user_id);
    b |= fa_db_bind_int(s, 2, r->max_learned);
    return fa_store_run(c, s, b, "template evict", err);
}

static enum fa_rc rec_templates(struct fa_conn *c, const struct fa_store_record *r, int64_t now,
                                struct fa_err *err)
{
    enum fa_rc rc = FA_OK;
    int64_t sample = 0;
    int learned = 0;

    if (r->replace_templates)
        rc = rec_tpl_clear(c, r, err);
    if (rc != FA_OK || r->n_samples == 0)
        return rc;
    rc = rec_tpl_next(c, r->user_id, &sample, err);
    for (int i = 0; rc == FA_OK && i < r->n_samples; i++, sample++) {
        const struct fa_store_sample *smp = &r->samples[i];
        learned |= strcmp(smp->source, "learned") == 0;
        for (int j = 0; rc == FA_OK && j < smp->n_templates; j++)
            rc = rec_tpl_add(c, r, smp, &smp->templates[j], sample, now, err);
    }
    if (rc == FA_OK && learned)
        rc = rec_tpl_evict(c, r, err);
    return rc;
}

static const char SQL_REC_IMAGE[] =
    "INSERT INTO images(id, customer_id, user_id, kind, path, mime, created)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)";

static enum fa_rc rec_image(struct fa_conn *c, const struct fa_store_record *r,
                            const struct fa_store_image *img, const char *kind, int64_t now,
                            struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK;

    if (img == NULL)
        return FA_OK;
    rc = fa_store_stmt(c, SQL_REC_IMAGE, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_text(s, 1, img->id);
    b |= fa_db_bind_int64(s, 2, r->customer_id);
    b |= r->user_id > 0 ? fa_db_bind_int64(s, 3, r->user_id) : fa_db_bind_null(s, 3);
    b |= fa_db_bind_text(s, 4, kind);
    /* An image kept in the database has no file: path "" (never a file
     * to remove, see the path queries of store_admin.c and store_purge.c). */
    b |= fa_db_bind_text(s, 5, img->bytes != NULL ? "" : img->path);
    b |= fa_db_bind_text(s, 6, img->mime);
    b |= fa_db_bind_int64(s, 7, now);
    rc = fa_store_run(c, s, b, "image add", err);
    return rc == FA_OK ? fa_store_image_data_add(c, img, r->customer_id, r->user_id, err) : rc;
}

/* ?5 (1 for success) also makes the record's images the user's enrolled
 * face: exactly those, NULL when the record stored none, so the user never
 * keeps pointing at the images of a face that was replaced. */
static const char SQL_REC_STATE[] =
    "UPDATE users SET state = ?1, updated = ?2,"
    " face_original = CASE WHEN ?5 <> 0 THEN ?6 ELSE face_original END,"
    " face_thumbnail = CASE WHEN ?5 <> 0 THEN ?7 ELSE face_thumbnail END"
    " WHERE id = ?3 AND customer_id = ?4";

static int bind_image_id(struct fa_db_stmt *s, int i, const struct fa_store_image *img)
{
    return img != NULL ? fa_db_bind_text(s, i, img->id)
                       : fa_db_bind_null(s, i);
}

static enum fa_rc rec_state(struct fa_conn *c, const struct fa_store_record *r, int64_t now,
                            struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK;

    if (!r->set_state)
        return FA_OK;
    rc = fa_store_stmt(c, SQL_REC_STATE, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_text(s, 1, fa_user_state_name(r->new_state));
    b |= fa_db_bind_int64(s, 2, now);
    b |= fa_db_bind_int64(s, 3, r->user_id);
    b |= fa_db_bind_int64(s, 4, r->customer_id);
    b |= fa_db_bind_int(s, 5, r->new_state == FA_USER_SUCCESS);
    b |= bind_image_id(s, 6, r->original);
    b |= bind_image_id(s, 7, r->thumbnail);
    return fa_store_run(c, s, b, "state change", err);
}

static const char SQL_REC_LOG[] =
    "INSERT INTO transactions(customer_id, user_id, user_name, request_type, result, score,"
    " original_id, thumbnail_id, created) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

static enum fa_rc rec_log(struct fa_conn *c, const struct fa_store_record *r, int64_t now,
                          struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK;

    rc = fa_store_stmt(c, SQL_REC_LOG, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_int64(s, 1, r->customer_id);
    b |= r->user_id > 0 ? fa_db_bind_int64(s, 2, r->user_id) : fa_db_bind_null(s, 2);
    b |= fa_db_bind_text(s, 3, r->user_name != NULL ? r->user_name : "");
    b |= fa_db_bind_text(s, 4, r->request_type);
    b |= fa_db_bind_text(s, 5, r->success ? "success" : "failure");
    /* No score (NAN) is SQL NULL, so the log can tell it from a real 0. */
    b |= isnan(r->score) ? fa_db_bind_null(s, 6) : fa_db_bind_double(s, 6, r->score);
    b |= bind_image_id(s, 7, r->original);
    b |= bind_image_id(s, 8, r->thumbnail);
    b |= fa_db_bind_int64(s, 9, now);
    return fa_store_run(c, s, b, "log", err);
}

static enum fa_rc record_write(struct fa_conn *c, const struct fa_store_record *r,
                               struct fa_err *err)
{
    int64_t now = fa_store_now();
    enum fa_rc rc = FA_OK;

    if (r->user_id > 0)
        rc = rec_user_check(c, r, err);
    if (rc == FA_OK)
        rc = rec_templates(c, r, now, err);
    if (rc == FA_OK)
        rc = rec_image(c, r, r->original, "original", now, err);
    if (rc == FA_OK)
        rc = rec_image(c, r, r->thumbnail, "thumbnail", now, err);
    if (rc == FA_OK)
        rc = rec_state(c, r, now, err);
    if (rc == FA_OK)
        rc = rec_log(c, r, now, err);
    /* The callback event rides in the log row's transaction: an answered
     * operation always has its event queued, a rolled-back one never. */
    if (rc == FA_OK && r->callback != NULL)
        rc = fa_store_outbox_add(c, r->customer_id, r->callback, now, err);
    /* Last: the feed's counter row stays locked until COMMIT. */
    if (rc == FA_OK && r->user_id > 0 &&
        (r->set_state || r->replace_templates || r->n_samples > 0))
        rc = fa_store_feed_bump(c, r->customer_id, r->user_id, err);
    return rc;
}

enum fa_rc fa_store_record_commit(struct fa_store *st, const struct fa_store_record *rec,
                                  struct fa_err *err)
{
    struct fa_conn *c = NULL;
    enum fa_rc rc;

    rc = record_validate(rec, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_conn(st, &c, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_tx_begin(c, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_tx_end(c, record_write(c, rec, err), err);
    if (rc != FA_OK && rec->callback != NULL)
        rec->callback->queued = 0; /* rolled back with the rest */
    return rc;
}

/* ---- images ---- */

static const char SQL_IMAGE_GET[] = "SELECT customer_id, path, mime FROM images WHERE id = ?1";

enum fa_rc fa_store_image_get(struct fa_store *st, const char *image_id, int64_t *customer_id,
                              char path[FA_PATH_MAX], char mime[32], struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int r;

    *customer_id = 0;
    path[0] = '\0';
    mime[0] = '\0';
    /* Ids come from URLs: anything not id-shaped is simply not there. */
    if (!fa_store_image_id_ok(image_id))
        return fa_err_set(err, FA_ENOTFOUND, "image not found");
    rc = fa_store_conn(st, &c, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_stmt(c, SQL_IMAGE_GET, &s, err);
    if (rc != FA_OK)
        return rc;
    r = fa_db_bind_text(s, 1, image_id) == FA_DB_OK ? fa_db_step(s)
                                                                              : FA_DB_ERROR;
    if (r == FA_DB_DONE) {
        rc = fa_err_set(err, FA_ENOTFOUND, "image not found");
    } else if (r != FA_DB_ROW) {
        rc = fa_store_dberr(c, "image lookup", err);
    } else {
        *customer_id = fa_db_column_int64(s, 0);
        rc = fa_store_col_text(c, s, 1, path, FA_PATH_MAX, err);
        if (rc == FA_OK)
            rc = fa_store_col_text(c, s, 2, mime, MIME_MAX, err);
    }
    fa_store_stmt_done(s);
    if (rc != FA_OK) {
        *customer_id = 0;
        path[0] = '\0';
        mime[0] = '\0';
    }
    return rc;
}
