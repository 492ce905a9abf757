/*
 * logfiles = { } and lazylogfiles of the command steps (slice "logfiles",
 * src/config/config-step-shell.c): what is copied into builders for every
 * command kind, and every checkconfig error with its line.
 */
#include "config-test.h"
#include "tap.h"
#include "common/err.h"
#include "common/limits.h"
#include "config/config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W "worker { name = \"w1\", password = secret(\"pw\") }\n"
#define B(step) "builder { name = \"b\", workers = { \"w1\" }, steps = {\n" step "\n} }\n"

TEST(copied_sorted_every_command_kind)
{
	setenv("KILN_SECRET_PW", "x", 1);
	/* one declaration listed in two builders: each gets its own copy */
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		W "local s = shell { command = \"make\", lazylogfiles = true, logfiles = {\n"
		  "  trace = { filename = \"out/trace.log\", follow = true },\n"
		  "  side = \"side.log\", [\"a b.c-d_e\"] = { filename = \"x\" } } }\n"
		  "builder { name = \"b\", workers = { \"w1\" }, steps = { s,\n"
		  " compile { command = \"make\", logfiles = { c = \"c.log\" } },\n"
		  " test { command = \"t\", format = \"tap\", logfiles = { t = \"t.log\" } },\n"
		  " set_property_from_command { command = \"v\", property = \"v\",\n"
		  "   logfiles = { p = \"p.log\" } },\n"
		  " shell { command = \"plain\" } } }\n"
		  "builder { name = \"b2\", workers = { \"w1\" }, steps = { s } }\n");
	if (!cfg)
		return;
	const struct config_builder *b = config_find_builder(cfg, "b");
	CHECK_INT(b->nsteps, 5);
	const struct config_step *s = &b->steps[0];
	CHECK(s->lazylogfiles);
	CHECK_INT(s->nlogfiles, 3);
	if (s->nlogfiles == 3) {
		CHECK_STR(s->logfiles[0].name, "a b.c-d_e");
		CHECK_STR(s->logfiles[0].filename.text, "x");
		CHECK(!s->logfiles[0].follow);
		CHECK_STR(s->logfiles[1].name, "side");
		CHECK_STR(s->logfiles[1].filename.text, "side.log");
		CHECK(!s->logfiles[1].follow);
		CHECK_STR(s->logfiles[2].name, "trace");
		CHECK_STR(s->logfiles[2].filename.text, "out/trace.log");
		CHECK(s->logfiles[2].follow);
	}
	for (size_t i = 1; i < 4; i++) {
		CHECK_INT(b->steps[i].nlogfiles, 1);
		CHECK(!b->steps[i].lazylogfiles);
	}
	CHECK_INT(b->steps[1].kind, CONFIG_STEP_COMPILE);
	CHECK_STR(b->steps[1].logfiles[0].filename.text, "c.log");
	CHECK_INT(b->steps[2].kind, CONFIG_STEP_TEST);
	CHECK_STR(b->steps[2].logfiles[0].name, "t");
	CHECK_INT(b->steps[3].kind, CONFIG_STEP_PROPCMD);
	CHECK_STR(b->steps[3].logfiles[0].name, "p");
	CHECK_INT(b->steps[4].nlogfiles, 0);
	CHECK(b->steps[4].logfiles == NULL);
	CHECK(!b->steps[4].lazylogfiles);
	const struct config_builder *b2 = config_find_builder(cfg, "b2");
	CHECK_INT(b2->steps[0].nlogfiles, 3);
	if (b2->steps[0].nlogfiles == 3) {
		CHECK(b2->steps[0].logfiles != s->logfiles);
		CHECK(b2->steps[0].logfiles[2].name != s->logfiles[2].name);
		CHECK_STR(b2->steps[0].logfiles[2].filename.text, "out/trace.log");
		CHECK(b2->steps[0].lazylogfiles);
	}
	config_free(cfg);
}

