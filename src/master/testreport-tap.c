/*
 * TAP, versions 12, 13 and 14 (testanything.org): the plan (at the start or
 * the end, "1..0 # SKIP" too), "ok"/"not ok" test points with # SKIP and
 * # TODO directives, YAML diagnostic blocks (kept as the message; their
 * duration_ms, file and line read), "Bail out!", and TAP 14 subtests
 * (indented by four spaces, named by "# Subtest: NAME") reported as
 * "parent / child".  Parsed line by line as the bytes arrive.
 */
#include "master/testreport-int.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "db/db.h"

struct tap_level {
	char *name;     /* owned: the subtest's name (NULL at the top) */
	int64_t count;  /* test points seen at this level */
	int64_t failed; /* of them, failures (children included) */
};

struct tap_state {
	struct testreport *tr;
	struct testreport_lines lines;
	struct tap_level levels[KILN_TESTREPORT_TAP_MAX_DEPTH + 1];
	size_t depth;          /* current level */
	char *subtest_name;    /* owned: from "# Subtest:", waiting for its block */
	size_t subtest_indent; /* where that comment was */
	int64_t plan;          /* top-level plan, -1 none */
	/* A test point waiting for a YAML block that may follow it. */
	bool pending;
	size_t pending_indent;
	struct buf pname;
	int presult;
	int64_t pduration_ms, pline;
	struct buf pfile;
	struct testreport_text pmsg;
	bool in_yaml;
	size_t yaml_indent;
	bool closed_child;     /* a subtest block just closed: its parent point follows */
	int64_t closed_failed; /* failures inside it */
};

static void *testreport_tap_open(struct testreport *tr)
{
	struct tap_state *st = xcalloc(1, sizeof(*st));
	st->tr = tr;
	testreport_lines_init(&st->lines);
	st->plan = -1;
	buf_init(&st->pname, (KILN_TESTREPORT_TAP_MAX_DEPTH + 2) * (KILN_TESTREPORT_MAX_NAME + 3));
	buf_init(&st->pfile, KILN_TESTREPORT_MAX_FILE + 1);
	testreport_text_init(&st->pmsg, KILN_TESTREPORT_MAX_MESSAGE + 1);
	return st;
}

static void testreport_tap_free(void *p)
{
	struct tap_state *st = p;
	for (size_t i = 0; i <= KILN_TESTREPORT_TAP_MAX_DEPTH; i++)
		free(st->levels[i].name);
	free(st->subtest_name);
	testreport_lines_release(&st->lines);
	buf_release(&st->pname);
	buf_release(&st->pfile);
	testreport_text_release(&st->pmsg);
	free(st);
}

/* Emits the waiting test point, if any. */
static int testreport_tap_flush(struct tap_state *st)
{
	if (!st->pending)
		return 0;
	st->pending = false;
	st->in_yaml = false;
	struct testreport_record rec = {
		.name = st->pname.ptr,
		.result = st->presult,
		.duration_ms = st->pduration_ms,
		.message = testreport_text_get(&st->pmsg),
		.file = st->pfile.len ? st->pfile.ptr : NULL,
		.line = st->pline,
	};
	return testreport_emit(st->tr, &rec);
}

static size_t testreport_tap_indent(const char *line, size_t len)
{
	size_t i = 0;
	while (i < len && line[i] == ' ')
		i++;
	return i;
}

static const char *testreport_tap_skipws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Enters or leaves subtest levels so that depth matches indent / 4. */
static int testreport_tap_set_depth(struct tap_state *st, size_t depth)
{
	if (depth > KILN_TESTREPORT_TAP_MAX_DEPTH)
		return testreport_fail(st->tr, KILN_ETOOBIG,
				       "line %lld: subtests nested deeper than %d",
				       (long long)st->lines.lineno, KILN_TESTREPORT_TAP_MAX_DEPTH);
	while (st->depth < depth) {
		struct tap_level *lv = &st->levels[++st->depth];
		free(lv->name);
		lv->name = NULL;
		if (st->subtest_name && (st->subtest_indent / 4 == st->depth ||
					 st->subtest_indent / 4 + 1 == st->depth))
			lv->name = TAKE_PTR(st->subtest_name);
		else
			lv->name = xstrdup("subtest");
		lv->count = lv->failed = 0;
	}
	while (st->depth > depth) {
		struct tap_level *lv = &st->levels[st->depth--];
		st->closed_child = true;
		st->closed_failed = lv->failed;
		st->levels[st->depth].failed += lv->failed;
		free(lv->name);
		lv->name = NULL;
	}
	return 0;
}

/* "# SKIP reason" / "# TODO reason" at the end of a description: returns
 * 'S', 'T' or 0, cuts the description there and points *ret_reason at the
 * reason. */
