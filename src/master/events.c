/*
 * The in-process event bus (events.h) and the browser side of /ws: per
 * connection subscription paths, Buildbot's control commands and error
 * frames, and delivery with a bounded per-subscriber queue that ends in an
 * explicit "resync" event on overflow (DESIGN.md: no silent loss).
 * Frames are queued on the connection as droppable messages (wsconn.h), so
 * dropping a queue never drops a control reply.  A subscriber that
 * overflows again without having read its resync is closed (1008), and
 * the memory freed by such subscribers is handed back to the system.
 */
#define LOG_SUBSYS "events"

#include "master/events.h"
#include "master/master.h"
#include "master/numbers.h"
#include "master/wsconn.h"

#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "db/db.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct events_sub {
	struct events *ev; /* borrowed; NULL once detached */
	struct ws_conn *c; /* borrowed: http.c frees us before it */
	char **paths;      /* owned, distinct */
	size_t npaths, paths_alloc;
	/* droppable bytes queued since the last resync, that resync included:
	 * while the queue still holds all of them, nothing was read */
	size_t since_resync;
	bool resynced;
	struct events_sub *prev, *next;
};

struct events {
	uint64_t seq;     /* last published */
	size_t queue_cap; /* bytes of undelivered events per subscriber */
	struct events_sub *subs;
	size_t nsubs;
	/* handing freed queue memory back (malloc_trim) from a timer */
	uv_loop_t *loop; /* borrowed: learnt at the first publish */
	uv_timer_t trim_timer;
	bool trim_inited, trim_armed;
	size_t freed;                      /* queue bytes freed since the last trim */
	struct events_listener *listeners; /* in-process (events_listen) */
	/* events held back behind one whose row is being read (issue 14: rows
	 * are answered on the loop): the bus delivers in publishing order */
	struct events_item *head, **tail;
	struct events_read *reads; /* rows being read */
	bool draining;
	size_t held_bytes, held_cap; /* of the held events' messages */
	uint64_t held_dropped;       /* events only numbered for want of room */
	bool hole_told;              /* subscribers were told of the current hole */
	bool dropping;               /* the last event held was dropped (logged once) */
	bool forward;                /* row events go to the other masters (events_forward) */
};

/* An event waiting for its turn. */
struct events_item {
	struct events_item *next;
	char *key;    /* owned; NULL: only numbered (events_count) */
	json_t *msg;  /* owned; NULL while its row is read */
	bool reading; /* its row is not in yet */
	bool hole;    /* dropped for want of room: subscribers resync */
	bool remote;  /* another master's: for the /ws subscribers only */
	size_t bytes; /* counted in held_bytes */
};

/* One row being read for up to EVENTS_MAX_KEYS events. */
#define EVENTS_MAX_KEYS 4
struct events_read {
	struct master *m; /* NULL once the bus is freed: the answer goes nowhere */
	int res;
	struct events_item *items[EVENTS_MAX_KEYS];
	size_t n;
	struct events_read *next, **pprev;
};

struct events_listener {
	struct events_listener *next;
	char *path; /* owned */
	events_listener_fn fn;
	void *ud;
};

struct events *events_new(void)
{
	struct events *ev = xcalloc(1, sizeof(*ev));
	ev->queue_cap = KILN_MAX_WS_EVENT_QUEUE;
	const char *t = getenv("KILN_TEST_WS_EVENT_QUEUE");
	long long v;
	if (t && *t && str_to_i64(t, &v) == 0 && v > 0 && (unsigned long long)v < ev->queue_cap)
		ev->queue_cap = (size_t)v;
	ev->held_cap = KILN_MAX_HELD_EVENTS;
	return ev;
}

static void events_trim_closed(uv_handle_t *h)
{
	free(h->data);
}

