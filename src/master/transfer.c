/*
 * The master's side of file transfers (see transfer.h): one struct transfer
 * owns an upload_file, upload_directory or download_file command.  Disk
 * work runs as libuv fs requests or on the thread pool, one at a time per
 * transfer (an upload's blocks: their hash and their write as two jobs at
 * once).  An upload's blocks go through a bounded ring: a write is
 * answered as soon as its block is queued while the blocks answered ahead
 * of the disk stay under KILN_UPLOAD_AHEAD_*, later when they do not (the
 * worker waits for its answers: that is the backpressure); a failed write
 * is reported on the next answer or on close.  Other messages are answered
 * once their fs request is done.
 */
#define LOG_SUBSYS "transfer"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "master/engine-int.h"
#include "master/transfer.h"

enum transfer_kind {
	TRANSFER_UP_FILE,
	TRANSFER_UP_DIR,
	TRANSFER_DOWN_FILE,
	TRANSFER_DOWN_STRING,
};

/* the fs request in flight, which says what its callback continues with */
enum transfer_stage {
	TRANSFER_IDLE,
	TRANSFER_CLOSING,   /* upload closed by the worker: the fd */
	TRANSFER_CHMOD,     /* then the mode */
	TRANSFER_RENAMING,  /* then into place */
	TRANSFER_UTIME,     /* keepstamp */
	TRANSFER_UNTAR,     /* directory: extraction on the thread pool */
	TRANSFER_UNLINKING, /* directory: the tar once extracted */
	TRANSFER_ARCHIVING, /* directory: the tar once extracted, kept (opts.archive) */
	TRANSFER_READING,   /* download: the next chunk */
};

/* one upload block between its write message and its write(2) */
struct transfer_block {
	char *data; /* owned, cap bytes, kept for the ring slot's next block */
	size_t cap;
	size_t len;
	struct rcmd_answer *answer; /* owed to the worker, or NULL once answered */
};

#define TRANSFER_RING (KILN_UPLOAD_AHEAD_BLOCKS + KILN_UPLOAD_MAX_UNANSWERED)

/* a close, unpack or utime that came while blocks were still queued */
struct transfer_held {
	enum {
		TRANSFER_HELD_NONE,
		TRANSFER_HELD_CLOSE,
		TRANSFER_HELD_UNPACK,
		TRANSFER_HELD_UTIME
	} op;
	struct rcmd_answer *answer;
	double atime, mtime;
};

struct transfer {
	uv_loop_t *loop;
	enum transfer_kind kind;
	struct transfer_cb cb;
	void *ud;
	uv_file fd;       /* -1 when closed */
	char *tmp;        /* owned: upload's temporary file, NULL once renamed or removed */
	char *final;      /* owned: upload's destination (file, or directory) */
	char *archive;    /* owned: directory upload's kept tar, or NULL */
	uint64_t max;     /* bytes accepted */
	uint64_t bytes;   /* received or sent */
	uint64_t off;     /* download: next offset */
	int64_t entries;  /* directory: extracted */
	int mode;         /* file upload: -1 or permission bits */
	char *data;       /* owned: download's string, or the chunk being read */
	size_t data_len;  /* the string's length */
	size_t chunk_cap; /* allocated size of data when it holds a chunk */
	/* upload: blocks q_head .. q_head + q_len - 1 (mod TRANSFER_RING) are
	 * queued in order; the first q_answered of them were answered (answers
	 * go out in order), q_ahead bytes in all; q_owed bytes await answers */
	struct transfer_block q[TRANSFER_RING];
	unsigned q_head, q_len, q_answered;
	size_t q_ahead, q_owed;
	unsigned job_n; /* blocks from q_head the thread-pool jobs write and hash */
	bool writing;   /* those jobs are in flight */
	unsigned jobs;  /* ... how many of the two are */
	int job_err;    /* the thread-pool write's error */
	int hash_err;   /* the thread-pool hash's error */
	uv_work_t hwork;
	struct transfer_held held;
	EVP_MD_CTX *sha; /* owned: OpenSSL's SHA-256 (SHA-NI where the CPU has it) */
	unsigned char digest[32];
	uv_fs_t req;
	uv_work_t work;
	char *untar_error; /* owned: set by the thread-pool job */
	enum transfer_stage stage;
	struct rcmd_answer *pending; /* the message answered when stage ends */
	bool closed;                 /* the worker closed (or unpacked) */
	bool done;                   /* ... and the master finished its part */
	bool completed;              /* rcmd complete came: finish once idle */
	int c_status;
	char *c_failure; /* owned */
	int status;      /* first master-side failure */
	char *error;     /* owned: its text */
};

