/*
 * Blocking HTTP for the client commands: libcurl's easy interface (a CLI
 * may block), bodies collected into a capped buffer, parsed with jansson,
 * and every failure turned into one line for the user.  See http.h.
 */
#include "client/http.h"
#include "client/curl-dl.h"

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

/* A master that accepts the connection but says nothing is as good as gone. */
#define HTTP_CONNECT_TIMEOUT_MS 5000L
#define HTTP_STALL_SECONDS 60L

void http_client_set_error(struct http_client *c, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	free(c->error);
	c->error = msg;
}

int http_client_init(struct http_client *c, const char *url, const char *token)
{
	size_t n;

	const char *dl_err;

	*c = (struct http_client){.max_body = KILN_MAX_HTTP_CLIENT_BODY};
	if (curl_dl_load(&dl_err) < 0) {
		http_client_set_error(c, "%s", dl_err);
		return -ENOENT;
	}
	if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))) {
		http_client_set_error(c, "invalid master URL '%s': expected http://HOST:PORT",
				      url ? url : "");
		return -EINVAL;
	}
	n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		n--;
	c->base = xstrndup(url, n);
	c->token = token && *token ? xstrdup(token) : NULL;
	return 0;
}

void http_client_release(struct http_client *c)
{
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->base);
	free(c->token);
	free(c->error);
	*c = (struct http_client){0};
}

const char *http_client_error(const struct http_client *c)
{
	return c->error ? c->error : "";
}

char *http_escape(const char *s)
{
	char *e, *r;

	if (curl_dl_load(NULL) < 0)
		abort(); /* callers have an http_client, so libcurl is loaded */
	e = curl_easy_escape(NULL, s, (int)strlen(s));
	if (!e)
		abort(); /* only fails on allocation */
	r = xstrdup(e);
	curl_free(e);
	return r;
}

static size_t http_on_body(char *p, size_t size, size_t nmemb, void *userdata)
{
	struct buf *b = userdata;

	/* returning less than given makes curl fail with CURLE_WRITE_ERROR */
	if (buf_add(b, p, size * nmemb) < 0)
		return 0;
	return size * nmemb;
}

static CURL *http_handle(struct http_client *c)
{
	if (!c->curl) {
		c->curl = curl_easy_init(); /* libcurl was loaded by http_client_init */
		if (!c->curl)
			abort();
	}
	curl_easy_reset(c->curl);
	return c->curl;
}

/* The message of an API error body: {"error": "..."} (REST) or
 * {"error": {"message": "..."}} (JSON-RPC).  Borrowed from j, or NULL. */
static const char *http_api_message(json_t *j)
{
	json_t *e = json_object_get(j, "error");

	if (json_is_string(e))
		return json_string_value(e);
	if (json_is_object(e) && json_is_string(json_object_get(e, "message")))
		return json_string_value(json_object_get(e, "message"));
	return NULL;
}

/* Translates a transport failure into the one line the user sees. */
static int http_transport_error(struct http_client *c, CURLcode rc, const char *errbuf,
				const char *path)
{
	long os_errno = 0;

	switch (rc) {
	case CURLE_WRITE_ERROR:
		http_client_set_error(c, "answer to '%s' is larger than %zu bytes", path,
				      c->max_body);
		return KILN_ETOOBIG;
	case CURLE_OPERATION_TIMEDOUT:
		http_client_set_error(c, "master at %s did not answer in time", c->base);
		return KILN_ETIMEOUT;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		http_client_set_error(c, "invalid master URL '%s'", c->base);
		return -EINVAL;
	default:
		break;
	}
	curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
	if (os_errno > 0) {
		http_client_set_error(c, "cannot reach master at %s: %s", c->base,
				      strerror((int)os_errno));
		return -(int)os_errno;
	}
	http_client_set_error(c, "cannot reach master at %s: %s", c->base,
			      *errbuf ? errbuf : curl_easy_strerror(rc));
	return rc == CURLE_COULDNT_RESOLVE_HOST ? -EHOSTUNREACH : -EIO;
}

/*
 * Performs one request; body_json non-NULL makes it a POST.  On success
 * (HTTP 2xx and a JSON object body) *ret_json owns the parsed body.  For
 * an HTTP error with a JSON body, *ret_json is still NULL and the error
 * line carries the API's message.
 */
