/*
 * events.c — the callback event of an enroll, update or authenticate: its
 * name, its id, and its body (see callback.h for the delivery).
 *
 * A callback's body is the body the client got, with four fields added at
 * its top level: event, eventId, customerName and timeStamp. A success
 * answer is a flat object, so they sit beside its fields; a refusal is
 * {"error": {...}}, and they sit beside "error". The outbox row is written
 * in the record's transaction with a stand-in body (userName and the
 * status only), and api_event_finish swaps in the real answer before it is
 * sent. The stand-in is only ever delivered when the process stopped
 * between the two, so a recorded operation is always reported.
 */
#include "api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The event a record reports; 0 (and *e unset) for search. */
static int event_of(const struct fa_store_record *rec, enum fa_cb_event *e)
{
    if (strcmp(rec->request_type, "authenticate") == 0) {
        *e = rec->success ? FA_CB_AUTH_SUCCESS : FA_CB_AUTH_FAILURE;
        return 1;
    }
    if (strcmp(rec->request_type, "enroll") == 0 || strcmp(rec->request_type, "faceUpdate") == 0) {
        *e = rec->success ? FA_CB_ENROLL_ACCEPTED : FA_CB_ENROLL_REJECTED;
        return 1;
    }
    return 0;
}

static void add_event_fields(const struct fa_call *c, cJSON *obj)
{
    cJSON_AddStringToObject(obj, "event", fa_cb_event_name(c->event.ev.event));
    cJSON_AddStringToObject(obj, "eventId", c->event.ev.event_id);
    cJSON_AddStringToObject(obj, "customerName", c->event.customer);
    api_add_date(obj, "timeStamp", c->event.time);
}

/* The stand-in: what the record itself says, in the answer's shape. */
static char *standin_body(const struct fa_call *c, const struct fa_store_record *rec)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *fields = rec->success ? root : cJSON_AddObjectToObject(root, "error");
    int auth = strcmp(rec->request_type, "authenticate") == 0;
    char *out;

    cJSON_AddStringToObject(fields, "userName", rec->user_name != NULL ? rec->user_name : "");
    cJSON_AddStringToObject(fields, auth ? "authenticationStatus" : "enrollmentStatus",
                            rec->success ? "success" : "failure");
    cJSON_AddStringToObject(fields, "message",
                            "recorded; the server stopped before it could answer");
    add_event_fields(c, root);
    out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

char *api_event_prepare(struct fa_call *c, struct fa_store_record *rec)
{
    struct api_event *ev = &c->event;
    char *body;

    memset(ev, 0, sizeof *ev);
    rec->callback = NULL;
    if (!event_of(rec, &ev->ev.event))
        return NULL;
    fa_crypto_random_hex(ev->ev.event_id, FA_EVENT_ID_HEX / 2);
    ev->time = (int64_t)time(NULL);
    /* The enrollment page carries no customerName: its link stands for the
     * customer, so the name comes from the customer id. */
    if (c->customer_name != NULL)
        snprintf(ev->customer, sizeof ev->customer, "%s", c->customer_name);
    else if (fa_store_customer_name(c->app->store, c->customer_id, ev->customer, NULL) != FA_OK)
        ev->customer[0] = '\0';
    body = standin_body(c, rec);
    /* Out of memory: the operation still goes ahead, without its callback. */
    if (body == NULL) {
        fprintf(stderr, "faceauth: callback event %s dropped: out of memory\n", ev->ev.event_id);
        return NULL;
    }
    ev->ev.body = body;
    rec->callback = &ev->ev;
    return body;
}

void api_event_finish(struct fa_call *c)
{
    struct fa_err err = {{0}};
    cJSON *root;
    char *body = NULL;

    if (!c->event.ev.queued)
        return;
    c->event.ev.queued = 0;
    root = c->reply->json != NULL ? cJSON_Duplicate(c->reply->json, 1) : cJSON_CreateObject();
    if (root != NULL) {
        add_event_fields(c, root);
        body = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
    }
    /* On failure the event stays held with its stand-in body, and the
     * delivery thread releases it a minute later: late, never lost. */
    if (body == NULL)
        fprintf(stderr, "faceauth: callback %s: out of memory, the short body will be sent\n",
                c->event.ev.event_id);
    else if (fa_store_event_ready(c->app->store, c->event.ev.event_id, body, &err) != FA_OK)
        fprintf(stderr, "faceauth: callback %s: %s; the short body will be sent\n",
                c->event.ev.event_id, err.msg);
    cJSON_free(body);
    fa_callbacks_notify(c->app->callbacks);
}
