/*
 * Command environments for kiln-worker (env.h): a small owned vector of
 * "NAME=value" strings that uv_spawn takes as is, plus the expansion rules
 * Buildbot's worker applies to a step's env map.
 */
#include "worker/env.h"

#include <errno.h>
#include <string.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/xalloc.h"
#include "proto/msg.h"

#define ENV_MAX_VALUE (1u << 20) /* one expanded value */

void env_init(struct env *e, char *const *base)
{
	e->n = 0;
	e->cap = 16;
	e->v = xcalloc(e->cap, sizeof(char *));
	for (size_t i = 0; base && base[i]; i++) {
		const char *eq = strchr(base[i], '=');
		if (!eq || eq == base[i])
			continue;
		char *name = xstrndup(base[i], (size_t)(eq - base[i]));
		env_set(e, name, eq + 1);
		free(name);
	}
}

void env_release(struct env *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
	e->v = NULL;
	e->n = e->cap = 0;
}

static ssize_t env_find(const struct env *e, const char *name, size_t len)
{
	for (size_t i = 0; i < e->n; i++)
		if (strncmp(e->v[i], name, len) == 0 && e->v[i][len] == '=')
			return (ssize_t)i;
	return -1;
}

const char *env_get(const struct env *e, const char *name)
{
	size_t len = strlen(name);
	ssize_t i = env_find(e, name, len);
	return i < 0 ? NULL : e->v[i] + len + 1;
}

void env_set(struct env *e, const char *name, const char *value)
{
	char *s = xasprintf("%s=%s", name, value);
	ssize_t i = env_find(e, name, strlen(name));
	if (i >= 0) {
		free(e->v[i]);
		e->v[i] = s;
		return;
	}
	ARRAY_GROW(e->v, e->n + 2, e->cap); /* the entry and the NULL */
	e->v[e->n++] = s;
	e->v[e->n] = NULL;
}

void env_unset(struct env *e, const char *name)
{
	ssize_t i = env_find(e, name, strlen(name));
	if (i < 0)
		return;
	free(e->v[i]);
	memmove(&e->v[i], &e->v[i + 1],
		(e->n - (size_t)i) * sizeof(char *)); /* moves the NULL too */
	e->n--;
}

static int env_cmp(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	size_t lx = strcspn(x, "="), ly = strcspn(y, "=");
	int r = strncmp(x, y, lx < ly ? lx : ly);
	if (r)
		return r;
	return (lx > ly) - (lx < ly);
}

void env_sort(struct env *e)
{
	qsort(e->v, e->n, sizeof(char *), env_cmp);
}

static bool env_namechar(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '_';
}

char *env_expand(const char *s, size_t n, const struct env *lookup)
{
	struct buf out;
	buf_init(&out, ENV_MAX_VALUE);
	size_t i = 0;
	while (i < n) {
		if (s[i] == '$' && i + 1 < n && s[i + 1] == '{') {
			size_t j = i + 2;
			while (j < n && env_namechar(s[j]))
				j++;
			if (j < n && s[j] == '}') {
				char *name = xstrndup(s + i + 2, j - i - 2);
				const char *v = lookup ? env_get(lookup, name) : NULL;
				int r = v ? buf_adds(&out, v) : 0;
				free(name);
				if (r < 0)
					return NULL; /* out emptied itself */
				i = j + 1;
				continue;
			}
		}
		if (buf_addch(&out, s[i]) < 0)
			return NULL;
		i++;
	}
	return buf_detach(&out, NULL);
}

int env_apply(struct env *e, const msgpack_object *map, const struct env *lookup)
{
	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return -EINVAL;
	for (uint32_t k = 0; k < map->via.map.size; k++) {
		const msgpack_object *val = &map->via.map.ptr[k].val;
		_cleanup_free_ char *name = proto_obj_strdup(&map->via.map.ptr[k].key);
		if (!name || !*name || strchr(name, '='))
			return -EINVAL;
		struct buf raw;
		buf_init(&raw, ENV_MAX_VALUE);
		struct str s;
		bool set = true;
		int r = 0;
		if (proto_obj_str(val, &s)) {
			r = buf_add(&raw, s.p, s.len);
		} else if (val->type == MSGPACK_OBJECT_ARRAY) {
			for (uint32_t i = 0; r >= 0 && i < val->via.array.size; i++) {
				if (!proto_obj_str(&val->via.array.ptr[i], &s))
					continue;
				if (raw.len)
					r = buf_addch(&raw, ':');
				if (r >= 0)
					r = buf_add(&raw, s.p, s.len);
			}
		} else if (val->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
			   val->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
			int64_t iv = 0;
			if (proto_obj_int(val, &iv))
				r = buf_addf(&raw, "%lld", (long long)iv);
		} else {
			set = false; /* nil: remove */
		}
		if (r >= 0 && set && strcmp(name, "PYTHONPATH") == 0)
			r = buf_adds(&raw, ":${PYTHONPATH}");
		if (r >= 0 && set) {
			char *v = env_expand(raw.ptr, raw.len, lookup);
			if (v)
				env_set(e, name, v);
			else
				r = -E2BIG;
			free(v);
		} else if (r >= 0) {
			env_unset(e, name);
		}
		buf_release(&raw);
		if (r < 0)
			return -E2BIG; /* a value over ENV_MAX_VALUE: the command is refused */
	}
	return 0;
}
