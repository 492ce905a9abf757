/*
 * The WebSocket send queue both daemons use for one connection: copies of
 * outgoing messages in order, their byte count against a cap, and browser
 * events that may be discarded while still unsent.  Transport-agnostic: the
 * caller's writeable callback writes the head (proto_sendq_peek()) and then
 * drops it (proto_sendq_shift()).  Each copy keeps 'headroom' writable bytes
 * in front of its payload, so a transport that frames in place (lws wants
 * LWS_PRE) writes straight from the queue.  Single-threaded: one loop.
 */
#ifndef KILN_PROTO_SENDQ_H
#define KILN_PROTO_SENDQ_H

#include <stdbool.h>
#include <stddef.h>

enum proto_sendq_flags {
	/* proto_sendq_drop_droppable() may discard it while unsent (browser events) */
	PROTO_SENDQ_DROPPABLE = 1 << 0,
	/* the payload is a whole WebSocket frame already (kiln-worker's uploads):
	 * the transport writes it as it is */
	PROTO_SENDQ_FRAMED = 1 << 1,
};

struct proto_sendq_msg {
	struct proto_sendq_msg *next;
	size_t len;           /* payload bytes */
	unsigned flags;       /* enum proto_sendq_flags */
	unsigned char data[]; /* the queue's headroom, then len bytes */
};

struct proto_sendq {
	struct proto_sendq_msg *head, *tail; /* owned */
	size_t queued;                       /* payload bytes of every queued message */
	size_t queued_droppable;             /* of those, the bytes of droppable ones */
	size_t max;                          /* cap on queued */
	size_t headroom;                     /* bytes kept in front of each payload */
};

/* An empty queue holding at most max payload bytes (SIZE_MAX: no cap of its
 * own, the owner bounds it another way).  Allocates nothing. */
void proto_sendq_init(struct proto_sendq *q, size_t max, size_t headroom);
/* Frees every queued message; the queue is empty and usable again (same cap
 * and headroom).  Idempotent. */
void proto_sendq_release(struct proto_sendq *q);

/* Appends a copy of data[0..len) with flags (enum proto_sendq_flags).
 * -ENOBUFS, with nothing queued, if queued + len would pass the cap. */
int proto_sendq_push(struct proto_sendq *q, const void *data, size_t len, unsigned flags)
	__attribute__((warn_unused_result));
/* A message of len payload bytes (proto_sendq_payload(), the queue's
 * headroom before them) for the caller to fill in place, not queued: then
 * proto_sendq_push_msg() or free().  Its len may be lowered before the push. */
struct proto_sendq_msg *proto_sendq_msg_new(const struct proto_sendq *q, size_t len);
/* Appends m (from proto_sendq_msg_new() on this queue) without copying it:
 * the queue owns it from now on.  -ENOBUFS, m still the caller's, if
 * queued + m->len would pass the cap. */
int proto_sendq_push_msg(struct proto_sendq *q, struct proto_sendq_msg *m, unsigned flags)
	__attribute__((warn_unused_result));
/* The oldest message (borrowed: valid until it is shifted, dropped or the
 * queue released), or NULL when the queue is empty. */
struct proto_sendq_msg *proto_sendq_peek(const struct proto_sendq *q);
/* Its payload: len bytes, with the queue's headroom writable just before. */
unsigned char *proto_sendq_payload(const struct proto_sendq *q, struct proto_sendq_msg *m);
/* Removes and frees the oldest message (its bytes leave the counts).  No-op
 * on an empty queue. */
void proto_sendq_shift(struct proto_sendq *q);
/* Discards every droppable message (others stay queued, in order). */
void proto_sendq_drop_droppable(struct proto_sendq *q);

static inline bool proto_sendq_empty(const struct proto_sendq *q)
{
	return q->head == NULL;
}

#endif
