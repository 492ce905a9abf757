/*
 * Reporters: tell people and other systems about finished builds (email
 * today; IRC, commit statuses, HTTP push later).  One file per kind here
 * (reporters/KIND.c exporting `const struct reporter_kind reporter_kind_KIND`),
 * one line in reporter_kinds[] (reporters.c), the config side in
 * src/config/config-reporter-KIND.c (docs/REPORTERS.md).
 *
 * reporters.c listens to "builds/ * /finished" on the event bus (events.h,
 * in-process listener), so a build's completion is never delayed: the
 * listener sends the reads of what every kind needs (struct report_build;
 * issue 14: answered on a later turn on either backend, the loop never
 * waiting on the database), then asks the one filter model whether the
 * reporter wants it, and the kind queues its message on its own capped
 * outbound queue (curl-uv.h): sending happens later on the loop, never
 * blocking it.  Builds ended by the master's own shutdown (RETRY, or while
 * the master is stopping) are never reported.
 */
#ifndef KILN_MASTER_REPORTERS_H
#define KILN_MASTER_REPORTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config/config.h"
#include "db/db.h"

struct master;
struct reporters;
struct reporter;
struct curl_uv;
struct curl_uv_queue;
struct curl_uv_queue_ops;
struct curl_slist;
struct buf;

/* What reporters know about one finished build (all borrowed for the call). */
struct report_build {
	int64_t buildid, builderid, number;
	const char *builder;     /* its name */
	const char *const *tags; /* the builder's tags */
	size_t ntags;
	const char *branch;       /* the "branch" property, NULL if none */
	const char *revision;     /* the "got_revision" or "revision" property, or NULL */
	int results;              /* RESULTS_* (db.h) */
	int prev_results;         /* the builder's previous complete build, RESULTS_NONE: none */
	const char *state_string; /* "failed 'make test'" */
	const char *url;          /* the build's page in the web UI */
	const char *const *blamelist; /* authors of its changes ("Ann <ann@example.org>") */
	size_t nblamelist;
	double started_at, complete_at; /* Unix seconds */
	/* What the gathering read besides (NULL when not read; never in a
	 * reporters_build_dup copy): the build's row with its properties, its
	 * buildset with the first sourcestamp, the buildset's properties. */
	json_t *row;
	const struct db_buildset_info *buildset;
	json_t *bsprops;
};

/* An alert (slice "alerts", master/reporters/alerts.c): a worker gone
 * missing or a number's regression, for the reporters whose events = { }
 * lists it.  All borrowed for the call. */
struct report_alert {
	unsigned event;      /* CONFIG_REPORT_EVENT_WORKER_MISSING or _REGRESSION */
	int64_t id;          /* for log lines: the workerid or the buildid */
	const char *builder; /* regression: the builder (the filter's builders, tags) */
	const char *const *tags;
	size_t ntags;
	const char *subject;     /* one line: "worker 'w1' is missing" */
	const char *text;        /* plain text, lines ending in \n */
	const char *url;         /* the worker's or the build's page */
	const char *const *rcpt; /* mail: addresses besides the reporter's 'to' */
	size_t nrcpt;
	bool rcpt_only; /* mail: rcpt alone, not the reporter's 'to' (events lacks it) */
	const char *const *blamelist; /* regression: the build's authors */
	size_t nblamelist;
	json_t *data; /* the event as the http kind POSTs it */
};

struct reporter_kind {
	enum config_reporter_kind kind;
	const char *name;
	/* Sets up r->priv (and its queue on cu).  0, or negative: logged, the
	 * master does not start. */
	int (*start)(struct reporter *r, struct curl_uv *cu);
	/* A build the filter picked: queue its message; never blocks. */
	void (*build_finished)(struct reporter *r, const struct report_build *rb);
	/* Frees r->priv (the queue goes with curl_uv_free). */
	void (*stop)(struct reporter *r);
	/* An alert for this reporter (NULL: the kind sends none); never blocks. */
	void (*alert)(struct reporter *r, const struct report_alert *a);
	/* Optional: a build the filter's builders, tags and branches pick has
	 * started (rb->results RESULTS_NONE; commit statuses' "pending"). */
	void (*build_started)(struct reporter *r, const struct report_build *rb);
};

struct reporter {
	struct master *m;                  /* borrowed */
	const struct config_reporter *cfg; /* borrowed: m->cfg */
	const struct reporter_kind *kind;
	void *priv;
	uint64_t reported; /* builds handed to build_finished */
};

/* Starts every configured reporter (nothing, and no libcurl, when there are
 * none).  0 and *ret (NULL when none), or negative (logged). */
