/*
 * test_api_json.c — the request helpers of src/api/common.c (api_begin,
 * api_string, api_user_name, api_yes_no, api_choice, api_token,
 * api_base_url, api_finish) on real requests.
 *
 * The helpers take a struct fa_call around an HTTP request, so this file
 * runs the real server (fa_http_start) with one route of its own: the
 * handler parses the body with api_begin, calls the helper named by the
 * query (?op=...&field=...), replies with what it found, and api_finish
 * turns a failure into the error reply. The app is a zeroed struct fa_app
 * with the default config: none of these helpers touch the store or media
 * (API_CUSTOMER is only driven up to the checks before the token lookup).
 */
#include "api/api_int.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "testutil.h"

static int g_port;
static struct fa_config g_cfg;
static struct fa_config g_cfg_public;
static struct fa_app g_app;
static struct fa_app g_app_public; /* public_url set, for api_base_url */
static struct fa_config g_cfg_hosts;
static struct fa_app g_app_hosts;  /* allowed_hosts set, for api_base_url */

/* ---- the handler --------------------------------------------------------- */

static int query_int(struct fa_http_req *req, const char *name, int dflt)
{
    const char *v = fa_http_req_query(req, name);
    return v != NULL ? (int)strtol(v, NULL, 10) : dflt;
}

static cJSON *value_str(const char *s)
{
    cJSON *o = cJSON_CreateObject();
    if (s != NULL)
        cJSON_AddStringToObject(o, "value", s);
    else
        cJSON_AddNullToObject(o, "value");
    return o;
}

static cJSON *value_int(int v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "value", v);
    return o;
}

/* Run the helper named by op; *out is the reply's fields on success. */
static enum fa_rc run_op(struct fa_call *c, const char *op, cJSON **out)
{
    static const char *const precision[] = {"high", "low"};
    static const char *const three[] = {"a", "b", "c"};
    const char *field = fa_http_req_query(c->req, "field");
    int required = query_int(c->req, "required", 0);
    int dflt = query_int(c->req, "dflt", 7);
    const char *s = NULL;
    int v = 0;
    char base[300];
    enum fa_rc rc = FA_OK;

    if (strcmp(op, "string") == 0) {
        rc = api_string(c, field, required, &s);
        *out = rc == FA_OK ? value_str(s) : NULL;
    } else if (strcmp(op, "user") == 0) {
        rc = api_user_name(c, required, &s);
        *out = rc == FA_OK ? value_str(s) : NULL;
    } else if (strcmp(op, "yesno") == 0) {
        rc = api_yes_no(c, field, dflt, &v);
        *out = rc == FA_OK ? value_int(v) : NULL;
    } else if (strcmp(op, "choice") == 0) {
        rc = api_choice(c, field, precision, 2, dflt, &v);
        *out = rc == FA_OK ? value_int(v) : NULL;
    } else if (strcmp(op, "choice3") == 0) {
        rc = api_choice(c, field, three, 3, dflt, &v);
        *out = rc == FA_OK ? value_int(v) : NULL;
    } else if (strcmp(op, "token") == 0) {
        *out = value_str(api_token(c));
    } else if (strcmp(op, "base") == 0) {
        api_base_url(c, base, sizeof base);
        *out = value_str(base);
    } else if (strcmp(op, "fetch") == 0) {
        uint8_t *bytes = NULL;
        size_t n = 0;
        rc = api_string(c, "url", 0, &s);
        if (rc == FA_OK)
            rc = api_fetch_field(c, field, s, &bytes, &n);
        free(bytes);
    } else if (strcmp(op, "replied") == 0) {
        /* A reply already written stays: api_finish must not replace it. */
        api_reply_ok(c, value_int(1), "replied first");
        rc = fa_err_set(&c->err, FA_EINVAL, "too late");
    } else {
        rc = fa_err_set(&c->err, FA_EINTERNAL, "unknown op");
    }
    return rc;
}

