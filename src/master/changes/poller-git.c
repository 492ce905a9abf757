/*
 * The git poller (poller.h): a bare mirror under BASEDIR/pollers/NAME,
 * and per poll exactly three git processes whatever the number of
 * branches: one `git fetch` of every branch (and tag), one `git
 * for-each-ref` for the new heads, one `git log --source` over every moved
 * head at once (new heads, minus every old head), each commit attributed to
 * the branch it was reached from.  The first poll only records the heads.
 */
#include "master/changes/poller.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "config/config.h"

#define GIT_LOG_FORMAT "--format=%x1e%H%x1f%S%x1f%an <%ae>%x1f%cn <%ce>%x1f%ct%x1f%B%x1f"
#define GIT_REFS_FORMAT                                                                            \
	"--format=%(objectname)%1f%(*objectname)%1f%(refname)%1f%(if)%(taggername)%(then)"         \
	"%(taggername) %(taggeremail)%(else)%(authorname) %(authoremail)%(end)%1f"                 \
	"%(creatordate:unix)%1f%(contents:subject)"

static bool is_hex(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdef", p[i]))
			return false;
	return n > 0;
}

/* Finds the next record start: 0x1e followed by a full hash and 0x1f (a
 * commit message holding 0x1e cannot forge one that easily). */
static const char *git_next_record(const char *p, const char *end)
{
	for (; p < end; p++) {
		p = memchr(p, 0x1e, (size_t)(end - p));
		if (!p)
			return NULL;
		const char *us = memchr(p + 1, 0x1f, (size_t)(end - p - 1));
		size_t hl = us ? (size_t)(us - p - 1) : 0;
		if (us && (hl == 40 || hl == 64) && is_hex(p + 1, hl))
			return p;
	}
	return NULL;
}

