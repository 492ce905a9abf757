/*
 * HTTP responses (http.h's http_reply*): fixed bodies written in chunks of
 * KILN_MAX_HTTP_RESPONSE_CHUNK, streamed bodies pulled from a producer one
 * piece per writeable callback (chunked on HTTP/1.1), and the server-wide
 * cap on memory held for answers (503 past it).
 */
#define LOG_SUBSYS "http"

#include "master/http-int.h"
#include "master/master.h"

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/xalloc.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

void http_resp_release(struct http_conn *hc)
{
	struct http_resp *resp = &hc->resp;
	hc->srv->reply_mem -= resp->held;
	if (resp->free_ud)
		resp->free_ud(resp->ud);
	free(resp->ctype);
	free(resp->disposition);
	for (size_t i = 0; i < resp->nx; i++) {
		free(resp->xname[i]);
		free(resp->xvalue[i]);
	}
	free(resp->body);
	*resp = (struct http_resp){0};
}

/* ---- HTTP responses ------------------------------------------------------------------ */

void http_req_throttle(struct http_req *req, unsigned seconds)
{
	req->conn->throttle_s = seconds ? seconds : 1;
}

static void http_reply_begin(struct http_conn *hc, int status, const char *ctype)
{
	http_resp_release(hc);
	hc->resp.active = true;
	if (hc->throttle_s && (status == 401 || status == 403 || status == 429)) {
		status = 429;
		hc->resp.retry_after = hc->throttle_s;
	}
	hc->resp.status = status;
	hc->resp.ctype = xstrdup_or_null(ctype);
	lws_callback_on_writable(hc->wsi);
}

/* Charges n bytes to the server's answer memory for hc's current response
 * (given back when it is released).  false, with nothing charged, when that
 * would pass the cap. */
static bool http_reply_mem_charge(struct http_conn *hc, size_t n)
{
	struct http_server *s = hc->srv;
	size_t max = atomic_load(&s->reply_mem_max);

	if (n > max || s->reply_mem > max - n)
		return false;
	s->reply_mem += n;
	hc->resp.held += n;
	if (s->reply_mem > atomic_load(&s->reply_mem_peak))
		atomic_store(&s->reply_mem_peak, s->reply_mem);
	return true;
}

/* The answer when the memory cap is reached: 503 with Retry-After and a
 * Buildbot-shaped error.  Its few bytes are not charged, so it is never
 * refused itself. */
static void http_reply_busy(struct http_conn *hc, size_t want)
{
	static const char msg[] = "{\"error\": \"the master is busy sending other answers; "
				  "retry later\"}";
	struct http_server *s = hc->srv;

	log_info("answer memory cap reached (%zu of %zu bytes held, %zu more wanted): 503 for '%s'",
		 s->reply_mem, (size_t)atomic_load(&s->reply_mem_max), want,
		 hc->req.path ? hc->req.path : "?");
	http_reply_begin(hc, 503, "text/plain; charset=utf-8");
	hc->resp.retry_after = 1;
	hc->resp.body = xmalloc(LWS_PRE + sizeof(msg));
	memcpy(hc->resp.body + LWS_PRE, msg, sizeof(msg) - 1);
	hc->resp.len = sizeof(msg) - 1;
}

void http_reply_take(struct http_req *req, int status, const char *content_type, char *body,
		     size_t len)
{
	struct http_conn *hc = req->conn;
	http_reply_begin(hc, status, content_type);
	if (!http_reply_mem_charge(hc, LWS_PRE + len + 1)) {
		free(body);
		http_reply_busy(hc, len);
		return;
	}
	hc->resp.body = xmalloc(LWS_PRE + len + 1);
	if (len)
		memcpy(hc->resp.body + LWS_PRE, body, len);
	hc->resp.len = len;
	free(body);
}

void http_reply_retry_after(struct http_req *req, unsigned seconds)
{
	struct http_conn *hc = req->conn;
	/* a 503 of the answer-memory cap keeps its own (1 s); a handler's own
	 * 503 (no Retry-After yet) takes this one */
	if (hc->resp.active && !hc->resp.headers_sent &&
	    (hc->resp.status != 503 || !hc->resp.retry_after))
		hc->resp.retry_after = seconds;
}

