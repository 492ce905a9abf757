/*
 * kiln-worker's WebSocket client (conn.h).  All lws specifics live here: the
 * protocol callback, the write rule (one lws_write per WRITEABLE callback from
 * an LWS_PRE-headroom buffer), fragment reassembly with a cap, and the
 * reconnect timer.  Whole messages go to worker.c.  The master's name is
 * resolved on libuv's thread pool before each attempt (lws would call
 * getaddrinfo on the loop), and lws is handed the numeric address.
 *
 * Every attempt ends in exactly one of: established, or conn_attempt_failed()
 * (logged, then the next address or the backoff timer).  lws reports a
 * failed attempt through several callbacks depending on where it failed
 * (CONNECTION_ERROR, CLOSED_CLIENT_HTTP, only WSI_DESTROY, or nothing when
 * lws_client_connect_via_info() returns NULL), so each of them is handled,
 * and our own deadline timer ends an attempt lws never reports on.
 */
#define LOG_SUBSYS "conn"
#include "worker/conn.h"

#include <assert.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "proto/sendq.h"
#include "worker/worker.h"
#include "worker/wsframe.h"

#define CONN_BACKOFF_FIRST 1.0
#define CONN_BACKOFF_FACTOR 1.5
#define CONN_BACKOFF_MAX 60.0
/* With several masters, a session shorter than this counts as a failed
 * attempt of its master (one that accepts, then drops the worker: the next
 * one is tried), and a longer one makes it the master each round starts at */
#define CONN_STABLE_MS 10000

struct conn {
	uv_loop_t *loop;
	struct lws_context *ctx;
	struct lws *wsi;     /* the live session, or NULL */
	struct lws *pending; /* the attempt being connected (when attempt_live), or NULL */
	bool attempt_live;   /* an attempt is under way: it has not ended yet */
	bool in_connect;     /* inside lws_client_connect_via_info() */
	uv_timer_t deadline; /* the attempt's handshake deadline */
	unsigned handshake_secs;
	int handles_open; /* retry + deadline, until conn_free's closes finish */
	struct worker *w; /* borrowed */
	struct conn_peer {
		char *host;     /* owned */
		char *hostport; /* owned: Host header */
		int port;
	} * m;                /* the masters listed (conn.h) */
	size_t nm;            /* how many */
	size_t cur;           /* the one being tried or connected to */
	size_t home;          /* where each round starts: the last session's */
	size_t tried;         /* masters that failed in this round */
	const char *host;     /* m[cur]'s, read by the resolver thread */
	const char *hostport; /* m[cur]'s */
	int port;             /* m[cur]'s */
	char *auth;           /* owned: "Basic base64(name:password)" */
	bool up;              /* established, worker told */
	uint64_t up_since;    /* uv_now() when it was established */
	bool attached;        /* a valid message arrived on this session */
	bool stopping;
	struct proto_sendq sendq; /* LWS_PRE headroom; no cap: backpressure bounds it */
	struct buf rx;
	bool rx_drop; /* the current message is over the cap */
	uv_timer_t retry;
	double delay;
	lws_retry_bo_t policy;
	conn_resolve_fn resolve;
	uv_work_t resolve_req;
	bool resolving; /* resolve_req is queued or running */
	int resolve_rc; /* written by the pool thread, read in its done callback */
	struct sockaddr_storage addrs[CONN_MAX_ADDRS];
	size_t naddrs, next_addr;       /* this attempt's addresses; the next to try */
	char numeric[INET6_ADDRSTRLEN]; /* the address being tried, as text, kept for lws */
	bool timer_closed;              /* conn_free's closes finished: free once not resolving */
	unsigned char keys[256];        /* masking keys for conn_msg_send's frames, 4 bytes each */
	size_t keys_left;               /* unused bytes at the end of keys */
};

static void conn_schedule(struct conn *c);
static void conn_on_next_addr(uv_timer_t *t);
static void conn_on_retry(uv_timer_t *t);

