/*
 * test_crypto.c — the libsodium wrappers: known-answer vectors for the
 * digest and the HMAC (so a change of primitive cannot slip through), and
 * shape/behaviour checks for the random outputs and password hashes.
 */
#include "faceauth/crypto.h"

#include <string.h>

#include "tap.h"

static int all_chars_in(const char *s, const char *set)
{
    for (; *s != '\0'; s++) {
        if (strchr(set, *s) == NULL)
            return 0;
    }
    return 1;
}

static void test_password(void)
{
    char h1[FA_PWHASH_MAX], h2[FA_PWHASH_MAX];
    struct fa_err err = {{0}};

    TAP_OK(fa_crypto_password_hash("correct horse", h1, &err) == FA_OK);
    TAP_OK(fa_crypto_password_hash("correct horse", h2, &err) == FA_OK);
    tap_ok(strncmp(h1, "$argon2id$v=19$m=65536,t=2,p=1$", 31) == 0,
           "hash is Argon2id with interactive limits: %s", h1);
    tap_ok(strcmp(h1, h2) != 0, "two hashes of one password differ (salt)");
    TAP_OK(fa_crypto_password_verify("correct horse", h1) == 1);
    TAP_OK(fa_crypto_password_verify("correct horse", h2) == 1);
    TAP_OK(fa_crypto_password_verify("correct horsE", h1) == 0);
    TAP_OK(fa_crypto_password_verify("", h1) == 0);
    TAP_OK(fa_crypto_password_verify("correct horse", "not a hash") == 0);
    TAP_OK(fa_crypto_password_verify("correct horse", "") == 0);
    TAP_OK(fa_crypto_password_verify(NULL, h1) == 0);
    TAP_OK(fa_crypto_password_verify("x", NULL) == 0);
}

