/*
 * The commit statuses' outbound queue answered on the loop (db.h, issue
 * 14; src/db/db-sqlite-outbound.c on SQLite, src/db/db-pg-outbound.c on a
 * real PostgreSQL server): the same calls on two fresh databases, one of
 * each backend, must give the same answers, and those are the ones the
 * synchronous calls documented: queued (1) or the same state again (0),
 * the oldest rows dropped past max_rows, the oldest row first with its
 * attempts and next_at, a forgotten state queued again, the count.  A
 * repeated state in a turn fails none of the turn's other writes.
 */
#include "tap.h"
#include "pg-test.h"
#include "wait.h"
#include "pg-alike.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/buf.h"
#include "common/err.h"
#include "db/db.h"

#define diag(...) (printf("# "), printf(__VA_ARGS__), printf("\n"))

static char dir[] = "/tmp/kiln-test-pgoutbound.XXXXXX";
static uv_loop_t loop;

/* ---- waiting for one answer ---------------------------------------------------------- */

static void on_added(void *arg, int r, int64_t dropped, const char *err)
{
	struct pg_alike_answer *a = arg;
	a->done = true;
	a->r = r;
	a->n = dropped;
	snprintf(a->text, sizeof(a->text), "r=%d dropped=%lld err=%s", r, (long long)dropped,
		 r < 0 && err ? err : "");
}

static void on_next(void *arg, int r, struct db_outbound *o, const char *err)
{
	struct pg_alike_answer *a = arg;
	a->done = true;
	a->r = r;
	if (o) {
		a->id = o->id;
		snprintf(a->text, sizeof(a->text),
			 "r=%d skey=%s state=%s path=%s body=%s created_at=%lld attempts=%d "
			 "next_at=%lld",
			 r, o->skey, o->state, o->path, o->body, (long long)o->created_at,
			 o->attempts, (long long)o->next_at);
		/* a taker zeroes it: nothing left to release */
		struct db_outbound taken = *o;
		*o = (struct db_outbound){0};
		db_outbound_release(&taken);
	} else {
		snprintf(a->text, sizeof(a->text), "r=%d err=%s", r, r < 0 && err ? err : "");
	}
}

static void on_count(void *arg, int r, int64_t n, const char *err)
{
	struct pg_alike_answer *a = arg;
	a->done = true;
	a->r = r;
	a->n = n;
	snprintf(a->text, sizeof(a->text), "r=%d n=%lld err=%s", r, (long long)n,
		 r < 0 && err ? err : "");
}

static void on_commit(void *arg, int r, const char *err)
{
	struct pg_alike_answer *a = arg;
	a->done = true;
	a->r = r;
	snprintf(a->text, sizeof(a->text), "commit r=%d %s", r, err ? err : "");
}

/* ---- the script ------------------------------------------------------------------------ */

#define CALL(what, call)                                                                           \
	do {                                                                                       \
		struct pg_alike_answer a = {0};                                                    \
		pg_alike_line(out, what, pg_alike_wait(&loop, db, (call), &a));                    \
		last = a;                                                                          \
	} while (0)

static void committed(struct db *db, struct buf *out, const char *what)
{
	struct pg_alike_answer a = {0};
	db_commit_then(db, on_commit, &a);
	pg_alike_line(out, what, a.done ? a.text : pg_alike_wait(&loop, db, 0, &a));
	CHECK_INT(a.r, 0);
}

#define ADD(what, rep, key, state, max)                                                            \
	CALL(what, db_outbound_add_async(db, rep, key, state, "/p/" key, "{\"s\":\"" state "\"}",  \
					 1000, max, on_added, &a))

