/*
 * store_int.h — what the files of src/store/ share and nobody else sees.
 *
 * A struct fa_store owns the database path, a pthread key and the list of
 * every connection opened through it. A struct fa_conn is one thread's
 * database connection (db.h) plus its cache of prepared statements; it is only ever used
 * by the thread that opened it, except by fa_store_free once every worker is
 * done.
 *
 * Statement cache: each SQL text is a `static const char[]` beside the code
 * that binds it, and the cache is keyed by the address of that text. The
 * pattern at every call site is
 *
 *     rc = fa_store_stmt(c, SQL_X, &s, err);   prepared once per connection
 *     ... bind, step ...
 *     fa_store_stmt_done(s);                  reset + clear bindings
 *
 * fa_store_stmt_done must run before returning, on every path: a statement
 * left un-reset keeps a read transaction open, which stalls WAL checkpoints
 * and makes later writes on the connection fail with SQLITE_BUSY_SNAPSHOT.
 */
#ifndef FACEAUTH_STORE_INT_H
#define FACEAUTH_STORE_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "faceauth/store.h"

/* Distinct SQL texts a connection may cache; fa_store_stmt asserts on more. */
#define FA_STORE_STMT_MAX 96
/* Largest embedding we store: a guard against a corrupt or buggy dim. */
#define FA_STORE_DIM_MAX 4096
#define FA_STORE_BUSY_MS 5000

struct fa_conn_stmt {
    const char *sql; /* static text; its address is the cache key */
    struct fa_db_stmt *stmt;
};

struct fa_conn {
    struct fa_store *st;
    struct fa_db *db;
    int n_stmts;
    struct fa_conn_stmt stmts[FA_STORE_STMT_MAX];
    struct fa_conn *prev, *next; /* in st->conns, under st->lock */
};

/* The advisory lock key every PostgreSQL write transaction takes (store.c). */
#define FA_STORE_PG_LOCK_WRITE "7046210001"

struct fa_store {
    enum fa_db_engine engine;
    char *path; /* SQLite file, or the PostgreSQL URL */
    char *label; /* path for messages: the URL without user and password */
    uint8_t tkey[FA_KEY_BYTES]; /* seals the templates (store_seal.c); set once at open */
    pthread_key_t key; /* this thread's struct fa_conn */
    pthread_mutex_t lock; /* guards conns only; never held during SQL */
    struct fa_conn *conns;
    int sync_normal; /* 1: synchronous=NORMAL (fa_store_set_sync); set before threads start */
    struct fa_db *listen; /* fa_store_changes_wait's own connection; NULL until then */
};

/* This thread's connection, opened on first use. The store keeps ownership. */
enum fa_rc fa_store_conn(struct fa_store *st, struct fa_conn **out, struct fa_err *err);

/* The cached statement for sql (a static string), prepared on first use. */
enum fa_rc fa_store_stmt(struct fa_conn *c, const char *sql, struct fa_db_stmt **out,
                         struct fa_err *err);

/* This thread's connection and the cached statement for sql on it: the
 * opening pair of nearly every store function. */
enum fa_rc fa_store_conn_stmt(struct fa_store *st, const char *sql, struct fa_conn **c,
                              struct fa_db_stmt **out, struct fa_err *err);

/* Reset s and drop its bindings so it holds no lock and no caller pointer. NULL is fine. */
void fa_store_stmt_done(struct fa_db_stmt *s);

/* FA_EDB with "database error (what): <engine message>" in err; FA_ENOSPACE
 * when the disk is full (SQLite: SQLITE_FULL or an I/O error with
 * ENOSPC/EDQUOT; PostgreSQL: 53100), FA_EREADONLY when the database is
 * read-only (a read-only file or folder; a read-only server, 25006). */
enum fa_rc fa_store_dberr(struct fa_conn *c, const char *what, struct fa_err *err);

/* Step s, which must finish without rows (INSERT/UPDATE/DELETE). FA_EDB otherwise. */
enum fa_rc fa_store_step_done(struct fa_conn *c, struct fa_db_stmt *s, const char *what,
                              struct fa_err *err);

/* Bind ?1 = id and ?2 = text (copied; NULL binds SQL NULL): the (owner id,
 * name) key that most store statements start with. Returns the bind results
 * ORed together. */
int fa_store_bind_id_text(struct fa_db_stmt *s, int64_t id, const char *text);

/* Finish a write whose parameters the caller bound (b: the bind results
 * ORed together): step it to the end, then fa_store_stmt_done. FA_EDB
 * naming what when a bind or the step failed. */
enum fa_rc fa_store_run(struct fa_conn *c, struct fa_db_stmt *s, int b, const char *what,
                        struct fa_err *err);

/* Run the cached statement sql with ?1 = customer_id, ?2 = text, and read
 * column 0 of its first row into *out (0 until then). FA_ENOTFOUND, with no
 * message (the caller words it), when there is no row; FA_EDB naming what. */
