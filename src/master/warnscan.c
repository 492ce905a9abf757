/*
 * Warning counting over output pieces, with Buildbot's patterns, make
 * directory tracking and suppressions (warnscan.h), plus the PCRE2 value
 * extraction of set_property_from_command.  Every PCRE2 match runs under
 * the limits of common/limits.h; a pattern that hits one is reported once
 * and left out for the rest of the scan.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "master/warnscan.h"

#include <assert.h>
#include <pcre2.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "db/db.h"

/* Buildbot's default is the last one: it also counts what the first two
 * find, which are there to name the file, line and text of a warning. */
static const char *const warnscan_defaults[] = {
	/* gcc and clang: "src/a.c:12:5: warning: unused variable 'x' [-Wunused-variable]" */
	"(?<file>[^:\\s][^:]*):(?<line>[0-9]+):(?:[0-9]+:)? warning: (?<text>.*)",
	/* the linker: "/usr/bin/ld: warning: ...", "ld.lld: warning: ..." */
	"(?:\\S*/)?(?:ld|ld\\.bfd|ld\\.gold|ld\\.lld|lld|mold|collect2): warning: (?<text>.*)",
	/* Buildbot's WarningCountingShellCommand.warningPattern */
	"(?i).*warning[: ].*",
};

/* GNU make's lines around a recursive make, as Buildbot's defaults; the
 * opening quote may also be ‘ (GNU make in a UTF-8 locale: ‘dir’), which
 * Buildbot's pattern misses. */
#define WARNSCAN_DIR_ENTER                                                                         \
	"make.*: Entering directory (?:\xe2\x80[\x98\x99]|[\"`'])(.*)(?:\xe2\x80\x99|[\"`'])"
#define WARNSCAN_DIR_LEAVE "make.*: Leaving directory"

#define WARNSCAN_JIT_STACK_MIN (32u << 10)
#define WARNSCAN_JIT_STACK_MAX (1u << 20)
#define WARNSCAN_NSTREAMS 3

struct warnscan_re {
	pcre2_code *code;           /* owned */
	int g_file, g_line, g_text; /* named group numbers, -1 when absent */
};

struct warnscan_supp {
	pcre2_code *file_re; /* owned, NULL = any file (anchored at the file's start) */
	pcre2_code *warn_re; /* owned, NULL = any text (found anywhere) */
	long start, end;     /* inclusive line range; 0, 0 = any line */
};

struct warnscan_config {
	pcre2_general_context *gctx; /* owned: allocations abort on OOM (xalloc) */
	pcre2_compile_context *cctx; /* owned */
	pcre2_match_context *mctx;   /* owned: the limits */
	pcre2_jit_stack *jit_stack;  /* owned, NULL without JIT */
	struct warnscan_re *pat;     /* owned */
	size_t npat;
	struct warnscan_supp *supp; /* owned */
	size_t nsupp, supp_alloc;
	pcre2_code *dir_enter, *dir_leave; /* owned */
};

struct warnscan_stream {
	struct buf line; /* the partial line, at most KILN_WARNSCAN_MAX_LINE */
	bool skip;       /* the line was cut: drop bytes up to its '\n' */
};

struct warnscan {
	const struct warnscan_config *c; /* borrowed */
	pcre2_match_data *md;            /* owned */
	struct warnscan_stream st[WARNSCAN_NSTREAMS];
	bool *pat_off;                      /* owned: per pattern, hit a limit */
	bool *supp_off;                     /* owned: per suppression, hit a limit */
	char *dirs[KILN_WARNSCAN_MAX_DIRS]; /* owned: make's directory stack */
	size_t ndirs, dirs_over;            /* entries held; pushes past the cap */
	uint64_t count, suppressed, unstored, lineno;
	struct buf log; /* the warnings log */
	bool log_cut;
	bool finished;
	char *error;   /* owned: the first limit error, or NULL */
	char *scratch; /* owned: KILN_WARNSCAN_MAX_LINE + 1 bytes, the line being scanned */
};

static void *warnscan_malloc(PCRE2_SIZE n, void *ud)
{
	return xmalloc(n);
}