static void script(struct db *db, struct buf *out)
{
	struct pg_alike_answer last = {0};
	CALL("count of an empty queue", db_outbound_count_async(db, "gh", on_count, &a));
	CHECK_INT(last.n, 0);
	CALL("next of an empty queue", db_outbound_next_async(db, "gh", on_next, &a));
	CHECK_INT(last.r, 0);
	ADD("k1 pending", "gh", "k1", "pending", 3);
	CHECK_INT(last.r, 1);
	ADD("k1 pending again", "gh", "k1", "pending", 3);
	CHECK_INT(last.r, 0);
	ADD("k1 success", "gh", "k1", "success", 3);
	CHECK_INT(last.r, 1);
	ADD("k2 pending", "gh", "k2", "pending", 3);
	CHECK_INT(last.r, 1);
	CHECK_INT(last.n, 0);
	ADD("k3 pending: past max_rows", "gh", "k3", "pending", 3);
	CHECK_INT(last.r, 1);
	CHECK_INT(last.n, 1);
	ADD("another reporter's k1", "gt", "k1", "pending", 3);
	CHECK_INT(last.r, 1);
	CHECK_INT(last.n, 0);
	CALL("count", db_outbound_count_async(db, "gh", on_count, &a));
	CHECK_INT(last.n, 3);
	CALL("next", db_outbound_next_async(db, "gh", on_next, &a));
	CHECK_INT(last.r, 1);
	CHECK(strstr(last.text, "skey=k1 state=success") != NULL);
	int64_t id = last.id;
	CHECK_INT(db_outbound_retry(db, id, 5000), 0);
	CALL("next after a retry (not committed yet)",
	     db_outbound_next_async(db, "gh", on_next, &a));
	CHECK(strstr(last.text, "attempts=1 next_at=5000") != NULL);
	committed(db, out, "retry committed");
	CHECK_INT(db_outbound_delete(db, id), 0);
	CALL("next after its delete", db_outbound_next_async(db, "gh", on_next, &a));
	CHECK(strstr(last.text, "skey=k2 state=pending") != NULL);
	/* a repeated state in the turn of another write: both pg_alike_answered, the
	 * write committed */
	struct pg_alike_answer rep = {0};
	int sr = db_outbound_add_async(db, "gh", "k2", "pending", "/p", "{}", 1000, 3, on_added,
				       &rep);
	CHECK_INT(db_outbound_retry(db, last.id, 7000), 0);
	pg_alike_line(out, "k2 pending again, with a retry in its turn",
		      pg_alike_wait(&loop, db, sr, &rep));
	CHECK_INT(rep.r, 0);
	committed(db, out, "that turn committed");
	CALL("the retry is in", db_outbound_next_async(db, "gh", on_next, &a));
	CHECK(strstr(last.text, "skey=k2 state=pending") != NULL &&
	      strstr(last.text, "attempts=1 next_at=7000") != NULL);
	ADD("k1 success again", "gh", "k1", "success", 3);
	CHECK_INT(last.r, 0);
	CHECK_INT(db_outbound_forget(db, "gh", "k1", "success"), 0);
	ADD("k1 success after forget", "gh", "k1", "success", 3);
	CHECK_INT(last.r, 1);
	CALL("count", db_outbound_count_async(db, "gh", on_count, &a));
	CHECK_INT(last.n, 3);
	ADD("a cap of 0 keeps one", "one", "a", "x", 0);
	ADD("a cap of 0 keeps one: b", "one", "b", "x", 0);
	CHECK_INT(last.n, 1);
	CALL("its count", db_outbound_count_async(db, "one", on_count, &a));
	CHECK_INT(last.n, 1);
	CALL("its next", db_outbound_next_async(db, "one", on_next, &a));
	CHECK(strstr(last.text, "skey=b") != NULL);
	CALL("nobody's next", db_outbound_next_async(db, "nobody", on_next, &a));
	CHECK_INT(last.r, 0);
	committed(db, out, "all committed");
}

/* ---- the two backends -------------------------------------------------------------------- */

TEST(both_backends_answer_alike)
{
	char url[300];
	snprintf(url, sizeof(url), "sqlite:%s/outbound.sqlite", dir);
	struct db *lite = pg_alike_open(&loop, url);
	struct db *pg = pg_alike_open(&loop, pg_test.url);
	if (!lite || !pg)
		return;
	CHECK(db_is_postgresql(pg));
	pg_alike_run(lite, pg, script, NULL);
	/* the synchronous count before the master serves, on both */
	int64_t n1 = -1, n2 = -1;
	CHECK_INT(db_outbound_count(lite, "gh", &n1), 0);
	CHECK_INT(db_outbound_count(pg, "gh", &n2), 0);
	CHECK_INT(n1, 3);
	CHECK_INT(n2, 3);
	/* while serving, PostgreSQL refuses to wait */
	db_set_serving(pg, true);
	CHECK_INT(db_outbound_count(pg, "gh", &n2), -EWOULDBLOCK);
	db_set_serving(pg, false);
	db_close(lite);
	db_close(pg);
}

/* Answers not in yet when the database closes get -ECANCELED, once. */
TEST(close_cancels_answers)
{
	char url[300];
	snprintf(url, sizeof(url), "sqlite:%s/cancel.sqlite", dir);
	struct db *lite = pg_alike_open(&loop, url);
	if (!lite)
		return;
	struct pg_alike_answer a = {0}, c = {0};
	CHECK_INT(db_outbound_next_async(lite, "gh", on_next, &a), 0);
	CHECK_INT(db_outbound_count_async(lite, "gh", on_count, &c), 0);
	db_close(lite);
	CHECK(a.done && a.r == -ECANCELED);
	CHECK(c.done && c.r == -ECANCELED);
}

int main(int argc, char **argv)
{
	if (!mkdtemp(dir) || uv_loop_init(&loop) != 0)
		return 1;
	const char *why = argc > 1 ? pg_test_start(argv[1]) : "no scripts directory given";
	if (why) {
		diag("PostgreSQL: %s", why);
		CHECK(!"a PostgreSQL server for the test");
	} else {
		RUN(both_backends_answer_alike);
		RUN(close_cancels_answers);
	}
	pg_test_cleanup();
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("cannot remove %s", dir);
	return tap_done();
}
