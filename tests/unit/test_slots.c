/*
 * test_slots.c — the login hash slots (src/api/slots.c): at most n holders,
 * at most n waiting, a waiter gets a slot released within its wait, and
 * everyone beyond the waiting room is refused at once.
 */
#include <pthread.h>
#include <time.h>

#include "faceauth/api.h"
#include "tap.h"

static double ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

struct waiter {
    struct fa_api_slots *s;
    int got;
    double ms;
};

static void *wait_main(void *arg)
{
    struct waiter *w = arg;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    w->got = fa_api_slots_acquire(w->s);
    w->ms = ms_since(&t0);
    if (w->got)
        fa_api_slots_release(w->s);
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_bounds(void)
{
    struct fa_api_slots *s = NULL;
    struct fa_err err = {{0}};
    struct timespec t0;

    TAP_OK(fa_api_slots_new(0, 100, &s, &err) == FA_EINVAL && s == NULL);
    if (!TAP_OK(fa_api_slots_new(2, 0, &s, &err) == FA_OK))
        return;
    TAP_OK(fa_api_slots_acquire(s) && fa_api_slots_acquire(s));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tap_ok(!fa_api_slots_acquire(s) && ms_since(&t0) < 50,
           "wait 0: the third is refused at once (%.1f ms)", ms_since(&t0));
    fa_api_slots_release(s);
    TAP_OK(fa_api_slots_acquire(s));
    fa_api_slots_release(s);
    fa_api_slots_release(s);
    fa_api_slots_free(s);
    fa_api_slots_free(NULL);
    TAP_OK(fa_api_slots_acquire(NULL) == 1); /* no slots: no limit */
    fa_api_slots_release(NULL);
}

static void test_waiting_room(void)
{
    struct fa_api_slots *s = NULL;
    struct fa_err err = {{0}};
    struct waiter w1 = {0}, w2 = {0}, w3 = {0};
    pthread_t t1, t2, t3;

    if (!TAP_OK(fa_api_slots_new(1, 2000, &s, &err) == FA_OK))
        return;
    TAP_OK(fa_api_slots_acquire(s));
    w1.s = w2.s = w3.s = s;
    pthread_create(&t1, NULL, wait_main, &w1);
    sleep_ms(100); /* w1 is in the waiting room (one place: n = 1) */
    pthread_create(&t2, NULL, wait_main, &w2);
    pthread_join(t2, NULL);
    tap_ok(!w2.got && w2.ms < 100, "the waiting room is full: refused at once (%.1f ms)", w2.ms);
    sleep_ms(200);
    fa_api_slots_release(s);
    pthread_join(t1, NULL);
    tap_ok(w1.got && w1.ms >= 250 && w1.ms < 1500,
           "the waiter gets the slot when it is released (%.0f ms)", w1.ms);

    /* A wait that runs out: refused after about wait_ms. */
    fa_api_slots_free(s);
    if (!TAP_OK(fa_api_slots_new(1, 200, &s, &err) == FA_OK))
        return;
    TAP_OK(fa_api_slots_acquire(s));
    w3.s = s;
    pthread_create(&t3, NULL, wait_main, &w3);
    pthread_join(t3, NULL);
    tap_ok(!w3.got && w3.ms >= 190 && w3.ms < 1500, "a wait runs out after wait_ms (%.0f ms)",
           w3.ms);
    fa_api_slots_release(s);
    fa_api_slots_free(s);
}

int main(void)
{
    test_bounds();
    test_waiting_room();
    return tap_done();
}
