/*
 * Request/response correlation (session.h).  Seqs are handed out in
 * increasing order, so pending requests are kept in an array sorted by seq:
 * appending is O(1), a reply is found by binary search, and replies mostly
 * arrive in order so the removal memmove is short.
 */
#include "proto/session.h"

#include <errno.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"

struct session_pending {
	int64_t seq;
	proto_reply_fn fn;
	void *ud;
};

struct proto_session {
	int64_t next_seq;
	struct session_pending *v; /* owned, sorted by seq */
	size_t n, cap;
};

struct proto_session *proto_session_new(void)
{
	return xcalloc(1, sizeof(struct proto_session));
}

void proto_session_free(struct proto_session *s)
{
	if (!s)
		return;
	free(s->v);
	free(s);
}

int64_t proto_session_request(struct proto_session *s, struct proto_enc *e, const char *op,
			      uint32_t nfields, proto_reply_fn fn, void *ud)
{
	if (s->n >= KILN_MAX_PENDING_REQUESTS)
		return -EBUSY;
	ARRAY_GROW(s->v, s->n + 1, s->cap);
	int64_t seq = s->next_seq++;
	s->v[s->n++] = (struct session_pending){seq, fn, ud};

	proto_pack_map(e, 2 + nfields);
	proto_pack_str(e, "op");
	proto_pack_str(e, op);
	proto_pack_str(e, "seq_number");
	proto_pack_int(e, seq);
	return seq;
}

static const msgpack_object session_nil = {.type = MSGPACK_OBJECT_NIL};

int proto_session_handle_response(struct proto_session *s, const struct proto_msg *m)
{
	if (!str_eq(m->op, "response"))
		return KILN_EPROTO;
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->v[mid].seq < m->seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == s->n || s->v[lo].seq != m->seq)
		return KILN_EPROTO;

	struct session_pending p = s->v[lo];
	memmove(&s->v[lo], &s->v[lo + 1], (s->n - lo - 1) * sizeof(*s->v));
	s->n--;

	bool exc = false;
	const msgpack_object *result = proto_map_get(m->root, "result");
	(void)proto_obj_bool(proto_map_get(m->root, "is_exception"), &exc);
	if (p.fn)
		p.fn(p.ud, exc ? KILN_EPROTO : 0, result ? result : &session_nil);
	return 0;
}

void proto_session_fail_all(struct proto_session *s, int err)
{
	/* take the list out first: callbacks may start new requests or free s */
	struct session_pending *v = s->v;
	size_t n = s->n;
	s->v = NULL;
	s->n = s->cap = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i].fn)
			v[i].fn(v[i].ud, err, NULL);
	free(v);
}

size_t proto_session_pending(const struct proto_session *s)
{
	return s->n;
}

int64_t proto_session_next_seq(const struct proto_session *s)
{
	return s->next_seq;
}