enum fa_rc fa_store_lookup_id(struct fa_conn *c, const char *sql, int64_t customer_id,
                              const char *text, int64_t *out, const char *what,
                              struct fa_err *err);

/* Step s (bound by the caller; b as for fa_store_run) for its one row and
 * read column 0, a COUNT(*), into *total; then fa_store_stmt_done. */
enum fa_rc fa_store_count(struct fa_conn *c, struct fa_db_stmt *s, int b, long *total,
                          const char *what, struct fa_err *err);

/* BEGIN IMMEDIATE: take the write lock now (waiting up to the busy timeout),
 * so a transaction never fails halfway on a lock upgrade. */
enum fa_rc fa_store_tx_begin(struct fa_conn *c, struct fa_err *err);
/* BEGIN (deferred): a read snapshot, so that a count and the page it
 * belongs to see the same rows. End it with fa_store_tx_commit. */
enum fa_rc fa_store_tx_begin_read(struct fa_conn *c, struct fa_err *err);
enum fa_rc fa_store_tx_commit(struct fa_conn *c, struct fa_err *err);
/* Roll back when a transaction is open; safe to call when none is. */
void fa_store_tx_rollback(struct fa_conn *c);
/* End the open transaction by the outcome of its work: commit when work_rc
 * is FA_OK (a failed commit is returned), roll back and return work_rc
 * otherwise. Callers write `rc = fa_store_tx_end(c, do_writes(c, ...), err)`. */
enum fa_rc fa_store_tx_end(struct fa_conn *c, enum fa_rc work_rc, struct fa_err *err);

/* ---- one page of a list, with its total (store.c) ---- */

/* The two reads of a page; arg is the caller's query, rows its buffer. */
typedef enum fa_rc (*fa_store_count_fn)(struct fa_conn *c, const void *arg, long *total,
                                        struct fa_err *err);
typedef enum fa_rc (*fa_store_rows_fn)(struct fa_conn *c, const void *arg, void *rows, int *n,
                                       struct fa_err *err);

struct fa_store_page {
    fa_store_count_fn count; /* COUNT(*) of every matching row */
    fa_store_rows_fn rows; /* the page itself, at most page_count rows */
    const void *arg;
    int page_count; /* validated by fa_store_check_page */
    size_t row_size;
    const char *nomem; /* message when the rows cannot be allocated */
};

/* Room for page_count rows, then count and rows in one read snapshot, so
 * the total always describes the rows the page was cut from. *rows (NULL
 * when the page is empty) goes to the caller, who frees it; on error
 * *rows = NULL, *n = 0 and *total = 0. */
enum fa_rc fa_store_page_read(struct fa_conn *c, const struct fa_store_page *pg, void **rows,
                              int *n, long *total, struct fa_err *err);

/* ---- growing arrays (store.c) ---- */

/* How one array grows, for fa_store_grow: usually a static const beside
 * the code that appends. */
struct fa_store_growth {
    size_t first; /* room of the first allocation, in elements */
    size_t max; /* most elements ever: INT_MAX where the count is an int */
    const char *toobig; /* the FA_ETOOBIG message */
    const char *nomem; /* the FA_ENOMEM message */
};

/* Make *p, an array with room for *cap elements of size bytes, hold at least
 * need: the room doubles (from g->first when it is 0) until it is enough.
 * FA_ETOOBIG past g->max elements or SIZE_MAX bytes, FA_ENOMEM when realloc
 * fails; on either, *p and *cap are unchanged and *p stays the caller's. */
enum fa_rc fa_store_grow(void **p, size_t *cap, size_t need, size_t size,
                         const struct fa_store_growth *g, struct fa_err *err);

/* ---- user rows (store_user.c) ---- */

/* The columns fa_store_user_from_row reads, in its order; a statement is
 * this text plus a WHERE clause. */
#define FA_STORE_USER_COLUMNS                                                                  \
    "SELECT id, customer_id, user_name, full_name, email, phone, country_code,"                \
    " enroll_token, state, blacklisted, created, updated, blacklisted_at,"                     \
    " face_original, face_thumbnail FROM users"

/* Fill out from the current row of a FA_STORE_USER_COLUMNS statement. */
enum fa_rc fa_store_user_from_row(struct fa_conn *c, struct fa_db_stmt *s, struct fa_user *out,
                                  struct fa_err *err);

/* Step s (a FA_STORE_USER_COLUMNS statement the caller bound; b: the bind
 * results ORed) for its one row into out, then fa_store_stmt_done.
 * FA_ENOTFOUND with no message (the caller words it); FA_EDB "user lookup". */
enum fa_rc fa_store_user_step(struct fa_conn *c, struct fa_db_stmt *s, int b, struct fa_user *out,
                              struct fa_err *err);

/* The customer's user user_name on c (inside the caller's transaction, if
 * any). FA_ENOTFOUND with "userName '...' not found". */
