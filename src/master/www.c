/*
 * The web UI, served from memory: the assets embed-www.py generated from
 * the esbuild bundle of www/ (www-assets.h), each with its gzip form and
 * strong ETag.  index.html answers "/" and every view's deep link and is
 * revalidated (no-cache + ETag), with the master's title filled in; the
 * hash-named JS and CSS are immutable.
 * See www.h and docs/UI.md.
 */
#include "master/www.h"
#include "master/http.h"
#include "master/master.h"

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "config/config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "www-assets.h"

/* First path segments of the UI's views (www/src/router.js): a reload of
 * "/builders/hello" must get index.html, not a 404.  "/" is the board. */
static const char *const www_views[] = {
	"builders", /* builder pages (and step log links, slice "uilog") */
	"logs",     /* slice "uilog" */
	"builds",   /* slice "uibuild": build pages */
	/* slice "uiclassic": the classic views and the force forms */
	"waterfall",
	"console",
	"grid",
	"force",
	"workers", /* slice "uimisc" */
	"requests",
	"changes", /* slice "uichanges" */
	"schedulers",
};

const struct www_asset *www_asset_table(size_t *ret_n)
{
	*ret_n = ARRAY_SIZE(www_assets);
	return www_assets;
}

bool www_built(void)
{
	return WWW_BUILT;
}

const struct www_asset *www_asset_find(const char *path)
{
	if (!strcmp(path, "/"))
		return &www_assets[0];
	if (!strncmp(path, "/assets/", 8)) {
		for (size_t i = 1; i < ARRAY_SIZE(www_assets); i++)
			if (!strcmp(path, www_assets[i].path))
				return &www_assets[i];
		return NULL;
	}
	for (size_t i = 0; i < ARRAY_SIZE(www_views); i++) {
		size_t n = strlen(www_views[i]);
		if (path[0] == '/' && !strncmp(path + 1, www_views[i], n) &&
		    (path[1 + n] == '\0' || path[1 + n] == '/'))
			return &www_assets[0];
	}
	return NULL;
}

/* ---- Accept-Encoding --------------------------------------------------------------- */

static bool www_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* [*s, *e) without optional white space at either end. */
static void www_trim(const char **s, const char **e)
{
	while (*s < *e && www_is_ows(**s))
		(*s)++;
	while (*e > *s && www_is_ows((*e)[-1]))
		(*e)--;
}

static bool www_token_is(const char *s, const char *e, const char *word)
{
	size_t n = strlen(word);
	return (size_t)(e - s) == n && !strncasecmp(s, word, n);
}

/* A qvalue (RFC 9110 12.4.2: "0" [. 0-3 digits] or "1" [. 0-3 zeros]) in
 * thousandths, or -1 when malformed. */
static int www_qvalue(const char *s, const char *e)
{
	if (s == e || (*s != '0' && *s != '1'))
		return -1;
	int q = (*s - '0') * 1000;
	s++;
	if (s == e)
		return q;
	if (*s != '.' || e - s > 4)
		return -1;
	int scale = 100;
	for (s++; s < e; s++, scale /= 10) {
		if (*s < '0' || *s > '9')
			return -1;
		q += (*s - '0') * scale;
	}
	return q > 1000 ? -1 : q;
}

/* One element "coding [; q=V] [; other=x]": its coding in [*ret_s, *ret_e)
 * and its weight; -1 when malformed (a bad q-value, an empty coding). */
static int www_coding_weight(const char *s, const char *e, const char **ret_s, const char **ret_e)
{
	const char *semi = memchr(s, ';', (size_t)(e - s));
	const char *ce = semi ? semi : e;
	int q = 1000;

	www_trim(&s, &ce);
	if (s == ce)
		return -1;
	while (semi) {
		const char *ps = semi + 1;
		semi = memchr(ps, ';', (size_t)(e - ps));
		const char *pe = semi ? semi : e;
		www_trim(&ps, &pe);
		if (pe - ps >= 2 && (ps[0] == 'q' || ps[0] == 'Q') && ps[1] == '=') {
			q = www_qvalue(ps + 2, pe);
			if (q < 0)
				return -1;
		}
	}
	*ret_s = s;
	*ret_e = ce;
	return q;
}

