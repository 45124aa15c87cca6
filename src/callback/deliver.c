/*
 * deliver.c — the delivery thread (see callback.h).
 *
 * DESIGN. One thread drives a curl multi handle with up to max_parallel
 * transfers, one slot each. A slot is filled from the oldest due event of a
 * customer that has no transfer in flight, so customers take turns: a
 * receiver that hangs costs its customer one slot for timeout_ms per
 * attempt, and the other slots keep serving everyone else. Each finished
 * attempt is written to the database at once (sent, pending with the next
 * due time, or dead), so the thread's memory holds nothing that a restart
 * would need.
 *
 * The thread sleeps in curl_multi_poll: on the transfers' sockets, on the
 * next due time (at most a second, so events written by another process
 * are seen too), or until fa_callbacks_notify wakes it with
 * curl_multi_wakeup. The lock guards only the stop flag, the "look again"
 * flag and the counters; it is never held during a database call or I/O.
 */
#include "faceauth/callback.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "faceauth/fetch.h"
#include "callback_int.h"

#define CB_POLL_MAX_MS 1000        /* look at the database at least this often */
#define CB_RELEASE_EVERY_MS 10000  /* how often stale held events are looked for */
#define CB_HELD_STALE_S 60         /* a held event this old lost its request */
#define CB_USER_AGENT "faceauth-callbacks/1.0"

struct cb_slot {
    CURL *h;                       /* NULL: the slot is free */
    struct curl_slist *headers;
    struct fa_fetch_guard guard;
    struct fa_cb_due ev;           /* owns ev.body while in flight */
    char errbuf[CURL_ERROR_SIZE];
};

struct fa_callbacks {
    struct fa_store *st;
    struct fa_callback_opts o;
    CURLM *multi;
    pthread_t thread;
    int started;
    int n_slots;
    struct cb_slot *slots;
    int64_t next_look_ms;          /* thread only: when to query due events again */
    int64_t next_release_ms;       /* thread only */
    pthread_mutex_t lock;          /* guards the fields below */
    int stopping;
    int grace_ms;
    int look_now;                  /* an event became due, or a slot was freed */
    struct fa_callback_stats stats;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t random_u32(void)
{
    uint8_t key[FA_KEY_BYTES];
    uint32_t v;
    fa_crypto_key_new(key); /* libsodium's CSPRNG, through our one wrapper */
    memcpy(&v, key, sizeof v);
    return v;
}

/* ---- one attempt ---- */

static size_t cb_discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb; /* the receiver's answer is not read; the timeout bounds it */
}

/* Append "name: value" to *l; 0 when out of memory (*l is kept). */
static int header_add(struct curl_slist **l, const char *name, const char *value)
{
    char line[160];
    struct curl_slist *next;

    snprintf(line, sizeof line, "%s: %s", name, value);
    next = curl_slist_append(*l, line);
    if (next == NULL)
        return 0;
    *l = next;
    return 1;
}

/* The headers of one attempt, signed now. "Expect:" (empty) stops curl from
 * waiting for a 100 Continue that many receivers never send. */
static enum fa_rc slot_headers(struct cb_slot *sl, const uint8_t key[FA_KEY_BYTES],
                               struct fa_err *err)
{
    char sig[FA_CB_SIG_MAX];
    struct curl_slist *l = NULL;
    int ok;

    fa_callback_sign(key, (int64_t)time(NULL), sl->ev.body, strlen(sl->ev.body), sig);
    ok = header_add(&l, "Content-Type", "application/json") &&
         header_add(&l, "X-Faceauth-Signature", sig) &&
         header_add(&l, "X-Faceauth-Event", sl->ev.event) &&
         header_add(&l, "X-Faceauth-Event-Id", sl->ev.event_id);
    if (ok) {
        struct curl_slist *next = curl_slist_append(l, "Expect:");
        ok = next != NULL;
        l = ok ? next : l;
    }
    if (!ok) {
        curl_slist_free_all(l);
        return fa_err_set(err, FA_ENOMEM, "out of memory building callback headers");
    }
    sl->headers = l;
    return FA_OK;
}

static enum fa_rc slot_options(struct fa_callbacks *cb, struct cb_slot *sl, struct fa_err *err)
{
    const struct fa_callback_opts *o = &cb->o;
    CURL *h = sl->h;
    CURLcode cc = curl_easy_setopt(h, CURLOPT_URL, sl->ev.url);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_POSTFIELDS, sl->ev.body);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(sl->ev.body));
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_HTTPHEADER, sl->headers);
    if (cc == CURLE_OK) /* a redirect is a failed attempt, never followed */
        cc = curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cb_discard);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, sl->errbuf);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_USERAGENT, CB_USER_AGENT);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_PRIVATE, sl);
    if (cc != CURLE_OK)
        return fa_err_set(err, FA_EINTERNAL, "curl_easy_setopt: %s", curl_easy_strerror(cc));
    sl->guard.allow_private = o->allow_private;
    return fa_fetch_guard_setopt(h, &sl->guard, err);
}

