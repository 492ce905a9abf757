/*
 * Unit tests for src/master/events.c: Buildbot's subscription path
 * matching ("*" is exactly one segment) and the bus's sequence numbers.
 * Delivery over a real /ws is covered by tests/e2e/t0350-events.sh.
 */
#include "tap.h"
#include "wait.h"
#include "db/db.h"
#include "master/events.h"
#include "master/master.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* What a listener heard, in order: "key name-or-dash" per event. */
static char heard[1024];
static int nheard;

static void hear(void *ud, const char *key, json_t *msg)
{
	(void)ud;
	const char *name = json_string_value(json_object_get(msg, "name"));
	size_t len = strlen(heard);
	snprintf(heard + len, sizeof(heard) - len, "%s%s %s", len ? ", " : "", key,
		 name ? name : "-");
	nheard++;
}

static bool heard_n(void *arg)
{
	return nheard >= *(int *)arg;
}

/* A master with a loop, an in-memory database holding builder "one"
 * (*b1), and a bus whose listeners write to heard; false if it cannot open. */
static bool master_up(uv_loop_t *loop, struct master *m, int64_t *b1)
{
	uv_loop_init(loop);
	*m = (struct master){.loop = loop};
	if (db_open(loop, "sqlite::memory:", NULL, &m->db) < 0) {
		TAP_FAIL("db_open: %s", db_open_errmsg());
		return false;
	}
	CHECK_INT(db_builder_ensure(m->db, "one", NULL, NULL, b1), 0);
	m->events = events_new();
	heard[0] = '\0';
	nheard = 0;
	return true;
}

static void master_down(uv_loop_t *loop, struct master *m)
{
	events_free(m->events);
	db_close(m->db);
	uv_run(loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(loop), 0);
}

/* Rows are read on the loop (issue 14): an event published after one whose
 * row is being read waits for it, so listeners and subscribers get them in
 * publishing order; a row that is not there is only numbered, and what
 * waits behind it still goes. */
TEST(rows_keep_publishing_order)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct master m = {.loop = &loop};
	if (db_open(&loop, "sqlite::memory:", NULL, &m.db) < 0) {
		TAP_FAIL("db_open: %s", db_open_errmsg());
		return;
	}
	int64_t b1, b2;
	CHECK_INT(db_builder_ensure(m.db, "one", NULL, NULL, &b1), 0);
	CHECK_INT(db_builder_ensure(m.db, "two", NULL, NULL, &b2), 0);
	m.events = events_new();
	events_listen(m.events, "builders/*/*", hear, NULL);
	events_listen(m.events, "changes/*/*", hear, NULL);
	heard[0] = '\0';
	nheard = 0;
	events_publish_row(&m, DB_BUILDERS, "builders", "builderid", b1, "new");
	CHECK_INT(events_publish(&m, "changes/1/new", NULL), 0);                  /* held back */
	events_publish_row(&m, DB_BUILDERS, "builders", "builderid", 999, "new"); /* no row */
	CHECK_INT(events_count(&m), 0);                                           /* held back */
	events_publish_row(&m, DB_BUILDERS, "builders", "builderid", b2, "new");
	CHECK_STR(heard, ""); /* nothing before the first row is in */
	int want = 3;
	CHECK(test_run_until(&loop, heard_n, &want, TEST_GUARD_MS));
	CHECK_STR(heard, "builders/1/new one, changes/1/new -, builders/2/new two");
	/* 5 numbered: the missing row's event and the count among them */
	CHECK_INT(events_publish(&m, "changes/2/new", NULL), 6);
	/* a bus freed with a read in flight: the answer goes nowhere */
	events_publish_row(&m, DB_BUILDERS, "builders", "builderid", b1, "new");
	events_free(m.events);
	m.events = NULL;
	db_close(m.db);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&loop), 0);
	CHECK_INT(nheard, 4);
}

/* Past the cap, a held event no listener wants is only numbered; what a
 * listener wants is kept, and the numbering goes on. */
