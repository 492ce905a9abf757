/*
 * The life of one remote command in kiln-worker (worker.h "for commands"):
 * creation, its update batch and 100 ms flush timer, requests on its behalf
 * (file transfers), `complete`, and freeing on a later loop turn.  The
 * command types themselves are cmd-*.c; dispatch is worker.c.
 */
#define LOG_SUBSYS "worker"
#include <errno.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "worker/worker-int.h"
#include "worker/worker.h"

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

void cmd_destroy(struct cmd *c)
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
