/*
 * Unit tests for what the console and grid views ask of the REST API (slice
 * "console"): GET /api/v2/changes/builds?changeid=1,2 — for a page of
 * changes, the latest build of each (change, builder) made from the change
 * (change -> buildset_changes -> buildrequests -> builds), in one answer:
 * its shape, which build wins a cell, that a revision string shared by two
 * changes or a build of no change never lands in the wrong cell, the caps
 * (changeids per request, rows per answer) and bad input.  A real
 * http_server on a real loop and a SQLite database filled through db.h; the
 * checks run in a client thread with libcurl.
 */
#include "tap.h"
#include "api-harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/master.h"

static int64_t b0, b1, b2, change1, change2, change3;
static int64_t old_a, new_a, forced, other_branch, both, running;

/* GET path, asking for compact JSON; the answer parsed, *status set. */
static json_t *call(const char *path, long *status)
{
	return api_call(path, NULL, API_ACCEPT_JSON, status, NULL);
}

static json_t *get_ok(const char *path)
{
	return api_get_ok_as(path, API_ACCEPT_JSON);
}

/* "changeid:builderid=buildid ..." of an answer, in order */
static void cells(json_t *doc, char *out, size_t n)
{
	size_t i, off = 0;
	json_t *b;
	out[0] = '\0';
	json_array_foreach(json_object_get(doc, "builds"), i, b)
	{
		off += (size_t)snprintf(out + off, n - off, "%s%lld:%lld=%lld", i ? " " : "",
					json_integer_value(json_object_get(b, "changeid")),
					json_integer_value(json_object_get(b, "builderid")),
					json_integer_value(json_object_get(b, "buildid")));
		if (off >= n)
			break;
	}
}

/* the 400 answer of path names what is wrong */
static void check_400(const char *path, const char *words)
{
	long st = 0;
	json_t *d = call(path, &st);
	CHECK_INT(st, 400);
	const char *msg = json_string_value(json_object_get(d, "error"));
	CHECK(msg && strstr(msg, words));
	if (!msg || !strstr(msg, words))
		printf("# %s: %s\n", path, msg ? msg : "(no error)");
	json_decref(d);
}

TEST(cells_shape)
{
	char path[128], got[256], want[256];
	snprintf(path, sizeof(path), "changes/builds?changeid=%lld,%lld,%lld", (long long)change1,
		 (long long)change2, (long long)change3);
	json_t *d = get_ok(path);
	cells(d, got, sizeof(got));
	/* newest change first, then by builder; the latest build of a cell wins
	 * (new_a, not old_a); the forced build of b0 (no change) is nowhere;
	 * change2 has change1's revision on another branch: its own builds only */
	snprintf(want, sizeof(want), "%lld:%lld=%lld %lld:%lld=%lld %lld:%lld=%lld %lld:%lld=%lld",
		 (long long)change3, (long long)b2, (long long)running, (long long)change2,
		 (long long)b1, (long long)both, (long long)change1, (long long)b0,
		 (long long)new_a, (long long)change1, (long long)b1, (long long)both);
	CHECK_STR(got, want);
	(void)other_branch;
	json_t *meta = json_object_get(d, "meta");
	CHECK_INT(json_integer_value(json_object_get(meta, "total")), 4);
	CHECK(json_is_false(json_object_get(meta, "truncated")));

	/* one row's fields: only those, typed */
	json_t *row = json_array_get(json_object_get(d, "builds"), 2);
	CHECK_INT(json_object_size(row), 9);
	CHECK_INT(json_integer_value(json_object_get(row, "number")), 2);
	CHECK_INT(json_integer_value(json_object_get(row, "results")), 0);
	CHECK(json_is_true(json_object_get(row, "complete")));
	CHECK_INT(json_integer_value(json_object_get(row, "started_at")), 1795377002);
	CHECK_INT(json_integer_value(json_object_get(row, "complete_at")), 1795377003);
	CHECK_STR(json_string_value(json_object_get(row, "state_string")), "done");
	/* a running build: no results yet */
	row = json_array_get(json_object_get(d, "builds"), 0);
	CHECK(json_is_null(json_object_get(row, "results")));
	CHECK(json_is_false(json_object_get(row, "complete")));
	CHECK(json_is_null(json_object_get(row, "complete_at")));
	json_decref(d);

	/* repeated parameters add ids; an unknown change has no cells */
	snprintf(path, sizeof(path), "changes/builds?changeid=%lld&changeid=999",
		 (long long)change2);
	d = get_ok(path);
	cells(d, got, sizeof(got));
	snprintf(want, sizeof(want), "%lld:%lld=%lld", (long long)change2, (long long)b1,
		 (long long)both);
	CHECK_STR(got, want);
	json_decref(d);

	/* ?field= keeps only those keys (the console's small answer) */
	snprintf(path, sizeof(path), "changes/builds?changeid=%lld&field=changeid&field=buildid",
		 (long long)change2);
	d = get_ok(path);
	json_t *only = json_array_get(json_object_get(d, "builds"), 0);
	CHECK_INT(json_object_size(only), 2);
	CHECK_INT(json_integer_value(json_object_get(only, "buildid")), both);
	json_decref(d);

	d = get_ok("changes/builds?changeid=999");
	CHECK_INT(json_array_size(json_object_get(d, "builds")), 0);
	json_decref(d);
}

