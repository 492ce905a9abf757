/*
 * The master's libwebsockets server on the libuv loop: the HTTP vhost
 * (routes to the REST API, the UI page and the /ws event socket) and the
 * worker vhost (Basic-authenticated WebSockets handed to wsconn.h ops).
 * This file is the only one that speaks lws: it hides the five-step
 * response dance, body accumulation with caps, chunked streaming, and the
 * one-write-per-writeable rule behind http.h and wsconn.h.
 */
#define LOG_SUBSYS "http"

#include "master/events.h"
#include "master/http.h"
#include "master/master.h"
#include "master/wsconn.h"

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <libwebsockets.h>

/* Headroom for the response headers we build (status, type, length,
 * disposition, auth challenge). */
#define HTTP_HDR_SPACE 2048
/* How long a stopping server waits for WebSocket peers to answer the close. */
#define HTTP_STOP_GRACE_MS 1000
#define HTTP_STOP_POLL_MS 20
/* Answer memory a streamed reply holds in http.c: a piece and its framed copy. */
#define HTTP_STREAM_HELD (2 * (KILN_MAX_HTTP_RESPONSE_CHUNK + 64))

struct ws_msg {
	struct ws_msg *next;
	size_t len;
	bool binary;
	bool droppable;    /* a browser event: ws_conn_drop_droppable() may discard it */
	unsigned char data[]; /* LWS_PRE headroom + len */
};

struct ws_conn {
	struct http_server *srv;
	struct lws *wsi;
	const struct ws_conn_ops *ops; /* NULL for browser event sockets */
	void *ud;
	bool events;       /* browser /ws socket (text JSON), not a worker */
	bool established;
	bool closed_done;  /* ops->closed() was called (or will never be) */
	bool closing;
	int close_code;
	char close_reason[100];
	struct buf rx;     /* message being reassembled */
	bool rx_binary;
	struct ws_msg *qhead, *qtail;
	size_t queued;
	size_t queued_droppable;
	struct events_sub *sub; /* browser /ws socket: its subscriptions (events.c) */
	char peer[64];
	struct ws_conn *prev, *next; /* srv->ws_list */
};

struct http_resp {
	bool active;       /* a reply was given for the current request */
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
	bool chunked;      /* HTTP/1.1: chunked framing; else close at the end */
	bool close_after;
	size_t held;       /* bytes charged to srv->reply_mem for this answer */
	bool retry_after;  /* a 503 for the memory cap: say when to come back */
};

struct http_conn {
	struct http_server *srv;
	struct lws *wsi;
	bool workers;      /* on the worker vhost */
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
};

struct http_server {
	struct master *m;                 /* borrowed */
	const struct ws_conn_ops *wops;   /* borrowed */
	struct lws_context *ctx;
	struct lws_vhost *vh_http, *vh_workers;
	int http_port, workers_port;
	bool stopping;
	unsigned refs;                    /* owner + one per live http_conn */
	struct ws_conn *ws_list;
	size_t nws;
	uv_timer_t stop_timer;
	uint64_t stop_started;
	bool destroying;                  /* first lws_context_destroy() done */
	/* memory held for answers, all connections (bodies, stream buffers) */
	size_t reply_mem;
	_Atomic size_t reply_mem_max;     /* KILN_MAX_HTTP_REPLY_MEM unless a test lowers it */
	_Atomic size_t reply_mem_peak;
	size_t closing_handles;
	char scratch[KILN_MAX_HTTP_URI + 1];
};

static void http_server_unref(struct http_server *s)
{
	if (--s->refs)
		return;
	free(s);
}

/* ---- lws log routing --------------------------------------------------------------- */

static void http_lws_log(int level, const char *line)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (level & LLL_ERR)
		log_warn("lws: %.*s", (int)n, line);
	else
		log_debug("lws: %.*s", (int)n, line);
}

/* ---- query strings ----------------------------------------------------------------- */

void http_args_free(struct http_arg *args, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(args[i].name);
		free(args[i].value);
	}
	free(args);
}

static int http_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Splits "name=value" (already decoded) at its first '='. */
static void http_arg_set(struct http_arg *a, const char *frag, size_t len)
{
	const char *eq = memchr(frag, '=', len);
	if (eq) {
		a->name = xstrndup(frag, (size_t)(eq - frag));
		a->value = xstrndup(eq + 1, len - (size_t)(eq - frag) - 1);
	} else {
		a->name = xstrndup(frag, len);
		a->value = xstrdup("");
	}
}

int http_query_parse(const char *qs, size_t len, size_t max, struct http_arg **ret_args,
		     size_t *ret_n)
{
	struct http_arg *args = NULL;
	size_t n = 0, alloc = 0;
	struct buf frag;
	bool seen_eq = false;
	int r = 0;

	buf_init(&frag, len + 1);
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? qs[i] : '&';
		bool enc = false;

		if (c == '%' && i < len) {
			int hi = i + 1 < len ? http_hexval(qs[i + 1]) : -1;
			int lo = i + 2 < len ? http_hexval(qs[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				r = KILN_EPARSE;
				goto out;
			}
			c = (char)(hi << 4 | lo);
			i += 2;
			enc = true;
		}
		if (c == '\0') {
			r = KILN_EPARSE;
			goto out;
		}
		if (!enc && (c == '&' || c == ';')) {
			if (frag.len) {
				if (n == max) {
					r = -E2BIG;
					goto out;
				}
				ARRAY_GROW(args, n + 1, alloc);
				http_arg_set(&args[n++], frag.ptr, frag.len);
			}
			buf_reset(&frag);
			seen_eq = false;
			continue;
		}
		/* as lws does: an encoded '=' in the name part becomes '_' */
		if (c == '=' && enc && !seen_eq)
			c = '_';
		if (c == '=' && !enc)
			seen_eq = true;
		if (c == '+' && !enc)
			c = ' ';
		if (buf_addch(&frag, c) < 0) { /* cannot pass len + 1 */
			r = -E2BIG;
			goto out;
		}
	}
out:
	buf_release(&frag);
	if (r < 0) {
		http_args_free(args, n);
		return r;
	}
	*ret_args = args;
	*ret_n = n;
	return 0;
}

