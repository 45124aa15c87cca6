/* tap.c — see tap.h. Single-threaded by design: call from the test's main thread. */
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>

static int n_checks;
static int n_failed;

int tap_ok(int cond, const char *fmt, ...)
{
    va_list ap;
    n_checks++;
    if (!cond)
        n_failed++;
    printf("%sok %d - ", cond ? "" : "not ", n_checks);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    return cond;
}

void tap_diag(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}


int tap_done(void)
{
    printf("1..%d\n", n_checks);
    if (n_failed)
        printf("# %d of %d checks failed\n", n_failed, n_checks);
    return n_failed ? 1 : 0;
}
