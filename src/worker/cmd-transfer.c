/*
 * File transfer commands (PROTOCOL.md §3.9): upload_file, upload_directory
 * (a tar made by a child `tar`, then streamed) and download_file.  All are
 * worker-driven loops: an upload keeps up to KILN_WORKER_UPLOAD_WINDOW
 * writes in flight (a master takes them in order: Buildbot's writes each at
 * once, Kiln's queues them) and sends its close once all are answered; a
 * download is stop-and-wait.  Reads and writes are at most one block, so
 * the loop is never held for long.
 */
#define LOG_SUBSYS "xfer"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "worker/worker.h"

#define XFER_MAX_BLOCK (1u << 20)

struct xfer {
	struct cmd *c;
	int fd;
	char *path;    /* owned: worker-side file */
	char *tmpdir;  /* owned: upload_directory's temp dir, removed at the end */
	char *tarpath; /* owned */
	size_t blocksize;
	int64_t maxsize; /* < 0: none */
	uint64_t moved;
	bool keepstamp;
	bool truncated;
	bool failed_open;
	int read_errno; /* upload: the read that failed (ends it as the end of the file would) */
	struct stat st;
	const char *op_write, *op_close; /* upload ops */
	size_t chunk_len;                /* download: the bytes asked for */
	unsigned inflight;               /* upload: writes sent, not yet answered */
	bool eof;      /* upload: nothing more to send (end, interrupt, maxsize) */
	char *failure; /* owned, upload: a write's failure, reported once none is in flight */
};

static void xfer_free(struct xfer *x)
{
	if (!x)
		return;
	if (x->fd >= 0)
		close(x->fd);
	if (x->tarpath)
		(void)unlink(x->tarpath);
	if (x->tmpdir)
		(void)rmdir(x->tmpdir);
	free(x->tarpath);
	free(x->tmpdir);
	free(x->path);
	free(x->failure);
	free(x);
}

static void xfer_release(struct cmd *c)
{
	xfer_free(c->data);
	c->data = NULL;
	if (c->priv)
		cmd_simple_release(c);
}

static struct xfer *xfer_new(struct cmd *c, const msgpack_object *args, size_t defblock)
{
	struct xfer *x = xcalloc(1, sizeof(*x));
	x->c = c;
	x->fd = -1;
	x->path = cmd_arg_str(args, "path");
	int64_t v;
	x->blocksize =
		proto_obj_int(proto_map_get(args, "blocksize"), &v) && v > 0 ? (size_t)v : defblock;
	if (x->blocksize > XFER_MAX_BLOCK)
		x->blocksize = XFER_MAX_BLOCK;
	x->maxsize = proto_obj_int(proto_map_get(args, "maxsize"), &v) && v >= 0 ? v : -1;
	(void)proto_obj_bool(proto_map_get(args, "keepstamp"), &x->keepstamp);
	c->data = x;
	return x;
}

static void xfer_end(struct xfer *x, int rc, const char *stderr_text, const char *failure)
{
	struct cmd *c = x->c;
	if (stderr_text)
		cmd_add_text(c, "stderr", stderr_text);
	cmd_add_int(c, "rc", rc);
	cmd_add_double(c, "elapsed", cmd_elapsed(c));
	cmd_finish(c, failure);
}

/* A reply error: the master's is_exception text becomes the command's failure. */
static char *xfer_failure(int status, const msgpack_object *result)
{
	struct str s;
	if (status == KILN_EPROTO && proto_obj_str(result, &s))
		return xasprintf("remote error: %.*s", (int)s.len, s.p);
	return xasprintf("remote error: %s", err_str(status));
}

/* ---- upload (file and directory) ------------------------------------------------------------ */

static void up_pack_utime(struct proto_enc *e, void *ud)
{
	struct xfer *x = ud;
	proto_pack_str(e, "access_time");
	proto_pack_double(e, (double)x->st.st_atim.tv_sec + x->st.st_atim.tv_nsec / 1e9);
	proto_pack_str(e, "modified_time");
	proto_pack_double(e, (double)x->st.st_mtim.tv_sec + x->st.st_mtim.tv_nsec / 1e9);
}

