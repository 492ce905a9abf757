/*
 * The transfer messages on the wire (workers.c with transfer.c): a fake
 * worker (this file implements wsconn.h, as test-engine.c does) attaches to
 * a real engine on a real loop and database, then plays Buildbot's worker
 * side of upload_file, download_file and the refusals: messages for an
 * unknown command, for a command that expects no transfer, malformed ones.
 * It checks each answer: nil, is_exception, or bin bytes (never nil for a
 * download's data, unlike Buildbot 3.7's master).
 */
#include "tap.h"
#include "wait.h" /* slice "faults": TEST_GUARD_MS */
#include "common/err.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/engine-int.h"
#include "master/engine.h"
#include "master/master.h"
#include "master/transfer.h"
#include "master/wsconn.h"
#include "proto/msg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char tmpdir[] = "/tmp/kiln-test-transfer-proto.XXXXXX";
static uv_loop_t loop;

/* ---- the fake worker ---- */

enum rkind { R_NONE, R_NIL, R_BIN, R_STR, R_EXC };

struct reply {
	enum rkind kind;
	size_t len;
	char data[64];
};

struct ws_conn {
	int unused;
};

static struct ws_conn conn;
static const struct ws_conn_ops *wops;
static void *wud;
static bool closed;
static int64_t wseq;             /* the worker's own request numbers */
static struct reply replies[64]; /* by the worker's seq */
static char last_cmd[24];        /* command_id of the last start_command */

/* the fake worker's own messages reach the engine on a later loop turn,
 * as over a real socket */
struct fmsg {
	void *data;
	size_t len;
	struct fmsg *next;
};
static struct fmsg *fq_head, **fq_tail = &fq_head;
static uv_timer_t fq_timer;

static void fq_deliver(uv_timer_t *t)
{
	(void)t;
	while (fq_head) {
		struct fmsg *q = fq_head;
		fq_head = q->next;
		if (!fq_head)
			fq_tail = &fq_head;
		if (!closed)
			wops->message(wud, &conn, q->data, q->len);
		free(q->data);
		free(q);
	}
}

static void fq_push(struct proto_enc *enc)
{
	struct fmsg *q = xcalloc(1, sizeof(*q));
	q->data = xmemdup(enc->sb.data, enc->sb.size);
	q->len = enc->sb.size;
	*fq_tail = q;
	fq_tail = &q->next;
	uv_timer_start(&fq_timer, fq_deliver, 0, 0);
}

int ws_conn_send(struct ws_conn *c, const void *data, size_t len)
{
	(void)c;
	struct proto_msg m;
	if (proto_msg_decode(data, len, &m) < 0)
		return 0;
	struct proto_enc enc;
	proto_enc_init(&enc);
	if (str_eq(m.op, "response")) {
		if (m.seq >= 0 && m.seq < 64) {
			struct reply *r = &replies[m.seq];
			const msgpack_object *res = proto_map_get(m.root, "result");
			if (proto_map_get(m.root, "is_exception"))
				r->kind = R_EXC;
			else if (!res || res->type == MSGPACK_OBJECT_NIL)
				r->kind = R_NIL;
			else if (res->type == MSGPACK_OBJECT_BIN)
				r->kind = R_BIN;
			else
				r->kind = R_STR;
			if (res &&
			    (res->type == MSGPACK_OBJECT_BIN || res->type == MSGPACK_OBJECT_STR)) {
				r->len = res->via.bin.size;
				memcpy(r->data, res->via.bin.ptr, r->len < 64 ? r->len : 64);
			}
		}
	} else if (str_eq(m.op, "get_worker_info")) {
		proto_pack_map(&enc, 3);
		proto_pack_str(&enc, "op");
		proto_pack_str(&enc, "response");
		proto_pack_str(&enc, "seq_number");
		proto_pack_int(&enc, m.seq);
		proto_pack_str(&enc, "result");
		proto_pack_map(&enc, 1);
		proto_pack_str(&enc, "basedir");
		proto_pack_str(&enc, "/wb");
		fq_push(&enc);
	} else {
		if (str_eq(m.op, "start_command")) {
			struct str id;
			if (proto_obj_str(proto_map_get(m.root, "command_id"), &id) &&
			    id.len < 24) {
				memcpy(last_cmd, id.p, id.len);
				last_cmd[id.len] = '\0';
			}
		}
		proto_enc_response_nil(&enc, m.seq);
		fq_push(&enc);
		/* mkdir of the builder directories: done at once */
		struct str name;
		if (str_eq(m.op, "start_command") &&
		    proto_obj_str(proto_map_get(m.root, "command_name"), &name) &&
		    str_eq(name, "mkdir")) {
			proto_enc_reset(&enc);
			proto_pack_map(&enc, 4);
			proto_pack_str(&enc, "op");
			proto_pack_str(&enc, "complete");
			proto_pack_str(&enc, "seq_number");
			proto_pack_int(&enc, 1000 + wseq);
			proto_pack_str(&enc, "command_id");
			proto_pack_str(&enc, last_cmd);
			proto_pack_str(&enc, "args");
			proto_pack_nil(&enc);
			fq_push(&enc);
		}
	}
	proto_enc_release(&enc);
	proto_msg_release(&m);
	return 0;
}

