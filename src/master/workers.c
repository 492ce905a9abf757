/*
 * The worker endpoint: each authenticated WebSocket becomes a struct wconn
 * that runs Buildbot's attach sequence (print, get_worker_info,
 * set_worker_settings, mkdir of the builder directories), then serves as
 * a place to run builds.  Remote commands are tracked by command_id; their
 * updates and completion are routed to the owner (build.c).
 */
#define LOG_SUBSYS "workers"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/engine-int.h"
#include "master/events-workers.h"
#include "master/latent.h"
#include "master/master.h"
#include "master/steps/step.h"
#include "proto/msg.h"
#include "proto/session.h"

void wconn_ref(struct wconn *w)
{
	w->refs++;
}

void wconn_unref(struct wconn *w)
{
	if (!w || --w->refs > 0)
		return;
	proto_session_free(w->sess);
	free(w->basedir);
	free(w);
}

char *wconn_path(const struct wconn *w, const char *a, const char *b, const char *c)
{
	char sep = w->nt ? '\\' : '/';
	const char *parts[] = {a, b, c};
	struct buf out;
	buf_init(&out, KILN_MAX_WORKER_PATH);
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		const char *p = parts[i];
		if (!p || !*p)
			continue;
		bool absolute = p[0] == '/' || (w->nt && p[0] && p[1] == ':');
		if (absolute)
			buf_reset(&out);
		else if (out.len && out.ptr[out.len - 1] != sep && buf_addch(&out, sep) < 0)
			break;
		if (buf_adds(&out, p) < 0)
			break;
	}
	if (buf_error(&out)) {
		buf_release(&out);
		return NULL;
	}
	return buf_detach(&out, NULL);
}

static int wconn_send(struct wconn *w, struct proto_enc *enc)
{
	if (!w->ws)
		return -EPIPE;
	int r = ws_conn_send(w->ws, enc->sb.data, enc->sb.size);
	if (r == -ENOBUFS) {
		log_warn("worker=%s not reading: send queue over its cap, closing", w->cfg->name);
		ws_conn_close(w->ws, 1008, "send queue full");
	}
	return r;
}

/* ---------------------------------------------------------------- commands */

/* Dead commands are unlinked from w->cmds at once, so no lookup finds them;
 * the dead flag is for callers still holding the pointer in this turn. */
static struct rcmd *wconn_find_command(struct wconn *w, struct str id)
{
	for (struct rcmd *c = w->cmds; c; c = c->next)
		if (str_eq(id, c->id))
			return c;
	return NULL;
}

static void wconn_unlink_command(struct wconn *w, struct rcmd *c)
{
	for (struct rcmd **pp = &w->cmds; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			return;
		}
}

/* A command is never freed while a caller up the stack may hold it (an
 * update handler can finish its own command): it is unlinked, marked dead
 * and freed by the engine on a later loop turn (engine_reap_commands). */
void wconn_forget_command(struct wconn *w, struct rcmd *c)
{
	if (c->dead)
		return;
	wconn_unlink_command(w, c);
	c->dead = true;
	engine_defer_free_command(w->e, c);
}

static void workers_command_finish(struct wconn *w, struct rcmd *c, int status, const char *failure)
{
	const struct rcmd_ops *ops = c->ops;
	void *ud = c->ud;
	wconn_forget_command(w, c);
	ops->complete(ud, status, failure);
}

struct start_ctx {
	struct wconn *w;
	char id[24];
};

static void workers_start_reply(void *ud, int status, const msgpack_object *result)
{
	struct start_ctx *sc = ud;
	struct wconn *w = sc->w;
	if (status != 0 && !w->closed) {
		struct rcmd *c = wconn_find_command(w, str_from(sc->id));
		if (c) {
			_cleanup_free_ char *msg = result ? proto_obj_strdup(result) : NULL;
			workers_command_finish(w, c, status == KILN_EPROTO ? KILN_EPROTO : status,
					       msg ? msg : "worker refused the command");
		}
	}
	wconn_unref(w);
	free(sc);
}

int wconn_start_command(struct wconn *w, const char *name, const char *builder_name,
			struct proto_enc *args, uint32_t nargs, const struct rcmd_ops *ops,
			void *ud, struct rcmd **ret)
{
	if (!w->ws || w->closed)
		return -EPIPE;
	struct rcmd *c = xcalloc(1, sizeof(*c));
	snprintf(c->id, sizeof(c->id), "%llu", (unsigned long long)w->e->next_command_id++);
	c->ops = ops;
	c->ud = ud;
	c->transfer = !strcmp(name, "upload_file") || !strcmp(name, "upload_directory") ||
		      !strcmp(name, "download_file") || !strcmp(name, "uploadFile") ||
		      !strcmp(name, "uploadDirectory") || !strcmp(name, "downloadFile");

	struct start_ctx *sc = xcalloc(1, sizeof(*sc));
	sc->w = w;
	memcpy(sc->id, c->id, sizeof(sc->id));

	struct proto_enc enc;
	proto_enc_init(&enc);
	int64_t seq = proto_session_request(w->sess, &enc, "start_command", builder_name ? 4 : 3,
					    workers_start_reply, sc);
	if (seq < 0) {
		proto_enc_release(&enc);
		free(sc);
		free(c);
		return (int)seq;
	}
	wconn_ref(w);
	proto_pack_str(&enc, "command_id");
	proto_pack_str(&enc, c->id);
	proto_pack_str(&enc, "command_name");
	proto_pack_str(&enc, name);
	if (builder_name) {
		proto_pack_str(&enc, "builder_name");
		proto_pack_str(&enc, builder_name);
	}
	proto_pack_str(&enc, "args");
	proto_pack_map(&enc, nargs);
	msgpack_sbuffer_write(&enc.sb, args->sb.data, args->sb.size);

	c->next = w->cmds;
	w->cmds = c;
	int r = wconn_send(w, &enc);
	proto_enc_release(&enc);
	if (r < 0) {
		/* the connection is closing: its closed() fails every command,
		 * this one included, so ops->complete will still come */
		log_debug("worker=%s start_command %s not sent: %s", w->cfg->name, c->id,
			  err_str(r));
	}
	*ret = c;
	return 0;
}

static void workers_ignore_reply(void *ud, int status, const msgpack_object *result)
{
	struct wconn *w = ud;
	(void)status;
	(void)result;
	wconn_unref(w);
}

