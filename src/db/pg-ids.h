/*
 * Row ids reserved ahead from a PostgreSQL sequence (issue 14,
 * docs/SCALING.md "Ids allocated in blocks"): db.h hands a new row's id
 * back at once, before the INSERT that uses it is committed (pg-batch.h),
 * so the PostgreSQL backend takes ids from a reserve that is refilled in
 * the background (`SELECT nextval(...) FROM generate_series(1, N)`) when
 * half of a block is used.  Ids are unique across every master sharing the
 * sequence and increasing within one reserve; the sequence's own values,
 * so a row inserted without one never collides with them.
 *
 * Runs on the loop's thread; callbacks are never called from inside these
 * functions.  Internal to src/db.
 */
#ifndef KILN_DB_PG_IDS_H
#define KILN_DB_PG_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pg_conn;
struct pg_ids;

/* The reserve has ids again (r == 0) or its refill failed (r < 0, err:
 * why; the next pg_ids_next() tries again).  err borrowed. */
typedef void (*pg_ids_refill_fn)(void *arg, int r, const char *err);

/*
 * A reserve of table.column's identity sequence on c (borrowed: free the
 * reserve first), block ids at a time (1 to 100000).  The first refill is
 * sent at once.  Returns 0 or -EINVAL.
 */
int pg_ids_new(struct pg_conn *c, const char *table, const char *column, unsigned block,
	       pg_ids_refill_fn on_refill, void *arg, struct pg_ids **ret);
/* NULL-safe; a refill in flight is abandoned (its answer is ignored). */
void pg_ids_free(struct pg_ids *ids);
/* The next id in *ret: 0, or -EAGAIN when the reserve is empty (a refill
 * is on its way: on_refill says when). */
int pg_ids_next(struct pg_ids *ids, int64_t *ret);
/* Ids left in the reserve. */
size_t pg_ids_left(const struct pg_ids *ids);
/* A refill sent if fewer than half a block is left and none is on its way;
 * whether one is on its way now (on_refill will be called). */
bool pg_ids_refilling(struct pg_ids *ids);

#endif
