/*
 * GitLab's webhook payloads into changes (hook.h): "Push Hook" and "Tag
 * Push Hook" give one change per commit; an opened, reopened or updated
 * "Merge Request Hook" gives one change of category "merge_request" for
 * its last commit.  Other GitLab hooks are answered "ignored".
 */
#include "master/changes/hook.h"

#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"

static const char *const gitlab_ignored[] = {
	"Issue Hook",     "Confidential Issue Hook",
	"Note Hook",      "Confidential Note Hook",
	"Pipeline Hook",  "Job Hook",
	"Wiki Page Hook", "Deployment Hook",
	"Release Hook",   "Feature Flag Hook",
	"Member Hook",    "Subgroup Hook",
	"Emoji Hook",     "Resource Access Token Hook",
	"Project Hook",   "Vulnerability Hook",
	"System Hook",    NULL,
};

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static const char *gitlab_repo_url(json_t *p)
{
	const char *u = hook_jpath(p, "project", "git_http_url", NULL);
	if (!u)
		u = hook_jpath(p, "repository", "git_http_url", NULL);
	if (!u)
		u = hook_jpath(p, "repository", "url", NULL);
	return u;
}

static const char *gitlab_project(json_t *p)
{
	const char *s = hook_jpath(p, "project", "path_with_namespace", NULL);
	return s ? s : hook_jpath(p, "repository", "name", NULL);
}

static int gitlab_push(json_t *p, const char *event, struct change **ret, size_t *ret_n,
		       char **ret_err)
{
	const char *ref = hook_jstr(p, "ref");
	json_t *commits = json_object_get(p, "commits");
	if (!ref || (commits && !json_is_array(commits))) {
		*ret_err = xstrdup("malformed push payload: no 'ref' or 'commits' not a list");
		return KILN_EPARSE;
	}
	const char *branch, *category = "push";
	if (!strncmp(ref, "refs/heads/", 11))
		branch = ref + 11;
	else if (!strncmp(ref, "refs/tags/", 10)) {
		branch = ref + 10;
		category = "tag";
	} else
		return HOOK_IGNORED;
	const char *after = hook_jstr(p, "after");
	if (!*branch || (after && *after && strspn(after, "0") == strlen(after)))
		return HOOK_IGNORED; /* a deleted branch or tag */
	const char *repo = gitlab_repo_url(p), *project = gitlab_project(p);

	/* the list is oldest first: past the cap, only the newest are taken */
	size_t total = json_array_size(commits);
	size_t first = total > KILN_MAX_HOOK_COMMITS ? total - KILN_MAX_HOOK_COMMITS : 0;
	struct change *v = NULL;
	size_t n = 0;
	for (size_t i = first; i < total; i++) {
		json_t *commit = json_array_get(commits, i);
		if (!json_is_object(commit))
			continue;
		struct change *c = hook_push_change(&v, &n);
		c->src = "git";
		c->author = hook_who(json_object_get(commit, "author"));
		c->comments = dup_or_null(hook_jstr(commit, "message"));
		c->revision = dup_or_null(hook_jstr(commit, "id"));
		c->revlink = dup_or_null(hook_jstr(commit, "url"));
		c->branch = xstrdup(branch);
		c->category = xstrdup(category);
		c->repository = dup_or_null(repo);
		c->project = dup_or_null(project);
		double when;
		if (hook_parse_time(hook_jstr(commit, "timestamp"), &when) == 0)
			c->when = when;
		hook_commit_files(c, commit);
		change_set_property(c, "event", json_string(event));
	}
	const char *sha = hook_jstr(p, "checkout_sha");
	if (n == 0 && sha && !strcmp(category, "tag")) {
		/* a tag pushed at an existing commit: GitLab lists no commits */
		struct change *c = hook_push_change(&v, &n);
		c->src = "git";
		const char *name = hook_jstr(p, "user_name"), *email = hook_jstr(p, "user_email");
		c->author = name && email && *email ? xasprintf("%s <%s>", name, email)
						    : dup_or_null(name);
		c->comments = dup_or_null(hook_jstr(p, "message"));
		c->revision = xstrdup(sha);
		c->branch = xstrdup(branch);
		c->category = xstrdup(category);
		c->repository = dup_or_null(repo);
		c->project = dup_or_null(project);
		change_set_property(c, "event", json_string(event));
	}
	*ret = v;
	*ret_n = n;
	return hook_truncated(total, ret_err);
}

