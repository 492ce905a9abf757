/*
 * The raw loopback copy the 1 GB upload is compared with (bench/run upload):
 *   loopcopy SRC DEST [BLOCK]
 * A child process reads SRC in BLOCK-byte reads (default 256 KiB, the upload
 * step's blocksize) and writes them to a TCP connection on 127.0.0.1; the
 * parent reads the connection and writes what arrives to DEST (no fsync, as
 * the master's upload does none).  Prints one JSON line: bytes, wall seconds
 * from before the fork to DEST closed and the child reaped, CPU seconds of
 * both processes.  Not a test gate.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double lc_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double lc_cpu(int who)
{
	struct rusage ru;
	if (getrusage(who, &ru) < 0)
		return 0;
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static int lc_write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Copies IN to OUT in BLOCK-byte reads; returns the bytes copied or -1. */
static long long lc_pump(int in, int out, char *buf, size_t block)
{
	long long total = 0;
	for (;;) {
		ssize_t r = read(in, buf, block);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return total;
		if (lc_write_all(out, buf, (size_t)r) < 0)
			return -1;
		total += r;
	}
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: loopcopy SRC DEST [BLOCK]\n");
		return 2;
	}
	size_t block = argc > 3 ? (size_t)strtoul(argv[3], NULL, 10) : 256u << 10;
	char *buf = block ? malloc(block) : NULL;
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	if (!buf || ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(ls, 1) < 0 || getsockname(ls, (struct sockaddr *)&sa, &sl) < 0) {
		perror("loopcopy: setup");
		return 1;
	}
	double t0 = lc_now();
	pid_t pid = fork();
	if (pid < 0) {
		perror("loopcopy: fork");
		return 1;
	}
	if (pid == 0) {
		int in = open(argv[1], O_RDONLY | O_CLOEXEC);
		int s = socket(AF_INET, SOCK_STREAM, 0);
		if (in < 0 || s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			perror("loopcopy: sender");
			_exit(1);
		}
		_exit(lc_pump(in, s, buf, block) < 0 || close(s) < 0 ? 1 : 0);
	}
	int c = accept(ls, NULL, NULL);
	int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (c < 0 || out < 0) {
		perror("loopcopy: receiver");
		return 1;
	}
	long long n = lc_pump(c, out, buf, block);
	int st = 0;
	if (n < 0 || close(out) < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0) {
		fprintf(stderr, "loopcopy: copy failed\n");
		return 1;
	}
	double wall = lc_now() - t0;
	printf("{\"bytes\": %lld, \"seconds\": %.4f, \"cpu_s\": %.4f}\n", n, wall,
	       lc_cpu(RUSAGE_SELF) + lc_cpu(RUSAGE_CHILDREN));
	close(c);
	close(ls);
	free(buf);
	return 0;
}
