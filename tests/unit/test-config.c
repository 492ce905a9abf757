/*
 * Unit tests for src/config: the sample loads, every default, every error
 * with its exact line, the sandbox (missing libraries, memory and
 * instruction limits), and secrets from files and the environment
 * (`kiln checkconfig` / `create-master` are tested in test-kiln.c).
 */
#include "tap.h"
#include "config-test.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/kiln-test-config-XXXXXX";

static void write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
	char *path = xasprintf("%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK_INT(write(fd, text, strlen(text)), strlen(text));
		close(fd);
	}
	free(path);
}

#define W1 "worker { name = \"w1\", password = secret(\"w1\") }\n"
#define STEP "shell { command = \"make\" }"

TEST(sample_loads)
{
	struct config *cfg = CONFIG_TEST_LOAD_OK(config_sample);
	if (!cfg)
		return;
	CHECK_STR(cfg->title, "Kiln");
	CHECK_INT(cfg->nworkers, 1);
	CHECK_STR(cfg->worker[0].name, "worker1");
	CHECK_STR(cfg->worker[0].password, "sample-password");
	CHECK_INT(cfg->nbuilders, 1);
	const struct config_builder *b = config_find_builder(cfg, "hello");
	CHECK(b != NULL);
	if (b) {
		CHECK_INT(b->nsteps, 2);
		CHECK_STR(b->steps[0].name, "greet");
		CHECK_STR(b->steps[0].argv[0].text, "echo");
		CHECK_STR(b->steps[0].argv[1].text, "hello from Kiln");
		CHECK(b->steps[0].nargv == 2);
		CHECK(b->steps[0].halt_on_failure);
		CHECK_STR(b->steps[1].command.text, "uname -a && pwd");
		CHECK_INT(b->steps[1].nenv, 1);
		CHECK_INT((int)b->steps[1].timeout, 60);
	}
	CHECK(config_find_worker(cfg, "worker1") != NULL);
	CHECK(config_find_worker(cfg, "nobody") == NULL);
	CHECK_INT(cfg->nschedulers, 1);
	CHECK_STR(cfg->scheduler[0].name, "force");
	CHECK_INT(cfg->nsecrets, 1);
	CHECK_STR(cfg->secrets[0], "sample-password");
	CHECK_STR(cfg->db_url, "sqlite:state.sqlite");
	config_free(cfg);
	/* the sample must not offer a database the master cannot open */
	CHECK(strstr(config_sample, "or PostgreSQL:\n-- \"postgresql://USER@HOST/DB\"") != NULL);
}

TEST(empty_config_has_defaults)
{
	struct config *cfg = CONFIG_TEST_LOAD_OK("");
	if (!cfg)
		return;
	CHECK_STR(cfg->title, "Kiln");
	CHECK(cfg->title_url == NULL);
	CHECK(cfg->url == NULL);
	CHECK_STR(cfg->http.host, "127.0.0.1");
	CHECK_INT(cfg->http.port, 8010);
	CHECK_STR(cfg->workers.host, "127.0.0.1");
	CHECK_INT(cfg->workers.port, 9989);
	CHECK_STR(cfg->db_url, "sqlite:state.sqlite");
	CHECK_INT(cfg->nworkers, 0);
	CHECK_INT(cfg->nbuilders, 0);
	CHECK_INT(cfg->nschedulers, 0); /* no builders: no implicit force scheduler */
	config_free(cfg);
}

TEST(declaration_defaults)
{
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		W1
		"builder { name = \"b\", workers = { \"w1\" },\n"
		"  steps = { shell { command = { \"make\", \"-C\", \"src/x\", \"all\" } },\n"
		"            shell { command = \"  ./configure --prefix=/usr  && make\" } } }\n");
	if (!cfg)
		return;
	CHECK_INT(cfg->worker[0].max_builds, 1);
	CHECK_INT(cfg->worker[0].line, 1);
	const struct config_builder *b = &cfg->builder[0];
	CHECK_INT(b->line, 2);
	CHECK(b->description == NULL);
	CHECK_INT(b->ntags, 0);
	CHECK(b->tags != NULL && b->tags[0] == NULL);
	CHECK_STR(b->builddir, "b");
	CHECK_INT(b->nworkers, 1);
	CHECK_STR(b->workers[0], "w1");
	const struct config_step *s = &b->steps[0];
	CHECK_INT(s->kind, CONFIG_STEP_SHELL);
	CHECK_STR(s->name, "make -C src_x");
	CHECK(s->command.text == NULL && !s->command.fn);
	CHECK_INT(s->nenv, 0);
	CHECK_STR(s->workdir, "build");
	CHECK(s->timeout == 1200);
	CHECK(s->max_time == 0);
	CHECK(!s->halt_on_failure);
	CHECK(s->flunk_on_failure);
	CHECK(!s->warn_on_failure);
	CHECK(!s->always_run);
	CHECK_INT(s->line, 3);
	CHECK_STR(b->steps[1].name, "configure --prefix=_usr &&");
	CHECK(b->steps[1].argv == NULL);
	CHECK_INT(b->steps[1].line, 4);
	/* implicit force scheduler over every builder */
	CHECK_INT(cfg->nschedulers, 1);
	CHECK_STR(cfg->scheduler[0].name, "force");
	CHECK_INT(cfg->scheduler[0].kind, CONFIG_SCHED_FORCE);
	CHECK_INT(cfg->scheduler[0].nbuilders, 1);
	CHECK_STR(cfg->scheduler[0].builders[0], "b");
	CHECK_INT(cfg->scheduler[0].line, 0);
	config_free(cfg);
}

