/*
 * store_customer.c — customers, passwords and access tokens.
 *
 * Passwords are stored as Argon2id strings and tokens as BLAKE2b digests
 * (crypto.h), so the database alone yields no credential. Argon2id takes
 * tens of milliseconds and 64 MiB: it always runs with no statement active
 * and no transaction open, so a login never holds the write lock while
 * hashing.
 *
 * A token is live while now < expires and it is not revoked; ttl_seconds
 * <= 0 therefore issues a token that is already expired (tests use that).
 * Each login drops the customer's dead tokens, which keeps the table at the
 * number of live tokens without a background job.
 */
#include "store_int.h"

#include <string.h>

#define FA_PASSWORD_MAX 1024

/*
 * A valid Argon2id hash (same parameters as fa_crypto_password_hash) of a
 * random password that was thrown away. Login verifies against it when the
 * customer does not exist, so an unknown name costs as much time as a wrong
 * password and timing does not reveal which customer names exist.
 */
static const char DUMMY_HASH[] =
    "$argon2id$v=19$m=65536,t=2,p=1$4hlGdVTAK5BekMcVOO3L7A$"
    "cUh5/gNGp/JDsY0xnK2K7wKopWyN3nCVJ98OEgVlhNE";

static const char MSG_LOGIN[] = "wrong customerName or password";
static const char MSG_TOKEN[] = "invalid access token";

static enum fa_rc check_password(const char *password, struct fa_err *err)
{
    if (password == NULL || password[0] == '\0')
        return fa_err_set(err, FA_EINVAL, "password is empty");
    if (strnlen(password, FA_PASSWORD_MAX + 1) > FA_PASSWORD_MAX)
        return fa_err_set(err, FA_EINVAL, "password is longer than %d bytes", FA_PASSWORD_MAX);
    return FA_OK;
}

/* 1 when token has the shape fa_crypto_token_new produces (length only:
 * anything else simply will not match a digest). */
static int token_shape_ok(const char *token)
{
    return token != NULL && strnlen(token, FA_TOKEN_CHARS + 1) == FA_TOKEN_CHARS;
}

