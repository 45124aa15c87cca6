/*
 * store_throttle.c — counting failures: logins per (customer name, client
 * address) and face attempts per user (see store.h, fa_throttle_*).
 *
 * Design: one row per key holds the times of the failures inside the
 * counting window, the time before which no attempt is let through
 * (`until`: a short delay or a lock) and how many locks there were. A
 * sliding window needs the times themselves, not a counter: "5 in 3 minutes"
 * must hold for any 3 minutes, and a counter reset at fixed instants lets
 * 2 x 4 failures through around the reset. The limit is at most
 * FA_THROTTLE_LIMIT_MAX, so a row holds at most that many times.
 *
 * The state lives in SQLite, not in memory, so a lock survives a restart
 * and holds for every process that serves the same database. Each failure
 * is read-modify-write in one BEGIN IMMEDIATE transaction, so two failures
 * at once are both counted. Times come from the caller (`now`), which makes
 * every rule testable without sleeping.
 */
#include "store_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for FA_THROTTLE_LIMIT_MAX comma-separated times of up to 20 digits. */
#define RECENT_MAX (FA_THROTTLE_LIMIT_MAX * 21 + 1)
#define ADDRESS_MAX 64

struct throttle_row {
    int64_t t[FA_THROTTLE_LIMIT_MAX]; /* failure times in the window, oldest first */
    int n;
    int64_t until;
    int locks;
    int64_t updated;
    int found;
};

/* The statements of one table; ?1 ?2 are the key in each. */
struct throttle_sql {
    const char *get;
    const char *put;
    const char *del;
};

static const struct throttle_sql LOGIN_SQL = {
    "SELECT recent, until, locks, updated FROM login_throttle"
    " WHERE customer_name = ?1 AND address = ?2",
    "INSERT INTO login_throttle(customer_name, address, recent, until, locks, updated)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(customer_name, address) DO UPDATE SET"
    " recent = excluded.recent, until = excluded.until, locks = excluded.locks,"
    " updated = excluded.updated",
    "DELETE FROM login_throttle WHERE customer_name = ?1 AND address = ?2",
};

static const struct throttle_sql USER_SQL = {
    "SELECT recent, until, locks, updated FROM user_throttle WHERE user_id = ?1 AND kind = ?2",
    "INSERT INTO user_throttle(user_id, kind, recent, until, locks, updated)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(user_id, kind) DO UPDATE SET"
    " recent = excluded.recent, until = excluded.until, locks = excluded.locks,"
    " updated = excluded.updated",
    "DELETE FROM user_throttle WHERE user_id = ?1 AND kind = ?2",
};

/* Rows of unknown names would pile up: old login rows that hold no lock go. */
static const char SQL_LOGIN_PURGE[] =
    "DELETE FROM login_throttle WHERE until <= ?1 AND updated <= ?2";

/* 1 when key names something throttled; 0 for a login name that can never
 * log in (answered at once, no hash to protect). */
static int key_ok(const struct fa_throttle_key *key)
{
    if (key->customer_name != NULL)
        return fa_store_name_ok(key->customer_name) && key->address != NULL &&
               strnlen(key->address, ADDRESS_MAX + 1) <= ADDRESS_MAX;
    return key->user_id > 0 && key->kind != NULL &&
           (strcmp(key->kind, "authenticate") == 0 || strcmp(key->kind, "enroll") == 0);
}

static const struct throttle_sql *key_sql(const struct fa_throttle_key *key)
{
    return key->customer_name != NULL ? &LOGIN_SQL : &USER_SQL;
}

static int key_bind(struct fa_db_stmt *s, const struct fa_throttle_key *key)
{
    if (key->customer_name != NULL)
        return fa_db_bind_text(s, 1, key->customer_name) |
               fa_db_bind_text(s, 2, key->address);
    return fa_db_bind_int64(s, 1, key->user_id) |
           fa_db_bind_text(s, 2, key->kind);
}

/* "t1,t2,..." into r->t; anything unparsable is dropped (it only ever
 * under-counts, and the next write rewrites the list). */
static void recent_parse(const char *text, struct throttle_row *r)
{
    const char *p = text;
    r->n = 0;
    while (*p != '\0' && r->n < FA_THROTTLE_LIMIT_MAX) {
        char *end = NULL;
        long long v = strtoll(p, &end, 10);
        if (end == p)
            break;
        r->t[r->n++] = (int64_t)v;
        p = *end == ',' ? end + 1 : end;
    }
}

