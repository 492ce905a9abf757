/*
 * workers_reattach_grace and workers_keepalive (src/config/config-workers.c,
 * slice "reattach"): defaults, values kept, and every error with its line;
 * a worker's own reattach_grace (config-dsl.c, issue 13).
 */
#include "tap.h"
#include "config-test.h"
#include "config/config.h"

#include <stdlib.h>

#define W "worker { name = \"w1\", password = secret(\"pw\") }\n"

TEST(defaults)
{
	struct config *cfg = CONFIG_TEST_LOAD_OK(W);
	if (!cfg)
		return;
	CHECK_INT(config_reattach_grace(cfg), 60);
	CHECK_INT(cfg->workers_keepalive_interval, 0); /* the master applies 60 */
	CHECK_INT(cfg->workers_keepalive_timeout, 0);  /* and 180 */
	config_free(cfg);
}

TEST(values)
{
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		W
		"workers_reattach_grace = 0\nworkers_keepalive = { interval = 1, timeout = 3 }\n");
	if (!cfg)
		return;
	CHECK_INT(config_reattach_grace(cfg), 0);
	CHECK_INT(cfg->workers_keepalive_interval, 1);
	CHECK_INT(cfg->workers_keepalive_timeout, 3);
	config_free(cfg);
	cfg = CONFIG_TEST_LOAD_OK(
		W "workers_reattach_grace = 2\nworkers_keepalive = { timeout = 90 }\n");
	if (!cfg)
		return;
	CHECK_INT(config_reattach_grace(cfg), 2);
	CHECK_INT(cfg->workers_keepalive_interval, 60);
	CHECK_INT(cfg->workers_keepalive_timeout, 90);
	config_free(cfg);
}

TEST(errors)
{
	CHECK_ERR(W "workers_reattach_grace = -1\n",
		  "master.lua:2: 'workers_reattach_grace' must be a whole number of seconds from 0 "
		  "to 86400 (got -1)");
	CHECK_ERR(W "workers_reattach_grace = 1.5\n",
		  "master.lua:2: 'workers_reattach_grace' must be a whole number of seconds from 0 "
		  "to 86400 (got 1.5)");
	CHECK_ERR(
		W "workers_reattach_grace = \"60\"\n",
		"master.lua:2: 'workers_reattach_grace' must be a number of seconds (got string)");
	CHECK_ERR(W "workers_keepalive = 60\n",
		  "master.lua:2: 'workers_keepalive' must be a table: workers_keepalive = { "
		  "interval = 60, timeout = 180 } (got number)");
	CHECK_ERR(W "workers_keepalive = { interval = 0 }\n",
		  "master.lua:2: 'workers_keepalive.interval' must be a whole number of seconds "
		  "from 1 to 36000 (got 0)");
	CHECK_ERR(
		W "workers_keepalive = { timeout = 1e9 }\n",
		"master.lua:2: 'workers_keepalive.timeout' must be a whole number of seconds from "
		"2 to 36000 (got 1e+09)");
	CHECK_ERR(W "workers_keepalive = { interval = 10, timeout = 10 }\n",
		  "master.lua:2: 'workers_keepalive': timeout (10 s) must be longer than interval "
		  "(10 s): a PING needs time to be answered");
	char *e = config_test_error(W "workers_keepalive = { interval = 1, timout = 3 }\n");
	CHECK(e && strstr(e, "master.lua:2:") && strstr(e, "timout"));
	free(e);
}

/* A worker's own reattach_grace (issue 13) replaces the global one for it. */
TEST(worker_override)
{
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		"workers_reattach_grace = 600\n"
		"worker { name = \"w1\", password = secret(\"pw\"), reattach_grace = 3 }\n"
		"worker { name = \"w2\", password = secret(\"pw\") }\n"
		"worker { name = \"w3\", password = secret(\"pw\"), reattach_grace = 0 }\n");
	if (!cfg)
		return;
	CHECK_INT(cfg->nworkers, 3);
	CHECK(cfg->worker[0].reattach_grace_set);
	CHECK_INT(config_worker_reattach_grace(cfg, &cfg->worker[0]), 3);
	CHECK(!cfg->worker[1].reattach_grace_set);
	CHECK_INT(config_worker_reattach_grace(cfg, &cfg->worker[1]), 600);
	CHECK_INT(config_worker_reattach_grace(cfg, &cfg->worker[2]), 0); /* disabled for it */
	CHECK_INT(config_worker_reattach_grace(cfg, NULL), 600);
	config_free(cfg);
	/* without the global setting: the default for the others */
	cfg = CONFIG_TEST_LOAD_OK(
		"worker { name = \"w1\", password = secret(\"pw\"), reattach_grace = 86400 }\n"
		"worker { name = \"w2\", password = secret(\"pw\") }\n");
	if (!cfg)
		return;
	CHECK_INT(config_worker_reattach_grace(cfg, &cfg->worker[0]), 86400);
	CHECK_INT(config_worker_reattach_grace(cfg, &cfg->worker[1]),
		  CONFIG_REATTACH_GRACE_DEFAULT);
	config_free(cfg);

	CHECK_ERR("worker { name = \"w1\", password = secret(\"pw\"), reattach_grace = -1 }\n",
		  "master.lua:1: worker 'w1': 'reattach_grace' must be between 0 and 86400 (got "
		  "-1)");
	CHECK_ERR("worker { name = \"w1\", password = secret(\"pw\"), reattach_grace = 86401 }\n",
		  "master.lua:1: worker 'w1': 'reattach_grace' must be between 0 and 86400 (got "
		  "86401)");
	CHECK_ERR("worker { name = \"w1\", password = secret(\"pw\"), reattach_grace = 1.5 }\n",
		  "master.lua:1: worker 'w1': 'reattach_grace' must be an integer (got number)");
	CHECK_ERR("worker { name = \"w1\", password = secret(\"pw\"), reattach_grace = \"5\" }\n",
		  "master.lua:1: worker 'w1': 'reattach_grace' must be an integer (got string)");
}

int main(void)
{
	setenv("KILN_SECRET_PW", "x", 1);
	RUN(defaults);
	RUN(values);
	RUN(errors);
	RUN(worker_override); /* issue 13 */
	return tap_done();
}
