/*
 * The mask check of the browser event socket /ws (http-int.h).  RFC 6455
 * §5.1: a server closes the connection, with status 1002, on a client frame
 * that is not masked.  libwebsockets 4.1.6 keeps the mask bit to itself and
 * accepts such frames, so lws gets one end of a socketpair instead of the
 * client's socket, and this relay copies the bytes between the two on the
 * loop, unchanged, while it follows the frame headers of both directions.
 * Each direction has a buffer of KILN_WS_GUARD_BUF, held only while bytes
 * wait in it (an idle connection holds none); when it is full the side
 * that fills it is not read (the /ws queue caps of http-ws.c and events.c still see a
 * browser that does not read).
 */
#define LOG_SUBSYS "http"

#include "master/http-int.h"
#include "master/master.h"

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A closing relay flushes and drains this long at most. */
#define HTTP_WSGUARD_CLOSE_MS 2000
/* The master's stop: lws closes its ends within its grace, this is a bound. */
#define HTTP_WSGUARD_STOP_MS (HTTP_STOP_GRACE_MS + 2000)
#define HTTP_WSGUARD_SUMMARY_MS 60000

static const char http_wsguard_reason[] = "client frame not masked";

/* Follows WebSocket frames through a byte stream that may split anywhere. */
struct http_wsguard_frames {
	bool http;     /* still in the HTTP answer (lws to client) */
	unsigned crlf; /* its "\r\n\r\n" seen so far */
	unsigned char hdr[14];
	unsigned hlen;
	uint64_t skip;    /* payload bytes left of the current frame */
	uint64_t pos;     /* bytes followed */
	uint64_t done_at; /* stream position where the last complete frame ended */
};

struct http_wsguard {
	struct http_server *srv;
	uv_poll_t pc, pl; /* the client's socket, our end of the pair */
	uv_timer_t timer; /* bound of the closing flush */
	int cfd, lfd, lws_fd;
	unsigned handles;
	int cev, lev; /* polled events, -1: handle closed */
	bool closing; /* no more reads from lws; client input is drained */
	bool c_eof;   /* the client's end of input */
	bool c_dead;  /* the client's socket failed: nothing more is sent to it */
	bool c_shut;  /* our write side to the client is shut */
	bool l_open;  /* lfd is open */
	bool freed;
	struct http_wsguard_frames cf, lf;
	uint64_t l_out; /* bytes sent to the client */
	size_t c2l_off, c2l_len, l2c_off, l2c_len;
	char peer[64];
	struct http_wsguard *prev, *next; /* srv->wsguards */
	/* KILN_WS_GUARD_BUF bytes each, held only while bytes wait in them */
	unsigned char *c2l, *l2c;
};

static struct {
	uint64_t next_log;
	unsigned long refused;
} http_wsguard_stats;

/* Gives a direction its buffer when bytes are to wait in it. */
static unsigned char *http_wsguard_buf(unsigned char **b)
{
	if (!*b)
		*b = xmalloc(KILN_WS_GUARD_BUF);
	return *b;
}

/* Lets a drained buffer go. */
static void http_wsguard_drained(unsigned char **b, size_t *off, size_t len)
{
	if (len)
		return;
	*off = 0;
	free(*b);
	*b = NULL;
}

static size_t http_wsguard_hdr_need(const struct http_wsguard_frames *f)
{
	if (f->hlen < 2)
		return 2;
	size_t n = 2 + ((f->hdr[1] & 0x80) ? 4 : 0);
	unsigned l7 = f->hdr[1] & 0x7f;
	return n + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0);
}

/* Follows len bytes.  check_mask: returns -EPROTO at the second header byte
 * of an unmasked frame, else 0. */
static int http_wsguard_follow(struct http_wsguard_frames *f, const unsigned char *d, size_t len,
			       bool check_mask)
{
	for (size_t i = 0; i < len;) {
		if (f->http) {
			static const char end[] = "\r\n\r\n";
			f->crlf = d[i] == (unsigned char)end[f->crlf] ? f->crlf + 1
				  : d[i] == '\r'                      ? 1
								      : 0;
			i++;
			f->pos++;
			if (f->crlf == 4) {
				f->http = false;
				f->done_at = f->pos;
			}
			continue;
		}
		if (f->skip) {
			uint64_t k = len - i < f->skip ? len - i : f->skip;
			f->skip -= k;
			i += (size_t)k;
			f->pos += k;
			if (!f->skip)
				f->done_at = f->pos;
			continue;
		}
		f->hdr[f->hlen++] = d[i++];
		f->pos++;
		if (f->hlen == 2 && check_mask && !(f->hdr[1] & 0x80))
			return -EPROTO;
		if (f->hlen < http_wsguard_hdr_need(f))
			continue;
		unsigned l7 = f->hdr[1] & 0x7f;
		uint64_t plen = l7;
		if (l7 >= 126) {
			plen = 0;
			for (unsigned k = 0; k < (l7 == 126 ? 2u : 8u); k++)
				plen = plen << 8 | f->hdr[2 + k];
		}
		f->hlen = 0;
		f->skip = plen;
		if (!plen)
			f->done_at = f->pos;
	}
	return 0;
}

