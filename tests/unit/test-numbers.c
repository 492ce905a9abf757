/*
 * Unit tests for numbers over time and ETA: the db side (series, paging,
 * names, previous value, durations; db-sqlite-numbers.c) on a real SQLite
 * database, the regression thresholds (config-numbers.c) and the master
 * module (numbers.c): regression detection, built-in durations, median,
 * ETA and queue start math.  The API and /ws events: tests/e2e/t0730-*.
 */
#include "tap.h"

#include "common/err.h"
#include "common/limits.h"
#include "config/config.h"
#include "db/db-internal.h"
#include "master/master.h"
#include "master/events.h"
#include "master/numbers.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct fx {
	struct db *db;
	int64_t masterid, builderid, workerid;
};

/* the ETA medians are read on a loop (issue 14) */
static uv_loop_t loop;

static void fx_open(struct fx *f)
{
	*f = (struct fx){0};
	if (db_open(&loop, "sqlite::memory:", NULL, &f->db) < 0)
		TAP_FAIL("db_open: %s", db_open_errmsg());
	CHECK_INT(db_master_register(f->db, "host:/b", &f->masterid), 0);
	CHECK_INT(db_builder_ensure(f->db, "b", NULL, NULL, &f->builderid), 0);
	CHECK_INT(db_worker_ensure(f->db, "w", &f->workerid), 0);
}

/* The answers of the reads on the loop, all delivered now. */
static void settle(struct fx *f)
{
	while (db_async_step(f->db))
		;
}

static void fx_close(struct fx *f)
{
	db_close(f->db);
	uv_run(&loop, UV_RUN_DEFAULT);
}

/* numbers_build_finished and its reads on the loop (its times, then its
 * steps' durations, then the regression checks' previous values). */
static void finished(struct master *m, struct fx *f, int64_t buildid)
{
	numbers_build_finished(m, buildid);
	settle(f);
}

/* numbers_build_eta once the builder's medians were read. */
static int eta_of(struct master *m, struct fx *f, double started, double *eta)
{
	numbers_prefetch(m, f->builderid);
	settle(f);
	return numbers_build_eta(m, f->builderid, started, eta);
}

/* A request of builder f->builderid at submitted (priority prio). */
static int64_t fx_request(struct fx *f, double submitted, int prio, const char *revision)
{
	struct db_sourcestamp ss = {.branch = "main", .revision = revision, .codebase = ""};
	struct db_buildset_new bs = {.reason = "t",
				     .sourcestamps = &ss,
				     .nsourcestamps = 1,
				     .submitted_at = submitted,
				     .priority = prio};
	int64_t bsid = 0, brid = 0;
	CHECK_INT(db_buildset_add(f->db, &bs, &f->builderid, 1, &bsid, &brid), 0);
	return brid;
}

/* A build started at start; finished at end with results unless end < 0.
 * Its steps: "compile" taking step_secs, "test" taking 1 s. */
static int64_t fx_build(struct fx *f, double start, double end, int results, double step_secs)
{
	int64_t brid = fx_request(f, start - 1, 0, "abc"), buildid = 0, number = 0, stepid, sn;
	CHECK_INT(db_request_claim(f->db, brid, f->masterid, start), 0);
	CHECK_INT(db_build_add(f->db, f->builderid, brid, f->workerid, f->masterid, start, &buildid,
			       &number),
		  0);
	CHECK_INT(db_step_add(f->db, buildid, "compile", &stepid, &sn), 0);
	CHECK_INT(db_step_start(f->db, stepid, start), 0);
	CHECK_INT(db_step_finish(f->db, stepid, 0, NULL, false, start + step_secs), 0);
	CHECK_INT(db_step_add(f->db, buildid, "test", &stepid, &sn), 0);
	CHECK_INT(db_step_start(f->db, stepid, start + step_secs), 0);
	if (end >= 0) {
		CHECK_INT(db_step_finish(f->db, stepid, 0, NULL, false, start + step_secs + 1), 0);
		CHECK_INT(db_build_finish(f->db, buildid, results, "done", end), 0);
	}
	return buildid;
}

