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

static struct cmd *worker_find_cmd(struct worker *w, struct str id)
{
	for (struct cmd *c = w->cmds; c; c = c->next)
		if (!c->finished && str_eq(id, c->id))
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
	return w;
}

void worker_connected(struct worker *w)
{
	proto_session_free(w->session);
	w->session = proto_session_new();
	worker_settings_default(&w->settings);
	w->connected = true;
	w->sendq = 0;
	worker_update_pause(w);
}

void worker_disconnected(struct worker *w)
{
	w->connected = false;
	/* detach first, so nothing a failing callback does reaches the wire */
	for (struct cmd *c = w->cmds; c; c = c->next) {
		c->detached = true;
		batch_clear(&c->batch);
	}
	proto_session_fail_all(w->session, -ECONNRESET);
	struct cmd *next;
	for (struct cmd *c = w->cmds; c; c = next) {
		next = c->next;
		if (!c->finished && c->type->abort) {
			log_info("command %s: connection lost, killing it", c->id);
			c->type->abort(c);
		}
	}
	w->sendq = 0;
	worker_update_pause(w);
}

size_t worker_ncmds(const struct worker *w)
{
	size_t n = 0;
	for (struct cmd *c = w->cmds; c; c = c->next)
		n++;
	return n;
}

void worker_free(struct worker *w)
{
	if (!w)
		return;
	worker_disconnected(w);
	/* commands still waiting for their processes: forget them (their runners kill
	 * the groups and free themselves) */
	struct cmd *next;
	for (struct cmd *c = w->cmds; c; c = next) {
		next = c->next;
		cmd_finish(c, NULL);
	}
	proto_session_free(w->session);
	free(w->basedir);
	free(w);
}
