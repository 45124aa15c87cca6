/*
 * store.h — the database: the only module that knows SQL.
 *
 * One SQLite file in WAL mode with foreign keys on and a busy timeout (the
 * default), or a PostgreSQL database that several nodes share (the
 * database setting, README "PostgreSQL back-end"); the same schema on both,
 * migrated at open (PRAGMA user_version / table schema_version). Each thread that
 * calls in gets its own connection with its own prepared statements, opened
 * lazily and closed by fa_store_free (a pthread key keeps them apart), so a
 * struct fa_store may be shared by every worker thread.
 *
 * Secrets never reach the database in clear: passwords are Argon2id hashes,
 * access tokens are stored as digests, and templates are encrypted under
 * template.key beside the database file (store_seal.c), which fa_store_open
 * reads or creates. Every write that touches more than one
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
 * schema is newer than this build, and when template.key (in the folder of
 * path) is missing or unreadable while the database holds encrypted
 * templates; it is created (0600) when neither exists. Templates an older
 * build stored in clear are encrypted here, before it returns.
 * A thread's connection is closed when that thread ends (pthread key
 * destructor); fa_store_free closes the rest. No thread may still be inside a
 * store call, or be exiting, while fa_store_free runs.
 */
enum fa_rc fa_store_open(const char *path, struct fa_store **out, struct fa_err *err);
void fa_store_free(struct fa_store *st); /* NULL is fine; closes every thread's connection */

/*
 * Durability of commits. full = 1 (the default of every store): each commit
 * is fsync'ed before it returns, so an acknowledged write survives a power
 * loss. full = 0 (synchronous=NORMAL): faster, still never corrupts, but a
 * power loss may undo the last commits. Call before any other thread uses
 * st (it switches the calling thread's connection, later ones follow).
 */
enum fa_rc fa_store_set_sync(struct fa_store *st, int full, struct fa_err *err);

/* 1 when a write to the database succeeds now (for /readyz). */
int fa_store_writable(struct fa_store *st);

/* ---- several nodes on one database (store_shared.c) ---- */

/* 1 when st is a database other processes share (PostgreSQL): images then
 * belong in the database (fa_store_image.bytes), and each node's index
 * follows the others through the change feed below. 0 for SQLite. */
int fa_store_is_shared(const struct fa_store *st);

/*
 * Template change feed. Every transaction that changes a user's templates,
 * state or details (records, updates, face resets, deletes)
 * numbers the change; numbers grow in commit order, so a follower that has
 * applied everything up to n asks for the changes since n and misses
 * nothing. One entry per user holds its latest number (and stays after the
 * user is deleted): the follower reloads (or drops) that user.
 * _head: the latest number. _since: calls fn for each change after `after`,
 * ascending, about max of them (a batch never stops inside one number);
 * *last gets the highest number passed (after when none). fn must not call
 * into st on this thread.
 * _wait: block up to timeout_ms for a change from any node (PostgreSQL
 * LISTEN on a connection the store owns, re-established when lost);
 * *woken = 1 when something may have changed (a notification, or listening
 * (re)started), then call _since. SQLite sleeps and answers 0. One thread at
 * a time may wait, and it must have returned before fa_store_free.
 */
typedef void (*fa_store_change_fn)(void *arg, int64_t seq, int64_t customer_id, int64_t user_id);
enum fa_rc fa_store_changes_head(struct fa_store *st, int64_t *seq, struct fa_err *err);
enum fa_rc fa_store_changes_since(struct fa_store *st, int64_t after, int max,
                                  fa_store_change_fn fn, void *arg, int64_t *last,
                                  struct fa_err *err);
enum fa_rc fa_store_changes_wait(struct fa_store *st, int timeout_ms, int *woken,
                                 struct fa_err *err);

/* The n-byte random secret called name that every node of the database
 * shares, drawn by the first to ask. buf is wiped on error. */
enum fa_rc fa_store_secret(struct fa_store *st, const char *name, uint8_t *buf, size_t n,
                           struct fa_err *err);