static int testreport_tap_directive(char *desc, const char **ret_reason)
{
	for (char *p = desc; (p = strchr(p, '#')); p++) {
		if (p > desc && p[-1] == '\\')
			continue;
		const char *d = testreport_tap_skipws(p + 1);
		int kind = 0;
		if (strncasecmp(d, "skip", 4) == 0)
			kind = 'S';
		else if (strncasecmp(d, "todo", 4) == 0)
			kind = 'T';
		if (!kind)
			continue;
		d += 4;
		while (isalpha((unsigned char)*d)) /* SKIPPED, TODOs */
			d++;
		*ret_reason = testreport_tap_skipws(d);
		*p = '\0';
		return kind;
	}
	return 0;
}

/* Removes trailing blanks and TAP's "\#" escapes, in place. */
static void testreport_tap_clean(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && (r[1] == '#' || r[1] == '\\'))
			r++;
		*w++ = *r;
	}
	*w = '\0';
	while (w > s && (w[-1] == ' ' || w[-1] == '\t'))
		*--w = '\0';
}

static int testreport_tap_point(struct tap_state *st, const char *p, bool ok, size_t indent)
{
	int r = testreport_tap_flush(st);
	if (r < 0)
		return r;
	struct tap_level *lv = &st->levels[st->depth];
	lv->count++;
	int64_t number = -1;
	p = testreport_tap_skipws(p);
	if (isdigit((unsigned char)*p)) {
		char *end;
		long long n = strtoll(p, &end, 10);
		number = n;
		p = end;
	}
	p = testreport_tap_skipws(p);
	if (*p == '-')
		p = testreport_tap_skipws(p + 1);
	_cleanup_free_ char *desc = xstrdup(p);
	const char *reason = NULL;
	int kind = testreport_tap_directive(desc, &reason);
	testreport_tap_clean(desc);

	/* A parent's point after its subtest block: the children were the tests. */
	bool closes_child = st->closed_child;
	int64_t child_failed = st->closed_failed;
	st->closed_child = false;
	if (closes_child && (ok || child_failed > 0 || kind))
		return 0;

	testreport_text_reset(&st->pmsg);
	buf_reset(&st->pname);
	buf_reset(&st->pfile);
	int bad = 0;
	for (size_t i = 1; i <= st->depth; i++) {
		bad |= buf_add(&st->pname, st->levels[i].name,
			       strnlen(st->levels[i].name, KILN_TESTREPORT_MAX_NAME));
		bad |= buf_adds(&st->pname, " / ");
	}
	if (*desc)
		bad |= buf_add(&st->pname, desc, strnlen(desc, KILN_TESTREPORT_MAX_NAME + 1));
	else if (number >= 0)
		bad |= buf_addf(&st->pname, "test %lld", (long long)number);
	else
		bad |= buf_addf(&st->pname, "test %lld", (long long)lv->count);
	if (bad)
		return testreport_fail(st->tr, KILN_ETOOBIG, "line %lld: test name too long",
				       (long long)st->lines.lineno);
	st->presult = ok ? RESULTS_SUCCESS : RESULTS_FAILURE;
	if (kind == 'S') {
		st->presult = RESULTS_SKIPPED;
		testreport_text_add(&st->pmsg, reason, strlen(reason));
	} else if (kind == 'T') {
		/* a failing TODO test is expected to fail: not a failure */
		if (!ok)
			st->presult = RESULTS_SKIPPED;
		testreport_text_add(&st->pmsg, "TODO ", 5);
		testreport_text_add(&st->pmsg, reason, strlen(reason));
	}
	if (st->presult == RESULTS_FAILURE)
		lv->failed++;
	st->pduration_ms = -1;
	st->pline = -1;
	st->pending = true;
	st->pending_indent = indent;
	return 0;
}

/* One line of a YAML block: kept in the message; a few keys read. */
static void testreport_tap_yaml_line(struct tap_state *st, const char *line, size_t len)
{
	const char *p = line + (len < st->yaml_indent ? len : st->yaml_indent);
	size_t n = len - (size_t)(p - line);
	if (st->pmsg.b.len)
		testreport_text_add(&st->pmsg, "\n", 1);
	testreport_text_add(&st->pmsg, p, n);
	const char *k = testreport_tap_skipws(p);
	if (strncmp(k, "duration_ms:", 12) == 0) {
		char *end;
		double v = strtod(k + 12, &end);
		if (end != k + 12 && v >= 0 && v < 1e15)
			st->pduration_ms = (int64_t)(v + 0.5);
	} else if (strncmp(k, "line:", 5) == 0) {
		char *end;
		long long v = strtoll(k + 5, &end, 10);
		if (end != k + 5 && v > 0)
			st->pline = v;
	} else if (strncmp(k, "file:", 5) == 0 && st->pfile.len == 0) {
		const char *f = testreport_tap_skipws(k + 5);
		size_t fl = strnlen(f, KILN_TESTREPORT_MAX_FILE + 1);
		if (fl >= 2 && (f[0] == '"' || f[0] == '\'') && f[fl - 1] == f[0])
			f++, fl -= 2;
		if (buf_add(&st->pfile, f, fl) < 0)
			buf_reset(&st->pfile);
	}
}