const char *http_req_arg(const struct http_req *req, const char *name)
{
	for (size_t i = 0; i < req->nargs; i++)
		if (!strcmp(req->args[i].name, name))
			return req->args[i].value;
	return NULL;
}

/* ---- connections --------------------------------------------------------------------- */

static struct http_conn *http_conn_get(struct lws *wsi)
{
	struct http_conn *hc = lws_wsi_user(wsi);
	if (hc)
		return hc;
	struct http_server *s = lws_context_user(lws_get_context(wsi));
	hc = xcalloc(1, sizeof(*hc));
	hc->srv = s;
	hc->wsi = wsi;
	hc->workers = lws_get_vhost(wsi) == s->vh_workers;
	buf_init(&hc->body, KILN_MAX_HTTP_BODY);
	s->refs++;
	/* Our own allocation survives lws re-binding the protocol on upgrade
	 * and keep-alive (lws frees only what it allocated itself). */
	lws_set_wsi_user(wsi, hc);
	return hc;
}

static void http_resp_release(struct http_conn *hc)
{
	struct http_resp *resp = &hc->resp;
	hc->srv->reply_mem -= resp->held;
	if (resp->free_ud)
		resp->free_ud(resp->ud);
	free(resp->ctype);
	free(resp->disposition);
	free(resp->body);
	*resp = (struct http_resp){0};
}

static void http_req_release(struct http_conn *hc)
{
	free(hc->path);
	http_args_free(hc->args, hc->nargs);
	free(hc->ctype);
	free(hc->accept);
	hc->path = hc->ctype = hc->accept = NULL;
	hc->args = NULL;
	hc->nargs = hc->args_alloc = 0;
	buf_release(&hc->body);
	hc->body_too_big = false;
	hc->in_request = false;
	hc->req = (struct http_req){0};
}

static void ws_msg_free_all(struct ws_conn *c)
{
	struct ws_msg *m = c->qhead;
	while (m) {
		struct ws_msg *next = m->next;
		free(m);
		m = next;
	}
	c->qhead = c->qtail = NULL;
	c->queued = 0;
	c->queued_droppable = 0;
}

/* Calls ops->closed() once, if the connection was ever handed to the ops. */
static void ws_conn_notify_closed(struct ws_conn *c)
{
	if (c->closed_done)
		return;
	c->closed_done = true;
	if (c->ops && c->ops->closed)
		c->ops->closed(c->ud, c);
}

static void ws_conn_free(struct ws_conn *c)
{
	struct http_server *s = c->srv;
	ws_conn_notify_closed(c);
	events_sub_free(c->sub);
	c->sub = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->ws_list = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nws--;
	ws_msg_free_all(c);
	buf_release(&c->rx);
	free(c);
}

static struct ws_conn *ws_conn_new(struct http_conn *hc, bool events)
{
	struct http_server *s = hc->srv;
	struct ws_conn *c = xcalloc(1, sizeof(*c));
	c->srv = s;
	c->wsi = hc->wsi;
	c->events = events;
	c->closed_done = true; /* until ops accept it */
	buf_init(&c->rx, events ? KILN_MAX_HTTP_BODY : KILN_MAX_WS_FRAME);
	if (lws_get_peer_simple(hc->wsi, c->peer, sizeof(c->peer)) == NULL)
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

static void http_conn_free(struct http_conn *hc)
{
	struct http_server *s = hc->srv;
	if (hc->ws)
		ws_conn_free(hc->ws);
	http_resp_release(hc);
	http_req_release(hc);
	free(hc);
	http_server_unref(s);
}

/* ---- wsconn.h ------------------------------------------------------------------------- */

static int ws_conn_queue(struct ws_conn *c, const void *data, size_t len, bool droppable)
{
	if (c->closing || c->srv->stopping)
		return -EPIPE;
	if (len > KILN_MAX_WS_SENDQ || c->queued > KILN_MAX_WS_SENDQ - len)
		return -ENOBUFS;
	struct ws_msg *m = xmalloc(sizeof(*m) + LWS_PRE + len);
	m->next = NULL;
	m->len = len;
	m->binary = !c->events;
	m->droppable = droppable;
	if (len)
		memcpy(m->data + LWS_PRE, data, len);
	if (c->qtail)
		c->qtail->next = m;
	else
		c->qhead = m;
	c->qtail = m;
	c->queued += len;
	if (droppable)
		c->queued_droppable += len;
	lws_callback_on_writable(c->wsi);
	return 0;
}

int ws_conn_send(struct ws_conn *c, const void *data, size_t len)
{
	return ws_conn_queue(c, data, len, false);
}

int ws_conn_send_droppable(struct ws_conn *c, const void *data, size_t len)
{
	return ws_conn_queue(c, data, len, true);
}

size_t ws_conn_queued_droppable(const struct ws_conn *c)
{
	return c->queued_droppable;
}

void ws_conn_drop_droppable(struct ws_conn *c)
{
	struct ws_msg **pp = &c->qhead, *last = NULL;
	while (*pp) {
		struct ws_msg *m = *pp;
		if (m->droppable) {
			*pp = m->next;
			c->queued -= m->len;
			c->queued_droppable -= m->len;
			free(m);
		} else {
			last = m;
			pp = &m->next;
		}
	}
	c->qtail = last;
}

size_t ws_conn_queued(const struct ws_conn *c)
{
	return c->queued;
}

void ws_conn_close(struct ws_conn *c, int code, const char *reason)
{
	if (c->closing)
		return;
	c->closing = true;
	c->close_code = code;
	snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason ? reason : "");
	/* Queued messages still go out first, but a peer that does not read
	 * cannot hold the connection open. */
	lws_callback_on_writable(c->wsi);
}

