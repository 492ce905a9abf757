/*
 * kiln-worker's protocol engine (worker.h): dispatches the master's requests
 * (start/interrupt a command, settings, print, keepalive, shutdown), owns the
 * connection-level state and applies send-queue backpressure.  A command's
 * life is cmd.c, the get_worker_info answer worker-info.c.  Transport-free:
 * conn.c (or a unit test) moves the bytes.
 */
#define LOG_SUBSYS "worker"
#include "worker/worker.h"
#include "worker/worker-int.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"

static const struct cmd_type *const worker_cmd_table[] = {
	&cmd_shell,         &cmd_mkdir,   &cmd_rmdir,  &cmd_cpdir,       &cmd_stat,
	&cmd_glob,          &cmd_listdir, &cmd_rmfile, &cmd_upload_file, &cmd_upload_directory,
	&cmd_download_file,
};

/* The commands that may outlive a connection: not the file transfers, whose
 * requests die with it. */
static bool worker_cmd_holdable(const struct cmd_type *t)
{
	return t != &cmd_upload_file && t != &cmd_upload_directory && t != &cmd_download_file;
}

/* ---- sending ------------------------------------------------------------------- */

void worker_send(struct worker *w, struct proto_enc *e)
{
	if (!w->connected || w->host->send(w->host_ud, e->sb.data, e->sb.size) < 0)
		log_debug("dropped a message: not connected");
}

static void worker_reply_nil(struct worker *w, int64_t seq)
{
	struct proto_enc e;
	proto_enc_init(&e);
	proto_enc_response_nil(&e, seq);
	worker_send(w, &e);
	proto_enc_release(&e);
}

static void worker_reply_error(struct worker *w, int64_t seq, const char *msg)
{
	struct proto_enc e;
	proto_enc_init(&e);
	proto_enc_response_error(&e, seq, msg);
	worker_send(w, &e);
	proto_enc_release(&e);
}

void worker_update_pause(struct worker *w)
{
	size_t pending = w->session ? proto_session_pending(w->session) : 0;
	bool want = w->paused;
	if (w->sendq > KILN_WORKER_SENDQ_PAUSE || pending > KILN_MAX_PENDING_REQUESTS * 3 / 4)
		want = true;
	else if (w->sendq < KILN_WORKER_SENDQ_PAUSE / 2 && pending < KILN_MAX_PENDING_REQUESTS / 2)
		want = false;
	if (want == w->paused)
		return;
	w->paused = want;
	log_debug("%s command output (queue %zu bytes, %zu unanswered)",
		  want ? "pausing" : "resuming", w->sendq, pending);
	for (struct cmd *c = w->cmds; c; c = c->next)
		if (c->type->pause && !c->finished)
			c->type->pause(c, want);
}

void worker_sendq_changed(struct worker *w, size_t queued_bytes)
{
	w->sendq = queued_bytes;
	worker_update_pause(w);
}

/* A running command by id.  Not a detached one: it is being killed and
 * reports nothing more, and a restarted master numbers its commands from 1
 * again, so an old id may be reused while its process dies. */
static struct cmd *worker_find_cmd(struct worker *w, struct str id)
{
	for (struct cmd *c = w->cmds; c; c = c->next)
		if (!c->finished && !c->detached && str_eq(id, c->id))
			return c;
	return NULL;
}

static const struct cmd_type *worker_cmd_type(struct str name)
{
	/* the step-side names arrive on the wire only for old masters; map them anyway */
	if (str_eq(name, "uploadFile"))
		name = STR_LIT("upload_file");
	else if (str_eq(name, "uploadDirectory"))
		name = STR_LIT("upload_directory");
	else if (str_eq(name, "downloadFile"))
		name = STR_LIT("download_file");
	for (size_t i = 0; i < ARRAY_SIZE(worker_cmd_table); i++)
		if (str_eq(name, worker_cmd_table[i]->name))
			return worker_cmd_table[i];
	return NULL;
}

