/*
 * The IRC reporter: one long-lived TCP connection per reporter on the
 * master's loop (uv_tcp; never blocking: a dead or slow server costs a
 * timer), registered with PASS/NICK/USER, joined to its channels, where it
 * announces the builds the filter picks ("hello: build #12 failure (Ann Dev)
 * URL") and answers commands addressed to it ("kiln: status", "kiln: last
 * hello", "kiln: force hello", "kiln: notify off", "kiln: help").
 *
 * - Reconnects after `queue.backoff` seconds, doubling up to 64 times that
 *   (reset once registered); a connection or registration taking longer
 *   than `queue.timeout` is dropped; a server silent for 120 s gets a PING,
 *   and the connection is dropped when no answer comes within the timeout.
 * - Outbound PRIVMSGs wait in one queue capped by `queue.max_messages` and
 *   `queue.max_bytes` (the oldest dropped first, logged) and leave through a
 *   token bucket (`rate` lines per second, `burst` at once); registration,
 *   JOIN and PONG lines go at once.  Every line is at most 512 bytes with its
 *   CRLF (irc_format).  Unsent bytes in the socket above 64 KiB: the
 *   connection is dropped (the server does not read).
 * - Commands are ignored while the queue is half full (a flood of commands
 *   never pushes announcements out).
 * - Incoming lines are capped (IRC_MAX_IN_LINE); a longer one is skipped.
 * - Nick in use (433, 432, 436) while registering: NICK_, then NICK2, NICK3...
 */
#define LOG_SUBSYS "irc"
#include "master/reporters/irc.h"
#include "master/reporters/reporters.h"
#include "master/engine.h"
#include "master/master.h"
#include "master/sched/sched.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "db/db.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uv.h>

#define IRC_MAX_PENDING_WRITE (64u << 10)
#define IRC_PING_IDLE_MS 120000
#define IRC_MAX_NICK_TRIES 9
#define IRC_MAX_CHANNELS 16

enum irc_state { IRC_IDLE, IRC_RESOLVING, IRC_CONNECTING, IRC_REGISTERING, IRC_READY };

struct irc_line {
	struct irc_line *next;
	size_t len;
	char text[]; /* with CRLF */
};

struct irc {
	struct reporter *r;
	const struct config_reporter_irc *c;
	uv_loop_t *loop;
	enum irc_state state;
	bool stopping;
	int handles; /* open handles and requests; freed at 0 once stopping */

	uv_getaddrinfo_t gai;
	bool gai_busy;
	uv_connect_t conn;
	uv_tcp_t *tcp; /* the current connection, NULL: none */
	uv_timer_t reconnect, send, watch;
	uint64_t backoff_ms, conn_started, last_rx, ping_sent;

	char in[IRC_MAX_IN_LINE + 2];
	size_t in_len;
	bool skipping; /* inside a line over the cap */

	char nick[64];
	int nick_tries;
	bool notify[IRC_MAX_CHANNELS]; /* per channel: announce builds */

	struct irc_line *head, *tail; /* PRIVMSGs waiting */
	size_t nq, qbytes;
	uint64_t dropped, ignored;
	struct irc_bucket bucket;
};

static void irc_disconnect(struct irc *irc, const char *why);
static void irc_pump(struct irc *irc);

/* ---- handles' lifetime ------------------------------------------------------ */

static void irc_maybe_free(struct irc *irc)
{
	if (!irc->stopping || irc->handles > 0)
		return;
	while (irc->head) {
		struct irc_line *l = irc->head;
		irc->head = l->next;
		free(l);
	}
	free(irc);
}

static void irc_handle_closed(uv_handle_t *h)
{
	struct irc *irc = h->data;
	if (h->type == UV_TCP)
		free(h);
	irc->handles--;
	irc_maybe_free(irc);
}

/* ---- writing ------------------------------------------------------------------- */

struct irc_write {
	uv_write_t req;
	char data[];
};

static void irc_write_done(uv_write_t *req, int status)
{
	(void)status; /* a failed write shows as a read error or EOF too */
	free(req);
}

/* Writes raw bytes now (not rate limited). */
static void irc_write_raw(struct irc *irc, const char *data, size_t len)
{
	if (!irc->tcp)
		return;
	if (uv_stream_get_write_queue_size((uv_stream_t *)irc->tcp) > IRC_MAX_PENDING_WRITE) {
		irc_disconnect(irc, "the server does not read what we send");
		return;
	}
	struct irc_write *w = xmalloc(sizeof(*w) + len);
	memcpy(w->data, data, len);
	uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
	int r = uv_write(&w->req, (uv_stream_t *)irc->tcp, &b, 1, irc_write_done);
	if (r < 0) {
		free(w);
		irc_disconnect(irc, uv_strerror(r));
	}
}