const char *ws_conn_peer(const struct ws_conn *c)
{
	return c->peer;
}

/* ---- HTTP responses ------------------------------------------------------------------ */

static void http_resp_begin(struct http_conn *hc, int status, const char *ctype)
{
	http_resp_release(hc);
	hc->resp.active = true;
	hc->resp.status = status;
	hc->resp.ctype = xstrdup_or_null(ctype);
	lws_callback_on_writable(hc->wsi);
}

/* Charges n bytes to the server's answer memory for hc's current response
 * (given back when it is released).  false, with nothing charged, when that
 * would pass the cap. */
static bool http_reply_mem_charge(struct http_conn *hc, size_t n)
{
	struct http_server *s = hc->srv;
	size_t max = atomic_load(&s->reply_mem_max);

	if (n > max || s->reply_mem > max - n)
		return false;
	s->reply_mem += n;
	hc->resp.held += n;
	if (s->reply_mem > atomic_load(&s->reply_mem_peak))
		atomic_store(&s->reply_mem_peak, s->reply_mem);
	return true;
}

/* The answer when the memory cap is reached: 503 with Retry-After and a
 * Buildbot-shaped error.  Its few bytes are not charged, so it is never
 * refused itself. */
static void http_reply_busy(struct http_conn *hc, size_t want)
{
	static const char msg[] = "{\"error\": \"the master is busy sending other answers; "
				  "retry later\"}";
	struct http_server *s = hc->srv;

	log_info("answer memory cap reached (%zu of %zu bytes held, %zu more wanted): 503 for '%s'",
		 s->reply_mem, (size_t)atomic_load(&s->reply_mem_max), want,
		 hc->req.path ? hc->req.path : "?");
	http_resp_begin(hc, 503, "text/plain; charset=utf-8");
	hc->resp.retry_after = true;
	hc->resp.body = xmalloc(LWS_PRE + sizeof(msg));
	memcpy(hc->resp.body + LWS_PRE, msg, sizeof(msg) - 1);
	hc->resp.len = sizeof(msg) - 1;
}

void http_reply_take(struct http_req *req, int status, const char *content_type, char *body,
		     size_t len)
{
	struct http_conn *hc = req->conn;
	http_resp_begin(hc, status, content_type);
	if (!http_reply_mem_charge(hc, LWS_PRE + len + 1)) {
		free(body);
		http_reply_busy(hc, len);
		return;
	}
	hc->resp.body = xmalloc(LWS_PRE + len + 1);
	if (len)
		memcpy(hc->resp.body + LWS_PRE, body, len);
	hc->resp.len = len;
	free(body);
}

void http_reply(struct http_req *req, int status, const char *content_type, const void *body,
		size_t len)
{
	http_reply_take(req, status, content_type, xmemdup(body, len ? len : 1), len);
}

void http_reply_stream(struct http_req *req, int status, const char *content_type,
		       const char *disposition, http_produce_fn produce, http_free_fn free_ud,
		       void *ud)
{
	http_reply_stream_held(req, status, content_type, disposition, produce, free_ud, ud, 0);
}

void http_reply_stream_held(struct http_req *req, int status, const char *content_type,
			    const char *disposition, http_produce_fn produce,
			    http_free_fn free_ud, void *ud, size_t held)
{
	struct http_conn *hc = req->conn;
	char ver[16] = "";

	http_resp_begin(hc, status, content_type);
	/* the piece and its framed copy (http_write_stream_piece), and the producer's own */
	if (held > SIZE_MAX - HTTP_STREAM_HELD || !http_reply_mem_charge(hc, HTTP_STREAM_HELD + held)) {
		if (free_ud)
			free_ud(ud);
		http_reply_busy(hc, HTTP_STREAM_HELD + held);
		return;
	}
	hc->resp.disposition = xstrdup_or_null(disposition);
	hc->resp.produce = produce;
	hc->resp.free_ud = free_ud;
	hc->resp.ud = ud;
	if (lws_hdr_copy(hc->wsi, ver, sizeof(ver), WSI_TOKEN_HTTP) > 0 && !strcmp(ver, "HTTP/1.1"))
		hc->resp.chunked = true;
	else
		hc->resp.close_after = true; /* HTTP/1.0: the end of the body is the close */
}

