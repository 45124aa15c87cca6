/*
 * gallery.h — the users' stored faces: the templates in the store and the
 * search index that mirrors them, written together.
 *
 * Every change to a user's templates goes through here (enroll, update,
 * learn, user update with resetFace, user delete, the load at start), and
 * the index follows each committed change at once, so no caller can change
 * one without the other. All index writes after start pass through
 * fa_gallery_follow, which makes the index hold exactly what the store
 * holds for one user: a node that learns of another node's write (a
 * shared database's change feed) calls it too, and its index follows.
 *
 * The store stays the truth: when the index cannot follow (no memory, a
 * damaged vector) the user is dropped from it and the operator is told, so
 * search may miss a face until the next start but never finds one that is
 * gone. Reads for search go to the index directly (index.h).
 *
 * Threads: any thread may call anything but _new/_free (the store and the
 * index lock for themselves).
 */
#ifndef FACEAUTH_GALLERY_H
#define FACEAUTH_GALLERY_H

#include <stdint.h>

#include "faceauth/common.h"
#include "faceauth/face.h"
#include "faceauth/index.h"
#include "faceauth/store.h"

struct fa_gallery;

/* A gallery over store and index (borrowed: both must outlive it); the
 * index holds the templates of model_id, dim floats each. */
enum fa_rc fa_gallery_new(struct fa_store *store, struct fa_index *index, const char *model_id,
                          int dim, struct fa_gallery **out, struct fa_err *err);
void fa_gallery_free(struct fa_gallery *g); /* NULL is fine */

/*
 * At start, before any request: every stored template of the index's model
 * into the (empty) index. A damaged template (NaN, Inf) is left out and
 * named on stderr rather than keeping the server from starting; a store
 * failure is returned.
 */
enum fa_rc fa_gallery_load(struct fa_gallery *g, struct fa_err *err);

/*
 * The user's samples with every model's vector (vec laid out as
 * fa_face_verify reads it: sample i, model m at i * FA_N_MODELS + m).
 * Free with fa_store_samples_free.
 */
enum fa_rc fa_gallery_samples(struct fa_gallery *g, int64_t user_id,
                              struct fa_store_samples **out, struct fa_err *err);

/*
 * An analysed face as a sample to store: one template per model it was
 * embedded with, written into tpl[] (FA_N_MODELS slots, vectors borrowed
 * from probe), and the sample into *out (which points at tpl). source is
 * "enroll" or "learned".
 */
void fa_gallery_sample_of(const struct fa_face_probe *probe, const char *source,
                          struct fa_store_template tpl[FA_N_MODELS],
                          struct fa_store_sample *out);

/*
 * fa_store_record_commit, then, when the record changed the user's
 * templates (samples added, templates replaced), the index follows.
 * Errors are the commit's; nothing changed then.
 */
enum fa_rc fa_gallery_commit(struct fa_gallery *g, const struct fa_store_record *rec,
                             struct fa_err *err);

/* fa_store_user_update; with chg->reset_face the user's faces are gone
 * from the index too. */
enum fa_rc fa_gallery_user_update(struct fa_gallery *g, int64_t customer_id,
                                  const char *user_name, const struct fa_user_changes *chg,
                                  struct fa_user *out, struct fa_err *err);

/* fa_store_user_delete (the same out parameters), and the user leaves the
 * index. */
enum fa_rc fa_gallery_user_delete(struct fa_gallery *g, int64_t customer_id,
                                  const char *user_name, int64_t *user_id, char ***paths,
                                  int *n, struct fa_err *err);

/*
 * Make the index hold exactly the store's templates of one user (none: the
 * user leaves it). Called after every committed change here; a multi-node
 * mode calls it for each user another node changed. Never fails: when the
 * index cannot follow, the user is dropped from it and stderr says why.
 */
void fa_gallery_follow(struct fa_gallery *g, int64_t customer_id, int64_t user_id);

#endif