static void warnscan_mfree(void *p, void *ud)
{
	free(p);
}

static char *warnscan_pcre_msg(int code)
{
	PCRE2_UCHAR msg[160];
	if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
		snprintf((char *)msg, sizeof(msg), "PCRE2 error %d", code);
	return xstrdup((const char *)msg);
}

/* Contexts carrying the allocator and the limits (shared by the config's
 * patterns and warnscan_extract's one). */
static void warnscan_contexts(pcre2_general_context **g, pcre2_compile_context **cc,
			      pcre2_match_context **mc)
{
	*g = pcre2_general_context_create(warnscan_malloc, warnscan_mfree, NULL);
	assert(*g); /* the allocator aborts rather than fail */
	*cc = pcre2_compile_context_create(*g);
	*mc = pcre2_match_context_create(*g);
	assert(*cc && *mc);
	pcre2_set_max_pattern_length(*cc, KILN_WARNSCAN_MAX_PATTERN_LEN);
	pcre2_set_match_limit(*mc, KILN_WARNSCAN_MATCH_LIMIT);
	pcre2_set_depth_limit(*mc, KILN_WARNSCAN_DEPTH_LIMIT);
	pcre2_set_heap_limit(*mc, KILN_WARNSCAN_HEAP_LIMIT_KIB);
}

/* Compiles re (bytes, never UTF) and JIT-compiles it when possible.  what
 * names it in messages ("warning pattern 2"). */
static int warnscan_compile(pcre2_compile_context *cc, const char *re, uint32_t opts,
			    const char *what, pcre2_code **ret, char **ret_err)
{
	size_t len = strlen(re);
	if (len > KILN_WARNSCAN_MAX_PATTERN_LEN) {
		*ret_err = xasprintf("%s: longer than %u bytes", what,
				     (unsigned)KILN_WARNSCAN_MAX_PATTERN_LEN);
		return KILN_ETOOBIG;
	}
	int ec;
	PCRE2_SIZE off;
	pcre2_code *code =
		pcre2_compile((PCRE2_SPTR)re, len, opts | PCRE2_NEVER_UTF, &ec, &off, cc);
	if (!code) {
		_cleanup_free_ char *msg = warnscan_pcre_msg(ec);
		*ret_err = xasprintf("%s: %s at offset %zu", what, msg, (size_t)off);
		return KILN_ECONFIG;
	}
	/* without JIT (not built in, or no executable memory) the interpreter
	 * runs it, under the same limits */
	(void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
	*ret = code;
	return 0;
}

static int warnscan_group(const pcre2_code *code, const char *name)
{
	int n = pcre2_substring_number_from_name(code, (PCRE2_SPTR)name);
	return n > 0 ? n : -1;
}

void warnscan_config_free(struct warnscan_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->npat; i++)
		pcre2_code_free(c->pat[i].code);
	free(c->pat);
	for (size_t i = 0; i < c->nsupp; i++) {
		pcre2_code_free(c->supp[i].file_re);
		pcre2_code_free(c->supp[i].warn_re);
	}
	free(c->supp);
	pcre2_code_free(c->dir_enter);
	pcre2_code_free(c->dir_leave);
	pcre2_jit_stack_free(c->jit_stack);
	pcre2_match_context_free(c->mctx);
	pcre2_compile_context_free(c->cctx);
	pcre2_general_context_free(c->gctx);
	free(c);
}

