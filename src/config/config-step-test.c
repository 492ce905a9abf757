/*
 * test { command, format, reports, report_format, max_report_bytes }: a
 * command step whose test results are read from its stdout and/or from
 * report files on the worker, as Buildbot's Test step with a test-report
 * parser (steps/step-test.c runs it).  Formats are checked here so that
 * checkconfig names a bad one.
 */
#include "config/config-internal.h"
#include "common/limits.h"
#include "common/xalloc.h"

#include <lauxlib.h>
#include <string.h>

static const char *const config_test_formats[] = {"auto", "tap", "junit", "gotest", NULL};

static char *config_test_format(lua_State *L, const char *what, const char *key)
{
	size_t len;
	const char *f = dsl_opt_string(L, 1, what, key, &len);
	if (!f)
		return NULL;
	for (size_t i = 0; config_test_formats[i]; i++)
		if (!strcmp(f, config_test_formats[i]))
			return config_strdup(L, f, len);
	config_raise(L, "%s: '%s' must be \"auto\", \"tap\", \"junit\" or \"gotest\" (got '%.40s')",
		     what, key, f);
	return NULL;
}

int config_step_test(lua_State *L)
{
	static const char *const extra[] = {"format", "reports", "report_format",
					    "max_report_bytes", NULL};
	bool named = dsl_get(L, 1, "name") != LUA_TNIL;
	lua_pop(L, 1);
	struct config_step *step = config_step_command_new(L, "test", CONFIG_STEP_TEST, extra);
	int ud = lua_gettop(L);
	char what[256];
	dsl_what(L, what, sizeof(what), "test", NULL);
	if (!named) {
		free(step->name);
		step->name = NULL;
		step->name = config_strdup(L, "test", 4);
	}
	config_charge(L, sizeof(struct config_test));
	struct config_test *t = step->test = xcalloc(1, sizeof(*t));
	t->format = config_test_format(L, what, "format");
	t->report_format = config_test_format(L, what, "report_format");
	if (!t->report_format)
		t->report_format = config_strdup(L, "auto", 4);
	t->max_report_bytes =
		dsl_opt_int(L, 1, what, "max_report_bytes", (long long)KILN_TESTREPORT_MAX_BYTES, 1,
			    (long long)KILN_TESTREPORT_MAX_BYTES);
	if (dsl_get(L, 1, "reports") != LUA_TNIL) {
		int l = lua_gettop(L);
		size_t n = dsl_check_list(L, l, what, "reports", "strings");
		if (n == 0 || n > KILN_TEST_STEP_MAX_REPORTS)
			config_raise(L, "%s: 'reports' must list 1 to %u files", what,
				     (unsigned)KILN_TEST_STEP_MAX_REPORTS);
		t->reports = dsl_new_strv(L, n);
		for (size_t i = 1; i <= n; i++) {
			lua_rawgeti(L, l, (lua_Integer)i);
			size_t len;
			const char *p = dsl_check_string(L, lua_gettop(L), what, "reports", &len);
			dsl_check_relpath(L, what, "reports", p, len);
			t->reports[t->nreports++] = config_strdup(L, p, len);
			lua_pop(L, 1);
		}
	}
	if (!t->format && !t->nreports)
		config_raise(L, "%s: needs 'format' (its output is a report) or 'reports'", what);
	lua_settop(L, ud);
	return 1;
}

void config_step_test_copy(lua_State *L, struct config_step *dst, const struct config_step *src)
{
	dst->test = NULL;
	const struct config_test *s = src->test;
	if (!s)
		return;
	config_charge(L, sizeof(*s));
	struct config_test *d = dst->test = xcalloc(1, sizeof(*d));
	d->max_report_bytes = s->max_report_bytes;
	if (s->format)
		d->format = config_strdup(L, s->format, strlen(s->format));
	d->report_format = config_strdup(L, s->report_format, strlen(s->report_format));
	if (s->nreports) {
		d->reports = dsl_new_strv(L, s->nreports);
		for (size_t i = 0; i < s->nreports; i++) {
			d->reports[i] = config_strdup(L, s->reports[i], strlen(s->reports[i]));
			d->nreports = i + 1;
		}
	}
}

void config_step_test_release(struct config_step *s)
{
	struct config_test *t = s->test;
	if (!t)
		return;
	free(t->format);
	free(t->report_format);
	config_sched_strv_free(t->reports, t->nreports);
	free(t);
	s->test = NULL;
}
