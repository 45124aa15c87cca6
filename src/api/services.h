/*
 * services.h — the API's shared state beyond the database (services.c):
 * the per-customer download counts (fetchlimit.c) and the purge thread
 * (retention.c). Private to src/api/.
 */
#ifndef FACEAUTH_API_SERVICES_H
#define FACEAUTH_API_SERVICES_H

#include <pthread.h>
#include <stdint.h>

#include "faceauth/api.h"

/* One customer with downloads running; count 0 marks a free row. */
struct api_fetch_slot {
    int64_t customer_id;
    int count;
};

struct api_fetch_slots {
    pthread_mutex_t lock; /* guards rows; never held during a download */
    int per_customer;     /* max_fetches_per_customer */
    int n_rows;           /* one per HTTP thread: no more downloads run at once */
    struct api_fetch_slot *rows;
};

struct fa_api_services {
    struct api_fetch_slots slots;
    pthread_t purger;
    int purger_running;
    pthread_mutex_t stop_lock; /* guards stop; the purger waits on stop_cond */
    pthread_cond_t stop_cond;
    int stop;
};

/* The download counts, or NULL when the services were not started (unit tests). */
struct api_fetch_slots *api_services_slots(const struct fa_app *app);

/* The purge thread's body (retention.c); arg is the struct fa_app. */
void *api_purge_thread(void *arg);

#endif