int warnscan_config_new(const char *const *patterns, size_t n, struct warnscan_config **ret,
			char **ret_err)
{
	if (n > KILN_WARNSCAN_MAX_PATTERNS) {
		*ret_err = xasprintf("more than %u warning patterns",
				     (unsigned)KILN_WARNSCAN_MAX_PATTERNS);
		return KILN_ETOOBIG;
	}
	if (n == 0) {
		patterns = warnscan_defaults;
		n = ARRAY_SIZE(warnscan_defaults);
	}
	struct warnscan_config *c = xcalloc(1, sizeof(*c));
	warnscan_contexts(&c->gctx, &c->cctx, &c->mctx);
	c->jit_stack =
		pcre2_jit_stack_create(WARNSCAN_JIT_STACK_MIN, WARNSCAN_JIT_STACK_MAX, c->gctx);
	if (c->jit_stack)
		pcre2_jit_stack_assign(c->mctx, NULL, c->jit_stack);

	int r = warnscan_compile(c->cctx, WARNSCAN_DIR_ENTER, 0, "make directory pattern",
				 &c->dir_enter, ret_err);
	if (r == 0)
		r = warnscan_compile(c->cctx, WARNSCAN_DIR_LEAVE, 0, "make directory pattern",
				     &c->dir_leave, ret_err);
	c->pat = xcalloc(n, sizeof(*c->pat));
	for (size_t i = 0; r == 0 && i < n; i++) {
		char what[48];
		snprintf(what, sizeof(what), "warning pattern %zu", i + 1);
		struct warnscan_re *p = &c->pat[i];
		r = warnscan_compile(c->cctx, patterns[i], PCRE2_ANCHORED, what, &p->code, ret_err);
		if (r < 0)
			break;
		c->npat++;
		p->g_file = warnscan_group(p->code, "file");
		p->g_line = warnscan_group(p->code, "line");
		p->g_text = warnscan_group(p->code, "text");
	}
	if (r < 0) {
		warnscan_config_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

int warnscan_config_suppress(struct warnscan_config *c, const char *file_re, const char *warn_re,
			     long start, long end, char **ret_err)
{
	if (c->nsupp >= KILN_WARNSCAN_MAX_SUPPRESSIONS) {
		*ret_err = xasprintf("more than %u suppressions",
				     (unsigned)KILN_WARNSCAN_MAX_SUPPRESSIONS);
		return KILN_ETOOBIG;
	}
	if (start < 0 || end < 0 || (end > 0 && start == 0) || (end > 0 && end < start)) {
		*ret_err = xasprintf("suppression %zu: bad line range %ld-%ld", c->nsupp + 1, start,
				     end);
		return KILN_ECONFIG;
	}
	struct warnscan_supp s = {.start = start, .end = end ? end : start};
	char what[64];
	int r = 0;
	if (file_re) {
		snprintf(what, sizeof(what), "suppression %zu: file regex", c->nsupp + 1);
		r = warnscan_compile(c->cctx, file_re, PCRE2_ANCHORED, what, &s.file_re, ret_err);
	}
	if (r == 0 && warn_re) {
		snprintf(what, sizeof(what), "suppression %zu: warning regex", c->nsupp + 1);
		r = warnscan_compile(c->cctx, warn_re, 0, what, &s.warn_re, ret_err);
	}
	if (r < 0) {
		pcre2_code_free(s.file_re);
		return r;
	}
	ARRAY_GROW(c->supp, c->nsupp + 1, c->supp_alloc);
	c->supp[c->nsupp++] = s;
	return 0;
}

static bool warnscan_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* s[0..*len) less its surrounding blanks. */
static const char *warnscan_trim(const char *s, size_t *len)
{
	size_t n = *len;
	while (n > 0 && warnscan_blank(*s))
		s++, n--;
	while (n > 0 && warnscan_blank(s[n - 1]))
		n--;
	*len = n;
	return s;
}

/* "N" or "N-M" (digits only, each at most 9 of them). */
static bool warnscan_parse_range(const char *s, size_t len, long *ret_start, long *ret_end)
{
	long v[2] = {0, 0};
	int k = 0;
	size_t digits = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] >= '0' && s[i] <= '9') {
			if (++digits > 9)
				return false;
			v[k] = v[k] * 10 + (s[i] - '0');
		} else if (s[i] == '-' && k == 0 && digits > 0) {
			k = 1;
			digits = 0;
		} else
			return false;
	}
	if (digits == 0)
		return false;
	*ret_start = v[0];
	*ret_end = k ? v[1] : v[0];
	return true;
}

/* One line of a suppression file: 1 added, 0 skipped (comment, blank or not
 * in the format), or an error. */
