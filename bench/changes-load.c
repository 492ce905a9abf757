/*
 * Load generator for bench/changes.sh: C keep-alive connections (one thread
 * each) posting Buildbot base-dialect changes to /change_hook/base as fast
 * as the master answers, so the client is not what is measured.
 * usage: changes-load HOST PORT N CONNECTIONS FIRST_SEQ
 * Prints "SECONDS" (wall time from the first request to the last answer).
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *host;
static int port, per, first;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int request(char *out, size_t size, int seq)
{
	char body[1024];
	int bl = snprintf(
		body, sizeof(body),
		"author=Dev+%d+%%3Cdev%d%%40example.org%%3E&comments=change+%d%%0A%%0Asome+"
		"description&files=%%5B%%22src%%2Ffile%d.c%%22%%2C+%%22include%%2Fh%d.h%%22"
		"%%5D&branch=%s&revision=%040x&repository=https%%3A%%2F%%2Fexample.org%%2F"
		"repo.git&project=bench&category=push&properties=%%7B%%22seq%%22%%3A+%d%%7D",
		seq % 50, seq % 50, seq, seq % 97, seq % 13, seq % 3 ? "main" : "dev", seq, seq);
	return snprintf(out, size,
			"POST /change_hook/base HTTP/1.1\r\nHost: %s\r\nContent-Type: "
			"application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s",
			host, bl, body);
}

static void *run(void *arg)
{
	int k = (int)(long)arg;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, host, &sa.sin_addr);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		exit(1);
	}
	char req[2048], buf[4096];
	for (int i = 0; i < per; i++) {
		int n = request(req, sizeof(req), first + k * per + i);
		if (write(fd, req, (size_t)n) != n) {
			perror("write");
			exit(1);
		}
		/* one answer: headers, then Content-Length bytes */
		size_t got = 0;
		long want = -1;
		for (;;) {
			ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
			if (r <= 0) {
				fprintf(stderr, "connection closed\n");
				exit(1);
			}
			got += (size_t)r;
			buf[got] = '\0';
			char *end = strstr(buf, "\r\n\r\n");
			if (!end)
				continue;
			if (want < 0) {
				if (strncmp(buf, "HTTP/1.1 200", 12)) {
					fprintf(stderr, "bad answer: %.60s\n", buf);
					exit(1);
				}
				char *cl = strcasestr(buf, "content-length:");
				want = cl ? strtol(cl + 15, NULL, 10) : 0;
			}
			if ((long)(got - (size_t)(end + 4 - buf)) >= want)
				break;
		}
	}
	close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: changes-load HOST PORT N CONNECTIONS FIRST_SEQ\n");
		return 2;
	}
	host = argv[1];
	port = (int)strtol(argv[2], NULL, 10);
	int n = (int)strtol(argv[3], NULL, 10), c = (int)strtol(argv[4], NULL, 10);
	first = (int)strtol(argv[5], NULL, 10);
	per = n / c;
	pthread_t t[256];
	if (c < 1 || c > 256)
		return 2;
	double t0 = now();
	for (int i = 0; i < c; i++)
		pthread_create(&t[i], NULL, run, (void *)(long)i);
	for (int i = 0; i < c; i++)
		pthread_join(t[i], NULL);
	printf("%.4f\n", now() - t0);
	return 0;
}
