/*
 * src/db/pg-conn.c against a real PostgreSQL server (scripts/pg-start in a
 * throwaway directory, tests/unit/pg-test.h): pipelined queries and their
 * order, parameters (text, NULL, binary), errors per query, transactions
 * across queries, multi-statement queries, LISTEN/NOTIFY, the queue's caps,
 * bad input, a failed connection and its backoff, host names resolved on
 * the thread pool, a server restart and the reconnection, the
 * callbacks of a freed connection, and a loop that keeps turning while a
 * query runs.  Skips (a failure under CI=true) when no server can start.
 */
#include "tap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "db/pg-conn.h"
#include "pg-test.h"
#include "wait.h"

static uv_loop_t loop;

/* What one query's callback saw. */
struct answer {
	bool done;
	int calls;
	int r;
	int order; /* position among the answers of its test */
	char *val; /* first column of the first row, if any */
	int len;   /* its length */
	char *err;
	char *sqlstate;
	char *cmd; /* PQcmdStatus */
};

static int answers_seen;

static void answer_release(struct answer *a)
{
	free(a->val);
	free(a->err);
	free(a->sqlstate);
	free(a->cmd);
	memset(a, 0, sizeof(*a));
}

static void on_answer(void *arg, int r, const PGresult *res, const char *err)
{
	struct answer *a = arg;
	a->calls++;
	a->done = true;
	a->r = r;
	a->order = answers_seen++;
	free(a->val);
	free(a->err);
	free(a->sqlstate);
	free(a->cmd);
	a->val = a->err = a->sqlstate = a->cmd = NULL;
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 &&
	    PQnfields(res) > 0 && !PQgetisnull(res, 0, 0)) {
		a->len = PQgetlength(res, 0, 0);
		a->val = xmemdup(PQgetvalue(res, 0, 0), (size_t)a->len + 1);
	}
	if (res) {
		a->cmd = xstrdup(PQcmdStatus((PGresult *)res));
		const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		a->sqlstate = xstrdup_or_null(st);
	}
	a->err = xstrdup_or_null(err);
}

static bool answer_done(void *arg)
{
	return ((struct answer *)arg)->done;
}

struct watch {
	int states[32];
	int nstates;
	int ready, waiting;
	char why[1024];
	int notes;
	char channel[64], payload[256];
	int pid;
};

static void on_state(void *arg, enum pg_conn_state st, const char *why)
{
	struct watch *w = arg;
	if (w->nstates < 32)
		w->states[w->nstates++] = (int)st;
	if (st == PG_CONN_READY)
		w->ready++;
	if (st == PG_CONN_WAITING) {
		w->waiting++;
		snprintf(w->why, sizeof(w->why), "%s", why ? why : "(null)");
	}
}

static void on_notify(void *arg, const char *channel, const char *payload, int pid)
{
	struct watch *w = arg;
	w->notes++;
	snprintf(w->channel, sizeof(w->channel), "%s", channel);
	snprintf(w->payload, sizeof(w->payload), "%s", payload);
	w->pid = pid;
}

static struct pg_conn *conn_open(const char *url, struct watch *w, struct pg_conn_opts *extra)
{
	struct pg_conn_opts o = extra ? *extra : (struct pg_conn_opts){0};
	o.conninfo = url;
	o.on_state = on_state;
	o.on_notify = on_notify;
	o.arg = w;
	struct pg_conn *c = NULL;
	int r = pg_conn_new(&loop, &o, &c);
	if (r < 0)
		TAP_FAIL("pg_conn_new: %s", pg_conn_new_errmsg());
	return c;
}

static bool is_ready(void *arg)
{
	return pg_conn_state(arg) == PG_CONN_READY;
}

static bool is_waiting(void *arg)
{
	return pg_conn_state(arg) == PG_CONN_WAITING;
}

static void conn_close(struct pg_conn *c)
{
	pg_conn_free(c);
	uv_run(&loop, UV_RUN_NOWAIT); /* the handles' close callbacks */
}

/* Runs one query to its answer. */
static void run_query(struct pg_conn *c, const char *sql, int n, const char *const *v,
		      struct answer *a)
{
	answer_release(a);
	int r = pg_conn_query(c, sql, n, v, on_answer, a);
	if (r < 0) {
		TAP_FAIL("pg_conn_query '%s': %s", sql, err_str(r));
		return;
	}
	if (!test_run_until(&loop, answer_done, a, TEST_GUARD_MS))
		TAP_FAIL("no answer to '%s'", sql);
}

