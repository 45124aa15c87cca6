/*
 * fetchlimit.c — the limits on image downloads that span more than one URL:
 * one deadline for all the downloads of a request, and a cap on the
 * downloads one customer has running at once (see api_int.h).
 *
 * DESIGN. fetch_timeout_ms caps one URL, but an enroll takes up to five, so
 * alone it let one request hold a worker five times as long, and a few such
 * requests held every worker (/healthz waited 46 s). The request's deadline
 * is set once in api_begin; each URL gets what is left of it when that is
 * shorter than the per-URL cap, and a URL whose turn comes after the
 * deadline is not fetched at all. The per-customer cap bounds how many
 * workers one customer's slow URLs can hold at once, so other customers
 * keep being served; it answers 429 at once rather than queueing, because
 * a queued request would hold a worker while it waits, the very thing the
 * cap is there to prevent.
 *
 * The counts live in struct api_fetch_slots (services.c owns it): a small
 * table of (customer, downloads running) rows under one mutex, a row per
 * customer with a download in flight, so at most one per HTTP thread.
 */
#include "api_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "services.h"

long long api_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Take one of the customer's download slots. FA_ELIMIT when all are in use. */
static enum fa_rc slot_take(struct api_fetch_slots *s, int64_t customer_id, int *running)
{
    struct api_fetch_slot *free_row = NULL;
    enum fa_rc rc = FA_OK;

    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n_rows; i++) {
        if (s->rows[i].count > 0 && s->rows[i].customer_id == customer_id) {
            *running = s->rows[i].count;
            if (s->rows[i].count >= s->per_customer)
                rc = FA_ELIMIT;
            else
                s->rows[i].count++;
            goto out;
        }
        if (s->rows[i].count == 0 && free_row == NULL)
            free_row = &s->rows[i];
    }
    *running = 0;
    if (free_row == NULL) /* more downloads than rows: every row is a running one */
        rc = FA_EBUSY;
    else
        *free_row = (struct api_fetch_slot){customer_id, 1};
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void slot_give(struct api_fetch_slots *s, int64_t customer_id)
{
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n_rows; i++) {
        if (s->rows[i].count > 0 && s->rows[i].customer_id == customer_id) {
            s->rows[i].count--;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

static int is_data_uri(const char *url)
{
    return url != NULL && strncasecmp(url, "data:", 5) == 0;
}

/* The download ran into the request's deadline, not its own cap: say so. */
static enum fa_rc deadline_message(struct fa_call *c)
{
    char inner[FA_ERR_MAX];
    snprintf(inner, sizeof inner, "%s", c->err.msg);
    return fa_err_field(&c->err, FA_ETIMEOUT, "url",
                        "the image downloads of this request took longer than %ld ms in "
                        "all (%s)",
                        c->app->cfg->fetch_request_timeout_ms, inner);
}

static enum fa_rc fetch_in_slot(struct fa_call *c, const char *url, const struct fa_fetch_opts *o,
                                uint8_t **bytes, size_t *n)
{
    struct api_fetch_slots *slots = api_services_slots(c->app);
    int running = 0;
    enum fa_rc rc = slots != NULL ? slot_take(slots, c->customer_id, &running) : FA_OK;

    if (rc == FA_ELIMIT)
        return fa_err_field(&c->err, rc, "url",
                            "this customer already has %d image downloads running, the most "
                            "allowed at once; retry when one has finished",
                            running);
    if (rc == FA_EBUSY)
        return fa_err_field(&c->err, rc, "url", "too many image downloads running; retry later");
    rc = fa_fetch_image(url, o, bytes, n, &c->err);
    if (slots != NULL)
        slot_give(slots, c->customer_id);
    return rc;
}

enum fa_rc api_fetch_limited(struct fa_call *c, const char *url, uint8_t **bytes, size_t *n)
{
    struct fa_fetch_opts o = c->app->fetch;
    long long left;
    int cut = 0;
    enum fa_rc rc;

    *bytes = NULL;
    *n = 0;
    if (url == NULL || url[0] == '\0' || is_data_uri(url))
        return fa_fetch_image(url, &o, bytes, n, &c->err);
    if (c->fetch_deadline_ms == 0) /* a caller that skipped api_begin */
        c->fetch_deadline_ms = api_now_ms() + c->app->cfg->fetch_request_timeout_ms;
    left = c->fetch_deadline_ms - api_now_ms();
    if (left < 1)
        return fa_err_field(&c->err, FA_ETIMEOUT, "url",
                            "not fetched: the image downloads of this request took longer "
                            "than %ld ms in all",
                            c->app->cfg->fetch_request_timeout_ms);
    if (left < o.timeout_ms) {
        o.timeout_ms = (long)left;
        cut = 1;
    }
    rc = fetch_in_slot(c, url, &o, bytes, n);
    if (rc == FA_ETIMEOUT && cut)
        rc = deadline_message(c);
    return rc;
}
