/*
 * An asynchronous libpq connection on a libuv loop (pg-conn.h): connection
 * attempts stepped by PQconnectPoll from uv_poll callbacks, queries
 * pipelined in libpq's pipeline mode with one sync point each, answers
 * matched to a FIFO of callbacks, LISTEN/NOTIFY, and reconnection with a
 * capped, jittered exponential backoff.  Nothing here blocks the loop.
 */
#include "db/pg-conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"

#define LOG_SUBSYS "pg"
#include "common/log.h"

/* One accepted query, from pg_conn_send() to its callback. */
struct pg_ent {
	struct pg_ent *next;
	char *sql;     /* owned */
	char **values; /* owned, nparams entries (NULL: SQL NULL) */
	int *lengths;  /* owned, NULL when every parameter is text */
	int *formats;  /* owned, NULL when every parameter is text */
	int nparams;
	bool binary_result;
	bool multi;    /* simple query protocol, alone on the connection (pg_query) */
	bool internal; /* a LISTEN of ours: not counted against the caps */
	bool got_end;  /* its results ended (PQgetResult gave NULL): its sync is next */
	size_t bytes;  /* counted against max_queue_bytes */
	PGresult *res; /* owned: the answer, kept until its results end */
	pg_conn_result_cb cb;
	void *arg;
};

struct pg_list {
	struct pg_ent *head, *tail;
};

/* A poll handle on the connection's socket: its own allocation, as libpq
 * may change the socket during an attempt and a closing handle outlives it. */
struct pg_poll {
	uv_poll_t h;
	struct pg_conn *c;
};

struct pg_conn {
	uv_loop_t *loop;
	char *conninfo; /* owned */
	size_t max_queue, max_queue_bytes;
	unsigned connect_timeout_ms, backoff_first_ms, backoff_max_ms;
	pg_conn_notify_cb on_notify;
	pg_conn_state_cb on_state;
	void *arg;

	PGconn *pg; /* owned; NULL while no attempt or connection exists */
	enum pg_conn_state state;
	/* host names libpq would resolve on the loop (getaddrinfo): resolved on
	 * the thread pool first and passed as hostaddr (nhosts 0: none to do) */
	char **hosts;         /* owned: the entries of host= */
	char **addrs;         /* owned: the address found for each ("" for none) */
	size_t nhosts;        /* entries in hosts and addrs */
	size_t next_host;     /* the entry being resolved */
	bool resolving;       /* an attempt is resolving names */
	unsigned gen;         /* attempt number: a late resolution of an old one is dropped */
	struct pg_poll *poll; /* owned (closed through uv_close); NULL when none */
	int poll_events;
	bool want_write;     /* libpq holds unsent bytes: flush when writable */
	uv_timer_t timer;    /* the connect timeout, or the backoff before an attempt */
	uv_prepare_t sender; /* active while queries wait to be sent */
	unsigned backoff_ms; /* the next backoff */
	uint64_t rng;

	struct pg_list inflight; /* sent, answers awaited, in order */
	struct pg_list waiting;  /* accepted, not yet sent */
	size_t nqueued, queued_bytes;

	char **listen; /* owned: the channels, each owned */
	size_t nlisten, listen_alloc;

	char errmsg[KILN_PG_MAX_ERROR];
	int depth;      /* nesting of our callbacks on the stack */
	bool closing;   /* pg_conn_free() was called */
	bool torn_down; /* ...and acted upon */
	int handles;    /* uv handles not yet closed */
};

static _Thread_local char new_errmsg[KILN_PG_MAX_ERROR + 64];

static void pg_conn_connect_step(struct pg_conn *c);
static void pg_conn_down(struct pg_conn *c, const char *why);
static void pg_conn_on_timer(uv_timer_t *t);
static void pg_conn_listen_done(void *arg, int r, const PGresult *res, const char *err);

/* ---- small helpers ---- */

static void pg_list_push(struct pg_list *l, struct pg_ent *e)
{
	e->next = NULL;
	if (l->tail)
		l->tail->next = e;
	else
		l->head = e;
	l->tail = e;
}

static struct pg_ent *pg_list_pop(struct pg_list *l)
{
	struct pg_ent *e = l->head;
	if (e) {
		l->head = e->next;
		if (!l->head)
			l->tail = NULL;
		e->next = NULL;
	}
	return e;
}

/* A copy of libpq's message without its trailing newlines (kept to a cap). */
static void pg_conn_copy_msg(char *dst, size_t size, const char *msg)
{
	snprintf(dst, size, "%s", msg && *msg ? msg : "unknown error");
	size_t n = strlen(dst);
	while (n && (dst[n - 1] == '\n' || dst[n - 1] == '\r' || dst[n - 1] == ' '))
		dst[--n] = '\0';
}

