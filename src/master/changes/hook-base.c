/*
 * Buildbot's "base" change hook dialect (hook.h): one change from form
 * fields or a JSON object.  Also what `kiln sendchange` and the contrib/
 * VCS hook scripts post.
 */
#include "master/changes/hook.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "master/http.h"

static const char *const base_fields[] = {
	"author",         "who",     "committer", "files",    "comments", "revision",
	"when_timestamp", "when",    "branch",    "category", "revlink",  "properties",
	"repository",     "project", "codebase",  "src",      NULL,
};

static int base_fail(char **ret_err, int r, const char *fmt, const char *field)
{
	*ret_err = xasprintf(fmt, field);
	return r;
}

/* Sets c from one field: value is a JSON value (from a JSON body) or a
 * string (from a form; files and properties then hold JSON text). */
static int base_field(struct change *c, const char *name, json_t *value, char **ret_err)
{
	json_t *parsed = NULL;
	int r = 0;
	if (json_is_string(value) && (!strcmp(name, "files") || !strcmp(name, "properties"))) {
		const char *s = json_string_value(value);
		if (!*s)
			return 0;
		parsed = json_loads(s, 0, NULL);
		if (!parsed)
			return base_fail(ret_err, KILN_EPARSE, "'%s' is not valid JSON", name);
		value = parsed;
	}
	if (!strcmp(name, "files")) {
		if (!json_is_array(value)) {
			r = base_fail(ret_err, KILN_EPARSE, "'%s' must be a JSON list of paths",
				      name);
			goto out;
		}
		for (size_t i = 0; i < c->nfiles; i++)
			free(c->files[i]);
		c->nfiles = 0;
		size_t i;
		json_t *f;
		json_array_foreach(value, i, f)
		{
			if (!json_is_string(f)) {
				r = base_fail(ret_err, KILN_EPARSE,
					      "'%s' must be a JSON list of paths", name);
				goto out;
			}
			change_add_file(c, json_string_value(f), json_string_length(f));
		}
	} else if (!strcmp(name, "properties")) {
		if (!json_is_object(value)) {
			r = base_fail(ret_err, KILN_EPARSE, "'%s' must be a JSON object", name);
			goto out;
		}
		const char *k;
		json_t *v;
		json_object_foreach(value, k, v) change_set_property(c, k, json_incref(v));
	} else if (!strcmp(name, "when_timestamp") || !strcmp(name, "when")) {
		double t;
		if (json_is_number(value))
			t = json_number_value(value);
		else if (json_is_string(value) && *json_string_value(value)) {
			char *end;
			t = strtod(json_string_value(value), &end);
			if (*end)
				t = NAN;
		} else if (json_is_null(value) ||
			   (json_is_string(value) && !*json_string_value(value)))
			return 0;
		else
			t = NAN;
		if (!isfinite(t) || t < 0 || t > 1e11)
			return base_fail(ret_err, KILN_EPARSE,
					 "'%s' must be seconds since the epoch", name);
		c->when = t;
	} else {
		char **field = !strcmp(name, "author") || !strcmp(name, "who") ? &c->author
			       : !strcmp(name, "committer")                    ? &c->committer
			       : !strcmp(name, "comments")                     ? &c->comments
			       : !strcmp(name, "revision")                     ? &c->revision
			       : !strcmp(name, "branch")                       ? &c->branch
			       : !strcmp(name, "category")                     ? &c->category
			       : !strcmp(name, "revlink")                      ? &c->revlink
			       : !strcmp(name, "repository")                   ? &c->repository
			       : !strcmp(name, "project")                      ? &c->project
			       : !strcmp(name, "codebase")                     ? &c->codebase
									       : NULL;
		if (!field) { /* "src": the kind of identity the author is */
			const char *v = json_string_value(value);
			c->src = !v                  ? c->src
				 : !strcmp(v, "git") ? "git"
				 : !strcmp(v, "hg")  ? "hg"
				 : !strcmp(v, "svn") ? "svn"
						     : c->src;
			return 0;
		}
		if (json_is_null(value))
			return 0;
		if (!json_is_string(value))
			return base_fail(ret_err, KILN_EPARSE, "'%s' must be a string", name);
		/* "author" wins over Buildbot's older "who" */
		if (field == &c->author && *field && !strcmp(name, "who"))
			return 0;
		free(*field);
		*field = xstrndup(json_string_value(value), json_string_length(value));
		if (strlen(*field) != json_string_length(value))
			return base_fail(ret_err, KILN_EPARSE, "'%s' must not contain NUL bytes",
					 name);
	}
out:
	json_decref(parsed);
	return r;
}

int hook_base_parse(const char *content_type, const char *body, size_t len, struct change **ret,
		    size_t *ret_n, char **ret_err)
{
	*ret = NULL;
	*ret_n = 0;
	struct change c = {0};
	int r = 0;
	if (content_type && !strncasecmp(content_type, "application/json", 16)) {
		json_t *p;
		if ((r = hook_load_object(body, len, &p, ret_err)) < 0)
			return r;
		const char *k;
		json_t *v;
		json_object_foreach(p, k, v)
		{
			if (!hook_in_list(k, base_fields))
				continue; /* Buildbot ignores unknown fields too */
			if ((r = base_field(&c, k, v, ret_err)) < 0)
				break;
		}
		json_decref(p);
	} else {
		struct http_arg *args = NULL;
		size_t n = 0;
		if (memchr(body, '\0', len)) {
			*ret_err = xstrdup("malformed form body: NUL byte");
			return KILN_EPARSE;
		}
		r = http_query_parse(body, len, KILN_MAX_HTTP_QUERY_ARGS, &args, &n);
		if (r < 0) {
			*ret_err = xstrdup(r == -E2BIG ? "malformed form body: too many fields"
						       : "malformed form body");
			return KILN_EPARSE;
		}
		for (size_t i = 0; i < n && r >= 0; i++) {
			if (!hook_in_list(args[i].name, base_fields))
				continue;
			json_t *v = json_string(args[i].value);
			if (!v) {
				*ret_err = xasprintf("'%s' is not valid UTF-8", args[i].name);
				r = KILN_EPARSE;
				break;
			}
			r = base_field(&c, args[i].name, v, ret_err);
			json_decref(v);
		}
		http_args_free(args, n);
	}
	if (r < 0) {
		change_release(&c);
		return r;
	}
	if (!c.author || !*c.author) {
		change_release(&c);
		*ret_err = xstrdup("no author (or who) given");
		return KILN_EPARSE;
	}
	if (!c.src)
		c.src = "who";
	*ret = xmemdup(&c, sizeof(c));
	*ret_n = 1;
	return 0;
}
