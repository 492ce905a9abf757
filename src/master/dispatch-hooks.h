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

#include <stddef.h>
#include <stdint.h>

struct db_request;
struct engine;
struct wconn;

/* Per-engine state (when each builder's failures were last logged). */
struct dispatch_hooks;
struct dispatch_hooks *dispatch_hooks_new(size_t nbuilders);
void dispatch_hooks_free(struct dispatch_hooks *h); /* NULL-safe */

/* Reorders ids[0..n) (builder ids with queued requests, in the default
 * order) by prioritize_builders; a no-op without it.  Ids of builders it
 * did not return keep their order after those it did. */
void dispatch_hooks_order_builders(struct engine *e, int64_t *ids, size_t n);

/* The request builder i starts next, chosen by its next_build among the
 * first KILN_DISPATCH_MAX_REQUESTS of its queue: 1 and *ret, 0 when the
 * function returned nil or a request it was not offered (start none now),
 * or a negative code when the queue cannot be read (db_errmsg says).  Its
 * failure: the head of the queue. */
int dispatch_hooks_next_build(struct engine *e, size_t i, struct db_request *ret);

/* builder i's next_worker for req among its idle workers (attached, with a
 * free slot and the builder's locks free): 1 with *w set to the worker to
 * start on (on failure: *w as it came, the engine's own choice), 0 when the
 * function returned nil or a worker it was not offered (do not start req
 * now). */
int dispatch_hooks_next_worker(struct engine *e, size_t i, const struct db_request *req,
			       struct wconn **w);

#endif
