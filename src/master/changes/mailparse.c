/*
 * Commit e-mails into changes (mailparse.h).  Everything here reads a
 * bounded copy of one mail; no allocation grows past the mail's size and
 * the caps in mailparse.h.
 */
#include "master/changes/mailparse.h"
#include "common/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#define MAILPARSE_MAX_HEADERS 128

struct mp_header {
	char *name, *value; /* owned */
};

struct mp {
	struct mp_header h[MAILPARSE_MAX_HEADERS];
	size_t nh;
	char *from_line; /* owned: an mbox "From SHA date" first line, or NULL */
	char *body;      /* owned: decoded, LF lines, NUL-terminated */
	size_t body_len;
};

const char *mailparse_kind_name(enum mailparse_kind k)
{
	return k == MAILPARSE_HG ? "hg" : k == MAILPARSE_SVN ? "svn" : "git";
}

static void mp_free(struct mp *m)
{
	for (size_t i = 0; i < m->nh; i++) {
		free(m->h[i].name);
		free(m->h[i].value);
	}
	free(m->from_line);
	free(m->body);
}

static const char *mp_get(const struct mp *m, const char *name)
{
	for (size_t i = 0; i < m->nh; i++)
		if (!strcasecmp(m->h[i].name, name))
			return m->h[i].value;
	return NULL;
}

/* One line of [p, end): *ret_len without its "\n" or "\r\n"; the next. */
static const char *mp_line(const char *p, const char *end, size_t *ret_len)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	const char *e = nl ? nl : end;
	size_t n = (size_t)(e - p);
	if (n && p[n - 1] == '\r')
		n--;
	*ret_len = n;
	return nl ? nl + 1 : end;
}

static char *mp_strndup_trim(const char *s, size_t n)
{
	while (n && isspace((unsigned char)*s))
		s++, n--;
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return xstrndup(s, n);
}

/* Quoted-printable into out (the same size or smaller). */
static size_t mp_qp_decode(const char *s, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '=') {
			out[o++] = s[i];
			continue;
		}
		if (i + 1 < n && s[i + 1] == '\n') { /* soft line break */
			i++;
			continue;
		}
		if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
			i += 2;
			continue;
		}
		if (i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
		    isxdigit((unsigned char)s[i + 2])) {
			char hex[3] = {s[i + 1], s[i + 2], 0};
			out[o++] = (char)strtol(hex, NULL, 16);
			i += 2;
			continue;
		}
		out[o++] = '=';
	}
	return o;
}

