/*
 * main.c — the faceauth binary: parse argv, run one subcommand.
 *
 *   faceauth serve [--config FILE] [--port N] [--data DIR] [--models DIR]
 *   faceauth customer add NAME [--password-file F]   (password on stdin otherwise)
 *   faceauth customer passwd NAME [--password-file F]
 *   faceauth customer unlock NAME   (clears login locks and users' attempt locks)
 *   faceauth customer callback-secret NAME   (new secret, printed once)
 *   faceauth compare A.jpg B.jpg [--model fused|NAME|all]
 *   faceauth embed FILE... | -   [--model NAME|all]
 *   faceauth score-pairs PAIRS.tsv [--model fused|NAME|all]
 *   faceauth quality FILE... | -
 *   faceauth user list CUSTOMER
 *   faceauth models check [--reference FILE] [--assets DIR]
 *   faceauth config-defaults   (prints config/faceauth.conf)
 *   faceauth --help | help [CMD] | CMD --help | --version
 *
 * Every subcommand takes --config and --data, so the CLI and the server it
 * manages always agree on the same database.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "faceauth/api.h"
#include "faceauth/cli.h"
#include "faceauth/config.h"
#include "faceauth/crypto.h"

struct args {
    char **positional; /* argv without the flags: positional[0] is the subcommand */
    int n_positional;
    const char *password_file;
    const char *model; /* --model of compare, embed, score-pairs; NULL = default */
    const char *reference; /* --reference of models check; NULL = default */
    const char *assets;    /* --assets of models check; NULL = default */
    int help;              /* --help or -h after the command */
    struct fa_config cfg;
};

/* A usage error: the command's synopsis (or the overview) and exit 2. */
static int usage_of(const char *cmd)
{
    if (cmd == NULL || !fa_cli_help(cmd, stderr))
        fa_cli_usage(stderr);
    return 2;
}

static int usage(void)
{
    return usage_of(NULL);
}

