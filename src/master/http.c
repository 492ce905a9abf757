/*
 * The master's libwebsockets server on the libuv loop: the HTTP vhost
 * (routes to the REST API, the UI page and the /ws event socket) and the
 * worker vhost (Basic-authenticated WebSockets handed to wsconn.h ops), one
 * context each; http-listen.c accepts and hands complete requests over.
 * Only http*.c speak lws; this file holds the contexts and vhosts, the
 * lws callback, request intake (body accumulation with caps) and routing,
 * and start/stop.  Responses are in http-reply.c, WebSockets in http-ws.c,
 * parsers in http-query.c (see http-int.h).
 */
#define LOG_SUBSYS "http"

#include "master/auth.h" /* slice "weblogin" */
#include "master/badges.h"
#include "master/events.h"
#include "master/feeds.h"
#include "master/http-int.h"
#include "master/master.h"
#include "master/metrics.h" /* slice "operator" */

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/fsutil.h"
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

void http_server_unref(struct http_server *s)
{
	if (--s->refs)
		return;
	free(s->ws_bulk_buf);
	free(s);
}

/* ---- lws log routing --------------------------------------------------------------- */

/* lws's error lines are rate-limited: a flood of broken connections must
 * not become a flood of log lines.  Its "calling service" notes on every
 * adopted socket or reused header slot, and its "deferring" notes when
 * the header pool is busy, are noise (at its error level in 4.1.6). */
static struct {
	uint64_t window_start;
	unsigned lines;
	unsigned long dropped;
} http_lws_rate;

static void http_lws_log(int level, const char *line)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (!(level & LLL_ERR) || strstr(line, "calling service") ||
	    strstr(line, "adopt_socket_readbuf")) {
		log_debug("lws: %.*s", (int)n, line);
		return;
	}
	uint64_t now = clock_mono_ms();
	if (now - http_lws_rate.window_start >= 60000) {
		if (http_lws_rate.dropped)
			log_warn("lws: %lu more error lines in the last minute not logged",
				 http_lws_rate.dropped);
		http_lws_rate.window_start = now;
		http_lws_rate.lines = 0;
		http_lws_rate.dropped = 0;
	}
	if (http_lws_rate.lines >= KILN_HTTP_LWS_LOG_PER_MIN) {
		http_lws_rate.dropped++;
		return;
	}
	http_lws_rate.lines++;
	log_warn("lws: %.*s", (int)n, line);
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
	hc->next = s->conns;
	if (s->conns)
		s->conns->prev = hc;
	s->conns = hc;
	s->refs++;
	/* Our own allocation survives lws re-binding the protocol on upgrade
	 * and keep-alive (lws frees only what it allocated itself). */
	lws_set_wsi_user(wsi, hc);
	return hc;
}

void http_req_release(struct http_conn *hc)
{
	if (hc->deferred) { /* the deferred answer finds no request any more */
		hc->deferred->hc = NULL;
		hc->deferred = NULL;
	}
	auth_known_free(hc->req.auth);
	hc->req.auth = NULL;
	free(hc->path);
	http_args_free(hc->args, hc->nargs);
	free(hc->ctype);
	free(hc->accept);
	hc->path = hc->ctype = hc->accept = NULL;
	hc->args = NULL;
	hc->nargs = hc->args_alloc = 0;
	buf_release(&hc->body);
	hc->body_too_big = false;
	hc->body_deadline = 0;
	hc->throttle_s = 0;
	hc->in_request = false;
	hc->req = (struct http_req){0};
}

static void http_conn_free(struct http_conn *hc)
{
	struct http_server *s = hc->srv;
	http_conn_set_idle(hc, false);
	if (hc->prev)
		hc->prev->next = hc->next;
	else
		s->conns = hc->next;
	if (hc->next)
		hc->next->prev = hc->prev;
	if (hc->ws)
		http_ws_free(hc->ws);
	http_resp_release(hc);
	http_req_release(hc);
	free(hc->prebody);
	free(hc);
	http_server_unref(s);
}

/* ---- HTTP requests ------------------------------------------------------------------ */

