/*
 * Unit tests for kiln-worker's re-attach (docs/PROTOCOL.md "Re-attach"): the
 * buffer (worker/retain.h) alone, then the engine on a real libuv loop and
 * real processes with a fake master in this file: a command keeps running
 * across a dropped connection, its output and completion are buffered and
 * delivered on the next connection from the master's count on, exactly
 * once; past the grace the command is killed.  Every wait is bounded.
 */
#include "tap.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "proto/msg.h"
#include "worker/retain.h"
#include "worker/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the buffer ---- */

TEST(retain_order_and_drop)
{
	struct retain r;
	retain_init(&r, 0);
	CHECK_INT(r.cap, RETAIN_MAX_BYTES);
	struct retain_cmd *a = retain_cmd_new(&r, "7");
	struct retain_cmd *b = retain_cmd_new(&r, "8");
	CHECK(retain_cmd_find(&r, "7", 1) == a);
	CHECK(retain_cmd_find(&r, "8", 1) == b);
	CHECK(retain_cmd_find(&r, "9", 1) == NULL);
	CHECK(r.cmds == a && a->next == b);
	CHECK_INT(retain_add(&r, a, false, "abc", 3), 0);
	CHECK_INT(retain_add(&r, a, false, "de", 2), 1);
	CHECK_INT(retain_add(&r, b, false, "x", 1), 0);
	CHECK_INT(retain_add(&r, a, true, "", 0), 2);
	CHECK(a->done && !b->done);
	CHECK_INT(r.bytes, 6);
	retain_drop_below(&r, a, 1);
	CHECK_INT(a->head->index, 1);
	CHECK_INT(a->head->len, 2);
	CHECK(!memcmp(a->head->data, "de", 2));
	CHECK_INT(r.bytes, 3);
	CHECK(!retain_cmd_spent(a)); /* its cmd is NULL and done, but entries remain */
	retain_drop_below(&r, a, 3);
	CHECK(a->head == NULL && a->tail == NULL);
	CHECK(retain_cmd_spent(a));
	retain_drop_below(&r, a, 1); /* going back is a no-op */
	CHECK_INT(retain_add(&r, a, false, "y", 1), 3);
	retain_cmd_free(&r, a);
	CHECK(r.cmds == b && b->next == NULL);
	CHECK_INT(r.bytes, 1);
	retain_release(&r);
	CHECK(r.cmds == NULL);
	CHECK_INT(r.bytes, 0);
}

TEST(retain_cap)
{
	struct retain r;
	retain_init(&r, 10);
	struct retain_cmd *a = retain_cmd_new(&r, "1");
	CHECK_INT(retain_add(&r, a, false, "12345678", 8), 0);
	CHECK_INT(retain_add(&r, a, false, "123", 3), -E2BIG);
	CHECK_INT(retain_add(&r, a, false, "12", 2), 1); /* exactly the cap */
	CHECK_INT(retain_add(&r, a, true, "", 0), 2);    /* nothing more fits, but nothing does */
	CHECK_INT(retain_add(&r, a, false, "1", 1), -E2BIG);
	CHECK_INT(retain_add(&r, a, false, NULL, SIZE_MAX), -E2BIG); /* no overflow */
	CHECK_INT(a->next_index, 3);
	retain_drop_below(&r, a, 1);
	CHECK_INT(retain_add(&r, a, false, "12345", 5), 3);
	retain_release(&r);
}

/* ---- the engine with a fake master ---- */

struct fake {
	uv_loop_t loop;
	struct worker *w;
	struct proto_msg *msgs; /* decoded, each owning a copy of its bytes */
	void **bytes;
	size_t n, cap;
	int64_t seq;
	char dir[64];
};

static int fake_send(void *ud, const void *data, size_t len)
{
	struct fake *f = ud;
	if (f->n == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 64;
		f->msgs = xrealloc(f->msgs, f->cap * sizeof(*f->msgs));
		f->bytes = xrealloc(f->bytes, f->cap * sizeof(*f->bytes));
	}
	void *copy = xmemdup(data, len);
	CHECK_INT(proto_msg_decode(copy, len, &f->msgs[f->n]), 0);
	f->bytes[f->n++] = copy;
	return 0;
}

static const struct worker_host fake_host = {.send = fake_send};

static void fake_clear(struct fake *f)
{
	for (size_t i = 0; i < f->n; i++) {
		proto_msg_release(&f->msgs[i]);
		free(f->bytes[i]);
	}
	f->n = 0;
}

static void stop_cb(uv_timer_t *t)
{
	uv_stop(t->loop);
}

static bool run_until(struct fake *f, bool (*pred)(struct fake *f), unsigned ms)
{
	uv_timer_t t;
	uv_timer_init(&f->loop, &t);
	uint64_t end = clock_mono_ms() + ms;
	bool ok = pred(f);
	while (!ok && clock_mono_ms() < end) {
		uv_timer_start(&t, stop_cb, 20, 0);
		uv_run(&f->loop, UV_RUN_ONCE);
		ok = pred(f);
	}
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	return ok;
}

