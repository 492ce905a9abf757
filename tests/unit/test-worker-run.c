/*
 * Unit tests for kiln-worker's protocol engine and command runner on real
 * processes: a fake master (in this file) feeds worker_handle_message() and
 * answers the worker's requests on a real libuv loop.  Every wait is bounded.
 */
#include "tap.h"
#include "wait.h" /* slice "faults": TEST_GUARD_MS */
#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "proto/msg.h"
#include "worker/conn.h"
#include "worker/runner.h"
#include "worker/worker.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

struct rec {
	void *data; /* owned: the raw message */
	size_t len;
};

struct fake {
	uv_loop_t loop;
	struct worker *w;
	struct rec *recs;
	size_t n, cap;
	struct buf pending; /* replies to deliver: [u32 len][bytes]... */
	uv_timer_t deliver;
	bool no_ack;    /* don't answer the worker's requests */
	const char *dl; /* download source */
	size_t dl_len, dl_off;
	struct buf up; /* upload sink */
	int shutdowns;
	int64_t seq; /* master's next seq */
	char dir[64];
};

static void fake_on_deliver(uv_timer_t *t)
{
	struct fake *f = t->data;
	while (f->pending.len >= 4) {
		uint32_t n;
		memcpy(&n, f->pending.ptr, 4);
		void *copy = xmemdup(f->pending.ptr + 4, n);
		buf_consume(&f->pending, 4 + n);
		CHECK_INT(worker_handle_message(f->w, copy, n), 0);
		free(copy);
	}
}

static void fake_queue(struct fake *f, const void *p, size_t n)
{
	uint32_t l = (uint32_t)n;
	CHECK_INT(buf_add(&f->pending, &l, 4), 0);
	CHECK_INT(buf_add(&f->pending, p, n), 0);
	if (!uv_is_active((uv_handle_t *)&f->deliver))
		uv_timer_start(&f->deliver, fake_on_deliver, 0, 0);
}

static int fake_send(void *ud, const void *data, size_t len)
{
	struct fake *f = ud;
	struct proto_msg m;
	int r = proto_msg_decode(data, len, &m);
	CHECK_INT(r, 0);
	if (r < 0)
		return 0;
	ARRAY_GROW(f->recs, f->n + 1, f->cap);
	f->recs[f->n++] = (struct rec){xmemdup(data, len), len};
	if (!str_eq(m.op, "response") && !f->no_ack) {
		struct proto_enc e;
		proto_enc_init(&e);
		if (str_eq(m.op, "update_read_file")) {
			int64_t want = 0;
			(void)proto_obj_int(proto_map_get(m.root, "length"), &want);
			size_t left = f->dl_len - f->dl_off;
			size_t n = (size_t)want < left ? (size_t)want : left;
			proto_pack_map(&e, 3);
			proto_pack_str(&e, "op");
			proto_pack_str(&e, "response");
			proto_pack_str(&e, "seq_number");
			proto_pack_int(&e, m.seq);
			proto_pack_str(&e, "result");
			if (n)
				proto_pack_bin(&e, f->dl + f->dl_off, n);
			else
				proto_pack_nil(&e);
			f->dl_off += n;
		} else {
			struct str s;
			if (str_eq(m.op, "update_upload_file_write") &&
			    proto_obj_str(proto_map_get(m.root, "args"), &s))
				CHECK_INT(buf_add(&f->up, s.p, s.len), 0);
			proto_enc_response_nil(&e, m.seq);
		}
		fake_queue(f, e.sb.data, e.sb.size);
		proto_enc_release(&e);
	}
	proto_msg_release(&m);
	return 0;
}

static void fake_shutdown(void *ud)
{
	struct fake *f = ud;
	f->shutdowns++;
}

static const struct worker_host fake_host = {.send = fake_send, .shutdown = fake_shutdown};

static void fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	uv_loop_init(&f->loop);
	uv_timer_init(&f->loop, &f->deliver);
	f->deliver.data = f;
	buf_init(&f->pending, 64u << 20);
	buf_init(&f->up, 64u << 20);
	snprintf(f->dir, sizeof(f->dir), "/tmp/kiln-test-worker.XXXXXX");
	CHECK(mkdtemp(f->dir) != NULL);
	f->w = worker_new(&f->loop, f->dir, &fake_host, f);
	worker_connected(f->w);
}

static void fake_stop_timer(uv_timer_t *t)
{
	uv_stop(t->loop);
}

/* Runs the loop until pred(f) or ms pass; returns pred's last value. */
static bool run_until(struct fake *f, bool (*pred)(struct fake *f, const void *arg),
		      const void *arg, unsigned ms)
{
	uv_timer_t t;
	uv_timer_init(&f->loop, &t);
	bool timed_out = false;
	t.data = &timed_out;
	uint64_t end = clock_mono_ms() + ms;
	bool ok = pred(f, arg);
	while (!ok && clock_mono_ms() < end) {
		uv_timer_start(&t, fake_stop_timer, 20, 0);
		uv_run(&f->loop, UV_RUN_ONCE);
		ok = pred(f, arg);
	}
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	return ok;
}

static void rm_rf(const char *dir)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);
	CHECK_INT(system(cmd), 0);
	free(cmd);
}

