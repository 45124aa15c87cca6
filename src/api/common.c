/*
 * common.c — request parsing, authentication and reply helpers of the API
 * (see api_int.h).
 */
#include "api_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A GET carries no body: its one field, customerName, comes from the query. */
static enum fa_rc body_from_query(struct fa_call *c)
{
    const char *customer = fa_http_req_query(c->req, "customerName");
    c->body = cJSON_CreateObject();
    if (c->body == NULL)
        return fa_err_set(&c->err, FA_ENOMEM, "out of memory");
    if (customer != NULL && api_text_has_control(customer))
        return fa_err_set(&c->err, FA_EINVAL, "customerName must not contain control characters");
    if (customer != NULL)
        cJSON_AddStringToObject(c->body, "customerName", customer);
    return FA_OK;
}

static enum fa_rc parse_body(struct fa_call *c)
{
    size_t n = 0;
    const uint8_t *body = fa_http_req_body(c->req, &n);
    const char *end = NULL;
    if (n == 0 && strcmp(fa_http_req_method(c->req), "GET") == 0)
        return body_from_query(c);
    if (n == 0)
        return fa_err_set(&c->err, FA_EINVAL, "request body is empty; send a JSON object");
    c->body = cJSON_ParseWithLengthOpts((const char *)body, n, &end, 0);
    if (c->body == NULL)
        return fa_err_set(&c->err, FA_EINVAL, "request body is not valid JSON");
    /* cJSON stops after the first value: `{...} {...}` or `{...}junk` is not
     * one JSON document, and reading half of it would hide a client's bug.
     * Only whitespace may follow. */
    while (end < (const char *)body + n &&
           (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (end != (const char *)body + n)
        return fa_err_set(&c->err, FA_EINVAL, "request body is not valid JSON: data after the "
                                              "object");
    if (!cJSON_IsObject(c->body))
        return fa_err_set(&c->err, FA_EINVAL, "request body must be a JSON object");
    /* Strings cut at a NUL and control characters in names: text.c. */
    return api_json_check_text((const char *)body, n, &c->err);
}

const char *api_token(const struct fa_call *c)
{
    const char *h = fa_http_req_header(c->req, "Authorization");
    if (h == NULL)
        return NULL;
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "Bearer ", 7) == 0)
        h += 7;
    while (*h == ' ')
        h++;
    return *h != '\0' ? h : NULL;
}

static enum fa_rc authenticate_customer(struct fa_call *c)
{
    const char *token = api_token(c);
    enum fa_rc rc = api_string(c, "customerName", 1, &c->customer_name);
    if (rc != FA_OK)
        return rc;
    if (token == NULL)
        return fa_err_set(&c->err, FA_EAUTH, "missing access token: send it in the "
                                             "Authorization header");
    return fa_store_token_check(c->app->store, c->customer_name, token, &c->customer_id,
                                &c->err);
}

enum fa_rc api_begin(struct fa_call *c, void *app, struct fa_http_req *req,
                     struct fa_http_reply *reply, enum api_auth auth)
{
    enum fa_rc rc;
    memset(c, 0, sizeof *c);
    c->app = app;
    c->req = req;
    c->reply = reply;
    c->fetch_deadline_ms = api_now_ms() + c->app->cfg->fetch_request_timeout_ms;
    rc = parse_body(c);
    if (rc == FA_OK && auth == API_CUSTOMER)
        rc = authenticate_customer(c);
    return rc;
}

void api_run(void *app, struct fa_http_req *req, struct fa_http_reply *reply, enum api_auth auth,
             api_work work)
{
    struct fa_call c;
    enum fa_rc rc = api_begin(&c, app, req, reply, auth);
    if (rc == FA_OK)
        rc = work(&c);
    api_finish(&c, rc);
}

enum fa_rc api_paging(struct fa_call *c, int *page, int *count)
{
    long p = 1, n = 10; /* n is read below even when pageNumber fails first */
    enum fa_rc rc = api_int(c, "pageNumber", 1, 1000000000L, 1, &p);
    if (rc == FA_OK)
        rc = api_int(c, "pageCount", 1, 100, 10, &n);
    *page = (int)p;
    *count = (int)n;
    return rc;
}