static void pg_ent_free(struct pg_ent *e)
{
	if (!e)
		return;
	for (int i = 0; i < e->nparams; i++)
		free(e->values[i]);
	free(e->values);
	free(e->lengths);
	free(e->formats);
	free(e->sql);
	PQclear(e->res);
	free(e);
}

static void pg_conn_maybe_free(struct pg_conn *c)
{
	if (c->torn_down && c->handles == 0) {
		for (size_t i = 0; i < c->nlisten; i++)
			free(c->listen[i]);
		free(c->listen);
		for (size_t i = 0; i < c->nhosts; i++) {
			free(c->hosts[i]);
			free(c->addrs[i]);
		}
		free(c->hosts);
		free(c->addrs);
		free(c->conninfo);
		free(c);
	}
}

static void pg_conn_handle_closed(uv_handle_t *h)
{
	struct pg_conn *c = h->data;
	c->handles--;
	pg_conn_maybe_free(c);
}

static void pg_conn_poll_closed(uv_handle_t *h)
{
	struct pg_poll *p = (struct pg_poll *)h;
	struct pg_conn *c = p->c;
	free(p);
	c->handles--;
	pg_conn_maybe_free(c);
}

/* Stops watching the socket (before libpq closes it, where we can). */
static void pg_conn_poll_close(struct pg_conn *c)
{
	if (!c->poll)
		return;
	uv_poll_stop(&c->poll->h);
	uv_close((uv_handle_t *)&c->poll->h, pg_conn_poll_closed);
	c->poll = NULL;
	c->poll_events = 0;
}

static void pg_conn_on_poll(uv_poll_t *h, int status, int events);

/* Watches the current socket for events; fresh is true to replace the
 * handle even when the descriptor number is unchanged (during an attempt
 * libpq may close a socket and open another that gets the same number). */
static int pg_conn_watch(struct pg_conn *c, int events, bool fresh)
{
	if (c->poll && !fresh) {
		if (events == c->poll_events)
			return 0;
		int r = uv_poll_start(&c->poll->h, events, pg_conn_on_poll);
		if (r == 0)
			c->poll_events = events;
		return r;
	}
	pg_conn_poll_close(c);
	int fd = PQsocket(c->pg);
	if (fd < 0)
		return -EBADF;
	struct pg_poll *p = xcalloc(1, sizeof(*p));
	p->c = c;
	int r = uv_poll_init_socket(c->loop, &p->h, fd);
	if (r < 0) {
		free(p);
		return r;
	}
	c->handles++;
	c->poll = p;
	r = uv_poll_start(&p->h, events, pg_conn_on_poll);
	if (r < 0) {
		pg_conn_poll_close(c);
		return r;
	}
	c->poll_events = events;
	return 0;
}

static void pg_conn_set_state(struct pg_conn *c, enum pg_conn_state st, const char *why)
{
	c->state = st;
	if (c->on_state && !c->closing) {
		c->depth++;
		c->on_state(c->arg, st, why);
		c->depth--;
	}
}

static void pg_conn_deliver(struct pg_conn *c, struct pg_ent *e, int r, const PGresult *res,
			    const char *err)
{
	if (!e->internal) {
		c->nqueued--;
		c->queued_bytes -= e->bytes;
	}
	c->depth++;
	e->cb(e->arg, r, res, err);
	c->depth--;
}

/* Fails every entry of l with r and a message made of prefix and why. */
static void pg_conn_fail_list(struct pg_conn *c, struct pg_list *l, int r, const char *prefix,
			      const char *why)
{
	char msg[KILN_PG_MAX_ERROR + 128];
	snprintf(msg, sizeof(msg), "%s%s", prefix, why);
	struct pg_ent *e;
	while ((e = pg_list_pop(l))) {
		/* one answered already (its sync was still due) is not told twice */
		if (!e->got_end)
			pg_conn_deliver(c, e, r, NULL, msg);
		pg_ent_free(e);
	}
}

/* ---- tear-down ---- */

static void pg_conn_teardown(struct pg_conn *c)
{
	if (c->torn_down)
		return;
	c->torn_down = true;
	c->gen++;
	struct pg_list inflight = c->inflight, waiting = c->waiting;
	c->inflight = (struct pg_list){0};
	c->waiting = (struct pg_list){0};
	pg_conn_fail_list(c, &inflight, -ECANCELED, "", "the database connection was closed");
	pg_conn_fail_list(c, &waiting, -ECANCELED, "", "the database connection was closed");
	pg_conn_poll_close(c);
	if (c->pg) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	uv_timer_stop(&c->timer);
	uv_prepare_stop(&c->sender);
	uv_close((uv_handle_t *)&c->timer, pg_conn_handle_closed);
	uv_close((uv_handle_t *)&c->sender, pg_conn_handle_closed);
}

/* Called on the way out of each of our uv callbacks. */
static void pg_conn_leave(struct pg_conn *c)
{
	if (c->closing && c->depth == 0)
		pg_conn_teardown(c);
}

