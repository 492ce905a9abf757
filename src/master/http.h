/*
 * The master's network front on the master's libuv loop: the HTTP API/UI
 * listener (cfg->http) and the worker WebSocket listener (cfg->workers),
 * each with its own libwebsockets context (own header pool).  The master
 * accepts and reads each request itself (capped, absolute deadlines,
 * per-address cap; docs/API.md "Limits") before lws sees it, and pauses
 * accepting at the file-descriptor limit.  No lws type crosses this
 * header: handlers see a struct http_req and answer it with one of the
 * http_reply*() calls; workers are seen through wsconn.h.
 *
 * Everything here runs on the loop thread.
 *
 * Adding a new top-level route: write `void x_handle(struct http_req *req)`
 * (it must answer with exactly one http_reply*() before returning), then
 * add one line to http_routes[] in http.c.  Everything under /api/v2 goes
 * through api_handle() and its own table (api.c).
 */
#ifndef KILN_MASTER_HTTP_H
#define KILN_MASTER_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct buf;
struct master;
struct ws_conn_ops;
struct http_server;
struct http_conn;

/* Starts listening on m->cfg->http and m->cfg->workers (port 0 = any free
 * port; numeric addresses or "localhost"), both on m->loop.  Writes BASEDIR/ports
 * with the lines "http HOST:PORT" and "workers HOST:PORT" (the real bound
 * ports) atomically (temp file + rename).  worker_ops is borrowed and must
 * outlive the server.  Errors: -errno of bind/listen (-EADDRINUSE ...),
 * -EINVAL for an address that is not numeric, -ENOMEM (lws),
 * -errno writing the ports file; nothing is left running on error. */
int http_server_start(struct master *m, const struct ws_conn_ops *worker_ops,
		      struct http_server **ret);

/* Graceful stop: answers no new requests, calls worker_ops->closed() for
 * every worker connection still open (so no ops callback happens after
 * this returns), sends close frames (1001) to every WebSocket, then
 * destroys the lws context once they are gone (at most ~1 s later).  The
 * caller keeps running the loop (uv_run DEFAULT) until it is empty; the
 * server frees itself there.  The database may be closed right after this
 * returns (no handler touches it any more).  Do not uv_walk()/uv_close()
 * handles before that run: lws closes its own uv handles and needs a second
 * lws_context_destroy() after they are closed, which the server's own timer
 * does.  NULL-safe. */
void http_server_stop(struct http_server *s);

/* Real bound ports (valid after a successful start). */
int http_server_http_port(const struct http_server *s);
int http_server_workers_port(const struct http_server *s);

/* Memory held for answers (fixed bodies, streamed replies' buffers) is
 * capped across all connections at KILN_MAX_HTTP_REPLY_MEM: an answer that
 * would pass it is replaced by 503 with Retry-After and a Buildbot-shaped
 * {"error": ...}.  set_reply_mem_max() changes the cap (tests) and resets
 * the peak; reply_mem_peak() is the most held at once since then.  Both may
 * be called from any thread. */
void http_server_set_reply_mem_max(struct http_server *s, size_t max);
size_t http_server_reply_mem_peak(const struct http_server *s);

/* ---- request handling (for api*.c and www.c) ------------------------------------ */

enum http_method { HTTP_GET, HTTP_POST, HTTP_HEAD, HTTP_OTHER };

struct http_arg {
	char *name;  /* owned by the request; url-decoded */
	char *value; /* owned by the request; url-decoded; "" when no '=' */
};

struct auth_known;

struct http_req {
	struct master *m; /* borrowed */
	enum http_method method;
	const char *path;            /* url-decoded path without the query (borrowed) */
	const struct http_arg *args; /* query arguments in request order */
	size_t nargs;
	const char *content_type; /* "" when absent */
	const char *accept;       /* "" when absent */
	const char *body;         /* POST body, NUL-terminated ("" for GET) */
	size_t body_len;
	struct http_conn *conn;  /* private to http.c */
	struct auth_known *auth; /* auth.c's (auth_prepare), freed with the request */
};

/* Every reply below is charged to the server's answer memory (see
 * http_server_set_reply_mem_max) until it is sent; past the cap the request
 * is answered 503 instead (a streamed reply's free_ud(ud) is then called at
 * once).  Large answers should stream.
 *
 * Answers with a fixed body (copied).  content_type may be NULL (none). */
void http_reply(struct http_req *req, int status, const char *content_type, const void *body,
		size_t len);
/* Same, taking ownership of body (a malloc'd block of len bytes). */
void http_reply_take(struct http_req *req, int status, const char *content_type, char *body,
		     size_t len);

/* Answers {"error": "msg"} (Buildbot's error body, as text/plain). */
void http_reply_errmsg(struct http_req *req, int status, const char *msg);

