/*
 * /metrics in the Prometheus text format; see metrics.h.
 */
#define LOG_SUBSYS "metrics"

#include "master/metrics.h"
#include "master/retention.h" /* slice "retention" */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/engine.h"
#include "master/http.h"
#include "master/master.h"

/* the most queued requests counted per builder at one scrape */
#define METRICS_QUEUE_COUNT_MAX 10000
/* cap of one scrape's text */
#define METRICS_TEXT_MAX (4u << 20)

struct metrics {
	double start_time;
};

static const char *const result_names[STATS_NRESULTS] = {
	"success", "warnings", "failure", "skipped", "exception", "retry", "cancelled", "other",
};

int metrics_label_escape(struct buf *out, const char *v)
{
	int r = 0;
	for (; r >= 0 && *v; v++) {
		if (*v == '\\')
			r = buf_adds(out, "\\\\");
		else if (*v == '"')
			r = buf_adds(out, "\\\"");
		else if (*v == '\n')
			r = buf_adds(out, "\\n");
		else
			r = buf_addch(out, *v);
	}
	return r;
}

/* HELP and TYPE lines */
static void head(struct buf *out, const char *name, const char *type, const char *help)
{
	(void)!buf_addf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void hist(struct buf *out, const char *name, const char *help, const struct stats_hist *h)
{
	head(out, name, "histogram", help);
	uint64_t cum = 0;
	for (size_t i = 0; i < STATS_HIST_NBOUNDS; i++) {
		cum += h->bucket[i];
		(void)!buf_addf(out, "%s_bucket{le=\"%g\"} %llu\n", name, stats_hist_bounds[i],
				(unsigned long long)cum);
	}
	cum += h->bucket[STATS_HIST_NBOUNDS];
	(void)!buf_addf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n%s_count %llu\n", name,
			(unsigned long long)cum, name, h->sum, name, (unsigned long long)h->count);
}

int metrics_render(const struct metrics_snapshot *s, struct buf *out)
{
	head(out, "kiln_builds_finished_total", "counter",
	     "Builds finished since the master started, by result.");
	for (size_t i = 0; i < STATS_NRESULTS; i++)
		(void)!buf_addf(out, "kiln_builds_finished_total{result=\"%s\"} %llu\n",
				result_names[i], (unsigned long long)s->stats.builds_finished[i]);
	head(out, "kiln_builds_running", "gauge", "Builds running now.");
	(void)!buf_addf(out, "kiln_builds_running %llu\n", (unsigned long long)s->builds_running);
	uint64_t queued = 0;
	for (size_t i = 0; i < s->nbuilders; i++)
		queued += s->builders[i].queued;
	head(out, "kiln_buildrequests_queued", "gauge",
	     "Build requests waiting for a worker (unclaimed, incomplete).");
	(void)!buf_addf(out, "kiln_buildrequests_queued %llu\n", (unsigned long long)queued);
	head(out, "kiln_builder_buildrequests_queued", "gauge",
	     "Build requests waiting for a worker, per builder.");
	for (size_t i = 0; i < s->nbuilders; i++) {
		(void)!buf_adds(out, "kiln_builder_buildrequests_queued{builder=\"");
		(void)!metrics_label_escape(out, s->builders[i].name);
		(void)!buf_addf(out, "\"} %llu\n", (unsigned long long)s->builders[i].queued);
	}
	head(out, "kiln_workers_connected", "gauge", "Workers connected and attached now.");
	(void)!buf_addf(out, "kiln_workers_connected %llu\n",
			(unsigned long long)s->workers_connected);
	head(out, "kiln_log_bytes_written_total", "counter",
	     "Build log bytes accepted for storage since the master started.");
	(void)!buf_addf(out, "kiln_log_bytes_written_total %llu\n",
			(unsigned long long)s->stats.log_bytes);
	hist(out, "kiln_api_request_duration_seconds",
	     "Time the master's loop spent in /api/v2 request handlers.", &s->stats.api_request);
	hist(out, "kiln_db_commit_duration_seconds", "Database batch commit times.",
	     &s->stats.db_commit);
	if (s->cpu_seconds >= 0) {
		head(out, "process_cpu_seconds_total", "counter",
		     "User and system CPU time of the master process.");
		(void)!buf_addf(out, "process_cpu_seconds_total %.6f\n", s->cpu_seconds);
	}
	if (s->rss_bytes >= 0) {
		head(out, "process_resident_memory_bytes", "gauge", "Resident memory size.");
		(void)!buf_addf(out, "process_resident_memory_bytes %.0f\n", s->rss_bytes);
	}
	if (s->open_fds >= 0) {
		head(out, "process_open_fds", "gauge", "Open file descriptors.");
		(void)!buf_addf(out, "process_open_fds %.0f\n", s->open_fds);
	}
	if (s->max_fds >= 0) {
		head(out, "process_max_fds", "gauge", "The file-descriptor limit.");
		(void)!buf_addf(out, "process_max_fds %.0f\n", s->max_fds);
	}
	head(out, "process_start_time_seconds", "gauge", "Start time of the master, Unix seconds.");
	(void)!buf_addf(out, "process_start_time_seconds %.3f\n", s->start_time);
	head(out, "kiln_uptime_seconds", "gauge", "Seconds since the master started.");
	(void)!buf_addf(out, "kiln_uptime_seconds %.3f\n",
			s->now > s->start_time ? s->now - s->start_time : 0.0);
	/* slice "retention": what the purge removed (master/retention.h) */
	head(out, "kiln_retention_passes_total", "counter", "Retention passes run.");
	(void)!buf_addf(out, "kiln_retention_passes_total %llu\n",
			(unsigned long long)retention_stats.passes);
	head(out, "kiln_retention_purged_total", "counter",
	     "Rows the retention purged since the master started, by kind.");
	const struct {
		const char *kind;
		uint64_t n;
	} purged[] = {
		{"builds", retention_stats.builds},
		{"logs", retention_stats.logs},
		{"test_results", retention_stats.test_results},
		{"numbers", retention_stats.numbers},
		{"changes", retention_stats.changes},
		{"buildrequests", retention_stats.buildrequests},
		{"buildsets", retention_stats.buildsets},
		{"artifacts", retention_stats.artifacts},
	};
	for (size_t i = 0; i < sizeof(purged) / sizeof(purged[0]); i++)
		(void)!buf_addf(out, "kiln_retention_purged_total{kind=\"%s\"} %llu\n",
				purged[i].kind, (unsigned long long)purged[i].n);
	head(out, "kiln_retention_batch_seconds_max", "gauge",
	     "The longest retention batch on the loop (its work, without the commit).");
	(void)!buf_addf(out, "kiln_retention_batch_seconds_max %.6f\n",
			retention_stats.worst_batch_s);
	head(out, "kiln_wal_truncations_total", "counter",
	     "WAL files past 64 MiB truncated by the checkpoint job, off the loop (db.h).");
	(void)!buf_addf(out, "kiln_wal_truncations_total %llu\n",
			(unsigned long long)s->wal_truncations);
	head(out, "kiln_wal_truncate_seconds_max", "gauge",
	     "The longest of those truncations (a loop that writes meanwhile waits for it).");
	(void)!buf_addf(out, "kiln_wal_truncate_seconds_max %.6f\n", s->wal_truncate_worst_s);
	return buf_error(out);
}

