/*
 * api_int.h — helpers shared by the endpoint files of src/api/.
 *
 * Every handler runs the same walk: api_begin parses the JSON body and checks
 * the access token against customerName; field getters name the field in
 * every error; the handler's work returns an fa_rc, and api_finish turns a
 * failure into the error reply once. After the first failure nothing else
 * runs, so a reply is never written twice.
 */
#ifndef FACEAUTH_API_INT_H
#define FACEAUTH_API_INT_H

#include <cjson/cJSON.h>

#include "faceauth/api.h"

/* The callback event of a call's record (events.c). */
struct api_event {
    struct fa_store_event ev; /* ev.queued: the outbox holds it, held */
    int64_t time;             /* its timeStamp, Unix seconds */
    char customer[FA_NAME_MAX + 1]; /* its customerName */
};

/* One API call in progress. */
struct fa_call {
    struct fa_app *app;
    struct fa_http_req *req;
    struct fa_http_reply *reply;
    cJSON *body;               /* the parsed request (owned; NULL for GET) */
    const char *customer_name; /* borrowed from body */
    int64_t customer_id;       /* set when authenticated */
    struct fa_err err;
    struct api_event event;    /* the record's callback event, when one was queued */
    long long fetch_deadline_ms; /* monotonic ms by which every image download must end */
};

enum api_auth { API_PUBLIC, API_CUSTOMER };

/*
 * Parse the body as a JSON object and, for API_CUSTOMER, require
 * customerName and a live access token of that customer. On failure the
 * returned code and c->err describe it (api_finish replies).
 */
enum fa_rc api_begin(struct fa_call *c, void *app, struct fa_http_req *req,
                     struct fa_http_reply *reply, enum api_auth auth);

/* The work of one endpoint: validate, act, fill c->reply; a failure is returned. */
typedef enum fa_rc (*api_work)(struct fa_call *c);

/* The whole walk of a handler: api_begin, work, api_finish. */
void api_run(void *app, struct fa_http_req *req, struct fa_http_reply *reply, enum api_auth auth,
             api_work work);

/* pageNumber (>= 1, default 1) and pageCount (1-100, default 10). */
enum fa_rc api_paging(struct fa_call *c, int *page, int *count);

/* Total pages for total rows at count per page (at least 1). */
long api_total_pages(long total, int count);

/* Reply with c->err when rc is a failure (and nothing was replied yet); free the body. */
void api_finish(struct fa_call *c, enum fa_rc rc);

/* The access token from "Authorization: <token>" or "Bearer <token>"; NULL when absent. */
const char *api_token(const struct fa_call *c);

/*
 * A string field. Missing (or null) is FA_EINVAL when required, else *out is
 * NULL; any other JSON type is FA_EINVAL "field must be a string".
 */
enum fa_rc api_string(struct fa_call *c, const char *field, int required, const char **out);

/* userName, also spelled username (the seed uses both). */
enum fa_rc api_user_name(struct fa_call *c, int required, const char **out);

/* A yes/no field: "yes"/"no" (any case) or a JSON boolean; dflt when absent. */
enum fa_rc api_yes_no(struct fa_call *c, const char *field, int dflt, int *out);

/* One of a fixed set of words (e.g. precision high/low); index into choices. */
enum fa_rc api_choice(struct fa_call *c, const char *field, const char *const *choices,
                      int n_choices, int dflt, int *out);

/* Look a user up by name in the caller's customer; FA_ENOTFOUND names it. */
enum fa_rc api_user(struct fa_call *c, const char *user_name, struct fa_user *out);

/*
 * Refuse control characters in the text of a JSON body cJSON accepted:
 * NUL, other C0 controls, DEL and C1 controls in any string value or field
 * name, raw or escaped; tab/CR/LF too except in url/urls/images (wrapped
 * base64).
 * FA_EINVAL names the field ("userName", "urls[2]") and the character.
 */
enum fa_rc api_json_check_text(const char *json, size_t n, struct fa_err *err);

/* 1 when a C string holds a byte below 0x20 or DEL. */
int api_text_has_control(const char *text);

/*
 * "http://host:port" of this server, for links: public_url when set; else
 * the Host header when allowed_hosts lists it (an entry without a port
 * matches that host on the port the client connected to); else the address
 * and port the client connected to. A Host header alone never decides.
 */