static void h_probe(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    struct fa_call c;
    const char *op = fa_http_req_query(req, "op");
    enum api_auth auth = query_int(req, "customer", 0) ? API_CUSTOMER : API_PUBLIC;
    cJSON *out = NULL;
    enum fa_rc rc = api_begin(&c, app, req, reply, auth);
    if (rc == FA_OK && op != NULL)
        rc = run_op(&c, op, &out);
    if (rc == FA_OK && op != NULL && strcmp(op, "replied") != 0)
        api_reply_ok(&c, out != NULL ? out : cJSON_CreateObject(), "probed");
    api_finish(&c, rc);
}

static void h_probe_public(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    h_probe(&g_app_public, req, reply);
}

static void h_probe_hosts(void *app, struct fa_http_req *req, struct fa_http_reply *reply)
{
    h_probe(&g_app_hosts, req, reply);
}

static const struct fa_route routes[] = {
    {"POST", "/probe", h_probe},
    {"POST", "/probe-public", h_probe_public},
    {"POST", "/probe-hosts", h_probe_hosts},
};

/* ---- the client ---------------------------------------------------------- */

/* POST body (may be "") to path; up to two extra headers. */
static void post(const char *path, const char *body, const char *h1, const char *h2,
                 struct tu_resp *r)
{
    CURL *h = tu_curl_new(g_port, path, r);
    struct curl_slist *hdrs = NULL;
    if (h == NULL)
        return;
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (h1 != NULL)
        hdrs = curl_slist_append(hdrs, h1);
    if (h2 != NULL)
        hdrs = curl_slist_append(hdrs, h2);
    tu_curl_perform(h, hdrs, r);
}

static void probe(const char *query, const char *body, struct tu_resp *r)
{
    char path[256];
    snprintf(path, sizeof path, "/probe?%s", query);
    post(path, body, NULL, NULL, r);
}

/* ---- checks -------------------------------------------------------------- */

static int streq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* api_reply_ok's shape: "status": "200 OK" and the handler's message. */
static int reply_is_ok(const cJSON *json)
{
    return streq(tu_jstr(json, "status"), "200 OK") && streq(tu_jstr(json, "message"), "probed");
}

static const char *err_msg(const struct tu_resp *r)
{
    const char *m = tu_jstr(cJSON_GetObjectItemCaseSensitive(r->json, "error"), "message");
    return m != NULL ? m : "";
}

/* A 400 whose error names what is wrong: status "400" and msg inside message. */
static int is_400_with(const struct tu_resp *r, const char *msg)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(r->json, "error");
    return r->status == 400 && streq(tu_jstr(e, "status"), "400") && strstr(err_msg(r), msg) != NULL;
}

/* The success shape of api_reply_ok with a string value (NULL: JSON null). */
static int ok_str(const struct tu_resp *r, const char *want)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->json, "value");
    if (r->status != 200 || !reply_is_ok(r->json))
        return 0;
    if (want == NULL)
        return cJSON_IsNull(v);
    return cJSON_IsString(v) && strcmp(v->valuestring, want) == 0;
}

static int ok_int(const struct tu_resp *r, int want)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->json, "value");
    return r->status == 200 && reply_is_ok(r->json) && cJSON_IsNumber(v) && v->valueint == want;
}

/* ---- tests --------------------------------------------------------------- */

static void test_body(void)
{
    struct tu_resp r;

    probe("op=string&field=a", "", &r);
    tap_ok(is_400_with(&r, "empty"), "empty body: 400 naming it empty (%ld): %s", r.status,
           err_msg(&r));
    tu_resp_free(&r);
    probe("op=string&field=a", "{\"a\": ", &r);
    tap_ok(is_400_with(&r, "JSON"), "malformed JSON: 400 mentioning JSON: %s", err_msg(&r));
    tu_resp_free(&r);
    probe("op=string&field=a", "not json at all", &r);
    tap_ok(is_400_with(&r, "JSON"), "plain text: 400 mentioning JSON: %s", err_msg(&r));
    tu_resp_free(&r);
    probe("op=string&field=a", "{\"a\": \"x\"} {\"a\": \"y\"}", &r);
    tap_ok(is_400_with(&r, "JSON"), "trailing data after the object: 400 mentioning JSON: %s",
           err_msg(&r));
    tu_resp_free(&r);
    probe("op=string&field=a", " \r\n\t{\"a\": \"x\"} \r\n\t", &r);
    tap_ok(ok_str(&r, "x"), "whitespace around the object is fine: %s", r.body ? r.body : "");
    tu_resp_free(&r);
    probe("op=string&field=a", "[1,2]", &r);
    tap_ok(is_400_with(&r, "object"), "an array: 400 asking for an object: %s", err_msg(&r));
    tu_resp_free(&r);
    probe("op=string&field=a", "\"text\"", &r);
    tap_ok(is_400_with(&r, "object"), "a JSON string: 400 asking for an object: %s", err_msg(&r));
    tu_resp_free(&r);
    probe("op=string&field=a", "null", &r);
    tap_ok(is_400_with(&r, "object"), "null: 400 asking for an object: %s", err_msg(&r));
    tu_resp_free(&r);
    probe("op=string&field=a", "{}", &r);
    tap_ok(ok_str(&r, NULL), "{} is a valid body (%ld)", r.status);
    tu_resp_free(&r);
}

