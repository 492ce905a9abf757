/*
 * Unit tests of the schedulers (src/master/sched/, config-sched.c and the
 * runtime Lua calls in config-runtime.c) on a
 * real master state: SQLite in a temporary directory, the engine's builder
 * registry, the libuv loop and the test clock (KILN_TEST_CLOCK=1).  Change
 * filters and file_is_important (values, Lua patterns, Lua functions), the
 * tree-stable timer (restarted by new changes, per branch for any_branch,
 * surviving a restart), nightly via the clock, periodic, dependent, the
 * collapse query, and checkconfig errors with their line.
 */
#include "tap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/changes/change.h"
#include "master/engine.h"
#include "master/master.h"
#include "master/sched/sched.h"

static char tmpdir[] = "/tmp/kiln-test-sched.XXXXXX";

static struct config *load(const char *text)
{
	struct config *cfg = NULL;
	char *err = NULL;
	if (config_load_string("master.lua", text, strlen(text), NULL, &cfg, &err) < 0) {
		TAP_FAIL("config: %s", err);
		free(err);
		return NULL;
	}
	return cfg;
}

static const char *load_err(const char *text)
{
	static char buf[512];
	struct config *cfg = NULL;
	char *err = NULL;
	if (config_load_string("master.lua", text, strlen(text), NULL, &cfg, &err) == 0) {
		config_free(cfg);
		return "ok";
	}
	snprintf(buf, sizeof(buf), "%s", err);
	free(err);
	return buf;
}

#define HEAD                                                                                       \
	"worker { name = 'w1', password = secret('w1') }\n"                                        \
	"builder { name = 'b1', workers = { 'w1' }, steps = { shell { command = 'true' } } }\n"    \
	"builder { name = 'b2', workers = { 'w1' }, steps = { shell { command = 'true' } } }\n"

/* ---- filters -------------------------------------------------------------------------- */

TEST(filters)
{
	struct config *cfg = load(
		HEAD "single_branch { name = 'vals', builders = { 'b1' }, change_filter = {\n"
		     "  branch = { 'main', 'dev' }, project = 'p' } }\n"
		     "single_branch { name = 'pat', builders = { 'b1' }, change_filter = {\n"
		     "  branch_re = '^release/%d+$' } }\n"
		     "local function is_doc(c) return c.category == 'docs' end\n"
		     "any_branch { name = 'fn', builders = { 'b1' }, change_filter = {\n"
		     "  repository_fn = function(v) return v and v:find('github') ~= nil end,\n"
		     "  filter_fn = function(c) return not is_doc(c) end } }\n"
		     "single_branch { name = 'imp', builders = { 'b1' },\n"
		     "  file_is_important = { '*.c', 'src/*' }, only_important = true }\n"
		     "single_branch { name = 'impfn', builders = { 'b1' },\n"
		     "  file_is_important = function(c) for _, f in ipairs(c.files) do\n"
		     "    if f:match('%.md$') then return false end end return true end }\n"
		     "single_branch { name = 'boom', builders = { 'b1' }, change_filter = {\n"
		     "  filter_fn = function(c) error('kaboom') end } }\n"
		     "single_branch { name = 'loop', builders = { 'b1' }, change_filter = {\n"
		     "  filter_fn = function(c) while true do end end } }\n");
	if (!cfg)
		return;
	CHECK(cfg->lua != NULL);
	const char *files_c[] = {"README", "x.c"};
	const char *files_md[] = {"doc/a.md"};
	struct config_change_view v = {.branch = "main",
				       .project = "p",
				       .repository = "https://github.com/x/y",
				       .files = files_c,
				       .nfiles = 2};
	char *err = NULL;
	const struct config_scheduler *s;

	s = config_find_scheduler(cfg, "vals");
	CHECK_INT(config_filter_match(cfg, &s->filter, &v, &err), 1);
	v.branch = "other";
	CHECK_INT(config_filter_match(cfg, &s->filter, &v, &err), 0);
	v.branch = NULL;
	CHECK_INT(config_filter_match(cfg, &s->filter, &v, &err), 0);

	s = config_find_scheduler(cfg, "pat");
	v.branch = "release/12";
	CHECK_INT(config_filter_match(cfg, &s->filter, &v, &err), 1);
	v.branch = "release/x";
	CHECK_INT(config_filter_match(cfg, &s->filter, &v, &err), 0);

	s = config_find_scheduler(cfg, "fn");
	CHECK_INT(config_filter_match(cfg, &s->filter, &v, &err), 1);
	v.category = "docs";
	CHECK_INT(config_filter_match(cfg, &s->filter, &v, &err), 0);
	v.category = NULL;
	v.repository = "https://gitlab.com/x";
	CHECK_INT(config_filter_match(cfg, &s->filter, &v, &err), 0);

	s = config_find_scheduler(cfg, "imp");
	CHECK_INT(config_change_important(cfg, s, &v, &err), 1);
	v.files = files_md;
	v.nfiles = 1;
	CHECK_INT(config_change_important(cfg, s, &v, &err), 0);
	s = config_find_scheduler(cfg, "impfn");
	CHECK_INT(config_change_important(cfg, s, &v, &err), 0);
	v.files = files_c;
	v.nfiles = 2;
	CHECK_INT(config_change_important(cfg, s, &v, &err), 1);

	/* a failing function is an error with the line, never a crash */
	s = config_find_scheduler(cfg, "boom");
	CHECK(config_filter_match(cfg, &s->filter, &v, &err) < 0);
	CHECK(err && strstr(err, "master.lua:18:") && strstr(err, "kaboom"));
	if (err && !strstr(err, "master.lua:18:"))
		TAP_FAIL("err: %s", err);
	free(err);
	err = NULL;
	s = config_find_scheduler(cfg, "loop");
	CHECK(config_filter_match(cfg, &s->filter, &v, &err) < 0);
	CHECK(err && strstr(err, "instruction limit"));
	free(err);
	err = NULL;
	/* the state still works after an aborted call */
	s = config_find_scheduler(cfg, "vals");
	v.branch = "dev";
	v.repository = "r";
	CHECK_INT(config_filter_match(cfg, &s->filter, &v, &err), 1);
	config_free(cfg);
}

