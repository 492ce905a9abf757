/*
 * The Darcs poller (poller.h): a complete copy of the repository without a
 * working tree under BASEDIR/pollers/NAME/repo, and per poll one `darcs
 * pull --all` into it and one `darcs log --xml-output --summary` over the
 * patches from the last one seen (pulled patches go after the copy's own,
 * so they are the ones listed before it).  The XML is read with libxml2's
 * streaming reader.  At most KILN_POLLER_MAX_COMMITS patches per poll (the
 * newest, as the git poller).  A last-seen patch that is gone (the copy was
 * remade from a repository that obliterated it) yields one change for the
 * newest patch.  The first poll only records the newest patch.  Darcs has
 * no branches: the changes' branch is the configured `branch`.
 */
#include "master/changes/poller.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libxml/xmlreader.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "config/config.h"

/* A copy of the output libxml2 accepts: valid UTF-8 (str_utf8_sanitize), and
 * the characters XML 1.0 forbids (the controls darcs writes raw, U+FFFE/F)
 * as '?'.  NULL when the output is over the buffer's cap (not reached: 3n). */
static char *darcs_xml_clean(const char *text, size_t len, size_t *ret_len)
{
	struct buf b;
	buf_init(&b, 3 * len + 1);
	if (str_utf8_sanitize(&b, text, len) < 0) {
		buf_release(&b);
		return NULL;
	}
	size_t n;
	char *s = buf_detach(&b, &n);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
			s[i] = '?';
		else if (c == 0xef && i + 2 < n && (unsigned char)s[i + 1] == 0xbf &&
			 ((unsigned char)s[i + 2] == 0xbe || (unsigned char)s[i + 2] == 0xbf))
			s[i] = s[i + 1] = s[i + 2] = '?';
	}
	*ret_len = n;
	return s;
}

/* "20261202154431" (UTC) → seconds; 0 when unreadable. */
static double darcs_parse_date(const char *s)
{
	int y, mo, d, h, mi, se;
	if (!s || strlen(s) != 14 ||
	    sscanf(s, "%4d%2d%2d%2d%2d%2d", &y, &mo, &d, &h, &mi, &se) != 6 || y < 1970)
		return 0;
	struct tm tm = {.tm_year = y - 1900,
			.tm_mon = mo - 1,
			.tm_mday = d,
			.tm_hour = h,
			.tm_min = mi,
			.tm_sec = se};
	time_t t = timegm(&tm);
	return t == (time_t)-1 ? 0 : (double)t;
}

static bool darcs_is_hash(const char *h)
{
	size_t n = strlen(h);
	return n >= 20 && n <= 128 && strspn(h, "0123456789abcdef") == n;
}

/* A path from the summary, surrounding white space and a leading "./" dropped. */
static void darcs_add_path(struct change *c, const char *p)
{
	if (!p)
		return;
	size_t n = strlen(p);
	while (n && strchr(" \t\r\n", p[n - 1]))
		n--;
	while (n && strchr(" \t\r\n", *p)) {
		p++;
		n--;
	}
	if (n >= 2 && p[0] == '.' && p[1] == '/') {
		p += 2;
		n -= 2;
	}
	if (n)
		change_add_file(c, p, n);
}

static char *darcs_attr(xmlTextReaderPtr r, const char *name)
{
	xmlChar *a = xmlTextReaderGetAttribute(r, (const xmlChar *)name);
	if (!a)
		return NULL;
	char *s = xstrdup((const char *)a);
	xmlFree(a);
	return s;
}

/* name + "\n" + the long comment without darcs' "Ignore-this: HASH" line,
 * as the author wrote them into `darcs record` (first line = name). */
static char *darcs_comments(const char *name, const char *comment)
{
	const char *body = comment ? comment : "";
	if (!strncmp(body, "Ignore-this: ", 13)) {
		const char *nl = strchr(body, '\n');
		body = nl ? nl + 1 : "";
	}
	size_t bl = strlen(body);
	while (bl && (body[bl - 1] == '\n' || body[bl - 1] == '\r'))
		bl--;
	if (!bl)
		return xstrdup(name ? name : "");
	return xasprintf("%s\n%.*s", name ? name : "", (int)bl, body);
}

enum darcs_field { DARCS_NONE, DARCS_NAME, DARCS_COMMENT, DARCS_PATH };

