/*
 * The life of one remote command in kiln-worker (worker.h "for commands"):
 * creation, its update batch and 100 ms flush timer, requests on its behalf
 * (file transfers), `complete`, and freeing on a later loop turn.  The
 * command types themselves are cmd-*.c; dispatch is worker.c.
 */
#define LOG_SUBSYS "worker"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "worker/worker-int.h"
#include "worker/worker.h"

static void cmd_batch_flush(void *ud)
{
	struct cmd *c = ud;
	struct worker *w = c->w;
	if (c->rc && !c->detached) {
		/* held across drops: buffered until the master acknowledges it */
		struct proto_enc a;
		proto_enc_init(&a);
		batch_pack(&c->batch, &a);
		worker_retain_push(w, c, false, a.sb.data, a.sb.size);
		proto_enc_release(&a);
		worker_update_pause(w);
		return;
	}
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

void cmd_add_line(struct cmd *c, const char *key, const char *logname, const char *line, size_t len,
		  double t)
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
	struct worker *w = c->w;
	if (c->type->free_priv)
		c->type->free_priv(c);
	batch_release(&c->batch);
	free(c->id);
	free(c->builder);
	free(c);
	if (--w->nclosing == 0 && w->freed)
		free(w); /* worker_free() left it to the last command */
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

void cmd_destroy(struct cmd *c)
{
	cmd_unlink(c);
	c->w->nclosing++;
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
	if (c->rc && !c->detached) {
		struct proto_enc a;
		proto_enc_init(&a);
		proto_pack_str(&a, failure); /* NULL packs nil */
		worker_retain_push(w, c, true, a.sb.data, a.sb.size);
		proto_enc_release(&a);
		if (c->rc) {
			c->rc->cmd = NULL;
			c->rc = NULL;
		}
	} else if (!c->detached && w->connected) {
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

/* The head of a write request up to its bin header for n bytes: the
 * session's map header, op and seq_number (the format proto_session_request()
 * documents), then command_id and the "args" key. */
static void cmd_pack_write_head(struct proto_enc *e, const char *op, int64_t seq, const char *id,
				size_t n)
{
	proto_pack_map(e, 2 + 2);
	proto_pack_str(e, "op");
	proto_pack_str(e, op);
	proto_pack_str(e, "seq_number");
	proto_pack_int(e, seq);
	proto_pack_str(e, "command_id");
	proto_pack_str(e, id);
	proto_pack_str(e, "args");
	msgpack_pack_bin(&e->pk, n);
}

static void cmd_msg_free(struct worker *w, void *msg)
{
	if (w->host->msg_free)
		w->host->msg_free(w->host_ud, msg);
	else
		free(msg);
}

ssize_t cmd_request_read(struct cmd *c, const char *op, int fd, size_t want, proto_reply_fn fn,
			 void *ud)
{
	struct worker *w = c->w;
	if (c->detached || !w->connected)
		return -ENOTCONN;
	if (proto_session_pending(w->session) >= KILN_MAX_PENDING_REQUESTS)
		return -EBUSY;
	/* the head's length for a full block: the data is read right after it */
	struct proto_enc e;
	proto_enc_init(&e);
	cmd_pack_write_head(&e, op, proto_session_next_seq(w->session), c->id, want);
	size_t head = e.sb.size;
	proto_enc_reset(&e);

	unsigned char *p;
	void *msg;
	if (w->host->msg_new)
		msg = w->host->msg_new(w->host_ud, head + want, &p);
	else
		msg = p = xmalloc(head + want);
	ssize_t n;
	do
		n = read(fd, p + head, want);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		int r = n < 0 ? -errno : 0;
		cmd_msg_free(w, msg);
		proto_enc_release(&e);
		return r;
	}
	int64_t seq = proto_session_request(w->session, &e, op, 2, fn, ud);
	if (seq < 0) { /* not reached: checked above, and nothing ran since */
		cmd_msg_free(w, msg);
		proto_enc_release(&e);
		return (int)seq;
	}
	proto_pack_str(&e, "command_id");
	proto_pack_str(&e, c->id);
	proto_pack_str(&e, "args");
	msgpack_pack_bin(&e.pk, (size_t)n);
	/* a short read may shorten the bin header, never lengthen it */
	if (e.sb.size > head)
		abort();
	if (e.sb.size < head)
		memmove(p + e.sb.size, p + head, (size_t)n);
	memcpy(p, e.sb.data, e.sb.size);
	size_t len = e.sb.size + (size_t)n;
	proto_enc_release(&e);
	int r;
	if (w->host->msg_send) {
		r = w->host->msg_send(w->host_ud, msg, len);
	} else {
		r = w->host->send(w->host_ud, p, len);
		free(msg);
	}
	if (r < 0) /* the connection is going: the reply fails with it */
		log_debug("dropped a message: not connected");
	return n;
}

char *cmd_arg_str(const msgpack_object *args, const char *key)
{
	const msgpack_object *o = proto_map_get(args, key);
	if (!o || o->type != MSGPACK_OBJECT_STR)
		return NULL;
	return proto_obj_strdup(o);
}

struct cmd *cmd_new(struct worker *w, const struct cmd_type *type, struct str id, char *builder)
{
	struct cmd *c = xcalloc(1, sizeof(*c));
	c->w = w;
	c->type = type;
	c->id = xstrndup(id.p, id.len);
	c->builder = builder;
	batch_init(&c->batch, w->settings.buffer_size, cmd_batch_flush, c);
	uv_timer_init(w->loop, &c->flush_timer);
	c->flush_timer.data = c;
	uv_update_time(w->loop);
	c->start_ms = uv_now(w->loop);
	c->next = w->cmds;
	w->cmds = c;
	return c;
}
