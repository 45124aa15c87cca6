/*
 * health.c — GET /healthz (the process answers) and GET /readyz (models
 * loaded, the database takes writes, the disk has room). No authentication,
 * no data.
 */
#include "api_int.h"

#include <math.h>
#include <stdio.h>

void fa_api_healthz(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "status", "ok");
    fa_http_reply_json(reply, 200, out);
}

void fa_api_readyz(void *app_ptr, struct fa_http_req *req, struct fa_http_reply *reply)
{
    struct fa_app *app = app_ptr;
    char reason[160] = "";
    double free_mb = 0;
    /* The server only starts once every model loaded, so a running process
     * has its models; the database is what can go away (locks), and the
     * disk (full, read-only), which takes the database with it but also
     * every photo: taking the write lock does not write, so a full disk
     * needs its own check. */
    int db_ok = fa_store_writable(app->store);
    int disk_ok = app->disk == NULL || fa_disk_ready(app->disk, reason, sizeof reason, &free_mb);
    cJSON *out = cJSON_CreateObject();
    if (!db_ok && reason[0] == '\0')
        snprintf(reason, sizeof reason, "the database does not take writes");
    cJSON_AddStringToObject(out, "status", db_ok && disk_ok ? "ready" : "not ready");
    cJSON_AddBoolToObject(out, "models", 1);
    cJSON_AddBoolToObject(out, "database", db_ok);
    cJSON_AddBoolToObject(out, "disk", disk_ok);
    if (app->disk != NULL)
        cJSON_AddNumberToObject(out, "diskFreeMB", floor(free_mb * 10) / 10);
    if (reason[0] != '\0')
        cJSON_AddStringToObject(out, "reason", reason);
    fa_http_reply_json(reply, db_ok && disk_ok ? 200 : 503, out);
}
