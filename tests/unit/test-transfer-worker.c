/*
 * kiln-worker's side of upload_file (src/worker/cmd-transfer.c) against a
 * fake master in this file that holds its answers until the test releases
 * them: the worker keeps KILN_WORKER_UPLOAD_WINDOW writes in flight and no
 * more, every byte arrives in order, the close comes only once every write
 * was answered, and a failed write ends the command only after the writes
 * still in flight were answered (no reply ever reaches a finished command).
 */
#include "tap.h"
#include "wait.h" /* slice "faults": TEST_GUARD_MS */
#include "common/buf.h"
#include "common/clock.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "proto/msg.h"
#include "worker/worker.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FM_MAX_HELD 64

struct fm {
	uv_loop_t loop;
	struct worker *w;
	int64_t seq;               /* the master's next request number */
	int64_t held[FM_MAX_HELD]; /* seq of the writes not yet answered, oldest first */
	unsigned nheld, max_held;  /* ... and the most seen at once */
	unsigned writes;           /* write messages received */
	struct buf up;             /* their bytes, in arrival order */
	bool closed;               /* update_upload_file_close came */
	bool close_early;          /* ... while writes were unanswered */
	bool write_after_close;
	bool completed;     /* complete came */
	char failure[256];  /* its text, "" for nil */
	int64_t rc;         /* the rc update, or -99 */
	struct buf answers; /* answers sent from the send callback: [u32 len][bytes] */
	uv_timer_t deliver;
};

static void fm_on_deliver(uv_timer_t *t)
{
	struct fm *f = t->data;
	while (f->answers.len >= 4) {
		uint32_t n;
		memcpy(&n, f->answers.ptr, 4);
		void *copy = xmemdup(f->answers.ptr + 4, n);
		buf_consume(&f->answers, 4 + n);
		CHECK_INT(worker_handle_message(f->w, copy, n), 0);
		free(copy);
	}
}

/* an answer sent from inside the worker's send: delivered on a later turn */
static void fm_answer_later(struct fm *f, int64_t seq)
{
	struct proto_enc e;
	proto_enc_init(&e);
	proto_enc_response_nil(&e, seq);
	uint32_t l = (uint32_t)e.sb.size;
	CHECK_INT(buf_add(&f->answers, &l, 4), 0);
	CHECK_INT(buf_add(&f->answers, e.sb.data, e.sb.size), 0);
	proto_enc_release(&e);
	uv_timer_start(&f->deliver, fm_on_deliver, 0, 0);
}

static void fm_update(struct fm *f, const struct proto_msg *m)
{
	const msgpack_object *args = proto_map_get(m->root, "args");
	if (!args || args->type != MSGPACK_OBJECT_ARRAY)
		return;
	for (uint32_t i = 0; i < args->via.array.size; i++) {
		const msgpack_object *p = &args->via.array.ptr[i];
		struct str k;
		int64_t v;
		if (p->type == MSGPACK_OBJECT_ARRAY && p->via.array.size == 2 &&
		    proto_obj_str(&p->via.array.ptr[0], &k) && str_eq(k, "rc") &&
		    proto_obj_int(&p->via.array.ptr[1], &v))
			f->rc = v;
	}
}

static int fm_send(void *ud, const void *data, size_t len)
{
	struct fm *f = ud;
	struct proto_msg m;
	int r = proto_msg_decode(data, len, &m);
	CHECK_INT(r, 0);
	if (r < 0)
		return 0;
	struct str s;
	if (str_eq(m.op, "update_upload_file_write")) {
		f->writes++;
		if (f->closed)
			f->write_after_close = true;
		CHECK(proto_obj_str(proto_map_get(m.root, "args"), &s));
		CHECK_INT(buf_add(&f->up, s.p, s.len), 0);
		CHECK(f->nheld < FM_MAX_HELD);
		if (f->nheld < FM_MAX_HELD)
			f->held[f->nheld++] = m.seq;
		if (f->nheld > f->max_held)
			f->max_held = f->nheld;
	} else if (str_eq(m.op, "update_upload_file_close")) {
		f->closed = true;
		f->close_early = f->nheld > 0;
		fm_answer_later(f, m.seq);
	} else if (str_eq(m.op, "update")) {
		fm_update(f, &m);
	} else if (str_eq(m.op, "complete")) {
		f->completed = true;
		const msgpack_object *a = proto_map_get(m.root, "args");
		if (a && proto_obj_str(a, &s))
			snprintf(f->failure, sizeof(f->failure), "%.*s", (int)s.len, s.p);
	}
	proto_msg_release(&m);
	return 0;
}

