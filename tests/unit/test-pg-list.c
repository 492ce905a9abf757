/*
 * db_list on PostgreSQL (src/db/db-pg-list.c, issue 14) against db_list on
 * SQLite over the same rows: a master's database made through db.h (builds,
 * steps, logs, changes with their users, a try patch with bytes that are
 * not UTF-8, test results, workers configured and connected, users with
 * identities), copied to a real PostgreSQL server with copy-db; then for
 * every resource, every field: the listing whole, ordered by it both ways,
 * filtered by it with each operator its type takes (the values taken from
 * the rows themselves), paged, with fields skipped; and the refusals (an
 * unknown field, a bad value) with the same error and text.  Each answer
 * is compared as JSON, with the total count.
 */
#include "tap.h"
#include "pg-test.h"
#include "wait.h"
#include "pg-loop-test.h"

#include <errno.h>
#include <stdint.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <uv.h>

#include "common/buf.h"
#include "common/err.h"
#include "db/db-copy.h"
#include "db/db-list.h"
#include "db/db-pg-list.h"
#include "db/pg-batch.h"
#include "db/db.h"

#define diag(...) (printf("# "), printf(__VA_ARGS__), printf("\n"))

static char dir[] = "/tmp/kiln-test-pglist.XXXXXX";
static char src_url[256];
static uv_loop_t loop;
/* A database whose collation is not bytewise (ICU's English): text must
 * still sort and compare as SQLite's does, by bytes. */
static char icu_url[1200];
static struct pg_conn *conn;
static struct pg_batch *batch; /* conn's: the reads go through it */
static long compared, differed;
static struct db *pgdb; /* db_open_async of the copy */

/* ---- the rows ------------------------------------------------------------------- */

/* Logs of many chunks (more than a search reads per query on PostgreSQL),
 * compressed and not: an 's' log of 70,000 lines with a line longer than a
 * chunk and mixed-case matches, a 't' log whose lines begin with a stream
 * character's letter, and a log left open. */
static void make_logs(struct db *db, int64_t stepid)
{
	int64_t big, text, open;
	CHECK_INT(db_log_add(db, stepid, "big", 's', &big), 0);
	struct buf b;
	buf_init(&b, 1u << 26);
	for (int i = 0; i < 70000; i++) {
		if (i == 30000) {
			CHECK_INT(buf_addch(&b, 'o'), 0);
			for (int k = 0; k < 100000; k++)
				CHECK_INT(buf_addch(&b, (char)('a' + k % 26)), 0);
			CHECK_INT(buf_addch(&b, '\n'), 0);
		}
		CHECK_INT(buf_addf(&b, "%c line %d of the log%s\n", i % 3 ? 'o' : 'e', i,
				   i % 9001 == 17  ? " ERROR here"
				   : i % 7919 == 5 ? " error"
						   : ""),
			  0);
		if (b.len > 40000) {
			CHECK_INT(db_log_append(db, big, b.ptr, b.len), 0);
			buf_reset(&b);
		}
	}
	CHECK_INT(db_log_append(db, big, b.ptr, b.len), 0);
	CHECK_INT(db_log_finish(db, big), 0);
	buf_release(&b);
	CHECK_INT(db_log_add(db, stepid, "notes", 't', &text), 0);
	CHECK_INT(db_log_append(db, text, "oops\nerror one\nhello\n", 22), 0);
	CHECK_INT(db_log_finish(db, text), 0);
	CHECK_INT(db_log_add(db, stepid, "open", 's', &open), 0);
	CHECK_INT(db_log_append(db, open, "oan open log\neerror so far\n", 28), 0);
}

/* API tokens (one of a user, one revoked, one expiring) and push
 * submissions: several per package and host (the latest stored one wins),
 * failed and open ones, tags, a revision, NULLs. */
static void make_tokens_and_pushes(struct db *db, int64_t uid, int64_t builderid)
{
	unsigned char hash[DB_TOKEN_HASH_BYTES];
	int64_t tid[3];
	for (int i = 0; i < 3; i++) {
		memset(hash, 'a' + i, sizeof(hash));
		char name[32];
		snprintf(name, sizeof(name), i == 1 ? "\u00e9t\u00e9 %d" : "ci %d", i);
		CHECK_INT(db_token_add(db, i == 0 ? uid : 0, name, hash,
				       i == 2 ? DB_SCOPE_PUSH : DB_SCOPE_ADMIN | DB_SCOPE_FORCE,
				       1700000000 + i, i == 2 ? 1800000000 : 0, &tid[i]),
			  0);
	}
	CHECK_INT(db_token_revoke(db, tid[1], 1700000100), 1);
	static const struct {
		const char *package, *host, *tags, *state, *revision;
		bool finished;
		int results;
	} p[] = {
		{"kiln", "deb12", ",nightly,", "stored", "abc", true, 0},
		{"kiln", "deb12", ",nightly,x86,", "stored", "abd", true, 2},
		{"kiln", "deb12", ",", "failed", NULL, true, -1},
		{"kiln", "Alpine", ",", "stored", NULL, false, -1},
		{"Zlib", "deb12", ",x86,", "stored", "z1", true, 1},
		{"\u00e9clair", "h", ",nightly,", "stored", "e", true, 0},
		{"kiln", "alpine", ",nightly,", "stored", "q", true, 4},
	};
	for (int i = 0; i < (int)(sizeof(p) / sizeof(p[0])); i++) {
		struct db_push_row row = {.id = i + 1,
					  .tokenid = tid[2],
					  .builderid = i % 2 ? builderid : 0,
					  .package = p[i].package,
					  .host = p[i].host,
					  .arch = i % 3 ? "amd64" : NULL,
					  .revision = p[i].revision,
					  .tags = p[i].tags,
					  .state = p[i].state,
					  .reason = p[i].results < 0 ? "bad \"json\"" : NULL,
					  .finished = p[i].finished,
					  .results = p[i].results,
					  .nsteps = i,
					  .created_at = 1.7e9 + i + 0.25,
					  .finished_at = p[i].finished ? 1.7e9 + 10 + i : 0};
		CHECK_INT(db_push_insert(db, &row), 0);
	}
	CHECK_INT(db_push_expected_set(db, "kiln", "deb12", 1.7e9 + 5.5, 0), 0);
	for (int i = 0; i < 4; i++) {
		char skey[32];
		snprintf(skey, sizeof(skey), "sha%d", i % 2);
		CHECK(db_outbound_add(db, "gh", skey, i < 2 ? "pending" : "success", "/repos/x",
				      "{\"state\": \"\u00e9\"}", 1700000000 + i, 100, NULL) >= 0);
	}
}

static void make_rows(struct db *db)
{
	int64_t m1, m2, b1, b2, w1, w2;
	CHECK_INT(db_master_register(db, "host:/m1", &m1), 0);
	CHECK_INT(db_master_register(db, "host:/m2", &m2), 0);
	CHECK_INT(db_builder_ensure(db, "linux", "Linux builds", NULL, &b1), 0);
	CHECK_INT(db_builder_ensure(db, "docs \xc3\xa9t\xc3\xa9", NULL, NULL, &b2), 0);
	int64_t b3; /* upper case: first by bytes, last in English */
	CHECK_INT(db_builder_ensure(db, "Zeta", "Z", NULL, &b3), 0);
	int64_t both[] = {m1, m2};
	CHECK_INT(db_builder_set_masters(db, b1, both, 2), 0);
	CHECK_INT(db_builder_set_masters(db, b2, &m2, 1), 0);
	CHECK_INT(db_worker_ensure(db, "w1", &w1), 0);
	CHECK_INT(db_worker_ensure(db, "w2", &w2), 0);
	int64_t bs12[] = {b1, b2};
	CHECK_INT(db_worker_set_configured(db, w1, m1, bs12, 2), 0);
	CHECK_INT(db_worker_set_configured(db, w2, m2, &b2, 1), 0);
	CHECK_INT(db_worker_set_connected(db, w1, m1), 0);
	CHECK_INT(db_worker_set_paused(db, w2, true), 0);
	/* a boolean and null: SQLite's json_each shows them as 1, 0 and NULL */
	json_t *info = json_pack("{s:s, s:i, s:b, s:b, s:n}", "admin", "a \"quoted\" admin",
				 "numcpus", 2, "docker", 1, "arm", 0, "none");
	CHECK_INT(db_worker_set_info(db, w1, info), 0);
	json_decref(info);
	CHECK_INT(db_worker_set_last_seen(db, w1, 1.7e9 + 0.75), 0);

	struct db_user_info ids[] = {{"git", "Ann <ann@example.org>"},
				     {"email", "ann@example.org"}};
	struct db_user_set u = {.identifier = "ann", .bb_username = "ann", .info = ids, .ninfo = 2};
	int64_t uid;
	CHECK_INT(db_user_add(db, &u, &uid), 0);
	make_tokens_and_pushes(db, uid, b1);

	int64_t changes[3];
	const char *files[] = {"src/a.c", "docs/\xe2\x82\xac.md"};
	for (int i = 0; i < 3; i++) {
		struct db_user_ident who = {.attr_type = "git",
					    .who = i ? "Bob <bob@example.org>"
						     : "Ann <ann@example.org>"};
		char rev[48];
		snprintf(rev, sizeof(rev), "%040d", i);
		json_t *props = json_pack("{s:[is]}", "n", i, "Change");
		struct db_change_new c = {.author = who.who,
					  .comments = i == 1 ? "fix\ttab\nand \"quotes\"" : "c",
					  .branch = i == 2 ? "dev" : "main",
					  .revision = rev,
					  .repository = "https://example.org/r.git",
					  .files = files,
					  .nfiles = (size_t)(i + 1) % 3,
					  .properties = props,
					  .when_timestamp = 1.7e9 + i * 10.5,
					  .user = &who};
		int64_t ssid;
		CHECK_INT(db_change_add(db, &c, &changes[i], &ssid), 0);
		json_decref(props);
	}

	for (int i = 0; i < 4; i++) {
		int64_t bsid, brid[2], buildid, number, stepid, sn, logid;
		struct db_sourcestamp ss[] = {{.branch = "main", .revision = "abc", .codebase = ""},
					      {.branch = "main", .codebase = "lib"}};
		json_t *props = json_pack("{s:[ss]}", "reason", "because", "Scheduler");
		struct db_buildset_new bs = {.reason = i == 3 ? "try" : "change",
					     .external_idstring = i == 1 ? "ext-1" : NULL,
					     .properties = props,
					     .sourcestamps = ss,
					     .nsourcestamps = i == 2 ? 2 : 1,
					     .priority = i,
					     .submitted_at = 1.7e9 + 100 + i};
		CHECK_INT(db_buildset_add(db, &bs, bs12, 2, &bsid, brid), 0);
		json_decref(props);
		CHECK_INT(db_buildset_add_changes(db, bsid, changes, (size_t)i % 4), 0);
		if (i == 3) {
			/* bytes that are not UTF-8 in the body: shown mended */
			static const char body[] =
				"--- a\n+++ b\n\xff\xfe bad \xc3\x28 \xe2\x82\xac ok";
			struct db_patch p = {.level = 1,
					     .body = body,
					     .len = sizeof(body) - 1,
					     .author = "Ann",
					     .comment = "try it"};
			CHECK_INT(db_buildset_set_patch(db, bsid, &p), 0);
		}
		if (i == 0)
			continue; /* a buildset still waiting */
		CHECK_INT(db_request_claim(db, brid[0], m1, 1.7e9 + 200 + i), 0);
		CHECK_INT(
			db_build_add(db, b1, brid[0], w1, m1, 1.7e9 + 201.5 + i, &buildid, &number),
			0);
		json_t *pv = json_string("v\xc3\xa9");
		CHECK_INT(db_build_set_property(db, buildid, "p", pv, "Build"), 0);
		json_decref(pv);
		for (int k = 0; k < 2; k++) {
			CHECK_INT(db_step_add(db, buildid, k ? "compile" : "git", &stepid, &sn), 0);
			CHECK_INT(db_step_start(db, stepid, 1.7e9 + 202 + i), 0);
			CHECK_INT(db_log_add(db, stepid, "stdio", 's', &logid), 0);
			CHECK_INT(db_log_append(db, logid, "ohello\neworld\n", 14), 0);
			if (k == 0) {
				CHECK_INT(db_log_finish(db, logid), 0);
				CHECK_INT(db_step_add_url(db, stepid, "rev", "https://x/?a=1&b"),
					  0);
				CHECK_INT(db_step_finish(db, stepid, 0, "updated", false,
							 1.7e9 + 203 + i),
					  0);
			}
		}
		if (i == 2)
			make_logs(db, stepid);
		if (i == 1)
			continue; /* a build still running */
		struct db_test_result_set_new ts = {.builderid = b1,
						    .buildid = buildid,
						    .stepid = stepid,
						    .description = "unit"};
		int64_t setid;
		CHECK_INT(db_test_result_set_add(db, &ts, &setid), 0);
		struct db_test_result tr[] = {
			{.test_name = "t.ok", .duration_ns = 1500, .results = RESULTS_SUCCESS},
			{.test_name = "t.bad",
			 .test_code_path = "t/bad.c",
			 .line = 12,
			 .duration_ns = -1,
			 .results = i == 3 ? RESULTS_SUCCESS : RESULTS_FAILURE, /* flaky */
			 .message = "expected 1\ngot 2"},
			{.test_code_path = "t/skip.c", .results = RESULTS_SKIPPED}};
		CHECK_INT(db_test_results_add(db, setid, tr, 3), 0);
		CHECK_INT(db_test_result_set_complete(db, setid, 1, 1, 1), 0);
		CHECK_INT(db_build_finish(db, buildid, i == 2 ? 2 : 0, i == 2 ? "failed" : "build",
					  1.7e9 + 300 + i),
			  0);
		struct db_artifact art = {.buildid = buildid,
					  .stepid = i == 2 ? stepid : 0,
					  .name = "out/app \xc3\xa9.tar",
					  .path = "b/1/app.tar",
					  .size = 1000 + i,
					  .sha256 = "0123456789abcdef0123456789abcdef"
						    "0123456789abcdef0123456789abcdef",
					  .created_at = 1.7e9 + 300.75,
					  .dir = i == 3 ? "b/1/app" : NULL};
		CHECK_INT(db_artifact_add(db, &art, NULL), 0);
		/* numbers: recorded ones, and the step durations served from steps */
		CHECK_INT(db_number_record(db, b1, buildid, 0, "build_duration", 98.5 + i,
					   1.7e9 + 300 + i),
			  0);
		CHECK_INT(db_number_record(db, b1, buildid, stepid, "size", 1e6 * i, 1.7e9 + 300),
			  0);
		CHECK_INT(db_number_record(db, b1, buildid, 0, "Warnings", -i, 1.7e9 + 300), 0);
		CHECK_INT(db_request_complete(db, brid[0], i == 2 ? 2 : 0, 1.7e9 + 301 + i, NULL),
			  0);
	}
	/* two buildsets of one line, queued: collapse_requests' (compare_collapse) */
	for (int i = 0; i < 2; i++) {
		struct db_sourcestamp ss = {.branch = "dev", .revision = i ? "r2" : "r1"};
		struct db_buildset_new bs = {.reason = "change",
					     .sourcestamps = &ss,
					     .nsourcestamps = 1,
					     .submitted_at = 1.7e9 + 150 + i};
		int64_t bsid, brid[2];
		CHECK_INT(db_buildset_add(db, &bs, bs12, 2, &bsid, brid), 0);
	}
}

