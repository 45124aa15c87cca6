/*
 * test_store_seal.c — templates encrypted at rest (src/store/store_seal.c):
 * the key file, sealed blobs that hold no vector in clear, blobs that do
 * not open in another user's row, the sealing of a database written in
 * clear by an older build, and a missing key.
 *
 * The database file itself is read back (as someone holding a copy of it
 * would) and searched for the vectors' bytes.
 */
#define _GNU_SOURCE /* memmem */
/* the fixture's image builder is not needed here */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "store_fixture.h"

#include <errno.h>
#include <sys/stat.h>

static float g_seen[DIM];
static int g_walked;

static int walk_one(void *arg, int64_t customer_id, int64_t user_id, const float *vec, int dim)
{
    (void)arg;
    (void)customer_id;
    (void)user_id;
    if (dim == DIM)
        memcpy(g_seen, vec, sizeof g_seen);
    g_walked++;
    return 0;
}

/* A user of cid named name, enrolled with one template of "test-model"
 * tagged tag (vec gets the vector stored). */
static int64_t enrolled_user(struct fa_store *st, int64_t cid, const char *name, float tag,
                             float vec[DIM])
{
    struct fa_user u;
    struct fa_store_record r;
    struct test_sample x;
    struct fa_err err = {{0}};

    user_init(&u, cid, name);
    if (fa_store_user_create(st, &u, &err) != FA_OK)
        return 0;
    r = rec_init(cid, &u, "enroll");
    rec_template_set(&r, &x, tag, "test-model", "enroll");
    memcpy(vec, x.vec, sizeof x.vec);
    return fa_store_record_commit(st, &r, &err) == FA_OK ? u.id : 0;
}

/* The raw blob of the user's first template into buf; its length, or -1. */
static int raw_blob(int64_t user_id, uint8_t *buf, int cap)
{
    struct fa_db_stmt *s = NULL;
    int n = -1;
    if (fa_db_prepare(g_raw, "SELECT embedding FROM templates WHERE user_id = ?1", &s) ==
            FA_DB_OK &&
        fa_db_bind_int64(s, 1, user_id) == FA_DB_OK && fa_db_step(s) == FA_DB_ROW) {
        n = fa_db_column_bytes(s, 0);
        if (n <= cap)
            memcpy(buf, fa_db_column_blob(s, 0), (size_t)n);
        else
            n = -1;
    }
    fa_db_finalize(s);
    return n;
}

/* 1 when any len consecutive bytes of needle (taken every step bytes)
 * occur in the file. */
static int file_holds_bytes(const char *path, const uint8_t *needle, size_t n_needle,
                            size_t len, size_t step)
{
    FILE *f = fopen(path, "rb");
    static uint8_t buf[4 << 20];
    size_t n;
    int found = 0;
    if (f == NULL)
        return 0;
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t i = 0; i + len <= n_needle && !found; i += step)
        found = memmem(buf, n, needle + i, len) != NULL;
    return found;
}

/* 1 when any 8 consecutive bytes of vec (two floats) occur in the file. */
static int file_holds(const char *path, const float vec[DIM])
{
    return file_holds_bytes(path, (const uint8_t *)vec, sizeof(float) * DIM, 8, 4);
}

/* 1 when the SQLite file or its WAL holds vec; PostgreSQL's files are the
 * server's, so 0 there (the raw blob checks still apply). */
static int db_files_hold(const float vec[DIM])
{
    char wal[620];
    if (g_engine != FA_DB_SQLITE)
        return 0;
    snprintf(wal, sizeof wal, "%s-wal", g_db);
    return file_holds(g_db, vec) || file_holds(wal, vec);
}

static void test_key_file(void)
{
    char path[320];
    struct stat sb;
    snprintf(path, sizeof path, "%s/template.key", g_dir);
    tap_ok(stat(path, &sb) == 0 && sb.st_size == FA_KEY_BYTES && (sb.st_mode & 0777) == 0600,
           "template.key: 32 bytes, mode 0600 (mode %o)", (unsigned)(sb.st_mode & 0777));
}

