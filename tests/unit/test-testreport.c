/*
 * Unit tests for the test-report parsers (src/master/testreport*.c): the
 * samples in tests/fuzz/corpus/{tap,junit,gotest}/ as pytest, CTest,
 * GoogleTest, Surefire, TAP 12/13/14 and go test -json write them, fed
 * whole and one byte at a time; detection; every cap and the errors for
 * malformed, hostile (DOCTYPE, entities) and binary input.
 */
#include "tap.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "db/db.h"
#include "master/testreport.h"

struct rec {
	char *name, *message, *file;
	int result;
	int64_t duration_ms, line;
};

struct got {
	struct rec *v;
	size_t n, alloc;
	int stop_after; /* the callback fails after this many (0: never) */
};

static int collect(void *ud, const struct testreport_record *r)
{
	struct got *g = ud;
	if (!g)
		return 0; /* counting only */
	if (g->stop_after && (int)g->n >= g->stop_after)
		return -EIO;
	ARRAY_GROW(g->v, g->n + 1, g->alloc);
	g->v[g->n++] = (struct rec){
		.name = xstrdup(r->name),
		.message = xstrdup(r->message),
		.file = xstrdup_or_null(r->file),
		.result = r->result,
		.duration_ms = r->duration_ms,
		.line = r->line,
	};
	return 0;
}

static void got_release(struct got *g)
{
	for (size_t i = 0; i < g->n; i++) {
		free(g->v[i].name);
		free(g->v[i].message);
		free(g->v[i].file);
	}
	free(g->v);
	*g = (struct got){0};
}

static char *read_sample(const char *rel, size_t *ret_len)
{
	char *path = xasprintf("%s/%s", TESTREPORT_CORPUS, rel);
	FILE *f = fopen(path, "rb");
	if (!f) {
		TAP_FAIL("cannot open '%s'", path);
		free(path);
		*ret_len = 0;
		return xstrdup("");
	}
	struct buf b;
	buf_init(&b, 1 << 24);
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		if (buf_add(&b, tmp, n) < 0)
			TAP_FAIL("sample too big");
	fclose(f);
	free(path);
	return buf_detach(&b, ret_len);
}

/* Parses data with format, whole (step 0) or in pieces of step bytes. */
static int parse(enum testreport_format f, const char *data, size_t len, size_t step, struct got *g,
		 char **ret_err, struct testreport_summary *ret_sum)
{
	struct testreport *tr = testreport_new(f, collect, g);
	int r = 0;
	if (!step)
		step = len ? len : 1;
	for (size_t off = 0; off < len && r >= 0; off += step)
		r = testreport_feed(tr, data + off, len - off < step ? len - off : step);
	const char *err = NULL;
	if (r >= 0)
		r = testreport_finish(tr, &err);
	else
		err = testreport_errmsg(tr);
	if (ret_err)
		*ret_err = r < 0 ? xstrdup(err ? err : "") : NULL;
	if (ret_sum)
		*ret_sum = *testreport_summary(tr);
	testreport_free(tr);
	return r;
}

static const struct rec *find(const struct got *g, const char *name)
{
	for (size_t i = 0; i < g->n; i++)
		if (strcmp(g->v[i].name, name) == 0)
			return &g->v[i];
	TAP_FAIL("no record '%s'", name);
	return NULL;
}

/* The sample parsed whole and byte by byte gives the same records; checks
 * the count and returns the whole parse in *g. */
static void sample(const char *rel, enum testreport_format f, size_t want, struct got *g)
{
	size_t len;
	_cleanup_free_ char *data = read_sample(rel, &len);
	_cleanup_free_ char *err = NULL;
	int r = parse(f, data, len, 0, g, &err, NULL);
	if (r < 0)
		TAP_FAIL("%s: %s", rel, err);
	CHECK_INT(g->n, want);
	struct got g1 = {0};
	_cleanup_free_ char *err1 = NULL;
	r = parse(TESTREPORT_AUTO, data, len, 1, &g1, &err1, NULL);
	if (r < 0)
		TAP_FAIL("%s byte by byte: %s", rel, err1);
	CHECK_INT(g1.n, g->n);
	for (size_t i = 0; i < g->n && i < g1.n; i++) {
		CHECK_STR(g1.v[i].name, g->v[i].name);
		CHECK_STR(g1.v[i].message, g->v[i].message);
		CHECK_INT(g1.v[i].result, g->v[i].result);
		CHECK_INT(g1.v[i].duration_ms, g->v[i].duration_ms);
	}
	got_release(&g1);
}

