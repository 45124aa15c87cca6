/*
 * escape.h — text from a request made safe for a one-line log (internal to
 * src/http/).
 *
 * MHD decodes the path, so "%0a" arrives as a newline and "%1b" as ESC: a
 * path written raw could forge a whole access-log line or drive the
 * terminal of whoever reads the log. Every byte that is not printable ASCII
 * (controls, DEL, bytes >= 0x80), the space (fields are space-separated)
 * and the backslash itself become \xHH, so the escaped text is one field
 * and the original can be read back from it.
 */
#ifndef FACEAUTH_HTTP_ESCAPE_H
#define FACEAUTH_HTTP_ESCAPE_H

#include <stddef.h>

/*
 * Write text escaped into out (cap bytes, always terminated when cap > 0).
 * Text that does not fit is cut at a whole character or escape and ends
 * in "..." so a cut is visible. NULL text writes "-".
 */
void fa_http_log_escape(const char *text, char *out, size_t cap);

#endif
