/*
 * store_space.c — search spaces: named lists of a customer's users that a
 * search can be limited to (searchspace/store, searchspace/delete,
 * view/searchspace/user, and the searchSpaces of search).
 *
 * A store replaces the whole list in one BEGIN IMMEDIATE transaction: every
 * name is resolved first, within the customer, and one unknown name refuses
 * the lot before anything is written. The space row itself is kept across
 * replacements (its id and created time stay).
 *
 * Unknown names are all reported in one message, cut to fit struct fa_err
 * with an "and N more" tail, so a client fixes its list in one round.
 */
#include "store_int.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a comma-separated list of names for an error message ---- */

/* Leaves room in FA_ERR_MAX for the message's prefix and its tail. */
#define NAMES_BUF (FA_ERR_MAX - 64)
#define NAMES_TAIL 24 /* ", and 2147483647 more" */

struct names {
    char buf[NAMES_BUF];
    size_t len;
    int shown, omitted;
};

/* name has passed fa_store_check_name, so it is safe to echo. */
static void names_add(struct names *l, const char *name)
{
    size_t need = strlen(name) + (l->shown > 0 ? 2 : 0);

    /* Once one is left out, the rest are too: the shown ones keep their order. */
    if (l->omitted > 0 || l->len + need + NAMES_TAIL >= sizeof l->buf) {
        l->omitted++;
        return;
    }
    snprintf(l->buf + l->len, sizeof l->buf - l->len, "%s%s", l->shown > 0 ? ", " : "", name);
    l->len += need;
    l->shown++;
}

static enum fa_rc names_err(const struct names *l, const char *what, struct fa_err *err)
{
    if (l->omitted > 0)
        return fa_err_set(err, FA_EINVAL, "%s: %s and %d more", what, l->buf, l->omitted);
    return fa_err_set(err, FA_EINVAL, "%s: %s", what, l->buf);
}

static enum fa_rc names_validate(const char *field, const char *const *names, int n,
                                 struct fa_err *err)
{
    enum fa_rc rc = FA_OK;
    int i;

    if (n < 0 || (n > 0 && names == NULL))
        return fa_err_set(err, FA_EINVAL, "%s is missing", field);
    for (i = 0; rc == FA_OK && i < n; i++)
        rc = fa_store_check_name(field, names[i], err);
    return rc;
}

/* ---- store ---- */

static const char SQL_SPACE_USER_ID[] =
    "SELECT id FROM users WHERE customer_id = ?1 AND user_name = ?2";

/* The id of the customer's user name; 0 when there is none. */
static enum fa_rc user_id_of(struct fa_conn *c, int64_t customer_id, const char *name,
                             int64_t *id, struct fa_err *err)
{
    enum fa_rc rc =
        fa_store_lookup_id(c, SQL_SPACE_USER_ID, customer_id, name, id, "search space users", err);

    /* An unknown name is collected, not an error: all are reported at once. */
    return rc == FA_ENOTFOUND ? FA_OK : rc;
}

/* Every name's user id into ids (room for n); FA_EINVAL listing the unknown ones. */
static enum fa_rc space_resolve(struct fa_conn *c, int64_t customer_id,
                                const char *const *user_names, int n, int64_t *ids,
                                struct fa_err *err)
{
    struct names unknown;
    enum fa_rc rc = FA_OK;
    int i;

    memset(&unknown, 0, sizeof unknown);
    for (i = 0; rc == FA_OK && i < n; i++) {
        rc = user_id_of(c, customer_id, user_names[i], &ids[i], err);
        if (rc == FA_OK && ids[i] == 0)
            names_add(&unknown, user_names[i]);
    }
    if (rc == FA_OK && (unknown.shown > 0 || unknown.omitted > 0))
        rc = names_err(&unknown, "unknown users in search space", err);
    return rc;
}

static const char SQL_SPACE_ADD[] =
    "INSERT INTO search_spaces(customer_id, name, created) VALUES(?1, ?2, ?3)"
    " ON CONFLICT(customer_id, name) DO NOTHING";
static const char SQL_SPACE_ID[] =
    "SELECT id FROM search_spaces WHERE customer_id = ?1 AND name = ?2";

/* Create the space when absent (an existing one keeps its row). */
static enum fa_rc space_add(struct fa_conn *c, int64_t customer_id, const char *name,
                            struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b, r;

    rc = fa_store_stmt(c, SQL_SPACE_ADD, &s, err);
    if (rc != FA_OK)
        return rc;
    b = fa_store_bind_id_text(s, customer_id, name);
    b |= fa_db_bind_int64(s, 3, fa_store_now());
    r = b == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;
    if (r == FA_DB_DONE)
        rc = FA_OK;
    else if (fa_db_errkind(c->db) == FA_DB_E_FOREIGNKEY)
        rc = fa_err_set(err, FA_ENOTFOUND, "customer not found");
    else
        rc = fa_store_dberr(c, "search space store", err);
    fa_store_stmt_done(s);
    return rc;
}