/* Headers and the decoded body; -EINVAL with *why. */
static int mp_split(const char *text, size_t len, struct mp *m, const char **why)
{
	const char *p = text, *end = text + len;
	size_t n;
	if (len >= 5 && !memcmp(p, "From ", 5)) {
		const char *next = mp_line(p, end, &n);
		m->from_line = xstrndup(p + 5, n - 5);
		p = next;
	}
	bool any = false;
	while (p < end) {
		const char *next = mp_line(p, end, &n);
		if (n == 0) {
			p = next;
			break;
		}
		if ((*p == ' ' || *p == '\t') && m->nh) {
			/* a folded header: appended with one space, within the cap */
			struct mp_header *h = &m->h[m->nh - 1];
			size_t have = strlen(h->value);
			size_t add = n;
			while (add && (*p == ' ' || *p == '\t'))
				p++, add--;
			size_t sep = have ? 1 : 0;
			if (have + sep + add <= MAILPARSE_MAX_HEADER) {
				h->value = xrealloc(h->value, have + sep + add + 1);
				if (sep)
					h->value[have] = ' ';
				memcpy(h->value + have + sep, p, add);
				h->value[have + sep + add] = '\0';
			}
			p = next;
			continue;
		}
		const char *colon = memchr(p, ':', n);
		if (!colon || colon == p) {
			if (!any) {
				*why = "no mail headers";
				return -EINVAL;
			}
			break; /* a body without the empty line */
		}
		if (m->nh < MAILPARSE_MAX_HEADERS) {
			size_t vlen = n - (size_t)(colon + 1 - p);
			if (vlen > MAILPARSE_MAX_HEADER)
				vlen = MAILPARSE_MAX_HEADER;
			m->h[m->nh].name = mp_strndup_trim(p, (size_t)(colon - p));
			m->h[m->nh].value = mp_strndup_trim(colon + 1, vlen);
			m->nh++;
		}
		any = true;
		p = next;
	}
	if (!any) {
		*why = "no mail headers";
		return -EINVAL;
	}
	const char *ct = mp_get(m, "Content-Type");
	if (ct && !strncasecmp(ct, "multipart/", 10)) {
		*why = "a multipart mail (commit mails are text/plain)";
		return -EINVAL;
	}
	/* the body, CRLF to LF, decoded */
	size_t blen = (size_t)(end - p);
	char *raw = xmalloc(blen + 1);
	size_t o = 0;
	for (size_t i = 0; i < blen; i++)
		if (!(p[i] == '\r' && i + 1 < blen && p[i + 1] == '\n'))
			raw[o++] = p[i];
	raw[o] = '\0';
	const char *cte = mp_get(m, "Content-Transfer-Encoding");
	if (cte && !strcasecmp(cte, "quoted-printable")) {
		o = mp_qp_decode(raw, o, raw);
		raw[o] = '\0';
	} else if (cte && !strcasecmp(cte, "base64")) {
		char *dec = xmalloc(o + 1);
		size_t dlen = 0;
		if (sodium_base642bin((unsigned char *)dec, o, raw, o, " \t\r\n", &dlen, NULL,
				      sodium_base64_VARIANT_ORIGINAL) < 0) {
			free(dec);
			free(raw);
			*why = "a base64 body that does not decode";
			return -EINVAL;
		}
		dec[dlen] = '\0';
		free(raw);
		raw = dec;
		o = dlen;
	} else if (cte && strcasecmp(cte, "7bit") && strcasecmp(cte, "8bit") &&
		   strcasecmp(cte, "binary")) {
		free(raw);
		*why = "an unknown Content-Transfer-Encoding";
		return -EINVAL;
	}
	if (memchr(raw, '\0', o)) {
		free(raw);
		*why = "a NUL byte in the body";
		return -EINVAL;
	}
	m->body = raw;
	m->body_len = o;
	return 0;
}

/* ---- helpers for the formats ---------------------------------------------------------- */

static bool mp_starts(const char *s, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);
	return n >= k && !memcmp(s, prefix, k);
}

static void mp_add_file(struct change *c, const char *s, size_t n)
{
	while (n && isspace((unsigned char)*s))
		s++, n--;
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	if (n == 0 || c->nfiles >= MAILPARSE_MAX_FILES)
		return;
	for (size_t i = 0; i < c->nfiles; i++)
		if (strlen(c->files[i]) == n && !memcmp(c->files[i], s, n))
			return;
	change_add_file(c, s, n);
}

/* A diffstat line " path | 2 +-" (or " path | Bin 0 -> 12 bytes"): the path. */
static bool mp_diffstat_path(const char *s, size_t n, const char **ret, size_t *ret_n)
{
	const char *bar = memchr(s, '|', n);
	if (!bar || n < 3 || s[0] != ' ')
		return false;
	const char *after = bar + 1;
	size_t rest = n - (size_t)(after - s);
	while (rest && *after == ' ')
		after++, rest--;
	if (!rest || !(isdigit((unsigned char)*after) || mp_starts(after, rest, "Bin")))
		return false;
	*ret = s;
	*ret_n = (size_t)(bar - s);
	return true;
}

/* RFC 5322 date: seconds, or 0 (now) when it does not parse. */
static double mp_date(const char *d)
{
	if (!d)
		return 0;
	struct tm tm;
	const char *fmts[] = {"%a, %d %b %Y %H:%M:%S %z", "%d %b %Y %H:%M:%S %z",
			      "%Y-%m-%d %H:%M:%S %z", "%a %b %d %H:%M:%S %Y %z"};
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		memset(&tm, 0, sizeof(tm));
		const char *e = strptime(d, fmts[i], &tm);
		if (e) {
			long off = tm.tm_gmtoff; /* %z's; timegm() resets it */
			time_t t = timegm(&tm);
			if (t == (time_t)-1)
				return 0;
			return (double)(t - off);
		}
	}
	return 0;
}

