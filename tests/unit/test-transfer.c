/*
 * Unit tests of src/master/transfer.c on a real libuv loop and real files:
 * uploads in chunks, mode and keepstamp, writes answered ahead of the disk
 * within their caps (backpressure past them, a pipelining worker, too many
 * unanswered writes refused, a failed write reported on the next answer, a
 * utime held until the queued blocks are on disk),
 * maxsize enforced by the master, downloads that
 * answer with bytes and an empty bin at the end, directory uploads from
 * tar(1) streams (plain, gzip, bzip2) and hostile tar streams built here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "master/engine-int.h"
#include "master/transfer.h"
#include "tap.h"
#include "wait.h" /* slice "faults": TEST_GUARD_MS */

static uv_loop_t loop;
static char tmpdir[] = "/tmp/kiln-test-transfer.XXXXXX";

/* ---- fake answers and the owner's callbacks ---- */

struct fans {
	struct rcmd_answer a;
	struct ans *into;
};

struct ans {
	bool answered;
	int status;
	char msg[256];
	bool has_data;
	size_t len;
	char *data; /* owned */
};

static void fans_send(struct rcmd_answer *a, int status, const char *message, const void *data,
		      size_t len)
{
	struct fans *f = (struct fans *)a;
	struct ans *o = f->into;
	o->answered = true;
	o->status = status;
	snprintf(o->msg, sizeof(o->msg), "%s", message ? message : "");
	o->has_data = data != NULL;
	o->len = len;
	free(o->data);
	o->data = NULL;
	if (data) {
		o->data = xmalloc(len + 1);
		memcpy(o->data, data, len);
	}
	free(f);
}

static struct rcmd_answer *ans_new(struct ans *o)
{
	free(o->data);
	memset(o, 0, sizeof(*o));
	struct fans *f = xcalloc(1, sizeof(*f));
	f->a.send = fans_send;
	f->into = o;
	return &f->a;
}

struct owner {
	bool completed;
	int status;
	struct transfer_result res;
	char error[512];
	char path[512];
	int updates;
};

static void owner_update(void *ud, const char *key, const msgpack_object *value)
{
	struct owner *o = ud;
	(void)key;
	(void)value;
	o->updates++;
}

static void owner_complete(void *ud, int status, const char *failure,
			   const struct transfer_result *res)
{
	struct owner *o = ud;
	(void)failure;
	o->completed = true;
	o->status = status;
	o->res = *res;
	snprintf(o->error, sizeof(o->error), "%s", res->error ? res->error : "");
	snprintf(o->path, sizeof(o->path), "%s", res->path ? res->path : "");
	o->res.error = o->error;
	o->res.path = o->path;
}

static const struct transfer_cb owner_cb = {owner_update, owner_complete};

static bool timed_out;
static void guard_fired(uv_timer_t *t)
{
	(void)t;
	timed_out = true;
}