TEST(config_errors)
{
	CHECK_STR(load_err(HEAD
			   "nightly { name = 'n', builders = { 'b1' },\n  cron = '0 24 * * *' }"),
		  "master.lua:4: nightly 'n': cron '0 24 * * *': hour: 24 is out of range 0-23");
	CHECK_STR(load_err(HEAD "nightly { name = 'n', builders = { 'b1' }, cron = '* * *' }"),
		  "master.lua:4: nightly 'n': cron '* * *': expected 5 fields (minute hour "
		  "day-of-month month day-of-week), got 3");
	CHECK_STR(load_err(HEAD "\nsingle_branch { name = 's', builders = { 'b1' },\n"
				"  change_filter = { branch_re = '[a-' } }"),
		  "master.lua:5: single_branch 's': change_filter: 'branch_re' is not a valid Lua "
		  "pattern: malformed pattern (missing ']')");
	CHECK_STR(load_err(HEAD "single_branch { name = 's', builders = { 'b1' },\n"
				"  change_filter = { brnch = 'x' } }"),
		  "master.lua:4: single_branch 's': change_filter: unknown key 'brnch' (known: "
		  "branch, branch_re, branch_fn, project, project_re, project_fn, repository, "
		  "repository_re, repository_fn, category, category_re, category_fn, codebase, "
		  "codebase_re, codebase_fn, filter_fn)");
	CHECK_STR(load_err(HEAD "single_branch { name = 's', builders = { 'nope' } }"),
		  "master.lua:4: single_branch 's': unknown builder 'nope'");
	CHECK_STR(load_err(HEAD "dependent { name = 'd', builders = { 'b1' }, upstream = 'x' }"),
		  "master.lua:4: dependent 'd': unknown upstream scheduler 'x'");
	CHECK_STR(load_err(HEAD "builder { name = 'b3', workers = { 'w1' }, steps = {\n"
				"  trigger { schedulers = { 'force' } } } }"),
		  "master.lua:5: trigger 'trigger': 'force' is not a triggerable scheduler");
	CHECK_STR(load_err(HEAD "force_scheduler { name = 'f', params = {\n"
				"  { name = 'n', type = 'int', min = 5, default = 1 } } }"),
		  "master.lua:4: force_scheduler 'f': params[1]: 'default' must be between 5 and "
		  "9223372036854775807 (got 1)");
	CHECK_STR(
		load_err(HEAD "try_scheduler { name = 't', builders = { 'b1' }, token = 'x' }"),
		"master.lua:4: try_scheduler 't': 'token' must come from secret(...) (got string)");
	CHECK_STR(load_err(HEAD "periodic { name = 'p', builders = { 'b1' } }"),
		  "master.lua:4: periodic 'p': 'period' is required (seconds between builds)");
	CHECK_STR(
		load_err(HEAD "collapse_requests = 3"),
		"master.lua:4: 'collapse_requests' must be true, false or a function (got number)");
	CHECK_STR(load_err(HEAD
			   "local f = function() worker { name = 'x', password = 1 } end\n"
			   "single_branch { name = 's', builders = { 'b1' }, change_filter = {\n"
			   "  filter_fn = f } }"),
		  "ok");
}

/* ---- a master with schedulers ---------------------------------------------------------- */

struct fixture {
	uv_loop_t loop;
	struct master m;
};

static int fixture_db = 0; /* a new database file per fixture_open, unless kept */
static bool fixture_keep_db;

static int fixture_open(struct fixture *f, const char *cfgtext)
{
	if (!fixture_keep_db)
		fixture_db++;
	fixture_keep_db = false;
	memset(f, 0, sizeof(*f));
	uv_loop_init(&f->loop);
	f->m.loop = &f->loop;
	f->m.basedir = xstrdup(tmpdir);
	f->m.name = xstrdup("test:sched");
	f->m.cfg = load(cfgtext);
	if (!f->m.cfg)
		return -1;
	char url[256];
	snprintf(url, sizeof(url), "sqlite:%s/state%d.sqlite", tmpdir, fixture_db);
	if (db_open(&f->loop, url, tmpdir, &f->m.db) < 0) {
		TAP_FAIL("db_open: %s", db_open_errmsg());
		return -1;
	}
	if (db_master_register(f->m.db, f->m.name, &f->m.masterid) < 0 ||
	    engine_new(&f->m, &f->m.engine) < 0 || sched_new(&f->m, &f->m.sched) < 0) {
		TAP_FAIL("master setup failed");
		return -1;
	}
	return 0;
}

static void fixture_close(struct fixture *f)
{
	sched_free(f->m.sched);
	if (f->m.engine) {
		engine_stop(f->m.engine);
		engine_free(f->m.engine);
	}
	db_close(f->m.db);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	uv_loop_close(&f->loop);
	config_free(f->m.cfg);
	free(f->m.basedir);
	free(f->m.name);
}

static int64_t add_change(struct fixture *f, const char *branch, const char *rev, const char *file)
{
	char *files[] = {(char *)file};
	struct change c = {
		.author = "Ann <ann@example.org>",
		.comments = "c",
		.files = files,
		.nfiles = 1,
		.branch = (char *)branch,
		.revision = (char *)rev,
		.repository = "repo",
	};
	if (change_add(&f->m, &c) < 0) {
		TAP_FAIL("change_add: %s", db_errmsg(f->m.db));
		return 0;
	}
	return c.changeid;
}

static json_t *buildsets(struct fixture *f)
{
	json_t *items = NULL;
	struct db_query q = {.limit = -1};
	if (db_list(f->m.db, DB_BUILDSETS, &q, &items, NULL) < 0)
		TAP_FAIL("db_list: %s", db_errmsg(f->m.db));
	return items;
}

