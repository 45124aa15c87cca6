/*
 * facework.c — what enroll, authenticate and search share: analysing a
 * photo, saving the images of a face operation and committing its record
 * (through the gallery, so the search index follows template changes).
 *
 * Order matters for crash safety: files are written (fsync'ed) first and the
 * database row that names them is committed after, so a row never points at
 * a missing file; a failed commit removes the files it just wrote.
 */
#include "api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum fa_rc api_analyze(struct fa_call *c, const char *field, const uint8_t *bytes, size_t n,
                       enum fa_face_purpose purpose, unsigned flags,
                       struct fa_face_probe *probe)
{
    enum fa_rc rc =
        fa_face_analyze(c->app->faces, bytes, n, purpose, flags, probe, NULL, &c->err);
    if (rc == FA_EIMAGE || rc == FA_ETOOBIG) {
        char inner[FA_ERR_MAX];
        snprintf(inner, sizeof inner, "%s", c->err.msg);
        fa_err_set(&c->err, FA_EINVAL, "%s: the image cannot be decoded: %s", field, inner);
        return FA_EINVAL;
    }
    return rc;
}

enum fa_rc api_save_original(struct fa_call *c, const uint8_t *bytes, size_t n,
                             enum fa_image_kind kind, struct api_saved *saved)
{
    enum fa_rc rc;
    memset(saved, 0, sizeof *saved);
    rc = fa_media_save(c->app->media, c->customer_id, bytes, n, api_image_ext(kind),
                       saved->original.id, saved->original_path, &c->err);
    if (rc != FA_OK)
        return rc;
    saved->has_original = 1;
    saved->original.path = saved->original_path;
    saved->original.mime = fa_media_mime(api_image_ext(kind));
    return FA_OK;
}

enum fa_rc api_save_images(struct fa_call *c, const uint8_t *bytes, size_t n,
                           const struct fa_face_probe *probe, struct api_saved *saved)
{
    struct fa_image_info info;
    enum fa_rc rc;
    if (probe != NULL)
        info.kind = probe->kind;
    else if (fa_image_probe(bytes, n, &info, NULL) != FA_OK)
        info.kind = FA_IMG_JPEG;
    rc = api_save_original(c, bytes, n, info.kind, saved);
    if (rc != FA_OK || probe == NULL || probe->thumbnail == NULL)
        return rc;
    rc = fa_media_save(c->app->media, c->customer_id, probe->thumbnail, probe->n_thumbnail, "jpg",
                       saved->thumbnail.id, saved->thumbnail_path, &c->err);
    if (rc != FA_OK) {
        fa_media_remove(c->app->media, saved->original_path);
        saved->has_original = 0;
        return rc;
    }
    saved->has_thumbnail = 1;
    saved->thumbnail.path = saved->thumbnail_path;
    saved->thumbnail.mime = "image/jpeg";
    return FA_OK;
}

enum fa_rc api_commit(struct fa_call *c, struct fa_store_record *rec, struct api_saved *saved)
{
    enum fa_rc rc;
    char *standin;
    rec->customer_id = c->customer_id;
    rec->original = saved->has_original ? &saved->original : NULL;
    rec->thumbnail = saved->has_thumbnail ? &saved->thumbnail : NULL;
    standin = api_event_prepare(c, rec);
    rc = fa_gallery_commit(c->app->gallery, rec, &c->err);
    c->event.ev.body = NULL;
    cJSON_free(standin);
    if (rc == FA_OK && saved->has_original)
        fa_disk_note(c->app->disk, FA_OK); /* files and row written: there is room again */
    if (rc != FA_OK) {
        if (saved->has_original)
            fa_media_remove(c->app->media, saved->original_path);
        if (saved->has_thumbnail)
            fa_media_remove(c->app->media, saved->thumbnail_path);
        saved->has_original = saved->has_thumbnail = 0;
    }
    return rc;
}

void api_add_saved_links(const struct fa_call *c, cJSON *obj, const struct api_saved *saved)
{
    api_add_image_link(c, obj, "faceOriginal", saved->has_original ? saved->original.id : NULL);
    api_add_image_link(c, obj, "faceThumbnail", saved->has_thumbnail ? saved->thumbnail.id : NULL);
}
