/*
 * store.c — opening the database, per-thread connections, the statement
 * cache and transaction helpers (see include/faceauth/store.h, store_int.h).
 *
 * Design: SQLite connections are cheap but not meant to be shared between
 * threads that run statements at the same time, and a shared handle would
 * serialise every worker on one mutex. So each thread that calls in gets its
 * own connection, found through a pthread key and opened lazily on first use.
 * The connections are opened with SQLITE_OPEN_NOMUTEX ("multi-thread" mode):
 * no two threads ever touch one connection at once, so SQLite's
 * per-connection mutex would be pure overhead.
 *
 * Every connection is also linked into st->conns under st->lock, so that
 * fa_store_free can close the connections of threads that are still alive
 * (e.g. MHD's pool, stopped but not yet torn down). When a thread ends
 * first, the key's destructor unlinks and closes its connection.
 *
 * Concurrency between connections is SQLite's job: WAL lets readers run
 * beside the one writer, writers queue on the busy timeout, and every
 * multi-row write takes the write lock up front with BEGIN IMMEDIATE.
 *
 * PostgreSQL (db_pg.c) fits the same shape: one libpq connection per
 * thread, and a write transaction takes one advisory lock, which is BEGIN
 * IMMEDIATE across every node (see fa_store_tx_begin).
 */
#include "store_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- connections ---- */

static void conn_close(struct fa_conn *c)
{
    int i;

    if (c == NULL)
        return;
    for (i = 0; i < c->n_stmts; i++)
        fa_db_finalize(c->stmts[i].stmt);
    fa_db_close(c->db);
    free(c);
}

/* pthread key destructor: the thread is ending, its connection goes with it. */
static void conn_thread_end(void *p)
{
    struct fa_conn *c = p;
    struct fa_store *st = c->st;

    pthread_mutex_lock(&st->lock);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        st->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&st->lock);
    conn_close(c);
}

/*
 * Per-connection settings (none of them persist in the file except WAL,
 * which fa_store_open sets once):
 *  - foreign_keys: off by default in SQLite; the schema relies on cascades.
 *  - synchronous=FULL: in WAL mode every COMMIT fsyncs the WAL before it
 *    returns, so a commit we acknowledged survives a power loss or an OS
 *    crash. NORMAL skips that fsync (only checkpoints sync): it never
 *    corrupts the file and survives an application crash, but a power loss
 *    can undo the last commits, i.e. an enrollment or a deletion the client
 *    was told about. The cost of FULL is one fsync per write request
 *    (README, Performance); fa_store_set_sync offers NORMAL to whoever
 *    accepts that risk (bulk loaders, battery-backed disks).
 */
/*
 * PostgreSQL: foreign keys are always on (no setup); synchronous_commit=on
 * waits for the WAL flush like FULL, off acknowledges before it like NORMAL
 * (a crash of the server may undo the last commits, never corrupts).
 */
/* secure_delete: a deleted row's bytes (sealed templates, tokens) are zeroed
 * in the file, not left in free pages; Debian's build has it on by default,
 * we do not rely on that. */
static const char SQL_CONN_SETUP[] = "PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;";
static const char SQL_SYNC_FULL[] =
    FA_DB_SQL2("PRAGMA synchronous=FULL;", "SET synchronous_commit = on");
static const char SQL_SYNC_NORMAL[] =
    FA_DB_SQL2("PRAGMA synchronous=NORMAL;", "SET synchronous_commit = off");

static int conn_apply_sync(struct fa_conn *c)
{
    const char *sql = c->st->sync_normal ? SQL_SYNC_NORMAL : SQL_SYNC_FULL;

    return fa_db_exec(c->db, sql);
}

static enum fa_rc conn_open(struct fa_store *st, struct fa_conn **out, struct fa_err *err)
{
    struct fa_conn *c = NULL;
    enum fa_rc rc = FA_OK;

