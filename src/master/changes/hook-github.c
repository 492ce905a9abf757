/*
 * GitHub's webhook payloads into changes (hook.h): a push gives one change
 * per commit (files from added/modified/removed, author "Name <email>",
 * branch from refs/heads/X or tag from refs/tags/X); an opened, reopened
 * or synchronized pull request gives one change of category "pull".
 * Gitea's payloads share these shapes (hook-gitea.c reuses them).
 */
#include "master/changes/hook.h"

#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"

/* Events GitHub documents that make no change here: answered "ignored". */
static const char *const github_ignored[] = {
	"issues",
	"issue_comment",
	"create",
	"delete",
	"release",
	"watch",
	"star",
	"fork",
	"status",
	"check_run",
	"check_suite",
	"commit_comment",
	"pull_request_review",
	"pull_request_review_comment",
	"pull_request_review_thread",
	"deployment",
	"deployment_status",
	"label",
	"member",
	"membership",
	"milestone",
	"gollum",
	"public",
	"repository",
	"workflow_run",
	"workflow_job",
	"workflow_dispatch",
	"page_build",
	"project",
	"project_card",
	"project_column",
	"team",
	"team_add",
	"organization",
	"meta",
	"discussion",
	"discussion_comment",
	"branch_protection_rule",
	"code_scanning_alert",
	"secret_scanning_alert",
	"dependabot_alert",
	"registry_package",
	"package",
	"repository_dispatch",
	"security_advisory",
	"sponsorship",
	"merge_group",
	"installation",
	"installation_repositories",
	"marketplace_purchase",
	NULL,
};

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* One change from a push's commit object. */
static void github_commit_change(struct change *c, json_t *commit, const char *branch,
				 const char *repo, const char *project, const char *category,
				 const char *event)
{
	c->author = hook_who(json_object_get(commit, "author"));
	c->committer = hook_who(json_object_get(commit, "committer"));
	c->comments = dup_or_null(hook_jstr(commit, "message"));
	c->revision = dup_or_null(hook_jstr(commit, "id"));
	c->revlink = dup_or_null(hook_jstr(commit, "url"));
	c->branch = xstrdup(branch);
	c->repository = dup_or_null(repo);
	c->project = dup_or_null(project);
	c->category = xstrdup(category);
	double when;
	if (hook_parse_time(hook_jstr(commit, "timestamp"), &when) == 0)
		c->when = when;
	hook_commit_files(c, commit);
	json_t *distinct = json_object_get(commit, "distinct");
	change_set_property(c, "github_distinct",
			    json_boolean(!json_is_boolean(distinct) || json_is_true(distinct)));
	change_set_property(c, "event", json_string(event));
}

/* Shared with Gitea: the push payload (ref, commits, head_commit,
 * repository{html_url, full_name}, deleted). */
int hook_github_push(json_t *p, const char *event, const char *src, struct change **ret,
		     size_t *ret_n, char **ret_err)
{
	const char *ref = hook_jstr(p, "ref");
	if (!ref) {
		*ret_err = xstrdup("malformed push payload: no 'ref'");
		return KILN_EPARSE;
	}
	json_t *commits = json_object_get(p, "commits");
	if (commits && !json_is_array(commits) && !json_is_null(commits)) {
		*ret_err = xstrdup("malformed push payload: 'commits' is not a list");
		return KILN_EPARSE;
	}
	const char *branch, *category = "push";
	if (!strncmp(ref, "refs/heads/", 11))
		branch = ref + 11;
	else if (!strncmp(ref, "refs/tags/", 10)) {
		branch = ref + 10;
		category = "tag";
	} else
		return HOOK_IGNORED; /* refs/notes/..., refs/pull/...: not a branch or tag */
	if (!*branch || json_is_true(json_object_get(p, "deleted")))
		return HOOK_IGNORED;
	const char *after = hook_jstr(p, "after");
	if (after && strspn(after, "0") == strlen(after) && *after)
		return HOOK_IGNORED; /* deleted ref (Gitea has no 'deleted') */
	json_t *repo = json_object_get(p, "repository");
	const char *url = hook_jstr(repo, "html_url");
	if (!url)
		url = hook_jstr(repo, "clone_url");
	if (!url)
		url = hook_jstr(repo, "url");
	const char *project = hook_jstr(repo, "full_name");

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
		github_commit_change(c, commit, branch, url, project, category, event);
		c->src = src;
	}
	json_t *head = json_object_get(p, "head_commit");
	if (n == 0 && json_is_object(head)) {
		/* a tag (or a branch) pushed at an existing commit: no new commits */
		struct change *c = hook_push_change(&v, &n);
		github_commit_change(c, head, branch, url, project, category, event);
		c->src = src;
	}
	*ret = v;
	*ret_n = n;
	return hook_truncated(total, ret_err);
}

