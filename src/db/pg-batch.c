/*
 * Writes batched per loop turn on one pg_conn (pg-batch.h).  A transaction
 * (struct pg_txn) gathers the statements of one turn (copied), is closed by
 * the uv_check handle at the end of the turn and queued; the head of the
 * queue is sent when none is in flight: BEGIN, its statements, COMMIT, each
 * a query of the connection's pipeline.  Every answer comes back to
 * txn_answered(); the last one ends the transaction, which succeeded when
 * the COMMIT's answer said COMMIT and nothing before it failed (the server
 * answers COMMIT in an aborted transaction with ROLLBACK).
 *
 * Several masters write to one database: two transactions may deadlock (the
 * server aborts one, SQLSTATE 40P01) or fail to serialize (40001).  Such a
 * transaction is sent again, whole, up to PG_TXN_MAX_ATTEMPTS times; that
 * is why the rows of a write that returns them are handed over only once
 * the transaction committed (the attempt that counts).
 */
#include "db/pg-batch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/stats.h"
#include "common/xalloc.h"
#include "db/pg-conn.h"

/* one transaction's share of the connection's queue: room is left for the
 * reads and the LISTENs the connection also carries */
#define PG_TXN_MAX_STMTS 1024
#define PG_TXN_MAX_BYTES (KILN_PG_MAX_QUEUE_BYTES / 4)
/* sends of one transaction that deadlocked or failed to serialize */
#define PG_TXN_MAX_ATTEMPTS 8

struct pg_stmt {
	struct pg_stmt *next;
	char *sql;
	int nparams;
	char **values; /* NULL entries are SQL NULL */
	int *lengths;
	int *formats;
	size_t bytes;
	/* a write whose rows are wanted (pg_batch_add_returning) */
	pg_conn_result_cb cb;
	void *cb_arg;
	PGresult *res;      /* its rows (a copy), handed over once the transaction commits */
	struct pg_txn *txn; /* while sent: the transaction it is part of */
};

struct pg_then {
	struct pg_then *next;
	pg_batch_done_fn fn;
	void *arg;
};

/* A read waiting for the writes before it to be sent (pg_batch_read). */
struct pg_read {
	struct pg_read *next;
	struct pg_stmt *q;
	bool binary_result;
	pg_conn_result_cb cb;
	void *arg;
};

struct pg_txn {
	struct pg_txn *next;
	struct pg_batch *b; /* NULL once the batcher is freed */
	struct pg_stmt *stmts, **stmts_tail;
	size_t nstmts, bytes;
	struct pg_then *thens, **thens_tail;
	struct pg_read *reads, **reads_tail; /* sent right after its COMMIT */
	size_t unanswered;                   /* queries sent and not answered */
	bool committed;                      /* COMMIT answered COMMIT */
	int r;                               /* the first failure, 0 so far */
	char *err;                           /* its message */
	bool retryable;                      /* it was a deadlock or a serialization failure */
	unsigned attempts;                   /* sends so far */
	uint64_t sent_ns;                    /* stats_now_ns() at its last send */
};

struct pg_batch {
	uv_loop_t *loop;
	struct pg_conn *c;
	uv_check_t check;
	/* active from a write until the check closes its transaction: the
	 * loop's poll does not block in between (a write made in a timer or
	 * idle callback, or before the loop runs, is sent in this turn) */
	uv_idle_t nudge;
	int handles_open;
	struct pg_txn *open;                 /* this turn's, not closed */
	struct pg_txn *queue, **queue_tail;  /* closed, waiting to be sent */
	struct pg_txn *flying;               /* sent, not all answered */
	size_t waiting_stmts, waiting_bytes; /* open + queued, writes and reads */
	uint64_t fail_at, nsent;             /* pg_batch_fail_at: a test's fault */
	size_t waiting_reads;                /* of waiting_stmts */
	bool dirty;                          /* a send was cut short: ROLLBACK first */
	bool freed;
	pg_batch_done_fn on_fail; /* every transaction that failed (pg_batch_on_fail) */
	void *on_fail_arg;
	void (*on_close)(void *arg); /* before a turn's transaction closes */
	void *on_close_arg;
	uint64_t retries; /* transactions sent again (deadlocks, serialization failures) */
};