void events_free(struct events *ev)
{
	if (!ev)
		return;
	for (struct events_sub *s = ev->subs; s; s = s->next)
		s->ev = NULL;
	for (struct events_read *rd = ev->reads; rd; rd = rd->next)
		rd->m = NULL;
	while (ev->head) {
		struct events_item *it = ev->head;
		ev->head = it->next;
		free(it->key);
		json_decref(it->msg);
		free(it);
	}
	while (ev->listeners)
		events_unlisten(ev, ev->listeners->fn, ev->listeners->ud);
	if (ev->trim_inited)
		uv_close((uv_handle_t *)&ev->trim_timer, events_trim_closed); /* frees ev */
	else
		free(ev);
}

size_t events_nsubs(const struct events *ev)
{
	return ev ? ev->nsubs : 0;
}

void events_set_held_cap(struct events *ev, size_t bytes)
{
	ev->held_cap = bytes;
}

uint64_t events_held_dropped(const struct events *ev)
{
	return ev ? ev->held_dropped : 0;
}

static void events_trim_fire(uv_timer_t *t)
{
	struct events *ev = t->data;
	ev->trim_armed = false;
	log_debug("malloc_trim after %zu bytes of /ws queues freed", ev->freed);
	ev->freed = 0;
	malloc_trim(0);
}

/* n bytes of subscriber queues were freed: once enough add up, glibc is
 * asked to give its free pages back, from a timer so that a crowd leaving
 * at once costs one trim (at most one per KILN_TRIM_DELAY_MS). */
static void events_freed(struct events *ev, size_t n)
{
	if (!ev)
		return;
	ev->freed += n;
	if (ev->freed < KILN_TRIM_FREED_BYTES || ev->trim_armed || !ev->loop)
		return;
	if (!ev->trim_inited) {
		if (uv_timer_init(ev->loop, &ev->trim_timer) < 0)
			return;
		ev->trim_timer.data = ev;
		ev->trim_inited = true;
	}
	if (uv_timer_start(&ev->trim_timer, events_trim_fire, KILN_TRIM_DELAY_MS, 0) == 0)
		ev->trim_armed = true;
}

bool events_path_match(const char *path, const char *key)
{
	if (!path || !key)
		return false;
	for (;;) {
		const char *pe = strchr(path, '/'), *ke = strchr(key, '/');
		size_t pl = pe ? (size_t)(pe - path) : strlen(path);
		size_t kl = ke ? (size_t)(ke - key) : strlen(key);
		bool star = pl == 1 && path[0] == '*';
		if (star ? kl == 0 : (pl != kl || memcmp(path, key, pl)))
			return false;
		if (!pe || !ke)
			return !pe && !ke;
		path = pe + 1;
		key = ke + 1;
	}
}

static bool events_sub_wants(const struct events_sub *s, const char *key)
{
	for (size_t i = 0; i < s->npaths; i++)
		if (events_path_match(s->paths[i], key))
			return true;
	return false;
}

/* The subscriber missed event seq: drop what it has not received yet and
 * tell it, so it refetches over REST instead of trusting a stream with a
 * hole in it.  If it has not even read the previous resync, it is not
 * reading at all: it is closed instead of filling its queue again. */
static void events_sub_overflow(struct events_sub *s, uint64_t seq)
{
	size_t queued = ws_conn_queued_droppable(s->c);
	bool stuck = s->resynced && queued >= s->since_resync;

	ws_conn_drop_droppable(s->c);
	events_freed(s->ev, queued);
	if (stuck) {
		log_info("%s: /ws subscriber read nothing while %zu bytes of events were queued, "
			 "closing",
			 ws_conn_peer(s->c), queued);
		ws_conn_close(s->c, 1008, "not reading: event queue full");
		return;
	}
	char frame[96];
	int n = snprintf(frame, sizeof(frame), "{\"k\":\"resync\",\"m\":{\"seq\":%llu}}",
			 (unsigned long long)seq);
	log_debug("%s: event queue over %zu bytes at seq %llu, resync", ws_conn_peer(s->c),
		  s->ev->queue_cap, (unsigned long long)seq);
	if (ws_conn_send_droppable(s->c, frame, (size_t)n) == -ENOBUFS) {
		ws_conn_close(s->c, 1008, "not reading: event queue full");
		return;
	}
	s->resynced = true;
	s->since_resync = (size_t)n;
}

