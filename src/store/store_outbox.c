/*
 * store_outbox.c — the callback outbox (callback_events): rows written with
 * the log row they report, then read and updated by the delivery thread
 * (src/callback/) and listed by view/callbacks.
 *
 * Life of a row: held (written in the record's transaction, body is a
 * stand-in) -> pending (fa_store_event_ready: the answer's body, due now)
 * -> sent, or pending again with a later next_ms after a failed attempt,
 * or dead after the last one. A held row whose request never got to
 * fa_store_event_ready (the process stopped in between) is made pending
 * with its stand-in body by fa_store_events_release, so a recorded event
 * is never lost.
 *
 * Which URL an event goes to is read from the customer's settings inside
 * the record's transaction (INSERT ... SELECT), so a settings change and a
 * record cannot interleave into an event queued for a URL just removed.
 */
#include "store_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUTBOX_BODY_MAX (256 * 1024) /* a body is one answer: a few kB */

const char *fa_cb_event_name(enum fa_cb_event e)
{
    switch (e) {
    case FA_CB_ENROLL_ACCEPTED: return "enrollmentAccepted";
    case FA_CB_ENROLL_REJECTED: return "enrollmentRejected";
    case FA_CB_AUTH_SUCCESS: return "successfulAuthentication";
    case FA_CB_AUTH_FAILURE: return "failedAuthentication";
    }
    return "unknown";
}

/* One INSERT per event: the settings column is part of the SQL text, and
 * the statement cache is keyed by the text's address. */
#define OUTBOX_ADD(col)                                                                        \
    "INSERT INTO callback_events(event_id, customer_id, event, url, body, state, next_ms,"    \
    " created, updated) SELECT ?1, id, ?2, " col ", ?3, 'held', 0, ?4, ?4 FROM customers"     \
    " WHERE id = ?5 AND " col " != ''"

static const char SQL_OUTBOX_ADD_EA[] = OUTBOX_ADD("cb_enroll_accepted");
static const char SQL_OUTBOX_ADD_ER[] = OUTBOX_ADD("cb_enroll_rejected");
static const char SQL_OUTBOX_ADD_AS[] = OUTBOX_ADD("cb_auth_success");
static const char SQL_OUTBOX_ADD_AF[] = OUTBOX_ADD("cb_auth_failure");

static const char *outbox_add_sql(enum fa_cb_event e)
{
    switch (e) {
    case FA_CB_ENROLL_ACCEPTED: return SQL_OUTBOX_ADD_EA;
    case FA_CB_ENROLL_REJECTED: return SQL_OUTBOX_ADD_ER;
    case FA_CB_AUTH_SUCCESS: return SQL_OUTBOX_ADD_AS;
    case FA_CB_AUTH_FAILURE: return SQL_OUTBOX_ADD_AF;
    }
    return NULL;
}

