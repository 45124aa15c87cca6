/*
 * store_template.c — reading templates: a user's samples grouped by photo
 * (authenticate fuses several models per photo), one model's templates of
 * a user (the search index), every template of one model (the index at
 * start) and the counts of a user's samples. Writing them is part of a
 * record (store_record.c).
 *
 * A sample is one photo; every model's template of it carries the same
 * per-user sample number, in insertion order. "Oldest first" is therefore
 * ORDER BY sample, and enrolled samples come before learned ones.
 */
#include "store_int.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- samples, grouped by photo ---- */

static const char SQL_SMP_LOAD[] =
    "SELECT sample, source = 'learned', model_id, dim, embedding FROM templates"
    " WHERE user_id = ?1 ORDER BY source = 'learned', sample, id";

/* The samples being read: offsets of the vectors in data, one slot per
 * (sample, asked model); 0 means none, else offset + 1. */
struct smp_build {
    const struct fa_store *st;  /* its key opens the sealed blobs */
    int64_t user_id;
    const struct fa_store_model *models;
    int n_models;
    size_t *slot;
    size_t cap_slots;
    int n;                 /* samples */
    float *data;
    size_t n_data, cap_data; /* floats */
    int n_learned;
    int64_t cur;           /* sample number of the last sample started; 0 = none */
};

static const struct fa_store_growth SAMPLES_GROWTH = {
    16, SIZE_MAX, "too many templates", "out of memory loading templates"};

static enum fa_rc smp_start(struct smp_build *b, int64_t sample, int learned, struct fa_err *err)
{
    size_t per = (size_t)b->n_models;
    void *p = b->slot;
    enum fa_rc rc = fa_store_grow(&p, &b->cap_slots, ((size_t)b->n + 1) * per, sizeof *b->slot,
                                  &SAMPLES_GROWTH, err);
    b->slot = p;
    if (rc != FA_OK)
        return rc;
    memset(b->slot + (size_t)b->n * per, 0, per * sizeof *b->slot);
    b->n++;
    b->n_learned += learned != 0;
    b->cur = sample;
    return FA_OK;
}

/* File the current row under its sample, when it is of an asked model. */
static enum fa_rc smp_row(struct smp_build *b, struct fa_db_stmt *s, struct fa_err *err)
{
    const char *model = (const char *)fa_db_column_text(s, 2);
    int64_t sample = fa_db_column_int64(s, 0);
    int j = 0, dim;
    void *p;
    enum fa_rc rc = FA_OK;
    while (j < b->n_models && (model == NULL || strcmp(model, b->models[j].id) != 0))
        j++;
    if (j == b->n_models)
        return FA_OK; /* a model not asked for, or another version of one */
    dim = b->models[j].dim;
    if (fa_db_column_int(s, 3) != dim)
        return fa_err_set(err, FA_EDB, "database error: a %s template has dim %d, expected %d",
                          b->models[j].id, fa_db_column_int(s, 3), dim);
    if (b->n == 0 || sample != b->cur)
        rc = smp_start(b, sample, fa_db_column_int(s, 1), err);
    p = b->data;
    if (rc == FA_OK)
        rc = fa_store_grow(&p, &b->cap_data, b->n_data + (size_t)dim, sizeof(float),
                           &SAMPLES_GROWTH, err);
    b->data = p;
    if (rc != FA_OK)
        return rc;
    rc = fa_store_tpl_open(b->st, b->user_id, sample, model, fa_db_column_blob(s, 4),
                           (size_t)fa_db_column_bytes(s, 4), dim, b->data + b->n_data, err);
    if (rc != FA_OK)
        return rc;
    b->slot[(size_t)(b->n - 1) * (size_t)b->n_models + (size_t)j] = b->n_data + 1;
    b->n_data += (size_t)dim;
    return FA_OK;
}

