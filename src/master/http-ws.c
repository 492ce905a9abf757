/*
 * WebSocket connections (wsconn.h): the worker listener's authenticated
 * upgrade (and its HTTP/1.1 refusals), the browser /ws event socket,
 * message reassembly with the frame cap, and the per-connection send queue
 * (proto/sendq.h, shared with kiln-worker) written one frame per writeable
 * callback.
 */
#define LOG_SUBSYS "http"

#include "master/auth.h" /* slice "weblogin" */
#include "master/authlimit.h"
#include "master/events.h"
#include "master/http-int.h"
#include "master/http-origin.h"
#include "master/master.h"
#include "master/wsbulk.h"

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <jansson.h>

/*
 * Direct reads of a worker's frames.  lws 4.1.6 reads a worker's socket
 * HTTP_WORKER_READ bytes at a time and unmasks payloads byte by byte: most
 * of the master's CPU in an upload.  So once a worker sends a big binary
 * frame, http-ws.c reads that connection itself for the rest of its life:
 * lws's reading is switched off (lws_rx_flow_control), a uv_poll on a dup of
 * the socket reads up to HTTP_WS_BULK_READ bytes at a time and wsbulk.c
 * parses the frames, unmasking 8 bytes at a time into the message buffer
 * (a data frame's payload is received straight into it and unmasked in
 * place, not at all for an all-zero key: HTTP_WS_BULK_TAIL).
 * Pings are answered here, a close frame echoed, a malformed frame closes
 * with 1002; writing stays lws's.  The switch happens inside a frame, in the
 * RECEIVE callback of its first bytes: there lws has used all it read (more
 * payload is to come), and the frame's header, key included, lies just
 * before those bytes in lws's read buffer (whose address is learnt from a
 * RECEIVE that continues a frame: such one starts that buffer).
 */
#define HTTP_WS_BULK_MIN (64u << 10)   /* payload still to come in the frame */
#define HTTP_WS_BULK_READ (256u << 10) /* one recv() */
#define HTTP_WS_BULK_TURN (2u << 20)   /* bytes read per poll callback, then the loop */
/* Inside a data frame's payload the bytes are received straight into the
 * message buffer (wsbulk_direct_room), with at most this many after them
 * into the staging buffer: the next frame's header and a little payload.
 * After a big frame the staging read is this small too, so that the next
 * block's payload mostly goes straight in; after small ones, a full one. */
#define HTTP_WS_BULK_TAIL (4u << 10)

struct http_ws_bulk {
	uv_poll_t poll;
	int fd;            /* dup of the socket (lws keeps the original) */
	struct ws_conn *c; /* NULL once the connection is freed */
	struct wsbulk p;
	bool stopped; /* closing: nothing more is read */
	bool pong_due;
	unsigned char pong[WSBULK_CTL_MAX];
	size_t pong_len;
};

static void http_ws_bulk_closed(uv_handle_t *h)
{
	struct http_ws_bulk *b = h->data;
	close(b->fd);
	free(b);
}

static void http_ws_bulk_release(struct ws_conn *c)
{
	struct http_ws_bulk *b = c->bulk;
	if (!b)
		return;
	c->bulk = NULL;
	b->c = NULL;
	uv_close((uv_handle_t *)&b->poll, http_ws_bulk_closed);
}

static void http_ws_bulk_stop(struct http_ws_bulk *b)
{
	if (!b->stopped)
		uv_poll_stop(&b->poll);
	b->stopped = true;
}

/* A message is complete in c->rx: to the worker ops, then the buffer is
 * emptied (its memory freed after a big one). */
static void http_ws_deliver(struct ws_conn *c, bool binary)
{
	if (binary && !c->closed_done && c->ops && c->ops->message)
		c->ops->message(c->ud, c, c->rx.ptr, c->rx.len);
	buf_reset(&c->rx);
}

