/*
 * The reporters' table of kinds, the one filter model, and the listener on
 * the event bus that turns "builds/N/finished" into a struct report_build
 * (reporters.h).
 */
#define LOG_SUBSYS "report"
#include "master/reporters/reporters.h"
#include "master/curl-uv.h"
#include "master/events.h"
#include "master/master.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "db/db.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

extern const struct reporter_kind reporter_kind_email;
extern const struct reporter_kind reporter_kind_irc;
extern const struct reporter_kind reporter_kind_http, reporter_kind_slack, reporter_kind_mattermost,
	reporter_kind_matrix;

extern const struct reporter_kind reporter_kind_telegram, reporter_kind_zulip; /* "alerts" */
/* commit statuses (slice "statuses") */
extern const struct reporter_kind reporter_kind_github, reporter_kind_gitlab, reporter_kind_gitea,
	reporter_kind_bitbucket, reporter_kind_gerrit;

/* one line per appended kind (slices merge): not re-flowed */
/* clang-format off */
static const struct reporter_kind *const reporter_kinds[] = {
	&reporter_kind_email,    &reporter_kind_irc,        &reporter_kind_http,
	&reporter_kind_slack,    &reporter_kind_mattermost, &reporter_kind_matrix,
	&reporter_kind_telegram, &reporter_kind_zulip,      &reporter_kind_github,
	&reporter_kind_gitlab,   &reporter_kind_gitea,      &reporter_kind_bitbucket,
	&reporter_kind_gerrit,
};
/* clang-format on */

struct reporters {
	struct master *m;
	struct curl_uv *cu; /* owned */
	struct reporter *r; /* owned, one per cfg->reporter */
	size_t n;
	struct alerts *alerts;            /* owned (alerts.c) */
	struct reporters_gather *gathers; /* build events being read (their reads in flight) */
};

#define REPORTERS_MAX_BLAMELIST 64

const char *reporters_results_name(int results)
{
	static const char *const names[] = {"success",   "warnings", "failure",  "skipped",
					    "exception", "retry",    "cancelled"};
	if (results >= 0 && (size_t)results < ARRAY_SIZE(names))
		return names[results];
	return "unknown";
}

static bool reporters_glob_any(char *const *globs, size_t n, const char *s)
{
	if (n == 0)
		return true;
	if (!s)
		return false;
	for (size_t i = 0; i < n; i++)
		if (fnmatch(globs[i], s, 0) == 0)
			return true;
	return false;
}

bool reporters_filter_match(const struct config_report_filter *f, const struct report_build *rb)
{
	if (!reporters_glob_any(f->builders, f->nbuilders, rb->builder))
		return false;
	if (!reporters_glob_any(f->branches, f->nbranches, rb->branch))
		return false;
	if (f->ntags) {
		bool any = false;
		for (size_t i = 0; i < f->ntags && !any; i++)
			for (size_t k = 0; k < rb->ntags && !any; k++)
				any = !strcmp(f->tags[i], rb->tags[k]);
		if (!any)
			return false;
	}
	unsigned m = f->modes;
	int r = rb->results, p = rb->prev_results;
	if (m & CONFIG_REPORT_ALL)
		return true;
	if ((m & CONFIG_REPORT_FAILING) && r == RESULTS_FAILURE)
		return true;
	if ((m & CONFIG_REPORT_PASSING) && r == RESULTS_SUCCESS)
		return true;
	if ((m & CONFIG_REPORT_WARNINGS) && r == RESULTS_WARNINGS)
		return true;
	if ((m & CONFIG_REPORT_EXCEPTION) && r == RESULTS_EXCEPTION)
		return true;
	/* problem: a failure after a build that did not fail (or none before) */
	if ((m & CONFIG_REPORT_PROBLEM) && r == RESULTS_FAILURE && p != RESULTS_FAILURE)
		return true;
	/* change: the result differs from the previous build's */
	if ((m & CONFIG_REPORT_CHANGE) && p != RESULTS_NONE && r != p)
		return true;
	return false;
}