TEST(every_key_is_read)
{
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		"title = \"My CI\"\n"
		"title_url = \"https://example.org/\"\n"
		"url = \"http://ci.example.org:8010/\"\n"
		"http = { listen = \"0.0.0.0:0\" }\n"
		"workers_listen = \"[::1]:19989\"\n"
		"database = \"sqlite:/var/lib/kiln/state.db\"\n"
		"local w = worker { name = \"w1\", password = secret(\"w1\"), max_builds = 3 }\n"
		"worker { name = \"w2\", password = secret(\"w2\"), max_builds = 2.0 }\n"
		"local compile = shell { name = \"compile\", command = { \"make\", \"-j\", 4 },\n"
		"  env = { CFLAGS = \"-O2\", UNSET_ME = false, JOBS = 4, TOKEN = secret(\"w1\") "
		"},\n"
		"  workdir = \"build/sub\", timeout = 0, max_time = 3600.5, halt_on_failure = "
		"true,\n"
		"  flunk_on_failure = false, warn_on_failure = true, always_run = true }\n"
		"local b = builder { name = \"hello\", workers = { w, \"w2\" }, description = "
		"\"d\",\n"
		"  tags = { \"c\", \"fast\" }, builddir = \"hello-dir\", steps = { compile, "
		"compile } }\n"
		"force_scheduler { name = \"go\", builders = { b } }\n"
		"force_scheduler { name = \"all\" }\n"
		"assert(title == \"My CI\" and http.listen == \"0.0.0.0:0\")\n");
	if (!cfg)
		return;
	CHECK_STR(cfg->title, "My CI");
	CHECK_STR(cfg->title_url, "https://example.org/");
	CHECK_STR(cfg->url, "http://ci.example.org:8010/");
	CHECK_STR(cfg->http.host, "0.0.0.0");
	CHECK_INT(cfg->http.port, 0);
	CHECK_STR(cfg->workers.host, "::1");
	CHECK_INT(cfg->workers.port, 19989);
	CHECK_STR(cfg->db_url, "sqlite:/var/lib/kiln/state.db");
	CHECK_INT(cfg->nworkers, 2);
	CHECK_INT(cfg->worker[0].max_builds, 3);
	CHECK_INT(cfg->worker[1].max_builds, 2);
	CHECK_STR(cfg->worker[0].password, "pw-one");
	CHECK_STR(cfg->worker[1].password, "pw-two");
	const struct config_builder *b = &cfg->builder[0];
	CHECK_STR(b->description, "d");
	CHECK_INT(b->ntags, 2);
	CHECK_STR(b->tags[1], "fast");
	CHECK_STR(b->builddir, "hello-dir");
	CHECK_STR(b->workers[0], "w1");
	CHECK_STR(b->workers[1], "w2");
	CHECK_INT(b->nsteps, 2);
	for (size_t i = 0; i < b->nsteps; i++) {
		const struct config_step *s = &b->steps[i];
		CHECK_STR(s->name, "compile");
		CHECK_STR(s->argv[2].text, "4");
		CHECK_INT(s->nenv, 4); /* sorted by name */
		CHECK_STR(s->env[0].name, "CFLAGS");
		CHECK_STR(s->env[0].value.text, "-O2");
		CHECK_STR(s->env[1].name, "JOBS");
		CHECK_STR(s->env[1].value.text, "4");
		CHECK_STR(s->env[2].name, "TOKEN");
		CHECK_STR(s->env[2].value.text, "pw-one");
		CHECK_STR(s->env[3].name, "UNSET_ME");
		CHECK(s->env[3].value.text == NULL);
		CHECK_STR(s->workdir, "build/sub");
		CHECK(s->timeout == 0);
		CHECK(s->max_time == 3600.5);
		CHECK(s->halt_on_failure && !s->flunk_on_failure && s->warn_on_failure &&
		      s->always_run);
		CHECK_INT(s->line, 9);
	}
	CHECK_INT(cfg->nschedulers, 2); /* declared: no implicit one */
	CHECK_STR(cfg->scheduler[0].name, "go");
	CHECK_STR(cfg->scheduler[0].builders[0], "hello");
	CHECK_INT(cfg->scheduler[0].line, 15);
	CHECK_STR(cfg->scheduler[1].name, "all");
	CHECK_INT(cfg->scheduler[1].nbuilders, 1);
	CHECK_INT(cfg->nsecrets, 2);
	config_free(cfg);
}

TEST(syntax_and_runtime_errors_carry_lines)
{
	CHECK_ERR("title = \"x\"\n\nbuilder {\n  name = \"b\",,\n}\n",
		  "master.lua:4: unexpected symbol near ','");
	CHECK_ERR("\n\nlocal x = nil + 1\n",
		  "master.lua:3: attempt to perform arithmetic on a nil value");
	CHECK_ERR("\nbuidler { name = \"b\" }\n",
		  "master.lua:2: attempt to call a nil value (global 'buidler')");
	CHECK_ERR("error(\"boom\")", "master.lua:1: boom");
	CHECK_ERR("error(\"boom\", 0)", "master.lua: boom");
	CHECK_ERR("error({})", "master.lua: error object is a table value");
	CHECK_ERR("error(\"a\\nb\")", "master.lua:1: a b");
	CHECK_ERR("\x1bLua", "master.lua: attempt to load a binary chunk (mode is 't')");
}

