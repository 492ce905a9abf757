/*
 * The file transfer steps, as Buildbot's FileUpload, DirectoryUpload,
 * FileDownload, StringDownload and JSONPropertiesDownload.  The five share
 * one shape (render the paths, make a master/transfer.h owner, run
 * upload_file, upload_directory or download_file with it, read the results
 * from the worker's rc and the master's side), so they live in one file.
 * Uploads land under BASEDIR/artifacts/BUILDID (masterdest may not leave it)
 * and become artifact rows (a directory's: the tar the worker sent, kept
 * beside the extracted directory); worker paths are relative to the step's
 * workdir.
 */
#define LOG_SUBSYS "build"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "db/db.h"
#include "master/artifact-retention.h"
#include "master/engine-int.h"
#include "master/master.h"
#include "master/steps/step.h"
#include "master/transfer.h"
#include "proto/msg.h"

/* Buildbot's transfer steps' default block size. */
#define STEP_XFER_BLOCKSIZE 262144
/* The built-in number of an upload: + the step's name, the artifact's bytes. */
#define STEP_XFER_SIZE_NUMBER "artifact_size:"

/* The transfer's owner: outlives the step when the build goes away while
 * the master's side still has a write in flight (it is freed by the
 * transfer's last callback then). */
struct step_xfer {
	struct step *st;    /* NULL once the step is gone */
	struct transfer *t; /* until its complete callback */
	bool rcmd_done;     /* the worker's command will call no more */
	bool upload;
	char *dest;    /* owned: the rendered masterdest (uploads) */
	char *norm;    /* owned: dest normalised (transfer_relpath) */
	char *url;     /* owned: file_upload's rendered url, or NULL */
	char *archive; /* owned: directory_upload's kept tar, relative to the build's root */
};

/* ---------------------------------------------------- the command's ops */

/* The worker's command, with the struct step_xfer as ud: each message goes
 * to the transfer; its end also frees the step's command slot. */
static void step_xfer_r_update(void *ud, const char *key, const msgpack_object *value)
{
	struct step_xfer *x = ud;
	transfer_rcmd_ops()->update(x->t, key, value);
}

static void step_xfer_r_complete(void *ud, int status, const char *failure)
{
	struct step_xfer *x = ud;
	x->rcmd_done = true;
	if (x->st)
		step_command_ended(x->st);
	transfer_rcmd_ops()->complete(x->t, status, failure); /* may free x */
}

static void step_xfer_r_write(void *ud, const char *data, size_t len, struct rcmd_answer *a)
{
	struct step_xfer *x = ud;
	transfer_rcmd_ops()->write(x->t, data, len, a);
}

static void step_xfer_r_close_writer(void *ud, struct rcmd_answer *a)
{
	struct step_xfer *x = ud;
	transfer_rcmd_ops()->close_writer(x->t, a);
}

static void step_xfer_r_utime(void *ud, double atime, double mtime, struct rcmd_answer *a)
{
	struct step_xfer *x = ud;
	transfer_rcmd_ops()->utime(x->t, atime, mtime, a);
}

static void step_xfer_r_unpack(void *ud, struct rcmd_answer *a)
{
	struct step_xfer *x = ud;
	transfer_rcmd_ops()->unpack(x->t, a);
}

static void step_xfer_r_read(void *ud, size_t length, struct rcmd_answer *a)
{
	struct step_xfer *x = ud;
	transfer_rcmd_ops()->read(x->t, length, a);
}

static void step_xfer_r_close_reader(void *ud, struct rcmd_answer *a)
{
	struct step_xfer *x = ud;
	transfer_rcmd_ops()->close_reader(x->t, a);
}

static const struct rcmd_ops step_xfer_rops = {
	.update = step_xfer_r_update,
	.complete = step_xfer_r_complete,
	.write = step_xfer_r_write,
	.close_writer = step_xfer_r_close_writer,
	.utime = step_xfer_r_utime,
	.unpack = step_xfer_r_unpack,
	.read = step_xfer_r_read,
	.close_reader = step_xfer_r_close_reader,
};

/* The step gave the command up (an interrupt not confirmed in time): the
 * worker's command is forgotten, so the transfer is ended here. */
static void step_xfer_given_up(struct step *st, int status, const char *failure)
{
	struct step_xfer *x = st->priv;
	x->rcmd_done = true;
	transfer_rcmd_ops()->complete(x->t, status, failure);
}

