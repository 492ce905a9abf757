/*
 * The master's own reader of a worker's WebSocket frames (RFC 6455, client
 * to server), used once a connection carries an upload (http-ws.c): frame
 * headers checked as strictly as the protocol says, payloads unmasked 8
 * bytes at a time straight into the message buffer, control frames handed
 * back as events.  libwebsockets 4.1.6 reads a worker's bytes 16 KiB at a
 * time and unmasks them byte by byte, which cost a 1 GiB upload more master
 * CPU than everything else together.  Pure: no I/O, no lws.
 *
 *	struct wsbulk p;
 *	wsbulk_init(&p);    (or wsbulk_resume() in a frame lws began)
 *	while (len) {
 *		size_t n = wsbulk_parse(&p, in, len, &msg, &ev);
 *		in += n, len -= n;
 *		... act on ev (WSBULK_MORE: all of in was consumed)
 *	}
 */
#ifndef KILN_MASTER_WSBULK_H
#define KILN_MASTER_WSBULK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* The longest frame header: 2 bytes, a 64-bit length, the 4-byte key. */
#define WSBULK_HDR_MAX 14
/* Control frames carry at most this many payload bytes (RFC 6455 5.5). */
#define WSBULK_CTL_MAX 125

enum wsbulk_opcode {
	WSBULK_OP_CONT = 0,
	WSBULK_OP_TEXT = 1,
	WSBULK_OP_BINARY = 2,
	WSBULK_OP_CLOSE = 8,
	WSBULK_OP_PING = 9,
	WSBULK_OP_PONG = 10,
};

/* One frame header, decoded. */
struct wsbulk_frame {
	unsigned opcode;
	bool fin;
	unsigned char key[4];
	uint64_t len;   /* payload bytes */
	size_t hdr_len; /* header bytes (with the key) */
};

enum wsbulk_event {
	WSBULK_MORE,    /* the input was all consumed and nothing completed */
	WSBULK_MESSAGE, /* a whole data message is in msg (text or binary: msg_binary) */
	WSBULK_PING,    /* ctl[0..ctl_len): answer it with a pong */
	WSBULK_PONG,
	WSBULK_CLOSE,  /* close_code (1005 when the frame had none) */
	WSBULK_ERROR,  /* a malformed frame (why): close with 1002; parsing stops */
	WSBULK_TOOBIG, /* a message over msg's cap: close with 1009; parsing stops */
};

struct wsbulk {
	unsigned char hdr[WSBULK_HDR_MAX]; /* a header split between reads */
	size_t hdr_have;
	bool in_frame; /* f is the frame whose payload comes next */
	struct wsbulk_frame f;
	uint64_t left; /* payload bytes of f still to come */
	uint64_t off;  /* payload bytes of f seen (the key's phase) */
	bool in_msg;   /* a fragmented data message is under way */
	bool msg_binary;
	bool dead; /* after WSBULK_ERROR or WSBULK_TOOBIG */
	unsigned char ctl[WSBULK_CTL_MAX];
	size_t ctl_len;
	unsigned close_code;
	const char *why; /* static text for WSBULK_ERROR / WSBULK_TOOBIG */
};

void wsbulk_init(struct wsbulk *p);

/* Decodes the header at h[0..have): its length once complete (>= 2),
 * 0 when more bytes are needed, -1 when malformed (*why says how).  Only
 * the frame's own rules are checked: masked, no RSV bits, a known opcode, a
 * control frame final and at most 125 bytes, a length under 2^63. */
int wsbulk_header(const unsigned char *h, size_t have, struct wsbulk_frame *f, const char **why);

/* dst[i] = src[i] ^ key[(phase + i) % 4], 8 bytes at a time; dst may be src.
 * An all-zero key (kiln-worker's for big frames: RFC 6455 leaves the key to
 * the client) makes it a copy, or nothing in place. */
void wsbulk_unmask(unsigned char *dst, const unsigned char *src, size_t n,
		   const unsigned char key[4], uint64_t phase);

/* Starts in the payload of data frame f (not a control frame) of which
 * 'seen' bytes were already delivered, unmasked, by another reader; they
 * are in msg already if f began the message. */
void wsbulk_resume(struct wsbulk *p, const struct wsbulk_frame *f, uint64_t seen);

/* Consumes in[0..len) up to the first event and returns how many bytes it
 * took (the rest is for the next call).  Data payloads are appended to msg,
 * which the caller empties after WSBULK_MESSAGE; msg's cap is the largest
 * message accepted. */
size_t wsbulk_parse(struct wsbulk *p, const unsigned char *in, size_t len, struct buf *msg,
		    enum wsbulk_event *ev);

/* Direct reads (no staging copy): how many payload bytes the caller may
 * receive straight into msg's tail (msg->ptr + msg->len) now: the rest of
 * the data frame under way, within the room wsbulk_parse() (or the reader
 * wsbulk_resume() continues) made for it; 0 between frames, in a control
 * frame or once parsing stopped. */
size_t wsbulk_direct_room(const struct wsbulk *p, const struct buf *msg);

/* The n bytes (n <= wsbulk_direct_room()) now at msg's tail were received
 * there as they came, masked: unmasks them in place and counts them in.
 * Returns WSBULK_MESSAGE when they completed the message, else
 * WSBULK_MORE. */
enum wsbulk_event wsbulk_direct_done(struct wsbulk *p, struct buf *msg, size_t n);

#endif
