/*
 * kiln-worker's connection to the master: a libwebsockets client on the
 * worker's libuv loop (ws://HOST:PORT/, no subprotocol, HTTP Basic auth on
 * the upgrade), one binary frame per message, a send queue with backpressure
 * reported to the protocol engine, idle PING/hang-up, a deadline on each
 * connection attempt (TCP connect and the HTTP upgrade answer), and
 * reconnection with capped exponential backoff and jitter (1 s, x1.5, 60 s
 * cap): every way an attempt or a session can end leads back to that loop.
 */
#ifndef KILN_WORKER_CONN_H
#define KILN_WORKER_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

struct worker;
struct conn;

#define CONN_MAX_ADDRS 4    /* addresses of the master's name tried per attempt */
#define CONN_MAX_MASTERS 16 /* masters a worker may list (issue 14) */

/* One master to connect to. */
struct conn_master {
	char *host; /* IPv4/IPv6 literal or name */
	int port;
};

/*
 * Resolves host to up to max addresses (ports left 0), blocking.  conn.c runs
 * it on libuv's thread pool, never on the loop, so running commands keep
 * streaming while DNS hangs; lws is then handed each numeric address in turn
 * (the Host header keeps the name).  Returns how many (>= 1), or a negative
 * error.
 */
typedef int (*conn_resolve_fn)(const char *host, struct sockaddr_storage *ret, size_t max);
/* The default: getaddrinfo(), IPv4 and IPv6 in its order. */
int conn_resolve_getaddrinfo(const char *host, struct sockaddr_storage *ret, size_t max);

/*
 * Several masters (issue 14: masters sharing one PostgreSQL database): the
 * worker connects to whichever answers.  An attempt goes through the list
 * from the master of the last session (at first, the first one listed),
 * moving on at once when one gives no session (no address answers, a
 * refusal, an HTTP error such as 401); when every master failed, the
 * backoff timer, then the same round again.  A lost session starts over
 * from the master it was on.
 */
struct conn_opts {
	const struct conn_master *masters; /* copied; NULL: host and port below */
	size_t nmasters;                   /* 1 to CONN_MAX_MASTERS */
	const char *host;                  /* the only master when masters is NULL */
	int port;
	const char *name; /* worker name (no ':') */
	const char *password;
	unsigned ping_secs;      /* idle before a WebSocket PING; 0 = 30 */
	unsigned hangup_secs;    /* idle before giving up on the master; 0 = 90 */
	unsigned handshake_secs; /* one attempt's connect + upgrade answer; 0 = limits.h's */
	conn_resolve_fn resolve; /* NULL = conn_resolve_getaddrinfo (tests delay it) */
};

/* Creates the lws context on loop and starts connecting; messages go to w.
 * Returns 0 or a negative error. */
int conn_new(uv_loop_t *loop, const struct conn_opts *o, struct worker *w, struct conn **ret);
/* Queues one message (copied) in a proto/sendq.h queue with no cap of its
 * own: each change is reported to worker_sendq_changed(), which pauses
 * command output (KILN_WORKER_SENDQ_PAUSE).  -ENOTCONN when no session is up. */
int conn_send(struct conn *c, const void *data, size_t len);
/* A message built in place (an upload's block): cap bytes at *ret_payload
 * to fill, with room in front for its WebSocket header.  Then
 * conn_msg_send() or conn_msg_free(). */
void *conn_msg_new(struct conn *c, size_t cap, unsigned char **ret_payload);
/* Frames its first len payload bytes itself (a masked binary frame, the
 * key from getrandom(2), masked 8 bytes at a time: wsframe.h; an all-zero
 * key, no masking pass, from WSFRAME_ZERO_KEY_MIN bytes on) and queues
 * the frame, which lws then writes raw.  Takes msg, also on failure
 * (-ENOTCONN when no session is up). */
int conn_msg_send(struct conn *c, void *msg, size_t len);
void conn_msg_free(void *msg);
/* Closes the connection and starts destroying the lws context; run the loop
 * afterwards to let handles close, then call conn_finish().  A resolution
 * still running on the thread pool is cancelled if it has not started, else
 * the loop waits for it.  NULL-safe. */
void conn_free(struct conn *c);
/* After the loop has drained: completes the lws context teardown (on a foreign
 * loop lws finishes freeing only when destroy is called again). */
void conn_finish(void);

/* The worker_host glue: ud is the struct conn. */
int conn_host_send(void *ud, const void *data, size_t len);
void *conn_host_msg_new(void *ud, size_t cap, unsigned char **ret_payload);
int conn_host_msg_send(void *ud, void *msg, size_t len);
void conn_host_msg_free(void *ud, void *msg);

/* Parses "HOST:PORT", "ws://HOST:PORT[/]" or "[v6]:PORT".  *ret_host is owned by the caller. */
int conn_parse_master(const char *s, char **ret_host, int *ret_port);
/* Parses a list of masters, each as conn_parse_master() takes it, separated
 * by commas and/or blanks ("a:9989, b:9989").  Returns how many (>= 1) in
 * ret[], hosts owned by the caller (conn_masters_release), or -EINVAL (an
 * empty list, a bad element: *ret_bad, if not NULL, gets its 0-based index)
 * or -E2BIG (more than max). */
int conn_parse_master_list(const char *s, struct conn_master *ret, size_t max, size_t *ret_bad);
void conn_masters_release(struct conn_master *m, size_t n);

#endif
