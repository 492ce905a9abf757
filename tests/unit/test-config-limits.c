/*
 * The config sandbox's limits where Lua's own library would run without
 * end: backtracking patterns (at load and in change filters), the table
 * functions that walk a range, string.rep of nothing; what change filters
 * are handed (capped, truncated = true); and master.lua that is not a
 * regular file (a FIFO, a directory, /dev/zero).  The process has an alarm:
 * a limit that does not hold kills it, which fails the run.
 */
#include "tap.h"
#include "config-test.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "config/config.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define W1 "worker { name = 'w', password = secret('w1') }\n"
#define B1 "builder { name = 'b', workers = { 'w' }, steps = { shell { command = 'true' } } }\n"

static double test_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The pattern of the issue: (.-)(.-)(.-)x on 512 KiB backtracks for
 * hours inside one string.find; the load stops within its budget. */
TEST(load_pattern_budget)
{
	static const char *const calls[] = {
		"string.find(s, '(.-)(.-)(.-)x')",
		"(function() for a in s:gmatch('(.-)(.-)(.-)x') do end end)()",
		/* pcall cannot catch it */
		"pcall(string.find, s, '(.-)(.-)(.-)x') error('not stopped')",
	};
	static const char *const want[] = {
		"master.lua:2: instruction limit exceeded in string.find",
		"master.lua:2: instruction limit exceeded in string.gmatch",
		"master.lua:2: instruction limit exceeded in string.find",
	};
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		char *text = xasprintf("local s = string.rep('a', 512 * 1024)\nlocal r = %s\n",
				       calls[i]);
		double t0 = test_now();
		CHECK_ERR_HAS(text, want[i]);
		double secs = test_now() - t0;
		printf("# %s: %.2f s\n", calls[i], secs);
		CHECK(secs < 30); /* the CPU budget is 10 s; this machine may be loaded */
		free(text);
	}
	/* the patterns still work */
	config_free(CONFIG_TEST_LOAD_OK(
		"assert(('key = value'):match('(%w+)%s*=%s*(%w+)') == 'key')\n"
		"assert(select(2, ('a,b,c'):gsub(',', ';')) == 2)\n"
		"assert(string.find(string.rep('a', 1 << 20) .. 'b', 'ab') == 1 << 20)\n"));
}

TEST(library_loops_are_charged)
{
	/* Lua's string.rep loops 2^62 times copying nothing */
	config_free(CONFIG_TEST_LOAD_OK(
		"assert(string.rep('', 1 << 62) == '')\n"
		"assert(string.rep('', 1 << 62, '') == '')\n"
		"assert(string.rep('ab', 3, ',') == 'ab,ab,ab')\n"
		"assert(string.rep('ab', 1) == 'ab' and string.rep('x', 0) == '')\n"
		"assert(#string.rep('abc', 100000, '--') == 499998)\n"));
	CHECK_ERR_HAS("local s = string.rep('x', 1 << 40)", "memory limit exceeded");
	/* ranges of nils, or a lying __len, cost nothing to walk but time */
	CHECK_ERR_HAS("table.move({}, 1, 1 << 50, 2)",
		      "master.lua:1: instruction limit exceeded in table.move");
	CHECK_ERR_HAS("local t = setmetatable({}, { __len = function() return 1 << 50 end })\n"
		      "table.insert(t, 1, 'x')",
		      "master.lua:2: instruction limit exceeded in table.insert");
	CHECK_ERR_HAS("local t = setmetatable({}, { __len = function() return 1 << 50 end })\n"
		      "table.remove(t, 1)",
		      "master.lua:2: instruction limit exceeded in table.remove");
	CHECK_ERR_HAS("local t = setmetatable({}, { __index = table.concat })\n"
		      "table.concat(t, '', 1, 1 << 50)",
		      "master.lua:2: instruction limit exceeded in table.concat");
	CHECK_ERR_HAS("local t = setmetatable({}, { __len = function() return (1 << 31) - 2 "
		      "end, __index = rawlen, __newindex = rawequal })\n"
		      "table.sort(t)",
		      "master.lua:2: instruction limit exceeded in table.sort");
	/* and they still do what Lua's do */
	config_free(CONFIG_TEST_LOAD_OK(
		"local t = { 3, 1, 2 }\n"
		"table.sort(t) assert(table.concat(t, ',') == '1,2,3')\n"
		"table.sort(t, function(a, b) return a > b end)\n"
		"assert(table.concat(t, ',') == '3,2,1')\n"
		"table.insert(t, 'x') table.insert(t, 1, 'y')\n"
		"assert(table.concat(t, ',') == 'y,3,2,1,x')\n"
		"assert(table.remove(t) == 'x' and table.remove(t, 1) == 'y')\n"
		"assert(table.concat(t, ',', 2) == '2,1' and table.concat({}) == '')\n"
		"assert(table.concat(table.move({ 1, 2, 3 }, 1, 3, 2), ',') == '1,1,2,3')\n"
		"assert(not pcall(table.insert, t, 9, 'z'))\n"
		"assert(not pcall(table.insert, t, 1, 2, 3))\n"
		"assert(table.remove({}) == nil)\n"));
}

