/*
 * What the chat reporters (telegram.c, zulip.c; slice "alerts") share: a
 * queue of POSTs (curl-uv.h), each with its URL and headers fixed when the
 * message is made; the text is masked (the config's secrets become
 * "<secret>") before it is encoded.  URLs and headers are never logged: they carry tokens.
 */
#ifndef KILN_MASTER_REPORTERS_CHAT_H
#define KILN_MASTER_REPORTERS_CHAT_H

#include "master/reporters/reporters.h"

struct buf;

/* A message's body, at most. */
#define CHAT_MAX_BODY (256u << 10)

/* Sets up r->priv: the reporter's queue. */
int chat_start(struct reporter *r, struct curl_uv *cu);
void chat_stop(struct reporter *r);
/* Appends text with the config's secrets masked ("<secret>"); 0 or -E2BIG. */
int chat_mask(struct master *m, const char *text, struct buf *out);
/* Queues a POST of body (already masked) to url (owned from here) with
 * header (one "Name: value" line or NULL; owned from here) and
 * content_type; id names the build or worker in log lines. */
void chat_submit(struct reporter *r, int64_t id, char *url, char *header, const char *content_type,
		 const char *body, size_t len);

/* HTML text: &, <, > and " escaped. */
int chat_html_escape(struct buf *out, const char *s);
/* application/x-www-form-urlencoded: "name=value" with value percent-encoded. */
int chat_form_add(struct buf *out, const char *name, const char *value);

#endif
