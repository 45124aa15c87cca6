/*
 * addr.c — which socket addresses the fetch guard refuses.
 *
 * DESIGN. The guard runs on the binary address curl is about to connect to
 * (see transfer.c), never on the text of the URL. Decimal or octal hosts
 * ("http://2130706433/"), DNS names that resolve to 127.0.0.1, DNS rebinding
 * and redirects all end up here as the same sockaddr, so one table decides.
 * IPv6 forms that carry an IPv4 address (mapped ::ffff:a.b.c.d, the old
 * compatible ::a.b.c.d, NAT64 64:ff9b::a.b.c.d) are judged by that IPv4
 * address, because the kernel or a NAT64 gateway delivers them there.
 */
#include "faceauth/fetch.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

struct fetch_v4_net {
    uint32_t net; /* host byte order */
    unsigned bits;
};

/* Everything that is not a public unicast destination. */
static const struct fetch_v4_net fetch_v4_refused[] = {
    {0x00000000u, 8},  /* 0/8 "this network"; 0.0.0.0 reaches the local host */
    {0x0A000000u, 8},  /* 10/8 RFC 1918 */
    {0x64400000u, 10}, /* 100.64/10 carrier-grade NAT, often internal */
    {0x7F000000u, 8},  /* 127/8 loopback */
    {0xA9FE0000u, 16}, /* 169.254/16 link-local, cloud metadata lives here */
    {0xAC100000u, 12}, /* 172.16/12 RFC 1918 */
    {0xC0000000u, 24}, /* 192.0.0/24 IETF protocol assignments */
    {0xC0A80000u, 16}, /* 192.168/16 RFC 1918 */
    {0xC6120000u, 15}, /* 198.18/15 benchmarking, used inside labs */
    {0xE0000000u, 4},  /* 224/4 multicast */
    {0xF0000000u, 4},  /* 240/4 reserved, includes 255.255.255.255 */
};

static int fetch_v4_is_private(uint32_t a)
{
    size_t i;
    for (i = 0; i < sizeof fetch_v4_refused / sizeof fetch_v4_refused[0]; i++) {
        uint32_t mask = 0xFFFFFFFFu << (32 - fetch_v4_refused[i].bits);
        if ((a & mask) == fetch_v4_refused[i].net)
            return 1;
    }
    return 0;
}

static uint32_t fetch_load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* The 96-bit prefixes whose last 32 bits are an IPv4 address to judge.
 * The all-zero prefix also covers :: (as 0.0.0.0) and ::1 (as 0.0.0.1). */
static int fetch_v6_embeds_v4(const uint8_t a[16])
{
    static const uint8_t compat[12] = {0};
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    return memcmp(a, compat, 12) == 0 || memcmp(a, mapped, 12) == 0 ||
           memcmp(a, nat64, 12) == 0;
}

static int fetch_v6_is_private(const uint8_t a[16])
{
    if (fetch_v6_embeds_v4(a))
        return fetch_v4_is_private(fetch_load_be32(a + 12));
    if ((a[0] & 0xfe) == 0xfc) /* fc00::/7 unique local */
        return 1;
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) /* fe80::/10 link-local */
        return 1;
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) /* fec0::/10 old site-local */
        return 1;
    if (a[0] == 0xff) /* ff00::/8 multicast */
        return 1;
    /* 64:ff9b:1::/48 local-use NAT64 (RFC 8215): the IPv4 sits at a
     * site-chosen offset, so refuse the whole prefix rather than guess. */
    if (a[0] == 0 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b && a[4] == 0 && a[5] == 1)
        return 1;
    return 0;
}

int fa_fetch_addr_is_private(const void *sa)
{
    sa_family_t family;

    /* Refuse what we cannot judge: the guard fails closed. */
    if (sa == NULL)
        return 1;
    /* memcpy, not a cast: curl's sockaddr may not be aligned for sockaddr_in6. */
    memcpy(&family, (const char *)sa + offsetof(struct sockaddr, sa_family), sizeof family);
    if (family == AF_INET) {
        struct sockaddr_in in4;
        memcpy(&in4, sa, sizeof in4);
        return fetch_v4_is_private(ntohl(in4.sin_addr.s_addr));
    }
    if (family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof in6);
        return fetch_v6_is_private(in6.sin6_addr.s6_addr);
    }
    return 1;
}
