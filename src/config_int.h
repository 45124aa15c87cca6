/*
 * config_int.h — the table of every config key (internal to src/config*.c).
 *
 * One row per key gives its type, where it lives in struct fa_config, its
 * allowed range, its default and its help text. The default is written as
 * it would be in the config file and set through the same validator as the
 * file, the environment and the flags (fa_config_set), so it is written
 * once and a default outside its own range cannot go unnoticed; the
 * commented config/faceauth.conf is printed from the same rows
 * (fa_config_write_defaults), so the shipped file cannot disagree either.
 */
#ifndef FACEAUTH_CONFIG_INT_H
#define FACEAUTH_CONFIG_INT_H

#include <stddef.h>

/*
 * FA_CFG_LIST: struct fa_cfg_list, 1..FA_CFG_LIST_MAX numbers in [min, max].
 * FA_CFG_ZNORM: double[2], "mean,sd": both in [min, max], sd > 0.
 * FA_CFG_MODELS: unsigned mask of FA_MODEL_BIT()s from model names.
 */
enum fa_cfg_type {
    FA_CFG_STR,
    FA_CFG_INT,
    FA_CFG_LONG,
    FA_CFG_SIZE,
    FA_CFG_DOUBLE,
    FA_CFG_BOOL,
    FA_CFG_LIST,
    FA_CFG_ZNORM,
    FA_CFG_MODELS
};

struct fa_cfg_key {
    const char *name;
    enum fa_cfg_type type;
    size_t offset;    /* of the field in struct fa_config */
    size_t size;      /* FA_CFG_STR: buffer size */
    double min, max;  /* numbers: the allowed range, both ends included */
    const char *def;  /* the default, as written in the config file */
    const char *help; /* comment lines above the key in the file, each ending in
                         '\n'; "" when it shares the comment of the key above */
};

/* Every key, in the order of config/faceauth.conf (config_table.c). */
extern const struct fa_cfg_key fa_cfg_keys[];
extern const size_t fa_cfg_n_keys;

/* The comment at the top of config/faceauth.conf, lines ending in '\n'. */
extern const char fa_cfg_intro[];

#endif