static void http_ws_bulk_event(struct ws_conn *c, struct http_ws_bulk *b, enum wsbulk_event ev)
{
	switch (ev) {
	case WSBULK_MESSAGE:
		http_ws_deliver(c, b->p.msg_binary);
		break;
	case WSBULK_PING:
		memcpy(b->pong, b->p.ctl, b->p.ctl_len);
		b->pong_len = b->p.ctl_len;
		b->pong_due = true;
		lws_callback_on_writable(c->wsi);
		break;
	case WSBULK_PONG:
	case WSBULK_MORE:
		break;
	case WSBULK_CLOSE: {
		unsigned code = b->p.close_code;
		bool echo =
			code >= 1000 && code < 5000 && code != 1005 && code != 1006 && code != 1015;
		ws_conn_close(c, echo ? (int)code : code == 1005 ? 1000 : 1002, "");
		http_ws_bulk_stop(b);
		break;
	}
	case WSBULK_ERROR:
		log_warn("%s: bad WebSocket frame: %s; closing", c->peer, b->p.why);
		ws_conn_close(c, LWS_CLOSE_STATUS_PROTOCOL_ERR, b->p.why);
		http_ws_bulk_stop(b);
		break;
	case WSBULK_TOOBIG:
		log_warn("%s: message over %zu bytes, closing", c->peer, c->rx.max);
		ws_conn_close(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too big");
		http_ws_bulk_stop(b);
		break;
	}
}

/* One read of the socket: the rest of the data frame under way straight
 * into the message buffer (direct bytes), what follows into the staging
 * buffer. */
static ssize_t http_ws_bulk_recv(struct http_ws_bulk *b, struct ws_conn *c, size_t direct)
{
	unsigned char *stage = c->srv->ws_bulk_buf;
	struct iovec iov[2];
	int n = 0;
	if (direct)
		iov[n++] = (struct iovec){.iov_base = c->rx.ptr + c->rx.len, .iov_len = direct};
	bool big = direct || b->p.f.len >= HTTP_WS_BULK_MIN;
	iov[n++] = (struct iovec){.iov_base = stage,
				  .iov_len = big ? HTTP_WS_BULK_TAIL : HTTP_WS_BULK_READ};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
	return recvmsg(b->fd, &mh, MSG_DONTWAIT);
}

static void http_ws_bulk_on_poll(uv_poll_t *h, int status, int events)
{
	struct http_ws_bulk *b = h->data;
	struct ws_conn *c = b->c;
	(void)events;
	if (!c || b->stopped)
		return;
	struct http_server *s = c->srv;
	size_t turn = 0;
	bool got = false;
	while (status >= 0 && turn < HTTP_WS_BULK_TURN && !c->closing && !b->stopped) {
		size_t direct = wsbulk_direct_room(&b->p, &c->rx);
		ssize_t n = http_ws_bulk_recv(b, c, direct);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			/* lws reads the end (or the error) itself and closes as
			 * usual: CLOSED, then ops->closed */
			log_debug("%s: connection %s", c->peer,
				  n == 0 ? "closed" : strerror(errno));
			http_ws_bulk_stop(b);
			lws_rx_flow_control(c->wsi, 1);
			return;
		}
		got = true;
		turn += (size_t)n;
		size_t left = (size_t)n;
		if (direct) {
			/* the payload straight in: unmasked in place (or not at all) */
			if (direct > left)
				direct = left;
			left -= direct;
			http_ws_bulk_event(c, b, wsbulk_direct_done(&b->p, &c->rx, direct));
		}
		const unsigned char *p = s->ws_bulk_buf;
		while (left && !c->closing && !b->stopped) {
			enum wsbulk_event ev;
			size_t k = wsbulk_parse(&b->p, p, left, &c->rx, &ev);
			p += k;
			left -= k;
			http_ws_bulk_event(c, b, ev);
		}
	}
	if (status < 0) {
		log_debug("%s: poll error %s", c->peer, uv_strerror(status));
		http_ws_bulk_stop(b);
		lws_rx_flow_control(c->wsi, 1); /* lws meets the error and closes */
		return;
	}
	if (got)
		lws_validity_confirmed(c->wsi); /* lws sees none of this traffic */
	if (c->closing)
		http_ws_bulk_stop(b);
	else if (!b->p.in_msg && c->rx.cap > (256u << 10))
		buf_release(&c->rx); /* between messages: not a big message's memory */
}

/* In the RECEIVE callback of a frame's first bytes (in, len), with more to
 * come: takes the connection's reading over when the frame is a big binary
 * one whose header is found before in. */
