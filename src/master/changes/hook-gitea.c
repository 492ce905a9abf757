/*
 * Gitea's (and Forgejo's) webhook payloads into changes (hook.h).  Gitea
 * sends GitHub-shaped push and pull_request payloads, so the work is done
 * by hook-github.c's helpers; this file knows Gitea's event names.
 */
#include "master/changes/hook.h"

#include <string.h>

#include "common/err.h"
#include "common/xalloc.h"

static const char *const gitea_ignored[] = {
	"create",
	"delete",
	"fork",
	"issues",
	"issue_assign",
	"issue_label",
	"issue_milestone",
	"issue_comment",
	"pull_request_assign",
	"pull_request_label",
	"pull_request_milestone",
	"pull_request_comment",
	"pull_request_review_approved",
	"pull_request_review_rejected",
	"pull_request_review_comment",
	"pull_request_review_request",
	"pull_request_rejected",
	"pull_request_approved",
	"pull_request_sync",
	"wiki",
	"repository",
	"release",
	"package",
	"status",
	"workflow_job",
	"workflow_run",
	"schedule",
	NULL,
};

int hook_gitea_parse(const char *event, const char *body, size_t len, struct change **ret,
		     size_t *ret_n, char **ret_err)
{
	*ret = NULL;
	*ret_n = 0;
	if (!event || !*event) {
		*ret_err = xstrdup("missing X-Gitea-Event header");
		return KILN_EPARSE;
	}
	bool known = !strcmp(event, "push") || !strcmp(event, "pull_request");
	if (!known && !hook_in_list(event, gitea_ignored)) {
		*ret_err = xasprintf("unknown Gitea event type '%.64s'", event);
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
	else
		r = HOOK_IGNORED;
	json_decref(p);
	return r;
}