static void transfer_fail(struct transfer *t, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void transfer_fail(struct transfer *t, int r, const char *fmt, ...)
{
	if (t->status < 0)
		return; /* the first failure is the one reported */
	va_list ap;
	va_start(ap, fmt);
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	t->status = r < 0 ? r : KILN_EPROTO;
	t->error = xstrdup(msg);
}

static void transfer_answer_error(struct rcmd_answer *a, const char *msg)
{
	rcmd_answer_send(a, KILN_EPROTO, msg, NULL, 0);
}

/* ------------------------------------------------------------------ paths */

int transfer_relpath(const char *path, char **ret)
{
	if (!path)
		return KILN_EPARSE;
	size_t n = strlen(path);
	if (n == 0 || n > KILN_UNTAR_MAX_PATH || path[0] == '/')
		return KILN_EPARSE;
	struct buf out;
	buf_init(&out, KILN_UNTAR_MAX_PATH + 1);
	const char *p = path;
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			buf_release(&out);
			return KILN_EPARSE;
		}
		if (len > 0 && !(len == 1 && p[0] == '.')) {
			if ((out.len && buf_addch(&out, '/') < 0) || buf_add(&out, p, len) < 0) {
				buf_release(&out);
				return KILN_EPARSE;
			}
		}
		p += len;
		if (*p == '/')
			p++;
	}
	*ret = buf_detach(&out, NULL); /* "" for "." alone: the caller decides */
	return 0;
}

/* True if the symbolic link at rel (normalised, relative to the root)
 * pointing to target resolves inside the root, judged on the names (the
 * extraction never writes through a link, so no link can redirect a later
 * one). */
static bool transfer_link_inside(const char *rel, const char *target)
{
	if (!target || !*target || target[0] == '/' || strlen(target) > KILN_UNTAR_MAX_PATH)
		return false;
	/* depth of the link's directory */
	long depth = 0;
	for (const char *p = rel; *p; p++)
		if (*p == '/')
			depth++;
	const char *p = target;
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (--depth < 0)
				return false;
		} else if (len > 0 && !(len == 1 && p[0] == '.')) {
			depth++;
		}
		p += len;
		if (*p == '/')
			p++;
	}
	return true;
}

/* ------------------------------------------------------------------ untar */

static int64_t transfer_untar_fail(char **ret_error, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int64_t transfer_untar_fail(char **ret_error, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char msg[600];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ret_error)
		*ret_error = xstrdup(msg);
	return r;
}

/* one entry's checks: returns 0 to extract, 1 to skip (the root itself) */
static int transfer_untar_check(struct archive_entry *e, const char *destdir, char **ret_error)
{
	const char *name = archive_entry_pathname(e);
	_cleanup_free_ char *rel = NULL;
	/* the root itself: Python's tarfile (Buildbot's worker) names it "/",
	 * tar(1) "./"; it is skipped, while any other absolute name is refused */
	if (name && (!name[strspn(name, "/")] ||
		     (transfer_relpath(name + strspn(name, "/"), &rel) == 0 && !*rel)))
		return 1;
	free(rel);
	rel = NULL;
	if (!name || transfer_relpath(name, &rel) < 0)
		return (int)transfer_untar_fail(
			ret_error, KILN_EPARSE,
			"tar entry '%.200s': absolute path, '..' or bad name", name ? name : "?");
	if (!*rel)
		return 1;
	const char *hard = archive_entry_hardlink(e);
	mode_t type = archive_entry_filetype(e);
	if (hard) {
		_cleanup_free_ char *hrel = NULL;
		if (transfer_relpath(hard, &hrel) < 0 || !*hrel)
			return (int)transfer_untar_fail(ret_error, KILN_EPARSE,
							"tar entry '%.200s': hard link outside the "
							"destination",
							rel);
		_cleanup_free_ char *hfull = xasprintf("%s/%s", destdir, hrel);
		archive_entry_set_hardlink(e, hfull);
	} else if (type == AE_IFLNK) {
		if (!transfer_link_inside(rel, archive_entry_symlink(e)))
			return (int)transfer_untar_fail(
				ret_error, KILN_EPARSE,
				"tar entry '%.200s': symbolic link leaving the "
				"destination",
				rel);
	} else if (type != AE_IFREG && type != AE_IFDIR) {
		return (int)transfer_untar_fail(
			ret_error, KILN_EPARSE,
			"tar entry '%.200s': device, FIFO or socket files are not accepted", rel);
	}
	/* no setuid, setgid or sticky bits; directories stay writable by us */
	mode_t perm = archive_entry_perm(e) & 0777;
	if (type == AE_IFDIR)
		perm |= 0700;
	archive_entry_set_perm(e, perm);
	_cleanup_free_ char *full = xasprintf("%s/%s", destdir, rel);
	archive_entry_set_pathname(e, full);
	return 0;
}

