/*
 * Internals shared by the http*.c files (the master's lws front): the
 * connection, response, WebSocket and server structs, and the functions
 * one part calls in another.  lws types stay inside these files; nothing
 * outside src/master/http*.c includes this.
 *
 *   http.c        lws contexts, lws callback, request intake, start/stop
 *   http-listen.c listening sockets: accept, request pre-read, caps, hand-over to lws
 *   http-query.c  query strings and the Basic authorization header (pure parsers)
 *   http-reply.c  responses: fixed and streamed bodies, the answer-memory cap
 *   http-ws.c     WebSocket connections (wsconn.h), upgrades, frames
 *   http-wsguard.c the /ws relay that closes on unmasked client frames
 */
#ifndef KILN_MASTER_HTTP_INT_H
#define KILN_MASTER_HTTP_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>
#include <uv.h>

#include "common/buf.h"
#include "common/limits.h"
#include "master/http-origin.h"
#include "master/http.h"
#include "master/wsconn.h"
#include "proto/sendq.h"

/* lws's read size on worker sockets (rx buffer and the workers context's
 * serv_buf, http.c): http-ws.c finds a frame's header in that buffer. */
#define HTTP_WORKER_READ 16384
/* Headroom for the response headers we build (status, type, length,
 * disposition, auth challenge). */
#define HTTP_HDR_SPACE 2048
#define HTTP_REPLY_MAX_HEADERS 4 /* http_reply_header()'s per answer */
/* How long a stopping server waits for WebSocket peers to answer the close. */
#define HTTP_STOP_GRACE_MS 1000
#define HTTP_STOP_POLL_MS 20
/* Answer memory a streamed reply holds in http-reply.c: a piece and its framed copy. */
#define HTTP_STREAM_HELD (2 * (KILN_MAX_HTTP_RESPONSE_CHUNK + 64))

struct ws_conn {
	struct http_server *srv;
	struct lws *wsi;
	const struct ws_conn_ops *ops; /* NULL for browser event sockets */
	void *ud;
	bool events; /* browser /ws socket (text JSON), not a worker */
	bool established;
	bool closed_done; /* ops->closed() was called (or will never be) */
	bool closing;
	int close_code;
	char close_reason[100];
	struct buf rx; /* message being reassembled */
	bool rx_binary;
	struct proto_sendq sendq; /* KILN_MAX_WS_SENDQ, LWS_PRE headroom; text if events */
	struct events_sub *sub;   /* browser /ws socket: its subscriptions (events.c) */
	char peer[64];
	struct ws_conn *prev, *next; /* srv->ws_list */
	struct http_ws_bulk *bulk;   /* worker: its frames read by http-ws.c, not lws */
	uint64_t rx_frame_left;      /* lws_remaining_packet_payload() after the last RECEIVE */
};

struct http_resp {
	bool active; /* a reply was given for the current request */
	bool headers_sent;
	int status;
	char *ctype;       /* owned, may be NULL */
	char *disposition; /* owned, may be NULL */
	/* fixed body: LWS_PRE bytes of headroom, then len bytes */
	unsigned char *body;
	size_t len, off;
	/* streamed body */
	http_produce_fn produce;
	http_free_fn free_ud;
	void *ud;
	bool chunked; /* HTTP/1.1: chunked framing; else close at the end */
	bool close_after;
	size_t held;          /* bytes charged to srv->reply_mem for this answer */
	unsigned retry_after; /* seconds for Retry-After (0: none): 503, 429 */
	/* http_reply_header(): "name:" and value, owned */
	char *xname[HTTP_REPLY_MAX_HEADERS], *xvalue[HTTP_REPLY_MAX_HEADERS];
	size_t nx;
};

/* http_req_defer() (http.h): the answer of a request given later */
struct http_deferred {
	struct http_conn *hc; /* NULL once the request is gone (closed, replaced) */
};

struct http_conn {
	struct http_server *srv;
	struct lws *wsi;
	bool workers; /* on the worker vhost */
	/* current request */
	bool in_request;
	struct http_req req;
	char *path;
	struct http_arg *args;
	size_t nargs, args_alloc;
	char *ctype, *accept;
	struct buf body;
	bool body_too_big;
	struct http_resp resp;
	/* after a WebSocket upgrade */
	struct ws_conn *ws;
	/* deadlines (uv_now ms), checked by http_conn_sweep() */
	uint64_t body_deadline; /* body of a keep-alive request read by lws */
	uint64_t last_write;    /* last writeable callback of the answer */
	bool idle;              /* keep-alive: an answer done, no request yet */
	bool killed;            /* closing through lws */
	char *prebody;          /* owned: body read by http-listen.c, for the first request */
	size_t prebody_len;
	struct http_conn *prev, *next; /* srv->conns */
	/* http_req_defer(): the answer comes later (slice "authhard") */
	struct http_deferred *deferred;
	unsigned throttle_s; /* http_req_throttle(): 401/403 become 429, Retry-After */
};