void http_reply_header(struct http_req *req, const char *name, const char *value)
{
	struct http_conn *hc = req->conn;
	struct http_resp *r = &hc->resp;
	if (!r->active || r->headers_sent || r->status == 503 || r->nx >= HTTP_REPLY_MAX_HEADERS)
		return;
	r->xname[r->nx] = xasprintf("%s:", name);
	r->xvalue[r->nx] = xstrdup(value);
	r->nx++;
}

void http_reply(struct http_req *req, int status, const char *content_type, const void *body,
		size_t len)
{
	http_reply_take(req, status, content_type, xmemdup(body, len ? len : 1), len);
}

void http_reply_stream(struct http_req *req, int status, const char *content_type,
		       const char *disposition, http_produce_fn produce, http_free_fn free_ud,
		       void *ud)
{
	http_reply_stream_held(req, status, content_type, disposition, produce, free_ud, ud, 0);
}

void http_reply_stream_held(struct http_req *req, int status, const char *content_type,
			    const char *disposition, http_produce_fn produce, http_free_fn free_ud,
			    void *ud, size_t held)
{
	struct http_conn *hc = req->conn;
	char ver[16] = "";

	http_reply_begin(hc, status, content_type);
	/* the piece and its framed copy (http_reply_write_piece), and the producer's own */
	if (held > SIZE_MAX - HTTP_STREAM_HELD ||
	    !http_reply_mem_charge(hc, HTTP_STREAM_HELD + held)) {
		if (free_ud)
			free_ud(ud);
		http_reply_busy(hc, HTTP_STREAM_HELD + held);
		return;
	}
	hc->resp.disposition = xstrdup_or_null(disposition);
	hc->resp.produce = produce;
	hc->resp.free_ud = free_ud;
	hc->resp.ud = ud;
	if (lws_hdr_copy(hc->wsi, ver, sizeof(ver), WSI_TOKEN_HTTP) > 0 && !strcmp(ver, "HTTP/1.1"))
		hc->resp.chunked = true;
	else
		hc->resp.close_after = true; /* HTTP/1.0: the end of the body is the close */
}

void http_reply_text(struct http_conn *hc, int status, const char *text)
{
	http_reply(&hc->req, status, "text/plain; charset=utf-8", text, strlen(text));
}

/* {"error": "..."} as Buildbot writes it (compact with spaces). */
void http_reply_errmsg(struct http_req *req, int status, const char *msg)
{
	json_t *o = json_pack("{s:s}", "error", msg);
	char *s = json_dumps(o, 0);
	json_decref(o);
	http_reply_take(req, status, "text/plain; charset=utf-8", s, strlen(s));
}

void http_reply_error(struct http_conn *hc, int status, const char *msg)
{
	http_reply_errmsg(&hc->req, status, msg);
}

static int http_reply_write_headers(struct http_conn *hc)
{
	struct http_resp *r = &hc->resp;
	unsigned char buf[LWS_PRE + HTTP_HDR_SPACE];
	unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
	struct lws *wsi = hc->wsi;

	if (lws_add_http_header_status(wsi, (unsigned)r->status, &p, end))
		return -1;
	if (r->ctype &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
					 (unsigned char *)r->ctype, (int)strlen(r->ctype), &p, end))
		return -1;
	if (r->disposition &&
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"content-disposition:",
					(unsigned char *)r->disposition,
					(int)strlen(r->disposition), &p, end))
		return -1;
	if (!r->produce) {
		if (lws_add_http_header_content_length(wsi, r->len, &p, end))
			return -1;
	} else if (r->chunked) {
		if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING,
						 (unsigned char *)"chunked", 7, &p, end))
			return -1;
	} else {
		if (lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
						 (unsigned char *)"close", 5, &p, end))
			return -1;
	}
	char ra[16];
	int ran = snprintf(ra, sizeof(ra), "%u", r->retry_after);
	if (r->retry_after &&
	    lws_add_http_header_by_name(
		    wsi, (const unsigned char *)"retry-after:", (unsigned char *)ra, ran, &p, end))
		return -1;
	for (size_t i = 0; i < r->nx; i++)
		if (lws_add_http_header_by_name(wsi, (const unsigned char *)r->xname[i],
						(unsigned char *)r->xvalue[i],
						(int)strlen(r->xvalue[i]), &p, end))
			return -1;
	if (r->close_after && !r->produce &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (unsigned char *)"close", 5, &p,
					 end))
		return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	return 0;
}

/* Writes the next piece of a streamed body; returns 1 when more follows,
 * HTTP_PRODUCE_LATER when more follows after http_stream_resume(), 0 after
 * the last piece, -1 to drop the connection. */