static void recent_format(const struct throttle_row *r, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < r->n && used < cap; i++) {
        int w = snprintf(out + used, cap - used, "%s%" PRId64, i > 0 ? "," : "", r->t[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static enum fa_rc row_get(struct fa_conn *c, const struct fa_throttle_key *key,
                          struct throttle_row *r, struct fa_err *err)
{
    char recent[RECENT_MAX];
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc = fa_store_stmt(c, key_sql(key)->get, &s, err);
    int step;
    memset(r, 0, sizeof *r);
    if (rc != FA_OK)
        return rc;
    step = key_bind(s, key) == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;
    if (step == FA_DB_ROW) {
        rc = fa_store_col_text(c, s, 0, recent, sizeof recent, err);
        recent_parse(recent, r);
        r->until = fa_db_column_int64(s, 1);
        r->locks = fa_db_column_int(s, 2);
        r->updated = fa_db_column_int64(s, 3);
        r->found = 1;
    } else if (step != FA_DB_DONE) {
        rc = fa_store_dberr(c, "throttle", err);
    }
    fa_store_stmt_done(s);
    return rc;
}

static enum fa_rc row_put(struct fa_conn *c, const struct fa_throttle_key *key,
                          const struct throttle_row *r, struct fa_err *err)
{
    char recent[RECENT_MAX];
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc = fa_store_stmt(c, key_sql(key)->put, &s, err);
    int b;
    if (rc != FA_OK)
        return rc;
    recent_format(r, recent, sizeof recent);
    b = key_bind(s, key);
    b |= fa_db_bind_text(s, 3, recent);
    b |= fa_db_bind_int64(s, 4, r->until);
    b |= fa_db_bind_int(s, 5, r->locks);
    b |= fa_db_bind_int64(s, 6, r->updated);
    return fa_store_run(c, s, b, "throttle", err);
}

/* The length of lock number `locks` (0-based): lock_s doubled per earlier
 * lock, at most max_lock_s. */
static long lock_length(const struct fa_throttle_policy *p, int locks)
{
    long len = p->lock_s;
    for (int i = 0; i < locks && len < p->max_lock_s; i++)
        len = len > p->max_lock_s / 2 ? p->max_lock_s : len * 2;
    return len < p->max_lock_s ? len : p->max_lock_s;
}

/* The delay after failure k (1-based) below the limit; never past a lock. */
static long delay_length(const struct fa_throttle_policy *p, int k)
{
    long d = p->delay_s;
    for (int i = 1; i < k && d < p->lock_s; i++)
        d *= 2;
    return d < p->lock_s ? d : p->lock_s;
}

/* Count one failure at now into r (the rules of fa_throttle_policy). */
static void row_fail(struct throttle_row *r, const struct fa_throttle_policy *p, int64_t now,
                     struct fa_throttle_state *out)
{
    int keep = 0;
    /* A long quiet spell forgives earlier locks: the next lock is short again. */
    if (r->found && now - r->updated > p->max_lock_s)
        r->locks = 0;
    for (int i = 0; i < r->n; i++)
        if (r->t[i] > now - p->window_s)
            r->t[keep++] = r->t[i];
    r->n = keep;
    if (r->n == FA_THROTTLE_LIMIT_MAX) { /* only when limit 0 counts on */
        memmove(r->t, r->t + 1, (size_t)(r->n - 1) * sizeof r->t[0]);
        r->n--;
    }
    r->t[r->n++] = now;
    r->updated = now;
    out->failures = r->n;
    if (p->limit > 0 && r->n >= p->limit) {
        out->wait_s = lock_length(p, r->locks);
        out->locked_now = 1;
        r->until = now + out->wait_s;
        r->locks++;
        r->n = 0; /* the lock replaces them: counting starts afresh after it */
    } else if (p->limit > 0 && p->delay_s > 0) {
        out->wait_s = delay_length(p, r->n);
        r->until = now + out->wait_s;
    }
}

enum fa_rc fa_store_throttle_check(struct fa_store *st, const struct fa_throttle_key *key,
                                   int64_t now, struct fa_throttle_state *out,
                                   struct fa_err *err)
{
    struct throttle_row r;
    struct fa_conn *c = NULL;
    enum fa_rc rc;
    memset(out, 0, sizeof *out);
    if (!key_ok(key))
        return FA_OK;
    rc = fa_store_conn(st, &c, err);
    if (rc == FA_OK)
        rc = row_get(c, key, &r, err);
    if (rc == FA_OK && r.until > now)
        out->wait_s = (long)(r.until - now);
    if (rc == FA_OK)
        out->failures = r.n;
    return rc;
}

static enum fa_rc purge_logins(struct fa_conn *c, const struct fa_throttle_policy *p, int64_t now,
                               struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    long keep = p->window_s > p->max_lock_s ? p->window_s : p->max_lock_s;
    enum fa_rc rc = fa_store_stmt(c, SQL_LOGIN_PURGE, &s, err);
    int b;
    if (rc != FA_OK)
        return rc;
    b = fa_db_bind_int64(s, 1, now);
    b |= fa_db_bind_int64(s, 2, now - keep);
    return fa_store_run(c, s, b, "throttle", err);
}

/* Inside the transaction: refuse when waiting, else count and write. */
static enum fa_rc fail_in_tx(struct fa_conn *c, const struct fa_throttle_key *key,
                             const struct fa_throttle_policy *p, int64_t now,
                             struct fa_throttle_state *out, struct fa_err *err)
{
    struct throttle_row r;
    enum fa_rc rc = row_get(c, key, &r, err);
    if (rc != FA_OK)
        return rc;
    if (r.until > now) {
        out->wait_s = (long)(r.until - now);
        out->failures = r.n;
        return fa_err_set(err, FA_ELIMIT, "too many failed attempts; try again in %ld s",
                          out->wait_s);
    }
    if (key->customer_name != NULL && !r.found)
        rc = purge_logins(c, p, now, err);
    row_fail(&r, p, now, out);
    if (rc == FA_OK)
        rc = row_put(c, key, &r, err);
    return rc;
}

enum fa_rc fa_store_throttle_fail(struct fa_store *st, const struct fa_throttle_key *key,
                                  const struct fa_throttle_policy *policy, int64_t now,
                                  struct fa_throttle_state *out, struct fa_err *err)
{
    struct fa_conn *c = NULL;
    enum fa_rc rc;
    memset(out, 0, sizeof *out);
    if (!key_ok(key))
        return FA_OK;
    if (policy->limit < 0 || policy->limit > FA_THROTTLE_LIMIT_MAX || policy->window_s < 0 ||
        policy->lock_s < 0 || policy->max_lock_s < policy->lock_s || policy->delay_s < 0)
        return fa_err_set(err, FA_EINVAL, "throttle policy out of range");
    rc = fa_store_conn(st, &c, err);
    if (rc == FA_OK)
        rc = fa_store_tx_begin(c, err);
    if (rc != FA_OK)
        return rc;
    /* FA_ELIMIT rolls back too: nothing was written. */
    return fa_store_tx_end(c, fail_in_tx(c, key, policy, now, out, err), err);
}

enum fa_rc fa_store_throttle_clear(struct fa_store *st, const struct fa_throttle_key *key,
                                   struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    if (!key_ok(key))
        return FA_OK;
    rc = fa_store_conn(st, &c, err);
    if (rc == FA_OK)
        rc = fa_store_stmt(c, key_sql(key)->del, &s, err);
    if (rc != FA_OK)
        return rc;
    return fa_store_run(c, s, key_bind(s, key), "throttle", err);
}

static const char SQL_UNLOCK_LOGINS[] = "DELETE FROM login_throttle WHERE customer_name = ?1";
static const char SQL_UNLOCK_USERS[] =
    "DELETE FROM user_throttle WHERE user_id IN (SELECT u.id FROM users u"
    " JOIN customers c ON c.id = u.customer_id WHERE c.name = ?1)";
static const char SQL_CUSTOMER_EXISTS[] = "SELECT count(*) FROM customers WHERE name = ?1";

/* Run one statement bound to ?1 = name and add the rows it changed to *n. */
static enum fa_rc unlock_step(struct fa_conn *c, const char *sql, const char *name, int *n,
                              struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc = fa_store_stmt(c, sql, &s, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_run(c, s, fa_db_bind_text(s, 1, name), "unlock", err);
    if (rc == FA_OK)
        *n += fa_db_changes(c->db);
    return rc;
}

static enum fa_rc unlock_in_tx(struct fa_conn *c, const char *name, int *n, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    long known = 0;
    enum fa_rc rc = unlock_step(c, SQL_UNLOCK_LOGINS, name, n, err);
    if (rc == FA_OK)
        rc = unlock_step(c, SQL_UNLOCK_USERS, name, n, err);
    if (rc == FA_OK)
        rc = fa_store_stmt(c, SQL_CUSTOMER_EXISTS, &s, err);
    if (rc == FA_OK)
        rc = fa_store_count(c, s, fa_db_bind_text(s, 1, name), &known,
                            "unlock", err);
    if (rc == FA_OK && known == 0 && *n == 0)
        rc = fa_err_set(err, FA_ENOTFOUND, "customer '%s' not found", name);
    return rc;
}

enum fa_rc fa_store_customer_unlock(struct fa_store *st, const char *name, int *n,
                                    struct fa_err *err)
{
    struct fa_conn *c = NULL;
    enum fa_rc rc = fa_store_check_name("customerName", name, err);
    *n = 0;
    if (rc == FA_OK)
        rc = fa_store_conn(st, &c, err);
    if (rc == FA_OK)
        rc = fa_store_tx_begin(c, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_tx_end(c, unlock_in_tx(c, name, n, err), err);
    if (rc != FA_OK)
        *n = 0;
    return rc;
}
