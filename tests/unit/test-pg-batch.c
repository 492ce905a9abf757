/*
 * Writes batched per loop turn (src/db/pg-batch.c) on a real PostgreSQL
 * server (pg-test.h): one turn's writes are one transaction (one xmin), its
 * callbacks run after the commit; a failing statement rolls its whole
 * transaction back and the next one is not affected; a turn's writes wait
 * while another transaction is in flight and go after it, in order; a
 * callback with nothing pending is answered at the end of the turn; the
 * caps; freeing with writes pending; a lost connection; reads sent behind
 * the writes before them (pg_batch_read), which they see; a transaction
 * aborted for a deadlock sent again.
 */
#include "tap.h"
#include "pg-test.h"
#include "wait.h"
#include "pg-loop-test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/err.h"
#include "common/limits.h"
#include "db/pg-batch.h"
#include "db/pg-conn.h"

static uv_loop_t loop;

struct done {
	int calls;
	int r;
	char err[512];
	int order; /* which completion this was, counting across dones */
};
static int completions;

static void on_done(void *arg, int r, const char *err)
{
	struct done *d = arg;
	d->calls++;
	d->r = r;
	snprintf(d->err, sizeof(d->err), "%s", err ? err : "");
	d->order = ++completions;
}

static bool is_done(void *arg)
{
	return ((struct done *)arg)->calls > 0;
}

static void add(struct pg_batch *b, const char *sql)
{
	struct pg_query q = {.sql = sql};
	CHECK_INT(pg_batch_add(b, &q), 0);
}

static void add_param(struct pg_batch *b, const char *sql, const char *v)
{
	const char *vals[1] = {v};
	struct pg_query q = {.sql = sql, .nparams = 1, .values = vals};
	CHECK_INT(pg_batch_add(b, &q), 0);
}

TEST(one_turn_is_one_transaction)
{
	struct pg_conn *c = pg_loop_test_conn(&loop);
	struct pg_batch *b = NULL;
	CHECK_INT(pg_batch_new(&loop, c, &b), 0);
	struct pg_loop_test_answer a;
	pg_loop_test_value(&loop, c, "CREATE TABLE t1 (k text PRIMARY KEY, v int)", &a);
	add(b, "INSERT INTO t1 VALUES ('a', 1)");
	add_param(b, "INSERT INTO t1 VALUES ($1, 2)", "b");
	add_param(b, "INSERT INTO t1 VALUES ('c', $1)", NULL);
	struct done d = {0};
	pg_batch_then(b, on_done, &d);
	CHECK_INT((int)pg_batch_pending(b), 3);
	CHECK_INT(d.calls, 0); /* never from inside */
	CHECK(test_run_until(&loop, is_done, &d, TEST_GUARD_MS));
	CHECK_INT(d.r, 0);
	CHECK_INT((int)pg_batch_pending(b), 0);
	CHECK_STR(pg_loop_test_value(&loop, c, "SELECT count(*) FROM t1", &a), "3");
	CHECK_STR(pg_loop_test_value(&loop, c, "SELECT count(DISTINCT xmin::text) FROM t1", &a),
		  "1");
	CHECK_STR(pg_loop_test_value(&loop, c,
				     "SELECT coalesce(v::text, 'null') FROM t1 WHERE k = 'c'", &a),
		  "null");
	pg_batch_free(b);
	pg_conn_free(c);
	uv_run(&loop, UV_RUN_NOWAIT);
}

