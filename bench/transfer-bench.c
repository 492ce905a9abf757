/*
 * The master's side of a file upload (src/master/transfer.c), timed against
 * a raw copy: SIZE_MB of a file read in 256 KiB blocks (as the worker reads
 * them) and handed to transfer's rcmd_ops one chunk at a time, each waiting
 * for its answer (the protocol's stop-and-wait), then closed into place;
 * against read()/write() of the same blocks into a plain file.  Prints one
 * JSON line per repetition: seconds for each, and the process's peak RSS.
 * No WebSocket here: this is the disk and hashing path of the master.
 *
 *   build/src/master/bench-transfer [SIZE_MB [DIR [REPS]]]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "common/xalloc.h"
#include "master/engine-int.h"
#include "master/transfer.h"

#define BLOCK (256u << 10)

static uv_loop_t loop;
static bool answered, completed;
static int answer_status;

struct bench_answer {
	struct rcmd_answer a;
};

static void bench_send(struct rcmd_answer *a, int status, const char *message, const void *data,
		       size_t len)
{
	(void)message;
	(void)data;
	(void)len;
	answered = true;
	answer_status = status;
	free(a);
}

static struct rcmd_answer *bench_answer(void)
{
	struct bench_answer *b = xcalloc(1, sizeof(*b));
	b->a.send = bench_send;
	answered = false;
	return &b->a;
}

static void bench_complete(void *ud, int status, const char *failure,
			   const struct transfer_result *res)
{
	(void)ud;
	(void)failure;
	completed = true;
	if (status < 0 || res->status < 0 || !res->done) {
		fprintf(stderr, "upload failed: %s\n", res->error ? res->error : "?");
		exit(1);
	}
}

static double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* user + system CPU seconds of the whole process (thread-pool threads too):
 * on a loaded machine these repeat where wall seconds do not */
static double bench_cpu(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static long bench_rss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static double bench_raw(const char *src, const char *dst, char *buf)
{
	double t0 = bench_now();
	int in = open(src, O_RDONLY), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (in < 0 || out < 0)
		exit(1);
	ssize_t n;
	while ((n = read(in, buf, BLOCK)) > 0)
		if (write(out, buf, (size_t)n) != n)
			exit(1);
	close(in);
	close(out);
	return bench_now() - t0;
}

static double bench_kiln(const char *src, const char *dir, char *buf)
{
	static const struct transfer_cb cb = {NULL, bench_complete};
	struct transfer_upload_opts o = {.root = dir, .dest = "kiln.out", .mode = -1};
	const struct rcmd_ops *ops = transfer_rcmd_ops();
	double t0 = bench_now();
	struct transfer *t;
	if (transfer_upload_file_begin(&loop, &o, &cb, NULL, &t) < 0)
		exit(1);
	int in = open(src, O_RDONLY);
	ssize_t n;
	while ((n = read(in, buf, BLOCK)) > 0) {
		ops->write(t, buf, (size_t)n, bench_answer());
		while (!answered)
			uv_run(&loop, UV_RUN_ONCE);
		if (answer_status < 0)
			exit(1);
	}
	close(in);
	ops->close_writer(t, bench_answer());
	while (!answered)
		uv_run(&loop, UV_RUN_ONCE);
	completed = false;
	ops->complete(t, 0, NULL);
	if (!completed)
		exit(1);
	return bench_now() - t0;
}

int main(int argc, char **argv)
{
	long mb = argc > 1 ? atol(argv[1]) : 1024;
	const char *dir = argc > 2 ? argv[2] : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	int reps = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 3;
	if (mb <= 0 || reps <= 0 || sodium_init() < 0)
		return 2;
	uv_loop_init(&loop);
	char *src = xasprintf("%s/bench-transfer.src", dir);
	char *raw = xasprintf("%s/raw.out", dir);
	char *kiln = xasprintf("%s/kiln.out", dir);
	char *buf = xmalloc(BLOCK);
	FILE *f = fopen(src, "wb");
	for (long i = 0; f && i < mb * 4; i++) {
		for (size_t j = 0; j < BLOCK; j++)
			buf[j] = (char)(i * 31 + j * 7);
		fwrite(buf, 1, BLOCK, f);
	}
	if (!f || fclose(f) != 0)
		return 1;
	long rss0 = bench_rss_kb();
	for (int r = 0; r < reps; r++) {
		double c0 = bench_cpu();
		double traw = bench_raw(src, raw, buf);
		double c1 = bench_cpu();
		double tkiln = bench_kiln(src, dir, buf);
		double c2 = bench_cpu();
		printf("{\"mb\": %ld, \"raw_s\": %.3f, \"kiln_s\": %.3f, \"ratio\": %.3f, "
		       "\"raw_cpu_s\": %.3f, \"kiln_cpu_s\": %.3f, "
		       "\"rss_start_kb\": %ld, \"rss_peak_kb\": %ld}\n",
		       mb, traw, tkiln, traw / tkiln, c1 - c0, c2 - c1, rss0, bench_rss_kb());
		fflush(stdout);
		unlink(raw);
		unlink(kiln);
	}
	unlink(src);
	free(src);
	free(raw);
	free(kiln);
	free(buf);
	uv_loop_close(&loop);
	return 0;
}