/* Appends s[0..n) as a line to *buf (owned; *have its length; grows
 * geometrically, within the body's size). */
static void mp_append_line(char **buf, size_t *have, const char *s, size_t n)
{
	/* the allocation is a power of two >= 64 holding *have + 1 bytes */
	size_t cap = 0, need = *have + n + 2;
	if (*buf)
		for (cap = 64; cap < *have + 1; cap *= 2)
			;
	if (need > cap) {
		size_t c = 64;
		while (c < need)
			c *= 2;
		*buf = xrealloc(*buf, c);
	}
	memcpy(*buf + *have, s, n);
	(*buf)[*have + n] = '\n';
	(*buf)[*have + n + 1] = '\0';
	*have += n + 1;
}

static void mp_trim_comments(struct change *c)
{
	if (!c->comments)
		c->comments = xstrdup("");
	size_t n = strlen(c->comments);
	while (n && isspace((unsigned char)c->comments[n - 1]))
		c->comments[--n] = '\0';
}

/* svn: trunk/X -> branch "trunk"; branches/B/X -> "branches/B"; the files
 * made relative to it when they all share it. */
static void mp_svn_branch(struct change *c)
{
	if (!c->nfiles)
		return;
	char *br = NULL;
	const char *f0 = c->files[0];
	if (!strncmp(f0, "trunk/", 6))
		br = xstrdup("trunk");
	else if (!strncmp(f0, "branches/", 9) && strchr(f0 + 9, '/'))
		br = xstrndup(f0, (size_t)(strchr(f0 + 9, '/') - f0));
	if (!br)
		return;
	size_t bl = strlen(br);
	for (size_t i = 0; i < c->nfiles; i++)
		if (strncmp(c->files[i], br, bl) || c->files[i][bl] != '/') {
			free(br);
			return;
		}
	for (size_t i = 0; i < c->nfiles; i++)
		memmove(c->files[i], c->files[i] + bl + 1, strlen(c->files[i] + bl + 1) + 1);
	c->branch = br;
}

/* ---- the formats ------------------------------------------------------------------------ */

static int mp_git_push(const struct mp *m, struct change *c, const char **why)
{
	size_t clen = 0; /* of c->comments */
	const char *ref = mp_get(m, "X-Git-Refname"), *rev = mp_get(m, "X-Git-Newrev");
	if (!rev || !*rev) {
		*why = "a git push mail without X-Git-Newrev";
		return -EINVAL;
	}
	c->revision = xstrdup(rev);
	if (ref && !strncmp(ref, "refs/heads/", 11))
		c->branch = xstrdup(ref + 11);
	else if (ref && *ref)
		c->branch = xstrdup(ref);
	const char *repo = mp_get(m, "X-Git-Repo");
	const char *subj = mp_get(m, "Subject");
	if (repo && *repo)
		c->repository = xstrdup(repo);
	else if (subj && subj[0] == '[' && strchr(subj, ']'))
		c->repository = xstrndup(subj + 1, (size_t)(strchr(subj, ']') - subj - 1));
	const char *p = m->body, *end = m->body + m->body_len;
	bool in_msg = false, in_summary = false;
	size_t n;
	while (p < end) {
		const char *line = p;
		p = mp_line(p, end, &n);
		if (mp_starts(line, n, "commit ") && n > 7) {
			in_msg = false;
			continue;
		}
		if (mp_starts(line, n, "Author:") && !c->author) {
			c->author = mp_strndup_trim(line + 7, n - 7);
			continue;
		}
		if (mp_starts(line, n, "Date:") && !in_msg) {
			if (!c->when) {
				char *d = mp_strndup_trim(line + 5, n - 5);
				c->when = mp_date(d);
				free(d);
			}
			in_msg = true;
			continue;
		}
		if (mp_starts(line, n, "Summary of changes:")) {
			in_msg = false;
			in_summary = true;
			continue;
		}
		if (in_summary) {
			const char *f;
			size_t fl;
			if (mp_diffstat_path(line, n, &f, &fl))
				mp_add_file(c, f, fl);
			continue;
		}
		if (in_msg && n >= 4 && !memcmp(line, "    ", 4))
			mp_append_line(&c->comments, &clen, line + 4, n - 4);
		else if (in_msg && n == 0 && c->comments)
			mp_append_line(&c->comments, &clen, "", 0);
	}
	if (!c->author && mp_get(m, "From"))
		c->author = xstrdup(mp_get(m, "From"));
	if (!c->comments && subj)
		c->comments = xstrdup(subj);
	return 0;
}

