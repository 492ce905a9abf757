/* The master's own WebSocket frame reader (wsbulk.h). */
#include "master/wsbulk.h"

#include <string.h>

void wsbulk_init(struct wsbulk *p)
{
	memset(p, 0, sizeof(*p));
}

int wsbulk_header(const unsigned char *h, size_t have, struct wsbulk_frame *f, const char **why)
{
	if (have < 2)
		return 0;
	unsigned b0 = h[0], b1 = h[1];
	f->fin = (b0 & 0x80) != 0;
	f->opcode = b0 & 0x0f;
	if (b0 & 0x70) {
		*why = "reserved bits set (no extension was negotiated)";
		return -1;
	}
	switch (f->opcode) {
	case WSBULK_OP_CONT:
	case WSBULK_OP_TEXT:
	case WSBULK_OP_BINARY:
		break;
	case WSBULK_OP_CLOSE:
	case WSBULK_OP_PING:
	case WSBULK_OP_PONG:
		if (!f->fin) {
			*why = "fragmented control frame";
			return -1;
		}
		if ((b1 & 0x7f) > WSBULK_CTL_MAX) {
			*why = "control frame over 125 bytes";
			return -1;
		}
		break;
	default:
		*why = "unknown opcode";
		return -1;
	}
	if (!(b1 & 0x80)) {
		*why = "client frame not masked";
		return -1;
	}
	size_t n = 2;
	uint64_t len = b1 & 0x7f;
	if (len == 126) {
		if (have < 4)
			return 0;
		len = (uint64_t)h[2] << 8 | h[3];
		n = 4;
	} else if (len == 127) {
		if (have < 10)
			return 0;
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | h[2 + i];
		if (len >> 63) {
			*why = "frame length over 2^63";
			return -1;
		}
		n = 10;
	}
	if (have < n + 4)
		return 0;
	memcpy(f->key, h + n, 4);
	f->len = len;
	f->hdr_len = n + 4;
	return (int)f->hdr_len;
}

void wsbulk_unmask(unsigned char *dst, const unsigned char *src, size_t n,
		   const unsigned char key[4], uint64_t phase)
{
	if (!(key[0] | key[1] | key[2] | key[3])) {
		if (dst != src && n)
			memmove(dst, src, n);
		return;
	}
	unsigned char k8[8];
	for (unsigned i = 0; i < 8; i++)
		k8[i] = key[(phase + i) & 3];
	uint64_t k;
	memcpy(&k, k8, 8); /* in memory order: byte i of a block meets k8[i] */
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v;
		memcpy(&v, src + i, 8);
		v ^= k;
		memcpy(dst + i, &v, 8);
	}
	for (; i < n; i++)
		dst[i] = src[i] ^ k8[i & 7];
}

void wsbulk_resume(struct wsbulk *p, const struct wsbulk_frame *f, uint64_t seen)
{
	wsbulk_init(p);
	p->f = *f;
	p->in_frame = true;
	p->left = f->len - seen;
	p->off = seen;
	p->in_msg = true;
	p->msg_binary = f->opcode == WSBULK_OP_BINARY;
}

static size_t wsbulk_fail(struct wsbulk *p, enum wsbulk_event *ev, enum wsbulk_event kind,
			  const char *why, size_t used)
{
	p->dead = true;
	p->why = why;
	*ev = kind;
	return used;
}

/* The frame f just began (header consumed): checks it against the message
 * state and makes room for its payload. */
static int wsbulk_frame_begin(struct wsbulk *p, struct buf *msg, enum wsbulk_event *kind)
{
	const struct wsbulk_frame *f = &p->f;
	p->left = f->len;
	p->off = 0;
	p->ctl_len = 0;
	if (f->opcode >= WSBULK_OP_CLOSE)
		return 0;
	if (f->opcode == WSBULK_OP_CONT && !p->in_msg) {
		p->why = "continuation frame without a message to continue";
		*kind = WSBULK_ERROR;
		return -1;
	}
	if (f->opcode != WSBULK_OP_CONT && p->in_msg) {
		p->why = "new message inside a fragmented one";
		*kind = WSBULK_ERROR;
		return -1;
	}
	if (f->opcode != WSBULK_OP_CONT) {
		p->in_msg = true;
		p->msg_binary = f->opcode == WSBULK_OP_BINARY;
	}
	/* the whole frame at once: no chain of reallocations as it arrives */
	if (f->len > buf_room(msg) || buf_grow(msg, (size_t)f->len) < 0) {
		p->why = "message too big";
		*kind = WSBULK_TOOBIG;
		return -1;
	}
	return 0;
}

