/*
 * Buildbot's Interpolate (interp.h): one recursive pass over the template
 * that parses and renders at once.  Modifier texts are templates of their
 * own, rendered when their branch is taken and only checked otherwise.
 * Values are written as Python's str() would, so outputs match Buildbot's.
 */
#include "common/interp.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"

#define INTERP_MSG_NAME 64 /* bytes of a name quoted in an error message */

struct interp_ctx {
	const char *tmpl; /* borrowed: the top-level template (offsets count from it) */
	const struct interp_lookup *lk;
	unsigned flags;
	struct buf out;
	char *err; /* owned: the first error's message */
};

enum interp_mod {
	INTERP_MOD_MINUS,     /* :-  value if set, else the text */
	INTERP_MOD_TILDE,     /* :~  value if set and true, else the text */
	INTERP_MOD_PLUS,      /* :+  the text if set, else "" */
	INTERP_MOD_TERN,      /* :?  yes if set, else no */
	INTERP_MOD_TERN_HASH, /* :#? yes if set and true, else no */
};

static const char *const interp_selectors[] = {
	[INTERP_PROP] = "prop",     [INTERP_SRC] = "src",       [INTERP_KW] = "kw",
	[INTERP_WORKER] = "worker", [INTERP_SECRET] = "secret",
};

static int interp_fail(struct interp_ctx *c, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int interp_fail(struct interp_ctx *c, int r, const char *fmt, ...)
{
	if (!c->err) {
		va_list ap;
		va_start(ap, fmt);
		char tmp[512];
		vsnprintf(tmp, sizeof(tmp), fmt, ap);
		va_end(ap);
		c->err = xstrdup(tmp);
	}
	return r;
}

static size_t interp_off(const struct interp_ctx *c, const char *p)
{
	return (size_t)(p - c->tmpl);
}

static int interp_out_fail(struct interp_ctx *c, int r, const char *at)
{
	if (r == KILN_ETOOBIG)
		return interp_fail(c, r, "value nested deeper than %d at offset %zu",
				   KILN_INTERP_MAX_VALUE_DEPTH, interp_off(c, at));
	return interp_fail(c, KILN_ETOOBIG, "output over %u bytes at offset %zu",
			   (unsigned)KILN_INTERP_MAX_OUT, interp_off(c, at));
}

/* A byte for a message: printable as itself, else as \xNN. */
static const char *interp_show(char ch, char tmp[8])
{
	unsigned char u = (unsigned char)ch;
	if (u >= 0x20 && u < 0x7f)
		snprintf(tmp, 8, "%c", ch);
	else
		snprintf(tmp, 8, "\\x%02x", u);
	return tmp;
}

static int interp_msg_len(size_t n)
{
	return n > INTERP_MSG_NAME ? INTERP_MSG_NAME : (int)n;
}

/* ---- Python's str() and repr() ------------------------------------------ */

static bool interp_py_unprintable(uint32_t cp)
{
	/* Python's str.isprintable() is false for Cc, Cf, Cs, Co, Zl, Zp and
	 * Zs (space aside) and unassigned code points; these are the assigned
	 * ones (unassigned code points other than U+FFFE, U+FFFF print as is). */
	static const uint32_t ranges[][2] = {
		{0x0, 0x1f},        {0x7f, 0xa0},        {0xad, 0xad},       {0x600, 0x605},
		{0x61c, 0x61c},     {0x6dd, 0x6dd},      {0x70f, 0x70f},     {0x1680, 0x1680},
		{0x180e, 0x180e},   {0x2000, 0x200f},    {0x2028, 0x202f},   {0x205f, 0x206f},
		{0x3000, 0x3000},   {0xd800, 0xf8ff},    {0xfeff, 0xfeff},   {0xfff9, 0xfffb},
		{0xfffe, 0xffff},   {0x110bd, 0x110bd},  {0x1d173, 0x1d17a}, {0xe0001, 0xe0001},
		{0xe0020, 0xe007f}, {0xf0000, 0x10ffff},
	};
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
		if (cp >= ranges[i][0] && cp <= ranges[i][1])
			return true;
	return false;
}

/* Decodes one UTF-8 sequence at s[0..n); returns its length, 0 if invalid. */
static size_t interp_utf8(const unsigned char *s, size_t n, uint32_t *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
	if (!len || len > n || s[0] > 0xf4)
		return 0;
	uint32_t v = s[0] & (0x3f >> (len - 1));
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
	if (v < least[len] || v > 0x10ffff)
		return 0;
	*cp = v;
	return len;
}

/* Python's repr() of a str: quotes chosen as Python does, escapes as it does. */
static int interp_py_repr_str(struct buf *b, const char *s, size_t n)
{
	bool sq = memchr(s, '\'', n) != NULL, dq = memchr(s, '"', n) != NULL;
	char quote = sq && !dq ? '"' : '\'';
	int r = buf_addch(b, quote);
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n && r >= 0;) {
		uint32_t cp = 0;
		size_t k = interp_utf8(u + i, n - i, &cp);
		if (!k) { /* not UTF-8 (jansson's strings are): shown as its byte */
			r = buf_addf(b, "\\x%02x", u[i]);
			i++;
			continue;
		}
		if (cp == '\\' || cp == (uint32_t)quote)
			r = buf_addf(b, "\\%c", (char)cp);
		else if (cp == '\t')
			r = buf_adds(b, "\\t");
		else if (cp == '\n')
			r = buf_adds(b, "\\n");
		else if (cp == '\r')
			r = buf_adds(b, "\\r");
		else if (!interp_py_unprintable(cp))
			r = buf_add(b, s + i, k);
		else if (cp < 0x100)
			r = buf_addf(b, "\\x%02x", (unsigned)cp);
		else if (cp < 0x10000)
			r = buf_addf(b, "\\u%04x", (unsigned)cp);
		else
			r = buf_addf(b, "\\U%08x", (unsigned)cp);
		i += k;
	}
	return r < 0 ? r : buf_addch(b, quote);
}

