/*
 * Unit tests for src/kiln's daemon verbs that need no running master:
 * `kiln create-master` and `kiln checkconfig`, each run in a child process
 * with its output captured.
 */
#include "tap.h"
#include "client/cmd.h"
#include "common/xalloc.h"
#include "kiln/kiln.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/kiln-test-kiln-XXXXXX";

static void write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
	char *path = xasprintf("%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK_INT(write(fd, text, strlen(text)), strlen(text));
		close(fd);
	}
	free(path);
}

/* Runs a command entry in a child with stdout/stderr in files; returns the exit status. */
static int run_cmd(const struct cmd *c, int argc, char **argv, const char *out)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		int r = c->run(argc, argv);
		fflush(NULL);
		_exit(r);
	}
	int st;
	CHECK_INT(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path)
{
	char buf[8192];
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return xstrdup(buf);
}

TEST(create_master_and_checkconfig)
{
	char *dir = xasprintf("%s/master", tmpdir);
	char *out = xasprintf("%s/out.txt", tmpdir);
	char *args[] = {"create-master", dir, NULL};
	CHECK_INT(run_cmd(&cmd_create_master, 2, args, out), 0);
	char *text = slurp(out);
	CHECK(strstr(text, "kiln-worker create WORKERDIR --master 127.0.0.1:9989 --name worker1 "
			   "--password-file /") != NULL);
	free(text);

	char *secret = xasprintf("%s/secrets/worker1", dir);
	struct stat st;
	CHECK_INT(stat(secret, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	CHECK_INT(st.st_size, 37); /* 36 hex digits and a newline */
	free(secret);

	char *check[] = {"checkconfig", dir, NULL};
	CHECK_INT(run_cmd(&cmd_checkconfig, 2, check, out), 0);
	text = slurp(out);
	CHECK_STR(text, "config OK: 1 worker, 1 builder\n");
	free(text);

	/* a second create-master refuses to overwrite */
	CHECK_INT(run_cmd(&cmd_create_master, 2, args, out), 1);
	text = slurp(out);
	CHECK(strstr(text, "already exists") != NULL);
	free(text);

	/* a broken config: the single error line, exit 1 */
	write_file(dir, "master.lua", "\n\nworker { name = 'w1', password = 'plain' }\n", 0644);
	CHECK_INT(run_cmd(&cmd_checkconfig, 2, check, out), 1);
	text = slurp(out);
	CHECK_STR(text, "master.lua:3: worker 'w1': password must come from secret(...)\n");
	free(text);
	free(dir);
	free(out);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(create_master_and_checkconfig);

	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmpdir);
	free(cmd);
	return tap_done();
}