/* Turn the offsets into pointers; takes ownership of b->data. */
static enum fa_rc smp_finish(struct smp_build *b, struct fa_store_samples **out,
                             struct fa_err *err)
{
    size_t n_slots = (size_t)b->n * (size_t)b->n_models;
    struct fa_store_samples *s = calloc(1, sizeof *s + (n_slots + 1) * sizeof(float *));
    if (s == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory loading templates");
    s->n = b->n;
    s->n_models = b->n_models;
    s->n_learned = b->n_learned;
    s->vec = (const float **)(s + 1);
    s->data = b->data;
    for (size_t i = 0; i < n_slots; i++)
        s->vec[i] = b->slot[i] != 0 ? b->data + (b->slot[i] - 1) : NULL;
    b->data = NULL;
    *out = s;
    return FA_OK;
}

enum fa_rc fa_store_samples_load(struct fa_store *st, int64_t user_id,
                                 const struct fa_store_model *models, int n_models,
                                 struct fa_store_samples **out, struct fa_err *err)
{
    struct smp_build b = {.st = st, .user_id = user_id, .models = models, .n_models = n_models};
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int r;

    *out = NULL;
    if (models == NULL || n_models < 1 || n_models > FA_STORE_MODELS_MAX)
        return fa_err_set(err, FA_EINVAL, "ask for 1-%d models", FA_STORE_MODELS_MAX);
    for (int j = 0; j < n_models; j++)
        if (models[j].id == NULL || models[j].dim <= 0 || models[j].dim > FA_STORE_DIM_MAX)
            return fa_err_set(err, FA_EINVAL, "template dim or model id is invalid");
    rc = fa_store_conn_stmt(st, SQL_SMP_LOAD, &c, &s, err);
    if (rc != FA_OK)
        return rc;
    r = fa_db_bind_int64(s, 1, user_id) == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;
    while (r == FA_DB_ROW && rc == FA_OK) {
        rc = smp_row(&b, s, err);
        if (rc == FA_OK)
            r = fa_db_step(s);
    }
    if (rc == FA_OK && r != FA_DB_DONE)
        rc = fa_store_dberr(c, "sample load", err);
    fa_store_stmt_done(s);
    if (rc == FA_OK)
        rc = smp_finish(&b, out, err);
    free(b.slot);
    free(b.data);
    return rc;
}

void fa_store_samples_free(struct fa_store_samples *s)
{
    if (s == NULL)
        return;
    free(s->data);
    free(s);
}

static const char SQL_SMP_COUNT[] =
    "SELECT COUNT(DISTINCT CASE WHEN source = 'enroll' THEN sample END),"
    " COUNT(DISTINCT CASE WHEN source = 'learned' THEN sample END)"
    " FROM templates WHERE user_id = ?1";

enum fa_rc fa_store_samples_count(struct fa_store *st, int64_t user_id, int *enrolled,
                                  int *learned, struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int r;

    *enrolled = *learned = 0;
    rc = fa_store_conn_stmt(st, SQL_SMP_COUNT, &c, &s, err);
    if (rc != FA_OK)
        return rc;
    r = fa_db_bind_int64(s, 1, user_id) == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;
    if (r == FA_DB_ROW) {
        *enrolled = fa_db_column_int(s, 0);
        *learned = fa_db_column_int(s, 1);
    } else {
        rc = fa_store_dberr(c, "sample count", err);
    }
    fa_store_stmt_done(s);
    return rc;
}

/* ---- one model's templates ---- */

static const char SQL_TPL_LOAD[] =
    "SELECT dim, embedding, sample FROM templates WHERE user_id = ?1 AND model_id = ?2"
    " ORDER BY source = 'learned', sample, id";

/* Bounded by the user's templates (a few enrolled + max_learned); the
 * limits only guard the arithmetic. */
static const struct fa_store_growth TPL_GROWTH = {
    8, INT_MAX, "too many templates", "out of memory loading templates"};

/* Append the current row's embedding to *vecs (capacity *cap vectors). */
static enum fa_rc tpl_append(const struct fa_store *st, struct fa_db_stmt *s, int64_t user_id,
                             const char *model_id, int dim, float **vecs, int *n, size_t *cap,
                             struct fa_err *err)
{
    size_t bytes = (size_t)dim * sizeof(float);
    void *p = *vecs;
    enum fa_rc rc;

