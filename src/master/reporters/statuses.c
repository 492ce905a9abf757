/*
 * The commit-status engine (statuses.h) every status kind shares: the
 * pure helpers (repository URLs, states, descriptions, the reply rules)
 * and the persistent queue's sender.
 *
 * Queueing: the listener (reporters.c) hands us a build as it starts and
 * as it finishes, once its rows are read; the kind composes its request
 * (path, JSON body, the state and the key "repo|sha|context"), and
 * db_outbound_add_async() writes it in that turn's batch unless the key's
 * last state is the same (answered on the loop, on either backend).
 * Credentials are never stored: the kind adds them when the row is sent.
 *
 * Sending: one row at a time per reporter, oldest first, through the
 * reporter's curl-uv queue (one attempt each: the retries are ours, kept
 * in the row, so they survive a restart).  The reply's status line and
 * rate-limit headers are read by a header callback; statuses_judge()
 * decides.  A timer wakes the reporter for a backoff or a rate limit's
 * reset; on start every reporter looks at its rows at once.  The oldest
 * row is read on the loop (db_outbound_next_async), one read at a time.
 */
#define LOG_SUBSYS "report"
#include "master/reporters/statuses.h"
#include "master/curl-uv.h"
#include "master/master.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "db/db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <uv.h>

/* ---- pure helpers ------------------------------------------------------------ */

void statuses_req_init(struct statuses_req *q)
{
	q->state = NULL;
	buf_init(&q->path, STATUSES_MAX_PATH);
	buf_init(&q->body, STATUSES_MAX_BODY);
	buf_init(&q->key, STATUSES_MAX_PATH);
}

void statuses_req_release(struct statuses_req *q)
{
	buf_release(&q->path);
	buf_release(&q->body);
	buf_release(&q->key);
}

int statuses_repo_path(const char *url, char *out, size_t n)
{
	if (!url || !*url || n == 0)
		return -EINVAL;
	const char *p;
	const char *sep = strstr(url, "://");
	if (sep) {
		/* scheme://[user@]host[:port]/path */
		const char *host = sep + 3;
		p = strchr(host, '/');
		if (!p || p == host)
			return -EINVAL;
	} else {
		/* scp-like: [user@]host:path */
		const char *colon = strchr(url, ':');
		const char *slash = strchr(url, '/');
		if (!colon || colon == url || (slash && slash < colon))
			return -EINVAL;
		p = colon + 1;
	}
	while (*p == '/')
		p++;
	size_t len = strcspn(p, "?#");
	while (len && p[len - 1] == '/')
		len--;
	if (len >= 4 && !strncmp(p + len - 4, ".git", 4))
		len -= 4;
	if (len == 0 || len >= n)
		return -EINVAL;
	/* segments of unreserved characters, none empty, no "." or ".." */
	size_t seg = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || p[i] == '/') {
			if (seg == 0 || (seg == 1 && p[i - 1] == '.') ||
			    (seg == 2 && p[i - 1] == '.' && p[i - 2] == '.'))
				return -EINVAL;
			seg = 0;
		} else if (!reporters_unreserved(p[i]))
			return -EINVAL;
		else
			seg++;
	}
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

int statuses_owner_repo(const struct config_reporter *cfg, const char *repository, char *owner,
			size_t on, char *repo, size_t rn)
{
	const struct config_reporter_status *st = &cfg->status;
	if (st->owner && st->repo) {
		if ((size_t)snprintf(owner, on, "%s", st->owner) >= on ||
		    (size_t)snprintf(repo, rn, "%s", st->repo) >= rn)
			return -EINVAL;
		return 0;
	}
	char path[1024];
	if (statuses_repo_path(repository, path, sizeof(path)) < 0)
		return -EINVAL;
	char *last = strrchr(path, '/');
	if (!last)
		return -EINVAL;
	*last = '\0';
	char *prev = strrchr(path, '/');
	const char *o = prev ? prev + 1 : path;
	if ((size_t)snprintf(owner, on, "%s", o) >= on ||
	    (size_t)snprintf(repo, rn, "%s", last + 1) >= rn)
		return -EINVAL;
	return 0;
}

