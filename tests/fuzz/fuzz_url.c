/*
 * fuzz_url.c — the URL and address checks of the image fetcher
 * (src/fetch/transfer.c, src/fetch/addr.c) on fuzzed input (libFuzzer).
 *
 * One input feeds three checks, none of which touches the network:
 *  - the text as a URL: fa_fetch_url_parse (curl's parser, then the scheme
 *    rule) and fa_fetch_url_excerpt (what messages show of a URL);
 *  - its first 4 bytes as an IPv4 address and its first 16 as an IPv6
 *    address: fa_fetch_addr_is_private, the guard every connection passes;
 *  - its first 2 bytes as an address family the guard does not know.
 *
 * Properties checked: an accepted URL is http or https; an excerpt is at
 * most 83 printable ASCII characters; an IPv4 address is judged the same in
 * its IPv6 forms (::ffff:a.b.c.d, ::a.b.c.d, 64:ff9b::a.b.c.d); the
 * documented private ranges are always refused (an oracle written from the
 * RFCs here, not from addr.c's table); unknown families are refused.
 */
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "faceauth/fetch.h"
#include "fetch/fetch_int.h"

static void fail(const char *why, const char *detail)
{
    fprintf(stderr, "fuzz_url: %s: %s\n", why, detail);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (fa_fetch_global_init() != FA_OK)
        fail("curl_global_init", "");
    return 0;
}

static void check_url(const char *url)
{
    char shown[FA_FETCH_URL_SHOWN];
    char *norm = NULL;
    struct fa_err err = {{0}};
    size_t n;
    fa_fetch_url_excerpt(url, shown, sizeof shown);
    n = strlen(shown);
    if (n > FA_FETCH_URL_SHOWN - 1)
        fail("excerpt too long", shown);
    for (size_t i = 0; i < n; i++)
        if (shown[i] < 0x20 || shown[i] > 0x7e)
            fail("excerpt has a non-printable byte", shown);
    if (fa_fetch_url_parse(url, &norm, &err) == FA_OK) {
        if (norm == NULL || (strncmp(norm, "http://", 7) != 0 && strncmp(norm, "https://", 8) != 0))
            fail("accepted a URL that is not http(s)", norm != NULL ? norm : "(null)");
    } else if (norm != NULL || err.msg[0] == '\0') {
        fail("refusal left a URL behind or gave no message", err.msg);
    }
    curl_free(norm);
}

/* The ranges fetch.h promises to refuse, from the RFCs. */
static int v4_must_refuse(const uint8_t a[4])
{
    return a[0] == 0 || a[0] == 10 || a[0] == 127 || a[0] >= 224 ||
           (a[0] == 100 && (a[1] & 0xc0) == 64) || (a[0] == 169 && a[1] == 254) ||
           (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168);
}

static int judge_v4(const uint8_t a[4])
{
    struct sockaddr_in in4;
    memset(&in4, 0, sizeof in4);
    in4.sin_family = AF_INET;
    memcpy(&in4.sin_addr, a, 4);
    return fa_fetch_addr_is_private(&in4);
}

static int judge_v6(const uint8_t prefix[12], const uint8_t a[4])
{
    struct sockaddr_in6 in6;
    memset(&in6, 0, sizeof in6);
    in6.sin6_family = AF_INET6;
    memcpy(in6.sin6_addr.s6_addr, prefix, 12);
    memcpy(in6.sin6_addr.s6_addr + 12, a, 4);
    return fa_fetch_addr_is_private(&in6);
}

static void check_addresses(const uint8_t *data, size_t size)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t compat[12] = {0};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    uint8_t a[4] = {0};
    int v4;
    memcpy(a, data, size < 4 ? size : 4);
    v4 = judge_v4(a);
    if (v4_must_refuse(a) && !v4)
        fail("a private IPv4 address passes the guard", "");
    if (judge_v6(mapped, a) != v4 || judge_v6(compat, a) != v4 || judge_v6(nat64, a) != v4)
        fail("an IPv4 address is judged differently in an IPv6 form", "");
    if (size >= 16) {
        struct sockaddr_in6 in6;
        memset(&in6, 0, sizeof in6);
        in6.sin6_family = AF_INET6;
        memcpy(in6.sin6_addr.s6_addr, data, 16);
        if ((data[0] == 0xff || (data[0] & 0xfe) == 0xfc ||
             (data[0] == 0xfe && (data[1] & 0x80) == 0x80)) &&
            !fa_fetch_addr_is_private(&in6))
            fail("a multicast, unique-local or link-local IPv6 address passes", "");
    }
    if (size >= 2) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        ss.ss_family = (sa_family_t)(data[0] | data[1] << 8);
        if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6 &&
            !fa_fetch_addr_is_private(&ss))
            fail("an unknown address family passes the guard", "");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = malloc(size + 1);
    if (url == NULL)
        return 0;
    memcpy(url, data, size);
    url[size] = '\0';
    check_url(url);
    check_addresses(data, size);
    free(url);
    return 0;
}