static void test_tokens(void)
{
    char t1[FA_TOKEN_CHARS + 1], t2[FA_TOKEN_CHARS + 1];
    char hex[2 * 40 + 1];

    fa_crypto_token_new(t1);
    fa_crypto_token_new(t2);
    TAP_OK(strlen(t1) == FA_TOKEN_CHARS);
    tap_ok(all_chars_in(t1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
           "token is base64url without padding: %s", t1);
    TAP_OK(strcmp(t1, t2) != 0);

    memset(hex, 'X', sizeof hex);
    fa_crypto_random_hex(hex, 16);
    TAP_OK(strlen(hex) == 32 && all_chars_in(hex, "0123456789abcdef"));
    /* More than one internal chunk (32 bytes) must still be one string. */
    memset(hex, 'X', sizeof hex);
    fa_crypto_random_hex(hex, 40);
    TAP_OK(strlen(hex) == 80 && all_chars_in(hex, "0123456789abcdef"));
    fa_crypto_random_hex(hex, 0);
    TAP_OK(hex[0] == '\0');
}

static void test_digest(void)
{
    char d[FA_DIGEST_HEX + 1];

    /* BLAKE2b-256("abc"), from the BLAKE2 reference implementation. */
    fa_crypto_token_digest("abc", d);
    TAP_OK(strcmp(d, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319") == 0);
    fa_crypto_token_digest("abd", d);
    TAP_OK(strcmp(d, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319") != 0);
}

static void test_hmac(void)
{
    uint8_t key[FA_KEY_BYTES];
    uint8_t key2[FA_KEY_BYTES];
    char mac[FA_DIGEST_HEX + 1], mac2[FA_DIGEST_HEX + 1];

    /* RFC 4231 test case 1: a 20-byte key of 0x0b. HMAC pads short keys
     * with zeros, so the same key zero-padded to 32 bytes gives the RFC's
     * answer. */
    memset(key, 0, sizeof key);
    memset(key, 0x0b, 20);
    fa_crypto_hmac_hex(key, "Hi There", 8, mac);
    TAP_OK(strcmp(mac, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7") == 0);
    /* RFC 4231 test case 2: key "Jefe". */
    memset(key, 0, sizeof key);
    memcpy(key, "Jefe", 4);
    fa_crypto_hmac_hex(key, "what do ya want for nothing?", 28, mac);
    TAP_OK(strcmp(mac, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843") == 0);

    fa_crypto_key_new(key);
    fa_crypto_key_new(key2);
    TAP_OK(memcmp(key, key2, sizeof key) != 0);
    fa_crypto_hmac_hex(key, NULL, 0, mac);
    fa_crypto_hmac_hex(key, "", 0, mac2);
    tap_ok(strcmp(mac, mac2) == 0 && strlen(mac) == FA_DIGEST_HEX, "empty message, NULL or not");
}

static void test_str_equal(void)
{
    TAP_OK(fa_crypto_str_equal("abc", "abc") == 1);
    TAP_OK(fa_crypto_str_equal("", "") == 1);
    TAP_OK(fa_crypto_str_equal("abc", "abd") == 0);
    TAP_OK(fa_crypto_str_equal("abc", "abcd") == 0);
    TAP_OK(fa_crypto_str_equal("abcd", "abc") == 0);
    TAP_OK(fa_crypto_str_equal("", "a") == 0);
    TAP_OK(fa_crypto_str_equal(NULL, "a") == 0);
    TAP_OK(fa_crypto_str_equal("a", NULL) == 0);
    TAP_OK(fa_crypto_str_equal(NULL, NULL) == 0);
}

static void test_wipe(void)
{
    char secret[16] = "hunter2hunter2!";
    size_t i;
    int zero = 1;

    fa_crypto_wipe(secret, sizeof secret);
    for (i = 0; i < sizeof secret; i++)
        zero &= secret[i] == 0;
    TAP_OK(zero);
    fa_crypto_wipe(NULL, 0); /* harmless */
}

/* Sealed records open only under the same key and associated data, and
 * any changed byte is detected. */
static void test_seal(void)
{
    uint8_t key[FA_KEY_BYTES], other[FA_KEY_BYTES];
    float vec[16], back[16];
    uint8_t a[sizeof vec + FA_SEAL_OVERHEAD], b[sizeof vec + FA_SEAL_OVERHEAD];
    const char ad[] = "user 7 sample 1", ad2[] = "user 8 sample 1";

    for (int i = 0; i < 16; i++)
        vec[i] = (float)i / 16.0f;
    fa_crypto_key_new(key);
    fa_crypto_key_new(other);
    fa_crypto_seal(key, vec, sizeof vec, ad, sizeof ad, a);
    fa_crypto_seal(key, vec, sizeof vec, ad, sizeof ad, b);
    TAP_OK(a[0] == FA_SEAL_VERSION);
    TAP_OK(memcmp(a, b, sizeof a) != 0); /* a fresh nonce each time */
    TAP_OK(memcmp(a + 1 + 24, vec, sizeof vec) != 0);
    memset(back, 0, sizeof back);
    TAP_OK(fa_crypto_open(key, a, sizeof a, ad, sizeof ad, back) == 0 &&
           memcmp(back, vec, sizeof vec) == 0);
    TAP_OK(fa_crypto_open(key, a, sizeof a, ad2, sizeof ad2, back) == -1);
    TAP_OK(back[1] == 0.0f); /* zeroed on failure */
    TAP_OK(fa_crypto_open(other, a, sizeof a, ad, sizeof ad, back) == -1);
    for (size_t i = 0; i < sizeof a; i += 7) {
        a[i] ^= 0x01;
        if (!tap_ok(fa_crypto_open(key, a, sizeof a, ad, sizeof ad, back) == -1,
                    "byte %zu flipped: refused", i))
            break;
        a[i] ^= 0x01;
    }
    TAP_OK(fa_crypto_open(key, a, FA_SEAL_OVERHEAD - 1, ad, sizeof ad, back) == -1);
    TAP_OK(fa_crypto_open(key, NULL, 0, NULL, 0, back) == -1);
    fa_crypto_seal(key, vec, 0, NULL, 0, b); /* empty record: tag only */
    TAP_OK(fa_crypto_open(key, b, FA_SEAL_OVERHEAD, NULL, 0, back) == 0);
}

int main(void)
{
    if (!TAP_OK(fa_crypto_init() == FA_OK))
        return tap_done();
    TAP_OK(fa_crypto_init() == FA_OK); /* a second init is harmless */
    test_password();
    test_tokens();
    test_digest();
    test_hmac();
    test_str_equal();
    test_wipe();
    test_seal();
    return tap_done();
}
