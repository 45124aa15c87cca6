/*
 * config.c — defaults < file < environment < flags (see config.h).
 *
 * One table describes every key: its type, where it lives in struct
 * fa_config and its allowed range, so the file parser, the environment
 * reader and the flags share a single validator and cannot drift apart.
 */
#include "faceauth/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * K_LIST: struct fa_cfg_list, 1..FA_CFG_LIST_MAX numbers in [min, max].
 * K_ZNORM: double[2], "mean,sd": mean in [min, max], sd in (0, max].
 * K_MODELS: unsigned mask of FA_MODEL_BIT()s from model names.
 */
enum key_type { K_STR, K_INT, K_LONG, K_SIZE, K_DOUBLE, K_BOOL, K_LIST, K_ZNORM, K_MODELS };

struct key_def {
    const char *name;
    enum key_type type;
    size_t offset;
    size_t size;   /* K_STR: buffer size */
    double min, max;
};

#define OFF(f) offsetof(struct fa_config, f)
#define STR(f) K_STR, OFF(f), sizeof(((struct fa_config *)0)->f), 0, 0
#define GATE(key, f, lo, hi) {key, K_DOUBLE, OFF(f), 0, lo, hi}

/* The znorm_<name> keys below follow the model table of vision.h. */
_Static_assert(FA_N_MODELS == 3, "add a znorm_ key for the new model");