TEST(setting_errors)
{
	CHECK_ERR(
		"\ntitel = \"x\"\n",
		"master.lua:2: unknown setting 'titel' (declare your own variables with 'local')");
	CHECK_ERR(
		"function helper() end",
		"master.lua:1: unknown setting 'helper' (declare your own variables with 'local')");
	CHECK_ERR("title = 5", "master.lua:1: setting: 'title' must be a string (got number)");
	CHECK_ERR("\n\nurl = \"ftp://x\"",
		  "master.lua:3: 'url' must be an http:// or https:// URL (got 'ftp://x')");
	CHECK_ERR("http = \"127.0.0.1:80\"",
		  "master.lua:1: 'http' must be a table: http = { listen = \"127.0.0.1:8010\" }");
	CHECK_ERR("http = { lisen = \"127.0.0.1:80\" }",
		  "master.lua:1: http: unknown key 'lisen' (known: listen)");
	CHECK_ERR(
		"http = { listen = \"127.0.0.1:65536\" }",
		"master.lua:1: 'http.listen' must be HOST:PORT with a numeric address or localhost "
		"and a port 0-65535 (got '127.0.0.1:65536')");
	CHECK_ERR("workers_listen = \"example.org:99\"",
		  "master.lua:1: 'workers_listen' must be HOST:PORT with a numeric address or "
		  "localhost and a port 0-65535 (got 'example.org:99')");
	CHECK_ERR("workers_listen = \"::1:99\"",
		  "master.lua:1: 'workers_listen' must be HOST:PORT with a numeric address or "
		  "localhost and a port 0-65535 (got '::1:99')");
	CHECK_ERR("database = \"mysql://x\"",
		  "master.lua:1: 'database' must be \"sqlite:PATH\" or \"postgresql://...\" (got "
		  "'mysql://x')");
	CHECK_ERR("database = \"sqlite:\"",
		  "master.lua:1: 'database' must be \"sqlite:PATH\" or \"postgresql://...\" (got "
		  "'sqlite:')");
	/* PostgreSQL's URLs are taken as they are (libpq checks them when the
	 * master opens one); one with a NUL byte is refused without being
	 * echoed (it may hold a password) */
	CHECK_ERR("database = \"postgresql://kiln:pw@db/kiln\\0x\"",
		  "master.lua:1: setting: 'database' must not contain NUL bytes");
	/* several masters' heartbeats */
	CHECK_ERR("masters = { heartbeat = 5, dead_after = 9 }",
		  "master.lua:1: masters: 'dead_after' (9 s) must be at least twice 'heartbeat' "
		  "(5 s): a master is not declared dead for one late heartbeat");
	CHECK_ERR_HAS("masters = { heartbeat = 0 }", "'heartbeat' must be at least 0.1 seconds");
	CHECK_ERR_HAS("masters = { every = 1 }", "every");
	CHECK_ERR_HAS("masters = 5", "'masters' must be a table");
	struct config *mc = CONFIG_TEST_LOAD_OK("masters = { heartbeat = 0.5, dead_after = 3 }");
	if (mc)
		CHECK(mc->master_heartbeat == 0.5 && mc->master_dead_after == 3);
	config_free(mc);
	mc = CONFIG_TEST_LOAD_OK("title = 'x'");
	if (mc)
		CHECK(mc->master_heartbeat == 5 && mc->master_dead_after == 30);
	config_free(mc);
	struct config *pgc = CONFIG_TEST_LOAD_OK("database = \"postgresql:///kiln?host=/x\"");
	if (pgc)
		CHECK_STR(pgc->db_url, "postgresql:///kiln?host=/x");
	config_free(pgc);
	pgc = CONFIG_TEST_LOAD_OK("database = \"postgres://kiln@db/kiln\"");
	if (pgc)
		CHECK_STR(pgc->db_url, "postgres://kiln@db/kiln");
	config_free(pgc);
	/* KILN_DATABASE replaces master.lua's, under the same rule */
	setenv("KILN_DATABASE", "postgresql:///other?host=/y", 1);
	pgc = CONFIG_TEST_LOAD_OK("database = \"sqlite:state.sqlite\"");
	if (pgc)
		CHECK_STR(pgc->db_url, "postgresql:///other?host=/y");
	config_free(pgc);
	setenv("KILN_DATABASE", "sqlite:", 1);
	CHECK_ERR("title = 'x'",
		  "KILN_DATABASE: 'database' must be \"sqlite:PATH\" or \"postgresql://...\" (got "
		  "'sqlite:')");
	setenv("KILN_DATABASE", "sqlite:elsewhere.sqlite", 1);
	pgc = CONFIG_TEST_LOAD_OK("title = 'x'");
	if (pgc)
		CHECK_STR(pgc->db_url, "sqlite:elsewhere.sqlite");
	config_free(pgc);
	setenv("KILN_DATABASE", "", 1); /* empty: master.lua's */
	pgc = CONFIG_TEST_LOAD_OK("database = \"sqlite:a.sqlite\"");
	if (pgc)
		CHECK_STR(pgc->db_url, "sqlite:a.sqlite");
	config_free(pgc);
	unsetenv("KILN_DATABASE");
	CHECK_ERR(
		"http = { listen = \"127.0.0.1:7000\" }\n\nworkers_listen = \"127.0.0.1:7000\"\n",
		"master.lua:3: workers_listen '127.0.0.1:7000' is the same address as http.listen");
}

TEST(worker_errors)
{
	CHECK_ERR("\n\nworker { name = \"w1\", password = \"hunter2\" }",
		  "master.lua:3: worker 'w1': password must come from secret(...)");
	CHECK_ERR("worker { name = \"w1\" }",
		  "master.lua:1: worker 'w1': 'password' is required: password = secret(\"w1\")");
	CHECK_ERR("worker { name = \"w1\", password = 5 }",
		  "master.lua:1: worker 'w1': 'password' must be a secret(...) (got number)");
	CHECK_ERR("worker { password = secret(\"w1\") }",
		  "master.lua:1: worker: 'name' is required");
	CHECK_ERR("worker { nmae = \"w1\", password = secret(\"w1\") }",
		  "master.lua:1: worker: unknown key 'nmae' (known: name, password, max_builds, "
		  "properties, notify_on_missing, missing_timeout, reattach_grace, latent)");
	CHECK_ERR("worker { name = \"w1\", password = secret(\"w1\"), max_build = 2 }",
		  "master.lua:1: worker 'w1': unknown key 'max_build' (known: name, password, "
		  "max_builds, properties, notify_on_missing, missing_timeout, reattach_grace, "
		  "latent)");
	CHECK_ERR("worker { name = \"w1\", password = secret(\"w1\"), max_builds = 0 }",
		  "master.lua:1: worker 'w1': 'max_builds' must be between 1 and 1000000 (got 0)");
	CHECK_ERR("worker { name = \"w1\", password = secret(\"w1\"), max_builds = 1.5 }",
		  "master.lua:1: worker 'w1': 'max_builds' must be an integer (got number)");
	CHECK_ERR("worker { name = \"a/b\", password = secret(\"w1\") }",
		  "master.lua:1: worker 'a/b': 'name' must not contain '/' (got 'a/b')");
	CHECK_ERR("worker { name = \"\", password = secret(\"w1\") }",
		  "master.lua:1: worker '': 'name' must not be empty");
	CHECK_ERR("worker { name = string.rep(\"x\", 201), password = secret(\"w1\") }",
		  "master.lua:1: worker: 'name' is longer than 200 bytes");
	CHECK_ERR("worker { name = 7, password = secret(\"w1\") }",
		  "master.lua:1: worker: 'name' must be a string (got number)");
	CHECK_ERR(W1 "\n" W1, "master.lua:3: worker 'w1' is already declared at line 1");
	/* a declaration that failed inside pcall() does not count */
	CHECK_ERR("pcall(worker, { name = 'w1', password = 'x' })\n"
		  "builder { name = 'b', workers = { 'w1' }, steps = { " STEP " } }",
		  "master.lua:2: builder 'b': unknown worker 'w1' (declare it with worker { name = "
		  "\"w1\", ... })");
	CHECK_ERR("worker \"w1\"",
		  "master.lua:1: worker: expected one table: worker { name = ..., ... }");
	CHECK_ERR("worker { \"w1\", password = secret(\"w1\") }",
		  "master.lua:1: worker: unexpected "
		  "value without a key (write key = "
		  "value)"); /* every step kind given
			      * a string (found by
			      * fuzz-config:
			      * test"make" read a key
			      * from the string and
			      * crashed) */
	CHECK_ERR("local s = test\"make\"",
		  "master.lua:1: test: expected one table: test { name = ..., ... }");
	CHECK_ERR("local s = shell(7)",
		  "master.lua:1: shell: expected one table: shell { name = ..., ... }");
	CHECK_ERR("local s = compile(\"a\", \"b\")",
		  "master.lua:1: compile: expected one table: compile { name = ..., ... }");
	CHECK_ERR("local s = apply_patch(true)",
		  "master.lua:1: apply_patch: expected one table: apply_patch { name = ..., ... }");
}

