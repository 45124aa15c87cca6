/*
 * store_schema.c — the schema and its migrations.
 *
 * PRAGMA user_version holds the number of migrations applied. Migration n
 * (1-based) is migrations[n - 1], a NULL-terminated list of statements, run
 * with the version bump in one BEGIN IMMEDIATE transaction: a crash or a
 * failing step leaves the previous version intact, and two processes opening
 * the same file at once cannot both migrate (the second waits for the lock,
 * then re-reads user_version and finds nothing to do).
 *
 * Rules for later changes: never edit a migration that has shipped; append a
 * new step list to `migrations` instead. SQLite cannot alter CHECK or
 * foreign-key clauses in place, so such changes need a table rebuild
 * (https://www.sqlite.org/lang_altertable.html#otheralter).
 *
 * Times are Unix seconds (INTEGER). Ids are INTEGER PRIMARY KEY (rowid)
 * except images, whose random hex id is also its public URL name.
 *
 * PostgreSQL: the same migrations in its dialect live in store_schema_pg.c
 * (a new migration is written in both files); the version is the largest
 * number in the table schema_version, and the transaction's advisory write
 * lock (store.c) plays BEGIN IMMEDIATE, so two nodes starting together
 * migrate once.
 */
#include "store_int.h"

#include <stdio.h>