TEST(connect_and_select)
{
	struct watch w = {0};
	struct pg_conn *c = conn_open(pg_test.url, &w, NULL);
	CHECK_INT(pg_conn_state(c), PG_CONN_CONNECTING);
	CHECK_INT(w.nstates, 0); /* no callback from pg_conn_new */
	struct answer a = {0};
	run_query(c, "SELECT 1 + 1", 0, NULL, &a);
	CHECK_INT(a.r, 0);
	CHECK_STR(a.val, "2");
	CHECK_INT(a.calls, 1);
	CHECK_INT(pg_conn_state(c), PG_CONN_READY);
	CHECK_INT(w.ready, 1);
	CHECK(pg_conn_backend_pid(c) > 0);
	CHECK_INT(pg_conn_pending(c), 0);
	answer_release(&a);
	conn_close(c);
}

TEST(parameters)
{
	struct watch w = {0};
	struct pg_conn *c = conn_open(pg_test.url, &w, NULL);
	struct answer a = {0};
	const char *v[] = {"40", "2"};
	run_query(c, "SELECT $1::int + $2::int", 2, v, &a);
	CHECK_INT(a.r, 0);
	CHECK_STR(a.val, "42");

	const char *text = "it's \"quoted\"; DROP TABLE x; -- \xc3\xbc";
	const char *v2[] = {text, NULL};
	run_query(c, "SELECT $1::text || coalesce($2::text, '|null')", 2, v2, &a);
	CHECK_INT(a.r, 0);
	char *want = xasprintf("%s|null", text);
	CHECK_STR(a.val, want);
	free(want);

	/* binary in and out: a bytea with a NUL inside */
	const char blob[] = {'a', '\0', 'b', '\xff', 'c'};
	const char *bv[] = {blob};
	int lens[] = {5}, fmts[] = {1};
	struct pg_query q = {.sql = "SELECT $1::bytea",
			     .nparams = 1,
			     .values = bv,
			     .lengths = lens,
			     .formats = fmts,
			     .binary_result = true};
	answer_release(&a);
	CHECK_INT(pg_conn_send(c, &q, on_answer, &a), 0);
	CHECK(test_run_until(&loop, answer_done, &a, TEST_GUARD_MS));
	CHECK_INT(a.r, 0);
	CHECK_INT(a.len, 5);
	CHECK(a.val && !memcmp(a.val, blob, 5));
	q.sql = "SELECT octet_length($1::bytea)";
	q.binary_result = false;
	answer_release(&a);
	CHECK_INT(pg_conn_send(c, &q, on_answer, &a), 0);
	CHECK(test_run_until(&loop, answer_done, &a, TEST_GUARD_MS));
	CHECK_STR(a.val, "5");
	answer_release(&a);
	conn_close(c);
}

#define NPIPE 200

struct pipe_state {
	struct answer a[NPIPE];
	int n;
};

static bool pipe_all(void *arg)
{
	struct pipe_state *p = arg;
	for (int i = 0; i < p->n; i++)
		if (!p->a[i].done)
			return false;
	return true;
}

TEST(pipeline_in_order)
{
	struct watch w = {0};
	struct pg_conn *c = conn_open(pg_test.url, &w, NULL);
	static struct pipe_state p;
	memset(&p, 0, sizeof(p));
	p.n = NPIPE;
	answers_seen = 0;
	/* queued before the connection exists: sent together once it does */
	for (int i = 0; i < NPIPE; i++) {
		char num[16];
		snprintf(num, sizeof(num), "%d", i);
		const char *v[] = {num};
		CHECK_INT(pg_conn_query(c, "SELECT $1::int * 2", 1, v, on_answer, &p.a[i]), 0);
	}
	CHECK_INT(pg_conn_pending(c), NPIPE);
	CHECK(test_run_until(&loop, pipe_all, &p, TEST_GUARD_MS));
	int bad = 0;
	for (int i = 0; i < NPIPE; i++) {
		char want[16];
		snprintf(want, sizeof(want), "%d", i * 2);
		if (p.a[i].r != 0 || p.a[i].order != i || p.a[i].calls != 1 || !p.a[i].val ||
		    strcmp(p.a[i].val, want))
			bad++;
		answer_release(&p.a[i]);
	}
	CHECK_INT(bad, 0);
	CHECK_INT(pg_conn_pending(c), 0);
	conn_close(c);
}

