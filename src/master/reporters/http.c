/*
 * The HTTP reporters (http.h): one request per build the filter picks, on
 * the reporter's queue (curl-uv.h: capped, one transfer at a time, retries
 * with backoff and Retry-After).
 *
 * - http: POST of the build as /api/v2/builds renders it (properties
 *   included) plus "builder", "results_text", "url" and "blamelist";
 *   with a key, X-Kiln-Signature: sha256=HEX (HMAC-SHA256 of the body).
 * - slack, mattermost: POST {"text", "attachments", "username", "channel",
 *   "icon_url"} to the incoming webhook, whose URL is a secret.
 * - matrix: PUT /_matrix/client/v3/rooms/ROOM/send/m.room.message/TXNID
 *   with the access token; TXNID is fixed when the message is made, so a
 *   retry is the same transaction and the homeserver posts it once.
 *
 * The body is masked (the config's secrets become "<secret>") before it is
 * signed.  URLs are never logged: a webhook's URL is its credential.
 */
#define LOG_SUBSYS "report"
#include "master/reporters/http.h"
#include "master/curl-uv.h"
#include "master/logmask.h"
#include "master/master.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "db/db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

struct http_rep {
	struct reporter *r;
	struct curl_uv_queue *q;
};

/* ---- bodies ----------------------------------------------------------------- */

static const char *http_color(int results)
{
	switch (results) {
	case RESULTS_SUCCESS:
		return "#2eb886";
	case RESULTS_WARNINGS:
		return "#ffa500";
	case RESULTS_FAILURE:
		return "#d00000";
	case RESULTS_EXCEPTION:
		return "#a000a0";
	default:
		return "#808080";
	}
}

/* Slack's text escapes: &, <, > (its link syntax uses < | >). */
static int http_slack_escape(struct buf *out, const char *s)
{
	int r = 0;
	for (; *s && r >= 0; s++)
		r = *s == '&'   ? buf_adds(out, "&amp;")
		    : *s == '<' ? buf_adds(out, "&lt;")
		    : *s == '>' ? buf_adds(out, "&gt;")
				: buf_addch(out, *s);
	return r;
}

static int http_html_escape(struct buf *out, const char *s)
{
	int r = 0;
	for (; *s && r >= 0; s++)
		r = *s == '&'   ? buf_adds(out, "&amp;")
		    : *s == '<' ? buf_adds(out, "&lt;")
		    : *s == '>' ? buf_adds(out, "&gt;")
		    : *s == '"' ? buf_adds(out, "&quot;")
				: buf_addch(out, *s);
	return r;
}

/* Markdown's link text: brackets and backslashes escaped. */
static int http_md_escape(struct buf *out, const char *s)
{
	int r = 0;
	for (; *s && r >= 0; s++)
		r = strchr("[]\\*_`", *s) ? buf_addf(out, "\\%c", *s) : buf_addch(out, *s);
	return r;
}

/* "app #4 failure (main): failed 'make test'" in plain text. */
static int http_summary(struct buf *t, const struct report_build *rb)
{
	int r = buf_addf(t, "%s #%lld %s", rb->builder, (long long)rb->number,
			 reporters_results_name(rb->results));
	if (r >= 0 && rb->branch)
		r = buf_addf(t, " (%s)", rb->branch);
	if (r >= 0 && rb->state_string && *rb->state_string)
		r = buf_addf(t, ": %s", rb->state_string);
	return r;
}

static json_t *http_blamelist(const struct report_build *rb)
{
	json_t *a = json_array();
	for (size_t i = 0; i < rb->nblamelist; i++)
		json_array_append_new(a, json_string(rb->blamelist[i]));
	return a;
}