static size_t nbuildsets(struct fixture *f)
{
	json_t *b = buildsets(f);
	size_t n = json_array_size(b);
	json_decref(b);
	return n;
}

/* revision of buildset i's sourcestamp */
static const char *bs_revision(struct fixture *f, size_t i)
{
	static char out[128];
	json_t *b = buildsets(f);
	json_t *ss = json_array_get(json_object_get(json_array_get(b, i), "sourcestamps"), 0);
	const char *r = json_string_value(json_object_get(ss, "revision"));
	snprintf(out, sizeof(out), "%s", r ? r : "(null)");
	json_decref(b);
	return out;
}

static size_t bs_nchanges(struct fixture *f, int64_t bsid)
{
	/* through the blamelist link table of the change module */
	json_t *items = NULL;
	char id[32];
	snprintf(id, sizeof(id), "%lld", (long long)bsid);
	(void)id;
	int64_t n = 0;
	struct db_query q = {.limit = -1};
	if (db_list(f->m.db, DB_CHANGES, &q, &items, NULL) == 0)
		n = (int64_t)json_array_size(items);
	json_decref(items);
	return (size_t)n;
}

#define SB_CONFIG                                                                                  \
	HEAD "single_branch { name = 'sb', builders = { 'b1' }, tree_stable_timer = 60,\n"         \
	     "  change_filter = { branch = 'main' } }\n"                                           \
	     "any_branch { name = 'ab', builders = { 'b2' }, tree_stable_timer = 10,\n"            \
	     "  change_filter = { branch_re = '^feature/' } }\n"

TEST(tree_stable_timer)
{
	struct fixture f;
	if (fixture_open(&f, SB_CONFIG) < 0)
		return;
	struct sched *s = f.m.sched;
	add_change(&f, "main", "r1", "a.c");
	CHECK_INT(sched_test_clock_advance(s, 30), 0);
	CHECK_INT(nbuildsets(&f), 0);
	add_change(&f, "main", "r2", "b.c"); /* restarts the timer */
	CHECK_INT(sched_test_clock_advance(s, 40), 0);
	CHECK_INT(nbuildsets(&f), 0);
	CHECK_INT(sched_test_clock_advance(s, 21), 0);
	CHECK_INT(nbuildsets(&f), 1);
	CHECK_STR(bs_revision(&f, 0), "r2");
	CHECK_INT(bs_nchanges(&f, 1), 2);
	/* a change the filter rejects starts nothing */
	add_change(&f, "other", "r3", "c.c");
	CHECK_INT(sched_test_clock_advance(s, 100), 0);
	CHECK_INT(nbuildsets(&f), 1);
	/* any_branch: one timer per branch */
	add_change(&f, "feature/a", "fa1", "x");
	CHECK_INT(sched_test_clock_advance(s, 5), 0);
	add_change(&f, "feature/b", "fb1", "x");
	CHECK_INT(sched_test_clock_advance(s, 6), 0);
	CHECK_INT(nbuildsets(&f), 2);
	CHECK_STR(bs_revision(&f, 1), "fa1");
	CHECK_INT(sched_test_clock_advance(s, 5), 0);
	CHECK_INT(nbuildsets(&f), 3);
	CHECK_STR(bs_revision(&f, 2), "fb1");
	fixture_close(&f);
}

TEST(timer_survives_restart)
{
	struct fixture f;
	if (fixture_open(&f, SB_CONFIG) < 0)
		return;
	add_change(&f, "main", "r9", "a.c");
	CHECK_INT(sched_test_clock_advance(f.m.sched, 30), 0);
	size_t before = nbuildsets(&f);
	db_flush(f.m.db);
	fixture_close(&f);
	/* a new master on the same database: the deadline (30 s left) and the
	 * test clock's offset are stored */
	fixture_keep_db = true;
	if (fixture_open(&f, SB_CONFIG) < 0)
		return;
	CHECK_INT(sched_test_clock_advance(f.m.sched, 29), 0);
	CHECK_INT(nbuildsets(&f), before);
	CHECK_INT(sched_test_clock_advance(f.m.sched, 2), 0);
	CHECK_INT(nbuildsets(&f), before + 1);
	CHECK_STR(bs_revision(&f, before), "r9");
	fixture_close(&f);
}

TEST(nightly_and_periodic)
{
	struct fixture f;
	if (fixture_open(&f,
			 HEAD "nightly { name = 'n', builders = { 'b1' }, cron = '0 3 * * *',\n"
			      "  branch = 'main' }\n"
			      "nightly { name = 'n2', builders = { 'b2' }, cron = '0 3 * * *',\n"
			      "  only_if_changed = true }\n"
			      "periodic { name = 'p', builders = { 'b2' }, period = 3600 }\n") < 0)
		return;
	struct sched *s = f.m.sched;
	/* the periodic scheduler's first run is at start */
	CHECK_INT(sched_test_clock_advance(s, 0), 0);
	CHECK_INT(nbuildsets(&f), 1);
	/* after one day: one nightly run (n2 skipped: nothing changed), 24 periodic runs */
	CHECK_INT(sched_test_clock_advance(s, 86400), 0);
	size_t n = nbuildsets(&f);
	CHECK(n >= 2 && n <= 3);
	json_t *b = buildsets(&f);
	size_t nightly = 0;
	size_t i;
	json_t *x;
	json_array_foreach(b, i, x)
	{
		const char *reason = json_string_value(json_object_get(x, "reason"));
		if (strstr(reason, "Nightly"))
			nightly++;
	}
	json_decref(b);
	CHECK_INT(nightly, 1);
	fixture_close(&f);
}