void pg_conn_free(struct pg_conn *c)
{
	if (!c || c->closing)
		return;
	c->closing = true;
	if (c->depth == 0)
		pg_conn_teardown(c);
}

/* ---- connecting ---- */

static void pg_conn_notice(void *arg, const char *message)
{
	(void)arg;
	char msg[KILN_PG_MAX_ERROR];
	pg_conn_copy_msg(msg, sizeof(msg), message);
	log_debug("server notice: %s", msg);
}

static uint64_t pg_conn_rand(struct pg_conn *c)
{
	/* xorshift64: jitter only, not a secret */
	uint64_t x = c->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	c->rng = x;
	return x;
}

/* The connection or attempt ended: fail what waits, back off, try again. */
static void pg_conn_down(struct pg_conn *c, const char *why)
{
	bool was_ready = c->state == PG_CONN_READY;
	pg_conn_copy_msg(c->errmsg, sizeof(c->errmsg), why);
	c->resolving = false;
	c->gen++; /* a resolution still running belongs to this attempt: dropped */
	pg_conn_poll_close(c);
	if (c->pg) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	c->want_write = false;
	uv_prepare_stop(&c->sender);

	/* the next attempt after a jittered backoff: half to all of it */
	unsigned d = c->backoff_ms;
	unsigned delay = d / 2 + (unsigned)(pg_conn_rand(c) % (d / 2 + 1));
	c->backoff_ms = d >= c->backoff_max_ms / 2 ? c->backoff_max_ms : d * 2;
	uv_timer_stop(&c->timer);

	struct pg_list inflight = c->inflight, waiting = c->waiting;
	c->inflight = (struct pg_list){0};
	c->waiting = (struct pg_list){0};
	pg_conn_set_state(c, PG_CONN_WAITING, c->errmsg);
	char why_copy[KILN_PG_MAX_ERROR];
	memcpy(why_copy, c->errmsg, sizeof(why_copy));
	if (was_ready) {
		pg_conn_fail_list(c, &inflight, -ECONNRESET,
				  "connection to the database server lost before the answer "
				  "(the query may have run): ",
				  why_copy);
		pg_conn_fail_list(c, &waiting, -ENOTCONN,
				  "not sent: connection to the database server lost: ", why_copy);
	} else {
		pg_conn_fail_list(c, &inflight, -ENOTCONN,
				  "not sent: cannot connect to the database server: ", why_copy);
		pg_conn_fail_list(c, &waiting, -ENOTCONN,
				  "not sent: cannot connect to the database server: ", why_copy);
	}
	if (!c->closing)
		uv_timer_start(&c->timer, pg_conn_on_timer, delay, 0);
}

/* pg_conn_down() with a formatted reason. */
static void pg_conn_downf(struct pg_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void pg_conn_downf(struct pg_conn *c, const char *fmt, ...)
{
	char why[KILN_PG_MAX_ERROR];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	pg_conn_down(c, why);
}

/* libpq's message about the connection, without its newline. */
static const char *pg_conn_libpq_msg(struct pg_conn *c, char *buf, size_t size)
{
	pg_conn_copy_msg(buf, size, c->pg ? PQerrorMessage(c->pg) : NULL);
	return buf;
}

/* Whether libpq would look host up by name (not a socket directory, not
 * a numeric address). */
static bool pg_conn_host_is_name(const char *host)
{
	unsigned char a[sizeof(struct in6_addr)];
	return *host && host[0] != '/' && host[0] != '@' && inet_pton(AF_INET, host, a) != 1 &&
	       inet_pton(AF_INET6, host, a) != 1;
}

/* Reads host= and hostaddr= of conninfo: the host entries to resolve
 * ourselves, none when hostaddr is given or no entry is a name. */
static void pg_conn_plan_hosts(struct pg_conn *c, PQconninfoOption *opts)
{
	const char *host = NULL, *hostaddr = NULL;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!strcmp(o->keyword, "host"))
			host = o->val;
		else if (!strcmp(o->keyword, "hostaddr"))
			hostaddr = o->val;
	}
	if (!host || !*host || (hostaddr && *hostaddr))
		return;
	bool any = false;
	size_t alloc = 0;
	for (const char *p = host;;) {
		size_t n = strcspn(p, ",");
		ARRAY_GROW(c->hosts, c->nhosts + 1, alloc);
		c->hosts[c->nhosts] = xstrndup(p, n);
		any |= pg_conn_host_is_name(c->hosts[c->nhosts]);
		c->nhosts++;
		if (!p[n])
			break;
		p += n + 1;
	}
	if (!any) {
		for (size_t i = 0; i < c->nhosts; i++)
			free(c->hosts[i]);
		free(c->hosts);
		c->hosts = NULL;
		c->nhosts = 0;
		return;
	}
	c->addrs = xcalloc(c->nhosts, sizeof(*c->addrs));
}

