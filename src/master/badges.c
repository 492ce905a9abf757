/*
 * Status badges: GET /badges/BUILDER.svg.  See badges.h and docs/UI.md
 * "Badges and feeds".
 */
#define LOG_SUBSYS "badges"

#include "master/badges.h"
#include "master/feeds.h"
#include "master/http.h"
#include "master/master.h"
#include "master/www.h"

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "db/db.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Advance widths of ' ' .. '~' in DejaVu Sans (units of 1/2048 em), read
 * from the font's hmtx table. */
static const unsigned short badge_ascii_units[95] = {
	651,  821,  942,  1716, 1303, 1946, 1597, 563,  799,  799,  1024, 1716, 651,  739,
	651,  690,  1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 690,  690,
	1716, 1716, 1716, 1087, 2048, 1401, 1405, 1430, 1577, 1294, 1178, 1587, 1540, 604,
	604,  1343, 1141, 1767, 1532, 1612, 1235, 1612, 1423, 1300, 1251, 1499, 1401, 2025,
	1403, 1251, 1403, 799,  690,  799,  1716, 1024, 1024, 1255, 1300, 1126, 1300, 1260,
	721,  1300, 1298, 569,  569,  1186, 569,  1995, 1298, 1253, 1300, 1300, 842,  1067,
	803,  1298, 1212, 1675, 1212, 1212, 1075, 1303, 690,  1303, 1716,
};

#define BADGE_FONT_PX 11
#define BADGE_PAD 5 /* on each side of a text (Buildbot's left_pad, right_pad) */
#define BADGE_HEIGHT 20

unsigned badge_text_width(const char *text)
{
	unsigned long units = 0;
	const unsigned char *p = (const unsigned char *)text;
	while (*p) {
		if (*p < 0x80) {
			units += *p >= 0x20 && *p < 0x7f ? badge_ascii_units[*p - 0x20] : 0;
			p++;
			continue;
		}
		/* a multi-byte character: its length from the lead byte (a
		 * stray continuation byte counts as one U+FFFD) */
		size_t len = (*p & 0xe0) == 0xc0   ? 2
			     : (*p & 0xf0) == 0xe0 ? 3
			     : (*p & 0xf8) == 0xf0 ? 4
						   : 1;
		size_t i = 1;
		while (i < len && (p[i] & 0xc0) == 0x80)
			i++;
		units += len == 2 && i == 2 ? 1300 : 2048;
		p += i;
	}
	return (unsigned)((units * BADGE_FONT_PX + 2047) / 2048);
}

bool badge_color_valid(const char *s)
{
	if (*s == '#')
		s++;
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f') ||
		      (s[n] >= 'A' && s[n] <= 'F')))
			return false;
	return n == 3 || n == 6;
}

const char *badge_status(json_t *build)
{
	if (!build)
		return "unknown";
	if (!json_is_true(json_object_get(build, "complete")))
		return "running";
	json_t *res = json_object_get(build, "results");
	if (!json_is_integer(res))
		return "unknown";
	json_int_t v = json_integer_value(res);
	if (v < RESULTS_SUCCESS || v > RESULTS_CANCELLED)
		return "unknown";
	return db_results_name((int)v);
}