/* Shared with Gitea ("synchronized" there, "synchronize" here). */
int hook_github_pull(json_t *p, const char *event, const char *src, struct change **ret,
		     size_t *ret_n, char **ret_err)
{
	static const char *const actions[] = {"opened",       "reopened", "synchronize",
					      "synchronized", "edited",   NULL};
	const char *action = hook_jstr(p, "action");
	json_t *pr = json_object_get(p, "pull_request");
	if (!action || !json_is_object(pr)) {
		*ret_err = xstrdup("malformed pull_request payload: no 'action' or 'pull_request'");
		return KILN_EPARSE;
	}
	if (!hook_in_list(action, actions))
		return HOOK_IGNORED;
	const char *sha = hook_jpath(pr, "head", "sha", NULL);
	const char *ref = hook_jpath(pr, "head", "ref", NULL);
	if (!sha || !ref) {
		*ret_err = xstrdup("malformed pull_request payload: no head sha or ref");
		return KILN_EPARSE;
	}
	json_int_t number = json_integer_value(json_object_get(p, "number"));
	if (!number)
		number = json_integer_value(json_object_get(pr, "number"));
	const char *title = hook_jstr(pr, "title");
	const char *body = hook_jstr(pr, "body");

	struct change *v = NULL;
	size_t n = 0;
	struct change *c = hook_push_change(&v, &n);
	c->src = src;
	c->category = xstrdup("pull");
	c->revision = xstrdup(sha);
	c->branch = xstrdup(ref);
	c->author = hook_who(json_object_get(pr, "user"));
	if (!c->author)
		c->author = hook_who(json_object_get(p, "sender"));
	c->comments = xasprintf("Pull request #%lld: %s\n\n%s", (long long)number,
				title ? title : "", body ? body : "");
	c->revlink = dup_or_null(hook_jstr(pr, "html_url"));
	const char *repo = hook_jpath(pr, "base", "repo", "html_url", NULL);
	if (!repo)
		repo = hook_jpath(p, "repository", "html_url", NULL);
	c->repository = dup_or_null(repo);
	const char *project = hook_jpath(pr, "base", "repo", "full_name", NULL);
	if (!project)
		project = hook_jpath(p, "repository", "full_name", NULL);
	c->project = dup_or_null(project);
	double when;
	if (hook_parse_time(hook_jstr(pr, "updated_at"), &when) == 0)
		c->when = when;
	change_set_property(c, "event", json_string(event));
	change_set_property(c, "pullrequesturl", json_string(c->revlink ? c->revlink : ""));
	change_set_property(c, "number", json_integer(number));
	const char *base = hook_jpath(pr, "base", "ref", NULL);
	change_set_property(c, "basename", json_string(base ? base : ""));
	change_set_property(c, "headname", json_string(ref));
	const char *head_repo = hook_jpath(pr, "head", "repo", "clone_url", NULL);
	if (head_repo)
		change_set_property(c, "head_repository", json_string(head_repo));
	*ret = v;
	*ret_n = n;
	return 0;
}

int hook_github_parse(const char *event, const char *body, size_t len, struct change **ret,
		      size_t *ret_n, char **ret_err)
{
	*ret = NULL;
	*ret_n = 0;
	if (!event || !*event) {
		*ret_err = xstrdup("missing X-GitHub-Event header");
		return KILN_EPARSE;
	}
	bool known =
		!strcmp(event, "push") || !strcmp(event, "pull_request") || !strcmp(event, "ping");
	if (!known && !hook_in_list(event, github_ignored)) {
		*ret_err = xasprintf("unknown GitHub event type '%.64s'", event);
		return KILN_EPARSE;
	}
	json_t *p;
	int r = hook_load_object(body, len, &p, ret_err);
	if (r < 0)
		return r;
	if (!strcmp(event, "push"))
		r = hook_github_push(p, event, "git", ret, ret_n, ret_err);
	else if (!strcmp(event, "pull_request"))
		r = hook_github_pull(p, event, "git", ret, ret_n, ret_err);
	else if (!strcmp(event, "ping"))
		r = 0;
	else
		r = HOOK_IGNORED;
	json_decref(p);
	return r;
}