static int gitlab_merge_request(json_t *p, const char *event, struct change **ret, size_t *ret_n,
				char **ret_err)
{
	static const char *const actions[] = {"open", "reopen", "update", NULL};
	json_t *mr = json_object_get(p, "object_attributes");
	if (!json_is_object(mr)) {
		*ret_err = xstrdup("malformed merge request payload: no 'object_attributes'");
		return KILN_EPARSE;
	}
	const char *action = hook_jstr(mr, "action");
	if (!action || !hook_in_list(action, actions))
		return HOOK_IGNORED;
	const char *sha = hook_jpath(mr, "last_commit", "id", NULL);
	const char *branch = hook_jstr(mr, "source_branch");
	if (!sha || !branch) {
		*ret_err = xstrdup("malformed merge request payload: no last_commit.id or "
				   "source_branch");
		return KILN_EPARSE;
	}
	json_int_t iid = json_integer_value(json_object_get(mr, "iid"));
	const char *title = hook_jstr(mr, "title"), *desc = hook_jstr(mr, "description");

	struct change *v = NULL;
	size_t n = 0;
	struct change *c = hook_push_change(&v, &n);
	c->src = "git";
	c->category = xstrdup("merge_request");
	c->revision = xstrdup(sha);
	c->branch = xstrdup(branch);
	c->author = hook_who(hook_jpath(mr, "last_commit", "author", "name", NULL)
				     ? json_object_get(json_object_get(mr, "last_commit"), "author")
				     : json_object_get(p, "user"));
	c->comments = xasprintf("Merge request !%lld: %s\n\n%s", (long long)iid, title ? title : "",
				desc ? desc : "");
	c->revlink = dup_or_null(hook_jstr(mr, "url"));
	const char *repo = hook_jpath(mr, "source", "git_http_url", NULL);
	c->repository = dup_or_null(repo ? repo : gitlab_repo_url(p));
	const char *project = hook_jpath(mr, "target", "path_with_namespace", NULL);
	c->project = dup_or_null(project ? project : gitlab_project(p));
	double when;
	if (hook_parse_time(hook_jpath(mr, "last_commit", "timestamp", NULL), &when) == 0)
		c->when = when;
	change_set_property(c, "event", json_string(event));
	change_set_property(c, "number", json_integer(iid));
	const char *target = hook_jstr(mr, "target_branch");
	change_set_property(c, "target_branch", json_string(target ? target : ""));
	change_set_property(c, "source_branch", json_string(branch));
	*ret = v;
	*ret_n = n;
	return 0;
}

int hook_gitlab_parse(const char *event, const char *body, size_t len, struct change **ret,
		      size_t *ret_n, char **ret_err)
{
	*ret = NULL;
	*ret_n = 0;
	if (!event || !*event) {
		*ret_err = xstrdup("missing X-Gitlab-Event header");
		return KILN_EPARSE;
	}
	bool push = !strcmp(event, "Push Hook") || !strcmp(event, "Tag Push Hook");
	bool mr = !strcmp(event, "Merge Request Hook");
	if (!push && !mr && !hook_in_list(event, gitlab_ignored)) {
		*ret_err = xasprintf("unknown GitLab event type '%.64s'", event);
		return KILN_EPARSE;
	}
	json_t *p;
	int r = hook_load_object(body, len, &p, ret_err);
	if (r < 0)
		return r;
	if (push)
		r = gitlab_push(p, push && event[0] == 'T' ? "tag_push" : "push", ret, ret_n,
				ret_err);
	else if (mr)
		r = gitlab_merge_request(p, "merge_request", ret, ret_n, ret_err);
	else
		r = HOOK_IGNORED;
	json_decref(p);
	return r;
}
