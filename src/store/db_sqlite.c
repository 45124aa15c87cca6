/*
 * db_sqlite.c — the SQLite driver of db.h: a thin veneer over sqlite3_*,
 * so the default engine behaves (and performs) as when the store called
 * SQLite directly.
 *
 * Connections are opened with SQLITE_OPEN_NOMUTEX ("multi-thread" mode):
 * a connection is only ever used by one thread at a time (store.c), so
 * SQLite's per-connection mutex would be pure overhead. Statements are
 * prepared with SQLITE_PREPARE_PERSISTENT, since the store caches them for
 * the connection's life.
 */
#include "db_int.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <time.h>

struct lite_db {
    struct fa_db base;
    sqlite3 *h;
};

struct lite_stmt {
    struct fa_db_stmt base;
    sqlite3_stmt *h;
};

#define LDB(db) (((struct lite_db *)(db))->h)
#define LST(s) (((struct lite_stmt *)(s))->h)

static int lite_rc(int r)
{
    return r == SQLITE_OK ? FA_DB_OK : FA_DB_ERROR;
}

static int lite_exec(struct fa_db *db, const char *sql)
{
    return lite_rc(sqlite3_exec(LDB(db), sql, NULL, NULL, NULL));
}

static int lite_prepare(struct fa_db *db, const char *sql, struct fa_db_stmt **out)
{
    struct lite_stmt *s = calloc(1, sizeof *s);

    if (s == NULL)
        return FA_DB_ERROR;
    if (sqlite3_prepare_v3(LDB(db), sql, -1, SQLITE_PREPARE_PERSISTENT, &s->h, NULL) !=
        SQLITE_OK) {
        free(s);
        return FA_DB_ERROR;
    }
    s->base.db = db;
    *out = &s->base;
    return FA_DB_OK;
}

static void lite_finalize(struct fa_db_stmt *s)
{
    sqlite3_finalize(LST(s));
    free(s);
}

static void lite_close(struct fa_db *db)
{
    /* The store finalizes every statement first, so close cannot be refused. */
    sqlite3_close(LDB(db));
    free(db);
}

static int lite_bind_int64(struct fa_db_stmt *s, int i, int64_t v)
{
    return lite_rc(sqlite3_bind_int64(LST(s), i, v));
}

static int lite_bind_double(struct fa_db_stmt *s, int i, double v)
{
    return lite_rc(sqlite3_bind_double(LST(s), i, v));
}

static int lite_bind_text(struct fa_db_stmt *s, int i, const char *v, size_t n)
{
    return lite_rc(sqlite3_bind_text64(LST(s), i, v, n, SQLITE_TRANSIENT, SQLITE_UTF8));
}

static int lite_bind_blob(struct fa_db_stmt *s, int i, const void *v, size_t n)
{
    return lite_rc(sqlite3_bind_blob64(LST(s), i, v, n, SQLITE_STATIC));
}

static int lite_bind_null(struct fa_db_stmt *s, int i)
{
    return lite_rc(sqlite3_bind_null(LST(s), i));
}

static int lite_step(struct fa_db_stmt *s)
{
    int r = sqlite3_step(LST(s));

    if (r == SQLITE_ROW)
        return FA_DB_ROW;
    if (r == SQLITE_DONE)
        return FA_DB_DONE;
    return FA_DB_ERROR;
}

static void lite_reset(struct fa_db_stmt *s)
{
    /* reset repeats the last step's error code; the caller has seen it. */
    sqlite3_reset(LST(s));
    sqlite3_clear_bindings(LST(s));
}

static int lite_busy(struct fa_db_stmt *s)
{
    return sqlite3_stmt_busy(LST(s)) != 0;
}

static int64_t lite_column_int64(struct fa_db_stmt *s, int col)
{
    return sqlite3_column_int64(LST(s), col);
}

static double lite_column_double(struct fa_db_stmt *s, int col)
{
    return sqlite3_column_double(LST(s), col);
}

static const char *lite_column_text(struct fa_db_stmt *s, int col)
{
    return (const char *)sqlite3_column_text(LST(s), col);
}

static const void *lite_column_blob(struct fa_db_stmt *s, int col)
{
    return sqlite3_column_blob(LST(s), col);
}

