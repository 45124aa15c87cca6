/*
 * index_search.c — 1:N search over one customer's templates (see index.h,
 * and index_int.h for the layout).
 *
 * Under the read lock, each slab is scored in chunks of up to SCORE_CHUNK
 * rows into a stack buffer; since a user's rows are contiguous, the best
 * score per user falls out of the chunk directly, and is offered to a
 * bounded min-heap of the max_hits best hits (the worst kept hit on top).
 * Memory per search is the padded probe copy and the heap, never anything
 * proportional to the number of rows.
 *
 * With an allowed list much shorter than the customer's user count, the
 * search looks those users up instead of scanning everyone (a search space of
 * 50 people in a customer of a million scores 50 users, not a million).
 */
#include "index_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SCORE_CHUNK 256 /* rows scored per kernel call */
#define SPARSE_RATIO 4  /* look allowed ids up when n_allowed * 4 < users */

struct search {
    const float *probe; /* padded, aligned copy */
    size_t stride;
    float threshold;
    const int64_t *allowed; /* NULL: no filter (or already applied) */
    int n_allowed;
    struct fa_index_hit *heap; /* the k best so far; the worst at [0] */
    int n, k;
    float scores[SCORE_CHUNK];
};

static int hit_better(const struct fa_index_hit *a, const struct fa_index_hit *b)
{
    return a->score > b->score || (a->score == b->score && a->user_id < b->user_id);
}

static void hit_swap(struct fa_index_hit *a, struct fa_index_hit *b)
{
    struct fa_index_hit t = *a;
    *a = *b;
    *b = t;
}

/* Restore the heap below i (every parent worse than its children). */
static void heap_down(struct fa_index_hit *h, int n, int i)
{
    for (;;) {
        int worst = i, l = 2 * i + 1, r = l + 1;
        if (l < n && hit_better(&h[worst], &h[l]))
            worst = l;
        if (r < n && hit_better(&h[worst], &h[r]))
            worst = r;
        if (worst == i)
            return;
        hit_swap(&h[i], &h[worst]);
        i = worst;
    }
}

static void heap_up(struct fa_index_hit *h, int i)
{
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!hit_better(&h[parent], &h[i]))
            return;
        hit_swap(&h[parent], &h[i]);
        i = parent;
    }
}

/* Heapsort: moving the worst to the end each time leaves the array best first. */
static void heap_sort(struct fa_index_hit *h, int n)
{
    for (int m = n; m > 1; m--) {
        hit_swap(&h[0], &h[m - 1]);
        heap_down(h, m - 1, 0);
    }
}

static int id_allowed(const int64_t *ids, int n, int64_t id)
{
    int lo = 0, hi = n;

    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && ids[lo] == id;
}

static void search_offer(struct search *s, int64_t user_id, float score)
{
    struct fa_index_hit hit = {.user_id = user_id, .score = score};

    if (!(score >= s->threshold)) /* also drops NaN */
        return;
    if (s->allowed != NULL && !id_allowed(s->allowed, s->n_allowed, user_id))
        return;
    if (s->n < s->k) {
        s->heap[s->n] = hit;
        heap_up(s->heap, s->n);
        s->n++;
    } else if (s->k > 0 && hit_better(&hit, &s->heap[0])) {
        s->heap[0] = hit;
        heap_down(s->heap, s->n, 0);
    }
}

/* The best score of one user, for widths of any size. */
static float user_best(struct search *s, const struct fa_index_slab *sl, uint32_t slot)
{
    const float *rows = fa_index_slab_rows(sl, s->stride, slot);
    float best = -INFINITY;

    for (int t0 = 0; t0 < sl->width; t0 += SCORE_CHUNK) {
        int m = sl->width - t0 < SCORE_CHUNK ? sl->width - t0 : SCORE_CHUNK;
        fa_index_score(rows + (size_t)t0 * s->stride, s->stride, (size_t)m, s->probe, s->scores);
        for (int t = 0; t < m; t++)
            if (s->scores[t] > best)
                best = s->scores[t];
    }
    return best;
}

static void scan_slab(struct search *s, const struct fa_index_slab *sl)
{
    uint32_t w = (uint32_t)sl->width, per;

    if (w > SCORE_CHUNK) {
        for (uint32_t slot = 0; slot < sl->n; slot++)
            search_offer(s, sl->uids[slot], user_best(s, sl, slot));
        return;
    }
    per = SCORE_CHUNK / w;
    for (uint32_t u0 = 0; u0 < sl->n; u0 += per) {
        uint32_t nu = sl->n - u0 < per ? sl->n - u0 : per;
        fa_index_score(fa_index_slab_rows(sl, s->stride, u0), s->stride, (size_t)nu * w, s->probe,
                       s->scores);
        for (uint32_t i = 0; i < nu; i++) {
            const float *sc = s->scores + (size_t)i * w;
            float best = sc[0];
            for (uint32_t t = 1; t < w; t++)
                if (sc[t] > best)
                    best = sc[t];
            search_offer(s, sl->uids[u0 + i], best);
        }
    }
}

