/*
 * worker { latent = { } }, local_worker { } and latent_max_count
 * (src/config/config-latent.c, issue 14): what is kept, the defaults, and
 * every error with its line.
 */
#include "tap.h"
#include "config-test.h"
#include "config/config.h"

#include <stdlib.h>

#define B(w)                                                                                       \
	"builder { name = \"b\", workers = { \"" w                                                 \
	"\" }, steps = { shell { command = \"true\" } } }\n"

TEST(command_kind)
{
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		"worker { name = \"w1\", password = secret(\"pw\"), latent = {\n"
		"  start = { \"ssh\", \"host\", \"kiln-worker start w\" }, stop = \"echo stop\",\n"
		"  idle_timeout = 30, start_timeout = 5, stop_timeout = 7 } }\n"
		"latent_max_count = 3\n" B("w1"));
	if (!cfg)
		return;
	const struct config_worker *w = config_find_worker(cfg, "w1");
	CHECK(w && w->latent && !w->local);
	if (!w || !w->latent) {
		config_free(cfg);
		return;
	}
	CHECK_INT(w->latent->kind, CONFIG_LATENT_COMMAND);
	CHECK_INT(w->latent->nstart, 3);
	CHECK_STR(w->latent->start[2], "kiln-worker start w");
	CHECK_INT(w->latent->nstop, 3);
	CHECK_STR(w->latent->stop[0], "/bin/sh");
	CHECK_STR(w->latent->stop[1], "-c");
	CHECK_STR(w->latent->stop[2], "echo stop");
	CHECK(w->latent->idle_timeout == 30 && w->latent->start_timeout == 5 &&
	      w->latent->stop_timeout == 7);
	CHECK_INT(cfg->latent_max_count, 3);
	config_free(cfg);
}

TEST(defaults_and_local)
{
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		"worker { name = \"w1\", password = secret(\"pw\"), latent = { start = \"x\" } }\n"
		"local_worker { name = \"loc\", max_builds = 2, properties = { a = \"b\" } }\n" B(
			"loc"));
	if (!cfg)
		return;
	const struct config_worker *w = config_find_worker(cfg, "w1");
	CHECK(w && w->latent && w->latent->idle_timeout == 600 && w->latent->start_timeout == 120 &&
	      w->latent->stop_timeout == 60 && w->latent->nstop == 0 && w->latent->stop == NULL);
	CHECK_INT(cfg->latent_max_count, 0);
	const struct config_worker *l = config_find_worker(cfg, "loc");
	CHECK(l && l->local && !l->latent && l->max_builds == 2 && l->nprops == 1);
	CHECK(l && l->password && l->password[0] == '\0');
	config_free(cfg);
}

TEST(container_kind)
{
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		"worker { name = \"c1\", password = secret(\"pw\"), latent = { container = {\n"
		"  engine = \"docker\", image = \"kiln-worker:test\", run_args = { \"--cpus=1\" } "
		"} } }\n" B("c1"));
	if (!cfg)
		return;
	const struct config_worker *w = config_find_worker(cfg, "c1");
	CHECK(w && w->latent && w->latent->kind == CONFIG_LATENT_CONTAINER);
	if (w && w->latent) {
		CHECK_STR(w->latent->engine, "docker");
		CHECK_STR(w->latent->image, "kiln-worker:test");
		CHECK_STR(w->latent->network, "host");
		CHECK_STR(w->latent->worker_bin, "kiln-worker");
		CHECK_INT(w->latent->nrun_args, 1);
	}
	config_free(cfg);
	cfg = CONFIG_TEST_LOAD_OK("worker { name = \"c1\", password = secret(\"pw\"), latent = { "
				  "container = { image = \"i\" } } }\n");
	if (cfg) {
		CHECK_STR(config_find_worker(cfg, "c1")->latent->engine, "podman");
		config_free(cfg);
	}
}

#define LW "worker { name = \"w1\", password = secret(\"pw\"), latent = "

