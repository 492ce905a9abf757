/*
 * The master's own listening sockets (http-int.h): accept on the libuv
 * loop, read each new connection's request (header block, then a
 * Content-Length body) into a capped buffer under absolute deadlines, and
 * only then hand the socket and those bytes to lws.  Silent, slow or
 * oversized requests therefore never hold an lws header slot; a per-address
 * cap evicts an address's oldest unfinished request, and at the
 * file-descriptor limit accepting pauses (logged once) instead of spinning.
 */
#define LOG_SUBSYS "http"

#include "master/http-int.h"
#include "master/master.h"

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* How often deadlines are checked, accepting is retried at the fd limit,
 * and refusals are summed up in the log. */
#define HTTP_LISTEN_TICK_MS 250
#define HTTP_LISTEN_SUMMARY_MS 60000
/* A refused connection's unread input is drained this long before the
 * close, so the refusal is not lost to a reset. */
#define HTTP_LISTEN_DRAIN_MS 2000

enum http_pending_state { PEND_HEADERS, PEND_BODY, PEND_DRAIN };

struct http_pending {
	struct http_listener *ln;
	uv_poll_t poll;
	int fd;
	struct sockaddr_storage peer;
	uint64_t deadline;
	enum http_pending_state state;
	struct buf in;   /* header block, then the body (KILN_MAX_HTTP_HEADER + body) */
	size_t hdr_end;  /* bytes of the header block (with its blank line) */
	size_t body_len; /* Content-Length */
	bool upgrade;    /* an Upgrade header */
	struct http_pending *prev, *next; /* ln->pending, oldest first */
};

struct http_listener {
	struct http_server *srv;
	struct lws_vhost *vh;
	const char *name; /* "http" or "workers" */
	bool workers;
	int fd;
	int port;
	uv_poll_t poll;
	uv_timer_t tick;
	bool polling;
	bool at_fd_limit;
	bool fd_limit_logged; /* this episode was logged */
	uint64_t fd_limit_last_log;
	bool closing;
	unsigned open_handles;
	struct http_pending *pending, *pending_tail;
	size_t npending;
	size_t held; /* bytes buffered by pending connections */
	/* counts for the next summary line */
	uint64_t next_summary;
	unsigned long n_evicted, n_expired, n_refused, n_fd_limit;
};

static uint64_t http_listen_now(const struct http_listener *ln)
{
	return uv_now(ln->srv->m->loop);
}

static bool http_listen_same_addr(const struct sockaddr_storage *a,
				  const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)b)->sin6_addr,
			       sizeof(struct in6_addr));
	return true;
}

static void http_listen_unref(struct http_listener *ln)
{
	if (--ln->open_handles)
		return;
	struct http_server *s = ln->srv;
	free(ln);
	http_server_unref(s);
}

static void http_listen_handle_closed(uv_handle_t *h)
{
	http_listen_unref(h->data);
}

/* ---- pending connections ------------------------------------------------------------- */

static void http_pending_closed(uv_handle_t *h)
{
	struct http_pending *p = h->data;
	struct http_listener *ln = p->ln;
	buf_release(&p->in);
	free(p);
	http_listen_unref(ln);
}

static void http_pending_unlink(struct http_pending *p)
{
	struct http_listener *ln = p->ln;
	if (p->prev)
		p->prev->next = p->next;
	else
		ln->pending = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		ln->pending_tail = p->prev;
	p->prev = p->next = NULL;
	ln->npending--;
	ln->held -= p->in.cap;
}

/* Closes the connection (close_fd: we still own the socket). */
static void http_pending_free(struct http_pending *p, bool close_fd)
{
	http_pending_unlink(p);
	uv_close((uv_handle_t *)&p->poll, http_pending_closed);
	if (close_fd)
		close(p->fd);
}

static void http_pending_on_io(uv_poll_t *h, int status, int events);

/* Answers a small error directly and drains what the client still sends
 * for a moment, so the answer is not lost to a reset. */
