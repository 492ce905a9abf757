/*
 * libFuzzer target for the cron-expression parser (src/common/cron.c):
 * any bytes as an expression.  Parsing ends in a cron or a message; a
 * parsed cron's next time is always a whole minute after the start.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[CRON_MAX_TEXT + 2];
	if (size > CRON_MAX_TEXT + 1)
		size = CRON_MAX_TEXT + 1;
	memcpy(text, data, size);
	text[size] = '\0';
	struct cron c;
	char err[160];
	err[0] = '\0';
	if (cron_parse(text, &c, err, sizeof(err)) < 0) {
		if (!err[0])
			abort(); /* every failure says why */
		return 0;
	}
	static const int64_t starts[] = {0, 951782400 /* 2000-02-29 */, 1700000000, -86400};
	for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
		int64_t next;
		if (cron_next(&c, starts[i], &next) == 0 && (next <= starts[i] || next % 60))
			abort();
	}
	return 0;
}