/* The bytes of an image stored in the database, its owner and its mime
 * type. *bytes is the caller's to free. FA_ENOTFOUND when there is no such
 * image or it is a file (see fa_store_image_get). */
enum fa_rc fa_store_image_bytes(struct fa_store *st, const char *image_id, int64_t *customer_id,
                                uint8_t **bytes, size_t *n, char mime[32], struct fa_err *err);

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

/* The id of the customer called name (for the operator's CLI). FA_ENOTFOUND
 * naming it; FA_EINVAL for a name no customer can have. */
enum fa_rc fa_store_customer_id(struct fa_store *st, const char *name, int64_t *id,
                                struct fa_err *err);

/* Revoke one token of the customer. FA_EAUTH when it is not a live token of theirs. */
enum fa_rc fa_store_token_revoke(struct fa_store *st, int64_t customer_id, const char *token,
                                 struct fa_err *err);

/* ---- users ---- */

struct fa_store_event; /* a callback event of a record; declared with the outbox below */

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
    int64_t blacklisted_at; /* when blacklisted (0 when not) */
    char face_original[FA_IMAGE_ID_HEX + 1];  /* image ids of the enrolled face; "" when none */
    char face_thumbnail[FA_IMAGE_ID_HEX + 1];
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

/* ---- the enrollment page (store_enroll.c) ---- */

/*
 * The user of an enrollment token, whatever the customer (tokens are unique
 * across customers: the token alone is the page's credential), and when
 * that token was issued (Unix seconds). FA_ENOTFOUND "unknown enrollment
 * token" for anything else, a string that is not token-shaped included.
 */
enum fa_rc fa_store_enroll_link(struct fa_store *st, const char *enroll_token,
                                struct fa_user *out, int64_t *issued, struct fa_err *err);

/*
 * Count one enrollment page attempt of the user at time now, unless the
 * user already made `limit` attempts in the window_s seconds before now:
 * then *allowed = 0 and nothing is written. Older attempts are dropped in
 * the same transaction, so the table stays small.
 */
enum fa_rc fa_store_enroll_attempt(struct fa_store *st, int64_t user_id, int64_t now,
                                   long window_s, int limit, int *allowed, struct fa_err *err);

/* ---- templates: a user's photos (samples), each embedded by several models ---- */

#define FA_STORE_SAMPLES_MAX 16   /* samples one record may add */
#define FA_STORE_MODELS_MAX 8     /* templates (models) per sample */
#define FA_STORE_MODEL_ID_MAX 64  /* bytes of a model id */

/* One model's embedding of one photo. */
struct fa_store_template {
    const char *model_id; /* with its version, e.g. "mobilefacenet-1"; never compared across ids */
    int dim;
    const float *vec;     /* dim floats; borrowed */
};

/* One photo: the templates of every model that embedded it. A sample is
 * enrolled, learned and evicted as a whole. */
struct fa_store_sample {
    const struct fa_store_template *templates;
    int n_templates;      /* 1..FA_STORE_MODELS_MAX, each model id once */
    const char *source;   /* "enroll" or "learned" */
    float quality;        /* kept beside every template (the chip's sharpness) */
};

/* A model a caller wants vectors of. */
struct fa_store_model {
    const char *id;
    int dim;
};

/* A user's samples as fa_store_samples_load returns them. */
struct fa_store_samples {
    int n;              /* samples that hold at least one of the asked models */
    int n_models;       /* as asked */
    int n_learned;      /* the last n_learned samples are learned ones */
    const float **vec;  /* vec[i * n_models + j]: model j's vector of sample i, NULL when the
                           photo has no template of that model */
    float *data;        /* storage of the vectors (owned) */
};

/*
 * The user's samples, grouped: enrolled first, then learned, each group
 * oldest first; for each, the vector of every asked model it has (models
 * are matched by exact id, so another version of a model is "absent").
 * Templates of models not asked for are ignored, and a sample holding none
 * of them is left out. FA_EDB when a stored template of an asked model has
 * another dim. *out is freed with fa_store_samples_free; n may be 0.
 * n_models is 1..FA_STORE_MODELS_MAX.
 */
