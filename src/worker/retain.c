/*
 * kiln-worker's re-attach buffer (retain.h).
 */
#include "worker/retain.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

void retain_init(struct retain *r, size_t cap)
{
	memset(r, 0, sizeof(*r));
	r->cap = cap ? cap : RETAIN_MAX_BYTES;
}

void retain_release(struct retain *r)
{
	if (!r)
		return;
	while (r->cmds)
		retain_cmd_free(r, r->cmds);
}

struct retain_cmd *retain_cmd_new(struct retain *r, const char *id)
{
	struct retain_cmd *rc = xcalloc(1, sizeof(*rc));
	rc->id = xstrdup(id);
	struct retain_cmd **pp = &r->cmds;
	while (*pp)
		pp = &(*pp)->next;
	*pp = rc;
	return rc;
}

struct retain_cmd *retain_cmd_find(struct retain *r, const char *id, size_t len)
{
	for (struct retain_cmd *rc = r->cmds; rc; rc = rc->next)
		if (strlen(rc->id) == len && !memcmp(rc->id, id, len))
			return rc;
	return NULL;
}

int64_t retain_add(struct retain *r, struct retain_cmd *rc, bool complete, const void *data,
		   size_t len)
{
	if (len > r->cap || r->bytes > r->cap - len)
		return -E2BIG;
	struct retain_entry *e = xmalloc(sizeof(*e) + len);
	e->next = NULL;
	e->index = rc->next_index++;
	e->complete = complete;
	e->len = len;
	if (len)
		memcpy(e->data, data, len);
	if (rc->tail)
		rc->tail->next = e;
	else
		rc->head = e;
	rc->tail = e;
	r->bytes += len;
	if (complete)
		rc->done = true;
	return (int64_t)e->index;
}

void retain_drop_below(struct retain *r, struct retain_cmd *rc, uint64_t n)
{
	while (rc->head && rc->head->index < n) {
		struct retain_entry *e = rc->head;
		rc->head = e->next;
		r->bytes -= e->len;
		free(e);
	}
	if (!rc->head)
		rc->tail = NULL;
}

void retain_cmd_free(struct retain *r, struct retain_cmd *rc)
{
	for (struct retain_cmd **pp = &r->cmds; *pp; pp = &(*pp)->next)
		if (*pp == rc) {
			*pp = rc->next;
			break;
		}
	retain_drop_below(r, rc, UINT64_MAX);
	free(rc->id);
	free(rc);
}
