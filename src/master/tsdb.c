/*
 * The metrics push client (tsdb.h): formats points as InfluxDB or Graphite
 * lines, keeps them in a bounded ring, and writes them over one TCP
 * connection that it resolves (thread pool), connects, watches (a read
 * that sees EOF) and re-establishes with backoff.  One state machine, one
 * timer (backoff, connect timeout or write stall, by state).
 */
#define LOG_SUBSYS "tsdb"
#include "master/tsdb.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"

enum tsdb_state {
	TSDB_WAITING,    /* backoff timer running, nothing open */
	TSDB_RESOLVING,  /* uv_getaddrinfo in flight (timer: connect timeout) */
	TSDB_CONNECTING, /* uv_tcp_connect in flight (timer: connect timeout) */
	TSDB_CONNECTED,  /* writing what is queued (timer: write stall while a write runs) */
	TSDB_CLOSING,    /* the socket is closing; then TSDB_WAITING */
};

struct tsdb {
	uv_loop_t *loop; /* borrowed */
	enum config_tsdb_protocol protocol;
	char *host;   /* owned */
	char *prefix; /* owned */
	int port;
	enum tsdb_state state;
	uv_timer_t timer;
	bool timer_open;
	uv_getaddrinfo_t gai;
	bool gai_busy;      /* its callback is still to come */
	bool gai_timed_out; /* the connect timeout fired while resolving */
	uv_tcp_t tcp;
	bool tcp_open; /* initialised and its close callback not yet run */
	uv_connect_t conn;
	uv_write_t wreq;
	bool writing;
	char rbuf[256]; /* what the store sends (nothing, normally) is read and dropped */
	char **q;       /* owned ring of KILN_TSDB_MAX_QUEUE formatted lines (owned) */
	size_t qhead, qlen;
	struct buf inflight; /* lines of the current write, kept until it succeeds */
	size_t inflight_n;
	uint64_t sent, dropped, dropped_unlogged;
	uint64_t drop_logged_ms;
	bool drop_logged;
	unsigned backoff_ms;
	uint64_t connected_ms; /* uv_now() when the connection came up */
	bool failing;          /* a failure was logged; the next connect says so */
	unsigned addr_idx; /* which resolved address to try: the next one after a failed connect */
	bool stopping;
};

/* ---- formatting ------------------------------------------------------------ */