static int warnscan_suppression_line(struct warnscan_config *c, const char *s, size_t len,
				     size_t lineno, char **ret_err)
{
	s = warnscan_trim(s, &len);
	if (len == 0 || s[0] == '#')
		return 0;
	const char *colon = memchr(s, ':', len);
	if (!colon)
		return 0;
	size_t flen = (size_t)(colon - s);
	const char *file = warnscan_trim(s, &flen);
	size_t wlen = len - (size_t)(colon + 1 - s);
	const char *warn = warnscan_trim(colon + 1, &wlen);
	if (flen == 0 || wlen == 0)
		return 0;
	long start = 0, end = 0;
	/* a last ": N" or ": N-M" is the line range */
	const char *last = NULL;
	for (size_t i = wlen; i > 0; i--)
		if (warn[i - 1] == ':') {
			last = warn + i - 1;
			break;
		}
	if (last) {
		size_t rlen = wlen - (size_t)(last + 1 - warn);
		const char *range = warnscan_trim(last + 1, &rlen);
		size_t before = (size_t)(last - warn);
		warnscan_trim(warn, &before);
		if (before > 0 && warnscan_parse_range(range, rlen, &start, &end))
			wlen = before;
	}
	if (warn[0] == ':')
		return 0;
	if (end < start)
		return 0; /* never matches a line: as good as absent */
	_cleanup_free_ char *f = xstrndup(file, flen);
	_cleanup_free_ char *w = xstrndup(warn, wlen);
	if (strlen(f) != flen || strlen(w) != wlen)
		return 0; /* a NUL byte: not text */
	char *err = NULL;
	int r = warnscan_config_suppress(c, f, w, start, end, &err);
	if (r < 0) {
		*ret_err = xasprintf("line %zu: %s", lineno, err);
		free(err);
		return r;
	}
	return 1;
}

int warnscan_config_parse_suppressions(struct warnscan_config *c, const char *text, size_t len,
				       char **ret_err)
{
	if (len > KILN_WARNSCAN_MAX_SUPPRESSION_FILE) {
		*ret_err = xasprintf("suppression file larger than %u bytes",
				     (unsigned)KILN_WARNSCAN_MAX_SUPPRESSION_FILE);
		return KILN_ETOOBIG;
	}
	int added = 0;
	size_t lineno = 0;
	while (len > 0) {
		const char *nl = memchr(text, '\n', len);
		size_t n = nl ? (size_t)(nl - text) : len;
		int r = warnscan_suppression_line(c, text, n, ++lineno, ret_err);
		if (r < 0)
			return r;
		added += r;
		n += nl ? 1 : 0;
		text += n;
		len -= n;
	}
	return added;
}

struct warnscan *warnscan_new(const struct warnscan_config *c)
{
	struct warnscan *s = xcalloc(1, sizeof(*s));
	s->c = c;
	uint32_t pairs = 1;
	for (size_t i = 0; i < c->npat; i++) {
		uint32_t cap = 0;
		pcre2_pattern_info(c->pat[i].code, PCRE2_INFO_CAPTURECOUNT, &cap);
		if (cap + 1 > pairs)
			pairs = cap + 1;
	}
	if (pairs < 2)
		pairs = 2; /* the directory pattern's group */
	s->md = pcre2_match_data_create(pairs, c->gctx);
	assert(s->md);
	for (size_t i = 0; i < WARNSCAN_NSTREAMS; i++)
		buf_init(&s->st[i].line, KILN_WARNSCAN_MAX_LINE);
	s->scratch = xmalloc(KILN_WARNSCAN_MAX_LINE + 1);
	s->pat_off = xcalloc(c->npat ? c->npat : 1, sizeof(bool));
	s->supp_off = xcalloc(c->nsupp ? c->nsupp : 1, sizeof(bool));
	/* room for the cut marker past the stored lines */
	buf_init(&s->log, KILN_WARNSCAN_MAX_LOG + 256);
	return s;
}

void warnscan_free(struct warnscan *s)
{
	if (!s)
		return;
	pcre2_match_data_free(s->md);
	for (size_t i = 0; i < WARNSCAN_NSTREAMS; i++)
		buf_release(&s->st[i].line);
	for (size_t i = 0; i < s->ndirs; i++)
		free(s->dirs[i]);
	free(s->pat_off);
	free(s->supp_off);
	buf_release(&s->log);
	free(s->error);
	free(s->scratch);
	free(s);
}