long api_total_pages(long total, int count)
{
    long pages = (total + count - 1) / count;
    return pages > 0 ? pages : 1;
}

void api_finish(struct fa_call *c, enum fa_rc rc)
{
    if (rc == FA_ENOSPACE)
        fa_disk_note(c->app->disk, rc);
    if ((rc == FA_ENOSPACE || rc == FA_EREADONLY) && c->reply->json == NULL &&
        c->reply->bytes == NULL)
        api_storage_failure(c, rc);
    if (rc != FA_OK && c->reply->json == NULL && c->reply->bytes == NULL)
        fa_http_reply_error(c->reply, rc, c->err.msg);
    api_event_finish(c);
    cJSON_Delete(c->body);
    c->body = NULL;
}

enum fa_rc api_string(struct fa_call *c, const char *field, int required, const char **out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(c->body, field);
    *out = NULL;
    if (item == NULL || cJSON_IsNull(item)) {
        if (required)
            return fa_err_about(&c->err, FA_EINVAL, field, "%s is required", field);
        return FA_OK;
    }
    if (!cJSON_IsString(item))
        return fa_err_about(&c->err, FA_EINVAL, field, "%s must be a string", field);
    if (required && item->valuestring[0] == '\0')
        return fa_err_about(&c->err, FA_EINVAL, field, "%s must not be empty", field);
    *out = item->valuestring;
    return FA_OK;
}

enum fa_rc api_user_name(struct fa_call *c, int required, const char **out)
{
    enum fa_rc rc = api_string(c, "userName", 0, out);
    if (rc == FA_OK && *out == NULL)
        rc = api_string(c, "username", 0, out);
    if (rc == FA_OK && *out == NULL && required)
        rc = fa_err_about(&c->err, FA_EINVAL, "userName", "userName is required");
    return rc;
}

enum fa_rc api_yes_no(struct fa_call *c, const char *field, int dflt, int *out)
{
    static const char *const words[] = {"no", "yes"};
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(c->body, field);
    if (cJSON_IsBool(item)) {
        *out = cJSON_IsTrue(item);
        return FA_OK;
    }
    return api_choice(c, field, words, 2, dflt, out);
}

enum fa_rc api_choice(struct fa_call *c, const char *field, const char *const *choices,
                      int n_choices, int dflt, int *out)
{
    const char *text;
    enum fa_rc rc = api_string(c, field, 0, &text);
    *out = dflt;
    if (rc != FA_OK || text == NULL)
        return rc;
    for (int i = 0; i < n_choices; i++) {
        if (strcasecmp(text, choices[i]) == 0) {
            *out = i;
            return FA_OK;
        }
    }
    if (n_choices == 2)
        return fa_err_about(&c->err, FA_EINVAL, field, "%s must be \"%s\" or \"%s\"", field,
                            choices[0], choices[1]);
    return fa_err_about(&c->err, FA_EINVAL, field, "%s has an unsupported value", field);
}

enum fa_rc api_int(struct fa_call *c, const char *field, long min, long max, long dflt,
                   long *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(c->body, field);
    double v;
    char *end = NULL;
    *out = dflt;
    if (item == NULL || cJSON_IsNull(item))
        return FA_OK;
    if (cJSON_IsNumber(item)) {
        v = item->valuedouble;
    } else if (cJSON_IsString(item) && item->valuestring[0] != '\0') {
        v = strtod(item->valuestring, &end);
        if (*end != '\0')
            v = NAN;
    } else {
        v = NAN;
    }
    if (!(v >= (double)min && v <= (double)max) || v != floor(v))
        return fa_err_about(&c->err, FA_EINVAL, field, "%s must be a whole number from %ld to %ld",
                            field, min, max);
    *out = (long)v;
    return FA_OK;
}