static int http_request(struct http_client *c, const char *path, const char *body_json,
			json_t **ret_json)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	struct buf body;
	json_error_t jerr;
	json_t *j = NULL;
	long status = 0;
	CURLcode rc;
	char *url, *auth = NULL;
	CURL *h = http_handle(c);
	int r;

	url = xasprintf("%s%s", c->base, path);
	buf_init(&body, c->max_body);

	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (c->token) {
		auth = xasprintf("Authorization: Bearer %s", c->token);
		hdrs = curl_slist_append(hdrs, auth);
	}
	if (body_json) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body_json);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body_json));
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, HTTP_CONNECT_TIMEOUT_MS);
	/* no total timeout: a big log page may take a while; a stall may not */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, HTTP_STALL_SECONDS);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "kiln/" KILN_VERSION);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");

	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		r = http_transport_error(c, rc, errbuf, path);
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);

	j = json_loadb(body.ptr, body.len, JSON_REJECT_DUPLICATES, &jerr);
	if (status < 200 || status > 299) {
		const char *msg = j ? http_api_message(j) : NULL;
		if (status == 404)
			r = KILN_ENOTFOUND;
		else if (status == 401 || status == 403)
			r = KILN_EAUTH;
		else
			r = -EIO;
		if (msg && json_is_object(json_object_get(j, "error")))
			http_client_set_error(c, "%s", msg); /* JSON-RPC: the message says it all */
		else if (msg)
			http_client_set_error(c, "%s (HTTP %ld for '%s')", msg, status, path);
		else if (r == KILN_EAUTH)
			http_client_set_error(
				c, "master refused '%s' (HTTP %ld): set --token or KILN_TOKEN",
				path, status);
		else
			http_client_set_error(c, "master answered HTTP %ld for '%s'", status, path);
		goto out;
	}
	if (!j || !json_is_object(j)) {
		http_client_set_error(c, "answer to '%s' is not a JSON object%s%s", path,
				      j ? "" : ": ", j ? "" : jerr.text);
		r = KILN_EPARSE;
		goto out;
	}
	*ret_json = j;
	j = NULL;
	r = 0;
out:
	json_decref(j);
	curl_slist_free_all(hdrs);
	buf_release(&body);
	free(auth);
	free(url);
	return r;
}

int http_get_json(struct http_client *c, const char *path, json_t **ret_json)
{
	return http_request(c, path, NULL, ret_json);
}

int http_getf_json(struct http_client *c, json_t **ret_json, const char *fmt, ...)
{
	va_list ap;
	char *path;
	int r;

	va_start(ap, fmt);
	if (vasprintf(&path, fmt, ap) < 0)
		abort();
	va_end(ap);
	r = http_request(c, path, NULL, ret_json);
	free(path);
	return r;
}

int http_get_list(struct http_client *c, const char *path, const char *key, json_t **ret_list)
{
	json_t *j, *list;
	int r;

	r = http_request(c, path, NULL, &j);
	if (r < 0)
		return r;
	list = json_object_get(j, key);
	if (!json_is_array(list)) {
		http_client_set_error(c, "answer to '%s' has no '%s' list", path, key);
		json_decref(j);
		return KILN_EPARSE;
	}
	*ret_list = json_incref(list);
	json_decref(j);
	return 0;
}

int http_rpc(struct http_client *c, const char *path, const char *method, json_t *params,
	     json_t **ret_result)
{
	json_t *req, *resp = NULL, *result;
	const char *msg;
	char *text;
	int r;

	req = json_pack("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0", "id", 1, "method", method,
			"params", params ? json_incref(params) : json_object());
	if (!req)
		abort(); /* only fails on allocation: every argument is valid */
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!text)
		abort();
	r = http_request(c, path, text, &resp);
	free(text);
	if (r < 0)
		return r;
	msg = http_api_message(resp);
	if (msg) {
		http_client_set_error(c, "%s", msg);
		json_decref(resp);
		return -EIO;
	}
	if (ret_result) {
		result = json_object_get(resp, "result");
		*ret_result = result ? json_incref(result) : json_null();
	}
	json_decref(resp);
	return 0;
}

