/*
 * The Subversion poller (poller.h): per poll one `svn info --xml` (the
 * repository's youngest revision and root) and, when it moved, one
 * `svn log --xml -v` over the new revisions, read with a small XML
 * scanner (the handful of elements svn writes, entities decoded).  Paths
 * are made relative to the polled URL.  The first poll only records the
 * youngest revision.
 */
#include "master/changes/poller.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "config/config.h"
#include "master/changes/hook.h"

/* The text of the first <tag ...>TEXT</tag> in [p, end), entities decoded
 * (owned), and *ret_next after it; NULL if none. */
static char *xml_element(const char *p, const char *end, const char *tag, const char **ret_attrs,
			 const char **ret_next)
{
	size_t tl = strlen(tag);
	for (;;) {
		const char *lt = memchr(p, '<', (size_t)(end - p));
		if (!lt || (size_t)(end - lt) < tl + 2)
			return NULL;
		p = lt + 1;
		if (strncmp(p, tag, tl) || (p[tl] != '>' && p[tl] != ' ' && p[tl] != '\n' &&
					    p[tl] != '\t' && p[tl] != '\r' && p[tl] != '/'))
			continue;
		const char *gt = memchr(p, '>', (size_t)(end - p));
		if (!gt)
			return NULL;
		if (ret_attrs)
			*ret_attrs = p + tl;
		if (gt[-1] == '/') { /* <tag/> */
			*ret_next = gt + 1;
			return xstrdup("");
		}
		const char *body = gt + 1, *close = body;
		for (;;) {
			close = memchr(close, '<', (size_t)(end - close));
			if (!close || (size_t)(end - close) < tl + 3)
				return NULL;
			if (close[1] == '/' && !strncmp(close + 2, tag, tl) && close[2 + tl] == '>')
				break;
			close++;
		}
		*ret_next = close + 3 + tl;
		/* decoding never lengthens the text: one allocation, no cap to hit */
		char *out = xmalloc((size_t)(close - body) + 1);
		size_t o = 0;
		for (const char *q = body; q < close; q++) {
			if (*q != '&') {
				out[o++] = *q;
				continue;
			}
			const char *semi = memchr(q, ';', (size_t)(close - q));
			size_t el = semi ? (size_t)(semi - q) : 0;
			if (el == 3 && !strncmp(q, "&lt", 3))
				out[o++] = '<';
			else if (el == 3 && !strncmp(q, "&gt", 3))
				out[o++] = '>';
			else if (el == 4 && !strncmp(q, "&amp", 4))
				out[o++] = '&';
			else if (el == 5 && !strncmp(q, "&quot", 5))
				out[o++] = '"';
			else if (el == 5 && !strncmp(q, "&apos", 5))
				out[o++] = '\'';
			else if (el > 2 && el < 10 && q[1] == '#') {
				unsigned long cp = q[2] == 'x' ? strtoul(q + 3, NULL, 16)
							       : strtoul(q + 2, NULL, 10);
				/* svn escapes control characters; keep ASCII, drop the rest */
				out[o++] = cp > 0 && cp < 0x80 ? (char)cp : '?';
			} else {
				out[o++] = '&';
				continue;
			}
			q = semi;
		}
		out[o] = '\0';
		return out;
	}
}

/* The value of attribute name in the attribute text of an element. */
static char *xml_attr(const char *attrs, const char *end, const char *name)
{
	size_t nl = strlen(name);
	const char *gt = memchr(attrs, '>', (size_t)(end - attrs));
	if (!gt)
		return NULL;
	for (const char *p = attrs; p + nl + 2 < gt; p++) {
		if ((p == attrs || p[-1] == ' ' || p[-1] == '\n' || p[-1] == '\t') &&
		    !strncmp(p, name, nl) && p[nl] == '=' && p[nl + 1] == '"') {
			const char *v = p + nl + 2;
			const char *q = memchr(v, '"', (size_t)(gt - v));
			return q ? xstrndup(v, (size_t)(q - v)) : NULL;
		}
	}
	return NULL;
}