/* Hands one event to the subscribers and, unless it is another master's
 * (its reporters have it), the listeners now. */
static uint64_t events_deliver(struct master *m, struct events *ev, const char *key, json_t *msg,
			       bool remote)
{
	uint64_t seq = ++ev->seq;
	ev->loop = m->loop;
	if (!msg)
		msg = json_object();
	char *frame = NULL;
	size_t len = 0;
	for (struct events_sub *s = ev->subs; s; s = s->next) {
		if (!events_sub_wants(s, key))
			continue;
		if (!frame) {
			json_t *o = json_pack("{s:s,s:O}", "k", key, "m", msg);
			frame = json_dumps(o, JSON_COMPACT);
			json_decref(o);
			if (!frame)
				break;
			len = strlen(frame);
		}
		int r = -ENOBUFS;
		if (len <= ev->queue_cap && ws_conn_queued_droppable(s->c) <= ev->queue_cap - len)
			r = ws_conn_send_droppable(s->c, frame, len);
		if (r == 0)
			s->since_resync += len;
		else if (r == -ENOBUFS)
			events_sub_overflow(s, seq);
	}
	free(frame);
	for (struct events_listener *l = remote ? NULL : ev->listeners; l; l = l->next)
		if (events_path_match(l->path, key))
			l->fn(l->ud, key, msg);
	json_decref(msg);
	return seq;
}

static bool events_listened(const struct events *ev, const char *key)
{
	for (const struct events_listener *l = ev->listeners; l; l = l->next)
		if (events_path_match(l->path, key))
			return true;
	return false;
}

/* Holds an event back.  Past held_cap bytes of messages, one that no
 * in-process listener wants (the /ws streams: log lines above all) is only
 * numbered and its subscribers resync at its turn, so a stalled database
 * cannot make a worker's output grow the master without bound; what the
 * listeners (reporters, alerts: a few events per build) want is kept. */
static struct events_item *events_hold(struct events *ev, const char *key, json_t *msg, bool remote)
{
	struct events_item *it = xcalloc(1, sizeof(*it));
	it->remote = remote;
	if (key && msg) {
		size_t bytes = strlen(key) + json_dumpb(msg, NULL, 0, JSON_COMPACT);
		if (ev->held_bytes + bytes > ev->held_cap &&
		    (remote || !events_listened(ev, key))) {
			ev->held_dropped++;
			if (!ev->dropping)
				log_warn("%s: over %zu bytes of events held behind a row being "
					 "read: "
					 "only numbered, /ws subscribers resync",
					 key, ev->held_cap);
			ev->dropping = true;
			json_decref(msg);
			msg = NULL;
			key = NULL;
			it->hole = true;
		} else {
			ev->dropping = false;
			it->bytes = bytes;
			ev->held_bytes += bytes;
		}
	}
	it->key = key ? xstrdup(key) : NULL;
	it->msg = msg;
	if (!ev->head)
		ev->tail = &ev->head;
	*ev->tail = it;
	ev->tail = &it->next;
	return it;
}

/* Delivers the events held back, up to the first whose row is not in. */
static void events_drain(struct master *m)
{
	struct events *ev = m->events;
	if (!ev || ev->draining)
		return;
	ev->draining = true;
	while (ev->head && !ev->head->reading) {
		struct events_item *it = ev->head;
		ev->head = it->next;
		ev->held_bytes -= it->bytes;
		if (it->key) {
			events_deliver(m, ev, it->key, it->msg, it->remote);
			ev->hole_told = false;
		} else if (it->hole) {
			/* an event nobody in-process wanted was dropped: every
			 * subscriber's stream has a hole, once per run of them */
			uint64_t seq = ++ev->seq;
			if (!ev->hole_told)
				for (struct events_sub *s = ev->subs; s; s = s->next)
					events_sub_overflow(s, seq);
			ev->hole_told = true;
		} else if (!it->remote) {
			ev->seq++;
		}
		free(it->key);
		free(it);
		ev = m->events; /* a listener cannot free the bus; read it again anyway */
		if (!ev)
			return;
	}
	ev->draining = false;
}

