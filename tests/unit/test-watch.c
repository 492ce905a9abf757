/*
 * Unit tests for `kiln watch`'s model and formatting (src/client/cmd-watch.h):
 * builders and builds from REST-shaped JSON, result words and marks,
 * progress from eta_at, the name filter and the --once snapshot.
 */
#include "tap.h"
#include "client/cmd-watch.h"
#include "common/xalloc.h"

#include <stdlib.h>
#include <string.h>

static json_t *watch_json(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	if (!j)
		TAP_FAIL("bad test JSON: %s", e.text);
	return j;
}

static void watch_load(struct watch_state *s, const char *builders, const char *builds)
{
	json_t *b = watch_json(builders), *x = watch_json(builds);
	watch_state_set_builders(s, b);
	watch_state_add_builds(s, x);
	json_decref(b);
	json_decref(x);
}

TEST(builders_sorted_and_checked)
{
	struct watch_state s = {0};
	json_t *b = watch_json("[{\"builderid\":2,\"name\":\"zeta\"},{\"builderid\":1,\"name\":"
			       "\"alpha\"},{\"name\":\"noid\"},{\"builderid\":3},"
			       "{\"builderid\":4,\"name\":\"Mid\"}]");
	CHECK_INT(watch_state_set_builders(&s, b), 3);
	CHECK_STR(s.b[0].name, "Mid");
	CHECK_STR(s.b[1].name, "alpha");
	CHECK_STR(s.b[2].name, "zeta");
	CHECK(watch_state_find(&s, 2) == &s.b[2]);
	CHECK(watch_state_find(&s, 9) == NULL);
	/* a second load replaces, builds forgotten */
	CHECK_INT(watch_state_set_builders(&s, b), 3);
	CHECK_INT(s.b[0].last.buildid, 0);
	json_decref(b);
	watch_state_release(&s);
	CHECK_INT(s.n, 0);
}

TEST(builds_last_running_recent)
{
	struct watch_state s = {0};
	/* builds in no particular order; 7 is running; 3 appears twice (two lists) */
	watch_load(
		&s, "[{\"builderid\":1,\"name\":\"a\"},{\"builderid\":2,\"name\":\"b\"}]",
		"[{\"buildid\":3,\"builderid\":1,\"number\":3,\"complete\":true,\"results\":2},"
		" {\"buildid\":7,\"builderid\":1,\"number\":5,\"complete\":false,"
		"  \"results\":null,\"started_at\":100,\"eta_at\":160},"
		" {\"buildid\":5,\"builderid\":1,\"number\":4,\"complete\":true,\"results\":0},"
		" {\"buildid\":1,\"builderid\":1,\"number\":1,\"complete\":true,\"results\":1},"
		" {\"buildid\":3,\"builderid\":1,\"number\":3,\"complete\":true,\"results\":2},"
		" {\"buildid\":9,\"builderid\":77,\"number\":1,\"complete\":true,\"results\":0}]");
	const struct watch_builder *a = &s.b[0], *b = &s.b[1];
	CHECK_INT(a->last.buildid, 7);
	CHECK_INT(a->running.buildid, 7);
	CHECK_INT(a->running.results, -1);
	CHECK(a->running.eta_at == 160);
	CHECK_INT(a->nrecent, 3);
	CHECK_INT(a->recent[0], 0); /* build 5 */
	CHECK_INT(a->recent[1], 2); /* build 3, once */
	CHECK_INT(a->recent[2], 1); /* build 1 */
	CHECK_STR(watch_build_word(&a->running), "running");
	CHECK_INT(watch_build_look(&a->running), WATCH_RUNNING);
	CHECK_INT(b->last.buildid, 0);
	CHECK_STR(watch_build_word(&b->last), "idle");
	CHECK_INT(watch_build_look(&b->last), WATCH_IDLE);
	watch_state_release(&s);
}

TEST(recent_capped_newest_first)
{
	struct watch_state s = {0};
	json_t *builds = json_array();
	watch_load(&s, "[{\"builderid\":1,\"name\":\"a\"}]", "[]");
	for (int i = 1; i <= 3 * WATCH_MARKS; i++)
		json_array_append_new(builds,
				      json_pack("{s:i,s:i,s:i,s:b,s:i}", "buildid", i, "builderid",
						1, "number", i, "complete", 1, "results", i % 3));
	watch_state_add_builds(&s, builds);
	CHECK_INT(s.b[0].nrecent, WATCH_MARKS);
	CHECK_INT(s.b[0].recent_ids[0], 3 * WATCH_MARKS);
	CHECK_INT(s.b[0].recent_ids[WATCH_MARKS - 1], 2 * WATCH_MARKS + 1);
	CHECK_INT(s.b[0].last.number, 3 * WATCH_MARKS);
	CHECK_STR(watch_build_word(&s.b[0].last), "success"); /* 30 % 3 */
	json_decref(builds);
	watch_state_release(&s);
}

