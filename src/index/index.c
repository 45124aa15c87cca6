/*
 * index.c — the search index's life cycle and its changes (set_user, add,
 * remove_user); search is in index_search.c, the layout in index_int.h.
 *
 * DESIGN
 *
 * A change runs in three steps, all under idx->wmu so changes never race:
 *
 *  1. find: the customer, the user's current slab and slot, and the width
 *     (template count) the user will have;
 *  2. prepare: every allocation the change needs — a new customer, a new
 *     slab, grown copies of a full slab's arrays, a grown map — and the
 *     copies of the old contents into grown arrays. No rwlock is held: only
 *     writers mutate, and wmu makes us the only writer, so searches keep
 *     running on the old arrays. Any failure frees what was prepared and
 *     returns FA_ENOMEM with the index untouched (all-or-nothing);
 *  3. apply, under the write lock: swap in the prepared pointers, copy the
 *     user's rows into the end of the target slab (or over its old rows when
 *     the width is unchanged), swap-remove the old slot, update the maps.
 *     The lock is held for O(templates of this user * dim), never for a
 *     copy of a whole slab. Replaced arrays are freed after unlocking.
 *
 * A slab or customer that becomes empty is unlinked in step 3 and freed
 * after. A slab left at <= 1/4 of its room, or a map at <= 1/8, is shrunk the
 * same way (copy outside, swap inside); when that allocation fails the index
 * simply keeps the bigger arrays.
 */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#include "index_int.h"
#include "index_test.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define SLAB_MIN_ROWS 4                   /* a new slab has room for this many rows (or one user) */
#define ROWS_HUGE_MIN ((size_t)4 << 20)   /* matrices this big get 2 MiB alignment... */
#define ROWS_HUGE_ALIGN ((size_t)2 << 20) /* ...and a huge-page hint */
#define TRASH_MAX 8

/* ---- allocation ---- */

static int alloc_fails(struct fa_index *idx)
{
    int left = atomic_load(&idx->fail_after);

    if (left < 0)
        return 0;
    if (left == 0)
        return 1;
    atomic_store(&idx->fail_after, left - 1);
    return 0;
}

void fa_index_test_fail_allocs(struct fa_index *idx, int after)
{
    atomic_store(&idx->fail_after, after < 0 ? -1 : after);
}

void *fa_index_malloc(struct fa_index *idx, size_t size)
{
    return alloc_fails(idx) ? NULL : malloc(size > 0 ? size : 1);
}

void *fa_index_calloc(struct fa_index *idx, size_t n, size_t size)
{
    return alloc_fails(idx) ? NULL : calloc(n > 0 ? n : 1, size > 0 ? size : 1);
}

void *fa_index_alloc_rows(struct fa_index *idx, size_t size)
{
    size_t align = size >= ROWS_HUGE_MIN ? ROWS_HUGE_ALIGN : FA_INDEX_ALIGN;
    void *p;

    if (alloc_fails(idx) || size > SIZE_MAX - align)
        return NULL;
    /* C11 wants the size to be a multiple of the alignment. */
    size = size == 0 ? align : (size + align - 1) / align * align;
    p = aligned_alloc(align, size);
#ifdef MADV_HUGEPAGE
    /* Only a hint (THP is often in madvise mode): a search streams the whole
     * matrix, and 2 MiB pages cut its TLB misses; measured 3-15% faster here. */
    if (p != NULL && align == ROWS_HUGE_ALIGN)
        (void)madvise(p, size, MADV_HUGEPAGE);
#endif
    return p;
}

/* ---- life cycle ---- */

enum fa_rc fa_index_new(int dim, struct fa_index **out, struct fa_err *err)
{
    struct fa_index *idx;
    pthread_rwlockattr_t attr;
    int prc;