    c = calloc(1, sizeof *c);
    if (c == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory opening the database");
    c->st = st;
    if (fa_db_open(st->engine, st->path, FA_STORE_BUSY_MS, &c->db) != FA_DB_OK) {
        /* A failed open may still hand back a connection carrying the message. */
        rc = fa_err_set(err, FA_EDB, "cannot open database '%s': %s", st->label,
                        c->db != NULL ? fa_db_errmsg(c->db) : "out of memory");
        goto out;
    }
    if ((st->engine == FA_DB_SQLITE && fa_db_exec(c->db, SQL_CONN_SETUP) != FA_DB_OK) ||
        conn_apply_sync(c) != FA_DB_OK) {
        rc = fa_store_dberr(c, "connection setup", err);
        goto out;
    }
    *out = c;
    c = NULL;
out:
    conn_close(c);
    return rc;
}

enum fa_rc fa_store_conn(struct fa_store *st, struct fa_conn **out, struct fa_err *err)
{
    struct fa_conn *c = pthread_getspecific(st->key);
    enum fa_rc rc;

    if (c != NULL) {
        *out = c;
        return FA_OK;
    }
    rc = conn_open(st, &c, err);
    if (rc != FA_OK)
        return rc;
    if (pthread_setspecific(st->key, c) != 0) {
        conn_close(c);
        return fa_err_set(err, FA_ENOMEM, "out of memory opening the database");
    }
    pthread_mutex_lock(&st->lock);
    c->next = st->conns;
    if (st->conns != NULL)
        st->conns->prev = c;
    st->conns = c;
    pthread_mutex_unlock(&st->lock);
    *out = c;
    return FA_OK;
}

/* ---- statements and errors ---- */

enum fa_rc fa_store_stmt(struct fa_conn *c, const char *sql, struct fa_db_stmt **out,
                         struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    int i;

    for (i = 0; i < c->n_stmts; i++) {
        if (c->stmts[i].sql == sql) {
            *out = c->stmts[i].stmt;
            return FA_OK;
        }
    }
    /* Running out of slots means a new SQL text was added: raise the cap. */
    assert(c->n_stmts < FA_STORE_STMT_MAX);
    if (c->n_stmts >= FA_STORE_STMT_MAX)
        return fa_err_set(err, FA_EINTERNAL, "statement cache full");
    if (fa_db_prepare(c->db, sql, &s) != FA_DB_OK)
        return fa_store_dberr(c, "prepare", err);
    c->stmts[c->n_stmts].sql = sql;
    c->stmts[c->n_stmts].stmt = s;
    c->n_stmts++;
    *out = s;
    return FA_OK;
}

enum fa_rc fa_store_conn_stmt(struct fa_store *st, const char *sql, struct fa_conn **c,
                              struct fa_db_stmt **out, struct fa_err *err)
{
    enum fa_rc rc = fa_store_conn(st, c, err);
    return rc == FA_OK ? fa_store_stmt(*c, sql, out, err) : rc;
}

void fa_store_stmt_done(struct fa_db_stmt *s)
{
    fa_db_reset(s);
}

/*
 * A full disk and a read-only database are not bugs: the operator can fix
 * them and the client can be told so (507, 503) instead of a bare 500.
 */
static enum fa_rc store_code_for(struct fa_db *db)
{
    switch (fa_db_errkind(db)) {
    case FA_DB_E_NOSPACE:
        return FA_ENOSPACE;
    case FA_DB_E_READONLY:
        return FA_EREADONLY;
    default:
        return FA_EDB;
    }
}

enum fa_rc fa_store_dberr(struct fa_conn *c, const char *what, struct fa_err *err)
{
    /* Engine messages name tables and columns, never bound values, so no
     * token or password can end up here. */
    return fa_err_set(err, store_code_for(c->db), "database error (%s): %s", what,
                      fa_db_errmsg(c->db));
}

enum fa_rc fa_store_step_done(struct fa_conn *c, struct fa_db_stmt *s, const char *what,
                              struct fa_err *err)
{
    int r = fa_db_step(s);

    if (r == FA_DB_DONE)
        return FA_OK;
    if (r == FA_DB_ROW)
        return fa_err_set(err, FA_EDB, "database error (%s): unexpected row", what);
    return fa_store_dberr(c, what, err);
}

int fa_store_bind_id_text(struct fa_db_stmt *s, int64_t id, const char *text)
{
    int b = FA_DB_OK;

    b |= fa_db_bind_int64(s, 1, id);
    b |= fa_db_bind_text(s, 2, text);
    return b;
}

enum fa_rc fa_store_run(struct fa_conn *c, struct fa_db_stmt *s, int b, const char *what,
                        struct fa_err *err)
{
    /* Before the reset: it overwrites the connection's error text. */
    enum fa_rc rc = b == FA_DB_OK ? fa_store_step_done(c, s, what, err)
                                   : fa_store_dberr(c, what, err);

