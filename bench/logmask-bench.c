/*
 * Micro benchmark of the secret masker (src/master/logmask.c): 50 MB of
 * compiler-like output (gcc command lines, warnings with paths and notes,
 * progress lines) fed in 64 KiB pieces, as build.c feeds a step's output,
 * through a masker with no secret and with five (a token, a password with
 * URL-encodable bytes, an access key, a URL with credentials, a multi-line
 * private key), each of which the text contains a few times.  Prints MB/s
 * and the masking's added cost, plus one JSON line.  Not a test gate; built
 * and run by bench/logmask.sh.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xalloc.h"
#include "master/logmask.h"

#define CHUNK (64u << 10)

static size_t g_bytes, g_marks;

static void bench_emit(void *ud, char stream, const char *text, size_t len)
{
	(void)ud;
	(void)stream;
	g_bytes += len;
	for (const char *p = text; (p = memchr(p, '<', (size_t)(text + len - p))); p++)
		g_marks += !strncmp(p, LOGMASK_MARK, strlen(LOGMASK_MARK));
}

static const char *const SECRETS[] = {
	"ghp_R4nd0mT0kenValue1234567890abcdefXYZ",
	"S3cure!pass#2026 word",
	"AKIAIOSFODNN7EXAMPLE",
	"https://deploy:hunter2hunter2@git.example.org/repo.git",
	"-----BEGIN OPENSSH PRIVATE KEY-----\n"
	"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
	"QyNTUxOQAAACDm0fPq7w1t2mJmU6Sb8j2l9h0bq3Xy7Q2l4cV8tJ3eYwAAAJgx0c1rMdHN\n"
	"awAAAAtzc2gtZWQyNTUxOQAAACDm0fPq7w1t2mJmU6Sb8j2l9h0bq3Xy7Q2l4cV8tJ3eYw\n"
	"-----END OPENSSH PRIVATE KEY-----",
};
#define NSECRETS 5

/* About `total` bytes of build output; every ~20,000th line shows a secret. */
static char *bench_text(size_t total, size_t *ret_len)
{
	static const char *const lines[] = {
		"gcc -O2 -g -Wall -Wextra -I../src -I/usr/include/lua5.4 -D_GNU_SOURCE -MD -MQ "
		"src/master/kiln-master.p/build.c.o -MF src/master/kiln-master.p/build.c.o.d -o "
		"src/master/kiln-master.p/build.c.o -c ../src/master/build.c\n",
		"../src/master/build.c:412:17: warning: unused variable 'len' "
		"[-Wunused-variable]\n",
		"  412 |         size_t len = strlen(name);\n",
		"      |                ^~~\n",
		"../src/common/buf.c: In function 'buf_addf':\n",
		"[123/456] Compiling C object src/worker/kiln-worker.p/runner.c.o\n",
		"In file included from /usr/include/stdio.h:27,\n",
		"make[2]: Entering directory '/home/build/project/lib'\n",
		"PASS: test-suite 17 - string handling with UTF-8 input (0.003 s)\n",
	};
	char *t = xmalloc(total + 4096);
	size_t n = 0, i = 0;
	while (n < total) {
		const char *l = lines[i % (sizeof(lines) / sizeof(lines[0]))];
		if (i % 20000 == 19999)
			n += (size_t)snprintf(t + n, 4096, "+ git clone %s (token %s)\n",
					      SECRETS[3], SECRETS[i / 20000 % 3]);
		size_t ll = strlen(l);
		memcpy(t + n, l, ll);
		n += ll;
		i++;
	}
	*ret_len = n;
	return t;
}

static double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds to push t through a masker over nsec secrets (best of
 * reps), in 64 KiB pieces or (lines) a line at a time as a worker's
 * updates may bring it. */
static double bench_run(const char *t, size_t n, size_t nsec, int reps, bool lines)
{
	double best = 1e9;
	for (int r = 0; r < reps; r++) {
		g_bytes = g_marks = 0;
		double t0 = bench_now();
		struct logmask *m = logmask_new(SECRETS, nsec, bench_emit, NULL);
		for (size_t i = 0, k; i < n; i += k) {
			const char *nl = lines ? memchr(t + i, '\n', n - i) : NULL;
			k = nl ? (size_t)(nl - (t + i)) + 1 : i + CHUNK < n ? CHUNK : n - i;
			logmask_feed(m, 'o', t + i, k);
		}
		logmask_flush(m);
		logmask_free(m);
		double s = bench_now() - t0;
		if (s < best)
			best = s;
	}
	return best;
}

int main(int argc, char **argv)
{
	size_t total = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 50000000u;
	int reps = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 3;
	size_t n;
	char *t = bench_text(total, &n);
	double mb = (double)n / 1e6;
	double s0 = bench_run(t, n, 0, reps, false);
	size_t out0 = g_bytes;
	double s5 = bench_run(t, n, NSECRETS, reps, false);
	size_t marks = g_marks;
	double l0 = bench_run(t, n, 0, reps, true);
	double l5 = bench_run(t, n, NSECRETS, reps, true);
	printf("%.1f MB of compiler output, best of %d, CPU time\n", mb, reps);
	printf("  64 KiB pieces, no secret : %.3f s %7.1f MB/s (out %zu bytes)\n", s0, mb / s0,
	       out0);
	printf("  64 KiB pieces, 5 secrets : %.3f s %7.1f MB/s (%zu masked runs)\n", s5, mb / s5,
	       marks);
	printf("  line pieces,   no secret : %.3f s %7.1f MB/s\n", l0, mb / l0);
	printf("  line pieces,   5 secrets : %.3f s %7.1f MB/s\n", l5, mb / l5);
	printf("logmask-bench {\"mb\": %.1f, \"s_nosecret\": %.4f, \"s_5secrets\": %.4f, "
	       "\"s_lines_nosecret\": %.4f, \"s_lines_5secrets\": %.4f, \"masked_runs\": %zu}\n",
	       mb, s0, s5, l0, l5, marks);
	free(t);
	return 0;
}
