/*
 * A real PostgreSQL server for a unit test (issue 14): scripts/pg-start in
 * a fresh directory under /tmp, stopped by scripts/pg-stop (by its PID) and
 * removed at the end.  Include after tap.h.  The test's first argument is
 * the scripts directory (src/db/meson.build passes it).
 *
 *   const char *why = pg_test_start(argv[1]);
 *   if (why) return tap_skip_all(why);   // a failure under CI=true
 *   ... pg_test.url ...
 *   pg_test_stop(); pg_test_start_again(); ...
 *   pg_test_cleanup();
 *
 * KILN_TEST_PG_URL set: that server is used instead and none is started
 * (pg_test.dir stays empty; tests that restart the server skip).
 */
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct {
	char scripts[1024];
	char dir[256];
	char pidfile[300];
	char url[1024];
	char why[1400];
} pg_test;

/* Runs "SCRIPT DIR"; 0 on success; the first line of its stdout in out
 * (if not NULL), its stderr's first line in pg_test.why on failure. */
static inline int pg_test_run(const char *script, char *out, size_t outsize)
{
	char cmd[2600];
	snprintf(cmd, sizeof(cmd), "'%s/%s' '%s' 2>'%s.err'", pg_test.scripts, script, pg_test.dir,
		 pg_test.dir);
	FILE *f = popen(cmd, "r");
	if (!f) {
		snprintf(pg_test.why, sizeof(pg_test.why), "cannot run %s", script);
		return -1;
	}
	char line[1024] = "";
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	char rest[256];
	while (fgets(rest, sizeof(rest), f))
		;
	int st = pclose(f);
	line[strcspn(line, "\n")] = '\0';
	if (out)
		snprintf(out, outsize, "%s", line);
	if (st != 0) {
		char errpath[300], err[512] = "";
		snprintf(errpath, sizeof(errpath), "%s.err", pg_test.dir);
		FILE *e = fopen(errpath, "r");
		if (e) {
			/* the last line says why (initdb's or the log's lines come first) */
			char l[512];
			while (fgets(l, sizeof(l), e))
				if (strlen(l) > 1)
					snprintf(err, sizeof(err), "%s", l);
			fclose(e);
		}
		err[strcspn(err, "\n")] = '\0';
		snprintf(pg_test.why, sizeof(pg_test.why), "%s failed: %s", script,
			 *err ? err : "(no message)");
		return -1;
	}
	return 0;
}

/* A test killed by its timeout (SIGTERM) or dying (SIGABRT: a failed
 * assertion, ASan) stops its server all the same: a fast shutdown by the
 * PID in postmaster.pid, with async-signal-safe calls only. */
static inline void pg_test_on_signal(int sig)
{
	int fd = pg_test.pidfile[0] ? open(pg_test.pidfile, O_RDONLY) : -1;
	if (fd >= 0) {
		char b[32];
		ssize_t n = read(fd, b, sizeof(b) - 1);
		close(fd);
		long pid = 0;
		for (ssize_t i = 0; i < n && b[i] >= '0' && b[i] <= '9'; i++)
			pid = pid * 10 + (b[i] - '0');
		if (pid > 1)
			kill((pid_t)pid, SIGINT);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Starts the server; NULL on success (pg_test.url is set), else why not. */
static inline const char *pg_test_start(const char *scripts)
{
	const char *env = getenv("KILN_TEST_PG_URL");
	if (env && *env) {
		snprintf(pg_test.url, sizeof(pg_test.url), "%s", env);
		return NULL;
	}
	if (!scripts) {
		snprintf(pg_test.why, sizeof(pg_test.why), "no scripts directory given");
		return pg_test.why;
	}
	snprintf(pg_test.scripts, sizeof(pg_test.scripts), "%s", scripts);
	snprintf(pg_test.dir, sizeof(pg_test.dir), "/tmp/kiln-pgtest.XXXXXX");
	if (!mkdtemp(pg_test.dir)) {
		snprintf(pg_test.why, sizeof(pg_test.why), "mkdtemp failed");
		pg_test.dir[0] = '\0';
		return pg_test.why;
	}
	snprintf(pg_test.pidfile, sizeof(pg_test.pidfile), "%s/postmaster.pid", pg_test.dir);
	signal(SIGTERM, pg_test_on_signal);
	signal(SIGINT, pg_test_on_signal);
	signal(SIGABRT, pg_test_on_signal);
	if (pg_test_run("pg-start", pg_test.url, sizeof(pg_test.url)) < 0) {
		(void)pg_test_run("pg-stop", NULL, 0);
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s.err'", pg_test.dir, pg_test.dir);
		if (system(cmd) != 0)
			printf("# cannot remove %s\n", pg_test.dir);
		pg_test.dir[0] = '\0';
		return pg_test.why;
	}
	return NULL;
}

/* Stops the server (its data stays); 0 or -1 (pg_test.why). */
static inline int pg_test_stop(void)
{
	return pg_test.dir[0] ? pg_test_run("pg-stop", NULL, 0) : -1;
}

/* Starts the stopped server again; 0 or -1 (pg_test.why). */
static inline int pg_test_start_again(void)
{
	return pg_test.dir[0] ? pg_test_run("pg-start", NULL, 0) : -1;
}

/* Stops the server and removes its directory. */
static inline void pg_test_cleanup(void)
{
	if (!pg_test.dir[0])
		return;
	if (pg_test_stop() < 0)
		printf("# %s\n", pg_test.why);
	pg_test.pidfile[0] = '\0';
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s.err'", pg_test.dir, pg_test.dir);
	if (system(cmd) != 0)
		printf("# cannot remove %s\n", pg_test.dir);
	pg_test.dir[0] = '\0';
}
