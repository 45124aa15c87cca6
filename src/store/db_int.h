/*
 * db_int.h — how db.c reaches a driver (db_sqlite.c, db_pg.c). Each
 * driver's connection and statement structs start with struct fa_db and
 * struct fa_db_stmt, and db.c forwards every call through the ops table.
 */
#ifndef FACEAUTH_STORE_DB_INT_H
#define FACEAUTH_STORE_DB_INT_H

#include "db.h"

struct fa_db_ops {
    int (*exec)(struct fa_db *db, const char *sql);
    int (*prepare)(struct fa_db *db, const char *sql, struct fa_db_stmt **out);
    void (*finalize)(struct fa_db_stmt *s);
    void (*close)(struct fa_db *db);
    int (*bind_int64)(struct fa_db_stmt *s, int i, int64_t v);
    int (*bind_double)(struct fa_db_stmt *s, int i, double v);
    int (*bind_text)(struct fa_db_stmt *s, int i, const char *v, size_t n);
    int (*bind_blob)(struct fa_db_stmt *s, int i, const void *v, size_t n);
    int (*bind_null)(struct fa_db_stmt *s, int i);
    int (*step)(struct fa_db_stmt *s);
    void (*reset)(struct fa_db_stmt *s);
    int (*busy)(struct fa_db_stmt *s);
    int64_t (*column_int64)(struct fa_db_stmt *s, int col);
    double (*column_double)(struct fa_db_stmt *s, int col);
    const char *(*column_text)(struct fa_db_stmt *s, int col);
    const void *(*column_blob)(struct fa_db_stmt *s, int col);
    size_t (*column_bytes)(struct fa_db_stmt *s, int col);
    int (*column_type)(struct fa_db_stmt *s, int col);
    const char *(*column_name)(struct fa_db_stmt *s, int col);
    long (*changes)(struct fa_db *db);
    int (*autocommit)(struct fa_db *db);
    const char *(*errmsg)(struct fa_db *db);
    enum fa_db_errkind (*errkind)(struct fa_db *db);
    void (*busy_timeout)(struct fa_db *db, int ms);
    int (*listen_wait)(struct fa_db *db, const char *channel, int timeout_ms, int *woken);
};

struct fa_db {
    const struct fa_db_ops *ops;
    enum fa_db_engine engine;
};

struct fa_db_stmt {
    struct fa_db *db;
};

int fa_db_sqlite_open(const char *path, int busy_ms, struct fa_db **out);
int fa_db_pg_open(const char *url, int busy_ms, struct fa_db **out);

#endif