/* Python's repr() of a float: the shortest digits that read back the same,
 * positional when the decimal exponent is in [-4, 16), else scientific. */
static int interp_py_float(struct buf *b, double d)
{
	if (isnan(d))
		return buf_adds(b, "nan");
	if (isinf(d))
		return buf_adds(b, d > 0 ? "inf" : "-inf");
	char tmp[40];
	for (int p = 0; p < 17; p++) {
		snprintf(tmp, sizeof(tmp), "%.*e", p, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	/* tmp is [-]D[.DDD]e(+|-)XX */
	const char *s = tmp;
	bool neg = *s == '-';
	s += neg;
	char digits[24];
	size_t nd = 0;
	for (; *s && *s != 'e'; s++)
		if (*s != '.')
			digits[nd++] = *s;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	long exp10 = strtol(s + 1, NULL, 10);
	long decpt = exp10 + 1; /* digits before the point */
	int r = neg ? buf_addch(b, '-') : 0;
	if (r < 0)
		return r;
	if (decpt > -4 && decpt <= 16) {
		if (decpt <= 0) {
			r = buf_adds(b, "0.");
			for (long i = 0; r >= 0 && i < -decpt; i++)
				r = buf_addch(b, '0');
			return r < 0 ? r : buf_add(b, digits, nd);
		}
		if ((size_t)decpt >= nd) {
			r = buf_add(b, digits, nd);
			for (long i = (long)nd; r >= 0 && i < decpt; i++)
				r = buf_addch(b, '0');
			return r < 0 ? r : buf_adds(b, ".0");
		}
		r = buf_add(b, digits, (size_t)decpt);
		if (r >= 0)
			r = buf_addch(b, '.');
		return r < 0 ? r : buf_add(b, digits + decpt, nd - (size_t)decpt);
	}
	r = buf_addch(b, digits[0]);
	if (r >= 0 && nd > 1)
		r = buf_addf(b, ".%.*s", (int)(nd - 1), digits + 1);
	return r < 0 ? r : buf_addf(b, "e%c%02ld", exp10 < 0 ? '-' : '+', labs(exp10));
}

static int interp_py_repr(struct buf *b, const json_t *v, int depth, bool top)
{
	if (depth > KILN_INTERP_MAX_VALUE_DEPTH)
		return KILN_ETOOBIG;
	int r = 0;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *key;
		json_t *val;
		bool first = true;
		r = buf_addch(b, '{');
		json_object_foreach((json_t *)v, key, val)
		{
			if (r >= 0 && !first)
				r = buf_adds(b, ", ");
			first = false;
			if (r >= 0)
				r = interp_py_repr_str(b, key, strlen(key));
			if (r >= 0)
				r = buf_adds(b, ": ");
			if (r >= 0)
				r = interp_py_repr(b, val, depth + 1, false);
			if (r < 0)
				return r;
		}
		return r < 0 ? r : buf_addch(b, '}');
	}
	case JSON_ARRAY: {
		r = buf_addch(b, '[');
		for (size_t i = 0; r >= 0 && i < json_array_size(v); i++) {
			if (i)
				r = buf_adds(b, ", ");
			if (r >= 0)
				r = interp_py_repr(b, json_array_get(v, i), depth + 1, false);
		}
		return r < 0 ? r : buf_addch(b, ']');
	}
	case JSON_STRING:
		if (top)
			return buf_add(b, json_string_value(v), json_string_length(v));
		return interp_py_repr_str(b, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		return buf_addf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	case JSON_REAL:
		return interp_py_float(b, json_real_value(v));
	case JSON_TRUE:
		return buf_adds(b, "True");
	case JSON_FALSE:
		return buf_adds(b, "False");
	case JSON_NULL:
		return buf_adds(b, "None");
	}
	return 0;
}

int interp_py_str(struct buf *out, const json_t *v)
{
	return interp_py_repr(out, v, 0, true);
}

bool interp_py_truthy(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return json_object_size(v) > 0;
	case JSON_ARRAY:
		return json_array_size(v) > 0;
	case JSON_STRING:
		return json_string_length(v) > 0;
	case JSON_INTEGER:
		return json_integer_value(v) != 0;
	case JSON_REAL:
		return json_real_value(v) != 0.0;
	case JSON_TRUE:
		return true;
	case JSON_FALSE:
	case JSON_NULL:
		return false;
	}
	return false;
}

