/*
 * Slice "measure", config side: tree_size { }, deb_build { }, deb_lintian { }
 * (src/config/config-step-measure.c) and the numbers = { } option of every
 * command step (config-step-props.c): the commands written, what is copied
 * into builders, and every checkconfig error with its line.
 */
#include "config-test.h"
#include "tap.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "config/config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W "worker { name = \"w1\", password = secret(\"pw\") }\n"
#define B(step) "builder { name = \"b\", workers = { \"w1\" }, steps = {\n" step "\n} }\n"

/* The step's argv joined with spaces (a static buffer). */
static const char *argv_text(const struct config_step *s)
{
	static char out[512];
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; s->argv && i < s->nargv; i++)
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", i ? " " : "",
				      s->argv[i].text ? s->argv[i].text : "<fn>");
	return out;
}

static struct config *load_ok(const char *text)
{
	char *err;
	struct config *cfg = config_test_load(text, &err);
	if (!cfg) {
		TAP_FAIL("config did not load: %s", err ? err : "?");
		free(err);
	}
	return cfg;
}

TEST(tree_size)
{
	struct config *cfg = load_ok(W B("tree_size { }, tree_size { name = \"out\", workdir = "
					 "\"b2\", dir = \"out/x\", halt_on_failure = true }"));
	if (!cfg)
		return;
	const struct config_step *s = cfg->builder[0].steps;
	CHECK_INT(s[0].kind, CONFIG_STEP_TREE_SIZE);
	CHECK_STR(s[0].name, "treesize");
	CHECK_STR(s[0].workdir, "build");
	CHECK_STR(argv_text(&s[0]), "du -s -k .");
	CHECK_STR(s[1].name, "out");
	CHECK_STR(s[1].workdir, "b2");
	CHECK_STR(argv_text(&s[1]), "du -s -k out/x");
	CHECK(s[1].halt_on_failure);
	config_free(cfg);
}

TEST(deb_build)
{
	struct config *cfg =
		load_ok(W B("deb_build { }, deb_build { args = { \"-b\", \"-j2\" } },\n"
			    "deb_build { name = \"debuild\", command = { \"debuild\", \"-us\" }, "
			    "workdir = \"src\" }"));
	if (!cfg)
		return;
	const struct config_step *s = cfg->builder[0].steps;
	CHECK_INT(s[0].kind, CONFIG_STEP_DEB_BUILD);
	CHECK_STR(s[0].name, "dpkg-buildpackage");
	CHECK_STR(argv_text(&s[0]), "dpkg-buildpackage -us -uc -b");
	CHECK_STR(argv_text(&s[1]), "dpkg-buildpackage -b -j2");
	CHECK_STR(s[2].name, "debuild");
	CHECK_STR(argv_text(&s[2]), "debuild -us");
	CHECK_STR(s[2].workdir, "src");
	config_free(cfg);
}

TEST(deb_lintian)
{
	struct config *cfg = load_ok(
		W B("deb_lintian { }, deb_lintian { fileloc = \"../it's *.deb\", suppress_tags = "
		    "{ \"no-copyright-file\", \"bad-distribution-in-changes-file\" }, "
		    "flunk_on_failure = true, warn_on_failure = false }"));
	if (!cfg)
		return;
	const struct config_step *s = cfg->builder[0].steps;
	CHECK_INT(s[0].kind, CONFIG_STEP_DEB_LINTIAN);
	CHECK_STR(s[0].name, "lintian");
	CHECK(s[0].argv == NULL);
	CHECK_STR(s[0].command.text, "lintian -v '../'*'.changes'");
	/* Buildbot's DebLintian: warns the build, never fails it, unless told */
	CHECK(!s[0].flunk_on_failure);
	CHECK(s[0].warn_on_failure);
	CHECK_STR(s[1].command.text, "lintian -v '../it'\\''s '*'.deb' --suppress-tags "
				     "'no-copyright-file' --suppress-tags "
				     "'bad-distribution-in-changes-file'");
	CHECK(s[1].flunk_on_failure);
	CHECK(!s[1].warn_on_failure);
	config_free(cfg);
}