static json_t *series(struct fx *f, const char *name, bool oldest, int64_t limit, int64_t offset,
		      int64_t *total)
{
	json_t *items = NULL;
	int r = db_numbers_series(f->db, f->builderid, name, oldest, limit, offset, &items, total);
	if (r < 0)
		TAP_FAIL("series: %s", db_errmsg(f->db));
	return items;
}

TEST(series_paging_and_names)
{
	struct fx f;
	fx_open(&f);
	int64_t b[5];
	for (int i = 0; i < 5; i++) {
		b[i] = fx_build(&f, 1000 + 100 * i, 1050 + 100 * i, RESULTS_SUCCESS, 10);
		CHECK_INT(db_number_record(f.db, f.builderid, b[i], 0, "warnings", i * 2, 2000 + i),
			  0);
	}
	CHECK_INT(db_number_record(f.db, f.builderid, b[4], 0, "size", 1e6, 3000), 0);

	int64_t total = -1;
	json_t *s = series(&f, "warnings", false, 2, 0, &total);
	CHECK_INT(total, 5);
	CHECK_INT(json_array_size(s), 2);
	json_t *p = json_array_get(s, 0); /* newest first */
	CHECK_INT(json_integer_value(json_object_get(p, "buildid")), b[4]);
	CHECK_INT(json_integer_value(json_object_get(p, "number")), 5); /* numbers start at 1 */
	CHECK(json_real_value(json_object_get(p, "value")) == 8);
	CHECK(json_real_value(json_object_get(p, "recorded_at")) == 2004);
	CHECK_STR(json_string_value(json_object_get(p, "revision")), "abc");
	CHECK(json_is_array(json_object_get(p, "changeids")));
	CHECK(json_is_null(json_object_get(p, "stepid")));
	json_decref(s);
	s = series(&f, "warnings", false, 2, 4, NULL); /* last page */
	CHECK_INT(json_array_size(s), 1);
	CHECK_INT(json_integer_value(json_object_get(json_array_get(s, 0), "buildid")), b[0]);
	json_decref(s);
	s = series(&f, "warnings", true, 1, 1, NULL); /* by build number */
	CHECK_INT(json_integer_value(json_object_get(json_array_get(s, 0), "buildid")), b[1]);
	json_decref(s);
	s = series(&f, "nothing", false, -1, 0, &total);
	CHECK_INT(json_array_size(s), 0);
	CHECK_INT(total, 0);
	json_decref(s);

	json_t *names = NULL;
	CHECK_INT(db_numbers_names(f.db, f.builderid, -1, 0, &names, &total), 0);
	CHECK_INT(total, 2);
	CHECK_STR(json_string_value(json_array_get(names, 0)), "size");
	CHECK_STR(json_string_value(json_array_get(names, 1)), "warnings");
	json_decref(names);
	CHECK_INT(db_numbers_names(f.db, f.builderid, 1, 1, &names, NULL), 0);
	CHECK_INT(json_array_size(names), 1);
	CHECK_STR(json_string_value(json_array_get(names, 0)), "warnings");
	json_decref(names);

	double v = 0;
	int64_t pb = 0;
	CHECK_INT(db_number_previous(f.db, f.builderid, "warnings", b[3], &v, &pb), 1);
	CHECK(v == 4);
	CHECK_INT(pb, b[2]);
	CHECK_INT(db_number_previous(f.db, f.builderid, "warnings", b[0], &v, &pb), 0);

	/* refused: empty name, not finite, a build of another builder */
	CHECK_INT(db_number_record(f.db, f.builderid, b[0], 0, "", 1, 1), -EINVAL);
	CHECK_INT(db_number_record(f.db, f.builderid, b[0], 0, "x", NAN, 1), -EINVAL);
	CHECK_INT(db_number_record(f.db, f.builderid + 1, b[0], 0, "x", 1, 1), KILN_ENOTFOUND);
	CHECK_INT(db_number_record(f.db, f.builderid, 9999, 0, "x", 1, 1), KILN_ENOTFOUND);
	fx_close(&f);
}

TEST(series_query_uses_index)
{
	struct fx f;
	fx_open(&f);
	/* a series read and the previous value are ranges of numbers_series,
	 * never a scan of numbers */
	char *plan = NULL;
	CHECK_INT(db_sql_explain(f.db,
				 "SELECT value FROM numbers WHERE builderid = 1 AND name = 'x' "
				 "AND buildid < 5 ORDER BY buildid DESC LIMIT 1",
				 &plan),
		  0);
	CHECK(plan && strstr(plan, "numbers_series") != NULL);
	CHECK(plan && !strstr(plan, "TEMP B-TREE"));
	free(plan);
	fx_close(&f);
}