/* ---- the template ------------------------------------------------------- */

static int interp_run(struct interp_ctx *c, const char *t, size_t n, int depth, bool emit);

/* Python's \w, '.' or '-' (any byte >= 0x80 passes: \w is Unicode). */
static bool interp_ident(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char u = (unsigned char)s[i];
		if (!(u >= 0x80 || (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') ||
		      (u >= 'A' && u <= 'Z') || u == '_' || u == '.' || u == '-'))
			return false;
	}
	return true;
}

/* Splits "|yes|no" (delim = first byte) at the first delim outside
 * parentheses, as Buildbot's _splitBalancedParen. */
static int interp_split_tern(struct interp_ctx *c, const char *s, size_t n, const char *key_at,
			     const char **yes, size_t *yes_n, const char **no, size_t *no_n)
{
	char tmp[8];
	if (!n)
		return interp_fail(
			c, KILN_EPARSE,
			"ternary at offset %zu needs a delimiter and two texts (:?|yes|no)",
			interp_off(c, key_at));
	char delim = s[0];
	if (delim == '(')
		return interp_fail(c, KILN_EPARSE,
				   "ternary delimiter '(' at offset %zu is not allowed",
				   interp_off(c, s));
	int pc = 0;
	for (size_t i = 1; i < n; i++) {
		if (s[i] == '(')
			pc++;
		if (s[i] == ')' && --pc < 0)
			return interp_fail(c, KILN_EPARSE, "unbalanced ')' at offset %zu",
					   interp_off(c, s + i));
		if (pc == 0 && s[i] == delim) {
			*yes = s + 1;
			*yes_n = i - 1;
			*no = s + i + 1;
			*no_n = n - i - 1;
			return 0;
		}
	}
	return interp_fail(c, KILN_EPARSE,
			   "ternary at offset %zu has no second '%s' (want :?%s<yes>%s<no>)",
			   interp_off(c, key_at), interp_show(delim, tmp), tmp, tmp);
}

/* Appends a looked-up value (null renders ""). */
static int interp_emit_value(struct interp_ctx *c, const json_t *v, const char *at)
{
	if (json_is_null(v))
		return 0;
	int r = interp_py_str(&c->out, v);
	return r < 0 ? interp_out_fail(c, r, at) : 0;
}

