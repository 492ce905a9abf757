/*
 * Unit tests for test-result storage: testingest.c streaming reports into
 * a real SQLite file (db-sqlite-tests.c, migration 0004), batches, errors,
 * a test's history across builds (flaky on one revision), and the REST
 * resources of api-tests.c served by a real http_server on a libuv loop
 * at 127.0.0.1 port 0, read with libcurl from a client thread.
 */
#include "tap.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <uv.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/http.h"
#include "master/master.h"
#include "master/testingest.h"
#include "master/wsconn.h"

static char basedir[256];
static struct master master;
static struct http_server *srv;
static int http_port;
static uv_async_t done_async;
static int64_t b0, setid_junit, build1, step1;
static int64_t hist_builds[6];

static struct db *db;

/* A build of builderid with one "test" step; its sourcestamp's revision. */
static void add_build(int64_t builderid, const char *revision, int64_t *ret_buildid,
		      int64_t *ret_stepid)
{
	int64_t bsid, brid, number, n;
	struct db_sourcestamp ss = {"main", revision, "repo", "", ""};
	struct db_buildset_new bs = {.reason = "r", .sourcestamps = &ss, .nsourcestamps = 1};
	if (db_buildset_add(db, &bs, &builderid, 1, &bsid, &brid) < 0 ||
	    db_request_claim(db, brid, master.masterid, 1) < 0 ||
	    db_build_add(db, builderid, brid, 0, master.masterid, 1, ret_buildid, &number) < 0 ||
	    db_step_add(db, *ret_buildid, "test", ret_stepid, &n) < 0)
		TAP_FAIL("build: %s", db_errmsg(db));
}

static json_t *list(enum db_resource res, const char *field, int64_t value)
{
	char v[32];
	snprintf(v, sizeof(v), "%lld", (long long)value);
	const char *vals[] = {v};
	struct db_filter f = {field, DB_OP_EQ, vals, 1};
	struct db_query q = {.filters = &f, .nfilters = 1, .limit = -1};
	json_t *items = NULL;
	if (db_list(db, res, &q, &items, NULL) < 0)
		TAP_FAIL("db_list: %s", db_errmsg(db));
	return items;
}

