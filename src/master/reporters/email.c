/*
 * The email reporter: one MIME message per build the filter picks, sent by
 * libcurl's SMTP on the reporter's queue (curl-uv.h).  The message is
 * multipart/alternative with a text/plain and a text/html part (both UTF-8,
 * base64 so that any log line is safe on the wire), lines end in CRLF, the
 * subject is RFC 2047-encoded when it is not ASCII; libcurl dot-stuffs the
 * body.  Recipients: the configured 'to' and, with blamelist = true, the
 * addresses of the changes' authors.
 */
#define LOG_SUBSYS "email"
#include "master/reporters/reporters.h"
#include "master/curl-uv.h"
#include "master/logmask.h"
#include "master/master.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "db/db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Caps: a message's size, the log tail's bytes, its recipients. */
#define EMAIL_MAX_MESSAGE (1u << 20)
#define EMAIL_MAX_LOG_TAIL (64u << 10)
#define EMAIL_MAX_RCPT 128
#define EMAIL_MAX_ADDRESS 254

struct email {
	struct reporter *r;
	struct curl_uv_queue *q;
	char *url;              /* owned: smtp://host:port */
	struct email_job *jobs; /* builds whose reads are in flight */
};

/* One message's envelope (the queue's priv). */
struct email_msg {
	char *rcpt[EMAIL_MAX_RCPT]; /* owned */
	size_t nrcpt;
	int64_t buildid;
};

/* ---- building the message ------------------------------------------------ */

static const char email_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int email_base64(struct buf *out, const unsigned char *p, size_t n, size_t line)
{
	size_t col = 0;
	int r = 0;
	for (size_t i = 0; i < n && r >= 0; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		char q[4] = {email_b64[(v >> 18) & 63], email_b64[(v >> 12) & 63],
			     i + 1 < n ? email_b64[(v >> 6) & 63] : '=',
			     i + 2 < n ? email_b64[v & 63] : '='};
		r = buf_add(out, q, 4);
		col += 4;
		if (line && col >= line && i + 3 < n) {
			r = r < 0 ? r : buf_add(out, "\r\n", 2);
			col = 0;
		}
	}
	return r;
}

/* Appends s as the value of a header: as it is when printable ASCII, else
 * as RFC 2047 encoded-words (UTF-8, base64), each at most 75 characters,
 * never splitting a UTF-8 sequence, folded with CRLF SPACE. */
static int email_header_value(struct buf *out, const char *s)
{
	bool ascii = true;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p >= 0x7f)
			ascii = false;
	if (ascii)
		return buf_adds(out, s);
	size_t n = strlen(s), i = 0;
	int r = 0;
	while (i < n && r >= 0) {
		/* 36 bytes are 48 base64 characters: with "=?UTF-8?B?" and "?=", 60,
		 * so that "Subject: " and the first word fit in 78 */
		size_t k = n - i > 36 ? 36 : n - i;
		while (k > 0 && i + k < n && (((unsigned char)s[i + k]) & 0xc0) == 0x80)
			k--; /* do not cut inside a character */
		if (k == 0)
			k = n - i > 36 ? 36 : n - i;
		if (i > 0)
			r = buf_add(out, "\r\n ", 3);
		r = r < 0 ? r : buf_adds(out, "=?UTF-8?B?");
		r = r < 0 ? r : email_base64(out, (const unsigned char *)s + i, k, 0);
		r = r < 0 ? r : buf_adds(out, "?=");
		i += k;
	}
	return r;
}

static int email_html_escape(struct buf *out, const char *s, size_t n)
{
	int r = 0;
	for (size_t i = 0; i < n && r >= 0; i++) {
		switch (s[i]) {
		case '<':
			r = buf_adds(out, "&lt;");
			break;
		case '>':
			r = buf_adds(out, "&gt;");
			break;
		case '&':
			r = buf_adds(out, "&amp;");
			break;
		case '"':
			r = buf_adds(out, "&quot;");
			break;
		case '\r':
			break;
		default:
			r = buf_addch(out, s[i]);
		}
	}
	return r;
}

