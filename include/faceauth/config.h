/*
 * config.h — every setting of the server, in one struct.
 *
 * Layers, later wins: built-in defaults < config file (key = value lines)
 * < environment (FACEAUTH_<KEY> in upper case) < command-line flags.
 * Read-only once the server starts, so any thread may read it without a lock.
 */
#ifndef FACEAUTH_CONFIG_H
#define FACEAUTH_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "faceauth/common.h"
#include "faceauth/vision.h" /* FA_N_MODELS: one z-normalisation per model */

#define FA_CFG_PATH_MAX 512
#define FA_CFG_LIST_MAX 16 /* numbers in one list setting */

/*
 * A setting that is a comma-separated list of numbers. The precision
 * thresholds use it: value i applies to a user with i + 1 enrolled photos
 * (templates per model), the last value to every larger count.
 */
struct fa_cfg_list {
    int n;                     /* 1..FA_CFG_LIST_MAX */
    double v[FA_CFG_LIST_MAX];
};

struct fa_config {
    char listen[64];                  /* listen address */
    int port;
    char data_dir[FA_CFG_PATH_MAX];   /* faceauth.db, images/, secret.key */
    char model_dir[FA_CFG_PATH_MAX];  /* the .onnx files */
    char public_url[256];             /* base of links we hand out; "" = see allowed_hosts */
    int http_threads;                 /* 0 = 4 x cores */
    int engines;                      /* 0 = cores: concurrent face computations */
    size_t max_body_bytes;            /* request body cap (413 above it) */
    int connection_timeout_s;         /* idle connections are closed after this */
    int max_connections;              /* open connections at most */
    int max_connections_per_ip;       /* open connections per client address; 0 = no limit */
    long request_read_timeout_ms;     /* headers + body must arrive within this */
    long min_body_rate;               /* body bytes/s that extend request_read_timeout_ms */
    char allowed_hosts[512];          /* Host values trusted for links when public_url is "" */
    int queue_timeout_ms;             /* wait for a free engine before answering 503 */
    size_t max_image_bytes;           /* image download / data: URI cap */
    long fetch_timeout_ms;            /* whole image download */
    int max_redirects;
    int allow_private_urls;           /* 1 = image URLs may point at loopback/private hosts */
    long max_pixels;                  /* decoded image size cap (width x height) */
    unsigned models;                  /* FA_MODEL_BIT()s whose scores authenticate fuses */
    double znorm[FA_N_MODELS][2];     /* per model: impostor cosine mean and sd (fusion) */
    struct fa_cfg_list threshold_high; /* fused z, precision=high, by photo count */
    struct fa_cfg_list threshold_low;  /* fused z, precision=low, by photo count */
    double second_face_ratio;         /* refuse when the 2nd face is >= this x the largest */
    double min_eye_distance_enroll;   /* pixels between eye centres, enrollment */
    double min_eye_distance_auth;     /* same, authentication */
    double min_sharpness_enroll;      /* variance of the Laplacian of the aligned chip */
    double min_sharpness_auth;
    double min_brightness_enroll;     /* mean gray level of the aligned chip, 0..255 */
    double min_brightness_auth;
    double max_brightness_enroll;
    double max_brightness_auth;
    double max_yaw_enroll;            /* degrees, |yaw| (fa_face_pose) */
    double max_yaw_auth;
    double max_pitch_enroll;          /* degrees, |pitch| */
    double max_pitch_auth;
    double max_roll_enroll;           /* degrees, |roll| */
    double max_roll_auth;
    double liveness_min;              /* live probability below this is refused (checkLiveliness) */
    long token_ttl_s;                 /* access token lifetime */
    long link_ttl_s;                  /* signed image link lifetime */
    int thumbnail_size;               /* pixels, square */
    int max_learned_templates;        /* learned samples kept per user */
    double learn_margin;              /* learn only when fused score >= threshold + margin (z) */
    int login_hash_concurrency;       /* password hashes at once; 0 = half the cores, >= 1 */
    int login_hash_wait_ms;           /* a login waits this long for a hash slot, then 429 */
    int login_fail_limit;             /* failed logins per (customer, address) before a lock */
    long login_fail_window_s;         /* ... counted within this many seconds */
    long login_lock_s;                /* first login lock; each next one doubles */
    long login_max_lock_s;            /* longest login lock */
    long login_fail_delay_s;          /* wait after failed login k: this x 2^(k-1) s; 0 = none */
    int auth_fail_limit;              /* failed authenticate (or enroll) attempts per user */
    long auth_fail_window_s;          /* ... counted within this many seconds */
    long auth_lock_s;                 /* then the user's attempts are refused this long */
    int log_failed_scores;            /* 1: view/logs/all shows failed attempts' matchScore */
    long enroll_link_ttl_s;           /* enrollment page link lifetime from its issue */
    int enroll_attempts_per_hour;     /* POSTs to one enrollment page link per hour */
    size_t enroll_page_max_bytes;     /* body cap of an enrollment page upload (413 above) */
    long fetch_request_timeout_ms;    /* every image download of one request together */
    int max_fetches_per_customer;     /* image downloads at once per customer (429 above); 0 = auto */
    int durable_commits;              /* 1 = synchronous=FULL: commits survive a power loss */
    double keep_failed_photos_days;   /* photos of failed operations are purged after this */
    double keep_search_photos_days;   /* photos sent to search are purged after this */
    int photo_purge_interval_s;       /* how often the purge runs */
    long min_free_disk_mb;            /* /readyz is 503 below this much free space in data_dir */
    int disk_reserve_mb;              /* file kept in data_dir, given up so deletes work on a full disk */
    long callback_connect_timeout_ms; /* callbacks: connect phase of one attempt */
    long callback_timeout_ms;         /* callbacks: whole attempt */
    long callback_retry_base_ms;      /* callbacks: first retry delay (then x3 each time) */
    long callback_retry_max_ms;       /* callbacks: longest retry delay */
    int callback_max_attempts;        /* callbacks: attempts before an event is dead */
    int callback_parallel;            /* callbacks: transfers at once (one per customer) */
    int callback_keep_days;           /* callbacks: sent and dead events kept this long */
    char metrics_token[128];          /* "" = GET /metrics for loopback clients only; else
                                         every scrape needs "Authorization: Bearer <it>" */
};

