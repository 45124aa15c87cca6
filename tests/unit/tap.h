/*
 * tap.h — a tiny TAP harness for the unit tests: each check prints one
 * "ok N - name" or "not ok N - name" line; tap_done() prints the plan and
 * returns the exit status (non-zero when any check failed).
 */
#ifndef FACEAUTH_TAP_H
#define FACEAUTH_TAP_H

/* Record one check. Returns cond so callers can stop early on failure. */
int tap_ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print a diagnostic line ("# ...") that never counts as a check. */
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print the plan; 0 when every check passed, 1 otherwise. */
int tap_done(void);

#define TAP_OK(cond) tap_ok((cond), "%s (%s:%d)", #cond, __FILE__, __LINE__)

#endif
