/* common.c — the shared error helper (see include/faceauth/common.h). */
#include "faceauth/common.h"

#include <stdarg.h>
#include <stdio.h>

enum fa_rc fa_err_set(struct fa_err *err, enum fa_rc rc, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return rc;
}

const char *fa_rc_name(enum fa_rc rc)
{
    static const char *const names[] = {
        [FA_OK] = "OK",           [FA_EINVAL] = "EINVAL",       [FA_EAUTH] = "EAUTH",
        [FA_ENOTFOUND] = "ENOTFOUND", [FA_EMETHOD] = "EMETHOD", [FA_ECONFLICT] = "ECONFLICT",
        [FA_ETOOBIG] = "ETOOBIG", [FA_EFETCH] = "EFETCH",       [FA_ETIMEOUT] = "ETIMEOUT",
        [FA_EFORBIDDEN] = "EFORBIDDEN", [FA_EIMAGE] = "EIMAGE", [FA_ENOFACE] = "ENOFACE",
        [FA_EGATE] = "EGATE",     [FA_ESPOOF] = "ESPOOF",       [FA_ENOTSAME] = "ENOTSAME",
        [FA_EFAIL] = "EFAIL",     [FA_EBUSY] = "EBUSY",         [FA_EDB] = "EDB",
        [FA_EVISION] = "EVISION", [FA_ENOMEM] = "ENOMEM",       [FA_EINTERNAL] = "EINTERNAL",
        [FA_ENOSPACE] = "ENOSPACE", [FA_EREADONLY] = "EREADONLY", [FA_ELIMIT] = "ELIMIT",
    };
    if ((unsigned)rc < sizeof names / sizeof names[0] && names[rc] != NULL)
        return names[rc];
    return "E?";
}
