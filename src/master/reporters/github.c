/*
 * kind = "github": GitHub's commit statuses (statuses.h), also GitHub
 * Enterprise (url = "https://ghe.example.org/api/v3").
 *   POST URL/repos/OWNER/REPO/statuses/SHA
 *   Authorization: Bearer TOKEN, Accept: application/vnd.github+json
 *   {"state": "pending|success|failure|error", "target_url": the build's
 *    page, "description": ..., "context": "kiln/BUILDER"}
 */
#include "master/reporters/statuses.h"

#include <errno.h>

static int github_request(const struct config_reporter *cfg, const struct statuses_event *ev,
			  struct statuses_req *q, const char **why)
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
	(void)!buf_addf(&q->path, "/repos/%s/%s/statuses/%s", owner, repo, ev->sha);
	(void)!buf_addf(&q->key, "%s/%s|%s|%s", owner, repo, ev->sha, ctx.ptr);
	int r = statuses_body(q, json_pack("{s:s, s:s, s:s, s:s}", "state", q->state, "target_url",
					   ev->rb->url, "description", desc, "context", ctx.ptr));
	buf_release(&ctx);
	if (r < 0 || buf_error(&q->path) || buf_error(&q->key)) {
		*why = "the status is too long";
		return -E2BIG;
	}
	return 1;
}

static struct curl_slist *github_auth(const struct config_reporter *cfg, CURL *h,
				      struct curl_slist *l)
{
	l = statuses_header(l, "Authorization", "Bearer ", cfg->status.token);
	if (l)
		l = statuses_header(l, "Accept", "", "application/vnd.github+json");
	if (l)
		l = statuses_header(l, "X-GitHub-Api-Version", "", "2022-11-28");
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