static void events_forward_msg(struct master *m, const char *key, const json_t *msg);

uint64_t events_publish(struct master *m, const char *key, json_t *msg)
{
	struct events *ev = m ? m->events : NULL;
	if (!ev) {
		json_decref(msg);
		return 0;
	}
	if (ev->forward && msg)
		events_forward_msg(m, key, msg);
	if (ev->head) {
		events_hold(ev, key, msg ? msg : json_object(), false);
		return 0;
	}
	return events_deliver(m, ev, key, msg, false);
}

/* Whether a /ws subscriber (or, unless remote, a listener) of this master
 * wants key. */
static bool events_wanted_here(const struct events *ev, const char *key, bool remote)
{
	for (const struct events_sub *s = ev ? ev->subs : NULL; s; s = s->next)
		if (events_sub_wants(s, key))
			return true;
	return !remote && ev && events_listened(ev, key);
}

bool events_wanted(const struct master *m, const char *key)
{
	const struct events *ev = m ? m->events : NULL;
	if (ev && ev->forward)
		return true; /* the other masters' subscribers may want it */
	for (const struct events_sub *s = ev ? ev->subs : NULL; s; s = s->next)
		if (events_sub_wants(s, key))
			return true;
	for (const struct events_listener *l = ev ? ev->listeners : NULL; l; l = l->next)
		if (events_path_match(l->path, key))
			return true;
	return false;
}

void events_listen(struct events *ev, const char *path, events_listener_fn fn, void *ud)
{
	struct events_listener *l = xcalloc(1, sizeof(*l));
	l->path = xstrdup(path);
	l->fn = fn;
	l->ud = ud;
	l->next = ev->listeners;
	ev->listeners = l;
}

void events_unlisten(struct events *ev, events_listener_fn fn, void *ud)
{
	for (struct events_listener **p = ev ? &ev->listeners : NULL; p && *p; p = &(*p)->next)
		if ((*p)->fn == fn && (*p)->ud == ud) {
			struct events_listener *l = *p;
			*p = l->next;
			free(l->path);
			free(l);
			return;
		}
}

/* Whether path could match some key of pattern's shape: both have the same
 * segments, a "*" of either matches any one, others must be equal. */
static bool events_path_could_match(const char *path, const char *pattern)
{
	for (;;) {
		const char *pe = strchr(path, '/'), *qe = strchr(pattern, '/');
		size_t pl = pe ? (size_t)(pe - path) : strlen(path);
		size_t ql = qe ? (size_t)(qe - pattern) : strlen(pattern);
		bool star = (pl == 1 && path[0] == '*') || (ql == 1 && pattern[0] == '*');
		if (!star && (pl != ql || memcmp(path, pattern, pl)))
			return false;
		if (!pe || !qe)
			return !pe && !qe;
		path = pe + 1;
		pattern = qe + 1;
	}
}

bool events_wanted_like(const struct master *m, const char *pattern)
{
	const struct events *ev = m ? m->events : NULL;
	if (ev && ev->forward)
		return true;
	for (const struct events_sub *s = ev ? ev->subs : NULL; s; s = s->next)
		for (size_t i = 0; i < s->npaths; i++)
			if (events_path_could_match(s->paths[i], pattern))
				return true;
	for (const struct events_listener *l = ev ? ev->listeners : NULL; l; l = l->next)
		if (events_path_could_match(l->path, pattern))
			return true;
	return false;
}

uint64_t events_count(struct master *m)
{
	struct events *ev = m ? m->events : NULL;
	if (!ev)
		return 0;
	if (ev->head) {
		events_hold(ev, NULL, NULL, false);
		return 0;
	}
	return ++ev->seq;
}

/* ---- events across masters (issue 14) --------------------------------------------- */