/* ---- closing ------------------------------------------------------------------------- */

static void http_wsguard_handle_closed(uv_handle_t *h)
{
	struct http_wsguard *g = h->data;
	if (--g->handles)
		return;
	struct http_server *s = g->srv;
	free(g->c2l);
	free(g->l2c);
	free(g);
	http_server_unref(s);
}

static void http_wsguard_close_lws(struct http_wsguard *g)
{
	if (!g->l_open)
		return;
	g->l_open = false;
	g->lws_fd = -1;
	g->lev = -1;
	uv_close((uv_handle_t *)&g->pl, http_wsguard_handle_closed);
	close(g->lfd);
	g->c2l_len = 0;
}

static void http_wsguard_free(struct http_wsguard *g)
{
	if (g->freed)
		return;
	g->freed = true;
	struct http_server *s = g->srv;
	if (g->prev)
		g->prev->next = g->next;
	else
		s->wsguards = g->next;
	if (g->next)
		g->next->prev = g->prev;
	http_wsguard_close_lws(g);
	g->cev = -1;
	uv_close((uv_handle_t *)&g->pc, http_wsguard_handle_closed);
	close(g->cfd);
	uv_close((uv_handle_t *)&g->timer, http_wsguard_handle_closed);
}

static void http_wsguard_on_timer(uv_timer_t *t)
{
	http_wsguard_free(t->data);
}

static void http_wsguard_start_closing(struct http_wsguard *g)
{
	if (g->closing)
		return;
	g->closing = true;
	uv_timer_stop(&g->timer);
	if (uv_timer_start(&g->timer, http_wsguard_on_timer, HTTP_WSGUARD_CLOSE_MS, 0) < 0)
		http_wsguard_free(g);
}

static void http_wsguard_log(struct http_wsguard *g)
{
	uint64_t now = uv_now(g->srv->m->loop);
	http_wsguard_stats.refused++;
	if (now < http_wsguard_stats.next_log)
		return;
	log_warn("/ws: %lu connection(s) closed for unmasked client frames since the last such "
		 "line (the last from %s)",
		 http_wsguard_stats.refused, g->peer);
	http_wsguard_stats.refused = 0;
	http_wsguard_stats.next_log = now + HTTP_WSGUARD_SUMMARY_MS;
}

/* An unmasked client frame: lws hears no more of the client, which gets
 * what lws had sent in whole frames, then a close frame with 1002. */
static void http_wsguard_refuse(struct http_wsguard *g)
{
	http_wsguard_log(g);
	http_wsguard_close_lws(g);
	http_wsguard_start_closing(g);
	if (g->c_dead)
		return;
	/* lws's answer still in its HTTP part, or a frame of it partly sent:
	 * no close frame could be told apart, the close alone goes */
	if (g->lf.http || g->lf.done_at < g->l_out) {
		g->l2c_len = 0;
		return;
	}
	size_t whole = (size_t)(g->lf.done_at - g->l_out);
	if (whole > g->l2c_len)
		whole = g->l2c_len;
	g->l2c_len = whole;
	http_wsguard_buf(&g->l2c);
	size_t rlen = sizeof(http_wsguard_reason) - 1;
	size_t flen = 4 + rlen;
	if (g->l2c_off + g->l2c_len + flen > KILN_WS_GUARD_BUF) {
		memmove(g->l2c, g->l2c + g->l2c_off, g->l2c_len);
		g->l2c_off = 0;
	}
	if (g->l2c_len + flen > KILN_WS_GUARD_BUF) {
		g->l2c_len = 0; /* full of whole frames: the close alone goes */
		return;
	}
	unsigned char *p = g->l2c + g->l2c_off + g->l2c_len;
	p[0] = 0x88; /* FIN, close */
	p[1] = (unsigned char)(2 + rlen);
	p[2] = 1002 >> 8;
	p[3] = 1002 & 0xff;
	memcpy(p + 4, http_wsguard_reason, rlen);
	g->l2c_len += flen;
}

/* ---- relaying ------------------------------------------------------------------------- */

static void http_wsguard_on_client(uv_poll_t *h, int status, int events);
static void http_wsguard_on_lws(uv_poll_t *h, int status, int events);
static void http_wsguard_write_client(struct http_wsguard *g);
static void http_wsguard_write_lws(struct http_wsguard *g);