/* Text with bare '\n' to CRLF (a part before base64: the decoded text has CRLF). */
static int email_crlf(struct buf *out, const char *s, size_t n)
{
	int r = 0;
	for (size_t i = 0; i < n && r >= 0; i++) {
		if (s[i] == '\r')
			continue;
		r = s[i] == '\n' ? buf_add(out, "\r\n", 2) : buf_addch(out, s[i]);
	}
	return r;
}

/* Now as a Date: header's value ("Tue, 01 Dec 2026 10:00:00 +0000") into
 * out; returns now. */
static time_t email_date(char *out, size_t n)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(out, n, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	return now;
}

static void email_mask_emit(void *ud, char stream, const char *text, size_t len)
{
	struct buf *b = ud;
	if (buf_room(b) >= len + 1) {
		int r = buf_add(b, text, len);
		if (r >= 0 && (len == 0 || text[len - 1] != '\n'))
			r = buf_addch(b, '\n');
		(void)r; /* checked through buf_room: cannot fail */
	}
}

/* Copies src into dst with the config's secrets masked (logmask.h). */
static void email_mask(struct master *m, const struct buf *src, struct buf *dst)
{
	struct logmask *mk = logmask_new((const char *const *)m->cfg->secrets, m->cfg->nsecrets,
					 email_mask_emit, dst);
	logmask_feed(mk, 'o', src->ptr, src->len);
	logmask_flush(mk);
	logmask_free(mk);
}

/* The bare address of an author "Ann <ann@example.org>" (or "ann@example.org"). */
static bool email_author_address(const char *who, char *out, size_t size)
{
	const char *lt = strrchr(who, '<'), *gt = lt ? strchr(lt, '>') : NULL;
	const char *a = lt && gt ? lt + 1 : who;
	size_t n = lt && gt ? (size_t)(gt - lt - 1) : strlen(who);
	if (n == 0 || n >= size || n > EMAIL_MAX_ADDRESS)
		return false;
	const char *at = memchr(a, '@', n);
	if (!at || at == a || at == a + n - 1)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)a[i];
		if (c <= 0x20 || c >= 0x7f || strchr("<>\"(),;:\\[]", c))
			return false;
	}
	memcpy(out, a, n);
	out[n] = '\0';
	return true;
}

static void email_add_rcpt(struct email_msg *msg, const char *addr)
{
	for (size_t i = 0; i < msg->nrcpt; i++)
		if (!strcasecmp(msg->rcpt[i], addr))
			return;
	if (msg->nrcpt < EMAIL_MAX_RCPT)
		msg->rcpt[msg->nrcpt++] = xstrdup(addr);
}

static const char *email_results_word(int results)
{
	return reporters_results_name(results);
}

/* The summary lines both parts carry (text form; the HTML part escapes it). */
static int email_summary(struct buf *t, const struct report_build *rb)
{
	int r = buf_addf(t, "Builder: %s\nBuild: #%lld\nResult: %s\n", rb->builder,
			 (long long)rb->number, email_results_word(rb->results));
	if (r >= 0 && rb->prev_results != RESULTS_NONE)
		r = buf_addf(t, "Previous result: %s\n", email_results_word(rb->prev_results));
	if (r >= 0 && rb->state_string && *rb->state_string)
		r = buf_addf(t, "State: %s\n", rb->state_string);
	if (r >= 0 && rb->branch)
		r = buf_addf(t, "Branch: %s\n", rb->branch);
	if (r >= 0 && rb->revision)
		r = buf_addf(t, "Revision: %s\n", rb->revision);
	if (r >= 0)
		r = buf_addf(t, "Build page: %s\n", rb->url);
	if (r >= 0 && rb->nblamelist) {
		r = buf_adds(t, "Blamelist: ");
		for (size_t i = 0; i < rb->nblamelist && r >= 0; i++)
			r = buf_addf(t, "%s%s", i ? ", " : "", rb->blamelist[i]);
		r = r < 0 ? r : buf_addch(t, '\n');
	}
	return r;
}