static void irc_sendf(struct irc *irc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void irc_sendf(struct irc *irc, const char *fmt, ...)
{
	char line[IRC_MAX_LINE + 1];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	line[n++] = '\r';
	line[n++] = '\n';
	irc_write_raw(irc, line, (size_t)n);
}

/* Queues a PRIVMSG (rate limited).  The oldest waiting line goes when a cap
 * is reached. */
static void irc_say(struct irc *irc, const char *target, const char *text)
{
	char line[IRC_MAX_LINE + 1];
	int n = irc_format(line, sizeof(line), "PRIVMSG", target, text);
	if (n < 0)
		return;
	const struct config_reporter *rc = irc->r->cfg;
	while (irc->head &&
	       (irc->nq + 1 > rc->max_messages || irc->qbytes + (size_t)n > rc->max_bytes)) {
		struct irc_line *old = irc->head;
		irc->head = old->next;
		if (!irc->head)
			irc->tail = NULL;
		irc->nq--;
		irc->qbytes -= old->len;
		free(old);
		if (irc->dropped++ % 100 == 0)
			log_warn(
				"reporter '%s': queue full (%zu lines): dropped the oldest waiting "
				"line (%" PRIu64 " so far)",
				rc->name, rc->max_messages, irc->dropped);
	}
	struct irc_line *l = xmalloc(sizeof(*l) + (size_t)n + 1);
	l->next = NULL;
	l->len = (size_t)n;
	memcpy(l->text, line, (size_t)n + 1);
	if (irc->tail)
		irc->tail->next = l;
	else
		irc->head = l;
	irc->tail = l;
	irc->nq++;
	irc->qbytes += (size_t)n;
	irc_pump(irc);
}

static void irc_send_tick(uv_timer_t *t)
{
	irc_pump(t->data);
}

/* Sends what the bucket allows, then waits for the next token. */
static void irc_pump(struct irc *irc)
{
	if (irc->stopping || irc->state != IRC_READY)
		return;
	uint64_t now = uv_now(irc->loop);
	while (irc->head && irc->tcp && irc_bucket_take(&irc->bucket, now)) {
		struct irc_line *l = irc->head;
		irc->head = l->next;
		if (!irc->head)
			irc->tail = NULL;
		irc->nq--;
		irc->qbytes -= l->len;
		irc_write_raw(irc, l->text, l->len);
		free(l);
	}
	if (irc->head && irc->tcp && !uv_is_active((uv_handle_t *)&irc->send))
		uv_timer_start(&irc->send, irc_send_tick, irc_bucket_wait_ms(&irc->bucket, now), 0);
}

/* ---- connecting -------------------------------------------------------------------- */

static void irc_connect(struct irc *irc);

static void irc_reconnect_tick(uv_timer_t *t)
{
	irc_connect(t->data);
}

static void irc_schedule_reconnect(struct irc *irc)
{
	if (irc->stopping)
		return;
	uint64_t base = (uint64_t)(irc->r->cfg->backoff * 1000);
	if (base == 0)
		base = 100;
	uint64_t wait = irc->backoff_ms ? irc->backoff_ms : base;
	irc->backoff_ms = wait * 2 > base * 64 ? base * 64 : wait * 2;
	log_info("reporter '%s': reconnecting in %.1f s", irc->r->cfg->name, (double)wait / 1e3);
	uv_timer_start(&irc->reconnect, irc_reconnect_tick, wait, 0);
}

static void irc_disconnect(struct irc *irc, const char *why)
{
	if (irc->tcp) {
		log_warn("reporter '%s': disconnected from %s:%d: %s", irc->r->cfg->name,
			 irc->c->host, irc->c->port, why);
		uv_close((uv_handle_t *)irc->tcp, irc_handle_closed);
		irc->tcp = NULL;
	}
	uv_timer_stop(&irc->send);
	irc->state = IRC_IDLE;
	irc->in_len = 0;
	irc->skipping = false;
	irc_schedule_reconnect(irc);
}

static void irc_register(struct irc *irc)
{
	irc->state = IRC_REGISTERING;
	irc->nick_tries = 0;
	snprintf(irc->nick, sizeof(irc->nick), "%s", irc->c->nick);
	if (irc->c->password)
		irc_sendf(irc, "PASS %s", irc->c->password);
	irc_sendf(irc, "NICK %s", irc->nick);
	irc_sendf(irc, "USER %s 0 * :Kiln CI", irc->c->nick);
}

static void irc_next_nick(struct irc *irc)
{
	if (++irc->nick_tries > IRC_MAX_NICK_TRIES) {
		irc_disconnect(irc, "no free nick");
		return;
	}
	if (irc->nick_tries == 1)
		snprintf(irc->nick, sizeof(irc->nick), "%s_", irc->c->nick);
	else
		snprintf(irc->nick, sizeof(irc->nick), "%s%d", irc->c->nick, irc->nick_tries);
	log_info("reporter '%s': nick in use: trying %s", irc->r->cfg->name, irc->nick);
	irc_sendf(irc, "NICK %s", irc->nick);
}

static void irc_on_line(struct irc *irc, const char *line, size_t len);

static void irc_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct irc *irc = h->data;
	(void)suggested;
	*b = uv_buf_init(irc->in + irc->in_len, (unsigned)(sizeof(irc->in) - irc->in_len));
}