/* The shortest of %.15g..%.17g that reads back as v. */
static void tsdb_number(char *out, size_t size, double v)
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(out, size, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

/* An InfluxDB measurement, tag key or tag value: '\', ',', '=' and ' '
 * escaped with '\'; control characters (no way to escape them) as '_'. */
static int tsdb_influx_escape(struct buf *out, const char *s)
{
	int r = 0;
	for (; *s && r == 0; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\\' || c == ',' || c == '=' || c == ' ')
			r = buf_addch(out, '\\');
		if (r == 0)
			r = buf_addch(out, c < 0x20 || c == 0x7f ? '_' : (char)c);
	}
	return r;
}

/* A Graphite path component: [A-Za-z0-9_-] kept, every other byte '_'
 * (a '.' would split the path, a blank the line). */
static int tsdb_graphite_name(struct buf *out, const char *s)
{
	int r = 0;
	for (; *s && r == 0; s++) {
		char c = *s;
		bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '_' || c == '-';
		r = buf_addch(out, keep ? c : '_');
	}
	return r;
}

int tsdb_format(enum config_tsdb_protocol protocol, const char *prefix, const char *builder,
		const char *name, double value, double time, struct buf *out)
{
	if (!builder || !*builder || !name || !*name || !isfinite(value) || !isfinite(time) ||
	    time < 0 || time > 9.2e9)
		return -EINVAL;
	char v[40];
	tsdb_number(v, sizeof(v), value);
	size_t start = out->len;
	int r;
	if (protocol == CONFIG_TSDB_INFLUX) {
		/* nanoseconds, from whole microseconds (a double's seconds hold no more) */
		long long sec = (long long)floor(time);
		long long usec = llround((time - (double)sec) * 1e6);
		r = tsdb_influx_escape(out, prefix);
		if (r == 0)
			r = buf_adds(out, "_number,builder=");
		if (r == 0)
			r = tsdb_influx_escape(out, builder);
		if (r == 0)
			r = buf_adds(out, ",name=");
		if (r == 0)
			r = tsdb_influx_escape(out, name);
		if (r == 0)
			r = buf_addf(out, " value=%s %lld\n", v,
				     sec * 1000000000LL + usec * 1000LL);
	} else {
		r = 0;
		if (*prefix)
			r = buf_addf(out, "%s.", prefix); /* checked by config-tsdb.c */
		if (r == 0)
			r = tsdb_graphite_name(out, builder);
		if (r == 0)
			r = buf_addch(out, '.');
		if (r == 0)
			r = tsdb_graphite_name(out, name);
		if (r == 0)
			r = buf_addf(out, " %s %lld\n", v, (long long)floor(time));
	}
	if (r < 0 && !out->failed)
		buf_setlen(out, start);
	return r;
}

/* ---- the connection ------------------------------------------------------------ */

static void tsdb_connect_start(struct tsdb *t);
static void tsdb_on_timer(uv_timer_t *h);
static void tsdb_flush(struct tsdb *t);

static void tsdb_maybe_free(struct tsdb *t)
{
	if (!t->stopping || t->timer_open || t->gai_busy || t->tcp_open)
		return;
	for (size_t i = 0; i < t->qlen; i++)
		free(t->q[(t->qhead + i) % KILN_TSDB_MAX_QUEUE]);
	free(t->q);
	buf_release(&t->inflight);
	free(t->host);
	free(t->prefix);
	free(t);
}

static void tsdb_wait(struct tsdb *t)
{
	t->state = TSDB_WAITING;
	if (t->stopping)
		return;
	unsigned delay = t->backoff_ms;
	t->backoff_ms = t->backoff_ms >= KILN_TSDB_BACKOFF_MAX_MS / 2 ? KILN_TSDB_BACKOFF_MAX_MS
								      : t->backoff_ms * 2;
	uv_timer_start(&t->timer, tsdb_on_timer, delay, 0);
}

static void tsdb_on_tcp_closed(uv_handle_t *h)
{
	struct tsdb *t = h->data;
	t->tcp_open = false;
	if (t->stopping) {
		tsdb_maybe_free(t);
		return;
	}
	tsdb_wait(t);
}

/* Any failure: logged (warn once per streak), the socket closed, then a
 * reconnect after the backoff.  What is in flight is kept for the resend. */
static void tsdb_fail(struct tsdb *t, int r, const char *what)
{
	if (!t->failing)
		log_warn("%s:%d: %s: %s; retrying with backoff", t->host, t->port, what,
			 uv_strerror(r));
	else
		log_debug("%s:%d: %s: %s", t->host, t->port, what, uv_strerror(r));
	t->failing = true;
	/* a connection that lived a while was a success: start the backoff over;
	 * a store that hangs up at once is retried ever more slowly */
	if (t->state == TSDB_CONNECTED &&
	    uv_now(t->loop) - t->connected_ms >= KILN_TSDB_CONNECT_TIMEOUT_MS)
		t->backoff_ms = KILN_TSDB_BACKOFF_FIRST_MS;
	if (t->state == TSDB_CONNECTING)
		t->addr_idx++; /* "localhost": ::1 refused, 127.0.0.1 next time */
	uv_timer_stop(&t->timer);
	if (t->tcp_open) {
		t->state = TSDB_CLOSING;
		if (!uv_is_closing((uv_handle_t *)&t->tcp))
			uv_close((uv_handle_t *)&t->tcp, tsdb_on_tcp_closed);
	} else
		tsdb_wait(t);
}

static void tsdb_on_timer(uv_timer_t *h)
{
	struct tsdb *t = h->data;
	switch (t->state) {
	case TSDB_WAITING:
		tsdb_connect_start(t);
		break;
	case TSDB_RESOLVING:
		/* the callback still comes (cancelled, or with a result we drop) */
		t->gai_timed_out = true;
		(void)uv_cancel((uv_req_t *)&t->gai);
		break;
	case TSDB_CONNECTING:
		tsdb_fail(t, UV_ETIMEDOUT, "cannot connect");
		break;
	case TSDB_CONNECTED:
		tsdb_fail(t, UV_ETIMEDOUT, "the store does not read what is sent");
		break;
	case TSDB_CLOSING:
		break;
	}
}

static void tsdb_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct tsdb *t = h->data;
	*b = uv_buf_init(t->rbuf, sizeof(t->rbuf));
}

static void tsdb_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct tsdb *t = s->data;
	if (nread < 0 && t->state == TSDB_CONNECTED)
		tsdb_fail(t, (int)nread, "connection lost");
}

