/*
 * Unit tests for artifact retention (slice "artcli"): the picker
 * (artifact-retention.c) on rows built here, and the global
 * `artifacts = { }` setting (config-artifacts.c) with its size parser and
 * the errors checkconfig shows.
 */
#include "tap.h"

#include "common/err.h"
#include "config/config.h"
#include "db/db.h"
#include "master/artifact-retention.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DAY 86400.0

/* Row i: id i + 1, build builds[i], size sizes[i], created days[i] days ago. */
static size_t pick(const struct artifact_retention_policy *p, struct artifact_retention_state *st,
		   size_t n, const int64_t *builds, const int64_t *sizes, const double *days,
		   const bool *done, int64_t *ids, bool *more)
{
	struct db_artifact_age rows[16];
	for (size_t i = 0; i < n; i++)
		rows[i] = (struct db_artifact_age){.artifactid = (int64_t)i + 1,
						   .buildid = builds[i],
						   .size = sizes[i],
						   .created_at = st->now - days[i] * DAY,
						   .build_done = done ? done[i] : true};
	return artifact_retention_pick(p, st, rows, n, ids, more);
}

TEST(pick_by_bytes)
{
	struct artifact_retention_policy p = {.max_bytes = 250};
	struct artifact_retention_state st = {.total_bytes = 400, .now = 1e9};
	int64_t builds[] = {1, 1, 2, 3}, sizes[] = {100, 100, 100, 100}, ids[4];
	double days[] = {4, 3, 2, 1};
	bool more;
	size_t k = pick(&p, &st, 4, builds, sizes, days, NULL, ids, &more);
	/* 400 > 250: the two oldest go, 200 remain */
	CHECK_INT(k, 2);
	CHECK_INT(ids[0], 1);
	CHECK_INT(ids[1], 2);
	CHECK_INT(st.total_bytes, 200);
	CHECK(!more);
	/* under the cap: nothing */
	st = (struct artifact_retention_state){.total_bytes = 250, .now = 1e9};
	CHECK_INT(pick(&p, &st, 4, builds, sizes, days, NULL, ids, &more), 0);
	CHECK(!more);
	/* over by one byte: the oldest only */
	st = (struct artifact_retention_state){.total_bytes = 251, .now = 1e9};
	CHECK_INT(pick(&p, &st, 4, builds, sizes, days, NULL, ids, &more), 1);
	CHECK_INT(ids[0], 1);
	/* still over after the whole batch: a later batch may help */
	st = (struct artifact_retention_state){.total_bytes = 10000, .now = 1e9};
	CHECK_INT(pick(&p, &st, 4, builds, sizes, days, NULL, ids, &more), 4);
	CHECK(more);
}

TEST(pick_by_age_and_builds)
{
	struct artifact_retention_policy p = {.keep_days = 2.5};
	struct artifact_retention_state st = {.total_bytes = 400, .now = 1e9};
	int64_t builds[] = {1, 1, 2, 3}, sizes[] = {100, 100, 100, 100}, ids[4];
	double days[] = {4, 3, 2, 1};
	bool more;
	CHECK_INT(pick(&p, &st, 4, builds, sizes, days, NULL, ids, &more), 2);
	CHECK_INT(ids[1], 2);
	CHECK(!more);
	/* keep_builds: builds below keep_from_buildid go, whatever their age */
	p = (struct artifact_retention_policy){.keep_builds = 2};
	st = (struct artifact_retention_state){
		.total_bytes = 400, .keep_from_buildid = 2, .now = 1e9};
	CHECK_INT(pick(&p, &st, 4, builds, sizes, days, NULL, ids, &more), 2);
	CHECK_INT(ids[0], 1);
	CHECK_INT(ids[1], 2);
	/* keep_from_buildid 0: fewer builds than kept, nothing goes */
	st.keep_from_buildid = 0;
	st.total_bytes = 400;
	CHECK_INT(pick(&p, &st, 4, builds, sizes, days, NULL, ids, &more), 0);
	/* no limit at all: nothing */
	p = (struct artifact_retention_policy){0};
	CHECK_INT(pick(&p, &st, 4, builds, sizes, days, NULL, ids, &more), 0);
}

TEST(pick_spares_running_builds)
{
	/* the oldest artifact's build still runs: the next one goes instead */
	struct artifact_retention_policy p = {.max_bytes = 300};
	struct artifact_retention_state st = {.total_bytes = 400, .now = 1e9};
	int64_t builds[] = {1, 2, 3, 4}, sizes[] = {100, 100, 100, 100}, ids[4];
	double days[] = {4, 3, 2, 1};
	bool done[] = {false, true, true, false};
	bool more;
	CHECK_INT(pick(&p, &st, 4, builds, sizes, days, done, ids, &more), 1);
	CHECK_INT(ids[0], 2);
	CHECK_INT(st.total_bytes, 300);
	/* by age: a running build's old artifact is kept, and says "more" */
	p = (struct artifact_retention_policy){.keep_days = 0.5};
	st = (struct artifact_retention_state){.total_bytes = 400, .now = 1e9};
	CHECK_INT(pick(&p, &st, 4, builds, sizes, days, done, ids, &more), 2);
	CHECK_INT(ids[0], 2);
	CHECK_INT(ids[1], 3);
	CHECK(more);
}