int reporters_start(struct master *m, struct reporters **ret);
/* Stops listening, drops what is queued (logged), frees; run the loop
 * afterwards (handles close).  NULL-safe. */
void reporters_stop(struct reporters *rs);
/* slice "reconfig": after m->cfg became a new generation.  changed false
 * (no reporter added, removed or changed): the running reporters take
 * their new declarations, their queues go on.  changed: all are stopped
 * (queued messages dropped, logged) and the new ones started; negative
 * when one cannot start (logged; *rs then NULL: none run). */
int reporters_reconfig(struct master *m, struct reporters **rs, bool changed);

/* The one filter model: does f want this build?  Pure. */
bool reporters_filter_match(const struct config_report_filter *f, const struct report_build *rb);
/* "success", "warnings", "failure", ... for RESULTS_* */
const char *reporters_results_name(int results);

/* Reads on the loop (either backend) the last max_lines lines of the stdio
 * log of the build's first failed step (FAILURE or EXCEPTION), stream
 * characters removed, whole lines up to max_bytes; the lines are as
 * stored, so secrets are masked already.  done(arg, 1, text, len, step)
 * (borrowed for the call; step names the step), done(arg, 0, ...) when
 * there is no failed step or no log, or a negative database error
 * (-ECANCELED: the database closed).  Returns 0, or negative (done is
 * then never called). */
typedef void (*reporters_tail_fn)(void *arg, int r, const char *text, size_t len, const char *step);
int reporters_log_tail_async(struct master *m, int64_t buildid, int max_lines, size_t max_bytes,
			     reporters_tail_fn done, void *arg);

/* A copy of rb whose strings and arrays it owns, for a kind whose message
 * waits for reads of its own (row, buildset, bsprops NULL in it). */
struct report_build *reporters_build_dup(const struct report_build *rb);
void reporters_build_free(struct report_build *rb); /* NULL-safe */

/* r's outbound queue on cu, named "reporter 'NAME'", with the caps,
 * timeout, attempts and backoff of its configuration. */
struct curl_uv_queue *reporters_queue_new(struct reporter *r, struct curl_uv *cu,
					  const struct curl_uv_queue_ops *ops, void *ud);

/* ---- a reporter's HTTP request (chat.c, http.c, statuses.c) ------------ */
/* An RFC 3986 unreserved character: letters, digits, "-._~". */
bool reporters_unreserved(char c);
/* s percent-encoded (RFC 3986 unreserved characters kept; form: ' ' as
 * '+', as application/x-www-form-urlencoded has it).  0, or negative:
 * out's cap. */
int reporters_percent_encode(struct buf *out, const char *s, bool form);
/* A header list "Content-Type: content_type", "Expect:" (no 100-continue
 * round trip), or NULL (nothing left allocated). */
struct curl_slist *reporters_curl_headers(const char *content_type);
/* The header line "NAME: PREFIXVALUE" ("Authorization: Bearer TOKEN")
 * appended to l (the line is wiped after the copy); NULL (l freed) when it
 * cannot be. */
struct curl_slist *reporters_curl_header(struct curl_slist *l, const char *name, const char *prefix,
					 const char *value);
/* Logs how a message of r ended: "IDNAME=ID: reporter 'NAME': delivered"
 * (sent), else "... not delivered: ERR" (err NULL: "dropped"). */
void reporters_log_outcome(const struct reporter *r, const char *idname, int64_t id, bool sent,
			   const char *err);
/* On the easy handle h (a CURL *): the URL, the header list, the user
 * agent "Kiln", a POST of post_len bytes (negative: the caller sets the
 * method), and a reply body that is discarded, its size counted into
 * *reply (if not NULL; set to 0 here). */
void reporters_curl_setup(void *h, const char *url, struct curl_slist *list, long long post_len,
			  size_t *reply);

/* Alerts (alerts.c): listens to workers' disconnections and the numbers'
 * regressions; NULL-safe stop (run the loop afterwards: timers close). */
struct alerts;
struct alerts *alerts_start(struct master *m, struct reporters *rs);
void alerts_stop(struct alerts *a);
/* Hands a to every reporter whose events and filter want it; the
 * addresses a->rcpt go through the first email reporter that wants it (or
 * the first email reporter when none lists the event). */
void reporters_alert(struct reporters *rs, const struct report_alert *a);
/* The web UI's base URL (the 'url' setting, or http:// + http.listen),
 * without a trailing '/'; into out. */
int reporters_base_url(struct master *m, struct buf *out);

/* Handles one build's row as the listener does (tests call it directly). */
void reporters_on_build_finished(struct reporters *rs, json_t *row);
/* The same for a build that started ("builds/N/new"; slice "statuses"). */
void reporters_on_build_started(struct reporters *rs, json_t *row);

#endif
