/*
 * The lock manager (locks.h): lock instances with their holders and FIFO
 * queues of waiters, and sets of locks acquired one lock at a time in the
 * global order (lock index).  The engine owns one manager; builds and steps
 * hold handles.  Pure bookkeeping on the loop thread: no I/O, no libuv.
 */
#include "master/locks.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/xalloc.h"
#include "config/config.h"

struct lock_inst;

/* One lock of a set: queued on its instance, then held. */
struct lock_slot {
	struct lock_handle *h;
	struct lock_inst *inst; /* set once queued or held */
	size_t lock;
	enum config_lock_mode mode;
	int count; /* counting units, at most the instance's max */
	bool held, queued;
	struct lock_slot *prev, *next; /* in inst's holders or waiters */
};

struct lock_inst {
	size_t lock;
	char *worker; /* owned; NULL for a master lock */
	int max;
	int units; /* counting units held */
	bool excl; /* held exclusively */
	int nholders;
	struct lock_slot *holders, *holders_tail;
	struct lock_slot *waiters, *waiters_tail; /* FIFO */
	struct lock_inst *next;                   /* in m->insts[lock] */
};

struct lock_handle {
	struct lock_mgr *m;
	char *owner;  /* owned */
	char *worker; /* owned, may be NULL */
	locks_cb cb;
	void *ud;
	bool ready;                        /* complete, on m's ready list */
	struct lock_handle *rprev, *rnext; /* in m's ready list */
	size_t n, next;                    /* slots[0..next) are held */
	struct lock_slot slots[];
};

struct lock_mgr {
	const struct config_lock *defs; /* borrowed: lives in the config */
	size_t ndefs;
	struct lock_inst **insts; /* per lock: its live instances (one per worker) */
	locks_notify_fn notify;
	void *notify_ud;
	struct lock_handle *ready, *ready_tail;
	size_t nwaiting; /* handles not yet held whole */
};

struct lock_mgr *locks_new(const struct config_lock *defs, size_t ndefs, locks_notify_fn notify,
			   void *notify_ud)
{
	struct lock_mgr *m = xcalloc(1, sizeof(*m));
	m->defs = defs;
	m->ndefs = ndefs;
	m->insts = xcalloc(ndefs + 1, sizeof(*m->insts));
	m->notify = notify;
	m->notify_ud = notify_ud;
	return m;
}

void locks_free(struct lock_mgr *m)
{
	if (!m)
		return;
	/* handles are gone, so every instance is gone too (freed when empty) */
	free(m->insts);
	free(m);
}

/* The instance of lock on worker; created when create is set, else NULL
 * when nobody holds or waits for it. */
static struct lock_inst *locks_inst_get(struct lock_mgr *m, size_t lock, const char *worker,
					bool create)
{
	const struct config_lock *d = &m->defs[lock];
	bool per_worker = d->kind == CONFIG_LOCK_WORKER;
	for (struct lock_inst *i = m->insts[lock]; i; i = i->next)
		if (!per_worker || !strcmp(i->worker, worker))
			return i;
	if (!create)
		return NULL;
	struct lock_inst *i = xcalloc(1, sizeof(*i));
	i->lock = lock;
	i->worker = per_worker ? xstrdup(worker) : NULL;
	i->max = config_lock_max_count(d, i->worker);
	if (i->max < 1)
		i->max = 1;
	i->next = m->insts[lock];
	m->insts[lock] = i;
	return i;
}

static void locks_inst_maybe_free(struct lock_mgr *m, struct lock_inst *inst)
{
	if (inst->nholders || inst->waiters)
		return;
	for (struct lock_inst **pp = &m->insts[inst->lock]; *pp; pp = &(*pp)->next)
		if (*pp == inst) {
			*pp = inst->next;
			break;
		}
	free(inst->worker);
	free(inst);
}

static int locks_clamp(const struct lock_inst *inst, enum config_lock_mode mode, int count)
{
	if (mode == CONFIG_LOCK_EXCLUSIVE)
		return 1;
	return count > inst->max ? inst->max : count;
}

/* Would this access fit next to the instance's holders? */
static bool locks_fits(const struct lock_inst *inst, enum config_lock_mode mode, int count)
{
	if (inst->excl)
		return false;
	if (mode == CONFIG_LOCK_EXCLUSIVE)
		return inst->units == 0;
	return inst->units + count <= inst->max;
}

