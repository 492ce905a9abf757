/*
 * compile { command, warning_patterns, suppressions, max_warnings,
 * over_max }: a command step whose output's warnings are counted, as
 * Buildbot's Compile / WarningCountingShellCommand (steps/step-compile.c
 * runs it).  Patterns are PCRE2 regular expressions, checked here so that
 * checkconfig names a bad one.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "config/config-internal.h"
#include "common/limits.h"
#include "common/xalloc.h"

#include <lauxlib.h>
#include <pcre2.h>
#include <string.h>

/* Compiles re once to check it; raises with PCRE2's message and offset. */
static void config_compile_check_re(lua_State *L, const char *what, const char *key, const char *re,
				    size_t len)
{
	int code;
	PCRE2_SIZE off;
	pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, len, 0, &code, &off, NULL);
	if (c) {
		pcre2_code_free(c);
		return;
	}
	PCRE2_UCHAR msg[160];
	pcre2_get_error_message(code, msg, sizeof(msg));
	config_raise(L, "%s: %s: '%.60s' is not a valid regular expression: %s at offset %zu", what,
		     key, re, (const char *)msg, (size_t)off);
}

static char *config_compile_re(lua_State *L, int idx, const char *what, const char *key)
{
	size_t len;
	const char *re = dsl_check_string(L, idx, what, key, &len);
	if (len == 0 || len > KILN_WARNSCAN_MAX_PATTERN_LEN)
		config_raise(L, "%s: %s must be 1 to %u bytes long", what, key,
			     (unsigned)KILN_WARNSCAN_MAX_PATTERN_LEN);
	config_compile_check_re(L, what, key, re, len);
	return config_strdup(L, re, len);
}

