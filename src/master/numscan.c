/*
 * numbers = { NAME = "regex" } over a step's stdout, and the text of a
 * number (numscan.h).  Used by steps/step-numbers.c; fuzzed by
 * tests/fuzz/fuzz-numscan.c.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "master/numscan.h"

struct numscan_re {
	pcre2_code *code; /* owned */
	bool off;         /* hit a PCRE2 limit: skipped from there */
	bool found;
	bool cut; /* the value found was longer than the cap */
	size_t vlen;
	char value[KILN_NUMSCAN_MAX_VALUE];
};

struct numscan {
	pcre2_general_context *gctx; /* owned: allocations abort on OOM (xalloc) */
	pcre2_match_context *mctx;   /* owned: the limits */
	pcre2_match_data *md;        /* owned */
	struct numscan_re *re;       /* owned */
	size_t nre;
	char line[KILN_NUMSCAN_MAX_LINE]; /* the partial line */
	size_t len;
	bool skip; /* the line was cut: bytes up to its '\n' are dropped */
	unsigned long long lineno;
	char *error; /* owned: the first limit error, or NULL */
};

static void *numscan_malloc(PCRE2_SIZE n, void *ud)
{
	(void)ud;
	return xmalloc(n);
}

static void numscan_mfree(void *p, void *ud)
{
	(void)ud;
	free(p);
}

void numscan_free(struct numscan *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nre; i++)
		pcre2_code_free(s->re[i].code);
	free(s->re);
	pcre2_match_data_free(s->md);
	pcre2_match_context_free(s->mctx);
	pcre2_general_context_free(s->gctx);
	free(s->error);
	free(s);
}

int numscan_new(const char *const *regexes, size_t n, struct numscan **ret, char **ret_err)
{
	struct numscan *s = xcalloc(1, sizeof(*s));
	s->gctx = pcre2_general_context_create(numscan_malloc, numscan_mfree, NULL);
	s->mctx = s->gctx ? pcre2_match_context_create(s->gctx) : NULL;
	pcre2_compile_context *cc = s->gctx ? pcre2_compile_context_create(s->gctx) : NULL;
	if (!s->mctx || !cc)
		abort(); /* the allocator aborts rather than fail */
	pcre2_set_max_pattern_length(cc, KILN_WARNSCAN_MAX_PATTERN_LEN);
	pcre2_set_match_limit(s->mctx, KILN_WARNSCAN_MATCH_LIMIT);
	pcre2_set_depth_limit(s->mctx, KILN_WARNSCAN_DEPTH_LIMIT);
	pcre2_set_heap_limit(s->mctx, KILN_WARNSCAN_HEAP_LIMIT_KIB);
	s->re = xcalloc(n ? n : 1, sizeof(*s->re));
	for (size_t i = 0; i < n; i++) {
		int ec;
		PCRE2_SIZE off;
		pcre2_code *c = pcre2_compile((PCRE2_SPTR)regexes[i], strlen(regexes[i]),
					      PCRE2_NEVER_UTF, &ec, &off, cc);
		uint32_t groups = 0;
		if (c)
			pcre2_pattern_info(c, PCRE2_INFO_CAPTURECOUNT, &groups);
		if (!c || groups < 1) {
			PCRE2_UCHAR msg[160] = "it has no capture group";
			if (!c && pcre2_get_error_message(ec, msg, sizeof(msg)) < 0)
				snprintf((char *)msg, sizeof(msg), "invalid");
			*ret_err = c ? xasprintf("regex %zu: %s", i + 1, (const char *)msg)
				     : xasprintf("regex %zu: %s at offset %zu", i + 1,
						 (const char *)msg, (size_t)off);
			pcre2_code_free(c);
			pcre2_compile_context_free(cc);
			numscan_free(s);
			return KILN_ECONFIG;
		}
		/* without JIT the interpreter runs it, under the same limits */
		(void)pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);
		s->re[s->nre++].code = c;
	}
	pcre2_compile_context_free(cc);
	s->md = pcre2_match_data_create(16, s->gctx);
	if (!s->md)
		abort();
	*ret = s;
	return 0;
}