TEST(cells_caps)
{
	char path[128];
	/* ?limit= caps the rows; meta says the answer was cut */
	snprintf(path, sizeof(path), "changes/builds?changeid=%lld,%lld&limit=1",
		 (long long)change1, (long long)change2);
	json_t *d = get_ok(path);
	CHECK_INT(json_array_size(json_object_get(d, "builds")), 1);
	CHECK(json_is_true(json_object_get(json_object_get(d, "meta"), "truncated")));
	json_decref(d);
	snprintf(path, sizeof(path), "changes/builds?changeid=%lld&limit=0", (long long)change1);
	d = get_ok(path);
	CHECK_INT(json_array_size(json_object_get(d, "builds")), 0);
	json_decref(d);

	/* 500 ids are accepted, 501 are not */
	size_t cap = 8192, off = 0;
	char *q = xmalloc(cap);
	off += (size_t)snprintf(q + off, cap - off, "changes/builds?changeid=");
	for (int i = 1; i <= 500; i++)
		off += (size_t)snprintf(q + off, cap - off, "%s%d", i > 1 ? "," : "", i);
	d = get_ok(q);
	CHECK_INT(json_array_size(json_object_get(d, "builds")), 4); /* the cells of 1..3 */
	json_decref(d);
	snprintf(q + off, cap - off, ",501");
	check_400(q, "too many changeids: at most 500");
	free(q);
}

TEST(cells_bad_input)
{
	check_400("changes/builds", "missing changeid");
	check_400("changes/builds?changeid=", "invalid changeid ''");
	check_400("changes/builds?changeid=x", "invalid changeid 'x'");
	check_400("changes/builds?changeid=0", "invalid changeid '0'");
	check_400("changes/builds?changeid=-1", "invalid changeid '-1'");
	check_400("changes/builds?changeid=1,,2", "invalid changeid ''");
	check_400("changes/builds?changeid=1,", "invalid changeid ''");
	check_400("changes/builds?changeid=99999999999999999999999", "invalid changeid");
	check_400("changes/builds?changeid=1&limit=x", "invalid limit");
	check_400("changes/builds?changeid=1&limit=-2", "invalid limit");
	check_400("changes/builds?changeid=1&branch=main", "unrecognized query parameter 'branch'");
	check_400("changes/builds?changeid=1&field=properties", "no such field 'properties'");
	/* still answering */
	json_t *d = get_ok("changes/builds?changeid=1");
	CHECK(json_is_array(json_object_get(d, "builds")));
	json_decref(d);
}

static void client(void)
{
	RUN(cells_shape);
	RUN(cells_caps);
	RUN(cells_bad_input);
}

static void fill_db(struct db *db, int64_t masterid)
{
	double now = 1795377000;
	db_builder_ensure(db, "b0", NULL, "[]", &b0);
	db_builder_ensure(db, "b1", NULL, "[]", &b1);
	db_builder_ensure(db, "b2", NULL, "[]", &b2);
	struct db_change_new cn = {.author = "A <a@x>",
				   .comments = "fix",
				   .branch = "main",
				   .revision = "abc",
				   .when_timestamp = now};
	int64_t ssid;
	if (db_change_add(db, &cn, &change1, &ssid) < 0)
		TAP_FAIL("change: %s", db_errmsg(db));
	cn.branch = "release"; /* the same revision string on another branch */
	if (db_change_add(db, &cn, &change2, &ssid) < 0)
		TAP_FAIL("change: %s", db_errmsg(db));
	cn.branch = "main";
	cn.revision = "def";
	if (db_change_add(db, &cn, &change3, &ssid) < 0)
		TAP_FAIL("change: %s", db_errmsg(db));
	old_a = api_add_build(db, masterid, b0, &change1, 1, "main", "s", now, 2);
	new_a = api_add_build(db, masterid, b0, &change1, 1, "main", "s", now + 2, 0);
	forced = api_add_build(db, masterid, b0, NULL, 0, "main", "s", now + 4, 2); /* no change */
	other_branch = api_add_build(db, masterid, b1, &change2, 1, "release", "s", now + 5, 2);
	int64_t two[] = {change1, change2};
	both = api_add_build(db, masterid, b1, two, 2, "main", "s", now + 6, 0);
	running = api_add_build(db, masterid, b2, &change3, 1, "main", "s", now + 8, -1);
	if (db_flush(db) < 0)
		TAP_FAIL("flush: %s", db_errmsg(db));
}

int main(void)
{
	struct api_harness h = {.name = "uiconsole", .fill_db = fill_db, .client = client};
	return API_HARNESS_MAIN(&h);
}
