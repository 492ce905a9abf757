/*
 * Push submissions on both backends (db.h "results pushed from outside",
 * issue 14; db-sqlite-push.c, and db-pg-push.c on a real PostgreSQL
 * server): a pushed bag stored in one write (db_push_atomic: its build
 * added without a number, a step, a log, the submission row), appended to
 * and finished, counted per token and package (db_push_count_async), read
 * back (db_push_get_async, db_push_latest_async) and the expected
 * reporters' state written and read: the same calls on two fresh
 * databases must give the same transcript.  On PostgreSQL a bag whose ids
 * the reserves do not hold is refused before anything is written.
 */
#include "tap.h"
#include "pg-test.h"
#include "wait.h"
#include "pg-alike.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/buf.h"
#include "common/err.h"
#include "db/db.h"

#define diag(...) (printf("# "), printf(__VA_ARGS__), printf("\n"))

static char dir[] = "/tmp/kiln-test-pgpush.XXXXXX";
static uv_loop_t loop;

/* ---- waiting for one answer ---------------------------------------------------------- */

struct answer {
	bool done;
	int r;
	int64_t id;
	json_t *items; /* owned */
	char text[512];
};

static bool answered(void *arg)
{
	return ((struct answer *)arg)->done;
}

static void on_id(void *arg, int r, int64_t id, const char *err)
{
	struct answer *a = arg;
	a->done = true;
	a->r = r;
	a->id = id;
	snprintf(a->text, sizeof(a->text), "r=%d n=%lld err=%s", r, (long long)id,
		 r < 0 && err ? err : "");
}

static void on_list(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct answer *a = arg;
	(void)total;
	a->done = true;
	a->r = r;
	a->items = items;
	snprintf(a->text, sizeof(a->text), "r=%d err=%s", r, r < 0 && err ? err : "");
}

static void on_commit(void *arg, int r, const char *err)
{
	struct answer *a = arg;
	a->done = true;
	a->r = r;
	snprintf(a->text, sizeof(a->text), "commit r=%d %s", r, err ? err : "");
}

/* Waits for a's answer of a call that returned send_r (0 expected). */
static bool wait_answer(int send_r, struct answer *a)
{
	CHECK_INT(send_r, 0);
	if (send_r < 0)
		return false;
	CHECK(!a->done); /* never from inside the call */
	bool ok = test_run_until(&loop, answered, a, TEST_GUARD_MS);
	CHECK(ok);
	return ok;
}

/* The rows as a transcript line, without the keys named (ids and times a
 * backend chooses itself). */
static void line_rows(struct buf *out, const char *what, json_t *items, const char *const *drop)
{
	size_t i;
	json_t *row;
	json_array_foreach(items, i, row)
	{
		for (const char *const *k = drop; *k; k++)
			json_object_del(row, *k);
	}
	char *s = json_dumps(items, JSON_COMPACT | JSON_SORT_KEYS);
	pg_alike_line(out, what, s ? s : "(cannot encode)");
	free(s);
}

static void commit(struct db *db, struct buf *out, const char *what)
{
	struct answer a = {0};
	db_commit_then(db, on_commit, &a);
	if (!a.done)
		CHECK(test_run_until(&loop, answered, &a, TEST_GUARD_MS));
	pg_alike_line(out, what, a.text);
}

/* ---- the script ------------------------------------------------------------------------ */

struct bag {
	int64_t id, builderid, masterid, buildid, stepid, logid;
	bool finished;
	const char *package, *host;
	const unsigned char *hash;
	bool ran;
};

