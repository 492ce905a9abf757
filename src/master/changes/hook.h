/*
 * The change hooks: POST /change_hook/DIALECT turns a request into changes.
 * hook.c is the HTTP side (routing, tokens and signatures, answers); the
 * parsers below are pure (no master, no I/O) so the unit tests and the
 * fuzz target call them directly.
 *
 * Adding a new dialect: a hook-NAME.c with a hook_NAME_parse() of the
 * shape below, its signature check in hook.c, one line in hook.c's
 * dialect table, a key in config-changes.c's change_hook, and tests.
 */
#ifndef KILN_CHANGES_HOOK_H
#define KILN_CHANGES_HOOK_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "master/changes/change.h"

/* Parsers return 0 with *ret and *ret_n (the changes, maybe none: a ping),
 * HOOK_IGNORED for a valid event that makes no change (an issue comment,
 * a closed pull request, a deleted branch), HOOK_TRUNCATED with the
 * changes of a push listing more than KILN_MAX_HOOK_COMMITS commits (only
 * the newest taken; *ret_err says so, owned), or KILN_EPARSE with *ret_err
 * (owned, one line) for malformed input or an unknown event type.  The
 * changes are freed with change_list_free(). */
enum { HOOK_IGNORED = 1, HOOK_TRUNCATED = 2 };

/* Buildbot's base dialect: form fields (application/x-www-form-urlencoded)
 * or one JSON object, with author (or who), committer, files (a JSON
 * list), comments, revision, when_timestamp, branch, category, revlink,
 * properties (a JSON object), repository, project, codebase. */
int hook_base_parse(const char *content_type, const char *body, size_t len, struct change **ret,
		    size_t *ret_n, char **ret_err);

/* GitHub: event from X-GitHub-Event (push, pull_request, ping; others
 * known to GitHub are ignored).  body is the JSON payload. */
int hook_github_parse(const char *event, const char *body, size_t len, struct change **ret,
		      size_t *ret_n, char **ret_err);
/* GitLab: event from X-Gitlab-Event ("Push Hook", "Tag Push Hook",
 * "Merge Request Hook"; other GitLab hooks ignored). */
int hook_gitlab_parse(const char *event, const char *body, size_t len, struct change **ret,
		      size_t *ret_n, char **ret_err);
/* Gitea (and Forgejo): event from X-Gitea-Event (push, pull_request). */
int hook_gitea_parse(const char *event, const char *body, size_t len, struct change **ret,
		     size_t *ret_n, char **ret_err);

/* ---- shared by the parsers (hook-json.c) ---- */
/* A string member or NULL (not a string, or absent). */
const char *hook_jstr(json_t *obj, const char *key);
/* obj.a.b... as a string (NULL-terminated path), or NULL. */
const char *hook_jpath(json_t *obj, ...) __attribute__((sentinel));
/* "Name <email>" from an object with name/email (either may be absent),
 * else username/login; NULL when none (owned result). */
char *hook_who(json_t *person);
/* ISO 8601 ("2024-01-02T03:04:05Z", "...+02:00", fractions) to epoch
 * seconds; -EINVAL if malformed. */
int hook_parse_time(const char *s, double *ret);
/* Appends the strings of the arrays added, modified and removed of commit
 * to c->files (non-strings skipped; null arrays allowed). */
void hook_commit_files(struct change *c, json_t *commit);
/* Loads body as a JSON object; KILN_EPARSE and *ret_err otherwise. */
int hook_load_object(const char *body, size_t len, json_t **ret, char **ret_err);
/* Appends a zeroed change to *v (growing it, amortised O(1)); returns it.
 * *v must have been grown only by this function, from NULL and 0. */
struct change *hook_push_change(struct change **v, size_t *n);
/* GitHub-shaped push and pull_request payloads (GitHub and Gitea): p is
 * the payload object, event goes into the "event" property, src is the
 * changes' source ("git"). */
int hook_github_push(json_t *p, const char *event, const char *src, struct change **ret,
		     size_t *ret_n, char **ret_err);
int hook_github_pull(json_t *p, const char *event, const char *src, struct change **ret,
		     size_t *ret_n, char **ret_err);
/* What a push parser returns after taking the newest of total commits:
 * 0, or HOOK_TRUNCATED with *ret_err saying so past KILN_MAX_HOOK_COMMITS. */
int hook_truncated(size_t total, char **ret_err);
/* Is name in the NULL-terminated list? */
bool hook_in_list(const char *name, const char *const *list);

#endif
