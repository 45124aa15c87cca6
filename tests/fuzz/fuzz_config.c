/*
 * fuzz_config.c — the config file parser (src/config.c) on fuzzed files
 * (libFuzzer).
 *
 * The input is the file's content. fa_config_load_file takes a path, so the
 * content is written to a memfd made once, and the parser opens it through
 * /proc/self/fd/N: no disk file per input, and the real fopen/fgets path.
 *
 * Checks beyond ASan/UBSan: a refusal names the file and line
 * ("<path>:<line>: ..."); whatever the outcome, every setting stays within
 * the range config.h and the key table promise (lists hold 1..16 numbers,
 * strings are terminated, sds are positive).
 */
#define _GNU_SOURCE /* memfd_create */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "faceauth/config.h"

static int g_fd = -1;      /* the memfd holding the current input */
static char g_path[64];    /* /proc/self/fd/<g_fd> */

static void fail(const char *why, const char *msg)
{
    fprintf(stderr, "fuzz_config: %s: %s\n", why, msg);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    g_fd = memfd_create("fuzz_config", MFD_CLOEXEC);
    if (g_fd < 0)
        fail("memfd_create", "");
    snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
    return 0;
}

static int terminated(const char *s, size_t cap) { return memchr(s, '\0', cap) != NULL; }

static void check_list(const struct fa_cfg_list *l)
{
    if (l->n < 1 || l->n > FA_CFG_LIST_MAX)
        fail("list length out of range", "");
    for (int i = 0; i < l->n; i++)
        if (!isfinite(l->v[i]) || l->v[i] < -100 || l->v[i] > 100)
            fail("list value out of range", "");
}

static void check_config(const struct fa_config *c)
{
    if (!terminated(c->listen, sizeof c->listen) || !terminated(c->data_dir, sizeof c->data_dir) ||
        !terminated(c->model_dir, sizeof c->model_dir) ||
        !terminated(c->public_url, sizeof c->public_url))
        fail("string setting not terminated", "");
    if (c->port < 0 || c->port > 65535 || c->max_body_bytes < 1024 || c->max_image_bytes < 1024 ||
        c->fetch_timeout_ms < 100 || c->max_redirects < 0 || c->max_redirects > 20 ||
        c->max_pixels < 10000 || c->thumbnail_size < 32 || c->thumbnail_size > 1024)
        fail("number setting out of range", "");
    if (c->models == 0 || (c->models & ~(unsigned)FA_MODELS_ALL) != 0)
        fail("models mask out of range", "");
    for (int m = 0; m < FA_N_MODELS; m++)
        if (!(c->znorm[m][1] > 0) || !isfinite(c->znorm[m][0]))
            fail("znorm sd not positive", "");
    check_list(&c->threshold_high);
    check_list(&c->threshold_low);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fa_config cfg;
    struct fa_err err = {{0}};
    enum fa_rc rc;
    if (ftruncate(g_fd, 0) != 0 || pwrite(g_fd, data, size, 0) != (ssize_t)size)
        fail("writing the memfd", "");
    fa_config_defaults(&cfg);
    rc = fa_config_load_file(&cfg, g_path, &err);
    if (rc != FA_OK && rc != FA_EINVAL)
        fail("unexpected code", err.msg);
    if (rc == FA_EINVAL &&
        (strncmp(err.msg, g_path, strlen(g_path)) != 0 || err.msg[strlen(g_path)] != ':'))
        fail("refusal does not name file and line", err.msg);
    check_config(&cfg);
    return 0;
}
