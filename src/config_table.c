/*
 * config_table.c — every config key: type, range, default and help
 * (config_int.h). config/faceauth.conf is printed from this table by
 * `faceauth config-defaults` and a test fails when the committed file
 * differs, so a default changes here and nowhere else: edit a row, then
 * run `build/faceauth config-defaults > config/faceauth.conf`.
 *
 * A key is named after its struct fa_config field (the macros take the
 * field), except the znorm_<model> keys, which fill one row of znorm[].
 */
#include "config_int.h"

#include "faceauth/config.h"

#define OFF(f) offsetof(struct fa_config, f)
#define SIZEOF(f) sizeof(((struct fa_config *)0)->f)
#define TEXT(f, def, help) {#f, FA_CFG_STR, OFF(f), SIZEOF(f), 0, 0, def, help}
#define FLAG(f, def, help) {#f, FA_CFG_BOOL, OFF(f), 0, 0, 1, def, help}
#define INT(f, lo, hi, def, help) {#f, FA_CFG_INT, OFF(f), 0, lo, hi, def, help}
#define LONG(f, lo, hi, def, help) {#f, FA_CFG_LONG, OFF(f), 0, lo, hi, def, help}
#define SIZE(f, lo, hi, def, help) {#f, FA_CFG_SIZE, OFF(f), 0, lo, hi, def, help}
#define REAL(f, lo, hi, def, help) {#f, FA_CFG_DOUBLE, OFF(f), 0, lo, hi, def, help}
#define LIST(f, lo, hi, def, help) {#f, FA_CFG_LIST, OFF(f), 0, lo, hi, def, help}
#define MODELS(f, def, help) {#f, FA_CFG_MODELS, OFF(f), 0, 0, 0, def, help}
#define ZNORM(key, m, def, help) {key, FA_CFG_ZNORM, OFF(znorm[m]), 0, -1, 1, def, help}

/* The znorm_<name> keys below follow the model table of vision.h. */
_Static_assert(FA_N_MODELS == 3, "add a znorm_ key for the new model");

const char fa_cfg_intro[] =
    "# faceauth configuration: `key = value`, one per line; # starts a comment.\n"
    "# Every option is listed with its built-in default and why it is that.\n"
    "# Later layers win: built-in defaults < this file < FACEAUTH_<KEY> environment\n"
    "# variables (e.g. FACEAUTH_PORT=9000) < command-line flags (--port, --data,\n"
    "# --models, --listen).\n"
    "# Printed by `faceauth config-defaults` from the table in src/config_table.c:\n"
    "# a default is changed there, and this file printed again.\n";

