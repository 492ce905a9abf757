/*
 * The reporters' one filter model (src/master/reporters/reporters.c): result
 * modes against the previous build, builders by name and glob, tags, branches.
 */
#include "tap.h"
#include "config/config.h"
#include "db/db.h"
#include "master/events.h"
#include "master/master.h"
#include "master/reporters/reporters.h"

#include <string.h>

static const char *const tags_lib[] = {"lib", "fast"};

static struct report_build rb_of(const char *builder, const char *branch, int results, int prev)
{
	return (struct report_build){.builder = builder,
				     .tags = tags_lib,
				     .ntags = 2,
				     .branch = branch,
				     .results = results,
				     .prev_results = prev,
				     .url = ""};
}

static bool pass(unsigned modes, int results, int prev)
{
	struct config_report_filter f = {.modes = modes};
	struct report_build rb = rb_of("b", "main", results, prev);
	return reporters_filter_match(&f, &rb);
}

TEST(modes)
{
	const int S = RESULTS_SUCCESS, W = RESULTS_WARNINGS, F = RESULTS_FAILURE,
		  E = RESULTS_EXCEPTION, N = RESULTS_NONE;
	CHECK(pass(CONFIG_REPORT_ALL, S, S));
	CHECK(pass(CONFIG_REPORT_ALL, RESULTS_CANCELLED, N));
	CHECK(pass(CONFIG_REPORT_FAILING, F, F));
	CHECK(!pass(CONFIG_REPORT_FAILING, S, F));
	CHECK(!pass(CONFIG_REPORT_FAILING, W, S));
	CHECK(!pass(CONFIG_REPORT_FAILING, E, S));
	/* problem: success (or nothing) to failure, not failure to failure */
	CHECK(pass(CONFIG_REPORT_PROBLEM, F, S));
	CHECK(pass(CONFIG_REPORT_PROBLEM, F, N));
	CHECK(pass(CONFIG_REPORT_PROBLEM, F, W));
	CHECK(!pass(CONFIG_REPORT_PROBLEM, F, F));
	CHECK(!pass(CONFIG_REPORT_PROBLEM, S, F));
	/* change: any change of result, none for the first build */
	CHECK(pass(CONFIG_REPORT_CHANGE, F, S));
	CHECK(pass(CONFIG_REPORT_CHANGE, S, F));
	CHECK(pass(CONFIG_REPORT_CHANGE, W, S));
	CHECK(!pass(CONFIG_REPORT_CHANGE, S, S));
	CHECK(!pass(CONFIG_REPORT_CHANGE, F, F));
	CHECK(!pass(CONFIG_REPORT_CHANGE, F, N));
	CHECK(pass(CONFIG_REPORT_WARNINGS, W, W));
	CHECK(!pass(CONFIG_REPORT_WARNINGS, F, S));
	CHECK(pass(CONFIG_REPORT_EXCEPTION, E, E));
	CHECK(!pass(CONFIG_REPORT_EXCEPTION, F, S));
	CHECK(pass(CONFIG_REPORT_PASSING, S, S));
	/* several modes: any of them */
	CHECK(pass(CONFIG_REPORT_FAILING | CONFIG_REPORT_CHANGE, S, F));
	CHECK(pass(CONFIG_REPORT_FAILING | CONFIG_REPORT_CHANGE, F, F));
	CHECK(!pass(CONFIG_REPORT_FAILING | CONFIG_REPORT_CHANGE, S, S));
	CHECK(!pass(0, F, S));
}

TEST(builders_tags_branches)
{
	char *builders[] = {"lib-*", "app"};
	char *tags[] = {"fast"};
	char *other_tags[] = {"slow"};
	char *branches[] = {"main", "release/*"};
	struct config_report_filter f = {
		.modes = CONFIG_REPORT_ALL, .builders = builders, .nbuilders = 2};
	struct report_build rb = rb_of("lib-x", "main", RESULTS_SUCCESS, RESULTS_NONE);
	CHECK(reporters_filter_match(&f, &rb));
	rb.builder = "app";
	CHECK(reporters_filter_match(&f, &rb));
	rb.builder = "application";
	CHECK(!reporters_filter_match(&f, &rb));
	rb.builder = "app";
	f.tags = tags;
	f.ntags = 1;
	CHECK(reporters_filter_match(&f, &rb));
	f.tags = other_tags;
	CHECK(!reporters_filter_match(&f, &rb));
	f.tags = NULL;
	f.ntags = 0;
	f.branches = branches;
	f.nbranches = 2;
	CHECK(reporters_filter_match(&f, &rb));
	rb.branch = "release/1.0";
	CHECK(reporters_filter_match(&f, &rb));
	rb.branch = "feature";
	CHECK(!reporters_filter_match(&f, &rb));
	rb.branch = NULL; /* a build without a branch never matches a branch list */
	CHECK(!reporters_filter_match(&f, &rb));
}

TEST(results_names)
{
	CHECK_STR(reporters_results_name(RESULTS_SUCCESS), "success");
	CHECK_STR(reporters_results_name(RESULTS_FAILURE), "failure");
	CHECK_STR(reporters_results_name(RESULTS_CANCELLED), "cancelled");
	CHECK_STR(reporters_results_name(99), "unknown");
}

/* The in-process listener the reporters use (events.c). */
static int heard;
static int64_t heard_id;
static void on_event(void *ud, const char *key, json_t *msg)
{
	heard++;
	heard_id = json_integer_value(json_object_get(msg, "buildid"));
	CHECK(ud == &heard);
}

TEST(event_listener)
{
	struct master m = {0};
	m.events = events_new();
	CHECK(!events_wanted(&m, "builds/3/finished"));
	events_listen(m.events, "builds/*/finished", on_event, &heard);
	CHECK(events_wanted(&m, "builds/3/finished"));
	CHECK(!events_wanted(&m, "builds/3/new"));
	CHECK_INT(events_publish(&m, "builds/3/new", json_pack("{s:i}", "buildid", 3)), 1);
	CHECK_INT(heard, 0);
	CHECK_INT(events_publish(&m, "builds/3/finished", json_pack("{s:i}", "buildid", 3)), 2);
	CHECK_INT(heard, 1);
	CHECK_INT(heard_id, 3);
	events_unlisten(m.events, on_event, &heard);
	events_publish(&m, "builds/4/finished", NULL);
	CHECK_INT(heard, 1);
	CHECK(!events_wanted(&m, "builds/4/finished"));
	/* events_free drops listeners still attached */
	events_listen(m.events, "builds/*/finished", on_event, &heard);
	events_free(m.events);
}

int main(void)
{
	RUN(event_listener);
	RUN(modes);
	RUN(builders_tags_branches);
	RUN(results_names);
	return tap_done();
}
