/*
 * index_map.c — the int64 -> uint64 hash map behind customer and user
 * lookups (see index_int.h).
 *
 * Linear probing keeps a lookup to one or two cache lines; deletion shifts
 * later entries of the run back instead of leaving tombstones, so a map that
 * sees millions of set_user/remove calls never needs a clean-up rehash, and
 * deleting never allocates (remove_user cannot fail). Keys are ids > 0, so 0
 * marks an empty bucket.
 */
#include "index_int.h"

#include <assert.h>
#include <stdlib.h>

#define MAP_MIN_CAP 8

/* splitmix64's finaliser: ids are sequential, so spread them over the table. */
static size_t map_home(int64_t key, size_t mask)
{
    uint64_t x = (uint64_t)key;

    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return (size_t)x & mask;
}

/* The bucket holding key, or the empty bucket where it would go. */
static size_t map_slot(const struct fa_index_map *m, int64_t key)
{
    size_t mask = m->cap - 1;
    size_t i = map_home(key, mask);

    while (m->keys[i] != 0 && m->keys[i] != key)
        i = (i + 1) & mask;
    return i;
}

int fa_index_map_get(const struct fa_index_map *m, int64_t key, uint64_t *val)
{
    size_t i;

    if (m->cap == 0)
        return 0;
    i = map_slot(m, key);
    if (m->keys[i] != key)
        return 0;
    if (val != NULL)
        *val = m->vals[i];
    return 1;
}

int fa_index_map_has_room(const struct fa_index_map *m)
{
    return (m->n + 1) * 2 <= m->cap;
}

void fa_index_map_put(struct fa_index_map *m, int64_t key, uint64_t val)
{
    size_t i;

    assert(key > 0 && m->cap > 0);
    i = map_slot(m, key);
    if (m->keys[i] != key) {
        assert(fa_index_map_has_room(m));
        m->keys[i] = key;
        m->n++;
    }
    m->vals[i] = val;
}

int fa_index_map_del(struct fa_index_map *m, int64_t key)
{
    size_t mask, hole, j;

    if (m->cap == 0)
        return 0;
    mask = m->cap - 1;
    hole = map_slot(m, key);
    if (m->keys[hole] != key)
        return 0;
    /* Walk the rest of the run; an entry may fill the hole when its home
     * bucket is not cyclically inside (hole, j] — otherwise moving it would
     * put it before its home, where lookups would never find it. */
    for (j = (hole + 1) & mask; m->keys[j] != 0; j = (j + 1) & mask) {
        size_t home = map_home(m->keys[j], mask);
        int stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            m->keys[hole] = m->keys[j];
            m->vals[hole] = m->vals[j];
            hole = j;
        }
    }
    m->keys[hole] = 0;
    m->n--;
    return 1;
}

size_t fa_index_map_cap_for(size_t want)
{
    size_t cap = MAP_MIN_CAP;

    while (cap < want * 2)
        cap *= 2;
    return cap;
}

enum fa_rc fa_index_map_resized(struct fa_index *idx, const struct fa_index_map *m, size_t want,
                                struct fa_index_map *out)
{
    struct fa_index_map t = {0};

    if (want < m->n)
        want = m->n;
    t.cap = fa_index_map_cap_for(want);
    t.keys = fa_index_calloc(idx, t.cap, sizeof *t.keys);
    t.vals = fa_index_malloc(idx, t.cap * sizeof *t.vals);
    if (t.keys == NULL || t.vals == NULL) {
        fa_index_map_cleanup(&t);
        *out = (struct fa_index_map){0};
        return FA_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] != 0)
            fa_index_map_put(&t, m->keys[i], m->vals[i]);
    *out = t;
    return FA_OK;
}

void fa_index_map_cleanup(struct fa_index_map *m)
{
    free(m->keys);
    free(m->vals);
    *m = (struct fa_index_map){0};
}

size_t fa_index_map_bytes(const struct fa_index_map *m)
{
    return m->cap * (sizeof *m->keys + sizeof *m->vals);
}
