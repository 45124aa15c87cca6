/*
 * test_config.c — the settings layers (defaults < file < environment) and
 * the one validator they share.
 *
 * The first checks make the shipped config/faceauth.conf, and the file
 * fa_config_write_defaults prints it from, part of the test: each is loaded
 * over a struct whose every field holds a value that is not the default,
 * and the result must equal fa_config_defaults field by field. So the file
 * states every setting, and states it as the code does (the byte-for-byte
 * comparison of the two is the CTest entry config_file).
 *
 * Other files are written into a mkdtemp directory, removed at the end.
 */
#include "faceauth/config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"

#define SHIPPED FA_SOURCE_DIR "/config/faceauth.conf"

static char g_dir[64];
static char g_file[128];

/* Every key the shipped file must set, in the struct's order. */
static const char *const all_keys[] = {
    "listen",
    "port",
    "data_dir",
    "model_dir",
    "public_url",
    "http_threads",
    "engines",
    "max_body_bytes",
    "connection_timeout_s",
    "max_connections",
    "max_connections_per_ip",
    "request_read_timeout_ms",
    "min_body_rate",
    "allowed_hosts",
    "queue_timeout_ms",
    "max_image_bytes",
    "fetch_timeout_ms",
    "max_redirects",
    "allow_private_urls",
    "max_pixels",
    "models",
    "znorm_fr_feature",
    "znorm_mobilefacenet",
    "znorm_dlib",
    "threshold_high",
    "threshold_low",
    "second_face_ratio",
    "min_eye_distance_enroll",
    "min_eye_distance_auth",
    "min_sharpness_enroll",
    "min_sharpness_auth",
    "min_brightness_enroll",
    "min_brightness_auth",
    "max_brightness_enroll",
    "max_brightness_auth",
    "max_yaw_enroll",
    "max_yaw_auth",
    "max_pitch_enroll",
    "max_pitch_auth",
    "max_roll_enroll",
    "max_roll_auth",
    "liveness_min",
    "token_ttl_s",
    "link_ttl_s",
    "thumbnail_size",
    "max_learned_templates",
    "learn_margin",
    "login_hash_concurrency",
    "login_hash_wait_ms",
    "login_fail_limit",
    "login_fail_window_s",
    "login_lock_s",
    "login_max_lock_s",
    "login_fail_delay_s",
    "auth_fail_limit",
    "auth_fail_window_s",
    "auth_lock_s",
    "log_failed_scores",
    "enroll_link_ttl_s",
    "enroll_attempts_per_hour",
    "enroll_page_max_bytes",
    "fetch_request_timeout_ms",
    "max_fetches_per_customer",
    "durable_commits",
    "keep_failed_photos_days",
    "keep_search_photos_days",
    "photo_purge_interval_s",
    "min_free_disk_mb",
    "disk_reserve_mb",
    "callback_connect_timeout_ms",
    "callback_timeout_ms",
    "callback_retry_base_ms",
    "callback_retry_max_ms",
    "callback_max_attempts",
    "callback_parallel",
    "callback_keep_days",
    "metrics_token",
};
#define N_KEYS (sizeof all_keys / sizeof all_keys[0])

/* Write the test file from a format; returns its path. */
static const char *write_conf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *write_conf(const char *fmt, ...)
{
    va_list ap;
    FILE *f = fopen(g_file, "w");
    if (f == NULL)
        return g_file;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
    return g_file;
}

/* A config where every field differs from its default (and strings are
 * terminated), so a key missing from a file shows as a difference. */
static void poison(struct fa_config *c)
{
    memset(c, 0x5A, sizeof *c);
    snprintf(c->listen, sizeof c->listen, "poison");
    snprintf(c->data_dir, sizeof c->data_dir, "poison");
    snprintf(c->model_dir, sizeof c->model_dir, "poison");
    snprintf(c->public_url, sizeof c->public_url, "poison");
    snprintf(c->allowed_hosts, sizeof c->allowed_hosts, "poison");
    snprintf(c->metrics_token, sizeof c->metrics_token, "poison");
    c->allow_private_urls = 7;
    c->durable_commits = 7;
    c->keep_failed_photos_days = c->keep_search_photos_days = -42.5;
    c->second_face_ratio = -42.5;
    c->min_eye_distance_enroll = c->min_eye_distance_auth = c->learn_margin = -42.5;
    c->threshold_high.n = c->threshold_low.n = 0;
    c->models = 0;
}