/* Makes master i the current one (never while a resolution runs). */
static void conn_use(struct conn *c, size_t i)
{
	assert(!c->resolving); /* the resolver thread reads c->host */
	c->cur = i;
	c->host = c->m[i].host;
	c->hostport = c->m[i].hostport;
	c->port = c->m[i].port;
}

/* The current master gave no session: the next one of the round on the
 * next loop turn, or, when each has failed, the backoff timer and a new
 * round from home. */
static void conn_failover(struct conn *c)
{
	if (c->stopping || c->up || uv_is_active((uv_handle_t *)&c->retry))
		return;
	if (++c->tried < c->nm) {
		conn_use(c, (c->cur + 1) % c->nm);
		log_info("trying the next master, %s", c->hostport);
		uv_timer_start(&c->retry, conn_on_retry, 0, 0);
		return;
	}
	c->tried = 0;
	conn_use(c, c->home);
	conn_schedule(c);
}

/* The connection lws calls back for: NULL from conn_free() on, because on a
 * foreign loop lws may still close wsis (and call back) after the struct conn
 * was freed.  One connection per process, as conn_dying_ctx below. */
static struct conn *conn_current;

int conn_send(struct conn *c, const void *data, size_t len)
{
	if (!c->up || !c->wsi)
		return -ENOTCONN;
	int r = proto_sendq_push(&c->sendq, data, len, 0);
	if (r < 0)
		return r;
	lws_callback_on_writable(c->wsi);
	worker_sendq_changed(c->w, c->sendq.queued);
	return 0;
}

/* A fresh masking key: RFC 6455 5.3 wants it unpredictable (for browsers'
 * scripts; kiln-worker runs none), so getrandom(2) 64 keys at a time, and
 * should that fail, lws's source and then the clock. */