    fa_store_stmt_done(s);
    return rc;
}

enum fa_rc fa_store_lookup_id(struct fa_conn *c, const char *sql, int64_t customer_id,
                              const char *text, int64_t *out, const char *what,
                              struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int r;

    *out = 0;
    rc = fa_store_stmt(c, sql, &s, err);
    if (rc != FA_OK)
        return rc;
    r = fa_store_bind_id_text(s, customer_id, text) == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;
    if (r == FA_DB_ROW)
        *out = fa_db_column_int64(s, 0);
    else if (r == FA_DB_DONE)
        rc = FA_ENOTFOUND;
    else
        rc = fa_store_dberr(c, what, err);
    fa_store_stmt_done(s);
    return rc;
}

enum fa_rc fa_store_count(struct fa_conn *c, struct fa_db_stmt *s, int b, long *total,
                          const char *what, struct fa_err *err)
{
    enum fa_rc rc = FA_OK;
    int r = b == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;

    if (r == FA_DB_ROW)
        *total = (long)fa_db_column_int64(s, 0);
    else
        rc = fa_store_dberr(c, what, err);
    fa_store_stmt_done(s);
    return rc;
}

/* ---- transactions ---- */

/*
 * Write transactions on PostgreSQL: READ COMMITTED plus one transaction-
 * scoped advisory lock that every write transaction takes first, which is
 * what SQLite's BEGIN IMMEDIATE gives: one writer at a time, across every
 * node. The store's transactions were written for that (read the next
 * sample number, then insert; read a throttle row, then update it), so
 * they stay correct unchanged. SERIALIZABLE would need a retry loop around
 * every transaction's work, replaying steps that have effects outside the
 * database. Readers take no lock. The lock goes with COMMIT or ROLLBACK,
 * and with the session if a node dies.
 * Reads that must agree (a count and its page) use one REPEATABLE READ
 * snapshot, as a deferred SQLite BEGIN does.
 */
static const char SQL_BEGIN[] = FA_DB_SQL2("BEGIN IMMEDIATE", "BEGIN");
static const char SQL_WRITE_LOCK[] = "SELECT pg_advisory_xact_lock(" FA_STORE_PG_LOCK_WRITE ")";
static const char SQL_BEGIN_READ[] =
    FA_DB_SQL2("BEGIN", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";

static enum fa_rc tx_exec(struct fa_conn *c, const char *sql, const char *what,
                          struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;

    rc = fa_store_stmt(c, sql, &s, err);
    if (rc != FA_OK)
        return rc;
    return fa_store_run(c, s, FA_DB_OK, what, err);
}

enum fa_rc fa_store_tx_begin(struct fa_conn *c, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc = tx_exec(c, SQL_BEGIN, "begin", err);

    if (rc != FA_OK || fa_db_engine_of(c->db) != FA_DB_POSTGRES)
        return rc;
    rc = fa_store_stmt(c, SQL_WRITE_LOCK, &s, err);
    if (rc == FA_OK && fa_db_step(s) != FA_DB_ROW)
        rc = fa_store_dberr(c, "begin", err);
    fa_store_stmt_done(s);
    /* Callers treat a failed begin as no transaction. */
    if (rc != FA_OK)
        fa_store_tx_rollback(c);
    return rc;
}

enum fa_rc fa_store_tx_begin_read(struct fa_conn *c, struct fa_err *err)
{
    /* Deferred: the snapshot starts at the first read and takes no write
     * lock, so a list never queues behind (or blocks) a writer. */
    return tx_exec(c, SQL_BEGIN_READ, "begin", err);
}

enum fa_rc fa_store_tx_commit(struct fa_conn *c, struct fa_err *err)
{
    enum fa_rc rc = tx_exec(c, SQL_COMMIT, "commit", err);

    /* A failed COMMIT (e.g. disk full) leaves the transaction open. */
    if (rc != FA_OK)
        fa_store_tx_rollback(c);
    return rc;
}

enum fa_rc fa_store_tx_end(struct fa_conn *c, enum fa_rc work_rc, struct fa_err *err)
{
    if (work_rc != FA_OK) {
        fa_store_tx_rollback(c);
        return work_rc;
    }
    return fa_store_tx_commit(c, err);
}

void fa_store_tx_rollback(struct fa_conn *c)
{
    /* Some errors (SQLite: SQLITE_FULL, SQLITE_IOERR...) already rolled back. */
    if (fa_db_autocommit(c->db))
        return;
    (void)tx_exec(c, SQL_ROLLBACK, "rollback", NULL);
}

enum fa_rc fa_store_page_read(struct fa_conn *c, const struct fa_store_page *pg, void **rows,
                              int *n, long *total, struct fa_err *err)
{
    void *buf;
    int count = 0;
    enum fa_rc rc;

    *rows = NULL;
    *n = 0;
    *total = 0;
    /* Before the snapshot opens: a failure here has nothing to roll back. */
    buf = calloc((size_t)pg->page_count, pg->row_size);
    if (buf == NULL)
        return fa_err_set(err, FA_ENOMEM, "%s", pg->nomem);
    rc = fa_store_tx_begin_read(c, err);
    if (rc != FA_OK)
        goto out;
    rc = pg->count(c, pg->arg, total, err);
    if (rc == FA_OK)
        rc = pg->rows(c, pg->arg, buf, &count, err);
    rc = fa_store_tx_end(c, rc, err);
out:
    /* An empty page is NULL, so callers have nothing to free. */
    if (rc != FA_OK || count == 0) {
        free(buf);
        buf = NULL;
        count = 0;
    }
    if (rc != FA_OK)
        *total = 0;
    *rows = buf;
    *n = count;
    return rc;
}

/* ---- growing arrays ---- */

enum fa_rc fa_store_grow(void **p, size_t *cap, size_t need, size_t size,
                         const struct fa_store_growth *g, struct fa_err *err)
{
    size_t ncap = *cap == 0 ? g->first : *cap;
    void *grown;

    if (need <= *cap)
        return FA_OK;
    while (ncap < need && ncap <= SIZE_MAX / 2)
        ncap *= 2;
    if (ncap < need || ncap > g->max || ncap > SIZE_MAX / size)
        return fa_err_set(err, FA_ETOOBIG, "%s", g->toobig);
    grown = realloc(*p, ncap * size);
    if (grown == NULL)
        return fa_err_set(err, FA_ENOMEM, "%s", g->nomem);
    *p = grown;
    *cap = ncap;
    return FA_OK;
}

/* ---- open, free, health ---- */

/* WAL is a property of the file: set once here, every later connection
 * inherits it. It cannot be set inside a transaction, so before migrating. */
static enum fa_rc store_set_wal(struct fa_conn *c, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc = FA_OK;
    const char *mode;

    if (fa_db_prepare(c->db, "PRAGMA journal_mode=WAL", &s) != FA_DB_OK)
        return fa_store_dberr(c, "journal_mode", err);
    if (fa_db_step(s) != FA_DB_ROW) {
        rc = fa_store_dberr(c, "journal_mode", err);
        goto out;
    }
    /* SQLite answers with the mode in force: "memory" for :memory: and
     * some VFSes, which would silently lose our concurrency guarantees. */
    mode = fa_db_column_text(s, 0);
    if (mode == NULL || strcmp(mode, "wal") != 0)
        rc = fa_err_set(err, FA_EDB, "database '%s' cannot use WAL mode (got '%s')",
                        c->st->path, mode != NULL ? mode : "?");
out:
    fa_db_finalize(s);
    return rc;
}

/*
 * What the database setting names: "postgresql://..." or "postgres://..."
 * (a libpq URL, kept whole), "sqlite:PATH", or a bare SQLite path. The
 * label shown in messages is the URL without its user and password.
 */
static enum fa_rc store_target(struct fa_store *st, const char *database, struct fa_err *err)
{
    const char *at, *rest;

    st->engine = FA_DB_SQLITE;
    if (strncmp(database, "postgresql://", 13) == 0 || strncmp(database, "postgres://", 11) == 0)
        st->engine = FA_DB_POSTGRES;
    else if (strncmp(database, "sqlite:", 7) == 0)
        database += 7;
    if (database[0] == '\0')
        return fa_err_set(err, FA_EINVAL, "database path is empty");
    st->path = strdup(database);
    st->label = strdup(database);
    if (st->path == NULL || st->label == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory opening the database");
    if (st->engine == FA_DB_POSTGRES) {
        rest = strstr(database, "://") + 3;
        at = strchr(rest, '@');
        if (at != NULL && (strchr(rest, '/') == NULL || at < strchr(rest, '/')))
            snprintf(st->label, strlen(database) + 1, "%.*s%s", (int)(rest - database), database,
                     at + 1);
    }
    return FA_OK;
}

static enum fa_rc store_alloc(const char *path, struct fa_store **out, struct fa_err *err)
{
    struct fa_store *st = calloc(1, sizeof *st);
    enum fa_rc rc;

    if (st == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory opening the database");
    rc = store_target(st, path, err);
    if (rc != FA_OK) {
        free(st->path);
        free(st->label);
        free(st);
        return rc;
    }
    if (pthread_key_create(&st->key, conn_thread_end) != 0) {
        free(st->path);
        free(st->label);
        free(st);
        return fa_err_set(err, FA_EINTERNAL, "no thread-local key left for the database");
    }
    pthread_mutex_init(&st->lock, NULL);
    *out = st;
    return FA_OK;
}

enum fa_rc fa_store_open(const char *path, struct fa_store **out, struct fa_err *err)
{
    struct fa_store *st = NULL;
    struct fa_conn *c = NULL;
    enum fa_rc rc;

    *out = NULL;
    if (path == NULL || path[0] == '\0')
        return fa_err_set(err, FA_EINVAL, "database path is empty");
    rc = store_alloc(path, &st, err);
    if (rc != FA_OK)
        goto out;
    rc = fa_store_conn(st, &c, err);
    if (rc != FA_OK)
        goto out;
    if (st->engine == FA_DB_SQLITE)
        rc = store_set_wal(c, err);
    if (rc != FA_OK)
        goto out;
    rc = fa_store_migrate(c, err);
    if (rc != FA_OK)
        goto out;
    rc = fa_store_seal_open(st, c, err);
    if (rc != FA_OK)
        goto out;
    *out = st;
    st = NULL;
out:
    fa_store_free(st);
    return rc;
}

void fa_store_free(struct fa_store *st)
{
    struct fa_conn *c, *next;

    if (st == NULL)
        return;
    /* After key_delete no thread's destructor will run for this store, so
     * the list below is ours alone (callers guarantee no thread is still
     * inside a store call or exiting concurrently). */
    pthread_key_delete(st->key);
    pthread_mutex_lock(&st->lock);
    c = st->conns;
    st->conns = NULL;
    pthread_mutex_unlock(&st->lock);
    for (; c != NULL; c = next) {
        next = c->next;
        conn_close(c);
    }
    pthread_mutex_destroy(&st->lock);
    fa_db_close(st->listen);
    fa_crypto_wipe(st->tkey, sizeof st->tkey);
    free(st->path);
    free(st->label);
    free(st);
}

enum fa_rc fa_store_set_sync(struct fa_store *st, int full, struct fa_err *err)
{
    struct fa_conn *c = NULL;
    enum fa_rc rc;

    /* Connections opened later read the flag; the caller's own, opened by
     * fa_store_open, is switched here. */
    st->sync_normal = !full;
    rc = fa_store_conn(st, &c, err);
    if (rc == FA_OK && conn_apply_sync(c) != FA_DB_OK)
        rc = fa_store_dberr(c, "synchronous", err);
    return rc;
}

int fa_store_writable(struct fa_store *st)
{
    struct fa_conn *c = NULL;
    int ok;

    if (fa_store_conn(st, &c, NULL) != FA_OK)
        return 0;
    /* Taking the write lock proves the file is writable and not wedged by
     * another writer. A health probe should answer quickly, so wait 1 s at
     * most instead of the usual busy timeout. */
    fa_db_busy_timeout(c->db, 1000);
    ok = fa_store_tx_begin(c, NULL) == FA_OK;
    if (ok)
        fa_store_tx_rollback(c);
    fa_db_busy_timeout(c->db, FA_STORE_BUSY_MS);
    return ok;
}

const char *fa_user_state_name(enum fa_user_state s)
{
    switch (s) {
    case FA_USER_DRAFT:
        return "draft";
    case FA_USER_SUCCESS:
        return "success";
    case FA_USER_FAILURE:
        return "failure";
    }
    /* Not a state: a bug. "unknown" shows up instead of hiding it, and the
     * schema's CHECK refuses it if it ever reaches an UPDATE. */
    return "unknown";
}

int64_t fa_store_now(void)
{
    return (int64_t)time(NULL);
}

int64_t fa_store_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
