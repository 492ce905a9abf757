/*
 * Parses a test report as it streams in and stores its records as
 * Buildbot test results (testingest.h): the consumer of testreport.h's
 * callback, batching rows into db_test_results_add() calls.
 */
#include "master/testingest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "db/db.h"

struct testingest {
	struct db *db; /* borrowed */
	int64_t setid;
	struct testreport *tr;
	struct db_test_result *batch; /* strings owned */
	size_t n, alloc;
	struct testreport_summary stored; /* counts of the rows written */
	int err;
	char *errmsg; /* owned */
};

static void testingest_batch_clear(struct testingest *ti)
{
	for (size_t i = 0; i < ti->n; i++) {
		free((char *)ti->batch[i].test_name);
		free((char *)ti->batch[i].test_code_path);
		free((char *)ti->batch[i].message);
	}
	ti->n = 0;
}

static int testingest_flush(struct testingest *ti)
{
	if (ti->n == 0)
		return 0;
	int r = db_test_results_add(ti->db, ti->setid, ti->batch, ti->n);
	if (r >= 0) {
		for (size_t i = 0; i < ti->n; i++) {
			ti->stored.total++;
			if (ti->batch[i].results == RESULTS_FAILURE)
				ti->stored.failed++;
			else if (ti->batch[i].results == RESULTS_SKIPPED)
				ti->stored.skipped++;
			else
				ti->stored.passed++;
		}
	}
	testingest_batch_clear(ti);
	if (r < 0 && ti->err >= 0) {
		ti->err = r;
		ti->errmsg = xasprintf("cannot store test results: %s", db_errmsg(ti->db));
	}
	return r;
}

static int testingest_record(void *ud, const struct testreport_record *rec)
{
	struct testingest *ti = ud;
	ARRAY_GROW(ti->batch, ti->n + 1, ti->alloc);
	ti->batch[ti->n++] = (struct db_test_result){
		.test_name = xstrdup(rec->name),
		.test_code_path = xstrdup_or_null(rec->file),
		.line = rec->line,
		.duration_ns = rec->duration_ms >= 0 ? rec->duration_ms * 1000000 : -1,
		.results = rec->result,
		.message = *rec->message ? xstrdup(rec->message) : NULL,
	};
	return ti->n >= KILN_TESTINGEST_BATCH ? testingest_flush(ti) : 0;
}

int testingest_begin(struct db *db, int64_t builderid, int64_t buildid, int64_t stepid,
		     enum testreport_format format, const char *description,
		     struct testingest **ret)
{
	struct db_test_result_set_new n = {
		.builderid = builderid,
		.buildid = buildid,
		.stepid = stepid,
		.description = description,
		.category = "pass_fail",
		.value_unit = "boolean",
	};
	int64_t setid;
	int r = db_test_result_set_add(db, &n, &setid);
	if (r < 0)
		return r;
	struct testingest *ti = xcalloc(1, sizeof(*ti));
	ti->db = db;
	ti->setid = setid;
	ti->tr = testreport_new(format, testingest_record, ti);
	*ret = ti;
	return 0;
}

/* Keeps the first error, with the parser's message unless storage said
 * something already. */
static int testingest_fail(struct testingest *ti, int r)
{
	if (ti->err >= 0) {
		ti->err = r;
		free(ti->errmsg);
		ti->errmsg = xstrdup(testreport_errmsg(ti->tr));
	}
	return ti->err;
}

int testingest_feed(struct testingest *ti, const void *data, size_t len)
{
	if (ti->err < 0)
		return ti->err;
	int r = testreport_feed(ti->tr, data, len);
	return r < 0 ? testingest_fail(ti, r) : 0;
}

int testingest_end(struct testingest *ti, struct testreport_summary *ret_summary, char **ret_err)
{
	int r = ti->err;
	if (r >= 0) {
		r = testreport_finish(ti->tr, NULL);
		if (r < 0)
			r = testingest_fail(ti, r);
	}
	/* what was parsed before an error is stored too, unless storage failed */
	int rf = ti->err == KILN_EDB ? ti->err : testingest_flush(ti);
	if (rf >= 0)
		rf = db_test_result_set_complete(ti->db, ti->setid, ti->stored.passed,
						 ti->stored.failed, ti->stored.skipped);
	if (rf < 0 && r >= 0) {
		r = rf;
		free(ti->errmsg);
		ti->errmsg = xasprintf("cannot store test results: %s", db_errmsg(ti->db));
	}
	if (ret_summary)
		*ret_summary = ti->stored;
	if (r < 0 && ret_err)
		*ret_err = TAKE_PTR(ti->errmsg);
	testingest_batch_clear(ti);
	free(ti->batch);
	free(ti->errmsg);
	testreport_free(ti->tr);
	free(ti);
	return r < 0 ? r : 0;
}

int64_t testingest_setid(const struct testingest *ti)
{
	return ti->setid;
}