static const struct key_def keys[] = {
    {"listen", STR(listen)},
    {"port", K_INT, OFF(port), 0, 0, 65535},
    {"data_dir", STR(data_dir)},
    {"database", STR(database)},
    {"model_dir", STR(model_dir)},
    {"public_url", STR(public_url)},
    {"http_threads", K_INT, OFF(http_threads), 0, 0, 1024},
    {"engines", K_INT, OFF(engines), 0, 0, 256},
    {"max_body_bytes", K_SIZE, OFF(max_body_bytes), 0, 1024, 1e9},
    {"connection_timeout_s", K_INT, OFF(connection_timeout_s), 0, 1, 3600},
    {"max_connections", K_INT, OFF(max_connections), 0, 1, 1000000},
    {"max_connections_per_ip", K_INT, OFF(max_connections_per_ip), 0, 0, 1000000},
    {"request_read_timeout_ms", K_LONG, OFF(request_read_timeout_ms), 0, 100, 3600000},
    {"min_body_rate", K_LONG, OFF(min_body_rate), 0, 0, 1e9},
    {"allowed_hosts", STR(allowed_hosts)},
    {"queue_timeout_ms", K_INT, OFF(queue_timeout_ms), 0, 1, 600000},
    {"max_image_bytes", K_SIZE, OFF(max_image_bytes), 0, 1024, 1e9},
    {"fetch_timeout_ms", K_LONG, OFF(fetch_timeout_ms), 0, 100, 600000},
    {"max_redirects", K_INT, OFF(max_redirects), 0, 0, 20},
    {"allow_private_urls", K_BOOL, OFF(allow_private_urls), 0, 0, 1},
    {"max_pixels", K_LONG, OFF(max_pixels), 0, 10000, 1e9},
    {"models", K_MODELS, OFF(models), 0, 0, 0},
    {"znorm_fr_feature", K_ZNORM, OFF(znorm[FA_MODEL_ARCFACE]), 0, -1, 1},
    {"znorm_mobilefacenet", K_ZNORM, OFF(znorm[FA_MODEL_MFN]), 0, -1, 1},
    {"znorm_dlib", K_ZNORM, OFF(znorm[FA_MODEL_DLIB]), 0, -1, 1},
    {"threshold_high", K_LIST, OFF(threshold_high), 0, -100, 100},
    {"threshold_low", K_LIST, OFF(threshold_low), 0, -100, 100},
    {"second_face_ratio", K_DOUBLE, OFF(second_face_ratio), 0, 0, 1},
    {"min_eye_distance_enroll", K_DOUBLE, OFF(min_eye_distance_enroll), 0, 0, 10000},
    {"min_eye_distance_auth", K_DOUBLE, OFF(min_eye_distance_auth), 0, 0, 10000},
    GATE("min_sharpness_enroll", min_sharpness_enroll, 0, 1e6),
    GATE("min_sharpness_auth", min_sharpness_auth, 0, 1e6),
    GATE("min_brightness_enroll", min_brightness_enroll, 0, 255),
    GATE("min_brightness_auth", min_brightness_auth, 0, 255),
    GATE("max_brightness_enroll", max_brightness_enroll, 0, 255),
    GATE("max_brightness_auth", max_brightness_auth, 0, 255),
    GATE("max_yaw_enroll", max_yaw_enroll, 0, 180),
    GATE("max_yaw_auth", max_yaw_auth, 0, 180),
    GATE("max_pitch_enroll", max_pitch_enroll, 0, 180),
    GATE("max_pitch_auth", max_pitch_auth, 0, 180),
    GATE("max_roll_enroll", max_roll_enroll, 0, 180),
    GATE("max_roll_auth", max_roll_auth, 0, 180),
    {"liveness_min", K_DOUBLE, OFF(liveness_min), 0, 0, 1},
    {"token_ttl_s", K_LONG, OFF(token_ttl_s), 0, 1, 1e9},
    {"link_ttl_s", K_LONG, OFF(link_ttl_s), 0, 1, 1e9},
    {"thumbnail_size", K_INT, OFF(thumbnail_size), 0, 32, 1024},
    {"max_learned_templates", K_INT, OFF(max_learned_templates), 0, 0, 100},
    {"learn_margin", K_DOUBLE, OFF(learn_margin), 0, 0, 100},
    {"login_hash_concurrency", K_INT, OFF(login_hash_concurrency), 0, 0, 256},
    {"login_hash_wait_ms", K_INT, OFF(login_hash_wait_ms), 0, 0, 60000},
    {"login_fail_limit", K_INT, OFF(login_fail_limit), 0, 0, 100},
    {"login_fail_window_s", K_LONG, OFF(login_fail_window_s), 0, 1, 1e7},
    {"login_lock_s", K_LONG, OFF(login_lock_s), 0, 1, 1e7},
    {"login_max_lock_s", K_LONG, OFF(login_max_lock_s), 0, 1, 1e7},
    {"login_fail_delay_s", K_LONG, OFF(login_fail_delay_s), 0, 0, 3600},
    {"auth_fail_limit", K_INT, OFF(auth_fail_limit), 0, 0, 100},
    {"auth_fail_window_s", K_LONG, OFF(auth_fail_window_s), 0, 1, 1e7},
    {"auth_lock_s", K_LONG, OFF(auth_lock_s), 0, 1, 1e7},
    {"log_failed_scores", K_BOOL, OFF(log_failed_scores), 0, 0, 1},
    {"enroll_link_ttl_s", K_LONG, OFF(enroll_link_ttl_s), 0, 1, 1e9},
    {"enroll_attempts_per_hour", K_INT, OFF(enroll_attempts_per_hour), 0, 1, 100000},
    {"enroll_page_max_bytes", K_SIZE, OFF(enroll_page_max_bytes), 0, 1024, 1e9},
    {"fetch_request_timeout_ms", K_LONG, OFF(fetch_request_timeout_ms), 0, 100, 600000},
    {"max_fetches_per_customer", K_INT, OFF(max_fetches_per_customer), 0, 0, 1024},
    {"durable_commits", K_BOOL, OFF(durable_commits), 0, 0, 1},
    {"keep_failed_photos_days", K_DOUBLE, OFF(keep_failed_photos_days), 0, 0, 36500},
    {"keep_search_photos_days", K_DOUBLE, OFF(keep_search_photos_days), 0, 0, 36500},
    {"photo_purge_interval_s", K_INT, OFF(photo_purge_interval_s), 0, 1, 86400},
    {"min_free_disk_mb", K_LONG, OFF(min_free_disk_mb), 0, 0, 1e7},
    {"disk_reserve_mb", K_INT, OFF(disk_reserve_mb), 0, 0, 4096},
    {"callback_connect_timeout_ms", K_LONG, OFF(callback_connect_timeout_ms), 0, 100, 60000},
    {"callback_timeout_ms", K_LONG, OFF(callback_timeout_ms), 0, 100, 120000},
    {"callback_retry_base_ms", K_LONG, OFF(callback_retry_base_ms), 0, 10, 3600000},
    {"callback_retry_max_ms", K_LONG, OFF(callback_retry_max_ms), 0, 10, 86400000},
    {"callback_max_attempts", K_INT, OFF(callback_max_attempts), 0, 1, 100},
    {"callback_parallel", K_INT, OFF(callback_parallel), 0, 1, 64},
    {"callback_keep_days", K_INT, OFF(callback_keep_days), 0, 1, 3650},
    {"metrics_token", STR(metrics_token)},
};

