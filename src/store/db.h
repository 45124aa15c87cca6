/*
 * db.h — the one seam between the store and a SQL engine (SQLite or
 * PostgreSQL). Only src/store/ includes it; nothing in it knows faceauth's
 * tables.
 *
 * The shape follows SQLite's C API on purpose, so the store reads the same
 * on both engines and SQLite pays nothing for the seam:
 *
 *     fa_db_prepare(db, sql, &s)      once per connection (store.c caches it)
 *     fa_db_bind_int64(s, 1, v) ...   parameters are 1-based, ?N in the text
 *     while (fa_db_step(s) == FA_DB_ROW) fa_db_column_text(s, 0) ...
 *     fa_db_reset(s)                  before the next use; drops bindings
 *
 * SQL texts are written once, in the subset both engines read: ?N (or ?)
 * placeholders, which the PostgreSQL driver rewrites to $N when it
 * prepares; ON CONFLICT ... DO NOTHING instead of INSERT OR IGNORE;
 * RETURNING instead of last_insert_rowid. Where the dialects must differ,
 * FA_DB_SQL2(sqlite, pg) keeps both texts in one static string, so the
 * statement cache, keyed by the string's address, works unchanged.
 *
 * Errors: every call that fails leaves its reason on the connection;
 * fa_db_errmsg gives the engine's text (it names tables and columns, never
 * bound values) and fa_db_errkind what the store maps to an fa_rc.
 *
 * Threads: a struct fa_db and its statements belong to one thread at a time.
 */
#ifndef FACEAUTH_STORE_DB_H
#define FACEAUTH_STORE_DB_H

#include <stddef.h>
#include <stdint.h>

struct fa_db;
struct fa_db_stmt;

enum fa_db_engine { FA_DB_SQLITE = 1, FA_DB_POSTGRES };

/* Results of bind (ORed together by callers: 0 means all fine) and step. */
#define FA_DB_OK 0
#define FA_DB_ERROR 1
#define FA_DB_ROW 100
#define FA_DB_DONE 101

/* Column type, only to tell NULL apart. */
#define FA_DB_NULL 5

/* What went wrong, as far as the store cares. */
enum fa_db_errkind {
    FA_DB_E_OTHER = 0,
    FA_DB_E_UNIQUE, /* unique or primary key violation */
    FA_DB_E_FOREIGNKEY, /* foreign key violation */
    FA_DB_E_NOSPACE, /* disk (or quota) full */
    FA_DB_E_READONLY, /* read-only file, folder or server */
    FA_DB_E_BUSY, /* lock wait ran out */
    FA_DB_E_RETRY, /* serialization failure or deadlock: the transaction may be retried */
    FA_DB_E_NOMEM,
    FA_DB_E_CONNECTION, /* the server went away */
};

/* Two dialects of one statement, in one static string: "\1" lite "\0" pg.
 * Both must be string literals. */
#define FA_DB_SQL2(sqlite_text, pg_text) "\1" sqlite_text "\0" pg_text

/* The text of sql (plain, or FA_DB_SQL2) that engine e runs. */
const char *fa_db_sql_for(enum fa_db_engine e, const char *sql);

/*
 * Open a connection to target: a file path for SQLite, a libpq URL
 * ("postgresql://..." or "postgres://...") for PostgreSQL. *out is set even
 * on failure when there is a connection carrying the message; the caller
 * closes it either way. busy_ms: how long a statement waits for a lock.
 */
int fa_db_open(enum fa_db_engine e, const char *target, int busy_ms, struct fa_db **out);
void fa_db_close(struct fa_db *db); /* NULL is fine; every statement must be finalized */

enum fa_db_engine fa_db_engine_of(const struct fa_db *db);

/* Run sql (one or more statements, no parameters, rows discarded). */
int fa_db_exec(struct fa_db *db, const char *sql);

/* Prepare sql (plain or FA_DB_SQL2); persistent: meant to be cached. */
int fa_db_prepare(struct fa_db *db, const char *sql, struct fa_db_stmt **out);
void fa_db_finalize(struct fa_db_stmt *s); /* NULL is fine */

/* Bindings: i is 1-based. Text is copied; a NULL text binds SQL NULL.
 * A blob is borrowed: it must stay valid until the statement is reset. */
int fa_db_bind_int64(struct fa_db_stmt *s, int i, int64_t v);
int fa_db_bind_int(struct fa_db_stmt *s, int i, int v);
int fa_db_bind_double(struct fa_db_stmt *s, int i, double v);
int fa_db_bind_text(struct fa_db_stmt *s, int i, const char *v);
int fa_db_bind_textn(struct fa_db_stmt *s, int i, const char *v, size_t n);
int fa_db_bind_blob(struct fa_db_stmt *s, int i, const void *v, size_t n);
int fa_db_bind_null(struct fa_db_stmt *s, int i);

/* FA_DB_ROW (a row is ready), FA_DB_DONE, or FA_DB_ERROR. */
int fa_db_step(struct fa_db_stmt *s);

/* 1 when s was stepped and not reset since (it may hold a read lock). */
int fa_db_stmt_busy(struct fa_db_stmt *s);

/* Back to before the first step, bindings dropped, no lock held. */
void fa_db_reset(struct fa_db_stmt *s);

/* Columns of the current row, 0-based. Text and blobs are borrowed until
 * the next step or reset. NULL reads as 0, "" (text: NULL pointer) or no bytes. */
int64_t fa_db_column_int64(struct fa_db_stmt *s, int col);
int fa_db_column_int(struct fa_db_stmt *s, int col);
double fa_db_column_double(struct fa_db_stmt *s, int col);
const char *fa_db_column_text(struct fa_db_stmt *s, int col);
const void *fa_db_column_blob(struct fa_db_stmt *s, int col);
size_t fa_db_column_bytes(struct fa_db_stmt *s, int col);
int fa_db_column_type(struct fa_db_stmt *s, int col); /* FA_DB_NULL or 0 */
const char *fa_db_column_name(struct fa_db_stmt *s, int col);

/* Rows changed by the last INSERT/UPDATE/DELETE that finished on db. */
long fa_db_changes(struct fa_db *db);

/* 1 outside any transaction. */
int fa_db_autocommit(struct fa_db *db);

const char *fa_db_errmsg(struct fa_db *db);
enum fa_db_errkind fa_db_errkind(struct fa_db *db);

/*
 * Wait up to timeout_ms for a notification on channel (PostgreSQL LISTEN;
 * channel is a plain identifier). *woken = 1 when one or more arrived, and
 * also when the wait (re)started listening, since notifications sent before
 * that were missed: the caller catches up either way. SQLite has no
 * notifications: it sleeps and answers 0. FA_DB_ERROR when the server
 * cannot be reached (the next call tries again).
 */
int fa_db_listen_wait(struct fa_db *db, const char *channel, int timeout_ms, int *woken);

/* Change the lock wait of db (SQLite; PostgreSQL: lock_timeout). */
void fa_db_busy_timeout(struct fa_db *db, int ms);

#endif