static const char *const migration_1[] = {
    /* The settings columns are the customer's settings/view fields; an
     * empty callback URL means "no callback". */
    "CREATE TABLE customers("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " pw_hash TEXT NOT NULL,"
    " created INTEGER NOT NULL,"
    " check_liveliness INTEGER NOT NULL DEFAULT 0,"
    " threshold REAL NOT NULL DEFAULT 0.5,"
    " cb_enroll_accepted TEXT NOT NULL DEFAULT '',"
    " cb_enroll_rejected TEXT NOT NULL DEFAULT '',"
    " cb_auth_success TEXT NOT NULL DEFAULT '',"
    " cb_auth_failure TEXT NOT NULL DEFAULT '')",

    /* Only the BLAKE2b digest of a token is stored (see crypto.h). */
    "CREATE TABLE tokens("
    " id INTEGER PRIMARY KEY,"
    " customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,"
    " digest TEXT NOT NULL UNIQUE,"
    " created INTEGER NOT NULL,"
    " expires INTEGER NOT NULL,"
    " revoked INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX tokens_customer ON tokens(customer_id)",

    /* updated: the last change of the enrollment state (status/enroll/all
     * filters on it). enroll_token is kept in clear: user/details must be
     * able to give the enrollmentUrl back.
     * face_original/face_thumbnail point at the images of the enrolled face.
     * They and images.user_id form a cycle, which SQLite handles: deleting a
     * user deletes its row first, then cascades to its images, whose SET
     * NULL actions find no user row left to change. images is declared
     * below; SQLite resolves foreign-key targets when they are used. */
    "CREATE TABLE users("
    " id INTEGER PRIMARY KEY,"
    " customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,"
    " user_name TEXT NOT NULL,"
    " full_name TEXT NOT NULL DEFAULT '',"
    " email TEXT NOT NULL DEFAULT '',"
    " phone TEXT NOT NULL DEFAULT '',"
    " country_code TEXT NOT NULL DEFAULT '',"
    " enroll_token TEXT NOT NULL UNIQUE,"
    " state TEXT NOT NULL DEFAULT 'draft' CHECK(state IN ('draft','success','failure')),"
    " blacklisted INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL,"
    " blacklisted_at INTEGER NOT NULL DEFAULT 0,"
    " face_original TEXT REFERENCES images(id) ON DELETE SET NULL,"
    " face_thumbnail TEXT REFERENCES images(id) ON DELETE SET NULL,"
    " UNIQUE(customer_id, user_name))",
    "CREATE INDEX users_customer_state ON users(customer_id, state, updated)",
    "CREATE INDEX users_customer_updated ON users(customer_id, updated)",
    "CREATE INDEX users_customer_blacklisted ON users(customer_id, blacklisted, blacklisted_at)",
    /* Deleting an image looks its id up here (SET NULL): lookups, not scans. */
    "CREATE INDEX users_face_original ON users(face_original)",
    "CREATE INDEX users_face_thumbnail ON users(face_thumbnail)",

    /* embedding: dim float32 values in host byte order (every supported
     * host is little-endian); the length CHECK refuses a truncated blob.
     * sample: the photo a template was computed from, numbered per user in
     * insertion order (1, 2, ...); every model's template of one photo
     * shares it, and a photo is enrolled, learned and evicted as a whole.
     * One template per model and photo (the UNIQUE index). */
    "CREATE TABLE templates("
    " id INTEGER PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " sample INTEGER NOT NULL CHECK(sample > 0),"
    " model_id TEXT NOT NULL,"
    " source TEXT NOT NULL CHECK(source IN ('enroll','learned')),"
    " quality REAL NOT NULL DEFAULT 0,"
    " dim INTEGER NOT NULL CHECK(dim > 0),"
    " embedding BLOB NOT NULL CHECK(length(embedding) = 4 * dim),"
    " created INTEGER NOT NULL)",
    "CREATE UNIQUE INDEX templates_user_sample ON templates(user_id, sample, model_id)",
    "CREATE INDEX templates_user ON templates(user_id, model_id)",

    /* user_id is NULL for search probes, which belong to no user. */
    "CREATE TABLE images("
    " id TEXT PRIMARY KEY,"
    " customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,"
    " user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,"
    " kind TEXT NOT NULL CHECK(kind IN ('original','thumbnail')),"
    " path TEXT NOT NULL,"
    " mime TEXT NOT NULL,"
    " created INTEGER NOT NULL)",
    "CREATE INDEX images_customer ON images(customer_id)",
    "CREATE INDEX images_user ON images(user_id)",
    "CREATE INDEX images_path ON images(path)",

    /* The log outlives the user (user_id SET NULL, user_name kept) but not
     * the user's images: deleting them nulls the references, so the log
     * never points at biometric data that is gone. Indexes on the image
     * columns make those foreign-key checks lookups instead of scans. */
    "CREATE TABLE transactions("
    " id INTEGER PRIMARY KEY,"
    " customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,"
    " user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,"
    " user_name TEXT NOT NULL DEFAULT '',"
    " request_type TEXT NOT NULL,"
    " result TEXT NOT NULL CHECK(result IN ('success','failure')),"
    " score REAL,"
    " original_id TEXT REFERENCES images(id) ON DELETE SET NULL,"
    " thumbnail_id TEXT REFERENCES images(id) ON DELETE SET NULL,"
    " created INTEGER NOT NULL)",
    "CREATE INDEX transactions_customer_created ON transactions(customer_id, created)",
    "CREATE INDEX transactions_user ON transactions(user_id)",
    "CREATE INDEX transactions_original ON transactions(original_id)",
    "CREATE INDEX transactions_thumbnail ON transactions(thumbnail_id)",

    /* Named lists of users that search can be limited to. A membership
     * names a user by id, so a rename keeps it; deleting either side drops
     * it. Both sides belong to one customer: the store resolves user names
     * within the space's customer only. */
    "CREATE TABLE search_spaces("
    " id INTEGER PRIMARY KEY,"
    " customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " created INTEGER NOT NULL,"
    " UNIQUE(customer_id, name))",
    "CREATE TABLE search_space_users("
    " space_id INTEGER NOT NULL REFERENCES search_spaces(id) ON DELETE CASCADE,"
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " PRIMARY KEY(space_id, user_id)) WITHOUT ROWID",
    "CREATE INDEX search_space_users_user ON search_space_users(user_id)",

    /* Image files whose rows are gone but which may still be on disk: a
     * user delete writes them here in its transaction, the caller removes
     * the files and then the rows (fa_store_pending_done). */
    "CREATE TABLE pending_deletes("
    " path TEXT PRIMARY KEY,"
    " created INTEGER NOT NULL)",
    NULL,
};

