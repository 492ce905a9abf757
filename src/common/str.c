/*
 * String view helpers and strict number parsing (atoi is banned).
 */
#include "common/str.h"
#include "common/buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

int str_to_u64(struct str s, unsigned long long *ret)
{
	if (s.len == 0 || s.len > 20)
		return -EINVAL;
	unsigned long long v = 0;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return -EINVAL;
		unsigned d = (unsigned)(s.p[i] - '0');
		if (v > (~0ull - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

int str_to_i64(const char *s, long long *ret)
{
	if (!s || !*s)
		return -EINVAL;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno)
		return -errno;
	if (*end)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* Length of the valid UTF-8 sequence at s[0..n), 0 if invalid. */
static size_t str_utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	if (c == 0)
		return 0;
	if (c < 0x80)
		return 1;
	size_t len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
	if (!len || len > n)
		return 0;
	uint32_t cp = c & (0x7fu >> len);
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3fu);
	}
	static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

int str_utf8_sanitize(struct buf *b, const void *s, size_t n)
{
	const unsigned char *p = s;
	for (size_t i = 0; i < n;) {
		size_t len = str_utf8_seq(p + i, n - i);
		int r = len ? buf_add(b, p + i, len) : buf_add(b, "\xef\xbf\xbd", 3);
		if (r < 0)
			return r;
		i += len ? len : 1;
	}
	return 0;
}

size_t str_utf8_prefix(const void *s, size_t n, bool *ret_partial)
{
	const unsigned char *p = s;
	size_t i = 0;
	*ret_partial = false;
	while (i < n) {
		size_t len = str_utf8_seq(p + i, n - i);
		if (!len)
			break;
		i += len;
	}
	if (i < n) {
		unsigned char c = p[i];
		size_t want = (c & 0xe0) == 0xc0   ? 2
			      : (c & 0xf0) == 0xe0 ? 3
			      : (c & 0xf8) == 0xf0 ? 4
						   : 0;
		bool partial = want > n - i;
		for (size_t k = i + 1; partial && k < n; k++)
			partial = (p[k] & 0xc0) == 0x80;
		*ret_partial = partial;
	}
	return i;
}

enum str_relpath str_relpath_check(const char *s, size_t len, size_t max, bool controls)
{
	if (len == 0)
		return STR_RELPATH_EMPTY;
	if (len > max)
		return STR_RELPATH_TOO_LONG;
	for (size_t i = 0; controls && i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return STR_RELPATH_CONTROL;
	if (s[0] == '/')
		return STR_RELPATH_ABSOLUTE;
	for (size_t i = 0; i < len;) {
		size_t seg = 0;
		while (i + seg < len && s[i + seg] != '/')
			seg++;
		if (seg == 2 && s[i] == '.' && s[i + 1] == '.')
			return STR_RELPATH_DOTDOT;
		i += seg + 1;
	}
	return STR_RELPATH_OK;
}