static void fm_shutdown(void *ud)
{
	(void)ud;
}

static const struct worker_host fm_host = {.send = fm_send, .shutdown = fm_shutdown};

/* A host that lets the worker build messages in place (as conn.c does): a
 * guard byte after each buffer's cap must stay untouched. */
static unsigned fm_msgs_new, fm_msgs_sent, fm_msgs_freed;

struct fm_msg {
	size_t cap;
	unsigned char data[];
};

static void *fm_msg_new(void *ud, size_t cap, unsigned char **ret_payload)
{
	(void)ud;
	struct fm_msg *m = xmalloc(sizeof(*m) + cap + 1);
	m->cap = cap;
	m->data[cap] = 0xa5;
	fm_msgs_new++;
	*ret_payload = m->data;
	return m;
}

static int fm_msg_send(void *ud, void *msg, size_t len)
{
	struct fm_msg *m = msg;
	CHECK(len <= m->cap);
	CHECK_INT(m->data[m->cap], 0xa5);
	fm_msgs_sent++;
	int r = fm_send(ud, m->data, len);
	free(m);
	return r;
}

static void fm_msg_free(void *ud, void *msg)
{
	(void)ud;
	struct fm_msg *m = msg;
	CHECK_INT(m->data[m->cap], 0xa5);
	fm_msgs_freed++;
	free(m);
}

static const struct worker_host fm_inplace_host = {
	.send = fm_send,
	.shutdown = fm_shutdown,
	.msg_new = fm_msg_new,
	.msg_send = fm_msg_send,
	.msg_free = fm_msg_free,
};

static char dir[] = "/tmp/kiln-test-transfer-worker.XXXXXX";

static void fm_init_host(struct fm *f, const struct worker_host *host);

static void fm_init(struct fm *f)
{
	fm_init_host(f, &fm_host);
}

static void fm_init_host(struct fm *f, const struct worker_host *host)
{
	memset(f, 0, sizeof(*f));
	f->rc = -99;
	uv_loop_init(&f->loop);
	uv_timer_init(&f->loop, &f->deliver);
	f->deliver.data = f;
	buf_init(&f->up, 64u << 20);
	buf_init(&f->answers, 1u << 20);
	f->w = worker_new(&f->loop, dir, host, f);
	worker_connected(f->w);
}

static void fm_release(struct fm *f)
{
	worker_free(f->w);
	uv_close((uv_handle_t *)&f->deliver, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&f->loop), 0);
	buf_release(&f->up);
	buf_release(&f->answers);
}

/* Answers the oldest held write: nil, or is_exception with error. */
static void fm_answer_write(struct fm *f, const char *error)
{
	if (!f->nheld)
		return;
	int64_t seq = f->held[0];
	memmove(f->held, f->held + 1, (f->nheld - 1) * sizeof(f->held[0]));
	f->nheld--;
	struct proto_enc e;
	proto_enc_init(&e);
	if (error)
		proto_enc_response_error(&e, seq, error);
	else
		proto_enc_response_nil(&e, seq);
	CHECK_INT(worker_handle_message(f->w, e.sb.data, e.sb.size), 0);
	proto_enc_release(&e);
}