TEST(limits)
{
	/* KILN_MAX_LOGFILES entries load, one more does not */
	char text[16384];
	size_t n =
		(size_t)snprintf(text, sizeof(text), W B("shell { command = \"m\", logfiles = {"));
	n -= strlen("\n} }\n");
	for (int i = 0; i < KILN_MAX_LOGFILES; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, " l%d = \"f%d\",", i, i);
	snprintf(text + n, sizeof(text) - n, " } }\n} }\n");
	char *err;
	struct config *cfg = config_test_load(text, &err);
	CHECK(cfg != NULL);
	if (cfg)
		CHECK_INT(config_find_builder(cfg, "b")->steps[0].nlogfiles, KILN_MAX_LOGFILES);
	else
		TAP_FAIL("%s", err);
	config_free(cfg);
	free(err);
	snprintf(text + n, sizeof(text) - n, " extra = \"e\" } }\n} }\n");
	char want[256];
	snprintf(want, sizeof(want), "master.lua:3: shell: 'logfiles' has more than %d entries",
		 KILN_MAX_LOGFILES);
	CHECK_ERR(text, want);

	/* a name of KILN_MAX_LOGFILE_NAME bytes loads, one more does not */
	char name[KILN_MAX_LOGFILE_NAME + 2];
	memset(name, 'n', KILN_MAX_LOGFILE_NAME);
	name[KILN_MAX_LOGFILE_NAME] = '\0';
	snprintf(text, sizeof(text), W B("shell { command = \"m\", logfiles = { %s = \"f\" } }"),
		 name);
	cfg = config_test_load(text, &err);
	CHECK(cfg != NULL);
	config_free(cfg);
	free(err);
	name[KILN_MAX_LOGFILE_NAME] = 'n';
	name[KILN_MAX_LOGFILE_NAME + 1] = '\0';
	snprintf(text, sizeof(text), W B("shell { command = \"m\", logfiles = { %s = \"f\" } }"),
		 name);
	snprintf(want, sizeof(want),
		 "master.lua:3: shell: logfiles: the name '%.60s...' is longer than %d bytes", name,
		 KILN_MAX_LOGFILE_NAME);
	CHECK_ERR(text, want);

	/* a path of KILN_MAX_LOGFILE_PATH bytes loads, one more does not */
	char *path = malloc(KILN_MAX_LOGFILE_PATH + 2);
	if (!path)
		return;
	memset(path, 'p', KILN_MAX_LOGFILE_PATH);
	path[KILN_MAX_LOGFILE_PATH] = '\0';
	snprintf(text, sizeof(text), W B("shell { command = \"m\", logfiles = { l = \"%s\" } }"),
		 path);
	cfg = config_test_load(text, &err);
	CHECK(cfg != NULL);
	config_free(cfg);
	free(err);
	path[KILN_MAX_LOGFILE_PATH] = 'p';
	path[KILN_MAX_LOGFILE_PATH + 1] = '\0';
	snprintf(text, sizeof(text), W B("shell { command = \"m\", logfiles = { l = \"%s\" } }"),
		 path);
	snprintf(want, sizeof(want), "master.lua:3: shell: 'logfiles.l' is longer than %d bytes",
		 KILN_MAX_LOGFILE_PATH);
	CHECK_ERR(text, want);
	free(path);
}

