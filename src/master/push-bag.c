/*
 * Parsing and checking of pushed result bags (push-bag.h, docs/PUSH.md).
 * Everything is checked before anything is kept: types, lengths, control
 * characters, the caps of struct push_limits.  Messages name the field
 * ("steps[2].status: ...") and never echo more than a short prefix.
 */
#include "master/push-bag.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/str.h"
#include "common/xalloc.h"
#include "db/db.h"

static int bag_fail(char *why, size_t whylen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int bag_fail(char *why, size_t whylen, int code, const char *fmt, ...)
{
	char raw[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* one line of valid UTF-8 (it goes into a JSON reply) whatever bytes the
	 * sender chose: jansson's error text quotes them raw (found by
	 * fuzz-push-json), and a cut can fall inside a character */
	struct buf b;
	buf_init(&b, 3 * sizeof(raw));
	if (str_utf8_sanitize(&b, raw, strlen(raw)) < 0 || b.len == 0) {
		buf_release(&b);
		snprintf(why, whylen, "malformed bag");
		return code;
	}
	size_t n = b.len < whylen ? b.len : whylen - 1;
	while (n > 0 && n < b.len && ((unsigned char)b.ptr[n] & 0xc0) == 0x80)
		n--;
	for (size_t i = 0; i < n; i++)
		why[i] = (unsigned char)b.ptr[i] < 0x20 || b.ptr[i] == 0x7f ? '?' : b.ptr[i];
	why[n] = '\0';
	buf_release(&b);
	return code;
}

/* A key the sender chose, to quote in a message: at most 32 bytes, cut at
 * a character boundary (a cut UTF-8 sequence would make the whole JSON
 * error reply unencodable), control characters as '?' (the reason is one
 * line), "..." when cut.  Found by fuzz-push-json: "{\"a\\nb\": 1}" gave
 * a two-line reason. */
#define BAG_KEY_QUOTE 32
static const char *bag_key_quote(const char *key, char out[BAG_KEY_QUOTE + 4])
{
	size_t n = strlen(key), i;
	bool cut = n > BAG_KEY_QUOTE;
	if (cut) {
		n = BAG_KEY_QUOTE;
		while (n > 0 && ((unsigned char)key[n] & 0xc0) == 0x80)
			n--; /* key[n] continues a character: end before its start */
	}
	for (i = 0; i < n; i++)
		out[i] = (unsigned char)key[i] < 0x20 || key[i] == 0x7f ? '?' : key[i];
	memcpy(out + i, cut ? "..." : "", cut ? 4 : 1);
	return out;
}

/* 1..max bytes of valid UTF-8 (jansson checked) without control characters. */
static bool bag_name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* A package: letters, digits, '.', '_', '+', '-' (it names a builder). */
static bool bag_package_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > PUSH_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '+' || c == '-'))
			return false;
	}
	return true;
}

int push_results_from_json(const json_t *v)
{
	static const struct {
		const char *name;
		int results;
	} names[] = {
		{"success", RESULTS_SUCCESS},  {"ok", RESULTS_SUCCESS},
		{"passed", RESULTS_SUCCESS},   {"warnings", RESULTS_WARNINGS},
		{"warning", RESULTS_WARNINGS}, {"failure", RESULTS_FAILURE},
		{"failed", RESULTS_FAILURE},   {"fail", RESULTS_FAILURE},
		{"skipped", RESULTS_SKIPPED},  {"exception", RESULTS_EXCEPTION},
		{"error", RESULTS_EXCEPTION},  {"cancelled", RESULTS_CANCELLED},
	};
	if (json_is_integer(v))
		return json_integer_value(v) == 0 ? RESULTS_SUCCESS : RESULTS_FAILURE;
	if (json_is_boolean(v))
		return json_is_true(v) ? RESULTS_SUCCESS : RESULTS_FAILURE;
	if (!json_is_string(v))
		return -1;
	const char *s = json_string_value(v);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcasecmp(s, names[i].name))
			return names[i].results;
	return -1;
}

static int bag_time(const json_t *v, const char *what, double *ret, char *why, size_t whylen)
{
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_number(v))
		return bag_fail(why, whylen, PUSH_BAD, "%s must be a number (epoch seconds)", what);
	double t = json_number_value(v);
	if (!isfinite(t) || t < 0 || t > 1e11)
		return bag_fail(why, whylen, PUSH_BAD, "%s is not a time in epoch seconds", what);
	*ret = t;
	return 0;
}