TEST(junit_pytest)
{
	struct got g = {0};
	sample("junit/pytest.xml", TESTREPORT_JUNIT, 5, &g);
	const struct rec *r = find(&g, "tests.test_math.test_add");
	if (r) {
		CHECK_INT(r->result, RESULTS_SUCCESS);
		CHECK_INT(r->duration_ms, 1);
		CHECK_STR(r->message, "");
	}
	r = find(&g, "tests.test_math.test_div");
	if (r) {
		CHECK_INT(r->result, RESULTS_FAILURE);
		CHECK(strncmp(r->message, "ZeroDivisionError: division by zero\ndef test_div():\n>",
			      50) == 0);
		CHECK(strstr(r->message, "tests/test_math.py:7: ZeroDivisionError") != NULL);
	}
	r = find(&g, "tests.test_math.test_skip");
	if (r) {
		CHECK_INT(r->result, RESULTS_SKIPPED);
		CHECK_STR(r->message, "not on linux\ntests/test_math.py:10: not on linux");
	}
	r = find(&g, "tests.test_io.test_read[utf-8]");
	if (r) {
		CHECK_INT(r->result, RESULTS_SUCCESS);
		CHECK_STR(r->message, ""); /* system-out is not a message */
	}
	r = find(&g, "tests.test_io.test_db");
	if (r) {
		CHECK_INT(r->result, RESULTS_FAILURE);
		CHECK(strncmp(r->message, "failed on setup with \"fixture 'db' not found\"", 45) ==
		      0);
	}
	got_release(&g);
}

TEST(junit_ctest)
{
	struct got g = {0};
	sample("junit/ctest.xml", TESTREPORT_JUNIT, 3, &g);
	const struct rec *r = find(&g, "unit_parse"); /* classname = name: not repeated */
	if (r) {
		CHECK_INT(r->result, RESULTS_SUCCESS);
		CHECK_INT(r->duration_ms, 12);
	}
	r = find(&g, "unit_net");
	if (r) {
		CHECK_INT(r->result, RESULTS_FAILURE);
		CHECK_INT(r->duration_ms, 1500);
		CHECK_STR(r->message, "Failed");
	}
	r = find(&g, "slow_disabled");
	if (r)
		CHECK_INT(r->result, RESULTS_SKIPPED);
	got_release(&g);
}

TEST(junit_gtest)
{
	struct got g = {0};
	sample("junit/gtest.xml", TESTREPORT_JUNIT, 4, &g);
	const struct rec *r = find(&g, "MathTest.Add");
	if (r) {
		CHECK_INT(r->result, RESULTS_SUCCESS);
		CHECK_INT(r->duration_ms, 0);
		CHECK_STR(r->file, "math_test.cc");
		CHECK_INT(r->line, 5);
	}
	r = find(&g, "MathTest.Div");
	if (r) {
		CHECK_INT(r->result, RESULTS_FAILURE);
		CHECK(strstr(r->message, "Which is: 3") != NULL);
		CHECK_INT(r->line, 9);
	}
	r = find(&g, "MathTest.DISABLED_Slow");
	if (r)
		CHECK_INT(r->result, RESULTS_SKIPPED);
	r = find(&g, "MathTest.Skipped");
	if (r) {
		CHECK_INT(r->result, RESULTS_SKIPPED);
		CHECK(strncmp(r->message, "math_test.cc:18\nno GPU", 22) == 0);
	}
	got_release(&g);
}

TEST(junit_surefire)
{
	struct got g = {0};
	sample("junit/surefire.xml", TESTREPORT_JUNIT, 5, &g);
	const struct rec *r = find(&g, "com.example.CalcTest.testDiv");
	if (r) {
		CHECK_INT(r->result, RESULTS_FAILURE);
		CHECK(strncmp(r->message, "expected: <2> but was: <3>\norg.opentest4j", 41) == 0);
	}
	r = find(&g, "com.example.CalcTest.testNpe");
	if (r)
		CHECK_INT(r->result, RESULTS_FAILURE);
	r = find(&g, "com.example.CalcTest.testIgnored");
	if (r) {
		CHECK_INT(r->result, RESULTS_SKIPPED);
		CHECK_STR(r->message, "not ready");
	}
	r = find(&g, "com.example.CalcTest.testFlaky"); /* passed on a rerun */
	if (r) {
		CHECK_INT(r->result, RESULTS_SUCCESS);
		CHECK_INT(r->duration_ms, 500);
	}
	got_release(&g);
}

