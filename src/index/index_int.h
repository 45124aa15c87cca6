/*
 * index_int.h — the private parts of the search index, shared by its files
 * (index.c: life cycle and changes; index_map.c: the id hash map;
 * index_search.c: search; index_kernel.c: the dot-product kernel).
 *
 * Layout. A customer's users are grouped by how many templates they have:
 * one slab per template count ("width"). A slab is one contiguous, aligned
 * float matrix in which user slot s owns the rows [s*width, s*width+width),
 * plus a parallel array with the user id of each slot. Every slot of a slab
 * has the same size, so removing a user is an exact swap-remove (the slab's
 * last user moves into the hole) and a user's rows are always contiguous:
 * search takes the best score per user on the fly, with no per-row state.
 * Rows are padded with zeros to a multiple of FA_INDEX_LANES floats so the
 * kernel never has a tail.
 *
 * Invariants (under the write lock, or while holding wmu):
 *   - cust->users maps each user id to FA_INDEX_PACK(width, slot), and
 *     slab(width)->uids[slot] is that user id;
 *   - no slab is empty and no customer is empty (they are freed);
 *   - cust->n_rows is the sum of n*width over its slabs, idx->n_rows the
 *     sum over customers.
 */
#ifndef FACEAUTH_INDEX_INT_H
#define FACEAUTH_INDEX_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "faceauth/index.h"

#define FA_INDEX_ALIGN 64         /* bytes; every row starts on a cache line */
#define FA_INDEX_LANES 16         /* the row stride is a multiple of this many floats */
#define FA_INDEX_MAX_DIM 65536
#define FA_INDEX_MAX_TEMPLATES 4096 /* per user */

#define FA_INDEX_PACK(width, slot) (((uint64_t)(uint32_t)(width) << 32) | (uint32_t)(slot))
#define FA_INDEX_WIDTH(v) ((int)((v) >> 32))
#define FA_INDEX_SLOT(v) ((uint32_t)(v))

/* int64 key (> 0) to uint64 value: open addressing with linear probing and
 * backward-shift deletion (no tombstones). Load stays <= 1/2. */
struct fa_index_map {
    int64_t *keys;  /* cap of them; 0 marks an empty bucket */
    uint64_t *vals; /* cap of them */
    size_t cap;     /* 0 or a power of two */
    size_t n;
};

struct fa_index_slab {
    struct fa_index_slab *next;
    int width;        /* templates per user */
    uint32_t n, cap;  /* users held, users room */
    float *rows;      /* cap*width rows of idx->stride floats, aligned */
    int64_t *uids;    /* cap: the user of each slot */
};

struct fa_index_cust {
    int64_t id;
    struct fa_index_slab *slabs; /* one per width in use, any order */
    struct fa_index_map users;   /* user id -> FA_INDEX_PACK(width, slot) */
    size_t n_rows;
};

struct fa_index {
    /* Searches take lock for reading. A change holds wmu for its whole
     * length (so changes never race each other), prepares all memory and
     * copies grown arrays with no rwlock held (readers only read, and no
     * other writer exists), then takes lock for writing only to swap
     * pointers and copy the user's own rows. */
    pthread_rwlock_t lock;
    pthread_mutex_t wmu;
    int dim;
    size_t stride;             /* floats per row: dim rounded up to FA_INDEX_LANES */
    struct fa_index_map custs; /* customer id -> (uintptr_t)struct fa_index_cust * */
    size_t n_rows;
    atomic_int fail_after;     /* test hook: allocations left before they fail; -1 off */
};

/* ---- allocation (every index allocation goes through these for the test hook) ---- */

void *fa_index_malloc(struct fa_index *idx, size_t size);
void *fa_index_calloc(struct fa_index *idx, size_t n, size_t size);
/* FA_INDEX_ALIGN-aligned (2 MiB and huge pages for big matrices); free(). */
void *fa_index_alloc_rows(struct fa_index *idx, size_t size);

/*
 * Test hook: the next `after` allocations succeed, then every one fails
 * until called again (-1 turns failures off). Not thread-safe against
 * concurrent changes; meant for single-threaded tests.
 */
void fa_index_test_fail_allocs(struct fa_index *idx, int after);

/* ---- map (index_map.c); callers provide the locking ---- */

int fa_index_map_get(const struct fa_index_map *m, int64_t key, uint64_t *val);
/* 1 when one more key fits without growing. */
int fa_index_map_has_room(const struct fa_index_map *m);
/* Insert or overwrite. The key must exist or fa_index_map_has_room hold. */
void fa_index_map_put(struct fa_index_map *m, int64_t key, uint64_t val);
/* Remove key; 1 when it was there. Never allocates. */
int fa_index_map_del(struct fa_index_map *m, int64_t key);
/* A copy of m with room for want keys (the smallest power of two >= 8
 * keeping load <= 1/2) into *out. FA_ENOMEM leaves *out zeroed. */
enum fa_rc fa_index_map_resized(struct fa_index *idx, const struct fa_index_map *m, size_t want,
                                struct fa_index_map *out);
/* The capacity fa_index_map_resized would choose for want keys. */
size_t fa_index_map_cap_for(size_t want);
void fa_index_map_cleanup(struct fa_index_map *m);
size_t fa_index_map_bytes(const struct fa_index_map *m);

/* ---- lookups (caller holds the lock or wmu) ---- */

struct fa_index_cust *fa_index_cust_find(const struct fa_index *idx, int64_t customer_id);
struct fa_index_slab *fa_index_slab_find(const struct fa_index_cust *c, int width);

static inline float *fa_index_slab_rows(const struct fa_index_slab *s, size_t stride, uint32_t slot)
{
    return s->rows + (size_t)slot * (size_t)s->width * stride;
}

/* ---- kernel (index_kernel.c) ---- */

/*
 * out[r] = dot(rows + r*stride, probe) for r < n_rows. rows and probe are
 * FA_INDEX_ALIGN-aligned, stride is a multiple of FA_INDEX_LANES, and the
 * padding is zero in both.
 */
void fa_index_score(const float *rows, size_t stride, size_t n_rows, const float *probe,
                    float *out);

#endif
