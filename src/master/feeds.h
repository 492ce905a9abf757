/*
 * Atom feeds of builds (feeds.c), as Buildbot 0.8's /atom did:
 * /feeds/builds.atom (the latest finished builds) and /feeds/failures.atom
 * (the latest finished builds that failed: results failure or exception),
 * each optionally for one builder (?builder=NAME).  The writer is pure
 * (unit-tested in tests/unit/test-feeds.c); the handler reads the builds
 * with db_list.  Also the XML text escaping and the ETag both the feeds
 * and the badges (badges.c) use.
 */
#ifndef KILN_MASTER_FEEDS_H
#define KILN_MASTER_FEEDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct buf;
struct http_req;

/* Appends n bytes of s as XML character data safe inside an element or a
 * quoted attribute: & < > " ' escaped, characters XML 1.0 forbids (C0
 * controls but tab, LF and CR; DEL) dropped, invalid UTF-8 replaced by
 * U+FFFD.  Errors: b's cap (-E2BIG). */
int feeds_add_xml(struct buf *b, const char *s, size_t n);

/* Room for a strong ETag: 16 hex digits in quotes, NUL. */
#define FEEDS_ETAG_SIZE 19
/* "\"HEX16\"": the first 8 bytes of the SHA-256 of [p, p+n); -EIO if hashing fails. */
int feeds_etag(const void *p, size_t n, char ret[FEEDS_ETAG_SIZE]);

/* Answers req with out's text (taken; r < 0: the text could not be made,
 * 500 with too_large as the message), an ETag of it, Cache-Control
 * max-age, and 304 when If-None-Match names the ETag (only for status 200:
 * a 404's body, say, is always sent).  Badges and feeds. */
void feeds_reply_cached(struct http_req *req, int r, int status, const char *content_type,
			struct buf *out, int max_age, const char *too_large);

enum feeds_kind { FEEDS_BUILDS, FEEDS_FAILURES };

struct feeds_meta {
	const char *base_url; /* the master's URL without a final '/', e.g. "http://h:8010" */
	const char *title;    /* the master's title */
	const char *builder;  /* the ?builder= filter or NULL */
	enum feeds_kind kind;
	double now; /* the feed's <updated> when it has no entries */
};

/* Appends the Atom document of builds (a JSON array of /api/v2 build
 * objects, newest first, each with "buildername" added by the caller) to
 * out.  Errors: out's cap (-E2BIG). */
int feeds_render(struct buf *out, const struct feeds_meta *meta, json_t *builds);

/* GET /feeds/builds.atom and /feeds/failures.atom (http.c's route table). */
void feeds_handle(struct http_req *req);

#endif