struct http_server {
	struct master *m;               /* borrowed */
	const struct ws_conn_ops *wops; /* borrowed */
	/* one context per listener: separate header pools */
	struct lws_context *ctx_http, *ctx_workers;
	struct lws_vhost *vh_http, *vh_workers;
	struct http_listener *ln_http, *ln_workers; /* http-listen.c */
	struct http_conn *conns;                    /* every lws connection */
	size_t nidle[2]; /* idle keep-alive connections: [0] http, [1] workers */
	/* the body of the request being adopted (http_adopt) */
	char *adopt_body;
	size_t adopt_body_len;
	int adopt_fd;
	int http_port, workers_port;
	bool stopping;
	unsigned refs; /* owner + one per live http_conn */
	struct ws_conn *ws_list;
	size_t nws;
	struct http_wsguard *wsguards; /* http-wsguard.c, newest first */
	uv_timer_t stop_timer;
	uint64_t stop_started;
	bool destroying; /* first lws_context_destroy() done */
	/* memory held for answers, all connections (bodies, stream buffers) */
	size_t reply_mem;
	_Atomic size_t reply_mem_max; /* KILN_MAX_HTTP_REPLY_MEM unless a test lowers it */
	_Atomic size_t reply_mem_peak;
	size_t closing_handles;
	char scratch[KILN_MAX_HTTP_URI + 1];
	/* http-ws.c's direct reads of workers' frames: lws's read buffer for
	 * worker sockets as seen in RECEIVE (learnt, NULL until then; 1 once
	 * seen to move: then never used), and the read buffer (allocated at
	 * the first upload, shared: reads are handled at once on the loop) */
	const unsigned char *ws_lws_rxbuf;
	unsigned char *ws_bulk_buf;
};

/* ---- http.c ---- */
void http_server_unref(struct http_server *s);
/* Frees the current request's parsed parts; the connection takes the next one. */
void http_req_release(struct http_conn *hc);

/* Closes through lws the non-upgraded connections of one listener whose
 * body deadline passed or whose answer has not been written to for
 * KILN_HTTP_WRITE_STALL_MS.  now: uv_now. */
void http_conn_sweep(struct http_server *s, bool workers, uint64_t now);
/* Marks a connection idle (keep-alive, between requests) or not; counted in
 * s->nidle. */
void http_conn_set_idle(struct http_conn *hc, bool idle);
/* Hands a connection whose request was read by http-listen.c to lws: fd
 * (lws owns it from here, also on failure), the header block (and any
 * pipelined bytes; no Content-Length) and the body (owned, NUL-terminated,
 * may be NULL), which becomes the request's body. */
void http_adopt(struct http_server *s, struct lws_vhost *vh, int fd, const char *hdrs, size_t hlen,
		char *body, size_t blen);

/* ---- http-listen.c ---- */
struct http_listener;
/* Binds iface:port (numeric address; port 0 = any) and accepts on the
 * server's loop; complete requests are adopted into vh.  -errno on error
 * (nothing left open). */
int http_listen_open(struct http_server *s, const char *name, const char *iface, int port,
		     struct lws_vhost *vh, bool workers, struct http_listener **ret);
int http_listen_port(const struct http_listener *ln);
/* Stops accepting and drops unfinished requests; frees itself on the loop.
 * NULL-safe. */
void http_listen_close(struct http_listener *ln);

/* ---- http-query.c ---- */
/* a->name/value from one "name=value" fragment (url-decoded already) */
void http_arg_set(struct http_arg *a, const char *frag, size_t len);

/* ---- http-reply.c ---- */
/* Gives back the response's memory (and its charge) and calls free_ud. */
void http_resp_release(struct http_conn *hc);
void http_reply_text(struct http_conn *hc, int status, const char *text);
/* {"error": "..."} as Buildbot writes it (compact with spaces). */
void http_reply_error(struct http_conn *hc, int status, const char *msg);
/* The writeable callback of a plain HTTP connection: one lws_write each time. */
int http_on_writeable(struct http_conn *hc);

/* ---- http-ws.c ---- */
void http_ws_free(struct ws_conn *c);
/* Drops every queued message (the stop sends only the close frame). */
void http_ws_msg_free_all(struct ws_conn *c);
/* Calls ops->closed() once for a worker connection. */
void http_ws_notify_closed(struct ws_conn *c);
/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: accepts (0) or answers a refusal (1, or -1). */
int http_ws_confirm_upgrade(struct http_conn *hc, const char *up);
/* The Host/Origin/Sec-Fetch-Site verdict (http-origin.h) for hc's request;
 * state_changing for POSTs and /ws upgrades.  Refusals are logged. */
enum http_origin_verdict http_ws_origin_verdict(struct http_conn *hc, bool state_changing);
int http_ws_on_receive(struct ws_conn *c, const void *in, size_t len);
int http_ws_on_writeable(struct ws_conn *c);

/* ---- http-wsguard.c ---- */
struct http_wsguard;
/* Relays a /ws connection (the client's socket cfd, the request read; pre:
 * the bytes after its header block) through a socketpair whose other end,
 * *ret_lws_fd, goes to lws; closes with 1002 on an unmasked client frame.
 * peer: the client's address for logs.  0, or -errno with cfd still the
 * caller's. */
int http_wsguard_open(struct http_server *s, int cfd, const char *peer, const void *pre,
		      size_t prelen, int *ret_lws_fd);
/* The client address behind lws_fd, if it is a relayed /ws socket. */
bool http_wsguard_peer(const struct http_server *s, int lws_fd, char *buf, size_t size);
/* The master stops: relays lws has not closed within a bound are ended. */
void http_wsguard_stop_all(struct http_server *s);

#endif