size_t ws_conn_queued(const struct ws_conn *c)
{
	(void)c;
	return 0;
}
int ws_conn_send_droppable(struct ws_conn *c, const void *data, size_t len)
{
	return ws_conn_send(c, data, len);
}
size_t ws_conn_queued_droppable(const struct ws_conn *c)
{
	(void)c;
	return 0;
}
void ws_conn_drop_droppable(struct ws_conn *c)
{
	(void)c;
}
void ws_conn_close(struct ws_conn *c, int code, const char *reason)
{
	(void)c;
	(void)code;
	(void)reason;
	closed = true;
}
const char *ws_conn_peer(const struct ws_conn *c)
{
	(void)c;
	return "127.0.0.1:1";
}

/* the worker sends op for command id with extra fields; returns its seq */
enum fextra { F_NONE, F_BIN, F_LENGTH, F_UTIME, F_BADBIN };

static int64_t fw_send(const char *op, const char *id, enum fextra x, const char *bin, size_t n,
		       int64_t length)
{
	int64_t seq = wseq++;
	struct proto_enc enc;
	proto_enc_init(&enc);
	uint32_t fields = 3 + (x == F_UTIME ? 2 : x != F_NONE ? 1 : 0);
	proto_pack_map(&enc, fields);
	proto_pack_str(&enc, "op");
	proto_pack_str(&enc, op);
	proto_pack_str(&enc, "seq_number");
	proto_pack_int(&enc, seq);
	proto_pack_str(&enc, "command_id");
	proto_pack_str(&enc, id);
	if (x == F_BIN) {
		proto_pack_str(&enc, "args");
		proto_pack_bin(&enc, bin, n);
	} else if (x == F_BADBIN) {
		proto_pack_str(&enc, "args");
		proto_pack_int(&enc, 7);
	} else if (x == F_LENGTH) {
		proto_pack_str(&enc, "length");
		proto_pack_int(&enc, length);
	} else if (x == F_UTIME) {
		proto_pack_str(&enc, "access_time");
		proto_pack_double(&enc, 1500000000.0);
		proto_pack_str(&enc, "modified_time");
		proto_pack_double(&enc, 1600000000.0);
	}
	memset(&replies[seq], 0, sizeof(replies[seq]));
	wops->message(wud, &conn, enc.sb.data, enc.sb.size);
	proto_enc_release(&enc);
	return seq;
}

static bool timed_out;
static void guard_fired(uv_timer_t *t)
{
	(void)t;
	timed_out = true;
}