TEST(errors_per_query)
{
	struct watch w = {0};
	struct pg_conn *c = conn_open(pg_test.url, &w, NULL);
	struct answer a[4] = {0};
	answers_seen = 0;
	CHECK_INT(pg_conn_query(c, "SELECT 1", 0, NULL, on_answer, &a[0]), 0);
	CHECK_INT(pg_conn_query(c, "SELEC oops", 0, NULL, on_answer, &a[1]), 0);
	CHECK_INT(pg_conn_query(c, "SELECT 1/0", 0, NULL, on_answer, &a[2]), 0);
	CHECK_INT(pg_conn_query(c, "SELECT 3", 0, NULL, on_answer, &a[3]), 0);
	CHECK(test_run_until(&loop, answer_done, &a[3], TEST_GUARD_MS));
	CHECK_INT(a[0].r, 0);
	CHECK_INT(a[1].r, KILN_EDB);
	CHECK(a[1].err && strstr(a[1].err, "syntax error"));
	CHECK_STR(a[1].sqlstate, "42601");
	CHECK_INT(a[2].r, KILN_EDB);
	CHECK_STR(a[2].sqlstate, "22012");
	CHECK(a[2].err && strstr(a[2].err, "division by zero"));
	CHECK_INT(a[3].r, 0);
	CHECK_STR(a[3].val, "3");
	CHECK_INT(pg_conn_state(c), PG_CONN_READY);
	for (int i = 0; i < 4; i++) {
		CHECK_INT(a[i].order, i);
		answer_release(&a[i]);
	}
	conn_close(c);
}

TEST(transaction_across_queries)
{
	struct watch w = {0};
	struct pg_conn *c = conn_open(pg_test.url, &w, NULL);
	const char *sqls[] = {"CREATE TEMP TABLE t (x int NOT NULL)",
			      "BEGIN",
			      "INSERT INTO t VALUES (1)",
			      "INSERT INTO t VALUES (NULL)",
			      "INSERT INTO t VALUES (2)",
			      "COMMIT",
			      "SELECT count(*) FROM t",
			      "BEGIN",
			      "INSERT INTO t VALUES (3)",
			      "COMMIT",
			      "SELECT count(*) FROM t"};
	enum { N = ARRAY_SIZE(sqls) };
	struct answer a[N] = {0};
	for (size_t i = 0; i < N; i++)
		CHECK_INT(pg_conn_query(c, sqls[i], 0, NULL, on_answer, &a[i]), 0);
	CHECK(test_run_until(&loop, answer_done, &a[N - 1], TEST_GUARD_MS));
	CHECK_INT(a[2].r, 0);
	CHECK_INT(a[3].r, KILN_EDB); /* not null violation */
	CHECK_STR(a[3].sqlstate, "23502");
	CHECK_INT(a[4].r, KILN_EDB); /* the transaction is aborted */
	CHECK_STR(a[4].sqlstate, "25P02");
	CHECK_INT(a[5].r, 0);
	CHECK_STR(a[5].cmd, "ROLLBACK"); /* COMMIT of an aborted transaction */
	CHECK_STR(a[6].val, "0");
	CHECK_INT(a[9].r, 0);
	CHECK_STR(a[9].cmd, "COMMIT");
	CHECK_STR(a[10].val, "1");
	for (size_t i = 0; i < N; i++)
		answer_release(&a[i]);
	conn_close(c);
}

static int send_multi(struct pg_conn *c, const char *sql, struct answer *a)
{
	struct pg_query q = {.sql = sql, .multi = true};
	return pg_conn_send(c, &q, on_answer, a);
}