int poller_darcs_parse_log(const char *text, size_t len, struct change **ret, size_t *ret_n)
{
	size_t clen;
	_cleanup_free_ char *clean = darcs_xml_clean(text, len, &clen);
	if (!clean || clen > (size_t)INT32_MAX)
		return -EINVAL;
	/* no network, no DTD, no entity expansion beyond XML's five; HUGE because
	 * the poller already caps the output (KILN_MAX_POLLER_OUTPUT) and a long
	 * commit message must not stop the poller */
	xmlTextReaderPtr r = xmlReaderForMemory(clean, (int)clen, NULL, "UTF-8",
						XML_PARSE_NONET | XML_PARSE_HUGE |
							XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!r)
		return -EINVAL;
	struct change *v = NULL;
	size_t n = 0, alloc = 0;
	struct change *c = NULL;
	enum darcs_field field = DARCS_NONE;
	int field_depth = 0;
	struct buf text_buf; /* the current field's text */
	buf_init(&text_buf, clen + 1);
	char *name = NULL, *comment = NULL;
	int ret_code = 0, rr;

	while ((rr = xmlTextReaderRead(r)) == 1) {
		int type = xmlTextReaderNodeType(r);
		const char *el = (const char *)xmlTextReaderConstLocalName(r);
		int depth = xmlTextReaderDepth(r);
		if (type == XML_READER_TYPE_ELEMENT && el) {
			if (!strcmp(el, "patch")) {
				if (c) { /* a patch inside a patch: not darcs' output */
					ret_code = -EINVAL;
					break;
				}
				ARRAY_GROW(v, n + 1, alloc);
				c = &v[n++];
				*c = (struct change){0};
				c->revision = darcs_attr(r, "hash");
				c->author = darcs_attr(r, "author");
				_cleanup_free_ char *date = darcs_attr(r, "date");
				c->when = darcs_parse_date(date);
				if (!c->revision || !darcs_is_hash(c->revision)) {
					ret_code = -EINVAL;
					break;
				}
				if (xmlTextReaderIsEmptyElement(r))
					goto patch_end;
				continue;
			}
			if (!c || field != DARCS_NONE)
				continue; /* <added_lines/> inside <modify_file> and such */
			if (!strcmp(el, "move")) {
				_cleanup_free_ char *from = darcs_attr(r, "from");
				_cleanup_free_ char *to = darcs_attr(r, "to");
				darcs_add_path(c, from);
				darcs_add_path(c, to);
				continue;
			}
			if (!strcmp(el, "name"))
				field = DARCS_NAME;
			else if (!strcmp(el, "comment"))
				field = DARCS_COMMENT;
			else if (!strcmp(el, "add_file") || !strcmp(el, "add_directory") ||
				 !strcmp(el, "modify_file") || !strcmp(el, "remove_file") ||
				 !strcmp(el, "remove_directory"))
				field = DARCS_PATH;
			else
				continue;
			field_depth = depth;
			buf_reset(&text_buf);
			if (xmlTextReaderIsEmptyElement(r))
				goto field_end;
			continue;
		}
		if ((type == XML_READER_TYPE_TEXT || type == XML_READER_TYPE_CDATA ||
		     type == XML_READER_TYPE_SIGNIFICANT_WHITESPACE ||
		     type == XML_READER_TYPE_WHITESPACE) &&
		    field != DARCS_NONE && depth == field_depth + 1) {
			const char *t = (const char *)xmlTextReaderConstValue(r);
			/* never over: the buffer is as large as the whole input */
			if (t && buf_adds(&text_buf, t) < 0) {
				ret_code = -EINVAL;
				break;
			}
			continue;
		}
		if (type != XML_READER_TYPE_END_ELEMENT || !el)
			continue;
		if (field != DARCS_NONE && depth == field_depth)
			goto field_end;
		if (c && !strcmp(el, "patch"))
			goto patch_end;
		continue;
	field_end : {
		_cleanup_free_ char *t = buf_detach(&text_buf, NULL);
		if (field == DARCS_NAME) {
			free(name);
			name = TAKE_PTR(t);
		} else if (field == DARCS_COMMENT) {
			free(comment);
			comment = TAKE_PTR(t);
		} else {
			darcs_add_path(c, t);
		}
		field = DARCS_NONE;
		continue;
	}
	patch_end:
		c->comments = darcs_comments(name, comment);
		free(name);
		free(comment);
		name = comment = NULL;
		if (!c->author)
			c->author = xstrdup("");
		c = NULL;
	}
	if (rr < 0 || c)
		ret_code = -EINVAL; /* not well-formed, or cut inside a patch */
	xmlFreeTextReader(r);
	buf_release(&text_buf);
	free(name);
	free(comment);
	if (ret_code < 0) {
		change_list_free(v, n);
		return ret_code;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* The next darcs log: after the copy is up to date (what: "first", "new") or
 * when the last patch seen is gone ("gone"). */
static int darcs_log(struct poller *p, const char *what, char ***ret)
{
	json_t *scratch = poller_scratch(p);
	const char *last = json_string_value(json_object_get(poller_state(p), "hash"));
	json_object_set_new(scratch, "phase", json_string("log"));
	json_object_set_new(scratch, "what", json_string(what));
	if (!strcmp(what, "first")) {
		*ret = poller_argv("darcs", "log", "--xml-output", "--last=1", "--repodir", "repo",
				   NULL);
		return 1;
	}
	if (!strcmp(what, "gone")) {
		*ret = poller_argv("darcs", "log", "--xml-output", "--summary", "--last=1",
				   "--repodir", "repo", NULL);
		return 1;
	}
	_cleanup_free_ char *max = xasprintf("--max-count=%d", KILN_POLLER_MAX_COMMITS + 1);
	if (!*last) { /* the repository had no patch: every patch is new */
		*ret = poller_argv("darcs", "log", "--xml-output", "--summary", max, "--repodir",
				   "repo", NULL);
		return 1;
	}
	_cleanup_free_ char *from = xasprintf("hash %s", last);
	*ret = poller_argv("darcs", "log", "--xml-output", "--summary", "--from-match", from, max,
			   "--repodir", "repo", NULL);
	return 1;
}

static int darcs_step(struct poller *p, const struct poller_out *out, char ***ret)
{
	const struct config_poller *cfg = poller_config(p);
	json_t *scratch = poller_scratch(p), *state = poller_state(p);
	const char *phase = json_string_value(json_object_get(scratch, "phase"));
	if (!phase) {
		_cleanup_free_ char *dot = xasprintf("%s/repo/_darcs", poller_workdir(p));
		if (access(dot, F_OK) == 0) {
			json_object_set_new(scratch, "phase", json_string("pull"));
			*ret = poller_argv("darcs", "pull", "--all", "--quiet", "--no-set-default",
					   "--repodir", "repo", "--", cfg->repository, NULL);
			return 1;
		}
		json_object_set_new(scratch, "phase", json_string("clone"));
		*ret = poller_argv("darcs", "clone", "--quiet", "--complete", "--no-working-dir",
				   "--", cfg->repository, "repo", NULL);
		return 1;
	}
	const char *last = json_string_value(json_object_get(state, "hash"));
	const char *what = json_string_value(json_object_get(scratch, "what"));
	if (out->status != 0) {
		/* the last patch seen is not in the copy: report the newest one only */
		if (!strcmp(phase, "log") && !strcmp(what, "new") && out->err &&
		    strstr(out->err, "Couldn't find a patch matching"))
			return darcs_log(p, "gone", ret);
		return poller_fail(p, "'darcs %s' failed (exit %d): %s", phase, out->status,
				   out->err && *out->err ? out->err : "no message");
	}
	if (strcmp(phase, "log"))
		return darcs_log(p, last && (!*last || darcs_is_hash(last)) ? "new" : "first", ret);
	struct change *v;
	size_t n;
	if (poller_darcs_parse_log(out->text, out->len, &v, &n) < 0)
		return poller_fail(p, "cannot parse the output of 'darcs log'");
	if (!strcmp(what, "first")) {
		/* the first poll: remember the newest patch ("" for none), make no changes */
		json_object_set_new(state, "hash", json_string(n ? v[0].revision : ""));
		change_list_free(v, n);
		return 0;
	}
	_cleanup_free_ char *newest = n ? xstrdup(v[0].revision) : NULL;
	/* darcs lists the newest first: emit the oldest first, without the last seen,
	 * and no more than the newest KILN_POLLER_MAX_COMMITS */
	for (size_t i = n; i-- > 0;) {
		if (!strcmp(v[i].revision, last) || i >= KILN_POLLER_MAX_COMMITS) {
			change_release(&v[i]);
			continue;
		}
		if (cfg->branch)
			v[i].branch = xstrdup(cfg->branch);
		poller_emit(p, &v[i]);
	}
	/* last: borrowed from state, so replaced only now; v[0] was emitted or freed,
	 * its hash is still the newest */
	if (newest)
		json_object_set_new(state, "hash", json_string(newest));
	free(v);
	return 0;
}

const struct poller_vcs poller_darcs = {"darcs", darcs_step};