const char *statuses_state(enum config_reporter_kind kind, bool started, int results)
{
	switch (kind) {
	case CONFIG_REPORTER_GITHUB:
	case CONFIG_REPORTER_GITEA:
		if (started)
			return "pending";
		switch (results) {
		case RESULTS_SUCCESS:
		case RESULTS_SKIPPED:
			return "success";
		case RESULTS_WARNINGS:
			return kind == CONFIG_REPORTER_GITEA ? "warning" : "success";
		case RESULTS_FAILURE:
			return "failure";
		default:
			return "error";
		}
	case CONFIG_REPORTER_GITLAB:
		if (started)
			return "running";
		switch (results) {
		case RESULTS_SUCCESS:
		case RESULTS_WARNINGS:
		case RESULTS_SKIPPED:
			return "success";
		case RESULTS_CANCELLED:
			return "canceled";
		default:
			return "failed";
		}
	case CONFIG_REPORTER_BITBUCKET:
		if (started)
			return "INPROGRESS";
		switch (results) {
		case RESULTS_SUCCESS:
		case RESULTS_WARNINGS:
		case RESULTS_SKIPPED:
			return "SUCCESSFUL";
		case RESULTS_CANCELLED:
			return "STOPPED";
		default:
			return "FAILED";
		}
	case CONFIG_REPORTER_GERRIT:
		if (started)
			return NULL;
		switch (results) {
		case RESULTS_SUCCESS:
		case RESULTS_WARNINGS:
			return "+1";
		case RESULTS_SKIPPED:
			return "0";
		default:
			return "-1";
		}
	default:
		return NULL;
	}
}

bool statuses_sha_ok(const char *sha)
{
	size_t n = sha ? strlen(sha) : 0;
	if (n < 4 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((sha[i] >= '0' && sha[i] <= '9') || (sha[i] >= 'a' && sha[i] <= 'f') ||
		      (sha[i] >= 'A' && sha[i] <= 'F')))
			return false;
	return true;
}

int statuses_context(const struct config_reporter *cfg, const struct report_build *rb,
		     struct buf *out)
{
	const char *c = cfg->status.context ? cfg->status.context : "kiln/{builder}";
	for (const char *p = c; *p;) {
		if (!strncmp(p, "{builder}", 9)) {
			(void)!buf_adds(out, rb->builder);
			p += 9;
		} else
			(void)!buf_addch(out, *p++);
	}
	return buf_error(out);
}

void statuses_description(const struct statuses_event *ev, char *out, size_t n)
{
	const struct report_build *rb = ev->rb;
	size_t max = n - 1 < STATUSES_MAX_DESCRIPTION ? n - 1 : STATUSES_MAX_DESCRIPTION;
	char tmp[512];
	if (ev->started)
		snprintf(tmp, sizeof(tmp), "Build started.");
	else if (rb->state_string && *rb->state_string)
		snprintf(tmp, sizeof(tmp), "Build done: %s (%s)",
			 reporters_results_name(rb->results), rb->state_string);
	else
		snprintf(tmp, sizeof(tmp), "Build done: %s", reporters_results_name(rb->results));
	size_t len = strlen(tmp);
	if (len > max) {
		len = max;
		while (len && ((unsigned char)tmp[len] & 0xc0) == 0x80)
			len--; /* not inside a UTF-8 sequence */
	}
	memcpy(out, tmp, len);
	out[len] = '\0';
}

int statuses_segment(struct buf *out, const char *s)
{
	(void)reporters_percent_encode(out, s, false);
	return buf_error(out);
}

void statuses_basic_auth(CURL *h, const char *user, const char *password)
{
	curl_uv_api.easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	curl_uv_api.easy_setopt(h, CURLOPT_USERNAME, user);
	curl_uv_api.easy_setopt(h, CURLOPT_PASSWORD, password);
}

int statuses_body(struct statuses_req *q, json_t *o)
{
	if (!o)
		return -E2BIG;
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!s)
		return -E2BIG; /* not UTF-8 */
	int r = buf_adds(&q->body, s);
	free(s);
	return r;
}

int statuses_finish(struct statuses_req *q, int r, const char **why, const char *too_long)
{
	if (r < 0 || buf_error(&q->path) || buf_error(&q->key)) {
		*why = too_long;
		return -E2BIG;
	}
	return 1;
}