/* Starts libpq's attempt, with hostaddr (NULL: none of ours). */
static void pg_conn_start_libpq(struct pg_conn *c, const char *hostaddr)
{
	char msg[KILN_PG_MAX_ERROR];
	PQconninfoOption *opts = PQconninfoParse(c->conninfo, NULL);
	if (!opts)
		abort(); /* it parsed in pg_conn_new: only memory can fail */
	size_t n = 0;
	for (PQconninfoOption *o = opts; o->keyword; o++)
		n++;
	const char **kw = xcalloc(n + 2, sizeof(*kw));
	const char **val = xcalloc(n + 2, sizeof(*val));
	size_t k = 0;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || (hostaddr && !strcmp(o->keyword, "hostaddr")))
			continue;
		kw[k] = o->keyword;
		val[k++] = o->val;
	}
	if (hostaddr) {
		kw[k] = "hostaddr";
		val[k++] = hostaddr;
	}
	c->pg = PQconnectStartParams(kw, val, 0);
	free(kw);
	free(val);
	PQconninfoFree(opts);
	if (!c->pg)
		abort(); /* libpq could not allocate: as xmalloc does */
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		pg_conn_down(c, pg_conn_libpq_msg(c, msg, sizeof(msg)));
		return;
	}
	PQsetNoticeProcessor(c->pg, pg_conn_notice, NULL);
	/* libpq: act as if PQconnectPoll had asked for a writable socket */
	int r = pg_conn_watch(c, UV_WRITABLE, true);
	if (r < 0)
		pg_conn_downf(c, "cannot watch the socket: %s", uv_strerror(r));
}

/* One host name on the thread pool. */
struct pg_resolve {
	uv_getaddrinfo_t req;
	struct pg_conn *c;
	unsigned gen;
};

static void pg_conn_resolve_next(struct pg_conn *c);

static void pg_conn_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct pg_resolve *rs = (struct pg_resolve *)req;
	struct pg_conn *c = rs->c;
	unsigned gen = rs->gen;
	free(rs);
	c->handles--;
	if (c->torn_down || gen != c->gen || !c->resolving) {
		uv_freeaddrinfo(res);
		pg_conn_maybe_free(c);
		return;
	}
	c->depth++;
	const char *host = c->hosts[c->next_host];
	char ip[INET6_ADDRSTRLEN] = "";
	if (status == 0 && res && res->ai_family == AF_INET)
		uv_ip4_name((const struct sockaddr_in *)res->ai_addr, ip, sizeof(ip));
	else if (status == 0 && res && res->ai_family == AF_INET6)
		uv_ip6_name((const struct sockaddr_in6 *)res->ai_addr, ip, sizeof(ip));
	uv_freeaddrinfo(res);
	if (!*ip) {
		pg_conn_downf(c, "cannot resolve '%s': %s", host,
			      status < 0 ? uv_strerror(status) : "no address");
	} else {
		free(c->addrs[c->next_host]);
		c->addrs[c->next_host] = xstrdup(ip);
		c->next_host++;
		pg_conn_resolve_next(c);
	}
	c->depth--;
	pg_conn_leave(c);
}

/* Resolves the next host name, or starts libpq with the addresses found. */
static void pg_conn_resolve_next(struct pg_conn *c)
{
	while (c->next_host < c->nhosts && !pg_conn_host_is_name(c->hosts[c->next_host])) {
		free(c->addrs[c->next_host]);
		c->addrs[c->next_host] = xstrdup(""); /* libpq uses the host entry */
		c->next_host++;
	}
	if (c->next_host == c->nhosts) {
		struct buf b;
		buf_init(&b, (size_t)-1);
		for (size_t i = 0; i < c->nhosts; i++)
			if (buf_adds(&b, i ? "," : "") < 0 || buf_adds(&b, c->addrs[i]) < 0)
				abort(); /* no cap: only memory can fail, as xmalloc */
		c->resolving = false;
		pg_conn_start_libpq(c, b.ptr);
		buf_release(&b);
		return;
	}
	struct pg_resolve *rs = xcalloc(1, sizeof(*rs));
	rs->c = c;
	rs->gen = c->gen;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	int r = uv_getaddrinfo(c->loop, &rs->req, pg_conn_on_resolved, c->hosts[c->next_host], NULL,
			       &hints);
	if (r < 0) {
		free(rs);
		pg_conn_downf(c, "cannot resolve '%s': %s", c->hosts[c->next_host], uv_strerror(r));
		return;
	}
	c->handles++; /* the request holds c until its callback */
}

static void pg_conn_start_attempt(struct pg_conn *c)
{
	if (c->state != PG_CONN_CONNECTING) {
		pg_conn_set_state(c, PG_CONN_CONNECTING, NULL);
		if (c->closing)
			return;
	}
	/* the timeout covers the name resolution too */
	uv_timer_start(&c->timer, pg_conn_on_timer, c->connect_timeout_ms, 0);
	if (c->nhosts) {
		c->resolving = true;
		c->next_host = 0;
		pg_conn_resolve_next(c);
	} else {
		pg_conn_start_libpq(c, NULL);
	}
}