TEST(held_events_capped)
{
	uv_loop_t loop;
	struct master m;
	int64_t b1;
	if (!master_up(&loop, &m, &b1))
		return;
	events_set_held_cap(m.events, 4096);
	events_listen(m.events, "builders/*/*", hear, NULL);
	events_listen(m.events, "changes/*/new", hear, NULL);
	events_publish_row(&m, DB_BUILDERS, "builders", "builderid", b1, "new");
	char big[3000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	/* logs: no listener; the first fits, the second and third do not */
	for (int i = 0; i < 3; i++)
		CHECK_INT(events_publish(&m, "logs/1/append", json_pack("{s:s}", "t", big)), 0);
	/* a listener's event is kept past the cap */
	CHECK_INT(events_publish(&m, "changes/1/new", json_pack("{s:s}", "t", big)), 0);
	CHECK_INT(events_held_dropped(m.events), 2);
	int want = 2;
	CHECK(test_run_until(&loop, heard_n, &want, TEST_GUARD_MS));
	CHECK_STR(heard, "builders/1/new one, changes/1/new -");
	CHECK_INT(events_publish(&m, "changes/2/new", NULL), 6);
	master_down(&loop, &m);
}

TEST(remote_lines)
{
	uv_loop_t loop;
	struct master m;
	int64_t b1;
	if (!master_up(&loop, &m, &b1))
		return;
	events_listen(m.events, "builders/*/*", hear, NULL);
	/* another master's lines: only ours are taken, each key naming the row */
	static const char *const bad[] = {
		"x", "e", "e builds", "e builds 0 builds/0/new", "e nosuch 1 nosuch/1/new",
		"e builds 1", "e builds 1 builds/2/new", "e builds 1x builds/1/new",
		"e builds 1 builds/1/a builds/1/b builds/1/c builds/1/d builds/1/e",
		"e builds -1 builds/-1/new",
		/* a message that is no row's: a known kind of key, a JSON object */
		"m", "m buildsets/1/failing", "m nosuch/1/x {}", "m buildsets/1/failing [1]",
		"m buildsets/1/failing {\"bsid\": 1", "m buildsets/1/fail ing {}",
		"m buildsets/1/fa\x01iling {}", "m buildsets/1/failing {\"a\":1,\"a\":2}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (events_remote_line(&m, bad[i]) != -EINVAL)
			TAP_FAIL("'%s' taken", bad[i]);
	/* a good one is for the /ws subscribers only: this master's reporters
	 * (listeners) do not get the other masters' events */
	CHECK_INT(events_remote_line(&m, "e builders 1 builders/1/new"), 0);
	CHECK_INT(events_remote_line(&m, "m builders/1/started {\"builderid\":1,\"masterid\":2,"
					 "\"name\":\"b\"}"),
		  0);
	CHECK_INT(events_remote_line(&m, "m buildsets/7/failing {\"bsid\":7,\"results\":2}"), 0);
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_run(&loop, UV_RUN_NOWAIT);
	CHECK_INT(nheard, 0);
	/* with forwarding on, every key is wanted (the other masters' subscribers) */
	CHECK(!events_wanted(&m, "logs/1/append"));
	CHECK(!events_wanted_like(&m, "logs/*/*"));
	events_forward(m.events, true);
	CHECK(events_forwarding(m.events));
	CHECK(events_wanted(&m, "logs/1/append"));
	CHECK(events_wanted_like(&m, "logs/*/*"));
	/* this master's own events still reach its listeners */
	events_publish_row(&m, DB_BUILDERS, "builders", "builderid", b1, "started");
	int want = 1;
	CHECK(test_run_until(&loop, heard_n, &want, TEST_GUARD_MS));
	CHECK_STR(heard, "builders/1/started one");
	/* a message that is no row's goes to the other masters too (a line per
	 * message; too long for one: logged, not sent) and to this master's own */
	events_publish(&m, "builders/1/stopped", json_pack("{s:i}", "builderid", 1));
	char huge[2048];
	memset(huge, 'x', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	events_publish(&m, "builders/1/stopped", json_pack("{s:s}", "pad", huge));
	want = 3;
	CHECK(test_run_until(&loop, heard_n, &want, TEST_GUARD_MS));
	events_remote_lost(&m); /* no subscriber: nothing to tell */
	events_forward(m.events, false);
	master_down(&loop, &m);
}

int main(void)
{
	RUN(match_star_is_one_segment);
	RUN(match_literal);
	RUN(publish_numbers_events);
	RUN(rows_keep_publishing_order);
	RUN(held_events_capped);
	RUN(remote_lines);
	return tap_done();
}