/* Flags that map straight onto config keys. */
static const char *flag_key(const char *flag)
{
    static const char *const map[][2] = {
        {"--port", "port"}, {"--data", "data_dir"}, {"--models", "model_dir"},
        {"--listen", "listen"}, {"--database", "database"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(flag, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

/* Config file first, then env, then flags, whatever order argv has. */
static int parse_args(int argc, char **argv, struct args *a)
{
    struct fa_err err = {{0}};
    const char *config_file = NULL;
    fa_config_defaults(&a->cfg);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config_file = argv[++i];
    if (config_file != NULL && fa_config_load_file(&a->cfg, config_file, &err) != FA_OK)
        goto bad;
    if (fa_config_load_env(&a->cfg, &err) != FA_OK)
        goto bad;
    for (int i = 1; i < argc; i++) {
        const char *key = flag_key(argv[i]);
        int has_value = i + 1 < argc;
        if (strcmp(argv[i], "--config") == 0 && has_value) {
            i++;
        } else if (strcmp(argv[i], "--password-file") == 0 && has_value) {
            a->password_file = argv[++i];
        } else if (strcmp(argv[i], "--model") == 0 && has_value) {
            a->model = argv[++i];
        } else if (strcmp(argv[i], "--reference") == 0 && has_value) {
            a->reference = argv[++i];
        } else if (strcmp(argv[i], "--assets") == 0 && has_value) {
            a->assets = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            a->help = 1;
        } else if (key != NULL && has_value) {
            if (fa_config_set(&a->cfg, key, argv[++i], &err) != FA_OK)
                goto bad;
        } else if (strncmp(argv[i], "--", 2) == 0) {
            fprintf(stderr, "faceauth: unknown option or missing value: %s\n", argv[i]);
            return -1;
        } else {
            a->positional[a->n_positional++] = argv[i];
        }
    }
    fa_config_finish(&a->cfg);
    return 0;
bad:
    fprintf(stderr, "faceauth: %s\n", err.msg);
    return -1;
}

/* ---- serve ---- */

struct server_parts {
    struct fa_app app;
    struct fa_http_server *http;
};

static void parts_free(struct server_parts *p)
{
    fa_http_stop(p->http, 30000);
    fa_api_services_stop(&p->app); /* after the handlers: they use its counts */
    fa_api_follow_stop(&p->app);   /* after the handlers: search reads its state */
    /* After the HTTP server: the last requests' events are queued by now. */
    fa_callbacks_stop(p->app.callbacks, 2000);
    fa_api_slots_free(p->app.login_slots);
    fa_gallery_free(p->app.gallery);
    fa_index_free(p->app.index);
    fa_face_service_free(p->app.faces);
    fa_media_free(p->app.media);
    fa_store_free(p->app.store);
    fa_metrics_free(p->app.metrics);
}

/* The HTTP server's observer hook: each finished request into the metrics. */
static void observe_request(void *metrics, const struct fa_route *route, int status,
                            double seconds)
{
    fa_metrics_request(metrics, route != NULL ? route->method : NULL,
                       route != NULL ? route->path : NULL, status, seconds);
}

/* The engine pool's and the router's metrics tables (metrics.h): one row
 * per route, and every gate of face.h by name. */
static enum fa_rc metrics_start(struct fa_app *app, const struct fa_route *routes,
                                size_t n_routes, struct fa_err *err)
{
    enum fa_rc rc = fa_metrics_new(&app->metrics, err);
    for (size_t i = 0; rc == FA_OK && i < n_routes; i++)
        rc = fa_metrics_add_endpoint(app->metrics, routes[i].method, routes[i].path, err);
    for (int g = 1; rc == FA_OK && g < FA_METRICS_MAX_GATES; g++)
        if (strcmp(fa_face_gate_name((enum fa_face_gate)g), "unknown") != 0)
            fa_metrics_name_gate(app->metrics, g, fa_face_gate_name((enum fa_face_gate)g));
    if (rc == FA_OK)
        fa_metrics_set_engines(app->metrics, app->cfg->engines);
    return rc;
}

/* faceauth_callbacks_* of GET /metrics: the delivery thread's counters,
 * read at scrape time (metrics.h's callbacks source). */
static void callbacks_metrics(void *callbacks, struct fa_metrics_callbacks *out)
{
    struct fa_callback_stats s;
    memset(&s, 0, sizeof s);
    fa_callbacks_stats(callbacks, &s);
    out->sent = s.sent;
    out->retried = s.retried;
    out->dead = s.dead;
    out->queued = s.queued > 0 ? (uint64_t)s.queued : 0; /* -1: unreadable now */
}

static enum fa_rc callbacks_start(struct server_parts *p, const struct fa_config *cfg,
                                  struct fa_err *err)
{
    struct fa_callback_opts o;
    fa_callback_opts_from_config(cfg, &o);
    return fa_callbacks_start(p->app.store, &o, &p->app.callbacks, err);
}

/*
 * Loading the face engines (parsing every model, per engine) and walking
 * the stored templates into the search index need nothing of each other,
 * and each takes about a second of CPU with 100k templates: on a machine
 * with two cores or more they overlap, so the server is ready after the
 * longer of the two instead of their sum (README, Performance).
 */
struct face_loader {
    struct fa_face_opts opts;
    struct fa_face_service *svc;
    enum fa_rc rc;
    struct fa_err err;
    pthread_t thread;
    int threaded; /* 0: loaded in the caller's thread (no thread could start) */
};

static void *face_loader_main(void *arg)
{
    struct face_loader *l = arg;
    l->rc = fa_face_service_new(&l->opts, &l->svc, &l->err);
    return NULL;
}

static void face_loader_start(struct face_loader *l, const struct fa_face_opts *opts)
{
    l->opts = *opts;
    l->threaded = pthread_create(&l->thread, NULL, face_loader_main, l) == 0;
    if (!l->threaded)
        face_loader_main(l);
}

/* Wait for the engines; their error counts only when nothing failed first. */
static enum fa_rc face_loader_finish(struct face_loader *l, struct fa_face_service **out,
                                     enum fa_rc rc, struct fa_err *err)
{
    if (l->threaded)
        pthread_join(l->thread, NULL);
    *out = l->svc;
    if (rc == FA_OK && l->rc != FA_OK) {
        *err = l->err;
        rc = l->rc;
    }
    return rc;
}

static enum fa_rc parts_start(struct server_parts *p, const struct fa_config *cfg,
                              struct fa_err *err)
{
    char db_path[FA_CFG_PATH_MAX + 32];
    size_t n_routes;
    struct fa_face_opts face;
    struct face_loader loader = {0};
    int loading = 0;
    struct fa_http_opts http = {.listen = cfg->listen, .port = cfg->port,
                                .threads = cfg->http_threads,
                                .max_body_bytes = cfg->max_body_bytes,
                                .connection_timeout_s = cfg->connection_timeout_s,
                                .app = &p->app};
    http.max_connections = cfg->max_connections;
    http.max_connections_per_ip = cfg->max_connections_per_ip;
    http.read_timeout_ms = cfg->request_read_timeout_ms;
    http.min_body_rate = cfg->min_body_rate;
    enum fa_rc rc = fa_media_open(cfg->data_dir, &p->app.media, err);
    fa_face_opts_from_config(cfg, &face);
    fa_face_policy_from_config(cfg, &p->app.policy);
    p->app.cfg = cfg;
    fa_fetch_opts_from_config(cfg, &p->app.fetch);
    fa_config_database(cfg, db_path, sizeof db_path);
    http.routes = fa_api_routes(&n_routes);
    http.n_routes = n_routes;
    if (rc == FA_OK)
        rc = metrics_start(&p->app, http.routes, n_routes, err);
    face.metrics = p->app.metrics;
    http.observe = observe_request;
    http.observe_ctx = p->app.metrics;
    if (rc == FA_OK)
        rc = fa_api_slots_new(cfg->login_hash_concurrency, cfg->login_hash_wait_ms,
                              &p->app.login_slots, err);
    if (rc == FA_OK)
        rc = fa_store_open(db_path, &p->app.store, err);
    if (rc == FA_OK) /* PostgreSQL: images in the database, nothing on this node's disk */
        rc = fa_media_attach_store(p->app.media, p->app.store, err);
    if (rc == FA_OK)
        rc = fa_index_new(FA_EMBED_DIM, &p->app.index, err);
    if (rc == FA_OK)
        rc = fa_gallery_new(p->app.store, p->app.index, FA_MODEL_ID, FA_EMBED_DIM,
                            &p->app.gallery, err);
    if (rc == FA_OK)
        rc = fa_store_set_sync(p->app.store, cfg->durable_commits, err);
    if (rc == FA_OK) {
        face_loader_start(&loader, &face);
        loading = 1;
    }
    if (rc == FA_OK)
        rc = fa_api_follow_begin(&p->app, err);
    if (rc == FA_OK)
        rc = fa_api_recover(&p->app, err);
    if (rc == FA_OK)
        rc = fa_api_follow_start(&p->app, err);
    if (rc == FA_OK)
        rc = fa_api_services_start(&p->app, err);
    if (loading)
        rc = face_loader_finish(&loader, &p->app.faces, rc, err);
    if (rc == FA_OK)
        rc = callbacks_start(p, cfg, err);
    if (rc == FA_OK)
        fa_metrics_set_callbacks_source(p->app.metrics, callbacks_metrics, p->app.callbacks);
    fa_api_health_routes(&http);
    if (rc == FA_OK)
        rc = fa_http_start(&http, &p->http, err);
    return rc;
}

/*
 * glibc's malloc tuned for a long-running server with many threads. By
 * default it grows up to 8 arenas per core, and memory freed in one arena
 * is never reused by a thread of another; and it raises its mmap threshold
 * whenever a large block is freed, so decoded images, request bodies and
 * the index's growing arrays end up pinned in the heaps. Measured by
 * bench/run (100k templates, after the load runs): 427 MB RSS by default,
 * 387 MB with one arena per core and the threshold fixed at 1 MB.
 *
 * Fixing the mmap threshold also fixes the trim threshold at glibc's 128 kB
 * default, and then every request that frees its buffers (detector blobs,
 * decoded photo: a few MB, all under 1 MB each) hands the top of its arena
 * back to the kernel, only to fault the same pages in again on the next
 * request: 570-1,580 page faults per authenticate, and x1.37 of the
 * pipeline's CPU instead of x1.11, on the guest of README's Performance
 * (page-table isolation makes faults dear there). A 32 MB trim
 * threshold keeps that working set (0-34 faults per request); it costs
 * about 10 MB of RSS after load (the per-request peak of each arena, which
 * the server touches anyway). Must run before any thread starts.
 */
static void serve_tune_malloc(void)
{
#ifdef __GLIBC__
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    mallopt(M_ARENA_MAX, cores > 1 ? (int)cores : 1);
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    mallopt(M_TRIM_THRESHOLD, 32 << 20);
#endif
}

/* Links handed out (enrollmentUrl, image links) need the address clients
 * use; without public_url a forged Host header must not choose it. */
static void serve_warn_public_url(const struct fa_config *cfg)
{
    fprintf(stderr,
            "faceauth: warning: public_url is not set: links (enrollmentUrl, faceOriginal, "
            "faceThumbnail) use the Host header only when allowed_hosts lists it (%s), "
            "otherwise the address the client connected to; set public_url to the address "
            "clients use in production\n",
            cfg->allowed_hosts[0] != '\0' ? cfg->allowed_hosts : "none");
}

static int cmd_serve(const struct args *a)
{
    struct server_parts parts;
    struct fa_err err = {{0}};
    sigset_t stop;
    int sig = 0;
    memset(&parts, 0, sizeof parts);
    /* Block the stop signals before any thread starts, so every thread
     * inherits the mask and only sigwait below ever sees them. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    serve_tune_malloc();
    signal(SIGPIPE, SIG_IGN);
    if (parts_start(&parts, &a->cfg, &err) != FA_OK) {
        fprintf(stderr, "faceauth: %s\n", err.msg);
        parts_free(&parts);
        return 1;
    }
    if (a->cfg.public_url[0] == '\0')
        serve_warn_public_url(&a->cfg);
    printf("faceauth %s listening on http://%s:%d (data %s, %d engines, %d http threads)\n",
           FA_VERSION, a->cfg.listen, fa_http_port(parts.http), a->cfg.data_dir, a->cfg.engines,
           a->cfg.http_threads);
    fflush(stdout);
    sigwait(&stop, &sig);
    printf("faceauth: signal %d, finishing requests in flight\n", sig);
    fflush(stdout);
    parts_free(&parts);
    return 0;
}

/* ---- customer ---- */

static int read_password(const char *file, char *out, size_t cap)
{
    FILE *f = file != NULL ? fopen(file, "r") : stdin;
    size_t n;
    if (f == NULL) {
        fprintf(stderr, "faceauth: cannot open %s\n", file);
        return -1;
    }
    if (fgets(out, (int)cap, f) == NULL)
        out[0] = '\0';
    if (f != stdin)
        fclose(f);
    n = strcspn(out, "\r\n");
    out[n] = '\0';
    if (n == 0) {
        fprintf(stderr, "faceauth: empty password\n");
        return -1;
    }
    return 0;
}

/* customer unlock NAME: forget the customer's failed logins (every
 * address) and its users' failed face attempts, locks included. */
static int cmd_unlock(const struct args *a)
{
    char db_path[FA_CFG_PATH_MAX + 32];
    struct fa_store *st = NULL;
    struct fa_err err = {{0}};
    int n = 0;
    enum fa_rc rc;
    fa_config_database(&a->cfg, db_path, sizeof db_path);
    rc = fa_store_open(db_path, &st, &err);
    if (rc == FA_OK)
        rc = fa_store_customer_unlock(st, a->positional[2], &n, &err);
    fa_store_free(st);
    if (rc != FA_OK) {
        fprintf(stderr, "faceauth: %s\n", err.msg);
        return 1;
    }
    printf("customer %s unlocked (%d throttle entries cleared)\n", a->positional[2], n);
    return 0;
}

/*
 * A new callback secret for the customer, printed once: the server keeps
 * it to sign, but never shows it again. Running it again rotates it (the
 * receiver must switch at the same time).
 */
static int cmd_callback_secret(const struct args *a)
{
    char db_path[FA_CFG_PATH_MAX + 32];
    char hex[FA_CB_SECRET_HEX + 1];
    struct fa_store *st = NULL;
    struct fa_err err = {{0}};
    enum fa_rc rc;
    fa_crypto_random_hex(hex, FA_KEY_BYTES);
    fa_config_database(&a->cfg, db_path, sizeof db_path);
    rc = fa_store_open(db_path, &st, &err);
    if (rc == FA_OK)
        rc = fa_store_callback_secret_set(st, a->positional[2], hex, &err);
    fa_store_free(st);
    if (rc == FA_OK)
        printf("%s\n", hex);
    else
        fprintf(stderr, "faceauth: %s\n", err.msg);
    fa_crypto_wipe(hex, sizeof hex);
    return rc == FA_OK ? 0 : 1;
}

static int cmd_customer(const struct args *a)
{
    char db_path[FA_CFG_PATH_MAX + 32];
    char password[512];
    struct fa_store *st = NULL;
    struct fa_err err = {{0}};
    enum fa_rc rc;
    int adding;
    if (a->n_positional != 3)
        return usage_of("customer");
    if (strcmp(a->positional[1], "unlock") == 0)
        return cmd_unlock(a);
    if (strcmp(a->positional[1], "callback-secret") == 0)
        return cmd_callback_secret(a);
    adding = strcmp(a->positional[1], "add") == 0;
    if (!adding && strcmp(a->positional[1], "passwd") != 0)
        return usage_of("customer");
    if (read_password(a->password_file, password, sizeof password) != 0)
        return 1;
    mkdir(a->cfg.data_dir, 0700);
    fa_config_database(&a->cfg, db_path, sizeof db_path);
    rc = fa_store_open(db_path, &st, &err);
    if (rc == FA_OK && adding)
        rc = fa_store_customer_add(st, a->positional[2], password, &err);
    else if (rc == FA_OK)
        rc = fa_store_customer_passwd(st, a->positional[2], password, &err);
    fa_crypto_wipe(password, sizeof password);
    fa_store_free(st);
    if (rc != FA_OK) {
        fprintf(stderr, "faceauth: %s\n", err.msg);
        return 1;
    }
    printf("customer %s %s\n", a->positional[2], adding ? "added" : "password changed");
    return 0;
}

/* ---- user, models, help ---- */

static int cmd_user(const struct args *a)
{
    if (a->n_positional != 3 || strcmp(a->positional[1], "list") != 0)
        return usage_of("user");
    return fa_cli_user_list(a->n_positional, a->positional, &a->cfg);
}

static int cmd_models(const struct args *a)
{
    if (a->n_positional != 2 || strcmp(a->positional[1], "check") != 0)
        return usage_of("models");
    return fa_cli_models_check(a->cfg.model_dir, a->reference, a->assets);
}

/* `config-defaults`: the built-in defaults as a commented config file.
 * Takes no arguments and reads neither a config file nor the environment. */
static int cmd_config_defaults(void)
{
    struct fa_err err = {{0}};
    if (fa_config_write_defaults(stdout, &err) != FA_OK) {
        fprintf(stderr, "faceauth: %s\n", err.msg);
        return 1;
    }
    return 0;
}

/* `help`, `help CMD`, `--help`, `--version`, `config-defaults`: 1 when
 * argv was one of them (*rc is then the exit status). Runs before any
 * parsing, so neither a config file nor the environment can make them fail. */
static int early_command(int argc, char **argv, int *rc)
{
    const char *cmd = argc > 1 ? argv[1] : "";
    *rc = 0;
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("faceauth %s\n", FA_VERSION);
        return 1;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        (strcmp(cmd, "help") == 0 && argc == 2)) {
        fa_cli_usage(stdout);
        return 1;
    }
    if (strcmp(cmd, "help") == 0) {
        if (argc == 3 && fa_cli_help(argv[2], stdout))
            return 1;
        fprintf(stderr, "faceauth: no command '%s'; 'faceauth --help' lists them\n",
                argc == 3 ? argv[2] : "");
        *rc = 2;
        return 1;
    }
    if (strcmp(cmd, "config-defaults") == 0 && argc == 2) {
        *rc = cmd_config_defaults();
        return 1;
    }
    if (argc < 2 || !fa_cli_known(cmd)) {
        if (argc >= 2)
            fprintf(stderr, "faceauth: unknown command '%s'; 'faceauth --help' lists them\n",
                    cmd);
        else
            fa_cli_usage(stderr);
        *rc = 2;
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct args a;
    const char *cmd = argc > 1 ? argv[1] : "";
    int rc;
    if (early_command(argc, argv, &rc))
        return rc;
    memset(&a, 0, sizeof a);
    a.positional = calloc((size_t)argc + 1, sizeof *a.positional);
    if (a.positional == NULL || parse_args(argc, argv, &a) != 0) {
        free(a.positional);
        return usage_of(cmd);
    }
    if (a.help) {
        free(a.positional);
        fa_cli_help(cmd, stdout);
        return 0;
    }
    if (fa_crypto_init() != FA_OK || fa_fetch_global_init() != FA_OK) {
        fprintf(stderr, "faceauth: cannot initialise libsodium or libcurl\n");
        return 1;
    }
    if (strcmp(cmd, "serve") == 0)
        rc = cmd_serve(&a);
    else if (strcmp(cmd, "customer") == 0)
        rc = cmd_customer(&a);
    else if (strcmp(cmd, "compare") == 0)
        rc = fa_cli_compare(a.n_positional, a.positional, &a.cfg, a.model);
    else if (strcmp(cmd, "embed") == 0)
        rc = fa_cli_embed(a.n_positional, a.positional, a.cfg.model_dir, a.model);
    else if (strcmp(cmd, "score-pairs") == 0)
        rc = fa_cli_score_pairs(a.n_positional, a.positional, &a.cfg, a.model);
    else if (strcmp(cmd, "quality") == 0)
        rc = fa_cli_quality(a.n_positional, a.positional, &a.cfg);
    else if (strcmp(cmd, "user") == 0)
        rc = cmd_user(&a);
    else if (strcmp(cmd, "models") == 0)
        rc = cmd_models(&a);
    else
        rc = usage();
    fa_fetch_global_cleanup();
    free(a.positional);
    return rc;
}