/* Builds the whole message into out (the failed step's log tail: tail,
 * step, when have_tail); 0 or -E2BIG. */
static int email_compose(struct email *e, const struct report_build *rb,
			 const struct email_msg *msg, const struct buf *tail, const char *step,
			 bool have_tail, struct buf *out)
{
	const struct config_reporter_email *ec = &e->r->cfg->email;
	struct master *m = e->r->m;
	int r;

	/* the summary and the failing step's log tail, masked (the log is
	 * stored masked: again here, as defence in depth) */
	struct buf masked, sum, msum;
	buf_init(&masked, EMAIL_MAX_LOG_TAIL + 4096);
	buf_init(&sum, 64 << 10);
	buf_init(&msum, (64 << 10) + 4096);
	if (have_tail)
		email_mask(m, tail, &masked);
	r = email_summary(&sum, rb);
	if (r >= 0)
		email_mask(m, &sum, &msum);

	char subject[1024];
	snprintf(subject, sizeof(subject), "%s %s: %s #%lld%s%s%s", ec->subject,
		 email_results_word(rb->results), rb->builder, (long long)rb->number,
		 rb->branch ? " (" : "", rb->branch ? rb->branch : "", rb->branch ? ")" : "");
	struct buf subj, msubj;
	buf_init(&subj, sizeof(subject));
	buf_init(&msubj, sizeof(subject) + 4096);
	if (buf_adds(&subj, subject) >= 0)
		email_mask(m, &subj, &msubj);
	while (msubj.len && msubj.ptr[msubj.len - 1] == '\n')
		buf_setlen(&msubj, msubj.len - 1);
	snprintf(subject, sizeof(subject), "%s", msubj.ptr);
	buf_release(&subj);
	buf_release(&msubj);

	/* text part */
	struct buf text, html;
	buf_init(&text, EMAIL_MAX_MESSAGE / 2);
	buf_init(&html, EMAIL_MAX_MESSAGE / 2);
	if (r >= 0)
		r = buf_add(&text, msum.ptr, msum.len);
	if (r >= 0 && have_tail)
		r = buf_addf(&text, "\nThe last %d lines of step '%s' (stdio):\n\n%s",
			     ec->log_lines, step, masked.ptr);

	/* html part */
	if (r >= 0)
		r = buf_adds(&html, "<!DOCTYPE html>\n<html><body>\n<h2>");
	if (r >= 0) {
		char h[512];
		snprintf(h, sizeof(h), "%s #%lld: %s", rb->builder, (long long)rb->number,
			 email_results_word(rb->results));
		r = email_html_escape(&html, h, strlen(h));
	}
	if (r >= 0)
		r = buf_adds(&html, "</h2>\n<p><a href=\"");
	if (r >= 0)
		r = email_html_escape(&html, rb->url, strlen(rb->url));
	if (r >= 0)
		r = buf_adds(&html, "\">Build page</a></p>\n<pre>");
	if (r >= 0)
		r = email_html_escape(&html, msum.ptr, msum.len);
	if (r >= 0)
		r = buf_adds(&html, "</pre>\n");
	if (r >= 0 && have_tail) {
		r = buf_adds(&html, "<h3>The last lines of step '");
		r = r < 0 ? r : email_html_escape(&html, step, strlen(step));
		r = r < 0 ? r : buf_adds(&html, "'</h3>\n<pre>");
		r = r < 0 ? r : email_html_escape(&html, masked.ptr, masked.len);
		r = r < 0 ? r : buf_adds(&html, "</pre>\n");
	}
	if (r >= 0)
		r = buf_adds(&html, "</body></html>\n");

	/* headers */
	char date[64];
	time_t now = email_date(date, sizeof(date));
	const char *dom = strchr(ec->from, '@');
	char boundary[96];
	snprintf(boundary, sizeof(boundary), "=_kiln_%lld_%lld", (long long)rb->buildid,
		 (long long)now);
	if (r >= 0)
		r = buf_addf(out, "Date: %s\r\nFrom: %s\r\nTo: ", date, ec->from);
	for (size_t i = 0; i < msg->nrcpt && r >= 0; i++)
		r = buf_addf(out, "%s%s", i ? ",\r\n " : "", msg->rcpt[i]);
	if (r >= 0)
		r = buf_adds(out, "\r\nSubject: ");
	if (r >= 0)
		r = email_header_value(out, subject);
	if (r >= 0)
		r = buf_addf(out,
			     "\r\nMessage-ID: <kiln.%lld.%lld%s>\r\n"
			     "X-Kiln-Builder: ",
			     (long long)rb->buildid, (long long)now, dom ? dom : "@kiln");
	if (r >= 0)
		r = email_header_value(out, rb->builder);
	if (r >= 0)
		r = buf_addf(out,
			     "\r\nX-Kiln-Result: %s\r\nMIME-Version: 1.0\r\n"
			     "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"
			     "This is a MIME message.\r\n",
			     email_results_word(rb->results), boundary);
	struct buf part;
	buf_init(&part, EMAIL_MAX_MESSAGE);
	for (int k = 0; k < 2 && r >= 0; k++) {
		struct buf *src = k == 0 ? &text : &html;
		r = buf_addf(out,
			     "\r\n--%s\r\nContent-Type: text/%s; charset=utf-8\r\n"
			     "Content-Transfer-Encoding: base64\r\n\r\n",
			     boundary, k == 0 ? "plain" : "html");
		buf_reset(&part);
		r = r < 0 ? r : email_crlf(&part, src->ptr, src->len);
		r = r < 0 ? r : email_base64(out, (const unsigned char *)part.ptr, part.len, 76);
	}
	if (r >= 0)
		r = buf_addf(out, "\r\n--%s--\r\n", boundary);
	buf_release(&part);
	buf_release(&text);
	buf_release(&html);
	buf_release(&masked);
	buf_release(&sum);
	buf_release(&msum);
	return r;
}