TEST(a_failing_statement_rolls_back_its_transaction_only)
{
	struct pg_conn *c = pg_loop_test_conn(&loop);
	struct pg_batch *b = NULL;
	CHECK_INT(pg_batch_new(&loop, c, &b), 0);
	struct pg_loop_test_answer a;
	pg_loop_test_value(&loop, c, "CREATE TABLE t2 (k text PRIMARY KEY)", &a);
	add(b, "INSERT INTO t2 VALUES ('x')");
	add(b, "INSERT INTO t2 VALUES ('x')"); /* a duplicate key */
	add(b, "INSERT INTO t2 VALUES ('y')");
	struct done d1 = {0};
	pg_batch_then(b, on_done, &d1);
	CHECK(test_run_until(&loop, is_done, &d1, TEST_GUARD_MS));
	CHECK_INT(d1.r, KILN_EDB);
	CHECK(strstr(d1.err, "duplicate key") != NULL);
	CHECK_STR(pg_loop_test_value(&loop, c, "SELECT count(*) FROM t2", &a), "0");
	/* the next one commits: no transaction was left open */
	add(b, "INSERT INTO t2 VALUES ('z')");
	struct done d2 = {0};
	pg_batch_then(b, on_done, &d2);
	CHECK(test_run_until(&loop, is_done, &d2, TEST_GUARD_MS));
	CHECK_INT(d2.r, 0);
	CHECK_STR(pg_loop_test_value(&loop, c, "SELECT string_agg(k, ',') FROM t2", &a), "z");
	pg_batch_free(b);
	pg_conn_free(c);
	uv_run(&loop, UV_RUN_NOWAIT);
}

/* KILN_TEST_FAIL_COMMIT's fault: the second transaction sent fails as a
 * commit would, the first and the third commit */
TEST(an_injected_failure_fails_the_nth_transaction)
{
	struct pg_conn *c = pg_loop_test_conn(&loop);
	struct pg_batch *b = NULL;
	CHECK_INT(pg_batch_new(&loop, c, &b), 0);
	struct pg_loop_test_answer a;
	pg_loop_test_value(&loop, c, "CREATE TABLE tf (k text PRIMARY KEY)", &a);
	pg_batch_fail_at(b, 2);
	const char *keys[] = {"a", "b", "c"};
	struct done d[3] = {{0}};
	for (int i = 0; i < 3; i++) {
		char sql[64];
		snprintf(sql, sizeof(sql), "INSERT INTO tf VALUES ('%s')", keys[i]);
		add(b, sql);
		pg_batch_then(b, on_done, &d[i]);
		CHECK(test_run_until(&loop, is_done, &d[i], TEST_GUARD_MS));
	}
	CHECK_INT(d[0].r, 0);
	CHECK_INT(d[1].r, KILN_EDB);
	CHECK(strstr(d[1].err, "injected by KILN_TEST_FAIL_COMMIT") != NULL);
	CHECK_INT(d[2].r, 0);
	CHECK_STR(pg_loop_test_value(&loop, c, "SELECT string_agg(k, ',' ORDER BY k) FROM tf", &a),
		  "a,c");
	pg_batch_free(b);
	pg_conn_free(c);
	uv_run(&loop, UV_RUN_NOWAIT);
}

struct turn2 {
	struct pg_batch *b;
	struct done *d;
	bool added;
};

/* On the turn after the first transaction was sent: more writes, one more callback. */
static void second_turn(uv_timer_t *t)
{
	struct turn2 *x = t->data;
	struct pg_query q = {.sql = "INSERT INTO t3 SELECT 'second', pg_sleep(0)"};
	if (pg_batch_add(x->b, &q) == 0)
		x->added = true;
	pg_batch_then(x->b, on_done, x->d);
}