static void http_pending_refuse(struct http_pending *p, int status, const char *reason,
				const char *msg)
{
	char out[512];
	int body = (int)strlen(msg) + 13;
	int n = snprintf(out, sizeof(out),
			 "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
			 "content-length: %d\r\nconnection: close\r\n\r\n{\"error\": \"%s\"}",
			 status, reason, body, msg);
	p->ln->n_refused++;
	if (n > 0 && (size_t)n < sizeof(out)) {
		ssize_t w = send(p->fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w; /* a client that cannot take 200 bytes gets the close alone */
	}
	if (shutdown(p->fd, SHUT_WR) < 0) {
		http_pending_free(p, true);
		return;
	}
	p->state = PEND_DRAIN;
	p->deadline = http_listen_now(p->ln) + HTTP_LISTEN_DRAIN_MS;
	p->ln->held -= p->in.cap;
	buf_release(&p->in);
	buf_init(&p->in, 4096);
	if (uv_poll_start(&p->poll, UV_READABLE, http_pending_on_io) < 0)
		http_pending_free(p, true);
}

/* Case-insensitive header name match at line start. */
static bool http_pending_hdr_is(const char *line, size_t len, const char *name, size_t *ret_off)
{
	size_t n = strlen(name);
	if (len <= n || strncasecmp(line, name, n) || line[n] != ':')
		return false;
	size_t off = n + 1;
	while (off < len && (line[off] == ' ' || line[off] == '\t'))
		off++;
	*ret_off = off;
	return true;
}

/* Counts the query arguments of a request target the way the request
 * intake will ('&'-separated pieces). */
static size_t http_pending_nargs(const char *target, size_t len)
{
	const char *q = memchr(target, '?', len);
	if (!q)
		return 0;
	size_t n = 1;
	for (const char *c = q + 1; c < target + len; c++)
		if (*c == '&' || *c == ';')
			n++;
	return n;
}

/* The header block is in: checks it.  Returns 1 when the request is
 * complete (hand it over), 0 when a body follows, -1 after a refusal. */
static int http_pending_headers_done(struct http_pending *p)
{
	const char *h = p->in.ptr;
	const char *end = h + p->hdr_end;
	const char *eol = memchr(h, '\n', p->hdr_end);
	size_t nhdr = 0;
	bool has_cl = false, has_te = false, upgrade = false, expect = false;
	unsigned long long cl = 0;

	/* request line: METHOD SP TARGET SP HTTP/x.y */
	const char *sp1 = memchr(h, ' ', (size_t)(eol - h));
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7)) {
		http_pending_refuse(p, 400, "Bad Request", "malformed request line");
		return -1;
	}
	if (http_pending_nargs(sp1 + 1, (size_t)(sp2 - sp1 - 1)) > KILN_MAX_HTTP_QUERY_ARGS) {
		http_pending_refuse(p, 400, "Bad Request", "too many query arguments");
		return -1;
	}
	for (const char *line = eol + 1; line < end; line = eol + 1) {
		eol = memchr(line, '\n', (size_t)(end - line));
		size_t len = (size_t)(eol - line);
		if (len && line[len - 1] == '\r')
			len--;
		if (!len)
			break;
		if (++nhdr > KILN_MAX_HTTP_HEADERS) {
			http_pending_refuse(p, 431, "Request Header Fields Too Large",
					    "too many header lines");
			return -1;
		}
		size_t off;
		if (http_pending_hdr_is(line, len, "content-length", &off)) {
			char num[24];
			size_t vl = len - off;
			while (vl && (line[off + vl - 1] == ' ' || line[off + vl - 1] == '\t'))
				vl--;
			long long v;
			if (has_cl || vl == 0 || vl >= sizeof(num)) {
				http_pending_refuse(p, 400, "Bad Request", "bad content-length");
				return -1;
			}
			memcpy(num, line + off, vl);
			num[vl] = '\0';
			if (str_to_i64(num, &v) < 0 || v < 0) {
				http_pending_refuse(p, 400, "Bad Request", "bad content-length");
				return -1;
			}
			has_cl = true;
			cl = (unsigned long long)v;
		} else if (http_pending_hdr_is(line, len, "transfer-encoding", &off)) {
			has_te = true;
		} else if (http_pending_hdr_is(line, len, "upgrade", &off)) {
			upgrade = true;
		} else if (http_pending_hdr_is(line, len, "expect", &off)) {
			expect = true;
		}
	}
	if (has_cl && has_te) {
		http_pending_refuse(p, 400, "Bad Request",
				    "both content-length and transfer-encoding");
		return -1;
	}
	if (has_te) {
		http_pending_refuse(p, 411, "Length Required",
				    "chunked request bodies are not accepted: send content-length");
		return -1;
	}
	if (cl > KILN_MAX_HTTP_BODY) {
		http_pending_refuse(p, 413, "Payload Too Large", "request body too large");
		return -1;
	}
	p->upgrade = upgrade;
	if (upgrade || cl == 0)
		return 1;
	p->body_len = (size_t)cl;
	p->state = PEND_BODY;
	/* room for the body and the head of a pipelined request */
	p->in.max = p->hdr_end + p->body_len + KILN_MAX_HTTP_HEADER;
	p->deadline = http_listen_now(p->ln) + KILN_HTTP_BODY_TIMEOUT_MS;
	if (expect && p->in.len == p->hdr_end) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		ssize_t w = send(p->fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w; /* the client sends the body after its own wait anyway */
	}
	return 0;
}

