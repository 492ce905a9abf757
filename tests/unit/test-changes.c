/*
 * Unit tests for the change sources (src/master/changes/) and their storage
 * (db-sqlite-changes.c): "who" parsing, the webhook payload parsers (base,
 * GitHub, GitLab, Gitea), the git/hg/svn output parsers, and changes,
 * users, blamelists and object state in a real SQLite database.
 */
#include "tap.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "db/db.h"
#include "master/changes/change.h"
#include "master/changes/hook.h"
#include "master/changes/poller.h"
#include "master/changes/users.h"

#define CHECK_NULL(a)                                                                              \
	do {                                                                                       \
		if ((a) != NULL)                                                                   \
			TAP_FAIL("%s: want NULL, got '%s'", #a, (const char *)(a));                \
	} while (0)

static const char *prop_str(const struct change *c, const char *name)
{
	json_t *p = json_object_get(c->properties, name);
	return json_string_value(json_array_get(p, 0));
}

TEST(who_parsing)
{
	struct users_who w;
	users_parse_who("Ann Dev <ann@example.org>", &w);
	CHECK_STR(w.full_name, "Ann Dev");
	CHECK_STR(w.email, "ann@example.org");
	CHECK_NULL(w.username);
	users_who_release(&w);

	users_parse_who("  bob  ", &w);
	CHECK_STR(w.username, "bob");
	CHECK_NULL(w.email);
	CHECK_NULL(w.full_name);
	users_who_release(&w);

	users_parse_who("carol@example.org", &w);
	CHECK_STR(w.email, "carol@example.org");
	users_who_release(&w);

	users_parse_who("<dave@example.org>", &w);
	CHECK_NULL(w.full_name);
	CHECK_STR(w.email, "dave@example.org");
	users_who_release(&w);

	users_parse_who("Eve Q. Public", &w);
	CHECK_STR(w.full_name, "Eve Q. Public");
	users_who_release(&w);

	users_parse_who("Frank <frank>", &w);
	CHECK_STR(w.full_name, "Frank");
	CHECK_STR(w.username, "frank");
	CHECK_NULL(w.email);
	users_who_release(&w);

	users_parse_who("Broken <no end", &w);
	CHECK_STR(w.full_name, "Broken <no end");
	users_who_release(&w);
	users_parse_who(NULL, &w);
	CHECK_NULL(w.full_name);
	users_parse_who("", &w);
	CHECK_NULL(w.username);
}

TEST(iso8601_times)
{
	double t;
	CHECK_INT(hook_parse_time("2023-11-14T22:13:20Z", &t), 0);
	CHECK_INT((long long)t, 1700000000);
	CHECK_INT(hook_parse_time("2023-11-14T23:13:20+01:00", &t), 0);
	CHECK_INT((long long)t, 1700000000);
	CHECK_INT(hook_parse_time("2023-11-14T17:13:20-0500", &t), 0);
	CHECK_INT((long long)t, 1700000000);
	CHECK_INT(hook_parse_time("2023-11-14T22:13:20.250000Z", &t), 0);
	CHECK(fabs(t - 1700000000.25) < 1e-6);
	CHECK_INT(hook_parse_time("2023-11-14 22:13:20 +0000", &t),
		  -EINVAL); /* space before zone */
	CHECK_INT(hook_parse_time("2023-13-14T22:13:20Z", &t), -EINVAL);
	CHECK_INT(hook_parse_time("yesterday", &t), -EINVAL);
	CHECK_INT(hook_parse_time("", &t), -EINVAL);
	CHECK_INT(hook_parse_time(NULL, &t), -EINVAL);
}

/* The body Buildbot 3.7 was sent (api-samples/POST_change_hook_base.txt). */
static const char base_form[] =
	"author=Alice+Example+%3Calice%40example.org%3E&comments=Fix+the+frobnicator%0A%0ALonger+"
	"description+here.&files=%5B%22src%2Ffrob.c%22%2C+%22include%2Ffrob.h%22%5D&branch=dev&"
	"revision=0123456789abcdef0123456789abcdef01234567&repository=https%3A%2F%2Fexample.org%2F"
	"repo.git&project=kiln-demo&category=push&properties=%7B%22ticket%22%3A+%22KILN-42%22%2C+"
	"%22count%22%3A+3%7D&revlink=https%3A%2F%2Fexample.org%2Frepo%2Fcommit%2F0123456&"
	"when_timestamp=1700000000&codebase=";

TEST(base_form_and_json)
{
	struct change *v;
	size_t n;
	char *err = NULL;
	CHECK_INT(hook_base_parse("application/x-www-form-urlencoded", base_form, strlen(base_form),
				  &v, &n, &err),
		  0);
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_STR(v[0].author, "Alice Example <alice@example.org>");
		CHECK_STR(v[0].comments, "Fix the frobnicator\n\nLonger description here.");
		CHECK_INT(v[0].nfiles, 2);
		CHECK_STR(v[0].files[0], "src/frob.c");
		CHECK_STR(v[0].files[1], "include/frob.h");
		CHECK_STR(v[0].branch, "dev");
		CHECK_STR(v[0].codebase, "");
		CHECK_STR(prop_str(&v[0], "ticket"), "KILN-42");
		CHECK_STR(json_string_value(
				  json_array_get(json_object_get(v[0].properties, "count"), 1)),
			  "Change");
		CHECK_INT((long long)v[0].when, 1700000000);
	}
	change_list_free(v, n);

	const char *js = "{\"who\": \"bob\", \"files\": [\"a\", \"b/c\"], \"properties\": "
			 "{\"x\": [1, 2]}, \"when_timestamp\": 1700000001.5, \"branch\": null, "
			 "\"src\": \"svn\", \"unknown\": 1}";
	CHECK_INT(hook_base_parse("application/json; charset=utf-8", js, strlen(js), &v, &n, &err),
		  0);
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_STR(v[0].author, "bob");
		CHECK_INT(v[0].nfiles, 2);
		CHECK(v[0].branch == NULL);
		CHECK_STR(v[0].src, "svn");
		CHECK(fabs(v[0].when - 1700000001.5) < 1e-6);
	}
	change_list_free(v, n);
}

