/*
 * enroll_page.c — the enrollment page behind every enrollmentUrl:
 * GET /enroll/<token> serves it, POST /enroll/<token> enrolls its photos.
 *
 * DESIGN. The token in the path is the only credential (256 random bits,
 * unique across customers), so the person needs no account and the
 * customer's access token never reaches a browser. A link works while its
 * user is not enrolled and for enroll_link_ttl_s after it was issued; a
 * user/update with faceToBeUpdated=yes issues a new one. GET answers HTML
 * whatever happens (a friendly 404 or 410 page for a link that cannot be
 * used); POST answers JSON, which the page puts in words.
 *
 * POST takes {"images": [1-3 data:image/...;base64 URIs]} and runs the very
 * enroll path of the JSON API (api_enroll_user: the same gates, same-person
 * check, log row and enrollmentStatus), with the photos named "photo 1..3"
 * in messages. Only data: URIs are taken: the page is reachable without
 * credentials, so it must not make the server fetch URLs. The answer drops
 * the image links the API gives (biometric data stays with the customer).
 *
 * Abuse: a body cap of its own (enroll_page_max_bytes, 413) and at most
 * enroll_attempts_per_hour uploads per link (429; counted in the database,
 * so a restart does not reset them). Requests refused before the face work
 * (size, content type, shape) store nothing and do not count. The access
 * log shows the route without the token (a secret route, see http.h).
 */
#include "api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The pages, embedded from src/web/ at build time (CMakeLists.txt). */
extern const unsigned char fa_web_enroll_html[];
extern const size_t fa_web_enroll_html_len;
extern const unsigned char fa_web_enroll_gone_html[];
extern const size_t fa_web_enroll_gone_html_len;

#define PAGE_PREFIX "/enroll/"
#define PAGE_PHOTOS_MAX 3
#define ATTEMPT_WINDOW_S 3600
#define HTML_TYPE "text/html; charset=utf-8"

/* Why a link cannot be used, with the words each answer gives. */
enum link_state { LINK_OK, LINK_UNKNOWN, LINK_USED, LINK_EXPIRED };

struct link_words {
    int status;
    const char *title;
    const char *text;
};

static const struct link_words LINK_WORDS[] = {
    [LINK_UNKNOWN] = {404, "This link is not valid",
                      "This enrollment link is not valid. Check that you opened the whole link "
                      "from the message you received, or ask the sender for a new one."},
    [LINK_USED] = {410, "You are already enrolled",
                   "Your face is already enrolled with this link, so there is nothing more to "
                   "do: you can close this page. If you need to enroll again, ask the sender "
                   "for a new link."},
    [LINK_EXPIRED] = {410, "This link has expired",
                      "This enrollment link has expired. Ask the sender for a new one."},
};

/* The user of the token in the path and whether the link can be used. */
static enum fa_rc link_check(struct fa_call *c, struct fa_user *u, enum link_state *state)
{
    const char *token = fa_http_req_path(c->req) + strlen(PAGE_PREFIX);
    int64_t issued = 0;
    enum fa_rc rc = fa_store_enroll_link(c->app->store, token, u, &issued, &c->err);
    *state = LINK_OK;
    if (rc == FA_ENOTFOUND) {
        *state = LINK_UNKNOWN;
        return FA_OK;
    }
    if (rc != FA_OK)
        return rc;
    if (u->state == FA_USER_SUCCESS)
        *state = LINK_USED;
    else if ((int64_t)time(NULL) - issued >= c->app->cfg->enroll_link_ttl_s)
        *state = LINK_EXPIRED;
    return FA_OK;
}

/* ---- GET: the page ---- */

static void reply_html(struct fa_call *c, int status, const unsigned char *html, size_t n)
{
    uint8_t *copy = malloc(n);
    if (copy == NULL) {
        fa_http_reply_error(c->reply, FA_ENOMEM, "out of memory");
        return;
    }
    memcpy(copy, html, n);
    fa_http_reply_bytes(c->reply, status, HTML_TYPE, copy, n);
    c->reply->no_store = 1; /* the address holds a credential: keep it out of caches */
}

/* The gone page's text for one '@' of the template: a placeholder's words
 * (*skip: its length) or the '@' itself. */
