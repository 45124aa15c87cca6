/*
 * test_fetch_url.c — fa_fetch_url_parse, the URL check the fetcher runs before
 * any transfer and that tests/fuzz/fuzz_url.c feeds: what it accepts (and
 * hands back normalised), what it refuses and how the refusal reads.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faceauth/fetch.h"
#include "fetch/fetch_int.h"
#include "tap.h"

static void expect_ok(const char *url, const char *norm_prefix)
{
    char *norm = NULL;
    struct fa_err err = {{0}};
    enum fa_rc rc = fa_fetch_url_parse(url, &norm, &err);
    tap_ok(rc == FA_OK && norm != NULL && strncmp(norm, norm_prefix, strlen(norm_prefix)) == 0,
           "accepts %s as %s (got %s: %s)", url, norm_prefix, norm != NULL ? norm : "-", err.msg);
    curl_free(norm);
}

static void expect_refused(const char *url, const char *in_msg)
{
    char *norm = NULL;
    struct fa_err err = {{0}};
    enum fa_rc rc = fa_fetch_url_parse(url, &norm, &err);
    tap_ok(rc == FA_EINVAL && norm == NULL && strstr(err.msg, in_msg) != NULL,
           "refuses '%s' naming '%s' (got %d: %s)", url, in_msg, (int)rc, err.msg);
}

int main(void)
{
    if (fa_fetch_global_init() != FA_OK) {
        tap_ok(0, "global init");
        return tap_done();
    }
    expect_ok("http://example.com/a.jpg", "http://example.com/a.jpg");
    expect_ok("HTTPS://Photos.Example.com:8443/p.png?x=1", "https://");
    expect_ok("http://[::1]:8080/x", "http://[::1]:8080/");
    expect_refused("ftp://example.com/a.jpg", "scheme \"ftp\" is not allowed");
    expect_refused("file:///etc/passwd", "only http and https");
    expect_refused("http://exa mple.com/", "not a valid http(s) URL");
    expect_refused("", "not a valid http(s) URL");
    /* The message shows at most 80 characters of the URL, then "...". */
    {
        char url[400], *norm = NULL;
        struct fa_err err = {{0}};
        snprintf(url, sizeof url, "gopher://%0300d", 7);
        fa_fetch_url_parse(url, &norm, &err);
        tap_ok(strstr(err.msg, "...") != NULL && strlen(err.msg) < 200,
               "a long refused URL is cut in the message (%zu chars)", strlen(err.msg));
        curl_free(norm);
    }
    fa_fetch_global_cleanup();
    return tap_done();
}