static void irc_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct irc *irc = s->data;
	(void)b;
	if (n < 0) {
		irc_disconnect(irc, n == UV_EOF ? "closed by the server" : uv_strerror((int)n));
		return;
	}
	irc->last_rx = uv_now(irc->loop);
	irc->ping_sent = 0;
	irc->in_len += (size_t)n;
	size_t start = 0;
	uv_tcp_t *tcp = irc->tcp;
	for (size_t i = 0; i < irc->in_len && irc->tcp == tcp; i++) {
		if (irc->in[i] != '\n')
			continue;
		if (!irc->skipping)
			irc_on_line(irc, irc->in + start, i - start + 1);
		irc->skipping = false;
		start = i + 1;
	}
	if (irc->tcp != tcp)
		return; /* disconnected while handling */
	memmove(irc->in, irc->in + start, irc->in_len - start);
	irc->in_len -= start;
	if (irc->in_len >= sizeof(irc->in) - 1) {
		/* a line over the cap: skipped up to its end */
		if (!irc->skipping)
			log_warn("reporter '%s': a line over %d bytes from the server: skipped",
				 irc->r->cfg->name, IRC_MAX_IN_LINE);
		irc->skipping = true;
		irc->in_len = 0;
	}
}

static void irc_connected(uv_connect_t *req, int status)
{
	struct irc *irc = req->data;
	irc->handles--;
	if (irc->stopping) {
		irc_maybe_free(irc);
		return;
	}
	if (status == UV_ECANCELED)
		return;
	if (status < 0) {
		irc_disconnect(irc, uv_strerror(status));
		return;
	}
	log_info("reporter '%s': connected to %s:%d", irc->r->cfg->name, irc->c->host,
		 irc->c->port);
	irc->last_rx = uv_now(irc->loop);
	uv_read_start((uv_stream_t *)irc->tcp, irc_alloc, irc_read);
	irc_register(irc);
}

static void irc_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct irc *irc = req->data;
	irc->gai_busy = false;
	irc->handles--;
	if (irc->stopping) {
		uv_freeaddrinfo(res);
		irc_maybe_free(irc);
		return;
	}
	if (status < 0 || !res) {
		uv_freeaddrinfo(res);
		irc->state = IRC_IDLE;
		log_warn("reporter '%s': cannot resolve %s: %s", irc->r->cfg->name, irc->c->host,
			 uv_strerror(status));
		irc_schedule_reconnect(irc);
		return;
	}
	irc->tcp = xcalloc(1, sizeof(*irc->tcp));
	uv_tcp_init(irc->loop, irc->tcp);
	irc->tcp->data = irc;
	irc->handles++;
	uv_tcp_nodelay(irc->tcp, 1);
	irc->conn.data = irc;
	irc->state = IRC_CONNECTING;
	int r = uv_tcp_connect(&irc->conn, irc->tcp, res->ai_addr, irc_connected);
	uv_freeaddrinfo(res);
	if (r < 0) {
		irc_disconnect(irc, uv_strerror(r));
		return;
	}
	irc->handles++;
}

