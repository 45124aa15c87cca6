/*
 * escape.c — log-safe text (see escape.h).
 */
#include "escape.h"

#include <string.h>

static size_t escaped_len(unsigned char ch)
{
    return ch <= 0x20 || ch >= 0x7f || ch == '\\' ? 4 : 1;
}

void fa_http_log_escape(const char *text, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p;
    size_t full = 0, room, n = 0;
    int cut;
    if (cap == 0)
        return;
    if (text == NULL)
        text = "-";
    for (p = (const unsigned char *)text; *p != '\0'; p++)
        full += escaped_len(*p);
    /* When it does not all fit, keep room for the "..." that says so. */
    cut = full >= cap;
    room = !cut ? cap - 1 : cap > 4 ? cap - 4 : 0;
    for (p = (const unsigned char *)text; *p != '\0'; p++) {
        if (n + escaped_len(*p) > room)
            break;
        if (escaped_len(*p) == 4) {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        } else {
            out[n++] = (char)*p;
        }
    }
    if (cut && n + 3 < cap) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}
