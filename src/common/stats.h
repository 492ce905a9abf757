/*
 * Process-wide counters for /metrics (master/metrics.c renders them; slice
 * "operator"): incremented in place where the event happens, on the loop
 * thread, at the cost of an add (a histogram: a scan of its few bounds).
 * Nothing is formatted until a scrape asks.  Kept here, at the bottom
 * layer, so the database layer can count too.
 */
#ifndef KILN_COMMON_STATS_H
#define KILN_COMMON_STATS_H

#include <stddef.h>
#include <stdint.h>

/* upper bounds (seconds) of a histogram's buckets; one more is +Inf */
#define STATS_HIST_NBOUNDS 12
extern const double stats_hist_bounds[STATS_HIST_NBOUNDS];

struct stats_hist {
	uint64_t bucket[STATS_HIST_NBOUNDS + 1]; /* per bucket, not cumulative; last: +Inf */
	uint64_t count;
	double sum; /* seconds */
};

/* builds finished by results: 0..6 (SUCCESS .. CANCELLED), then any other */
#define STATS_NRESULTS 8

struct stats {
	uint64_t builds_finished[STATS_NRESULTS]; /* by results (stats_build_finished) */
	uint64_t log_bytes;                       /* build log bytes accepted for storage */
	struct stats_hist db_commit;              /* batch commits (db_flush) */
	struct stats_hist api_request;            /* /api/v2 handlers, on the loop */
};

extern struct stats stats; /* loop thread only */

void stats_hist_observe(struct stats_hist *h, double secs);
/* Counts a finished build (results as stored). */
void stats_build_finished(int results);
/* CLOCK_MONOTONIC in nanoseconds */
uint64_t stats_now_ns(void);
/* Observes the seconds since *t0 (from stats_now_ns) into the API histogram:
 * for __attribute__((cleanup)) on a local. */
void stats_api_request_done(uint64_t *t0);

#endif