static void http_ws_bulk_try(struct ws_conn *c, const unsigned char *in, size_t len, size_t left)
{
	struct http_server *s = c->srv;
	const unsigned char *rxbuf = s->ws_lws_rxbuf;
	if (c->events || c->bulk || c->closing || s->stopping || left < HTTP_WS_BULK_MIN ||
	    !rxbuf || rxbuf == (const unsigned char *)1 || c->rx.len != len ||
	    !lws_frame_is_binary(c->wsi))
		return;
	uint64_t total = (uint64_t)len + left;
	size_t hl = total >= 65536 ? 14 : total >= 126 ? 8 : 6;
	/* the header must lie in lws's buffer, before the payload */
	if ((uintptr_t)in < (uintptr_t)rxbuf + hl ||
	    (uintptr_t)in + len > (uintptr_t)rxbuf + HTTP_WORKER_READ)
		return;
	struct wsbulk_frame f;
	const char *why = NULL;
	if (wsbulk_header(in - hl, hl, &f, &why) != (int)hl || f.len != total ||
	    f.opcode != WSBULK_OP_BINARY)
		return;
	int fd = fcntl(lws_get_socket_fd(c->wsi), F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return;
	struct http_ws_bulk *b = xcalloc(1, sizeof(*b));
	b->fd = fd;
	int r = uv_poll_init(s->m->loop, &b->poll, fd);
	if (r < 0) {
		log_debug("%s: no direct reads: %s", c->peer, uv_strerror(r));
		close(fd);
		free(b);
		return;
	}
	b->poll.data = b;
	b->c = c;
	c->bulk = b;
	wsbulk_resume(&b->p, &f, len);
	if (!s->ws_bulk_buf)
		s->ws_bulk_buf = xmalloc(HTTP_WS_BULK_READ);
	r = uv_poll_start(&b->poll, UV_READABLE, http_ws_bulk_on_poll);
	if (r < 0) {
		/* nothing was read yet: lws goes on reading it */
		log_debug("%s: no direct reads: %s", c->peer, uv_strerror(r));
		http_ws_bulk_release(c);
		return;
	}
	lws_rx_flow_control(c->wsi, 0); /* lws reads no more (applied on return) */
	log_info("%s: reading its frames directly from here on (a frame of %llu bytes)", c->peer,
		 (unsigned long long)total);
}

/* Learns lws's read buffer for worker sockets: a RECEIVE continuing a frame
 * whose last RECEIVE left payload to come starts a fresh read. */
static void http_ws_learn_rxbuf(struct ws_conn *c, const unsigned char *in)
{
	struct http_server *s = c->srv;
	if (c->events || !c->rx_frame_left || s->ws_lws_rxbuf == (const unsigned char *)1)
		return;
	if (!s->ws_lws_rxbuf) {
		s->ws_lws_rxbuf = in;
	} else if (s->ws_lws_rxbuf != in) {
		log_info("lws's read buffer moved: worker frames are read by lws only");
		s->ws_lws_rxbuf = (const unsigned char *)1;
	}
}

void http_ws_msg_free_all(struct ws_conn *c)
{
	proto_sendq_release(&c->sendq);
}

/* Calls ops->closed() once, if the connection was ever handed to the ops. */
void http_ws_notify_closed(struct ws_conn *c)
{
	if (c->closed_done)
		return;
	c->closed_done = true;
	if (c->ops && c->ops->closed)
		c->ops->closed(c->ud, c);
}

void http_ws_free(struct ws_conn *c)
{
	struct http_server *s = c->srv;
	http_ws_notify_closed(c);
	http_ws_bulk_release(c);
	events_sub_free(c->sub);
	c->sub = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->ws_list = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nws--;
	http_ws_msg_free_all(c);
	buf_release(&c->rx);
	free(c);
}

static struct ws_conn *http_ws_new(struct http_conn *hc, bool events)
{
	struct http_server *s = hc->srv;
	struct ws_conn *c = xcalloc(1, sizeof(*c));
	c->srv = s;
	c->wsi = hc->wsi;
	c->events = events;
	c->closed_done = true; /* until ops accept it */
	buf_init(&c->rx, events ? KILN_MAX_HTTP_BODY : KILN_MAX_WS_FRAME);
	/* a browser's queue: its events (capped in events.c) and a little room
	 * for control replies, not a worker's 16 MiB */
	proto_sendq_init(&c->sendq,
			 events ? KILN_MAX_WS_EVENT_QUEUE + KILN_MAX_WS_EVENT_CONTROL
				: KILN_MAX_WS_SENDQ,
			 LWS_PRE);
	if (events) {
		/* The kernel's send buffer of a peer that does not read would
		 * otherwise autotune to megabytes per subscriber (tcp_wmem), out
		 * of sight of the event queue cap: fix it small. */
		int fd = lws_get_socket_fd(hc->wsi);
		int sz = KILN_WS_EVENT_SNDBUF;
		if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)) < 0)
			log_debug("cannot set SO_SNDBUF of a /ws socket: %s", strerror(errno));
	}
	if (http_wsguard_peer(s, lws_get_socket_fd(hc->wsi), c->peer, sizeof(c->peer))) {
		/* relayed (http-wsguard.c): lws sees a socketpair */
	} else if (lws_get_peer_simple(hc->wsi, c->peer, sizeof(c->peer)) == NULL)
		snprintf(c->peer, sizeof(c->peer), "?");
	else {
		/* an IPv4 peer on a dual-stack socket: show it as IPv4 */
		if (!strncmp(c->peer, "::ffff:", 7) && strchr(c->peer, '.'))
			memmove(c->peer, c->peer + 7, strlen(c->peer + 7) + 1);
		/* lws gives the address only; add the port for logs */
		struct sockaddr_storage sa;
		socklen_t sl = sizeof(sa);
		int fd = lws_get_socket_fd(hc->wsi);
		if (fd >= 0 && getpeername(fd, (struct sockaddr *)&sa, &sl) == 0) {
			int port = sa.ss_family == AF_INET6
					   ? ntohs(((struct sockaddr_in6 *)&sa)->sin6_port)
					   : ntohs(((struct sockaddr_in *)&sa)->sin_port);
			size_t l = strlen(c->peer);
			snprintf(c->peer + l, sizeof(c->peer) - l, ":%d", port);
		}
	}
	c->next = s->ws_list;
	if (s->ws_list)
		s->ws_list->prev = c;
	s->ws_list = c;
	s->nws++;
	hc->ws = c;
	return c;
}