TEST(builder_errors)
{
	CHECK_ERR(
		W1 "builder { name = \"b\",\n  workers = { \"w1\" },\n  steps = { shell { command "
		   "= \"make\" } },\n  tagz = { } }",
		"master.lua:2: builder 'b': unknown key 'tagz' (known: name, workers, description, "
		"tags, builddir, steps, collapse_requests, cancel_superseded, properties, env, "
		"regression, locks, next_worker, next_build, retention)");
	CHECK_ERR(W1 "\n\nbuilder { name = \"b\", workers = { \"w9\" }, steps = { " STEP " } }\n",
		  "master.lua:4: builder 'b': unknown worker 'w9' (declare it with worker { name = "
		  "\"w9\", ... })");
	CHECK_ERR(W1 "builder { name = \"b\", steps = { " STEP " } }",
		  "master.lua:2: builder 'b': 'workers' is required: workers = { \"worker1\" }");
	CHECK_ERR(W1 "builder { name = \"b\", workers = { }, steps = { " STEP " } }",
		  "master.lua:2: builder 'b': 'workers' must name at least one worker");
	CHECK_ERR(W1 "builder { name = \"b\", workers = \"w1\", steps = { " STEP " } }",
		  "master.lua:2: builder 'b': 'workers' must be a list of names (got string)");
	CHECK_ERR(W1 "builder { name = \"b\", workers = { \"w1\", \"w1\" }, steps = { " STEP " } }",
		  "master.lua:2: builder 'b': 'workers' lists 'w1' twice");
	CHECK_ERR(
		W1 "builder { name = \"b\", workers = { \"w1\", x = 1 }, steps = { " STEP " } }",
		"master.lua:2: builder 'b': 'workers' must be a list of names (it has other keys)");
	CHECK_ERR(W1 "builder { name = \"b\", workers = { \"w1\" } }",
		  "master.lua:2: builder 'b': 'steps' is required: steps = { shell { ... } }");
	CHECK_ERR(W1 "builder { name = \"b\", workers = { \"w1\" }, steps = { } }",
		  "master.lua:2: builder 'b': 'steps' must list at least one step");
	CHECK_ERR(W1
		  "builder { name = \"b\", workers = { \"w1\" }, steps = { { command = \"x\" } } }",
		  "master.lua:2: builder 'b': steps[1] must be a step such as shell { ... } (got "
		  "table)");
	CHECK_ERR(
		W1
		"builder { name = \"b\", workers = { \"w1\" }, builddir = \"../x\", steps = { " STEP
		" } }",
		"master.lua:2: builder 'b': 'builddir' must not contain '..' (got '../x')");
	CHECK_ERR(W1
		  "builder { name = \"b\", workers = { \"w1\" }, builddir = \"/x\", steps = { " STEP
		  " } }",
		  "master.lua:2: builder 'b': 'builddir' must be a relative path (got '/x')");
	CHECK_ERR(W1
		  "builder { name = \"b\", workers = { \"w1\" }, tags = { \"\" }, steps = { " STEP
		  " } }",
		  "master.lua:2: builder 'b': tags must be 1 to 200 bytes long");
	CHECK_ERR(W1 "builder { name = \"b\", workers = { \"w1\" }, steps = { " STEP " } }\n"
		     "builder { name = \"b\", workers = { \"w1\" }, steps = { " STEP " } }\n",
		  "master.lua:3: builder 'b' is already declared at line 2");
}

TEST(step_errors)
{
	CHECK_ERR("\nshell { }", "master.lua:2: shell: 'command' is required");
	CHECK_ERR("shell { command = \"  \" }", "master.lua:1: shell: 'command' must not be empty");
	CHECK_ERR("shell { command = { } }", "master.lua:1: shell: 'command' must not be empty");
	CHECK_ERR("shell { command = { \"\" } }",
		  "master.lua:1: shell: 'command' must not start with an empty word");
	CHECK_ERR("shell { command = { \"a\", {} } }",
		  "master.lua:1: shell: 'command' must be a string (got table)");
	CHECK_ERR("shell { command = true }",
		  "master.lua:1: shell: 'command' must be a string, a list of strings, "
		  "interpolate(...) or a function (got boolean)");
	CHECK_ERR("shell { command = \"make\", timeout = -1 }",
		  "master.lua:1: shell: 'timeout' must be between 0 and 31622400 seconds");
	CHECK_ERR("shell { command = \"make\", max_time = \"1h\" }",
		  "master.lua:1: shell: 'max_time' must be a number of seconds (got string)");
	CHECK_ERR("shell { name = \"c\", command = \"make\", halt_on_failure = 1 }",
		  "master.lua:1: shell 'c': 'halt_on_failure' must be true or false (got number)");
	CHECK_ERR("shell { command = \"make\", env = { A = true } }",
		  "master.lua:1: shell: env: 'A' must be a string, a number, secret(...), "
		  "interpolate(...), a function or false to unset (got boolean)");
	CHECK_ERR("shell { command = \"make\", env = { \"x\" } }",
		  "master.lua:1: shell: 'env' keys must be variable names (got number)");
	CHECK_ERR("shell { command = \"make\", env = { [\"A=B\"] = \"x\" } }",
		  "master.lua:1: shell: env: 'A=B' is not a valid variable name");
	CHECK_ERR("shell { command = \"make\", workdir = \"/tmp\" }",
		  "master.lua:1: shell: 'workdir' must be a relative path (got '/tmp')");
	CHECK_ERR("shell { command = \"make\", comand = \"x\" }",
		  "master.lua:1: shell: unknown key 'comand' (known: name, command, env, workdir, "
		  "timeout, max_time, halt_on_failure, flunk_on_failure, warn_on_failure, "
		  "always_run, do_step_if, hide_step_if, description, description_done, numbers, "
		  "locks, decode_rc, retry, logfiles, lazylogfiles)");
	CHECK_ERR("shell {\n  name = \"a/b\",\n  command = \"make\" }",
		  "master.lua:1: shell 'a/b': 'name' must not contain '/' (got 'a/b')");
	CHECK_ERR("shell { command = \"a\\0b\" }",
		  "master.lua:1: shell: 'command' must not contain NUL bytes");
}