static const struct http_route {
	const char *path;
	bool prefix; /* path itself or path + "/..." */
	void (*fn)(struct http_req *req);
	bool read; /* build data read outside /api/v2: auth_read_check() first */
} http_routes[] = {
	{"/api/v2", true, api_handle, false}, /* checks reads itself (JSON-RPC posts differ) */
	{"/change_hook", true, change_hook_handle, false},
	{"/badges", true, badges_handle, true}, /* slice "uimisc": badges.h */
	{"/feeds", true, feeds_handle, true},   /* slice "uimisc": feeds.h */
	/* slice "weblogin": auth.h */
	{"/auth", true, auth_handle, false},
	{.path = "/metrics", .fn = metrics_handle, .read = true},
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
		http_reply_text(hc, 404,
				"this is the kiln worker endpoint: connect with a WebSocket\n");
		return;
	}
	/* DNS rebinding (Host) and cross-site form posts to the JSON-RPC or a
	 * change hook (Origin, Sec-Fetch-Site): http-origin.h */
	enum http_origin_verdict v = http_ws_origin_verdict(hc, hc->req.method == HTTP_POST);
	if (v != HTTP_ORIGIN_OK) {
		http_reply_error(hc, 403, http_origin_verdict_str(v));
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(http_routes); i++) {
		const struct http_route *rt = &http_routes[i];
		size_t n = strlen(rt->path);
		if (strncmp(path, rt->path, n))
			continue;
		if (path[n] == '\0' || (rt->prefix && path[n] == '/')) {
			/* credentials are checked on the loop first (auth.h):
			 * then the request comes here again */
			if (auth_prepare(&hc->req))
				return;
			char why[256];
			int st = rt->read ? auth_read_check(&hc->req, why, sizeof(why)) : 0;
			if (st) {
				http_reply_error(hc, st, why);
				return;
			}
			rt->fn(&hc->req);
			if (!hc->resp.active && !hc->deferred) /* a handler bug must not hang */
				http_reply_error(hc, 500, "no response");
			return;
		}
	}
	if (!strcmp(path, "/ws")) {
		http_reply_error(hc, 400, "/ws needs a WebSocket upgrade");
		return;
	}
	/* the web UI's pages and assets, or its 404 (www.c) */
	www_handle(&hc->req);
	if (!hc->resp.active)
		http_reply_error(hc, 500, "no response");
}

/* ---- deferred answers (slice "authhard") ---- */

struct http_deferred *http_req_defer(struct http_req *req)
{
	struct http_conn *hc = req->conn;
	struct http_deferred *d = xmalloc(sizeof(*d));
	d->hc = hc;
	hc->deferred = d;
	hc->body_deadline = 0; /* the body is in: no read deadline while we work */
	return d;
}

struct http_req *http_deferred_req(struct http_deferred *d)
{
	if (!d->hc || d->hc->srv->stopping || d->hc->killed)
		return NULL;
	return &d->hc->req;
}

void http_deferred_end(struct http_deferred *d)
{
	struct http_conn *hc = d->hc;
	/* a deferral inside a deferral (a lookup, then a listing: issue 14)
	 * leaves the inner one in charge */
	if (hc && hc->deferred == d) {
		hc->deferred = NULL;
		if (!hc->resp.active && !hc->srv->stopping && !hc->killed)
			http_reply_error(hc, 500, "no response");
	}
	free(d);
}

void http_deferred_redispatch(struct http_deferred *d)
{
	struct http_conn *hc = d->hc;
	if (!hc || hc->deferred != d || hc->srv->stopping || hc->killed) {
		http_deferred_end(d);
		return;
	}
	hc->deferred = NULL;
	free(d);
	http_dispatch(hc);
}

int http_req_header(const struct http_req *req, const char *name, char *buf, size_t size)
{
	struct lws *wsi = req->conn->wsi;
	char key[128];
	int klen = snprintf(key, sizeof(key), "%s:", name);
	if (klen <= 0 || (size_t)klen >= sizeof(key) || size > INT_MAX || size == 0)
		return -E2BIG;
	int n;
	/* headers lws knows are not "custom" ones */
	enum lws_token_indexes tok = !strcmp(name, "authorization") ? WSI_TOKEN_HTTP_AUTHORIZATION
				     : !strcmp(name, "origin")      ? WSI_TOKEN_ORIGIN
				     : !strcmp(name, "host")        ? WSI_TOKEN_HOST
				     : !strcmp(name, "range")       ? WSI_TOKEN_HTTP_RANGE
				     : !strcmp(name, "accept-encoding")
					     ? WSI_TOKEN_HTTP_ACCEPT_ENCODING
				     : !strcmp(name, "if-none-match") ? WSI_TOKEN_HTTP_IF_NONE_MATCH
				     : !strcmp(name, "cookie")        ? WSI_TOKEN_HTTP_COOKIE
								      : WSI_TOKEN_COUNT;
	if (tok != WSI_TOKEN_COUNT) {
		n = lws_hdr_total_length(wsi, tok);
		if (n <= 0)
			return -ENOENT;
		if ((size_t)n >= size)
			return -E2BIG;
		return lws_hdr_copy(wsi, buf, (int)size, tok) < 0 ? -ENOENT : n;
	}
	n = lws_hdr_custom_length(wsi, key, klen);
	if (n < 0)
		return -ENOENT;
	if ((size_t)n >= size)
		return -E2BIG;
	return lws_hdr_custom_copy(wsi, buf, (int)size, key, klen) < 0 ? -ENOENT : n;
}