/* Runs the loop until *flag, bounded by TEST_GUARD_MS. */
static bool fm_run_until(struct fm *f, const bool *flag)
{
	uint64_t end = clock_mono_ms() + TEST_GUARD_MS;
	while (!*flag && clock_mono_ms() < end)
		uv_run(&f->loop, UV_RUN_NOWAIT);
	return *flag;
}

static void fm_start_upload(struct fm *f, const char *id, const char *path, int64_t blocksize)
{
	struct proto_enc e;
	proto_enc_init(&e);
	proto_pack_map(&e, 6);
	proto_pack_str(&e, "op");
	proto_pack_str(&e, "start_command");
	proto_pack_str(&e, "seq_number");
	proto_pack_int(&e, f->seq++);
	proto_pack_str(&e, "command_id");
	proto_pack_str(&e, id);
	proto_pack_str(&e, "command_name");
	proto_pack_str(&e, "upload_file");
	proto_pack_str(&e, "builder_name");
	proto_pack_str(&e, "b");
	proto_pack_str(&e, "args");
	proto_pack_map(&e, 2);
	proto_pack_str(&e, "path");
	proto_pack_str(&e, path);
	proto_pack_str(&e, "blocksize");
	proto_pack_int(&e, blocksize);
	CHECK_INT(worker_handle_message(f->w, e.sb.data, e.sb.size), 0);
	proto_enc_release(&e);
}

static char *make_file(const char *name, size_t len)
{
	char *path = xasprintf("%s/%s", dir, name);
	char *data = xmalloc(len);
	for (size_t i = 0; i < len; i++)
		data[i] = (char)(i * 31 + (i >> 12));
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && write(fd, data, len) == (ssize_t)len);
	if (fd >= 0)
		close(fd);
	free(data);
	return path;
}

static bool same_as_file(const struct buf *b, const char *path)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return false;
	char *want = xmalloc(b->len + 1);
	size_t n = fread(want, 1, b->len + 1, fp);
	fclose(fp);
	bool same = n == b->len && memcmp(want, b->ptr, n) == 0;
	free(want);
	return same;
}

TEST(upload_keeps_a_window_of_writes)
{
	struct fm f;
	fm_init(&f);
	enum { BLK = 4096, NB = 23 };
	_cleanup_free_ char *path = make_file("w.bin", (size_t)BLK * NB - 100);
	fm_start_upload(&f, "1", path, BLK);
	/* sent at once, and no more until one is answered */
	CHECK_INT(f.nheld, KILN_WORKER_UPLOAD_WINDOW);
	uv_run(&f.loop, UV_RUN_NOWAIT);
	CHECK_INT(f.nheld, KILN_WORKER_UPLOAD_WINDOW);
	fm_answer_write(&f, NULL);
	CHECK_INT(f.nheld, KILN_WORKER_UPLOAD_WINDOW); /* one answer, one more write */
	while (f.nheld && !f.closed)
		fm_answer_write(&f, NULL);
	CHECK(fm_run_until(&f, &f.completed));
	CHECK_INT(f.writes, NB);
	CHECK_INT(f.max_held, KILN_WORKER_UPLOAD_WINDOW);
	CHECK(f.closed && !f.close_early && !f.write_after_close);
	CHECK_STR(f.failure, "");
	CHECK_INT(f.rc, 0);
	CHECK_INT(f.up.len, (size_t)BLK * NB - 100);
	CHECK(same_as_file(&f.up, path));
	fm_release(&f);
}

TEST(upload_failed_write_ends_after_the_window_drains)
{
	struct fm f;
	fm_init(&f);
	_cleanup_free_ char *path = make_file("e.bin", 4096 * 20);
	fm_start_upload(&f, "2", path, 4096);
	CHECK_INT(f.nheld, KILN_WORKER_UPLOAD_WINDOW);
	fm_answer_write(&f, "cannot write the upload: No space left on device");
	CHECK_INT(f.nheld, KILN_WORKER_UPLOAD_WINDOW - 1); /* nothing more sent */
	uv_run(&f.loop, UV_RUN_NOWAIT);
	CHECK(!f.completed); /* writes still in flight: their replies come first */
	while (f.nheld)
		fm_answer_write(&f, NULL);
	CHECK(fm_run_until(&f, &f.completed));
	CHECK_INT(f.writes, KILN_WORKER_UPLOAD_WINDOW);
	CHECK(!f.closed);
	CHECK(strstr(f.failure, "No space left on device") != NULL);
	fm_release(&f);
}