/* Puts our LISTENs in front of the queries that waited for the connection. */
static void pg_conn_queue_listens(struct pg_conn *c)
{
	struct pg_list l = {0};
	for (size_t i = 0; i < c->nlisten; i++) {
		struct pg_ent *e = xcalloc(1, sizeof(*e));
		e->sql = xasprintf("LISTEN \"%s\"", c->listen[i]);
		e->internal = true;
		e->cb = pg_conn_listen_done;
		e->arg = c;
		pg_list_push(&l, e);
	}
	if (!l.head)
		return;
	l.tail->next = c->waiting.head;
	if (!c->waiting.head)
		c->waiting.tail = l.tail;
	c->waiting.head = l.head;
}

static void pg_conn_on_sender(uv_prepare_t *p);

static void pg_conn_arm_sender(struct pg_conn *c)
{
	if (c->state == PG_CONN_READY && c->waiting.head)
		uv_prepare_start(&c->sender, pg_conn_on_sender);
}

static void pg_conn_connected(struct pg_conn *c)
{
	char msg[KILN_PG_MAX_ERROR];
	uv_timer_stop(&c->timer);
	if (PQsetnonblocking(c->pg, 1) != 0) {
		pg_conn_downf(c, "cannot set up the connection: %s",
			      pg_conn_libpq_msg(c, msg, sizeof(msg)));
		return;
	}
	int r = pg_conn_watch(c, UV_READABLE, true);
	if (r < 0) {
		pg_conn_downf(c, "cannot watch the socket: %s", uv_strerror(r));
		return;
	}
	c->backoff_ms = c->backoff_first_ms;
	c->errmsg[0] = '\0';
	pg_conn_queue_listens(c);
	pg_conn_set_state(c, PG_CONN_READY, NULL);
	pg_conn_arm_sender(c);
}

static void pg_conn_connect_step(struct pg_conn *c)
{
	char msg[KILN_PG_MAX_ERROR];
	int r;
	switch (PQconnectPoll(c->pg)) {
	case PGRES_POLLING_OK:
		pg_conn_connected(c);
		return;
	case PGRES_POLLING_READING:
		r = pg_conn_watch(c, UV_READABLE, true);
		break;
	case PGRES_POLLING_WRITING:
		r = pg_conn_watch(c, UV_WRITABLE, true);
		break;
	default: /* PGRES_POLLING_FAILED */
		pg_conn_down(c, pg_conn_libpq_msg(c, msg, sizeof(msg)));
		return;
	}
	if (r < 0)
		pg_conn_downf(c, "cannot watch the socket: %s", uv_strerror(r));
}

static void pg_conn_on_timer(uv_timer_t *t)
{
	struct pg_conn *c = t->data;
	c->depth++;
	if (c->state == PG_CONN_CONNECTING && (c->pg || c->resolving))
		pg_conn_downf(c, "no connection after %u ms", c->connect_timeout_ms);
	else if (!c->closing)
		pg_conn_start_attempt(c);
	c->depth--;
	pg_conn_leave(c);
}

/* ---- sending and reading ---- */

/* Sends what libpq holds; watches for writability while some remains. */
static int pg_conn_flush(struct pg_conn *c)
{
	char msg[KILN_PG_MAX_ERROR];
	int f = PQflush(c->pg);
	if (f < 0) {
		pg_conn_down(c, pg_conn_libpq_msg(c, msg, sizeof(msg)));
		return -ECONNRESET;
	}
	c->want_write = f == 1;
	int r = pg_conn_watch(c, UV_READABLE | (c->want_write ? UV_WRITABLE : 0), false);
	if (r < 0) {
		pg_conn_downf(c, "cannot watch the socket: %s", uv_strerror(r));
		return r;
	}
	return 0;
}