static json_t *http_body_http(const struct report_build *rb, json_t *build)
{
	json_t *o = build ? json_deep_copy(build) : json_object();
	json_object_set_new(o, "buildid", json_integer(rb->buildid));
	json_object_set_new(o, "builderid", json_integer(rb->builderid));
	json_object_set_new(o, "number", json_integer(rb->number));
	json_object_set_new(o, "results", json_integer(rb->results));
	if (!json_object_get(o, "state_string"))
		json_object_set_new(o, "state_string", json_string(rb->state_string));
	json_t *tags = json_array();
	for (size_t i = 0; i < rb->ntags; i++)
		json_array_append_new(tags, json_string(rb->tags[i]));
	json_object_set_new(o, "builder",
			    json_pack("{s:I, s:s, s:o}", "builderid", (json_int_t)rb->builderid,
				      "name", rb->builder, "tags", tags));
	json_object_set_new(o, "results_text", json_string(reporters_results_name(rb->results)));
	json_object_set_new(o, "prev_results",
			    rb->prev_results == RESULTS_NONE ? json_null()
							     : json_integer(rb->prev_results));
	json_object_set_new(o, "url", json_string(rb->url));
	json_object_set_new(o, "branch", rb->branch ? json_string(rb->branch) : json_null());
	json_object_set_new(o, "revision", rb->revision ? json_string(rb->revision) : json_null());
	json_object_set_new(o, "blamelist", http_blamelist(rb));
	return o;
}

static json_t *http_field(const char *title, const char *value, bool isshort)
{
	return json_pack("{s:s, s:s, s:b}", "title", title, "value", value, "short", isshort);
}

static json_t *http_body_webhook(const struct config_reporter *cfg, const struct report_build *rb)
{
	bool slack = cfg->kind == CONFIG_REPORTER_SLACK;
	struct buf t, sum;
	buf_init(&t, HTTP_MAX_BODY / 4);
	buf_init(&sum, HTTP_MAX_BODY / 4);
	int r = http_summary(&sum, rb);
	/* slack: <URL|app #4>; mattermost: [app #4](URL) */
	char head[512];
	snprintf(head, sizeof(head), "%s #%lld", rb->builder, (long long)rb->number);
	if (r >= 0)
		r = buf_adds(&t, "Kiln: ");
	if (slack) {
		r = r < 0 ? r : buf_addch(&t, '<');
		r = r < 0 ? r : http_slack_escape(&t, rb->url);
		r = r < 0 ? r : buf_addch(&t, '|');
		r = r < 0 ? r : http_slack_escape(&t, head);
		r = r < 0 ? r : buf_addch(&t, '>');
	} else {
		r = r < 0 ? r : buf_addch(&t, '[');
		r = r < 0 ? r : http_md_escape(&t, head);
		r = r < 0 ? r : buf_adds(&t, "](");
		r = r < 0 ? r : buf_adds(&t, rb->url);
		r = r < 0 ? r : buf_addch(&t, ')');
	}
	r = r < 0 ? r : buf_addf(&t, " %s", reporters_results_name(rb->results));
	if (r >= 0 && rb->branch) {
		r = buf_adds(&t, " (");
		r = r < 0 ? r
			  : (slack ? http_slack_escape(&t, rb->branch) : buf_adds(&t, rb->branch));
		r = r < 0 ? r : buf_addch(&t, ')');
	}
	if (r >= 0 && rb->state_string && *rb->state_string) {
		r = buf_adds(&t, ": ");
		r = r < 0 ? r
			  : (slack ? http_slack_escape(&t, rb->state_string)
				   : buf_adds(&t, rb->state_string));
	}
	json_t *o = NULL;
	if (r >= 0) {
		json_t *fields = json_array();
		json_array_append_new(
			fields, http_field("Result", reporters_results_name(rb->results), true));
		if (rb->branch)
			json_array_append_new(fields, http_field("Branch", rb->branch, true));
		if (rb->revision)
			json_array_append_new(fields, http_field("Revision", rb->revision, true));
		if (rb->nblamelist) {
			struct buf b;
			buf_init(&b, 64 << 10);
			int br = 0;
			for (size_t i = 0; i < rb->nblamelist && br >= 0; i++)
				br = buf_addf(&b, "%s%s", i ? ", " : "", rb->blamelist[i]);
			if (br >= 0)
				json_array_append_new(fields,
						      http_field("Blamelist", b.ptr, false));
			buf_release(&b);
		}
		json_t *att = json_pack("{s:s, s:s, s:s, s:s, s:o}", "fallback", sum.ptr, "color",
					http_color(rb->results), "title", head, "title_link",
					rb->url, "fields", fields);
		o = json_pack("{s:s, s:[o]}", "text", t.ptr, "attachments", att);
		if (cfg->http.username)
			json_object_set_new(o, "username", json_string(cfg->http.username));
		if (cfg->http.channel)
			json_object_set_new(o, "channel", json_string(cfg->http.channel));
		if (cfg->http.icon_url)
			json_object_set_new(o, "icon_url", json_string(cfg->http.icon_url));
	}
	buf_release(&t);
	buf_release(&sum);
	return o;
}