static void expect_base_error(const char *ctype, const char *body, const char *want)
{
	struct change *v = (struct change *)1;
	size_t n = 7;
	char *err = NULL;
	int r = hook_base_parse(ctype, body, strlen(body), &v, &n, &err);
	CHECK_INT(r, KILN_EPARSE);
	CHECK(v == NULL && n == 0);
	if (!err || !strstr(err, want))
		TAP_FAIL("error for '%s': got '%s', want '%s'", body, err ? err : "(null)", want);
	free(err);
}

TEST(base_bad_input)
{
	const char *form = "application/x-www-form-urlencoded";
	expect_base_error(form, "author=a&files=%5Bnot+json", "'files' is not valid JSON");
	expect_base_error(form, "author=a&files=%7B%7D", "JSON list");
	expect_base_error(form, "author=a&properties=%5B1%5D", "JSON object");
	expect_base_error(form, "author=a&when_timestamp=soon", "seconds since the epoch");
	expect_base_error(form, "comments=x", "no author");
	expect_base_error(form, "author=%ZZ", "malformed form body");
	expect_base_error("application/json", "{\"author\": ", "malformed JSON");
	expect_base_error("application/json", "[1]", "not a JSON object");
	expect_base_error("application/json", "{\"author\": 5}", "must be a string");
	expect_base_error("application/json", "{\"author\": \"a\", \"files\": [1]}", "JSON list");
}

static const char github_push[] =
	"{\"ref\": \"refs/heads/main\", \"before\": \"1111111111111111111111111111111111111111\","
	" \"after\": \"2222222222222222222222222222222222222222\", \"deleted\": false,"
	" \"repository\": {\"full_name\": \"octo/hello\", \"html_url\": "
	"\"https://github.com/octo/hello\", \"clone_url\": \"https://github.com/octo/hello.git\"},"
	" \"commits\": ["
	"  {\"id\": \"aaaa\", \"distinct\": true, \"message\": \"one\\n\\nbody\", \"timestamp\": "
	"\"2023-11-14T23:13:20+01:00\", \"url\": \"https://github.com/octo/hello/commit/aaaa\","
	"   \"author\": {\"name\": \"Ann Dev\", \"email\": \"ann@example.org\", \"username\": "
	"\"ann\"},"
	"   \"committer\": {\"name\": \"GitHub\", \"email\": \"noreply@github.com\"},"
	"   \"added\": [\"new.c\"], \"removed\": [\"old.c\"], \"modified\": [\"README\"]},"
	"  {\"id\": \"bbbb\", \"message\": \"two\", \"author\": {\"username\": \"bob\"},"
	"   \"added\": [], \"removed\": [], \"modified\": [\"x\"]}"
	" ],"
	" \"head_commit\": {\"id\": \"bbbb\"}}";