static int bag_log(const json_t *v, const char *what, size_t max, char **ret, size_t *ret_len,
		   char *why, size_t whylen)
{
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return bag_fail(why, whylen, PUSH_BAD, "%s must be a string", what);
	size_t n = json_string_length(v);
	if (n > max)
		return bag_fail(why, whylen, PUSH_TOO_BIG,
				"%s has %zu bytes: at most %zu are accepted per log", what, n, max);
	if (n) {
		*ret = xmalloc(n + 1);
		memcpy(*ret, json_string_value(v), n);
		(*ret)[n] = '\0';
		*ret_len = n;
	}
	return 0;
}

static int bag_step(json_t *o, size_t i, const struct push_limits *lim, struct push_step *st,
		    char *why, size_t whylen)
{
	char what[64];
	if (!json_is_object(o))
		return bag_fail(why, whylen, PUSH_BAD, "steps[%zu] must be an object", i);
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v)
	{
		static const char *const known[] = {"name", "status",     "stdout",      "stderr",
						    "cmd",  "started_at", "finished_at", NULL};
		size_t k = 0;
		while (known[k] && strcmp(known[k], key))
			k++;
		char q[BAG_KEY_QUOTE + 4];
		if (!known[k])
			return bag_fail(why, whylen, PUSH_BAD,
					"steps[%zu]: unknown key '%s' (name, status, stdout, "
					"stderr, cmd, started_at, finished_at)",
					i, bag_key_quote(key, q));
	}
	v = json_object_get(o, "name");
	if (!json_is_string(v) || !bag_name_ok(json_string_value(v), PUSH_NAME_MAX))
		return bag_fail(why, whylen, PUSH_BAD,
				"steps[%zu].name must be a string of 1 to %d bytes without "
				"control characters",
				i, PUSH_NAME_MAX);
	st->name = xstrdup(json_string_value(v));
	v = json_object_get(o, "status");
	if (!v)
		return bag_fail(why, whylen, PUSH_BAD, "steps[%zu].status is missing", i);
	st->results = push_results_from_json(v);
	if (st->results < 0)
		return bag_fail(why, whylen, PUSH_BAD,
				"steps[%zu].status must be 0 (success), another integer (failure) "
				"or one of success, warnings, failure, skipped, exception, "
				"cancelled",
				i);
	v = json_object_get(o, "cmd");
	if (json_is_array(v)) {
		/* argv: joined with spaces, for display */
		size_t n = 0, idx;
		json_t *a;
		json_array_foreach(v, idx, a)
		{
			if (!json_is_string(a))
				return bag_fail(why, whylen, PUSH_BAD,
						"steps[%zu].cmd must be a string or a list of "
						"strings",
						i);
			n += json_string_length(a) + 1;
		}
		if (n > PUSH_CMD_MAX)
			return bag_fail(why, whylen, PUSH_TOO_BIG,
					"steps[%zu].cmd is longer than %d bytes", i, PUSH_CMD_MAX);
		st->cmd = xcalloc(1, n + 1);
		size_t at = 0;
		json_array_foreach(v, idx, a)
		{
			if (idx)
				st->cmd[at++] = ' ';
			memcpy(st->cmd + at, json_string_value(a), json_string_length(a));
			at += json_string_length(a);
		}
	} else if (json_is_string(v)) {
		if (json_string_length(v) > PUSH_CMD_MAX)
			return bag_fail(why, whylen, PUSH_TOO_BIG,
					"steps[%zu].cmd is longer than %d bytes", i, PUSH_CMD_MAX);
		st->cmd = xstrdup(json_string_value(v));
	} else if (v && !json_is_null(v)) {
		return bag_fail(why, whylen, PUSH_BAD,
				"steps[%zu].cmd must be a string or a list of strings", i);
	}
	snprintf(what, sizeof(what), "steps[%zu].stdout", i);
	int r = bag_log(json_object_get(o, "stdout"), what, lim->max_log_bytes, &st->out,
			&st->out_len, why, whylen);
	if (r)
		return r;
	snprintf(what, sizeof(what), "steps[%zu].stderr", i);
	r = bag_log(json_object_get(o, "stderr"), what, lim->max_log_bytes, &st->err, &st->err_len,
		    why, whylen);
	if (r)
		return r;
	snprintf(what, sizeof(what), "steps[%zu].started_at", i);
	if ((r = bag_time(json_object_get(o, "started_at"), what, &st->started_at, why, whylen)))
		return r;
	snprintf(what, sizeof(what), "steps[%zu].finished_at", i);
	if ((r = bag_time(json_object_get(o, "finished_at"), what, &st->finished_at, why, whylen)))
		return r;
	if (st->started_at && st->finished_at && st->finished_at < st->started_at)
		return bag_fail(why, whylen, PUSH_BAD, "steps[%zu] finished before it started", i);
	return 0;
}