static void up_finish(struct xfer *x)
{
	if (x->failed_open) {
		_cleanup_free_ char *m = xasprintf("Cannot open file '%s' for upload\n", x->path);
		xfer_end(x, 1, m, NULL);
	} else if (x->read_errno) {
		_cleanup_free_ char *m = xasprintf("Cannot read file '%s' for upload: %s\n",
						   x->path, strerror(x->read_errno));
		xfer_end(x, 1, m, NULL);
	} else if (x->truncated) {
		xfer_end(x, 1, "Maximum filesize reached, truncating file\n", NULL);
	} else if (x->c->interrupted) {
		xfer_end(x, 1, "upload interrupted\n", NULL);
	} else {
		xfer_end(x, 0, NULL, NULL);
	}
}

static void up_on_utime(void *ud, int status, const msgpack_object *result)
{
	struct xfer *x = ud;
	if (status < 0) {
		_cleanup_free_ char *f = xfer_failure(status, result);
		xfer_end(x, 1, NULL, f);
		return;
	}
	up_finish(x);
}

static void up_on_close(void *ud, int status, const msgpack_object *result)
{
	struct xfer *x = ud;
	if (status < 0) {
		_cleanup_free_ char *f = xfer_failure(status, result);
		xfer_end(x, 1, NULL, f);
		return;
	}
	if (x->keepstamp && x->op_close && !strcmp(x->op_close, "update_upload_file_close")) {
		if (cmd_request(x->c, "update_upload_file_utime", 2, up_pack_utime, up_on_utime,
				x) < 0)
			xfer_end(x, 1, NULL, "cannot send utime");
		return;
	}
	up_finish(x);
}

static void up_send_close(struct xfer *x)
{
	if (cmd_request(x->c, x->op_close, 0, NULL, up_on_close, x) < 0)
		xfer_end(x, 1, NULL, "cannot send close");
}

static void up_on_write(void *ud, int status, const msgpack_object *result);

/* Reads and sends the next block: 1 sent, 0 nothing more to send (x->eof),
 * < 0 not sent (x->failure says why). */
static int up_send_block(struct xfer *x)
{
	size_t want = x->blocksize;
	if (x->fd < 0 || x->c->interrupted) {
		x->eof = true;
		return 0;
	}
	if (x->maxsize >= 0) {
		uint64_t left = (uint64_t)x->maxsize - x->moved;
		if (left == 0) {
			/* is there more? then the file is being truncated */
			char probe;
			if (read(x->fd, &probe, 1) > 0)
				x->truncated = true;
			x->eof = true;
			return 0;
		}
		if (left < want)
			want = (size_t)left;
	}
	/* read straight into the message (cmd_request_read): no copy of the block */
	ssize_t n = cmd_request_read(x->c, x->op_write, x->fd, want, up_on_write, x);
	if (n == 0) {
		x->eof = true;
		return 0;
	}
	if (n == -ENOTCONN || n == -EBUSY) {
		x->failure = xstrdup("cannot send data");
		return (int)n;
	}
	if (n < 0) {
		x->read_errno = (int)-n;
		x->eof = true;
		return 0;
	}
	x->moved += (uint64_t)n;
	x->inflight++;
	return 1;
}

/* Keeps the window of writes full; the close (or the failure) once the last
 * write is answered, so no reply ever comes for a finished command. */
static void up_pump(struct xfer *x)
{
	while (!x->failure && !x->eof && x->inflight < KILN_WORKER_UPLOAD_WINDOW)
		if (up_send_block(x) < 0)
			break;
	if (x->inflight)
		return;
	if (x->failure)
		xfer_end(x, 1, NULL, x->failure);
	else
		up_send_close(x);
}

static void up_on_write(void *ud, int status, const msgpack_object *result)
{
	struct xfer *x = ud;
	x->inflight--;
	if (status < 0 && !x->failure)
		x->failure = xfer_failure(status, result);
	up_pump(x);
}