enum fa_rc fa_store_samples_load(struct fa_store *st, int64_t user_id,
                                 const struct fa_store_model *models, int n_models,
                                 struct fa_store_samples **out, struct fa_err *err);
void fa_store_samples_free(struct fa_store_samples *s); /* NULL is fine */

/* How many enrolled and learned samples (photos) the user has, whatever
 * their models. */
enum fa_rc fa_store_samples_count(struct fa_store *st, int64_t user_id, int *enrolled,
                                  int *learned, struct fa_err *err);

/*
 * The user's templates of one model as a malloc'ed array of n*dim floats
 * (*vecs; free()), one per sample, in fa_store_samples_load's order. *n may
 * be 0 (then *vecs is NULL). FA_EDB when a stored template of that model
 * has another dim. (The search index holds one model's vectors.)
 */
enum fa_rc fa_store_templates_load(struct fa_store *st, int64_t user_id, const char *model_id,
                                   int dim, float **vecs, int *n, struct fa_err *err);

/* ---- one face operation, written at once ---- */

/* A stored image that a record points to: a file under the data dir, or
 * (bytes set) bytes kept in the database itself, for nodes that share no
 * disk (fa_store_is_shared). */
struct fa_store_image {
    char id[FA_IMAGE_ID_HEX + 1]; /* random hex; the URL names it */
    const char *path;             /* file path, relative to the data dir; NULL or "" with bytes */
    const char *mime;             /* "image/jpeg", "image/png", ... */
    const uint8_t *bytes;         /* NULL: the image is the file at path */
    size_t n_bytes;
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
    const struct fa_store_sample *samples; /* photos to add, in order; NULL when none */
    int n_samples;                /* 0..FA_STORE_SAMPLES_MAX */
    int max_learned;              /* after adding a learned sample, keep only this many
                                     learned samples (oldest go, all their models at once) */
    int require_state;            /* 1: fail with FA_EFAIL unless the user's state is still expected_state */
    enum fa_user_state expected_state;
    struct fa_store_event *callback; /* NULL: no callback event (see the outbox below) */
};

/*
 * Write one record in a single transaction: the image rows, the optional
 * template change, the optional state change (which also sets updated; when
 * the new state is success, the record's original and thumbnail become the
 * user's face_original and face_thumbnail) and one transaction-log row.
 * With require_state, the user's state is re-read
 * inside the transaction, so two concurrent enrolls cannot both succeed:
 * the loser gets FA_EFAIL and nothing is written.
 * Also with nothing written: FA_ENOTFOUND when user_id is not a user of
 * customer_id (e.g. deleted meanwhile); FA_EINVAL for an inconsistent record
 * (state or template change without a user, negative max_learned, an image
 * path that is absolute or contains ".."); FA_EDB for any SQLite failure.
 * Each added sample gets the user's next sample number (one more than the
 * largest stored), so samples sort in insertion order. Learned eviction
 * counts the user's learned samples, whatever their models; max_learned 0
 * keeps none (the new sample is dropped at once). Enrolled samples are
 * never evicted.
 */
enum fa_rc fa_store_record_commit(struct fa_store *st, const struct fa_store_record *rec,
                                  struct fa_err *err);

/*
 * Find a stored image by id: its owner's customer id, its path relative to
 * the data dir and its MIME type. FA_ENOTFOUND.
 */
enum fa_rc fa_store_image_get(struct fa_store *st, const char *image_id, int64_t *customer_id,
                              char path[FA_PATH_MAX], char mime[32], struct fa_err *err);

/* ==== user management, lists, search spaces, settings, logs ==== */

/* Changes to a user; NULL fields stay as they are. */
struct fa_user_changes {
    const char *user_name;     /* rename; FA_ECONFLICT when taken */
    const char *full_name;
    const char *email;
    const char *phone;
    const char *country_code;
    int reset_face;            /* 1: new enrollment token, state draft, templates deleted */
};

