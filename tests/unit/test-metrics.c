/*
 * The /metrics renderer (master/metrics.c) and the counters it reads
 * (common/stats.c): exact text for a known snapshot, label escaping,
 * cumulative histogram buckets, the cap.
 */
#include "tap.h"

#include <string.h>

#include "common/buf.h"
#include "common/stats.h"
#include "master/metrics.h"

static size_t count_lines(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

TEST(render_values)
{
	struct metrics_builder bs[] = {{"a", 3}, {"q\"b\\c\nd", 2}};
	struct metrics_snapshot s = {
		.start_time = 1000,
		.now = 1061.5,
		.builds_running = 4,
		.workers_connected = 7,
		.builders = bs,
		.nbuilders = 2,
		.rss_bytes = 4096,
		.cpu_seconds = 1.25,
		.open_fds = 9,
		.max_fds = -1,
	};
	s.stats.log_bytes = 12345;
	s.stats.builds_finished[0] = 5;
	s.stats.builds_finished[2] = 2;
	s.stats.builds_finished[7] = 1;
	struct buf b;
	buf_init(&b, 1 << 20);
	CHECK_INT(metrics_render(&s, &b), 0);
	CHECK(strstr(b.ptr, "\nkiln_builds_finished_total{result=\"success\"} 5\n"));
	CHECK(strstr(b.ptr, "\nkiln_builds_finished_total{result=\"failure\"} 2\n"));
	CHECK(strstr(b.ptr, "\nkiln_builds_finished_total{result=\"other\"} 1\n"));
	CHECK(strstr(b.ptr, "\nkiln_builds_running 4\n"));
	CHECK(strstr(b.ptr, "\nkiln_buildrequests_queued 5\n"));
	CHECK(strstr(b.ptr, "\nkiln_builder_buildrequests_queued{builder=\"a\"} 3\n"));
	CHECK(strstr(b.ptr,
		     "\nkiln_builder_buildrequests_queued{builder=\"q\\\"b\\\\c\\nd\"} 2\n"));
	CHECK(strstr(b.ptr, "\nkiln_workers_connected 7\n"));
	CHECK(strstr(b.ptr, "\nkiln_log_bytes_written_total 12345\n"));
	CHECK(strstr(b.ptr, "\nprocess_resident_memory_bytes 4096\n"));
	CHECK(strstr(b.ptr, "\nprocess_cpu_seconds_total 1.250000\n"));
	CHECK(strstr(b.ptr, "\nprocess_open_fds 9\n"));
	CHECK(!strstr(b.ptr, "process_max_fds")); /* unknown: left out */
	CHECK(strstr(b.ptr, "\nkiln_uptime_seconds 61.500\n"));
	CHECK(strstr(b.ptr, "# TYPE kiln_builds_finished_total counter\n"));
	CHECK(strstr(b.ptr, "# TYPE kiln_db_commit_duration_seconds histogram\n"));
	/* every line ends with a newline, no empty line */
	CHECK(b.len > 0 && b.ptr[b.len - 1] == '\n');
	CHECK(!strstr(b.ptr, "\n\n"));
	buf_release(&b);
}

TEST(histogram_cumulative)
{
	struct stats_hist h = {0};
	stats_hist_observe(&h, 0.00005); /* first bucket */
	stats_hist_observe(&h, 0.0001);  /* le is inclusive */
	stats_hist_observe(&h, 0.003);   /* 0.005 */
	stats_hist_observe(&h, 7);       /* +Inf */
	CHECK_INT((int)h.count, 4);
	CHECK_INT((int)h.bucket[0], 2);
	CHECK_INT((int)h.bucket[STATS_HIST_NBOUNDS], 1);
	struct metrics_snapshot s = {
		.max_fds = -1, .rss_bytes = -1, .cpu_seconds = -1, .open_fds = -1};
	s.stats.db_commit = h;
	struct buf b;
	buf_init(&b, 1 << 20);
	CHECK_INT(metrics_render(&s, &b), 0);
	CHECK(strstr(b.ptr, "\nkiln_db_commit_duration_seconds_bucket{le=\"0.0001\"} 2\n"));
	CHECK(strstr(b.ptr, "\nkiln_db_commit_duration_seconds_bucket{le=\"0.0025\"} 2\n"));
	CHECK(strstr(b.ptr, "\nkiln_db_commit_duration_seconds_bucket{le=\"0.005\"} 3\n"));
	CHECK(strstr(b.ptr, "\nkiln_db_commit_duration_seconds_bucket{le=\"1\"} 3\n"));
	CHECK(strstr(b.ptr, "\nkiln_db_commit_duration_seconds_bucket{le=\"+Inf\"} 4\n"));
	CHECK(strstr(b.ptr, "\nkiln_db_commit_duration_seconds_count 4\n"));
	CHECK(strstr(b.ptr, "\nkiln_db_commit_duration_seconds_sum 7.00315\n"));
	CHECK(strstr(b.ptr, "\nkiln_api_request_duration_seconds_count 0\n"));
	CHECK(count_lines(b.ptr) > 40);
	buf_release(&b);
}

TEST(builds_finished)
{
	struct stats was = stats;
	stats_build_finished(0);
	stats_build_finished(6);
	stats_build_finished(-1); /* not a result: counted as other */
	stats_build_finished(99);
	CHECK_INT((int)(stats.builds_finished[0] - was.builds_finished[0]), 1);
	CHECK_INT((int)(stats.builds_finished[6] - was.builds_finished[6]), 1);
	CHECK_INT((int)(stats.builds_finished[7] - was.builds_finished[7]), 2);
}

TEST(render_cap)
{
	struct metrics_snapshot s = {.max_fds = -1};
	struct buf b;
	buf_init(&b, 100);
	CHECK_INT(metrics_render(&s, &b), -E2BIG);
	buf_release(&b);
}

int main(void)
{
	RUN(render_values);
	RUN(histogram_cumulative);
	RUN(builds_finished);
	RUN(render_cap);
	return tap_done();
}