static void up_begin(struct xfer *x, const char *src)
{
	x->fd = open(src, O_RDONLY | O_CLOEXEC);
	if (x->fd < 0 || fstat(x->fd, &x->st) < 0) {
		x->failed_open = true;
		if (x->fd >= 0)
			close(x->fd);
		x->fd = -1;
	}
	_cleanup_free_ char *h = xasprintf("sending %s\n", x->path);
	cmd_add_text(x->c, "header", h);
	up_pump(x);
}

static int up_file_start(struct cmd *c, const msgpack_object *args, char **ret_err)
{
	struct xfer *x = xfer_new(c, args, 262144);
	if (!x->path) {
		*ret_err = xstrdup("upload_file: 'path' is required");
		return -EINVAL;
	}
	x->op_write = "update_upload_file_write";
	x->op_close = "update_upload_file_close";
	up_begin(x, x->path);
	return 0;
}

static void xfer_interrupt(struct cmd *c, const char *why)
{
	/* the loop notices c->interrupted at its next step */
	if (c->priv)
		cmd_simple_interrupt(c, why);
}

static void xfer_abort(struct cmd *c)
{
	/* pending requests fail on their own when the connection goes */
	if (c->priv)
		cmd_simple_abort(c);
}

const struct cmd_type cmd_upload_file = {
	.name = "upload_file",
	.start = up_file_start,
	.interrupt = xfer_interrupt,
	.abort = xfer_abort,
	.free_priv = xfer_release,
};

static void up_dir_tarred(struct cmd *c, int rc)
{
	struct xfer *x = c->data;
	if (rc != 0 || c->interrupted) {
		xfer_end(x, rc ? rc : 1, NULL, NULL);
		return;
	}
	up_begin(x, x->tarpath);
}

static int up_dir_start(struct cmd *c, const msgpack_object *args, char **ret_err)
{
	struct xfer *x = xfer_new(c, args, 16384);
	if (!x->path) {
		*ret_err = xstrdup("upload_directory: 'path' is required");
		return -EINVAL;
	}
	_cleanup_free_ char *compress = cmd_arg_str(args, "compress");
	const char *zflag = NULL;
	if (compress && !strcmp(compress, "gz"))
		zflag = "-z";
	else if (compress && !strcmp(compress, "bz2"))
		zflag = "-j";
	else if (compress) {
		*ret_err = xasprintf("upload_directory: unknown compress '%s'", compress);
		return -EINVAL;
	}
	x->op_write = "update_upload_directory_write";
	x->op_close = "update_upload_directory_unpack";
	char tmpl[] = "/tmp/kiln-upload-XXXXXX";
	const char *tmp = mkdtemp(tmpl);
	if (!tmp) {
		*ret_err = xasprintf("upload_directory: cannot create a temp dir: %s",
				     strerror(errno));
		return -errno;
	}
	x->tmpdir = xstrdup(tmp);
	x->tarpath = xasprintf("%s/upload.tar", tmp);
	char *argv[8];
	size_t k = 0;
	argv[k++] = "tar";
	argv[k++] = "-cf";
	argv[k++] = x->tarpath;
	if (zflag)
		argv[k++] = (char *)zflag;
	argv[k++] = "-C";
	argv[k++] = x->path;
	argv[k++] = ".";
	argv[k] = NULL;
	return cmd_spawn_simple(c, argv, NULL, 0, up_dir_tarred);
}

const struct cmd_type cmd_upload_directory = {
	.name = "upload_directory",
	.start = up_dir_start,
	.interrupt = xfer_interrupt,
	.pause = cmd_simple_pause,
	.abort = xfer_abort,
	.free_priv = xfer_release,
};

/* ---- download ----------------------------------------------------------------------------- */

static void down_request(struct xfer *x);

static void down_pack_length(struct proto_enc *e, void *ud)
{
	struct xfer *x = ud;
	proto_pack_str(e, "length");
	proto_pack_int(e, (int64_t)x->chunk_len);
}