TEST(dependent)
{
	struct fixture f;
	if (fixture_open(&f, HEAD
			 "triggerable { name = 'up', builders = { 'b1' } }\n"
			 "dependent { name = 'down', builders = { 'b2' }, upstream = 'up' }\n") < 0)
		return;
	struct db_sourcestamp ss = {.branch = "main", .revision = "abc"};
	int64_t bsid;
	CHECK_INT(sched_trigger(f.m.sched, "up", 0, &ss, NULL, &bsid), 0);
	/* complete its request with SUCCESS: the dependent buildset follows */
	json_t *items = NULL;
	struct db_query q = {.limit = -1};
	db_list(f.m.db, DB_BUILDREQUESTS, &q, &items, NULL);
	int64_t brid =
		json_integer_value(json_object_get(json_array_get(items, 0), "buildrequestid"));
	json_decref(items);
	int64_t done = 0;
	CHECK_INT(db_request_claim(f.m.db, brid, f.m.masterid, clock_wall()), 0);
	CHECK_INT(db_request_complete(f.m.db, brid, 0, clock_wall(), &done), 0);
	CHECK_INT(done, bsid);
	sched_buildset_completed(f.m.sched, done, -1);
	CHECK_INT(nbuildsets(&f), 1); /* the upstream buildset is read on the loop */
	uv_run(&f.loop, UV_RUN_NOWAIT);
	CHECK_INT(nbuildsets(&f), 2);
	CHECK_STR(bs_revision(&f, 1), "abc");
	fixture_close(&f);
}

TEST(collapse_query)
{
	struct fixture f;
	if (fixture_open(&f, HEAD) < 0)
		return;
	struct db *db = f.m.db;
	int64_t b1 = engine_builder_id(f.m.engine, "b1");
	struct db_sourcestamp main1 = {.branch = "main", .revision = "1", .repository = "r"};
	struct db_sourcestamp main2 = {.branch = "main", .revision = "2", .repository = "r"};
	struct db_sourcestamp dev = {.branch = "dev", .revision = "3", .repository = "r"};
	int64_t bs[4], br[4];
	const struct db_sourcestamp *sss[4] = {&main1, &dev, &main2, &main2};
	for (int i = 0; i < 4; i++) {
		struct db_buildset_new n = {.reason = "t",
					    .sourcestamps = sss[i],
					    .nsourcestamps = 1,
					    .submitted_at = clock_wall()};
		CHECK_INT(db_buildset_add(db, &n, &b1, 1, &bs[i], &br[i]), 0);
	}
	struct db_patch p = {.level = 1, .body = "x", .len = 1};
	CHECK_INT(db_buildset_set_patch(db, bs[3], &p), 0);
	int64_t *ids = NULL;
	size_t n = 0;
	CHECK_INT(db_request_compatible(db, br[0], 100, &ids, &n), 0);
	/* same branch line, no patch: only the third */
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_INT(ids[0], br[2]);
	free(ids);
	CHECK_INT(db_request_superseded(db, b1, bs[2], &ids, &n), 0);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_INT(ids[0], br[0]);
	free(ids);
	struct db_patch_data pd;
	CHECK_INT(db_buildset_patch(db, bs[3], NULL, &pd), 1);
	CHECK_INT(pd.len, 1);
	db_patch_data_release(&pd);
	/* by codebase: the patched sourcestamp's ("") has it, another has not */
	CHECK_INT(db_buildset_patch(db, bs[3], "", &pd), 1);
	db_patch_data_release(&pd);
	CHECK_INT(db_buildset_patch(db, bs[3], "lib", &pd), 0);
	CHECK_INT(db_buildset_patch(db, bs[0], NULL, &pd), 0);
	fixture_close(&f);
}

/* ---- any_branch: the waiting branch lines are indexed and capped ---------------------- */

#include <fcntl.h>

#include "common/limits.h"
#include "common/log.h"

#define AB_CAP_CONFIG                                                                              \
	HEAD "any_branch { name = 'ab', builders = { 'b2' }, tree_stable_timer = 10,\n"            \
	     "  change_filter = { branch_re = '^feature/' } }\n"