static const struct step_cmd_ops step_xfer_cmd_ops = {.done = step_xfer_given_up};

/* ------------------------------------------------------ the transfer's cb */

/* stderr and header into stdio, rc kept; a transfer's end is not a program's
 * ("program finished" is not logged). */
static void step_xfer_update(void *ud, const char *key, const msgpack_object *value)
{
	struct step_xfer *x = ud;
	if (x->st)
		step_cmd_update_common(x->st, key, value, false);
}

/* Buildbot's rules: the master's own failure first (over maxsize is the
 * step's FAILURE, anything else an EXCEPTION), then how the command ended,
 * then its rc. */
static int step_xfer_results(struct step *st, int status, const char *failure,
			     const struct transfer_result *res)
{
	if (res->status == KILN_ETOOBIG) {
		step_log_header(st, "%s", res->error ? res->error : "over maxsize");
		return RESULTS_FAILURE;
	}
	if (res->status < 0) {
		step_log_header(st, "%s", res->error ? res->error : err_str(res->status));
		return RESULTS_EXCEPTION;
	}
	int results = step_command_results(st, status, failure);
	if (results >= 0)
		return results;
	if (st->rc != 0) {
		step_log_header(st, "the worker ended the transfer with exit code %d", st->rc);
		return RESULTS_FAILURE;
	}
	if (!res->done) {
		step_log_header(st, "the transfer ended before it was complete");
		return RESULTS_FAILURE;
	}
	return RESULTS_SUCCESS;
}

static void step_xfer_release(struct step_xfer *x)
{
	free(x->dest);
	free(x->norm);
	free(x->url);
	free(x->archive);
	free(x);
}

/* The uploaded file's (or directory's tar's) artifact row, its link and
 * its size as the number artifact_size:STEP, then a retention pass: 0, or
 * the database's error (the build then ends EXCEPTION). */
static int step_xfer_artifact(struct step *st, struct step_xfer *x,
			      const struct transfer_result *res)
{
	struct build *b = st->b;
	bool dir = x->archive != NULL;
	const char *name = dir ? x->archive : x->norm;
	_cleanup_free_ char *path = xasprintf("%lld/%s", (long long)b->buildid, name);
	_cleanup_free_ char *dpath = !dir ? NULL
				     : *x->norm
					     ? xasprintf("%lld/%s", (long long)b->buildid, x->norm)
					     : xasprintf("%lld", (long long)b->buildid);
	struct db_artifact a = {.buildid = b->buildid,
				.stepid = st->stepid,
				.name = (char *)name,
				.path = path,
				.size = (int64_t)res->bytes,
				.created_at = clock_wall(),
				.dir = dpath};
	for (size_t i = 0; i < sizeof(res->sha256); i++)
		snprintf(a.sha256 + 2 * i, 3, "%02x", res->sha256[i]);
	int64_t id = 0;
	int r = build_db_check(b, db_artifact_add(b->e->m->db, &a, &id), "add artifact");
	if (r < 0)
		return r;
	_cleanup_free_ char *url = xasprintf("/api/v2/artifacts/%lld/download", (long long)id);
	step_add_url(st, name, url);
	_cleanup_free_ char *num = xasprintf(STEP_XFER_SIZE_NUMBER "%s", st->cfg->name);
	r = step_record_number(st, num, (double)res->bytes);
	if (r < 0 && r != -EINVAL) /* a name too long is a line in the log, no more */
		return r;
	artifact_retention_kick(b->e->m->retention);
	return 0;
}