static void tsdb_on_connect(uv_connect_t *req, int status)
{
	struct tsdb *t = req->data;
	if (status == UV_ECANCELED || t->state != TSDB_CONNECTING)
		return; /* closed meanwhile (timeout or stop) */
	if (status < 0) {
		tsdb_fail(t, status, "cannot connect");
		return;
	}
	uv_timer_stop(&t->timer);
	int r = uv_read_start((uv_stream_t *)&t->tcp, tsdb_alloc, tsdb_on_read);
	if (r < 0) {
		tsdb_fail(t, r, "cannot read");
		return;
	}
	t->state = TSDB_CONNECTED;
	t->connected_ms = uv_now(t->loop);
	if (t->failing)
		log_info("%s:%d: connected again", t->host, t->port);
	else
		log_debug("%s:%d: connected", t->host, t->port);
	t->failing = false;
	tsdb_flush(t);
}

static void tsdb_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct tsdb *t = req->data;
	t->gai_busy = false;
	if (t->stopping) {
		uv_freeaddrinfo(res);
		tsdb_maybe_free(t);
		return;
	}
	if (t->gai_timed_out && status >= 0)
		status = UV_ETIMEDOUT;
	if (status == UV_EAI_CANCELED)
		status = UV_ETIMEDOUT;
	if (status >= 0 && !res)
		status = UV_EAI_NONAME;
	if (status < 0) {
		uv_freeaddrinfo(res);
		tsdb_fail(t, status, "cannot resolve");
		return;
	}
	size_t n = 0;
	for (struct addrinfo *a = res; a; a = a->ai_next)
		n++;
	struct addrinfo *ai = res;
	for (size_t i = t->addr_idx % n; i > 0; i--)
		ai = ai->ai_next;
	int r = uv_tcp_init(t->loop, &t->tcp);
	if (r == 0) {
		t->tcp_open = true;
		t->tcp.data = t;
		(void)uv_tcp_nodelay(&t->tcp, 1); /* lines go out at once; optional */
		t->state = TSDB_CONNECTING;
		t->conn.data = t;
		r = uv_tcp_connect(&t->conn, &t->tcp, ai->ai_addr, tsdb_on_connect);
	}
	uv_freeaddrinfo(res);
	if (r < 0)
		tsdb_fail(t, r, "cannot connect");
}

