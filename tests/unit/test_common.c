/*
 * test_common.c — the shared helpers of src/common.c: the error message and
 * the field it is about, the capped buffer (its cap to the byte, a failed
 * append leaving it as it was, running out of memory) and the whole-file
 * read (missing, empty, exactly at the cap, one byte over, a file whose size
 * says 0, a directory), on real files in a mkdtemp folder.
 */
#include "faceauth/common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"

/* The out-of-memory check asks for 4 EiB: under ASan malloc must say NULL
 * rather than stop the test (the environment's ASAN_OPTIONS still win). */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static int streq(const char *a, const char *b) { return strcmp(a, b) == 0; }

/* ---- errors -------------------------------------------------------------- */

static void test_err_set(void)
{
    struct fa_err err = {{0}};
    TAP_OK(fa_err_field(&err, FA_EINVAL, "url", "x") == FA_EINVAL);
    TAP_OK(fa_err_set(&err, FA_EDB, "disk %d", 7) == FA_EDB);
    tap_ok(streq(err.msg, "disk 7") && err.field[0] == '\0' && err.words == 0,
           "fa_err_set: the message, about no field (it forgets an earlier one)");
    tap_ok(streq(fa_err_words(&err), "disk 7"), "fa_err_words of a message without a field");
    TAP_OK(fa_err_set(NULL, FA_ENOMEM, "nowhere") == FA_ENOMEM);
    TAP_OK(fa_err_field(NULL, FA_EINVAL, "url", "nowhere") == FA_EINVAL);
    TAP_OK(fa_err_about(NULL, FA_EINVAL, "url", "nowhere") == FA_EINVAL);
    fa_err_refield(NULL, "url"); /* must not crash */
}

static void test_err_field(void)
{
    struct fa_err err = {{0}};
    TAP_OK(fa_err_field(&err, FA_EINVAL, "url", "invalid base64 in %s", "data URI") == FA_EINVAL);
    tap_ok(streq(err.msg, "url: invalid base64 in data URI"),
           "fa_err_field writes \"field: words\"");
    tap_ok(streq(err.field, "url"), "fa_err_field: err.field is the field");
    tap_ok(streq(fa_err_words(&err), "invalid base64 in data URI"),
           "fa_err_words: the words without the field");

    TAP_OK(fa_err_about(&err, FA_EINVAL, "userName", "userName is required") == FA_EINVAL);
    tap_ok(streq(err.msg, "userName is required") && streq(err.field, "userName"),
           "fa_err_about: the message as written, the field beside it");
    tap_ok(streq(fa_err_words(&err), "userName is required"), "fa_err_about: no prefix to skip");
}

static void test_err_refield(void)
{
    struct fa_err err = {{0}};

    fa_err_field(&err, FA_EINVAL, "url", "missing or empty");
    fa_err_refield(&err, "urls[2]");
    tap_ok(streq(err.msg, "urls[2]: missing or empty") && streq(err.field, "urls[2]"),
           "refield replaces the field's name: %s", err.msg);
    fa_err_refield(&err, "url");
    tap_ok(streq(err.msg, "url: missing or empty"), "to a shorter name and back: %s", err.msg);
    fa_err_refield(&err, "url");
    tap_ok(streq(err.msg, "url: missing or empty"), "to the same name: unchanged: %s", err.msg);

    fa_err_set(&err, FA_EFETCH, "image URL answered HTTP 404: http://x/");
    fa_err_refield(&err, "photo 1");
    tap_ok(streq(err.msg, "photo 1: image URL answered HTTP 404: http://x/") &&
               streq(err.field, "photo 1") &&
               streq(fa_err_words(&err), "image URL answered HTTP 404: http://x/"),
           "refield puts a message without a field under one: %s", err.msg);

    fa_err_about(&err, FA_EINVAL, "url", "url is required");
    fa_err_refield(&err, "url");
    tap_ok(streq(err.msg, "url: url is required"),
           "a message naming its field in its own words gets the prefix: %s", err.msg);
}