/* runs the loop until *flag, bounded by TEST_GUARD_MS */
static bool run_until(const bool *flag)
{
	uv_timer_t guard;
	uv_timer_init(&loop, &guard);
	timed_out = false;
	uv_timer_start(&guard, guard_fired, TEST_GUARD_MS, 0);
	while (!*flag && !timed_out)
		uv_run(&loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&guard, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	return *flag;
}

static char *path_in(const char *name)
{
	return xasprintf("%s/%s", tmpdir, name);
}

static char *read_file(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *p = xmalloc(1 << 22);
	size_t n = fread(p, 1, 1 << 22, f);
	fclose(f);
	*ret_len = n;
	return p;
}

static size_t count_files(const char *dir)
{
	_cleanup_free_ char *cmd = xasprintf("find '%s' -mindepth 1 | wc -l", dir);
	FILE *p = popen(cmd, "r");
	size_t n = 0;
	if (p) {
		if (fscanf(p, "%zu", &n) != 1)
			n = 9999;
		pclose(p);
	}
	return n;
}

static const struct rcmd_ops *ops;

/* one write, and its answer (at once, or once on disk) */
static void do_write(struct transfer *t, const char *data, size_t len, struct ans *a)
{
	ops->write(t, data, len, ans_new(a));
	run_until(&a->answered);
}

/* ---- paths ---- */

TEST(relpath)
{
	char *r = NULL;
	CHECK_INT(transfer_relpath("a/b.txt", &r), 0);
	CHECK_STR(r, "a/b.txt");
	free(r);
	CHECK_INT(transfer_relpath("./a//b/./c", &r), 0);
	CHECK_STR(r, "a/b/c");
	free(r);
	CHECK_INT(transfer_relpath(".", &r), 0);
	CHECK_STR(r, "");
	free(r);
	CHECK_INT(transfer_relpath("../x", &r), KILN_EPARSE);
	CHECK_INT(transfer_relpath("a/../../x", &r), KILN_EPARSE);
	CHECK_INT(transfer_relpath("a/..", &r), KILN_EPARSE);
	CHECK_INT(transfer_relpath("/etc/passwd", &r), KILN_EPARSE);
	CHECK_INT(transfer_relpath("", &r), KILN_EPARSE);
	char *longp = xmalloc(KILN_UNTAR_MAX_PATH + 2);
	memset(longp, 'a', KILN_UNTAR_MAX_PATH + 1);
	longp[KILN_UNTAR_MAX_PATH + 1] = '\0';
	CHECK_INT(transfer_relpath(longp, &r), KILN_EPARSE);
	free(longp);
}

TEST(upload_dest_escapes_refused)
{
	struct owner o = {0};
	struct transfer *t = NULL;
	struct transfer_upload_opts uo = {.root = tmpdir, .dest = "../escape", .mode = -1};
	CHECK_INT(transfer_upload_file_begin(&loop, &uo, &owner_cb, &o, &t), KILN_EPARSE);
	uo.dest = "/tmp/abs";
	CHECK_INT(transfer_upload_file_begin(&loop, &uo, &owner_cb, &o, &t), KILN_EPARSE);
	uo.dest = ".";
	CHECK_INT(transfer_upload_file_begin(&loop, &uo, &owner_cb, &o, &t), KILN_EPARSE);
	CHECK(t == NULL);
}

/* ---- file uploads ---- */

TEST(upload_file_chunks_mode_keepstamp)
{
	ops = transfer_rcmd_ops();
	struct owner o = {0};
	struct transfer *t = NULL;
	struct transfer_upload_opts uo = {.root = tmpdir, .dest = "up/sub/file.bin", .mode = 0640};
	CHECK_INT(transfer_upload_file_begin(&loop, &uo, &owner_cb, &o, &t), 0);
	if (!t)
		return;
	/* 40,000 bytes in 16,384-byte chunks, as Buildbot's worker sends them */
	char *data = xmalloc(40000);
	for (size_t i = 0; i < 40000; i++)
		data[i] = (char)(i * 7 + 3);
	struct ans a = {0};
	size_t off = 0;
	while (off < 40000) {
		size_t n = 40000 - off < 16384 ? 40000 - off : 16384;
		do_write(t, data + off, n, &a);
		CHECK_INT(a.status, 0);
		CHECK(!a.has_data); /* nil */
		off += n;
	}
	_cleanup_free_ char *dest = path_in("up/sub/file.bin");
	CHECK(access(dest, F_OK) < 0); /* not in place before close */
	ops->close_writer(t, ans_new(&a));
	CHECK(run_until(&a.answered));
	CHECK_INT(a.status, 0);
	ops->utime(t, 1000000000.0, 1234567890.5, ans_new(&a));
	CHECK(run_until(&a.answered));
	CHECK_INT(a.status, 0);
	ops->complete(t, 0, NULL);
	CHECK(o.completed);
	CHECK_INT(o.res.status, 0);
	CHECK(o.res.done);
	CHECK_INT(o.res.bytes, 40000);
	CHECK_STR(o.path, dest);
	unsigned char want[32];
	crypto_hash_sha256(want, (unsigned char *)data, 40000);
	CHECK(memcmp(want, o.res.sha256, 32) == 0);
	struct stat st; /* before reading it, which moves atime */
	CHECK_INT(stat(dest, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0640);
	CHECK_INT(st.st_mtime, 1234567890);
	CHECK_INT(st.st_atime, 1000000000);
	size_t len = 0;
	_cleanup_free_ char *got = read_file(dest, &len);
	CHECK(got && len == 40000 && memcmp(got, data, 40000) == 0);
	/* no temporary file left */
	_cleanup_free_ char *dir = path_in("up/sub");
	CHECK_INT(count_files(dir), 1);
	free(data);
	free(a.data);
}

TEST(upload_over_maxsize_refused)
{
	struct owner o = {0};
	struct transfer *t = NULL;
	struct transfer_upload_opts uo = {
		.root = tmpdir, .dest = "max/file.bin", .maxsize = 1000, .mode = -1};
	CHECK_INT(transfer_upload_file_begin(&loop, &uo, &owner_cb, &o, &t), 0);
	if (!t)
		return;
	char chunk[600];
	memset(chunk, 'x', sizeof(chunk));
	struct ans a = {0};
	do_write(t, chunk, sizeof(chunk), &a);
	CHECK_INT(a.status, 0);
	/* a hostile worker ignores maxsize: the master refuses the chunk */
	do_write(t, chunk, sizeof(chunk), &a);
	CHECK(a.status < 0);
	CHECK(strstr(a.msg, "maximum size") != NULL);
	ops->close_writer(t, ans_new(&a));
	CHECK(run_until(&a.answered));
	CHECK(a.status < 0);
	ops->complete(t, KILN_EPROTO, "worker gave up");
	CHECK(run_until(&o.completed)); /* once the first chunk's write ended */
	CHECK_INT(o.res.status, KILN_ETOOBIG);
	CHECK(!o.res.done);
	_cleanup_free_ char *dir = path_in("max");
	CHECK_INT(count_files(dir), 0); /* temporary file removed */
	free(a.data);
}

/* a block of 'len' bytes numbered n (no two blocks alike) */
static void block_fill(char *p, size_t len, unsigned n)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (char)(i * 13 + n * 7 + (i >> 9));
}

/* Writes answered ahead of the disk up to KILN_UPLOAD_AHEAD_BLOCKS, then
 * held until blocks are written (backpressure); then a worker keeping
 * KILN_WORKER_UPLOAD_WINDOW writes in flight; close waits for the disk. */
TEST(upload_answered_ahead_then_backpressure)
{
	struct owner o = {0};
	struct transfer *t = NULL;
	struct transfer_upload_opts uo = {.root = tmpdir, .dest = "ahead/f.bin", .mode = -1};
	CHECK_INT(transfer_upload_file_begin(&loop, &uo, &owner_cb, &o, &t), 0);
	if (!t)
		return;
	enum { BLK = 1000, NB = 64, WIN = KILN_WORKER_UPLOAD_WINDOW };
	char *data = xmalloc((size_t)BLK * NB);
	for (unsigned i = 0; i < NB; i++)
		block_fill(data + (size_t)i * BLK, BLK, i);
	struct ans a[NB];
	memset(a, 0, sizeof(a));
	/* the loop does not run: no block reaches the disk meanwhile */
	unsigned sent = 0;
	for (; sent < KILN_UPLOAD_AHEAD_BLOCKS; sent++) {
		ops->write(t, data + (size_t)sent * BLK, BLK, ans_new(&a[sent]));
		CHECK(a[sent].answered && a[sent].status == 0);
	}
	ops->write(t, data + (size_t)sent * BLK, BLK, ans_new(&a[sent]));
	CHECK(!a[sent].answered); /* past the cap: once blocks are written */
	CHECK(run_until(&a[sent].answered));
	CHECK_INT(a[sent].status, 0);
	sent++;
	/* the rest with WIN writes in flight, answers awaited oldest first */
	unsigned acked = sent;
	while (acked < NB) {
		while (sent < NB && sent - acked < WIN) {
			ops->write(t, data + (size_t)sent * BLK, BLK, ans_new(&a[sent]));
			sent++;
		}
		CHECK(run_until(&a[acked].answered));
		CHECK_INT(a[acked].status, 0);
		if (!a[acked].answered)
			break;
		acked++;
	}
	struct ans c = {0};
	ops->close_writer(t, ans_new(&c));
	CHECK(run_until(&c.answered));
	CHECK_INT(c.status, 0);
	_cleanup_free_ char *dest = path_in("ahead/f.bin");
	size_t len = 0;
	_cleanup_free_ char *got = read_file(dest, &len); /* in place once close is answered */
	CHECK(got && len == (size_t)BLK * NB && memcmp(got, data, len) == 0);
	ops->complete(t, 0, NULL);
	CHECK(o.completed);
	CHECK_INT(o.res.status, 0);
	CHECK(o.res.done);
	CHECK_INT(o.res.bytes, (size_t)BLK * NB);
	unsigned char want[32];
	crypto_hash_sha256(want, (unsigned char *)data, (size_t)BLK * NB);
	CHECK(memcmp(want, o.res.sha256, 32) == 0);
	for (unsigned i = 0; i < NB; i++)
		free(a[i].data);
	free(c.data);
	free(data);
}

/* A utime (keepstamp before close) while blocks are queued waits for them:
 * a write after it would move the mtime again. */
TEST(upload_utime_waits_for_queued_blocks)
{
	struct owner o = {0};
	struct transfer *t = NULL;
	struct transfer_upload_opts uo = {.root = tmpdir, .dest = "ut/f.bin", .mode = -1};
	CHECK_INT(transfer_upload_file_begin(&loop, &uo, &owner_cb, &o, &t), 0);
	if (!t)
		return;
	char blk[5000];
	memset(blk, 'u', sizeof(blk));
	struct ans a[3], u = {0}, c = {0};
	memset(a, 0, sizeof(a));
	for (unsigned i = 0; i < 3; i++) {
		ops->write(t, blk, sizeof(blk), ans_new(&a[i]));
		CHECK(a[i].answered && a[i].status == 0);
	}
	ops->utime(t, 1000000000.0, 1111111111.0, ans_new(&u));
	CHECK(!u.answered); /* held until the blocks are on disk */
	CHECK(run_until(&u.answered));
	CHECK_INT(u.status, 0);
	ops->close_writer(t, ans_new(&c));
	CHECK(run_until(&c.answered));
	CHECK_INT(c.status, 0);
	ops->complete(t, 0, NULL);
	CHECK(o.completed && o.res.done);
	struct stat st;
	_cleanup_free_ char *dest = path_in("ut/f.bin");
	CHECK_INT(stat(dest, &st), 0);
	CHECK_INT(st.st_size, 3 * sizeof(blk));
	CHECK_INT(st.st_mtime, 1111111111);
	for (unsigned i = 0; i < 3; i++)
		free(a[i].data);
	free(u.data);
	free(c.data);
}

/* Big blocks: the bytes answered ahead stay under KILN_UPLOAD_AHEAD_BYTES. */
TEST(upload_ahead_bytes_capped)
{
	struct owner o = {0};
	struct transfer *t = NULL;
	struct transfer_upload_opts uo = {.root = tmpdir, .dest = "aheadb.bin", .mode = -1};
	CHECK_INT(transfer_upload_file_begin(&loop, &uo, &owner_cb, &o, &t), 0);
	if (!t)
		return;
	size_t blk = KILN_UPLOAD_AHEAD_BYTES / 2;
	char *data = xcalloc(1, blk);
	struct ans a[3];
	memset(a, 0, sizeof(a));
	ops->write(t, data, blk, ans_new(&a[0]));
	ops->write(t, data, blk, ans_new(&a[1]));
	ops->write(t, data, blk, ans_new(&a[2]));
	CHECK(a[0].answered && a[1].answered);
	CHECK(!a[2].answered);
	CHECK(run_until(&a[2].answered));
	CHECK_INT(a[2].status, 0);
	struct ans c = {0};
	ops->close_writer(t, ans_new(&c));
	CHECK(run_until(&c.answered));
	CHECK_INT(c.status, 0);
	ops->complete(t, 0, NULL);
	CHECK(o.completed && o.res.done);
	CHECK_INT(o.res.bytes, 3 * blk);
	struct stat st;
	_cleanup_free_ char *dest = path_in("aheadb.bin");
	CHECK_INT(stat(dest, &st), 0);
	CHECK_INT(st.st_size, 3 * blk);
	for (unsigned i = 0; i < 3; i++)
		free(a[i].data);
	free(c.data);
	free(data);
}

/* A worker that does not wait: past KILN_UPLOAD_MAX_UNANSWERED writes
 * awaiting their answers the upload fails, and nothing is put in place. */
TEST(upload_too_many_unanswered_refused)
{
	struct owner o = {0};
	struct transfer *t = NULL;
	struct transfer_upload_opts uo = {.root = tmpdir, .dest = "sw/f.bin", .mode = -1};
	CHECK_INT(transfer_upload_file_begin(&loop, &uo, &owner_cb, &o, &t), 0);
	if (!t)
		return;
	enum { N = KILN_UPLOAD_AHEAD_BLOCKS + KILN_UPLOAD_MAX_UNANSWERED };
	struct ans a[N + 1];
	memset(a, 0, sizeof(a));
	for (unsigned i = 0; i < N; i++)
		ops->write(t, "abc", 3, ans_new(&a[i]));
	CHECK(a[N - 1].answered == false);
	ops->write(t, "def", 3, ans_new(&a[N])); /* one too many */
	CHECK(a[N].answered && a[N].status < 0);
	CHECK(strstr(a[N].msg, "without waiting") != NULL);
	/* those awaiting answers get the failure once the write in flight ends */
	CHECK(run_until(&a[N - 1].answered));
	CHECK(a[N - 1].status < 0);
	struct ans c = {0};
	ops->close_writer(t, ans_new(&c));
	CHECK(c.answered && c.status < 0);
	ops->complete(t, -ECONNRESET, "connection lost");
	CHECK(o.completed);
	CHECK_INT(o.res.status, KILN_EPROTO);
	CHECK(!o.res.done);
	_cleanup_free_ char *dir = path_in("sw");
	CHECK_INT(count_files(dir), 0);
	for (unsigned i = 0; i <= N; i++)
		free(a[i].data);
	free(c.data);
}

/* A write that fails on disk after its block was answered: the next answer
 * and the close say so, and nothing is put in place. */
TEST(upload_write_error_on_next_answer)
{
	struct owner o = {0};
	struct transfer *t = NULL;
	struct transfer_upload_opts uo = {.root = tmpdir, .dest = "efbig/f.bin", .mode = -1};
	CHECK_INT(transfer_upload_file_begin(&loop, &uo, &owner_cb, &o, &t), 0);
	if (!t)
		return;
	/* write(2) fails with EFBIG past 10,000 bytes of any file */
	struct rlimit old, lim;
	CHECK_INT(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 10000;
	signal(SIGXFSZ, SIG_IGN);
	CHECK_INT(setrlimit(RLIMIT_FSIZE, &lim), 0);
	char blk[4000];
	memset(blk, 'e', sizeof(blk));
	struct ans a[4];
	memset(a, 0, sizeof(a));
	for (unsigned i = 0; i < 4; i++) {
		ops->write(t, blk, sizeof(blk), ans_new(&a[i]));
		CHECK(a[i].answered && a[i].status == 0); /* queued, not yet written */
	}
	/* the worker goes on once the blocks are on disk (or failed) */
	bool any_error = false;
	for (unsigned i = 0; i < 8 && !any_error; i++) {
		struct ans n = {0};
		ops->write(t, blk, sizeof(blk), ans_new(&n));
		CHECK(run_until(&n.answered));
		any_error = n.status < 0;
		if (any_error)
			CHECK(strstr(n.msg, "cannot write the upload") != NULL);
		free(n.data);
	}
	CHECK(any_error);
	struct ans c = {0};
	ops->close_writer(t, ans_new(&c));
	CHECK(run_until(&c.answered));
	CHECK(c.status < 0);
	CHECK_INT(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	ops->complete(t, KILN_EPROTO, "worker gave up");
	CHECK(run_until(&o.completed));
	CHECK_INT(o.res.status, -EFBIG);
	CHECK(!o.res.done);
	_cleanup_free_ char *dir = path_in("efbig");
	CHECK_INT(count_files(dir), 0);
	for (unsigned i = 0; i < 4; i++)
		free(a[i].data);
	free(c.data);
}

TEST(upload_lost_mid_write)
{
	struct owner o = {0};
	struct transfer *t = NULL;
	struct transfer_upload_opts uo = {.root = tmpdir, .dest = "lost/f.bin", .mode = -1};
	CHECK_INT(transfer_upload_file_begin(&loop, &uo, &owner_cb, &o, &t), 0);
	if (!t)
		return;
	struct ans a = {0};
	ops->write(t, "abc", 3, ans_new(&a));
	/* the connection drops while the chunk is being written: the owner
	 * hears of it once the write ended, not before */
	ops->complete(t, -ECONNRESET, "connection lost");
	CHECK(!o.completed);
	CHECK(run_until(&o.completed));
	CHECK(a.answered);
	CHECK_INT(o.status, -ECONNRESET);
	CHECK(!o.res.done);
	_cleanup_free_ char *dir = path_in("lost");
	CHECK_INT(count_files(dir), 0);
	free(a.data);
}

TEST(upload_complete_without_close)
{
	struct owner o = {0};
	struct transfer *t = NULL;
	struct transfer_upload_opts uo = {.root = tmpdir, .dest = "nc/f.bin", .mode = -1};
	CHECK_INT(transfer_upload_file_begin(&loop, &uo, &owner_cb, &o, &t), 0);
	if (!t)
		return;
	struct ans a = {0};
	do_write(t, "abc", 3, &a);
	ops->complete(t, 0, NULL);
	CHECK(run_until(&o.completed));
	CHECK(o.res.status < 0);
	CHECK(!o.res.done);
	free(a.data);
}

TEST(abort_removes_temp)
{
	struct owner o = {0};
	struct transfer *t = NULL;
	struct transfer_upload_opts uo = {.root = tmpdir, .dest = "ab/f.bin", .mode = -1};
	CHECK_INT(transfer_upload_file_begin(&loop, &uo, &owner_cb, &o, &t), 0);
	transfer_abort(t);
	_cleanup_free_ char *dir = path_in("ab");
	CHECK_INT(count_files(dir), 0);
	CHECK(!o.completed);
}

/* ---- downloads ---- */

static void download_all(struct transfer *t, size_t blocksize, char **ret, size_t *ret_len,
			 bool *saw_nil)
{
	size_t cap = 1 << 20, len = 0;
	char *out = xmalloc(cap);
	struct ans a = {0};
	*saw_nil = false;
	for (int i = 0; i < 1000; i++) {
		ops->read(t, blocksize, ans_new(&a));
		if (!run_until(&a.answered) || a.status < 0)
			break;
		if (!a.has_data) {
			*saw_nil = true;
			break;
		}
		if (a.len == 0)
			break;
		if (a.len > blocksize || len + a.len > cap)
			break;
		memcpy(out + len, a.data, a.len);
		len += a.len;
	}
	ops->close_reader(t, ans_new(&a));
	run_until(&a.answered);
	free(a.data);
	*ret = out;
	*ret_len = len;
}

TEST(download_file_bytes_then_empty_bin)
{
	_cleanup_free_ char *src = path_in("dl-src.bin");
	FILE *f = fopen(src, "wb");
	for (int i = 0; i < 50000; i++)
		fputc(i % 251, f);
	fclose(f);
	struct owner o = {0};
	struct transfer *t = NULL;
	CHECK_INT(transfer_download_file_begin(&loop, src, &owner_cb, &o, &t), 0);
	if (!t)
		return;
	char *got;
	size_t len;
	bool nil;
	download_all(t, 16384, &got, &len, &nil);
	CHECK(!nil); /* never nil: Buildbot 3.7's empty downloads */
	CHECK_INT(len, 50000);
	size_t flen;
	_cleanup_free_ char *want = read_file(src, &flen);
	CHECK(want && memcmp(got, want, 50000) == 0);
	ops->complete(t, 0, NULL);
	CHECK(o.completed && o.res.done && o.res.status == 0);
	CHECK_INT(o.res.bytes, 50000);
	free(got);
	_cleanup_free_ char *missing = path_in("no-such-file");
	CHECK_INT(transfer_download_file_begin(&loop, missing, &owner_cb, &o, &t), -ENOENT);
	CHECK_INT(transfer_download_file_begin(&loop, tmpdir, &owner_cb, &o, &t), -EISDIR);
}

TEST(download_string_and_huge_length_capped)
{
	struct owner o = {0};
	struct transfer *t = NULL;
	const char *s = "{\"branch\": \"main\"}\n";
	CHECK_INT(transfer_download_string_begin(&loop, s, strlen(s), &owner_cb, &o, &t), 0);
	char *got;
	size_t len;
	bool nil;
	download_all(t, 7, &got, &len, &nil);
	CHECK(!nil);
	CHECK_INT(len, strlen(s));
	CHECK(memcmp(got, s, len) == 0);
	ops->complete(t, 0, NULL);
	CHECK(o.completed && o.res.done);
	free(got);

	/* an empty string: the first answer is an empty bin */
	struct owner o2 = {0};
	CHECK_INT(transfer_download_string_begin(&loop, "", 0, &owner_cb, &o2, &t), 0);
	struct ans a = {0};
	ops->read(t, 1 << 30, ans_new(&a));
	CHECK(a.answered && a.status == 0 && a.has_data && a.len == 0);
	/* an upload message to a download is refused */
	ops->write(t, "x", 1, ans_new(&a));
	CHECK(a.answered && a.status < 0);
	ops->complete(t, 0, NULL);
	CHECK(o2.completed);
	free(a.data);

	/* a read asking for more than the cap gets at most the cap */
	_cleanup_free_ char *src = path_in("dl-big.bin");
	FILE *f = fopen(src, "wb");
	for (unsigned i = 0; i < KILN_TRANSFER_MAX_CHUNK + 100; i++)
		fputc('b', f);
	fclose(f);
	struct owner o3 = {0};
	CHECK_INT(transfer_download_file_begin(&loop, src, &owner_cb, &o3, &t), 0);
	ops->read(t, (size_t)1 << 40, ans_new(&a));
	CHECK(run_until(&a.answered));
	CHECK_INT(a.len, KILN_TRANSFER_MAX_CHUNK);
	ops->complete(t, -ECONNRESET, "lost");
	CHECK(o3.completed);
	free(a.data);
}

/* ---- directory uploads ---- */

static void upload_dir_from(const char *tarfile, const char *dest, uint64_t maxsize,
			    struct owner *o, struct ans *unpack)
{
	struct transfer *t = NULL;
	struct transfer_upload_opts uo = {
		.root = tmpdir, .dest = dest, .maxsize = maxsize, .mode = -1};
	CHECK_INT(transfer_upload_dir_begin(&loop, &uo, &owner_cb, o, &t), 0);
	if (!t)
		return;
	size_t len;
	_cleanup_free_ char *tar = read_file(tarfile, &len);
	CHECK(tar != NULL);
	struct ans a = {0};
	for (size_t off = 0; tar && off < len; off += 16384) {
		size_t n = len - off < 16384 ? len - off : 16384;
		do_write(t, tar + off, n, &a);
		if (a.status < 0)
			break;
	}
	free(a.data);
	ops->unpack(t, ans_new(unpack));
	CHECK(run_until(&unpack->answered));
	ops->complete(t, 0, NULL);
	CHECK(run_until(&o->completed)); /* at once, or once the write in flight ended */
}

TEST(upload_dir_real_tar)
{
	_cleanup_free_ char *cmd = xasprintf(
		"cd '%s' && mkdir -p srcdir/sub && echo hello > srcdir/a.txt && "
		"head -c 100000 /dev/urandom > srcdir/sub/b.bin && ln -s a.txt srcdir/link && "
		"tar -C srcdir -cf t.tar . && tar -C srcdir -czf t.tgz . && "
		"tar -C srcdir -cjf t.tbz2 .",
		tmpdir);
	CHECK_INT(system(cmd), 0);
	static const char *const names[] = {"t.tar", "t.tgz", "t.tbz2"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		struct owner o = {0};
		struct ans u = {0};
		_cleanup_free_ char *tarfile = path_in(names[i]);
		_cleanup_free_ char *dest = xasprintf("out-%zu/x", i);
		upload_dir_from(tarfile, dest, 0, &o, &u);
		CHECK_INT(u.status, 0);
		CHECK_INT(o.res.status, 0);
		CHECK(o.res.done);
		CHECK_INT(o.res.entries, 4);
		_cleanup_free_ char *check = xasprintf(
			"cd '%s' && cmp srcdir/a.txt %s/a.txt && cmp srcdir/sub/b.bin %s/sub/b.bin "
			"&& test \"$(readlink %s/link)\" = a.txt",
			tmpdir, dest, dest, dest);
		CHECK_INT(system(check), 0);
		/* the tar itself is gone */
		_cleanup_free_ char *left = xasprintf(
			"test -z \"$(find '%s' -maxdepth 1 -name '.kiln-upload-*')\"", tmpdir);
		CHECK_INT(system(left), 0);
		free(u.data);
	}
	/* the extracted size counts against maxsize */
	struct owner o = {0};
	struct ans u = {0};
	_cleanup_free_ char *tgz = path_in("t.tgz");
	upload_dir_from(tgz, "out-small", 50000, &o, &u);
	CHECK(u.status < 0);
	CHECK_INT(o.res.status, KILN_ETOOBIG);
	CHECK(!o.res.done);
	free(u.data);
}

/* ---- hostile tar streams, built here (ustar) ---- */

static void tar_header(char *h, const char *name, char type, const char *link, size_t size,
		       unsigned mode)
{
	memset(h, 0, 512);
	snprintf(h, 100, "%s", name);
	snprintf(h + 100, 8, "%07o", mode);
	snprintf(h + 108, 8, "%07o", 0);
	snprintf(h + 116, 8, "%07o", 0);
	snprintf(h + 124, 12, "%011zo", size);
	snprintf(h + 136, 12, "%011o", 0);
	h[156] = type;
	if (link)
		snprintf(h + 157, 100, "%s", link);
	memcpy(h + 257,
	       "ustar\0"
	       "00",
	       8);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += (unsigned char)h[i];
	snprintf(h + 148, 8, "%06o", sum);
}

/* a tar of one entry (plus a regular file before it) */
static size_t tar_build(char *out, const char *name, char type, const char *link, size_t size)
{
	size_t n = 0;
	tar_header(out, "ok.txt", '0', NULL, 3, 0644);
	memcpy(out + 512, "ok\n", 3);
	memset(out + 515, 0, 509);
	n = 1024;
	tar_header(out + n, name, type, link, size, 04755);
	n += 512;
	memset(out + n, 'z', size);
	n += (size + 511) / 512 * 512;
	memset(out + n, 0, 1024);
	return n + 1024;
}

TEST(untar_hostile)
{
	static const struct {
		const char *name;
		char type;
		const char *link;
		size_t size;
		const char *why;
	} cases[] = {
		{"/tmp/kiln-abs-escape", '0', NULL, 4, "absolute"},
		{"../escape.txt", '0', NULL, 4, "dotdot"},
		{"a/../../escape.txt", '0', NULL, 4, "dotdot inside"},
		{"evil", '2', "/etc", 0, "absolute symlink"},
		{"d/evil", '2', "../../..", 0, "symlink up"},
		{"hl", '1', "../outside", 0, "hard link out"},
		{"hl2", '1', "/etc/passwd", 0, "hard link absolute"},
		{"dev", '3', NULL, 0, "char device"},
		{"blk", '4', NULL, 0, "block device"},
		{"fifo", '6', NULL, 0, "fifo"},
	};
	char *buf = xmalloc(1 << 16);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t n =
			tar_build(buf, cases[i].name, cases[i].type, cases[i].link, cases[i].size);
		_cleanup_free_ char *dest = xasprintf("%s/h%zu", tmpdir, i);
		_cleanup_free_ char *outside = xasprintf("%s/escape.txt", tmpdir);
		mkdir(dest, 0755);
		char *err = NULL;
		int64_t r = transfer_untar_memory(buf, n, dest, 1 << 20, &err);
		if (r >= 0)
			TAP_FAIL("case '%s' extracted (%lld entries)", cases[i].why, (long long)r);
		CHECK(err != NULL);
		CHECK(access(outside, F_OK) < 0);
		CHECK(access("/tmp/kiln-abs-escape", F_OK) < 0);
		free(err);
	}
	/* the root entry as Python's tarfile names it ("/"): skipped */
	size_t rn = tar_build(buf, "/", '5', NULL, 0);
	_cleanup_free_ char *rdest = xasprintf("%s/hroot", tmpdir);
	mkdir(rdest, 0755);
	char *rerr = NULL;
	CHECK_INT(transfer_untar_memory(buf, rn, rdest, 1 << 20, &rerr), 1);
	free(rerr);
	/* setuid bits dropped; links inside accepted */
	size_t n = tar_build(buf, "d/inside", '2', "../ok.txt", 0);
	_cleanup_free_ char *dest = xasprintf("%s/hok", tmpdir);
	mkdir(dest, 0755);
	char *err = NULL;
	CHECK_INT(transfer_untar_memory(buf, n, dest, 1 << 20, &err), 2);
	free(err);
	n = tar_build(buf, "suid", '0', NULL, 10);
	err = NULL;
	CHECK_INT(transfer_untar_memory(buf, n, dest, 1 << 20, &err), 2);
	free(err);
	_cleanup_free_ char *suid = xasprintf("%s/suid", dest);
	struct stat st;
	CHECK_INT(stat(suid, &st), 0);
	CHECK_INT(st.st_mode & 07000, 0);
	/* a file over max_bytes */
	n = tar_build(buf, "big", '0', NULL, 5000);
	err = NULL;
	CHECK_INT(transfer_untar_memory(buf, n, dest, 4000, &err), KILN_ETOOBIG);
	free(err);
	/* garbage */
	memset(buf, 'q', 4096);
	err = NULL;
	CHECK(transfer_untar_memory(buf, 4096, dest, 1 << 20, &err) < 0);
	CHECK(err != NULL);
	free(err);
	free(buf);
}

TEST(untar_entry_cap)
{
	/* KILN_UNTAR_MAX_ENTRIES + 1 empty directories */
	size_t n = (size_t)KILN_UNTAR_MAX_ENTRIES + 1;
	size_t len = n * 512 + 1024;
	char *buf = xcalloc(1, len);
	for (size_t i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "d%zu/", i % 3);
		tar_header(buf + i * 512, name, '5', NULL, 0, 0755);
	}
	_cleanup_free_ char *dest = xasprintf("%s/cap", tmpdir);
	mkdir(dest, 0755);
	char *err = NULL;
	CHECK_INT(transfer_untar_memory(buf, len, dest, 1 << 20, &err), KILN_ETOOBIG);
	free(err);
	free(buf);
}

int main(void)
{
	if (sodium_init() < 0 || !mkdtemp(tmpdir))
		return 1;
	uv_loop_init(&loop);
	ops = transfer_rcmd_ops();
	RUN(relpath);
	RUN(upload_dest_escapes_refused);
	RUN(upload_file_chunks_mode_keepstamp);
	RUN(upload_over_maxsize_refused);
	RUN(upload_answered_ahead_then_backpressure);
	RUN(upload_utime_waits_for_queued_blocks);
	RUN(upload_ahead_bytes_capped);
	RUN(upload_too_many_unanswered_refused);
	RUN(upload_write_error_on_next_answer);
	RUN(upload_lost_mid_write);
	RUN(upload_complete_without_close);
	RUN(abort_removes_temp);
	RUN(download_file_bytes_then_empty_bin);
	RUN(download_string_and_huge_length_capped);
	RUN(upload_dir_real_tar);
	RUN(untar_hostile);
	RUN(untar_entry_cap);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	_cleanup_free_ char *rm = xasprintf("rm -rf '%s'", tmpdir);
	if (system(rm) != 0)
		return 1;
	return tap_done();
}
