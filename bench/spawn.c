/*
 * bench/spawn.c: the machine's process-start ceiling for the benchmark.
 * One thread per core runs posix_spawn("true") + waitpid in a loop for a
 * fixed time; prints how many spawn+wait pairs completed per second.  Kiln's
 * build throughput is reported as a fraction of this number.
 * Usage: spawn [SECONDS [THREADS]]   (defaults: 3 s, one thread per core)
 */
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static atomic_bool stop;
static atomic_long total;

static void *spawn_loop(void *arg)
{
	char *argv[] = {"true", NULL};
	long n = 0;
	(void)arg;
	while (!atomic_load(&stop)) {
		pid_t pid;
		int st;
		if (posix_spawnp(&pid, "true", NULL, NULL, argv, environ) != 0) {
			perror("posix_spawnp");
			exit(1);
		}
		if (waitpid(pid, &st, 0) < 0) {
			perror("waitpid");
			exit(1);
		}
		n++;
	}
	atomic_fetch_add(&total, n);
	return NULL;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? strtod(argv[1], NULL) : 3.0;
	long nthreads = argc > 2 ? strtol(argv[2], NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
	if (nthreads < 1 || nthreads > 1024 || secs <= 0) {
		fprintf(stderr, "usage: spawn [SECONDS [THREADS]]\n");
		return 2;
	}
	pthread_t *t = calloc((size_t)nthreads, sizeof(*t));
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < nthreads; i++)
		pthread_create(&t[i], NULL, spawn_loop, NULL);
	struct timespec d = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
	nanosleep(&d, NULL);
	atomic_store(&stop, true);
	for (long i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double el = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	printf("{\"threads\": %ld, \"seconds\": %.3f, \"spawns\": %ld, \"per_second\": %.1f}\n",
	       nthreads, el, atomic_load(&total), (double)atomic_load(&total) / el);
	free(t);
	return 0;
}
