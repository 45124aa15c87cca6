/*
 * test_gallery.c — the gallery (include/faceauth/gallery.h) on a real
 * SQLite store and a real index: every template change it commits (enroll,
 * learn, replace, a failed attempt, reset, delete) leaves the index holding
 * exactly the stored templates of the index's model; a refused commit
 * changes neither; the start-up load and fa_gallery_follow (what another
 * node's write will trigger) rebuild the same picture from the store.
 */
#include "faceauth/crypto.h"
#include "faceauth/gallery.h"

/* The fixture's template builders are not needed here. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "store_fixture.h"

#define ARC FA_MODEL_ARCFACE

static struct fa_store *g_st;
static struct fa_index *g_idx;
static struct fa_gallery *g_gal;
static int64_t g_acme;

static int64_t customer_new(const char *name)
{
    struct fa_err err = {{0}};
    int64_t id = 0;
    if (fa_store_customer_add(g_st, name, "pw", &err) != FA_OK ||
        fa_store_customer_id(g_st, name, &id, &err) != FA_OK)
        tap_diag("customer %s: %s", name, err.msg);
    return id;
}

static void user_new(const char *name, struct fa_user *u)
{
    struct fa_err err = {{0}};
    user_init(u, g_acme, name);
    if (fa_store_user_create(g_st, u, &err) != FA_OK) {
        tap_diag("user %s: %s", name, err.msg);
        u->id = 0;
    }
}

/* A probe embedded by the index's model (and MFN), its ARC vector the axis `axis`. */
static struct fa_face_probe *probe_new(int axis)
{
    struct fa_face_probe *p = calloc(1, sizeof *p);
    if (p == NULL)
        abort();
    p->models = FA_MODEL_BIT(ARC) | FA_MODEL_BIT(FA_MODEL_MFN);
    p->emb[ARC][axis] = 1;
    p->emb[FA_MODEL_MFN][axis] = 1;
    p->q.sharpness = 100;
    return p;
}

/* Commit a record for u adding probe as a sample from source (probe NULL:
 * none), replacing the templates when replace. */
static enum fa_rc commit(const struct fa_user *u, const struct fa_face_probe *probe,
                         const char *source, int replace)
{
    struct fa_store_record rec = rec_init(g_acme, u, "enroll");
    struct fa_store_template tpl[FA_N_MODELS];
    struct fa_store_sample sample;
    struct fa_err err = {{0}};
    enum fa_rc rc;
    if (probe != NULL) {
        fa_gallery_sample_of(probe, source, tpl, &sample);
        rec.samples = &sample;
        rec.n_samples = 1;
        rec.max_learned = 3;
    }
    rec.replace_templates = replace;
    rc = fa_gallery_commit(g_gal, &rec, &err);
    if (rc != FA_OK)
        tap_diag("commit: %s %s", fa_rc_name(rc), err.msg);
    return rc;
}

/* The users of acme whose template matches the unit vector on axis (cosine ~1). */
static int hits_on(int axis, int64_t *first)
{
    float probe[FA_EMBED_DIM] = {0};
    struct fa_index_hit *h = NULL;
    int n = 0;
    probe[axis] = 1;
    if (fa_index_search(g_idx, g_acme, probe, 0.99f, NULL, 0, 10, &h, &n, NULL) != FA_OK)
        return -1;
    if (first != NULL)
        *first = n > 0 ? h[0].user_id : 0;
    free(h);
    return n;
}

static void test_sample_of(void)
{
    struct fa_face_probe *p = probe_new(3);
    struct fa_store_template tpl[FA_N_MODELS];
    struct fa_store_sample s;
    fa_gallery_sample_of(p, "learned", tpl, &s);
    tap_ok(s.n_templates == 2 && s.templates == tpl && strcmp(s.source, "learned") == 0 &&
               s.quality == 100 && tpl[0].vec == p->emb[ARC] &&
               strcmp(tpl[0].model_id, FA_MODEL_ID) == 0 && tpl[0].dim == FA_EMBED_DIM &&
               tpl[1].vec == p->emb[FA_MODEL_MFN],
           "a probe as a sample: one template per model it holds, vectors borrowed");
    free(p);
}