/* Fill cfg with the built-in defaults (the table of src/config_table.c). */
void fa_config_defaults(struct fa_config *cfg);

/*
 * Print config/faceauth.conf: every key with its help as comments, what
 * values it takes and its default, in `key = value` lines that
 * fa_config_load_file reads back as the defaults. FA_EINTERNAL when out
 * cannot be written.
 */
enum fa_rc fa_config_write_defaults(FILE *out, struct fa_err *err);

/*
 * Apply a config file of `key = value` lines (# comments, blank lines).
 * FA_ENOTFOUND when the file cannot be opened; FA_EINVAL naming the file,
 * line and key for an unknown key or a bad value.
 */
enum fa_rc fa_config_load_file(struct fa_config *cfg, const char *path, struct fa_err *err);

/* Apply FACEAUTH_<KEY> environment variables; FA_EINVAL names a bad one. */
enum fa_rc fa_config_load_env(struct fa_config *cfg, struct fa_err *err);

/* Set one key from its text value (the file, env and flags all go through here). */
enum fa_rc fa_config_set(struct fa_config *cfg, const char *key, const char *value,
                         struct fa_err *err);

/* Fill the 0 = automatic values (threads) from the number of cores. */
void fa_config_finish(struct fa_config *cfg);

/*
 * The value of a list setting for count k (1-based): v[k - 1], the last
 * value for k beyond the list, the first for k < 1. Pure; any thread.
 */
double fa_cfg_list_at(const struct fa_cfg_list *list, int k);

#endif