TEST(tap13_yaml)
{
	struct got g = {0};
	struct testreport_summary s;
	size_t len;
	_cleanup_free_ char *data = read_sample("tap/tap13-yaml.tap", &len);
	sample("tap/tap13-yaml.tap", TESTREPORT_TAP, 4, &g);
	struct got g7 = {0};
	CHECK_INT(parse(TESTREPORT_TAP, data, len, 7, &g7, NULL, &s), 0);
	got_release(&g7);
	CHECK_INT(s.total, 4);
	CHECK_INT(s.passed, 1);
	CHECK_INT(s.failed, 1);
	CHECK_INT(s.skipped, 2);
	if (g.n == 4) {
		CHECK_STR(g.v[0].name, "parses empty input");
		CHECK_INT(g.v[0].result, RESULTS_SUCCESS);
		CHECK_STR(g.v[1].name, "parses a number");
		CHECK_INT(g.v[1].result, RESULTS_FAILURE);
		CHECK_INT(g.v[1].duration_ms, 13);
		CHECK_STR(g.v[1].file, "test/num.js");
		CHECK_INT(g.v[1].line, 17);
		CHECK(strncmp(g.v[1].message, "message: 'expected 42, got 41'\nseverity: fail",
			      45) == 0);
		CHECK_STR(g.v[2].name, "network");
		CHECK_INT(g.v[2].result, RESULTS_SKIPPED);
		CHECK_STR(g.v[2].message, "no network here");
		CHECK_STR(g.v[3].name, "unicode");
		CHECK_INT(g.v[3].result, RESULTS_SKIPPED); /* a failing TODO is not a failure */
		CHECK_STR(g.v[3].message, "TODO not implemented");
	}
	got_release(&g);
}

TEST(tap14_subtests)
{
	struct got g = {0};
	sample("tap/tap14-subtests.tap", TESTREPORT_TAP, 4, &g);
	if (g.n == 4) {
		CHECK_STR(g.v[0].name, "parser / empty");
		CHECK_INT(g.v[0].result, RESULTS_SUCCESS);
		CHECK_STR(g.v[1].name, "parser / nested");
		CHECK_INT(g.v[1].result, RESULTS_FAILURE);
		CHECK_INT(g.v[1].duration_ms, 3);
		CHECK_STR(g.v[2].name, "writer / flush");
		CHECK_STR(g.v[3].name, "standalone # with hash");
	}
	got_release(&g);
}

TEST(tap12)
{
	struct got g = {0};
	sample("tap/tap12.tap", TESTREPORT_TAP, 3, &g);
	if (g.n == 3) {
		CHECK_STR(g.v[0].name, "test 1");
		CHECK_STR(g.v[1].name, "second");
		CHECK_INT(g.v[2].result, RESULTS_FAILURE);
	}
	got_release(&g);
}

static int tap_err(const char *text, char **ret_err)
{
	struct got g = {0};
	int r = parse(TESTREPORT_TAP, text, strlen(text), 0, &g, ret_err, NULL);
	got_release(&g);
	return r;
}

