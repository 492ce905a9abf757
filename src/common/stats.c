/*
 * Process-wide counters; see stats.h.
 */
#include "common/stats.h"

#include <time.h>

const double stats_hist_bounds[STATS_HIST_NBOUNDS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1,
};

struct stats stats;

void stats_hist_observe(struct stats_hist *h, double secs)
{
	size_t i = 0;
	while (i < STATS_HIST_NBOUNDS && secs > stats_hist_bounds[i])
		i++;
	h->bucket[i]++;
	h->count++;
	h->sum += secs;
}

uint64_t stats_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void stats_api_request_done(uint64_t *t0)
{
	stats_hist_observe(&stats.api_request, (double)(stats_now_ns() - *t0) / 1e9);
}

void stats_build_finished(int results)
{
	stats.builds_finished[results >= 0 && results < STATS_NRESULTS - 1 ? results
									   : STATS_NRESULTS - 1]++;
}
