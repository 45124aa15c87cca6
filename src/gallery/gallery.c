/*
 * gallery.c — stored templates and the search index, written together
 * (gallery.h).
 *
 * Every write of the index after start is in this file, and all but the
 * delete go through fa_gallery_follow, which reloads the user's templates
 * from the store rather than applying the change it was told about: the
 * store is the truth, a reload is idempotent, and a follower that only
 * knows "user u changed" (another node's write) needs nothing more.
 *
 * follow_lock makes each reload (read the store, replace in the index) and
 * each delete's removal one step. Without it two writers of one user could
 * interleave: the first reads before the second commits, the second
 * replaces, then the first replaces with its older read and the index stays
 * one change behind (or a deleted user comes back). Each reload starts after
 * its own commit, so with the steps in a line the last one always reads
 * every commit before it. A reload is one indexed read, so the line is short.
 */
#include "faceauth/gallery.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fa_gallery {
    struct fa_store *store; /* borrowed */
    struct fa_index *index; /* borrowed */
    char model_id[FA_STORE_MODEL_ID_MAX];
    int dim;
    pthread_mutex_t follow_lock; /* see the top of the file */
};

enum fa_rc fa_gallery_new(struct fa_store *store, struct fa_index *index, const char *model_id,
                          int dim, struct fa_gallery **out, struct fa_err *err)
{
    struct fa_gallery *g;
    *out = NULL;
    if (store == NULL || index == NULL || model_id == NULL || dim < 1 ||
        strlen(model_id) >= sizeof g->model_id)
        return fa_err_set(err, FA_EINVAL, "gallery: a store, an index and a model are needed");
    g = calloc(1, sizeof *g);
    if (g == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory");
    g->store = store;
    g->index = index;
    snprintf(g->model_id, sizeof g->model_id, "%s", model_id);
    g->dim = dim;
    pthread_mutex_init(&g->follow_lock, NULL);
    *out = g;
    return FA_OK;
}

void fa_gallery_free(struct fa_gallery *g)
{
    if (g == NULL)
        return;
    pthread_mutex_destroy(&g->follow_lock);
    free(g);
}

static int load_template(void *arg, int64_t customer_id, int64_t user_id, const float *vec,
                         int dim)
{
    struct fa_gallery *g = arg;
    enum fa_rc rc;
    if (dim != g->dim)
        return 0; /* another model's template: not searchable by this one */
    rc = fa_index_add(g->index, customer_id, user_id, vec, NULL);
    /* A damaged vector (NaN, Inf) must not keep the server from starting:
     * that one template is left out of search, and the operator is told. */
    if (rc == FA_EINVAL) {
        fprintf(stderr, "faceauth: skipping a damaged template of user %lld\n",
                (long long)user_id);
        return 0;
    }
    return rc != FA_OK;
}

enum fa_rc fa_gallery_load(struct fa_gallery *g, struct fa_err *err)
{
    return fa_store_templates_each(g->store, g->model_id, load_template, g, err);
}

enum fa_rc fa_gallery_samples(struct fa_gallery *g, int64_t user_id,
                              struct fa_store_samples **out, struct fa_err *err)
{
    struct fa_store_model models[FA_N_MODELS];
    for (int m = 0; m < FA_N_MODELS; m++) {
        models[m].id = fa_model_info((enum fa_model)m)->id;
        models[m].dim = fa_model_info((enum fa_model)m)->dim;
    }
    return fa_store_samples_load(g->store, user_id, models, FA_N_MODELS, out, err);
}

void fa_gallery_sample_of(const struct fa_face_probe *probe, const char *source,
                          struct fa_store_template tpl[FA_N_MODELS],
                          struct fa_store_sample *out)
{
    int n = 0;
    for (int m = 0; m < FA_N_MODELS; m++) {
        if (!(probe->models & FA_MODEL_BIT(m)))
            continue;
        tpl[n].model_id = fa_model_info((enum fa_model)m)->id;
        tpl[n].dim = fa_model_info((enum fa_model)m)->dim;
        tpl[n].vec = probe->emb[m];
        n++;
    }
    out->templates = tpl;
    out->n_templates = n;
    out->source = source;
    out->quality = probe->q.sharpness;
}

enum fa_rc fa_gallery_commit(struct fa_gallery *g, const struct fa_store_record *rec,
                             struct fa_err *err)
{
    enum fa_rc rc = fa_store_record_commit(g->store, rec, err);
    if (rc == FA_OK && (rec->n_samples > 0 || rec->replace_templates))
        fa_gallery_follow(g, rec->customer_id, rec->user_id);
    return rc;
}

enum fa_rc fa_gallery_user_update(struct fa_gallery *g, int64_t customer_id,
                                  const char *user_name, const struct fa_user_changes *chg,
                                  struct fa_user *out, struct fa_err *err)
{
    enum fa_rc rc = fa_store_user_update(g->store, customer_id, user_name, chg, out, err);
    if (rc == FA_OK && chg->reset_face)
        fa_gallery_follow(g, customer_id, out->id); /* the old faces are gone */
    return rc;
}

enum fa_rc fa_gallery_user_delete(struct fa_gallery *g, int64_t customer_id,
                                  const char *user_name, int64_t *user_id, char ***paths,
                                  int *n, struct fa_err *err)
{
    enum fa_rc rc =
        fa_store_user_delete(g->store, customer_id, user_name, user_id, paths, n, err);
    /* The user's rows are gone with it: nothing to reload. */
    if (rc == FA_OK) {
        pthread_mutex_lock(&g->follow_lock);
        fa_index_remove_user(g->index, customer_id, *user_id);
        pthread_mutex_unlock(&g->follow_lock);
    }
    return rc;
}

void fa_gallery_follow(struct fa_gallery *g, int64_t customer_id, int64_t user_id)
{
    float *vecs = NULL;
    int n = 0;
    struct fa_err err = {{0}};
    enum fa_rc rc;

    pthread_mutex_lock(&g->follow_lock);
    rc = fa_store_templates_load(g->store, user_id, g->model_id, g->dim, &vecs, &n, &err);
    if (rc == FA_OK)
        rc = fa_index_set_user(g->index, customer_id, user_id, vecs, n, &err);
    free(vecs);
    /* The store already holds the change, so the caller's operation
     * succeeded. An index that cannot follow drops the user instead of
     * keeping old faces: search may miss them until the next start, but
     * never finds a face that is gone. */
    if (rc != FA_OK)
        fa_index_remove_user(g->index, customer_id, user_id);
    pthread_mutex_unlock(&g->follow_lock);
    if (rc != FA_OK)
        fprintf(stderr, "faceauth: search index update failed for user %lld: %s\n",
                (long long)user_id, err.msg);
}