/* Runs add_change with stderr in a file; returns what was logged (static). */
static const char *add_change_logged(struct fixture *f, const char *branch, const char *rev)
{
	static char out[2048];
	char path[64];
	snprintf(path, sizeof(path), "%s/stderr.txt", tmpdir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	int saved = dup(2);
	if (fd < 0 || saved < 0) {
		TAP_FAIL("cannot redirect stderr");
		return "";
	}
	fflush(stderr);
	dup2(fd, 2);
	add_change(f, branch, rev, "x");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	ssize_t n = pread(fd, out, sizeof(out) - 1, 0);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	return out;
}

TEST(any_branch_cap)
{
	struct fixture f;
	if (fixture_open(&f, AB_CAP_CONFIG) < 0)
		return;
	struct sched *s = f.m.sched;
	log_set_level(LOG_WARN); /* a thousand buildsets */
	char br[64], rev[64];
	/* inserted out of order: the sorted index must find each again */
	for (unsigned i = 0; i < KILN_MAX_SCHED_BRANCHES; i++) {
		unsigned k = (i * 7919u) % KILN_MAX_SCHED_BRANCHES;
		snprintf(br, sizeof(br), "feature/%u", k);
		snprintf(rev, sizeof(rev), "r%u", k);
		add_change(&f, br, rev, "x");
	}
	/* a new branch past the cap is refused, once loudly */
	const char *log1 = add_change_logged(&f, "feature/over", "r-over");
	CHECK(strstr(log1, "already waiting on 1024 branches") != NULL);
	CHECK(strstr(log1, "branch 'feature/over' is stored but this scheduler will not build it"));
	const char *log2 = add_change_logged(&f, "feature/over2", "r-over2");
	CHECK(strstr(log2, "already waiting") == NULL);
	/* a known branch still takes changes at the cap */
	add_change(&f, "feature/5", "r5b", "x");
	CHECK_INT(sched_test_clock_advance(s, 11), 0);
	json_t *b = buildsets(&f);
	CHECK_INT(json_array_size(b), KILN_MAX_SCHED_BRANCHES);
	size_t i;
	json_t *bs;
	int saw_5b = 0, saw_over = 0, saw_5 = 0;
	json_array_foreach(b, i, bs)
	{
		json_t *ss = json_array_get(json_object_get(bs, "sourcestamps"), 0);
		const char *r = json_string_value(json_object_get(ss, "revision"));
		saw_5b += r && !strcmp(r, "r5b");
		saw_5 += r && !strcmp(r, "r5");
		saw_over += r && !strncmp(r, "r-over", 6);
	}
	json_decref(b);
	CHECK_INT(saw_5b, 1);
	CHECK_INT(saw_5, 0);
	CHECK_INT(saw_over, 0);
	/* built and drained: new branches are taken again, and warned about anew */
	add_change(&f, "feature/later", "r-later", "x");
	CHECK_INT(sched_test_clock_advance(s, 11), 0);
	CHECK_INT(nbuildsets(&f), KILN_MAX_SCHED_BRANCHES + 1);
	CHECK_STR(bs_revision(&f, KILN_MAX_SCHED_BRANCHES), "r-later");
	log_set_level(LOG_INFO);
	fixture_close(&f);
}

/* ---- force scheduler (sched-force.c) --------------------------------------------------- */

/* field of buildset i's sourcestamp */
static const char *force_bs_field(struct fixture *f, size_t i, const char *field)
{
	static char out[128];
	json_t *b = buildsets(f);
	json_t *ss = json_array_get(json_object_get(json_array_get(b, i), "sourcestamps"), 0);
	const char *v = json_string_value(json_object_get(ss, field));
	snprintf(out, sizeof(out), "%s", v ? v : "(null)");
	json_decref(b);
	return out;
}

/* Buildbot's web form sends every sourcestamp field, empty when left alone:
 * an empty (or missing, or null) field takes the scheduler's configured
 * default; a submitted value wins. */
TEST(force_empty_fields_take_defaults)
{
	struct fixture f;
	if (fixture_open(&f, HEAD "force_scheduler { name = 'f', builders = { 'b1' },\n"
				  "  branch = 'main', repository = 'https://example.org/r.git',\n"
				  "  project = 'proj', codebase = 'cb',\n"
				  "  repositories = { 'other' }, projects = { 'p2' } }\n") < 0)
		return;
	int64_t b1 = engine_builder_id(f.m.engine, "b1");
	int64_t bsid, brid;
	char *err = NULL;
	json_t *p = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "branch", "", "repository", "",
			      "project", "", "revision", "", "codebase", "", "reason", "r");
	CHECK_INT(sched_force(f.m.sched, "f", p, &b1, 1, &bsid, &brid, &err), 0);
	json_decref(p);
	free(err);
	CHECK_INT(nbuildsets(&f), 1);
	CHECK_STR(force_bs_field(&f, 0, "branch"), "main");
	CHECK_STR(force_bs_field(&f, 0, "repository"), "https://example.org/r.git");
	CHECK_STR(force_bs_field(&f, 0, "project"), "proj");
	CHECK_STR(force_bs_field(&f, 0, "codebase"), "cb");
	CHECK_STR(force_bs_field(&f, 0, "revision"), ""); /* as Buildbot stores it */

	/* missing and null fields: the defaults too */
	err = NULL;
	p = json_pack("{s:n,s:n}", "branch", "repository");
	CHECK_INT(sched_force(f.m.sched, "f", p, &b1, 1, &bsid, &brid, &err), 0);
	json_decref(p);
	free(err);
	CHECK_STR(force_bs_field(&f, 1, "branch"), "main");
	CHECK_STR(force_bs_field(&f, 1, "repository"), "https://example.org/r.git");

	/* submitted values win */
	err = NULL;
	p = json_pack("{s:s,s:s,s:s,s:s}", "branch", "dev", "repository", "other", "project", "p2",
		      "revision", "abc123");
	CHECK_INT(sched_force(f.m.sched, "f", p, &b1, 1, &bsid, &brid, &err), 0);
	json_decref(p);
	free(err);
	CHECK_STR(force_bs_field(&f, 2, "branch"), "dev");
	CHECK_STR(force_bs_field(&f, 2, "repository"), "other");
	CHECK_STR(force_bs_field(&f, 2, "project"), "p2");
	CHECK_STR(force_bs_field(&f, 2, "revision"), "abc123");
	fixture_close(&f);
}

/* ---- several codebases ------------------------------------------------------------------ */

static int64_t add_change_cb(struct fixture *f, const char *repository, const char *codebase,
			     const char *branch, const char *rev)
{
	char *files[] = {"f.c"};
	struct change c = {
		.author = "Ann <ann@example.org>",
		.comments = "c",
		.files = files,
		.nfiles = 1,
		.branch = (char *)branch,
		.revision = (char *)rev,
		.repository = (char *)repository,
		.codebase = (char *)codebase,
	};
	if (change_add(&f->m, &c) < 0) {
		TAP_FAIL("change_add: %s", db_errmsg(f->m.db));
		return 0;
	}
	if (c.codebase != codebase)
		TAP_FAIL("change_add did not give the caller's codebase pointer back");
	return c.changeid;
}

static size_t bs_nss(struct fixture *f, size_t i)
{
	json_t *b = buildsets(f);
	size_t n = json_array_size(json_object_get(json_array_get(b, i), "sourcestamps"));
	json_decref(b);
	return n;
}

/* field of the sourcestamp of codebase cb in buildset i ("(none)": no such sourcestamp) */
static const char *ss_field(struct fixture *f, size_t i, const char *cb, const char *field)
{
	static char out[4][128];
	static unsigned k;
	char *o = out[k++ % 4];
	snprintf(o, 128, "(none)");
	json_t *b = buildsets(f);
	size_t x;
	json_t *ss;
	json_array_foreach(json_object_get(json_array_get(b, i), "sourcestamps"), x, ss)
	{
		if (strcmp(json_string_value(json_object_get(ss, "codebase")), cb))
			continue;
		const char *v = json_string_value(json_object_get(ss, field));
		snprintf(o, 128, "%s", v ? v : "(null)");
	}
	json_decref(b);
	return o;
}

