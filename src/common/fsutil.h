/*
 * Small filesystem helpers shared by the master and the worker: the one
 * `mkdir -p`.  Blocking calls: use them where the caller already does
 * synchronous filesystem work (worker commands, start-up), not per request.
 */
#ifndef KILN_COMMON_FSUTIL_H
#define KILN_COMMON_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Creates path and its missing parents with mode (less the umask), like
 * `mkdir -p`.  Returns 0 (also when it is already a directory), -ENOTDIR if
 * it or a parent exists as something else, or another -errno. */
int fsutil_mkdir_p(const char *path, mode_t mode);
/* fsutil_mkdir_p on the directory part of a file's path ("a/b/c" makes
 * "a/b"); 0 when there is none. */
int fsutil_mkdir_parents(const char *file, mode_t mode);
/* Writes len bytes of data as the whole of path with mode: into tmp_path
 * first (removed on failure), then renamed over path, so a reader sees the
 * old file or the new one, never part of one.  tmp_path NULL: path + ".tmp".
 * Returns 0 or -errno (-EIO for a short write).  No fsync. */
int fsutil_write_atomic(const char *path, const char *tmp_path, const void *data, size_t len,
			mode_t mode);

#endif
