/*
 * The chat reporters' outbound side (chat.h; slice "alerts").
 */
#define LOG_SUBSYS "report"
#include "master/reporters/chat.h"
#include "master/curl-uv.h"
#include "master/logmask.h"
#include "master/master.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct chat {
	struct reporter *r;
	struct curl_uv_queue *q;
};

struct chat_msg {
	int64_t id;
	size_t len;
	char *url;    /* owned, holds a token (telegram) */
	char *header; /* owned, holds a credential (zulip) */
	const char *content_type;
	size_t reply;
};

int chat_html_escape(struct buf *out, const char *s)
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

int chat_form_add(struct buf *out, const char *name, const char *value)
{
	int r = buf_addf(out, "%s%s=", out->len ? "&" : "", name);
	return r < 0 ? r : reporters_percent_encode(out, value, true);
}

static void chat_secret_free(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

static void chat_msg_free(void *priv)
{
	struct chat_msg *msg = priv;
	if (!msg)
		return;
	chat_secret_free(msg->url);
	chat_secret_free(msg->header);
	free(msg);
}

static int chat_setup(void *ud, void *priv, CURL *h, struct curl_slist **ret_list)
{
	(void)ud;
	struct chat_msg *msg = priv;
	const struct curl_uv_api *c = &curl_uv_api;
	struct curl_slist *list = reporters_curl_headers(msg->content_type);
	if (list && msg->header)
		list = c->slist_append(list, msg->header);
	*ret_list = list;
	if (!list)
		return -ENOMEM;
	reporters_curl_setup(h, msg->url, list, (long long)msg->len, &msg->reply);
	return 0;
}

static void chat_done(void *ud, void *priv, enum curl_uv_outcome outcome, const char *err)
{
	struct chat *ch = ud;
	struct chat_msg *msg = priv;
	reporters_log_outcome(ch->r, "id", msg->id, outcome == CURL_UV_SENT, err);
}

static const struct curl_uv_queue_ops chat_ops = {
	.setup = chat_setup,
	.done = chat_done,
	.free = chat_msg_free,
};

static void chat_mask_emit(void *ud, char stream, const char *text, size_t len)
{
	(void)stream;
	if (buf_add(ud, text, len) < 0)
		return; /* past the cap: the buf has failed (chat_mask says so) */
}

int chat_mask(struct master *m, const char *text, struct buf *out)
{
	size_t before = out->len, len = strlen(text);
	struct logmask *mk = logmask_new((const char *const *)m->cfg->secrets, m->cfg->nsecrets,
					 chat_mask_emit, out);
	logmask_feed(mk, 'o', text, len);
	logmask_flush(mk);
	logmask_free(mk);
	/* the masker ends every line with '\n': drop the one text had not */
	if (out->len > before && (len == 0 || text[len - 1] != '\n') &&
	    out->ptr[out->len - 1] == '\n')
		out->ptr[--out->len] = '\0';
	return buf_error(out);
}

void chat_submit(struct reporter *r, int64_t id, char *url, char *header, const char *content_type,
		 const char *body, size_t len)
{
	struct chat *ch = r->priv;
	struct chat_msg *msg = xcalloc(1, sizeof(*msg));
	msg->id = id;
	msg->len = len;
	msg->url = url;
	msg->header = header;
	msg->content_type = content_type;
	(void)curl_uv_submit(ch->q, body, len, msg); /* failures logged there */
}

int chat_start(struct reporter *r, struct curl_uv *cu)
{
	struct chat *ch = xcalloc(1, sizeof(*ch));
	ch->r = r;
	ch->q = reporters_queue_new(r, cu, &chat_ops, ch);
	r->priv = ch;
	return 0;
}

void chat_stop(struct reporter *r)
{
	free(r->priv);
	r->priv = NULL;
}