/*
 * Apply changes to the customer's user user_name in one transaction and
 * return the user as it is afterwards in *out. FA_ENOTFOUND, FA_ECONFLICT,
 * FA_EINVAL (bad new name or too-long text).
 */
enum fa_rc fa_store_user_update(struct fa_store *st, int64_t customer_id, const char *user_name,
                                const struct fa_user_changes *chg, struct fa_user *out,
                                struct fa_err *err);

/*
 * Delete a user with its templates, images and search-space memberships in
 * one transaction. The paths of the user's image files (relative to the data
 * dir) are recorded in the same transaction in a pending-deletion table and
 * returned in *paths (*n of them; free with fa_store_paths_free): the caller
 * removes the files, then calls fa_store_pending_done. A crash between the
 * two leaves the rows in the table, and fa_store_pending_list at the next
 * start finds them. *user_id gets the deleted user's id (for the index).
 */
enum fa_rc fa_store_user_delete(struct fa_store *st, int64_t customer_id, const char *user_name,
                                int64_t *user_id, char ***paths, int *n, struct fa_err *err);

/* Every path still pending deletion (after a crash); free with fa_store_paths_free. */
enum fa_rc fa_store_pending_list(struct fa_store *st, char ***paths, int *n, struct fa_err *err);

/* Forget pending paths whose files are gone. */
enum fa_rc fa_store_pending_done(struct fa_store *st, char *const *paths, int n,
                                 struct fa_err *err);

void fa_store_paths_free(char **paths, int n); /* NULL is fine */

/* 1 when some image row names relpath (for the orphan-file sweep at start). */
enum fa_rc fa_store_image_path_known(struct fa_store *st, const char *relpath, int *known,
                                     struct fa_err *err);

/*
 * Photo retention: in one transaction, delete the image rows of up to limit
 * (1-1000) log rows that hold images and are either a failure (any request
 * type but search) created before failed_before, or a search created before
 * search_before (Unix seconds). The log rows stay with their image links
 * NULL. The files' paths go to pending_deletes in the same transaction and
 * to *paths (*n; fa_store_paths_free): the caller removes the files, then
 * calls fa_store_pending_done, as after a user delete. *n is 0 when nothing
 * is left to purge.
 */
enum fa_rc fa_store_photos_expire(struct fa_store *st, int64_t failed_before,
                                  int64_t search_before, int limit, char ***paths, int *n,
                                  struct fa_err *err);

/* Blacklist (on = 1) or whitelist (on = 0) a user. FA_ENOTFOUND. */
enum fa_rc fa_store_user_blacklist(struct fa_store *st, int64_t customer_id, const char *user_name,
                                   int on, struct fa_err *err);

/* Which users a list asks for. */
struct fa_user_filter {
    int state;              /* -1 = any, else an enum fa_user_state */
    int blacklisted_only;   /* 1: only blacklisted users (ordered by blacklisted_at) */
    int64_t from, to;       /* on `updated` (inclusive); 0 = open end */
    int page;               /* 1-based */
    int page_count;         /* rows per page, 1-100 */
};

/*
 * One page of the customer's users, ordered by updated (newest first), then
 * id. *users is malloc'ed (free()), *n rows, *total the count of all rows
 * that match the filter.
 */
enum fa_rc fa_store_users_list(struct fa_store *st, int64_t customer_id,
                               const struct fa_user_filter *f, struct fa_user **users, int *n,
                               long *total, struct fa_err *err);

/* The user by id within a customer (search hits). FA_ENOTFOUND. */
enum fa_rc fa_store_user_by_id(struct fa_store *st, int64_t customer_id, int64_t user_id,
                               struct fa_user *out, struct fa_err *err);

/*
 * Every template of one model of every user of every customer, for loading
 * the search index at start: each(arg, customer_id, user_id, vec, dim) once per
 * template (one per sample), grouped by user (all templates of a user in a row). A non-zero
 * return from each stops the walk with FA_EINTERNAL.
 */
typedef int (*fa_store_template_fn)(void *arg, int64_t customer_id, int64_t user_id,
                                    const float *vec, int dim);
