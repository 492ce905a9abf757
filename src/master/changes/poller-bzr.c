/*
 * The Bazaar/Breezy poller (poller.h): no local copy, `brz` reads the
 * branch where it is.  Per poll one `brz revision-info` (the tip's revno
 * and revision id); when the tip moved, one more to check that the last
 * revision seen is still on the branch's mainline at the same revno, then
 * one `brz log --long -v -n1` over the new mainline revisions (merged
 * revisions are part of their merge, as in Buildbot's BzrPoller).  A branch
 * whose history was rewritten (uncommit, push --overwrite) yields one change
 * for its new tip.  At most KILN_POLLER_MAX_COMMITS revisions per poll, the
 * oldest first; the rest come with the next poll.  The first poll only
 * records the tip.  Revisions are brz revnos, as Buildbot's Bzr step wants.
 */
#include "master/changes/poller.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "config/config.h"

/* every brz call: UTF-8 output whatever the locale (the poller runs tools with LC_ALL=C) */
#define BZR_UTF8 "-Ooutput_encoding=utf-8"
#define BZR_SEPARATOR "------------------------------------------------------------"

/* "Wed 2026-12-02 15:43:12 +0100" → UTC seconds; 0 when unreadable. */
static double bzr_parse_time(const char *s)
{
	const char *sp = strchr(s, ' ');
	int y, mo, d, h, mi, se, off;
	char sign;
	if (!sp ||
	    sscanf(sp + 1, "%d-%d-%d %d:%d:%d %c%4d", &y, &mo, &d, &h, &mi, &se, &sign, &off) !=
		    8 ||
	    (sign != '+' && sign != '-') || y < 1970 || y > 9999)
		return 0;
	/* each field in its range before any arithmetic (mo - 1 of INT_MIN) */
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
	    se < 0 || se > 60 || off < 0 || off % 100 > 59)
		return 0;
	struct tm tm = {.tm_year = y - 1900,
			.tm_mon = mo - 1,
			.tm_mday = d,
			.tm_hour = h,
			.tm_min = mi,
			.tm_sec = se};
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return 0;
	long secs = (off / 100) * 3600L + (off % 100) * 60L;
	return (double)(sign == '+' ? t - secs : t + secs);
}

/* A file line of a delta section ("  path", markers and notes stripped). */
static void bzr_add_path(struct change *c, const char *p, size_t n)
{
	/* "kind changed:  sym@ (symlink => directory)" */
	if (n && p[n - 1] == ')') {
		for (size_t i = n; i > 1; i--)
			if (p[i - 1] == '(' && p[i - 2] == ' ') {
				n = i - 2;
				break;
			}
	}
	/* brz's kind markers: directory '/', symlink '@', executable '*' */
	if (n > 1 && strchr("/@*", p[n - 1]))
		n--;
	if (n)
		change_add_file(c, p, n);
}

/* The message read so far becomes record i's comments. */
static void bzr_take_message(struct buf *msg, struct change *v, size_t i, bool started)
{
	if (!started)
		return;
	/* the buffer is as large as the whole text: it cannot have overflowed */
	free(v[i].comments);
	v[i].comments = buf_detach(msg, NULL);
}

/* A file renamed and modified is listed in both sections: once is enough. */
static void bzr_dedup_files(struct change *c)
{
	json_t *set = json_object();
	size_t k = 0;
	for (size_t i = 0; i < c->nfiles; i++) {
		if (json_object_get(set, c->files[i])) {
			free(c->files[i]);
			continue;
		}
		json_object_set_new_nocheck(set, c->files[i], json_true());
		c->files[k++] = c->files[i];
	}
	c->nfiles = k;
	json_decref(set);
}