void http_req_peer(const struct http_req *req, char *buf, size_t size)
{
	if (!lws_get_peer_simple(req->conn->wsi, buf, size))
		snprintf(buf, size, "?");
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
	http_conn_set_idle(hc, false);
	hc->path = xstrndup(in ? in : "/", in ? inlen : 1);
	hc->ctype = http_hdr_dup(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE);
	hc->accept = http_hdr_dup(wsi, WSI_TOKEN_HTTP_ACCEPT);
	buf_init(&hc->body, KILN_MAX_HTTP_BODY);

	/* a first request read by http-listen.c brings its body along */
	_cleanup_free_ char *pre = TAKE_PTR(hc->prebody);
	size_t prelen = hc->prebody_len;
	if (!pre && s->adopt_body && lws_get_socket_fd(wsi) == s->adopt_fd) {
		pre = TAKE_PTR(s->adopt_body);
		prelen = s->adopt_body_len;
	}

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
	if (pre) {
		if (buf_add(&hc->body, pre, prelen) < 0) {
			http_reply_error(hc, 413, "request body too large");
			return 0;
		}
		req->body = hc->body.ptr;
		req->body_len = hc->body.len;
	}
	if (req->method == HTTP_POST) {
		char cl[32];
		long long v;
		int cln = lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH);
		if (cln > 0 && (str_to_i64(cl, &v) < 0 || v < 0 ||
				(unsigned long long)v > KILN_MAX_HTTP_BODY)) {
			/* lws discards the rest of the body, keep-alive survives */
			http_reply_error(hc, 413, "request body too large");
			return 0;
		}
		if ((cln > 0 && v == 0) ||
		    (cln <= 0 && !lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING))) {
			/* a length of 0 (what http-listen.c gives lws when it
			 * read the body itself: it is in pre), or no length and
			 * not chunked: there is no body to wait for, and lws
			 * would never call us again */
			http_dispatch(hc);
			return 0;
		}
		/* an absolute deadline: lws extends its own at every byte */
		hc->body_deadline = uv_now(s->m->loop) + KILN_HTTP_BODY_TIMEOUT_MS;
		return 0; /* wait for the body */
	}
	http_dispatch(hc);
	return 0;
}

static int http_on_body(struct http_conn *hc, const void *in, size_t len)
{
	if (!hc->in_request || hc->resp.active || hc->deferred)
		return 0;
	if (!hc->body_too_big && buf_add(&hc->body, in, len) < 0)
		hc->body_too_big = true;
	return 0;
}