int statuses_repos_request(const char *prefix, const struct config_reporter *cfg,
			   const struct statuses_event *ev, struct statuses_req *q,
			   const char **why)
{
	char owner[256], repo[256], desc[STATUSES_MAX_DESCRIPTION + 1];
	if (!statuses_sha_ok(ev->sha)) {
		*why = "the build has no revision";
		return 0;
	}
	if (statuses_owner_repo(cfg, ev->repository, owner, sizeof(owner), repo, sizeof(repo)) <
	    0) {
		*why = "no owner/repo: the repository URL is not https://HOST/OWNER/REPO or "
		       "git@HOST:OWNER/REPO (or set owner and repo)";
		return ev->repository ? -EINVAL : 0;
	}
	q->state = statuses_state(cfg->kind, ev->started, ev->rb->results);
	struct buf ctx;
	buf_init(&ctx, 1024);
	(void)statuses_context(cfg, ev->rb, &ctx);
	statuses_description(ev, desc, sizeof(desc));
	(void)!buf_addf(&q->path, "%s/repos/%s/%s/statuses/%s", prefix, owner, repo, ev->sha);
	(void)!buf_addf(&q->key, "%s/%s|%s|%s", owner, repo, ev->sha, ctx.ptr);
	int r = statuses_body(q, json_pack("{s:s, s:s, s:s, s:s}", "state", q->state, "target_url",
					   ev->rb->url, "description", desc, "context", ctx.ptr));
	buf_release(&ctx);
	return statuses_finish(q, r, why, "the status is too long");
}

#define STATUSES_HOUR_MS (3600 * 1000LL)

enum statuses_verdict statuses_judge(const struct statuses_reply *rp, int64_t now_ms, int attempts,
				     uint64_t backoff_ms, int64_t *ret_at)
{
	long c = rp->code;
	*ret_at = 0;
	int64_t reset_at = rp->reset > 0 ? rp->reset * 1000 : 0;
	if (c >= 200 && c < 300) {
		if (rp->remaining == 0 && reset_at > now_ms)
			*ret_at = reset_at > now_ms + STATUSES_HOUR_MS ? now_ms + STATUSES_HOUR_MS
								       : reset_at;
		return STATUSES_DONE;
	}
	bool limited = c == 429 || (c == 403 && (rp->remaining == 0 || rp->retry_after >= 0));
	if (limited) {
		int64_t at;
		if (rp->retry_after >= 0)
			at = now_ms + rp->retry_after * 1000;
		else if (reset_at > now_ms)
			at = reset_at;
		else
			at = now_ms + (int64_t)(backoff_ms ? backoff_ms : 1000);
		if (at > now_ms + STATUSES_HOUR_MS)
			at = now_ms + STATUSES_HOUR_MS;
		*ret_at = at;
		return STATUSES_LIMITED;
	}
	if (c >= 400 && c < 500 && c != 408)
		return STATUSES_REFUSED;
	unsigned shift = attempts > 6 ? 6 : (unsigned)(attempts < 0 ? 0 : attempts);
	int64_t delay = (int64_t)(backoff_ms << shift);
	if (delay > STATUSES_HOUR_MS)
		delay = STATUSES_HOUR_MS;
	*ret_at = now_ms + delay;
	return STATUSES_RETRY;
}

/* ---- the engine -------------------------------------------------------------- */

struct statuses_rep {
	struct reporter *r; /* borrowed; dangling once stopped */
	const struct statuses_kind *sk;
	struct curl_uv_queue *q;
	uv_timer_t timer;
	bool busy;    /* a row is being sent */
	bool reading; /* the oldest row is being read (db_outbound_next_async) */
	bool again;   /* a status was queued meanwhile: read again if none was found */
	bool stopped; /* statuses_stop ran: the timer is closing */
	bool closed;  /* the timer is closed */
	int reads;    /* database answers still to come that hold sr */
	int64_t hold; /* epoch ms: nothing sent before (a rate limit's reset) */
	uint64_t sent, refused, retried;
};

/* Frees sr once it is stopped, its timer closed and no answer is to come
 * (a reload or the master's stop may come while reads are in flight). */
static void statuses_rep_release(struct statuses_rep *sr)
{
	if (sr->stopped && sr->closed && sr->reads == 0)
		free(sr);
}

/* One row being sent. */
struct statuses_msg {
	struct statuses_rep *sr;
	struct db_outbound row;
	char *url;
	struct statuses_reply reply;
};

