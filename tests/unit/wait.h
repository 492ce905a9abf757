/*
 * Waiting in unit tests (docs/TESTING.md, "Waiting in tests"): a test waits
 * for a condition, never for a time.  It runs its loop (or polls another
 * thread's state) until the condition holds, bounded by a guard that only
 * matters when the test fails: TEST_GUARD_MS, generous so that a loaded
 * 2-core machine never reaches it.  A wait whose point is that something
 * does NOT happen within a time keeps its short bound, with a comment.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define TEST_GUARD_MS 60000

static inline void test_wait_wake(uv_timer_t *t)
{
	(void)t; /* only wakes the loop so that the condition is looked at again */
}

/* Runs loop until cond(arg) is true or ms pass; returns cond's last value.
 * The loop wakes at least every 20 ms to look at the condition. */
static inline bool test_run_until(uv_loop_t *loop, bool (*cond)(void *), void *arg, uint64_t ms)
{
	uv_timer_t t;
	uv_timer_init(loop, &t);
	uint64_t end = uv_hrtime() / 1000000 + ms;
	bool ok = cond(arg);
	while (!ok && uv_hrtime() / 1000000 < end) {
		uv_timer_start(&t, test_wait_wake, 20, 0);
		uv_run(loop, UV_RUN_ONCE);
		ok = cond(arg);
	}
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return ok;
}