/* the codebase change c was stored with */
static const char *change_codebase(struct fixture *f, int64_t changeid)
{
	static char out[128];
	json_t *items = NULL;
	struct db_query q = {.limit = -1};
	snprintf(out, sizeof(out), "(none)");
	if (db_list(f->m.db, DB_CHANGES, &q, &items, NULL) < 0)
		return out;
	size_t i;
	json_t *c;
	json_array_foreach(items, i, c)
	{
		if (json_integer_value(json_object_get(c, "changeid")) == changeid)
			snprintf(out, sizeof(out), "%s",
				 json_string_value(json_object_get(c, "codebase")));
	}
	json_decref(items);
	return out;
}

TEST(codebase_config_errors)
{
	CHECK_STR(load_err(HEAD "single_branch { name = 's', builders = { 'b1' },\n"
				"  codebases = { 'app', 'lib' } }"),
		  "master.lua:4: single_branch 's': 'codebases' must be a table { NAME = { "
		  "repository = ..., branch = ..., revision = ... }, ... } (got a list)");
	CHECK_STR(load_err(HEAD "any_branch { name = 's', builders = { 'b1' },\n"
				"  codebases = { app = { repo = 'x' } } }"),
		  "master.lua:4: any_branch 's': codebases['app']: unknown key 'repo' (known: "
		  "repository, branch, revision)");
	CHECK_STR(load_err(HEAD "periodic { name = 'p', builders = { 'b1' }, period = 60,\n"
				"  codebase = 'app', codebases = { app = {} } }"),
		  "master.lua:4: periodic 'p': 'codebase' cannot be used with 'codebases' (give "
		  "it in the codebase's entry)");
	CHECK_STR(load_err(HEAD "triggerable { name = 't', builders = { 'b1' },\n"
				"  codebases = { app = 'x' } }"),
		  "master.lua:4: triggerable 't': codebases['app'] must be a table { repository "
		  "= ..., branch = ..., revision = ... } (got string)");
	CHECK_STR(load_err(HEAD "nightly { name = 'n', builders = { 'b1' }, cron = '0 3 * * *',\n"
				"  codebases = { ['a\\nb'] = {} } }"),
		  "master.lua:4: nightly 'n': 'codebases': codebase 'a b' must be at most 256 "
		  "bytes without control characters");
	CHECK_STR(load_err(HEAD "dependent { name = 'd', builders = { 'b1' }, upstream = 'force',\n"
				"  codebases = { app = {} } }"),
		  "master.lua:4: dependent 'd': unknown key 'codebases' (known: name, builders, "
		  "priority, properties, upstream)");
	CHECK_STR(load_err(HEAD "\ncodebase_generator = 3"),
		  "master.lua:5: 'codebase_generator' must be a function(change) or a table { "
		  "[repository] = codebase } (got number)");
	CHECK_STR(load_err(HEAD "codebase_generator = { 'app' }"),
		  "master.lua:4: 'codebase_generator' must be a function(change) or a table { "
		  "[repository] = codebase } (got a list)");
	CHECK_STR(load_err(HEAD "codebase_generator = { ['git://a'] = 7 }"),
		  "master.lua:4: codebase_generator: 'git://a' must be a string (got number)");
	/* a force scheduler's list is still its allow list; a map its codebases */
	CHECK_STR(load_err(HEAD
			   "force_scheduler { name = 'f', codebases = { 'cb' } }\n"
			   "force_scheduler { name = 'g', codebases = { cb = {}, [''] = {} } }\n"
			   "codebase_generator = function(c) return nil end"),
		  "ok");
	struct config *cfg =
		load(HEAD "force_scheduler { name = 'g', project = 'p',\n"
			  "  codebases = { zz = { branch = 'z' }, [''] = {},\n"
			  "    app = { repository = 'git://app', revision = 'v1' } } }");
	if (!cfg)
		return;
	const struct config_scheduler *g = config_find_scheduler(cfg, "g");
	CHECK_INT(g->ncodebases, 3);
	CHECK_STR(g->codebases[0].name, "");
	CHECK_STR(g->codebases[1].name, "app");
	CHECK_STR(g->codebases[2].name, "zz");
	CHECK(config_scheduler_codebase(g, "app") == &g->codebases[1]);
	CHECK(config_scheduler_codebase(g, NULL) == &g->codebases[0]);
	CHECK(config_scheduler_codebase(g, "nope") == NULL);
	CHECK_STR(g->codebases[1].repository, "git://app");
	CHECK_STR(g->codebases[1].revision, "v1");
	CHECK(g->codebases[1].branch == NULL);
	CHECK(g->allowed[CONFIG_FORCE_CODEBASE] == NULL);
	config_free(cfg);
}

TEST(codebase_generator)
{
	struct config *cfg = load(HEAD "codebase_generator = function(c)\n"
				       "  if c.repository == 'git://lib' then return 'lib' end\n"
				       "  if c.repository == 'git://bad' then return 42 end\n"
				       "  if c.repository == 'git://boom' then error('no') end\n"
				       "  return nil end\n");
	if (!cfg)
		return;
	struct config_change_view v = {.repository = "git://lib"};
	char *cb = NULL, *err = NULL;
	CHECK_INT(config_codebase_generate(cfg, &v, &cb, &err), 1);
	CHECK_STR(cb ? cb : "(null)", "lib");
	free(cb);
	cb = NULL;
	v.repository = "git://other";
	CHECK_INT(config_codebase_generate(cfg, &v, &cb, &err), 0);
	CHECK(cb == NULL);
	v.repository = "git://bad";
	CHECK_INT(config_codebase_generate(cfg, &v, &cb, &err), KILN_ECONFIG);
	CHECK(err && strstr(err, "codebase_generator must return a codebase name") &&
	      strstr(err, "(got number)"));
	free(err);
	err = NULL;
	v.repository = "git://boom";
	CHECK_INT(config_codebase_generate(cfg, &v, &cb, &err), KILN_ECONFIG);
	CHECK(err && strstr(err, "master.lua:7:") && strstr(err, "no"));
	free(err);
	err = NULL;
	config_free(cfg);

	cfg = load(HEAD "codebase_generator = { ['git://lib'] = 'lib', ['git://app'] = '' }");
	if (!cfg)
		return;
	v.repository = "git://lib";
	CHECK_INT(config_codebase_generate(cfg, &v, &cb, &err), 1);
	CHECK_STR(cb ? cb : "(null)", "lib");
	free(cb);
	cb = NULL;
	v.repository = NULL;
	CHECK_INT(config_codebase_generate(cfg, &v, &cb, &err), 0);
	config_free(cfg);
}