TEST(errors)
{
	CHECK_ERR(W B("shell { command = \"m\", logfiles = \"side.log\" }"),
		  "master.lua:3: shell: 'logfiles' must be a table of NAME = path (got "
		  "string)");
	CHECK_ERR(W B("shell { command = \"m\", logfiles = { \"side.log\" } }"),
		  "master.lua:3: shell: 'logfiles' keys must be log names (got number)");
	CHECK_ERR(W B("shell { command = \"m\", logfiles = { [\"\"] = \"f\" } }"),
		  "master.lua:3: shell: 'logfiles' names must not be empty");
	CHECK_ERR(W B("shell { command = \"m\", logfiles = { stdio = \"f\" } }"),
		  "master.lua:3: shell: logfiles: 'stdio' is the name of the step's own log");
	CHECK_ERR(W B("set_property_from_command { command = \"m\", property = \"p\",\n"
		      "  logfiles = { [\"property.changes\"] = \"f\" } }"),
		  "master.lua:3: set_property_from_command: logfiles: 'property.changes' is the "
		  "name of the step's own log");
	CHECK_ERR(W B("shell { command = \"m\", logfiles = { [\"a/b\"] = \"f\" } }"),
		  "master.lua:3: shell: logfiles: the name 'a/b' may only hold letters, "
		  "digits, '.', '_', '-' and inner spaces");
	CHECK_ERR(W B("shell { command = \"m\", logfiles = { [\" a\"] = \"f\" } }"),
		  "master.lua:3: shell: logfiles: the name ' a' may only hold letters, "
		  "digits, '.', '_', '-' and inner spaces");
	CHECK_ERR(W B("shell { command = \"m\", logfiles = { [\"a\\n\"] = \"f\" } }"),
		  "master.lua:3: shell: logfiles: the name 'a ' may only hold letters, "
		  "digits, '.', '_', '-' and inner spaces");
	CHECK_ERR(W B("shell { command = \"m\", logfiles = { [\"a.log\"] = \"f\", a_log = \"g\" "
		      "} }"),
		  "master.lua:3: shell: logfiles: 'a.log' and 'a_log' would be the same log "
		  "('a_log')");
	CHECK_ERR(W B("shell { command = \"m\", logfiles = { l = \"/etc/passwd\" } }"),
		  "master.lua:3: shell: 'logfiles.l' must be a relative path (got "
		  "'/etc/passwd')");
	CHECK_ERR(W B("shell { command = \"m\", logfiles = { l = \"a/../../x\" } }"),
		  "master.lua:3: shell: 'logfiles.l' must not contain '..' (got 'a/../../x')");
	CHECK_ERR(W B("shell { command = \"m\", logfiles = { l = \"..\" } }"),
		  "master.lua:3: shell: 'logfiles.l' must not contain '..' (got '..')");
	CHECK_ERR(W B("shell { command = \"m\", logfiles = { l = \"\" } }"),
		  "master.lua:3: shell: 'logfiles.l' must not be empty");
	CHECK_ERR(W B("shell { command = \"m\", logfiles = { l = \"a\\0b\" } }"),
		  "master.lua:3: shell: 'logfiles.l' must not contain control characters");
	CHECK_ERR(W B("shell { command = \"m\", logfiles = { l = \"a\\tb\" } }"),
		  "master.lua:3: shell: 'logfiles.l' must not contain control characters");
	CHECK_ERR(W B("shell { command = \"m\", logfiles = { l = 3 } }"),
		  "master.lua:3: shell: 'logfiles.l' must be a path, interpolate(...), a function "
		  "or { filename = path, follow = bool } (got number)");
	CHECK_ERR(W B("shell { command = \"m\", logfiles = { l = { follow = true } } }"),
		  "master.lua:3: shell: logfiles.l: 'filename' must be a path, interpolate(...) or "
		  "a function (got nil)");
	CHECK_ERR(W B("shell { command = \"m\", logfiles = { l = { filename = { \"a\" } } } }"),
		  "master.lua:3: shell: logfiles.l: 'filename' must be a path, interpolate(...) or "
		  "a function (got table)");
	/* a renderable template is checked as Interpolate when declared */
	CHECK_ERR(W B("shell { command = \"m\", logfiles = { l = interpolate(\"%(prop:x\") } }"),
		  "master.lua:3: interpolate: unterminated '%(' at offset 0");
	CHECK_ERR(W B("shell { command = \"m\", logfiles = { l = { filename = \"f\", follow = "
		      "1 } } }"),
		  "master.lua:3: shell: logfiles.l: 'follow' must be true or false (got "
		  "number)");
	CHECK_ERR(W B("shell { command = \"m\", logfiles = { l = { filename = \"f\", folow = "
		      "true } } }"),
		  "master.lua:3: shell: logfiles.l: unknown key 'folow' (known: filename, "
		  "follow)");
	CHECK_ERR(W B("shell { command = \"m\", logfiles = { l = { filename = \"/f\" } } }"),
		  "master.lua:3: shell: 'logfiles.l' must be a relative path (got '/f')");
	CHECK_ERR(W B("shell { command = \"m\", lazylogfiles = \"yes\" }"),
		  "master.lua:3: shell: 'lazylogfiles' must be true or false (got string)");
	CHECK_ERR(W B("compile { name = \"build it\", command = \"m\", logfiles = { l = \"../l\" } "
		      "}"),
		  "master.lua:3: compile 'build it': 'logfiles.l' must not contain '..' (got "
		  "'../l')");
	/* master_shell runs on the master: no worker tails its files */
	CHECK_ERR(W B("master_shell { command = \"m\", logfiles = { l = \"f\" } }"),
		  "master.lua:3: master_shell: unknown key 'logfiles' (known: name, command, env, "
		  "workdir, timeout, max_time, halt_on_failure, flunk_on_failure, "
		  "warn_on_failure, always_run, do_step_if, hide_step_if, description, "
		  "description_done, numbers, locks, decode_rc, retry)");
}

