/*
 * Unit tests for src/common: bounded buffers, number parsing, error names.
 */
#include "tap.h"
#include "wait.h" /* slice "faults": TEST_GUARD_MS */
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/str.h"
#include "common/xalloc.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

TEST(buf_starts_empty_and_terminated)
{
	struct buf b;
	buf_init(&b, 100);
	CHECK_INT(b.len, 0);
	CHECK_STR(b.ptr, "");
	buf_release(&b);
}

TEST(buf_appends_and_formats)
{
	struct buf b;
	buf_init(&b, 1000);
	CHECK_INT(buf_adds(&b, "abc"), 0);
	CHECK_INT(buf_addf(&b, "-%d-", 42), 0);
	CHECK_INT(buf_addch(&b, 'z'), 0);
	CHECK_STR(b.ptr, "abc-42-z");
	buf_consume(&b, 4);
	CHECK_STR(b.ptr, "42-z");
	char *p = buf_detach(&b, NULL);
	CHECK_STR(p, "42-z");
	CHECK_INT(b.len, 0);
	free(p);
}

TEST(buf_refuses_past_cap)
{
	struct buf b;
	buf_init(&b, 5);
	CHECK_INT(buf_adds(&b, "12345"), 0);
	CHECK_INT(buf_error(&b), 0);
	CHECK_INT(buf_adds(&b, "6"), -E2BIG);
	/* sticky: the truncated text is gone, so it cannot pass for a whole one */
	CHECK_STR(b.ptr, "");
	CHECK_INT(b.len, 0);
	CHECK_INT(buf_error(&b), -E2BIG);
	/* and later appends that would fit are refused too */
	CHECK_INT(buf_addf(&b, "%s", "x"), -E2BIG);
	CHECK_INT(buf_addch(&b, 'x'), -E2BIG);
	CHECK_INT(buf_grow(&b, 1), -E2BIG);
	CHECK_INT(b.len, 0);
	CHECK_INT(buf_error(&b), -E2BIG);
	/* until the buffer is reset */
	buf_reset(&b);
	CHECK_INT(buf_error(&b), 0);
	CHECK_INT(buf_adds(&b, "ok"), 0);
	CHECK_STR(b.ptr, "ok");
	buf_release(&b);
	CHECK_INT(buf_error(&b), 0);
	CHECK_INT(b.max, 5);
}

TEST(buf_grows_large)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	for (int i = 0; i < 10000; i++)
		CHECK_INT(buf_adds(&b, "0123456789"), 0);
	CHECK_INT(b.len, 100000);
	CHECK_INT(b.ptr[b.len], 0);
	buf_release(&b);
}

TEST(array_grow_amortised_and_checked)
{
	int *v = NULL;
	size_t n = 0, cap = 0, reallocs = 0;
	for (int i = 0; i < 100000; i++) {
		size_t before = cap;
		ARRAY_GROW(v, n + 1, cap);
		if (cap != before)
			reallocs++;
		CHECK(cap >= n + 1);
		v[n++] = i;
	}
	CHECK(reallocs < 40); /* geometric, not one element at a time */
	CHECK_INT(v[99999], 99999);
	free(v);
	CHECK_INT(xmul(3, 5), 15);
	CHECK(array_grow_grown(SIZE_MAX - 1) == SIZE_MAX);
}

/* runs log_info() with stderr sent to a temporary file; returns what it wrote */
static char *log_capture(const char *text)
{
	FILE *tmp = tmpfile();
	int saved = dup(2);
	fflush(stderr);
	dup2(fileno(tmp), 2);
	log_info("%s", text);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	long n = ftell(tmp);
	char *out = xmalloc((size_t)n + 1);
	rewind(tmp);
	size_t got = fread(out, 1, (size_t)n, tmp);
	out[got] = '\0';
	fclose(tmp);
	return out;
}

TEST(log_cuts_visibly_and_escapes)
{
	char *s = log_capture("a\nb");
	CHECK(strstr(s, "a\\x0ab\n") != NULL);
	free(s);

	char big[20001];
	memset(big, 'x', 20000);
	big[20000] = '\0';
	s = log_capture(big);
	CHECK(strstr(s, "... [20000 bytes, cut]\n") != NULL);
	CHECK(strlen(s) < 9000);
	free(s);
}