static int64_t transfer_untar(struct archive *in, const char *destdir, uint64_t max_bytes,
			      char **ret_error)
{
	struct archive *out = archive_write_disk_new();
	archive_write_disk_set_options(out, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
						    ARCHIVE_EXTRACT_SECURE_NODOTDOT);
	int64_t n = 0;
	uint64_t total = 0;
	int64_t r = 0;
	for (;;) {
		struct archive_entry *e;
		int ar = archive_read_next_header(in, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar < ARCHIVE_WARN) {
			r = transfer_untar_fail(ret_error, KILN_EPARSE, "bad tar stream: %.300s",
						archive_error_string(in));
			goto out;
		}
		if (n >= KILN_UNTAR_MAX_ENTRIES) {
			r = transfer_untar_fail(ret_error, KILN_ETOOBIG,
						"tar has more than %u entries",
						(unsigned)KILN_UNTAR_MAX_ENTRIES);
			goto out;
		}
		int c = transfer_untar_check(e, destdir, ret_error);
		if (c < 0) {
			r = c;
			goto out;
		}
		if (c == 1)
			continue;
		n++;
		ar = archive_write_header(out, e);
		if (ar < ARCHIVE_WARN) {
			r = transfer_untar_fail(
				ret_error, KILN_EPARSE, "cannot extract '%.200s': %.300s",
				archive_entry_pathname(e), archive_error_string(out));
			goto out;
		}
		if (archive_entry_filetype(e) == AE_IFREG) {
			const void *block;
			size_t size;
			la_int64_t offset;
			while ((ar = archive_read_data_block(in, &block, &size, &offset)) ==
			       ARCHIVE_OK) {
				if (size > max_bytes - total) {
					r = transfer_untar_fail(
						ret_error, KILN_ETOOBIG,
						"tar holds more than %llu bytes of files",
						(unsigned long long)max_bytes);
					goto out;
				}
				total += size;
				if (archive_write_data_block(out, block, size, offset) <
				    ARCHIVE_WARN) {
					r = transfer_untar_fail(ret_error, -EIO,
								"cannot write '%.200s': %.300s",
								archive_entry_pathname(e),
								archive_error_string(out));
					goto out;
				}
			}
			if (ar != ARCHIVE_EOF) {
				r = transfer_untar_fail(ret_error, KILN_EPARSE,
							"bad tar stream: %.300s",
							archive_error_string(in));
				goto out;
			}
		}
		if (archive_write_finish_entry(out) < ARCHIVE_WARN) {
			r = transfer_untar_fail(ret_error, -EIO, "cannot finish '%.200s': %.300s",
						archive_entry_pathname(e),
						archive_error_string(out));
			goto out;
		}
	}
	r = n;
out:
	if (archive_write_close(out) < ARCHIVE_WARN && r >= 0)
		r = transfer_untar_fail(ret_error, -EIO, "cannot finish the extraction: %.300s",
					archive_error_string(out));
	archive_write_free(out);
	return r;
}

static struct archive *transfer_untar_reader(char **ret_error)
{
	struct archive *in = archive_read_new();
	/* bzip2 must be the library's own, never an external program run
	 * from the master */
	if (archive_read_support_format_tar(in) != ARCHIVE_OK ||
	    archive_read_support_filter_gzip(in) != ARCHIVE_OK ||
	    archive_read_support_filter_bzip2(in) != ARCHIVE_OK) {
		transfer_untar_fail(ret_error, -ENOTSUP,
				    "libarchive lacks tar, gzip or bzip2: %.300s",
				    archive_error_string(in));
		archive_read_free(in);
		return NULL;
	}
	return in;
}

int64_t transfer_untar_file(const char *tarpath, const char *destdir, uint64_t max_bytes,
			    char **ret_error)
{
	struct archive *in = transfer_untar_reader(ret_error);
	if (!in)
		return -ENOTSUP;
	int64_t r;
	if (archive_read_open_filename(in, tarpath, 64 << 10) != ARCHIVE_OK)
		r = transfer_untar_fail(ret_error, KILN_EPARSE, "cannot read the tar: %.300s",
					archive_error_string(in));
	else
		r = transfer_untar(in, destdir, max_bytes, ret_error);
	archive_read_free(in);
	return r;
}

int64_t transfer_untar_memory(const void *data, size_t len, const char *destdir, uint64_t max_bytes,
			      char **ret_error)
{
	struct archive *in = transfer_untar_reader(ret_error);
	if (!in)
		return -ENOTSUP;
	int64_t r;
	if (archive_read_open_memory(in, data, len) != ARCHIVE_OK)
		r = transfer_untar_fail(ret_error, KILN_EPARSE, "cannot read the tar: %.300s",
					archive_error_string(in));
	else
		r = transfer_untar(in, destdir, max_bytes, ret_error);
	archive_read_free(in);
	return r;
}

/* ------------------------------------------------------------ lifecycle */

static struct transfer *transfer_new(uv_loop_t *loop, enum transfer_kind kind,
				     const struct transfer_cb *cb, void *ud)
{
	struct transfer *t = xcalloc(1, sizeof(*t));
	t->loop = loop;
	t->kind = kind;
	t->cb = *cb;
	t->ud = ud;
	t->fd = -1;
	t->mode = -1;
	t->req.data = t;
	t->sha = EVP_MD_CTX_new();
	if (!t->sha || EVP_DigestInit_ex(t->sha, EVP_sha256(), NULL) != 1)
		abort(); /* allocation failure, as in xmalloc */
	return t;
}

static void transfer_free(struct transfer *t)
{
	EVP_MD_CTX_free(t->sha);
	/* the abnormal end (a failed or lost upload): a close and an unlink,
	 * blocking but once per transfer */
	if (t->fd >= 0)
		close(t->fd);
	if (t->tmp)
		unlink(t->tmp);
	free(t->tmp);
	free(t->final);
	free(t->archive);
	free(t->data);
	for (size_t i = 0; i < ARRAY_SIZE(t->q); i++)
		free(t->q[i].data); /* their answers were sent (transfer_finish) */
	free(t->untar_error);
	free(t->c_failure);
	free(t->error);
	free(t);
}

void transfer_abort(struct transfer *t)
{
	if (t)
		transfer_free(t);
}

