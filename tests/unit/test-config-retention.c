/*
 * retention = { } (src/config/config-retention.c, slice "retention"), and a
 * builder's own retention = { } overriding it for its builds (issue 13):
 * the values kept, what a builder leaves out staying 0 (the global value
 * applies: master/retention.c merges), and the errors with their lines.
 */
#include "tap.h"
#include "config-test.h"
#include "config/config.h"

#include <stdlib.h>

#define W "worker { name = \"w1\", password = secret(\"pw\") }\n"
#define S "steps = { shell { command = \"true\" } }"
#define B(extra) "builder { name = \"b\", workers = { \"w1\" }, " S ", " extra " }\n"

TEST(global)
{
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		W "retention = { builds = { keep_days = 90, keep_per_builder = 1000 },\n"
		  "  logs = { keep_days = 30, success_keep_days = 7 }, changes = { keep_days = 180 "
		  "},\n"
		  "  test_results = { keep_days = 20 }, numbers = { keep_days = 365 }, interval = "
		  "60 }\n" B("tags = { \"x\" }"));
	if (!cfg)
		return;
	CHECK(cfg->retention_builds_keep_days == 90);
	CHECK_INT(cfg->retention_builds_keep_per_builder, 1000);
	CHECK(cfg->retention_logs_keep_days == 30);
	CHECK(cfg->retention_logs_success_keep_days == 7);
	CHECK(cfg->retention_changes_keep_days == 180);
	CHECK(cfg->retention_test_results_keep_days == 20);
	CHECK(cfg->retention_numbers_keep_days == 365);
	CHECK(cfg->retention_interval_s == 60);
	/* a builder without retention = { }: nothing of its own */
	CHECK(cfg->builder[0].retention == NULL);
	config_free(cfg);
}

TEST(builder_override)
{
	struct config *cfg = CONFIG_TEST_LOAD_OK(
		W "retention = { builds = { keep_days = 30 }, logs = { keep_days = 10 } }\n" B(
			"retention = { builds = { keep_days = 365, keep_per_builder = 50 },\n"
			"  logs = { success_keep_days = 0.5 }, test_results = { keep_days = 2 },\n"
			"  numbers = { keep_days = 3650 } }") "builder { name = \"c\", workers = { "
							      "\"w1\" }, " S
							      ", retention = { logs = { keep_days "
							      "= 1 } } }\n");
	if (!cfg)
		return;
	CHECK_INT(cfg->nbuilders, 2);
	const struct config_retention_override *o = cfg->builder[0].retention;
	CHECK(o != NULL);
	if (!o)
		return;
	CHECK(o->builds_keep_days == 365);
	CHECK_INT(o->builds_keep_per_builder, 50);
	CHECK(o->logs_keep_days == 0); /* left out: the global 10 applies */
	CHECK(o->logs_success_keep_days == 0.5);
	CHECK(o->test_results_keep_days == 2);
	CHECK(o->numbers_keep_days == 3650);
	o = cfg->builder[1].retention;
	CHECK(o && o->logs_keep_days == 1);
	CHECK(o && o->builds_keep_days == 0);
	/* the global setting is untouched by them */
	CHECK(cfg->retention_builds_keep_days == 30);
	CHECK(cfg->retention_logs_keep_days == 10);
	config_free(cfg);
	/* a builder's retention without any global one */
	cfg = CONFIG_TEST_LOAD_OK(W B("retention = { builds = { keep_per_builder = 5 } }"));
	if (!cfg)
		return;
	CHECK(cfg->builder[0].retention && cfg->builder[0].retention->builds_keep_per_builder == 5);
	CHECK(cfg->retention_builds_keep_per_builder == 0);
	config_free(cfg);
}

TEST(errors)
{
	CHECK_ERR(W "retention = { builds = { keep_days = 0 } }\n",
		  "master.lua:2: retention.builds: 'keep_days' must be a number of days above 0 "
		  "and at most 36500");
	CHECK_ERR(W "retention = { logs = { keep_days = 1, success_keep_days = 2 } }\n",
		  "master.lua:2: retention.logs: 'success_keep_days' (2) must not be above "
		  "'keep_days' (1)");
	CHECK_ERR(W B("retention = 5"),
		  "master.lua:2: builder 'b': retention must be a table: retention = { builds = "
		  "{ keep_days = 365 } } (got number)");
	CHECK_ERR(W B("retention = { changes = { keep_days = 1 } }"),
		  "master.lua:2: builder 'b': retention: unknown key 'changes' (known: builds, "
		  "logs, test_results, numbers)");
	CHECK_ERR(W B("retention = { builds = { keep_days = \"x\" } }"),
		  "master.lua:2: builder 'b': retention.builds: 'keep_days' must be a number of "
		  "days (got string)");
	CHECK_ERR(W B("retention = { builds = { keep_days = -1 } }"),
		  "master.lua:2: builder 'b': retention.builds: 'keep_days' must be a number of "
		  "days above 0 and at most 36500");
	CHECK_ERR(W B("retention = { builds = { keep_per_builder = 0 } }"),
		  "master.lua:2: builder 'b': retention.builds: 'keep_per_builder' must be "
		  "between 1 and 100000000 (got 0)");
	CHECK_ERR(W B("retention = { builds = { keep = 3 } }"),
		  "master.lua:2: builder 'b': retention.builds: unknown key 'keep' (known: "
		  "keep_days, keep_per_builder)");
	CHECK_ERR(W B("retention = { logs = 3 }"),
		  "master.lua:2: builder 'b': retention: 'logs' must be a table, e.g. logs = { "
		  "keep_days = 30, success_keep_days = 7 } (got number)");
	CHECK_ERR(W B("retention = { logs = { keep_days = 1, success_keep_days = 2 } }"),
		  "master.lua:2: builder 'b': retention.logs: 'success_keep_days' (2) must not "
		  "be above 'keep_days' (1)");
	CHECK_ERR(W B("retention = { numbers = { keep_days = 1e9 } }"),
		  "master.lua:2: builder 'b': retention.numbers: 'keep_days' must be a number of "
		  "days above 0 and at most 36500");
}

int main(void)
{
	setenv("KILN_SECRET_PW", "x", 1);
	RUN(global);
	RUN(builder_override);
	RUN(errors);
	return tap_done();
}
