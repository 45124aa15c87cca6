/*
 * routes.c — the one router table: every endpoint of the server.
 */
#include "api_int.h"

static const struct fa_route routes[] = {
    {"POST", FA_API_BASE "login", fa_api_login},
    {"POST", FA_API_BASE "logout", fa_api_logout},
    {"POST", FA_API_BASE "user/create", fa_api_user_create},
    {"POST", FA_API_BASE "user/details", fa_api_user_details},
    {"POST", FA_API_BASE "user/update", fa_api_user_update},
    {"POST", FA_API_BASE "user/delete", fa_api_user_delete},
    {"POST", FA_API_BASE "enroll", fa_api_enroll},
    {"POST", FA_API_BASE "update", fa_api_face_update},
    {"POST", FA_API_BASE "authenticate", fa_api_authenticate},
    {"POST", FA_API_BASE "search", fa_api_search},
    {"POST", FA_API_BASE "status/enroll/user", fa_api_status_user},
    {"POST", FA_API_BASE "status/enroll/all", fa_api_status_all},
    {"POST", FA_API_BASE "user/blacklist", fa_api_blacklist},
    {"POST", FA_API_BASE "user/whitelist", fa_api_whitelist},
    {"GET", FA_API_BASE "view/blacklist/all", fa_api_blacklist_all},
    {"POST", FA_API_BASE "view/blacklist/all", fa_api_blacklist_all},
    {"POST", FA_API_BASE "searchspace/store", fa_api_space_store},
    {"POST", FA_API_BASE "searchspace/delete", fa_api_space_delete},
    {"POST", FA_API_BASE "view/searchspace/user", fa_api_space_view},
    {"POST", FA_API_BASE "settings/view", fa_api_settings_view},
    {"POST", FA_API_BASE "settings/update", fa_api_settings_update},
    {"POST", FA_API_BASE "view/logs/all", fa_api_logs_all},
    {"POST", FA_API_BASE "view/callbacks", fa_api_callbacks_view},
    {"GET", FA_API_BASE "face/", fa_api_face_image},
    {"GET", "/healthz", fa_api_healthz},
    {"GET", "/readyz", fa_api_readyz},
    /* The enrollmentUrl; its token is a credential: a secret route (http.h). */
    {"GET", "/enroll/*", fa_api_enroll_page},
    {"POST", "/enroll/*", fa_api_enroll_page_submit},
};

const struct fa_route *fa_api_routes(size_t *n)
{
    *n = sizeof routes / sizeof routes[0];
    return routes;
}
