/*
 * Locks: Buildbot's master and worker locks, in counting or exclusive
 * access, owned by the engine and used by builds (their builder's locks)
 * and steps (a step's own locks).  Loop thread only; no libuv here.
 *
 * Instances.  A master lock (master_lock { } in master.lua) is one
 * instance; a worker lock (worker_lock { }) is one instance per worker name,
 * each with max_count_for_worker[name] or max_count.  An instance is
 * created when first asked for and freed once nobody holds or waits for it.
 *
 * Access.  Counting access takes `count` units of the instance's max_count
 * (a count above that max is taken as the whole lock); exclusive access
 * takes the instance alone.  Each instance has a FIFO queue: a newcomer
 * waits behind anyone already waiting, and a release wakes waiters from the
 * head until the first one that does not fit, so an exclusive waiter is not
 * starved by a stream of counting holders (as in Buildbot's BaseLock).
 *
 * No deadlock, by construction.  A set of locks is acquired one lock at a
 * time in one global order: by index in cfg->lock (declaration order), never
 * in the order a builder lists them.  A set holds only locks before the one
 * it waits for, so every wait is for a lock later in the order than all the
 * locks the waiter holds; a cycle of waits would need someone waiting for
 * a lock earlier than one it holds.  Queue order adds no cycle either:
 * waiting behind another waiter of the same lock means waiting for what
 * that waiter waits for.  This holds for each locks_acquire() call: a holder
 * that acquires a second set while keeping the first (a step's locks while
 * its build holds the builder's) is outside the argument, as in Buildbot;
 * checkconfig refuses the direct case (a step listing its builder's lock).
 *
 * Wake-ups never run a callback inside locks_release()/locks_cancel(): a
 * handle that becomes complete is put on a ready list and the manager's
 * notify hook is called; the owner runs locks_dispatch() on a later loop
 * turn, which calls the ready handles' callbacks.
 */
#ifndef KILN_LOCKS_H
#define KILN_LOCKS_H

#include <stdbool.h>
#include <stddef.h>

struct config_lock;
struct config_lock_access;
struct lock_mgr;
struct lock_handle;

/* Called from locks_release()/locks_cancel() when locks were freed (so
 * waiters may have been woken and queued work may now fit): schedule
 * locks_dispatch() and the distributor for a later turn; do nothing else. */
typedef void (*locks_notify_fn)(void *ud);
/* The set of a locks_acquire() that returned 0 is now held whole. */
typedef void (*locks_cb)(void *ud);

/* A manager for the locks declared in defs[0..ndefs) (borrowed: lives in
 * the config, which outlives the manager).  notify may be NULL. */
struct lock_mgr *locks_new(const struct config_lock *defs, size_t ndefs, locks_notify_fn notify,
			   void *notify_ud);
/* Frees the manager; every handle must be released or cancelled first. */
void locks_free(struct lock_mgr *m);

/* Could a newcomer take all of reqs[0..n) on worker now, without waiting?
 * (Buildbot's canStartBuild check: the distributor skips a worker when not.)
 * worker is ignored for master locks; n == 0 is true. */
bool locks_available(struct lock_mgr *m, const struct config_lock_access *reqs, size_t n,
		     const char *worker);

/* Acquires the set reqs[0..n) (each lock at most once, indexes < ndefs) for
 * owner, a description such as "build 12 of builder 'x'" (copied; shown to
 * those who wait), on worker (copied; needed when the set has a worker
 * lock).  Returns 1 when every lock is held now (cb is never called), 0 when
 * the set waits (cb(ud) is called once, from locks_dispatch(), when all are
 * held), or -EINVAL (a bad index, a lock listed twice, a worker lock without
 * a worker) / -E2BIG (n > KILN_MAX_LOCKS_PER_SET) with nothing held and no
 * handle.  On 0 or 1 *ret is the handle, owned by the caller until
 * locks_release() or locks_cancel(). */
int locks_acquire(struct lock_mgr *m, const struct config_lock_access *reqs, size_t n,
		  const char *worker, const char *owner, locks_cb cb, void *ud,
		  struct lock_handle **ret);
/* Releases a held set and frees the handle (NULL-safe).  Waiters it
 * unblocks are granted now and called back from locks_dispatch(). */
void locks_release(struct lock_handle *h);
/* Gives a set up whatever its state (waiting, partly or wholly held, or
 * complete and not yet called back): leaves every queue, releases what is
 * held and frees the handle; its callback is never called.  NULL-safe. */
void locks_cancel(struct lock_handle *h);
/* Is the whole set held (its callback may still be pending)? */
bool locks_held(const struct lock_handle *h);
/* How many sets wait (not yet held whole). */
size_t locks_nwaiting(const struct lock_mgr *m);
/* Calls the callbacks of the sets completed since the last call, in the
 * order they completed.  Run on a loop turn of its own (see the notify
 * hook); a callback may acquire, release or cancel anything. */
void locks_dispatch(struct lock_mgr *m);

/* What a waiting set waits for, e.g. "waiting for lock 'compile'
 * (exclusive; held by build 12 of builder 'x')" or "waiting for lock 'disk'
 * on worker 'w1' (counting; held by build 3 of builder 'a' and 1 more)";
 * NULL when the set is not waiting.  Owned by the caller; at most
 * KILN_MAX_LOCK_DESCRIBE bytes. */
char *locks_describe_waiting(const struct lock_handle *h);

#endif