static void fake_release(struct fake *f)
{
	worker_free(f->w);
	uv_close((uv_handle_t *)&f->deliver, NULL);
	uint64_t end = clock_mono_ms() + TEST_GUARD_MS;
	while (uv_run(&f->loop, UV_RUN_NOWAIT) && clock_mono_ms() < end)
		usleep(10000); /* bounded: abandoned runners die within their SIGKILL grace */
	CHECK_INT(uv_loop_close(&f->loop), 0);
	for (size_t i = 0; i < f->n; i++)
		free(f->recs[i].data);
	free(f->recs);
	buf_release(&f->pending);
	buf_release(&f->up);
	rm_rf(f->dir);
}

/* ---- master side helpers ---- */

static int64_t master_send(struct fake *f, struct proto_enc *e)
{
	CHECK_INT(worker_handle_message(f->w, e->sb.data, e->sb.size), 0);
	proto_enc_release(e);
	return f->seq - 1;
}

static void master_hdr(struct fake *f, struct proto_enc *e, const char *op, uint32_t nfields)
{
	proto_enc_init(e);
	proto_pack_map(e, 2 + nfields);
	proto_pack_str(e, "op");
	proto_pack_str(e, op);
	proto_pack_str(e, "seq_number");
	proto_pack_int(e, f->seq++);
}

/* start_command; the caller packs nargs key/value pairs of args into e then calls master_send */
static void master_start(struct fake *f, struct proto_enc *e, const char *id, const char *name,
			 uint32_t nargs)
{
	master_hdr(f, e, "start_command", 4);
	proto_pack_str(e, "command_id");
	proto_pack_str(e, id);
	proto_pack_str(e, "command_name");
	proto_pack_str(e, name);
	proto_pack_str(e, "builder_name");
	proto_pack_str(e, "b");
	proto_pack_str(e, "args");
	proto_pack_map(e, nargs);
}

static void pack_argv(struct proto_enc *e, const char *const *argv)
{
	uint32_t n = 0;
	while (argv[n])
		n++;
	proto_pack_array(e, n);
	for (uint32_t i = 0; i < n; i++)
		proto_pack_str(e, argv[i]);
}

static void start_shell(struct fake *f, const char *id, const char *const *argv,
			const char *str_cmd, double timeout, const char *extra_key, double extra)
{
	struct proto_enc e;
	master_start(f, &e, id, "shell", extra_key ? 4 : 3);
	proto_pack_str(&e, "workdir");
	char *wd = xasprintf("%s/b/build", f->dir);
	proto_pack_str(&e, wd);
	free(wd);
	proto_pack_str(&e, "command");
	if (str_cmd)
		proto_pack_str(&e, str_cmd);
	else
		pack_argv(&e, argv);
	proto_pack_str(&e, "timeout");
	if (timeout > 0)
		proto_pack_double(&e, timeout);
	else
		proto_pack_nil(&e);
	if (extra_key) {
		proto_pack_str(&e, extra_key);
		if (!strcmp(extra_key, "interruptSignal"))
			proto_pack_str(&e, "TERM");
		else
			proto_pack_double(&e, extra);
	}
	master_send(f, &e);
}

/* ---- reading what the worker sent ---- */

/* Calls fn for each [key, value] pair of every update for command id, in order. */
static void each_update(struct fake *f, const char *id,
			void (*fn)(void *ud, struct str key, const msgpack_object *v), void *ud)
{
	for (size_t i = 0; i < f->n; i++) {
		struct proto_msg m;
		if (proto_msg_decode(f->recs[i].data, f->recs[i].len, &m) < 0)
			continue;
		struct str cid;
		const msgpack_object *args = proto_map_get(m.root, "args");
		if (str_eq(m.op, "update") &&
		    proto_obj_str(proto_map_get(m.root, "command_id"), &cid) && str_eq(cid, id) &&
		    args && args->type == MSGPACK_OBJECT_ARRAY) {
			for (uint32_t k = 0; k < args->via.array.size; k++) {
				const msgpack_object *p = &args->via.array.ptr[k];
				struct str key;
				if (p->type == MSGPACK_OBJECT_ARRAY && p->via.array.size == 2 &&
				    proto_obj_str(&p->via.array.ptr[0], &key))
					fn(ud, key, &p->via.array.ptr[1]);
			}
		}
		proto_msg_release(&m);
	}
}

struct collect {
	const char *key;
	struct buf text;
	int64_t rc;
	bool has_rc, has_elapsed;
	size_t nupdates;
};

static void collect_fn(void *ud, struct str key, const msgpack_object *v)
{
	struct collect *c = ud;
	struct str s;
	if (str_eq(key, c->key) && v->type == MSGPACK_OBJECT_ARRAY && v->via.array.size == 3 &&
	    proto_obj_str(&v->via.array.ptr[0], &s))
		CHECK_INT(buf_add(&c->text, s.p, s.len), 0);
	if (str_eq(key, c->key) && str_eq(key, "log") && v->type == MSGPACK_OBJECT_ARRAY &&
	    v->via.array.size == 2 && proto_obj_str(&v->via.array.ptr[1].via.array.ptr[0], &s))
		CHECK_INT(buf_add(&c->text, s.p, s.len), 0);
	if (str_eq(key, "rc") && proto_obj_int(v, &c->rc))
		c->has_rc = true;
	if (str_eq(key, "elapsed"))
		c->has_elapsed = true;
}

