/*
 * The cron-expression parser and next-time computation used by nightly
 * schedulers (see cron.h).  Hand-written: nothing packaged fits, so it is
 * small, unit-tested (tests/unit/test-cron.c) and fuzzed (fuzz-cron).
 */
#include "common/cron.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct cron_field {
	const char *name;
	int min, max;
	const char *const *names; /* names[i] means min + i */
};

static const char *const cron_months[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
					  "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const cron_days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const struct cron_field cron_fields[5] = {
	{"minute", 0, 59, NULL},          {"hour", 0, 23, NULL},
	{"day-of-month", 1, 31, NULL},    {"month", 1, 12, cron_months},
	{"day-of-week", 0, 7, cron_days},
};

/* A number or a name at *p; advances *p.  Returns 0 or -EINVAL. */
static int cron_value(const struct cron_field *f, const char **p, int *ret, char *err,
		      size_t errsize)
{
	const char *s = *p;
	if (*s >= '0' && *s <= '9') {
		long v = 0;
		int digits = 0;
		while (*s >= '0' && *s <= '9') {
			if (++digits > 4) {
				snprintf(err, errsize, "%s: number too long", f->name);
				return -EINVAL;
			}
			v = v * 10 + (*s++ - '0');
		}
		*ret = (int)v;
		*p = s;
		return 0;
	}
	if (f->names) {
		for (int i = 0; f->names[i]; i++)
			if (!strncasecmp(s, f->names[i], 3)) {
				*ret = f->min + i;
				*p = s + 3;
				return 0;
			}
	}
	int len = (int)strcspn(s, " \t,-/");
	snprintf(err, errsize, "%s: expected a number%s near '%.*s'", f->name,
		 f->names ? " or a name" : "", len > 10 ? 10 : len, s);
	return -EINVAL;
}

static int cron_range_check(const struct cron_field *f, int v, char *err, size_t errsize)
{
	if (v < f->min || v > f->max) {
		snprintf(err, errsize, "%s: %d is out of range %d-%d", f->name, v, f->min, f->max);
		return -EINVAL;
	}
	return 0;
}

/* One field's text [s, end) into a bit set. */
static int cron_parse_field(const struct cron_field *f, const char *s, const char *end,
			    uint64_t *ret_bits, bool *ret_star, char *err, size_t errsize)
{
	uint64_t bits = 0;
	*ret_star = *s == '*';
	for (;;) {
		const char *item_end = memchr(s, ',', (size_t)(end - s));
		if (!item_end)
			item_end = end;
		if (item_end == s) {
			snprintf(err, errsize, "%s: empty list item", f->name);
			return -EINVAL;
		}
		int lo, hi, step = 1;
		const char *p = s;
		bool ranged = false;
		if (*p == '*') {
			lo = f->min;
			hi = f->max == 7 ? 6 : f->max;
			p++;
			ranged = true;
		} else {
			if (cron_value(f, &p, &lo, err, errsize) < 0)
				return -EINVAL;
			if (cron_range_check(f, lo, err, errsize) < 0)
				return -EINVAL;
			hi = lo;
			if (p < item_end && *p == '-') {
				p++;
				if (cron_value(f, &p, &hi, err, errsize) < 0)
					return -EINVAL;
				if (cron_range_check(f, hi, err, errsize) < 0)
					return -EINVAL;
				if (hi < lo) {
					snprintf(err, errsize, "%s: range %d-%d is backwards",
						 f->name, lo, hi);
					return -EINVAL;
				}
				ranged = true;
			}
		}
		if (p < item_end && *p == '/') {
			p++;
			const struct cron_field stepf = {f->name, 1, f->max, NULL};
			if (cron_value(&stepf, &p, &step, err, errsize) < 0)
				return -EINVAL;
			if (step < 1 || step > f->max) {
				snprintf(err, errsize, "%s: step %d is out of range 1-%d", f->name,
					 step, f->max);
				return -EINVAL;
			}
			if (!ranged) /* "a/n": from a to the end */
				hi = f->max == 7 ? 6 : f->max;
		}
		if (p != item_end) {
			snprintf(err, errsize, "%s: unexpected '%c'", f->name, *p);
			return -EINVAL;
		}
		for (int v = lo; v <= hi; v += step)
			bits |= 1ull << (f->max == 7 && v == 7 ? 0 : v);
		if (item_end == end)
			break;
		s = item_end + 1;
	}
	*ret_bits = bits;
	return 0;
}

int cron_parse(const char *text, struct cron *ret, char *err, size_t errsize)
{
	if (!text || strnlen(text, CRON_MAX_TEXT + 1) > CRON_MAX_TEXT) {
		snprintf(err, errsize, "cron expression is longer than %d bytes", CRON_MAX_TEXT);
		return -EINVAL;
	}
	struct cron c = {0};
	uint64_t bits[5];
	bool star[5];
	const char *p = text;
	int n = 0;
	for (;;) {
		p += strspn(p, " \t");
		if (!*p)
			break;
		const char *e = p + strcspn(p, " \t");
		if (n == 5) {
			snprintf(err, errsize,
				 "expected 5 fields (minute hour day-of-month month day-of-week), "
				 "got more");
			return -EINVAL;
		}
		for (const char *q = p; q < e; q++) {
			unsigned char ch = (unsigned char)*q;
			if (ch < 0x20 || ch >= 0x7f) {
				snprintf(err, errsize, "%s: unexpected character",
					 cron_fields[n].name);
				return -EINVAL;
			}
		}
		if (cron_parse_field(&cron_fields[n], p, e, &bits[n], &star[n], err, errsize) < 0)
			return -EINVAL;
		n++;
		p = e;
	}
	if (n != 5) {
		snprintf(err, errsize,
			 "expected 5 fields (minute hour day-of-month month day-of-week), got %d",
			 n);
		return -EINVAL;
	}
	c.minute = bits[0];
	c.hour = (uint32_t)bits[1];
	c.mday = (uint32_t)bits[2];
	c.month = (uint16_t)bits[3];
	c.wday = (uint8_t)bits[4];
	c.mday_star = star[2];
	c.wday_star = star[4];
	*ret = c;
	return 0;
}

static bool cron_day_matches(const struct cron *c, const struct tm *tm)
{
	bool md = c->mday & (1u << tm->tm_mday);
	bool wd = c->wday & (1u << tm->tm_wday);
	if (c->mday_star || c->wday_star)
		return md && wd;
	return md || wd; /* both restricted: either one, as cron does */
}

int cron_next(const struct cron *c, int64_t after, int64_t *ret)
{
	/* the next whole minute after 'after' */
	time_t t = (time_t)((after - (after % 60 + 60) % 60) + 60);
	time_t limit = t + (time_t)8 * 366 * 86400;
	struct tm tm;
	while (t <= limit) {
		if (!gmtime_r(&t, &tm))
			return -ERANGE;
		if (!(c->month & (1u << (tm.tm_mon + 1)))) {
			/* first minute of next month */
			tm.tm_mon++;
			tm.tm_mday = 1;
			tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
			t = timegm(&tm);
			continue;
		}
		if (!cron_day_matches(c, &tm)) {
			tm.tm_mday++;
			tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
			t = timegm(&tm);
			continue;
		}
		if (!(c->hour & (1u << tm.tm_hour))) {
			tm.tm_hour++;
			tm.tm_min = tm.tm_sec = 0;
			t = timegm(&tm);
			continue;
		}
		if (!(c->minute & (1ull << tm.tm_min))) {
			t += 60;
			continue;
		}
		*ret = (int64_t)t;
		return 0;
	}
	return -ERANGE;
}