static struct pg_txn *txn_new(struct pg_batch *b)
{
	struct pg_txn *t = xcalloc(1, sizeof(*t));
	t->b = b;
	t->stmts_tail = &t->stmts;
	t->thens_tail = &t->thens;
	t->reads_tail = &t->reads;
	return t;
}

static void stmt_free(struct pg_stmt *s)
{
	for (int i = 0; i < s->nparams; i++)
		free(s->values[i]);
	free(s->values);
	free(s->lengths);
	free(s->formats);
	free(s->sql);
	if (s->res)
		PQclear(s->res);
	free(s);
}

/* q's bytes as the batcher counts them (SQL and parameters). */
static size_t stmt_bytes(const struct pg_query *q)
{
	size_t bytes = strlen(q->sql) + 1;
	for (int i = 0; i < q->nparams; i++)
		if (q->values && q->values[i])
			bytes += q->lengths && q->formats && q->formats[i]
					 ? (size_t)q->lengths[i]
					 : strlen(q->values[i]) + 1;
	return bytes;
}

/* A copy of q. */
static struct pg_stmt *stmt_new(const struct pg_query *q, size_t bytes)
{
	struct pg_stmt *s = xcalloc(1, sizeof(*s));
	s->sql = xstrdup(q->sql);
	s->nparams = q->nparams;
	s->bytes = bytes;
	if (q->nparams) {
		s->values = xcalloc((size_t)q->nparams, sizeof(*s->values));
		s->lengths = xcalloc((size_t)q->nparams, sizeof(*s->lengths));
		s->formats = xcalloc((size_t)q->nparams, sizeof(*s->formats));
		for (int i = 0; i < q->nparams; i++) {
			if (!q->values || !q->values[i])
				continue;
			bool bin = q->formats && q->formats[i];
			size_t n = bin ? (size_t)q->lengths[i] : strlen(q->values[i]);
			s->values[i] = xmalloc(n + 1);
			memcpy(s->values[i], q->values[i], n);
			s->values[i][n] = '\0';
			s->lengths[i] = (int)n;
			s->formats[i] = bin;
		}
	}
	return s;
}

static struct pg_query stmt_query(const struct pg_stmt *s)
{
	return (struct pg_query){.sql = s->sql,
				 .nparams = s->nparams,
				 .values = (const char *const *)s->values,
				 .lengths = s->lengths,
				 .formats = s->formats};
}

static void txn_fail(struct pg_txn *t, int r, const char *err)
{
	if (t->r < 0)
		return;
	t->r = r;
	t->err = xstrdup(err ? err : err_str(r));
}

/* A statement's failure: the transaction's first says whether sending it
 * again may work (the server aborted it for a deadlock or a conflict). */
static void txn_fail_res(struct pg_txn *t, int r, const PGresult *res, const char *err)
{
	if (t->r < 0)
		return;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	t->retryable = state && (!strcmp(state, "40P01") || !strcmp(state, "40001"));
	txn_fail(t, r, err);
}

/* Hands t's reads to the connection (after its COMMIT, or instead of
 * it); r < 0: they fail with r instead, err saying why. */
static void txn_reads_go(struct pg_batch *b, struct pg_txn *t, int r, const char *err)
{
	struct pg_read *rd = t->reads;
	t->reads = NULL;
	t->reads_tail = &t->reads;
	while (rd) {
		struct pg_read *next = rd->next;
		struct pg_query q = stmt_query(rd->q);
		q.binary_result = rd->binary_result;
		int e = r < 0 ? r : pg_conn_send(b->c, &q, rd->cb, rd->arg);
		b->waiting_stmts--;
		b->waiting_reads--;
		b->waiting_bytes -= rd->q->bytes;
		if (e < 0)
			rd->cb(rd->arg, e, NULL,
			       r < 0 ? err
				     : "cannot send the query: the connection's queue is full");
		stmt_free(rd->q);
		free(rd);
		rd = next;
	}
}

