/*
 * Alerts (slice "alerts"): events that are not a finished build, for the
 * reporters whose events = { ... } lists them (reporters.h):
 *
 * - worker_missing: a worker disconnected ("workers/ID/disconnected" on the
 *   bus) and not back within its missing_timeout (config: worker { } keys
 *   notify_on_missing and missing_timeout, Buildbot's names).  One uv_timer
 *   per disconnected worker; its reconnection ("workers/ID/connected")
 *   stops it.  One alert per disappearance: the next one needs a
 *   reconnection first.  Its notify_on_missing addresses get a mail through
 *   one email reporter.  Disconnections during the master's own shutdown
 *   arm nothing.  State is in memory only: a master restarted while a
 *   worker is away starts counting at the next disconnection.
 * - regression: a number regressed ("numbers/BUILDERID/NAME/regression",
 *   published by numbers.c): the number, its old and new value, the build.
 * - reporter_quiet: an expected pusher (expected_reporters, push.c) has not
 *   pushed within its interval ("expected_reporters/N/quiet"), or pushes
 *   again after that ("expected_reporters/N/back").
 */
#define LOG_SUBSYS "report"
#include "master/reporters/reporters.h"
#include "master/events.h"
#include "master/engine.h"
#include "master/master.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "db/db.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

struct alerts_worker {
	struct alerts_worker *next;
	struct alerts *a;
	int64_t workerid;
	char *name;   /* owned */
	double since; /* wall time of the disconnection */
	uv_timer_t timer;
	bool armed; /* waiting for missing_timeout */
};

struct alerts {
	struct master *m;
	struct reporters *rs;
	struct alerts_worker *workers; /* owned: every worker seen disconnecting */
	unsigned wanted;               /* CONFIG_REPORT_EVENT_* some reporter lists */
	bool any_notify;               /* some worker has notify_on_missing */
	uint64_t sent;                 /* alerts handed to the reporters */
};

static struct alerts_worker *alerts_worker_get(struct alerts *a, int64_t workerid, const char *name)
{
	for (struct alerts_worker *w = a->workers; w; w = w->next)
		if (w->workerid == workerid)
			return w;
	if (!name)
		return NULL;
	struct alerts_worker *w = xcalloc(1, sizeof(*w));
	w->a = a;
	w->workerid = workerid;
	w->name = xstrdup(name);
	uv_timer_init(a->m->loop, &w->timer);
	w->timer.data = w;
	w->next = a->workers;
	a->workers = w;
	return w;
}