static int64_t statuses_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const struct statuses_kind *statuses_kind_of(enum config_reporter_kind k)
{
	switch (k) {
	case CONFIG_REPORTER_GITHUB:
		return &statuses_github;
	case CONFIG_REPORTER_GITLAB:
		return &statuses_gitlab;
	case CONFIG_REPORTER_GITEA:
		return &statuses_gitea;
	case CONFIG_REPORTER_BITBUCKET:
		return &statuses_bitbucket;
	case CONFIG_REPORTER_GERRIT:
		return &statuses_gerrit;
	default:
		return NULL;
	}
}

static void statuses_pump(struct statuses_rep *sr);

static void statuses_on_timer(uv_timer_t *t)
{
	statuses_pump(t->data);
}

/* "Retry-After: 2", "X-RateLimit-Reset: 1700000000" ... (one header line). */
static long long statuses_header_num(const char *line, size_t n, const char *name)
{
	size_t nl = strlen(name);
	if (n <= nl || strncasecmp(line, name, nl) || line[nl] != ':')
		return -2;
	char v[32];
	size_t i = nl + 1, k = 0;
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	while (i < n && k < sizeof(v) - 1 && line[i] >= '0' && line[i] <= '9')
		v[k++] = line[i++];
	v[k] = '\0';
	if (!k)
		return -1; /* present, not a number (an HTTP date): as if absent */
	return strtoll(v, NULL, 10);
}

static size_t statuses_on_header(char *p, size_t size, size_t n, void *ud)
{
	struct statuses_msg *msg = ud;
	size_t len = size * n;
	struct statuses_reply *rp = &msg->reply;
	if (len > 5 && !strncmp(p, "HTTP/", 5)) {
		/* a status line: a new reply (after a 100 Continue, say) */
		const char *sp = memchr(p, ' ', len);
		rp->code = sp ? strtol(sp + 1, NULL, 10) : 0;
		rp->retry_after = rp->remaining = rp->reset = -1;
		return len;
	}
	long long v;
	if ((v = statuses_header_num(p, len, "Retry-After")) != -2)
		rp->retry_after = v;
	else if ((v = statuses_header_num(p, len, "X-RateLimit-Remaining")) != -2 ||
		 (v = statuses_header_num(p, len, "RateLimit-Remaining")) != -2)
		rp->remaining = v;
	else if ((v = statuses_header_num(p, len, "X-RateLimit-Reset")) != -2 ||
		 (v = statuses_header_num(p, len, "RateLimit-Reset")) != -2)
		rp->reset = v;
	return len;
}

static int statuses_setup(void *ud, void *priv, CURL *h, struct curl_slist **ret_list)
{
	struct statuses_rep *sr = ud;
	struct statuses_msg *msg = priv;
	const struct curl_uv_api *c = &curl_uv_api;
	struct curl_slist *l = reporters_curl_headers("application/json");
	l = l ? sr->sk->auth(sr->r->cfg, h, l) : NULL;
	*ret_list = l;
	if (!l)
		return -ENOMEM;
	reporters_curl_setup(h, msg->url, l, (long long)strlen(msg->row.body), NULL);
	c->easy_setopt(h, CURLOPT_HEADERFUNCTION, statuses_on_header);
	c->easy_setopt(h, CURLOPT_HEADERDATA, msg);
	c->easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	return 0;
}

