/*
 * Unit tests of the cron-expression parser and next-time computation
 * (src/common/cron.c): fields, lists, ranges, steps, names, the
 * day-of-month / day-of-week OR rule, month and leap-year edges (UTC).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/cron.h"
#include "tap.h"

static int64_t utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm = {
		.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
	return (int64_t)timegm(&tm);
}

/* next of expr after the given time, formatted "YYYY-MM-DD HH:MM" (or an error) */
static const char *next_of(const char *expr, int64_t after)
{
	static char out[64];
	struct cron c;
	char err[160];
	if (cron_parse(expr, &c, err, sizeof(err)) < 0) {
		snprintf(out, sizeof(out), "parse error");
		return out;
	}
	int64_t t;
	if (cron_next(&c, after, &t) < 0) {
		snprintf(out, sizeof(out), "never");
		return out;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, sizeof(out), "%Y-%m-%d %H:%M %a", &tm);
	return out;
}

static const char *parse_err(const char *expr)
{
	static char err[160];
	struct cron c;
	if (cron_parse(expr, &c, err, sizeof(err)) == 0)
		return "ok";
	return err;
}

TEST(daily)
{
	CHECK_STR(next_of("0 3 * * *", utc(2024, 1, 1, 0, 0)), "2024-01-01 03:00 Mon");
	/* strictly after: at 03:00 the next one is tomorrow */
	CHECK_STR(next_of("0 3 * * *", utc(2024, 1, 1, 3, 0)), "2024-01-02 03:00 Tue");
	CHECK_STR(next_of("0 3 * * *", utc(2024, 1, 1, 3, 0) + 30), "2024-01-02 03:00 Tue");
	CHECK_STR(next_of("59 23 * * *", utc(2024, 1, 1, 23, 58)), "2024-01-01 23:59 Mon");
}

TEST(steps_lists_ranges)
{
	CHECK_STR(next_of("*/15 * * * *", utc(2024, 5, 5, 10, 7)), "2024-05-05 10:15 Sun");
	CHECK_STR(next_of("*/15 * * * *", utc(2024, 5, 5, 10, 45)), "2024-05-05 11:00 Sun");
	CHECK_STR(next_of("10-20/5 * * * *", utc(2024, 5, 5, 10, 15)), "2024-05-05 10:20 Sun");
	CHECK_STR(next_of("10-20/5 * * * *", utc(2024, 5, 5, 10, 20)), "2024-05-05 11:10 Sun");
	CHECK_STR(next_of("5,35 8,20 * * *", utc(2024, 5, 5, 8, 5)), "2024-05-05 08:35 Sun");
	CHECK_STR(next_of("5,35 8,20 * * *", utc(2024, 5, 5, 8, 35)), "2024-05-05 20:05 Sun");
	CHECK_STR(next_of("30/10 * * * *", utc(2024, 5, 5, 10, 55)), "2024-05-05 11:30 Sun");
	CHECK_STR(next_of("0 0 * * 1-5", utc(2024, 9, 6, 12, 0)), "2024-09-09 00:00 Mon");
}

TEST(names_and_sunday_7)
{
	CHECK_STR(next_of("30 4 * jan-mar mon", utc(2024, 3, 26, 0, 0)), "2025-01-06 04:30 Mon");
	CHECK_STR(next_of("0 12 * * 7", utc(2024, 9, 7, 0, 0)), "2024-09-08 12:00 Sun");
	CHECK_STR(next_of("0 12 * * SUN", utc(2024, 9, 7, 0, 0)), "2024-09-08 12:00 Sun");
	CHECK_STR(next_of("0 12 * * 5-7", utc(2024, 9, 7, 13, 0)), "2024-09-08 12:00 Sun");
}

TEST(dom_dow_or_rule)
{
	/* both restricted: the 13th OR a Friday, as cron does */
	CHECK_STR(next_of("0 0 13 * 5", utc(2024, 9, 1, 0, 0)), "2024-09-06 00:00 Fri");
	CHECK_STR(next_of("0 0 13 * 5", utc(2024, 9, 6, 0, 0)), "2024-09-13 00:00 Fri");
	CHECK_STR(next_of("0 0 13 * 5", utc(2024, 9, 20, 0, 0)), "2024-09-27 00:00 Fri");
	/* one of them '*': only the other counts */
	CHECK_STR(next_of("0 0 13 * *", utc(2024, 9, 1, 0, 0)), "2024-09-13 00:00 Fri");
	CHECK_STR(next_of("0 0 * * 5", utc(2024, 9, 1, 0, 0)), "2024-09-06 00:00 Fri");
	/* "*\/2" starts with '*': it does not switch on the OR rule */
	CHECK_STR(next_of("0 0 */2 * 1", utc(2024, 9, 1, 0, 0)), "2024-09-09 00:00 Mon");
}

TEST(month_and_leap_edges)
{
	CHECK_STR(next_of("0 0 1 1 *", utc(2024, 12, 31, 23, 59)), "2025-01-01 00:00 Wed");
	CHECK_STR(next_of("0 0 29 2 *", utc(2023, 3, 1, 0, 0)), "2024-02-29 00:00 Thu");
	CHECK_STR(next_of("0 0 31 * *", utc(2024, 4, 1, 0, 0)), "2024-05-31 00:00 Fri");
	CHECK_STR(next_of("0 0 31 2 *", utc(2024, 1, 1, 0, 0)), "never");
	/* negative and epoch times */
	CHECK_STR(next_of("0 0 * * *", 0), "1970-01-02 00:00 Fri");
}

TEST(errors)
{
	CHECK_STR(parse_err("0 3 * * *"), "ok");
	CHECK_STR(parse_err("60 * * * *"), "minute: 60 is out of range 0-59");
	CHECK_STR(parse_err("* 24 * * *"), "hour: 24 is out of range 0-23");
	CHECK_STR(parse_err("* * 0 * *"), "day-of-month: 0 is out of range 1-31");
	CHECK_STR(parse_err("* * * 13 *"), "month: 13 is out of range 1-12");
	CHECK_STR(parse_err("* * * * 8"), "day-of-week: 8 is out of range 0-7");
	CHECK_STR(parse_err("* * *"),
		  "expected 5 fields (minute hour day-of-month month day-of-week), got 3");
	CHECK_STR(parse_err("* * * * * *"),
		  "expected 5 fields (minute hour day-of-month month day-of-week), got more");
	CHECK_STR(parse_err(""),
		  "expected 5 fields (minute hour day-of-month month day-of-week), got 0");
	CHECK_STR(parse_err("5-3 * * * *"), "minute: range 5-3 is backwards");
	CHECK_STR(parse_err("*/0 * * * *"), "minute: step 0 is out of range 1-59");
	CHECK_STR(parse_err("1,,2 * * * *"), "minute: empty list item");
	CHECK_STR(parse_err("x * * * *"), "minute: expected a number near 'x'");
	CHECK_STR(parse_err("* * * foo *"), "month: expected a number or a name near 'foo'");
	CHECK_STR(parse_err("1-2-3 * * * *"), "minute: unexpected '-'");
	CHECK_STR(parse_err("123456 * * * *"), "minute: number too long");
}

int main(void)
{
	RUN(daily);
	RUN(steps_lists_ranges);
	RUN(names_and_sunday_7);
	RUN(dom_dow_or_rule);
	RUN(month_and_leap_edges);
	RUN(errors);
	return tap_done();
}
