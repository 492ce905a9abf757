/* The change hook parsers' cap on commits per push (KILN_MAX_HOOK_COMMITS):
 * the newest are kept, the head commit included, and the truncation is said. */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/limits.h"
#include "master/changes/hook.h"
#include "tap.h"

/* A push of n commits "c0".."c{n-1}", oldest first. */
static char *test_push(size_t n, bool gitlab)
{
	struct buf b;
	buf_init(&b, 16u << 20);
	int r = buf_addf(&b,
			 "{\"ref\":\"refs/heads/main\",\"after\":\"c%zu\",\"%s\":{"
			 "\"html_url\":\"r\",\"git_http_url\":\"r\"},\"commits\":[",
			 n - 1, gitlab ? "project" : "repository");
	for (size_t i = 0; i < n && r >= 0; i++)
		r = buf_addf(&b, "%s{\"id\":\"c%zu\"}", i ? "," : "", i);
	if (r >= 0)
		r = buf_addf(&b, "]}");
	if (r < 0)
		abort();
	return buf_detach(&b, NULL);
}

static void test_one(const char *dialect, size_t ncommits)
{
	bool gitlab = !strcmp(dialect, "gitlab");
	char *body = test_push(ncommits, gitlab);
	struct change *v = NULL;
	size_t n = 0;
	char *err = NULL;
	int r = !strcmp(dialect, "github")
			? hook_github_parse("push", body, strlen(body), &v, &n, &err)
		: gitlab ? hook_gitlab_parse("Push Hook", body, strlen(body), &v, &n, &err)
			 : hook_gitea_parse("push", body, strlen(body), &v, &n, &err);
	bool over = ncommits > KILN_MAX_HOOK_COMMITS;
	CHECK_INT(r, over ? HOOK_TRUNCATED : 0);
	CHECK_INT(n, over ? KILN_MAX_HOOK_COMMITS : ncommits);
	char want[32];
	snprintf(want, sizeof(want), "c%zu", ncommits - 1);
	CHECK(n > 0 && v[n - 1].revision && !strcmp(v[n - 1].revision, want));
	snprintf(want, sizeof(want), "c%zu", over ? ncommits - KILN_MAX_HOOK_COMMITS : 0);
	CHECK(n > 0 && v[0].revision && !strcmp(v[0].revision, want));
	if (over)
		CHECK(err && strstr(err, "only the newest"));
	else
		CHECK(err == NULL);
	change_list_free(v, n);
	free(err);
	free(body);
}

TEST(github_push_capped_newest_kept)
{
	test_one("github", 50000);
	test_one("github", KILN_MAX_HOOK_COMMITS);
	test_one("github", 3);
}

TEST(gitlab_push_capped_newest_kept)
{
	test_one("gitlab", KILN_MAX_HOOK_COMMITS + 1);
	test_one("gitlab", 20);
}

TEST(gitea_push_capped_newest_kept)
{
	test_one("gitea", 10000);
}

int main(void)
{
	RUN(github_push_capped_newest_kept);
	RUN(gitlab_push_capped_newest_kept);
	RUN(gitea_push_capped_newest_kept);
	return tap_done();
}