/* ---- one comparison ------------------------------------------------------------- */

struct pg_answer {
	bool done;
	int r;
	json_t *items;
	int64_t total;
	char err[512];
};

static void on_pg(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct pg_answer *a = arg;
	a->done = true;
	a->r = r;
	a->items = items;
	a->total = total;
	snprintf(a->err, sizeof(a->err), "%s", err ? err : "");
}

static bool pg_answered(void *arg)
{
	return ((struct pg_answer *)arg)->done;
}

static void show(const char *what, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	diag("  %s: %.600s", what, s ? s : "(none)");
	free(s);
}

/* db_list_skip on SQLite and pg_list_send on PostgreSQL agree on q. */
static void compare(struct db *db, enum db_resource res, const struct db_query *q,
		    const char *const *skip, const char *what)
{
	json_t *lite = NULL;
	int64_t lite_total = -1;
	int lr = db_list_skip(db, res, q, skip, &lite, &lite_total);
	char lite_err[512];
	snprintf(lite_err, sizeof(lite_err), "%s", lr < 0 ? db_errmsg(db) : "");

	struct pg_answer a = {0};
	char err[512] = "";
	int pr = pg_list_send(batch, res, q, skip, true, on_pg, &a, err, sizeof(err));
	if (pr == 0) {
		if (!test_run_until(&loop, pg_answered, &a, TEST_GUARD_MS))
			snprintf(a.err, sizeof(a.err), "no answer");
		pr = a.r;
		snprintf(err, sizeof(err), "%s", a.err);
	}
	compared++;
	bool same = lr == pr && (lr < 0 ? strcmp(lite_err, err) == 0
					: json_equal(lite, a.items) && lite_total == a.total);
	if (!same) {
		differed++;
		TAP_FAIL(
			"resource %d, %s: SQLite %d '%s' total %lld, PostgreSQL %d '%s' total %lld",
			(int)res, what, lr, lite_err, (long long)lite_total, pr, err,
			(long long)a.total);
		show("SQLite", lite);
		show("PostgreSQL", a.items);
	}
	json_decref(lite);
	json_decref(a.items);
}

/* PostgreSQL's answer to a send that returned pr (0: it comes on the loop),
 * compared with SQLite's (lr, lite: both consumed); a difference fails
 * naming what. */
static void check_alike(int lr, json_t *lite, int pr, struct pg_answer *a, const char *what)
{
	if (pr == 0) {
		if (!test_run_until(&loop, pg_answered, a, TEST_GUARD_MS))
			snprintf(a->err, sizeof(a->err), "no answer");
		pr = a->r;
	}
	compared++;
	if (lr != pr || (lr == 0 && !json_equal(lite, a->items))) {
		differed++;
		TAP_FAIL("%s: SQLite %d, PostgreSQL %d '%s'", what, lr, pr, a->err);
		show("SQLite", lite);
		show("PostgreSQL", a->items);
	}
	json_decref(lite);
	json_decref(a->items);
}

static json_t *ids_json(const int64_t *ids, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_integer(ids[i]));
	return a;
}

/* db_list_ids and pg_list_ids_send agree on q. */
static void compare_ids(struct db *db, enum db_resource res, const struct db_query *q,
			const char *what)
{
	int64_t *ids = NULL;
	size_t n = 0;
	int lr = db_list_ids(db, res, q, &ids, &n);
	json_t *lite = lr == 0 ? ids_json(ids, n) : NULL;
	free(ids);
	struct pg_answer a = {0};
	char err[512] = "", about[600];
	int pr = pg_list_ids_send(batch, res, q, on_pg, &a, err, sizeof(err));
	snprintf(about, sizeof(about), "ids of %s", what);
	check_alike(lr, lite, pr, &a, about);
}

/* db_list_last_builds and pg_list_last_builds_send agree on q. */
static void compare_last_builds(struct db *db, const struct db_query *q, const char *const *skip,
				const char *what)
{
	json_t *lite = NULL;
	int lr = db_list_last_builds(db, q, skip, &lite);
	struct pg_answer a = {0};
	char err[512] = "", about[600];
	int pr = pg_list_last_builds_send(batch, q, skip, on_pg, &a, err, sizeof(err));
	snprintf(about, sizeof(about), "last builds, %s", what);
	check_alike(lr, lite, pr, &a, about);
}

/* A rendered value as a filter's text ("" for null or a container). */
static void value_text(json_t *v, char *out, size_t size)
{
	out[0] = '\0';
	if (json_is_integer(v))
		snprintf(out, size, "%lld", (long long)json_integer_value(v));
	else if (json_is_string(v))
		snprintf(out, size, "%s", json_string_value(v));
	else if (json_is_boolean(v))
		snprintf(out, size, "%s", json_is_true(v) ? "true" : "false");
	else if (json_is_array(v) && json_array_size(v) && json_is_string(json_array_get(v, 0)))
		snprintf(out, size, "%s", json_string_value(json_array_get(v, 0)));
}

static void compare_resource(struct db *db, enum db_resource res, const char *name)
{
	const struct resource *rs = list_resource_get(res);
	char what[512];
	snprintf(what, sizeof(what), "%s whole", name);
	compare(db, res, NULL, NULL, what);
	json_t *rows = NULL;
	if (db_list(db, res, NULL, &rows, NULL) < 0)
		TAP_FAIL("%s: %s", name, db_errmsg(db));
	if (!json_array_size(rows))
		TAP_FAIL("%s: no rows to compare with", name);
	for (size_t i = 0; i < rs->nfields; i++) {
		const struct field *f = &rs->fields[i];
		/* ordered both ways, paged */
		for (int desc = 0; desc < 2 && !(f->flags & F_FILTER_ONLY); desc++) {
			char key[80];
			snprintf(key, sizeof(key), "%s%s", desc ? "-" : "", f->name);
			const char *order[] = {key};
			struct db_query q = {.order = order, .norder = 1, .limit = 2, .offset = 1};
			snprintf(what, sizeof(what), "%s order %s", name, key);
			compare(db, res, &q, NULL, what);
			compare_ids(db, res, &q, what);
		}
		/* filtered by a value some row has (filter-only fields: by ids 1, 2) */
		char val[256] = "";
		json_t *row = json_array_get(rows, json_array_size(rows) - 1);
		if (f->flags & F_FILTER_ONLY)
			snprintf(val, sizeof(val), f->type == F_TEXT ? "ann@example.org" : "2");
		else
			value_text(json_object_get(row, f->name), val, sizeof(val));
		static const enum db_op ops[] = {DB_OP_EQ, DB_OP_NE, DB_OP_LT,      DB_OP_LE,
						 DB_OP_GT, DB_OP_GE, DB_OP_CONTAINS};
		static const char *const opname[] = {"eq", "ne", "lt",      "le",
						     "gt", "ge", "contains"};
		for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
			const char *vals[] = {val, "1"};
			for (size_t nv = 1; nv <= 2; nv++) {
				struct db_filter flt = {.field = f->name,
							.op = ops[k],
							.values = vals,
							.nvalues = nv};
				struct db_query q = {.filters = &flt, .nfilters = 1, .limit = -1};
				snprintf(what, sizeof(what), "%s %s %s '%s'%s", name, f->name,
					 opname[k], val, nv > 1 ? " or 1" : "");
				compare(db, res, &q, NULL, what);
				q.limit = 3;
				compare_ids(db, res, &q, what);
				if (res == DB_BUILDS)
					compare_last_builds(db, &q, NULL, what);
			}
		}
		/* this field skipped */
		const char *skip[] = {f->name, NULL};
		snprintf(what, sizeof(what), "%s skipping %s", name, f->name);
		compare(db, res, NULL, skip, what);
	}
	json_decref(rows);
	/* refusals */
	struct db_filter bad[] = {
		{.field = "nosuch", .op = DB_OP_EQ, .values = (const char *[]){"1"}, .nvalues = 1},
		{.field = rs->fields[0].name, .op = DB_OP_EQ, .values = NULL, .nvalues = 0},
	};
	for (size_t k = 0; k < 2; k++) {
		struct db_query q = {.filters = &bad[k], .nfilters = 1, .limit = -1};
		snprintf(what, sizeof(what), "%s refusal %zu", name, k);
		compare(db, res, &q, NULL, what);
	}
	const char *order[] = {"-nosuch"};
	struct db_query q = {.order = order, .norder = 1, .limit = -1};
	snprintf(what, sizeof(what), "%s order by an unknown field", name);
	compare(db, res, &q, NULL, what);
}

/* ---- rows by id ------------------------------------------------------------------- */

static void compare_rows(struct db *db, enum db_resource res, const int64_t *ids, size_t n)
{
	json_t *lite = NULL;
	int lr = db_list_rows(db, res, ids, n, NULL, &lite);
	struct pg_answer a = {0};
	char err[512] = "", about[100];
	int pr = pg_list_rows_send(batch, res, ids, n, NULL, on_pg, &a, err, sizeof(err));
	snprintf(about, sizeof(about), "rows of resource %d (%zu ids)", (int)res, n);
	check_alike(lr, lite, pr, &a, about);
}

/* ---- numbers over time -------------------------------------------------------------- */

struct db_open_wait {
	bool done;
	int r;
	struct db *db;
};

static void on_open_wait(void *arg, int r, struct db *db, const char *err)
{
	struct db_open_wait *w = arg;
	(void)err;
	*w = (struct db_open_wait){.done = true, .r = r, .db = db};
}

static bool open_waited(void *arg)
{
	return ((struct db_open_wait *)arg)->done;
}

/* The answers of the numbers' single reads (db-numbers-async.c), spelled out. */
struct num_answer {
	bool done;
	char text[2048];
};

static bool num_answered(void *arg)
{
	return ((struct num_answer *)arg)->done;
}

static void on_prev(void *arg, int r, double value, int64_t old_buildid, const char *err)
{
	struct num_answer *a = arg;
	a->done = true;
	snprintf(a->text, sizeof(a->text), "r=%d %.6g %lld %s", r, value, (long long)old_buildid,
		 r < 0 && err ? err : "");
}

static void on_times(void *arg, int r, const struct db_build_times *bt, json_t *blamelist,
		     const char *err)
{
	struct num_answer *a = arg;
	a->done = true;
	char *bl = blamelist ? json_dumps(blamelist, JSON_COMPACT) : NULL;
	if (bt)
		snprintf(a->text, sizeof(a->text), "r=%d %lld #%lld %.3f %.3f %d %s", r,
			 (long long)bt->builderid, (long long)bt->number, bt->started_at,
			 bt->complete_at, bt->results, bl ? bl : "-");
	else
		snprintf(a->text, sizeof(a->text), "r=%d %s", r, err ? err : "");
	free(bl);
}

static void on_durations(void *arg, int r, const struct db_step_duration *d, size_t n,
			 const char *err)
{
	struct num_answer *a = arg;
	a->done = true;
	size_t len = (size_t)snprintf(a->text, sizeof(a->text), "r=%d n=%zu %s", r, n,
				      r < 0 && err ? err : "");
	for (size_t i = 0; i < n && len < sizeof(a->text) - 300; i++)
		len += (size_t)snprintf(a->text + len, sizeof(a->text) - len, " %lld:%s:%.3f",
					(long long)d[i].stepid, d[i].name, d[i].duration);
}

/* One read on both backends, compared. */
#define NUM_ALIKE(what, call_lite, call_pg)                                                        \
	do {                                                                                       \
		struct num_answer la = {0}, pa = {0};                                              \
		CHECK_INT((call_lite), 0);                                                         \
		CHECK_INT((call_pg), 0);                                                           \
		CHECK(test_run_until(&loop, num_answered, &la, TEST_GUARD_MS));                    \
		CHECK(test_run_until(&loop, num_answered, &pa, TEST_GUARD_MS));                    \
		compared++;                                                                        \
		if (strcmp(la.text, pa.text)) {                                                    \
			differed++;                                                                \
			TAP_FAIL("%s: SQLite '%s', PostgreSQL '%s'", what, la.text, pa.text);      \
		} else if (!strncmp(what, "queue info", 10)) {                                     \
			diag("%s: %.300s", what, pa.text);                                         \
		}                                                                                  \
	} while (0)

/* A number's previous value before each build (and past the last), the
 * builds' times with their blamelists and their steps' durations. */
static void compare_number_reads(struct db *db, int64_t builderid, const char *name)
{
	char what[400];
	for (int64_t b = 1; b <= 5; b++) {
		int64_t before = b == 5 ? INT64_MAX : b;
		snprintf(what, sizeof(what), "previous '%s' of builder %lld before build %lld",
			 name, (long long)builderid, (long long)before);
		NUM_ALIKE(what, db_number_previous_async(db, builderid, name, before, on_prev, &la),
			  db_number_previous_async(pgdb, builderid, name, before, on_prev, &pa));
		snprintf(what, sizeof(what), "times of build %lld", (long long)b);
		NUM_ALIKE(what, db_build_times_async(db, b, true, on_times, &la),
			  db_build_times_async(pgdb, b, true, on_times, &pa));
		NUM_ALIKE(what, db_build_times_async(db, b, false, on_times, &la),
			  db_build_times_async(pgdb, b, false, on_times, &pa));
		snprintf(what, sizeof(what), "step durations of build %lld", (long long)b);
		NUM_ALIKE(what, db_steps_durations_async(db, b, 1000, on_durations, &la),
			  db_steps_durations_async(pgdb, b, 1000, on_durations, &pa));
		NUM_ALIKE(what, db_steps_durations_async(db, b, 1, on_durations, &la),
			  db_steps_durations_async(pgdb, b, 1, on_durations, &pa));
	}
}