const struct fa_cfg_key fa_cfg_keys[] = {
    TEXT(listen, "0.0.0.0",
         "Address to listen on. 0.0.0.0 serves every interface; use 127.0.0.1 behind a\n"
         "reverse proxy that terminates TLS.\n"),
    INT(port, 0, 65535, "8080",
        "TCP port. 0 picks a free port (printed at start; the tests use this).\n"),
    TEXT(data_dir, "data",
         "Folder for faceauth.db (SQLite), images/ (stored faces) and secret.key.\n"
         "Relative paths are relative to the working directory.\n"),
    TEXT(model_dir, "models",
         "Folder with the ONNX models: fr_detect, fr_landmark, fr_feature, fr_liveness\n"
         "(fetched by scripts/setup), mobilefacenet and dlib_resnet (converted by\n"
         "scripts/setup).\n"),
    TEXT(public_url, "",
         "Base of the links the server hands out (faceOriginal, enrollmentUrl), e.g.\n"
         "https://faces.example.com. Set it in production. Empty: the Host header\n"
         "when allowed_hosts lists it, else the address the client connected to (a\n"
         "warning at start says so); a client's Host alone never decides a link.\n"),
    TEXT(allowed_hosts, "localhost",
         "Host header values trusted for links while public_url is empty, comma-\n"
         "separated. An entry without a port matches on the port the client\n"
         "connected to. localhost keeps local set-ups' links as typed.\n"),
    INT(http_threads, 0, 1024, "0",
        "HTTP threads. 0 = 4 x cores: more threads than engines, so requests waiting\n"
        "on a slow image URL do not hold back the ones ready to compute.\n"),
    INT(engines, 0, 256, "0",
        "Face engines (models loaded once each). 0 = one per core: face work is\n"
        "CPU-bound, more engines than cores only adds contention.\n"),
    SIZE(max_body_bytes, 1024, 1e9, "16777216",
         "Largest request body accepted (413 above). A 10 MB image as a base64 data:\n"
         "URI is about 13.4 MB, so 16 MB leaves room for the JSON around it.\n"),
    INT(connection_timeout_s, 1, 3600, "30",
        "Idle connections are closed after this many seconds.\n"),
    INT(max_connections, 1, 1000000, "1000",
        "Open connections at most; more are refused at once. Below the usual\n"
        "1024 open-file limit, with room for the database and image files.\n"),
    INT(max_connections_per_ip, 0, 1000000, "32",
        "Open connections per client address (0 = no limit), so one address cannot\n"
        "take them all: 1000 / 32 means 32 addresses to fill the server. A browser\n"
        "opens 6 per host and an app server's pool rarely 32. Behind a reverse proxy\n"
        "every client has the proxy's address: raise this to max_connections.\n"),
    LONG(request_read_timeout_ms, 100, 3600000, "30000",
         "The headers and body of a request must arrive within this (from the\n"
         "connection opening, or the previous answer): a client sending a byte every\n"
         "few seconds no longer holds a connection forever. Idle timeout aside.\n"),
    LONG(min_body_rate, 0, 1e9, "8192",
         "Each this many bytes of body received extend that deadline by a second\n"
         "(0 = no extension), so an honest upload on a slow link (64 kbit/s and up)\n"
         "still gets through while a trickle does not.\n"),
    INT(queue_timeout_ms, 1, 600000, "15000",
        "How long a request may wait for a free engine before the answer is 503.\n"),
    SIZE(max_image_bytes, 1024, 1e9, "10485760",
         "Largest image download (or decoded data: URI).\n"),
    LONG(fetch_timeout_ms, 100, 600000, "10000",
         "Whole image download, redirects included, in milliseconds.\n"),
    INT(max_redirects, 0, 20, "3",
        "Redirects followed when fetching an image URL.\n"),
    FLAG(allow_private_urls, "no",
         "Image URLs on loopback/private/link-local addresses are refused so clients\n"
         "cannot make the server probe its own network (SSRF). yes for tests or LANs.\n"),
    LONG(max_pixels, 10000, 1e9, "40000000",
         "Largest image in pixels (width x height), checked from the header before\n"
         "decoding: a 40-megapixel cap refuses decompression bombs, keeps phone photos.\n"),
    MODELS(models, "fr_feature,mobilefacenet,dlib",
           "Face models whose scores authenticate fuses (any subset, comma-separated):\n"
           "fr_feature, mobilefacenet, dlib. All three: on held-out LFW the fusion\n"
           "falsely rejects 2.5% of genuine pairs at FMR 1e-4, the best single model\n"
           "4.3% (docs/accuracy.md). fr_feature is embedded whatever this says: the\n"
           "search index uses it. Changing the set changes what the thresholds mean.\n"),
    ZNORM("znorm_fr_feature", FA_MODEL_ARCFACE, "0.00849,0.11329",
          "Each model's score normalisation, \"mean,sd\": a model's score becomes\n"
          "z = (cosine - mean) / sd and the fused score is the mean z of the models a\n"
          "photo pair shares, so the thresholds below are in z units. mean is the mean\n"
          "of the model's impostor cosines on lfw-dev; sd is their standard deviation\n"
          "(0.0975, 0.1437, 0.0344) divided by 3 x the model's fusion weight (0.29,\n"
          "0.43, 0.29, from a logistic fit, which measured best: docs/accuracy.md).\n"
          "Calibrated by bench/accuracy, together with the thresholds below.\n"),
    ZNORM("znorm_mobilefacenet", FA_MODEL_MFN, "0.01109,0.11258",
          ""),
    ZNORM("znorm_dlib", FA_MODEL_DLIB, "0.83589,0.03984",
          ""),
    LIST(threshold_high, -100, 100,
         "3.297,3.413,3.491,3.542,3.587,3.613,3.627,3.666,"
         "3.695,3.737,3.757,3.757,3.778,3.778,3.778",
         "Fused-score thresholds of precision \"high\" (FMR 1e-4) and \"low\" (FMR 1e-3),\n"
         "one per number of photos k a user has (value i for k = i + 1; the last\n"
         "value for larger k). A best-of-k score matches impostors more often than\n"
         "one comparison, so each value is the FMR quantile of best-of-k impostor\n"
         "scores on lfw-dev (people with >= k photos against everyone else's), which\n"
         "held the FMR on held-out people better than the single-comparison\n"
         "threshold at FMR / k (docs/accuracy.md). 15 values: 5 enrolled + 10\n"
         "learned photos, the most a user can have. At k = 1: 4.2% (high) and 2.0%\n"
         "(low) of lfw-dev's genuine pairs fall below.\n"),
    LIST(threshold_low, -100, 100,
         "2.752,2.891,2.966,3.012,3.050,3.082,3.106,3.148,"
         "3.173,3.196,3.216,3.223,3.240,3.256,3.257",
         ""),
    REAL(second_face_ratio, 0, 1, "0.8",
         "Several faces: the largest is used unless the second's box area is at least\n"
         "this fraction of the largest's; then the request fails (\"several faces\").\n"),
    REAL(min_eye_distance_enroll, 0, 10000, "20",
         "Quality gates. Each refusal names the problem and the measured value.\n"
         "Enrollment is stricter than authentication: a reference face is compared\n"
         "for years, a probe once. Measured on lfw-dev's 6,922 photos (faceauth\n"
         "quality): the authentication gates refuse 0.48% of them (pose 0.39%,\n"
         "blur 0.09%), the enrollment gates 1.63% (pose 1.16%, blur 0.35%, dark\n"
         "0.07%, small 0.06%); the several-faces rule above adds 1.0% to both.\n"
         "A limit of 0 turns its gate off.\n"
         "Smallest face, as pixels between the eye centres in the original image\n"
         "(the 112x112 chip puts them 35 px apart: below 15 it is mostly upscaled).\n"),
    REAL(min_eye_distance_auth, 0, 10000, "15",
         ""),
    REAL(min_sharpness_enroll, 0, 1e6, "25",
         "Blur: variance of the Laplacian of the aligned 112x112 gray chip\n"
         "(lfw-dev: median 139, 1% below 34, 0.12% below 17).\n"),
    REAL(min_sharpness_auth, 0, 1e6, "15",
         ""),
    REAL(min_brightness_enroll, 0, 255, "50",
         "Too dark / too bright: mean gray level of the aligned chip, 0..255\n"
         "(lfw-dev: 0.1% below 52, the brightest 195). Kept wide: darker skin in good\n"
         "light must never read as \"too dark\".\n"),
    REAL(min_brightness_auth, 0, 255, "35",
         ""),
    REAL(max_brightness_enroll, 0, 255, "210",
         ""),
    REAL(max_brightness_auth, 0, 255, "220",
         ""),
    REAL(max_yaw_enroll, 0, 180, "45",
         "Extreme pose, in degrees from the landmarks (estimates beyond ~45 degrees\n"
         "are rough: a profile face reads about 60). lfw-dev: |yaw| > 45 for 0.78%\n"
         "(> 50: 0.26%), |pitch| > 40 for 0.40% (> 45: 0.12%), |roll| > 30 for\n"
         "0.04%. Roll (head tilted sideways) is undone by the alignment, so\n"
         "authentication allows a lot of it; enrollment keeps a reference upright.\n"),
    REAL(max_yaw_auth, 0, 180, "50",
         ""),
    REAL(max_pitch_enroll, 0, 180, "40",
         ""),
    REAL(max_pitch_auth, 0, 180, "45",
         ""),
    REAL(max_roll_enroll, 0, 180, "30",
         ""),
    REAL(max_roll_auth, 0, 180, "50",
         ""),
    REAL(liveness_min, 0, 1, "0.05",
         "Liveness (only when a customer's checkLiveliness is yes, authenticate\n"
         "only): faces whose fr_liveness \"live\" probability is below this are\n"
         "refused as a photo or screen. The two spoof samples we have score 0.0001\n"
         "and 0.0008 (60x below), a live sample 0.91; 7.0% of lfw-dev's photos\n"
         "score below 0.05 (they are reproduced news photos; live camera captures\n"
         "fare better). A screening signal, not certified presentation-attack\n"
         "detection.\n"),
    LONG(token_ttl_s, 1, 1e9, "86400",
         "Lifetime of access tokens from login, in seconds.\n"),
    LONG(link_ttl_s, 1, 1e9, "86400",
         "Lifetime of the signed faceOriginal/faceThumbnail links, in seconds.\n"),
    INT(thumbnail_size, 32, 1024, "192",
        "Thumbnail side in pixels (square JPEG of the zoomed face).\n"),
    INT(max_learned_templates, 0, 100, "10",
        "Learned photos kept per user (useSampleForLearning); the oldest learned\n"
        "photo goes first (all its models' templates), enrolled ones never.\n"),
    REAL(learn_margin, 0, 100, "1.0",
         "A probe is learned only when its fused score is at least the threshold +\n"
         "this margin (z units) and it passes the enrollment gates. 1.0 z is more\n"
         "than a decade of false-match rate above the threshold, so a borderline\n"
         "impostor success never becomes a template.\n"),
    INT(login_hash_concurrency, 0, 256, "0",
        "Abuse resistance. A login's password hash (Argon2id) takes a core and\n"
        "64 MiB for ~0.1 s, so only this many run at once; 0 = half the cores\n"
        "(rounded up). A login finding them all busy waits up to login_hash_wait_ms\n"
        "(at most as many logins wait as there are slots), then is answered 429 with\n"
        "Retry-After: a login storm gets quick 429s and /healthz and face work keep\n"
        "their cores, instead of everyone getting 503.\n"),
    INT(login_hash_wait_ms, 0, 60000, "1000",
        ""),
    INT(login_fail_limit, 0, 100, "5",
        "Failed logins per (customerName, client address; an IPv6 client by its\n"
        "/64). Failure k (below the limit) makes the next try from there wait\n"
        "login_fail_delay_s x 2^(k-1) seconds (1, 2, 4, 8 s); login_fail_limit\n"
        "failures within login_fail_window_s lock that pair for login_lock_s, each\n"
        "later lock twice as long up to login_max_lock_s. While waiting or locked\n"
        "the answer is 429 with Retry-After and no password is hashed. A success\n"
        "clears it all; `faceauth customer unlock NAME` clears a customer's locks.\n"
        "0 as the limit switches login throttling off.\n"),
    LONG(login_fail_window_s, 1, 1e7, "900",
         ""),
    LONG(login_lock_s, 1, 1e7, "900",
         ""),
    LONG(login_max_lock_s, 1, 1e7, "86400",
         ""),
    LONG(login_fail_delay_s, 0, 3600, "1",
         ""),
    INT(auth_fail_limit, 0, 100, "5",
        "Failed authenticate attempts per user (no match, no usable face, refused by\n"
        "a gate or the liveness screen; every precision counts), and separately\n"
        "failed enroll/update attempts per user: auth_fail_limit of them within\n"
        "auth_fail_window_s refuse that user's attempts for auth_lock_s (HTTP 429,\n"
        "the operation's failure shape). AWS's liveness guidance: at most 5\n"
        "failures per 3 minutes, then a lock-out. A success clears the count.\n"
        "0 as the limit switches it off.\n"),
    LONG(auth_fail_window_s, 1, 1e7, "180",
         ""),
    LONG(auth_lock_s, 1, 1e7, "900",
         ""),
    FLAG(log_failed_scores, "no",
         "view/logs/all shows matchScore of successful attempts only: a failed\n"
         "attempt's score tells how close a forged face came. yes shows it for\n"
         "failures too (for an operator studying false rejects).\n"),
    LONG(enroll_link_ttl_s, 1, 1e9, "604800",
         "The enrollment page (GET /enroll/<token>, the enrollmentUrl): the link\n"
         "works this many seconds after it was issued (user/create, or user/update\n"
         "with faceToBeUpdated=yes, which issues a new one), and not at all once the\n"
         "user is enrolled. A week: time for the person to get to it.\n"),
    INT(enroll_attempts_per_hour, 1, 100000, "10",
        "Uploads one link may make per hour (each a set of 1-3 photos): enough for\n"
        "a person retrying in bad light, too few to use the page as a free oracle.\n"),
    SIZE(enroll_page_max_bytes, 1024, 1e9, "8388608",
         "Largest upload body of the page (413 above). The page sends three JPEGs\n"
         "scaled to 1280 pixels, a few hundred kB; 8 MB also takes three phone\n"
         "photos from a client that does not scale them.\n"),
    LONG(fetch_request_timeout_ms, 100, 600000, "15000",
         "All image downloads of one request together (the urls of an enroll\n"
         "included), in milliseconds: each URL gets fetch_timeout_ms or what is left\n"
         "of this, whichever is less, so five slow URLs cannot hold a worker for\n"
         "five times fetch_timeout_ms.\n"),
    INT(max_fetches_per_customer, 0, 1024, "0",
        "Image downloads one customer may have running at once; one more is refused\n"
        "with 429. 0 = half of http_threads, so one customer's slow URLs never hold\n"
        "every worker.\n"),
    FLAG(durable_commits, "yes",
         "yes: every database commit is fsync'ed before the answer (SQLite\n"
         "synchronous=FULL), so an acknowledged enrollment or deletion survives a\n"
         "power loss. no (synchronous=NORMAL) is faster and never corrupts the\n"
         "file, but a power loss may undo the last commits.\n"),
    REAL(keep_failed_photos_days, 0, 36500, "7",
         "Photos of failed operations (authentications, enrollments without a usable\n"
         "face) and photos sent to search are deleted after this many days (decimals\n"
         "allowed; 0 = at the next purge); the log rows stay, without their images.\n"
         "Enrolled faces and photos of successful authentications are kept.\n"),
    REAL(keep_search_photos_days, 0, 36500, "7",
         ""),
    INT(photo_purge_interval_s, 1, 86400, "3600",
        "How often the purge of old photos runs, in seconds.\n"),
    LONG(min_free_disk_mb, 0, 1e7, "64",
         "/readyz answers 503 when the data folder has less free space than this.\n"),
    INT(disk_reserve_mb, 0, 4096, "16",
        "A file of this size is kept in the data folder and given up when a\n"
        "user/delete finds the disk full, so deleting (which frees space) still\n"
        "works; it is recreated once there is room. 0 = none.\n"),
    LONG(callback_connect_timeout_ms, 100, 60000, "2000",
         "Callbacks (settings: the four ...Callbackurl fields). Each event is POSTed\n"
         "by one background thread, signed with the customer's callback secret\n"
         "(faceauth customer callback-secret NAME). The same address guard as image\n"
         "URLs applies (allow_private_urls above); redirects are never followed.\n"
         "Connect and whole-attempt limits of one attempt, in milliseconds: a\n"
         "receiver that hangs holds its customer's slot this long, no longer.\n"),
    LONG(callback_timeout_ms, 100, 120000, "5000",
         ""),
    LONG(callback_retry_base_ms, 10, 3600000, "1000",
         "Retries: the first after callback_retry_base_ms, each next one 3x later\n"
         "(with jitter, at least half of that), never more than callback_retry_max_ms\n"
         "apart; after callback_max_attempts attempts the event is dead (view/callbacks).\n"
         "The defaults span about two hours: 1 s, 3 s, 9 s ... 36 min, 1 h.\n"),
    LONG(callback_retry_max_ms, 10, 86400000, "3600000",
         ""),
    INT(callback_max_attempts, 1, 100, "10",
        ""),
    INT(callback_parallel, 1, 64, "4",
        "Transfers at once, at most one per customer: one customer's slow receiver\n"
        "never holds back another customer's events.\n"),
    INT(callback_keep_days, 1, 3650, "30",
        "Sent and dead events (view/callbacks) are deleted this many days after\n"
        "their last attempt: each holds an answer, with its image links.\n"),
    TEXT(metrics_token, "",
         "Who may read GET /metrics (Prometheus text format). Empty: clients on a\n"
         "loopback address only (a scraper on the same host; behind a reverse proxy\n"
         "on this host every client looks local, so set a token or do not forward\n"
         "/metrics). Set: any address, but only with the header\n"
         "\"Authorization: Bearer <metrics_token>\" (loopback included). The metrics\n"
         "hold no customer or user data, only counts and times.\n"),

};

const size_t fa_cfg_n_keys = sizeof fa_cfg_keys / sizeof fa_cfg_keys[0];
