/*
 * db_pg.c — the PostgreSQL driver of db.h, over libpq.
 *
 * Design:
 *  - One PGconn per struct fa_db; like SQLite connections, one thread uses it
 *    at a time (store.c gives each thread its own).
 *  - A statement is prepared on the server (PQprepare) at its first step,
 *    once the first bindings tell the parameter types: int64 -> int8, double
 *    -> float8, text -> text, blob -> bytea, NULL -> left to the server. The
 *    SQL's ?N / ? placeholders become $N here, outside quotes.
 *  - Parameters go as text (blobs as binary); results come back as text and
 *    are kept whole (PQexecPrepared), so a caller may run other statements
 *    while it walks the rows of one, as it can with SQLite. A bytea column is
 *    decoded from its hex text on first read.
 *  - When the server goes away the connection is re-established before the
 *    next statement (only outside a transaction, which the server has
 *    aborted anyway); statements prepared on the old session are prepared
 *    again (a generation number tells which).
 *  - Errors keep the SQLSTATE, which fa_db_errkind maps: 23505 unique,
 *    23503 foreign key, 53100 disk full, 25006 read-only, 55P03 lock
 *    timeout, 40001/40P01 retry, class 08 connection.
 */
#include "db_int.h"

#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_INT8OID 20
#define PG_TEXTOID 25
#define PG_FLOAT8OID 701
#define PG_BYTEAOID 17
#define PG_BOOLOID 16

struct pg_db {
    struct fa_db base;
    PGconn *conn;
    int busy_ms;
    unsigned gen; /* bumped on each reconnect: statements prepared before are gone */
    unsigned n_named; /* statement names handed out on this connection */
    int in_tx; /* a transaction was open after the last statement */
    unsigned listen_gen; /* the session gen on which LISTEN was issued; 0: none */
    long changes;
    char state[6]; /* SQLSTATE of the last error, "" when none */
    char msg[512]; /* message of the last error */
};

struct pg_param {
    char *text; /* owned copy for text values; NULL when NULL or a blob */
    const void *blob; /* borrowed */
    int len;
    int format; /* 0 text, 1 binary */
    unsigned type;
};

struct pg_col {
    unsigned char *bytes; /* a decoded bytea of the current row, or NULL */
    size_t n;
    int row; /* the row bytes belong to */
};

struct pg_stmt {
    struct fa_db_stmt base;
    char name[24];
    char *sql; /* with $N placeholders */
    int n_params;
    struct pg_param *params;
    unsigned gen; /* connection generation it was prepared on; 0: not yet */
    PGresult *res;
    int row, n_rows; /* next row to hand out, and how many the result has */
    int cur; /* current row */
    int n_cols;
    struct pg_col *cols;
};

#define PDB(db) ((struct pg_db *)(db))
#define PST(s) ((struct pg_stmt *)(s))
#define PSDB(s) PDB((s)->db)

/* ---- errors ---- */

static void pg_set_err(struct pg_db *db, const char *state, const char *msg)
{
    size_t n;

    snprintf(db->state, sizeof db->state, "%s", state != NULL ? state : "");
    snprintf(db->msg, sizeof db->msg, "%s", msg != NULL ? msg : "unknown error");
    /* libpq messages end in a newline, which would break our log lines. */
    n = strlen(db->msg);
    while (n > 0 && (db->msg[n - 1] == '\n' || db->msg[n - 1] == ' '))
        db->msg[--n] = '\0';
}

static void pg_set_conn_err(struct pg_db *db)
{
    pg_set_err(db, "08006", PQerrorMessage(db->conn));
}