static bool warnscan_is_limit(int rc)
{
	return rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
	       rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT;
}

/* Matches code on p[0..n): 1 match, 0 none, KILN_ETOOBIG on a limit or any
 * other failure (recorded as the scan's error when it is the first). */
static int warnscan_match(struct warnscan *s, const pcre2_code *code, const char *p, size_t n,
			  const char *what, size_t idx)
{
	int rc = pcre2_match(code, (PCRE2_SPTR)p, n, 0, 0, s->md, s->c->mctx);
	if (rc >= 0)
		return 1; /* 0: matched, ovector too small for every group */
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	if (!s->error) {
		_cleanup_free_ char *msg = warnscan_pcre_msg(rc);
		s->error = xasprintf("%s %zu: %s%s on output line %llu; skipped from there", what,
				     idx + 1, msg, warnscan_is_limit(rc) ? "" : " (match error)",
				     (unsigned long long)s->lineno);
	}
	return KILN_ETOOBIG;
}

static void warnscan_group_span(struct warnscan *s, int g, size_t *ret_off, size_t *ret_len)
{
	*ret_off = PCRE2_UNSET;
	*ret_len = 0;
	if (g < 0 || (uint32_t)g >= pcre2_get_ovector_count(s->md))
		return;
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
	if (ov[2 * g] == PCRE2_UNSET)
		return;
	*ret_off = ov[2 * g];
	*ret_len = ov[2 * g + 1] - ov[2 * g];
}

/* The file name with make's directory stack in front ("dir/sub/file.c"),
 * in b; false if it does not fit (then the bare name is used). */
static bool warnscan_full_file(struct warnscan *s, struct buf *b, const char *f, size_t flen)
{
	for (size_t i = 0; i < s->ndirs; i++)
		if (buf_adds(b, s->dirs[i]) < 0 || buf_addch(b, '/') < 0)
			return false;
	return buf_add(b, f, flen) == 0;
}

/* Is the warning (file/line/text from the pattern's groups) suppressed? */
static int warnscan_suppressed_by(struct warnscan *s, const char *p, const struct warnscan_re *re,
				  bool *ret_hit)
{
	size_t foff, flen, loff, llen, toff, tlen;
	warnscan_group_span(s, re->g_file, &foff, &flen);
	warnscan_group_span(s, re->g_line, &loff, &llen);
	warnscan_group_span(s, re->g_text, &toff, &tlen);
	const char *text = p;
	size_t text_len = strlen(p);
	if (toff != PCRE2_UNSET) {
		text = p + toff;
		text_len = tlen;
	}
	long line = 0;
	if (loff != PCRE2_UNSET && llen > 0 && llen <= 9)
		for (size_t i = 0; i < llen; i++)
			line = p[loff + i] >= '0' && p[loff + i] <= '9'
				       ? line * 10 + (p[loff + i] - '0')
				       : 0;
	struct buf file;
	buf_init(&file, 2 * KILN_WARNSCAN_MAX_LINE);
	bool have_file = foff != PCRE2_UNSET && flen > 0;
	if (have_file && (s->ndirs == 0 || !warnscan_full_file(s, &file, p + foff, flen))) {
		buf_reset(&file);
		if (buf_add(&file, p + foff, flen) < 0)
			have_file = false;
	}
	int r = 0;
	*ret_hit = false;
	for (size_t i = 0; i < s->c->nsupp && !*ret_hit; i++) {
		const struct warnscan_supp *sp = &s->c->supp[i];
		if (s->supp_off[i])
			continue;
		if (sp->start > 0 && (line < sp->start || line > sp->end))
			continue;
		int m = 1;
		if (sp->file_re && have_file)
			m = warnscan_match(s, sp->file_re, file.ptr, file.len, "suppression", i);
		if (m == 1 && sp->warn_re)
			m = warnscan_match(s, sp->warn_re, text, text_len, "suppression", i);
		if (m < 0) {
			s->supp_off[i] = true;
			r = m;
		}
		*ret_hit = m == 1;
	}
	buf_release(&file);
	return r;
}