int wconn_interrupt(struct wconn *w, struct rcmd *c, const char *builder_name, const char *why)
{
	if (w->away) {
		/* slice "reattach": sent when the worker comes back; at the
		 * grace's end the command fails with the connection anyway */
		c->interrupt_held = true;
		return 0;
	}
	if (!w->ws || w->closed)
		return -EPIPE;
	struct proto_enc enc;
	proto_enc_init(&enc);
	int64_t seq = proto_session_request(w->sess, &enc, "interrupt_command", 3,
					    workers_ignore_reply, w);
	if (seq < 0) {
		proto_enc_release(&enc);
		return (int)seq;
	}
	wconn_ref(w);
	proto_pack_str(&enc, "command_id");
	proto_pack_str(&enc, c->id);
	proto_pack_str(&enc, "builder_name");
	proto_pack_str(&enc, builder_name ? builder_name : "");
	proto_pack_str(&enc, "why");
	proto_pack_str(&enc, why ? why : "interrupted");
	int r = wconn_send(w, &enc);
	proto_enc_release(&enc);
	return r < 0 ? r : 0;
}

/* ----------------------------------------------------------- attach sequence */

static void wconn_fail(struct wconn *w, const char *why)
{
	log_warn("worker=%s %s; closing the connection", w->cfg->name, why);
	if (w->ws)
		ws_conn_close(w->ws, 1002, why);
}

static int wconn_request_simple(struct wconn *w, const char *op, proto_reply_fn fn, const char *key,
				const char *value)
{
	struct proto_enc enc;
	proto_enc_init(&enc);
	int64_t seq = proto_session_request(w->sess, &enc, op, key ? 1 : 0, fn, w);
	if (seq < 0) {
		proto_enc_release(&enc);
		return (int)seq;
	}
	wconn_ref(w);
	if (key) {
		proto_pack_str(&enc, key);
		proto_pack_str(&enc, value);
	}
	int r = wconn_send(w, &enc);
	proto_enc_release(&enc);
	return r;
}

/* PostgreSQL: the stored pause, read on the loop; the worker takes no
 * build until it is in (a pause outlives the connection) */
static void workers_paused_read(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct wconn *w = arg;
	(void)total;
	if (!w->closed) { /* a closed one's engine may be gone (a master's stop) */
		json_t *row = json_array_get(items, 0);
		if (r < 0)
			log_error("worker=%s cannot read its pause: %s", w->cfg->name,
				  err ? err : "failed");
		/* a pause or unpause meanwhile was written after what was read */
		if (!w->pause_set)
			w->paused = w->graceful ||
				    (r == 0 && json_is_true(json_object_get(row, "paused")));
		engine_kick(w->e);
	}
	json_decref(items);
	wconn_unref(w);
}

static void workers_read_paused(struct wconn *w)
{
	struct db *db = w->e->m->db;
	if (!db_is_postgresql(db)) {
		bool paused = false;
		w->paused = db_worker_paused(db, w->workerid, &paused) > 0 && paused;
		return;
	}
	char id[24];
	snprintf(id, sizeof(id), "%lld", (long long)w->workerid);
	struct db_filter f = {
		.field = "workerid", .op = DB_OP_EQ, .values = (const char *[]){id}, .nvalues = 1};
	struct db_query q = {.filters = &f, .nfilters = 1, .limit = 1};
	w->refs++;
	w->paused = true; /* until the answer */
	w->pause_set = false;
	if (db_list_async(db, DB_WORKERS, &q, NULL, false, workers_paused_read, w) < 0) {
		log_error("worker=%s cannot read its pause: %s", w->cfg->name, db_errmsg(db));
		w->paused = false;
		w->refs--;
	}
}

static void workers_attach_done(struct wconn *w)
{
	w->attached = true;
	log_info("worker=%s attached from %s (basedir '%s')", w->cfg->name,
		 w->ws ? ws_conn_peer(w->ws) : "?", w->basedir ? w->basedir : "?");
	struct master *m = w->e->m;
	int r = db_worker_set_connected(m->db, w->workerid, m->masterid);
	if (r < 0)
		log_error("worker=%s cannot record connection: %s", w->cfg->name, db_errmsg(m->db));
	workers_read_paused(w); /* slice "uimisc": a pause outlives the connection */
	/* slice "workerctl": a worker stopped gracefully (or killed) earlier
	 * comes back as a normal worker, as in Buildbot (attached() resets it) */
	if (!w->graceful && db_worker_set_graceful(m->db, w->workerid, false) < 0)
		log_error("worker=%s cannot reset its graceful flag: %s", w->cfg->name,
			  db_errmsg(m->db));
	if (w->graceful)
		w->paused = true;
	events_worker(m, w->workerid, "connected", true, &w->seen_ms);
	latent_attached(m->latent, w->cfg); /* a latent or local worker is running */
	engine_kick(w->e);
}

struct mkdir_ctx {
	struct wconn *w;
};

static void workers_mkdir_update(void *ud, const char *key, const msgpack_object *value)
{
	(void)ud;
	(void)key;
	(void)value;
}

static void workers_mkdir_complete(void *ud, int status, const char *failure)
{
	struct wconn *w = ud;
	if (status == 0 && !w->closed)
		workers_attach_done(w);
	else if (!w->closed)
		wconn_fail(w, failure ? failure : "mkdir of builder directories failed");
	wconn_unref(w);
}

static const struct rcmd_ops mkdir_ops = {.update = workers_mkdir_update,
					  .complete = workers_mkdir_complete};