/* ---- the queue's callbacks ------------------------------------------------ */

static int email_setup(void *ud, void *priv, CURL *h, struct curl_slist **ret_list)
{
	struct email *e = ud;
	struct email_msg *msg = priv;
	const struct config_reporter_email *ec = &e->r->cfg->email;
	const struct curl_uv_api *c = &curl_uv_api;
	struct curl_slist *list = NULL;
	for (size_t i = 0; i < msg->nrcpt; i++) {
		char a[EMAIL_MAX_ADDRESS + 3];
		snprintf(a, sizeof(a), "<%s>", msg->rcpt[i]);
		list = c->slist_append(list, a);
	}
	*ret_list = list;
	char from[EMAIL_MAX_ADDRESS + 3];
	snprintf(from, sizeof(from), "<%s>", ec->from);
	c->easy_setopt(h, CURLOPT_URL, e->url);
	c->easy_setopt(h, CURLOPT_MAIL_FROM, from);
	c->easy_setopt(h, CURLOPT_MAIL_RCPT, list);
	c->easy_setopt(h, CURLOPT_UPLOAD, 1L);
	/* CURLOPT_MAIL_RCPT_ALLOWFAILS (7.69; spelt ALLLOWFAILS before 8.2): a
	 * refused recipient (an author's stale address) does not cost the others
	 * their mail; the transfer fails only when every one is refused */
	c->easy_setopt(h, (CURLoption)290, 1L);
	if (ec->tls == CONFIG_SMTP_TLS_STARTTLS)
		c->easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
	else if (ec->tls == CONFIG_SMTP_TLS_REQUIRED || ec->tls == CONFIG_SMTP_TLS_SMTPS)
		c->easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	if (ec->smtp_user) {
		c->easy_setopt(h, CURLOPT_USERNAME, ec->smtp_user);
		c->easy_setopt(h, CURLOPT_PASSWORD, ec->smtp_password);
	}
	return list ? 0 : -ENOMEM;
}

