/*
 * The test-report front: picks the format (given, or detected from the
 * first bytes), counts bytes and tests against their caps, cuts and
 * sanitises each record before the consumer sees it, and keeps the
 * summary.  The formats themselves are testreport-tap.c, -junit.c and
 * -gotest.c (testreport-int.h).
 */
#include "master/testreport-int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "db/db.h"

/* Bytes held while the format is being detected. */
#define TESTREPORT_DETECT_MAX 4096

static const struct testreport_fmt *const testreport_fmts[] = {
	&testreport_tap_fmt,
	&testreport_junit_fmt,
	&testreport_gotest_fmt,
};

struct testreport {
	enum testreport_format format;
	const struct testreport_fmt *fmt; /* NULL until decided */
	void *st;                         /* owned: the format's state */
	testreport_fn cb;
	void *ud;
	int err;
	char errmsg[256];
	uint64_t bytes;
	struct testreport_summary sum;
	struct buf head;                /* bytes held for detection */
	struct buf name, message, file; /* a record's strings, sanitised */
	bool finished;
};

static const struct testreport_fmt *testreport_fmt_find(enum testreport_format f)
{
	for (size_t i = 0; i < ARRAY_SIZE(testreport_fmts); i++)
		if (testreport_fmts[i]->format == f)
			return testreport_fmts[i];
	return NULL;
}

struct testreport *testreport_new(enum testreport_format format, testreport_fn cb, void *userdata)
{
	struct testreport *tr = xcalloc(1, sizeof(*tr));
	tr->format = format;
	tr->cb = cb;
	tr->ud = userdata;
	buf_init(&tr->head, TESTREPORT_DETECT_MAX);
	/* a cut string made valid UTF-8 grows at most 3 times */
	buf_init(&tr->name, 3 * KILN_TESTREPORT_MAX_NAME + 16);
	buf_init(&tr->message, 3 * KILN_TESTREPORT_MAX_MESSAGE + 64);
	buf_init(&tr->file, 3 * KILN_TESTREPORT_MAX_FILE + 16);
	tr->fmt = testreport_fmt_find(format);
	if (tr->fmt)
		tr->st = tr->fmt->open(tr);
	return tr;
}

void testreport_free(struct testreport *tr)
{
	if (!tr)
		return;
	if (tr->fmt && tr->st)
		tr->fmt->free(tr->st);
	buf_release(&tr->head);
	buf_release(&tr->name);
	buf_release(&tr->message);
	buf_release(&tr->file);
	free(tr);
}

int testreport_fail(struct testreport *tr, int r, const char *fmt, ...)
{
	if (tr->err < 0)
		return tr->err;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tr->errmsg, sizeof(tr->errmsg), fmt, ap);
	va_end(ap);
	tr->err = r;
	return r;
}

const char *testreport_errmsg(const struct testreport *tr)
{
	return tr->errmsg;
}

const struct testreport_summary *testreport_summary(const struct testreport *tr)
{
	return &tr->sum;
}

enum testreport_format testreport_format(const struct testreport *tr)
{
	return tr->fmt ? tr->fmt->format : TESTREPORT_AUTO;
}

