/*
 * BASEDIR/pid's lock, taken by the tools that must not run beside a master
 * on the same base directory (kiln.h).
 */
#include "kiln/kiln.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/xalloc.h"

int kiln_lock_basedir(const char *verb, const char *basedir, bool create, bool *ret_created)
{
	_cleanup_free_ char *path = xasprintf("%s/pid", basedir);
	if (ret_created)
		*ret_created = access(path, F_OK) != 0;
	int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
	if (fd < 0) {
		if (errno == ENOENT && !create)
			return -2;
		fprintf(stderr, "kiln %s: cannot open '%s': %s\n", verb, path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		if (e == EWOULDBLOCK) {
			char text[32] = "";
			ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
			text[n > 0 ? n : 0] = '\0';
			text[strcspn(text, "\r\n")] = '\0';
			fprintf(stderr,
				"kiln %s: a master is running on '%s' (pid %s): stop it first "
				"(kiln stop %s)\n",
				verb, basedir, *text ? text : "unknown", basedir);
		} else {
			fprintf(stderr, "kiln %s: cannot lock '%s': %s\n", verb, path, strerror(e));
		}
		close(fd);
		return -1;
	}
	return fd;
}