static void worker_op_start_command(struct worker *w, const struct proto_msg *m)
{
	struct str id, name;
	const msgpack_object *args = proto_map_get(m->root, "args");
	if (!proto_obj_str(proto_map_get(m->root, "command_id"), &id) ||
	    !proto_obj_str(proto_map_get(m->root, "command_name"), &name)) {
		worker_reply_error(w, m->seq, "start_command needs command_id and command_name");
		return;
	}
	const struct cmd_type *type = worker_cmd_type(name);
	if (!type) {
		_cleanup_free_ char *msg =
			xasprintf("No such command '%.*s'", (int)name.len, name.p);
		worker_reply_error(w, m->seq, msg);
		return;
	}
	if (args && args->type != MSGPACK_OBJECT_MAP) {
		worker_reply_error(w, m->seq, "start_command: args must be a map");
		return;
	}
	if (worker_find_cmd(w, id)) {
		_cleanup_free_ char *msg =
			xasprintf("command_id '%.*s' is already running", (int)id.len, id.p);
		worker_reply_error(w, m->seq, msg);
		return;
	}

	struct cmd *c =
		cmd_new(w, type, id, proto_obj_strdup(proto_map_get(m->root, "builder_name")));
	if (w->grace_ms > 0 && worker_cmd_holdable(type)) {
		c->rc = retain_cmd_new(&w->retain, c->id);
		c->rc->cmd = c;
	}
	log_info("command %s: %s%s%s", c->id, type->name, c->builder ? " for builder " : "",
		 c->builder ? c->builder : "");

	static const msgpack_object empty = {.type = MSGPACK_OBJECT_MAP};
	char *err = NULL;
	int r = type->start(c, args ? args : &empty, &err);
	if (r < 0) {
		log_warn("command %s (%s) refused: %s", c->id, type->name, err ? err : err_str(r));
		worker_reply_error(w, m->seq, err ? err : err_str(r));
		free(err);
		c->finished = true;
		batch_clear(&c->batch);
		if (c->rc)
			retain_cmd_free(&w->retain, c->rc);
		c->rc = NULL;
		cmd_destroy(c);
		return;
	}
	if (!c->finished && w->paused && type->pause)
		type->pause(c, true);
	worker_reply_nil(w, m->seq);
}

static void worker_op_interrupt(struct worker *w, const struct proto_msg *m)
{
	struct str id = {0};
	(void)proto_obj_str(proto_map_get(m->root, "command_id"), &id);
	struct cmd *c = worker_find_cmd(w, id);
	if (!c) {
		/* already over (the master races with completion): nothing to do */
		log_info("interrupt for unknown command '%.*s'", (int)id.len, id.p ? id.p : "");
		worker_reply_nil(w, m->seq);
		return;
	}
	_cleanup_free_ char *why = proto_obj_strdup(proto_map_get(m->root, "why"));
	log_info("command %s: interrupted: %s", c->id, why ? why : "(no reason)");
	cmd_flush(c);
	worker_reply_nil(w, m->seq);
	if (!c->interrupted) {
		c->interrupted = true;
		if (c->type->interrupt)
			c->type->interrupt(c, why ? why : "");
	}
}

static void worker_op_settings(struct worker *w, const struct proto_msg *m)
{
	const msgpack_object *args = proto_map_get(m->root, "args");
	int64_t v;
	if (args && args->type != MSGPACK_OBJECT_MAP) {
		worker_reply_error(w, m->seq, "set_worker_settings: args must be a map");
		return;
	}
	if (proto_obj_int(proto_map_get(args, "max_line_length"), &v) && v > 0)
		w->settings.max_line_length = v < 80 ? 80 : v > (1 << 20) ? (1 << 20) : (size_t)v;
	if (proto_obj_int(proto_map_get(args, "buffer_size"), &v) && v > 0)
		w->settings.buffer_size = v < 1024 ? 1024
					  : (uint64_t)v > KILN_MAX_WS_FRAME / 2
						  ? KILN_MAX_WS_FRAME / 2
						  : (size_t)v;
	/* newline_re and buffer_timeout: Kiln uses Buildbot's default newline set and
	 * its own 100 ms flush, see docs/PROTOCOL.md */
	worker_reply_nil(w, m->seq);
}

/* ---- re-attach (docs/PROTOCOL.md "Re-attach") ------------------------------------ */

struct retain_ack {
	struct worker *w;
	uint64_t index;
	char id[]; /* the command_id */
};

/* The master answered one buffered message: it and the ones before it are
 * delivered. */