enum fa_rc fa_store_templates_each(struct fa_store *st, const char *model_id,
                                   fa_store_template_fn each, void *arg, struct fa_err *err);

/* ---- search spaces: named lists of users ---- */

/*
 * Create or replace the space `name` with exactly these users. Every name
 * must be a user of the customer: otherwise FA_EINVAL whose message lists the
 * unknown names, and nothing changes.
 */
enum fa_rc fa_store_space_store(struct fa_store *st, int64_t customer_id, const char *name,
                                const char *const *user_names, int n, struct fa_err *err);

/* FA_ENOTFOUND when there is no such space. */
enum fa_rc fa_store_space_delete(struct fa_store *st, int64_t customer_id, const char *name,
                                 struct fa_err *err);

struct fa_space {
    char name[FA_NAME_MAX + 1];
    char (*users)[FA_NAME_MAX + 1]; /* n_users names, sorted */
    int n_users;
};

/* The customer's spaces (only `name` when not NULL: FA_ENOTFOUND if absent),
 * sorted by name; free with fa_store_spaces_free. */
enum fa_rc fa_store_space_list(struct fa_store *st, int64_t customer_id, const char *name,
                               struct fa_space **spaces, int *n, struct fa_err *err);
void fa_store_spaces_free(struct fa_space *spaces, int n);

/*
 * The ids of the users in the union of the named spaces, sorted ascending
 * and unique, malloc'ed (free()). An unknown space name is FA_EINVAL naming it.
 */
enum fa_rc fa_store_space_user_ids(struct fa_store *st, int64_t customer_id,
                                   const char *const *names, int n, int64_t **ids, int *n_ids,
                                   struct fa_err *err);

/* ---- per-customer settings ---- */

#define FA_URL_MAX 512

struct fa_settings {
    int check_liveliness;                     /* 0/1, default 0 */
    double threshold;                         /* search default, 0..1, default 0.5 */
    char enrollment_accepted_cb[FA_URL_MAX + 1];
    char enrollment_rejected_cb[FA_URL_MAX + 1];
    char auth_success_cb[FA_URL_MAX + 1];
    char auth_failure_cb[FA_URL_MAX + 1];
    int allow_low_precision;                  /* 0/1, default 1: authenticate may ask "low" */
};

enum fa_rc fa_store_settings_get(struct fa_store *st, int64_t customer_id, struct fa_settings *out,
                                 struct fa_err *err);
/* Write all fields (validated: threshold in 0..1, URLs empty or http(s) and <= FA_URL_MAX). */
enum fa_rc fa_store_settings_set(struct fa_store *st, int64_t customer_id,
                                 const struct fa_settings *in, struct fa_err *err);

/* ---- failure throttles (store_throttle.c) ---- */

/*
 * What a run of failures leads to. limit failures within window_s seconds
 * lock for lock_s seconds; every further lock (until a success or an
 * unlock) lasts twice as long, up to max_lock_s. Before the lock, failure k
 * (1-based) makes the next attempt wait delay_s * 2^(k-1) seconds (0: no
 * delay). limit 0 never locks and never delays.
 */
struct fa_throttle_policy {
    int limit;        /* 0..FA_THROTTLE_LIMIT_MAX */
    long window_s;
    long lock_s;
    long max_lock_s;  /* >= lock_s */
    long delay_s;
};

#define FA_THROTTLE_LIMIT_MAX 100

/*
 * Whose failures: a login of customer_name (as the client typed it; it may
 * name no customer) from address, or one kind of face attempt
 * ("authenticate" or "enroll") of a user.
 */
struct fa_throttle_key {
    const char *customer_name; /* login; NULL for a user's attempts */
    const char *address;       /* login: the client address */
    int64_t user_id;           /* user attempts */
    const char *kind;          /* user attempts: "authenticate" or "enroll" */
};

/* What a throttle call found. */
struct fa_throttle_state {
    long wait_s;      /* > 0: no attempt for this many seconds more */
    int failures;     /* failures counted in the window now */
    int locked_now;   /* 1: this failure started a lock of wait_s seconds */
};

