/*
 * text.c — control characters in a request's JSON text (see api_int.h).
 *
 * cJSON decodes "\u0000" into a NUL byte inside valuestring, and every C
 * string function then stops there: "ab\u0000cd" became the user "ab", and
 * a password with anything after a NUL logged in. The decoded string
 * cannot tell, so this scans the raw body, escapes and all, once cJSON has
 * accepted it as JSON (the scan can then trust its syntax). Every string
 * value and every field name is checked, nested ones and list items too,
 * so no endpoint can forget a field.
 *
 * Refused: U+0000-U+001F, DEL and the C1 controls U+0080-U+009F, written
 * raw or as escapes. No field of the API is multi-line; the one exception
 * is an image (url, urls, images), whose data: URI may be wrapped into lines
 * that the decoder skips, so tab, CR and LF pass there, NUL still not.
 */
#include "api_int.h"

#include <stdio.h>
#include <string.h>

#define TEXT_DEPTH_MAX 32 /* no request nests deeper than 3 */
#define TEXT_KEY_MAX 64   /* of a field name, for the message */

struct text_level {
    int is_array;
    long index;              /* of the current item, in an array */
    char key[TEXT_KEY_MAX];  /* of the current field, in an object */
};

struct text_scan {
    const char *p, *end;
    struct text_level lv[TEXT_DEPTH_MAX];
    int depth;    /* levels open */
    int want_key; /* in an object, the next string is a field name */
};

/* The controls of the file comment: C0, DEL, C1. */
static int is_control(long cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

static int is_line_space(long cp)
{
    return cp == '\t' || cp == '\n' || cp == '\r';
}

static long hex4(const char *p, const char *end)
{
    long v = 0;
    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The code point at s->p (an escape or a raw byte); moves s->p past it. A
 * raw C1 control is the UTF-8 pair C2 80..C2 9F. */
static long next_code(struct text_scan *s)
{
    const unsigned char *p = (const unsigned char *)s->p;
    static const char esc[] = "b\bf\fn\nr\rt\t";
    if (*p == 0xc2 && s->end - s->p > 1 && p[1] >= 0x80 && p[1] <= 0x9f) {
        s->p += 2;
        return p[1];
    }
    if (*p != '\\' || s->end - s->p < 2) {
        s->p++;
        return *p;
    }
    s->p += 2;
    if (p[1] == 'u') {
        long v = hex4(s->p, s->end);
        if (v >= 0)
            s->p += 4;
        return v;
    }
    for (size_t i = 0; esc[i] != '\0'; i += 2)
        if (esc[i] == (char)p[1])
            return esc[i + 1];
    return p[1]; /* \" \\ \/ */
}

/*
 * The string at s->p (just past its opening quote), up to and past its
 * closing quote: *bad is its first control that is not tab/CR/LF, *space
 * its first tab/CR/LF (-1: none). Its raw text, cut, goes to name when set.
 */
static void scan_string(struct text_scan *s, char *name, long *bad, long *space)
{
    size_t n = 0;
    *bad = -1;
    *space = -1;
    while (s->p < s->end && *s->p != '"') {
        const char *from = s->p;
        long cp = next_code(s);
        if (is_control(cp) && !is_line_space(cp) && *bad < 0)
            *bad = cp;
        if (is_line_space(cp) && *space < 0)
            *space = cp;
        for (; name != NULL && from < s->p && n + 1 < TEXT_KEY_MAX; from++)
            name[n++] = *from;
    }
    if (name != NULL)
        name[n] = '\0';
    if (s->p < s->end)
        s->p++; /* the closing quote */
}

/* "urls[2]", "parametersToBeUpdated.fullName": where the scan is. */
static void field_path(const struct text_scan *s, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < s->depth && n < cap; i++) {
        const struct text_level *l = &s->lv[i];
        int w = l->is_array ? snprintf(out + n, cap - n, "[%ld]", l->index)
                            : snprintf(out + n, cap - n, "%s%s", n > 0 ? "." : "", l->key);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

static void describe(long cp, char *out, size_t cap)
{
    if (cp == 0)
        snprintf(out, cap, "NUL");
    else if (cp == '\t')
        snprintf(out, cap, "a tab");
    else if (cp == '\n' || cp == '\r')
        snprintf(out, cap, "a line break");
    else
        snprintf(out, cap, "U+%04lX", (unsigned long)cp);
}

/* Line breaks are allowed in an image field only (wrapped base64): the
 * API's url and urls, the enrollment page's images. */
static int line_space_ok(const struct text_scan *s)
{
    static const char *const image_fields[] = {"url", "urls", "images"};
    if (s->depth == 0 || s->lv[0].is_array)
        return 0;
    for (size_t i = 0; i < sizeof image_fields / sizeof image_fields[0]; i++)
        if (strcmp(s->lv[0].key, image_fields[i]) == 0)
            return 1;
    return 0;
}

static enum fa_rc check_string(struct text_scan *s, struct fa_err *err)
{
    struct text_level *top = s->depth > 0 ? &s->lv[s->depth - 1] : NULL;
    int is_key = s->want_key && top != NULL && !top->is_array;
    char what[32];
    char path[256];
    long bad, space;
    scan_string(s, is_key ? top->key : NULL, &bad, &space);
    if (bad < 0 && (space < 0 || (!is_key && line_space_ok(s))))
        return FA_OK;
    describe(bad >= 0 ? bad : space, what, sizeof what);
    if (is_key)
        return fa_err_set(err, FA_EINVAL,
                          "a field name in the request contains a control character (%s)", what);
    field_path(s, path, sizeof path);
    return fa_err_about(err, FA_EINVAL, path, "%s must not contain control characters (found %s)",
                        path[0] != '\0' ? path : "the request", what);
}

static enum fa_rc open_level(struct text_scan *s, int is_array, struct fa_err *err)
{
    struct text_level *l;
    if (s->depth == TEXT_DEPTH_MAX)
        return fa_err_set(err, FA_EINVAL, "request body nests deeper than %d levels",
                          TEXT_DEPTH_MAX);
    l = &s->lv[s->depth++];
    l->is_array = is_array;
    l->index = 0;
    l->key[0] = '\0';
    s->want_key = !is_array;
    return FA_OK;
}

enum fa_rc api_json_check_text(const char *json, size_t n, struct fa_err *err)
{
    struct text_scan s;
    enum fa_rc rc = FA_OK;
    memset(&s, 0, sizeof s);
    s.p = json;
    s.end = json + n;
    while (rc == FA_OK && s.p < s.end) {
        char ch = *s.p++;
        struct text_level *top = s.depth > 0 ? &s.lv[s.depth - 1] : NULL;
        if (ch == '{' || ch == '[')
            rc = open_level(&s, ch == '[', err);
        else if ((ch == '}' || ch == ']') && s.depth > 0)
            s.depth--;
        else if (ch == ',' && top != NULL && top->is_array)
            top->index++;
        else if (ch == ',')
            s.want_key = 1;
        else if (ch == ':')
            s.want_key = 0;
        else if (ch == '"')
            rc = check_string(&s, err);
        /* anything else: white space, numbers, true/false/null */
    }
    return rc;
}

int api_text_has_control(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 1;
    return 0;
}
