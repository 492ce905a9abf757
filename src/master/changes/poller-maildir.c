/*
 * maildir_source { } (slice "alerts"): commit mails delivered into a
 * maildir become changes.  A poll (every 'interval' seconds, and on demand
 * like the other pollers) reads at most MAILDIR_MAX_PER_POLL mails from
 * MAILDIR/new/ in name order (maildir names start with the delivery time),
 * each at most max_size bytes, parses it (mailparse.c: git, hg or svn
 * commit mails) and moves it to cur/ (NAME:2,S) when it became a change,
 * or to bad/ (created when needed) with the reason logged.  Nothing runs
 * as a child process: the reads are small, capped, local files.
 */
#define LOG_SUBSYS "changes"
#include "master/changes/mailparse.h"
#include "master/changes/poller.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAILDIR_MAX_PER_POLL 200

static int maildir_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Moves DIR/new/NAME to DIR/SUB/NAME+suffix; logs a failure. */
static void maildir_move(const struct config_poller *cfg, const char *name, const char *sub,
			 const char *suffix)
{
	char *from = xasprintf("%s/new/%s", cfg->repository, name);
	char *dir = xasprintf("%s/%s", cfg->repository, sub);
	char *to = xasprintf("%s/%s%s", dir, name, suffix);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		log_error("maildir_source '%s': cannot create %s: %s", cfg->name, dir,
			  strerror(errno));
	else if (rename(from, to) < 0)
		log_error("maildir_source '%s': cannot move %s to %s/: %s", cfg->name, name, sub,
			  strerror(errno));
	free(from);
	free(dir);
	free(to);
}

/* Reads DIR/new/NAME into *ret (at most max bytes); 0, -EFBIG, or -errno. */
static int maildir_read(const char *path, uint64_t max, char **ret, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return -EFBIG;
	}
	char *buf = xmalloc((size_t)max + 1);
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, (size_t)max + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = -errno;
			free(buf);
			close(fd);
			return e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) { /* grew while read */
			free(buf);
			close(fd);
			return -EFBIG;
		}
	}
	close(fd);
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

static int maildir_step(struct poller *p, const struct poller_out *out, char ***ret_argv)
{
	(void)out;
	(void)ret_argv;
	const struct config_poller *cfg = poller_config(p);
	char *newdir = xasprintf("%s/new", cfg->repository);
	DIR *d = opendir(newdir);
	if (!d) {
		int e = errno;
		free(newdir);
		return poller_fail(p, "cannot read %s/new: %s", cfg->repository, strerror(e));
	}
	char *names[MAILDIR_MAX_PER_POLL];
	size_t n = 0;
	bool more = false;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (n == MAILDIR_MAX_PER_POLL) {
			more = true; /* the rest at the next poll */
			break;
		}
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), maildir_cmp);
	for (size_t i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", newdir, names[i]);
		char *text = NULL;
		size_t len = 0;
		int r = maildir_read(path, cfg->max_size, &text, &len);
		free(path);
		if (r == -ENOENT) { /* taken by another reader */
			free(names[i]);
			continue;
		}
		const char *why = NULL;
		struct change c;
		enum mailparse_kind kind = MAILPARSE_GIT;
		if (r == -EFBIG)
			why = "over max_size";
		else if (r < 0)
			why = r == -EINVAL ? "not a regular file" : "cannot be read";
		else if (mailparse_parse(text, len, &c, &kind, &why) == 0) {
			c.src = mailparse_kind_name(kind);
			if (!c.branch && cfg->branch)
				c.branch = xstrdup(cfg->branch);
			if (cfg->project)
				c.project = xstrdup(cfg->project);
			if (cfg->category)
				c.category = xstrdup(cfg->category);
			if (cfg->codebase)
				c.codebase = xstrdup(cfg->codebase);
			log_info("maildir_source '%s': %s: a %s commit by %s (revision %s)",
				 cfg->name, names[i], c.src, c.author,
				 c.revision ? c.revision : "none");
			poller_emit(p, &c);
			maildir_move(cfg, names[i], "cur", ":2,S");
		}
		if (why) {
			log_warn("maildir_source '%s': %s moved to bad/: %s", cfg->name, names[i],
				 why);
			maildir_move(cfg, names[i], "bad", "");
		}
		free(text);
		free(names[i]);
	}
	free(newdir);
	if (more)
		log_info("maildir_source '%s': more than %d mails waiting: the rest at the next "
			 "poll",
			 cfg->name, MAILDIR_MAX_PER_POLL);
	return 0;
}

const struct poller_vcs poller_maildir = {
	.kind = "maildir",
	.step = maildir_step,
};