/* The address of a pending connection, "addr:port" (IPv4 shown as such on
 * a dual-stack socket), for logs. */
static void http_pending_peer_str(const struct http_pending *p, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (p->peer.ss_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)&p->peer;
		inet_ntop(AF_INET, &in4->sin_addr, a, sizeof(a));
		port = ntohs(in4->sin_port);
	} else if (p->peer.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&p->peer;
		if (!inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a)))
			snprintf(a, sizeof(a), "?");
		port = ntohs(in6->sin6_port);
	}
	const char *shown = a;
	if (!strncmp(a, "::ffff:", 7) && strchr(a, '.'))
		shown = a + 7;
	snprintf(buf, size, "%s:%d", shown, port);
}

/* A browser's /ws upgrade (http listener): its request target is /ws. */
static bool http_pending_is_ws(const struct http_pending *p)
{
	const char *h = p->in.ptr;
	const char *sp1 = memchr(h, ' ', p->hdr_end);
	if (!p->upgrade || p->ln->workers || !sp1)
		return false;
	size_t left = p->hdr_end - (size_t)(sp1 + 1 - h);
	return left > 3 && !memcmp(sp1 + 1, "/ws", 3) &&
	       (sp1[4] == ' ' || sp1[4] == '?' || sp1[4] == '#');
}

/* The request is complete: the socket and its bytes go to lws.  lws 4.1.6
 * spins when an adopted read buffer holds a body, so lws gets the header
 * block with "Content-Length: 0" (and without Expect, answered already) and
 * the body reaches the request through http_adopt(). */
static void http_pending_adopt(struct http_pending *p)
{
	struct http_listener *ln = p->ln;
	const char *h = p->in.ptr;
	size_t hdr_end = p->hdr_end;
	struct buf hdrs;

	buf_init(&hdrs, p->in.len + 1);
	for (size_t off = 0; off < hdr_end;) {
		const char *eol = memchr(h + off, '\n', hdr_end - off);
		size_t len = (size_t)(eol + 1 - (h + off)), skip;
		if (off && http_pending_hdr_is(h + off, len, "content-length", &skip)) {
			/* an explicit 0, not none: a POST without a length is
			 * read by lws up to the close, so the next request on the
			 * connection would be taken for its body */
			if (buf_add(&hdrs, "Content-Length: 0\r\n", 19) < 0)
				break;
		} else if (!(off && http_pending_hdr_is(h + off, len, "expect", &skip)) &&
			   buf_add(&hdrs, h + off, len) < 0) {
			break;
		}
		off += len;
	}
	/* pipelined bytes after the body are the next request */
	size_t used = hdr_end + p->body_len;
	if (buf_add(&hdrs, h + used, p->in.len - used) < 0 || buf_error(&hdrs) < 0) {
		buf_release(&hdrs);
		http_pending_free(p, true);
		return;
	}
	char *body = NULL;
	if (p->body_len) {
		body = xmalloc(p->body_len + 1);
		memcpy(body, h + hdr_end, p->body_len);
		body[p->body_len] = '\0';
	}
	int fd = p->fd;
	bool ws = http_pending_is_ws(p);
	char peer[INET6_ADDRSTRLEN + 8];
	if (ws)
		http_pending_peer_str(p, peer, sizeof(peer));
	http_pending_unlink(p);
	/* our poll handle lets go of the fd before lws (or the relay) polls it */
	uv_close((uv_handle_t *)&p->poll, http_pending_closed);
	if (ws) {
		/* lws 4.1.6 takes unmasked client frames: the relay of
		 * http-wsguard.c checks them (the bytes after the header block
		 * are frames), lws gets the header block from its end */
		size_t extra = p->in.len - hdr_end;
		int lfd = -1;
		int r = http_wsguard_open(ln->srv, fd, peer, h + hdr_end, extra, &lfd);
		if (r < 0) {
			log_debug("/ws relay for %s: %s", peer, strerror(-r));
			close(fd);
			buf_release(&hdrs);
			free(body);
			return;
		}
		fd = lfd;
		hdrs.len -= extra;
	}
	http_adopt(ln->srv, ln->vh, fd, hdrs.ptr, hdrs.len, body, p->body_len);
	buf_release(&hdrs);
}