static void compare_numbers(struct db *db, int64_t builderid)
{
	char what[200];
	for (int64_t off = 0; off < 3; off++) {
		json_t *lite = NULL;
		int64_t lt = -1;
		int lr = db_numbers_names(db, builderid, off ? 2 : -1, off, &lite, &lt);
		struct pg_answer a = {0};
		int pr = db_numbers_names_async(pgdb, builderid, off ? 2 : -1, off, on_pg, &a);
		snprintf(what, sizeof(what), "numbers names of builder %lld, offset %lld",
			 (long long)builderid, (long long)off);
		json_t *names = json_incref(lite);
		check_alike(lr, lite, pr, &a, what);
		CHECK_INT(a.total, lt);
		/* every series of the first page: both ways, paged */
		size_t i;
		json_t *nm;
		json_array_foreach(names, i, nm)
		{
			if (off == 0)
				compare_number_reads(db, builderid, json_string_value(nm));
			for (int old = 0; old < 2 && off == 0; old++)
				for (int64_t lim = -1; lim < 2; lim++) {
					json_t *sl = NULL;
					int64_t st = -1;
					const char *name = json_string_value(nm);
					int sr = db_numbers_series(db, builderid, name, old, lim,
								   lim > 0 ? 1 : 0, &sl, &st);
					struct pg_answer sa = {0};
					int spr = db_numbers_series_async(pgdb, builderid, name,
									  old, lim, lim > 0 ? 1 : 0,
									  on_pg, &sa);
					snprintf(what, sizeof(what), "series '%s' %s limit %lld",
						 name, old ? "oldest first" : "newest first",
						 (long long)lim);
					check_alike(sr, sl, spr, &sa, what);
					CHECK_INT(sa.total, st);
				}
		}
		json_decref(names);
	}
}

/* ---- per-test history -------------------------------------------------------------- */

struct history_answer {
	bool done;
	int r;
	char text[1024]; /* the history, spelled out */
};

static void history_text(const struct db_test_history *h, char *out, size_t n)
{
	int k = snprintf(out, n,
			 "seen %lld last %d b%lld#%lld pass b%lld#%lld fail b%lld#%lld x%lld "
			 "flaky %d:",
			 (long long)h->results_seen, h->last_results, (long long)h->last_buildid,
			 (long long)h->last_number, (long long)h->last_passing_buildid,
			 (long long)h->last_passing_number, (long long)h->first_failing_buildid,
			 (long long)h->first_failing_number, (long long)h->failing_builds,
			 h->flaky);
	for (size_t i = 0; i < h->nflaky_revisions && k > 0 && (size_t)k < n; i++)
		k += snprintf(out + k, n - (size_t)k, " %s", h->flaky_revisions[i]);
}

static void on_history(void *arg, int r, const struct db_test_history *h, const char *err)
{
	struct history_answer *a = arg;
	a->done = true;
	a->r = r;
	if (h)
		history_text(h, a->text, sizeof(a->text));
	else
		snprintf(a->text, sizeof(a->text), "ERR %s", err ? err : "");
}

static bool history_answered(void *arg)
{
	return ((struct history_answer *)arg)->done;
}

static void compare_history(struct db *db, int64_t builderid, const char *name)
{
	struct db_test_history h;
	char want[1024];
	CHECK_INT(db_test_history(db, builderid, name, &h), 0);
	history_text(&h, want, sizeof(want));
	db_test_history_release(&h);
	struct history_answer a = {0};
	int r = db_test_history_async(pgdb, builderid, name, on_history, &a);
	if (r == 0 && !test_run_until(&loop, history_answered, &a, TEST_GUARD_MS))
		snprintf(a.text, sizeof(a.text), "no answer");
	compared++;
	if (r < 0 || a.r < 0 || strcmp(a.text, want) != 0) {
		differed++;
		TAP_FAIL("history of '%s': SQLite '%s', PostgreSQL %d '%s'", name, want, r, a.text);
	}
}

/* ---- logs: metadata, line ranges, search ------------------------------------------- */

struct log_answer {
	bool done;
	char text[600];
	struct buf lines;
};

static bool log_answered(void *arg)
{
	return ((struct log_answer *)arg)->done;
}

static void on_log_info(void *arg, int r, const struct db_log_info *i, const char *err)
{
	struct log_answer *a = arg;
	a->done = true;
	if (i)
		snprintf(a->text, sizeof(a->text), "%d step %lld lines %lld type %c complete %d", r,
			 (long long)i->stepid, (long long)i->num_lines, i->type, i->complete);
	else
		snprintf(a->text, sizeof(a->text), "%d %s", r, err ? err : "");
}

static void on_log_lines(void *arg, int r, const char *text, size_t len, int64_t count,
			 const char *err)
{
	struct log_answer *a = arg;
	a->done = true;
	snprintf(a->text, sizeof(a->text), "%d count %lld len %zu %s", r, (long long)count, len,
		 err ? err : "");
	if (text && buf_add(&a->lines, text, len) < 0)
		a->done = false; /* cannot be: the buffer has no cap; fails the wait */
}

static void on_log_found(void *arg, int r, int64_t line, int64_t next, const char *err)
{
	struct log_answer *a = arg;
	a->done = true;
	snprintf(a->text, sizeof(a->text), "%d line %lld next %lld %s", r, (long long)line,
		 (long long)next, err ? err : "");
}

/* PostgreSQL's answer (sent with result pr) against SQLite's text. */
static void log_alike(int pr, struct log_answer *a, const char *want, const struct buf *want_lines,
		      const char *what)
{
	if (pr == 0 && !test_run_until(&loop, log_answered, a, TEST_GUARD_MS))
		snprintf(a->text, sizeof(a->text), "no answer");
	else if (pr < 0)
		snprintf(a->text, sizeof(a->text), "refused %d", pr);
	compared++;
	bool same = !strcmp(a->text, want) &&
		    (!want_lines || (a->lines.len == want_lines->len &&
				     !memcmp(a->lines.ptr, want_lines->ptr, a->lines.len)));
	if (!same) {
		differed++;
		TAP_FAIL("%s: SQLite '%s', PostgreSQL '%s' (%zu bytes of lines against %zu)", what,
			 want, a->text, a->lines.len, want_lines ? want_lines->len : 0);
	}
	buf_release(&a->lines);
}

static void compare_log(struct db *db, int64_t logid)
{
	char what[160], want[600];
	struct db_log_info info = {0};
	int lr = db_log_get(db, logid, &info);
	if (lr == 0)
		snprintf(want, sizeof(want), "%d step %lld lines %lld type %c complete %d", lr,
			 (long long)info.stepid, (long long)info.num_lines, info.type,
			 info.complete);
	else
		snprintf(want, sizeof(want), "%d %s", lr, db_errmsg(db));
	struct log_answer a = {0};
	snprintf(what, sizeof(what), "log %lld", (long long)logid);
	log_alike(db_log_get_async(pgdb, logid, on_log_info, &a), &a, want, NULL, what);
	int64_t n = lr == 0 ? info.num_lines : 10;

	const struct {
		int64_t first, max; /* first < 0: from the end */
		size_t bytes;
	} reads[] = {
		{0, 10, 1 << 20},   {0, 1000000, 1 << 20}, {5000, 3000, 65536}, {-2, 5, 1 << 20},
		{30000, 1, 50000},  {30000, 1, 200000},    {29990, 20, 300000}, {1, 0, 100},
		{-1, 100, 1 << 20}, {n + 5, 10, 100},      {0, 3, 10}};
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
		int64_t first = reads[i].first < 0 ? n + reads[i].first + 1 : reads[i].first;
		if (first < 0)
			first = 0;
		struct buf out;
		buf_init(&out, reads[i].bytes);
		int64_t count = 0;
		lr = db_log_read(db, logid, first, reads[i].max, &out, &count);
		snprintf(want, sizeof(want), "%d count %lld len %zu %s", lr,
			 (long long)(lr == 0 || lr == -E2BIG ? count : 0),
			 lr == 0 || lr == -E2BIG ? out.len : 0,
			 lr < 0 && lr != -E2BIG ? db_errmsg(db) : "");
		if (lr < 0 && lr != -E2BIG)
			buf_reset(&out);
		struct log_answer la = {0};
		buf_init(&la.lines, SIZE_MAX / 2);
		snprintf(what, sizeof(what), "log %lld lines %lld+%lld in %zu bytes",
			 (long long)logid, (long long)first, (long long)reads[i].max,
			 reads[i].bytes);
		log_alike(db_log_read_async(pgdb, logid, first, reads[i].max, reads[i].bytes,
					    on_log_lines, &la),
			  &la, want, &out, what);
		buf_release(&out);
	}

	static const struct {
		const char *needle;
		unsigned flags;
		int64_t from; /* < 0: from the end */
		uint64_t scan;
	} finds[] = {
		{"error", 0, 0, 1 << 23},
		{"error", DB_LOG_SEARCH_ICASE, 0, 1 << 23},
		{"ERROR here", 0, 20000, 1 << 23},
		{"error", DB_LOG_SEARCH_BACKWARD, -1, 1 << 23},
		{"Error", DB_LOG_SEARCH_BACKWARD | DB_LOG_SEARCH_ICASE, -1, 1 << 23},
		{"line 6", DB_LOG_SEARCH_BACKWARD, 40000, 1 << 23},
		{"nowhere", 0, 0, 1 << 23},
		{"nowhere", DB_LOG_SEARCH_BACKWARD, -1, 1 << 23},
		{"nowhere", 0, 100, 200000},
		{"nowhere", DB_LOG_SEARCH_BACKWARD, 65000, 200000},
		{"xyzab", 0, 29000, 1 << 23},
		{"o", 0, 0, 1 << 23},
		{"oops", 0, 0, 1 << 23},
		{"an open", 0, 0, 1 << 23},
		{"so far", DB_LOG_SEARCH_BACKWARD, -1, 1 << 23},
		{"line 69999", 0, 0, 1 << 23},
		{"line 69999", 0, 0, 3000000},
	};
	for (size_t i = 0; i < sizeof(finds) / sizeof(finds[0]); i++) {
		int64_t from = finds[i].from < 0 ? n + finds[i].from : finds[i].from;
		if (from < 0)
			from = 0;
		int64_t line = -1, next = -1;
		size_t nlen = strlen(finds[i].needle);
		lr = db_log_search(db, logid, finds[i].needle, nlen, finds[i].flags, from,
				   finds[i].scan, &line, &next);
		if (lr == 0)
			snprintf(want, sizeof(want), "0 line %lld next %lld ", (long long)line,
				 (long long)next);
		else
			snprintf(want, sizeof(want), "%d line -1 next -1 %s", lr, db_errmsg(db));
		struct log_answer la = {0};
		snprintf(what, sizeof(what), "log %lld search '%s' flags %u from %lld scan %llu",
			 (long long)logid, finds[i].needle, finds[i].flags, (long long)from,
			 (unsigned long long)finds[i].scan);
		log_alike(db_log_search_async(pgdb, logid, finds[i].needle, nlen, finds[i].flags,
					      from, finds[i].scan, on_log_found, &la),
			  &la, want, NULL, what);
	}
}

/* ---- API tokens and push submissions ----------------------------------------------- */

struct tokens_answer {
	bool done;
	int r;
	json_t *list;
};

static bool tokens_answered(void *arg)
{
	return ((struct tokens_answer *)arg)->done;
}

static json_t *tokens_json(const struct db_token *v, size_t n)
{
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, json_pack("{s:I,s:I,s:s,s:I,s:I,s:I,s:I,s:I}", "id",
						      (json_int_t)v[i].id, "uid",
						      (json_int_t)v[i].uid, "name", v[i].name,
						      "scopes", (json_int_t)v[i].scopes, "created",
						      (json_int_t)v[i].created_at, "used",
						      (json_int_t)v[i].last_used_at, "revoked",
						      (json_int_t)v[i].revoked_at, "expires",
						      (json_int_t)v[i].expires_at));
	return list;
}

static void on_tokens(void *arg, int r, const struct db_token *v, size_t n, const char *err)
{
	struct tokens_answer *a = arg;
	(void)err;
	a->done = true;
	a->r = r;
	a->list = r == 0 ? tokens_json(v, n) : NULL;
}

static void compare_tokens_and_pushes(struct db *db)
{
	struct db_token *v = NULL;
	size_t n = 0;
	CHECK_INT(db_token_list(db, &v, &n), 0);
	CHECK_INT((int)n, 3);
	json_t *want = tokens_json(v, n);
	free(v);
	struct tokens_answer ta = {0};
	CHECK_INT(db_token_list_async(pgdb, on_tokens, &ta), 0);
	CHECK(test_run_until(&loop, tokens_answered, &ta, TEST_GUARD_MS));
	compared++;
	if (ta.r != 0 || !json_equal(want, ta.list)) {
		differed++;
		TAP_FAIL("token lists differ");
		show("SQLite", want);
		show("PostgreSQL", ta.list);
	}
	json_decref(want);
	json_decref(ta.list);

	for (int64_t id = 0; id <= 8; id++) {
		json_t *row = NULL;
		int lr = db_push_get(db, id, &row);
		json_t *lite = json_array();
		if (row)
			json_array_append_new(lite, row);
		struct pg_answer a = {0};
		char what[40];
		snprintf(what, sizeof(what), "push %lld", (long long)id);
		check_alike(lr == KILN_ENOTFOUND ? 0 : lr, lite,
			    db_push_get_async(pgdb, id, on_pg, &a), &a, what);
	}
	static const char *const pkgs[] = {NULL, "kiln", "Zlib", "none"};
	static const char *const hosts[] = {NULL, "deb12", "alpine"};
	static const char *const tags[] = {NULL, "nightly", "x86", "nigh"};
	for (size_t i = 0; i < 4; i++)
		for (size_t k = 0; k < 3; k++)
			for (size_t t = 0; t < 4; t++)
				for (int64_t lim = 1; lim <= 1000; lim *= 1000) {
					json_t *lite = NULL;
					int lr = db_push_latest(db, pkgs[i], hosts[k], tags[t], lim,
								&lite);
					struct pg_answer a = {0};
					char what[120];
					snprintf(what, sizeof(what),
						 "latest pushes of %s on %s tagged %s, %lld",
						 pkgs[i] ? pkgs[i] : "any",
						 hosts[k] ? hosts[k] : "any",
						 tags[t] ? tags[t] : "any", (long long)lim);
					check_alike(lr, lite,
						    db_push_latest_async(pgdb, pkgs[i], hosts[k],
									 tags[t], lim, on_pg, &a),
						    &a, what);
				}
}