/* ---- wsconn.h ------------------------------------------------------------------------- */

static int http_ws_queue(struct ws_conn *c, const void *data, size_t len, unsigned flags)
{
	if (c->closing || c->srv->stopping)
		return -EPIPE;
	int r = proto_sendq_push(&c->sendq, data, len, flags);
	if (r < 0)
		return r;
	lws_callback_on_writable(c->wsi);
	return 0;
}

int ws_conn_send(struct ws_conn *c, const void *data, size_t len)
{
	return http_ws_queue(c, data, len, 0);
}

int ws_conn_send_droppable(struct ws_conn *c, const void *data, size_t len)
{
	return http_ws_queue(c, data, len, PROTO_SENDQ_DROPPABLE);
}

size_t ws_conn_queued_droppable(const struct ws_conn *c)
{
	return c->sendq.queued_droppable;
}

void ws_conn_drop_droppable(struct ws_conn *c)
{
	proto_sendq_drop_droppable(&c->sendq);
}

size_t ws_conn_queued(const struct ws_conn *c)
{
	return c->sendq.queued;
}

void ws_conn_close(struct ws_conn *c, int code, const char *reason)
{
	if (c->closing)
		return;
	c->closing = true;
	c->close_code = code;
	snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason ? reason : "");
	/* Queued messages still go out first, but a peer that does not read
	 * cannot hold the connection open: lws drops it after the timeout. */
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, KILN_WS_CLOSE_TIMEOUT_S);
	lws_callback_on_writable(c->wsi);
}

const char *ws_conn_peer(const struct ws_conn *c)
{
	return c->peer;
}

/* ---- WebSocket upgrade --------------------------------------------------------------- */

/* A short response written at once from CONFIRM_UPGRADE (then lws
 * completes the transaction); used to refuse an upgrade.  The status line is
 * written by hand: lws has not parsed the request version yet at this point
 * and would answer "HTTP/1.0" to an HTTP/1.1 upgrade, which clients such as
 * buildbot-worker report as "Unsupported HTTP version" instead of the real
 * refusal. */
