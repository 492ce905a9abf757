/*
 * The checks of force and try calls (sched-force.c, sched-try.c) without a
 * database: sourcestamp fields against the built-in rules and the force
 * scheduler's allow lists, field types and sizes, property count, size and
 * nesting, try parameter types and ranges.
 */
#include "tap.h"

#include "common/limits.h"
#include "config/config.h"
#include "master/sched/sched.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* sched_force_check on a JSON text: 0 or -EINVAL; on an error, whether the
 * message contains want. */
static int check_force(const struct config_scheduler *c, const char *json, const char *want)
{
	json_error_t jerr;
	json_t *p = json_loads(json, JSON_ALLOW_NUL, &jerr);
	if (!p) {
		TAP_FAIL("bad test JSON '%s': %s", json, jerr.text);
		return 1;
	}
	char *err = NULL;
	int r = sched_force_check(c, p, &err);
	if (r < 0 && want && (!err || !strstr(err, want))) {
		TAP_FAIL("'%s': error '%s' does not name '%s'", json, err ? err : "(null)", want);
		r = 1;
	}
	free(err);
	json_decref(p);
	return r;
}

static int check_try(const char *json, const char *want)
{
	json_t *p = json_loads(json, 0, NULL);
	char *err = NULL;
	int r = sched_try_check(p, &err);
	if (r < 0 && want && (!err || !strstr(err, want))) {
		TAP_FAIL("'%s': error '%s' does not name '%s'", json, err ? err : "(null)", want);
		r = 1;
	}
	free(err);
	json_decref(p);
	return r;
}

/* {"deep": [[...]]} with depth brackets (owned). */
static char *nested(size_t depth)
{
	size_t len = 10 + 2 * depth + 2;
	char *s = calloc(1, len + 1);
	memcpy(s, "{\"deep\": ", 9);
	memset(s + 9, '[', depth);
	memset(s + 9 + depth, ']', depth);
	s[9 + 2 * depth] = '}';
	return s;
}

static char *repeat(const char *pre, char c, size_t n, const char *post)
{
	size_t a = strlen(pre), b = strlen(post);
	char *s = calloc(1, a + n + b + 1);
	memcpy(s, pre, a);
	memset(s + a, c, n);
	memcpy(s + a + n, post, b);
	return s;
}

static struct config_scheduler plain = {
	.kind = CONFIG_SCHED_FORCE,
	.name = "plain",
	.branch = "main",
	.repository = "https://example.org/kiln.git",
	.project = "kiln",
};

TEST(ref_shape)
{
	CHECK(sched_force_ref_ok("main"));
	CHECK(sched_force_ref_ok("feature/x-1.2"));
	CHECK(sched_force_ref_ok("HEAD~1"));
	CHECK(sched_force_ref_ok("0123456789abcdef0123456789abcdef01234567"));
	CHECK(!sched_force_ref_ok(""));
	CHECK(!sched_force_ref_ok("-f"));
	CHECK(!sched_force_ref_ok("--upload-pack=x"));
	CHECK(!sched_force_ref_ok("a b"));
	CHECK(!sched_force_ref_ok("a\tb"));
	CHECK(!sched_force_ref_ok("a\nb"));
	CHECK(!sched_force_ref_ok("$(id)"));
	CHECK(!sched_force_ref_ok("a;b"));
	char *long_ref = repeat("", 'a', KILN_FORCE_MAX_REF + 1, "");
	CHECK(!sched_force_ref_ok(long_ref));
	long_ref[KILN_FORCE_MAX_REF] = '\0';
	CHECK(sched_force_ref_ok(long_ref));
	free(long_ref);
}

TEST(sourcestamp_defaults_are_safe)
{
	CHECK_INT(check_force(&plain, "{}", NULL), 0);
	CHECK_INT(check_force(&plain, "{\"branch\": \"\", \"repository\": \"\", \"project\": null}",
			      NULL),
		  0);
	CHECK_INT(check_force(&plain, "{\"repository\": \"https://example.org/kiln.git\"}", NULL),
		  0);
	CHECK_INT(check_force(&plain, "{\"repository\": \"file:///evil\"}", "'repository'"),
		  -EINVAL);
	CHECK_INT(check_force(&plain, "{\"project\": \"other\"}", "'project'"), -EINVAL);
	CHECK_INT(check_force(&plain, "{\"codebase\": \"cb\"}", "'codebase'"), -EINVAL);
	CHECK_INT(check_force(&plain, "{\"branch\": \"dev\", \"revision\": \"abc123\"}", NULL), 0);
	CHECK_INT(check_force(&plain, "{\"branch\": \"-x\"}", "'branch'"), -EINVAL);
	CHECK_INT(check_force(&plain, "{\"revision\": \"a b\"}", "'revision'"), -EINVAL);
	CHECK_INT(check_force(&plain, "{\"branch\": \"a\\u0000b\"}", "'branch'"), -EINVAL);
	CHECK_INT(check_force(&plain, "{\"branch\": 5}", "'branch' must be a string"), -EINVAL);
	CHECK_INT(check_force(&plain, "{\"repository\": [\"x\"]}", "'repository' must be a string"),
		  -EINVAL);
}