static void step_xfer_complete(void *ud, int status, const char *failure,
			       const struct transfer_result *res)
{
	struct step_xfer *x = ud;
	x->t = NULL; /* freed when this returns */
	struct step *st = x->st;
	if (!st) {
		step_xfer_release(x);
		return;
	}
	int results = step_xfer_results(st, status, failure, res);
	if (x->upload && res->path && results != RESULTS_SUCCESS &&
	    st->cfg->kind == CONFIG_STEP_FILE_UPLOAD && unlink(res->path) < 0)
		step_log_header(st, "cannot remove the failed upload: %s", strerror(errno));
	if (results == RESULTS_SUCCESS) {
		if (x->upload)
			step_log_header(
				st, "%llu bytes%s stored in '%s'", (unsigned long long)res->bytes,
				st->cfg->kind == CONFIG_STEP_DIRECTORY_UPLOAD ? " of tar" : "",
				x->dest);
		else
			step_log_header(st, "%llu bytes sent", (unsigned long long)res->bytes);
		if (x->upload && step_xfer_artifact(st, x, res) < 0)
			results = RESULTS_EXCEPTION;
		else if (x->url)
			step_add_url(st, st->cfg->name, x->url);
	}
	/* x is done with; the step may outlive this call (its numbers' files
	 * are read before it ends), so it no longer holds x */
	st->priv = NULL;
	x->st = NULL;
	step_finish(st, results);
	step_xfer_release(x);
}

static const struct transfer_cb step_xfer_cb = {step_xfer_update, step_xfer_complete};

/* ------------------------------------------------------------- the kinds */

/* The worker-side path of p: as it is when absolute, else in the step's
 * workdir.  Owned; NULL with a line in the log. */
static char *step_xfer_worker_path(struct step *st, const char *p)
{
	if (p[0] == '/')
		return xstrdup(p);
	return step_worker_path(st, NULL, p);
}

/* The rendered value of r; NULL (with a line in the log) when it did not
 * render or is empty. */
static char *step_xfer_render(struct step *st, const struct config_rstr *r, const char *what)
{
	char *v = NULL;
	if (step_render(st, r, what, &v) < 0)
		return NULL;
	if (!v || !*v) {
		step_log_header(st, "'%s' rendered empty", what);
		free(v);
		return NULL;
	}
	return v;
}

/* Starts the command with x; on failure the step ends. */
static void step_xfer_run(struct step *st, struct step_xfer *x, const char *name,
			  struct proto_enc *a, uint32_t n)
{
	int r = step_command_owned(st, name, a, n, &step_xfer_rops, x, &step_xfer_cmd_ops);
	proto_enc_release(a);
	if (r < 0) {
		transfer_abort(x->t);
		x->t = NULL;
		step_finish(st, step_unstarted_results(st));
	}
}

static void step_xfer_pack_common(struct step *st, struct proto_enc *a, uint32_t *n,
				  const char *path, const char *workdir, const char *key,
				  const char *rel)
{
	const struct config_transfer *c = st->cfg->transfer;
	step_pack_key(a, "path", n);
	proto_pack_str(a, path);
	step_pack_key(a, "workdir", n);
	proto_pack_str(a, workdir);
	step_pack_key(a, key, n);
	proto_pack_str(a, rel);
	step_pack_key(a, "maxsize", n);
	if (c->maxsize)
		proto_pack_int(a, (int64_t)c->maxsize);
	else
		proto_pack_nil(a);
	step_pack_key(a, "blocksize", n);
	proto_pack_int(a, STEP_XFER_BLOCKSIZE);
}

