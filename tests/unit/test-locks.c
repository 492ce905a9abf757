/*
 * The lock manager (master/locks.c): counting up to max_count, exclusive
 * against counting, worker locks per worker with max_count_for_worker, the
 * global acquisition order, cancel while waiting, FIFO fairness, and
 * callbacks only from locks_dispatch().
 */
#include <errno.h>
#include <stdlib.h>

#include "common/limits.h"
#include "config/config.h"
#include "master/locks.h"
#include "tap.h"

/* 0: master "compile" (max 2), 1: master "A" (max 1), 2: master "B" (max 1),
 * 3: worker "disk" (max 1, w1 = 3) */
static struct config_lock_count disk_counts[] = {{"w1", 3}};
static const struct config_lock defs[] = {
	{CONFIG_LOCK_MASTER, "compile", 2, NULL, 0, 1},
	{CONFIG_LOCK_MASTER, "A", 1, NULL, 0, 2},
	{CONFIG_LOCK_MASTER, "B", 1, NULL, 0, 3},
	{CONFIG_LOCK_WORKER, "disk", 1, disk_counts, 1, 4},
};
enum { COMPILE, LA, LB, DISK };

static int notified;
static void on_notify(void *ud)
{
	(void)ud;
	notified++;
}

/* each test's callbacks record the order they ran in */
static int order[16], norder;
static void on_held(void *ud)
{
	if (norder < 16)
		order[norder++] = (int)(long)ud;
}

static struct lock_mgr *mgr(void)
{
	notified = norder = 0;
	return locks_new(defs, sizeof(defs) / sizeof(defs[0]), on_notify, NULL);
}

static struct config_lock_access counting(size_t lock, int n)
{
	return (struct config_lock_access){lock, CONFIG_LOCK_COUNTING, n};
}

static struct config_lock_access excl(size_t lock)
{
	return (struct config_lock_access){lock, CONFIG_LOCK_EXCLUSIVE, 1};
}

/* Acquires one access for owner tag id; returns locks_acquire's value. */
static int take(struct lock_mgr *m, struct config_lock_access a, const char *worker, int id,
		struct lock_handle **h)
{
	char owner[64];
	snprintf(owner, sizeof(owner), "build %d of builder 'x'", id);
	return locks_acquire(m, &a, 1, worker, owner, on_held, (void *)(long)id, h);
}

TEST(counting_up_to_max_count)
{
	struct lock_mgr *m = mgr();
	struct lock_handle *h1, *h2, *h3;
	CHECK_INT(take(m, counting(COMPILE, 1), NULL, 1, &h1), 1);
	CHECK_INT(take(m, counting(COMPILE, 1), NULL, 2, &h2), 1);
	CHECK(!locks_available(m, (struct config_lock_access[]){counting(COMPILE, 1)}, 1, NULL));
	CHECK_INT(locks_nwaiting(m), 0);
	CHECK_INT(take(m, counting(COMPILE, 1), NULL, 3, &h3), 0);
	CHECK(!locks_held(h3));
	CHECK_INT(locks_nwaiting(m), 1);
	char *d = locks_describe_waiting(h3);
	CHECK_STR(d, "waiting for lock 'compile' (counting; held by build 1 of builder 'x' and 1 "
		     "more)");
	free(d);
	CHECK(locks_describe_waiting(h1) == NULL);
	locks_release(h2);
	/* granted at once, called back only from locks_dispatch() */
	CHECK(locks_held(h3));
	CHECK_INT(locks_nwaiting(m), 0);
	CHECK_INT(norder, 0);
	CHECK_INT(notified, 1);
	locks_dispatch(m);
	CHECK_INT(norder, 1);
	CHECK_INT(order[0], 3);
	locks_release(h1);
	locks_release(h3);
	CHECK(locks_available(m, (struct config_lock_access[]){excl(COMPILE)}, 1, NULL));
	locks_free(m);
}

TEST(count_above_max_takes_the_whole_lock)
{
	struct lock_mgr *m = mgr();
	struct lock_handle *h1, *h2;
	CHECK_INT(take(m, counting(COMPILE, 5), NULL, 1, &h1), 1);
	CHECK_INT(take(m, counting(COMPILE, 1), NULL, 2, &h2), 0);
	locks_release(h1);
	locks_dispatch(m);
	CHECK_INT(norder, 1);
	locks_release(h2);
	locks_free(m);
}