TEST(parse_bytes)
{
	uint64_t v = 0;
	CHECK_INT(config_parse_bytes("10 GiB", &v), 0);
	CHECK(v == 10ull << 30);
	CHECK_INT(config_parse_bytes("500MB", &v), 0);
	CHECK(v == 500000000ull);
	CHECK_INT(config_parse_bytes("1 kB", &v), 0);
	CHECK(v == 1000);
	CHECK_INT(config_parse_bytes("2 TiB", &v), 0);
	CHECK(v == 2ull << 40);
	CHECK_INT(config_parse_bytes("123", &v), 0);
	CHECK(v == 123);
	CHECK_INT(config_parse_bytes("7 B", &v), 0);
	CHECK(v == 7);
	CHECK_INT(config_parse_bytes("", &v), -EINVAL);
	CHECK_INT(config_parse_bytes("GiB", &v), -EINVAL);
	CHECK_INT(config_parse_bytes("10 gib", &v), -EINVAL);
	CHECK_INT(config_parse_bytes("10 GiBx", &v), -EINVAL);
	CHECK_INT(config_parse_bytes("-1", &v), -EINVAL);
	CHECK_INT(config_parse_bytes(" 1", &v), -EINVAL);
	CHECK_INT(config_parse_bytes("1.5 GiB", &v), -EINVAL);
	CHECK_INT(config_parse_bytes("20000000 TiB", &v), -ERANGE);
	CHECK_INT(config_parse_bytes("99999999999999999999", &v), -ERANGE);
}

static struct config *load(const char *text, char **err)
{
	struct config *cfg = NULL;
	*err = NULL;
	if (config_load_string("master.lua", text, strlen(text), "/tmp", &cfg, err) < 0)
		return NULL;
	return cfg;
}

static bool fails_with(const char *text, const char *want)
{
	char *err = NULL;
	struct config *cfg = load(text, &err);
	bool ok = !cfg && err && strstr(err, want);
	if (!ok)
		printf("# got '%s', want '%s'\n", err ? err : "(loaded)", want);
	config_free(cfg);
	free(err);
	return ok;
}

TEST(config_keys)
{
	char *err = NULL;
	struct config *cfg = load("artifacts = { max_bytes = '10 GiB', keep_days = 30, "
				  "keep_builds = 50 }\n",
				  &err);
	if (!cfg) {
		TAP_FAIL("load: %s", err);
		free(err);
		return;
	}
	CHECK(cfg->artifacts_max_bytes == 10ull << 30);
	CHECK(cfg->artifacts_keep_days == 30);
	CHECK_INT(cfg->artifacts_keep_builds, 50);
	config_free(cfg);

	cfg = load("artifacts = { max_bytes = 4096, keep_days = 0.5 }\n", &err);
	CHECK(cfg != NULL);
	if (cfg) {
		CHECK(cfg->artifacts_max_bytes == 4096);
		CHECK(cfg->artifacts_keep_days == 0.5);
		CHECK_INT(cfg->artifacts_keep_builds, 0);
	}
	config_free(cfg);
	free(err);

	/* unset: everything is kept */
	cfg = load("title = 'x'\n", &err);
	CHECK(cfg && cfg->artifacts_max_bytes == 0 && cfg->artifacts_keep_days == 0 &&
	      cfg->artifacts_keep_builds == 0);
	config_free(cfg);
	free(err);

	/* set twice: the second table replaces the first whole */
	cfg = load(
		"artifacts = { keep_builds = 3, max_bytes = 10 }\nartifacts = { keep_days = 1 }\n",
		&err);
	CHECK(cfg && cfg->artifacts_keep_builds == 0 && cfg->artifacts_max_bytes == 0 &&
	      cfg->artifacts_keep_days == 1);
	config_free(cfg);
	free(err);
}

TEST(config_errors)
{
	CHECK(fails_with("artifacts = 5\n", "master.lua:1: 'artifacts' must be a table"));
	CHECK(fails_with("artifacts = { max_byte = 1 }\n", "master.lua:1: artifacts"));
	CHECK(fails_with("artifacts = { max_bytes = '10 gigs' }\n",
			 "master.lua:1: artifacts: 'max_bytes' must be a size such as"));
	CHECK(fails_with("artifacts = { max_bytes = 0 }\n",
			 "artifacts: 'max_bytes' must be a positive integer"));
	CHECK(fails_with("artifacts = { max_bytes = 1.5 }\n",
			 "artifacts: 'max_bytes' must be a positive integer"));
	CHECK(fails_with("artifacts = { max_bytes = true }\n",
			 "artifacts: 'max_bytes' must be a number or a string (got boolean)"));
	CHECK(fails_with("artifacts = { keep_days = 0 }\n",
			 "artifacts: 'keep_days' must be a number of days above 0"));
	CHECK(fails_with("artifacts = { keep_days = '3' }\n",
			 "artifacts: 'keep_days' must be a number (got string)"));
	CHECK(fails_with("artifacts = { keep_builds = 0 }\n",
			 "artifacts: 'keep_builds' must be between 1 and"));
	CHECK(fails_with("\nartifacts = { keep_builds = 2.5 }\n",
			 "master.lua:2: artifacts: 'keep_builds' must be an integer"));
}

int main(void)
{
	RUN(pick_by_bytes);
	RUN(pick_by_age_and_builds);
	RUN(pick_spares_running_builds);
	RUN(parse_bytes);
	RUN(config_keys);
	RUN(config_errors);
	return tap_done();
}