static void slot_free(struct fa_callbacks *cb, struct cb_slot *sl)
{
    if (sl->h != NULL) {
        curl_multi_remove_handle(cb->multi, sl->h);
        curl_easy_cleanup(sl->h);
    }
    curl_slist_free_all(sl->headers);
    free(sl->ev.body);
    memset(sl, 0, sizeof *sl);
}

/* Record the outcome of one attempt of ev; error NULL means it was delivered. */
static void record_attempt(struct fa_callbacks *cb, const struct fa_cb_due *ev, const char *error)
{
    struct fa_err err = {{0}};
    int attempts = ev->attempts + 1;
    const char *state = error == NULL ? "sent" : attempts >= cb->o.max_attempts ? "dead" : "pending";
    int64_t next = error == NULL || attempts >= cb->o.max_attempts
                       ? 0
                       : now_ms() + fa_callback_backoff_ms(&cb->o, attempts, random_u32());
    enum fa_rc rc = fa_store_event_attempt(cb->st, ev->id, state, attempts, next,
                                           error != NULL ? error : "", &err);
    if (rc != FA_OK)
        fprintf(stderr, "faceauth: callback %s: cannot record the attempt: %s\n", ev->event_id,
                err.msg);
    pthread_mutex_lock(&cb->lock);
    if (error == NULL)
        cb->stats.sent++;
    else if (strcmp(state, "dead") == 0)
        cb->stats.dead++;
    else
        cb->stats.retried++;
    cb->look_now = 1;
    pthread_mutex_unlock(&cb->lock);
}

/* Start one attempt in a free slot; the slot takes ownership of ev->body. */
static void slot_start(struct fa_callbacks *cb, struct cb_slot *sl, struct fa_cb_due *ev)
{
    uint8_t key[FA_KEY_BYTES];
    struct fa_err err = {{0}};
    enum fa_rc rc;

    sl->ev = *ev;
    ev->body = NULL;
    if (fa_callback_secret_parse(sl->ev.secret, key) != FA_OK) {
        record_attempt(cb, &sl->ev, "no callback secret: run faceauth customer callback-secret");
        slot_free(cb, sl);
        return;
    }
    rc = slot_headers(sl, key, &err);
    fa_crypto_wipe(key, sizeof key);
    if (rc == FA_OK) {
        sl->h = curl_easy_init();
        rc = sl->h != NULL ? slot_options(cb, sl, &err)
                           : fa_err_set(&err, FA_ENOMEM, "out of memory starting a callback");
    }
    if (rc == FA_OK && curl_multi_add_handle(cb->multi, sl->h) != CURLM_OK)
        rc = fa_err_set(&err, FA_EINTERNAL, "curl_multi_add_handle failed");
    if (rc != FA_OK) {
        record_attempt(cb, &sl->ev, err.msg);
        slot_free(cb, sl);
    }
}

/* Words for a failed attempt, naming what went wrong (never the body). */
static void attempt_error(struct fa_callbacks *cb, struct cb_slot *sl, CURLcode cc, char *out,
                          size_t cap)
{
    long code = 0;

    curl_easy_getinfo(sl->h, CURLINFO_RESPONSE_CODE, &code);
    if (cc == CURLE_OK && code >= 300 && code < 400)
        snprintf(out, cap, "HTTP %ld: redirects are not followed", code);
    else if (cc == CURLE_OK)
        snprintf(out, cap, "HTTP %ld", code);
    else if (sl->guard.refused)
        snprintf(out, cap, "refused private or loopback address %s (allow_private_urls)",
                 sl->guard.refused_ip);
    else if (cc == CURLE_OPERATION_TIMEDOUT)
        snprintf(out, cap, "timed out (connect %ld ms, total %ld ms)", cb->o.connect_timeout_ms,
                 cb->o.timeout_ms);
    else
        snprintf(out, cap, "%s", sl->errbuf[0] != '\0' ? sl->errbuf : curl_easy_strerror(cc));
}

static void slot_finish(struct fa_callbacks *cb, struct cb_slot *sl, CURLcode cc)
{
    char error[FA_CB_ERROR_MAX + 1];
    long code = 0;

    curl_easy_getinfo(sl->h, CURLINFO_RESPONSE_CODE, &code);
    if (cc == CURLE_OK && code >= 200 && code < 300) {
        record_attempt(cb, &sl->ev, NULL);
    } else {
        attempt_error(cb, sl, cc, error, sizeof error);
        record_attempt(cb, &sl->ev, error);
    }
    slot_free(cb, sl);
}

