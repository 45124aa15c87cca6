/* common.c — the shared error helpers (see include/faceauth/common.h). */
#include "faceauth/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- errors ---- */

/* Write field into err and "<field>: " at the start of msg; the offset after it. */
static size_t err_prefix(struct fa_err *err, const char *field)
{
    snprintf(err->field, sizeof err->field, "%s", field);
    snprintf(err->msg, sizeof err->msg, "%s: ", err->field);
    return strlen(err->msg);
}

enum fa_rc fa_err_set(struct fa_err *err, enum fa_rc rc, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->field[0] = '\0';
        err->words = 0;
    }
    return rc;
}

enum fa_rc fa_err_field(struct fa_err *err, enum fa_rc rc, const char *field, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        err->words = err_prefix(err, field);
        va_start(ap, fmt);
        vsnprintf(err->msg + err->words, sizeof err->msg - err->words, fmt, ap);
        va_end(ap);
    }
    return rc;
}

enum fa_rc fa_err_about(struct fa_err *err, enum fa_rc rc, const char *field, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        snprintf(err->field, sizeof err->field, "%s", field);
        err->words = 0;
    }
    return rc;
}

void fa_err_refield(struct fa_err *err, const char *field)
{
    char words[FA_ERR_MAX];
    if (err == NULL)
        return;
    /* a copy: the words move within msg when the new name is longer or shorter */
    snprintf(words, sizeof words, "%s", fa_err_words(err));
    err->words = err_prefix(err, field);
    snprintf(err->msg + err->words, sizeof err->msg - err->words, "%s", words);
}

const char *fa_err_words(const struct fa_err *err)
{
    return err->msg + err->words;
}

const char *fa_rc_name(enum fa_rc rc)
{
    static const char *const names[] = {
        [FA_OK] = "OK",           [FA_EINVAL] = "EINVAL",       [FA_EAUTH] = "EAUTH",
        [FA_ENOTFOUND] = "ENOTFOUND", [FA_EMETHOD] = "EMETHOD", [FA_ECONFLICT] = "ECONFLICT",
        [FA_ETOOBIG] = "ETOOBIG", [FA_EFETCH] = "EFETCH",       [FA_ETIMEOUT] = "ETIMEOUT",
        [FA_EFORBIDDEN] = "EFORBIDDEN", [FA_EIMAGE] = "EIMAGE", [FA_ENOFACE] = "ENOFACE",
        [FA_EFAIL] = "EFAIL",     [FA_EBUSY] = "EBUSY",         [FA_EDB] = "EDB",
        [FA_EVISION] = "EVISION", [FA_ENOMEM] = "ENOMEM",       [FA_EINTERNAL] = "EINTERNAL",
        [FA_ENOSPACE] = "ENOSPACE", [FA_EREADONLY] = "EREADONLY", [FA_ELIMIT] = "ELIMIT",
    };
    if ((unsigned)rc < sizeof names / sizeof names[0] && names[rc] != NULL)
        return names[rc];
    return "E?";
}
