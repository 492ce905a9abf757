/*
 * A pg_conn on a test's loop (issue 14 unit tests): open one to the test's
 * server (pg-test.h) and read one value of a query.  Include after tap.h,
 * pg-test.h and wait.h.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <uv.h>

#include "db/pg-conn.h"

static bool pg_loop_test_ready(void *arg)
{
	return pg_conn_state(arg) == PG_CONN_READY;
}

/* A connection to pg_test.url on loop, connected (a TAP failure if not). */
static inline struct pg_conn *pg_loop_test_conn(uv_loop_t *loop)
{
	struct pg_conn_opts o = {.conninfo = pg_test.url};
	struct pg_conn *c = NULL;
	if (pg_conn_new(loop, &o, &c) < 0)
		TAP_FAIL("pg_conn_new: %s", pg_conn_new_errmsg());
	else if (!test_run_until(loop, pg_loop_test_ready, c, TEST_GUARD_MS))
		TAP_FAIL("no connection to %s", pg_test.url);
	return c;
}

struct pg_loop_test_answer {
	bool done;
	char val[256]; /* the first row's first value, or "ERR message" */
};

static void pg_loop_test_on_answer(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_loop_test_answer *a = arg;
	a->done = true;
	if (r < 0 || !res || PQntuples(res) < 1)
		snprintf(a->val, sizeof(a->val), "ERR %s", err ? err : "");
	else
		snprintf(a->val, sizeof(a->val), "%s", PQgetvalue(res, 0, 0));
}

static bool pg_loop_test_answered(void *arg)
{
	return ((struct pg_loop_test_answer *)arg)->done;
}

/* sql's first value on c (the loop runs until it is answered, bounded). */
static inline const char *pg_loop_test_value(uv_loop_t *loop, struct pg_conn *c, const char *sql,
					     struct pg_loop_test_answer *a)
{
	*a = (struct pg_loop_test_answer){0};
	struct pg_query q = {.sql = sql};
	if (pg_conn_send(c, &q, pg_loop_test_on_answer, a) < 0 ||
	    !test_run_until(loop, pg_loop_test_answered, a, TEST_GUARD_MS))
		snprintf(a->val, sizeof(a->val), "ERR no answer");
	return a->val;
}