/* ---- writes: the same ones on both, then the rows compared -------------------------- */

/* Builds' and steps' writes (docs/SCALING.md: on PostgreSQL a finish of
 * what is finished is a no-op where SQLite refuses it; the rows agree). */
static void apply_writes(struct db *d, bool pg)
{
	for (int64_t b = 1; b <= 3; b++) {
		char st[64];
		snprintf(st, sizeof(st), "state %lld: \"quoted\" \u00e9", (long long)b);
		CHECK_INT(db_build_set_state(d, b, st), 0);
		json_t *v = json_pack("{s:[i,f,s,b,n],s:{s:s}}", "list", (int)b, 2.5, "x\ny", 1,
				      "nested", "k", "\u20ac");
		CHECK_INT(db_build_set_property(d, b, "new prop", v, "Test"), 0);
		json_decref(v);
		json_t *p = json_string("replaced");
		CHECK_INT(db_build_set_property(d, b, "p", p, NULL), 0);
		json_decref(p);
		int r = db_build_finish(d, b, 3, b == 1 ? "warnings" : NULL, 1.7e9 + 500.125 + b);
		CHECK(r == 0 || (!pg && r == KILN_ESTATE)); /* builds 2 and 3 are finished */
	}
	for (int64_t s = 1; s <= 6; s++) {
		/* text that is not UTF-8: shown mended on both */
		CHECK_INT(db_step_set_state(d, s, s % 2 ? "odd \xff\xfe bad \xc3\x28" : ""), 0);
		CHECK_INT(db_step_start(d, s, 1.7e9 + 400.5 + (double)s), 0);
		CHECK_INT(db_step_add_url(d, s, "log \u00e9", "https://x/?a=1&b=<c>"), 0);
		CHECK_INT(db_step_add_url(d, s, "", NULL), 0);
		int r = db_step_finish(d, s, (int)s % 5, s == 2 ? NULL : "done", s == 4,
				       1.7e9 + 401.75 + (double)s);
		CHECK(r == 0 || (!pg && r == KILN_ESTATE));
	}
	json_t *info = json_pack("{s:s,s:i,s:b}", "admin", "\u00e9 <x@y>", "numcpus", 64, "ok", 1);
	CHECK_INT(db_worker_set_info(d, 2, info), 0);
	json_decref(info);
	CHECK_INT(db_worker_set_connected(d, 2, 2), 0);
	CHECK_INT(db_worker_set_connected(d, 1, 0), 0);
	CHECK_INT(db_worker_set_paused(d, 1, true), 0);
	CHECK_INT(db_worker_set_paused(d, 2, false), 0);
	CHECK_INT(db_worker_set_graceful(d, 2, true), 0);
	CHECK_INT(db_worker_set_last_seen(d, 2, 1.7e9 + 900.0625), 0);
	static const int64_t b23[] = {2, 3}, b1[] = {1};
	CHECK_INT(db_worker_set_configured(d, 1, 1, b23, 2), 0); /* b1 goes, b3 comes */
	CHECK_INT(db_worker_set_configured(d, 2, 1, b1, 1), 0);
	CHECK_INT(db_worker_set_configured(d, 2, 2, NULL, 0), 0); /* none left */
	CHECK_INT(db_master_set_active(d, 2, false, 1.7e9 + 950.5), 0);
	CHECK_INT(db_master_set_active(d, 1, true, 1.7e9 + 951.25), 0);
	static const int64_t m2[] = {2}, m12[] = {1, 2};
	CHECK_INT(db_builder_set_masters(d, 1, m2, 1), 0);
	CHECK_INT(db_builder_set_masters(d, 3, m12, 2), 0);
	CHECK_INT(db_builder_set_masters(d, 2, NULL, 0), 0);
	CHECK_INT(db_request_unclaim(d, 3), 0); /* build 1's, still running */
	int r = db_request_unclaim(d, 5);       /* complete */
	CHECK(r == 0 || (!pg && r == KILN_ESTATE));
	CHECK_INT(db_request_set_collapsed(d, 4, 1), 0);
	CHECK_INT(db_request_set_collapsed(d, 6, 0), 0);
	json_t *st = json_pack("{s:[i,s],s:f}", "seen", 1, "\u00e9", "at", 2.5);
	CHECK_INT(db_state_set(d, "poller:\"x\"", st), 0);
	CHECK_INT(db_state_set(d, "poller:\"x\"", st), 0); /* replaced by the same */
	CHECK_INT(db_state_set(d, "other", json_null()), 0);
	json_decref(st);
	CHECK_INT(db_user_set_roles(d, 1, "admin,force"), 0);
	CHECK_INT(db_outbound_retry(d, 1, 1700000999), 0);
	CHECK_INT(db_outbound_retry(d, 1, 1700001999), 0);
	CHECK_INT(db_outbound_delete(d, 2), 0);
	CHECK_INT(db_outbound_forget(d, "gh", "sha1", "success"), 0);
	CHECK_INT(db_push_update(d, 4, 9, -1, false, 1.7e9 + 77.5), 0);
	CHECK_INT(db_push_update(d, 1, 3, 2, true, 1.7e9 + 78.25), 0);
	CHECK_INT(db_push_expected_set(d, "kiln", "deb12", 0, 1), 0);
	CHECK_INT(db_push_expected_set(d, "new", "h\u00e9", 1.7e9 + 79.75, 0), 0);
	CHECK_INT(db_number_record(d, 1, 1, 1, "size", 12.5, 1.7e9 + 80.5), 0);
	struct db_number_rec many[] = {{.name = "size", .value = -3},
				       {.name = "warnings \u00e9", .value = 7, .stepid = 2}};
	CHECK_INT(db_numbers_record_many(d, 1, 2, many, 2, 1.7e9 + 81.5), 0);
	r = db_number_record(d, 2, 1, 0, "size", 1, 1.7e9); /* build 1 is builder 1's */
	CHECK(r == 0 || (!pg && r == KILN_ENOTFOUND));
	r = db_test_result_set_complete(d, 1, 9, 9, 9); /* complete already */
	CHECK(r == 0 || (!pg && r < 0));
	static const int64_t ch123[] = {1, 2, 3}, ch3[] = {3};
	CHECK_INT(db_buildset_add_changes(d, 1, ch123, 3), 0);
	CHECK_INT(db_buildset_add_changes(d, 2, ch3, 1), 0);
	static const char body[] = "--- a\n+++ b\n\x00\xff binary \xc3\xa9";
	struct db_patch patch = {.level = 2,
				 .body = body,
				 .len = sizeof(body) - 1,
				 .subdir = "sub",
				 .author = "\u00c9ve",
				 .comment = "try \"this\""};
	CHECK_INT(db_buildset_set_patch(d, 1, &patch), 0);
	patch.codebase = "lib";
	CHECK_INT(db_buildset_set_patch(d, 3, &patch), 0);
	patch.codebase = "none such";
	r = db_buildset_set_patch(d, 2, &patch);
	CHECK(r == 0 || (!pg && r == KILN_ENOTFOUND));
	/* changes: a new user, the same user by identity then by email, a user
	 * known by identifier, none; a parent on the same line */
	static const char *const files[] = {"a.c", "d\u00e9/b \"q\".c"};
	struct db_user_ident zoe = {.attr_type = "git",
				    .who = "Zo\u00eb <zoe@example.org>",
				    .full_name = "Zo\u00eb",
				    .email = "zoe@example.org"};
	struct db_user_ident zoe_svn = {
		.attr_type = "svn", .who = "zoe", .email = "zoe@example.org"};
	struct db_user_ident nobody = {.attr_type = "who", .who = "nobody", .email = ""};
	const struct db_user_ident *who[] = {&zoe, &zoe, &zoe_svn, &nobody, NULL};
	json_t *props = json_pack("{s:[s,s]}", "k", "v \u00e9", "Change");
	for (int i = 0; i < 5; i++) {
		struct db_change_new c = {.author = who[i] ? who[i]->who : NULL,
					  .comments = i == 1 ? "fix \xff\xfe" : "msg",
					  .branch = i == 4 ? NULL : "dev",
					  .revision = i == 3 ? NULL : "r",
					  .repository = "https://x/r.git",
					  .files = files,
					  .nfiles = (size_t)(i % 3),
					  .properties = i == 2 ? props : NULL,
					  .when_timestamp = 1.7e9 + 990.5 + i,
					  .user = who[i]};
		int64_t cid = 0, ssid = 0;
		CHECK_INT(db_change_add(d, &c, &cid, &ssid), 0);
		CHECK(cid > 0 && ssid > 0);
	}
	json_decref(props);
	/* test results of a running build: names new and known, code paths,
	 * text that is not UTF-8, every optional field absent or present */
	struct db_test_result_set_new ts = {
		.builderid = 1, .buildid = 1, .stepid = 2, .description = "pg \u00e9"};
	int64_t setid = 0;
	CHECK_INT(db_test_result_set_add(d, &ts, &setid), 0);
	struct db_test_result tr[] = {
		{.test_name = "t.ok", .duration_ns = 5, .results = RESULTS_SUCCESS},
		{.test_name = "t.new \xff",
		 .test_code_path = "t/new.c",
		 .line = 3,
		 .duration_ns = -1,
		 .results = RESULTS_FAILURE,
		 .message = "bad \xfe\nline"},
		{.test_code_path = "t/skip.c", .results = RESULTS_SKIPPED, .message = ""},
		{.test_name = "t.new \xff", .value = "42.5", .results = RESULTS_SUCCESS},
		{.test_name = "z.last",
		 .test_code_path = "t/z.c",
		 .duration_ns = 0,
		 .results = RESULTS_SUCCESS}};
	CHECK_INT(db_test_results_add(d, setid, tr, 5), 0);
	CHECK_INT(db_test_result_set_complete(d, setid, 3, 1, 1), 0);
}