static void test_sealed(struct fa_store *st, int64_t alice, const float vec[DIM])
{
    uint8_t blob[256];
    int n = raw_blob(alice, blob, sizeof blob);
    float *vecs = NULL;
    int count = 0;
    struct fa_err err = {{0}};
    struct fa_store_samples *smp = NULL;
    struct fa_store_model model = {"test-model", DIM};

    tap_ok(n == DIM * 4 + FA_SEAL_OVERHEAD && blob[0] == FA_SEAL_VERSION,
           "the stored blob is sealed: %d bytes, version %d", n, n > 0 ? blob[0] : -1);
    TAP_OK(n > 0 && memmem(blob, (size_t)n, vec, 8) == NULL);
    TAP_OK(!db_files_hold(vec));
    TAP_OK(fa_store_templates_load(st, alice, "test-model", DIM, &vecs, &count, &err) == FA_OK);
    TAP_OK(count == 1 && vecs != NULL && memcmp(vecs, vec, DIM * sizeof(float)) == 0);
    free(vecs);
    TAP_OK(fa_store_samples_load(st, alice, &model, 1, &smp, &err) == FA_OK && smp->n == 1 &&
           memcmp(smp->vec[0], vec, DIM * sizeof(float)) == 0);
    fa_store_samples_free(smp);
    g_walked = 0;
    TAP_OK(fa_store_templates_each(st, "test-model", walk_one, NULL, &err) == FA_OK);
    TAP_OK(g_walked == 2);
}

/* Alice's sealed blob copied into Bob's row does not open as Bob's. */
static void test_swap(struct fa_store *st, int64_t alice, int64_t bob)
{
    float *vecs = NULL;
    int count = 0;
    struct fa_err err = {{0}};
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE templates SET embedding = (SELECT embedding FROM templates WHERE user_id ="
             " %lld) WHERE user_id = %lld",
             (long long)alice, (long long)bob);
    TAP_OK(fa_db_exec(g_raw, sql) == FA_DB_OK);
    tap_ok(fa_store_templates_load(st, bob, "test-model", DIM, &vecs, &count, &err) == FA_EDB &&
               vecs == NULL && strstr(err.msg, "does not decrypt") != NULL,
           "a blob moved to another user: %s", err.msg);
    TAP_OK(fa_store_templates_each(st, "test-model", walk_one, NULL, &err) == FA_EDB);
    snprintf(sql, sizeof sql, "DELETE FROM templates WHERE user_id = %lld", (long long)bob);
    TAP_OK(fa_db_exec(g_raw, sql) == FA_DB_OK);
}

/* A template stored in clear (as an older build did) is sealed at the next
 * open, and the file keeps no copy of the clear vector. */
static struct fa_store *test_legacy(struct fa_store *st, int64_t alice, const float vec[DIM])
{
    struct fa_err err = {{0}};
    struct fa_db_stmt *s = NULL;
    float *vecs = NULL;
    int count = 0;
    uint8_t blob[256];

    TAP_OK(fa_db_prepare(g_raw, "UPDATE templates SET embedding = ?1 WHERE user_id = ?2", &s) ==
               FA_DB_OK &&
           fa_db_bind_blob(s, 1, vec, DIM * 4) == FA_DB_OK &&
           fa_db_bind_int64(s, 2, alice) == FA_DB_OK && fa_db_step(s) == FA_DB_DONE);
    fa_db_finalize(s);
    TAP_OK(q_int("SELECT count(*) FROM templates WHERE length(embedding) = 4 * dim") == 1);
    TAP_OK(g_engine != FA_DB_SQLITE || db_files_hold(vec)); /* the check below can fail */
    fa_store_free(st);
    st = NULL;
    if (!tap_ok(fa_store_open(g_db, &st, &err) == FA_OK, "reopen: %s", err.msg))
        return NULL;
    TAP_OK(q_int("SELECT count(*) FROM templates WHERE length(embedding) = 4 * dim") == 0);
    TAP_OK(raw_blob(alice, blob, sizeof blob) == DIM * 4 + FA_SEAL_OVERHEAD);
    tap_ok(!db_files_hold(vec), "after sealing, neither the file nor its WAL holds the vector");
    TAP_OK(fa_store_templates_load(st, alice, "test-model", DIM, &vecs, &count, &err) == FA_OK);
    TAP_OK(count == 1 && vecs != NULL && memcmp(vecs, vec, DIM * sizeof(float)) == 0);
    free(vecs);
    return st;
}

