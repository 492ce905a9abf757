/*
 * kind = "gitea": Gitea's (and Forgejo's) commit statuses (statuses.h).
 *   POST URL/api/v1/repos/OWNER/REPO/statuses/SHA
 *   Authorization: token TOKEN
 *   {"state": "pending|success|warning|failure|error", "target_url": ...,
 *    "description": ..., "context": "kiln/BUILDER"}
 */
#include "master/reporters/statuses.h"

#include <errno.h>

static int gitea_request(const struct config_reporter *cfg, const struct statuses_event *ev,
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
	(void)!buf_addf(&q->path, "/api/v1/repos/%s/%s/statuses/%s", owner, repo, ev->sha);
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

static struct curl_slist *gitea_auth(const struct config_reporter *cfg, CURL *h,
				     struct curl_slist *l)
{
	return statuses_header(l, "Authorization", "token ", cfg->status.token);
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