TEST(exclusive_against_counting)
{
	struct lock_mgr *m = mgr();
	struct lock_handle *c1, *e1, *c2;
	CHECK_INT(take(m, counting(COMPILE, 1), NULL, 1, &c1), 1);
	CHECK_INT(take(m, excl(COMPILE), NULL, 2, &e1), 0);
	char *d = locks_describe_waiting(e1);
	CHECK_STR(d, "waiting for lock 'compile' (exclusive; held by build 1 of builder 'x')");
	free(d);
	locks_release(c1);
	locks_dispatch(m);
	CHECK_INT(norder, 1);
	CHECK_INT(order[0], 2);
	/* exclusive held: even one counting unit waits */
	CHECK_INT(take(m, counting(COMPILE, 1), NULL, 3, &c2), 0);
	locks_release(e1);
	locks_dispatch(m);
	CHECK_INT(norder, 2);
	CHECK_INT(order[1], 3);
	locks_release(c2);
	locks_free(m);
}

TEST(worker_locks_are_per_worker)
{
	struct lock_mgr *m = mgr();
	struct lock_handle *a, *b, *c;
	CHECK_INT(take(m, excl(DISK), "w2", 1, &a), 1);
	CHECK_INT(take(m, excl(DISK), "w3", 2, &b), 1); /* another worker, another instance */
	CHECK_INT(take(m, counting(DISK, 1), "w2", 3, &c), 0);
	char *d = locks_describe_waiting(c);
	CHECK_STR(d, "waiting for lock 'disk' on worker 'w2' (counting; held by build 1 of "
		     "builder 'x')");
	free(d);
	CHECK(!locks_available(m, (struct config_lock_access[]){counting(DISK, 1)}, 1, "w2"));
	CHECK(locks_available(m, (struct config_lock_access[]){counting(DISK, 1)}, 1, "w4"));
	locks_release(b);
	locks_dispatch(m);
	CHECK_INT(norder, 0); /* w3's release does nothing for w2 */
	locks_release(a);
	locks_dispatch(m);
	CHECK_INT(norder, 1);
	locks_release(c);
	locks_free(m);
}

TEST(max_count_for_worker)
{
	struct lock_mgr *m = mgr();
	struct lock_handle *h[5];
	for (int i = 0; i < 3; i++)
		CHECK_INT(take(m, counting(DISK, 1), "w1", i, &h[i]), 1);
	CHECK_INT(take(m, counting(DISK, 1), "w1", 3, &h[3]), 0);
	CHECK_INT(take(m, counting(DISK, 1), "w2", 4, &h[4]), 1); /* max_count 1 elsewhere */
	struct lock_handle *x;
	CHECK_INT(take(m, counting(DISK, 1), "w2", 5, &x), 0);
	locks_cancel(x);
	locks_release(h[0]);
	locks_dispatch(m);
	CHECK_INT(norder, 1);
	CHECK_INT(order[0], 3);
	for (int i = 1; i < 5; i++)
		locks_release(h[i]);
	locks_free(m);
}

/* X lists {A, B}, Y lists {B, A}: both take A first.  Taking them in the
 * listed order, Y would hold B while waiting for A and X would hold A while
 * waiting for B. */
TEST(fixed_order_no_deadlock)
{
	struct lock_mgr *m = mgr();
	struct lock_handle *gate, *x, *y;
	CHECK_INT(take(m, excl(LA), NULL, 9, &gate), 1);
	struct config_lock_access ylist[] = {excl(LB), excl(LA)};
	struct config_lock_access xlist[] = {excl(LA), excl(LB)};
	CHECK_INT(locks_acquire(m, ylist, 2, NULL, "Y", on_held, (void *)1L, &y), 0);
	/* Y holds nothing while it waits for A: B is free */
	CHECK(locks_available(m, (struct config_lock_access[]){excl(LB)}, 1, NULL));
	char *d = locks_describe_waiting(y);
	CHECK_STR(d, "waiting for lock 'A' (exclusive; held by build 9 of builder 'x')");
	free(d);
	CHECK_INT(locks_acquire(m, xlist, 2, NULL, "X", on_held, (void *)2L, &x), 0);
	d = locks_describe_waiting(x);
	CHECK_STR(d, "waiting for lock 'A' (exclusive; held by build 9 of builder 'x')");
	free(d);
	locks_release(gate);
	locks_dispatch(m);
	CHECK_INT(norder, 1);
	CHECK_INT(order[0], 1);
	CHECK(locks_held(y));
	locks_release(y);
	locks_dispatch(m);
	CHECK_INT(norder, 2);
	CHECK_INT(order[1], 2);
	CHECK(locks_held(x));
	locks_release(x);
	locks_free(m);
}

