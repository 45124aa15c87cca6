/*
 * images.c — GET /api/v1/basic/face/<id>: a stored original or thumbnail.
 *
 * Biometric data, so it is served only (a) with a valid signed link
 * (expires + signature, as handed out in faceOriginal/faceThumbnail), or
 * (b) with an access token of the customer that owns the image. Another
 * customer's token gets 404, the same as an unknown id, so ids cannot be
 * probed across customers.
 */
#include "api_int.h"

#include <string.h>
#include <time.h>

#define FACE_PREFIX FA_API_BASE "face/"

static int id_is_clean(const char *id)
{
    size_t n = strspn(id, "0123456789abcdef");
    return n == FA_IMAGE_ID_HEX && id[n] == '\0';
}

/* 1 when the request may see images of owner (signed link or owner's token). */
static enum fa_rc check_access(struct fa_call *c, const char *id, int64_t owner)
{
    const char *expires = fa_http_req_query(c->req, "expires");
    const char *sig = fa_http_req_query(c->req, "signature");
    const char *token = api_token(c);
    int64_t customer = 0;
    enum fa_rc rc;
    if (sig != NULL && fa_media_verify(c->app->media, id, expires, sig, time(NULL)))
        return FA_OK;
    if (token == NULL)
        return fa_err_set(&c->err, FA_EAUTH, sig != NULL ? "image link expired or invalid"
                                                         : "missing access token or signed link");
    rc = fa_store_token_check(c->app->store, NULL, token, &customer, &c->err);
    if (rc == FA_OK && customer != owner)
        rc = fa_err_set(&c->err, FA_ENOTFOUND, "image not found");
    return rc;
}

static enum fa_rc serve_image(struct fa_call *c)
{
    const char *id = fa_http_req_path(c->req) + strlen(FACE_PREFIX);
    char path[FA_PATH_MAX];
    char mime[32]; /* unused: fa_media_get gives a static string */
    const char *type = NULL;
    int64_t owner = 0;
    uint8_t *bytes = NULL;
    size_t n = 0;
    enum fa_rc rc = FA_OK;
    if (!id_is_clean(id))
        return fa_err_set(&c->err, FA_ENOTFOUND, "image not found");
    rc = fa_store_image_get(c->app->store, id, &owner, path, mime, &c->err);
    if (rc == FA_ENOTFOUND)
        fa_err_set(&c->err, rc, "image not found");
    if (rc == FA_OK)
        rc = check_access(c, id, owner);
    if (rc == FA_OK)
        rc = fa_media_get(c->app->media, id, path, &bytes, &n, &type, &c->err);
    if (rc != FA_OK)
        return rc;
    fa_http_reply_bytes(c->reply, 200, type, bytes, n);
    c->reply->no_store = 1;
    return FA_OK;
}

void fa_api_face_image(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    struct fa_call c;
    memset(&c, 0, sizeof c);
    c.app = app;
    c.req = req;
    c.reply = reply;
    api_finish(&c, serve_image(&c));
}