/*
 * Whether key may try at time now (Unix seconds): out->wait_s > 0 when it
 * is delayed or locked. Reads only. A login key whose customer_name is not
 * a valid name is never throttled (its login is refused at once, without a
 * hash).
 */
enum fa_rc fa_store_throttle_check(struct fa_store *st, const struct fa_throttle_key *key,
                                   int64_t now, struct fa_throttle_state *out,
                                   struct fa_err *err);

/*
 * Count a failure of key at now, in one transaction, and delay or lock as
 * policy says. When key is already delayed or locked nothing is counted and
 * the answer is FA_ELIMIT with out->wait_s set, so callers can count an
 * attempt before its outcome is known (then only a success clears it) and
 * concurrent attempts cannot slip past the limit.
 */
enum fa_rc fa_store_throttle_fail(struct fa_store *st, const struct fa_throttle_key *key,
                                  const struct fa_throttle_policy *policy, int64_t now,
                                  struct fa_throttle_state *out, struct fa_err *err);

/* Forget key's failures, delay and lock (after a success). */
enum fa_rc fa_store_throttle_clear(struct fa_store *st, const struct fa_throttle_key *key,
                                   struct fa_err *err);

/*
 * Forget every throttle of the customer: its logins from every address and
 * the attempts of each of its users; *n gets the number of rows dropped.
 * FA_ENOTFOUND when no customer has that name and no login row names it.
 */
enum fa_rc fa_store_customer_unlock(struct fa_store *st, const char *name, int *n,
                                    struct fa_err *err);

/* ---- the transaction log ---- */

struct fa_log_row {
    int64_t created;
    char user_name[FA_NAME_MAX + 1];
    char request_type[16];
    int success;
    double score;                              /* NAN when none */
    char original_id[FA_IMAGE_ID_HEX + 1];     /* "" when none (or deleted) */
    char thumbnail_id[FA_IMAGE_ID_HEX + 1];
};

/* One page of the customer's log, newest first, created in [from, to] (0 = open). */
enum fa_rc fa_store_log_list(struct fa_store *st, int64_t customer_id, int64_t from, int64_t to,
                             int page, int page_count, struct fa_log_row **rows, int *n,
                             long *total, struct fa_err *err);

/* ---- the callback outbox (store_outbox.c; delivery is callback.h) ---- */

#define FA_EVENT_ID_HEX 32     /* random event ids: 16 bytes as hex */
#define FA_CB_ERROR_MAX 200    /* bytes of an attempt's error kept */
#define FA_CB_SECRET_HEX 64    /* a callback secret: FA_KEY_BYTES as hex */

/* The four events a customer can set a callback URL for (settings). */
enum fa_cb_event {
    FA_CB_ENROLL_ACCEPTED = 0,
    FA_CB_ENROLL_REJECTED,
    FA_CB_AUTH_SUCCESS,
    FA_CB_AUTH_FAILURE,
};

/* "enrollmentAccepted", "enrollmentRejected", "successfulAuthentication",
 * "failedAuthentication" (the event field of a callback body). */
const char *fa_cb_event_name(enum fa_cb_event e);

/*
 * A callback event of a record. When the record's customer has a URL set
 * for event, fa_store_record_commit writes an outbox row in the record's
 * transaction, in state held (not sent yet) with body as a stand-in, and
 * sets queued. fa_store_event_ready then gives it the answer's body.
 */
struct fa_store_event {
    enum fa_cb_event event;
    char event_id[FA_EVENT_ID_HEX + 1];
    const char *body;     /* the stand-in body (complete JSON), borrowed */
    int queued;           /* out: 1 when a row was written */
};

/*
 * The held event gets its final body and becomes due now (pending).
 * FA_ENOTFOUND when no held event has that id.
 */
enum fa_rc fa_store_event_ready(struct fa_store *st, const char *event_id, const char *body,
                                struct fa_err *err);

