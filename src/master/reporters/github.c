/*
 * kind = "github": GitHub's commit statuses (statuses.h), also GitHub
 * Enterprise (url = "https://ghe.example.org/api/v3").
 *   POST URL/repos/OWNER/REPO/statuses/SHA
 *   Authorization: Bearer TOKEN, Accept: application/vnd.github+json
 *   {"state": "pending|success|failure|error", "target_url": the build's
 *    page, "description": ..., "context": "kiln/BUILDER"}
 */
#include "master/reporters/statuses.h"

static int github_request(const struct config_reporter *cfg, const struct statuses_event *ev,
			  struct statuses_req *q, const char **why)
{
	return statuses_repos_request("", cfg, ev, q, why);
}

static struct curl_slist *github_auth(const struct config_reporter *cfg, CURL *h,
				      struct curl_slist *l)
{
	l = reporters_curl_header(l, "Authorization", "Bearer ", cfg->status.token);
	if (l)
		l = reporters_curl_header(l, "Accept", "", "application/vnd.github+json");
	if (l)
		l = reporters_curl_header(l, "X-GitHub-Api-Version", "", "2022-11-28");
	return l;
}

const struct statuses_kind statuses_github = {.request = github_request, .auth = github_auth};

const struct reporter_kind reporter_kind_github = {
	.kind = CONFIG_REPORTER_GITHUB,
	.name = "github",
	.start = statuses_start,
	.build_finished = statuses_build_finished,
	.stop = statuses_stop,
	.build_started = statuses_build_started,
};