static int mp_git_patch(const struct mp *m, struct change *c, const char **why)
{
	size_t clen = 0; /* of c->comments */
	const char *subj = mp_get(m, "Subject"), *from = mp_get(m, "From");
	if (!from) {
		*why = "a patch mail without From:";
		return -EINVAL;
	}
	c->author = xstrdup(from);
	if (m->from_line) {
		size_t k = strcspn(m->from_line, " ");
		if (k >= 7 && k <= 64)
			c->revision = xstrndup(m->from_line, k);
	}
	c->when = mp_date(mp_get(m, "Date"));
	if (subj) {
		const char *s = subj;
		if (s[0] == '[' && strchr(s, ']')) /* "[PATCH v2 1/3] title" */
			s = strchr(s, ']') + 1;
		while (*s == ' ')
			s++;
		mp_append_line(&c->comments, &clen, s, strlen(s));
	}
	const char *p = m->body, *end = m->body + m->body_len;
	bool in_msg = true, started = false;
	size_t n;
	while (p < end) {
		const char *line = p;
		p = mp_line(p, end, &n);
		if (in_msg && n == 3 && !memcmp(line, "---", 3)) {
			in_msg = false;
			continue;
		}
		if (mp_starts(line, n, "diff --git a/")) {
			in_msg = false;
			const char *b = NULL;
			for (size_t i = 13; i + 3 <= n && !b; i++)
				if (!memcmp(line + i, " b/", 3))
					b = line + i + 3;
			if (b)
				mp_add_file(c, b, (size_t)(line + n - b));
			continue;
		}
		if (in_msg) {
			if (!started && n == 0)
				continue;            /* blank lines before the message */
			if (!started && c->comments) /* a blank line after the subject */
				mp_append_line(&c->comments, &clen, "", 0);
			started = true;
			mp_append_line(&c->comments, &clen, line, n);
		}
	}
	if (!c->nfiles) {
		*why = "a patch mail without any 'diff --git' section";
		return -EINVAL;
	}
	return 0;
}

static int mp_hg(const struct mp *m, struct change *c, const char **why)
{
	size_t clen = 0; /* of c->comments */
	const char *p = m->body, *end = m->body + m->body_len;
	bool in_desc = false, in_stat = false;
	size_t n;
	const char *hdr = mp_get(m, "X-Hg-Notification");
	if (hdr && !strncmp(hdr, "changeset ", 10))
		c->revision = mp_strndup_trim(hdr + 10, strlen(hdr + 10));
	while (p < end) {
		const char *line = p;
		p = mp_line(p, end, &n);
		if (mp_starts(line, n, "changeset ") && !in_desc) {
			const char *in = NULL;
			for (size_t i = 10; i + 4 <= n && !in; i++)
				if (!memcmp(line + i, " in ", 4))
					in = line + i;
			size_t rl = in ? (size_t)(in - line - 10) : n - 10;
			if (!c->revision)
				c->revision = mp_strndup_trim(line + 10, rl);
			if (in && !c->repository)
				c->repository =
					mp_strndup_trim(in + 4, (size_t)(line + n - in - 4));
			continue;
		}
		if (!in_desc && mp_starts(line, n, "user:") && !c->author) {
			c->author = mp_strndup_trim(line + 5, n - 5);
			continue;
		}
		if (!in_desc && mp_starts(line, n, "branch:") && !c->branch) {
			c->branch = mp_strndup_trim(line + 7, n - 7);
			continue;
		}
		if (!in_desc && mp_starts(line, n, "date:") && !c->when) {
			char *d = mp_strndup_trim(line + 5, n - 5);
			c->when = mp_date(d);
			free(d);
			continue;
		}
		if (mp_starts(line, n, "description:")) {
			in_desc = true;
			continue;
		}
		if (mp_starts(line, n, "diffstat:")) {
			in_desc = false;
			in_stat = true;
			continue;
		}
		if (mp_starts(line, n, "diffs (")) {
			in_desc = false;
			in_stat = false;
			continue;
		}
		if (mp_starts(line, n, "diff -r ")) {
			in_desc = false;
			/* "diff -r A -r B path" or "diff -r A path" (a new file) */
			const char *s = line + 8;
			size_t rest = n - 8;
			for (int k = 0; k < 2 && rest; k++) {
				const char *sp = memchr(s, ' ', rest);
				if (!sp)
					break;
				rest -= (size_t)(sp + 1 - s);
				s = sp + 1;
				if (k == 0 && !mp_starts(s, rest, "-r "))
					break;
				if (k == 0) {
					s += 3;
					rest -= 3;
				}
			}
			if (rest)
				mp_add_file(c, s, rest);
			continue;
		}
		if (in_stat) {
			const char *f;
			size_t fl;
			if (mp_diffstat_path(line, n, &f, &fl))
				mp_add_file(c, f, fl);
			continue;
		}
		if (in_desc) {
			const char *s = line;
			size_t k = n;
			if (k && *s == '\t')
				s++, k--;
			if (c->comments || k)
				mp_append_line(&c->comments, &clen, s, k);
		}
	}
	if (!c->revision || !*c->revision) {
		*why = "an hg notify mail without a changeset";
		return -EINVAL;
	}
	if (!c->author && mp_get(m, "From"))
		c->author = xstrdup(mp_get(m, "From"));
	if (!c->when)
		c->when = mp_date(mp_get(m, "Date"));
	return 0;
}