/* One "%(key)s" whose key is key[0..n), the '%' at pct. */
static int interp_subst(struct interp_ctx *c, const char *key, size_t n, const char *pct, int depth,
			bool emit)
{
	size_t at = interp_off(c, pct);
	const char *colon = memchr(key, ':', n);
	if (!colon)
		return interp_fail(c, KILN_EPARSE,
				   "'%%(%.*s)s' at offset %zu has no selector (prop:, src:, kw:, "
				   "worker: or secret:)",
				   interp_msg_len(n), key, at);
	size_t sel_n = (size_t)(colon - key);
	int kind = -1;
	for (size_t i = 0; i < sizeof(interp_selectors) / sizeof(interp_selectors[0]); i++)
		if (strlen(interp_selectors[i]) == sel_n &&
		    !memcmp(interp_selectors[i], key, sel_n))
			kind = (int)i;
	if (kind < 0)
		return interp_fail(
			c, KILN_EPARSE,
			"unknown selector '%.*s' at offset %zu (prop, src, kw, worker or "
			"secret)",
			interp_msg_len(sel_n), key, at);
	const char *arg = colon + 1, *end = key + n;
	const char *a = arg, *b = NULL, *repl = NULL;
	size_t a_n, b_n = 0, repl_n = 0;
	const char *c1 = memchr(arg, ':', (size_t)(end - arg));
	a_n = c1 ? (size_t)(c1 - arg) : (size_t)(end - arg);
	if (kind == INTERP_SRC) {
		if (!c1)
			return interp_fail(c, KILN_EPARSE,
					   "'src' at offset %zu needs a codebase and an attribute "
					   "(%%(src:CODEBASE:ATTR)s)",
					   at);
		b = c1 + 1;
		const char *c2 = memchr(b, ':', (size_t)(end - b));
		b_n = c2 ? (size_t)(c2 - b) : (size_t)(end - b);
		if (c2) {
			repl = c2 + 1;
			repl_n = (size_t)(end - repl);
		}
	} else if (c1) {
		repl = c1 + 1;
		repl_n = (size_t)(end - repl);
	}
	if ((kind == INTERP_PROP || kind == INTERP_KW || kind == INTERP_SRC) &&
	    !interp_ident(a, a_n))
		return interp_fail(c, KILN_EPARSE,
				   "%s name '%.*s' at offset %zu may hold only letters, digits, "
				   "'_', '.' and '-'",
				   kind == INTERP_SRC ? "codebase" : interp_selectors[kind],
				   interp_msg_len(a_n), a, at);
	if (kind == INTERP_SRC && !interp_ident(b, b_n))
		return interp_fail(c, KILN_EPARSE,
				   "attribute '%.*s' at offset %zu may hold only letters, digits, "
				   "'_', '.' and '-'",
				   interp_msg_len(b_n), b, at);

	/* the modifier: none is ":-" with an empty text */
	enum interp_mod mod = INTERP_MOD_MINUS;
	const char *yes = "", *no = "";
	size_t yes_n = 0, no_n = 0;
	char tmp[8];
	if (repl) {
		if (!repl_n)
			return interp_fail(c, KILN_EPARSE,
					   "empty modifier at offset %zu (want -, ~, +, ? or #?)",
					   interp_off(c, repl));
		int r = 0;
		switch (repl[0]) {
		case '-':
		case '~':
			mod = repl[0] == '-' ? INTERP_MOD_MINUS : INTERP_MOD_TILDE;
			no = repl + 1;
			no_n = repl_n - 1;
			break;
		case '+':
			mod = INTERP_MOD_PLUS;
			yes = repl + 1;
			yes_n = repl_n - 1;
			break;
		case '?':
			mod = INTERP_MOD_TERN;
			r = interp_split_tern(c, repl + 1, repl_n - 1, pct, &yes, &yes_n, &no,
					      &no_n);
			break;
		case '#':
			if (repl_n >= 2 && repl[1] == '?') {
				mod = INTERP_MOD_TERN_HASH;
				r = interp_split_tern(c, repl + 2, repl_n - 2, pct, &yes, &yes_n,
						      &no, &no_n);
				break;
			}
			/* fall through */
		default:
			return interp_fail(
				c, KILN_EPARSE,
				"invalid modifier '%s' at offset %zu (want -, ~, +, ? or #?)",
				interp_show(repl[0], tmp), interp_off(c, repl));
		}
		if (r < 0)
			return r;
	}

	if (!emit) { /* check every text */
		int r = interp_run(c, yes, yes_n, depth + 1, false);
		return r < 0 ? r : interp_run(c, no, no_n, depth + 1, false);
	}

	/* look the value up (Buildbot never renders a secret under :+ or :?) */
	json_t *v = NULL;
	int found = 0;
	bool secret_unread =
		kind == INTERP_SECRET && (mod == INTERP_MOD_PLUS || mod == INTERP_MOD_TERN);
	char *na = xstrndup(a, a_n), *nb = b ? xstrndup(b, b_n) : NULL;
	if (secret_unread) {
		found = 1;
	} else if (c->lk) {
		found = c->lk->get(c->lk->ud, (enum interp_kind)kind, na, nb, &v);
		if (found < 0)
			interp_fail(c, found, "cannot look up %s '%.*s' at offset %zu: %s",
				    interp_selectors[kind], interp_msg_len(a_n), a, at,
				    err_str(found));
		else if (found != INTERP_FOUND)
			v = NULL;
	}
	free(na);
	free(nb);
	if (found < 0)
		return found;
	int r = 0;
	if (!found && kind == INTERP_SECRET && c->lk)
		r = interp_fail(c, KILN_ENOTFOUND, "secret '%.*s' at offset %zu is not found",
				interp_msg_len(a_n), a, at);
	else if (!found && !repl && c->lk && (c->flags & INTERP_STRICT))
		r = interp_fail(c, KILN_ENOTFOUND,
				"%s '%.*s%s%.*s' at offset %zu is not set (a default: "
				"'%%(%.*s:-)s')",
				kind == INTERP_PROP ? "property" : interp_selectors[kind],
				interp_msg_len(a_n), a, b ? ":" : "", b ? interp_msg_len(b_n) : 0,
				b ? b : "", at, interp_msg_len(n), key);
	if (r < 0) {
		json_decref(v);
		return r;
	}
	bool truthy = v && interp_py_truthy(v);
	/* which text is rendered (NULL: the value itself), which only checked */
	const char *take = NULL, *skip = NULL;
	size_t take_n = 0, skip_n = 0;
	switch (mod) {
	case INTERP_MOD_MINUS:
	case INTERP_MOD_TILDE:
		if (found && (mod == INTERP_MOD_MINUS || truthy)) {
			skip = no;
			skip_n = no_n;
		} else {
			take = no;
			take_n = no_n;
		}
		break;
	case INTERP_MOD_PLUS:
	case INTERP_MOD_TERN:
	case INTERP_MOD_TERN_HASH: {
		bool yes_taken = mod == INTERP_MOD_TERN_HASH ? truthy : found;
		take = yes_taken ? yes : no;
		take_n = yes_taken ? yes_n : no_n;
		skip = yes_taken ? no : yes;
		skip_n = yes_taken ? no_n : yes_n;
		break;
	}
	}
	if (take)
		r = interp_run(c, take, take_n, depth + 1, true);
	else
		r = interp_emit_value(c, v, pct);
	json_decref(v);
	if (r >= 0 && skip)
		r = interp_run(c, skip, skip_n, depth + 1, false);
	return r;
}