static void test_writes(void)
{
    struct fa_user ann, bob;
    struct fa_face_probe *a1 = probe_new(1), *a2 = probe_new(2), *a5 = probe_new(5);
    struct fa_face_probe *b3 = probe_new(3);
    struct fa_store_samples *samples = NULL;
    struct fa_user_changes chg = {0};
    struct fa_store_record rec;
    struct fa_err err = {{0}};
    int64_t who = 0, id = 0;
    char **paths = NULL;
    int n = 0;
    user_new("ann", &ann);
    user_new("bob", &bob);

    tap_ok(commit(&ann, a1, "enroll", 0) == FA_OK && hits_on(1, &who) == 1 && who == ann.id &&
               fa_index_count(g_idx, g_acme) == 1,
           "enroll: the committed template is searchable at once");
    tap_ok(commit(&bob, b3, "enroll", 0) == FA_OK && commit(&ann, NULL, NULL, 0) == FA_OK &&
               fa_index_count(g_idx, g_acme) == 2,
           "a second user; a record without templates changes nothing");
    tap_ok(commit(&ann, a2, "learned", 0) == FA_OK && hits_on(2, &who) == 1 && who == ann.id &&
               hits_on(1, NULL) == 1 && fa_index_count(g_idx, g_acme) == 3,
           "learn: the learned template joins the enrolled one");
    tap_ok(fa_gallery_samples(g_gal, ann.id, &samples, &err) == FA_OK && samples->n == 2 &&
               samples->vec[ARC] != NULL && samples->vec[FA_N_MODELS + ARC][2] == 1.0f,
           "the user's samples for verify, every model's vector: %s", err.msg);
    fa_store_samples_free(samples);
    tap_ok(commit(&ann, a5, "enroll", 1) == FA_OK && hits_on(5, &who) == 1 && who == ann.id &&
               hits_on(1, NULL) == 0 && hits_on(2, NULL) == 0 &&
               fa_index_count(g_idx, g_acme) == 2,
           "update (replace): the old faces leave the index with the store");

    rec = rec_init(g_acme, &ann, "enroll");
    rec.require_state = 1;
    rec.expected_state = FA_USER_SUCCESS; /* ann is still draft: the commit is refused */
    rec.replace_templates = 1;
    tap_ok(fa_gallery_commit(g_gal, &rec, &err) == FA_EFAIL && hits_on(5, NULL) == 1,
           "a refused commit changes neither the store nor the index");

    err.msg[0] = '\0';
    chg.reset_face = 1;
    tap_ok(fa_gallery_user_update(g_gal, g_acme, "ann", &chg, &ann, &err) == FA_OK &&
               hits_on(5, NULL) == 0 && fa_index_count(g_idx, g_acme) == 1,
           "user update with resetFace: her faces leave the index: %s", err.msg);
    tap_ok(fa_gallery_user_delete(g_gal, g_acme, "bob", &id, &paths, &n, &err) == FA_OK &&
               id == bob.id && hits_on(3, NULL) == 0 && fa_index_count(g_idx, g_acme) == 0,
           "user delete: the user leaves the index: %s", err.msg);
    fa_store_paths_free(paths, n);
    tap_ok(fa_gallery_user_delete(g_gal, g_acme, "bob", &id, &paths, &n, &err) == FA_ENOTFOUND,
           "deleting an unknown user is the store's FA_ENOTFOUND");
    free(a1);
    free(a2);
    free(a5);
    free(b3);
}

/* A write the gallery did not make (another node's): the index follows
 * when told, and a fresh index loaded at start holds the same. */
static void test_follow_and_load(void)
{
    struct fa_user cid;
    struct fa_face_probe *c7 = probe_new(7);
    struct fa_store_template tpl[FA_N_MODELS];
    struct fa_store_sample sample;
    struct fa_store_record rec;
    struct fa_index *fresh = NULL;
    struct fa_gallery *g2 = NULL;
    struct fa_err err = {{0}};
    user_new("cid", &cid);
    rec = rec_init(g_acme, &cid, "enroll");
    fa_gallery_sample_of(c7, "enroll", tpl, &sample);
    rec.samples = &sample;
    rec.n_samples = 1;
    tap_ok(fa_store_record_commit(g_st, &rec, &err) == FA_OK && hits_on(7, NULL) == 0,
           "a write behind the gallery's back is not in the index yet");
    fa_gallery_follow(g_gal, g_acme, cid.id);
    tap_ok(hits_on(7, NULL) == 1, "fa_gallery_follow: now it is");
    fa_gallery_follow(g_gal, g_acme, cid.id);
    tap_ok(fa_index_count(g_idx, g_acme) == 1, "following twice is harmless");

    tap_ok(fa_index_new(FA_EMBED_DIM, &fresh, NULL) == FA_OK &&
               fa_gallery_new(g_st, fresh, FA_MODEL_ID, FA_EMBED_DIM, &g2, &err) == FA_OK &&
               fa_gallery_load(g2, &err) == FA_OK &&
               fa_index_count(fresh, 0) == fa_index_count(g_idx, 0),
           "the start-up load rebuilds the same index from the store: %s", err.msg);
    fa_gallery_free(g2);
    g2 = NULL;
    fa_index_free(fresh);
    fresh = NULL;
    tap_ok(fa_index_new(FA_EMBED_DIM, &fresh, NULL) == FA_OK &&
               fa_gallery_new(g_st, fresh, "other-1", FA_EMBED_DIM, &g2, &err) == FA_OK &&
               fa_gallery_load(g2, &err) == FA_OK && fa_index_count(fresh, 0) == 0,
           "an index of another model loads none of these templates");
    fa_gallery_free(g2);
    fa_index_free(fresh);
    tap_ok(fa_gallery_new(g_st, NULL, FA_MODEL_ID, FA_EMBED_DIM, &g2, &err) == FA_EINVAL &&
               g2 == NULL,
           "a gallery needs an index");
    fa_gallery_free(NULL);
    free(c7);
}

/* A fresh database in a temporary folder, an index and the gallery over them. */
static int setup(void)
{
    struct fa_err err = {{0}};
    if (fa_crypto_init() != FA_OK || !dir_setup("fa_test_gallery"))
        return tap_ok(0, "crypto and a temporary folder");
    if (fa_store_open(g_db, &g_st, &err) != FA_OK)
        return tap_ok(0, "open: %s", err.msg);
    if (fa_index_new(FA_EMBED_DIM, &g_idx, &err) != FA_OK ||
        fa_gallery_new(g_st, g_idx, FA_MODEL_ID, FA_EMBED_DIM, &g_gal, &err) != FA_OK)
        return tap_ok(0, "index and gallery: %s", err.msg);
    g_acme = customer_new("acme");
    return tap_ok(g_acme > 0, "a store, an index, a gallery and a customer");
}

int main(void)
{
    if (setup()) {
        test_sample_of();
        test_writes();
        test_follow_and_load();
    }
    fa_gallery_free(g_gal);
    fa_index_free(g_idx);
    fa_store_free(g_st);
    dir_remove();
    return tap_done();
}