/* change_add() with a generator function: its name is stored; a failing
 * function leaves the codebase empty and the change is still stored. */
TEST(codebase_generator_in_change_add)
{
	struct fixture f;
	if (fixture_open(&f, HEAD "codebase_generator = function(c)\n"
				  "  if c.repository == 'git://bad' then return {} end\n"
				  "  return (c.repository:gsub('^git://', '')) end\n") < 0)
		return;
	int64_t a = add_change_cb(&f, "git://app", NULL, "main", "r1");
	CHECK_STR(change_codebase(&f, a), "app");
	int64_t b = add_change_cb(&f, "git://bad", NULL, "main", "r2");
	CHECK(b > 0);
	CHECK_STR(change_codebase(&f, b), "");
	int64_t c = add_change_cb(&f, "git://lib", "", "main", "r3");
	CHECK_STR(change_codebase(&f, c), "lib");
	fixture_close(&f);
}

#define MC_CONFIG                                                                                  \
	HEAD "codebase_generator = { ['git://lib'] = 'lib', ['git://app'] = 'app' }\n"             \
	     "single_branch { name = 'mc', builders = { 'b1' }, tree_stable_timer = 10,\n"         \
	     "  codebases = { app = { repository = 'git://app', branch = 'main' },\n"              \
	     "                lib = { repository = 'git://lib', branch = 'stable',\n"              \
	     "                        revision = 'lib-default' } } }\n"

/* A change for one codebase builds it at its revision and the other at
 * the map's defaults; changes for both in one tree-stable window build
 * both; a change for another codebase is not this scheduler's. */
TEST(codebases_single_branch)
{
	struct fixture f;
	if (fixture_open(&f, MC_CONFIG) < 0)
		return;
	struct sched *s = f.m.sched;
	int64_t c1 = add_change_cb(&f, "git://app", NULL, "main", "app1");
	CHECK_STR(change_codebase(&f, c1), "app");
	/* an explicit codebase is kept: the generator is for changes without one */
	int64_t c2 = add_change_cb(&f, "git://lib", "other", "main", "x1");
	CHECK_STR(change_codebase(&f, c2), "other");
	CHECK_INT(sched_test_clock_advance(s, 11), 0);
	CHECK_INT(nbuildsets(&f), 1);
	CHECK_INT(bs_nss(&f, 0), 2);
	CHECK_STR(ss_field(&f, 0, "app", "revision"), "app1");
	CHECK_STR(ss_field(&f, 0, "app", "branch"), "main");
	CHECK_STR(ss_field(&f, 0, "app", "repository"), "git://app");
	CHECK_STR(ss_field(&f, 0, "lib", "revision"), "lib-default");
	CHECK_STR(ss_field(&f, 0, "lib", "branch"), "stable");
	CHECK_STR(ss_field(&f, 0, "lib", "repository"), "git://lib");
	CHECK_STR(ss_field(&f, 0, "other", "revision"), "(none)");
	/* alone, a change for a codebase outside the map builds nothing here */
	add_change_cb(&f, "git://lib", "other", "main", "x2");
	CHECK_INT(sched_test_clock_advance(s, 11), 0);
	CHECK_INT(nbuildsets(&f), 1);

	/* both codebases change in one window (restart in between): both built */
	add_change_cb(&f, "git://lib", NULL, "stable", "lib2");
	db_flush(f.m.db);
	fixture_close(&f);
	fixture_keep_db = true;
	if (fixture_open(&f, MC_CONFIG) < 0)
		return;
	s = f.m.sched;
	add_change_cb(&f, "git://app", NULL, "main", "app2");
	add_change_cb(&f, "git://app", NULL, "main", "app3");
	CHECK_INT(sched_test_clock_advance(s, 11), 0);
	CHECK_INT(nbuildsets(&f), 2);
	CHECK_INT(bs_nss(&f, 1), 2);
	CHECK_STR(ss_field(&f, 1, "app", "revision"), "app3");
	CHECK_STR(ss_field(&f, 1, "lib", "revision"), "lib2");
	CHECK_STR(ss_field(&f, 1, "lib", "branch"), "stable");
	fixture_close(&f);
}

