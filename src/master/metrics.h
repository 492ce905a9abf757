/*
 * GET /metrics (slice "operator"): the master's numbers in the Prometheus
 * text exposition format, version 0.0.4 (docs/OPERATING.md lists them).
 * Counters are kept where things happen (common/stats.h: a build's end, a
 * database commit, a log append, an API request) and only read and
 * formatted when a scrape asks: a build costs an increment.  Same access as the API's
 * reads (anonymous GET).
 */
#ifndef KILN_MASTER_METRICS_H
#define KILN_MASTER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/stats.h"

struct buf;
struct master;
struct http_req;

struct metrics_builder {
	const char *name; /* borrowed */
	uint64_t queued;  /* unclaimed, incomplete requests */
};

/* Everything one scrape shows (metrics_render's input: pure, unit-tested). */
struct metrics_snapshot {
	double start_time; /* Unix seconds */
	double now;        /* Unix seconds */
	uint64_t builds_running;
	uint64_t workers_connected;
	const struct metrics_builder *builders; /* per configured builder */
	size_t nbuilders;
	struct stats stats;                               /* a copy */
	double rss_bytes, cpu_seconds, open_fds, max_fds; /* < 0: unknown, left out */
	uint64_t wal_truncations;                         /* db_wal_truncations() */
	double wal_truncate_worst_s;
};

/* Appends the exposition text.  Errors: out's cap (-E2BIG). */
int metrics_render(const struct metrics_snapshot *s, struct buf *out);

/* Appends a label value escaped as the format wants (\\ \" \n). */
int metrics_label_escape(struct buf *out, const char *v);

/* Notes the start time; sets m->metrics.  metrics_stop frees it (NULL-safe). */
void metrics_start(struct master *m);
void metrics_stop(struct master *m);

/* The /metrics route (http.c). */
void metrics_handle(struct http_req *req);

#endif
