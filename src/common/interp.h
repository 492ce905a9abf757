/*
 * Buildbot's Interpolate renderer: "%(selector:name[:modifier])s" templates
 * rendered against a lookup callback.  Pure: no Lua, no database, no loop.
 *
 * Forms (as Buildbot 3.7's util.Interpolate):
 *   %(prop:NAME)s            a build property
 *   %(src:CODEBASE:ATTR)s    an attribute of the sourcestamp of CODEBASE ("" = default)
 *   %(kw:NAME)s              a keyword argument given with the template
 *   %(worker:NAME)s          an item of the worker's info
 *   %(secret:NAME)s          a secret's value
 *   %%                       a literal '%'
 * Modifiers after NAME (ATTR for src), each text itself a template:
 *   :-TEXT        the value if set (a null value renders ""), else TEXT
 *   :~TEXT        the value if set and true (Python truth: not null, false,
 *                 0, 0.0, "", [] or {}), else TEXT
 *   :+TEXT        TEXT if set, else ""
 *   :?|YES|NO     YES if set, else NO; any character but '(' may stand for
 *                 '|'; the split is at the first one outside parentheses
 *   :#?|YES|NO    YES if set and true, else NO
 * Names of prop and kw, and src's codebase and attribute, are made of
 * letters, digits, '_', '.', '-' (or bytes >= 0x80: Python's \w is Unicode).
 * A key may hold balanced parentheses, so templates nest:
 * "%(prop:a:-%(prop:b)s)s".  Every branch is checked for syntax whether it
 * is taken or not (Buildbot parses them all when the Interpolate is made).
 *
 * Values render as Python's str(): strings as they are, integers in
 * decimal, floats as Python's repr (1.0, 1e+16, 1e-05), true/false as
 * True/False, lists and objects as Python's repr ("[1, 'a', None]",
 * "{'k': True}", keys in insertion order).  A null value renders "".
 *
 * Missing values: Buildbot renders a missing prop/src/kw/worker without a
 * modifier as "" (the implicit modifier is ":-" with an empty default), and
 * so does interp_render() by default.  INTERP_STRICT makes that case an
 * error instead ("property 'x' is not set"); an explicit ":-" still gives
 * "".  A secret that no provider has is always an error, as in Buildbot,
 * except under ":+" and ":?" which, as in Buildbot, never look it up.
 *
 * Not supported (an error, not a silent difference): conversions other
 * than 's' (Python would accept "%(prop:x)d" or "%(prop:x)10s"), and '%'
 * followed by anything but '%' or '(' (Python would print the whole
 * property dictionary for "%s").  Buildbot's accident of accepting a
 * two-character ternary without a delimiter ("%(prop:x:?|ab)s") is an error.
 */
#ifndef KILN_COMMON_INTERP_H
#define KILN_COMMON_INTERP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct buf;

enum interp_kind {
	INTERP_PROP,   /* a = property name, b = NULL */
	INTERP_SRC,    /* a = codebase (may be ""), b = attribute */
	INTERP_KW,     /* a = keyword, b = NULL */
	INTERP_WORKER, /* a = worker info key, b = NULL */
	INTERP_SECRET, /* a = secret name, b = NULL */
};

/* What a lookup returns (or a negative error code, passed through). */
enum {
	INTERP_MISSING = 0,
	INTERP_FOUND = 1,
};

/*
 * The values a template is rendered against.  get() stores a new reference
 * in *ret when it returns INTERP_FOUND (json_incref a borrowed one), and
 * stores nothing otherwise.  It is called on the caller's thread, during
 * interp_render() only, once per substitution that is rendered (a secret
 * seen by get() is one the output contains, for masking).
 */
struct interp_lookup {
	int (*get)(void *ud, enum interp_kind kind, const char *a, const char *b, json_t **ret);
	void *ud;
};

/* Flags of interp_render(). */
#define INTERP_STRICT (1u << 0) /* a missing value without modifier is an error */

/*
 * Renders tmpl[0..len) into a new string (*ret, NUL-terminated, owned by
 * the caller; *ret_len its length, which may count NUL bytes that a value
 * held; ret_len may be NULL).  lk NULL only checks the syntax (every value
 * is then missing and nothing is looked up; INTERP_STRICT is ignored).
 * Errors: KILN_EPARSE (syntax), KILN_ENOTFOUND (a missing secret, or a
 * missing value under INTERP_STRICT), KILN_ETOOBIG (output over
 * KILN_INTERP_MAX_OUT, templates nested deeper than KILN_INTERP_MAX_DEPTH,
 * a value nested deeper than KILN_INTERP_MAX_VALUE_DEPTH), or get()'s own
 * negative code; then *ret_err (if ret_err is non-NULL) is a message
 * naming the byte offset in tmpl, e.g. "unterminated '%(' at offset 4".
 * ret and ret_len are written on success only, ret_err on failure only.
 */
int interp_render(const char *tmpl, size_t len, const struct interp_lookup *lk, unsigned flags,
		  char **ret, size_t *ret_len, char **ret_err);

/* interp_render() with lk NULL: 0 if tmpl is a valid template. */
int interp_check(const char *tmpl, size_t len, char **ret_err);

/*
 * Renders each of tmpls[0..n) (NUL-terminated) into *ret_v, a new array of
 * n new strings followed by NULL (free with interp_strv_free()).  The
 * outputs together count against KILN_INTERP_MAX_OUT.  The error message
 * names the element: "element 2: unterminated '%(' at offset 0".
 */
int interp_render_strv(const char *const *tmpls, size_t n, const struct interp_lookup *lk,
		       unsigned flags, char ***ret_v, char **ret_err);
/* Frees a NULL-terminated array from interp_render_strv().  NULL-safe. */
void interp_strv_free(char **v);

/* Appends Python's str() of v (see above; a null v appends "None" here,
 * the "" rule is interp_render()'s).  -E2BIG when out's cap is passed,
 * KILN_ETOOBIG past KILN_INTERP_MAX_VALUE_DEPTH. */
int interp_py_str(struct buf *out, const json_t *v);
/* Python's truth of v: false for null, false, 0, 0.0, "", [] and {}. */
bool interp_py_truthy(const json_t *v);

#endif
