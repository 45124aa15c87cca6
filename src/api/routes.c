/*
 * routes.c — the one router table: every endpoint of the server.
 */
#include "api_int.h"

static const struct fa_route routes[] = {
    {"POST", FA_API_BASE "login", fa_api_login},
    {"POST", FA_API_BASE "logout", fa_api_logout},
    {"POST", FA_API_BASE "user/create", fa_api_user_create},
    {"POST", FA_API_BASE "enroll", fa_api_enroll},
    {"POST", FA_API_BASE "authenticate", fa_api_authenticate},
    {"GET", FA_API_BASE "face/", fa_api_face_image},
    {"GET", "/healthz", fa_api_healthz},
    {"GET", "/readyz", fa_api_readyz},
};

const struct fa_route *fa_api_routes(size_t *n)
{
    *n = sizeof routes / sizeof routes[0];
    return routes;
}