TEST(tap_errors)
{
	char *err = NULL;
	CHECK_INT(tap_err("1..3\nok 1\nok 2\n", &err), KILN_EPARSE);
	CHECK_STR(err, "planned 3 tests but 2 ran");
	free(err);
	CHECK_INT(tap_err("ok 1\nok 2\n", &err), KILN_EPARSE);
	CHECK_STR(err, "no plan after 2 tests (the run stopped early?)");
	free(err);
	CHECK_INT(tap_err("1..2\nok 1\nBail out! database down\nok 2\n", &err), KILN_EPARSE);
	CHECK_STR(err, "Bail out! database down");
	free(err);
	struct got g = {0};
	static const char bin[] = "1..1\nok 1 a\0b\n";
	CHECK_INT(parse(TESTREPORT_TAP, bin, sizeof(bin) - 1, 0, &g, &err, NULL), KILN_EPARSE);
	CHECK_STR(err, "line 2: binary data (a NUL byte)");
	free(err);
	got_release(&g);
	CHECK_INT(tap_err("1..0 # SKIP nothing to do\n", &err), 0);
	CHECK_INT(tap_err("1..1\n1..1\nok\n", &err), KILN_EPARSE);
	CHECK_STR(err, "line 2: a second plan");
	free(err);
	/* subtests nested past the cap */
	struct buf b;
	buf_init(&b, 1 << 22);
	for (int i = 0; i <= KILN_TESTREPORT_TAP_MAX_DEPTH + 1; i++)
		if (buf_addf(&b, "%*sok 1 - x\n", 4 * i, "") < 0)
			TAP_FAIL("buf");
	CHECK_INT(tap_err(b.ptr, &err), KILN_ETOOBIG);
	CHECK(err && strstr(err, "subtests nested deeper than") != NULL);
	free(err);
	/* a line over the cap */
	buf_reset(&b);
	if (buf_adds(&b, "1..1\nok 1 - ") < 0)
		TAP_FAIL("buf");
	for (unsigned i = 0; i < KILN_TESTREPORT_MAX_LINE / 64 + 1; i++)
		if (buf_adds(&b,
			     "0123456789012345678901234567890123456789012345678901234567890123") <
		    0)
			TAP_FAIL("buf");
	CHECK_INT(tap_err(b.ptr, &err), KILN_ETOOBIG);
	CHECK_STR(err, "line 2 longer than 1048576 bytes");
	free(err);
	buf_release(&b);
}

TEST(gotest)
{
	struct got g = {0};
	sample("gotest/calc.json", TESTREPORT_GOTEST, 5, &g);
	const struct rec *r = find(&g, "example.com/calc.TestAdd");
	if (r) {
		CHECK_INT(r->result, RESULTS_SUCCESS);
		CHECK_INT(r->duration_ms, 1);
		CHECK_STR(r->message, "");
	}
	r = find(&g, "example.com/calc.TestDiv/by_zero");
	if (r) {
		CHECK_INT(r->result, RESULTS_FAILURE);
		CHECK_INT(r->duration_ms, 250);
		CHECK_STR(r->message, "    calc_test.go:14: div(4, 0) did not panic\n"
				      "    --- FAIL: TestDiv/by_zero (0.25s)\n");
	}
	r = find(&g, "example.com/calc.TestDiv");
	if (r)
		CHECK_INT(r->result, RESULTS_FAILURE);
	r = find(&g, "example.com/calc.TestNet");
	if (r) {
		CHECK_INT(r->result, RESULTS_SKIPPED);
		CHECK_STR(r->message, "    calc_test.go:30: no network\n");
	}
	/* a package failing with no failed test: its build output */
	r = find(&g, "example.com/broken");
	if (r) {
		CHECK_INT(r->result, RESULTS_FAILURE);
		CHECK(strstr(r->message, "syntax error") != NULL);
	}
	got_release(&g);
}

TEST(gotest_errors)
{
	struct got g = {0};
	char *err = NULL;
	static const char bad[] = "{\"Action\":\"run\",\"Test\":\"T\"}\n{\"Action\": pass}\n";
	CHECK_INT(parse(TESTREPORT_GOTEST, bad, strlen(bad), 0, &g, &err, NULL), KILN_EPARSE);
	CHECK(err && strncmp(err, "line 2: not JSON", 16) == 0);
	free(err);
	static const char unfinished[] =
		"{\"Action\":\"run\",\"Package\":\"p\",\"Test\":\"TestA\"}\n";
	CHECK_INT(parse(TESTREPORT_GOTEST, unfinished, strlen(unfinished), 0, &g, &err, NULL),
		  KILN_EPARSE);
	CHECK_STR(err, "1 test never finished, 'TestA' first (the run stopped early?)");
	free(err);
	/* ... and is a failed test; output alone is no test */
	if (g.n == 1) {
		CHECK_STR(g.v[0].name, "p.TestA");
		CHECK_INT(g.v[0].result, RESULTS_FAILURE);
		CHECK_STR(g.v[0].message, "[no result: the run stopped]");
	} else {
		TAP_FAIL("%zu records", g.n);
	}
	got_release(&g);
	static const char late[] =
		"{\"Action\":\"output\",\"Package\":\"p\",\"Test\":\"T\",\"Output\":\"x\"}\n"
		"{\"Action\":\"bench\",\"Package\":\"p\",\"Test\":\"BenchmarkX\"}\n";
	CHECK_INT(parse(TESTREPORT_GOTEST, late, strlen(late), 0, &g, &err, NULL), 0);
	CHECK_INT(g.n, 0);
	static const char noise[] = "warming up\nPASS\n";
	CHECK_INT(parse(TESTREPORT_GOTEST, noise, strlen(noise), 0, &g, &err, NULL), KILN_EPARSE);
	CHECK_STR(err, "no go test -json events");
	free(err);
	/* too many tests running at once */
	struct buf b;
	buf_init(&b, 1 << 24);
	for (int i = 0; i <= KILN_TESTREPORT_MAX_OPEN; i++)
		if (buf_addf(&b, "{\"Action\":\"run\",\"Package\":\"p\",\"Test\":\"T%d\"}\n", i) <
		    0)
			TAP_FAIL("buf");
	CHECK_INT(parse(TESTREPORT_GOTEST, b.ptr, b.len, 0, &g, &err, NULL), KILN_ETOOBIG);
	CHECK(err && strstr(err, "tests running at once") != NULL);
	free(err);
	buf_release(&b);
	got_release(&g);
}