static void locks_list_append(struct lock_slot **head, struct lock_slot **tail, struct lock_slot *s)
{
	s->next = NULL;
	s->prev = *tail;
	if (*tail)
		(*tail)->next = s;
	else
		*head = s;
	*tail = s;
}

static void locks_list_unlink(struct lock_slot **head, struct lock_slot **tail, struct lock_slot *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		*head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		*tail = s->prev;
	s->prev = s->next = NULL;
}

static void locks_grant(struct lock_inst *inst, struct lock_slot *s)
{
	if (s->mode == CONFIG_LOCK_EXCLUSIVE)
		inst->excl = true;
	else
		inst->units += s->count;
	inst->nholders++;
	locks_list_append(&inst->holders, &inst->holders_tail, s);
	s->held = true;
}

/* Takes the set's locks from h->next on, in order, until one must wait (it
 * is queued: false) or all are held (true). */
static bool locks_advance(struct lock_handle *h)
{
	while (h->next < h->n) {
		struct lock_slot *s = &h->slots[h->next];
		struct lock_inst *inst = locks_inst_get(h->m, s->lock, h->worker, true);
		s->inst = inst;
		s->count = locks_clamp(inst, s->mode, s->count);
		if (inst->waiters || !locks_fits(inst, s->mode, s->count)) {
			locks_list_append(&inst->waiters, &inst->waiters_tail, s);
			s->queued = true;
			return false;
		}
		locks_grant(inst, s);
		h->next++;
	}
	return true;
}

static void locks_ready_push(struct lock_mgr *m, struct lock_handle *h)
{
	h->ready = true;
	h->rnext = NULL;
	h->rprev = m->ready_tail;
	if (m->ready_tail)
		m->ready_tail->rnext = h;
	else
		m->ready = h;
	m->ready_tail = h;
}

static void locks_ready_unlink(struct lock_mgr *m, struct lock_handle *h)
{
	if (!h->ready)
		return;
	if (h->rprev)
		h->rprev->rnext = h->rnext;
	else
		m->ready = h->rnext;
	if (h->rnext)
		h->rnext->rprev = h->rprev;
	else
		m->ready_tail = h->rprev;
	h->rprev = h->rnext = NULL;
	h->ready = false;
}

/* Grants the instance to its waiters from the head of the queue until the
 * first one that does not fit (strict FIFO: nobody overtakes a waiter). */
static void locks_wake(struct lock_mgr *m, struct lock_inst *inst)
{
	struct lock_slot *s;
	while ((s = inst->waiters) && locks_fits(inst, s->mode, s->count)) {
		locks_list_unlink(&inst->waiters, &inst->waiters_tail, s);
		s->queued = false;
		locks_grant(inst, s);
		struct lock_handle *h = s->h;
		h->next++;
		/* only grants below (queues of later locks): no release, no recursion */
		if (locks_advance(h)) {
			m->nwaiting--;
			locks_ready_push(m, h);
		}
	}
}

static void locks_slot_release(struct lock_mgr *m, struct lock_slot *s)
{
	struct lock_inst *inst = s->inst;
	if (s->queued) {
		bool head = inst->waiters == s;
		locks_list_unlink(&inst->waiters, &inst->waiters_tail, s);
		s->queued = false;
		/* those behind a waiter that gave up may fit now */
		if (head)
			locks_wake(m, inst);
	} else if (s->held) {
		if (s->mode == CONFIG_LOCK_EXCLUSIVE)
			inst->excl = false;
		else
			inst->units -= s->count;
		inst->nholders--;
		locks_list_unlink(&inst->holders, &inst->holders_tail, s);
		s->held = false;
		locks_wake(m, inst);
	} else {
		return;
	}
	s->inst = NULL;
	locks_inst_maybe_free(m, inst);
}

static int locks_slot_cmp(const void *a, const void *b)
{
	size_t x = ((const struct lock_slot *)a)->lock, y = ((const struct lock_slot *)b)->lock;
	return (x > y) - (x < y);
}

static bool locks_req_ok(const struct lock_mgr *m, const struct config_lock_access *r,
			 const char *worker)
{
	if (r->lock >= m->ndefs)
		return false;
	if (r->mode != CONFIG_LOCK_COUNTING && r->mode != CONFIG_LOCK_EXCLUSIVE)
		return false;
	if (r->mode == CONFIG_LOCK_COUNTING && r->count < 1)
		return false;
	return m->defs[r->lock].kind == CONFIG_LOCK_MASTER || worker;
}