static void conn_mask_key(struct conn *c, unsigned char key[4])
{
	if (c->keys_left < 4) {
		ssize_t n = getrandom(c->keys, sizeof(c->keys), GRND_NONBLOCK);
		if (n != (ssize_t)sizeof(c->keys) &&
		    lws_get_random(c->ctx, c->keys, sizeof(c->keys)) != sizeof(c->keys)) {
			struct timespec ts;
			(void)clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t x =
				(uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u ^ (uint64_t)ts.tv_sec;
			for (size_t i = 0; i < sizeof(c->keys); i++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				c->keys[i] = (unsigned char)x;
			}
		}
		c->keys_left = sizeof(c->keys);
	}
	c->keys_left -= 4;
	memcpy(key, c->keys + c->keys_left, 4);
}

void *conn_msg_new(struct conn *c, size_t cap, unsigned char **ret_payload)
{
	struct proto_sendq_msg *m = proto_sendq_msg_new(&c->sendq, WSFRAME_MAX_HEADER + cap);
	*ret_payload = proto_sendq_payload(&c->sendq, m) + WSFRAME_MAX_HEADER;
	return m;
}

void conn_msg_free(void *msg)
{
	free(msg);
}

int conn_msg_send(struct conn *c, void *msg, size_t len)
{
	struct proto_sendq_msg *m = msg;
	if (!c->up || !c->wsi) {
		free(m);
		return -ENOTCONN;
	}
	unsigned char *frame = proto_sendq_payload(&c->sendq, m);
	unsigned char *p = frame + WSFRAME_MAX_HEADER;
	size_t hl = wsframe_header_len(len);
	if (hl < WSFRAME_MAX_HEADER) {
		/* under 64 KiB: the shorter header, so the frame moves up to meet it */
		memmove(frame + hl, p, len);
		p = frame + hl;
	}
	unsigned char key[4] = {0, 0, 0, 0};
	if (len < WSFRAME_ZERO_KEY_MIN)
		conn_mask_key(c, key);
	(void)wsframe_header(frame, len, key);
	wsframe_mask(p, len, key);
	m->len = hl + len;
	int r = proto_sendq_push_msg(&c->sendq, m, PROTO_SENDQ_FRAMED);
	if (r < 0) {
		free(m);
		return r;
	}
	lws_callback_on_writable(c->wsi);
	worker_sendq_changed(c->w, c->sendq.queued);
	return 0;
}

void *conn_host_msg_new(void *ud, size_t cap, unsigned char **ret_payload)
{
	return conn_msg_new(ud, cap, ret_payload);
}

int conn_host_msg_send(void *ud, void *msg, size_t len)
{
	return conn_msg_send(ud, msg, len);
}

void conn_host_msg_free(void *ud, void *msg)
{
	(void)ud;
	conn_msg_free(msg);
}

int conn_host_send(void *ud, const void *data, size_t len)
{
	return conn_send(ud, data, len);
}

/* Ends the attempt under way (its failure was logged by the caller): on to
 * the next address of this resolution (next_addr) on the next loop turn, or
 * to the backoff timer.  lws may still call back about the attempt's wsi;
 * conn_is_attempt() ignores it from now on. */
static void conn_attempt_failed(struct conn *c, bool next_addr)
{
	c->attempt_live = false;
	c->pending = NULL;
	uv_timer_stop(&c->deadline);
	if (c->stopping || c->up)
		return;
	if (next_addr && c->next_addr < c->naddrs && !uv_is_active((uv_handle_t *)&c->retry)) {
		/* not from inside lws's callback: on the next loop turn */
		uv_timer_start(&c->retry, conn_on_next_addr, 0, 0);
		return;
	}
	conn_failover(c);
}

/* Whether a callback's wsi is the attempt under way.  lws may call back
 * inside lws_client_connect_via_info(), before it returned the wsi. */
static bool conn_is_attempt(struct conn *c, struct lws *wsi)
{
	if (!c->attempt_live || !wsi || wsi == c->wsi)
		return false;
	if (c->in_connect && !c->pending)
		c->pending = wsi;
	return wsi == c->pending;
}

static void conn_on_deadline(uv_timer_t *t)
{
	struct conn *c = t->data;
	if (c->stopping || !c->attempt_live)
		return;
	struct lws *wsi = c->pending;
	log_warn("master %s at %s did not answer within %u s; giving up on this attempt",
		 c->hostport, c->numeric, c->handshake_secs);
	conn_attempt_failed(c, true);
	if (wsi) /* closed on lws's next service; its callbacks are ignored */
		lws_set_timeout(wsi, PENDING_TIMEOUT_AWAITING_SERVER_RESPONSE, LWS_TO_KILL_ASYNC);
}

static void conn_lost(struct conn *c, const char *why)
{
	bool was_up = c->up;
	c->wsi = NULL;
	c->up = false;
	proto_sendq_release(&c->sendq);
	buf_reset(&c->rx);
	if (was_up) {
		log_warn("connection to master %s lost%s%s", c->hostport, why ? ": " : "",
			 why ? why : "");
		worker_disconnected(c->w);
	}
	if (!c->stopping) {
		bool stable = was_up && uv_now(c->loop) - c->up_since >= CONN_STABLE_MS;
		if (stable || c->nm == 1) { /* a new round, from the master of this session */
			c->home = c->cur;
			c->tried = 0;
			conn_use(c, c->home);
		} else if (++c->tried < c->nm) { /* it dropped us at once: the next one */
			conn_use(c, (c->cur + 1) % c->nm);
			log_info("the session was short; trying the next master, %s", c->hostport);
		} else {
			c->tried = 0;
			conn_use(c, c->home);
		}
		conn_schedule(c);
	}
}

static int conn_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			 size_t len)
{
	struct conn *c = lws_context_user(lws_get_context(wsi));
	if (!c || c != conn_current)
		return 0;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
		unsigned char **p = in, *end = *p + len;
		if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
						 (const unsigned char *)c->auth,
						 (int)strlen(c->auth), p, end))
			return -1;
		break;
	}
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (c->stopping || !conn_is_attempt(c, wsi)) {
			log_debug("late answer of an abandoned attempt closed");
			return -1;
		}
		c->attempt_live = false;
		c->pending = NULL;
		uv_timer_stop(&c->deadline);
		c->wsi = wsi;
		c->up = true;
		c->attached = false;
		buf_reset(&c->rx);
		c->rx_drop = false;
		c->up_since = uv_now(c->loop);
		log_info("connected to master %s", c->hostport);
		worker_connected(c->w);
		break;

	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
		if (!conn_is_attempt(c, wsi)) {
			if (wsi && wsi == c->wsi)
				conn_lost(c, in ? (const char *)in : "connection error");
			break;
		}
		int status = (int)lws_http_client_http_response(wsi);
		if (status == 401)
			log_error("master %s refused the worker's name or password (HTTP 401)",
				  c->hostport);
		else if (status)
			log_warn("cannot connect to master %s: HTTP %d%s%s", c->hostport, status,
				 in ? ": " : "", in ? (const char *)in : "");
		else
			log_warn("cannot connect to master %s at %s: %s", c->hostport, c->numeric,
				 in ? (const char *)in : "connection failed");
		/* another address only when this one gave no HTTP answer */
		conn_attempt_failed(c, !status);
		break;
	}
	case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
		/* lws's h1 role closed before the upgrade answer (its own timeout, a
		 * peer hang-up) without CONNECTION_ERROR */
		if (conn_is_attempt(c, wsi)) {
			log_warn("connection to master %s at %s closed before the upgrade was "
				 "answered",
				 c->hostport, c->numeric);
			conn_attempt_failed(c, true);
		}
		break;
	case LWS_CALLBACK_WSI_DESTROY:
		/* the last word on every wsi: whatever ended it unreported ends here */
		if (c->stopping)
			break;
		if (wsi && wsi == c->wsi) {
			conn_lost(c, "connection destroyed");
		} else if (conn_is_attempt(c, wsi)) {
			log_warn("connection to master %s at %s ended during the handshake",
				 c->hostport, c->numeric);
			conn_attempt_failed(c, true);
		}
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE: {
		if (wsi != c->wsi)
			break;
		if (lws_is_first_fragment(wsi)) {
			buf_reset(&c->rx);
			c->rx_drop = false;
		}
		if (!c->rx_drop && buf_add(&c->rx, in, len) < 0) {
			log_error("message from master over %u bytes; closing", KILN_MAX_WS_FRAME);
			lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
			return -1;
		}
		if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
			break;
		if (!lws_frame_is_binary(wsi)) {
			log_debug("text frame from master ignored");
			buf_reset(&c->rx);
			break;
		}
		int r = worker_handle_message(c->w, c->rx.ptr, c->rx.len);
		buf_reset(&c->rx);
		if (r < 0) {
			log_warn("malformed message from master dropped (%s)", err_str(r));
		} else if (!c->attached) {
			c->attached = true;
			c->delay = CONN_BACKOFF_FIRST;
		}
		break;
	}
	case LWS_CALLBACK_CLIENT_WRITEABLE: {
		if (wsi != c->wsi)
			break;
		struct proto_sendq_msg *m = proto_sendq_peek(&c->sendq);
		if (!m)
			break;
		/* a frame conn_msg_send() made goes out as it is (lws adds nothing) */
		enum lws_write_protocol wp =
			(m->flags & PROTO_SENDQ_FRAMED) ? LWS_WRITE_RAW : LWS_WRITE_BINARY;
		int n = lws_write(wsi, proto_sendq_payload(&c->sendq, m), m->len, wp);
		if (n < 0 || (size_t)n < m->len) {
			log_warn("write to master failed");
			return -1;
		}
		proto_sendq_shift(&c->sendq);
		if (!proto_sendq_empty(&c->sendq))
			lws_callback_on_writable(wsi);
		worker_sendq_changed(c->w, c->sendq.queued);
		break;
	}
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (wsi && wsi == c->wsi) {
			conn_lost(c, "closed");
		} else if (conn_is_attempt(c, wsi)) {
			log_warn("master %s at %s closed the connection during the handshake",
				 c->hostport, c->numeric);
			conn_attempt_failed(c, true);
		}
		break;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		log_info("master closed the connection");
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols conn_protocols[] = {
	{"kiln-worker", conn_callback, 0, 65536, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

int conn_resolve_getaddrinfo(const char *host, struct sockaddr_storage *ret, size_t max)
{
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int r = getaddrinfo(host, NULL, &hints, &res);
	if (r == EAI_SYSTEM)
		return errno ? -errno : -EIO;
	if (r == EAI_AGAIN)
		return -EAGAIN;
	if (r == EAI_MEMORY)
		return -ENOMEM;
	if (r != 0 || !res)
		return KILN_ENOTFOUND;
	size_t n = 0;
	for (struct addrinfo *a = res; a && n < max; a = a->ai_next) {
		if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) &&
		    a->ai_addrlen <= sizeof(*ret)) {
			memset(&ret[n], 0, sizeof(*ret));
			memcpy(&ret[n], a->ai_addr, a->ai_addrlen);
			n++;
		}
	}
	freeaddrinfo(res);
	return n ? (int)n : KILN_ENOTFOUND;
}