TEST(multi_statement)
{
	struct watch w = {0};
	struct pg_conn *c = conn_open(pg_test.url, &w, NULL);
	struct answer a[6] = {0};
	answers_seen = 0;
	/* between pipelined queries: each waits its turn, order is kept */
	CHECK_INT(pg_conn_query(c, "SELECT 1", 0, NULL, on_answer, &a[0]), 0);
	CHECK_INT(send_multi(c,
			     "CREATE TEMP TABLE m (x int); INSERT INTO m VALUES (1), (2);\n"
			     "-- a comment\nSELECT count(*) FROM m;",
			     &a[1]),
		  0);
	CHECK_INT(pg_conn_query(c, "SELECT count(*) FROM m", 0, NULL, on_answer, &a[2]), 0);
	/* a failing one ran nothing: one implicit transaction */
	CHECK_INT(send_multi(c, "CREATE TEMP TABLE m2 (x int); SELEC 1; SELECT 1", &a[3]), 0);
	CHECK_INT(send_multi(c, "SELECT to_regclass('pg_temp.m2') IS NULL", &a[4]), 0);
	CHECK_INT(pg_conn_query(c, "SELECT 6", 0, NULL, on_answer, &a[5]), 0);
	CHECK(test_run_until(&loop, answer_done, &a[5], TEST_GUARD_MS));
	CHECK_INT(a[1].r, 0);
	CHECK_STR(a[1].val, "2");
	CHECK_STR(a[2].val, "2");
	CHECK_INT(a[3].r, KILN_EDB);
	CHECK_STR(a[3].sqlstate, "42601");
	CHECK_STR(a[4].val, "t");
	CHECK_STR(a[5].val, "6");
	for (int i = 0; i < 6; i++) {
		CHECK_INT(a[i].order, i);
		answer_release(&a[i]);
	}
	const char *v[] = {"1"};
	struct pg_query q = {.sql = "SELECT $1", .nparams = 1, .values = v, .multi = true};
	CHECK_INT(pg_conn_send(c, &q, on_answer, &a[0]), -EINVAL);
	conn_close(c);
}

static bool got_note(void *arg)
{
	return ((struct watch *)arg)->notes > 0;
}

TEST(listen_notify)
{
	struct watch wa = {0}, wb = {0};
	struct pg_conn *a = conn_open(pg_test.url, &wa, NULL);
	struct pg_conn *b = conn_open(pg_test.url, &wb, NULL);
	CHECK_INT(pg_conn_listen(a, "kiln_events"), 0);
	CHECK_INT(pg_conn_listen(a, "kiln_events"), 0); /* once is enough */
	CHECK(test_run_until(&loop, is_ready, a, TEST_GUARD_MS));
	CHECK(test_run_until(&loop, is_ready, b, TEST_GUARD_MS));
	/* a's LISTEN went first on its connection: a query after it is after it */
	struct answer x = {0};
	run_query(a, "SELECT 1", 0, NULL, &x);

	const char *v[] = {"kiln_events", "build 42 finished"};
	run_query(b, "SELECT pg_notify($1, $2)", 2, v, &x);
	CHECK_INT(x.r, 0);
	CHECK(test_run_until(&loop, got_note, &wa, TEST_GUARD_MS));
	CHECK_STR(wa.channel, "kiln_events");
	CHECK_STR(wa.payload, "build 42 finished");
	CHECK_INT(wa.pid, pg_conn_backend_pid(b));
	CHECK_INT(wb.notes, 0); /* b does not listen */

	/* one's own notification comes back with one's own pid */
	wa.notes = 0;
	run_query(a, "NOTIFY kiln_events, 'self'", 0, NULL, &x);
	CHECK(test_run_until(&loop, got_note, &wa, TEST_GUARD_MS));
	CHECK_STR(wa.payload, "self");
	CHECK_INT(wa.pid, pg_conn_backend_pid(a));

	/* listening on a connection already up */
	CHECK_INT(pg_conn_listen(b, "other_channel"), 0);
	run_query(b, "SELECT 1", 0, NULL, &x); /* answered after the LISTEN before it */
	const char *v2[] = {"other_channel", ""};
	run_query(a, "SELECT pg_notify($1, $2)", 2, v2, &x);
	CHECK(test_run_until(&loop, got_note, &wb, TEST_GUARD_MS));
	CHECK_STR(wb.channel, "other_channel");
	CHECK_STR(wb.payload, "");
	answer_release(&x);
	conn_close(a);
	conn_close(b);
}