/* waits (bounded) for the answer to the worker's request seq */
static enum rkind answer(int64_t seq)
{
	uv_timer_t guard;
	uv_timer_init(&loop, &guard);
	timed_out = false;
	uv_timer_start(&guard, guard_fired, TEST_GUARD_MS, 0);
	while (replies[seq].kind == R_NONE && !timed_out)
		uv_run(&loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&guard, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	return replies[seq].kind;
}

/* ---- the owner ---- */

struct owner {
	bool completed;
	int status, res_status;
	bool done;
	uint64_t bytes;
	int rc;
};

static void owner_update(void *ud, const char *key, const msgpack_object *value)
{
	struct owner *o = ud;
	int64_t v;
	if (!strcmp(key, "rc") && proto_obj_int(value, &v))
		o->rc = (int)v;
}

static void owner_complete(void *ud, int status, const char *failure,
			   const struct transfer_result *res)
{
	struct owner *o = ud;
	(void)failure;
	o->completed = true;
	o->status = status;
	o->res_status = res->status;
	o->done = res->done;
	o->bytes = res->bytes;
}

static const struct transfer_cb owner_cb = {owner_update, owner_complete};

static void plain_update(void *ud, const char *key, const msgpack_object *value)
{
	(void)ud;
	(void)key;
	(void)value;
}
static void plain_complete(void *ud, int status, const char *failure)
{
	(void)failure;
	*(int *)ud = status + 1000;
}
static const struct rcmd_ops plain_ops = {.update = plain_update, .complete = plain_complete};

static void fw_finish(const char *id)
{
	int64_t seq = wseq++;
	struct proto_enc enc;
	proto_enc_init(&enc);
	proto_pack_map(&enc, 4);
	proto_pack_str(&enc, "op");
	proto_pack_str(&enc, "update");
	proto_pack_str(&enc, "seq_number");
	proto_pack_int(&enc, seq);
	proto_pack_str(&enc, "command_id");
	proto_pack_str(&enc, id);
	proto_pack_str(&enc, "args");
	proto_pack_array(&enc, 1);
	proto_pack_array(&enc, 2);
	proto_pack_str(&enc, "rc");
	proto_pack_int(&enc, 0);
	wops->message(wud, &conn, enc.sb.data, enc.sb.size);
	proto_enc_reset(&enc);
	proto_pack_map(&enc, 4);
	proto_pack_str(&enc, "op");
	proto_pack_str(&enc, "complete");
	proto_pack_str(&enc, "seq_number");
	proto_pack_int(&enc, wseq++);
	proto_pack_str(&enc, "command_id");
	proto_pack_str(&enc, id);
	proto_pack_str(&enc, "args");
	proto_pack_nil(&enc);
	wops->message(wud, &conn, enc.sb.data, enc.sb.size);
	proto_enc_release(&enc);
}

static struct master m;
static struct engine *e;
static struct wconn *wc;

static struct rcmd *start(const struct rcmd_ops *ops, void *ud)
{
	struct proto_enc args;
	proto_enc_init(&args);
	struct rcmd *c = NULL;
	if (wconn_start_command(wc, "upload_file", "b", &args, 0, ops, ud, &c) < 0)
		TAP_FAIL("wconn_start_command failed");
	proto_enc_release(&args);
	return c;
}

TEST(upload_over_the_wire)
{
	_cleanup_free_ char *root = xasprintf("%s/artifacts", tmpdir);
	mkdir(root, 0755);
	struct owner o = {0};
	struct transfer *t = NULL;
	struct transfer_upload_opts uo = {.root = root, .dest = "out/f.bin", .mode = -1};
	CHECK_INT(transfer_upload_file_begin(&loop, &uo, &owner_cb, &o, &t), 0);
	if (!t || !start(transfer_rcmd_ops(), t))
		return;
	char id[24];
	snprintf(id, sizeof(id), "%s", last_cmd);
	int64_t s = fw_send("update_upload_file_write", id, F_BIN, "hello ", 6, 0);
	CHECK_INT(answer(s), R_NIL);
	s = fw_send("update_upload_file_write", id, F_BIN, "world\n", 6, 0);
	CHECK_INT(answer(s), R_NIL);
	/* args that are no bin: refused, the upload goes on */
	s = fw_send("update_upload_file_write", id, F_BADBIN, NULL, 0, 0);
	CHECK_INT(answer(s), R_EXC);
	s = fw_send("update_upload_file_close", id, F_NONE, NULL, 0, 0);
	CHECK_INT(answer(s), R_NIL);
	/* keepstamp after close: answered nil (Buildbot 3.7 raised here) */
	s = fw_send("update_upload_file_utime", id, F_UTIME, NULL, 0, 0);
	CHECK_INT(answer(s), R_NIL);
	/* a download message to an upload's owner */
	s = fw_send("update_read_file", id, F_LENGTH, NULL, 0, 10);
	CHECK_INT(answer(s), R_EXC);
	fw_finish(id);
	CHECK(o.completed);
	CHECK_INT(o.status, 0);
	CHECK_INT(o.res_status, 0);
	CHECK(o.done);
	CHECK_INT(o.bytes, 12);
	_cleanup_free_ char *path = xasprintf("%s/out/f.bin", root);
	FILE *f = fopen(path, "r");
	char buf[32] = {0};
	CHECK(f && fread(buf, 1, sizeof(buf), f) == 12);
	if (f)
		fclose(f);
	CHECK_STR(buf, "hello world\n");
	struct stat st;
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mtime, 1600000000);
}