static void test_string(void)
{
    struct tu_resp r;

    probe("op=string&field=customerName&required=1", "{\"customerName\": \"acme\"}", &r);
    tap_ok(ok_str(&r, "acme"), "api_string reads a string: %s", r.body ? r.body : "");
    tu_resp_free(&r);
    probe("op=string&field=customerName&required=1", "{\"other\": \"x\"}", &r);
    tap_ok(is_400_with(&r, "customerName is required"), "missing required field: %s", err_msg(&r));
    tu_resp_free(&r);
    probe("op=string&field=customerName&required=1", "{\"customerName\": null}", &r);
    tap_ok(is_400_with(&r, "customerName is required"), "null counts as missing: %s", err_msg(&r));
    tu_resp_free(&r);
    probe("op=string&field=customerName&required=0", "{}", &r);
    tap_ok(ok_str(&r, NULL), "missing optional field: NULL, no error");
    tu_resp_free(&r);
    probe("op=string&field=customerName&required=0", "{\"customerName\": 42}", &r);
    tap_ok(is_400_with(&r, "customerName must be a string"), "a number: %s", err_msg(&r));
    tu_resp_free(&r);
    probe("op=string&field=customerName&required=1", "{\"customerName\": {\"x\": 1}}", &r);
    tap_ok(is_400_with(&r, "customerName must be a string"), "an object: %s", err_msg(&r));
    tu_resp_free(&r);
    probe("op=string&field=customerName&required=0", "{\"customerName\": true}", &r);
    tap_ok(is_400_with(&r, "customerName must be a string"), "a bool, optional field: %s",
           err_msg(&r));
    tu_resp_free(&r);
    probe("op=string&field=customerName&required=1", "{\"customerName\": \"\"}", &r);
    tap_ok(is_400_with(&r, "customerName must not be empty"), "empty required string: %s",
           err_msg(&r));
    tu_resp_free(&r);
    probe("op=string&field=customerName&required=1", "{\"customername\": \"acme\"}", &r);
    tap_ok(is_400_with(&r, "customerName is required"), "field names are case-sensitive: %s",
           err_msg(&r));
    tu_resp_free(&r);
    probe("op=string&field=s&required=1", "{\"s\": \"caf\\u00e9 \\\"q\\\"\"}", &r);
    tap_ok(ok_str(&r, "caf\xc3\xa9 \"q\""), "escapes and UTF-8 survive: %s", r.body ? r.body : "");
    tu_resp_free(&r);
    /* cJSON would cut this at the NUL and hand out "ab" (text.c). */
    probe("op=string&field=s&required=1", "{\"s\": \"ab\\u0000cd\"}", &r);
    tap_ok(is_400_with(&r, "s must not contain control characters (found NUL)"),
           "api_begin refuses an escaped NUL, naming the field: %s", err_msg(&r));
    tu_resp_free(&r);
}

