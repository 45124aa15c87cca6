/*
 * recover.c — start-up work before the server takes requests (see api.h).
 *
 * Two kinds of crash leave files behind: one between writing an image file
 * and committing the row that names it (an orphan file), and one between
 * deleting a user's rows and removing their files (a pending path). Both are
 * finished here, so after a restart no file exists that no row names and no
 * deleted user's face remains on disk. Then the gallery loads the search
 * index (gallery.h).
 */
#include "api_int.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

static enum fa_rc finish_pending(struct fa_app *app, struct fa_err *err)
{
    char **paths = NULL;
    int n = 0;
    enum fa_rc rc = fa_store_pending_list(app->store, &paths, &n, err);
    if (rc != FA_OK)
        return rc;
    for (int i = 0; i < n; i++)
        fa_media_remove(app->media, paths[i]);
    rc = fa_store_pending_done(app->store, paths, n, err);
    if (rc == FA_OK && n > 0)
        fprintf(stderr, "faceauth: removed %d image files of deleted users\n", n);
    fa_store_paths_free(paths, n);
    return rc;
}

/* Remove every file of images/<customer>/ that no row names. */
static enum fa_rc sweep_folder(struct fa_app *app, const char *customer, int *removed,
                               struct fa_err *err)
{
    char dir[FA_PATH_MAX * 2];
    char rel[FA_PATH_MAX];
    struct dirent *e;
    DIR *d;
    enum fa_rc rc = FA_OK;
    snprintf(dir, sizeof dir, "%s/images/%s", app->cfg->data_dir, customer);
    d = opendir(dir);
    if (d == NULL)
        return FA_OK;
    while (rc == FA_OK && (e = readdir(d)) != NULL) {
        int known = 1;
        if (e->d_name[0] == '.')
            continue;
        snprintf(rel, sizeof rel, "images/%s/%s", customer, e->d_name);
        rc = fa_store_image_path_known(app->store, rel, &known, err);
        if (rc == FA_OK && !known) {
            fa_media_remove(app->media, rel);
            (*removed)++;
        }
    }
    closedir(d);
    return rc;
}

static enum fa_rc sweep_orphans(struct fa_app *app, struct fa_err *err)
{
    char dir[FA_PATH_MAX + 16];
    struct dirent *e;
    DIR *d;
    int removed = 0;
    enum fa_rc rc = FA_OK;
    snprintf(dir, sizeof dir, "%s/images", app->cfg->data_dir);
    d = opendir(dir);
    if (d == NULL)
        return FA_OK;
    while (rc == FA_OK && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            rc = sweep_folder(app, e->d_name, &removed, err);
    closedir(d);
    if (removed > 0)
        fprintf(stderr, "faceauth: removed %d image files no record names\n", removed);
    return rc;
}

enum fa_rc fa_api_recover(struct fa_app *app, struct fa_err *err)
{
    enum fa_rc rc = finish_pending(app, err);
    if (rc == FA_OK)
        rc = sweep_orphans(app, err);
    if (rc == FA_OK)
        rc = fa_gallery_load(app->gallery, err);
    return rc;
}
