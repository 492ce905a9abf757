/*
 * The client commands' only way to the master: blocking JSON GETs and
 * JSON-RPC POSTs against the public HTTP API (/api/v2), through one libcurl
 * easy handle so successive calls reuse the connection.
 *
 * Every call returns >= 0 or a negative code, and on failure leaves one
 * human-readable line in http_client_error() (no "kiln: " prefix, no
 * newline), so a command prints it once at its boundary:
 *   -ECONNREFUSED etc.  the master is not reachable ("cannot reach master
 *                       at URL: Connection refused")
 *   KILN_ETIMEOUT       connect or transfer stalled
 *   KILN_ENOTFOUND      HTTP 404 (message from the API's {"error": ...})
 *   KILN_EAUTH          HTTP 401/403
 *   KILN_ETOOBIG        body over KILN_MAX_HTTP_CLIENT_BODY
 *   KILN_EPARSE         body is not the JSON expected
 *   -EIO                any other HTTP or JSON-RPC error (API's message)
 */
#ifndef KILN_CLIENT_HTTP_H
#define KILN_CLIENT_HTTP_H

#include <jansson.h>
#include <stddef.h>

struct http_client {
	char *base;      /* owned: master URL without trailing '/' */
	char *token;     /* owned, NULL when none: sent as Authorization: Bearer */
	void *curl;      /* owned: CURL easy handle, created on first use */
	char *error;     /* owned: last error line, NULL before the first failure */
	size_t max_body; /* response cap; KILN_MAX_HTTP_CLIENT_BODY by default */
};

/*
 * Prepares a client for the master at 'url' (http:// or https://, any
 * trailing '/' dropped) with an optional bearer 'token'.  Both are copied.
 * No network traffic.  Returns -EINVAL for a URL without a scheme.
 */
int http_client_init(struct http_client *c, const char *url, const char *token);
/* Frees the contents; NULL-safe fields. */
void http_client_release(struct http_client *c);

/* The last error line, or "" when none. */
const char *http_client_error(const struct http_client *c);
/* Replaces the error line (for callers that detect a failure themselves). */
void http_client_set_error(struct http_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * GET base + 'path' (which starts with '/', e.g. "/api/v2/builds?limit=5")
 * and parses the body as a JSON object.  On success *ret_json is a new
 * reference the caller json_decref()s.
 */
int http_get_json(struct http_client *c, const char *path, json_t **ret_json);

/*
 * Like http_get_json() with printf-style path formatting.  Values from the
 * user that go into a query must be escaped with http_escape() first.
 */
int http_getf_json(struct http_client *c, json_t **ret_json, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * GET a REST collection: base + path, then the array under 'key' (e.g.
 * "builds").  *ret_list is a new reference to that array.  KILN_EPARSE
 * if the member is missing or not an array.
 */
int http_get_list(struct http_client *c, const char *path, const char *key, json_t **ret_list);

/*
 * JSON-RPC 2.0 call: POSTs {"jsonrpc":"2.0","id":1,"method":M,"params":P}
 * to base + path.  'params' is borrowed (may be NULL: {} is sent).  On
 * success *ret_result (if non-NULL) is a new reference to the "result"
 * member (json null when absent).  A JSON-RPC error object becomes -EIO
 * with its message.
 */
int http_rpc(struct http_client *c, const char *path, const char *method, json_t *params,
	     json_t **ret_result);

/*
 * POSTs len bytes of body with 'content_type' to base + 'path' and returns
 * the answer as text (for the change hooks, which answer text): 0 and
 * *ret_text (caller frees) on HTTP 2xx; KILN_EAUTH (401/403),
 * KILN_ENOTFOUND (404) or -EIO otherwise, the answer's first line in the
 * error.
 */
int http_post_text(struct http_client *c, const char *path, const char *content_type,
		   const char *body, size_t len, char **ret_text);

/*
 * A streamed GET's receiver: called with each piece of a 2xx body in
 * order, status the HTTP status (200 or 206).  Returns 0, or a negative
 * code that stops the transfer and becomes http_get_stream()'s result.
 */
typedef int (*http_sink_fn)(void *ud, long status, const void *data, size_t len);

/*
 * GET base + 'path' streaming the body to sink, a piece at a time (never
 * held whole, so no cap: the sink bounds what it keeps).  range_from > 0
 * asks for "Range: bytes=FROM-"; the master may still answer 200 with the
 * whole body.  Returns the HTTP status (2xx) or a negative code as above;
 * -ERANGE for 416 (range_from at or past the end).
 */
int http_get_stream(struct http_client *c, const char *path, long long range_from,
		    http_sink_fn sink, void *ud);

/* URL-escapes s for a path segment or query value; caller frees. */
char *http_escape(const char *s);

#endif
