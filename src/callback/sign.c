/*
 * sign.c — the pure parts of callback delivery: the signature header, the
 * secret's encoding and the retry schedule (see callback_int.h).
 */
#include "callback_int.h"

#include "faceauth/config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fa_callback_opts_from_config(const struct fa_config *cfg, struct fa_callback_opts *o)
{
    memset(o, 0, sizeof *o);
    o->allow_private = cfg->allow_private_urls;
    o->connect_timeout_ms = cfg->callback_connect_timeout_ms;
    o->timeout_ms = cfg->callback_timeout_ms;
    o->retry_base_ms = cfg->callback_retry_base_ms;
    o->retry_max_ms = cfg->callback_retry_max_ms;
    o->max_attempts = cfg->callback_max_attempts;
    o->max_parallel = cfg->callback_parallel;
    o->keep_s = (long)cfg->callback_keep_days * 86400;
}

void fa_callback_opts_default(struct fa_callback_opts *o)
{
    struct fa_config cfg;
    fa_config_defaults(&cfg);
    fa_callback_opts_from_config(&cfg, o);
}

/*
 * The signed message is "<t>.<body>": binding t into the MAC is what lets a
 * receiver refuse a replayed event by its age, since an attacker cannot
 * move t without breaking v1. The body is signed as the bytes sent.
 */
void fa_callback_sign(const uint8_t key[FA_KEY_BYTES], int64_t t, const char *body, size_t n,
                      char out[FA_CB_SIG_MAX])
{
    char prefix[24];
    char mac[FA_DIGEST_HEX + 1];
    int len = snprintf(prefix, sizeof prefix, "%" PRId64 ".", t);
    char *msg = malloc((size_t)len + n);

    if (msg == NULL) {
        /* An empty signature fails every receiver's check: the attempt
         * fails and is retried, which is the safe way to be out of memory. */
        out[0] = '\0';
        return;
    }
    memcpy(msg, prefix, (size_t)len);
    if (n > 0)
        memcpy(msg + len, body, n);
    fa_crypto_hmac_hex(key, msg, (size_t)len + n, mac);
    free(msg);
    snprintf(out, FA_CB_SIG_MAX, "t=%" PRId64 ",v1=%s", t, mac);
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

enum fa_rc fa_callback_secret_parse(const char *hex, uint8_t key[FA_KEY_BYTES])
{
    if (hex == NULL || strlen(hex) != FA_CB_SECRET_HEX)
        return FA_EINVAL;
    for (int i = 0; i < FA_KEY_BYTES; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            fa_crypto_wipe(key, FA_KEY_BYTES);
            return FA_EINVAL;
        }
        key[i] = (uint8_t)(hi << 4 | lo);
    }
    return FA_OK;
}

/*
 * Factor 3: the default 1 s base reaches the 1 h cap at the 9th retry, so
 * the 10 attempts span about two hours (1, 3, 9 … 2187 s, then 3600 s) —
 * long enough to ride out a receiver's deploy or a short outage, short
 * enough that a dead receiver's events are reported dead the same day.
 * The jitter keeps at least half the delay ("equal jitter"), so a retry
 * never comes much sooner than the schedule says.
 */
long fa_callback_backoff_ms(const struct fa_callback_opts *o, int attempts, uint32_t jitter)
{
    double d = (double)o->retry_base_ms;
    long half;

    for (int i = 1; i < attempts && d < (double)o->retry_max_ms; i++)
        d *= 3;
    if (d > (double)o->retry_max_ms)
        d = (double)o->retry_max_ms;
    if (d < 1)
        d = 1;
    half = (long)(d / 2);
    return (long)d - half + (long)(jitter % (uint32_t)(half + 1));
}
