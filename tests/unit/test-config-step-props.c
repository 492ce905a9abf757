/*
 * set_property { }, set_properties { }, set_property_from_command { },
 * log { } and the options of every step kind (src/config/config-step-props.c):
 * what is copied into builders, the Lua calls of config_call_fn, and every
 * checkconfig error with its line.
 */
#include "tap.h"
#include "config-test.h"
#include "common/err.h"
#include "common/limits.h"
#include "config/config.h"

#include <jansson.h>
#include <stdlib.h>

#define W "worker { name = \"w1\", password = secret(\"pw\") }\n"
#define B(step) "builder { name = \"b\", workers = { \"w1\" }, steps = {\n" step "\n} }\n"

TEST(steps_are_copied)
{
	setenv("KILN_SECRET_PW", "x", 1);
	char *err;
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		W "local sp = set_property { property = \"a\", value = \"x\", description = "
		  "\"setting\", hide_step_if = true }\n"
		  "builder { name = \"b\", workers = { \"w1\" }, steps = { sp,\n"
		  " set_properties { properties = { n = 2, t = true, f = function(p) return 1 end "
		  "} },\n"
		  " set_property_from_command { command = \"v\", property = \"v\", decode_rc = { "
		  "[0] = \"success\", [3] = \"warnings\" }, retry = 2 },\n"
		  " set_property_from_command { command = \"v\", extract = \"(?<x>a)\" },\n"
		  " log { name = \"notes\", text = interpolate(\"%(prop:a)s\"), do_step_if = false "
		  "},\n"
		  " shell { command = \"make\", do_step_if = function(p) return true end, "
		  "description_done = function(p) return 'd' end } } }\n");
	if (!cfg)
		return;
	const struct config_builder *b = config_find_builder(cfg, "b");
	CHECK_INT(b->nsteps, 6);
	const struct config_step *s = b->steps;
	CHECK_INT(s[0].kind, CONFIG_STEP_SETPROP);
	CHECK_STR(s[0].name, "SetProperty");
	CHECK_INT(s[0].nprops, 1);
	CHECK_STR(s[0].props[0].name, "a");
	CHECK_STR(s[0].props[0].json, "\"x\"");
	CHECK_STR(s[0].description.text, "setting");
	CHECK(s[0].hidden);
	CHECK(!s[0].skip);
	CHECK_STR(s[1].name, "SetProperties");
	CHECK_INT(s[1].nprops, 3);
	int fns = 0, consts = 0;
	for (size_t i = 0; i < s[1].nprops; i++) {
		if (s[1].props[i].value.fn)
			fns++;
		if (s[1].props[i].json)
			consts++;
	}
	CHECK_INT(fns, 1);
	CHECK_INT(consts, 2);
	CHECK_INT(s[2].kind, CONFIG_STEP_PROPCMD);
	CHECK_STR(s[2].property, "v");
	CHECK_INT(s[2].ndecode_rc, 2);
	CHECK_INT(s[2].retry, 2);
	CHECK_STR(s[3].extract, "(?<x>a)");
	CHECK_INT(s[4].kind, CONFIG_STEP_LOG);
	CHECK_STR(s[4].log_name, "notes");
	CHECK_STR(s[4].name, "notes");
	CHECK(s[4].log_text.interp);
	CHECK(s[4].skip);
	CHECK(s[5].do_step_if_fn != 0);
	CHECK(s[5].description_done.fn != 0);

	/* config_call_fn: arguments, the properties' table, a table result */
	json_t *props = json_pack("{s:[s,s]}", "flavour", "debug", "Builder");
	json_t *args = json_pack("[s]", "success");
	json_t *r = NULL;
	err = NULL;
	CHECK_INT(config_call_fn(cfg, s[5].do_step_if_fn, args, props, &r, &err), 0);
	CHECK(json_is_true(r));
	json_decref(r);
	json_decref(args);
	json_decref(props);
	config_free(cfg);
}