static void test_user_name(void)
{
    struct tu_resp r;

    probe("op=user&required=1", "{\"userName\": \"alice\"}", &r);
    tap_ok(ok_str(&r, "alice"), "userName accepted");
    tu_resp_free(&r);
    probe("op=user&required=1", "{\"username\": \"bob\"}", &r);
    tap_ok(ok_str(&r, "bob"), "username (lower case) accepted");
    tu_resp_free(&r);
    probe("op=user&required=1", "{\"userName\": \"alice\", \"username\": \"bob\"}", &r);
    tap_ok(ok_str(&r, "alice"), "userName wins when both are sent");
    tu_resp_free(&r);
    probe("op=user&required=1", "{\"userName\": null, \"username\": \"bob\"}", &r);
    tap_ok(ok_str(&r, "bob"), "a null userName falls back to username");
    tu_resp_free(&r);
    probe("op=user&required=1", "{}", &r);
    tap_ok(is_400_with(&r, "userName is required"), "neither: %s", err_msg(&r));
    tu_resp_free(&r);
    probe("op=user&required=0", "{}", &r);
    tap_ok(ok_str(&r, NULL), "neither, optional: NULL");
    tu_resp_free(&r);
    probe("op=user&required=1", "{\"userName\": 5}", &r);
    tap_ok(is_400_with(&r, "userName must be a string"), "wrong type: %s", err_msg(&r));
    tu_resp_free(&r);
    probe("op=user&required=1", "{\"username\": [\"x\"]}", &r);
    tap_ok(is_400_with(&r, "username must be a string"), "wrong type, other spelling: %s",
           err_msg(&r));
    tu_resp_free(&r);
}

static void test_yes_no(void)
{
    static const struct {
        const char *body;
        int want;
    } good[] = {
        {"{\"learn\": \"yes\"}", 1}, {"{\"learn\": \"NO\"}", 0}, {"{\"learn\": \"Yes\"}", 1},
        {"{\"learn\": true}", 1},    {"{\"learn\": false}", 0},  {"{}", 7},
        {"{\"learn\": null}", 7},
    };
    struct tu_resp r;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        probe("op=yesno&field=learn&dflt=7", good[i].body, &r);
        tap_ok(ok_int(&r, good[i].want), "yes/no %s -> %d (%s)", good[i].body, good[i].want,
               r.body ? r.body : "");
        tu_resp_free(&r);
    }
    probe("op=yesno&field=learn&dflt=7", "{\"learn\": \"maybe\"}", &r);
    tap_ok(is_400_with(&r, "learn") && strstr(err_msg(&r), "yes") && strstr(err_msg(&r), "no"),
           "\"maybe\" is refused naming the field and the choices: %s", err_msg(&r));
    tu_resp_free(&r);
    probe("op=yesno&field=learn&dflt=7", "{\"learn\": \"\"}", &r);
    tap_ok(is_400_with(&r, "learn"), "an empty string is refused: %s", err_msg(&r));
    tu_resp_free(&r);
    probe("op=yesno&field=learn&dflt=7", "{\"learn\": 1}", &r);
    tap_ok(is_400_with(&r, "learn"), "a number is refused naming the field: %s", err_msg(&r));
    tu_resp_free(&r);
}

static void test_choice(void)
{
    struct tu_resp r;

    probe("op=choice&field=precision&dflt=0", "{}", &r);
    tap_ok(ok_int(&r, 0), "absent: the default (0)");
    tu_resp_free(&r);
    probe("op=choice&field=precision&dflt=1", "{}", &r);
    tap_ok(ok_int(&r, 1), "absent: the default (1)");
    tu_resp_free(&r);
    probe("op=choice&field=precision&dflt=0", "{\"precision\": \"low\"}", &r);
    tap_ok(ok_int(&r, 1), "\"low\" is index 1");
    tu_resp_free(&r);
    probe("op=choice&field=precision&dflt=1", "{\"precision\": \"HIGH\"}", &r);
    tap_ok(ok_int(&r, 0), "\"HIGH\" is index 0 (any case)");
    tu_resp_free(&r);
    probe("op=choice&field=precision&dflt=0", "{\"precision\": \"medium\"}", &r);
    tap_ok(is_400_with(&r, "precision") && strstr(err_msg(&r), "high") &&
               strstr(err_msg(&r), "low"),
           "another word is refused naming field and choices: %s", err_msg(&r));
    tu_resp_free(&r);
    probe("op=choice3&field=k&dflt=0", "{\"k\": \"c\"}", &r);
    tap_ok(ok_int(&r, 2), "three choices: \"c\" is index 2");
    tu_resp_free(&r);
    probe("op=choice3&field=k&dflt=0", "{\"k\": \"d\"}", &r);
    tap_ok(is_400_with(&r, "k has an unsupported value"), "three choices, unknown: %s",
           err_msg(&r));
    tu_resp_free(&r);
}

