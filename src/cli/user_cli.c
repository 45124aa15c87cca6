/*
 * user_cli.c — `faceauth user list CUSTOMER`: the operator's view of one
 * customer's users, read straight from the database (no server, no token).
 *
 * The rows are those of status/enroll/all with statusType all, in its order
 * (last enrollment change first), read page by page through the same store
 * call, with the photo count of user/details (templateCount: enrolled plus
 * learned photos). Only the five printed fields are kept per user, so a
 * customer with 100,000 users costs a few MB; they are kept at all because
 * the userName column is as wide as the longest name.
 */
#include "faceauth/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "faceauth/config.h"
#include "faceauth/store.h"

#define UL_PAGE 100

struct ul_row {
    char name[FA_NAME_MAX + 1];
    enum fa_user_state state;
    int photos;
    int blacklisted;
    int64_t created;
};

struct ul_rows {
    struct ul_row *row;
    size_t n, cap;
};

static enum fa_rc rows_push(struct ul_rows *rows, const struct ul_row *r, struct fa_err *err)
{
    if (rows->n == rows->cap) {
        size_t cap = rows->cap ? rows->cap * 2 : 64;
        struct ul_row *grown = realloc(rows->row, cap * sizeof *grown);
        if (grown == NULL)
            return fa_err_set(err, FA_ENOMEM, "out of memory listing users");
        rows->row = grown;
        rows->cap = cap;
    }
    rows->row[rows->n++] = *r;
    return FA_OK;
}

/* One page of users into rows; *more = 0 after the last page. */
static enum fa_rc read_page(struct fa_store *st, int64_t customer_id, int page,
                            struct ul_rows *rows, int *more, struct fa_err *err)
{
    struct fa_user_filter f = {-1, 0, 0, 0, page, UL_PAGE};
    struct fa_user *users = NULL;
    int n = 0;
    long total = 0;
    enum fa_rc rc = fa_store_users_list(st, customer_id, &f, &users, &n, &total, err);
    for (int i = 0; rc == FA_OK && i < n; i++) {
        struct ul_row r;
        int enrolled = 0, learned = 0;
        rc = fa_store_samples_count(st, users[i].id, &enrolled, &learned, err);
        snprintf(r.name, sizeof r.name, "%s", users[i].user_name);
        r.state = users[i].state;
        r.photos = enrolled + learned;
        r.blacklisted = users[i].blacklisted;
        r.created = users[i].created;
        if (rc == FA_OK)
            rc = rows_push(rows, &r, err);
    }
    free(users);
    *more = rc == FA_OK && (long)page * UL_PAGE < total;
    return rc;
}

static void print_rows(const struct ul_rows *rows)
{
    int width = (int)strlen("userName");
    for (size_t i = 0; i < rows->n; i++)
        if ((int)strlen(rows->row[i].name) > width)
            width = (int)strlen(rows->row[i].name);
    printf("%-*s  %-7s  %6s  %-11s  %s\n", width, "userName", "status", "photos", "blacklisted",
           "created");
    for (size_t i = 0; i < rows->n; i++) {
        const struct ul_row *r = &rows->row[i];
        time_t t = (time_t)r->created;
        struct tm tm;
        char when[32] = "-";
        if (gmtime_r(&t, &tm) != NULL)
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        printf("%-*s  %-7s  %6d  %-11s  %s\n", width, r->name, fa_user_state_name(r->state),
               r->photos, r->blacklisted ? "yes" : "no", when);
    }
}

/* Open the database for reading; a missing one is an error, not created. */
static enum fa_rc open_existing(const struct fa_config *cfg, struct fa_store **st,
                                struct fa_err *err)
{
    char path[FA_CFG_PATH_MAX + 32];
    struct stat sb;
    const char *file = path;
    fa_config_database(cfg, path, sizeof path);
    if (strncmp(path, "sqlite:", 7) == 0)
        file = path + 7;
    if (strncmp(path, "postgres", 8) != 0 && stat(file, &sb) != 0)
        return fa_err_set(err, FA_ENOTFOUND, "no database at %s (give --data DIR)", path);
    return fa_store_open(path, st, err);
}

int fa_cli_user_list(int argc, char **argv, const struct fa_config *cfg)
{
    struct fa_store *st = NULL;
    struct ul_rows rows = {NULL, 0, 0};
    struct fa_err err = {{0}};
    int64_t customer_id = 0;
    int more = 1;
    enum fa_rc rc;
    if (argc != 3) {
        fprintf(stderr, "usage: faceauth user list CUSTOMER [--data DIR]\n");
        return 2;
    }
    rc = open_existing(cfg, &st, &err);
    if (rc == FA_OK)
        rc = fa_store_customer_id(st, argv[2], &customer_id, &err);
    for (int page = 1; rc == FA_OK && more; page++)
        rc = read_page(st, customer_id, page, &rows, &more, &err);
    fa_store_free(st);
    if (rc == FA_OK) {
        print_rows(&rows);
        if (fflush(stdout) != 0)
            rc = fa_err_set(&err, FA_EINTERNAL, "cannot write the list");
    }
    free(rows.row);
    if (rc != FA_OK) {
        fprintf(stderr, "faceauth: %s\n", err.msg);
        return 1;
    }
    return 0;
}