/* A pushed bag of one step, written as push.c's push_store_new does. */
static int store_new(struct db *db, void *ud)
{
	struct bag *b = ud;
	b->ran = true;
	int r = db_build_add(db, b->builderid, 0, 0, b->masterid, 100, &b->buildid, NULL);
	if (r < 0)
		return r;
	int64_t number;
	json_t *v = json_string("rev1");
	r = db_build_set_property(db, b->buildid, "revision", v, "push");
	json_decref(v);
	if (r < 0 || (r = db_build_set_state(db, b->buildid, "building (pushed)")) < 0 ||
	    (r = db_step_begin(db, b->buildid, "make", 101, NULL, &b->stepid, &number)) < 0 ||
	    (r = db_log_add(db, b->stepid, "stdio", 's', &b->logid)) < 0 ||
	    (r = db_log_append(db, b->logid, "ohello\nebad\n", 12)) < 0 ||
	    (r = db_log_finish(db, b->logid)) < 0 ||
	    (r = db_step_finish(db, b->stepid, RESULTS_WARNINGS, "make warnings", false, 102)) < 0)
		return r;
	if (b->finished &&
	    (r = db_build_finish(db, b->buildid, RESULTS_WARNINGS, "warnings", 103)) < 0)
		return r;
	struct db_push_row row = {
		.id = b->id,
		.tokenid = 7,
		.builderid = b->builderid,
		.buildid = b->buildid,
		.package = b->package,
		.host = b->host,
		.arch = "x86_64",
		.revision = "rev1",
		.tags = ",nightly,",
		.state = "stored",
		.finished = b->finished,
		.results = b->finished ? RESULTS_WARNINGS : RESULTS_NONE,
		.nsteps = 1,
		.update_hash = b->finished ? NULL : b->hash,
		.created_at = 99.5,
		.finished_at = b->finished ? 103 : 0,
	};
	return db_push_insert(db, &row);
}

static void get(struct db *db, struct buf *out, const char *what, int64_t id)
{
	static const char *const drop[] = {"buildid", "builderid", NULL};
	struct answer a = {0};
	if (wait_answer(db_push_get_async(db, id, on_list, &a), &a))
		line_rows(out, what, a.items, drop);
	json_decref(a.items);
}

static void count(struct db *db, struct buf *out, const char *what, int64_t tokenid,
		  const char *package)
{
	struct answer a = {0};
	if (wait_answer(db_push_count_async(db, tokenid, package, on_id, &a), &a))
		pg_alike_line(out, what, a.text);
}