static void email_done(void *ud, void *priv, enum curl_uv_outcome outcome, const char *err)
{
	struct email_msg *msg = priv;
	if (outcome == CURL_UV_SENT)
		log_info("build=%lld: mail sent to %zu recipient%s", (long long)msg->buildid,
			 msg->nrcpt, msg->nrcpt == 1 ? "" : "s");
	else
		log_warn("build=%lld: mail not sent: %s", (long long)msg->buildid,
			 err ? err : "dropped");
}

static void email_msg_free(void *priv)
{
	struct email_msg *msg = priv;
	for (size_t i = 0; i < msg->nrcpt; i++)
		free(msg->rcpt[i]);
	free(msg);
}

static const struct curl_uv_queue_ops email_ops = {
	.setup = email_setup,
	.done = email_done,
	.free = email_msg_free,
};

/* ---- the kind ---------------------------------------------------------------- */

/* ---- a build's mail, once its reads are in -------------------------------- */

/* One build the filter picked whose reads are in flight (issue 14: on the
 * loop, either backend): the failed step's log tail and the interested
 * users.  Mailed once both are in, unless the reporter stopped meanwhile
 * (e NULL: the answers are only freed). */
struct email_job {
	struct email_job *next;  /* e->jobs */
	struct email *e;         /* borrowed; NULL once email_stop ran */
	struct db *db;           /* borrowed: outlives the reads (db_close answers them) */
	struct report_build *rb; /* owned copy */
	struct email_msg *msg;   /* owned until submitted */
	int pending;             /* chains not finished (plus one while starting) */
	struct buf tail;
	char *step; /* owned: the failed step's name */
	bool have_tail;
	int64_t *uids; /* owned: the interested users (extras included) */
	size_t nuids;
};

static void email_job_free(struct email_job *job)
{
	if (job->e) {
		struct email_job **p = &job->e->jobs;
		while (*p && *p != job)
			p = &(*p)->next;
		if (*p)
			*p = job->next;
	}
	if (job->msg)
		email_msg_free(job->msg);
	reporters_build_free(job->rb);
	buf_release(&job->tail);
	free(job->step);
	free(job->uids);
	free(job);
}

/* Both chains are in: compose and queue the mail. */
static void email_job_send(struct email_job *job)
{
	struct email *e = job->e;
	struct reporter *r = e->r;
	const struct report_build *rb = job->rb;
	struct email_msg *msg = job->msg;
	if (!msg->nrcpt) {
		log_info("build=%lld: reporter '%s': nobody to mail (no 'to', no author address)",
			 (long long)rb->buildid, r->cfg->name);
		return;
	}
	struct buf body;
	buf_init(&body, EMAIL_MAX_MESSAGE);
	int rc = email_compose(e, rb, msg, &job->tail, job->step, job->have_tail, &body);
	if (rc < 0) {
		log_warn("build=%lld: reporter '%s': message over %u bytes: not sent",
			 (long long)rb->buildid, r->cfg->name, EMAIL_MAX_MESSAGE);
		buf_release(&body);
		return;
	}
	job->msg = NULL;                                     /* the queue's now */
	(void)curl_uv_submit(e->q, body.ptr, body.len, msg); /* failures are logged there */
	buf_release(&body);
}

/* One chain finished (r: -ECANCELED when the database closed: the master
 * is stopping, nothing is mailed). */
static void email_job_answered(struct email_job *job, int r)
{
	if (--job->pending > 0)
		return;
	if (job->e && !job->e->r->m->stopping && r != -ECANCELED)
		email_job_send(job);
	email_job_free(job);
}