/* The enrollment page (src/api/enroll_page.c). enroll_issued: when the
 * current enrollment token was drawn, so a link can expire; the triggers
 * keep it in step with every write of the token (user create, face reset),
 * taking the time the writer put in created/updated, so no store code has to
 * remember it. Links that exist at the upgrade count as issued then.
 * enroll_attempts: one row per POST to the page, for its per-hour limit;
 * a new token starts with none. */
static const char *const migration_2[] = {
    "ALTER TABLE users ADD COLUMN enroll_issued INTEGER NOT NULL DEFAULT 0",
    "UPDATE users SET enroll_issued = CAST(strftime('%s','now') AS INTEGER)",
    "CREATE TABLE enroll_attempts("
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " at INTEGER NOT NULL)",
    "CREATE INDEX enroll_attempts_user ON enroll_attempts(user_id, at)",
    "CREATE TRIGGER users_enroll_issued_insert AFTER INSERT ON users BEGIN"
    " UPDATE users SET enroll_issued = NEW.created WHERE id = NEW.id; END",
    "CREATE TRIGGER users_enroll_issued_token AFTER UPDATE OF enroll_token ON users"
    " WHEN NEW.enroll_token IS NOT OLD.enroll_token BEGIN"
    " UPDATE users SET enroll_issued = NEW.updated WHERE id = NEW.id;"
    " DELETE FROM enroll_attempts WHERE user_id = NEW.id; END",
    NULL,
};

/* Templates encrypted at rest (store_seal.c): a sealed blob is 41 bytes
 * longer than the 4 * dim of a clear one, which the CHECK of migration 1
 * refuses, so the table is rebuilt (SQLite cannot alter a CHECK) with a
 * CHECK that takes both: clear rows stay readable until fa_store_open
 * seals them, in the same start. templates_plain indexes the clear rows
 * (none after that), so finding them is a probe, not a scan of every blob. */
static const char *const migration_3[] = {
    "CREATE TABLE templates_sealed("
    " id INTEGER PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " sample INTEGER NOT NULL CHECK(sample > 0),"
    " model_id TEXT NOT NULL,"
    " source TEXT NOT NULL CHECK(source IN ('enroll','learned')),"
    " quality REAL NOT NULL DEFAULT 0,"
    " dim INTEGER NOT NULL CHECK(dim > 0),"
    " embedding BLOB NOT NULL CHECK(length(embedding) IN (4 * dim, 4 * dim + 41)),"
    " created INTEGER NOT NULL)",
    "INSERT INTO templates_sealed(id, user_id, sample, model_id, source, quality, dim,"
    " embedding, created) SELECT id, user_id, sample, model_id, source, quality, dim,"
    " embedding, created FROM templates",
    "DROP TABLE templates",
    "ALTER TABLE templates_sealed RENAME TO templates",
    "CREATE UNIQUE INDEX templates_user_sample ON templates(user_id, sample, model_id)",
    "CREATE INDEX templates_user ON templates(user_id, model_id)",
    "CREATE INDEX templates_plain ON templates(id) WHERE length(embedding) = 4 * dim",
    NULL,
};

/* Photo retention (store_purge.c): the log rows whose images are to be
 * purged some day, while they still have them. Partial, so the periodic
 * purge reads only those rows, however long the log grows; the WHERE
 * terms must stay word for word those of SQL_EXPIRED. */
static const char *const migration_4[] = {
    "CREATE INDEX transactions_photo_expiry ON transactions(created)"
    " WHERE (original_id IS NOT NULL OR thumbnail_id IS NOT NULL)"
    " AND (result = 'failure' OR request_type = 'search')",
    NULL,
};