TEST(queue_caps)
{
	struct watch w = {0};
	struct pg_conn_opts o = {.max_queue = 4, .max_queue_bytes = 1024};
	struct pg_conn *c = conn_open(pg_test.url, &w, &o);
	struct answer a[5] = {0};
	for (int i = 0; i < 4; i++)
		CHECK_INT(pg_conn_query(c, "SELECT 1", 0, NULL, on_answer, &a[i]), 0);
	CHECK_INT(pg_conn_query(c, "SELECT 1", 0, NULL, on_answer, &a[4]), -ENOBUFS);
	CHECK_INT(pg_conn_pending(c), 4);
	CHECK(test_run_until(&loop, answer_done, &a[3], TEST_GUARD_MS));
	CHECK_INT(pg_conn_pending(c), 0);
	CHECK(!a[4].done); /* refused: never called */

	/* bytes: a parameter over the cap is refused, one under it passes */
	char *big = xmalloc(2000);
	memset(big, 'x', 1999);
	big[1999] = '\0';
	const char *v[] = {big};
	CHECK_INT(pg_conn_query(c, "SELECT length($1)", 1, v, on_answer, &a[4]), -ENOBUFS);
	big[900] = '\0';
	answer_release(&a[4]);
	CHECK_INT(pg_conn_query(c, "SELECT length($1)", 1, v, on_answer, &a[4]), 0);
	CHECK(test_run_until(&loop, answer_done, &a[4], TEST_GUARD_MS));
	CHECK_STR(a[4].val, "900");
	free(big);
	for (int i = 0; i < 5; i++)
		answer_release(&a[i]);
	conn_close(c);
}

TEST(bad_input)
{
	struct pg_conn_opts o = {.conninfo = "postgresql://[::1"};
	struct pg_conn *c = NULL;
	CHECK_INT(pg_conn_new(&loop, &o, &c), KILN_ECONFIG);
	CHECK(c == NULL);
	CHECK(strstr(pg_conn_new_errmsg(), "invalid database URL") != NULL);
	o.conninfo = "host=/tmp nosuchkey=1";
	CHECK_INT(pg_conn_new(&loop, &o, &c), KILN_ECONFIG);
	CHECK(strstr(pg_conn_new_errmsg(), "nosuchkey") != NULL);
	o.conninfo = NULL;
	CHECK_INT(pg_conn_new(&loop, &o, &c), -EINVAL);

	struct watch w = {0};
	c = conn_open(pg_test.url, &w, NULL);
	const char *badnames[] = {
		"",
		"Upper",
		"1st",
		"a;b",
		"a\"b",
		"sp ace",
		"a234567890123456789012345678901234567890123456789012345678901234"};
	for (size_t i = 0; i < ARRAY_SIZE(badnames); i++)
		CHECK_INT(pg_conn_listen(c, badnames[i]), -EINVAL);
	CHECK_INT(pg_conn_listen(c, NULL), -EINVAL);
	struct answer a = {0};
	CHECK_INT(pg_conn_query(c, NULL, 0, NULL, on_answer, &a), -EINVAL);
	CHECK_INT(pg_conn_query(c, "SELECT 1", -1, NULL, on_answer, &a), -EINVAL);
	CHECK_INT(pg_conn_query(c, "SELECT 1", 70000, NULL, on_answer, &a), -EINVAL);
	CHECK_INT(pg_conn_query(c, "SELECT 1", 0, NULL, NULL, NULL), -EINVAL);
	/* a parameter count the SQL does not match: the server says so */
	const char *v[] = {"1", "2"};
	run_query(c, "SELECT $1::int", 2, v, &a);
	CHECK_INT(a.r, KILN_EDB);
	CHECK(a.err && *a.err);
	run_query(c, "SELECT 7", 0, NULL, &a);
	CHECK_STR(a.val, "7");
	answer_release(&a);
	conn_close(c);
}

static bool waited_twice(void *arg)
{
	return ((struct watch *)arg)->waiting >= 2;
}

