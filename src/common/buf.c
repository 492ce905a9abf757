/*
 * Bounded growable buffer; see buf.h for the invariants.
 */
#include "common/buf.h"
#include "common/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

static char buf_empty[1];

void buf_init(struct buf *b, size_t max)
{
	b->ptr = buf_empty;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->failed = false;
}

void buf_release(struct buf *b)
{
	if (b->cap)
		free(b->ptr);
	buf_init(b, b->max);
}

void buf_reset(struct buf *b)
{
	buf_setlen(b, 0);
	b->failed = false;
}

char *buf_detach(struct buf *b, size_t *ret_len)
{
	char *p = b->cap ? b->ptr : xstrdup("");
	if (ret_len)
		*ret_len = b->len;
	buf_init(b, b->max);
	return p;
}

/* The one failure path: drop the contents so nothing half-built survives. */
static int buf_fail(struct buf *b)
{
	if (b->cap)
		free(b->ptr);
	buf_init(b, b->max);
	b->failed = true;
	return -E2BIG;
}

int buf_grow(struct buf *b, size_t n)
{
	if (b->failed || n > b->max || b->len > b->max - n)
		return buf_fail(b);
	size_t need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap < SIZE_MAX / 2 ? cap * 2 : need;
	if (b->cap) {
		b->ptr = xrealloc(b->ptr, cap);
	} else {
		b->ptr = xmalloc(cap);
		b->ptr[0] = '\0';
	}
	b->cap = cap;
	return 0;
}

int buf_add(struct buf *b, const void *p, size_t n)
{
	int r = buf_grow(b, n);
	if (r < 0)
		return r;
	if (n)
		memcpy(b->ptr + b->len, p, n);
	b->len += n;
	b->ptr[b->len] = '\0';
	return 0;
}

int buf_adds(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int buf_addch(struct buf *b, char c)
{
	return buf_add(b, &c, 1);
}

int buf_vaddf(struct buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return buf_fail(b);
	int r = buf_grow(b, (size_t)n);
	if (r < 0)
		return r;
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = buf_vaddf(b, fmt, ap);
	va_end(ap);
	return r;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_setlen(b, 0);
		return;
	}
	memmove(b->ptr, b->ptr + n, b->len - n);
	buf_setlen(b, b->len - n);
}

void buf_setlen(struct buf *b, size_t len)
{
	if (!b->cap)
		return;
	b->len = len;
	b->ptr[len] = '\0';
}
