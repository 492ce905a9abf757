/*
 * The CVS poller (poller.h).  CVS has no changesets, only file revisions,
 * so per poll one `cvs rlog` (no checkout needed) lists the revisions of
 * the module's default branch (or of the configured branch tag) dated from
 * KILN_POLLER_CVS_OVERLAP seconds before the newest one seen, and the new
 * ones are grouped into commits:
 *  - revisions with the same commitid (CVS >= 1.12 records one per `cvs
 *    commit`) are one commit, unless one is more than
 *    KILN_POLLER_CVS_COMMITID_SPAN seconds after the commit's first file:
 *    no `cvs commit` takes a day, so that is the id reused (a server's
 *    clock or random source gone wrong, or a hand-edited ,v file), and a
 *    new commit starts there;
 *  - revisions without one (older servers) are one commit when they have
 *    the same author and log message and each is at most
 *    KILN_POLLER_CVS_WINDOW seconds after the previous one (the rule of
 *    cvsps and cvs2svn; Buildbot's CVS mail tools made one change per
 *    directory and left the rest to the tree-stable timer).
 * File revisions already reported are remembered (revision and path, for
 * the overlap) so a re-read revision is never reported twice; the overlap
 * catches files of a commit still being written when the last poll ran.  A
 * change's revision is its newest file date, "YYYY-MM-DD HH:MM:SS +0000",
 * which is what `cvs update -D` takes.  The first poll only records where
 * the module is (dates are the server's: its clock, not the master's, is
 * what the next poll compares).
 */
#include "master/changes/poller.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/limits.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "config/config.h"

#define CVS_REV_SEP "----------------------------"
#define CVS_FILE_END "============================================================================="

void poller_cvs_revs_free(struct poller_cvs_rev *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].path);
		free(v[i].rev);
		free(v[i].author);
		free(v[i].log);
		free(v[i].commitid);
	}
	free(v);
}

/* "2026-12-02 15:45:28 +0000" or (older servers) "2026/12/02 15:45:28". */
static bool cvs_parse_date(const char *s, double *ret)
{
	int y, mo, d, h, mi, se, off = 0;
	char sep1, sep2, sign = '+';
	int k = sscanf(s, "%d%c%d%c%d %d:%d:%d %c%4d", &y, &sep1, &mo, &sep2, &d, &h, &mi, &se,
		       &sign, &off);
	if (k < 8 || sep1 != sep2 || (sep1 != '-' && sep1 != '/') || y < 1970 || y > 9999 ||
	    (k == 10 && sign != '+' && sign != '-'))
		return false;
	/* each field in its range before any arithmetic: "2000--2147483648-01"
	 * gave mo - 1 a signed overflow (UBSan) */
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
	    se < 0 || se > 60 || off < 0 || off % 100 > 59)
		return false;
	struct tm tm = {.tm_year = y - 1900,
			.tm_mon = mo - 1,
			.tm_mday = d,
			.tm_hour = h,
			.tm_min = mi,
			.tm_sec = se};
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	long secs = k == 10 ? (off / 100) * 3600L + (off % 100) * 60L : 0;
	*ret = (double)(sign == '+' ? t - secs : t + secs);
	return true;
}

/* "date: D;  author: A;  state: S;  lines: +1 -0;  commitid: C;" */
static bool cvs_parse_date_line(const char *l, struct poller_cvs_rev *r)
{
	bool have_date = false;
	_cleanup_free_ char *copy = xstrdup(l);
	char *save = NULL;
	for (char *f = strtok_r(copy, ";", &save); f; f = strtok_r(NULL, ";", &save)) {
		while (*f == ' ')
			f++;
		if (!strncmp(f, "date: ", 6))
			have_date = cvs_parse_date(f + 6, &r->when);
		else if (!strncmp(f, "author: ", 8) && !r->author)
			r->author = xstrdup(f + 8);
		else if (!strncmp(f, "state: ", 7))
			r->dead = !strcmp(f + 7, "dead");
		else if (!strncmp(f, "commitid: ", 10) && f[10] && !r->commitid)
			r->commitid = xstrdup(f + 10);
	}
	return have_date;
}

/* The line starting at p (its length in *ret_len, without '\n'); the next one. */
static const char *cvs_line(const char *p, const char *end, size_t *ret_len)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	*ret_len = (size_t)((nl ? nl : end) - p);
	return nl ? nl + 1 : end;
}

static bool cvs_line_is(const char *p, size_t n, const char *s)
{
	return n == strlen(s) && !memcmp(p, s, n);
}