static void conn_peers_free(struct conn_peer *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].host);
		free(m[i].hostport);
	}
	free(m);
}

static void conn_free_now(struct conn *c)
{
	buf_release(&c->rx);
	free(c->auth);
	conn_peers_free(c->m, c->nm);
	free(c);
}

/* On a pool thread: only c->host is read (conn_use never runs while
 * resolving is set), only resolve_rc/addrs written. */
static void conn_resolve_work(uv_work_t *req)
{
	struct conn *c = req->data;
	c->resolve_rc = c->resolve(c->host, c->addrs, CONN_MAX_ADDRS);
}

/* Starts lws on the next resolved address; false if none is left. */
static bool conn_open_next(struct conn *c)
{
	while (c->next_addr < c->naddrs) {
		const struct sockaddr_storage *a = &c->addrs[c->next_addr++];
		int r = -EAFNOSUPPORT;
		if (a->ss_family == AF_INET)
			r = uv_ip4_name((const struct sockaddr_in *)a, c->numeric,
					sizeof(c->numeric));
		else if (a->ss_family == AF_INET6)
			r = uv_ip6_name((const struct sockaddr_in6 *)a, c->numeric,
					sizeof(c->numeric));
		if (r < 0)
			continue;
		struct lws_client_connect_info ci;
		memset(&ci, 0, sizeof(ci));
		ci.context = c->ctx;
		ci.address = c->numeric;
		ci.port = c->port;
		ci.path = "/";
		ci.host = c->hostport;
		ci.origin = c->hostport;
		ci.protocol = NULL; /* Buildbot's master speaks no subprotocol */
		ci.local_protocol_name = conn_protocols[0].name;
		ci.ietf_version_or_minus_one = -1;
		ci.retry_and_idle_policy = &c->policy;
		log_debug("connecting to ws://%s/ at %s", c->hostport, c->numeric);
		c->pending = NULL;
		c->attempt_live = true;
		c->in_connect = true;
		struct lws *wsi = lws_client_connect_via_info(&ci);
		c->in_connect = false;
		if (!c->attempt_live) /* it failed inside the call, and was handled there */
			return true;
		if (!wsi) {
			log_warn("cannot connect to master %s at %s: lws could not start the "
				 "connection",
				 c->hostport, c->numeric);
			conn_attempt_failed(c, true);
			return true;
		}
		c->pending = wsi;
		uv_timer_start(&c->deadline, conn_on_deadline, (uint64_t)c->handshake_secs * 1000,
			       0);
		return true;
	}
	return false;
}