/* Record a failed result's SQLSTATE and message; FA_DB_ERROR. */
static int pg_result_err(struct pg_db *db, const PGresult *r)
{
    if (r == NULL || PQstatus(db->conn) == CONNECTION_BAD) {
        pg_set_conn_err(db);
        return FA_DB_ERROR;
    }
    pg_set_err(db, PQresultErrorField(r, PG_DIAG_SQLSTATE), PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
    return FA_DB_ERROR;
}

static enum fa_db_errkind pg_errkind(struct fa_db *base)
{
    const char *s = PDB(base)->state;

    if (strcmp(s, "23505") == 0)
        return FA_DB_E_UNIQUE;
    if (strcmp(s, "23503") == 0)
        return FA_DB_E_FOREIGNKEY;
    if (strcmp(s, "53100") == 0)
        return FA_DB_E_NOSPACE;
    if (strcmp(s, "53200") == 0)
        return FA_DB_E_NOMEM;
    if (strcmp(s, "25006") == 0)
        return FA_DB_E_READONLY;
    if (strcmp(s, "55P03") == 0)
        return FA_DB_E_BUSY;
    if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0)
        return FA_DB_E_RETRY;
    if (strncmp(s, "08", 2) == 0 || strncmp(s, "57P", 3) == 0)
        return FA_DB_E_CONNECTION;
    return FA_DB_E_OTHER;
}

static const char *pg_errmsg(struct fa_db *base)
{
    return PDB(base)->msg[0] != '\0' ? PDB(base)->msg : "not an error";
}

/* ---- connection ---- */

static void pg_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* NOTICEs ("... already exists, skipping") are not errors */
}

/* lock_timeout plays SQLite's busy timeout: how long a statement waits
 * for a row or advisory lock before it fails (55P03). */
static int pg_session_setup(struct pg_db *db)
{
    char sql[64];
    PGresult *r;
    int rc = FA_DB_OK;

    PQsetNoticeProcessor(db->conn, pg_quiet, NULL);
    snprintf(sql, sizeof sql, "SET lock_timeout = %d", db->busy_ms);
    r = PQexec(db->conn, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = pg_result_err(db, r);
    PQclear(r);
    return rc;
}

/* After each statement: whether a transaction is open, for when the
 * connection is lost and the server cannot be asked any more. */
static void pg_note_tx(struct pg_db *db)
{
    PGTransactionStatusType t = PQtransactionStatus(db->conn);

    if (t != PQTRANS_UNKNOWN)
        db->in_tx = t != PQTRANS_IDLE;
}

/*
 * Before a statement: when the session is lost, open a new one, and the
 * statements prepare again (gen). Not in the middle of a transaction: the
 * server rolled it back with the session, and running its remaining
 * statements one by one in autocommit would commit half of it. That
 * statement fails instead, the caller rolls back (a no-op, see
 * pg_autocommit), and the next statement reconnects.
 */
static int pg_ensure(struct pg_db *db)
{
    /* Outside a transaction, read what the server may have sent meanwhile
     * (no wait): a server restart or a terminated session shows up here as
     * a closed connection, and this statement gets a fresh one instead of
     * failing. A terminated session sends its last message, then closes:
     * the first read takes the message, the second finds the end. */
    if (!db->in_tx && PQstatus(db->conn) == CONNECTION_OK && PQconsumeInput(db->conn))
        (void)PQconsumeInput(db->conn);
    if (PQstatus(db->conn) == CONNECTION_OK)
        return FA_DB_OK;
    if (db->in_tx) {
        db->in_tx = 0;
        pg_set_err(db, "08006", "connection to PostgreSQL lost inside a transaction");
        return FA_DB_ERROR;
    }
    PQreset(db->conn);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        pg_set_conn_err(db);
        return FA_DB_ERROR;
    }
    db->gen++;
    return pg_session_setup(db);
}

static int pg_exec(struct fa_db *base, const char *sql)
{
    struct pg_db *db = PDB(base);
    PGresult *r;
    ExecStatusType st;
    int rc = FA_DB_OK;

    if (pg_ensure(db) != FA_DB_OK)
        return FA_DB_ERROR;
    r = PQexec(db->conn, sql);
    st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = pg_result_err(db, r);
    PQclear(r);
    pg_note_tx(db);
    return rc;
}

static void pg_close(struct fa_db *base)
{
    struct pg_db *db = PDB(base);

    PQfinish(db->conn);
    free(db);
}

