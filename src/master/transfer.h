/*
 * The master's side of the worker protocol's file transfers (upload_file,
 * upload_directory, download_file): a struct transfer is the owner of one
 * such remote command.  Its rcmd_ops (transfer_rcmd_ops) stream an upload to
 * a temporary file on the thread pool (a chunk is answered once queued while
 * the bytes answered ahead of the disk stay under KILN_UPLOAD_AHEAD_*, else
 * once written; a worker may keep several writes in flight, up to
 * KILN_UPLOAD_MAX_UNANSWERED; a close waits for the queued chunks), move it
 * into place on close, extract a directory's tar on a thread-pool thread,
 * and answer a download's reads from a file or from memory.
 *
 * Typical use (a step, on the loop thread):
 *
 *	struct transfer *t;
 *	r = transfer_upload_file_begin(loop, &opts, &my_cb, my_ud, &t);
 *	r = wconn_start_command(w, "upload_file", builder, &args, n,
 *				transfer_rcmd_ops(), t, &cmd);
 *	if (r < 0)
 *		transfer_abort(t);
 *	... my_cb.complete(my_ud, status, failure, &result) comes once, last;
 *	    the transfer is freed after it returns.
 */
#ifndef KILN_MASTER_TRANSFER_H
#define KILN_MASTER_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>
#include <uv.h>

struct transfer;
struct rcmd_ops;

/* What the master's side did, given to transfer_cb.complete. */
struct transfer_result {
	int status;               /* 0, or why the master side failed (negative) */
	const char *error;        /* borrowed: the failure's text, NULL on success */
	bool done;                /* the worker closed (upload: the file is in place) */
	uint64_t bytes;           /* bytes received (upload) or sent (download) */
	unsigned char sha256[32]; /* uploads: of the bytes received */
	const char *path;         /* borrowed: the upload's final absolute path */
	uint64_t entries;         /* directory upload: entries extracted */
	const char *archive;      /* borrowed: directory upload with opts.archive, done:
				   * the kept tar's absolute path */
};

struct transfer_cb {
	/* The command's update pairs (header, stderr, rc, elapsed), forwarded
	 * in order; may be NULL. */
	void (*update)(void *ud, const char *key, const msgpack_object *value);
	/* Last call: the command's end as rcmd_ops.complete reports it, and the
	 * master side's result.  A step succeeds only if status is 0, the rc
	 * it saw is 0, res->status is 0 and res->done. */
	void (*complete)(void *ud, int status, const char *failure,
			 const struct transfer_result *res);
};

/* Where an upload goes: dest, relative, inside root. */
struct transfer_upload_opts {
	const char *root;    /* borrowed: an existing directory (BASEDIR/artifacts/BUILDID) */
	const char *dest;    /* borrowed: relative path under root; '..' and absolute refused */
	uint64_t maxsize;    /* bytes the master accepts (file; or directory: tar and extracted
			      * total); 0: KILN_TRANSFER_MAX_UPLOAD */
	int mode;            /* file upload: permission bits to apply, or -1 (0644) */
	const char *archive; /* borrowed, directory upload: relative path under root where the
			      * tar is kept once extracted (NULL: it is removed) */
};

/* The rcmd_ops of every transfer; the command's ud is the struct transfer. */
const struct rcmd_ops *transfer_rcmd_ops(void);

/* An upload_file owner: creates dest's parent directories and a temporary
 * file beside dest (blocking: one mkdir and one open per upload).  Errors:
 * KILN_EPARSE (dest absolute, with '..', empty or too long; *ret_error
 * says so when ret_error is non-NULL), -errno. */
int transfer_upload_file_begin(uv_loop_t *loop, const struct transfer_upload_opts *o,
			       const struct transfer_cb *cb, void *ud, struct transfer **ret);
/* An upload_directory owner: the tar stream (plain, gzip or bzip2) goes to
 * a temporary file in root; on unpack it is extracted under root/dest by
 * transfer_untar_file() on the thread pool, then moved to root/archive
 * (o->archive set; KILN_EPARSE if it is not a relative path) or removed. */
int transfer_upload_dir_begin(uv_loop_t *loop, const struct transfer_upload_opts *o,
			      const struct transfer_cb *cb, void *ud, struct transfer **ret);
/* A download_file owner reading path (opened now: -ENOENT etc. before any
 * command is sent). */
int transfer_download_file_begin(uv_loop_t *loop, const char *path, const struct transfer_cb *cb,
				 void *ud, struct transfer **ret);
/* A download_file owner serving len bytes of data (copied): StringDownload,
 * and JSONPropertiesDownload with the properties' JSON text. */
int transfer_download_string_begin(uv_loop_t *loop, const void *data, size_t len,
				   const struct transfer_cb *cb, void *ud, struct transfer **ret);
/* Frees a transfer whose command was never started (wconn_start_command
 * failed); removes its temporary file.  No callback is called. */
void transfer_abort(struct transfer *t);

/* Checks a relative path from a step or a tar entry: not empty, not
 * absolute, no '..' component, under KILN_UNTAR_MAX_PATH; '.' components
 * and repeated '/' are dropped.  Returns the normalised copy in *ret (owned)
 * or KILN_EPARSE. */
int transfer_relpath(const char *path, char **ret);

/* Extracts the tar (plain, gzip or bzip2) at tarpath, or in memory, under
 * the existing directory destdir: regular files, directories, symbolic links
 * that stay inside destdir and hard links to entries inside it; refused:
 * absolute paths, '..', device files, FIFOs, sockets, writing through a
 * symlink, more than KILN_UNTAR_MAX_ENTRIES entries or max_bytes of file
 * data.  Owner, setuid bits and ACLs are never restored.  Blocking (run it
 * on the thread pool).  Returns the entries extracted (>= 0) or a negative
 * code with *ret_error (owned) saying which entry and why; a failure may
 * leave the entries before it in place. */
int64_t transfer_untar_file(const char *tarpath, const char *destdir, uint64_t max_bytes,
			    char **ret_error);
int64_t transfer_untar_memory(const void *data, size_t len, const char *destdir, uint64_t max_bytes,
			      char **ret_error);

#endif