static json_t *http_body_matrix(const struct report_build *rb)
{
	struct buf t, h;
	buf_init(&t, HTTP_MAX_BODY / 4);
	buf_init(&h, HTTP_MAX_BODY / 4);
	int r = http_summary(&t, rb);
	if (r >= 0)
		r = buf_addf(&t, " %s", rb->url);
	char head[512];
	snprintf(head, sizeof(head), "%s #%lld", rb->builder, (long long)rb->number);
	if (r >= 0)
		r = buf_adds(&h, "<a href=\"");
	r = r < 0 ? r : http_html_escape(&h, rb->url);
	r = r < 0 ? r : buf_adds(&h, "\">");
	r = r < 0 ? r : http_html_escape(&h, head);
	r = r < 0 ? r : buf_addf(&h, "</a> <b>%s</b>", reporters_results_name(rb->results));
	if (r >= 0 && rb->branch) {
		r = buf_adds(&h, " (");
		r = r < 0 ? r : http_html_escape(&h, rb->branch);
		r = r < 0 ? r : buf_addch(&h, ')');
	}
	if (r >= 0 && rb->state_string && *rb->state_string) {
		r = buf_adds(&h, ": ");
		r = r < 0 ? r : http_html_escape(&h, rb->state_string);
	}
	json_t *o = r < 0 ? NULL
			  : json_pack("{s:s, s:s, s:s, s:s}", "msgtype", "m.text", "body", t.ptr,
				      "format", "org.matrix.custom.html", "formatted_body", h.ptr);
	buf_release(&t);
	buf_release(&h);
	return o;
}

int http_reporter_body(const struct config_reporter *cfg, const struct report_build *rb,
		       json_t *build, struct buf *out)
{
	json_t *o;
	switch (cfg->kind) {
	case CONFIG_REPORTER_HTTP:
		o = http_body_http(rb, build);
		break;
	case CONFIG_REPORTER_SLACK:
	case CONFIG_REPORTER_MATTERMOST:
		o = http_body_webhook(cfg, rb);
		break;
	case CONFIG_REPORTER_MATRIX:
		o = http_body_matrix(rb);
		break;
	default:
		o = NULL;
	}
	if (!o)
		return -E2BIG;
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	int r = s ? buf_adds(out, s) : -ENOMEM;
	free(s);
	return r;
}

void http_reporter_sign(const char *key, const void *body, size_t len,
			char out[HTTP_SIGNATURE_SIZE])
{
	crypto_auth_hmacsha256_state st;
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
	crypto_auth_hmacsha256_update(&st, body, len);
	crypto_auth_hmacsha256_final(&st, mac);
	memcpy(out, "sha256=", 7);
	sodium_bin2hex(out + 7, HTTP_SIGNATURE_SIZE - 7, mac, sizeof(mac));
	sodium_memzero(&st, sizeof(st));
}

/* ---- messages ----------------------------------------------------------------- */

struct http_msg *http_reporter_msg_new(const struct config_reporter *cfg, int64_t buildid,
				       const char *body, size_t len)
{
	struct http_msg *msg = xcalloc(1, sizeof(*msg));
	msg->buildid = buildid;
	msg->len = len;
	if (cfg->kind == CONFIG_REPORTER_MATRIX) {
		unsigned char nonce[8];
		char hex[sizeof(nonce) * 2 + 1];
		randombytes_buf(nonce, sizeof(nonce));
		sodium_bin2hex(hex, sizeof(hex), nonce, sizeof(nonce));
		char txn[64];
		snprintf(txn, sizeof(txn), "kiln-%lld-%s", (long long)buildid, hex);
		struct buf u;
		buf_init(&u, 8192);
		int r = buf_addf(&u, "%s/_matrix/client/v3/rooms/", cfg->http.url);
		r = r < 0 ? r : reporters_percent_encode(&u, cfg->http.room, false);
		r = r < 0 ? r : buf_addf(&u, "/send/m.room.message/%s", txn);
		msg->url = r < 0 ? xstrdup("") : buf_detach(&u, NULL);
		buf_release(&u);
	} else
		msg->url = xstrdup(cfg->http.url);
	if (cfg->kind == CONFIG_REPORTER_HTTP && cfg->http.hmac_key)
		http_reporter_sign(cfg->http.hmac_key, body, len, msg->signature);
	return msg;
}

