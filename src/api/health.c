/*
 * health.c — GET /healthz (the process answers) and GET /readyz (models
 * loaded and the database takes writes). No authentication, no data.
 *
 * /healthz runs on the network thread (an inline handler, http.h): it must
 * stay free of I/O and locks. /readyz has a worker of its own (priority).
 */
#include "api_int.h"

void fa_api_healthz(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "status", "ok");
    fa_http_reply_json(reply, 200, out);
}

void fa_api_readyz(void *app_ptr, struct fa_http_req *req, struct fa_http_reply *reply)
{
    struct fa_app *app = app_ptr;
    /* The server only starts once every model loaded, so a running process
     * has its models; the database is what can go away (disk full, locks). */
    int db_ok = fa_store_writable(app->store);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "status", db_ok ? "ready" : "not ready");
    cJSON_AddBoolToObject(out, "models", 1);
    cJSON_AddBoolToObject(out, "database", db_ok);
    fa_http_reply_json(reply, db_ok ? 200 : 503, out);
}
