/*
 * kind = "bitbucket": build statuses on Bitbucket Cloud, or with
 * server = true on Bitbucket Server / Data Center (statuses.h).
 *   Cloud:  POST URL/2.0/repositories/WORKSPACE/REPO/commit/SHA/statuses/build
 *   Server: POST URL/rest/build-status/1.0/commits/SHA
 *   Authorization: Bearer TOKEN (an OAuth or access token), or HTTP basic
 *   user + password (an app password)
 *   {"key": the context (at most 40 bytes), "state":
 *    "INPROGRESS|SUCCESSFUL|FAILED|STOPPED", "name": "BUILDER #N", "url":
 *    the build's page, "description": ...}
 */
#include "master/reporters/statuses.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define BITBUCKET_MAX_KEY 40

static int bitbucket_request(const struct config_reporter *cfg, const struct statuses_event *ev,
			     struct statuses_req *q, const char **why)
{
	char owner[256], repo[256], desc[STATUSES_MAX_DESCRIPTION + 1], name[512];
	bool server = cfg->status.server;
	if (!statuses_sha_ok(ev->sha)) {
		*why = "the build has no revision";
		return 0;
	}
	if (!server && statuses_owner_repo(cfg, ev->repository, owner, sizeof(owner), repo,
					   sizeof(repo)) < 0) {
		*why = "no workspace/repo: the repository URL is not https://HOST/WORKSPACE/REPO "
		       "or git@HOST:WORKSPACE/REPO (or set owner and repo)";
		return ev->repository ? -EINVAL : 0;
	}
	q->state = statuses_state(cfg->kind, ev->started, ev->rb->results);
	struct buf ctx;
	buf_init(&ctx, 1024);
	(void)statuses_context(cfg, ev->rb, &ctx);
	if (ctx.len > BITBUCKET_MAX_KEY)
		buf_setlen(&ctx, BITBUCKET_MAX_KEY);
	statuses_description(ev, desc, sizeof(desc));
	snprintf(name, sizeof(name), "%s #%lld", ev->rb->builder, (long long)ev->rb->number);
	if (server) {
		(void)!buf_addf(&q->path, "/rest/build-status/1.0/commits/%s", ev->sha);
		(void)!buf_addf(&q->key, "%s|%s", ev->sha, ctx.ptr);
	} else {
		(void)!buf_addf(&q->path, "/2.0/repositories/%s/%s/commit/%s/statuses/build", owner,
				repo, ev->sha);
		(void)!buf_addf(&q->key, "%s/%s|%s|%s", owner, repo, ev->sha, ctx.ptr);
	}
	int r = statuses_body(q, json_pack("{s:s, s:s, s:s, s:s, s:s}", "key", ctx.ptr, "state",
					   q->state, "name", name, "url", ev->rb->url,
					   "description", desc));
	buf_release(&ctx);
	return statuses_finish(q, r, why, "the status is too long");
}

static struct curl_slist *bitbucket_auth(const struct config_reporter *cfg, CURL *h,
					 struct curl_slist *l)
{
	if (cfg->status.token)
		return reporters_curl_header(l, "Authorization", "Bearer ", cfg->status.token);
	statuses_basic_auth(h, cfg->status.user, cfg->status.password);
	return l;
}

const struct statuses_kind statuses_bitbucket = {.request = bitbucket_request,
						 .auth = bitbucket_auth};

const struct reporter_kind reporter_kind_bitbucket = {
	.kind = CONFIG_REPORTER_BITBUCKET,
	.name = "bitbucket",
	.start = statuses_start,
	.build_finished = statuses_build_finished,
	.stop = statuses_stop,
	.build_started = statuses_build_started,
};