static void master_req(struct fake *f, struct proto_enc *e, const char *op, uint32_t nfields)
{
	proto_enc_init(e);
	proto_pack_map(e, 2 + nfields);
	proto_pack_str(e, "op");
	proto_pack_str(e, op);
	proto_pack_str(e, "seq_number");
	proto_pack_int(e, f->seq++);
}

static void master_send(struct fake *f, struct proto_enc *e)
{
	CHECK_INT(worker_handle_message(f->w, e->sb.data, e->sb.size), 0);
	proto_enc_release(e);
}

/* kiln_reattach with one held command (id NULL: none) */
static void master_reattach(struct fake *f, int grace, const char *id, int64_t count)
{
	struct proto_enc e;
	master_req(f, &e, "kiln_reattach", 2);
	proto_pack_str(&e, "grace");
	proto_pack_int(&e, grace);
	proto_pack_str(&e, "commands");
	proto_pack_map(&e, id ? 1 : 0);
	if (id) {
		proto_pack_str(&e, id);
		proto_pack_int(&e, count);
	}
	master_send(f, &e);
}

static void master_shell(struct fake *f, const char *id, const char *script)
{
	struct proto_enc e;
	master_req(f, &e, "start_command", 3);
	proto_pack_str(&e, "command_id");
	proto_pack_str(&e, id);
	proto_pack_str(&e, "command_name");
	proto_pack_str(&e, "shell");
	proto_pack_str(&e, "args");
	proto_pack_map(&e, 2);
	proto_pack_str(&e, "workdir");
	proto_pack_str(&e, f->dir);
	proto_pack_str(&e, "command");
	proto_pack_array(&e, 3);
	proto_pack_str(&e, "sh");
	proto_pack_str(&e, "-c");
	proto_pack_str(&e, script);
	master_send(f, &e);
}

/* Answers every request the worker sent (updates, completes) with nil. */
static void master_ack_all(struct fake *f)
{
	size_t n = f->n;
	for (size_t i = 0; i < n; i++) {
		if (str_eq(f->msgs[i].op, "response"))
			continue;
		struct proto_enc e;
		proto_enc_init(&e);
		proto_enc_response_nil(&e, f->msgs[i].seq);
		master_send(f, &e);
	}
}

/* The stdout text of command id's updates in f, the kiln_n numbers seen in
 * order (first, last, count) and whether its complete came. */
struct seen {
	char text[256];
	size_t len;
	int64_t first, last;
	unsigned n;
	bool complete, gap;
};

static void seen_of(struct fake *f, const char *id, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	s->first = -1;
	for (size_t i = 0; i < f->n; i++) {
		const struct proto_msg *m = &f->msgs[i];
		struct str cid;
		if (!proto_obj_str(proto_map_get(m->root, "command_id"), &cid) || !str_eq(cid, id))
			continue;
		int64_t k;
		if (proto_obj_int(proto_map_get(m->root, "kiln_n"), &k)) {
			if (s->n && k != s->last + 1)
				s->gap = true;
			if (!s->n)
				s->first = k;
			s->last = k;
			s->n++;
		}
		if (str_eq(m->op, "complete"))
			s->complete = true;
		const msgpack_object *args = proto_map_get(m->root, "args");
		if (!str_eq(m->op, "update") || !args || args->type != MSGPACK_OBJECT_ARRAY)
			continue;
		for (uint32_t j = 0; j < args->via.array.size; j++) {
			const msgpack_object *p = &args->via.array.ptr[j];
			struct str key, t;
			if (p->type == MSGPACK_OBJECT_ARRAY && p->via.array.size == 2 &&
			    proto_obj_str(&p->via.array.ptr[0], &key) && str_eq(key, "stdout") &&
			    p->via.array.ptr[1].type == MSGPACK_OBJECT_ARRAY &&
			    p->via.array.ptr[1].via.array.size >= 1 &&
			    proto_obj_str(&p->via.array.ptr[1].via.array.ptr[0], &t) &&
			    s->len + t.len < sizeof(s->text)) {
				memcpy(s->text + s->len, t.p, t.len);
				s->len += t.len;
			}
		}
	}
}

static bool has_one(struct fake *f)
{
	struct seen s;
	seen_of(f, "1", &s);
	return strstr(s.text, "one\n") != NULL;
}

static bool cmd1_done_while_away(struct fake *f)
{
	return f->w->retain.cmds && f->w->retain.cmds->done && worker_ncmds(f->w) == 0;
}

static bool cmd1_delivered(struct fake *f)
{
	struct seen s;
	seen_of(f, "1", &s);
	return s.complete;
}

