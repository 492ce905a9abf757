/*
 * Filesystem remote commands (PROTOCOL.md §3.7): mkdir, stat, glob, listdir
 * and rmfile run inline (one syscall or a bounded walk); rmdir and cpdir run
 * rm/cp as child processes, as Buildbot's worker does, so a huge tree never
 * blocks the loop.  Failures are reported in rc (the errno) plus a header.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/fsutil.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "worker/lines.h"
#include "worker/worker.h"

#define FS_GLOB_MAX 100000 /* matches returned by one glob */

static void fs_fail(struct cmd *c, const char *what, int err, const char *path)
{
	_cleanup_free_ char *h = xasprintf("%s: %s: %s", what, strerror(err), path);
	cmd_add_text(c, "header", h);
	cmd_add_int(c, "rc", err);
	cmd_add_double(c, "elapsed", cmd_elapsed(c));
	cmd_finish(c, NULL);
}

static void fs_ok(struct cmd *c)
{
	cmd_add_int(c, "rc", 0);
	cmd_add_double(c, "elapsed", cmd_elapsed(c));
	cmd_finish(c, NULL);
}

static void fs_pack_name(struct proto_enc *e, const char *s)
{
	lines_pack_repaired(e, s, strlen(s));
}

/* args 'paths' (array of str) or a single 'path' */
static char **fs_paths(const msgpack_object *args, size_t *ret_n)
{
	const msgpack_object *p = proto_map_get(args, "paths");
	char **v;
	if (p && p->type == MSGPACK_OBJECT_ARRAY) {
		v = xcalloc(p->via.array.size + 1, sizeof(char *));
		size_t n = 0;
		for (uint32_t i = 0; i < p->via.array.size; i++) {
			char *s = proto_obj_strdup(&p->via.array.ptr[i]);
			if (!s) {
				for (size_t k = 0; k < n; k++)
					free(v[k]);
				free(v);
				return NULL;
			}
			v[n++] = s;
		}
		*ret_n = n;
		return v;
	}
	char *one = cmd_arg_str(args, "path");
	if (!one)
		one = cmd_arg_str(args, "paths");
	if (!one)
		return NULL;
	v = xcalloc(2, sizeof(char *));
	v[0] = one;
	*ret_n = 1;
	return v;
}

