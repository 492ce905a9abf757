/*
 * kind = "gerrit": a review on the Gerrit change a build tested
 * (statuses.h).  The change and its revision come from the properties a
 * Gerrit change source sets (event.change.number, event.patchSet.revision;
 * without the latter, the build's revision).  Nothing on a build's start.
 *   POST URL/a/changes/CHANGE/revisions/REVISION/review
 *   HTTP basic user + password (the account's HTTP password)
 *   {"message": "Build app #4: failure https://...", "labels":
 *    {"Verified": 1 | -1 | 0}}
 */
#include "master/reporters/statuses.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int gerrit_request(const struct config_reporter *cfg, const struct statuses_event *ev,
			  struct statuses_req *q, const char **why)
{
	const char *rev = ev->patchset ? ev->patchset : ev->sha;
	if (!ev->change || !*ev->change) {
		*why = "the build has no event.change.number property (not from a Gerrit change)";
		return 0;
	}
	if (!statuses_sha_ok(rev)) {
		*why = "the build has no event.patchSet.revision property nor a revision";
		return 0;
	}
	q->state = statuses_state(cfg->kind, ev->started, ev->rb->results);
	if (!q->state) {
		*why = "Gerrit gets no status when a build starts";
		return 0;
	}
	const struct report_build *rb = ev->rb;
	(void)!buf_adds(&q->path, "/a/changes/");
	(void)statuses_segment(&q->path, ev->change);
	(void)!buf_addf(&q->path, "/revisions/%s/review", rev);
	(void)!buf_addf(&q->key, "%s|%s|%s", ev->change, rev, cfg->status.label);
	char msg[2048];
	snprintf(msg, sizeof(msg), "Build %s #%lld: %s%s%s%s %s", rb->builder,
		 (long long)rb->number, reporters_results_name(rb->results),
		 rb->state_string && *rb->state_string ? " (" : "",
		 rb->state_string ? rb->state_string : "",
		 rb->state_string && *rb->state_string ? ")" : "", rb->url);
	json_t *labels = json_object();
	json_object_set_new(labels, cfg->status.label, json_integer(strtol(q->state, NULL, 10)));
	int r = statuses_body(q, json_pack("{s:s, s:o}", "message", msg, "labels", labels));
	return statuses_finish(q, r, why, "the review is too long");
}

static struct curl_slist *gerrit_auth(const struct config_reporter *cfg, CURL *h,
				      struct curl_slist *l)
{
	statuses_basic_auth(h, cfg->status.user, cfg->status.password);
	return l;
}

const struct statuses_kind statuses_gerrit = {.request = gerrit_request, .auth = gerrit_auth};

const struct reporter_kind reporter_kind_gerrit = {
	.kind = CONFIG_REPORTER_GERRIT,
	.name = "gerrit",
	.start = statuses_start,
	.build_finished = statuses_build_finished,
	.stop = statuses_stop,
	.build_started = statuses_build_started,
};
