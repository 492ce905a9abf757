/*
 * Property bags (props.h).  The bag is kept in the API's own shape, a
 * jansson object {"name": [value, "source"]}, so serving it is a copy.
 */
#include "master/props.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/xalloc.h"

struct props {
	json_t *obj; /* owned: {"name": [value, "source"]} */
};

struct props *props_new(void)
{
	struct props *p = xcalloc(1, sizeof(*p));
	p->obj = json_object();
	if (!p->obj)
		abort(); /* allocation failure, as xmalloc */
	return p;
}

void props_free(struct props *p)
{
	if (!p)
		return;
	json_decref(p->obj);
	free(p);
}

int props_set(struct props *p, const char *name, json_t *value, const char *source)
{
	if (!value || !name || !*name || !source)
		goto invalid;
	if (strlen(name) > KILN_PROPS_MAX_NAME || strlen(source) > KILN_PROPS_MAX_NAME) {
		json_decref(value);
		return KILN_ETOOBIG;
	}
	if (json_dumpb(value, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY) > KILN_PROPS_MAX_VALUE) {
		json_decref(value);
		return KILN_ETOOBIG;
	}
	if (!json_object_get(p->obj, name) && json_object_size(p->obj) >= KILN_PROPS_MAX) {
		json_decref(value);
		return KILN_ETOOBIG;
	}
	json_t *src = json_string(source); /* NULL when not UTF-8 */
	if (!src)
		goto invalid;
	json_t *pair = json_array();
	if (!pair || json_array_append_new(pair, value) < 0 ||
	    json_array_append_new(pair, src) < 0) {
		json_decref(pair);
		return -ENOMEM;
	}
	/* json_object_set_new() refuses a key that is not UTF-8 and frees pair */
	return json_object_set_new(p->obj, name, pair) < 0 ? -EINVAL : 0;
invalid:
	json_decref(value);
	return -EINVAL;
}

json_t *props_get(const struct props *p, const char *name, const char **ret_source)
{
	json_t *pair = json_object_get(p->obj, name);
	if (!pair)
		return NULL;
	if (ret_source)
		*ret_source = json_string_value(json_array_get(pair, 1));
	return json_array_get(pair, 0);
}

bool props_has(const struct props *p, const char *name)
{
	return json_object_get(p->obj, name) != NULL;
}

size_t props_count(const struct props *p)
{
	return json_object_size(p->obj);
}

int props_foreach(const struct props *p, props_each_fn fn, void *ud)
{
	const char *name;
	json_t *pair;
	json_object_foreach(p->obj, name, pair)
	{
		int r = fn(ud, name, json_array_get(pair, 0),
			   json_string_value(json_array_get(pair, 1)));
		if (r < 0)
			return r;
	}
	return 0;
}

static int props_update_one(void *ud, const char *name, json_t *value, const char *source)
{
	return props_set(ud, name, json_incref(value), source);
}

int props_update(struct props *dst, const struct props *src)
{
	if (dst == src)
		return 0;
	return props_foreach(src, props_update_one, dst);
}

json_t *props_to_api_json(const struct props *p)
{
	json_t *copy = json_deep_copy(p->obj);
	if (!copy)
		abort(); /* allocation failure, as xmalloc */
	return copy;
}
