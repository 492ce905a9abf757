/*
 * `kiln checkconfig [BASEDIR]` validates BASEDIR/master.lua without starting
 * anything; `kiln create-master BASEDIR` writes the commented sample with a
 * fresh secret for its worker.  Both are entries of the table in kiln/main.c.
 */
#include "client/cmd.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "kiln/kiln.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int checkconfig_run(int argc, char **argv)
{
	if (argc > 2) {
		fprintf(stderr, "usage: kiln checkconfig [BASEDIR]\n");
		return 2;
	}
	const char *basedir = argc > 1 ? argv[1] : ".";
	struct config *cfg;
	_cleanup_free_ char *err = NULL;
	if (config_load(basedir, &cfg, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	printf("config OK: %zu worker%s, %zu builder%s\n", cfg->nworkers,
	       cfg->nworkers == 1 ? "" : "s", cfg->nbuilders, cfg->nbuilders == 1 ? "" : "s");
	config_free(cfg);
	return 0;
}

static int create_master_write(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	size_t len = strlen(text), off = 0;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int r = -errno;
			close(fd);
			unlink(path);
			return r;
		}
		off += (size_t)n;
	}
	if (close(fd) < 0) {
		int r = -errno;
		unlink(path);
		return r;
	}
	return 0;
}

static int create_master_run(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: kiln create-master BASEDIR\n");
		return 2;
	}
	const char *basedir = argv[1];
	if (mkdir(basedir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "kiln create-master: cannot create '%s': %s\n", basedir,
			strerror(errno));
		return 1;
	}
	_cleanup_free_ char *master = xasprintf("%s/master.lua", basedir);
	if (access(master, F_OK) == 0) {
		fprintf(stderr, "kiln create-master: '%s' already exists\n", master);
		return 1;
	}
	_cleanup_free_ char *secrets = xasprintf("%s/secrets", basedir);
	if (mkdir(secrets, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "kiln create-master: cannot create '%s': %s\n", secrets,
			strerror(errno));
		return 1;
	}

	/* the secret first: a master.lua without it would not load */
	_cleanup_free_ char *secret = xasprintf("%s/worker1", secrets);
	if (sodium_init() < 0) {
		fprintf(stderr, "kiln create-master: cannot initialise libsodium\n");
		return 1;
	}
	unsigned char raw[18];
	char text[2 * sizeof(raw) + 2];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(text, sizeof(text) - 1, raw, sizeof(raw));
	size_t tl = strlen(text);
	text[tl] = '\n';
	text[tl + 1] = '\0';
	sodium_memzero(raw, sizeof(raw));
	int r = create_master_write(secret, text, 0600);
	sodium_memzero(text, sizeof(text));
	if (r == -EEXIST)
		printf("keeping the existing '%s'\n", secret);
	else if (r < 0) {
		fprintf(stderr, "kiln create-master: cannot write '%s': %s\n", secret,
			strerror(-r));
		return 1;
	}

	r = create_master_write(master, config_sample, 0644);
	if (r < 0) {
		fprintf(stderr, "kiln create-master: cannot write '%s': %s\n", master,
			strerror(-r));
		return 1;
	}

	struct config *cfg;
	_cleanup_free_ char *err = NULL;
	if (config_load(basedir, &cfg, &err) < 0) {
		fprintf(stderr, "kiln create-master: the sample does not load: %s\n", err);
		return 1;
	}
	config_free(cfg);

	char abs[PATH_MAX];
	const char *shown = realpath(basedir, abs) ? abs : basedir;
	printf("created a Kiln master in '%s' (master.lua, secrets/worker1)\n\n", shown);
	printf("start it:\n  kiln master -d %s\n\n", shown);
	printf("create and start a matching worker:\n"
	       "  kiln-worker create WORKERDIR --master 127.0.0.1:9989 --name worker1 "
	       "--password-file %s/secrets/worker1\n"
	       "  kiln-worker start WORKERDIR\n",
	       shown);
	return 0;
}

const struct cmd cmd_checkconfig = {
	.name = "checkconfig",
	.usage = "[BASEDIR]",
	.summary = "validate BASEDIR/master.lua without starting",
	.run = checkconfig_run,
};
const struct cmd cmd_create_master = {
	.name = "create-master",
	.usage = "BASEDIR",
	.summary = "create BASEDIR with a commented sample master.lua",
	.run = create_master_run,
};