/*
 * Precision thresholds in fused z units, by the user's photo count k, and
 * the z-normalisation below: calibrated by bench/accuracy on lfw-dev
 * (docs/accuracy.md; keep config/faceauth.conf equal). Each value is the
 * FMR 1e-4 (high) or 1e-3 (low) quantile of best-of-k impostor scores.
 * 15 = 5 enrolled + 10 learned photos, the most a user can have at the
 * default settings.
 */
static const double DEFAULT_HIGH[] = {3.297, 3.413, 3.491, 3.542, 3.587, 3.613, 3.627, 3.666,
                                      3.695, 3.737, 3.757, 3.757, 3.778, 3.778, 3.778};
static const double DEFAULT_LOW[] = {2.752, 2.891, 2.966, 3.012, 3.050, 3.082, 3.106, 3.148,
                                     3.173, 3.196, 3.216, 3.223, 3.240, 3.256, 3.257};

static void set_list(struct fa_cfg_list *l, const double *v, size_t n)
{
    l->n = (int)n;
    memcpy(l->v, v, n * sizeof *v);
}

static void set_znorm(struct fa_config *cfg, enum fa_model m, double mean, double sd)
{
    cfg->znorm[m][0] = mean;
    cfg->znorm[m][1] = sd;
}

void fa_config_defaults(struct fa_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->listen, sizeof cfg->listen, "0.0.0.0");
    cfg->port = 8080;
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "data");
    snprintf(cfg->model_dir, sizeof cfg->model_dir, "models");
    cfg->max_body_bytes = 16u << 20; /* a 10 MB image as base64 is 13.4 MB */
    cfg->connection_timeout_s = 30;
    cfg->max_connections = 1000;
    cfg->max_connections_per_ip = 32;
    cfg->request_read_timeout_ms = 30000;
    cfg->min_body_rate = 8192;
    snprintf(cfg->allowed_hosts, sizeof cfg->allowed_hosts, "localhost");
    cfg->queue_timeout_ms = 15000;
    cfg->max_image_bytes = 10u << 20;
    cfg->fetch_timeout_ms = 10000;
    cfg->max_redirects = 3;
    cfg->max_pixels = 40000000;
    cfg->models = FA_MODELS_ALL;
    /* impostor mean, impostor sd / (3 x fusion weight): see faceauth.conf */
    set_znorm(cfg, FA_MODEL_ARCFACE, 0.00849, 0.11329);
    set_znorm(cfg, FA_MODEL_MFN, 0.01109, 0.11258);
    set_znorm(cfg, FA_MODEL_DLIB, 0.83589, 0.03984);
    set_list(&cfg->threshold_high, DEFAULT_HIGH, sizeof DEFAULT_HIGH / sizeof DEFAULT_HIGH[0]);
    set_list(&cfg->threshold_low, DEFAULT_LOW, sizeof DEFAULT_LOW / sizeof DEFAULT_LOW[0]);
    cfg->second_face_ratio = 0.8;
    cfg->min_eye_distance_enroll = 20;
    cfg->min_eye_distance_auth = 15;
    cfg->min_sharpness_enroll = 25;
    cfg->min_sharpness_auth = 15;
    cfg->min_brightness_enroll = 50;
    cfg->min_brightness_auth = 35;
    cfg->max_brightness_enroll = 210;
    cfg->max_brightness_auth = 220;
    cfg->max_yaw_enroll = 45;
    cfg->max_yaw_auth = 50;
    cfg->max_pitch_enroll = 40;
    cfg->max_pitch_auth = 45;
    cfg->max_roll_enroll = 30;
    cfg->max_roll_auth = 50;
    cfg->liveness_min = 0.05;
    cfg->token_ttl_s = 86400;
    cfg->link_ttl_s = 86400;
    cfg->thumbnail_size = 192;
    cfg->max_learned_templates = 10;
    cfg->learn_margin = 1.0;
    cfg->login_hash_wait_ms = 1000;
    cfg->login_fail_limit = 5;
    cfg->login_fail_window_s = 900;
    cfg->login_lock_s = 900;
    cfg->login_max_lock_s = 86400;
    cfg->login_fail_delay_s = 1;
    cfg->auth_fail_limit = 5;
    cfg->auth_fail_window_s = 180;
    cfg->auth_lock_s = 900;
    cfg->enroll_link_ttl_s = 7 * 86400;
    cfg->enroll_attempts_per_hour = 10;
    cfg->enroll_page_max_bytes = 8u << 20;
    cfg->fetch_request_timeout_ms = 15000;
    cfg->max_fetches_per_customer = 0; /* half the HTTP threads: fa_config_finish */
    cfg->durable_commits = 1;
    cfg->keep_failed_photos_days = 7;
    cfg->keep_search_photos_days = 7;
    cfg->photo_purge_interval_s = 3600;
    cfg->min_free_disk_mb = 64;
    cfg->disk_reserve_mb = 16;
    cfg->callback_connect_timeout_ms = 2000;
    cfg->callback_timeout_ms = 5000;
    cfg->callback_retry_base_ms = 1000;
    cfg->callback_retry_max_ms = 3600000;
    cfg->callback_max_attempts = 10;
    cfg->callback_parallel = 4;
    cfg->callback_keep_days = 30;
}