bool www_accepts_gzip(const char *accept_encoding)
{
	int gzip_q = -1, star_q = -1;
	const char *p = accept_encoding;

	for (;;) {
		const char *comma = strchr(p, ',');
		const char *e = comma ? comma : p + strlen(p);
		const char *cs, *ce;
		int q = www_coding_weight(p, e, &cs, &ce);
		if (q >= 0) {
			if (www_token_is(cs, ce, "gzip") || www_token_is(cs, ce, "x-gzip"))
				gzip_q = gzip_q > q ? gzip_q : q;
			else if (www_token_is(cs, ce, "*"))
				star_q = star_q > q ? star_q : q;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	return gzip_q >= 0 ? gzip_q > 0 : star_q > 0;
}

/* ---- If-None-Match ------------------------------------------------------------------ */

bool www_etag_matches(const char *if_none_match, const char *etag)
{
	const char *p = if_none_match, *e = p + strlen(p);
	size_t elen = strlen(etag);

	www_trim(&p, &e);
	if (e - p == 1 && *p == '*')
		return true;
	while (p < e) {
		if (*p == ',' || www_is_ows(*p)) {
			p++;
			continue;
		}
		if (e - p >= 2 && p[0] == 'W' && p[1] == '/')
			p += 2;
		if (p == e || *p != '"')
			return false; /* not an entity-tag: the rest cannot be trusted */
		const char *close = memchr(p + 1, '"', (size_t)(e - p - 1));
		if (!close)
			return false;
		if ((size_t)(close + 1 - p) == elen && !memcmp(p, etag, elen))
			return true;
		p = close + 1;
	}
	return false;
}

/* ---- index.html ------------------------------------------------------------------------ */

static int www_add_escaped(struct buf *b, const char *s)
{
	for (; *s; s++) {
		int r;
		switch (*s) {
		case '<':
			r = buf_adds(b, "&lt;");
			break;
		case '>':
			r = buf_adds(b, "&gt;");
			break;
		case '&':
			r = buf_adds(b, "&amp;");
			break;
		case '"':
			r = buf_adds(b, "&quot;");
			break;
		case '\'':
			r = buf_adds(b, "&#39;");
			break;
		default:
			r = buf_addch(b, *s);
			break;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

int www_index_render(const char *title, const char *title_url, struct buf *out,
		     char ret_etag[WWW_ETAG_SIZE])
{
	static const char mark_title[] = "{{title}}", mark_url[] = "{{title_url}}";
	const struct www_asset *a = &www_assets[0];
	const char *p = (const char *)a->data, *end = p + a->len;
	int r = 0;

	while (r >= 0 && p < end) {
		const char *m = memmem(p, (size_t)(end - p), "{{", 2);
		if (!m) {
			r = buf_add(out, p, (size_t)(end - p));
			break;
		}
		r = buf_add(out, p, (size_t)(m - p));
		if (r < 0)
			break;
		size_t left = (size_t)(end - m);
		if (left >= sizeof(mark_title) - 1 &&
		    !memcmp(m, mark_title, sizeof(mark_title) - 1)) {
			r = www_add_escaped(out, title);
			p = m + sizeof(mark_title) - 1;
		} else if (left >= sizeof(mark_url) - 1 &&
			   !memcmp(m, mark_url, sizeof(mark_url) - 1)) {
			r = www_add_escaped(out, title_url ? title_url : "");
			p = m + sizeof(mark_url) - 1;
		} else {
			r = buf_add(out, m, 2);
			p = m + 2;
		}
	}
	if (r < 0)
		return r;

	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (!EVP_Digest(out->ptr, out->len, md, &mdlen, EVP_sha256(), NULL) || mdlen < 8)
		return -EIO;
	snprintf(ret_etag, WWW_ETAG_SIZE, "\"%02x%02x%02x%02x%02x%02x%02x%02x\"", md[0], md[1],
		 md[2], md[3], md[4], md[5], md[6], md[7]);
	return 0;
}

/* ---- the handler --------------------------------------------------------------------- */

/* index.html, rendered with the configured title: identity only (a few
 * hundred bytes), its ETag the hash of what is sent. */
static void www_reply_index(struct http_req *req)
{
	const struct config *cfg = req->m->cfg;
	char etag[WWW_ETAG_SIZE], hdr[KILN_WWW_MAX_HEADER + 1];
	struct buf b;

	buf_init(&b, KILN_WWW_MAX_INDEX);
	int r = www_index_render(cfg && cfg->title ? cfg->title : "Kiln",
				 cfg ? cfg->title_url : NULL, &b, etag);
	if (r < 0) {
		buf_release(&b);
		/* only a title of hundreds of KiB gets here: say so rather than cut the page */
		http_reply_errmsg(req, 500, "page too large (the configured title)");
		return;
	}
	if (http_req_header(req, "if-none-match", hdr, sizeof(hdr)) >= 0 &&
	    www_etag_matches(hdr, etag)) {
		buf_release(&b);
		http_reply(req, 304, NULL, "", 0);
	} else {
		size_t len;
		char *p = buf_detach(&b, &len);
		http_reply_take(req, 200, www_assets[0].ctype, p, len);
	}
	http_reply_header(req, "etag", etag);
	http_reply_header(req, "cache-control", "no-cache");
}

void www_handle(struct http_req *req)
{
	const struct www_asset *a = www_asset_find(req->path);
	/* sized by KILN_WWW_MAX_HEADER: a longer header is ignored (identity, no 304) */
	char hdr[KILN_WWW_MAX_HEADER + 1];

	if (!a) {
		http_reply_errmsg(req, 404, "not found");
		return;
	}
	if (req->method != HTTP_GET) {
		http_reply_errmsg(req, 405, "method not allowed");
		return;
	}
	if (a == &www_assets[0]) {
		www_reply_index(req);
		return;
	}
	bool gz = a->gz && http_req_header(req, "accept-encoding", hdr, sizeof(hdr)) >= 0 &&
		  www_accepts_gzip(hdr);
	const char *etag = gz ? a->etag_gz : a->etag;
	bool fresh = http_req_header(req, "if-none-match", hdr, sizeof(hdr)) >= 0 &&
		     www_etag_matches(hdr, etag);

	if (fresh)
		http_reply(req, 304, NULL, "", 0);
	else if (gz)
		http_reply(req, 200, a->ctype, a->gz, a->gz_len);
	else
		http_reply(req, 200, a->ctype, a->data, a->len);
	/* four headers: exactly http_reply_header()'s room */
	http_reply_header(req, "etag", etag);
	http_reply_header(req, "cache-control",
			  a->immutable ? "public, max-age=31536000, immutable" : "no-cache");
	http_reply_header(req, "vary", "accept-encoding");
	if (gz && !fresh)
		http_reply_header(req, "content-encoding", "gzip");
}
