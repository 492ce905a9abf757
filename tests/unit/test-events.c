/*
 * Unit tests for src/master/events.c: Buildbot's subscription path
 * matching ("*" is exactly one segment) and the bus's sequence numbers.
 * Delivery over a real /ws is covered by tests/e2e/t0350-events.sh.
 */
#include "tap.h"
#include "master/events.h"
#include "master/master.h"

#include <stdlib.h>

TEST(match_star_is_one_segment)
{
	CHECK(events_path_match("changes/*/*", "changes/12/new"));
	CHECK(events_path_match("builds/*/*", "builds/5/finished"));
	CHECK(events_path_match("builders/*/builds/*/*", "builders/7/builds/8/new"));
	CHECK(!events_path_match("changes/*/*", "changes/12"));
	CHECK(!events_path_match("changes/*/*", "changes/12/new/x"));
	CHECK(!events_path_match("changes/*", "changes/12/new"));
	CHECK(!events_path_match("builds/*/*", "buildsets/1/new"));
	CHECK(!events_path_match("build/*/*", "builds/1/new"));
	CHECK(!events_path_match("*/*/*", "a//b")); /* an empty segment is not a segment */
	CHECK(events_path_match("*/*/*", "a/b/c"));
}

TEST(match_literal)
{
	CHECK(events_path_match("builds/5/finished", "builds/5/finished"));
	CHECK(events_path_match("builds/5/*", "builds/5/new"));
	CHECK(!events_path_match("builds/5/*", "builds/50/new"));
	CHECK(!events_path_match("builds/50/*", "builds/5/new"));
	CHECK(!events_path_match("builds/5/new", "builds/5/ne"));
	CHECK(!events_path_match("", "builds"));
	CHECK(events_path_match("*", "builds"));
	CHECK(!events_path_match(NULL, "builds"));
}

TEST(publish_numbers_events)
{
	struct master m = {0};
	/* no bus: the message is released, nothing numbered */
	CHECK_INT(events_publish(&m, "changes/1/new", json_object()), 0);
	m.events = events_new();
	CHECK_INT(events_publish(&m, "changes/1/new", json_object()), 1);
	CHECK_INT(events_publish(&m, "changes/2/new", NULL), 2);
	/* a subscriber with no paths receives nothing (no connection needed) */
	struct events_sub *s = events_sub_new(m.events, NULL);
	CHECK_INT(events_publish(&m, "builds/1/new", json_pack("{s:i}", "buildid", 1)), 3);
	events_free(m.events);
	events_sub_free(s); /* after the bus: detached, still freed */
}

int main(void)
{
	RUN(match_star_is_one_segment);
	RUN(match_literal);
	RUN(publish_numbers_events);
	return tap_done();
}
