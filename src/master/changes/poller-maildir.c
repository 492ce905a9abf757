/*
 * maildir_source { } (slice "alerts"): commit mails delivered into a
 * maildir become changes.  A poll (every 'interval' seconds, and on demand
 * like the other pollers) reads the MAILDIR_MAX_PER_POLL first mails of
 * MAILDIR/new/ in name order (maildir names start with the delivery time),
 * each at most max_size bytes, parses it (mailparse.c: git, hg or svn
 * commit mails) and moves it to cur/ (NAME:2,S) when it became a change,
 * or to bad/ (created when needed) with the reason logged.  Nothing runs
 * as a child process: the reads are capped local files, done on the loop.
 * So that one poll never holds the loop long, it stops reading once it read
 * MAILDIR_MAX_BYTES_PER_POLL and polls again at the next loop turn for the
 * rest (a 4 MiB mail is the most one turn reads past that).
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
#define MAILDIR_MAX_BYTES_PER_POLL (4u << 20)

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
	/* the MAILDIR_MAX_PER_POLL smallest names, kept sorted */
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (n == MAILDIR_MAX_PER_POLL) {
			more = true; /* the rest at the next poll */
			if (strcmp(de->d_name, names[n - 1]) >= 0)
				continue;
			free(names[--n]);
		}
		size_t at = n;
		while (at > 0 && strcmp(de->d_name, names[at - 1]) < 0)
			at--;
		memmove(names + at + 1, names + at, (n - at) * sizeof(names[0]));
		names[at] = xstrdup(de->d_name);
		n++;
	}
	closedir(d);
	uint64_t read_bytes = 0;
	for (size_t i = 0; i < n; i++) {
		if (read_bytes >= MAILDIR_MAX_BYTES_PER_POLL) {
			more = true; /* this poll read enough: the rest at the next turn */
			free(names[i]);
			continue;
		}
		char *path = xasprintf("%s/%s", newdir, names[i]);
		char *text = NULL;
		size_t len = 0;
		int r = maildir_read(path, cfg->max_size, &text, &len);
		free(path);
		if (r == 0)
			read_bytes += len;
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
	if (more) {
		log_debug("maildir_source '%s': more mails waiting: polling again", cfg->name);
		poller_again(p);
	}
	return 0;
}

const struct poller_vcs poller_maildir = {
	.kind = "maildir",
	.step = maildir_step,
};