static struct config *load(const char *text)
{
	struct config *cfg = NULL;
	char *err = NULL;
	if (config_load_string("master.lua", text, strlen(text), NULL, &cfg, &err) < 0)
		TAP_FAIL("config: %s", err);
	return cfg;
}

static char *load_err(const char *text)
{
	struct config *cfg = NULL;
	char *err = NULL;
	if (config_load_string("master.lua", text, strlen(text), NULL, &cfg, &err) >= 0) {
		config_free(cfg);
		return strdup("(loaded)");
	}
	return err;
}

#define W1 "worker { name = \"w\", password = secret(\"w1\") }\n"

TEST(regression_config)
{
	struct config *cfg = load(
		W1 "regression = { warnings = { increase = 0 }, size = { increase_pct = 5 } }\n"
		   "builder { name = \"b\", workers = { \"w\" }, steps = { shell { command = "
		   "\"make\" } },\n"
		   "  regression = { warnings = { increase = 3 }, build_duration = { "
		   "increase_pct = 50, increase = 100 } } }\n");
	const struct config_regression *r = config_regression_find(cfg, "b", "warnings");
	CHECK(r && r->increase == 3 && isnan(r->increase_pct)); /* the builder's own */
	r = config_regression_find(cfg, "other", "warnings");
	CHECK(r && r->increase == 0); /* the global one */
	r = config_regression_find(cfg, "b", "size");
	CHECK(r && r->increase_pct == 5 && isnan(r->increase));
	CHECK(config_regression_find(cfg, "b", "tests") == NULL);
	CHECK(config_regression_find(NULL, "b", "size") == NULL);

	/* the comparison */
	r = config_regression_find(cfg, "other", "warnings"); /* increase = 0 */
	CHECK(!config_regression_exceeded(r, 3, 3));
	CHECK(config_regression_exceeded(r, 3, 4));
	CHECK(!config_regression_exceeded(r, 3, 2));
	r = config_regression_find(cfg, "b", "size"); /* 5 % */
	CHECK(!config_regression_exceeded(r, 100, 105));
	CHECK(config_regression_exceeded(r, 100, 105.5));
	CHECK(!config_regression_exceeded(r, 0, 1000));         /* no percentage of 0 */
	r = config_regression_find(cfg, "b", "build_duration"); /* 50 % or 100 */
	CHECK(config_regression_exceeded(r, 100, 151));
	CHECK(config_regression_exceeded(r, 1000, 1101));
	CHECK(!config_regression_exceeded(r, 1000, 1100));
	CHECK(!config_regression_exceeded(NULL, 1, 100));
	config_free(cfg);

	char *e = load_err("regression = { warnings = { increase = -1 } }");
	CHECK_STR(e, "master.lua:1: regression['warnings']: 'increase' must be a number >= 0");
	free(e);
	e = load_err("regression = { warnings = { } }");
	CHECK_STR(e, "master.lua:1: regression['warnings'] needs 'increase' or 'increase_pct'");
	free(e);
	e = load_err("regression = { warnings = { increse = 1 } }");
	CHECK(strstr(e, "unknown key 'increse'") != NULL);
	free(e);
	e = load_err("regression = 5");
	CHECK(strstr(e, "'regression' must be a table") != NULL);
	free(e);
	e = load_err("regression = { [1] = { increase = 1 } }");
	CHECK(strstr(e, "'regression' keys must be number names") != NULL);
	free(e);
	e = load_err(W1 "builder { name = \"b\", workers = { \"w\" }, steps = { shell { command = "
			"\"make\" } }, regression = { x = { increase_pct = \"5\" } } }");
	CHECK_STR(e, "master.lua:2: builder 'b': regression['x']: 'increase_pct' must be a "
		     "number (got string)");
	free(e);
}

/* The regressions published: their keys and messages, in order. */
struct regressions {
	int n;
	char text[1024];
};

