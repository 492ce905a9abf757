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

int kiln_flock_basedir(const char *basedir, bool create, bool *ret_created, char holder[32])
{
	_cleanup_free_ char *path = xasprintf("%s/pid", basedir);
	if (ret_created)
		*ret_created = access(path, F_OK) != 0;
	/* no O_TRUNC: the file may be a running master's */
	int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		if (e == EWOULDBLOCK) {
			ssize_t n = pread(fd, holder, 31, 0);
			holder[n > 0 ? n : 0] = '\0';
			holder[strcspn(holder, "\r\n")] = '\0';
		}
		close(fd);
		return -e;
	}
	return fd;
}

int kiln_lock_basedir(const char *verb, const char *basedir, bool create, bool *ret_created)
{
	char holder[32] = "";
	int fd = kiln_flock_basedir(basedir, create, ret_created, holder);
	if (fd == -ENOENT && !create)
		return -2;
	if (fd == -EWOULDBLOCK)
		fprintf(stderr,
			"kiln %s: a master is running on '%s' (pid %s): stop it first (kiln stop "
			"%s)\n",
			verb, basedir, *holder ? holder : "unknown", basedir);
	else if (fd < 0)
		fprintf(stderr, "kiln %s: cannot lock '%s/pid': %s\n", verb, basedir,
			strerror(-fd));
	return fd < 0 ? -1 : fd;
}
