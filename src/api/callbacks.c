/*
 * callbacks.c — view/callbacks: the customer's callback events, newest
 * first, with where each one stands (pending, sent, dead), how many
 * attempts it took and the last error. The bodies are not listed: they are
 * the answers the client already got.
 */
#include "api_int.h"

#include <stdlib.h>

static cJSON *event_row(const struct fa_cb_row *r)
{
    cJSON *row = cJSON_CreateObject();
    cJSON_AddStringToObject(row, "eventId", r->event_id);
    cJSON_AddStringToObject(row, "event", r->event);
    cJSON_AddStringToObject(row, "url", r->url);
    cJSON_AddStringToObject(row, "state", r->state);
    cJSON_AddNumberToObject(row, "attempts", r->attempts);
    cJSON_AddStringToObject(row, "lastError", r->last_error);
    api_add_date(row, "timeStamp", r->created);
    if (r->state[0] == 'p' && r->next_ms > 0)
        api_add_date(row, "nextAttempt", (r->next_ms + 999) / 1000);
    else
        cJSON_AddNullToObject(row, "nextAttempt");
    return row;
}

static enum fa_rc callbacks_view(struct fa_call *c)
{
    static const char *const states[] = {"any", "pending", "sent", "dead"};
    struct fa_cb_row *rows = NULL;
    int page, count, state = 0, n = 0;
    long total = 0;
    cJSON *out, *data;
    enum fa_rc rc = api_paging(c, &page, &count);
    if (rc == FA_OK)
        rc = api_choice(c, "state", states, 4, 0, &state);
    if (rc == FA_EINVAL)
        rc = fa_err_set(&c->err, FA_EINVAL, "state must be pending, sent, dead or any");
    if (rc == FA_OK)
        rc = fa_store_events_list(c->app->store, c->customer_id, state > 0 ? states[state] : NULL,
                                  page, count, &rows, &n, &total, &c->err);
    if (rc != FA_OK)
        return rc;
    out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "currentPageNumber", page);
    cJSON_AddNumberToObject(out, "totalPageNumber", (double)api_total_pages(total, count));
    cJSON_AddNumberToObject(out, "totalCallbackCount", (double)total);
    data = cJSON_AddArrayToObject(out, "data");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(data, event_row(&rows[i]));
    free(rows);
    api_reply_ok(c, out, "Callback events");
    return FA_OK;
}

void fa_api_callbacks_view(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    api_run(app, req, reply, API_CUSTOMER, callbacks_view);
}