/* ---- gathering a build --------------------------------------------------- */

/* A query of the rows of res whose field is id (ids: its text). */
static struct db_query reporters_by_id(const char *field, int64_t id, char *ids, size_t n,
				       const char **vals, struct db_filter *f, int64_t limit)
{
	snprintf(ids, n, "%lld", (long long)id);
	vals[0] = ids;
	*f = (struct db_filter){.field = field, .op = DB_OP_EQ, .values = vals, .nvalues = 1};
	return (struct db_query){.filters = f, .nfilters = 1, .limit = limit};
}

/* The results of the builder's latest complete build before number (RETRY
 * builds skipped: they were run again) among items, RESULTS_NONE if none. */
static int reporters_prev_of(json_t *items)
{
	size_t i;
	json_t *b;
	json_array_foreach(items, i, b)
	{
		int r = (int)json_integer_value(json_object_get(b, "results"));
		if (r != RESULTS_RETRY)
			return r;
	}
	return RESULTS_NONE;
}

/* A property's value as a string, or NULL. */
static const char *reporters_prop(json_t *props, const char *name)
{
	json_t *v = json_array_get(json_object_get(props, name), 0);
	return json_is_string(v) && *json_string_value(v) ? json_string_value(v) : NULL;
}

static const char **reporters_strv_dup(const char *const *v, size_t n)
{
	if (!n)
		return NULL;
	const char **c = xcalloc(n, sizeof(*c));
	for (size_t i = 0; i < n; i++)
		c[i] = xstrdup(v[i] ? v[i] : "");
	return c;
}

static void reporters_strv_free(const char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free((char *)v[i]);
	free(v);
}