#define SAME_STR(f)                                                                                \
    tap_ok(strcmp(a->f, b->f) == 0, "shipped file states the default " #f " ('%s' vs '%s')", a->f, \
           b->f)
#define SAME_NUM(f)                                                                                \
    tap_ok(a->f == b->f, "shipped file states the default " #f " (%g vs %g)", (double)a->f,        \
           (double)b->f)
#define SAME_LIST(f)                                                                               \
    tap_ok(a->f.n == b->f.n && memcmp(a->f.v, b->f.v, (size_t)a->f.n * sizeof a->f.v[0]) == 0,     \
           "shipped file states the default " #f " (%d vs %d values)", a->f.n, b->f.n)

static void compare_all(const struct fa_config *a, const struct fa_config *b)
{
    SAME_STR(listen);
    SAME_NUM(port);
    SAME_STR(data_dir);
    SAME_STR(model_dir);
    SAME_STR(public_url);
    SAME_NUM(http_threads);
    SAME_NUM(engines);
    SAME_NUM(max_body_bytes);
    SAME_NUM(connection_timeout_s);
    SAME_NUM(max_connections);
    SAME_NUM(max_connections_per_ip);
    SAME_NUM(request_read_timeout_ms);
    SAME_NUM(min_body_rate);
    SAME_STR(allowed_hosts);
    SAME_NUM(queue_timeout_ms);
    SAME_NUM(max_image_bytes);
    SAME_NUM(fetch_timeout_ms);
    SAME_NUM(max_redirects);
    SAME_NUM(allow_private_urls);
    SAME_NUM(max_pixels);
    SAME_NUM(models);
    tap_ok(memcmp(a->znorm, b->znorm, sizeof a->znorm) == 0,
           "shipped file states the default znorm_* of every model");
    SAME_LIST(threshold_high);
    SAME_LIST(threshold_low);
    SAME_NUM(second_face_ratio);
    SAME_NUM(min_eye_distance_enroll);
    SAME_NUM(min_eye_distance_auth);
    SAME_NUM(min_sharpness_enroll);
    SAME_NUM(min_sharpness_auth);
    SAME_NUM(min_brightness_enroll);
    SAME_NUM(min_brightness_auth);
    SAME_NUM(max_brightness_enroll);
    SAME_NUM(max_brightness_auth);
    SAME_NUM(max_yaw_enroll);
    SAME_NUM(max_yaw_auth);
    SAME_NUM(max_pitch_enroll);
    SAME_NUM(max_pitch_auth);
    SAME_NUM(max_roll_enroll);
    SAME_NUM(max_roll_auth);
    SAME_NUM(liveness_min);
    SAME_NUM(token_ttl_s);
    SAME_NUM(link_ttl_s);
    SAME_NUM(thumbnail_size);
    SAME_NUM(max_learned_templates);
    SAME_NUM(learn_margin);
    SAME_NUM(login_hash_concurrency);
    SAME_NUM(login_hash_wait_ms);
    SAME_NUM(login_fail_limit);
    SAME_NUM(login_fail_window_s);
    SAME_NUM(login_lock_s);
    SAME_NUM(login_max_lock_s);
    SAME_NUM(login_fail_delay_s);
    SAME_NUM(auth_fail_limit);
    SAME_NUM(auth_fail_window_s);
    SAME_NUM(auth_lock_s);
    SAME_NUM(log_failed_scores);
    SAME_NUM(enroll_link_ttl_s);
    SAME_NUM(enroll_attempts_per_hour);
    SAME_NUM(enroll_page_max_bytes);
    SAME_NUM(fetch_request_timeout_ms);
    SAME_NUM(max_fetches_per_customer);
    SAME_NUM(durable_commits);
    SAME_NUM(keep_failed_photos_days);
    SAME_NUM(keep_search_photos_days);
    SAME_NUM(photo_purge_interval_s);
    SAME_NUM(min_free_disk_mb);
    SAME_NUM(disk_reserve_mb);
    SAME_STR(metrics_token);
}

/* How many `key = value` lines the file has, and whether each of all_keys
 * is set exactly once (a key the test does not know makes the count differ). */
static void count_settings(const char *path, size_t *n_lines, int *each_once)
{
    char line[1024];
    int seen[N_KEYS] = {0};
    FILE *f = fopen(path, "r");
    *n_lines = 0;
    *each_once = 1;
    if (f == NULL) {
        *each_once = 0;
        return;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        char key[64];
        if (line[0] == '#' || sscanf(line, " %63[a-z_] =", key) != 1)
            continue;
        (*n_lines)++;
        for (size_t i = 0; i < N_KEYS; i++)
            if (strcmp(key, all_keys[i]) == 0)
                seen[i]++;
    }
    fclose(f);
    for (size_t i = 0; i < N_KEYS; i++) {
        if (seen[i] != 1) {
            tap_diag("%s is set %d times in %s", all_keys[i], seen[i], path);
            *each_once = 0;
        }
    }
}

static void test_shipped_file(void)
{
    struct fa_config def, loaded;
    struct fa_err err = {{0}};
    size_t n_lines;
    int each_once;

    fa_config_defaults(&def);
    poison(&loaded);
    if (!tap_ok(fa_config_load_file(&loaded, SHIPPED, &err) == FA_OK, "load %s: %s", SHIPPED,
                err.msg))
        return;
    compare_all(&loaded, &def);
    count_settings(SHIPPED, &n_lines, &each_once);
    tap_ok(n_lines == N_KEYS && each_once,
           "the shipped file sets each of the %zu keys once (%zu settings)", N_KEYS, n_lines);
    /* The poison itself must differ, or the comparison above proves nothing. */
    poison(&loaded);
    tap_ok(loaded.port != def.port && loaded.max_body_bytes != def.max_body_bytes &&
               loaded.allow_private_urls != def.allow_private_urls &&
               strcmp(loaded.public_url, def.public_url) != 0,
           "the poisoned struct really differs from the defaults");
}

/*
 * The file fa_config_write_defaults prints (config/faceauth.conf is that
 * output; CTest config_file compares them) reads back as the defaults, sets
 * every key once and says what values each key takes.
 */
static void test_written_defaults(void)
{
    struct fa_config def, loaded;
    struct fa_err err = {{0}};
    size_t n_lines;
    int each_once;
    char text[64 * 1024];
    size_t n;
    FILE *f = fopen(g_file, "w+");
    if (!tap_ok(f != NULL, "open %s", g_file))
        return;
    tap_ok(fa_config_write_defaults(f, &err) == FA_OK, "write the defaults: %s", err.msg);
    rewind(f);
    n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    fa_config_defaults(&def);
    poison(&loaded);
    if (!tap_ok(fa_config_load_file(&loaded, g_file, &err) == FA_OK,
                "every written default is inside its own range: %s", err.msg))
        return;
    compare_all(&loaded, &def);
    count_settings(g_file, &n_lines, &each_once);
    tap_ok(n_lines == N_KEYS && each_once, "the written file sets each of the %zu keys once",
           N_KEYS);
    tap_ok(strstr(text, "\n# port: a whole number, 0..65535\nport = 8080\n") != NULL &&
               strstr(text, "\n# allow_private_urls: yes or no\nallow_private_urls = no\n") &&
               strstr(text, "\n# learn_margin: a number, 0..100\n") &&
               strstr(text, "\n# metrics_token: text, at most 127 characters\nmetrics_token =\n"),
           "each key is preceded by what it takes");
}

/* Load text over the defaults; the rc, with the message in err. */
static enum fa_rc load_text(struct fa_config *cfg, struct fa_err *err, const char *text)
{
    fa_config_defaults(cfg);
    memset(err, 0, sizeof *err);
    write_conf("%s", text);
    return fa_config_load_file(cfg, g_file, err);
}

static int has(const struct fa_err *err, const char *what)
{
    return strstr(err->msg, what) != NULL;
}

static void test_errors(void)
{
    struct fa_config c;
    struct fa_err err;
    enum fa_rc rc;

    rc = load_text(&c, &err, "# comment\n\nport = 9000\nbogus_key = 3\n");
    tap_ok(rc == FA_EINVAL && has(&err, g_file) && has(&err, ":4:") && has(&err, "bogus_key"),
           "unknown key: FA_EINVAL naming file, line and key: %s", err.msg);

    rc = load_text(&c, &err, "port = abc\n");
    tap_ok(rc == FA_EINVAL && has(&err, ":1:") && has(&err, "port") && has(&err, "abc"),
           "not a number: %s", err.msg);
    rc = load_text(&c, &err, "port = 80x\n");
    tap_ok(rc == FA_EINVAL, "trailing junk after a number: %s", err.msg);
    rc = load_text(&c, &err, "port =\n");
    tap_ok(rc == FA_EINVAL, "empty number: %s", err.msg);
    rc = load_text(&c, &err, "\n\nport = 70000\n");
    tap_ok(rc == FA_EINVAL && has(&err, ":3:") && has(&err, "port"), "port above 65535: %s",
           err.msg);
    rc = load_text(&c, &err, "port = -1\n");
    tap_ok(rc == FA_EINVAL, "negative port: %s", err.msg);
    rc = load_text(&c, &err, "max_body_bytes = 1000\n");
    tap_ok(rc == FA_EINVAL && has(&err, "max_body_bytes"), "max_body_bytes below 1024: %s",
           err.msg);
    rc = load_text(&c, &err, "threshold_high = 150\n");
    tap_ok(rc == FA_EINVAL && has(&err, "threshold_high"), "threshold above 100: %s", err.msg);
    rc = load_text(&c, &err, "threshold_low = nan\n");
    tap_ok(rc == FA_EINVAL, "NaN refused: %s", err.msg);
    rc = load_text(&c, &err, "max_pixels = inf\n");
    tap_ok(rc == FA_EINVAL, "infinity refused: %s", err.msg);
    rc = load_text(&c, &err, "port = 8080.5\n");
    tap_ok(rc == FA_EINVAL && has(&err, "port") && c.port == 8080,
           "non-integer for an int key refused, value kept: %s", err.msg);
    rc = load_text(&c, &err, "token_ttl_s = 1.25\n");
    tap_ok(rc == FA_EINVAL, "non-integer for a long key: %s", err.msg);
    rc = load_text(&c, &err, "allow_private_urls = maybe\n");
    tap_ok(rc == FA_EINVAL && has(&err, "allow_private_urls") && has(&err, "maybe"), "bad bool: %s",
           err.msg);
    rc = load_text(&c, &err, "allow_private_urls = 2\n");
    tap_ok(rc == FA_EINVAL, "2 is not a bool: %s", err.msg);
    rc = load_text(&c, &err, "port 9000\n");
    tap_ok(rc == FA_EINVAL && has(&err, ":1:"), "a line without '=': %s", err.msg);
    rc = load_text(&c, &err, "Port = 9000\n");
    tap_ok(rc == FA_EINVAL && has(&err, "Port"), "keys are case-sensitive: %s", err.msg);

    memset(&err, 0, sizeof err);
    tap_ok(fa_config_load_file(&c, "/nonexistent/faceauth.conf", &err) == FA_ENOTFOUND &&
               has(&err, "/nonexistent/faceauth.conf"),
           "a missing file is FA_ENOTFOUND naming it: %s", err.msg);
    tap_ok(fa_config_set(&c, "nope", "1", NULL) == FA_EINVAL, "err may be NULL");
}

static void test_values(void)
{
    struct fa_config c;
    struct fa_err err;
    enum fa_rc rc;

    rc = load_text(&c, &err,
                   "# a comment\n"
                   "\n"
                   "   # an indented comment = with an equals sign\n"
                   "\t \n"
                   "  port   =   9001  \n"
                   "max_redirects=5\n"
                   "data_dir = /var/lib/face auth\n"
                   "public_url = http://x.example/a=b\n"
                   "threshold_high = 0.5\n"
                   "max_body_bytes = 2048\n"
                   "fetch_timeout_ms = 1e3\n"
                   "allow_private_urls = YES\n");
    tap_ok(rc == FA_OK, "comments, blank lines and spaces: %s", err.msg);
    tap_ok(c.port == 9001 && c.max_redirects == 5, "spaces around key and value are trimmed");
    tap_ok(strcmp(c.data_dir, "/var/lib/face auth") == 0, "inner spaces stay: '%s'", c.data_dir);
    tap_ok(strcmp(c.public_url, "http://x.example/a=b") == 0,
           "the value is everything after the first '=': '%s'", c.public_url);
    TAP_OK(c.threshold_high.n == 1 && c.threshold_high.v[0] == 0.5 && c.max_body_bytes == 2048 &&
           c.fetch_timeout_ms == 1000);
    TAP_OK(c.allow_private_urls == 1);
    tap_ok(c.threshold_low.n == 15 && c.threshold_low.v[0] == 2.752 && c.thumbnail_size == 192,
           "keys not in the file keep defaults");

    static const char *const yes[] = {"1", "yes", "True", "ON"};
    static const char *const no[] = {"0", "No", "false", "off"};
    int bools_ok = 1;
    for (int i = 0; i < 4; i++) {
        c.allow_private_urls = 0;
        bools_ok &= fa_config_set(&c, "allow_private_urls", yes[i], NULL) == FA_OK &&
                    c.allow_private_urls == 1;
        bools_ok &= fa_config_set(&c, "allow_private_urls", no[i], NULL) == FA_OK &&
                    c.allow_private_urls == 0;
    }
    tap_ok(bools_ok, "booleans: 1/yes/true/on and 0/no/false/off, any case");

    /* Bounds are inclusive. */
    TAP_OK(fa_config_set(&c, "port", "65535", NULL) == FA_OK && c.port == 65535);
    TAP_OK(fa_config_set(&c, "port", "0", NULL) == FA_OK && c.port == 0);
    TAP_OK(fa_config_set(&c, "threshold_low", "-100", NULL) == FA_OK && c.threshold_low.n == 1 &&
           c.threshold_low.v[0] == -100);
    TAP_OK(fa_config_set(&c, "max_body_bytes", "1024", NULL) == FA_OK && c.max_body_bytes == 1024);
    TAP_OK(fa_config_set(&c, "max_body_bytes", "1000000001", NULL) == FA_EINVAL);
    /* Abuse limits: a per-IP limit of 0 means none; no limit on all
     * connections and no read deadline are not offered. */
    TAP_OK(fa_config_set(&c, "max_connections_per_ip", "0", NULL) == FA_OK &&
           c.max_connections_per_ip == 0);
    TAP_OK(fa_config_set(&c, "max_connections", "0", NULL) == FA_EINVAL);
    TAP_OK(fa_config_set(&c, "request_read_timeout_ms", "99", NULL) == FA_EINVAL);
    TAP_OK(fa_config_set(&c, "min_body_rate", "0", NULL) == FA_OK && c.min_body_rate == 0);
    TAP_OK(fa_config_set(&c, "allowed_hosts", "a.example, b.example:8443", NULL) == FA_OK &&
           strcmp(c.allowed_hosts, "a.example, b.example:8443") == 0);
}

static void test_strings(void)
{
    struct fa_config c;
    struct fa_err err = {{0}};
    char longest[sizeof c.listen];
    char too_long[sizeof c.listen + 1];
    char path_too_long[FA_CFG_PATH_MAX + 1];

    fa_config_defaults(&c);
    memset(longest, 'a', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    memset(too_long, 'b', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    TAP_OK(fa_config_set(&c, "listen", longest, &err) == FA_OK && strcmp(c.listen, longest) == 0);
    fa_config_defaults(&c);
    tap_ok(fa_config_set(&c, "listen", too_long, &err) == FA_EINVAL && has(&err, "listen") &&
               strcmp(c.listen, "0.0.0.0") == 0,
           "a string longer than its buffer is refused, the old value kept: %s", err.msg);
    memset(path_too_long, 'p', sizeof path_too_long - 1);
    path_too_long[sizeof path_too_long - 1] = '\0';
    tap_ok(fa_config_set(&c, "data_dir", path_too_long, &err) == FA_EINVAL &&
               strcmp(c.data_dir, "data") == 0,
           "data_dir of %d characters refused: %s", FA_CFG_PATH_MAX, err.msg);
    tap_ok(load_text(&c, &err, "public_url =\n") == FA_OK && c.public_url[0] == '\0',
           "an empty string value is allowed");
}

/* fgets reads a line in pieces when it is longer than its buffer: the rest
 * of a long comment must not be parsed as a setting, nor shift line numbers. */
static void test_long_lines(void)
{
    struct fa_config c;
    struct fa_err err = {{0}};
    char *text = malloc(8000);
    enum fa_rc rc;
    size_t n;

    if (text == NULL)
        return;
    memcpy(text, "# ", 2);
    memset(text + 2, 'x', 3000);
    n = 3002;
    n += (size_t)snprintf(text + n, 8000 - n, " port = 1\nport = 9002\n");
    text[n] = '\0';
    rc = load_text(&c, &err, text);
    tap_ok(rc == FA_OK && c.port == 9002, "a 3000-character comment is one comment: %s", err.msg);

    n = 3002;
    snprintf(text + n, 8000 - n, "\nbogus = 1\n");
    rc = load_text(&c, &err, text);
    tap_ok(rc == FA_EINVAL && has(&err, ":2:") && has(&err, "bogus"),
           "line numbers count lines after it: %s", err.msg);

    /* A setting too long for the buffer is refused, never read in pieces. */
    memcpy(text, "port = ", 7);
    memset(text + 7, '0', 3000);
    snprintf(text + 3007, 8000 - 3007, "9003\n");
    rc = load_text(&c, &err, text);
    tap_ok(rc == FA_EINVAL && has(&err, ":1:") && c.port == 8080,
           "an over-long setting is refused: %s", err.msg);
    free(text);
}

static void test_env(void)
{
    struct fa_config c;
    struct fa_err err = {{0}};

    load_text(&c, &err, "port = 8081\nmax_body_bytes = 4096\n");
    setenv("FACEAUTH_PORT", "9123", 1);
    setenv("FACEAUTH_MAX_BODY_BYTES", "2048", 1);
    setenv("FACEAUTH_ALLOW_PRIVATE_URLS", "yes", 1);
    setenv("FACEAUTH_BOGUS", "1", 1); /* not a key: ignored */
    tap_ok(fa_config_load_env(&c, &err) == FA_OK, "env loads: %s", err.msg);
    tap_ok(c.port == 9123, "FACEAUTH_PORT=9123 wins over the file (%d)", c.port);
    tap_ok(c.max_body_bytes == 2048, "FACEAUTH_MAX_BODY_BYTES: keys with underscores (%zu)",
           c.max_body_bytes);
    TAP_OK(c.allow_private_urls == 1);
    tap_ok(c.connection_timeout_s == 30, "keys without a variable are untouched");

    setenv("FACEAUTH_PORT", "http", 1);
    memset(&err, 0, sizeof err);
    tap_ok(fa_config_load_env(&c, &err) == FA_EINVAL && has(&err, "port") && has(&err, "http"),
           "a bad environment value is FA_EINVAL naming it: %s", err.msg);
    unsetenv("FACEAUTH_PORT");
    unsetenv("FACEAUTH_MAX_BODY_BYTES");
    unsetenv("FACEAUTH_ALLOW_PRIVATE_URLS");
    unsetenv("FACEAUTH_BOGUS");
}

static void test_finish(void)
{
    struct fa_config c;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    if (cores < 1)
        cores = 1;
    fa_config_defaults(&c);
    tap_ok(c.engines == 0 && c.http_threads == 0, "defaults leave threads automatic (0)");
    fa_config_finish(&c);
    tap_ok(c.engines == cores, "engines = cores (%d, %ld cores)", c.engines, cores);
    tap_ok(c.http_threads == 4 * cores, "http_threads = 4 x cores (%d)", c.http_threads);
    tap_ok(c.max_fetches_per_customer == c.http_threads / 2,
           "max_fetches_per_customer = half the HTTP threads (%d)", c.max_fetches_per_customer);

    c.engines = 3;
    c.http_threads = 5;
    c.max_fetches_per_customer = 4;
    fa_config_finish(&c);
    tap_ok(c.engines == 3 && c.http_threads == 5 && c.max_fetches_per_customer == 4,
           "explicit values are kept");
    c.http_threads = 1;
    c.max_fetches_per_customer = 0;
    fa_config_finish(&c);
    tap_ok(c.max_fetches_per_customer == 1, "one HTTP thread still allows one download");
}

/* List settings: the precision thresholds by photo count, the fused
 * models and each model's z-normalisation. */
static void test_lists(void)
{
    struct fa_config c;
    struct fa_err err;
    enum fa_rc rc;

    rc = load_text(&c, &err, "threshold_high = 4.0, 4.2 ,4.5\n");
    tap_ok(rc == FA_OK && c.threshold_high.n == 3 && c.threshold_high.v[0] == 4.0 &&
               c.threshold_high.v[1] == 4.2 && c.threshold_high.v[2] == 4.5,
           "a list of three, spaces around commas: %s", err.msg);
    TAP_OK(fa_cfg_list_at(&c.threshold_high, 1) == 4.0);
    TAP_OK(fa_cfg_list_at(&c.threshold_high, 2) == 4.2);
    TAP_OK(fa_cfg_list_at(&c.threshold_high, 3) == 4.5);
    tap_ok(fa_cfg_list_at(&c.threshold_high, 4) == 4.5 &&
               fa_cfg_list_at(&c.threshold_high, 15) == 4.5,
           "counts beyond the list take its last value");
    tap_ok(fa_cfg_list_at(&c.threshold_high, 0) == 4.0, "count 0 takes the first value");
    rc = load_text(&c, &err, "threshold_low = 3.25\n");
    tap_ok(rc == FA_OK && c.threshold_low.n == 1 && fa_cfg_list_at(&c.threshold_low, 7) == 3.25,
           "a single value still works, for every count");

    static const char *const bad[] = {"", "3.1,", ",3.1", "3.1,,3.2", "3.1,abc", "3.1 3.2",
                                      "3.1,200"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char line[64];
        snprintf(line, sizeof line, "threshold_low = %s\n", bad[i]);
        rc = load_text(&c, &err, line);
        tap_ok(rc == FA_EINVAL && has(&err, "threshold_low") && c.threshold_low.n == 15,
               "threshold_low = '%s' refused, default kept: %s", bad[i], err.msg);
    }
    rc = load_text(&c, &err,
                   "threshold_high = 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16\n");
    tap_ok(rc == FA_OK && c.threshold_high.n == FA_CFG_LIST_MAX, "16 values fit: %s", err.msg);
    rc = load_text(&c, &err,
                   "threshold_high = 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17\n");
    tap_ok(rc == FA_EINVAL && has(&err, "more than"), "17 values refused: %s", err.msg);

    rc = load_text(&c, &err, "models = dlib, fr_feature\n");
    tap_ok(rc == FA_OK && c.models == (FA_MODEL_BIT(FA_MODEL_DLIB) |
                                       FA_MODEL_BIT(FA_MODEL_ARCFACE)),
           "models: a subset, any order: %s", err.msg);
    rc = load_text(&c, &err, "models = mobilefacenet-1\n");
    tap_ok(rc == FA_OK && c.models == FA_MODEL_BIT(FA_MODEL_MFN), "models by id: %s", err.msg);
    rc = load_text(&c, &err, "models = dlib,facenet\n");
    tap_ok(rc == FA_EINVAL && has(&err, "models") && has(&err, "facenet") &&
               c.models == FA_MODELS_ALL,
           "an unknown model is refused, naming it: %s", err.msg);
    rc = load_text(&c, &err, "models = dlib,dlib\n");
    tap_ok(rc == FA_EINVAL && has(&err, "twice"), "a model named twice: %s", err.msg);
    rc = load_text(&c, &err, "models = ,\n");
    tap_ok(rc == FA_EINVAL && has(&err, "at least one"), "no model: %s", err.msg);

    rc = load_text(&c, &err, "znorm_dlib = 0.8,0.04\n");
    tap_ok(rc == FA_OK && c.znorm[FA_MODEL_DLIB][0] == 0.8 && c.znorm[FA_MODEL_DLIB][1] == 0.04 &&
               c.znorm[FA_MODEL_ARCFACE][0] == 0.00849,
           "znorm_dlib = mean,sd sets that model only: %s", err.msg);
    rc = load_text(&c, &err, "znorm_fr_feature = 0.01,0\n");
    tap_ok(rc == FA_EINVAL && has(&err, "sd > 0"), "sd 0 refused: %s", err.msg);
    rc = load_text(&c, &err, "znorm_fr_feature = 0.01\n");
    tap_ok(rc == FA_EINVAL && has(&err, "znorm_fr_feature"), "one number refused: %s", err.msg);
    rc = load_text(&c, &err, "znorm_fr_feature = 0.01,0.1,0.2\n");
    tap_ok(rc == FA_EINVAL, "three numbers refused: %s", err.msg);
    setenv("FACEAUTH_THRESHOLD_HIGH", "5,6", 1);
    fa_config_defaults(&c);
    rc = fa_config_load_env(&c, &err);
    unsetenv("FACEAUTH_THRESHOLD_HIGH");
    tap_ok(rc == FA_OK && c.threshold_high.n == 2 && fa_cfg_list_at(&c.threshold_high, 9) == 6,
           "a list from the environment");
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/fa_config_XXXXXX");
    if (!tap_ok(mkdtemp(g_dir) != NULL, "temporary directory"))
        return tap_done();
    snprintf(g_file, sizeof g_file, "%s/test.conf", g_dir);

    test_shipped_file();
    test_written_defaults();
    test_errors();
    test_values();
    test_strings();
    test_lists();
    test_long_lines();
    test_env();
    test_finish();

    unlink(g_file);
    rmdir(g_dir);
    return tap_done();
}