static void conn_resolve_done(uv_work_t *req, int status)
{
	struct conn *c = req->data;
	c->resolving = false;
	if (c->stopping) {
		if (c->timer_closed)
			conn_free_now(c);
		return;
	}
	int r = status < 0 ? status : c->resolve_rc;
	if (r < 0) {
		log_warn("cannot resolve master '%s': %s", c->host,
			 status < 0 ? uv_strerror(status) : err_str(r));
		conn_failover(c);
		return;
	}
	c->naddrs = (size_t)r < CONN_MAX_ADDRS ? (size_t)r : CONN_MAX_ADDRS;
	c->next_addr = 0;
	if (!conn_open_next(c))
		conn_failover(c);
}

static void conn_connect(struct conn *c)
{
	if (c->resolving)
		return;
	c->resolve_req.data = c;
	int r = uv_queue_work(c->loop, &c->resolve_req, conn_resolve_work, conn_resolve_done);
	if (r < 0) {
		log_warn("cannot resolve master '%s': %s", c->host, uv_strerror(r));
		conn_schedule(c);
		return;
	}
	c->resolving = true;
}

static void conn_on_next_addr(uv_timer_t *t)
{
	struct conn *c = t->data;
	if (!c->stopping && !c->up && !conn_open_next(c))
		conn_failover(c);
}