static long pg_changes(struct fa_db *base)
{
    return PDB(base)->changes;
}

static int pg_autocommit(struct fa_db *base)
{
    struct pg_db *db = PDB(base);
    PGTransactionStatusType t = PQtransactionStatus(db->conn);

    if (t == PQTRANS_UNKNOWN) /* connection lost: the server ended it */
        return !db->in_tx;
    return t == PQTRANS_IDLE;
}

static void pg_busy_timeout(struct fa_db *base, int ms)
{
    struct pg_db *db = PDB(base);

    db->busy_ms = ms;
    if (PQstatus(db->conn) == CONNECTION_OK)
        (void)pg_session_setup(db);
}

/* ---- statements ---- */

/* Copy sql with ?N and ? turned into $N outside quotes (SQLite's rule: a
 * bare ? is one more than the largest number so far). *n_params: the
 * largest. NULL when out of memory. */
static char *pg_placeholders(const char *sql, int *n_params)
{
    size_t cap = strlen(sql) * 2 + 16, o = 0;
    char *out = malloc(cap);
    char quote = 0;
    int max = 0;

    if (out == NULL)
        return NULL;
    for (; *sql != '\0'; sql++) {
        if (quote != 0) {
            if (*sql == quote)
                quote = 0;
        } else if (*sql == '\'' || *sql == '"') {
            quote = *sql;
        } else if (*sql == '?') {
            int v = 0;
            while (sql[1] >= '0' && sql[1] <= '9')
                v = v * 10 + (*++sql - '0');
            if (v == 0)
                v = max + 1;
            if (v > max)
                max = v;
            o += (size_t)snprintf(out + o, cap - o, "$%d", v);
            continue;
        }
        out[o++] = *sql;
    }
    out[o] = '\0';
    *n_params = max;
    return out;
}

static int pg_prepare(struct fa_db *base, const char *sql, struct fa_db_stmt **out)
{
    struct pg_db *db = PDB(base);
    struct pg_stmt *s = calloc(1, sizeof *s);

    if (s == NULL)
        goto nomem;
    s->sql = pg_placeholders(sql, &s->n_params);
    if (s->sql == NULL)
        goto nomem;
    if (s->n_params > 0) {
        s->params = calloc((size_t)s->n_params, sizeof *s->params);
        if (s->params == NULL)
            goto nomem;
    }
    s->base.db = base;
    snprintf(s->name, sizeof s->name, "fa%u", ++db->n_named);
    *out = &s->base;
    return FA_DB_OK;
nomem:
    if (s != NULL) {
        free(s->sql);
        free(s);
    }
    pg_set_err(db, "53200", "out of memory preparing a statement");
    return FA_DB_ERROR;
}

static void pg_clear_result(struct pg_stmt *s)
{
    int i;

    for (i = 0; i < s->n_cols; i++)
        free(s->cols[i].bytes);
    free(s->cols);
    s->cols = NULL;
    s->n_cols = 0;
    PQclear(s->res);
    s->res = NULL;
    s->row = s->n_rows = 0;
    s->cur = -1;
}

static void pg_reset(struct fa_db_stmt *base)
{
    struct pg_stmt *s = PST(base);
    int i;

    pg_clear_result(s);
    for (i = 0; i < s->n_params; i++) {
        free(s->params[i].text);
        s->params[i].text = NULL;
        s->params[i].blob = NULL;
    }
}

static void pg_finalize(struct fa_db_stmt *base)
{
    struct pg_stmt *s = PST(base);
    struct pg_db *db = PSDB(base);
    char sql[48];
    PGresult *r;

    pg_reset(base);
    /* Free the server's copy while the session that holds it is alive. */
    if (s->gen != 0 && s->gen == db->gen && PQstatus(db->conn) == CONNECTION_OK) {
        snprintf(sql, sizeof sql, "DEALLOCATE %s", s->name);
        r = PQexec(db->conn, sql);
        PQclear(r);
    }
    free(s->params);
    free(s->sql);
    free(s);
}