TEST(str_utf8_sanitize_replaces_invalid)
{
	struct buf b;
	buf_init(&b, 64);
	/* valid 2/3/4-byte text kept; a lone continuation, an overlong, a
	 * surrogate, NUL and a cut sequence each become U+FFFD */
	static const char in[] =
		"a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\x80|\xc0\xaf|\xed\xa0\x80|";
	CHECK_INT(str_utf8_sanitize(&b, in, sizeof(in) - 1), 0);
	CHECK_INT(str_utf8_sanitize(&b, "\0|\xe2\x82", 4), 0);
	CHECK_STR(b.ptr,
		  "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd|"
		  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd");
	buf_release(&b);
	buf_init(&b, 2);
	CHECK_INT(str_utf8_sanitize(&b, "\x80", 1), -E2BIG);
	buf_release(&b);
}

TEST(str_parses_numbers_strictly)
{
	unsigned long long v = 0;
	CHECK_INT(str_to_u64(str_from("1234"), &v), 0);
	CHECK_INT(v, 1234);
	CHECK_INT(str_to_u64(str_from("12a"), &v), -EINVAL);
	CHECK_INT(str_to_u64(str_from(""), &v), -EINVAL);
	CHECK_INT(str_to_u64(str_from("99999999999999999999"), &v), -ERANGE);
	long long s = 0;
	CHECK_INT(str_to_i64("-7", &s), 0);
	CHECK_INT(s, -7);
	CHECK_INT(str_to_i64("7x", &s), -EINVAL);
}

TEST(err_names_both_kinds)
{
	CHECK_STR(err_str(-ENOENT), "No such file or directory");
	CHECK_STR(err_str(KILN_EPROTO), "protocol error");
}

TEST(str_relpath_check_finds_the_first_problem)
{
#define RP(s, ctl) str_relpath_check((s), sizeof(s) - 1, 16, (ctl))
	CHECK_INT(RP("a/b.log", true), STR_RELPATH_OK);
	CHECK_INT(RP("a/..b/c..", true), STR_RELPATH_OK);
	CHECK_INT(RP("", true), STR_RELPATH_EMPTY);
	CHECK_INT(RP("0123456789abcdefg", true), STR_RELPATH_TOO_LONG);
	CHECK_INT(RP("a\tb", true), STR_RELPATH_CONTROL);
	CHECK_INT(RP("a\0b", true), STR_RELPATH_CONTROL);
	CHECK_INT(RP("a\tb", false), STR_RELPATH_OK);
	CHECK_INT(RP("/etc/x", true), STR_RELPATH_ABSOLUTE);
	CHECK_INT(RP("..", true), STR_RELPATH_DOTDOT);
	CHECK_INT(RP("a/../../x", true), STR_RELPATH_DOTDOT);
	CHECK_INT(RP("a/..", true), STR_RELPATH_DOTDOT);
	CHECK_INT(RP("a\0/..", false), STR_RELPATH_DOTDOT); /* the whole length, past a NUL */
#undef RP
}

TEST(xasprintf_formats)
{
	char *s = xasprintf("%s=%d", "a", 1);
	CHECK_STR(s, "a=1");
	free(s);
}

/* ---- proc: child processes on a libuv loop ------------------------------------------ */

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/proc.h"

struct proc_rec {
	struct proc_capture cap;
	bool done, gave_up;
	int64_t status;
	int sig;
	bool started; /* "started" seen on stdout */
};

static int proc_rec_output(void *ud, int stream, const char *data, size_t len)
{
	struct proc_rec *t = ud;
	int r = proc_capture_add(&t->cap, stream, data, len);
	if (strstr(t->cap.out.ptr, "started"))
		t->started = true;
	return r;
}

static void proc_rec_done(void *ud, int64_t status, int sig, bool gave_up)
{
	struct proc_rec *t = ud;
	t->done = true;
	t->status = status;
	t->sig = sig;
	t->gave_up = gave_up;
}

static const struct proc_ops proc_rec_ops = {proc_rec_output, proc_rec_done};

static void proc_guard_fired(uv_timer_t *t)
{
	uv_stop(t->loop);
}

/* Runs loop until *flag or ms pass (the guard); returns *flag. */
static bool proc_run_until(uv_loop_t *loop, const bool *flag, unsigned ms)
{
	uv_timer_t g;
	uv_timer_init(loop, &g);
	uint64_t end = clock_mono_ms() + ms;
	while (!*flag && clock_mono_ms() < end) {
		uv_timer_start(&g, proc_guard_fired, 50, 0);
		uv_run(loop, UV_RUN_ONCE);
	}
	uv_close((uv_handle_t *)&g, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return *flag;
}

static void proc_loop_finish(uv_loop_t *loop)
{
	uint64_t end = clock_mono_ms() + TEST_GUARD_MS;
	while (uv_run(loop, UV_RUN_NOWAIT) && clock_mono_ms() < end)
		usleep(1000); /* bounded: handle closes */
	CHECK_INT(uv_loop_close(loop), 0);
}

static int proc_run(uv_loop_t *loop, const char *script, struct proc_rec *t, unsigned drain_ms,
		    struct proc **ret)
{
	char *argv[] = {"sh", "-c", (char *)script, NULL};
	extern char **environ;
	struct proc_opts o = {.argv = argv, .env = environ, .cwd = "/", .drain_ms = drain_ms};
	return proc_start(loop, &o, &proc_rec_ops, t, ret);
}

TEST(proc_captures_output_and_exit)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct proc_rec t = {0};
	proc_capture_init(&t.cap, 1000, 1000);
	struct proc *p;
	CHECK_INT(proc_run(&loop, "printf out; printf err >&2; exit 3", &t, 0, &p), 0);
	CHECK(proc_run_until(&loop, &t.done, TEST_GUARD_MS));
	CHECK_INT(t.status, 3);
	CHECK_INT(t.sig, 0);
	CHECK_STR(t.cap.out.ptr, "out");
	CHECK_STR(t.cap.err.ptr, "err");
	CHECK(!proc_capture_out_over(&t.cap) && !t.cap.err_cut);
	/* a program that cannot be found: an error, no callbacks */
	char *argv[] = {"/nonexistent/kiln-test", NULL};
	struct proc_opts o = {.argv = argv, .cwd = "/"};
	struct proc_rec t2 = {0};
	CHECK(proc_start(&loop, &o, &proc_rec_ops, &t2, &p) < 0);
	proc_loop_finish(&loop);
	CHECK(!t2.done);
	proc_capture_release(&t.cap);
}

TEST(proc_capture_caps)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	/* stdout past its cap: nothing partial kept, the tool killed */
	struct proc_rec t = {0};
	proc_capture_init(&t.cap, 1000, 1000);
	struct proc *p;
	CHECK_INT(proc_run(&loop, "exec yes", &t, 0, &p), 0);
	CHECK(proc_run_until(&loop, &t.done, TEST_GUARD_MS));
	CHECK(proc_capture_out_over(&t.cap));
	CHECK_INT(t.cap.out.len, 0);
	CHECK_INT(t.sig, SIGKILL);
	CHECK(proc_capture_add(&t.cap, PROC_STDOUT, "x", 1) < 0);
	proc_capture_reset(&t.cap);
	CHECK(!proc_capture_out_over(&t.cap));
	/* stderr keeps its head */
	struct proc_rec t2 = {0};
	proc_capture_init(&t2.cap, 1000, 4);
	CHECK_INT(proc_run(&loop, "printf abcdefgh >&2", &t2, 0, &p), 0);
	CHECK(proc_run_until(&loop, &t2.done, TEST_GUARD_MS));
	CHECK_INT(t2.status, 0);
	CHECK_STR(t2.cap.err.ptr, "abcd");
	CHECK(t2.cap.err_cut);
	proc_loop_finish(&loop);
	proc_capture_release(&t.cap);
	proc_capture_release(&t2.cap);
}

