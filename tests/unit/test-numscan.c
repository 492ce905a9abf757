/*
 * numbers = { NAME = "regex" } over a step's stdout and the text of a
 * number (src/master/numscan.c): the last matching line wins, however the
 * output is cut; long lines and values are capped; a catastrophic regex is
 * stopped by its limits and reported; what numscan_parse() takes.
 */
#include "tap.h"
#include "common/err.h"
#include "common/limits.h"
#include "master/numscan.h"

#include <errno.h>
#include <stdlib.h>

static struct numscan *scan_new(const char *re)
{
	struct numscan *s = NULL;
	char *err = NULL;
	if (numscan_new(&re, 1, &s, &err) < 0) {
		TAP_FAIL("'%s' did not compile: %s", re, err ? err : "?");
		free(err);
	}
	return s;
}

/* The value regex i found, as a NUL-terminated string (static), or NULL. */
static const char *value(const struct numscan *s, size_t i)
{
	static char out[KILN_NUMSCAN_MAX_VALUE + 1];
	const char *v;
	size_t len;
	if (numscan_value(s, i, &v, &len) <= 0)
		return NULL;
	memcpy(out, v, len);
	out[len] = '\0';
	return out;
}

TEST(last_match_wins)
{
	const char *re[] = {"size: (\\d+) KiB", "^time (\\S+)"};
	struct numscan *s = NULL;
	char *err = NULL;
	CHECK_INT(numscan_new(re, 2, &s, &err), 0);
	if (!s)
		return;
	const char *out = "building\nsize: 12 KiB\ntime 1.5\nsize: 40 KiB\r\nnot the time 9\n";
	numscan_feed(s, out, strlen(out));
	numscan_finish(s);
	CHECK_STR(value(s, 0), "40");
	CHECK_STR(value(s, 1), "1.5");
	CHECK(numscan_error(s) == NULL);
	numscan_free(s);
}

TEST(pieces_and_partial_line)
{
	struct numscan *s = scan_new("v=(\\d+)");
	if (!s)
		return;
	/* one byte at a time, the last line without its newline */
	const char *out = "v=1\nv=2\nv=3";
	for (const char *p = out; *p; p++)
		numscan_feed(s, p, 1);
	CHECK_STR(value(s, 0), "2"); /* the partial line waits for its end ... */
	numscan_finish(s);
	CHECK_STR(value(s, 0), "3"); /* ... or for the end of the output */
	numscan_free(s);
}

TEST(no_match_and_unset_group)
{
	struct numscan *s = scan_new("a(\\d)?b");
	if (!s)
		return;
	numscan_feed(s, "ab\nxyz\n", 7);
	numscan_finish(s);
	CHECK(value(s, 0) == NULL);
	CHECK_INT(numscan_value(s, 0, &(const char *){0}, &(size_t){0}), 0);
	CHECK_INT(numscan_value(s, 5, &(const char *){0}, &(size_t){0}), 0);
	numscan_free(s);
}

TEST(long_lines_and_values)
{
	struct numscan *s = scan_new("n=(\\d+)");
	if (!s)
		return;
	/* a match past the first KILN_NUMSCAN_MAX_LINE bytes of a line is not seen */
	size_t pad = KILN_NUMSCAN_MAX_LINE;
	char *line = malloc(pad + 16);
	memset(line, 'x', pad);
	memcpy(line + pad, "n=7\n", 4);
	numscan_feed(s, "n=1\n", 4);
	numscan_feed(s, line, pad + 4);
	numscan_finish(s);
	CHECK_STR(value(s, 0), "1");
	/* and the line after the cut one is a line again */
	numscan_feed(s, "n=5\n", 4);
	numscan_finish(s);
	CHECK_STR(value(s, 0), "5");
	free(line);
	/* a value over the cap is not a number */
	char big[KILN_NUMSCAN_MAX_VALUE + 8];
	memcpy(big, "n=", 2);
	memset(big + 2, '1', KILN_NUMSCAN_MAX_VALUE + 1);
	big[KILN_NUMSCAN_MAX_VALUE + 3] = '\n';
	numscan_feed(s, big, KILN_NUMSCAN_MAX_VALUE + 4);
	numscan_finish(s);
	const char *v;
	size_t len;
	CHECK_INT(numscan_value(s, 0, &v, &len), KILN_ETOOBIG);
	numscan_free(s);
}

TEST(catastrophic_regex)
{
	struct numscan *s = scan_new("^((a+)+)$");
	if (!s)
		return;
	char line[4000];
	memset(line, 'a', sizeof(line) - 2);
	line[sizeof(line) - 2] = 'b';
	line[sizeof(line) - 1] = '\n';
	numscan_feed(s, line, sizeof(line));
	numscan_feed(s, "aaa\n", 4); /* skipped: the regex is off */
	numscan_finish(s);
	CHECK(numscan_error(s) != NULL);
	CHECK(numscan_error(s) && strstr(numscan_error(s), "regex 1: ") &&
	      strstr(numscan_error(s), "on line 1, regex skipped from there"));
	CHECK(value(s, 0) == NULL);
	numscan_free(s);
}

TEST(bad_regexes)
{
	const char *re[] = {"(a)", "(b"};
	struct numscan *s = NULL;
	char *err = NULL;
	CHECK_INT(numscan_new(re, 2, &s, &err), KILN_ECONFIG);
	CHECK_STR(err, "regex 2: missing closing parenthesis at offset 2");
	free(err);
	err = NULL;
	const char *plain = "abc";
	CHECK_INT(numscan_new(&plain, 1, &s, &err), KILN_ECONFIG);
	CHECK_STR(err, "regex 1: it has no capture group");
	free(err);
}

TEST(parse)
{
	double v = 0;
	CHECK_INT(numscan_parse("42", 2, &v), 0);
	CHECK(v == 42);
	CHECK_INT(numscan_parse(" -1.5\n", 6, &v), 0);
	CHECK(v == -1.5);
	CHECK_INT(numscan_parse("2e3", 3, &v), 0);
	CHECK(v == 2000);
	CHECK_INT(numscan_parse(".5", 2, &v), 0);
	CHECK(v == 0.5);
	CHECK_INT(numscan_parse("+7.", 3, &v), 0);
	CHECK(v == 7);
	static const char *const bad[] = {"",     "  ", "abc",   "nan", "inf",     "-inf",
					  "0x10", "1e", "1e+",   "1 2", "1,5",     "--1",
					  ".",    "e5", "1e999", "12a", "\x31\x00"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = i == sizeof(bad) / sizeof(bad[0]) - 1 ? 2 : strlen(bad[i]);
		v = 99;
		if (numscan_parse(bad[i], len, &v) != -EINVAL)
			TAP_FAIL("'%s' parsed as %g", bad[i], v);
		CHECK(v == 99);
	}
}

int main(void)
{
	RUN(last_match_wins);
	RUN(pieces_and_partial_line);
	RUN(no_match_and_unset_group);
	RUN(long_lines_and_values);
	RUN(catastrophic_regex);
	RUN(bad_regexes);
	RUN(parse);
	return tap_done();
}