TEST(later_turns_wait_for_the_one_in_flight)
{
	struct pg_conn *c = pg_loop_test_conn(&loop);
	struct pg_batch *b = NULL;
	CHECK_INT(pg_batch_new(&loop, c, &b), 0);
	struct pg_loop_test_answer a;
	pg_loop_test_value(&loop, c, "CREATE TABLE t3 (k text PRIMARY KEY, s text)", &a);
	/* the first transaction sleeps on the server: the second turn's writes wait */
	add(b, "INSERT INTO t3 SELECT 'first', pg_sleep(0.3)::text");
	struct done d1 = {0}, d2 = {0};
	pg_batch_then(b, on_done, &d1);
	struct turn2 x = {.b = b, .d = &d2};
	uv_timer_t timer;
	uv_timer_init(&loop, &timer);
	timer.data = &x;
	uv_timer_start(&timer, second_turn, 50, 0);
	CHECK(test_run_until(&loop, is_done, &d2, TEST_GUARD_MS));
	CHECK(x.added);
	CHECK_INT(d1.r, 0);
	CHECK_INT(d2.r, 0);
	CHECK(d1.order < d2.order);
	CHECK_STR(pg_loop_test_value(&loop, c, "SELECT count(DISTINCT xmin::text) FROM t3", &a),
		  "2");
	CHECK_STR(pg_loop_test_value(
			  &loop, c, "SELECT string_agg(k, ',' ORDER BY xmin::text::bigint) FROM t3",
			  &a),
		  "first,second");
	uv_close((uv_handle_t *)&timer, NULL);
	pg_batch_free(b);
	pg_conn_free(c);
	uv_run(&loop, UV_RUN_NOWAIT);
}

TEST(a_callback_with_nothing_pending)
{
	struct pg_conn *c = pg_loop_test_conn(&loop);
	struct pg_batch *b = NULL;
	CHECK_INT(pg_batch_new(&loop, c, &b), 0);
	struct done d = {0};
	pg_batch_then(b, on_done, &d);
	CHECK_INT(d.calls, 0);
	CHECK(test_run_until(&loop, is_done, &d, TEST_GUARD_MS));
	CHECK_INT(d.r, 0);
	pg_batch_free(b);
	pg_conn_free(c);
	uv_run(&loop, UV_RUN_NOWAIT);
}

TEST(caps_and_bad_input)
{
	struct pg_conn *c = pg_loop_test_conn(&loop);
	struct pg_batch *b = NULL;
	CHECK_INT(pg_batch_new(&loop, c, &b), 0);
	struct pg_query bad = {.sql = NULL};
	CHECK_INT(pg_batch_add(b, &bad), -EINVAL);
	struct pg_query multi = {.sql = "SELECT 1; SELECT 2", .multi = true};
	CHECK_INT(pg_batch_add(b, &multi), -EINVAL);
	struct pg_query q = {.sql = "SELECT 1"};
	int r = 0, n = 0;
	while ((r = pg_batch_add(b, &q)) == 0 && n < 100000)
		n++;
	CHECK_INT(r, -ENOBUFS);
	CHECK_INT(n, KILN_PG_MAX_QUEUE);
	/* they go as several transactions, each within its share, all committed */
	struct done d = {0};
	pg_batch_then(b, on_done, &d);
	CHECK(test_run_until(&loop, is_done, &d, TEST_GUARD_MS));
	CHECK_INT(d.r, 0);
	CHECK_INT((int)pg_batch_pending(b), 0);
	pg_batch_free(b);
	pg_conn_free(c);
	uv_run(&loop, UV_RUN_NOWAIT);
}

TEST(free_with_writes_pending)
{
	struct pg_conn *c = pg_loop_test_conn(&loop);
	struct pg_batch *b = NULL;
	CHECK_INT(pg_batch_new(&loop, c, &b), 0);
	add(b, "SELECT 1");
	struct done d = {0};
	pg_batch_then(b, on_done, &d);
	pg_batch_free(b); /* not sent: cancelled at once */
	CHECK_INT(d.calls, 1);
	CHECK_INT(d.r, -ECANCELED);
	/* one in flight when its connection goes: cancelled by the connection */
	CHECK_INT(pg_batch_new(&loop, c, &b), 0);
	add(b, "SELECT pg_sleep(5)");
	struct done d2 = {0};
	pg_batch_then(b, on_done, &d2);
	uv_run(&loop, UV_RUN_NOWAIT); /* the check handle sends it */
	pg_batch_free(b);
	pg_conn_free(c);
	CHECK_INT(d2.calls, 1);
	CHECK_INT(d2.r, -ECANCELED);
	uv_run(&loop, UV_RUN_NOWAIT);
}