static int junit_err(const char *text, char **ret_err, struct got *g)
{
	return parse(TESTREPORT_JUNIT, text, strlen(text), 0, g, ret_err, NULL);
}

TEST(junit_hostile)
{
	struct got g = {0};
	char *err = NULL;
	/* entity expansion ("billion laughs") and external entities: no DOCTYPE at all */
	static const char laughs[] =
		"<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\">"
		"<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>"
		"<testsuite><testcase name=\"&lol2;\"/></testsuite>";
	CHECK_INT(junit_err(laughs, &err, &g), KILN_EPARSE);
	CHECK_STR(err, "a DOCTYPE in a test report is refused");
	CHECK_INT(g.n, 0);
	free(err);
	static const char xxe[] = "<?xml version=\"1.0\"?><!DOCTYPE t SYSTEM "
				  "\"file:///etc/passwd\"><testsuite/>";
	CHECK_INT(junit_err(xxe, &err, &g), KILN_EPARSE);
	CHECK_STR(err, "a DOCTYPE in a test report is refused");
	free(err);
	/* an undeclared entity is an error, not an expansion */
	CHECK_INT(junit_err("<testsuite><testcase name=\"&x;\"/></testsuite>", &err, &g),
		  KILN_EPARSE);
	free(err);
	/* predefined entities and character references are fine */
	CHECK_INT(junit_err("<testsuite><testcase name=\"a&lt;b&#x41;\"/></testsuite>", &err, &g),
		  0);
	CHECK_INT(g.n, 1);
	if (g.n == 1)
		CHECK_STR(g.v[0].name, "a<bA");
	got_release(&g);
	CHECK_INT(junit_err("<testsuite><testcase name=\"a\"></testsuite>", &err, &g), KILN_EPARSE);
	CHECK(err && strncmp(err, "XML line 1: ", 12) == 0);
	free(err);
	CHECK_INT(junit_err("<html><body/></html>", &err, &g), KILN_EPARSE);
	CHECK_STR(err, "not a JUnit report: the root element is 'html', not testsuites or "
		       "testsuite");
	free(err);
	CHECK_INT(junit_err("<testsuite>", &err, &g), KILN_EPARSE);
	free(err);
	/* nesting past the cap */
	struct buf b;
	buf_init(&b, 1 << 20);
	if (buf_adds(&b, "<testsuites>") < 0)
		TAP_FAIL("buf");
	for (int i = 0; i < KILN_TESTREPORT_XML_MAX_DEPTH; i++)
		if (buf_adds(&b, "<testsuite>") < 0)
			TAP_FAIL("buf");
	CHECK_INT(junit_err(b.ptr, &err, &g), KILN_ETOOBIG);
	CHECK_STR(err, "XML nested deeper than 64 elements");
	free(err);
	/* an attribute past the cap */
	buf_reset(&b);
	if (buf_adds(&b, "<testsuite><testcase name=\"") < 0)
		TAP_FAIL("buf");
	for (unsigned i = 0; i <= KILN_TESTREPORT_XML_MAX_ATTR / 8; i++)
		if (buf_adds(&b, "abcdefgh") < 0)
			TAP_FAIL("buf");
	if (buf_adds(&b, "\"/></testsuite>") < 0)
		TAP_FAIL("buf");
	CHECK_INT(junit_err(b.ptr, &err, &g), KILN_ETOOBIG);
	CHECK_STR(err, "XML attribute 'name' longer than 65536 bytes");
	free(err);
	buf_release(&b);
	/* binary */
	static const char bin[] = "<testsuite>\x01\x02\xff\xfe</testsuite>";
	CHECK_INT(junit_err(bin, &err, &g), KILN_EPARSE);
	free(err);
	got_release(&g);
}