bool locks_available(struct lock_mgr *m, const struct config_lock_access *reqs, size_t n,
		     const char *worker)
{
	for (size_t i = 0; i < n; i++) {
		if (!locks_req_ok(m, &reqs[i], worker))
			return false;
		struct lock_inst *inst = locks_inst_get(m, reqs[i].lock, worker, false);
		if (!inst)
			continue; /* nobody holds or waits for it */
		int count = locks_clamp(inst, reqs[i].mode, reqs[i].count);
		if (inst->waiters || !locks_fits(inst, reqs[i].mode, count))
			return false;
	}
	return true;
}

int locks_acquire(struct lock_mgr *m, const struct config_lock_access *reqs, size_t n,
		  const char *worker, const char *owner, locks_cb cb, void *ud,
		  struct lock_handle **ret)
{
	if (n > KILN_MAX_LOCKS_PER_SET)
		return -E2BIG;
	for (size_t i = 0; i < n; i++)
		if (!locks_req_ok(m, &reqs[i], worker))
			return -EINVAL;
	struct lock_handle *h = xcalloc(1, sizeof(*h) + n * sizeof(h->slots[0]));
	h->m = m;
	h->n = n;
	for (size_t i = 0; i < n; i++)
		h->slots[i] = (struct lock_slot){
			.h = h, .lock = reqs[i].lock, .mode = reqs[i].mode, .count = reqs[i].count};
	/* the global order: whatever order the builder listed them in */
	qsort(h->slots, n, sizeof(h->slots[0]), locks_slot_cmp);
	for (size_t i = 1; i < n; i++)
		if (h->slots[i].lock == h->slots[i - 1].lock) {
			free(h);
			return -EINVAL;
		}
	h->owner = xstrdup(owner ? owner : "?");
	h->worker = worker ? xstrdup(worker) : NULL;
	h->cb = cb;
	h->ud = ud;
	*ret = h;
	if (locks_advance(h))
		return 1;
	m->nwaiting++;
	return 0;
}

size_t locks_nwaiting(const struct lock_mgr *m)
{
	return m->nwaiting;
}

bool locks_held(const struct lock_handle *h)
{
	return h && h->next == h->n;
}

void locks_cancel(struct lock_handle *h)
{
	if (!h)
		return;
	struct lock_mgr *m = h->m;
	locks_ready_unlink(m, h);
	if (h->next < h->n)
		m->nwaiting--;
	bool any = false;
	/* the queued slot first: the held ones are on other instances */
	if (h->next < h->n && h->slots[h->next].queued) {
		locks_slot_release(m, &h->slots[h->next]);
		any = true;
	}
	for (size_t i = h->next; i-- > 0;) {
		locks_slot_release(m, &h->slots[i]);
		any = true;
	}
	free(h->owner);
	free(h->worker);
	free(h);
	if (any && m->notify)
		m->notify(m->notify_ud);
}

void locks_release(struct lock_handle *h)
{
	locks_cancel(h);
}

void locks_dispatch(struct lock_mgr *m)
{
	struct lock_handle *h;
	while ((h = m->ready)) {
		locks_ready_unlink(m, h);
		if (h->cb)
			h->cb(h->ud);
	}
}

char *locks_describe_waiting(const struct lock_handle *h)
{
	if (!h || h->next >= h->n || !h->slots[h->next].queued)
		return NULL;
	const struct lock_slot *s = &h->slots[h->next];
	const struct lock_inst *inst = s->inst;
	const struct config_lock *d = &h->m->defs[s->lock];
	const char *mode = s->mode == CONFIG_LOCK_EXCLUSIVE ? "exclusive" : "counting";
	_cleanup_free_ char *where =
		inst->worker ? xasprintf(" on worker '%.200s'", inst->worker) : xstrdup("");
	_cleanup_free_ char *why = NULL;
	if (inst->holders) {
		_cleanup_free_ char *more = inst->nholders > 1
						    ? xasprintf(" and %d more", inst->nholders - 1)
						    : xstrdup("");
		why = xasprintf("held by %.300s%s", inst->holders->h->owner, more);
	} else {
		size_t ahead = 0;
		for (const struct lock_slot *w = inst->waiters; w && w != s; w = w->next)
			ahead++;
		why = xasprintf("%zu waiting ahead", ahead);
	}
	/* name and worker <= 200 bytes, owner cut at 300, the rest < 100 */
	_Static_assert(200 + 200 + 300 + 100 <= KILN_MAX_LOCK_DESCRIBE, "describe's bound");
	return xasprintf("waiting for lock '%.200s'%s (%s; %s)", d->name, where, mode, why);
}