static void warnscan_store(struct warnscan *s, const char *p, size_t n)
{
	if (!s->log_cut && n < KILN_WARNSCAN_MAX_LOG - s->log.len) {
		if (buf_add(&s->log, p, n) == 0 && buf_addch(&s->log, '\n') == 0)
			return;
	}
	s->log_cut = true;
	s->unstored++;
}

/* make's directory lines: true when p is one (never a warning then). */
static bool warnscan_directory(struct warnscan *s, const char *p, size_t n)
{
	const struct warnscan_config *c = s->c;
	/* limit errors on these fixed patterns: the line is taken as no
	 * directory line (they are linear, so this needs a huge line) */
	if (pcre2_match(c->dir_enter, (PCRE2_SPTR)p, n, 0, 0, s->md, c->mctx) > 0) {
		size_t off, len;
		warnscan_group_span(s, 1, &off, &len);
		if (s->ndirs < KILN_WARNSCAN_MAX_DIRS && off != PCRE2_UNSET)
			s->dirs[s->ndirs++] = xstrndup(p + off, len);
		else
			s->dirs_over++;
		return true;
	}
	if (s->ndirs + s->dirs_over == 0)
		return false;
	if (pcre2_match(c->dir_leave, (PCRE2_SPTR)p, n, 0, 0, s->md, c->mctx) < 0)
		return false;
	if (s->dirs_over > 0)
		s->dirs_over--;
	else
		free(s->dirs[--s->ndirs]);
	return true;
}

/* One whole line (no '\n'); p[n] need not be NUL. */
static int warnscan_line(struct warnscan *s, const char *p, size_t n)
{
	if (n > 0 && p[n - 1] == '\r')
		n--;
	s->lineno++;
	/* a NUL-terminated copy: the suppression checks take the text's end
	 * from it, and a NUL byte ends the line for the patterns */
	char *line = s->scratch;
	memcpy(line, p, n);
	line[n] = '\0';
	n = strlen(line);
	if (warnscan_directory(s, line, n))
		return 0;
	int r = 0;
	for (size_t i = 0; i < s->c->npat; i++) {
		if (s->pat_off[i])
			continue;
		int m = warnscan_match(s, s->c->pat[i].code, line, n, "warning pattern", i);
		if (m < 0) {
			s->pat_off[i] = true;
			r = m;
			continue;
		}
		if (m == 0)
			continue;
		if (s->c->nsupp > 0) {
			bool hit;
			int q = warnscan_suppressed_by(s, line, &s->c->pat[i], &hit);
			if (q < 0)
				r = q;
			if (hit) {
				s->suppressed++;
				return r;
			}
		}
		s->count++;
		warnscan_store(s, line, n);
		return r;
	}
	return r;
}

static int warnscan_stream_feed(struct warnscan *s, struct warnscan_stream *st, const char *data,
				size_t len)
{
	int r = 0, q = 0;
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t n = nl ? (size_t)(nl - data) : len;
		if (st->skip) {
			st->skip = !nl;
		} else if (st->line.len == 0 && nl && n <= KILN_WARNSCAN_MAX_LINE) {
			q = warnscan_line(s, data, n); /* the common case: no copy */
		} else if (n > KILN_WARNSCAN_MAX_LINE - st->line.len) {
			/* too long: the line is what fits, the rest up to '\n' is dropped */
			size_t take = KILN_WARNSCAN_MAX_LINE - st->line.len;
			if (buf_add(&st->line, data, take) == 0)
				q = warnscan_line(s, st->line.ptr, st->line.len);
			buf_reset(&st->line);
			st->skip = !nl;
		} else {
			if (buf_add(&st->line, data, n) < 0) /* cannot happen: checked above */
				buf_reset(&st->line);
			else if (nl) {
				q = warnscan_line(s, st->line.ptr, st->line.len);
				buf_reset(&st->line);
			}
		}
		if (q < 0)
			r = q;
		n += nl ? 1 : 0;
		data += n;
		len -= n;
	}
	return r;
}

int warnscan_feed(struct warnscan *s, char stream, const char *data, size_t len)
{
	size_t i = stream == 'e' ? 1 : stream == 'h' ? 2 : 0;
	return warnscan_stream_feed(s, &s->st[i], data, len);
}

