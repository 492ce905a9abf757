/*
 * Warning counting (master/warnscan.c): the default patterns on real gcc
 * 12 and clang 14 output (from compiling a small C file with -Wall
 * -Wextra on Debian 12) and real GNU ld warnings, output cut anywhere,
 * suppressions (list and Buildbot's file format), make's directory stack,
 * the caps, a catastrophic pattern cut off by the match limit, the result
 * rule and the extraction helper.
 */
#include "master/warnscan.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/limits.h"
#include "db/db.h"
#include "tap.h"

/* gcc -Wall -Wextra -c w.c (gcc 12.2) */
static const char gcc_out[] =
	"w.c: In function ‘main’:\n"
	"w.c:7:15: warning: comparison of integer expressions of different signedness: ‘unsigned "
	"int’ and ‘int’ [-Wsign-compare]\n"
	"    7 |         if (u < argc) printf(\"%d\\n\", argc);\n"
	"      |               ^\n"
	"w.c:8:19: warning: initialization of ‘char *’ from ‘int’ makes pointer from integer "
	"without a cast [-Wint-conversion]\n"
	"    8 |         char *p = 5;\n"
	"      |                   ^\n"
	"w.c:8:15: warning: unused variable ‘p’ [-Wunused-variable]\n"
	"    8 |         char *p = 5;\n"
	"      |               ^\n"
	"w.c:5:13: warning: unused variable ‘x’ [-Wunused-variable]\n"
	"    5 |         int x;\n"
	"      |             ^\n"
	"w.c:3:27: warning: unused parameter ‘argv’ [-Wunused-parameter]\n"
	"    3 | int main(int argc, char **argv)\n"
	"      |                    ~~~~~~~^~~~\n"
	"w.c: At top level:\n"
	"w.c:2:12: warning: ‘unused_fn’ defined but not used [-Wunused-function]\n"
	"    2 | static int unused_fn(void) { return 1; }\n"
	"      |            ^~~~~~~~~\n";

/* clang -Wall -Wextra -c w.c (clang 14) */
static const char clang_out[] =
	"w.c:8:8: warning: incompatible integer to pointer conversion initializing 'char *' with "
	"an expression of type 'int' [-Wint-conversion]\n"
	"        char *p = 5;\n"
	"              ^   ~\n"
	"w.c:5:6: warning: unused variable 'x' [-Wunused-variable]\n"
	"        int x;\n"
	"            ^\n"
	"w.c:8:8: warning: unused variable 'p' [-Wunused-variable]\n"
	"        char *p = 5;\n"
	"              ^\n"
	"w.c:3:27: warning: unused parameter 'argv' [-Wunused-parameter]\n"
	"int main(int argc, char **argv)\n"
	"                          ^\n"
	"w.c:7:8: warning: comparison of integers of different signs: 'unsigned int' and 'int' "
	"[-Wsign-compare]\n"
	"        if (u < argc) printf(\"%d\\n\", argc);\n"
	"            ~ ^ ~~~~\n"
	"w.c:2:12: warning: unused function 'unused_fn' [-Wunused-function]\n"
	"static int unused_fn(void) { return 1; }\n"
	"           ^\n"
	"6 warnings generated.\n";

/* gcc l.c s.o: GNU ld 2.40 */
static const char ld_out[] =
	"/usr/bin/ld: /tmp/ccfGoyJk.o: in function `main':\n"
	"l.c:(.text+0x10): warning: the `gets' function is dangerous and should not be used.\n"
	"/usr/bin/ld: warning: s.o: missing .note.GNU-stack section implies executable stack\n"
	"/usr/bin/ld: NOTE: This behaviour is deprecated and will be removed in a future version "
	"of the linker\n";

static struct warnscan_config *cfg_new(const char *const *pats, size_t n)
{
	struct warnscan_config *c = NULL;
	char *err = NULL;
	int r = warnscan_config_new(pats, n, &c, &err);
	if (r < 0) {
		TAP_FAIL("warnscan_config_new: %s", err ? err : "?");
		free(err);
		return NULL;
	}
	return c;
}

