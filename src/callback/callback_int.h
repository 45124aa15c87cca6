/*
 * callback_int.h — the pure parts of delivery (internal to src/callback/:
 * deliver.c uses what sign.c defines; tests/unit/test_callback.c checks
 * them without a receiver). Not part of callback.h, the module's API.
 */
#ifndef FACEAUTH_CALLBACK_INT_H
#define FACEAUTH_CALLBACK_INT_H

#include <stddef.h>
#include <stdint.h>

#include "faceauth/callback.h"
#include "faceauth/crypto.h"

#define FA_CB_SIG_MAX 96 /* "t=<20 digits>,v1=<64 hex>" and the NUL */

/* The X-Faceauth-Signature value for body sent at Unix time t. */
void fa_callback_sign(const uint8_t key[FA_KEY_BYTES], int64_t t, const char *body, size_t n,
                      char out[FA_CB_SIG_MAX]);

/* Decode a FA_CB_SECRET_HEX-character hex secret; FA_EINVAL when it is not one. */
enum fa_rc fa_callback_secret_parse(const char *hex, uint8_t key[FA_KEY_BYTES]);

/*
 * The delay before the attempt after `attempts` failed ones (>= 1):
 * retry_base_ms x 3^(attempts-1), at most retry_max_ms, then jittered into
 * [d/2, d] by jitter (any 32-bit random value), so receivers that fail
 * together are not retried in lockstep.
 */
long fa_callback_backoff_ms(const struct fa_callback_opts *o, int attempts, uint32_t jitter);

#endif