static void workers_attach_mkdir(struct wconn *w)
{
	const struct config *cfg = w->e->m->cfg;
	size_t wi = engine_worker_index(w->e, w->cfg);
	size_t n = w->e->nworker_builders[wi];
	if (n == 0) {
		workers_attach_done(w);
		return;
	}
	char **paths = xcalloc(n + 1, sizeof(*paths));
	for (size_t i = 0; i < n; i++) {
		paths[i] = wconn_path(w, w->basedir,
				      cfg->builder[w->e->worker_builders[wi][i]].builddir, NULL);
		if (!paths[i]) {
			for (size_t k = 0; k < i; k++)
				free(paths[k]);
			free(paths);
			wconn_fail(w, "a builder directory path is too long");
			return;
		}
	}
	struct proto_enc args;
	proto_enc_init(&args);
	proto_pack_str(&args, "paths");
	proto_pack_array(&args, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		proto_pack_str(&args, paths[i]);
	proto_pack_str(&args, "logEnviron");
	proto_pack_bool(&args, false);
	struct rcmd *c;
	wconn_ref(w);
	int r = wconn_start_command(w, "mkdir", NULL, &args, 2, &mkdir_ops, w, &c);
	if (r < 0) {
		wconn_unref(w);
		wconn_fail(w, "cannot send mkdir");
	}
	proto_enc_release(&args);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}

static void workers_settings_reply(void *ud, int status, const msgpack_object *result)
{
	struct wconn *w = ud;
	if (!w->closed) {
		if (status == 0)
			workers_attach_mkdir(w);
		else
			wconn_fail(w, "set_worker_settings refused");
	}
	wconn_unref(w);
}

static void workers_attach_settings(struct wconn *w)
{
	struct proto_enc enc;
	proto_enc_init(&enc);
	int64_t seq = proto_session_request(w->sess, &enc, "set_worker_settings", 1,
					    workers_settings_reply, w);
	if (seq < 0) {
		proto_enc_release(&enc);
		wconn_fail(w, "cannot send set_worker_settings");
		return;
	}
	wconn_ref(w);
	proto_pack_str(&enc, "args");
	proto_pack_map(&enc, 4);
	proto_pack_str(&enc, "newline_re");
	proto_pack_str(&enc, "(\r\n|\r(?=.)|\033\\[u|\033\\[[0-9]+;[0-9]+[Hf]|\033\\[2J|\x08+)");
	proto_pack_str(&enc, "max_line_length");
	proto_pack_int(&enc, KILN_MAX_LINE);
	proto_pack_str(&enc, "buffer_timeout");
	/* Buildbot sends 5 s; output is worth more sooner.  Kiln's own worker
	 * flushes within 100 ms whatever this says. */
	proto_pack_int(&enc, 1);
	proto_pack_str(&enc, "buffer_size");
	proto_pack_int(&enc, 65536);
	wconn_send(w, &enc);
	proto_enc_release(&enc);
}

/* ------------------------------------------- re-attach (slice "reattach") */

/* docs/PROTOCOL.md "Re-attach": a worker that advertised kiln_reattach and
 * loses its connection with commands running is kept "away": closed, its
 * commands (not file transfers) and builds held for workers_reattach_grace
 * seconds.  When it connects again in time, its attach sequence gets a
 * kiln_reattach request naming the held commands; it answers with those it
 * still has, then sends what they produced meanwhile.  They move to the new
 * connection with their builds; the others fail as a lost connection does
 * (the build ends RETRY). */

struct away_timer {
	uv_timer_t timer;
	uint64_t since_ms; /* clock_mono_ms of the loss */
};

static void workers_away_timer_closed(uv_handle_t *h)
{
	free(h); /* the first member of its struct away_timer (data is the wconn) */
}

/* The away connection of cfg's worker, if any. */
static struct wconn *workers_find_away(struct engine *e, const struct config_worker *cfg)
{
	for (struct wconn *o = e->away; o; o = o->away_next)
		if (!strcmp(o->cfg->name, cfg->name))
			return o;
	return NULL;
}

/* Takes o out of the away list (its reference stays with the caller). */
static void workers_away_unlink(struct wconn *o)
{
	for (struct wconn **pp = &o->e->away; *pp; pp = &(*pp)->away_next)
		if (*pp == o) {
			*pp = o->away_next;
			break;
		}
	o->away_next = NULL;
	o->away = false;
	struct away_timer *t = o->away_timer;
	o->away_timer = NULL;
	if (t) {
		uv_timer_stop(&t->timer);
		uv_close((uv_handle_t *)&t->timer, workers_away_timer_closed);
	}
}

static bool workers_rcmd_is_transfer(const struct rcmd *c)
{
	return c->transfer;
}

/* The grace ran out: the held commands fail as a lost connection (RETRY). */
static void workers_away_fire(uv_timer_t *t)
{
	struct wconn *o = t->data;
	struct engine *e = o->e;
	unsigned n = 0;
	for (struct rcmd *c = o->cmds; c; c = c->next)
		n++;
	log_warn("worker=%s did not come back within %d s: %u held command(s) fail", o->cfg->name,
		 config_worker_reattach_grace(e->m->cfg, o->cfg), n);
	workers_away_unlink(o);
	while (o->cmds)
		workers_command_finish(o, o->cmds, -ECONNRESET,
				       "connection lost (the worker did not come back in time)");
	wconn_unref(o);
	engine_kick(e);
}

/* At a connection's loss: keeps w away if its worker can come back for
 * its commands.  Returns true when it does (w is then referenced by the
 * away list); the file transfers among its commands fail at once. */
static bool workers_hold(struct wconn *w)
{
	struct engine *e = w->e;
	int grace = config_worker_reattach_grace(e->m->cfg, w->cfg);
	if (!w->can_reattach || grace <= 0 || e->stopping || w->graceful || w->viol_closing ||
	    !w->cmds)
		return false;
	bool again = true;
	while (again) { /* a completion may change the list: start over */
		again = false;
		for (struct rcmd *c = w->cmds; c; c = c->next)
			if (workers_rcmd_is_transfer(c)) {
				workers_command_finish(w, c, -ECONNRESET, "connection lost");
				again = true;
				break;
			}
	}
	if (!w->cmds)
		return false;
	unsigned n = 0;
	for (struct rcmd *c = w->cmds; c; c = c->next)
		n++;
	log_warn("worker=%s lost with %u command(s) running: holding them %d s for it to come "
		 "back",
		 w->cfg->name, n, grace);
	struct away_timer *t = xcalloc(1, sizeof(*t));
	uv_timer_init(e->m->loop, &t->timer);
	t->timer.data = w;
	t->since_ms = clock_mono_ms();
	w->away_timer = t;
	w->away = true;
	w->away_next = e->away;
	e->away = w;
	wconn_ref(w);
	uv_timer_start(&t->timer, workers_away_fire, (uint64_t)grace * 1000, 0);
	return true;
}

/* Sends interrupt_command for a command id the master no longer follows. */
static void workers_interrupt_id(struct wconn *w, struct str id, const char *why)
{
	struct proto_enc enc;
	proto_enc_init(&enc);
	int64_t seq = proto_session_request(w->sess, &enc, "interrupt_command", 3,
					    workers_ignore_reply, w);
	if (seq < 0) {
		proto_enc_release(&enc);
		return;
	}
	wconn_ref(w);
	proto_pack_str(&enc, "command_id");
	proto_pack_strn(&enc, id.p, id.len);
	proto_pack_str(&enc, "builder_name");
	proto_pack_str(&enc, "");
	proto_pack_str(&enc, "why");
	proto_pack_str(&enc, why);
	wconn_send(w, &enc);
	proto_enc_release(&enc);
}

static bool workers_ids_have(const msgpack_object *ids, const char *id)
{
	for (uint32_t i = 0; ids && i < ids->via.array.size; i++) {
		struct str s;
		if (proto_obj_str(&ids->via.array.ptr[i], &s) && str_eq(s, id))
			return true;
	}
	return false;
}

/* The new connection n takes o's commands the worker still has (ids) and
 * every build of o; the other commands fail. */
static void workers_rebind(struct wconn *o, struct wconn *n, const msgpack_object *ids)
{
	struct engine *e = n->e;
	const struct away_timer *t = o->away_timer;
	double away_s = t ? (double)(clock_mono_ms() - t->since_ms) / 1000.0 : 0;
	workers_away_unlink(o);
	unsigned kept = 0, lost = 0;
	for (struct rcmd **pp = &o->cmds; *pp;) {
		struct rcmd *c = *pp;
		if (workers_ids_have(ids, c->id)) {
			*pp = c->next;
			c->next = n->cmds;
			n->cmds = c;
			kept++;
		} else {
			pp = &c->next;
		}
	}
	for (struct build *b = e->builds; b; b = b->next)
		if (b->w == o) {
			b->w = n;
			wconn_ref(n);
			wconn_unref(o);
			o->running--;
			n->running++;
			/* one header line in the running step's log, none in its output */
			if (b->step && b->step->cmd &&
			    wconn_find_command(n, str_from(b->step->cmd->id)))
				step_log_header(
					b->step,
					"worker reconnected after %.1f s away; the command went on",
					away_s);
		}
	/* what the worker runs and the master no longer follows (a step gave
	 * it up meanwhile) is stopped */
	for (uint32_t i = 0; ids && i < ids->via.array.size; i++) {
		struct str s;
		if (proto_obj_str(&ids->via.array.ptr[i], &s) && !wconn_find_command(n, s))
			workers_interrupt_id(n, s, "the master gave the command up");
	}
	for (struct rcmd *c = n->cmds; c; c = c->next)
		if (c->interrupt_held) {
			c->interrupt_held = false;
			if (wconn_interrupt(n, c, NULL, "stopped while the worker was away") < 0)
				log_debug("worker=%s cannot send a held interrupt", n->cfg->name);
		}
	while (o->cmds) {
		workers_command_finish(o, o->cmds, -ECONNRESET,
				       "connection lost (the worker no longer has the command)");
		lost++;
	}
	log_info("worker=%s re-attached from %s: %u command(s) continue%s", n->cfg->name,
		 n->ws ? ws_conn_peer(n->ws) : "?", kept, lost ? ", some were lost" : "");
	(void)lost;
	wconn_unref(o);
}

static void workers_reattach_reply(void *ud, int status, const msgpack_object *result)
{
	struct wconn *w = ud;
	if (w->closed)
		goto out;
	if (status != 0) {
		wconn_fail(w, "kiln_reattach refused");
		goto out;
	}
	const msgpack_object *ids = result && result->type == MSGPACK_OBJECT_ARRAY ? result : NULL;
	struct wconn *o = workers_find_away(w->e, w->cfg);
	if (o) {
		workers_rebind(o, w, ids);
	} else {
		/* nothing held any more (the grace ran out meanwhile) */
		for (uint32_t i = 0; ids && i < ids->via.array.size; i++) {
			struct str s;
			if (proto_obj_str(&ids->via.array.ptr[i], &s))
				workers_interrupt_id(w, s, "the master gave the command up");
		}
	}
	if (!w->closed)
		workers_attach_settings(w);
out:
	wconn_unref(w);
}

/* kiln_reattach {grace, commands: {id: messages received}} to a worker
 * that advertised the capability; its answer continues the attach. */
static void workers_attach_reattach(struct wconn *w)
{
	struct engine *e = w->e;
	struct wconn *o = workers_find_away(e, w->cfg);
	uint32_t n = 0;
	for (struct rcmd *c = o ? o->cmds : NULL; c; c = c->next)
		n++;
	struct proto_enc enc;
	proto_enc_init(&enc);
	int64_t seq =
		proto_session_request(w->sess, &enc, "kiln_reattach", 2, workers_reattach_reply, w);
	if (seq < 0) {
		proto_enc_release(&enc);
		wconn_fail(w, "cannot send kiln_reattach");
		return;
	}
	wconn_ref(w);
	proto_pack_str(&enc, "grace");
	proto_pack_int(&enc, config_worker_reattach_grace(e->m->cfg, w->cfg));
	proto_pack_str(&enc, "commands");
	proto_pack_map(&enc, n);
	for (struct rcmd *c = o ? o->cmds : NULL; c; c = c->next) {
		proto_pack_str(&enc, c->id);
		proto_pack_int(&enc, (int64_t)c->nrecv);
	}
	wconn_send(w, &enc);
	proto_enc_release(&enc);
}

static void workers_info_reply(void *ud, int status, const msgpack_object *result)
{
	struct wconn *w = ud;
	if (w->closed)
		goto out;
	if (status != 0 || !result || result->type != MSGPACK_OBJECT_MAP) {
		wconn_fail(w, "get_worker_info failed");
		goto out;
	}
	const msgpack_object *o = proto_map_get(result, "basedir");
	w->basedir = o ? proto_obj_strdup(o) : NULL;
	if (!w->basedir) {
		wconn_fail(w, "get_worker_info has no basedir");
		goto out;
	}
	o = proto_map_get(result, "system");
	struct str sys;
	w->nt = o && proto_obj_str(o, &sys) && str_eq(sys, "nt");

	/* keep the descriptive fields (never the environment) for the API */
	json_t *info = json_object();
	static const char *const keys[] = {"admin",   "host",          "access_uri",     "version",
					   "os_id",   "os_version_id", "os_pretty_name", "system",
					   "numcpus", "arch",          "basedir"};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		o = proto_map_get(result, keys[i]);
		struct str s;
		int64_t v;
		if (!o)
			continue;
		if (proto_obj_str(o, &s) && s.len < 4096)
			json_object_set_new(info, keys[i], json_stringn(s.p, s.len));
		else if (proto_obj_int(o, &v))
			json_object_set_new(info, keys[i], json_integer(v));
	}
	if (!json_object_get(info, "access_uri"))
		json_object_set_new(info, "access_uri", json_null());
	struct master *m = w->e->m;
	if (db_worker_set_info(m->db, w->workerid, info) < 0)
		log_error("worker=%s cannot store worker info: %s", w->cfg->name, db_errmsg(m->db));
	json_decref(info);
	int64_t cap = 0;
	w->can_reattach = proto_obj_int(proto_map_get(result, "kiln_reattach"), &cap) && cap == 1;
	if (w->can_reattach)
		workers_attach_reattach(w);
	else
		workers_attach_settings(w);
out:
	wconn_unref(w);
}