static int event_id_ok(const char *id)
{
    size_t i;
    for (i = 0; i < FA_EVENT_ID_HEX; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return 0;
    return id[i] == '\0';
}

static enum fa_rc event_validate(const struct fa_store_event *ev, struct fa_err *err)
{
    if (outbox_add_sql(ev->event) == NULL)
        return fa_err_set(err, FA_EINVAL, "callback event is invalid");
    if (!event_id_ok(ev->event_id))
        return fa_err_set(err, FA_EINVAL, "callback event id must be %d lowercase hex digits",
                          FA_EVENT_ID_HEX);
    if (ev->body == NULL || strnlen(ev->body, OUTBOX_BODY_MAX + 1) > OUTBOX_BODY_MAX)
        return fa_err_set(err, FA_EINVAL, "callback body must be 0-%d bytes", OUTBOX_BODY_MAX);
    return FA_OK;
}

enum fa_rc fa_store_outbox_add(struct fa_conn *c, int64_t customer_id, struct fa_store_event *ev,
                               int64_t now, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK;

    ev->queued = 0;
    rc = event_validate(ev, err);
    if (rc == FA_OK)
        rc = fa_store_stmt(c, outbox_add_sql(ev->event), &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_text(s, 1, ev->event_id);
    b |= fa_db_bind_text(s, 2, fa_cb_event_name(ev->event));
    b |= fa_db_bind_text(s, 3, ev->body);
    b |= fa_db_bind_int64(s, 4, now);
    b |= fa_db_bind_int64(s, 5, customer_id);
    rc = fa_store_run(c, s, b, "callback event", err);
    if (rc == FA_OK)
        ev->queued = fa_db_changes(c->db) > 0;
    return rc;
}

/* ---- held -> pending ---- */

static const char SQL_EVENT_READY[] =
    "UPDATE callback_events SET body = ?2, state = 'pending', next_ms = ?3, updated = ?4"
    " WHERE event_id = ?1 AND state = 'held'";

enum fa_rc fa_store_event_ready(struct fa_store *st, const char *event_id, const char *body,
                                struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK;

    if (body == NULL || strnlen(body, OUTBOX_BODY_MAX + 1) > OUTBOX_BODY_MAX)
        return fa_err_set(err, FA_EINVAL, "callback body must be 0-%d bytes", OUTBOX_BODY_MAX);
    rc = fa_store_conn_stmt(st, SQL_EVENT_READY, &c, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_text(s, 1, event_id);
    b |= fa_db_bind_text(s, 2, body);
    b |= fa_db_bind_int64(s, 3, fa_store_now_ms());
    b |= fa_db_bind_int64(s, 4, fa_store_now());
    rc = fa_store_run(c, s, b, "callback ready", err);
    if (rc == FA_OK && fa_db_changes(c->db) == 0)
        rc = fa_err_set(err, FA_ENOTFOUND, "no held callback event %.32s", event_id);
    return rc;
}

static const char SQL_EVENTS_RELEASE[] =
    "UPDATE callback_events SET state = 'pending', next_ms = ?2, updated = ?3"
    " WHERE state = 'held' AND created < ?1";

enum fa_rc fa_store_events_release(struct fa_store *st, int64_t before, int *n,
                                   struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK;

    *n = 0;
    rc = fa_store_conn_stmt(st, SQL_EVENTS_RELEASE, &c, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_int64(s, 1, before);
    b |= fa_db_bind_int64(s, 2, fa_store_now_ms());
    b |= fa_db_bind_int64(s, 3, fa_store_now());
    rc = fa_store_run(c, s, b, "callback release", err);
    if (rc == FA_OK)
        *n = fa_db_changes(c->db);
    return rc;
}

static const char SQL_EVENTS_PRUNE[] =
    "DELETE FROM callback_events WHERE state IN ('sent','dead') AND updated < ?1";

enum fa_rc fa_store_events_prune(struct fa_store *st, int64_t before, int *n,
                                 struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;

    *n = 0;
    rc = fa_store_conn_stmt(st, SQL_EVENTS_PRUNE, &c, &s, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_run(c, s, fa_db_bind_int64(s, 1, before), "callback prune", err);
    if (rc == FA_OK)
        *n = fa_db_changes(c->db);
    return rc;
}

/* ---- delivery ---- */

/*
 * Each customer's oldest due event; the customers whose event has waited
 * longest come first.
 * SQLite: the bare-column rule, with MIN() the other columns come from the
 * row holding the minimum. One process delivers, so reading is enough.
 * PostgreSQL: every node's delivery thread asks, and each event must go
 * out once. The statement claims what it returns: it locks the due rows,
 * skipping those another node is claiming right now (SKIP LOCKED), and
 * moves their next_ms to ?3, a lease past the longest delivery. The
 * attempt's result (fa_store_event_attempt) then sets the real state and
 * next time; if the node dies first, the event is due again when the lease
 * ends, and another node sends it.
 */
static const char SQL_EVENTS_DUE[] = FA_DB_SQL2(
    "SELECT e.id, e.customer_id, e.event_id, e.event, e.url, c.cb_secret, e.body, e.attempts,"
    " e.next_ms, MIN(e.id) FROM callback_events e JOIN customers c ON c.id = e.customer_id"
    " WHERE e.state = 'pending' AND e.next_ms <= ?1 GROUP BY e.customer_id"
    " ORDER BY e.next_ms, e.id LIMIT ?2",
    "WITH due AS (SELECT id, customer_id, next_ms FROM callback_events"
    " WHERE state = 'pending' AND next_ms <= ?1 FOR UPDATE SKIP LOCKED),"
    " oldest AS (SELECT DISTINCT ON (customer_id) id, next_ms FROM due"
    " ORDER BY customer_id, id),"
    " picked AS (SELECT id, next_ms FROM oldest ORDER BY next_ms, id LIMIT ?2)"
    " UPDATE callback_events e SET next_ms = ?3 FROM picked, customers c"
    " WHERE e.id = picked.id AND c.id = e.customer_id"
    " RETURNING e.id, e.customer_id, e.event_id, e.event, e.url, c.cb_secret, e.body,"
    " e.attempts, picked.next_ms");

/* How long a claimed event stays with the node that claimed it (PostgreSQL). */
#define OUTBOX_LEASE_MS (5 * 60 * 1000)

static enum fa_rc due_from_row(struct fa_conn *c, struct fa_db_stmt *s, struct fa_cb_due *d,
                               struct fa_err *err)
{
    const char *body = fa_db_column_text(s, 6);
    size_t n = body != NULL ? (size_t)fa_db_column_bytes(s, 6) : 0;
    enum fa_rc rc;

    d->id = fa_db_column_int64(s, 0);
    d->customer_id = fa_db_column_int64(s, 1);
    d->attempts = fa_db_column_int(s, 7);
    d->due_ms = fa_db_column_int64(s, 8);
    rc = fa_store_col_text(c, s, 2, d->event_id, sizeof d->event_id, err);
    if (rc == FA_OK)
        rc = fa_store_col_text(c, s, 3, d->event, sizeof d->event, err);
    if (rc == FA_OK)
        rc = fa_store_col_text(c, s, 4, d->url, sizeof d->url, err);
    if (rc == FA_OK)
        rc = fa_store_col_text(c, s, 5, d->secret, sizeof d->secret, err);
    if (rc != FA_OK)
        return rc;
    d->body = malloc(n + 1);
    if (d->body == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory reading callback events");
    if (n > 0)
        memcpy(d->body, body, n);
    d->body[n] = '\0';
    return FA_OK;
}

enum fa_rc fa_store_events_due(struct fa_store *st, int64_t now_ms, int max,
                               struct fa_cb_due **out, int *n, struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    struct fa_cb_due *rows = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK, r;

    *out = NULL;
    *n = 0;
    if (max < 1)
        return FA_OK;
    rows = calloc((size_t)max, sizeof *rows);
    if (rows == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory reading callback events");
    rc = fa_store_conn_stmt(st, SQL_EVENTS_DUE, &c, &s, err);
    if (rc != FA_OK)
        goto out;
    b |= fa_db_bind_int64(s, 1, now_ms);
    b |= fa_db_bind_int(s, 2, max);
    if (fa_db_engine_of(c->db) == FA_DB_POSTGRES)
        b |= fa_db_bind_int64(s, 3, now_ms + OUTBOX_LEASE_MS);
    r = b == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;
    while (rc == FA_OK && r == FA_DB_ROW && *n < max) {
        rc = due_from_row(c, s, &rows[*n], err);
        if (rc == FA_OK)
            (*n)++;
        r = fa_db_step(s);
    }
    if (rc == FA_OK && r != FA_DB_DONE && r != FA_DB_ROW)
        rc = fa_store_dberr(c, "callback due", err);
    fa_store_stmt_done(s);
out:
    if (rc != FA_OK || *n == 0) {
        fa_store_due_free(rows, *n);
        rows = NULL;
        *n = 0;
    }
    *out = rows;
    return rc;
}

void fa_store_due_free(struct fa_cb_due *rows, int n)
{
    if (rows == NULL)
        return;
    for (int i = 0; i < n; i++)
        free(rows[i].body);
    free(rows);
}

static const char SQL_EVENTS_NEXT[] =
    "SELECT MIN(next_ms) FROM callback_events WHERE state = 'pending'";

enum fa_rc fa_store_events_next(struct fa_store *st, int64_t *next_ms, struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int r;

    *next_ms = INT64_MAX;
    rc = fa_store_conn_stmt(st, SQL_EVENTS_NEXT, &c, &s, err);
    if (rc != FA_OK)
        return rc;
    r = fa_db_step(s);
    if (r == FA_DB_ROW && fa_db_column_type(s, 0) != FA_DB_NULL)
        *next_ms = fa_db_column_int64(s, 0);
    else if (r != FA_DB_ROW)
        rc = fa_store_dberr(c, "callback next", err);
    fa_store_stmt_done(s);
    return rc;
}

static const char SQL_EVENT_ATTEMPT[] =
    "UPDATE callback_events SET state = ?2, attempts = ?3, next_ms = ?4, last_error = ?5,"
    " updated = ?6 WHERE id = ?1 AND state = 'pending'";

/* Only a claimed (pending) row moves: an attempt recorded meanwhile wins. */
static const char SQL_EVENT_UNCLAIM[] =
    "UPDATE callback_events SET next_ms = ?2 WHERE id = ?1 AND state = 'pending'";

enum fa_rc fa_store_event_unclaim(struct fa_store *st, int64_t id, int64_t due_ms,
                                  struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc = fa_store_conn(st, &c, err);

    if (rc != FA_OK || fa_db_engine_of(c->db) != FA_DB_POSTGRES)
        return rc; /* SQLite: nothing was claimed */
    rc = fa_store_stmt(c, SQL_EVENT_UNCLAIM, &s, err);
    if (rc != FA_OK)
        return rc;
    return fa_store_run(c, s, fa_db_bind_int64(s, 1, id) | fa_db_bind_int64(s, 2, due_ms),
                        "callback unclaim", err);
}

enum fa_rc fa_store_event_attempt(struct fa_store *st, int64_t id, const char *state,
                                  int attempts, int64_t next_ms, const char *error,
                                  struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    size_t len = error != NULL ? strnlen(error, FA_CB_ERROR_MAX) : 0;
    enum fa_rc rc;
    int b = FA_DB_OK;

    if (strcmp(state, "sent") != 0 && strcmp(state, "pending") != 0 && strcmp(state, "dead") != 0)
        return fa_err_set(err, FA_EINVAL, "callback state must be sent, pending or dead");
    rc = fa_store_conn_stmt(st, SQL_EVENT_ATTEMPT, &c, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_int64(s, 1, id);
    b |= fa_db_bind_text(s, 2, state);
    b |= fa_db_bind_int(s, 3, attempts);
    b |= fa_db_bind_int64(s, 4, next_ms);
    b |= fa_db_bind_textn(s, 5, len > 0 ? error : "", len);
    b |= fa_db_bind_int64(s, 6, fa_store_now());
    return fa_store_run(c, s, b, "callback attempt", err);
}

/* ---- counts and lists ---- */

static const char SQL_EVENTS_COUNT[] =
    "SELECT state, count(*) FROM callback_events GROUP BY state";

enum fa_rc fa_store_events_count(struct fa_store *st, struct fa_cb_counts *out,
                                 struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int r;

    memset(out, 0, sizeof *out);
    rc = fa_store_conn_stmt(st, SQL_EVENTS_COUNT, &c, &s, err);
    if (rc != FA_OK)
        return rc;
    for (r = fa_db_step(s); r == FA_DB_ROW; r = fa_db_step(s)) {
        const char *state = (const char *)fa_db_column_text(s, 0);
        long n = (long)fa_db_column_int64(s, 1);
        if (state == NULL)
            continue;
        if (strcmp(state, "sent") == 0)
            out->sent += n;
        else if (strcmp(state, "dead") == 0)
            out->dead += n;
        else
            out->queued += n;
    }
    if (r != FA_DB_DONE)
        rc = fa_store_dberr(c, "callback count", err);
    fa_store_stmt_done(s);
    return rc;
}

/* ?2: '' = any state; 'pending' also matches held (not sent yet either). */
#define EVENTS_WHERE                                                                           \
    " WHERE customer_id = ?1 AND (?2 = '' OR state = ?2 OR (?2 = 'pending' AND state = 'held'))"

static const char SQL_EVENTS_LIST_COUNT[] = "SELECT count(*) FROM callback_events" EVENTS_WHERE;
static const char SQL_EVENTS_LIST[] =
    "SELECT event_id, event, url, state, attempts, last_error, created, next_ms"
    " FROM callback_events" EVENTS_WHERE " ORDER BY id DESC LIMIT ?3 OFFSET ?4";

struct events_query {
    int64_t customer_id;
    const char *state;
    int page, page_count;
};

static enum fa_rc events_list_count(struct fa_conn *c, const void *arg, long *total,
                                    struct fa_err *err)
{
    const struct events_query *q = arg;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc = fa_store_stmt(c, SQL_EVENTS_LIST_COUNT, &s, err);
    if (rc != FA_OK)
        return rc;
    return fa_store_count(c, s, fa_store_bind_id_text(s, q->customer_id, q->state), total,
                          "callback list", err);
}

static enum fa_rc row_from_stmt(struct fa_conn *c, struct fa_db_stmt *s, struct fa_cb_row *row,
                                struct fa_err *err)
{
    const char *state = (const char *)fa_db_column_text(s, 3);
    const char *e = fa_db_column_text(s, 5);
    size_t n = e != NULL ? (size_t)fa_db_column_bytes(s, 5) : 0;
    enum fa_rc rc = fa_store_col_text(c, s, 0, row->event_id, sizeof row->event_id, err);
    if (rc == FA_OK)
        rc = fa_store_col_text(c, s, 1, row->event, sizeof row->event, err);
    if (rc == FA_OK)
        rc = fa_store_col_text(c, s, 2, row->url, sizeof row->url, err);
    snprintf(row->state, sizeof row->state, "%s",
             state != NULL && strcmp(state, "held") != 0 ? state : "pending");
    row->attempts = fa_db_column_int(s, 4);
    n = n > FA_CB_ERROR_MAX ? FA_CB_ERROR_MAX : n;
    if (n > 0)
        memcpy(row->last_error, e, n);
    row->last_error[n] = '\0';
    row->created = fa_db_column_int64(s, 6);
    row->next_ms = fa_db_column_int64(s, 7);
    return rc;
}

static enum fa_rc events_list_page(struct fa_conn *c, const void *arg, void *out, int *n,
                                   struct fa_err *err)
{
    const struct events_query *q = arg;
    struct fa_cb_row *rows = out;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc = fa_store_stmt(c, SQL_EVENTS_LIST, &s, err);
    int b, r;

    if (rc != FA_OK)
        return rc;
    b = fa_store_bind_id_text(s, q->customer_id, q->state);
    b |= fa_db_bind_int(s, 3, q->page_count);
    b |= fa_db_bind_int64(s, 4, (int64_t)(q->page - 1) * q->page_count);
    r = b == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;
    while (rc == FA_OK && r == FA_DB_ROW && *n < q->page_count) {
        rc = row_from_stmt(c, s, &rows[(*n)++], err);
        r = fa_db_step(s);
    }
    if (rc == FA_OK && r != FA_DB_DONE)
        rc = fa_store_dberr(c, "callback list", err);
    fa_store_stmt_done(s);
    return rc;
}

enum fa_rc fa_store_events_list(struct fa_store *st, int64_t customer_id, const char *state,
                                int page, int page_count, struct fa_cb_row **rows, int *n,
                                long *total, struct fa_err *err)
{
    struct events_query q = {customer_id, state != NULL ? state : "", page, page_count};
    struct fa_store_page pg = {events_list_count, events_list_page, &q, page_count,
                               sizeof **rows, "out of memory listing callbacks"};
    struct fa_conn *c = NULL;
    void *out = NULL;
    enum fa_rc rc;

    *rows = NULL;
    *n = 0;
    *total = 0;
    rc = fa_store_check_page(page, page_count, 0, 0, err);
    if (rc == FA_OK)
        rc = fa_store_conn(st, &c, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_page_read(c, &pg, &out, n, total, err);
    *rows = out;
    return rc;
}

/* ---- the customer ---- */

static const char SQL_CUSTOMER_NAME[] = "SELECT name FROM customers WHERE id = ?1";

enum fa_rc fa_store_customer_name(struct fa_store *st, int64_t customer_id,
                                  char out[FA_NAME_MAX + 1], struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int r;

    out[0] = '\0';
    rc = fa_store_conn_stmt(st, SQL_CUSTOMER_NAME, &c, &s, err);
    if (rc != FA_OK)
        return rc;
    r = fa_db_bind_int64(s, 1, customer_id) == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;
    if (r == FA_DB_ROW)
        rc = fa_store_col_text(c, s, 0, out, FA_NAME_MAX + 1, err);
    else if (r == FA_DB_DONE)
        rc = fa_err_set(err, FA_ENOTFOUND, "customer not found");
    else
        rc = fa_store_dberr(c, "customer name", err);
    fa_store_stmt_done(s);
    return rc;
}

/* ---- the secret ---- */

static const char SQL_SECRET_SET[] = "UPDATE customers SET cb_secret = ?2 WHERE name = ?1";

enum fa_rc fa_store_callback_secret_set(struct fa_store *st, const char *customer_name,
                                        const char *secret_hex, struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK;

    if (secret_hex == NULL || strlen(secret_hex) != FA_CB_SECRET_HEX)
        return fa_err_set(err, FA_EINVAL, "callback secret must be %d hex digits",
                          FA_CB_SECRET_HEX);
    rc = fa_store_conn_stmt(st, SQL_SECRET_SET, &c, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_text(s, 1, customer_name);
    b |= fa_db_bind_text(s, 2, secret_hex);
    rc = fa_store_run(c, s, b, "callback secret", err);
    if (rc == FA_OK && fa_db_changes(c->db) == 0)
        rc = fa_err_set(err, FA_ENOTFOUND, "customer '%.64s' not found", customer_name);
    return rc;
}
