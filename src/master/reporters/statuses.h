/*
 * Commit statuses (slice "statuses"; docs/REPORTERS.md): the kinds github,
 * gitlab, gitea, bitbucket and gerrit, one file each (github.c ...), share
 * the engine in statuses.c: a status is composed when a build starts
 * (pending) and when it finishes, queued as a row of the database's
 * outbound table in the build event's own write batch (never the same
 * state twice for a repository, revision and context), and sent oldest
 * first, one request at a time per reporter, until the peer answers 2xx:
 * 5xx and network errors are retried with backoff, a 4xx other than 429
 * drops the row with a logged error, and rate limits (Retry-After,
 * X-RateLimit-*, RateLimit-*) hold the reporter until their reset.
 */
#ifndef KILN_MASTER_REPORTERS_STATUSES_H
#define KILN_MASTER_REPORTERS_STATUSES_H

#include "master/reporters/reporters.h"
#include "common/buf.h"

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>

#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

/* A status body and path, at most. */
#define STATUSES_MAX_BODY (64u << 10)
#define STATUSES_MAX_PATH 4096
/* GitHub's limit on a description (bytes here, cut on a UTF-8 boundary). */
#define STATUSES_MAX_DESCRIPTION 140

/* What a status is made from. */
struct statuses_event {
	const struct report_build *rb;
	bool started;           /* the build started: pending / running / INPROGRESS */
	const char *repository; /* the sourcestamp's repository URL, or NULL */
	const char *sha;        /* the revision built, or NULL */
	const char *change;     /* gerrit: event.change.number, or NULL */
	const char *patchset;   /* gerrit: event.patchSet.revision, or NULL */
};

/* One request as the outbound table keeps it. */
struct statuses_req {
	const char *state; /* static: "pending", "success", "+1" ... */
	struct buf path;   /* below the reporter's base URL: "/repos/o/r/statuses/SHA" */
	struct buf body;   /* JSON */
	struct buf key;    /* what "the same status" means: "o/r|SHA|context" */
};
void statuses_req_init(struct statuses_req *q);
void statuses_req_release(struct statuses_req *q);

/* A kind's part: its request and its credentials. */
struct statuses_kind {
	/* 1: q filled; 0: nothing to send for this event (*why says, static);
	 * negative: cannot be composed (*why says). */
	int (*request)(const struct config_reporter *cfg, const struct statuses_event *ev,
		       struct statuses_req *q, const char **why);
	/* Adds the credentials (headers to l, or options on h); returns l. */
	struct curl_slist *(*auth)(const struct config_reporter *cfg, CURL *h,
				   struct curl_slist *l);
};
extern const struct statuses_kind statuses_github, statuses_gitlab, statuses_gitea,
	statuses_bitbucket, statuses_gerrit;

/* ---- shared, pure (tests/unit/test-statuses.c) ---------------------------- */

/* The path of a repository URL: "https://github.com/acme/widget.git",
 * "git@github.com:acme/widget.git", "ssh://git@host:22/acme/widget" ->
 * "acme/widget" (a trailing ".git" and '/' dropped; GitLab subgroups
 * kept: "group/sub/widget").  0, or -EINVAL: not such a URL, or a segment
 * with characters other than letters, digits and -._~. */
int statuses_repo_path(const char *url, char *out, size_t n);
/* owner and repo: the configured ones, else the last two segments of the
 * repository URL's path.  0, or -EINVAL. */
int statuses_owner_repo(const struct config_reporter *cfg, const char *repository, char *owner,
			size_t on, char *repo, size_t rn);
/* The state kind sends for a started build (started) or a finished one
 * with results; NULL: none (gerrit does not vote on a start). */
const char *statuses_state(enum config_reporter_kind kind, bool started, int results);
/* A revision: 4 to 64 hex digits. */
bool statuses_sha_ok(const char *sha);
/* The context: cfg's, "{builder}" replaced by the builder's name. */
int statuses_context(const struct config_reporter *cfg, const struct report_build *rb,
		     struct buf *out);
/* "Build started." / "Build done: failure (failed 'make test')", cut to
 * STATUSES_MAX_DESCRIPTION bytes on a UTF-8 boundary. */
void statuses_description(const struct statuses_event *ev, char *out, size_t n);
/* s percent-encoded as one path segment (unreserved characters kept). */
int statuses_segment(struct buf *out, const char *s);
/* HTTP basic login user:password on h. */
void statuses_basic_auth(CURL *h, const char *user, const char *password);
/* The JSON object o as compact text into q->body; 0 or -E2BIG. */
int statuses_body(struct statuses_req *q, json_t *o);
/* The end of a kind's request: r (statuses_body's) and q's caps -> 1, or
 * -E2BIG with *why = too_long (static). */
int statuses_finish(struct statuses_req *q, int r, const char **why, const char *too_long);
/* The request of github and gitea:
 *   POST PREFIX/repos/OWNER/REPO/statuses/SHA
 *   {"state", "target_url", "description", "context"}
 * (prefix: "" for GitHub, "/api/v1" for Gitea). */
int statuses_repos_request(const char *prefix, const struct config_reporter *cfg,
			   const struct statuses_event *ev, struct statuses_req *q,
			   const char **why);

/* The rate-limit and retry rules (pure): what to do with a reply. */
enum statuses_verdict {
	STATUSES_DONE,    /* 2xx: delete the row */
	STATUSES_REFUSED, /* 4xx other than 429 / rate limit: drop, logged */
	STATUSES_LIMITED, /* rate limited: hold until *ret_at */
	STATUSES_RETRY,   /* 5xx, network: retry at *ret_at (backoff) */
};
struct statuses_reply {
	long code;             /* 0: no reply (network error, timeout) */
	long long retry_after; /* Retry-After seconds, -1: none */
	long long remaining;   /* X-RateLimit-Remaining / RateLimit-Remaining, -1: none */
	long long reset;       /* X-RateLimit-Reset / RateLimit-Reset (epoch s), -1: none */
};
/* now_ms: wall clock (epoch ms); attempts: failed attempts before this one;
 * backoff_ms: before the second try, doubling, at most 64 times, an hour at
 * most.  A 2xx with remaining 0 also holds the reporter until reset
 * (*ret_at, else 0). */
enum statuses_verdict statuses_judge(const struct statuses_reply *rp, int64_t now_ms, int attempts,
				     uint64_t backoff_ms, int64_t *ret_at);

/* ---- the engine (statuses.c): every kind's struct reporter_kind ------------- */
int statuses_start(struct reporter *r, struct curl_uv *cu);
void statuses_build_started(struct reporter *r, const struct report_build *rb);
void statuses_build_finished(struct reporter *r, const struct report_build *rb);
void statuses_stop(struct reporter *r);

#endif
