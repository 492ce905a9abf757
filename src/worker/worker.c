/*
 * kiln-worker's protocol engine (worker.h): dispatches the master's requests,
 * owns the running commands and their update batching, and applies send-queue
 * backpressure.  Transport-free: conn.c (or a unit test) moves the bytes.
 */
#define LOG_SUBSYS "worker"
#include "worker/worker.h"

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

extern char **environ;

#define WORKER_INFO_FILE_MAX (64u << 10)

static const struct cmd_type *const worker_cmd_table[] = {
	&cmd_shell, &cmd_mkdir, &cmd_rmdir, &cmd_cpdir, &cmd_stat, &cmd_glob,
	&cmd_listdir, &cmd_rmfile, &cmd_upload_file, &cmd_upload_directory, &cmd_download_file,
};

/* Names reported in worker_commands: the step-side names and the wire names. */
static const char *const worker_cmd_names[] = {
	"shell", "uploadFile", "upload_file", "uploadDirectory", "upload_directory",
	"downloadFile", "download_file", "mkdir", "rmdir", "cpdir", "stat", "glob", "listdir",
	"rmfile",
};

/* ---- sending ------------------------------------------------------------------- */

static void worker_send(struct worker *w, struct proto_enc *e)
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

static void worker_update_pause(struct worker *w)
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

/* ---- commands ------------------------------------------------------------------- */

static void cmd_batch_flush(void *ud)
{
	struct cmd *c = ud;
	struct worker *w = c->w;
	if (c->detached || !w->connected) {
		batch_clear(&c->batch);
		return;
	}
	struct proto_enc e;
	proto_enc_init(&e);
	if (proto_session_request(w->session, &e, "update", 2, NULL, NULL) < 0) {
		log_warn("command %s: master is not answering; update dropped", c->id);
		batch_clear(&c->batch);
	} else {
		proto_pack_str(&e, "command_id");
		proto_pack_str(&e, c->id);
		proto_pack_str(&e, "args");
		batch_pack(&c->batch, &e);
		worker_send(w, &e);
	}
	proto_enc_release(&e);
	worker_update_pause(w);
}

static void cmd_on_flush_timer(uv_timer_t *t)
{
	cmd_flush(t->data);
}

static void cmd_arm(struct cmd *c)
{
	if (!batch_empty(&c->batch) && !uv_is_active((uv_handle_t *)&c->flush_timer))
		uv_timer_start(&c->flush_timer, cmd_on_flush_timer, WORKER_FLUSH_MS, 0);
}

void cmd_add_line(struct cmd *c, const char *key, const char *logname, const char *line,
		  size_t len, double t)
{
	batch_add_line(&c->batch, key, logname, line, len, t);
	cmd_arm(c);
}

void cmd_add_text(struct cmd *c, const char *key, const char *text)
{
	batch_add_text(&c->batch, key, text, clock_wall());
	cmd_arm(c);
}

void cmd_add_int(struct cmd *c, const char *key, int64_t v)
{
	batch_add_int(&c->batch, key, v);
	cmd_arm(c);
}

void cmd_add_double(struct cmd *c, const char *key, double v)
{
	batch_add_double(&c->batch, key, v);
	cmd_arm(c);
}

int cmd_add_packed(struct cmd *c, const char *key, const void *packed, size_t len)
{
	int r = batch_add_packed(&c->batch, key, packed, len);
	if (r < 0)
		return r;
	cmd_arm(c);
	return 0;
}

void cmd_flush(struct cmd *c)
{
	uv_timer_stop(&c->flush_timer);
	batch_flush(&c->batch);
}

double cmd_elapsed(const struct cmd *c)
{
	uv_update_time(c->w->loop);
	return (double)(uv_now(c->w->loop) - c->start_ms) / 1000.0;
}

static void cmd_on_closed(uv_handle_t *h)
{
	struct cmd *c = h->data;
	if (c->type->free_priv)
		c->type->free_priv(c);
	batch_release(&c->batch);
	free(c->id);
	free(c->builder);
	free(c);
}