static const char *fill_at(const char *at, size_t rest, const char *title, const char *text,
                           size_t *skip)
{
    if (rest >= 7 && memcmp(at, "@TITLE@", 7) == 0) {
        *skip = 7;
        return title;
    }
    if (rest >= 6 && memcmp(at, "@TEXT@", 6) == 0) {
        *skip = 6;
        return text;
    }
    *skip = 1;
    return "@";
}

/*
 * The "cannot be used" page: enroll_gone.html with @TITLE@ and @TEXT@
 * replaced by fixed texts of LINK_WORDS (never anything from the request,
 * so nothing needs escaping).
 */
static void reply_gone(struct fa_call *c, int status, const char *title, const char *text)
{
    const char *tpl = (const char *)fa_web_enroll_gone_html;
    const char *end = tpl + fa_web_enroll_gone_html_len;
    struct fa_buf page;
    enum fa_rc rc = FA_OK;
    uint8_t *html;
    size_t n;
    fa_buf_init(&page, fa_web_enroll_gone_html_len + 4 * 1024);
    while (rc == FA_OK && tpl < end) {
        const char *at = memchr(tpl, '@', (size_t)(end - tpl));
        const char *words;
        size_t skip;
        if (at == NULL)
            at = end;
        rc = fa_buf_add(&page, tpl, (size_t)(at - tpl));
        if (rc != FA_OK || at == end)
            break;
        words = fill_at(at, (size_t)(end - at), title, text, &skip);
        rc = fa_buf_add(&page, words, strlen(words));
        tpl = at + skip;
    }
    if (rc != FA_OK) { /* out of memory, or LINK_WORDS outgrew the 4 kB of room (a bug) */
        fa_buf_cleanup(&page);
        fa_http_reply_error(c->reply, FA_ENOMEM, "out of memory");
        return;
    }
    html = fa_buf_take(&page, &n); /* before the call: arguments have no order */
    fa_http_reply_bytes(c->reply, status, HTML_TYPE, html, n);
    c->reply->no_store = 1;
}

void fa_api_enroll_page(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    struct fa_call c;
    struct fa_user u;
    enum link_state state;
    enum fa_rc rc;
    memset(&c, 0, sizeof c);
    c.app = app;
    c.req = req;
    c.reply = reply;
    rc = link_check(&c, &u, &state);
    if (rc != FA_OK) {
        fprintf(stderr, "faceauth: enrollment page: %s\n", c.err.msg);
        reply_gone(&c, 500, "Something went wrong",
                   "The server could not open this page. Try again in a few minutes.");
    } else if (state == LINK_OK) {
        reply_html(&c, 200, fa_web_enroll_html, fa_web_enroll_html_len);
    } else {
        reply_gone(&c, LINK_WORDS[state].status, LINK_WORDS[state].title,
                   LINK_WORDS[state].text);
    }
}

/* ---- POST: the photos ---- */

/* {"error": {"message": msg, "status": "<status>"}} with a status that no
 * fa_rc maps to (410, 415, 429). */
static void reply_status(struct fa_call *c, int status, const char *msg)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *inner = cJSON_AddObjectToObject(root, "error");
    char text[8];
    snprintf(text, sizeof text, "%d", status);
    cJSON_AddStringToObject(inner, "message", msg);
    cJSON_AddStringToObject(inner, "status", text);
    fa_http_reply_json(c->reply, status, root);
}

/* What is refused before the body is parsed: its size and its type. */
static enum fa_rc check_upload(struct fa_call *c)
{
    const char *type = fa_http_req_header(c->req, "Content-Type");
    size_t n = 0;
    fa_http_req_body(c->req, &n);
    if (n > c->app->cfg->enroll_page_max_bytes)
        return fa_err_set(&c->err, FA_ETOOBIG,
                          "the photos are too large: at most %zu bytes may be sent at once",
                          c->app->cfg->enroll_page_max_bytes);
    if (type == NULL || strncasecmp(type, "application/json", 16) != 0 ||
        (type[16] != '\0' && type[16] != ';' && type[16] != ' ')) {
        reply_status(c, 415, "send the photos as JSON (Content-Type: application/json): "
                             "{\"images\": [\"data:image/jpeg;base64,...\"]}");
        return FA_EINVAL; /* answered */
    }
    return FA_OK;
}

