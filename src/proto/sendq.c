/*
 * One connection's WebSocket send queue (sendq.h), shared by the master's
 * http-ws.c and kiln-worker's conn.c: a singly linked list of copies with
 * the caller's headroom in front of each, byte counts kept against the cap.
 */
#include "proto/sendq.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

void proto_sendq_init(struct proto_sendq *q, size_t max, size_t headroom)
{
	q->head = q->tail = NULL;
	q->queued = 0;
	q->queued_droppable = 0;
	q->max = max;
	q->headroom = headroom;
}

void proto_sendq_release(struct proto_sendq *q)
{
	struct proto_sendq_msg *m = q->head;
	while (m) {
		struct proto_sendq_msg *next = m->next;
		free(m);
		m = next;
	}
	q->head = q->tail = NULL;
	q->queued = 0;
	q->queued_droppable = 0;
}

struct proto_sendq_msg *proto_sendq_msg_new(const struct proto_sendq *q, size_t len)
{
	struct proto_sendq_msg *m;

	if (len > SIZE_MAX - sizeof(*m) - q->headroom)
		abort(); /* no such allocation can succeed: as xmalloc's failure */
	m = xmalloc(sizeof(*m) + q->headroom + len);
	m->next = NULL;
	m->len = len;
	m->flags = 0;
	return m;
}

int proto_sendq_push_msg(struct proto_sendq *q, struct proto_sendq_msg *m, unsigned flags)
{
	if (m->len > q->max || q->queued > q->max - m->len)
		return -ENOBUFS;
	m->next = NULL;
	m->flags = flags;
	if (q->tail)
		q->tail->next = m;
	else
		q->head = m;
	q->tail = m;
	q->queued += m->len;
	if (flags & PROTO_SENDQ_DROPPABLE)
		q->queued_droppable += m->len;
	return 0;
}

int proto_sendq_push(struct proto_sendq *q, const void *data, size_t len, unsigned flags)
{
	if (len > q->max || q->queued > q->max - len)
		return -ENOBUFS;
	if (len > SIZE_MAX - sizeof(struct proto_sendq_msg) - q->headroom)
		return -ENOBUFS; /* only reachable without a cap */
	struct proto_sendq_msg *m = proto_sendq_msg_new(q, len);
	if (len)
		memcpy(m->data + q->headroom, data, len);
	return proto_sendq_push_msg(q, m, flags);
}

struct proto_sendq_msg *proto_sendq_peek(const struct proto_sendq *q)
{
	return q->head;
}

unsigned char *proto_sendq_payload(const struct proto_sendq *q, struct proto_sendq_msg *m)
{
	return m->data + q->headroom;
}

/* Takes m's bytes out of the counts (m is leaving the queue). */
static void proto_sendq_uncount(struct proto_sendq *q, const struct proto_sendq_msg *m)
{
	q->queued -= m->len;
	if (m->flags & PROTO_SENDQ_DROPPABLE)
		q->queued_droppable -= m->len;
}

void proto_sendq_shift(struct proto_sendq *q)
{
	struct proto_sendq_msg *m = q->head;
	if (!m)
		return;
	q->head = m->next;
	if (!q->head)
		q->tail = NULL;
	proto_sendq_uncount(q, m);
	free(m);
}

void proto_sendq_drop_droppable(struct proto_sendq *q)
{
	struct proto_sendq_msg **pp = &q->head, *last = NULL;
	while (*pp) {
		struct proto_sendq_msg *m = *pp;
		if (m->flags & PROTO_SENDQ_DROPPABLE) {
			*pp = m->next;
			proto_sendq_uncount(q, m);
			free(m);
		} else {
			last = m;
			pp = &m->next;
		}
	}
	q->tail = last;
}