TEST(a_lost_connection_fails_the_transaction_in_flight)
{
	struct pg_conn *c = pg_loop_test_conn(&loop);
	struct pg_batch *b = NULL;
	CHECK_INT(pg_batch_new(&loop, c, &b), 0);
	add(b, "SELECT pg_sleep(30)");
	struct done d = {0};
	pg_batch_then(b, on_done, &d);
	uv_run(&loop, UV_RUN_NOWAIT); /* sent */
	uv_run(&loop, UV_RUN_NOWAIT);
	if (pg_test_stop() < 0)
		TAP_FAIL("pg-stop: %s", pg_test.why);
	CHECK(test_run_until(&loop, is_done, &d, TEST_GUARD_MS));
	CHECK_INT(d.r, -ECONNRESET);
	CHECK(strstr(d.err, "lost") != NULL);
	if (pg_test_start_again() < 0)
		TAP_FAIL("pg-start again: %s", pg_test.why);
	/* the connection comes back; the next transaction commits */
	CHECK(test_run_until(&loop, pg_loop_test_ready, c, TEST_GUARD_MS));
	add(b, "SELECT 1");
	struct done d2 = {0};
	pg_batch_then(b, on_done, &d2);
	CHECK(test_run_until(&loop, is_done, &d2, TEST_GUARD_MS));
	CHECK_INT(d2.r, 0);
	pg_batch_free(b);
	pg_conn_free(c);
	uv_run(&loop, UV_RUN_NOWAIT);
}

struct read_answer {
	int calls, r, order;
	char value[64];
};

static void on_read(void *arg, int r, const PGresult *res, const char *err)
{
	struct read_answer *a = arg;
	a->calls++;
	a->r = r;
	a->order = ++completions;
	snprintf(a->value, sizeof(a->value), "%s",
		 r == 0 && PQntuples(res) ? PQgetvalue(res, 0, 0)
		 : err                    ? err
					  : "");
}

static bool read_answered(void *arg)
{
	return ((struct read_answer *)arg)->calls > 0;
}

static void read_q(struct pg_batch *b, const char *sql, struct read_answer *a)
{
	struct pg_query q = {.sql = sql};
	CHECK_INT(pg_batch_read(b, &q, on_read, a), 0);
}

/* A turn's second writes and its read, sent while the first turn's
 * transaction is still on the server. */
static void read_second_turn(uv_timer_t *t)
{
	struct pg_batch *b = t->data;
	struct pg_query q = {.sql = "INSERT INTO t4 VALUES (3)"};
	CHECK_INT(pg_batch_add(b, &q), 0);
	static struct read_answer a3;
	read_q(b, "SELECT count(*) FROM t4", &a3);
	CHECK_INT(a3.calls, 0);
	t->data = &a3;
}

