/*
 * workers.h — the HTTP layer's own fixed pool of handler threads (internal).
 *
 * MHD's thread pool pins each connection to one polling thread, so a slow
 * handler held up every other connection on that thread while other threads
 * idled. Handlers run here instead: any free worker takes the next job, and
 * MHD's polling thread only moves bytes.
 */
#ifndef FACEAUTH_HTTP_WORKERS_H
#define FACEAUTH_HTTP_WORKERS_H

#include <stddef.h>

struct fa_http_workers;

typedef void (*fa_http_job_fn)(void *job);

/* n threads that call run(job) for each job; at most max_queued jobs wait.
 * NULL when threads or memory are lacking. */
struct fa_http_workers *fa_http_workers_start(int n, size_t max_queued, fa_http_job_fn run);

/*
 * Queue a job; 0 when the queue is full or the pool is stopping. accepted(job)
 * runs under the queue lock just before a worker can see the job, so the
 * caller can prepare for a run that may start (and end) at once.
 */
int fa_http_workers_submit(struct fa_http_workers *w, void *job, void (*accepted)(void *job));

/* Refuse new jobs, run every job already queued, join the threads. */
void fa_http_workers_stop(struct fa_http_workers *w);

/* Free a stopped pool; NULL is fine. Separate from stop so that submit can
 * still be called (and refuse) until nothing else can reach the pool. */
void fa_http_workers_free(struct fa_http_workers *w);

#endif
