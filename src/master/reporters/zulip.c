/*
 * The Zulip reporter (slice "alerts"): one stream message per build the
 * filter picks, and per alert: POST SITE/api/v1/messages, form-encoded
 * type=stream, to=STREAM, topic=TOPIC (the config's, or the builder's
 * name; "kiln" for a worker's alert), content=MARKDOWN, with basic auth
 * EMAIL:API_KEY.  The Authorization header is never logged (chat.c).
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

#include <sodium.h>

/* Markdown link text: brackets, backslashes and emphasis escaped. */
static int zulip_md_escape(struct buf *out, const char *s)
{
	int r = 0;
	for (; *s && r >= 0; s++)
		r = strchr("[]\\*_`", *s) ? buf_addf(out, "\\%c", *s) : buf_addch(out, *s);
	return r;
}

static void zulip_send(struct reporter *r, int64_t id, const char *topic, const char *content)
{
	const struct config_reporter_chat *c = &r->cfg->chat;
	struct buf masked, form;
	buf_init(&masked, CHAT_MAX_BODY);
	buf_init(&form, CHAT_MAX_BODY * 3 + 4096);
	int rc = chat_mask(r->m, content, &masked);
	rc = rc < 0 ? rc : chat_form_add(&form, "type", "stream");
	rc = rc < 0 ? rc : chat_form_add(&form, "to", c->stream);
	rc = rc < 0 ? rc : chat_form_add(&form, "topic", topic);
	rc = rc < 0 ? rc : chat_form_add(&form, "content", masked.ptr);
	if (rc < 0) {
		log_warn("id=%lld: reporter '%s': message over %u bytes: not sent", (long long)id,
			 r->cfg->name, CHAT_MAX_BODY);
		goto out;
	}
	/* Authorization: Basic base64(email:api_key) */
	char *cred = xasprintf("%s:%s", c->email, c->token);
	size_t clen = strlen(cred);
	size_t blen = sodium_base64_encoded_len(clen, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = xmalloc(blen);
	sodium_bin2base64(b64, blen, (const unsigned char *)cred, clen,
			  sodium_base64_VARIANT_ORIGINAL);
	char *header = xasprintf("Authorization: Basic %s", b64);
	sodium_memzero(cred, clen);
	sodium_memzero(b64, blen);
	free(cred);
	free(b64);
	chat_submit(r, id, xasprintf("%s/api/v1/messages", c->url), header,
		    "application/x-www-form-urlencoded", form.ptr, form.len);
out:
	buf_release(&masked);
	buf_release(&form);
}

static void zulip_build_finished(struct reporter *r, const struct report_build *rb)
{
	struct buf t;
	buf_init(&t, CHAT_MAX_BODY);
	int rc = buf_adds(&t, "[");
	rc = rc < 0 ? rc : zulip_md_escape(&t, rb->builder);
	rc = rc < 0 ? rc
		    : buf_addf(&t, " #%lld](%s) **%s**", (long long)rb->number, rb->url,
			       reporters_results_name(rb->results));
	if (rc >= 0 && rb->branch)
		rc = buf_addf(&t, " (%s)", rb->branch);
	if (rc >= 0 && rb->state_string && *rb->state_string)
		rc = buf_addf(&t, ": %s", rb->state_string);
	for (size_t i = 0; i < rb->nblamelist && rc >= 0; i++)
		rc = buf_addf(&t, "%s%s", i ? ", " : "\nBlamelist: ", rb->blamelist[i]);
	if (rc >= 0)
		zulip_send(r, rb->buildid, r->cfg->chat.topic ? r->cfg->chat.topic : rb->builder,
			   t.ptr);
	else
		log_warn("build=%lld: reporter '%s': message too long: not sent",
			 (long long)rb->buildid, r->cfg->name);
	buf_release(&t);
}

static void zulip_alert(struct reporter *r, const struct report_alert *a)
{
	struct buf t;
	buf_init(&t, CHAT_MAX_BODY);
	int rc = buf_addf(&t, "**%s**\n%s", a->subject, a->text);
	const char *topic = r->cfg->chat.topic ? r->cfg->chat.topic
			    : a->builder       ? a->builder
					       : "kiln";
	if (rc >= 0)
		zulip_send(r, a->id, topic, t.ptr);
	buf_release(&t);
}

const struct reporter_kind reporter_kind_zulip = {
	.kind = CONFIG_REPORTER_ZULIP,
	.name = "zulip",
	.start = chat_start,
	.build_finished = zulip_build_finished,
	.stop = chat_stop,
	.alert = zulip_alert,
};
