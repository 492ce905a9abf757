/*
 * The Telegram reporter (slice "alerts"): one Bot API call per build the
 * filter picks, and per alert: POST API_URL/botTOKEN/sendMessage with
 * {"chat_id", "text", "parse_mode": "HTML"}.  The token is in the URL, so
 * the URL is never logged (chat.c).
 */
#define LOG_SUBSYS "report"
#include "master/reporters/chat.h"
#include "master/master.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "db/db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* s with the config's secrets masked, then HTML-escaped (so that the
 * "<secret>" in its place is text, not a tag). */
static int telegram_escape(struct master *m, struct buf *out, const char *s)
{
	struct buf masked;
	buf_init(&masked, CHAT_MAX_BODY);
	int r = chat_mask(m, s, &masked);
	r = r < 0 ? r : chat_html_escape(out, masked.ptr);
	buf_release(&masked);
	return r;
}

/* The message's text (Telegram's HTML: a, b; the rest masked and escaped). */
static int telegram_build_text(struct master *m, const struct report_build *rb, struct buf *out)
{
	int r = buf_adds(out, "<a href=\"");
	r = r < 0 ? r : telegram_escape(m, out, rb->url);
	r = r < 0 ? r : buf_adds(out, "\">");
	r = r < 0 ? r : telegram_escape(m, out, rb->builder);
	r = r < 0 ? r
		  : buf_addf(out, " #%lld</a> <b>%s</b>", (long long)rb->number,
			     reporters_results_name(rb->results));
	if (r >= 0 && rb->branch) {
		r = buf_adds(out, " (");
		r = r < 0 ? r : telegram_escape(m, out, rb->branch);
		r = r < 0 ? r : buf_addch(out, ')');
	}
	if (r >= 0 && rb->state_string && *rb->state_string) {
		r = buf_adds(out, ": ");
		r = r < 0 ? r : telegram_escape(m, out, rb->state_string);
	}
	for (size_t i = 0; i < rb->nblamelist && r >= 0; i++) {
		r = buf_adds(out, i ? ", " : "\nBlamelist: ");
		r = r < 0 ? r : telegram_escape(m, out, rb->blamelist[i]);
	}
	return r;
}

/* html: masked and escaped already. */
static void telegram_send(struct reporter *r, int64_t id, const char *html)
{
	const struct config_reporter_chat *c = &r->cfg->chat;
	json_t *o = json_pack("{s:s, s:s, s:s}", "chat_id", c->chat_id, "text", html, "parse_mode",
			      "HTML");
	char *body = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (!body) {
		log_warn("id=%lld: reporter '%s': a field is not UTF-8: not sent", (long long)id,
			 r->cfg->name);
		return;
	}
	chat_submit(r, id, xasprintf("%s/bot%s/sendMessage", c->url, c->token), NULL,
		    "application/json", body, strlen(body));
	free(body);
}

static void telegram_build_finished(struct reporter *r, const struct report_build *rb)
{
	struct buf t;
	buf_init(&t, CHAT_MAX_BODY);
	if (telegram_build_text(r->m, rb, &t) >= 0)
		telegram_send(r, rb->buildid, t.ptr);
	else
		log_warn("build=%lld: reporter '%s': message too long: not sent",
			 (long long)rb->buildid, r->cfg->name);
	buf_release(&t);
}

static void telegram_alert(struct reporter *r, const struct report_alert *a)
{
	struct buf t;
	buf_init(&t, CHAT_MAX_BODY);
	int rc = buf_adds(&t, "<b>");
	rc = rc < 0 ? rc : telegram_escape(r->m, &t, a->subject);
	rc = rc < 0 ? rc : buf_adds(&t, "</b>\n");
	rc = rc < 0 ? rc : telegram_escape(r->m, &t, a->text);
	if (rc >= 0)
		telegram_send(r, a->id, t.ptr);
	buf_release(&t);
}

const struct reporter_kind reporter_kind_telegram = {
	.kind = CONFIG_REPORTER_TELEGRAM,
	.name = "telegram",
	.start = chat_start,
	.build_finished = telegram_build_finished,
	.stop = chat_stop,
	.alert = telegram_alert,
};