/* Hands every waiting query to libpq, each followed by a sync point. */
static void pg_conn_send_waiting(struct pg_conn *c)
{
	char msg[KILN_PG_MAX_ERROR];
	struct pg_ent *e;
	while (c->state == PG_CONN_READY && !c->closing && (e = c->waiting.head)) {
		/* a multi-statement query in flight is alone on the connection */
		if (c->inflight.tail && c->inflight.tail->multi)
			break;
		int ok;
		if (e->multi) {
			/* after every answer before it (pg_conn_read_results
			 * calls again), outside pipeline mode */
			if (c->inflight.head)
				break;
			ok = PQsendQuery(c->pg, e->sql);
		} else {
			/* pipeline mode while queries are in flight
			 * (pg_conn_read_results leaves it when the last is
			 * answered) */
			if (PQpipelineStatus(c->pg) == PQ_PIPELINE_OFF &&
			    PQenterPipelineMode(c->pg) != 1) {
				pg_conn_downf(c, "cannot enter pipeline mode: %s",
					      pg_conn_libpq_msg(c, msg, sizeof(msg)));
				return;
			}
			ok = PQsendQueryParams(c->pg, e->sql, e->nparams, NULL,
					       (const char *const *)e->values, e->lengths,
					       e->formats, e->binary_result ? 1 : 0) &&
			     PQpipelineSync(c->pg);
		}
		if (!ok) {
			pg_conn_copy_msg(msg, sizeof(msg), PQerrorMessage(c->pg));
			if (PQstatus(c->pg) == CONNECTION_BAD) {
				pg_conn_down(c, msg);
				return;
			}
			/* libpq refused this query alone (it checks what we could
			 * not): it was not sent */
			pg_list_pop(&c->waiting);
			pg_conn_deliver(c, e, KILN_EDB, NULL, msg);
			pg_ent_free(e);
			continue;
		}
		pg_list_pop(&c->waiting);
		pg_list_push(&c->inflight, e);
	}
	if (c->state == PG_CONN_READY && !c->closing)
		pg_conn_flush(c);
}

static void pg_conn_on_sender(uv_prepare_t *p)
{
	struct pg_conn *c = p->data;
	uv_prepare_stop(p);
	c->depth++;
	if (!c->closing)
		pg_conn_send_waiting(c);
	c->depth--;
	pg_conn_leave(c);
}

static void pg_conn_notifies(struct pg_conn *c)
{
	PGnotify *n;
	while (c->pg && (n = PQnotifies(c->pg))) {
		if (c->on_notify && !c->closing) {
			c->depth++;
			c->on_notify(c->arg, n->relname, n->extra ? n->extra : "", n->be_pid);
			c->depth--;
		}
		PQfreemem(n);
	}
}

/* An error that ends the session (severity FATAL or PANIC: a server
 * shutdown, a terminated backend), read before libpq sees the socket close. */
static bool pg_conn_fatal(const PGresult *r)
{
	const char *sev = r ? PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED) : NULL;
	return sev && (!strcmp(sev, "FATAL") || !strcmp(sev, "PANIC"));
}

/* Matches the results libpq has read to the queries in flight. */
static void pg_conn_read_results(struct pg_conn *c)
{
	char msg[KILN_PG_MAX_ERROR];
	struct pg_ent *e;
	while (c->state == PG_CONN_READY && !c->closing && (e = c->inflight.head)) {
		if (PQisBusy(c->pg))
			return;
		PGresult *res = PQgetResult(c->pg);
		if (!e->got_end) {
			if (!res) {
				/* its results ended: answer now, the sync follows
				 * (got_end: answered, never to be failed later) */
				const PGresult *r = e->res;
				ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
				if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK ||
				    st == PGRES_EMPTY_QUERY) {
					e->got_end = true;
					pg_conn_deliver(c, e, 0, r, NULL);
				} else if (PQstatus(c->pg) == CONNECTION_BAD || pg_conn_fatal(r)) {
					/* the server ended the session (a shutdown,
					 * pg_terminate_backend): the connection's
					 * loss, not the query's fault */
					pg_conn_copy_msg(msg, sizeof(msg),
							 r ? PQresultErrorMessage(r) : NULL);
					pg_conn_down(c, msg);
					return;
				} else {
					pg_conn_copy_msg(msg, sizeof(msg),
							 r ? PQresultErrorMessage(r)
							   : "no result from the server");
					e->got_end = true;
					pg_conn_deliver(c, e, KILN_EDB, r, msg);
				}
				PQclear(e->res);
				e->res = NULL;
				if (e->multi) {
					/* no sync point: done; what waited behind it goes */
					pg_list_pop(&c->inflight);
					pg_ent_free(e);
					pg_conn_arm_sender(c);
				}
				continue;
			}
			ExecStatusType st = PQresultStatus(res);
			if (st == PGRES_PIPELINE_SYNC || st == PGRES_COPY_IN ||
			    st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
				PQclear(res);
				pg_conn_downf(c,
					      "unexpected %s from the server in a query's results",
					      PQresStatus(st));
				return;
			}
			/* the last result, or the first error (a multi query has one
			 * result per statement, others have one) */
			if (e->res && PQresultStatus(e->res) == PGRES_FATAL_ERROR) {
				PQclear(res);
			} else {
				PQclear(e->res);
				e->res = res;
			}
			continue;
		}
		if (!res)
			return; /* nothing more yet (libpq gives NULL once more at times) */
		ExecStatusType st = PQresultStatus(res);
		PQclear(res);
		if (st != PGRES_PIPELINE_SYNC) {
			pg_conn_downf(c, "unexpected %s from the server where a sync was due",
				      PQresStatus(st));
			return;
		}
		pg_list_pop(&c->inflight);
		pg_ent_free(e);
		/* Idle: out of pipeline mode, where libpq parses no input while
		 * no query is pending, so that notifications reach PQnotifies() */
		if (!c->inflight.head && PQexitPipelineMode(c->pg) != 1) {
			pg_conn_downf(c, "cannot leave pipeline mode: %s",
				      pg_conn_libpq_msg(c, msg, sizeof(msg)));
			return;
		}
		/* a multi query waits for the pipeline to empty */
		if (!c->inflight.head)
			pg_conn_arm_sender(c);
	}
}