/* An event claimed but not sent by this node goes back to the outbox as it
 * was, so another node (or this one later) sends it without waiting out the
 * PostgreSQL claim's lease. */
static void unclaim(struct fa_callbacks *cb, const struct fa_cb_due *ev)
{
    struct fa_err err = {{0}};

    if (fa_store_event_unclaim(cb->st, ev->id, ev->due_ms, &err) != FA_OK)
        fprintf(stderr, "faceauth: callback %s: cannot hand the event back: %s\n",
                ev->event_id, err.msg);
}

/* A transfer cut short by the stop: the attempt never ended, so its count
 * and last error stay as they were. */
static void slot_abandon(struct fa_callbacks *cb, struct cb_slot *sl)
{
    unclaim(cb, &sl->ev);
    slot_free(cb, sl);
}

/* ---- the loop ---- */

/* Housekeeping, every CB_RELEASE_EVERY_MS: held events whose request is
 * gone become pending; old sent and dead events are deleted. */

static int slot_busy_for(const struct fa_callbacks *cb, int64_t customer_id)
{
    for (int i = 0; i < cb->n_slots; i++)
        if (cb->slots[i].h != NULL && cb->slots[i].ev.customer_id == customer_id)
            return 1;
    return 0;
}

static struct cb_slot *slot_free_one(struct fa_callbacks *cb)
{
    for (int i = 0; i < cb->n_slots; i++)
        if (cb->slots[i].h == NULL)
            return &cb->slots[i];
    return NULL;
}

/* Fill free slots with due events of customers not in flight. */
static void fill_slots(struct fa_callbacks *cb, int64_t now)
{
    struct fa_cb_due *due = NULL;
    struct fa_err err = {{0}};
    int n = 0;
    int64_t next = INT64_MAX;

    if (slot_free_one(cb) == NULL)
        return;
    /* Every customer in flight may head the list, so ask for n_slots rows. */
    if (fa_store_events_due(cb->st, now, cb->n_slots, &due, &n, &err) != FA_OK)
        fprintf(stderr, "faceauth: callbacks: %s\n", err.msg);
    for (int i = 0; i < n; i++) {
        struct cb_slot *sl = slot_free_one(cb);
        if (sl != NULL && !slot_busy_for(cb, due[i].customer_id))
            slot_start(cb, sl, &due[i]);
        else
            unclaim(cb, &due[i]);
    }
    fa_store_due_free(due, n);
    if (fa_store_events_next(cb->st, &next, &err) != FA_OK)
        next = INT64_MAX;
    cb->next_look_ms = now + CB_POLL_MAX_MS;
    if (next > now && next < cb->next_look_ms)
        cb->next_look_ms = next;
}

