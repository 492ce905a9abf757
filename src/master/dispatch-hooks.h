/*
 * The distributor's Lua hooks (slice "dispatch"): prioritize_builders
 * orders the builders with queued requests, a builder's next_build picks
 * the request to start and its next_worker the worker (Buildbot's
 * prioritizeBuilders, nextBuild, nextWorker).  engine_distribute() calls
 * these only when the function is configured, so a master without them
 * pays nothing.  A function that fails, runs out of its budget or returns
 * something else is logged (once per builder and function per
 * KILN_DISPATCH_LOG_SECONDS) and the default choice is made.  Loop thread.
 */
#ifndef KILN_DISPATCH_HOOKS_H
#define KILN_DISPATCH_HOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db_request_head;
struct engine;
struct wconn;

/* Per-engine state (when each builder's failures were last logged). */
struct dispatch_hooks;
struct dispatch_hooks *dispatch_hooks_new(size_t nbuilders);
void dispatch_hooks_free(struct dispatch_hooks *h); /* NULL-safe */

/* Whether prioritize_builders is to order n builders: it is configured,
 * n >= 2, and some attached worker has a free slot (else the order cannot
 * matter).  The engine then reads their queues' summaries
 * (db_request_summaries_async: issue 14, on the loop) for the call below. */
bool dispatch_hooks_want_order(struct engine *e, size_t n);
/* Reorders ids[0..n) (builder ids with queued requests, in the default
 * order) by prioritize_builders, given the summaries read (sids, prio,
 * oldest of ns builders).  Ids of builders it was not offered or did not
 * return keep their order after those it did. */
void dispatch_hooks_order_builders(struct engine *e, int64_t *ids, size_t n, const int64_t *sids,
				   const int *prio, const double *oldest, size_t ns);

/* The request builder i starts next, chosen by its next_build among v[0..n)
 * (the head of its queue, at most KILN_DISPATCH_MAX_REQUESTS, read with
 * db_request_queue_head_async): 1 and *ret_idx, 0 when the function
 * returned nil or a request it was not offered (start none now).  Its
 * failure: the head of the queue. */
int dispatch_hooks_next_build(struct engine *e, size_t i, const struct db_request_head *v, size_t n,
			      size_t *ret_idx);

/* builder i's next_worker for request h among its idle workers (attached,
 * with a free slot and the builder's locks free): 1 with *w set to the
 * worker to start on (on failure: *w as it came, the engine's own choice),
 * 0 when the function returned nil or a worker it was not offered (do not
 * start it now). */
int dispatch_hooks_next_worker(struct engine *e, size_t i, const struct db_request_head *h,
			       struct wconn **w);

#endif