static void fs_free_paths(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* ---- mkdir ------------------------------------------------------------------------------ */

static int fs_mkdir_start(struct cmd *c, const msgpack_object *args, char **ret_err)
{
	size_t n;
	char **paths = fs_paths(args, &n);
	if (!paths) {
		*ret_err = xstrdup("mkdir: 'paths' must be a list of strings");
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		int e = -fsutil_mkdir_p(paths[i], 0777);
		if (e) {
			fs_fail(c, "mkdir", e, paths[i]);
			fs_free_paths(paths);
			return 0;
		}
	}
	fs_free_paths(paths);
	fs_ok(c);
	return 0;
}

const struct cmd_type cmd_mkdir = {.name = "mkdir", .start = fs_mkdir_start};

/* ---- stat -------------------------------------------------------------------------------- */

static int fs_stat_start(struct cmd *c, const msgpack_object *args, char **ret_err)
{
	_cleanup_free_ char *path = cmd_arg_str(args, "path");
	if (!path) {
		*ret_err = xstrdup("stat: 'path' is required");
		return -EINVAL;
	}
	struct stat st;
	if (stat(path, &st) < 0) {
		fs_fail(c, "stat", errno, path);
		return 0;
	}
	/* Python's os.stat tuple order */
	struct proto_enc e;
	proto_enc_init(&e);
	proto_pack_array(&e, 10);
	proto_pack_int(&e, st.st_mode);
	proto_pack_int(&e, (int64_t)st.st_ino);
	proto_pack_int(&e, (int64_t)st.st_dev);
	proto_pack_int(&e, (int64_t)st.st_nlink);
	proto_pack_int(&e, st.st_uid);
	proto_pack_int(&e, st.st_gid);
	proto_pack_int(&e, st.st_size);
	proto_pack_int(&e, st.st_atim.tv_sec);
	proto_pack_int(&e, st.st_mtim.tv_sec);
	proto_pack_int(&e, st.st_ctim.tv_sec);
	int r = cmd_add_packed(c, "stat", e.sb.data, e.sb.size);
	assert(r == 0); /* ten integers */
	(void)r;
	proto_enc_release(&e);
	fs_ok(c);
	return 0;
}

const struct cmd_type cmd_stat = {.name = "stat", .start = fs_stat_start};

/* ---- listdir ------------------------------------------------------------------------------ */

static int fs_listdir_start(struct cmd *c, const msgpack_object *args, char **ret_err)
{
	_cleanup_free_ char *path = cmd_arg_str(args, "path");
	if (!path) {
		*ret_err = xstrdup("listdir: 'path' is required");
		return -EINVAL;
	}
	DIR *d = opendir(path);
	if (!d) {
		fs_fail(c, "listdir", errno, path);
		return 0;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < FS_GLOB_MAX) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		ARRAY_GROW(names, n + 1, cap);
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	struct proto_enc e;
	proto_enc_init(&e);
	proto_pack_array(&e, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		fs_pack_name(&e, names[i]);
		free(names[i]);
	}
	free(names);
	int r = cmd_add_packed(c, "files", e.sb.data, e.sb.size);
	proto_enc_release(&e);
	if (r < 0) {
		*ret_err = xasprintf("%s: the list of files is over the %u-byte message cap",
				     "listdir", KILN_MAX_WS_FRAME);
		return r;
	}
	fs_ok(c);
	return 0;
}

const struct cmd_type cmd_listdir = {.name = "listdir", .start = fs_listdir_start};

/* ---- rmfile ------------------------------------------------------------------------------ */

static int fs_rmfile_start(struct cmd *c, const msgpack_object *args, char **ret_err)
{
	_cleanup_free_ char *path = cmd_arg_str(args, "path");
	if (!path) {
		*ret_err = xstrdup("rmfile: 'path' is required");
		return -EINVAL;
	}
	if (unlink(path) < 0)
		fs_fail(c, "rmfile", errno, path);
	else
		fs_ok(c);
	return 0;
}

const struct cmd_type cmd_rmfile = {.name = "rmfile", .start = fs_rmfile_start};

/* ---- glob -------------------------------------------------------------------------------- */

struct fs_glob {
	char **v;
	size_t n, cap;
};

static void fs_glob_add(struct fs_glob *g, const char *path)
{
	if (g->n >= FS_GLOB_MAX)
		return;
	ARRAY_GROW(g->v, g->n + 1, g->cap);
	g->v[g->n++] = xstrdup(path);
}

static bool fs_has_magic(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* Matches components comp[i..n) below dir (dir "" means the root "/"). */
static void fs_glob_walk(struct fs_glob *g, const char *dir, char **comp, size_t i, size_t n,
			 int depth)
{
	if (g->n >= FS_GLOB_MAX || depth > 64)
		return;
	if (i == n) {
		fs_glob_add(g, dir[0] ? dir : "/");
		return;
	}
	const char *pat = comp[i];
	const char *base = dir[0] ? dir : "";
	if (strcmp(pat, "**") == 0) {
		/* zero directories ... */
		fs_glob_walk(g, dir, comp, i + 1, n, depth + 1);
		/* ... or one more, then ** again */
		DIR *d = opendir(dir[0] ? dir : "/");
		if (!d)
			return;
		struct dirent *de;
		while ((de = readdir(d)) && g->n < FS_GLOB_MAX) {
			if (de->d_name[0] == '.')
				continue;
			_cleanup_free_ char *p = xasprintf("%s/%s", base, de->d_name);
			struct stat st;
			if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
				fs_glob_walk(g, p, comp, i, n, depth + 1);
			else if (i + 1 == n)
				fs_glob_add(g, p); /* a trailing ** also matches files */
		}
		closedir(d);
		return;
	}
	if (!fs_has_magic(pat)) {
		_cleanup_free_ char *p = xasprintf("%s/%s", base, pat);
		struct stat st;
		if (lstat(p, &st) == 0)
			fs_glob_walk(g, p, comp, i + 1, n, depth + 1);
		return;
	}
	DIR *d = opendir(dir[0] ? dir : "/");
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)) && g->n < FS_GLOB_MAX) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fnmatch(pat, de->d_name, FNM_PERIOD) != 0)
			continue;
		_cleanup_free_ char *p = xasprintf("%s/%s", base, de->d_name);
		fs_glob_walk(g, p, comp, i + 1, n, depth + 1);
	}
	closedir(d);
}

static int fs_glob_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int fs_glob_start(struct cmd *c, const msgpack_object *args, char **ret_err)
{
	_cleanup_free_ char *path = cmd_arg_str(args, "path");
	if (!path || path[0] != '/') {
		*ret_err = xstrdup("glob: 'path' must be an absolute pattern");
		return -EINVAL;
	}
	/* split into components, dropping empty ones */
	char **comp = xcalloc(strlen(path) + 1, sizeof(char *));
	size_t n = 0;
	char *save = NULL;
	for (char *s = strtok_r(path, "/", &save); s; s = strtok_r(NULL, "/", &save))
		comp[n++] = s;
	struct fs_glob g = {0};
	fs_glob_walk(&g, "", comp, 0, n, 0);
	free(comp);
	if (g.n)
		qsort(g.v, g.n, sizeof(char *), fs_glob_cmp);
	struct proto_enc e;
	proto_enc_init(&e);
	proto_pack_array(&e, (uint32_t)g.n);
	for (size_t i = 0; i < g.n; i++) {
		fs_pack_name(&e, g.v[i]);
		free(g.v[i]);
	}
	free(g.v);
	int r = cmd_add_packed(c, "files", e.sb.data, e.sb.size);
	proto_enc_release(&e);
	if (r < 0) {
		*ret_err = xasprintf("%s: the list of files is over the %u-byte message cap",
				     "glob", KILN_MAX_WS_FRAME);
		return r;
	}
	fs_ok(c);
	return 0;
}

