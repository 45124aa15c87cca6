/*
 * store.h — the SQLite database: the only module that knows SQL.
 *
 * One database file in WAL mode with foreign keys on and a busy timeout;
 * the schema is migrated at open by PRAGMA user_version. Each thread that
 * calls in gets its own connection with its own prepared statements, opened
 * lazily and closed by fa_store_free (a pthread key keeps them apart), so a
 * struct fa_store may be shared by every worker thread.
 *
 * Secrets never reach the database in clear: passwords are Argon2id hashes,
 * access tokens are stored as digests. Every write that touches more than one
 * row runs in one transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error).
 * All times are Unix seconds (UTC).
 */
#ifndef FACEAUTH_STORE_H
#define FACEAUTH_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "faceauth/common.h"
#include "faceauth/crypto.h"

#define FA_NAME_MAX 64         /* userName, customerName: 1-64 chars */
#define FA_TEXT_MAX 256        /* fullName, emailId, phoneNumber, countryCode */
#define FA_IMAGE_ID_HEX 32     /* random image ids: 16 bytes as hex */
#define FA_PATH_MAX 512

enum fa_user_state { FA_USER_DRAFT = 0, FA_USER_SUCCESS, FA_USER_FAILURE };

/* "draft", "success", "failure" */
const char *fa_user_state_name(enum fa_user_state s);

struct fa_store;

/*
 * Open (creating when absent) the database at path, switch to WAL, turn on
 * foreign keys, migrate the schema. The caller frees with fa_store_free once
 * no other thread uses it any more.
 * path must be a file: ":memory:" is refused (FA_EDB), since each thread's
 * connection would see its own empty database. FA_EDB also when the file's
 * schema is newer than this build.
 * A thread's connection is closed when that thread ends (pthread key
 * destructor); fa_store_free closes the rest. No thread may still be inside a
 * store call, or be exiting, while fa_store_free runs.
 */
enum fa_rc fa_store_open(const char *path, struct fa_store **out, struct fa_err *err);
void fa_store_free(struct fa_store *st); /* NULL is fine; closes every thread's connection */

/* 1 when a write to the database succeeds now (for /readyz). */
int fa_store_writable(struct fa_store *st);

/* ---- customers and access tokens ---- */

/* New customer. FA_ECONFLICT when the name exists, FA_EINVAL for a bad name or empty password. */
enum fa_rc fa_store_customer_add(struct fa_store *st, const char *name, const char *password,
                                 struct fa_err *err);

/* New password; every token of the customer is revoked. FA_ENOTFOUND for an unknown name. */
enum fa_rc fa_store_customer_passwd(struct fa_store *st, const char *name, const char *password,
                                    struct fa_err *err);

/*
 * Check name + password and issue a new access token valid for ttl_seconds.
 * FA_EAUTH (same message for unknown name and wrong password).
 * A token is live while now < issue time + ttl_seconds, so ttl_seconds <= 0
 * issues a token that is already expired. Each login also drops the
 * customer's expired and revoked tokens. token is "" on any error.
 */
enum fa_rc fa_store_login(struct fa_store *st, const char *name, const char *password,
                          long ttl_seconds, char token[FA_TOKEN_CHARS + 1], struct fa_err *err);

/*
 * The customer id for a token, which must be live and belong to customer_name.
 * FA_EAUTH when the token is unknown, expired, revoked or another customer's.
 * customer_name NULL: any customer's live token (GET routes that carry no
 * customerName); the caller then checks ownership of what it serves.
 * *customer_id is 0 on any error.
 */
enum fa_rc fa_store_token_check(struct fa_store *st, const char *customer_name, const char *token,
                                int64_t *customer_id, struct fa_err *err);

/* Revoke one token of the customer. FA_EAUTH when it is not a live token of theirs. */
enum fa_rc fa_store_token_revoke(struct fa_store *st, int64_t customer_id, const char *token,
                                 struct fa_err *err);

/* ---- users ---- */