/* Renders (emit) or only checks t[0..n), a part of c->tmpl. */
static int interp_run(struct interp_ctx *c, const char *t, size_t n, int depth, bool emit)
{
	if (depth > KILN_INTERP_MAX_DEPTH && n)
		return interp_fail(c, KILN_ETOOBIG, "templates nested deeper than %d at offset %zu",
				   KILN_INTERP_MAX_DEPTH, interp_off(c, t));
	char tmp[8];
	size_t i = 0;
	while (i < n) {
		const char *pct = memchr(t + i, '%', n - i);
		size_t lit_end = pct ? (size_t)(pct - t) : n;
		if (emit && lit_end > i && buf_add(&c->out, t + i, lit_end - i) < 0)
			return interp_out_fail(c, -E2BIG, t + i);
		if (!pct)
			break;
		size_t at = lit_end;
		if (at + 1 >= n)
			return interp_fail(
				c, KILN_EPARSE,
				"lone '%%' at offset %zu (a literal '%%' is written '%%%%')",
				interp_off(c, pct));
		if (t[at + 1] == '%') {
			if (emit && buf_addch(&c->out, '%') < 0)
				return interp_out_fail(c, -E2BIG, pct);
			i = at + 2;
			continue;
		}
		if (t[at + 1] != '(')
			return interp_fail(
				c, KILN_EPARSE,
				"'%%%s' at offset %zu: a '%%' starts '%%(selector:name)s' "
				"or is written '%%%%'",
				interp_show(t[at + 1], tmp), interp_off(c, pct));
		size_t k = at + 2;
		int pc = 1;
		for (; k < n; k++) {
			if (t[k] == '(')
				pc++;
			else if (t[k] == ')' && --pc == 0)
				break;
		}
		if (k >= n)
			return interp_fail(c, KILN_EPARSE, "unterminated '%%(' at offset %zu",
					   interp_off(c, pct));
		if (k + 1 >= n)
			return interp_fail(c, KILN_EPARSE,
					   "'%%(...)' at offset %zu lacks its conversion 's'",
					   interp_off(c, pct));
		if (t[k + 1] != 's')
			return interp_fail(c, KILN_EPARSE,
					   "unsupported conversion '%s' at offset %zu (only 's')",
					   interp_show(t[k + 1], tmp), interp_off(c, t + k + 1));
		int r = interp_subst(c, t + at + 2, k - at - 2, pct, depth, emit);
		if (r < 0)
			return r;
		i = k + 2;
	}
	return 0;
}