TEST(allow_lists)
{
	char *branches[] = {"main", "release-*", "with space"};
	char *repos[] = {"https://example.org/forks/*"};
	struct config_scheduler wide = plain;
	wide.name = "wide";
	wide.allowed[CONFIG_FORCE_BRANCH] = branches;
	wide.nallowed[CONFIG_FORCE_BRANCH] = 3;
	wide.allowed[CONFIG_FORCE_REPOSITORY] = repos;
	wide.nallowed[CONFIG_FORCE_REPOSITORY] = 1;
	CHECK_INT(check_force(&wide, "{\"branch\": \"release-2\"}", NULL), 0);
	CHECK_INT(check_force(&wide, "{\"branch\": \"with space\"}", NULL), 0);
	CHECK_INT(check_force(&wide, "{\"branch\": \"dev\"}",
			      "not allowed by force scheduler 'wide'"),
		  -EINVAL);
	CHECK_INT(check_force(&wide, "{\"repository\": \"https://example.org/forks/a.git\"}", NULL),
		  0);
	CHECK_INT(check_force(&wide, "{\"repository\": \"https://example.org/kiln.git\"}", NULL),
		  0);
	CHECK_INT(check_force(&wide, "{\"repository\": \"https://evil.org/forks/a.git\"}",
			      "'repository'"),
		  -EINVAL);
	/* control characters stay out whatever the list says */
	char *any[] = {"*"};
	wide.allowed[CONFIG_FORCE_BRANCH] = any;
	wide.nallowed[CONFIG_FORCE_BRANCH] = 1;
	CHECK_INT(check_force(&wide, "{\"branch\": \"a\\nb\"}", "control characters"), -EINVAL);
	CHECK_INT(check_force(&wide, "{\"branch\": \"-anything goes\"}", NULL), 0);
}

TEST(field_caps_and_types)
{
	char *s = repeat("{\"reason\": \"", 'r', KILN_FORCE_MAX_REASON + 1, "\"}");
	CHECK_INT(check_force(&plain, s, "'reason' is longer than"), -EINVAL);
	free(s);
	s = repeat("{\"reason\": \"", 'r', KILN_FORCE_MAX_REASON, "\"}");
	CHECK_INT(check_force(&plain, s, NULL), 0);
	free(s);
	s = repeat("{\"username\": \"", 'u', KILN_FORCE_MAX_OWNER + 1, "\"}");
	CHECK_INT(check_force(&plain, s, "'username'"), -EINVAL);
	free(s);
	CHECK_INT(check_force(&plain, "{\"reason\": 5}", "'reason' must be a string"), -EINVAL);
	CHECK_INT(check_force(&plain, "{\"username\": \"a\\u001bb\"}", "'username'"), -EINVAL);
	CHECK_INT(check_force(&plain, "{\"owner\": {}}", "'owner'"), -EINVAL);
}