/* A change with 512 KiB of comments and 20,000 files. */
static struct config_change_view test_big_change(char **comments, char ***files)
{
	size_t n = 512 * 1024;
	*comments = xmalloc(n + 1);
	memset(*comments, 'a', n);
	(*comments)[n] = '\0';
	*files = xcalloc(20000, sizeof(char *));
	for (size_t i = 0; i < 20000; i++)
		(*files)[i] = xasprintf("src/dir/file-%zu.c", i);
	return (struct config_change_view){
		.branch = "main",
		.comments = *comments,
		.files = (const char *const *)*files,
		.nfiles = 20000,
	};
}

static void test_free_change(char *comments, char **files)
{
	free(comments);
	for (size_t i = 0; i < 20000; i++)
		free(files[i]);
	free(files);
}

/* What issue 9 saw: a change filter's pattern on 512 KiB of commit text
 * held the master's loop for 111 s.  Each call now stops within its own
 * budget (1 million instructions, 1 s of CPU). */
TEST(filter_pattern_budget)
{
	char *err;
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		W1 B1
		"single_branch { name = 'f', builders = { 'b' }, change_filter = {\n"
		"  filter_fn = function(c) return string.find(c.comments, '(.-)(.-)(.-)x') end"
		" } }\n"
		"single_branch { name = 'p', builders = { 'b' }, change_filter = {\n"
		"  branch_re = '(.-)(.-)(.-)x' } }\n");
	if (!cfg)
		return;
	char *comments, **files;
	struct config_change_view c = test_big_change(&comments, &files);
	const struct config_scheduler *f = config_find_scheduler(cfg, "f");
	double t0 = test_now();
	err = NULL;
	CHECK_INT(config_filter_match(cfg, &f->filter, &c, &err), KILN_ECONFIG);
	if (!err || !strstr(err, "master.lua:4: instruction limit exceeded in string.find"))
		TAP_FAIL("filter_fn error: %s", err ? err : "(none)");
	free(err);
	double secs = test_now() - t0;
	printf("# filter_fn stopped in %.3f s\n", secs);
	CHECK(secs < 15); /* an instruction budget: seconds only on a loaded machine */

	/* a branch_re pattern runs under the same budget (on a long branch) */
	const struct config_scheduler *p = config_find_scheduler(cfg, "p");
	c.branch = comments;
	t0 = test_now();
	err = NULL;
	CHECK_INT(config_filter_match(cfg, &p->filter, &c, &err), KILN_ECONFIG);
	if (!err || !strstr(err, "instruction limit exceeded in string.find"))
		TAP_FAIL("branch_re error: %s", err ? err : "(none)");
	free(err);
	secs = test_now() - t0;
	printf("# branch_re stopped in %.3f s\n", secs);
	CHECK(secs < 15); /* an instruction budget: seconds only on a loaded machine */
	test_free_change(comments, files);
	config_free(cfg);
}

