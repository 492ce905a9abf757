/*
 * A cron expression: five fields "minute hour day-of-month month
 * day-of-week", each '*', a number, a range a-b, a step (*\/n, a-b/n, a/n)
 * or a comma list of those; months and days may be named (jan, mon).
 * Day-of-month and day-of-week combine as cron does: when both are
 * restricted (neither starts with '*') a day matching either one fires.
 * Times are UTC (no daylight-saving jumps).  Used by nightly schedulers;
 * config validates with it, so it depends on nothing but libc.
 */
#ifndef KILN_CRON_H
#define KILN_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cron {
	uint64_t minute;           /* bit m: minute m (0-59) */
	uint32_t hour;             /* bit h (0-23) */
	uint32_t mday;             /* bit d (1-31) */
	uint16_t month;            /* bit m (1-12) */
	uint8_t wday;              /* bit d (0-6, 0 = Sunday; 7 is read as 0) */
	bool mday_star, wday_star; /* the field started with '*' */
};

/* Parses text (NUL-terminated, at most CRON_MAX_TEXT bytes).  Returns 0 and
 * *ret, or -EINVAL and a message in err ("hour: 24 is out of range 0-23"). */
#define CRON_MAX_TEXT 256
int cron_parse(const char *text, struct cron *ret, char *err, size_t errsize);

/* The first matching minute strictly after 'after' (seconds since the
 * epoch, UTC): 0 and *ret, or -ERANGE when none comes within 8 years
 * (e.g. "0 0 31 2 *"). */
int cron_next(const struct cron *c, int64_t after, int64_t *ret);

#endif