static void events_keys_row(struct master *m, int res, const char *idfield, int64_t id,
			    const char *const *keys, size_t n, bool remote);

/* The rows whose events cross masters, by resource: the line names the
 * collection, the receiver reads the row by its id field. */
static const struct {
	int res;
	const char *collection, *idfield;
} events_crossing[] = {
	{DB_BUILDS, "builds", "buildid"},    {DB_STEPS, "steps", "stepid"},
	{DB_LOGS, "logs", "logid"},          {DB_BUILDREQUESTS, "buildrequests", "buildrequestid"},
	{DB_BUILDSETS, "buildsets", "bsid"}, {DB_CHANGES, "changes", "changeid"},
	{DB_WORKERS, "workers", "workerid"}, {DB_BUILDERS, "builders", "builderid"},
	{DB_MASTERS, "masters", "masterid"},
};
#define EVENTS_NCROSSING (sizeof(events_crossing) / sizeof(events_crossing[0]))

void events_remote_lost(struct master *m)
{
	struct events *ev = m ? m->events : NULL;
	if (!ev || !ev->subs)
		return;
	if (ev->head) { /* in its place among the events held back */
		events_hold(ev, NULL, NULL, false)->hole = true;
		return;
	}
	uint64_t seq = ++ev->seq;
	for (struct events_sub *s = ev->subs; s; s = s->next)
		events_sub_overflow(s, seq);
}

void events_forward(struct events *ev, bool on)
{
	if (ev)
		ev->forward = on;
}

bool events_forwarding(const struct events *ev)
{
	return ev && ev->forward;
}

/* "e COLLECTION ID KEY..." for the other masters. */
static void events_forward_row(struct master *m, int res, int64_t id, const char *const *keys,
			       size_t n)
{
	size_t c = 0;
	while (c < EVENTS_NCROSSING && events_crossing[c].res != res)
		c++;
	if (c == EVENTS_NCROSSING)
		return;
	char line[DB_NOTIFY_MAX_LINE + 1];
	int len = snprintf(line, sizeof(line), "e %s %lld", events_crossing[c].collection,
			   (long long)id);
	for (size_t i = 0; i < n && len > 0 && (size_t)len < sizeof(line); i++)
		len += snprintf(line + len, sizeof(line) - (size_t)len, " %s", keys[i]);
	if (len <= 0 || (size_t)len >= sizeof(line) || db_notify(m->db, line) < 0)
		log_warn("%s: not sent to the other masters: %s", keys[0],
			 len > 0 && (size_t)len < sizeof(line) ? db_errmsg(m->db) : "too long");
}

/* The events that are no row's and cross masters as "m KEY JSON" lines
 * (the message itself): a buildset's first failure, a number's regression,
 * a builder started or stopped on a master.  Each is published once, by
 * the master where it happened. */
static const char *const events_crossing_msgs[] = {"buildsets/", "numbers/", "builders/"};

/* A key another master may send: one of those, at most 160 bytes of
 * [A-Za-z0-9_.:/-] (a number's name is made safe: '/' is '_' in it). */
static bool events_msg_key_ok(const char *key, size_t len)
{
	bool known = false;
	for (size_t i = 0; i < sizeof(events_crossing_msgs) / sizeof(*events_crossing_msgs); i++)
		known |= !strncmp(key, events_crossing_msgs[i], strlen(events_crossing_msgs[i]));
	if (!known || len == 0 || len > 160)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = key[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == ':' || c == '/' || c == '-'))
			return false;
	}
	return true;
}

/* "m KEY JSON" for the other masters; a message too long for a line is not
 * sent (logged). */
static void events_forward_msg(struct master *m, const char *key, const json_t *msg)
{
	if (!events_msg_key_ok(key, strlen(key)))
		return;
	char *text = json_dumps(msg, JSON_COMPACT);
	char line[DB_NOTIFY_MAX_LINE + 1];
	int len = text ? snprintf(line, sizeof(line), "m %s %s", key, text) : -1;
	free(text);
	if (len <= 0 || (size_t)len >= sizeof(line) || db_notify(m->db, line) < 0)
		log_warn("%s: not sent to the other masters: %s", key,
			 len > 0 && (size_t)len < sizeof(line) ? db_errmsg(m->db)
							       : "too long for a line");
}