int http_post_text(struct http_client *c, const char *path, const char *content_type,
		   const char *body, size_t len, char **ret_text)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	struct buf answer;
	long status = 0;
	CURL *h = http_handle(c);
	char *url = xasprintf("%s%s", c->base, path), *auth = NULL;
	char *ctype = xasprintf("Content-Type: %s", content_type);
	int r;

	buf_init(&answer, c->max_body);
	hdrs = curl_slist_append(hdrs, ctype);
	if (c->token) {
		auth = xasprintf("Authorization: Bearer %s", c->token);
		hdrs = curl_slist_append(hdrs, auth);
	}
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)len);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, HTTP_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, HTTP_STALL_SECONDS);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "kiln/" KILN_VERSION);

	CURLcode rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		r = http_transport_error(c, rc, errbuf, path);
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	/* the answer's first line is the message (change hooks answer text) */
	size_t first = strcspn(answer.ptr, "\r\n");
	if (status < 200 || status > 299) {
		r = status == 404                    ? KILN_ENOTFOUND
		    : status == 401 || status == 403 ? KILN_EAUTH
						     : -EIO;
		if (first)
			http_client_set_error(c, "%.*s (HTTP %ld for '%s')", (int)first, answer.ptr,
					      status, path);
		else
			http_client_set_error(c, "master answered HTTP %ld for '%s'", status, path);
		goto out;
	}
	*ret_text = buf_detach(&answer, NULL);
	r = 0;
out:
	curl_slist_free_all(hdrs);
	buf_release(&answer);
	free(auth);
	free(ctype);
	free(url);
	return r;
}

/* ---- streamed downloads (slice "artcli": kiln artifact) ---------------------------- */

struct http_stream {
	CURL *h;
	http_sink_fn sink;
	void *ud;
	long status;    /* read at the first piece of the body */
	int sink_err;   /* the sink's error, which stopped the transfer */
	struct buf err; /* a non-2xx answer's body: its message */
};

static size_t http_on_stream(char *p, size_t size, size_t nmemb, void *userdata)
{
	struct http_stream *s = userdata;
	size_t n = size * nmemb;

	if (!s->status)
		curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
	if (s->status < 200 || s->status > 299) {
		/* sticky overflow: a long error answer keeps its start */
		(void)!buf_add(&s->err, p, n);
		return n;
	}
	int r = s->sink(s->ud, s->status, p, n);
	if (r < 0) {
		s->sink_err = r;
		return 0; /* curl fails with CURLE_WRITE_ERROR */
	}
	return n;
}

int http_get_stream(struct http_client *c, const char *path, long long range_from,
		    http_sink_fn sink, void *ud)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	CURL *h = http_handle(c);
	struct http_stream s = {.h = h, .sink = sink, .ud = ud};
	char *url = xasprintf("%s%s", c->base, path), *auth = NULL, *range = NULL;
	long status = 0;
	int r;

	buf_init(&s.err, KILN_MAX_HTTP_CLIENT_ERROR_BODY);
	if (c->token) {
		auth = xasprintf("Authorization: Bearer %s", c->token);
		hdrs = curl_slist_append(hdrs, auth);
	}
	if (range_from > 0) {
		range = xasprintf("Range: bytes=%lld-", range_from);
		hdrs = curl_slist_append(hdrs, range);
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_on_stream);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, HTTP_CONNECT_TIMEOUT_MS);
	/* no total timeout: a big artifact takes what it takes; a stall may not */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, HTTP_STALL_SECONDS);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "kiln/" KILN_VERSION);

	CURLcode rc = curl_easy_perform(h);
	if (rc == CURLE_WRITE_ERROR && s.sink_err < 0) {
		r = s.sink_err; /* the sink said why */
		goto out;
	}
	if (rc != CURLE_OK) {
		r = http_transport_error(c, rc, errbuf, path);
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status <= 299) {
		r = (int)status;
		goto out;
	}
	json_t *j = json_loadb(s.err.ptr, s.err.len, 0, NULL);
	const char *msg = j ? http_api_message(j) : NULL;
	r = status == 404                    ? KILN_ENOTFOUND
	    : status == 401 || status == 403 ? KILN_EAUTH
	    : status == 416                  ? -ERANGE
					     : -EIO;
	if (msg)
		http_client_set_error(c, "%s (HTTP %ld for '%s')", msg, status, path);
	else
		http_client_set_error(c, "master answered HTTP %ld for '%s'", status, path);
	json_decref(j);
out:
	curl_slist_free_all(hdrs);
	buf_release(&s.err);
	free(auth);
	free(range);
	free(url);
	return r;
}