TEST(property_caps)
{
	CHECK_INT(check_force(&plain, "{\"a\": 1, \"b\": [1, {\"c\": \"d\"}]}", NULL), 0);
	char *s = nested(KILN_FORCE_MAX_PROP_DEPTH);
	CHECK_INT(check_force(&plain, s, NULL), 0);
	free(s);
	s = nested(KILN_FORCE_MAX_PROP_DEPTH + 1);
	CHECK_INT(check_force(&plain, s, "'deep' is nested deeper"), -EINVAL);
	free(s);
	s = nested(100);
	CHECK_INT(check_force(&plain, s, "'deep' is nested deeper"), -EINVAL);
	free(s);
	s = repeat("{\"big\": \"", 'v', KILN_FORCE_MAX_PROP_VALUE, "\"}");
	CHECK_INT(check_force(&plain, s, "'big' is larger than"), -EINVAL);
	free(s);
	s = repeat("{\"", 'n', KILN_FORCE_MAX_PROP_NAME + 1, "\": 1}");
	CHECK_INT(check_force(&plain, s, "property name"), -EINVAL);
	free(s);
	CHECK_INT(check_force(&plain, "{\"\": 1}", "property name"), -EINVAL);

	json_t *p = json_object();
	for (int i = 0; i <= KILN_FORCE_MAX_PROPS; i++) {
		char k[16];
		snprintf(k, sizeof(k), "p%d", i);
		json_object_set_new(p, k, json_integer(i));
	}
	char *err = NULL;
	CHECK_INT(sched_force_check(&plain, p, &err), -EINVAL);
	CHECK(err && strstr(err, "more than"));
	free(err);
	json_object_del(p, "p0");
	err = NULL;
	CHECK_INT(sched_force_check(&plain, p, &err), 0);
	free(err);
	json_decref(p);

	/* the total */
	p = json_object();
	char *v = repeat("", 'v', KILN_FORCE_MAX_PROP_VALUE - 16, "");
	for (int i = 0; i < 5; i++) {
		char k[16];
		snprintf(k, sizeof(k), "p%d", i);
		json_object_set_new(p, k, json_string(v));
	}
	free(v);
	err = NULL;
	CHECK_INT(sched_force_check(&plain, p, &err), -EINVAL);
	CHECK(err && strstr(err, "in total"));
	free(err);
	json_decref(p);

	/* with declared params, only those become properties: others are ignored */
	struct config_param prm = {.type = CONFIG_PARAM_STRING, .name = "note", .def = ""};
	struct config_scheduler typed = plain;
	typed.params = &prm;
	typed.nparams = 1;
	s = nested(100);
	CHECK_INT(check_force(&typed, s, NULL), 0);
	free(s);
	s = repeat("{\"note\": \"", 'v', KILN_FORCE_MAX_PROP_VALUE, "\"}");
	CHECK_INT(check_force(&typed, s, "'note' is larger than"), -EINVAL);
	free(s);
}

TEST(try_params)
{
	CHECK_INT(check_try("{\"token\": \"t\", \"patch_level\": 1, \"branch\": \"main\", "
			    "\"revision\": \"abc\", \"builderNames\": [\"b\"]}",
			    NULL),
		  0);
	CHECK_INT(check_try("{\"patch_level\": 1099511627776}", "'patch_level'"), -EINVAL);
	CHECK_INT(check_try("{\"patch_level\": -1}", "'patch_level'"), -EINVAL);
	CHECK_INT(check_try("{\"patch_level\": 101}", "'patch_level'"), -EINVAL);
	CHECK_INT(check_try("{\"patch_level\": \"1\"}", "'patch_level'"), -EINVAL);
	CHECK_INT(check_try("{\"patch_level\": true}", "'patch_level'"), -EINVAL);
	CHECK_INT(check_try("{\"patch_level\": 100}", NULL), 0);
	CHECK_INT(check_try("{\"who\": 5}", "'who' must be a string"), -EINVAL);
	CHECK_INT(check_try("{\"token\": []}", "'token'"), -EINVAL);
	CHECK_INT(check_try("{\"branch\": \"-x\"}", "'branch'"), -EINVAL);
	CHECK_INT(check_try("{\"revision\": \"a b\"}", "'revision'"), -EINVAL);
	CHECK_INT(check_try("{\"repository\": \"r\\u0007\"}", "'repository'"), -EINVAL);
	CHECK_INT(check_try("{\"patch_subdir\": 1}", "'patch_subdir'"), -EINVAL);
	CHECK_INT(check_try("{\"builderNames\": \"b\"}", "'builderNames'"), -EINVAL);
	CHECK_INT(check_try("{\"builderNames\": [\"b\", 3]}", "'builderNames'"), -EINVAL);
	char *s = repeat("{\"comment\": \"", 'c', KILN_FORCE_MAX_REASON + 1, "\"}");
	CHECK_INT(check_try(s, "'comment' is longer"), -EINVAL);
	free(s);
	CHECK_INT(check_try("[]", "'params'"), -EINVAL);
}

int main(void)
{
	RUN(ref_shape);
	RUN(sourcestamp_defaults_are_safe);
	RUN(allow_lists);
	RUN(field_caps_and_types);
	RUN(property_caps);
	RUN(try_params);
	return tap_done();
}