/* Runs the calls on db, each answer a line of out. */
static void script(struct db *db, struct buf *out)
{
	struct answer a = {0};
	wait_answer(db_ensure_async(db, DB_NAMED_MASTER, "m1", NULL, NULL, on_id, &a), &a);
	int64_t masterid = a.id;
	a = (struct answer){0};
	wait_answer(db_ensure_async(db, DB_NAMED_BUILDER, "push:demo", "pushed",
				    "[\"external\",\"push\"]", on_id, &a),
		    &a);
	int64_t builderid = a.id;
	CHECK(masterid > 0 && builderid > 0);
	CHECK_INT(db_builder_set_masters(db, builderid, &masterid, 1), 0);
	count(db, out, "count before", 7, "demo");

	struct bag one = {.id = 1,
			  .builderid = builderid,
			  .masterid = masterid,
			  .finished = true,
			  .package = "demo",
			  .host = "h1"};
	pg_alike_line(out, "store a finished bag",
		      db_push_atomic(db, 1, store_new, &one) == 0 ? "ok" : "failed");
	commit(db, out, "its commit");
	get(db, out, "push 1", 1);

	static const unsigned char hash[32] = {1, 2, 3};
	struct bag two = {.id = 2,
			  .builderid = builderid,
			  .masterid = masterid,
			  .package = "demo",
			  .host = "h2",
			  .hash = hash};
	pg_alike_line(out, "store an open bag",
		      db_push_atomic(db, 1, store_new, &two) == 0 ? "ok" : "failed");
	commit(db, out, "its commit");
	get(db, out, "push 2 open", 2);
	CHECK_INT(db_push_update(db, 2, 3, RESULTS_FAILURE, false, 200), 0);
	commit(db, out, "an append's commit");
	get(db, out, "push 2 appended", 2);
	CHECK_INT(db_build_finish(db, two.buildid, RESULTS_FAILURE, "failed", 201), 0);
	CHECK_INT(db_push_update(db, 2, 3, RESULTS_FAILURE, true, 201), 0);
	commit(db, out, "the finish's commit");
	get(db, out, "push 2 finished", 2);
	get(db, out, "push 3 (none)", 3);

	count(db, out, "count of token 7, demo", 7, "demo");
	count(db, out, "count of token 7, other", 7, "other");
	count(db, out, "count of token 8, demo", 8, "demo");

	a = (struct answer){0};
	static const char *const drop[] = {"buildid", "builderid", NULL};
	if (wait_answer(db_push_latest_async(db, "demo", NULL, NULL, 10, on_list, &a), &a))
		line_rows(out, "latest of demo", a.items, drop);
	json_decref(a.items);

	a = (struct answer){0};
	static const char *const build_drop[] = {"buildid", "builderid", "masterid", NULL};
	if (wait_answer(db_list_async(db, DB_BUILDS, NULL, NULL, false, on_list, &a), &a))
		line_rows(out, "the builds", a.items, build_drop);
	json_decref(a.items);

	double last = -1;
	int quiet = -1;
	CHECK_INT(db_push_expected_set(db, "demo", "h1", 123.5, 1), 0);
	CHECK_INT(db_push_expected_set(db, "demo", "h2", 0, 0), 0);
	commit(db, out, "the expected reporters' commit");
	int r = db_push_expected_get(db, "demo", "h1", &last, &quiet);
	char t[128];
	snprintf(t, sizeof(t), "r=%d last=%.1f quiet=%d", r, last, quiet);
	pg_alike_line(out, "expected demo h1", t);
	r = db_push_expected_get(db, "demo", "h2", &last, &quiet);
	snprintf(t, sizeof(t), "r=%d last=%.1f quiet=%d", r, last, quiet);
	pg_alike_line(out, "expected demo h2", t);
	r = db_push_expected_get(db, "demo", "h3", &last, &quiet);
	snprintf(t, sizeof(t), "r=%d", r);
	pg_alike_line(out, "expected demo h3", t);
	CHECK_INT(db_push_expected_set(db, "demo", "h1", 130, 0), 0);
	commit(db, out, "the expected reporter's update");
	r = db_push_expected_get(db, "demo", "h1", &last, &quiet);
	snprintf(t, sizeof(t), "r=%d last=%.1f quiet=%d", r, last, quiet);
	pg_alike_line(out, "expected demo h1 again", t);
}

/* ---- the two backends ------------------------------------------------------------------- */

TEST(both_backends_answer_alike)
{
	char url[300];
	snprintf(url, sizeof(url), "sqlite:%s/push.sqlite", dir);
	struct db *lite = pg_alike_open(&loop, url);
	struct db *pg = pg_alike_open(&loop, pg_test.url);
	if (!lite || !pg)
		return;
	CHECK(db_is_postgresql(pg));
	char *lite_text = NULL;
	pg_alike_run(lite, pg, script, &lite_text);
	CHECK(lite_text && (strstr(lite_text, "\"state\": \"stored\"") ||
			    strstr(lite_text, "\"state\":\"stored\"")));

	/* more steps than the reserves hold: refused before any write */
	struct bag big = {.id = 9, .builderid = 1, .masterid = 1, .package = "big", .host = "h"};
	CHECK_INT(db_push_atomic(pg, 1000000, store_new, &big), -EAGAIN);
	CHECK(!big.ran);
	CHECK(strstr(db_errmsg(pg), "ids ready") != NULL);
	struct answer c = {0};
	db_commit_then(pg, on_commit, &c);
	if (!c.done)
		CHECK(test_run_until(&loop, answered, &c, TEST_GUARD_MS));
	CHECK_INT(c.r, 0);

	free(lite_text);
	db_close(lite);
	db_close(pg);
}

int main(int argc, char **argv)
{
	if (!mkdtemp(dir) || uv_loop_init(&loop) != 0)
		return 1;
	const char *why = argc > 1 ? pg_test_start(argv[1]) : "no scripts directory given";
	if (why) {
		diag("PostgreSQL: %s", why);
		CHECK(!"a PostgreSQL server for the test");
	} else {
		RUN(both_backends_answer_alike);
	}
	pg_test_cleanup();
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("cannot remove %s", dir);
	return tap_done();
}