static int http_on_body_done(struct http_conn *hc)
{
	/* deferred: dispatched already (lws reports the end of an empty body
	 * after the request itself) */
	if (!hc->in_request || hc->resp.active || hc->deferred)
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

/* ---- deadlines of lws-held requests --------------------------------------------------- */

static void http_conn_kill(struct http_conn *hc)
{
	if (hc->killed)
		return;
	hc->killed = true;
	/* lws owns the socket: it closes it on its next service */
	lws_set_timeout(hc->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void http_conn_set_idle(struct http_conn *hc, bool idle)
{
	if (hc->idle == idle)
		return;
	hc->idle = idle;
	if (idle)
		hc->srv->nidle[hc->workers]++;
	else
		hc->srv->nidle[hc->workers]--;
}

void http_conn_sweep(struct http_server *s, bool workers, uint64_t now)
{
	for (struct http_conn *hc = s->conns; hc; hc = hc->next) {
		if (hc->workers != workers || hc->ws || hc->killed)
			continue;
		if (hc->resp.active) {
			/* a client that stops reading its answer */
			if (!hc->last_write)
				hc->last_write = now;
			else if (now - hc->last_write >= KILN_HTTP_WRITE_STALL_MS)
				http_conn_kill(hc);
			continue;
		}
		hc->last_write = 0;
		if (hc->in_request && hc->body_deadline && now >= hc->body_deadline)
			http_conn_kill(hc);
	}
}

void http_adopt(struct http_server *s, struct lws_vhost *vh, int fd, const char *hdrs, size_t hlen,
		char *body, size_t blen)
{
	/* with a free header slot lws handles the request inside the adopt
	 * call (http_on_request takes the body from s); else later, from hc */
	s->adopt_body = body;
	s->adopt_body_len = blen;
	s->adopt_fd = fd;
	struct lws *wsi = lws_adopt_socket_vhost_readbuf(vh, fd, hdrs, hlen);
	if (s->adopt_body && wsi) {
		struct http_conn *hc = http_conn_get(wsi);
		hc->prebody = TAKE_PTR(s->adopt_body);
		hc->prebody_len = blen;
	}
	free(s->adopt_body);
	s->adopt_body = NULL;
	s->adopt_fd = -1;
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
		return http_ws_confirm_upgrade(http_conn_get(wsi), in);
	case LWS_CALLBACK_ESTABLISHED:
		if (!hc || !hc->ws)
			return -1;
		hc->ws->established = true;
		if (!hc->ws->closed_done && hc->ws->ops->opened)
			hc->ws->ops->opened(hc->ws->ud, hc->ws);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		return hc && hc->ws ? http_ws_on_receive(hc->ws, in, len) : -1;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return hc && hc->ws ? http_ws_on_writeable(hc->ws) : 0;
	case LWS_CALLBACK_CLOSED:
		if (hc && hc->ws) {
			http_ws_notify_closed(hc->ws);
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
 * life, all of it resident: master RSS with 10,000 idle loadgen workers was
 * 128 MB at 8 KiB, 206 MB at 16 KiB, 362 MB at 32 KiB (target 300 MB).
 * lws reads min(this, the context's pt_serv_buf_size) per POLLIN, so an
 * upload costs one recv and one loop turn per this many bytes: 16 KiB took
 * a 256 MiB upload's master CPU from 0.85 s (8 KiB) to 0.73 s, and from
 * 1.1 s at lws's default 4 KiB read.  Messages are reassembled in our own
 * capped buf.  tx_packet_size is set because 0 would limit sends to the rx
 * size. */
#define WORKER_RX_BUFFER HTTP_WORKER_READ
#define WORKER_TX_PACKET 65536
#define WORKER_SERV_BUF WORKER_RX_BUFFER /* one per context: the read size's other bound */

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
	return fsutil_write_atomic(path, tmp, text, strlen(text), 0644);
}

/* Workers are pinged after workers_keepalive.interval seconds of silence
 * (default 60) and dropped when nothing at all came back for its timeout
 * (default 180): a half-open TCP connection must not hold a build forever
 * (its build is then held for the re-attach grace, or ends RETRY).  Set from
 * the configuration when the server starts (lws keeps the pointer). */
static lws_retry_bo_t worker_idle_policy = {
	.secs_since_valid_ping = 60,
	.secs_since_valid_hangup = 180,
};

static void worker_idle_policy_set(const struct config *cfg)
{
	int ping = cfg->workers_keepalive_interval, hangup = cfg->workers_keepalive_timeout;
	worker_idle_policy.secs_since_valid_ping =
		(uint16_t)(ping > 0 ? ping : CONFIG_KEEPALIVE_INTERVAL_DEFAULT);
	worker_idle_policy.secs_since_valid_hangup =
		(uint16_t)(hangup > 0 ? hangup : CONFIG_KEEPALIVE_TIMEOUT_DEFAULT);
}

static struct lws_context *http_context_new(struct http_server *s, unsigned pool, unsigned serv_buf)
{
	struct lws_context_creation_info info;
	void *foreign[1] = {s->m->loop};

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
		       LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
	info.foreign_loops = foreign;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.user = s;
	/* room for a URI of KILN_MAX_HTTP_URI plus ordinary headers; the
	 * header block is capped at this size before lws sees it */
	info.max_http_header_data = (unsigned short)KILN_MAX_HTTP_HEADER;
	info.max_http_header_pool = pool;
	info.timeout_secs = 30;
	info.pt_serv_buf_size = serv_buf;
	return lws_create_context(&info);
}

/* Each listener has its own context (so its own header pool: a flood on
 * one never blocks the other) and no lws listening socket: http-listen.c
 * accepts and hands complete requests over. */
static struct lws_vhost *http_vhost_new(struct lws_context *ctx, const char *name,
					const struct lws_protocols *protocols,
					const lws_retry_bo_t *idle_policy)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	info.vhost_name = name;
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = protocols;
	info.keepalive_timeout = KILN_HTTP_KEEPALIVE_SECS;
	/* a keep-alive connection's next header block, from its first byte */
	info.timeout_secs_ah_idle = KILN_HTTP_KEEPALIVE_HEADER_SECS;
	info.retry_and_idle_policy = idle_policy;
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
	return lws_create_vhost(ctx, &info);
}

int http_server_start(struct master *m, const struct ws_conn_ops *worker_ops,
		      struct http_server **ret)
{
	struct http_server *s = xcalloc(1, sizeof(*s));
	int r;

	s->m = m;
	s->wops = worker_ops;
	s->refs = 1;
	atomic_init(&s->reply_mem_max, KILN_MAX_HTTP_REPLY_MEM);
	atomic_init(&s->reply_mem_peak, 0);

	lws_set_log_level(LLL_ERR | LLL_WARN, http_lws_log);
	s->ctx_http = http_context_new(s, KILN_HTTP_HEADER_POOL, 0);
	s->ctx_workers =
		s->ctx_http ? http_context_new(s, KILN_HTTP_HEADER_POOL, WORKER_SERV_BUF) : NULL;
	if (!s->ctx_workers) {
		r = log_error_errno(-ENOMEM, "cannot create the lws contexts");
		goto fail;
	}
	worker_idle_policy_set(m->cfg);
	s->vh_http = http_vhost_new(s->ctx_http, "http", http_protocols, NULL);
	s->vh_workers = s->vh_http ? http_vhost_new(s->ctx_workers, "workers",
						    http_worker_protocols, &worker_idle_policy)
				   : NULL;
	if (!s->vh_workers) {
		r = log_error_errno(-ENOMEM, "cannot create the lws vhosts");
		goto fail;
	}
	r = http_listen_open(s, "http", http_iface(m->cfg->http.host), m->cfg->http.port,
			     s->vh_http, false, &s->ln_http);
	if (r < 0) {
		log_error_errno(r, "cannot listen for HTTP on '%s:%d'",
				http_iface(m->cfg->http.host), m->cfg->http.port);
		goto fail;
	}
	r = http_listen_open(s, "workers", http_iface(m->cfg->workers.host), m->cfg->workers.port,
			     s->vh_workers, true, &s->ln_workers);
	if (r < 0) {
		log_error_errno(r, "cannot listen for workers on '%s:%d'",
				http_iface(m->cfg->workers.host), m->cfg->workers.port);
		goto fail;
	}
	s->http_port = http_listen_port(s->ln_http);
	s->workers_port = http_listen_port(s->ln_workers);

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
		if (s->ctx_http)
			lws_context_destroy(s->ctx_http);
		if (s->ctx_workers)
			lws_context_destroy(s->ctx_workers);
		return;
	}
	s->closing_handles = 0;
	uv_walk(t->loop, http_count_closing, s);
	if (s->closing_handles)
		return;
	uv_timer_stop(t);
	if (s->ctx_http)
		lws_context_destroy(s->ctx_http);
	if (s->ctx_workers)
		lws_context_destroy(s->ctx_workers);
	s->ctx_http = s->ctx_workers = NULL;
	uv_close((uv_handle_t *)t, http_stop_timer_closed);
}

void http_server_stop(struct http_server *s)
{
	if (!s || s->stopping)
		return;
	s->stopping = true;
	/* no new connections; unfinished requests are dropped */
	http_listen_close(s->ln_http);
	http_listen_close(s->ln_workers);
	s->ln_http = s->ln_workers = NULL;
	/* Nothing reaches the engine after this returns. */
	for (struct ws_conn *c = s->ws_list; c; c = c->next) {
		http_ws_notify_closed(c);
		http_ws_msg_free_all(c);
		c->closing = false;
		ws_conn_close(c, LWS_CLOSE_STATUS_GOINGAWAY, "master shutting down");
	}
	uv_timer_init(s->m->loop, &s->stop_timer);
	s->stop_timer.data = s;
	s->stop_started = uv_now(s->m->loop);
	uv_timer_start(&s->stop_timer, http_stop_tick, 0, HTTP_STOP_POLL_MS);
}