/* Buildbot's color_scheme; any other word (cancelled) is grey as there. */
static const char *badge_color(const char *status)
{
	static const struct {
		const char *status, *color;
	} scheme[] = {
		{"exception", "#007ec6"}, {"failure", "#e05d44"}, {"retry", "#007ec6"},
		{"running", "#007ec6"},   {"skipped", "#a4a61d"}, {"success", "#4c1"},
		{"warnings", "#dfb317"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(scheme); i++)
		if (!strcmp(status, scheme[i].status))
			return scheme[i].color;
	return "#9f9f9f";
}

static int badge_add_text(struct buf *b, const char *s)
{
	return feeds_add_xml(b, s, strlen(s));
}

int badge_svg_render(struct buf *out, const char *left_text, const char *left_color,
		     const char *status, enum badge_style style)
{
	unsigned lw = badge_text_width(left_text) + 2 * BADGE_PAD;
	unsigned rw = badge_text_width(status) + 2 * BADGE_PAD;
	unsigned w = lw + rw;
	const char *lhash = left_color && *left_color != '#' ? "#" : "";
	const char *lcol = left_color ? left_color : "#555";
	bool flat = style == BADGE_FLAT;

	int r = buf_addf(out,
			 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" height=\"%u\" "
			 "role=\"img\" aria-label=\"",
			 w, BADGE_HEIGHT);
	r = r < 0 ? r : badge_add_text(out, left_text);
	r = r < 0 ? r : buf_adds(out, ": ");
	r = r < 0 ? r : badge_add_text(out, status);
	r = r < 0 ? r : buf_adds(out, "\"><title>");
	r = r < 0 ? r : badge_add_text(out, left_text);
	r = r < 0 ? r : buf_adds(out, ": ");
	r = r < 0 ? r : badge_add_text(out, status);
	r = r < 0 ? r : buf_adds(out, "</title>");
	if (r >= 0 && flat)
		r = buf_addf(out,
			     "<linearGradient id=\"s\" x2=\"0\" y2=\"100%%\"><stop offset=\"0\" "
			     "stop-color=\"#bbb\" stop-opacity=\".1\"/><stop offset=\"1\" "
			     "stop-opacity=\".1\"/></linearGradient><clipPath id=\"r\"><rect "
			     "width=\"%u\" height=\"%u\" rx=\"3\" fill=\"#fff\"/></clipPath>"
			     "<g clip-path=\"url(#r)\">",
			     w, BADGE_HEIGHT);
	else if (r >= 0)
		r = buf_adds(out, "<g shape-rendering=\"crispEdges\">");
	r = r < 0 ? r
		  : buf_addf(out,
			     "<rect width=\"%u\" height=\"%u\" fill=\"%s%s\"/><rect x=\"%u\" "
			     "width=\"%u\" height=\"%u\" fill=\"%s\"/>",
			     lw, BADGE_HEIGHT, lhash, lcol, lw, rw, BADGE_HEIGHT,
			     badge_color(status));
	if (r >= 0 && flat)
		r = buf_addf(out, "<rect width=\"%u\" height=\"%u\" fill=\"url(#s)\"/>", w,
			     BADGE_HEIGHT);
	r = r < 0 ? r
		  : buf_adds(out, "</g><g fill=\"#fff\" text-anchor=\"middle\" "
				  "font-family=\"DejaVu Sans,Verdana,Geneva,sans-serif\" "
				  "font-size=\"11\">");
	/* each text twice in flat style: a shadow one pixel lower, then the text */
	const char *texts[2] = {left_text, status};
	unsigned xs2[2] = {lw, 2 * lw + rw}; /* centres, doubled to stay integral */
	for (int i = 0; i < 2 && r >= 0; i++) {
		if (flat) {
			r = buf_addf(out,
				     "<text x=\"%u.%u\" y=\"15\" fill=\"#010101\" "
				     "fill-opacity=\".3\">",
				     xs2[i] / 2, xs2[i] % 2 ? 5 : 0);
			r = r < 0 ? r : badge_add_text(out, texts[i]);
			r = r < 0 ? r : buf_adds(out, "</text>");
		}
		r = r < 0 ? r
			  : buf_addf(out, "<text x=\"%u.%u\" y=\"14\">", xs2[i] / 2,
				     xs2[i] % 2 ? 5 : 0);
		r = r < 0 ? r : badge_add_text(out, texts[i]);
		r = r < 0 ? r : buf_adds(out, "</text>");
	}
	r = r < 0 ? r : buf_adds(out, "</g></svg>\n");
	return r;
}

/* ---- the handler --------------------------------------------------------------------- */

/* The branch a build was made for: its "branch" property's value or NULL. */
static const char *badge_build_branch(json_t *build)
{
	json_t *p = json_object_get(json_object_get(build, "properties"), "branch");
	return json_string_value(json_array_get(p, 0));
}

/* A badge being made (issue 14: the builder, then its builds, each read
 * answered on a later loop turn on either backend). */
struct badge_job {
	struct http_deferred *d;
	char *name;
	enum badge_style style;
	int64_t builderid; /* 0 until the builder is found */
};

static void badge_job_end(struct badge_job *j)
{
	http_deferred_end(j->d);
	free(j->name);
	free(j);
}

/* The badge of build (NULL: none; found: whether the builder exists). */
static void badge_reply(struct http_req *req, const struct badge_job *j, json_t *build, bool found)
{
	const char *left = http_req_arg(req, "left_text");
	const char *color = http_req_arg(req, "left_color");
	struct buf out;
	buf_init(&out, 4 * KILN_BADGE_MAX_TEXT * 6 + 4096); /* texts escaped, twice, + template */
	int r = badge_svg_render(&out, left ? left : "Build Status", color, badge_status(build),
				 j->style);
	/* an unknown builder: 404, with the "unknown" badge as its body */
	feeds_reply_cached(req, r, found ? 200 : 404, "image/svg+xml", &out, KILN_BADGE_MAX_AGE_S,
			   "badge too large");
}

/* The request back, or NULL (the client went: nothing to do); a database
 * error is answered here. */
static struct http_req *badge_req(struct badge_job *j, int r, const char *err)
{
	struct http_req *req = http_deferred_req(j->d);
	if (req && r < 0) {
		log_error("badge of '%s': %s (%s)", j->name, err_str(r), err ? err : "");
		http_reply_errmsg(req, 500, "database error");
		return NULL;
	}
	return req;
}

/* The builder's latest builds are in: the latest for the branch asked. */
static void badge_on_builds(void *arg, int r, json_t *builds, int64_t total, const char *err)
{
	struct badge_job *j = arg;
	(void)total;
	struct http_req *req = badge_req(j, r, err);
	if (req) {
		const char *branch = http_req_arg(req, "branch");
		if (branch && !*branch)
			branch = NULL;
		json_t *build = NULL, *b;
		size_t i;
		json_array_foreach(builds, i, b)
		{
			const char *bb = branch ? badge_build_branch(b) : NULL;
			if (!branch || (bb && !strcmp(bb, branch))) {
				build = b;
				break;
			}
		}
		badge_reply(req, j, build, true);
	}
	json_decref(builds);
	badge_job_end(j);
}

static void badge_on_builder(void *arg, int r, json_t *builders, int64_t total, const char *err)
{
	struct badge_job *j = arg;
	(void)total;
	struct http_req *req = badge_req(j, r, err);
	json_t *first = json_array_get(builders, 0);
	if (req && !first)
		badge_reply(req, j, NULL, false);
	if (!req || !first) {
		json_decref(builders);
		badge_job_end(j);
		return;
	}
	char id[24];
	snprintf(id, sizeof(id), "%" PRId64,
		 (int64_t)json_integer_value(json_object_get(first, "builderid")));
	json_decref(builders);
	const char *branch = http_req_arg(req, "branch");
	const char *iv[] = {id};
	const char *order[] = {"-number"};
	struct db_filter f = {"builderid", DB_OP_EQ, iv, 1};
	struct db_query q = {.filters = &f,
			     .nfilters = 1,
			     .order = order,
			     .norder = 1,
			     .limit = branch && *branch ? KILN_BADGE_BRANCH_SCAN : 1};
	/* the request stays deferred: j->d answers it */
	r = db_list_async(req->m->db, DB_BUILDS, &q, NULL, false, badge_on_builds, j);
	if (r < 0) {
		badge_req(j, r, db_errmsg(req->m->db));
		badge_job_end(j);
	}
}

void badges_handle(struct http_req *req)
{
	static const char prefix[] = "/badges/", suffix[] = ".svg";
	size_t plen = strlen(req->path);
	if (plen <= sizeof(prefix) - 1 + sizeof(suffix) - 1 ||
	    strncmp(req->path, prefix, sizeof(prefix) - 1) ||
	    strcmp(req->path + plen - (sizeof(suffix) - 1), suffix)) {
		http_reply_errmsg(req, 404, "not found");
		return;
	}
	if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
		http_reply_errmsg(req, 405, "method not allowed");
		return;
	}
	const char *left = http_req_arg(req, "left_text");
	const char *color = http_req_arg(req, "left_color");
	const char *style = http_req_arg(req, "style");
	const char *branch = http_req_arg(req, "branch");
	if (!left)
		left = "Build Status";
	if (strlen(left) > KILN_BADGE_MAX_TEXT) {
		http_reply_errmsg(req, 400, "left_text too long");
		return;
	}
	if (color && !badge_color_valid(color)) {
		http_reply_errmsg(req, 400, "left_color: want 3 or 6 hex digits");
		return;
	}
	enum badge_style st = BADGE_FLAT;
	if (style && !strcmp(style, "flat-square"))
		st = BADGE_FLAT_SQUARE;
	else if (style && *style && strcmp(style, "flat")) {
		http_reply_errmsg(req, 400, "style: want flat or flat-square");
		return;
	}
	(void)branch; /* read again when the builds are in */

	size_t nlen = plen - (sizeof(prefix) - 1) - (sizeof(suffix) - 1);
	struct badge_job *j = xcalloc(1, sizeof(*j));
	j->name = xstrndup(req->path + sizeof(prefix) - 1, nlen);
	j->style = st;
	const char *nv[] = {j->name};
	struct db_filter bf = {"name", DB_OP_EQ, nv, 1};
	struct db_query bq = {.filters = &bf, .nfilters = 1, .limit = 1};
	int r = db_list_async(req->m->db, DB_BUILDERS, &bq, NULL, false, badge_on_builder, j);
	if (r < 0) {
		log_error("badge of '%s': %s", j->name, db_errmsg(req->m->db));
		http_reply_errmsg(req, 500, "database error");
		free(j->name);
		free(j);
		return;
	}
	j->d = http_req_defer(req);
}