    if (out == NULL)
        return fa_err_set(err, FA_EINVAL, "index: out is NULL");
    *out = NULL;
    if (dim < 1 || dim > FA_INDEX_MAX_DIM)
        return fa_err_set(err, FA_EINVAL, "index dim %d is out of range (1..%d)", dim,
                          FA_INDEX_MAX_DIM);
    idx = calloc(1, sizeof *idx);
    if (idx == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory for the index");
    idx->dim = dim;
    idx->stride = ((size_t)dim + FA_INDEX_LANES - 1) / FA_INDEX_LANES * FA_INDEX_LANES;
    atomic_init(&idx->fail_after, -1);
    pthread_rwlockattr_init(&attr);
#ifdef __GLIBC__
    /* glibc's default prefers readers: under a steady stream of searches an
     * enroll could wait for the write lock forever. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    prc = pthread_rwlock_init(&idx->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (prc != 0) {
        free(idx);
        return fa_err_set(err, FA_EINTERNAL, "index: rwlock init failed");
    }
    if (pthread_mutex_init(&idx->wmu, NULL) != 0) {
        pthread_rwlock_destroy(&idx->lock);
        free(idx);
        return fa_err_set(err, FA_EINTERNAL, "index: mutex init failed");
    }
    *out = idx;
    return FA_OK;
}

static void slab_free(struct fa_index_slab *s)
{
    if (s == NULL)
        return;
    free(s->rows);
    free(s->uids);
    free(s);
}

static void cust_free(struct fa_index_cust *c)
{
    if (c == NULL)
        return;
    while (c->slabs != NULL) {
        struct fa_index_slab *next = c->slabs->next;
        slab_free(c->slabs);
        c->slabs = next;
    }
    fa_index_map_cleanup(&c->users);
    free(c);
}

void fa_index_free(struct fa_index *idx)
{
    if (idx == NULL)
        return;
    for (size_t i = 0; i < idx->custs.cap; i++)
        if (idx->custs.keys[i] != 0)
            cust_free((struct fa_index_cust *)(uintptr_t)idx->custs.vals[i]);
    fa_index_map_cleanup(&idx->custs);
    pthread_mutex_destroy(&idx->wmu);
    pthread_rwlock_destroy(&idx->lock);
    free(idx);
}

/* ---- lookups ---- */

struct fa_index_cust *fa_index_cust_find(const struct fa_index *idx, int64_t customer_id)
{
    uint64_t v;

    if (!fa_index_map_get(&idx->custs, customer_id, &v))
        return NULL;
    return (struct fa_index_cust *)(uintptr_t)v;
}

struct fa_index_slab *fa_index_slab_find(const struct fa_index_cust *c, int width)
{
    struct fa_index_slab *s;

    for (s = c->slabs; s != NULL; s = s->next)
        if (s->width == width)
            break;
    return s;
}

/* ---- slab arrays ---- */

static uint32_t slab_min_cap(int width)
{
    return width >= SLAB_MIN_ROWS ? 1 : (uint32_t)(SLAB_MIN_ROWS / width);
}

/* Arrays for cap users of width templates, holding a copy of s's users when
 * s is not NULL. Called with no rwlock held (see DESIGN). */
static enum fa_rc slab_arrays_new(struct fa_index *idx, const struct fa_index_slab *s, int width,
                                  uint32_t cap, float **rows, int64_t **uids)
{
    size_t n_floats, bytes;

    *rows = NULL;
    *uids = NULL;
    if (__builtin_mul_overflow((size_t)cap, (size_t)width, &n_floats) ||
        __builtin_mul_overflow(n_floats, idx->stride, &n_floats) ||
        __builtin_mul_overflow(n_floats, sizeof(float), &bytes))
        return FA_ENOMEM;
    *rows = fa_index_alloc_rows(idx, bytes);
    *uids = fa_index_malloc(idx, (size_t)cap * sizeof **uids);
    if (*rows == NULL || *uids == NULL) {
        free(*rows);
        free(*uids);
        *rows = NULL;
        *uids = NULL;
        return FA_ENOMEM;
    }
    if (s != NULL && s->n > 0) {
        assert(s->n <= cap);
        memcpy(*rows, s->rows, (size_t)s->n * (size_t)width * idx->stride * sizeof(float));
        memcpy(*uids, s->uids, (size_t)s->n * sizeof **uids);
    }
    return FA_OK;
}

/* Copy n vectors of dim floats into rows of stride floats, zeroing the padding. */
static void rows_write(const struct fa_index *idx, float *dst, const float *vecs, int n)
{
    size_t dim = (size_t)idx->dim;

    for (int i = 0; i < n; i++) {
        float *row = dst + (size_t)i * idx->stride;
        memcpy(row, vecs + (size_t)i * dim, dim * sizeof(float));
        memset(row + dim, 0, (idx->stride - dim) * sizeof(float));
    }
}

/* ---- a change ---- */

struct change {
    /* the request */
    int64_t cid, uid;
    const float *vecs;
    int n;      /* vectors in vecs */
    int append; /* 1: keep the user's current rows, vecs go after them */
    /* found (step 1) */
    struct fa_index_cust *cust;
    struct fa_index_slab *old; /* the user's slab; NULL when the user is absent */
    uint32_t old_slot;
    int width; /* the user's template count afterwards; 0 removes */
    /* prepared (step 2) */
    struct fa_index_cust *new_cust;
    struct fa_index_map custs, users; /* replacements for full maps (cap 0: none) */
    struct fa_index_slab *dst;        /* gets the user; NULL when rewritten in place */
    struct fa_index_slab *new_slab;   /* dst, when no slab of that width existed */
    float *rows;                      /* dst's new arrays; NULL when dst has room */
    int64_t *uids;
    uint32_t cap;
    /* released after the write lock (step 3) */
    void *trash[TRASH_MAX];
    int n_trash;
    struct fa_index_slab *dead_slab;
    struct fa_index_cust *dead_cust;
};

static void change_trash(struct change *ch, void *p)
{
    assert(ch->n_trash < TRASH_MAX);
    ch->trash[ch->n_trash++] = p;
}

static enum fa_rc change_find(struct fa_index *idx, struct change *ch, struct fa_err *err)
{
    uint64_t v;

    ch->cust = fa_index_cust_find(idx, ch->cid);
    if (ch->cust != NULL && fa_index_map_get(&ch->cust->users, ch->uid, &v)) {
        ch->old = fa_index_slab_find(ch->cust, FA_INDEX_WIDTH(v));
        ch->old_slot = FA_INDEX_SLOT(v);
        assert(ch->old != NULL && ch->old->uids[ch->old_slot] == ch->uid);
    }
    ch->width = ch->n + (ch->append && ch->old != NULL ? ch->old->width : 0);
    if (ch->width > FA_INDEX_MAX_TEMPLATES)
        return fa_err_set(err, FA_ETOOBIG, "user %lld would have %d templates (at most %d)",
                          (long long)ch->uid, ch->width, FA_INDEX_MAX_TEMPLATES);
    return FA_OK;
}

/* The slab that will receive the user, with room for one more. */
static enum fa_rc change_prepare_slab(struct fa_index *idx, struct change *ch,
                                      struct fa_index_cust *c)
{
    struct fa_index_slab *s = fa_index_slab_find(c, ch->width);
    uint32_t cap = slab_min_cap(ch->width);

    if (s != NULL && s->n < s->cap) {
        ch->dst = s;
        return FA_OK;
    }
    if (s == NULL) {
        s = ch->new_slab = fa_index_calloc(idx, 1, sizeof *s);
        if (s == NULL)
            return FA_ENOMEM;
        s->width = ch->width;
    } else {
        if (s->cap > UINT32_MAX / 2)
            return FA_ENOMEM; /* 2^31 users of one width: far beyond any memory */
        cap = s->cap * 2;
    }
    ch->dst = s;
    ch->cap = cap;
    return slab_arrays_new(idx, s, s->width, cap, &ch->rows, &ch->uids);
}

static enum fa_rc change_prepare(struct fa_index *idx, struct change *ch)
{
    struct fa_index_cust *c = ch->cust;
    struct fa_index_map empty = {0};
    enum fa_rc rc = FA_OK;

    if (ch->width == 0)
        return FA_OK; /* a removal needs no memory */
    if (c == NULL) {
        if (!fa_index_map_has_room(&idx->custs))
            rc = fa_index_map_resized(idx, &idx->custs, idx->custs.n + 1, &ch->custs);
        if (rc != FA_OK)
            return rc;
        c = ch->new_cust = fa_index_calloc(idx, 1, sizeof *c);
        if (c == NULL)
            return FA_ENOMEM;
        c->id = ch->cid;
        rc = fa_index_map_resized(idx, &empty, 1, &c->users);
    } else if (ch->old == NULL && !fa_index_map_has_room(&c->users)) {
        rc = fa_index_map_resized(idx, &c->users, c->users.n + 1, &ch->users);
    }
    if (rc != FA_OK)
        return rc;
    if (ch->old != NULL && ch->old->width == ch->width)
        return FA_OK; /* same template count: rewritten in place */
    return change_prepare_slab(idx, ch, c);
}

/* Undo step 2 after a failure: nothing was published yet. */
static void change_abort(struct change *ch)
{
    fa_index_map_cleanup(&ch->custs);
    fa_index_map_cleanup(&ch->users);
    cust_free(ch->new_cust);
    free(ch->new_slab); /* its arrays, if any, are ch->rows/uids */
    free(ch->rows);
    free(ch->uids);
}

/* Move the slab's last user into slot (swap-remove); unlink the slab when it empties. */
static void slab_remove(const struct fa_index *idx, struct change *ch, struct fa_index_cust *c,
                        struct fa_index_slab *s, uint32_t slot)
{
    uint32_t last = s->n - 1;

    if (slot != last) {
        memcpy(fa_index_slab_rows(s, idx->stride, slot), fa_index_slab_rows(s, idx->stride, last),
               (size_t)s->width * idx->stride * sizeof(float));
        s->uids[slot] = s->uids[last];
        fa_index_map_put(&c->users, s->uids[slot], FA_INDEX_PACK(s->width, slot));
    }
    s->n--;
    if (s->n == 0) {
        struct fa_index_slab **pp = &c->slabs;
        while (*pp != s)
            pp = &(*pp)->next;
        *pp = s->next;
        ch->dead_slab = s;
    }
}

/* Append the user's rows (old ones first when appending) to ch->dst. */
static void change_insert(const struct fa_index *idx, struct change *ch, struct fa_index_cust *c)
{
    struct fa_index_slab *s = ch->dst;
    uint32_t slot;
    float *dst;
    int kept = 0;

    if (ch->new_slab != NULL) {
        s->next = c->slabs;
        c->slabs = s;
    }
    if (ch->rows != NULL) {
        change_trash(ch, s->rows);
        change_trash(ch, s->uids);
        s->rows = ch->rows;
        s->uids = ch->uids;
        s->cap = ch->cap;
    }
    slot = s->n;
    dst = fa_index_slab_rows(s, idx->stride, slot);
    if (ch->append && ch->old != NULL) {
        kept = ch->old->width;
        memcpy(dst, fa_index_slab_rows(ch->old, idx->stride, ch->old_slot),
               (size_t)kept * idx->stride * sizeof(float));
    }
    rows_write(idx, dst + (size_t)kept * idx->stride, ch->vecs, ch->n);
    s->uids[slot] = ch->uid;
    s->n++;
    fa_index_map_put(&c->users, ch->uid, FA_INDEX_PACK(ch->width, slot));
}

/* Step 3, under the write lock: nothing here allocates or can fail. */
static void change_apply(struct fa_index *idx, struct change *ch)
{
    struct fa_index_cust *c = ch->cust;
    size_t old_rows = ch->old != NULL ? (size_t)ch->old->width : 0;

    if (ch->custs.cap > 0) {
        change_trash(ch, idx->custs.keys);
        change_trash(ch, idx->custs.vals);
        idx->custs = ch->custs;
    }
    if (ch->new_cust != NULL) {
        c = ch->cust = ch->new_cust;
        fa_index_map_put(&idx->custs, c->id, (uint64_t)(uintptr_t)c);
    }
    if (ch->users.cap > 0) {
        change_trash(ch, c->users.keys);
        change_trash(ch, c->users.vals);
        c->users = ch->users;
    }
    if (ch->width > 0 && ch->dst == NULL) {
        rows_write(idx, fa_index_slab_rows(ch->old, idx->stride, ch->old_slot), ch->vecs, ch->n);
        return;
    }
    if (ch->width > 0)
        change_insert(idx, ch, c);
    if (ch->old != NULL)
        slab_remove(idx, ch, c, ch->old, ch->old_slot);
    if (ch->width == 0)
        fa_index_map_del(&c->users, ch->uid);
    c->n_rows = c->n_rows - old_rows + (size_t)ch->width;
    idx->n_rows = idx->n_rows - old_rows + (size_t)ch->width;
    if (c->users.n == 0) {
        fa_index_map_del(&idx->custs, c->id);
        ch->dead_cust = c;
    }
}

static void change_release(struct change *ch)
{
    for (int i = 0; i < ch->n_trash; i++)
        free(ch->trash[i]);
    slab_free(ch->dead_slab);
    cust_free(ch->dead_cust);
}

/* ---- shrinking (best effort, after a change; wmu held) ---- */

static void slab_shrink(struct fa_index *idx, struct fa_index_slab *s)
{
    uint32_t cap = s->cap / 2, min = slab_min_cap(s->width);
    float *rows, *old_rows;
    int64_t *uids, *old_uids;

    if (s->cap <= min || (size_t)s->n * 4 > s->cap)
        return;
    if (cap < min)
        cap = min;
    if (slab_arrays_new(idx, s, s->width, cap, &rows, &uids) != FA_OK)
        return; /* keep the bigger arrays */
    pthread_rwlock_wrlock(&idx->lock);
    old_rows = s->rows;
    old_uids = s->uids;
    s->rows = rows;
    s->uids = uids;
    s->cap = cap;
    pthread_rwlock_unlock(&idx->lock);
    free(old_rows);
    free(old_uids);
}

static void map_shrink(struct fa_index *idx, struct fa_index_map *m)
{
    struct fa_index_map t, old;

    if (m->cap <= fa_index_map_cap_for(0) || m->n * 8 > m->cap)
        return;
    if (fa_index_map_resized(idx, m, m->n * 2, &t) != FA_OK)
        return;
    pthread_rwlock_wrlock(&idx->lock);
    old = *m;
    *m = t;
    pthread_rwlock_unlock(&idx->lock);
    fa_index_map_cleanup(&old);
}

static void index_tidy(struct fa_index *idx, int64_t customer_id, int old_width)
{
    struct fa_index_cust *c = fa_index_cust_find(idx, customer_id);

    map_shrink(idx, &idx->custs);
    if (c == NULL)
        return;
    map_shrink(idx, &c->users);
    if (old_width > 0) {
        struct fa_index_slab *s = fa_index_slab_find(c, old_width);
        if (s != NULL)
            slab_shrink(idx, s);
    }
}

static enum fa_rc index_change(struct fa_index *idx, struct change *ch, struct fa_err *err)
{
    enum fa_rc rc;
    int old_width;

    pthread_mutex_lock(&idx->wmu);
    rc = change_find(idx, ch, err);
    if (rc != FA_OK || (ch->old == NULL && ch->width == 0))
        goto out;
    rc = change_prepare(idx, ch);
    if (rc != FA_OK) {
        change_abort(ch);
        fa_err_set(err, rc, "no memory to index user %lld of customer %lld", (long long)ch->uid,
                   (long long)ch->cid);
        goto out;
    }
    old_width = ch->old != NULL ? ch->old->width : 0;
    pthread_rwlock_wrlock(&idx->lock);
    change_apply(idx, ch);
    pthread_rwlock_unlock(&idx->lock);
    change_release(ch);
    index_tidy(idx, ch->cid, old_width);
out:
    pthread_mutex_unlock(&idx->wmu);
    return rc;
}

/* ---- public changes ---- */

static enum fa_rc check_user(const struct fa_index *idx, int64_t customer_id, int64_t user_id,
                             const float *vecs, int n, struct fa_err *err)
{
    if (idx == NULL)
        return fa_err_set(err, FA_EINVAL, "index is NULL");
    if (customer_id <= 0)
        return fa_err_set(err, FA_EINVAL, "customer id %lld is invalid", (long long)customer_id);
    if (user_id <= 0)
        return fa_err_set(err, FA_EINVAL, "user id %lld is invalid", (long long)user_id);
    if (n < 0 || (n > 0 && vecs == NULL))
        return fa_err_set(err, FA_EINVAL, "templates of user %lld are missing",
                          (long long)user_id);
    if (n > FA_INDEX_MAX_TEMPLATES)
        return fa_err_set(err, FA_ETOOBIG, "user %lld has %d templates (at most %d)",
                          (long long)user_id, n, FA_INDEX_MAX_TEMPLATES);
    for (size_t i = 0; i < (size_t)n * (size_t)idx->dim; i++)
        if (!isfinite(vecs[i]))
            return fa_err_set(err, FA_EINVAL, "template %zu of user %lld is not finite",
                              i / (size_t)idx->dim, (long long)user_id);
    return FA_OK;
}

enum fa_rc fa_index_set_user(struct fa_index *idx, int64_t customer_id, int64_t user_id,
                             const float *vecs, int n, struct fa_err *err)
{
    struct change ch = {0};
    enum fa_rc rc = check_user(idx, customer_id, user_id, vecs, n, err);

    if (rc != FA_OK)
        return rc;
    ch.cid = customer_id;
    ch.uid = user_id;
    ch.vecs = vecs;
    ch.n = n;
    return index_change(idx, &ch, err);
}

void fa_index_remove_user(struct fa_index *idx, int64_t customer_id, int64_t user_id)
{
    if (idx != NULL && customer_id > 0 && user_id > 0)
        (void)fa_index_set_user(idx, customer_id, user_id, NULL, 0, NULL); /* cannot fail */
}

enum fa_rc fa_index_add(struct fa_index *idx, int64_t customer_id, int64_t user_id,
                        const float *vec, struct fa_err *err)
{
    struct change ch = {0};
    enum fa_rc rc = check_user(idx, customer_id, user_id, vec, 1, err);

    if (rc != FA_OK)
        return rc;
    ch.cid = customer_id;
    ch.uid = user_id;
    ch.vecs = vec;
    ch.n = 1;
    ch.append = 1;
    return index_change(idx, &ch, err);
}

/* ---- sizes ---- */

size_t fa_index_count(struct fa_index *idx, int64_t customer_id)
{
    size_t n = 0;

    if (idx == NULL)
        return 0;
    pthread_rwlock_rdlock(&idx->lock);
    if (customer_id == 0) {
        n = idx->n_rows;
    } else {
        const struct fa_index_cust *c = fa_index_cust_find(idx, customer_id);
        n = c != NULL ? c->n_rows : 0;
    }
    pthread_rwlock_unlock(&idx->lock);
    return n;
}

static size_t cust_bytes(const struct fa_index *idx, const struct fa_index_cust *c)
{
    size_t b = sizeof *c + fa_index_map_bytes(&c->users);

    for (const struct fa_index_slab *s = c->slabs; s != NULL; s = s->next)
        b += sizeof *s + (size_t)s->cap * (size_t)s->width * idx->stride * sizeof(float) +
             (size_t)s->cap * sizeof *s->uids;
    return b;
}

size_t fa_index_bytes(struct fa_index *idx)
{
    size_t b;

    if (idx == NULL)
        return 0;
    pthread_rwlock_rdlock(&idx->lock);
    b = sizeof *idx + fa_index_map_bytes(&idx->custs);
    for (size_t i = 0; i < idx->custs.cap; i++)
        if (idx->custs.keys[i] != 0)
            b += cust_bytes(idx, (const struct fa_index_cust *)(uintptr_t)idx->custs.vals[i]);
    pthread_rwlock_unlock(&idx->lock);
    return b;
}
