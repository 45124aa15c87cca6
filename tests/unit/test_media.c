/*
 * test_media.c — image files and signed links, in a fresh mkdtemp data
 * directory (removed at the end).
 *
 * Files are checked on disk with plain POSIX calls, not only through the
 * module: the layout (images/<customer>/<id>.<ext>), the key file's mode
 * and size, and that no temporary file outlives a save.
 */
#include "faceauth/media.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "faceauth/crypto.h"
#include "tap.h"
#include "testutil.h"

static char g_dir[64];

/* Remove a directory tree (no symlinks are made here, lstat keeps it so). */
static void rm_tree(const char *path)
{
    struct stat st;
    DIR *d;
    struct dirent *e;
    if (lstat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    d = opendir(path);
    while (d != NULL && (e = readdir(d)) != NULL) {
        char sub[1024];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        rm_tree(sub);
    }
    if (d != NULL)
        closedir(d);
    rmdir(path);
}

static int is_hex(const char *s, size_t n)
{
    return strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

/* Entries of a directory other than . and ..; *tmp counts names ending in .tmp. */
static int count_entries(const char *path, int *tmp)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    *tmp = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        n++;
        if (len >= 4 && strcmp(e->d_name + len - 4, ".tmp") == 0)
            (*tmp)++;
    }
    closedir(d);
    return n;
}

static void test_open(void)
{
    char path[256];
    struct stat st;
    int rc;
    struct fa_media *m = NULL, *again = NULL;
    struct fa_err err = {{0}};
    uint8_t *key1, *key2;
    size_t n1, n2;
    char sig[FA_DIGEST_HEX + 1], exp[32];
    long long expires = (long long)time(NULL) + 3600;

    if (!tap_ok(fa_media_open(g_dir, &m, &err) == FA_OK && m != NULL, "fa_media_open: %s", err.msg))
        return;
    snprintf(path, sizeof path, "%s/images", g_dir);
    tap_ok(stat(path, &st) == 0 && S_ISDIR(st.st_mode), "images/ is created");
    snprintf(path, sizeof path, "%s/secret.key", g_dir);
    memset(&st, 0, sizeof st);
    rc = stat(path, &st);
    tap_ok(rc == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600,
           "secret.key has mode 0600 (%o)", (unsigned)(st.st_mode & 0777));
    tap_ok(st.st_size == FA_KEY_BYTES, "secret.key holds %d bytes (%lld)", FA_KEY_BYTES,
           (long long)st.st_size);
    key1 = tu_read_file(path, &n1);

    fa_media_sign(m, "0123456789abcdef0123456789abcdef", expires, sig);
    snprintf(exp, sizeof exp, "%lld", expires);
    fa_media_free(m);

    tap_ok(fa_media_open(g_dir, &again, &err) == FA_OK, "re-open: %s", err.msg);
    key2 = tu_read_file(path, &n2);
    tap_ok(key1 != NULL && key2 != NULL && n1 == n2 && memcmp(key1, key2, n1) == 0,
           "re-open keeps the key file as it was");
    tap_ok(again != NULL &&
               fa_media_verify(again, "0123456789abcdef0123456789abcdef", exp, sig, time(NULL)),
           "a link signed before the re-open verifies after it");
    fa_media_free(again);
    free(key1);
    free(key2);
    fa_media_free(NULL); /* NULL is fine */
}

static void test_open_errors(void)
{
    char dir[128], path[160];
    struct fa_media *m = NULL;
    struct fa_err err = {{0}};
    FILE *f;

    /* A key file cut short is refused: signing with a partly-zero key would
     * make links forgeable. */
    snprintf(dir, sizeof dir, "%s/short", g_dir);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/secret.key", dir);
    f = fopen(path, "wb");
    if (f != NULL) {
        fwrite("0123456789", 1, 10, f);
        fclose(f);
    }
    tap_ok(fa_media_open(dir, &m, &err) == FA_EINTERNAL && m == NULL &&
               strstr(err.msg, "secret.key"),
           "a short secret.key is refused: %s", err.msg);

    /* The data dir cannot be created under a regular file. */
    snprintf(dir, sizeof dir, "%s/short/secret.key/sub", g_dir);
    memset(&err, 0, sizeof err);
    tap_ok(fa_media_open(dir, &m, &err) == FA_EINTERNAL && m == NULL && err.msg[0] != '\0',
           "an impossible data dir is FA_EINTERNAL: %s", err.msg);
}