static const char *reporters_str_dup(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

struct report_build *reporters_build_dup(const struct report_build *rb)
{
	struct report_build *c = xmalloc(sizeof(*c));
	*c = *rb;
	c->builder = reporters_str_dup(rb->builder);
	c->tags = reporters_strv_dup(rb->tags, rb->ntags);
	c->branch = reporters_str_dup(rb->branch);
	c->revision = reporters_str_dup(rb->revision);
	c->state_string = reporters_str_dup(rb->state_string);
	c->url = reporters_str_dup(rb->url);
	c->blamelist = reporters_strv_dup(rb->blamelist, rb->nblamelist);
	c->row = NULL;
	c->buildset = NULL;
	c->bsprops = NULL;
	return c;
}

void reporters_build_free(struct report_build *rb)
{
	if (!rb)
		return;
	free((char *)rb->builder);
	reporters_strv_free((const char **)rb->tags, rb->ntags);
	free((char *)rb->branch);
	free((char *)rb->revision);
	free((char *)rb->state_string);
	free((char *)rb->url);
	reporters_strv_free((const char **)rb->blamelist, rb->nblamelist);
	free(rb);
}

/* ---- the failed step's log tail, read on the loop -------------------------- */

/* One reporters_log_tail_async: the build's steps, the failed one's first
 * log, its last lines. */
struct reporters_tail {
	struct db *db; /* borrowed: outlives the read (db_close answers it) */
	int max_lines;
	char *step; /* owned: the failed step's name */
	char type;  /* its log's type */
	struct buf out;
	reporters_tail_fn done;
	void *arg;
};

static void reporters_tail_end(struct reporters_tail *t, int r)
{
	t->done(t->arg, r, r > 0 ? t->out.ptr : NULL, r > 0 ? t->out.len : 0,
		r > 0 ? t->step : NULL);
	buf_release(&t->out);
	free(t->step);
	free(t);
}

static void reporters_tail_on_lines(void *arg, int r, const char *text, size_t len, int64_t count,
				    const char *err)
{
	struct reporters_tail *t = arg;
	(void)count;
	(void)err;
	if (r == -E2BIG)
		r = 0; /* whole lines up to the cap */
	if (r < 0) {
		reporters_tail_end(t, r);
		return;
	}
	/* 's' logs: each line starts with its stream character */
	const char *p = text, *end = text + len;
	while (p < end && r >= 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl + 1 : end;
		const char *s = t->type == 's' && e > p ? p + 1 : p;
		if (buf_room(&t->out) < (size_t)(e - s))
			break;
		r = buf_add(&t->out, s, (size_t)(e - s));
		p = e;
	}
	reporters_tail_end(t, r < 0 ? r : 1);
}

static void reporters_tail_on_log(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct reporters_tail *t = arg;
	(void)total;
	(void)err;
	json_t *log = json_array_get(items, 0); /* the first: stdio */
	if (r < 0 || !log) {
		json_decref(items);
		reporters_tail_end(t, r < 0 ? r : 0);
		return;
	}
	int64_t logid = json_integer_value(json_object_get(log, "logid"));
	int64_t num_lines = json_integer_value(json_object_get(log, "num_lines"));
	const char *type = json_string_value(json_object_get(log, "type"));
	t->type = type ? type[0] : 's';
	json_decref(items);
	int64_t first = num_lines > t->max_lines ? num_lines - t->max_lines : 0;
	r = db_log_read_async(t->db, logid, first, t->max_lines, t->out.max,
			      reporters_tail_on_lines, t);
	if (r < 0)
		reporters_tail_end(t, r);
}

static void reporters_tail_on_steps(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct reporters_tail *t = arg;
	(void)total;
	(void)err;
	json_t *failed = NULL, *s;
	size_t i;
	json_array_foreach(items, i, s)
	{
		json_t *res = json_object_get(s, "results");
		if (json_is_integer(res) && (json_integer_value(res) == RESULTS_FAILURE ||
					     json_integer_value(res) == RESULTS_EXCEPTION)) {
			failed = s;
			break;
		}
	}
	if (r < 0 || !failed || t->max_lines <= 0) {
		json_decref(items);
		reporters_tail_end(t, r < 0 ? r : 0);
		return;
	}
	t->step = xstrdup(json_string_value(json_object_get(failed, "name")) ?: "?");
	int64_t stepid = json_integer_value(json_object_get(failed, "stepid"));
	json_decref(items);
	char ids[24];
	const char *vals[1];
	struct db_filter f;
	struct db_query q = reporters_by_id("stepid", stepid, ids, sizeof(ids), vals, &f, 1);
	r = db_list_async(t->db, DB_LOGS, &q, NULL, false, reporters_tail_on_log, t);
	if (r < 0)
		reporters_tail_end(t, r);
}

int reporters_log_tail_async(struct master *m, int64_t buildid, int max_lines, size_t max_bytes,
			     reporters_tail_fn done, void *arg)
{
	struct reporters_tail *t = xcalloc(1, sizeof(*t));
	t->db = m->db;
	t->max_lines = max_lines;
	buf_init(&t->out, max_bytes);
	t->done = done;
	t->arg = arg;
	char ids[24];
	const char *vals[1];
	struct db_filter f;
	struct db_query q = reporters_by_id("buildid", buildid, ids, sizeof(ids), vals, &f, -1);
	int r = db_list_async(m->db, DB_STEPS, &q, NULL, false, reporters_tail_on_steps, t);
	if (r < 0) {
		buf_release(&t->out);
		free(t);
	}
	return r;
}

/* ---- a build event's gathering ------------------------------------------- */

/* One build event whose rows are being read (issue 14: on the loop, on
 * either backend): the builder's row, the build's full row, its request's,
 * the previous builds' results (finished builds), then its buildset's
 * inputs (blamelist, first sourcestamp, properties).  Delivered to the
 * reporters once the last answer is in, unless they were stopped
 * meanwhile (rs NULL: the reads' answers are only freed). */
struct reporters_gather {
	struct reporters_gather *next; /* rs->gathers */
	struct reporters *rs;          /* borrowed; NULL once reporters_stop ran */
	json_t *row;                   /* owned: the event's row */
	bool started;
	int pending;              /* reads not answered yet (plus one while sending) */
	json_t *brow, *full, *br; /* owned: builder, build, request rows, or NULL */
	int prev;
	struct db_build_inputs in;
	bool have_in;
};

static void reporters_deliver(struct reporters *rs, struct reporters_gather *g)
{
	struct master *m = rs->m;
	bool started = g->started;
	json_t *row = g->row;
	int results =
		started ? RESULTS_NONE : (int)json_integer_value(json_object_get(row, "results"));
	int64_t buildid = json_integer_value(json_object_get(row, "buildid"));
	int64_t builderid = json_integer_value(json_object_get(row, "builderid"));
	int64_t number = json_integer_value(json_object_get(row, "number"));
	const char *bname = json_string_value(json_object_get(g->brow, "name"));
	const struct config_builder *bc = bname ? config_find_builder(m->cfg, bname) : NULL;
	json_t *props = json_object_get(g->full, "properties");

	const char *authors[REPORTERS_MAX_BLAMELIST];
	size_t nauthors = 0;
	size_t i;
	json_t *a;
	json_array_foreach(g->have_in ? g->in.blamelist : NULL, i, a)
	{
		if (json_is_string(a) && nauthors < REPORTERS_MAX_BLAMELIST)
			authors[nauthors++] = json_string_value(a);
	}

	struct buf url;
	buf_init(&url, 4096);
	int ur = reporters_base_url(m, &url);
	if (ur >= 0)
		ur = buf_addf(&url, "/builders/%lld/builds/%lld", (long long)builderid,
			      (long long)number);

	const char *rev = reporters_prop(props, "got_revision");
	const struct db_buildset_info *bi = g->have_in ? &g->in.bs : NULL;
	struct report_build rb = {
		.buildid = buildid,
		.builderid = builderid,
		.number = number,
		.builder = bname ? bname : "?",
		.tags = bc ? (const char *const *)bc->tags : NULL,
		.ntags = bc ? bc->ntags : 0,
		.branch = reporters_prop(props, "branch"),
		.revision = rev ? rev : reporters_prop(props, "revision"),
		.results = results,
		.prev_results = started ? RESULTS_NONE : g->prev,
		.state_string = json_string_value(json_object_get(row, "state_string")) ?: "",
		.url = ur >= 0 ? url.ptr : "",
		.blamelist = authors,
		.nblamelist = nauthors,
		.started_at = (double)json_integer_value(json_object_get(row, "started_at")),
		.complete_at = (double)json_integer_value(json_object_get(row, "complete_at")),
		.row = g->full,
		.buildset = bi,
		.bsprops = g->have_in ? g->in.props : NULL,
	};
	/* a build that just started has no properties yet: its sourcestamp's
	 * branch and revision (the filter's branches need the branch) */
	if (started && bi && !rb.branch && bi->branch && *bi->branch)
		rb.branch = bi->branch;
	if (started && bi && !rb.revision && bi->revision && *bi->revision)
		rb.revision = bi->revision;
	for (size_t k = 0; k < rs->n; k++) {
		struct reporter *r = &rs->r[k];
		if (!(r->cfg->events & CONFIG_REPORT_EVENT_BUILDS))
			continue;
		if (started) {
			/* builders, tags and branches: the result is not known yet */
			struct config_report_filter f = r->cfg->filter;
			f.modes = CONFIG_REPORT_ALL;
			if (r->kind->build_started && reporters_filter_match(&f, &rb))
				r->kind->build_started(r, &rb);
			continue;
		}
		if (!reporters_filter_match(&r->cfg->filter, &rb))
			continue;
		r->reported++;
		r->kind->build_finished(r, &rb);
	}
	buf_release(&url);
}

static void reporters_gather_free(struct reporters_gather *g)
{
	if (g->rs) {
		struct reporters_gather **p = &g->rs->gathers;
		while (*p && *p != g)
			p = &(*p)->next;
		if (*p)
			*p = g->next;
	}
	if (g->have_in)
		db_build_inputs_release(&g->in);
	json_decref(g->brow);
	json_decref(g->full);
	json_decref(g->br);
	json_decref(g->row);
	free(g);
}

static void reporters_gather_on_inputs(void *arg, int r, struct db_build_inputs *in,
				       const char *err)
{
	struct reporters_gather *g = arg;
	if (r == 0) {
		g->in = *in;
		*in = (struct db_build_inputs){0}; /* taken */
		g->have_in = true;
	} else if (r != -ECANCELED && g->rs)
		log_warn("build=%lld: cannot read its buildset: %s",
			 (long long)json_integer_value(json_object_get(g->row, "buildid")),
			 err ? err : "failed");
	if (g->rs && r != -ECANCELED && !g->rs->m->stopping)
		reporters_deliver(g->rs, g);
	reporters_gather_free(g);
}

/* One of the first reads answered: the inputs next, once all are in. */
static void reporters_gather_answered(struct reporters_gather *g, int r)
{
	if (--g->pending > 0)
		return;
	struct reporters *rs = g->rs;
	/* -ECANCELED: the database is closing, nothing more is sent */
	if (!rs || rs->m->stopping || r == -ECANCELED) {
		reporters_gather_free(g);
		return;
	}
	int64_t bsid = json_integer_value(json_object_get(g->br, "buildsetid"));
	if (bsid && db_build_inputs_async(rs->m->db, bsid, reporters_gather_on_inputs, g) == 0)
		return;
	if (bsid)
		log_warn("build=%lld: cannot read its buildset: %s",
			 (long long)json_integer_value(json_object_get(g->row, "buildid")),
			 db_errmsg(rs->m->db));
	reporters_deliver(rs, g);
	reporters_gather_free(g);
}

static void reporters_gather_row(struct reporters_gather *g, json_t **slot, int r, json_t *items)
{
	if (r == 0)
		*slot = json_incref(json_array_get(items, 0));
	json_decref(items);
	reporters_gather_answered(g, r);
}

static void reporters_on_builder(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct reporters_gather *g = arg;
	(void)total;
	(void)err;
	reporters_gather_row(g, &g->brow, r, items);
}

static void reporters_on_full(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct reporters_gather *g = arg;
	(void)total;
	(void)err;
	reporters_gather_row(g, &g->full, r, items);
}

static void reporters_on_request(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct reporters_gather *g = arg;
	(void)total;
	(void)err;
	reporters_gather_row(g, &g->br, r, items);
}

static void reporters_on_prev(void *arg, int r, json_t *items, int64_t total, const char *err)
{
	struct reporters_gather *g = arg;
	(void)total;
	if (r == 0)
		g->prev = reporters_prev_of(items);
	else if (r != -ECANCELED && g->rs)
		log_warn("cannot read the previous build of builder %lld: %s",
			 (long long)json_integer_value(json_object_get(g->row, "builderid")),
			 err ? err : "failed");
	json_decref(items);
	reporters_gather_answered(g, r);
}

/* Sends one of the first reads; a read that cannot be sent is left out
 * (logged), as the synchronous gathering did with a row it could not read. */
static void reporters_gather_send(struct reporters_gather *g, enum db_resource res,
				  const struct db_query *q, db_list_fn fn)
{
	struct db *db = g->rs->m->db;
	if (db_list_async(db, res, q, NULL, false, fn, g) == 0)
		g->pending++;
	else
		log_warn("build=%lld: cannot read its rows: %s",
			 (long long)json_integer_value(json_object_get(g->row, "buildid")),
			 db_errmsg(db));
}

static void reporters_on_build(struct reporters *rs, json_t *row, bool started)
{
	struct master *m = rs->m;
	if (m->stopping)
		return; /* interrupted by our own shutdown: retried after the restart */
	int results =
		started ? RESULTS_NONE : (int)json_integer_value(json_object_get(row, "results"));
	if (results == RESULTS_RETRY)
		return; /* lost its worker or the master: it runs again */
	int64_t buildid = json_integer_value(json_object_get(row, "buildid"));
	int64_t builderid = json_integer_value(json_object_get(row, "builderid"));
	int64_t number = json_integer_value(json_object_get(row, "number"));
	int64_t brid = json_integer_value(json_object_get(row, "buildrequestid"));

	struct reporters_gather *g = xcalloc(1, sizeof(*g));
	g->rs = rs;
	g->row = json_incref(row);
	g->started = started;
	g->prev = RESULTS_NONE;
	g->pending = 1; /* none answers before all are sent */
	g->next = rs->gathers;
	rs->gathers = g;

	char ids[3][24];
	const char *vals[3][1];
	struct db_filter f[3];
	struct db_query q;
	q = reporters_by_id("builderid", builderid, ids[0], sizeof(ids[0]), vals[0], &f[0], 1);
	reporters_gather_send(g, DB_BUILDERS, &q, reporters_on_builder);
	/* the row the event carries has properties {}: read them */
	q = reporters_by_id("buildid", buildid, ids[1], sizeof(ids[1]), vals[1], &f[1], 1);
	reporters_gather_send(g, DB_BUILDS, &q, reporters_on_full);
	if (brid) {
		q = reporters_by_id("buildrequestid", brid, ids[2], sizeof(ids[2]), vals[2], &f[2],
				    1);
		reporters_gather_send(g, DB_BUILDREQUESTS, &q, reporters_on_request);
	}
	if (!started) {
		/* the builder's previous 20 complete builds (any master) */
		char bid[24], num[24];
		snprintf(bid, sizeof(bid), "%lld", (long long)builderid);
		snprintf(num, sizeof(num), "%lld", (long long)number);
		const char *vb[] = {bid}, *vn[] = {num}, *vc[] = {"true"};
		struct db_filter pf[] = {
			{.field = "builderid", .op = DB_OP_EQ, .values = vb, .nvalues = 1},
			{.field = "number", .op = DB_OP_LT, .values = vn, .nvalues = 1},
			{.field = "complete", .op = DB_OP_EQ, .values = vc, .nvalues = 1},
		};
		const char *order[] = {"-number"};
		struct db_query pq = {
			.filters = pf, .nfilters = 3, .order = order, .norder = 1, .limit = 20};
		reporters_gather_send(g, DB_BUILDS, &pq, reporters_on_prev);
	}
	reporters_gather_answered(g, 0);
}

int reporters_base_url(struct master *m, struct buf *out)
{
	const char *base = m->cfg->url;
	if (base && *base) {
		size_t n = strlen(base);
		while (n && base[n - 1] == '/')
			n--;
		return buf_add(out, base, n);
	}
	return buf_addf(out, "http://%s:%d",
			m->cfg->http.host && *m->cfg->http.host ? m->cfg->http.host : "localhost",
			m->cfg->http.port);
}

void reporters_alert(struct reporters *rs, const struct report_alert *a)
{
	if (!rs || rs->m->stopping)
		return;
	/* the one email reporter that mails a->rcpt */
	struct reporter *mailer = NULL;
	for (size_t k = 0; k < rs->n && !mailer; k++)
		if (rs->r[k].cfg->kind == CONFIG_REPORTER_EMAIL &&
		    (rs->r[k].cfg->events & a->event))
			mailer = &rs->r[k];
	for (size_t k = 0; k < rs->n && !mailer && a->nrcpt; k++)
		if (rs->r[k].cfg->kind == CONFIG_REPORTER_EMAIL)
			mailer = &rs->r[k];
	if (a->nrcpt && !mailer)
		log_warn("%s: no email reporter to mail it to %s", a->subject, a->rcpt[0]);
	for (size_t k = 0; k < rs->n; k++) {
		struct reporter *r = &rs->r[k];
		const struct config_report_filter *f = &r->cfg->filter;
		bool wants = (r->cfg->events & a->event) != 0;
		if (wants && a->builder) {
			/* builders and tags apply to a builder's alert; modes and branches
			 * are about build results */
			struct report_build rb = {.builder = a->builder,
						  .tags = a->tags,
						  .ntags = a->ntags,
						  .results = RESULTS_SUCCESS,
						  .prev_results = RESULTS_NONE};
			struct config_report_filter g = *f;
			g.nbranches = 0;
			g.modes = CONFIG_REPORT_ALL;
			wants = reporters_filter_match(&g, &rb);
		}
		if (r != mailer && !wants)
			continue;
		if (!r->kind->alert) {
			log_debug("reporter '%s' (%s) sends no alerts", r->cfg->name,
				  r->kind->name);
			continue;
		}
		struct report_alert one = *a;
		if (r != mailer)
			one.nrcpt = 0, one.rcpt = NULL;
		one.rcpt_only = r == mailer && !wants; /* a->rcpt only, not its 'to' */
		r->kind->alert(r, &one);
	}
}

void reporters_on_build_finished(struct reporters *rs, json_t *row)
{
	reporters_on_build(rs, row, false);
}

void reporters_on_build_started(struct reporters *rs, json_t *row)
{
	reporters_on_build(rs, row, true);
}

static void reporters_listener(void *ud, const char *key, json_t *msg)
{
	reporters_on_build_finished(ud, msg);
}

static void reporters_listener_new(void *ud, const char *key, json_t *msg)
{
	reporters_on_build_started(ud, msg);
}

int reporters_start(struct master *m, struct reporters **ret)
{
	*ret = NULL;
	if (!m->cfg->nreporters)
		return 0;
	struct reporters *rs = xcalloc(1, sizeof(*rs));
	rs->m = m;
	const char *why = NULL;
	int r = curl_uv_new(m->loop, &rs->cu, &why);
	if (r < 0) {
		log_error("reporters: %s", why ? why : "cannot set up libcurl");
		free(rs);
		return r;
	}
	rs->r = xcalloc(m->cfg->nreporters, sizeof(*rs->r));
	for (size_t i = 0; i < m->cfg->nreporters; i++) {
		struct reporter *rp = &rs->r[i];
		rp->m = m;
		rp->cfg = &m->cfg->reporter[i];
		for (size_t k = 0; k < ARRAY_SIZE(reporter_kinds); k++)
			if (reporter_kinds[k]->kind == rp->cfg->kind)
				rp->kind = reporter_kinds[k];
		if (!rp->kind) {
			log_error("reporter '%s': unknown kind", rp->cfg->name);
			rs->n = i;
			reporters_stop(rs);
			return -EINVAL;
		}
		r = rp->kind->start(rp, rs->cu);
		if (r < 0) {
			log_error_errno(r, "reporter '%s': cannot start", rp->cfg->name);
			rs->n = i;
			reporters_stop(rs);
			return r;
		}
		rs->n = i + 1;
		log_info("reporter '%s' (%s) ready", rp->cfg->name, rp->kind->name);
	}
	events_listen(m->events, "builds/*/finished", reporters_listener, rs);
	rs->alerts = alerts_start(m, rs);
	for (size_t i = 0; i < rs->n; i++)
		if (rs->r[i].kind->build_started) {
			events_listen(m->events, "builds/*/new", reporters_listener_new, rs);
			break;
		}
	*ret = rs;
	return 0;
}

void reporters_stop(struct reporters *rs)
{
	if (!rs)
		return;
	events_unlisten(rs->m->events, reporters_listener, rs);
	alerts_stop(rs->alerts);
	events_unlisten(rs->m->events, reporters_listener_new, rs);
	/* the reads in flight answer later: only freed then */
	for (struct reporters_gather *g = rs->gathers; g; g = g->next)
		g->rs = NULL;
	rs->gathers = NULL;
	curl_uv_free(rs->cu); /* drops queued messages (logged) */
	for (size_t i = 0; i < rs->n; i++)
		if (rs->r[i].kind->stop)
			rs->r[i].kind->stop(&rs->r[i]);
	free(rs->r);
	free(rs);
}

/* slice "reconfig" */
int reporters_reconfig(struct master *m, struct reporters **rs, bool changed)
{
	if (!changed && *rs) {
		/* the same reporters: their queues go on with the new declarations */
		for (size_t i = 0; i < (*rs)->n; i++) {
			struct reporter *rp = &(*rs)->r[i];
			for (size_t k = 0; k < m->cfg->nreporters; k++)
				if (!strcmp(m->cfg->reporter[k].name, rp->cfg->name)) {
					rp->cfg = &m->cfg->reporter[k];
					break;
				}
		}
		return 0;
	}
	if (!changed)
		return 0;
	if (*rs)
		log_info("reporters: restarted by the reconfig (queued messages dropped)");
	reporters_stop(*rs);
	*rs = NULL;
	return reporters_start(m, rs);
}

bool reporters_unreserved(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("-._~", c));
}