static void workers_attached_reply(void *ud, int status, const msgpack_object *result)
{
	struct wconn *w = ud;
	(void)result;
	if (!w->closed) {
		if (status == 0) {
			if (wconn_request_simple(w, "get_worker_info", workers_info_reply, NULL,
						 NULL) < 0)
				wconn_fail(w, "cannot send get_worker_info");
		} else {
			wconn_fail(w, "worker refused the attach notice");
		}
	}
	wconn_unref(w);
}

/* ------------------------------------------------------- incoming messages */

/* Logs how many violations went unlogged, if any. */
static void wconn_violation_summary(struct wconn *w)
{
	if (w->viol_unlogged == 0)
		return;
	log_warn("worker=%s %u more protocol violation(s) in the last %u s (not logged one by one)",
		 w->cfg->name, w->viol_unlogged,
		 (unsigned)((clock_mono_ms() - w->viol_window_ms + 999) / 1000));
	w->viol_unlogged = 0;
}

/* One protocol violation by the worker (what: a description for the log).
 * Logged in summary: the first of a window in full, the others as one count
 * when the window ends (at the next violation or at the disconnect).  Past
 * KILN_MAX_WORKER_VIOLATIONS in a window the worker is disconnected.
 * Returns true when the connection is being closed for it. */
static bool wconn_violation(struct wconn *w, const char *what)
{
	uint64_t now = clock_mono_ms();
	if (w->viol_in_window == 0 || now - w->viol_window_ms >= KILN_WORKER_VIOLATION_WINDOW_MS) {
		wconn_violation_summary(w);
		w->viol_window_ms = now;
		w->viol_in_window = 0;
	}
	if (++w->viol_in_window > KILN_MAX_WORKER_VIOLATIONS) {
		wconn_violation_summary(w);
		w->viol_closing = true;
		char why[96];
		snprintf(why, sizeof(why), "too many protocol violations (over %u in %u s)",
			 (unsigned)KILN_MAX_WORKER_VIOLATIONS,
			 (unsigned)(KILN_WORKER_VIOLATION_WINDOW_MS / 1000));
		wconn_fail(w, why);
		return true;
	}
	if (w->viol_in_window == 1)
		log_warn(
			"worker=%s protocol violation: %s (more are counted, logged once a minute)",
			w->cfg->name, what);
	else
		w->viol_unlogged++;
	return false;
}

