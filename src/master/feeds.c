/*
 * Atom feeds of finished builds (/feeds/builds.atom, /feeds/failures.atom,
 * ?builder=NAME), the XML escaping and the ETag the badges share.
 * See feeds.h and docs/UI.md "Badges and feeds".
 */
#define LOG_SUBSYS "feeds"

#include "master/feeds.h"
#include "master/http.h"
#include "master/master.h"
#include "master/www.h"

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

/* ---- XML text ------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid
 * (overlong, surrogate, past U+10FFFF, truncated); *ret_cp its code point. */
static size_t feeds_utf8_len(const unsigned char *s, size_t n, uint32_t *ret_cp)
{
	size_t len;
	uint32_t cp, min;
	if (s[0] < 0x80) {
		*ret_cp = s[0];
		return 1;
	} else if ((s[0] & 0xe0) == 0xc0) {
		len = 2, cp = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3, cp = s[0] & 0x0f, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4, cp = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	/* U+FFFE and U+FFFF are not XML characters either */
	if (cp == 0xfffe || cp == 0xffff)
		return 0;
	*ret_cp = cp;
	return len;
}

int feeds_add_xml(struct buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		uint32_t cp;
		size_t len = feeds_utf8_len(p + i, n - i, &cp);
		int r;
		if (len == 0) {
			r = buf_adds(b, "\xef\xbf\xbd"); /* U+FFFD */
			len = 1;
		} else if (cp == '&') {
			r = buf_adds(b, "&amp;");
		} else if (cp == '<') {
			r = buf_adds(b, "&lt;");
		} else if (cp == '>') {
			r = buf_adds(b, "&gt;");
		} else if (cp == '"') {
			r = buf_adds(b, "&quot;");
		} else if (cp == '\'') {
			r = buf_adds(b, "&#39;");
		} else if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0x7f) {
			r = 0; /* not an XML 1.0 character: dropped */
		} else {
			r = buf_add(b, p + i, len);
		}
		if (r < 0)
			return r;
		i += len;
	}
	return 0;
}

static int feeds_add_xmls(struct buf *b, const char *s)
{
	return feeds_add_xml(b, s ? s : "", s ? strlen(s) : 0);
}

int feeds_etag(const void *p, size_t n, char ret[FEEDS_ETAG_SIZE])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (!EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) || mdlen < 8)
		return -EIO;
	snprintf(ret, FEEDS_ETAG_SIZE, "\"%02x%02x%02x%02x%02x%02x%02x%02x\"", md[0], md[1], md[2],
		 md[3], md[4], md[5], md[6], md[7]);
	return 0;
}

/* ---- the Atom writer ----------------------------------------------------------------- */

/* s percent-encoded as one URL path segment or query value (unreserved
 * characters kept), which needs no further XML escaping. */
