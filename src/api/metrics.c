/*
 * metrics.c — GET /metrics: the server's counters in the Prometheus text
 * format (src/metrics/), for the scraper the operator allows.
 *
 * Access (metrics_token, see fa_metrics_check_access): without a token only
 * loopback clients are served (403 for others), with one every client must
 * send it as a Bearer token (401 otherwise). The figures are counts and
 * times per route, gate and stage, never names or faces, but they still
 * tell an outsider how busy the service is and how often faces fail.
 *
 * The index and database sizes are read here, at scrape time, rather than
 * tracked on every write.
 */
#include "api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* Bytes of faceauth.db and its WAL (the WAL holds recent writes until a
 * checkpoint, so the pair is what the database takes on disk). */
static uint64_t database_bytes(const struct fa_config *cfg)
{
    static const char *const suffix[] = {"", "-wal"};
    uint64_t total = 0;
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        char path[FA_CFG_PATH_MAX + 32];
        struct stat st;
        snprintf(path, sizeof path, "%s/faceauth.db%s", cfg->data_dir, suffix[i]);
        if (stat(path, &st) == 0 && st.st_size > 0)
            total += (uint64_t)st.st_size;
    }
    return total;
}

/* 403 in the error shape of every other answer (the rc table has no 403:
 * FA_EFORBIDDEN is an address we refuse to fetch from, a 400). */
static void reply_forbidden(struct fa_http_reply *reply, const char *msg)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *inner = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(inner, "message", msg);
    cJSON_AddStringToObject(inner, "status", "403");
    fa_http_reply_json(reply, 403, root);
}

void fa_api_metrics(void *app_ptr, struct fa_http_req *req, struct fa_http_reply *reply)
{
    struct fa_app *app = app_ptr;
    struct fa_err err = {{0}};
    struct fa_metrics_gauges g = {0, 0};
    char *text = NULL;
    size_t n = 0;
    enum fa_rc rc = fa_metrics_check_access(app->cfg->metrics_token,
                                            fa_http_req_header(req, "Authorization"),
                                            fa_http_req_from_loopback(req), &err);
    if (rc == FA_EFORBIDDEN) {
        reply_forbidden(reply, err.msg);
        return;
    }
    if (rc == FA_OK && app->metrics == NULL)
        rc = fa_err_set(&err, FA_ENOTFOUND, "metrics are not collected by this server");
    if (rc != FA_OK) {
        fa_http_reply_error(reply, rc, err.msg);
        return;
    }
    g.templates = app->index != NULL ? (uint64_t)fa_index_count(app->index, 0) : 0;
    g.db_bytes = database_bytes(app->cfg);
    rc = fa_metrics_render(app->metrics, &g, &text, &n, &err);
    if (rc != FA_OK) {
        fa_http_reply_error(reply, rc, err.msg);
        return;
    }
    fa_http_reply_bytes(reply, 200, "text/plain; version=0.0.4; charset=utf-8", (uint8_t *)text,
                        n);
    reply->no_store = 1;
}
