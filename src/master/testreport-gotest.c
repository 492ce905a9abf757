/*
 * `go test -json` (test2json): one JSON event per line, read with jansson.
 * A test's "output" events are kept (capped) until its "pass", "fail" or
 * "skip", which makes the record (name "package.Test/sub", Elapsed as the
 * duration, the output as the message of a failed or skipped test).  A
 * package that fails without a failed test (a build error) is a failed
 * record named after the package.  Lines that are not JSON objects are
 * ignored (go prints build errors that way); a line that starts one but
 * is not valid JSON is an error.
 */
#include "master/testreport-int.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include <jansson.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "db/db.h"

struct gotest_open {
	char *pkg, *test; /* owned; test NULL for the package itself */
	struct testreport_text out;
	int64_t failed_tests; /* package: failed tests seen */
	bool ran;             /* a "run" event came (not only output) */
};

struct gotest_state {
	struct testreport *tr;
	struct testreport_lines lines;
	struct gotest_open *open;
	size_t nopen, open_alloc;
	int64_t events;
	struct buf name;
};

static void *testreport_gotest_open(struct testreport *tr)
{
	struct gotest_state *st = xcalloc(1, sizeof(*st));
	st->tr = tr;
	testreport_lines_init(&st->lines);
	buf_init(&st->name, 2 * KILN_TESTREPORT_MAX_NAME + 8);
	return st;
}

static void testreport_gotest_drop(struct gotest_state *st, size_t i)
{
	free(st->open[i].pkg);
	free(st->open[i].test);
	testreport_text_release(&st->open[i].out);
	st->open[i] = st->open[--st->nopen];
}

static void testreport_gotest_free(void *p)
{
	struct gotest_state *st = p;
	while (st->nopen)
		testreport_gotest_drop(st, st->nopen - 1);
	free(st->open);
	testreport_lines_release(&st->lines);
	buf_release(&st->name);
	free(st);
}

static bool testreport_gotest_streq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The open entry of (pkg, test); created when create. NULL: none, or the
 * cap was hit (the error is set). */
static struct gotest_open *testreport_gotest_find(struct gotest_state *st, const char *pkg,
						  const char *test, bool create, size_t *ret_i)
{
	for (size_t i = st->nopen; i-- > 0;) {
		struct gotest_open *o = &st->open[i];
		if (strcmp(o->pkg, pkg) == 0 && testreport_gotest_streq(o->test, test)) {
			*ret_i = i;
			return o;
		}
	}
	if (!create)
		return NULL;
	if (st->nopen >= KILN_TESTREPORT_MAX_OPEN) {
		testreport_fail(st->tr, KILN_ETOOBIG,
				"line %lld: more than %d tests running at once",
				(long long)st->lines.lineno, KILN_TESTREPORT_MAX_OPEN);
		return NULL;
	}
	ARRAY_GROW(st->open, st->nopen + 1, st->open_alloc);
	struct gotest_open *o = &st->open[st->nopen];
	*o = (struct gotest_open){
		.pkg = xstrndup(pkg, KILN_TESTREPORT_MAX_NAME + 1),
		.test = test ? xstrndup(test, KILN_TESTREPORT_MAX_NAME + 1) : NULL,
	};
	testreport_text_init(&o->out, KILN_TESTREPORT_MAX_MESSAGE + 1);
	*ret_i = st->nopen++;
	return o;
}

static int testreport_gotest_record(struct gotest_state *st, const char *pkg, const char *test,
				    int result, double elapsed, const char *message)
{
	buf_reset(&st->name);
	int bad = 0;
	if (*pkg) {
		bad |= buf_add(&st->name, pkg, strnlen(pkg, KILN_TESTREPORT_MAX_NAME + 1));
		if (test)
			bad |= buf_addch(&st->name, '.');
	}
	if (test)
		bad |= buf_add(&st->name, test, strnlen(test, KILN_TESTREPORT_MAX_NAME + 1));
	if (bad)
		return testreport_fail(st->tr, KILN_ETOOBIG, "line %lld: test name too long",
				       (long long)st->lines.lineno);
	struct testreport_record rec = {
		.name = st->name.ptr,
		.result = result,
		.duration_ms =
			elapsed >= 0 && elapsed < 1e12 ? (int64_t)llround(elapsed * 1000) : -1,
		.message = result == RESULTS_SUCCESS ? "" : message,
		.line = -1,
	};
	return testreport_emit(st->tr, &rec);
}