static void workers_reply_error(struct wconn *w, int64_t seq, const char *msg)
{
	struct proto_enc enc;
	proto_enc_init(&enc);
	proto_enc_response_error(&enc, seq, msg);
	wconn_send(w, &enc);
	proto_enc_release(&enc);
}

static void workers_reply_nil(struct wconn *w, int64_t seq)
{
	struct proto_enc enc;
	proto_enc_init(&enc);
	proto_enc_response_nil(&enc, seq);
	wconn_send(w, &enc);
	proto_enc_release(&enc);
}

static void workers_handle_update(struct wconn *w, const struct proto_msg *msg, struct rcmd *c)
{
	const msgpack_object *args = proto_map_get(msg->root, "args");
	if (!args || args->type != MSGPACK_OBJECT_ARRAY) {
		workers_reply_error(w, msg->seq, "update without args list");
		return;
	}
	workers_reply_nil(w, msg->seq);
	for (uint32_t i = 0; i < args->via.array.size; i++) {
		const msgpack_object *pair = &args->via.array.ptr[i];
		struct str key;
		if (pair->type != MSGPACK_OBJECT_ARRAY || pair->via.array.size != 2 ||
		    !proto_obj_str(&pair->via.array.ptr[0], &key) || key.len >= 64)
			continue;
		char k[64];
		memcpy(k, key.p, key.len);
		k[key.len] = '\0';
		c->ops->update(c->ud, k, &pair->via.array.ptr[1]);
		/* the owner may have finished (or forgotten) the command inside
		 * update: it stays allocated until a later turn, marked dead */
		if (c->dead)
			break;
	}
}

/* ----------------------------------------------------------- file transfers */

enum workers_xfer {
	WORKERS_XFER_NONE,
	WORKERS_XFER_WRITE,  /* update_upload_file_write, update_upload_directory_write */
	WORKERS_XFER_CLOSE,  /* update_upload_file_close */
	WORKERS_XFER_UTIME,  /* update_upload_file_utime */
	WORKERS_XFER_UNPACK, /* update_upload_directory_unpack */
	WORKERS_XFER_READ,   /* update_read_file */
	WORKERS_XFER_RCLOSE, /* update_read_file_close */
};

static enum workers_xfer workers_transfer_op(struct str op)
{
	static const struct {
		const char *op;
		enum workers_xfer kind;
	} ops[] = {
		{"update_upload_file_write", WORKERS_XFER_WRITE},
		{"update_upload_file_close", WORKERS_XFER_CLOSE},
		{"update_upload_file_utime", WORKERS_XFER_UTIME},
		{"update_upload_directory_write", WORKERS_XFER_WRITE},
		{"update_upload_directory_unpack", WORKERS_XFER_UNPACK},
		{"update_read_file", WORKERS_XFER_READ},
		{"update_read_file_close", WORKERS_XFER_RCLOSE},
	};
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
		if (str_eq(op, ops[i].op))
			return ops[i].kind;
	return WORKERS_XFER_NONE;
}

/* The answer owed to one transfer message: it holds the connection, so it
 * may be sent on a later loop turn (or dropped if the connection closed). */
struct workers_answer {
	struct rcmd_answer a; /* first: the owner sees only this */
	struct wconn *w;      /* referenced */
	int64_t seq;
};

static void workers_answer_send(struct rcmd_answer *a, int status, const char *message,
				const void *data, size_t len)
{
	struct workers_answer *wa = (struct workers_answer *)a;
	struct wconn *w = wa->w;
	if (!w->closed && w->ws) {
		struct proto_enc enc;
		proto_enc_init(&enc);
		if (status < 0) {
			proto_enc_response_error(&enc, wa->seq,
						 message ? message : err_str(status));
		} else if (data) {
			/* the bytes themselves (Buildbot 3.7 answers nil here, and
			 * its workers write empty files) */
			proto_pack_map(&enc, 3);
			proto_pack_str(&enc, "op");
			proto_pack_str(&enc, "response");
			proto_pack_str(&enc, "seq_number");
			proto_pack_int(&enc, wa->seq);
			proto_pack_str(&enc, "result");
			proto_pack_bin(&enc, data, len);
		} else {
			proto_enc_response_nil(&enc, wa->seq);
		}
		wconn_send(w, &enc);
		proto_enc_release(&enc);
	}
	wconn_unref(w);
	free(wa);
}

/* Routes a transfer message to its command's owner, which answers it
 * through the token (now or later).  A command whose owner expects no such
 * message (no callback) gets an is_exception answer, like a bad message. */