static void statuses_done(void *ud, void *priv, enum curl_uv_outcome outcome, const char *err)
{
	struct statuses_rep *sr = ud;
	struct statuses_msg *msg = priv;
	struct reporter *r = sr->r;
	struct db *db = r->m->db;
	sr->busy = false;
	if (outcome == CURL_UV_DROPPED || r->m->stopping)
		return; /* the queue is going away: the row stays for the next start */
	struct statuses_reply rp = msg->reply;
	if (outcome == CURL_UV_SENT && !(rp.code >= 200 && rp.code < 300))
		rp.code = 200; /* curl saw a 2xx whose status line we missed */
	int64_t now = statuses_now_ms(), at = 0;
	uint64_t backoff = (uint64_t)(r->cfg->backoff * 1000);
	enum statuses_verdict v = statuses_judge(&rp, now, msg->row.attempts, backoff, &at);
	const struct db_outbound *row = &msg->row;
	int dr = 0;
	switch (v) {
	case STATUSES_DONE:
		sr->sent++;
		log_info("reporter '%s': status %s sent for %s (reply %ld)", r->cfg->name,
			 row->state, row->skey, rp.code);
		dr = db_outbound_delete(db, row->id);
		if (at > sr->hold) {
			sr->hold = at;
			log_warn("reporter '%s': rate limit reached: nothing sent for %lld s",
				 r->cfg->name, (long long)((at - now + 999) / 1000));
		}
		break;
	case STATUSES_REFUSED:
		sr->refused++;
		log_error("reporter '%s': status %s for %s refused (reply %ld): dropped",
			  r->cfg->name, row->state, row->skey, rp.code);
		dr = db_outbound_delete(db, row->id);
		if (dr >= 0)
			dr = db_outbound_forget(db, r->cfg->name, row->skey, row->state);
		break;
	case STATUSES_LIMITED:
		sr->retried++;
		sr->hold = at;
		log_warn("reporter '%s': rate limited (reply %ld): status %s for %s waits %lld ms",
			 r->cfg->name, rp.code, row->state, row->skey, (long long)(at - now));
		dr = db_outbound_retry(db, row->id, at);
		break;
	case STATUSES_RETRY: {
		char why[128];
		if (rp.code)
			snprintf(why, sizeof(why), "reply %ld", rp.code);
		else
			snprintf(why, sizeof(why), "%s", err ? err : "no reply");
		sr->retried++;
		log_warn("reporter '%s': status %s for %s: attempt %d failed (%s): retrying in "
			 "%lld ms",
			 r->cfg->name, row->state, row->skey, row->attempts + 1, why,
			 (long long)(at - now));
		dr = db_outbound_retry(db, row->id, at);
		break;
	}
	}
	if (dr < 0)
		log_warn("reporter '%s': outbound queue: %s", r->cfg->name, db_errmsg(db));
	statuses_pump(sr);
}

static void statuses_msg_free(void *priv)
{
	struct statuses_msg *msg = priv;
	if (!msg)
		return;
	db_outbound_release(&msg->row);
	free(msg->url);
	free(msg);
}

static const struct curl_uv_queue_ops statuses_ops = {
	.setup = statuses_setup,
	.done = statuses_done,
	.free = statuses_msg_free,
};

/* The reporter's oldest row, read: sent when it is due, else the timer
 * armed for it. */
static void statuses_on_next(void *arg, int rc, struct db_outbound *row, const char *err)
{
	struct statuses_rep *sr = arg;
	sr->reads--;
	sr->reading = false;
	if (sr->stopped || rc == -ECANCELED) {
		statuses_rep_release(sr);
		return;
	}
	struct reporter *r = sr->r;
	if (sr->busy || r->m->stopping)
		return;
	if (rc < 0) {
		log_warn("reporter '%s': cannot read the outbound queue: %s", r->cfg->name,
			 err ? err : "failed");
		uv_timer_start(&sr->timer, statuses_on_timer, 5000, 0);
		return;
	}
	if (rc == 0) {
		if (sr->again) /* a status queued after the read was sent */
			statuses_pump(sr);
		return;
	}
	int64_t now = statuses_now_ms();
	int64_t at = row->next_at > sr->hold ? row->next_at : sr->hold;
	if (at > now) {
		/* a status queued meanwhile is newer: it waits behind this one */
		uv_timer_start(&sr->timer, statuses_on_timer, (uint64_t)(at - now), 0);
		return;
	}
	struct statuses_msg *msg = xcalloc(1, sizeof(*msg));
	msg->sr = sr;
	msg->row = *row;
	*row = (struct db_outbound){0}; /* taken */
	msg->url = xasprintf("%s%s", r->cfg->status.base_url, msg->row.path);
	msg->reply = (struct statuses_reply){.retry_after = -1, .remaining = -1, .reset = -1};
	sr->busy = true;
	if (curl_uv_submit(sr->q, msg->row.body, strlen(msg->row.body), msg) < 0) {
		/* over the queue's byte cap: done(FAILED) ran and freed msg */
		sr->busy = false;
	}
}

/* Reads the oldest row (issue 14: on the loop, on either backend); one
 * read at a time, a call meanwhile reading again after it if need be. */