TEST(connect_failure_and_backoff)
{
	struct watch w = {0};
	struct pg_conn_opts o = {.backoff_first_ms = 20, .backoff_max_ms = 40};
	struct pg_conn *c = conn_open("host=/nonexistent/kiln-pg dbname=kiln", &w, &o);
	struct answer a = {0};
	CHECK_INT(pg_conn_query(c, "SELECT 1", 0, NULL, on_answer, &a), 0);
	CHECK(test_run_until(&loop, answer_done, &a, TEST_GUARD_MS));
	CHECK_INT(a.r, -ENOTCONN);
	CHECK(a.err && strstr(a.err, "cannot connect to the database server"));
	CHECK(a.err && strstr(a.err, "/nonexistent/kiln-pg"));
	CHECK(strstr(pg_conn_errmsg(c), "/nonexistent/kiln-pg") != NULL);
	if (pg_conn_state(c) == PG_CONN_WAITING) {
		struct answer b = {0};
		CHECK_INT(pg_conn_query(c, "SELECT 1", 0, NULL, on_answer, &b), -ENOTCONN);
		CHECK(!b.done);
	}
	/* it tries again after the backoff, and fails again */
	CHECK(test_run_until(&loop, waited_twice, &w, TEST_GUARD_MS));
	CHECK_INT(w.ready, 0);
	CHECK_INT(w.states[0], PG_CONN_WAITING);
	CHECK_INT(w.states[1], PG_CONN_CONNECTING);
	CHECK_INT(w.states[2], PG_CONN_WAITING);
	answer_release(&a);
	conn_close(c);
}

TEST(host_names_resolved_off_the_loop)
{
	/* a name: resolved on the thread pool, then handed to libpq as
	 * hostaddr (its message names the address); nothing listens on port 1 */
	struct watch w = {0};
	struct pg_conn_opts o = {.backoff_first_ms = 10000, .connect_timeout_ms = 30000};
	struct pg_conn *c = conn_open("host=localhost port=1 dbname=kiln", &w, &o);
	struct answer a = {0};
	CHECK_INT(pg_conn_query(c, "SELECT 1", 0, NULL, on_answer, &a), 0);
	CHECK(test_run_until(&loop, answer_done, &a, TEST_GUARD_MS));
	CHECK_INT(a.r, -ENOTCONN);
	CHECK(a.err &&
	      (strstr(a.err, "at \"127.0.0.1\", port 1") || strstr(a.err, "at \"::1\", port 1")));
	CHECK(a.err && strstr(a.err, "refused"));
	if (a.err)
		printf("# %.*s\n", (int)strcspn(a.err, "\n"), a.err);
	conn_close(c);

	/* a name that does not resolve */
	c = conn_open("host=no-such-host.invalid,/also/not/here dbname=kiln", &w, &o);
	answer_release(&a);
	CHECK_INT(pg_conn_query(c, "SELECT 1", 0, NULL, on_answer, &a), 0);
	CHECK(test_run_until(&loop, answer_done, &a, TEST_GUARD_MS));
	CHECK_INT(a.r, -ENOTCONN);
	CHECK(a.err && strstr(a.err, "cannot resolve 'no-such-host.invalid'"));
	if (a.err)
		printf("# %.*s\n", (int)strcspn(a.err, "\n"), a.err);
	answer_release(&a);
	conn_close(c);
}

static bool ready_twice(void *arg)
{
	return ((struct watch *)arg)->ready >= 2;
}

TEST(server_restart_reconnects)
{
	struct watch w = {0};
	struct pg_conn_opts o = {.backoff_first_ms = 50, .backoff_max_ms = 400};
	struct pg_conn *c = conn_open(pg_test.url, &w, &o);
	CHECK_INT(pg_conn_listen(c, "kiln_restart"), 0);
	struct answer slow = {0}, x = {0};
	run_query(c, "SELECT 1", 0, NULL, &x);
	CHECK_INT(pg_conn_query(c, "SELECT pg_sleep(120)", 0, NULL, on_answer, &slow), 0);
	/* the sleep is on the server before it stops */
	uv_run(&loop, UV_RUN_NOWAIT);
	if (pg_test_stop() < 0)
		TAP_FAIL("%s", pg_test.why);
	CHECK(test_run_until(&loop, answer_done, &slow, TEST_GUARD_MS));
	CHECK_INT(slow.r, -ECONNRESET);
	CHECK(slow.err && strstr(slow.err, "connection to the database server lost"));
	CHECK(test_run_until(&loop, is_waiting, c, TEST_GUARD_MS));
	CHECK(w.waiting >= 1);
	CHECK_INT(pg_conn_backend_pid(c), 0);

	if (pg_test_start_again() < 0)
		TAP_FAIL("%s", pg_test.why);
	CHECK(test_run_until(&loop, ready_twice, &w, TEST_GUARD_MS));
	run_query(c, "SELECT 5", 0, NULL, &x);
	CHECK_INT(x.r, 0);
	CHECK_STR(x.val, "5");
	/* its LISTEN was made again on the new connection */
	struct watch wb = {0};
	struct pg_conn *b = conn_open(pg_test.url, &wb, NULL);
	const char *v[] = {"kiln_restart", "back"};
	run_query(b, "SELECT pg_notify($1, $2)", 2, v, &x);
	CHECK(test_run_until(&loop, got_note, &w, TEST_GUARD_MS));
	CHECK_STR(w.payload, "back");
	answer_release(&slow);
	answer_release(&x);
	conn_close(b);
	conn_close(c);
}

