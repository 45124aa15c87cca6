/*
 * test_api_text.c — api_json_check_text (src/api/text.c): control
 * characters in a JSON body, raw or escaped, in values and field names,
 * nested or in lists, each refusal naming the field; and the bodies that
 * must still pass (UTF-8, escaped quotes, wrapped base64 in url/urls).
 *
 * Every body here is first checked to be valid JSON for cJSON, as the
 * server runs the scan only on bodies cJSON accepted.
 */
#include "api/api_int.h"

#include <stdio.h>
#include <string.h>

#include "tap.h"

/* The scan's verdict on body: FA_OK, or the message in msg. */
static enum fa_rc check(const char *body, char *msg, size_t cap)
{
    struct fa_err err = {{0}};
    size_t n = strlen(body);
    cJSON *j = cJSON_ParseWithLength(body, n);
    enum fa_rc rc;
    if (j == NULL) {
        snprintf(msg, cap, "(not JSON)");
        return FA_EINTERNAL;
    }
    cJSON_Delete(j);
    rc = api_json_check_text(body, n, &err);
    snprintf(msg, cap, "%s", rc == FA_OK ? "" : err.msg);
    return rc;
}

static void refused(const char *body, const char *words, const char *name)
{
    char msg[FA_ERR_MAX];
    enum fa_rc rc = check(body, msg, sizeof msg);
    tap_ok(rc == FA_EINVAL && strstr(msg, words) != NULL, "%s: refused naming '%s': %s", name,
           words, msg);
}

static void passes(const char *body, const char *name)
{
    char msg[FA_ERR_MAX];
    enum fa_rc rc = check(body, msg, sizeof msg);
    tap_ok(rc == FA_OK, "%s passes: %s", name, msg);
}

static void test_refused(void)
{
    refused("{\"userName\": \"ab\\u0000cd\"}", "userName must not contain control characters "
                                               "(found NUL)", "escaped NUL in userName");
    refused("{\"customerName\": \"acme\", \"password\": \"pw\\u0000junk\"}", "password",
            "escaped NUL in password");
    refused("{\"fullName\": \"Jane\\nDoe\"}", "fullName must not contain control characters "
                                             "(found a line break)", "newline in fullName");
    refused("{\"fullName\": \"Jane\\tDoe\"}", "found a tab", "tab in fullName");
    refused("{\"fullName\": \"Jane\tDoe\"}", "fullName", "raw tab in fullName");
    refused("{\"emailId\": \"a\\u001b[31m@x\"}", "emailId must not contain control characters "
                                                "(found U+001B)", "ESC in emailId");
    refused("{\"phoneNumber\": \"555\\u007f\"}", "phoneNumber", "DEL");
    refused("{\"userName\": \"x\\u009b\"}", "found U+009B", "escaped C1 CSI");
    refused("{\"userName\": \"x\xc2\x9b\"}", "found U+009B", "raw C1 CSI in UTF-8");
    refused("{\"parametersToBeUpdated\": {\"userName\": \"ok\", \"fullName\": \"a\\u0000\"}}",
            "parametersToBeUpdated.fullName", "nested field named with its path");
    refused("{\"users\": [\"a\", \"b\", \"c\\u0000\"]}", "users[2]", "list item named by index");
    refused("{\"urls\": [\"data:image/jpeg;base64,AA\\nAA\", \"x\\u0000\"]}", "urls[1] must not "
            "contain control characters (found NUL)", "NUL in an image list item");
    refused("{\"url\": \"http://x/a\\u0000.jpg\"}", "url must not", "NUL in url");
    refused("{\"url\": \"http://x/a\\u0001.jpg\"}", "url must not", "U+0001 in url");
    refused("{\"a\": [{\"b\": 1}, {\"c\": \"\\u0002\"}]}", "a[1].c", "object inside a list");
    refused("{\"pass\\u0000word\": \"x\"}", "field name", "NUL in a field name");
    refused("{\"x\": {\"na\\nme\": 1}}", "field name", "newline in a nested field name");
    refused("{\"url\": \"a\\tb\", \"userName\": \"x\\ry\"}", "userName", "CR outside url");
}

static void test_passes(void)
{
    passes("{\"customerName\": \"acme\", \"password\": \"p@ss w\\\"rd\\\\\"}",
           "escaped quote and backslash");
    passes("{\"fullName\": \"Jos\xc3\xa9 \\u00e9\\u4e2d \\ud83d\\ude00\"}",
           "UTF-8 and \\u escapes of printable characters");
    passes("{\"url\": \"data:image/jpeg;base64,AAAA\\r\\nAAAA\\nAA\\tAA\"}",
           "line breaks in a data: URI (wrapped base64)");
    passes("{\"urls\": [\"data:image/png;base64,AA\\nAA\", \"http://x/y.jpg\"]}",
           "line breaks in urls items");
    passes("{\"images\": [\"data:image/png;base64,AA\\r\\nAA\"]}",
           "line breaks in the enrollment page's images");
    passes("{\"a\": \"\\\\u0000\"}", "an escaped backslash before u0000 is text, not NUL");
    passes("{\"n\": 1.5e3, \"b\": true, \"z\": null, \"l\": [1, [2, {\"k\": \"v\"}]]}",
           "numbers, literals and nesting");
    passes("{}", "an empty object");
}

static void test_depth(void)
{
    char body[200];
    char msg[FA_ERR_MAX];
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        body[n++] = '[';
    for (int i = 0; i < 40; i++)
        body[n++] = ']';
    body[n] = '\0';
    tap_ok(check(body, msg, sizeof msg) == FA_EINVAL && strstr(msg, "nests deeper") != NULL,
           "40 levels of nesting refused, not overflowed: %s", msg);
}

static void test_query_text(void)
{
    tap_ok(api_text_has_control("a\nb") && api_text_has_control("\x7f") &&
               !api_text_has_control("acme corp"),
           "api_text_has_control: newline and DEL yes, plain text no");
}

int main(void)
{
    test_refused();
    test_passes();
    test_depth();
    test_query_text();
    return tap_done();
}
