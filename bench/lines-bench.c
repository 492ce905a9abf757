/*
 * Micro benchmark of kiln-worker's line splitter and update batcher
 * (src/worker/lines.c): 50 MB of 64-byte lines fed in 64 KiB chunks (the
 * runner's read size), reported in ns per input byte.  Not a test gate; build
 * by hand against a build dir's static libraries, e.g.
 *   cc -O2 -Isrc -Ibuild-perf1/src -o /tmp/lines-bench bench/lines-bench.c \
 *      build-perf1/src/worker/libkiln-worker-core.a build-perf1/src/proto/libkiln-proto.a \
 *      build-perf1/src/common/libkiln-common.a $(pkg-config --libs msgpack-c) -lm
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xalloc.h"
#include "proto/msg.h"
#include "worker/lines.h"

#define TOTAL (50u << 20)
#define CHUNK (64u << 10)

static size_t g_lines, g_bytes;

static void emit_count(void *ud, const char *line, size_t len, double t)
{
	(void)ud;
	(void)t;
	g_lines++;
	g_bytes += len + (unsigned char)line[0];
}

static void emit_batch(void *ud, const char *line, size_t len, double t)
{
	batch_add_line(ud, "stdout", NULL, line, len, t);
}

static struct batch *g_batch;
static int g_pack;

static void on_flush(void *ud)
{
	(void)ud;
	if (g_pack) {
		struct proto_enc e;
		proto_enc_init(&e);
		batch_pack(g_batch, &e);
		g_bytes += e.sb.size;
		proto_enc_release(&e);
	} else {
		batch_clear(g_batch);
	}
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* kind: 0 ASCII lines, 1 lines with 2-byte UTF-8, 2 \r\n lines, 3 one 10 KiB "line" per
 * 10 KiB (cut at max_line), 4 progress bars (\r without \n) */
static char *make_input(int kind)
{
	char *p = xmalloc(TOTAL);
	size_t i = 0;
	unsigned n = 0;
	while (i < TOTAL) {
		char line[128];
		int k;
		switch (kind) {
		case 1:
			k = snprintf(line, sizeof(line),
				     "caf\xc3\xa9 %08u: compiling \xc3\xa9l\xc3\xa9ment.c ok ok ok "
				     "ok ok\n",
				     n);
			break;
		case 2:
			k = snprintf(line, sizeof(line),
				     "line %08u: the quick brown fox jumps over the dog\r\n", n);
			break;
		case 4:
			k = snprintf(line, sizeof(line),
				     "progress %08u of 99999999 [=====>          ] 12%%\r", n);
			break;
		default:
			k = snprintf(line, sizeof(line),
				     "line %08u: the quick brown fox jumps over the lazy dog\n", n);
			break;
		}
		if (kind == 3) {
			memset(line, 'x', 64);
			k = 64;
			if (n % 160 == 159)
				line[63] = '\n';
		}
		size_t m = (size_t)k;
		if (m > TOTAL - i)
			m = TOTAL - i;
		memcpy(p + i, line, m);
		i += m;
		n++;
	}
	return p;
}

static void run(const char *name, int kind, int mode)
{
	char *in = make_input(kind);
	struct batch b;
	struct lines l;
	g_batch = &b;
	g_pack = mode == 2;
	batch_init(&b, 64u << 10, on_flush, NULL);
	lines_init(&l, 4096, mode ? emit_batch : emit_count, &b);
	g_lines = g_bytes = 0;
	double best = 1e9;
	for (int rep = 0; rep < 5; rep++) {
		double t0 = now();
		for (size_t off = 0; off < TOTAL; off += CHUNK)
			lines_feed(&l, in + off, TOTAL - off < CHUNK ? TOTAL - off : CHUNK, 1.0);
		lines_finish(&l);
		batch_flush(&b);
		double dt = now() - t0;
		if (dt < best)
			best = dt;
	}
	printf("%-28s %-14s %6.2f ns/byte (%zu lines)\n", name,
	       mode == 0   ? "split"
	       : mode == 1 ? "split+batch"
			   : "split+batch+pack",
	       best * 1e9 / TOTAL, g_lines / 5);
	lines_release(&l);
	batch_release(&b);
	free(in);
}

int main(int argc, char **argv)
{
	static const char *const names[] = {"ascii 64-byte lines", "utf-8 lines", "crlf lines",
					    "10 KiB lines (cut)", "progress \\r"};
	int only = argc > 1 ? (int)strtol(argv[1], NULL, 10) : -1;
	for (int kind = 0; kind < 5; kind++) {
		if (only >= 0 && kind != only)
			continue;
		for (int mode = 0; mode < 3; mode++)
			run(names[kind], kind, mode);
	}
	return 0;
}
