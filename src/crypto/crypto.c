/*
 * crypto.c — libsodium wrappers (see include/faceauth/crypto.h).
 *
 * Design: every function here is a thin, allocation-free shim over one
 * libsodium primitive, so the choices live in one place:
 *  - passwords: Argon2id v1.3 with libsodium's INTERACTIVE limits (64 MiB,
 *    2 passes); the encoded string carries salt and parameters, so stronger
 *    limits later only need a rehash on the next successful login;
 *  - tokens: 32 bytes from the OS CSPRNG, base64url without padding (43
 *    chars, safe in URLs and headers as is);
 *  - token digests: unkeyed BLAKE2b-256. A keyed hash is not needed because
 *    the input already has 256 bits of entropy; the digest only keeps a
 *    stolen database from yielding usable tokens;
 *  - signatures: HMAC-SHA256, because webhook receivers can check it with
 *    any standard library;
 *  - records at rest (templates): XChaCha20-Poly1305, whose 192-bit nonces
 *    may be drawn at random for every record without counting them.
 * Temporary copies of secrets are wiped with sodium_memzero before return.
 */
#include "faceauth/crypto.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

_Static_assert(FA_PWHASH_MAX >= crypto_pwhash_STRBYTES, "FA_PWHASH_MAX too small");
_Static_assert(FA_KEY_BYTES == crypto_auth_hmacsha256_KEYBYTES, "HMAC key size");
_Static_assert(FA_DIGEST_HEX == 2 * crypto_auth_hmacsha256_BYTES, "HMAC hex size");
_Static_assert(FA_SEAL_OVERHEAD == 1 + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES +
                                       crypto_aead_xchacha20poly1305_ietf_ABYTES,
               "seal overhead");
_Static_assert(FA_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "seal key size");
_Static_assert(FA_TOKEN_CHARS + 1 ==
                   sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
               "token length");

#define FA_TOKEN_BYTES 32
#define FA_DIGEST_BYTES 32

enum fa_rc fa_crypto_init(void)
{
    /* 0: initialised now, 1: already initialised; both are fine. */
    if (sodium_init() < 0)
        return FA_EINTERNAL;
    return FA_OK;
}

enum fa_rc fa_crypto_password_hash(const char *password, char out[FA_PWHASH_MAX],
                                   struct fa_err *err)
{
    int r;

    assert(password != NULL);
    out[0] = '\0';
    r = crypto_pwhash_str_alg(out, password, strlen(password),
                              crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13);
    /* The only runtime failure is the 64 MiB work area not being available. */
    if (r != 0)
        return fa_err_set(err, FA_ENOMEM, "password hashing failed: out of memory");
    return FA_OK;
}

int fa_crypto_password_verify(const char *password, const char *stored_hash)
{
    if (password == NULL || stored_hash == NULL)
        return 0;
    /* libsodium reads at most crypto_pwhash_STRBYTES of stored_hash and
     * rejects anything that is not a well-formed encoded hash. */
    return crypto_pwhash_str_verify(stored_hash, password, strlen(password)) == 0;
}

void fa_crypto_token_new(char out[FA_TOKEN_CHARS + 1])
{
    unsigned char bin[FA_TOKEN_BYTES];

    randombytes_buf(bin, sizeof bin);
    sodium_bin2base64(out, FA_TOKEN_CHARS + 1, bin, sizeof bin,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(bin, sizeof bin);
}

void fa_crypto_random_hex(char *out, size_t n_bytes)
{
    unsigned char bin[32];

    /* Chunks keep the stack buffer fixed whatever n_bytes is; each
     * sodium_bin2hex call writes its NUL where the next chunk starts. */
    while (n_bytes > 0) {
        size_t n = n_bytes < sizeof bin ? n_bytes : sizeof bin;
        randombytes_buf(bin, n);
        sodium_bin2hex(out, 2 * n + 1, bin, n);
        out += 2 * n;
        n_bytes -= n;
    }
    *out = '\0';
    sodium_memzero(bin, sizeof bin);
}

void fa_crypto_token_digest(const char *token, char out[FA_DIGEST_HEX + 1])
{
    unsigned char d[FA_DIGEST_BYTES];

    assert(token != NULL);
    crypto_generichash(d, sizeof d, (const unsigned char *)token, strlen(token), NULL, 0);
    sodium_bin2hex(out, FA_DIGEST_HEX + 1, d, sizeof d);
}

void fa_crypto_hmac_hex(const uint8_t key[FA_KEY_BYTES], const void *msg, size_t n,
                        char out[FA_DIGEST_HEX + 1])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];

    /* An empty message may come as NULL; never hand NULL to the hash. */
    if (msg == NULL) {
        assert(n == 0);
        msg = "";
        n = 0;
    }
    crypto_auth_hmacsha256(mac, msg, n, key);
    sodium_bin2hex(out, FA_DIGEST_HEX + 1, mac, sizeof mac);
}

int fa_crypto_str_equal(const char *a, const char *b)
{
    unsigned char da[FA_DIGEST_BYTES], db[FA_DIGEST_BYTES];
    int eq;

    if (a == NULL || b == NULL)
        return 0;
    /* Comparing fixed-size digests instead of the strings makes the time
     * independent of where (and whether) the inputs differ, including their
     * lengths: a length check up front would leak the secret's length. The
     * hashing time depends only on each input's own length. */
    crypto_generichash(da, sizeof da, (const unsigned char *)a, strlen(a), NULL, 0);
    crypto_generichash(db, sizeof db, (const unsigned char *)b, strlen(b), NULL, 0);
    eq = sodium_memcmp(da, db, sizeof da) == 0;
    sodium_memzero(da, sizeof da);
    sodium_memzero(db, sizeof db);
    return eq;
}

void fa_crypto_wipe(void *p, size_t n)
{
    if (p != NULL)
        sodium_memzero(p, n);
}

void fa_crypto_key_new(uint8_t key[FA_KEY_BYTES])
{
    randombytes_buf(key, FA_KEY_BYTES);
}

void fa_crypto_seal(const uint8_t key[FA_KEY_BYTES], const void *plain, size_t n, const void *ad,
                    size_t n_ad, uint8_t *out)
{
    uint8_t *nonce = out + 1;

    out[0] = FA_SEAL_VERSION;
    randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, NULL, plain, n, ad, n_ad, NULL,
        nonce, key);
}

int fa_crypto_open(const uint8_t key[FA_KEY_BYTES], const uint8_t *sealed, size_t n_sealed,
                   const void *ad, size_t n_ad, void *plain)
{
    const uint8_t *nonce = sealed + 1;

    if (sealed == NULL || n_sealed < FA_SEAL_OVERHEAD || sealed[0] != FA_SEAL_VERSION)
        return -1;
    /* libsodium writes nothing on a failed tag check; plain stays as it was */
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            plain, NULL, NULL, nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
            n_sealed - 1 - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, ad, n_ad, nonce,
            key) != 0) {
        sodium_memzero(plain, n_sealed - FA_SEAL_OVERHEAD);
        return -1;
    }
    return 0;
}