static void test_files(void)
{
    static const uint8_t bytes[] = {0xFF, 0xD8, 0x00, 'f', 'a', 'c', 'e', 0x00, 0xFF, 0xD9};
    struct fa_media *m = NULL;
    struct fa_err err = {{0}};
    char id[FA_IMAGE_ID_HEX + 1], id2[FA_IMAGE_ID_HEX + 1];
    char rel[FA_PATH_MAX], rel2[FA_PATH_MAX], rel_empty[FA_PATH_MAX], want[FA_PATH_MAX + 64];
    char full[FA_PATH_MAX + 64], folder[128];
    uint8_t *got = NULL, *disk;
    size_t n = 0;
    struct stat st;
    int tmp = 0, rc;

    if (!tap_ok(fa_media_open(g_dir, &m, &err) == FA_OK, "open for files: %s", err.msg))
        return;
    tap_ok(fa_media_save(m, 42, bytes, sizeof bytes, "png", id, rel, &err) == FA_OK,
           "fa_media_save: %s", err.msg);
    tap_ok(is_hex(id, FA_IMAGE_ID_HEX), "the id is %d lowercase hex characters: %s",
           FA_IMAGE_ID_HEX, id);
    snprintf(want, sizeof want, "images/42/%s.png", id);
    tap_ok(strcmp(rel, want) == 0, "relpath is images/<customer>/<id>.<ext>: %s", rel);
    snprintf(full, sizeof full, "%s/%s", g_dir, rel);
    disk = tu_read_file(full, &n);
    tap_ok(disk != NULL && n == sizeof bytes && memcmp(disk, bytes, n) == 0,
           "the file on disk holds the bytes (%zu)", n);
    free(disk);
    memset(&st, 0, sizeof st);
    rc = stat(full, &st);
    tap_ok(rc == 0 && (st.st_mode & 0077) == 0, "stored faces are not readable by others (%o)",
           (unsigned)(st.st_mode & 0777));
    snprintf(folder, sizeof folder, "%s/images/42", g_dir);
    tap_ok(count_entries(folder, &tmp) == 1 && tmp == 0, "no .tmp file is left beside it");

    tap_ok(fa_media_save(m, 42, bytes, sizeof bytes, "jpg", id2, rel2, &err) == FA_OK &&
               strcmp(id, id2) != 0 && count_entries(folder, &tmp) == 2 && tmp == 0,
           "a second save gets a new id and a second file");
    tap_ok(fa_media_save(m, 42, bytes, 0, "jpg", id2, rel_empty, &err) == FA_OK,
           "an empty file can be saved: %s", err.msg);

    n = 0;
    rc = fa_media_read(m, rel, &got, &n, &err);
    tap_ok(rc == FA_OK && n == sizeof bytes && memcmp(got, bytes, n) == 0,
           "fa_media_read returns the same bytes (%zu)", n);
    free(got);
    got = NULL;
    tap_ok(fa_media_read(m, rel_empty, &got, &n, &err) == FA_OK && n == 0,
           "reading an empty file gives 0 bytes");
    free(got);
    got = NULL;

    fa_media_remove(m, rel);
    tap_ok(access(full, F_OK) != 0, "fa_media_remove deletes the file");
    memset(&err, 0, sizeof err);
    tap_ok(fa_media_read(m, rel, &got, &n, &err) == FA_ENOTFOUND && got == NULL &&
               err.msg[0] != '\0',
           "reading a removed file is FA_ENOTFOUND: %s", err.msg);
    fa_media_remove(m, rel); /* already gone: not an error, no crash */
    fa_media_remove(m, rel2);
    fa_media_remove(m, rel_empty);
    tap_ok(count_entries(folder, &tmp) == 0, "every file removed");
    fa_media_free(m);
}

/* Sign with the stack above the callee filled with fill: a signer that reads
 * past its own buffer would hash that fill into the signature. */
static void __attribute__((noinline))
sign_over(const struct fa_media *m, const char *id, int fill, char sig[FA_DIGEST_HEX + 1])
{
    volatile char junk[4096];
    memset((char *)junk, fill, sizeof junk);
    fa_media_sign(m, id, 1700000000LL, sig);
    junk[0] = junk[1];
}