enum fa_rc api_number(struct fa_call *c, const char *field, double min, double max, double dflt,
                      double *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(c->body, field);
    double v = NAN;
    char *end = NULL;
    *out = dflt;
    if (item == NULL || cJSON_IsNull(item))
        return FA_OK;
    if (cJSON_IsNumber(item))
        v = item->valuedouble;
    else if (cJSON_IsString(item) && item->valuestring[0] != '\0')
        v = strtod(item->valuestring, &end);
    if (end != NULL && *end != '\0')
        v = NAN;
    if (!(v >= min && v <= max))
        return fa_err_about(&c->err, FA_EINVAL, field, "%s must be a number from %g to %g", field,
                            min, max);
    *out = v;
    return FA_OK;
}

/* Parse "yyyy-mm-dd[ hh:mm:ss]" strictly: the fields must survive a round trip
 * through timegm, so 2026-02-30 or 25:00:00 are refused, not normalised. */
static int parse_date(const char *text, int end_of_day, int64_t *out)
{
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, se = 0, used = 0;
    time_t t;
    if (sscanf(text, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3)
        return 0;
    if (text[used] == ' ' || text[used] == 'T') {
        int more = 0;
        if (sscanf(text + used + 1, "%2d:%2d:%2d%n", &h, &mi, &se, &more) != 3)
            return 0;
        used += 1 + more;
    } else if (end_of_day) {
        h = 23, mi = 59, se = 59;
    }
    if (text[used] != '\0')
        return 0;
    tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d;
    tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = se;
    t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_year != y - 1900 || tm.tm_mon != mo - 1 || tm.tm_mday != d ||
        tm.tm_hour != h || tm.tm_min != mi || tm.tm_sec != se)
        return 0;
    *out = (int64_t)t;
    return 1;
}

enum fa_rc api_date(struct fa_call *c, const char *field, int end_of_day, int64_t *out)
{
    const char *text;
    enum fa_rc rc = api_string(c, field, 0, &text);
    *out = 0;
    if (rc != FA_OK || text == NULL || text[0] == '\0')
        return rc;
    if (!parse_date(text, end_of_day, out))
        return fa_err_about(&c->err, FA_EINVAL, field,
                            "%s must be a date as yyyy-mm-dd hh:mm:ss (UTC)", field);
    return FA_OK;
}

void api_add_date(cJSON *obj, const char *field, int64_t t)
{
    char text[32];
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
    cJSON_AddStringToObject(obj, field, text);
}

enum fa_rc api_user(struct fa_call *c, const char *user_name, struct fa_user *out)
{
    enum fa_rc rc = fa_store_user_get(c->app->store, c->customer_id, user_name, out, &c->err);
    if (rc == FA_ENOTFOUND)
        fa_err_set(&c->err, rc, "user '%.64s' not found", user_name);
    return rc;
}

/* A Host header is only trusted as far as its characters go: anything that
 * could break out of a URL is refused and the listen address used instead. */
static int host_is_clean(const char *host)
{
    if (host == NULL || *host == '\0' || strlen(host) > 200)
        return 0;
    for (const char *p = host; *p; p++)
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]", *p) ==
            NULL)
            return 0;
    return 1;
}

/* Copy the next comma-separated entry of *list, trimmed, into entry (""
 * when empty or too long); 0 at the end of the list. */
static int next_host_entry(const char **list, char *entry, size_t cap)
{
    const char *p = *list;
    size_t len, n;
    if (*p == '\0')
        return 0;
    len = strcspn(p, ",");
    *list = p + len + (p[len] == ',');
    while (len > 0 && *p == ' ') {
        p++;
        len--;
    }
    for (n = len; n > 0 && p[n - 1] == ' ';)
        n--;
    entry[0] = '\0';
    if (n > 0 && n < cap) {
        memcpy(entry, p, n);
        entry[n] = '\0';
    }
    return 1;
}

/*
 * Does the allowed_hosts list hold host? An entry with a port must match
 * exactly. One without ("localhost", "[::1]") matches host:port with the
 * port the client connected to, and the bare host only on port 80, so a
 * link always leads where the client went. Case-insensitive, as names are.
 */