TEST(codebases_timed_force_trigger)
{
	struct fixture f;
	if (fixture_open(
		    &f, HEAD
		    "periodic { name = 'p', builders = { 'b1' }, period = 3600,\n"
		    "  project = 'proj', codebases = { a = { branch = 'main' },\n"
		    "  b = { repository = 'git://b', revision = 'bdef' } } }\n"
		    "force_scheduler { name = 'f', builders = { 'b1' },\n"
		    "  codebases = { [''] = { repository = 'git://app', branch = 'main' },\n"
		    "                lib = { repository = 'git://lib', branch = 'main' } },\n"
		    "  branches = { 'main', 'dev' } }\n"
		    "triggerable { name = 't', builders = { 'b2' },\n"
		    "  codebases = { lib = { branch = 'lib-main' }, doc = { branch = 'd' } } }\n"
		    "dependent { name = 'down', builders = { 'b2' }, upstream = 't' }\n") < 0)
		return;
	struct sched *s = f.m.sched;
	/* periodic: the map alone (its first run is at start) */
	CHECK_INT(sched_test_clock_advance(s, 0), 0);
	CHECK_INT(nbuildsets(&f), 1);
	CHECK_INT(bs_nss(&f, 0), 2);
	CHECK_STR(ss_field(&f, 0, "a", "branch"), "main");
	CHECK_STR(ss_field(&f, 0, "a", "project"), "proj");
	CHECK_STR(ss_field(&f, 0, "b", "revision"), "bdef");
	CHECK_STR(ss_field(&f, 0, "b", "repository"), "git://b");

	/* force: Buildbot's CodebaseParameter fields, FIELD for "" and lib_FIELD */
	int64_t b1 = engine_builder_id(f.m.engine, "b1");
	int64_t bsid, brid;
	char *err = NULL;
	json_t *p = json_pack("{s:s,s:s,s:s,s:s}", "revision", "abc", "lib_branch", "dev",
			      "lib_revision", "def", "lib_repository", "");
	CHECK_INT(sched_force(s, "f", p, &b1, 1, &bsid, &brid, &err), 0);
	json_decref(p);
	CHECK_INT(bs_nss(&f, 1), 2);
	CHECK_STR(ss_field(&f, 1, "", "revision"), "abc");
	CHECK_STR(ss_field(&f, 1, "", "branch"), "main");
	CHECK_STR(ss_field(&f, 1, "", "repository"), "git://app");
	CHECK_STR(ss_field(&f, 1, "lib", "branch"), "dev");
	CHECK_STR(ss_field(&f, 1, "lib", "revision"), "def");
	CHECK_STR(ss_field(&f, 1, "lib", "repository"), "git://lib");
	/* the per-codebase fields are no properties */
	json_t *props = NULL;
	CHECK_INT(db_buildset_properties(f.m.db, bsid, &props), 0);
	CHECK(json_object_get(props, "lib_branch") == NULL);
	json_decref(props);
	/* and they are checked like the plain ones */
	p = json_pack("{s:s}", "lib_repository", "git://evil");
	CHECK_INT(sched_force(s, "f", p, &b1, 1, &bsid, &brid, &err), -EINVAL);
	CHECK_STR(err ? err : "", "'lib_repository' must be empty or the configured value (force "
				  "scheduler 'f' sets no 'repositories')");
	free(err);
	err = NULL;
	json_decref(p);
	p = json_pack("{s:s}", "lib_branch", "feature");
	CHECK_INT(sched_force(s, "f", p, &b1, 1, &bsid, &brid, &err), -EINVAL);
	CHECK_STR(err ? err : "", "'lib_branch' is not allowed by force scheduler 'f'");
	free(err);
	err = NULL;
	json_decref(p);
	CHECK_INT(nbuildsets(&f), 2);

	/* triggerable: the triggering build's sourcestamps pass through and win;
	 * the map adds the codebases they lack */
	struct db_sourcestamp given[] = {
		{.codebase = "lib", .branch = "main", .revision = "l1"},
		{.codebase = "", .branch = "main", .revision = "a1"},
	};
	CHECK_INT(sched_trigger_all(s, "t", 0, given, 2, NULL, &bsid), 0);
	CHECK_INT(bs_nss(&f, 2), 3);
	CHECK_STR(ss_field(&f, 2, "lib", "revision"), "l1");
	CHECK_STR(ss_field(&f, 2, "lib", "branch"), "main");
	CHECK_STR(ss_field(&f, 2, "", "revision"), "a1");
	CHECK_STR(ss_field(&f, 2, "doc", "branch"), "d");
	/* a codebase given twice is refused */
	given[1].codebase = "lib";
	CHECK_INT(sched_trigger_all(s, "t", 0, given, 2, NULL, &bsid), -EINVAL);
	CHECK_INT(nbuildsets(&f), 3);

	/* dependent: every sourcestamp of the upstream buildset */
	struct db_request rq;
	json_t *items = NULL;
	struct db_query q = {.limit = -1};
	db_list(f.m.db, DB_BUILDREQUESTS, &q, &items, NULL);
	int64_t tbr = json_integer_value(json_object_get(
		json_array_get(items, json_array_size(items) - 1), "buildrequestid"));
	json_decref(items);
	CHECK_INT(db_request_get(f.m.db, tbr, &rq), 0);
	int64_t done = 0;
	CHECK_INT(db_request_complete(f.m.db, tbr, RESULTS_SUCCESS, clock_wall(), &done), 0);
	CHECK_INT(done, rq.buildsetid);
	sched_buildset_completed(s, done, RESULTS_SUCCESS);
	uv_run(&f.loop, UV_RUN_NOWAIT); /* the upstream buildset is read on the loop */
	CHECK_INT(nbuildsets(&f), 4);
	CHECK_INT(bs_nss(&f, 3), 3);
	CHECK_STR(ss_field(&f, 3, "lib", "revision"), "l1");
	CHECK_STR(ss_field(&f, 3, "doc", "branch"), "d");
	fixture_close(&f);
}

int main(void)
{
	setenv("KILN_TEST_CLOCK", "1", 1);
	setenv("KILN_SECRET_W1", "pw-w1", 1);
	if (!mkdtemp(tmpdir))
		return 1;
	RUN(filters);
	RUN(config_errors);
	RUN(tree_stable_timer);
	RUN(timer_survives_restart);
	RUN(nightly_and_periodic);
	RUN(dependent);
	RUN(collapse_query);
	RUN(any_branch_cap);
	RUN(force_empty_fields_take_defaults);
	RUN(codebase_config_errors);
	RUN(codebase_generator);
	RUN(codebase_generator_in_change_add);
	RUN(codebases_single_branch);
	RUN(codebases_timed_force_trigger);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		return 1;
	return tap_done();
}