int poller_svn_parse_log(const char *text, size_t len, const char *prefix, struct change **ret,
			 size_t *ret_n)
{
	struct change *v = NULL;
	size_t n = 0, alloc = 0;
	const char *end = text + len, *p = text, *attrs;
	size_t pl = prefix ? strlen(prefix) : 0;
	while (pl && prefix[pl - 1] == '/')
		pl--;
	char *entry;
	while ((entry = xml_element(p, end, "logentry", &attrs, &p))) {
		_cleanup_free_ char *rev = xml_attr(attrs, end, "revision");
		long long r;
		if (!rev || str_to_i64(rev, &r) < 0 || r < 0) {
			free(entry);
			change_list_free(v, n);
			return -EINVAL;
		}
		ARRAY_GROW(v, n + 1, alloc);
		struct change *c = &v[n++];
		*c = (struct change){0};
		c->revision = xstrdup(rev);
		const char *e = entry, *eend = entry + strlen(entry), *next;
		c->author = xml_element(e, eend, "author", NULL, &next);
		_cleanup_free_ char *date = xml_element(e, eend, "date", NULL, &next);
		double when;
		if (date && hook_parse_time(date, &when) == 0)
			c->when = when;
		c->comments = xml_element(e, eend, "msg", NULL, &next);
		char *path;
		const char *q = e;
		while ((path = xml_element(q, eend, "path", NULL, &q))) {
			const char *rel = path;
			bool inside = !pl || (!strncmp(path, prefix, pl) &&
					      (path[pl] == '/' || path[pl] == '\0'));
			if (inside) {
				rel = path + pl;
				while (*rel == '/')
					rel++;
				if (*rel)
					change_add_file(c, rel, strlen(rel));
			}
			free(path);
		}
		if (!c->author)
			c->author = xstrdup("");
		free(entry);
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* %XX-decoded copy of a URL path part. */
static char *svn_unescape(const char *s)
{
	/* decoding never lengthens the text: one allocation, no cap to hit */
	char *out = xmalloc(strlen(s) + 1);
	size_t o = 0;
	for (const char *p = s; *p; p++) {
		unsigned v;
		if (*p == '%' && p[1] && p[2] && sscanf(p + 1, "%2x", &v) == 1) {
			out[o++] = (char)v;
			p += 2;
		} else
			out[o++] = *p;
	}
	out[o] = '\0';
	return out;
}

static int svn_step(struct poller *p, const struct poller_out *out, char ***ret)
{
	const struct config_poller *cfg = poller_config(p);
	json_t *scratch = poller_scratch(p), *state = poller_state(p);
	const char *phase = json_string_value(json_object_get(scratch, "phase"));
	if (!phase) {
		json_object_set_new(scratch, "phase", json_string("info"));
		*ret = poller_argv("svn", "info", "--xml", "--non-interactive", "--",
				   cfg->repository, NULL);
		return 1;
	}
	if (out->status != 0)
		return poller_fail(p, "'svn %s' failed (exit %d): %s", phase, out->status,
				   out->err && *out->err ? out->err : "no message");
	const char *end = out->text + out->len, *next, *attrs;
	if (!strcmp(phase, "info")) {
		_cleanup_free_ char *entry = xml_element(out->text, end, "entry", &attrs, &next);
		_cleanup_free_ char *rev = entry ? xml_attr(attrs, end, "revision") : NULL;
		long long head;
		if (!rev || str_to_i64(rev, &head) < 0)
			return poller_fail(p, "cannot parse the output of 'svn info'");
		_cleanup_free_ char *url = xml_element(out->text, end, "url", NULL, &next);
		_cleanup_free_ char *root = xml_element(out->text, end, "root", NULL, &next);
		if (url && root && !strncmp(url, root, strlen(root))) {
			_cleanup_free_ char *prefix = svn_unescape(url + strlen(root));
			json_object_set_new(scratch, "prefix", json_string(prefix));
		}
		json_t *last = json_object_get(state, "rev");
		if (!json_is_integer(last)) {
			/* the first poll: remember the youngest revision, make no changes */
			json_object_set_new(state, "rev", json_integer(head));
			return 0;
		}
		if (head <= json_integer_value(last))
			return 0;
		json_object_set_new(scratch, "head", json_integer(head));
		_cleanup_free_ char *range =
			xasprintf("%lld:%lld", (long long)json_integer_value(last) + 1, head);
		_cleanup_free_ char *limit = xasprintf("%d", KILN_POLLER_MAX_COMMITS);
		json_object_set_new(scratch, "phase", json_string("log"));
		*ret = poller_argv("svn", "log", "--xml", "-v", "--non-interactive", "-r", range,
				   "--limit", limit, "--", cfg->repository, NULL);
		return 1;
	}
	/* log */
	struct change *v;
	size_t n;
	const char *prefix = json_string_value(json_object_get(scratch, "prefix"));
	if (poller_svn_parse_log(out->text, out->len, prefix, &v, &n) < 0)
		return poller_fail(p, "cannot parse the output of 'svn log'");
	long long max = json_integer_value(json_object_get(scratch, "head"));
	if (n == KILN_POLLER_MAX_COMMITS) {
		long long last;
		if (str_to_i64(v[n - 1].revision, &last) == 0)
			max = last; /* the rest comes with the next poll */
	}
	for (size_t i = 0; i < n; i++) {
		if (cfg->branch)
			v[i].branch = xstrdup(cfg->branch);
		poller_emit(p, &v[i]);
	}
	free(v);
	json_object_set_new(state, "rev", json_integer(max));
	return 0;
}

const struct poller_vcs poller_svn = {"svn", svn_step};