static int http_ws_refuse_upgrade(struct lws *wsi, unsigned status, const char *challenge,
				  const char *text)
{
	unsigned char buf[LWS_PRE + 1024];
	unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
	size_t n = strlen(text);
	const char *reason = status == 400   ? "Bad Request"
			     : status == 401 ? "Unauthorized"
			     : status == 403 ? "Forbidden"
			     : status == 404 ? "Not Found"
			     : status == 503 ? "Service Unavailable"
					     : "Error";
	/* the /ws refusals are JSON like the API's; the worker ones stay text */
	bool json = text[0] == '{';

	int k = snprintf((char *)p, (size_t)(end - p), "HTTP/1.1 %u %s\r\n", status, reason);
	if (k < 0 || k >= end - p)
		return -1;
	p += k;
	const char *ctype = json ? "application/json" : "text/plain; charset=utf-8";
	if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
					 (const unsigned char *)ctype, (int)strlen(ctype), &p,
					 end) ||
	    (challenge && lws_add_http_header_by_name(
				  wsi, (const unsigned char *)"www-authenticate:",
				  (unsigned char *)challenge, (int)strlen(challenge), &p, end)) ||
	    lws_add_http_header_content_length(wsi, n, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (unsigned char *)"close", 5, &p,
					 end) ||
	    lws_finalize_http_header(wsi, &p, end))
		return -1;
	if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) < 0)
		return -1;
	if (n > sizeof(buf) - LWS_PRE)
		return -1;
	memcpy(buf + LWS_PRE, text, n);
	if (lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_HTTP_FINAL) < 0)
		return -1;
	return 1;
}

/* The request's Authorization header through http_basic_parse(); 1 when
 * there is none (or it is too long to be one). */
static int http_ws_req_basic(struct lws *wsi, char *out, size_t outlen, const char **ret_name,
			     const char **ret_pass)
{
	char hdr[1024];
	int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);

	if (n <= 0)
		return 1;
	if ((size_t)n >= sizeof(hdr) ||
	    lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
		return 1;
	int r = http_basic_parse(hdr, out, outlen, ret_name, ret_pass);
	explicit_bzero(hdr, sizeof(hdr));
	return r;
}

/* The subscriber cap was hit and said so in the log (one loop: no lock). */
static bool http_ws_cap_logged;
/* Host/Origin refusals: when one was last logged, how many since were not. */
static uint64_t http_ws_refusals_logged_at;
static size_t http_ws_refusals_quiet;

/* {"error": msg} for a /ws refusal (jansson writes it; caller frees). */
static char *http_ws_error_json(const char *msg)
{
	json_t *o = json_pack("{s:s}", "error", msg);
	char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return t;
}

/* One request header into buf (NUL-terminated); "" when absent, -E2BIG when
 * longer than the buffer. */
static int http_ws_hdr(struct lws *wsi, enum lws_token_indexes tok, const char *custom, char *buf,
		       size_t size)
{
	int n = custom ? lws_hdr_custom_length(wsi, custom, (int)strlen(custom))
		       : lws_hdr_total_length(wsi, tok);
	buf[0] = '\0';
	if (n <= 0)
		return 0;
	if ((size_t)n >= size)
		return -E2BIG;
	int r = custom ? lws_hdr_custom_copy(wsi, buf, (int)size, custom, (int)strlen(custom))
		       : lws_hdr_copy(wsi, buf, (int)size, tok);
	if (r < 0)
		buf[0] = '\0';
	return 0;
}

enum http_origin_verdict http_ws_origin_verdict(struct http_conn *hc, bool state_changing)
{
	const struct config *cfg = hc->srv->m->cfg;
	const struct http_origin_cfg oc = {.url = cfg->url, .listen_host = cfg->http.host};
	char host[KILN_MAX_HTTP_HOST_HDR], origin[KILN_MAX_HTTP_HOST_HDR];
	char site[KILN_MAX_HTTP_HOST_HDR];

	if (http_ws_hdr(hc->wsi, WSI_TOKEN_HOST, NULL, host, sizeof(host)) < 0)
		return HTTP_ORIGIN_BAD_HOST;
	if (http_ws_hdr(hc->wsi, WSI_TOKEN_ORIGIN, NULL, origin, sizeof(origin)) < 0)
		return HTTP_ORIGIN_BAD_ORIGIN;
	if (http_ws_hdr(hc->wsi, 0, "sec-fetch-site:", site, sizeof(site)) < 0)
		return HTTP_ORIGIN_CROSS_SITE;
	enum http_origin_verdict v = http_origin_check(&oc, host, origin, site, state_changing);
	if (v == HTTP_ORIGIN_OK)
		return v;
	/* one line a second at most: refusals cost the sender nothing */
	uint64_t now = uv_now(hc->srv->m->loop);
	if (http_ws_refusals_logged_at && now - http_ws_refusals_logged_at < 1000) {
		http_ws_refusals_quiet++;
		return v;
	}
	log_info("refused a request with Host '%.100s' Origin '%.100s' Sec-Fetch-Site '%.30s': "
		 "%s (%zu more refusals not logged)",
		 host, origin, site, http_origin_verdict_str(v), http_ws_refusals_quiet);
	http_ws_refusals_logged_at = now;
	http_ws_refusals_quiet = 0;
	return v;
}

