/*
 * peer.c — what kind of address a client connected from.
 *
 * Kept apart from server.c so the rule can be tested without a socket.
 * An IPv4 client of a dual-stack listener shows up as ::ffff:a.b.c.d, so
 * the mapped form of 127.0.0.0/8 counts as loopback too.
 */
#include "faceauth/http.h"

#include <netinet/in.h>
#include <string.h>

int fa_http_addr_is_loopback(const struct sockaddr *sa)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
        return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
        const unsigned char *b = v6->sin6_addr.s6_addr;
        if (memcmp(b, &in6addr_loopback, 16) == 0)
            return 1;
        return memcmp(b, mapped, sizeof mapped) == 0 && b[12] == 127;
    }
    return 0;
}
