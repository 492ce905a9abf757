/*
 * Loop stall measurement.  A uv_prepare handle runs once per loop turn, just
 * before the loop blocks for I/O.  Between two of its calls lie one whole
 * turn: the poll (waiting, then the I/O callbacks), check and close
 * callbacks, timers.  libuv's UV_METRICS_IDLE_TIME counts the time spent
 * blocked in the kernel's event wait, so the turn's busy time is its wall
 * time minus the growth of uv_metrics_idle_time() over it.
 */
#define LOG_SUBSYS "loop"

#include "master/loop-stall.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xalloc.h"

static struct {
	uv_prepare_t prepare;
	uv_loop_t *loop; /* borrowed: the caller's */
	bool running;    /* prepare handle initialised and not yet closing */
	bool have_prev;
	uint64_t prev_ns, prev_idle_ns, prev_cpu_ns;
	struct loop_stall_report r;
} loop_stall;

static unsigned loop_stall_bucket(uint64_t us)
{
	unsigned b = 0;
	while (us > 0 && b < LOOP_STALL_BUCKETS - 1) {
		us >>= 1;
		b++;
	}
	return b;
}

/* CPU time of the calling thread (the loop's), or 0 if the clock fails */
static uint64_t loop_stall_thread_cpu_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void loop_stall_on_prepare(uv_prepare_t *h)
{
	(void)h;
	uint64_t now = uv_hrtime();
	uint64_t idle = uv_metrics_idle_time(loop_stall.loop);
	uint64_t cpu = loop_stall_thread_cpu_ns();
	if (loop_stall.have_prev) {
		uint64_t wall = now - loop_stall.prev_ns;
		uint64_t idled = idle - loop_stall.prev_idle_ns;
		uint64_t busy_us = (wall > idled ? wall - idled : 0) / 1000;
		struct loop_stall_report *r = &loop_stall.r;
		r->turns++;
		r->busy_us += busy_us;
		if (busy_us > r->worst_us)
			r->worst_us = busy_us;
		r->hist[loop_stall_bucket(busy_us)]++;
		uint64_t cpu_us =
			(cpu > loop_stall.prev_cpu_ns ? cpu - loop_stall.prev_cpu_ns : 0) / 1000;
		if (cpu_us > r->worst_cpu_us)
			r->worst_cpu_us = cpu_us;
	}
	loop_stall.have_prev = true;
	loop_stall.prev_ns = now;
	loop_stall.prev_idle_ns = idle;
	loop_stall.prev_cpu_ns = cpu;
}

int loop_stall_start(uv_loop_t *loop)
{
	if (loop_stall.running)
		return -EBUSY;
	int r = uv_loop_configure(loop, UV_METRICS_IDLE_TIME);
	if (r < 0)
		return r;
	r = uv_prepare_init(loop, &loop_stall.prepare);
	if (r < 0)
		return r;
	memset(&loop_stall.r, 0, sizeof(loop_stall.r));
	loop_stall.loop = loop;
	loop_stall.have_prev = false;
	r = uv_prepare_start(&loop_stall.prepare, loop_stall_on_prepare);
	if (r < 0) {
		uv_close((uv_handle_t *)&loop_stall.prepare, NULL);
		return r;
	}
	uv_unref((uv_handle_t *)&loop_stall.prepare);
	loop_stall.running = true;
	return 0;
}

/* the upper edge of the bucket holding the P-th per mille turn, capped at
 * the worst turn (the last bucket has no upper edge) */
static uint64_t loop_stall_quantile(const struct loop_stall_report *r, unsigned per_mille)
{
	if (r->turns == 0)
		return 0;
	uint64_t rank = (r->turns * per_mille + 999) / 1000; /* 1-based */
	if (rank == 0)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned b = 0; b < LOOP_STALL_BUCKETS; b++) {
		seen += r->hist[b];
		if (seen >= rank) {
			if (b == 0)
				return 0;
			if (b == LOOP_STALL_BUCKETS - 1)
				return r->worst_us;
			uint64_t edge = (uint64_t)1 << b;
			return edge < r->worst_us ? edge : r->worst_us;
		}
	}
	return r->worst_us;
}

void loop_stall_report(struct loop_stall_report *ret)
{
	*ret = loop_stall.r;
	ret->p50_us = loop_stall_quantile(&loop_stall.r, 500);
	ret->p99_us = loop_stall_quantile(&loop_stall.r, 990);
}

void loop_stall_stop(void)
{
	if (!loop_stall.running)
		return;
	loop_stall.running = false;
	uv_prepare_stop(&loop_stall.prepare);
	uv_close((uv_handle_t *)&loop_stall.prepare, NULL);
}

int loop_stall_write_json(const char *path)
{
	struct loop_stall_report r;
	loop_stall_report(&r);
	_cleanup_free_ char *tmp = xasprintf("%s.tmp", path);
	FILE *f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f,
		"{\"turns\": %" PRIu64 ", \"worst_ms\": %.3f, \"p50_ms\": %.3f, "
		"\"p99_ms\": %.3f, \"busy_ms\": %.3f, \"worst_cpu_ms\": %.3f, \"histogram_us\": [",
		r.turns, r.worst_us / 1000.0, r.p50_us / 1000.0, r.p99_us / 1000.0,
		r.busy_us / 1000.0, r.worst_cpu_us / 1000.0);
	/* [upper edge in µs (null: open-ended), turns] for each non-empty bucket */
	bool first = true;
	for (unsigned b = 0; b < LOOP_STALL_BUCKETS; b++) {
		if (!r.hist[b])
			continue;
		if (b == LOOP_STALL_BUCKETS - 1)
			fprintf(f, "%s[null, %" PRIu64 "]", first ? "" : ", ", r.hist[b]);
		else
			fprintf(f, "%s[%" PRIu64 ", %" PRIu64 "]", first ? "" : ", ",
				b ? (uint64_t)1 << b : 1, r.hist[b]);
		first = false;
	}
	fprintf(f, "]}\n");
	int err = ferror(f) ? -EIO : 0;
	if (fclose(f) != 0 && err == 0)
		err = -errno;
	if (err == 0 && rename(tmp, path) < 0)
		err = -errno;
	if (err < 0)
		unlink(tmp);
	return err;
}

int loop_stall_finish(void)
{
	struct loop_stall_report r;
	loop_stall_stop();
	loop_stall_report(&r);
	log_info("worst stall %.1f ms over %" PRIu64 " turns (p99 %.1f ms)", r.worst_us / 1000.0,
		 r.turns, r.p99_us / 1000.0);
	const char *path = getenv("KILN_LOOP_STATS");
	if (!path || !*path)
		return 0;
	int err = loop_stall_write_json(path);
	if (err < 0)
		return log_error_errno(err, "cannot write loop stats to '%s'", path);
	return 0;
}