static int64_t add_saturating(int64_t a, long b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

/* ---- customers ---- */

/*
 * What add and passwd do before touching the database: check name and
 * password, hash the password into hash (FA_PWHASH_MAX bytes; the caller
 * wipes it), and get the connection. The hash comes first so that the slow
 * Argon2id never runs with a statement or a transaction open.
 */
static enum fa_rc customer_prepare(struct fa_store *st, const char *name, const char *password,
                                   char *hash, struct fa_conn **c, struct fa_err *err)
{
    enum fa_rc rc;

    hash[0] = '\0';
    rc = fa_store_check_name("customerName", name, err);
    if (rc == FA_OK)
        rc = check_password(password, err);
    if (rc == FA_OK)
        rc = fa_crypto_password_hash(password, hash, err);
    if (rc == FA_OK)
        rc = fa_store_conn(st, c, err);
    return rc;
}

static const char SQL_CUSTOMER_ADD[] =
    "INSERT INTO customers(name, pw_hash, created) VALUES(?1, ?2, ?3)";

enum fa_rc fa_store_customer_add(struct fa_store *st, const char *name, const char *password,
                                 struct fa_err *err)
{
    char hash[FA_PWHASH_MAX];
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK;

    rc = customer_prepare(st, name, password, hash, &c, err);
    if (rc != FA_OK)
        goto out;
    rc = fa_store_stmt(c, SQL_CUSTOMER_ADD, &s, err);
    if (rc != FA_OK)
        goto out;
    b |= fa_db_bind_text(s, 1, name);
    b |= fa_db_bind_text(s, 2, hash);
    b |= fa_db_bind_int64(s, 3, fa_store_now());
    if (b != FA_DB_OK) {
        rc = fa_store_dberr(c, "customer add", err);
        goto out;
    }
    if (fa_db_step(s) == FA_DB_DONE)
        goto out;
    if (fa_db_errkind(c->db) == FA_DB_E_UNIQUE)
        rc = fa_err_set(err, FA_ECONFLICT, "customerName '%s' already exists", name);
    else
        rc = fa_store_dberr(c, "customer add", err);
out:
    fa_store_stmt_done(s);
    fa_crypto_wipe(hash, sizeof hash);
    return rc;
}

static const char SQL_CUSTOMER_PASSWD[] = "UPDATE customers SET pw_hash = ?1 WHERE name = ?2";
static const char SQL_TOKENS_REVOKE_ALL[] =
    "UPDATE tokens SET revoked = 1"
    " WHERE revoked = 0 AND customer_id = (SELECT id FROM customers WHERE name = ?1)";

/* Inside the caller's transaction: new hash, then every token revoked. */
static enum fa_rc passwd_write(struct fa_conn *c, const char *name, const char *hash,
                               struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK;

    rc = fa_store_stmt(c, SQL_CUSTOMER_PASSWD, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_text(s, 1, hash);
    b |= fa_db_bind_text(s, 2, name);
    rc = fa_store_run(c, s, b, "passwd", err);
    if (rc != FA_OK)
        return rc;
    if (fa_db_changes(c->db) == 0)
        return fa_err_set(err, FA_ENOTFOUND, "customerName '%s' not found", name);

    rc = fa_store_stmt(c, SQL_TOKENS_REVOKE_ALL, &s, err);
    if (rc != FA_OK)
        return rc;
    return fa_store_run(c, s, fa_db_bind_text(s, 1, name), "passwd",
                        err);
}

enum fa_rc fa_store_customer_passwd(struct fa_store *st, const char *name, const char *password,
                                    struct fa_err *err)
{
    char hash[FA_PWHASH_MAX];
    struct fa_conn *c = NULL;
    enum fa_rc rc;

    rc = customer_prepare(st, name, password, hash, &c, err);
    if (rc != FA_OK)
        goto out;
    rc = fa_store_tx_begin(c, err);
    if (rc != FA_OK)
        goto out;
    rc = fa_store_tx_end(c, passwd_write(c, name, hash, err), err);
out:
    fa_crypto_wipe(hash, sizeof hash);
    return rc;
}

/* ---- login ---- */

static const char SQL_CUSTOMER_BY_NAME[] = "SELECT id, pw_hash FROM customers WHERE name = ?1";

/* The customer's id and password hash; *found = 0 when there is none. */
static enum fa_rc customer_lookup(struct fa_conn *c, const char *name, int64_t *id,
                                  char hash[FA_PWHASH_MAX], int *found, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int r;

    *found = 0;
    rc = fa_store_stmt(c, SQL_CUSTOMER_BY_NAME, &s, err);
    if (rc != FA_OK)
        return rc;
    if (fa_db_bind_text(s, 1, name) != FA_DB_OK) {
        rc = fa_store_dberr(c, "login", err);
        goto out;
    }
    r = fa_db_step(s);
    if (r == FA_DB_ROW) {
        *id = fa_db_column_int64(s, 0);
        rc = fa_store_col_text(c, s, 1, hash, FA_PWHASH_MAX, err);
        *found = rc == FA_OK;
    } else if (r != FA_DB_DONE) {
        rc = fa_store_dberr(c, "login", err);
    }
out:
    fa_store_stmt_done(s);
    return rc;
}

static const char SQL_TOKENS_PURGE[] =
    "DELETE FROM tokens WHERE customer_id = ?1 AND (revoked <> 0 OR expires <= ?2)";
static const char SQL_TOKEN_ADD[] =
    "INSERT INTO tokens(customer_id, digest, created, expires, revoked)"
    " VALUES(?1, ?2, ?3, ?4, 0)";

static enum fa_rc token_insert(struct fa_conn *c, int64_t customer_id, const char *digest,
                               long ttl_seconds, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    int64_t now = fa_store_now();
    enum fa_rc rc;
    int b = FA_DB_OK;

    rc = fa_store_stmt(c, SQL_TOKENS_PURGE, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_int64(s, 1, customer_id);
    b |= fa_db_bind_int64(s, 2, now);
    rc = fa_store_run(c, s, b, "login", err);
    if (rc != FA_OK)
        return rc;

    rc = fa_store_stmt(c, SQL_TOKEN_ADD, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_int64(s, 1, customer_id);
    b |= fa_db_bind_text(s, 2, digest);
    b |= fa_db_bind_int64(s, 3, now);
    b |= fa_db_bind_int64(s, 4, add_saturating(now, ttl_seconds));
    return fa_store_run(c, s, b, "login", err);
}

enum fa_rc fa_store_login(struct fa_store *st, const char *name, const char *password,
                          long ttl_seconds, char token[FA_TOKEN_CHARS + 1], struct fa_err *err)
{
    char hash[FA_PWHASH_MAX];
    char digest[FA_DIGEST_HEX + 1];
    struct fa_conn *c = NULL;
    int64_t id = 0;
    int found = 0;
    enum fa_rc rc;

    token[0] = '\0';
    hash[0] = '\0';
    /* A malformed name or an over-long password can never match, so
     * answering at once reveals nothing. */
    if (!fa_store_name_ok(name) || password == NULL ||
        strnlen(password, FA_PASSWORD_MAX + 1) > FA_PASSWORD_MAX)
        return fa_err_set(err, FA_EAUTH, "%s", MSG_LOGIN);
    rc = fa_store_conn(st, &c, err);
    if (rc != FA_OK)
        goto out;
    rc = customer_lookup(c, name, &id, hash, &found, err);
    if (rc != FA_OK)
        goto out;
    /* Verify even for an unknown name: same cost, same answer. */
    if (!fa_crypto_password_verify(password, found ? hash : DUMMY_HASH) || !found) {
        rc = fa_err_set(err, FA_EAUTH, "%s", MSG_LOGIN);
        goto out;
    }
    fa_crypto_token_new(token);
    fa_crypto_token_digest(token, digest);
    rc = fa_store_tx_begin(c, err);
    if (rc != FA_OK)
        goto out;
    rc = fa_store_tx_end(c, token_insert(c, id, digest, ttl_seconds, err), err);
out:
    if (rc != FA_OK)
        fa_crypto_wipe(token, FA_TOKEN_CHARS + 1);
    fa_crypto_wipe(hash, sizeof hash);
    return rc;
}

/* ---- tokens ---- */

/* ?2 NULL: any customer's token (routes without a customerName). */
static const char SQL_TOKEN_CHECK[] =
    "SELECT t.customer_id, t.expires, t.revoked FROM tokens t"
    " JOIN customers c ON c.id = t.customer_id"
    " WHERE t.digest = ?1 AND (CAST(?2 AS TEXT) IS NULL OR c.name = ?2)";

enum fa_rc fa_store_token_check(struct fa_store *st, const char *customer_name, const char *token,
                                int64_t *customer_id, struct fa_err *err)
{
    char digest[FA_DIGEST_HEX + 1];
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK, r;

    *customer_id = 0;
    if ((customer_name != NULL && !fa_store_name_ok(customer_name)) || !token_shape_ok(token))
        return fa_err_set(err, FA_EAUTH, "%s", MSG_TOKEN);
    /* The lookup goes by digest, so the index search is timed on a hash of
     * the secret, which tells an attacker nothing about the token. */
    fa_crypto_token_digest(token, digest);
    rc = fa_store_conn(st, &c, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_stmt(c, SQL_TOKEN_CHECK, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_text(s, 1, digest);
    /* bind_text of NULL binds SQL NULL. */
    b |= fa_db_bind_text(s, 2, customer_name);
    if (b != FA_DB_OK) {
        rc = fa_store_dberr(c, "token check", err);
        goto out;
    }
    r = fa_db_step(s);
    if (r == FA_DB_DONE) {
        /* Unknown, purged, or another customer's: all look the same. */
        rc = fa_err_set(err, FA_EAUTH, "%s", MSG_TOKEN);
    } else if (r != FA_DB_ROW) {
        rc = fa_store_dberr(c, "token check", err);
    } else if (fa_db_column_int(s, 2) != 0) {
        rc = fa_err_set(err, FA_EAUTH, "access token revoked");
    } else if (fa_db_column_int64(s, 1) <= fa_store_now()) {
        rc = fa_err_set(err, FA_EAUTH, "access token expired");
    } else {
        *customer_id = fa_db_column_int64(s, 0);
    }
out:
    fa_store_stmt_done(s);
    return rc;
}

static const char SQL_TOKEN_REVOKE[] =
    "UPDATE tokens SET revoked = 1"
    " WHERE digest = ?1 AND customer_id = ?2 AND revoked = 0 AND expires > ?3";

enum fa_rc fa_store_token_revoke(struct fa_store *st, int64_t customer_id, const char *token,
                                 struct fa_err *err)
{
    char digest[FA_DIGEST_HEX + 1];
    struct fa_conn *c = NULL;
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc;
    int b = FA_DB_OK;

    if (!token_shape_ok(token))
        return fa_err_set(err, FA_EAUTH, "%s", MSG_TOKEN);
    fa_crypto_token_digest(token, digest);
    rc = fa_store_conn(st, &c, err);
    if (rc != FA_OK)
        return rc;
    rc = fa_store_stmt(c, SQL_TOKEN_REVOKE, &s, err);
    if (rc != FA_OK)
        return rc;
    b |= fa_db_bind_text(s, 1, digest);
    b |= fa_db_bind_int64(s, 2, customer_id);
    b |= fa_db_bind_int64(s, 3, fa_store_now());
    rc = fa_store_run(c, s, b, "token revoke", err);
    if (rc == FA_OK && fa_db_changes(c->db) == 0)
        rc = fa_err_set(err, FA_EAUTH, "%s", MSG_TOKEN);
    return rc;
}