/* A wall time as the alerts' texts show it: "2026-12-03 14:27:17 UTC". */
static void alerts_utc(double when, char *out, size_t n)
{
	time_t t = (time_t)when;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void alerts_missing_fire(uv_timer_t *t)
{
	struct alerts_worker *w = t->data;
	struct alerts *a = w->a;
	struct master *m = a->m;
	w->armed = false;
	if (m->stopping)
		return;
	const struct config_worker *wc = config_find_worker(m->cfg, w->name);
	char when[64];
	alerts_utc(w->since, when, sizeof(when));
	struct buf url, subject, text;
	buf_init(&url, 4096);
	buf_init(&subject, 1024);
	buf_init(&text, 16384);
	int r = reporters_base_url(m, &url);
	r = r < 0 ? r : buf_addf(&url, "/workers/%lld", (long long)w->workerid);
	r = r < 0 ? r : buf_addf(&subject, "worker '%s' is missing", w->name);
	double away = clock_wall() - w->since;
	r = r < 0 ? r
		  : buf_addf(&text,
			     "Worker: %s\nDisconnected: %s (%.0f s ago; missing_timeout %g s)\n"
			     "Worker page: %s\n",
			     w->name, when, away, wc ? wc->missing_timeout : 0.0,
			     r < 0 ? "" : url.ptr);
	if (r < 0) {
		log_warn("worker=%s: cannot compose the missing-worker alert", w->name);
		goto out;
	}
	json_t *data =
		json_pack("{s:s, s:I, s:s, s:f, s:f, s:s}", "event", "worker_missing", "workerid",
			  (json_int_t)w->workerid, "worker", w->name, "disconnected_at", w->since,
			  "missing_timeout", wc ? wc->missing_timeout : 0.0, "url", url.ptr);
	struct report_alert al = {
		.event = CONFIG_REPORT_EVENT_WORKER_MISSING,
		.id = w->workerid,
		.subject = subject.ptr,
		.text = text.ptr,
		.url = url.ptr,
		.rcpt = wc ? (const char *const *)wc->notify_on_missing : NULL,
		.nrcpt = wc ? wc->nnotify_on_missing : 0,
		.data = data,
	};
	log_warn("worker=%s missing: disconnected %.0f s ago; alerting", w->name, away);
	a->sent++;
	reporters_alert(a->rs, &al);
	json_decref(data);
out:
	buf_release(&url);
	buf_release(&subject);
	buf_release(&text);
}

static void alerts_on_worker(void *ud, const char *key, json_t *msg)
{
	struct alerts *a = ud;
	struct master *m = a->m;
	const char *ev = strrchr(key, '/');
	int64_t workerid = json_integer_value(json_object_get(msg, "workerid"));
	const char *name = json_string_value(json_object_get(msg, "name"));
	if (!ev || !workerid)
		return;
	if (!strcmp(ev, "/connected")) {
		struct alerts_worker *w = alerts_worker_get(a, workerid, NULL);
		if (w && w->armed) {
			uv_timer_stop(&w->timer);
			w->armed = false;
			log_info("worker=%s back within its missing_timeout: no alert", w->name);
		}
		return;
	}
	if (strcmp(ev, "/disconnected") || m->stopping || !name)
		return;
	const struct config_worker *wc = config_find_worker(m->cfg, name);
	if (!wc || (!wc->nnotify_on_missing && !(a->wanted & CONFIG_REPORT_EVENT_WORKER_MISSING)))
		return;
	/* a latent worker is away on purpose once stopped (issue 14): its failed
	 * starts show as latent_error and EXCEPTION builds instead */
	if (wc->latent)
		return;
	struct alerts_worker *w = alerts_worker_get(a, workerid, name);
	w->since = clock_wall();
	w->armed = true;
	uint64_t ms = (uint64_t)llround(wc->missing_timeout * 1000);
	uv_timer_start(&w->timer, alerts_missing_fire, ms ? ms : 1, 0);
	log_debug("worker=%s disconnected: missing after %g s", name, wc->missing_timeout);
}

static void alerts_on_regression(void *ud, const char *key, json_t *msg)
{
	struct alerts *a = ud;
	struct master *m = a->m;
	(void)key;
	int64_t builderid = json_integer_value(json_object_get(msg, "builderid"));
	int64_t buildid = json_integer_value(json_object_get(msg, "buildid"));
	int64_t number = json_integer_value(json_object_get(msg, "number"));
	const char *name = json_string_value(json_object_get(msg, "name"));
	double oldv = json_number_value(json_object_get(msg, "old_value"));
	double newv = json_number_value(json_object_get(msg, "new_value"));
	if (!name || m->stopping)
		return;
	/* the builder's name and tags: a configured builder's, from memory
	 * (the loop reads nothing here) */
	const struct config_builder *bc = engine_builder_cfg(m->engine, builderid);
	const char *bname = bc ? bc->name : NULL;
	if (!bname)
		bname = "?";
	const char *authors[64];
	size_t nauthors = 0, i;
	json_t *v;
	json_array_foreach(json_object_get(msg, "blamelist"), i, v)
	{
		if (json_is_string(v) && nauthors < ARRAY_SIZE(authors))
			authors[nauthors++] = json_string_value(v);
	}
	struct buf url, subject, text;
	buf_init(&url, 4096);
	buf_init(&subject, 1024);
	buf_init(&text, 64 << 10);
	int r = reporters_base_url(m, &url);
	r = r < 0 ? r
		  : buf_addf(&url, "/builders/%lld/builds/%lld", (long long)builderid,
			     (long long)number);
	r = r < 0 ? r
		  : buf_addf(&subject, "%s #%lld: '%s' regressed: %g -> %g", bname,
			     (long long)number, name, oldv, newv);
	r = r < 0 ? r
		  : buf_addf(&text,
			     "Builder: %s\nBuild: #%lld\nNumber: %s\nOld value: %g\nNew value: "
			     "%g\nBuild page: %s\n",
			     bname, (long long)number, name, oldv, newv, url.ptr);
	if (r >= 0 && nauthors) {
		r = buf_adds(&text, "Blamelist: ");
		for (size_t k = 0; k < nauthors && r >= 0; k++)
			r = buf_addf(&text, "%s%s", k ? ", " : "", authors[k]);
		r = r < 0 ? r : buf_addch(&text, '\n');
	}
	if (r >= 0) {
		json_t *data = json_deep_copy(msg);
		json_object_set_new(data, "event", json_string("regression"));
		json_object_set_new(data, "builder", json_string(bname));
		json_object_set_new(data, "url", json_string(url.ptr));
		struct report_alert al = {
			.event = CONFIG_REPORT_EVENT_REGRESSION,
			.id = buildid,
			.builder = bname,
			.tags = bc ? (const char *const *)bc->tags : NULL,
			.ntags = bc ? bc->ntags : 0,
			.subject = subject.ptr,
			.text = text.ptr,
			.url = url.ptr,
			.blamelist = authors,
			.nblamelist = nauthors,
			.data = data,
		};
		a->sent++;
		reporters_alert(a->rs, &al);
		json_decref(data);
	} else
		log_warn("build=%lld: cannot compose the regression alert of '%s'",
			 (long long)buildid, name);
	buf_release(&url);
	buf_release(&subject);
	buf_release(&text);
}

static void alerts_on_reporter(void *ud, const char *key, json_t *msg)
{
	struct alerts *a = ud;
	struct master *m = a->m;
	const char *ev = strrchr(key, '/');
	const char *package = json_string_value(json_object_get(msg, "package"));
	const char *host = json_string_value(json_object_get(msg, "host"));
	if (!ev || !package || !host || m->stopping)
		return;
	bool back = !strcmp(ev, "/back");
	double interval = json_number_value(json_object_get(msg, "interval"));
	json_t *lastj = json_object_get(msg, "last_push");
	char when[64] = "never";
	if (json_is_integer(lastj))
		alerts_utc((double)json_integer_value(lastj), when, sizeof(when));
	struct buf url, subject, text;
	buf_init(&url, 4096);
	buf_init(&subject, 1024);
	buf_init(&text, 16384);
	int r = reporters_base_url(m, &url);
	r = r < 0 ? r : buf_adds(&url, "/builders");
	r = r < 0 ? r
		  : buf_addf(&subject, "expected reporter %s on %s %s", package, host,
			     back ? "is back" : "is quiet");
	r = r < 0 ? r
		  : buf_addf(&text,
			     "Package: %s\nHost: %s\nExpected every: %.0f s\nLast push: %s\n",
			     package, host, interval, when);
	if (r < 0) {
		log_warn("cannot compose the expected-reporter alert of %s on %s", package, host);
		goto out;
	}
	json_t *data = json_deep_copy(msg);
	json_object_set_new(data, "event", json_string(back ? "reporter_back" : "reporter_quiet"));
	json_object_set_new(data, "url", json_string(url.ptr));
	struct report_alert al = {
		.event = CONFIG_REPORT_EVENT_REPORTER_QUIET,
		.id = json_integer_value(json_object_get(msg, "reporterid")),
		.subject = subject.ptr,
		.text = text.ptr,
		.url = url.ptr,
		.data = data,
	};
	a->sent++;
	reporters_alert(a->rs, &al);
	json_decref(data);
out:
	buf_release(&url);
	buf_release(&subject);
	buf_release(&text);
}

struct alerts *alerts_start(struct master *m, struct reporters *rs)
{
	struct alerts *a = xcalloc(1, sizeof(*a));
	a->m = m;
	a->rs = rs;
	for (size_t i = 0; i < m->cfg->nreporters; i++)
		a->wanted |= m->cfg->reporter[i].events;
	for (size_t i = 0; i < m->cfg->nworkers; i++)
		a->any_notify |= m->cfg->worker[i].nnotify_on_missing > 0;
	if (a->any_notify || (a->wanted & CONFIG_REPORT_EVENT_WORKER_MISSING)) {
		events_listen(m->events, "workers/*/connected", alerts_on_worker, a);
		events_listen(m->events, "workers/*/disconnected", alerts_on_worker, a);
	}
	if (a->wanted & CONFIG_REPORT_EVENT_REGRESSION)
		events_listen(m->events, "numbers/*/*/regression", alerts_on_regression, a);
	if (a->wanted & CONFIG_REPORT_EVENT_REPORTER_QUIET) {
		events_listen(m->events, "expected_reporters/*/quiet", alerts_on_reporter, a);
		events_listen(m->events, "expected_reporters/*/back", alerts_on_reporter, a);
	}
	return a;
}

static void alerts_worker_closed(uv_handle_t *h)
{
	struct alerts_worker *w = h->data;
	free(w->name);
	free(w);
}

void alerts_stop(struct alerts *a)
{
	if (!a)
		return;
	/* every listener of ours has ud a: one unlisten per registration */
	for (int i = 0; i < 2; i++)
		events_unlisten(a->m->events, alerts_on_worker, a);
	events_unlisten(a->m->events, alerts_on_regression, a);
	for (int i = 0; i < 2; i++)
		events_unlisten(a->m->events, alerts_on_reporter, a);
	while (a->workers) {
		struct alerts_worker *w = a->workers;
		a->workers = w->next;
		if (w->armed)
			log_info("worker=%s: missing-worker timer dropped (the master stops)",
				 w->name);
		uv_close((uv_handle_t *)&w->timer, alerts_worker_closed);
	}
	free(a);
}