static void http_reply_text(struct http_conn *hc, int status, const char *text)
{
	http_reply(&hc->req, status, "text/plain; charset=utf-8", text, strlen(text));
}

/* {"error": "..."} as Buildbot writes it (compact with spaces). */
static void http_reply_error(struct http_conn *hc, int status, const char *msg)
{
	json_t *o = json_pack("{s:s}", "error", msg);
	char *s = json_dumps(o, 0);
	json_decref(o);
	http_reply_take(&hc->req, status, "text/plain; charset=utf-8", s, strlen(s));
}

static int http_write_headers(struct http_conn *hc)
{
	struct http_resp *r = &hc->resp;
	unsigned char buf[LWS_PRE + HTTP_HDR_SPACE];
	unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
	struct lws *wsi = hc->wsi;

	if (lws_add_http_header_status(wsi, (unsigned)r->status, &p, end))
		return -1;
	if (r->ctype && lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
						     (unsigned char *)r->ctype,
						     (int)strlen(r->ctype), &p, end))
		return -1;
	if (r->disposition &&
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"content-disposition:",
					(unsigned char *)r->disposition,
					(int)strlen(r->disposition), &p, end))
		return -1;
	if (!r->produce) {
		if (lws_add_http_header_content_length(wsi, r->len, &p, end))
			return -1;
	} else if (r->chunked) {
		if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING,
						 (unsigned char *)"chunked", 7, &p, end))
			return -1;
	} else {
		if (lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
						 (unsigned char *)"close", 5, &p, end))
			return -1;
	}
	if (r->retry_after &&
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"retry-after:",
					(unsigned char *)"1", 1, &p, end))
		return -1;
	if (r->close_after && !r->produce &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (unsigned char *)"close", 5,
					 &p, end))
		return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	return 0;
}

/* Writes the next piece of a streamed body; returns 1 when more follows,
 * 0 after the last piece, -1 to drop the connection. */
static int http_write_stream_piece(struct http_conn *hc)
{
	struct http_resp *r = &hc->resp;
	struct buf piece, out;
	int more;

	buf_init(&piece, KILN_MAX_HTTP_RESPONSE_CHUNK);
	more = r->produce(r->ud, &piece);
	if (more < 0) {
		buf_release(&piece);
		return -1;
	}
	/* [LWS_PRE][hex CRLF][data][CRLF][0 CRLF CRLF]: sized to fit, so no append fails */
	static const char headroom[LWS_PRE];
	int e;
	buf_init(&out, LWS_PRE + piece.len + 64);
	e = buf_add(&out, headroom, LWS_PRE);
	if (!e && r->chunked && piece.len)
		e = buf_addf(&out, "%zx\r\n", piece.len);
	if (!e)
		e = buf_add(&out, piece.ptr, piece.len);
	if (!e && r->chunked && piece.len)
		e = buf_adds(&out, "\r\n");
	if (!e && r->chunked && !more)
		e = buf_adds(&out, "0\r\n\r\n");
	buf_release(&piece);
	if (e < 0) {
		buf_release(&out);
		return -1;
	}

	size_t n = out.len - LWS_PRE;
	int w = 0;
	if (n || !more)
		w = lws_write(hc->wsi, (unsigned char *)out.ptr + LWS_PRE, n,
			      more ? LWS_WRITE_HTTP : LWS_WRITE_HTTP_FINAL);
	buf_release(&out);
	if (w < 0 || (size_t)w < n)
		return -1;
	return more ? 1 : 0;
}

