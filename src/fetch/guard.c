/*
 * guard.c — the address and scheme guard of every outgoing transfer
 * (fetch.h, fa_fetch_guard_setopt): image fetching (transfer.c) and
 * callback delivery (src/callback/) put the same options on their curl
 * handles through this one function.
 *
 * The address check runs in CURLOPT_OPENSOCKETFUNCTION, on the resolved
 * address of every connection curl opens (each redirect hop included), and
 * refuses private ones before a socket exists. Proxies are off: through a
 * proxy curl would connect to the proxy, and the guard would judge the
 * wrong address. Its own file so that a build without transfer.c (the
 * fuzz_api target, which must not fetch) still has it.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

#include "fetch_int.h"

#define GUARD_PROTOCOLS "http,https"

static void fetch_addr_text(const struct sockaddr *sa, char *out, size_t cap)
{
    const void *src = NULL;

    if (sa->sa_family == AF_INET)
        src = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6)
        src = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (src == NULL || inet_ntop(sa->sa_family, src, out, (socklen_t)cap) == NULL)
        snprintf(out, cap, "(family %d)", (int)sa->sa_family);
}

/* curl calls this with the resolved address before every connect. Returning
 * CURL_SOCKET_BAD makes curl try the next address, then fail the transfer
 * with CURLE_COULDNT_CONNECT. */
static curl_socket_t fetch_open_socket_cb(void *clientp, curlsocktype purpose,
                                          struct curl_sockaddr *address)
{
    struct fa_fetch_guard *g = clientp;

    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKET_BAD;
    if (!g->allow_private && fa_fetch_addr_is_private(&address->addr)) {
        g->refused = 1;
        fetch_addr_text(&address->addr, g->refused_ip, sizeof g->refused_ip);
        return CURL_SOCKET_BAD;
    }
    return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

static CURLcode fetch_setopt_guards(CURL *h, struct fa_fetch_guard *g)
{
    CURLcode cc = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, GUARD_PROTOCOLS);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, GUARD_PROTOCOLS);
    if (cc == CURLE_OK) /* "" overrides http_proxy & co from the environment */
        cc = curl_easy_setopt(h, CURLOPT_PROXY, "");
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, fetch_open_socket_cb);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, g);
    return cc;
}

enum fa_rc fa_fetch_guard_setopt(void *curl, struct fa_fetch_guard *g, struct fa_err *err)
{
    CURLcode cc;

    g->refused = 0;
    g->refused_ip[0] = '\0';
    cc = fetch_setopt_guards(curl, g);
    if (cc != CURLE_OK)
        return fa_err_set(err, FA_EINTERNAL, "curl_easy_setopt: %s", curl_easy_strerror(cc));
    return FA_OK;
}