static int feeds_add_urlpart(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int r;
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~')
			r = buf_addch(b, (char)*p);
		else
			r = buf_addf(b, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* RFC 3339 UTC ("2026-12-03T04:16:58Z") of a Unix time. */
static int feeds_add_time(struct buf *b, double when)
{
	time_t t = (time_t)when;
	struct tm tm;
	char s[32];
	if (!gmtime_r(&t, &tm) || !strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm))
		return buf_adds(b, "1970-01-01T00:00:00Z");
	return buf_adds(b, s);
}

static const char *feeds_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static int feeds_add_entry(struct buf *b, const struct feeds_meta *meta, json_t *build)
{
	const char *builder = feeds_str(build, "buildername");
	json_int_t buildid = json_integer_value(json_object_get(build, "buildid"));
	json_int_t number = json_integer_value(json_object_get(build, "number"));
	json_t *res = json_object_get(build, "results");
	const char *results = json_is_integer(res) ? db_results_name((int)json_integer_value(res))
						   : "not finished";
	json_t *at = json_object_get(build, "complete_at");
	double when = json_is_number(at) ? json_number_value(at)
					 : json_number_value(json_object_get(build, "started_at"));

	int r = buf_adds(b, "<entry><id>");
	r = r < 0 ? r : feeds_add_xmls(b, meta->base_url);
	r = r < 0 ? r : buf_addf(b, "/api/v2/builds/%" PRId64 "</id><title>", (int64_t)buildid);
	r = r < 0 ? r : feeds_add_xmls(b, builder);
	r = r < 0 ? r : buf_addf(b, " #%" PRId64 ": %s</title><updated>", (int64_t)number, results);
	r = r < 0 ? r : feeds_add_time(b, when);
	r = r < 0 ? r : buf_adds(b, "</updated><link rel=\"alternate\" type=\"text/html\" href=\"");
	r = r < 0 ? r : feeds_add_xmls(b, meta->base_url);
	r = r < 0 ? r : buf_adds(b, "/builders/");
	r = r < 0 ? r : feeds_add_urlpart(b, builder);
	r = r < 0 ? r
		  : buf_addf(b, "/builds/%" PRId64 "\"/><category term=\"%s\"/><summary>",
			     (int64_t)number, results);
	r = r < 0 ? r : feeds_add_xmls(b, builder);
	r = r < 0 ? r : buf_addf(b, " build %" PRId64 " (", (int64_t)number);
	r = r < 0 ? r : feeds_add_xmls(b, results);
	r = r < 0 ? r : buf_adds(b, "): ");
	r = r < 0 ? r : feeds_add_xmls(b, feeds_str(build, "state_string"));
	r = r < 0 ? r : buf_adds(b, "</summary></entry>\n");
	return r;
}

int feeds_render(struct buf *out, const struct feeds_meta *meta, json_t *builds)
{
	const char *name = meta->kind == FEEDS_FAILURES ? "failures" : "builds";
	double updated = 0;
	size_t i;
	json_t *bld;
	json_array_foreach(builds, i, bld)
	{
		json_t *at = json_object_get(bld, "complete_at");
		if (json_is_number(at) && json_number_value(at) > updated)
			updated = json_number_value(at);
	}
	if (updated == 0)
		updated = meta->now;

	struct buf self;
	buf_init(&self, KILN_FEEDS_MAX_URL);
	int r = buf_adds(&self, meta->base_url);
	r = r < 0 ? r : buf_addf(&self, "/feeds/%s.atom", name);
	if (r >= 0 && meta->builder) {
		r = buf_adds(&self, "?builder=");
		r = r < 0 ? r : feeds_add_urlpart(&self, meta->builder);
	}
	r = r < 0 ? r : buf_addch(&self, '\0');
	if (r < 0) {
		buf_release(&self);
		return r;
	}

	r = buf_adds(out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
			  "<feed xmlns=\"http://www.w3.org/2005/Atom\">\n<id>");
	r = r < 0 ? r : feeds_add_xmls(out, self.ptr);
	r = r < 0 ? r : buf_adds(out, "</id>\n<title>");
	r = r < 0 ? r : feeds_add_xmls(out, meta->title);
	r = r < 0 ? r
		  : buf_addf(out, ": %s",
			     meta->kind == FEEDS_FAILURES ? "failed builds" : "builds");
	if (r >= 0 && meta->builder) {
		r = buf_adds(out, " of ");
		r = r < 0 ? r : feeds_add_xmls(out, meta->builder);
	}
	r = r < 0 ? r : buf_adds(out, "</title>\n<updated>");
	r = r < 0 ? r : feeds_add_time(out, updated);
	r = r < 0 ? r : buf_adds(out, "</updated>\n<link rel=\"self\" href=\"");
	r = r < 0 ? r : feeds_add_xmls(out, self.ptr);
	r = r < 0 ? r : buf_adds(out, "\"/>\n<link rel=\"alternate\" type=\"text/html\" href=\"");
	r = r < 0 ? r : feeds_add_xmls(out, meta->base_url);
	r = r < 0 ? r : buf_adds(out, "/\"/>\n<author><name>");
	r = r < 0 ? r : feeds_add_xmls(out, meta->title);
	r = r < 0 ? r : buf_adds(out, "</name></author>\n<generator>Kiln</generator>\n");
	buf_release(&self);
	json_array_foreach(builds, i, bld)
	{
		if (r < 0)
			break;
		r = feeds_add_entry(out, meta, bld);
	}
	r = r < 0 ? r : buf_adds(out, "</feed>\n");
	return r;
}

/* ---- the handler --------------------------------------------------------------------- */

void feeds_reply_cached(struct http_req *req, int r, int status, const char *content_type,
			struct buf *out, int max_age, const char *too_large)
{
	char etag[FEEDS_ETAG_SIZE];
	r = r < 0 ? r : feeds_etag(out->ptr, out->len, etag);
	if (r < 0) {
		buf_release(out);
		http_reply_errmsg(req, 500, too_large);
		return;
	}
	char hdr[KILN_WWW_MAX_HEADER + 1];
	if (status == 200 && http_req_header(req, "if-none-match", hdr, sizeof(hdr)) >= 0 &&
	    www_etag_matches(hdr, etag)) {
		buf_release(out);
		http_reply(req, 304, NULL, "", 0);
	} else {
		size_t len;
		char *p = buf_detach(out, &len);
		http_reply_take(req, status, content_type, p, len);
	}
	char cc[32];
	snprintf(cc, sizeof(cc), "max-age=%d", max_age);
	http_reply_header(req, "etag", etag);
	http_reply_header(req, "cache-control", cc);
}

/* base: the configured url without its final '/', else http://HOST. */
static int feeds_base_url(struct http_req *req, struct buf *b)
{
	const struct config *cfg = req->m->cfg;
	if (cfg && cfg->url && *cfg->url) {
		size_t n = strlen(cfg->url);
		while (n > 0 && cfg->url[n - 1] == '/')
			n--;
		return buf_add(b, cfg->url, n);
	}
	char host[KILN_WWW_MAX_HEADER + 1];
	if (http_req_header(req, "host", host, sizeof(host)) < 0 || !*host)
		snprintf(host, sizeof(host), "localhost");
	return buf_addf(b, "http://%s", host);
}

/*
 * A feed being made (issue 14): the builder asked for (by name), then the
 * builds, then their builders' names, each read answered on a later loop
 * turn on either backend; the request stays deferred meanwhile.
 */
struct feeds_job {
	struct http_deferred *d;
	enum feeds_kind kind;
	json_t *builds; /* once read */
};

static void feeds_job_end(struct feeds_job *j)
{
	json_decref(j->builds);
	http_deferred_end(j->d);
	free(j);
}

/* The request back, or NULL (the client went); a database error is
 * answered here. */
static struct http_req *feeds_req(struct feeds_job *j, int r, const char *err)
{
	struct http_req *req = http_deferred_req(j->d);
	if (req && r < 0) {
		log_error("feed: %s (%s)", err_str(r), err ? err : "");
		http_reply_errmsg(req, 500, "database error");
		return NULL;
	}
	return req;
}

static const char *feeds_builder_arg(struct http_req *req)
{
	const char *builder = http_req_arg(req, "builder");
	return builder && *builder ? builder : NULL;
}

static void feeds_reply(struct http_req *req, const struct feeds_job *j)
{
	struct buf base, out;
	buf_init(&base, KILN_FEEDS_MAX_URL);
	buf_init(&out, KILN_FEEDS_MAX_BYTES);
	int r = feeds_base_url(req, &base);
	r = r < 0 ? r : buf_addch(&base, '\0');
	const struct config *cfg = req->m->cfg;
	struct feeds_meta meta = {.base_url = base.ptr,
				  .title = cfg && cfg->title ? cfg->title : "Kiln",
				  .builder = feeds_builder_arg(req),
				  .kind = j->kind,
				  .now = clock_wall()};
	r = r < 0 ? r : feeds_render(&out, &meta, j->builds);
	buf_release(&base);
	feeds_reply_cached(req, r, 200, "application/atom+xml; charset=utf-8", &out,
			   KILN_FEEDS_MAX_AGE_S, "feed too large");
}

/* The builders of the builds are in: "buildername" on each, then the feed. */
static void feeds_on_builders(void *arg, int r, json_t *builders, int64_t total, const char *err)
{
	struct feeds_job *j = arg;
	(void)total;
	struct http_req *req = feeds_req(j, r, err);
	if (req) {
		size_t i;
		json_t *bld;
		json_array_foreach(j->builds, i, bld)
		{
			json_int_t want = json_integer_value(json_object_get(bld, "builderid"));
			size_t k;
			json_t *bd;
			json_array_foreach(builders, k, bd)
			{
				if (json_integer_value(json_object_get(bd, "builderid")) == want) {
					json_object_set(bld, "buildername",
							json_object_get(bd, "name"));
					break;
				}
			}
		}
		feeds_reply(req, j);
	}
	json_decref(builders);
	feeds_job_end(j);
}

/* The builds are in: their builders (one query). */
static void feeds_on_builds(void *arg, int r, json_t *builds, int64_t total, const char *err)
{
	struct feeds_job *j = arg;
	(void)total;
	j->builds = builds;
	struct http_req *req = feeds_req(j, r, err);
	if (!req) {
		feeds_job_end(j);
		return;
	}
	char ids[KILN_FEEDS_MAX_ENTRIES][24];
	const char *vals[KILN_FEEDS_MAX_ENTRIES];
	size_t n = 0, i;
	json_t *bld;
	json_array_foreach(builds, i, bld)
	{
		if (n == KILN_FEEDS_MAX_ENTRIES)
			break;
		snprintf(ids[n], sizeof(ids[n]), "%" PRId64,
			 (int64_t)json_integer_value(json_object_get(bld, "builderid")));
		vals[n] = ids[n];
		n++;
	}
	if (n == 0) {
		feeds_reply(req, j);
		feeds_job_end(j);
		return;
	}
	struct db_filter f = {"builderid", DB_OP_EQ, vals, n};
	struct db_query q = {.filters = &f, .nfilters = 1, .limit = -1};
	r = db_list_async(req->m->db, DB_BUILDERS, &q, NULL, false, feeds_on_builders, j);
	if (r < 0) {
		feeds_req(j, r, db_errmsg(req->m->db));
		feeds_job_end(j);
	}
}

/* The builds of the feed (builderid: "" for every builder). */
static void feeds_read_builds(struct feeds_job *j, struct http_req *req, const char *builderid)
{
	const char *idv[] = {builderid};
	const char *complete[] = {"true"};
	const char *failed[] = {"2", "4"}; /* failure, exception */
	struct db_filter f[3] = {{"complete", DB_OP_EQ, complete, 1}};
	size_t nf = 1;
	if (*builderid)
		f[nf++] = (struct db_filter){"builderid", DB_OP_EQ, idv, 1};
	if (j->kind == FEEDS_FAILURES)
		f[nf++] = (struct db_filter){"results", DB_OP_EQ, failed, 2};
	const char *order[] = {"-buildid"};
	struct db_query q = {.filters = f,
			     .nfilters = nf,
			     .order = order,
			     .norder = 1,
			     .limit = KILN_FEEDS_MAX_ENTRIES};
	int r = db_list_async(req->m->db, DB_BUILDS, &q, NULL, false, feeds_on_builds, j);
	if (r < 0) {
		feeds_req(j, r, db_errmsg(req->m->db));
		feeds_job_end(j);
	}
}

static void feeds_on_builder(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct feeds_job *j = arg;
	(void)total;
	struct http_req *req = feeds_req(j, r, err);
	json_t *first = json_array_get(items, 0);
	if (req && !first)
		http_reply_errmsg(req, 404, "no such builder");
	if (!req || !first) {
		json_decref(items);
		feeds_job_end(j);
		return;
	}
	char id[24];
	snprintf(id, sizeof(id), "%" PRId64,
		 (int64_t)json_integer_value(json_object_get(first, "builderid")));
	json_decref(items);
	feeds_read_builds(j, req, id);
}

void feeds_handle(struct http_req *req)
{
	enum feeds_kind kind;
	if (!strcmp(req->path, "/feeds/builds.atom")) {
		kind = FEEDS_BUILDS;
	} else if (!strcmp(req->path, "/feeds/failures.atom")) {
		kind = FEEDS_FAILURES;
	} else {
		http_reply_errmsg(req, 404, "not found");
		return;
	}
	if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
		http_reply_errmsg(req, 405, "method not allowed");
		return;
	}
	struct feeds_job *j = xcalloc(1, sizeof(*j));
	j->kind = kind;
	j->d = http_req_defer(req); /* every path below answers through it */
	const char *builder = feeds_builder_arg(req);
	if (!builder) {
		feeds_read_builds(j, req, "");
		return;
	}
	const char *v[] = {builder};
	struct db_filter f = {"name", DB_OP_EQ, v, 1};
	struct db_query q = {.filters = &f, .nfilters = 1, .limit = 1};
	int r = db_list_async(req->m->db, DB_BUILDERS, &q, NULL, false, feeds_on_builder, j);
	if (r < 0) {
		feeds_req(j, r, db_errmsg(req->m->db));
		feeds_job_end(j);
	}
}