static void transfer_answer_held(struct transfer *t, const char *msg);

/* Drops the queued blocks (none being written), answering those still owed
 * an answer with msg: after a failure, or when the command ended. */
static void transfer_queue_drop(struct transfer *t, const char *msg)
{
	for (; t->q_len; t->q_len--, t->q_head = (t->q_head + 1) % TRANSFER_RING) {
		struct transfer_block *b = &t->q[t->q_head];
		if (b->answer)
			transfer_answer_error(b->answer, msg);
		b->answer = NULL;
	}
	t->q_answered = 0;
	t->q_ahead = t->q_owed = 0;
}

static void transfer_finish(struct transfer *t)
{
	/* what a worker that did not wait is still owed (its connection is
	 * usually gone: then the answers are only freed) */
	transfer_queue_drop(t, t->error ? t->error : "the command ended");
	transfer_answer_held(t, t->error ? t->error : "the command ended");
	struct transfer_result res = {0};
	res.status = t->status;
	res.error = t->error;
	if (t->status == 0 && !t->done && t->c_status == 0 &&
	    (t->kind == TRANSFER_UP_FILE || t->kind == TRANSFER_UP_DIR)) {
		/* the worker completed without closing: nothing is in place */
		transfer_fail(t, KILN_EPROTO, "the worker ended the upload without closing it");
		res.status = t->status;
		res.error = t->error;
	}
	res.done = t->done;
	res.bytes = t->bytes;
	if (t->kind == TRANSFER_UP_FILE || t->kind == TRANSFER_UP_DIR) {
		memcpy(res.sha256, t->digest, sizeof(res.sha256));
		res.path = t->done ? t->final : NULL;
		res.archive = t->done ? t->archive : NULL;
	}
	res.entries = t->entries > 0 ? (uint64_t)t->entries : 0;
	t->cb.complete(t->ud, t->c_status, t->c_failure, &res);
	transfer_free(t);
}

/* The fs request (or thread-pool job) in flight ended: answer the message
 * that started it, then finish if the command completed meanwhile. */
static void transfer_idle(struct transfer *t, const void *data, size_t len)
{
	struct rcmd_answer *a = t->pending;
	t->pending = NULL;
	t->stage = TRANSFER_IDLE;
	if (a) {
		if (t->status < 0)
			transfer_answer_error(a, t->error);
		else
			rcmd_answer_send(a, 0, NULL, data, len);
	}
	if (t->completed && !t->writing)
		transfer_finish(t);
}

/* ------------------------------------------------------------- uploads */

static int transfer_mkstemp(const char *dir, char **ret_path, uv_file *ret_fd)
{
	char *path = xasprintf("%s/.kiln-upload-XXXXXX", dir);
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		int r = -errno;
		free(path);
		return r;
	}
	*ret_path = path;
	*ret_fd = fd;
	return 0;
}

static int transfer_upload_begin(uv_loop_t *loop, enum transfer_kind kind,
				 const struct transfer_upload_opts *o, const struct transfer_cb *cb,
				 void *ud, struct transfer **ret)
{
	_cleanup_free_ char *rel = NULL, *arel = NULL;
	if (transfer_relpath(o->dest, &rel) < 0 || (kind == TRANSFER_UP_FILE && !*rel))
		return KILN_EPARSE;
	if (kind == TRANSFER_UP_DIR && o->archive &&
	    (transfer_relpath(o->archive, &arel) < 0 || !*arel))
		return KILN_EPARSE;
	/* the root without symlinks: extraction refuses to go through any */
	_cleanup_free_ char *root = realpath(o->root, NULL);
	if (!root)
		return -errno;
	struct transfer *t = transfer_new(loop, kind, cb, ud);
	t->final = *rel ? xasprintf("%s/%s", root, rel) : xstrdup(root);
	t->max = o->maxsize ? o->maxsize : KILN_TRANSFER_MAX_UPLOAD;
	t->mode = o->mode >= 0 ? o->mode : 0644; /* mkostemp made it 0600 */
	int r;
	if (kind == TRANSFER_UP_FILE) {
		r = fsutil_mkdir_parents(t->final, 0755);
		if (r >= 0) {
			_cleanup_free_ char *dir = xstrdup(t->final);
			*strrchr(dir, '/') = '\0';
			r = transfer_mkstemp(dir, &t->tmp, &t->fd);
		}
	} else {
		r = fsutil_mkdir_p(t->final, 0755);
		if (r >= 0 && arel) {
			t->archive = xasprintf("%s/%s", root, arel);
			r = fsutil_mkdir_parents(t->archive, 0755);
		}
		if (r >= 0)
			r = transfer_mkstemp(root, &t->tmp, &t->fd);
	}
	if (r < 0) {
		transfer_free(t);
		return r;
	}
	*ret = t;
	return 0;
}

int transfer_upload_file_begin(uv_loop_t *loop, const struct transfer_upload_opts *o,
			       const struct transfer_cb *cb, void *ud, struct transfer **ret)
{
	return transfer_upload_begin(loop, TRANSFER_UP_FILE, o, cb, ud, ret);
}

int transfer_upload_dir_begin(uv_loop_t *loop, const struct transfer_upload_opts *o,
			      const struct transfer_cb *cb, void *ud, struct transfer **ret)
{
	return transfer_upload_begin(loop, TRANSFER_UP_DIR, o, cb, ud, ret);
}

