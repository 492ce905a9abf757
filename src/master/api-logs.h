/*
 * The query of GET /api/v2/logs/ID/search (api-logs.c), parsed apart from
 * the HTTP request so that its checks are unit-tested and fuzzed alone.
 */
#ifndef KILN_API_LOGS_H
#define KILN_API_LOGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct api_log_search_args {
	const char *q; /* borrowed: the request's argument */
	size_t qlen;
	int64_t from; /* -1: not given (next: line 0; prev: the last line) */
	bool backward, icase;
};

/* Checks the arguments q (1..KILN_LOG_SEARCH_MAX_QUERY bytes, no newline),
 * from (a line number >= 0), dir ("next", the default, or "prev") and
 * icase ("1", "true", "0", "false"); NULL means not given.  0 and *ret
 * filled, or -EINVAL with *ret_err a constant message for the 400 reply. */
int api_log_search_parse(const char *q, const char *from, const char *dir, const char *icase,
			 struct api_log_search_args *ret, const char **ret_err);

#endif