static int testreport_set_cut(struct testreport *tr, struct buf *b, const char *s, size_t cap,
			      const char *what)
{
	buf_reset(b);
	size_t n = strlen(s);
	bool cut = n > cap;
	if (cut) {
		n = cap;
		/* not inside a UTF-8 sequence */
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	if (str_utf8_sanitize(b, s, n) < 0 || (cut && buf_adds(b, "[...]") < 0))
		return testreport_fail(tr, KILN_ETOOBIG, "test %s over its cap", what);
	return 0;
}

int testreport_emit(struct testreport *tr, const struct testreport_record *rec)
{
	if (tr->sum.total >= KILN_TESTREPORT_MAX_TESTS)
		return testreport_fail(tr, KILN_ETOOBIG, "more than %d tests in one report",
				       KILN_TESTREPORT_MAX_TESTS);
	const char *name = rec->name && *rec->name ? rec->name : "(unnamed)";
	int r = testreport_set_cut(tr, &tr->name, name, KILN_TESTREPORT_MAX_NAME, "name");
	if (r >= 0)
		r = testreport_set_cut(tr, &tr->message, rec->message ? rec->message : "",
				       KILN_TESTREPORT_MAX_MESSAGE, "message");
	if (r >= 0 && rec->file)
		r = testreport_set_cut(tr, &tr->file, rec->file, KILN_TESTREPORT_MAX_FILE, "file");
	if (r < 0)
		return r;
	struct testreport_record out = {
		.name = tr->name.ptr,
		.result = rec->result,
		.duration_ms = rec->duration_ms,
		.message = tr->message.ptr,
		.file = rec->file ? tr->file.ptr : NULL,
		.line = rec->line,
	};
	tr->sum.total++;
	if (rec->result == RESULTS_FAILURE)
		tr->sum.failed++;
	else if (rec->result == RESULTS_SKIPPED)
		tr->sum.skipped++;
	else
		tr->sum.passed++;
	if (tr->cb && (r = tr->cb(tr->ud, &out)) < 0)
		return testreport_fail(tr, r, "test results not stored: %s", err_str(r));
	return 0;
}

/* Runs the format on bytes (after detection). */
static int testreport_run(struct testreport *tr, const char *data, size_t len)
{
	int r = tr->fmt->feed(tr->st, data, len);
	if (r < 0 && tr->err >= 0)
		return testreport_fail(tr, r, "%s", err_str(r));
	return r;
}

/* Decides the format from the held bytes; at_end: no more will come. */
static int testreport_decide(struct testreport *tr, bool at_end)
{
	enum testreport_format f;
	int r = testreport_detect(tr->head.ptr, tr->head.len, &f);
	if (r == 0 && (at_end || tr->head.len >= TESTREPORT_DETECT_MAX))
		r = KILN_EPARSE;
	if (r < 0)
		return testreport_fail(tr, KILN_EPARSE,
				       tr->head.len
					       ? "not a test report (TAP, JUnit XML or go test "
						 "-json)"
					       : "empty test report");
	if (r == 0)
		return 0;
	tr->format = f;
	tr->fmt = testreport_fmt_find(f);
	tr->st = tr->fmt->open(tr);
	struct buf head = tr->head;
	buf_init(&tr->head, 0);
	r = testreport_run(tr, head.ptr, head.len);
	buf_release(&head);
	return r;
}

int testreport_feed(struct testreport *tr, const void *data, size_t len)
{
	if (tr->err < 0)
		return tr->err;
	if (tr->finished)
		return testreport_fail(tr, KILN_ESTATE, "report already finished");
	if (len > KILN_TESTREPORT_MAX_BYTES - tr->bytes)
		return testreport_fail(tr, KILN_ETOOBIG, "test report over %llu bytes",
				       (unsigned long long)KILN_TESTREPORT_MAX_BYTES);
	tr->bytes += len;
	if (tr->fmt)
		return testreport_run(tr, data, len);
	while (len > 0 && !tr->fmt) {
		size_t n = buf_room(&tr->head);
		if (n > len)
			n = len;
		if (buf_add(&tr->head, data, n) < 0)
			return testreport_fail(tr, -ENOMEM, "detection buffer failed");
		data = (const char *)data + n;
		len -= n;
		int r = testreport_decide(tr, false);
		if (r < 0)
			return r;
	}
	return len ? testreport_run(tr, data, len) : 0;
}

int testreport_finish(struct testreport *tr, const char **ret_err)
{
	int r = tr->err;
	if (r >= 0 && tr->finished)
		r = testreport_fail(tr, KILN_ESTATE, "report already finished");
	if (r >= 0 && !tr->fmt)
		r = testreport_decide(tr, true);
	tr->finished = true;
	if (r >= 0) {
		r = tr->fmt->finish(tr->st);
		if (r < 0 && tr->err >= 0)
			r = testreport_fail(tr, r, "%s", err_str(r));
	}
	if (r < 0 && ret_err)
		*ret_err = tr->errmsg;
	return r < 0 ? r : 0;
}

char *testreport_summary_text(const struct testreport_summary *s)
{
	return xasprintf("%lld tests, %lld failed, %lld skipped", (long long)s->total,
			 (long long)s->failed, (long long)s->skipped);
}

/* --- detection ------------------------------------------------------------------- */

static bool testreport_starts(const char *p, size_t n, const char *word)
{
	size_t w = strlen(word);
	return n >= w ? strncasecmp(p, word, w) == 0 : strncasecmp(p, word, n) == 0;
}

int testreport_detect(const void *data, size_t len, enum testreport_format *ret)
{
	const char *p = data;
	size_t n = len;
	if (n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3, n -= 3;
	while (n > 0 && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++, n--;
	if (n == 0)
		return 0;
	if (*p == '<') {
		*ret = TESTREPORT_JUNIT;
		return 1;
	}
	if (*p == '{') {
		*ret = TESTREPORT_GOTEST;
		return 1;
	}
	static const char *const tap_starts[] = {"TAP version ", "1..", "ok",
						 "not ok",       "#",   "Bail out!"};
	bool maybe = false;
	for (size_t i = 0; i < ARRAY_SIZE(tap_starts); i++) {
		size_t w = strlen(tap_starts[i]);
		if (!testreport_starts(p, n, tap_starts[i]))
			continue;
		if (n >= w) {
			*ret = TESTREPORT_TAP;
			return 1;
		}
		maybe = true;
	}
	return maybe ? 0 : KILN_EPARSE;
}

int testreport_format_parse(const char *name, enum testreport_format *ret)
{
	if (strcmp(name, "auto") == 0) {
		*ret = TESTREPORT_AUTO;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(testreport_fmts); i++)
		if (strcmp(name, testreport_fmts[i]->name) == 0) {
			*ret = testreport_fmts[i]->format;
			return 0;
		}
	return -EINVAL;
}

const char *testreport_format_name(enum testreport_format format)
{
	const struct testreport_fmt *f = testreport_fmt_find(format);
	return f ? f->name : "auto";
}

/* --- helpers for the formats ------------------------------------------------------- */

void testreport_text_init(struct testreport_text *t, size_t cap)
{
	buf_init(&t->b, cap);
	t->cut = false;
}

void testreport_text_add(struct testreport_text *t, const char *s, size_t n)
{
	size_t room = buf_room(&t->b);
	if (n > room) {
		n = room;
		t->cut = true;
	}
	if (n && buf_add(&t->b, s, n) < 0)
		t->cut = true; /* cannot happen: n fits */
}

void testreport_text_reset(struct testreport_text *t)
{
	buf_reset(&t->b);
	t->cut = false;
}

void testreport_text_release(struct testreport_text *t)
{
	buf_release(&t->b);
}

const char *testreport_text_get(struct testreport_text *t)
{
	return t->b.ptr;
}

void testreport_lines_init(struct testreport_lines *l)
{
	buf_init(&l->part, KILN_TESTREPORT_MAX_LINE);
	l->lineno = 0;
}

void testreport_lines_release(struct testreport_lines *l)
{
	buf_release(&l->part);
}

static int testreport_line_out(struct testreport *tr, struct testreport_lines *l, char *line,
			       size_t len, testreport_line_fn fn, void *st)
{
	l->lineno++;
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	if (memchr(line, '\0', len))
		return testreport_fail(tr, KILN_EPARSE, "line %lld: binary data (a NUL byte)",
				       (long long)l->lineno);
	return fn(st, line, len);
}

int testreport_lines_feed(struct testreport *tr, struct testreport_lines *l, const char *data,
			  size_t len, testreport_line_fn fn, void *st)
{
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t n = nl ? (size_t)(nl - data) : len;
		if (buf_add(&l->part, data, n) < 0)
			return testreport_fail(tr, KILN_ETOOBIG, "line %lld longer than %u bytes",
					       (long long)l->lineno + 1, KILN_TESTREPORT_MAX_LINE);
		if (!nl)
			return 0;
		data += n + 1;
		len -= n + 1;
		int r = testreport_line_out(tr, l, l->part.ptr, l->part.len, fn, st);
		buf_reset(&l->part);
		if (r < 0)
			return r;
	}
	return 0;
}

int testreport_lines_finish(struct testreport *tr, struct testreport_lines *l,
			    testreport_line_fn fn, void *st)
{
	if (l->part.len == 0)
		return 0;
	int r = testreport_line_out(tr, l, l->part.ptr, l->part.len, fn, st);
	buf_reset(&l->part);
	return r;
}

int64_t testreport_secs_to_ms(const char *s, size_t n)
{
	char tmp[64];
	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	/* "1,234.5" (Surefire in some locales writes thousands separators) */
	size_t j = 0;
	for (size_t i = 0; i < n; i++)
		if (tmp[i] != ',')
			tmp[j++] = tmp[i];
	tmp[j] = '\0';
	char *end;
	errno = 0;
	double v = strtod(tmp, &end);
	while (*end == ' ' || *end == 's')
		end++;
	if (end == tmp || *end || errno || !isfinite(v) || v < 0 || v > 1e12)
		return -1;
	return (int64_t)llround(v * 1000.0);
}