/* The frame's payload is complete: the event it makes, if any. */
static enum wsbulk_event wsbulk_frame_end(struct wsbulk *p)
{
	p->in_frame = false;
	switch (p->f.opcode) {
	case WSBULK_OP_PING:
		return WSBULK_PING;
	case WSBULK_OP_PONG:
		return WSBULK_PONG;
	case WSBULK_OP_CLOSE:
		p->close_code = p->ctl_len >= 2 ? (unsigned)p->ctl[0] << 8 | p->ctl[1] : 1005;
		return WSBULK_CLOSE;
	default:
		if (!p->f.fin)
			return WSBULK_MORE;
		p->in_msg = false;
		return WSBULK_MESSAGE;
	}
}

size_t wsbulk_parse(struct wsbulk *p, const unsigned char *in, size_t len, struct buf *msg,
		    enum wsbulk_event *ev)
{
	size_t used = 0;
	*ev = WSBULK_MORE;
	if (p->dead)
		return wsbulk_fail(p, ev, WSBULK_ERROR, p->why ? p->why : "stopped", len);
	while (used < len || (p->in_frame && !p->left)) {
		if (!p->in_frame) {
			/* the header, possibly in pieces */
			size_t take = WSBULK_HDR_MAX - p->hdr_have;
			if (take > len - used)
				take = len - used;
			memcpy(p->hdr + p->hdr_have, in + used, take);
			size_t had = p->hdr_have;
			p->hdr_have += take;
			const char *why = NULL;
			int h = wsbulk_header(p->hdr, p->hdr_have, &p->f, &why);
			if (h < 0)
				return wsbulk_fail(p, ev, WSBULK_ERROR, why, len);
			if (h == 0) {
				used += take;
				continue; /* all taken: more next time */
			}
			used += (size_t)h - had; /* the bytes after the header are payload */
			p->hdr_have = 0;
			p->in_frame = true;
			enum wsbulk_event kind;
			if (wsbulk_frame_begin(p, msg, &kind) < 0)
				return wsbulk_fail(p, ev, kind, p->why, len);
		}
		size_t n = len - used;
		if (n > p->left)
			n = (size_t)p->left;
		if (p->f.opcode >= WSBULK_OP_CLOSE) {
			wsbulk_unmask(p->ctl + p->ctl_len, in + used, n, p->f.key, p->off);
			p->ctl_len += n;
		} else if (n) {
			/* straight into the buffer, room made at the frame's start
			 * (buf.h's invariant: NUL-terminated) */
			wsbulk_unmask((unsigned char *)msg->ptr + msg->len, in + used, n, p->f.key,
				      p->off);
			msg->len += n;
			msg->ptr[msg->len] = '\0';
		}
		used += n;
		p->left -= n;
		p->off += n;
		if (p->left)
			continue; /* the input is exhausted */
		*ev = wsbulk_frame_end(p);
		if (*ev != WSBULK_MORE)
			return used;
	}
	return used;
}

size_t wsbulk_direct_room(const struct wsbulk *p, const struct buf *msg)
{
	if (p->dead || !p->in_frame || p->f.opcode >= WSBULK_OP_CLOSE || !p->left ||
	    msg->cap <= msg->len + 1)
		return 0;
	size_t room = msg->cap - msg->len - 1; /* buf.h: the NUL after the data */
	return p->left < room ? (size_t)p->left : room;
}

enum wsbulk_event wsbulk_direct_done(struct wsbulk *p, struct buf *msg, size_t n)
{
	unsigned char *at = (unsigned char *)msg->ptr + msg->len;
	wsbulk_unmask(at, at, n, p->f.key, p->off);
	msg->len += n;
	msg->ptr[msg->len] = '\0';
	p->left -= n;
	p->off += n;
	return p->left ? WSBULK_MORE : wsbulk_frame_end(p);
}