static char *text_of(struct fake *f, const char *id, const char *key)
{
	struct collect c = {.key = key};
	buf_init(&c.text, 64u << 20);
	each_update(f, id, collect_fn, &c);
	return buf_detach(&c.text, NULL);
}

static bool rc_of(struct fake *f, const char *id, int64_t *ret, bool *ret_elapsed)
{
	struct collect c = {.key = "-"};
	buf_init(&c.text, 16);
	each_update(f, id, collect_fn, &c);
	buf_release(&c.text);
	if (c.has_rc)
		*ret = c.rc;
	if (ret_elapsed)
		*ret_elapsed = c.has_elapsed;
	return c.has_rc;
}

/* index of the complete for id, or -1 */
static ssize_t complete_index(struct fake *f, const char *id, bool *ret_failed)
{
	for (size_t i = 0; i < f->n; i++) {
		struct proto_msg m;
		if (proto_msg_decode(f->recs[i].data, f->recs[i].len, &m) < 0)
			continue;
		struct str cid;
		bool hit = str_eq(m.op, "complete") &&
			   proto_obj_str(proto_map_get(m.root, "command_id"), &cid) &&
			   str_eq(cid, id);
		if (hit && ret_failed)
			*ret_failed = !proto_obj_nil(proto_map_get(m.root, "args"));
		proto_msg_release(&m);
		if (hit)
			return (ssize_t)i;
	}
	return -1;
}

static bool is_complete(struct fake *f, const void *id)
{
	return complete_index(f, id, NULL) >= 0;
}

/* the response the worker sent for master seq, decoded into *ret (caller releases) */
static bool response_for(struct fake *f, int64_t seq, struct proto_msg *ret)
{
	for (size_t i = 0; i < f->n; i++) {
		if (proto_msg_decode(f->recs[i].data, f->recs[i].len, ret) < 0)
			continue;
		if (str_eq(ret->op, "response") && ret->seq == seq)
			return true;
		proto_msg_release(ret);
	}
	return false;
}

static bool has_text(struct fake *f, const void *arg)
{
	const char *const *kv = arg; /* {id, key, needle} */
	char *t = text_of(f, kv[0], kv[1]);
	bool r = strstr(t, kv[2]) != NULL;
	free(t);
	return r;
}

/* ---- tests ---- */

TEST(simple_ops)
{
	struct fake f;
	fake_init(&f);
	struct proto_enc e;
	master_hdr(&f, &e, "print", 1);
	proto_pack_str(&e, "message");
	proto_pack_str(&e, "attached");
	int64_t s1 = master_send(&f, &e);
	master_hdr(&f, &e, "keepalive", 0);
	int64_t s2 = master_send(&f, &e);
	master_hdr(&f, &e, "no_such_op", 0);
	int64_t s3 = master_send(&f, &e);
	master_hdr(&f, &e, "set_worker_settings", 1);
	proto_pack_str(&e, "args");
	proto_pack_map(&e, 2);
	proto_pack_str(&e, "max_line_length");
	proto_pack_int(&e, 100);
	proto_pack_str(&e, "buffer_size");
	proto_pack_int(&e, 4096);
	int64_t s4 = master_send(&f, &e);
	CHECK_INT(f.w->settings.max_line_length, 100);
	CHECK_INT(f.w->settings.buffer_size, 4096);
	master_hdr(&f, &e, "get_worker_info", 0);
	int64_t s5 = master_send(&f, &e);
	master_hdr(&f, &e, "shutdown", 0);
	int64_t s6 = master_send(&f, &e);
	CHECK_INT(f.shutdowns, 1);
	/* garbage gets no answer */
	CHECK_INT(worker_handle_message(f.w, "\x91\x01", 2), KILN_EPROTO);

	struct proto_msg m;
	bool exc = false;
	CHECK(response_for(&f, s1, &m) && proto_obj_nil(proto_map_get(m.root, "result")));
	proto_msg_release(&m);
	CHECK(response_for(&f, s2, &m));
	proto_msg_release(&m);
	CHECK(response_for(&f, s3, &m));
	CHECK(proto_obj_bool(proto_map_get(m.root, "is_exception"), &exc) && exc);
	char *msg = proto_obj_strdup(proto_map_get(m.root, "result"));
	CHECK_STR(msg, "Command no_such_op does not exist.");
	free(msg);
	proto_msg_release(&m);
	CHECK(response_for(&f, s4, &m));
	proto_msg_release(&m);
	CHECK(response_for(&f, s5, &m));
	const msgpack_object *info = proto_map_get(m.root, "result");
	char *basedir = proto_obj_strdup(proto_map_get(info, "basedir"));
	CHECK_STR(basedir, f.dir);
	free(basedir);
	const msgpack_object *env = proto_map_get(info, "environ");
	CHECK(env && env->type == MSGPACK_OBJECT_MAP && env->via.map.size <= 1);
	CHECK(proto_map_get(info, "PATH") == NULL);
	struct str v;
	CHECK(proto_obj_str(proto_map_get(proto_map_get(info, "worker_commands"), "shell"), &v) &&
	      str_eq(v, "3.1"));
	CHECK(proto_obj_str(proto_map_get(info, "system"), &v) && str_eq(v, "posix"));
	int64_t dl = -1;
	CHECK(proto_obj_int(proto_map_get(info, "delete_leftover_dirs"), &dl) && dl == 0);
	proto_msg_release(&m);
	CHECK(response_for(&f, s6, &m));
	proto_msg_release(&m);
	fake_release(&f);
}

