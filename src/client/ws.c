/*
 * The client's /ws event socket (ws.h): a blocking TCP socket, poll() for
 * bounded waits, the RFC 6455 handshake and frame codec for text frames.
 */
#include "client/ws.h"
#include "client/cli.h"
#include "common/clock.h"
#include "common/xalloc.h"

#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WS_HEAD_MAX 8192

struct ws_client {
	int fd;
	int next_id;
	uint8_t *in; /* owned: received, not yet parsed bytes */
	size_t in_len, in_alloc;
	size_t msg_len; /* bytes of the fragmented text message so far */
};

int ws_frame_parse(const uint8_t *p, size_t n, struct ws_frame *ret)
{
	if (n < 2)
		return 0;
	uint8_t op = p[0] & 0x0f;
	uint64_t len = p[1] & 0x7f;
	size_t head = 2;

	if (p[0] & 0x70)
		return -EPROTO; /* no extension was negotiated */
	if (p[1] & 0x80)
		return -EPROTO; /* a server never masks */
	if (op > 2 && (op < 8 || op > 10))
		return -EPROTO;
	if (len == 126) {
		if (n < 4)
			return 0;
		len = (uint64_t)p[2] << 8 | p[3];
		head = 4;
	} else if (len == 127) {
		if (n < 10)
			return 0;
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | p[2 + i];
		head = 10;
	}
	if (op >= 8 && (len > 125 || !(p[0] & 0x80)))
		return -EPROTO;
	if (len > WS_MAX_MESSAGE)
		return -EMSGSIZE;
	if (n - head < len)
		return 0;
	*ret = (struct ws_frame){
		.fin = p[0] & 0x80, .opcode = op, .payload = p + head, .len = (size_t)len};
	return (int)(head + len);
}

/* The socket is non-blocking: every wait goes through ws_poll() with a
 * deadline, connect and send included, so no call can hang past it. */
#define WS_SEND_TIMEOUT_MS 5000

static long long ws_now_ms(void)
{
	return (long long)clock_mono_ms();
}

/* Waits for fd to be readable (or writable) until deadline; 1 ready, 0 timeout. */
static int ws_poll(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - ws_now_ms();
		if (left < 0)
			left = 0;
		struct pollfd pfd = {.fd = fd, .events = events};
		int r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		return r > 0;
	}
}

static int ws_send_all(int fd, const uint8_t *p, size_t n)
{
	long long deadline = ws_now_ms() + WS_SEND_TIMEOUT_MS;
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			int r = ws_poll(fd, POLLOUT, deadline);
			if (r <= 0)
				return r < 0 ? r : -ETIMEDOUT;
			continue;
		}
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One masked client frame. */
static int ws_send_frame(struct ws_client *ws, uint8_t op, const void *data, size_t len)
{
	if (len > WS_MAX_MESSAGE)
		return -EMSGSIZE;
	uint8_t *f = xmalloc(len + 14), mask[4];
	size_t h = 0;
	f[h++] = 0x80 | op;
	if (len < 126) {
		f[h++] = 0x80 | (uint8_t)len;
	} else if (len <= 0xffff) {
		f[h++] = 0x80 | 126;
		f[h++] = (uint8_t)(len >> 8);
		f[h++] = (uint8_t)len;
	} else {
		f[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			f[h++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	randombytes_buf(mask, sizeof(mask));
	memcpy(f + h, mask, 4);
	h += 4;
	for (size_t i = 0; i < len; i++)
		f[h + i] = ((const uint8_t *)data)[i] ^ mask[i & 3];
	int r = ws_send_all(ws->fd, f, h + len);
	free(f);
	return r;
}

static int ws_connect(const char *host, const char *port, long long deadline, int *ret_fd)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	int r = getaddrinfo(host, port, &hints, &res);
	if (r != 0)
		return -EHOSTUNREACH;
	r = -ECONNREFUSED;
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
				ai->ai_protocol);
		if (fd < 0)
			continue;
		r = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : -errno;
		if (r == -EINPROGRESS) {
			int err = 0;
			socklen_t len = sizeof(err);
			r = ws_poll(fd, POLLOUT, deadline);
			if (r == 0)
				r = -ETIMEDOUT;
			else if (r > 0)
				r = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ? -errno
											 : -err;
		}
		if (r == 0) {
			*ret_fd = fd;
			break;
		}
		close(fd);
		if (ws_now_ms() >= deadline)
			break;
	}
	freeaddrinfo(res);
	return r;
}

