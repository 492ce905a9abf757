/*
 * Backend-neutral parts of the storage layer: result names and ordering,
 * log slugs.  Everything that speaks SQL lives in db-sqlite*.c (and later
 * db-pg*.c) behind db.h.
 */
#include "db/db-internal.h"

#include "common/xalloc.h"

const char *db_results_name(int results)
{
	switch (results) {
	case RESULTS_NONE:
		return "not finished";
	case RESULTS_SUCCESS:
		return "success";
	case RESULTS_WARNINGS:
		return "warnings";
	case RESULTS_FAILURE:
		return "failure";
	case RESULTS_SKIPPED:
		return "skipped";
	case RESULTS_EXCEPTION:
		return "exception";
	case RESULTS_RETRY:
		return "retry";
	case RESULTS_CANCELLED:
		return "cancelled";
	}
	return "unknown";
}

/* Rank by severity: Buildbot's worst_status order. */
static int db_results_rank(int r)
{
	switch (r) {
	case RESULTS_SKIPPED:
		return 1;
	case RESULTS_SUCCESS:
		return 2;
	case RESULTS_WARNINGS:
		return 3;
	case RESULTS_FAILURE:
		return 4;
	case RESULTS_EXCEPTION:
		return 5;
	case RESULTS_RETRY:
		return 6;
	case RESULTS_CANCELLED:
		return 7;
	}
	return 0;
}

int db_results_worst(int a, int b)
{
	return db_results_rank(b) > db_results_rank(a) ? b : a;
}

char *db_slugify(const char *name)
{
	char *s = xstrdup(name);
	for (char *p = s; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			*p = '_';
	}
	return s;
}