TEST(git_step)
{
	CHECK_ERR("git { }", "master.lua:1: git: 'repourl' is required: repourl = \"https://...\"");
	CHECK_ERR("git { repourl = \"\" }", "master.lua:1: git: 'repourl' must not be empty");
	CHECK_ERR(
		"git { repourl = \"r\", mode = \"fast\" }",
		"master.lua:1: git: 'mode' must be one of \"incremental\", \"full\" (got 'fast')");
	CHECK_ERR("git { repourl = \"r\", method = \"clobber\" }",
		  "master.lua:1: git: 'method' applies to mode = \"full\" only");
	CHECK_ERR("git { repourl = \"r\", retry = { 1 } }",
		  "master.lua:1: git: 'retry' must be { delay_seconds, repeats }");
	CHECK_ERR("git { repourl = \"r\", retry = { 1, -1 } }",
		  "master.lua:1: git: retry's repeats must be an integer from 0 to 100");
	CHECK_ERR("git { repourl = \"r\", shallow = -2 }",
		  "master.lua:1: git: 'shallow' must be between 0 and 1000000 (got -2)");
	struct config *cfg =
		CONFIG_TEST_LOAD_OK(W1 "builder { name = \"b\", workers = { \"w1\" }, steps = {\n"
				       "  git { repourl = \"https://x/y.git\", mode = \"full\", "
				       "method = \"copy\", shallow = true, retry = { 5, 2 }, "
				       "codebase = \"cb\" } } }");
	if (cfg) {
		const struct config_step *st = &cfg->builder[0].steps[0];
		CHECK_INT(st->kind, CONFIG_STEP_GIT);
		CHECK_STR(st->name, "git");
		CHECK_STR(st->source->repourl.text, "https://x/y.git");
		CHECK_INT(st->source->mode, CONFIG_SOURCE_FULL);
		CHECK_INT(st->source->method, CONFIG_SOURCE_COPY);
		CHECK_INT(st->source->shallow, 1);
		CHECK_INT(st->source->retry_repeats, 2);
		CHECK(st->source->retry_delay == 5);
		CHECK_STR(st->source->codebase, "cb");
		config_free(cfg);
	}
}

TEST(scheduler_errors)
{
	const char *base =
		W1 "builder { name = \"b\", workers = { \"w1\" }, steps = { " STEP " } }\n";
	char *t = xasprintf("%s\nforce_scheduler { builders = { \"b\", \"nope\" } }", base);
	CHECK_ERR(t, "master.lua:4: force_scheduler 'force': unknown builder 'nope'");
	free(t);
	t = xasprintf("%sforce_scheduler { }\nforce_scheduler { }", base);
	CHECK_ERR(t, "master.lua:4: scheduler 'force' is already declared at line 3");
	free(t);
	t = xasprintf("%sforce_scheduler { builders = { } }", base);
	CHECK_ERR(t, "master.lua:3: force_scheduler 'force': 'builders' must name at least one "
		     "builder");
	free(t);
	CHECK_ERR("force_scheduler { }",
		  "master.lua:1: force_scheduler 'force': there are no builders to force");
	CHECK_ERR(
		"force_scheduler { name = \"f\", builder = { } }",
		"master.lua:1: force_scheduler 'f': unknown key 'builder' (known: name, builders, "
		"priority, properties, branch, repository, project, codebase, params, branches, "
		"revisions, repositories, projects, codebases)");
}

TEST(sandbox_has_no_dangerous_libraries)
{
	setenv("KILN_TEST_VAR", "v", 1);
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		"assert(io == nil and debug == nil and package == nil)\n"
		"assert(require == nil and dofile == nil and loadfile == nil)\n"
		"assert(load == nil and collectgarbage == nil)\n"
		"assert(os.execute == nil and os.remove == nil and os.rename == nil)\n"
		"assert(os.exit == nil and os.tmpname == nil)\n"
		"assert(os.getenv('KILN_TEST_VAR') == 'v' and os.getenv('KILN_NOPE') == nil)\n"
		"assert(string.dump == nil and coroutine == nil)\n"
		"assert(type(os.time()) == 'number' and math.max(1, 2) == 2)\n"
		"assert(utf8.char(72) == 'H' and table.concat({'a','b'}) == 'ab')\n"
		"assert(tostring(secret('w1')) == 'secret(\"w1\")')\n"
		"assert(getmetatable(secret('w1')) == false)\n"
		"print('hello', 1)\n"
		"local ok, e = pcall(error, 'x')\n"
		"assert(not ok and e == 'x')\n"
		"assert(select(2, xpcall(function() error('y', 0) end, function(m) return m "
		".. '!' end)) == 'y!')\n");
	config_free(cfg);
	CHECK_ERR("io.open('/etc/passwd')",
		  "master.lua:1: attempt to index a nil value (global 'io')");
	CHECK_ERR("\nos.execute('true')",
		  "master.lua:2: attempt to call a nil value (field 'execute')");
	CHECK_ERR("setmetatable({}, { __gc = function() while true do end end })",
		  "master.lua:1: __gc metamethods are not allowed in master.lua");
	CHECK_ERR("local s = secret('w1') .. 'x'",
		  "master.lua:1: attempt to concatenate a secret value");
}

TEST(sandbox_limits)
{
	CHECK_ERR("\nwhile true do end",
		  "master.lua:2: instruction limit exceeded (infinite loop?)");
	/* pcall cannot swallow the limit, even in a loop around it */
	CHECK_ERR("while true do pcall(function() while true do end end) end",
		  "master.lua:1: instruction limit exceeded (infinite loop?)");
	/* deep recursion: the memory cap is reached before Lua's stack limit */
	CHECK_ERR("local function f() return f() + 1 end f()",
		  "master.lua: memory limit exceeded (64 MiB)");
	CHECK_ERR("local s = string.rep('x', 1 << 30)",
		  "master.lua: memory limit exceeded (64 MiB)");
	CHECK_ERR("local t = {} for i = 1, 1e9 do t[i] = tostring(i) .. 'xxxxxxxxxxxxxxxxxxxxxxxx' "
		  "end",
		  "master.lua: memory limit exceeded (64 MiB)");
	CHECK_ERR("local t = {} while true do pcall(function() t[#t + 1] = string.rep('y', 1e6) .. "
		  "#t end) end",
		  "master.lua: memory limit exceeded (64 MiB)");
	/* allocation is work the count hook does not see: it is counted too */
	CHECK_ERR("local t = {} while true do t[#t + 2] = string.rep('y', 1e6) .. #t end",
		  "master.lua:1: instruction limit exceeded (infinite loop?)");
	/* C copies count too: one 1 MB command copied into thousands of steps */
	CHECK_ERR(W1 "local s = shell { command = string.rep('x', 1 << 20) }\n"
		     "local l = {} for i = 1, 200 do l[i] = s end\n"
		     "for i = 1, 100 do builder { name = 'b' .. i, workers = { 'w1' }, steps = l } "
		     "end\n",
		  "master.lua: memory limit exceeded (64 MiB)");
	char *big = xmalloc(KILN_MAX_CONFIG_BYTES + 2);
	memset(big, ' ', KILN_MAX_CONFIG_BYTES + 1);
	big[KILN_MAX_CONFIG_BYTES + 1] = '\0';
	CHECK_ERR(big, "master.lua: file is larger than 4194304 bytes");
	free(big);
}

