/*
 * Unit tests for src/master/events-steps.c (slice "uibuild"): Buildbot
 * 3.7's step event keys, the bus's cheap "anyone subscribed?" check, and
 * the no-listener path that only numbers the events (it must not touch the
 * database: these tests give it none, so a read would crash).  Delivery of
 * the step entity over a real /ws is tests/e2e/t1021-api-steps-rebuild.sh.
 */
#include "tap.h"
#include "master/events-steps.h"
#include "master/events.h"
#include "master/master.h"

#include <stdlib.h>
#include <string.h>

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

int main(void)
{
	RUN(keys_in_buildbot_shape);
	RUN(wanted_matches_paths);
	RUN(unheard_events_are_only_numbered);
	return tap_done();
}