TEST(errors)
{
	CHECK_ERR(LW "5 }",
		  "master.lua:1: worker 'w1': 'latent' must be a table: latent = { start = { ... "
		  "}, idle_timeout = 600 } (got number)");
	CHECK_ERR(LW "{ } }", "master.lua:1: worker 'w1': latent: 'start' is required: start = { "
			      "\"ssh\", \"host\", \"kiln-worker start DIR\" } (or container = { "
			      "... })");
	CHECK_ERR(LW "{ start = \"x\", container = { image = \"i\" } } }",
		  "master.lua:1: worker 'w1': latent: give 'start' (a command) or 'container', not "
		  "both");
	CHECK_ERR(LW "{ start = { } } }", "master.lua:1: worker 'w1': latent: 'start' must not be "
					  "empty");
	CHECK_ERR(LW "{ start = \"\" } }", "master.lua:1: worker 'w1': latent: 'start' must not be "
					   "empty");
	CHECK_ERR(LW "{ start = { \"a\", 3 } } }",
		  "master.lua:1: worker 'w1': latent: start[2] must be a string (got number)");
	CHECK_ERR(LW "{ start = 3 } }",
		  "master.lua:1: worker 'w1': latent: 'start' must be a command: a list of strings "
		  "or a string run by /bin/sh -c (got number)");
	CHECK_ERR(LW "{ start = \"x\", idle_timeout = 0 } }",
		  "master.lua:1: worker 'w1': latent 'idle_timeout' must be from 1 to 2.592e+06 "
		  "seconds (got 0)");
	CHECK_ERR(LW "{ start = \"x\", start_timeout = \"5\" } }",
		  "master.lua:1: worker 'w1': latent 'start_timeout' must be a number of seconds "
		  "(got string)");
	CHECK_ERR_HAS(LW "{ start = \"x\", stat = 1 } }", "stat");
	CHECK_ERR(LW "{ container = { } } }",
		  "master.lua:1: worker 'w1': latent container: 'image' is required: image = "
		  "\"debian-kiln-worker\"");
	CHECK_ERR(LW "{ container = { image = \"i\", engine = \"lxc\" } } }",
		  "master.lua:1: worker 'w1': latent container: 'engine' must be \"podman\" or "
		  "\"docker\" (got 'lxc')");
	CHECK_ERR(LW "{ container = { image = \"i\" }, stop = \"x\" } }",
		  "master.lua:1: worker 'w1': latent: a container is stopped by its engine: no "
		  "'stop'");
	CHECK_ERR(LW "{ container = { image = \"--privileged\" } } }",
		  "master.lua:1: worker 'w1': latent container: 'image' may not start with '-'");
	CHECK_ERR(
		"worker { name = \"a b\", password = secret(\"pw\"), latent = { start = \"x\" } }",
		"master.lua:1: worker 'a b': the name of a worker the master starts must be "
		"letters, digits, '.', '_' or '-', not starting with '.' or '-'");
	CHECK_ERR("local_worker { name = \"..\" }",
		  "master.lua:1: local_worker '..': the name of a worker the master starts must be "
		  "letters, digits, '.', '_' or '-', not starting with '.' or '-'");
	CHECK_ERR("local_worker { name = \"w\", password = secret(\"pw\") }",
		  "master.lua:1: local_worker 'w': unknown key 'password' (known: name, "
		  "max_builds, properties)");
	CHECK_ERR(
		"local_worker { name = \"w\" }\nworker { name = \"w\", password = secret(\"pw\") }",
		"master.lua:2: worker 'w' is already declared at line 1");
	CHECK_ERR("latent_max_count = -1",
		  "master.lua:1: 'latent_max_count' must be a whole number from 0 (no limit) to "
		  "1000000 (got -1)");
	CHECK_ERR("latent_max_count = \"2\"",
		  "master.lua:1: 'latent_max_count' must be a whole number from 0 (no limit) to "
		  "1000000 (got string)");
}

int main(void)
{
	setenv("KILN_SECRET_PW", "x", 1);
	RUN(command_kind);
	RUN(defaults_and_local);
	RUN(container_kind);
	RUN(errors);
	return tap_done();
}