int http_ws_confirm_upgrade(struct http_conn *hc, const char *up)
{
	struct http_server *s = hc->srv;
	struct lws *wsi = hc->wsi;

	if (!up || strcasecmp(up, "websocket"))
		return http_ws_refuse_upgrade(wsi, 400, NULL, "unsupported upgrade\n");
	if (s->stopping)
		return http_ws_refuse_upgrade(wsi, 503, NULL, "master is shutting down\n");

	if (!hc->workers) {
		char uri[64];
		if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
		    strcmp(uri, "/ws"))
			return http_ws_refuse_upgrade(wsi, 404, NULL, "not found\n");
		/* a page on another site must not read the event stream, nor a
		 * rebound DNS name reach it */
		enum http_origin_verdict v = http_ws_origin_verdict(hc, true);
		const char *why = NULL;
		unsigned status = 403;
		if (v != HTTP_ORIGIN_OK) {
			why = http_origin_verdict_str(v);
		} else if (events_nsubs(s->m->events) >= KILN_MAX_WS_EVENT_SUBSCRIBERS) {
			/* logged once per crowd, not once per refusal */
			if (!http_ws_cap_logged)
				log_warn("/ws subscribers at the cap (%u): refusing more",
					 KILN_MAX_WS_EVENT_SUBSCRIBERS);
			http_ws_cap_logged = true;
			why = "too many /ws subscribers";
			status = 503;
		} else {
			http_ws_cap_logged = false;
		}
		char awhy[256]; /* slice "weblogin": auth.anonymous_read = false (auth.h) */
		struct http_req areq = {.m = s->m, .method = HTTP_GET, .path = "/ws", .conn = hc};
		int ast = why ? 0 : auth_read_check(&areq, awhy, sizeof(awhy));
		if (ast) {
			why = awhy;
			status = (unsigned)ast;
		}
		if (why) {
			_cleanup_free_ char *body = http_ws_error_json(why);
			return http_ws_refuse_upgrade(wsi, status, NULL, body ? body : "{}");
		}
		struct ws_conn *c = http_ws_new(hc, true);
		c->sub = events_sub_new(s->m->events, c);
		return 0;
	}

	/* passwords being guessed: after a few failures an address backs off,
	 * refused without a look at what it sends (authlimit.h) */
	char peer[64];
	if (!lws_get_peer_simple(wsi, peer, sizeof(peer)))
		snprintf(peer, sizeof(peer), "?");
	struct authlimit *al = authlimit_shared(AUTHLIMIT_WORKERS);
	struct authlimit_note note;
	uint64_t wait = authlimit_check(al, peer, clock_mono_ms(), &note);
	if (wait > 0) {
		if (note.log)
			log_warn("worker logins from %s: %u failed and %u refused since the last "
				 "report (backing off %llu s)",
				 peer, note.failures, note.refused,
				 (unsigned long long)((wait + 999) / 1000));
		return http_ws_refuse_upgrade(wsi, 401, "Basic realm=\"kiln workers\"",
					      "too many failed logins from this address; retry "
					      "later\n");
	}

	char cred[768];
	const char *name = NULL, *pass = NULL;
	int r = http_ws_req_basic(wsi, cred, sizeof(cred), &name, &pass);
	if (r == KILN_EPARSE)
		return http_ws_refuse_upgrade(wsi, 400, NULL,
					      "only Basic authorization is supported\n");

	void *ud = NULL;
	r = s->wops->authenticate(s->wops->ctx, r == 0 ? name : NULL, r == 0 ? pass : NULL, &ud);
	explicit_bzero(cred, sizeof(cred));
	if (r == KILN_EPARSE)
		return http_ws_refuse_upgrade(wsi, 400, NULL, "bad request\n");
	if (r == KILN_EAUTH) /* its own line comes from authenticate() */
		authlimit_failed(al, peer, clock_mono_ms(), NULL);
	if (r < 0)
		return http_ws_refuse_upgrade(wsi, 401, "Basic realm=\"kiln workers\"",
					      "authentication required\n");
	authlimit_succeeded(al, peer);

	struct ws_conn *c = http_ws_new(hc, false);
	c->ops = s->wops;
	c->ud = ud;
	c->closed_done = false; /* from here on, closed() is owed */
	return 0;
}

