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

/* Parses a non-negative decimal integer that fills the whole view. */
int str_to_u64(struct str s, unsigned long long *ret);
/* Parses a whole C string as a signed 64-bit integer; -EINVAL / -ERANGE. */
int str_to_i64(const char *s, long long *ret);

#endif