TEST(proc_kills_the_group_and_bounds_the_drain)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); /* not at init's mercy */
	/* SIGTERM to the group: the backgrounded sleep goes too */
	struct proc_rec t = {0};
	proc_capture_init(&t.cap, 1000, 1000);
	struct proc *p;
	CHECK_INT(proc_run(&loop, "sleep 30 & echo started; wait", &t, 0, &p), 0);
	CHECK(proc_run_until(&loop, &t.started, TEST_GUARD_MS));
	pid_t pgid = proc_pid(p);
	uint64_t t0 = clock_mono_ms();
	proc_kill(p, SIGTERM, 5);
	CHECK(proc_run_until(&loop, &t.done, TEST_GUARD_MS));
	CHECK_INT(t.sig, SIGTERM);
	CHECK(clock_mono_ms() - t0 < 5000); /* no SIGKILL escalation was needed */
	/* the orphaned sleep comes back to us (subreaper): gone once reaped */
	uint64_t end = clock_mono_ms() + TEST_GUARD_MS;
	while (kill(-pgid, 0) == 0 && clock_mono_ms() < end) {
		(void)waitpid(-1, NULL, WNOHANG);
		usleep(10000);
	}
	CHECK(kill(-pgid, 0) < 0 && errno == ESRCH);
	/* the leader exits while a child keeps its stdout: done after the drain */
	struct proc_rec t2 = {0};
	proc_capture_init(&t2.cap, 1000, 1000);
	CHECK_INT(proc_run(&loop, "sleep 30 & echo started; exit 0", &t2, 200, &p), 0);
	pgid = proc_pid(p);
	t0 = clock_mono_ms();
	CHECK(proc_run_until(&loop, &t2.done, TEST_GUARD_MS));
	CHECK_INT(t2.status, 0);
	CHECK(clock_mono_ms() - t0 < 15000); /* the drain's 200 ms, not the sleep's 30 s */
	CHECK(t2.started);
	(void)kill(-pgid, SIGKILL); /* the straggler */
	proc_loop_finish(&loop);
	(void)waitpid(-1, NULL, WNOHANG);
	proc_capture_release(&t.cap);
	proc_capture_release(&t2.cap);
}

