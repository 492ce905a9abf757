/*
 * Test results over the REST API: Buildbot 3.7's test_result_sets (under
 * builders, builds and steps, and one by id) and their results, plus the
 * top-level /test_result_sets collection of later Buildbot versions, and
 * Kiln's per-test history on a builder (/builders/N/test_history).
 */
#include "master/api-int.h"
#include "common/xalloc.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"

void api_test_result_sets_get(struct api_ctx *ctx)
{
	api_list(ctx, DB_TEST_RESULT_SETS, "test_result_sets", false, NULL, NULL);
}

void api_test_result_set_get(struct api_ctx *ctx)
{
	const char *f[] = {"test_result_setid", ctx->cap[0], NULL};
	api_list(ctx, DB_TEST_RESULT_SETS, "test_result_sets", true, NULL, f);
}

void api_build_test_result_sets_get(struct api_ctx *ctx)
{
	const char *f[] = {"buildid", ctx->cap[0], NULL};
	api_list(ctx, DB_TEST_RESULT_SETS, "test_result_sets", false, NULL, f);
}

void api_step_test_result_sets_get(struct api_ctx *ctx)
{
	const char *f[] = {"stepid", ctx->cap[0], NULL};
	api_list(ctx, DB_TEST_RESULT_SETS, "test_result_sets", false, NULL, f);
}

static void api_builder_test_result_sets_then(struct api_ctx *ctx, int64_t id, void *arg)
{
	char ids[32];
	snprintf(ids, sizeof(ids), "%" PRId64, id);
	const char *f[] = {"builderid", ids, NULL};
	api_list(ctx, DB_TEST_RESULT_SETS, "test_result_sets", false, NULL, f);
}

void api_builder_test_result_sets_get(struct api_ctx *ctx)
{
	api_builder_then(ctx, ctx->cap[0], api_builder_test_result_sets_then, NULL);
}

void api_test_results_get(struct api_ctx *ctx)
{
	/* an unknown set has no results: [] (as Buildbot answers) */
	const char *f[] = {"test_result_setid", ctx->cap[0], NULL};
	api_list(ctx, DB_TEST_RESULTS, "test_results", false, NULL, f);
}

static json_t *api_tests_build_ref(int64_t buildid, int64_t number)
{
	if (!buildid)
		return json_null();
	return json_pack("{s:I,s:I}", "buildid", (json_int_t)buildid, "number", (json_int_t)number);
}

static void api_builder_test_history_then(struct api_ctx *ctx, int64_t builderid, void *arg);

void api_builder_test_history_get(struct api_ctx *ctx)
{
	const char *name = http_req_arg(ctx->req, "test_name");
	if (!name || !*name) {
		api_reply_error(ctx, 400, "test_history needs ?test_name=NAME");
		return;
	}
	if (strlen(name) > KILN_TESTREPORT_MAX_NAME + 5) {
		api_reply_error(ctx, 400, "test_name too long");
		return;
	}
	api_builder_then(ctx, ctx->cap[0], api_builder_test_history_then, NULL);
}

/* A test history request waiting for its read (issue 14). */
struct api_tests_wait {
	struct http_deferred *d;
	struct api_ctx ctx;
	int64_t builderid;
};

static void api_tests_history_answered(void *arg, int r, const struct db_test_history *h,
				       const char *err)
{
	struct api_tests_wait *w = arg;
	struct api_ctx *ctx = api_deferred_ctx(w->d, &w->ctx, r, err);
	if (ctx) {
		struct http_req *req = ctx->req;
		json_t *revs = json_array();
		for (size_t i = 0; i < h->nflaky_revisions; i++)
			json_array_append_new(revs, json_string(h->flaky_revisions[i]));
		json_t *item = json_pack(
			"{s:I,s:s,s:I,s:o,s:o,s:o,s:o,s:I,s:b,s:o}", "builderid",
			(json_int_t)w->builderid, "test_name", http_req_arg(req, "test_name"),
			"results_seen", (json_int_t)h->results_seen, "last_results",
			h->last_results == RESULTS_NONE ? json_null()
							: json_integer(h->last_results),
			"last_build", api_tests_build_ref(h->last_buildid, h->last_number),
			"last_passing_build",
			api_tests_build_ref(h->last_passing_buildid, h->last_passing_number),
			"first_failing_build",
			api_tests_build_ref(h->first_failing_buildid, h->first_failing_number),
			"failing_builds", (json_int_t)h->failing_builds, "flaky", h->flaky,
			"flaky_revisions", revs);
		if (!item)
			api_reply_error(ctx, 500, "cannot render the test history");
		else
			api_reply_json(ctx, 200,
				       json_pack("{s:[o],s:{s:i}}", "test_history", item, "meta",
						 "total", 1));
	}
	http_deferred_end(w->d);
	free(w);
}

static void api_builder_test_history_then(struct api_ctx *ctx, int64_t builderid, void *arg)
{
	struct api_tests_wait *w = xcalloc(1, sizeof(*w));
	w->ctx = *ctx;
	w->ctx.ncap = 0;
	w->builderid = builderid;
	int r = db_test_history_async(ctx->db, builderid, http_req_arg(ctx->req, "test_name"),
				      api_tests_history_answered, w);
	if (r < 0) {
		api_reply_db_error(ctx, r);
		free(w);
		return;
	}
	w->d = http_req_defer(ctx->req);
}