static const struct key_def *find_key(const char *name)
{
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static int parse_number(const char *text, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}

static int parse_bool(const char *text, int *out)
{
    static const char *const yes[] = {"1", "yes", "true", "on"};
    static const char *const no[] = {"0", "no", "false", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0)
            return *out = 1, 1;
        if (strcasecmp(text, no[i]) == 0)
            return *out = 0, 1;
    }
    return 0;
}

static enum fa_rc store_number(struct fa_config *cfg, const struct key_def *k, const char *value,
                               struct fa_err *err)
{
    double v;
    char *field = (char *)cfg + k->offset;
    if (!parse_number(value, &v) || v < k->min || v > k->max)
        return fa_err_set(err, FA_EINVAL, "%s: '%s' is not a number in %g..%g", k->name, value,
                          k->min, k->max);
    if (k->type != K_DOUBLE && v != floor(v))
        return fa_err_set(err, FA_EINVAL, "%s: '%s' must be a whole number", k->name, value);
    switch (k->type) {
    case K_INT: *(int *)field = (int)v; break;
    case K_LONG: *(long *)field = (long)v; break;
    case K_SIZE: *(size_t *)field = (size_t)v; break;
    default: *(double *)field = v; break;
    }
    return FA_OK;
}

/*
 * Split a comma-separated list of numbers into v[0..*n), at most cap of
 * them, each in [k->min, k->max]. Spaces around the commas are fine; an
 * empty item is not. Nothing is written to the config here.
 */
