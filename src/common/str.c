/*
 * String view helpers and strict number parsing (atoi is banned).
 */
#include "common/str.h"

#include <errno.h>
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