TEST(shell_runs_and_reports)
{
	struct fake f;
	fake_init(&f);
	const char *argv[] = {"sh", "-c", "echo out; echo err 1>&2; printf partial; exit 3", NULL};
	start_shell(&f, "1", argv, NULL, 30, NULL, 0);
	CHECK(run_until(&f, is_complete, "1", 10000));
	char *out = text_of(&f, "1", "stdout");
	CHECK_STR(out, "out\npartial\n");
	free(out);
	char *err = text_of(&f, "1", "stderr");
	CHECK_STR(err, "err\n");
	free(err);
	char *hdr = text_of(&f, "1", "header");
	CHECK(strstr(hdr, " in dir ") && strstr(hdr, "(timeout 30 secs)"));
	CHECK(strstr(hdr, " argv: ['sh', '-c', ") && strstr(hdr, "using PTY: False\n"));
	CHECK(strstr(hdr, "elapsedTime="));
	CHECK(strstr(hdr, " environment:\n")); /* logEnviron defaults to true */
	free(hdr);
	int64_t rc = 99;
	bool elapsed = false, failed = true;
	CHECK(rc_of(&f, "1", &rc, &elapsed) && rc == 3 && elapsed);
	CHECK(complete_index(&f, "1", &failed) >= 0 && !failed);
	/* the workdir was created */
	char *wd = xasprintf("%s/b/build", f.dir);
	struct stat st;
	CHECK(stat(wd, &st) == 0 && S_ISDIR(st.st_mode));
	free(wd);
	fake_release(&f);
}

TEST(shell_string_env_and_stdin)
{
	struct fake f;
	fake_init(&f);
	struct proto_enc e;
	master_start(&f, &e, "2", "shell", 5);
	proto_pack_str(&e, "workdir");
	char *wd = xasprintf("%s/w", f.dir);
	proto_pack_str(&e, wd);
	free(wd);
	proto_pack_str(&e, "command");
	proto_pack_str(&e, "echo \"A=$A L=$L P=$PWD\"; cat; echo; test -z \"$GONE\" && echo gone");
	proto_pack_str(&e, "env");
	proto_pack_map(&e, 3);
	proto_pack_str(&e, "A");
	proto_pack_str(&e, "<${KILN_TEST_VAR}>");
	proto_pack_str(&e, "L");
	proto_pack_array(&e, 2);
	proto_pack_str(&e, "x");
	proto_pack_str(&e, "y");
	proto_pack_str(&e, "GONE");
	proto_pack_nil(&e);
	proto_pack_str(&e, "initial_stdin");
	proto_pack_str(&e, "from-stdin");
	proto_pack_str(&e, "logEnviron");
	proto_pack_bool(&e, false);
	setenv("KILN_TEST_VAR", "v1", 1);
	setenv("GONE", "still-here", 1);
	master_send(&f, &e);
	CHECK(run_until(&f, is_complete, "2", 10000));
	char *out = text_of(&f, "2", "stdout");
	char *want = xasprintf("A=<v1> L=x:y P=%s/w\nfrom-stdin\ngone\n", f.dir);
	CHECK_STR(out, want);
	free(want);
	free(out);
	char *hdr = text_of(&f, "2", "header");
	CHECK(strstr(hdr, " environment:") == NULL);
	CHECK(strstr(hdr, " writing 10 bytes to stdin"));
	free(hdr);
	fake_release(&f);
}

static bool stdout_seen(struct fake *f, const void *id)
{
	char *t = text_of(f, id, "stdout");
	bool r = strstr(t, "early\n") != NULL;
	free(t);
	return r;
}

TEST(output_is_streamed_quickly)
{
	struct fake f;
	fake_init(&f);
	/* sleep 30: still running when "early" is seen, even on a loaded machine */
	const char *argv[] = {"sh", "-c", "echo early; sleep 30; echo late", NULL};
	uint64_t t0 = clock_mono_ms();
	start_shell(&f, "3", argv, NULL, 0, NULL, 0);
	CHECK(run_until(&f, stdout_seen, "3", TEST_GUARD_MS));
	uint64_t dt = clock_mono_ms() - t0;
	/* WORKER_FLUSH_MS is 100: far below this bound, generous for a loaded
	 * machine; the command still running is what shows the streaming */
	CHECK(dt < 10000);
	CHECK(!is_complete(&f, "3"));
	/* then interrupt it */
	struct proto_enc e;
	master_hdr(&f, &e, "interrupt_command", 3);
	proto_pack_str(&e, "command_id");
	proto_pack_str(&e, "3");
	proto_pack_str(&e, "why");
	proto_pack_str(&e, "test");
	proto_pack_str(&e, "builder_name");
	proto_pack_str(&e, "b");
	master_send(&f, &e);
	CHECK(run_until(&f, is_complete, "3", TEST_GUARD_MS));
	int64_t rc = 0;
	bool elapsed = true;
	CHECK(rc_of(&f, "3", &rc, &elapsed) && rc == -1 && !elapsed);
	char *hdr = text_of(&f, "3", "header");
	CHECK(strstr(hdr, "command interrupted, attempting to kill"));
	CHECK(strstr(hdr, "process killed by signal 9"));
	free(hdr);
	fake_release(&f);
}