static void transfer_fs_done(uv_fs_t *req);

/* On the thread pool, two jobs over the same blocks at once: the hash and
 * the write(2) of the blocks queued when they started never run on the
 * loop thread, which meanwhile only appends blocks to other ring slots and
 * answers; the blocks leave the ring once both are done.  (libsodium's
 * portable SHA-256 ran at a third of a raw copy's speed; OpenSSL's uses the
 * CPU's SHA instructions.) */
static void transfer_hash_job(uv_work_t *w)
{
	struct transfer *t = w->data;
	t->hash_err = 0;
	for (unsigned i = 0; i < t->job_n; i++) {
		const struct transfer_block *b = &t->q[(t->q_head + i) % TRANSFER_RING];
		if (EVP_DigestUpdate(t->sha, b->data, b->len) != 1) {
			t->hash_err = -EIO;
			return;
		}
	}
}

static void transfer_write_job(uv_work_t *w)
{
	struct transfer *t = w->data;
	t->job_err = 0;
	for (unsigned i = 0; i < t->job_n; i++) {
		const struct transfer_block *b = &t->q[(t->q_head + i) % TRANSFER_RING];
		size_t done = 0;
		while (done < b->len) {
			ssize_t n = write(t->fd, b->data + done, b->len - done);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				t->job_err = n < 0 ? -errno : -EIO;
				return;
			}
			done += (size_t)n;
		}
	}
}

/* Answers the oldest blocks still owed one while the blocks answered ahead
 * of the disk stay under their caps: the worker may then send more. */
static void transfer_queue_answer(struct transfer *t)
{
	while (t->q_answered < t->q_len && t->q_answered < KILN_UPLOAD_AHEAD_BLOCKS) {
		struct transfer_block *b = &t->q[(t->q_head + t->q_answered) % TRANSFER_RING];
		if (t->q_ahead + b->len > KILN_UPLOAD_AHEAD_BYTES)
			break; /* answered once written (or once enough is) */
		t->q_answered++;
		t->q_ahead += b->len;
		t->q_owed -= b->len;
		struct rcmd_answer *a = b->answer;
		b->answer = NULL;
		rcmd_answer_send(a, 0, NULL, NULL, 0);
	}
}

static void transfer_write_after(uv_work_t *w, int status);

/* Starts the job writing every queued block, unless one runs already. */
static void transfer_queue_kick(struct transfer *t)
{
	if (t->writing || !t->q_len || t->status < 0 || t->completed)
		return;
	t->job_n = t->q_len;
	t->writing = true;
	t->work.data = t;
	t->hwork.data = t;
	t->hash_err = 0;
	int r = uv_queue_work(t->loop, &t->work, transfer_write_job, transfer_write_after);
	if (r < 0) {
		t->writing = false;
		transfer_fail(t, r, "cannot write the upload: %s", err_str(r));
		transfer_queue_drop(t, t->error);
		return;
	}
	t->jobs = 1;
	r = uv_queue_work(t->loop, &t->hwork, transfer_hash_job, transfer_write_after);
	if (r < 0) /* reported when the write is done; nothing more is queued */
		t->hash_err = r;
	else
		t->jobs = 2;
}

static void transfer_held_run(struct transfer *t);

static void transfer_write_after(uv_work_t *w, int status)
{
	struct transfer *t = w->data;
	if (status < 0)
		transfer_fail(t, status, "cannot write the upload: %s", err_str(status));
	if (--t->jobs)
		return; /* the other job (hash or write) still runs */
	t->writing = false;
	if (t->job_err < 0)
		transfer_fail(t, t->job_err, "cannot write the upload: %s", err_str(t->job_err));
	else if (t->hash_err < 0)
		transfer_fail(t, t->hash_err, "cannot hash the upload: %s", err_str(t->hash_err));
	/* the blocks written leave the ring; one still owed its answer gets it */
	for (unsigned i = 0; i < t->job_n; i++) {
		struct transfer_block *b = &t->q[t->q_head];
		if (b->answer) {
			if (t->status < 0)
				transfer_answer_error(b->answer, t->error);
			else
				rcmd_answer_send(b->answer, 0, NULL, NULL, 0);
			b->answer = NULL;
			t->q_owed -= b->len;
		} else {
			t->q_answered--;
			t->q_ahead -= b->len;
		}
		t->q_head = (t->q_head + 1) % TRANSFER_RING;
		t->q_len--;
	}
	t->job_n = 0;
	if (t->status < 0 || t->completed)
		transfer_queue_drop(t, t->status < 0 ? t->error : "the command ended");
	else
		transfer_queue_answer(t);
	transfer_queue_kick(t);
	if (t->writing)
		return;
	if (t->held.op != TRANSFER_HELD_NONE)
		transfer_held_run(t);
	else if (t->completed && t->stage == TRANSFER_IDLE)
		transfer_finish(t);
}

/* True (and a is answered) when a message came while another is being
 * served: the worker did not wait for its answer. */
static bool transfer_busy(struct transfer *t, struct rcmd_answer *a)
{
	if (t->stage == TRANSFER_IDLE && t->held.op == TRANSFER_HELD_NONE)
		return false;
	transfer_fail(t, KILN_EPROTO,
		      "the worker sent a transfer message before its last was "
		      "answered");
	transfer_answer_error(a, t->error);
	return true;
}