static void email_on_tail(void *arg, int r, const char *text, size_t len, const char *step)
{
	struct email_job *job = arg;
	if (r < 0 && r != -ECANCELED && job->e)
		log_warn("build=%lld: cannot read the failed step's log: %s",
			 (long long)job->rb->buildid, err_str(r));
	if (r > 0 && buf_add(&job->tail, text, len) >= 0) {
		job->step = xstrdup(step);
		job->have_tail = true;
	}
	email_job_answered(job, r);
}

/* The user rows of the interested users: their addresses. */
static void email_on_user_rows(void *arg, int r, json_t *users, int64_t total, const char *err)
{
	struct email_job *job = arg;
	(void)total;
	if (r < 0 && r != -ECANCELED && job->e)
		log_warn("build=%lld: reporter '%s': cannot read the users: %s",
			 (long long)job->rb->buildid, job->e->r->cfg->name, err ? err : "failed");
	size_t i;
	json_t *u;
	json_array_foreach(users, i, u)
	{
		char a[EMAIL_MAX_ADDRESS + 1];
		const char *col = json_string_value(json_object_get(u, "email"));
		if (col && email_author_address(col, a, sizeof(a))) {
			email_add_rcpt(job->msg, a);
			continue;
		}
		size_t k;
		json_t *id;
		json_array_foreach(json_object_get(u, "identities"), k, id)
		{
			const char *t = json_string_value(json_object_get(id, "attr_type"));
			const char *d = json_string_value(json_object_get(id, "attr_data"));
			if (t && d && !strcmp(t, "email") &&
			    email_author_address(d, a, sizeof(a))) {
				email_add_rcpt(job->msg, a);
				break;
			}
		}
	}
	json_decref(users);
	email_job_answered(job, r);
}

/* The interested users less the authors' (blame: blamelist = false), as
 * user rows next. */
static void email_users_read(struct email_job *job, const int64_t *blame, size_t nblame)
{
	char ids[EMAIL_MAX_RCPT][24];
	const char *vals[EMAIL_MAX_RCPT];
	size_t nv = 0;
	for (size_t i = 0; i < job->nuids && nv < EMAIL_MAX_RCPT; i++) {
		bool authors_only = false;
		for (size_t k = 0; k < nblame && !authors_only; k++)
			authors_only = blame[k] == job->uids[i]; /* blamelist = false: not these */
		if (authors_only)
			continue;
		snprintf(ids[nv], sizeof(ids[nv]), "%lld", (long long)job->uids[i]);
		vals[nv] = ids[nv];
		nv++;
	}
	if (!nv) {
		email_job_answered(job, 0);
		return;
	}
	struct db_filter f = {.field = "uid", .op = DB_OP_EQ, .values = vals, .nvalues = nv};
	struct db_query q = {.filters = &f, .nfilters = 1, .limit = -1};
	int r = db_list_async(job->db, DB_USERS, &q, NULL, false, email_on_user_rows, job);
	if (r < 0) {
		log_warn("build=%lld: reporter '%s': cannot read the users: %s",
			 (long long)job->rb->buildid, job->e->r->cfg->name, db_errmsg(job->db));
		email_job_answered(job, 0);
	}
}

static void email_on_blame(void *arg, int r, const int64_t *uids, size_t n, const char *err)
{
	struct email_job *job = arg;
	if (r < 0 || !job->e) {
		if (r < 0 && r != -ECANCELED && job->e)
			log_warn("build=%lld: reporter '%s': cannot read the interested users: %s",
				 (long long)job->rb->buildid, job->e->r->cfg->name,
				 err ? err : "failed");
		email_job_answered(job, r < 0 ? r : 0);
		return;
	}
	email_users_read(job, uids, n);
}

