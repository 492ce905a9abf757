/*
 * A small RFC 6455 client for the master's /ws event socket, so that the
 * waiting verbs (force --wait, logs --follow) wake up on events instead of
 * polling.  Plain http:// masters only (https falls back to polling); text
 * frames only; every frame and message bounded (WS_MAX_MESSAGE).  Events
 * are wake-ups: the caller re-reads the state over REST, so a `resync` (or
 * any lost event) costs nothing but a re-read.  Kiln and Buildbot 3.7 both
 * take {"cmd":"startConsuming","path":...,"_id":N}.
 */
#ifndef KILN_CLIENT_WS_H
#define KILN_CLIENT_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_MAX_MESSAGE (1024 * 1024)

struct ws_client;

/* One parsed frame header + payload view (into the caller's bytes). */
struct ws_frame {
	bool fin;
	uint8_t opcode; /* 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong */
	const uint8_t *payload;
	size_t len;
};

/*
 * Parses one server frame from p[0..n): returns the bytes it takes (> 0),
 * 0 when more bytes are needed, -EPROTO for a masked server frame, reserved
 * bits, an unknown opcode or a control frame over 125 bytes or fragmented,
 * -EMSGSIZE for a payload over WS_MAX_MESSAGE.  Pure.
 */
int ws_frame_parse(const uint8_t *p, size_t n, struct ws_frame *ret);

/*
 * Connects to BASE/ws (base "http://host[:port][/prefix]") within
 * timeout_ms and completes the handshake (a 101 answer; the accept hash
 * is not checked: no SHA-1 here, and events only wake us up).  -ENOTSUP for another scheme; other
 * negative codes on failure.  'token' (may be NULL) is sent as a bearer token.
 */
int ws_open(const char *base, const char *token, int timeout_ms, struct ws_client **ret);

/* Sends startConsuming for 'path'. */
int ws_subscribe(struct ws_client *ws, const char *path);

/*
 * Waits up to timeout_ms for frames: returns 1 when an event ({"k":...},
 * `resync` included) arrived (all frames already buffered are read too),
 * 0 on timeout, a negative code when the socket closed or broke.  Answers
 * pings.
 */
int ws_wait(struct ws_client *ws, int timeout_ms);

void ws_close(struct ws_client *ws); /* NULL-safe */

/*
 * How a waiting verb waits for the next change: on /ws events when the
 * socket works (at most WS_WAIT_MAX_MS between re-reads, for what the
 * master does not publish, e.g. Kiln's step and log progress), else by
 * sleeping poll_ms (the fallback: https, no /ws, a broken socket, or
 * KILN_CLIENT_POLL=1 in the environment).  With KILN_CLIENT_DEBUG=1 it
 * says on stderr which one it uses.
 */
#define WS_WAIT_MAX_MS 1000
struct ws_waiter {
	struct ws_client *ws; /* owned; NULL: polling */
	unsigned poll_ms;
};
/* Opens /ws at 'base' and subscribes to each of the NULL-terminated paths. */
void ws_waiter_open(struct ws_waiter *w, const char *base, const char *token,
		    const char *const *paths, unsigned poll_ms);
/* Waits for an event, the safety interval or poll_ms, never past deadline_ms
 * (CLOCK_MONOTONIC ms as clock_mono_ms(); 0: none). */
void ws_waiter_wait(struct ws_waiter *w, uint64_t deadline_ms);
void ws_waiter_release(struct ws_waiter *w);

/* The socket, for a caller's own poll(); then ws_wait(ws, 0) reads what came. */
int ws_fd(const struct ws_client *ws);

#endif