/* svn commit-email.pl and SVN::Notify. */
static int mp_svn(const struct mp *m, struct change *c, const char **why)
{
	size_t clen = 0; /* of c->comments */
	const char *p = m->body, *end = m->body + m->body_len;
	enum { NONE, LOG, PATHS, NOTIFY_REV, NOTIFY_AUTHOR, NOTIFY_DATE } st = NONE;
	size_t n;
	while (p < end) {
		const char *line = p;
		p = mp_line(p, end, &n);
		/* commit-email.pl */
		if (st != LOG && mp_starts(line, n, "Author:") && !c->author) {
			c->author = mp_strndup_trim(line + 7, n - 7);
			continue;
		}
		if (st != LOG && mp_starts(line, n, "New Revision:") && !c->revision) {
			c->revision = mp_strndup_trim(line + 13, n - 13);
			continue;
		}
		if (st != LOG && mp_starts(line, n, "Date:") && !c->when) {
			char *d = mp_strndup_trim(line + 5, n - 5);
			c->when = mp_date(d);
			free(d);
			continue;
		}
		if ((n == 4 && !memcmp(line, "Log:", 4)) ||
		    (n == 11 && !memcmp(line, "Log Message", 11))) {
			st = LOG;
			continue;
		}
		if ((n >= 9 && !memcmp(line, "Modified:", 9) && n == 9) ||
		    (n == 6 && !memcmp(line, "Added:", 6)) ||
		    (n == 8 && !memcmp(line, "Deleted:", 8)) ||
		    (n == 7 && !memcmp(line, "Copied:", 7)) ||
		    (n == 9 && !memcmp(line, "Replaced:", 9)) ||
		    (n >= 6 && line[0] != ' ' && !memcmp(line + n - 6, " Paths", 6))) {
			st = PATHS;
			continue;
		}
		/* SVN::Notify's sections: a word on its own line, the value indented */
		if (n == 8 && !memcmp(line, "Revision", 8)) {
			st = NOTIFY_REV;
			continue;
		}
		if (n == 6 && !memcmp(line, "Author", 6) && st != LOG) {
			st = NOTIFY_AUTHOR;
			continue;
		}
		if (n == 4 && !memcmp(line, "Date", 4) && st != LOG) {
			st = NOTIFY_DATE;
			continue;
		}
		if (n && line[0] == '-' && strspn(line, "-") >= n)
			continue; /* SVN::Notify's underlines */
		switch (st) {
		case LOG:
			if (n >= 9 && !memcmp(line, "Modified:", 9))
				st = PATHS;
			else if (c->comments || n)
				mp_append_line(&c->comments, &clen, line, n);
			break;
		case PATHS:
			if (n && (line[0] == ' ' || line[0] == '\t')) {
				/* "   trunk/a.c" or "   trunk/b.c (from r3, trunk/a.c)" */
				const char *s = line;
				size_t k = n;
				while (k && (*s == ' ' || *s == '\t'))
					s++, k--;
				const char *from = NULL;
				for (size_t i = 0; i + 7 <= k && !from; i++)
					if (!memcmp(s + i, " (from ", 7))
						from = s + i;
				mp_add_file(c, s, from ? (size_t)(from - s) : k);
			}
			break;
		case NOTIFY_REV:
		case NOTIFY_AUTHOR:
		case NOTIFY_DATE:
			if (n && (line[0] == ' ' || line[0] == '\t')) {
				char *v = mp_strndup_trim(line, n);
				if (st == NOTIFY_REV && !c->revision)
					c->revision = v, v = NULL;
				else if (st == NOTIFY_AUTHOR && !c->author)
					c->author = v, v = NULL;
				else if (st == NOTIFY_DATE && !c->when) {
					/* "2026-12-03 10:00:00 +0000 (Thu, 03 Dec 2026)" */
					char *paren = strchr(v, '(');
					if (paren)
						*paren = '\0';
					c->when = mp_date(v);
				}
				free(v);
				st = NONE;
			}
			break;
		default:
			break;
		}
	}
	const char *subj = mp_get(m, "Subject");
	if (!c->revision && subj && !strncmp(subj, "svn commit: r", 13))
		c->revision = xstrndup(subj + 12, strspn(subj + 13, "0123456789") + 1);
	if (c->revision && c->revision[0] == 'r')
		memmove(c->revision, c->revision + 1, strlen(c->revision));
	if (!c->revision || !*c->revision ||
	    strspn(c->revision, "0123456789") != strlen(c->revision)) {
		*why = "an svn commit mail without a revision number";
		return -EINVAL;
	}
	if (!c->author && mp_get(m, "From"))
		c->author = xstrdup(mp_get(m, "From"));
	if (!c->when)
		c->when = mp_date(mp_get(m, "Date"));
	mp_svn_branch(c);
	return 0;
}

