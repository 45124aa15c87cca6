/*
 * test_index.c — the in-memory search index against a brute-force model.
 *
 * Most vectors are random unit vectors snapped to multiples of 2^-10: the
 * dot product of two of them is a multiple of 2^-20 whose partial sums stay
 * below 2 in magnitude, so float computes it exactly whatever the summation
 * order and with or without FMA. The index and the double-precision model
 * therefore agree to the bit, which makes the order check exact (ties are
 * real ties, broken by the lower user id) and lets a threshold equal to a
 * score test the ">=" edge. One check uses unsnapped vectors for accuracy.
 *
 * Scenarios: edge cases and bad arguments; many random changes (add,
 * set_user replace, set_user n=0, remove, re-add) each followed by searches
 * compared with the model (thresholds, allowed filters, max_hits cuts),
 * counts and bytes; isolation between customers; allocation failures at
 * every point of a change leave the index as it was; concurrent searches
 * while another thread keeps changing the index.
 */
#include "faceauth/index.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/index_int.h"
#include "index/index_test.h"
#include "tap.h"

#define MAX_T 10      /* templates per user in the random runs */
#define POOL 40       /* user ids per customer in the random runs */
#define SCORE_EPS 1e-5

/* ---- random numbers (xorshift64*) ---- */

struct rng {
    uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static double rng_unit(struct rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static int rng_int(struct rng *r, int n)
{
    return (int)(rng_next(r) % (uint64_t)n);
}

static void vec_unit(struct rng *r, int dim, float *v)
{
    double norm = 0;
    for (int i = 0; i < dim; i++) {
        v[i] = (float)(2 * rng_unit(r) - 1);
        norm += (double)v[i] * v[i];
    }
    norm = sqrt(norm);
    if (norm == 0) {
        v[0] = 1;
        norm = 1;
    }
    for (int i = 0; i < dim; i++)
        v[i] = (float)(v[i] / norm);
}

/* A unit vector snapped to the 2^-10 grid (see the top of the file). */
static void vec_grid(struct rng *r, int dim, float *v)
{
    vec_unit(r, dim, v);
    for (int i = 0; i < dim; i++)
        v[i] = roundf(v[i] * 1024.0f) / 1024.0f;
}

static double dot(const float *a, const float *b, int dim)
{
    double s = 0;
    for (int i = 0; i < dim; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* ---- the brute-force model ---- */

struct muser {
    int64_t cid, uid;
    int n; /* 0: absent */
    float *vecs;
};

struct model {
    int dim;
    struct muser *u;
    int n_u;
};

static struct muser *model_get(struct model *m, int64_t cid, int64_t uid)
{
    for (int i = 0; i < m->n_u; i++)
        if (m->u[i].cid == cid && m->u[i].uid == uid)
            return &m->u[i];
    m->u = realloc(m->u, (size_t)(m->n_u + 1) * sizeof *m->u);
    m->u[m->n_u] = (struct muser){.cid = cid, .uid = uid};
    return &m->u[m->n_u++];
}

static void model_set(struct model *m, int64_t cid, int64_t uid, const float *vecs, int n)
{
    struct muser *u = model_get(m, cid, uid);
    free(u->vecs);
    u->vecs = NULL;
    u->n = n;
    if (n > 0) {
        u->vecs = malloc((size_t)n * m->dim * sizeof(float));
        memcpy(u->vecs, vecs, (size_t)n * m->dim * sizeof(float));
    }
}

static void model_add(struct model *m, int64_t cid, int64_t uid, const float *vec)
{
    struct muser *u = model_get(m, cid, uid);
    u->vecs = realloc(u->vecs, (size_t)(u->n + 1) * m->dim * sizeof(float));
    memcpy(u->vecs + (size_t)u->n * m->dim, vec, m->dim * sizeof(float));
    u->n++;
}

static void model_cleanup(struct model *m)
{
    for (int i = 0; i < m->n_u; i++)
        free(m->u[i].vecs);
    free(m->u);
    m->u = NULL;
    m->n_u = 0;
}

static size_t model_rows(const struct model *m, int64_t cid)
{
    size_t n = 0;
    for (int i = 0; i < m->n_u; i++)
        if (cid == 0 || m->u[i].cid == cid)
            n += (size_t)m->u[i].n;
    return n;
}

static int hit_cmp(const void *pa, const void *pb)
{
    const struct fa_index_hit *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return (a->user_id > b->user_id) - (a->user_id < b->user_id);
}

static int in_sorted(const int64_t *ids, int n, int64_t id)
{
    for (int i = 0; i < n; i++)
        if (ids[i] == id)
            return 1;
    return 0;
}

/* The reference search; *out is malloc'ed. */
static int model_search(const struct model *m, int64_t cid, const float *probe, float thr,
                        const int64_t *allowed, int n_allowed, int max_hits,
                        struct fa_index_hit **out)
{
    struct fa_index_hit *h = malloc((size_t)(m->n_u + 1) * sizeof *h);
    int n = 0;

    for (int i = 0; i < m->n_u; i++) {
        const struct muser *u = &m->u[i];
        double best = -INFINITY;
        if (u->cid != cid || u->n == 0)
            continue;
        if (allowed != NULL && !in_sorted(allowed, n_allowed, u->uid))
            continue;
        for (int t = 0; t < u->n; t++) {
            double s = dot(u->vecs + (size_t)t * m->dim, probe, m->dim);
            if (s > best)
                best = s;
        }
        if ((float)best >= thr)
            h[n++] = (struct fa_index_hit){.user_id = u->uid, .score = (float)best};
    }
    qsort(h, (size_t)n, sizeof *h, hit_cmp);
    *out = h;
    return n < max_hits ? n : max_hits;
}

/* ---- comparing the index with the model ---- */

struct stats {
    int searches;
    int mismatches;
};

static int check_search(struct fa_index *idx, const struct model *m, struct stats *st, int64_t cid,
                        const float *probe, float thr, const int64_t *allowed, int n_allowed,
                        int max_hits, const char *what)
{
    struct fa_index_hit *got = NULL, *want = NULL;
    struct fa_err err = {{0}};
    int n_got = -1, n_want, ok;
    enum fa_rc rc;

    rc = fa_index_search(idx, cid, probe, thr, allowed, n_allowed, max_hits, &got, &n_got, &err);
    n_want = model_search(m, cid, probe, thr, allowed, n_allowed, max_hits, &want);
    ok = rc == FA_OK && n_got == n_want && (n_got > 0) == (got != NULL);
    for (int i = 0; ok && i < n_want; i++)
        ok = got[i].user_id == want[i].user_id && fabsf(got[i].score - want[i].score) <= SCORE_EPS;
    st->searches++;
    if (!ok && st->mismatches++ < 5) {
        tap_diag("%s: cid %lld thr %g allowed %d max %d: rc %s n %d want %d (%s)", what,
                 (long long)cid, thr, allowed ? n_allowed : -1, max_hits, fa_rc_name(rc), n_got,
                 n_want, err.msg);
        for (int i = 0; i < n_got || i < n_want; i++)
            tap_diag("  #%d got %lld %.7f want %lld %.7f", i,
                     i < n_got ? (long long)got[i].user_id : -1LL, i < n_got ? got[i].score : 0,
                     i < n_want ? (long long)want[i].user_id : -1LL,
                     i < n_want ? want[i].score : 0);
    }
    free(got);
    free(want);
    return ok;
}

/* Every customer, threshold -1 (everyone), no filter: the whole content. */
static int check_all(struct fa_index *idx, const struct model *m, struct stats *st,
                     const int64_t *cids, int n_cids, const float *probe, const char *what)
{
    int ok = 1;
    for (int i = 0; i < n_cids; i++)
        ok &= check_search(idx, m, st, cids[i], probe, -1.0f, NULL, 0, 100000, what);
    ok &= fa_index_count(idx, 0) == model_rows(m, 0);
    for (int i = 0; i < n_cids; i++)
        ok &= fa_index_count(idx, cids[i]) == model_rows(m, cids[i]);
    return ok;
}

/* White-box: the invariants of index_int.h hold for every customer. */
static int check_invariants(struct fa_index *idx)
{
    size_t all_rows = 0;
    int ok = 1;

    for (size_t i = 0; i < idx->custs.cap; i++) {
        const struct fa_index_cust *c = (const void *)(uintptr_t)idx->custs.vals[i];
        size_t users = 0, rows = 0;
        if (idx->custs.keys[i] == 0)
            continue;
        ok &= c->id == idx->custs.keys[i] && c->users.n > 0;
        for (const struct fa_index_slab *s = c->slabs; s != NULL; s = s->next) {
            ok &= s->n > 0 && s->n <= s->cap && fa_index_slab_find(c, s->width) == s;
            for (uint32_t slot = 0; slot < s->n; slot++) {
                uint64_t v = 0;
                const float *row = fa_index_slab_rows(s, idx->stride, slot);
                ok &= fa_index_map_get(&c->users, s->uids[slot], &v) &&
                      v == FA_INDEX_PACK(s->width, slot);
                for (int t = 0; t < s->width; t++)
                    for (size_t j = (size_t)idx->dim; j < idx->stride; j++)
                        ok &= row[(size_t)t * idx->stride + j] == 0.0f;
            }
            users += s->n;
            rows += (size_t)s->n * (size_t)s->width;
        }
        ok &= users == c->users.n && rows == c->n_rows;
        all_rows += rows;
    }
    return ok && all_rows == idx->n_rows;
}

/* ---- random changes ---- */

struct run {
    struct rng r;
    struct model m;
    int dim;
    int64_t cids[3];
    float *tmp; /* MAX_T * dim */
};

static int64_t run_uid(struct run *rn, int64_t cid)
{
    return cid * 1000 + 1 + rng_int(&rn->r, POOL);
}

/* A new template: usually random, sometimes a copy of a stored one (ties). */
static void run_template(struct run *rn, int64_t cid, float *v)
{
    if (rng_int(&rn->r, 8) == 0) {
        for (int tries = 0; tries < 8; tries++) {
            const struct muser *u;
            if (rn->m.n_u == 0)
                break;
            u = &rn->m.u[rng_int(&rn->r, rn->m.n_u)];
            if (u->cid == cid && u->n > 0) {
                memcpy(v, u->vecs + (size_t)rng_int(&rn->r, u->n) * rn->dim,
                       rn->dim * sizeof(float));
                return;
            }
        }
    }
    vec_grid(&rn->r, rn->dim, v);
}

/* One random change, applied to the index (idx not NULL) and/or the model. */
static enum fa_rc run_change(struct run *rn, struct fa_index *idx, int update_model)
{
    int64_t cid = rn->cids[rng_int(&rn->r, 3)], uid = run_uid(rn, cid);
    int op = rng_int(&rn->r, 100), n = 0;
    enum fa_rc rc = FA_OK;

    if (op < 35) {
        run_template(rn, cid, rn->tmp);
        if (idx != NULL)
            rc = fa_index_add(idx, cid, uid, rn->tmp, NULL);
        if (rc == FA_OK && update_model)
            model_add(&rn->m, cid, uid, rn->tmp);
        return rc;
    }
    if (op < 70) {
        n = 1 + rng_int(&rn->r, MAX_T);
        for (int t = 0; t < n; t++)
            run_template(rn, cid, rn->tmp + (size_t)t * rn->dim);
    }
    if (idx != NULL && op >= 85)
        fa_index_remove_user(idx, cid, uid);
    else if (idx != NULL)
        rc = fa_index_set_user(idx, cid, uid, rn->tmp, n, NULL);
    if (rc == FA_OK && update_model)
        model_set(&rn->m, cid, uid, rn->tmp, n);
    return rc;
}

/* A sorted allowed list: a few or many ids of the pool, with duplicates,
 * ids nobody has, and sometimes 0 or a negative id. */
static int run_allowed(struct run *rn, int64_t cid, int64_t *ids)
{
    int kind = rng_int(&rn->r, 4), n = 0;
    int want = kind == 0 ? 0 : kind == 1 ? 1 : kind == 2 ? 3 : POOL / 2 + rng_int(&rn->r, POOL);

    if (rng_int(&rn->r, 6) == 0)
        ids[n++] = rng_int(&rn->r, 2) ? 0 : -7;
    for (int i = 0; i < want; i++)
        ids[n++] = rng_int(&rn->r, 10) == 0 ? cid * 1000 + POOL + 5 : run_uid(rn, cid);
    if (n > 1 && rng_int(&rn->r, 3) == 0)
        ids[n++] = ids[0];
    for (int i = 1; i < n; i++) /* insertion sort */
        for (int j = i; j > 0 && ids[j] < ids[j - 1]; j--) {
            int64_t t = ids[j];
            ids[j] = ids[j - 1];
            ids[j - 1] = t;
        }
    return n;
}

/* A threshold: everyone, a few fixed ones, or exactly some user's score. */
static float run_threshold(struct run *rn, int64_t cid, const float *probe)
{
    static const float fixed[] = {-1.0f, -0.05f, 0.0f, 0.05f, 0.3f};
    struct fa_index_hit *h = NULL;
    int n, pick = rng_int(&rn->r, 7);
    float thr;

    if (pick < 5)
        return fixed[pick];
    n = model_search(&rn->m, cid, probe, -1.0f, NULL, 0, 1 << 30, &h);
    thr = n > 0 ? h[rng_int(&rn->r, n)].score : 0.5f;
    free(h);
    return thr;
}

static void run_searches(struct run *rn, struct fa_index *idx, struct stats *st)
{
    static const int maxes[] = {1, 2, 5, 100000};
    int64_t allowed[2 * POOL + 8];
    float *probe = rn->tmp + (size_t)MAX_T * rn->dim;

    for (int k = 0; k < 3; k++) {
        int64_t cid = rn->cids[k];
        const struct muser *u = rn->m.n_u ? &rn->m.u[rng_int(&rn->r, rn->m.n_u)] : NULL;
        int na = 0, use_allowed = rng_int(&rn->r, 2);
        if (u != NULL && u->n > 0 && rng_int(&rn->r, 2))
            memcpy(probe, u->vecs, rn->dim * sizeof(float)); /* maybe another customer's */
        else
            vec_grid(&rn->r, rn->dim, probe);
        float thr;
        int max_hits;
        if (use_allowed)
            na = run_allowed(rn, cid, allowed);
        thr = run_threshold(rn, cid, probe); /* not in the call: keep the draws in order */
        max_hits = maxes[rng_int(&rn->r, 4)];
        check_search(idx, &rn->m, st, cid, probe, thr, use_allowed ? allowed : NULL, na, max_hits,
                     "random");
    }
}

static void run_init(struct run *rn, int dim, uint64_t seed)
{
    memset(rn, 0, sizeof *rn);
    rn->r.s = seed;
    rn->dim = dim;
    rn->m.dim = dim;
    rn->cids[0] = 1;
    rn->cids[1] = 2;
    rn->cids[2] = 77;
    rn->tmp = malloc((size_t)(MAX_T + 1) * dim * sizeof(float));
}

static void run_cleanup(struct run *rn)
{
    model_cleanup(&rn->m);
    free(rn->tmp);
}

static size_t bytes_floor(const struct fa_index *idx, size_t rows)
{
    return rows * (size_t)idx->dim * sizeof(float);
}

static void test_random(int dim, int n_ops, uint64_t seed)
{
    struct fa_index *idx = NULL;
    struct stats st = {0};
    struct run rn;
    int counts_ok = 1, bytes_ok = 1, inv_ok = 1;
    size_t max_rows = 0;

    run_init(&rn, dim, seed);
    TAP_OK(fa_index_new(dim, &idx, NULL) == FA_OK);
    for (int i = 0; i < n_ops; i++) {
        size_t rows;
        if (run_change(&rn, idx, 1) != FA_OK)
            counts_ok = 0;
        rows = model_rows(&rn.m, 0);
        counts_ok &= fa_index_count(idx, 0) == rows;
        for (int k = 0; k < 3; k++)
            counts_ok &= fa_index_count(idx, rn.cids[k]) == model_rows(&rn.m, rn.cids[k]);
        /* At most 3 customers x 10 widths of slabs, each at least 1/4 full
         * (min 4 users), plus maps: a generous ceiling, and a hard floor. */
        bytes_ok &= fa_index_bytes(idx) >= bytes_floor(idx, rows);
        bytes_ok &= fa_index_bytes(idx) <= 16 * (rows + 3 * 10 * 4 * MAX_T) * idx->stride * 4;
        if (rows > max_rows)
            max_rows = rows;
        inv_ok &= check_invariants(idx);
        run_searches(&rn, idx, &st);
    }
    tap_ok(st.mismatches == 0, "dim %d: %d searches after %d random changes equal brute force",
           dim, st.searches, n_ops);
    tap_ok(counts_ok, "dim %d: counts follow every change", dim);
    tap_ok(inv_ok, "dim %d: slabs, slots, maps and padding stay consistent", dim);
    tap_ok(bytes_ok, "dim %d: bytes stay between the matrix size and a ceiling", dim);
    tap_diag("dim %d: up to %zu templates, %zu bytes at the end", dim, max_rows,
             fa_index_bytes(idx));

    /* Empty every customer: counts 0, searches 0 hits, memory given back. */
    for (int k = 0; k < 3; k++)
        for (int u = 0; u < POOL; u++)
            fa_index_remove_user(idx, rn.cids[k], rn.cids[k] * 1000 + 1 + u);
    tap_ok(fa_index_count(idx, 0) == 0, "dim %d: all removed", dim);
    tap_ok(fa_index_bytes(idx) < 1024, "dim %d: bytes after removing all: %zu", dim,
           fa_index_bytes(idx));
    fa_index_free(idx);
    run_cleanup(&rn);
}

/* ---- allocation failures ---- */

static void test_alloc_failures(void)
{
    struct fa_index *idx = NULL;
    struct stats st = {0};
    struct run rn;
    struct fa_index_hit *h = NULL;
    int n_hits = 0, unchanged = 1, eventually = 1, failures = 0;
    float *probe;

    run_init(&rn, 24, 0x5eed0a11cULL);
    probe = rn.tmp + (size_t)MAX_T * rn.dim;
    TAP_OK(fa_index_new(rn.dim, &idx, NULL) == FA_OK);
    for (int i = 0; i < 400; i++) {
        struct rng saved = rn.r;
        int k;
        for (k = 0; k < 64; k++) {
            size_t bytes = fa_index_bytes(idx);
            enum fa_rc rc;
            rn.r = saved; /* the same change each time */
            fa_index_test_fail_allocs(idx, k);
            rc = run_change(&rn, idx, 0);
            fa_index_test_fail_allocs(idx, -1);
            if (rc == FA_OK)
                break;
            failures++;
            vec_grid(&rn.r, rn.dim, probe);
            unchanged &= rc == FA_ENOMEM && fa_index_bytes(idx) == bytes;
            unchanged &= check_all(idx, &rn.m, &st, rn.cids, 3, probe, "after ENOMEM");
        }
        eventually &= k < 64;
        rn.r = saved; /* the change that went through, into the model */
        run_change(&rn, NULL, 1);
        vec_grid(&rn.r, rn.dim, probe);
        unchanged &= check_all(idx, &rn.m, &st, rn.cids, 3, probe, "after success");
    }
    tap_ok(unchanged && st.mismatches == 0,
           "%d failed allocations during changes left the index as it was", failures);
    tap_ok(eventually, "every change succeeds once allocations do");

    fa_index_test_fail_allocs(idx, 0);
    TAP_OK(fa_index_search(idx, 1, probe, -1.0f, NULL, 0, 10, &h, &n_hits, NULL) == FA_ENOMEM);
    fa_index_test_fail_allocs(idx, 1);
    TAP_OK(fa_index_search(idx, 1, probe, -1.0f, NULL, 0, 10, &h, &n_hits, NULL) == FA_ENOMEM);
    TAP_OK(h == NULL && n_hits == 0);
    fa_index_test_fail_allocs(idx, 0);
    for (int u = 0; u < POOL; u++) /* removing never allocates (shrinking is optional) */
        fa_index_remove_user(idx, 1, 1000 + 1 + u);
    fa_index_test_fail_allocs(idx, -1);
    for (int u = 0; u < POOL; u++)
        model_set(&rn.m, 1, 1000 + 1 + u, NULL, 0);
    TAP_OK(fa_index_count(idx, 1) == 0);
    TAP_OK(check_all(idx, &rn.m, &st, rn.cids, 3, probe, "after removals under ENOMEM"));
    fa_index_free(idx);
    run_cleanup(&rn);
}

/* ---- edge cases ---- */

static void test_arguments(void)
{
    struct fa_index *idx = NULL;
    struct fa_index_hit *h = (void *)1;
    struct fa_err err = {{0}};
    float v[8] = {1, 0, 0, 0, 0, 0, 0, 0}, bad[8] = {0};
    int64_t unsorted[] = {5, 3};
    int n = -1;

    TAP_OK(fa_index_new(0, &idx, &err) == FA_EINVAL && idx == NULL);
    TAP_OK(fa_index_new(FA_INDEX_MAX_DIM + 1, &idx, NULL) == FA_EINVAL);
    TAP_OK(fa_index_new(8, NULL, NULL) == FA_EINVAL);
    TAP_OK(fa_index_new(8, &idx, NULL) == FA_OK);
    fa_index_free(NULL);
    TAP_OK(fa_index_count(idx, 0) == 0 && fa_index_count(idx, 5) == 0);
    TAP_OK(fa_index_bytes(idx) > 0 && fa_index_bytes(idx) < 1024);
    TAP_OK(fa_index_search(idx, 5, v, -1.0f, NULL, 0, 10, &h, &n, NULL) == FA_OK);
    tap_ok(n == 0 && h == NULL, "unknown customer: 0 hits, hits NULL");

    TAP_OK(fa_index_set_user(idx, 0, 1, v, 1, &err) == FA_EINVAL);
    TAP_OK(fa_index_set_user(idx, 1, -3, v, 1, &err) == FA_EINVAL);
    TAP_OK(fa_index_set_user(idx, 1, 1, v, -1, &err) == FA_EINVAL);
    TAP_OK(fa_index_set_user(idx, 1, 1, NULL, 1, &err) == FA_EINVAL);
    TAP_OK(fa_index_set_user(idx, 1, 1, v, FA_INDEX_MAX_TEMPLATES + 1, &err) == FA_ETOOBIG);
    bad[3] = NAN;
    TAP_OK(fa_index_set_user(idx, 1, 1, bad, 1, &err) == FA_EINVAL);
    tap_ok(strstr(err.msg, "not finite") != NULL, "message names the problem: %s", err.msg);
    bad[3] = INFINITY;
    TAP_OK(fa_index_add(idx, 1, 1, bad, NULL) == FA_EINVAL);
    TAP_OK(fa_index_add(idx, 1, 0, v, NULL) == FA_EINVAL);
    TAP_OK(fa_index_count(idx, 0) == 0);

    TAP_OK(fa_index_set_user(idx, 1, 1, v, 1, NULL) == FA_OK);
    TAP_OK(fa_index_search(idx, 0, v, -1.0f, NULL, 0, 10, &h, &n, NULL) == FA_EINVAL);
    TAP_OK(fa_index_search(idx, 1, v, -1.0f, NULL, 0, 0, &h, &n, NULL) == FA_EINVAL);
    TAP_OK(fa_index_search(idx, 1, v, -1.0f, unsorted, 2, 10, &h, &n, &err) == FA_EINVAL);
    TAP_OK(fa_index_search(idx, 1, v, -1.0f, unsorted, -1, 10, &h, &n, &err) == FA_EINVAL);
    TAP_OK(fa_index_search(idx, 1, bad, -1.0f, NULL, 0, 10, &h, &n, &err) == FA_EINVAL);
    TAP_OK(fa_index_search(idx, 1, NULL, -1.0f, NULL, 0, 10, &h, &n, &err) == FA_EINVAL);
    TAP_OK(fa_index_search(idx, 1, v, -1.0f, unsorted, 0, 10, &h, &n, NULL) == FA_OK && n == 0);
    TAP_OK(fa_index_search(idx, 1, v, NAN, NULL, 0, 10, &h, &n, NULL) == FA_OK && n == 0);
    TAP_OK(fa_index_search(idx, 1, v, 1.0f, NULL, 0, 10, &h, &n, NULL) == FA_OK && n == 1);
    tap_ok(h != NULL && h[0].user_id == 1 && h[0].score == 1.0f, "threshold == score is a hit");
    free(h);
    TAP_OK(fa_index_search(idx, 1, v, 1.0001f, NULL, 0, 10, &h, &n, NULL) == FA_OK && n == 0);

    fa_index_remove_user(idx, 1, 999); /* absent: no-op */
    fa_index_remove_user(idx, 42, 1);  /* unknown customer: no-op */
    fa_index_remove_user(idx, -1, 1);
    fa_index_remove_user(NULL, 1, 1);
    TAP_OK(fa_index_count(idx, 1) == 1);
    TAP_OK(fa_index_set_user(idx, 1, 2, NULL, 0, NULL) == FA_OK); /* absent, n = 0: no-op */
    TAP_OK(fa_index_count(idx, 0) == 1);
    fa_index_remove_user(idx, 1, 1);
    TAP_OK(fa_index_count(idx, 0) == 0 && fa_index_count(idx, 1) == 0);
    TAP_OK(fa_index_search(idx, 1, v, -1.0f, NULL, 0, 10, &h, &n, NULL) == FA_OK && n == 0);
    fa_index_free(idx);
}

/* A user with more templates than one scoring chunk, and the sparse path. */
static void test_wide_and_sparse(void)
{
    struct fa_index *idx = NULL;
    struct stats st = {0};
    struct model m = {.dim = 20};
    struct rng r = {0x1234567ULL};
    int64_t allowed[] = {-1, 0, 3, 3, 50, 62, 100000};
    float *vecs = malloc(600 * 20 * sizeof(float)), probe[20];
    size_t bytes, rows = 0;

    TAP_OK(fa_index_new(20, &idx, NULL) == FA_OK);
    for (int u = 1; u <= 63; u++) { /* 60 slabs, then users wider than a scoring chunk */
        int n = u <= 60 ? u : u == 61 ? 257 : u == 62 ? 300 : 600;
        for (int t = 0; t < n; t++)
            vec_grid(&r, 20, vecs + (size_t)t * 20);
        fa_index_set_user(idx, 9, u, vecs, n, NULL);
        model_set(&m, 9, u, vecs, n);
        rows += (size_t)n;
    }
    for (int i = 0; i < 24; i++) {
        /* Half the probes are templates at scoring-chunk edges of the wide users. */
        static const int edge[][2] = {{61, 255}, {61, 256}, {62, 0}, {62, 299},
                                      {63, 255}, {63, 256}, {63, 511}, {63, 599}};
        const int *e = edge[(i / 2) % 8];
        const struct muser *u = model_get(&m, 9, e[0]);
        if (i % 2)
            memcpy(probe, u->vecs + (size_t)e[1] * 20, sizeof probe);
        else
            vec_grid(&r, 20, probe);
        check_search(idx, &m, &st, 9, probe, -1.0f, NULL, 0, 100000, "wide");
        check_search(idx, &m, &st, 9, probe, 0.5f, NULL, 0, 7, "wide");
        check_search(idx, &m, &st, 9, probe, -1.0f, allowed, 7, 100000, "sparse");
        check_search(idx, &m, &st, 9, probe, -1.0f, allowed + 3, 2, 1, "sparse");
    }
    tap_ok(st.mismatches == 0, "users of 1..60, 257, 300, 600 templates; sparse allowed lists");
    TAP_OK(fa_index_count(idx, 9) == rows);
    bytes = fa_index_bytes(idx);
    tap_ok(bytes >= bytes_floor(idx, rows) && bytes < 4 * bytes_floor(idx, rows),
           "bytes %zu for %zu templates", bytes, rows);
    fa_index_free(idx);
    model_cleanup(&m);
    free(vecs);
}

/* Unsnapped unit vectors at dim 512: float scores within 1e-5 of double. */
static void test_accuracy(void)
{
    enum { D = 512, U = 60 };
    struct fa_index *idx = NULL;
    struct model m = {.dim = D};
    struct rng r = {0xacc0ULL};
    float v[D], probe[D];
    int worst_ok = 1, n = 0;
    double worst = 0;

    TAP_OK(fa_index_new(D, &idx, NULL) == FA_OK);
    for (int u = 1; u <= U; u++) {
        vec_unit(&r, D, v);
        fa_index_add(idx, 3, u, v, NULL);
        model_add(&m, 3, u, v);
    }
    for (int q = 0; q < 20; q++) {
        struct fa_index_hit *h = NULL;
        vec_unit(&r, D, probe);
        if (q % 2)
            memcpy(probe, m.u[q].vecs, sizeof probe);
        worst_ok &= fa_index_search(idx, 3, probe, -1.0f, NULL, 0, U, &h, &n, NULL) == FA_OK;
        worst_ok &= n == U;
        for (int i = 0; i < n; i++) {
            double want = dot(model_get(&m, 3, h[i].user_id)->vecs, probe, D);
            if (fabs(want - h[i].score) > worst)
                worst = fabs(want - h[i].score);
            if (i > 0)
                worst_ok &= h[i - 1].score >= h[i].score;
        }
        free(h);
    }
    tap_ok(worst_ok && worst <= SCORE_EPS, "dim 512 unsnapped: worst score error %.2g", worst);
    fa_index_free(idx);
    model_cleanup(&m);
}

/* The kernel alone, on every stride shape (wide loop, narrow tail, both). */
static void test_kernel(void)
{
    struct rng r = {0x6b65726eULL};
    int ok = 1;

    for (size_t stride = FA_INDEX_LANES; stride <= 3 * 64 + FA_INDEX_LANES;
         stride += FA_INDEX_LANES) {
        float *rows = aligned_alloc(FA_INDEX_ALIGN, 7 * stride * sizeof(float));
        float *probe = aligned_alloc(FA_INDEX_ALIGN, stride * sizeof(float));
        float out[7];
        vec_grid(&r, (int)stride, probe);
        for (int i = 0; i < 7; i++)
            vec_grid(&r, (int)stride, rows + i * stride);
        fa_index_score(rows, stride, 7, probe, out);
        for (int i = 0; i < 7; i++)
            ok &= out[i] == (float)dot(rows + i * stride, probe, (int)stride);
        free(rows);
        free(probe);
    }
    tap_ok(ok, "kernel is exact on grid vectors for strides 16..208");
}

/* Customers never see each other's users, even under the same user id. */
static void test_isolation(void)
{
    struct fa_index *idx = NULL;
    struct fa_index_hit *h = NULL;
    struct rng r = {0x150ULL};
    float a[16], b[16];
    int n = 0, ok = 1;

    vec_grid(&r, 16, a);
    vec_grid(&r, 16, b);
    TAP_OK(fa_index_new(16, &idx, NULL) == FA_OK);
    for (int u = 1; u <= 20; u++)
        ok &= fa_index_add(idx, 100, u, a, NULL) == FA_OK;
    ok &= fa_index_add(idx, 200, 7, b, NULL) == FA_OK; /* same id 7, other customer */
    ok &= fa_index_add(idx, 200, 500, b, NULL) == FA_OK;
    ok &= fa_index_search(idx, 200, a, -1.0f, NULL, 0, 1000, &h, &n, NULL) == FA_OK;
    ok &= n == 2 && h[0].user_id == 7 && h[1].user_id == 500 && h[0].score == h[1].score;
    ok &= h[0].score == (float)dot(a, b, 16);
    free(h);
    fa_index_remove_user(idx, 200, 7);
    ok &= fa_index_count(idx, 100) == 20 && fa_index_count(idx, 200) == 1;
    ok &= fa_index_search(idx, 100, a, 0.99f, NULL, 0, 1000, &h, &n, NULL) == FA_OK;
    ok &= n == 20 && h[0].user_id == 1 && h[19].user_id == 20; /* 20-way tie: ids ascending */
    free(h);
    fa_index_remove_user(idx, 100, 7);
    ok &= fa_index_search(idx, 100, a, 0.99f, NULL, 0, 3, &h, &n, NULL) == FA_OK;
    ok &= n == 3 && h[0].user_id == 1 && h[1].user_id == 2 && h[2].user_id == 3;
    free(h);
    ok &= fa_index_search(idx, 300, a, -1.0f, NULL, 0, 10, &h, &n, NULL) == FA_OK && n == 0;
    tap_ok(ok, "customers are isolated; same user id in two customers; ties by id");
    fa_index_free(idx);
}

/* ---- concurrency ---- */

enum { C_DIM = 32, C_STABLE = 50, C_USERS = 150 };

struct conc {
    struct fa_index *idx;
    float stable[C_STABLE + 1][2][C_DIM]; /* user u's two templates */
    atomic_int done;
    atomic_int errors;
    atomic_long searches;
};

struct reader {
    struct conc *c;
    uint64_t seed;
    char first_error[160];
};

static int hits_sane(const struct fa_index_hit *h, int n, int64_t lo, int64_t hi)
{
    for (int i = 0; i < n; i++) {
        if (h[i].user_id < lo || h[i].user_id > hi)
            return 0;
        for (int j = 0; j < i; j++)
            if (h[j].user_id == h[i].user_id)
                return 0;
        if (i > 0 && hit_cmp(&h[i - 1], &h[i]) > 0)
            return 0;
    }
    return 1;
}

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    struct conc *c = rd->c;
    struct rng r = {rd->seed};

    while (!atomic_load(&c->done)) {
        int u = 1 + rng_int(&r, C_STABLE), n = 0, ok;
        const float *probe = c->stable[u][rng_int(&r, 2)];
        float want = (float)fmax(dot(c->stable[u][0], probe, C_DIM),
                                 dot(c->stable[u][1], probe, C_DIM));
        int64_t allowed[3] = {u, C_STABLE + 1 + rng_int(&r, 50), C_USERS};
        struct fa_index_hit *h = NULL;
        int use = rng_int(&r, 2);

        ok = fa_index_search(c->idx, 1, probe, 0.9f, use ? allowed : NULL, use ? 3 : 0, 5, &h,
                             &n, NULL) == FA_OK;
        /* u's own template scores ~1; random others stay far below 0.9. */
        ok = ok && n >= 1 && h[0].user_id == u && h[0].score == want && hits_sane(h, n, 1, C_USERS);
        free(h);
        h = NULL;
        ok = ok && fa_index_search(c->idx, 2, probe, -1.0f, NULL, 0, 1000, &h, &n, NULL) == FA_OK;
        ok = ok && hits_sane(h, n, 2001, 2000 + C_USERS);
        free(h);
        ok = ok && fa_index_count(c->idx, 1) >= 2 * C_STABLE && fa_index_bytes(c->idx) > 0;
        if (!ok && atomic_fetch_add(&c->errors, 1) == 0)
            snprintf(rd->first_error, sizeof rd->first_error, "user %d: n %d", u, n);
        atomic_fetch_add(&c->searches, 1);
    }
    return NULL;
}

static void writer_step(struct conc *c, struct rng *r, float *vecs)
{
    int64_t cid = rng_int(r, 3) ? 1 : 2;
    int64_t uid = (cid == 1 ? C_STABLE + 1 : 2001) + rng_int(r, C_USERS - C_STABLE);
    int op = rng_int(r, 10), n = 1 + rng_int(r, 6);

    for (int t = 0; t < n; t++)
        vec_grid(r, C_DIM, vecs + t * C_DIM);
    if (op < 4)
        fa_index_set_user(c->idx, cid, uid, vecs, n, NULL);
    else if (op < 7)
        fa_index_add(c->idx, cid, uid, vecs, NULL);
    else if (op < 9)
        fa_index_remove_user(c->idx, cid, uid);
    else /* a customer that comes and goes */
        for (int u = 1; u <= 4; u++)
            if (rng_int(r, 2))
                fa_index_add(c->idx, 3, u, vecs, NULL);
            else
                fa_index_remove_user(c->idx, 3, u);
}

static void test_concurrency(void)
{
    static struct conc c; /* too big for the stack of some platforms */
    struct reader rd[4];
    pthread_t th[4];
    struct rng r = {0xc0cc0ULL};
    float vecs[6 * C_DIM];
    int started = 0;

    memset(&c, 0, sizeof c);
    TAP_OK(fa_index_new(C_DIM, &c.idx, NULL) == FA_OK);
    for (int u = 1; u <= C_STABLE; u++) {
        vec_grid(&r, C_DIM, c.stable[u][0]);
        vec_grid(&r, C_DIM, c.stable[u][1]);
        fa_index_set_user(c.idx, 1, u, &c.stable[u][0][0], 2, NULL);
    }
    for (int i = 0; i < 4; i++) {
        rd[i] = (struct reader){.c = &c, .seed = 0x9e3779b97f4a7c15ULL * (i + 1)};
        if (pthread_create(&th[i], NULL, reader_main, &rd[i]) == 0)
            started++;
    }
    for (int i = 0; i < 20000; i++)
        writer_step(&c, &r, vecs);
    atomic_store(&c.done, 1);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < started; i++)
        if (rd[i].first_error[0] != '\0')
            tap_diag("reader %d: first bad result: %s", i, rd[i].first_error);
    tap_ok(started == 4 && atomic_load(&c.errors) == 0,
           "4 readers, %ld searches during 20000 changes: %d bad results",
           (long)atomic_load(&c.searches), atomic_load(&c.errors));
    TAP_OK(fa_index_count(c.idx, 1) >= 2 * C_STABLE);
    fa_index_free(c.idx);
}

int main(void)
{
    test_arguments();
    test_kernel();
    test_isolation();
    test_accuracy();
    test_random(3, 1500, 0x1111ULL);
    test_random(80, 1500, 0x2222ULL);
    test_random(512, 300, 0x3333ULL);
    test_wide_and_sparse();
    test_alloc_failures();
    test_concurrency();
    return tap_done();
}