/* Messages are cut at FA_ERR_MAX - 1 characters however they were built. */
static void test_err_cut(void)
{
    char longer[FA_ERR_MAX * 2];
    char want[FA_ERR_MAX * 3];
    char field[FA_ERR_FIELD_MAX * 2];
    struct fa_err err = {{0}};

    memset(longer, 'w', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    fa_err_field(&err, FA_EINVAL, "url", "%s", longer);
    tap_ok(strlen(err.msg) == FA_ERR_MAX - 1 && strncmp(err.msg, "url: www", 8) == 0,
           "a long fa_err_field message is cut to %d characters", FA_ERR_MAX - 1);
    fa_err_refield(&err, "urls[4]");
    snprintf(want, sizeof want, "urls[4]: %s", longer);
    want[FA_ERR_MAX - 1] = '\0';
    tap_ok(streq(err.msg, want), "refield of a cut message: cut again at the same length");

    memset(field, 'f', sizeof field - 1);
    field[sizeof field - 1] = '\0';
    fa_err_field(&err, FA_EINVAL, field, "bad");
    tap_ok(strlen(err.field) == FA_ERR_FIELD_MAX - 1 && streq(fa_err_words(&err), "bad") &&
               strncmp(err.msg, err.field, strlen(err.field)) == 0,
           "an over-long field name is cut, and the message names the cut field");
}

/* ---- the capped buffer --------------------------------------------------- */

/* b holds exactly the len bytes of want, followed by a NUL. */
static int holds(const struct fa_buf *b, const char *want, size_t len)
{
    return b->len == len && b->data != NULL && memcmp(b->data, want, len) == 0 &&
           b->data[len] == '\0';
}

static void test_buf_cap(void)
{
    struct fa_buf b;
    fa_buf_init(&b, 8);
    tap_ok(b.data == NULL && b.len == 0 && b.max == 8, "init: empty, nothing allocated");
    TAP_OK(fa_buf_add(&b, "", 0) == FA_OK && b.data == NULL);
    TAP_OK(fa_buf_add(&b, "abc", 3) == FA_OK && holds(&b, "abc", 3));
    TAP_OK(fa_buf_add(&b, "defgh", 5) == FA_OK && holds(&b, "abcdefgh", 8));
    tap_ok(b.alloc <= b.max + 1, "never allocates past the cap and its NUL (%zu)", b.alloc);
    tap_ok(fa_buf_add(&b, "i", 1) == FA_ETOOBIG && holds(&b, "abcdefgh", 8),
           "one byte past the cap: FA_ETOOBIG, the buffer as it was");
    TAP_OK(fa_buf_add(&b, "", 0) == FA_OK && holds(&b, "abcdefgh", 8));
    fa_buf_cleanup(&b);
    tap_ok(b.data == NULL && b.len == 0 && b.max == 8, "cleanup: empty again, same cap");
    fa_buf_cleanup(&b); /* twice is fine */

    tap_ok(fa_buf_add(&b, "123456789", 9) == FA_ETOOBIG && b.data == NULL,
           "one add over the cap: FA_ETOOBIG, nothing allocated");
    TAP_OK(fa_buf_add(&b, "12345678", 8) == FA_OK && holds(&b, "12345678", 8));
    fa_buf_cleanup(&b);

    fa_buf_init(&b, 0);
    tap_ok(fa_buf_add(&b, "x", 1) == FA_ETOOBIG && fa_buf_add(&b, "x", 0) == FA_OK &&
               b.data == NULL,
           "cap 0: every byte is too many");
    fa_buf_init(&b, SIZE_MAX);
    tap_ok(b.max == SIZE_MAX - 1 && fa_buf_add(&b, "ok", 2) == FA_OK && holds(&b, "ok", 2),
           "cap SIZE_MAX: kept one short, so the NUL never wraps");
    fa_buf_cleanup(&b);
}

/* Many small appends: every byte in order, the cap reached exactly. */
static void test_buf_growth(void)
{
    enum { CAP = 100003 };
    static char want[CAP];
    struct fa_buf b;
    int ok = 1;
    for (size_t i = 0; i < CAP; i++)
        want[i] = (char)('a' + i % 26);
    fa_buf_init(&b, CAP);
    for (size_t at = 0; at < CAP && ok; at += 7)
        ok = fa_buf_add(&b, want + at, at + 7 <= CAP ? 7 : CAP - at) == FA_OK;
    tap_ok(ok && holds(&b, want, CAP), "%d bytes in 7-byte pieces, all kept in order", CAP);
    tap_ok(b.alloc == (size_t)CAP + 1, "the last growth stops at cap + 1 (%zu)", b.alloc);
    TAP_OK(fa_buf_add(&b, "z", 1) == FA_ETOOBIG && holds(&b, want, CAP));
    fa_buf_cleanup(&b);
}

static void test_buf_printf(void)
{
    char big[10000];
    struct fa_buf b;
    size_t n = 0;
    uint8_t *taken;

    fa_buf_init(&b, 16384);
    TAP_OK(fa_buf_printf(&b, "%s=%d", "x", 42) == FA_OK && holds(&b, "x=42", 4));
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    tap_ok(fa_buf_printf(&b, "[%s]", big) == FA_OK && b.len == 4 + 2 + sizeof big - 1 &&
               b.data[4] == '[' && b.data[b.len - 1] == ']' && b.data[b.len] == '\0',
           "printf past the first allocation grows and writes it whole");
    fa_buf_cleanup(&b);

    fa_buf_init(&b, 10);
    TAP_OK(fa_buf_printf(&b, "abc") == FA_OK);
    tap_ok(fa_buf_printf(&b, "%s", "123456789") == FA_ETOOBIG && holds(&b, "abc", 3),
           "printf over the cap: FA_ETOOBIG, and the text it began to write is undone");
    tap_ok(fa_buf_printf(&b, "%s", "1234567") == FA_OK && holds(&b, "abc1234567", 10),
           "printf up to the cap exactly");
    taken = fa_buf_take(&b, &n);
    tap_ok(taken != NULL && n == 10 && memcmp(taken, "abc1234567", 11) == 0,
           "take: the bytes and their NUL are the caller's");
    tap_ok(b.data == NULL && b.len == 0 && b.max == 10, "take leaves the buffer empty");
    free(taken);
    taken = fa_buf_take(&b, &n);
    tap_ok(taken == NULL && n == 0, "take of an empty buffer: NULL, 0");
}

static void test_buf_no_memory(void)
{
    static const char some[8] = "1234567";
    struct fa_buf b;
    fa_buf_init(&b, SIZE_MAX);
    TAP_OK(fa_buf_add(&b, "kept", 4) == FA_OK);
    /* never copied: the room for 4 EiB cannot be had, so nothing is read */
    tap_ok(fa_buf_add(&b, some, (size_t)1 << 62) == FA_ENOMEM && holds(&b, "kept", 4),
           "out of memory: FA_ENOMEM, the buffer as it was");
    fa_buf_cleanup(&b);
}

/* ---- reading a whole file ------------------------------------------------ */

static char g_dir[] = "/tmp/fa_test_common_XXXXXX";

/* A file of n bytes of a pattern in g_dir; its path goes to path. */
static void make_file(const char *name, size_t n, char *path, size_t cap)
{
    FILE *f;
    snprintf(path, cap, "%s/%s", g_dir, name);
    f = fopen(path, "wb");
    for (size_t i = 0; f != NULL && i < n; i++)
        fputc('A' + (int)(i % 23), f);
    if (f != NULL)
        fclose(f);
}

static int has_pattern(const uint8_t *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (bytes[i] != 'A' + i % 23)
            return 0;
    return bytes[n] == '\0';
}

static void test_read_missing(void)
{
    char path[256];
    struct fa_err err = {{0}};
    uint8_t *bytes = (uint8_t *)"sentinel";
    size_t n = 7;
    snprintf(path, sizeof path, "%s/no-such-file", g_dir);
    tap_ok(fa_read_file(path, 100, &bytes, &n, &err) == FA_ENOTFOUND && bytes == NULL && n == 0,
           "a missing file: FA_ENOTFOUND, no bytes");
    tap_ok(streq(err.msg, "cannot open: No such file or directory"), "it says why: %s", err.msg);
    TAP_OK(fa_read_file(path, 100, &bytes, &n, NULL) == FA_ENOTFOUND); /* err may be NULL */
}

static void test_read_cap(void)
{
    char path[256];
    struct fa_err err = {{0}};
    uint8_t *bytes = NULL;
    size_t n = 0;

    make_file("empty", 0, path, sizeof path);
    tap_ok(fa_read_file(path, 100, &bytes, &n, &err) == FA_OK && bytes != NULL && n == 0 &&
               bytes[0] == '\0',
           "an empty file: \"\", not NULL");
    free(bytes);

    make_file("at-cap", 100000, path, sizeof path);
    tap_ok(fa_read_file(path, 100000, &bytes, &n, &err) == FA_OK && n == 100000 &&
               has_pattern(bytes, n),
           "a file of exactly the cap, over several chunks: every byte, then a NUL");
    free(bytes);
    bytes = NULL;
    tap_ok(fa_read_file(path, 99999, &bytes, &n, &err) == FA_ETOOBIG && bytes == NULL && n == 0,
           "the same file with a cap one byte smaller: FA_ETOOBIG");
    tap_ok(streq(err.msg, "file is over 99999 bytes"), "it names the cap: %s", err.msg);
}

static void test_read_odd_files(void)
{
    struct fa_err err = {{0}};
    uint8_t *bytes = NULL;
    size_t n = 0;
    struct stat st;

    /* /proc files say size 0: only reading to the end gets them whole */
    tap_ok(stat("/proc/self/status", &st) == 0 && st.st_size == 0 &&
               fa_read_file("/proc/self/status", 1 << 20, &bytes, &n, &err) == FA_OK && n > 0 &&
               strncmp((const char *)bytes, "Name:", 5) == 0,
           "a file whose size says 0 is read to its end (%zu bytes)", n);
    free(bytes);
    bytes = NULL;
    tap_ok(fa_read_file(g_dir, 100, &bytes, &n, &err) == FA_EINTERNAL && bytes == NULL,
           "a directory: FA_EINTERNAL (%s)", err.msg);
}

static void test_read_file(void)
{
    static const char *const names[] = {"empty", "at-cap"};
    char path[256];
    if (!tap_ok(mkdtemp(g_dir) != NULL, "temporary folder %s", g_dir))
        return;
    test_read_missing();
    test_read_cap();
    test_read_odd_files();
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", g_dir, names[i]);
        unlink(path);
    }
    rmdir(g_dir);
}

int main(void)
{
    test_err_set();
    test_err_field();
    test_err_refield();
    test_err_cut();
    test_buf_cap();
    test_buf_growth();
    test_buf_printf();
    test_buf_no_memory();
    test_read_file();
    return tap_done();
}