static char *dup_trim_nl(const char *p, size_t n)
{
	while (n && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	return xstrndup(p, n);
}

int poller_git_parse_log(const char *text, size_t len, struct change **ret, size_t *ret_n)
{
	struct change *v = NULL;
	size_t n = 0, alloc = 0;
	const char *end = text + len;
	const char *rec = git_next_record(text, end);
	while (rec) {
		const char *next = git_next_record(rec + 1, end);
		const char *rend = next ? next : end;
		/* fields: hash, source, author, committer, time, body; then files */
		const char *f[6];
		size_t fl[6];
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
		/* the body runs to the last 0x1f of the record */
		const char *last = NULL;
		for (const char *q = rend; q > p; q--)
			if (q[-1] == 0x1f) {
				last = q - 1;
				break;
			}
		if (k < 5 || !last) {
			change_list_free(v, n);
			return -EINVAL;
		}
		f[5] = p;
		fl[5] = (size_t)(last - p);
		struct change *c;
		ARRAY_GROW(v, n + 1, alloc);
		c = &v[n++];
		*c = (struct change){0};
		c->revision = xstrndup(f[0], fl[0]);
		if (fl[1] > 11 && !strncmp(f[1], "refs/heads/", 11))
			c->branch = xstrndup(f[1] + 11, fl[1] - 11);
		else if (fl[1] > 10 && !strncmp(f[1], "refs/tags/", 10))
			c->branch = xstrndup(f[1] + 10, fl[1] - 10);
		else if (fl[1])
			c->branch = xstrndup(f[1], fl[1]);
		c->author = xstrndup(f[2], fl[2]);
		c->committer = xstrndup(f[3], fl[3]);
		_cleanup_free_ char *t = xstrndup(f[4], fl[4]);
		long long ts;
		if (str_to_i64(t, &ts) == 0)
			c->when = (double)ts;
		c->comments = dup_trim_nl(f[5], fl[5]);
		/* files: NUL-separated after the format's last byte (git adds "\0\n" first) */
		for (const char *q = last + 1; q < rend;) {
			while (q < rend && (*q == '\0' || *q == '\n'))
				q++;
			if (q >= rend)
				break;
			const char *z = memchr(q, '\0', (size_t)(rend - q));
			const char *fe = z ? z : rend;
			change_add_file(c, q, (size_t)(fe - q));
			q = fe;
		}
		rec = next;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int poller_git_parse_refs(const char *text, size_t len, json_t **ret)
{
	json_t *refs = json_object();
	const char *end = text + len;
	for (const char *p = text; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if (le > p) {
			const char *f[6];
			size_t fl[6];
			const char *q = p;
			int k;
			for (k = 0; k < 6 && q <= le; k++) {
				const char *us = k < 5 ? memchr(q, 0x1f, (size_t)(le - q)) : NULL;
				const char *fe = us ? us : le;
				f[k] = q;
				fl[k] = (size_t)(fe - q);
				q = fe + 1;
				if (!us)
					break;
			}
			if (k < 2 || !(fl[0] == 40 || fl[0] == 64) || !is_hex(f[0], fl[0]) ||
			    fl[2] == 0) {
				json_decref(refs);
				return -EINVAL;
			}
			_cleanup_free_ char *name = xstrndup(f[2], fl[2]);
			json_t *o = json_object();
			json_object_set_new(o, "sha", json_stringn(f[0], fl[0]));
			json_object_set_new(o, "commit",
					    fl[1] ? json_stringn(f[1], fl[1])
						  : json_stringn(f[0], fl[0]));
			if (k >= 3)
				json_object_set_new(o, "who", json_stringn(f[3], fl[3]));
			if (k >= 4)
				json_object_set_new(o, "time", json_stringn(f[4], fl[4]));
			if (k >= 5)
				json_object_set_new(o, "subject", json_stringn(f[5], fl[5]));
			json_object_set_new(refs, name, o);
		}
		p = le + 1;
	}
	*ret = refs;
	return 0;
}

/* Is ref one this poller follows? */
static bool git_tracked(const struct config_poller *cfg, const char *ref)
{
	if (!strncmp(ref, "refs/tags/", 10))
		return cfg->tags;
	if (strncmp(ref, "refs/heads/", 11))
		return false;
	if (cfg->all_branches)
		return true;
	for (size_t i = 0; i < cfg->nbranches; i++)
		if (!strcmp(ref + 11, cfg->branches[i]))
			return true;
	return false;
}

/* Appends s (owned) to the NULL-terminated argv v[0..n) of capacity *alloc. */
static void git_argv_push(char ***v, size_t *n, size_t *alloc, char *s)
{
	ARRAY_GROW(*v, *n + 2, *alloc);
	(*v)[(*n)++] = s;
	(*v)[*n] = NULL;
}

static int git_fetch_argv(struct poller *p, char ***ret)
{
	const struct config_poller *cfg = poller_config(p);
	char **v = NULL;
	size_t n = 0, alloc = 0;
	git_argv_push(&v, &n, &alloc, xstrdup("git"));
	git_argv_push(&v, &n, &alloc, xstrdup("--git-dir=repo.git"));
	git_argv_push(&v, &n, &alloc, xstrdup("fetch"));
	git_argv_push(&v, &n, &alloc, xstrdup("--quiet"));
	git_argv_push(&v, &n, &alloc, xstrdup("--prune"));
	git_argv_push(&v, &n, &alloc, xstrdup("--no-tags"));
	git_argv_push(&v, &n, &alloc, xstrdup("--end-of-options"));
	git_argv_push(&v, &n, &alloc, xstrdup(cfg->repository));
	git_argv_push(&v, &n, &alloc, xstrdup("+refs/heads/*:refs/heads/*"));
	if (cfg->tags)
		git_argv_push(&v, &n, &alloc, xstrdup("+refs/tags/*:refs/tags/*"));
	*ret = v;
	return 1;
}

/* After for-each-ref: compares with the stored heads, emits tag changes,
 * and asks for the log of every moved branch (or finishes). */
static int git_compare(struct poller *p, json_t *cur, char ***ret)
{
	const struct config_poller *cfg = poller_config(p);
	json_t *state = poller_state(p);
	json_t *old = json_object_get(state, "refs");
	json_t *now = json_object();
	const char *ref;
	json_t *o;
	json_object_foreach(cur, ref, o)
	{
		if (git_tracked(cfg, ref))
			json_object_set(now, ref, json_object_get(o, "sha"));
	}
	if (!json_is_object(old)) {
		/* the first poll: remember where everything is, make no changes */
		json_object_set_new(state, "refs", now);
		return 0;
	}
	char **v = NULL;
	size_t n = 0, npos = 0, alloc = 0;
	json_object_foreach(now, ref, o)
	{
		json_t *was = json_object_get(old, ref);
		if (json_equal(was, o))
			continue;
		if (!strncmp(ref, "refs/tags/", 10)) {
			/* a new or moved tag: one change at the tagged commit */
			json_t *info = json_object_get(cur, ref);
			struct change c = {0};
			c.revision = xstrdup(json_string_value(json_object_get(info, "commit")));
			c.branch = xstrdup(ref + 10);
			c.category = xstrdup("tag");
			const char *who = json_string_value(json_object_get(info, "who"));
			c.author = xstrdup(who && strcmp(who, " ") ? who : "");
			const char *subj = json_string_value(json_object_get(info, "subject"));
			c.comments = xstrdup(subj ? subj : "");
			long long ts;
			const char *t = json_string_value(json_object_get(info, "time"));
			if (t && str_to_i64(t, &ts) == 0)
				c.when = (double)ts;
			poller_emit(p, &c);
			continue;
		}
		if (!n) {
			git_argv_push(&v, &n, &alloc, xstrdup("git"));
			git_argv_push(&v, &n, &alloc, xstrdup("--git-dir=repo.git"));
			git_argv_push(&v, &n, &alloc, xstrdup("log"));
			git_argv_push(&v, &n, &alloc, xstrdup("--source"));
			git_argv_push(&v, &n, &alloc, xstrdup("--reverse"));
			git_argv_push(&v, &n, &alloc,
				      xasprintf("--max-count=%d", KILN_POLLER_MAX_COMMITS));
			git_argv_push(&v, &n, &alloc, xstrdup(GIT_LOG_FORMAT));
			git_argv_push(&v, &n, &alloc, xstrdup("--name-only"));
			git_argv_push(&v, &n, &alloc, xstrdup("-z"));
			git_argv_push(&v, &n, &alloc, xstrdup("--end-of-options"));
		}
		git_argv_push(&v, &n, &alloc, xstrdup(ref));
		npos++;
	}
	if (npos) {
		/* minus everything already seen, on any followed branch */
		json_object_foreach(old, ref, o)
		{
			const char *sha = json_string_value(o);
			if (sha && !strncmp(ref, "refs/heads/", 11))
				git_argv_push(&v, &n, &alloc, xasprintf("^%s", sha));
		}
	}
	/* the new heads are saved when the poll ends well */
	json_object_set_new(poller_scratch(p), "refs", now);
	if (!npos) {
		json_object_set(state, "refs", now);
		for (size_t i = 0; v && v[i]; i++)
			free(v[i]);
		free(v);
		return 0;
	}
	*ret = v;
	return 1;
}

static int git_step(struct poller *p, const struct poller_out *out, char ***ret)
{
	json_t *scratch = poller_scratch(p);
	const char *phase = json_string_value(json_object_get(scratch, "phase"));
	if (!phase) {
		_cleanup_free_ char *head = xasprintf("%s/repo.git/HEAD", poller_workdir(p));
		if (access(head, F_OK) == 0) {
			json_object_set_new(scratch, "phase", json_string("fetch"));
			return git_fetch_argv(p, ret);
		}
		json_object_set_new(scratch, "phase", json_string("init"));
		*ret = poller_argv("git", "init", "--bare", "--quiet", "repo.git", NULL);
		return 1;
	}
	if (out->status != 0)
		return poller_fail(p, "'git %s' failed (exit %d): %s", phase, out->status,
				   out->err && *out->err ? out->err : "no message");
	if (!strcmp(phase, "init")) {
		json_object_set_new(scratch, "phase", json_string("fetch"));
		return git_fetch_argv(p, ret);
	}
	if (!strcmp(phase, "fetch")) {
		json_object_set_new(scratch, "phase", json_string("for-each-ref"));
		*ret = poller_argv("git", "--git-dir=repo.git", "for-each-ref", GIT_REFS_FORMAT,
				   "refs/heads", "refs/tags", NULL);
		return 1;
	}
	if (!strcmp(phase, "for-each-ref")) {
		json_t *cur;
		if (poller_git_parse_refs(out->text, out->len, &cur) < 0)
			return poller_fail(p, "cannot parse the output of 'git for-each-ref'");
		json_object_set_new(scratch, "phase", json_string("log"));
		int r = git_compare(p, cur, ret);
		json_decref(cur);
		return r;
	}
	/* log */
	struct change *v;
	size_t n;
	if (poller_git_parse_log(out->text, out->len, &v, &n) < 0)
		return poller_fail(p, "cannot parse the output of 'git log'");
	for (size_t i = 0; i < n; i++)
		poller_emit(p, &v[i]);
	free(v);
	json_object_set(poller_state(p), "refs", json_object_get(scratch, "refs"));
	return 0;
}

const struct poller_vcs poller_git = {"git", git_step};