int reporters_percent_encode(struct buf *out, const char *s, bool form)
{
	int r = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && r >= 0; p++) {
		if (reporters_unreserved((char)*p))
			r = buf_addch(out, (char)*p);
		else if (form && *p == ' ')
			r = buf_addch(out, '+');
		else
			r = buf_addf(out, "%%%02X", *p);
	}
	return r;
}

struct curl_slist *reporters_curl_headers(const char *content_type)
{
	const struct curl_uv_api *c = &curl_uv_api;
	char ct[128];
	snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
	struct curl_slist *l = c->slist_append(NULL, ct);
	struct curl_slist *l2 = l ? c->slist_append(l, "Expect:") : NULL;
	if (!l2 && l)
		c->slist_free_all(l);
	return l2;
}

struct curl_slist *reporters_curl_header(struct curl_slist *l, const char *name, const char *prefix,
					 const char *value)
{
	char *line = xasprintf("%s: %s%s", name, prefix, value);
	struct curl_slist *n = curl_uv_api.slist_append(l, line);
	explicit_bzero(line, strlen(line));
	free(line);
	if (!n) {
		curl_uv_api.slist_free_all(l);
		return NULL;
	}
	return n;
}

void reporters_log_outcome(const struct reporter *r, const char *idname, int64_t id, bool sent,
			   const char *err)
{
	if (sent)
		log_info("%s=%lld: reporter '%s': delivered", idname, (long long)id, r->cfg->name);
	else
		log_warn("%s=%lld: reporter '%s': not delivered: %s", idname, (long long)id,
			 r->cfg->name, err ? err : "dropped");
}