TEST(partial_set_holds_earlier_locks)
{
	struct lock_mgr *m = mgr();
	struct lock_handle *hb, *set, *other;
	CHECK_INT(take(m, excl(LB), NULL, 1, &hb), 1);
	struct config_lock_access ab[] = {excl(LB), excl(LA)};
	CHECK_INT(locks_acquire(m, ab, 2, NULL, "S", on_held, (void *)2L, &set), 0);
	char *d = locks_describe_waiting(set);
	CHECK_STR(d, "waiting for lock 'B' (exclusive; held by build 1 of builder 'x')");
	free(d);
	/* A comes first in the order: the set holds it while it waits for B */
	CHECK_INT(take(m, excl(LA), NULL, 3, &other), 0);
	d = locks_describe_waiting(other);
	CHECK_STR(d, "waiting for lock 'A' (exclusive; held by S)");
	free(d);
	/* giving the set up hands A to the next waiter */
	locks_cancel(set);
	CHECK(locks_held(other));
	locks_dispatch(m);
	CHECK_INT(norder, 1);
	CHECK_INT(order[0], 3);
	locks_release(hb);
	locks_release(other);
	locks_free(m);
}

TEST(cancel_while_waiting)
{
	struct lock_mgr *m = mgr();
	struct lock_handle *h, *w, *w2;
	CHECK_INT(take(m, excl(LA), NULL, 1, &h), 1);
	CHECK_INT(take(m, excl(LA), NULL, 2, &w), 0);
	CHECK_INT(take(m, excl(LA), NULL, 3, &w2), 0);
	CHECK_INT(locks_nwaiting(m), 2);
	char *d = locks_describe_waiting(w2);
	CHECK_STR(d, "waiting for lock 'A' (exclusive; held by build 1 of builder 'x')");
	free(d);
	locks_cancel(w);
	CHECK_INT(locks_nwaiting(m), 1);
	locks_release(h);
	locks_dispatch(m);
	CHECK_INT(norder, 1);
	CHECK_INT(order[0], 3); /* the cancelled one is never called */
	CHECK_INT(locks_nwaiting(m), 0);
	locks_release(w2);
	CHECK(locks_available(m, (struct config_lock_access[]){excl(LA)}, 1, NULL));
	/* cancelled after being granted, before its callback ran */
	CHECK_INT(take(m, excl(LA), NULL, 4, &h), 1);
	CHECK_INT(take(m, excl(LA), NULL, 5, &w), 0);
	locks_release(h);
	CHECK(locks_held(w));
	locks_cancel(w);
	CHECK_INT(locks_nwaiting(m), 0);
	norder = 0;
	locks_dispatch(m);
	CHECK_INT(norder, 0);
	CHECK(locks_available(m, (struct config_lock_access[]){excl(LA)}, 1, NULL));
	locks_free(m);
}

/* A cancelled head of the queue lets those behind it in. */
TEST(cancel_head_wakes_the_rest)
{
	struct lock_mgr *m = mgr();
	struct lock_handle *c1, *e, *c2;
	CHECK_INT(take(m, counting(COMPILE, 1), NULL, 1, &c1), 1);
	CHECK_INT(take(m, excl(COMPILE), NULL, 2, &e), 0);
	CHECK_INT(take(m, counting(COMPILE, 1), NULL, 3, &c2), 0);
	locks_cancel(e);
	CHECK(locks_held(c2));
	locks_dispatch(m);
	CHECK_INT(norder, 1);
	CHECK_INT(order[0], 3);
	locks_release(c1);
	locks_release(c2);
	locks_free(m);
}

/* Counting holders come and go; an exclusive waiter still gets its turn,
 * and a counting newcomer that would fit waits behind it. */
