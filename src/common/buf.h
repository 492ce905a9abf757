/*
 * A growable byte buffer with a mandatory size cap (git strbuf's invariants
 * plus curl dynbuf's max).  Anything filled from outside input goes here,
 * with its cap taken from common/limits.h.
 *
 * Invariants: ptr is never NULL and always NUL-terminated at ptr[len];
 * len <= max.  buf_detach() is the one way to take the memory.
 *
 * Overflow is sticky (curl dynbuf frees itself the same way): an append that
 * would pass the cap frees the contents, leaves the buffer empty and marks it
 * failed; every later append fails at once with -E2BIG until buf_reset() or
 * buf_release().  A truncated string can therefore never pass for a complete
 * one, and a run of appends may be checked once with buf_error() before the
 * contents are used.  Appends are warn_unused_result all the same.
 */
#ifndef KILN_BUF_H
#define KILN_BUF_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* Every adder's result must be looked at (gcc ignores a (void) cast of a
 * warn_unused_result call: handle it, or use buf_error() after the run). */
#define BUF_MUST_CHECK __attribute__((warn_unused_result))

struct buf {
	char *ptr; /* owned (or the shared empty string while cap == 0) */
	size_t len;
	size_t cap;
	size_t max;  /* hard cap on len */
	bool failed; /* an append passed max: contents dropped, appends refused */
};

/* Initialises an empty buffer that may hold at most 'max' bytes.  No allocation. */
void buf_init(struct buf *b, size_t max);
/* Frees the contents; the buffer is empty and reusable afterwards. */
void buf_release(struct buf *b);
/* Empties the buffer, keeping its memory, and clears a failure. */
void buf_reset(struct buf *b);
/* Hands the NUL-terminated contents to the caller (never NULL); *ret_len if non-NULL.
 * The buffer is empty and not failed afterwards.  Check buf_error() first. */
char *buf_detach(struct buf *b, size_t *ret_len);

/* Appends; returns 0, or -E2BIG if the cap would be passed or the buffer had
 * already failed: the buffer is then empty and failed (see above). */
BUF_MUST_CHECK int buf_add(struct buf *b, const void *p, size_t n);
BUF_MUST_CHECK int buf_adds(struct buf *b, const char *s);
BUF_MUST_CHECK int buf_addch(struct buf *b, char c);
BUF_MUST_CHECK int buf_addf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
BUF_MUST_CHECK int buf_vaddf(struct buf *b, const char *fmt, va_list ap);
/* Ensures room for n more bytes; -E2BIG past the cap, with the same sticky
 * failure as the adders. */
BUF_MUST_CHECK int buf_grow(struct buf *b, size_t n);
/* How many more bytes fit under the cap: test before an append that may
 * legitimately stop short (a page of whole lines), so it never fails. */
static inline size_t buf_room(const struct buf *b)
{
	return b->failed ? 0 : b->max - b->len;
}
/* 0 while every append so far fitted, -E2BIG once one did not. */
static inline int buf_error(const struct buf *b)
{
	return b->failed ? -E2BIG : 0;
}
/* Drops the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* Shortens to len (len <= b->len). */
void buf_setlen(struct buf *b, size_t len);

#endif