TEST(github_push_and_tags)
{
	struct change *v;
	size_t n;
	char *err = NULL;
	CHECK_INT(hook_github_parse("push", github_push, strlen(github_push), &v, &n, &err), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_STR(v[0].author, "Ann Dev <ann@example.org>");
		CHECK_STR(v[0].committer, "GitHub <noreply@github.com>");
		CHECK_STR(v[0].revision, "aaaa");
		CHECK_STR(v[0].branch, "main");
		CHECK_STR(v[0].category, "push");
		CHECK_STR(v[0].repository, "https://github.com/octo/hello");
		CHECK_STR(v[0].project, "octo/hello");
		CHECK_STR(v[0].comments, "one\n\nbody");
		CHECK_STR(v[0].revlink, "https://github.com/octo/hello/commit/aaaa");
		CHECK_INT((long long)v[0].when, 1700000000);
		CHECK_INT(v[0].nfiles, 3);
		CHECK_STR(v[0].files[0], "new.c");
		CHECK_STR(v[0].files[1], "README");
		CHECK_STR(v[0].files[2], "old.c");
		CHECK_STR(prop_str(&v[0], "event"), "push");
		CHECK_STR(v[1].author, "bob");
		CHECK_INT(v[1].nfiles, 1);
	}
	change_list_free(v, n);

	const char *tag = "{\"ref\": \"refs/tags/v1.0\", \"after\": \"cccc\", \"commits\": [],"
			  " \"head_commit\": {\"id\": \"cccc\", \"message\": \"release\","
			  " \"author\": {\"name\": \"A\", \"email\": \"a@x\"}},"
			  " \"repository\": {\"html_url\": \"https://x/y\"}}";
	CHECK_INT(hook_github_parse("push", tag, strlen(tag), &v, &n, &err), 0);
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_STR(v[0].branch, "v1.0");
		CHECK_STR(v[0].category, "tag");
		CHECK_STR(v[0].revision, "cccc");
	}
	change_list_free(v, n);

	const char *del = "{\"ref\": \"refs/heads/gone\", \"deleted\": true, \"after\": "
			  "\"0000000000000000000000000000000000000000\", \"commits\": []}";
	CHECK_INT(hook_github_parse("push", del, strlen(del), &v, &n, &err), HOOK_IGNORED);
	const char *notes = "{\"ref\": \"refs/notes/commits\", \"commits\": []}";
	CHECK_INT(hook_github_parse("push", notes, strlen(notes), &v, &n, &err), HOOK_IGNORED);
}

TEST(github_pull_ping_and_errors)
{
	const char *pr =
		"{\"action\": \"synchronize\", \"number\": 7, \"pull_request\": {\"number\": 7,"
		" \"title\": \"Add x\", \"body\": \"Please\", \"html_url\": "
		"\"https://github.com/o/r/pull/7\", \"updated_at\": \"2023-11-14T22:13:20Z\","
		" \"user\": {\"login\": \"carol\"},"
		" \"head\": {\"ref\": \"feature\", \"sha\": \"dddd\", \"repo\": {\"clone_url\": "
		"\"https://github.com/c/r.git\"}},"
		" \"base\": {\"ref\": \"main\", \"repo\": {\"html_url\": "
		"\"https://github.com/o/r\","
		" \"full_name\": \"o/r\"}}}}";
	struct change *v;
	size_t n;
	char *err = NULL;
	CHECK_INT(hook_github_parse("pull_request", pr, strlen(pr), &v, &n, &err), 0);
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_STR(v[0].category, "pull");
		CHECK_STR(v[0].revision, "dddd");
		CHECK_STR(v[0].branch, "feature");
		CHECK_STR(v[0].author, "carol");
		CHECK_STR(v[0].repository, "https://github.com/o/r");
		CHECK_STR(v[0].comments, "Pull request #7: Add x\n\nPlease");
		CHECK_STR(prop_str(&v[0], "basename"), "main");
		CHECK_INT((long long)v[0].when, 1700000000);
	}
	change_list_free(v, n);

	const char *closed = "{\"action\": \"closed\", \"pull_request\": {}}";
	CHECK_INT(hook_github_parse("pull_request", closed, strlen(closed), &v, &n, &err),
		  HOOK_IGNORED);
	const char *ping = "{\"zen\": \"hi\"}";
	CHECK_INT(hook_github_parse("ping", ping, strlen(ping), &v, &n, &err), 0);
	CHECK_INT(n, 0);
	CHECK_INT(hook_github_parse("issues", "{}", 2, &v, &n, &err), HOOK_IGNORED);

	err = NULL;
	CHECK_INT(hook_github_parse("bogus", "{}", 2, &v, &n, &err), KILN_EPARSE);
	CHECK(err && strstr(err, "unknown GitHub event type 'bogus'"));
	free(err);
	err = NULL;
	CHECK_INT(hook_github_parse("", "{}", 2, &v, &n, &err), KILN_EPARSE);
	CHECK(err && strstr(err, "X-GitHub-Event"));
	free(err);
	err = NULL;
	CHECK_INT(hook_github_parse("push", "{\"ref\": ", 8, &v, &n, &err), KILN_EPARSE);
	CHECK(err && strstr(err, "malformed JSON"));
	free(err);
	err = NULL;
	CHECK_INT(hook_github_parse("push", "{\"commits\": []}", 15, &v, &n, &err), KILN_EPARSE);
	free(err);
	err = NULL;
	CHECK_INT(hook_github_parse("push", "{\"ref\": \"refs/heads/x\", \"commits\": 5}", 37, &v,
				    &n, &err),
		  KILN_EPARSE);
	free(err);
}