/* Another master's "m KEY JSON": for this master's /ws subscribers. */
static int events_remote_msg(struct master *m, const char *line)
{
	const char *sp = strchr(line, ' ');
	if (!sp || !events_msg_key_ok(line, (size_t)(sp - line)))
		return -EINVAL;
	json_error_t jerr;
	json_t *msg = json_loads(sp + 1, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(msg)) {
		json_decref(msg);
		return -EINVAL;
	}
	char key[161];
	snprintf(key, sizeof(key), "%.*s", (int)(sp - line), line);
	struct events *ev = m->events;
	if (!events_wanted_here(ev, key, true)) {
		json_decref(msg);
		return 0;
	}
	if (ev->head)
		events_hold(ev, key, msg, true);
	else
		events_deliver(m, ev, key, msg, true);
	return 0;
}

int events_remote_line(struct master *m, const char *line)
{
	char buf[DB_NOTIFY_MAX_LINE + 1];
	if (!strncmp(line, "m ", 2) && strlen(line) < sizeof(buf))
		return events_remote_msg(m, line + 2);
	if (strncmp(line, "e ", 2) || strlen(line) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", line + 2);
	char *save = NULL;
	const char *coll = strtok_r(buf, " ", &save), *ids = strtok_r(NULL, " ", &save);
	size_t c = 0;
	while (coll && c < EVENTS_NCROSSING && strcmp(events_crossing[c].collection, coll))
		c++;
	char *end = NULL;
	long long id = ids ? strtoll(ids, &end, 10) : 0;
	if (c == EVENTS_NCROSSING || !ids || *end || id <= 0)
		return -EINVAL;
	const char *keys[EVENTS_MAX_KEYS];
	size_t n = 0;
	for (char *k; n < EVENTS_MAX_KEYS && (k = strtok_r(NULL, " ", &save));)
		keys[n++] = k;
	if (n == 0 || strtok_r(NULL, " ", &save))
		return -EINVAL;
	/* each key names the row: COLLECTION/ID/..., or builds/B/steps/ID/... */
	char own[48];
	snprintf(own, sizeof(own), "/%lld/", id);
	for (size_t i = 0; i < n; i++)
		if (strlen(keys[i]) > 160 || !strstr(keys[i], own))
			return -EINVAL;
	events_keys_row(m, events_crossing[c].res, events_crossing[c].idfield, id, keys, n, true);
	return 0;
}

static void events_row_read(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct events_read *rd = arg;
	struct master *m = rd->m;
	(void)total;
	if (!m) {
		json_decref(items);
		free(rd);
		return;
	}
	*rd->pprev = rd->next;
	if (rd->next)
		rd->next->pprev = rd->pprev;
	json_t *row = NULL;
	if (r == 0 && json_array_size(items) == 1) {
		row = json_incref(json_array_get(items, 0));
		if (rd->res == DB_BUILDS) {
			json_object_set_new(row, "properties", json_object());
			numbers_build_eta_fields(m,
						 row); /* as GET builds: a board shows it at once */
		}
	} else {
		log_warn("%s: cannot read the row back for its event: %s",
			 rd->items[0]->key ? rd->items[0]->key : "an event",
			 r < 0 ? (err ? err : "failed") : "no such row");
	}
	json_decref(items);
	for (size_t i = 0; i < rd->n; i++) {
		struct events_item *it = rd->items[i];
		it->reading = false;
		if (row && it->key) {
			it->msg = json_incref(row);
		} else { /* only numbered */
			free(it->key);
			it->key = NULL;
		}
	}
	json_decref(row);
	free(rd);
	events_drain(m);
}

/* events_publish_keys_row for this master's event or, remote, another
 * master's (read here once it committed, for the /ws subscribers only;
 * not numbered when nobody here wants it). */
static void events_keys_row(struct master *m, int res, const char *idfield, int64_t id,
			    const char *const *keys, size_t n, bool remote)
{
	struct events *ev = m ? m->events : NULL;
	if (!ev)
		return;
	bool wanted[EVENTS_MAX_KEYS], any = false;
	if (n > EVENTS_MAX_KEYS)
		n = EVENTS_MAX_KEYS;
	if (ev->forward && !remote)
		events_forward_row(m, res, id, keys, n);
	for (size_t i = 0; i < n; i++) {
		wanted[i] = events_wanted_here(ev, keys[i], remote);
		any |= wanted[i];
	}
	if (!any) { /* still numbered: sequence numbers count every event */
		for (size_t i = 0; i < n && !remote; i++)
			events_count(m);
		return;
	}
	struct events_read *rd = xcalloc(1, sizeof(*rd));
	rd->m = m;
	rd->res = res;
	char ids[24];
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	const char *vals[] = {ids};
	struct db_filter f = {.field = idfield, .op = DB_OP_EQ, .values = vals, .nvalues = 1};
	struct db_query q = {.filters = &f, .nfilters = 1, .limit = -1};
	if (db_list_async(m->db, (enum db_resource)res, &q, NULL, false, events_row_read, rd) < 0) {
		log_warn("%s: cannot read the row back for its event: %s", keys[0],
			 db_errmsg(m->db));
		free(rd);
		for (size_t i = 0; i < n && !remote; i++)
			events_count(m);
		return;
	}
	/* the events wait for the row, and every later one waits behind them */
	for (size_t i = 0; i < n; i++) {
		struct events_item *it = events_hold(ev, wanted[i] ? keys[i] : NULL, NULL, remote);
		it->reading = true;
		rd->items[rd->n++] = it;
	}
	rd->next = ev->reads;
	if (rd->next)
		rd->next->pprev = &rd->next;
	rd->pprev = &ev->reads;
	ev->reads = rd;
}

void events_publish_keys_row(struct master *m, int res, const char *idfield, int64_t id,
			     const char *const *keys, size_t n)
{
	events_keys_row(m, res, idfield, id, keys, n, false);
}

void events_publish_row(struct master *m, int res, const char *collection, const char *idfield,
			int64_t id, const char *event)
{
	char key[160];
	snprintf(key, sizeof(key), "%s/%lld/%s", collection, (long long)id, event);
	const char *keys[] = {key};
	events_publish_keys_row(m, res, idfield, id, keys, 1);
}

void events_buildset_new(struct master *m, int64_t bsid, const int64_t *brids, size_t n)
{
	events_publish_row(m, DB_BUILDSETS, "buildsets", "bsid", bsid, "new");
	for (size_t i = 0; i < n; i++)
		events_publish_row(m, DB_BUILDREQUESTS, "buildrequests", "buildrequestid", brids[i],
				   "new");
}

void events_request_complete(struct master *m, int64_t brid, int64_t bsid)
{
	events_publish_row(m, DB_BUILDREQUESTS, "buildrequests", "buildrequestid", brid,
			   "complete");
	if (bsid)
		events_publish_row(m, DB_BUILDSETS, "buildsets", "bsid", bsid, "complete");
}

/* ---- the /ws control protocol ------------------------------------------------------ */

struct events_sub *events_sub_new(struct events *ev, struct ws_conn *c)
{
	struct events_sub *s = xcalloc(1, sizeof(*s));
	s->c = c;
	s->ev = ev;
	if (ev) {
		s->next = ev->subs;
		if (ev->subs)
			ev->subs->prev = s;
		ev->subs = s;
		ev->nsubs++;
	}
	return s;
}

void events_sub_free(struct events_sub *s)
{
	if (!s)
		return;
	if (s->ev) {
		if (s->prev)
			s->prev->next = s->next;
		else
			s->ev->subs = s->next;
		if (s->next)
			s->next->prev = s->prev;
		s->ev->nsubs--;
		/* its queue is freed with the connection right after this */
		if (s->c)
			events_freed(s->ev, ws_conn_queued(s->c));
	}
	for (size_t i = 0; i < s->npaths; i++)
		free(s->paths[i]);
	free(s->paths);
	free(s);
}

static ssize_t events_sub_find(const struct events_sub *s, const char *path)
{
	for (size_t i = 0; i < s->npaths; i++)
		if (!strcmp(s->paths[i], path))
			return (ssize_t)i;
	return -1;
}

static json_t *events_reply_error(int code, const char *text)
{
	return json_pack("{s:s,s:i}", "error", text, "code", code);
}

/* startConsuming / stopConsuming: returns the reply. */
static json_t *events_sub_consume(struct events_sub *s, bool start, json_t *jpath)
{
	if (!jpath)
		return events_reply_error(400, "Invalid method argument: missing 'path'");
	const char *path = json_string_value(jpath);
	if (!path) {
		_cleanup_free_ char *t = json_dumps(jpath, JSON_COMPACT | JSON_ENCODE_ANY);
		_cleanup_free_ char *e = xasprintf("invalid path format '%s'", t ? t : "");
		return events_reply_error(400, e);
	}
	if (strlen(path) > KILN_MAX_WS_SUB_PATH || !*path)
		return events_reply_error(400, "invalid path format (empty or too long)");
	ssize_t i = events_sub_find(s, path);
	if (start) {
		if (i < 0) {
			if (s->npaths >= KILN_MAX_WS_SUBSCRIPTIONS)
				return events_reply_error(400, "too many subscriptions");
			ARRAY_GROW(s->paths, s->npaths + 1, s->paths_alloc);
			s->paths[s->npaths++] = xstrdup(path);
		}
	} else {
		if (i < 0) {
			_cleanup_free_ char *e = xasprintf("path was not consumed '%s'", path);
			return events_reply_error(400, e);
		}
		free(s->paths[i]);
		s->paths[i] = s->paths[--s->npaths];
	}
	return json_pack("{s:s,s:i}", "msg", "OK", "code", 200);
}

char *events_sub_reply(struct events_sub *s, const char *text, size_t len)
{
	json_t *msg = json_loadb(text, len, 0, NULL);
	json_t *reply, *id = NULL;

	if (!json_is_object(msg)) {
		reply = events_reply_error(400, "invalid JSON in websocket frame");
	} else if (!(id = json_object_get(msg, "_id"))) {
		reply = events_reply_error(400, "no '_id' or 'type' in websocket frame");
	} else {
		const char *cmd = json_string_value(json_object_get(msg, "cmd"));
		if (!cmd) {
			id = NULL; /* Buildbot answers these with "_id": null */
			reply = events_reply_error(400, "no 'cmd' in websocket frame");
		} else if (!strcmp(cmd, "ping"))
			reply = json_pack("{s:s,s:i}", "msg", "pong", "code", 200);
		else if (!strcmp(cmd, "startConsuming") || !strcmp(cmd, "stopConsuming"))
			reply = events_sub_consume(s, cmd[2] == 'a', json_object_get(msg, "path"));
		else {
			_cleanup_free_ char *e = xasprintf("no such command type '%s'", cmd);
			reply = events_reply_error(404, e);
		}
	}
	char *out = NULL;
	if (reply) {
		json_object_set(reply, "_id", id ? id : json_null());
		out = json_dumps(reply, JSON_COMPACT);
	}
	json_decref(reply);
	json_decref(msg);
	return out;
}

size_t events_sub_npaths(const struct events_sub *s)
{
	return s->npaths;
}

void events_sub_message(struct events_sub *s, const char *text, size_t len)
{
	char *out = events_sub_reply(s, text, len);
	if (out && ws_conn_send(s->c, out, strlen(out)) == -ENOBUFS)
		ws_conn_close(s->c, 1008, "not reading");
	free(out);
}