static void cmd_unlink(struct cmd *c)
{
	for (struct cmd **p = &c->w->cmds; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	c->next = NULL;
}

static void cmd_destroy(struct cmd *c)
{
	cmd_unlink(c);
	uv_timer_stop(&c->flush_timer);
	uv_close((uv_handle_t *)&c->flush_timer, cmd_on_closed);
}

void cmd_finish(struct cmd *c, const char *failure)
{
	if (c->finished)
		return;
	c->finished = true;
	cmd_flush(c);
	struct worker *w = c->w;
	if (!c->detached && w->connected) {
		struct proto_enc e;
		proto_enc_init(&e);
		if (proto_session_request(w->session, &e, "complete", 2, NULL, NULL) >= 0) {
			proto_pack_str(&e, "command_id");
			proto_pack_str(&e, c->id);
			proto_pack_str(&e, "args");
			proto_pack_str(&e, failure); /* NULL packs nil */
			worker_send(w, &e);
		}
		proto_enc_release(&e);
	}
	log_info("command %s (%s) finished%s%s", c->id, c->type->name, failure ? ": " : "",
		 failure ? failure : "");
	cmd_destroy(c);
}

struct cmd_request_ctx {
	void (*pack)(struct proto_enc *e, void *ud);
	void *ud;
};

int cmd_request(struct cmd *c, const char *op, uint32_t nfields,
		void (*pack)(struct proto_enc *e, void *ud), proto_reply_fn fn, void *ud)
{
	struct worker *w = c->w;
	if (c->detached || !w->connected)
		return -ENOTCONN;
	struct proto_enc e;
	proto_enc_init(&e);
	int64_t seq = proto_session_request(w->session, &e, op, nfields + 1, fn, ud);
	if (seq < 0) {
		proto_enc_release(&e);
		return (int)seq;
	}
	proto_pack_str(&e, "command_id");
	proto_pack_str(&e, c->id);
	if (pack)
		pack(&e, ud);
	worker_send(w, &e);
	proto_enc_release(&e);
	return 0;
}

char *cmd_arg_str(const msgpack_object *args, const char *key)
{
	const msgpack_object *o = proto_map_get(args, key);
	if (!o || o->type != MSGPACK_OBJECT_STR)
		return NULL;
	return proto_obj_strdup(o);
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
		_cleanup_free_ char *msg = xasprintf("No such command '%.*s'", (int)name.len, name.p);
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

	struct cmd *c = xcalloc(1, sizeof(*c));
	c->w = w;
	c->type = type;
	c->id = xstrndup(id.p, id.len);
	c->builder = proto_obj_strdup(proto_map_get(m->root, "builder_name"));
	batch_init(&c->batch, w->settings.buffer_size, cmd_batch_flush, c);
	uv_timer_init(w->loop, &c->flush_timer);
	c->flush_timer.data = c;
	uv_update_time(w->loop);
	c->start_ms = uv_now(w->loop);
	c->next = w->cmds;
	w->cmds = c;
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

/* ---- get_worker_info ----------------------------------------------------------- */

static void worker_pack_repaired(struct proto_enc *e, const char *p, size_t n)
{
	struct buf b;
	buf_init(&b, n * 3 + 8);
	int r = lines_utf8_repair(&b, p, n);
	assert(r == 0); /* 3n + 8 bytes hold any repair */
	(void)r;
	proto_pack_strn(e, b.ptr, b.len);
	buf_release(&b);
}

static int worker_read_small(const char *path, struct buf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	char tmp[4096];
	ssize_t n;
	while ((n = read(fd, tmp, sizeof(tmp))) > 0)
		if (buf_add(out, tmp, (size_t)n) < 0)
			break;
	close(fd);
	return 0;
}

/* Packs a pair per WORKERDIR/info/<name> file; returns how many. */
static uint32_t worker_info_files(struct worker *w, struct proto_enc *e)
{
	_cleanup_free_ char *dir = xasprintf("%s/info", w->basedir);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	uint32_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *path = xasprintf("%s/%s", dir, de->d_name);
		struct stat st;
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		n++;
		struct buf b;
		buf_init(&b, WORKER_INFO_FILE_MAX);
		(void)worker_read_small(path, &b);
		worker_pack_repaired(e, de->d_name, strlen(de->d_name));
		worker_pack_repaired(e, b.ptr, b.len);
		buf_release(&b);
	}
	closedir(d);
	return n;
}

/* Packs os_<key> pairs from /etc/os-release; returns how many. */
static uint32_t worker_os_release(struct proto_enc *e)
{
	struct buf b;
	buf_init(&b, WORKER_INFO_FILE_MAX);
	if (worker_read_small("/etc/os-release", &b) < 0)
		(void)worker_read_small("/usr/lib/os-release", &b);
	uint32_t n = 0;
	char *save = NULL;
	for (char *line = strtok_r(b.ptr, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		if (!eq || eq == line || line[0] == '#')
			continue;
		*eq = '\0';
		char *v = eq + 1;
		size_t vl = strlen(v);
		if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
			v++;
			vl -= 2;
		}
		n++;
		/* "os_" + the lower-cased name: sized to fit, so it cannot fail */
		size_t kl = strlen(line);
		_cleanup_free_ char *k = xmalloc(kl + 4);
		memcpy(k, "os_", 3);
		for (size_t i = 0; i < kl; i++)
			k[3 + i] = (line[i] >= 'A' && line[i] <= 'Z') ? (char)(line[i] - 'A' + 'a')
								       : line[i];
		worker_pack_repaired(e, k, kl + 3);
		worker_pack_repaired(e, v, vl);
	}
	buf_release(&b);
	return n;
}

static void worker_pack_environ(struct worker *w, struct proto_enc *e)
{
	if (!w->send_environ) {
		/* Buildbot's master needs environ only to expand '~' in transfer paths */
		const char *home = getenv("HOME");
		proto_pack_map(e, home ? 1 : 0);
		if (home) {
			proto_pack_str(e, "HOME");
			worker_pack_repaired(e, home, strlen(home));
		}
		return;
	}
	uint32_t n = 0;
	for (char **p = environ; *p; p++)
		if (strchr(*p, '=') && **p != '=')
			n++;
	proto_pack_map(e, n);
	for (char **p = environ; *p; p++) {
		const char *eq = strchr(*p, '=');
		if (!eq || eq == *p)
			continue;
		worker_pack_repaired(e, *p, (size_t)(eq - *p));
		worker_pack_repaired(e, eq + 1, strlen(eq + 1));
	}
}

static void worker_op_get_info(struct worker *w, const struct proto_msg *m)
{
	struct proto_enc e;
	proto_enc_init(&e);
	proto_pack_map(&e, 3);
	proto_pack_str(&e, "op");
	proto_pack_str(&e, "response");
	proto_pack_str(&e, "seq_number");
	proto_pack_int(&e, m->seq);
	proto_pack_str(&e, "result");
	/* info files and os-release pairs are packed aside first, so the map header
	 * carries exactly the number of pairs that were packed */
	struct proto_enc files, os;
	proto_enc_init(&files);
	proto_enc_init(&os);
	uint32_t nf2 = worker_info_files(w, &files);
	uint32_t no2 = worker_os_release(&os);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	proto_pack_map(&e, nf2 + no2 + 7);
	msgpack_sbuffer_write(&e.sb, files.sb.data, files.sb.size);
	msgpack_sbuffer_write(&e.sb, os.sb.data, os.sb.size);
	proto_pack_str(&e, "environ");
	worker_pack_environ(w, &e);
	proto_pack_str(&e, "system");
	proto_pack_str(&e, "posix");
	proto_pack_str(&e, "basedir");
	proto_pack_str(&e, w->basedir);
	proto_pack_str(&e, "numcpus");
	proto_pack_int(&e, ncpu > 0 ? ncpu : 1);
	proto_pack_str(&e, "version");
	proto_pack_str(&e, "kiln-" KILN_VERSION);
	proto_pack_str(&e, "worker_commands");
	proto_pack_map(&e, ARRAY_SIZE(worker_cmd_names));
	for (size_t i = 0; i < ARRAY_SIZE(worker_cmd_names); i++) {
		proto_pack_str(&e, worker_cmd_names[i]);
		proto_pack_str(&e, "3.1");
	}
	proto_pack_str(&e, "delete_leftover_dirs");
	proto_pack_int(&e, 0);
	proto_enc_release(&files);
	proto_enc_release(&os);
	worker_send(w, &e);
	proto_enc_release(&e);
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
		w->settings.buffer_size = v < 1024                        ? 1024
					  : (uint64_t)v > KILN_MAX_WS_FRAME / 2 ? KILN_MAX_WS_FRAME / 2
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
		worker_op_get_info(w, &m);
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