/* suppressions = { { file = RE, warning = RE, lines = { START, END } }, ... } */
static void config_compile_suppressions(lua_State *L, const char *what, struct config_warnings *w)
{
	static const char *const keys[] = {"file", "warning", "lines", NULL};
	if (dsl_get(L, 1, "suppressions") == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	int t = lua_gettop(L);
	size_t n = dsl_check_list(L, t, what, "suppressions", "tables");
	if (n > KILN_WARNSCAN_MAX_SUPPRESSIONS)
		config_raise(L, "%s: at most %u suppressions", what,
			     (unsigned)KILN_WARNSCAN_MAX_SUPPRESSIONS);
	config_charge(L, (n + 1) * sizeof(*w->supp));
	w->supp = xcalloc(n + 1, sizeof(*w->supp));
	for (size_t i = 1; i <= n; i++) {
		if (lua_rawgeti(L, t, (lua_Integer)i) != LUA_TTABLE)
			config_raise(L,
				     "%s: suppressions[%zu] must be a table { file = ..., "
				     "warning = ..., lines = { a, b } }",
				     what, i);
		int e = lua_gettop(L);
		char ewhat[300];
		snprintf(ewhat, sizeof(ewhat), "%s: suppressions[%zu]", what, i);
		dsl_check_keys(L, e, ewhat, keys);
		struct config_suppression *s = &w->supp[w->nsupp++];
		if (dsl_get(L, e, "file") != LUA_TNIL)
			s->file = config_compile_re(L, lua_gettop(L), ewhat, "file");
		lua_settop(L, e);
		if (dsl_get(L, e, "warning") != LUA_TNIL)
			s->warning = config_compile_re(L, lua_gettop(L), ewhat, "warning");
		lua_settop(L, e);
		if (dsl_get(L, e, "lines") != LUA_TNIL) {
			int l = lua_gettop(L);
			if (lua_type(L, l) != LUA_TTABLE || luaL_len(L, l) != 2)
				config_raise(L, "%s: 'lines' must be { first, last }", ewhat);
			lua_rawgeti(L, l, 1);
			lua_rawgeti(L, l, 2);
			int ok1, ok2;
			lua_Integer a = lua_tointegerx(L, -2, &ok1),
				    b = lua_tointegerx(L, -1, &ok2);
			if (!ok1 || !ok2 || a < 1 || b < a || b > 1000000000)
				config_raise(L,
					     "%s: 'lines' must be { first, last } with 1 <= first "
					     "<= last",
					     ewhat);
			s->start = (long)a;
			s->end = (long)b;
		}
		lua_settop(L, e - 1);
	}
	lua_settop(L, t - 1);
}

int config_step_compile(lua_State *L)
{
	static const char *const extra[] = {"warning_patterns", "suppressions", "max_warnings",
					    "over_max", NULL};
	bool named = dsl_get(L, 1, "name") != LUA_TNIL;
	lua_pop(L, 1);
	struct config_step *step =
		config_step_command_new(L, "compile", CONFIG_STEP_COMPILE, extra);
	int ud = lua_gettop(L);
	char what[256];
	dsl_what(L, what, sizeof(what), "compile", NULL);
	if (!named) {
		free(step->name);
		step->name = NULL;
		step->name = config_strdup(L, "compile", 7);
	}
	config_charge(L, sizeof(struct config_warnings));
	struct config_warnings *w = step->warnings = xcalloc(1, sizeof(*w));
	w->max_warnings = dsl_opt_int(L, 1, what, "max_warnings", -1, -1, 1000000000);
	size_t olen;
	const char *over = dsl_opt_string(L, 1, what, "over_max", &olen);
	if (over && strcmp(over, "failure") && strcmp(over, "warnings"))
		config_raise(L, "%s: 'over_max' must be \"failure\" or \"warnings\" (got '%.40s')",
			     what, over);
	w->over_warns = over && !strcmp(over, "warnings");
	if (dsl_get(L, 1, "warning_patterns") != LUA_TNIL) {
		int t = lua_gettop(L);
		size_t n = dsl_check_list(L, t, what, "warning_patterns", "strings");
		if (n == 0 || n > KILN_WARNSCAN_MAX_PATTERNS)
			config_raise(L, "%s: 'warning_patterns' must list 1 to %u patterns", what,
				     (unsigned)KILN_WARNSCAN_MAX_PATTERNS);
		w->patterns = dsl_new_strv(L, n);
		for (size_t i = 1; i <= n; i++) {
			lua_rawgeti(L, t, (lua_Integer)i);
			w->patterns[w->npatterns] =
				config_compile_re(L, lua_gettop(L), what, "warning_patterns");
			w->npatterns++;
			lua_pop(L, 1);
		}
	}
	lua_settop(L, ud);
	config_compile_suppressions(L, what, w);
	lua_settop(L, ud);
	return 1;
}

void config_step_compile_copy(lua_State *L, struct config_step *dst, const struct config_step *src)
{
	dst->warnings = NULL;
	const struct config_warnings *s = src->warnings;
	if (!s)
		return;
	config_charge(L, sizeof(*s));
	struct config_warnings *d = dst->warnings = xcalloc(1, sizeof(*d));
	d->max_warnings = s->max_warnings;
	d->over_warns = s->over_warns;
	if (s->npatterns) {
		d->patterns = dsl_new_strv(L, s->npatterns);
		for (size_t i = 0; i < s->npatterns; i++) {
			d->patterns[i] = config_strdup(L, s->patterns[i], strlen(s->patterns[i]));
			d->npatterns = i + 1;
		}
	}
	if (s->nsupp) {
		config_charge(L, s->nsupp * sizeof(*d->supp));
		d->supp = xcalloc(s->nsupp, sizeof(*d->supp));
		for (size_t i = 0; i < s->nsupp; i++) {
			struct config_suppression *x = &d->supp[d->nsupp++];
			x->start = s->supp[i].start;
			x->end = s->supp[i].end;
			if (s->supp[i].file)
				x->file =
					config_strdup(L, s->supp[i].file, strlen(s->supp[i].file));
			if (s->supp[i].warning)
				x->warning = config_strdup(L, s->supp[i].warning,
							   strlen(s->supp[i].warning));
		}
	}
}

void config_step_compile_release(struct config_step *s)
{
	struct config_warnings *w = s->warnings;
	if (!w)
		return;
	config_sched_strv_free(w->patterns, w->npatterns);
	for (size_t i = 0; i < w->nsupp; i++) {
		free(w->supp[i].file);
		free(w->supp[i].warning);
	}
	free(w->supp);
	free(w);
	s->warnings = NULL;
}