TEST(fairness_exclusive_not_starved)
{
	struct lock_mgr *m = mgr();
	struct lock_handle *c1, *e, *c2, *c3;
	CHECK_INT(take(m, counting(COMPILE, 1), NULL, 1, &c1), 1);
	CHECK_INT(take(m, excl(COMPILE), NULL, 2, &e), 0);
	CHECK(!locks_available(m, (struct config_lock_access[]){counting(COMPILE, 1)}, 1, NULL));
	CHECK_INT(take(m, counting(COMPILE, 1), NULL, 3, &c2), 0);
	char *d = locks_describe_waiting(c2);
	CHECK_STR(d, "waiting for lock 'compile' (counting; held by build 1 of builder 'x')");
	free(d);
	CHECK_INT(take(m, counting(COMPILE, 1), NULL, 4, &c3), 0);
	locks_release(c1);
	locks_dispatch(m);
	CHECK_INT(norder, 1);
	CHECK_INT(order[0], 2);
	CHECK(!locks_held(c2));
	locks_release(e);
	locks_dispatch(m);
	/* both counting waiters fit in max_count 2, woken in queue order */
	CHECK_INT(norder, 3);
	CHECK_INT(order[1], 3);
	CHECK_INT(order[2], 4);
	locks_release(c2);
	locks_release(c3);
	locks_free(m);
}

TEST(callback_may_release_and_acquire)
{
	/* dispatch pops one handle at a time: a callback may cancel one still queued */
	struct lock_mgr *m = mgr();
	struct lock_handle *h, *a, *b;
	CHECK_INT(take(m, counting(COMPILE, 2), NULL, 1, &h), 1);
	CHECK_INT(take(m, counting(COMPILE, 1), NULL, 2, &a), 0);
	CHECK_INT(take(m, counting(COMPILE, 1), NULL, 3, &b), 0);
	locks_release(h);
	CHECK(locks_held(a) && locks_held(b));
	locks_cancel(b); /* as a stop in the same turn would */
	locks_dispatch(m);
	CHECK_INT(norder, 1);
	CHECK_INT(order[0], 2);
	locks_release(a);
	locks_free(m);
}

TEST(bad_sets)
{
	struct lock_mgr *m = mgr();
	struct lock_handle *h = NULL;
	struct config_lock_access dup[] = {excl(LA), counting(LA, 1)};
	CHECK_INT(locks_acquire(m, dup, 2, NULL, "x", on_held, NULL, &h), -EINVAL);
	struct config_lock_access bad = {99, CONFIG_LOCK_COUNTING, 1};
	CHECK_INT(locks_acquire(m, &bad, 1, NULL, "x", on_held, NULL, &h), -EINVAL);
	/* a worker lock needs a worker */
	CHECK_INT(take(m, excl(DISK), NULL, 1, &h), -EINVAL);
	CHECK(!locks_available(m, (struct config_lock_access[]){excl(DISK)}, 1, NULL));
	struct config_lock_access zero = counting(LA, 0);
	CHECK_INT(locks_acquire(m, &zero, 1, NULL, "x", on_held, NULL, &h), -EINVAL);
	struct config_lock_access many[KILN_MAX_LOCKS_PER_SET + 1] = {0};
	CHECK_INT(locks_acquire(m, many, KILN_MAX_LOCKS_PER_SET + 1, NULL, "x", on_held, NULL, &h),
		  -E2BIG);
	CHECK(h == NULL);
	/* the empty set is held at once */
	CHECK_INT(locks_acquire(m, NULL, 0, NULL, "x", on_held, NULL, &h), 1);
	CHECK(locks_held(h));
	locks_release(h);
	locks_cancel(NULL);
	locks_release(NULL);
	CHECK_INT(notified, 0);
	locks_free(m);
}

int main(void)
{
	RUN(counting_up_to_max_count);
	RUN(count_above_max_takes_the_whole_lock);
	RUN(exclusive_against_counting);
	RUN(worker_locks_are_per_worker);
	RUN(max_count_for_worker);
	RUN(fixed_order_no_deadlock);
	RUN(partial_set_holds_earlier_locks);
	RUN(cancel_while_waiting);
	RUN(cancel_head_wakes_the_rest);
	RUN(fairness_exclusive_not_starved);
	RUN(callback_may_release_and_acquire);
	RUN(bad_sets);
	return tap_done();
}