TEST(download_over_the_wire)
{
	struct owner o = {0};
	struct transfer *t = NULL;
	CHECK_INT(transfer_download_string_begin(&loop, "0123456789ab", 12, &owner_cb, &o, &t), 0);
	if (!t || !start(transfer_rcmd_ops(), t))
		return;
	char id[24];
	snprintf(id, sizeof(id), "%s", last_cmd);
	char got[64];
	size_t len = 0;
	for (int i = 0; i < 10; i++) {
		int64_t s = fw_send("update_read_file", id, F_LENGTH, NULL, 0, 5);
		CHECK_INT(answer(s), R_BIN); /* bytes, and never nil at the end */
		if (replies[s].kind != R_BIN || replies[s].len == 0)
			break;
		CHECK(replies[s].len <= 5);
		memcpy(got + len, replies[s].data, replies[s].len);
		len += replies[s].len;
	}
	CHECK_INT(len, 12);
	CHECK(memcmp(got, "0123456789ab", 12) == 0);
	int64_t s = fw_send("update_read_file", id, F_LENGTH, NULL, 0, -1);
	CHECK_INT(answer(s), R_EXC);
	s = fw_send("update_read_file_close", id, F_NONE, NULL, 0, 0);
	CHECK_INT(answer(s), R_NIL);
	fw_finish(id);
	CHECK(o.completed && o.done);
	CHECK_INT(o.bytes, 12);
}

TEST(refusals)
{
	/* a command without transfer callbacks */
	int status = 0;
	if (!start(&plain_ops, &status))
		return;
	char id[24];
	snprintf(id, sizeof(id), "%s", last_cmd);
	static const char *const ops[] = {
		"update_upload_file_write",       "update_upload_file_close",
		"update_upload_file_utime",       "update_upload_directory_write",
		"update_upload_directory_unpack", "update_read_file",
		"update_read_file_close",
	};
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
		int64_t s = fw_send(ops[i], id,
				    i == 0   ? F_BIN
				    : i == 5 ? F_LENGTH
					     : F_NONE,
				    "x", 1, 4);
		CHECK_INT(answer(s), R_EXC);
	}
	fw_finish(id);
	CHECK_INT(status, 1000);
	/* an unknown command_id */
	int64_t s = fw_send("update_upload_file_write", "999999", F_BIN, "x", 1, 0);
	CHECK_INT(answer(s), R_EXC);
	CHECK(!closed);
}

int main(void)
{
	if (!mkdtemp(tmpdir))
		return 1;
	setenv("KILN_SECRET_W1", "pw", 1);
	uv_loop_init(&loop);
	uv_timer_init(&loop, &fq_timer);
	const char *lua = "worker { name = 'w1', password = secret('w1') }\n"
			  "builder { name = 'b', workers = { 'w1' }, steps = { shell { command = "
			  "'true' } } }\n";
	char *err = NULL;
	m.loop = &loop;
	m.name = xstrdup("test:transfer");
	m.basedir = xstrdup(tmpdir);
	_cleanup_free_ char *url = xasprintf("sqlite:%s/state.sqlite", tmpdir);
	if (config_load_string("master.lua", lua, strlen(lua), NULL, &m.cfg, &err) < 0 ||
	    db_open(&loop, url, tmpdir, &m.db) < 0 ||
	    db_master_register(m.db, m.name, &m.masterid) < 0 || engine_new(&m, &e) < 0) {
		printf("Bail out! master setup failed: %s\n", err ? err : "db");
		return 1;
	}
	m.engine = e;
	wops = engine_worker_ops(e);
	if (wops->authenticate(wops->ctx, "w1", "pw", &wud) < 0) {
		printf("Bail out! authenticate refused\n");
		return 1;
	}
	wops->opened(wud, &conn);
	wc = wud;
	for (int i = 0; i < 1000 && !wc->attached; i++)
		uv_run(&loop, UV_RUN_ONCE);
	if (!wc->attached) {
		printf("Bail out! the fake worker did not attach\n");
		return 1;
	}
	RUN(upload_over_the_wire);
	RUN(download_over_the_wire);
	RUN(refusals);
	engine_stop(e);
	for (int i = 0; i < 5; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	wops->closed(wud, &conn);
	engine_free(e);
	uv_close((uv_handle_t *)&fq_timer, NULL);
	db_close(m.db);
	for (int i = 0; i < 5; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	config_free(m.cfg);
	free(m.name);
	free(m.basedir);
	uv_loop_close(&loop);
	_cleanup_free_ char *rm = xasprintf("rm -rf '%s'", tmpdir);
	if (system(rm) != 0)
		return 1;
	return tap_done();
}
