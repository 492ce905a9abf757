/*
 * A growable byte buffer with a mandatory size cap (git strbuf's invariants
 * plus curl dynbuf's max).  Anything filled from outside input goes here,
 * with its cap taken from common/limits.h.
 *
 * Invariants: ptr is never NULL and always NUL-terminated at ptr[len];
 * len <= max.  buf_detach() is the one way to take the memory.
 */
#ifndef KILN_BUF_H
#define KILN_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *ptr; /* owned (or the shared empty string while cap == 0) */
	size_t len;
	size_t cap;
	size_t max; /* hard cap on len */
};

/* Initialises an empty buffer that may hold at most 'max' bytes.  No allocation. */
void buf_init(struct buf *b, size_t max);
/* Frees the contents; the buffer is empty and reusable afterwards. */
void buf_release(struct buf *b);
/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);
/* Hands the NUL-terminated contents to the caller (never NULL); *ret_len if non-NULL. */
char *buf_detach(struct buf *b, size_t *ret_len);

/* Appends; returns 0, or -E2BIG (nothing appended) if the cap would be passed. */
int buf_add(struct buf *b, const void *p, size_t n);
int buf_adds(struct buf *b, const char *s);
int buf_addch(struct buf *b, char c);
int buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vaddf(struct buf *b, const char *fmt, va_list ap);
/* Ensures room for n more bytes; -E2BIG past the cap. */
int buf_grow(struct buf *b, size_t n);
/* Drops the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* Shortens to len (len <= b->len). */
void buf_setlen(struct buf *b, size_t len);

#endif