int poller_bzr_parse_log(const char *text, size_t len, struct change **ret, size_t *ret_n)
{
	struct change *v = NULL;
	size_t n = 0, alloc = 0;
	const char *end = text + len, *p = text;
	struct change *c = NULL;
	enum { BZR_NONE, BZR_MESSAGE, BZR_FILES, BZR_RENAMES, BZR_OTHER } section = BZR_NONE;
	bool have_rev = true, started = false;
	struct buf msg;
	buf_init(&msg, len + 1);

	for (; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t ll = (size_t)(le - p);
		const char *line = p;
		p = nl ? nl + 1 : end;

		if (ll == sizeof(BZR_SEPARATOR) - 1 && !memcmp(line, BZR_SEPARATOR, ll)) {
			if (!have_rev)
				goto bad;
			bzr_take_message(&msg, v, n - 1, started);
			started = false;
			ARRAY_GROW(v, n + 1, alloc);
			c = &v[n++];
			*c = (struct change){0};
			section = BZR_NONE;
			have_rev = false;
			continue;
		}
		if (!c)
			continue; /* before the first record: nothing brz writes */
		if (ll >= 2 && line[0] == ' ' && line[1] == ' ') {
			const char *body = line + 2;
			size_t bl = ll - 2;
			if (section == BZR_MESSAGE) {
				/* the message: each line indented by two spaces */
				int r = started ? buf_addch(&msg, '\n') : 0;
				if (r >= 0)
					r = buf_add(&msg, body, bl);
				assert(r >= 0); /* the buffer holds the whole text */
				(void)r;
				started = true;
			} else if (section == BZR_FILES) {
				bzr_add_path(c, body, bl);
			} else if (section == BZR_RENAMES) {
				const char *arrow = NULL;
				for (size_t i = 0; i + 4 <= bl; i++)
					if (!memcmp(body + i, " => ", 4)) {
						arrow = body + i;
						break;
					}
				if (arrow) {
					bzr_add_path(c, body, (size_t)(arrow - body));
					bzr_add_path(c, arrow + 4, bl - (size_t)(arrow - body) - 4);
				} else {
					bzr_add_path(c, body, bl);
				}
			}
			continue;
		}
		/* a header line "key: value" or a section "name:" */
		_cleanup_free_ char *l = xstrndup(line, ll);
		section = BZR_NONE;
		if (!strncmp(l, "revno: ", 7)) {
			size_t rl = strcspn(l + 7, " ");
			free(c->revision);
			c->revision = xstrndup(l + 7, rl);
			have_rev = rl > 0;
		} else if (!strncmp(l, "committer: ", 11)) {
			free(c->committer);
			c->committer = xstrdup(l + 11);
		} else if (!strncmp(l, "author: ", 8) || !strncmp(l, "authors: ", 9)) {
			free(c->author);
			c->author = xstrdup(strchr(l, ' ') + 1);
		} else if (!strncmp(l, "timestamp: ", 11)) {
			c->when = bzr_parse_time(l + 11);
		} else if (!strcmp(l, "message:")) {
			section = BZR_MESSAGE;
		} else if (!strcmp(l, "added:") || !strcmp(l, "removed:") ||
			   !strcmp(l, "modified:") || !strcmp(l, "kind changed:")) {
			section = BZR_FILES;
		} else if (!strcmp(l, "renamed:")) {
			section = BZR_RENAMES;
		} else if (*l && l[strlen(l) - 1] == ':') { /* strlen: the line may hold a NUL */
			section = BZR_OTHER;                /* a section of brz's we do not read */
		}
	}
	if (!have_rev)
		goto bad;
	if (n)
		bzr_take_message(&msg, v, n - 1, started);
	buf_release(&msg);
	for (size_t i = 0; i < n; i++) {
		bzr_dedup_files(&v[i]);
		/* the author, as Buildbot's BzrPoller: the apparent one, else the committer */
		if (!v[i].author)
			v[i].author = xstrdup(v[i].committer ? v[i].committer : "");
		if (!v[i].comments || !strcmp(v[i].comments, "(no message)")) {
			free(v[i].comments);
			v[i].comments = xstrdup("");
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
bad:
	buf_release(&msg);
	change_list_free(v, n);
	return -EINVAL;
}

/* "N REVID\n" from brz revision-info; false when not that. */
static bool bzr_parse_info(const struct poller_out *out, long long *ret_revno, char **ret_revid)
{
	_cleanup_free_ char *t = xstrndup(out->text, out->len);
	t[strcspn(t, "\n")] = '\0';
	char *sp = strchr(t, ' ');
	if (!sp || !sp[1])
		return false;
	*sp = '\0';
	long long r;
	if (str_to_i64(t, &r) < 0 || r < 0) {
		*ret_revno = -1; /* "???" (not on the branch) or a dotted revno */
		*ret_revid = xstrdup(sp + 1);
		return true;
	}
	*ret_revno = r;
	*ret_revid = xstrdup(sp + 1);
	return true;
}

static char **bzr_log_argv(const char *url, long long from, long long to)
{
	_cleanup_free_ char *range = xasprintf("%lld..%lld", from, to);
	return poller_argv("brz", BZR_UTF8, "log", "--long", "-v", "-n1", "--forward", "-r", range,
			   "--", url, NULL);
}

static void bzr_set_state(json_t *state, long long revno, const char *revid)
{
	json_object_set_new(state, "revno", json_integer(revno));
	json_object_set_new(state, "revid", json_string(revid));
}

static int bzr_step(struct poller *p, const struct poller_out *out, char ***ret)
{
	const struct config_poller *cfg = poller_config(p);
	json_t *scratch = poller_scratch(p), *state = poller_state(p);
	const char *phase = json_string_value(json_object_get(scratch, "phase"));
	if (!phase) {
		json_object_set_new(scratch, "phase", json_string("revision-info"));
		*ret = poller_argv("brz", BZR_UTF8, "revision-info", "-d", cfg->repository, NULL);
		return 1;
	}
	if (out->status != 0)
		return poller_fail(p, "'brz %s' failed (exit %d): %s", phase, out->status,
				   out->err && *out->err ? out->err : "no message");
	long long revno;
	_cleanup_free_ char *revid = NULL;
	if (!strcmp(phase, "revision-info")) {
		if (!bzr_parse_info(out, &revno, &revid) || revno < 0)
			return poller_fail(p, "unexpected output of 'brz revision-info': '%.60s'",
					   out->text);
		const char *last = json_string_value(json_object_get(state, "revid"));
		if (!last) {
			/* the first poll: remember the tip, make no changes */
			bzr_set_state(state, revno, revid);
			return 0;
		}
		if (!strcmp(last, revid))
			return 0;
		json_object_set_new(scratch, "tip", json_integer(revno));
		json_object_set_new(scratch, "tipid", json_string(revid));
		if (revno == 0) { /* the branch was emptied */
			bzr_set_state(state, 0, revid);
			return 0;
		}
		_cleanup_free_ char *spec = xasprintf("revid:%s", last);
		json_object_set_new(scratch, "phase", json_string("check"));
		*ret = poller_argv("brz", BZR_UTF8, "revision-info", "-d", cfg->repository, "-r",
				   spec, NULL);
		return 1;
	}
	long long tip = json_integer_value(json_object_get(scratch, "tip"));
	const char *tipid = json_string_value(json_object_get(scratch, "tipid"));
	if (!strcmp(phase, "check")) {
		long long from = tip; /* history rewritten: the new tip only */
		long long last = json_integer_value(json_object_get(state, "revno"));
		if (bzr_parse_info(out, &revno, &revid) && revno >= 0 && revno == last &&
		    revno < tip)
			from = last + 1;
		long long to = tip;
		if (to - from + 1 > KILN_POLLER_MAX_COMMITS)
			to = from + KILN_POLLER_MAX_COMMITS - 1; /* the rest: next poll */
		json_object_set_new(scratch, "to", json_integer(to));
		json_object_set_new(scratch, "phase", json_string("log"));
		*ret = bzr_log_argv(cfg->repository, from, to);
		return 1;
	}
	long long to = json_integer_value(json_object_get(scratch, "to"));
	if (!strcmp(phase, "log")) {
		struct change *v;
		size_t n;
		if (poller_bzr_parse_log(out->text, out->len, &v, &n) < 0)
			return poller_fail(p, "cannot parse the output of 'brz log'");
		for (size_t i = 0; i < n; i++) {
			if (cfg->branch)
				v[i].branch = xstrdup(cfg->branch);
			poller_emit(p, &v[i]);
		}
		free(v);
		if (to == tip) {
			bzr_set_state(state, tip, tipid);
			return 0;
		}
		_cleanup_free_ char *r = xasprintf("%lld", to);
		json_object_set_new(scratch, "phase", json_string("last-id"));
		*ret = poller_argv("brz", BZR_UTF8, "revision-info", "-d", cfg->repository, "-r", r,
				   NULL);
		return 1;
	}
	/* last-id: the id of the last revision reported, where the next poll starts */
	if (!bzr_parse_info(out, &revno, &revid) || revno != to)
		return poller_fail(p, "unexpected output of 'brz revision-info -r %lld'", to);
	bzr_set_state(state, to, revid);
	return 0;
}

const struct poller_vcs poller_bzr = {"bzr", bzr_step};