int warnscan_finish(struct warnscan *s)
{
	if (s->finished)
		return 0;
	s->finished = true;
	int r = 0;
	for (size_t i = 0; i < WARNSCAN_NSTREAMS; i++) {
		struct warnscan_stream *st = &s->st[i];
		if (st->line.len > 0) {
			int q = warnscan_line(s, st->line.ptr, st->line.len);
			if (q < 0)
				r = q;
		}
		buf_reset(&st->line);
	}
	if (s->log_cut &&
	    buf_addf(&s->log,
		     "[kiln: warnings log cut at %u bytes: %llu more warnings not shown]\n",
		     (unsigned)KILN_WARNSCAN_MAX_LOG, (unsigned long long)s->unstored) < 0)
		return KILN_ETOOBIG; /* cannot happen: room was kept for it */
	return r;
}

uint64_t warnscan_count(const struct warnscan *s)
{
	return s->count;
}

uint64_t warnscan_suppressed(const struct warnscan *s)
{
	return s->suppressed;
}

const char *warnscan_log(const struct warnscan *s, size_t *ret_len)
{
	if (ret_len)
		*ret_len = s->log.len;
	return s->log.ptr;
}

const char *warnscan_error(const struct warnscan *s)
{
	return s->error;
}

int warnscan_result(uint64_t count, long long max_warn_count, int over_result)
{
	if (max_warn_count >= 0 && count > (uint64_t)max_warn_count)
		return over_result;
	return count > 0 ? RESULTS_WARNINGS : RESULTS_SUCCESS;
}

int warnscan_extract(const char *regex, const char *text, size_t len, warnscan_extract_fn cb,
		     void *ud, char **ret_err)
{
	pcre2_general_context *g;
	pcre2_compile_context *cc;
	pcre2_match_context *mc;
	warnscan_contexts(&g, &cc, &mc);
	pcre2_code *code = NULL;
	pcre2_match_data *md = NULL;
	int r = warnscan_compile(cc, regex, PCRE2_MULTILINE, "pattern", &code, ret_err);
	if (r < 0)
		goto out;
	md = pcre2_match_data_create_from_pattern(code, g);
	assert(md);
	int rc = pcre2_match(code, (PCRE2_SPTR)text, len, 0, 0, md, mc);
	if (rc == PCRE2_ERROR_NOMATCH) {
		r = 0;
		goto out;
	}
	if (rc < 0) {
		_cleanup_free_ char *msg = warnscan_pcre_msg(rc);
		*ret_err = xasprintf("pattern: %s", msg);
		r = KILN_ETOOBIG;
		goto out;
	}
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
	uint32_t nov = pcre2_get_ovector_count(md);
	uint32_t names = 0, entry = 0;
	PCRE2_SPTR table = NULL;
	pcre2_pattern_info(code, PCRE2_INFO_NAMECOUNT, &names);
	pcre2_pattern_info(code, PCRE2_INFO_NAMEENTRYSIZE, &entry);
	pcre2_pattern_info(code, PCRE2_INFO_NAMETABLE, &table);
	if (names == 0) {
		uint32_t g1 = nov > 1 ? 1 : 0;
		if (ov[2 * g1] == PCRE2_UNSET)
			goto out; /* r == 0: group 1 took no part */
		cb(ud, NULL, text + ov[2 * g1], ov[2 * g1 + 1] - ov[2 * g1]);
		r = 1;
		goto out;
	}
	for (uint32_t i = 0; i < names; i++) {
		PCRE2_SPTR e = table + (size_t)i * entry;
		uint32_t gno = ((uint32_t)e[0] << 8) | e[1];
		if (gno >= nov || ov[2 * gno] == PCRE2_UNSET)
			continue;
		cb(ud, (const char *)e + 2, text + ov[2 * gno], ov[2 * gno + 1] - ov[2 * gno]);
		r++;
	}
out:
	pcre2_match_data_free(md);
	pcre2_code_free(code);
	pcre2_match_context_free(mc);
	pcre2_compile_context_free(cc);
	pcre2_general_context_free(g);
	return r;
}