TEST(sandbox_cpu_limit)
{
	/* long string compares: few instructions, much CPU */
	CHECK_ERR("local s, t = string.rep('x', 1 << 24), string.rep('x', 1 << 24)\n"
		  "while true do local same = (s == t) end",
		  "master.lua:2: CPU time limit exceeded (10 s)");

	/* a function the master calls later has its own, smaller budget, and
	 * the message names that one */
	char *err;
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		"worker { name = 'w', password = secret('w1') }\n"
		"builder { name = 'b', workers = { 'w' }, steps = { " STEP " } }\n"
		"local s, t = string.rep('x', 1 << 24), string.rep('x', 1 << 24)\n"
		"single_branch { name = 's', builders = { 'b' }, change_filter = {\n"
		"  filter_fn = function(c) while true do local same = (s == t) end end } }\n");
	if (!cfg)
		return;
	const struct config_scheduler *sc = config_find_scheduler(cfg, "s");
	struct config_change_view c = {.branch = "main"};
	err = NULL;
	CHECK_INT(config_filter_match(cfg, &sc->filter, &c, &err), KILN_ECONFIG);
	CHECK_STR(err, "master.lua:5: CPU time limit exceeded (1 s)");
	free(err);
	config_free(cfg);
}

TEST(secrets_from_files_and_environment)
{
	char *secrets = xasprintf("%s/secrets", tmpdir);
	write_file(secrets, "nl", "with-newline\r\n\n", 0600);
	write_file(secrets, "empty", "\n", 0600);
	char huge[KILN_MAX_SECRET_BYTES + 10];
	memset(huge, 'h', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	write_file(secrets, "huge", huge, 0600);
	setenv("KILN_SECRET_FROM_ENV_1", "env-value\n", 1);
	setenv("KILN_SECRET_W1", "file-wins", 1);

	struct config *cfg =
		CONFIG_TEST_LOAD_OK("worker { name = 'a', password = secret('nl') }\n"
				    "worker { name = 'b', password = secret('from-env.1') }\n"
				    "worker { name = 'c', password = secret('w1') }\n");
	if (cfg) {
		CHECK_STR(cfg->worker[0].password, "with-newline");
		CHECK_STR(cfg->worker[1].password, "env-value");
		CHECK_STR(cfg->worker[2].password, "pw-one");
		CHECK_INT(cfg->nsecrets, 3);
		config_free(cfg);
	}

	/* without a base directory only the environment counts */
	cfg = CONFIG_TEST_LOAD_OK_IN(NULL, "worker { name = 'c', password = secret('w1') }");
	if (cfg)
		CHECK_STR(cfg->worker[0].password, "file-wins");
	config_free(cfg);

	char *want =
		xasprintf("master.lua:2: secret 'missing' not found: no file "
			  "'%s/secrets/missing' and no environment variable KILN_SECRET_MISSING",
			  tmpdir);
	CHECK_ERR("\nworker { name = 'a', password = secret('missing') }", want);
	free(want);
	CHECK_ERR("secret('empty')", "master.lua:1: secret 'empty' is empty");
	CHECK_ERR("secret('huge')", "master.lua:1: secret 'huge' is larger than 4096 bytes");
	CHECK_ERR(
		"secret('../etc/passwd')",
		"master.lua:1: secret: name must be letters, digits, '.', '_' or '-', not starting "
		"with '.' (got '../etc/passwd')");
	CHECK_ERR("local p = os.getenv('KILN_SECRET_W1')",
		  "master.lua:1: os.getenv: KILN_SECRET_W1 is a secret: use secret(...)");
	CHECK_ERR("secret()", "master.lua:1: secret: expected a name: secret(\"NAME\")");
	unsetenv("KILN_SECRET_FROM_ENV_1");
	unsetenv("KILN_SECRET_W1");
	free(secrets);
}

TEST(load_from_directory)
{
	struct config *cfg;
	char *err = NULL;
	char *dir = xasprintf("%s/nothing-here", tmpdir);
	CHECK_INT(config_load(dir, &cfg, &err), KILN_ECONFIG);
	char *want = xasprintf("cannot open '%s/master.lua': No such file or directory", dir);
	CHECK_STR(err, want);
	free(want);
	free(err);
	free(dir);

	write_file(tmpdir, "master.lua", "worker { name = 'w1', password = secret('w1') }\n", 0644);
	err = NULL;
	CHECK_INT(config_load(tmpdir, &cfg, &err), 0);
	if (!err) {
		CHECK_STR(cfg->worker[0].password, "pw-one");
		config_free(cfg);
	}
	free(err);
}

TEST(parse_listen)
{
	struct config_listen l;
	CHECK_INT(config_parse_listen("localhost:0", &l), 0);
	CHECK_STR(l.host, "localhost");
	CHECK_INT(l.port, 0);
	free(l.host);
	CHECK_INT(config_parse_listen("[::]:65535", &l), 0);
	CHECK_STR(l.host, "::");
	CHECK_INT(l.port, 65535);
	free(l.host);
	CHECK_INT(config_parse_listen("127.0.0.1", &l), -EINVAL);
	CHECK_INT(config_parse_listen(":80", &l), -EINVAL);
	CHECK_INT(config_parse_listen("1.2.3.4:", &l), -EINVAL);
	CHECK_INT(config_parse_listen("1.2.3.4:+80", &l), -EINVAL);
	CHECK_INT(config_parse_listen("[::1:80", &l), -EINVAL);
	CHECK_INT(config_parse_listen("[x]:80", &l), -EINVAL);
}

/* The text of the daemon log written while loading text (debug level). */
static char *load_log(const char *text)
{
	char *path = xasprintf("%s/log.txt", tmpdir);
	fflush(stderr);
	int saved = dup(2);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(saved >= 0 && fd >= 0);
	dup2(fd, 2);
	close(fd);
	log_set_level(LOG_DEBUG);
	char *err;
	struct config *cfg = config_test_load(text, &err);
	log_set_level(LOG_INFO);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	config_free(cfg);
	free(err);
	char *out = NULL;
	size_t cap = 65536;
	out = xmalloc(cap);
	fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, out, cap - 1) : -1;
	if (fd >= 0)
		close(fd);
	out[n > 0 ? n : 0] = '\0';
	free(path);
	return out;
}

/* print() and error lines stay whole or are visibly cut: a line past the
 * buffer's cap never comes out empty (the buffers' overflow is sticky). */