/* scripts/pg-start on a directory whose server runs: refused, clearly */
TEST(pg_start_refuses_a_running_server)
{
	CHECK_INT(pg_test_start_again(), -1);
	CHECK(strstr(pg_test.why, "a server already runs in") != NULL);
	printf("# %s\n", pg_test.why);
	/* and the server still answers */
	struct watch w = {0};
	struct pg_conn *c = conn_open(pg_test.url, &w, NULL);
	struct answer a = {0};
	run_query(c, "SELECT 8", 0, NULL, &a);
	CHECK_STR(a.val, "8");
	answer_release(&a);
	conn_close(c);
}

struct free_in_cb {
	struct pg_conn *c;
	struct answer a;
};

static void free_on_answer(void *arg, int r, const PGresult *res, const char *err)
{
	struct free_in_cb *f = arg;
	on_answer(&f->a, r, res, err);
	pg_conn_free(f->c);
	pg_conn_free(f->c); /* twice is once */
	/* a query after the free is refused */
	struct answer z = {0};
	CHECK_INT(pg_conn_query(f->c, "SELECT 1", 0, NULL, on_answer, &z), -ECANCELED);
}

TEST(free_cancels)
{
	struct watch w = {0};
	struct pg_conn *c = conn_open(pg_test.url, &w, NULL);
	struct answer a[3] = {0};
	for (int i = 0; i < 3; i++)
		CHECK_INT(pg_conn_query(c, "SELECT 1", 0, NULL, on_answer, &a[i]), 0);
	pg_conn_free(c);
	for (int i = 0; i < 3; i++) {
		CHECK_INT(a[i].calls, 1);
		CHECK_INT(a[i].r, -ECANCELED);
		answer_release(&a[i]);
	}
	uv_run(&loop, UV_RUN_NOWAIT);
	pg_conn_free(NULL);

	/* freed from inside an answer: the rest are cancelled, none twice */
	static struct free_in_cb f;
	memset(&f, 0, sizeof(f));
	f.c = conn_open(pg_test.url, &w, NULL);
	struct answer b[2] = {0};
	CHECK_INT(pg_conn_query(f.c, "SELECT 1", 0, NULL, free_on_answer, &f), 0);
	CHECK_INT(pg_conn_query(f.c, "SELECT 2", 0, NULL, on_answer, &b[0]), 0);
	CHECK_INT(pg_conn_query(f.c, "SELECT pg_sleep(30)", 0, NULL, on_answer, &b[1]), 0);
	CHECK(test_run_until(&loop, answer_done, &f.a, TEST_GUARD_MS));
	CHECK_INT(f.a.r, 0);
	CHECK_INT(f.a.calls, 1);
	CHECK_INT(b[0].calls, 1);
	CHECK_INT(b[1].calls, 1);
	CHECK_INT(b[1].r, -ECANCELED);
	uv_run(&loop, UV_RUN_NOWAIT);
	answer_release(&f.a);
	answer_release(&b[0]);
	answer_release(&b[1]);
}

/* One query after another, each sent from the answer of the one before. */
struct chain {
	struct pg_conn *c;
	int left, failed;
};

static void chain_next(void *arg, int r, const PGresult *res, const char *err)
{
	struct chain *ch = arg;
	(void)res;
	(void)err;
	if (r < 0)
		ch->failed++;
	if (--ch->left > 0 && pg_conn_query(ch->c, "SELECT 1", 0, NULL, chain_next, ch) < 0) {
		ch->failed++;
		ch->left = 0;
	}
}

static bool chain_done(void *arg)
{
	return ((struct chain *)arg)->left <= 0;
}

struct count {
	int n, failed;
};