static void down_on_close(void *ud, int status, const msgpack_object *result)
{
	struct xfer *x = ud;
	if (status < 0) {
		_cleanup_free_ char *f = xfer_failure(status, result);
		xfer_end(x, 1, NULL, f);
		return;
	}
	if (x->failed_open) {
		_cleanup_free_ char *m = xasprintf("Cannot open file '%s' for download\n", x->path);
		xfer_end(x, 1, m, NULL);
	} else if (x->truncated) {
		xfer_end(x, 1, "Maximum filesize reached, truncating file\n", NULL);
	} else if (x->c->interrupted) {
		xfer_end(x, 1, "download interrupted\n", NULL);
	} else {
		xfer_end(x, 0, NULL, NULL);
	}
}

static void down_close(struct xfer *x)
{
	if (x->fd >= 0) {
		close(x->fd);
		x->fd = -1;
	}
	if (cmd_request(x->c, "update_read_file_close", 0, NULL, down_on_close, x) < 0)
		xfer_end(x, 1, NULL, "cannot send close");
}

static void down_on_data(void *ud, int status, const msgpack_object *result)
{
	struct xfer *x = ud;
	if (status < 0) {
		_cleanup_free_ char *f = xfer_failure(status, result);
		xfer_end(x, 1, NULL, f);
		return;
	}
	struct str s;
	if (!proto_obj_str(result, &s) || s.len == 0) {
		down_close(x); /* nil or empty: EOF */
		return;
	}
	if (s.len > x->chunk_len)
		s.len = x->chunk_len; /* never more than asked for */
	size_t off = 0;
	while (off < s.len) {
		ssize_t n = write(x->fd, s.p + off, s.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			_cleanup_free_ char *m =
				xasprintf("cannot write '%s': %s\n", x->path, strerror(errno));
			close(x->fd);
			x->fd = -1;
			cmd_add_text(x->c, "stderr", m);
			x->failed_open = false;
			x->truncated = false;
			if (cmd_request(x->c, "update_read_file_close", 0, NULL, down_on_close, x) <
			    0)
				xfer_end(x, 1, NULL, "cannot send close");
			else
				x->c->interrupted = true; /* reported as a failure at close */
			return;
		}
		off += (size_t)n;
	}
	x->moved += s.len;
	down_request(x);
}

static void down_request(struct xfer *x)
{
	if (x->c->interrupted) {
		down_close(x);
		return;
	}
	size_t want = x->blocksize;
	if (x->maxsize >= 0) {
		uint64_t left = (uint64_t)x->maxsize - x->moved;
		if (left == 0) {
			x->truncated = true;
			down_close(x);
			return;
		}
		if (left < want)
			want = (size_t)left;
	}
	x->chunk_len = want;
	if (cmd_request(x->c, "update_read_file", 1, down_pack_length, down_on_data, x) < 0)
		xfer_end(x, 1, NULL, "cannot send read request");
}

static int down_start(struct cmd *c, const msgpack_object *args, char **ret_err)
{
	struct xfer *x = xfer_new(c, args, 16384);
	if (!x->path) {
		*ret_err = xstrdup("download_file: 'path' is required");
		return -EINVAL;
	}
	(void)fsutil_mkdir_parents(x->path, 0777); /* a failure shows as open()'s below */
	x->fd = open(x->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (x->fd < 0) {
		x->failed_open = true;
		if (cmd_request(c, "update_read_file_close", 0, NULL, down_on_close, x) < 0)
			xfer_end(x, 1, NULL, "cannot send close");
		return 0;
	}
	int64_t mode;
	if (proto_obj_int(proto_map_get(args, "mode"), &mode) && mode >= 0)
		(void)fchmod(x->fd, (mode_t)mode);
	down_request(x);
	return 0;
}

const struct cmd_type cmd_download_file = {
	.name = "download_file",
	.start = down_start,
	.interrupt = xfer_interrupt,
	.abort = xfer_abort,
	.free_priv = xfer_release,
};