static void harvest(struct fa_callbacks *cb)
{
    CURLMsg *m;
    int left = 0;
    struct cb_slot *sl = NULL;

    while ((m = curl_multi_info_read(cb->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&sl);
        if (sl != NULL)
            slot_finish(cb, sl, m->data.result);
    }
}

static void housekeeping(struct fa_callbacks *cb, int64_t now)
{
    struct fa_err err = {{0}};
    int n = 0;

    if (now < cb->next_release_ms)
        return;
    cb->next_release_ms = now + CB_RELEASE_EVERY_MS;
    if (fa_store_events_release(cb->st, now / 1000 - CB_HELD_STALE_S, &n, &err) != FA_OK)
        fprintf(stderr, "faceauth: callbacks: %s\n", err.msg);
    if (fa_store_events_prune(cb->st, now / 1000 - cb->o.keep_s, &n, &err) != FA_OK)
        fprintf(stderr, "faceauth: callbacks: %s\n", err.msg);
}

static int in_flight(const struct fa_callbacks *cb)
{
    int n = 0;
    for (int i = 0; i < cb->n_slots; i++)
        n += cb->slots[i].h != NULL;
    return n;
}

static int look_pending(struct fa_callbacks *cb)
{
    int look;
    pthread_mutex_lock(&cb->lock);
    look = cb->look_now;
    pthread_mutex_unlock(&cb->lock);
    return look;
}

/* One turn of the loop while running; returns how long to sleep. */
static int turn(struct fa_callbacks *cb)
{
    int64_t now = now_ms();
    int look;

    pthread_mutex_lock(&cb->lock);
    look = cb->look_now;
    cb->look_now = 0;
    pthread_mutex_unlock(&cb->lock);
    housekeeping(cb, now);
    if (look || now >= cb->next_look_ms)
        fill_slots(cb, now);
    now = now_ms();
    return cb->next_look_ms > now ? (int)(cb->next_look_ms - now) : 0;
}

static void *cb_main(void *arg)
{
    struct fa_callbacks *cb = arg;
    int64_t stop_at = 0;
    int running = 0, wait_ms, stopping, grace_ms;

    for (;;) {
        pthread_mutex_lock(&cb->lock);
        stopping = cb->stopping;
        grace_ms = cb->grace_ms;
        pthread_mutex_unlock(&cb->lock);
        if (stopping && stop_at == 0)
            stop_at = now_ms() + grace_ms;
        if (stopping && (in_flight(cb) == 0 || now_ms() >= stop_at))
            break;
        wait_ms = stopping ? 50 : turn(cb);
        curl_multi_perform(cb->multi, &running);
        harvest(cb);
        if (!stopping && look_pending(cb))
            wait_ms = 0; /* a slot was freed: fill it before sleeping */
        curl_multi_poll(cb->multi, NULL, 0, wait_ms, NULL);
    }
    for (int i = 0; i < cb->n_slots; i++)
        if (cb->slots[i].h != NULL)
            slot_abandon(cb, &cb->slots[i]);
    return NULL;
}

/* ---- start, stop, notify, stats ---- */

static void cb_free(struct fa_callbacks *cb)
{
    if (cb == NULL)
        return;
    for (int i = 0; cb->slots != NULL && i < cb->n_slots; i++)
        slot_free(cb, &cb->slots[i]);
    free(cb->slots);
    if (cb->multi != NULL)
        curl_multi_cleanup(cb->multi);
    pthread_mutex_destroy(&cb->lock);
    free(cb);
}

enum fa_rc fa_callbacks_start(struct fa_store *st, const struct fa_callback_opts *o,
                              struct fa_callbacks **out, struct fa_err *err)
{
    struct fa_callbacks *cb = calloc(1, sizeof *cb);
    enum fa_rc rc = FA_OK;
    int n = 0;

    *out = NULL;
    if (cb == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory starting callbacks");
    pthread_mutex_init(&cb->lock, NULL);
    cb->st = st;
    cb->o = *o;
    cb->n_slots = o->max_parallel > 0 ? o->max_parallel : 1;
    cb->slots = calloc((size_t)cb->n_slots, sizeof *cb->slots);
    cb->multi = curl_multi_init();
    if (cb->slots == NULL || cb->multi == NULL)
        rc = fa_err_set(err, FA_ENOMEM, "out of memory starting callbacks");
    /* No request runs yet, so every held event lost its request. */
    if (rc == FA_OK)
        rc = fa_store_events_release(st, INT64_MAX, &n, err);
    if (rc == FA_OK && n > 0)
        fprintf(stderr, "faceauth: callbacks: %d event(s) recorded but not answered before the "
                        "last stop are sent with their short body\n", n);
    if (rc == FA_OK && pthread_create(&cb->thread, NULL, cb_main, cb) != 0)
        rc = fa_err_set(err, FA_EINTERNAL, "cannot start the callback thread");
    if (rc != FA_OK) {
        cb_free(cb);
        return rc;
    }
    cb->started = 1;
    *out = cb;
    return FA_OK;
}

void fa_callbacks_notify(struct fa_callbacks *cb)
{
    if (cb == NULL)
        return;
    pthread_mutex_lock(&cb->lock);
    cb->look_now = 1;
    pthread_mutex_unlock(&cb->lock);
    curl_multi_wakeup(cb->multi);
}

void fa_callbacks_stop(struct fa_callbacks *cb, int grace_ms)
{
    if (cb == NULL)
        return;
    pthread_mutex_lock(&cb->lock);
    cb->stopping = 1;
    cb->grace_ms = grace_ms > 0 ? grace_ms : 0;
    pthread_mutex_unlock(&cb->lock);
    curl_multi_wakeup(cb->multi);
    if (cb->started)
        pthread_join(cb->thread, NULL);
    cb_free(cb);
}

void fa_callbacks_stats(struct fa_callbacks *cb, struct fa_callback_stats *out)
{
    struct fa_cb_counts counts;
    struct fa_err err = {{0}};

    memset(out, 0, sizeof *out);
    out->queued = -1;
    if (cb == NULL)
        return;
    pthread_mutex_lock(&cb->lock);
    *out = cb->stats;
    pthread_mutex_unlock(&cb->lock);
    out->queued = fa_store_events_count(cb->st, &counts, &err) == FA_OK ? counts.queued : -1;
}
