/*
 * conns.c — the list of open connections and the reaper that enforces the
 * read deadline (see conns.h for why and how).
 *
 * A doubly linked list under one mutex: add and remove are O(1) on MHD's
 * thread, and the reaper walks the whole list a few times a second, which
 * for the connection limit (1000 by default) costs microseconds.
 */
#include "conns.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

/* How often the reaper looks at most: a dropped client lingers at most
 * this long past its deadline. */
#define REAP_TICK_MS 250

struct fa_http_conn {
    struct fa_http_conn *prev, *next;
    int fd;
    int reading;           /* 1: a request is arriving, the deadline runs */
    int has_request;       /* the handler saw the current request */
    int dropped;           /* the reaper shut the socket down */
    int dropped_unlogged;  /* dropped before the handler saw any request */
    struct timespec since; /* when the current request's deadline started */
    uint64_t body_bytes;   /* body of the current request received so far */
};

struct fa_http_conns {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* stopping was set */
    struct fa_http_conn *head;
    long timeout_ms;
    long min_rate;
    int stopping;
    int has_reaper;
    pthread_t reaper;
};

static double ms_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

/* Under the lock: is c still reading past its deadline? */
static int past_deadline(const struct fa_http_conns *cs, const struct fa_http_conn *c,
                         const struct timespec *now)
{
    double allowed = (double)cs->timeout_ms;
    if (!c->reading || c->dropped)
        return 0;
    if (cs->min_rate > 0)
        allowed += (double)c->body_bytes * 1e3 / (double)cs->min_rate;
    return ms_between(&c->since, now) > allowed;
}

/* Under the lock: shut down every connection past its deadline. */
static void reap(struct fa_http_conns *cs)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    for (struct fa_http_conn *c = cs->head; c != NULL; c = c->next) {
        if (!past_deadline(cs, c, &now))
            continue;
        /* The socket is open: MHD closes it only after remove(), which
         * needs the lock we hold. */
        shutdown(c->fd, SHUT_RDWR);
        c->dropped = 1;
        c->dropped_unlogged = !c->has_request;
    }
}

static void deadline_in(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *reaper_main(void *arg)
{
    struct fa_http_conns *cs = arg;
    /* A quarter of the timeout, so a short one (tests) is still kept to
     * within 25%; never busier than every 10 ms. */
    long tick = cs->timeout_ms / 4 < REAP_TICK_MS ? cs->timeout_ms / 4 : REAP_TICK_MS;
    if (tick < 10)
        tick = 10;
    pthread_mutex_lock(&cs->mu);
    while (!cs->stopping) {
        struct timespec until;
        deadline_in(&until, tick);
        pthread_cond_timedwait(&cs->cv, &cs->mu, &until);
        if (!cs->stopping)
            reap(cs);
    }
    pthread_mutex_unlock(&cs->mu);
    return NULL;
}

struct fa_http_conns *fa_http_conns_start(long read_timeout_ms, long min_body_rate)
{
    pthread_condattr_t attr;
    struct fa_http_conns *cs = calloc(1, sizeof *cs);
    if (cs == NULL)
        return NULL;
    cs->timeout_ms = read_timeout_ms;
    cs->min_rate = min_body_rate;
    pthread_mutex_init(&cs->mu, NULL);
    /* The reaper's waits are measured on the monotonic clock, like the
     * deadlines, so a wall-clock jump cannot stall or rush them. */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&cs->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (read_timeout_ms > 0) {
        if (pthread_create(&cs->reaper, NULL, reaper_main, cs) != 0) {
            fa_http_conns_free(cs);
            return NULL;
        }
        cs->has_reaper = 1;
    }
    return cs;
}

void fa_http_conns_stop(struct fa_http_conns *cs)
{
    if (cs == NULL || !cs->has_reaper)
        return;
    pthread_mutex_lock(&cs->mu);
    cs->stopping = 1;
    pthread_cond_signal(&cs->cv);
    pthread_mutex_unlock(&cs->mu);
    pthread_join(cs->reaper, NULL);
    cs->has_reaper = 0;
}

void fa_http_conns_free(struct fa_http_conns *cs)
{
    struct fa_http_conn *c, *next;
    if (cs == NULL)
        return;
    for (c = cs->head; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    pthread_cond_destroy(&cs->cv);
    pthread_mutex_destroy(&cs->mu);
    free(cs);
}

struct fa_http_conn *fa_http_conns_add(struct fa_http_conns *cs, int fd)
{
    struct fa_http_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->fd = fd;
    c->reading = 1;
    clock_gettime(CLOCK_MONOTONIC, &c->since);
    pthread_mutex_lock(&cs->mu);
    c->next = cs->head;
    if (cs->head != NULL)
        cs->head->prev = c;
    cs->head = c;
    pthread_mutex_unlock(&cs->mu);
    return c;
}

int fa_http_conns_remove(struct fa_http_conns *cs, struct fa_http_conn *c, double *ms)
{
    struct timespec now;
    int unlogged;
    if (c == NULL)
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&cs->mu);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        cs->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    unlogged = c->dropped_unlogged;
    *ms = ms_between(&c->since, &now);
    pthread_mutex_unlock(&cs->mu);
    free(c);
    return unlogged;
}

void fa_http_conn_request_line(struct fa_http_conns *cs, struct fa_http_conn *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&cs->mu);
    clock_gettime(CLOCK_MONOTONIC, &c->since);
    c->body_bytes = 0;
    pthread_mutex_unlock(&cs->mu);
}

void fa_http_conn_begin(struct fa_http_conns *cs, struct fa_http_conn *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&cs->mu);
    c->has_request = 1;
    c->dropped_unlogged = 0; /* this request's log line will tell */
    pthread_mutex_unlock(&cs->mu);
}

void fa_http_conn_body(struct fa_http_conns *cs, struct fa_http_conn *c, size_t n)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&cs->mu);
    c->body_bytes += n;
    pthread_mutex_unlock(&cs->mu);
}

void fa_http_conn_read_done(struct fa_http_conns *cs, struct fa_http_conn *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&cs->mu);
    c->reading = 0;
    pthread_mutex_unlock(&cs->mu);
}

int fa_http_conn_next(struct fa_http_conns *cs, struct fa_http_conn *c)
{
    int dropped;
    if (c == NULL)
        return 0;
    pthread_mutex_lock(&cs->mu);
    dropped = c->dropped;
    c->reading = 1;
    c->has_request = 0;
    c->body_bytes = 0;
    clock_gettime(CLOCK_MONOTONIC, &c->since);
    pthread_mutex_unlock(&cs->mu);
    return dropped;
}
