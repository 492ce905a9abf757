/*
 * Small helpers the webhook parsers share (hook.h): reading members of a
 * jansson payload, "Name <email>" authors, ISO 8601 times and a commit's
 * added/modified/removed file lists.
 */
#include "master/changes/hook.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"

const char *hook_jstr(json_t *obj, const char *key)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

const char *hook_jpath(json_t *obj, ...)
{
	va_list ap;
	va_start(ap, obj);
	const char *key;
	json_t *cur = obj;
	while ((key = va_arg(ap, const char *)) && cur)
		cur = json_is_object(cur) ? json_object_get(cur, key) : NULL;
	va_end(ap);
	return json_is_string(cur) ? json_string_value(cur) : NULL;
}

char *hook_who(json_t *person)
{
	const char *name = hook_jstr(person, "name");
	const char *email = hook_jstr(person, "email");
	if (name && !*name)
		name = NULL;
	if (email && !*email)
		email = NULL;
	if (name && email)
		return xasprintf("%s <%s>", name, email);
	if (email)
		return xasprintf("<%s>", email);
	if (name)
		return xstrdup(name);
	const char *login = hook_jstr(person, "username");
	if (!login || !*login)
		login = hook_jstr(person, "login");
	return login && *login ? xstrdup(login) : NULL;
}

static int digits(const char **p, int n, int *ret)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return -EINVAL;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*ret = v;
	return 0;
}

int hook_parse_time(const char *s, double *ret)
{
	int y, mo, d, h, mi, sec;
	const char *p = s;
	if (!s || digits(&p, 4, &y) < 0 || *p++ != '-' || digits(&p, 2, &mo) < 0 || *p++ != '-' ||
	    digits(&p, 2, &d) < 0 || (*p != 'T' && *p != ' ') || !*p++ || digits(&p, 2, &h) < 0 ||
	    *p++ != ':' || digits(&p, 2, &mi) < 0 || *p++ != ':' || digits(&p, 2, &sec) < 0)
		return -EINVAL;
	double frac = 0, scale = 0.1;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		for (; *p >= '0' && *p <= '9'; p++, scale /= 10)
			frac += (*p - '0') * scale;
	}
	int off = 0;
	if (*p == 'Z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
		if (digits(&p, 2, &oh) < 0)
			return -EINVAL;
		if (*p == ':')
			p++;
		if (*p && digits(&p, 2, &om) < 0)
			return -EINVAL;
		off = sign * (oh * 3600 + om * 60);
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	struct tm tm = {.tm_year = y - 1900,
			.tm_mon = mo - 1,
			.tm_mday = d,
			.tm_hour = h,
			.tm_min = mi,
			.tm_sec = sec};
	time_t t = timegm(&tm);
	*ret = (double)t - off + frac;
	return 0;
}

void hook_commit_files(struct change *c, json_t *commit)
{
	static const char *const lists[] = {"added", "modified", "removed"};
	for (size_t k = 0; k < 3; k++) {
		json_t *a = json_object_get(commit, lists[k]);
		size_t i;
		json_t *v;
		json_array_foreach(a, i, v)
		{
			if (json_is_string(v))
				change_add_file(c, json_string_value(v), json_string_length(v));
		}
	}
}

int hook_load_object(const char *body, size_t len, json_t **ret, char **ret_err)
{
	json_error_t e;
	json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
	if (!j) {
		*ret_err = xasprintf("malformed JSON payload: %s (line %d)", e.text, e.line);
		return KILN_EPARSE;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		*ret_err = xstrdup("malformed payload: not a JSON object");
		return KILN_EPARSE;
	}
	*ret = j;
	return 0;
}

/* hook.h's (v, n) interface carries no capacity: since only this function
 * grows v (from NULL, 0), its capacity is n rounded up to a power of two,
 * and v doubles when n reaches one (growing by one element each time made
 * a push of thousands of commits copy the array thousands of times). */
struct change *hook_push_change(struct change **v, size_t *n)
{
	if ((*n & (*n - 1)) == 0) /* 0 or a power of two: full */
		*v = xreallocarray(*v, *n ? *n * 2 : 1, sizeof(**v));
	struct change *c = &(*v)[(*n)++];
	*c = (struct change){0};
	return c;
}

bool hook_in_list(const char *name, const char *const *list)
{
	for (size_t i = 0; list[i]; i++)
		if (!strcmp(name, list[i]))
			return true;
	return false;
}

int hook_truncated(size_t total, char **ret_err)
{
	if (total <= KILN_MAX_HOOK_COMMITS)
		return 0;
	*ret_err = xasprintf("push lists %zu commits: only the newest %u were taken", total,
			     (unsigned)KILN_MAX_HOOK_COMMITS);
	return HOOK_TRUNCATED;
}