static bool nothing_held(struct fake *f)
{
	return worker_nheld(f->w) == 0 && worker_ncmds(f->w) == 0;
}

static bool fifo_write(struct fake *f, const char *path)
{
	uint64_t end = clock_mono_ms() + 10000;
	while (clock_mono_ms() < end) {
		int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			bool ok = write(fd, "go\n", 3) == 3;
			close(fd);
			return ok;
		}
		uv_run(&f->loop, UV_RUN_NOWAIT);
		usleep(10000); /* bounded: the step's `read` opens the fifo soon */
	}
	return false;
}

TEST(worker_holds_and_resumes)
{
	struct fake f;
	memset(&f, 0, sizeof(f));
	CHECK_INT(uv_loop_init(&f.loop), 0);
	snprintf(f.dir, sizeof(f.dir), "/tmp/kiln-test-reattach.XXXXXX");
	CHECK(mkdtemp(f.dir) != NULL);
	char *fifo = xasprintf("%s/f", f.dir);
	CHECK_INT(mkfifo(fifo, 0600), 0);
	f.w = worker_new(&f.loop, f.dir, &fake_host, &f);
	worker_connected(f.w);

	/* the capability's answer: no command held */
	master_reattach(&f, 60, NULL, 0);
	CHECK_INT(f.n, 1);
	const msgpack_object *res = proto_map_get(f.msgs[0].root, "result");
	CHECK(res && res->type == MSGPACK_OBJECT_ARRAY && res->via.array.size == 0);
	fake_clear(&f);

	char *script = xasprintf("echo one; read x < '%s'; echo two; echo three", fifo);
	master_shell(&f, "1", script);
	CHECK(run_until(&f, has_one, 10000));
	struct seen s;
	seen_of(&f, "1", &s);
	CHECK(s.n >= 1 && s.first == 0 && !s.gap);
	int64_t got = s.last + 1; /* what the master received */
	master_ack_all(&f);
	CHECK_INT(f.w->retain.bytes, 0);
	fake_clear(&f);

	/* the connection drops: the command goes on, buffered */
	worker_disconnected(f.w);
	CHECK(f.w->resync);
	CHECK_INT(worker_nheld(f.w), 1);
	CHECK_INT(worker_ncmds(f.w), 1);
	CHECK(fifo_write(&f, fifo));
	CHECK(run_until(&f, cmd1_done_while_away, 10000));
	CHECK_INT(f.n, 0); /* nothing sent while away */
	CHECK(f.w->retain.bytes > 0);

	/* a new connection: nothing is sent before the master's kiln_reattach */
	worker_connected(f.w);
	CHECK_INT(f.n, 0);
	master_reattach(&f, 60, "1", got);
	CHECK(f.n >= 2);
	res = proto_map_get(f.msgs[0].root, "result");
	struct str id;
	CHECK(str_eq(f.msgs[0].op, "response"));
	CHECK(res && res->type == MSGPACK_OBJECT_ARRAY && res->via.array.size == 1 &&
	      proto_obj_str(&res->via.array.ptr[0], &id) && str_eq(id, "1"));
	CHECK(run_until(&f, cmd1_delivered, 5000));
	seen_of(&f, "1", &s);
	CHECK_INT(s.first, got); /* from the master's count on: no duplicate */
	CHECK(!s.gap);
	CHECK(s.complete);
	CHECK_STR(s.text, "two\nthree\n");
	master_ack_all(&f);
	CHECK_INT(worker_nheld(f.w), 0);
	CHECK(!f.w->resync);
	fake_clear(&f);

	/* past the grace (1 s), a held command is killed and its record dropped */
	f.seq = 0;
	worker_connected(f.w);
	master_reattach(&f, 1, NULL, 0);
	char *script2 = xasprintf("read x < '%s'", fifo);
	master_shell(&f, "2", script2);
	fake_clear(&f);
	uint64_t t0 = clock_mono_ms();
	worker_disconnected(f.w);
	CHECK_INT(worker_nheld(f.w), 1);
	CHECK(run_until(&f, nothing_held, 10000));
	CHECK(clock_mono_ms() - t0 >= 900);
	CHECK_INT(f.n, 0);
	CHECK(!f.w->resync);

	worker_free(f.w);
	uint64_t end = clock_mono_ms() + 10000;
	while (uv_run(&f.loop, UV_RUN_NOWAIT) && clock_mono_ms() < end)
		usleep(10000); /* bounded: handles closing */
	CHECK_INT(uv_loop_close(&f.loop), 0);
	fake_clear(&f);
	free(f.msgs);
	free(f.bytes);
	free(script);
	free(script2);
	unlink(fifo);
	free(fifo);
	rmdir(f.dir);
}

int main(void)
{
	RUN(retain_order_and_drop);
	RUN(retain_cap);
	RUN(worker_holds_and_resumes);
	return tap_done();
}