/* Every regex over the line held. */
static void numscan_line(struct numscan *s)
{
	size_t len = s->len;
	s->len = 0;
	s->lineno++;
	if (len && s->line[len - 1] == '\r')
		len--;
	for (size_t i = 0; i < s->nre; i++) {
		struct numscan_re *r = &s->re[i];
		if (r->off)
			continue;
		int rc = pcre2_match(r->code, (PCRE2_SPTR)s->line, len, 0, 0, s->md, s->mctx);
		if (rc == PCRE2_ERROR_NOMATCH)
			continue;
		if (rc < 0) {
			r->off = true;
			if (!s->error) {
				PCRE2_UCHAR msg[160];
				if (pcre2_get_error_message(rc, msg, sizeof(msg)) < 0)
					snprintf((char *)msg, sizeof(msg), "match error");
				s->error = xasprintf("regex %zu: %s on line %llu, regex skipped "
						     "from there",
						     i + 1, (const char *)msg, s->lineno);
			}
			continue;
		}
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
		if (rc < 2 || ov[2] == PCRE2_UNSET)
			continue; /* group 1 did not take part */
		size_t vlen = ov[3] - ov[2];
		r->found = true;
		r->cut = vlen > sizeof(r->value);
		r->vlen = r->cut ? 0 : vlen;
		if (!r->cut)
			memcpy(r->value, s->line + ov[2], vlen);
	}
}

void numscan_feed(struct numscan *s, const char *data, size_t len)
{
	const char *p = data, *end = data + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);
		if (!s->skip) {
			size_t room = sizeof(s->line) - s->len;
			size_t take = n < room ? n : room;
			memcpy(s->line + s->len, p, take);
			s->len += take;
			if (take < n) {
				/* the line is cut: its first part is scanned, the rest dropped */
				numscan_line(s);
				s->skip = true;
			}
		}
		if (!nl)
			break;
		if (s->skip)
			s->skip = false;
		else
			numscan_line(s);
		p = nl + 1;
	}
}

void numscan_finish(struct numscan *s)
{
	if (s->len && !s->skip)
		numscan_line(s);
	s->len = 0;
	s->skip = false;
}

int numscan_value(const struct numscan *s, size_t i, const char **ret, size_t *ret_len)
{
	if (i >= s->nre || !s->re[i].found)
		return 0;
	if (s->re[i].cut)
		return KILN_ETOOBIG;
	*ret = s->re[i].value;
	*ret_len = s->re[i].vlen;
	return 1;
}

const char *numscan_error(const struct numscan *s)
{
	return s->error;
}

int numscan_parse(const char *text, size_t len, double *ret)
{
	while (len && strchr(" \t\r\n\v\f", text[0]) && text[0])
		text++, len--;
	while (len && strchr(" \t\r\n\v\f", text[len - 1]) && text[len - 1])
		len--;
	/* sign, digits, '.', digits, exponent: nothing else reaches strtod */
	size_t i = 0, digits = 0;
	if (i < len && (text[i] == '+' || text[i] == '-'))
		i++;
	while (i < len && text[i] >= '0' && text[i] <= '9')
		i++, digits++;
	if (i < len && text[i] == '.') {
		i++;
		while (i < len && text[i] >= '0' && text[i] <= '9')
			i++, digits++;
	}
	if (!digits)
		return -EINVAL;
	if (i < len && (text[i] == 'e' || text[i] == 'E')) {
		i++;
		if (i < len && (text[i] == '+' || text[i] == '-'))
			i++;
		size_t exp = 0;
		while (i < len && text[i] >= '0' && text[i] <= '9')
			i++, exp++;
		if (!exp)
			return -EINVAL;
	}
	if (i != len || len > 400)
		return -EINVAL;
	char buf[401];
	memcpy(buf, text, len);
	buf[len] = '\0';
	errno = 0;
	double v = strtod(buf, NULL);
	if (!isfinite(v) || (errno == ERANGE && fabs(v) > 1.0))
		return -EINVAL;
	*ret = v;
	return 0;
}