TEST(numbers)
{
	struct config *cfg = load_ok(
		W "local s = shell { command = \"make\", numbers = { size = \"^size: (\\\\d+)\", "
		  "cov = { file = \"cov.txt\" }, answer = function(p) return p.n * 2 end } }\n" B(
			  "s, compile { command = \"make\", numbers = { w = \"(\\\\d+) w\" } },\n"
			  "tree_size { numbers = { f = { file = \"x/y\" } } },\n"
			  "git { repourl = \"r\", numbers = { rev = \"(.*)\" } },\n"
			  "master_shell { command = \"m\", numbers = { m = \"(m)\" } }"));
	if (!cfg)
		return;
	const struct config_step *s = cfg->builder[0].steps;
	CHECK_INT(cfg->builder[0].nsteps, 5);
	/* sorted by name, copied into the builder */
	CHECK_INT(s[0].nnumbers, 3);
	if (s[0].nnumbers == 3) {
		CHECK_STR(s[0].numbers[0].name, "answer");
		CHECK_INT(s[0].numbers[0].source, CONFIG_NUMBER_FN);
		CHECK(s[0].numbers[0].fn != 0);
		CHECK(s[0].numbers[0].text == NULL);
		CHECK_STR(s[0].numbers[1].name, "cov");
		CHECK_INT(s[0].numbers[1].source, CONFIG_NUMBER_FILE);
		CHECK_STR(s[0].numbers[1].text, "cov.txt");
		CHECK_STR(s[0].numbers[2].name, "size");
		CHECK_INT(s[0].numbers[2].source, CONFIG_NUMBER_REGEX);
		CHECK_STR(s[0].numbers[2].text, "^size: (\\d+)");
		/* the function gets the properties after the step */
		json_t *props = json_pack("{s:[i,s]}", "n", 21, "Build");
		json_t *r = NULL;
		char *err = NULL;
		CHECK_INT(config_call_fn(cfg, s[0].numbers[0].fn, NULL, props, &r, &err), 0);
		CHECK(json_is_number(r) && json_number_value(r) == 42);
		json_decref(r);
		json_decref(props);
		free(err);
	}
	CHECK_INT(s[1].nnumbers, 1);
	CHECK_INT(s[2].nnumbers, 1);
	CHECK_INT(s[2].numbers[0].source, CONFIG_NUMBER_FILE);
	CHECK_INT(s[3].nnumbers, 1);
	CHECK_INT(s[4].nnumbers, 1);
	config_free(cfg);
}

/* The transfers and apply_patch take numbers too; a transfer writes no
 * stdout, so its numbers come from files and functions only. */