    if (fa_db_column_int(s, 0) != dim)
        return fa_err_set(err, FA_EDB, "database error: a template has dim %d, expected %d",
                          fa_db_column_int(s, 0), dim);
    rc = fa_store_grow(&p, cap, (size_t)*n + 1, bytes, &TPL_GROWTH, err);
    *vecs = p;
    if (rc == FA_OK)
        rc = fa_store_tpl_open(st, user_id, fa_db_column_int64(s, 2), model_id,
                               fa_db_column_blob(s, 1), (size_t)fa_db_column_bytes(s, 1), dim,
                               *vecs + (size_t)*n * (size_t)dim, err);
    if (rc != FA_OK)
        return rc;
    (*n)++;
    return FA_OK;
}

enum fa_rc fa_store_templates_load(struct fa_store *st, int64_t user_id, const char *model_id,
                                   int dim, float **vecs, int *n, struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    float *v = NULL;
    int count = 0, r;
    size_t cap = 0;
    enum fa_rc rc;

    *vecs = NULL;
    *n = 0;
    if (dim <= 0 || dim > FA_STORE_DIM_MAX || model_id == NULL)
        return fa_err_set(err, FA_EINVAL, "template dim or model id is invalid");
    rc = fa_store_conn(st, &c, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_stmt(c, SQL_TPL_LOAD, &s, err);
    if (rc != FA_OK)
        return rc;
    r = fa_store_bind_id_text(s, user_id, model_id) == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;
    while (r == FA_DB_ROW && rc == FA_OK) {
        rc = tpl_append(st, s, user_id, model_id, dim, &v, &count, &cap, err);
        if (rc == FA_OK)
            r = fa_db_step(s);
    }
    if (rc == FA_OK && r != FA_DB_DONE)
        rc = fa_store_dberr(c, "template load", err);
    fa_store_stmt_done(s);
    if (rc != FA_OK) {
        free(v);
        return rc;
    }
    *vecs = v;
    *n = count;
    return FA_OK;
}

/* ---- every template, for the search index ---- */

/* The user's customer comes from the join, so the index files each
 * template under the right tenant. Ordered by user (as the templates_user
 * index already walks), not by customer first: that would sort every
 * embedding blob through a temporary b-tree, which made loading 100k
 * templates at start take 0.9 s instead of 0.4 s (bench/run). */
static const char SQL_TPL_EACH[] =
    "SELECT u.customer_id, t.user_id, t.dim, t.embedding, t.sample FROM templates t"
    " JOIN users u ON u.id = t.user_id WHERE t.model_id = ?1"
    " ORDER BY t.user_id, t.id";

/*
 * Open the current row's sealed blob into scratch (FA_STORE_DIM_MAX floats,
 * allocated on first need and kept for the walk) and hand it to each.
 */
static enum fa_rc tpl_each_row(const struct fa_store *st, struct fa_db_stmt *s, const char *model_id,
                               fa_store_template_fn each, void *arg, float **scratch,
                               struct fa_err *err)
{
    int dim = fa_db_column_int(s, 2);
    int64_t user_id = fa_db_column_int64(s, 1);
    enum fa_rc rc;

    if (*scratch == NULL)
        *scratch = malloc((size_t)FA_STORE_DIM_MAX * sizeof(float));
    if (*scratch == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory loading templates");
    rc = fa_store_tpl_open(st, user_id, fa_db_column_int64(s, 4), model_id,
                           fa_db_column_blob(s, 3), (size_t)fa_db_column_bytes(s, 3), dim,
                           *scratch, err);
    if (rc != FA_OK)
        return rc;
    if (each(arg, fa_db_column_int64(s, 0), user_id, *scratch, dim) != 0)
        return fa_err_set(err, FA_EINTERNAL, "template walk stopped by the caller");
    return FA_OK;
}

enum fa_rc fa_store_templates_each(struct fa_store *st, const char *model_id,
                                   fa_store_template_fn each, void *arg, struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    float *scratch = NULL;
    enum fa_rc rc;
    int r;

    if (model_id == NULL || model_id[0] == '\0' || each == NULL)
        return fa_err_set(err, FA_EINVAL, "template model id or callback is missing");
    rc = fa_store_conn(st, &c, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_stmt(c, SQL_TPL_EACH, &s, err);
    if (rc != FA_OK)
        return rc;
    r = fa_db_bind_text(s, 1, model_id) == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;
    while (r == FA_DB_ROW) {
        rc = tpl_each_row(st, s, model_id, each, arg, &scratch, err);
        if (rc != FA_OK)
            goto out;
        r = fa_db_step(s);
    }
    if (r != FA_DB_DONE)
        rc = fa_store_dberr(c, "template walk", err);
out:
    fa_store_stmt_done(s);
    if (scratch != NULL)
        fa_crypto_wipe(scratch, (size_t)FA_STORE_DIM_MAX * sizeof(float));
    free(scratch);
    return rc;
}