static void email_on_users(void *arg, int r, const int64_t *uids, size_t n, const char *err)
{
	struct email_job *job = arg;
	if (r < 0 || !job->e) {
		if (r < 0 && r != -ECANCELED && job->e)
			log_warn("build=%lld: reporter '%s': cannot read the interested users: %s",
				 (long long)job->rb->buildid, job->e->r->cfg->name,
				 err ? err : "failed");
		email_job_answered(job, r < 0 ? r : 0);
		return;
	}
	if (n) {
		job->uids = xcalloc(n, sizeof(*job->uids));
		memcpy(job->uids, uids, n * sizeof(*uids));
		job->nuids = n;
	}
	if (!job->e->r->cfg->email.blamelist && n) {
		/* the authors' users are not mailed: which are they */
		int rc = db_build_interested_users_async(job->db, job->rb->buildid, NULL, 0,
							 email_on_blame, job);
		if (rc < 0) {
			log_warn("build=%lld: reporter '%s': cannot read the interested users: %s",
				 (long long)job->rb->buildid, job->e->r->cfg->name,
				 db_errmsg(job->db));
			email_job_answered(job, 0);
		}
		return;
	}
	email_users_read(job, NULL, 0);
}

static void email_build_finished(struct reporter *r, const struct report_build *rb)
{
	struct email *e = r->priv;
	const struct config_reporter_email *ec = &r->cfg->email;
	struct db *db = r->m->db;
	struct email_msg *msg = xcalloc(1, sizeof(*msg));
	msg->buildid = rb->buildid;
	for (size_t i = 0; i < ec->nto; i++)
		email_add_rcpt(msg, ec->to[i]);
	if (ec->blamelist)
		for (size_t i = 0; i < rb->nblamelist; i++) {
			char a[EMAIL_MAX_ADDRESS + 1];
			if (email_author_address(rb->blamelist[i], a, sizeof(a)))
				email_add_rcpt(msg, a);
		}
	struct email_job *job = xcalloc(1, sizeof(*job));
	job->e = e;
	job->db = db;
	job->rb = reporters_build_dup(rb);
	job->msg = msg;
	job->pending = 1; /* none finishes before both chains started */
	buf_init(&job->tail, EMAIL_MAX_LOG_TAIL);
	job->next = e->jobs;
	e->jobs = job;
	if (ec->log_lines > 0 && rb->results != RESULTS_SUCCESS) {
		int rc = reporters_log_tail_async(r->m, rb->buildid, ec->log_lines,
						  EMAIL_MAX_LOG_TAIL, email_on_tail, job);
		if (rc < 0)
			log_warn("build=%lld: cannot read the failed step's log: %s",
				 (long long)rb->buildid, db_errmsg(db));
		else
			job->pending++;
	}
	/* the build's interested users (docs/USERS.md; slice "alerts"): with
	 * blamelist = true the users of its changes' authors, and the
	 * configured extra_recipients; each is mailed at its user object's
	 * 'email', else its first 'email' identity */
	if (ec->blamelist || ec->nextra_recipients) {
		int rc = db_build_interested_users_async(
			db, rb->buildid, (const char *const *)ec->extra_recipients,
			ec->nextra_recipients, email_on_users, job);
		if (rc < 0)
			log_warn("build=%lld: reporter '%s': cannot read the interested users: %s",
				 (long long)rb->buildid, r->cfg->name, db_errmsg(db));
		else
			job->pending++;
	}
	email_job_answered(job, 0);
}

/* An alert (alerts.c; slice "alerts"): one text/plain mail to the
 * reporter's 'to' (unless a->rcpt_only), a->rcpt and, for a regression with
 * blamelist = true, the build's authors. */