/* "http://host[:port][/prefix]" into new strings; -ENOTSUP for another scheme */
static int ws_parse_base(const char *base, char **ret_host, char **ret_port, char **ret_prefix)
{
	if (strncmp(base, "http://", 7))
		return -ENOTSUP;
	const char *h = base + 7, *slash = strchr(h, '/');
	const char *end = slash ? slash : h + strlen(h);
	const char *colon = NULL;
	if (*h == '[') {
		const char *rb = memchr(h, ']', (size_t)(end - h));
		if (!rb)
			return -EINVAL;
		*ret_host = xstrndup(h + 1, (size_t)(rb - h - 1));
		colon = rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		*ret_host = xstrndup(h, (size_t)((colon ? colon : end) - h));
	}
	*ret_port = colon ? xstrndup(colon + 1, (size_t)(end - colon - 1)) : xstrdup("80");
	*ret_prefix = xstrdup(slash ? slash : "");
	return 0;
}

int ws_open(const char *base, const char *token, int timeout_ms, struct ws_client **ret)
{
	_cleanup_free_ char *host = NULL, *port = NULL, *prefix = NULL, *req = NULL;
	long long deadline = ws_now_ms() + timeout_ms;
	char head[WS_HEAD_MAX + 1];
	size_t got = 0;
	int fd = -1, r;

	r = ws_parse_base(base, &host, &port, &prefix);
	if (r < 0)
		return r;
	if (sodium_init() < 0)
		return -EIO;
	r = ws_connect(host, port, deadline, &fd);
	if (r < 0)
		return r;

	unsigned char raw[16];
	char key[sodium_base64_ENCODED_LEN(16, sodium_base64_VARIANT_ORIGINAL)];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(key, sizeof(key), raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
	_cleanup_free_ char *auth =
		token ? xasprintf("Authorization: Bearer %s\r\n", token) : xstrdup("");
	req = xasprintf("GET %s/ws HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
			"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
			"Sec-WebSocket-Version: 13\r\n%s\r\n",
			prefix, host, port, key, auth);
	r = ws_send_all(fd, (const uint8_t *)req, strlen(req));
	/* read the answer head byte by byte: what follows it is frames */
	while (r >= 0) {
		if (got >= 4 && !memcmp(head + got - 4, "\r\n\r\n", 4))
			break;
		if (got == WS_HEAD_MAX) {
			r = -EMSGSIZE;
			break;
		}
		r = ws_poll(fd, POLLIN, deadline);
		if (r == 0)
			r = -ETIMEDOUT;
		if (r < 0)
			break;
		ssize_t n = recv(fd, head + got, 1, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -ECONNRESET;
			break;
		}
		got++;
	}
	if (r >= 0) {
		head[got] = '\0';
		if (strncmp(head, "HTTP/1.1 101", 12))
			r = -EPROTO;
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	struct ws_client *ws = xmalloc(sizeof(*ws));
	*ws = (struct ws_client){.fd = fd, .next_id = 1};
	*ret = ws;
	return 0;
}

int ws_subscribe(struct ws_client *ws, const char *path)
{
	json_t *m = json_pack("{s:s,s:s,s:i}", "cmd", "startConsuming", "path", path, "_id",
			      ws->next_id++);
	if (!m)
		return -EINVAL;
	char *text = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	if (!text)
		return -ENOMEM;
	int r = ws_send_frame(ws, 1, text, strlen(text));
	free(text);
	return r;
}

/* Handles the buffered frames: 1 when one was an event, 0 none, negative on error. */
static int ws_drain(struct ws_client *ws)
{
	struct ws_frame f;
	size_t off = 0;
	int event = 0, r = 0;

	while (off < ws->in_len) {
		r = ws_frame_parse(ws->in + off, ws->in_len - off, &f);
		if (r <= 0)
			break;
		off += (size_t)r;
		r = 0;
		switch (f.opcode) {
		case 8:
			r = -ECONNRESET;
			break;
		case 9:
			r = ws_send_frame(ws, 10, f.payload, f.len);
			break;
		case 10:
			break;
		default: /* text, binary, continuation */
			if (ws->msg_len + f.len > WS_MAX_MESSAGE) {
				r = -EMSGSIZE;
				break;
			}
			ws->msg_len = f.fin ? 0 : ws->msg_len + f.len;
			/* events start {"k": in Kiln and Buildbot; acks and errors do not
			 * (a continuation belongs to a message its first frame judged) */
			if (f.opcode == 1 && f.len > 5 && !memcmp(f.payload, "{\"k\":", 5))
				event = 1;
			break;
		}
		if (r < 0)
			break;
	}
	if (off > 0 && off < ws->in_len) /* ws->in is NULL before the first read */
		memmove(ws->in, ws->in + off, ws->in_len - off);
	ws->in_len -= off;
	return r < 0 ? r : event;
}

int ws_wait(struct ws_client *ws, int timeout_ms)
{
	long long deadline = ws_now_ms() + timeout_ms;
	int event = 0;

	for (;;) {
		int r = ws_drain(ws);
		if (r < 0)
			return r;
		event |= r;
		r = ws_poll(ws->fd, POLLIN, event ? ws_now_ms() : deadline);
		if (r < 0)
			return r;
		if (r == 0)
			return event;
		ARRAY_GROW(ws->in, ws->in_len + 65536, ws->in_alloc);
		ssize_t n = recv(ws->fd, ws->in + ws->in_len, 65536, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		/* bounded: ws_frame_parse() refuses a frame over WS_MAX_MESSAGE, so at
		 * most one frame's worth plus one read stays buffered */
		ws->in_len += (size_t)n;
	}
}

void ws_close(struct ws_client *ws)
{
	if (!ws)
		return;
	static const uint8_t code[2] = {0x03, 0xe8}; /* 1000 */
	(void)ws_send_frame(ws, 8, code, sizeof(code));
	close(ws->fd);
	free(ws->in);
	free(ws);
}

static bool ws_debug(void)
{
	const char *d = getenv("KILN_CLIENT_DEBUG");
	return d && *d && strcmp(d, "0");
}

void ws_waiter_open(struct ws_waiter *w, const char *base, const char *token,
		    const char *const *paths, unsigned poll_ms)
{
	const char *poll_env = getenv("KILN_CLIENT_POLL");
	int r = 0;

	*w = (struct ws_waiter){.poll_ms = poll_ms};
	if (poll_env && *poll_env && strcmp(poll_env, "0"))
		r = -ECANCELED;
	if (r == 0)
		r = ws_open(base, token, 5000, &w->ws);
	for (size_t i = 0; r == 0 && paths[i]; i++)
		r = ws_subscribe(w->ws, paths[i]);
	if (r < 0) {
		ws_close(w->ws);
		w->ws = NULL;
		if (ws_debug())
			fprintf(stderr, "kiln: /ws not used (%s): polling every %u ms\n",
				strerror(-r), poll_ms);
	} else if (ws_debug()) {
		fprintf(stderr, "kiln: following events on %s/ws\n", base);
	}
}

void ws_waiter_wait(struct ws_waiter *w, uint64_t deadline_ms)
{
	long long now = ws_now_ms();
	long long left = deadline_ms ? (long long)deadline_ms - now : WS_WAIT_MAX_MS;
	if (left < 0)
		left = 0;
	if (!w->ws) {
		cli_sleep_ms(w->poll_ms);
		return;
	}
	int r = ws_wait(w->ws, (int)(left < WS_WAIT_MAX_MS ? left : WS_WAIT_MAX_MS));
	if (r < 0) {
		if (ws_debug())
			fprintf(stderr, "kiln: /ws lost (%s): polling every %u ms\n", strerror(-r),
				w->poll_ms);
		ws_close(w->ws);
		w->ws = NULL;
	}
}

void ws_waiter_release(struct ws_waiter *w)
{
	ws_close(w->ws);
	w->ws = NULL;
}

/* kiln watch (slice "watch"): its loop polls the socket beside the terminal */
int ws_fd(const struct ws_client *ws)
{
	return ws->fd;
}