enum fa_rc fa_store_user_find(struct fa_conn *c, int64_t customer_id, const char *user_name,
                              struct fa_user *out, struct fa_err *err);

/* ---- templates encrypted at rest (store_seal.c) ---- */

/* Bytes of a sealed template of dim floats, as stored. */
#define FA_STORE_SEALED_BYTES(dim) ((size_t)(dim) * sizeof(float) + FA_SEAL_OVERHEAD)

/* Load the template key from template.key beside the database file, or
 * create it (0600) when there is none and no template is sealed yet; then
 * seal every template still stored in clear (a database of an older
 * build) in one transaction and VACUUM, so no vector is left in a free
 * page. At open, on the opening connection, after the migrations. */
enum fa_rc fa_store_seal_open(struct fa_store *st, struct fa_conn *c, struct fa_err *err);

/* Seal dim floats of template (user_id, sample, model_id) into out
 * (FA_STORE_SEALED_BYTES(dim) bytes). The row's identity is the associated
 * data, so a sealed blob copied into another user's row (or another
 * sample or model) does not open. */
void fa_store_tpl_seal(const struct fa_store *st, int64_t user_id, int64_t sample,
                       const char *model_id, const float *vec, int dim, uint8_t *out);

/* Open the sealed blob of n bytes of template (user_id, sample, model_id)
 * into out (dim floats). FA_EDB naming the user when the length is not that
 * of dim floats sealed, or the blob does not open under the key and the
 * row's identity (another key, or an altered or moved blob). */
enum fa_rc fa_store_tpl_open(const struct fa_store *st, int64_t user_id, int64_t sample,
                             const char *model_id, const void *blob, size_t n, int dim,
                             float *out, struct fa_err *err);

/* The migrations in PostgreSQL's dialect (store_schema_pg.c). */
#define FA_STORE_PG_MIGRATIONS 7
extern const char *const *const fa_store_pg_migrations[FA_STORE_PG_MIGRATIONS];

/* Migrate the schema to the newest version (store_schema.c). */
enum fa_rc fa_store_migrate(struct fa_conn *c, struct fa_err *err);

/* ---- validation and row helpers (store_check.c) ---- */

/* A customerName/userName: 1-FA_NAME_MAX chars of A-Z a-z 0-9 . _ @ -. */
int fa_store_name_ok(const char *s);
/* FA_EINVAL naming field unless fa_store_name_ok(s). */
enum fa_rc fa_store_check_name(const char *field, const char *s, struct fa_err *err);
/* FA_EINVAL naming field when s is NULL or longer than max bytes. */
enum fa_rc fa_store_check_text(const char *field, const char *s, size_t max, struct fa_err *err);
/* A page request: page >= 1 ("pageNumber"), page_count 1-100 ("pageCount"),
 * and from <= to when both are set (0 = open end). FA_EINVAL otherwise. */
#define FA_STORE_PAGE_COUNT_MAX 100
enum fa_rc fa_store_check_page(int page, int page_count, int64_t from, int64_t to,
                               struct fa_err *err);
/* 1 when s is exactly FA_IMAGE_ID_HEX lowercase hex digits. */
int fa_store_image_id_ok(const char *s);

/* Copy text column col of s into buf (size bytes, always NUL-terminated);
 * FA_EDB when the stored value does not fit, which validation prevents. */
enum fa_rc fa_store_col_text(struct fa_conn *c, struct fa_db_stmt *s, int col, char *buf, size_t size,
                             struct fa_err *err);

/* "draft"/"success"/"failure" back to the enum; -1 for anything else. */
int fa_store_state_parse(const char *s);

/* Unix seconds now. */
int64_t fa_store_now(void);

/* Unix milliseconds now (callback retry times). */
int64_t fa_store_now_ms(void);

/* Write the outbox row of ev inside the caller's transaction when the
 * customer has a URL for its event; sets ev->queued (store_outbox.c). */
enum fa_rc fa_store_outbox_add(struct fa_conn *c, int64_t customer_id, struct fa_store_event *ev,
                               int64_t now, struct fa_err *err);

/* ---- several nodes (store_shared.c) ---- */

/* Number a change of user_id's templates or state in the caller's write
 * transaction (and NOTIFY it on PostgreSQL). */
enum fa_rc fa_store_feed_bump(struct fa_conn *c, int64_t customer_id, int64_t user_id,
                              struct fa_err *err);

/* fa_store_secret on c (inside the caller's transaction, if any). */
enum fa_rc fa_store_secret_conn(struct fa_conn *c, const char *name, uint8_t *buf, size_t n,
                                struct fa_err *err);

/* Store img's bytes, when it has some, in the caller's transaction. */
enum fa_rc fa_store_image_data_add(struct fa_conn *c, const struct fa_store_image *img,
                                   int64_t customer_id, int64_t user_id, struct fa_err *err);

#endif