TEST(print_and_long_error_lines)
{
	char *log = load_log("print('a', 1, true)\n");
	CHECK(strstr(log, "master.lua:1: print: a\\x091\\x09true\n") != NULL);
	free(log);
	log = load_log("print(string.rep('y', 5000), 'z')\n");
	char *want = xmalloc(4096 + 8);
	memset(want, 'y', 4096);
	memcpy(want + 4096, "...\n", 5);
	const char *p = strstr(log, "print: ");
	CHECK(p != NULL);
	if (p)
		CHECK_STR(p + 7, want);
	free(want);
	free(log);

	/* a long error message is cut at 1024 bytes and marked */
	char *err;
	struct config *cfg = config_test_load("error(string.rep('x', 5000), 0)", &err);
	CHECK(cfg == NULL);
	if (!cfg) {
		CHECK_INT(strlen(err), 12 + 1024 + 3);
		CHECK(!strncmp(err, "master.lua: xxx", 15));
		CHECK_STR(err + 12 + 1024, "...");
	}
	free(err);
	config_free(cfg);
	/* a chunk name longer than the message limit still makes a whole line */
	char name[2001];
	memset(name, 'c', 2000);
	name[2000] = '\0';
	cfg = NULL;
	err = NULL;
	CHECK_INT(config_load_string(name, "error('boom', 0)", 16, NULL, &cfg, &err), KILN_ECONFIG);
	char *line = xasprintf("%s: boom", name);
	CHECK_STR(err, line);
	free(line);
	free(err);
}

/* Many declarations: the arrays grow (ARRAY_GROW) and keep every entry. */
/* slice "shrink": what a load's memory cap counts (config.c, config-step.c) */
static void config_test_fits(const char *what, const char *text)
{
	struct config *cfg = CONFIG_TEST_LOAD_OK(text);
	if (!cfg)
		printf("# that was: %s\n", what);
	config_free(cfg);
}

TEST(mem_cap_counts_live_memory)
{
	/* a step declared per builder: its copy in the builder stays, the
	 * declaration goes: 400 x 100 kB counted once (40 MB), not twice */
	config_test_fits("a step per builder",
			 W1 "for i = 1, 400 do\n"
			    "  builder { name = 'b' .. i, workers = { 'w1' }, steps = {\n"
			    "    shell { command = string.rep('x', 100000) .. i } } }\n"
			    "end\n");
	/* 48 MB kept, then 2,000 builders whose declarations leave Lua
	 * garbage (10 kB each) and C copies: the garbage is collected before
	 * a copy is refused (config_charge), as Lua collects before refusing
	 * an allocation of its own */
	config_test_fits(
		"garbage before a copy",
		W1 "local keep = {}\n"
		   "for i = 1, 48 do keep[i] = string.rep('k', 1 << 20) .. i end\n"
		   "for i = 1, 2000 do builder { name = 'b' .. i, workers = { 'w1' }, steps = {\n"
		   "  shell { command = string.rep('c', 5000) .. i } } } end\n");
	/* what stays live still counts: the cap holds */
	CHECK_ERR(W1
		  "local keep = {} for i = 1, 45 do keep[i] = string.rep('x', 1 << 20) .. i end\n"
		  "builder { name = 'b', workers = { 'w1' }, steps = { shell { command = 'true' } "
		  "},\n"
		  "          description = string.rep('y', 20 << 20) }\n",
		  "master.lua: memory limit exceeded (64 MiB)");
}

TEST(shared_worker_lists)
{
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		W1 "worker { name = 'w2', password = secret('w1') }\n"
		   "local ws = { 'w1', 'w2' }\n"
		   "for i = 1, 3 do builder { name = 'b' .. i, workers = ws, steps = "
		   "{ shell { command = 'true' } } } end\n"
		   "builder { name = 'c', workers = { 'w2', 'w1' }, steps = "
		   "{ shell { command = 'true' } } }\n"
		   "builder { name = 'd', workers = { 'w2' }, steps = "
		   "{ shell { command = 'true' } } }\n");
	if (!cfg)
		return;
	/* equal lists in a row: one copy (freed once by config_free, which
	 * the sanitizer build checks); another order or length: their own */
	CHECK(cfg->builder[1].workers == cfg->builder[0].workers);
	CHECK(cfg->builder[2].workers == cfg->builder[0].workers);
	CHECK(cfg->builder[3].workers != cfg->builder[2].workers);
	CHECK_STR(cfg->builder[3].workers[0], "w2");
	CHECK_STR(cfg->builder[3].workers[1], "w1");
	CHECK(cfg->builder[4].workers != cfg->builder[3].workers);
	CHECK_INT(cfg->builder[4].nworkers, 1);
	CHECK_STR(cfg->builder[2].workers[1], "w2");
	config_free(cfg);
}

TEST(name_list_repeats)
{
	CHECK_ERR(
		W1
		"builder { name = 'b', workers = { 'w1' }, steps = { shell { command = 'x' } } }\n"
		"force_scheduler { name = 'f', builders = { 'b', 'c', 'b' } }\n",
		"master.lua:3: force_scheduler 'f': 'builders' lists 'b' twice");
	CHECK_ERR(W1 "builder { name = 'b', workers = { 'w1', 'w1' }, steps = { shell { command = "
		     "'x' } } }\n",
		  "master.lua:2: builder 'b': 'workers' lists 'w1' twice");
}

TEST(step_kind_fields)
{
	/* a trigger's fields share storage with set_property's: neither
	 * leaks into the other in a builder's copy */
	struct config *cfg =
		CONFIG_TEST_LOAD_OK(W1 "triggerable { name = 't', builders = { 'b' } }\n"
				       "builder { name = 'b', workers = { 'w1' }, steps = {\n"
				       "  set_property { property = 'p', value = 'v' },\n"
				       "  trigger { schedulers = { 't' } },\n"
				       "  shell { command = 'true' } } }\n");
	if (!cfg)
		return;
	const struct config_builder *b = &cfg->builder[0];
	CHECK(b->steps[0].kind == CONFIG_STEP_SETPROP);
	CHECK_INT(b->steps[0].nprops, 1);
	CHECK_STR(b->steps[0].props[0].name, "p");
	CHECK(b->steps[1].kind == CONFIG_STEP_TRIGGER);
	CHECK_INT(b->steps[1].ntrigger_schedulers, 1);
	CHECK_STR(b->steps[1].trigger_schedulers[0], "t");
	CHECK(b->steps[2].source == NULL && b->steps[2].props == NULL);
	CHECK(b->steps[0].decl_charged == 0);
	CHECK(sizeof(struct config_step) <= 256);
	config_free(cfg);
}