static int bag_client(json_t *c, struct push_bag *b, char *why, size_t whylen)
{
	if (!json_is_object(c))
		return bag_fail(why, whylen, PUSH_BAD,
				"'client' must be an object with at least package and host");
	if (json_object_size(c) > PUSH_CLIENT_KEYS_MAX)
		return bag_fail(why, whylen, PUSH_BAD, "'client' has more than %d keys",
				PUSH_CLIENT_KEYS_MAX);
	const char *key;
	json_t *v;
	json_object_foreach(c, key, v)
	{
		if (!bag_name_ok(key, PUSH_NAME_MAX))
			return bag_fail(why, whylen, PUSH_BAD,
					"client: a key must have 1 to %d bytes without control "
					"characters",
					PUSH_NAME_MAX);
		if (!strcmp(key, "tags"))
			continue;
		char q[BAG_KEY_QUOTE + 4];
		if (!json_is_string(v) && !json_is_number(v) && !json_is_boolean(v) &&
		    !json_is_null(v))
			return bag_fail(why, whylen, PUSH_BAD,
					"client.%s must be a string, a number or a boolean",
					bag_key_quote(key, q));
		if (json_is_string(v) && json_string_length(v) > PUSH_CLIENT_VALUE_MAX)
			return bag_fail(why, whylen, PUSH_BAD, "client.%s is longer than %d bytes",
					bag_key_quote(key, q), PUSH_CLIENT_VALUE_MAX);
	}
	v = json_object_get(c, "package");
	if (!json_is_string(v) || !bag_package_ok(json_string_value(v)))
		return bag_fail(why, whylen, PUSH_BAD,
				"client.package must be 1 to %d letters, digits, '.', '_', '+' or "
				"'-'",
				PUSH_NAME_MAX);
	b->package = xstrdup(json_string_value(v));
	v = json_object_get(c, "host");
	if (!json_is_string(v) || !bag_name_ok(json_string_value(v), PUSH_HOST_MAX))
		return bag_fail(why, whylen, PUSH_BAD,
				"client.host must be a string of 1 to %d bytes without control "
				"characters",
				PUSH_HOST_MAX);
	b->host = xstrdup(json_string_value(v));
	v = json_object_get(c, "arch");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v) || !bag_name_ok(json_string_value(v), PUSH_HOST_MAX))
			return bag_fail(why, whylen, PUSH_BAD,
					"client.arch must be a string of 1 to %d bytes",
					PUSH_HOST_MAX);
		b->arch = xstrdup(json_string_value(v));
	}
	v = json_object_get(c, "tags");
	if (v && !json_is_null(v)) {
		if (!json_is_array(v))
			return bag_fail(why, whylen, PUSH_BAD,
					"client.tags must be a list of strings");
		if (json_array_size(v) > PUSH_TAGS_MAX)
			return bag_fail(why, whylen, PUSH_BAD, "client.tags has more than %d tags",
					PUSH_TAGS_MAX);
		b->tags = xcalloc(json_array_size(v) + 1, sizeof(*b->tags));
		size_t i;
		json_t *t;
		json_array_foreach(v, i, t)
		{
			if (!json_is_string(t) || !bag_name_ok(json_string_value(t), PUSH_NAME_MAX))
				return bag_fail(
					why, whylen, PUSH_BAD,
					"client.tags[%zu] must be a string of 1 to %d bytes "
					"without control characters or ','",
					i, PUSH_NAME_MAX);
			if (strchr(json_string_value(t), ','))
				return bag_fail(why, whylen, PUSH_BAD,
						"client.tags[%zu] must not contain ','", i);
			b->tags[b->ntags++] = xstrdup(json_string_value(t));
		}
	}
	b->client = json_deep_copy(c);
	return 0;
}