/* sql's rows, every column as text ("NULL" for NULL), one line each. */
static void dump_sqlite(const char *sql, struct buf *out)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	if (sqlite3_open_v2(src_url + strlen("sqlite:"), &h, SQLITE_OPEN_READONLY, NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) {
		CHECK(buf_addf(out, "ERR %s", sqlite3_errmsg(h)) >= 0);
	} else {
		while (sqlite3_step(st) == SQLITE_ROW) {
			for (int c = 0; c < sqlite3_column_count(st); c++) {
				const char *v = (const char *)sqlite3_column_text(st, c);
				CHECK(buf_addf(out, "%s%s", c ? "|" : "", v ? v : "NULL") >= 0);
			}
			CHECK(buf_addch(out, '\n') >= 0);
		}
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
}

struct dump_answer {
	bool done;
	struct buf text;
};

static void on_dump(void *arg, int r, const PGresult *res, const char *err)
{
	struct dump_answer *a = arg;
	a->done = true;
	if (r < 0) {
		CHECK(buf_addf(&a->text, "ERR %s", err ? err : "") >= 0);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		for (int c = 0; c < PQnfields(res); c++)
			CHECK(buf_addf(&a->text, "%s%s", c ? "|" : "",
				       PQgetisnull(res, i, c) ? "NULL" : PQgetvalue(res, i, c)) >=
			      0);
		CHECK(buf_addch(&a->text, '\n') >= 0);
	}
}

static bool dump_answered(void *arg)
{
	return ((struct dump_answer *)arg)->done;
}

/* The same rows on both backends (booleans of PostgreSQL as SQLite's 1/0). */
static void compare_dump(const char *sql, const char *pg_sql)
{
	struct buf lite;
	buf_init(&lite, 1 << 20);
	dump_sqlite(sql, &lite);
	struct dump_answer a = {0};
	buf_init(&a.text, 1 << 20);
	struct pg_query q = {.sql = pg_sql};
	CHECK_INT(pg_batch_read(batch, &q, on_dump, &a), 0);
	CHECK(test_run_until(&loop, dump_answered, &a, TEST_GUARD_MS));
	for (size_t i = 0; i + 1 < a.text.len; i++) /* t/f of IS NULL */
		if ((a.text.ptr[i] == 't' || a.text.ptr[i] == 'f') &&
		    (i == 0 || a.text.ptr[i - 1] == '|') &&
		    (a.text.ptr[i + 1] == '\n' || a.text.ptr[i + 1] == '|'))
			a.text.ptr[i] = a.text.ptr[i] == 't' ? '1' : '0';
	compared++;
	if (lite.len != a.text.len || memcmp(lite.ptr, a.text.ptr, lite.len)) {
		differed++;
		TAP_FAIL("%s differs", sql);
		diag("  SQLite:\n%.*s", (int)lite.len, lite.ptr);
		diag("  PostgreSQL:\n%.*s", (int)a.text.len, a.text.ptr);
	}
	buf_release(&lite);
	buf_release(&a.text);
}

struct build_added {
	bool done;
	int r;
	int64_t buildid, number;
};

static void on_build_added(void *arg, int r, int64_t buildid, int64_t number, const char *err)
{
	struct build_added *a = arg;
	(void)err;
	a->done = true;
	a->r = r;
	a->buildid = buildid;
	a->number = number;
}

static bool build_was_added(void *arg)
{
	return ((struct build_added *)arg)->done;
}

/* A build's life on d: added (numbered), steps begun (a repeated name made
 * unique), logs added (a name or slug taken refused), finished.  Returns
 * what the calls answered, as text, to be the same on both backends. */
static void build_life(struct db *d, char *out, size_t n)
{
	struct build_added a = {0};
	CHECK_INT(db_build_add_async(d, 2, 0, 2, 2, 1.7e9 + 990.5, on_build_added, &a), 0);
	CHECK(!a.done); /* never from inside */
	CHECK(test_run_until(&loop, build_was_added, &a, TEST_GUARD_MS));
	int64_t bid = a.buildid, sid[4], num[4], lid[4];
	static const char *const names[] = {"compile", "compile", "compile_1", "test \u00e9"};
	int r[32], k = 0;
	for (int i = 0; i < 4; i++)
		r[k++] = db_step_begin(d, bid, names[i], i ? 1.7e9 + 991 + i : 0,
				       i == 3 ? "running \xff" : NULL, &sid[i], &num[i]);
	r[k++] = db_log_add(d, sid[0], "stdio", 's', &lid[0]);
	r[k++] = db_log_add(d, sid[0], "std io", 't', &lid[1]);
	r[k++] = db_log_add(d, sid[0], "std_io", 'h', &lid[2]); /* its slug is taken */
	r[k++] = db_log_add(d, sid[0], "stdio", 's', &lid[2]);  /* its name is taken */
	r[k++] = db_log_add(d, sid[3], "stdio", 'h', &lid[3]);
	/* appends: lines that stay in the tail, chunks that close (compressed),
	 * a line longer than a chunk, one without its newline; one log finished,
	 * one left open (its tail in memory, its row written each turn) */
	struct buf big;
	buf_init(&big, 1 << 22);
	for (int i = 0; i < 6000; i++)
		CHECK(buf_addf(&big, "%c appended line %d %s\n", i % 2 ? 'o' : 'e', i,
			       i % 1000 == 7 ? "Needle" : "") >= 0);
	r[k++] = db_log_append(d, lid[0], "ofirst\n", 7);
	r[k++] = db_log_append(d, lid[0], big.ptr, big.len);
	buf_reset(&big);
	CHECK(buf_addch(&big, 'o') >= 0);
	for (int i = 0; i < 70000; i++)
		CHECK(buf_addch(&big, (char)('a' + i % 26)) >= 0);
	r[k++] = db_log_append(d, lid[0], big.ptr, big.len); /* no newline */
	buf_release(&big);
	r[k++] = db_log_finish(d, lid[0]);
	r[k++] = db_log_append(d, lid[0], "olate\n", 6); /* finished */
	r[k++] = db_log_append(d, lid[1], "a text log\nsecond line\n", 24);
	r[k++] = db_log_append(d, lid[3], "<b>html</b>\n", 12);
	r[k++] = db_log_finish(d, lid[3]);
	struct db_test_result_set_new ts = {
		.builderid = 2, .buildid = bid, .stepid = sid[3], .description = "unit \u00e9"};
	int64_t setid = 0, artid = 0;
	r[k++] = db_test_result_set_add(d, &ts, &setid);
	r[k++] = db_test_result_set_complete(d, setid, 4, 1, 0);
	struct db_artifact art = {.buildid = bid,
				  .stepid = sid[0],
				  .name = "dist/app.tar",
				  .path = "b/4/app.tar",
				  .size = 1 << 20,
				  .sha256 = "ffeeddccbbaa99887766554433221100"
					    "ffeeddccbbaa99887766554433221100",
				  .created_at = 1.7e9 + 998.5,
				  .dir = "b/4/dist"};
	r[k++] = db_artifact_add(d, &art, &artid);
	art.stepid = 0;
	art.dir = NULL;
	art.name = "second";
	r[k++] = db_artifact_add(d, &art, NULL);
	r[k++] = (int)setid * 1000 + (int)artid;
	struct db_sourcestamp ss[] = {
		{.branch = "z", .revision = "9f", .codebase = "zlib", .repository = "r\u00e9po"},
		{.branch = "main", .codebase = "app", .project = "p"}};
	json_t *props = json_pack("{s:[is]}", "n", 5, "Force");
	struct db_buildset_new bs = {.reason = "forced \"here\"",
				     .scheduler = "force",
				     .external_idstring = "ext-9",
				     .properties = props,
				     .sourcestamps = ss,
				     .nsourcestamps = 2,
				     .parent_buildid = bid,
				     .priority = 3,
				     .submitted_at = 1.7e9 + 1001.5};
	static const int64_t builders[] = {1, 3};
	int64_t bsid = 0, brids[2] = {0, 0};
	r[k++] = db_buildset_add(d, &bs, builders, 2, &bsid, brids);
	json_decref(props);
	r[k++] = (int)(bsid * 10000 + brids[0] * 100 + brids[1]);
	r[k++] = db_step_finish(d, sid[0], 0, "done", false, 1.7e9 + 999.25);
	json_t *v = json_integer(7);
	r[k++] = db_build_set_property(d, bid, "seven", v, "Test");
	json_decref(v);
	r[k++] = db_build_finish(d, bid, 2, "failed", 1.7e9 + 1000.5);
	if (db_is_postgresql(d)) { /* a finished build takes no more steps there */
		int64_t s5, n5;
		CHECK_INT(db_step_begin(d, bid, "after", 0, NULL, &s5, &n5), KILN_ESTATE);
	}
	int len = snprintf(out, n, "build %lld #%lld r %d; steps", (long long)bid,
			   (long long)a.number, a.r);
	for (int i = 0; i < 4; i++)
		len += snprintf(out + len, n - (size_t)len, " %lld#%lld", (long long)sid[i],
				(long long)num[i]);
	len += snprintf(out + len, n - (size_t)len, "; logs %lld %lld %lld; r", (long long)lid[0],
			(long long)lid[1], (long long)lid[3]);
	for (int i = 0; i < k; i++)
		len += snprintf(out + len, n - (size_t)len, " %d", r[i]);
}

struct id_answer {
	bool done;
	int r;
	int64_t id;
};

static void on_id(void *arg, int r, int64_t id, const char *err)
{
	struct id_answer *a = arg;
	(void)err;
	a->done = true;
	a->r = r;
	a->id = id;
}

static bool id_answered(void *arg)
{
	return ((struct id_answer *)arg)->done;
}

/* Builders and workers ensured by name (unchanged, changed, new): their
 * ids as text. */
static void ensure_named(struct db *d, char *out, size_t n)
{
	static const struct {
		enum db_named kind;
		const char *name, *description, *tags;
	} v[] = {
		{DB_NAMED_BUILDER, "linux", "Linux builds", NULL},  /* unchanged */
		{DB_NAMED_BUILDER, "Zeta", "Z changed", "[\"t\"]"}, /* changed */
		{DB_NAMED_BUILDER, "new \u00e9", NULL, "[]"},       /* new */
		{DB_NAMED_WORKER, "w1", NULL, NULL},
		{DB_NAMED_WORKER, "w3", NULL, NULL},
		{DB_NAMED_WORKER, "w3", NULL, NULL},
	};
	size_t len = 0;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct id_answer a = {0};
		int r = db_ensure_async(d, v[i].kind, v[i].name, v[i].description, v[i].tags, on_id,
					&a);
		if (r == 0 && !test_run_until(&loop, id_answered, &a, TEST_GUARD_MS))
			r = -ETIMEDOUT;
		len += (size_t)snprintf(out + len, n - len, "%d:%lld ", r ? r : a.r,
					(long long)a.id);
	}
	struct id_answer bad = {0};
	CHECK_INT(db_ensure_async(d, DB_NAMED_BUILDER, "b", NULL, "{}", on_id, &bad), -EINVAL);
	CHECK_INT(db_ensure_async(d, DB_NAMED_WORKER, "", NULL, NULL, on_id, &bad), -EINVAL);
}

struct claim_answer {
	int calls, r;
	int64_t ids[512];
	int n;
};

static void on_claim(void *arg, int r, const struct db_request *req, const char *err)
{
	struct claim_answer *a = arg;
	(void)err;
	a->calls++;
	if (r < 0)
		a->r = r;
	if (req && a->n < 512)
		a->ids[a->n++] = req->buildrequestid;
}

struct claims_done {
	struct claim_answer *a;
	int want;
};

static bool claims_answered(void *arg)
{
	struct claims_done *d = arg;
	return d->a->calls >= d->want;
}

struct pending_answer {
	bool done;
	int r;
	char text[256];
};

static void on_pending(void *arg, int r, const int64_t *ids, size_t n, const char *err)
{
	struct pending_answer *a = arg;
	(void)err;
	a->done = true;
	a->r = r;
	size_t len = 0;
	for (size_t i = 0; i < n && len < sizeof(a->text) - 24; i++)
		len += (size_t)snprintf(a->text + len, sizeof(a->text) - len, "%lld ",
					(long long)ids[i]);
}

static bool pending_answered(void *arg)
{
	return ((struct pending_answer *)arg)->done;
}

/* The builders with queued requests, on both backends. */
static void compare_pending(struct db *db)
{
	struct pending_answer la = {0}, pa = {0};
	CHECK_INT(db_request_pending_builders_async(db, on_pending, &la), 0);
	CHECK_INT(db_request_pending_builders_async(pgdb, on_pending, &pa), 0);
	CHECK(test_run_until(&loop, pending_answered, &la, TEST_GUARD_MS));
	CHECK(test_run_until(&loop, pending_answered, &pa, TEST_GUARD_MS));
	compared++;
	CHECK_INT(la.r, 0);
	CHECK(la.text[0]); /* the fixture has queued requests */
	if (la.r != pa.r || strcmp(la.text, pa.text)) {
		differed++;
		TAP_FAIL("pending builders: SQLite %d '%s', PostgreSQL %d '%s'", la.r, la.text,
			 pa.r, pa.text);
	}
}

static void on_counts(void *arg, int r, const int64_t *ids, const int64_t *counts, size_t n,
		      const char *err)
{
	struct pending_answer *a = arg;
	(void)err;
	a->done = true;
	a->r = r;
	size_t len = 0;
	for (size_t i = 0; i < n && len < sizeof(a->text) - 48; i++)
		len += (size_t)snprintf(a->text + len, sizeof(a->text) - len, "%lld:%lld ",
					(long long)ids[i], (long long)counts[i]);
}

/* The queued requests counted per builder (/metrics), on both backends,
 * whole and capped at 1. */
static void compare_queued_counts(struct db *db)
{
	for (int64_t cap = 10000; cap >= 1; cap = cap == 1 ? 0 : 1) {
		struct pending_answer la = {0}, pa = {0};
		CHECK_INT(db_request_queued_counts_async(db, cap, on_counts, &la), 0);
		CHECK_INT(db_request_queued_counts_async(pgdb, cap, on_counts, &pa), 0);
		CHECK(test_run_until(&loop, pending_answered, &la, TEST_GUARD_MS));
		CHECK(test_run_until(&loop, pending_answered, &pa, TEST_GUARD_MS));
		compared++;
		CHECK_INT(la.r, 0);
		CHECK(la.text[0]); /* the fixture has queued requests */
		if (la.r != pa.r || strcmp(la.text, pa.text)) {
			differed++;
			TAP_FAIL("queued counts (cap %lld): SQLite %d '%s', PostgreSQL %d '%s'",
				 (long long)cap, la.r, la.text, pa.r, pa.text);
		}
	}
}

static void on_qinfo(void *arg, int r, const struct db_queue_info *qi, const char *err)
{
	struct num_answer *a = arg;
	a->done = true;
	size_t len =
		(size_t)snprintf(a->text, sizeof(a->text), "r=%d %s", r, r < 0 && err ? err : "");
	for (size_t i = 0; qi && i < qi->nreq && len < sizeof(a->text) - 80; i++)
		len += (size_t)snprintf(a->text + len, sizeof(a->text) - len, " req %lld@%lld:%lld",
					(long long)qi->brids[i], (long long)qi->builderids[i],
					(long long)qi->pos[i]);
	for (size_t i = 0; qi && i < qi->nrun && len < sizeof(a->text) - 80; i++)
		len += (size_t)snprintf(a->text + len, sizeof(a->text) - len, " run %lld:%.3f",
					(long long)qi->run_builderids[i], qi->run_starts[i]);
}

/* Queue positions and running builds (a queued request's estimated
 * start), for every request id of the fixture and some that are not. */
static void compare_queue_info(struct db *db)
{
	int64_t ids[40];
	for (size_t i = 0; i < 40; i++)
		ids[i] = (int64_t)i + 1;
	for (size_t max = 1; max <= 100; max *= 10) {
		char what[64];
		snprintf(what, sizeof(what), "queue info (max %zu)", max);
		NUM_ALIKE(what, db_requests_queue_info_async(db, ids, 40, max, on_qinfo, &la),
			  db_requests_queue_info_async(pgdb, ids, 40, max, on_qinfo, &pa));
	}
}

/* A build's interested users (the email reporter's), on both backends:
 * the fixture's builds link changes by Ann (a user with identities) and
 * Bob; extras by identifier, by an identity's attr_data, unknown, empty. */
static void compare_interested(struct db *db)
{
	static const char *const extras[] = {"ann", "Bob <bob@example.org>", "nobody", ""};
	for (int64_t buildid = 1; buildid <= 4; buildid++)
		for (size_t nx = 0; nx <= 4; nx += 2) {
			struct pending_answer la = {0}, pa = {0};
			const char *const *ex = nx ? extras + (nx == 4 ? 0 : 1) : NULL;
			size_t n = nx == 4 ? 4 : nx ? 3 : 0;
			CHECK_INT(db_build_interested_users_async(db, buildid, ex, n, on_pending,
								  &la),
				  0);
			CHECK_INT(db_build_interested_users_async(pgdb, buildid, ex, n, on_pending,
								  &pa),
				  0);
			CHECK(test_run_until(&loop, pending_answered, &la, TEST_GUARD_MS));
			CHECK(test_run_until(&loop, pending_answered, &pa, TEST_GUARD_MS));
			compared++;
			CHECK_INT(la.r, 0);
			if (la.r != pa.r || strcmp(la.text, pa.text)) {
				differed++;
				TAP_FAIL("interested users of build %lld (%zu extras): SQLite %d "
					 "'%s', PostgreSQL %d '%s'",
					 (long long)buildid, n, la.r, la.text, pa.r, pa.text);
			}
		}
	struct pending_answer la = {0}, pa = {0};
	CHECK_INT(db_build_interested_users_async(db, 999, NULL, 0, on_pending, &la), 0);
	CHECK_INT(db_build_interested_users_async(pgdb, 999, NULL, 0, on_pending, &pa), 0);
	CHECK(test_run_until(&loop, pending_answered, &la, TEST_GUARD_MS));
	CHECK(test_run_until(&loop, pending_answered, &pa, TEST_GUARD_MS));
	CHECK_INT(la.r, KILN_ENOTFOUND);
	CHECK_INT(pa.r, KILN_ENOTFOUND);
}

/* Two PostgreSQL masters claiming from one queue at once: every request
 * claimed once, by one of them; and the first claim agrees with SQLite's
 * order (priority, then age). */