static void tsdb_connect_start(struct tsdb *t)
{
	if (t->stopping)
		return;
	char port[8];
	snprintf(port, sizeof(port), "%d", t->port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	t->state = TSDB_RESOLVING;
	t->gai_timed_out = false;
	t->gai.data = t;
	uv_timer_start(&t->timer, tsdb_on_timer, KILN_TSDB_CONNECT_TIMEOUT_MS, 0);
	int r = uv_getaddrinfo(t->loop, &t->gai, tsdb_on_resolved, t->host, port, &hints);
	if (r < 0) {
		tsdb_fail(t, r, "cannot resolve");
		return;
	}
	t->gai_busy = true;
}

static void tsdb_on_written(uv_write_t *req, int status)
{
	struct tsdb *t = req->data;
	t->writing = false;
	if (t->stopping)
		return; /* the close callback frees */
	if (status < 0) {
		if (status != UV_ECANCELED && t->state == TSDB_CONNECTED)
			tsdb_fail(t, status, "cannot send");
		return; /* inflight is sent again after the reconnect */
	}
	uv_timer_stop(&t->timer);
	t->sent += t->inflight_n;
	t->inflight_n = 0;
	buf_reset(&t->inflight);
	tsdb_flush(t);
}

/* Writes the lines in flight, or the next batch from the queue. */
static void tsdb_flush(struct tsdb *t)
{
	if (t->state != TSDB_CONNECTED || t->writing)
		return;
	while (t->inflight.len == 0 && t->qlen > 0) {
		/* whole lines up to KILN_TSDB_MAX_INFLIGHT (one at least: it fits) */
		while (t->qlen > 0) {
			char *line = t->q[t->qhead];
			size_t n = strlen(line);
			if (t->inflight.len > 0 && n > KILN_TSDB_MAX_INFLIGHT - t->inflight.len)
				break;
			if (buf_add(&t->inflight, line, n) < 0) {
				buf_reset(&t->inflight); /* cannot happen: the cap has room */
				t->inflight_n = 0;
			} else
				t->inflight_n++;
			free(line);
			t->qhead = (t->qhead + 1) % KILN_TSDB_MAX_QUEUE;
			t->qlen--;
		}
	}
	if (t->inflight.len == 0)
		return;
	uv_buf_t b = uv_buf_init(t->inflight.ptr, (unsigned)t->inflight.len);
	t->wreq.data = t;
	int r = uv_write(&t->wreq, (uv_stream_t *)&t->tcp, &b, 1, tsdb_on_written);
	if (r < 0) {
		tsdb_fail(t, r, "cannot send");
		return;
	}
	t->writing = true;
	uv_timer_start(&t->timer, tsdb_on_timer, KILN_TSDB_WRITE_STALL_MS, 0);
}

int tsdb_start(uv_loop_t *loop, const struct config_metrics_push *cfg, struct tsdb **ret)
{
	struct tsdb *t = xcalloc(1, sizeof(*t));
	t->loop = loop;
	t->protocol = cfg->protocol;
	t->host = xstrdup(cfg->host);
	t->prefix = xstrdup(cfg->prefix ? cfg->prefix : "kiln");
	t->port = cfg->port;
	t->backoff_ms = KILN_TSDB_BACKOFF_FIRST_MS;
	t->q = xcalloc(KILN_TSDB_MAX_QUEUE, sizeof(*t->q));
	buf_init(&t->inflight, KILN_TSDB_MAX_INFLIGHT + KILN_TSDB_MAX_LINE);
	int r = uv_timer_init(loop, &t->timer);
	if (r < 0) {
		free(t->q);
		free(t->host);
		free(t->prefix);
		free(t);
		return r;
	}
	t->timer.data = t;
	t->timer_open = true;
	log_info("pushing numbers to %s:%d (%s)", t->host, t->port,
		 t->protocol == CONFIG_TSDB_INFLUX ? "InfluxDB line protocol" : "Graphite");
	tsdb_connect_start(t);
	*ret = t;
	return 0;
}

static void tsdb_on_timer_closed(uv_handle_t *h)
{
	struct tsdb *t = h->data;
	t->timer_open = false;
	tsdb_maybe_free(t);
}

void tsdb_stop(struct tsdb *t)
{
	if (!t || t->stopping)
		return;
	t->stopping = true;
	size_t left = t->qlen + t->inflight_n;
	if (left > 0 || t->dropped_unlogged > 0)
		log_info("stopping: %zu points not sent, %llu dropped in all", left,
			 (unsigned long long)t->dropped);
	if (t->gai_busy)
		(void)uv_cancel((uv_req_t *)&t->gai); /* -EBUSY if running: its callback frees */
	if (t->tcp_open && !uv_is_closing((uv_handle_t *)&t->tcp))
		uv_close((uv_handle_t *)&t->tcp, tsdb_on_tcp_closed);
	uv_close((uv_handle_t *)&t->timer, tsdb_on_timer_closed);
}

static void tsdb_drop_oldest(struct tsdb *t)
{
	free(t->q[t->qhead]);
	t->q[t->qhead] = NULL;
	t->qhead = (t->qhead + 1) % KILN_TSDB_MAX_QUEUE;
	t->qlen--;
	t->dropped++;
	t->dropped_unlogged++;
	uint64_t now = uv_now(t->loop);
	if (!t->drop_logged || now - t->drop_logged_ms >= KILN_TSDB_DROP_LOG_MS) {
		log_warn("%s:%d: queue full (%u points): dropped %llu oldest points since the last "
			 "report (%llu in all)",
			 t->host, t->port, (unsigned)KILN_TSDB_MAX_QUEUE,
			 (unsigned long long)t->dropped_unlogged, (unsigned long long)t->dropped);
		t->drop_logged = true;
		t->drop_logged_ms = now;
		t->dropped_unlogged = 0;
	}
}

int tsdb_record(struct tsdb *t, const char *builder, const char *name, double value, double time)
{
	if (!t)
		return 0;
	if (t->stopping)
		return 0;
	struct buf line;
	buf_init(&line, KILN_TSDB_MAX_LINE);
	int r = tsdb_format(t->protocol, t->prefix, builder, name, value, time, &line);
	if (r < 0) {
		buf_release(&line);
		return r;
	}
	if (t->qlen == KILN_TSDB_MAX_QUEUE)
		tsdb_drop_oldest(t);
	t->q[(t->qhead + t->qlen) % KILN_TSDB_MAX_QUEUE] = buf_detach(&line, NULL);
	t->qlen++;
	tsdb_flush(t);
	return 0;
}

uint64_t tsdb_sent(const struct tsdb *t)
{
	return t->sent;
}

uint64_t tsdb_dropped(const struct tsdb *t)
{
	return t->dropped;
}

size_t tsdb_queued(const struct tsdb *t)
{
	return t->qlen + t->inflight_n;
}

int tsdb_connected(const struct tsdb *t)
{
	return t->state == TSDB_CONNECTED;
}