static int testreport_gotest_event(struct gotest_state *st, json_t *ev)
{
	const char *action = json_string_value(json_object_get(ev, "Action"));
	const char *pkg = json_string_value(json_object_get(ev, "Package"));
	const char *test = json_string_value(json_object_get(ev, "Test"));
	json_t *el = json_object_get(ev, "Elapsed");
	double elapsed = json_is_number(el) ? json_number_value(el) : -1;
	if (!action)
		return testreport_fail(st->tr, KILN_EPARSE, "line %lld: an event without an Action",
				       (long long)st->lines.lineno);
	if (!pkg)
		pkg = "";
	if (test && !*test)
		test = NULL;
	st->events++;
	size_t i;
	if (strcmp(action, "output") == 0) {
		const char *out = json_string_value(json_object_get(ev, "Output"));
		struct gotest_open *o = testreport_gotest_find(st, pkg, test, true, &i);
		if (!o)
			return KILN_ETOOBIG;
		if (out)
			testreport_text_add(&o->out, out, strlen(out));
		return 0;
	}
	if (strcmp(action, "run") == 0 || strcmp(action, "start") == 0) {
		struct gotest_open *o = testreport_gotest_find(st, pkg, test, true, &i);
		if (!o)
			return KILN_ETOOBIG;
		o->ran = test != NULL;
		return 0;
	}
	if (strcmp(action, "bench") == 0) { /* a benchmark's end (older go): not a test */
		if (testreport_gotest_find(st, pkg, test, false, &i))
			testreport_gotest_drop(st, i);
		return 0;
	}
	int result;
	if (strcmp(action, "pass") == 0)
		result = RESULTS_SUCCESS;
	else if (strcmp(action, "fail") == 0)
		result = RESULTS_FAILURE;
	else if (strcmp(action, "skip") == 0)
		result = RESULTS_SKIPPED;
	else
		return 0; /* pause, cont, bench, build-output... */
	struct gotest_open *o = testreport_gotest_find(st, pkg, test, false, &i);
	const char *msg = o ? testreport_text_get(&o->out) : "";
	int r = 0;
	if (test) {
		r = testreport_gotest_record(st, pkg, test, result, elapsed, msg);
		if (result == RESULTS_FAILURE) {
			size_t pi;
			struct gotest_open *po = testreport_gotest_find(st, pkg, NULL, true, &pi);
			if (!po)
				return KILN_ETOOBIG;
			po->failed_tests++;
			if (o) /* the find may have moved the array */
				o = testreport_gotest_find(st, pkg, test, false, &i);
		}
	} else if (result == RESULTS_FAILURE && (!o || o->failed_tests == 0)) {
		r = testreport_gotest_record(st, pkg, NULL, result, elapsed, msg);
	}
	if (o)
		testreport_gotest_drop(st, i);
	return r;
}

static int testreport_gotest_line(void *p, char *line, size_t len)
{
	struct gotest_state *st = p;
	size_t i = 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i == len || line[i] != '{')
		return 0;
	json_error_t jerr;
	json_t *ev = json_loadb(line + i, len - i, 0, &jerr);
	if (!ev)
		return testreport_fail(st->tr, KILN_EPARSE, "line %lld: not JSON: %s",
				       (long long)st->lines.lineno, jerr.text);
	int r = json_is_object(ev)
			? testreport_gotest_event(st, ev)
			: testreport_fail(st->tr, KILN_EPARSE, "line %lld: not a JSON object",
					  (long long)st->lines.lineno);
	json_decref(ev);
	return r;
}

static int testreport_gotest_feed(void *p, const char *data, size_t len)
{
	struct gotest_state *st = p;
	return testreport_lines_feed(st->tr, &st->lines, data, len, testreport_gotest_line, st);
}

static int testreport_gotest_finish(void *p)
{
	struct gotest_state *st = p;
	int r = testreport_lines_finish(st->tr, &st->lines, testreport_gotest_line, st);
	if (r < 0)
		return r;
	if (st->events == 0)
		return testreport_fail(st->tr, KILN_EPARSE, "no go test -json events");
	/* Tests that started and never ended (the test binary crashed or the
	 * report was cut): each is a failure, and the report is an error. */
	int64_t unfinished = 0;
	const char *first = NULL;
	for (size_t i = 0; i < st->nopen; i++) {
		struct gotest_open *o = &st->open[i];
		if (!o->ran)
			continue;
		testreport_text_add(&o->out, "[no result: the run stopped]", 28);
		if ((r = testreport_gotest_record(st, o->pkg, o->test, RESULTS_FAILURE, -1,
						  testreport_text_get(&o->out))) < 0)
			return r;
		if (!unfinished++)
			first = o->test;
	}
	if (unfinished)
		return testreport_fail(
			st->tr, KILN_EPARSE,
			"%lld test%s never finished, '%.200s' first (the run stopped "
			"early?)",
			(long long)unfinished, unfinished == 1 ? "" : "s", first);
	return 0;
}

const struct testreport_fmt testreport_gotest_fmt = {
	.format = TESTREPORT_GOTEST,
	.name = "gotest",
	.open = testreport_gotest_open,
	.feed = testreport_gotest_feed,
	.finish = testreport_gotest_finish,
	.free = testreport_gotest_free,
};
