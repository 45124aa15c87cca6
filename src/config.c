/*
 * config.c — defaults < file < environment < flags (see config.h).
 *
 * One table describes every key (config_table.c): its type, where it lives
 * in struct fa_config, its allowed range, its default and its help. The
 * defaults, the file parser, the environment reader and the flags all go
 * through one validator (fa_config_set), and the commented config file is
 * printed from the same table, so none of them can drift apart.
 */
#include "faceauth/config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_int.h"

static const struct fa_cfg_key *find_key(const char *name)
{
    for (size_t i = 0; i < fa_cfg_n_keys; i++)
        if (strcmp(fa_cfg_keys[i].name, name) == 0)
            return &fa_cfg_keys[i];
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

static enum fa_rc store_number(struct fa_config *cfg, const struct fa_cfg_key *k, const char *value,
                               struct fa_err *err)
{
    double v;
    char *field = (char *)cfg + k->offset;
    if (!parse_number(value, &v) || v < k->min || v > k->max)
        return fa_err_set(err, FA_EINVAL, "%s: '%s' is not a number in %g..%g", k->name, value,
                          k->min, k->max);
    if (k->type != FA_CFG_DOUBLE && v != floor(v))
        return fa_err_set(err, FA_EINVAL, "%s: '%s' must be a whole number", k->name, value);
    switch (k->type) {
    case FA_CFG_INT: *(int *)field = (int)v; break;
    case FA_CFG_LONG: *(long *)field = (long)v; break;
    case FA_CFG_SIZE: *(size_t *)field = (size_t)v; break;
    default: *(double *)field = v; break;
    }
    return FA_OK;
}

/*
 * Split a comma-separated list of numbers into v[0..*n), at most cap of
 * them, each in [k->min, k->max]. Spaces around the commas are fine; an
 * empty item is not. Nothing is written to the config here.
 */
static enum fa_rc parse_list(const struct fa_cfg_key *k, const char *value, double *v, int cap,
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

static enum fa_rc store_list(struct fa_config *cfg, const struct fa_cfg_key *k, const char *value,
                             struct fa_err *err)
{
    struct fa_cfg_list l = {0}; /* unused slots zero, as memcmp of two configs expects */
    enum fa_rc rc = parse_list(k, value, l.v, FA_CFG_LIST_MAX, &l.n, err);
    if (rc == FA_OK)
        *(struct fa_cfg_list *)((char *)cfg + k->offset) = l;
    return rc;
}

/* "mean,sd" of a model's impostor cosines: a z-score divides by sd. */
static enum fa_rc store_znorm(struct fa_config *cfg, const struct fa_cfg_key *k, const char *value,
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
static enum fa_rc store_models(struct fa_config *cfg, const struct fa_cfg_key *k, const char *value,
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
    const struct fa_cfg_key *k = find_key(key);
    char *field;
    if (k == NULL)
        return fa_err_set(err, FA_EINVAL, "unknown config key '%s'", key);
    field = (char *)cfg + k->offset;
    if (k->type == FA_CFG_LIST)
        return store_list(cfg, k, value, err);
    if (k->type == FA_CFG_ZNORM)
        return store_znorm(cfg, k, value, err);
    if (k->type == FA_CFG_MODELS)
        return store_models(cfg, k, value, err);
    if (k->type == FA_CFG_STR) {
        if (strlen(value) >= k->size)
            return fa_err_set(err, FA_EINVAL, "%s: value longer than %zu characters", key,
                              k->size - 1);
        snprintf(field, k->size, "%s", value);
        return FA_OK;
    }
    if (k->type == FA_CFG_BOOL) {
        if (!parse_bool(value, (int *)field))
            return fa_err_set(err, FA_EINVAL, "%s: '%s' is not yes/no", key, value);
        return FA_OK;
    }
    return store_number(cfg, k, value, err);
}

void fa_config_defaults(struct fa_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < fa_cfg_n_keys; i++) {
        enum fa_rc rc = fa_config_set(cfg, fa_cfg_keys[i].name, fa_cfg_keys[i].def, NULL);
        assert(rc == FA_OK && "a default of config_table.c is outside its own range");
        (void)rc;
    }
}

/* What fa_config_set takes for k, as one comment line ("" for none). */
static void describe_range(const struct fa_cfg_key *k, char *out, size_t cap)
{
    switch (k->type) {
    case FA_CFG_STR: snprintf(out, cap, "text, at most %zu characters", k->size - 1); break;
    case FA_CFG_BOOL: snprintf(out, cap, "yes or no"); break;
    case FA_CFG_INT:
    case FA_CFG_LONG:
    case FA_CFG_SIZE:
        snprintf(out, cap, "a whole number, %.15g..%.15g", k->min, k->max);
        break;
    case FA_CFG_DOUBLE: snprintf(out, cap, "a number, %.15g..%.15g", k->min, k->max); break;
    case FA_CFG_LIST:
        snprintf(out, cap, "1 to %d numbers, each %.15g..%.15g", FA_CFG_LIST_MAX, k->min, k->max);
        break;
    case FA_CFG_ZNORM:
        snprintf(out, cap, "mean,sd, each %.15g..%.15g, sd above 0", k->min, k->max);
        break;
    case FA_CFG_MODELS: snprintf(out, cap, "one or more model names, each once"); break;
    }
}

/* The help lines of k, each as a comment. */
static void write_help(FILE *out, const char *help)
{
    while (*help != '\0') {
        const char *nl = strchr(help, '\n');
        size_t n = nl != NULL ? (size_t)(nl - help) : strlen(help);
        fprintf(out, "# %.*s\n", (int)n, help);
        help += n + (nl != NULL);
    }
}

enum fa_rc fa_config_write_defaults(FILE *out, struct fa_err *err)
{
    char range[128];
    fputs(fa_cfg_intro, out);
    for (size_t i = 0; i < fa_cfg_n_keys; i++) {
        const struct fa_cfg_key *k = &fa_cfg_keys[i];
        fputs(i == 0 ? "\n" : "", out);
        write_help(out, k->help);
        describe_range(k, range, sizeof range);
        fprintf(out, "# %s: %s\n", k->name, range);
        fprintf(out, k->def[0] != '\0' ? "%s = %s\n" : "%s =%s\n", k->name, k->def);
    }
    if (fflush(out) != 0 || ferror(out))
        return fa_err_set(err, FA_EINTERNAL, "cannot write the config file: %s", strerror(errno));
    return FA_OK;
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
    for (size_t i = 0; i < fa_cfg_n_keys; i++) {
        char var[64] = "FACEAUTH_";
        size_t n = strlen(var);
        const char *value;
        for (const char *p = fa_cfg_keys[i].name; *p != '\0' && n + 1 < sizeof var; p++)
            var[n++] = (char)toupper((unsigned char)*p);
        var[n] = '\0';
        value = getenv(var);
        if (value == NULL)
            continue;
        enum fa_rc rc = fa_config_set(cfg, fa_cfg_keys[i].name, value, err);
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
