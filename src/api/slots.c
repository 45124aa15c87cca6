/*
 * slots.c — a counting semaphore with a bounded waiting room (see api.h).
 *
 * Why not sem_trywait alone: a burst of a few honest logins would get 429
 * although the slot frees within ~0.1 s. Why not sem_timedwait for all: a
 * storm would park every HTTP worker in the wait, and /healthz and face work
 * would queue behind them (the 503s this exists to prevent). So up to n
 * callers wait, briefly; the rest are refused at once.
 */
#include "faceauth/api.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct fa_api_slots {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a slot was released */
    int n, busy, waiting, wait_ms;
};

enum fa_rc fa_api_slots_new(int n, int wait_ms, struct fa_api_slots **out, struct fa_err *err)
{
    struct fa_api_slots *s;
    pthread_condattr_t ca;
    *out = NULL;
    if (n < 1 || wait_ms < 0)
        return fa_err_set(err, FA_EINVAL, "login_hash_concurrency must be at least 1");
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return fa_err_set(err, FA_ENOMEM, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    /* CLOCK_MONOTONIC: a wall-clock step must not stretch or cut the wait. */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->n = n;
    s->wait_ms = wait_ms;
    *out = s;
    return FA_OK;
}

void fa_api_slots_free(struct fa_api_slots *s)
{
    if (s == NULL)
        return;
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int fa_api_slots_acquire(struct fa_api_slots *s)
{
    struct timespec until;
    int got = 0, timed_out = 0;
    if (s == NULL)
        return 1;
    pthread_mutex_lock(&s->mu);
    if (s->busy >= s->n && s->waiting < s->n && s->wait_ms > 0) {
        deadline_in(&until, s->wait_ms);
        s->waiting++;
        while (s->busy >= s->n && !timed_out)
            timed_out = pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT;
        s->waiting--;
    }
    if (s->busy < s->n) {
        s->busy++;
        got = 1;
    }
    pthread_mutex_unlock(&s->mu);
    return got;
}

void fa_api_slots_release(struct fa_api_slots *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->busy--;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}