static int http_pending_read(struct http_pending *p)
{
	struct http_listener *ln = p->ln;
	char tmp[16384];

	for (int i = 0; i < 8; i++) {
		ssize_t n = recv(p->fd, tmp, sizeof(tmp), 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		if (p->state == PEND_DRAIN)
			continue;
		size_t before = p->in.cap;
		if (buf_add(&p->in, tmp, (size_t)n) < 0) {
			ln->held -= before;
			buf_release(&p->in);
			buf_init(&p->in, 4096);
			if (p->state == PEND_HEADERS)
				http_pending_refuse(p, 431, "Request Header Fields Too Large",
						    "request header block too large");
			else
				http_pending_refuse(p, 413, "Payload Too Large",
						    "request body too large");
			return 1;
		}
		ln->held += p->in.cap - before;
		if (ln->held > KILN_MAX_HTTP_PENDING_MEM) {
			http_pending_refuse(p, 503, "Service Unavailable", "server busy");
			return 1;
		}
		if (p->state == PEND_HEADERS) {
			/* the blank line may straddle reads: look a little back */
			size_t from = p->in.len - (size_t)n;
			from = from > 3 ? from - 3 : 0;
			const char *e = NULL;
			for (size_t k = from; k + 4 <= p->in.len; k++)
				if (!memcmp(p->in.ptr + k, "\r\n\r\n", 4)) {
					e = p->in.ptr + k + 4;
					break;
				}
			if (!e)
				continue;
			p->hdr_end = (size_t)(e - p->in.ptr);
			int r = http_pending_headers_done(p);
			if (r < 0)
				return 1;
			if (r > 0) {
				http_pending_adopt(p);
				return 1;
			}
		}
		if (p->state == PEND_BODY && p->in.len >= p->hdr_end + p->body_len) {
			http_pending_adopt(p);
			return 1;
		}
	}
	return 0;
}

static void http_pending_on_io(uv_poll_t *h, int status, int events)
{
	struct http_pending *p = h->data;
	(void)events;
	if (status < 0) {
		http_pending_free(p, true);
		return;
	}
	if (http_pending_read(p) < 0)
		http_pending_free(p, true);
}

/* ---- accepting ------------------------------------------------------------------------ */

/* The per-address cap: the address's oldest unfinished request goes, so a
 * newcomer from a busy address (a NAT, a probe beside an attacker) gets in. */
static void http_listen_cap_addr(struct http_listener *ln, const struct sockaddr_storage *peer)
{
	struct http_pending *oldest = NULL;
	size_t n = 0;
	for (struct http_pending *p = ln->pending; p; p = p->next)
		if (http_listen_same_addr(&p->peer, peer)) {
			if (!oldest)
				oldest = p;
			n++;
		}
	if (n >= KILN_MAX_HTTP_PENDING_PER_ADDR && oldest) {
		ln->n_evicted++;
		http_pending_free(oldest, true);
	}
	if (ln->npending >= KILN_MAX_HTTP_PENDING && ln->pending) {
		ln->n_evicted++;
		http_pending_free(ln->pending, true);
	}
}

static void http_listen_take(struct http_listener *ln, int fd, const struct sockaddr_storage *peer)
{
	http_listen_cap_addr(ln, peer);
	struct http_pending *p = xcalloc(1, sizeof(*p));
	p->ln = ln;
	p->fd = fd;
	p->peer = *peer;
	p->state = PEND_HEADERS;
	p->deadline = http_listen_now(ln) + KILN_HTTP_HEADER_TIMEOUT_MS;
	buf_init(&p->in, KILN_MAX_HTTP_HEADER);
	if (uv_poll_init_socket(ln->srv->m->loop, &p->poll, fd) < 0) {
		close(fd);
		free(p);
		return;
	}
	p->poll.data = p;
	ln->open_handles++;
	p->prev = ln->pending_tail;
	if (ln->pending_tail)
		ln->pending_tail->next = p;
	else
		ln->pending = p;
	ln->pending_tail = p;
	ln->npending++;
	if (uv_poll_start(&p->poll, UV_READABLE, http_pending_on_io) < 0) {
		http_pending_free(p, true);
		return;
	}
	/* A client that sent its request with the handshake (curl, a probe) is
	 * served now: waiting for the poll would let the rest of this accept
	 * batch, from a flooding neighbour on the same address, evict it
	 * before a single byte of it was read. */
	if (http_pending_read(p) < 0)
		http_pending_free(p, true);
}

static void http_listen_on_accept(uv_poll_t *h, int status, int events);

static void http_listen_pause(struct http_listener *ln)
{
	if (ln->polling) {
		uv_poll_stop(&ln->poll);
		ln->polling = false;
	}
	if (!ln->at_fd_limit) {
		ln->n_fd_limit++;
		uint64_t now = http_listen_now(ln);
		ln->at_fd_limit = true;
		/* once, and at most once a minute when the limit comes and goes */
		ln->fd_limit_logged = !ln->fd_limit_last_log ||
				      now - ln->fd_limit_last_log >= HTTP_LISTEN_SUMMARY_MS;
		if (!ln->fd_limit_logged)
			return;
		ln->fd_limit_last_log = now;
		log_warn("%s listener: at the file-descriptor limit, not accepting until "
			 "descriptors free up",
			 ln->name);
	}
}

/* Accepts a bounded batch; at the fd limit accepting pauses until the tick
 * finds a descriptor free again. */
static void http_listen_accept(struct http_listener *ln)
{
	for (int i = 0; i < KILN_HTTP_ACCEPT_BATCH; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		memset(&peer, 0, sizeof(peer));
		int fd = accept4(ln->fd, (struct sockaddr *)&peer, &plen,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				http_listen_pause(ln);
				return;
			}
			break; /* EAGAIN, or an error of that one connection */
		}
		/* Answers go out as a header write then body writes: with Nagle
		 * on, every answer after the first on a kept-alive connection
		 * waited for the client's delayed ACK (~40 ms per request). */
		if (peer.ss_family == AF_INET || peer.ss_family == AF_INET6)
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
		http_listen_take(ln, fd, &peer);
	}
	if (ln->at_fd_limit) {
		ln->at_fd_limit = false;
		if (ln->fd_limit_logged)
			log_info("%s listener: accepting again", ln->name);
	}
	if (!ln->polling && !ln->closing &&
	    uv_poll_start(&ln->poll, UV_READABLE, http_listen_on_accept) == 0)
		ln->polling = true;
}

