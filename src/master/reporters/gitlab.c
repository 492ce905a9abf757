/*
 * kind = "gitlab": GitLab's commit statuses (statuses.h).
 *   POST URL/api/v4/projects/ID/statuses/SHA   (ID: the project's number,
 *        or its path "group/sub/name" percent-encoded: group%2Fsub%2Fname)
 *   PRIVATE-TOKEN: TOKEN
 *   {"state": "running|success|failed|canceled", "name": "kiln/BUILDER",
 *    "target_url": ..., "description": ..., "ref": the branch (if any)}
 */
#include "master/reporters/statuses.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int gitlab_request(const struct config_reporter *cfg, const struct statuses_event *ev,
			  struct statuses_req *q, const char **why)
{
	char project[1024], desc[STATUSES_MAX_DESCRIPTION + 1];
	if (!statuses_sha_ok(ev->sha)) {
		*why = "the build has no revision";
		return 0;
	}
	if (cfg->status.repo)
		snprintf(project, sizeof(project), "%s", cfg->status.repo);
	else if (statuses_repo_path(ev->repository, project, sizeof(project)) < 0 ||
		 !strchr(project, '/')) {
		*why = "no project: the repository URL is not https://HOST/GROUP/NAME or "
		       "git@HOST:GROUP/NAME (or set project)";
		return ev->repository ? -EINVAL : 0;
	}
	q->state = statuses_state(cfg->kind, ev->started, ev->rb->results);
	struct buf ctx;
	buf_init(&ctx, 1024);
	(void)statuses_context(cfg, ev->rb, &ctx);
	statuses_description(ev, desc, sizeof(desc));
	(void)!buf_adds(&q->path, "/api/v4/projects/");
	(void)statuses_segment(&q->path, project);
	(void)!buf_addf(&q->path, "/statuses/%s", ev->sha);
	(void)!buf_addf(&q->key, "%s|%s|%s", project, ev->sha, ctx.ptr);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "state", q->state, "name", ctx.ptr,
			      "target_url", ev->rb->url, "description", desc);
	if (o && ev->rb->branch)
		json_object_set_new(o, "ref", json_string(ev->rb->branch));
	int r = statuses_body(q, o);
	buf_release(&ctx);
	return statuses_finish(q, r, why, "the status is too long");
}

static struct curl_slist *gitlab_auth(const struct config_reporter *cfg, CURL *h,
				      struct curl_slist *l)
{
	return reporters_curl_header(l, "PRIVATE-TOKEN", "", cfg->status.token);
}

const struct statuses_kind statuses_gitlab = {.request = gitlab_request, .auth = gitlab_auth};

const struct reporter_kind reporter_kind_gitlab = {
	.kind = CONFIG_REPORTER_GITLAB,
	.name = "gitlab",
	.start = statuses_start,
	.build_finished = statuses_build_finished,
	.stop = statuses_stop,
	.build_started = statuses_build_started,
};