/* Polls what each side can do now, and ends the relay when it is done. */
static void http_wsguard_update(struct http_wsguard *g)
{
	if (g->freed)
		return;
	if (g->closing) {
		if (g->l_open && !g->c2l_len)
			http_wsguard_close_lws(g);
		if (!g->l_open) {
			if (g->c_dead) {
				http_wsguard_free(g);
				return;
			}
			if (!g->l2c_len && !g->c_shut) {
				g->c_shut = true;
				if (shutdown(g->cfd, SHUT_WR) < 0) {
					http_wsguard_free(g);
					return;
				}
			}
			/* the master's stop does not wait for the client's end */
			if (g->c_shut && (g->c_eof || g->srv->stopping)) {
				http_wsguard_free(g);
				return;
			}
		}
	}
	int cev = 0, lev = 0;
	if (!g->c_dead) {
		/* closing: the client's input is read and dropped */
		if (!g->c_eof && (g->closing || g->c2l_len < KILN_WS_GUARD_BUF))
			cev |= UV_READABLE;
		if (g->l2c_len)
			cev |= UV_WRITABLE;
	}
	if (g->l_open) {
		if (!g->closing && g->l2c_len < KILN_WS_GUARD_BUF)
			lev |= UV_READABLE;
		if (g->c2l_len)
			lev |= UV_WRITABLE;
	}
	if (cev != g->cev) {
		int r = cev ? uv_poll_start(&g->pc, cev, http_wsguard_on_client)
			    : uv_poll_stop(&g->pc);
		if (r < 0) {
			http_wsguard_free(g);
			return;
		}
		g->cev = cev;
	}
	if (g->l_open && lev != g->lev) {
		int r = lev ? uv_poll_start(&g->pl, lev, http_wsguard_on_lws)
			    : uv_poll_stop(&g->pl);
		if (r < 0) {
			http_wsguard_free(g);
			return;
		}
		g->lev = lev;
	}
}

/* Takes client bytes into c2l (after a check of their frames). */
static void http_wsguard_from_client(struct http_wsguard *g, const unsigned char *d, size_t n)
{
	if (http_wsguard_follow(&g->cf, d, n, true) < 0) {
		http_wsguard_refuse(g);
		return;
	}
	if (g->closing)
		return;
	memcpy(http_wsguard_buf(&g->c2l) + g->c2l_off + g->c2l_len, d, n);
	g->c2l_len += n;
}