/* api_base_url: links come from public_url, an allowed Host, or the address
 * the client connected to (127.0.0.1:g_port here), never from any Host. */
static void base_is(const char *path, const char *host, const char *want, const char *name)
{
    struct tu_resp r;
    char hdr[300];
    snprintf(hdr, sizeof hdr, "Host: %s", host);
    post(path, "{}", hdr, NULL, &r);
    tap_ok(ok_str(&r, want), "%s: Host %s -> %s (%s)", name, host, want, r.body ? r.body : "");
    tu_resp_free(&r);
}

static void test_base_url(void)
{
    char local[64], lh[64], lh_other[64], other[64], lh_url[80], other_url[80];
    snprintf(local, sizeof local, "http://127.0.0.1:%d", g_port);
    snprintf(lh, sizeof lh, "localhost:%d", g_port);
    snprintf(lh_other, sizeof lh_other, "localhost:%d", g_port + 1);
    snprintf(other, sizeof other, "other.example:%d", g_port);
    snprintf(lh_url, sizeof lh_url, "http://%s", lh);
    snprintf(other_url, sizeof other_url, "http://%s", other);

    base_is("/probe?op=base", "evil.example", local, "an unlisted Host is not trusted");
    base_is("/probe?op=base", "faces.example:8443", local, "nor with a port");
    base_is("/probe?op=base", "evil.example/x?y=\"z\"", local, "a Host with URL characters");
    base_is("/probe?op=base", lh, lh_url, "localhost (default allowed_hosts) on our port");
    base_is("/probe?op=base", lh_other, local, "localhost on another port than ours");
    base_is("/probe?op=base", "localhost", local, "bare localhost while we are not on port 80");
    base_is("/probe-hosts?op=base", "faces.example:8443", "http://faces.example:8443",
            "allowed_hosts entry with a port");
    base_is("/probe-hosts?op=base", "faces.example:8444", local, "same name, another port");
    base_is("/probe-hosts?op=base", other, other_url,
            "an entry without a port, any case, on our port");
    base_is("/probe-hosts?op=base", "evil.example", local, "allowed_hosts does not open others");
    base_is("/probe-public?op=base", "other.example", "https://faces.example.com",
            "public_url wins over Host, trailing slash dropped");
}

static void test_token_and_base(void)
{
    struct tu_resp r;

    post("/probe?op=token", "{}", "Authorization: Bearer tok123", NULL, &r);
    tap_ok(ok_str(&r, "tok123"), "api_token: Bearer <token>");
    tu_resp_free(&r);
    post("/probe?op=token", "{}", "Authorization: bearer   tok456", NULL, &r);
    tap_ok(ok_str(&r, "tok456"), "api_token: scheme any case, extra spaces");
    tu_resp_free(&r);
    post("/probe?op=token", "{}", "Authorization: rawtoken", NULL, &r);
    tap_ok(ok_str(&r, "rawtoken"), "api_token: a bare token");
    tu_resp_free(&r);
    post("/probe?op=token", "{}", "Authorization: Bearer ", NULL, &r);
    tap_ok(ok_str(&r, NULL), "api_token: \"Bearer \" alone is no token");
    tu_resp_free(&r);
    probe("op=token", "{}", &r);
    tap_ok(ok_str(&r, NULL), "api_token: no header, NULL");
    tu_resp_free(&r);

    test_base_url();
}

/* One failed api_fetch_field: a 400 whose message is exactly want. */
static void expect_fetch_error(const char *field, const char *body, const char *want)
{
    struct tu_resp r;
    char query[128];
    snprintf(query, sizeof query, "op=fetch&field=%s", field);
    probe(query, body, &r);
    if (!tap_ok(r.status == 400 && strcmp(err_msg(&r), want) == 0, "fetch as %s: \"%s\"", field,
                want))
        tap_diag("got %ld \"%s\"", r.status, err_msg(&r));
    tu_resp_free(&r);
}