/* Blocks read straight into the host's message buffers: full blocks with
 * every bin header form (bin8 under 256 bytes, bin16, bin32 from 64 KiB),
 * and a short last block whose header is shorter than a full block's (the
 * data moves up to meet it); the end of the file is found without sending
 * anything, and its unused buffer goes back through msg_free. */
TEST(upload_reads_blocks_into_the_message_in_place)
{
	static const struct {
		int64_t block;
		size_t size;
	} cases[] = {
		{100000, 300000 + 200}, /* bin32 blocks, then a bin8 one */
		{70000, 140000},        /* an exact multiple: the probe at the end sends nothing */
		{300, 3 * 300 + 44},    /* bin16 blocks, then bin8 */
		{200, 1000 + 7},        /* bin8 throughout */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fm f;
		fm_init_host(&f, &fm_inplace_host);
		fm_msgs_new = fm_msgs_sent = fm_msgs_freed = 0;
		_cleanup_free_ char *name = xasprintf("p%zu.bin", i);
		_cleanup_free_ char *path = make_file(name, cases[i].size);
		_cleanup_free_ char *id = xasprintf("%zu", 10 + i);
		fm_start_upload(&f, id, path, cases[i].block);
		while (f.nheld || !f.closed) {
			if (!f.nheld && !fm_run_until(&f, &f.closed))
				break;
			fm_answer_write(&f, NULL);
		}
		CHECK(fm_run_until(&f, &f.completed));
		size_t nb = (cases[i].size + (size_t)cases[i].block - 1) / (size_t)cases[i].block;
		CHECK_INT(f.writes, nb);
		CHECK_INT(fm_msgs_sent, nb);
		CHECK_INT(fm_msgs_new, fm_msgs_sent + fm_msgs_freed);
		CHECK_INT(fm_msgs_freed, 1); /* the read that found the end */
		CHECK_STR(f.failure, "");
		CHECK_INT(f.rc, 0);
		CHECK_INT(f.up.len, cases[i].size);
		CHECK(same_as_file(&f.up, path));
		fm_release(&f);
	}
}

/* A read that fails (a directory opens, then read(2) says EISDIR) ends the
 * upload as a failed step (rc 1), not as a complete, empty file, and not as
 * a protocol failure. */
TEST(upload_read_error_is_rc_1)
{
	struct fm f;
	fm_init_host(&f, &fm_inplace_host);
	fm_msgs_new = fm_msgs_sent = fm_msgs_freed = 0;
	_cleanup_free_ char *path = xasprintf("%s/adir", dir);
	CHECK_INT(mkdir(path, 0755), 0);
	fm_start_upload(&f, "20", path, 4096);
	CHECK(fm_run_until(&f, &f.completed));
	CHECK_INT(f.writes, 0);
	CHECK_INT(fm_msgs_sent, 0);
	CHECK_INT(fm_msgs_freed, fm_msgs_new);
	CHECK_STR(f.failure, "");
	CHECK_INT(f.rc, 1);
	fm_release(&f);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	RUN(upload_keeps_a_window_of_writes);
	RUN(upload_failed_write_ends_after_the_window_drains);
	RUN(upload_reads_blocks_into_the_message_in_place);
	RUN(upload_read_error_is_rc_1);
	_cleanup_free_ char *rm = xasprintf("rm -rf '%s'", dir);
	if (system(rm) != 0)
		return 1;
	return tap_done();
}
