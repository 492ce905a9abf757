/*
 * The HTTP reporters (http.c): kinds "http" (a JSON document per build,
 * HMAC-SHA256 signed), "slack" and "mattermost" (incoming webhooks) and
 * "matrix" (a room message through the client-server API).  The parts the
 * unit tests reach directly; the kinds themselves are reporter_kind_http,
 * _slack, _mattermost and _matrix (reporters.c's table).
 */
#ifndef KILN_MASTER_REPORTERS_HTTP_H
#define KILN_MASTER_REPORTERS_HTTP_H

#include "master/reporters/reporters.h"

#include <jansson.h>

struct buf;

/* "sha256=" and 64 hex digits and a NUL. */
#define HTTP_SIGNATURE_SIZE 72
/* A message's body, at most. */
#define HTTP_MAX_BODY (1u << 20)

/* The body (compact JSON, UTF-8) cfg's kind sends for rb; build is the
 * build's row as /api/v2/builds renders it (kind http only; NULL: the
 * fields of rb alone).  0, or -E2BIG past out's cap. */
int http_reporter_body(const struct config_reporter *cfg, const struct report_build *rb,
		       json_t *build, struct buf *out);

/* out = "sha256=" + lowercase hex of HMAC-SHA256(key, body). */
void http_reporter_sign(const char *key, const void *body, size_t len,
			char out[HTTP_SIGNATURE_SIZE]);

/* One message: its target (fixed when it is made: a matrix message's
 * transaction id is in it, so that a retry is the same transaction). */
struct http_msg {
	int64_t buildid;
	size_t len;                          /* of the body */
	char *url;                           /* owned */
	char signature[HTTP_SIGNATURE_SIZE]; /* "" when unsigned */
	size_t reply;                        /* bytes of the reply's body (discarded) */
};
/* A new message for a body of len bytes (signed when cfg has a key); a
 * matrix transaction id is "kiln-BUILDID-" and 16 random hex digits. */
struct http_msg *http_reporter_msg_new(const struct config_reporter *cfg, int64_t buildid,
				       const char *body, size_t len);
void http_reporter_msg_free(void *msg);

#endif
