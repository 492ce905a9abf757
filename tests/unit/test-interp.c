/*
 * Unit tests for src/master/interp.c: every Interpolate form and modifier,
 * Python's str() of values, syntax errors with their offsets, missing
 * values (Buildbot's "" and INTERP_STRICT), secrets, lists, and the caps.
 * The RENDERED table's outputs are what Buildbot 3.7's util.Interpolate
 * gives for the same templates and FIXTURE (captured once with Debian's
 * buildbot 3.7.0 package; the test itself needs no Buildbot).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "common/interp.h"
#include "tap.h"

/* clang-format off */
static const char FIXTURE[] = "{\"prop\": {\"s\": \"text\", \"e\": \"\", \"z\": 0, \"one\": 1, \"neg\": -42, \"f\": 1.5, \"fint\": 2.0, \"big\": 1e+16, \"small\": 1e-05, \"tiny\": 0.0001, \"t\": true, \"fa\": false, \"n\": null, \"l\": [1, \"a\", null, true, 2.5, [], {}], \"d\": {\"k\": \"v\", \"q\": \"it's\", \"b\": [false]}, \"el\": [], \"ed\": {}, \"u\": \"h\\u00e9 \\u200b\", \"q2\": \"a'b\\\"c\\\\\\n\\t\\u0001\", \"dq\": \"say \\\"hi\\\"\", \"sq\": [\"it's\"], \"nested.name-1\": \"ok\", \"pct\": \"100%\", \"third\": 0.3333333333333333, \"negz\": -0.0, \"huge\": 1.7976931348623157e+308, \"e15\": 123456789012345.6, \"lu\": [\"h\\u00e9 \\u200b\\u00a0\\ud83d\\ude00\\u007f\"], \"lq2\": [\"a'b\\\"c\\\\\\n\\t\\u0001\"], \"ldq\": [\"say \\\"hi\\\"\"]}, \"src\": {\"\": {\"revision\": \"abc123\", \"branch\": \"main\", \"repository\": \"r\"}, \"lib\": {\"revision\": \"def456\", \"branch\": null}}, \"worker\": {\"os\": \"linux\", \"cores\": 2}, \"kw\": {\"k\": \"kwval\", \"kz\": 0}}";
static const struct { const char *in, *out; } RENDERED[] = {
	{"plain text",
	 "plain text"},
	{"%(prop:s)s",
	 "text"},
	{"[%(prop:missing)s]",
	 "[]"},
	{"%(prop:e)s|%(prop:z)s|%(prop:one)s|%(prop:neg)s",
	 "|0|1|-42"},
	{"%(prop:f)s %(prop:fint)s %(prop:big)s %(prop:small)s %(prop:tiny)s %(prop:third)s %(prop:negz)s %(prop:huge)s %(prop:e15)s",
	 "1.5 2.0 1e+16 1e-05 0.0001 0.3333333333333333 -0.0 1.7976931348623157e+308 123456789012345.6"},
	{"%(prop:t)s %(prop:fa)s [%(prop:n)s]",
	 "True False []"},
	{"%(prop:l)s",
	 "[1, 'a', None, True, 2.5, [], {}]"},
	{"%(prop:d)s",
	 "{'k': 'v', 'q': \"it's\", 'b': [False]}"},
	{"%(prop:el)s %(prop:ed)s",
	 "[] {}"},
	{"%(prop:u)s|%(prop:lu)s",
	 "h\303\251 \342\200\213|['h\303\251 \\u200b\\xa0\360\237\230\200\\x7f']"},
	{"%(prop:q2)s|%(prop:lq2)s",
	 "a'b\"c\\\n\t\001|['a\\'b\"c\\\\\\n\\t\\x01']"},
	{"%(prop:dq)s|%(prop:ldq)s",
	 "say \"hi\"|['say \"hi\"']"},
	{"%(prop:sq)s",
	 "[\"it's\"]"},
	{"%(prop:nested.name-1)s",
	 "ok"},
	{"100%% done, %(prop:pct)s",
	 "100% done, 100%"},
	{"%%(prop:s)s",
	 "%(prop:s)s"},
	{"%(prop:s:-dflt)s %(prop:missing:-dflt)s %(prop:e:-dflt)s %(prop:n:-dflt)s %(prop:z:-dflt)s",
	 "text dflt   0"},
	{"%(prop:s:~dflt)s %(prop:missing:~dflt)s %(prop:e:~dflt)s %(prop:n:~dflt)s %(prop:z:~dflt)s %(prop:fa:~dflt)s %(prop:el:~dflt)s %(prop:ed:~dflt)s %(prop:f:~dflt)s",
	 "text dflt dflt dflt dflt dflt dflt dflt 1.5"},
	{"%(prop:s:+yes)s|%(prop:missing:+yes)s|%(prop:e:+yes)s|%(prop:n:+yes)s",
	 "yes||yes|yes"},
	{"%(prop:s:?|yes|no)s %(prop:missing:?|yes|no)s %(prop:e:?|yes|no)s %(prop:fa:?|yes|no)s",
	 "yes no yes yes"},
	{"%(prop:s:#?|yes|no)s %(prop:missing:#?|yes|no)s %(prop:e:#?|yes|no)s %(prop:fa:#?|yes|no)s %(prop:z:#?|yes|no)s %(prop:t:#?|yes|no)s",
	 "yes no no no no yes"},
	{"%(prop:s:?/yes/no)s %(prop:s:?:a:b)s %(prop:missing:?:a:b)s",
	 "yes a b"},
	{"%(prop:s:?|a|b|c)s %(prop:missing:?|a|b|c)s",
	 "a b|c"},
	{"%(prop:missing:?|(a|b)|c)s %(prop:s:?|(a|b)|c)s",
	 "c (a|b)"},
	{"%(prop:missing:-%(prop:s)s)s",
	 "text"},
	{"%(prop:missing:-%(prop:missing2:-%(prop:one)s!)s)s",
	 "1!"},
	{"%(prop:s:?|%(prop:one)s|%(prop:f)s)s",
	 "1"},
	{"%(prop:missing:-a:b:c)s",
	 "a:b:c"},
	{"%(prop:missing:-100%%)s",
	 "100%"},
	{"%(prop:missing:-)s.",
	 "."},
	{"%(kw:k)s %(kw:kz:~zero)s %(kw:nokw:-none)s",
	 "kwval zero none"},
	{"%(worker:os)s %(worker:cores)s %(worker:none:-x)s",
	 "linux 2 x"},
	{"%(src::revision)s %(src::branch)s %(src:lib:revision)s [%(src:lib:branch)s] %(src:lib:branch:-nb)s %(src:x:revision:-nocb)s %(src::nope:-na)s",
	 "abc123 main def456 []  nocb na"},
	{"%(src:lib:revision:?|has|hasnt)s",
	 "has"},
	{"%(prop:)s|",
	 "|"},
	{"%(prop:s)s%(prop:s)s",
	 "texttext"},
	{"%(worker:a b:-ok)s",
	 "ok"},
};
/* clang-format on */