static void count_answer(void *arg, int r, const PGresult *res, const char *err)
{
	struct count *k = arg;
	(void)res;
	(void)err;
	k->n++;
	if (r < 0)
		k->failed++;
}

static bool count_2000(void *arg)
{
	return ((struct count *)arg)->n >= 2000;
}

/* Not a gate: what pipelining buys, printed as a TAP comment (the numbers
 * in docs/SCALING.md).  Only completion is checked. */
TEST(pipeline_measure)
{
	struct watch w = {0};
	struct pg_conn *c = conn_open(pg_test.url, &w, NULL);
	CHECK(test_run_until(&loop, is_ready, c, TEST_GUARD_MS));
	struct count k = {0};
	uint64_t t0 = uv_hrtime();
	for (int i = 0; i < 2000; i++)
		CHECK_INT(pg_conn_query(c, "SELECT 1", 0, NULL, count_answer, &k), 0);
	CHECK(test_run_until(&loop, count_2000, &k, TEST_GUARD_MS));
	uint64_t t1 = uv_hrtime();
	CHECK_INT(k.failed, 0);
	struct chain ch = {.c = c, .left = 2000};
	CHECK_INT(pg_conn_query(c, "SELECT 1", 0, NULL, chain_next, &ch), 0);
	CHECK(test_run_until(&loop, chain_done, &ch, TEST_GUARD_MS));
	uint64_t t2 = uv_hrtime();
	CHECK_INT(ch.failed, 0);
	printf("# 2000 queries pipelined: %.1f ms (%.1f us each); one after another: %.1f ms "
	       "(%.1f us each)\n",
	       (double)(t1 - t0) / 1e6, (double)(t1 - t0) / 2000 / 1e3, (double)(t2 - t1) / 1e6,
	       (double)(t2 - t1) / 2000 / 1e3);
	conn_close(c);
}

static int ticks;
static int ticks_at_answer = -1;

static void on_tick(uv_timer_t *t)
{
	(void)t;
	ticks++;
}

static void tick_answer(void *arg, int r, const PGresult *res, const char *err)
{
	ticks_at_answer = ticks;
	on_answer(arg, r, res, err);
}

TEST(loop_turns_during_query)
{
	struct watch w = {0};
	struct pg_conn *c = conn_open(pg_test.url, &w, NULL);
	CHECK(test_run_until(&loop, is_ready, c, TEST_GUARD_MS));
	uv_timer_t t;
	uv_timer_init(&loop, &t);
	uv_timer_start(&t, on_tick, 5, 5);
	ticks = 0;
	struct answer a = {0};
	/* the loop keeps serving its timer while the server sleeps: a loop
	 * that waited on the server could not tick before the answer */
	CHECK_INT(pg_conn_query(c, "SELECT pg_sleep(0.5)", 0, NULL, tick_answer, &a), 0);
	CHECK(test_run_until(&loop, answer_done, &a, TEST_GUARD_MS));
	CHECK_INT(a.r, 0);
	CHECK(ticks_at_answer >= 1);
	uv_close((uv_handle_t *)&t, NULL);
	answer_release(&a);
	conn_close(c);
}

int main(int argc, char **argv)
{
	const char *why = pg_test_start(argc > 1 ? argv[1] : NULL);
	if (why)
		return tap_skip_all(why);
	atexit(pg_test_cleanup);
	uv_loop_init(&loop);
	RUN(connect_and_select);
	RUN(parameters);
	RUN(pipeline_in_order);
	RUN(errors_per_query);
	RUN(transaction_across_queries);
	RUN(multi_statement);
	RUN(listen_notify);
	RUN(queue_caps);
	RUN(bad_input);
	RUN(connect_failure_and_backoff);
	RUN(host_names_resolved_off_the_loop);
	if (pg_test.dir[0]) {
		RUN(server_restart_reconnects);
		RUN(pg_start_refuses_a_running_server);
	} else {
		printf("ok %d - server_restart_reconnects # SKIP KILN_TEST_PG_URL: no server of "
		       "ours to restart\n",
		       ++tap_n);
		printf("ok %d - pg_start_refuses_a_running_server # SKIP KILN_TEST_PG_URL\n",
		       ++tap_n);
	}
	RUN(free_cancels);
	RUN(loop_turns_during_query);
	RUN(pipeline_measure);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&loop), 0);
	pg_test_cleanup();
	return tap_done();
}