TEST(gitlab_push_and_merge_request)
{
	const char *push =
		"{\"object_kind\": \"push\", \"ref\": \"refs/heads/dev\", \"after\": \"eeee\","
		" \"checkout_sha\": \"eeee\", \"user_name\": \"Ann\","
		" \"project\": {\"path_with_namespace\": \"grp/proj\", \"git_http_url\": "
		"\"https://gitlab.example/grp/proj.git\"},"
		" \"commits\": [{\"id\": \"eeee\", \"message\": \"fix\\n\", \"timestamp\": "
		"\"2023-11-14T22:13:20+00:00\", \"url\": \"https://gitlab.example/c/eeee\","
		" \"author\": {\"name\": \"Ann Dev\", \"email\": \"ann@example.org\"},"
		" \"added\": [\"a\"], \"modified\": [], \"removed\": [\"b\"]}]}";
	struct change *v;
	size_t n;
	char *err = NULL;
	CHECK_INT(hook_gitlab_parse("Push Hook", push, strlen(push), &v, &n, &err), 0);
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_STR(v[0].branch, "dev");
		CHECK_STR(v[0].author, "Ann Dev <ann@example.org>");
		CHECK_STR(v[0].repository, "https://gitlab.example/grp/proj.git");
		CHECK_STR(v[0].project, "grp/proj");
		CHECK_INT(v[0].nfiles, 2);
		CHECK_INT((long long)v[0].when, 1700000000);
	}
	change_list_free(v, n);

	const char *mr =
		"{\"object_kind\": \"merge_request\", \"user\": {\"name\": \"Bob\", \"username\": "
		"\"bob\"}, \"object_attributes\": {\"iid\": 3, \"action\": \"open\", \"title\": "
		"\"T\", \"description\": \"D\", \"source_branch\": \"topic\", \"target_branch\": "
		"\"main\", \"url\": \"https://gitlab.example/mr/3\", \"source\": "
		"{\"git_http_url\": "
		"\"https://gitlab.example/fork.git\"}, \"last_commit\": {\"id\": \"ffff\", "
		"\"author\": {\"name\": \"Bob B\", \"email\": \"bob@example.org\"}}}}";
	CHECK_INT(hook_gitlab_parse("Merge Request Hook", mr, strlen(mr), &v, &n, &err), 0);
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_STR(v[0].category, "merge_request");
		CHECK_STR(v[0].revision, "ffff");
		CHECK_STR(v[0].branch, "topic");
		CHECK_STR(v[0].author, "Bob B <bob@example.org>");
		CHECK_STR(v[0].repository, "https://gitlab.example/fork.git");
		CHECK_STR(prop_str(&v[0], "target_branch"), "main");
	}
	change_list_free(v, n);

	const char *merged = "{\"object_attributes\": {\"action\": \"merge\"}}";
	CHECK_INT(hook_gitlab_parse("Merge Request Hook", merged, strlen(merged), &v, &n, &err),
		  HOOK_IGNORED);
	CHECK_INT(hook_gitlab_parse("Issue Hook", "{}", 2, &v, &n, &err), HOOK_IGNORED);
	CHECK_INT(hook_gitlab_parse("Nope Hook", "{}", 2, &v, &n, &err), KILN_EPARSE);
	free(err);
}

TEST(gitea_push)
{
	const char *push =
		"{\"ref\": \"refs/heads/main\", \"after\": \"abab\", \"repository\": "
		"{\"full_name\": \"me/r\", \"html_url\": \"https://gitea.example/me/r\"},"
		" \"commits\": [{\"id\": \"abab\", \"message\": \"m\", \"url\": \"u\","
		" \"author\": {\"name\": \"Me\", \"email\": \"me@example.org\", \"username\": "
		"\"me\"}, \"committer\": {\"name\": \"Me\", \"email\": \"me@example.org\"},"
		" \"timestamp\": \"2023-11-14T22:13:20Z\", \"added\": null, \"removed\": null,"
		" \"modified\": [\"f\"]}]}";
	struct change *v;
	size_t n;
	char *err = NULL;
	CHECK_INT(hook_gitea_parse("push", push, strlen(push), &v, &n, &err), 0);
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_STR(v[0].author, "Me <me@example.org>");
		CHECK_INT(v[0].nfiles, 1);
		CHECK_STR(v[0].repository, "https://gitea.example/me/r");
	}
	change_list_free(v, n);
	CHECK_INT(hook_gitea_parse("issues", "{}", 2, &v, &n, &err), HOOK_IGNORED);
	CHECK_INT(hook_gitea_parse("what", "{}", 2, &v, &n, &err), KILN_EPARSE);
	free(err);
}