TEST(call_fn_results)
{
	setenv("KILN_SECRET_PW", "x", 1);
	char *err;
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		W B("set_property_from_command { command = \"v\", extract_fn = function(rc, o, e) "
		    "if rc == 1 then return { o, e } elseif rc == 2 then return { [true] = 1 } "
		    "elseif rc == 3 then error('bad') end return { rc = rc, out = o, n = { 1, 2 } "
		    "} end }"));
	if (!cfg)
		return;
	int fn = cfg->builder[0].steps[0].extract_fn;
	CHECK(fn != 0);
	json_t *r = NULL;
	err = NULL;
	json_t *args = json_pack("[i,s,s]", 0, "o", "e");
	CHECK_INT(config_call_fn(cfg, fn, args, NULL, &r, &err), 0);
	char *t = json_dumps(r, JSON_SORT_KEYS | JSON_COMPACT);
	CHECK_STR(t, "{\"n\":[1,2],\"out\":\"o\",\"rc\":0}");
	free(t);
	json_decref(r);
	json_decref(args);
	args = json_pack("[i,s,s]", 1, "o", "e");
	CHECK_INT(config_call_fn(cfg, fn, args, NULL, &r, &err), 0);
	CHECK(json_is_array(r) && json_array_size(r) == 2);
	json_decref(r);
	json_decref(args);
	args = json_pack("[i,s,s]", 2, "o", "e");
	CHECK_INT(config_call_fn(cfg, fn, args, NULL, &r, &err), KILN_ECONFIG);
	CHECK_STR(err, "the function returned a table with a boolean key");
	free(err);
	err = NULL;
	json_decref(args);
	args = json_pack("[i,s,s]", 3, "o", "e");
	CHECK_INT(config_call_fn(cfg, fn, args, NULL, &r, &err), KILN_ECONFIG);
	CHECK(err && strstr(err, "bad"));
	free(err);
	json_decref(args);
	config_free(cfg);
}