static enum fa_rc parse_list(const struct key_def *k, const char *value, double *v, int cap,
                             int *n, struct fa_err *err)
{
    char buf[512];
    char *item, *save = NULL;
    size_t len = strlen(value);
    *n = 0;
    if (len >= sizeof buf)
        return fa_err_set(err, FA_EINVAL, "%s: value longer than %zu characters", k->name,
                          sizeof buf - 1);
    memcpy(buf, value, len + 1);
    if (len == 0 || buf[0] == ',' || buf[len - 1] == ',' || strstr(buf, ",,") != NULL)
        return fa_err_set(err, FA_EINVAL, "%s: '%s' is not a list of numbers like 3.9,4.1",
                          k->name, value);
    for (item = strtok_r(buf, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        char *text = item;
        char *end = text + strlen(text);
        while (isspace((unsigned char)*text))
            text++;
        while (end > text && isspace((unsigned char)end[-1]))
            *--end = '\0';
        if (*n == cap)
            return fa_err_set(err, FA_EINVAL, "%s: more than %d values", k->name, cap);
        if (!parse_number(text, &v[*n]) || v[*n] < k->min || v[*n] > k->max)
            return fa_err_set(err, FA_EINVAL, "%s: '%s' is not a number in %g..%g", k->name,
                              text, k->min, k->max);
        (*n)++;
    }
    return FA_OK;
}

static enum fa_rc store_list(struct fa_config *cfg, const struct key_def *k, const char *value,
                             struct fa_err *err)
{
    struct fa_cfg_list l;
    enum fa_rc rc = parse_list(k, value, l.v, FA_CFG_LIST_MAX, &l.n, err);
    if (rc == FA_OK)
        *(struct fa_cfg_list *)((char *)cfg + k->offset) = l;
    return rc;
}

/* "mean,sd" of a model's impostor cosines: a z-score divides by sd. */
static enum fa_rc store_znorm(struct fa_config *cfg, const struct key_def *k, const char *value,
                              struct fa_err *err)
{
    double v[3];
    int n = 0;
    enum fa_rc rc = parse_list(k, value, v, 3, &n, err);
    if (rc == FA_OK && (n != 2 || !(v[1] > 0)))
        rc = fa_err_set(err, FA_EINVAL, "%s: '%s' must be mean,sd with sd > 0", k->name, value);
    if (rc == FA_OK)
        memcpy((char *)cfg + k->offset, v, 2 * sizeof *v);
    return rc;
}

/* "fr_feature,mobilefacenet,dlib": any non-empty subset, each name once. */
static enum fa_rc store_models(struct fa_config *cfg, const struct key_def *k, const char *value,
                               struct fa_err *err)
{
    char buf[256];
    char *item, *save = NULL;
    unsigned mask = 0;
    if (strlen(value) >= sizeof buf)
        return fa_err_set(err, FA_EINVAL, "%s: value too long", k->name);
    snprintf(buf, sizeof buf, "%s", value);
    for (item = strtok_r(buf, ", \t", &save); item != NULL; item = strtok_r(NULL, ", \t", &save)) {
        enum fa_model m;
        struct fa_err inner = {{0}};
        if (fa_model_from_name(item, &m, &inner) != FA_OK)
            return fa_err_set(err, FA_EINVAL, "%s: %s", k->name, inner.msg);
        if (mask & FA_MODEL_BIT(m))
            return fa_err_set(err, FA_EINVAL, "%s: '%s' is named twice", k->name, item);
        mask |= FA_MODEL_BIT(m);
    }
    if (mask == 0)
        return fa_err_set(err, FA_EINVAL, "%s: name at least one model", k->name);
    cfg->models = mask;
    return FA_OK;
}

double fa_cfg_list_at(const struct fa_cfg_list *list, int k)
{
    int i = k < 1 ? 0 : k - 1;
    if (list->n < 1)
        return NAN; /* never after fa_config_defaults; no threshold passes */
    return list->v[i < list->n ? i : list->n - 1];
}

enum fa_rc fa_config_set(struct fa_config *cfg, const char *key, const char *value,
                         struct fa_err *err)
{
    const struct key_def *k = find_key(key);
    char *field;
    if (k == NULL)
        return fa_err_set(err, FA_EINVAL, "unknown config key '%s'", key);
    field = (char *)cfg + k->offset;
    if (k->type == K_LIST)
        return store_list(cfg, k, value, err);
    if (k->type == K_ZNORM)
        return store_znorm(cfg, k, value, err);
    if (k->type == K_MODELS)
        return store_models(cfg, k, value, err);
    if (k->type == K_STR) {
        if (strlen(value) >= k->size)
            return fa_err_set(err, FA_EINVAL, "%s: value longer than %zu characters", key,
                              k->size - 1);
        snprintf(field, k->size, "%s", value);
        return FA_OK;
    }
    if (k->type == K_BOOL) {
        if (!parse_bool(value, (int *)field))
            return fa_err_set(err, FA_EINVAL, "%s: '%s' is not yes/no", key, value);
        return FA_OK;
    }
    return store_number(cfg, k, value, err);
}

/* Trim spaces at both ends in place; returns the new start. */
static char *trim(char *s)
{
    char *end;
    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static enum fa_rc apply_line(struct fa_config *cfg, char *line, const char *path, int lineno,
                             struct fa_err *err)
{
    char *text = trim(line);
    char *eq;
    enum fa_rc rc;
    if (*text == '\0' || *text == '#')
        return FA_OK;
    eq = strchr(text, '=');
    if (eq == NULL)
        return fa_err_set(err, FA_EINVAL, "%s:%d: expected 'key = value'", path, lineno);
    *eq = '\0';
    rc = fa_config_set(cfg, trim(text), trim(eq + 1), err);
    if (rc != FA_OK && err != NULL) {
        char inner[FA_ERR_MAX];
        snprintf(inner, sizeof inner, "%s", err->msg);
        fa_err_set(err, rc, "%s:%d: %s", path, lineno, inner);
    }
    return rc;
}

/*
 * fgets returns a line longer than its buffer in pieces, and each piece
 * would be read as a line of its own: the tail of a long comment could set
 * a key, and line numbers would drift. A long comment is skipped whole; a
 * long setting is refused (no value is that long), never cut short.
 */
static enum fa_rc finish_long_line(FILE *f, const char *line, const char *path, int lineno,
                                   struct fa_err *err)
{
    size_t n = strlen(line);
    int ch;
    if (n == 0 || line[n - 1] == '\n' || feof(f))
        return FA_OK;
    while (isspace((unsigned char)*line))
        line++;
    if (*line != '#')
        return fa_err_set(err, FA_EINVAL, "%s:%d: line longer than %zu characters", path, lineno,
                          n - 1);
    do
        ch = getc(f);
    while (ch != '\n' && ch != EOF);
    return FA_OK;
}

enum fa_rc fa_config_load_file(struct fa_config *cfg, const char *path, struct fa_err *err)
{
    char line[1024];
    int lineno = 0;
    enum fa_rc rc = FA_OK;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return fa_err_set(err, FA_ENOTFOUND, "cannot open config file %s: %s", path,
                          strerror(errno));
    while (rc == FA_OK && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        rc = finish_long_line(f, line, path, lineno, err);
        if (rc == FA_OK)
            rc = apply_line(cfg, line, path, lineno, err);
    }
    fclose(f);
    return rc;
}

enum fa_rc fa_config_load_env(struct fa_config *cfg, struct fa_err *err)
{
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char var[64] = "FACEAUTH_";
        size_t n = strlen(var);
        const char *value;
        for (const char *p = keys[i].name; *p != '\0' && n + 1 < sizeof var; p++)
            var[n++] = (char)toupper((unsigned char)*p);
        var[n] = '\0';
        value = getenv(var);
        if (value == NULL)
            continue;
        enum fa_rc rc = fa_config_set(cfg, keys[i].name, value, err);
        if (rc != FA_OK)
            return rc;
    }
    return FA_OK;
}

void fa_config_finish(struct fa_config *cfg)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    if (cfg->engines == 0)
        cfg->engines = (int)cores;
    /* More HTTP threads than engines: a thread waiting on a slow image URL
     * must not keep a core's worth of face work from being served. */
    if (cfg->http_threads == 0)
        cfg->http_threads = (int)(4 * cores);
    /* An Argon2id hash takes a core and 64 MiB: half the cores leaves the
     * other half to face work and /healthz during a login storm. */
    if (cfg->login_hash_concurrency == 0)
        cfg->login_hash_concurrency = (int)((cores + 1) / 2);
    if (cfg->login_max_lock_s < cfg->login_lock_s)
        cfg->login_max_lock_s = cfg->login_lock_s;
    /* One customer's slow image URLs may hold at most half the HTTP
     * threads, so other customers and the health probes still get served. */
    if (cfg->max_fetches_per_customer == 0)
        cfg->max_fetches_per_customer = cfg->http_threads > 1 ? cfg->http_threads / 2 : 1;
}

void fa_config_database(const struct fa_config *cfg, char *out, size_t cap)
{
    if (cfg->database[0] != '\0')
        snprintf(out, cap, "%s", cfg->database);
    else
        snprintf(out, cap, "%s/faceauth.db", cfg->data_dir);
}
