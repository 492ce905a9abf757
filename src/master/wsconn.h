/*
 * The seam between the libwebsockets server (http.c) and the worker
 * endpoint (workers.c): a WebSocket connection seen as "complete binary
 * messages in, copied messages out", with Basic auth checked on the
 * upgrade.  No lws types cross this line.
 *
 * All callbacks run on the loop thread.  A struct ws_conn stays valid
 * until its closed() callback returns; never free it yourself.
 */
#ifndef KILN_WSCONN_H
#define KILN_WSCONN_H

#include <stddef.h>

struct ws_conn;

struct ws_conn_ops {
	void *ctx; /* passed to authenticate */
	/* Called for the upgrade request with the Basic credentials (borrowed;
	 * NULL name when no/invalid Authorization header).  Return 0 and set
	 * *ret_ud to accept, or KILN_EAUTH (answered 401) / KILN_EPARSE (400). */
	int (*authenticate)(void *ctx, const char *name, const char *password, void **ret_ud);
	void (*opened)(void *ud, struct ws_conn *c);
	/* One whole binary message (reassembled, at most KILN_MAX_WS_FRAME;
	 * larger ones close the connection with 1009 before reaching here).
	 * Text messages are ignored. */
	void (*message)(void *ud, struct ws_conn *c, const void *data, size_t len);
	/* The connection is gone (peer closed, error, or ws_conn_close done).
	 * Last call for this ud. */
	void (*closed)(void *ud, struct ws_conn *c);
};

/* Queues a copy of one binary message.  -ENOBUFS (nothing queued) if the
 * queue would pass KILN_MAX_WS_SENDQ: the peer is not reading; the caller
 * normally closes the connection then.  -EPIPE if closing. */
int ws_conn_send(struct ws_conn *c, const void *data, size_t len);
/* Bytes queued and not yet written to the socket. */
size_t ws_conn_queued(const struct ws_conn *c);
/* For browser event sockets (events.c): queues a copy of one message that
 * ws_conn_drop_droppable() may discard while it is still unsent.  Same
 * errors as ws_conn_send. */
int ws_conn_send_droppable(struct ws_conn *c, const void *data, size_t len);
/* Bytes of droppable messages queued and not yet written. */
size_t ws_conn_queued_droppable(const struct ws_conn *c);
/* Discards every droppable message not yet written (others stay queued). */
void ws_conn_drop_droppable(struct ws_conn *c);
/* Starts closing with a WebSocket close code; closed() follows later. */
void ws_conn_close(struct ws_conn *c, int code, const char *reason);
/* "IP:port" of the peer (borrowed, valid until closed). */
const char *ws_conn_peer(const struct ws_conn *c);

#endif