static void statuses_pump(struct statuses_rep *sr)
{
	struct reporter *r = sr->r;
	if (sr->busy || sr->stopped || r->m->stopping)
		return;
	if (sr->reading) {
		sr->again = true;
		return;
	}
	sr->reading = true;
	sr->again = false;
	sr->reads++;
	if (db_outbound_next_async(r->m->db, r->cfg->name, statuses_on_next, sr) < 0) {
		sr->reading = false;
		sr->reads--;
		log_warn("reporter '%s': cannot read the outbound queue: %s", r->cfg->name,
			 db_errmsg(r->m->db));
		uv_timer_start(&sr->timer, statuses_on_timer, 5000, 0);
	}
}

/* A count of the reporter's rows, logged when it comes ("waiting from
 * before" at a start, "kept for the next start" at a reload's stop); holds
 * nothing of the reporter. */
struct statuses_count {
	char *name; /* owned */
	bool kept;
};

static void statuses_on_count(void *arg, int r, int64_t n, const char *err)
{
	struct statuses_count *c = arg;
	(void)err;
	if (r == 0 && n > 0)
		log_info("reporter '%s': %lld status%s %s", c->name, (long long)n,
			 n == 1 ? "" : "es",
			 c->kept ? "kept for the next start" : "waiting from before");
	free(c->name);
	free(c);
}

static void statuses_count_async(struct reporter *r, bool kept)
{
	struct statuses_count *c = xcalloc(1, sizeof(*c));
	c->name = xstrdup(r->cfg->name);
	c->kept = kept;
	if (db_outbound_count_async(r->m->db, r->cfg->name, statuses_on_count, c) < 0) {
		free(c->name);
		free(c);
	}
}

int statuses_start(struct reporter *r, struct curl_uv *cu)
{
	const struct config_reporter *rc = r->cfg;
	struct statuses_rep *sr = xcalloc(1, sizeof(*sr));
	sr->r = r;
	sr->sk = statuses_kind_of(rc->kind);
	if (!sr->sk) {
		free(sr);
		return -EINVAL;
	}
	char name[300];
	snprintf(name, sizeof(name), "reporter '%s'", rc->name);
	/* one attempt per submit: the retries are the row's */
	struct curl_uv_queue_limits lim = {
		.max_jobs = 4,
		.max_bytes = 4 * STATUSES_MAX_BODY,
		.timeout_ms = (uint64_t)(rc->timeout * 1000),
		.max_attempts = 1,
		.backoff_ms = 0,
	};
	sr->q = curl_uv_queue_new(cu, name, &lim, &statuses_ops, sr);
	uv_timer_init(r->m->loop, &sr->timer);
	sr->timer.data = sr;
	r->priv = sr;
	statuses_count_async(r, false);
	statuses_pump(sr);
	return 0;
}