static enum fa_rc space_id_get(struct fa_conn *c, int64_t customer_id, const char *name,
                               int64_t *space_id, struct fa_err *err)
{
    enum fa_rc rc = fa_store_lookup_id(c, SQL_SPACE_ID, customer_id, name, space_id,
                                       "search space store", err);

    /* space_add made sure of the row in this same write transaction, so no
     * row is a database fault. The text is SQLite's for a step that found
     * no row (the statement is reset now, so it cannot be asked). */
    if (rc == FA_ENOTFOUND)
        rc = fa_err_set(err, FA_EDB, "database error (search space store): %s",
                        "no more rows available");
    return rc;
}

static const char SQL_SPACE_CLEAR[] = "DELETE FROM search_space_users WHERE space_id = ?1";
/* DO NOTHING: a name given twice is one member. */
static const char SQL_SPACE_MEMBER_ADD[] =
    "INSERT INTO search_space_users(space_id, user_id) VALUES(?1, ?2) ON CONFLICT DO NOTHING";

static enum fa_rc space_fill(struct fa_conn *c, int64_t space_id, const int64_t *ids, int n,
                             struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b, i;

    rc = fa_store_stmt(c, SQL_SPACE_CLEAR, &s, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_run(c, s, fa_db_bind_int64(s, 1, space_id), "search space store", err);
    if (rc == FA_OK)
        rc = fa_store_stmt(c, SQL_SPACE_MEMBER_ADD, &s, err);
    for (i = 0; rc == FA_OK && i < n; i++) {
        b = fa_db_bind_int64(s, 1, space_id);
        b |= fa_db_bind_int64(s, 2, ids[i]);
        rc = fa_store_run(c, s, b, "search space store", err);
    }
    return rc;
}

static enum fa_rc space_write(struct fa_conn *c, int64_t customer_id, const char *name,
                              const char *const *user_names, int n, int64_t *ids,
                              struct fa_err *err)
{
    int64_t space_id = 0;
    enum fa_rc rc;

    rc = space_resolve(c, customer_id, user_names, n, ids, err);
    if (rc == FA_OK)
        rc = space_add(c, customer_id, name, err);
    if (rc == FA_OK)
        rc = space_id_get(c, customer_id, name, &space_id, err);
    if (rc == FA_OK)
        rc = space_fill(c, space_id, ids, n, err);
    return rc;
}

enum fa_rc fa_store_space_store(struct fa_store *st, int64_t customer_id, const char *name,
                                const char *const *user_names, int n, struct fa_err *err)
{
    struct fa_conn *c = NULL;
    int64_t *ids = NULL;
    enum fa_rc rc;

    rc = fa_store_check_name("name", name, err);
    if (rc == FA_OK)
        rc = names_validate("users", user_names, n, err);
    if (rc == FA_OK)
        rc = fa_store_conn(st, &c, err);
    if (rc != FA_OK)
        return rc;
    ids = calloc(n > 0 ? (size_t)n : 1, sizeof *ids);
    if (ids == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory storing a search space");
    rc = fa_store_tx_begin(c, err);
    if (rc != FA_OK)
        goto out;
    rc = fa_store_tx_end(c, space_write(c, customer_id, name, user_names, n, ids, err), err);
out:
    free(ids);
    return rc;
}

/* ---- delete ---- */

/* The cascade drops the memberships with the space. */
static const char SQL_SPACE_DELETE[] =
    "DELETE FROM search_spaces WHERE customer_id = ?1 AND name = ?2";

enum fa_rc fa_store_space_delete(struct fa_store *st, int64_t customer_id, const char *name,
                                 struct fa_err *err)
{
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;

    rc = fa_store_check_name("name", name, err);
    if (rc == FA_OK)
        rc = fa_store_conn_stmt(st, SQL_SPACE_DELETE, &c, &s, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_run(c, s, fa_store_bind_id_text(s, customer_id, name), "search space delete",
                      err);
    if (rc == FA_OK && fa_db_changes(c->db) == 0)
        rc = fa_err_set(err, FA_ENOTFOUND, "search space '%s' not found", name);
    return rc;
}

/* ---- list ---- */

/* An empty space gives one row with a NULL user_name. */
static const char SQL_SPACE_LIST[] =
    "SELECT s.name, u.user_name FROM search_spaces s"
    " LEFT JOIN search_space_users m ON m.space_id = s.id"
    " LEFT JOIN users u ON u.id = m.user_id"
    " WHERE s.customer_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR s.name = ?2)"
    " ORDER BY s.name, u.user_name";

/* The spaces built so far; ucap is the room in the last space's users. */
struct space_acc {
    struct fa_space *sp;
    int n;
    size_t cap, ucap;
};

static const struct fa_store_growth SPACES_GROWTH = {
    4, INT_MAX, "too many search spaces", "out of memory listing search spaces"};
static const struct fa_store_growth SPACE_USERS_GROWTH = {
    8, INT_MAX, "too many users in a search space", "out of memory listing search spaces"};
static const struct fa_store_growth IDS_GROWTH = {
    16, INT_MAX, "too many users in search spaces", "out of memory reading search spaces"};

void fa_store_spaces_free(struct fa_space *spaces, int n)
{
    int i;

    if (spaces == NULL)
        return;
    for (i = 0; i < n; i++)
        free(spaces[i].users);
    free(spaces);
}

static enum fa_rc acc_space(struct space_acc *a, const char *name, struct fa_err *err)
{
    void *p = a->sp;
    enum fa_rc rc = fa_store_grow(&p, &a->cap, (size_t)a->n + 1, sizeof *a->sp, &SPACES_GROWTH,
                                  err);

    a->sp = p;
    if (rc != FA_OK)
        return rc;
    memset(&a->sp[a->n], 0, sizeof a->sp[a->n]);
    snprintf(a->sp[a->n].name, sizeof a->sp[a->n].name, "%s", name);
    a->n++;
    a->ucap = 0;
    return FA_OK;
}

static enum fa_rc acc_user(struct space_acc *a, const char *user_name, struct fa_err *err)
{
    struct fa_space *sp = &a->sp[a->n - 1];
    void *p = sp->users;
    enum fa_rc rc = fa_store_grow(&p, &a->ucap, (size_t)sp->n_users + 1, sizeof *sp->users,
                                  &SPACE_USERS_GROWTH, err);

    sp->users = p;
    if (rc != FA_OK)
        return rc;
    snprintf(sp->users[sp->n_users], sizeof sp->users[sp->n_users], "%s", user_name);
    sp->n_users++;
    return FA_OK;
}

/* Rows come sorted by space name, so a new name starts a new space. */
static enum fa_rc acc_row(struct fa_conn *c, struct fa_db_stmt *s, struct space_acc *a,
                          struct fa_err *err)
{
    char name[FA_NAME_MAX + 1], user[FA_NAME_MAX + 1];
    enum fa_rc rc;

    rc = fa_store_col_text(c, s, 0, name, sizeof name, err);
    if (rc == FA_OK && (a->n == 0 || strcmp(a->sp[a->n - 1].name, name) != 0))
        rc = acc_space(a, name, err);
    if (rc != FA_OK || fa_db_column_type(s, 1) == FA_DB_NULL)
        return rc;
    rc = fa_store_col_text(c, s, 1, user, sizeof user, err);
    if (rc == FA_OK)
        rc = acc_user(a, user, err);
    return rc;
}

/* Run the list query into a (which the caller frees, also on error). */
static enum fa_rc space_rows(struct fa_conn *c, int64_t customer_id, const char *name,
                             struct space_acc *a, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int r;

    rc = fa_store_stmt(c, SQL_SPACE_LIST, &s, err);
    if (rc != FA_OK)
        return rc;
    /* A NULL name binds NULL: every space. */
    r = fa_store_bind_id_text(s, customer_id, name) == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;
    while (r == FA_DB_ROW && rc == FA_OK) {
        rc = acc_row(c, s, a, err);
        if (rc == FA_OK)
            r = fa_db_step(s);
    }
    if (rc == FA_OK && r != FA_DB_DONE)
        rc = fa_store_dberr(c, "search space list", err);
    fa_store_stmt_done(s);
    return rc;
}

enum fa_rc fa_store_space_list(struct fa_store *st, int64_t customer_id, const char *name,
                               struct fa_space **spaces, int *n, struct fa_err *err)
{
    struct space_acc a = {NULL, 0, 0, 0};
    struct fa_conn *c = NULL;
    enum fa_rc rc = FA_OK;

    *spaces = NULL;
    *n = 0;
    if (name != NULL)
        rc = fa_store_check_name("name", name, err);
    if (rc == FA_OK)
        rc = fa_store_conn(st, &c, err);
    if (rc == FA_OK)
        rc = space_rows(c, customer_id, name, &a, err);
    if (rc == FA_OK && name != NULL && a.n == 0)
        rc = fa_err_set(err, FA_ENOTFOUND, "search space '%s' not found", name);
    if (rc != FA_OK) {
        fa_store_spaces_free(a.sp, a.n);
        return rc;
    }
    *spaces = a.sp;
    *n = a.n;
    return FA_OK;
}

/* ---- the user ids of several spaces (search) ---- */

/* No row: no such space. One row with a NULL user_id: an empty space. */
static const char SQL_SPACE_MEMBERS[] =
    "SELECT s.id, m.user_id FROM search_spaces s"
    " LEFT JOIN search_space_users m ON m.space_id = s.id"
    " WHERE s.customer_id = ?1 AND s.name = ?2";

struct id_acc {
    int64_t *ids;
    int n;
    size_t cap;
};

static enum fa_rc ids_push(struct id_acc *a, int64_t id, struct fa_err *err)
{
    void *p = a->ids;
    enum fa_rc rc = fa_store_grow(&p, &a->cap, (size_t)a->n + 1, sizeof *a->ids, &IDS_GROWTH,
                                  err);

    a->ids = p;
    if (rc != FA_OK)
        return rc;
    a->ids[a->n++] = id;
    return FA_OK;
}

/* Append the members of space name to a; *found = 0 when there is no such space. */
static enum fa_rc space_members(struct fa_conn *c, int64_t customer_id, const char *name,
                                struct id_acc *a, int *found, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int r;

    *found = 0;
    rc = fa_store_stmt(c, SQL_SPACE_MEMBERS, &s, err);
    if (rc != FA_OK)
        return rc;
    r = fa_store_bind_id_text(s, customer_id, name) == FA_DB_OK ? fa_db_step(s) : FA_DB_ERROR;
    while (r == FA_DB_ROW && rc == FA_OK) {
        *found = 1;
        if (fa_db_column_type(s, 1) != FA_DB_NULL)
            rc = ids_push(a, fa_db_column_int64(s, 1), err);
        if (rc == FA_OK)
            r = fa_db_step(s);
    }
    if (rc == FA_OK && r != FA_DB_DONE)
        rc = fa_store_dberr(c, "search space users", err);
    fa_store_stmt_done(s);
    return rc;
}

static int id_cmp(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;

    return (a > b) - (a < b);
}

/* Sort and drop repeats in place. */
static void ids_unique(struct id_acc *a)
{
    int i, k = 0;

    if (a->n == 0)
        return;
    qsort(a->ids, (size_t)a->n, sizeof *a->ids, id_cmp);
    for (i = 1; i < a->n; i++) {
        if (a->ids[i] != a->ids[k])
            a->ids[++k] = a->ids[i];
    }
    a->n = k + 1;
}

/* Inside the caller's read snapshot: every space's members, or FA_EINVAL
 * listing the unknown spaces. */
static enum fa_rc spaces_collect(struct fa_conn *c, int64_t customer_id,
                                 const char *const *names, int n, struct id_acc *a,
                                 struct fa_err *err)
{
    struct names unknown;
    enum fa_rc rc = FA_OK;
    int i, found = 0;

    memset(&unknown, 0, sizeof unknown);
    for (i = 0; rc == FA_OK && i < n; i++) {
        rc = space_members(c, customer_id, names[i], a, &found, err);
        if (rc == FA_OK && !found)
            names_add(&unknown, names[i]);
    }
    if (rc == FA_OK && (unknown.shown > 0 || unknown.omitted > 0))
        rc = names_err(&unknown, "unknown search spaces", err);
    return rc;
}

enum fa_rc fa_store_space_user_ids(struct fa_store *st, int64_t customer_id,
                                   const char *const *names, int n, int64_t **ids, int *n_ids,
                                   struct fa_err *err)
{
    struct id_acc a = {NULL, 0, 0};
    struct fa_conn *c = NULL;
    enum fa_rc rc;

    *ids = NULL;
    *n_ids = 0;
    rc = names_validate("searchSpaces", names, n, err);
    if (rc != FA_OK || n == 0)
        return rc;
    rc = fa_store_conn(st, &c, err);
    if (rc == FA_OK)
        rc = fa_store_tx_begin_read(c, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_tx_end(c, spaces_collect(c, customer_id, names, n, &a, err), err);
    if (rc != FA_OK || a.n == 0) {
        free(a.ids);
        return rc;
    }
    ids_unique(&a);
    *ids = a.ids;
    *n_ids = a.n;
    return FA_OK;
}