static void workers_handle_transfer(struct wconn *w, const struct proto_msg *msg, struct rcmd *c,
				    enum workers_xfer kind)
{
	const struct rcmd_ops *ops = c->ops;
	struct str data = {0};
	double atime = 0, mtime = 0;
	int64_t length = 0;
	bool ok;
	switch (kind) {
	case WORKERS_XFER_WRITE:
		ok = ops->write != NULL;
		break;
	case WORKERS_XFER_CLOSE:
		ok = ops->close_writer != NULL;
		break;
	case WORKERS_XFER_UTIME:
		ok = ops->utime != NULL;
		break;
	case WORKERS_XFER_UNPACK:
		ok = ops->unpack != NULL;
		break;
	case WORKERS_XFER_READ:
		ok = ops->read != NULL;
		break;
	case WORKERS_XFER_RCLOSE:
		ok = ops->close_reader != NULL;
		break;
	default:
		ok = false;
	}
	if (!ok) {
		char why[160];
		snprintf(why, sizeof(why), "command %s expects no %.*s", c->id, (int)msg->op.len,
			 msg->op.p);
		if (!wconn_violation(w, "file transfer message the command does not expect"))
			workers_reply_error(w, msg->seq, why);
		return;
	}
	const char *bad = NULL;
	if (kind == WORKERS_XFER_WRITE) {
		const msgpack_object *a = proto_map_get(msg->root, "args");
		if (!a || !proto_obj_str(a, &data))
			bad = "write without a bin chunk in args";
	} else if (kind == WORKERS_XFER_UTIME) {
		const msgpack_object *at = proto_map_get(msg->root, "access_time");
		const msgpack_object *mt = proto_map_get(msg->root, "modified_time");
		if (!at || !mt || !proto_obj_double(at, &atime) || !proto_obj_double(mt, &mtime))
			bad = "utime without access_time and modified_time";
	} else if (kind == WORKERS_XFER_READ) {
		const msgpack_object *l = proto_map_get(msg->root, "length");
		if (!l || !proto_obj_int(l, &length) || length <= 0)
			bad = "read_file without a positive length";
		else if (length > (int64_t)KILN_TRANSFER_MAX_CHUNK)
			length = KILN_TRANSFER_MAX_CHUNK; /* the worker takes fewer bytes */
	}
	if (bad) {
		workers_reply_error(w, msg->seq, bad);
		return;
	}
	struct workers_answer *wa = xcalloc(1, sizeof(*wa));
	wa->a.send = workers_answer_send;
	wa->w = w;
	wa->seq = msg->seq;
	wconn_ref(w);
	switch (kind) {
	case WORKERS_XFER_WRITE:
		ops->write(c->ud, data.p, data.len, &wa->a);
		break;
	case WORKERS_XFER_CLOSE:
		ops->close_writer(c->ud, &wa->a);
		break;
	case WORKERS_XFER_UTIME:
		ops->utime(c->ud, atime, mtime, &wa->a);
		break;
	case WORKERS_XFER_UNPACK:
		ops->unpack(c->ud, &wa->a);
		break;
	case WORKERS_XFER_READ:
		ops->read(c->ud, (size_t)length, &wa->a);
		break;
	case WORKERS_XFER_RCLOSE:
		ops->close_reader(c->ud, &wa->a);
		break;
	default:
		break;
	}
}

/* slice "reattach": the messages received for c, which a re-attaching
 * worker resumes after (kiln_n: the worker's own number of the message). */
static void workers_count_message(const struct proto_msg *msg, struct rcmd *c)
{
	int64_t n;
	if (proto_obj_int(proto_map_get(msg->root, "kiln_n"), &n) && n >= 0) {
		if ((uint64_t)n + 1 > c->nrecv)
			c->nrecv = (uint64_t)n + 1;
	} else {
		c->nrecv++;
	}
}

static void wconn_message(void *ud, struct ws_conn *ws, const void *data, size_t len)
{
	struct wconn *w = ud;
	struct proto_msg msg;
	int r = proto_msg_decode(data, len, &msg);
	if (r < 0) {
		log_warn("worker=%s sent a malformed message (%zu bytes): %s; closing",
			 w->cfg->name, len, err_str(r));
		/* no seq to answer to: a peer that breaks the framing is not trusted further */
		ws_conn_close(ws, 1002, "malformed message");
		return;
	}
	if (w->viol_closing)
		goto out; /* disconnected for its violations: what it still sent is dropped */
	if (w->attached)  /* its last_seen, at most once a minute (slice "uimisc") */
		events_worker(w->e->m, w->workerid, NULL, false, &w->seen_ms);
	if (str_eq(msg.op, "response")) {
		r = proto_session_handle_response(w->sess, &msg);
		if (r < 0) {
			char what[64];
			snprintf(what, sizeof(what), "answered unknown request seq=%lld",
				 (long long)msg.seq);
			wconn_violation(w, what);
		}
		goto out;
	}
	if (!w->attached && !str_eq(msg.op, "update") && !str_eq(msg.op, "complete")) {
		workers_reply_error(w, msg.seq, "Worker not authenticated.");
		goto out;
	}
	const msgpack_object *cid = proto_map_get(msg.root, "command_id");
	struct str id;
	struct rcmd *c = NULL;
	if (cid && proto_obj_str(cid, &id))
		c = wconn_find_command(w, id);

	if (str_eq(msg.op, "update")) {
		if (!c) {
			if (!wconn_violation(w, "update for an unknown command_id"))
				workers_reply_error(w, msg.seq, "unknown command_id");
			goto out;
		}
		workers_count_message(&msg, c);
		workers_handle_update(w, &msg, c);
	} else if (str_eq(msg.op, "complete")) {
		if (!c) {
			if (!wconn_violation(w, "complete for an unknown command_id"))
				workers_reply_error(w, msg.seq, "unknown command_id");
			goto out;
		}
		workers_count_message(&msg, c);
		workers_reply_nil(w, msg.seq);
		const msgpack_object *a = proto_map_get(msg.root, "args");
		if (a && !proto_obj_nil(a)) {
			_cleanup_free_ char *failure = proto_obj_strdup(a);
			workers_command_finish(w, c, KILN_EPROTO,
					       failure ? failure : "command failed");
		} else {
			workers_command_finish(w, c, 0, NULL);
		}
	} else if (workers_transfer_op(msg.op) != WORKERS_XFER_NONE) {
		if (!c) {
			if (!wconn_violation(w, "file transfer message for an unknown command_id"))
				workers_reply_error(w, msg.seq, "unknown command_id");
			goto out;
		}
		workers_handle_transfer(w, &msg, c, workers_transfer_op(msg.op));
	} else {
		char buf[160];
		snprintf(buf, sizeof(buf), "Command %.*s does not exist.", (int)msg.op.len,
			 msg.op.p);
		if (!wconn_violation(w, "unknown op"))
			workers_reply_error(w, msg.seq, buf);
	}
out:
	proto_msg_release(&msg);
}

/* ------------------------------------ graceful stop and kill (slice "workerctl") */

/* After `shutdown` a worker drops the connection itself (Buildbot's 0.2 s
 * after its answer, Kiln's likewise); one that has not this long after a
 * graceful stop's `shutdown` is closed by the master. */
#define KILN_WORKER_SHUTDOWN_GUARD_MS 10000

struct wconn_guard {
	uv_timer_t timer;
	struct wconn *w; /* referenced until the handle is closed */
};

