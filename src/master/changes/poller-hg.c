/*
 * The Mercurial poller (poller.h): a local clone under BASEDIR/pollers/NAME
 * and per poll one `hg pull` and one `hg log` over every revision newer
 * than the last one seen (local revision numbers only grow in a clone that
 * only pulls), filtered by the configured branches.  The first poll only
 * records where the repository is.
 */
#include "master/changes/poller.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/limits.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "config/config.h"

#define HG_TEMPLATE                                                                                \
	"\\x1e{node}\\x1f{rev}\\x1f{author}\\x1f{date|hgdate}\\x1f{branch}\\x1f{desc}\\x1f"        \
	"{join(files, \"\\x1d\")}\\x1f"

int poller_hg_parse_log(const char *text, size_t len, struct change **ret, size_t *ret_n)
{
	struct change *v = NULL;
	size_t n = 0, alloc = 0;
	const char *end = text + len;
	const char *rec = memchr(text, 0x1e, len);
	while (rec) {
		const char *next = memchr(rec + 1, 0x1e, (size_t)(end - rec - 1));
		const char *rend = next ? next : end;
		/* node, rev, author, date, branch from the front ... */
		const char *f[5];
		size_t fl[5];
		const char *p = rec + 1;
		int k;
		for (k = 0; k < 5; k++) {
			const char *us = memchr(p, 0x1f, (size_t)(rend - p));
			if (!us)
				break;
			f[k] = p;
			fl[k] = (size_t)(us - p);
			p = us + 1;
		}
		/* ... files between the last two 0x1f, desc before them */
		const char *l1 = NULL, *l2 = NULL;
		for (const char *q = rend; q > p; q--)
			if (q[-1] == 0x1f) {
				if (!l2)
					l2 = q - 1;
				else {
					l1 = q - 1;
					break;
				}
			}
		if (k < 5 || !l1 || !l2) {
			change_list_free(v, n);
			return -EINVAL;
		}
		ARRAY_GROW(v, n + 1, alloc);
		struct change *c = &v[n++];
		*c = (struct change){0};
		c->revision = xstrndup(f[0], fl[0]);
		_cleanup_free_ char *rev = xstrndup(f[1], fl[1]);
		long long r;
		if (str_to_i64(rev, &r) == 0)
			change_set_property(c, "hg_rev", json_integer(r));
		c->author = xstrndup(f[2], fl[2]);
		_cleanup_free_ char *date = xstrndup(f[3], fl[3]);
		c->when = strtod(date, NULL); /* "EPOCH OFFSET": epoch is UTC already */
		c->branch = xstrndup(f[4], fl[4]);
		c->comments = xstrndup(p, (size_t)(l1 - p));
		for (const char *q = l1 + 1; q < l2;) {
			const char *sep = memchr(q, 0x1d, (size_t)(l2 - q));
			const char *fe = sep ? sep : l2;
			if (fe > q)
				change_add_file(c, q, (size_t)(fe - q));
			q = fe + 1;
		}
		rec = next;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static bool hg_tracked(const struct config_poller *cfg, const char *branch)
{
	for (size_t i = 0; i < cfg->nbranches; i++)
		if (!strcmp(branch, cfg->branches[i]))
			return true;
	return false;
}

static int hg_step(struct poller *p, const struct poller_out *out, char ***ret)
{
	const struct config_poller *cfg = poller_config(p);
	json_t *scratch = poller_scratch(p), *state = poller_state(p);
	const char *phase = json_string_value(json_object_get(scratch, "phase"));
	if (!phase) {
		_cleanup_free_ char *dot = xasprintf("%s/repo/.hg", poller_workdir(p));
		if (access(dot, F_OK) == 0) {
			json_object_set_new(scratch, "phase", json_string("pull"));
			*ret = poller_argv("hg", "pull", "--quiet", "-R", "repo", "--",
					   cfg->repository, NULL);
			return 1;
		}
		json_object_set_new(scratch, "phase", json_string("init"));
		*ret = poller_argv("hg", "init", "repo", NULL);
		return 1;
	}
	if (out->status != 0)
		return poller_fail(p, "'hg %s' failed (exit %d): %s", phase, out->status,
				   out->err && *out->err ? out->err : "no message");
	if (!strcmp(phase, "init")) {
		json_object_set_new(scratch, "phase", json_string("pull"));
		*ret = poller_argv("hg", "pull", "--quiet", "-R", "repo", "--", cfg->repository,
				   NULL);
		return 1;
	}
	json_t *last = json_object_get(state, "rev");
	if (!strcmp(phase, "pull")) {
		if (!json_is_integer(last)) {
			/* the first poll: remember the tip, make no changes */
			json_object_set_new(scratch, "phase", json_string("tip"));
			*ret = poller_argv("hg", "log", "-R", "repo", "-r", "tip", "--template",
					   "{rev}", NULL);
			return 1;
		}
		json_int_t lr = json_integer_value(last);
		_cleanup_free_ char *revs =
			lr < 0 ? xstrdup("all()") : xasprintf("%lld:tip", (long long)lr);
		_cleanup_free_ char *limit = xasprintf("%d", KILN_POLLER_MAX_COMMITS + 1);
		json_object_set_new(scratch, "phase", json_string("log"));
		*ret = poller_argv("hg", "log", "-R", "repo", "-r", revs, "--limit", limit,
				   "--template", HG_TEMPLATE, NULL);
		return 1;
	}
	if (!strcmp(phase, "tip")) {
		_cleanup_free_ char *t = xstrndup(out->text, out->len);
		long long rev;
		if (str_to_i64(t, &rev) < 0)
			return poller_fail(p, "unexpected output of 'hg log -r tip': '%.40s'", t);
		json_object_set_new(state, "rev", json_integer(rev));
		return 0;
	}
	/* log */
	struct change *v;
	size_t n;
	if (poller_hg_parse_log(out->text, out->len, &v, &n) < 0)
		return poller_fail(p, "cannot parse the output of 'hg log'");
	json_int_t lr = json_integer_value(last), max = lr;
	for (size_t i = 0; i < n; i++) {
		json_int_t rev = json_integer_value(
			json_array_get(json_object_get(v[i].properties, "hg_rev"), 0));
		if (rev > max)
			max = rev;
		if (rev <= lr || !hg_tracked(cfg, v[i].branch)) {
			change_release(&v[i]);
			continue;
		}
		poller_emit(p, &v[i]);
	}
	free(v);
	json_object_set_new(state, "rev", json_integer(max));
	return 0;
}

const struct poller_vcs poller_hg = {"hg", hg_step};