/* Bytes that are not UTF-8 fail at the same byte wherever the input is cut
 * (found by fuzz-junit: libxml2's own conversion errors depend on the
 * chunking), and the XML declaration's encoding is not obeyed. */
TEST(junit_utf8)
{
	static const char *const bad[] = {
		/* an attribute with a stray continuation byte, declared "UTF.8" */
		"<?xml version=\"1.0\" encoding=\"UTF.8\"?>\n<testsuite\xb7s name=\"x\"/>",
		"<testsuite><testcase name=\"a\xe0\x80\x80\"/></testsuite>",    /* overlong */
		"<testsuite><testcase name=\"\xed\xa0\x80\"/></testsuite>",     /* surrogate */
		"<testsuite><testcase name=\"\xf4\x90\x80\x80\"/></testsuite>", /* > U+10FFFF */
		"<testsuite><testcase name=\"\xe2\x82\"/></testsuite>",         /* cut short */
		"<testsuite><testcase name=\"x\"/></testsuite>\xf0\x9f\x98",    /* ends inside */
	};
	static const uint64_t at[] = {49, 28, 27, 27, 27, 43};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		size_t len = strlen(bad[i]);
		char *want = xasprintf(
			"not UTF-8 at byte %" PRIu64 " (a JUnit report must be UTF-8)", at[i]);
		for (size_t step = 0; step <= len; step++) {
			char *err = NULL;
			int r = parse(TESTREPORT_JUNIT, bad[i], len, step, NULL, &err, NULL);
			if (r != KILN_EPARSE || !err || strcmp(err, want) != 0)
				TAP_FAIL("sample %zu, pieces of %zu: %d '%s'", i, step, r,
					 err ? err : "");
			free(err);
		}
		free(want);
	}
	/* valid UTF-8 cut anywhere, under a declaration naming another encoding */
	static const char good[] = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"
				   "<testsuite><testcase name=\"caf\xc3\xa9 \xf0\x9f\x98\x80\"/>"
				   "</testsuite>";
	for (size_t step = 0; step <= sizeof(good) - 1; step++) {
		struct got g = {0};
		char *err = NULL;
		int r = parse(TESTREPORT_JUNIT, good, sizeof(good) - 1, step, &g, &err, NULL);
		if (r != 0 || g.n != 1 || strcmp(g.v[0].name, "caf\xc3\xa9 \xf0\x9f\x98\x80") != 0)
			TAP_FAIL("pieces of %zu: %d '%s' %zu", step, r, err ? err : "", g.n);
		free(err);
		got_release(&g);
	}
}