static int http_reply_write_piece(struct http_conn *hc)
{
	struct http_resp *r = &hc->resp;
	struct buf piece, out;
	int more;

	buf_init(&piece, KILN_MAX_HTTP_RESPONSE_CHUNK);
	more = r->produce(r->ud, &piece);
	if (more < 0) {
		buf_release(&piece);
		return -1;
	}
	/* [LWS_PRE][hex CRLF][data][CRLF][0 CRLF CRLF]: sized to fit, so no append fails */
	static const char headroom[LWS_PRE];
	int e;
	buf_init(&out, LWS_PRE + piece.len + 64);
	e = buf_add(&out, headroom, LWS_PRE);
	if (!e && r->chunked && piece.len)
		e = buf_addf(&out, "%zx\r\n", piece.len);
	if (!e)
		e = buf_add(&out, piece.ptr, piece.len);
	if (!e && r->chunked && piece.len)
		e = buf_adds(&out, "\r\n");
	if (!e && r->chunked && !more)
		e = buf_adds(&out, "0\r\n\r\n");
	buf_release(&piece);
	if (e < 0) {
		buf_release(&out);
		return -1;
	}

	size_t n = out.len - LWS_PRE;
	int w = 0;
	if (n || !more)
		w = lws_write(hc->wsi, (unsigned char *)out.ptr + LWS_PRE, n,
			      more ? LWS_WRITE_HTTP : LWS_WRITE_HTTP_FINAL);
	buf_release(&out);
	if (w < 0 || (size_t)w < n)
		return -1;
	return more == HTTP_PRODUCE_LATER ? HTTP_PRODUCE_LATER : more ? 1 : 0;
}

void http_stream_resume(struct http_req *req)
{
	struct http_conn *hc = req->conn;
	if (hc && hc->wsi && hc->resp.active && hc->resp.produce && !hc->srv->stopping)
		lws_callback_on_writable(hc->wsi);
}

/* The writeable callback of a plain HTTP connection: one lws_write each time. */
int http_on_writeable(struct http_conn *hc)
{
	struct http_resp *r = &hc->resp;

	if (!r->active)
		return 0;
	/* progress: the write-stall deadline (http_conn_sweep) starts again */
	hc->last_write = uv_now(hc->srv->m->loop);
	if (!r->headers_sent) {
		/* past KILN_HTTP_IDLE_MAX idle keep-alive connections this one
		 * closes after its answer: an idle connection may trickle its
		 * next request into a header slot */
		if (hc->srv->nidle[hc->workers] >= KILN_HTTP_IDLE_MAX)
			r->close_after = true;
		if (http_reply_write_headers(hc))
			return -1;
		r->headers_sent = true;
		if (!r->produce && r->len == 0)
			goto complete;
		lws_callback_on_writable(hc->wsi);
		return 0;
	}
	if (r->produce) {
		if (hc->srv->stopping)
			return -1; /* the producer may need the database, which is going away */
		int more = http_reply_write_piece(hc);
		if (more < 0)
			return -1;
		if (more == HTTP_PRODUCE_LATER)
			return 0; /* http_stream_resume() asks for the next call */
		if (more) {
			lws_callback_on_writable(hc->wsi);
			return 0;
		}
		goto complete;
	}
	size_t n = r->len - r->off;
	if (n > KILN_MAX_HTTP_RESPONSE_CHUNK)
		n = KILN_MAX_HTTP_RESPONSE_CHUNK;
	bool final = r->off + n == r->len;
	/* The bytes before off were sent already: they serve as headroom. */
	int w = lws_write(hc->wsi, r->body + LWS_PRE + r->off, n,
			  final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
	if (w < 0 || (size_t)w < n)
		return -1;
	r->off += n;
	if (!final) {
		lws_callback_on_writable(hc->wsi);
		return 0;
	}
complete:;
	/* the idle cap holds exactly: answers of connections that raced past
	 * it at header time end with a close too (allowed after a complete
	 * answer) */
	bool close_after = r->close_after || hc->srv->nidle[hc->workers] >= KILN_HTTP_IDLE_MAX;
	http_resp_release(hc);
	http_req_release(hc);
	if (close_after)
		return -1;
	if (lws_http_transaction_completed(hc->wsi))
		return -1;
	http_conn_set_idle(hc, true);
	return 0;
}
