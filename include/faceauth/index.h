/*
 * index.h — the in-memory template index for 1:N search.
 *
 * Every customer's templates of one model live in contiguous, aligned float
 * matrices (one per template count, a user's rows side by side, the owning
 * user ids beside them), loaded at start and updated after every enroll,
 * update, learn and delete, so a search never reads the database for
 * embeddings and never sees a stale face. Scoring is one tight dot-product
 * loop over the rows that the compiler vectorises (AVX2/FMA where the CPU
 * has it, chosen at run time).
 *
 * Ids: customer and user ids are > 0 (FA_EINVAL otherwise).
 *
 * Threads: any number of searches run at once (read lock); changes run one
 * at a time, allocate and copy grown arrays before taking the write lock,
 * and hold it only to copy one user's rows in or out; never during I/O.
 * fa_index_new/fa_index_free must not race with anything.
 */
#ifndef FACEAUTH_INDEX_H
#define FACEAUTH_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "faceauth/common.h"

struct fa_index;

/* An empty index for embeddings of dim floats (1..65536). */
enum fa_rc fa_index_new(int dim, struct fa_index **out, struct fa_err *err);
void fa_index_free(struct fa_index *idx); /* NULL is fine */

/*
 * Replace all templates of one user with n vectors (n * dim floats, copied).
 * n == 0 removes the user. FA_ENOMEM leaves the index as it was. FA_EINVAL
 * for a value that is not finite; FA_ETOOBIG above 4096 templates per user.
 */
enum fa_rc fa_index_set_user(struct fa_index *idx, int64_t customer_id, int64_t user_id,
                             const float *vecs, int n, struct fa_err *err);

/* Remove a user (no-op when absent). */
void fa_index_remove_user(struct fa_index *idx, int64_t customer_id, int64_t user_id);

/* Append one template of a user (for loading at start; faster than set_user per template).
 * Errors as for fa_index_set_user. */
enum fa_rc fa_index_add(struct fa_index *idx, int64_t customer_id, int64_t user_id,
                        const float *vec, struct fa_err *err);

struct fa_index_hit {
    int64_t user_id;
    float score; /* the user's best template score */
};

/*
 * The users of customer_id whose best template scores >= threshold against
 * probe, best first (ties: lower user id first), at most max_hits of them.
 * When allowed is not NULL, only users whose id is in allowed[0..n_allowed)
 * (sorted ascending) count. *hits is malloc'ed (free()); *n may be 0, and
 * then *hits is NULL. An unknown customer has no hits. FA_EINVAL when
 * max_hits < 1, the probe is not finite or allowed is not sorted.
 */
enum fa_rc fa_index_search(struct fa_index *idx, int64_t customer_id, const float *probe,
                           float threshold, const int64_t *allowed, int n_allowed, int max_hits,
                           struct fa_index_hit **hits, int *n, struct fa_err *err);

/* Number of templates held for a customer (all customers when customer_id is 0). */
size_t fa_index_count(struct fa_index *idx, int64_t customer_id);

#endif
