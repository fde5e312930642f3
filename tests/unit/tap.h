/*
 * tap.h - the smallest TAP producer: every check prints "ok N - what" or
 * "not ok N - what" with the failing expression, and tap_done() prints the
 * plan and returns the exit status.  Tests are programs that fail loudly.
 */
#ifndef HFM_TAP_H
#define HFM_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

/* `cond` is evaluated once, so it may have side effects. */
#define TAP_OK(cond, ...) do { \
	int tap_ok_ = !!(cond); \
	tap_n++; \
	if (tap_ok_) { printf("ok %d - ", tap_n); } \
	else { tap_failed++; printf("not ok %d - ", tap_n); } \
	printf(__VA_ARGS__); printf("\n"); \
	if (!tap_ok_) printf("#   failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
} while (0)

#define TAP_IS_STR(got, want, ...) do { \
	const char *g_ = (got), *w_ = (want); \
	int eq_ = (g_ && w_) ? strcmp(g_, w_) == 0 : g_ == w_; \
	TAP_OK(eq_, __VA_ARGS__); \
	if (!eq_) printf("#   got:  '%s'\n#   want: '%s'\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
} while (0)

#define TAP_IS_INT(got, want, ...) do { \
	long long g_ = (long long)(got), w_ = (long long)(want); \
	TAP_OK(g_ == w_, __VA_ARGS__); \
	if (g_ != w_) printf("#   got: %lld want: %lld\n", g_, w_); \
} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