TEST(reads_see_the_writes_before_them)
{
	struct pg_conn *c = pg_loop_test_conn(&loop);
	struct pg_batch *b = NULL;
	CHECK_INT(pg_batch_new(&loop, c, &b), 0);
	struct pg_loop_test_answer la;
	pg_loop_test_value(&loop, c, "CREATE TABLE t4 (k int PRIMARY KEY)", &la);
	/* no write waiting: sent at once, answered before the next write's turn */
	struct read_answer a0 = {0};
	read_q(b, "SELECT count(*) FROM t4", &a0);
	CHECK_INT((int)pg_batch_pending(b), 0);
	/* written and read in one turn: the read sees the write */
	add(b, "INSERT INTO t4 VALUES (1)");
	add(b, "INSERT INTO t4 SELECT 2 FROM pg_sleep(0.2)");
	struct read_answer a1 = {0}, a2 = {0};
	read_q(b, "SELECT count(*) FROM t4", &a1);
	CHECK_INT((int)pg_batch_pending(b), 2); /* reads are not writes */
	struct done d = {0};
	pg_batch_then(b, on_done, &d);
	read_q(b, "SELECT string_agg(k::text, ',' ORDER BY k) FROM t4", &a2);
	CHECK_INT(a1.calls, 0); /* never from inside */
	/* a third write and read on a later turn, while the first is in flight */
	uv_timer_t timer;
	uv_timer_init(&loop, &timer);
	timer.data = b;
	uv_timer_start(&timer, read_second_turn, 50, 0);
	CHECK(test_run_until(&loop, read_answered, &a2, TEST_GUARD_MS));
	CHECK_STR(a0.value, "0");
	CHECK_INT(a1.r, 0);
	CHECK_STR(a1.value, "2");
	CHECK_STR(a2.value, "1,2");
	CHECK(d.order < a1.order); /* answered in the pipeline's order: COMMIT, reads */
	struct read_answer *a3 = timer.data;
	CHECK(a3 != (void *)b);
	if (a3 != (void *)b) {
		CHECK(test_run_until(&loop, read_answered, a3, TEST_GUARD_MS));
		CHECK_STR(a3->value, "3");
	}
	uv_close((uv_handle_t *)&timer, NULL);
	/* bad input; a read waiting when the batcher goes is cancelled */
	struct pg_query bad = {.sql = NULL};
	CHECK_INT(pg_batch_read(b, &bad, on_read, &a0), -EINVAL);
	add(b, "INSERT INTO t4 VALUES (4)");
	struct read_answer a4 = {0};
	read_q(b, "SELECT 1", &a4);
	pg_batch_free(b);
	CHECK_INT(a4.calls, 1);
	CHECK_INT(a4.r, -ECANCELED);
	pg_conn_free(c);
	uv_run(&loop, UV_RUN_NOWAIT);
}

TEST(writes_that_return_rows)
{
	struct pg_conn *c = pg_loop_test_conn(&loop);
	struct pg_batch *b = NULL;
	CHECK_INT(pg_batch_new(&loop, c, &b), 0);
	struct pg_loop_test_answer la;
	pg_loop_test_value(&loop, c, "CREATE TABLE t5 (k serial PRIMARY KEY, v text UNIQUE)", &la);
	struct read_answer a1 = {0}, a2 = {0}, a3 = {0};
	struct pg_query q1 = {.sql = "INSERT INTO t5 (v) VALUES ('a') RETURNING k"};
	struct pg_query q2 = {.sql = "INSERT INTO t5 (v) VALUES ('b') RETURNING k * 10"};
	CHECK_INT(pg_batch_add_returning(b, &q1, on_read, &a1), 0);
	CHECK_INT(pg_batch_add_returning(b, &q2, on_read, &a2), 0);
	CHECK_INT(pg_batch_add_returning(b, &q1, NULL, NULL), -EINVAL);
	struct done d = {0};
	pg_batch_then(b, on_done, &d);
	CHECK(test_run_until(&loop, is_done, &d, TEST_GUARD_MS));
	CHECK_INT(a1.calls, 1);
	CHECK_STR(a1.value, "1");
	CHECK_STR(a2.value, "20");
	CHECK(a2.order < d.order); /* the rows come before the COMMIT's answer */
	/* in a transaction that fails: an error for the statement not run */
	add(b, "INSERT INTO t5 (v) VALUES ('a')"); /* a duplicate */
	CHECK_INT(pg_batch_add_returning(b, &q2, on_read, &a3), 0);
	struct done d2 = {0};
	pg_batch_then(b, on_done, &d2);
	CHECK(test_run_until(&loop, is_done, &d2, TEST_GUARD_MS));
	CHECK_INT(d2.r, KILN_EDB);
	CHECK_INT(a3.calls, 1);
	CHECK(a3.r < 0);
	pg_batch_free(b);
	pg_conn_free(c);
	uv_run(&loop, UV_RUN_NOWAIT);
}

static bool both_done(void *arg)
{
	struct done *d = arg;
	return d[0].calls > 0 && d[1].calls > 0;
}

