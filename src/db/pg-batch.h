/*
 * Writes batched per loop turn on one pg_conn (issue 14, docs/SCALING.md
 * "Batched asynchronous writes"): the writes a loop turn adds become one
 * transaction, sent as BEGIN, the statements, COMMIT through the
 * connection's pipeline when the turn ends, while the loop goes on.  What
 * depends on a write runs after its commit is answered (pg_batch_then),
 * never before.  At most one transaction is in flight: the writes of later
 * turns gather meanwhile and go, one transaction per turn, in order, after
 * it.  A statement that fails fails its whole transaction (the server rolls
 * it back; later transactions are not affected).
 *
 * Everything runs on the loop's thread; callbacks are never called from
 * inside pg_batch_add() or pg_batch_then().  Internal to src/db: the
 * PostgreSQL backend of db.h will be its user.
 */
#ifndef KILN_DB_PG_BATCH_H
#define KILN_DB_PG_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "db/pg-conn.h"

struct pg_conn;
struct pg_query;
struct pg_batch;

/*
 * The outcome of the transaction that held everything added before the
 * pg_batch_then() call: r == 0 committed; KILN_EDB a statement or the
 * COMMIT failed (err: the first server error, naming the statement) and
 * nothing of it is in the database; -ECONNRESET the connection was lost
 * after COMMIT was sent (its outcome is unknown); -ENOTCONN it was never
 * sent (the connection was down), -ECANCELED pg_batch_free() or
 * pg_conn_free() came first.  err borrowed for the call.
 */
typedef void (*pg_batch_done_fn)(void *arg, int r, const char *err);

/* Creates the batcher of c (borrowed: free the batcher first). */
int pg_batch_new(uv_loop_t *loop, struct pg_conn *c, struct pg_batch **ret);
/*
 * Frees it: callbacks of transactions not sent get -ECANCELED at once;
 * those of the one in flight get its outcome later, from the connection,
 * or -ECANCELED from pg_conn_free().  The struct itself goes once its
 * uv handle is closed (run the loop).  NULL-safe.
 */
void pg_batch_free(struct pg_batch *b);
/*
 * Adds a write (q copied; its result is not kept: a write) to the open
 * transaction of this turn.  Returns 0, -EINVAL (no sql, a multi query),
 * or -ENOBUFS when the writes waiting would pass KILN_PG_MAX_QUEUE
 * statements or half of KILN_PG_MAX_QUEUE_BYTES: nothing is added.
 */
int pg_batch_add(struct pg_batch *b, const struct pg_query *q);
/* The same for a write whose rows are wanted (INSERT ... RETURNING): cb
 * gets them once its transaction committed (before the pg_batch_then
 * callbacks of that transaction), or an error, once, if it did not (the
 * statement or its transaction failed, or was cancelled first).  A
 * transaction the server aborted for a deadlock or a serialization
 * failure is sent again first, whole (pg_batch_retries). */
int pg_batch_add_returning(struct pg_batch *b, const struct pg_query *q, pg_conn_result_cb cb,
			   void *arg);
/* Calls fn(arg, ...) once everything added before is committed or has
 * failed (at the end of this turn if nothing is pending). */
void pg_batch_then(struct pg_batch *b, pg_batch_done_fn fn, void *arg);
/*
 * Sends a read (q copied) on the batcher's connection once every write
 * added before has been sent, right after their COMMIT: the server runs it
 * after them, so it sees them (this master reads its own writes), without
 * waiting for their answer; at once when no write waits.  cb as
 * pg_conn_send's (-ECANCELED when the batcher is freed first).  Returns 0,
 * -EINVAL, or -ENOBUFS past the caps of pg_batch_add (nothing queued).
 */
int pg_batch_read(struct pg_batch *b, const struct pg_query *q, pg_conn_result_cb cb, void *arg);
/* fn(arg) at the end of each turn the batcher works in, before the
 * turn's transaction closes: it may add the turn's last writes (state kept
 * in memory during the turn, written once).  pg_batch_touch() makes this
 * turn one of those even without a write yet. */
void pg_batch_on_close(struct pg_batch *b, void (*fn)(void *arg), void *arg);
void pg_batch_touch(struct pg_batch *b);
/* fn(arg, r, err) for every transaction of writes that fails (before its
 * own pg_batch_then callbacks), while the batcher lives; NULL: none. */
void pg_batch_on_fail(struct pg_batch *b, pg_batch_done_fn fn, void *arg);
/* A test's fault (KILN_TEST_FAIL_COMMIT=N, db.h): the nth transaction of
 * writes sent fails before its COMMIT (the server raises an error naming
 * the injection), as a failed commit would; 0: none. */
void pg_batch_fail_at(struct pg_batch *b, uint64_t n);
/* Transactions sent again after a deadlock or a serialization failure
 * (the server aborted them; they are sent whole, up to 8 times). */
uint64_t pg_batch_retries(const struct pg_batch *b);
/* Writes added and not yet answered (for tests and metrics). */
size_t pg_batch_pending(const struct pg_batch *b);

#endif