const struct cmd_type cmd_glob = {.name = "glob", .start = fs_glob_start};

/* ---- rmdir / cpdir: child processes ---------------------------------------------------------- */

struct fs_rm {
	char **paths; /* owned */
	double timeout;
};

static char **fs_argv(const char *a, const char *b, const char *c2, char **rest)
{
	size_t n = 0;
	while (rest && rest[n])
		n++;
	char **v = xcalloc(n + 4, sizeof(char *));
	size_t k = 0;
	v[k++] = (char *)a;
	if (b)
		v[k++] = (char *)b;
	if (c2)
		v[k++] = (char *)c2;
	for (size_t i = 0; i < n; i++)
		v[k++] = rest[i];
	return v;
}

static void fs_rmdir_done(struct cmd *c, int rc);

static void fs_rmdir_chmod_done(struct cmd *c, int rc)
{
	struct fs_rm *rm = c->data;
	if (c->interrupted) {
		fs_rmdir_done(c, rc);
		return;
	}
	_cleanup_free_ char **argv = fs_argv("rm", "-rf", "--", rm->paths);
	cmd_spawn_simple(c, argv, NULL, rm->timeout, fs_rmdir_done);
}

static void fs_rmdir_first_done(struct cmd *c, int rc)
{
	struct fs_rm *rm = c->data;
	if (rc == 0 || c->interrupted) {
		fs_rmdir_done(c, rc);
		return;
	}
	/* read-only directories: make them writable and try again */
	_cleanup_free_ char **argv = fs_argv("chmod", "-Rf", "u+rwx", rm->paths);
	cmd_spawn_simple(c, argv, NULL, rm->timeout, fs_rmdir_chmod_done);
}

static void fs_rmdir_done(struct cmd *c, int rc)
{
	cmd_add_int(c, "rc", rc);
	cmd_add_double(c, "elapsed", cmd_elapsed(c));
	cmd_finish(c, NULL);
}

static double fs_timeout(const msgpack_object *args, double def)
{
	double t;
	const msgpack_object *o = proto_map_get(args, "timeout");
	if (proto_obj_double(o, &t) && t > 0)
		return t;
	return o && o->type == MSGPACK_OBJECT_NIL ? 0 : def;
}

static int fs_rmdir_start(struct cmd *c, const msgpack_object *args, char **ret_err)
{
	size_t n;
	char **paths = fs_paths(args, &n);
	if (!paths) {
		*ret_err = xstrdup("rmdir: 'paths' must be a list of strings");
		return -EINVAL;
	}
	if (n == 0) {
		fs_free_paths(paths);
		fs_ok(c);
		return 0;
	}
	struct fs_rm *rm = xcalloc(1, sizeof(*rm));
	rm->paths = paths;
	rm->timeout = fs_timeout(args, 120);
	c->data = rm;
	_cleanup_free_ char **argv = fs_argv("rm", "-rf", "--", paths);
	return cmd_spawn_simple(c, argv, NULL, rm->timeout, fs_rmdir_first_done);
}

static void fs_rmdir_release(struct cmd *c)
{
	struct fs_rm *rm = c->data;
	if (rm) {
		fs_free_paths(rm->paths);
		free(rm);
		c->data = NULL;
	}
	cmd_simple_release(c);
}

const struct cmd_type cmd_rmdir = {
	.name = "rmdir",
	.start = fs_rmdir_start,
	.interrupt = cmd_simple_interrupt,
	.pause = cmd_simple_pause,
	.abort = cmd_simple_abort,
	.free_priv = fs_rmdir_release,
};

static void fs_cpdir_done(struct cmd *c, int rc)
{
	cmd_add_int(c, "rc", rc);
	cmd_add_double(c, "elapsed", cmd_elapsed(c));
	cmd_finish(c, NULL);
}

static int fs_cpdir_start(struct cmd *c, const msgpack_object *args, char **ret_err)
{
	_cleanup_free_ char *from = cmd_arg_str(args, "from_path");
	_cleanup_free_ char *to = cmd_arg_str(args, "to_path");
	if (!from || !to) {
		*ret_err = xstrdup("cpdir: 'from_path' and 'to_path' are required");
		return -EINVAL;
	}
	char *argv[] = {"cp", "-R", "-P", "-p", "-v", from, to, NULL};
	return cmd_spawn_simple(c, argv, NULL, fs_timeout(args, 120), fs_cpdir_done);
}

const struct cmd_type cmd_cpdir = {
	.name = "cpdir",
	.start = fs_cpdir_start,
	.interrupt = cmd_simple_interrupt,
	.pause = cmd_simple_pause,
	.abort = cmd_simple_abort,
	.free_priv = cmd_simple_release,
};