void http_reporter_msg_free(void *priv)
{
	struct http_msg *msg = priv;
	if (!msg)
		return;
	if (msg->url)
		explicit_bzero(msg->url, strlen(msg->url)); /* may be a webhook's secret */
	free(msg->url);
	free(msg);
}

/* ---- the queue's callbacks ------------------------------------------------------ */

static int http_setup(void *ud, void *priv, CURL *h, struct curl_slist **ret_list)
{
	struct http_rep *hr = ud;
	struct http_msg *msg = priv;
	const struct config_reporter *cfg = hr->r->cfg;
	const struct curl_uv_api *c = &curl_uv_api;
	struct curl_slist *list = reporters_curl_headers("application/json");
	if (list && msg->signature[0])
		list = reporters_curl_header(list, "X-Kiln-Signature", "", msg->signature);
	for (size_t i = 0; list && i < cfg->http.nheaders; i++)
		list = reporters_curl_header(list, cfg->http.header_names[i], "",
					     cfg->http.header_values[i]);
	if (list && cfg->kind == CONFIG_REPORTER_MATRIX)
		list = reporters_curl_header(list, "Authorization", "Bearer ", cfg->http.token);
	*ret_list = list;
	if (!list)
		return -ENOMEM;
	bool put = cfg->kind == CONFIG_REPORTER_MATRIX;
	reporters_curl_setup(h, msg->url, list, put ? -1 : (long long)msg->len, &msg->reply);
	if (put)
		c->easy_setopt(h, CURLOPT_UPLOAD, 1L); /* PUT, INFILESIZE set by the queue */
	return 0;
}

static void http_done(void *ud, void *priv, enum curl_uv_outcome outcome, const char *err)
{
	struct http_rep *hr = ud;
	struct http_msg *msg = priv;
	reporters_log_outcome(hr->r, "build", msg->buildid, outcome == CURL_UV_SENT, err);
}

static const struct curl_uv_queue_ops http_ops = {
	.setup = http_setup,
	.done = http_done,
	.free = http_reporter_msg_free,
};

/* ---- the kinds --------------------------------------------------------------------- */

static void http_mask_emit(void *ud, char stream, const char *text, size_t len)
{
	struct buf *b = ud;
	if (buf_room(b) >= len && buf_add(b, text, len) < 0)
		log_warn("masked body over its cap"); /* cannot happen: checked through buf_room */
}

static void http_build_finished(struct reporter *r, const struct report_build *rb)
{
	struct http_rep *hr = r->priv;
	struct master *m = r->m;
	/* the build's row as the gathering read it (reporters.c) */
	json_t *row = r->cfg->kind == CONFIG_REPORTER_HTTP ? json_incref(rb->row) : NULL;
	struct buf body, masked;
	buf_init(&body, HTTP_MAX_BODY);
	buf_init(&masked, HTTP_MAX_BODY + 4096);
	int rc = http_reporter_body(r->cfg, rb, row, &body);
	json_decref(row);
	if (rc < 0) {
		log_warn("build=%lld: reporter '%s': cannot compose the message (over %u bytes, or "
			 "a field not UTF-8): not sent",
			 (long long)rb->buildid, r->cfg->name, HTTP_MAX_BODY);
		goto out;
	}
	/* the config's secrets out of the body (compact JSON: one line) */
	struct logmask *mk = logmask_new((const char *const *)m->cfg->secrets, m->cfg->nsecrets,
					 http_mask_emit, &masked);
	logmask_feed(mk, 'o', body.ptr, body.len);
	logmask_flush(mk);
	logmask_free(mk);
	struct http_msg *msg = http_reporter_msg_new(r->cfg, rb->buildid, masked.ptr, masked.len);
	(void)curl_uv_submit(hr->q, masked.ptr, masked.len, msg); /* failures logged there */
out:
	buf_release(&body);
	buf_release(&masked);
}

