/*
 * /api/v2/builds/N/artifacts, /api/v2/artifacts/N and
 * /api/v2/artifacts/N/download: the files upload steps stored (a Kiln
 * extension; rows in db.h "artifacts", files under BASEDIR/artifacts).  A
 * download streams the file from disk a piece at a time, honours one HTTP
 * Range (bytes=a-b, a-, -n: 206 with Content-Range; 416 when it cannot be
 * satisfied) and carries the sha256 as its ETag.  docs/API.md "Artifacts".
 */
#define LOG_SUBSYS "api"

#include "master/api-int.h"
#include "master/http.h"
#include "master/master.h"
#include "master/transfer.h"

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "db/db.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static json_t *api_artifacts_envelope(json_t *items)
{
	size_t n = json_array_size(items);
	return json_pack("{s:o,s:{s:I}}", "artifacts", items, "meta", "total", (json_int_t)n);
}

/* An artifacts request waiting for its read (issue 14); cont goes on with
 * one artifact. */
typedef void (*api_art_fn)(struct api_ctx *ctx, const struct db_artifact *a);
struct api_art_wait {
	struct http_deferred *d;
	struct api_ctx ctx; /* without path segments: read before the wait */
	api_art_fn cont;
};

static struct api_art_wait *api_art_wait_new(struct api_ctx *ctx, api_art_fn cont)
{
	struct api_art_wait *w = xcalloc(1, sizeof(*w));
	w->ctx = *ctx;
	w->ctx.ncap = 0;
	w->cont = cont;
	return w;
}

static struct api_ctx *api_art_wait_ctx(struct api_art_wait *w, int r, const char *err)
{
	return api_deferred_ctx(w->d, &w->ctx, r, err);
}

static void api_build_artifacts_answered(void *arg, int r, json_t *items, int64_t total,
					 const char *err)
{
	struct api_art_wait *w = arg;
	(void)total;
	struct api_ctx *ctx = api_art_wait_ctx(w, r, err);
	if (ctx)
		api_reply_json(ctx, 200, api_artifacts_envelope(json_incref(items)));
	json_decref(items);
	http_deferred_end(w->d);
	free(w);
}

void api_build_artifacts_get(struct api_ctx *ctx)
{
	long long id;
	if (str_to_i64(ctx->cap[0], &id) < 0) {
		api_invalid_path(ctx);
		return;
	}
	struct api_art_wait *w = api_art_wait_new(ctx, NULL);
	int r = db_artifacts_of_build_async(ctx->db, id, KILN_ARTIFACTS_MAX_LIST,
					    api_build_artifacts_answered, w);
	if (r < 0) {
		api_reply_db_error(ctx, r);
		free(w);
		return;
	}
	w->d = http_req_defer(ctx->req);
}

static void api_artifact_found(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct api_art_wait *w = arg;
	(void)total;
	struct api_ctx *ctx = api_art_wait_ctx(w, r, err);
	struct db_artifact a = {0};
	if (ctx && !json_array_size(items))
		api_not_found(ctx);
	else if (ctx && db_artifact_from_json(json_array_get(items, 0), &a) < 0)
		api_reply_error(ctx, 500, "artifact text is not valid");
	else if (ctx)
		w->cont(ctx, &a);
	db_artifact_release(&a);
	json_decref(items);
	http_deferred_end(w->d);
	free(w);
}

/* The artifact of the path's id, then cont; or answered (400, 404, 500). */
static void api_artifacts_lookup(struct api_ctx *ctx, api_art_fn cont)
{
	long long id;
	if (str_to_i64(ctx->cap[0], &id) < 0) {
		api_invalid_path(ctx);
		return;
	}
	struct api_art_wait *w = api_art_wait_new(ctx, cont);
	int r = db_artifact_get_async(ctx->db, id, api_artifact_found, w);
	if (r < 0) {
		api_reply_db_error(ctx, r);
		free(w);
		return;
	}
	w->d = http_req_defer(ctx->req);
}

static void api_artifact_reply(struct api_ctx *ctx, const struct db_artifact *ap)
{
	struct db_artifact a = *ap;
	json_t *o = json_pack("{s:I, s:I, s:o, s:s, s:s, s:I, s:s, s:I}", "artifactid",
			      (json_int_t)a.artifactid, "buildid", (json_int_t)a.buildid, "stepid",
			      a.stepid ? json_integer(a.stepid) : json_null(), "name", a.name,
			      "path", a.path, "size", (json_int_t)a.size, "sha256", a.sha256,
			      "created_at", (json_int_t)a.created_at);
	if (!o) {
		api_reply_error(ctx, 500, "artifact text is not valid");
		return;
	}
	json_t *items = json_array();
	json_array_append_new(items, o);
	api_reply_json(ctx, 200, api_artifacts_envelope(items));
}

void api_artifact_get(struct api_ctx *ctx)
{
	api_artifacts_lookup(ctx, api_artifact_reply);
}

/* Reads a decimal byte position; false unless all of [p, end) are digits
 * and the value fits. */
static bool api_artifacts_num(const char *p, const char *end, int64_t *ret)
{
	if (p == end || end - p > 18)
		return false;
	int64_t v = 0;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (*p - '0');
	}
	*ret = v;
	return true;
}