/* ---- fsutil: mkdir -p --------------------------------------------------------------- */

#include <fcntl.h>
#include <sys/stat.h>

#include "common/fsutil.h"

static bool fsutil_is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

TEST(fsutil_mkdir_p_makes_parents)
{
	char dir[] = "/tmp/kiln-test-fsutil.XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char *deep = xasprintf("%s/a/b//c/", dir);
	CHECK_INT(fsutil_mkdir_p(deep, 0755), 0);
	char *c = xasprintf("%s/a/b/c", dir);
	CHECK(fsutil_is_dir(c));
	CHECK_INT(fsutil_mkdir_p(c, 0755), 0); /* already there */
	/* a file in the way, as the leaf or as a parent */
	char *file = xasprintf("%s/a/f", dir);
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0644);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	CHECK_INT(fsutil_mkdir_p(file, 0755), -ENOTDIR);
	char *under = xasprintf("%s/x/y", file);
	CHECK_INT(fsutil_mkdir_p(under, 0755), -ENOTDIR);
	CHECK_INT(fsutil_mkdir_p("", 0755), -ENOENT);
	/* parents of a file path */
	char *dl = xasprintf("%s/d/e/file.bin", dir);
	CHECK_INT(fsutil_mkdir_parents(dl, 0755), 0);
	char *de = xasprintf("%s/d/e", dir);
	CHECK(fsutil_is_dir(de));
	CHECK(!fsutil_is_dir(dl));
	CHECK_INT(fsutil_mkdir_parents("plain-name", 0755), 0);
	char *cmd = xasprintf("rm -rf '%s'", dir);
	CHECK_INT(system(cmd), 0);
	free(cmd);
	free(de);
	free(dl);
	free(under);
	free(file);
	free(c);
	free(deep);
}

int main(void)
{
	RUN(buf_starts_empty_and_terminated);
	RUN(buf_appends_and_formats);
	RUN(buf_refuses_past_cap);
	RUN(buf_grows_large);
	RUN(array_grow_amortised_and_checked);
	RUN(log_cuts_visibly_and_escapes);
	RUN(str_utf8_sanitize_replaces_invalid);
	RUN(str_parses_numbers_strictly);
	RUN(err_names_both_kinds);
	RUN(str_relpath_check_finds_the_first_problem);
	RUN(xasprintf_formats);
	RUN(proc_captures_output_and_exit);
	RUN(proc_capture_caps);
	RUN(proc_kills_the_group_and_bounds_the_drain);
	RUN(fsutil_mkdir_p_makes_parents);
	return tap_done();
}
