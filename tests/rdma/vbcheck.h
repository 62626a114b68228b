/*
 * vbcheck.h - what the libverbus test programs (libtest.c, libhdr.c,
 * libsync.c, libdrain.c) share: a failure that ends the program with its
 * reason, checks that fail with the expression and the error's name, and
 * a millisecond clock.  Header-only: each program includes it once.
 *
 * Threading: die() may be called from any thread (it exits the process).
 */
#ifndef VERBUS_TESTS_VBCHECK_H
#define VERBUS_TESTS_VBCHECK_H

#include <verbus/verbus.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* die() - "FAIL: " and the message on stderr, then exit 1. */
__attribute__((format(printf, 1, 2), noreturn)) static inline void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "FAIL: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

/* CHECK(cond, fmt, ...) - die with the message unless @cond. */
#define CHECK(cond, ...)                  \
	do {                              \
		if (!(cond))              \
			die(__VA_ARGS__); \
	} while (0)

/* OK(expr) - @expr must return VB_OK. */
#define OK(expr)                                                        \
	do {                                                            \
		int rc_ = (expr);                                       \
		if (rc_ != VB_OK)                                       \
			die("%s:%d: %s: %s", __FILE__, __LINE__, #expr, \
			    vb_strerror(rc_));                          \
	} while (0)

/* IS(expr, want) - @expr must return the error @want. */
#define IS(expr, want)                                                    \
	do {                                                              \
		int rc_ = (expr);                                         \
		if (rc_ != (want))                                        \
			die("%s:%d: %s: %s, want %s", __FILE__, __LINE__, \
			    #expr, vb_errname(rc_), vb_errname(want));    \
	} while (0)

/* now_ms() - the monotonic clock in milliseconds. */
static inline uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#endif /* VERBUS_TESTS_VBCHECK_H */