void api_base_url(const struct fa_call *c, char *out, size_t cap);

/* A signed, expiring link to a stored image, added to obj as field. */
void api_add_image_link(const struct fa_call *c, cJSON *obj, const char *field, const char *id);

/* The enrollment URL of a user (base + "/enroll/" + token). */
void api_enrollment_url(const struct fa_call *c, const char *token, char *out, size_t cap);

/*
 * An integer field: a JSON number or a string of digits, in [min, max];
 * dflt when absent. Anything else is FA_EINVAL naming the field and range.
 */
enum fa_rc api_int(struct fa_call *c, const char *field, long min, long max, long dflt,
                   long *out);

/* A number field in [min, max]; dflt when absent. */
enum fa_rc api_number(struct fa_call *c, const char *field, double min, double max, double dflt,
                      double *out);

/*
 * A date field "yyyy-mm-dd hh:mm:ss" (UTC; "yyyy-mm-dd" alone means the start
 * of that day, or its end when end_of_day) as Unix seconds; 0 when absent.
 */
enum fa_rc api_date(struct fa_call *c, const char *field, int end_of_day, int64_t *out);

/* "yyyy-mm-dd hh:mm:ss" of Unix seconds t (UTC) into obj as field. */
void api_add_date(cJSON *obj, const char *field, int64_t t);

/* A success reply: fields + "message" + "status": "200 OK"; takes ownership of fields. */
void api_reply_ok(struct fa_call *c, cJSON *fields, const char *message);

/* Fetch the image named by url with the server's caps and guard. */
enum fa_rc api_fetch(struct fa_call *c, const char *url, uint8_t **bytes, size_t *n);

/*
 * fa_fetch_image under the request-wide limits (fetchlimit.c): the URL gets
 * fetch_timeout_ms or what is left of the request's fetch_request_timeout_ms,
 * whichever is less, and one of the customer's max_fetches_per_customer
 * slots while it downloads (FA_ELIMIT, 429, when none is free). data: URIs
 * are decoded at once, outside both limits. Messages start with "url:".
 */
enum fa_rc api_fetch_limited(struct fa_call *c, const char *url, uint8_t **bytes, size_t *n);

/* Monotonic milliseconds (deadlines). */
long long api_now_ms(void);

/* A failure that is the disk's (FA_ENOSPACE, FA_EREADONLY): log the detail
 * in c->err for the operator, note it for /readyz, and put the client's
 * message in its place (what happened and that nothing was stored). */
void api_storage_failure(struct fa_call *c, enum fa_rc rc);

/* fa_gallery_user_delete for the caller's customer; on a full disk it gives
 * up the disk reserve and tries once more (diskfull.c). When that fails
 * too, the answer (507, how to recover) is already in c->reply. */
enum fa_rc api_user_delete_rows(struct fa_call *c, const char *name, int64_t *user_id,
                                char ***paths, int *n);

/* The file extension for a probed image kind ("jpg", "png", ...). */
const char *api_image_ext(enum fa_image_kind kind);

/* ---- the stored images and log row of one face operation (facework.c) ---- */

struct api_saved {
    struct fa_store_image original;
    struct fa_store_image thumbnail;
    char original_path[FA_PATH_MAX];
    char thumbnail_path[FA_PATH_MAX];
    int has_original;
    int has_thumbnail;
};

/*
 * Run the face service on fetched bytes (flags: FA_FACE_LIVENESS). Face
 * refusals keep their code (fa_face_refused: no face, a gate, liveness).
 * FA_EIMAGE and FA_ETOOBIG (pixels over the cap) become FA_EINVAL: a bad
 * image named by a field, not an oversized request body (413). field names
 * the image in messages ("url", "urls[2]").
 */
enum fa_rc api_analyze(struct fa_call *c, const char *field, const uint8_t *bytes, size_t n,
                       enum fa_face_purpose purpose, unsigned flags,
                       struct fa_face_probe *probe);

/* api_fetch for an image named by another field than url ("urls[2]"). */
enum fa_rc api_fetch_field(struct fa_call *c, const char *field, const char *url,
                           uint8_t **bytes, size_t *n);

/*
 * Write the original bytes and, when probe has one, its thumbnail as files
 * of the caller's customer. The file's kind is the probe's (the bytes were
 * probed once, by the analysis); without a probe the bytes are probed here.
 * On failure nothing stays on disk.
 */