void metrics_start(struct master *m)
{
	struct metrics *mt = xcalloc(1, sizeof(*mt));
	mt->start_time = clock_wall();
	m->metrics = mt;
}

void metrics_stop(struct master *m)
{
	free(m->metrics);
	m->metrics = NULL;
}

/* RSS and CPU from /proc/self/stat; fds from /proc/self/fd */
static void process_numbers(struct metrics_snapshot *s)
{
	s->rss_bytes = s->cpu_seconds = s->open_fds = s->max_fds = -1;
	FILE *f = fopen("/proc/self/stat", "re");
	if (f) {
		char line[1024];
		if (fgets(line, sizeof(line), f)) {
			/* fields after the command's closing ')': state is field 3 */
			char *p = strrchr(line, ')');
			unsigned long utime, stime;
			long rss;
			if (p &&
			    sscanf(p + 2,
				   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d "
				   "%*d %*d %*d %*d %*u %*u %ld",
				   &utime, &stime, &rss) == 3) {
				long tck = sysconf(_SC_CLK_TCK);
				long page = sysconf(_SC_PAGESIZE);
				if (tck > 0)
					s->cpu_seconds = (double)(utime + stime) / (double)tck;
				if (page > 0)
					s->rss_bytes = (double)rss * (double)page;
			}
		}
		fclose(f);
	}
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		long n = 0;
		struct dirent *e;
		while ((e = readdir(d)))
			n += e->d_name[0] != '.';
		closedir(d);
		s->open_fds = (double)(n - 1); /* not the one opendir holds */
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		s->max_fds = (double)rl.rlim_cur;
}

/* The scrape answered from the queue's counts (read on the loop: issue 14)
 * and what the master holds in memory. */
static void metrics_counted(void *arg, int r, const int64_t *ids, const int64_t *counts, size_t n,
			    const char *err)
{
	struct http_deferred *d = arg;
	struct http_req *req = http_deferred_req(d);
	if (!req) { /* the client went, or the master stops */
		http_deferred_end(d);
		return;
	}
	struct master *m = req->m;
	if (r < 0) {
		log_warn("cannot count queued requests: %s", err ? err : err_str(r));
		n = 0;
	}
	struct metrics_snapshot s = {0};
	s.start_time = m->metrics->start_time;
	s.now = clock_wall();
	s.builds_running = m->engine ? engine_running_builds(m->engine) : 0;
	s.workers_connected = m->engine ? engine_connected_workers(m->engine) : 0;
	s.stats = stats;
	process_numbers(&s);
	if (m->db)
		db_wal_truncations(m->db, &s.wal_truncations, &s.wal_truncate_worst_s);

	size_t nb = m->cfg->nbuilders;
	_cleanup_free_ struct metrics_builder *bs = xcalloc(nb ? nb : 1, sizeof(*bs));
	for (size_t i = 0; i < nb; i++) {
		bs[i].name = m->cfg->builder[i].name;
		int64_t id = n && m->engine ? engine_builder_id(m->engine, bs[i].name) : 0;
		for (size_t k = 0; id && k < n; k++)
			if (ids[k] == id)
				bs[i].queued = (size_t)counts[k];
	}
	s.builders = bs;
	s.nbuilders = nb;

	struct buf out;
	buf_init(&out, METRICS_TEXT_MAX);
	if (metrics_render(&s, &out) < 0) {
		buf_release(&out);
		http_reply_errmsg(req, 500, "metrics text too long");
	} else {
		size_t len;
		char *text = buf_detach(&out, &len);
		http_reply_take(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
	}
	http_deferred_end(d);
}

void metrics_handle(struct http_req *req)
{
	struct master *m = req->m;
	if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
		http_reply_errmsg(req, 405, "method not allowed");
		return;
	}
	if (!m->metrics) {
		http_reply_errmsg(req, 503, "metrics not started");
		return;
	}
	struct http_deferred *d = http_req_defer(req);
	if (db_request_queued_counts_async(m->db, METRICS_QUEUE_COUNT_MAX, metrics_counted, d) < 0)
		metrics_counted(d, KILN_EDB, NULL, NULL, 0, db_errmsg(m->db));
}
