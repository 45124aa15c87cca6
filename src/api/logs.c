/*
 * logs.c — view/logs/all: the customer's transaction log, newest first.
 * matchScore is null for failures unless the config's log_failed_scores
 * says otherwise: the store keeps it, the wire does not show it.
 */
#include "api_int.h"

#include <math.h>
#include <stdlib.h>

static cJSON *log_row(const struct fa_call *c, const struct fa_log_row *r)
{
    cJSON *row = cJSON_CreateObject();
    api_add_date(row, "timeStamp", r->created);
    cJSON_AddStringToObject(row, "userName", r->user_name);
    cJSON_AddStringToObject(row, "requestType", r->request_type);
    cJSON_AddStringToObject(row, "result", r->success ? "success" : "failure");
    /* A failed attempt's score would tell a forger how close they came
     * (hill-climbing); only an operator's log_failed_scores shows it. */
    if (isnan(r->score) || (!r->success && !c->app->cfg->log_failed_scores))
        cJSON_AddNullToObject(row, "matchScore");
    else
        cJSON_AddNumberToObject(row, "matchScore", round(r->score * 1e4) / 1e4);
    api_add_image_link(c, row, "faceThumbnail", r->thumbnail_id);
    api_add_image_link(c, row, "faceOriginal", r->original_id);
    return row;
}

static enum fa_rc logs_all(struct fa_call *c)
{
    struct fa_log_row *rows = NULL;
    int page, count, n = 0;
    int64_t from, to;
    long total = 0;
    cJSON *out, *data;
    enum fa_rc rc = api_paging(c, &page, &count);
    if (rc == FA_OK)
        rc = api_date(c, "fromThisDate", 0, &from);
    if (rc == FA_OK)
        rc = api_date(c, "toThisDate", 1, &to);
    if (rc == FA_OK)
        rc = fa_store_log_list(c->app->store, c->customer_id, from, to, page, count, &rows, &n,
                               &total, &c->err);
    if (rc != FA_OK)
        return rc;
    out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "currentPageNumber", page);
    cJSON_AddNumberToObject(out, "totalPageNumber", (double)api_total_pages(total, count));
    cJSON_AddNumberToObject(out, "totalLogCount", (double)total);
    data = cJSON_AddArrayToObject(out, "data");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(data, log_row(c, &rows[i]));
    free(rows);
    api_reply_ok(c, out, "Transaction log");
    return FA_OK;
}

void fa_api_logs_all(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, logs_all);
}