/* An alert (alerts.c; slice "alerts"): http POSTs the event's JSON
 * ({"event": "worker_missing" | "regression", ...}); slack and mattermost
 * a {"text"} with the subject and its page; matrix a room message. */
static void http_alert(struct reporter *r, const struct report_alert *a)
{
	struct http_rep *hr = r->priv;
	struct master *m = r->m;
	json_t *o;
	char *line = xasprintf("Kiln: %s %s", a->subject, a->url);
	switch (r->cfg->kind) {
	case CONFIG_REPORTER_HTTP:
		o = json_deep_copy(a->data);
		break;
	case CONFIG_REPORTER_MATRIX:
		o = json_pack("{s:s, s:s}", "msgtype", "m.text", "body", line + 6);
		break;
	default:
		o = json_pack("{s:s}", "text", line);
		if (o && r->cfg->http.username)
			json_object_set_new(o, "username", json_string(r->cfg->http.username));
		if (o && r->cfg->http.channel)
			json_object_set_new(o, "channel", json_string(r->cfg->http.channel));
	}
	free(line);
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (!s || strlen(s) > HTTP_MAX_BODY) {
		log_warn("%s: reporter '%s': cannot compose the alert", a->subject, r->cfg->name);
		free(s);
		return;
	}
	struct buf masked;
	buf_init(&masked, HTTP_MAX_BODY + 4096);
	struct logmask *mk = logmask_new((const char *const *)m->cfg->secrets, m->cfg->nsecrets,
					 http_mask_emit, &masked);
	logmask_feed(mk, 'o', s, strlen(s));
	logmask_flush(mk);
	logmask_free(mk);
	free(s);
	struct http_msg *msg = http_reporter_msg_new(r->cfg, a->id, masked.ptr, masked.len);
	(void)curl_uv_submit(hr->q, masked.ptr, masked.len, msg); /* failures logged there */
	buf_release(&masked);
}

static int http_start(struct reporter *r, struct curl_uv *cu)
{
	const struct config_reporter *rc = r->cfg;
	const char *u = rc->http.url;
	if (strncasecmp(u, "http://", 7) && strncasecmp(u, "https://", 8)) {
		/* a secret's value (config-reporter-http.c): never shown */
		log_error("reporter '%s': its URL (from secret(...)) is not an http:// or "
			  "https:// URL",
			  rc->name);
		return -EINVAL;
	}
	struct http_rep *hr = xcalloc(1, sizeof(*hr));
	hr->r = r;
	hr->q = reporters_queue_new(r, cu, &http_ops, hr);
	r->priv = hr;
	return 0;
}

static void http_stop(struct reporter *r)
{
	free(r->priv);
	r->priv = NULL;
}

const struct reporter_kind reporter_kind_http = {
	.kind = CONFIG_REPORTER_HTTP,
	.name = "http",
	.start = http_start,
	.build_finished = http_build_finished,
	.stop = http_stop,
	.alert = http_alert,
};
const struct reporter_kind reporter_kind_slack = {
	.kind = CONFIG_REPORTER_SLACK,
	.name = "slack",
	.start = http_start,
	.build_finished = http_build_finished,
	.stop = http_stop,
	.alert = http_alert,
};
const struct reporter_kind reporter_kind_mattermost = {
	.kind = CONFIG_REPORTER_MATTERMOST,
	.name = "mattermost",
	.start = http_start,
	.build_finished = http_build_finished,
	.stop = http_stop,
	.alert = http_alert,
};
const struct reporter_kind reporter_kind_matrix = {
	.kind = CONFIG_REPORTER_MATRIX,
	.name = "matrix",
	.start = http_start,
	.build_finished = http_build_finished,
	.stop = http_stop,
	.alert = http_alert,
};