/* Score only the allowed users (the list is sorted, so duplicates are adjacent). */
static void scan_allowed(struct search *s, const struct fa_index_cust *c)
{
    const int64_t *ids = s->allowed;
    int n = s->n_allowed;

    s->allowed = NULL; /* every id offered below is allowed */
    for (int i = 0; i < n; i++) {
        uint64_t v;
        if (ids[i] <= 0 || (i > 0 && ids[i] == ids[i - 1]))
            continue; /* 0 is the map's empty key, and no user has it */
        if (!fa_index_map_get(&c->users, ids[i], &v))
            continue;
        search_offer(s, ids[i],
                     user_best(s, fa_index_slab_find(c, FA_INDEX_WIDTH(v)), FA_INDEX_SLOT(v)));
    }
}

static enum fa_rc search_check(const struct fa_index *idx, int64_t customer_id, const float *probe,
                               const int64_t *allowed, int n_allowed, int max_hits,
                               struct fa_index_hit **hits, int *n, struct fa_err *err)
{
    if (idx == NULL || probe == NULL || hits == NULL || n == NULL)
        return fa_err_set(err, FA_EINVAL, "index search: a required argument is NULL");
    if (customer_id <= 0)
        return fa_err_set(err, FA_EINVAL, "customer id %lld is invalid", (long long)customer_id);
    if (max_hits < 1)
        return fa_err_set(err, FA_EINVAL, "max hits %d is below 1", max_hits);
    for (int i = 0; i < idx->dim; i++)
        if (!isfinite(probe[i]))
            return fa_err_set(err, FA_EINVAL, "probe value %d is not finite", i);
    if (allowed != NULL) {
        if (n_allowed < 0)
            return fa_err_set(err, FA_EINVAL, "allowed count %d is negative", n_allowed);
        for (int i = 1; i < n_allowed; i++)
            if (allowed[i] < allowed[i - 1])
                return fa_err_set(err, FA_EINVAL, "allowed user ids are not sorted");
    }
    return FA_OK;
}

/* Under the read lock: fill s->heap from customer c. */
static enum fa_rc search_customer(struct fa_index *idx, const struct fa_index_cust *c,
                                  int max_hits, struct search *s)
{
    size_t users = c->users.n;

    s->k = (size_t)max_hits < users ? max_hits : (int)users;
    s->heap = fa_index_malloc(idx, (size_t)s->k * sizeof *s->heap);
    if (s->heap == NULL)
        return FA_ENOMEM;
    if (s->allowed != NULL && (size_t)s->n_allowed * SPARSE_RATIO < users) {
        scan_allowed(s, c);
        return FA_OK;
    }
    for (const struct fa_index_slab *sl = c->slabs; sl != NULL; sl = sl->next)
        scan_slab(s, sl);
    return FA_OK;
}

enum fa_rc fa_index_search(struct fa_index *idx, int64_t customer_id, const float *probe,
                           float threshold, const int64_t *allowed, int n_allowed, int max_hits,
                           struct fa_index_hit **hits, int *n, struct fa_err *err)
{
    struct search s = {0};
    float *padded = NULL;
    const struct fa_index_cust *c;
    enum fa_rc rc;

    rc = search_check(idx, customer_id, probe, allowed, n_allowed, max_hits, hits, n, err);
    if (rc != FA_OK)
        return rc;
    *hits = NULL;
    *n = 0;
    padded = fa_index_alloc_rows(idx, idx->stride * sizeof(float));
    if (padded == NULL)
        return fa_err_set(err, FA_ENOMEM, "no memory for an index search");
    memcpy(padded, probe, (size_t)idx->dim * sizeof(float));
    memset(padded + idx->dim, 0, (idx->stride - (size_t)idx->dim) * sizeof(float));
    s.probe = padded;
    s.stride = idx->stride;
    s.threshold = threshold;
    s.allowed = allowed;
    s.n_allowed = allowed != NULL ? n_allowed : 0;

    pthread_rwlock_rdlock(&idx->lock);
    c = fa_index_cust_find(idx, customer_id);
    if (c != NULL)
        rc = search_customer(idx, c, max_hits, &s);
    pthread_rwlock_unlock(&idx->lock);
    free(padded);
    if (rc != FA_OK)
        return fa_err_set(err, rc, "no memory for an index search");

    heap_sort(s.heap, s.n);
    if (s.n == 0) {
        free(s.heap);
        return FA_OK;
    }
    *hits = s.heap; /* the caller frees; may be longer than *n */
    *n = s.n;
    return FA_OK;
}