/* The writeable callback of a plain HTTP connection: one lws_write each time. */
static int http_on_writeable(struct http_conn *hc)
{
	struct http_resp *r = &hc->resp;

	if (!r->active)
		return 0;
	if (!r->headers_sent) {
		if (http_write_headers(hc))
			return -1;
		r->headers_sent = true;
		if (!r->produce && r->len == 0)
			goto complete;
		lws_callback_on_writable(hc->wsi);
		return 0;
	}
	if (r->produce) {
		if (hc->srv->stopping)
			return -1; /* the producer may need the database, which is going away */
		int more = http_write_stream_piece(hc);
		if (more < 0)
			return -1;
		if (more) {
			lws_callback_on_writable(hc->wsi);
			return 0;
		}
		goto complete;
	}
	size_t n = r->len - r->off;
	if (n > KILN_MAX_HTTP_RESPONSE_CHUNK)
		n = KILN_MAX_HTTP_RESPONSE_CHUNK;
	bool final = r->off + n == r->len;
	/* The bytes before off were sent already: they serve as headroom. */
	int w = lws_write(hc->wsi, r->body + LWS_PRE + r->off, n,
			  final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
	if (w < 0 || (size_t)w < n)
		return -1;
	r->off += n;
	if (!final) {
		lws_callback_on_writable(hc->wsi);
		return 0;
	}
complete:;
	bool close_after = r->close_after;
	http_resp_release(hc);
	http_req_release(hc);
	if (close_after)
		return -1;
	if (lws_http_transaction_completed(hc->wsi))
		return -1;
	return 0;
}

/* ---- HTTP requests ------------------------------------------------------------------ */

static const struct http_route {
	const char *path;
	bool prefix; /* path itself or path + "/..." */
	void (*fn)(struct http_req *req);
} http_routes[] = {
	{"/api/v2", true, api_handle},
	{"/change_hook", true, change_hook_handle},
	{"/", false, www_handle},
};

static void http_dispatch(struct http_conn *hc)
{
	struct http_server *s = hc->srv;
	const char *path = hc->req.path;

	if (s->stopping) {
		http_reply_error(hc, 503, "master is shutting down");
		return;
	}
	if (hc->workers) {
		http_reply_text(hc, 404, "this is the kiln worker endpoint: connect with a WebSocket\n");
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(http_routes); i++) {
		const struct http_route *rt = &http_routes[i];
		size_t n = strlen(rt->path);
		if (strncmp(path, rt->path, n))
			continue;
		if (path[n] == '\0' || (rt->prefix && path[n] == '/')) {
			rt->fn(&hc->req);
			if (!hc->resp.active) /* a handler bug must not hang the client */
				http_reply_error(hc, 500, "no response");
			return;
		}
	}
	if (!strcmp(path, "/ws")) {
		http_reply_error(hc, 400, "/ws needs a WebSocket upgrade");
		return;
	}
	http_reply_error(hc, 404, "not found");
}

int http_req_header(const struct http_req *req, const char *name, char *buf, size_t size)
{
	struct lws *wsi = req->conn->wsi;
	char key[128];
	int klen = snprintf(key, sizeof(key), "%s:", name);
	if (klen <= 0 || (size_t)klen >= sizeof(key) || size > INT_MAX || size == 0)
		return -E2BIG;
	int n;
	if (!strcmp(name, "authorization")) {
		n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
		if (n <= 0)
			return -ENOENT;
		if ((size_t)n >= size)
			return -E2BIG;
		return lws_hdr_copy(wsi, buf, (int)size, WSI_TOKEN_HTTP_AUTHORIZATION) < 0 ? -ENOENT : n;
	}
	n = lws_hdr_custom_length(wsi, key, klen);
	if (n < 0)
		return -ENOENT;
	if ((size_t)n >= size)
		return -E2BIG;
	return lws_hdr_custom_copy(wsi, buf, (int)size, key, klen) < 0 ? -ENOENT : n;
}

static char *http_hdr_dup(struct lws *wsi, enum lws_token_indexes tok)
{
	int n = lws_hdr_total_length(wsi, tok);
	char *p = xmalloc((size_t)n + 1);
	if (lws_hdr_copy(wsi, p, n + 1, tok) < 0)
		p[0] = '\0';
	return p;
}

/* LWS_CALLBACK_HTTP: headers are in; the body (if any) follows. */
static int http_on_request(struct http_conn *hc, const char *in, size_t inlen)
{
	struct lws *wsi = hc->wsi;
	struct http_server *s = hc->srv;

	http_resp_release(hc);
	http_req_release(hc);
	hc->in_request = true;
	hc->path = xstrndup(in ? in : "/", in ? inlen : 1);
	hc->ctype = http_hdr_dup(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE);
	hc->accept = http_hdr_dup(wsi, WSI_TOKEN_HTTP_ACCEPT);
	buf_init(&hc->body, KILN_MAX_HTTP_BODY);

	struct http_req *req = &hc->req;
	req->m = s->m;
	req->conn = hc;
	req->path = hc->path;
	req->content_type = hc->ctype;
	req->accept = hc->accept;
	req->body = "";
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI))
		req->method = HTTP_GET;
	else if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI))
		req->method = HTTP_POST;
	else if (lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI))
		req->method = HTTP_HEAD;
	else
		req->method = HTTP_OTHER;

	int argslen = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
	if (inlen + (size_t)argslen > KILN_MAX_HTTP_URI) {
		http_reply_error(hc, 414, "request URI too long");
		return 0;
	}
	for (int i = 0;; i++) {
		int n = lws_hdr_copy_fragment(wsi, s->scratch, sizeof(s->scratch),
					      WSI_TOKEN_HTTP_URI_ARGS, i);
		if (n < 0)
			break;
		if (n == 0)
			continue;
		if (hc->nargs == KILN_MAX_HTTP_QUERY_ARGS) {
			http_reply_error(hc, 400, "too many query arguments");
			return 0;
		}
		ARRAY_GROW(hc->args, hc->nargs + 1, hc->args_alloc);
		http_arg_set(&hc->args[hc->nargs++], s->scratch, (size_t)n);
	}
	req->args = hc->args;
	req->nargs = hc->nargs;

	if (req->method == HTTP_OTHER || req->method == HTTP_HEAD) {
		http_reply_error(hc, 405, "method not allowed");
		return 0;
	}
	if (req->method == HTTP_POST) {
		char cl[32];
		long long v;
		int cln = lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH);
		if (cln > 0 &&
		    (str_to_i64(cl, &v) < 0 || v < 0 || (unsigned long long)v > KILN_MAX_HTTP_BODY)) {
			/* lws discards the rest of the body, keep-alive survives */
			http_reply_error(hc, 413, "request body too large");
			return 0;
		}
		if (cln <= 0 && !lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING)) {
			/* no length and not chunked: there is no body to wait for
			 * (curl -X POST), and lws would never call us again */
			http_dispatch(hc);
			return 0;
		}
		return 0; /* wait for the body */
	}
	http_dispatch(hc);
	return 0;
}

static int http_on_body(struct http_conn *hc, const void *in, size_t len)
{
	if (!hc->in_request || hc->resp.active)
		return 0;
	if (!hc->body_too_big && buf_add(&hc->body, in, len) < 0)
		hc->body_too_big = true;
	return 0;
}