static void wconn_guard_closed(uv_handle_t *h)
{
	struct wconn_guard *g = h->data;
	wconn_unref(g->w);
	free(g);
}

static void wconn_guard_stop(struct wconn *w)
{
	struct wconn_guard *g = w->stop_guard;
	if (!g)
		return;
	w->stop_guard = NULL;
	uv_timer_stop(&g->timer);
	uv_close((uv_handle_t *)&g->timer, wconn_guard_closed);
}

static void wconn_guard_fire(uv_timer_t *t)
{
	struct wconn_guard *g = t->data;
	struct wconn *w = g->w;
	if (!w->closed && w->ws) {
		log_warn("worker=%s still connected %u s after shutdown; closing the connection",
			 w->cfg->name, (unsigned)(KILN_WORKER_SHUTDOWN_GUARD_MS / 1000));
		ws_conn_close(w->ws, 1000, "worker shut down");
	}
	wconn_guard_stop(w);
}

static void wconn_shutdown_reply(void *ud, int status, const msgpack_object *result)
{
	struct wconn *w = ud;
	(void)result;
	if (!w->closed)
		log_info("worker=%s answered shutdown%s", w->cfg->name,
			 status == 0 ? "" : " with an error");
	wconn_unref(w);
}

/* Sends `shutdown` once.  Returns false if it could not be sent. */
static bool wconn_send_shutdown(struct wconn *w)
{
	if (w->shutdown_sent)
		return true;
	w->shutdown_sent = true;
	int r = wconn_request_simple(w, "shutdown", wconn_shutdown_reply, NULL, NULL);
	if (r < 0)
		log_warn("worker=%s cannot send shutdown: %s", w->cfg->name, err_str(r));
	return r >= 0;
}

/* Buildbot's maybeShutdown: a gracefully stopping worker with no build left
 * is sent `shutdown`; the guard closes it if it stays. */
static void wconn_maybe_shutdown(struct wconn *w)
{
	if (!w->graceful || w->running > 0 || w->shutdown_sent || w->closed || !w->ws)
		return;
	log_info("worker=%s stopping gracefully: idle, sending shutdown", w->cfg->name);
	if (!wconn_send_shutdown(w)) {
		ws_conn_close(w->ws, 1000, "worker shut down");
		return;
	}
	struct wconn_guard *g = xcalloc(1, sizeof(*g));
	uv_timer_init(w->e->m->loop, &g->timer);
	g->timer.data = g;
	g->w = w;
	wconn_ref(w);
	w->stop_guard = g;
	uv_timer_start(&g->timer, wconn_guard_fire, KILN_WORKER_SHUTDOWN_GUARD_MS, 0);
}

void wconn_stop_gracefully(struct wconn *w)
{
	if (w->closed || !w->ws)
		return;
	if (!w->graceful) {
		w->graceful = true;
		w->paused = true; /* the distributor skips it from now on */
		log_info("worker=%s stopping gracefully: %d build(s) to finish", w->cfg->name,
			 w->running);
	}
	wconn_maybe_shutdown(w);
}

void wconn_kill(struct wconn *w)
{
	if (w->closed || !w->ws)
		return;
	log_info("worker=%s killed: sending shutdown and closing (%d running build(s) end RETRY)",
		 w->cfg->name, w->running);
	w->graceful = true; /* in memory only: an unpause cannot reopen it while it closes */
	w->paused = true;
	/* queued messages go out before the close frame: the worker reads
	 * `shutdown` and exits rather than reconnecting */
	wconn_send_shutdown(w);
	if (w->ws)
		ws_conn_close(w->ws, 1000, "worker killed");
}

void wconn_build_done(struct wconn *w)
{
	wconn_maybe_shutdown(w);
}

/* ----------------------------------------------------------- connections */

static int wconn_authenticate(void *ctx, const char *name, const char *password, void **ret_ud)
{
	struct engine *e = ctx;
	if (!name || !password)
		return KILN_EAUTH;
	const struct config_worker *cw = config_find_worker(e->m->cfg, name);
	/* compare in constant time whatever the name, so timing tells nothing */
	const char *want = cw ? cw->password : "";
	if (cw && cw->local) /* a local worker's password is the master's (latent.h) */
		want = latent_local_password(e->m->latent, cw);
	if (!want)
		want = "", cw = NULL; /* not started yet: nobody may log in as it */
	size_t lw = strlen(want), lp = strlen(password);
	char a[KILN_MAX_SECRET_BYTES + 1] = {0}, b[KILN_MAX_SECRET_BYTES + 1] = {0};
	bool ok = cw && lw == lp && lp <= KILN_MAX_SECRET_BYTES;
	memcpy(a, want, lw <= KILN_MAX_SECRET_BYTES ? lw : KILN_MAX_SECRET_BYTES);
	memcpy(b, password, lp <= KILN_MAX_SECRET_BYTES ? lp : KILN_MAX_SECRET_BYTES);
	if (sodium_memcmp(a, b, sizeof(a)) != 0)
		ok = false;
	sodium_memzero(b, sizeof(b));
	if (!ok) {
		log_warn("worker login refused for '%s': %s", name,
			 cw ? "wrong password" : "unknown worker");
		return KILN_EAUTH;
	}
	if (e->stopping)
		return KILN_EAUTH;
	struct wconn *w = xcalloc(1, sizeof(*w));
	w->e = e;
	w->cfg = cw;
	w->refs = 1;
	w->sess = proto_session_new();
	w->workerid = engine_worker_id(e, cw); /* cw is of the current configuration */
	*ret_ud = w;
	return 0;
}

/* Links w as its worker's connection and starts the attach sequence. */
static void wconn_accept(struct wconn *w)
{
	struct engine *e = w->e;
	size_t wi = engine_worker_index(e, w->cfg);
	e->conn[wi] = w;
	w->prev = NULL;
	w->next = e->workers;
	if (e->workers)
		e->workers->prev = w;
	e->workers = w;
	w->linked = true;
	if (wconn_request_simple(w, "print", workers_attached_reply, "message", "attached") < 0)
		wconn_fail(w, "cannot start the attach sequence");
}

/* The newcomer w loses to o, which still answers: it is told why (the
 * worker logs the print) and closed. */
static void wconn_refuse(struct wconn *w, const struct wconn *o)
{
	const char *where = o && o->ws ? ws_conn_peer(o->ws) : "elsewhere";
	log_warn("worker=%s connected again from %s; refused: the connection from %s still "
		 "answers",
		 w->cfg->name, w->ws ? ws_conn_peer(w->ws) : "?", where);
	_cleanup_free_ char *msg =
		xasprintf("connection refused: worker '%s' is already connected from %s; is "
			  "another worker running with this name?",
			  w->cfg->name, where);
	if (wconn_request_simple(w, "print", workers_ignore_reply, "message", msg) < 0)
		log_debug("worker=%s cannot send the refusal", w->cfg->name);
	if (w->ws)
		ws_conn_close(w->ws, 1008, "duplicate worker");
}