static int testreport_tap_plan(struct tap_state *st, const char *p)
{
	char *end;
	long long n = strtoll(p + 3, &end, 10);
	if (end == p + 3 || n < 0)
		return testreport_fail(st->tr, KILN_EPARSE, "line %lld: bad plan '%.40s'",
				       (long long)st->lines.lineno, p);
	if (st->depth > 0)
		return 0; /* a subtest's own plan */
	if (st->plan >= 0)
		return testreport_fail(st->tr, KILN_EPARSE, "line %lld: a second plan",
				       (long long)st->lines.lineno);
	st->plan = n; /* "1..0 # SKIP why": nothing to run, not an error */
	return 0;
}

static int testreport_tap_line(void *p, char *line, size_t len)
{
	struct tap_state *st = p;
	size_t indent = testreport_tap_indent(line, len);
	const char *s = line + indent;

	if (st->in_yaml) {
		const char *t = testreport_tap_skipws(s);
		if (indent >= st->yaml_indent && strcmp(t, "...") == 0) {
			st->in_yaml = false;
			return testreport_tap_flush(st);
		}
		if (indent >= st->yaml_indent || *t == '\0') {
			testreport_tap_yaml_line(st, line, len);
			return 0;
		}
		/* an unterminated block: the next line ends it */
		int r = testreport_tap_flush(st);
		if (r < 0)
			return r;
	}
	if (st->pending && indent > st->pending_indent && strncmp(s, "---", 3) == 0 &&
	    *testreport_tap_skipws(s + 3) == '\0') {
		st->in_yaml = true;
		st->yaml_indent = indent;
		testreport_text_reset(&st->pmsg);
		return 0;
	}
	if (*s == '\0')
		return 0;
	if (strncmp(s, "Bail out!", 9) == 0) {
		int r = testreport_tap_flush(st);
		if (r < 0)
			return r;
		return testreport_fail(st->tr, KILN_EPARSE, "%s", s);
	}
	if (*s == '#') {
		const char *c = testreport_tap_skipws(s + 1);
		if (strncmp(c, "Subtest:", 8) == 0) {
			int r = testreport_tap_flush(st);
			if (r < 0)
				return r;
			free(st->subtest_name);
			const char *nm = testreport_tap_skipws(c + 8);
			st->subtest_name = xstrndup(nm, KILN_TESTREPORT_MAX_NAME + 1);
			testreport_tap_clean(st->subtest_name);
			if (!*st->subtest_name) {
				free(st->subtest_name);
				st->subtest_name = xstrdup("subtest");
			}
			st->subtest_indent = indent;
		}
		return 0;
	}
	bool ok = strncmp(s, "ok", 2) == 0 && (s[2] == '\0' || s[2] == ' ' || s[2] == '\t');
	bool not_ok = strncmp(s, "not ok", 6) == 0 && (s[6] == '\0' || s[6] == ' ' || s[6] == '\t');
	bool plan = strncmp(s, "1..", 3) == 0;
	if (!ok && !not_ok && !plan)
		return 0; /* TAP: anything else is ignored (version, pragmas, output) */
	int r = testreport_tap_set_depth(st, indent / 4);
	if (r < 0)
		return r;
	if (plan) {
		r = testreport_tap_flush(st);
		return r < 0 ? r : testreport_tap_plan(st, s);
	}
	return testreport_tap_point(st, ok ? s + 2 : s + 6, ok, indent);
}

static int testreport_tap_feed(void *p, const char *data, size_t len)
{
	struct tap_state *st = p;
	return testreport_lines_feed(st->tr, &st->lines, data, len, testreport_tap_line, st);
}

static int testreport_tap_finish(void *p)
{
	struct tap_state *st = p;
	int r = testreport_lines_finish(st->tr, &st->lines, testreport_tap_line, st);
	if (r >= 0)
		r = testreport_tap_flush(st);
	if (r >= 0)
		r = testreport_tap_set_depth(st, 0);
	if (r < 0)
		return r;
	int64_t count = st->levels[0].count;
	if (st->plan < 0)
		return testreport_fail(st->tr, KILN_EPARSE,
				       count ? "no plan after %lld tests (the run stopped early?)"
					     : "no plan and no tests",
				       (long long)count);
	if (count != st->plan)
		return testreport_fail(st->tr, KILN_EPARSE, "planned %lld tests but %lld ran",
				       (long long)st->plan, (long long)count);
	return 0;
}

const struct testreport_fmt testreport_tap_fmt = {
	.format = TESTREPORT_TAP,
	.name = "tap",
	.open = testreport_tap_open,
	.feed = testreport_tap_feed,
	.finish = testreport_tap_finish,
	.free = testreport_tap_free,
};