static void compare_claims(struct db *db)
{
	struct claim_answer la = {0}, pa = {0};
	CHECK_INT(db_request_claim_next_async(db, 1, 1, 1.7e9 + 2000, on_claim, &la), 0);
	CHECK_INT(db_request_claim_next_async(pgdb, 1, 1, 1.7e9 + 2000, on_claim, &pa), 0);
	struct claims_done dl = {&la, 1}, dp = {&pa, 1};
	CHECK(test_run_until(&loop, claims_answered, &dl, TEST_GUARD_MS));
	CHECK(test_run_until(&loop, claims_answered, &dp, TEST_GUARD_MS));
	compared++;
	if (la.n != pa.n || (la.n && la.ids[0] != pa.ids[0])) {
		differed++;
		TAP_FAIL("first claim: SQLite %d (%lld), PostgreSQL %d (%lld)", la.n,
			 (long long)(la.n ? la.ids[0] : 0), pa.n,
			 (long long)(pa.n ? pa.ids[0] : 0));
	}
}

static void on_head(void *arg, int r, const struct db_request_head *v, size_t n, const char *err)
{
	struct num_answer *a = arg;
	a->done = true;
	size_t len = (size_t)snprintf(a->text, sizeof(a->text), "r=%d n=%zu %s", r, n,
				      r < 0 && err ? err : "");
	for (size_t i = 0; i < n && len < sizeof(a->text) - 300; i++) {
		char *props = v[i].properties
				      ? json_dumps(v[i].properties, JSON_COMPACT | JSON_SORT_KEYS)
				      : NULL;
		len += (size_t)snprintf(
			a->text + len, sizeof(a->text) - len, " %lld/%lld p%d %.0f '%s' %.80s",
			(long long)v[i].req.buildrequestid, (long long)v[i].req.buildsetid,
			v[i].req.priority, v[i].req.submitted_at, v[i].reason ? v[i].reason : "-",
			props ? props : "-");
		free(props);
	}
}

static void on_sums(void *arg, int r, const int64_t *ids, const int *prio, const double *oldest,
		    size_t n, const char *err)
{
	struct num_answer *a = arg;
	a->done = true;
	size_t len =
		(size_t)snprintf(a->text, sizeof(a->text), "r=%d %s", r, r < 0 && err ? err : "");
	for (size_t i = 0; i < n && len < sizeof(a->text) - 80; i++)
		len += (size_t)snprintf(a->text + len, sizeof(a->text) - len, " %lld:p%d:%.0f",
					(long long)ids[i], prio[i], oldest[i]);
}

static void on_claim_id(void *arg, int r, const struct db_request *req, const char *err)
{
	struct num_answer *a = arg;
	a->done = true;
	snprintf(a->text, sizeof(a->text), "r=%d %lld %s", r,
		 (long long)(req ? req->buildrequestid : 0), r < 0 && err ? err : "");
}

/* The Lua dispatch hooks' reads (the head of each builder's queue with its
 * buildsets' reasons and properties, the queues' summaries) and their
 * claim of a given request: the first queued one, again (taken), and one
 * that is not there. */
static void compare_dispatch(struct db *db)
{
	for (int64_t b = 1; b <= 4; b++)
		for (size_t max = 1; max <= 100; max *= 100) {
			char what[64];
			snprintf(what, sizeof(what), "queue head of builder %lld (max %zu)",
				 (long long)b, max);
			NUM_ALIKE(what, db_request_queue_head_async(db, b, max, on_head, &la),
				  db_request_queue_head_async(pgdb, b, max, on_head, &pa));
		}
	const int64_t ids[] = {3, 99, 1, 2};
	NUM_ALIKE("summaries", db_request_summaries_async(db, ids, 4, on_sums, &la),
		  db_request_summaries_async(pgdb, ids, 4, on_sums, &pa));
	struct num_answer h = {0};
	CHECK_INT(db_request_queue_head_async(db, 2, 1, on_head, &h), 0);
	CHECK(test_run_until(&loop, num_answered, &h, TEST_GUARD_MS));
	long long brid = 0;
	CHECK(sscanf(h.text, "r=0 n=1 %lld/", &brid) == 1);
	for (int again = 0; again < 2; again++)
		NUM_ALIKE("claim a given request",
			  db_request_claim_id_async(db, brid, 1, 1.7e9 + 3000, on_claim_id, &la),
			  db_request_claim_id_async(pgdb, brid, 1, 1.7e9 + 3000, on_claim_id, &pa));
	NUM_ALIKE("claim a request that is not there",
		  db_request_claim_id_async(db, 9999, 1, 1.7e9 + 3000, on_claim_id, &la),
		  db_request_claim_id_async(pgdb, 9999, 1, 1.7e9 + 3000, on_claim_id, &pa));
}

static json_t *opt_str(const char *s)
{
	return s ? json_string(s) : json_null();
}

struct lines_answer {
	bool done;
	int r;
	char *text;
};

static void on_lines(void *arg, int r, const struct db_request_line *v, size_t n, const char *err)
{
	struct lines_answer *a = arg;
	a->done = true;
	a->r = r;
	if (r < 0) {
		CHECK(err && *err);
		return;
	}
	json_t *j = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(j,
				      json_pack("[I,I,o,o,o,o,o]", (json_int_t)v[i].buildrequestid,
						(json_int_t)v[i].buildsetid, opt_str(v[i].branch),
						opt_str(v[i].revision), opt_str(v[i].repository),
						opt_str(v[i].project), opt_str(v[i].codebase)));
	a->text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
}

static bool lines_answered(void *arg)
{
	return ((struct lines_answer *)arg)->done;
}

static void lines_alike(struct lines_answer *la, struct lines_answer *pa, const char *what)
{
	CHECK(test_run_until(&loop, lines_answered, la, TEST_GUARD_MS));
	CHECK(test_run_until(&loop, lines_answered, pa, TEST_GUARD_MS));
	compared++;
	if (la->r != pa->r || (la->text && (!pa->text || strcmp(la->text, pa->text)))) {
		differed++;
		TAP_FAIL("%s: SQLite %d %s, PostgreSQL %d %s", what, la->r,
			 la->text ? la->text : "", pa->r, pa->text ? pa->text : "");
	}
}

/* collapse_requests' reads and claims: each request's line and its
 * compatible queued requests, then claims of a list (queued, claimed,
 * missing), alike on both backends. */
static void compare_collapse(struct db *db)
{
	bool some = false;
	for (int64_t brid = 1; brid <= 13; brid++) {
		int64_t id = brid == 13 ? 99999 : brid;
		struct lines_answer la = {0}, pa = {0};
		CHECK_INT(db_request_compatible_async(db, id, 10, on_lines, &la), 0);
		CHECK_INT(db_request_compatible_async(pgdb, id, 10, on_lines, &pa), 0);
		char what[64];
		snprintf(what, sizeof(what), "compatible with request %lld", (long long)id);
		lines_alike(&la, &pa, what);
		CHECK_INT(la.r, 0);
		if (id == 99999)
			CHECK_STR(la.text, "[]");
		some |= la.text && strstr(la.text, "],[") != NULL; /* one compatible at least */
		free(la.text);
		free(pa.text);
	}
	CHECK(some);
	/* the requests each buildset supersedes (bs 6's: bs 5's, one line) */
	some = false;
	for (int64_t builderid = 1; builderid <= 3; builderid++)
		for (int64_t i = 1; i <= 8; i++) {
			int64_t bsid = i == 8 ? 99999 : i;
			struct lines_answer la = {0}, pa = {0};
			CHECK_INT(db_request_superseded_async(db, builderid, bsid, on_lines, &la),
				  0);
			CHECK_INT(db_request_superseded_async(pgdb, builderid, bsid, on_lines, &pa),
				  0);
			char what[80];
			snprintf(what, sizeof(what), "superseded by buildset %lld on builder %lld",
				 (long long)bsid, (long long)builderid);
			lines_alike(&la, &pa, what);
			CHECK_INT(la.r, 0);
			if (bsid == 99999)
				CHECK_STR(la.text, "[]");
			some |= la.text && strstr(la.text, "],[") != NULL;
			free(la.text);
			free(pa.text);
		}
	CHECK(some);
	/* claimed in the list's order, the rest of the list passed over (3 is
	 * claimed, 5 complete) */
	static const int64_t ids[] = {4, 99999, 2, 3, 5, 4};
	struct lines_answer la = {0}, pa = {0};
	CHECK_INT(db_request_claim_many_async(db, ids, 6, 1, 1.7e9 + 2100, on_lines, &la), 0);
	CHECK_INT(db_request_claim_many_async(pgdb, ids, 6, 1, 1.7e9 + 2100, on_lines, &pa), 0);
	lines_alike(&la, &pa, "claims of a list");
	CHECK_INT(la.r, 0);
	CHECK(la.text && strncmp(la.text, "[[4,2,", 6) == 0);
	diag("claimed of [4, 99999, 2, 3, 5, 4]: %s", la.text ? la.text : "");
	free(la.text);
	free(pa.text);
}

struct eta_answer {
	bool done;
	int r;
	char *text;
};

static void on_eta(void *arg, int r, const struct db_eta_samples *es, const char *err)
{
	struct eta_answer *a = arg;
	a->done = true;
	a->r = r;
	if (r < 0) {
		CHECK(err && *err);
		return;
	}
	json_t *j = json_pack("{s:[],s:[]}", "builds", "steps");
	for (size_t i = 0; i < es->nbuilds; i++)
		json_array_append_new(json_object_get(j, "builds"), json_real(es->durations[i]));
	for (size_t i = 0; i < es->nsteps; i++)
		json_array_append_new(json_object_get(j, "steps"),
				      json_pack("[I,s,f]", (json_int_t)es->steps[i].stepid,
						es->steps[i].name, es->steps[i].duration));
	a->text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
}

static bool eta_answered(void *arg)
{
	return ((struct eta_answer *)arg)->done;
}

/* The ETA's samples of each builder (one with finished builds and steps,
 * others with none, one that does not exist), alike on both backends. */
static void compare_eta(struct db *db)
{
	bool some = false;
	for (int64_t builderid = 1; builderid <= 4; builderid++) {
		int64_t id = builderid == 4 ? 99999 : builderid;
		struct eta_answer la = {0}, pa = {0};
		CHECK_INT(db_eta_samples_async(db, id, on_eta, &la), 0);
		CHECK_INT(db_eta_samples_async(pgdb, id, on_eta, &pa), 0);
		CHECK(test_run_until(&loop, eta_answered, &la, TEST_GUARD_MS));
		CHECK(test_run_until(&loop, eta_answered, &pa, TEST_GUARD_MS));
		compared++;
		if (la.r != pa.r || (la.text && (!pa.text || strcmp(la.text, pa.text)))) {
			differed++;
			TAP_FAIL("ETA samples of builder %lld: SQLite %d %s, PostgreSQL %d %s",
				 (long long)id, la.r, la.text ? la.text : "", pa.r,
				 pa.text ? pa.text : "");
		}
		CHECK_INT(la.r, 0);
		some |= la.text && strstr(la.text, "\"git\"") != NULL;
		free(la.text);
		free(pa.text);
	}
	CHECK(some);
}

struct bsid_answer {
	bool done;
	int r;
	int64_t bsid;
	int bs_results;
};

static void on_bsid(void *arg, int r, int64_t bsid, int bs_results, const char *err)
{
	struct bsid_answer *a = arg;
	(void)err;
	a->done = true;
	a->r = r;
	a->bsid = bsid;
	a->bs_results = bs_results;
}

static bool bsid_answered(void *arg)
{
	return ((struct bsid_answer *)arg)->done;
}

/* Requests completed, the buildset with its last one: answers as text. */
static void complete_requests(struct db *d, char *out, size_t n)
{
	static const int64_t brids[] = {9, 10, 10, 99999};
	size_t len = 0;
	for (size_t i = 0; i < 4; i++) {
		struct bsid_answer a = {0};
		int r = db_request_complete_async(d, brids[i], (int)i, 1.7e9 + 5000 + (double)i,
						  on_bsid, &a);
		if (r == 0 && !test_run_until(&loop, bsid_answered, &a, TEST_GUARD_MS))
			r = -ETIMEDOUT;
		len += (size_t)snprintf(out + len, n - len, "%d:%lld:%d ", r ? r : a.r,
					(long long)a.bsid, a.bs_results);
	}
}

/* ---- a build's inputs ------------------------------------------------------------------ */

struct inputs_answer {
	bool done;
	int r;
	char *text; /* the inputs as JSON text */
};

static void on_inputs(void *arg, int r, struct db_build_inputs *in, const char *err)
{
	struct inputs_answer *a = arg;
	a->done = true;
	a->r = r;
	if (r < 0) {
		CHECK(err && *err);
		CHECK(!in);
		return;
	}
	const struct db_buildset_info *bi = &in->bs;
	json_t *ss = json_array();
	for (size_t i = 0; i < in->nss; i++)
		json_array_append_new(
			ss, json_pack("[o,o,o,o,o]", opt_str(in->ss[i].branch),
				      opt_str(in->ss[i].revision), opt_str(in->ss[i].repository),
				      opt_str(in->ss[i].project), opt_str(in->ss[i].codebase)));
	json_t *j = json_pack(
		"{s:I, s:o, s:o, s:b, s:i, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:O, "
		"s:O}",
		"bsid", (json_int_t)bi->bsid, "scheduler", opt_str(bi->scheduler), "reason",
		opt_str(bi->reason), "complete", bi->complete, "results", bi->results, "parent",
		(json_int_t)bi->parent_buildid, "nss", (json_int_t)bi->nsourcestamps, "patchid",
		(json_int_t)bi->patchid, "npatches", (json_int_t)bi->npatches, "branch",
		opt_str(bi->branch), "revision", opt_str(bi->revision), "repository",
		opt_str(bi->repository), "project", opt_str(bi->project), "codebase",
		opt_str(bi->codebase), "ss", ss, "props", in->props, "blamelist", in->blamelist);
	a->text = json_dumps(j, JSON_SORT_KEYS);
	json_decref(j);
	/* the callback may take what it wants */
	free(in->ss);
	in->ss = NULL;
	in->nss = 0;
}

static bool inputs_answered(void *arg)
{
	return ((struct inputs_answer *)arg)->done;
}

/* Each buildset's inputs (one waiting, with changes, with two codebases,
 * with a patch) and one that is not there: alike on both backends. */