/* A close, unpack or utime while blocks are queued waits for them. */
static bool transfer_hold(struct transfer *t, int op, struct rcmd_answer *a, double atime,
			  double mtime)
{
	if (!t->q_len)
		return false;
	t->held.op = op;
	t->held.answer = a;
	t->held.atime = atime;
	t->held.mtime = mtime;
	return true;
}

static void transfer_answer_held(struct transfer *t, const char *msg)
{
	if (t->held.op == TRANSFER_HELD_NONE)
		return;
	t->held.op = TRANSFER_HELD_NONE;
	transfer_answer_error(t->held.answer, msg);
	t->held.answer = NULL;
}

static void transfer_write(void *ud, const char *data, size_t len, struct rcmd_answer *a)
{
	struct transfer *t = ud;
	if (t->kind != TRANSFER_UP_FILE && t->kind != TRANSFER_UP_DIR) {
		transfer_answer_error(a, "this command is a download");
		return;
	}
	if (t->status < 0) {
		transfer_answer_error(a, t->error);
		return;
	}
	if (t->closed || t->held.op != TRANSFER_HELD_NONE) {
		transfer_answer_error(a, "write after the upload was closed");
		return;
	}
	if (transfer_busy(t, a))
		return;
	if (len > t->max - t->bytes) {
		transfer_fail(t, KILN_ETOOBIG, "upload over its maximum size of %llu bytes",
			      (unsigned long long)t->max);
		transfer_answer_error(a, t->error);
		return;
	}
	unsigned owed = t->q_len - t->q_answered;
	if (owed >= KILN_UPLOAD_MAX_UNANSWERED ||
	    (owed && len > KILN_UPLOAD_MAX_UNANSWERED_BYTES - t->q_owed) ||
	    t->q_len >= TRANSFER_RING) {
		transfer_fail(t, KILN_EPROTO,
			      "the worker sent more than %u writes (or %u bytes) without "
			      "waiting for their answers",
			      (unsigned)KILN_UPLOAD_MAX_UNANSWERED,
			      (unsigned)KILN_UPLOAD_MAX_UNANSWERED_BYTES);
		transfer_answer_error(a, t->error);
		return;
	}
	if (len == 0 && !t->q_len) {
		/* nothing to write (else it is answered in its turn) */
		rcmd_answer_send(a, 0, NULL, NULL, 0);
		return;
	}
	struct transfer_block *b = &t->q[(t->q_head + t->q_len) % TRANSFER_RING];
	if (len > b->cap) {
		free(b->data);
		b->data = xmalloc(len);
		b->cap = len;
	}
	if (len)
		memcpy(b->data, data, len);
	b->len = len;
	b->answer = a;
	t->q_len++;
	t->q_owed += len;
	t->bytes += len;
	transfer_queue_answer(t);
	transfer_queue_kick(t);
}

static void transfer_untar_job(uv_work_t *w)
{
	struct transfer *t = w->data;
	t->entries = transfer_untar_file(t->tmp, t->final, t->max, &t->untar_error);
}

static void transfer_untar_after(uv_work_t *w, int status)
{
	struct transfer *t = w->data;
	if (status < 0)
		transfer_fail(t, status, "extraction cancelled");
	else if (t->entries < 0)
		transfer_fail(t, (int)t->entries, "%s",
			      t->untar_error ? t->untar_error : "cannot extract the tar");
	int r;
	if (t->status == 0 && t->archive) {
		t->stage = TRANSFER_ARCHIVING;
		r = uv_fs_rename(t->loop, &t->req, t->tmp, t->archive, transfer_fs_done);
		if (r >= 0)
			return;
		transfer_fail(t, r, "cannot keep the tar: %s", err_str(r));
	}
	t->stage = TRANSFER_UNLINKING;
	r = uv_fs_unlink(t->loop, &t->req, t->tmp, transfer_fs_done);
	if (r < 0)
		transfer_idle(t, NULL, 0); /* transfer_free() unlinks it */
}