TEST(numbers_transfers_patch)
{
	struct config *cfg = load_ok(
		W B("file_upload { workersrc = \"a\", masterdest = \"a\", numbers = {\n"
		    "  lines = { file = \"a.lines\" }, twice = function(p) return 2 end } },\n"
		    "directory_upload { workersrc = \"d\", masterdest = \"d\",\n"
		    "  numbers = { n = { file = \"d.count\" } } },\n"
		    "file_download { mastersrc = \"m\", workerdest = \"m\",\n"
		    "  numbers = { f = function(p) return 1 end } },\n"
		    "string_download { s = \"x\", workerdest = \"x\", numbers = { s = { file = "
		    "\"x\" } },\n"
		    "  description = \"writing x\", do_step_if = function(p) return true end },\n"
		    "json_properties_download { workerdest = \"p.json\",\n"
		    "  numbers = { j = { file = \"p.json\" } } },\n"
		    "apply_patch { numbers = { hunks = \"^Hunk #(\\\\d+) succeeded\",\n"
		    "  rej = { file = \"x.rej\" } } }"));
	if (!cfg)
		return;
	const struct config_step *s = cfg->builder[0].steps;
	CHECK_INT(cfg->builder[0].nsteps, 6);
	CHECK_INT(s[0].kind, CONFIG_STEP_FILE_UPLOAD);
	CHECK_INT(s[0].nnumbers, 2);
	if (s[0].nnumbers == 2) {
		CHECK_STR(s[0].numbers[0].name, "lines");
		CHECK_INT(s[0].numbers[0].source, CONFIG_NUMBER_FILE);
		CHECK_STR(s[0].numbers[0].text, "a.lines");
		CHECK_INT(s[0].numbers[1].source, CONFIG_NUMBER_FN);
	}
	CHECK_INT(s[1].nnumbers, 1);
	CHECK_INT(s[2].nnumbers, 1);
	CHECK_INT(s[3].nnumbers, 1);
	/* the options every kind takes reach the transfers too */
	CHECK_STR(s[3].description.text, "writing x");
	CHECK(s[3].do_step_if_fn != 0);
	CHECK_INT(s[4].nnumbers, 1);
	CHECK_INT(s[5].kind, CONFIG_STEP_PATCH);
	CHECK_INT(s[5].nnumbers, 2);
	if (s[5].nnumbers == 2) {
		CHECK_INT(s[5].numbers[0].source, CONFIG_NUMBER_REGEX);
		CHECK_STR(s[5].numbers[0].text, "^Hunk #(\\d+) succeeded");
		CHECK_INT(s[5].numbers[1].source, CONFIG_NUMBER_FILE);
	}
	config_free(cfg);

	/* no stdout to search: refused, naming the kind */
	static const char *const decls[] = {
		"file_upload { workersrc = \"a\", masterdest = \"a\",",
		"directory_upload { workersrc = \"a\", masterdest = \"a\",",
		"file_download { mastersrc = \"a\", workerdest = \"a\",",
		"string_download { s = \"a\", workerdest = \"a\",",
		"json_properties_download { workerdest = \"a\",",
	};
	static const char *const kinds[] = {"file_upload", "directory_upload", "file_download",
					    "string_download", "json_properties_download"};
	for (size_t i = 0; i < ARRAY_SIZE(decls); i++) {
		char text[1024], want[512];
		snprintf(text, sizeof(text),
			 W "builder { name = \"b\", workers = { \"w1\" }, steps = {\n"
			   "%s numbers = { size = \"^size (\\\\d+)\" } }\n} }\n",
			 decls[i]);
		snprintf(want, sizeof(want),
			 "master.lua:3: %s '%s': numbers: 'size': %s has no stdout to search: give "
			 "{ file = \"path\" } or a function",
			 kinds[i], kinds[i], kinds[i]);
		CHECK_ERR(text, want);
	}
	CHECK_ERR(W B("file_upload { workersrc = \"a\", masterdest = \"a\", numbers = { n = { "
		      "file = \"../n\" } } }"),
		  "master.lua:3: file_upload 'file_upload': numbers: 'n': 'file' must not contain "
		  "'..' (got "
		  "'../n')");
}