/* Tells its callbacks and frees it. */
static void txn_end(struct pg_txn *t)
{
	int r = t->r < 0 ? t->r : t->committed ? 0 : KILN_EDB;
	const char *err = r == 0 ? NULL : t->err ? t->err : "the transaction was rolled back";
	if (r < 0 && t->nstmts && t->b && !t->b->freed && t->b->on_fail)
		t->b->on_fail(t->b->on_fail_arg, r, err);
	for (struct pg_stmt *s = r == 0 ? t->stmts : NULL; s; s = s->next)
		if (s->cb) { /* committed: the rows its writes returned */
			pg_conn_result_cb cb = s->cb;
			s->cb = NULL;
			cb(s->cb_arg, 0, s->res, NULL);
		}
	for (struct pg_then *th = t->thens, *next; th; th = next) {
		next = th->next;
		th->fn(th->arg, r, err);
		free(th);
	}
	for (struct pg_stmt *s = t->stmts, *next; s; s = next) {
		next = s->next;
		if (s->cb) /* never answered: the transaction failed first */
			s->cb(s->cb_arg, r < 0 ? r : KILN_EDB, NULL, err ? err : "not run");
		stmt_free(s);
	}
	free(t->err);
	free(t);
}

static void batch_pump(struct pg_batch *b);
static void txn_send(struct pg_batch *b, struct pg_txn *t);

/* t deadlocked (or failed to serialize) and may be sent again: back to
 * how it was before its send. */
static bool txn_retry(struct pg_batch *b, struct pg_txn *t)
{
	if (t->committed || !t->retryable || t->attempts >= PG_TXN_MAX_ATTEMPTS || !b || b->freed)
		return false;
	t->r = 0;
	free(t->err);
	t->err = NULL;
	t->retryable = false;
	for (struct pg_stmt *s = t->stmts; s; s = s->next)
		if (s->res) {
			PQclear(s->res);
			s->res = NULL;
		}
	b->retries++;
	b->waiting_stmts += t->nstmts; /* txn_send counts them out again */
	b->waiting_bytes += t->bytes;
	txn_send(b, t);
	return true;
}

static void txn_answered(void *arg, int r, const PGresult *res, const char *err, bool commit)
{
	struct pg_txn *t = arg;
	if (r < 0)
		txn_fail_res(t, r, res, err);
	else if (commit && strcmp(PQcmdStatus((PGresult *)res), "COMMIT") == 0)
		t->committed = true;
	if (--t->unanswered > 0)
		return;
	if (t->committed) /* /metrics: kiln_db_commit_duration_seconds, as SQLite's */
		stats_hist_observe(&stats.db_commit, (double)(stats_now_ns() - t->sent_ns) / 1e9);
	struct pg_batch *b = t->b;
	if (b)
		b->flying = NULL;
	if (txn_retry(b, t)) {
		if (!b->flying) /* not sent again after all (it ended): the next one goes */
			batch_pump(b);
		return;
	}
	txn_end(t);
	if (b && !b->freed)
		batch_pump(b);
}

static void txn_stmt_answered(void *arg, int r, const PGresult *res, const char *err)
{
	txn_answered(arg, r, res, err, false);
}

/* A statement whose rows are wanted: them first, then its transaction's
 * accounting. */