static void compare_inputs(struct db *db)
{
	for (int64_t bsid = 1; bsid <= 5; bsid++) {
		int64_t id = bsid == 5 ? 99999 : bsid;
		struct inputs_answer la = {0}, pa = {0};
		CHECK_INT(db_build_inputs_async(db, id, on_inputs, &la), 0);
		CHECK_INT(db_build_inputs_async(pgdb, id, on_inputs, &pa), 0);
		CHECK(test_run_until(&loop, inputs_answered, &la, TEST_GUARD_MS));
		CHECK(test_run_until(&loop, inputs_answered, &pa, TEST_GUARD_MS));
		compared++;
		if (la.r != pa.r || (la.text && (!pa.text || strcmp(la.text, pa.text)))) {
			differed++;
			TAP_FAIL("inputs of buildset %lld: SQLite %d %s, PostgreSQL %d %s",
				 (long long)id, la.r, la.text ? la.text : "", pa.r,
				 pa.text ? pa.text : "");
		}
		CHECK_INT(la.r, id == 99999 ? KILN_ENOTFOUND : 0);
		if (id == 4) /* a try patch */
			CHECK(la.text && strstr(la.text, "\"npatches\": 1"));
		if (id == 3) /* two codebases, three changes' authors in two */
			CHECK(la.text && strstr(la.text, "\"lib\"") &&
			      strstr(la.text,
				     "[\"Ann <ann@example.org>\", \"Bob <bob@example.org>\"]"));
		free(la.text);
		free(pa.text);
	}
}

struct commit_failure {
	int calls, r;
	char err[512];
};

static void on_commit_error(struct db *d, int r, const char *errmsg, void *ud)
{
	struct commit_failure *cf = ud;
	(void)d;
	cf->calls++;
	cf->r = r;
	snprintf(cf->err, sizeof(cf->err), "%s", errmsg ? errmsg : "");
}

static bool commit_failed(void *arg)
{
	return ((struct commit_failure *)arg)->calls > 0;
}

static void compare_writes(struct db *db)
{
	apply_writes(db, false);
	apply_writes(pgdb, true);
	char lite_life[512], pg_life[512];
	build_life(db, lite_life, sizeof(lite_life));
	build_life(pgdb, pg_life, sizeof(pg_life));
	diag("a build's life: %s", lite_life);
	char lite_done[128], pg_done[128];
	complete_requests(db, lite_done, sizeof(lite_done));
	complete_requests(pgdb, pg_done, sizeof(pg_done));
	diag("requests completed: %s", lite_done);
	compared++;
	if (strcmp(lite_done, pg_done)) {
		differed++;
		TAP_FAIL("requests completed: SQLite '%s', PostgreSQL '%s'", lite_done, pg_done);
	}
	char lite_named[256], pg_named[256];
	ensure_named(db, lite_named, sizeof(lite_named));
	ensure_named(pgdb, pg_named, sizeof(pg_named));
	diag("ensured by name: %s", lite_named);
	compared++;
	if (strcmp(lite_named, pg_named)) {
		differed++;
		TAP_FAIL("ensured by name: SQLite '%s', PostgreSQL '%s'", lite_named, pg_named);
	}
	struct id_answer ma = {0};
	CHECK_INT(db_ensure_async(pgdb, DB_NAMED_MASTER, "host:/m2", NULL, NULL, on_id, &ma), 0);
	CHECK(test_run_until(&loop, id_answered, &ma, TEST_GUARD_MS));
	CHECK_INT(ma.r, 0);
	CHECK_INT((int)ma.id, 2); /* the existing row's, active again */
	/* the same flag and time on both (registering stamps the time now) */
	CHECK_INT(db_master_set_active(db, 2, true, 1.7e9 + 1234.5), 0);
	CHECK_INT(db_master_set_active(pgdb, 2, true, 1.7e9 + 1234.5), 0);
	compared++;
	if (strcmp(lite_life, pg_life)) {
		differed++;
		TAP_FAIL("a build's life: SQLite '%s', PostgreSQL '%s'", lite_life, pg_life);
	}
	/* a read on pgdb's connection comes after its writes' COMMIT */
	struct pg_answer a = {0};
	static const int64_t one[] = {1};
	CHECK_INT(db_list_rows_async(pgdb, DB_BUILDS, one, 1, NULL, on_pg, &a), 0);
	CHECK(test_run_until(&loop, pg_answered, &a, TEST_GUARD_MS));
	CHECK_INT(a.r, 0);
	json_decref(a.items);
	long before = differed;
	compare_resource(db, DB_BUILDS, "builds after writes");
	compare_resource(db, DB_STEPS, "steps after writes");
	compare_resource(db, DB_WORKERS, "workers after writes");
	compare_resource(db, DB_BUILDERS, "builders after writes");
	compare_resource(db, DB_MASTERS, "masters after writes");
	compare_resource(db, DB_BUILDREQUESTS, "buildrequests after writes");
	CHECK(differed == before);
	compare_resource(db, DB_USERS, "users after writes");
	compare_resource(db, DB_LOGS, "logs after writes");
	for (int64_t logid = 10; logid <= 12; logid++) /* the build's life's */
		compare_log(db, logid);
	for (int64_t b = 1; b <= 4; b++) {
		json_t *lite = NULL;
		int lr = db_artifacts_of_build(db, b, -1, &lite);
		struct pg_answer ba = {0};
		char what[60];
		snprintf(what, sizeof(what), "artifacts of build %lld after writes", (long long)b);
		check_alike(lr, lite, db_artifacts_of_build_async(pgdb, b, -1, on_pg, &ba), &ba,
			    what);
	}
	compare_resource(db, DB_SOURCESTAMPS, "sourcestamps after writes");
	compare_resource(db, DB_BUILDSETS, "buildsets after writes");
	compare_resource(db, DB_TEST_RESULT_SETS, "test result sets after writes");
	compare_resource(db, DB_CHANGES, "changes after writes");
	compare_resource(db, DB_TEST_RESULTS, "test results after writes");
	for (int64_t b = 1; b <= 3; b++)
		compare_numbers(db, b);
	CHECK(differed == before);
	/* tables no listing shows: dumped as text on both */
	CHECK_INT(db_flush(db), 0);
	/* {SQLite's SQL, PostgreSQL's where it differs} */
	static const char *const dumps[][2] = {
		{"SELECT id, reporter, skey, state, attempts, next_at, created_at FROM outbound "
		 "ORDER BY id"},
		{"SELECT reporter, skey, state FROM outbound_last ORDER BY reporter, skey"},
		/* times in ms: the dialects print a float's text differently */
		{"SELECT package, host, CAST(last_push * 1000 AS BIGINT), quiet FROM push_expected "
		 "ORDER BY package, host"},
		{"SELECT buildsetid, changeid FROM buildset_changes ORDER BY buildsetid, changeid"},
		{"SELECT userid, attr_type, attr_data FROM users_info ORDER BY attr_type, "
		 "attr_data"},
		{"SELECT changeid, userid FROM change_users ORDER BY changeid, userid"},
		{"SELECT id, builderid, name FROM test_names ORDER BY id"},
		{"SELECT id, builderid, path FROM test_code_paths ORDER BY id"},
		{"SELECT id, test_result_setid, test_nameid, test_code_pathid, line, duration_ns, "
		 "value, results, message FROM test_results ORDER BY id"},
		{"SELECT id, identifier, full_name, email FROM users ORDER BY id"},
		{"SELECT id, parent_changeid, sourcestampid, files, properties FROM changes ORDER "
		 "BY "
		 "id"},
		{"SELECT id, patchlevel, lower(hex(body)), subdir, patch_author, patch_comment "
		 "FROM patches ORDER BY id",
		 "SELECT id, patchlevel, encode(body, 'hex'), subdir, patch_author, patch_comment "
		 "FROM patches ORDER BY id"},
		{"SELECT id, nsteps, results, finished, CAST(updated_at * 1000 AS BIGINT), "
		 "CAST(finished_at * 1000 AS BIGINT), update_hash IS NULL FROM push_submissions "
		 "ORDER BY id"},
	};
	for (size_t i = 0; i < sizeof(dumps) / sizeof(dumps[0]); i++)
		compare_dump(dumps[i][0], dumps[i][1] ? dumps[i][1] : dumps[i][0]);
	/* object state: not a listing; read back on both */
	static const char *const names[] = {"poller:\"x\"", "other"};
	for (size_t i = 0; i < 2; i++) {
		json_t *lite = NULL;
		CHECK_INT(db_state_get(db, names[i], &lite), 1);
		char sql[128];
		snprintf(sql, sizeof(sql), "SELECT value FROM object_state WHERE name = $q$%s$q$",
			 names[i]);
		struct pg_loop_test_answer qa;
		json_t *pj = json_loads(pg_loop_test_value(&loop, conn, sql, &qa), JSON_DECODE_ANY,
					NULL);
		compared++;
		if (!json_equal(lite, pj)) {
			differed++;
			TAP_FAIL("state %s differs", names[i]);
			show("SQLite", lite);
			show("PostgreSQL", pj);
		}
		json_decref(lite);
		json_decref(pj);
	}

	/* a transaction the server refuses reaches the commit-error callback,
	 * and the next one commits */
	struct commit_failure cf = {0};
	db_set_commit_error_cb(pgdb, on_commit_error, &cf);
	struct pg_loop_test_answer la;
	pg_loop_test_value(&loop, conn,
			   "ALTER TABLE steps ADD CONSTRAINT not_this "
			   "CHECK (state_string <> 'refused')",
			   &la);
	CHECK_INT(db_build_set_property(pgdb, 1, "x", NULL, "s"), 0);
	CHECK_INT(db_step_set_state(pgdb, 2, "refused"), 0);
	CHECK(test_run_until(&loop, commit_failed, &cf, TEST_GUARD_MS));
	pg_loop_test_value(&loop, conn, "ALTER TABLE steps DROP CONSTRAINT not_this", &la);
	CHECK_INT(cf.r, KILN_EDB);
	diag("refused: %s", cf.err);
	CHECK_INT(db_step_set_state(pgdb, 1, "after"), 0);
	CHECK_INT(db_step_set_state(db, 1, "after"), 0); /* the rows compared later agree */
	struct pg_answer b = {0};
	CHECK_INT(db_list_rows_async(pgdb, DB_STEPS, one, 1, NULL, on_pg, &b), 0);
	CHECK(test_run_until(&loop, pg_answered, &b, TEST_GUARD_MS));
	CHECK_STR(json_string_value(json_object_get(json_array_get(b.items, 0), "state_string")),
		  "after");
	json_decref(b.items);
	CHECK_INT(cf.calls, 1);
	db_set_commit_error_cb(pgdb, NULL, NULL);
}

/* ---- the test ----------------------------------------------------------------------- */