struct fixture {
	json_t *root;
	const char *secret; /* the value of secret 'tok', NULL: no such secret */
	int calls, secret_calls;
	int fail; /* get() returns this when non-zero */
};

static int fx_get(void *ud, enum interp_kind kind, const char *a, const char *b, json_t **ret)
{
	struct fixture *f = ud;
	f->calls++;
	if (f->fail)
		return f->fail;
	json_t *v = NULL;
	switch (kind) {
	case INTERP_PROP:
		v = json_object_get(json_object_get(f->root, "prop"), a);
		break;
	case INTERP_SRC:
		if (!b)
			TAP_FAIL("src lookup without attribute");
		v = json_object_get(json_object_get(json_object_get(f->root, "src"), a), b);
		break;
	case INTERP_KW:
		v = json_object_get(json_object_get(f->root, "kw"), a);
		break;
	case INTERP_WORKER:
		v = json_object_get(json_object_get(f->root, "worker"), a);
		break;
	case INTERP_SECRET:
		f->secret_calls++;
		if (f->secret && !strcmp(a, "tok"))
			v = json_string(f->secret);
		else
			return INTERP_MISSING;
		*ret = v;
		return INTERP_FOUND;
	}
	if (!v)
		return INTERP_MISSING;
	*ret = json_incref(v);
	return INTERP_FOUND;
}