/* Continues after the fs request of t->stage ended with result r. */
static void transfer_fs_next(struct transfer *t, ssize_t r)
{
	int rr = (int)(r < 0 ? r : 0);
	switch (t->stage) {
	case TRANSFER_CLOSING:
		t->fd = -1;
		if (r < 0) {
			transfer_fail(t, rr, "cannot close the upload: %s", err_str(rr));
			break;
		}
		if (t->kind == TRANSFER_UP_DIR) {
			t->stage = TRANSFER_UNTAR;
			t->work.data = t;
			rr = uv_queue_work(t->loop, &t->work, transfer_untar_job,
					   transfer_untar_after);
			if (rr < 0)
				transfer_fail(t, rr, "cannot start the extraction: %s",
					      err_str(rr));
			else
				return;
			break;
		}
		if (t->mode >= 0) {
			t->stage = TRANSFER_CHMOD;
			rr = uv_fs_chmod(t->loop, &t->req, t->tmp, t->mode & 07777,
					 transfer_fs_done);
		} else {
			t->stage = TRANSFER_RENAMING;
			rr = uv_fs_rename(t->loop, &t->req, t->tmp, t->final, transfer_fs_done);
		}
		if (rr >= 0)
			return;
		transfer_fail(t, rr, "cannot move the upload into place: %s", err_str(rr));
		break;
	case TRANSFER_CHMOD:
		if (r < 0) {
			transfer_fail(t, rr, "cannot apply the mode: %s", err_str(rr));
			break;
		}
		t->stage = TRANSFER_RENAMING;
		rr = uv_fs_rename(t->loop, &t->req, t->tmp, t->final, transfer_fs_done);
		if (rr >= 0)
			return;
		transfer_fail(t, rr, "cannot move the upload into place: %s", err_str(rr));
		break;
	case TRANSFER_RENAMING:
		if (r < 0) {
			transfer_fail(t, rr, "cannot move the upload into place: %s", err_str(rr));
			break;
		}
		free(t->tmp);
		t->tmp = NULL;
		t->done = true;
		break;
	case TRANSFER_UTIME:
		if (r < 0)
			transfer_fail(t, rr, "cannot set the upload's times: %s", err_str(rr));
		break;
	case TRANSFER_ARCHIVING:
		if (r < 0) {
			transfer_fail(t, rr, "cannot keep the tar: %s", err_str(rr));
			break; /* transfer_free() removes the temporary file */
		}
		free(t->tmp);
		t->tmp = NULL;
		t->done = true;
		break;
	case TRANSFER_UNLINKING:
		free(t->tmp);
		t->tmp = NULL;
		if (t->status == 0)
			t->done = true;
		break;
	case TRANSFER_READING:
		if (r < 0) {
			transfer_fail(t, rr, "cannot read the file to download: %s", err_str(rr));
			break;
		}
		t->off += (uint64_t)r;
		t->bytes += (uint64_t)r;
		transfer_idle(t, t->data, (size_t)r);
		return;
	default:
		break;
	}
	transfer_idle(t, NULL, 0);
}

static void transfer_fs_done(uv_fs_t *req)
{
	struct transfer *t = req->data;
	ssize_t r = req->result;
	uv_fs_req_cleanup(req);
	transfer_fs_next(t, r);
}

static void transfer_digest(struct transfer *t)
{
	unsigned int n = 0;
	if (EVP_DigestFinal_ex(t->sha, t->digest, &n) != 1 || n != sizeof(t->digest))
		transfer_fail(t, -EIO, "cannot compute the upload's sha256");
}

/* The end of an upload's stream (a file's close, a tar's unpack): the
 * digest is taken, the file closed off the loop, the answer sent then. */
static void transfer_end_upload(struct transfer *t, struct rcmd_answer *a, enum transfer_kind kind,
				const char *not_kind, const char *twice, const char *what)
{
	if (t->kind != kind) {
		transfer_answer_error(a, not_kind);
		return;
	}
	if (transfer_busy(t, a))
		return;
	if (t->status < 0 || t->closed) {
		transfer_answer_error(a, t->status < 0 ? t->error : twice);
		return;
	}
	if (transfer_hold(t, kind == TRANSFER_UP_FILE ? TRANSFER_HELD_CLOSE : TRANSFER_HELD_UNPACK,
			  a, 0, 0))
		return; /* once the blocks before it are on disk */
	t->closed = true;
	transfer_digest(t);
	t->pending = a;
	t->stage = TRANSFER_CLOSING;
	int r = uv_fs_close(t->loop, &t->req, t->fd, transfer_fs_done);
	if (r < 0) {
		transfer_fail(t, r, "cannot close the %s: %s", what, err_str(r));
		transfer_idle(t, NULL, 0);
	}
}

static void transfer_close_writer(void *ud, struct rcmd_answer *a)
{
	transfer_end_upload(ud, a, TRANSFER_UP_FILE, "this command is not a file upload",
			    "upload closed twice", "upload");
}

static void transfer_unpack(void *ud, struct rcmd_answer *a)
{
	transfer_end_upload(ud, a, TRANSFER_UP_DIR, "this command is not a directory upload",
			    "directory unpacked twice", "tar");
}

/* keepstamp: the worker sends it after close (Buildbot 3.7's master failed
 * here with an exception); before close it applies to the open file */
static void transfer_utime(void *ud, double atime, double mtime, struct rcmd_answer *a)
{
	struct transfer *t = ud;
	if (t->kind != TRANSFER_UP_FILE) {
		transfer_answer_error(a, "this command is not a file upload");
		return;
	}
	if (transfer_busy(t, a))
		return;
	if (!isfinite(atime) || !isfinite(mtime) || atime < 0 || mtime < 0 || atime > 1e11 ||
	    mtime > 1e11) {
		transfer_answer_error(a, "utime with times out of range");
		return;
	}
	if (t->status < 0) {
		transfer_answer_error(a, t->error);
		return;
	}
	if (transfer_hold(t, TRANSFER_HELD_UTIME, a, atime, mtime))
		return; /* a write after it would move the mtime again */
	t->pending = a;
	t->stage = TRANSFER_UTIME;
	int r = t->done ? uv_fs_utime(t->loop, &t->req, t->final, atime, mtime, transfer_fs_done)
			: uv_fs_futime(t->loop, &t->req, t->fd, atime, mtime, transfer_fs_done);
	if (r < 0) {
		transfer_fail(t, r, "cannot set the upload's times: %s", err_str(r));
		transfer_idle(t, NULL, 0);
	}
}