static void worker_retain_ack(void *ud, int status, const msgpack_object *result)
{
	struct retain_ack *a = ud;
	(void)result;
	if (status == 0) {
		struct retain_cmd *rc = retain_cmd_find(&a->w->retain, a->id, strlen(a->id));
		if (rc) {
			retain_drop_below(&a->w->retain, rc, a->index + 1);
			if (retain_cmd_spent(rc))
				retain_cmd_free(&a->w->retain, rc);
		}
	}
	free(a);
}

/* Sends one buffered message: {op, seq_number, command_id, args, kiln_n}. */
static void worker_retain_send(struct worker *w, struct retain_cmd *rc,
			       const struct retain_entry *e)
{
	size_t idlen = strlen(rc->id);
	struct retain_ack *a = xmalloc(sizeof(*a) + idlen + 1);
	a->w = w;
	a->index = e->index;
	memcpy(a->id, rc->id, idlen + 1);
	struct proto_enc enc;
	proto_enc_init(&enc);
	if (proto_session_request(w->session, &enc, e->complete ? "complete" : "update", 3,
				  worker_retain_ack, a) < 0) {
		log_warn("command %s: master is not answering; message %llu kept for later", rc->id,
			 (unsigned long long)e->index);
		free(a);
		proto_enc_release(&enc);
		return;
	}
	proto_pack_str(&enc, "command_id");
	proto_pack_str(&enc, rc->id);
	proto_pack_str(&enc, "args");
	msgpack_sbuffer_write(&enc.sb, (const char *)e->data, e->len);
	proto_pack_str(&enc, "kiln_n");
	proto_pack_int(&enc, (int64_t)e->index);
	worker_send(w, &enc);
	proto_enc_release(&enc);
}

/* Forgets one record; its command, if still running, is killed and sends
 * nothing more. */
static void worker_retain_discard(struct worker *w, struct retain_cmd *rc, const char *why)
{
	struct cmd *c = rc->cmd;
	if (c) {
		c->rc = NULL;
		c->detached = true;
		batch_clear(&c->batch);
		if (!c->finished && c->type->abort) {
			log_info("command %s: %s, killing it", c->id, why);
			c->type->abort(c);
		}
	}
	retain_cmd_free(&w->retain, rc);
}

static void worker_resync_end(struct worker *w)
{
	w->resync = false;
	w->retain_overflow = false;
	uv_timer_stop(w->grace_timer);
}

/* The grace ran out (or the buffer filled) before a master took the
 * commands back: they die as they would have at the drop. */
static void worker_grace_fire(uv_timer_t *t)
{
	struct worker *w = t->data;
	if (!w->resync)
		return;
	const char *why = w->retain_overflow ? "the re-attach buffer is full"
					     : "the master did not take it back in time";
	while (w->retain.cmds)
		worker_retain_discard(w, w->retain.cmds, why);
	worker_resync_end(w);
}

void worker_retain_push(struct worker *w, struct cmd *c, bool complete, const void *data,
			size_t len)
{
	struct retain_cmd *rc = c->rc;
	if (w->retain_overflow)
		return; /* all held commands are being given up */
	int64_t idx = retain_add(&w->retain, rc, complete, data, len);
	if (idx < 0) {
		if (w->resync) {
			log_warn("re-attach buffer over %zu bytes: giving the held commands up",
				 w->retain.cap);
			w->retain_overflow = true;
			/* on the next turn: this may run inside the command's own callbacks */
			uv_timer_start(w->grace_timer, worker_grace_fire, 0, 0);
			return;
		}
		/* connected and the master not answering: this command no longer
		 * survives a drop, its messages go out as Buildbot's do */
		log_warn("command %s: re-attach buffer full; it will not survive a disconnect",
			 c->id);
		c->rc = NULL;
		rc->cmd = NULL;
		if (!w->connected)
			return;
		struct proto_enc e;
		proto_enc_init(&e);
		if (proto_session_request(w->session, &e, complete ? "complete" : "update", 2, NULL,
					  NULL) >= 0) {
			proto_pack_str(&e, "command_id");
			proto_pack_str(&e, c->id);
			proto_pack_str(&e, "args");
			msgpack_sbuffer_write(&e.sb, data, len);
			worker_send(w, &e);
		}
		proto_enc_release(&e);
		/* its record still holds what was sent before: it goes once acknowledged */
		rc->done = true;
		if (retain_cmd_spent(rc))
			retain_cmd_free(&w->retain, rc);
		return;
	}
	if (w->connected && !w->resync)
		worker_retain_send(w, rc, rc->tail);
}