/* The reply's body: counted (if ud) and discarded (nothing is kept; the
 * attempt's timeout bounds how long it may take). */
static size_t reporters_discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	size_t *got = ud;
	if (got)
		*got += size * n;
	return size * n;
}

void reporters_curl_setup(void *h, const char *url, struct curl_slist *list, long long post_len,
			  size_t *reply)
{
	const struct curl_uv_api *c = &curl_uv_api;
	c->easy_setopt(h, CURLOPT_URL, url);
	c->easy_setopt(h, CURLOPT_HTTPHEADER, list);
	c->easy_setopt(h, CURLOPT_USERAGENT, "Kiln");
	if (post_len >= 0) {
		c->easy_setopt(h, CURLOPT_POST, 1L);
		c->easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)post_len);
	}
	if (reply)
		*reply = 0;
	c->easy_setopt(h, CURLOPT_WRITEFUNCTION, reporters_discard);
	c->easy_setopt(h, CURLOPT_WRITEDATA, reply);
}

struct curl_uv_queue *reporters_queue_new(struct reporter *r, struct curl_uv *cu,
					  const struct curl_uv_queue_ops *ops, void *ud)
{
	const struct config_reporter *rc = r->cfg;
	char name[300];
	snprintf(name, sizeof(name), "reporter '%s'", rc->name);
	struct curl_uv_queue_limits lim = {
		.max_jobs = rc->max_messages,
		.max_bytes = (size_t)rc->max_bytes,
		.timeout_ms = (uint64_t)(rc->timeout * 1000),
		.max_attempts = rc->attempts,
		.backoff_ms = (uint64_t)(rc->backoff * 1000),
	};
	return curl_uv_queue_new(cu, name, &lim, ops, ud);
}