static void http_listen_on_accept(uv_poll_t *h, int status, int events)
{
	(void)status;
	(void)events;
	http_listen_accept(h->data);
}

static void http_listen_summary(struct http_listener *ln, uint64_t now)
{
	if (now < ln->next_summary)
		return;
	ln->next_summary = now + HTTP_LISTEN_SUMMARY_MS;
	if (!ln->n_evicted && !ln->n_expired && !ln->n_refused && !ln->n_fd_limit)
		return;
	log_warn("%s listener, last minute: %lu unfinished requests timed out, %lu evicted "
		 "(per-address or total cap), %lu refused, %lu times at the fd limit",
		 ln->name, ln->n_expired, ln->n_evicted, ln->n_refused, ln->n_fd_limit);
	ln->n_evicted = ln->n_expired = ln->n_refused = ln->n_fd_limit = 0;
}

static void http_listen_on_tick(uv_timer_t *t)
{
	struct http_listener *ln = t->data;
	uint64_t now = http_listen_now(ln);

	for (struct http_pending *p = ln->pending, *next; p; p = next) {
		next = p->next;
		if (now < p->deadline)
			continue;
		if (p->state == PEND_DRAIN) {
			http_pending_free(p, true);
			continue;
		}
		ln->n_expired++;
		if (p->in.len)
			http_pending_refuse(p, 408, "Request Timeout", "request too slow");
		else
			http_pending_free(p, true);
	}
	http_conn_sweep(ln->srv, ln->workers, now);
	if (ln->at_fd_limit)
		http_listen_accept(ln);
	http_listen_summary(ln, now);
}