static void irc_connect(struct irc *irc)
{
	if (irc->stopping || irc->state != IRC_IDLE)
		return;
	char port[16];
	snprintf(port, sizeof(port), "%d", irc->c->port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	irc->gai.data = irc;
	irc->conn_started = uv_now(irc->loop);
	int r = uv_getaddrinfo(irc->loop, &irc->gai, irc_resolved, irc->c->host, port, &hints);
	if (r < 0) {
		log_warn("reporter '%s': cannot resolve %s: %s", irc->r->cfg->name, irc->c->host,
			 uv_strerror(r));
		irc_schedule_reconnect(irc);
		return;
	}
	irc->gai_busy = true;
	irc->handles++;
	irc->state = IRC_RESOLVING;
}

/* Every second: the connection and registration timeout, PING when idle. */
static void irc_watch_tick(uv_timer_t *t)
{
	struct irc *irc = t->data;
	uint64_t now = uv_now(irc->loop);
	uint64_t timeout = (uint64_t)(irc->r->cfg->timeout * 1000);
	if ((irc->state == IRC_CONNECTING || irc->state == IRC_REGISTERING) &&
	    now - irc->conn_started > timeout)
		irc_disconnect(irc, irc->state == IRC_CONNECTING ? "connection timed out"
								 : "registration timed out");
	else if (irc->state == IRC_READY) {
		if (irc->ping_sent && now - irc->ping_sent > timeout)
			irc_disconnect(irc, "no answer to PING");
		else if (!irc->ping_sent && now - irc->last_rx > IRC_PING_IDLE_MS) {
			irc->ping_sent = now;
			irc_sendf(irc, "PING :kiln");
		}
	}
}

/* ---- commands --------------------------------------------------------------------- */

/* One command whose reads are in flight (issue 14: on the loop, on either
 * backend): the builder by name for last, force and stop, then its builds;
 * the running builds then their builders' names for status.  It holds irc
 * (irc->handles): a reporter stopped meanwhile only frees it. */
enum irc_cmd_what { IRC_CMD_STATUS, IRC_CMD_LAST, IRC_CMD_FORCE, IRC_CMD_STOP };

struct irc_cmd {
	struct irc *irc;
	enum irc_cmd_what what;
	char *to, *who, *name; /* owned; capped by the line they came in */
	int64_t bid;
	json_t *builds; /* status: the running builds (owned) */
	int64_t bsid, brid;
};

static struct irc_cmd *irc_cmd_new(struct irc *irc, enum irc_cmd_what what, const char *to,
				   const char *who, const char *name)
{
	struct irc_cmd *c = xcalloc(1, sizeof(*c));
	c->irc = irc;
	c->what = what;
	c->to = xstrdup(to);
	c->who = xstrdup(who ? who : "");
	c->name = xstrdup(name ? name : "");
	irc->handles++;
	return c;
}

static void irc_cmd_free(struct irc_cmd *c)
{
	struct irc *irc = c->irc;
	json_decref(c->builds);
	free(c->to);
	free(c->who);
	free(c->name);
	free(c);
	irc->handles--;
	irc_maybe_free(irc);
}

/* An answer came for c: false (c freed) when nobody is there to say it. */
static bool irc_cmd_alive(struct irc_cmd *c, int r)
{
	if (c->irc->stopping || r == -ECANCELED || c->irc->r->m->stopping) {
		irc_cmd_free(c);
		return false;
	}
	return true;
}

/* Says text to c's target, and frees c. */
static void irc_cmd_say(struct irc_cmd *c, const char *text)
{
	irc_say(c->irc, c->to, text);
	irc_cmd_free(c);
}

static void irc_build_url(struct irc *irc, int64_t builderid, int64_t number, char *out,
			  size_t size)
{
	const struct config *cfg = irc->r->m->cfg;
	if (cfg->url && *cfg->url) {
		size_t n = strlen(cfg->url);
		while (n && cfg->url[n - 1] == '/')
			n--;
		snprintf(out, size, "%.*s/builders/%" PRId64 "/builds/%" PRId64, (int)n, cfg->url,
			 builderid, number);
	} else
		snprintf(out, size, "http://%s:%d/builders/%" PRId64 "/builds/%" PRId64,
			 cfg->http.host && *cfg->http.host ? cfg->http.host : "localhost",
			 cfg->http.port, builderid, number);
}

static void irc_status_named(void *arg, int r, json_t *builders, int64_t total, const char *err)
{
	struct irc_cmd *c = arg;
	(void)total;
	(void)err;
	if (!irc_cmd_alive(c, r)) {
		json_decref(builders);
		return;
	}
	struct irc *irc = c->irc;
	json_t *items = c->builds;
	struct buf b;
	buf_init(&b, IRC_MAX_LINE);
	int br = buf_addf(&b, "%zu builders, %zu running build%s", irc->r->m->cfg->nbuilders,
			  json_array_size(items), json_array_size(items) == 1 ? "" : "s");
	size_t i;
	json_t *row;
	json_array_foreach(items, i, row)
	{
		int64_t bid = json_integer_value(json_object_get(row, "builderid"));
		const char *name = "?";
		size_t k;
		json_t *brow;
		json_array_foreach(r == 0 ? builders : NULL, k, brow)
		{
			if (json_integer_value(json_object_get(brow, "builderid")) == bid)
				name = json_string_value(json_object_get(brow, "name")) ?: "?";
		}
		if (br >= 0)
			br = buf_addf(&b, "%s %s #%" PRId64, i ? "," : ":", name,
				      (int64_t)json_integer_value(json_object_get(row, "number")));
	}
	irc_say(irc, c->to, b.ptr ? b.ptr : "status");
	buf_release(&b);
	json_decref(builders);
	irc_cmd_free(c);
}

static void irc_status_builds(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct irc_cmd *c = arg;
	(void)total;
	(void)err;
	if (!irc_cmd_alive(c, r)) {
		json_decref(items);
		return;
	}
	if (r < 0) {
		irc_cmd_say(c, "status: cannot read the builds (database error)");
		return;
	}
	c->builds = items;
	/* the builders' names, one read for all (at most 10 ids) */
	char ids[10][24];
	const char *vals[10];
	size_t n = 0, i;
	json_t *row;
	json_array_foreach(items, i, row)
	{
		if (n == 10)
			break;
		snprintf(ids[n], sizeof(ids[n]), "%" PRId64,
			 (int64_t)json_integer_value(json_object_get(row, "builderid")));
		vals[n] = ids[n];
		n++;
	}
	if (n == 0) {
		irc_status_named(c, 0, NULL, 0, NULL);
		return;
	}
	struct db_filter f = {.field = "builderid", .op = DB_OP_EQ, .values = vals, .nvalues = n};
	struct db_query q = {.filters = &f, .nfilters = 1, .limit = 10};
	if (db_list_async(c->irc->r->m->db, DB_BUILDERS, &q, NULL, false, irc_status_named, c) < 0)
		irc_status_named(c, -EIO, NULL, 0, NULL); /* the names as '?' */
}

static void irc_cmd_status(struct irc *irc, const char *to)
{
	const char *vc[] = {"false"};
	struct db_filter f = {.field = "complete", .op = DB_OP_EQ, .values = vc, .nvalues = 1};
	const char *order[] = {"buildid"};
	struct db_query q = {
		.filters = &f, .nfilters = 1, .order = order, .norder = 1, .limit = 10};
	struct irc_cmd *c = irc_cmd_new(irc, IRC_CMD_STATUS, to, NULL, NULL);
	if (db_list_async(irc->r->m->db, DB_BUILDS, &q, NULL, false, irc_status_builds, c) < 0)
		irc_cmd_say(c, "status: cannot read the builds (database error)");
}

static void irc_last_read(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct irc_cmd *c = arg;
	(void)total;
	(void)err;
	if (!irc_cmd_alive(c, r)) {
		json_decref(items);
		return;
	}
	if (r < 0) {
		irc_cmd_say(c, "last: cannot read the builds (database error)");
		return;
	}
	char msg[IRC_MAX_LINE];
	json_t *row = json_array_get(items, 0);
	if (!row)
		snprintf(msg, sizeof(msg), "%s: no finished build yet", c->name);
	else {
		int64_t number = json_integer_value(json_object_get(row, "number"));
		char url[300];
		irc_build_url(c->irc, c->bid, number, url, sizeof(url));
		const char *state = json_string_value(json_object_get(row, "state_string"));
		snprintf(msg, sizeof(msg), "%s: last build #%" PRId64 " %s (%s) %s", c->name,
			 number,
			 reporters_results_name(
				 (int)json_integer_value(json_object_get(row, "results"))),
			 state && *state ? state : "finished", url);
	}
	json_decref(items);
	irc_cmd_say(c, msg);
}

static void irc_cmd_last(struct irc_cmd *c)
{
	char ids[24];
	snprintf(ids, sizeof(ids), "%" PRId64, c->bid);
	const char *vb[] = {ids}, *vc[] = {"true"};
	struct db_filter f[] = {
		{.field = "builderid", .op = DB_OP_EQ, .values = vb, .nvalues = 1},
		{.field = "complete", .op = DB_OP_EQ, .values = vc, .nvalues = 1},
	};
	const char *order[] = {"-number"};
	struct db_query q = {.filters = f, .nfilters = 2, .order = order, .norder = 1, .limit = 1};
	if (db_list_async(c->irc->r->m->db, DB_BUILDS, &q, NULL, false, irc_last_read, c) < 0)
		irc_cmd_say(c, "last: cannot read the builds (database error)");
}

static void irc_force_committed(void *arg, int r, const char *err)
{
	struct irc_cmd *c = arg;
	if (!irc_cmd_alive(c, 0))
		return;
	char msg[IRC_MAX_LINE];
	if (r < 0)
		snprintf(msg, sizeof(msg), "force: %.60s: %s", c->name, err ? err : err_str(r));
	else {
		log_info("reporter '%s': %s forced %s (buildset %" PRId64 ")", c->irc->r->cfg->name,
			 c->who, c->name, c->bsid);
		snprintf(msg, sizeof(msg),
			 "%.60s: forced (buildset %" PRId64 ", request %" PRId64 ")", c->name,
			 c->bsid, c->brid);
	}
	irc_cmd_say(c, msg);
}

static void irc_cmd_force(struct irc_cmd *c)
{
	char msg[IRC_MAX_LINE];
	struct master *m = c->irc->r->m;
	const struct config_scheduler *sc = NULL;
	for (size_t i = 0; i < m->cfg->nschedulers && !sc; i++) {
		const struct config_scheduler *s = &m->cfg->scheduler[i];
		if (s->kind != CONFIG_SCHED_FORCE)
			continue;
		for (size_t k = 0; k < s->nbuilders; k++)
			if (!strcmp(s->builders[k], c->name))
				sc = s;
	}
	if (!sc || !m->sched) {
		snprintf(msg, sizeof(msg), "force: %.60s has no force scheduler", c->name);
		irc_cmd_say(c, msg);
		return;
	}
	char reason[200];
	snprintf(reason, sizeof(reason), "forced by %s on IRC", c->who);
	json_t *params = json_pack("{s:s}", "reason", reason);
	char *err = NULL;
	int r = sched_force(m->sched, sc->name, params, &c->bid, 1, &c->bsid, &c->brid, &err);
	json_decref(params);
	if (r < 0) {
		snprintf(msg, sizeof(msg), "force: %.60s: %s", c->name, err ? err : err_str(r));
		free(err);
		irc_cmd_say(c, msg);
		return;
	}
	free(err);
	/* the answer acknowledges the stored buildset */
	db_commit_then(m->db, irc_force_committed, c);
}

static void irc_stop_read(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct irc_cmd *c = arg;
	(void)total;
	(void)err;
	if (!irc_cmd_alive(c, r)) {
		json_decref(items);
		return;
	}
	struct master *m = c->irc->r->m;
	size_t stopped = 0;
	if (r == 0 && m->engine) {
		char reason[200];
		snprintf(reason, sizeof(reason), "stopped by %s on IRC", c->who);
		size_t i;
		json_t *row;
		json_array_foreach(items, i, row)
		{
			if (engine_stop_build(m->engine,
					      json_integer_value(json_object_get(row, "buildid")),
					      reason) >= 0)
				stopped++;
		}
	}
	json_decref(items);
	char msg[IRC_MAX_LINE];
	snprintf(msg, sizeof(msg), "%.60s: %zu running build%s stopped", c->name, stopped,
		 stopped == 1 ? "" : "s");
	irc_cmd_say(c, msg);
}

static void irc_cmd_stop(struct irc_cmd *c)
{
	char ids[24];
	snprintf(ids, sizeof(ids), "%" PRId64, c->bid);
	const char *vb[] = {ids}, *vc[] = {"false"};
	struct db_filter f[] = {
		{.field = "builderid", .op = DB_OP_EQ, .values = vb, .nvalues = 1},
		{.field = "complete", .op = DB_OP_EQ, .values = vc, .nvalues = 1},
	};
	struct db_query q = {.filters = f, .nfilters = 2, .limit = 32};
	if (db_list_async(c->irc->r->m->db, DB_BUILDS, &q, NULL, false, irc_stop_read, c) < 0)
		irc_stop_read(c, -EIO, NULL, 0, NULL);
}

static const char *const irc_cmd_words[] = {"status", "last", "force", "stop"};

/* The builder named c->name, read: the command goes on with its id. */
static void irc_builder_read(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct irc_cmd *c = arg;
	(void)total;
	(void)err;
	if (!irc_cmd_alive(c, r)) {
		json_decref(items);
		return;
	}
	json_t *row = r == 0 ? json_array_get(items, 0) : NULL;
	c->bid = row ? json_integer_value(json_object_get(row, "builderid")) : 0;
	json_decref(items);
	if (c->bid <= 0) {
		char msg[IRC_MAX_LINE];
		snprintf(msg, sizeof(msg), "%s: no builder named '%.60s'", irc_cmd_words[c->what],
			 c->name);
		irc_cmd_say(c, msg);
		return;
	}
	switch (c->what) {
	case IRC_CMD_LAST:
		irc_cmd_last(c);
		break;
	case IRC_CMD_FORCE:
		irc_cmd_force(c);
		break;
	case IRC_CMD_STOP:
		irc_cmd_stop(c);
		break;
	default:
		irc_cmd_free(c);
		break;
	}
}

/* last, force, stop: the builder by name first (any builder the database
 * knows, as the API's). */
static void irc_cmd_builder(struct irc *irc, enum irc_cmd_what what, const char *to,
			    const char *who, const char *name)
{
	char msg[IRC_MAX_LINE];
	if (what != IRC_CMD_LAST && !irc->c->allow_force) {
		snprintf(msg, sizeof(msg), "%s: not allowed here (allow_force = false)",
			 irc_cmd_words[what]);
		irc_say(irc, to, msg);
		return;
	}
	struct irc_cmd *c = irc_cmd_new(irc, what, to, who, name);
	const char *vals[] = {name};
	struct db_filter f = {.field = "name", .op = DB_OP_EQ, .values = vals, .nvalues = 1};
	struct db_query q = {.filters = &f, .nfilters = 1, .limit = 1};
	if (!*name ||
	    db_list_async(irc->r->m->db, DB_BUILDERS, &q, NULL, false, irc_builder_read, c) < 0)
		irc_builder_read(c, 0, NULL, 0, NULL); /* "no builder named" */
}

static int irc_channel_index(struct irc *irc, const char *name)
{
	for (size_t i = 0; i < irc->c->nchannels; i++)
		if (!strcasecmp(irc->c->channels[i], name))
			return (int)i;
	return -1;
}

/* "status", "last NAME", ... from who in target (a channel, or our nick:
 * a private message, answered to who). */
static void irc_command(struct irc *irc, const char *who, const char *target, const char *cmd)
{
	int ch = irc_channel_index(irc, target);
	const char *to = ch >= 0 ? target : who;
	/* a flood of commands must not push the announcements out of the
	 * queue: past half of it, commands are ignored */
	size_t half = irc->r->cfg->max_messages / 2;
	if (irc->nq >= (half ? half : 1)) {
		if (irc->ignored++ % 100 == 0)
			log_warn("reporter '%s': queue half full: ignored a command from %s "
				 "(%" PRIu64 " so far)",
				 irc->r->cfg->name, who, irc->ignored);
		return;
	}
	char word[32], arg[128];
	word[0] = arg[0] = '\0';
	if (sscanf(cmd, "%31s %127s", word, arg) < 1)
		return;
	char msg[IRC_MAX_LINE];
	if (!strcasecmp(word, "help"))
		irc_say(irc, to,
			"commands: status | last BUILDER | force BUILDER | stop BUILDER | "
			"notify on|off | i am NAME | help");
	else if (!strcasecmp(word, "status"))
		irc_cmd_status(irc, to);
	else if (!strcasecmp(word, "last"))
		irc_cmd_builder(irc, IRC_CMD_LAST, to, who, arg);
	else if (!strcasecmp(word, "force"))
		irc_cmd_builder(irc, IRC_CMD_FORCE, to, who, arg);
	else if (!strcasecmp(word, "stop"))
		irc_cmd_builder(irc, IRC_CMD_STOP, to, who, arg);
	else if (!strcasecmp(word, "notify")) {
		if (ch < 0)
			irc_say(irc, to, "notify: say it in one of my channels");
		else if (!strcasecmp(arg, "on") || !strcasecmp(arg, "off")) {
			irc->notify[ch] = !strcasecmp(arg, "on");
			snprintf(msg, sizeof(msg), "notify %s for %s",
				 irc->notify[ch] ? "on" : "off", target);
			irc_say(irc, to, msg);
		} else {
			snprintf(msg, sizeof(msg), "notify is %s for %s (notify on|off)",
				 irc->notify[ch] ? "on" : "off", target);
			irc_say(irc, to, msg);
		}
	} else if (!strcasecmp(word, "i") && !strcasecmp(arg, "am"))
		irc_say(irc, to,
			"i am: not supported: Kiln stores no IRC identities (nothing was saved)");
	else {
		snprintf(msg, sizeof(msg), "unknown command '%.31s' (try: help)", word);
		irc_say(irc, to, msg);
	}
}

/* ---- the server's lines -------------------------------------------------------------- */

static void irc_on_line(struct irc *irc, const char *line, size_t len)
{
	struct irc_msg *m = xmalloc(sizeof(*m));
	if (irc_parse_line(line, len, m) < 0) {
		free(m);
		return;
	}
	const char *cmd = m->command;
	if (!strcasecmp(cmd, "PING"))
		irc_sendf(irc, "PONG :%s", m->nparams ? m->params[m->nparams - 1] : "kiln");
	else if (!strcmp(cmd, "001")) {
		if (m->nparams > 0)
			snprintf(irc->nick, sizeof(irc->nick), "%s", m->params[0]);
		log_info("reporter '%s': registered as %s", irc->r->cfg->name, irc->nick);
		irc->state = IRC_READY;
		irc->backoff_ms = 0;
		for (size_t i = 0; i < irc->c->nchannels; i++)
			irc_sendf(irc, "JOIN %s", irc->c->channels[i]);
		irc_pump(irc);
	} else if ((!strcmp(cmd, "433") || !strcmp(cmd, "432") || !strcmp(cmd, "436")) &&
		   irc->state == IRC_REGISTERING)
		irc_next_nick(irc);
	else if (!strcasecmp(cmd, "ERROR"))
		irc_disconnect(irc, m->nparams ? m->params[m->nparams - 1] : "ERROR");
	else if (!strcasecmp(cmd, "JOIN")) {
		char who[64];
		if (irc_prefix_nick(m->prefix, who, sizeof(who)) && !strcasecmp(who, irc->nick) &&
		    m->nparams)
			log_info("reporter '%s': joined %s", irc->r->cfg->name, m->params[0]);
	} else if (!strcasecmp(cmd, "KICK") && m->nparams >= 2 &&
		   !strcasecmp(m->params[1], irc->nick))
		irc_sendf(irc, "JOIN %s", m->params[0]);
	else if (!strcasecmp(cmd, "PRIVMSG") && m->nparams >= 2 && irc->state == IRC_READY) {
		char who[64];
		const char *rest;
		if (!irc_prefix_nick(m->prefix, who, sizeof(who)))
			goto out;
		const char *target = m->params[0], *text = m->params[1];
		bool priv = !strcasecmp(target, irc->nick);
		if (irc_addressed(text, irc->nick, &rest) ||
		    (strcasecmp(irc->nick, irc->c->nick) &&
		     irc_addressed(text, irc->c->nick, &rest)))
			irc_command(irc, who, target, rest);
		else if (priv)
			irc_command(irc, who, target, text);
	}
out:
	free(m);
}

/* ---- the kind -------------------------------------------------------------------------- */

static void irc_build_finished(struct reporter *r, const struct report_build *rb)
{
	struct irc *irc = r->priv;
	char text[IRC_MAX_LINE], authors[256];
	size_t an = 0;
	authors[0] = '\0';
	for (size_t i = 0; i < rb->nblamelist; i++) {
		const char *a = rb->blamelist[i];
		const char *lt = strchr(a, '<');
		size_t n = lt ? (size_t)(lt - a) : strlen(a);
		while (n && a[n - 1] == ' ')
			n--;
		if (n == 0 && lt) { /* "<ann@example.org>" alone */
			a = lt + 1;
			n = strcspn(a, ">");
		}
		int w = snprintf(authors + an, sizeof(authors) - an, "%s%.*s", an ? ", " : "",
				 (int)n, a);
		if (w < 0 || (size_t)w >= sizeof(authors) - an)
			break;
		an += (size_t)w;
	}
	snprintf(text, sizeof(text), "%s: build #%" PRId64 " %s%s%s%s %s", rb->builder, rb->number,
		 reporters_results_name(rb->results), an ? " (" : "", authors, an ? ")" : "",
		 rb->url);
	for (size_t i = 0; i < irc->c->nchannels && i < IRC_MAX_CHANNELS; i++)
		if (irc->notify[i])
			irc_say(irc, irc->c->channels[i], text);
}

static int irc_start(struct reporter *r, struct curl_uv *cu)
{
	(void)cu;
	struct irc *irc = xcalloc(1, sizeof(*irc));
	irc->r = r;
	irc->c = &r->cfg->irc;
	irc->loop = r->m->loop;
	for (size_t i = 0; i < IRC_MAX_CHANNELS; i++)
		irc->notify[i] = true;
	irc_bucket_init(&irc->bucket, irc->c->rate, irc->c->burst, uv_now(irc->loop));
	uv_timer_t *timers[] = {&irc->reconnect, &irc->send, &irc->watch};
	for (size_t i = 0; i < 3; i++) {
		uv_timer_init(irc->loop, timers[i]);
		timers[i]->data = irc;
		irc->handles++;
	}
	uv_timer_start(&irc->watch, irc_watch_tick, 1000, 1000);
	uv_unref((uv_handle_t *)&irc->watch);
	r->priv = irc;
	irc_connect(irc);
	return 0;
}

static void irc_stop(struct reporter *r)
{
	struct irc *irc = r->priv;
	if (!irc)
		return;
	r->priv = NULL;
	irc->stopping = true;
	if (irc->nq)
		log_info("reporter '%s': %zu unsent line%s dropped", r->cfg->name, irc->nq,
			 irc->nq == 1 ? "" : "s");
	if (irc->tcp) {
		if (irc->state == IRC_READY) {
			static const char quit[] = "QUIT :master stopping\r\n";
			uv_buf_t b = uv_buf_init((char *)quit, sizeof(quit) - 1);
			(void)uv_try_write((uv_stream_t *)irc->tcp, &b, 1);
		}
		uv_close((uv_handle_t *)irc->tcp, irc_handle_closed);
		irc->tcp = NULL;
	}
	if (irc->gai_busy)
		uv_cancel((uv_req_t *)&irc->gai);
	uv_close((uv_handle_t *)&irc->reconnect, irc_handle_closed);
	uv_close((uv_handle_t *)&irc->send, irc_handle_closed);
	uv_close((uv_handle_t *)&irc->watch, irc_handle_closed);
}

const struct reporter_kind reporter_kind_irc = {
	.kind = CONFIG_REPORTER_IRC,
	.name = "irc",
	.start = irc_start,
	.build_finished = irc_build_finished,
	.stop = irc_stop,
};
