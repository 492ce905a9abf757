/* Loop stall measurement (src/master/loop-stall.c) on a real libuv loop. */
#include <errno.h>
#include <stdbool.h>
#include <jansson.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "master/loop-stall.h"
#include "tap.h"

static uint64_t test_busy_ms; /* what the busy timer burns */
static int test_turns_left;   /* for the idle handle */
static bool test_busy_done;   /* the busy timer has run (or there is none) */

static uint64_t test_cpu_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		abort();
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void test_on_busy(uv_timer_t *t)
{
	(void)t;
	/* a deliberate stall: the loop cannot turn until this thread has burnt
	 * test_busy_ms of CPU (so at least as much wall time, however loaded
	 * the machine) */
	uint64_t end = test_cpu_ns() + test_busy_ms * 1000000;
	while (test_cpu_ns() < end)
		;
	test_busy_done = true;
}

static void test_on_stop(uv_timer_t *t)
{
	uv_stop(t->loop);
}

/* Counts quick turns; once they are done and the stall has happened the
 * run ends (however long a loaded machine took), not at a fixed time. */
static void test_on_idle(uv_idle_t *h)
{
	if (test_turns_left > 0)
		test_turns_left--;
	if (test_turns_left <= 0 && test_busy_done) {
		uv_idle_stop(h);
		uv_stop(h->loop);
	}
}

static void test_close_cb(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Runs a loop with: a timer after 10 ms that burns BUSY_MS (0: none), TURNS
 * quick turns from an idle handle, a stop timer after STOP_MS (the bound). */
static int test_run(uint64_t busy_ms, int turns, uint64_t stop_ms, struct loop_stall_report *ret)
{
	uv_loop_t loop;
	uv_timer_t busy, stop;
	uv_idle_t idle;
	if (uv_loop_init(&loop) < 0)
		return -1;
	int r = loop_stall_start(&loop);
	if (r < 0)
		return r;
	test_busy_ms = busy_ms;
	test_busy_done = busy_ms == 0;
	uv_timer_init(&loop, &busy);
	uv_timer_init(&loop, &stop);
	uv_idle_init(&loop, &idle);
	if (busy_ms)
		uv_timer_start(&busy, test_on_busy, 10, 0);
	test_turns_left = turns;
	if (turns)
		uv_idle_start(&idle, test_on_idle);
	uv_timer_start(&stop, test_on_stop, stop_ms, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	loop_stall_report(ret);
	loop_stall_stop();
	uv_walk(&loop, test_close_cb, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	return uv_loop_close(&loop);
}

TEST(busy_callback_is_a_stall)
{
	struct loop_stall_report r;
	CHECK_INT(test_run(50, 0, 300, &r), 0);
	CHECK(r.turns >= 1);
	CHECK(r.worst_us >= 50000);
	CHECK(r.worst_us < 10000000); /* bounded: a stall, not the whole run */
	CHECK(r.p99_us <= r.worst_us);
	CHECK(r.busy_us >= r.worst_us);
	CHECK(r.worst_cpu_us >= 50000);
	CHECK(r.worst_cpu_us <= r.worst_us + 1000);
}

TEST(waiting_is_not_a_stall)
{
	/* 500 ms in the kernel's event wait: without subtracting the idle time
	 * this would be one 500 ms "stall" */
	struct loop_stall_report r;
	CHECK_INT(test_run(0, 0, 500, &r), 0);
	CHECK(r.worst_us < 250000);
}

TEST(percentiles_from_many_turns)
{
	/* 1,000 quick turns and one 50 ms stall: the stall is above p99 */
	struct loop_stall_report r;
	CHECK_INT(test_run(50, 1000, 60000, &r), 0); /* 60 s: a guard, not a wait */
	CHECK(r.turns >= 1000);
	CHECK(r.worst_us >= 50000);
	CHECK(r.p50_us < 50000);
	CHECK(r.p99_us < 50000);
	CHECK(r.p50_us <= r.p99_us);
	uint64_t sum = 0;
	for (unsigned b = 0; b < LOOP_STALL_BUCKETS; b++)
		sum += r.hist[b];
	CHECK_INT(sum, r.turns);
}

TEST(start_twice_is_refused)
{
	uv_loop_t loop;
	CHECK_INT(uv_loop_init(&loop), 0);
	CHECK_INT(loop_stall_start(&loop), 0);
	CHECK_INT(loop_stall_start(&loop), -EBUSY);
	loop_stall_stop();
	loop_stall_stop();                           /* harmless */
	CHECK_INT(uv_run(&loop, UV_RUN_DEFAULT), 0); /* unreferenced: returns at once */
	CHECK_INT(uv_loop_close(&loop), 0);
}

TEST(finish_writes_json)
{
	struct loop_stall_report r;
	CHECK_INT(test_run(50, 0, 200, &r), 0);
	char dir[] = "/tmp/kiln-test-loop-stall.XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char path[128];
	snprintf(path, sizeof(path), "%s/stats.json", dir);
	setenv("KILN_LOOP_STATS", path, 1);
	CHECK_INT(loop_stall_finish(), 0);
	unsetenv("KILN_LOOP_STATS");
	json_error_t jerr;
	json_t *j = json_load_file(path, 0, &jerr);
	CHECK(j != NULL);
	if (j) {
		CHECK_INT(json_integer_value(json_object_get(j, "turns")), r.turns);
		CHECK(json_real_value(json_object_get(j, "worst_ms")) >= 50.0);
		CHECK(json_is_real(json_object_get(j, "p99_ms")));
		CHECK(json_real_value(json_object_get(j, "worst_cpu_ms")) > 0.0);
		CHECK(json_array_size(json_object_get(j, "histogram_us")) >= 1);
		json_decref(j);
	}
	/* an unwritable path is an error, reported */
	setenv("KILN_LOOP_STATS", "/nonexistent-dir/x/stats.json", 1);
	CHECK(loop_stall_finish() < 0);
	unsetenv("KILN_LOOP_STATS");
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	RUN(busy_callback_is_a_stall);
	RUN(waiting_is_not_a_stall);
	RUN(percentiles_from_many_turns);
	RUN(start_twice_is_refused);
	RUN(finish_writes_json);
	return tap_done();
}