TEST(caps)
{
	struct got g = {0};
	char *err = NULL;
	/* a long message is cut at its cap and says so; a long name too */
	struct buf b;
	buf_init(&b, 1 << 22);
	if (buf_adds(&b, "<testsuite><testcase name=\"") < 0)
		TAP_FAIL("buf");
	for (int i = 0; i < KILN_TESTREPORT_MAX_NAME + 100; i++)
		if (buf_addch(&b, 'n') < 0)
			TAP_FAIL("buf");
	if (buf_adds(&b, "\"><failure>") < 0)
		TAP_FAIL("buf");
	for (int i = 0; i < 3 * KILN_TESTREPORT_MAX_MESSAGE; i++)
		if (buf_addch(&b, 'm') < 0)
			TAP_FAIL("buf");
	if (buf_adds(&b, "</failure></testcase></testsuite>") < 0)
		TAP_FAIL("buf");
	CHECK_INT(junit_err(b.ptr, &err, &g), 0);
	CHECK_INT(g.n, 1);
	if (g.n == 1) {
		CHECK_INT(strlen(g.v[0].name), KILN_TESTREPORT_MAX_NAME + 5);
		CHECK_INT(strlen(g.v[0].message), KILN_TESTREPORT_MAX_MESSAGE + 5);
		CHECK(strcmp(g.v[0].message + KILN_TESTREPORT_MAX_MESSAGE, "[...]") == 0);
	}
	got_release(&g);
	/* invalid UTF-8 in a name reaches the consumer as U+FFFD */
	static const char latin1[] = "1..1\nok 1 - caf\xe9\n";
	CHECK_INT(parse(TESTREPORT_TAP, latin1, strlen(latin1), 0, &g, &err, NULL), 0);
	if (g.n == 1)
		CHECK_STR(g.v[0].name, "caf\xef\xbf\xbd");
	got_release(&g);
	/* the tests cap */
	buf_reset(&b);
	for (int i = 0; i <= KILN_TESTREPORT_MAX_TESTS; i++)
		if (buf_adds(&b, "ok\n") < 0)
			TAP_FAIL("buf");
	struct testreport_summary s;
	CHECK_INT(parse(TESTREPORT_TAP, b.ptr, b.len, 0, NULL, &err, &s), KILN_ETOOBIG);
	CHECK_STR(err, "more than 1000000 tests in one report");
	CHECK_INT(s.total, KILN_TESTREPORT_MAX_TESTS);
	free(err);
	buf_release(&b);
	/* the consumer stops the parse */
	g.stop_after = 2;
	static const char three[] = "1..3\nok\nok\nok\n";
	CHECK_INT(parse(TESTREPORT_TAP, three, strlen(three), 0, &g, &err, NULL), -EIO);
	CHECK(err && strncmp(err, "test results not stored", 23) == 0);
	free(err);
	got_release(&g);
}

TEST(detect)
{
	enum testreport_format f;
	CHECK_INT(testreport_detect("\xef\xbb\xbf  <?xml", 10, &f), 1);
	CHECK_INT(f, TESTREPORT_JUNIT);
	CHECK_INT(testreport_detect("\n{\"Action\"", 10, &f), 1);
	CHECK_INT(f, TESTREPORT_GOTEST);
	CHECK_INT(testreport_detect("TAP version 14\n", 15, &f), 1);
	CHECK_INT(f, TESTREPORT_TAP);
	CHECK_INT(testreport_detect("not ok 1", 8, &f), 1);
	CHECK_INT(f, TESTREPORT_TAP);
	CHECK_INT(testreport_detect("no", 2, &f), 0); /* "not ok" may follow */
	CHECK_INT(testreport_detect("  ", 2, &f), 0);
	CHECK_INT(testreport_detect("\x7f"
				    "ELF",
				    4, &f),
		  KILN_EPARSE);
	char *err = NULL;
	struct got g = {0};
	CHECK_INT(parse(TESTREPORT_AUTO, "", 0, 0, &g, &err, NULL), KILN_EPARSE);
	CHECK_STR(err, "empty test report");
	free(err);
	CHECK_INT(parse(TESTREPORT_AUTO,
			"\x7f"
			"ELF\x02\x01",
			6, 0, &g, &err, NULL),
		  KILN_EPARSE);
	CHECK_STR(err, "not a test report (TAP, JUnit XML or go test -json)");
	free(err);
	CHECK_INT(testreport_format_parse("junit", &f), 0);
	CHECK_INT(f, TESTREPORT_JUNIT);
	CHECK_INT(testreport_format_parse("xml", &f), -EINVAL);
	CHECK_STR(testreport_format_name(TESTREPORT_GOTEST), "gotest");
	struct testreport_summary s = {.total = 12, .failed = 2, .skipped = 1, .passed = 9};
	_cleanup_free_ char *txt = testreport_summary_text(&s);
	CHECK_STR(txt, "12 tests, 2 failed, 1 skipped");
}

int main(void)
{
	RUN(junit_pytest);
	RUN(junit_ctest);
	RUN(junit_gtest);
	RUN(junit_surefire);
	RUN(tap13_yaml);
	RUN(tap14_subtests);
	RUN(tap12);
	RUN(tap_errors);
	RUN(gotest);
	RUN(gotest_errors);
	RUN(junit_hostile);
	RUN(junit_utf8);
	RUN(caps);
	RUN(detect);
	return tap_done();
}