static void interrupt(struct fake *f, const char *id)
{
	struct proto_enc e;
	master_hdr(f, &e, "interrupt_command", 2);
	proto_pack_str(&e, "command_id");
	proto_pack_str(&e, id);
	proto_pack_str(&e, "why");
	proto_pack_str(&e, "test");
	master_send(f, &e);
}

TEST(interrupt_escalates_past_ignored_sigterm)
{
	struct fake f;
	fake_init(&f);
	/* ignores TERM; interruptSignal TERM, so SIGKILL must follow after the grace */
	const char *argv[] = {"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done",
			      NULL};
	start_shell(&f, "4", argv, NULL, 0, "sigtermTime", 0.3);
	const char *kv[] = {"4", "stdout", "ready"};
	CHECK(run_until(&f, has_text, kv, TEST_GUARD_MS));
	interrupt(&f, "4");
	uint64_t t0 = clock_mono_ms();
	CHECK(run_until(&f, is_complete, "4", TEST_GUARD_MS));
	CHECK(clock_mono_ms() - t0 < 15000); /* the 0.3 s grace, generous for a loaded machine */
	int64_t rc = 0;
	CHECK(rc_of(&f, "4", &rc, NULL) && rc == -1);
	/* interrupting a finished command is fine */
	interrupt(&f, "4");
	fake_release(&f);
}

TEST(children_holding_pipes_do_not_hang_the_command)
{
	struct fake f;
	fake_init(&f);
	const char *argv[] = {"sh", "-c", "sleep 30 & echo started", NULL};
	uint64_t t0 = clock_mono_ms();
	start_shell(&f, "5", argv, NULL, 0, NULL, 0);
	CHECK(run_until(&f, is_complete, "5", TEST_GUARD_MS));
	CHECK(clock_mono_ms() - t0 < 15000); /* not the sleep's 30 s */
	int64_t rc = -5;
	CHECK(rc_of(&f, "5", &rc, NULL) && rc == 0);
	char *out = text_of(&f, "5", "stdout");
	CHECK_STR(out, "started\n");
	free(out);
	fake_release(&f);
}

TEST(interrupt_kills_group_when_leader_is_gone)
{
	struct fake f;
	fake_init(&f);
	/* the leader exits at once; a child keeps the pipes; interrupt must still complete */
	const char *argv[] = {"sh", "-c", "(trap '' TERM; sleep 30) & exit 0", NULL};
	start_shell(&f, "6", argv, NULL, 0, "interruptSignal", 0);
	interrupt(&f, "6");
	CHECK(run_until(&f, is_complete, "6", TEST_GUARD_MS));
	fake_release(&f);
}

TEST(no_output_timeout_and_max_time)
{
	struct fake f;
	fake_init(&f);
	const char *argv[] = {"sleep", "30", NULL};
	start_shell(&f, "7", argv, NULL, 0.3, NULL, 0);
	start_shell(&f, "8", argv, NULL, 0, "maxTime", 0.3);
	CHECK(run_until(&f, is_complete, "7", TEST_GUARD_MS));
	CHECK(run_until(&f, is_complete, "8", TEST_GUARD_MS));
	char *h7 = text_of(&f, "7", "header"), *h8 = text_of(&f, "8", "header");
	CHECK(strstr(h7, "command timed out: 0.3 seconds without output running ['sleep', '30']"));
	CHECK(strstr(h8, "command timed out: 0.3 seconds elapsed running"));
	free(h7);
	free(h8);
	int64_t rc = 0;
	CHECK(rc_of(&f, "7", &rc, NULL) && rc == -1);
	fake_release(&f);
}

TEST(missing_program_and_bad_args)
{
	struct fake f;
	fake_init(&f);
	const char *argv[] = {"/nonexistent/prog", NULL};
	start_shell(&f, "9", argv, NULL, 0, NULL, 0);
	CHECK(run_until(&f, is_complete, "9", TEST_GUARD_MS));
	int64_t rc = 0;
	CHECK(rc_of(&f, "9", &rc, NULL) && rc == -1);
	/* no workdir: is_exception, no complete */
	struct proto_enc e;
	master_start(&f, &e, "10", "shell", 1);
	proto_pack_str(&e, "command");
	proto_pack_str(&e, "true");
	int64_t seq = master_send(&f, &e);
	struct proto_msg m;
	bool exc = false;
	CHECK(response_for(&f, seq, &m));
	CHECK(proto_obj_bool(proto_map_get(m.root, "is_exception"), &exc) && exc);
	proto_msg_release(&m);
	CHECK(!is_complete(&f, "10"));
	master_start(&f, &e, "11", "frobnicate", 0);
	seq = master_send(&f, &e);
	CHECK(response_for(&f, seq, &m));
	CHECK(proto_obj_bool(proto_map_get(m.root, "is_exception"), &exc) && exc);
	proto_msg_release(&m);
	fake_release(&f);
}

