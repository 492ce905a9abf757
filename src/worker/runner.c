/*
 * kiln-worker's process helpers around common/proc.c (runner.h): the orphan
 * reaper for a child subreaper, and signal names from the master's
 * interruptSignal.
 */
#include "worker/runner.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/str.h"

/* ---- orphan reaper ----------------------------------------------------------- */

static uv_signal_t runner_sigchld;
static bool runner_reaper_on;

int runner_reap_orphans(void)
{
	/* children libuv does not know: only those may be waited for here */
	int reaped = 0;
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[300];
		snprintf(path, sizeof(path), "/proc/self/task/%.255s/children", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		long pid;
		while (fscanf(f, "%ld", &pid) == 1) {
			if (pid <= 0 || proc_is_live((pid_t)pid))
				continue;
			int st;
			if (waitpid((pid_t)pid, &st, WNOHANG) == (pid_t)pid)
				reaped++;
		}
		fclose(f);
	}
	closedir(d);
	return reaped;
}

static void runner_on_sigchld(uv_signal_t *s, int signum)
{
	(void)s;
	(void)signum;
	(void)runner_reap_orphans();
}

int runner_reaper_start(uv_loop_t *loop)
{
	if (runner_reaper_on)
		return 0;
	int r = uv_signal_init(loop, &runner_sigchld);
	if (r < 0)
		return r;
	r = uv_signal_start(&runner_sigchld, runner_on_sigchld, SIGCHLD);
	if (r < 0) {
		uv_close((uv_handle_t *)&runner_sigchld, NULL);
		return r;
	}
	uv_unref((uv_handle_t *)&runner_sigchld);
	runner_reaper_on = true;
	return 0;
}

void runner_reaper_stop(void)
{
	if (!runner_reaper_on)
		return;
	runner_reaper_on = false;
	uv_close((uv_handle_t *)&runner_sigchld, NULL);
}

int runner_signal_from_name(const char *name)
{
	static const struct {
		const char *n;
		int sig;
	} names[] = {
		{"KILL", SIGKILL}, {"TERM", SIGTERM}, {"INT", SIGINT},   {"HUP", SIGHUP},
		{"QUIT", SIGQUIT}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"ABRT", SIGABRT},
	};
	if (!name || !*name)
		return -1;
	if (name[0] >= '0' && name[0] <= '9') {
		long long v;
		if (str_to_i64(name, &v) < 0 || v <= 0 || v >= 65)
			return -1;
		return (int)v;
	}
	if (strncmp(name, "SIG", 3) == 0)
		name += 3;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(names[i].n, name) == 0)
			return names[i].sig;
	return -1;
}