TEST(git_log_parsing)
{
	/* the bytes `git log --source --format=... --name-only -z` writes */
	static const char out[] = "\x1e"
				  "5906cfdb8d5e1218fc84061e08c8b6634b3c4fac\x1frefs/heads/main\x1f"
				  "Ann Dev <a@b.c>\x1f"
				  "Cy <c@d.e>\x1f"
				  "1700000000\x1f"
				  "first\nbody line\n\x1f"
				  "\0\na.txt\0d/b c.txt\0"
				  "\x1e"
				  "4ab8a2c3cf52b3b3ff5e3e9ebedfa8bb4d1968f5\x1frefs/heads/dev\x1f"
				  "Ann Dev <a@b.c>\x1f"
				  "Ann Dev <a@b.c>\x1f"
				  "1700000001\x1f"
				  "third \x1e not a "
				  "record\n\x1f\0\ny\0";
	struct change *v;
	size_t n;
	CHECK_INT(poller_git_parse_log(out, sizeof(out) - 1, &v, &n), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_STR(v[0].revision, "5906cfdb8d5e1218fc84061e08c8b6634b3c4fac");
		CHECK_STR(v[0].branch, "main");
		CHECK_STR(v[0].author, "Ann Dev <a@b.c>");
		CHECK_STR(v[0].committer, "Cy <c@d.e>");
		CHECK_STR(v[0].comments, "first\nbody line");
		CHECK_INT((long long)v[0].when, 1700000000);
		CHECK_INT(v[0].nfiles, 2);
		CHECK_STR(v[0].files[1], "d/b c.txt");
		CHECK_STR(v[1].branch, "dev");
		CHECK_STR(v[1].comments, "third \x1e not a record");
		CHECK_INT(v[1].nfiles, 1);
	}
	change_list_free(v, n);
	CHECK_INT(poller_git_parse_log("", 0, &v, &n), 0);
	CHECK_INT(n, 0);
	free(v);
	static const char bad[] = "\x1e"
				  "5906cfdb8d5e1218fc84061e08c8b6634b3c4fac\x1fonly";
	CHECK_INT(poller_git_parse_log(bad, sizeof(bad) - 1, &v, &n), -EINVAL);

	static const char refs[] =
		"5906cfdb8d5e1218fc84061e08c8b6634b3c4fac\x1f\x1frefs/heads/main\x1f"
		"Ann <a@b>\x1f"
		"1700000000\x1fsubj\n"
		"1111111111111111111111111111111111111111\x1f"
		"5906cfdb8d5e1218fc84061e08c8b6634b3c4fac\x1frefs/tags/v1\x1fT <t@x>\x1f"
		"1700000002\x1frelease\n";
	json_t *r;
	CHECK_INT(poller_git_parse_refs(refs, sizeof(refs) - 1, &r), 0);
	CHECK_STR(json_string_value(json_object_get(json_object_get(r, "refs/heads/main"), "sha")),
		  "5906cfdb8d5e1218fc84061e08c8b6634b3c4fac");
	CHECK_STR(json_string_value(json_object_get(json_object_get(r, "refs/tags/v1"), "commit")),
		  "5906cfdb8d5e1218fc84061e08c8b6634b3c4fac");
	json_decref(r);
	CHECK_INT(poller_git_parse_refs("zz refs/heads/x\n", 16, &r), -EINVAL);
}

TEST(hg_log_parsing)
{
	static const char out[] = "\x1e"
				  "fba69c01cb5df619b622bd2d376f4da1c640c29a\x1f"
				  "0\x1f"
				  "Ann Dev <a@b.c>\x1f"
				  "1700000000 0\x1f"
				  "default\x1f"
				  "first\nbody\x1f"
				  "a\x1d"
				  "d/b c\x1f"
				  "\x1e"
				  "cd4e378c58e4e3018deef38ee451b2e57cac3bab\x1f"
				  "1\x1f"
				  "Bob <b@b.c>\x1f"
				  "1700000001 -3600\x1f"
				  "feature\x1f"
				  "second \x1f inside\x1f"
				  "c\x1f";
	struct change *v;
	size_t n;
	CHECK_INT(poller_hg_parse_log(out, sizeof(out) - 1, &v, &n), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_STR(v[0].revision, "fba69c01cb5df619b622bd2d376f4da1c640c29a");
		CHECK_STR(v[0].author, "Ann Dev <a@b.c>");
		CHECK_STR(v[0].branch, "default");
		CHECK_STR(v[0].comments, "first\nbody");
		CHECK_INT(v[0].nfiles, 2);
		CHECK_STR(v[0].files[1], "d/b c");
		CHECK_INT((long long)v[1].when, 1700000001);
		CHECK_STR(v[1].comments, "second \x1f inside");
		CHECK_INT(v[1].nfiles, 1);
	}
	change_list_free(v, n);
}