static void start_path_cmd(struct fake *f, const char *id, const char *name, const char *key,
			   const char *path)
{
	struct proto_enc e;
	master_start(f, &e, id, name, 1);
	proto_pack_str(&e, key);
	if (!strcmp(key, "paths")) {
		proto_pack_array(&e, 1);
		proto_pack_str(&e, path);
	} else {
		proto_pack_str(&e, path);
	}
	master_send(f, &e);
}

struct files_ud {
	struct buf names;
	int64_t mode;
};

static void files_fn(void *ud, struct str key, const msgpack_object *v)
{
	struct files_ud *fu = ud;
	if (str_eq(key, "files") && v->type == MSGPACK_OBJECT_ARRAY) {
		for (uint32_t i = 0; i < v->via.array.size; i++) {
			struct str s;
			if (proto_obj_str(&v->via.array.ptr[i], &s)) {
				CHECK_INT(buf_add(&fu->names, s.p, s.len), 0);
				CHECK_INT(buf_addch(&fu->names, ';'), 0);
			}
		}
	}
	if (str_eq(key, "stat") && v->type == MSGPACK_OBJECT_ARRAY && v->via.array.size == 10)
		(void)proto_obj_int(&v->via.array.ptr[0], &fu->mode);
}

TEST(filesystem_commands)
{
	struct fake f;
	fake_init(&f);
	char *d = xasprintf("%s/x/y", f.dir);
	start_path_cmd(&f, "20", "mkdir", "paths", d);
	CHECK(is_complete(&f, "20")); /* synchronous */
	struct stat st;
	CHECK(stat(d, &st) == 0 && S_ISDIR(st.st_mode));
	char *file = xasprintf("%s/x/y/f.txt", f.dir);
	int fd = open(file, O_WRONLY | O_CREAT, 0644);
	CHECK(fd >= 0 && write(fd, "hi", 2) == 2);
	close(fd);

	start_path_cmd(&f, "21", "stat", "path", d);
	struct files_ud fu = {.mode = 0};
	buf_init(&fu.names, 1 << 16);
	each_update(&f, "21", files_fn, &fu);
	CHECK(S_ISDIR(fu.mode));

	char *x = xasprintf("%s/x", f.dir);
	start_path_cmd(&f, "22", "listdir", "path", x);
	each_update(&f, "22", files_fn, &fu);
	CHECK_STR(fu.names.ptr, "y;");
	buf_reset(&fu.names);

	char *pat = xasprintf("%s/**/*.txt", f.dir);
	start_path_cmd(&f, "23", "glob", "path", pat);
	each_update(&f, "23", files_fn, &fu);
	char *want = xasprintf("%s;", file);
	CHECK_STR(fu.names.ptr, want);
	free(want);
	buf_reset(&fu.names);

	char *dst = xasprintf("%s/copy", f.dir);
	struct proto_enc e;
	master_start(&f, &e, "24", "cpdir", 2);
	proto_pack_str(&e, "from_path");
	proto_pack_str(&e, x);
	proto_pack_str(&e, "to_path");
	proto_pack_str(&e, dst);
	master_send(&f, &e);
	CHECK(run_until(&f, is_complete, "24", 10000));
	char *copied = xasprintf("%s/copy/y/f.txt", f.dir);
	CHECK(stat(copied, &st) == 0);
	int64_t rc = -1;
	CHECK(rc_of(&f, "24", &rc, NULL) && rc == 0);

	start_path_cmd(&f, "25", "rmfile", "path", file);
	CHECK(stat(file, &st) < 0);
	start_path_cmd(&f, "26", "rmfile", "path", file);
	CHECK(rc_of(&f, "26", &rc, NULL) && rc == ENOENT);

	start_path_cmd(&f, "27", "rmdir", "paths", x);
	CHECK(run_until(&f, is_complete, "27", 10000));
	CHECK(stat(x, &st) < 0);
	CHECK(rc_of(&f, "27", &rc, NULL) && rc == 0);

	start_path_cmd(&f, "28", "listdir", "path", x);
	CHECK(rc_of(&f, "28", &rc, NULL) && rc == ENOENT);

	buf_release(&fu.names);
	free(d);
	free(file);
	free(x);
	free(pat);
	free(dst);
	free(copied);
	fake_release(&f);
}