enum fa_rc api_save_images(struct fa_call *c, const uint8_t *bytes, size_t n,
                           const struct fa_face_probe *probe, struct api_saved *saved);

/* Only the original, of a kind already known (a refused photo: its
 * analysis knows the kind; its thumbnail, if any, is not kept). */
enum fa_rc api_save_original(struct fa_call *c, const uint8_t *bytes, size_t n,
                             enum fa_image_kind kind, struct api_saved *saved);

/*
 * Point rec at the saved images and commit it through the gallery (the
 * search index follows a template change); when the commit fails the files
 * are removed again, so no file exists that no row names.
 */
enum fa_rc api_commit(struct fa_call *c, struct fa_store_record *rec, struct api_saved *saved);

/* Add faceOriginal / faceThumbnail links of the saved images to obj. */
void api_add_saved_links(const struct fa_call *c, cJSON *obj, const struct api_saved *saved);

/* ---- failure limits (throttle.c) ---- */

#define API_ADDR_MAX 64

/* The client address the login throttle keys on (IPv6: its /64). */
void api_client_key(const struct fa_call *c, char out[API_ADDR_MAX]);

/* FA_ELIMIT (and Retry-After on c->reply) while (name, address) is delayed
 * or locked after failed logins; call before hashing the password. */
enum fa_rc api_login_check(struct fa_call *c, const char *name, const char *address);

/* After the password check: FA_OK clears the pair's failures, FA_EAUTH
 * counts one (and may lock, logged to stderr); other codes count nothing. */
void api_login_done(struct fa_call *c, const char *name, const char *address,
                    enum fa_rc login_rc);

/* Seconds the user's attempts of kind ("authenticate" or "enroll") are
 * still refused (0: may try). Reads only. */
long api_attempt_wait(struct fa_call *c, const struct fa_user *u, const char *kind);

/*
 * Count this attempt as a failure before its photo is judged (a success
 * clears it: api_attempt_succeeded). FA_ELIMIT with *wait_s when the user is
 * locked (a concurrent attempt got there first); other failures are the
 * store's, in c->err.
 */
enum fa_rc api_attempt_reserve(struct fa_call *c, const struct fa_user *u, const char *kind,
                               long *wait_s);
void api_attempt_succeeded(struct fa_call *c, const struct fa_user *u, const char *kind);

/* "<prefix>too many failed attempts for user 'x'; try again in N s" */
void api_attempt_locked_message(const struct fa_user *u, long wait_s, const char *prefix,
                                char *out, size_t cap);
/* ---- enroll (enroll.c) ---- */

/*
 * Enroll user u (of c->customer_id) from n photos (1..5 URLs or data:
 * URIs, borrowed): exactly what POST enroll does with urls (the gates, the
 * same-person check, the log row, enrollmentStatus, the JSON answer in
 * c->reply). Messages name the photos "<label> 1", "<label> 2", ...
 */
enum fa_rc api_enroll_user(struct fa_call *c, const struct fa_user *u, const char *const *urls,
                           int n, const char *label);

/* ---- callback events (events.c) ---- */

/*
 * Before a record's commit: name its callback event (none for search) and
 * point rec->callback at c->event with a stand-in body, returned to be
 * freed (free()) after the commit; NULL when there is no event.
 */
char *api_event_prepare(struct fa_call *c, struct fa_store_record *rec);

/* In api_finish, once the answer is final: when an event was queued, give
 * it the answer's body plus event, eventId, customerName and timeStamp,
 * and wake the delivery thread. Never fails the call. */
void api_event_finish(struct fa_call *c);

/* ---- handlers, one per endpoint (src/api/<group>.c) ---- */
void fa_api_login(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_logout(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_user_create(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_enroll(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_authenticate(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_face_image(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_user_details(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_user_update(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_user_delete(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_face_update(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_status_user(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_status_all(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_blacklist(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_whitelist(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_blacklist_all(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_search(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_space_store(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_space_delete(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_space_view(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_settings_view(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_settings_update(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_logs_all(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_callbacks_view(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_healthz(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_readyz(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_enroll_page(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_enroll_page_submit(void *app, struct fa_http_req *req, struct fa_http_reply *reply);
void fa_api_metrics(void *app, struct fa_http_req *req, struct fa_http_reply *reply);

#endif
