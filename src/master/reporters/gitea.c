/*
 * kind = "gitea": Gitea's (and Forgejo's) commit statuses (statuses.h).
 *   POST URL/api/v1/repos/OWNER/REPO/statuses/SHA
 *   Authorization: token TOKEN
 *   {"state": "pending|success|warning|failure|error", "target_url": ...,
 *    "description": ..., "context": "kiln/BUILDER"}
 */
#include "master/reporters/statuses.h"

static int gitea_request(const struct config_reporter *cfg, const struct statuses_event *ev,
			 struct statuses_req *q, const char **why)
{
	return statuses_repos_request("/api/v1", cfg, ev, q, why);
}

static struct curl_slist *gitea_auth(const struct config_reporter *cfg, CURL *h,
				     struct curl_slist *l)
{
	return reporters_curl_header(l, "Authorization", "token ", cfg->status.token);
}

const struct statuses_kind statuses_gitea = {.request = gitea_request, .auth = gitea_auth};

const struct reporter_kind reporter_kind_gitea = {
	.kind = CONFIG_REPORTER_GITEA,
	.name = "gitea",
	.start = statuses_start,
	.build_finished = statuses_build_finished,
	.stop = statuses_stop,
	.build_started = statuses_build_started,
};