static void on_regression(void *ud, const char *key, json_t *msg)
{
	struct regressions *g = ud;
	size_t len = strlen(g->text);
	snprintf(g->text + len, sizeof(g->text) - len, "%s%s %g->%g #%lld b%lld", g->n ? "; " : "",
		 key, json_number_value(json_object_get(msg, "old_value")),
		 json_number_value(json_object_get(msg, "new_value")),
		 (long long)json_integer_value(json_object_get(msg, "number")),
		 (long long)json_integer_value(json_object_get(msg, "old_buildid")));
	g->n++;
}

TEST(record_detects_regression)
{
	struct fx f;
	fx_open(&f);
	struct master m = {.db = f.db, .events = events_new()};
	struct regressions g = {0};
	events_listen(m.events, "numbers/*/*/regression", on_regression, &g);
	m.cfg = load("regression = { warnings = { increase = 0 } }");
	int64_t b1 = fx_build(&f, 1000, 1010, RESULTS_SUCCESS, 5);
	int64_t b2 = fx_build(&f, 1100, 1110, RESULTS_SUCCESS, 5);
	int64_t b3 = fx_build(&f, 1200, 1210, RESULTS_SUCCESS, 5);
	CHECK_INT(numbers_record(&m, f.builderid, b1, 0, "warnings", 3), 0); /* no previous */
	settle(&f);
	CHECK_INT(numbers_record(&m, f.builderid, b2, 0, "warnings", 3), 0); /* same */
	settle(&f);
	CHECK_INT(g.n, 0);
	/* up by 1: published once its previous value and its build were read */
	CHECK_INT(numbers_record(&m, f.builderid, b3, 0, "warnings", 4), 0);
	CHECK_INT(g.n, 0);
	settle(&f);
	CHECK_INT(g.n, 1);
	char want[200];
	snprintf(want, sizeof(want), "numbers/%lld/warnings/regression 3->4 #3 b%lld",
		 (long long)f.builderid, (long long)b2);
	CHECK_STR(g.text, want);
	CHECK_INT(numbers_record(&m, f.builderid, b3, 0, "tests", 400), 0); /* no threshold */
	settle(&f);
	CHECK_INT(g.n, 1);
	CHECK_INT(numbers_record(&m, f.builderid, b3, 0, "bad\nname", 1), -EINVAL);
	CHECK_INT(numbers_record(&m, f.builderid, b3, 0, "x", INFINITY), -EINVAL);
	char longname[KILN_MAX_NUMBER_NAME + 2];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK_INT(numbers_record(&m, f.builderid, b3, 0, longname, 1), -EINVAL);
	config_free(m.cfg);
	fx_close(&f);
	events_free(m.events);
}

TEST(build_finished_records_durations)
{
	struct fx f;
	fx_open(&f);
	struct master m = {.db = f.db, .numbers = numbers_new()};
	m.cfg = load("regression = { build_duration = { increase_pct = 20 } }");
	int64_t b1 = fx_build(&f, 1000, 1060, RESULTS_SUCCESS, 20);
	finished(&m, &f, b1);
	int64_t total;
	json_t *s = series(&f, NUMBERS_BUILD_DURATION, false, -1, 0, &total);
	CHECK_INT(total, 1);
	CHECK(json_real_value(json_object_get(json_array_get(s, 0), "value")) == 60);
	json_decref(s);
	s = series(&f, "step_duration:compile", false, -1, 0, &total);
	CHECK_INT(total, 1);
	CHECK(json_real_value(json_object_get(json_array_get(s, 0), "value")) == 20);
	CHECK(json_is_integer(json_object_get(json_array_get(s, 0), "stepid")));
	json_decref(s);
	s = series(&f, "step_duration:test", false, -1, 0, &total);
	CHECK_INT(total, 1);
	CHECK(json_real_value(json_object_get(json_array_get(s, 0), "value")) == 1);
	json_decref(s);
	/* a running build records nothing */
	int64_t run = fx_build(&f, 2000, -1, 0, 5);
	finished(&m, &f, run);
	s = series(&f, NUMBERS_BUILD_DURATION, false, -1, 0, &total);
	CHECK_INT(total, 1);
	json_decref(s);
	numbers_free(m.numbers);
	config_free(m.cfg);
	fx_close(&f);
}