static int http_on_body_done(struct http_conn *hc)
{
	if (!hc->in_request || hc->resp.active)
		return 0;
	if (hc->body_too_big) {
		http_reply_error(hc, 413, "request body too large");
		return 0;
	}
	hc->req.body = hc->body.ptr;
	hc->req.body_len = hc->body.len;
	http_dispatch(hc);
	return 0;
}

/* ---- WebSocket upgrade --------------------------------------------------------------- */

/* A short response written at once from CONFIRM_UPGRADE (then lws
 * completes the transaction); used to refuse an upgrade.  The status line is
 * written by hand: lws has not parsed the request version yet at this point
 * and would answer "HTTP/1.0" to an HTTP/1.1 upgrade, which clients such as
 * buildbot-worker report as "Unsupported HTTP version" instead of the real
 * refusal. */
static int http_refuse_upgrade(struct lws *wsi, unsigned status, const char *challenge,
			       const char *text)
{
	unsigned char buf[LWS_PRE + 1024];
	unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
	size_t n = strlen(text);
	const char *reason = status == 400   ? "Bad Request"
			     : status == 401 ? "Unauthorized"
			     : status == 404 ? "Not Found"
			     : status == 503 ? "Service Unavailable"
					     : "Error";

	int k = snprintf((char *)p, (size_t)(end - p), "HTTP/1.1 %u %s\r\n", status, reason);
	if (k < 0 || k >= end - p)
		return -1;
	p += k;
	if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
					 (unsigned char *)"text/plain; charset=utf-8", 25, &p,
					 end) ||
	    (challenge && lws_add_http_header_by_name(wsi, (const unsigned char *)"www-authenticate:",
						       (unsigned char *)challenge,
						       (int)strlen(challenge), &p, end)) ||
	    lws_add_http_header_content_length(wsi, n, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (unsigned char *)"close", 5,
					 &p, end) ||
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

int http_basic_parse(const char *hdr, char *out, size_t outlen, const char **ret_name,
		     const char **ret_pass)
{
	const char *p = hdr;
	while (*p == ' ')
		p++;
	if (strncasecmp(p, "Basic", 5) || (p[5] != ' ' && p[5] != '\0'))
		return KILN_EPARSE;
	p += 5;
	while (*p == ' ')
		p++;
	if (outlen < 2 || outlen > INT_MAX)
		return 1;
	int d = lws_b64_decode_string(p, out, (int)outlen);
	if (d <= 0 || (size_t)d >= outlen)
		return 1;
	out[d] = '\0';
	if (strlen(out) != (size_t)d)
		return 1; /* embedded NUL */
	char *colon = strchr(out, ':');
	if (!colon)
		return 1;
	*colon = '\0';
	*ret_name = out;
	*ret_pass = colon + 1;
	return 0;
}

/* The request's Authorization header through http_basic_parse(); 1 when
 * there is none (or it is too long to be one). */
static int http_req_basic(struct lws *wsi, char *out, size_t outlen, const char **ret_name,
			  const char **ret_pass)
{
	char hdr[1024];
	int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);

	if (n <= 0)
		return 1;
	if ((size_t)n >= sizeof(hdr) || lws_hdr_copy(wsi, hdr, sizeof(hdr),
						     WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
		return 1;
	int r = http_basic_parse(hdr, out, outlen, ret_name, ret_pass);
	explicit_bzero(hdr, sizeof(hdr));
	return r;
}

static int http_on_confirm_upgrade(struct http_conn *hc, const char *up)
{
	struct http_server *s = hc->srv;
	struct lws *wsi = hc->wsi;

	if (!up || strcasecmp(up, "websocket"))
		return http_refuse_upgrade(wsi, 400, NULL, "unsupported upgrade\n");
	if (s->stopping)
		return http_refuse_upgrade(wsi, 503, NULL, "master is shutting down\n");

	if (!hc->workers) {
		char uri[64];
		if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
		    strcmp(uri, "/ws"))
			return http_refuse_upgrade(wsi, 404, NULL, "not found\n");
		struct ws_conn *c = ws_conn_new(hc, true);
		c->sub = events_sub_new(s->m->events, c);
		return 0;
	}

	char cred[768];
	const char *name = NULL, *pass = NULL;
	int r = http_req_basic(wsi, cred, sizeof(cred), &name, &pass);
	if (r == KILN_EPARSE)
		return http_refuse_upgrade(wsi, 400, NULL, "only Basic authorization is supported\n");

	void *ud = NULL;
	r = s->wops->authenticate(s->wops->ctx, r == 0 ? name : NULL, r == 0 ? pass : NULL, &ud);
	explicit_bzero(cred, sizeof(cred));
	if (r == KILN_EPARSE)
		return http_refuse_upgrade(wsi, 400, NULL, "bad request\n");
	if (r < 0)
		return http_refuse_upgrade(wsi, 401, "Basic realm=\"kiln workers\"",
					   "authentication required\n");

	struct ws_conn *c = ws_conn_new(hc, false);
	c->ops = s->wops;
	c->ud = ud;
	c->closed_done = false; /* from here on, closed() is owed */
	return 0;
}

/* ---- WebSocket traffic ---------------------------------------------------------------- */