static void fx_init(struct fixture *f)
{
	*f = (struct fixture){0};
	json_error_t e;
	f->root = json_loads(FIXTURE, 0, &e);
	if (!f->root)
		TAP_FAIL("fixture: %s", e.text);
}

/* Renders t; returns the output (or NULL, error in *err). */
static char *render(struct fixture *f, const char *t, unsigned flags, int *code, char **err)
{
	struct interp_lookup lk = {fx_get, f};
	char *out = NULL;
	*err = NULL;
	*code = interp_render(t, strlen(t), &lk, flags, &out, NULL, err);
	return out;
}

TEST(matches_buildbot)
{
	struct fixture f;
	fx_init(&f);
	for (size_t i = 0; i < sizeof(RENDERED) / sizeof(RENDERED[0]); i++) {
		int code;
		char *err, *out = render(&f, RENDERED[i].in, 0, &code, &err);
		if (code < 0) {
			TAP_FAIL("'%s': error %d '%s'", RENDERED[i].in, code, err);
			free(err);
			continue;
		}
		if (strcmp(out, RENDERED[i].out))
			TAP_FAIL("'%s': got '%s', want '%s'", RENDERED[i].in, out, RENDERED[i].out);
		/* and the syntax check accepts it */
		CHECK_INT(interp_check(RENDERED[i].in, strlen(RENDERED[i].in), NULL), 0);
		free(out);
	}
	json_decref(f.root);
}

TEST(errors_name_the_position)
{
	static const struct {
		const char *in;
		int code;
		const char *msg;
	} cases[] = {
		{"%(prop:x", KILN_EPARSE, "unterminated '%(' at offset 0"},
		{"ab %(prop:s:-%(prop:x)", KILN_EPARSE, "unterminated '%(' at offset 3"},
		{"%(prop:x)", KILN_EPARSE, "'%(...)' at offset 0 lacks its conversion 's'"},
		{"x%(prop:x)d", KILN_EPARSE, "unsupported conversion 'd' at offset 10 (only 's')"},
		{"%(prop:x)10s", KILN_EPARSE, "unsupported conversion '1' at offset 9"},
		{"%s", KILN_EPARSE, "'%s' at offset 0: a '%' starts"},
		{"50%", KILN_EPARSE, "lone '%' at offset 2"},
		{"%(nosel)s", KILN_EPARSE, "'%(nosel)s' at offset 0 has no selector"},
		{"  %(bogus:x)s", KILN_EPARSE, "unknown selector 'bogus' at offset 2"},
		{"%(prop:a b)s", KILN_EPARSE, "prop name 'a b' at offset 0 may hold only"},
		{"%(src:lib)s", KILN_EPARSE, "'src' at offset 0 needs a codebase and an attribute"},
		{"%(src:l b:revision)s", KILN_EPARSE, "codebase name 'l b' at offset 0"},
		{"%(src:lib:re/v)s", KILN_EPARSE, "attribute 're/v' at offset 0"},
		{"%(kw:a+b)s", KILN_EPARSE, "kw name 'a+b' at offset 0"},
		{"%(prop:x:)s", KILN_EPARSE, "empty modifier at offset 9"},
		{"%(prop:x:*)s", KILN_EPARSE, "invalid modifier '*' at offset 9"},
		{"%(prop:x:#x)s", KILN_EPARSE, "invalid modifier '#' at offset 9"},
		{"%(prop:x:?)s", KILN_EPARSE, "ternary at offset 0 needs a delimiter"},
		{"%(prop:x:?|ab)s", KILN_EPARSE, "ternary at offset 0 has no second '|'"},
		{"%(prop:x:?(a)(b))s", KILN_EPARSE, "ternary delimiter '(' at offset 10"},
		{"%(prop:x:?|a)|b)s", KILN_EPARSE, "unsupported conversion '|' at offset 13"},
		{"%(prop:x:?|a))|b)s", KILN_EPARSE, "unsupported conversion ')' at offset 13"},
		{"%(prop:x:?|(a|b))s", KILN_EPARSE, "no second '|'"},
		{"%(worker:x(:?|a)b|c)s", KILN_EPARSE, "unbalanced ')' at offset 15"},
		{"%(prop:x:-%(bad)s)s", KILN_EPARSE, "'%(bad)s' at offset 10 has no selector"},
		{"%(prop:x:-a)b)s", KILN_EPARSE, "unsupported conversion 'b' at offset 12"},
		{"%(prop:x:-\001)s%\001", KILN_EPARSE, "'%\\x01' at offset 13"},
		/* a syntax error in a branch that is not taken is still one */
		{"%(prop:s:-%(prop:x)d)s", KILN_EPARSE, "unsupported conversion 'd' at offset 19"},
		{"%(prop:missing:?|ok|%(x)s)s", KILN_EPARSE,
		 "'%(x)s' at offset 20 has no selector"},
	};
	struct fixture f;
	fx_init(&f);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int code;
		char *err, *out = render(&f, cases[i].in, 0, &code, &err);
		if (code != cases[i].code || !err || !strstr(err, cases[i].msg))
			TAP_FAIL("'%s': got %d '%s', want %d '%s'", cases[i].in, code,
				 err ? err : "(null)", cases[i].code, cases[i].msg);
		if (out)
			TAP_FAIL("'%s': output on error", cases[i].in);
		free(err);
		err = NULL;
		CHECK_INT(interp_check(cases[i].in, strlen(cases[i].in), &err), cases[i].code);
		CHECK(err && strstr(err, cases[i].msg));
		free(err);
	}
	json_decref(f.root);
}

