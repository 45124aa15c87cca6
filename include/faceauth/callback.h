/*
 * callback.h — delivering callback events to the customers' URLs.
 *
 * The outbox is a table (store.h, fa_store_event): an event is written in
 * the same transaction as the log row it reports and gets the body of the
 * answer just before that answer is sent. One delivery thread, started
 * here, POSTs due events and records each attempt:
 *
 *  - signed: X-Faceauth-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
 *    "<t>.<body>"> under the customer's callback secret (re-signed at each
 *    attempt, so t is the time of sending; receivers refuse an old t);
 *  - guarded like image fetching (fetch.h, fa_fetch_guard_setopt): http(s)
 *    only, no proxy, no private addresses unless allow_private; redirects
 *    are not followed; connect and total timeouts per attempt;
 *  - retried: a non-2xx answer or any failure schedules the next attempt
 *    after fa_callback_backoff_ms (callback_int.h); after max_attempts the event is dead;
 *  - fair: up to max_parallel transfers at once (curl multi, one thread)
 *    and at most one per customer, so a customer whose receiver hangs
 *    holds one slot for at most timeout_ms per attempt and never stops
 *    other customers' events;
 *  - durable: everything lives in the database, so pending events survive a
 *    restart; sent and dead events are deleted keep_s after their last
 *    attempt. Delivery is at least once (a crash after the receiver got an
 *    event but before it was marked sent repeats it): receivers deduplicate
 *    by eventId.
 *
 * Threads: fa_callbacks_start and fa_callbacks_stop from the main thread;
 * fa_callbacks_notify and fa_callbacks_stats from any thread. No lock is
 * held during network I/O.
 */
#ifndef FACEAUTH_CALLBACK_H
#define FACEAUTH_CALLBACK_H

#include <stddef.h>
#include <stdint.h>

#include "faceauth/common.h"
#include "faceauth/crypto.h"
#include "faceauth/store.h"

/* Each field comes from the config key named beside it. */
struct fa_callback_opts {
    int allow_private;        /* 1: loopback/private URLs allowed (allow_private_urls) */
    long connect_timeout_ms;  /* per attempt (callback_connect_timeout_ms) */
    long timeout_ms;          /* whole attempt (callback_timeout_ms) */
    long retry_base_ms;       /* first retry delay (callback_retry_base_ms) */
    long retry_max_ms;        /* longest retry delay (callback_retry_max_ms) */
    int max_attempts;         /* then dead (callback_max_attempts) */
    int max_parallel;         /* transfers at once, one per customer (callback_parallel) */
    long keep_s;              /* sent and dead events are deleted after this (callback_keep_days) */
};

struct fa_config;

/* Fill o from the config's callback settings. */
void fa_callback_opts_from_config(const struct fa_config *cfg, struct fa_callback_opts *o);

/* fa_callback_opts_from_config of the built-in defaults (fa_config_defaults),
 * for callers without a config (tests). */
void fa_callback_opts_default(struct fa_callback_opts *o);

struct fa_callbacks;

/*
 * Start the delivery thread on st (which must outlive it). Events left held
 * by a previous run (stopped between commit and answer) are released with
 * their stand-in bodies. The caller stops it with fa_callbacks_stop.
 */
enum fa_rc fa_callbacks_start(struct fa_store *st, const struct fa_callback_opts *o,
                              struct fa_callbacks **out, struct fa_err *err);

/* Tell the thread an event became due (it also polls about once a second). NULL is fine. */
void fa_callbacks_notify(struct fa_callbacks *cb);

/*
 * Stop: transfers in flight get up to grace_ms to finish (their outcome is
 * recorded), the rest are abandoned and stay pending for the next start.
 * Joins the thread and frees cb. NULL is fine.
 */
void fa_callbacks_stop(struct fa_callbacks *cb, int grace_ms);

/* Counters since start (sent, retried = failed attempts that will be
 * retried, dead) and events waiting now (queued, from the database; -1
 * when it cannot be read). */
struct fa_callback_stats {
    uint64_t sent;
    uint64_t retried;
    uint64_t dead;
    long queued;
};
void fa_callbacks_stats(struct fa_callbacks *cb, struct fa_callback_stats *out);

#endif