static void pg_conn_on_poll(uv_poll_t *h, int status, int events)
{
	struct pg_poll *p = (struct pg_poll *)h;
	struct pg_conn *c = p->c;
	char msg[KILN_PG_MAX_ERROR];
	if (c->closing || c->poll != p)
		return;
	c->depth++;
	/* status < 0: libuv saw POLLERR (it says EBADF) and stopped the
	 * handle.  libpq reads the socket's own error: while connecting, its
	 * next step does (and may try the next address); connected, reading. */
	if (c->state == PG_CONN_CONNECTING) {
		pg_conn_connect_step(c);
	} else if (status < 0 && c->state == PG_CONN_READY) {
		if (!PQconsumeInput(c->pg))
			pg_conn_down(c, pg_conn_libpq_msg(c, msg, sizeof(msg)));
		else
			pg_conn_downf(c, "socket error: %s", uv_strerror(status));
	} else if (c->state == PG_CONN_READY) {
		if ((events & UV_WRITABLE) && pg_conn_flush(c) < 0)
			goto out;
		if (events & UV_READABLE) {
			if (!PQconsumeInput(c->pg)) {
				pg_conn_down(c, pg_conn_libpq_msg(c, msg, sizeof(msg)));
				goto out;
			}
			pg_conn_notifies(c);
			pg_conn_read_results(c);
			if (c->state != PG_CONN_READY || c->closing)
				goto out;
			pg_conn_notifies(c);
			if (PQstatus(c->pg) == CONNECTION_BAD) {
				pg_conn_down(c, pg_conn_libpq_msg(c, msg, sizeof(msg)));
				goto out;
			}
			/* reading may let libpq send more (pipeline mode) */
			if (c->want_write)
				pg_conn_flush(c);
		}
	}
out:
	c->depth--;
	pg_conn_leave(c);
}

/* ---- the interface ---- */

const char *pg_conn_new_errmsg(void)
{
	return new_errmsg;
}

int pg_conn_new(uv_loop_t *loop, const struct pg_conn_opts *o, struct pg_conn **ret)
{
	new_errmsg[0] = '\0';
	if (!o || !o->conninfo) {
		snprintf(new_errmsg, sizeof(new_errmsg), "no database URL");
		return -EINVAL;
	}
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(o->conninfo, &perr);
	if (!opts) {
		char msg[KILN_PG_MAX_ERROR];
		pg_conn_copy_msg(msg, sizeof(msg), perr ? perr : "out of memory");
		snprintf(new_errmsg, sizeof(new_errmsg), "invalid database URL: %s", msg);
		PQfreemem(perr);
		return KILN_ECONFIG;
	}

	struct pg_conn *c = xcalloc(1, sizeof(*c));
	pg_conn_plan_hosts(c, opts);
	PQconninfoFree(opts);
	c->loop = loop;
	c->conninfo = xstrdup(o->conninfo);
	c->max_queue = o->max_queue ? o->max_queue : KILN_PG_MAX_QUEUE;
	c->max_queue_bytes = o->max_queue_bytes ? o->max_queue_bytes : KILN_PG_MAX_QUEUE_BYTES;
	c->connect_timeout_ms =
		o->connect_timeout_ms ? o->connect_timeout_ms : KILN_PG_CONNECT_TIMEOUT_MS;
	c->backoff_first_ms = o->backoff_first_ms ? o->backoff_first_ms : KILN_PG_BACKOFF_FIRST_MS;
	c->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : KILN_PG_BACKOFF_MAX_MS;
	if (c->backoff_max_ms < c->backoff_first_ms)
		c->backoff_max_ms = c->backoff_first_ms;
	c->backoff_ms = c->backoff_first_ms;
	c->on_notify = o->on_notify;
	c->on_state = o->on_state;
	c->arg = o->arg;
	c->rng = uv_hrtime() | 1;
	c->state = PG_CONN_CONNECTING;
	uv_timer_init(loop, &c->timer);
	uv_prepare_init(loop, &c->sender);
	c->timer.data = c;
	c->sender.data = c;
	c->handles = 2;
	/* the first attempt on the next loop turn: no callback from in here */
	uv_timer_start(&c->timer, pg_conn_on_timer, 0, 0);
	*ret = c;
	return 0;
}