static void email_alert(struct reporter *r, const struct report_alert *a)
{
	struct email *e = r->priv;
	const struct config_reporter_email *ec = &r->cfg->email;
	struct email_msg *msg = xcalloc(1, sizeof(*msg));
	msg->buildid = a->id;
	for (size_t i = 0; i < ec->nto && !a->rcpt_only; i++)
		email_add_rcpt(msg, ec->to[i]);
	for (size_t i = 0; i < a->nrcpt; i++)
		email_add_rcpt(msg, a->rcpt[i]);
	for (size_t i = 0; ec->blamelist && !a->rcpt_only && i < a->nblamelist; i++) {
		char addr[EMAIL_MAX_ADDRESS + 1];
		if (email_author_address(a->blamelist[i], addr, sizeof(addr)))
			email_add_rcpt(msg, addr);
	}
	if (!msg->nrcpt) {
		log_info("%s: reporter '%s': nobody to mail", a->subject, r->cfg->name);
		email_msg_free(msg);
		return;
	}
	struct buf out, text, masked;
	buf_init(&out, EMAIL_MAX_MESSAGE);
	buf_init(&text, EMAIL_MAX_MESSAGE / 2);
	buf_init(&masked, EMAIL_MAX_MESSAGE / 2 + 4096);
	char date[64];
	time_t now = email_date(date, sizeof(date));
	const char *dom = strchr(ec->from, '@');
	char subject[1024];
	snprintf(subject, sizeof(subject), "%s %s", ec->subject, a->subject);
	int rc = buf_adds(&text, a->text);
	if (rc >= 0)
		email_mask(r->m, &text, &masked);
	rc = rc < 0 ? rc : buf_addf(&out, "Date: %s\r\nFrom: %s\r\nTo: ", date, ec->from);
	for (size_t i = 0; i < msg->nrcpt && rc >= 0; i++)
		rc = buf_addf(&out, "%s%s", i ? ",\r\n " : "", msg->rcpt[i]);
	rc = rc < 0 ? rc : buf_adds(&out, "\r\nSubject: ");
	rc = rc < 0 ? rc : email_header_value(&out, subject);
	rc = rc < 0 ? rc
		    : buf_addf(&out,
			       "\r\nMessage-ID: <kiln.alert.%lld.%lld%s>\r\nX-Kiln-Event: %s\r\n"
			       "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
			       "Content-Transfer-Encoding: base64\r\n\r\n",
			       (long long)a->id, (long long)now, dom ? dom : "@kiln",
			       a->event == CONFIG_REPORT_EVENT_REGRESSION ? "regression"
									  : "worker_missing");
	buf_reset(&text);
	rc = rc < 0 ? rc : email_crlf(&text, masked.ptr, masked.len);
	rc = rc < 0 ? rc : email_base64(&out, (const unsigned char *)text.ptr, text.len, 76);
	rc = rc < 0 ? rc : buf_adds(&out, "\r\n");
	if (rc < 0) {
		log_warn("%s: reporter '%s': message over %u bytes: not sent", a->subject,
			 r->cfg->name, EMAIL_MAX_MESSAGE);
		email_msg_free(msg);
	} else
		(void)curl_uv_submit(e->q, out.ptr, out.len, msg); /* failures logged there */
	buf_release(&out);
	buf_release(&text);
	buf_release(&masked);
}

static int email_start(struct reporter *r, struct curl_uv *cu)
{
	const struct config_reporter *rc = r->cfg;
	struct email *e = xcalloc(1, sizeof(*e));
	e->r = r;
	const char *host = rc->email.smtp_host;
	bool v6 = strchr(host, ':') != NULL;
	e->url = xasprintf("%s://%s%s%s:%d",
			   rc->email.tls == CONFIG_SMTP_TLS_SMTPS ? "smtps" : "smtp", v6 ? "[" : "",
			   host, v6 ? "]" : "", rc->email.smtp_port);
	e->q = reporters_queue_new(r, cu, &email_ops, e);
	r->priv = e;
	return 0;
}

static void email_stop(struct reporter *r)
{
	struct email *e = r->priv;
	if (!e)
		return;
	/* the reads in flight answer later: only freed then */
	for (struct email_job *job = e->jobs; job; job = job->next)
		job->e = NULL;
	free(e->url);
	free(e);
	r->priv = NULL;
}

const struct reporter_kind reporter_kind_email = {
	.kind = CONFIG_REPORTER_EMAIL,
	.name = "email",
	.start = email_start,
	.build_finished = email_build_finished,
	.stop = email_stop,
	.alert = email_alert,
};