TEST(strict_missing)
{
	struct fixture f;
	fx_init(&f);
	int code;
	char *err, *out = render(&f, "make %(prop:missing)s", INTERP_STRICT, &code, &err);
	CHECK_INT(code, KILN_ENOTFOUND);
	CHECK(out == NULL);
	CHECK_STR(err, "property 'missing' at offset 5 is not set (a default: "
		       "'%(prop:missing:-)s')");
	free(err);
	out = render(&f, "%(src:lib:nope)s", INTERP_STRICT, &code, &err);
	CHECK_INT(code, KILN_ENOTFOUND);
	CHECK(err && strstr(err, "src 'lib:nope' at offset 0 is not set"));
	free(err);
	/* set values, a null one, and any modifier render as without the flag */
	static const struct {
		const char *in, *out;
	} ok[] = {
		{"%(prop:s)s [%(prop:n)s]", "text []"},
		{"%(prop:missing:-)s|%(prop:missing:~d)s|%(prop:missing:+y)s", "|d|"},
		{"%(prop:missing:?|y|n)s %(prop:missing:#?|y|n)s", "n n"},
		{"%(prop:s:-%(prop:missing)s)s", "text"}, /* a branch not taken */
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		out = render(&f, ok[i].in, INTERP_STRICT, &code, &err);
		CHECK_INT(code, 0);
		if (code == 0)
			CHECK_STR(out, ok[i].out);
		free(out);
	}
	/* a missing value inside a default that is taken is an error too */
	out = render(&f, "%(prop:gone:-%(prop:missing)s)s", INTERP_STRICT, &code, &err);
	CHECK_INT(code, KILN_ENOTFOUND);
	CHECK(err && strstr(err, "property 'missing' at offset 13"));
	free(err);
	json_decref(f.root);
}