int api_artifact_range_parse(const char *h, int64_t size, int64_t *ret_first, int64_t *ret_last)
{
	if (!h || strncmp(h, "bytes=", 6))
		return 0;
	const char *p = h + 6;
	while (*p == ' ')
		p++;
	const char *end = p + strlen(p);
	while (end > p && end[-1] == ' ')
		end--;
	if (memchr(p, ',', (size_t)(end - p)))
		return 0; /* several ranges: the whole file (RFC 9110 allows it) */
	const char *dash = memchr(p, '-', (size_t)(end - p));
	if (!dash)
		return 0;
	int64_t a, b;
	if (dash == p) { /* -n: the last n bytes */
		if (!api_artifacts_num(dash + 1, end, &b))
			return 0;
		if (b == 0 || size == 0)
			return -ERANGE;
		*ret_first = b >= size ? 0 : size - b;
		*ret_last = size - 1;
		return 1;
	}
	if (!api_artifacts_num(p, dash, &a))
		return 0;
	if (dash + 1 == end) {
		b = INT64_MAX;
	} else {
		if (!api_artifacts_num(dash + 1, end, &b))
			return 0;
		if (b < a)
			return 0; /* invalid: ignored */
	}
	if (a >= size)
		return -ERANGE;
	*ret_first = a;
	*ret_last = b >= size ? size - 1 : b;
	return 1;
}

/* A download in progress: the open file and the bytes still to send. */
struct api_artifacts_dl {
	int fd;
	int64_t off, left;
	int64_t artifactid;
};

static int api_artifacts_produce(void *ud, struct buf *out)
{
	struct api_artifacts_dl *d = ud;
	if (d->left <= 0)
		return 0;
	size_t want = out->max - out->len;
	if ((int64_t)want > d->left)
		want = (size_t)d->left;
	char *tmp = xmalloc(want);
	ssize_t n;
	do
		n = pread(d->fd, tmp, want, d->off);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		/* the file shrank or failed under us: cut the connection, the
		 * client sees an incomplete body */
		log_warn("artifact %" PRId64 ": read failed at %" PRId64 ": %s", d->artifactid,
			 d->off, n < 0 ? strerror(errno) : "end of file");
		free(tmp);
		return -EIO;
	}
	int r = buf_add(out, tmp, (size_t)n);
	free(tmp);
	if (r < 0)
		return -EIO;
	d->off += n;
	d->left -= n;
	return d->left > 0 ? 1 : 0;
}

static void api_artifacts_dl_free(void *ud)
{
	struct api_artifacts_dl *d = ud;
	close(d->fd);
	free(d);
}

static void api_artifact_download(struct api_ctx *ctx, const struct db_artifact *ap)
{
	const struct db_artifact a = *ap; /* the caller releases it */
	_cleanup_free_ char *rel = NULL;
	int fd = -1;
	if (transfer_relpath(a.path, &rel) >= 0) {
		_cleanup_free_ char *full = xasprintf("%s/artifacts/%s", ctx->m->basedir, rel);
		fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		if (fd >= 0)
			close(fd);
		api_reply_error(ctx, 404, "the artifact's file is gone");
		return;
	}
	char hdr[128];
	int64_t size = (int64_t)sb.st_size, first = 0, last = size - 1;
	int r = 0;
	if (http_req_header(ctx->req, "range", hdr, sizeof(hdr)) >= 0)
		r = api_artifact_range_parse(hdr, size, &first, &last);
	char etag[70], crange[96];
	snprintf(etag, sizeof(etag), "\"%s\"", a.sha256);
	/* the file name a browser saves: the last part, quotes and controls replaced */
	const char *slash = strrchr(a.name, '/');
	_cleanup_free_ char *base = xstrdup(slash ? slash + 1 : a.name);
	for (char *c = base; *c; c++)
		if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20 ||
		    (unsigned char)*c == 0x7f)
			*c = '_';
	_cleanup_free_ char *disp = xasprintf("attachment; filename=\"%s\"", base);
	int64_t artifactid = a.artifactid;
	if (r < 0) {
		close(fd);
		snprintf(crange, sizeof(crange), "bytes */%" PRId64, size);
		api_reply_error(ctx, 416, "range not satisfiable");
		http_reply_header(ctx->req, "content-range", crange);
		return;
	}
	struct api_artifacts_dl *d = xcalloc(1, sizeof(*d));
	d->fd = fd;
	d->off = first;
	d->left = size ? last - first + 1 : 0;
	d->artifactid = artifactid;
	http_reply_stream(ctx->req, r > 0 ? 206 : 200, "application/octet-stream", disp,
			  api_artifacts_produce, api_artifacts_dl_free, d);
	http_reply_header(ctx->req, "etag", etag);
	http_reply_header(ctx->req, "accept-ranges", "bytes");
	if (r > 0) {
		snprintf(crange, sizeof(crange), "bytes %" PRId64 "-%" PRId64 "/%" PRId64, first,
			 last, size);
		http_reply_header(ctx->req, "content-range", crange);
	}
}

void api_artifact_download_get(struct api_ctx *ctx)
{
	api_artifacts_lookup(ctx, api_artifact_download);
}