TEST(file_transfers)
{
	struct fake f;
	fake_init(&f);
	/* download: 40000 bytes in 16384-byte blocks */
	char *data = xmalloc(40000);
	for (int i = 0; i < 40000; i++)
		data[i] = (char)(i * 7);
	f.dl = data;
	f.dl_len = 40000;
	char *dest = xasprintf("%s/dl/sub/file.bin", f.dir);
	struct proto_enc e;
	master_start(&f, &e, "30", "download_file", 4);
	proto_pack_str(&e, "path");
	proto_pack_str(&e, dest);
	proto_pack_str(&e, "blocksize");
	proto_pack_int(&e, 16384);
	proto_pack_str(&e, "maxsize");
	proto_pack_nil(&e);
	proto_pack_str(&e, "mode");
	proto_pack_int(&e, 0600);
	master_send(&f, &e);
	CHECK(run_until(&f, is_complete, "30", 10000));
	struct stat st;
	CHECK(stat(dest, &st) == 0 && st.st_size == 40000 && (st.st_mode & 0777) == 0600);
	int64_t rc = -1;
	CHECK(rc_of(&f, "30", &rc, NULL) && rc == 0);

	/* upload it back */
	master_start(&f, &e, "31", "upload_file", 3);
	proto_pack_str(&e, "path");
	proto_pack_str(&e, dest);
	proto_pack_str(&e, "blocksize");
	proto_pack_int(&e, 16384);
	proto_pack_str(&e, "keepstamp");
	proto_pack_bool(&e, false);
	master_send(&f, &e);
	CHECK(run_until(&f, is_complete, "31", 10000));
	CHECK_INT(f.up.len, 40000);
	CHECK(f.up.len == 40000 && memcmp(f.up.ptr, data, 40000) == 0);
	CHECK(rc_of(&f, "31", &rc, NULL) && rc == 0);

	/* maxsize truncation and a missing file */
	master_start(&f, &e, "32", "upload_file", 2);
	proto_pack_str(&e, "path");
	proto_pack_str(&e, dest);
	proto_pack_str(&e, "maxsize");
	proto_pack_int(&e, 1000);
	master_send(&f, &e);
	CHECK(run_until(&f, is_complete, "32", 10000));
	CHECK(rc_of(&f, "32", &rc, NULL) && rc == 1);
	char *err = text_of(&f, "32", "stderr");
	CHECK(strstr(err, "Maximum filesize reached"));
	free(err);
	master_start(&f, &e, "33", "upload_file", 1);
	proto_pack_str(&e, "path");
	proto_pack_str(&e, "/nonexistent/file");
	master_send(&f, &e);
	CHECK(run_until(&f, is_complete, "33", 10000));
	CHECK(rc_of(&f, "33", &rc, NULL) && rc == 1);

	/* directory upload streams a tar */
	char *dir = xasprintf("%s/dl", f.dir);
	buf_reset(&f.up);
	master_start(&f, &e, "34", "upload_directory", 1);
	proto_pack_str(&e, "path");
	proto_pack_str(&e, dir);
	master_send(&f, &e);
	CHECK(run_until(&f, is_complete, "34", 10000));
	CHECK(rc_of(&f, "34", &rc, NULL) && rc == 0);
	free(dir);
	free(dest);
	free(data);
	fake_release(&f);
}

TEST(connection_loss_kills_commands)
{
	struct fake f;
	fake_init(&f);
	const char *argv[] = {"sh", "-c", "echo hi; sleep 30", NULL};
	start_shell(&f, "40", argv, NULL, 0, NULL, 0);
	const char *kv[] = {"40", "stdout", "hi"};
	CHECK(run_until(&f, has_text, kv, TEST_GUARD_MS));
	size_t before = f.n;
	worker_disconnected(f.w);
	uint64_t end = clock_mono_ms() + TEST_GUARD_MS;
	while (worker_ncmds(f.w) && clock_mono_ms() < end)
		uv_run(&f.loop, UV_RUN_ONCE);
	CHECK_INT(worker_ncmds(f.w), 0);
	CHECK_INT(f.n, before); /* nothing sent after the loss */
	worker_connected(f.w);
	fake_release(&f);
}