static void txn_returning_answered(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_stmt *s = arg;
	if (r == 0) {
		s->res = PQcopyResult(res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
		if (!s->res)
			r = -ENOMEM, err = "out of memory for a statement's rows", res = NULL;
	}
	txn_answered(s->txn, r, res, err, false);
}

static void txn_commit_answered(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_txn *t = arg;
	if (r == -ECONNRESET)
		err = "the connection to the database server was lost after COMMIT was sent: "
		      "whether the transaction committed is unknown";
	txn_answered(t, r, res, err, true);
}

static int txn_send_one(struct pg_txn *t, const struct pg_query *q, pg_conn_result_cb cb)
{
	int r = pg_conn_send(t->b->c, q, cb, t);
	if (r == 0)
		t->unanswered++;
	return r;
}

/* Sends t: BEGIN, its statements, COMMIT. */
static void txn_send(struct pg_batch *b, struct pg_txn *t)
{
	b->flying = t;
	t->attempts++;
	t->sent_ns = stats_now_ns();
	b->waiting_stmts -= t->nstmts;
	b->waiting_bytes -= t->bytes;
	int r = 0;
	if (b->dirty) { /* an earlier send was cut short: end what it began */
		struct pg_query rb = {.sql = "ROLLBACK"};
		r = txn_send_one(t, &rb, txn_stmt_answered);
		if (r == 0)
			b->dirty = false;
	}
	struct pg_query begin = {.sql = "BEGIN"};
	if (r == 0)
		r = txn_send_one(t, &begin, txn_stmt_answered);
	bool began = r == 0;
	for (struct pg_stmt *s = t->stmts; r == 0 && s; s = s->next) {
		struct pg_query q = stmt_query(s);
		if (s->cb) {
			s->txn = t;
			r = pg_conn_send(b->c, &q, txn_returning_answered, s);
			if (r == 0)
				t->unanswered++;
		} else {
			r = txn_send_one(t, &q, txn_stmt_answered);
		}
	}
	if (r == 0 && b->fail_at && t->attempts == 1 && ++b->nsent == b->fail_at) {
		struct pg_query boom = {.sql = "DO $$BEGIN RAISE EXCEPTION 'COMMIT: injected by "
					       "KILN_TEST_FAIL_COMMIT'; END$$"};
		r = txn_send_one(t, &boom, txn_stmt_answered);
	}
	struct pg_query commit = {.sql = "COMMIT"};
	if (r == 0)
		r = txn_send_one(t, &commit, txn_commit_answered);
	if (r < 0) {
		txn_fail(t, r,
			 r == -ENOTCONN
				 ? pg_conn_errmsg(b->c)
				 : "the connection's queue is full: the transaction was not sent");
		if (began)
			b->dirty = true; /* BEGIN went without its COMMIT */
	}
	txn_reads_go(b, t, 0, NULL); /* after the COMMIT: they see its writes */
	if (t->unanswered == 0) {    /* nothing went: it ends now, on this turn */
		b->flying = NULL;
		txn_end(t);
	}
}

static void batch_pump(struct pg_batch *b)
{
	while (!b->flying && b->queue) {
		struct pg_txn *t = b->queue;
		b->queue = t->next;
		if (!b->queue)
			b->queue_tail = &b->queue;
		t->next = NULL;
		if (t->nstmts == 0) { /* only callbacks: nothing to send, nothing failed */
			t->committed = true;
			txn_reads_go(b, t, 0, NULL);
			txn_end(t);
			continue;
		}
		txn_send(b, t);
	}
}

static void batch_close_open(struct pg_batch *b)
{
	struct pg_txn *t = b->open;
	if (!t)
		return;
	b->open = NULL;
	*b->queue_tail = t;
	b->queue_tail = &t->next;
}

static void batch_on_check(uv_check_t *h)
{
	struct pg_batch *b = h->data;
	if (b->on_close) /* its last writes of the turn (they may open it) */
		b->on_close(b->on_close_arg);
	batch_close_open(b);
	batch_pump(b);
	uv_idle_stop(&b->nudge);
	if (!b->open && !b->queue)
		uv_check_stop(&b->check);
}

static void batch_on_nudge(uv_idle_t *h)
{
	(void)h; /* only there to keep the poll from blocking */
}

/* The end of this turn closes the open transaction. */
static void batch_arm(struct pg_batch *b)
{
	uv_check_start(&b->check, batch_on_check);
	uv_idle_start(&b->nudge, batch_on_nudge);
}

int pg_batch_new(uv_loop_t *loop, struct pg_conn *c, struct pg_batch **ret)
{
	if (!loop || !c)
		return -EINVAL;
	struct pg_batch *b = xcalloc(1, sizeof(*b));
	b->loop = loop;
	b->c = c;
	b->queue_tail = &b->queue;
	uv_check_init(loop, &b->check);
	b->check.data = b;
	uv_idle_init(loop, &b->nudge);
	b->nudge.data = b;
	b->handles_open = 2;
	*ret = b;
	return 0;
}

static struct pg_txn *batch_open(struct pg_batch *b)
{
	if (!b->open)
		b->open = txn_new(b);
	batch_arm(b);
	return b->open;
}

static int batch_add(struct pg_batch *b, const struct pg_query *q, pg_conn_result_cb cb, void *arg);

int pg_batch_add(struct pg_batch *b, const struct pg_query *q)
{
	return batch_add(b, q, NULL, NULL);
}

int pg_batch_add_returning(struct pg_batch *b, const struct pg_query *q, pg_conn_result_cb cb,
			   void *arg)
{
	if (!cb)
		return -EINVAL;
	return batch_add(b, q, cb, arg);
}

static int batch_add(struct pg_batch *b, const struct pg_query *q, pg_conn_result_cb cb, void *arg)
{
	if (!q || !q->sql || q->multi || q->nparams < 0 || q->nparams > 65535)
		return -EINVAL;
	size_t bytes = stmt_bytes(q);
	if (b->waiting_stmts >= KILN_PG_MAX_QUEUE || bytes > PG_TXN_MAX_BYTES ||
	    b->waiting_bytes + bytes > KILN_PG_MAX_QUEUE_BYTES / 2)
		return -ENOBUFS;
	struct pg_txn *t = batch_open(b);
	if (t->nstmts >= PG_TXN_MAX_STMTS || t->bytes + bytes > PG_TXN_MAX_BYTES) {
		/* a turn's writes past one transaction's share: the next one */
		batch_close_open(b);
		t = batch_open(b);
	}
	struct pg_stmt *s = stmt_new(q, bytes);
	s->cb = cb;
	s->cb_arg = arg;
	*t->stmts_tail = s;
	t->stmts_tail = &s->next;
	t->nstmts++;
	t->bytes += bytes;
	b->waiting_stmts++;
	b->waiting_bytes += bytes;
	return 0;
}

void pg_batch_then(struct pg_batch *b, pg_batch_done_fn fn, void *arg)
{
	/* the newest transaction holds everything added before */
	struct pg_txn *t = b->open;
	if (!t && b->queue)
		for (t = b->queue; t->next; t = t->next)
			;
	if (!t)
		t = b->flying;
	if (!t)
		t = batch_open(b); /* nothing pending: answered at the end of the turn */
	struct pg_then *th = xcalloc(1, sizeof(*th));
	th->fn = fn;
	th->arg = arg;
	*t->thens_tail = th;
	t->thens_tail = &th->next;
}

int pg_batch_read(struct pg_batch *b, const struct pg_query *q, pg_conn_result_cb cb, void *arg)
{
	if (!q || !q->sql || q->multi || q->nparams < 0 || q->nparams > 65535 || !cb)
		return -EINVAL;
	/* the newest transaction not yet sent holds the writes before it */
	struct pg_txn *t = b->open;
	if (!t && b->queue)
		for (t = b->queue; t->next; t = t->next)
			;
	if (!t)
		return pg_conn_send(b->c, q, cb, arg); /* every write went: after them */
	size_t bytes = stmt_bytes(q);
	if (b->waiting_stmts >= KILN_PG_MAX_QUEUE ||
	    b->waiting_bytes + bytes > KILN_PG_MAX_QUEUE_BYTES / 2)
		return -ENOBUFS;
	struct pg_read *rd = xcalloc(1, sizeof(*rd));
	rd->q = stmt_new(q, bytes);
	rd->binary_result = q->binary_result;
	rd->cb = cb;
	rd->arg = arg;
	*t->reads_tail = rd;
	t->reads_tail = &rd->next;
	b->waiting_stmts++;
	b->waiting_reads++;
	b->waiting_bytes += bytes;
	return 0;
}

void pg_batch_on_close(struct pg_batch *b, void (*fn)(void *arg), void *arg)
{
	b->on_close = fn;
	b->on_close_arg = arg;
}

void pg_batch_touch(struct pg_batch *b)
{
	batch_arm(b);
}

void pg_batch_on_fail(struct pg_batch *b, pg_batch_done_fn fn, void *arg)
{
	b->on_fail = fn;
	b->on_fail_arg = arg;
}

uint64_t pg_batch_retries(const struct pg_batch *b)
{
	return b->retries;
}

size_t pg_batch_pending(const struct pg_batch *b)
{
	return b->waiting_stmts - b->waiting_reads + (b->flying ? b->flying->nstmts : 0);
}

static void batch_closed(uv_handle_t *h)
{
	struct pg_batch *b = h->data;
	if (--b->handles_open == 0)
		free(b);
}

void pg_batch_free(struct pg_batch *b)
{
	if (!b)
		return;
	b->freed = true;
	batch_close_open(b);
	while (b->queue) {
		struct pg_txn *t = b->queue;
		b->queue = t->next;
		txn_fail(t, -ECANCELED, "the database writer was closed before it was sent");
		txn_reads_go(b, t, -ECANCELED, "the database writer was closed first");
		txn_end(t);
	}
	if (b->flying)
		b->flying->b = NULL; /* its answers still come from the connection */
	uv_close((uv_handle_t *)&b->check, batch_closed);
	uv_close((uv_handle_t *)&b->nudge, batch_closed);
}

void pg_batch_fail_at(struct pg_batch *b, uint64_t n)
{
	b->fail_at = n;
	b->nsent = 0;
}