/* ---- open / close ---------------------------------------------------------------------- */

/* Binds iface (an address, or a name resolved once at start: the master
 * blocks nowhere else on it) and port (0: any).  "::" is dual-stack. */
static int http_listen_socket(const char *iface, int port, int *ret_fd, int *ret_port)
{
	struct addrinfo hints, *ai = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	char serv[16];
	snprintf(serv, sizeof(serv), "%d", port);
	int g = getaddrinfo(iface, serv, &hints, &ai);
	if (g != 0 || !ai) {
		if (ai)
			freeaddrinfo(ai);
		return g == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
	}
	struct sockaddr_storage ss;
	socklen_t sl = (socklen_t)ai->ai_addrlen;
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, ai->ai_addr, ai->ai_addrlen < sizeof(ss) ? ai->ai_addrlen : sizeof(ss));
	freeaddrinfo(ai);
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, KILN_HTTP_LISTEN_BACKLOG) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	*ret_port = ntohs(ss.ss_family == AF_INET ? in4->sin_port : in6->sin6_port);
	*ret_fd = fd;
	return 0;
}

int http_listen_open(struct http_server *s, const char *name, const char *iface, int port,
		     struct lws_vhost *vh, bool workers, struct http_listener **ret)
{
	int fd = -1, bound = 0;
	int r = http_listen_socket(iface, port, &fd, &bound);
	if (r < 0)
		return r;
	struct http_listener *ln = xcalloc(1, sizeof(*ln));
	ln->srv = s;
	ln->vh = vh;
	ln->name = name;
	ln->workers = workers;
	ln->fd = fd;
	ln->port = bound;
	r = uv_poll_init_socket(s->m->loop, &ln->poll, fd);
	if (r < 0) {
		close(fd);
		free(ln);
		return r;
	}
	s->refs++;
	ln->poll.data = ln;
	ln->open_handles = 2;
	uv_timer_init(s->m->loop, &ln->tick);
	ln->tick.data = ln;
	ln->next_summary = uv_now(s->m->loop) + HTTP_LISTEN_SUMMARY_MS;
	r = uv_poll_start(&ln->poll, UV_READABLE, http_listen_on_accept);
	if (r == 0)
		r = uv_timer_start(&ln->tick, http_listen_on_tick, HTTP_LISTEN_TICK_MS,
				   HTTP_LISTEN_TICK_MS);
	if (r < 0) {
		http_listen_close(ln);
		return r;
	}
	ln->polling = true;
	*ret = ln;
	return 0;
}

int http_listen_port(const struct http_listener *ln)
{
	return ln->port;
}

void http_listen_close(struct http_listener *ln)
{
	if (!ln || ln->closing)
		return;
	ln->closing = true;
	if (!ln->workers)
		http_wsguard_stop_all(ln->srv);
	while (ln->pending)
		http_pending_free(ln->pending, true);
	uv_close((uv_handle_t *)&ln->poll, http_listen_handle_closed);
	uv_close((uv_handle_t *)&ln->tick, http_listen_handle_closed);
	close(ln->fd);
}