/* slice "perfsteps2": the step durations are served from the steps table,
 * not stored: the same points (stepid, value, build number, the end's
 * recording time), the names listed, and a step's regression rule still
 * finds the previous build's value. */
TEST(build_finished_step_durations_from_steps)
{
	struct fx f;
	fx_open(&f);
	struct master m = {.db = f.db, .numbers = numbers_new()};
	m.cfg = load("regression = { [\"step_duration:compile\"] = { increase = 5 } }");
	int64_t b1 = fx_build(&f, 1000, 1060, RESULTS_SUCCESS, 20);
	finished(&m, &f, b1);
	int64_t b2 = fx_build(&f, 2000, 2060, RESULTS_SUCCESS, 30);
	double old = 0;
	int64_t old_build = 0;
	CHECK_INT(db_number_previous(f.db, f.builderid, "step_duration:compile", b2, &old,
				     &old_build),
		  1);
	CHECK(old == 20);
	CHECK_INT(old_build, b1);
	finished(&m, &f, b2);
	int64_t total;
	json_t *bd = series(&f, NUMBERS_BUILD_DURATION, false, -1, 0, &total);
	CHECK_INT(total, 2);
	json_t *s = series(&f, "step_duration:compile", false, -1, 0, &total);
	CHECK_INT(total, 2);
	CHECK_INT((int64_t)json_array_size(s), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *p = json_array_get(s, i), *q = json_array_get(bd, i);
		CHECK_INT(json_object_size(p), json_object_size(q));
		CHECK_INT(json_integer_value(json_object_get(p, "buildid")), i ? b1 : b2);
		CHECK_INT(json_integer_value(json_object_get(p, "number")),
			  json_integer_value(json_object_get(q, "number")));
		CHECK(json_is_integer(json_object_get(p, "stepid")));
		CHECK(json_real_value(json_object_get(p, "value")) == (i ? 20 : 30));
		CHECK(json_real_value(json_object_get(p, "recorded_at")) ==
		      json_real_value(json_object_get(q, "recorded_at")));
		CHECK(json_equal(json_object_get(p, "revision"), json_object_get(q, "revision")));
	}
	json_decref(s);
	json_decref(bd);
	json_t *names = NULL;
	CHECK_INT(db_numbers_names(f.db, f.builderid, -1, 0, &names, &total), 0);
	CHECK_INT(total, 3);
	CHECK_STR(json_string_value(json_array_get(names, 2)), "step_duration:test");
	json_decref(names);
	numbers_free(m.numbers);
	config_free(m.cfg);
	fx_close(&f);
}

TEST(median_and_queue_math)
{
	double a[] = {5, 1, 3};
	CHECK(numbers_median(a, 3) == 3);
	double b[] = {10, 2, 4, 8};
	CHECK(numbers_median(b, 4) == 6);
	double c[] = {7};
	CHECK(numbers_median(c, 1) == 7);
	/* two slots, free at 100 and 40; median 50 */
	double s[] = {100, 40};
	CHECK(numbers_queue_start(s, 2, 0, 50) == 40);
	CHECK(numbers_queue_start(s, 2, 1, 50) == 100);
	CHECK(numbers_queue_start(s, 2, 2, 50) == 90);
	CHECK(numbers_queue_start(s, 2, 5, 50) == 200);
	double one[] = {10};
	CHECK(numbers_queue_start(one, 1, 3, 30) == 100);
}