/* interpolate(...) and functions as paths: kept unrendered (step.c renders
 * them at step start and checks the result), copied into every builder. */
TEST(renderable_paths)
{
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		W "local s = shell { command = \"make\", logfiles = {\n"
		  "  i = interpolate(\"out/%(prop:buildnumber)s.log\"),\n"
		  "  f = function(p) return \"fn-\" .. p.flavour .. \".log\" end,\n"
		  "  t = { filename = interpolate(\"../%(prop:x)s\"), follow = true },\n"
		  "  p = \"plain.log\" } }\n"
		  "builder { name = \"b\", workers = { \"w1\" }, steps = { s } }\n"
		  "builder { name = \"b2\", workers = { \"w1\" }, steps = { s } }\n");
	if (!cfg)
		return;
	for (int k = 0; k < 2; k++) {
		const struct config_step *s = &config_find_builder(cfg, k ? "b2" : "b")->steps[0];
		CHECK_INT(s->nlogfiles, 4);
		if (s->nlogfiles != 4)
			continue;
		/* sorted by name: f, i, p, t */
		CHECK_STR(s->logfiles[0].name, "f");
		CHECK(s->logfiles[0].filename.fn != 0);
		CHECK(s->logfiles[0].filename.text == NULL);
		CHECK_STR(s->logfiles[1].filename.text, "out/%(prop:buildnumber)s.log");
		CHECK(s->logfiles[1].filename.interp);
		CHECK_STR(s->logfiles[2].filename.text, "plain.log");
		CHECK(!s->logfiles[2].filename.interp && !s->logfiles[2].filename.fn);
		/* '..' in a template is only known once rendered */
		CHECK_STR(s->logfiles[3].filename.text, "../%(prop:x)s");
		CHECK(s->logfiles[3].filename.interp);
		CHECK(s->logfiles[3].follow);
	}
	const struct config_step *s = &config_find_builder(cfg, "b")->steps[0];
	const struct config_step *s2 = &config_find_builder(cfg, "b2")->steps[0];
	if (s->nlogfiles == 4 && s2->nlogfiles == 4) {
		CHECK(s->logfiles[1].filename.text != s2->logfiles[1].filename.text);
		/* the function is the same one, called with the build's properties */
		json_t *props = json_pack("{s:[s,s]}", "flavour", "debug", "Builder");
		json_t *r = NULL;
		char *e = NULL;
		CHECK_INT(config_call_render(cfg, s2->logfiles[0].filename.fn, props, &r, &e), 0);
		CHECK(json_is_string(r) && !strcmp(json_string_value(r), "fn-debug.log"));
		json_decref(r);
		json_decref(props);
		free(e);
	}
	config_free(cfg);
}

int main(void)
{
	RUN(copied_sorted_every_command_kind);
	RUN(renderable_paths);
	RUN(limits);
	RUN(errors);
	return tap_done();
}