/*
 * Callbacks (callback.h). cb_secret is the customer's HMAC key for signing
 * callbacks, as hex; "" until `faceauth customer callback-secret` makes one.
 * It is stored as it is, not hashed: the server must read it to sign.
 *
 * callback_events is the outbox: a row is written in the transaction of the
 * log row it reports (state 'held'), gets the exact answer as its body just
 * before that answer is sent ('pending'), and the delivery thread moves it
 * to 'sent', or to 'dead' after the last attempt. next_ms is when the next
 * attempt is due, in Unix milliseconds (retries start under a second).
 */
static const char *const migration_5[] = {
    "ALTER TABLE customers ADD COLUMN cb_secret TEXT NOT NULL DEFAULT ''",
    "CREATE TABLE callback_events("
    " id INTEGER PRIMARY KEY,"
    " event_id TEXT NOT NULL UNIQUE,"
    " customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,"
    " event TEXT NOT NULL,"
    " url TEXT NOT NULL,"
    " body TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK(state IN ('held','pending','sent','dead')),"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_ms INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT NOT NULL DEFAULT '',"
    " created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL)",
    "CREATE INDEX callback_events_due ON callback_events(state, next_ms)",
    "CREATE INDEX callback_events_customer ON callback_events(customer_id, id)",
    NULL,
};

/*
 * Failure throttles (store_throttle.c) and the allowLowPrecision setting.
 * recent: the Unix times of the failures still inside the counting window,
 * oldest first, comma-separated; until: no attempt before this time (a
 * short delay or a lock); locks: locks so far, each one longer. A login row
 * keys on the customerName as the client typed it, which may name no
 * customer: unknown names are throttled alike, so throttling does not tell
 * which names exist. A user's rows go with the user.
 */
static const char *const migration_6[] = {
    "CREATE TABLE login_throttle("
    " customer_name TEXT NOT NULL,"
    " address TEXT NOT NULL,"
    " recent TEXT NOT NULL DEFAULT '',"
    " until INTEGER NOT NULL DEFAULT 0,"
    " locks INTEGER NOT NULL DEFAULT 0,"
    " updated INTEGER NOT NULL,"
    " PRIMARY KEY(customer_name, address)) WITHOUT ROWID",
    "CREATE TABLE user_throttle("
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " kind TEXT NOT NULL CHECK(kind IN ('authenticate','enroll')),"
    " recent TEXT NOT NULL DEFAULT '',"
    " until INTEGER NOT NULL DEFAULT 0,"
    " locks INTEGER NOT NULL DEFAULT 0,"
    " updated INTEGER NOT NULL,"
    " PRIMARY KEY(user_id, kind)) WITHOUT ROWID",
    "ALTER TABLE customers ADD COLUMN allow_low_precision INTEGER NOT NULL DEFAULT 1",
    NULL,
};

/*
 * Several nodes on one database (PostgreSQL) and whatever they share:
 *  - template_seq / template_changes: the change feed of templates
 *    (store_feed.c). seq is one counter row, bumped as the last statement of
 *    every transaction that changes a user's templates; its row lock holds
 *    until COMMIT, so seq order is commit order and a reader that has seen
 *    seq n has seen every change up to n. template_changes keeps one row per
 *    user with its latest seq (a deleted user's row stays, as its tombstone);
 *    no foreign keys, so it outlives the user.
 *  - image_data: the bytes of an image, when images live in the database
 *    rather than in files (they go with the image row).
 *  - secrets: random keys every node must agree on (fa_store_secret).
 */
static const char *const migration_7[] = {
    "CREATE TABLE template_seq("
    " id INTEGER PRIMARY KEY CHECK(id = 1),"
    " seq INTEGER NOT NULL)",
    "INSERT INTO template_seq(id, seq) VALUES(1, 0)",
    "CREATE TABLE template_changes("
    " user_id INTEGER PRIMARY KEY,"
    " customer_id INTEGER NOT NULL,"
    " seq INTEGER NOT NULL)",
    "CREATE INDEX template_changes_seq ON template_changes(seq)",
    "CREATE TABLE image_data("
    " image_id TEXT PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,"
    " customer_id INTEGER NOT NULL,"
    " user_id INTEGER,"
    " bytes BLOB NOT NULL)",
    "CREATE TABLE secrets("
    " name TEXT PRIMARY KEY,"
    " value BLOB NOT NULL)",
    NULL,
};