static void interp_ctx_init(struct interp_ctx *c, const struct interp_lookup *lk, unsigned flags)
{
	*c = (struct interp_ctx){.lk = lk, .flags = flags};
	buf_init(&c->out, KILN_INTERP_MAX_OUT);
}

static int interp_ctx_run(struct interp_ctx *c, const char *tmpl, size_t len, bool emit)
{
	c->tmpl = tmpl;
	return interp_run(c, tmpl, len, 0, emit);
}

int interp_render(const char *tmpl, size_t len, const struct interp_lookup *lk, unsigned flags,
		  char **ret, size_t *ret_len, char **ret_err)
{
	struct interp_ctx c;
	interp_ctx_init(&c, lk, flags);
	int r = interp_ctx_run(&c, tmpl, len, lk != NULL);
	if (r < 0) {
		buf_release(&c.out);
		if (ret_err)
			*ret_err = c.err ? c.err : xstrdup(err_str(r));
		else
			free(c.err);
		return r;
	}
	*ret = buf_detach(&c.out, ret_len);
	return 0;
}

int interp_check(const char *tmpl, size_t len, char **ret_err)
{
	char *out = NULL;
	int r = interp_render(tmpl, len, NULL, 0, &out, NULL, ret_err);
	free(out);
	return r;
}

int interp_render_strv(const char *const *tmpls, size_t n, const struct interp_lookup *lk,
		       unsigned flags, char ***ret_v, char **ret_err)
{
	struct interp_ctx c;
	interp_ctx_init(&c, lk, flags);
	size_t *ends = xmalloc(xmul(n + 1, sizeof(*ends)));
	int r = 0;
	size_t i;
	for (i = 0; i < n && r >= 0; i++) {
		r = interp_ctx_run(&c, tmpls[i], strlen(tmpls[i]), lk != NULL);
		ends[i] = c.out.len;
	}
	if (r < 0) {
		if (ret_err) {
			const char *msg = c.err ? c.err : err_str(r);
			*ret_err = xasprintf("element %zu: %s", i - 1, msg);
		}
		free(c.err);
		free(ends);
		buf_release(&c.out);
		return r;
	}
	char **v = xcalloc(n + 1, sizeof(*v));
	for (i = 0; i < n; i++) {
		size_t from = i ? ends[i - 1] : 0;
		v[i] = xmemdup(c.out.ptr + from, ends[i] - from + 1);
		v[i][ends[i] - from] = '\0';
	}
	free(ends);
	buf_release(&c.out);
	*ret_v = v;
	return 0;
}

void interp_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}