TEST(svn_log_parsing)
{
	static const char out[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<log>\n"
		"<logentry\n   revision=\"3\">\n<author>ann</author>\n"
		"<date>2023-11-14T22:13:20.123456Z</date>\n<paths>\n"
		"<path\n   prop-mods=\"false\"\n   text-mods=\"true\"\n   kind=\"file\"\n"
		"   action=\"M\">/trunk/src/a &amp; b.c</path>\n"
		"<path action=\"A\" kind=\"file\">/branches/x/elsewhere.c</path>\n"
		"<path action=\"D\" kind=\"file\">/trunk/old.c</path>\n"
		"</paths>\n<msg>fix &lt;bug&gt; #1</msg>\n</logentry>\n"
		"<logentry revision=\"4\">\n<date>2023-11-14T22:13:21.000000Z</date>\n"
		"<paths><path action=\"M\">/trunk</path></paths><msg></msg>\n</logentry>\n</log>\n";
	struct change *v;
	size_t n;
	CHECK_INT(poller_svn_parse_log(out, sizeof(out) - 1, "/trunk", &v, &n), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_STR(v[0].revision, "3");
		CHECK_STR(v[0].author, "ann");
		CHECK_STR(v[0].comments, "fix <bug> #1");
		CHECK_INT((long long)v[0].when, 1700000000);
		CHECK_INT(v[0].nfiles, 2);
		CHECK_STR(v[0].files[0], "src/a & b.c");
		CHECK_STR(v[0].files[1], "old.c");
		CHECK_STR(v[1].revision, "4");
		CHECK_STR(v[1].author, "");
		CHECK_INT(v[1].nfiles, 0);
	}
	change_list_free(v, n);
	CHECK_INT(poller_svn_parse_log("<log><logentry revision=\"x\"></logentry></log>", 46, "",
				       &v, &n),
		  -EINVAL);
	CHECK_INT(poller_svn_parse_log("<log><logentry", 14, "", &v, &n), 0);
	CHECK_INT(n, 0);
	free(v);
}

/* ---- storage ------------------------------------------------------------------------- */

static struct db *open_mem(void)
{
	struct db *db = NULL;
	if (db_open(NULL, "sqlite::memory:", NULL, &db) < 0)
		TAP_FAIL("db_open: %s", db_open_errmsg());
	return db;
}

static json_t *list_changes(struct db *db, const char *field, const char *value)
{
	const char *vals[] = {value};
	struct db_filter f = {field, DB_OP_EQ, vals, 1};
	struct db_query q = {field ? &f : NULL, field ? 1 : 0, NULL, 0, -1, 0};
	json_t *items = NULL;
	int r = db_list(db, DB_CHANGES, &q, &items, NULL);
	if (r < 0)
		TAP_FAIL("db_list changes: %s", db_errmsg(db));
	return items;
}

static int64_t add_change(struct db *db, const char *author, const char *branch, const char *type)
{
	struct users_who w;
	users_parse_who(author, &w);
	struct db_user_ident u = {type, author, w.full_name, w.email};
	const char *files[] = {"src/frob.c", "include/frob.h"};
	json_t *props =
		json_pack("{s:[s,s],s:[i,s]}", "ticket", "KILN-42", "Change", "count", 3, "Change");
	struct db_change_new c = {
		.author = author,
		.comments = "Fix",
		.branch = branch,
		.revision = "0123456789abcdef0123456789abcdef01234567",
		.revlink = "https://example.org/c",
		.category = "push",
		.repository = "https://example.org/repo.git",
		.project = "kiln-demo",
		.files = files,
		.nfiles = 2,
		.properties = props,
		.when_timestamp = 1700000000.5,
		.user = &u,
	};
	int64_t id = 0, ssid = 0;
	int r = db_change_add(db, &c, &id, &ssid);
	if (r < 0)
		TAP_FAIL("db_change_add: %s", db_errmsg(db));
	json_decref(props);
	users_who_release(&w);
	return id;
}

TEST(db_changes_shape_and_parents)
{
	struct db *db = open_mem();
	int64_t c1 = add_change(db, "Alice Example <alice@example.org>", "dev", "git");
	int64_t c2 = add_change(db, "Alice Example <alice@example.org>", "dev", "git");
	int64_t c3 = add_change(db, "alice@example.org", "main", "who");
	CHECK_INT(c1, 1);
	CHECK_INT(c2, 2);
	json_t *l = list_changes(db, "changeid", "1");
	json_t *c = json_array_get(l, 0);
	CHECK_STR(json_string_value(json_object_get(c, "author")),
		  "Alice Example <alice@example.org>");
	CHECK(json_is_null(json_object_get(c, "committer")));
	CHECK_INT(json_integer_value(json_object_get(c, "when_timestamp")), 1700000000);
	CHECK_INT(json_array_size(json_object_get(c, "files")), 2);
	CHECK_INT(json_array_size(json_object_get(c, "parent_changeids")), 0);
	CHECK_STR(json_string_value(json_array_get(
			  json_object_get(json_object_get(c, "properties"), "ticket"), 0)),
		  "KILN-42");
	json_t *ss = json_object_get(c, "sourcestamp");
	CHECK_STR(json_string_value(json_object_get(ss, "branch")), "dev");
	CHECK_STR(json_string_value(json_object_get(ss, "codebase")), "");
	CHECK(json_is_null(json_object_get(ss, "patch")));
	CHECK(json_is_integer(json_object_get(ss, "ssid")));
	json_decref(l);

	l = list_changes(db, "changeid", "2");
	CHECK_INT(json_integer_value(json_array_get(
			  json_object_get(json_array_get(l, 0), "parent_changeids"), 0)),
		  1);
	json_decref(l);
	l = list_changes(db, "branch", "main");
	CHECK_INT(json_array_size(l), 1);
	json_decref(l);

	/* the same person through git and by bare e-mail: one user */
	int64_t u1 = 0, u3 = 0;
	CHECK_INT(db_change_user(db, c1, &u1), 1);
	CHECK_INT(db_change_user(db, c3, &u3), 1);
	CHECK(u1 > 0 && u1 == u3);
	int64_t c4 = add_change(db, "bob", "main", "svn");
	int64_t u4 = 0;
	CHECK_INT(db_change_user(db, c4, &u4), 1);
	CHECK(u4 != u1);
	db_close(db);
}

TEST(db_buildset_changes_and_blamelist)
{
	struct db *db = open_mem();
	int64_t m, b, w;
	CHECK_INT(db_master_register(db, "m", &m), 0);
	CHECK_INT(db_builder_ensure(db, "b", NULL, NULL, &b), 0);
	CHECK_INT(db_worker_ensure(db, "w", &w), 0);
	int64_t c1 = add_change(db, "Zed <z@x>", "main", "git");
	int64_t c2 = add_change(db, "Amy <a@x>", "main", "git");
	int64_t c3 = add_change(db, "Zed <z@x>", "main", "git");
	struct db_sourcestamp ss = {.branch = "main"};
	struct db_buildset_new bs = {
		.reason = "change", .sourcestamps = &ss, .nsourcestamps = 1, .submitted_at = 1};
	int64_t bsid, brid;
	CHECK_INT(db_buildset_add(db, &bs, &b, 1, &bsid, &brid), 0);
	int64_t ids[] = {c1, c2, c3};
	CHECK_INT(db_buildset_add_changes(db, bsid, ids, 3), 0);
	int64_t bad[] = {999};
	CHECK_INT(db_buildset_add_changes(db, bsid, bad, 1), KILN_ENOTFOUND);
	int64_t buildid, number;
	CHECK_INT(db_build_add(db, b, brid, w, m, 2, &buildid, &number), 0);

	json_t *bl = NULL;
	CHECK_INT(db_build_blamelist(db, buildid, &bl), 0);
	CHECK_INT(json_array_size(bl), 2);
	CHECK_STR(json_string_value(json_array_get(bl, 0)), "Amy <a@x>");
	json_decref(bl);

	char idtext[32];
	snprintf(idtext, sizeof(idtext), "%lld", (long long)buildid);
	json_t *l = list_changes(db, "buildid", idtext);
	CHECK_INT(json_array_size(l), 3);
	json_decref(l);

	/* the build row carries the blamelist property */
	const char *v[] = {idtext};
	struct db_filter f = {"buildid", DB_OP_EQ, v, 1};
	struct db_query q = {&f, 1, NULL, 0, -1, 0};
	json_t *builds = NULL;
	CHECK_INT(db_list(db, DB_BUILDS, &q, &builds, NULL), 0);
	json_t *prop = json_object_get(json_object_get(json_array_get(builds, 0), "properties"),
				       "blamelist");
	CHECK_INT(json_array_size(json_array_get(prop, 0)), 2);
	CHECK_STR(json_string_value(json_array_get(prop, 1)), "Build");
	json_decref(builds);
	db_close(db);
}

TEST(db_object_state)
{
	struct db *db = open_mem();
	json_t *v = NULL;
	CHECK_INT(db_state_get(db, "poller:x", &v), 0);
	json_t *s = json_pack("{s:{s:s}}", "refs", "refs/heads/main", "abc");
	CHECK_INT(db_state_set(db, "poller:x", s), 0);
	json_decref(s);
	CHECK_INT(db_state_get(db, "poller:x", &v), 1);
	CHECK_STR(json_string_value(json_object_get(json_object_get(v, "refs"), "refs/heads/main")),
		  "abc");
	json_decref(v);
	s = json_integer(5);
	CHECK_INT(db_state_set(db, "poller:x", s), 0);
	json_decref(s);
	CHECK_INT(db_state_get(db, "poller:x", &v), 1);
	CHECK_INT(json_integer_value(v), 5);
	json_decref(v);
	db_close(db);
}

/* ---- configuration (config-changes.c) ------------------------------------------------ */

static struct config *load(const char *text, char **ret_err)
{
	struct config *cfg = NULL;
	*ret_err = NULL;
	if (config_load_string(NULL, text, strlen(text), NULL, &cfg, ret_err) < 0)
		return NULL;
	return cfg;
}

static void expect_config_error(const char *text, const char *want)
{
	char *err;
	struct config *cfg = load(text, &err);
	if (cfg || !err || !strstr(err, want))
		TAP_FAIL("config error: got '%s', want '%s'", err ? err : "(none)", want);
	config_free(cfg);
	free(err);
}

TEST(config_change_sources)
{
	setenv("KILN_SECRET_HOOK", "tok", 1);
	setenv("KILN_SECRET_GH", "ghs", 1);
	char *err;
	struct config *cfg = load(
		"git_poller { name = 'proj', repository = 'https://x/r.git', branches = 'all',\n"
		"  interval = 5, tags = true, project = 'p', revlink = 'https://x/c/%s' }\n"
		"git_poller { repository = '/srv/git/a.git' }\n"
		"hg_poller { name = 'h', repository = 'https://hg/x', branches = { 'default', 's' "
		"} }\n"
		"svn_poller { repository = 'file:///r/trunk', branch = 'trunk', interval = 0.5 }\n"
		"change_hook = { token = secret('hook'), github = { secret = secret('gh') },\n"
		"  gitlab = true }\n",
		&err);
	CHECK(cfg != NULL);
	if (!cfg) {
		TAP_FAIL("%s", err);
		free(err);
		return;
	}
	CHECK_INT(cfg->npollers, 4);
	CHECK_STR(cfg->poller[0].name, "proj");
	CHECK(cfg->poller[0].all_branches && cfg->poller[0].tags);
	CHECK(cfg->poller[0].interval == 5);
	CHECK_STR(cfg->poller[0].revlink, "https://x/c/%s");
	CHECK_STR(cfg->poller[1].name, "_srv_git_a.git");
	CHECK_INT(cfg->poller[1].nbranches, 1);
	CHECK_STR(cfg->poller[1].branches[0], "main");
	CHECK(cfg->poller[1].interval == 60);
	CHECK_INT(cfg->poller[2].kind, CONFIG_POLLER_HG);
	CHECK_INT(cfg->poller[2].nbranches, 2);
	CHECK_INT(cfg->poller[3].kind, CONFIG_POLLER_SVN);
	CHECK_STR(cfg->poller[3].branch, "trunk");
	CHECK(cfg->change_hook.enabled);
	CHECK_STR(cfg->change_hook.token, "tok");
	CHECK(cfg->change_hook.github && cfg->change_hook.gitlab && !cfg->change_hook.gitea);
	CHECK_STR(cfg->change_hook.github_secret, "ghs");
	CHECK(cfg->change_hook.gitlab_token == NULL);
	config_free(cfg);

	cfg = load("x = 1", &err); /* sanity: unknown settings still fail */
	CHECK(cfg == NULL);
	free(err);
	config_free(cfg);

	expect_config_error("git_poller { name = 'a' }",
			    "master.lua:1: git_poller 'a': 'repository' is required");
	expect_config_error("\n\ngit_poller { repository = 'r', brnches = {} }",
			    "master.lua:3: git_poller: unknown key 'brnches'");
	expect_config_error("git_poller { repository = 'r', branches = {} }", "must not be empty");
	expect_config_error("git_poller { repository = 'r', branches = { 'a b' } }",
			    "not a branch name 'a b'");
	expect_config_error("hg_poller { repository = 'r', branches = 'all' }",
			    "'branches' must be a list");
	expect_config_error("svn_poller { repository = 'r', tags = true }", "unknown key 'tags'");
	expect_config_error("git_poller { repository = 'r', interval = 0 }", "at least 0.1");
	expect_config_error("git_poller { repository = 'r', revlink = 'x' }", "exactly one %s");
	expect_config_error("git_poller { name = 'a', repository = 'r' }\n"
			    "hg_poller { name = 'a', repository = 's' }",
			    "master.lua:2: change source 'a' is already declared at line 1");
	expect_config_error("change_hook = { token = 'plain' }",
			    "'token' must come from secret(...)");
	expect_config_error("change_hook = { github = 'x' }", "'change_hook.github' must be true");
	expect_config_error("change_hook = { gitlab = { secret = secret('hook') } }",
			    "change_hook.gitlab: unknown key 'secret'");
	expect_config_error("change_hook = { bitbucket = true }", "unknown key 'bitbucket'");
	expect_config_error("change_hook = 5", "'change_hook' must be a table");
}

/* Growing arrays (ARRAY_GROW): many webhook changes and many files keep
 * their contents (run under ASan to see any overrun). */
TEST(arrays_grow)
{
	struct change *v = NULL;
	size_t n = 0;
	for (int i = 0; i < 1000; i++) {
		struct change *c = hook_push_change(&v, &n);
		CHECK(c->revision == NULL && c->nfiles == 0);
		c->revision = xasprintf("r%d", i);
	}
	CHECK_INT(n, 1000);
	CHECK_STR(v[0].revision, "r0");
	CHECK_STR(v[999].revision, "r999");
	for (int i = 0; i < 300; i++) {
		char path[32];
		int len = snprintf(path, sizeof(path), "dir/f%d.c", i);
		change_add_file(&v[500], path, (size_t)len);
	}
	CHECK_INT(v[500].nfiles, 300);
	CHECK_STR(v[500].files[299], "dir/f299.c");
	change_list_free(v, n);
}

int main(void)
{
	RUN(who_parsing);
	RUN(arrays_grow);
	RUN(iso8601_times);
	RUN(base_form_and_json);
	RUN(base_bad_input);
	RUN(github_push_and_tags);
	RUN(github_pull_ping_and_errors);
	RUN(gitlab_push_and_merge_request);
	RUN(gitea_push);
	RUN(git_log_parsing);
	RUN(hg_log_parsing);
	RUN(svn_log_parsing);
	RUN(db_changes_shape_and_parents);
	RUN(db_buildset_changes_and_blamelist);
	RUN(db_object_state);
	RUN(config_change_sources);
	return tap_done();
}