static void conn_on_retry(uv_timer_t *t)
{
	struct conn *c = t->data;
	if (!c->stopping && !c->up)
		conn_connect(c);
}

static void conn_schedule(struct conn *c)
{
	if (c->stopping || uv_is_active((uv_handle_t *)&c->retry))
		return;
	double d = c->delay;
	d += d * 0.2 * ((double)(rand() % 1000) / 1000.0); /* jitter: spread reconnect storms */
	c->delay *= CONN_BACKOFF_FACTOR;
	if (c->delay > CONN_BACKOFF_MAX)
		c->delay = CONN_BACKOFF_MAX;
	/* slice "reattach": while it holds commands for a master's grace the
	 * worker tries at least every 5 s, to be back before the grace ends */
	if (c->w && c->w->resync && d > 5.0)
		d = 5.0;
	log_info("reconnecting in %.1f s", d);
	uv_timer_start(&c->retry, conn_on_retry, (uint64_t)(d * 1000), 0);
}

static void conn_lws_log(int level, const char *line)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (level & LLL_ERR)
		log_warn("lws: %.*s", (int)n, line);
	else
		log_debug("lws: %.*s", (int)n, line);
}

int conn_parse_master(const char *s, char **ret_host, int *ret_port)
{
	if (!s)
		return -EINVAL;
	if (!strncmp(s, "ws://", 5))
		s += 5;
	else if (strstr(s, "://"))
		return -EPROTONOSUPPORT;
	const char *end = s + strcspn(s, "/");
	const char *colon;
	const char *hs = s, *he;
	if (*s == '[') {
		const char *rb = memchr(s, ']', (size_t)(end - s));
		if (!rb || rb[1] != ':')
			return -EINVAL;
		hs = s + 1;
		he = rb;
		colon = rb + 1;
	} else {
		colon = NULL;
		for (const char *p = s; p < end; p++)
			if (*p == ':')
				colon = p;
		if (!colon)
			return -EINVAL;
		he = colon;
	}
	if (he == hs)
		return -EINVAL;
	unsigned long long port;
	if (str_to_u64((struct str){colon + 1, (size_t)(end - colon - 1)}, &port) < 0 ||
	    port == 0 || port > 65535)
		return -EINVAL;
	*ret_host = xstrndup(hs, (size_t)(he - hs));
	*ret_port = (int)port;
	return 0;
}

void conn_masters_release(struct conn_master *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].host);
		m[i].host = NULL;
	}
}

int conn_parse_master_list(const char *s, struct conn_master *ret, size_t max, size_t *ret_bad)
{
	static const char sep[] = ", \t\r\n";
	size_t n = 0;
	int r = 0;
	while (s && *(s += strspn(s, sep))) {
		size_t len = strcspn(s, sep);
		_cleanup_free_ char *one = xstrndup(s, len);
		s += len;
		if (n == max) {
			r = -E2BIG;
			break;
		}
		if (conn_parse_master(one, &ret[n].host, &ret[n].port) < 0) {
			r = -EINVAL;
			break;
		}
		n++;
	}
	if (r == 0 && n == 0)
		r = -EINVAL;
	if (r < 0) {
		if (ret_bad)
			*ret_bad = n;
		conn_masters_release(ret, n);
		return r;
	}
	return (int)n;
}