static bool http_wsguard_again(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

static void http_wsguard_read_client(struct http_wsguard *g)
{
	unsigned char drop[4096];
	unsigned char *dst = drop;
	size_t room = sizeof(drop);
	if (!g->closing) {
		if (g->c2l_off) {
			memmove(g->c2l, g->c2l + g->c2l_off, g->c2l_len);
			g->c2l_off = 0;
		}
		dst = http_wsguard_buf(&g->c2l) + g->c2l_len;
		room = KILN_WS_GUARD_BUF - g->c2l_len;
		if (!room)
			return;
	}
	ssize_t n = recv(g->cfd, dst, room, 0);
	if (n < 0 && http_wsguard_again())
		return;
	if (n < 0) {
		g->c_dead = true;
		g->l2c_len = 0;
		http_wsguard_start_closing(g);
		return;
	}
	if (n == 0) {
		g->c_eof = true;
		http_wsguard_start_closing(g);
		return;
	}
	if (g->closing)
		return;
	/* checked in place: nothing in c2l moves meanwhile */
	g->c2l_len += (size_t)n;
	if (http_wsguard_follow(&g->cf, dst, (size_t)n, true) < 0)
		http_wsguard_refuse(g);
	else if (g->l_open)
		http_wsguard_write_lws(g); /* at once: the buffer is usually let go */
}

static void http_wsguard_write_client(struct http_wsguard *g)
{
	ssize_t n = send(g->cfd, g->l2c + g->l2c_off, g->l2c_len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0 && http_wsguard_again())
		return;
	if (n <= 0) {
		g->c_dead = true;
		g->l2c_len = 0;
		http_wsguard_start_closing(g);
		return;
	}
	g->l2c_off += (size_t)n;
	g->l2c_len -= (size_t)n;
	g->l_out += (uint64_t)n;
	http_wsguard_drained(&g->l2c, &g->l2c_off, g->l2c_len);
}

static void http_wsguard_on_client(uv_poll_t *h, int status, int events)
{
	struct http_wsguard *g = h->data;
	if (status < 0) {
		g->c_dead = true;
		g->l2c_len = 0;
		http_wsguard_start_closing(g);
	} else {
		if ((events & UV_WRITABLE) && g->l2c_len)
			http_wsguard_write_client(g);
		if ((events & UV_READABLE) && !g->c_dead && !g->c_eof)
			http_wsguard_read_client(g);
	}
	http_wsguard_update(g);
}

static void http_wsguard_read_lws(struct http_wsguard *g)
{
	if (g->l2c_off) {
		memmove(g->l2c, g->l2c + g->l2c_off, g->l2c_len);
		g->l2c_off = 0;
	}
	size_t room = KILN_WS_GUARD_BUF - g->l2c_len;
	if (!room)
		return;
	ssize_t n = recv(g->lfd, http_wsguard_buf(&g->l2c) + g->l2c_len, room, 0);
	if (n < 0 && http_wsguard_again())
		return;
	if (n <= 0) {
		/* lws closed: what it wrote goes out first */
		http_wsguard_close_lws(g);
		http_wsguard_start_closing(g);
		return;
	}
	http_wsguard_follow(&g->lf, g->l2c + g->l2c_len, (size_t)n, false);
	g->l2c_len += (size_t)n;
	if (!g->c_dead)
		http_wsguard_write_client(g); /* at once: the buffer is usually let go */
}

static void http_wsguard_write_lws(struct http_wsguard *g)
{
	ssize_t n = send(g->lfd, g->c2l + g->c2l_off, g->c2l_len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0 && http_wsguard_again())
		return;
	if (n <= 0) {
		http_wsguard_close_lws(g);
		http_wsguard_start_closing(g);
		return;
	}
	g->c2l_off += (size_t)n;
	g->c2l_len -= (size_t)n;
	http_wsguard_drained(&g->c2l, &g->c2l_off, g->c2l_len);
}

static void http_wsguard_on_lws(uv_poll_t *h, int status, int events)
{
	struct http_wsguard *g = h->data;
	if (status < 0) {
		http_wsguard_close_lws(g);
		http_wsguard_start_closing(g);
	} else {
		if ((events & UV_WRITABLE) && g->c2l_len)
			http_wsguard_write_lws(g);
		if ((events & UV_READABLE) && g->l_open && !g->closing)
			http_wsguard_read_lws(g);
	}
	http_wsguard_update(g);
}

/* ---- http-int.h ------------------------------------------------------------------------- */

int http_wsguard_open(struct http_server *s, int cfd, const char *peer, const void *pre,
		      size_t prelen, int *ret_lws_fd)
{
	int sv[2];
	if (prelen > KILN_WS_GUARD_BUF)
		return -E2BIG;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	struct http_wsguard *g = xcalloc(1, sizeof(*g));
	g->srv = s;
	g->cfd = cfd;
	g->lfd = sv[0];
	g->lws_fd = sv[1];
	g->lf.http = true;
	snprintf(g->peer, sizeof(g->peer), "%s", peer);
	uv_timer_init(s->m->loop, &g->timer);
	g->timer.data = g;
	g->handles = 1;
	s->refs++;
	int r = uv_poll_init_socket(s->m->loop, &g->pc, cfd);
	if (r == 0) {
		g->pc.data = g;
		g->handles++;
		r = uv_poll_init_socket(s->m->loop, &g->pl, g->lfd);
		if (r < 0)
			uv_close((uv_handle_t *)&g->pc, http_wsguard_handle_closed);
	}
	if (r < 0) {
		/* the caller closes cfd */
		uv_close((uv_handle_t *)&g->timer, http_wsguard_handle_closed);
		close(sv[0]);
		close(sv[1]);
		return r;
	}
	g->pl.data = g;
	g->handles++;
	g->l_open = true;
	g->next = s->wsguards;
	if (s->wsguards)
		s->wsguards->prev = g;
	s->wsguards = g;
	/* as the /ws socket's own (http-ws.c): no autotuning to megabytes */
	int sz = KILN_WS_EVENT_SNDBUF;
	if (setsockopt(cfd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)) < 0)
		log_debug("cannot set SO_SNDBUF of a /ws socket: %s", strerror(errno));
	/* bytes that came with the request are frames too */
	if (prelen)
		http_wsguard_from_client(g, pre, prelen);
	*ret_lws_fd = sv[1];
	http_wsguard_update(g);
	return 0;
}

bool http_wsguard_peer(const struct http_server *s, int lws_fd, char *buf, size_t size)
{
	for (const struct http_wsguard *g = s->wsguards; g; g = g->next)
		if (g->lws_fd == lws_fd && !g->freed) {
			snprintf(buf, size, "%s", g->peer);
			return true;
		}
	return false;
}

void http_wsguard_stop_all(struct http_server *s)
{
	for (struct http_wsguard *g = s->wsguards, *next; g; g = next) {
		next = g->next;
		if (!g->closing &&
		    uv_timer_start(&g->timer, http_wsguard_on_timer, HTTP_WSGUARD_STOP_MS, 0) < 0)
			http_wsguard_free(g);
	}
}