static bool cvs_line_starts(const char *p, size_t n, const char *s)
{
	size_t l = strlen(s);
	return n >= l && !memcmp(p, s, l);
}

/* Does a revision start at p (the separator's next line): "revision X" then
 * a readable "date: ..." line?  A log message can hold the separator line. */
static bool cvs_rev_starts(const char *p, const char *end)
{
	size_t l1, l2;
	const char *q = cvs_line(p, end, &l1);
	if (!cvs_line_starts(p, l1, "revision ") || l1 == 9 || q >= end)
		return false;
	cvs_line(q, end, &l2);
	if (!cvs_line_starts(q, l2, "date: "))
		return false;
	_cleanup_free_ char *dl = xstrndup(q, l2);
	struct poller_cvs_rev r = {0};
	bool ok = cvs_parse_date_line(dl, &r);
	free(r.author);
	free(r.commitid);
	return ok;
}

/* Is the file-end line at p followed by the end, a blank line or a file? */
static bool cvs_file_ends(const char *p, const char *end)
{
	size_t l;
	if (p >= end)
		return true;
	cvs_line(p, end, &l);
	return l == 0 || cvs_line_starts(p, l, "RCS file: ");
}

/* The RCS file's path relative to the module: PREFIX ("ROOT/MODULE/")
 * stripped, else (the server names its root differently: a symbolic link, an
 * alias) everything up to the first "/MODULE/"; ",v" and an "Attic/" before
 * the file name dropped. */
static char *cvs_rel_path(const char *rcs, size_t n, const char *prefix, const char *module)
{
	if (n > 2 && rcs[n - 2] == ',' && rcs[n - 1] == 'v')
		n -= 2;
	_cleanup_free_ char *s = xstrndup(rcs, n);
	n = strlen(s); /* the line may hold a NUL */
	size_t pl = prefix ? strlen(prefix) : 0;
	_cleanup_free_ char *mod = module ? xasprintf("/%s/", module) : NULL;
	const char *m = mod ? strstr(s, mod) : NULL;
	if (pl && n > pl && !memcmp(s, prefix, pl))
		memmove(s, s + pl, n - pl + 1);
	else if (m)
		memmove(s, m + strlen(mod), strlen(m + strlen(mod)) + 1);
	char *base = strrchr(s, '/');
	if (base && base - s >= 5 && !strncmp(base - 5, "Attic", 5) &&
	    (base - s == 5 || base[-6] == '/'))
		memmove(base - 5, base + 1, strlen(base + 1) + 1);
	return TAKE_PTR(s);
}

int poller_cvs_parse_rlog(const char *text, size_t len, const char *prefix, const char *module,
			  struct poller_cvs_rev **ret, size_t *ret_n)
{
	struct poller_cvs_rev *v = NULL;
	size_t n = 0, alloc = 0;
	const char *end = text + len, *p = text;
	_cleanup_free_ char *path = NULL;
	enum { CVS_OUTSIDE, CVS_HEADER, CVS_LOG } where = CVS_OUTSIDE;
	struct poller_cvs_rev *r = NULL;
	const char *log_start = NULL;