/* Buildbot's duplicate-worker check: a new connection claiming the name of
 * a connected worker does not evict it at once.  The old connection gets a
 * print (as Buildbot sends; every worker answers it); if it answers, even
 * with an error, the newcomer is refused; if it does not (in
 * engine->dup_probe_ms, or it closes), it is dropped and the newcomer
 * accepted.  Two live workers with one name thus do not evict each other
 * forever. */
struct wconn_probe {
	uv_timer_t timer;
	struct wconn *old, *newc; /* referenced */
	bool decided;
	int refs; /* the print's reply and the timer handle */
};

static void wconn_probe_unref(struct wconn_probe *p)
{
	if (--p->refs > 0)
		return;
	wconn_unref(p->old);
	wconn_unref(p->newc);
	free(p);
}

static void wconn_probe_timer_closed(uv_handle_t *h)
{
	wconn_probe_unref(h->data);
}

static void wconn_probe_decide(struct wconn_probe *p, bool old_alive)
{
	if (p->decided)
		return;
	p->decided = true;
	uv_timer_stop(&p->timer);
	uv_close((uv_handle_t *)&p->timer, wconn_probe_timer_closed);
	struct wconn *o = p->old, *w = p->newc;
	o->probed = false;
	if (w->closed || !w->ws)
		return; /* the newcomer left meanwhile */
	if (w->e->stopping) {
		ws_conn_close(w->ws, 1001, "master shutting down");
		return;
	}
	if (old_alive && !o->closed) {
		wconn_refuse(w, o);
		return;
	}
	if (!o->closed && o->ws) {
		log_warn("worker=%s connected again from %s; the old connection does not answer: "
			 "dropping it",
			 w->cfg->name, ws_conn_peer(w->ws));
		ws_conn_close(o->ws, 1000, "replaced by a new connection");
	}
	wconn_accept(w);
}

static void wconn_probe_reply(void *ud, int status, const msgpack_object *result)
{
	struct wconn_probe *p = ud;
	(void)result;
	/* an error answer is an answer: only a lost connection is not */
	wconn_probe_decide(p, status == 0 || status == KILN_EPROTO);
	wconn_probe_unref(p);
}

static void wconn_probe_timeout(uv_timer_t *t)
{
	wconn_probe_decide(t->data, false);
}

static void wconn_opened(void *ud, struct ws_conn *ws)
{
	struct wconn *w = ud;
	struct engine *e = w->e;
	w->ws = ws;
	size_t wi = engine_worker_index(e, w->cfg);
	struct wconn *o = e->conn[wi];
	if (!o || o->closed || !o->ws) {
		wconn_accept(w);
		return;
	}
	if (o->probed) {
		/* a third connection while a second one is being decided on */
		wconn_refuse(w, o);
		return;
	}
	log_info("worker=%s connected again from %s; checking the connection from %s", w->cfg->name,
		 ws_conn_peer(ws), ws_conn_peer(o->ws));
	struct wconn_probe *p = xcalloc(1, sizeof(*p));
	p->old = o;
	p->newc = w;
	wconn_ref(o);
	wconn_ref(w);
	p->refs = 2;
	struct proto_enc enc;
	proto_enc_init(&enc);
	int64_t seq = proto_session_request(o->sess, &enc, "print", 1, wconn_probe_reply, p);
	int r = (int)seq;
	if (seq >= 0) {
		proto_pack_str(&enc, "message");
		proto_pack_str(&enc, "master got a duplicate connection; checking this one");
		r = wconn_send(o, &enc);
	}
	proto_enc_release(&enc);
	uv_timer_init(e->m->loop, &p->timer);
	p->timer.data = p;
	o->probed = true;
	if (seq < 0) {
		p->refs--; /* no reply will come */
		wconn_probe_decide(p, false);
		return;
	}
	if (r < 0) {
		/* not sent: the old connection is closing, its reply fails */
		wconn_probe_decide(p, false);
		return;
	}
	uv_timer_start(&p->timer, wconn_probe_timeout, e->dup_probe_ms, 0);
}

static void wconn_closed(void *ud, struct ws_conn *ws)
{
	struct wconn *w = ud;
	struct engine *e = w->e;
	(void)ws;
	w->closed = true;
	w->ws = NULL;
	bool was_attached = w->attached;
	w->attached = false;
	size_t wi = engine_worker_index(e, w->cfg);
	bool was_linked = w->linked;
	if (w->linked) {
		/* closed() can come without opened(): only unlink what was linked */
		if (w->prev)
			w->prev->next = w->next;
		else
			e->workers = w->next;
		if (w->next)
			w->next->prev = w->prev;
		w->linked = false;
	}
	if (e->conn[wi] == w)
		e->conn[wi] = NULL;
	wconn_violation_summary(w);
	wconn_guard_stop(w);
	if (was_linked)
		log_info("worker=%s disconnected", w->cfg->name);
	else
		log_debug("worker=%s connection closed before it was accepted", w->cfg->name);
	/* fail commands first (builds end RETRY), then pending requests; a
	 * worker that can re-attach keeps them for its grace (slice "reattach") */
	if (!(was_attached && workers_hold(w)))
		while (w->cmds)
			workers_command_finish(w, w->cmds, -ECONNRESET, "connection lost");
	proto_session_fail_all(w->sess, -ECONNRESET);
	if (was_attached) {
		/* a replacing connection may already be attached */
		bool other = e->conn[wi] && e->conn[wi]->attached;
		if (!other && db_worker_set_connected(e->m->db, w->workerid, 0) < 0)
			log_error("worker=%s cannot record disconnection: %s", w->cfg->name,
				  db_errmsg(e->m->db));
		if (!other) {
			events_worker(e->m, w->workerid, "disconnected", true, &w->seen_ms);
			latent_detached(e->m->latent, w->cfg);
		}
	}
	wconn_unref(w);
	engine_kick(e);
}

void wconn_disconnect_all(struct engine *e)
{
	/* the builds are gone: what the away connections held is forgotten */
	while (e->away) {
		struct wconn *o = e->away;
		workers_away_unlink(o);
		while (o->cmds)
			wconn_forget_command(o, o->cmds);
		wconn_unref(o);
	}
	for (struct wconn *w = e->workers; w; w = w->next)
		if (w->ws)
			ws_conn_close(w->ws, 1001, "master shutting down");
}

void engine_init_worker_ops(struct engine *e);
void engine_init_worker_ops(struct engine *e)
{
	e->worker_ops.ctx = e;
	e->worker_ops.authenticate = wconn_authenticate;
	e->worker_ops.opened = wconn_opened;
	e->worker_ops.message = wconn_message;
	e->worker_ops.closed = wconn_closed;
}