static int bag_steps(json_t *s, const struct push_limits *lim, struct push_bag *b, char *why,
		     size_t whylen)
{
	if (!s || json_is_null(s))
		return 0;
	if (!json_is_array(s))
		return bag_fail(why, whylen, PUSH_BAD, "'steps' must be a list of objects");
	size_t n = json_array_size(s);
	if (n > lim->max_steps)
		return bag_fail(why, whylen, PUSH_TOO_BIG,
				"'steps' has %zu steps: at most %zu are accepted per push", n,
				lim->max_steps);
	b->steps = xcalloc(n + 1, sizeof(*b->steps));
	for (size_t i = 0; i < n; i++) {
		int r = bag_step(json_array_get(s, i), i, lim, &b->steps[i], why, whylen);
		b->nsteps = i + 1; /* released whole on failure */
		if (r)
			return r;
		b->log_bytes += b->steps[i].out_len + b->steps[i].err_len;
	}
	return 0;
}

int push_bag_parse(const char *text, size_t len, const struct push_limits *lim, bool steps_only,
		   struct push_bag *ret, char *why, size_t whylen)
{
	*ret = (struct push_bag){.finished = true};
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return bag_fail(why, whylen, PUSH_BAD, "not JSON: %s (line %d, column %d)",
				jerr.text, jerr.line, jerr.column);
	int r = 0;
	if (!json_is_object(doc)) {
		r = bag_fail(why, whylen, PUSH_BAD, "the bag must be a JSON object");
		goto out;
	}
	const char *key;
	json_t *v;
	json_object_foreach(doc, key, v)
	{
		bool ok = !strcmp(key, "steps") ||
			  (!steps_only && (!strcmp(key, "client") || !strcmp(key, "revision") ||
					   !strcmp(key, "finished"))) ||
			  (steps_only && !strcmp(key, "update_token"));
		if (!ok) {
			char q[BAG_KEY_QUOTE + 4];
			r = bag_fail(why, whylen, PUSH_BAD, "unknown key '%s' (%s)",
				     bag_key_quote(key, q),
				     steps_only ? "steps, update_token"
						: "client, steps, revision, finished");
			goto out;
		}
	}
	if (!steps_only) {
		if ((r = bag_client(json_object_get(doc, "client"), ret, why, whylen)))
			goto out;
		v = json_object_get(doc, "revision");
		if (v && !json_is_null(v)) {
			if (!json_is_string(v) ||
			    !bag_name_ok(json_string_value(v), PUSH_REVISION_MAX)) {
				r = bag_fail(why, whylen, PUSH_BAD,
					     "'revision' must be a string of 1 to %d bytes",
					     PUSH_REVISION_MAX);
				goto out;
			}
			ret->revision = xstrdup(json_string_value(v));
		}
		v = json_object_get(doc, "finished");
		if (v && !json_is_boolean(v)) {
			r = bag_fail(why, whylen, PUSH_BAD, "'finished' must be true or false");
			goto out;
		}
		ret->finished = !v || json_is_true(v);
	} else if (!json_object_get(doc, "steps")) {
		r = bag_fail(why, whylen, PUSH_BAD, "'steps' is missing");
		goto out;
	}
	r = bag_steps(json_object_get(doc, "steps"), lim, ret, why, whylen);
out:
	json_decref(doc);
	if (r)
		push_bag_release(ret);
	return r;
}

void push_bag_release(struct push_bag *b)
{
	free(b->package);
	free(b->host);
	free(b->arch);
	for (size_t i = 0; i < b->ntags; i++)
		free(b->tags[i]);
	free(b->tags);
	json_decref(b->client);
	free(b->revision);
	for (size_t i = 0; i < b->nsteps; i++) {
		free(b->steps[i].name);
		free(b->steps[i].cmd);
		free(b->steps[i].out);
		free(b->steps[i].err);
	}
	free(b->steps);
	*b = (struct push_bag){0};
}