/*
 * The field a fetch failure is about, as the client reads it: fetch's own
 * "url: ..." and its unprefixed messages both end up under the request's
 * field name, written once ("urls[2]: ...", never "urls[2]: url: ...").
 */
static void test_fetch_field(void)
{
    static const char bad64[] = "{\"url\": \"data:image/png;base64,@@@@\"}";
    static const char not_image[] = "{\"url\": \"data:image/png;base64,AAAAAAAA\"}";
    static const char ftp[] = "{\"url\": \"ftp://example.com/a.jpg\"}";

    expect_fetch_error("url", bad64, "url: invalid base64 in data URI");
    expect_fetch_error("urls[2]", bad64, "urls[2]: invalid base64 in data URI");
    expect_fetch_error("url", not_image,
                       "url: content of data URI is not an image (JPEG, PNG, WebP or BMP)");
    expect_fetch_error("urls[1]", not_image,
                       "urls[1]: content of data URI is not an image (JPEG, PNG, WebP or BMP)");
    expect_fetch_error("photo%202", ftp,
                       "photo 2: scheme \"ftp\" is not allowed, only http and https: "
                       "ftp://example.com/a.jpg");
    expect_fetch_error("urls[0]", "{}", "urls[0]: missing or empty");
}

static void test_customer_and_finish(void)
{
    struct tu_resp r;
    const cJSON *e;

    post("/probe?customer=1&op=string&field=x", "{}", "Authorization: Bearer t", NULL, &r);
    tap_ok(is_400_with(&r, "customerName is required"), "API_CUSTOMER without customerName: %s",
           err_msg(&r));
    tu_resp_free(&r);
    probe("customer=1&op=string&field=x", "{\"customerName\": \"acme\"}", &r);
    e = cJSON_GetObjectItemCaseSensitive(r.json, "error");
    tap_ok(r.status == 401 && streq(tu_jstr(e, "status"), "401") &&
               strstr(err_msg(&r), "access token") != NULL,
           "API_CUSTOMER without a token: 401 (%ld) %s", r.status, err_msg(&r));
    tu_resp_free(&r);

    probe("op=replied", "{}", &r);
    tap_ok(r.status == 200 && streq(tu_jstr(r.json, "message"), "replied first"),
           "api_finish keeps a reply already written (%ld) %s", r.status, r.body ? r.body : "");
    tu_resp_free(&r);
    probe("op=nonsense", "{}", &r);
    tap_ok(r.status == 500 && strcmp(err_msg(&r), "internal server error") == 0,
           "api_finish replies the error once, hiding internals (%ld)", r.status);
    tu_resp_free(&r);
}

int main(void)
{
    struct fa_http_opts o = {0};
    struct fa_http_server *srv = NULL;
    struct fa_err err = {{0}};

    fa_config_defaults(&g_cfg);
    g_app.cfg = &g_cfg;
    fa_fetch_opts_default(&g_app.fetch);
    fa_config_defaults(&g_cfg_public);
    snprintf(g_cfg_public.public_url, sizeof g_cfg_public.public_url, "https://faces.example.com/");
    g_app_public.cfg = &g_cfg_public;
    fa_config_defaults(&g_cfg_hosts);
    snprintf(g_cfg_hosts.allowed_hosts, sizeof g_cfg_hosts.allowed_hosts,
             "faces.example:8443, Other.Example");
    g_app_hosts.cfg = &g_cfg_hosts;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    o.listen = "127.0.0.1";
    o.port = 0;
    o.threads = 2;
    o.max_body_bytes = 64 * 1024;
    o.connection_timeout_s = 5;
    o.routes = routes;
    o.n_routes = sizeof routes / sizeof routes[0];
    o.app = &g_app;
    if (!tap_ok(fa_http_start(&o, &srv, &err) == FA_OK, "server starts: %s", err.msg)) {
        curl_global_cleanup();
        return tap_done();
    }
    g_port = fa_http_port(srv);

    test_body();
    test_string();
    test_user_name();
    test_yes_no();
    test_choice();
    test_token_and_base();
    test_fetch_field();
    test_customer_and_finish();

    fa_http_stop(srv, 1000);
    curl_global_cleanup();
    return tap_done();
}