	while (p < end) {
		size_t l;
		const char *line = p;
		p = cvs_line(p, end, &l);
		bool sep = cvs_line_is(line, l, CVS_REV_SEP) && cvs_rev_starts(p, end);
		bool file_end = cvs_line_is(line, l, CVS_FILE_END) && cvs_file_ends(p, end);
		if (where == CVS_LOG && (sep || file_end)) {
			/* the log runs up to this line's '\n' before */
			size_t ll = (size_t)(line - log_start);
			while (ll && (log_start[ll - 1] == '\n' || log_start[ll - 1] == '\r'))
				ll--;
			r->log = xstrndup(log_start, ll);
			r = NULL;
			where = file_end ? CVS_OUTSIDE : CVS_HEADER;
		}
		if (where == CVS_OUTSIDE) {
			if (cvs_line_starts(line, l, "RCS file: ")) {
				free(path);
				path = cvs_rel_path(line + 10, l - 10, prefix, module);
				where = CVS_HEADER;
			}
			continue;
		}
		if (where == CVS_HEADER) {
			if (file_end) {
				where = CVS_OUTSIDE;
				continue;
			}
			if (!sep)
				continue; /* head:, branch:, ..., description */
			/* "revision X" and "date: ..." (cvs_rev_starts checked both are there) */
			size_t rl, dl;
			const char *dline = cvs_line(p, end, &rl);
			const char *after = cvs_line(dline, end, &dl);
			ARRAY_GROW(v, n + 1, alloc);
			r = &v[n++];
			*r = (struct poller_cvs_rev){0};
			r->path = xstrdup(path);
			r->rev = xstrndup(p + 9, rl - 9);
			_cleanup_free_ char *dates = xstrndup(dline, dl);
			(void)cvs_parse_date_line(dates, r); /* true: cvs_rev_starts read it */
			if (!r->author)
				r->author = xstrdup("");
			/* "branches:  1.1.1;" belongs to the revision, not to its log */
			size_t bl;
			cvs_line(after, end, &bl);
			if (after < end && cvs_line_starts(after, bl, "branches: "))
				after = cvs_line(after, end, &bl);
			p = after;
			log_start = after;
			where = CVS_LOG;
			continue;
		}
	}
	if (where == CVS_LOG) { /* output cut short: keep what the log had */
		size_t ll = (size_t)(end - log_start);
		while (ll && (log_start[ll - 1] == '\n' || log_start[ll - 1] == '\r'))
			ll--;
		r->log = xstrndup(log_start, ll);
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static int cvs_cmp_when(const void *a, const void *b)
{
	const struct poller_cvs_rev *x = a, *y = b;
	if (x->when != y->when)
		return x->when < y->when ? -1 : 1;
	int c = strcmp(x->path, y->path);
	return c ? c : strcmp(x->rev, y->rev);
}

static char *cvs_format_date(double when)
{
	time_t t = (time_t)when;
	struct tm tm;
	char s[64];
	if (!gmtime_r(&t, &tm) || !strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S +0000", &tm))
		return xstrdup("1970-01-01 00:00:00 +0000");
	return xstrdup(s);
}

struct cvs_group {
	size_t first;      /* index of its first revision */
	double first_when; /* its oldest revision's date */
	double last_when;  /* its newest revision's date */
	size_t *revs;
	size_t nrevs, revs_alloc;
};

int poller_cvs_group(struct poller_cvs_rev *v, size_t n, struct change **ret, size_t *ret_n)
{
	if (n) /* qsort(NULL, 0) is undefined */
		qsort(v, n, sizeof(*v), cvs_cmp_when);
	struct cvs_group *g = NULL;
	size_t ng = 0, galloc = 0;
	json_t *keys = json_object(); /* "i" commitid / "a" author 0x1f log -> group index */
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *key = v[i].commitid ? xasprintf("i%s", v[i].commitid)
							 : xasprintf("a%s\x1f%s", v[i].author,
								     v[i].log ? v[i].log : "");
		json_t *gi = json_object_get(keys, key);
		struct cvs_group *grp = NULL;
		if (gi) {
			grp = &g[json_integer_value(gi)];
			if (!v[i].commitid && v[i].when - grp->last_when > KILN_POLLER_CVS_WINDOW)
				grp = NULL; /* the same message again, later: another commit */
			else if (v[i].commitid &&
				 v[i].when - grp->first_when > KILN_POLLER_CVS_COMMITID_SPAN)
				grp = NULL; /* the same commitid a day later: reused */
		}
		if (!grp) {
			ARRAY_GROW(g, ng + 1, galloc);
			grp = &g[ng];
			*grp = (struct cvs_group){.first = i, .first_when = v[i].when};
			json_object_set_new_nocheck(keys, key, json_integer((json_int_t)ng));
			ng++;
		}
		ARRAY_GROW(grp->revs, grp->nrevs + 1, grp->revs_alloc);
		grp->revs[grp->nrevs++] = i;
		if (v[i].when > grp->last_when)
			grp->last_when = v[i].when;
	}
	json_decref(keys);
	struct change *out = ng ? xcalloc(ng, sizeof(*out)) : NULL;
	for (size_t k = 0; k < ng; k++) {
		const struct poller_cvs_rev *f = &v[g[k].first];
		struct change *c = &out[k];
		c->author = xstrdup(f->author);
		c->comments = xstrdup(f->log ? f->log : "");
		c->when = g[k].last_when;
		c->revision = cvs_format_date(g[k].last_when);
		if (f->commitid)
			change_set_property(c, "cvs_commitid", json_string(f->commitid));
		/* a file listed once, however many of its revisions the commit has */
		json_t *files = json_object();
		for (size_t j = 0; j < g[k].nrevs; j++) {
			const char *pth = v[g[k].revs[j]].path;
			if (json_object_get(files, pth))
				continue;
			json_object_set_new_nocheck(files, pth, json_true());
			change_add_file(c, pth, strlen(pth));
		}
		json_decref(files);
		free(g[k].revs);
	}
	free(g);
	*ret = out;
	*ret_n = ng;
	return 0;
}

/* The path part of a cvsroot: ":pserver:user@host:/srv/cvs", "host:2401/srv",
 * ":local:/srv/cvs" and "/srv/cvs" all give "/srv/cvs". */
static const char *cvs_root_path(const char *root)
{
	const char *colon = strrchr(root, ':');
	const char *slash = strchr(colon ? colon : root, '/');
	return slash ? slash : root;
}

static char *cvs_time_arg(double t)
{
	_cleanup_free_ char *d = cvs_format_date(t < 0 ? 0 : t);
	return xasprintf(">=%s", d);
}

static int cvs_step(struct poller *p, const struct poller_out *out, char ***ret)
{
	const struct config_poller *cfg = poller_config(p);
	json_t *scratch = poller_scratch(p), *state = poller_state(p);
	const char *phase = json_string_value(json_object_get(scratch, "phase"));
	json_t *last = json_object_get(state, "time");
	if (!phase) {
		double since = json_is_number(last) ? json_number_value(last) : clock_wall();
		_cleanup_free_ char *d = cvs_time_arg(since - KILN_POLLER_CVS_OVERLAP);
		_cleanup_free_ char *r = cfg->branch ? xasprintf("-r%s", cfg->branch) : NULL;
		json_object_set_new(scratch, "phase", json_string("rlog"));
		*ret = poller_argv("cvs", "-q", "-d", cfg->repository, "rlog", "-N", "-S",
				   r ? r : "-b", "-d", d, "--", cfg->module, NULL);
		return 1;
	}
	if (out->status != 0)
		return poller_fail(p, "'cvs rlog' failed (exit %d): %s", out->status,
				   out->err && *out->err ? out->err : "no message");
	_cleanup_free_ char *prefix =
		xasprintf("%s/%s/", cvs_root_path(cfg->repository), cfg->module);
	struct poller_cvs_rev *v;
	size_t n;
	if (poller_cvs_parse_rlog(out->text, out->len, prefix, cfg->module, &v, &n) < 0)
		return poller_fail(p, "cannot parse the output of 'cvs rlog'");
	if (n) /* qsort(NULL, 0) is undefined */
		qsort(v, n, sizeof(*v), cvs_cmp_when);
	json_t *seen = json_object_get(state, "seen");
	bool first = !json_is_number(last);
	double newest = first ? clock_wall() : json_number_value(last);
	if (n && v[n - 1].when > newest)
		newest = v[n - 1].when;
	/* what the next poll must not report again: the revisions it will re-read */
	json_t *now_seen = json_object();
	for (size_t i = n, kept = 0; i-- > 0 && kept < KILN_POLLER_CVS_MAX_SEEN;) {
		if (v[i].when < newest - KILN_POLLER_CVS_OVERLAP)
			break;
		_cleanup_free_ char *key = xasprintf("%s %s", v[i].rev, v[i].path);
		json_object_set_new_nocheck(now_seen, key, json_true());
		/* `cvs import` makes 1.1 and 1.1.1.1 at once; -b lists the vendor one
		 * until the file changes on the trunk, then 1.1: the same commit */
		if (!strcmp(v[i].rev, "1.1.1.1")) {
			_cleanup_free_ char *k11 = xasprintf("1.1 %s", v[i].path);
			json_object_set_new_nocheck(now_seen, k11, json_true());
		}
		kept++;
	}
	/* the new revisions to the front; a dead 1.1 is CVS's mark for "added on
	 * a branch", not a commit */
	size_t nnew = 0;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *key = xasprintf("%s %s", v[i].rev, v[i].path);
		if (first || (json_is_object(seen) && json_object_get(seen, key)) ||
		    (v[i].dead && !strcmp(v[i].rev, "1.1")))
			continue;
		struct poller_cvs_rev t = v[nnew];
		v[nnew++] = v[i];
		v[i] = t;
	}
	struct change *c;
	size_t nc;
	int r = poller_cvs_group(v, nnew, &c, &nc);
	poller_cvs_revs_free(v, n);
	if (r < 0) {
		json_decref(now_seen);
		return poller_fail(p, "cannot group the revisions of 'cvs rlog'");
	}
	for (size_t i = 0; i < nc; i++) {
		if (cfg->branch)
			c[i].branch = xstrdup(cfg->branch);
		poller_emit(p, &c[i]);
	}
	free(c);
	json_object_set_new(state, "time", json_integer((json_int_t)newest));
	json_object_set_new(state, "seen", now_seen);
	return 0;
}

const struct poller_vcs poller_cvs = {"cvs", cvs_step};