/* kiln_reattach {grace, commands: {command_id: messages received}}: the
 * grace for this connection, and which held commands the master still
 * has.  Answered with the ids taken back; their buffered messages from the
 * master's count on follow, then they stream live again. */
static void worker_op_reattach(struct worker *w, const struct proto_msg *m)
{
	int64_t grace = 0;
	if (!proto_obj_int(proto_map_get(m->root, "grace"), &grace) || grace < 0)
		grace = 0;
	if (grace > 86400)
		grace = 86400;
	w->grace_ms = (uint64_t)grace * 1000;
	const msgpack_object *held = proto_map_get(m->root, "commands");
	if (held && held->type != MSGPACK_OBJECT_MAP)
		held = NULL;
	/* the records the master does not hold are dropped first */
	struct retain_cmd *next;
	uint32_t kept = 0;
	for (struct retain_cmd *rc = w->retain.cmds; rc; rc = next) {
		next = rc->next;
		const msgpack_object *n = NULL;
		if (held && w->resync && !w->retain_overflow)
			n = proto_map_get(held, rc->id);
		int64_t count;
		if (!n || !proto_obj_int(n, &count) || count < 0) {
			worker_retain_discard(w, rc, "the master does not hold it");
			continue;
		}
		retain_drop_below(&w->retain, rc, (uint64_t)count);
		if (retain_cmd_spent(rc)) {
			retain_cmd_free(&w->retain, rc);
			continue;
		}
		kept++;
	}
	struct proto_enc e;
	proto_enc_init(&e);
	proto_pack_map(&e, 3);
	proto_pack_str(&e, "op");
	proto_pack_str(&e, "response");
	proto_pack_str(&e, "seq_number");
	proto_pack_int(&e, m->seq);
	proto_pack_str(&e, "result");
	proto_pack_array(&e, kept);
	for (struct retain_cmd *rc = w->retain.cmds; rc; rc = rc->next)
		proto_pack_str(&e, rc->id);
	worker_send(w, &e);
	proto_enc_release(&e);
	if (kept)
		log_info("re-attached: %u command(s) continue", (unsigned)kept);
	worker_resync_end(w);
	for (struct retain_cmd *rc = w->retain.cmds; rc; rc = rc->next)
		for (struct retain_entry *en = rc->head; en; en = en->next)
			worker_retain_send(w, rc, en);
	worker_update_pause(w);
}

/* ---- dispatch ------------------------------------------------------------------ */

int worker_handle_message(struct worker *w, const void *data, size_t len)
{
	struct proto_msg m;
	if (proto_msg_decode(data, len, &m) < 0)
		return KILN_EPROTO;

	if (str_eq(m.op, "response")) {
		if (proto_session_handle_response(w->session, &m) < 0)
			log_debug("response to unknown request %lld", (long long)m.seq);
		worker_update_pause(w);
	} else if (str_eq(m.op, "print")) {
		_cleanup_free_ char *msg = proto_obj_strdup(proto_map_get(m.root, "message"));
		log_info("message from master: %s", msg ? msg : "");
		worker_reply_nil(w, m.seq);
	} else if (str_eq(m.op, "keepalive")) {
		worker_reply_nil(w, m.seq);
	} else if (str_eq(m.op, "get_worker_info")) {
		worker_info_reply(w, m.seq);
	} else if (str_eq(m.op, "set_worker_settings")) {
		worker_op_settings(w, &m);
	} else if (str_eq(m.op, "start_command")) {
		worker_op_start_command(w, &m);
	} else if (str_eq(m.op, "interrupt_command")) {
		worker_op_interrupt(w, &m);
	} else if (str_eq(m.op, "kiln_reattach")) {
		worker_op_reattach(w, &m);
	} else if (str_eq(m.op, "shutdown")) {
		log_info("master asked the worker to shut down");
		worker_reply_nil(w, m.seq);
		if (w->host->shutdown)
			w->host->shutdown(w->host_ud);
	} else {
		_cleanup_free_ char *msg =
			xasprintf("Command %.*s does not exist.", (int)m.op.len, m.op.p);
		worker_reply_error(w, m.seq, msg);
	}
	proto_msg_release(&m);
	return 0;
}