/* Without its key, a database of sealed templates does not open (and no
 * new key is made over it); a key file of the wrong size is refused. */
/* SQLite: a deleted user's sealed templates leave no bytes behind in the
 * file (secure_delete), once the WAL is checkpointed. */
static void test_delete_wipes(struct fa_store *st, int64_t cid)
{
    uint8_t blob[256];
    float vc[DIM];
    int64_t carol = enrolled_user(st, cid, "carol", 3.5f, vc), gone = 0;
    int n = carol > 0 ? raw_blob(carol, blob, sizeof blob) : -1;
    char **paths = NULL;
    int n_paths = 0;
    struct fa_err err = {{0}};

    if (!TAP_OK(n > 16))
        return;
    TAP_OK(fa_db_exec(g_raw, "PRAGMA wal_checkpoint(TRUNCATE)") == FA_DB_OK);
    TAP_OK(file_holds_bytes(g_db, blob, (size_t)n, 16, 16)); /* the check below can fail */
    TAP_OK(fa_store_user_delete(st, cid, "carol", &gone, &paths, &n_paths, &err) == FA_OK &&
           gone == carol);
    fa_store_paths_free(paths, n_paths);
    TAP_OK(fa_db_exec(g_raw, "PRAGMA wal_checkpoint(TRUNCATE)") == FA_DB_OK);
    tap_ok(!file_holds_bytes(g_db, blob, (size_t)n, 16, 16),
           "a deleted user's sealed template is wiped from the file");
}

static void test_missing_key(void)
{
    char key[320], keep[330];
    struct fa_store *st = NULL;
    struct fa_err err = {{0}};
    FILE *f;

    snprintf(key, sizeof key, "%s/template.key", g_dir);
    snprintf(keep, sizeof keep, "%s.keep", key);
    TAP_OK(rename(key, keep) == 0);
    tap_ok(fa_store_open(g_db, &st, &err) == FA_EDB && st == NULL &&
               strstr(err.msg, "template.key is missing") != NULL,
           "missing key: %s", err.msg);
    TAP_OK(access(key, F_OK) != 0);
    f = fopen(key, "wb");
    if (f != NULL) {
        fputs("short", f);
        fclose(f);
    }
    tap_ok(fa_store_open(g_db, &st, &err) == FA_EDB && strstr(err.msg, "exactly 32") != NULL,
           "short key: %s", err.msg);
    TAP_OK(rename(keep, key) == 0);
    TAP_OK(fa_store_open(g_db, &st, &err) == FA_OK);
    fa_store_free(st);
}

static void backend_body(void)
{
    struct fa_store *st = NULL;
    struct fa_err err = {{0}};
    float va[DIM], vb[DIM];
    int64_t cid, alice, bob;

    if (!tap_ok(fa_store_open(g_db, &st, &err) == FA_OK, "open: %s", err.msg))
        goto out;
    if (!TAP_OK(raw_open()))
        goto out;
    if (g_engine == FA_DB_SQLITE)
        test_key_file();
    TAP_OK(fa_store_customer_add(st, "acme", "s3cret-pw", &err) == FA_OK);
    cid = q_int("SELECT id FROM customers WHERE name = 'acme'");
    alice = enrolled_user(st, cid, "alice", 1.5f, va);
    bob = enrolled_user(st, cid, "bob", 2.5f, vb);
    if (!TAP_OK(alice > 0 && bob > 0))
        goto out;
    test_sealed(st, alice, va);
    test_swap(st, alice, bob);
    st = test_legacy(st, alice, va);
    if (g_engine == FA_DB_SQLITE && st != NULL)
        test_delete_wipes(st, cid);
    fa_store_free(st);
    st = NULL;
    if (g_engine == FA_DB_SQLITE)
        test_missing_key(); /* PostgreSQL: the key is the database's (fa_store_secret) */
out:
    fa_store_free(st);
}

int main(void)
{
    return fixture_main("fa_test_seal", backend_body);
}