TEST(many_declarations)
{
	char *text = xstrdup("");
	for (int i = 0; i < 200; i++) {
		char *t = xasprintf(
			"%sworker { name = 'w%d', password = secret('w1') }\n"
			"builder { name = 'b%d', workers = { 'w%d' }, steps = { " STEP " } }\n"
			"force_scheduler { name = 'f%d', builders = { 'b%d' } }\n"
			"git_poller { name = 'p%d', repository = 'https://example.org/r%d.git' }\n",
			text, i, i, i, i, i, i, i);
		free(text);
		text = t;
	}
	struct config *cfg = CONFIG_TEST_LOAD_OK(text);
	free(text);
	if (!cfg)
		return;
	CHECK_INT(cfg->nworkers, 200);
	CHECK_INT(cfg->nbuilders, 200);
	CHECK_INT(cfg->nschedulers, 200);
	CHECK_INT(cfg->npollers, 200);
	CHECK_INT(cfg->nsecrets, 1);
	CHECK(cfg->worker_alloc >= 200 && cfg->scheduler_alloc >= 200);
	CHECK_STR(cfg->worker[199].name, "w199");
	CHECK_STR(cfg->builder[199].workers[0], "w199");
	CHECK_STR(cfg->scheduler[150].name, "f150");
	CHECK_STR(cfg->poller[199].name, "p199");
	config_free(cfg);
}

/* auth = { } (slice "weblogin"): defaults, every key, every error. */
TEST(auth_setting)
{
	struct config *cfg = CONFIG_TEST_LOAD_OK("title = \"x\"");
	if (cfg) {
		CHECK(cfg->auth == NULL);
		config_free(cfg);
	}
	cfg = CONFIG_TEST_LOAD_OK("auth = { }");
	if (cfg) {
		CHECK(cfg->auth != NULL && cfg->auth->anonymous_read);
		CHECK_INT(cfg->auth->anonymous_control, -1);
		CHECK_INT(cfg->auth->session_max_age, 7 * 86400);
		CHECK_INT(cfg->auth->session_idle, 86400);
		CHECK(cfg->auth->htpasswd == NULL && cfg->auth->nrules == 0);
		config_free(cfg);
	}
	cfg = CONFIG_TEST_LOAD_OK(
		"auth = { anonymous_read = false, anonymous_control = true, htpasswd = \"h.txt\",\n"
		"  session_max_age = 3600, session_idle = 0,\n"
		"  roles = { { role = \"admin\", users = { \"ann\" } },\n"
		"    { role = \"force\", users = { \"bob\", \"*\" }, builders = { \"linux-*\", "
		"\"b?\" } } } }");
	if (cfg) {
		const struct config_auth *a = cfg->auth;
		CHECK(!a->anonymous_read);
		CHECK_INT(a->anonymous_control, 1);
		CHECK_STR(a->htpasswd, "h.txt");
		CHECK_INT(a->session_max_age, 3600);
		CHECK_INT(a->session_idle, 0);
		CHECK_INT(a->nrules, 2);
		if (a->nrules == 2) {
			CHECK_INT(a->rule[0].role, CONFIG_ROLE_ADMIN);
			CHECK_INT(a->rule[0].nusers, 1);
			CHECK_INT(a->rule[0].nbuilders, 0);
			CHECK_INT(a->rule[1].role, CONFIG_ROLE_FORCE);
			CHECK_STR(a->rule[1].users[1], "*");
			CHECK_STR(a->rule[1].builders[1], "b?");
			CHECK_INT(a->rule[1].line, 4); /* the assignment's last line */
		}
		config_free(cfg);
	}
	CHECK_ERR("auth = true", "master.lua:1: 'auth' must be a table: auth = { anonymous_read = "
				 "true, htpasswd = \"users.htpasswd\", roles = { { role = "
				 "\"force\", users = { \"ann\" } } } }");
	CHECK_ERR_HAS("auth = { anonymus_read = true }", "auth: unknown key 'anonymus_read'");
	CHECK_ERR("auth = { anonymous_control = 1 }",
		  "master.lua:1: auth: 'anonymous_control' must be true or false (got number)");
	CHECK_ERR("auth = { htpasswd = \"\" }",
		  "master.lua:1: auth: 'htpasswd' must be a file path");
	CHECK_ERR_HAS("auth = { session_max_age = 0 }", "'session_max_age' must be between 1 and");
	CHECK_ERR("\nauth = { roles = { { role = \"boss\", users = { \"a\" } } } }",
		  "master.lua:2: auth: roles[1]: unknown role 'boss' (admin, force, stop, cancel "
		  "or view)");
	CHECK_ERR("auth = { roles = { { role = \"stop\" } } }",
		  "master.lua:1: auth: roles[1]: 'users' is required (a list of names)");
	CHECK_ERR("auth = { roles = { { users = { \"a\" } } } }",
		  "master.lua:1: auth: roles[1]: 'role' is required (admin, force, stop, cancel or "
		  "view)");
	CHECK_ERR(
		"auth = { roles = { { role = \"admin\", users = { \"a\" }, builders = { \"x\" } } "
		"} }",
		"master.lua:1: auth: roles[1]: 'builders' applies to force, stop and cancel only");
	CHECK_ERR("auth = { roles = { \"force\" } }",
		  "master.lua:1: auth: roles[1] must be a table { role = \"force\", users = { ... "
		  "}, builders = { ... } } (got string)");
	CHECK_ERR("auth = { roles = { { role = \"force\", users = { } } } }",
		  "master.lua:1: auth: roles[1]: 'users' must not be empty");
	unsigned bits = 0;
	CHECK_INT(config_roles_parse_list("force,stop", &bits), 0);
	CHECK_INT(bits, CONFIG_ROLE_FORCE | CONFIG_ROLE_STOP);
	CHECK_INT(config_roles_parse_list("", &bits), 0);
	CHECK_INT(bits, 0);
	CHECK_INT(config_roles_parse_list("force,root", &bits), -1);
	CHECK_STR(config_role_name(CONFIG_ROLE_CANCEL), "cancel");
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	config_test_basedir = tmpdir;
	char *secrets = xasprintf("%s/secrets", tmpdir);
	mkdir(secrets, 0700);
	write_file(secrets, "w1", "pw-one\n", 0600);
	write_file(secrets, "w2", "pw-two", 0600);
	write_file(secrets, "worker1", "sample-password\n", 0600);
	free(secrets);

	RUN(sample_loads);
	RUN(empty_config_has_defaults);
	RUN(declaration_defaults);
	RUN(every_key_is_read);
	RUN(syntax_and_runtime_errors_carry_lines);
	RUN(setting_errors);
	RUN(worker_errors);
	RUN(builder_errors);
	RUN(step_errors);
	RUN(git_step);
	RUN(scheduler_errors);
	RUN(sandbox_has_no_dangerous_libraries);
	RUN(sandbox_limits);
	RUN(sandbox_cpu_limit);
	RUN(print_and_long_error_lines);
	RUN(mem_cap_counts_live_memory);
	RUN(shared_worker_lists);
	RUN(name_list_repeats);
	RUN(step_kind_fields);
	RUN(many_declarations);
	RUN(secrets_from_files_and_environment);
	RUN(load_from_directory);
	RUN(parse_listen);
	RUN(auth_setting); /* slice "weblogin" */

	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmpdir);
	free(cmd);
	return tap_done();
}