static char *read_sample(const char *rel, size_t *ret_len)
{
	char *path = xasprintf("%s/%s", TESTREPORT_CORPUS, rel);
	FILE *f = fopen(path, "rb");
	free(path);
	struct buf b;
	buf_init(&b, 1 << 24);
	char tmp[4096];
	size_t n;
	while (f && (n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		if (buf_add(&b, tmp, n) < 0)
			TAP_FAIL("sample too big");
	if (f)
		fclose(f);
	else
		TAP_FAIL("cannot open sample %s", rel);
	return buf_detach(&b, ret_len);
}

/* Ingests data in pieces of step bytes; returns testingest_end's result. */
static int ingest(int64_t builderid, int64_t buildid, int64_t stepid, enum testreport_format f,
		  const char *data, size_t len, size_t step, int64_t *ret_setid,
		  struct testreport_summary *ret_sum, char **ret_err)
{
	struct testingest *ti;
	int r = testingest_begin(db, builderid, buildid, stepid, f, "unit", &ti);
	if (r < 0)
		return r;
	if (ret_setid)
		*ret_setid = testingest_setid(ti);
	for (size_t off = 0; off < len; off += step)
		if (testingest_feed(ti, data + off, len - off < step ? len - off : step) < 0)
			break;
	return testingest_end(ti, ret_sum, ret_err);
}

TEST(junit_stored)
{
	size_t len;
	_cleanup_free_ char *data = read_sample("junit/pytest.xml", &len);
	struct testreport_summary s;
	char *err = NULL;
	add_build(b0, "rev-a", &build1, &step1);
	CHECK_INT(
		ingest(b0, build1, step1, TESTREPORT_AUTO, data, len, 100, &setid_junit, &s, &err),
		0);
	CHECK_INT(s.total, 5);
	CHECK_INT(s.failed, 2);
	CHECK_INT(s.skipped, 1);
	CHECK_INT(s.passed, 2);
	json_t *sets = list(DB_TEST_RESULT_SETS, "test_result_setid", setid_junit);
	json_t *set = json_array_get(sets, 0);
	CHECK(json_is_true(json_object_get(set, "complete")));
	CHECK_INT(json_integer_value(json_object_get(set, "tests_passed")), 2);
	CHECK_INT(json_integer_value(json_object_get(set, "tests_failed")), 2);
	CHECK_INT(json_integer_value(json_object_get(set, "tests_skipped")), 1);
	CHECK_INT(json_integer_value(json_object_get(set, "stepid")), step1);
	CHECK_STR(json_string_value(json_object_get(set, "category")), "pass_fail");
	CHECK_STR(json_string_value(json_object_get(set, "value_unit")), "boolean");
	CHECK_STR(json_string_value(json_object_get(set, "description")), "unit");
	json_decref(sets);

	json_t *rows = list(DB_TEST_RESULTS, "test_result_setid", setid_junit);
	CHECK_INT(json_array_size(rows), 5);
	json_t *r1 = json_array_get(rows, 1);
	CHECK_STR(json_string_value(json_object_get(r1, "test_name")), "tests.test_math.test_div");
	CHECK_STR(json_string_value(json_object_get(r1, "value")), "0");
	CHECK_INT(json_integer_value(json_object_get(r1, "results")), RESULTS_FAILURE);
	CHECK_INT(json_integer_value(json_object_get(r1, "duration_ns")), 2000000);
	CHECK(json_is_null(json_object_get(r1, "line")));
	CHECK(strstr(json_string_value(json_object_get(r1, "message")), "ZeroDivisionError"));
	json_t *r2 = json_array_get(rows, 2);
	CHECK_STR(json_string_value(json_object_get(r2, "value")), "skipped");
	json_t *r0 = json_array_get(rows, 0);
	CHECK_STR(json_string_value(json_object_get(r0, "value")), "1");
	CHECK(json_is_null(json_object_get(r0, "message")));
	json_decref(rows);
	free(err);
}

TEST(file_and_line)
{
	size_t len;
	_cleanup_free_ char *data = read_sample("junit/gtest.xml", &len);
	int64_t buildid, stepid, setid;
	add_build(b0, "rev-a", &buildid, &stepid);
	CHECK_INT(ingest(b0, buildid, stepid, TESTREPORT_JUNIT, data, len, len, &setid, NULL, NULL),
		  0);
	json_t *rows = list(DB_TEST_RESULTS, "test_result_setid", setid);
	json_t *r0 = json_array_get(rows, 0);
	CHECK_STR(json_string_value(json_object_get(r0, "test_code_path")), "math_test.cc");
	CHECK_INT(json_integer_value(json_object_get(r0, "line")), 5);
	json_decref(rows);
}

TEST(batches)
{
	/* more than two batches, fed a few bytes at a time */
	struct buf b;
	buf_init(&b, 1 << 24);
	int n = 2 * KILN_TESTINGEST_BATCH + 17;
	for (int i = 1; i <= n; i++)
		if (buf_addf(&b, "%sok %d - case %d\n", i % 3 ? "" : "not ", i, i) < 0)
			TAP_FAIL("buf");
	if (buf_addf(&b, "1..%d\n", n) < 0)
		TAP_FAIL("buf");
	int64_t buildid, stepid, setid;
	struct testreport_summary s;
	add_build(b0, "rev-b", &buildid, &stepid);
	CHECK_INT(ingest(b0, buildid, stepid, TESTREPORT_TAP, b.ptr, b.len, 333, &setid, &s, NULL),
		  0);
	CHECK_INT(s.total, n);
	CHECK_INT(s.failed, n / 3);
	json_t *rows = list(DB_TEST_RESULTS, "test_result_setid", setid);
	CHECK_INT(json_array_size(rows), n);
	json_decref(rows);
	buf_release(&b);
}

TEST(errors)
{
	int64_t buildid, stepid, setid;
	struct testreport_summary s;
	char *err = NULL;
	add_build(b0, "rev-c", &buildid, &stepid);
	/* a run that stopped early: what ran is stored, the set completes, the
	 * error says why */
	static const char early[] = "TAP version 13\n1..4\nok 1 - a\nnot ok 2 - b\n";
	CHECK_INT(ingest(b0, buildid, stepid, TESTREPORT_AUTO, early, strlen(early), 5, &setid, &s,
			 &err),
		  KILN_EPARSE);
	CHECK_STR(err, "planned 4 tests but 2 ran");
	free(err);
	err = NULL;
	CHECK_INT(s.total, 2);
	json_t *sets = list(DB_TEST_RESULT_SETS, "test_result_setid", setid);
	json_t *set = json_array_get(sets, 0);
	CHECK(json_is_true(json_object_get(set, "complete")));
	CHECK_INT(json_integer_value(json_object_get(set, "tests_failed")), 1);
	json_decref(sets);
	/* binary garbage */
	static const char bin[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
	CHECK_INT(ingest(b0, buildid, stepid, TESTREPORT_AUTO, bin, sizeof(bin) - 1, 4, &setid, &s,
			 &err),
		  KILN_EPARSE);
	CHECK_STR(err, "not a test report (TAP, JUnit XML or go test -json)");
	CHECK_INT(s.total, 0);
	free(err);
	/* a step that is not in that build */
	struct testingest *ti = NULL;
	CHECK_INT(testingest_begin(db, b0, buildid, stepid + 1000, TESTREPORT_TAP, NULL, &ti),
		  KILN_ENOTFOUND);
	/* a complete set takes no more results */
	struct db_test_result t = {.test_name = "late", .line = -1, .duration_ns = -1};
	CHECK_INT(db_test_results_add(db, setid, &t, 1), KILN_ESTATE);
	CHECK_INT(db_test_result_set_complete(db, setid, 0, 0, 0), KILN_ESTATE);
	CHECK_INT(db_test_results_add(db, 999999, &t, 1), KILN_ENOTFOUND);
	struct db_test_result anon = {.line = -1, .duration_ns = -1};
	CHECK_INT(db_test_results_add(db, setid, &anon, 1), -EINVAL);
}

/* One TAP result for test "t" on a new build of b0 at revision rev. */
static int64_t history_build(const char *rev, bool pass, bool use_got_revision)
{
	int64_t buildid, stepid;
	add_build(b0, use_got_revision ? "ignored" : rev, &buildid, &stepid);
	if (use_got_revision) {
		json_t *v = json_string(rev);
		if (db_build_set_property(db, buildid, "got_revision", v, "Git") < 0)
			TAP_FAIL("property: %s", db_errmsg(db));
		json_decref(v);
	}
	char tap[64];
	snprintf(tap, sizeof(tap), "1..2\n%s 1 - t\nok 2 - other\n", pass ? "ok" : "not ok");
	CHECK_INT(
		ingest(b0, buildid, stepid, TESTREPORT_TAP, tap, strlen(tap), 7, NULL, NULL, NULL),
		0);
	return buildid;
}

TEST(history)
{
	struct db_test_history h;
	CHECK_INT(db_test_history(db, b0, "t", &h), 0);
	CHECK_INT(h.results_seen, 0);
	CHECK_INT(h.last_results, RESULTS_NONE);
	db_test_history_release(&h);

	hist_builds[0] = history_build("A", true, false);
	hist_builds[1] = history_build("A", false, true); /* same revision, failed: flaky */
	hist_builds[2] = history_build("B", true, true);
	hist_builds[3] = history_build("C", false, false);
	hist_builds[4] = history_build("D", false, true);
	CHECK_INT(db_test_history(db, b0, "t", &h), 0);
	CHECK_INT(h.results_seen, 5);
	CHECK_INT(h.last_results, RESULTS_FAILURE);
	CHECK_INT(h.last_buildid, hist_builds[4]);
	CHECK_INT(h.last_passing_buildid, hist_builds[2]);
	CHECK_INT(h.first_failing_buildid, hist_builds[3]);
	CHECK_INT(h.failing_builds, 2);
	CHECK(h.flaky);
	CHECK_INT(h.nflaky_revisions, 1);
	if (h.nflaky_revisions == 1)
		CHECK_STR(h.flaky_revisions[0], "A");
	db_test_history_release(&h);

	/* "other" always passed: no streak, not flaky */
	CHECK_INT(db_test_history(db, b0, "other", &h), 0);
	CHECK_INT(h.last_results, RESULTS_SUCCESS);
	CHECK_INT(h.first_failing_buildid, 0);
	CHECK_INT(h.last_passing_buildid, hist_builds[4]);
	CHECK(!h.flaky);
	db_test_history_release(&h);

	/* a pass ends the streak */
	hist_builds[5] = history_build("E", true, true);
	CHECK_INT(db_test_history(db, b0, "t", &h), 0);
	CHECK_INT(h.first_failing_buildid, 0);
	CHECK_INT(h.failing_builds, 0);
	CHECK_INT(h.last_passing_buildid, hist_builds[5]);
	db_test_history_release(&h);
}

/* ---- the REST API over a real server ------------------------------------------------ */

struct resp {
	long status;
	struct buf body;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct resp *r = ud;
	return buf_add(&r->body, p, size * n) < 0 ? 0 : size * n;
}

static json_t *get(const char *path, long want_status)
{
	struct resp r = {0};
	buf_init(&r.body, 16u << 20);
	char url[1024];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v2/%s", http_port, path);
	CURL *c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	CURLcode cc = curl_easy_perform(c);
	if (cc != CURLE_OK)
		TAP_FAIL("GET %s: %s", path, curl_easy_strerror(cc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	curl_easy_cleanup(c);
	if (r.status != want_status)
		TAP_FAIL("GET %s: status %ld, want %ld: %s", path, r.status, want_status,
			 r.body.ptr);
	json_error_t jerr;
	json_t *doc = json_loadb(r.body.ptr, r.body.len, 0, &jerr);
	if (!doc)
		TAP_FAIL("GET %s: not JSON: %s", path, jerr.text);
	buf_release(&r.body);
	return doc;
}

static size_t count(json_t *doc, const char *key)
{
	return json_array_size(json_object_get(doc, key));
}

TEST(api)
{
	char path[256];
	json_t *d = get("test_result_sets", 200);
	CHECK_INT(count(d, "test_result_sets"), 11);
	json_decref(d);
	snprintf(path, sizeof(path), "builds/%lld/test_result_sets", (long long)build1);
	d = get(path, 200);
	CHECK_INT(count(d, "test_result_sets"), 1);
	json_t *set = json_array_get(json_object_get(d, "test_result_sets"), 0);
	CHECK_INT(json_integer_value(json_object_get(set, "test_result_setid")), setid_junit);
	/* Buildbot's fields, every one */
	static const char *const fields[] = {
		"builderid", "buildid",           "category",     "complete",     "description",
		"stepid",    "test_result_setid", "tests_failed", "tests_passed", "value_unit"};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (!json_object_get(set, fields[i]))
			TAP_FAIL("test_result_set has no '%s'", fields[i]);
	json_decref(d);
	snprintf(path, sizeof(path), "steps/%lld/test_result_sets", (long long)step1);
	d = get(path, 200);
	CHECK_INT(count(d, "test_result_sets"), 1);
	json_decref(d);
	d = get("builders/b0/test_result_sets?complete=true&limit=3", 200);
	CHECK_INT(count(d, "test_result_sets"), 3);
	json_decref(d);
	snprintf(path, sizeof(path), "test_result_sets/%lld", (long long)setid_junit);
	d = get(path, 200);
	CHECK_INT(count(d, "test_result_sets"), 1);
	json_decref(d);
	json_decref(get("test_result_sets/99999", 404));
	/* results, paged and filtered like every collection */
	snprintf(path, sizeof(path), "test_result_sets/%lld/results?order=-test_resultid&limit=2",
		 (long long)setid_junit);
	d = get(path, 200);
	CHECK_INT(count(d, "test_results"), 2);
	json_t *r0 = json_array_get(json_object_get(d, "test_results"), 0);
	CHECK_STR(json_string_value(json_object_get(r0, "test_name")), "tests.test_io.test_db");
	static const char *const rfields[] = {"builderid",      "duration_ns", "line",
					      "test_code_path", "test_name",   "test_result_setid",
					      "test_resultid",  "value"};
	for (size_t i = 0; i < sizeof(rfields) / sizeof(rfields[0]); i++)
		if (!json_object_get(r0, rfields[i]))
			TAP_FAIL("test_result has no '%s'", rfields[i]);
	json_decref(d);
	snprintf(path, sizeof(path), "test_result_sets/%lld/results?value=0",
		 (long long)setid_junit);
	d = get(path, 200);
	CHECK_INT(count(d, "test_results"), 2);
	json_decref(d);
	d = get("test_result_sets/99999/results", 200);
	CHECK_INT(count(d, "test_results"), 0);
	json_decref(d);
	/* the history */
	d = get("builders/b0/test_history?test_name=t", 200);
	json_t *h = json_array_get(json_object_get(d, "test_history"), 0);
	CHECK(json_is_true(json_object_get(h, "flaky")));
	CHECK_STR(json_string_value(json_array_get(json_object_get(h, "flaky_revisions"), 0)), "A");
	CHECK_INT(json_integer_value(
			  json_object_get(json_object_get(h, "last_passing_build"), "buildid")),
		  hist_builds[5]);
	CHECK(json_is_null(json_object_get(h, "first_failing_build")));
	json_decref(d);
	snprintf(path, sizeof(path), "builders/%lld/test_history?test_name=nope", (long long)b0);
	d = get(path, 200);
	h = json_array_get(json_object_get(d, "test_history"), 0);
	CHECK_INT(json_integer_value(json_object_get(h, "results_seen")), 0);
	CHECK(json_is_null(json_object_get(h, "last_results")));
	json_decref(d);
	json_decref(get("builders/b0/test_history", 400));
	json_decref(get("builders/nosuch/test_history?test_name=t", 404));
}

static void *client_main(void *arg)
{
	RUN(api);
	uv_async_send(&done_async);
	return NULL;
}

static void on_done(uv_async_t *a)
{
	uv_close((uv_handle_t *)&done_async, NULL);
	http_server_stop(srv);
	db_close(master.db);
	master.db = NULL;
}

int main(void)
{
	uv_loop_t loop;
	struct config cfg = {0};
	alarm(120);
	snprintf(basedir, sizeof(basedir), "/tmp/kiln-test-testingest-XXXXXX");
	if (!mkdtemp(basedir))
		return 1;
	uv_loop_init(&loop);
	cfg.http.host = "127.0.0.1";
	cfg.workers.host = "127.0.0.1";
	master.loop = &loop;
	master.basedir = basedir;
	master.name = "test:/tests";
	master.cfg = &cfg;
	/* storage first without a loop (each write its own transaction) */
	if (db_open(NULL, "sqlite:state.sqlite", basedir, &db) < 0) {
		printf("Bail out! db_open: %s\n", db_open_errmsg());
		return 1;
	}
	db_master_register(db, master.name, &master.masterid);
	db_builder_ensure(db, "b0", NULL, "[]", &b0);
	RUN(junit_stored);
	RUN(file_and_line);
	RUN(batches);
	RUN(errors);
	RUN(history);
	db_close(db);
	uv_run(&loop, UV_RUN_DEFAULT);

	/* then the API on a loop, over the same file */
	if (db_open(&loop, "sqlite:state.sqlite", basedir, &master.db) < 0) {
		printf("Bail out! db_open: %s\n", db_open_errmsg());
		return 1;
	}
	db = master.db;
	if (http_server_start(&master, NULL, &srv) < 0) {
		printf("Bail out! http_server_start failed\n");
		return 1;
	}
	http_port = http_server_http_port(srv);
	uv_async_init(&loop, &done_async, on_done);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	pthread_t th;
	pthread_create(&th, NULL, client_main, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	pthread_join(th, NULL);
	curl_global_cleanup();
	int lr = uv_loop_close(&loop);
	if (lr != 0)
		printf("# uv_loop_close: %s\n", uv_strerror(lr));
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", basedir);
	if (system(cmd) != 0)
		printf("# cannot remove %s\n", basedir);
	return tap_done() || lr != 0;
}