TEST(errors)
{
	setenv("KILN_SECRET_PW", "x", 1);
	CHECK_ERR(W B("tree_size { command = \"du\" }"),
		  "master.lua:3: tree_size: 'command' is not a key of tree_size");
	CHECK_ERR(W B("tree_size { dir = \"../x\" }"),
		  "master.lua:3: tree_size: 'dir' must not contain '..' (got '../x')");
	CHECK_ERR(
		W B("tree_size { size = 1 }"),
		"master.lua:3: tree_size: unknown key 'size' (known: name, command, env, "
		"workdir, timeout, max_time, halt_on_failure, flunk_on_failure, "
		"warn_on_failure, always_run, do_step_if, hide_step_if, description, "
		"description_done, numbers, locks, decode_rc, retry, logfiles, lazylogfiles, dir)");
	CHECK_ERR(W B("deb_build { command = \"debuild\", args = { \"-b\" } }"),
		  "master.lua:3: deb_build: give 'command' or 'args', not both");
	CHECK_ERR(W B("deb_build { args = \"-b\" }"),
		  "master.lua:3: deb_build: 'args' must be a list of strings (got string)");
	CHECK_ERR(W B("deb_lintian { command = \"lintian\" }"),
		  "master.lua:3: deb_lintian: 'command' is not a key of deb_lintian");
	CHECK_ERR(W B("deb_lintian { suppress_tags = { \"a tag\" } }"),
		  "master.lua:3: deb_lintian: suppress_tags[1] must be a lintian tag name");
	CHECK_ERR(W B("deb_lintian { suppress_tags = { \"x'; rm -rf /\" } }"),
		  "master.lua:3: deb_lintian: suppress_tags[1] must be a lintian tag name");
	CHECK_ERR(W B("deb_lintian { fileloc = \"\" }"),
		  "master.lua:3: deb_lintian: 'fileloc' must be a path or a glob on one line");
	CHECK_ERR(W B("deb_lintian { fileloc = \"a\\nb\" }"),
		  "master.lua:3: deb_lintian: 'fileloc' must be a path or a glob on one line");
	/* numbers */
	CHECK_ERR(W B("shell { command = \"make\", numbers = { size = \"(\\\\d+\" } }"),
		  "master.lua:3: shell 'make': numbers: 'size': '(\\d+' is not a valid regular "
		  "expression: missing closing parenthesis at offset 4");
	CHECK_ERR(W B("shell { command = \"make\", numbers = { size = \"\\\\d+\" } }"),
		  "master.lua:3: shell 'make': numbers: 'size': the regex '\\d+' needs a capture "
		  "group (the number)");
	CHECK_ERR(W B("shell { command = \"make\", numbers = { size = \"\" } }"),
		  "master.lua:3: shell 'make': numbers: 'size': the regex must be 1 to 1024 bytes "
		  "long");
	CHECK_ERR(W B("shell { command = \"make\", numbers = { size = 3 } }"),
		  "master.lua:3: shell 'make': numbers: 'size' must be a regex, { file = \"path\" "
		  "} or a function (got number)");
	CHECK_ERR(W B("shell { command = \"make\", numbers = { size = { path = \"x\" } } }"),
		  "master.lua:3: shell 'make': numbers: 'size': unknown key 'path' (known: file)");
	CHECK_ERR(W B("shell { command = \"make\", numbers = { size = { file = \"../x\" } } }"),
		  "master.lua:3: shell 'make': numbers: 'size': 'file' must not contain '..' "
		  "(got '../x')");
	CHECK_ERR(W B("shell { command = \"make\", numbers = { size = { file = 1 } } }"),
		  "master.lua:3: shell 'make': numbers: 'size': 'file' must be a path (got "
		  "number)");
	CHECK_ERR(W B("shell { command = \"make\", numbers = { \"(a)\" } }"),
		  "master.lua:3: shell 'make': 'numbers' keys must be names");
	CHECK_ERR(W B("shell { command = \"make\", numbers = { [\"a/b\"] = \"(a)\" } }"),
		  "master.lua:3: shell 'make': 'numbers' must not contain '/' (got 'a/b')");
	CHECK_ERR(W B("shell { command = \"make\", numbers = {} }"),
		  "master.lua:3: shell 'make': 'numbers' must not be empty");
	CHECK_ERR(W B("shell { command = \"make\", numbers = \"(a)\" }"),
		  "master.lua:3: shell 'make': 'numbers' must be a table { NAME = regex | { file = "
		  "... } | function } (got string)");
	CHECK_ERR(W B("set_property { property = \"a\", value = 1, numbers = { a = \"(a)\" } }"),
		  "master.lua:3: set_property 'SetProperty': 'numbers' needs a step that runs a "
		  "command");
	CHECK_ERR(W B("log { text = \"t\", numbers = { a = \"(a)\" } }"),
		  "master.lua:3: log 'Log': 'numbers' needs a step that runs a command");
	CHECK_ERR(W B("master_shell { command = \"m\", numbers = { a = { file = \"x\" } } }"),
		  "master.lua:3: master_shell 'm': numbers: 'a': master_shell has no worker to "
		  "read a file on");
	/* one over the cap */
	char text[8192];
	size_t n = (size_t)snprintf(text, sizeof(text),
				    W "builder { name = \"b\", workers = { \"w1\" }, steps = {\n"
				      "shell { command = \"m\", numbers = {");
	for (unsigned i = 0; i <= KILN_STEP_NUMBERS_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, " n%u = \"(a)\",", i);
	snprintf(text + n, sizeof(text) - n, " } }\n} }\n");
	CHECK_ERR(text, "master.lua:3: shell 'm': 'numbers' has over 64 entries");
}

int main(void)
{
	setenv("KILN_SECRET_PW", "x", 1);
	RUN(tree_size);
	RUN(deb_build);
	RUN(deb_lintian);
	RUN(numbers);
	RUN(numbers_transfers_patch);
	RUN(errors);
	return tap_done();
}
