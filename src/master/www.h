/*
 * The web UI served from memory (www.c): the bundle built from www/ by the
 * Meson build (esbuild, then embed-www.py) is compiled into kiln as a table
 * of assets, each with its gzip form and strong ETags.  www_handle()
 * (declared in http.h) answers every path that is not the API's, a change
 * hook's or /ws: the UI's pages get index.html, /assets/<hash-name> the
 * bundle, anything else 404.  The parsers below are pure (unit-tested,
 * fuzzed by tests/fuzz/fuzz-www.c).
 *
 * Adding a view (docs/UI.md): its component in www/src/, its route in
 * www/src/router.js, and its first path segment in www_views[] (www.c) so a
 * reload of its deep link gets index.html.
 */
#ifndef KILN_MASTER_WWW_H
#define KILN_MASTER_WWW_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

/* The core bundle (index.html + app.js + app.css, gzipped) must stay under
 * this; tests/unit/test-www.c fails past it. */
#define WWW_CORE_BUDGET_GZ (40u * 1024)

struct www_asset {
	const char *path;  /* "/" for index.html, else "/assets/app.HASH.js" ... */
	const char *ctype; /* Content-Type */
	const unsigned char *data;
	size_t len;
	const unsigned char *gz; /* gzip of data; NULL for index.html (a template) and
				  * when it would not be smaller */
	size_t gz_len;
	const char *etag;    /* "\"HASH\"": the first hex digits of data's SHA-256 */
	const char *etag_gz; /* "\"HASH.gz\"": the gzip representation's */
	bool immutable;      /* named by its hash: cached for a year */
};

/* The embedded assets (www_assets[0] is index.html) and whether the real UI
 * was built in (false: esbuild was missing, index.html is a notice). */
const struct www_asset *www_asset_table(size_t *ret_n);
bool www_built(void);

/* The asset answering path (url-decoded, without the query): index.html for
 * "/" and for every path under a view (www_views[]: "/builders/x" ...), the
 * named asset for "/assets/NAME"; NULL for anything else. */
const struct www_asset *www_asset_find(const char *path);

/* Room for an ETag: 16 hex digits in quotes, NUL. */
#define WWW_ETAG_SIZE 19

/* Appends index.html with its {{title}} and {{title_url}} marks replaced by
 * title and title_url (NULL: empty), HTML-escaped, to out, and writes its
 * ETag (the hash of those bytes, quoted) to ret_etag.  Errors: out's cap
 * (-E2BIG, out then failed), -EIO when hashing fails. */
int www_index_render(const char *title, const char *title_url, struct buf *out,
		     char ret_etag[WWW_ETAG_SIZE]);

/* Whether an Accept-Encoding value lets us answer gzip (RFC 9110 12.5.3:
 * "gzip" or "x-gzip" or "*" with a q-value above 0, unless gzip itself is
 * listed with q=0).  A malformed element counts as not listed. */
bool www_accepts_gzip(const char *accept_encoding);

/* Whether an If-None-Match value matches etag (a quoted strong ETag) by the
 * weak comparison RFC 9110 13.1.2 asks for: "*", or one element of the
 * comma-separated list equal to etag, with or without a W/ prefix. */
bool www_etag_matches(const char *if_none_match, const char *etag);

#endif