/* ---- lifecycle ------------------------------------------------------------------- */

static void worker_settings_default(struct worker_settings *s)
{
	s->max_line_length = KILN_MAX_LINE;
	s->buffer_size = 64u << 10;
}

struct worker *worker_new(uv_loop_t *loop, const char *basedir, const struct worker_host *host,
			  void *host_ud)
{
	struct worker *w = xcalloc(1, sizeof(*w));
	w->loop = loop;
	char *abs = realpath(basedir, NULL);
	w->basedir = abs ? abs : xstrdup(basedir);
	w->host = host;
	w->host_ud = host_ud;
	worker_settings_default(&w->settings);
	w->session = proto_session_new();
	retain_init(&w->retain, 0);
	w->grace_timer = xcalloc(1, sizeof(*w->grace_timer));
	uv_timer_init(loop, w->grace_timer);
	w->grace_timer->data = w;
	return w;
}

void worker_connected(struct worker *w)
{
	proto_session_free(w->session);
	w->session = proto_session_new();
	worker_settings_default(&w->settings);
	w->grace_ms = 0; /* until this master's kiln_reattach says otherwise */
	w->connected = true;
	w->sendq = 0;
	worker_update_pause(w);
}

void worker_disconnected(struct worker *w)
{
	w->connected = false;
	bool hold = w->grace_ms > 0 || w->resync;
	/* detach first, so nothing a failing callback does reaches the wire */
	for (struct cmd *c = w->cmds; c; c = c->next) {
		if (hold && c->rc && !c->finished)
			continue; /* held: its output is buffered (worker_retain_push) */
		if (c->rc) {
			c->rc->cmd = NULL;
			c->rc = NULL;
		}
		c->detached = true;
		batch_clear(&c->batch);
	}
	if (!hold)
		retain_release(&w->retain);
	proto_session_fail_all(w->session, -ECONNRESET);
	if (hold && w->retain.cmds && !w->resync) {
		w->resync = true;
		log_info("connection lost: holding %zu command(s) for %llu s", worker_nheld(w),
			 (unsigned long long)(w->grace_ms / 1000));
		/* from now, not from the loop's cached time: the turn may have been long */
		uv_update_time(w->loop);
		uv_timer_start(w->grace_timer, worker_grace_fire, w->grace_ms, 0);
	}
	struct cmd *next;
	for (struct cmd *c = w->cmds; c; c = next) {
		next = c->next;
		if (!c->finished && c->type->abort && c->detached) {
			log_info("command %s: connection lost, killing it", c->id);
			c->type->abort(c);
		}
	}
	w->sendq = 0;
	worker_update_pause(w);
}

size_t worker_nheld(const struct worker *w)
{
	size_t n = 0;
	for (struct retain_cmd *rc = w->retain.cmds; rc; rc = rc->next)
		n++;
	return n;
}

size_t worker_ncmds(const struct worker *w)
{
	size_t n = 0;
	for (struct cmd *c = w->cmds; c; c = c->next)
		n++;
	return n;
}

static void worker_grace_timer_closed(uv_handle_t *h)
{
	free(h);
}

void worker_free(struct worker *w)
{
	if (!w)
		return;
	w->grace_ms = 0;
	w->resync = false;
	worker_disconnected(w);
	retain_release(&w->retain);
	uv_timer_stop(w->grace_timer);
	uv_close((uv_handle_t *)w->grace_timer, worker_grace_timer_closed);
	/* commands still waiting for their processes: forget them (their runners kill
	 * the groups and free themselves) */
	struct cmd *next;
	for (struct cmd *c = w->cmds; c; c = next) {
		next = c->next;
		cmd_finish(c, NULL);
	}
	proto_session_free(w->session);
	w->session = NULL;
	free(w->basedir);
	w->basedir = NULL;
	w->freed = true;
	if (w->nclosing == 0)
		free(w);
	/* else the last cmd_on_closed() frees it */
}
