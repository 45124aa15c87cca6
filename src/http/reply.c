/*
 * reply.c — building replies, and the one table from fa_rc to HTTP status.
 */
#include "faceauth/http.h"

#include <stdio.h>
#include <stdlib.h>

int fa_http_status_for(enum fa_rc rc)
{
    switch (rc) {
    case FA_OK: return 200;
    case FA_EINVAL:
    case FA_EFETCH:
    case FA_ETIMEOUT:
    case FA_EFORBIDDEN:
    case FA_EIMAGE:
    case FA_ENOFACE:
    case FA_EGATE:
    case FA_ESPOOF:
    case FA_ENOTSAME:
    case FA_EFAIL: return 400;
    case FA_EAUTH: return 401;
    case FA_ENOTFOUND: return 404;
    case FA_EMETHOD: return 405;
    case FA_ECONFLICT: return 409;
    case FA_ETOOBIG: return 413;
    case FA_ELIMIT: return 429;
    case FA_EBUSY:
    case FA_EREADONLY: return 503;
    case FA_ENOSPACE: return 507;
    case FA_EDB:
    case FA_EVISION:
    case FA_ENOMEM:
    case FA_EINTERNAL: return 500;
    }
    return 500;
}

static void reply_reset(struct fa_http_reply *reply)
{
    cJSON_Delete(reply->json);
    free(reply->bytes);
    reply->json = NULL;
    reply->bytes = NULL;
    reply->n_bytes = 0;
    reply->content_type = NULL;
}

void fa_http_reply_json(struct fa_http_reply *reply, int status, cJSON *json)
{
    reply_reset(reply);
    reply->status = status;
    reply->json = json;
}

/* Wrap fields (or a new object) as {"error": {..., "message", "status"}}. */
static cJSON *error_body(cJSON *fields, const char *msg, const char *status)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *inner = fields != NULL ? fields : cJSON_CreateObject();
    cJSON_DeleteItemFromObjectCaseSensitive(inner, "message");
    cJSON_DeleteItemFromObjectCaseSensitive(inner, "status");
    cJSON_AddStringToObject(inner, "message", msg != NULL && *msg ? msg : "request failed");
    cJSON_AddStringToObject(inner, "status", status);
    cJSON_AddItemToObject(root, "error", inner);
    return root;
}

void fa_http_reply_error(struct fa_http_reply *reply, enum fa_rc rc, const char *msg)
{
    char status_text[8];
    int status = fa_http_status_for(rc);
    /* A server-side failure never leaks internals (SQL, paths) to the client.
     * 503 and 507 carry messages written for the client (busy, read-only,
     * disk full: what to do about it), never an SQLite or OS text. */
    if (status >= 500 && status != 503 && status != 507) {
        fprintf(stderr, "faceauth: %s: %s\n", fa_rc_name(rc), msg != NULL ? msg : "");
        msg = "internal server error";
    }
    snprintf(status_text, sizeof status_text, "%d", status);
    fa_http_reply_json(reply, status, error_body(NULL, msg, status_text));
}

void fa_http_reply_failure(struct fa_http_reply *reply, cJSON *fields, const char *msg)
{
    fa_http_reply_json(reply, 400, error_body(fields, msg, "422"));
}

void fa_http_reply_failure_rc(struct fa_http_reply *reply, enum fa_rc rc, cJSON *fields,
                               const char *msg)
{
    char status_text[8];
    int status = fa_http_status_for(rc);
    snprintf(status_text, sizeof status_text, "%d", status);
    fa_http_reply_json(reply, status, error_body(fields, msg, status_text));
}

void fa_http_reply_bytes(struct fa_http_reply *reply, int status, const char *content_type,
                         uint8_t *bytes, size_t n)
{
    reply_reset(reply);
    reply->status = status;
    reply->bytes = bytes;
    reply->n_bytes = n;
    reply->content_type = content_type;
}
