/*
 * libFuzzer target for the change hook parsers (src/master/changes/hook-*.c):
 * the first byte picks the dialect and event, the rest is the body.  Every
 * input must give changes, "ignored" or a clean KILN_EPARSE with a message.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "master/changes/hook.h"
#include "master/changes/poller.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static const char *const github_events[] = {"push", "pull_request", "ping", "issues"};
	static const char *const gitlab_events[] = {"Push Hook", "Tag Push Hook",
						    "Merge Request Hook", "Note Hook"};
	unsigned sel = data[0];
	const char *body = (const char *)data + 1;
	size_t len = size - 1;
	struct change *v = NULL;
	size_t n = 0;
	char *err = NULL;
	int r;
	switch (sel % 8) {
	case 0:
		r = hook_base_parse("application/x-www-form-urlencoded", body, len, &v, &n, &err);
		break;
	case 1:
		r = hook_base_parse("application/json", body, len, &v, &n, &err);
		break;
	case 2:
		r = hook_github_parse(github_events[(sel >> 3) % 4], body, len, &v, &n, &err);
		break;
	case 3:
		r = hook_gitlab_parse(gitlab_events[(sel >> 3) % 4], body, len, &v, &n, &err);
		break;
	case 4:
		r = hook_gitea_parse((sel >> 3) % 2 ? "pull_request" : "push", body, len, &v, &n,
				     &err);
		break;
	case 5:
		r = poller_git_parse_log(body, len, &v, &n);
		break;
	case 6:
		r = poller_hg_parse_log(body, len, &v, &n);
		break;
	default: {
		/* svn's parser reads NUL-terminated text */
		char *t = malloc(len + 1);
		memcpy(t, body, len);
		t[len] = '\0';
		r = poller_svn_parse_log(t, len, "/trunk", &v, &n);
		free(t);
		break;
	}
	}
	if (r < 0 && r != KILN_EPARSE && r != -EINVAL)
		abort();
	if (r == KILN_EPARSE && !err)
		abort();
	for (size_t i = 0; r >= 0 && i < n; i++)
		if (v[i].nfiles && !v[i].files)
			abort();
	change_list_free(v, n);
	free(err);
	return 0;
}