static size_t lite_column_bytes(struct fa_db_stmt *s, int col)
{
    return (size_t)sqlite3_column_bytes(LST(s), col);
}

static int lite_column_type(struct fa_db_stmt *s, int col)
{
    return sqlite3_column_type(LST(s), col) == SQLITE_NULL ? FA_DB_NULL : 0;
}

static const char *lite_column_name(struct fa_db_stmt *s, int col)
{
    return sqlite3_column_name(LST(s), col);
}

static long lite_changes(struct fa_db *db)
{
    return (long)sqlite3_changes(LDB(db));
}

static int lite_autocommit(struct fa_db *db)
{
    return sqlite3_get_autocommit(LDB(db));
}

static const char *lite_errmsg(struct fa_db *db)
{
    return sqlite3_errmsg(LDB(db));
}

/*
 * SQLite reports a full disk as SQLITE_FULL on most paths, but some writes
 * (the WAL index, a truncate) come back as an I/O error whose errno says
 * ENOSPC; a read-only folder likewise shows as EROFS behind an I/O error.
 */
static enum fa_db_errkind lite_errkind(struct fa_db *db)
{
    int xc = sqlite3_extended_errcode(LDB(db));
    int sys = sqlite3_system_errno(LDB(db));

    if (xc == SQLITE_CONSTRAINT_UNIQUE || xc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return FA_DB_E_UNIQUE;
    if (xc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return FA_DB_E_FOREIGNKEY;
    switch (xc & 0xff) {
    case SQLITE_FULL:
        return FA_DB_E_NOSPACE;
    case SQLITE_READONLY:
        return FA_DB_E_READONLY;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return FA_DB_E_BUSY;
    case SQLITE_NOMEM:
        return FA_DB_E_NOMEM;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
        if (sys == ENOSPC || sys == EDQUOT)
            return FA_DB_E_NOSPACE;
        if (sys == EROFS)
            return FA_DB_E_READONLY;
        break;
    }
    return FA_DB_E_OTHER;
}

static void lite_busy_timeout(struct fa_db *db, int ms)
{
    sqlite3_busy_timeout(LDB(db), ms);
}

/* One process owns a SQLite file's writes: nobody else can notify. */
static int lite_listen_wait(struct fa_db *db, const char *channel, int timeout_ms, int *woken)
{
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};

    (void)db;
    (void)channel;
    *woken = 0;
    nanosleep(&ts, NULL);
    return FA_DB_OK;
}

static const struct fa_db_ops lite_ops = {
    .exec = lite_exec,
    .prepare = lite_prepare,
    .finalize = lite_finalize,
    .close = lite_close,
    .bind_int64 = lite_bind_int64,
    .bind_double = lite_bind_double,
    .bind_text = lite_bind_text,
    .bind_blob = lite_bind_blob,
    .bind_null = lite_bind_null,
    .step = lite_step,
    .reset = lite_reset,
    .busy = lite_busy,
    .column_int64 = lite_column_int64,
    .column_double = lite_column_double,
    .column_text = lite_column_text,
    .column_blob = lite_column_blob,
    .column_bytes = lite_column_bytes,
    .column_type = lite_column_type,
    .column_name = lite_column_name,
    .changes = lite_changes,
    .autocommit = lite_autocommit,
    .errmsg = lite_errmsg,
    .errkind = lite_errkind,
    .busy_timeout = lite_busy_timeout,
    .listen_wait = lite_listen_wait,
};

int fa_db_sqlite_open(const char *path, int busy_ms, struct fa_db **out)
{
    struct lite_db *db = calloc(1, sizeof *db);
    int r;

    if (db == NULL)
        return FA_DB_ERROR;
    db->base.ops = &lite_ops;
    db->base.engine = FA_DB_SQLITE;
    r = sqlite3_open_v2(path, &db->h,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (db->h == NULL) {
        /* Out of memory before SQLite had a handle to carry the message. */
        free(db);
        return FA_DB_ERROR;
    }
    /* Even on failure the handle carries the message: hand it back. */
    *out = &db->base;
    if (r != SQLITE_OK)
        return FA_DB_ERROR;
    sqlite3_extended_result_codes(db->h, 1);
    sqlite3_busy_timeout(db->h, busy_ms);
    return FA_DB_OK;
}