TEST(words_looks_marks)
{
	struct watch_build b = {.buildid = 1, .complete = true};
	static const char *const words[] = {"success",   "warnings", "failure",  "skipped",
					    "exception", "retry",    "cancelled"};
	static const enum watch_look looks[] = {WATCH_SUCCESS,   WATCH_WARNINGS,  WATCH_FAILURE,
						WATCH_CANCELLED, WATCH_EXCEPTION, WATCH_EXCEPTION,
						WATCH_CANCELLED};
	for (int r = 0; r < 7; r++) {
		b.results = r;
		CHECK_STR(watch_build_word(&b), words[r]);
		CHECK_INT(watch_build_look(&b), looks[r]);
	}
	b.results = 42;
	CHECK_STR(watch_build_word(&b), "unknown");
	CHECK_INT(watch_result_mark(0), 's');
	CHECK_INT(watch_result_mark(1), 'w');
	CHECK_INT(watch_result_mark(2), 'F');
	CHECK_INT(watch_result_mark(4), 'E');
	CHECK_INT(watch_result_mark(6), 'C');
	CHECK_INT(watch_result_mark(-1), '?');
	CHECK_INT(watch_result_mark(7), '?');
}

TEST(progress)
{
	char out[128];

	CHECK_INT(watch_format_progress(130, 100, 160, 10, out, sizeof(out)), 50);
	CHECK_STR(out, "[#####.....]  50% 30s left");
	CHECK_INT(watch_format_progress(100, 100, 160, 4, out, sizeof(out)), 0);
	CHECK_STR(out, "[....]   0% 1m00s left");
	CHECK_INT(watch_format_progress(172, 100, 160, 4, out, sizeof(out)), 100);
	CHECK_STR(out, "[####] overdue 12s");
	CHECK_INT(watch_format_progress(130, 100, 160, 0, out, sizeof(out)), 50);
	CHECK_STR(out, " 50% 30s left");
	/* no estimate, or a nonsense one */
	CHECK_INT(watch_format_progress(165, 100, 0, 10, out, sizeof(out)), -1);
	CHECK_STR(out, "running 1m05s");
	CHECK_INT(watch_format_progress(165, 100, 90, 10, out, sizeof(out)), -1);
	CHECK_STR(out, "running 1m05s");
	/* a clock behind the start */
	CHECK_INT(watch_format_progress(90, 100, 160, 10, out, sizeof(out)), 0);
	/* a huge bar is capped, a small buffer truncated, never overflowed */
	watch_format_progress(130, 100, 160, 100000, out, sizeof(out));
	CHECK_INT(strlen(out) < sizeof(out), 1);
	char tiny[8];
	watch_format_progress(130, 100, 160, 10, tiny, sizeof(tiny));
	CHECK_STR(tiny, "[#####.");
}

TEST(filter)
{
	CHECK(watch_filter_match("linux-gcc", ""));
	CHECK(watch_filter_match("linux-gcc", "gcc"));
	CHECK(watch_filter_match("linux-gcc", "LINUX"));
	CHECK(watch_filter_match("linux-gcc", "linux-gcc"));
	CHECK(!watch_filter_match("linux-gcc", "clang"));
	CHECK(!watch_filter_match("gcc", "linux-gcc"));
}

TEST(once_snapshot)
{
	struct watch_state s = {0};
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	watch_load(&s,
		   "[{\"builderid\":1,\"name\":\"ok\"},{\"builderid\":2,\"name\":\"slow\"},"
		   " {\"builderid\":3,\"name\":\"new\"}]",
		   "[{\"buildid\":1,\"builderid\":1,\"number\":1,\"complete\":true,\"results\":0},"
		   " {\"buildid\":2,\"builderid\":1,\"number\":2,\"complete\":true,\"results\":2},"
		   " {\"buildid\":3,\"builderid\":2,\"number\":1,\"complete\":true,\"results\":0},"
		   " {\"buildid\":4,\"builderid\":2,\"number\":2,\"complete\":false,"
		   "  \"started_at\":1000,\"eta_at\":1040}]");
	snprintf(s.b[2].step, sizeof(s.b[2].step), "compile"); /* slow */
	f = open_memstream(&text, &len);
	watch_print_once(&s, "http://m:1", "", 1010, f);
	fclose(f);
	/* the header has a local time: check the table lines */
	CHECK(!strncmp(text, "kiln watch  http://m:1  ", 24));
	CHECK(strstr(text,
		     "\nBUILDER  LAST     BUILD  STEP     PROGRESS                    RECENT\n"));
	CHECK(strstr(text, "\nnew      idle     -      -        -                           -\n"));
	CHECK(strstr(text, "\nok       failure  #2     -        -                           Fs\n"));
	CHECK(strstr(text, "\nslow     running  #2     compile  [###.......]  25% 30s left  s\n"));
	free(text);

	f = open_memstream(&text, &len);
	watch_print_once(&s, "http://m:1", "LO", 1010, f);
	fclose(f);
	CHECK(strstr(text, "\nslow ") && !strstr(text, "\nok ") && !strstr(text, "\nnew "));
	free(text);

	f = open_memstream(&text, &len);
	watch_print_once(&s, "http://m:1", "nosuch", 1010, f);
	fclose(f);
	CHECK(strstr(text, "\nno builder matches the filter\n"));
	free(text);
	watch_state_release(&s);
}

int main(void)
{
	RUN(builders_sorted_and_checked);
	RUN(builds_last_running_recent);
	RUN(recent_capped_newest_first);
	RUN(words_looks_marks);
	RUN(progress);
	RUN(filter);
	RUN(once_snapshot);
	return tap_done();
}