/* After one of the replies above: adds Retry-After: seconds (429, 503). */
void http_reply_retry_after(struct http_req *req, unsigned seconds);
/* After any reply: adds the header "name: value" (name in lower case,
 * without ':'; value a header-safe text the caller made); at most
 * HTTP_REPLY_MAX_HEADERS (4) per answer, more are dropped, as they are on a
 * 503 that replaced the answer. */
void http_reply_header(struct http_req *req, const char *name, const char *value);

/* Streams a body of unknown length (chunked on HTTP/1.1, keep-alive kept):
 * produce() is called from the writeable callbacks and appends the next
 * piece to out (at most out->max bytes); it returns 1 when more follows,
 * 0 when that was the last piece, or a negative error to abort the
 * connection.  free_ud(ud) is called exactly once when the response is
 * finished or the connection is gone (free_ud may be NULL).
 * disposition: the Content-Disposition value or NULL. */
typedef int (*http_produce_fn)(void *ud, struct buf *out);
/* What produce() returns for "nothing more now: I will call
 * http_stream_resume()" (its bytes of this call, if any, are sent): the
 * stream then waits, with no writeable callbacks, until that call (on the
 * loop, after produce() returned: a database answer, say). */
#define HTTP_PRODUCE_LATER 2
void http_stream_resume(struct http_req *req);
typedef void (*http_free_fn)(void *ud);
void http_reply_stream(struct http_req *req, int status, const char *content_type,
		       const char *disposition, http_produce_fn produce, http_free_fn free_ud,
		       void *ud);
/* Same, also charging 'held' bytes: the most the producer's own state keeps. */
void http_reply_stream_held(struct http_req *req, int status, const char *content_type,
			    const char *disposition, http_produce_fn produce, http_free_fn free_ud,
			    void *ud, size_t held);

/* A deferred answer (slice "authhard"): a handler that answers later (after
 * thread-pool work) calls http_req_defer() and returns without a reply.
 * Later, on the loop, http_deferred_req() gives the request back, or NULL
 * when the connection closed meanwhile or the server is stopping (then the
 * database may be gone: touch nothing); answer it with one http_reply*()
 * and call http_deferred_end() in every case (it answers 500 if nothing
 * was).  Request headers stay readable while deferred.  A request may be
 * deferred again while it is given back (a second database read): the
 * newer deferral is then the one that answers or ends it. */
struct http_deferred;
struct http_deferred *http_req_defer(struct http_req *req);
struct http_req *http_deferred_req(struct http_deferred *d);
void http_deferred_end(struct http_deferred *d);
/* Ends d and routes its request again from the start (auth_prepare's
 * reads are done); when the request has gone, the same as
 * http_deferred_end. */
void http_deferred_redispatch(struct http_deferred *d);

/* The request was held back by a backoff (slice "authhard": API tokens,
 * apitoken.c): whatever 401 or 403 its handler answers is sent as 429 with
 * Retry-After: seconds instead, so every caller of a shared check answers
 * alike. */
void http_req_throttle(struct http_req *req, unsigned seconds);

/* The value of query argument name (first occurrence) or NULL. */
const char *http_req_arg(const struct http_req *req, const char *name);
/* Copies the value of request header name (lower case, without ':', e.g.
 * "x-github-event", "authorization", "origin" or "host") into buf, NUL-terminated.  Returns
 * its length, -ENOENT if the request has no such header, -E2BIG if it does
 * not fit in size.  Only while the handler runs (change hooks use it). */
int http_req_header(const struct http_req *req, const char *name, char *buf, size_t size);

/* The client's address (IPv4 or IPv6 text, "?" when unknown) into buf. */
void http_req_peer(const struct http_req *req, char *buf, size_t size);

/* Splits a raw query string ("a=1&b=x%20y", '&' or ';' separated, '+' is a
 * space) into url-decoded arguments the way lws does for real requests.
 * At most max args; -E2BIG past it; KILN_EPARSE on a bad %-escape or an
 * embedded NUL.  *ret_args is freed with http_args_free(). */
int http_query_parse(const char *qs, size_t len, size_t max, struct http_arg **ret_args,
		     size_t *ret_n);
void http_args_free(struct http_arg *args, size_t n);

/* Parses an Authorization header value "Basic base64(name:password)" (the
 * scheme case-insensitive, spaces around it allowed), decoding into out
 * (outlen bytes).  Returns 0 with *ret_name and *ret_pass pointing into
 * out; 1 when the credentials cannot be decoded (no ':', bad base64, an
 * embedded NUL, too long for out: treated as none); KILN_EPARSE for
 * another scheme.  Pure: no request, no allocation. */
int http_basic_parse(const char *hdr, char *out, size_t outlen, const char **ret_name,
		     const char **ret_pass);

/* Top-level handlers (api.c, www.c) */
void api_handle(struct http_req *req);
void www_handle(struct http_req *req);
void change_hook_handle(struct http_req *req); /* changes/hook.c: /change_hook/DIALECT */

#endif