/* Feeds text whole to a new scan of c, finishes; returns the scan. */
static struct warnscan *scan_all(const struct warnscan_config *c, const char *text)
{
	struct warnscan *s = warnscan_new(c);
	CHECK_INT(warnscan_feed(s, 'o', text, strlen(text)), 0);
	CHECK_INT(warnscan_finish(s), 0);
	return s;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

TEST(gcc_defaults)
{
	struct warnscan_config *c = cfg_new(NULL, 0);
	struct warnscan *s = scan_all(c, gcc_out);
	CHECK_INT(warnscan_count(s), 6);
	const char *log = warnscan_log(s, NULL);
	CHECK_INT(count_lines(log), 6);
	CHECK(!strncmp(log, "w.c:7:15: warning: comparison of integer", 40));
	CHECK(strstr(log,
		     "w.c:2:12: warning: ‘unused_fn’ defined but not used [-Wunused-function]\n"));
	CHECK(!strstr(log, "In function"));
	CHECK(warnscan_error(s) == NULL);
	warnscan_free(s);
	warnscan_config_free(c);
}

TEST(clang_defaults)
{
	struct warnscan_config *c = cfg_new(NULL, 0);
	struct warnscan *s = scan_all(c, clang_out);
	CHECK_INT(warnscan_count(s), 6); /* "6 warnings generated." is not one */
	CHECK(!strstr(warnscan_log(s, NULL), "generated"));
	warnscan_free(s);
	warnscan_config_free(c);
}

TEST(linker_and_buildbot_defaults)
{
	struct warnscan_config *c = cfg_new(NULL, 0);
	struct warnscan *s = scan_all(c, ld_out);
	CHECK_INT(warnscan_count(s), 2);
	warnscan_free(s);
	/* Buildbot's (?i).*warning[: ].*: any case, "warning " too; not "warnings" */
	s = scan_all(c, "make: Warning: File 'x' has modification time in the future\n"
			"WARNING something odd\n"
			"cc1: all warnings being treated as errors\n"
			"no warnings\n"
			"warning:\n");
	CHECK_INT(warnscan_count(s), 3);
	warnscan_free(s);
	warnscan_config_free(c);
}

/* Whatever the cuts, in one stream or split over two, the same result. */
TEST(pieces_any_cut)
{
	struct warnscan_config *c = cfg_new(NULL, 0);
	struct warnscan *whole = scan_all(c, gcc_out);
	size_t len = strlen(gcc_out);
	for (size_t cut = 0; cut <= len; cut++) {
		struct warnscan *s = warnscan_new(c);
		CHECK_INT(warnscan_feed(s, 'e', gcc_out, cut), 0);
		CHECK_INT(warnscan_feed(s, 'o', "ok\nmake: war", 12), 0); /* other stream between */
		CHECK_INT(warnscan_feed(s, 'e', gcc_out + cut, len - cut), 0);
		CHECK_INT(warnscan_feed(s, 'o', "ning: x\n", 8), 0);
		CHECK_INT(warnscan_finish(s), 0);
		if (warnscan_count(s) != 7) {
			TAP_FAIL("cut %zu: %llu warnings", cut,
				 (unsigned long long)warnscan_count(s));
			warnscan_free(s);
			break;
		}
		warnscan_free(s);
	}
	/* byte by byte, and random pieces */
	struct warnscan *s = warnscan_new(c);
	for (size_t i = 0; i < len; i++)
		CHECK_INT(warnscan_feed(s, 'o', gcc_out + i, 1), 0);
	CHECK_INT(warnscan_finish(s), 0);
	CHECK_INT(warnscan_count(s), 6);
	CHECK_STR(warnscan_log(s, NULL), warnscan_log(whole, NULL));
	warnscan_free(s);
	srand(7);
	for (int round = 0; round < 200; round++) {
		s = warnscan_new(c);
		for (size_t i = 0; i < len;) {
			size_t n = 1 + (size_t)rand() % 40;
			if (n > len - i)
				n = len - i;
			CHECK_INT(warnscan_feed(s, 'o', gcc_out + i, n), 0);
			i += n;
		}
		CHECK_INT(warnscan_finish(s), 0);
		CHECK_STR(warnscan_log(s, NULL), warnscan_log(whole, NULL));
		warnscan_free(s);
	}
	warnscan_free(whole);
	warnscan_config_free(c);
}

TEST(last_line_and_crlf)
{
	struct warnscan_config *c = cfg_new(NULL, 0);
	struct warnscan *s = warnscan_new(c);
	CHECK_INT(warnscan_feed(s, 'o', "a.c:1:2: warning: x\r\nb.c:3:4: warning: y", 40), 0);
	CHECK_INT(warnscan_count(s), 1); /* the last line is held until its end */
	CHECK_INT(warnscan_finish(s), 0);
	CHECK_INT(warnscan_count(s), 2);
	CHECK_STR(warnscan_log(s, NULL), "a.c:1:2: warning: x\nb.c:3:4: warning: y\n");
	warnscan_free(s);
	warnscan_config_free(c);
}

TEST(custom_patterns_and_errors)
{
	const char *const pats[] = {
		"(?<file>\\S+)\\((?<line>[0-9]+)\\): warning C[0-9]+: (?<text>.*)", "lint: .*"};
	struct warnscan_config *c = cfg_new(pats, 2);
	struct warnscan *s = scan_all(c, "x.c(12): warning C4996: 'strcpy' unsafe\n"
					 "a.c:1:2: warning: not ours\n"
					 "  lint: not at the start\n"
					 "lint: yes\n");
	CHECK_INT(warnscan_count(s), 2); /* patterns match from the line's start */
	CHECK_STR(warnscan_log(s, NULL), "x.c(12): warning C4996: 'strcpy' unsafe\nlint: yes\n");
	warnscan_free(s);
	warnscan_config_free(c);

	const char *const bad[] = {"ok", "a(b"};
	char *err = NULL;
	CHECK_INT(warnscan_config_new(bad, 2, &c, &err), KILN_ECONFIG);
	CHECK(err && strstr(err, "warning pattern 2: ") && strstr(err, "at offset 3"));
	free(err);
	err = NULL;
	const char *const utf[] = {"(*UTF)x"};
	CHECK_INT(warnscan_config_new(utf, 1, &c, &err), KILN_ECONFIG);
	free(err);

	char *longp = malloc(KILN_WARNSCAN_MAX_PATTERN_LEN + 2);
	memset(longp, 'a', KILN_WARNSCAN_MAX_PATTERN_LEN + 1);
	longp[KILN_WARNSCAN_MAX_PATTERN_LEN + 1] = '\0';
	const char *const lp[] = {longp};
	err = NULL;
	CHECK_INT(warnscan_config_new(lp, 1, &c, &err), KILN_ETOOBIG);
	CHECK(err && strstr(err, "longer than"));
	free(err);
	longp[KILN_WARNSCAN_MAX_PATTERN_LEN] = '\0';
	c = cfg_new(lp, 1); /* exactly the cap is fine */
	warnscan_config_free(c);
	free(longp);

	const char *many[KILN_WARNSCAN_MAX_PATTERNS + 1];
	for (size_t i = 0; i <= KILN_WARNSCAN_MAX_PATTERNS; i++)
		many[i] = "x";
	err = NULL;
	CHECK_INT(warnscan_config_new(many, KILN_WARNSCAN_MAX_PATTERNS + 1, &c, &err),
		  KILN_ETOOBIG);
	free(err);
	c = cfg_new(many, KILN_WARNSCAN_MAX_PATTERNS);
	warnscan_config_free(c);
}

TEST(suppressions)
{
	struct warnscan_config *c = cfg_new(NULL, 0);
	char *err = NULL;
	/* any file: unused variables; gen/ files entirely; w.c lines 7-8 sign-compare */
	CHECK_INT(warnscan_config_suppress(c, NULL, "unused variable", 0, 0, &err), 0);
	CHECK_INT(warnscan_config_suppress(c, "gen/", NULL, 0, 0, &err), 0);
	CHECK_INT(warnscan_config_suppress(c, "w\\.c", "-Wsign-compare", 7, 8, &err), 0);
	CHECK_INT(warnscan_config_suppress(c, "w\\.c", "-Wunused-parameter", 100, 0, &err), 0);
	struct warnscan *s = scan_all(c, gcc_out);
	/* 6 - 2 unused variables - 1 sign-compare; unused-parameter is on line 3, not 100 */
	CHECK_INT(warnscan_count(s), 3);
	CHECK_INT(warnscan_suppressed(s), 3);
	CHECK(!strstr(warnscan_log(s, NULL), "unused variable"));
	CHECK(strstr(warnscan_log(s, NULL), "unused parameter"));
	warnscan_free(s);

	/* the file regex is matched from the file's start; the make stack prefixes it */
	s = scan_all(c, "gen/x.c:1:1: warning: a\n"
			"src/gen/x.c:1:1: warning: b\n"
			"make[1]: Entering directory 'gen'\n"
			"y.c:2:2: warning: c\n"
			"make[2]: Entering directory `sub'\n"
			"make[2]: Leaving directory `sub'\n"
			"make[1]: Leaving directory 'gen'\n"
			"make[1]: Entering directory \xe2\x80\x98lib\xe2\x80\x99\n"
			"z.c:2:2: warning: c2\n"
			"make[1]: Leaving directory \xe2\x80\x98lib\xe2\x80\x99\n"
			"y.c:2:2: warning: d\n");
	CHECK_INT(warnscan_count(s), 3); /* a, and c (gen/y.c) suppressed */
	CHECK_STR(warnscan_log(s, NULL), "src/gen/x.c:1:1: warning: b\nz.c:2:2: warning: c2\n"
					 "y.c:2:2: warning: d\n");
	warnscan_free(s);
	warnscan_config_free(c);

	/* Buildbot: a suppression's file regex applies only to warnings with a
	 * file, its line range only to warnings with a line */
	c = cfg_new(NULL, 0);
	CHECK_INT(warnscan_config_suppress(c, "nomatch", "gets", 0, 0, &err), 0);
	CHECK_INT(warnscan_config_suppress(c, NULL, "GNU-stack", 1, 5, &err), 0);
	s = scan_all(c, ld_out);
	CHECK_INT(warnscan_count(s), 1); /* gets: no file named by the pattern -> suppressed */
	CHECK(strstr(warnscan_log(s, NULL), "GNU-stack"));
	warnscan_free(s);

	CHECK_INT(warnscan_config_suppress(c, "a(", NULL, 0, 0, &err), KILN_ECONFIG);
	CHECK(err && strstr(err, "suppression 3: file regex: ") && strstr(err, "offset 2"));
	free(err);
	err = NULL;
	CHECK_INT(warnscan_config_suppress(c, NULL, "x", 5, 2, &err), KILN_ECONFIG);
	free(err);
	warnscan_config_free(c);
}

TEST(suppression_file)
{
	struct warnscan_config *c = cfg_new(NULL, 0);
	static const char file[] = "# Buildbot suppression file\n"
				   "\n"
				   "w.c : unused variable\n"
				   "  w\\.c:comparison of integer: 7\n"
				   "w.c : ‘unused_fn’ defined : 1-3\n" /* unused_fn is on line 2 */
				   "not a suppression line\n"
				   "x.c : : 3\n"
				   "   # indented comment\r\n"
				   "w.c : Wint-conversion : 9-20";
	char *err = NULL;
	CHECK_INT(warnscan_config_parse_suppressions(c, file, strlen(file), &err), 4);
	struct warnscan *s = scan_all(c, gcc_out);
	/* dropped: 2 unused variables, the comparison on line 7, unused_fn on line 2;
	 * kept: int-conversion (line 8, range 9-20), unused parameter */
	CHECK_INT(warnscan_count(s), 2);
	CHECK(strstr(warnscan_log(s, NULL), "-Wint-conversion"));
	CHECK(strstr(warnscan_log(s, NULL), "-Wunused-parameter"));
	warnscan_free(s);

	static const char bad[] = "# ok\nw.c : fine\nw.c : broken(\n";
	CHECK_INT(warnscan_config_parse_suppressions(c, bad, strlen(bad), &err), KILN_ECONFIG);
	CHECK(err && !strncmp(err, "line 3: suppression ", 20));
	free(err);
	warnscan_config_free(c);
}

TEST(log_cap)
{
	struct warnscan_config *c = cfg_new(NULL, 0);
	struct warnscan *s = warnscan_new(c);
	char line[100];
	size_t n = (size_t)snprintf(line, sizeof(line), "%-70s\n", "f.c:1:1: warning: filler");
	size_t total = KILN_WARNSCAN_MAX_LOG / n + 100;
	for (size_t i = 0; i < total; i++)
		CHECK_INT(warnscan_feed(s, 'o', line, n), 0);
	CHECK_INT(warnscan_finish(s), 0);
	CHECK_INT(warnscan_count(s), total); /* counting goes on past the cap */
	size_t len;
	const char *log = warnscan_log(s, &len);
	size_t stored = (KILN_WARNSCAN_MAX_LOG - 1) / n;
	char mark[160];
	snprintf(mark, sizeof(mark),
		 "[kiln: warnings log cut at %u bytes: %zu more warnings not shown]\n",
		 (unsigned)KILN_WARNSCAN_MAX_LOG, total - stored);
	CHECK_INT(len, stored * n + strlen(mark));
	CHECK_STR(log + stored * n, mark);
	warnscan_free(s);
	warnscan_config_free(c);
}

TEST(line_cap)
{
	struct warnscan_config *c = cfg_new(NULL, 0);
	size_t big = KILN_WARNSCAN_MAX_LINE + 5000;
	char *l = malloc(big + 1);
	/* a warning past the cap is not seen; its tail is no line of its own */
	memset(l, 'x', big);
	memcpy(l + KILN_WARNSCAN_MAX_LINE + 100, "\rwarning: late", 14);
	l[big] = '\n';
	struct warnscan *s = warnscan_new(c);
	for (size_t i = 0; i <= big; i += 1000)
		CHECK_INT(warnscan_feed(s, 'o', l + i, i + 1000 <= big + 1 ? 1000 : big + 1 - i),
			  0);
	CHECK_INT(warnscan_feed(s, 'o', "warning: next\n", 14), 0);
	CHECK_INT(warnscan_finish(s), 0);
	CHECK_INT(warnscan_count(s), 1);
	CHECK_STR(warnscan_log(s, NULL), "warning: next\n");
	warnscan_free(s);
	/* one at the start is counted once, stored cut at the cap */
	memcpy(l, "warning: early", 14);
	s = warnscan_new(c);
	CHECK_INT(warnscan_feed(s, 'o', l, big + 1), 0);
	CHECK_INT(warnscan_finish(s), 0);
	CHECK_INT(warnscan_count(s), 1);
	size_t len;
	warnscan_log(s, &len);
	CHECK_INT(len, KILN_WARNSCAN_MAX_LINE + 1);
	warnscan_free(s);
	free(l);
	warnscan_config_free(c);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A catastrophic pattern on a long line is cut off by the match limit with
 * a clear error, quickly, and left out for the rest of the scan. */
TEST(catastrophic_pattern)
{
	const char *const pats[] = {"(a+)+$", "(?i).*warning[: ].*"};
	struct warnscan_config *c = cfg_new(pats, 2);
	size_t n = 5000;
	char *l = malloc(n + 2);
	memset(l, 'a', n);
	l[n] = '!';
	l[n + 1] = '\n';
	struct warnscan *s = warnscan_new(c);
	double t0 = now_s();
	CHECK_INT(warnscan_feed(s, 'o', l, n + 2), KILN_ETOOBIG);
	double dt = now_s() - t0;
	CHECK(dt < 5.0); /* unbounded backtracking would take far longer; generous for load */
	printf("# catastrophic pattern cut off after %.1f ms\n", dt * 1e3);
	const char *e = warnscan_error(s);
	CHECK(e && strstr(e, "warning pattern 1: match limit exceeded on output line 1"));
	/* off from there: the same line again costs nothing, pattern 2 still counts */
	t0 = now_s();
	for (int i = 0; i < 100; i++)
		CHECK_INT(warnscan_feed(s, 'o', l, n + 2), 0);
	CHECK(now_s() - t0 < 0.5);
	CHECK_INT(warnscan_feed(s, 'o', "warning: x\n", 11), 0);
	CHECK_INT(warnscan_finish(s), 0);
	CHECK_INT(warnscan_count(s), 1);
	warnscan_free(s);
	free(l);
	warnscan_config_free(c);
}

TEST(result_rule)
{
	CHECK_INT(warnscan_result(0, -1, RESULTS_FAILURE), RESULTS_SUCCESS);
	CHECK_INT(warnscan_result(3, -1, RESULTS_FAILURE), RESULTS_WARNINGS);
	CHECK_INT(warnscan_result(3, 3, RESULTS_FAILURE), RESULTS_WARNINGS);
	CHECK_INT(warnscan_result(4, 3, RESULTS_FAILURE), RESULTS_FAILURE);
	CHECK_INT(warnscan_result(4, 3, RESULTS_WARNINGS), RESULTS_WARNINGS);
	CHECK_INT(warnscan_result(1, 0, RESULTS_FAILURE), RESULTS_FAILURE);
	CHECK_INT(warnscan_result(0, 0, RESULTS_FAILURE), RESULTS_SUCCESS);
}

struct got {
	char text[512];
	int calls;
};

static void got_cb(void *ud, const char *name, const char *value, size_t len)
{
	struct got *g = ud;
	size_t at = strlen(g->text);
	snprintf(g->text + at, sizeof(g->text) - at, "%s=%.*s;", name ? name : "(1)", (int)len,
		 value);
	g->calls++;
}

TEST(extract)
{
	static const char out[] = "size: 1234 bytes\nversion 2.5.1 (abc)\n";
	struct got g = {{0}, 0};
	char *err = NULL;
	CHECK_INT(warnscan_extract("^version (?<version>[0-9.]+) \\((?<commit>\\w+)\\)$", out,
				   strlen(out), got_cb, &g, &err),
		  2);
	CHECK_STR(g.text, "commit=abc;version=2.5.1;");
	g = (struct got){{0}, 0};
	CHECK_INT(warnscan_extract("size: ([0-9]+)", out, strlen(out), got_cb, &g, &err), 1);
	CHECK_STR(g.text, "(1)=1234;");
	g = (struct got){{0}, 0};
	CHECK_INT(warnscan_extract("[0-9]+ bytes", out, strlen(out), got_cb, &g, &err), 1);
	CHECK_STR(g.text, "(1)=1234 bytes;");
	CHECK_INT(warnscan_extract("nothing", out, strlen(out), got_cb, &g, &err), 0);
	CHECK_INT(warnscan_extract("(?<a>x)?size", out, strlen(out), got_cb, &g, &err), 0);
	CHECK_INT(warnscan_extract("[", out, strlen(out), got_cb, &g, &err), KILN_ECONFIG);
	CHECK(err && strstr(err, "pattern: ") && strstr(err, "offset 1"));
	free(err);
	err = NULL;
	char l[4002];
	memset(l, 'a', 4000);
	l[4000] = '!';
	l[4001] = '\0';
	CHECK_INT(warnscan_extract("(a+)+$", l, 4001, got_cb, &g, &err), KILN_ETOOBIG);
	CHECK(err && strstr(err, "limit"));
	free(err);
}

int main(void)
{
	RUN(gcc_defaults);
	RUN(clang_defaults);
	RUN(linker_and_buildbot_defaults);
	RUN(pieces_any_cut);
	RUN(last_line_and_crlf);
	RUN(custom_patterns_and_errors);
	RUN(suppressions);
	RUN(suppression_file);
	RUN(log_cap);
	RUN(line_cap);
	RUN(catastrophic_pattern);
	RUN(result_rule);
	RUN(extract);
	return tap_done();
}