TEST(errors)
{
	struct config *cfg;
	setenv("KILN_SECRET_PW", "x", 1);
	CHECK_ERR(W B("set_property { value = 1 }"),
		  "master.lua:3: set_property: 'property' is required");
	CHECK_ERR(W B("set_property { property = \"a\" }"),
		  "master.lua:3: set_property: 'value' is required");
	CHECK_ERR(W B("set_property { property = \"a\", value = {} }"),
		  "master.lua:3: set_property: property 'a' must be a string, a number, a "
		  "boolean, interpolate(...) or a function (got table)");
	CHECK_ERR(W B("set_properties { properties = 1 }"),
		  "master.lua:3: set_properties: 'properties' must be a table of name = value "
		  "(got number)");
	CHECK_ERR(W B("set_property_from_command { command = \"v\" }"),
		  "master.lua:3: set_property_from_command 'v': give 'property', 'extract' or "
		  "'extract_fn'");
	CHECK_ERR(W B("set_property_from_command { command = \"v\", property = \"a\", "
		      "extract_fn = function() end }"),
		  "master.lua:3: set_property_from_command 'v': 'extract_fn' excludes "
		  "'property' and 'extract'");
	CHECK_ERR(W B("set_property_from_command { command = \"v\", extract = \"(a\" }"),
		  "master.lua:3: set_property_from_command 'v': extract: '(a' is not a valid "
		  "regular expression: missing closing parenthesis at offset 2");
	CHECK_ERR(W B("set_property_from_command { command = \"v\", extract = \"(a)\" }"),
		  "master.lua:3: set_property_from_command 'v': extract without named groups "
		  "needs 'property' (the name of what it matches)");
	CHECK_ERR(W B("log { name = \"n\" }"), "master.lua:3: log 'n': 'text' is required");
	CHECK_ERR(W B("log { text = {} }"),
		  "master.lua:3: log: 'text' must be a string, interpolate(...) or a function "
		  "(got table)");
	/* master_shell: workdir under the master's base directory, none by default */
	cfg = CONFIG_TEST_LOAD_OK(
		W B("master_shell { command = \"a\" }, master_shell { command = \"b\", "
		    "workdir = \"x\", retry = 1 }"));
	CHECK(cfg && cfg->builder[0].steps[0].kind == CONFIG_STEP_MASTERSHELL);
	CHECK(cfg && cfg->builder[0].steps[0].workdir == NULL);
	CHECK(cfg && cfg->builder[0].steps[1].workdir &&
	      !strcmp(cfg->builder[0].steps[1].workdir, "x"));
	config_free(cfg);
	CHECK_ERR(W B("master_shell { command = \"a\", workdir = \"../x\" }"),
		  "master.lua:3: master_shell: 'workdir' must not contain '..' (got '../x')");
	/* git's own retry = { delay, repeats } is not the step option */
	cfg = CONFIG_TEST_LOAD_OK(W B("git { repourl = \"x\", retry = { 1, 2 } }"));
	CHECK(cfg && cfg->builder[0].steps[0].retry == 0);
	config_free(cfg);
	CHECK_ERR(W B("shell { command = \"make\", do_step_if = 1 }"),
		  "master.lua:3: shell 'make': 'do_step_if' must be a boolean or a function "
		  "(got number)");
	CHECK_ERR(W B("shell { command = \"make\", hide_step_if = \"yes\" }"),
		  "master.lua:3: shell 'make': 'hide_step_if' must be a boolean or a function "
		  "(got string)");
	CHECK_ERR(W B("shell { command = \"make\", description = true }"),
		  "master.lua:3: shell 'make': 'description' must be a string, "
		  "interpolate(...) or a function (got boolean)");
	CHECK_ERR(W B("shell { command = \"make\", retry = 101 }"),
		  "master.lua:3: shell 'make': 'retry' must be between 0 and 100 (got 101)");
	CHECK_ERR(W B("shell { command = \"make\", decode_rc = { [0] = \"fine\" } }"),
		  "master.lua:3: shell 'make': decode_rc[0] must be \"success\", \"warnings\", "
		  "\"failure\", \"skipped\", \"exception\", \"retry\" or \"cancelled\"");
	CHECK_ERR(W B("shell { command = \"make\", decode_rc = { a = \"success\" } }"),
		  "master.lua:3: shell 'make': 'decode_rc' keys must be exit codes (integers)");
	CHECK_ERR(W B("shell { command = \"make\", decode_rc = {} }"),
		  "master.lua:3: shell 'make': 'decode_rc' must not be empty");
	CHECK_ERR(W B("apply_patch { retry = 1 }"),
		  "master.lua:3: apply_patch: unknown key 'retry' (known: name, workdir, tool, "
		  "always_run, do_step_if, hide_step_if, description, description_done, numbers)");
	/* apply_patch takes the options of every step */
	cfg = CONFIG_TEST_LOAD_OK(
		W B("apply_patch { do_step_if = false, hide_step_if = true, "
		    "description = \"patching\", description_done = \"patched\" }"));
	CHECK(cfg && cfg->builder[0].steps[0].kind == CONFIG_STEP_PATCH);
	CHECK(cfg && cfg->builder[0].steps[0].skip && cfg->builder[0].steps[0].hidden);
	CHECK(cfg && cfg->builder[0].steps[0].description.text &&
	      !strcmp(cfg->builder[0].steps[0].description.text, "patching"));
	config_free(cfg);
	CHECK_ERR(W B("set_property { property = \"a\", value = 1, retry = 1 }"),
		  "master.lua:3: set_property: unknown key 'retry' (known: name, property, value, "
		  "halt_on_failure, flunk_on_failure, warn_on_failure, always_run, do_step_if, "
		  "hide_step_if, description, description_done, numbers)");
}

int main(void)
{
	RUN(steps_are_copied);
	RUN(call_fn_results);
	RUN(errors);
	return tap_done();
}