static int pg_busy(struct fa_db_stmt *base)
{
    return PST(base)->res != NULL;
}

/* Slot i (1-based) of s, emptied for a new value; NULL when out of range. */
static struct pg_param *pg_param(struct pg_stmt *s, int i)
{
    struct pg_param *p;

    if (i < 1 || i > s->n_params) {
        pg_set_err(PSDB(&s->base), "42P02", "bind index out of range");
        return NULL;
    }
    p = &s->params[i - 1];
    free(p->text);
    memset(p, 0, sizeof *p);
    return p;
}

static int pg_bind_textual(struct fa_db_stmt *base, int i, const char *v, size_t n,
                           unsigned type)
{
    struct pg_param *p = pg_param(PST(base), i);

    if (p == NULL)
        return FA_DB_ERROR;
    p->text = malloc(n + 1);
    if (p->text == NULL) {
        pg_set_err(PSDB(base), "53200", "out of memory binding a value");
        return FA_DB_ERROR;
    }
    memcpy(p->text, v, n);
    p->text[n] = '\0';
    p->len = (int)n;
    p->type = type;
    return FA_DB_OK;
}

static int pg_bind_int64(struct fa_db_stmt *s, int i, int64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%lld", (long long)v);

    return pg_bind_textual(s, i, buf, (size_t)n, PG_INT8OID);
}

static int pg_bind_double(struct fa_db_stmt *s, int i, double v)
{
    char buf[40];
    int n = snprintf(buf, sizeof buf, "%.17g", v);

    return pg_bind_textual(s, i, buf, (size_t)n, PG_FLOAT8OID);
}

static int pg_bind_text(struct fa_db_stmt *s, int i, const char *v, size_t n)
{
    return pg_bind_textual(s, i, v, n, PG_TEXTOID);
}

static int pg_bind_blob(struct fa_db_stmt *base, int i, const void *v, size_t n)
{
    struct pg_param *p = pg_param(PST(base), i);

    if (p == NULL)
        return FA_DB_ERROR;
    /* libpq sends a NULL pointer as SQL NULL: an empty blob needs a
     * non-NULL one. */
    p->blob = v != NULL ? v : "";
    p->len = (int)n;
    p->format = 1;
    p->type = PG_BYTEAOID;
    return FA_DB_OK;
}

static int pg_bind_null(struct fa_db_stmt *base, int i)
{
    return pg_param(PST(base), i) != NULL ? FA_DB_OK : FA_DB_ERROR;
}

/* PQprepare on this session, typed by the current bindings. */
static int pg_server_prepare(struct pg_stmt *s)
{
    struct pg_db *db = PSDB(&s->base);
    Oid types[64] = {0};
    PGresult *r;
    int i, rc = FA_DB_OK;

    if (s->n_params > (int)(sizeof types / sizeof types[0])) {
        pg_set_err(db, "54023", "too many parameters in one statement");
        return FA_DB_ERROR;
    }
    for (i = 0; i < s->n_params; i++)
        types[i] = s->params[i].type;
    r = PQprepare(db->conn, s->name, s->sql, s->n_params, types);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = pg_result_err(db, r);
    else
        s->gen = db->gen;
    PQclear(r);
    return rc;
}