/* ---- WebSocket traffic ---------------------------------------------------------------- */

int http_ws_on_receive(struct ws_conn *c, const void *in, size_t len)
{
	struct lws *wsi = c->wsi;

	if (c->bulk) {
		/* lws was told not to read: two readers would garble the stream */
		log_warn("%s: lws read a socket read directly; closing", c->peer);
		return -1;
	}
	if (c->closing) {
		c->rx_frame_left = 0; /* not followed: nothing learnt from it */
		return 0;
	}
	int r = 0;
	size_t left = lws_remaining_packet_payload(wsi);
	if (c->rx.len == 0) {
		c->rx_binary = lws_frame_is_binary(wsi);
		/* room for the whole frame at once (an upload's block): no chain of
		 * reallocations copying it as its fragments arrive */
		r = buf_grow(&c->rx, len + left);
	}
	if (r < 0 || buf_add(&c->rx, in, len) < 0) {
		static const char why[] = "message too big";
		log_warn("%s: message over %zu bytes, closing", c->peer, c->rx.max);
		lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)why,
				 sizeof(why) - 1);
		return -1;
	}
	if (!c->events) {
		http_ws_learn_rxbuf(c, in);
		bool first = !c->rx_frame_left;
		c->rx_frame_left = left;
		if (first && left)
			http_ws_bulk_try(c, in, len, left);
		if (c->bulk)
			return 0;
	}
	if (!lws_is_final_fragment(wsi))
		return 0;
	if (c->events) {
		if (!c->rx_binary && c->sub)
			events_sub_message(c->sub, c->rx.ptr, c->rx.len);
		buf_reset(&c->rx);
	} else {
		http_ws_deliver(c, c->rx_binary);
	}
	if (c->rx.cap > (256u << 10))
		buf_release(&c->rx); /* don't keep a big message's memory around */
	return 0;
}

int http_ws_on_writeable(struct ws_conn *c)
{
	struct proto_sendq_msg *m = proto_sendq_peek(&c->sendq);

	if (c->bulk && c->bulk->pong_due && !c->srv->stopping) {
		/* the answer to a ping http-ws.c read (lws saw none) */
		unsigned char frame[LWS_PRE + WSBULK_CTL_MAX];
		memcpy(frame + LWS_PRE, c->bulk->pong, c->bulk->pong_len);
		c->bulk->pong_due = false;
		if (lws_write(c->wsi, frame + LWS_PRE, c->bulk->pong_len, LWS_WRITE_PONG) < 0)
			return -1;
		if (m || c->closing)
			lws_callback_on_writable(c->wsi);
		return 0;
	}
	if (m && !c->srv->stopping) {
		size_t len = m->len;
		int w = lws_write(c->wsi, proto_sendq_payload(&c->sendq, m), len,
				  c->events ? LWS_WRITE_TEXT : LWS_WRITE_BINARY);
		proto_sendq_shift(&c->sendq); /* written or failed: it leaves the queue */
		if (w < 0 || (size_t)w < len)
			return -1;
		if (!proto_sendq_empty(&c->sendq) || c->closing)
			lws_callback_on_writable(c->wsi);
		return 0;
	}
	if (c->closing) {
		/* On lws 4.1.6 (libuv) lws_close_reason() + -1 from a writeable
		 * callback drops the socket without the close frame, so the
		 * frame is written here with the close opcode (4 in the ABI;
		 * the header keeps the name private). */
		unsigned char frame[LWS_PRE + 2 + sizeof(c->close_reason)];
		size_t n = strlen(c->close_reason);
		frame[LWS_PRE] = (unsigned char)(c->close_code >> 8);
		frame[LWS_PRE + 1] = (unsigned char)c->close_code;
		memcpy(frame + LWS_PRE + 2, c->close_reason, n);
		lws_write(c->wsi, frame + LWS_PRE, 2 + n, (enum lws_write_protocol)4);
		return -1;
	}
	return 0;
}