TEST(secrets)
{
	struct fixture f;
	fx_init(&f);
	f.secret = "p4ss";
	int code;
	char *err, *out = render(&f, "token=%(secret:tok)s", 0, &code, &err);
	CHECK_INT(code, 0);
	CHECK_STR(out, "token=p4ss");
	CHECK_INT(f.secret_calls, 1);
	free(out);
	/* a missing secret fails whatever the modifier, as in Buildbot */
	static const char *const bad[] = {"%(secret:nope)s", "%(secret:nope:-dflt)s",
					  "%(secret:nope:~dflt)s", "%(secret:nope:#?|a|b)s"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		out = render(&f, bad[i], 0, &code, &err);
		CHECK_INT(code, KILN_ENOTFOUND);
		CHECK(err && strstr(err, "secret 'nope' at offset 0 is not found"));
		free(err);
	}
	/* ... except :+ and :?, which never read the secret (Buildbot's _Lookup) */
	f.secret_calls = 0;
	out = render(&f, "%(secret:nope:+set)s %(secret:nope:?|y|n)s", 0, &code, &err);
	CHECK_INT(code, 0);
	CHECK_STR(out, "set y");
	CHECK_INT(f.secret_calls, 0);
	free(out);
	/* secret names are not checked as identifiers */
	out = render(&f, "%(secret:a b/c:-x)s", 0, &code, &err);
	CHECK_INT(code, KILN_ENOTFOUND);
	CHECK(err && strstr(err, "secret 'a b/c'"));
	free(err);
	/* an empty secret is false for :~ */
	f.secret = "";
	out = render(&f, "[%(secret:tok:~none)s]", 0, &code, &err);
	CHECK_INT(code, 0);
	CHECK_STR(out, "[none]");
	free(out);
	/* the syntax check looks nothing up */
	f.calls = 0;
	CHECK_INT(interp_check("%(secret:nope)s %(prop:s)s", 26, NULL), 0);
	CHECK_INT(f.calls, 0);
	json_decref(f.root);
}

TEST(only_taken_branches_are_looked_up)
{
	struct fixture f;
	fx_init(&f);
	int code;
	char *err, *out = render(&f, "%(prop:s:-%(prop:a)s)s %(prop:s:?|%(prop:b)s|%(prop:c)s)s", 0,
				 &code, &err);
	CHECK_INT(code, 0);
	CHECK_STR(out, "text ");
	CHECK_INT(f.calls, 3); /* s, s, b */
	free(out);
	json_decref(f.root);
}

TEST(lookup_errors_pass_through)
{
	struct fixture f;
	fx_init(&f);
	f.fail = -EIO;
	int code;
	char *err, *out = render(&f, "ab%(prop:s)s", 0, &code, &err);
	CHECK_INT(code, -EIO);
	CHECK(out == NULL);
	CHECK(err && strstr(err, "cannot look up prop 's' at offset 2"));
	free(err);
	/* no error text wanted */
	struct interp_lookup lk = {fx_get, &f};
	CHECK_INT(interp_render("%(prop:s)s", 10, &lk, 0, &out, NULL, NULL), -EIO);
	json_decref(f.root);
}