static int pg_execute(struct pg_stmt *s)
{
    struct pg_db *db = PSDB(&s->base);
    const char *values[64];
    int lengths[64], formats[64], i;
    ExecStatusType st;
    const char *tuples;

    if (pg_ensure(db) != FA_DB_OK)
        return FA_DB_ERROR;
    if (s->gen != db->gen && pg_server_prepare(s) != FA_DB_OK)
        return FA_DB_ERROR;
    for (i = 0; i < s->n_params; i++) {
        const struct pg_param *p = &s->params[i];
        values[i] = p->format == 1 ? (const char *)p->blob : p->text;
        lengths[i] = p->len;
        formats[i] = p->format;
    }
    s->res = PQexecPrepared(db->conn, s->name, s->n_params, values, lengths, formats, 0);
    pg_note_tx(db);
    st = PQresultStatus(s->res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        pg_result_err(db, s->res);
        PQclear(s->res);
        s->res = NULL;
        return FA_DB_ERROR;
    }
    tuples = PQcmdTuples(s->res);
    if (tuples[0] != '\0')
        db->changes = strtol(tuples, NULL, 10);
    db->state[0] = '\0';
    db->msg[0] = '\0';
    s->n_rows = st == PGRES_TUPLES_OK ? PQntuples(s->res) : 0;
    s->n_cols = PQnfields(s->res);
    s->row = 0;
    if (s->n_cols > 0) {
        s->cols = calloc((size_t)s->n_cols, sizeof *s->cols);
        if (s->cols == NULL) {
            pg_set_err(db, "53200", "out of memory reading a result");
            return FA_DB_ERROR;
        }
    }
    return FA_DB_OK;
}

static int pg_step(struct fa_db_stmt *base)
{
    struct pg_stmt *s = PST(base);

    if (s->res == NULL && pg_execute(s) != FA_DB_OK)
        return FA_DB_ERROR;
    if (s->row >= s->n_rows) {
        s->cur = -1;
        return FA_DB_DONE;
    }
    s->cur = s->row++;
    return FA_DB_ROW;
}

/* ---- columns ---- */

static const char *pg_value(struct pg_stmt *s, int col)
{
    if (s->res == NULL || s->cur < 0 || col < 0 || col >= s->n_cols ||
        PQgetisnull(s->res, s->cur, col))
        return NULL;
    return PQgetvalue(s->res, s->cur, col);
}

static int64_t pg_column_int64(struct fa_db_stmt *base, int col)
{
    const char *v = pg_value(PST(base), col);

    if (v == NULL)
        return 0;
    if (PQftype(PST(base)->res, col) == PG_BOOLOID)
        return v[0] == 't';
    return strtoll(v, NULL, 10);
}

static double pg_column_double(struct fa_db_stmt *base, int col)
{
    const char *v = pg_value(PST(base), col);

    return v != NULL ? strtod(v, NULL) : 0.0;
}

static const char *pg_column_text(struct fa_db_stmt *base, int col)
{
    return pg_value(PST(base), col);
}

static int pg_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The bytes of a bytea column of the current row, decoded once from the
 * server's hex form ("\x0a1b..."). Other types: the text itself. */
static struct pg_col *pg_blob(struct pg_stmt *s, int col)
{
    const char *v = pg_value(s, col);
    struct pg_col *c;
    size_t n, i;

    if (v == NULL)
        return NULL;
    c = &s->cols[col];
    if (c->bytes != NULL && c->row == s->cur)
        return c;
    free(c->bytes);
    c->bytes = NULL;
    n = (size_t)PQgetlength(s->res, s->cur, col);
    if (PQftype(s->res, col) != PG_BYTEAOID || n < 2 || v[0] != '\\' || v[1] != 'x') {
        c->bytes = malloc(n + 1);
        if (c->bytes == NULL)
            return NULL;
        memcpy(c->bytes, v, n + 1);
        c->n = n;
    } else {
        c->n = (n - 2) / 2;
        c->bytes = malloc(c->n + 1);
        if (c->bytes == NULL)
            return NULL;
        for (i = 0; i < c->n; i++)
            c->bytes[i] = (unsigned char)(pg_hex(v[2 + 2 * i]) << 4 | pg_hex(v[3 + 2 * i]));
    }
    c->row = s->cur;
    return c;
}

static const void *pg_column_blob(struct fa_db_stmt *base, int col)
{
    struct pg_col *c = pg_blob(PST(base), col);

    return c != NULL ? c->bytes : NULL;
}

static size_t pg_column_bytes(struct fa_db_stmt *base, int col)
{
    struct pg_stmt *s = PST(base);

    if (pg_value(s, col) == NULL)
        return 0;
    if (PQftype(s->res, col) == PG_BYTEAOID) {
        struct pg_col *c = pg_blob(s, col);
        return c != NULL ? c->n : 0;
    }
    return (size_t)PQgetlength(s->res, s->cur, col);
}