static int ws_on_receive(struct ws_conn *c, const void *in, size_t len)
{
	struct lws *wsi = c->wsi;

	if (c->closing)
		return 0;
	if (c->rx.len == 0)
		c->rx_binary = lws_frame_is_binary(wsi);
	if (buf_add(&c->rx, in, len) < 0) {
		static const char why[] = "message too big";
		log_warn("%s: message over %zu bytes, closing", c->peer, c->rx.max);
		lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)why,
				 sizeof(why) - 1);
		return -1;
	}
	if (!lws_is_final_fragment(wsi))
		return 0;
	if (c->events) {
		if (!c->rx_binary && c->sub)
			events_sub_message(c->sub, c->rx.ptr, c->rx.len);
	} else if (c->rx_binary && !c->closed_done && c->ops->message) {
		c->ops->message(c->ud, c, c->rx.ptr, c->rx.len);
	}
	buf_reset(&c->rx);
	if (c->rx.cap > (256u << 10))
		buf_release(&c->rx); /* don't keep a big message's memory around */
	return 0;
}

static int ws_on_writeable(struct ws_conn *c)
{
	struct ws_msg *m = c->qhead;

	if (m && !c->srv->stopping) {
		c->qhead = m->next;
		if (!c->qhead)
			c->qtail = NULL;
		c->queued -= m->len;
		if (m->droppable)
			c->queued_droppable -= m->len;
		int w = lws_write(c->wsi, m->data + LWS_PRE, m->len,
				  m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
		bool short_write = w < 0 || (size_t)w < m->len;
		free(m);
		if (short_write)
			return -1;
		if (c->qhead || c->closing)
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

/* ---- the lws callback ------------------------------------------------------------------ */

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			 size_t len)
{
	struct http_conn *hc = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return http_on_request(http_conn_get(wsi), in, in ? strlen(in) : 0);
	case LWS_CALLBACK_HTTP_BODY:
		return hc ? http_on_body(hc, in, len) : 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return hc ? http_on_body_done(hc) : 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return hc ? http_on_writeable(hc) : 0;
	case LWS_CALLBACK_CLOSED_HTTP:
		if (hc) {
			http_resp_release(hc);
			http_req_release(hc);
		}
		return 0;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return http_on_confirm_upgrade(http_conn_get(wsi), in);
	case LWS_CALLBACK_ESTABLISHED:
		if (!hc || !hc->ws)
			return -1;
		hc->ws->established = true;
		if (!hc->ws->closed_done && hc->ws->ops->opened)
			hc->ws->ops->opened(hc->ws->ud, hc->ws);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		return hc && hc->ws ? ws_on_receive(hc->ws, in, len) : -1;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return hc && hc->ws ? ws_on_writeable(hc->ws) : 0;
	case LWS_CALLBACK_CLOSED:
		if (hc && hc->ws) {
			ws_conn_notify_closed(hc->ws);
			/* no more events to a socket that is gone */
			events_sub_free(hc->ws->sub);
			hc->ws->sub = NULL;
		}
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		if (hc) {
			lws_set_wsi_user(wsi, NULL);
			http_conn_free(hc);
		}
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols http_protocols[] = {
	{"kiln-http", http_callback, 0, 65536, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Each worker connection holds an rx buffer of this size for its whole
 * life: 64 KiB made 10,000 idle workers cost 650 MB.  Messages are
 * reassembled in our own capped buf, so a small buffer only means more
 * reads per large frame.  tx_packet_size is set because 0 would limit
 * sends to the rx size. */
#define WORKER_RX_BUFFER 8192
#define WORKER_TX_PACKET 65536

static const struct lws_protocols http_worker_protocols[] = {
	/* protocols[0]: the Buildbot worker names no subprotocol */
	{"kiln-worker", http_callback, 0, WORKER_RX_BUFFER, 0, NULL, WORKER_TX_PACKET},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- start / stop --------------------------------------------------------------------- */

static const char *http_iface(const char *host)
{
	if (!host || !*host || !strcmp(host, "localhost"))
		return "127.0.0.1";
	return host;
}

static void http_format_addr(char *out, size_t n, const char *host, int port)
{
	host = http_iface(host);
	if (strchr(host, ':'))
		snprintf(out, n, "[%s]:%d", host, port);
	else
		snprintf(out, n, "%s:%d", host, port);
}

static int http_write_ports(struct http_server *s)
{
	const struct config *cfg = s->m->cfg;
	char a[300], b[300];
	http_format_addr(a, sizeof(a), cfg->http.host, s->http_port);
	http_format_addr(b, sizeof(b), cfg->workers.host, s->workers_port);

	_cleanup_free_ char *path = xasprintf("%s/ports", s->m->basedir);
	_cleanup_free_ char *tmp = xasprintf("%s/ports.tmp.%ld", s->m->basedir, (long)getpid());
	_cleanup_free_ char *text = xasprintf("http %s\nworkers %s\n", a, b);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	size_t len = strlen(text);
	ssize_t w = write(fd, text, len);
	int r = w < 0 ? -errno : (size_t)w != len ? -EIO : 0;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

/* Workers are pinged after a minute of silence and dropped when nothing at
 * all came back for three: a half-open TCP connection must not hold a
 * build forever (its build then ends RETRY). */
static const lws_retry_bo_t worker_idle_policy = {
	.secs_since_valid_ping = 60,
	.secs_since_valid_hangup = 180,
};

static struct lws_vhost *http_vhost_new(struct http_server *s, const char *name,
					const struct config_listen *l,
					const struct lws_protocols *protocols,
					const lws_retry_bo_t *idle_policy)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	info.vhost_name = name;
	info.iface = http_iface(l->host);
	info.port = l->port;
	info.protocols = protocols;
	info.keepalive_timeout = 30;
	info.retry_and_idle_policy = idle_policy;
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
	return lws_create_vhost(s->ctx, &info);
}

int http_server_start(struct master *m, const struct ws_conn_ops *worker_ops,
		      struct http_server **ret)
{
	struct lws_context_creation_info info;
	void *foreign[1] = {m->loop};
	struct http_server *s = xcalloc(1, sizeof(*s));
	int r;

	s->m = m;
	s->wops = worker_ops;
	s->refs = 1;
	atomic_init(&s->reply_mem_max, KILN_MAX_HTTP_REPLY_MEM);
	atomic_init(&s->reply_mem_peak, 0);

	lws_set_log_level(LLL_ERR | LLL_WARN, http_lws_log);
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
		       LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
	info.foreign_loops = foreign;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.user = s;
	/* room for a URI of KILN_MAX_HTTP_URI plus ordinary headers; longer
	 * requests are dropped by lws itself */
	info.max_http_header_data = (unsigned short)(KILN_MAX_HTTP_URI + 8192);
	info.max_http_header_pool = 64;
	info.timeout_secs = 30;
	s->ctx = lws_create_context(&info);
	if (!s->ctx) {
		free(s);
		return log_error_errno(-ENOMEM, "cannot create the lws context");
	}

	s->vh_http = http_vhost_new(s, "http", &m->cfg->http, http_protocols, NULL);
	if (!s->vh_http) {
		r = log_error_errno(-EADDRINUSE, "cannot listen for HTTP on '%s:%d'",
				    http_iface(m->cfg->http.host), m->cfg->http.port);
		goto fail;
	}
	s->vh_workers = http_vhost_new(s, "workers", &m->cfg->workers, http_worker_protocols,
				       &worker_idle_policy);
	if (!s->vh_workers) {
		r = log_error_errno(-EADDRINUSE, "cannot listen for workers on '%s:%d'",
				    http_iface(m->cfg->workers.host), m->cfg->workers.port);
		goto fail;
	}
	s->http_port = lws_get_vhost_listen_port(s->vh_http);
	s->workers_port = lws_get_vhost_listen_port(s->vh_workers);

	r = http_write_ports(s);
	if (r < 0) {
		log_error_errno(r, "cannot write '%s/ports'", m->basedir);
		goto fail;
	}
	log_info("listening: http %s:%d, workers %s:%d", http_iface(m->cfg->http.host),
		 s->http_port, http_iface(m->cfg->workers.host), s->workers_port);
	*ret = s;
	return 0;

fail:
	/* the same two-step destroy as a stop; it completes on the loop */
	http_server_stop(s);
	return r;
}

int http_server_http_port(const struct http_server *s)
{
	return s->http_port;
}

void http_server_set_reply_mem_max(struct http_server *s, size_t max)
{
	atomic_store(&s->reply_mem_max, max);
	atomic_store(&s->reply_mem_peak, 0);
}

size_t http_server_reply_mem_peak(const struct http_server *s)
{
	return atomic_load(&s->reply_mem_peak);
}

int http_server_workers_port(const struct http_server *s)
{
	return s->workers_port;
}

static void http_stop_timer_closed(uv_handle_t *h)
{
	http_server_unref(h->data);
}

static void http_count_closing(uv_handle_t *h, void *arg)
{
	struct http_server *s = arg;
	if (h != (uv_handle_t *)&s->stop_timer && uv_is_closing(h))
		s->closing_handles++;
}

/*
 * Stopping on a foreign libuv loop takes two lws_context_destroy() calls:
 * the first closes every connection and lws's own uv handles
 * asynchronously, the second (once those closes have completed on the
 * loop) frees the context.  The timer drives both, after giving the
 * WebSocket peers their close frames.
 */
static void http_stop_tick(uv_timer_t *t)
{
	struct http_server *s = t->data;

	if (!s->destroying) {
		if (s->nws && uv_now(t->loop) - s->stop_started < HTTP_STOP_GRACE_MS)
			return;
		s->destroying = true;
		lws_context_destroy(s->ctx);
		return;
	}
	s->closing_handles = 0;
	uv_walk(t->loop, http_count_closing, s);
	if (s->closing_handles)
		return;
	uv_timer_stop(t);
	lws_context_destroy(s->ctx);
	s->ctx = NULL;
	uv_close((uv_handle_t *)t, http_stop_timer_closed);
}

void http_server_stop(struct http_server *s)
{
	if (!s || s->stopping)
		return;
	s->stopping = true;
	/* Nothing reaches the engine after this returns. */
	for (struct ws_conn *c = s->ws_list; c; c = c->next) {
		ws_conn_notify_closed(c);
		ws_msg_free_all(c);
		c->closing = false;
		ws_conn_close(c, LWS_CLOSE_STATUS_GOINGAWAY, "master shutting down");
	}
	uv_timer_init(s->m->loop, &s->stop_timer);
	s->stop_timer.data = s;
	s->stop_started = uv_now(s->m->loop);
	uv_timer_start(&s->stop_timer, http_stop_tick, 0, HTTP_STOP_POLL_MS);
}