TEST(a_deadlock_is_sent_again)
{
	/* two masters' transactions lock two rows in opposite orders: the
	 * server aborts one (40P01), which is sent again, whole, and commits;
	 * its rows are those of the attempt that committed, handed over once */
	struct pg_conn *c1 = pg_loop_test_conn(&loop), *c2 = pg_loop_test_conn(&loop);
	struct pg_batch *b1 = NULL, *b2 = NULL;
	CHECK_INT(pg_batch_new(&loop, c1, &b1), 0);
	CHECK_INT(pg_batch_new(&loop, c2, &b2), 0);
	struct pg_loop_test_answer la;
	pg_loop_test_value(&loop, c1, "CREATE TABLE t6 (k int PRIMARY KEY, v int)", &la);
	pg_loop_test_value(&loop, c1, "INSERT INTO t6 VALUES (1, 0), (2, 0)", &la);
	struct read_answer r1 = {0}, r2 = {0};
	add(b1, "UPDATE t6 SET v = v + 1 WHERE k = 1");
	add(b1, "SELECT pg_sleep(0.3)");
	struct pg_query q1 = {.sql = "UPDATE t6 SET v = v + 10 WHERE k = 2 RETURNING v"};
	CHECK_INT(pg_batch_add_returning(b1, &q1, on_read, &r1), 0);
	add(b2, "UPDATE t6 SET v = v + 100 WHERE k = 2");
	add(b2, "SELECT pg_sleep(0.3)");
	struct pg_query q2 = {.sql = "UPDATE t6 SET v = v + 1000 WHERE k = 1 RETURNING v"};
	CHECK_INT(pg_batch_add_returning(b2, &q2, on_read, &r2), 0);
	struct done d[2] = {{0}};
	pg_batch_then(b1, on_done, &d[0]);
	pg_batch_then(b2, on_done, &d[1]);
	CHECK(test_run_until(&loop, both_done, d, 4 * TEST_GUARD_MS));
	CHECK_INT(d[0].r, 0);
	CHECK_INT(d[1].r, 0);
	/* at least one was sent again (under load both may be, each more than once) */
	CHECK(pg_batch_retries(b1) + pg_batch_retries(b2) >= 1);
	CHECK_STR(pg_loop_test_value(&loop, c1,
				     "SELECT string_agg(v::text, ',' ORDER BY k) FROM t6", &la),
		  "1001,110");
	CHECK_INT(r1.calls, 1);
	CHECK_INT(r2.calls, 1);
	/* the rows handed over are those of the attempts that committed: the
	 * later one saw the earlier one's update */
	CHECK((!strcmp(r1.value, "110") && !strcmp(r2.value, "1000")) ||
	      (!strcmp(r1.value, "10") && !strcmp(r2.value, "1001")));
	pg_batch_free(b1);
	pg_batch_free(b2);
	pg_conn_free(c1);
	pg_conn_free(c2);
	uv_run(&loop, UV_RUN_NOWAIT);
}

int main(int argc, char **argv)
{
	const char *why = pg_test_start(argc > 1 ? argv[1] : NULL);
	if (why)
		return tap_skip_all(why);
	atexit(pg_test_cleanup);
	uv_loop_init(&loop);
	RUN(one_turn_is_one_transaction);
	RUN(a_failing_statement_rolls_back_its_transaction_only);
	RUN(an_injected_failure_fails_the_nth_transaction);
	RUN(later_turns_wait_for_the_one_in_flight);
	RUN(a_callback_with_nothing_pending);
	RUN(caps_and_bad_input);
	RUN(free_with_writes_pending);
	RUN(reads_see_the_writes_before_them);
	RUN(writes_that_return_rows);
	RUN(a_deadlock_is_sent_again);
	if (pg_test.dir[0])
		RUN(a_lost_connection_fails_the_transaction_in_flight);
	else
		printf("ok %d - a_lost_connection_fails_the_transaction_in_flight # SKIP "
		       "KILN_TEST_PG_URL: no server of ours to stop\n",
		       ++tap_n);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&loop), 0);
	return tap_done();
}
