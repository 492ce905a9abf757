/*
 * Unit tests for src/master/events-steps.c (slice "uibuild"): Buildbot
 * 3.7's step event keys, the bus's cheap "anyone subscribed?" check, and
 * the no-listener path that only numbers the events (it must not touch the
 * database: these tests give it none, so a read would crash).  Delivery of
 * the step entity over a real /ws is tests/e2e/t1021-api-steps-rebuild.sh.
 * Slice "board": the rate limit of "updated" events on a real libuv loop
 * (the delayed event is a timer), its output counted by a test sink; the
 * events themselves over a real /ws: tests/e2e/t1055-step-updated-events.sh.
 */
#include "tap.h"
#include "master/events-steps.h"
#include "master/events.h"
#include "master/master.h"

#include "common/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TEST(keys_in_buildbot_shape)
{
	char k[96];
	CHECK_INT(events_step_key(k, sizeof(k), true, 12, 345, "started"), 27);
	CHECK_STR(k, "builds/12/steps/345/started");
	events_step_key(k, sizeof(k), false, 12, 345, "finished");
	CHECK_STR(k, "steps/345/finished");
	/* a short buffer is cut, never overrun */
	char small[8];
	CHECK(events_step_key(small, sizeof(small), false, 1, 2, "new") > 7);
	CHECK_STR(small, "steps/2");
}

static void consume(struct events_sub *s, const char *path)
{
	char msg[160];
	snprintf(msg, sizeof(msg), "{\"cmd\":\"startConsuming\",\"path\":\"%s\",\"_id\":1}", path);
	char *r = events_sub_reply(s, msg, strlen(msg));
	CHECK(r && strstr(r, "\"code\":200"));
	free(r);
}

TEST(wanted_matches_paths)
{
	struct master m = {0};
	CHECK(!events_wanted(&m, "steps/1/new")); /* no bus */
	m.events = events_new();
	CHECK(!events_wanted(&m, "steps/1/new")); /* no subscriber */
	struct events_sub *s = events_sub_new(m.events, NULL);
	CHECK(!events_wanted(&m, "steps/1/new")); /* one with no paths */
	consume(s, "builds/7/steps/*/*");
	CHECK(events_wanted(&m, "builds/7/steps/3/finished"));
	CHECK(!events_wanted(&m, "builds/8/steps/3/finished"));
	CHECK(!events_wanted(&m, "steps/3/finished"));
	consume(s, "steps/*/*");
	CHECK(events_wanted(&m, "steps/3/finished"));
	events_sub_free(s);
	CHECK(!events_wanted(&m, "steps/3/finished"));
	events_free(m.events);
}

TEST(unheard_events_are_only_numbered)
{
	struct master m = {0};         /* m.db NULL: reading a row would crash */
	events_step_started(&m, 1, 2); /* no bus: nothing at all */
	m.events = events_new();
	events_step_started(&m, 1, 2);  /* new + started, two keys each */
	events_step_finished(&m, 1, 2); /* finished, two keys */
	CHECK_INT(events_count(&m), 7);
	/* a subscriber to other paths: still nothing read */
	struct events_sub *s = events_sub_new(m.events, NULL);
	consume(s, "builds/*/*");
	consume(s, "builds/9/steps/*/*");
	events_step_started(&m, 1, 2);
	events_step_finished(&m, 1, 2);
	CHECK_INT(events_publish(&m, "changes/1/new", NULL), 14);
	events_sub_free(s);
	events_free(m.events);
}

/* The limiter's output: what it lets through, counted (no database or
 * connection needed: the sink replaces the publish). */
static int sent_count;
static int64_t sent_step;

static void count_sent(struct master *m, int64_t buildid, int64_t stepid)
{
	(void)m;
	(void)buildid;
	sent_step = stepid;
	sent_count++;
}

static int sent_since(int *mark)
{
	int n = sent_count - *mark;
	*mark = sent_count;
	return n;
}

TEST(updated_is_rate_limited)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct master m = {0};
	m.loop = &loop;
	events_step_updated_sink(count_sent);
	int mark = 0;

	/* no bus, then nobody listening to step events: nothing kept or timed */
	events_step_updated(&m, 1, 2);
	m.events = events_new();
	struct events_sub *s = events_sub_new(m.events, NULL);
	consume(s, "builds/*/*");
	for (int i = 0; i < 50; i++)
		events_step_updated(&m, 1, 2);
	CHECK_INT(sent_since(&mark), 0);
	CHECK(!uv_loop_alive(&loop));

	/* a listener: a burst of 1,000 changes is one event now ... */
	consume(s, "builds/*/steps/*/*");
	uint64_t t0 = uv_now(&loop);
	for (int i = 0; i < 1000; i++)
		events_step_updated(&m, 1, 2);
	CHECK_INT(sent_since(&mark), 1);
	CHECK_INT(sent_step, 2);
	/* ... and one more when the interval ends (the last state), by a timer */
	CHECK(uv_loop_alive(&loop));
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_update_time(&loop);
	CHECK_INT(sent_since(&mark), 1);
	CHECK(uv_now(&loop) - t0 >= KILN_STEP_UPDATED_MIN_MS);

	/* another step has its own budget */
	events_step_updated(&m, 1, 3);
	CHECK_INT(sent_since(&mark), 1);
	CHECK_INT(sent_step, 3);

	/* a change long after the last event goes at once, no timer */
	usleep((KILN_STEP_UPDATED_MIN_MS + 20) * 1000);
	uv_update_time(&loop);
	events_step_updated(&m, 1, 2);
	CHECK_INT(sent_since(&mark), 1);
	uv_run(&loop, UV_RUN_NOWAIT);
	CHECK_INT(sent_since(&mark), 0);

	/* for 1.5 s, a change every 5 ms: at most one event per interval, and
	 * never a whole interval with changes but no event */
	uint64_t start = clock_mono_ms();
	int changes = 0;
	while (clock_mono_ms() - start < 1500) {
		events_step_updated(&m, 1, 2);
		changes++;
		usleep(5000);
		uv_update_time(&loop);
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	int n = sent_since(&mark);
	printf("# %d changes in 1.5 s: %d updated events\n", changes, n);
	CHECK(n >= 1500 / KILN_STEP_UPDATED_MIN_MS - 2); /* a loaded machine */
	CHECK(n <= 1500 / KILN_STEP_UPDATED_MIN_MS + 1);

	/* the step ends with a change waiting: forgotten, never sent */
	usleep((KILN_STEP_UPDATED_MIN_MS + 20) * 1000);
	uv_update_time(&loop);
	events_step_updated(&m, 1, 2);
	events_step_updated(&m, 1, 2);
	CHECK_INT(sent_since(&mark), 1);
	events_step_forget(&m, 2);
	events_step_forget(&m, 3);
	uv_run(&loop, UV_RUN_DEFAULT); /* closes the timers */
	CHECK_INT(sent_since(&mark), 0);
	events_step_forget(&m, 2); /* twice is fine */
	/* forgotten: its next change is sent at once, as a new step's */
	events_step_updated(&m, 1, 2);
	CHECK_INT(sent_since(&mark), 1);
	events_step_forget(&m, 2);

	events_sub_free(s);
	events_free(m.events);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&loop), 0);
	events_step_updated_sink(NULL);
}

int main(void)
{
	RUN(keys_in_buildbot_shape);
	RUN(wanted_matches_paths);
	RUN(unheard_events_are_only_numbered);
	RUN(updated_is_rate_limited);
	return tap_done();
}