struct fa_user {
    int64_t id;
    int64_t customer_id;
    char user_name[FA_NAME_MAX + 1];
    char full_name[FA_TEXT_MAX + 1];
    char email[FA_TEXT_MAX + 1];
    char phone[FA_TEXT_MAX + 1];
    char country_code[FA_TEXT_MAX + 1];
    char enroll_token[FA_TOKEN_CHARS + 1];
    enum fa_user_state state;
    int blacklisted;
    int64_t created;
    int64_t updated;      /* last enrollment state change */
};

/*
 * Insert a user from u's customer_id and text fields; a fresh enrollment
 * token is generated, state is draft. On success u->id, enroll_token,
 * created and updated are filled in. FA_ECONFLICT when the userName exists
 * for that customer.
 */
enum fa_rc fa_store_user_create(struct fa_store *st, struct fa_user *u, struct fa_err *err);

/* Look a user up by name or by enrollment token, within one customer. FA_ENOTFOUND. */
enum fa_rc fa_store_user_get(struct fa_store *st, int64_t customer_id, const char *user_name,
                             struct fa_user *out, struct fa_err *err);
enum fa_rc fa_store_user_by_token(struct fa_store *st, int64_t customer_id,
                                  const char *enroll_token, struct fa_user *out,
                                  struct fa_err *err);

/*
 * The user's templates of one model as a malloc'ed array of n*dim floats
 * (*vecs; free()), enrolled first then learned, oldest first. *n may be 0
 * (then *vecs is NULL). FA_EDB when a stored template of that model has
 * another dim.
 */
enum fa_rc fa_store_templates_load(struct fa_store *st, int64_t user_id, const char *model_id,
                                   int dim, float **vecs, int *n, struct fa_err *err);

/* ---- one face operation, written at once ---- */

/* A stored image file that a record points to. */
struct fa_store_image {
    char id[FA_IMAGE_ID_HEX + 1]; /* random hex; the URL names it */
    const char *path;             /* file path, relative to the data dir */
    const char *mime;             /* "image/jpeg", "image/png", ... */
};

struct fa_store_record {
    int64_t customer_id;
    int64_t user_id;              /* 0: no user (search) */
    const char *user_name;        /* as the client named it, for the log */
    const char *request_type;     /* "enroll", "faceUpdate", "authenticate", "search" */
    int success;                  /* result of the operation */
    double score;                 /* best score, or NAN when none */
    const struct fa_store_image *original;  /* NULL when none was stored */
    const struct fa_store_image *thumbnail; /* NULL when none was stored */
    int set_state;                /* 1: set the user's state to new_state */
    enum fa_user_state new_state;
    int replace_templates;        /* 1: delete all the user's templates first (update) */
    const float *template_vec;    /* NULL: no template to add */
    int template_dim;
    const char *template_model;   /* model id, e.g. FA_MODEL_ID */
    const char *template_source;  /* "enroll" or "learned" */
    float template_quality;
    int max_learned;              /* after adding a learned template, keep only this many (oldest go) */
    int require_state;            /* 1: fail with FA_EFAIL unless the user's state is still expected_state */
    enum fa_user_state expected_state;
};

/*
 * Write one record in a single transaction: the image rows, the optional
 * template change, the optional state change (which also sets updated) and
 * one transaction-log row. With require_state, the user's state is re-read
 * inside the transaction, so two concurrent enrolls cannot both succeed:
 * the loser gets FA_EFAIL and nothing is written.
 * Also with nothing written: FA_ENOTFOUND when user_id is not a user of
 * customer_id (e.g. deleted meanwhile); FA_EINVAL for an inconsistent record
 * (state or template change without a user, negative max_learned, an image
 * path that is absolute or contains ".."); FA_EDB for any SQLite failure.
 * Learned eviction counts the user's learned templates of template_model;
 * max_learned 0 keeps none (the new sample is dropped at once).
 */
enum fa_rc fa_store_record_commit(struct fa_store *st, const struct fa_store_record *rec,
                                  struct fa_err *err);

/*
 * Find a stored image by id: its owner's customer id, its path relative to
 * the data dir and its MIME type. FA_ENOTFOUND.
 */
enum fa_rc fa_store_image_get(struct fa_store *st, const char *image_id, int64_t *customer_id,
                              char path[FA_PATH_MAX], char mime[32], struct fa_err *err);

#endif