int mailparse_parse(const char *text, size_t len, struct change *ret, enum mailparse_kind *ret_kind,
		    const char **ret_why)
{
	*ret = (struct change){0};
	*ret_why = NULL;
	if (len > MAILPARSE_MAX_MAIL) {
		*ret_why = "over the size cap";
		return -EINVAL;
	}
	struct mp m = {0};
	int r = mp_split(text, len, &m, ret_why);
	if (r < 0) {
		mp_free(&m);
		return r;
	}
	const char *subj = mp_get(&m, "Subject");
	const char *b = m.body;
	enum mailparse_kind kind;
	if (mp_get(&m, "X-Git-Newrev") || mp_get(&m, "X-Git-Refname")) {
		kind = MAILPARSE_GIT;
		r = mp_git_push(&m, ret, ret_why);
	} else if (mp_get(&m, "X-Hg-Notification") || !strncmp(b, "changeset ", 10)) {
		kind = MAILPARSE_HG;
		r = mp_hg(&m, ret, ret_why);
	} else if ((subj && !strncmp(subj, "svn commit: r", 13)) || strstr(b, "\nNew Revision: ") ||
		   !strncmp(b, "Revision\n", 9) || strstr(b, "\nRevision\n")) {
		kind = MAILPARSE_SVN;
		r = mp_svn(&m, ret, ret_why);
	} else if ((subj && strstr(subj, "[PATCH")) || strstr(b, "\ndiff --git a/") ||
		   !strncmp(b, "diff --git a/", 13)) {
		kind = MAILPARSE_GIT;
		r = mp_git_patch(&m, ret, ret_why);
	} else {
		*ret_why = "not a commit mail (no git, hg or svn markers)";
		r = -EINVAL;
	}
	mp_free(&m);
	if (r >= 0 && (!ret->author || !*ret->author)) {
		*ret_why = "no author";
		r = -EINVAL;
	}
	if (r < 0) {
		change_release(ret);
		*ret = (struct change){0};
		return r;
	}
	mp_trim_comments(ret);
	*ret_kind = kind;
	return 0;
}