/* ----------------------------------------------------------- downloads */

int transfer_download_file_begin(uv_loop_t *loop, const char *path, const struct transfer_cb *cb,
				 void *ud, struct transfer **ret)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int r = fstat(fd, &st) < 0     ? -errno
		: S_ISDIR(st.st_mode)  ? -EISDIR
		: !S_ISREG(st.st_mode) ? -EINVAL
				       : 0;
	if (r < 0) {
		close(fd);
		return r;
	}
	struct transfer *t = transfer_new(loop, TRANSFER_DOWN_FILE, cb, ud);
	t->fd = fd;
	*ret = t;
	return 0;
}

int transfer_download_string_begin(uv_loop_t *loop, const void *data, size_t len,
				   const struct transfer_cb *cb, void *ud, struct transfer **ret)
{
	struct transfer *t = transfer_new(loop, TRANSFER_DOWN_STRING, cb, ud);
	t->data = len ? xmemdup(data, len) : NULL;
	t->data_len = len;
	*ret = t;
	return 0;
}

static void transfer_read(void *ud, size_t length, struct rcmd_answer *a)
{
	struct transfer *t = ud;
	if (t->kind != TRANSFER_DOWN_FILE && t->kind != TRANSFER_DOWN_STRING) {
		transfer_answer_error(a, "this command is an upload");
		return;
	}
	if (transfer_busy(t, a))
		return;
	if (t->status < 0 || t->closed) {
		transfer_answer_error(a, t->status < 0 ? t->error : "read after close");
		return;
	}
	if (length > KILN_TRANSFER_MAX_CHUNK)
		length = KILN_TRANSFER_MAX_CHUNK;
	if (t->kind == TRANSFER_DOWN_STRING) {
		size_t n = t->data_len - t->off;
		if (n > length)
			n = length;
		/* an empty bin (not nil) at the end: Buildbot's workers take
		 * both as EOF, and the bytes are never left out */
		rcmd_answer_send(a, 0, NULL, t->data ? t->data + t->off : "", n);
		t->off += n;
		t->bytes += n;
		return;
	}
	if (length > t->chunk_cap) {
		free(t->data);
		t->data = xmalloc(length);
		t->chunk_cap = length;
	}
	t->pending = a;
	t->stage = TRANSFER_READING;
	uv_buf_t iov = uv_buf_init(t->data, (unsigned)length);
	int r = uv_fs_read(t->loop, &t->req, t->fd, &iov, 1, (int64_t)t->off, transfer_fs_done);
	if (r < 0) {
		transfer_fail(t, r, "cannot read the file to download: %s", err_str(r));
		transfer_idle(t, NULL, 0);
	}
}

static void transfer_close_reader(void *ud, struct rcmd_answer *a)
{
	struct transfer *t = ud;
	if (t->kind != TRANSFER_DOWN_FILE && t->kind != TRANSFER_DOWN_STRING) {
		transfer_answer_error(a, "this command is an upload");
		return;
	}
	if (transfer_busy(t, a))
		return;
	t->closed = true;
	t->done = true;
	rcmd_answer_send(a, 0, NULL, NULL, 0);
}

/* ------------------------------------------------------------- rcmd_ops */

static void transfer_update(void *ud, const char *key, const msgpack_object *value)
{
	struct transfer *t = ud;
	if (t->cb.update)
		t->cb.update(t->ud, key, value);
}

static void transfer_complete(void *ud, int status, const char *failure)
{
	struct transfer *t = ud;
	t->completed = true;
	t->c_status = status;
	t->c_failure = xstrdup_or_null(failure);
	if (t->stage == TRANSFER_IDLE && !t->writing)
		transfer_finish(t);
	/* else: when the request or the write in flight ends (transfer_idle,
	 * transfer_write_after) */
}

/* Serves the close, unpack or utime held while blocks were queued, now that
 * they are on disk (or failed, which its answer then says). */
static void transfer_held_run(struct transfer *t)
{
	if (t->completed) {
		transfer_answer_held(t, t->error ? t->error : "the command ended");
		if (t->stage == TRANSFER_IDLE)
			transfer_finish(t);
		return;
	}
	struct transfer_held h = t->held;
	t->held.op = TRANSFER_HELD_NONE;
	t->held.answer = NULL;
	switch (h.op) {
	case TRANSFER_HELD_CLOSE:
		transfer_close_writer(t, h.answer);
		break;
	case TRANSFER_HELD_UNPACK:
		transfer_unpack(t, h.answer);
		break;
	case TRANSFER_HELD_UTIME:
		transfer_utime(t, h.atime, h.mtime, h.answer);
		break;
	default:
		break;
	}
}

static const struct rcmd_ops transfer_ops = {
	.update = transfer_update,
	.complete = transfer_complete,
	.write = transfer_write,
	.close_writer = transfer_close_writer,
	.utime = transfer_utime,
	.unpack = transfer_unpack,
	.read = transfer_read,
	.close_reader = transfer_close_reader,
};

const struct rcmd_ops *transfer_rcmd_ops(void)
{
	return &transfer_ops;
}