static int host_allowed(const char *list, const char *host, int port)
{
    char entry[256];
    char with_port[300];
    while (next_host_entry(&list, entry, sizeof entry)) {
        size_t n = strlen(entry);
        int has_port = n > 0 && strchr(entry, ':') != NULL && entry[n - 1] != ']';
        if (n == 0)
            continue;
        if (has_port || port == 80) {
            if (strcasecmp(entry, host) == 0)
                return 1;
            if (has_port)
                continue;
        }
        snprintf(with_port, sizeof with_port, "%s:%d", entry, port);
        if (strcasecmp(with_port, host) == 0)
            return 1;
    }
    return 0;
}

void api_base_url(const struct fa_call *c, char *out, size_t cap)
{
    const char *host = fa_http_req_header(c->req, "Host");
    char local[64];
    int port = c->app->cfg->port;
    size_t n;
    /* Where the client connected: one of our own addresses, not its say. */
    if (fa_http_req_local(c->req, local, sizeof local, &port) != FA_OK)
        snprintf(local, sizeof local, "127.0.0.1");
    if (c->app->cfg->public_url[0] != '\0')
        snprintf(out, cap, "%s", c->app->cfg->public_url);
    else if (host_is_clean(host) && host_allowed(c->app->cfg->allowed_hosts, host, port))
        snprintf(out, cap, "http://%s", host);
    else
        snprintf(out, cap, "http://%s:%d", local, port);
    n = strlen(out);
    if (n > 0 && out[n - 1] == '/')
        out[n - 1] = '\0';
}

void api_add_image_link(const struct fa_call *c, cJSON *obj, const char *field, const char *id)
{
    char base[300];
    char sig[FA_DIGEST_HEX + 1];
    char url[600];
    long long expires = (long long)time(NULL) + c->app->cfg->link_ttl_s;
    if (id == NULL || id[0] == '\0') {
        cJSON_AddStringToObject(obj, field, "");
        return;
    }
    api_base_url(c, base, sizeof base);
    fa_media_sign(c->app->media, id, expires, sig);
    snprintf(url, sizeof url, "%s" FA_API_BASE "face/%s?expires=%lld&signature=%s", base, id,
             expires, sig);
    cJSON_AddStringToObject(obj, field, url);
}

void api_enrollment_url(const struct fa_call *c, const char *token, char *out, size_t cap)
{
    char base[300];
    api_base_url(c, base, sizeof base);
    snprintf(out, cap, "%s/enroll/%s", base, token);
}

void api_reply_ok(struct fa_call *c, cJSON *fields, const char *message)
{
    cJSON_AddStringToObject(fields, "message", message);
    cJSON_AddStringToObject(fields, "status", "200 OK");
    fa_http_reply_json(c->reply, 200, fields);
}

enum fa_rc api_fetch_field(struct fa_call *c, const char *field, const char *url,
                           uint8_t **bytes, size_t *n)
{
    double t0 = fa_metrics_clock();
    enum fa_rc rc = api_fetch_limited(c, url, bytes, n);
    fa_metrics_stage(c->app->metrics, FA_STAGE_FETCH, fa_metrics_clock() - t0);
    /* An oversized image named by URL is a bad field, not an oversized
     * request body: 413 stays reserved for the body cap. */
    if (rc == FA_ETOOBIG)
        rc = FA_EINVAL;
    /* fetch knows the field only as "url": say which photo of a list it was */
    if (rc != FA_OK)
        fa_err_refield(&c->err, field);
    return rc;
}

enum fa_rc api_fetch(struct fa_call *c, const char *url, uint8_t **bytes, size_t *n)
{
    return api_fetch_field(c, "url", url, bytes, n);
}

const char *api_image_ext(enum fa_image_kind kind)
{
    switch (kind) {
    case FA_IMG_PNG: return "png";
    case FA_IMG_WEBP: return "webp";
    case FA_IMG_BMP: return "bmp";
    default: return "jpg";
    }
}
