/*
 * sha256.c — the SHA-256 of a file, read in chunks (model files are up to
 * 100 MB; none is held in memory whole).
 */
#include "faceauth/crypto.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

enum fa_rc fa_crypto_sha256_file(const char *path, char out[FA_DIGEST_HEX + 1],
                                 struct fa_err *err)
{
    crypto_hash_sha256_state st;
    unsigned char chunk[1 << 16];
    unsigned char digest[crypto_hash_sha256_BYTES];
    size_t n;
    FILE *f = fopen(path, "rb");
    out[0] = '\0';
    if (f == NULL)
        return fa_err_set(err, errno == ENOENT ? FA_ENOTFOUND : FA_EINTERNAL,
                          "cannot open %s: %s", path, strerror(errno));
    crypto_hash_sha256_init(&st);
    do {
        n = fread(chunk, 1, sizeof chunk, f);
        crypto_hash_sha256_update(&st, chunk, n);
    } while (n > 0);
    if (ferror(f)) {
        fclose(f);
        return fa_err_set(err, FA_EINTERNAL, "cannot read %s", path);
    }
    fclose(f);
    crypto_hash_sha256_final(&st, digest);
    sodium_bin2hex(out, FA_DIGEST_HEX + 1, digest, sizeof digest);
    return FA_OK;
}