TEST(python_str_of_values)
{
	static const struct {
		const char *json, *str;
	} cases[] = {
		{"\"plain\"", "plain"},
		{"[\"a'b\", \"a\\\"b\", \"a'\\\"b\"]", "[\"a'b\", 'a\"b', 'a\\'\"b']"},
		{"[\"\\u0000\\u001b\\u0080\\u00ad\\u2028\\ufeff\"]",
		 "['\\x00\\x1b\\x80\\xad\\u2028\\ufeff']"},
		{"[\"\\udb80\\udc00\"]", "['\\U000f0000']"}, /* private use: not printable */
		{"[0.1, 100.0, 1e22, -1.5e-7, 5e-324, 1234567890123456.0]",
		 "[0.1, 100.0, 1e+22, -1.5e-07, 5e-324, 1234567890123456.0]"},
		{"[9223372036854775807, -9223372036854775808]",
		 "[9223372036854775807, -9223372036854775808]"},
		{"{\"z\": 1, \"a\": {\"\": null}}", "{'z': 1, 'a': {'': None}}"},
		{"null", "None"},
		{"false", "False"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *v = json_loads(cases[i].json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		if (!v) {
			TAP_FAIL("bad json %s", cases[i].json);
			continue;
		}
		struct buf b;
		buf_init(&b, 4096);
		CHECK_INT(interp_py_str(&b, v), 0);
		CHECK_STR(b.ptr, cases[i].str);
		buf_release(&b);
		json_decref(v);
	}
	/* a cap passed is an error, not a cut value */
	json_t *v = json_loads("[\"aaaaaaaaaa\"]", 0, NULL);
	struct buf b;
	buf_init(&b, 8);
	CHECK_INT(interp_py_str(&b, v), -E2BIG);
	buf_release(&b);
	json_decref(v);
}

TEST(truthiness)
{
	static const struct {
		const char *json;
		bool t;
	} cases[] = {
		{"null", false},     {"false", false}, {"true", true}, {"0", false},
		{"-1", true},        {"0.0", false},   {"0.5", true},  {"\"\"", false},
		{"\"0\"", true},     {"[]", false},    {"[0]", true},  {"{}", false},
		{"{\"a\":0}", true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *v = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
		if (interp_py_truthy(v) != cases[i].t)
			TAP_FAIL("%s: truth %d", cases[i].json, !cases[i].t);
		json_decref(v);
	}
}

TEST(lists)
{
	struct fixture f;
	fx_init(&f);
	struct interp_lookup lk = {fx_get, &f};
	const char *argv[] = {"make", "-j%(worker:cores)s", "%(prop:missing)s", "V=%(prop:t)s"};
	char **v = NULL, *err = NULL;
	CHECK_INT(interp_render_strv(argv, 4, &lk, 0, &v, &err), 0);
	if (v) {
		CHECK_STR(v[0], "make");
		CHECK_STR(v[1], "-j2");
		CHECK_STR(v[2], "");
		CHECK_STR(v[3], "V=True");
		CHECK(v[4] == NULL);
	}
	interp_strv_free(v);
	interp_strv_free(NULL);
	v = NULL;
	const char *bad[] = {"ok", "%(prop:s)s", "%(prop:x"};
	CHECK_INT(interp_render_strv(bad, 3, &lk, 0, &v, &err), KILN_EPARSE);
	CHECK(v == NULL);
	CHECK_STR(err, "element 2: unterminated '%(' at offset 0");
	free(err);
	CHECK_INT(interp_render_strv(bad, 2, &lk, INTERP_STRICT, &v, &err), 0);
	interp_strv_free(v);
	CHECK_INT(interp_render_strv(argv, 4, &lk, INTERP_STRICT, &v, &err), KILN_ENOTFOUND);
	CHECK(err && !strncmp(err, "element 2: property 'missing'", 29));
	free(err);
	/* an empty list */
	CHECK_INT(interp_render_strv(NULL, 0, &lk, 0, &v, &err), 0);
	CHECK(v && v[0] == NULL);
	interp_strv_free(v);
	json_decref(f.root);
}

TEST(caps)
{
	struct fixture f;
	fx_init(&f);
	struct interp_lookup lk = {fx_get, &f};
	/* output: a big value repeated passes KILN_INTERP_MAX_OUT */
	size_t big = KILN_INTERP_MAX_OUT / 4 + 1;
	char *s = xmalloc(big + 1);
	memset(s, 'x', big);
	s[big] = '\0';
	json_object_set_new(json_object_get(f.root, "prop"), "big", json_string(s));
	free(s);
	const char *t = "%(prop:big)s%(prop:big)s%(prop:big)s";
	char *out = NULL, *err = NULL;
	size_t len = 0;
	CHECK_INT(interp_render(t, strlen(t), &lk, 0, &out, &len, &err), 0);
	CHECK(out && len == 3 * big);
	free(out);
	t = "%(prop:big)s%(prop:big)s%(prop:big)s%(prop:big)s";
	CHECK_INT(interp_render(t, strlen(t), &lk, 0, &out, &len, &err), KILN_ETOOBIG);
	CHECK(err && strstr(err, "output over"));
	free(err);
	/* a list's outputs count together */
	const char *argv[] = {"%(prop:big)s%(prop:big)s", "%(prop:big)s%(prop:big)s"};
	char **v = NULL;
	CHECK_INT(interp_render_strv(argv, 2, &lk, 0, &v, &err), KILN_ETOOBIG);
	CHECK(err && strstr(err, "element 1: output over"));
	free(err);
	/* literal text counts as well */
	char *lit = xmalloc(KILN_INTERP_MAX_OUT + 2);
	memset(lit, 'a', KILN_INTERP_MAX_OUT + 1);
	CHECK_INT(interp_render(lit, KILN_INTERP_MAX_OUT + 1, &lk, 0, &out, &len, &err),
		  KILN_ETOOBIG);
	free(err);
	CHECK_INT(interp_render(lit, KILN_INTERP_MAX_OUT, &lk, 0, &out, &len, &err), 0);
	CHECK(len == KILN_INTERP_MAX_OUT);
	free(out);
	free(lit);

	/* nesting: KILN_INTERP_MAX_DEPTH templates inside modifiers, then an error */
	struct buf b;
	buf_init(&b, 4096);
	for (int d = 0; d <= KILN_INTERP_MAX_DEPTH + 1; d++) {
		buf_reset(&b);
		int r = 0;
		for (int i = 0; i < d; i++)
			r |= buf_adds(&b, "%(prop:missing:-");
		r |= buf_adds(&b, "%(prop:one)s");
		for (int i = 0; i < d; i++)
			r |= buf_adds(&b, ")s");
		CHECK_INT(r, 0);
		int want = d <= KILN_INTERP_MAX_DEPTH ? 0 : KILN_ETOOBIG;
		r = interp_render(b.ptr, b.len, &lk, 0, &out, &len, &err);
		if (r != want)
			TAP_FAIL("depth %d: %d, want %d", d, r, want);
		if (r == 0) {
			CHECK_STR(out, "1");
			free(out);
		} else {
			CHECK(err && strstr(err, "nested deeper than"));
			free(err);
		}
		/* the check walks every branch to the same depth */
		CHECK_INT(interp_check(b.ptr, b.len, NULL), want);
	}
	buf_release(&b);

	/* a value nested deeper than KILN_INTERP_MAX_VALUE_DEPTH */
	json_t *deep = json_array();
	for (int i = 0; i < KILN_INTERP_MAX_VALUE_DEPTH + 1; i++) {
		json_t *outer = json_array();
		json_array_append_new(outer, deep);
		deep = outer;
	}
	json_object_set_new(json_object_get(f.root, "prop"), "deep", deep);
	t = "%(prop:deep)s";
	CHECK_INT(interp_render(t, strlen(t), &lk, 0, &out, &len, &err), KILN_ETOOBIG);
	CHECK(err && strstr(err, "value nested deeper than"));
	free(err);
	json_decref(f.root);
}

TEST(nul_in_values_and_templates)
{
	struct fixture f;
	fx_init(&f);
	json_object_set_new(json_object_get(f.root, "prop"), "nul", json_stringn("a\0b", 3));
	struct interp_lookup lk = {fx_get, &f};
	char *out = NULL, *err = NULL;
	size_t len = 0;
	const char t[] = "x\0%(prop:nul)s";
	CHECK_INT(interp_render(t, sizeof(t) - 1, &lk, 0, &out, &len, &err), 0);
	CHECK(len == 5 && !memcmp(out, "x\0a\0b", 5));
	free(out);
	json_decref(f.root);
}

int main(void)
{
	RUN(matches_buildbot);
	RUN(errors_name_the_position);
	RUN(strict_missing);
	RUN(secrets);
	RUN(only_taken_branches_are_looked_up);
	RUN(lookup_errors_pass_through);
	RUN(python_str_of_values);
	RUN(truthiness);
	RUN(lists);
	RUN(caps);
	RUN(nul_in_values_and_templates);
	return tap_done();
}