/* Filters get at most KILN_LUA_MAX_TEXT bytes of any string (cut at a
 * UTF-8 character) and KILN_LUA_MAX_FILES names, with truncated = true. */
TEST(filter_input_caps)
{
	char *err;
	char *text = xasprintf(
		W1 B1 "single_branch { name = 'f', builders = { 'b' }, change_filter = {\n"
		      "  filter_fn = function(c)\n"
		      "    return #c.comments == %u and #c.files == %u and c.truncated == true\n"
		      "      and c.files[1] == 'src/dir/file-0.c' end } }\n"
		      "single_branch { name = 'small', builders = { 'b' }, change_filter = {\n"
		      "  filter_fn = function(c) return c.truncated == false and #c.files == 1 end "
		      "} }\n"
		      "single_branch { name = 'utf8', builders = { 'b' }, change_filter = {\n"
		      "  filter_fn = function(c) return #c.comments == %u and utf8.len(c.comments) "
		      "end } }\n",
		(unsigned)KILN_LUA_MAX_TEXT, (unsigned)KILN_LUA_MAX_FILES,
		(unsigned)KILN_LUA_MAX_TEXT - 1);
	struct config *cfg = CONFIG_TEST_LOAD_OK(text);
	free(text);
	if (!cfg)
		return;
	char *comments, **files;
	struct config_change_view c = test_big_change(&comments, &files);
	err = NULL;
	CHECK_INT(config_filter_match(cfg, &config_find_scheduler(cfg, "f")->filter, &c, &err), 1);
	if (err)
		TAP_FAIL("%s", err);
	free(err);

	struct config_change_view small = {.branch = "main", .comments = "fix", .nfiles = 1};
	small.files = c.files;
	err = NULL;
	CHECK_INT(config_filter_match(cfg, &config_find_scheduler(cfg, "small")->filter, &small,
				      &err),
		  1);
	free(err);

	/* a two-byte character across the cap is left out whole */
	comments[KILN_LUA_MAX_TEXT - 1] = (char)0xc3;
	comments[KILN_LUA_MAX_TEXT] = (char)0xa9;
	err = NULL;
	CHECK_INT(config_filter_match(cfg, &config_find_scheduler(cfg, "utf8")->filter, &c, &err),
		  1);
	free(err);
	test_free_change(comments, files);
	config_free(cfg);
}

/* master.lua that is not a regular file: refused at once, naming it
 * (a FIFO would block the open, /dev/zero and a directory never end). */
TEST(master_lua_not_regular)
{
	char dir[] = "/tmp/kiln-test-limits.XXXXXX";
	if (!mkdtemp(dir)) {
		TAP_FAIL("mkdtemp");
		return;
	}
	char *path = xasprintf("%s/master.lua", dir);
	static const char *const kinds[] = {"a FIFO", "a directory", "a character device"};
	for (size_t i = 0; i < 3; i++) {
		int r = i == 0   ? mkfifo(path, 0600)
			: i == 1 ? mkdir(path, 0700)
				 : symlink("/dev/zero", path);
		CHECK_INT(r, 0);
		struct config *cfg = NULL;
		char *err = NULL;
		double t0 = test_now();
		CHECK_INT(config_load(dir, &cfg, &err), KILN_ECONFIG);
		CHECK(test_now() - t0 < 2);
		char *want = xasprintf("'%s' is not a regular file (it is %s)", path, kinds[i]);
		CHECK_STR(err, want);
		free(want);
		free(err);
		config_free(cfg);
		if (i == 1)
			rmdir(path);
		else
			unlink(path);
	}
	rmdir(dir);
	free(path);
}

int main(void)
{
	alarm(240); /* a limit that does not hold: killed, and the plan is missing */
	setenv("KILN_SECRET_W1", "pw", 1);
	RUN(load_pattern_budget);
	RUN(library_loops_are_charged);
	RUN(filter_pattern_budget);
	RUN(filter_input_caps);
	RUN(master_lua_not_regular);
	return tap_done();
}
