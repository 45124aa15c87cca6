/*
 * db.c — the engine-neutral face of db.h: picks the driver at open and
 * forwards each call through its ops table (db_int.h). One indirect call
 * per bind or step is noise next to the engine's own work.
 */
#include "db_int.h"

#include <string.h>

const char *fa_db_sql_for(enum fa_db_engine e, const char *sql)
{
    if (sql[0] != '\1')
        return sql;
    sql++;
    return e == FA_DB_POSTGRES ? sql + strlen(sql) + 1 : sql;
}

int fa_db_open(enum fa_db_engine e, const char *target, int busy_ms, struct fa_db **out)
{
    *out = NULL;
    if (e == FA_DB_POSTGRES)
        return fa_db_pg_open(target, busy_ms, out);
    return fa_db_sqlite_open(target, busy_ms, out);
}

void fa_db_close(struct fa_db *db)
{
    if (db != NULL)
        db->ops->close(db);
}

enum fa_db_engine fa_db_engine_of(const struct fa_db *db)
{
    return db->engine;
}

int fa_db_exec(struct fa_db *db, const char *sql)
{
    return db->ops->exec(db, fa_db_sql_for(db->engine, sql));
}

int fa_db_prepare(struct fa_db *db, const char *sql, struct fa_db_stmt **out)
{
    *out = NULL;
    return db->ops->prepare(db, fa_db_sql_for(db->engine, sql), out);
}

void fa_db_finalize(struct fa_db_stmt *s)
{
    if (s != NULL)
        s->db->ops->finalize(s);
}

int fa_db_bind_int64(struct fa_db_stmt *s, int i, int64_t v)
{
    return s->db->ops->bind_int64(s, i, v);
}

int fa_db_bind_int(struct fa_db_stmt *s, int i, int v)
{
    return s->db->ops->bind_int64(s, i, v);
}

int fa_db_bind_double(struct fa_db_stmt *s, int i, double v)
{
    return s->db->ops->bind_double(s, i, v);
}

int fa_db_bind_text(struct fa_db_stmt *s, int i, const char *v)
{
    if (v == NULL)
        return s->db->ops->bind_null(s, i);
    return s->db->ops->bind_text(s, i, v, strlen(v));
}

int fa_db_bind_textn(struct fa_db_stmt *s, int i, const char *v, size_t n)
{
    if (v == NULL)
        return s->db->ops->bind_null(s, i);
    return s->db->ops->bind_text(s, i, v, n);
}

int fa_db_bind_blob(struct fa_db_stmt *s, int i, const void *v, size_t n)
{
    return s->db->ops->bind_blob(s, i, v, n);
}

int fa_db_bind_null(struct fa_db_stmt *s, int i)
{
    return s->db->ops->bind_null(s, i);
}

int fa_db_step(struct fa_db_stmt *s)
{
    return s->db->ops->step(s);
}

void fa_db_reset(struct fa_db_stmt *s)
{
    if (s != NULL)
        s->db->ops->reset(s);
}

int fa_db_stmt_busy(struct fa_db_stmt *s)
{
    return s->db->ops->busy(s);
}

int64_t fa_db_column_int64(struct fa_db_stmt *s, int col)
{
    return s->db->ops->column_int64(s, col);
}

int fa_db_column_int(struct fa_db_stmt *s, int col)
{
    return (int)s->db->ops->column_int64(s, col);
}

double fa_db_column_double(struct fa_db_stmt *s, int col)
{
    return s->db->ops->column_double(s, col);
}

const char *fa_db_column_text(struct fa_db_stmt *s, int col)
{
    return s->db->ops->column_text(s, col);
}

const void *fa_db_column_blob(struct fa_db_stmt *s, int col)
{
    return s->db->ops->column_blob(s, col);
}

size_t fa_db_column_bytes(struct fa_db_stmt *s, int col)
{
    return s->db->ops->column_bytes(s, col);
}

int fa_db_column_type(struct fa_db_stmt *s, int col)
{
    return s->db->ops->column_type(s, col);
}

const char *fa_db_column_name(struct fa_db_stmt *s, int col)
{
    return s->db->ops->column_name(s, col);
}

long fa_db_changes(struct fa_db *db)
{
    return db->ops->changes(db);
}

int fa_db_autocommit(struct fa_db *db)
{
    return db->ops->autocommit(db);
}

const char *fa_db_errmsg(struct fa_db *db)
{
    return db->ops->errmsg(db);
}

enum fa_db_errkind fa_db_errkind(struct fa_db *db)
{
    return db->ops->errkind(db);
}

int fa_db_listen_wait(struct fa_db *db, const char *channel, int timeout_ms, int *woken)
{
    *woken = 0;
    return db->ops->listen_wait(db, channel, timeout_ms, woken);
}

void fa_db_busy_timeout(struct fa_db *db, int ms)
{
    db->ops->busy_timeout(db, ms);
}