/* images: 1..3 data:image/ URIs (borrowed from c->body). */
static enum fa_rc parse_images(struct fa_call *c, const char *urls[PAGE_PHOTOS_MAX], int *n)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(c->body, "images");
    const cJSON *item;
    *n = 0;
    if (!cJSON_IsArray(list))
        return fa_err_set(&c->err, FA_EINVAL, "images is required: a list of 1 to %d photos "
                                              "as data:image/...;base64 URIs", PAGE_PHOTOS_MAX);
    if (cJSON_GetArraySize(list) < 1 || cJSON_GetArraySize(list) > PAGE_PHOTOS_MAX)
        return fa_err_set(&c->err, FA_EINVAL, "images must hold 1 to %d photos, not %d",
                          PAGE_PHOTOS_MAX, cJSON_GetArraySize(list));
    cJSON_ArrayForEach(item, list) {
        if (!cJSON_IsString(item) || strncasecmp(item->valuestring, "data:image/", 11) != 0)
            return fa_err_set(&c->err, FA_EINVAL,
                              "images[%d] must be a photo as a data:image/...;base64 URI", *n);
        urls[(*n)++] = item->valuestring;
    }
    return FA_OK;
}

/* Count this upload against the link's hourly limit. */
static enum fa_rc count_attempt(struct fa_call *c, const struct fa_user *u, int *allowed)
{
    enum fa_rc rc = fa_store_enroll_attempt(c->app->store, u->id, (int64_t)time(NULL),
                                            ATTEMPT_WINDOW_S,
                                            c->app->cfg->enroll_attempts_per_hour, allowed,
                                            &c->err);
    if (rc == FA_OK && !*allowed)
        reply_status(c, 429, "too many attempts with this link: wait an hour, then try again");
    return rc;
}

/* The API's answer minus its image links: the page shows words, and the
 * stored photos are for the customer's eyes (with its credentials). */
static void strip_links(struct fa_call *c)
{
    cJSON *root = c->reply->json;
    cJSON *inner = cJSON_GetObjectItemCaseSensitive(root, "error");
    cJSON *objs[2] = {root, inner};
    for (int i = 0; i < 2; i++) {
        if (!cJSON_IsObject(objs[i]))
            continue;
        cJSON_DeleteItemFromObjectCaseSensitive(objs[i], "faceOriginal");
        cJSON_DeleteItemFromObjectCaseSensitive(objs[i], "faceThumbnail");
    }
}

static enum fa_rc submit(struct fa_call *c, const struct fa_user *u)
{
    const char *urls[PAGE_PHOTOS_MAX];
    int n = 0, allowed = 0;
    enum fa_rc rc = parse_images(c, urls, &n);
    if (rc == FA_OK)
        rc = count_attempt(c, u, &allowed);
    if (rc != FA_OK || !allowed)
        return rc;
    c->customer_id = u->customer_id; /* the link stands for its customer */
    rc = api_enroll_user(c, u, urls, n, "photo");
    if (rc == FA_OK)
        strip_links(c);
    return rc;
}

void fa_api_enroll_page_submit(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    struct fa_call c;
    struct fa_user u;
    enum link_state state = LINK_OK;
    enum fa_rc rc;
    memset(&c, 0, sizeof c);
    c.app = app;
    c.req = req;
    c.reply = reply;
    rc = link_check(&c, &u, &state);
    if (rc == FA_OK && state == LINK_UNKNOWN)
        rc = fa_err_set(&c.err, FA_ENOTFOUND, "%s", LINK_WORDS[state].text);
    if (rc == FA_OK && state != LINK_OK) {
        reply_status(&c, LINK_WORDS[state].status, LINK_WORDS[state].text);
        return;
    }
    if (rc == FA_OK)
        rc = check_upload(&c);
    if (rc == FA_OK)
        rc = api_begin(&c, app, req, reply, API_PUBLIC);
    if (rc == FA_OK)
        rc = submit(&c, &u);
    api_finish(&c, rc);
}