/* A property's value as text (strings and integers), or NULL. */
static const char *statuses_prop(json_t *props, const char *name, char *tmp, size_t n)
{
	json_t *v = json_array_get(json_object_get(props, name), 0);
	if (json_is_string(v) && *json_string_value(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(tmp, n, "%lld", (long long)json_integer_value(v));
		return tmp;
	}
	return NULL;
}

/* A status being queued (db_outbound_add_async): what its answer logs. */
struct statuses_add {
	struct statuses_rep *sr; /* held: sr->reads */
	int64_t buildid;
	char *name, *state, *key; /* owned */
	size_t max;
};

static void statuses_add_free(struct statuses_add *a)
{
	free(a->name);
	free(a->state);
	free(a->key);
	free(a);
}

static void statuses_on_added(void *arg, int ar, int64_t dropped, const char *err)
{
	struct statuses_add *a = arg;
	struct statuses_rep *sr = a->sr;
	sr->reads--;
	if (ar == -ECANCELED) {
		/* the database closed first */
	} else if (ar < 0) {
		log_warn("build=%lld: reporter '%s': cannot queue the status: %s",
			 (long long)a->buildid, a->name, err ? err : "failed");
	} else {
		if (ar == 0)
			log_info("build=%lld: reporter '%s': status %s for %s already sent",
				 (long long)a->buildid, a->name, a->state, a->key);
		else
			log_info("build=%lld: reporter '%s': status %s for %s queued",
				 (long long)a->buildid, a->name, a->state, a->key);
		if (dropped > 0)
			log_warn("reporter '%s': outbound queue full (%zu statuses): dropped the "
				 "%lld oldest",
				 a->name, a->max, (long long)dropped);
		if (ar > 0 && !sr->stopped)
			statuses_pump(sr);
	}
	statuses_add_free(a);
	statuses_rep_release(sr);
}

static void statuses_event(struct reporter *r, const struct report_build *rb, bool started)
{
	struct statuses_rep *sr = r->priv;
	struct master *m = r->m;
	/* the build's row, its buildset and their properties as the
	 * gathering read them (reporters.c) */
	json_t *props = json_object_get(rb->row, "properties");
	static const struct db_buildset_info none;
	const struct db_buildset_info bi = rb->buildset ? *rb->buildset : none;
	bool have_bi = rb->buildset != NULL;
	json_t *bsprops = rb->bsprops;
	char t1[32], t2[32];
	/* at a build's start its properties are not written yet: the sourcestamp's */
	struct report_build rbs = *rb;
	if (!rbs.branch && have_bi && bi.branch && *bi.branch)
		rbs.branch = bi.branch;
	struct statuses_event ev = {.rb = &rbs, .started = started};
	ev.sha = rb->revision;
	if (!ev.sha && have_bi && bi.revision && *bi.revision)
		ev.sha = bi.revision;
	ev.repository = statuses_prop(props, "repository", t1, sizeof(t1));
	if (!ev.repository && have_bi && bi.repository && *bi.repository)
		ev.repository = bi.repository;
	ev.change = statuses_prop(props, "event.change.number", t1, sizeof(t1))
			    ?: statuses_prop(bsprops, "event.change.number", t1, sizeof(t1));
	ev.patchset = statuses_prop(props, "event.patchSet.revision", t2, sizeof(t2))
			      ?: statuses_prop(bsprops, "event.patchSet.revision", t2, sizeof(t2));

	struct statuses_req q;
	statuses_req_init(&q);
	const char *why = NULL;
	int rc = sr->sk->request(r->cfg, &ev, &q, &why);
	if (rc < 0)
		log_warn("build=%lld: reporter '%s': no status: %s", (long long)rb->buildid,
			 r->cfg->name, why ? why : "cannot compose it");
	else if (rc == 0)
		log_debug("build=%lld: reporter '%s': no status: %s", (long long)rb->buildid,
			  r->cfg->name, why ? why : "nothing to send");
	else {
		struct statuses_add *a = xcalloc(1, sizeof(*a));
		a->sr = sr;
		a->buildid = rb->buildid;
		a->name = xstrdup(r->cfg->name);
		a->state = xstrdup(q.state);
		a->key = xstrdup(q.key.ptr);
		a->max = r->cfg->max_messages;
		sr->reads++;
		if (db_outbound_add_async(m->db, r->cfg->name, q.key.ptr, q.state, q.path.ptr,
					  q.body.ptr, (int64_t)time(NULL), r->cfg->max_messages,
					  statuses_on_added, a) < 0) {
			sr->reads--;
			log_warn("build=%lld: reporter '%s': cannot queue the status: %s",
				 (long long)rb->buildid, r->cfg->name, db_errmsg(m->db));
			statuses_add_free(a);
		}
	}
	statuses_req_release(&q);
}

void statuses_build_started(struct reporter *r, const struct report_build *rb)
{
	statuses_event(r, rb, true);
}

void statuses_build_finished(struct reporter *r, const struct report_build *rb)
{
	statuses_event(r, rb, false);
}

static void statuses_on_close(uv_handle_t *h)
{
	struct statuses_rep *sr = h->data;
	sr->closed = true;
	statuses_rep_release(sr);
}

void statuses_stop(struct reporter *r)
{
	struct statuses_rep *sr = r->priv;
	if (!sr)
		return;
	/* the master's stop counts at once, before the database closes (on
	 * PostgreSQL the master no longer serves: the call waits for the
	 * server); a reload's stop on the loop */
	int64_t n = 0;
	if (!r->m->stopping)
		statuses_count_async(r, true);
	else if (db_outbound_count(r->m->db, r->cfg->name, &n) == 0 && n > 0)
		log_info("reporter '%s': %lld status%s kept for the next start", r->cfg->name,
			 (long long)n, n == 1 ? "" : "es");
	sr->stopped = true;
	uv_close((uv_handle_t *)&sr->timer, statuses_on_close);
	r->priv = NULL;
}