int pg_conn_send(struct pg_conn *c, const struct pg_query *q, pg_conn_result_cb cb, void *arg)
{
	if (c->closing)
		return -ECANCELED;
	if (!q || !q->sql || !cb || q->nparams < 0 || q->nparams > 65535 ||
	    (q->nparams && !q->values) || (q->multi && q->nparams))
		return -EINVAL;
	if (c->state == PG_CONN_WAITING)
		return -ENOTCONN;
	if (c->nqueued >= c->max_queue)
		return -ENOBUFS;

	size_t bytes = strlen(q->sql) + 1;
	for (int i = 0; i < q->nparams; i++) {
		if (!q->values[i])
			continue;
		bool bin = q->formats && q->formats[i] == 1;
		if (bin && (!q->lengths || q->lengths[i] < 0))
			return -EINVAL;
		bytes += bin ? (size_t)q->lengths[i] : strlen(q->values[i]) + 1;
	}
	if (bytes > c->max_queue_bytes - c->queued_bytes)
		return -ENOBUFS;

	struct pg_ent *e = xcalloc(1, sizeof(*e));
	e->sql = xstrdup(q->sql);
	e->nparams = q->nparams;
	e->binary_result = q->binary_result;
	e->multi = q->multi;
	e->bytes = bytes;
	e->cb = cb;
	e->arg = arg;
	if (q->nparams) {
		e->values = xcalloc((size_t)q->nparams, sizeof(*e->values));
		if (q->formats) {
			e->formats = xmemdup(q->formats, (size_t)q->nparams * sizeof(int));
			e->lengths = xcalloc((size_t)q->nparams, sizeof(int));
		}
		for (int i = 0; i < q->nparams; i++) {
			if (!q->values[i])
				continue;
			if (q->formats && q->formats[i] == 1) {
				/* one byte more, so that an empty value is not NULL */
				e->values[i] = xmalloc((size_t)q->lengths[i] + 1);
				memcpy(e->values[i], q->values[i], (size_t)q->lengths[i]);
				e->lengths[i] = q->lengths[i];
			} else {
				e->values[i] = xstrdup(q->values[i]);
			}
		}
	}
	pg_list_push(&c->waiting, e);
	c->nqueued++;
	c->queued_bytes += bytes;
	pg_conn_arm_sender(c);
	return 0;
}

int pg_conn_query(struct pg_conn *c, const char *sql, int nparams, const char *const *values,
		  pg_conn_result_cb cb, void *arg)
{
	struct pg_query q = {.sql = sql, .nparams = nparams, .values = values};
	return pg_conn_send(c, &q, cb, arg);
}

static bool pg_conn_channel_ok(const char *ch)
{
	size_t n = strlen(ch);
	if (n == 0 || n > 63 || (ch[0] >= '0' && ch[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char x = ch[i];
		if (!((x >= 'a' && x <= 'z') || (x >= '0' && x <= '9') || x == '_'))
			return false;
	}
	return true;
}

static void pg_conn_listen_done(void *arg, int r, const PGresult *res, const char *err)
{
	struct pg_conn *c = arg;
	(void)res;
	/* a failed LISTEN on a live connection (not a lost one: the next
	 * connection listens again) is kept for pg_conn_errmsg() */
	if (r == KILN_EDB) {
		pg_conn_copy_msg(c->errmsg, sizeof(c->errmsg), err);
		log_debug("LISTEN failed: %s", c->errmsg);
	}
}

int pg_conn_listen(struct pg_conn *c, const char *channel)
{
	if (c->closing)
		return -ECANCELED;
	if (!channel || !pg_conn_channel_ok(channel))
		return -EINVAL;
	for (size_t i = 0; i < c->nlisten; i++)
		if (!strcmp(c->listen[i], channel))
			return 0;
	if (c->nlisten >= KILN_PG_MAX_LISTEN)
		return -ENOBUFS;
	ARRAY_GROW(c->listen, c->nlisten + 1, c->listen_alloc);
	c->listen[c->nlisten++] = xstrdup(channel);
	/* connecting: pg_conn_connected() sends it; waiting: the next one does */
	if (c->state == PG_CONN_READY) {
		struct pg_ent *e = xcalloc(1, sizeof(*e));
		e->sql = xasprintf("LISTEN \"%s\"", channel);
		e->internal = true;
		e->cb = pg_conn_listen_done;
		e->arg = c;
		pg_list_push(&c->waiting, e);
		pg_conn_arm_sender(c);
	}
	return 0;
}

enum pg_conn_state pg_conn_state(const struct pg_conn *c)
{
	return c->state;
}

const char *pg_conn_errmsg(const struct pg_conn *c)
{
	return c->errmsg;
}

size_t pg_conn_pending(const struct pg_conn *c)
{
	return c->nqueued;
}

int pg_conn_backend_pid(const struct pg_conn *c)
{
	return c->state == PG_CONN_READY && c->pg ? PQbackendPID(c->pg) : 0;
}
