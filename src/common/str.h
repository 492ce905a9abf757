/*
 * A borrowed view of bytes (h2o's iovec): used while parsing, never owns.
 */
#ifndef KILN_STR_H
#define KILN_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct str {
	const char *p; /* borrowed */
	size_t len;
};

#define STR_LIT(s) ((struct str){(s), sizeof(s) - 1})

static inline struct str str_from(const char *s)
{
	return (struct str){s, s ? strlen(s) : 0};
}

static inline bool str_eq(struct str a, const char *b)
{
	size_t n = strlen(b);
	return a.len == n && (n == 0 || memcmp(a.p, b, n) == 0);
}

struct buf;
/* Appends s[0..n) to b as valid UTF-8 (what JSON text needs): each byte that
 * starts no valid sequence becomes U+FFFD (at most 3n bytes out).  Overlongs,
 * surrogates, code points past U+10FFFF and NUL count as invalid.  Returns 0,
 * or -E2BIG past b's cap (b is then failed and empty, as buf.h does). */
int str_utf8_sanitize(struct buf *b, const void *s, size_t n) __attribute__((warn_unused_result));

/* How many bytes at the start of s[0..n) are valid UTF-8 (the rules above).
 * When the bytes after them are only the start of a sequence that n cut
 * short, *ret_partial is set: more bytes may make it valid. */
size_t str_utf8_prefix(const void *s, size_t n, bool *ret_partial);

/* What is wrong with s[0..len) as a path relative to a directory that it
 * must stay inside: checked in this order, the first problem found. */
enum str_relpath {
	STR_RELPATH_OK,
	STR_RELPATH_EMPTY,
	STR_RELPATH_TOO_LONG, /* over max bytes */
	STR_RELPATH_CONTROL,  /* a control character (only with controls) */
	STR_RELPATH_ABSOLUTE, /* starts with '/' */
	STR_RELPATH_DOTDOT,   /* a ".." component */
};
enum str_relpath str_relpath_check(const char *s, size_t len, size_t max, bool controls);

/* Parses a non-negative decimal integer that fills the whole view. */
int str_to_u64(struct str s, unsigned long long *ret);
/* Parses a whole C string as a signed 64-bit integer; -EINVAL / -ERANGE. */
int str_to_i64(const char *s, long long *ret);

#endif
