/*
 * test_common.c — the shared helpers of src/common.c: the error message and
 * the field it is about.
 */
#include "faceauth/common.h"

#include <stdio.h>
#include <string.h>

#include "tap.h"

static int streq(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

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
    tap_ok(streq(err.msg, "url: invalid base64 in data URI"), "fa_err_field writes \"field: words\"");
    tap_ok(streq(err.field, "url"), "fa_err_field: err.field is the field");
    tap_ok(streq(fa_err_words(&err), "invalid base64 in data URI"),
           "fa_err_words: the words without the field");

    TAP_OK(fa_err_about(&err, FA_EINVAL, "userName", "userName is required") == FA_EINVAL);
    tap_ok(streq(err.msg, "userName is required") && streq(err.field, "userName"),
           "fa_err_about: the message as written, the field beside it");
    tap_ok(streq(fa_err_words(&err), "userName is required"),
           "fa_err_about: no prefix to skip");
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

int main(void)
{
    test_err_set();
    test_err_field();
    test_err_refield();
    test_err_cut();
    return tap_done();
}