int conn_new(uv_loop_t *loop, const struct conn_opts *o, struct worker *w, struct conn **ret)
{
	const struct conn_master one = {(char *)o->host, o->port};
	const struct conn_master *ms = o->masters ? o->masters : &one;
	size_t nms = o->masters ? o->nmasters : 1;
	if (nms == 0 || nms > CONN_MAX_MASTERS)
		return -EINVAL;
	_cleanup_free_ char *cred = xasprintf("%s:%s", o->name, o->password);
	size_t b64len = strlen(cred) * 4 / 3 + 8;
	_cleanup_free_ char *b64 = xmalloc(b64len);
	if (lws_b64_encode_string(cred, (int)strlen(cred), b64, (int)b64len) < 0)
		return -EINVAL;
	struct conn *c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->w = w;
	c->m = xcalloc(nms, sizeof(*c->m));
	c->nm = nms;
	for (size_t i = 0; i < nms; i++) {
		const char *h = ms[i].host;
		c->m[i].host = xstrdup(h);
		c->m[i].port = ms[i].port;
		c->m[i].hostport = strchr(h, ':') ? xasprintf("[%s]:%d", h, ms[i].port)
						  : xasprintf("%s:%d", h, ms[i].port);
	}
	conn_use(c, 0);
	c->auth = xasprintf("Basic %s", b64);
	buf_init(&c->rx, KILN_MAX_WS_FRAME);
	proto_sendq_init(&c->sendq, SIZE_MAX, LWS_PRE);
	c->delay = CONN_BACKOFF_FIRST;
	c->policy.secs_since_valid_ping = (uint16_t)(o->ping_secs ? o->ping_secs : 30);
	c->policy.secs_since_valid_hangup = (uint16_t)(o->hangup_secs ? o->hangup_secs : 90);
	c->resolve = o->resolve ? o->resolve : conn_resolve_getaddrinfo;
	c->handshake_secs = o->handshake_secs ? o->handshake_secs : KILN_WORKER_HANDSHAKE_SECS;

	lws_set_log_level(LLL_ERR | LLL_WARN, conn_lws_log);
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	void *foreign[1] = {loop};
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = conn_protocols;
	info.options = LWS_SERVER_OPTION_LIBUV;
	info.foreign_loops = foreign;
	info.user = c;
	/* lws's own wait for the upgrade answer ends after ours, which logs it */
	info.timeout_secs = c->handshake_secs + 5;
	info.gid = (gid_t)-1;
	info.uid = (uid_t)-1;
	c->ctx = lws_create_context(&info);
	if (!c->ctx) {
		conn_free_now(c);
		return -ENOMEM;
	}
	uv_timer_init(loop, &c->retry);
	c->retry.data = c;
	uv_timer_init(loop, &c->deadline);
	c->deadline.data = c;
	c->handles_open = 2;
	conn_current = c;
	conn_connect(c);
	*ret = c;
	return 0;
}

/* a context whose destroy was started on the loop; finished by conn_finish() */
static struct lws_context *conn_dying_ctx;

void conn_finish(void)
{
	if (conn_dying_ctx)
		lws_context_destroy(conn_dying_ctx);
	conn_dying_ctx = NULL;
}

static void conn_on_timer_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	if (--c->handles_open > 0)
		return;
	c->timer_closed = true;
	if (!c->resolving)
		conn_free_now(c);
}

void conn_free(struct conn *c)
{
	if (!c)
		return;
	c->stopping = true;
	uv_timer_stop(&c->retry);
	uv_timer_stop(&c->deadline);
	c->attempt_live = false;
	c->pending = NULL;
	if (c->resolving)
		(void)uv_cancel((uv_req_t *)&c->resolve_req); /* -EBUSY if running: wait */
	/* the worker was told already or is being freed; no callbacks into it now */
	c->up = false;
	c->wsi = NULL;
	proto_sendq_release(&c->sendq);
	lws_context_destroy(c->ctx);
	conn_current = NULL;
	conn_dying_ctx = c->ctx;
	c->ctx = NULL;
	uv_close((uv_handle_t *)&c->retry, conn_on_timer_closed);
	uv_close((uv_handle_t *)&c->deadline, conn_on_timer_closed);
}