/* true once process pid is a zombie (or gone): it died, not yet reaped */
static bool proc_is_dead(pid_t pid)
{
	char path[64], st[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *fp = fopen(path, "r");
	if (!fp)
		return true;
	size_t n = fread(st, 1, sizeof(st) - 1, fp);
	fclose(fp);
	st[n] = '\0';
	const char *rp = strrchr(st, ')');
	return !rp || rp[1] != ' ' || rp[2] == 'Z' || rp[2] == 'X';
}

static bool pid_seen(struct fake *f, const void *id)
{
	char *t = text_of(f, id, "stdout");
	bool r = strchr(t, '\n') != NULL;
	free(t);
	return r;
}

/* worker_free() while a command runs: the command's process dies and its
 * exit is seen on the next loop turn, before the command's handles have
 * closed; nothing may then reach the freed worker (ASan catches it) */
TEST(free_with_a_running_command)
{
	struct fake f;
	fake_init(&f);
	const char *argv[] = {"sh", "-c", "echo $$; exec sleep 30", NULL};
	start_shell(&f, "45", argv, NULL, 0, NULL, 0);
	CHECK(run_until(&f, pid_seen, "45", TEST_GUARD_MS));
	char *out = text_of(&f, "45", "stdout");
	pid_t pid = (pid_t)strtol(out, NULL, 10);
	free(out);
	CHECK(pid > 1);
	size_t before = f.n;
	worker_free(f.w);
	f.w = NULL;
	/* the SIGKILL is sent by worker_free: wait (bounded) until the process
	 * has died, so that its exit and the commands' closes come in one turn */
	uint64_t end = clock_mono_ms() + TEST_GUARD_MS;
	while (pid > 1 && !proc_is_dead(pid) && clock_mono_ms() < end)
		usleep(10000);
	CHECK(pid > 1 && proc_is_dead(pid));
	uv_close((uv_handle_t *)&f.deliver, NULL);
	end = clock_mono_ms() + TEST_GUARD_MS;
	while (uv_run(&f.loop, UV_RUN_NOWAIT) && clock_mono_ms() < end)
		usleep(10000); /* bounded: the last handles close */
	CHECK_INT(uv_loop_close(&f.loop), 0);
	CHECK_INT(f.n, before); /* nothing sent after the free */
	for (size_t i = 0; i < f.n; i++)
		free(f.recs[i].data);
	free(f.recs);
	buf_release(&f.pending);
	buf_release(&f.up);
	rm_rf(f.dir);
}

TEST(backpressure_pauses_reading)
{
	struct fake f;
	fake_init(&f);
	f.no_ack = true;
	worker_sendq_changed(f.w, KILN_WORKER_SENDQ_PAUSE + 1);
	CHECK(f.w->paused);
	const char *argv[] = {"sh", "-c", "echo x", NULL};
	start_shell(&f, "50", argv, NULL, 0, NULL, 0);
	/* paused: the output is not read, so the command cannot complete */
	/* a short bound on purpose: nothing may happen while paused (a load
	 * spike can only make it pass, never fail wrongly) */
	CHECK(!run_until(&f, is_complete, "50", 500));
	worker_sendq_changed(f.w, 0);
	CHECK(!f.w->paused);
	CHECK(run_until(&f, is_complete, "50", TEST_GUARD_MS));
	fake_release(&f);
}

/* A resolver that hangs like a dead DNS server until the test lets it go
 * (bounded at 10 s so a loop-blocking regression fails instead of hanging). */
static atomic_int slow_entered, slow_release, slow_returned;

static int slow_resolve(const char *host, struct sockaddr_storage *ret, size_t max)
{
	(void)host;
	(void)ret;
	(void)max;
	atomic_store(&slow_entered, 1);
	uint64_t end = clock_mono_ms() + TEST_GUARD_MS;
	while (!atomic_load(&slow_release) && clock_mono_ms() < end)
		usleep(1000);
	atomic_store(&slow_returned, 1);
	return -EAGAIN;
}

static bool slow_is_done(struct fake *f, const void *arg)
{
	(void)f;
	(void)arg;
	return atomic_load(&slow_returned);
}

TEST(output_streams_while_master_name_resolves)
{
	struct fake f;
	fake_init(&f);
	const char *argv[] = {"sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.1; done", NULL};
	start_shell(&f, "60", argv, NULL, 0, NULL, 0);
	struct conn_opts co = {.host = "master.invalid",
			       .port = 9989,
			       .name = "w",
			       .password = "p",
			       .resolve = slow_resolve};
	struct conn *c = NULL;
	CHECK_INT(conn_new(&f.loop, &co, f.w, &c), 0);
	CHECK(run_until(&f, is_complete, "60", TEST_GUARD_MS));
	/* the whole command ran and was reported while resolution hung */
	CHECK(atomic_load(&slow_entered));
	CHECK(!atomic_load(&slow_returned));
	char *out = text_of(&f, "60", "stdout");
	CHECK(strstr(out, "line1\nline2\nline3\n") != NULL);
	free(out);
	atomic_store(&slow_release, 1);
	CHECK(run_until(&f, slow_is_done, NULL, TEST_GUARD_MS));
	conn_free(c);
	uint64_t end = clock_mono_ms() + TEST_GUARD_MS;
	while (uv_run(&f.loop, UV_RUN_NOWAIT) && clock_mono_ms() < end)
		usleep(1000); /* bounded: the resolve request's callback, lws handles */
	conn_finish();
	fake_release(&f);
}

TEST(signal_names)
{
	CHECK_INT(runner_signal_from_name("KILL"), SIGKILL);
	CHECK_INT(runner_signal_from_name("SIGTERM"), SIGTERM);
	CHECK_INT(runner_signal_from_name("2"), 2);
	CHECK_INT(runner_signal_from_name("BOGUS"), -1);
}

int main(void)
{
	/* like kiln-worker: orphans of commands come back to us */
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_ERROR);
	RUN(simple_ops);
	RUN(shell_runs_and_reports);
	RUN(shell_string_env_and_stdin);
	RUN(output_is_streamed_quickly);
	RUN(interrupt_escalates_past_ignored_sigterm);
	RUN(children_holding_pipes_do_not_hang_the_command);
	RUN(interrupt_kills_group_when_leader_is_gone);
	RUN(no_output_timeout_and_max_time);
	RUN(missing_program_and_bad_args);
	RUN(filesystem_commands);
	RUN(file_transfers);
	RUN(connection_loss_kills_commands);
	RUN(free_with_a_running_command);
	RUN(backpressure_pauses_reading);
	RUN(output_streams_while_master_name_resolves);
	RUN(signal_names);
	/* orphaned sleeps from the pipe tests were killed; reap what is left */
	(void)runner_reap_orphans();
	return tap_done();
}