static void test_links(void)
{
    static const char id[] = "00112233445566778899aabbccddeeff";
    struct fa_media *m = NULL, *other = NULL;
    struct fa_err err = {{0}};
    char dir2[128];
    char sig[FA_DIGEST_HEX + 1], sig2[FA_DIGEST_HEX + 1], bad[FA_DIGEST_HEX + 1];
    char exp[32], exp_later[32], long_id[1001];
    time_t now = time(NULL);
    long long expires = (long long)now + 60;

    if (!tap_ok(fa_media_open(g_dir, &m, &err) == FA_OK, "open for links: %s", err.msg))
        return;
    snprintf(dir2, sizeof dir2, "%s/other", g_dir);
    fa_media_open(dir2, &other, &err);
    snprintf(exp, sizeof exp, "%lld", expires);
    snprintf(exp_later, sizeof exp_later, "%lld", expires + 1);
    fa_media_sign(m, id, expires, sig);
    fa_media_sign(m, id, expires, sig2);
    tap_ok(is_hex(sig, FA_DIGEST_HEX) && strcmp(sig, sig2) == 0,
           "a signature is %d hex characters and deterministic", FA_DIGEST_HEX);

    TAP_OK(fa_media_verify(m, id, exp, sig, now) == 1);
    tap_ok(fa_media_verify(m, id, exp, sig, (time_t)expires) == 1,
           "valid up to the second it expires");
    tap_ok(fa_media_verify(m, id, exp, sig, (time_t)expires + 1) == 0, "expired (expires < now)");
    tap_ok(other != NULL && fa_media_verify(other, id, exp, sig, now) == 0,
           "another data dir's key refuses it");

    snprintf(bad, sizeof bad, "%s", sig);
    bad[10] = bad[10] == '0' ? '1' : '0';
    tap_ok(fa_media_verify(m, id, exp, bad, now) == 0, "a tampered signature is refused");
    snprintf(bad, sizeof bad, "%.*s", FA_DIGEST_HEX - 1, sig);
    tap_ok(fa_media_verify(m, id, exp, bad, now) == 0, "a truncated signature is refused");
    tap_ok(fa_media_verify(m, id, exp, "", now) == 0, "an empty signature is refused");
    TAP_OK(fa_media_verify(m, "00112233445566778899aabbccddeefe", exp, sig, now) == 0);
    tap_ok(fa_media_verify(m, id, exp_later, sig, now) == 0, "another expiry is refused");
    tap_ok(fa_media_verify(m, id, "abc", sig, now) == 0, "non-numeric expires is refused");
    tap_ok(fa_media_verify(m, id, "", sig, now) == 0, "empty expires is refused");
    snprintf(bad, sizeof bad, "%sx", exp);
    tap_ok(fa_media_verify(m, id, bad, sig, now) == 0, "expires with trailing junk is refused");
    tap_ok(fa_media_verify(m, id, "99999999999999999999999", sig, now) == 0,
           "an out-of-range expires is refused");
    tap_ok(fa_media_verify(m, NULL, exp, sig, now) == 0 &&
               fa_media_verify(m, id, NULL, sig, now) == 0 &&
               fa_media_verify(m, id, exp, NULL, now) == 0,
           "NULL id, expires or signature is refused");

    /* Ids come from URLs: a long one must be refused, not overflow a buffer
     * (ASan would report it) or collide with its prefix. */
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    tap_ok(fa_media_verify(m, long_id, exp, sig, now) == 0, "a 1000-character id is refused");
    sign_over(m, long_id, 0x11, sig);
    sign_over(m, long_id, 0x77, sig2);
    tap_ok(strcmp(sig, sig2) == 0 && fa_media_verify(m, long_id, "1700000000", sig, 0) == 0,
           "a long id's signature depends on nothing but its input, and never verifies");
    fa_media_free(other);
    fa_media_free(m);
}

static void test_mime(void)
{
    TAP_OK(strcmp(fa_media_mime("jpg"), "image/jpeg") == 0);
    tap_ok(strcmp(fa_media_mime("jpeg"), "image/jpeg") == 0,
           "the kind name \"jpeg\" (media.h's example) is image/jpeg too");
    TAP_OK(strcmp(fa_media_mime("png"), "image/png") == 0);
    TAP_OK(strcmp(fa_media_mime("webp"), "image/webp") == 0);
    TAP_OK(strcmp(fa_media_mime("bmp"), "image/bmp") == 0);
    TAP_OK(strcmp(fa_media_mime("gif"), "application/octet-stream") == 0);
    TAP_OK(strcmp(fa_media_mime(""), "application/octet-stream") == 0);
    TAP_OK(strcmp(fa_media_mime("html"), "application/octet-stream") == 0);
}

int main(void)
{
    if (!TAP_OK(fa_crypto_init() == FA_OK))
        return tap_done();
    snprintf(g_dir, sizeof g_dir, "/tmp/fa_media_XXXXXX");
    if (!tap_ok(mkdtemp(g_dir) != NULL, "temporary directory"))
        return tap_done();

    test_open();
    test_open_errors();
    test_files();
    test_links();
    test_mime();

    rm_tree(g_dir);
    tap_ok(access(g_dir, F_OK) != 0, "temporary directory removed");
    return tap_done();
}