static const char *const *const migrations[] = {
    migration_1, migration_2, migration_3, migration_4, migration_5, migration_6, migration_7,
};

#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

/* Every migration exists in both dialects. */
_Static_assert(sizeof migrations == FA_STORE_PG_MIGRATIONS * sizeof migrations[0],
               "store_schema_pg.c must have as many migrations as store_schema.c");

static const char SQL_VERSION_TABLE[] =
    "CREATE TABLE IF NOT EXISTS schema_version(version BIGINT NOT NULL)";
static const char SQL_VERSION_GET[] =
    FA_DB_SQL2("PRAGMA user_version", "SELECT COALESCE(MAX(version), 0) FROM schema_version");
static const char SQL_VERSION_ADD[] = "INSERT INTO schema_version(version) VALUES(?1)";

static enum fa_rc schema_version(struct fa_conn *c, int *version, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    enum fa_rc rc = FA_OK;

    if (fa_db_engine_of(c->db) == FA_DB_POSTGRES && fa_db_exec(c->db, SQL_VERSION_TABLE) != FA_DB_OK)
        return fa_store_dberr(c, "schema version", err);
    if (fa_db_prepare(c->db, SQL_VERSION_GET, &s) != FA_DB_OK)
        return fa_store_dberr(c, "schema version", err);
    if (fa_db_step(s) != FA_DB_ROW)
        rc = fa_store_dberr(c, "schema version", err);
    else
        *version = fa_db_column_int(s, 0);
    fa_db_finalize(s);
    return rc;
}

static enum fa_rc version_record(struct fa_conn *c, int v, struct fa_err *err)
{
    struct fa_db_stmt *s = NULL;
    char sql[40];
    enum fa_rc rc;

    if (fa_db_engine_of(c->db) == FA_DB_SQLITE) {
        /* PRAGMA takes no bound parameters; v is our own small integer. */
        snprintf(sql, sizeof sql, "PRAGMA user_version=%d", v);
        if (fa_db_exec(c->db, sql) != FA_DB_OK)
            return fa_store_dberr(c, "migration", err);
        return FA_OK;
    }
    if (fa_db_prepare(c->db, SQL_VERSION_ADD, &s) != FA_DB_OK)
        return fa_store_dberr(c, "migration", err);
    rc = fa_store_run(c, s, fa_db_bind_int(s, 1, v), "migration", err);
    fa_db_finalize(s);
    return rc;
}

/* Run migration number v (1-based) and record it; inside the caller's transaction. */
static enum fa_rc migration_apply(struct fa_conn *c, int v, struct fa_err *err)
{
    const char *const *step = fa_db_engine_of(c->db) == FA_DB_POSTGRES
                                  ? fa_store_pg_migrations[v - 1]
                                  : migrations[v - 1];

    for (; *step != NULL; step++) {
        if (fa_db_exec(c->db, *step) != FA_DB_OK)
            return fa_store_dberr(c, "migration", err);
    }
    return version_record(c, v, err);
}

enum fa_rc fa_store_migrate(struct fa_conn *c, struct fa_err *err)
{
    enum fa_rc rc;
    int v = 0;

    rc = fa_store_tx_begin(c, err);
    if (rc != FA_OK)
        return rc;
    rc = schema_version(c, &v, err);
    if (rc != FA_OK)
        goto out;
    if (v > N_MIGRATIONS) {
        rc = fa_err_set(err, FA_EDB,
                        "database schema version %d is newer than this build knows (%d)", v,
                        N_MIGRATIONS);
        goto out;
    }
    for (; v < N_MIGRATIONS; v++) {
        rc = migration_apply(c, v + 1, err);
        if (rc != FA_OK)
            goto out;
    }
    rc = fa_store_tx_commit(c, err);
out:
    if (rc != FA_OK)
        fa_store_tx_rollback(c);
    return rc;
}