TEST(eta_from_recent_successful_builds)
{
	struct fx f;
	fx_open(&f);
	struct master m = {.db = f.db, .numbers = numbers_new()};
	double eta = 0;
	CHECK_INT(eta_of(&m, &f, 5000, &eta), 0); /* no history */
	/* durations 60, 70, 80 s and a failed 1000 s build (not counted) */
	finished(&m, &f, fx_build(&f, 1000, 1060, RESULTS_SUCCESS, 10));
	finished(&m, &f, fx_build(&f, 2000, 2070, RESULTS_WARNINGS, 20));
	finished(&m, &f, fx_build(&f, 3000, 3080, RESULTS_SUCCESS, 30));
	finished(&m, &f, fx_build(&f, 4000, 5000, RESULTS_FAILURE, 900));
	CHECK_INT(eta_of(&m, &f, 5000, &eta), 1);
	CHECK(eta == 5070);
	/* cached until a build finishes: a new success moves the median */
	int64_t nb = fx_build(&f, 6000, 6100, RESULTS_SUCCESS, 40);
	CHECK_INT(eta_of(&m, &f, 5000, &eta), 1);
	CHECK(eta == 5070);
	finished(&m, &f, nb);
	CHECK_INT(eta_of(&m, &f, 5000, &eta), 1);
	CHECK(eta == 5075);
	/* only the last KILN_ETA_SAMPLES successes count */
	for (int i = 0; i < KILN_ETA_SAMPLES; i++)
		finished(&m, &f, fx_build(&f, 7000 + i * 100, 7010 + i * 100, RESULTS_SUCCESS, 5));
	CHECK_INT(eta_of(&m, &f, 9000, &eta), 1);
	CHECK(eta == 9010);

	/* a running build's step: the median of that step's durations */
	int64_t run = fx_build(&f, 10000, -1, 0, 5);
	settle(&f);
	CHECK_INT(numbers_step_eta(&m, run, "compile", 20000, &eta), 1);
	CHECK(eta == 20005);
	CHECK_INT(numbers_step_eta(&m, run, "test", 20000, &eta), 1);
	CHECK(eta == 20001);
	CHECK_INT(numbers_step_eta(&m, run, "unknown", 20000, &eta), 0);

	/* queued requests: one worker (no engine: one slot) busy with `run`
	 * until 10010; each request ahead takes one median (10 s) */
	int64_t q1 = fx_request(&f, 10001, 0, "q1");
	int64_t q2 = fx_request(&f, 10002, 0, "q2");
	int64_t q0 = fx_request(&f, 10003, 5, "q0"); /* higher priority: first */
	double start = 0;
	CHECK_INT(numbers_request_start(&m, q0, 10004, &start), 1);
	CHECK(start == 10010);
	CHECK_INT(numbers_request_start(&m, q1, 10004, &start), 1);
	CHECK(start == 10020);
	CHECK_INT(numbers_request_start(&m, q2, 10004, &start), 1);
	CHECK(start == 10030);
	/* overdue running build: its slot counts as free now */
	CHECK_INT(numbers_request_start(&m, q0, 50000, &start), 1);
	CHECK(start == 50000);
	CHECK_INT(db_request_claim(f.db, q0, f.masterid, 10005), 0);
	CHECK_INT(numbers_request_start(&m, q0, 10004, &start), 0); /* not queued */

	/* no cache (a master without it): no ETA */
	struct master bare = {.db = f.db};
	CHECK_INT(numbers_build_eta(&bare, f.builderid, 1, &eta), 0);
	numbers_free(m.numbers);
	fx_close(&f);
}

TEST(eta_looks_at_recent_builds_only)
{
	struct fx f;
	fx_open(&f);
	struct master m = {.db = f.db, .numbers = numbers_new()};
	double eta = 0;
	finished(&m, &f, fx_build(&f, 1000, 1060, RESULTS_SUCCESS, 10));
	for (int i = 0; i < KILN_ETA_SCAN_BUILDS - 1; i++)
		finished(&m, &f, fx_build(&f, 2000 + i, 2001 + i, RESULTS_FAILURE, 0));
	CHECK_INT(eta_of(&m, &f, 0, &eta), 1); /* 100th from the end */
	CHECK(eta == 60);
	/* one more failure: the success is past the bounded look-back */
	finished(&m, &f, fx_build(&f, 3000, 3001, RESULTS_FAILURE, 0));
	CHECK_INT(eta_of(&m, &f, 0, &eta), 0);
	numbers_free(m.numbers);
	fx_close(&f);
}

int main(void)
{
	uv_loop_init(&loop);
	setenv("KILN_SECRET_W1", "pw", 1);
	RUN(series_paging_and_names);
	RUN(series_query_uses_index);
	RUN(regression_config);
	RUN(record_detects_regression);
	RUN(build_finished_records_durations);
	RUN(build_finished_step_durations_from_steps); /* slice "perfsteps2" */
	RUN(median_and_queue_math);
	RUN(eta_from_recent_successful_builds);
	RUN(eta_looks_at_recent_builds_only);
	uv_loop_close(&loop);
	return tap_done();
}