static int pg_column_type(struct fa_db_stmt *base, int col)
{
    return pg_value(PST(base), col) == NULL ? FA_DB_NULL : 0;
}

static const char *pg_column_name(struct fa_db_stmt *base, int col)
{
    struct pg_stmt *s = PST(base);

    return s->res != NULL && col >= 0 && col < s->n_cols ? PQfname(s->res, col) : "?";
}

/* Drain the notifications libpq has read; 1 when there was one. */
static int pg_drain_notifies(struct pg_db *db)
{
    PGnotify *n;
    int any = 0;

    while ((n = PQnotifies(db->conn)) != NULL) {
        any = 1;
        PQfreemem(n);
    }
    return any;
}

static int pg_listen_wait(struct fa_db *base, const char *channel, int timeout_ms, int *woken)
{
    struct pg_db *db = PDB(base);
    struct pollfd pfd;
    char sql[96];

    if (pg_ensure(db) != FA_DB_OK)
        return FA_DB_ERROR;
    if (db->listen_gen != db->gen) {
        snprintf(sql, sizeof sql, "LISTEN %s", channel);
        if (pg_exec(base, sql) != FA_DB_OK)
            return FA_DB_ERROR;
        db->listen_gen = db->gen;
        *woken = 1; /* whatever was sent before now was missed */
        return FA_DB_OK;
    }
    if (pg_drain_notifies(db)) {
        *woken = 1;
        return FA_DB_OK;
    }
    pfd.fd = PQsocket(db->conn);
    pfd.events = POLLIN;
    pfd.revents = 0;
    if (pfd.fd < 0 || poll(&pfd, 1, timeout_ms) < 0) {
        pg_set_conn_err(db);
        return FA_DB_ERROR;
    }
    if (pfd.revents != 0 && !PQconsumeInput(db->conn)) {
        pg_set_conn_err(db);
        return FA_DB_ERROR;
    }
    *woken = pg_drain_notifies(db);
    return FA_DB_OK;
}

static const struct fa_db_ops pg_ops = {
    .exec = pg_exec,
    .prepare = pg_prepare,
    .finalize = pg_finalize,
    .close = pg_close,
    .bind_int64 = pg_bind_int64,
    .bind_double = pg_bind_double,
    .bind_text = pg_bind_text,
    .bind_blob = pg_bind_blob,
    .bind_null = pg_bind_null,
    .step = pg_step,
    .reset = pg_reset,
    .busy = pg_busy,
    .column_int64 = pg_column_int64,
    .column_double = pg_column_double,
    .column_text = pg_column_text,
    .column_blob = pg_column_blob,
    .column_bytes = pg_column_bytes,
    .column_type = pg_column_type,
    .column_name = pg_column_name,
    .changes = pg_changes,
    .autocommit = pg_autocommit,
    .errmsg = pg_errmsg,
    .errkind = pg_errkind,
    .busy_timeout = pg_busy_timeout,
    .listen_wait = pg_listen_wait,
};

int fa_db_pg_open(const char *url, int busy_ms, struct fa_db **out)
{
    struct pg_db *db = calloc(1, sizeof *db);

    if (db == NULL)
        return FA_DB_ERROR;
    db->base.ops = &pg_ops;
    db->base.engine = FA_DB_POSTGRES;
    db->busy_ms = busy_ms;
    db->gen = 1;
    db->conn = PQconnectdb(url);
    *out = &db->base; /* from here on it carries the message */
    if (db->conn == NULL) {
        pg_set_err(db, "53200", "out of memory connecting to PostgreSQL");
        return FA_DB_ERROR;
    }
    if (PQstatus(db->conn) != CONNECTION_OK) {
        pg_set_conn_err(db);
        return FA_DB_ERROR;
    }
    return pg_session_setup(db);
}