/* Make every event held since before `before` (Unix seconds) pending with its
 * stand-in body: the process stopped between commit and answer. *n gets how many. */
enum fa_rc fa_store_events_release(struct fa_store *st, int64_t before, int *n,
                                   struct fa_err *err);

/* One event to deliver, as fa_store_events_due returns it. */
struct fa_cb_due {
    int64_t id;
    int64_t customer_id;
    char event_id[FA_EVENT_ID_HEX + 1];
    char event[32];
    char url[FA_URL_MAX + 1];
    char secret[FA_CB_SECRET_HEX + 1]; /* "" when the customer has none */
    char *body;                        /* malloc'ed; freed by fa_store_due_free */
    int attempts;                      /* made so far */
    int64_t due_ms;                    /* when it was due, before any claim (Unix ms) */
};

/*
 * Due pending events (next_ms <= now_ms), at most one per customer (its
 * oldest due one), customers whose next event is due first coming first,
 * at most max of them. *out is freed with fa_store_due_free.
 */
enum fa_rc fa_store_events_due(struct fa_store *st, int64_t now_ms, int max,
                               struct fa_cb_due **out, int *n, struct fa_err *err);
void fa_store_due_free(struct fa_cb_due *rows, int n); /* NULL is fine */

/*
 * Hand back an event fa_store_events_due returned that this node will not
 * send now (its customer already has a transfer here, or the node stops):
 * it is due again at due_ms, for any node. Only PostgreSQL claims events;
 * on SQLite this writes nothing.
 */
enum fa_rc fa_store_event_unclaim(struct fa_store *st, int64_t id, int64_t due_ms,
                                  struct fa_err *err);

/* When the next pending event is due (Unix ms); INT64_MAX when none is. */
enum fa_rc fa_store_events_next(struct fa_store *st, int64_t *next_ms, struct fa_err *err);

/* The outcome of one attempt: state "sent", "pending" (retry at next_ms) or
 * "dead"; attempts is the new count; error "" on success. */
enum fa_rc fa_store_event_attempt(struct fa_store *st, int64_t id, const char *state,
                                  int attempts, int64_t next_ms, const char *error,
                                  struct fa_err *err);

/* Delete sent and dead events last changed before `before` (Unix seconds):
 * their bodies are answers that hold image links, kept no longer than needed.
 * *n gets how many. */
enum fa_rc fa_store_events_prune(struct fa_store *st, int64_t before, int *n,
                                 struct fa_err *err);

/* Events by state over every customer (queued = held + pending). */
struct fa_cb_counts {
    long queued, sent, dead;
};
enum fa_rc fa_store_events_count(struct fa_store *st, struct fa_cb_counts *out,
                                 struct fa_err *err);

/* One row of view/callbacks. */
struct fa_cb_row {
    char event_id[FA_EVENT_ID_HEX + 1];
    char event[32];
    char url[FA_URL_MAX + 1];
    char state[8];        /* "pending" (held too), "sent", "dead" */
    int attempts;
    char last_error[FA_CB_ERROR_MAX + 1];
    int64_t created;      /* Unix seconds */
    int64_t next_ms;      /* next attempt (pending only) */
};

/* One page of the customer's events, newest first; state NULL = any, else
 * "pending", "sent" or "dead". *rows malloc'ed (free()). */
enum fa_rc fa_store_events_list(struct fa_store *st, int64_t customer_id, const char *state,
                                int page, int page_count, struct fa_cb_row **rows, int *n,
                                long *total, struct fa_err *err);

/* The name of customer id (a callback's customerName when the request
 * carried none: the enrollment page). FA_ENOTFOUND. */
enum fa_rc fa_store_customer_name(struct fa_store *st, int64_t customer_id,
                                  char out[FA_NAME_MAX + 1], struct fa_err *err);

/* Set the customer's callback secret (hex, FA_CB_SECRET_HEX chars). FA_ENOTFOUND. */
enum fa_rc fa_store_callback_secret_set(struct fa_store *st, const char *customer_name,
                                        const char *secret_hex, struct fa_err *err);

#endif