/* kiln_icu, made with ICU's en-US collation; icu_url reaches it. */
static bool make_icu_database(void)
{
	const char *at = strstr(pg_test.url, "///kiln?");
	if (!at) { /* a server of KILN_TEST_PG_URL's: its own database, as it is */
		diag("not a scripts/pg-start URL: comparing in its database, collation as it is");
		snprintf(icu_url, sizeof(icu_url), "%s", pg_test.url);
		return true;
	}
	PGconn *c = PQconnectdb(pg_test.url);
	PGresult *r = PQexec(c, "DROP DATABASE IF EXISTS kiln_icu");
	PQclear(r);
	r = PQexec(c, "CREATE DATABASE kiln_icu TEMPLATE template0 ENCODING 'UTF8' "
		      "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'");
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		diag("CREATE DATABASE: %s", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	snprintf(icu_url, sizeof(icu_url), "%.*s///kiln_icu?%s", (int)(at - pg_test.url),
		 pg_test.url, at + strlen("///kiln?"));
	return ok;
}

TEST(every_resource_lists_alike)
{
	struct db *db = NULL;
	if (db_open(NULL, src_url, NULL, &db) < 0) {
		TAP_FAIL("db_open: %s", db_open_errmsg());
		return;
	}
	make_rows(db);
	db_close(db);
	struct db_copy_result res;
	char *err = NULL;
	CHECK(make_icu_database());
	CHECK_INT(db_copy(src_url, icu_url, NULL, NULL, &res, &err), 0);
	if (err)
		diag("copy: %s", err);
	free(err);
	if (db_open(&loop, src_url, NULL, &db) < 0) {
		TAP_FAIL("db_open: %s", db_open_errmsg());
		return;
	}
	struct pg_conn_opts co = {.conninfo = icu_url};
	if (pg_conn_new(&loop, &co, &conn) < 0 ||
	    !test_run_until(&loop, pg_loop_test_ready, conn, TEST_GUARD_MS))
		TAP_FAIL("no connection to %s", icu_url);
	CHECK_INT(pg_batch_new(&loop, conn, &batch), 0);
	static const struct {
		enum db_resource res;
		const char *name;
	} all[] = {
		{DB_MASTERS, "masters"},
		{DB_BUILDERS, "builders"},
		{DB_WORKERS, "workers"},
		{DB_BUILDSETS, "buildsets"},
		{DB_BUILDREQUESTS, "buildrequests"},
		{DB_BUILDS, "builds"},
		{DB_STEPS, "steps"},
		{DB_LOGS, "logs"},
		{DB_SOURCESTAMPS, "sourcestamps"},
		{DB_CHANGES, "changes"},
		{DB_TEST_RESULT_SETS, "test_result_sets"},
		{DB_TEST_RESULTS, "test_results"},
		{DB_USERS, "users"},
	};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		compare_resource(db, all[i].res, all[i].name);
	static const char *const no_props[] = {"properties", NULL};
	for (int64_t off = 0; off < 3; off++) {
		struct db_query q = {.limit = 1, .offset = off};
		compare_last_builds(db, &q, off ? no_props : NULL, "a page of one builder");
	}
	struct db_open_wait ow = {0};
	if (db_open_async(&loop, icu_url, NULL, on_open_wait, &ow) < 0 ||
	    !test_run_until(&loop, open_waited, &ow, TEST_GUARD_MS) || ow.r < 0)
		TAP_FAIL("db_open_async: %s", db_open_errmsg());
	pgdb = ow.db;
	for (int64_t b = 1; b <= 3 && pgdb; b++)
		compare_numbers(db, b);
	/* artifacts: each (and one that is not there), each build's */
	for (int64_t id = 1; id <= 4 && pgdb; id++) {
		struct pg_answer la = {0}, pa = {0};
		CHECK_INT(db_artifact_get_async(db, id, on_pg, &la), 0);
		if (!test_run_until(&loop, pg_answered, &la, TEST_GUARD_MS))
			TAP_FAIL("no answer from SQLite");
		char what[60];
		snprintf(what, sizeof(what), "artifact %lld", (long long)id);
		check_alike(la.r, la.items, db_artifact_get_async(pgdb, id, on_pg, &pa), &pa, what);
		json_t *lite = NULL;
		int lr = db_artifacts_of_build(db, id, id == 2 ? 0 : -1, &lite);
		struct pg_answer ba = {0};
		snprintf(what, sizeof(what), "artifacts of build %lld", (long long)id);
		check_alike(lr, lite,
			    db_artifacts_of_build_async(pgdb, id, id == 2 ? 0 : -1, on_pg, &ba),
			    &ba, what);
	}
	/* the console's cells: every change, several, cut short */
	static const int64_t cids[] = {3, 1, 2, 2, 99};
	for (size_t n = 1; n <= 5 && pgdb; n++)
		for (int64_t max = 0; max < 4; max++) {
			json_t *lite = NULL;
			bool cut = false;
			int lr = db_changes_cells(db, cids, n, max, &lite, &cut);
			struct pg_answer a = {0};
			int pr = db_changes_cells_async(pgdb, cids, n, max, on_pg, &a);
			char what[100];
			snprintf(what, sizeof(what), "cells of %zu changes, at most %lld", n,
				 (long long)max);
			size_t got = json_array_size(lite);
			check_alike(lr, lite, pr, &a, what);
			CHECK(a.total == (int64_t)got + (cut ? 1 : 0));
		}
	for (int64_t logid = 1; logid <= 12 && pgdb; logid++)
		compare_log(db, logid);
	if (pgdb)
		compare_tokens_and_pushes(db);
	if (pgdb)
		compare_inputs(db);
	if (pgdb)
		compare_writes(db);
	if (pgdb)
		compare_pending(db);
	if (pgdb)
		compare_queued_counts(db);
	if (pgdb)
		compare_queue_info(db);
	if (pgdb)
		compare_interested(db);
	if (pgdb)
		compare_claims(db);
	if (pgdb)
		compare_dispatch(db);
	if (pgdb)
		compare_collapse(db);
	if (pgdb)
		compare_eta(db);
	static const char *const tests[] = {"t.ok", "t.bad", "t/skip.c", "never"};
	for (size_t i = 0; i < 4 && pgdb; i++)
		compare_history(db, 1, tests[i]);
	if (pgdb) { /* the fixture has a test that passed and failed on one revision */
		struct db_test_history h;
		CHECK_INT(db_test_history(db, 1, "t.bad", &h), 0);
		CHECK(h.flaky && h.nflaky_revisions == 1);
		db_test_history_release(&h);
	}
	db_close(pgdb);
	pgdb = NULL;
	static const int64_t ids[] = {3, 1, 99, 2};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		for (size_t n = 0; n <= 4; n++)
			compare_rows(db, all[i].res, ids, n);
	diag("%ld listings compared, %ld differed", compared, differed);
	CHECK(compared > 1000);
	pg_batch_free(batch);
	batch = NULL;
	pg_conn_free(conn);
	conn = NULL;
	db_close(db);
}

/* ---- two masters claiming from one queue --------------------------------------------- */

static struct db *open_pg(const char *url)
{
	struct db_open_wait ow = {0};
	if (db_open_async(&loop, url, NULL, on_open_wait, &ow) < 0 ||
	    !test_run_until(&loop, open_waited, &ow, TEST_GUARD_MS) || ow.r < 0) {
		TAP_FAIL("db_open_async: %s", db_open_errmsg());
		return NULL;
	}
	return ow.db;
}

/* Two masters on one PostgreSQL database claim a burst of 200 requests,
 * a few per turn each, at once: every request is claimed exactly once, by
 * one of them, and both get some. */
static json_t *list_async(struct db *db, enum db_resource res, const struct db_query *q,
			  int64_t *ret_total);

TEST(two_masters_claim_each_request_once)
{
	struct db *one = open_pg(icu_url), *other = one ? open_pg(icu_url) : NULL;
	if (!one || !other) {
		db_close(one);
		return;
	}
	int64_t want[200];
	int nwant = 0;
	for (int i = 0; i < 200; i++) {
		struct db_sourcestamp ss = {.branch = "q", .codebase = ""};
		struct db_buildset_new bs = {.reason = "burst",
					     .sourcestamps = &ss,
					     .nsourcestamps = 1,
					     .priority = i % 5,
					     .submitted_at = 1.7e9 + 3000 + i};
		static const int64_t b2[] = {2};
		int64_t bsid, brid;
		CHECK_INT(db_buildset_add(one, &bs, b2, 1, &bsid, &brid), 0);
		want[nwant++] = brid;
	}
	/* what builder 2 had queued before: claimed too */
	struct claim_answer a1 = {0}, a2 = {0};
	int sent1 = 0, sent2 = 0;
	for (int round = 0; round < 200; round++) {
		for (int k = 0; k < 3; k++) {
			CHECK_INT(
				db_request_claim_next_async(one, 2, 1, 1.7e9 + 4000, on_claim, &a1),
				0);
			CHECK_INT(db_request_claim_next_async(other, 2, 2, 1.7e9 + 4000, on_claim,
							      &a2),
				  0);
			sent1++, sent2++;
		}
		struct claims_done d1 = {&a1, sent1}, d2 = {&a2, sent2};
		CHECK(test_run_until(&loop, claims_answered, &d1, TEST_GUARD_MS));
		CHECK(test_run_until(&loop, claims_answered, &d2, TEST_GUARD_MS));
		if (a1.calls - a1.n >= 3 && a2.calls - a2.n >= 3)
			break; /* both found the queue empty */
	}
	CHECK_INT(a1.r, 0);
	CHECK_INT(a2.r, 0);
	diag("two masters claimed %d and %d requests (%d in the burst)", a1.n, a2.n, nwant);
	int seen = 0;
	for (int i = 0; i < nwant; i++) {
		int hits = 0;
		for (int k = 0; k < a1.n; k++)
			hits += a1.ids[k] == want[i];
		for (int k = 0; k < a2.n; k++)
			hits += a2.ids[k] == want[i];
		seen += hits == 1;
	}
	CHECK_INT(seen, nwant); /* each of the burst exactly once */
	for (int i = 0; i < a1.n; i++)
		for (int k = 0; k < a2.n; k++)
			CHECK(a1.ids[i] != a2.ids[k]);
	CHECK(a1.n > 0 && a2.n > 0);

	/* 50 buildsets of two requests; each master completes one of each at
	 * once: exactly one of them completes each buildset */
	enum { NBS = 50 };
	int64_t bsids[NBS], reqs[NBS][2];
	for (int i = 0; i < NBS; i++) {
		struct db_sourcestamp ss = {.branch = "c", .codebase = ""};
		struct db_buildset_new bs = {.reason = "pair",
					     .sourcestamps = &ss,
					     .nsourcestamps = 1,
					     .submitted_at = 1.7e9 + 6000 + i};
		static const int64_t b12[] = {1, 2};
		CHECK_INT(db_buildset_add(one, &bs, b12, 2, &bsids[i], reqs[i]), 0);
	}
	{ /* the other master sees them once they are committed: a read on one
	   * comes after its writes */
		int64_t t = 0;
		json_decref(list_async(one, DB_BUILDSETS, &(struct db_query){.limit = 1}, &t));
	}
	struct bsid_answer d1[NBS], d2[NBS];
	memset(d1, 0, sizeof(d1));
	memset(d2, 0, sizeof(d2));
	for (int i = 0; i < NBS; i++) {
		CHECK_INT(db_request_complete_async(one, reqs[i][0], 0, 1.7e9 + 7000, on_bsid,
						    &d1[i]),
			  0);
		CHECK_INT(db_request_complete_async(other, reqs[i][1], 2, 1.7e9 + 7000, on_bsid,
						    &d2[i]),
			  0);
	}
	CHECK(test_run_until(&loop, bsid_answered, &d1[NBS - 1], TEST_GUARD_MS));
	CHECK(test_run_until(&loop, bsid_answered, &d2[NBS - 1], TEST_GUARD_MS));
	int once = 0, by_one = 0;
	for (int i = 0; i < NBS; i++) {
		if (!(d1[i].done && d2[i].done && d1[i].r == 0 && d2[i].r == 0))
			TAP_FAIL("buildset %d: done %d %d r %d %d", i, d1[i].done, d2[i].done,
				 d1[i].r, d2[i].r);
		int n = (d1[i].bsid == bsids[i]) + (d2[i].bsid == bsids[i]);
		once += n == 1;
		by_one += d1[i].bsid == bsids[i];
	}
	diag("%d of %d buildsets completed exactly once (%d by the first master)", once, NBS,
	     by_one);
	CHECK_INT(once, NBS);
	/* and every one of them is complete, its results the worse (2) */
	const char *flt_v[] = {"pair"};
	struct db_filter f = {.field = "reason", .op = DB_OP_EQ, .values = flt_v, .nvalues = 1};
	struct db_query q = {.filters = &f, .nfilters = 1, .limit = -1};
	int64_t total = 0;
	/* after both masters' writes: a read on each comes after its own */
	json_decref(list_async(one, DB_BUILDSETS, &q, &total));
	json_t *rows = list_async(other, DB_BUILDSETS, &q, &total);
	size_t i;
	json_t *row;
	int complete = 0;
	json_array_foreach(rows, i, row) complete +=
		json_is_true(json_object_get(row, "complete")) &&
		json_integer_value(json_object_get(row, "results")) == 2;
	CHECK_INT(complete, NBS);
	json_decref(rows);
	db_close(one);
	db_close(other);
}

/* ---- db_open_async and the asynchronous listings of db.h ------------------------------ */

struct opened {
	bool done;
	int r;
	struct db *db;
	char err[512];
};

static void on_open(void *arg, int r, struct db *db, const char *err)
{
	struct opened *o = arg;
	o->done = true;
	o->r = r;
	o->db = db;
	snprintf(o->err, sizeof(o->err), "%s", err ? err : "");
}

static bool opened(void *arg)
{
	return ((struct opened *)arg)->done;
}

static struct db *open_async(const char *url, struct opened *o)
{
	*o = (struct opened){0};
	int r = db_open_async(&loop, url, NULL, on_open, o);
	if (r < 0) {
		o->r = r;
		snprintf(o->err, sizeof(o->err), "%s", db_open_errmsg());
		return NULL;
	}
	CHECK(!o->done); /* never from inside the call */
	if (!test_run_until(&loop, opened, o, TEST_GUARD_MS))
		TAP_FAIL("no answer opening %s", url);
	return o->db;
}

static json_t *list_async(struct db *db, enum db_resource res, const struct db_query *q,
			  int64_t *ret_total)
{
	struct pg_answer a = {0};
	int r = db_list_async(db, res, q, NULL, true, on_pg, &a);
	if (r < 0) {
		TAP_FAIL("db_list_async: %s", db_errmsg(db));
		return NULL;
	}
	CHECK(!a.done);
	if (!test_run_until(&loop, pg_answered, &a, TEST_GUARD_MS) || a.r < 0)
		TAP_FAIL("db_list_async: %d %s", a.r, a.err);
	*ret_total = a.total;
	return a.items;
}

TEST(db_open_async_and_list)
{
	struct opened o;
	struct db *lite = open_async(src_url, &o);
	CHECK_INT(o.r, 0);
	struct db *pg = open_async(icu_url, &o);
	CHECK_INT(o.r, 0);
	if (!lite || !pg)
		return;
	CHECK(!db_is_postgresql(lite));
	CHECK(db_is_postgresql(pg));
	const char *order[] = {"-number"};
	struct db_query q = {.order = order, .norder = 1, .limit = 2};
	int64_t lt = 0, pt = 0;
	json_t *a = list_async(lite, DB_BUILDS, &q, &lt);
	json_t *b = list_async(pg, DB_BUILDS, &q, &pt);
	CHECK(a && b && json_array_size(a) == 2 && json_equal(a, b));
	CHECK_INT(lt, 4); /* the fixture's 3, and every_resource_lists_alike's build_life */
	CHECK_INT(pt, 4);
	json_decref(a);
	json_decref(b);
	/* a refusal comes at once, with its reason */
	struct db_filter bad = {
		.field = "nosuch", .op = DB_OP_EQ, .values = (const char *[]){"1"}, .nvalues = 1};
	struct db_query bq = {.filters = &bad, .nfilters = 1, .limit = -1};
	struct pg_answer ans = {0};
	CHECK_INT(db_list_async(pg, DB_BUILDS, &bq, NULL, false, on_pg, &ans), KILN_EPARSE);
	CHECK_STR(db_errmsg(pg), "unrecognized query parameter 'nosuch'");
	CHECK_INT(db_list_async(lite, DB_BUILDS, &bq, NULL, false, on_pg, &ans), KILN_EPARSE);
	CHECK_STR(db_errmsg(lite), "unrecognized query parameter 'nosuch'");
	/* answers still to come when the database closes: cancelled */
	struct pg_answer c1 = {0}, c2 = {0};
	CHECK_INT(db_list_async(lite, DB_MASTERS, NULL, NULL, false, on_pg, &c1), 0);
	CHECK_INT(db_list_async(pg, DB_MASTERS, NULL, NULL, false, on_pg, &c2), 0);
	db_close(lite);
	db_close(pg);
	uv_run(&loop, UV_RUN_NOWAIT);
	CHECK(c1.done && c1.r == -ECANCELED && !c1.items);
	CHECK(c2.done && c2.r == -ECANCELED && !c2.items);
	/* a server that is not there, a URL that does not parse */
	struct db *none = open_async("postgresql://127.0.0.1:1/kiln?connect_timeout=5", &o);
	CHECK(!none && o.r < 0 && strstr(o.err, "PostgreSQL: "));
	diag("no server: %s", o.err);
	none = open_async("postgresql://[::1/x", &o);
	CHECK(!none && o.r < 0 && strstr(o.err, "PostgreSQL: "));
	diag("bad URL: %s", o.err);
}

int main(int argc, char **argv)
{
	if (!mkdtemp(dir) || uv_loop_init(&loop) != 0)
		return 1;
	snprintf(src_url, sizeof(src_url), "sqlite:%s/src.sqlite", dir);
	const char *why = argc > 1 ? pg_test_start(argv[1]) : "no scripts directory given";
	if (why) {
		diag("PostgreSQL: %s", why);
		CHECK(!"a PostgreSQL server for the test");
	} else {
		RUN(every_resource_lists_alike);
		RUN(db_open_async_and_list);
		RUN(two_masters_claim_each_request_once);
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
