/*
 * Unit tests for src/common: bounded buffers, number parsing, error names.
 */
#include "tap.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/str.h"
#include "common/xalloc.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

TEST(buf_starts_empty_and_terminated)
{
	struct buf b;
	buf_init(&b, 100);
	CHECK_INT(b.len, 0);
	CHECK_STR(b.ptr, "");
	buf_release(&b);
}

TEST(buf_appends_and_formats)
{
	struct buf b;
	buf_init(&b, 1000);
	CHECK_INT(buf_adds(&b, "abc"), 0);
	CHECK_INT(buf_addf(&b, "-%d-", 42), 0);
	CHECK_INT(buf_addch(&b, 'z'), 0);
	CHECK_STR(b.ptr, "abc-42-z");
	buf_consume(&b, 4);
	CHECK_STR(b.ptr, "42-z");
	char *p = buf_detach(&b, NULL);
	CHECK_STR(p, "42-z");
	CHECK_INT(b.len, 0);
	free(p);
}

TEST(buf_refuses_past_cap)
{
	struct buf b;
	buf_init(&b, 5);
	CHECK_INT(buf_adds(&b, "12345"), 0);
	CHECK_INT(buf_error(&b), 0);
	CHECK_INT(buf_adds(&b, "6"), -E2BIG);
	/* sticky: the truncated text is gone, so it cannot pass for a whole one */
	CHECK_STR(b.ptr, "");
	CHECK_INT(b.len, 0);
	CHECK_INT(buf_error(&b), -E2BIG);
	/* and later appends that would fit are refused too */
	CHECK_INT(buf_addf(&b, "%s", "x"), -E2BIG);
	CHECK_INT(buf_addch(&b, 'x'), -E2BIG);
	CHECK_INT(buf_grow(&b, 1), -E2BIG);
	CHECK_INT(b.len, 0);
	CHECK_INT(buf_error(&b), -E2BIG);
	/* until the buffer is reset */
	buf_reset(&b);
	CHECK_INT(buf_error(&b), 0);
	CHECK_INT(buf_adds(&b, "ok"), 0);
	CHECK_STR(b.ptr, "ok");
	buf_release(&b);
	CHECK_INT(buf_error(&b), 0);
	CHECK_INT(b.max, 5);
}

TEST(buf_grows_large)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	for (int i = 0; i < 10000; i++)
		CHECK_INT(buf_adds(&b, "0123456789"), 0);
	CHECK_INT(b.len, 100000);
	CHECK_INT(b.ptr[b.len], 0);
	buf_release(&b);
}

TEST(array_grow_amortised_and_checked)
{
	int *v = NULL;
	size_t n = 0, cap = 0, reallocs = 0;
	for (int i = 0; i < 100000; i++) {
		size_t before = cap;
		ARRAY_GROW(v, n + 1, cap);
		if (cap != before)
			reallocs++;
		CHECK(cap >= n + 1);
		v[n++] = i;
	}
	CHECK(reallocs < 40); /* geometric, not one element at a time */
	CHECK_INT(v[99999], 99999);
	free(v);
	CHECK_INT(xmul(3, 5), 15);
	CHECK(array_grow_grown(SIZE_MAX - 1) == SIZE_MAX);
}

/* runs log_info() with stderr sent to a temporary file; returns what it wrote */
static char *log_capture(const char *text)
{
	FILE *tmp = tmpfile();
	int saved = dup(2);
	fflush(stderr);
	dup2(fileno(tmp), 2);
	log_info("%s", text);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	long n = ftell(tmp);
	char *out = xmalloc((size_t)n + 1);
	rewind(tmp);
	size_t got = fread(out, 1, (size_t)n, tmp);
	out[got] = '\0';
	fclose(tmp);
	return out;
}

TEST(log_cuts_visibly_and_escapes)
{
	char *s = log_capture("a\nb");
	CHECK(strstr(s, "a\\x0ab\n") != NULL);
	free(s);

	char big[20001];
	memset(big, 'x', 20000);
	big[20000] = '\0';
	s = log_capture(big);
	CHECK(strstr(s, "... [20000 bytes, cut]\n") != NULL);
	CHECK(strlen(s) < 9000);
	free(s);
}

TEST(str_parses_numbers_strictly)
{
	unsigned long long v = 0;
	CHECK_INT(str_to_u64(str_from("1234"), &v), 0);
	CHECK_INT(v, 1234);
	CHECK_INT(str_to_u64(str_from("12a"), &v), -EINVAL);
	CHECK_INT(str_to_u64(str_from(""), &v), -EINVAL);
	CHECK_INT(str_to_u64(str_from("99999999999999999999"), &v), -ERANGE);
	long long s = 0;
	CHECK_INT(str_to_i64("-7", &s), 0);
	CHECK_INT(s, -7);
	CHECK_INT(str_to_i64("7x", &s), -EINVAL);
}

TEST(err_names_both_kinds)
{
	CHECK_STR(err_str(-ENOENT), "No such file or directory");
	CHECK_STR(err_str(KILN_EPROTO), "protocol error");
}

TEST(xasprintf_formats)
{
	char *s = xasprintf("%s=%d", "a", 1);
	CHECK_STR(s, "a=1");
	free(s);
}

int main(void)
{
	RUN(buf_starts_empty_and_terminated);
	RUN(buf_appends_and_formats);
	RUN(buf_refuses_past_cap);
	RUN(buf_grows_large);
	RUN(array_grow_amortised_and_checked);
	RUN(log_cuts_visibly_and_escapes);
	RUN(str_parses_numbers_strictly);
	RUN(err_names_both_kinds);
	RUN(xasprintf_formats);
	return tap_done();
}
