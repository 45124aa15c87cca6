/*
 * crypto.h — libsodium wrappers: password hashes, random tokens, token
 * digests, HMAC signatures.
 *
 * fa_crypto_init must run once before any thread starts (sodium_init).
 * Everything else is thread-safe and allocation-free.
 */
#ifndef FACEAUTH_CRYPTO_H
#define FACEAUTH_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "faceauth/common.h"

#define FA_PWHASH_MAX 128      /* >= crypto_pwhash_STRBYTES, with the NUL */
#define FA_TOKEN_CHARS 43      /* 32 random bytes, base64url without padding */
#define FA_DIGEST_HEX 64       /* 32-byte digest as lowercase hex */
#define FA_KEY_BYTES 32        /* HMAC keys */

enum fa_rc fa_crypto_init(void);

/* Argon2id (libsodium's interactive limits) into out, a NUL-terminated string. */
enum fa_rc fa_crypto_password_hash(const char *password, char out[FA_PWHASH_MAX],
                                   struct fa_err *err);

/* 1 when password matches the stored hash, 0 otherwise (never an error). */
int fa_crypto_password_verify(const char *password, const char *stored_hash);

/* A new unguessable token: 32 random bytes as base64url, NUL-terminated. */
void fa_crypto_token_new(char out[FA_TOKEN_CHARS + 1]);

/* A short random id for URLs and file names: n_bytes random bytes as hex
 * (out must hold 2*n_bytes+1). */
void fa_crypto_random_hex(char *out, size_t n_bytes);

/* BLAKE2b-256 of a token as hex: what the database stores instead of it. */
void fa_crypto_token_digest(const char *token, char out[FA_DIGEST_HEX + 1]);

/* HMAC-SHA256 of msg under key, as hex. */
void fa_crypto_hmac_hex(const uint8_t key[FA_KEY_BYTES], const void *msg, size_t n,
                        char out[FA_DIGEST_HEX + 1]);

/* Constant-time equality of two NUL-terminated strings. */
int fa_crypto_str_equal(const char *a, const char *b);

/* Overwrite a secret in memory with zeros in a way the compiler keeps (sodium_memzero). */
void fa_crypto_wipe(void *p, size_t n);

/* Fill key with random bytes. */
void fa_crypto_key_new(uint8_t key[FA_KEY_BYTES]);

/*
 * Authenticated encryption of small records at rest (the templates):
 * XChaCha20-Poly1305 (IETF) under a 32-byte key with a random 24-byte nonce
 * per record, so one key may seal any number of records. The sealed form is
 * a version byte (FA_SEAL_VERSION), the nonce, then the ciphertext with its
 * 16-byte tag: FA_SEAL_OVERHEAD bytes more than the plaintext. ad
 * (associated data, may be NULL with n_ad 0) is authenticated but not
 * stored: opening with other ad fails, which binds a record to its owner.
 */
#define FA_SEAL_VERSION 1
#define FA_SEAL_OVERHEAD 41 /* 1 + 24 + 16 */

/* Seal n bytes of plain into out (n + FA_SEAL_OVERHEAD bytes). */
void fa_crypto_seal(const uint8_t key[FA_KEY_BYTES], const void *plain, size_t n, const void *ad,
                    size_t n_ad, uint8_t *out);

/* Open a sealed record of n_sealed bytes into plain (n_sealed -
 * FA_SEAL_OVERHEAD bytes). 0 on success; -1 when it is too short, of
 * another version, or was not sealed under this key and ad (tampered,
 * moved to another row, or another key); plain is then zeroed when
 * n_sealed was long enough to name its size. */
int fa_crypto_open(const uint8_t key[FA_KEY_BYTES], const uint8_t *sealed, size_t n_sealed,
                   const void *ad, size_t n_ad, void *plain);

#endif