static void step_xfer_upload(struct step *st, struct step_xfer *x)
{
	const struct config_transfer *c = st->cfg->transfer;
	struct build *b = st->b;
	struct master *m = b->e->m;
	bool dir = st->cfg->kind == CONFIG_STEP_DIRECTORY_UPLOAD;
	_cleanup_free_ char *src = step_xfer_render(st, &c->src, "workersrc");
	x->dest = src ? step_xfer_render(st, &c->dest, "masterdest") : NULL;
	if (!x->dest) {
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	if (transfer_relpath(x->dest, &x->norm) < 0) {
		step_log_header(st,
				"masterdest '%s' leaves the build's artifact directory: it must "
				"be a relative path without '..'",
				x->dest);
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	if (!dir && c->url.text) {
		x->url = step_xfer_render(st, &c->url, "url");
		if (!x->url) {
			step_finish(st, RESULTS_EXCEPTION);
			return;
		}
	}
	_cleanup_free_ char *root =
		xasprintf("%s/artifacts/%lld", m->basedir, (long long)b->buildid);
	int r = fsutil_mkdir_p(root, 0755);
	if (r < 0) {
		step_log_header(st, "cannot create '%s': %s", root, err_str(r));
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	if (dir) /* the tar the worker sent is kept as the directory's artifact */
		x->archive = xasprintf("%s.tar%s%s", *x->norm ? x->norm : "directory",
				       c->compress[0] ? "." : "", c->compress);
	struct transfer_upload_opts o = {.root = root,
					 .dest = x->norm,
					 .maxsize = c->maxsize,
					 .mode = c->mode,
					 .archive = x->archive};
	r = dir ? transfer_upload_dir_begin(m->loop, &o, &step_xfer_cb, x, &x->t)
		: transfer_upload_file_begin(m->loop, &o, &step_xfer_cb, x, &x->t);
	if (r < 0) {
		step_log_header(st, "cannot prepare the upload to '%s': %s", x->norm, err_str(r));
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	_cleanup_free_ char *workdir = step_worker_path(st, NULL, NULL);
	_cleanup_free_ char *path = workdir ? step_xfer_worker_path(st, src) : NULL;
	if (!path) {
		transfer_abort(x->t);
		x->t = NULL;
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	step_set_description(st, dir ? "uploading directory" : "uploading");
	struct proto_enc a;
	proto_enc_init(&a);
	uint32_t n = 0;
	step_xfer_pack_common(st, &a, &n, path, workdir, "workersrc", src);
	if (dir) {
		step_pack_key(&a, "compress", &n);
		if (c->compress[0])
			proto_pack_str(&a, c->compress);
		else
			proto_pack_nil(&a);
	} else {
		step_pack_key(&a, "keepstamp", &n);
		proto_pack_bool(&a, c->keepstamp);
	}
	step_xfer_run(st, x, dir ? "upload_directory" : "upload_file", &a, n);
}

/* Buildbot's JSONPropertiesDownload text: the build's properties by name,
 * and its sourcestamps. Owned. */
static char *step_xfer_props_json(struct step *st)
{
	struct build *b = st->b;
	json_t *props = json_object();
	const char *k;
	json_t *v;
	json_object_foreach(b->props, k, v)
	{
		json_t *val = json_array_get(v, 0);
		json_object_set(props, k, val ? val : json_null());
	}
	json_t *sss = json_array();
	for (size_t i = 0; i < b->nss_all; i++) {
		const struct db_sourcestamp *s = &b->ss_all[i];
		json_t *o = json_object();
		json_object_set_new(o, "branch", s->branch ? json_string(s->branch) : json_null());
		json_object_set_new(o, "revision",
				    s->revision ? json_string(s->revision) : json_null());
		json_object_set_new(o, "repository",
				    json_string(s->repository ? s->repository : ""));
		json_object_set_new(o, "project", json_string(s->project ? s->project : ""));
		json_object_set_new(o, "codebase", json_string(s->codebase ? s->codebase : ""));
		json_array_append_new(sss, o);
	}
	json_t *all = json_object();
	json_object_set_new(all, "properties", props);
	json_object_set_new(all, "sourcestamps", sss);
	char *text = json_dumps(all, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(all);
	return text;
}

static void step_xfer_download(struct step *st, struct step_xfer *x)
{
	const struct config_transfer *c = st->cfg->transfer;
	struct build *b = st->b;
	struct master *m = b->e->m;
	enum config_step_kind kind = st->cfg->kind;
	_cleanup_free_ char *dest = step_xfer_render(st, &c->dest, "workerdest");
	if (!dest) {
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	int r;
	if (kind == CONFIG_STEP_FILE_DOWNLOAD) {
		_cleanup_free_ char *src = step_xfer_render(st, &c->src, "mastersrc");
		if (!src) {
			step_finish(st, RESULTS_EXCEPTION);
			return;
		}
		_cleanup_free_ char *full =
			src[0] == '/' ? xstrdup(src) : xasprintf("%s/%s", m->basedir, src);
		r = transfer_download_file_begin(m->loop, full, &step_xfer_cb, x, &x->t);
		if (r < 0) {
			/* Buildbot: a missing source is the step's failure */
			step_log_header(st, "cannot read mastersrc '%s': %s", full, err_str(r));
			step_finish(st, RESULTS_FAILURE);
			return;
		}
	} else {
		char *text = NULL;
		if (kind == CONFIG_STEP_STRING_DOWNLOAD) {
			if (step_render(st, &c->src, "s", &text) < 0) {
				step_finish(st, RESULTS_EXCEPTION);
				return;
			}
		} else {
			text = step_xfer_props_json(st);
			if (!text) {
				step_log_header(st, "cannot encode the build's properties");
				step_finish(st, RESULTS_EXCEPTION);
				return;
			}
		}
		r = transfer_download_string_begin(m->loop, text ? text : "",
						   text ? strlen(text) : 0, &step_xfer_cb, x,
						   &x->t);
		free(text);
		if (r < 0) {
			step_log_header(st, "cannot prepare the download: %s", err_str(r));
			step_finish(st, RESULTS_EXCEPTION);
			return;
		}
	}
	_cleanup_free_ char *workdir = step_worker_path(st, NULL, NULL);
	_cleanup_free_ char *path = workdir ? step_xfer_worker_path(st, dest) : NULL;
	if (!path) {
		transfer_abort(x->t);
		x->t = NULL;
		step_finish(st, RESULTS_EXCEPTION);
		return;
	}
	step_set_description(st, "downloading");
	struct proto_enc a;
	proto_enc_init(&a);
	uint32_t n = 0;
	step_xfer_pack_common(st, &a, &n, path, workdir, "workerdest", dest);
	step_pack_key(&a, "mode", &n);
	if (c->mode >= 0)
		proto_pack_int(&a, c->mode);
	else
		proto_pack_nil(&a);
	step_xfer_run(st, x, "download_file", &a, n);
}

static void step_xfer_start(struct step *st)
{
	struct step_xfer *x = xcalloc(1, sizeof(*x));
	x->st = st;
	st->priv = x;
	enum config_step_kind kind = st->cfg->kind;
	x->upload = kind == CONFIG_STEP_FILE_UPLOAD || kind == CONFIG_STEP_DIRECTORY_UPLOAD;
	if (x->upload)
		step_xfer_upload(st, x);
	else
		step_xfer_download(st, x);
}

static char *step_xfer_describe(const struct step *st)
{
	const struct config_transfer *c = st->cfg->transfer;
	switch (st->cfg->kind) {
	case CONFIG_STEP_FILE_UPLOAD:
	case CONFIG_STEP_DIRECTORY_UPLOAD:
		return xasprintf("uploading %s", c->src.text && !c->src.interp ? c->src.text : "");
	case CONFIG_STEP_JSON_PROPERTIES_DOWNLOAD:
		return xstrdup("downloading properties");
	default:
		return xasprintf("downloading to %s",
				 c->dest.text && !c->dest.interp ? c->dest.text : "");
	}
}

/* The step goes away: a transfer still running is ended (its worker
 * command was forgotten by step.c), or left to free x when its write in
 * flight is done. */
static void step_xfer_free(struct step *st)
{
	struct step_xfer *x = st->priv;
	st->priv = NULL;
	if (!x)
		return;
	x->st = NULL;
	if (!x->t) {
		step_xfer_release(x);
		return;
	}
	if (!x->rcmd_done) {
		x->rcmd_done = true;
		transfer_rcmd_ops()->complete(x->t, -ECANCELED, "the step went away");
	}
	/* step_xfer_complete frees x, now or when the disk work ends */
}

const struct step_kind step_kind_file_upload = {
	.kind = CONFIG_STEP_FILE_UPLOAD,
	.name = "file_upload",
	.describe = step_xfer_describe,
	.start = step_xfer_start,
	.free = step_xfer_free,
};

const struct step_kind step_kind_directory_upload = {
	.kind = CONFIG_STEP_DIRECTORY_UPLOAD,
	.name = "directory_upload",
	.describe = step_xfer_describe,
	.start = step_xfer_start,
	.free = step_xfer_free,
};

const struct step_kind step_kind_file_download = {
	.kind = CONFIG_STEP_FILE_DOWNLOAD,
	.name = "file_download",
	.describe = step_xfer_describe,
	.start = step_xfer_start,
	.free = step_xfer_free,
};

const struct step_kind step_kind_string_download = {
	.kind = CONFIG_STEP_STRING_DOWNLOAD,
	.name = "string_download",
	.describe = step_xfer_describe,
	.start = step_xfer_start,
	.free = step_xfer_free,
};

const struct step_kind step_kind_json_properties_download = {
	.kind = CONFIG_STEP_JSON_PROPERTIES_DOWNLOAD,
	.name = "json_properties_download",
	.describe = step_xfer_describe,
	.start = step_xfer_start,
	.free = step_xfer_free,
};
