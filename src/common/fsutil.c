/*
 * Filesystem helpers (fsutil.h): `mkdir -p` for the worker's commands and
 * the master's poller directories.
 */
#include "common/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/xalloc.h"

/* mkdir that accepts an existing directory (and only a directory) */
static int fsutil_mkdir_one(const char *p, mode_t mode)
{
	if (mkdir(p, mode) == 0)
		return 0;
	int e = errno;
	struct stat st;
	if (e == EEXIST)
		return stat(p, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	return -e;
}

int fsutil_mkdir_p(const char *path, mode_t mode)
{
	if (!path || !*path)
		return -ENOENT;
	struct stat st;
	if (stat(path, &st) == 0)
		return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	_cleanup_free_ char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/' || s[-1] == '/')
			continue;
		*s = '\0';
		int r = fsutil_mkdir_one(p, mode);
		*s = '/';
		if (r < 0)
			return r;
	}
	return fsutil_mkdir_one(p, mode);
}

int fsutil_mkdir_parents(const char *file, mode_t mode)
{
	_cleanup_free_ char *p = xstrdup(file);
	char *slash = strrchr(p, '/');
	while (slash && slash > p && slash[-1] == '/')
		slash--;
	if (!slash || slash == p)
		return 0;
	*slash = '\0';
	return fsutil_mkdir_p(p, mode);
}

int fsutil_write_atomic(const char *path, const char *tmp_path, const void *data, size_t len,
			mode_t mode)
{
	_cleanup_free_ char *own = tmp_path ? NULL : xasprintf("%s.tmp", path);
	const char *tmp = tmp_path ? tmp_path : own;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	ssize_t w = write(fd, data, len);
	int r = w < 0 ? -errno : (size_t)w != len ? -EIO : 0;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}
